/*
 * http.h - a small HTTP/1.1 server on an ep_loop, for the observability
 * endpoints now and the REST API and embedded web UI later.
 *
 * Two layers:
 *   parser  ep_http_request_parse(): a pure function from bytes to a parsed
 *           request head (slices into the input), with strict limits; it
 *           returns the exact status to answer for bad input. Fuzzed.
 *   server  non-blocking connections on one loop thread: keep-alive,
 *           pipelining (responses in request order), Content-Length bodies,
 *           Expect: 100-continue, timeouts for slow clients, a connection
 *           limit, and routes (methods, path, exact or prefix) whose handlers
 *           fill an ep_http_response.
 *
 * Handlers run on the server's loop thread. A handler sets a status, headers
 * and a body; the server adds Date, Content-Length and Connection, drops the
 * body for HEAD (GET routes answer HEAD automatically), and writes the
 * response when the handler returns. A handler that needs another thread
 * (a REST call answered by the broker) calls ep_http_response_suspend()
 * and later ep_http_response_finish() on the loop thread; the connection
 * reads and answers nothing else in between.
 *
 * Not supported (answered clearly): chunked request bodies (411 Length
 * Required), other transfer codings (501), methods other than GET, HEAD,
 * POST, PUT, DELETE, PATCH and OPTIONS (501), HTTP/2 and upgrades.
 */
#ifndef EP_SVC_API_HTTP_H
#define EP_SVC_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/sock.h"

/* Methods are bits so a route can accept several. */
typedef enum ep_http_method {
    EP_HTTP_GET = 1u << 0,
    EP_HTTP_HEAD = 1u << 1,
    EP_HTTP_POST = 1u << 2,
    EP_HTTP_PUT = 1u << 3,
    EP_HTTP_DELETE = 1u << 4,
    EP_HTTP_PATCH = 1u << 5,
    EP_HTTP_OPTIONS = 1u << 6,
} ep_http_method;

/* A byte range inside the parsed input (not NUL-terminated). */
typedef struct ep_http_str {
    const char *p;
    size_t n;
} ep_http_str;

typedef struct ep_http_header {
    ep_http_str name;  /* as sent; compare case-insensitively */
    ep_http_str value; /* leading and trailing whitespace removed */
} ep_http_header;

enum { EP_HTTP_MAX_HEADERS = 100 };

/* Zero-initialisable; 0 selects the default shown. */
typedef struct ep_http_limits {
    size_t max_head;      /* request line + header fields, bytes (8192) */
    size_t max_uri;       /* request-target, bytes (2048) -> 414 */
    unsigned max_headers; /* header fields (64; at most EP_HTTP_MAX_HEADERS) -> 431 */
    uint64_t max_body;    /* Content-Length (1 MiB) -> 413 */
} ep_http_limits;

typedef struct ep_http_request {
    ep_http_method method;
    ep_http_str method_name;
    ep_http_str target; /* as sent */
    ep_http_str path;   /* target without scheme/authority and query; raw (not decoded) */
    ep_http_str query;  /* after '?', without it; n == 0 if none */
    unsigned version;   /* 10 or 11 */
    ep_http_header headers[EP_HTTP_MAX_HEADERS];
    unsigned nheaders;
    uint64_t content_length;
    bool keep_alive;      /* from the version and Connection */
    bool expect_continue; /* Expect: 100-continue */
    size_t head_len;      /* bytes of the head, including the final empty line */
    ep_http_str body;     /* set by the server before the handler runs */
} ep_http_request;

/* ep_http_request_parse parses one request head from p[0..n). Pure: no
 * allocation, no state; slices in *req point into p. Leading empty lines
 * are skipped (RFC 9112 2.2) and counted in head_len.
 * Returns:
 *   EP_EOK        *req is complete (the body, content_length bytes, follows
 *                 at p + head_len and is not checked here);
 *   EP_ENEEDMORE  the head is incomplete but valid so far and within limits;
 *   EP_EPROTO     the request must be refused with *status: 400 (syntax,
 *                 bare LF or CR, obs-fold, bad or conflicting
 *                 Content-Length, missing or repeated Host in 1.1, both
 *                 Transfer-Encoding and Content-Length), 411 (chunked
 *                 body), 413 (body over max_body), 414 (target over
 *                 max_uri), 417 (unknown Expect), 431 (head over max_head or
 *                 too many fields), 501 (unknown method or transfer coding),
 *                 505 (HTTP major version other than 1).
 * lim may be NULL (defaults). *req is undefined unless EP_EOK. */
ep_err ep_http_request_parse(const uint8_t *p, size_t n, const ep_http_limits *lim,
                             ep_http_request *req, int *status);

/* ep_http_request_header finds the first header named name (ASCII
 * case-insensitive). Returns true and sets *value, or false. */
bool ep_http_request_header(const ep_http_request *req, const char *name, ep_http_str *value);

