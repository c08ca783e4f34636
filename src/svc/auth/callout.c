/*
 * callout.c - the pool that runs custom-authentication exchanges (see
 * callout.h for the contract and for why a pool).
 *
 * The queue, the threads, the hand-back to the submitter's loop and cancel
 * are the auth pool's (pool.h), shared with the password verifier. A pool
 * thread checks that a request has not waited past its deadline, runs the
 * POST with its own libcurl easy handle (kept for the thread's life, so
 * the server connection is reused) and judges the answer with
 * ep_callout_parse_response; the request then goes to the submitter's
 * loop, where the callback runs and the request is freed. The request body
 * holds the client's password (base64): it is wiped as soon as the
 * exchange is over.
 */
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svc/auth/callout.h"
#include "svc/auth/pool.h"

typedef struct creq creq;
struct creq {
    ep_auth_pool_job job; /* first: a job is its creq */
    char *body;
    uint64_t submit_ns;   /* monotonic, for the latency histogram */
    uint64_t deadline_ms; /* monotonic */
    bool timed_out;
    ep_callout_cb cb;
    void *arg;
    ep_callout_result res;
};

struct ep_callout {
    ep_auth_pool *pool;
    /* settings, read-only once the threads run */
    char *url, *ca_file, *client_cert, *client_key;
    struct curl_slist *headers;
    uint32_t timeout_ms;
    bool allow_http;
    atomic_uint_fast64_t submitted, allowed, denied, unavailable, rejected_full, cancelled;
    atomic_uint_fast64_t timeouts;
    _Atomic(ep_histogram *) latency;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void) { return mono_ns() / 1000000u; }

static void req_free(ep_auth_pool_job *j)
{
    creq *r = (creq *)j;
    if (r->body) {
        OPENSSL_cleanse(r->body, strlen(r->body));
        free(r->body);
    }
    ep_callout_result_clear(&r->res);
    free(r);
}

static void req_complete(ep_loop *loop, ep_auth_pool_job *j)
{
    creq *r = (creq *)j;
    r->cb(loop, r->arg, &r->res);
}

static void req_abort(ep_auth_pool_job *j)
{
    creq *r = (creq *)j;
    r->res.verdict = EP_CALLOUT_UNAVAILABLE;
    snprintf(r->res.message, sizeof(r->res.message), "shutting down");
}

typedef struct rbuf {
    char *p;
    size_t n;
    bool too_big;
} rbuf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    rbuf *b = ud;
    size_t n = size * nmemb;
    if (b->n + n > EP_CALLOUT_MAX_BODY) {
        b->too_big = true;
        return 0; /* aborts the transfer */
    }
    char *p = realloc(b->p, b->n + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->n, data, n);
    b->p = p;
    b->n += n;
    p[b->n] = '\0';
    return n;
}

static CURL *easy_new(const ep_callout *co)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    curl_easy_setopt(h, CURLOPT_URL, co->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, co->headers);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, co->allow_http ? "https,http" : "https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    if (co->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, co->ca_file);
    if (co->client_cert) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, co->client_cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, co->client_key);
    }
    return h;
}

static void exchange(CURL *h, creq *r)
{
    uint64_t now = mono_ms();
    if (h == NULL || now >= r->deadline_ms) {
        r->timed_out = h != NULL;
        r->res.verdict = EP_CALLOUT_UNAVAILABLE;
        snprintf(r->res.message, sizeof(r->res.message), "%s",
                 h ? "timed out waiting for a free callout slot" : "libcurl unavailable");
        return;
    }
    rbuf b = {0};
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(r->deadline_ms - now));
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        ep_callout_parse_response(status, b.p, b.n,
                                  (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000, &r->res);
    } else {
        r->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
        r->res.verdict = EP_CALLOUT_UNAVAILABLE;
        snprintf(r->res.message, sizeof(r->res.message), "%s",
                 b.too_big ? "response body over 64 KiB" : curl_easy_strerror(rc));
    }
    free(b.p);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
}

static void count(ep_callout *co, const creq *r)
{
    ep_callout_verdict v = r->res.verdict;
    atomic_fetch_add(v == EP_CALLOUT_ALLOW  ? &co->allowed
                     : v == EP_CALLOUT_DENY ? &co->denied
                                            : &co->unavailable,
                     1);
    if (r->timed_out)
        atomic_fetch_add(&co->timeouts, 1);
    ep_histogram *h = atomic_load(&co->latency);
    if (h)
        ep_histogram_observe_ns(h, mono_ns() - r->submit_ns);
}

/* Each pool thread keeps one easy handle (NULL if libcurl failed: its
 * requests are then answered "unavailable"). */
static void *thread_init(void *ud) { return easy_new(ud); }

static void thread_fini(void *ud, void *h)
{
    (void)ud;
    if (h)
        curl_easy_cleanup(h);
}

static void req_run(void *ud, void *h, ep_auth_pool_job *j)
{
    creq *r = (creq *)j;
    exchange(h, r);
    count(ud, r);
    OPENSSL_cleanse(r->body, strlen(r->body));
}

