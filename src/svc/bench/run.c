/*
 * run.c - ep_bench_main: plan a run, drive its phases, merge the results.
 *
 * Phases (ep_bench_run.phase):
 *   CONNECT  workers open every connection (at most MAX_OPENING handshakes
 *            in flight per worker), subscribers subscribe; main waits until
 *            all are ready, or fails the run on the first refusal/timeout.
 *   RUN      publishers start at t_go; [t_start, t_end) after the warm-up
 *            is the measured window: only messages sent (stamped) or
 *            received inside it count towards rates and latency.
 *   DRAIN    nothing new is generated; workers keep writing what is
 *            buffered and reading/acking until every expected delivery
 *            arrived, nothing moved for DRAIN_QUIET, or --drain expired.
 *   STOP     workers send DISCONNECT, close and return.
 * The handshake scenario (cycle.c) runs one cycle per connector in CONNECT
 * and repeats cycles in RUN; DRAIN waits for the cycles in progress.
 * Loss is judged after DRAIN over the whole run (warm-up included), since
 * subscribers exist before the first message is sent.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "svc/bench/bench.h"
#include "svc/bench/bench_int.h"

#define SCRATCH_MIN (256u * 1024u)
#define DRAIN_QUIET_NS 500000000u
#define POLL_NS 5000000u

enum { EXIT_OK = 0, EXIT_RUN = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

static void sleep_until(uint64_t t_ns)
{
    struct timespec ts = {(time_t)(t_ns / 1000000000u), (long)(t_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0.0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* rss_kb reads VmRSS of pid from /proc; -1 when unavailable. */
static long rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static int resolve(ep_bench_run *r)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%u", (unsigned)r->o.port);
    int rc = getaddrinfo(r->o.host, port, &hints, &res);
    if (rc != 0 || !res) {
        fprintf(stderr, "bench: cannot resolve %s: %s\n", r->o.host,
                rc ? gai_strerror(rc) : "no address");
        return -1;
    }
    memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
    r->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* raise_nofile lifts the soft descriptor limit towards the hard one. */
static int raise_nofile(uint32_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    if (rl.rlim_cur >= need)
        return 0;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need) {
        fprintf(stderr,
                "bench: %u file descriptors needed, the limit is %lu "
                "(raise it with ulimit -n)\n",
                need, (unsigned long)rl.rlim_cur);
        return -1;
    }
    return 0;
}

static char *str_printf(const char *fmt, const char *a, uint32_t n)
{
    char tmp[EP_BENCH_MAX_TOPIC + 64];
    int len = snprintf(tmp, sizeof(tmp), fmt, a, (unsigned)n);
    if (len < 0 || (size_t)len > EP_BENCH_MAX_TOPIC)
        return NULL;
    return strdup(tmp);
}

/* plan builds topics, filters and connections. Returns 0 or -1 (message
 * printed). Startup allocations: failure aborts the run. */
