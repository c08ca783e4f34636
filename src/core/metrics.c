/*
 * metrics.c - the metrics registry; see metrics.h.
 *
 * Design notes:
 * - Per-thread shards without per-series allocation per thread: cells come
 *   from chunks of EP_METRICS_SHARDS x EP_METRICS__STRIDE 64-bit cells laid
 *   out shard-major (like per-CPU memory in kernels). A series owns a run of
 *   consecutive cell indexes in one chunk (1 for a counter, buckets + 2 for a
 *   histogram), the same run in every shard. A counter thus costs 8 bytes per
 *   shard instead of a padded cache line per shard.
 * - Thread slots: the first EP_METRICS_SHARDS - 1 threads that touch a
 *   metric each own a slot exclusively and update with a plain relaxed
 *   load + store. Slots are returned when a thread exits (a pthread key
 *   destructor), and the acquire/release on the slot bitmap orders the last
 *   writes of the old owner before the first ones of the new owner. Threads
 *   beyond that share the last slot with atomic fetch-add.
 * - Registration keeps families sorted by name and series sorted by label
 *   values, so a render is a single ordered walk and the output does not
 *   depend on the order in which threads registered things.
 */
#include "core/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double EP_METRICS_LATENCY_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                             1,      2.5,     5,      10};
const size_t EP_METRICS_LATENCY_NBUCKETS =
    sizeof(EP_METRICS_LATENCY_BUCKETS) / sizeof(EP_METRICS_LATENCY_BUCKETS[0]);

/* ---- thread slots ---- */

_Thread_local int ep_metrics__tls_slot = -1;

static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static pthread_key_t slot_key;
static _Atomic uint32_t slot_used; /* bit i: exclusive slot i taken */

static void slot_release(void *p)
{
    int s = (int)(intptr_t)p - 1;
    /* Late writes from other destructors of this thread go to the shared
     * slot, which is always safe. */
    ep_metrics__tls_slot = EP_METRICS_SHARDS - 1;
    if (s >= 0 && s < EP_METRICS_SHARDS - 1)
        atomic_fetch_and_explicit(&slot_used, ~(1u << s), memory_order_release);
}

static void slot_key_create(void) { pthread_key_create(&slot_key, slot_release); }

int ep_metrics__slot_acquire(void)
{
    pthread_once(&slot_once, slot_key_create);
    uint32_t used = atomic_load_explicit(&slot_used, memory_order_relaxed);
    int s = EP_METRICS_SHARDS - 1;
    for (int i = 0; i < EP_METRICS_SHARDS - 1; i++) {
        if (used & (1u << i))
            continue;
        if (atomic_compare_exchange_weak_explicit(&slot_used, &used, used | (1u << i),
                                                  memory_order_acquire, memory_order_relaxed)) {
            s = i;
            break;
        }
        i = -1; /* bitmap changed under us: rescan with the fresh value */
    }
    ep_metrics__tls_slot = s;
    if (s < EP_METRICS_SHARDS - 1)
        pthread_setspecific(slot_key, (void *)(intptr_t)(s + 1));
    return s;
}

/* ---- registry structures ---- */

typedef struct cell_chunk {
    _Atomic uint64_t *cells; /* EP_METRICS_SHARDS * EP_METRICS__STRIDE */
    size_t used;
} cell_chunk;

struct ep_gauge {
    _Atomic uint64_t bits; /* double */
};

struct ep_histogram {
    _Atomic uint64_t *cell; /* nbuckets + 1 bucket counts (not cumulative), then the sum */
    const double *bounds;
    size_t nb;
};

typedef struct series {
    char *values[EP_METRICS_MAX_LABELS];
    union {
        ep_counter c;
        ep_gauge g;
        ep_histogram h;
    } u;
} series;

struct ep_metric {
    ep_metrics *reg;
    ep_metric_type type;
    char *name;
    char *help;
    size_t nlabels;
    char *labels[EP_METRICS_MAX_LABELS];
    double *bounds;
    size_t nb;
    series **series;
    size_t nseries, cap;
};