static const ep_auth_pool_ops creq_ops = {
    .thread_init = thread_init,
    .thread_fini = thread_fini,
    .run = req_run,
    .abort = req_abort,
    .complete = req_complete,
    .release = req_free,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ok;
static void curl_init_once(void) { curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }

static ep_err bad(char *why, size_t n, const char *text)
{
    if (why && n)
        snprintf(why, n, "%s", text);
    return EP_EINVAL;
}

static ep_err check_opts(const ep_callout_opts *o, char *why, size_t n)
{
    if (o->endpoint == NULL || o->endpoint[0] == '\0')
        return bad(why, n, "custom authentication needs an endpoint");
    bool https = strncmp(o->endpoint, "https://", 8) == 0;
    bool http = strncmp(o->endpoint, "http://", 7) == 0;
    if (!https && !http)
        return bad(why, n, "the endpoint must be an https:// URL");
    if (http && !o->allow_http)
        return bad(why, n,
                   "the endpoint must be https:// (http:// needs allow_http, for local "
                   "testing only)");
    if (o->n_headers > EP_CALLOUT_MAX_HEADERS)
        return bad(why, n, "too many headers");
    for (size_t i = 0; i < o->n_headers; i++)
        if (o->headers[i] == NULL || strchr(o->headers[i], ':') == NULL ||
            strpbrk(o->headers[i], "\r\n") != NULL)
            return bad(why, n, "a header must be one 'Name: value' line");
    if ((o->client_cert == NULL) != (o->client_key == NULL))
        return bad(why, n, "client_cert and client_key go together");
    return EP_EOK;
}

static char *dup_or_null(const char *s) { return s && s[0] ? strdup(s) : NULL; }

static ep_err setup(ep_callout *co, const ep_callout_opts *o)
{
    size_t len = strlen(o->endpoint);
    bool slash = len > 0 && o->endpoint[len - 1] == '/';
    co->url = malloc(len + 32);
    if (co->url == NULL)
        return EP_ENOMEM;
    snprintf(co->url, len + 32, "%s%s?api-version=" EP_CALLOUT_API_VERSION, o->endpoint,
             slash ? "" : "/");
    co->ca_file = dup_or_null(o->ca_file);
    co->client_cert = dup_or_null(o->client_cert);
    co->client_key = dup_or_null(o->client_key);
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
    /* no "Expect: 100-continue" round trip for bodies over 1 KiB (certs) */
    l = l ? curl_slist_append(l, "Expect:") : NULL;
    for (size_t i = 0; l && i < o->n_headers; i++) {
        struct curl_slist *next = curl_slist_append(l, o->headers[i]);
        if (next == NULL) {
            curl_slist_free_all(l);
            l = NULL;
        }
        l = next;
    }
    co->headers = l;
    return l ? EP_EOK : EP_ENOMEM;
}

ep_err ep_callout_new(ep_callout **out, const ep_callout_opts *opts, char *why, size_t why_n)
{
    ep_err err = check_opts(opts, why, why_n);
    if (err)
        return err;
    pthread_once(&curl_once, curl_init_once);
    if (!curl_ok)
        return EP_ENOMEM;
    ep_callout *co = calloc(1, sizeof(*co));
    if (co == NULL)
        return EP_ENOMEM;
    uint32_t max_pending = opts->max_pending ? opts->max_pending : 256;
    co->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 5000;
    co->allow_http = opts->allow_http;
    unsigned threads = opts->threads ? opts->threads : 8;
    if ((err = setup(co, opts)) != EP_EOK)
        goto fail;
    /* last: the pool threads read the settings */
    if ((err = ep_auth__pool_new(&co->pool, &creq_ops, co, threads, max_pending)) != EP_EOK)
        goto fail;
    *out = co;
    return EP_EOK;
fail:
    ep_callout_free(co);
    return err;
}

void ep_callout_free(ep_callout *co)
{
    if (co == NULL)
        return;
    ep_auth__pool_free(co->pool);
    curl_slist_free_all(co->headers);
    free(co->url);
    free(co->ca_file);
    free(co->client_cert);
    free(co->client_key);
    free(co);
}

ep_err ep_callout_submit(ep_callout *co, const ep_callout_creds *cr, ep_loop *loop,
                         ep_callout_cb cb, void *arg, uint64_t *req_id)
{
    if (loop == NULL || cb == NULL)
        return EP_EINVAL;
    creq *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return EP_ENOMEM;
    ep_err err = ep_callout_request_body(cr, &r->body);
    if (err) {
        free(r);
        return err;
    }
    r->cb = cb;
    r->arg = arg;
    r->submit_ns = mono_ns();
    r->deadline_ms = r->submit_ns / 1000000u + co->timeout_ms;
    if ((err = ep_auth__pool_submit(co->pool, &r->job, loop, req_id)) != EP_EOK) {
        if (err == EP_EFULL)
            atomic_fetch_add(&co->rejected_full, 1);
        req_free(&r->job);
        return err;
    }
    atomic_fetch_add(&co->submitted, 1);
    return EP_EOK;
}

ep_err ep_callout_cancel(ep_callout *co, uint64_t req_id)
{
    ep_err err = ep_auth__pool_cancel(co->pool, req_id);
    if (err == EP_EOK)
        atomic_fetch_add(&co->cancelled, 1);
    return err;
}

void ep_callout_get_stats(ep_callout *co, ep_callout_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->submitted = atomic_load(&co->submitted);
    out->allowed = atomic_load(&co->allowed);
    out->denied = atomic_load(&co->denied);
    out->unavailable = atomic_load(&co->unavailable);
    out->rejected_full = atomic_load(&co->rejected_full);
    out->cancelled = atomic_load(&co->cancelled);
    out->timeouts = atomic_load(&co->timeouts);
    out->pending = ep_auth__pool_pending(co->pool);
}

void ep_callout_set_histogram(ep_callout *co, ep_histogram *h) { atomic_store(&co->latency, h); }
