/*
 * wal.h - crash-safe append-only log (write-ahead log) with group commit,
 * checksummed records, torn-tail recovery, snapshot compaction and a disk
 * budget.
 *
 * Used by the broker to persist sessions, subscriptions, retained messages,
 * queued/in-flight QoS 1/2 messages and pending wills; meant to be reused by
 * the state store and store-and-forward. The log stores opaque records
 * (a type byte + bytes); what they mean is the caller's business.
 *
 * Files in the data directory (format and guarantees: docs/persistence.md):
 *   wal-<firstseq>.log  log segments, rolled at opts.segment_bytes
 *   snap-<base>.log     a snapshot: the caller's live state, replacing every
 *                       record with seq < base (written as snap-<base>.tmp,
 *                       fsynced, renamed, directory fsynced)
 *   LOCK                flock()ed while open: one process per directory
 *
 * Threading. One ep_wal is shared by every thread of the process (the
 * broker's I/O threads append to the same log, so one fsync covers all of
 * them). ep_wal_append() may be called from any thread; it copies the
 * record into a pending buffer under a short mutex and returns its sequence
 * number (the "ticket"). A dedicated flusher thread writes everything
 * pending since its last batch with one write() and, in EP_WAL_SYNC mode,
 * one fdatasync() (group commit), then completes the tickets:
 *   - with a port (ep_wal_port, one per event loop), the completion callback
 *     runs on that port's loop, delivered in batches through an ep_mailbox
 *     (one wakeup per loop per batch), in sequence order;
 *   - without a port, the callback runs on the flusher thread and must be
 *     short and thread-safe (e.g. post to the caller's own queue).
 * The owner thread is the one that called ep_wal_open(): ep_wal_compact()
 * and ep_wal_close() are called there (opts.owner, if set, must be the loop
 * running on that thread).
 *
 * Record semantics for compaction. A snapshot holds the state at some
 * moment after its cut point; records appended after the cut are replayed
 * on top of it. Records must therefore be idempotent whole-value updates
 * keyed by an id ("session X = ...", "delete queued message (X, 17)"), not
 * increments.
 */
#ifndef EP_CORE_WAL_H
#define EP_CORE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/err.h"
#include "core/loop.h"

typedef struct ep_wal ep_wal;
typedef struct ep_wal_port ep_wal_port;
typedef struct ep_wal_snap ep_wal_snap;

/* Durability modes; docs/persistence.md states each guarantee. */
typedef enum ep_wal_durability {
    /* A completion callback fires only after the record is on disk
     * (write + fdatasync). Concurrent appends share one fdatasync. */
    EP_WAL_SYNC = 0,
    /* Records are written to the kernel as soon as the flusher sees them
     * (completion callback then); fdatasync at most every period_ms. A
     * process crash loses only records not yet written; a power loss or
     * kernel crash loses at most the last period_ms (plus one fsync). */
    EP_WAL_PERIODIC = 1,
    /* Written to the kernel as in PERIODIC; no fdatasync except when a
     * segment is sealed, on ep_wal_sync() and on close. The kernel decides
     * when data reaches the disk. */
    EP_WAL_NONE = 2,
} ep_wal_durability;

/* One replayed record. data is valid only during the replay callback. */
typedef struct ep_wal_rec {
    uint64_t seq;        /* log sequence number; in a snapshot, the index */
    const uint8_t *data; /* payload, len bytes (NULL when len == 0) */
    uint32_t len;
    uint8_t type;  /* caller's record type */
    bool snapshot; /* the record comes from a snapshot, not the log */
} ep_wal_rec;

/* Replay callback, called on the thread calling ep_wal_open(): all snapshot
 * records first, then log records in sequence order. Returning non-zero
 * aborts ep_wal_open() with that error. */
typedef ep_err (*ep_wal_replay_fn)(void *ud, const ep_wal_rec *rec);

/* Completion callback for one append. status is EP_EOK when the record
 * reached the mode's durability point, EP_EFULL when it could not be
 * written because the file system was full (the record was truncated away
 * and is not in the log), EP_EIO after a write/fsync error (the log has
 * failed; see ep_wal_append). */
typedef void (*ep_wal_done_fn)(void *ud, uint64_t seq, ep_err status);

/* Snapshot callback: write the complete live state with ep_wal_snap_put().
 * Called on the owner thread by ep_wal_compact(). It may append to the log
 * (those records land after the cut and are replayed after the snapshot).
 * Returning non-zero abandons the compaction with that error; the log is
 * unchanged. */
typedef ep_err (*ep_wal_snapshot_fn)(ep_wal_snap *snap, void *ud);