static int plan(ep_bench_run *r)
{
    const ep_bench_opts *o = &r->o;
    uint32_t P = o->publishers, S = o->subscribers;
    int idle = o->scenario == EP_BENCH_IDLE;
    int hs = o->scenario == EP_BENCH_HANDSHAKE;

    snprintf(r->client_prefix, sizeof(r->client_prefix), "epb%ld-", (long)getpid());
    r->nconns = idle ? o->connections : hs ? o->connectors : P + S;
    r->conns = calloc(r->nconns, sizeof(*r->conns));
    if (!r->conns)
        goto oom;
    for (uint32_t i = 0; i < r->nconns; i++)
        r->conns[i].fd = -1;

    if (!idle && !hs) {
        const char *fmt = "%s/t%u";
        r->ntopics = 1;
        switch (o->scenario) {
        case EP_BENCH_FAN_IN:
            r->ntopics = o->topics;
            break;
        case EP_BENCH_FAN_OUT:
            fmt = "%s/fan-out";
            break;
        case EP_BENCH_P2P:
            fmt = "%s/p%u";
            r->ntopics = P;
            break;
        case EP_BENCH_SHARED:
            fmt = "%s/shared";
            break;
        case EP_BENCH_IDLE:
        case EP_BENCH_HANDSHAKE:
            break;
        }
        r->topics = calloc(r->ntopics, sizeof(char *));
        if (!r->topics)
            goto oom;
        for (uint32_t i = 0; i < r->ntopics; i++) {
            r->topics[i] = str_printf(fmt, o->prefix, i);
            if (!r->topics[i]) {
                fprintf(stderr, "bench: topic names too long; use a shorter --prefix\n");
                return -1;
            }
        }
        if (o->scenario != EP_BENCH_P2P) {
            r->nfilters = o->scenario == EP_BENCH_FAN_IN ? r->ntopics : 1;
            r->filters = calloc(r->nfilters, sizeof(char *));
            if (!r->filters)
                goto oom;
            for (uint32_t i = 0; i < r->nfilters; i++) {
                if (o->scenario == EP_BENCH_SHARED) {
                    char f[EP_BENCH_MAX_TOPIC + 32];
                    snprintf(f, sizeof(f), "$share/bench/%s", r->topics[0]);
                    r->filters[i] = strdup(f);
                } else {
                    r->filters[i] = strdup(r->topics[i]);
                }
                if (!r->filters[i])
                    goto oom;
            }
        }
    }

    for (uint32_t i = 0; i < r->nconns; i++) {
        ep_bench_conn *c = &r->conns[i];
        ep_buf_init(&c->out, 0);
        ep_buf_init(&c->carry, 0);
        if (idle) {
            c->role = EP_BENCH_ROLE_IDLE;
            c->index = i;
        } else if (hs) {
            c->role = EP_BENCH_ROLE_HS;
            c->index = i;
            if (o->rate > 0.0)
                c->interval_ns = 1e9 * (double)o->connectors / o->rate;
        } else if (i < P) {
            c->role = EP_BENCH_ROLE_PUB;
            c->index = i;
            uint32_t t = o->scenario == EP_BENCH_FAN_IN ? i % r->ntopics
                         : o->scenario == EP_BENCH_P2P  ? i
                                                        : 0;
            c->topic = ep_mqtt_slice_make(r->topics[t], strlen(r->topics[t]));
            size_t hl = 0;
            ep_err err = ep_bench__wire_publish_hdr(c->hdr, sizeof(c->hdr), &hl, o->version, o->qos,
                                                    c->topic, o->qos ? 1 : 0, o->size);
            if (err) {
                fprintf(stderr, "bench: cannot encode PUBLISH header: %s\n", ep_strerror(err));
                return -1;
            }
            c->hdr_len = (uint32_t)hl;
            c->window = o->inflight;
            if (o->qos) {
                c->slots = calloc(c->window, 1);
                if (!c->slots)
                    goto oom;
            }
            if (o->rate > 0.0)
                c->interval_ns = 1e9 * (double)P / o->rate;
        } else {
            c->role = EP_BENCH_ROLE_SUB;
            c->index = i - P;
            c->pub_base = o->scenario == EP_BENCH_P2P ? c->index : 0;
            c->pub_count = o->scenario == EP_BENCH_P2P ? 1 : P;
            c->streams = calloc(c->pub_count, sizeof(*c->streams));
            if (!c->streams)
                goto oom;
        }
    }
    return 0;
oom:
    fprintf(stderr, "bench: out of memory planning %u connections\n", r->nconns);
    return -1;
}

static int workers_create(ep_bench_run *r)
{
    const ep_bench_opts *o = &r->o;
    r->nworkers = o->threads;
    r->workers = calloc(r->nworkers, sizeof(*r->workers));
    if (!r->workers)
        return -1;
    size_t pkt = (size_t)EP_BENCH_MAX_HDR + o->size;
    size_t scratch = SCRATCH_MIN > 4 * pkt ? SCRATCH_MIN : 4 * pkt;
    for (uint32_t k = 0; k < r->nworkers; k++) {
        ep_bench_worker *w = &r->workers[k];
        w->run = r;
        w->id = k;
        w->epfd = -1;
        w->next_due_ns = UINT64_MAX;
        w->hs_next_ns = UINT64_MAX;
        ep_bench__hist_clear(&w->hist);
        ep_bench__hist_clear(&w->hist_sent);
    }
    for (uint32_t k = 0; k < r->nworkers; k++) {
        ep_bench_worker *w = &r->workers[k];
        uint32_t n = r->nconns / r->nworkers + (k < r->nconns % r->nworkers);
        w->conns = calloc(n ? n : 1, sizeof(*w->conns));
        w->ready = calloc(n ? n : 1, sizeof(*w->ready));
        w->ready2 = calloc(n ? n : 1, sizeof(*w->ready2));
        w->paced = calloc(n ? n : 1, sizeof(*w->paced));
        w->scratch = malloc(scratch);
        w->scratch_cap = scratch;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!w->conns || !w->ready || !w->ready2 || !w->paced || !w->scratch || w->epfd < 0)
            return -1;
    }
    /* Interleave: publishers and subscribers spread evenly over threads. */
    for (uint32_t i = 0; i < r->nconns; i++) {
        ep_bench_worker *w = &r->workers[i % r->nworkers];
        r->conns[i].w = w;
        w->conns[w->nconns++] = &r->conns[i];
    }
    return 0;
}

