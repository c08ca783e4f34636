/*
 * wal.c - the log writer: appends, group commit, segments, disk budget,
 * compaction. Format in wal_format.c, recovery in wal_recover.c; the
 * contract is in wal.h and the guarantees in docs/persistence.md.
 *
 * Design notes:
 * - Appenders (any thread) take `lock`, check the budget, take the next
 *   sequence number and copy the record (CRC still zero) into `pending`,
 *   with one entry {seq, offset, size, callback} per record. Nothing else
 *   happens under the lock; the flusher is signalled only on the
 *   empty -> non-empty transition.
 * - The flusher thread swaps `pending` for its own empty batch (double
 *   buffering, so appends never wait for I/O), seals the CRCs, writes the
 *   batch with one write() per segment touched and, in sync mode, one
 *   fdatasync() for the whole batch: everything appended while the previous
 *   fdatasync ran shares the next one (group commit).
 * - Completions go to the appender's port (an ep_mailbox drained on its
 *   loop: one wakeup per loop per batch, in seq order) or, without a port,
 *   are called on the flusher thread.
 * - The flusher decides segment boundaries: a record goes to the active
 *   segment if it fits, else the segment is fdatasynced, closed, and a new
 *   wal-<seq>.log is created (header written, directory fsynced).
 * - A failed write (ENOSPC or short write) is truncated away before anything
 *   else is written, so no partial record ever precedes a later one; the
 *   records of that batch complete with EP_EFULL and their seqs are burnt.
 *   A failed fdatasync is not retried (the kernel may have dropped the dirty
 *   pages): the log fails with EP_EIO and must be reopened.
 * - Disk budget: files on disk + unwritten backlog + a snapshot being built
 *   + a bound on segment headers must stay <= max_bytes; the check happens
 *   before the record is accepted, so a refused append leaves no trace.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/wal.h"

void (*ep_wal__kill_hook)(int point);

#define KILL_POINT(p)                                                                              \
    do {                                                                                           \
        if (ep_wal__kill_hook)                                                                     \
            ep_wal__kill_hook(p);                                                                  \
    } while (0)

enum {
    DEF_SEGMENT = 64u << 20,
    MIN_SEGMENT = 4096,
    DEF_RECORD = 16u << 20,
    DEF_PENDING = 64u << 20,
    DEF_PERIOD_MS = 100,
    DEF_RATIO = 4,
    ENOSPC_RETRY_MS = 250,
    SNAP_BUF = 1u << 20,
};

typedef struct entry {
    uint64_t seq;
    size_t off;
    size_t size;
    ep_wal_done_fn cb;
    void *ud;
    ep_wal_port *port;
    ep_err status; /* set by the flusher */
} entry;

typedef struct batch {
    uint8_t *buf;
    size_t len, cap;
    entry *ent;
    size_t n, ecap;
} batch;

typedef struct port_item {
    ep_wal_done_fn cb;
    void *ud;
    uint64_t seq;
    ep_err status;
} port_item;

struct ep_wal_port {
    ep_wal *w;
    ep_mailbox *mb;
    size_t inflight; /* entries not yet pushed to mb; guarded by w->lock */
};

typedef struct compact_token {
    ep_wal *w; /* NULL once the log is closed; owner thread only */
} compact_token;

struct ep_wal_snap {
    ep_wal *w;
    int fd;
    uint8_t *buf;
    size_t len, cap;
    uint64_t count;    /* records put */
    uint64_t written;  /* bytes written to the file */
    uint64_t reserved; /* bytes reserved against the budget */
    bool partial_hit;
};

struct ep_wal {
    ep_wal_opts o;
    char *dir;
    int dirfd, lockfd;
    pthread_t flusher;
    bool flusher_started;
    pthread_mutex_t lock;
    pthread_cond_t cv_work; /* flusher waits here */
    pthread_cond_t cv_done; /* progress: sync, port_free, compaction wait here */

    /* Guarded by lock. */
    batch pending;
    uint64_t next_seq;
    uint64_t written_seq, synced_seq;
    uint64_t sync_req;  /* flusher must fdatasync up to here */
    uint64_t roll_req;  /* flusher must close a segment that starts below */
    uint64_t rolled;    /* last roll_req done */
    uint64_t unwritten; /* bytes in pending + the batch being written */
    uint64_t disk_bytes;
    uint64_t snap_reserved;
    ep_wal__file *files; /* snapshot first, then log segments by seq */
    size_t nfiles, fcap;
    uint64_t live_bytes;
    bool live_set;
    bool full_enospc;
    uint64_t full_until_ms;
    bool budget_full; /* last append refused by the budget; cleared when space frees */
    bool compacting, compact_posted, stop;
    compact_token *token;
    ep_err failed;
    uint64_t appends, batches, fsyncs, compactions, rejected_full, failed_enospc;

