/* wal_test.c - the write-ahead log: CRC-32C vectors, record/segment
 * encoding, reopen and replay, torn tail at every byte of the last record,
 * corruption in the middle, segment rollover, compaction with a crash
 * (fork + _exit) at every step, the disk budget, ENOSPC on a real 1 MiB
 * tmpfs, group-commit completion order, periodic/none modes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/wal.h"

/* ------------------------------------------------------------ helpers */

static char *tmpdir_new(void)
{
    char *d = strdup("/tmp/ep_wal_test.XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rmtree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void tmpdir_free(char *d)
{
    rmtree(d);
    free(d);
}

/* Deterministic payload of a record. */
static void fill(uint8_t *p, size_t n, uint64_t k)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(k * 131 + i * 7 + (i >> 8));
}

static size_t len_for(uint64_t k) { return (size_t)((k * 37) % 300); }

typedef struct rec {
    uint64_t seq;
    uint8_t type;
    bool snapshot;
    uint32_t len;
    uint8_t *data;
} rec;

typedef struct recs {
    rec *v;
    size_t n, cap;
} recs;

static ep_err collect(void *ud, const ep_wal_rec *r)
{
    recs *rs = ud;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 256;
        rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
        assert_non_null(rs->v);
    }
    rec *x = &rs->v[rs->n++];
    x->seq = r->seq;
    x->type = r->type;
    x->snapshot = r->snapshot;
    x->len = r->len;
    x->data = malloc(r->len ? r->len : 1);
    assert_non_null(x->data);
    if (r->len)
        memcpy(x->data, r->data, r->len);
    return EP_EOK;
}

static void recs_clear(recs *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i].data);
    free(rs->v);
    memset(rs, 0, sizeof(*rs));
}

/* Checks that rs holds exactly records with seqs [from, to] appended with
 * append_n (payload from the seq, type seq & 0xff). */
static void check_range(const recs *rs, size_t at, uint64_t from, uint64_t to)
{
    uint8_t buf[512];
    for (uint64_t s = from; s <= to; s++, at++) {
        assert_true(at < rs->n);
        const rec *r = &rs->v[at];
        assert_int_equal(r->seq, s);
        assert_int_equal(r->type, (uint8_t)s);
        size_t n = len_for(s);
        assert_int_equal(r->len, n);
        fill(buf, n, s);
        if (n)
            assert_memory_equal(r->data, buf, n);
    }
}

/* Appends records whose seq is expected to be first..first+n-1. */
static void append_n(ep_wal *w, uint64_t first, uint64_t n)
{
    uint8_t buf[512];
    for (uint64_t s = first; s < first + n; s++) {
        size_t len = len_for(s);
        fill(buf, len, s);
        uint64_t seq = 0;
        assert_int_equal(ep_wal_append(w, NULL, (uint8_t)s, buf, len, NULL, NULL, &seq), EP_EOK);
        assert_int_equal(seq, s);
    }
}

static ep_wal_opts opts_for(const char *dir)
{
    ep_wal_opts o;
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    return o;
}

typedef struct file_list {
    char names[256][48];
    uint64_t size[256];
    int n;
} file_list;

static int name_cmp(const void *a, const void *b) { return strcmp(a, b); }

/* Lists wal-*.log (prefix "wal-") or other prefixes, sorted. */
static void list_files(const char *dir, const char *prefix, file_list *fl)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    fl->n = 0;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        assert_true(fl->n < 256);
        assert_true(strlen(de->d_name) < 48);
        memcpy(fl->names[fl->n++], de->d_name, strlen(de->d_name) + 1);
    }
    closedir(d);
    qsort(fl->names, (size_t)fl->n, 48, name_cmp);
    for (int i = 0; i < fl->n; i++) {
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, fl->names[i]);
        assert_int_equal(stat(p, &st), 0);
        fl->size[i] = (uint64_t)st.st_size;
    }
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* ------------------------------------------------------------ format */

