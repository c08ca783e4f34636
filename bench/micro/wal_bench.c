/*
 * wal_bench.c - write-ahead log throughput and recovery time.
 *
 *   wal_bench [--records N] [--size B] [--threads T] [--inflight W]
 *             [--dir DIR] [--cold] [--quick]
 *
 * Prints records/s for:
 *   - append in each durability mode (none, periodic 100 ms, sync with group
 *     commit: T threads, each an event loop with a completion port keeping W
 *     appends in flight, like broker I/O threads with many publishers);
 *   - sync with one fdatasync per record (one append in flight at a time),
 *     the baseline that group commit is compared with;
 *   - one log shared by T threads vs one log per thread (sync);
 *   - append scaling with 1..T threads (none, no completions);
 *   - recovery (open + replay) of the N-record log, warm page cache, and
 *     with --cold after dropping the page cache (root only).
 * Defaults: N = 1 000 000, B = 100, T = 4, W = 64. --quick: N = 20 000.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/loop.h"
#include "core/wal.h"

static uint64_t g_records = 1000000;
static size_t g_size = 100;
static int g_threads = 4;
static int g_inflight = 64;
static char g_dir[512];

static void rm_dir(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

/* A directory per run, named after the run with only [a-z0-9]. */
static void dir_for(char *out, size_t n, const char *name, bool fresh)
{
    char slug[64];
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < sizeof(slug); p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
            slug[k++] = *p;
    slug[k] = '\0';
    snprintf(out, n, "%s/%s", g_dir, slug);
    if (fresh)
        rm_dir(out);
}

static ep_wal *open_log(const char *dir, ep_wal_durability d)
{
    ep_wal_opts o;
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.durability = d;
    o.period_ms = 100;
    o.max_pending_bytes = 256u << 20;
    ep_wal *w;
    ep_err e = ep_wal_open(&w, &o, NULL, NULL, NULL);
    if (e) {
        fprintf(stderr, "open %s: %s\n", dir, ep_strerror(e));
        exit(1);
    }
    return w;
}

/* ---------------------------------------------------------- plain appends */

typedef struct plain_arg {
    ep_wal *w;
    uint64_t n;
} plain_arg;

static void *plain_thread(void *arg)
{
    plain_arg *a = arg;
    uint8_t *buf = calloc(1, g_size + 1);
    for (uint64_t i = 0; i < a->n; i++) {
        ep_err e;
        while ((e = ep_wal_append(a->w, NULL, 1, buf, g_size, NULL, NULL, NULL)) == EP_EAGAIN)
            usleep(100);
        if (e) {
            fprintf(stderr, "append: %s\n", ep_strerror(e));
            exit(1);
        }
    }
    free(buf);
    return NULL;
}