    /* Flusher thread only. */
    batch flushing;
    port_item *items;
    size_t icap;
    int fd;
    uint64_t seg_first, seg_bytes;
    uint64_t last_sync_ms;
    bool unsynced;
};

/* ---------------------------------------------------------------- helpers */

static void batch_fini(batch *b)
{
    free(b->buf);
    free(b->ent);
    memset(b, 0, sizeof(*b));
}

static ep_err batch_reserve(batch *b, size_t bytes)
{
    if (b->len + bytes > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->len + bytes)
            cap *= 2;
        uint8_t *nb = realloc(b->buf, cap);
        if (nb == NULL)
            return EP_ENOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    if (b->n == b->ecap) {
        size_t cap = b->ecap ? b->ecap * 2 : 1024;
        entry *ne = realloc(b->ent, cap * sizeof(*ne));
        if (ne == NULL)
            return EP_ENOMEM;
        b->ent = ne;
        b->ecap = cap;
    }
    return EP_EOK;
}

/* Positioned writes: after a failed write is truncated away, the next one
 * lands exactly at the new end (a plain write() would leave a hole). */
static ep_err write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t r = pwrite(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno == ENOSPC || errno == EDQUOT || errno == EFBIG ? EP_EFULL : EP_EIO;
        }
        if (r == 0)
            return EP_EIO;
        p += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return EP_EOK;
}

static ep_err files_add(ep_wal *w, ep_wal__file f) /* locked */
{
    if (w->nfiles == w->fcap) {
        size_t cap = w->fcap ? w->fcap * 2 : 16;
        ep_wal__file *nf = realloc(w->files, cap * sizeof(*nf));
        if (nf == NULL)
            return EP_ENOMEM;
        w->files = nf;
        w->fcap = cap;
    }
    if (f.kind == EP_WAL__KIND_SNAP) {
        memmove(w->files + 1, w->files, w->nfiles * sizeof(*w->files));
        w->files[0] = f;
    } else {
        w->files[w->nfiles] = f;
    }
    w->nfiles++;
    return EP_EOK;
}

/* Upper bound of segment-header bytes that `bytes` of records may need. */
static uint64_t seg_overhead(const ep_wal *w, uint64_t bytes)
{
    return (uint64_t)EP_WAL__SEG_HDR * (2 + bytes / (w->o.segment_bytes - EP_WAL__SEG_HDR));
}

/* Room kept free for one snapshot, so that a compaction can still run
 * when appends are refused: the live estimate, or max_bytes / 8 while no
 * estimate exists. Not reserved while a compaction runs (it uses it). */
static uint64_t snapshot_headroom(const ep_wal *w) /* locked */
{
    if (w->o.snapshot == NULL || w->compacting)
        return 0;
    uint64_t h = w->live_bytes ? w->live_bytes : w->o.max_bytes / 8;
    return h + 2 * EP_WAL__SEG_HDR + EP_WAL__REC_HDR + 24;
}

static bool compact_wanted(const ep_wal *w) /* locked */
{
    uint64_t total = w->disk_bytes + w->unwritten;
    uint64_t live = w->live_bytes;
    if (w->o.snapshot == NULL)
        return false;
    if (total > w->o.compact_min_bytes && total > (uint64_t)w->o.compact_ratio * live)
        return true;
    return w->o.max_bytes && total > w->o.max_bytes / 2 && total > 2 * live;
}

static void compact_post_cb(ep_loop *loop, void *arg)
{
    compact_token *t = arg;
    (void)loop;
    if (t->w == NULL) {
        free(t);
        return;
    }
    ep_wal *w = t->w;
    pthread_mutex_lock(&w->lock);
    w->compact_posted = false;
    bool want = compact_wanted(w) && !w->compacting;
    pthread_mutex_unlock(&w->lock);
    if (want)
        (void)ep_wal_compact(w); /* failures show in the stats; retried on a later append */
}

static void maybe_request_compaction(ep_wal *w) /* locked */
{
    if (w->o.owner == NULL || w->token == NULL || w->compact_posted || w->compacting ||
        !compact_wanted(w))
        return;
    if (ep_loop_post(w->o.owner, compact_post_cb, w->token) == EP_EOK)
        w->compact_posted = true;
}

/* ---------------------------------------------------------------- flusher */

static ep_err open_segment(ep_wal *w, uint64_t first)
{
    char name[48];
    uint8_t hdr[EP_WAL__SEG_HDR];
    ep_wal__file_name(name, EP_WAL__KIND_LOG, first, false);
    int fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == ENOSPC || errno == EDQUOT ? EP_EFULL : EP_EIO;
    ep_wal__seg_hdr_encode(hdr, EP_WAL__KIND_LOG, first);
    ep_err err = write_all(fd, hdr, sizeof(hdr), 0);
    if (err == EP_EOK && fsync(w->dirfd) != 0)
        err = EP_EIO;
    if (err) {
        close(fd);
        (void)unlinkat(w->dirfd, name, 0);
        return err;
    }
    pthread_mutex_lock(&w->lock);
    err = files_add(
        w, (ep_wal__file){.seq = first, .bytes = EP_WAL__SEG_HDR, .kind = EP_WAL__KIND_LOG});
    if (err == EP_EOK)
        w->disk_bytes += EP_WAL__SEG_HDR;
    pthread_mutex_unlock(&w->lock);
    if (err) {
        close(fd);
        (void)unlinkat(w->dirfd, name, 0);
        return err;
    }
    w->fd = fd;
    w->seg_first = first;
    w->seg_bytes = EP_WAL__SEG_HDR;
    w->unsynced = true;
    return EP_EOK;
}

