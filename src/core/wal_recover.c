/*
 * wal_recover.c - startup recovery of the log directory.
 *
 * Order of work:
 *   1. List the directory: wal-<seq>.log, snap-<seq>.log, snap-<seq>.tmp.
 *      Temp files are leftovers of an interrupted compaction: deleted.
 *   2. The snapshot with the highest base wins. It was renamed into place
 *      only after being fsynced, so it is complete; older snapshots and log
 *      segments that start below its base are obsolete: deleted.
 *   3. Replay the snapshot, then each segment in sequence order. Every
 *      record is checked (length bound before any read, CRC-32C, sequence
 *      strictly increasing and inside the segment's range).
 *   4. The first bad record of the LAST segment is a torn tail: the file is
 *      truncated there (and fsynced) and the dropped bytes reported. A bad
 *      record anywhere else cannot be a torn write (later files exist), so
 *      the rest of that file is skipped and reported as a loss with its
 *      sequence range; the file is left untouched for inspection, and a
 *      later compaction removes it.
 * Read errors are treated like corruption but never cause truncation.
 * The writer never appends to a recovered segment: new records go to a new
 * segment starting at next_seq, so nothing is ever written after bytes
 * that were not verified.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/wal.h"

enum { KIND_TMP = 9, READ_CHUNK = 1 << 20 };

void ep_wal__file_name(char dst[48], int kind, uint64_t seq, bool tmp)
{
    snprintf(dst, 48, "%s-%020" PRIu64 ".%s", kind == EP_WAL__KIND_SNAP ? "snap" : "wal", seq,
             tmp ? "tmp" : "log");
}

/* parse_name recognises exactly the names ep_wal__file_name produces. */
static int parse_name(const char *n, int *kind, uint64_t *seq)
{
    size_t plen;
    if (strncmp(n, "wal-", 4) == 0) {
        *kind = EP_WAL__KIND_LOG;
        plen = 4;
    } else if (strncmp(n, "snap-", 5) == 0) {
        *kind = EP_WAL__KIND_SNAP;
        plen = 5;
    } else {
        return 0;
    }
    const char *d = n + plen;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (d[i] < '0' || d[i] > '9')
            return 0;
        unsigned dig = (unsigned)(d[i] - '0');
        if (v > (UINT64_MAX - dig) / 10)
            return 0;
        v = v * 10 + dig;
    }
    if (strcmp(d + 20, ".log") == 0) {
        /* as is */
    } else if (*kind == EP_WAL__KIND_SNAP && strcmp(d + 20, ".tmp") == 0) {
        *kind = KIND_TMP;
    } else {
        return 0;
    }
    *seq = v;
    return 1;
}