/* Appends N records from `threads` threads; includes the final write+sync. */
static double run_plain(const char *name, ep_wal_durability d, int threads, bool keep)
{
    char dir[600];
    dir_for(dir, sizeof(dir), name, true);
    ep_wal *w = open_log(dir, d);
    pthread_t t[64];
    plain_arg a[64];
    uint64_t t0 = ep_clock_mono_ns();
    for (int i = 0; i < threads; i++) {
        a[i] = (plain_arg){w, g_records / (uint64_t)threads};
        pthread_create(&t[i], NULL, plain_thread, &a[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    ep_wal_sync(w);
    uint64_t t1 = ep_clock_mono_ns();
    ep_wal_stats st;
    ep_wal_stats_get(w, &st);
    ep_wal_close(w);
    double rate = (double)st.appends / ((double)(t1 - t0) / 1e9);
    printf("  %-34s %10.0f rec/s  %7.1f MB/s  (%" PRIu64 " fdatasyncs)\n", name, rate,
           rate * (double)(g_size + EP_WAL__REC_HDR) / 1e6, st.fsyncs);
    if (!keep)
        rm_dir(dir);
    return rate;
}

/* ---------------------------------------------------------- sync, group commit */

typedef struct gc_arg {
    ep_wal *w;
    uint64_t n, sent, done;
    int inflight;
    uint32_t *lat_us;
    uint64_t *t_sent; /* ring of send times by ticket slot */
} gc_arg;

typedef struct gc_ticket {
    gc_arg *a;
    uint64_t t0;
} gc_ticket;

static void gc_done(void *ud, uint64_t seq, ep_err st)
{
    gc_ticket *k = ud;
    (void)seq;
    if (st != EP_EOK) {
        fprintf(stderr, "completion: %s\n", ep_strerror(st));
        exit(1);
    }
    gc_arg *a = k->a;
    uint64_t us = (ep_clock_mono_ns() - k->t0) / 1000;
    a->lat_us[a->done++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    free(k);
}

static void *gc_thread(void *arg)
{
    gc_arg *a = arg;
    ep_loop *loop;
    ep_wal_port *port;
    uint8_t *buf = calloc(1, g_size + 1);
    if (ep_loop_new(&loop, NULL) || ep_wal_port_new(&port, a->w, loop))
        exit(1);
    while (a->done < a->n) {
        while (a->sent < a->n && a->sent - a->done < (uint64_t)a->inflight) {
            gc_ticket *k = malloc(sizeof(*k));
            k->a = a;
            k->t0 = ep_clock_mono_ns();
            ep_err e = ep_wal_append(a->w, port, 1, buf, g_size, gc_done, k, NULL);
            if (e) {
                fprintf(stderr, "append: %s\n", ep_strerror(e));
                exit(1);
            }
            a->sent++;
        }
        ep_loop_run_once(loop, 100);
    }
    ep_wal_port_free(port);
    ep_loop_free(loop);
    free(buf);
    return NULL;
}

static int u32_cmp(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

/* threads x inflight appends in sync mode; `logs` = 1 (shared) or threads. */
static double run_sync(const char *name, uint64_t n, int threads, int inflight, int logs, bool keep)
{
    char dir[600], sub[700];
    ep_wal *w[64];
    dir_for(dir, sizeof(dir), name, true);
    for (int i = 0; i < logs; i++) {
        snprintf(sub, sizeof(sub), "%s%s%d", dir, logs > 1 ? "/" : "", i);
        if (logs > 1) {
            char mk[800];
            snprintf(mk, sizeof(mk), "mkdir -p '%s'", dir);
            if (system(mk) != 0)
                exit(1);
        }
        w[i] = open_log(logs > 1 ? sub : dir, EP_WAL_SYNC);
    }
    pthread_t t[64];
    gc_arg a[64];
    uint64_t per = n / (uint64_t)threads;
    uint32_t *lat = malloc(sizeof(*lat) * per * (uint64_t)threads);
    uint64_t t0 = ep_clock_mono_ns();
    for (int i = 0; i < threads; i++) {
        a[i] = (gc_arg){.w = w[logs > 1 ? i : 0],
                        .n = per,
                        .inflight = inflight,
                        .lat_us = lat + per * (uint64_t)i};
        pthread_create(&t[i], NULL, gc_thread, &a[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    uint64_t t1 = ep_clock_mono_ns();
    uint64_t fsyncs = 0, appends = 0;
    for (int i = 0; i < logs; i++) {
        ep_wal_stats st;
        ep_wal_stats_get(w[i], &st);
        fsyncs += st.fsyncs;
        appends += st.appends;
        ep_wal_close(w[i]);
    }
    size_t nl = (size_t)(per * (uint64_t)threads);
    qsort(lat, nl, sizeof(*lat), u32_cmp);
    double rate = (double)appends / ((double)(t1 - t0) / 1e9);
    printf("  %-34s %10.0f rec/s  %6.1f rec/fsync  commit latency p50 %u us p99 %u us\n", name,
           rate, fsyncs ? (double)appends / (double)fsyncs : 0.0, lat[nl / 2], lat[nl * 99 / 100]);
    free(lat);
    if (!keep)
        rm_dir(dir);
    return rate;
}

/* ---------------------------------------------------------- recovery */

static uint64_t replay_bytes;
static ep_err count_rec(void *ud, const ep_wal_rec *r)
{
    (void)ud;
    replay_bytes += r->len;
    return EP_EOK;
}

static void run_recovery(const char *name, bool cold)
{
    char dir[600];
    dir_for(dir, sizeof(dir), name, false);
    if (cold) {
        sync();
        FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
        if (f == NULL || fputs("3\n", f) < 0 || fclose(f) != 0) {
            printf("  recovery, cold cache: skipped (cannot drop the page cache)\n");
            return;
        }
    }
    ep_wal_opts o;
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    ep_wal *w;
    ep_wal_report rep;
    replay_bytes = 0;
    uint64_t t0 = ep_clock_mono_ns();
    if (ep_wal_open(&w, &o, count_rec, NULL, &rep) != EP_EOK)
        exit(1);
    uint64_t t1 = ep_clock_mono_ns();
    ep_wal_close(w);
    double s = (double)(t1 - t0) / 1e9;
    printf("  recovery (%s cache) %10" PRIu64 " records %4u segments  %7.3f s  %10.0f rec/s"
           "  %6.0f MB/s\n",
           cold ? "cold" : "warm", rep.records, rep.segments, s, (double)rep.records / s,
           (double)rep.bytes / s / 1e6);
}

int main(int argc, char **argv)
{
    bool cold = false, quick = false;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
            g_records = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            g_size = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            g_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc)
            g_inflight = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--cold") == 0)
            cold = true;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else {
            fprintf(stderr,
                    "usage: %s [--records N] [--size B] [--threads T] [--inflight W] "
                    "[--dir DIR] [--cold] [--quick]\n",
                    argv[0]);
            return 2;
        }
    }
    if (quick)
        g_records = 20000;
    if (g_threads < 1 || g_threads > 64)
        g_threads = 4;
    if (dir) {
        snprintf(g_dir, sizeof(g_dir), "%s/ep_wal_bench", dir);
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof(g_dir), "%s/ep_wal_bench.%d", t ? t : "/tmp", (int)getpid());
    }
    char mk[700];
    snprintf(mk, sizeof(mk), "mkdir -p '%s'", g_dir);
    if (system(mk) != 0)
        return 1;

    printf("wal_bench: %" PRIu64 " records of %zu bytes, dir %s\n", g_records, g_size, g_dir);
    printf("append:\n");
    run_plain("none, 1 thread", EP_WAL_NONE, 1, true);
    run_plain("periodic 100 ms, 1 thread", EP_WAL_PERIODIC, 1, false);
    char name[64];
    snprintf(name, sizeof(name), "sync group commit, %dx%d in flight", g_threads, g_inflight);
    double gc = run_sync(name, g_records, g_threads, g_inflight, 1, false);
    /* One fsync per record: a few seconds' worth is enough for the rate. */
    uint64_t n1 = quick ? 200 : 3000;
    double one = run_sync("sync, 1 in flight (fsync/record)", n1, 1, 1, 1, false);
    printf("  group commit gain: %.0fx\n", gc / one);

    printf("threads sharing one log vs a log per thread (sync, %d in flight each):\n", g_inflight);
    uint64_t n2 = g_records / 4 > 20000 ? g_records / 4 : 20000;
    snprintf(name, sizeof(name), "%d threads, one shared log", g_threads);
    run_sync(name, n2, g_threads, g_inflight, 1, false);
    snprintf(name, sizeof(name), "%d threads, %d logs", g_threads, g_threads);
    run_sync(name, n2, g_threads, g_inflight, g_threads, false);

    printf("append scaling (none, no completions):\n");
    for (int t = 1; t <= g_threads; t *= 2) {
        snprintf(name, sizeof(name), "%d thread%s", t, t > 1 ? "s" : "");
        run_plain(name, EP_WAL_NONE, t, false);
    }

    printf("startup recovery of the %" PRIu64 "-record log:\n", g_records);
    run_recovery("none, 1 thread", false);
    if (cold)
        run_recovery("none, 1 thread", true);
    rm_dir(g_dir);
    return 0;
}
