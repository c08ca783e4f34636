/*
 * verify.c - a small thread pool for password checks and a cache of recent
 * successes (see verify.h for the contract).
 *
 * Requests wait in a FIFO guarded by one mutex; `pending` counts queued and
 * running requests and is what max_pending bounds. A pool thread pops a
 * request, runs ep_passwd_verify without any lock, stores a success in the
 * cache and hands the request to the requester's loop with ep_loop_post,
 * where the callback runs and the request is freed. Nothing else ever
 * touches a request once it left the queue, so cancel only has to look in
 * the queue.
 *
 * The cache is a fixed table of 4-way buckets: an entry is a 32-byte HMAC
 * digest and an expiry time. A new entry replaces a match, a free or
 * expired slot, or else the slot expiring first.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "svc/auth/auth_int.h"
#include "svc/auth/verify.h"

typedef struct vreq vreq;
struct vreq {
    uint64_t id;
    ep_passwd *pw;
    uint8_t *user, *pass; /* one allocation: user then password */
    size_t ulen, plen;
    ep_loop *loop;
    ep_auth_verify_cb cb;
    void *arg;
    ep_err result;
    vreq *next;
};

typedef struct cslot {
    uint8_t d[32];
    uint64_t expires; /* 0 = free */
} cslot;

#define CACHE_WAYS 4

struct ep_auth_verifier {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    vreq *head, *tail;
    uint32_t pending, max_pending;
    uint64_t next_id;
    bool stop;
    pthread_t *threads;
    unsigned n_threads;

    pthread_mutex_t cache_lock;
    cslot *slots;
    size_t mask; /* number of buckets - 1 */
    uint32_t ttl_ms;
    uint8_t key[32];
    const ep_clock *clock;

    atomic_uint_fast64_t submitted, hits, misses, ok, failed, rejected_full, cancelled;
};

static uint64_t now_ms(const ep_auth_verifier *v) { return v->clock->now_ms(v->clock->ud); }

static ep_err cache_digest(const ep_auth_verifier *v, const ep_passwd *pw, const void *user,
                           size_t ulen, const void *pass, size_t plen, uint8_t d[32])
{
    uint8_t hdr[16];
    uint64_t g = ep_passwd_generation(pw), l = ulen;
    for (int i = 0; i < 8; i++) {
        hdr[i] = (uint8_t)(g >> (8 * i));
        hdr[8 + i] = (uint8_t)(l >> (8 * i));
    }
    return ep_auth__hmac256(v->key, sizeof(v->key), hdr, sizeof(hdr), ulen ? user : "", ulen,
                            plen ? pass : "", plen, d);
}

static cslot *bucket(const ep_auth_verifier *v, const uint8_t d[32])
{
    uint64_t h;
    memcpy(&h, d, sizeof(h));
    return &v->slots[(h & v->mask) * CACHE_WAYS];
}

ep_err ep_auth_verifier_cached(ep_auth_verifier *v, const ep_passwd *pw, const void *user,
                               size_t ulen, const void *password, size_t plen)
{
    if (v->slots == NULL || pw == NULL)
        return EP_ENOTFOUND;
    uint8_t d[32];
    if (cache_digest(v, pw, user, ulen, password, plen, d) != EP_EOK)
        return EP_ENOTFOUND;
    uint64_t now = now_ms(v);
    bool hit = false;
    pthread_mutex_lock(&v->cache_lock);
    cslot *b = bucket(v, d);
    for (int i = 0; i < CACHE_WAYS; i++)
        if (b[i].expires > now && ep_auth__ct_eq(b[i].d, d, 32))
            hit = true;
    pthread_mutex_unlock(&v->cache_lock);
    atomic_fetch_add(hit ? &v->hits : &v->misses, 1);
    return hit ? EP_EOK : EP_ENOTFOUND;
}