struct ep_metrics_collector {
    ep_metrics_collect_fn fn;
    void *ud;
    ep_metrics_collector *next;
};

struct ep_metrics_check {
    char *name;
    ep_metrics_check_fn fn;
    void *ud;
    bool ready;    /* flag checks; guarded by check_lock */
    char why[128]; /* guarded by check_lock */
    ep_metrics_check *next;
};

struct ep_metrics {
    pthread_mutex_t lock; /* families, series, chunks */
    ep_metric **fams;
    size_t nfams, fcap;
    cell_chunk *chunks;
    size_t nchunks, ccap;

    pthread_mutex_t collect_lock; /* collectors; held during a scrape */
    ep_metrics_collector *collectors;

    pthread_mutex_t check_lock;
    ep_metrics_check *checks; /* sorted by name */
};

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

ep_err ep_metrics_new(ep_metrics **out)
{
    ep_metrics *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return EP_ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->collect_lock, NULL);
    pthread_mutex_init(&r->check_lock, NULL);
    *out = r;
    return EP_EOK;
}

static void family_free(ep_metric *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nseries; i++) {
        for (size_t j = 0; j < f->nlabels; j++)
            free(f->series[i]->values[j]);
        free(f->series[i]);
    }
    free(f->series);
    for (size_t j = 0; j < f->nlabels; j++)
        free(f->labels[j]);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

void ep_metrics_free(ep_metrics *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nfams; i++)
        family_free(r->fams[i]);
    free(r->fams);
    for (size_t i = 0; i < r->nchunks; i++)
        free((void *)r->chunks[i].cells);
    free(r->chunks);
    while (r->collectors) {
        ep_metrics_collector *c = r->collectors;
        r->collectors = c->next;
        free(c);
    }
    while (r->checks) {
        ep_metrics_check *c = r->checks;
        r->checks = c->next;
        free(c->name);
        free(c);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->collect_lock);
    pthread_mutex_destroy(&r->check_lock);
    free(r);
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static ep_metrics *default_reg;

static void default_create(void)
{
    if (ep_metrics_new(&default_reg) != EP_EOK)
        abort(); /* startup allocation */
}

ep_metrics *ep_metrics_default(void)
{
    pthread_once(&default_once, default_create);
    return default_reg;
}

/* ---- validation ---- */

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

bool ep_metrics_name_valid(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (size_t i = 0; s[i]; i++)
        if (!name_char(s[i], i == 0, true))
            return false;
    return true;
}

static bool label_name_valid_n(const char *s, size_t n)
{
    if (n == 0 || (n >= 2 && s[0] == '_' && s[1] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i], i == 0, false))
            return false;
    return true;
}

bool ep_metrics_label_name_valid(const char *s)
{
    return s != NULL && label_name_valid_n(s, strlen(s));
}

/* Splits "a,b, c" into names; validates each. */
static ep_err parse_labels(const char *spec, ep_metric_type type, char names[][64], size_t *n)
{
    *n = 0;
    if (spec == NULL || *spec == '\0')
        return EP_EOK;
    const char *p = spec;
    for (;;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        size_t len = (size_t)(e - p);
        if (*n == EP_METRICS_MAX_LABELS || len >= 64 || !label_name_valid_n(p, len))
            return EP_EINVAL;
        memcpy(names[*n], p, len);
        names[*n][len] = '\0';
        if (type == EP_METRIC_HISTOGRAM && strcmp(names[*n], "le") == 0)
            return EP_EINVAL;
        for (size_t i = 0; i < *n; i++)
            if (strcmp(names[i], names[*n]) == 0)
                return EP_EINVAL;
        (*n)++;
        while (*e == ' ')
            e++;
        if (*e == '\0')
            return EP_EOK;
        if (*e != ',')
            return EP_EINVAL;
        p = e + 1;
    }
}

/* ---- registration ---- */