static void test_crc32c_vectors(void **state)
{
    (void)state;
    uint8_t b[32];
    assert_int_equal(ep_wal_crc32c(0, "123456789", 9), 0xE3069283u);
    memset(b, 0, sizeof(b));
    assert_int_equal(ep_wal_crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof(b));
    assert_int_equal(ep_wal_crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    assert_int_equal(ep_wal_crc32c(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    assert_int_equal(ep_wal_crc32c(0, b, 32), 0x113FDB5Cu);
    assert_int_equal(ep_wal_crc32c(0, "", 0), 0u);
    /* Incremental == one shot, at every split and alignment. */
    uint8_t big[1000];
    fill(big, sizeof(big), 5);
    uint32_t whole = ep_wal_crc32c(0, big, sizeof(big));
    for (size_t cut = 0; cut <= 64; cut++)
        assert_int_equal(ep_wal_crc32c(ep_wal_crc32c(0, big, cut), big + cut, sizeof(big) - cut),
                         whole);
    for (size_t off = 1; off < 9; off++)
        assert_int_equal(ep_wal_crc32c(0, big + off, 100),
                         ep_wal_crc32c(ep_wal_crc32c(0, big + off, 3), big + off + 3, 97));
}

static void test_record_encode_decode(void **state)
{
    (void)state;
    uint8_t payload[300], rec_buf[400];
    size_t lens[] = {0, 1, 7, 8, 299};
    for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
        size_t len = lens[li];
        fill(payload, len, li);
        struct iovec iov[2] = {{payload, len / 2}, {payload + len / 2, len - len / 2}};
        ep_wal__hdr h = {.seq = 0x0102030405060708ull + li, .type = 0xA5, .flags = 0};
        size_t n = ep_wal__rec_encode(rec_buf, &h, iov, 2, true);
        assert_int_equal(n, EP_WAL__REC_HDR + len);
        /* Little-endian fields at fixed offsets. */
        assert_int_equal(rec_buf[4], (uint8_t)len);
        assert_int_equal(rec_buf[8], 0x08 + li);
        assert_int_equal(rec_buf[15], 0x01);
        assert_int_equal(rec_buf[16], 0xA5);
        ep_wal__hdr d;
        size_t size = 0;
        assert_int_equal(ep_wal__rec_decode(rec_buf, n, 1000, &d, &size), EP_EOK);
        assert_int_equal(size, n);
        assert_int_equal(d.seq, h.seq);
        assert_int_equal(d.len, len);
        assert_int_equal(d.type, 0xA5);
        assert_int_equal(d.flags, 0);
        if (len)
            assert_memory_equal(rec_buf + EP_WAL__REC_HDR, payload, len);
        /* Every prefix needs more. */
        for (size_t k = 0; k < n; k++)
            assert_int_equal(ep_wal__rec_decode(rec_buf, k, 1000, &d, &size), EP_ENEEDMORE);
        /* Every single-bit flip is caught. */
        for (size_t bit = 0; bit < n * 8; bit++) {
            rec_buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            assert_int_not_equal(ep_wal__rec_decode(rec_buf, n, 1000, &d, &size), EP_EOK);
            rec_buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        /* Length above the limit is refused before reading the body. */
        if (len > 1)
            assert_int_equal(ep_wal__rec_decode(rec_buf, n, (uint32_t)len - 1, &d, &size),
                             EP_EMALFORMED);
    }
    /* Zero-filled space (a preallocated or torn block) is not a record. */
    memset(rec_buf, 0, sizeof(rec_buf));
    ep_wal__hdr d;
    size_t size;
    assert_int_equal(ep_wal__rec_decode(rec_buf, sizeof(rec_buf), 1000, &d, &size), EP_EMALFORMED);

    /* Segment header. */
    uint8_t sh[EP_WAL__SEG_HDR];
    int kind;
    uint64_t first;
    ep_wal__seg_hdr_encode(sh, EP_WAL__KIND_SNAP, 12345);
    assert_memory_equal(sh, "EPWALSEG", 8);
    assert_int_equal(ep_wal__seg_hdr_decode(sh, sizeof(sh), &kind, &first), EP_EOK);
    assert_int_equal(kind, EP_WAL__KIND_SNAP);
    assert_int_equal(first, 12345);
    assert_int_equal(ep_wal__seg_hdr_decode(sh, sizeof(sh) - 1, &kind, &first), EP_EMALFORMED);
    for (size_t bit = 0; bit < sizeof(sh) * 8; bit++) {
        sh[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(ep_wal__seg_hdr_decode(sh, sizeof(sh), &kind, &first), EP_EMALFORMED);
        sh[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    char name[48];
    ep_wal__file_name(name, EP_WAL__KIND_LOG, 42, false);
    assert_string_equal(name, "wal-00000000000000000042.log");
    ep_wal__file_name(name, EP_WAL__KIND_SNAP, 7, true);
    assert_string_equal(name, "snap-00000000000000000007.tmp");

    ep_wal_durability dm;
    assert_int_equal(ep_wal_durability_parse("periodic", &dm), EP_EOK);
    assert_int_equal(dm, EP_WAL_PERIODIC);
    assert_int_equal(ep_wal_durability_parse("fast", &dm), EP_EINVAL);
    assert_string_equal(ep_wal_durability_name(EP_WAL_NONE), "none");
}

/* ------------------------------------------------------------ basics */

static void test_append_reopen(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    ep_wal_opts o = opts_for(dir);
    ep_wal *w;
    ep_wal_report rep;
    recs rs = {0};
    assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
    assert_int_equal(rs.n, 0);
    assert_int_equal(rep.records, 0);
    append_n(w, 1, 1000);
    assert_int_equal(ep_wal_sync(w), EP_EOK);
    ep_wal_stats st;
    ep_wal_stats_get(w, &st);
    assert_int_equal(st.next_seq, 1001);
    assert_int_equal(st.synced_seq, 1000);
    assert_int_equal(st.pending_bytes, 0);
    ep_wal_close(w);

    /* A second process-level open of a locked directory is refused. */
    assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
    ep_wal *w2 = NULL;
    assert_int_equal(ep_wal_open(&w2, &o, NULL, NULL, NULL), EP_ESTATE);
    assert_null(w2);
    assert_int_equal(rs.n, 1000);
    check_range(&rs, 0, 1, 1000);
    assert_int_equal(rep.records, 1000);
    assert_int_equal(rep.first_seq, 1);
    assert_int_equal(rep.last_seq, 1000);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.nlosses, 0);
    /* Appends continue the sequence, in a new segment. */
    append_n(w, 1001, 500);
    ep_wal_close(w); /* close flushes without an explicit sync */
    recs_clear(&rs);
    assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
    check_range(&rs, 0, 1, 1500);
    assert_int_equal(rep.segments, 2);
    /* Limits. */
    static uint8_t big[(16u << 20) + 1];
    assert_int_equal(ep_wal_append(w, NULL, 1, big, sizeof(big), NULL, NULL, NULL), EP_ETOOBIG);
    ep_wal_close(w);
    recs_clear(&rs);
    ep_wal_opts bad = opts_for(NULL);
    assert_int_equal(ep_wal_open(&w, &bad, NULL, NULL, NULL), EP_EINVAL);
    tmpdir_free(dir);
}

/* ------------------------------------------------------------ recovery */

static void test_torn_tail_every_offset(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    ep_wal_opts o = opts_for(dir);
    ep_wal *w;
    /* Build 20 records; the last (seq 20) has len_for(20) = 140 bytes. */
    assert_int_equal(ep_wal_open(&w, &o, NULL, NULL, NULL), EP_EOK);
    append_n(w, 1, 20);
    ep_wal_close(w);
    file_list fl;
    list_files(dir, "wal-", &fl);
    assert_int_equal(fl.n, 1);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, fl.names[0]);
    size_t n;
    uint8_t *orig = read_file(path, &n);
    size_t last = EP_WAL__REC_HDR + len_for(20);
    size_t start = n - last;
    size_t expect = EP_WAL__SEG_HDR;
    for (uint64_t s = 1; s < 20; s++)
        expect += EP_WAL__REC_HDR + len_for(s);
    assert_int_equal(start, expect);
    recs rs = {0};
    ep_wal_report rep;
    uint8_t *mod = malloc(n);
    /* Truncated at every byte of the last record. */
    for (size_t cut = start; cut < n; cut++) {
        write_file(path, orig, cut);
        assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
        assert_int_equal(rs.n, 19);
        check_range(&rs, 0, 1, 19);
        assert_int_equal(rep.torn_bytes, cut - start);
        if (cut > start)
            assert_int_equal(rep.torn_offset, start);
        assert_int_equal(rep.nlosses, 0);
        ep_wal_stats st;
        ep_wal_stats_get(w, &st);
        assert_int_equal(st.next_seq, 20);
        ep_wal_close(w);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal((size_t)sb.st_size, start);
        /* Recovery is idempotent: nothing more to drop. */
        recs_clear(&rs);
        assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
        assert_int_equal(rs.n, 19);
        assert_int_equal(rep.torn_bytes, 0);
        ep_wal_close(w);
        recs_clear(&rs);
        /* Drop the segment the reopen may have created (none: nothing appended). */
        list_files(dir, "wal-", &fl);
        assert_int_equal(fl.n, 1);
    }
    /* A corrupt byte anywhere in the last record: the whole record goes. */
    for (size_t at = start; at < n; at++) {
        memcpy(mod, orig, n);
        mod[at] ^= 0x40;
        write_file(path, mod, n);
        assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
        assert_int_equal(rs.n, 19);
        assert_int_equal(rep.torn_bytes, last);
        ep_wal_close(w);
        recs_clear(&rs);
    }
    /* Garbage appended after a complete log, and a torn segment header. */
    memcpy(mod, orig, n);
    write_file(path, orig, n);
    FILE *f = fopen(path, "ab");
    fwrite("\x01\x02\x03garbage", 1, 10, f);
    fclose(f);
    assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
    assert_int_equal(rs.n, 20);
    assert_int_equal(rep.torn_bytes, 10);
    ep_wal_close(w);
    recs_clear(&rs);
    char path2[512];
    snprintf(path2, sizeof(path2), "%s/wal-00000000000000000021.log", dir);
    write_file(path2, orig, 17); /* header cut short: the file is dropped */
    assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
    assert_int_equal(rs.n, 20);
    assert_int_equal(rep.torn_bytes, 17);
    assert_int_equal(rep.torn_file_seq, 21);
    assert_int_equal(access(path2, F_OK), -1);
    ep_wal_close(w);
    recs_clear(&rs);
    free(mod);
    free(orig);
    tmpdir_free(dir);
}

static void test_corrupt_middle_segment(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    ep_wal_opts o = opts_for(dir);
    o.segment_bytes = 4096;
    ep_wal *w;
    assert_int_equal(ep_wal_open(&w, &o, NULL, NULL, NULL), EP_EOK);
    append_n(w, 1, 200);
    ep_wal_close(w);
    file_list fl;
    list_files(dir, "wal-", &fl);
    assert_true(fl.n >= 5);
    uint64_t firsts[256] = {0};
    for (int i = 0; i < fl.n; i++)
        firsts[i] = strtoull(fl.names[i] + 4, NULL, 10);
    /* Corrupt the 3rd record of the 2nd segment. */
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, fl.names[1]);
    size_t n;
    uint8_t *orig = read_file(path, &n);
    size_t off = EP_WAL__SEG_HDR;
    for (uint64_t s = firsts[1]; s < firsts[1] + 2; s++)
        off += EP_WAL__REC_HDR + len_for(s);
    uint8_t *mod = malloc(n);
    memcpy(mod, orig, n);
    mod[off + EP_WAL__REC_HDR - 1] ^= 1; /* a reserved byte */
    mod[off + 9] ^= 0x10;                /* and the seq */
    write_file(path, mod, n);

    recs rs = {0};
    ep_wal_report rep;
    assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
    uint64_t bad = firsts[1] + 2;
    check_range(&rs, 0, 1, bad - 1);
    check_range(&rs, (size_t)(bad - 1), firsts[2], 200);
    assert_int_equal(rs.n, (bad - 1) + (200 - firsts[2] + 1));
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.nlosses, 1);
    assert_false(rep.losses[0].snapshot);
    assert_int_equal(rep.losses[0].file_seq, firsts[1]);
    assert_int_equal(rep.losses[0].offset, off);
    assert_int_equal(rep.losses[0].bytes, n - off);
    assert_int_equal(rep.losses[0].from_seq, bad);
    assert_int_equal(rep.losses[0].to_seq, firsts[2] - 1);
    assert_int_equal(rep.lost_bytes, n - off);
    ep_wal_close(w);
    /* The damaged file is left as it was, for inspection. */
    size_t n2;
    uint8_t *now = read_file(path, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(now, mod, n);
    free(now);
    recs_clear(&rs);

    /* A middle segment whose header is damaged is skipped whole. */
    write_file(path, orig, n);
    snprintf(path, sizeof(path), "%s/%s", dir, fl.names[2]);
    free(orig);
    orig = read_file(path, &n);
    memcpy(mod, orig, 8);
    orig[3] = 'X';
    write_file(path, orig, n);
    assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
    check_range(&rs, 0, 1, firsts[2] - 1);
    check_range(&rs, (size_t)(firsts[2] - 1), firsts[3], 200);
    assert_int_equal(rep.nlosses, 1);
    assert_int_equal(rep.losses[0].offset, 0);
    assert_int_equal(rep.losses[0].bytes, n);
    assert_int_equal(rep.losses[0].from_seq, firsts[2]);
    assert_int_equal(rep.losses[0].to_seq, firsts[3] - 1);
    ep_wal_close(w);
    recs_clear(&rs);
    free(mod);
    free(orig);
    tmpdir_free(dir);
}

static void test_segment_rollover(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    ep_wal_opts o = opts_for(dir);
    o.segment_bytes = 4096;
    ep_wal *w;
    assert_int_equal(ep_wal_open(&w, &o, NULL, NULL, NULL), EP_EOK);
    append_n(w, 1, 300);
    assert_int_equal(ep_wal_sync(w), EP_EOK);
    ep_wal_stats st;
    ep_wal_stats_get(w, &st);
    ep_wal_close(w);
    file_list fl;
    list_files(dir, "wal-", &fl);
    assert_int_equal((int)st.segments, fl.n);
    uint64_t total = 0;
    assert_true(fl.n > 10);
    for (int i = 0; i < fl.n; i++) {
        char path[512];
        size_t n;
        snprintf(path, sizeof(path), "%s/%s", dir, fl.names[i]);
        uint8_t *b = read_file(path, &n);
        assert_true(n <= 4096);
        total += n;
        int kind;
        uint64_t first;
        assert_int_equal(ep_wal__seg_hdr_decode(b, n, &kind, &first), EP_EOK);
        assert_int_equal(first, strtoull(fl.names[i] + 4, NULL, 10));
        ep_wal__hdr h;
        size_t size;
        assert_int_equal(
            ep_wal__rec_decode(b + EP_WAL__SEG_HDR, n - EP_WAL__SEG_HDR, 1 << 20, &h, &size),
            EP_EOK);
        assert_int_equal(h.seq, first); /* named after its first record */
        /* Full except for less than the next record. */
        if (i + 1 < fl.n)
            assert_true(n + EP_WAL__REC_HDR + len_for(strtoull(fl.names[i + 1] + 4, NULL, 10)) >
                        4096);
        free(b);
    }
    assert_int_equal(total, st.disk_bytes);
    recs rs = {0};
    assert_int_equal(ep_wal_open(&w, &o, collect, &rs, NULL), EP_EOK);
    check_range(&rs, 0, 1, 300);
    ep_wal_close(w);
    recs_clear(&rs);
    tmpdir_free(dir);
}

/* ------------------------------------------------------------ compaction */

/* A key/value model: records are "set key = version" (payload key u32,
 * version u32, filler) or "delete key". */
enum { T_SET = 1, T_DEL = 2, NKEYS = 1100 };

typedef struct model {
    uint32_t ver[NKEYS]; /* 0 = absent */
    size_t flen;         /* filler length per value */
} model;

static size_t kv_payload(uint8_t *p, uint32_t key, uint32_t ver, size_t flen)
{
    memcpy(p, &key, 4);
    memcpy(p + 4, &ver, 4);
    fill(p + 8, flen, (uint64_t)key * 1000003u + ver);
    return 8 + flen;
}

static ep_err kv_apply(model *m, uint8_t type, const uint8_t *p, uint32_t len)
{
    uint32_t key, ver;
    if (len < 8)
        return EP_EPROTO;
    memcpy(&key, p, 4);
    memcpy(&ver, p + 4, 4);
    if (key >= NKEYS)
        return EP_EPROTO;
    if (type == T_DEL) {
        m->ver[key] = 0;
        return EP_EOK;
    }
    static uint8_t chk[65536];
    if (len - 8 > sizeof(chk))
        return EP_EPROTO;
    fill(chk, len - 8, (uint64_t)key * 1000003u + ver);
    if (memcmp(chk, p + 8, len - 8) != 0)
        return EP_EPROTO;
    m->ver[key] = ver;
    return EP_EOK;
}

static ep_err kv_replay(void *ud, const ep_wal_rec *r)
{
    return kv_apply(ud, r->type, r->data, r->len);
}

static ep_err kv_op(ep_wal *w, model *m, uint32_t i)
{
    static uint8_t buf[65536 + 8];
    uint32_t key = (i * 7) % 50;
    uint8_t type = i % 10 == 9 ? T_DEL : T_SET;
    size_t n = kv_payload(buf, key, i + 1, type == T_SET ? m->flen : 0);
    ep_err err = ep_wal_append(w, NULL, type, buf, n, NULL, NULL, NULL);
    if (err == EP_EOK)
        m->ver[key] = type == T_SET ? i + 1 : 0;
    return err;
}

typedef struct snap_ctx {
    model *m;
    ep_wal *w;
    uint32_t live_ops; /* ops appended from inside the callback */
} snap_ctx;

static ep_err kv_snapshot(ep_wal_snap *s, void *ud)
{
    snap_ctx *c = ud;
    static uint8_t buf[65536 + 8];
    for (uint32_t k = 0; k < NKEYS; k++) {
        if (!c->m->ver[k])
            continue;
        size_t n = kv_payload(buf, k, c->m->ver[k], c->m->flen);
        ep_err err = ep_wal_snap_put(s, T_SET, buf, n);
        if (err)
            return err;
    }
    /* Appends during the snapshot land after the cut. */
    for (uint32_t j = 0; j < c->live_ops; j++) {
        size_t n = kv_payload(buf, 1000 + j, 77, 16);
        if (ep_wal_append(c->w, NULL, T_SET, buf, n, NULL, NULL, NULL) != EP_EOK)
            return EP_EIO;
        c->m->ver[1000 + j] = 77;
    }
    if (c->live_ops)
        return ep_wal_sync(c->w);
    return EP_EOK;
}

static int kill_target;
static void kill_at(int point)
{
    if (point == kill_target)
        _exit(42);
}

static ep_wal_opts kv_opts(const char *dir, snap_ctx *c)
{
    ep_wal_opts o = opts_for(dir);
    o.segment_bytes = 64 * 1024;
    o.max_record_bytes = 32 * 1024;
    o.snapshot = kv_snapshot;
    o.snapshot_ud = c;
    return o;
}

/* The child: 200 ops, compaction (3 ops appended inside the snapshot
 * callback), 20 more ops. Exits 42 at the kill point, 0 at the end. */
static void kv_child(const char *dir, int point)
{
    static model m;
    memset(&m, 0, sizeof(m));
    m.flen = 24 * 1024; /* 50 keys x 24 KiB: the snapshot spans > 1 buffer */
    snap_ctx c = {.m = &m, .live_ops = 3};
    ep_wal_opts o = kv_opts(dir, &c);
    ep_wal *w;
    kill_target = point;
    ep_wal__kill_hook = kill_at;
    if (ep_wal_open(&w, &o, NULL, NULL, NULL) != EP_EOK)
        _exit(1);
    c.w = w;
    for (uint32_t i = 0; i < 200; i++)
        if (kv_op(w, &m, i) != EP_EOK)
            _exit(2);
    if (ep_wal_sync(w) != EP_EOK)
        _exit(3);
    if (ep_wal_compact(w) != EP_EOK)
        _exit(4);
    for (uint32_t i = 200; i < 220; i++)
        if (kv_op(w, &m, i) != EP_EOK)
            _exit(5);
    ep_wal_close(w);
    _exit(0);
}

/* What the parent expects after the child stopped at `point`. */
static void kv_expected(model *m, int point)
{
    memset(m, 0, sizeof(*m));
    m->flen = 24 * 1024;
    for (uint32_t i = 0; i < 200; i++) {
        uint32_t key = (i * 7) % 50;
        m->ver[key] = i % 10 == 9 ? 0 : i + 1;
    }
    if (point <= EP_WAL__KP_SNAP_PARTIAL)
        return;
    for (uint32_t j = 0; j < 3; j++)
        m->ver[1000 + j] = 77;
    if (point < EP_WAL__KP_COUNT)
        return;
    for (uint32_t i = 200; i < 220; i++) {
        uint32_t key = (i * 7) % 50;
        m->ver[key] = i % 10 == 9 ? 0 : i + 1;
    }
}

static void test_compaction_kill_points(void **state)
{
    (void)state;
    for (int point = EP_WAL__KP_CUT; point <= EP_WAL__KP_COUNT; point++) {
        char *dir = tmpdir_new();
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            kv_child(dir, point);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), point == EP_WAL__KP_COUNT ? 0 : 42);

        static model want, got;
        kv_expected(&want, point);
        memset(&got, 0, sizeof(got));
        got.flen = want.flen;
        snap_ctx c = {.m = &got};
        ep_wal_opts o = kv_opts(dir, &c);
        ep_wal *w;
        ep_wal_report rep;
        assert_int_equal(ep_wal_open(&w, &o, kv_replay, &got, &rep), EP_EOK);
        c.w = w;
        assert_memory_equal(got.ver, want.ver, sizeof(want.ver));
        assert_int_equal(rep.nlosses, 0);
        assert_int_equal(rep.torn_bytes, 0);
        file_list fl;
        list_files(dir, "snap-", &fl);
        if (point >= EP_WAL__KP_RENAMED) {
            /* New generation: one snapshot, nothing older than its base. */
            assert_int_equal(fl.n, 1);
            assert_non_null(strstr(fl.names[0], ".log"));
            assert_true(rep.snapshot_base > 0);
            assert_true(rep.snapshot_records > 0);
            list_files(dir, "wal-", &fl);
            for (int i = 0; i < fl.n; i++)
                assert_true(strtoull(fl.names[i] + 4, NULL, 10) >= rep.snapshot_base);
        } else {
            /* Old generation intact, the temp file gone. */
            assert_int_equal(fl.n, 0);
            assert_int_equal(rep.snapshot_base, 0);
            assert_int_equal(rep.records, 200 + (point > EP_WAL__KP_SNAP_PARTIAL ? 3 : 0));
        }
        /* Compacting again from the recovered state keeps it. */
        assert_int_equal(ep_wal_compact(w), EP_EOK);
        ep_wal_close(w);
        memset(&got, 0, sizeof(got));
        got.flen = want.flen;
        assert_int_equal(ep_wal_open(&w, &o, kv_replay, &got, &rep), EP_EOK);
        assert_memory_equal(got.ver, want.ver, sizeof(want.ver));
        assert_int_equal(rep.records, 0);
        ep_wal_close(w);
        tmpdir_free(dir);
    }
}

typedef struct loop_ctx {
    ep_loop *loop;
} loop_ctx;

static void test_compaction_auto_trigger(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    static model m;
    memset(&m, 0, sizeof(m));
    m.flen = 200;
    snap_ctx c = {.m = &m};
    ep_loop *loop;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    ep_wal_opts o = kv_opts(dir, &c);
    o.segment_bytes = 8192;
    o.compact_min_bytes = 32 * 1024;
    o.compact_ratio = 3;
    o.owner = loop;
    ep_wal *w;
    assert_int_equal(ep_wal_open(&w, &o, NULL, NULL, NULL), EP_EOK);
    c.w = w;
    ep_wal_set_live_bytes(w, 50 * 240);
    for (uint32_t i = 0; i < 3000; i++) {
        assert_int_equal(kv_op(w, &m, i), EP_EOK);
        if (i % 50 == 0)
            ep_loop_run_once(loop, 0); /* the owner loop runs the compaction */
    }
    ep_loop_run_once(loop, 0);
    ep_wal_stats st;
    ep_wal_stats_get(w, &st);
    assert_true(st.compactions >= 3);
    /* The log stays within ratio x live (+ what was appended since). */
    assert_true(st.disk_bytes < 3 * 50 * 240 + 32 * 1024 + 8192);
    ep_wal_close(w);
    ep_loop_run_once(loop, 0);
    ep_loop_free(loop);

    static model got;
    memset(&got, 0, sizeof(got));
    got.flen = 200;
    o.owner = NULL;
    assert_int_equal(ep_wal_open(&w, &o, kv_replay, &got, NULL), EP_EOK);
    assert_memory_equal(got.ver, m.ver, sizeof(m.ver));
    ep_wal_close(w);
    tmpdir_free(dir);
}

static void test_snapshot_corruption(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    static model m;
    memset(&m, 0, sizeof(m));
    m.flen = 100;
    snap_ctx c = {.m = &m};
    ep_wal_opts o = kv_opts(dir, &c);
    ep_wal *w;
    assert_int_equal(ep_wal_open(&w, &o, NULL, NULL, NULL), EP_EOK);
    c.w = w;
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(kv_op(w, &m, i), EP_EOK);
    assert_int_equal(ep_wal_compact(w), EP_EOK);
    for (uint32_t i = 100; i < 110; i++)
        assert_int_equal(kv_op(w, &m, i), EP_EOK);
    ep_wal_close(w);
    file_list fl;
    list_files(dir, "snap-", &fl);
    assert_int_equal(fl.n, 1);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, fl.names[0]);
    size_t n;
    uint8_t *b = read_file(path, &n);
    size_t rec_size = EP_WAL__REC_HDR + 8 + 100;
    b[EP_WAL__SEG_HDR + 3 * rec_size + 30] ^= 0xff; /* 4th record */
    write_file(path, b, n);
    static model got;
    memset(&got, 0, sizeof(got));
    got.flen = 100;
    ep_wal_report rep;
    assert_int_equal(ep_wal_open(&w, &o, kv_replay, &got, &rep), EP_EOK);
    assert_int_equal(rep.snapshot_records, 3);
    assert_int_equal(rep.records, 10);
    assert_int_equal(rep.nlosses, 1);
    assert_true(rep.losses[0].snapshot);
    assert_int_equal(rep.losses[0].from_seq, 3);
    assert_int_equal(rep.losses[0].offset, EP_WAL__SEG_HDR + 3 * rec_size);
    assert_int_equal(rep.losses[0].bytes, n - (EP_WAL__SEG_HDR + 3 * rec_size));
    ep_wal_close(w);
    free(b);
    tmpdir_free(dir);
}