static void run_free(ep_bench_run *r)
{
    for (uint32_t i = 0; i < r->nconns; i++)
        ep_bench__conn_fini(&r->conns[i]);
    free(r->conns);
    for (uint32_t k = 0; k < r->nworkers && r->workers; k++) {
        ep_bench_worker *w = &r->workers[k];
        free(w->conns);
        free(w->ready);
        free(w->ready2);
        free(w->paced);
        free(w->scratch);
        if (w->epfd >= 0)
            close(w->epfd);
    }
    free(r->workers);
    for (uint32_t i = 0; i < r->ntopics && r->topics; i++)
        free(r->topics[i]);
    free(r->topics);
    for (uint32_t i = 0; i < r->nfilters && r->filters; i++)
        free(r->filters[i]);
    free(r->filters);
    ep_bench__tls_ctx_free(r);
    free(r);
}

static const ep_bench_worker *first_error(const ep_bench_run *r)
{
    for (uint32_t k = 0; k < r->nworkers; k++)
        if (r->workers[k].err)
            return &r->workers[k];
    return NULL;
}

static void stop_and_join(ep_bench_run *r, uint32_t started)
{
    atomic_store_explicit(&r->phase, EP_BENCH_PH_STOP, memory_order_release);
    for (uint32_t k = 0; k < started; k++)
        pthread_join(r->workers[k].thread, NULL);
}

/* wait_ready waits for every connection to be set up. Returns 0, or -1
 * after printing why not. */
static int wait_ready(ep_bench_run *r)
{
    uint64_t deadline = ep_bench__now_ns() + 10000000000u + (uint64_t)r->nconns * 2000000u;
    for (;;) {
        if (atomic_load_explicit(&r->n_failed, memory_order_relaxed))
            break;
        if (atomic_load_explicit(&r->n_ready, memory_order_acquire) == r->nconns)
            return 0;
        uint64_t now = ep_bench__now_ns();
        if (now > deadline) {
            fprintf(stderr, "bench: timed out: %u of %u connections to %s:%u set up\n",
                    atomic_load(&r->n_ready), r->nconns, r->o.host, (unsigned)r->o.port);
            return -1;
        }
        sleep_until(now + POLL_NS);
    }
    /* Give the other workers a moment to record their error too. */
    sleep_until(ep_bench__now_ns() + 20 * POLL_NS);
    return -1;
}

static uint64_t live_sum(const ep_bench_run *r, int which)
{
    uint64_t s = 0;
    for (uint32_t k = 0; k < r->nworkers; k++) {
        const ep_bench_live *l = &r->workers[k].live;
        s += which == 0   ? atomic_load_explicit(&l->delivered, memory_order_relaxed)
             : which == 1 ? atomic_load_explicit(&l->sent, memory_order_relaxed)
                          : atomic_load_explicit(&l->busy, memory_order_acquire);
    }
    return s;
}

/* deliveries the scenario implies for `sent` messages */
static uint64_t expected_for(const ep_bench_opts *o, uint64_t sent)
{
    switch (o->scenario) {
    case EP_BENCH_FAN_IN:
    case EP_BENCH_FAN_OUT:
        return sent * o->subscribers;
    case EP_BENCH_P2P:
    case EP_BENCH_SHARED:
        return sent;
    case EP_BENCH_IDLE:
    case EP_BENCH_HANDSHAKE:
        return 0;
    }
    return 0;
}

