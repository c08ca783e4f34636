/*
 * metrics.h - process metrics registry: counters, gauges and histograms with
 * labels, rendered in the Prometheus text exposition format 0.0.4, plus the
 * readiness checks behind /readyz.
 *
 * It lives in core so that every service can register and update metrics
 * without depending on the HTTP module; svc/api only renders the registry.
 *
 * Model (as the Prometheus client libraries):
 *   family  name + help + type + label names, registered once at startup
 *           (ep_metrics_register); registering the same family again with the
 *           same type, labels and buckets returns the existing one, so several
 *           instances of a service in one process (tests) share it.
 *   series  one combination of label values, looked up once
 *           (ep_metric_counter/gauge/histogram) and kept by the caller: the
 *           returned pointer is valid until the registry is freed.
 *
 * Hot path. Counters and histograms are sharded per thread: every thread
 * gets a shard slot on first use, and an update is a relaxed load + store on
 * a cell only that thread writes (no lock prefix, no shared cache line), so
 * an increment costs about a nanosecond (see docs/observability.md for the
 * measured figures). When more threads than EP_METRICS_SHARDS - 1 are alive,
 * the extra ones share the last shard with atomic read-modify-write. A scrape
 * sums the shards with relaxed loads; a histogram's _count is the sum of its
 * buckets, so +Inf and _count always agree within one scrape.
 * Gauges are one atomic double (set/add from any thread).
 *
 * Collectors are callbacks run at scrape time, before rendering, on the
 * scraping thread; they fill gauges (or collector-owned counters through
 * ep_counter_set) from state read elsewhere, e.g. queue depths.
 *
 * Threads: every function may be called from any thread unless noted.
 * Registration and series lookup take the registry mutex (startup path);
 * updates never lock.
 */
#ifndef EP_CORE_METRICS_H
#define EP_CORE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct ep_metrics ep_metrics;
typedef struct ep_metric ep_metric;
typedef struct ep_counter ep_counter;
typedef struct ep_gauge ep_gauge;
typedef struct ep_histogram ep_histogram;
typedef struct ep_metrics_collector ep_metrics_collector;
typedef struct ep_metrics_check ep_metrics_check;

typedef enum ep_metric_type {
    EP_METRIC_COUNTER = 0,
    EP_METRIC_GAUGE,
    EP_METRIC_HISTOGRAM,
} ep_metric_type;

enum {
    EP_METRICS_SHARDS = 16,        /* per-thread shard slots (last one shared) */
    EP_METRICS_MAX_LABELS = 8,     /* label names per family */
    EP_METRICS_MAX_BUCKETS = 40,   /* histogram upper bounds (+Inf implied) */
    EP_METRICS_MAX_LABEL_LEN = 256 /* bytes of one label value */
};

/* Zero-initialisable family description. */
typedef struct ep_metric_desc {
    ep_metric_type type;
    const char *name;   /* [a-zA-Z_:][a-zA-Z0-9_:]*; by convention edgeplane_<svc>_... */
    const char *help;   /* any UTF-8 text; NULL = "" */
    const char *labels; /* comma-separated label names ("direction,qos"); NULL = none */
    /* Histograms only: strictly increasing finite upper bounds; +Inf is added.
     * NULL = EP_METRICS_LATENCY_BUCKETS. */
    const double *buckets;
    size_t nbuckets;
} ep_metric_desc;

/* Default histogram buckets, in seconds: 100 us .. 10 s. */
extern const double EP_METRICS_LATENCY_BUCKETS[];
extern const size_t EP_METRICS_LATENCY_NBUCKETS;

/* ---- registry ---- */

/* ep_metrics_new creates an empty registry. Returns EP_EOK or EP_ENOMEM. */
ep_err ep_metrics_new(ep_metrics **out);
/* ep_metrics_free frees the registry and every family, series, collector and
 * check in it; no other thread may use any of them any more. NULL is
 * accepted. */
void ep_metrics_free(ep_metrics *reg);
/* ep_metrics_default returns the process-wide registry (created on first
 * call, never freed). Services register into it unless given another one. */
ep_metrics *ep_metrics_default(void);