/* ------------------------------------------------------------ disk budget */

static void test_efull_at_budget(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    static model m;
    memset(&m, 0, sizeof(m));
    m.flen = 200;
    snap_ctx c = {.m = &m};
    ep_wal_opts o = kv_opts(dir, &c);
    o.segment_bytes = 16 * 1024;
    o.max_bytes = 64 * 1024;
    ep_wal *w;
    assert_int_equal(ep_wal_open(&w, &o, NULL, NULL, NULL), EP_EOK);
    c.w = w;
    /* Room for a snapshot of the live state stays free: 50 keys. */
    ep_wal_set_live_bytes(w, 50 * (EP_WAL__REC_HDR + 8 + 200));
    uint32_t i = 0;
    ep_err err;
    while ((err = kv_op(w, &m, i)) == EP_EOK)
        i++;
    assert_int_equal(err, EP_EFULL);
    /* About 220 records fit; fewer when the automatic compaction (started
     * at half the budget, on the writer thread) holds its snapshot space
     * at that moment, so only a loose lower bound is timing-proof. */
    assert_true(i > 100);
    ep_wal_stats st;
    ep_wal_stats_get(w, &st);
    assert_true(st.full);
    assert_true(st.rejected_full >= 1);
    /* A rejected append leaves no trace; the budget holds on disk. */
    assert_int_equal(ep_wal_sync(w), EP_EOK);
    assert_int_equal(kv_op(w, &m, i), EP_EFULL);
    file_list fl;
    list_files(dir, "wal-", &fl);
    uint64_t total = 0;
    for (int k = 0; k < fl.n; k++)
        total += fl.size[k];
    assert_true(total <= 64 * 1024);
    ep_wal_stats_get(w, &st);
    assert_int_equal(st.next_seq, i + 1);
    /* Compaction frees the space; appends work again. */
    assert_int_equal(ep_wal_compact(w), EP_EOK);
    ep_wal_stats_get(w, &st);
    assert_false(st.full);
    assert_int_equal(kv_op(w, &m, i), EP_EOK);
    ep_wal_close(w);
    static model got;
    memset(&got, 0, sizeof(got));
    got.flen = 200;
    ep_wal_report rep;
    assert_int_equal(ep_wal_open(&w, &o, kv_replay, &got, &rep), EP_EOK);
    assert_memory_equal(got.ver, m.ver, sizeof(m.ver));
    assert_int_equal(rep.nlosses, 0);
    assert_int_equal(rep.torn_bytes, 0);
    ep_wal_close(w);
    tmpdir_free(dir);
}

