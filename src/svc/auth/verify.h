/*
 * verify.h - password verification off the event loop, with a cache.
 *
 * A password check costs hundreds of milliseconds of CPU on purpose
 * (PBKDF2, passwd.h). Run on a broker worker it would stall every client of
 * that worker; a login flood would stall them all. The verifier runs checks
 * on a small pool of its own threads with a bounded queue, and posts each
 * result back to the requesting loop with ep_loop_post, where the callback
 * runs. A full queue is reported at submission (answer "server busy")
 * rather than queued without bound.
 *
 * Successful checks are cached for a short time, keyed by an HMAC (with a
 * random per-process key) of the snapshot generation, the user and the
 * password, so a client that reconnects in a loop costs one check per TTL
 * and a reload of the password file invalidates every cached entry. Only
 * successes are cached. The cache holds no password and no unsalted hash.
 *
 * Typical broker use, on the worker that owns the connection:
 *
 *   if (ep_auth_verifier_cached(v, pw, user, ulen, pass, plen) == EP_EOK)
 *       -> accept now;
 *   else if (ep_auth_verifier_submit(v, pw, user, ulen, pass, plen,
 *                                    worker_loop, on_verified, conn_id_arg,
 *                                    &req) == EP_EOK)
 *       -> stop reading from the connection until on_verified runs;
 *   else -> CONNACK "server busy" (EP_EFULL) / "unspecified error";
 *   on close before the result: ep_auth_verifier_cancel(v, req).
 */
#ifndef EP_SVC_AUTH_VERIFY_H
#define EP_SVC_AUTH_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/loop.h"
#include "svc/auth/passwd.h"

/* Options; zero-initialise, 0 selects the default. */
typedef struct ep_auth_verifier_opts {
    unsigned threads;      /* pool threads; default min(online CPUs, 4) */
    uint32_t max_pending;  /* queued + running requests; default 1024 */
    uint32_t cache_size;   /* cached successes; default 4096 */
    uint32_t cache_ttl_ms; /* default 30000 */
    bool no_cache;         /* disable the cache */
    const ep_clock *clock; /* for the cache TTL; default system clock */
} ep_auth_verifier_opts;

typedef struct ep_auth_verifier ep_auth_verifier;

/* Completion: runs on `loop` (the loop passed to submit), exactly once per
 * request that was accepted and not cancelled. result is EP_EOK (password
 * correct), EP_ESECURITY (wrong), EP_ENOTFOUND (no such user), EP_ETOOBIG,
 * EP_ECRYPTO, or EP_ECLOSED (the verifier was freed first). */
typedef void (*ep_auth_verify_cb)(ep_loop *loop, void *arg, ep_err result);

typedef struct ep_auth_verifier_stats {
    uint64_t submitted, cache_hits, cache_misses, ok, failed, rejected_full, cancelled;
    uint32_t pending;
} ep_auth_verifier_stats;

/* ep_auth_verifier_new starts the pool. Borrows opts (and the clock, which
 * must outlive the verifier). Startup: any thread.
 * Returns EP_EOK, EP_ENOMEM, EP_ESYS (thread creation failed). */
ep_err ep_auth_verifier_new(ep_auth_verifier **out, const ep_auth_verifier_opts *opts);

/* ep_auth_verifier_free stops the pool: queued requests complete with
 * EP_ECLOSED (posted to their loops, which must still exist), running ones
 * finish, threads are joined. NULL is accepted. Not on a pool thread. */
void ep_auth_verifier_free(ep_auth_verifier *v);

/* ep_auth_verifier_cached reports whether (pw's generation, user,
 * password) was verified successfully within the TTL. Cheap (one HMAC and
 * a short mutex); any thread. Borrows everything.
 * Returns EP_EOK on a hit, EP_ENOTFOUND otherwise (also when the cache is
 * disabled). */
ep_err ep_auth_verifier_cached(ep_auth_verifier *v, const ep_passwd *pw, const void *user,
                               size_t ulen, const void *password, size_t plen);

/* ep_auth_verifier_submit queues a check of password for user against pw.
 * Copies user and password (wiped after use) and takes its own reference
 * on pw. On success cb(loop, arg, result) will run on loop exactly once
 * unless the request is cancelled; *req_id (may be NULL) identifies the
 * request for ep_auth_verifier_cancel. A successful result is cached.
 * Any thread. arg is passed through untouched; since the connection may be
 * gone when the result arrives, pass an id handle or cancel on close.
 * Returns: EP_EOK; EP_EFULL (max_pending reached; cb will not run);
 * EP_ETOOBIG (user or password over the limits of passwd.h); EP_ENOMEM;
 * EP_ECLOSED (verifier shutting down). */
ep_err ep_auth_verifier_submit(ep_auth_verifier *v, ep_passwd *pw, const void *user, size_t ulen,
                               const void *password, size_t plen, ep_loop *loop,
                               ep_auth_verify_cb cb, void *arg, uint64_t *req_id);

/* ep_auth_verifier_cancel withdraws a request that has not started: its
 * callback will not run. Any thread.
 * Returns EP_EOK (withdrawn) or EP_ENOTFOUND (already running or done: the
 * callback runs or has run/been posted; the caller must still expect it). */
ep_err ep_auth_verifier_cancel(ep_auth_verifier *v, uint64_t req_id);

/* ep_auth_verifier_stats copies the counters. Any thread. */
void ep_auth_verifier_get_stats(ep_auth_verifier *v, ep_auth_verifier_stats *out);

#endif