/* ep_http_str_eq compares a slice with a C string (exact / ASCII case-insensitive). */
bool ep_http_str_eq(ep_http_str s, const char *z);
bool ep_http_str_ieq(ep_http_str s, const char *z);

/* ep_http_status_reason returns the reason phrase for status ("Not Found"),
 * or "Unknown". */
const char *ep_http_status_reason(int status);
/* ep_http_method_name returns "GET" etc. for one method bit, or "?". */
const char *ep_http_method_name(ep_http_method m);

/* ---- server ---- */

typedef struct ep_http_server ep_http_server;
typedef struct ep_http_response ep_http_response;

/* A handler. req and res are valid until it returns, or, after
 * ep_http_response_suspend, until ep_http_response_finish. */
typedef void (*ep_http_handler_fn)(const ep_http_request *req, ep_http_response *res, void *ud);

/* Zero-initialisable; 0 selects the default shown. */
typedef struct ep_http_opts {
    ep_http_limits limits;
    unsigned max_conns;        /* open connections (256); more are answered 503 */
    uint32_t head_timeout_ms;  /* from the first byte of a request to its full head (10000) */
    uint32_t body_timeout_ms;  /* from the head to the full body (30000) */
    uint32_t idle_timeout_ms;  /* keep-alive wait for the next request (60000) */
    uint32_t write_timeout_ms; /* without write progress (30000) */
    /* Registry for edgeplane_http_* metrics (requests by route and code,
     * latency, connections); NULL = no metrics. Must outlive the server. */
    ep_metrics *metrics;
} ep_http_opts;

/* ep_http_server_new creates a server on loop (which must outlive it); opts
 * is copied and may be NULL. Loop thread only, like every server function.
 * Returns EP_EOK or EP_ENOMEM. */
ep_err ep_http_server_new(ep_loop *loop, const ep_http_opts *opts, ep_http_server **out);
/* ep_http_server_listen adds a listener on hp (port 0 picks a free port,
 * reported in *port, which may be NULL). Returns EP_EOK or the error from
 * binding (EP_EADDRINUSE, EP_ENOTFOUND for an unknown host, ...). */
ep_err ep_http_server_listen(ep_http_server *s, const ep_hostport *hp, uint16_t *port);
/* ep_http_server_free closes listeners and connections and frees the
 * server. A suspended response must be finished first. NULL is accepted. */
void ep_http_server_free(ep_http_server *s);
/* ep_http_server_nconns returns the number of open connections. Any thread. */
unsigned ep_http_server_nconns(const ep_http_server *s);

enum {
    EP_HTTP_ROUTE_PREFIX = 1u, /* path matches itself and everything below it */
};

/* ep_http_route adds a route: requests whose method is in `methods` (GET
 * implies HEAD) and whose path equals `path` (or, with
 * EP_HTTP_ROUTE_PREFIX, is path or below it: "/ui" matches "/ui" and
 * "/ui/app.js", not "/uix") go to fn(req, res, ud). The longest matching
 * path wins; when it has no route for the method the answer is 405 with an
 * Allow header, and when nothing matches, 404. path is copied; it is also
 * the `route` label of the request metrics.
 * Returns EP_EOK, EP_EINVAL (path not starting with '/', no methods) or
 * EP_ENOMEM. */
ep_err ep_http_route(ep_http_server *s, unsigned methods, const char *path, unsigned flags,
                     ep_http_handler_fn fn, void *ud);

/* ---- responses (loop thread, inside a handler or before finish) ---- */

/* ep_http_response_status sets the status (default 200). */
void ep_http_response_status(ep_http_response *res, int status);
/* ep_http_response_header adds a header line (name and value copied).
 * Returns EP_EOK, EP_EINVAL (CR, LF or NUL in either; name not a token; a
 * header the server owns: Content-Length, Transfer-Encoding, Connection,
 * Date) or EP_ENOMEM. */
ep_err ep_http_response_header(ep_http_response *res, const char *name, const char *value);
/* ep_http_response_body appends n bytes to the body. EP_EOK or EP_ENOMEM. */
ep_err ep_http_response_body(ep_http_response *res, const void *p, size_t n);
ep_err ep_http_response_printf(ep_http_response *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* ep_http_response_buf gives direct access to the body buffer (append only). */
ep_buf *ep_http_response_buf(ep_http_response *res);
/* ep_http_respond is status + Content-Type + body in one call. */
ep_err ep_http_respond(ep_http_response *res, int status, const char *content_type,
                       const void *body, size_t n);

/* ep_http_response_suspend keeps the exchange open after the handler
 * returns; req stays valid. The connection then waits (its timeouts do not
 * apply) until ep_http_response_finish. */
void ep_http_response_suspend(ep_http_response *res);
/* ep_http_response_finish sends a suspended response and resumes the
 * connection. If the client went away meanwhile, it only frees. Loop
 * thread only (post to it from other threads). */
void ep_http_response_finish(ep_http_response *res);

#endif