typedef struct enospc_ctx {
    atomic_int ok, full, other;
    atomic_uint_least64_t last_status_seq;
    uint8_t status[8192]; /* by seq: 1 ok, 2 full */
} enospc_ctx;

static void enospc_done(void *ud, uint64_t seq, ep_err st)
{
    enospc_ctx *c = ud;
    if (seq < sizeof(c->status))
        c->status[seq] = st == EP_EOK ? 1 : st == EP_EFULL ? 2 : 3;
    if (st == EP_EOK)
        atomic_fetch_add(&c->ok, 1);
    else if (st == EP_EFULL)
        atomic_fetch_add(&c->full, 1);
    else
        atomic_fetch_add(&c->other, 1);
}

static void test_enospc_tmpfs(void **state)
{
    (void)state;
    char *mnt = tmpdir_new();
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        printf("SKIP test_enospc_tmpfs: cannot mount a tmpfs (%s); needs root or "
               "CAP_SYS_ADMIN\n",
               strerror(errno));
        tmpdir_free(mnt);
        skip();
        return;
    }
    char dir[512], ballast[512];
    snprintf(dir, sizeof(dir), "%s/wal", mnt);
    snprintf(ballast, sizeof(ballast), "%s/ballast", mnt);
    /* Leave roughly 200 KiB for the log. */
    static uint8_t blk[4096];
    memset(blk, 0xbb, sizeof(blk));
    FILE *f = fopen(ballast, "wb");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fwrite(blk, 1, sizeof(blk), f);
    fclose(f);

    static enospc_ctx c;
    memset(&c, 0, sizeof(c));
    ep_wal_opts o = opts_for(dir);
    o.segment_bytes = 64 * 1024;
    ep_wal *w;
    assert_int_equal(ep_wal_open(&w, &o, NULL, NULL, NULL), EP_EOK);
    uint8_t buf[3000];
    uint64_t seq = 0;
    ep_err err = EP_EOK;
    int appended = 0;
    for (int i = 0; i < 4000 && atomic_load(&c.full) == 0; i++) {
        size_t len = 500 + (size_t)(i * 97) % 2400;
        fill(buf, len, (uint64_t)i);
        err = ep_wal_append(w, NULL, 1, buf, len, enospc_done, &c, &seq);
        if (err)
            break;
        appended++;
        if (i % 7 == 0)
            ep_wal_sync(w);
    }
    ep_wal_sync(w);
    /* The file system filled up: the records caught in it failed, nothing
     * else did, and new appends are refused for a while. */
    assert_true(atomic_load(&c.full) > 0 || err == EP_EFULL);
    assert_int_equal(atomic_load(&c.other), 0);
    assert_int_equal(atomic_load(&c.ok) + atomic_load(&c.full), appended);
    assert_int_equal(ep_wal_append(w, NULL, 1, buf, 100, NULL, NULL, NULL), EP_EFULL);
    ep_wal_stats st;
    ep_wal_stats_get(w, &st);
    assert_true(st.full);
    assert_int_equal(st.failed, EP_EOK);
    printf("tmpfs: %d records stored, %d refused with EP_EFULL, log %llu bytes\n",
           atomic_load(&c.ok), atomic_load(&c.full), (unsigned long long)st.disk_bytes);

    /* Space comes back: after the retry delay appends succeed again. */
    unlink(ballast);
    usleep(300 * 1000);
    uint64_t okseq = 0;
    assert_int_equal(ep_wal_append(w, NULL, 1, buf, 100, enospc_done, &c, &okseq), EP_EOK);
    assert_int_equal(ep_wal_sync(w), EP_EOK);
    assert_int_equal(c.status[okseq], 1);
    ep_wal_close(w);

    /* On disk: exactly the records that completed OK, no torn bytes. */
    recs rs = {0};
    ep_wal_report rep;
    assert_int_equal(ep_wal_open(&w, &o, collect, &rs, &rep), EP_EOK);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.nlosses, 0);
    assert_int_equal(rs.n, (size_t)atomic_load(&c.ok));
    for (size_t i = 0; i < rs.n; i++)
        assert_int_equal(c.status[rs.v[i].seq], 1);
    ep_wal_close(w);
    recs_clear(&rs);
    assert_int_equal(umount(mnt), 0);
    tmpdir_free(mnt);
}

