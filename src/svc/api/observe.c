/*
 * observe.c - /metrics, /healthz, /readyz and the index; see observe.h.
 *
 * /metrics renders the registry straight into the response body (collectors
 * run first, on this thread). /readyz evaluates every readiness check on
 * each request, so a check flips the answer immediately; the checks are
 * cheap reads of state other threads publish. The process_* metrics use the
 * names of the official Prometheus clients so standard dashboards work.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "svc/api/observe.h"

typedef struct proc_metrics {
    ep_counter *cpu;
    ep_gauge *rss, *vsize, *fds, *max_fds, *start, *threads;
    double started;
} proc_metrics;

struct ep_api_server {
    proc_metrics pm;
    ep_loop *loop;
    ep_http_server *http;
    ep_metrics *metrics;
    ep_metrics_collector *proc_collector;
    uint16_t port;
    /* own thread (ep_api_server_start_thread) */
    bool own_loop;
    pthread_t thread;
    ep_err start_err;
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    bool started;
    char *hostport;
    ep_api_opts opts;
};

/* ---- handlers ---- */

static void h_metrics(const ep_http_request *req, ep_http_response *res, void *ud)
{
    ep_api_server *a = ud;
    (void)req;
    ep_http_response_header(res, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    ep_http_response_header(res, "Cache-Control", "no-store");
    if (ep_metrics_render(a->metrics, ep_http_response_buf(res)) != EP_EOK) {
        ep_buf_clear(ep_http_response_buf(res));
        ep_http_response_status(res, 500);
        ep_http_response_printf(res, "metrics rendering failed\n");
    }
}

static void h_healthz(const ep_http_request *req, ep_http_response *res, void *ud)
{
    (void)req;
    (void)ud;
    ep_http_response_header(res, "Cache-Control", "no-store");
    ep_http_respond(res, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

/* JSON string body with the escapes RFC 8259 requires; bytes >= 0x80 are
 * copied as they are (check reasons are ASCII/UTF-8 text). */
static void json_str(ep_http_response *res, const char *s)
{
    ep_http_response_body(res, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            ep_http_response_printf(res, "\\%c", c);
        else if (c < 0x20)
            ep_http_response_printf(res, "\\u%04x", c);
        else
            ep_http_response_body(res, s, 1);
    }
    ep_http_response_body(res, "\"", 1);
}

typedef struct ready_ctx {
    ep_http_response *res;
    size_t total, failing;
} ready_ctx;

static void on_check(void *ud, const char *name, bool ready, const char *why)
{
    ready_ctx *r = ud;
    r->total++;
    if (ready)
        return;
    if (r->failing++)
        ep_http_response_body(r->res, ",", 1);
    ep_http_response_printf(r->res, "{\"check\":");
    json_str(r->res, name);
    ep_http_response_printf(r->res, ",\"reason\":");
    json_str(r->res, why);
    ep_http_response_body(r->res, "}", 1);
}

static void h_readyz(const ep_http_request *req, ep_http_response *res, void *ud)
{
    ep_api_server *a = ud;
    (void)req;
    ready_ctx r = {res, 0, 0};
    ep_http_response_header(res, "Content-Type", "application/json");
    ep_http_response_header(res, "Cache-Control", "no-store");
    ep_http_response_printf(res, "{\"failing\":[");
    size_t failing = ep_metrics_checks_run(a->metrics, on_check, &r);
    ep_http_response_printf(res, "],\"status\":\"%s\",\"checks\":%zu}\n",
                            failing ? "not ready" : "ready", r.total);
    ep_http_response_status(res, failing ? 503 : 200);
}

static void h_index(const ep_http_request *req, ep_http_response *res, void *ud)
{
    static const char text[] = "edgeplane " EP_VERSION "\n"
                               "\n"
                               "/metrics  Prometheus metrics (text format 0.0.4)\n"
                               "/healthz  liveness\n"
                               "/readyz   readiness (JSON; 503 lists failing checks)\n";
    (void)req;
    (void)ud;
    ep_http_respond(res, 200, "text/plain; charset=utf-8", text, sizeof(text) - 1);
}

/* ---- process metrics ---- */

static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    double bt = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %lf", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

static void collect_process(ep_metrics *reg, void *ud)
{
    proc_metrics *p = ud;
    (void)reg;
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the command name, which may contain spaces. */
        const char *q = strrchr(buf, ')');
        unsigned long long ut, st, start, vsize;
        long long rss, nthreads;
        long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        if (q && tck > 0 &&
            sscanf(q + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                   "%lld %*d %llu %llu %lld",
                   &ut, &st, &nthreads, &start, &vsize, &rss) == 6) {
            ep_counter_set(p->cpu, (double)(ut + st) / (double)tck);
            ep_gauge_set(p->vsize, (double)vsize);
            ep_gauge_set(p->rss, (double)rss * (double)page);
            ep_gauge_set(p->threads, (double)nthreads);
            if (p->started == 0)
                p->started = boot_time() + (double)start / (double)tck;
            ep_gauge_set(p->start, p->started);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        double n = 0;
        while (readdir(d))
            n++;
        closedir(d);
        ep_gauge_set(p->fds, n - 3); /* ".", ".." and the DIR itself */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        ep_gauge_set(p->max_fds, rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}

static ep_err register_process(ep_api_server *a)
{
    ep_metrics *m = a->metrics;
    proc_metrics *p = &a->pm;
    ep_err err =
        ep_metrics_counter_simple(m, "process_cpu_seconds_total",
                                  "Total user and system CPU time spent in seconds.", &p->cpu);
    if (!err)
        err = ep_metrics_gauge_simple(m, "process_resident_memory_bytes",
                                      "Resident memory size in bytes.", &p->rss);
    if (!err)
        err = ep_metrics_gauge_simple(m, "process_virtual_memory_bytes",
                                      "Virtual memory size in bytes.", &p->vsize);
    if (!err)
        err = ep_metrics_gauge_simple(m, "process_open_fds", "Number of open file descriptors.",
                                      &p->fds);
    if (!err)
        err = ep_metrics_gauge_simple(m, "process_max_fds",
                                      "Maximum number of open file descriptors.", &p->max_fds);
    if (!err)
        err = ep_metrics_gauge_simple(m, "process_start_time_seconds",
                                      "Start time of the process since unix epoch in seconds.",
                                      &p->start);
    if (!err)
        err = ep_metrics_gauge_simple(m, "process_threads", "Number of OS threads in the process.",
                                      &p->threads);
    ep_metric *bi;
    ep_metric_desc bd = {.type = EP_METRIC_GAUGE,
                         .name = "edgeplane_build_info",
                         .help = "Build information; the value is always 1.",
                         .labels = "version"};
    ep_gauge *g;
    if (!err)
        err = ep_metrics_register(m, &bd, &bi);
    if (!err)
        err = ep_metric_gauge(bi, EP_LABELS(EP_VERSION), &g);
    if (!err) {
        ep_gauge_set(g, 1);
        err = ep_metrics_collector_add(m, collect_process, p, &a->proc_collector);
    }
    return err;
}

/* ---- server ---- */

static ep_err setup(ep_api_server *a, ep_loop *loop, const char *hostport, const ep_api_opts *o)
{
    ep_hostport hp;
    const char *why;
    a->loop = loop;
    a->metrics = o && o->metrics ? o->metrics : ep_metrics_default();
    ep_http_opts ho = o ? o->http : (ep_http_opts){0};
    if (ho.metrics == NULL)
        ho.metrics = a->metrics;
    if (ep_hostport_parse(hostport, &hp, &why) != EP_EOK)
        return EP_EINVAL;
    ep_err err = ep_http_server_new(loop, &ho, &a->http);
    if (!err)
        err = ep_http_route(a->http, EP_HTTP_GET, "/metrics", 0, h_metrics, a);
    if (!err)
        err = ep_http_route(a->http, EP_HTTP_GET, "/healthz", 0, h_healthz, a);
    if (!err)
        err = ep_http_route(a->http, EP_HTTP_GET, "/readyz", 0, h_readyz, a);
    if (!err)
        err = ep_http_route(a->http, EP_HTTP_GET, "/", 0, h_index, a);
    if (!err && !(o && o->no_process_metrics))
        err = register_process(a);
    if (!err && o && o->setup)
        o->setup(a->http, o->setup_ud);
    if (!err)
        err = ep_http_server_listen(a->http, &hp, &a->port);
    return err;
}

static void teardown(ep_api_server *a)
{
    if (a->proc_collector)
        ep_metrics_collector_remove(a->metrics, a->proc_collector);
    a->proc_collector = NULL;
    ep_http_server_free(a->http);
    a->http = NULL;
}

ep_err ep_api_server_start(ep_loop *loop, const char *hostport, const ep_api_opts *opts,
                           ep_api_server **out)
{
    ep_api_server *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return EP_ENOMEM;
    ep_err err = setup(a, loop, hostport, opts);
    if (err) {
        teardown(a);
        free(a);
        return err;
    }
    *out = a;
    return EP_EOK;
}

static void *thread_main(void *arg)
{
    ep_api_server *a = arg;
    ep_loop *loop = NULL;
    ep_err err = ep_loop_new(&loop, NULL);
    if (!err)
        err = setup(a, loop, a->hostport, &a->opts);
    pthread_mutex_lock(&a->start_lock);
    a->start_err = err;
    a->loop = loop;
    a->started = true;
    pthread_cond_signal(&a->start_cond);
    pthread_mutex_unlock(&a->start_lock);
    if (!err)
        ep_loop_run(loop);
    teardown(a);
    /* Deferred frees of closed connections run on the next iteration. */
    if (loop)
        ep_loop_run_once(loop, 0);
    ep_loop_free(loop);
    return NULL;
}

ep_err ep_api_server_start_thread(const char *hostport, const ep_api_opts *opts,
                                  ep_api_server **out)
{
    ep_api_server *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->hostport = strdup(hostport)) == NULL) {
        free(a);
        return EP_ENOMEM;
    }
    if (opts)
        a->opts = *opts;
    a->own_loop = true;
    pthread_mutex_init(&a->start_lock, NULL);
    pthread_cond_init(&a->start_cond, NULL);
    ep_err err = EP_EOK;
    if (pthread_create(&a->thread, NULL, thread_main, a) != 0) {
        err = EP_ESYS;
        goto fail;
    }
    pthread_mutex_lock(&a->start_lock);
    while (!a->started)
        pthread_cond_wait(&a->start_cond, &a->start_lock);
    err = a->start_err;
    pthread_mutex_unlock(&a->start_lock);
    if (err) {
        pthread_join(a->thread, NULL);
        goto fail;
    }
    *out = a;
    return EP_EOK;
fail:
    pthread_mutex_destroy(&a->start_lock);
    pthread_cond_destroy(&a->start_cond);
    free(a->hostport);
    free(a);
    return err;
}

uint16_t ep_api_server_port(const ep_api_server *a) { return a->port; }
ep_http_server *ep_api_server_http(ep_api_server *a) { return a->http; }
ep_loop *ep_api_server_loop(ep_api_server *a) { return a->loop; }

void ep_api_server_stop(ep_api_server *a)
{
    if (a == NULL)
        return;
    if (a->own_loop) {
        ep_loop_stop(a->loop);
        pthread_join(a->thread, NULL);
        pthread_mutex_destroy(&a->start_lock);
        pthread_cond_destroy(&a->start_cond);
        free(a->hostport);
    } else {
        teardown(a);
    }
    free(a);
}
