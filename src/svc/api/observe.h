/*
 * observe.h - the observability HTTP endpoints, and the API server that will
 * also carry the REST API and the web UI.
 *
 *   GET /         short plain-text index of the endpoints
 *   GET /metrics  Prometheus text format 0.0.4 from an ep_metrics registry
 *   GET /healthz  liveness: 200 "ok" whenever the server's loop answers
 *   GET /readyz   readiness: 200 when every check registered with
 *                 ep_metrics_check_add passes, else 503 with a JSON body
 *                 naming the failing checks and why
 *
 * Services never depend on this module: they register metrics, collectors
 * and readiness checks in the core registry (core/metrics.h); this module
 * only serves it. Further routes (REST) are added with ep_http_route on
 * ep_api_server_http(), on the server's loop thread.
 */
#ifndef EP_SVC_API_OBSERVE_H
#define EP_SVC_API_OBSERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "svc/api/http.h"

typedef struct ep_api_server ep_api_server;

/* Zero-initialisable. */
typedef struct ep_api_opts {
    ep_metrics *metrics;     /* registry served; NULL = ep_metrics_default() */
    ep_http_opts http;       /* limits and timeouts; http.metrics NULL = `metrics` */
    bool no_process_metrics; /* leave out process_* and edgeplane_build_info */
    /* Called once on the server's loop thread after the built-in routes
     * are added and before the first connection is accepted: the place to
     * add more routes when the server runs on its own thread. */
    void (*setup)(ep_http_server *http, void *ud);
    void *setup_ud;
} ep_api_opts;

/* ep_api_server_start serves the endpoints on loop (which must outlive the
 * server) at hostport ("127.0.0.1:9100", "[::1]:0", ":9100"); opts may be
 * NULL. Loop thread only.
 * Returns EP_EOK, EP_EINVAL (bad hostport), a listen error (EP_EADDRINUSE,
 * EP_ENOTFOUND, EP_EPERM, ...) or EP_ENOMEM. */
ep_err ep_api_server_start(ep_loop *loop, const char *hostport, const ep_api_opts *opts,
                           ep_api_server **out);
/* ep_api_server_start_thread is the same on a thread and loop of its own
 * (what a CLI `--http HOST:PORT` wants: the server stays independent of
 * the services' loops). Any thread; returns after listening has started,
 * with the same errors, or EP_ESYS when the thread cannot start. */
ep_err ep_api_server_start_thread(const char *hostport, const ep_api_opts *opts,
                                  ep_api_server **out);
/* ep_api_server_port returns the bound port (useful with port 0). Any thread. */
uint16_t ep_api_server_port(const ep_api_server *a);
/* ep_api_server_http returns the HTTP server for adding routes (its loop
 * thread only). */
ep_http_server *ep_api_server_http(ep_api_server *a);
/* ep_api_server_loop returns the loop the server runs on. */
ep_loop *ep_api_server_loop(ep_api_server *a);
/* ep_api_server_stop closes the server (and joins its thread when started
 * with ep_api_server_start_thread; then any thread but that one, otherwise
 * the loop thread). NULL is accepted. */
void ep_api_server_stop(ep_api_server *a);

#endif