static ep_err do_sync(ep_wal *w)
{
    if (w->fd >= 0 && w->unsynced) {
        if (fdatasync(w->fd) != 0)
            return EP_EIO;
        pthread_mutex_lock(&w->lock);
        w->fsyncs++;
        pthread_mutex_unlock(&w->lock);
    }
    w->unsynced = false;
    w->last_sync_ms = ep_clock_mono_ms();
    return EP_EOK;
}

/* Seal the active segment: fdatasync and close (every mode, so a sealed
 * segment is always complete on disk). */
static ep_err seal_segment(ep_wal *w)
{
    ep_err err = do_sync(w);
    close(w->fd);
    w->fd = -1;
    return err;
}

/* Records the new size of the active segment (the last log file). */
static void account_written(ep_wal *w, uint64_t bytes) /* locked */
{
    w->disk_bytes += bytes;
    for (size_t i = w->nfiles; i-- > 0;) {
        if (w->files[i].kind == EP_WAL__KIND_LOG && w->files[i].seq == w->seg_first) {
            w->files[i].bytes += bytes;
            break;
        }
    }
}

static void fail_from(batch *b, size_t i, ep_err err)
{
    for (; i < b->n; i++)
        b->ent[i].status = err;
}

/* Writes one batch. Sets every entry's status. Returns EP_EIO if the log
 * must stop (fsync or truncate failure), EP_EFULL after ENOSPC, else EOK. */
static ep_err flush_batch(ep_wal *w, batch *b, uint64_t roll, bool want_sync)
{
    ep_err ret = EP_EOK;
    size_t i = 0;
    for (size_t k = 0; k < b->n; k++)
        b->ent[k].status = EP_EOK;
    if (w->fd >= 0 && w->seg_first < roll && (b->n == 0 || b->ent[0].seq >= roll)) {
        if ((ret = seal_segment(w)) != EP_EOK)
            goto fatal;
    }
    while (i < b->n) {
        if (w->fd < 0) {
            ep_err e = open_segment(w, b->ent[i].seq);
            if (e) {
                fail_from(b, i, e == EP_EFULL ? EP_EFULL : EP_EIO);
                ret = e == EP_EFULL ? EP_EFULL : EP_EOK;
                break;
            }
        }
        size_t j = i;
        uint64_t bytes = 0;
        while (j < b->n) {
            const entry *e = &b->ent[j];
            bool empty = w->seg_bytes + bytes == EP_WAL__SEG_HDR;
            if (!empty && w->seg_bytes + bytes + e->size > w->o.segment_bytes)
                break;
            if (w->seg_first < roll && e->seq >= roll)
                break;
            ep_wal__rec_seal(b->buf + e->off, e->size);
            bytes += e->size;
            j++;
        }
        if (j > i) {
            ep_err e = write_all(w->fd, b->buf + b->ent[i].off, (size_t)bytes, w->seg_bytes);
            if (e) {
                /* Cut the partial write off before anything else lands. */
                if (ftruncate(w->fd, (off_t)w->seg_bytes) != 0) {
                    ret = EP_EIO;
                    goto fatal;
                }
                fail_from(b, i, e);
                ret = e == EP_EFULL ? EP_EFULL : EP_EIO;
                if (ret == EP_EIO)
                    goto fatal;
                break;
            }
            w->seg_bytes += bytes;
            w->unsynced = true;
            pthread_mutex_lock(&w->lock);
            account_written(w, bytes);
            pthread_mutex_unlock(&w->lock);
            i = j;
        }
        if (i < b->n && (ret = seal_segment(w)) != EP_EOK)
            goto fatal;
    }
    if (w->fd >= 0 && w->seg_first < roll && (ret = seal_segment(w)) != EP_EOK)
        goto fatal;
    if (want_sync) {
        ep_err e = do_sync(w);
        if (e) {
            ret = e;
            goto fatal;
        }
    }
    return ret;
fatal:
    /* Nothing of this batch can be trusted to be on disk. */
    fail_from(b, 0, EP_EIO);
    return EP_EIO;
}