/* ep_metrics_register registers a family described by d (borrowed; strings
 * are copied). *out is valid until the registry is freed.
 * Returns EP_EOK (also when an identical family exists: *out is that one),
 * EP_EINVAL for an invalid name, label name (reserved "__" prefix, "le" on a
 * histogram, duplicates, more than EP_METRICS_MAX_LABELS) or bucket list,
 * EP_EEXIST when the name is taken by a family of another shape (type,
 * labels or buckets), or EP_ENOMEM. */
ep_err ep_metrics_register(ep_metrics *reg, const ep_metric_desc *d, ep_metric **out);

/* ep_metric_counter/gauge/histogram return the series of family m with the
 * given label values (an array of as many strings as the family has label
 * names; NULL when it has none; borrowed, copied on first use). The series
 * is created on first lookup and valid until the registry is freed: look it
 * up once and keep the pointer. Label values may be any UTF-8 text up to
 * EP_METRICS_MAX_LABEL_LEN bytes.
 * Returns EP_EOK, EP_EINVAL (wrong family type, NULL value, value too long)
 * or EP_ENOMEM. */
ep_err ep_metric_counter(ep_metric *m, const char *const *values, ep_counter **out);
ep_err ep_metric_gauge(ep_metric *m, const char *const *values, ep_gauge **out);
ep_err ep_metric_histogram(ep_metric *m, const char *const *values, ep_histogram **out);

/* EP_LABELS("in", "1") builds the label-value array inline. */
#define EP_LABELS(...) ((const char *const[]){__VA_ARGS__})

/* ep_metrics_counter/gauge/histogram_simple register a family without labels
 * and return its single series in one call (startup convenience). Errors as
 * ep_metrics_register. */
ep_err ep_metrics_counter_simple(ep_metrics *reg, const char *name, const char *help,
                                 ep_counter **out);
ep_err ep_metrics_gauge_simple(ep_metrics *reg, const char *name, const char *help, ep_gauge **out);
ep_err ep_metrics_histogram_simple(ep_metrics *reg, const char *name, const char *help,
                                   const double *buckets, size_t nbuckets, ep_histogram **out);

/* ---- updates (any thread, lock-free) ---- */

/* ep_counter_add adds n to a counter; ep_counter_inc adds 1. */
static inline void ep_counter_add(ep_counter *c, uint64_t n);
static inline void ep_counter_inc(ep_counter *c);
/* ep_counter_set makes the counter read v (for counters owned by a collector
 * that copies a total kept elsewhere; do not mix with ep_counter_add). */
void ep_counter_set(ep_counter *c, double v);
/* ep_counter_value returns the current total (sum over the shards). */
double ep_counter_value(const ep_counter *c);

void ep_gauge_set(ep_gauge *g, double v);
void ep_gauge_add(ep_gauge *g, double d);
static inline void ep_gauge_inc(ep_gauge *g) { ep_gauge_add(g, 1.0); }
static inline void ep_gauge_dec(ep_gauge *g) { ep_gauge_add(g, -1.0); }
double ep_gauge_value(const ep_gauge *g);

/* ep_histogram_observe records one value (seconds for latencies). */
void ep_histogram_observe(ep_histogram *h, double v);
/* ep_histogram_observe_ns records a duration given in nanoseconds as seconds. */
static inline void ep_histogram_observe_ns(ep_histogram *h, uint64_t ns)
{
    ep_histogram_observe(h, (double)ns * 1e-9);
}
/* ep_histogram_count/sum read the totals (sum over the shards). */
uint64_t ep_histogram_count(const ep_histogram *h);
double ep_histogram_sum(const ep_histogram *h);

/* ---- scrape-time collectors ---- */

/* A collector runs on the scraping thread before each render; it must be
 * thread-safe with respect to the state it reads and must not add or remove
 * collectors. It may look up series and set values. */
typedef void (*ep_metrics_collect_fn)(ep_metrics *reg, void *ud);

/* ep_metrics_collector_add registers fn(reg, ud); *out (may be NULL) is the
 * handle for removal. Returns EP_EOK or EP_ENOMEM. */
ep_err ep_metrics_collector_add(ep_metrics *reg, ep_metrics_collect_fn fn, void *ud,
                                ep_metrics_collector **out);