static size_t fam_lower_bound(const ep_metrics *r, const char *name)
{
    size_t lo = 0, hi = r->nfams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(r->fams[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool same_shape(const ep_metric *f, ep_metric_type type, char names[][64], size_t nl,
                       const double *b, size_t nb)
{
    if (f->type != type || f->nlabels != nl || f->nb != nb)
        return false;
    for (size_t i = 0; i < nl; i++)
        if (strcmp(f->labels[i], names[i]) != 0)
            return false;
    for (size_t i = 0; i < nb; i++)
        if (f->bounds[i] != b[i])
            return false;
    return true;
}

static series *series_add_locked(ep_metric *f, const char *const *values);

ep_err ep_metrics_register(ep_metrics *r, const ep_metric_desc *d, ep_metric **out)
{
    char names[EP_METRICS_MAX_LABELS][64];
    size_t nl;
    const double *b = d->buckets;
    size_t nb = d->nbuckets;
    if (d->type > EP_METRIC_HISTOGRAM || !ep_metrics_name_valid(d->name))
        return EP_EINVAL;
    ep_err err = parse_labels(d->labels, d->type, names, &nl);
    if (err)
        return err;
    if (d->type == EP_METRIC_HISTOGRAM) {
        if (b == NULL) {
            b = EP_METRICS_LATENCY_BUCKETS;
            nb = EP_METRICS_LATENCY_NBUCKETS;
        }
        if (nb == 0 || nb > EP_METRICS_MAX_BUCKETS)
            return EP_EINVAL;
        for (size_t i = 0; i < nb; i++)
            if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
                return EP_EINVAL;
    } else {
        b = NULL;
        nb = 0;
    }

    pthread_mutex_lock(&r->lock);
    size_t pos = fam_lower_bound(r, d->name);
    if (pos < r->nfams && strcmp(r->fams[pos]->name, d->name) == 0) {
        ep_metric *f = r->fams[pos];
        pthread_mutex_unlock(&r->lock);
        if (!same_shape(f, d->type, names, nl, b, nb))
            return EP_EEXIST;
        *out = f;
        return EP_EOK;
    }
    err = EP_ENOMEM;
    ep_metric *f = calloc(1, sizeof(*f));
    if (f == NULL)
        goto fail;
    f->reg = r;
    f->type = d->type;
    f->name = strdup(d->name);
    f->help = strdup(d->help ? d->help : "");
    if (f->name == NULL || f->help == NULL)
        goto fail;
    for (; f->nlabels < nl; f->nlabels++)
        if ((f->labels[f->nlabels] = strdup(names[f->nlabels])) == NULL)
            goto fail;
    if (nb) {
        if ((f->bounds = malloc(nb * sizeof(double))) == NULL)
            goto fail;
        memcpy(f->bounds, b, nb * sizeof(double));
        f->nb = nb;
    }
    if (r->nfams == r->fcap) {
        size_t cap = r->fcap ? r->fcap * 2 : 32;
        ep_metric **v = realloc(r->fams, cap * sizeof(*v));
        if (v == NULL)
            goto fail;
        r->fams = v;
        r->fcap = cap;
    }
    /* A family without labels has exactly one series: create it now so the
     * metric is exposed (as 0) from the start. */
    if (nl == 0 && series_add_locked(f, NULL) == NULL)
        goto fail;
    memmove(r->fams + pos + 1, r->fams + pos, (r->nfams - pos) * sizeof(*r->fams));
    r->fams[pos] = f;
    r->nfams++;
    pthread_mutex_unlock(&r->lock);
    *out = f;
    return EP_EOK;
fail:
    pthread_mutex_unlock(&r->lock);
    family_free(f);
    return err;
}

/* ---- series ---- */

static _Atomic uint64_t *cells_alloc(ep_metrics *r, size_t n)
{
    cell_chunk *c = r->nchunks ? &r->chunks[r->nchunks - 1] : NULL;
    if (c == NULL || c->used + n > EP_METRICS__STRIDE) {
        if (r->nchunks == r->ccap) {
            size_t cap = r->ccap ? r->ccap * 2 : 4;
            cell_chunk *v = realloc(r->chunks, cap * sizeof(*v));
            if (v == NULL)
                return NULL;
            r->chunks = v;
            r->ccap = cap;
        }
        size_t bytes = (size_t)EP_METRICS_SHARDS * EP_METRICS__STRIDE * sizeof(uint64_t);
        void *mem = aligned_alloc(64, bytes);
        if (mem == NULL)
            return NULL;
        memset(mem, 0, bytes);
        c = &r->chunks[r->nchunks++];
        c->cells = mem;
        c->used = 0;
    }
    _Atomic uint64_t *p = c->cells + c->used;
    c->used += n;
    return p;
}

static int values_cmp(const ep_metric *f, char *const *a, const char *const *b)
{
    for (size_t i = 0; i < f->nlabels; i++) {
        int c = strcmp(a[i], b[i]);
        if (c)
            return c;
    }
    return 0;
}

static size_t series_lower_bound(const ep_metric *f, const char *const *values)
{
    size_t lo = 0, hi = f->nseries;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (values_cmp(f, f->series[mid]->values, values) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static series *series_add_locked(ep_metric *f, const char *const *values)
{
    static const char *const no_values[1] = {""};
    if (values == NULL) /* only for families without labels */
        values = no_values;
    size_t pos = series_lower_bound(f, values);
    if (pos < f->nseries && values_cmp(f, f->series[pos]->values, values) == 0)
        return f->series[pos];
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        series **v = realloc(f->series, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        f->series = v;
        f->cap = cap;
    }
    series *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < f->nlabels; i++) {
        if ((s->values[i] = strdup(values[i])) == NULL)
            goto fail;
    }
    switch (f->type) {
    case EP_METRIC_COUNTER:
        if ((s->u.c._cell = cells_alloc(f->reg, 1)) == NULL)
            goto fail;
        break;
    case EP_METRIC_GAUGE:
        break;
    case EP_METRIC_HISTOGRAM:
        if ((s->u.h.cell = cells_alloc(f->reg, f->nb + 2)) == NULL)
            goto fail;
        s->u.h.bounds = f->bounds;
        s->u.h.nb = f->nb;
        break;
    }
    memmove(f->series + pos + 1, f->series + pos, (f->nseries - pos) * sizeof(*f->series));
    f->series[pos] = s;
    f->nseries++;
    return s;
fail:
    for (size_t i = 0; i < f->nlabels; i++)
        free(s->values[i]);
    free(s);
    return NULL;
}

static ep_err series_get(ep_metric *f, ep_metric_type type, const char *const *values, series **out)
{
    if (f == NULL || f->type != type || (f->nlabels && values == NULL))
        return EP_EINVAL;
    for (size_t i = 0; i < f->nlabels; i++)
        if (values[i] == NULL || strlen(values[i]) > EP_METRICS_MAX_LABEL_LEN)
            return EP_EINVAL;
    pthread_mutex_lock(&f->reg->lock);
    series *s = series_add_locked(f, values);
    pthread_mutex_unlock(&f->reg->lock);
    if (s == NULL)
        return EP_ENOMEM;
    *out = s;
    return EP_EOK;
}

ep_err ep_metric_counter(ep_metric *m, const char *const *values, ep_counter **out)
{
    series *s;
    ep_err err = series_get(m, EP_METRIC_COUNTER, values, &s);
    if (err == EP_EOK)
        *out = &s->u.c;
    return err;
}

ep_err ep_metric_gauge(ep_metric *m, const char *const *values, ep_gauge **out)
{
    series *s;
    ep_err err = series_get(m, EP_METRIC_GAUGE, values, &s);
    if (err == EP_EOK)
        *out = &s->u.g;
    return err;
}

ep_err ep_metric_histogram(ep_metric *m, const char *const *values, ep_histogram **out)
{
    series *s;
    ep_err err = series_get(m, EP_METRIC_HISTOGRAM, values, &s);
    if (err == EP_EOK)
        *out = &s->u.h;
    return err;
}

ep_err ep_metrics_counter_simple(ep_metrics *reg, const char *name, const char *help,
                                 ep_counter **out)
{
    ep_metric_desc d = {.type = EP_METRIC_COUNTER, .name = name, .help = help};
    ep_metric *f;
    ep_err err = ep_metrics_register(reg, &d, &f);
    return err ? err : ep_metric_counter(f, NULL, out);
}

ep_err ep_metrics_gauge_simple(ep_metrics *reg, const char *name, const char *help, ep_gauge **out)
{
    ep_metric_desc d = {.type = EP_METRIC_GAUGE, .name = name, .help = help};
    ep_metric *f;
    ep_err err = ep_metrics_register(reg, &d, &f);
    return err ? err : ep_metric_gauge(f, NULL, out);
}

ep_err ep_metrics_histogram_simple(ep_metrics *reg, const char *name, const char *help,
                                   const double *buckets, size_t nbuckets, ep_histogram **out)
{
    ep_metric_desc d = {.type = EP_METRIC_HISTOGRAM,
                        .name = name,
                        .help = help,
                        .buckets = buckets,
                        .nbuckets = nbuckets};
    ep_metric *f;
    ep_err err = ep_metrics_register(reg, &d, &f);
    return err ? err : ep_metric_histogram(f, NULL, out);
}

/* ---- values ---- */

static uint64_t cell_sum(const _Atomic uint64_t *cell)
{
    uint64_t sum = 0;
    for (size_t s = 0; s < EP_METRICS_SHARDS; s++)
        sum += atomic_load_explicit(cell + s * EP_METRICS__STRIDE, memory_order_relaxed);
    return sum;
}

double ep_counter_value(const ep_counter *c)
{
    return (double)cell_sum(c->_cell) + u2d(atomic_load_explicit(&c->_base, memory_order_relaxed));
}

void ep_counter_set(ep_counter *c, double v)
{
    atomic_store_explicit(&c->_base, d2u(v - (double)cell_sum(c->_cell)), memory_order_relaxed);
}

void ep_gauge_set(ep_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}

void ep_gauge_add(ep_gauge *g, double d)
{
    uint64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&g->bits, &old, d2u(u2d(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

double ep_gauge_value(const ep_gauge *g)
{
    return u2d(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

void ep_histogram_observe(ep_histogram *h, double v)
{
    /* First bucket whose upper bound is >= v (NaN lands in +Inf), by a
     * branch-free binary search: latencies are random, and mispredicted
     * branches would cost more than the whole update. */
    const double *base = h->bounds;
    size_t n = h->nb;
    while (n > 1) {
        size_t half = n / 2;
        base = !(v <= base[half - 1]) ? base + half : base;
        n -= half;
    }
    size_t lo = (size_t)(base - h->bounds) + (size_t) !(v <= base[0]);
    int slot = ep_metrics__slot();
    ep_metrics__cell_add(h->cell + lo, slot, 1);
    _Atomic uint64_t *sum = h->cell + h->nb + 1 + (size_t)slot * EP_METRICS__STRIDE;
    uint64_t old = atomic_load_explicit(sum, memory_order_relaxed);
    if (slot < EP_METRICS_SHARDS - 1) {
        atomic_store_explicit(sum, d2u(u2d(old) + v), memory_order_relaxed);
    } else {
        while (!atomic_compare_exchange_weak_explicit(sum, &old, d2u(u2d(old) + v),
                                                      memory_order_relaxed, memory_order_relaxed))
            ;
    }
}

uint64_t ep_histogram_count(const ep_histogram *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= h->nb; i++)
        n += cell_sum(h->cell + i);
    return n;
}

double ep_histogram_sum(const ep_histogram *h)
{
    double sum = 0;
    for (size_t s = 0; s < EP_METRICS_SHARDS; s++)
        sum += u2d(atomic_load_explicit(h->cell + h->nb + 1 + s * EP_METRICS__STRIDE,
                                        memory_order_relaxed));
    return sum;
}

/* ---- collectors ---- */

ep_err ep_metrics_collector_add(ep_metrics *r, ep_metrics_collect_fn fn, void *ud,
                                ep_metrics_collector **out)
{
    ep_metrics_collector *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return EP_ENOMEM;
    c->fn = fn;
    c->ud = ud;
    pthread_mutex_lock(&r->collect_lock);
    ep_metrics_collector **pp = &r->collectors; /* keep registration order */
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
    pthread_mutex_unlock(&r->collect_lock);
    if (out)
        *out = c;
    return EP_EOK;
}

void ep_metrics_collector_remove(ep_metrics *r, ep_metrics_collector *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&r->collect_lock);
    for (ep_metrics_collector **pp = &r->collectors; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    pthread_mutex_unlock(&r->collect_lock);
    free(h);
}

/* ---- rendering ---- */

size_t ep_metrics_format_double(double v, char *buf, size_t n)
{
    int len;
    if (isnan(v))
        len = snprintf(buf, n, "NaN");
    else if (isinf(v))
        len = snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
    else {
        /* %g drops trailing zeros, so the first precision that reads back
         * exactly gives the shortest text. */
        for (int prec = 15;; prec++) {
            len = snprintf(buf, n, "%.*g", prec, v);
            if (prec == 17 || strtod(buf, NULL) == v)
                break;
        }
    }
    return len < 0 ? 0 : (size_t)len < n ? (size_t)len : n - 1;
}

typedef struct out_ctx {
    ep_buf *b;
    ep_err err;
} out_ctx;

static void put(out_ctx *o, const char *s, size_t n)
{
    if (o->err == EP_EOK)
        o->err = ep_buf_append(o->b, s, n);
}

static void puts_(out_ctx *o, const char *s) { put(o, s, strlen(s)); }

/* Escapes backslash and newline (HELP) and also '"' (label values). */
static void put_escaped(out_ctx *o, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (rep) {
            put(o, run, (size_t)(s - run));
            put(o, rep, 2);
            run = s + 1;
        }
    }
    put(o, run, (size_t)(s - run));
}

static void put_labels(out_ctx *o, const ep_metric *f, const series *s, const char *le)
{
    if (f->nlabels == 0 && le == NULL)
        return;
    puts_(o, "{");
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i)
            puts_(o, ",");
        puts_(o, f->labels[i]);
        puts_(o, "=\"");
        put_escaped(o, s->values[i], true);
        puts_(o, "\"");
    }
    if (le) {
        if (f->nlabels)
            puts_(o, ",");
        puts_(o, "le=\"");
        puts_(o, le);
        puts_(o, "\"");
    }
    puts_(o, "}");
}

static void put_sample(out_ctx *o, const ep_metric *f, const series *s, const char *suffix,
                       const char *le, const char *value)
{
    puts_(o, f->name);
    if (suffix)
        puts_(o, suffix);
    put_labels(o, f, s, le);
    puts_(o, " ");
    puts_(o, value);
    puts_(o, "\n");
}

static void render_family(out_ctx *o, const ep_metric *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    char v[64], le[64];
    if (f->nseries == 0)
        return;
    if (f->help[0]) {
        puts_(o, "# HELP ");
        puts_(o, f->name);
        puts_(o, " ");
        put_escaped(o, f->help, false);
        puts_(o, "\n");
    }
    puts_(o, "# TYPE ");
    puts_(o, f->name);
    puts_(o, " ");
    puts_(o, type_names[f->type]);
    puts_(o, "\n");
    for (size_t i = 0; i < f->nseries; i++) {
        const series *s = f->series[i];
        switch (f->type) {
        case EP_METRIC_COUNTER: {
            double base = u2d(atomic_load_explicit(&s->u.c._base, memory_order_relaxed));
            uint64_t sum = cell_sum(s->u.c._cell);
            if (base == 0)
                snprintf(v, sizeof(v), "%" PRIu64, sum);
            else
                ep_metrics_format_double((double)sum + base, v, sizeof(v));
            put_sample(o, f, s, NULL, NULL, v);
            break;
        }
        case EP_METRIC_GAUGE:
            ep_metrics_format_double(ep_gauge_value(&s->u.g), v, sizeof(v));
            put_sample(o, f, s, NULL, NULL, v);
            break;
        case EP_METRIC_HISTOGRAM: {
            uint64_t cum = 0;
            for (size_t b = 0; b <= f->nb; b++) {
                cum += cell_sum(s->u.h.cell + b);
                if (b < f->nb)
                    ep_metrics_format_double(f->bounds[b], le, sizeof(le));
                else
                    snprintf(le, sizeof(le), "+Inf");
                snprintf(v, sizeof(v), "%" PRIu64, cum);
                put_sample(o, f, s, "_bucket", le, v);
            }
            ep_metrics_format_double(ep_histogram_sum(&s->u.h), v, sizeof(v));
            put_sample(o, f, s, "_sum", NULL, v);
            snprintf(v, sizeof(v), "%" PRIu64, cum);
            put_sample(o, f, s, "_count", NULL, v);
            break;
        }
        }
    }
}

ep_err ep_metrics_render(ep_metrics *r, ep_buf *out)
{
    out_ctx o = {out, EP_EOK};
    pthread_mutex_lock(&r->collect_lock);
    for (ep_metrics_collector *c = r->collectors; c; c = c->next)
        c->fn(r, c->ud);
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nfams && o.err == EP_EOK; i++)
        render_family(&o, r->fams[i]);
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_unlock(&r->collect_lock);
    return o.err;
}

/* ---- readiness checks ---- */

ep_err ep_metrics_check_add(ep_metrics *r, const char *name, ep_metrics_check_fn fn, void *ud,
                            ep_metrics_check **out)
{
    if (name == NULL || *name == '\0')
        return EP_EINVAL;
    ep_metrics_check *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->name = strdup(name)) == NULL) {
        free(c);
        return EP_ENOMEM;
    }
    c->fn = fn;
    c->ud = ud;
    snprintf(c->why, sizeof(c->why), "not ready yet");
    pthread_mutex_lock(&r->check_lock);
    ep_metrics_check **pp = &r->checks;
    while (*pp && strcmp((*pp)->name, name) < 0)
        pp = &(*pp)->next;
    if (*pp && strcmp((*pp)->name, name) == 0) {
        pthread_mutex_unlock(&r->check_lock);
        free(c->name);
        free(c);
        return EP_EEXIST;
    }
    c->next = *pp;
    *pp = c;
    pthread_mutex_unlock(&r->check_lock);
    if (out)
        *out = c;
    return EP_EOK;
}

/* Flag states are tiny and rarely written: one lock for all of them keeps
 * a check independent of its registry. */
static pthread_mutex_t flag_lock = PTHREAD_MUTEX_INITIALIZER;

void ep_metrics_check_set(ep_metrics_check *c, bool ready, const char *why)
{
    pthread_mutex_lock(&flag_lock);
    c->ready = ready;
    snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
    pthread_mutex_unlock(&flag_lock);
}

void ep_metrics_check_remove(ep_metrics *r, ep_metrics_check *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&r->check_lock);
    for (ep_metrics_check **pp = &r->checks; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&r->check_lock);
    free(c->name);
    free(c);
}

size_t ep_metrics_checks_run(ep_metrics *r, ep_metrics_check_result_fn fn, void *ud)
{
    size_t failing = 0;
    pthread_mutex_lock(&r->check_lock);
    for (ep_metrics_check *c = r->checks; c; c = c->next) {
        char why[128] = "";
        bool ok;
        if (c->fn) {
            ok = c->fn(c->ud, why, sizeof(why));
            why[sizeof(why) - 1] = '\0';
        } else {
            pthread_mutex_lock(&flag_lock);
            ok = c->ready;
            snprintf(why, sizeof(why), "%s", c->why);
            pthread_mutex_unlock(&flag_lock);
        }
        if (!ok)
            failing++;
        if (fn)
            fn(ud, c->name, ok, ok ? "" : why);
    }
    pthread_mutex_unlock(&r->check_lock);
    return failing;
}
