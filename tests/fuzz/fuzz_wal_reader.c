/*
 * fuzz_wal_reader.c - libFuzzer harness for log recovery (src/core/wal_recover.c).
 *
 * The input becomes files in a scratch directory, laid out by its first byte:
 *   0: the only (last) log segment          wal-00000000000000000001.log
 *   1: a middle log segment, followed by a valid segment far ahead
 *   2: a snapshot                           snap-00000000000000000001.log
 *   3: two log segments, split at the offset given by bytes 1-2
 * then recovery runs on the directory. Besides memory safety it checks:
 *   - every delivered record is readable in full and within the size limit;
 *   - snapshot records come first, indexed 0, 1, 2...; log seqs strictly
 *     increase;
 *   - recovery is idempotent: a second run delivers the same records (same
 *     count and hash), finds no torn tail, and reports the same losses.
 * Seeds (corpora/wal_reader) are segments written by ep_wal itself.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/wal.h"

enum { MAX_RECORD = 1 << 16 };

static char scratch[64];

typedef struct check {
    uint64_t n, snap_n, hash, last_seq;
    bool seen_log;
} check;

static ep_err on_rec(void *ud, const ep_wal_rec *r)
{
    check *c = ud;
    if (r->len > MAX_RECORD || (r->len && r->data == NULL))
        __builtin_trap();
    uint32_t h = ep_wal_crc32c((uint32_t)c->hash, r->data, r->len);
    c->hash = (c->hash * 31 + h) ^ r->seq ^ ((uint64_t)r->type << 56);
    if (r->snapshot) {
        if (c->seen_log || r->seq != c->snap_n)
            __builtin_trap();
        c->snap_n++;
    } else {
        if (c->seen_log && r->seq <= c->last_seq)
            __builtin_trap();
        c->seen_log = true;
        c->last_seq = r->seq;
        c->n++;
    }
    return EP_EOK;
}

static void clear_dir(void)
{
    DIR *d = opendir(scratch);
    struct dirent *de;
    char p[160];
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", scratch, de->d_name);
        unlink(p);
    }
    closedir(d);
}

static void put_file(int kind, uint64_t seq, const uint8_t *p, size_t n)
{
    char name[48], path[160];
    ep_wal__file_name(name, kind, seq, false);
    snprintf(path, sizeof(path), "%s/%s", scratch, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        abort();
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r <= 0)
            abort();
        p += r;
        n -= (size_t)r;
    }
    close(fd);
}

/* A valid segment at seq 1<<40 holding one record. */
static void put_valid_tail(void)
{
    uint8_t buf[EP_WAL__SEG_HDR + EP_WAL__REC_HDR + 4];
    uint64_t first = (uint64_t)1 << 40;
    ep_wal__seg_hdr_encode(buf, EP_WAL__KIND_LOG, first);
    struct iovec iov = {.iov_base = "tail", .iov_len = 4};
    ep_wal__hdr h = {.seq = first, .len = 4, .type = 9};
    ep_wal__rec_encode(buf + EP_WAL__SEG_HDR, &h, &iov, 1, true);
    put_file(EP_WAL__KIND_LOG, first, buf, sizeof(buf));
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(scratch, sizeof(scratch), "%s/fuzz_wal.XXXXXX", base);
    if (mkdtemp(scratch) == NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] & 3;
    data++;
    size--;
    clear_dir();
    switch (mode) {
    case 0:
        put_file(EP_WAL__KIND_LOG, 1, data, size);
        break;
    case 1:
        put_file(EP_WAL__KIND_LOG, 1, data, size);
        put_valid_tail();
        break;
    case 2:
        put_file(EP_WAL__KIND_SNAP, 1, data, size);
        break;
    default: {
        size_t cut = size >= 2 ? ((size_t)data[0] | (size_t)data[1] << 8) : 0;
        const uint8_t *p = size >= 2 ? data + 2 : data;
        size_t n = size >= 2 ? size - 2 : size;
        if (cut > n)
            cut = n;
        put_file(EP_WAL__KIND_LOG, 1, p, cut);
        put_file(EP_WAL__KIND_LOG, 50, p + cut, n - cut);
        break;
    }
    }

    int dirfd = open(scratch, O_RDONLY | O_DIRECTORY);
    if (dirfd < 0)
        abort();
    check c1 = {0}, c2 = {0};
    ep_wal_report r1, r2;
    ep_wal__recovered o1, o2;
    ep_err e1 = ep_wal__recover(dirfd, MAX_RECORD, on_rec, &c1, &r1, &o1);
    if (e1 == EP_ENOMEM)
        goto out;
    if (e1 != EP_EOK)
        __builtin_trap();
    if (o1.next_seq == 0 || (c1.seen_log && o1.next_seq <= c1.last_seq))
        __builtin_trap();
    if (r1.records != c1.n || r1.snapshot_records != c1.snap_n)
        __builtin_trap();
    ep_err e2 = ep_wal__recover(dirfd, MAX_RECORD, on_rec, &c2, &r2, &o2);
    if (e2 != EP_EOK)
        __builtin_trap();
    if (c2.n != c1.n || c2.snap_n != c1.snap_n || c2.hash != c1.hash || r2.torn_bytes != 0 ||
        r2.nlosses != r1.nlosses || r2.lost_bytes != r1.lost_bytes || o2.next_seq != o1.next_seq)
        __builtin_trap();
    free(o1.files);
    free(o2.files);
out:
    close(dirfd);
    return 0;
}