/* ep_metrics_collector_remove unregisters and frees h; after it returns, fn
 * is not running and will not run again. NULL is accepted. */
void ep_metrics_collector_remove(ep_metrics *reg, ep_metrics_collector *h);

/* ep_metrics_render runs the collectors, then appends every family in the
 * Prometheus text format 0.0.4 to out (families sorted by name, series by
 * label values; families without series are left out).
 * Returns EP_EOK, or EP_ENOMEM / EP_ETOOBIG from out (out then holds a
 * partial rendering). */
ep_err ep_metrics_render(ep_metrics *reg, ep_buf *out);

/* ---- readiness checks (behind /readyz) ---- */

/* A check function returns true when ready; when not, it writes a short
 * reason into why (NUL-terminated, at most n bytes). Runs on the thread that
 * evaluates readiness (the HTTP thread): it must be thread-safe. */
typedef bool (*ep_metrics_check_fn)(void *ud, char *why, size_t n);

/* ep_metrics_check_add registers the readiness check `name` (copied). With
 * fn == NULL the check is a flag, initially not ready, set by
 * ep_metrics_check_set. Returns EP_EOK, EP_EINVAL (empty name), EP_EEXIST
 * (name taken) or EP_ENOMEM. */
ep_err ep_metrics_check_add(ep_metrics *reg, const char *name, ep_metrics_check_fn fn, void *ud,
                            ep_metrics_check **out);
/* ep_metrics_check_set sets a flag check's state and reason (why may be
 * NULL; copied, truncated to 127 bytes). Any thread. */
void ep_metrics_check_set(ep_metrics_check *c, bool ready, const char *why);
/* ep_metrics_check_remove unregisters and frees c. NULL is accepted. */
void ep_metrics_check_remove(ep_metrics *reg, ep_metrics_check *c);

/* Called once per check by ep_metrics_checks_run. */
typedef void (*ep_metrics_check_result_fn)(void *ud, const char *name, bool ready, const char *why);
/* ep_metrics_checks_run evaluates every check in name order, reporting each
 * through fn (may be NULL), and returns the number of failing checks. */
size_t ep_metrics_checks_run(ep_metrics *reg, ep_metrics_check_result_fn fn, void *ud);

/* ---- validation and formatting helpers (also used by svc/api) ---- */

/* ep_metrics_name_valid: metric name per the Prometheus data model. */
bool ep_metrics_name_valid(const char *s);
/* ep_metrics_label_name_valid: label name, not starting with "__". */
bool ep_metrics_label_name_valid(const char *s);
/* ep_metrics_format_double writes v as a Prometheus sample value (shortest
 * text that reads back as v; "+Inf", "-Inf", "NaN") into buf (>= 32 bytes).
 * Returns the length. */
size_t ep_metrics_format_double(double v, char *buf, size_t n);

/* ---- inline hot path; fields below are private ---- */

/* Cells are laid out shard-major in chunks: cell i of shard s lives at
 * base[s * EP_METRICS__STRIDE + i], so a thread's cells are contiguous and
 * never share a cache line with another thread's. */
enum { EP_METRICS__STRIDE = 512 };

struct ep_counter {
    _Atomic uint64_t *_cell; /* shard 0 cell */
    _Atomic uint64_t _base;  /* double bits added to the shard sum (ep_counter_set) */
};

extern _Thread_local int ep_metrics__tls_slot;
int ep_metrics__slot_acquire(void);

static inline int ep_metrics__slot(void)
{
    int s = ep_metrics__tls_slot;
    return s >= 0 ? s : ep_metrics__slot_acquire();
}

static inline void ep_metrics__cell_add(_Atomic uint64_t *cell, int slot, uint64_t n)
{
    _Atomic uint64_t *p = cell + (size_t)slot * EP_METRICS__STRIDE;
    if (slot < EP_METRICS_SHARDS - 1) /* this thread is the only writer */
        atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(p, n, memory_order_relaxed);
}

static inline void ep_counter_add(ep_counter *c, uint64_t n)
{
    ep_metrics__cell_add(c->_cell, ep_metrics__slot(), n);
}

static inline void ep_counter_inc(ep_counter *c) { ep_counter_add(c, 1); }

#endif
