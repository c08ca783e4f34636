/*
 * verify.c - a small thread pool for password checks and a cache of recent
 * successes (see verify.h for the contract).
 *
 * The queue, the threads, the hand-back to the requester's loop and cancel
 * are the auth pool's (pool.h). A pool thread runs ep_passwd_verify
 * without any lock and stores a success in the cache; the request then
 * goes to the requester's loop, where the callback runs and the request is
 * freed.
 *
 * The cache is a fixed table of 4-way buckets: an entry is a 32-byte HMAC
 * digest and an expiry time. A new entry replaces a match, a free or
 * expired slot, or else the slot expiring first.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "svc/auth/auth_int.h"
#include "svc/auth/pool.h"
#include "svc/auth/verify.h"

typedef struct vreq vreq;
struct vreq {
    ep_auth_pool_job job; /* first: a job is its vreq */
    ep_passwd *pw;
    uint8_t *user, *pass; /* one allocation: user then password */
    size_t ulen, plen;
    ep_auth_verify_cb cb;
    void *arg;
    ep_err result;
};

typedef struct cslot {
    uint8_t d[32];
    uint64_t expires; /* 0 = free */
} cslot;

#define CACHE_WAYS 4

struct ep_auth_verifier {
    ep_auth_pool *pool;

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

static void req_free(ep_auth_pool_job *j)
{
    vreq *r = (vreq *)j;
    if (r->user != NULL) {
        OPENSSL_cleanse(r->user, r->ulen + r->plen);
        free(r->user);
    }
    ep_passwd_unref(r->pw);
    free(r);
}

static void req_run(void *ud, void *tls, ep_auth_pool_job *j)
{
    ep_auth_verifier *v = ud;
    vreq *r = (vreq *)j;
    (void)tls;
    r->result = ep_passwd_verify(r->pw, r->user, r->ulen, r->pass, r->plen);
    if (r->result == EP_EOK) {
        atomic_fetch_add(&v->ok, 1);
        cache_put(v, r);
    } else {
        atomic_fetch_add(&v->failed, 1);
    }
    /* wipe the password now rather than when the loop gets to it */
    OPENSSL_cleanse(r->pass, r->plen);
}

static void req_abort(ep_auth_pool_job *j) { ((vreq *)j)->result = EP_ECLOSED; }

static void req_complete(ep_loop *loop, ep_auth_pool_job *j)
{
    vreq *r = (vreq *)j;
    r->cb(loop, r->arg, r->result);
}

static const ep_auth_pool_ops vreq_ops = {
    .run = req_run,
    .abort = req_abort,
    .complete = req_complete,
    .release = req_free,
};

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
    v->ttl_ms = o.cache_ttl_ms;
    v->clock = o.clock ? o.clock : ep_clock_system();
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
    if ((err = ep_auth__pool_new(&v->pool, &vreq_ops, v, o.threads, o.max_pending)) != EP_EOK)
        goto fail;
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
    ep_auth__pool_free(v->pool);
    if (v->slots != NULL) {
        OPENSSL_cleanse(v->slots, (v->mask + 1) * CACHE_WAYS * sizeof(*v->slots));
        free(v->slots);
    }
    OPENSSL_cleanse(v->key, sizeof(v->key));
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
    r->cb = cb;
    r->arg = arg;
    r->pw = ep_passwd_ref(pw);

    ep_err err = ep_auth__pool_submit(v->pool, &r->job, loop, req_id);
    if (err != EP_EOK) {
        if (err == EP_EFULL)
            atomic_fetch_add(&v->rejected_full, 1);
        req_free(&r->job);
        return err;
    }
    atomic_fetch_add(&v->submitted, 1);
    return EP_EOK;
}

ep_err ep_auth_verifier_cancel(ep_auth_verifier *v, uint64_t req_id)
{
    ep_err err = ep_auth__pool_cancel(v->pool, req_id);
    if (err == EP_EOK)
        atomic_fetch_add(&v->cancelled, 1);
    return err;
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
    out->pending = ep_auth__pool_pending(v->pool);
}