static void deliver(ep_wal *w, batch *b)
{
    size_t i = 0;
    while (i < b->n) {
        entry *e = &b->ent[i];
        if (e->cb == NULL) {
            i++;
            continue;
        }
        if (e->port == NULL) {
            e->cb(e->ud, e->seq, e->status);
            i++;
            continue;
        }
        /* A run of entries for the same port goes in with one push. */
        ep_wal_port *p = e->port;
        size_t k = 0;
        for (size_t j = i; j < b->n && (b->ent[j].port == p || b->ent[j].cb == NULL); j++) {
            if (b->ent[j].cb == NULL)
                continue;
            if (k == w->icap) {
                size_t cap = w->icap ? w->icap * 2 : 256;
                port_item *ni = realloc(w->items, cap * sizeof(*ni));
                if (ni == NULL)
                    break;
                w->items = ni;
                w->icap = cap;
            }
            w->items[k++] =
                (port_item){b->ent[j].cb, b->ent[j].ud, b->ent[j].seq, b->ent[j].status};
            i = j + 1;
        }
        if (k == 0) {
            /* Could not even grow the scratch array: push one by one. */
            port_item it = {e->cb, e->ud, e->seq, e->status};
            while (ep_mailbox_push(p->mb, &it) != EP_EOK)
                nanosleep(&(struct timespec){0, 1000000}, NULL);
            i++;
            continue;
        }
        while (ep_mailbox_push_many(p->mb, w->items, k) != EP_EOK)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

static bool periodic_due(const ep_wal *w, uint64_t now)
{
    return w->o.durability == EP_WAL_PERIODIC && w->unsynced && w->fd >= 0 &&
           now >= w->last_sync_ms + w->o.period_ms;
}

static bool has_work(const ep_wal *w) /* locked */
{
    return w->pending.n || w->sync_req > w->synced_seq || w->roll_req > w->rolled;
}

static void *flusher_main(void *arg)
{
    ep_wal *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        uint64_t now = ep_clock_mono_ms();
        while (!has_work(w) && !periodic_due(w, now)) {
            if (w->stop)
                goto out;
            if (w->o.durability == EP_WAL_PERIODIC && w->unsynced && w->fd >= 0) {
                uint64_t due = w->last_sync_ms + w->o.period_ms;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t wait_ms = due > now ? due - now : 0;
                ts.tv_sec += (time_t)(wait_ms / 1000);
                ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&w->cv_work, &w->lock, &ts);
            } else {
                pthread_cond_wait(&w->cv_work, &w->lock);
            }
            now = ep_clock_mono_ms();
        }
        batch tmp = w->pending;
        w->pending = w->flushing;
        w->flushing = tmp;
        batch *b = &w->flushing;
        uint64_t roll = w->roll_req;
        uint64_t sync_target = w->sync_req;
        uint64_t last = b->n ? b->ent[b->n - 1].seq : w->written_seq;
        bool sync_asked = sync_target > w->synced_seq;
        ep_err failed = w->failed;
        pthread_mutex_unlock(&w->lock);

        ep_err r;
        if (failed) {
            fail_from(b, 0, failed);
            r = failed;
        } else {
            /* A periodic fsync that is due is folded into this batch. */
            bool want_sync = w->o.durability == EP_WAL_SYNC || sync_asked ||
                             (w->o.durability == EP_WAL_PERIODIC &&
                              ep_clock_mono_ms() >= w->last_sync_ms + w->o.period_ms);
            r = flush_batch(w, b, roll, want_sync);
        }
        size_t nfail = 0;
        for (size_t k = 0; k < b->n; k++)
            nfail += b->ent[k].status == EP_EFULL;

        /* Publish progress before any callback runs, so a callback sees
         * its record counted as written/synced. */
        pthread_mutex_lock(&w->lock);
        w->unwritten -= b->len;
        w->written_seq = last;
        if (!w->unsynced || w->fd < 0)
            w->synced_seq = last;
        if (r == EP_EIO && !w->failed)
            w->failed = EP_EIO;
        if (r == EP_EFULL || nfail) {
            w->full_enospc = true;
            w->full_until_ms = ep_clock_mono_ms() + ENOSPC_RETRY_MS;
            w->failed_enospc += nfail;
            maybe_request_compaction(w);
        }
        if (roll > w->rolled)
            w->rolled = roll;
        if (w->failed) /* nobody waits for a sync that will never come */
            w->synced_seq = w->written_seq;
        if (b->n)
            w->batches++;
        pthread_mutex_unlock(&w->lock);

        deliver(w, b);

        pthread_mutex_lock(&w->lock);
        for (size_t k = 0; k < b->n; k++)
            if (b->ent[k].port && b->ent[k].cb)
                b->ent[k].port->inflight--;
        b->len = 0;
        b->n = 0;
        pthread_cond_broadcast(&w->cv_done);
    }
out:
    pthread_mutex_unlock(&w->lock);
    if (w->fd >= 0) {
        (void)do_sync(w);
        close(w->fd);
        w->fd = -1;
    }
    return NULL;
}

