/*
 * callout.c - the pool that runs custom-authentication exchanges (see
 * callout.h for the contract and for why a pool).
 *
 * Requests wait in a FIFO under one mutex; `pending` counts queued and
 * running requests and is what max_pending bounds. A pool thread pops a
 * request, checks that it has not waited past its deadline, runs the POST
 * with its own libcurl easy handle (kept for the thread's life, so the
 * server connection is reused), judges the answer with
 * ep_callout_parse_response and posts the request to the submitter's loop,
 * where the callback runs and the request is freed. The request body
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

typedef struct creq creq;
struct creq {
    uint64_t id;
    char *body;
    uint64_t submit_ns;   /* monotonic, for the latency histogram */
    uint64_t deadline_ms; /* monotonic */
    bool timed_out;
    ep_loop *loop;
    ep_callout_cb cb;
    void *arg;
    ep_callout_result res;
    creq *next;
};

struct ep_callout {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    creq *head, *tail;
    uint32_t pending, max_pending;
    uint64_t next_id;
    bool stop;
    pthread_t *threads;
    unsigned n_threads;
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

static void req_free(creq *r)
{
    if (r == NULL)
        return;
    if (r->body) {
        OPENSSL_cleanse(r->body, strlen(r->body));
        free(r->body);
    }
    ep_callout_result_clear(&r->res);
    free(r);
}

static void complete_on_loop(ep_loop *loop, void *arg)
{
    creq *r = arg;
    r->cb(loop, r->arg, &r->res);
    req_free(r);
}

/* Hands r to its loop; posting fails only when memory is exhausted: retry
 * a while (a pool thread may wait), then give up and let the client's
 * CONNECT timeout close it. */
static void deliver(creq *r)
{
    for (int i = 0; i < 200; i++) {
        if (ep_loop_post(r->loop, complete_on_loop, r) == EP_EOK)
            return;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    req_free(r);
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

static void *worker(void *arg)
{
    ep_callout *co = arg;
    CURL *h = easy_new(co);
    pthread_mutex_lock(&co->lock);
    for (;;) {
        while (co->head == NULL && !co->stop)
            pthread_cond_wait(&co->cond, &co->lock);
        if (co->head == NULL)
            break;
        creq *r = co->head;
        co->head = r->next;
        if (co->head == NULL)
            co->tail = NULL;
        pthread_mutex_unlock(&co->lock);

        exchange(h, r);
        count(co, r);
        OPENSSL_cleanse(r->body, strlen(r->body));
        pthread_mutex_lock(&co->lock);
        co->pending--;
        pthread_mutex_unlock(&co->lock);
        deliver(r);
        pthread_mutex_lock(&co->lock);
    }
    pthread_mutex_unlock(&co->lock);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

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
    pthread_mutex_init(&co->lock, NULL);
    pthread_cond_init(&co->cond, NULL);
    co->next_id = 1;
    co->max_pending = opts->max_pending ? opts->max_pending : 256;
    co->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 5000;
    co->allow_http = opts->allow_http;
    unsigned threads = opts->threads ? opts->threads : 8;
    if ((err = setup(co, opts)) != EP_EOK)
        goto fail;
    err = EP_ENOMEM;
    if ((co->threads = calloc(threads, sizeof(*co->threads))) == NULL)
        goto fail;
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&co->threads[i], NULL, worker, co) != 0) {
            err = EP_ESYS;
            goto fail;
        }
        co->n_threads++;
    }
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
    pthread_mutex_lock(&co->lock);
    co->stop = true;
    creq *q = co->head;
    co->head = co->tail = NULL;
    pthread_cond_broadcast(&co->cond);
    pthread_mutex_unlock(&co->lock);
    while (q != NULL) {
        creq *next = q->next;
        q->res.verdict = EP_CALLOUT_UNAVAILABLE;
        snprintf(q->res.message, sizeof(q->res.message), "shutting down");
        deliver(q);
        q = next;
    }
    for (unsigned i = 0; i < co->n_threads; i++)
        pthread_join(co->threads[i], NULL);
    free(co->threads);
    curl_slist_free_all(co->headers);
    free(co->url);
    free(co->ca_file);
    free(co->client_cert);
    free(co->client_key);
    pthread_mutex_destroy(&co->lock);
    pthread_cond_destroy(&co->cond);
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
    r->loop = loop;
    r->cb = cb;
    r->arg = arg;
    r->submit_ns = mono_ns();
    r->deadline_ms = r->submit_ns / 1000000u + co->timeout_ms;
    pthread_mutex_lock(&co->lock);
    if (co->stop)
        err = EP_ECLOSED;
    else if (co->pending >= co->max_pending)
        err = EP_EFULL;
    if (err == EP_EOK) {
        r->id = co->next_id++;
        if (req_id)
            *req_id = r->id;
        if (co->tail)
            co->tail->next = r;
        else
            co->head = r;
        co->tail = r;
        co->pending++;
        pthread_cond_signal(&co->cond);
    }
    pthread_mutex_unlock(&co->lock);
    if (err) {
        if (err == EP_EFULL)
            atomic_fetch_add(&co->rejected_full, 1);
        req_free(r);
        return err;
    }
    atomic_fetch_add(&co->submitted, 1);
    return EP_EOK;
}

ep_err ep_callout_cancel(ep_callout *co, uint64_t req_id)
{
    creq *found = NULL;
    pthread_mutex_lock(&co->lock);
    for (creq **pp = &co->head, *prev = NULL; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        if ((*pp)->id == req_id) {
            found = *pp;
            *pp = found->next;
            if (co->tail == found)
                co->tail = prev;
            co->pending--;
            break;
        }
    }
    pthread_mutex_unlock(&co->lock);
    if (found == NULL)
        return EP_ENOTFOUND;
    atomic_fetch_add(&co->cancelled, 1);
    req_free(found);
    return EP_EOK;
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
    pthread_mutex_lock(&co->lock);
    out->pending = co->pending;
    pthread_mutex_unlock(&co->lock);
}

void ep_callout_set_histogram(ep_callout *co, ep_histogram *h) { atomic_store(&co->latency, h); }