static void drain(ep_bench_run *r)
{
    uint64_t limit = ep_bench__now_ns() + (uint64_t)(r->o.drain * 1e9);
    uint64_t last = UINT64_MAX, last_change = ep_bench__now_ns();
    for (;;) {
        uint64_t now = ep_bench__now_ns();
        uint64_t busy = live_sum(r, 2); /* first: then sent is final if 0 */
        uint64_t got = live_sum(r, 0);
        if (busy == 0 && got >= expected_for(&r->o, live_sum(r, 1)))
            return;
        if (got != last) {
            last = got;
            last_change = now;
        } else if (busy == 0 && now - last_change > DRAIN_QUIET_NS) {
            return;
        }
        if (now > limit)
            return;
        sleep_until(now + POLL_NS);
    }
}

/* h points to two histograms: from the stamped time and from the send time. */
static void collect(ep_bench_run *r, ep_bench_result *res, ep_bench_hist *h)
{
    const ep_bench_opts *o = &r->o;
    uint32_t P = o->publishers;
    ep_bench__hist_clear(&h[0]);
    ep_bench__hist_clear(&h[1]);
    res->hist = &h[0];
    res->hist_sent = &h[1];
    for (uint32_t k = 0; k < r->nworkers; k++) {
        const ep_bench_worker *w = &r->workers[k];
        ep_bench__hist_merge(&h[0], &w->hist);
        ep_bench__hist_merge(&h[1], &w->hist_sent);
        res->sent += w->sent_win;
        res->delivered += w->delivered_win;
        res->sent_total += w->sent_all;
        res->received_total += w->delivered_all;
        res->foreign += w->foreign;
        res->closed += w->closed;
        res->handshakes += w->hs_win;
        res->hs_total += w->hs_all;
        res->hs_errors += w->hs_errors;
        res->hs_resumed += w->hs_resumed;
        if (!res->tls_desc && w->tls_desc[0])
            res->tls_desc = w->tls_desc;
        if (w->lag_max_ns > res->lag_max_ns)
            res->lag_max_ns = w->lag_max_ns;
    }
    uint64_t *acc = o->scenario == EP_BENCH_SHARED ? calloc(P, sizeof(*acc)) : NULL;
    for (uint32_t i = P; i < r->nconns; i++) {
        const ep_bench_conn *c = &r->conns[i];
        for (uint32_t k = 0; k < c->pub_count; k++) {
            const ep_bench_stream *s = &c->streams[k];
            uint64_t sent = r->conns[c->pub_base + k].seq;
            res->dup += s->dup;
            res->ooo += s->ooo;
            if (acc) {
                acc[c->pub_base + k] += s->unique;
            } else {
                res->expected += sent;
                res->lost += sent > s->unique ? sent - s->unique : 0;
            }
        }
    }
    if (acc) {
        /* One copy per message across the whole group: extra copies on
         * different members are duplicates, missing ones are lost. */
        for (uint32_t p = 0; p < P; p++) {
            uint64_t sent = r->conns[p].seq;
            res->expected += sent;
            res->lost += sent > acc[p] ? sent - acc[p] : 0;
            res->dup += acc[p] > sent ? acc[p] - sent : 0;
        }
        free(acc);
    }
}

/* execute runs the planned benchmark on started workers and reports.
 * Returns the exit status. */