/* Options. Zero-initialise, then set dir; every 0 means the default. */
typedef struct ep_wal_opts {
    const char *dir;              /* data directory; created if missing (one level) */
    ep_wal_durability durability; /* default EP_WAL_SYNC */
    uint32_t period_ms;           /* EP_WAL_PERIODIC fsync period, default 100 */
    uint64_t segment_bytes;       /* roll segments at this size, default 64 MiB, min 4 KiB */
    uint64_t max_bytes;           /* disk budget for all files, 0 = unbounded */
    uint32_t max_record_bytes;    /* largest payload, default 16 MiB (clamped to fit a segment) */
    uint64_t max_pending_bytes;   /* unwritten backlog before EP_EAGAIN, default 64 MiB */
    /* Automatic compaction: requested when total size > compact_ratio x the
     * live estimate (and > compact_min_bytes), or > max_bytes / 2. */
    uint32_t compact_ratio;      /* default 4 */
    uint64_t compact_min_bytes;  /* default 4 x segment_bytes */
    ep_wal_snapshot_fn snapshot; /* NULL: no compaction */
    void *snapshot_ud;
    ep_loop *owner; /* loop of the owner thread that runs automatic compaction;
                       NULL: the caller polls ep_wal_stats().compact_wanted */
} ep_wal_opts;

/* A loss found by recovery: records [from_seq, to_seq] (to_seq is the seq
 * before the next segment, an upper bound when earlier seqs were burnt by a
 * full disk) and `bytes` bytes from `offset` of the file were not loaded. */
typedef struct ep_wal_loss {
    uint64_t file_seq; /* first seq (log) or base (snapshot) in the file name */
    bool snapshot;
    uint64_t offset;
    uint64_t bytes;
    uint64_t from_seq, to_seq;
} ep_wal_loss;

enum { EP_WAL_MAX_LOSSES = 8 };

/* What ep_wal_open() found. */
typedef struct ep_wal_report {
    uint64_t records;             /* log records replayed */
    uint64_t snapshot_records;    /* snapshot records replayed */
    uint64_t bytes;               /* bytes read from valid records and headers */
    uint32_t segments;            /* log segments read */
    uint64_t snapshot_base;       /* base of the snapshot used, 0 = none */
    uint64_t first_seq, last_seq; /* log records replayed, 0 if none */
    /* Torn tail: the last segment ended in an incomplete or corrupt record;
     * the file was truncated at torn_offset, dropping torn_bytes. */
    uint64_t torn_bytes;
    uint64_t torn_offset;
    uint64_t torn_file_seq;
    /* Corruption elsewhere: records skipped (the files are left untouched). */
    uint32_t nlosses;                      /* total, may exceed EP_WAL_MAX_LOSSES */
    ep_wal_loss losses[EP_WAL_MAX_LOSSES]; /* the first ones */
    uint64_t lost_bytes;                   /* sum over all losses */
    uint32_t removed_files;                /* obsolete segments/snapshots and temp files deleted */
    uint64_t elapsed_us;                   /* time spent in recovery */
} ep_wal_report;

typedef struct ep_wal_stats {
    uint64_t next_seq;      /* seq the next append gets */
    uint64_t written_seq;   /* everything <= this was handed to write() (or failed) */
    uint64_t synced_seq;    /* everything <= this that was written is fdatasynced */
    uint64_t disk_bytes;    /* size of all segment and snapshot files */
    uint64_t pending_bytes; /* appended, not yet written */
    uint64_t live_bytes;    /* live data estimate (caller's or last snapshot's) */
    uint64_t appends, batches, fsyncs, compactions;
    uint64_t rejected_full; /* appends refused with EP_EFULL */
    uint64_t failed_enospc; /* records completed with EP_EFULL after ENOSPC */
    uint32_t segments;      /* log segment files */
    bool full;              /* appends currently refused (budget or ENOSPC) */
    bool compact_wanted;    /* the trigger condition holds */
    ep_err failed;          /* EP_EOK, or the error that stopped the log */
} ep_wal_stats;

/* ep_wal_open opens (or creates) the log in opts->dir, recovers it and
 * replays every record to fn (may be NULL), then starts the flusher thread.
 * Recovery never fails on bad data: torn tails are truncated, corrupt parts
 * of other files are skipped and reported in *report (may be NULL; filled
 * on success). opts is copied; opts->dir need not outlive the call.
 * Call on the owner thread.
 * Returns EP_EOK, EP_EINVAL (bad options), EP_ESTATE (directory locked by
 * another process), EP_ENOMEM, EP_EIO / EP_ESYS / EP_EPERM (file system
 * errors) or the error returned by fn. On failure *out is untouched. */
ep_err ep_wal_open(ep_wal **out, const ep_wal_opts *opts, ep_wal_replay_fn fn, void *ud,
                   ep_wal_report *report);