static int file_cmp(const void *a, const void *b)
{
    const ep_wal__file *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind == EP_WAL__KIND_SNAP ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Buffered sequential reader over one file. */
typedef struct scan {
    int fd;
    uint64_t size;
    uint8_t *buf;
    size_t cap, pos, end;
    uint64_t base; /* file offset of buf[0] */
    uint64_t good; /* offset just past the last accepted header/record */
    uint32_t max_len;
} scan;

enum { SCAN_EOF = 0, SCAN_REC = 1, SCAN_BAD = 2, SCAN_IOERR = 3 };

/* fill makes at least `need` bytes available from pos (need <= bytes left
 * in the file). Returns EP_EOK, EP_ENOMEM or EP_EIO. */
static ep_err fill(scan *s, size_t need)
{
    if (s->end - s->pos >= need)
        return EP_EOK;
    if (s->pos) {
        memmove(s->buf, s->buf + s->pos, s->end - s->pos);
        s->base += s->pos;
        s->end -= s->pos;
        s->pos = 0;
    }
    if (need > s->cap) {
        size_t cap = need > READ_CHUNK ? need : READ_CHUNK;
        uint8_t *nb = realloc(s->buf, cap);
        if (nb == NULL)
            return EP_ENOMEM;
        s->buf = nb;
        s->cap = cap;
    }
    while (s->end < need) {
        ssize_t r = pread(s->fd, s->buf + s->end, s->cap - s->end, (off_t)(s->base + s->end));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return EP_EIO; /* error, or the file shrank under us */
        s->end += (size_t)r;
    }
    return EP_EOK;
}

/* scan_next reads the next record. Returns SCAN_* or a negative ep_err
 * (only EP_ENOMEM). */
static int scan_next(scan *s, ep_wal__hdr *h, const uint8_t **payload)
{
    uint64_t left = s->size - (s->base + s->pos);
    if (left == 0)
        return SCAN_EOF;
    size_t need = EP_WAL__REC_HDR;
    for (;;) {
        size_t avail = s->end - s->pos;
        const uint8_t *at = s->buf ? s->buf + s->pos : NULL; /* NULL only when avail == 0 */
        ep_err e = ep_wal__rec_decode(at, avail, s->max_len, h, &need);
        if (e == EP_EOK) {
            *payload = s->buf + s->pos + EP_WAL__REC_HDR;
            s->pos += need;
            s->good = s->base + s->pos;
            return SCAN_REC;
        }
        if (e != EP_ENEEDMORE || need > left)
            return SCAN_BAD;
        e = fill(s, need);
        if (e == EP_ENOMEM)
            return EP_ENOMEM;
        if (e != EP_EOK)
            return SCAN_IOERR;
    }
}

typedef struct rec_ctx {
    ep_wal_replay_fn fn;
    void *ud;
    ep_wal_report *rep;
} rec_ctx;

static void add_loss(ep_wal_report *rep, const ep_wal_loss *l)
{
    if (rep->nlosses < EP_WAL_MAX_LOSSES)
        rep->losses[rep->nlosses] = *l;
    rep->nlosses++;
    rep->lost_bytes += l->bytes;
}

static ep_err fsync_dir(int dirfd) { return fsync(dirfd) == 0 ? EP_EOK : EP_EIO; }

static int unlink_file(int dirfd, int kind, uint64_t seq)
{
    char name[48];
    ep_wal__file_name(name, kind == KIND_TMP ? EP_WAL__KIND_SNAP : kind, seq, kind == KIND_TMP);
    return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT;
}

/* header_ok tells whether a log file starts with a valid header naming it.
 * A read error counts as valid: the scan then reports it as a loss
 * instead of deleting the file. */
static bool header_ok(int dirfd, const ep_wal__file *f)
{
    char name[48];
    uint8_t hdr[EP_WAL__SEG_HDR];
    int kind;
    uint64_t first;
    if (f->bytes < EP_WAL__SEG_HDR)
        return false;
    ep_wal__file_name(name, EP_WAL__KIND_LOG, f->seq, false);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t r = pread(fd, hdr, sizeof(hdr), 0);
    close(fd);
    if (r != (ssize_t)sizeof(hdr))
        return r >= 0 ? false : true;
    return ep_wal__seg_hdr_decode(hdr, sizeof(hdr), &kind, &first) == EP_EOK &&
           kind == EP_WAL__KIND_LOG && first == f->seq;
}

/* Replays one snapshot file. Every problem is a loss: the file is never
 * modified. */
static ep_err replay_snapshot(int dirfd, scan *s, ep_wal__file *f, rec_ctx *c)
{
    char name[48];
    uint8_t hdr[EP_WAL__SEG_HDR];
    uint64_t count = 0;
    int kind, st = SCAN_BAD;
    uint64_t first;
    ep_err err = EP_EOK;
    bool ended = false;
    ep_wal__file_name(name, EP_WAL__KIND_SNAP, f->seq, false);
    s->fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    s->size = f->bytes;
    s->pos = s->end = 0;
    s->base = s->good = 0;
    if (s->fd < 0 || pread(s->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
        ep_wal__seg_hdr_decode(hdr, sizeof(hdr), &kind, &first) != EP_EOK ||
        kind != EP_WAL__KIND_SNAP || first != f->seq)
        goto bad;
    s->base = s->good = EP_WAL__SEG_HDR;
    c->rep->bytes += EP_WAL__SEG_HDR;
    for (;;) {
        ep_wal__hdr h;
        const uint8_t *p;
        st = scan_next(s, &h, &p);
        if (st < 0) {
            err = st;
            goto out;
        }
        if (st != SCAN_REC)
            break;
        if (ended || h.seq != count) {
            st = SCAN_BAD;
            break;
        }
        if (h.flags & EP_WAL__F_META) {
            /* Trailer: count u64, base u64, data bytes u64. */
            uint64_t v[3] = {0, 0, 0};
            if (h.type != EP_WAL__META_SNAP_END || h.len != 24) {
                st = SCAN_BAD;
                break;
            }
            for (int i = 0; i < 3; i++)
                for (int b = 7; b >= 0; b--)
                    v[i] = v[i] << 8 | p[i * 8 + b];
            if (v[0] != count || v[1] != f->seq) {
                st = SCAN_BAD;
                break;
            }
            ended = true;
            c->rep->bytes += EP_WAL__REC_HDR + h.len;
            continue;
        }
        ep_wal_rec r = {
            .seq = h.seq, .data = h.len ? p : NULL, .len = h.len, .type = h.type, .snapshot = true};
        if (c->fn && (err = c->fn(c->ud, &r)) != EP_EOK)
            goto out;
        c->rep->snapshot_records++;
        c->rep->bytes += EP_WAL__REC_HDR + h.len;
        count++;
    }
    if (st == SCAN_EOF && ended)
        goto out;
bad:
    /* Snapshot records are indexed from 0; how many followed the damage
     * is unknown, so to_seq is UINT64_MAX. */
    add_loss(c->rep, &(ep_wal_loss){.file_seq = f->seq,
                                    .snapshot = true,
                                    .offset = s->good,
                                    .bytes = f->bytes - s->good,
                                    .from_seq = count,
                                    .to_seq = UINT64_MAX});
out:
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    return err;
}

/* Replays one log segment. *prev is the last seq delivered; next_first is
 * the first seq of the following segment (0 for the last one). Sets
 * *remove when the last segment had no valid header (deleted by caller). */
static ep_err replay_segment(int dirfd, scan *s, ep_wal__file *f, uint64_t next_first,
                             uint64_t *prev, rec_ctx *c, bool *remove)
{
    char name[48];
    uint8_t hdr[EP_WAL__SEG_HDR];
    int kind, st = SCAN_BAD;
    uint64_t first;
    ep_err err = EP_EOK;
    bool last = next_first == 0;
    ep_wal__file_name(name, EP_WAL__KIND_LOG, f->seq, false);
    *remove = false;
    s->fd = openat(dirfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    s->size = f->bytes;
    s->pos = s->end = 0;
    s->base = s->good = 0;
    if (s->fd < 0) {
        st = SCAN_IOERR;
        goto bad;
    }
    if (pread(s->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
        ep_wal__seg_hdr_decode(hdr, sizeof(hdr), &kind, &first) != EP_EOK ||
        kind != EP_WAL__KIND_LOG || first != f->seq)
        goto bad;
    s->base = s->good = EP_WAL__SEG_HDR;
    c->rep->bytes += EP_WAL__SEG_HDR;
    c->rep->segments++;
    for (;;) {
        ep_wal__hdr h;
        const uint8_t *p;
        st = scan_next(s, &h, &p);
        if (st < 0) {
            err = st;
            goto out;
        }
        if (st != SCAN_REC)
            break;
        if (h.seq <= *prev || h.seq < f->seq || (next_first && h.seq >= next_first) ||
            (h.flags & EP_WAL__F_META)) {
            st = SCAN_BAD;
            break;
        }
        ep_wal_rec r = {.seq = h.seq,
                        .data = h.len ? p : NULL,
                        .len = h.len,
                        .type = h.type,
                        .snapshot = false};
        if (c->fn && (err = c->fn(c->ud, &r)) != EP_EOK)
            goto out;
        if (c->rep->records++ == 0)
            c->rep->first_seq = h.seq;
        c->rep->last_seq = h.seq;
        c->rep->bytes += EP_WAL__REC_HDR + h.len;
        *prev = h.seq;
    }
    if (st == SCAN_EOF)
        goto out;
bad:
    if (last && st != SCAN_IOERR) {
        /* Torn tail. A segment whose header never made it is dropped. */
        c->rep->torn_bytes += f->bytes - s->good;
        c->rep->torn_offset = s->good;
        c->rep->torn_file_seq = f->seq;
        if (s->good == 0) {
            *remove = true;
        } else if (ftruncate(s->fd, (off_t)s->good) != 0 || fdatasync(s->fd) != 0) {
            err = EP_EIO;
            goto out;
        }
        f->bytes = s->good;
    } else {
        add_loss(c->rep, &(ep_wal_loss){.file_seq = f->seq,
                                        .snapshot = false,
                                        .offset = s->good,
                                        .bytes = f->bytes - s->good,
                                        .from_seq = *prev + 1,
                                        .to_seq = last ? UINT64_MAX : next_first - 1});
    }
out:
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    return err;
}

ep_err ep_wal__recover(int dirfd, uint32_t max_record, ep_wal_replay_fn fn, void *ud,
                       ep_wal_report *rep, ep_wal__recovered *out)
{
    ep_wal__file *files = NULL;
    size_t n = 0, cap = 0;
    ep_err err = EP_EOK;
    bool dirty = false;
    scan s = {.fd = -1, .max_len = max_record};
    rec_ctx c = {.fn = fn, .ud = ud, .rep = rep};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(rep, 0, sizeof(*rep));
    memset(out, 0, sizeof(*out));

    int dfd = dup(dirfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        if (dfd >= 0)
            close(dfd);
        return EP_EIO;
    }
    rewinddir(d); /* the dup shares dirfd's position with earlier scans */
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int kind;
        uint64_t seq;
        struct stat st;
        if (!parse_name(de->d_name, &kind, &seq))
            continue;
        if (kind == KIND_TMP) {
            if (unlink_file(dirfd, kind, seq)) {
                rep->removed_files++;
                dirty = true;
            }
            continue;
        }
        if (fstatat(dirfd, de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            ep_wal__file *nf = realloc(files, nc * sizeof(*nf));
            if (nf == NULL) {
                err = EP_ENOMEM;
                break;
            }
            files = nf;
            cap = nc;
        }
        files[n++] = (ep_wal__file){.seq = seq, .bytes = (uint64_t)st.st_size, .kind = kind};
    }
    closedir(d);
    if (err)
        goto fail;
    if (n)
        qsort(files, n, sizeof(*files), file_cmp);

    /* The newest snapshot wins; drop what it replaces. */
    uint64_t base = 0;
    size_t nsnap = 0;
    while (nsnap < n && files[nsnap].kind == EP_WAL__KIND_SNAP)
        nsnap++;
    if (nsnap)
        base = files[nsnap - 1].seq;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool obsolete = (files[i].kind == EP_WAL__KIND_SNAP && i + 1 < nsnap) ||
                        (files[i].kind == EP_WAL__KIND_LOG && files[i].seq < base);
        if (obsolete) {
            if (!unlink_file(dirfd, files[i].kind, files[i].seq)) {
                err = EP_EIO;
                goto fail;
            }
            rep->removed_files++;
            dirty = true;
            continue;
        }
        files[k++] = files[i];
    }
    n = k;

    /* A log file at the end without a valid header was being created when
     * the process died (creation follows the sealing of its predecessor):
     * drop it first, so that the segment before it is treated as the last
     * one - the same verdict a second recovery would reach. */
    while (n > 0 && files[n - 1].kind == EP_WAL__KIND_LOG && !header_ok(dirfd, &files[n - 1])) {
        if (!unlink_file(dirfd, EP_WAL__KIND_LOG, files[n - 1].seq)) {
            err = EP_EIO;
            goto fail;
        }
        rep->torn_bytes += files[n - 1].bytes;
        rep->torn_offset = 0;
        rep->torn_file_seq = files[n - 1].seq;
        dirty = true;
        n--;
    }

    uint64_t prev = 0;
    size_t i = 0;
    if (nsnap) {
        rep->snapshot_base = base;
        out->snap_bytes = files[0].bytes;
        if ((err = replay_snapshot(dirfd, &s, &files[0], &c)) != EP_EOK)
            goto fail;
        prev = base - (base > 0);
        i = 1;
    }
    uint64_t max_first = 0;
    for (; i < n; i++) {
        bool remove;
        uint64_t next_first = i + 1 < n ? files[i + 1].seq : 0;
        max_first = files[i].seq;
        if ((err = replay_segment(dirfd, &s, &files[i], next_first, &prev, &c, &remove)) != EP_EOK)
            goto fail;
        if (rep->torn_bytes)
            dirty = true;
        if (remove) {
            if (!unlink_file(dirfd, EP_WAL__KIND_LOG, files[i].seq)) {
                err = EP_EIO;
                goto fail;
            }
            n--;
        }
    }
    if (dirty && (err = fsync_dir(dirfd)) != EP_EOK)
        goto fail;

    uint64_t next = prev + 1;
    if (next < base)
        next = base;
    if (max_first && next <= max_first)
        next = max_first + 1;
    if (next == 0)
        next = 1;
    out->next_seq = next;
    out->files = files;
    out->nfiles = n;
    free(s.buf);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rep->elapsed_us =
        (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000u + (uint64_t)(t1.tv_nsec - t0.tv_nsec) / 1000u;
    return EP_EOK;
fail:
    free(s.buf);
    free(files);
    memset(out, 0, sizeof(*out));
    return err;
}