static void cache_put(ep_auth_verifier *v, const vreq *r)
{
    uint8_t d[32];
    if (v->slots == NULL || cache_digest(v, r->pw, r->user, r->ulen, r->pass, r->plen, d) != EP_EOK)
        return;
    uint64_t now = now_ms(v);
    pthread_mutex_lock(&v->cache_lock);
    cslot *b = bucket(v, d), *victim = &b[0];
    for (int i = 0; i < CACHE_WAYS; i++) {
        if (memcmp(b[i].d, d, 32) == 0 || b[i].expires <= now) {
            victim = &b[i];
            break;
        }
        if (b[i].expires < victim->expires)
            victim = &b[i];
    }
    memcpy(victim->d, d, 32);
    victim->expires = now + v->ttl_ms;
    pthread_mutex_unlock(&v->cache_lock);
}

static void req_free(vreq *r)
{
    if (r == NULL)
        return;
    if (r->user != NULL) {
        OPENSSL_cleanse(r->user, r->ulen + r->plen);
        free(r->user);
    }
    ep_passwd_unref(r->pw);
    free(r);
}

static void complete_on_loop(ep_loop *loop, void *arg)
{
    vreq *r = arg;
    r->cb(loop, r->arg, r->result);
    req_free(r);
}

/* Hands r to its loop. Posting only fails on memory exhaustion; retry for
 * a while (we are on a pool thread, waiting is harmless), then give up:
 * the connection's CONNECT timeout will close it. */