/* ---------------------------------------------------------------- open/close */

static void wal_free(ep_wal *w)
{
    if (w == NULL)
        return;
    if (w->token) {
        if (w->compact_posted)
            w->token->w = NULL; /* freed by the pending post */
        else
            free(w->token);
    }
    batch_fini(&w->pending);
    batch_fini(&w->flushing);
    free(w->items);
    free(w->files);
    free(w->dir);
    if (w->dirfd >= 0)
        close(w->dirfd);
    if (w->lockfd >= 0)
        close(w->lockfd);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_done);
    free(w);
}

static ep_err sys_err(int e)
{
    switch (e) {
    case EACCES:
    case EPERM:
    case EROFS:
        return EP_EPERM;
    case ENOMEM:
        return EP_ENOMEM;
    case ENOSPC:
    case EDQUOT:
        return EP_EFULL;
    default:
        return EP_EIO;
    }
}

ep_err ep_wal_open(ep_wal **out, const ep_wal_opts *opts, ep_wal_replay_fn fn, void *ud,
                   ep_wal_report *report)
{
    ep_wal_report rep_local = {0};
    ep_wal_report *rep = report ? report : &rep_local;
    ep_wal__recovered rec = {0};
    ep_err err;
    if (opts == NULL || opts->dir == NULL || opts->dir[0] == '\0' ||
        (unsigned)opts->durability > EP_WAL_NONE)
        return EP_EINVAL;
    ep_wal *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return EP_ENOMEM;
    w->dirfd = w->lockfd = w->fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv_work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->cv_done, NULL);

    w->o = *opts;
    if (w->o.period_ms == 0)
        w->o.period_ms = DEF_PERIOD_MS;
    if (w->o.segment_bytes == 0)
        w->o.segment_bytes = DEF_SEGMENT;
    if (w->o.segment_bytes < MIN_SEGMENT)
        w->o.segment_bytes = MIN_SEGMENT;
    if (w->o.max_record_bytes == 0)
        w->o.max_record_bytes = DEF_RECORD;
    if (w->o.max_record_bytes > w->o.segment_bytes - EP_WAL__SEG_HDR - EP_WAL__REC_HDR)
        w->o.max_record_bytes = (uint32_t)(w->o.segment_bytes - EP_WAL__SEG_HDR - EP_WAL__REC_HDR);
    if (w->o.max_pending_bytes == 0)
        w->o.max_pending_bytes = DEF_PENDING;
    if (w->o.compact_ratio == 0)
        w->o.compact_ratio = DEF_RATIO;
    if (w->o.compact_min_bytes == 0)
        w->o.compact_min_bytes = 4 * w->o.segment_bytes;
    w->dir = strdup(opts->dir);
    if (w->dir == NULL) {
        err = EP_ENOMEM;
        goto fail;
    }
    w->o.dir = w->dir;
    if (mkdir(w->dir, 0755) != 0 && errno != EEXIST) {
        err = sys_err(errno);
        goto fail;
    }
    w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dirfd < 0) {
        err = sys_err(errno);
        goto fail;
    }
    w->lockfd = openat(w->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->lockfd < 0) {
        err = sys_err(errno);
        goto fail;
    }
    if (flock(w->lockfd, LOCK_EX | LOCK_NB) != 0) {
        err = errno == EWOULDBLOCK ? EP_ESTATE : sys_err(errno);
        goto fail;
    }
    if ((err = ep_wal__recover(w->dirfd, w->o.max_record_bytes, fn, ud, rep, &rec)) != EP_EOK)
        goto fail;
    w->files = rec.files;
    w->nfiles = w->fcap = rec.nfiles;
    for (size_t i = 0; i < rec.nfiles; i++)
        w->disk_bytes += rec.files[i].bytes;
    w->next_seq = rec.next_seq;
    w->written_seq = w->synced_seq = rec.next_seq - 1;
    w->live_bytes = rec.snap_bytes;
    w->last_sync_ms = ep_clock_mono_ms();
    if (w->o.owner && w->o.snapshot) {
        w->token = calloc(1, sizeof(*w->token));
        if (w->token == NULL) {
            err = EP_ENOMEM;
            goto fail;
        }
        w->token->w = w;
    }
    if (pthread_create(&w->flusher, NULL, flusher_main, w) != 0) {
        err = EP_ESYS;
        goto fail;
    }
    w->flusher_started = true;
    *out = w;
    return EP_EOK;
fail:
    wal_free(w);
    return err;
}

void ep_wal_close(ep_wal *w)
{
    if (w == NULL)
        return;
    if (w->flusher_started) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        if (w->next_seq - 1 > w->sync_req)
            w->sync_req = w->next_seq - 1;
        pthread_cond_signal(&w->cv_work);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->flusher, NULL);
    }
    wal_free(w);
}

/* ---------------------------------------------------------------- ports */

