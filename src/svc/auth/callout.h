/*
 * callout.h - custom authentication: asking an HTTP(S) server whether a
 * client may connect, in the reference's custom-auth API 0.5.0.
 *
 *   POST {endpoint}/?api-version=0.5.0
 *   {"type":"connect","username":"u","password":"<base64>","certs":"<PEM>"}
 *   {"type":"auth","authenticationMethod":"m","authenticationData":"<base64>"}
 *
 * The second form carries MQTT 5 enhanced authentication: a CONNECT with
 * an Authentication Method, or an AUTH packet re-authenticating. API 0.5.0
 * defines only its "type"; the method and the data (base64, absent when
 * the packet had none) are this broker's additions, the fields a server
 * needs to decide (docs/security.md).
 *
 *   200 {"expiry":"2026-11-26T10:00:00Z","attributes":{"k":"v"}}  allowed
 *   403 {"reason":135,"message":"..."}                              denied
 *   400 / 405 plain text, 422 {"supportedVersions":["..."]}         denied
 *
 * Why a thread pool and not libcurl's multi interface on the worker loops:
 * a callout is an HTTP exchange of a few hundred bytes, and the pool
 * (like the password pool, verify.h) keeps every line of libcurl off the
 * broker workers: a worker only queues a request and later receives the
 * result through ep_loop_post, so neither a slow server nor libcurl's own
 * blocking steps (DNS resolution, certificate loading) can stall it. Each
 * pool thread keeps one libcurl handle, so the TLS connection to the
 * server is reused across callouts (keep-alive) and the handshake is paid
 * once per thread, not per CONNECT. The cost is one thread per concurrent
 * callout, which is why both are bounded: `threads` exchanges run at once,
 * `max_pending` requests may be queued or running, and a request that
 * waited in the queue longer than the timeout is answered "unavailable"
 * without being sent. The multi interface would need one curl multi per
 * worker, its socket and timer callbacks wired into ep_loop, and still a
 * resolver thread; it pays off only for thousands of simultaneous
 * callouts, which a bounded broker refuses anyway.
 *
 * Outcomes (ep_callout_verdict):
 *   ALLOW        200 with a valid body: expiry (Unix ms, 0 = none)
 *                and attributes become the principal's;
 *   DENY         403 (reason: the MQTT reason code to send, sanitized),
 *                400, 405, 422 and any other 4xx, or a 200 whose body is
 *                invalid: the server was reached and said no (or talks
 *                another dialect), so the chain stops there;
 *   UNAVAILABLE  connection failure, TLS failure, timeout, 5xx: the server
 *                is treated as not relevant and the broker's chain goes on
 *                to its next method, as the reference does.
 *
 * Response bodies are untrusted input: ep_callout_parse_response is pure
 * and has a fuzz target (tests/fuzz/fuzz_auth_callout.c). Bodies are read
 * up to 64 KiB; a larger one is UNAVAILABLE.
 */
#ifndef EP_SVC_AUTH_CALLOUT_H
#define EP_SVC_AUTH_CALLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "svc/auth/attrs.h"

#define EP_CALLOUT_API_VERSION "0.5.0"
#define EP_CALLOUT_MAX_HEADERS 8
#define EP_CALLOUT_MAX_BODY 65536

/* Options; zero-initialise, 0 selects the default. Strings are copied. */
typedef struct ep_callout_opts {
    const char *endpoint;       /* https://host[:port][/path]; required */
    bool allow_http;            /* accept an http:// endpoint (local testing only) */
    const char *ca_file;        /* PEM CAs that verify the server; NULL: system store */
    const char *client_cert;    /* PEM certificate the broker presents; NULL: none */
    const char *client_key;     /* its key (required with client_cert) */
    const char *const *headers; /* "Name: value" lines sent with each request */
    size_t n_headers;           /* at most EP_CALLOUT_MAX_HEADERS */
    uint32_t timeout_ms;        /* whole exchange incl. queueing; default 5000 */
    unsigned threads;           /* concurrent exchanges; default 8 */
    uint32_t max_pending;       /* queued + running requests; default 256 */
} ep_callout_opts;

typedef enum ep_callout_verdict {
    EP_CALLOUT_ALLOW = 0,
    EP_CALLOUT_DENY = 1,
    EP_CALLOUT_UNAVAILABLE = 2,
} ep_callout_verdict;

typedef struct ep_callout_result {
    ep_callout_verdict verdict;
    long status;          /* HTTP status, 0 when none was received */
    uint8_t reason;       /* DENY: MQTT CONNACK reason code (>= 0x80) */
    int64_t expiry_ms;    /* ALLOW: Unix time in ms, 0 = no expiry */
    ep_auth_attrs *attrs; /* ALLOW: NULL when none; owned by the result */
    char message[256];    /* why (server message or local error), for logs */
} ep_callout_result;