static void deliver(vreq *r)
{
    for (int i = 0; i < 200; i++) {
        if (ep_loop_post(r->loop, complete_on_loop, r) == EP_EOK)
            return;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    req_free(r);
}

static void *worker(void *arg)
{
    ep_auth_verifier *v = arg;
    pthread_mutex_lock(&v->lock);
    for (;;) {
        while (v->head == NULL && !v->stop)
            pthread_cond_wait(&v->cond, &v->lock);
        if (v->head == NULL)
            break;
        vreq *r = v->head;
        v->head = r->next;
        if (v->head == NULL)
            v->tail = NULL;
        pthread_mutex_unlock(&v->lock);

        r->result = ep_passwd_verify(r->pw, r->user, r->ulen, r->pass, r->plen);
        if (r->result == EP_EOK) {
            atomic_fetch_add(&v->ok, 1);
            cache_put(v, r);
        } else {
            atomic_fetch_add(&v->failed, 1);
        }
        /* wipe the password now rather than when the loop gets to it */
        OPENSSL_cleanse(r->pass, r->plen);
        pthread_mutex_lock(&v->lock);
        v->pending--;
        pthread_mutex_unlock(&v->lock);
        deliver(r);
        pthread_mutex_lock(&v->lock);
    }
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

ep_err ep_auth_verifier_new(ep_auth_verifier **out, const ep_auth_verifier_opts *opts)
{
    ep_auth_verifier_opts o = opts ? *opts : (ep_auth_verifier_opts){0};
    if (o.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = n < 1 ? 1 : n > 4 ? 4 : (unsigned)n;
    }
    if (o.max_pending == 0)
        o.max_pending = 1024;
    if (o.cache_size == 0)
        o.cache_size = 4096;
    if (o.cache_ttl_ms == 0)
        o.cache_ttl_ms = 30000;
    ep_auth_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return EP_ENOMEM;
    v->max_pending = o.max_pending;
    v->ttl_ms = o.cache_ttl_ms;
    v->clock = o.clock ? o.clock : ep_clock_system();
    v->next_id = 1;
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    pthread_mutex_init(&v->cache_lock, NULL);
    ep_err err = EP_ENOMEM;
    if (!o.no_cache) {
        size_t buckets = 1;
        while (buckets * CACHE_WAYS < o.cache_size && buckets < ((size_t)1 << 24))
            buckets <<= 1;
        v->slots = calloc(buckets * CACHE_WAYS, sizeof(*v->slots));
        if (v->slots == NULL)
            goto fail;
        v->mask = buckets - 1;
        if ((err = ep_auth__random(v->key, sizeof(v->key))) != EP_EOK)
            goto fail;
    }
    v->threads = calloc(o.threads, sizeof(*v->threads));
    if (v->threads == NULL) {
        err = EP_ENOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < o.threads; i++) {
        if (pthread_create(&v->threads[i], NULL, worker, v) != 0) {
            err = EP_ESYS;
            goto fail;
        }
        v->n_threads++;
    }
    *out = v;
    return EP_EOK;
fail:
    ep_auth_verifier_free(v);
    return err;
}

void ep_auth_verifier_free(ep_auth_verifier *v)
{
    if (v == NULL)
        return;
    pthread_mutex_lock(&v->lock);
    v->stop = true;
    vreq *q = v->head;
    v->head = v->tail = NULL;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
    while (q != NULL) {
        vreq *next = q->next;
        q->result = EP_ECLOSED;
        deliver(q);
        q = next;
    }
    for (unsigned i = 0; i < v->n_threads; i++)
        pthread_join(v->threads[i], NULL);
    free(v->threads);
    if (v->slots != NULL) {
        OPENSSL_cleanse(v->slots, (v->mask + 1) * CACHE_WAYS * sizeof(*v->slots));
        free(v->slots);
    }
    OPENSSL_cleanse(v->key, sizeof(v->key));
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->cond);
    pthread_mutex_destroy(&v->cache_lock);
    free(v);
}

ep_err ep_auth_verifier_submit(ep_auth_verifier *v, ep_passwd *pw, const void *user, size_t ulen,
                               const void *password, size_t plen, ep_loop *loop,
                               ep_auth_verify_cb cb, void *arg, uint64_t *req_id)
{
    if (ulen > EP_PASSWD_MAX_USER || plen > EP_PASSWD_MAX_PASSWORD)
        return EP_ETOOBIG;
    if (pw == NULL || loop == NULL || cb == NULL)
        return EP_EINVAL;
    vreq *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->user = malloc(ulen + plen + 1)) == NULL) {
        free(r);
        return EP_ENOMEM;
    }
    if (ulen)
        memcpy(r->user, user, ulen);
    r->pass = r->user + ulen;
    if (plen)
        memcpy(r->pass, password, plen);
    r->ulen = ulen;
    r->plen = plen;
    r->loop = loop;
    r->cb = cb;
    r->arg = arg;

    pthread_mutex_lock(&v->lock);
    ep_err err = EP_EOK;
    if (v->stop)
        err = EP_ECLOSED;
    else if (v->pending >= v->max_pending)
        err = EP_EFULL;
    if (err != EP_EOK) {
        pthread_mutex_unlock(&v->lock);
        if (err == EP_EFULL)
            atomic_fetch_add(&v->rejected_full, 1);
        req_free(r);
        return err;
    }
    r->pw = ep_passwd_ref(pw);
    r->id = v->next_id++;
    if (req_id != NULL)
        *req_id = r->id;
    if (v->tail)
        v->tail->next = r;
    else
        v->head = r;
    v->tail = r;
    v->pending++;
    pthread_cond_signal(&v->cond);
    pthread_mutex_unlock(&v->lock);
    atomic_fetch_add(&v->submitted, 1);
    return EP_EOK;
}

ep_err ep_auth_verifier_cancel(ep_auth_verifier *v, uint64_t req_id)
{
    vreq *found = NULL;
    pthread_mutex_lock(&v->lock);
    for (vreq **pp = &v->head, *prev = NULL; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        if ((*pp)->id == req_id) {
            found = *pp;
            *pp = found->next;
            if (v->tail == found)
                v->tail = prev;
            v->pending--;
            break;
        }
    }
    pthread_mutex_unlock(&v->lock);
    if (found == NULL)
        return EP_ENOTFOUND;
    atomic_fetch_add(&v->cancelled, 1);
    req_free(found);
    return EP_EOK;
}

void ep_auth_verifier_get_stats(ep_auth_verifier *v, ep_auth_verifier_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->submitted = atomic_load(&v->submitted);
    out->cache_hits = atomic_load(&v->hits);
    out->cache_misses = atomic_load(&v->misses);
    out->ok = atomic_load(&v->ok);
    out->failed = atomic_load(&v->failed);
    out->rejected_full = atomic_load(&v->rejected_full);
    out->cancelled = atomic_load(&v->cancelled);
    pthread_mutex_lock(&v->lock);
    out->pending = v->pending;
    pthread_mutex_unlock(&v->lock);
}