static void port_drain(ep_mailbox *mb, void *items, size_t n, void *ud)
{
    port_item *it = items;
    (void)mb;
    (void)ud;
    for (size_t i = 0; i < n; i++)
        it[i].cb(it[i].ud, it[i].seq, it[i].status);
}

ep_err ep_wal_port_new(ep_wal_port **out, ep_wal *w, ep_loop *loop)
{
    ep_wal_port *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return EP_ENOMEM;
    p->w = w;
    ep_err err = ep_mailbox_new(&p->mb, loop, sizeof(port_item), 0, port_drain, p);
    if (err) {
        free(p);
        return err;
    }
    *out = p;
    return EP_EOK;
}

void ep_wal_port_free(ep_wal_port *p)
{
    if (p == NULL)
        return;
    ep_wal *w = p->w;
    pthread_mutex_lock(&w->lock);
    while (p->inflight)
        pthread_cond_wait(&w->cv_done, &w->lock);
    pthread_mutex_unlock(&w->lock);
    ep_mailbox_drain(p->mb);
    ep_mailbox_free(p->mb);
    free(p);
}

/* ---------------------------------------------------------------- append */

ep_err ep_wal_appendv(ep_wal *w, ep_wal_port *port, uint8_t type, const struct iovec *iov,
                      int iovcnt, ep_wal_done_fn cb, void *ud, uint64_t *seq_out)
{
    size_t len = 0;
    ep_err err = EP_EOK;
    if (iovcnt < 0 || (iovcnt > 0 && iov == NULL))
        return EP_EINVAL;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > w->o.max_record_bytes - len)
            return EP_ETOOBIG;
        len += iov[i].iov_len;
    }
    size_t size = EP_WAL__REC_HDR + len;
    pthread_mutex_lock(&w->lock);
    if (w->failed) {
        err = w->failed;
        goto out;
    }
    if (w->stop) {
        err = EP_ESTATE;
        goto out;
    }
    if (w->full_enospc) {
        if (ep_clock_mono_ms() < w->full_until_ms) {
            w->rejected_full++;
            err = EP_EFULL;
            goto out;
        }
        w->full_enospc = false; /* probe the file system again */
    }
    if (w->unwritten && w->unwritten + size > w->o.max_pending_bytes) {
        err = EP_EAGAIN;
        goto out;
    }
    if (w->o.max_bytes) {
        uint64_t acc = w->unwritten + size;
        uint64_t need =
            w->disk_bytes + w->snap_reserved + acc + seg_overhead(w, acc) + snapshot_headroom(w);
        if (need > w->o.max_bytes) {
            w->rejected_full++;
            w->budget_full = true;
            maybe_request_compaction(w);
            err = EP_EFULL;
            goto out;
        }
    }
    if ((err = batch_reserve(&w->pending, size)) != EP_EOK)
        goto out;
    batch *b = &w->pending;
    uint64_t seq = w->next_seq++;
    ep_wal__hdr h = {.seq = seq, .len = (uint32_t)len, .type = type, .flags = 0};
    ep_wal__rec_encode(b->buf + b->len, &h, iov, iovcnt, false);
    b->ent[b->n++] = (entry){
        .seq = seq, .off = b->len, .size = size, .cb = cb, .ud = ud, .port = cb ? port : NULL};
    b->len += size;
    w->unwritten += size;
    w->appends++;
    w->budget_full = false;
    if (port && cb)
        port->inflight++;
    if (b->n == 1)
        pthread_cond_signal(&w->cv_work);
    maybe_request_compaction(w);
    if (seq_out)
        *seq_out = seq;
out:
    pthread_mutex_unlock(&w->lock);
    return err;
}

ep_err ep_wal_append(ep_wal *w, ep_wal_port *port, uint8_t type, const void *data, size_t len,
                     ep_wal_done_fn cb, void *ud, uint64_t *seq_out)
{
    struct iovec iov = {.iov_base = (void *)(uintptr_t)data, .iov_len = len};
    return ep_wal_appendv(w, port, type, &iov, len ? 1 : 0, cb, ud, seq_out);
}

ep_err ep_wal_sync(ep_wal *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t target = w->next_seq - 1;
    if (target > w->sync_req)
        w->sync_req = target;
    pthread_cond_signal(&w->cv_work);
    while (w->synced_seq < target && !w->failed)
        pthread_cond_wait(&w->cv_done, &w->lock);
    ep_err err = w->failed;
    pthread_mutex_unlock(&w->lock);
    return err;
}

void ep_wal_set_live_bytes(ep_wal *w, uint64_t bytes)
{
    pthread_mutex_lock(&w->lock);
    w->live_bytes = bytes;
    w->live_set = true;
    pthread_mutex_unlock(&w->lock);
}