/* ------------------------------------------------------------ group commit */

typedef struct gc_thread {
    ep_wal *w;
    pthread_t tid;
    uint64_t last_seq;
    int done, n, bad_order, bad_status, not_durable;
} gc_thread;

static void gc_done(void *ud, uint64_t seq, ep_err st)
{
    gc_thread *t = ud;
    ep_wal_stats s;
    ep_wal_stats_get(t->w, &s);
    if (seq <= t->last_seq)
        t->bad_order++;
    if (st != EP_EOK)
        t->bad_status++;
    if (s.synced_seq < seq) /* sync mode: on disk before the callback */
        t->not_durable++;
    t->last_seq = seq;
    t->done++;
}

static void *gc_main(void *arg)
{
    gc_thread *t = arg;
    ep_loop *loop;
    ep_wal_port *port;
    uint8_t buf[200];
    if (ep_loop_new(&loop, NULL) || ep_wal_port_new(&port, t->w, loop))
        return NULL;
    int sent = 0;
    while (t->done < t->n) {
        /* Keep up to 64 appends in flight, like a loop full of publishers. */
        while (sent < t->n && sent - t->done < 64) {
            fill(buf, 100, (uint64_t)sent);
            if (ep_wal_append(t->w, port, 7, buf, 100, gc_done, t, NULL) != EP_EOK)
                t->bad_status++;
            sent++;
        }
        ep_loop_run_once(loop, 100);
    }
    /* Freeing with tickets outstanding waits for them and runs them. */
    ep_wal_append(t->w, port, 7, buf, 10, gc_done, t, NULL);
    ep_wal_port_free(port);
    ep_loop_free(loop);
    return NULL;
}