/* ep_wal_close writes and fdatasyncs everything pending, completes its
 * tickets, stops the flusher and frees the log. Every port must have been
 * freed first. Owner thread. NULL is accepted. */
void ep_wal_close(ep_wal *w);

/* ep_wal_port_new creates a completion port delivering callbacks on loop.
 * Call on loop's thread. Returns EP_EOK, EP_ENOMEM or EP_ESYS. */
ep_err ep_wal_port_new(ep_wal_port **out, ep_wal *w, ep_loop *loop);

/* ep_wal_port_free waits until every ticket appended through the port has
 * completed, runs their callbacks (on this thread), and frees the port.
 * Blocks for at most one flush. Call on the port's loop thread. NULL ok. */
void ep_wal_port_free(ep_wal_port *p);

/* ep_wal_append appends one record of type `type` with payload data[0..len)
 * (borrowed: copied before return). On EP_EOK, *seq_out (may be NULL) is the
 * record's sequence number, and cb (may be NULL) will be called exactly once
 * with the outcome: on port's loop if port is non-NULL, else on the flusher
 * thread. Sequence numbers increase in call order across all threads.
 * Thread: any thread without a port; the port's loop thread with one.
 * Returns EP_EOK;
 *   EP_EFULL   the disk budget would be exceeded (a compaction is requested),
 *              or the file system recently reported ENOSPC;
 *   EP_EAGAIN  the unwritten backlog exceeds max_pending_bytes;
 *   EP_ETOOBIG len > max_record_bytes;
 *   EP_ENOMEM;
 *   EP_EIO     the log failed (a write or fsync error other than ENOSPC);
 *              nothing more is accepted, reopen to recover.
 * On error nothing was appended and cb will not be called. */
ep_err ep_wal_append(ep_wal *w, ep_wal_port *port, uint8_t type, const void *data, size_t len,
                     ep_wal_done_fn cb, void *ud, uint64_t *seq_out);

/* ep_wal_appendv is ep_wal_append with the payload gathered from iov. */
ep_err ep_wal_appendv(ep_wal *w, ep_wal_port *port, uint8_t type, const struct iovec *iov,
                      int iovcnt, ep_wal_done_fn cb, void *ud, uint64_t *seq_out);

/* ep_wal_sync blocks until everything appended before the call has been
 * written and fdatasynced (in every mode). Any thread that may block (not
 * an event loop in normal operation).
 * Returns EP_EOK or the error that stopped the log. */
ep_err ep_wal_sync(ep_wal *w);

/* ep_wal_compact cuts the log (records from here on go to a new segment),
 * calls opts.snapshot to write the live state to snap-<cut>.tmp, fsyncs and
 * renames it to snap-<cut>.log, fsyncs the directory, then deletes the
 * segments and the snapshot it replaces. A crash at any step leaves either
 * the old or the new generation complete. Blocks the owner thread while the
 * snapshot is written; appends from other threads continue.
 * Returns EP_EOK; EP_EUNSUPPORTED (no snapshot callback); EP_ESTATE
 * (already compacting); EP_EFULL (the snapshot does not fit the budget or
 * the file system; nothing changed); EP_EIO/EP_ESYS; or the snapshot
 * callback's error. */
ep_err ep_wal_compact(ep_wal *w);

/* ep_wal_snap_put writes one live-state record into the snapshot being
 * built (only inside the snapshot callback). data is borrowed.
 * Returns EP_EOK, EP_ETOOBIG, EP_EFULL, EP_ENOMEM or EP_EIO. */
ep_err ep_wal_snap_put(ep_wal_snap *s, uint8_t type, const void *data, size_t len);
ep_err ep_wal_snap_putv(ep_wal_snap *s, uint8_t type, const struct iovec *iov, int iovcnt);

/* ep_wal_set_live_bytes tells the log how many bytes the live state would
 * take in a snapshot (drives the compaction trigger). Any thread. */
void ep_wal_set_live_bytes(ep_wal *w, uint64_t bytes);

/* ep_wal_stats fills *out with a consistent snapshot of counters. Any thread. */
void ep_wal_stats_get(ep_wal *w, ep_wal_stats *out);

/* ep_wal_durability_name / ep_wal_durability_parse convert "sync",
 * "periodic", "none". parse returns EP_EOK or EP_EINVAL. */
const char *ep_wal_durability_name(ep_wal_durability d);
ep_err ep_wal_durability_parse(const char *s, ep_wal_durability *out);

/* ep_wal_crc32c extends crc (0 to start) over p[0..n): CRC-32C (Castagnoli,
 * reflected 0x82F63B78, as iSCSI/ext4), table-driven slice-by-8. Pure. */
uint32_t ep_wal_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- Internal: shared by wal*.c, the unit test and the fuzzer. ---- */