void ep_wal_stats_get(ep_wal *w, ep_wal_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = (ep_wal_stats){
        .next_seq = w->next_seq,
        .written_seq = w->written_seq,
        .synced_seq = w->synced_seq,
        .disk_bytes = w->disk_bytes + w->snap_reserved,
        .pending_bytes = w->unwritten,
        .live_bytes = w->live_bytes,
        .appends = w->appends,
        .batches = w->batches,
        .fsyncs = w->fsyncs,
        .compactions = w->compactions,
        .rejected_full = w->rejected_full,
        .failed_enospc = w->failed_enospc,
        .full = w->full_enospc && ep_clock_mono_ms() < w->full_until_ms,
        .compact_wanted = compact_wanted(w),
        .failed = w->failed,
    };
    for (size_t i = 0; i < w->nfiles; i++)
        out->segments += w->files[i].kind == EP_WAL__KIND_LOG;
    out->full = out->full || w->budget_full;
    pthread_mutex_unlock(&w->lock);
}

const char *ep_wal_durability_name(ep_wal_durability d)
{
    switch (d) {
    case EP_WAL_SYNC:
        return "sync";
    case EP_WAL_PERIODIC:
        return "periodic";
    case EP_WAL_NONE:
        return "none";
    }
    return "?";
}

ep_err ep_wal_durability_parse(const char *s, ep_wal_durability *out)
{
    static const ep_wal_durability all[] = {EP_WAL_SYNC, EP_WAL_PERIODIC, EP_WAL_NONE};
    for (size_t i = 0; s && i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(s, ep_wal_durability_name(all[i])) == 0) {
            *out = all[i];
            return EP_EOK;
        }
    }
    return EP_EINVAL;
}

/* ---------------------------------------------------------------- compaction */

static ep_err snap_flush(ep_wal_snap *s)
{
    ep_wal *w = s->w;
    if (s->len == 0)
        return EP_EOK;
    if (s->written + s->len > s->reserved) {
        uint64_t more = s->written + s->len - s->reserved;
        ep_err err = EP_EOK;
        pthread_mutex_lock(&w->lock);
        if (w->o.max_bytes &&
            w->disk_bytes + w->snap_reserved + w->unwritten + more > w->o.max_bytes)
            err = EP_EFULL;
        else
            w->snap_reserved += more;
        pthread_mutex_unlock(&w->lock);
        if (err)
            return err;
        s->reserved += more;
    }
    ep_err err = write_all(s->fd, s->buf, s->len, s->written);
    if (err)
        return err;
    s->written += s->len;
    s->len = 0;
    if (!s->partial_hit && s->count) {
        s->partial_hit = true;
        KILL_POINT(EP_WAL__KP_SNAP_PARTIAL);
    }
    return EP_EOK;
}

static ep_err snap_add(ep_wal_snap *s, const ep_wal__hdr *h, const struct iovec *iov, int iovcnt,
                       size_t len)
{
    size_t size = EP_WAL__REC_HDR + len;
    ep_err err;
    if (s->len + size > s->cap) {
        if ((err = snap_flush(s)) != EP_EOK)
            return err;
        if (size > s->cap) {
            uint8_t *nb = realloc(s->buf, size);
            if (nb == NULL)
                return EP_ENOMEM;
            s->buf = nb;
            s->cap = size;
        }
    }
    ep_wal__rec_encode(s->buf + s->len, h, iov, iovcnt, true);
    s->len += size;
    return EP_EOK;
}

ep_err ep_wal_snap_putv(ep_wal_snap *s, uint8_t type, const struct iovec *iov, int iovcnt)
{
    size_t len = 0;
    if (iovcnt < 0 || (iovcnt > 0 && iov == NULL))
        return EP_EINVAL;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > s->w->o.max_record_bytes - len)
            return EP_ETOOBIG;
        len += iov[i].iov_len;
    }
    ep_wal__hdr h = {.seq = s->count, .len = (uint32_t)len, .type = type, .flags = 0};
    ep_err err = snap_add(s, &h, iov, iovcnt, len);
    if (err == EP_EOK)
        s->count++;
    return err;
}

ep_err ep_wal_snap_put(ep_wal_snap *s, uint8_t type, const void *data, size_t len)
{
    struct iovec iov = {.iov_base = (void *)(uintptr_t)data, .iov_len = len};
    return ep_wal_snap_putv(s, type, &iov, len ? 1 : 0);
}

static ep_err snap_finish(ep_wal_snap *s, uint64_t base)
{
    uint8_t trailer[24];
    uint64_t v[3] = {s->count, base, s->written + s->len};
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 8; b++)
            trailer[i * 8 + b] = (uint8_t)(v[i] >> (8 * b));
    struct iovec iov = {.iov_base = trailer, .iov_len = sizeof(trailer)};
    ep_wal__hdr h = {.seq = s->count,
                     .len = sizeof(trailer),
                     .type = EP_WAL__META_SNAP_END,
                     .flags = EP_WAL__F_META};
    ep_err err = snap_add(s, &h, &iov, 1, sizeof(trailer));
    if (err == EP_EOK)
        err = snap_flush(s);
    return err;
}