static void test_group_commit_order(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    ep_wal_opts o = opts_for(dir);
    ep_wal *w;
    assert_int_equal(ep_wal_open(&w, &o, NULL, NULL, NULL), EP_EOK);
    enum { T = 4, N = 3000 };
    static gc_thread th[T];
    for (int i = 0; i < T; i++) {
        memset(&th[i], 0, sizeof(th[i]));
        th[i].w = w;
        th[i].n = N;
        assert_int_equal(pthread_create(&th[i].tid, NULL, gc_main, &th[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i].tid, NULL);
        assert_int_equal(th[i].done, N + 1);
        assert_int_equal(th[i].bad_order, 0);
        assert_int_equal(th[i].bad_status, 0);
        assert_int_equal(th[i].not_durable, 0);
    }
    ep_wal_stats st;
    ep_wal_stats_get(w, &st);
    assert_int_equal(st.appends, T * (N + 1));
    printf("group commit: %llu records, %llu batches, %llu fdatasyncs\n",
           (unsigned long long)st.appends, (unsigned long long)st.batches,
           (unsigned long long)st.fsyncs);
    /* Many publishers shared each fdatasync. */
    assert_true(st.fsyncs * 4 < st.appends);
    ep_wal_close(w);
    tmpdir_free(dir);
}

static atomic_int flusher_calls;
static pthread_t main_tid;
static void direct_done(void *ud, uint64_t seq, ep_err st)
{
    (void)ud;
    (void)seq;
    if (st == EP_EOK && !pthread_equal(pthread_self(), main_tid))
        atomic_fetch_add(&flusher_calls, 1);
}

static void test_modes(void **state)
{
    (void)state;
    main_tid = pthread_self();
    ep_wal_durability modes[] = {EP_WAL_PERIODIC, EP_WAL_NONE, EP_WAL_SYNC};
    for (size_t mi = 0; mi < 3; mi++) {
        char *dir = tmpdir_new();
        ep_wal_opts o = opts_for(dir);
        o.durability = modes[mi];
        o.period_ms = 50;
        ep_wal *w;
        assert_int_equal(ep_wal_open(&w, &o, NULL, NULL, NULL), EP_EOK);
        atomic_store(&flusher_calls, 0);
        uint8_t buf[64];
        uint64_t t0 = ep_clock_mono_ms();
        int n = 0;
        while (ep_clock_mono_ms() - t0 < 400) {
            fill(buf, sizeof(buf), (uint64_t)n);
            assert_int_equal(ep_wal_append(w, NULL, 1, buf, sizeof(buf), direct_done, NULL, NULL),
                             EP_EOK);
            n++;
            if (n % 100 == 0)
                usleep(1000);
        }
        uint64_t elapsed = ep_clock_mono_ms() - t0;
        ep_wal_stats st;
        ep_wal_stats_get(w, &st);
        if (modes[mi] == EP_WAL_PERIODIC)
            assert_true(st.fsyncs <= elapsed / 50 + 2);
        if (modes[mi] == EP_WAL_NONE)
            assert_int_equal(st.fsyncs, 0);
        assert_int_equal(ep_wal_sync(w), EP_EOK);
        ep_wal_stats_get(w, &st);
        assert_int_equal(st.synced_seq, (uint64_t)n);
        assert_int_equal(atomic_load(&flusher_calls), n); /* on the flusher thread */
        ep_wal_close(w);
        recs rs = {0};
        assert_int_equal(ep_wal_open(&w, &o, collect, &rs, NULL), EP_EOK);
        assert_int_equal(rs.n, (size_t)n);
        ep_wal_close(w);
        recs_clear(&rs);
        tmpdir_free(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_record_encode_decode),
        cmocka_unit_test(test_append_reopen),
        cmocka_unit_test(test_torn_tail_every_offset),
        cmocka_unit_test(test_corrupt_middle_segment),
        cmocka_unit_test(test_segment_rollover),
        cmocka_unit_test(test_compaction_kill_points),
        cmocka_unit_test(test_compaction_auto_trigger),
        cmocka_unit_test(test_snapshot_corruption),
        cmocka_unit_test(test_efull_at_budget),
        cmocka_unit_test(test_enospc_tmpfs),
        cmocka_unit_test(test_group_commit_order),
        cmocka_unit_test(test_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