static int execute(ep_bench_run *r, ep_bench_hist *hist)
{
    const ep_bench_opts *o = &r->o;
    ep_bench_result res;
    uint32_t started = 0;
    int status = EXIT_OK;

    memset(&res, 0, sizeof(res));
    long rss0 = o->broker_pid ? rss_kb(o->broker_pid) : -1;
    if (o->broker_pid && rss0 < 0) {
        fprintf(stderr, "bench: cannot read /proc/%d/status\n", o->broker_pid);
        return EXIT_USAGE;
    }
    atomic_store(&r->phase, EP_BENCH_PH_CONNECT);
    uint64_t t0 = ep_bench__now_ns();
    for (; started < r->nworkers; started++) {
        if (pthread_create(&r->workers[started].thread, NULL, ep_bench__worker_main,
                           &r->workers[started]) != 0) {
            fprintf(stderr, "bench: cannot start thread\n");
            stop_and_join(r, started);
            return EXIT_RUN;
        }
    }
    if (wait_ready(r) < 0) {
        stop_and_join(r, started);
        const ep_bench_worker *w = first_error(r);
        if (w)
            fprintf(stderr, "bench: %s\n", w->errmsg);
        return EXIT_CONNECT;
    }
    res.connect_s = (double)(ep_bench__now_ns() - t0) / 1e9;

    if (o->scenario == EP_BENCH_IDLE) {
        res.connections = r->nconns;
        sleep_until(ep_bench__now_ns() + (uint64_t)(o->duration * 1e9));
        res.rss_before_kb = rss0;
        res.rss_after_kb = o->broker_pid ? rss_kb(o->broker_pid) : -1;
    } else {
        r->t_go = ep_bench__now_ns() + 1000000u;
        r->t_start = r->t_go + (uint64_t)(o->warmup * 1e9);
        r->t_end = r->t_start + (uint64_t)(o->duration * 1e9);
        for (uint32_t i = 0; i < o->publishers; i++) {
            ep_bench_conn *c = &r->conns[i];
            /* Spread publishers evenly over one interval so the total rate
             * is smooth rather than P-message bursts. */
            c->first_due_ns = r->t_go + (uint64_t)(c->interval_ns * i / o->publishers);
        }
        for (uint32_t i = 0; o->scenario == EP_BENCH_HANDSHAKE && i < r->nconns; i++) {
            ep_bench_conn *c = &r->conns[i];
            c->seq = 0; /* cycles started in the RUN phase */
            c->first_due_ns = r->t_go + (uint64_t)(c->interval_ns * i / r->nconns);
        }
        atomic_store_explicit(&r->phase, EP_BENCH_PH_RUN, memory_order_release);
        while (ep_bench__now_ns() < r->t_start &&
               atomic_load_explicit(&r->n_lost, memory_order_relaxed) < r->nconns)
            sleep_until(ep_bench__now_ns() + 10 * POLL_NS < r->t_start
                            ? ep_bench__now_ns() + 10 * POLL_NS
                            : r->t_start);
        double cpu0 = cpu_seconds();
        /* Stop early when the broker went away: nothing left to measure. */
        for (uint64_t t = ep_bench__now_ns(); t < r->t_end; t = ep_bench__now_ns()) {
            if (atomic_load_explicit(&r->n_lost, memory_order_relaxed) == r->nconns)
                break;
            sleep_until(t + 10 * POLL_NS < r->t_end ? t + 10 * POLL_NS : r->t_end);
        }
        res.cpu_s = cpu_seconds() - cpu0;
        uint64_t t_stop = ep_bench__now_ns();
        res.window_s = (double)((t_stop < r->t_end ? t_stop : r->t_end) - r->t_start) / 1e9;
        atomic_store_explicit(&r->phase, EP_BENCH_PH_DRAIN, memory_order_release);
        drain(r);
    }
    stop_and_join(r, started);
    collect(r, &res, hist);
    ep_bench__report(r, &res);
    if (res.closed) {
        const ep_bench_worker *w = first_error(r);
        fprintf(stderr, "bench: %llu connection(s) lost during the run%s%s\n",
                (unsigned long long)res.closed, w ? ": " : "", w ? w->errmsg : "");
        status = EXIT_RUN;
    }
    if (res.hs_errors) {
        const ep_bench_worker *w = first_error(r);
        fprintf(stderr, "bench: %llu handshake cycle(s) failed%s%s\n",
                (unsigned long long)res.hs_errors, w ? ": " : "", w ? w->errmsg : "");
        status = EXIT_RUN;
    }
    return status;
}

int ep_bench_main(int argc, char **argv)
{
    int status;
    ep_bench_hist *hist = NULL;
    ep_bench_run *r = calloc(1, sizeof(*r));
    if (!r) {
        fprintf(stderr, "bench: out of memory\n");
        return EXIT_RUN;
    }
    int prc = ep_bench__opts_parse(argc, argv, &r->o);
    if (prc != 0) {
        status = prc > 0 ? EXIT_OK : EXIT_USAGE;
        goto done;
    }
    if (resolve(r) < 0) {
        status = EXIT_CONNECT;
        goto done;
    }
    if (plan(r) < 0 || raise_nofile(r->nconns + 64u) < 0 || ep_bench__tls_ctx_new(r) < 0) {
        status = EXIT_RUN;
        goto done;
    }
    hist = malloc(2 * sizeof(*hist));
    if (!hist || workers_create(r) < 0) {
        fprintf(stderr, "bench: cannot set up worker threads: %s\n",
                ep_strerror(EP_ERR_FROM_ERRNO()));
        status = EXIT_RUN;
        goto done;
    }
    status = execute(r, hist);
done:
    free(hist);
    run_free(r);
    return status;
}