/* Completion: runs on the loop given to submit. The callback may take
 * res->attrs (set it to NULL); everything else in res is freed after it
 * returns. */
typedef void (*ep_callout_cb)(ep_loop *loop, void *arg, ep_callout_result *res);

typedef struct ep_callout ep_callout;

typedef struct ep_callout_stats {
    uint64_t submitted, allowed, denied, unavailable, rejected_full, cancelled;
    uint64_t timeouts; /* part of unavailable: no answer within timeout_ms */
    uint32_t pending;
} ep_callout_stats;

/* ep_callout_new checks the options and starts the pool. Startup: any
 * thread. Returns EP_EOK, EP_EINVAL (no endpoint, http:// without
 * allow_http, another scheme, too many headers, a key without a
 * certificate), EP_ENOMEM, EP_ESYS (thread creation failed). why (may be
 * NULL) receives a reason for EP_EINVAL. */
ep_err ep_callout_new(ep_callout **out, const ep_callout_opts *opts, char *why, size_t why_n);

/* ep_callout_free stops the pool: queued requests complete with
 * UNAVAILABLE (posted to their loops, which must still exist), running
 * ones finish. NULL accepted. Not on a pool thread. */
void ep_callout_free(ep_callout *co);

/* The client's credentials; everything borrowed for the call (copied). */
typedef struct ep_callout_creds {
    const char *username; /* UTF-8, len ulen; NULL: none */
    size_t ulen;
    const void *password; /* any bytes, sent base64; NULL: none */
    size_t plen;
    const char *certs_pem; /* client certificate chain, leaf first; NULL: none */
    /* MQTT 5 Authentication Method (UTF-8, mlen bytes): when set the
     * request is the "auth" form and only it and auth_data are sent. */
    const char *auth_method;
    size_t mlen;
    const void *auth_data; /* Authentication Data, sent base64; NULL: none */
    size_t dlen;
} ep_callout_creds;

/* ep_callout_submit queues a connect callout. On EP_EOK cb(loop, arg, res)
 * runs on loop exactly once unless cancelled; *req_id (may be NULL)
 * identifies the request for ep_callout_cancel. Any thread.
 * Returns EP_EOK; EP_EFULL (max_pending reached; cb will not run);
 * EP_EINVAL (user name or method not valid UTF-8); EP_ENOMEM; EP_ECLOSED. */
ep_err ep_callout_submit(ep_callout *co, const ep_callout_creds *cr, ep_loop *loop,
                         ep_callout_cb cb, void *arg, uint64_t *req_id);

/* ep_callout_cancel withdraws a request that has not started: its
 * callback will not run. Returns EP_EOK or EP_ENOTFOUND (running or done:
 * the callback still comes). Any thread. */
ep_err ep_callout_cancel(ep_callout *co, uint64_t req_id);

void ep_callout_get_stats(ep_callout *co, ep_callout_stats *out);

/* ep_callout_set_histogram: from now on each exchange's duration (from
 * submit to the verdict, queueing included; seconds) is observed in h.
 * NULL stops it. h must outlive its use (a registry's series does). Any
 * thread. */
void ep_callout_set_histogram(ep_callout *co, ep_histogram *h);

/* ep_callout_request_body builds the JSON request body (malloc'd,
 * NUL-terminated; free it with free() after wiping it) for cr. Memory
 * jansson frees is wiped first (it held the password). Returns EP_EOK, EP_EINVAL (user name or
 * method not valid UTF-8), EP_ENOMEM. */
ep_err ep_callout_request_body(const ep_callout_creds *cr, char **out);

/* ep_callout_parse_response turns an HTTP status and body (len bytes,
 * untrusted, need not be NUL-terminated) into a result. Never fails: what
 * it cannot understand becomes DENY or UNAVAILABLE as described above.
 * now_ms is the current Unix time in ms (an expiry already past is a DENY).
 * Any thread. Free res->attrs with ep_callout_result_clear. */
void ep_callout_parse_response(long status, const char *body, size_t len, int64_t now_ms,
                               ep_callout_result *res);

/* ep_callout_result_clear frees what a result owns. */
void ep_callout_result_clear(ep_callout_result *res);

/* ep_callout_parse_rfc3339 reads "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)"
 * into Unix time in ms (digits past ms dropped). Returns EP_EOK or
 * EP_EINVAL. */
ep_err ep_callout_parse_rfc3339(const char *s, size_t len, int64_t *out);

#endif