enum {
    EP_WAL__REC_HDR = 20, /* crc32c u32, len u32, seq u64, type u8, flags u8, zero u16 */
    EP_WAL__SEG_HDR = 32, /* "EPWALSEG", version u16, kind u8, 0 u8, hdr size u32,
                             first seq u64, 0 u32, crc32c u32 */
    EP_WAL__VERSION = 1,
    EP_WAL__KIND_LOG = 0,
    EP_WAL__KIND_SNAP = 1,
    EP_WAL__F_META = 1,        /* record flag: written by the log itself */
    EP_WAL__META_SNAP_END = 1, /* meta type: snapshot trailer (count, base, bytes) */
};

typedef struct ep_wal__hdr {
    uint64_t seq;
    uint32_t len;
    uint8_t type;
    uint8_t flags;
} ep_wal__hdr;

/* ep_wal__rec_encode writes header + payload to dst (room for
 * EP_WAL__REC_HDR + total iov length); returns the size. With seal the CRC
 * is filled in, else left zero for ep_wal__rec_seal (the writer seals on
 * its flusher thread, outside the append lock). */
size_t ep_wal__rec_encode(uint8_t *dst, const ep_wal__hdr *h, const struct iovec *iov, int iovcnt,
                          bool seal);
/* ep_wal__rec_seal computes and stores the CRC of an encoded record whose
 * CRC field is still zero. */
void ep_wal__rec_seal(uint8_t *rec, size_t size);
/* ep_wal__rec_decode parses the record at p[0..avail). Returns EP_EOK (*h
 * filled, *size = header + payload), EP_ENEEDMORE (*size = bytes needed;
 * the header is plausible so far) or EP_EMALFORMED (bad CRC, length above
 * max_len, non-zero reserved bits). Never reads beyond avail. */
ep_err ep_wal__rec_decode(const uint8_t *p, size_t avail, uint32_t max_len, ep_wal__hdr *h,
                          size_t *size);
void ep_wal__seg_hdr_encode(uint8_t dst[EP_WAL__SEG_HDR], int kind, uint64_t first);
/* Returns EP_EOK or EP_EMALFORMED. */
ep_err ep_wal__seg_hdr_decode(const uint8_t *p, size_t avail, int *kind, uint64_t *first);

/* Recovery (wal_recover.c), used by ep_wal_open and the fuzzer: scans the
 * directory open as dirfd, replays, repairs (truncates a torn tail, deletes
 * obsolete files) and lists the files that remain. */
typedef struct ep_wal__file {
    uint64_t seq;   /* first seq (log) or base (snapshot) */
    uint64_t bytes; /* file size */
    int kind;       /* EP_WAL__KIND_* */
} ep_wal__file;

typedef struct ep_wal__recovered {
    ep_wal__file *files; /* sorted: the snapshot (if any) first, then logs by seq */
    size_t nfiles;
    uint64_t next_seq;   /* first seq for new records; new segments start there */
    uint64_t snap_bytes; /* size of the snapshot in use (live estimate) */
} ep_wal__recovered;

/* Returns EP_EOK, EP_ENOMEM, EP_EIO/EP_ESYS (directory unreadable, or a
 * truncation failed) or the replay callback's error. out->files is
 * malloc()ed; the caller frees it. */
ep_err ep_wal__recover(int dirfd, uint32_t max_record, ep_wal_replay_fn fn, void *ud,
                       ep_wal_report *rep, ep_wal__recovered *out);
/* ep_wal__file_name formats the name of a file: wal-<seq>.log, snap-<seq>.log
 * or, with tmp, snap-<seq>.tmp. */
void ep_wal__file_name(char dst[48], int kind, uint64_t seq, bool tmp);

/* Test hook: when set, called at each compaction step with one of the
 * EP_WAL__KP_* points; tests _exit() there to simulate a crash. */
enum {
    EP_WAL__KP_CUT = 1,      /* segment rolled at the cut, snapshot not started */
    EP_WAL__KP_SNAP_PARTIAL, /* part of the snapshot written to the .tmp */
    EP_WAL__KP_SNAP_WRITTEN, /* snapshot complete, not fsynced */
    EP_WAL__KP_SNAP_SYNCED,  /* fsynced, not renamed */
    EP_WAL__KP_RENAMED,      /* renamed, directory not fsynced */
    EP_WAL__KP_DIR_SYNCED,   /* directory fsynced, old files still there */
    EP_WAL__KP_DELETED_ONE,  /* the first old file deleted */
    EP_WAL__KP_DONE,         /* all old files deleted, directory fsynced */
    EP_WAL__KP_COUNT
};
extern void (*ep_wal__kill_hook)(int point);

#endif