ep_err ep_wal_compact(ep_wal *w)
{
    char tmp[48], final[48];
    ep_wal_snap s = {.w = w, .fd = -1};
    ep_err err = EP_EOK;
    ep_wal__file *old = NULL;
    size_t nold = 0;
    bool tmp_made = false;
    if (w->o.snapshot == NULL)
        return EP_EUNSUPPORTED;

    /* 1. Cut: records from `cut` on go to a new segment; everything before
     * is written, fdatasynced and its segment closed. */
    pthread_mutex_lock(&w->lock);
    if (w->compacting || w->failed || w->stop) {
        err = w->failed ? w->failed : EP_ESTATE;
        pthread_mutex_unlock(&w->lock);
        return err;
    }
    w->compacting = true;
    uint64_t cut = w->next_seq;
    w->roll_req = cut;
    if (cut - 1 > w->sync_req)
        w->sync_req = cut - 1;
    pthread_cond_signal(&w->cv_work);
    while (w->rolled < cut && !w->failed)
        pthread_cond_wait(&w->cv_done, &w->lock);
    err = w->failed;
    pthread_mutex_unlock(&w->lock);
    if (err)
        goto done;
    KILL_POINT(EP_WAL__KP_CUT);

    /* 2. Snapshot into snap-<cut>.tmp. */
    ep_wal__file_name(tmp, EP_WAL__KIND_SNAP, cut, true);
    ep_wal__file_name(final, EP_WAL__KIND_SNAP, cut, false);
    s.fd = openat(w->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s.fd < 0) {
        err = sys_err(errno);
        goto done;
    }
    tmp_made = true;
    s.cap = SNAP_BUF;
    s.buf = malloc(s.cap);
    if (s.buf == NULL) {
        err = EP_ENOMEM;
        goto done;
    }
    ep_wal__seg_hdr_encode(s.buf, EP_WAL__KIND_SNAP, cut);
    s.len = EP_WAL__SEG_HDR;
    if ((err = w->o.snapshot(&s, w->o.snapshot_ud)) != EP_EOK)
        goto done;
    if ((err = snap_finish(&s, cut)) != EP_EOK)
        goto done;
    KILL_POINT(EP_WAL__KP_SNAP_WRITTEN);

    /* 3. Make it durable, then atomically visible. */
    if (fsync(s.fd) != 0) {
        err = EP_EIO;
        goto done;
    }
    close(s.fd);
    s.fd = -1;
    KILL_POINT(EP_WAL__KP_SNAP_SYNCED);
    if (renameat(w->dirfd, tmp, w->dirfd, final) != 0) {
        err = sys_err(errno);
        goto done;
    }
    tmp_made = false;
    KILL_POINT(EP_WAL__KP_RENAMED);
    if (fsync(w->dirfd) != 0) {
        err = EP_EIO;
        goto done;
    }
    KILL_POINT(EP_WAL__KP_DIR_SYNCED);

    /* 4. The new generation is in place: forget and delete the old one. */
    pthread_mutex_lock(&w->lock);
    old = malloc((w->nfiles ? w->nfiles : 1) * sizeof(*old));
    size_t k = 0;
    for (size_t i = 0; i < w->nfiles; i++) {
        if (w->files[i].seq < cut && old) {
            old[nold++] = w->files[i];
            w->disk_bytes -= w->files[i].bytes;
        } else {
            w->files[k++] = w->files[i];
        }
    }
    w->nfiles = k;
    w->snap_reserved -= s.reserved;
    s.reserved = 0;
    w->disk_bytes += s.written;
    ep_err ferr =
        files_add(w, (ep_wal__file){.seq = cut, .bytes = s.written, .kind = EP_WAL__KIND_SNAP});
    pthread_mutex_unlock(&w->lock);
    (void)ferr; /* out of memory here only makes the budget forget one file */
    for (size_t i = 0; i < nold; i++) {
        char name[48];
        ep_wal__file_name(name, old[i].kind, old[i].seq, false);
        (void)unlinkat(w->dirfd, name, 0); /* a leftover is removed at next open */
        if (i == 0)
            KILL_POINT(EP_WAL__KP_DELETED_ONE);
    }
    (void)fsync(w->dirfd);
    KILL_POINT(EP_WAL__KP_DONE);
done:
    if (s.fd >= 0)
        close(s.fd);
    if (tmp_made)
        (void)unlinkat(w->dirfd, tmp, 0);
    free(s.buf);
    free(old);
    pthread_mutex_lock(&w->lock);
    w->snap_reserved -= s.reserved;
    w->compacting = false;
    if (err == EP_EOK) {
        w->compactions++;
        w->full_enospc = false;
        w->budget_full = false;
        if (!w->live_set)
            w->live_bytes = s.written;
    }
    pthread_cond_broadcast(&w->cv_done);
    pthread_mutex_unlock(&w->lock);
    return err;
}
