/*
 * ratelimit.c - exponential backoff per source address, bounded by an LRU.
 *
 * Entries live in one preallocated array (no allocation after startup, so
 * an address flood cannot grow memory). A chained hash table of indices
 * finds an entry; an intrusive doubly linked list of indices orders them by
 * last use, and the tail is recycled when the array is full. The hash is
 * SipHash-like enough for this purpose: keyed with a random seed so an
 * attacker cannot aim many addresses at one chain.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "svc/auth/auth_int.h"
#include "svc/auth/ratelimit.h"

#define NIL UINT32_MAX

typedef struct rl_entry {
    ep_auth_rl_addr addr;
    uint32_t failures;
    uint64_t last;          /* last failure, ms */
    uint64_t blocked_until; /* ms */
    uint32_t hnext;         /* hash chain */
    uint32_t prev, next;    /* LRU, head = most recent */
    bool used;
} rl_entry;

struct ep_auth_rl {
    pthread_mutex_t lock;
    ep_auth_rl_opts o;
    rl_entry *e;
    uint32_t *heads;
    uint32_t nbuckets; /* power of two */
    uint32_t used;
    uint32_t lru_head, lru_tail;
    uint32_t free_head; /* unused entries, chained through hnext */
    uint64_t seed[2];
    ep_auth_rl_stats st;
};

ep_err ep_auth_rl_addr_parse(const char *s, ep_auth_rl_addr *out)
{
    uint8_t b[16];
    if (inet_pton(AF_INET, s, b) == 1)
        return ep_auth_rl_addr_from_bytes(b, 4, out);
    if (inet_pton(AF_INET6, s, b) == 1)
        return ep_auth_rl_addr_from_bytes(b, 16, out);
    return EP_EINVAL;
}

ep_err ep_auth_rl_addr_from_bytes(const void *p, size_t len, ep_auth_rl_addr *out)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *b = p;
    if (len == 16 && memcmp(b, mapped, 12) == 0) {
        b += 12;
        len = 4;
    }
    if (len != 4 && len != 16)
        return EP_EINVAL;
    memset(out, 0, sizeof(*out));
    memcpy(out->b, b, len);
    out->len = (uint8_t)len;
    return EP_EOK;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint32_t hash_addr(const ep_auth_rl *rl, const ep_auth_rl_addr *a)
{
    uint64_t w0, w1;
    memcpy(&w0, a->b, 8);
    memcpy(&w1, a->b + 8, 8);
    uint64_t h = mix(w0 ^ rl->seed[0]) ^ mix(w1 ^ rl->seed[1] ^ a->len);
    return (uint32_t)(h & (rl->nbuckets - 1));
}

/* Applies the IPv6 prefix so that all addresses of a /64 share an entry. */
static ep_auth_rl_addr key_of(const ep_auth_rl *rl, const ep_auth_rl_addr *a)
{
    ep_auth_rl_addr k = {.len = a->len == 16 ? 16 : 4};
    memcpy(k.b, a->b, k.len);
    if (k.len == 16) {
        unsigned bits = rl->o.ipv6_prefix;
        for (unsigned i = 0; i < 16; i++) {
            if (bits >= 8) {
                bits -= 8;
                continue;
            }
            k.b[i] &= (uint8_t)(0xff00u >> bits);
            bits = 0;
        }
    }
    return k;
}

static uint32_t find(const ep_auth_rl *rl, const ep_auth_rl_addr *k, uint32_t h)
{
    for (uint32_t i = rl->heads[h]; i != NIL; i = rl->e[i].hnext)
        if (rl->e[i].addr.len == k->len && memcmp(rl->e[i].addr.b, k->b, k->len) == 0)
            return i;
    return NIL;
}

static void lru_unlink(ep_auth_rl *rl, uint32_t i)
{
    rl_entry *x = &rl->e[i];
    if (x->prev != NIL)
        rl->e[x->prev].next = x->next;
    else
        rl->lru_head = x->next;
    if (x->next != NIL)
        rl->e[x->next].prev = x->prev;
    else
        rl->lru_tail = x->prev;
    x->prev = x->next = NIL;
}

static void lru_push_front(ep_auth_rl *rl, uint32_t i)
{
    rl_entry *x = &rl->e[i];
    x->prev = NIL;
    x->next = rl->lru_head;
    if (rl->lru_head != NIL)
        rl->e[rl->lru_head].prev = i;
    rl->lru_head = i;
    if (rl->lru_tail == NIL)
        rl->lru_tail = i;
}

static void hash_remove(ep_auth_rl *rl, uint32_t i)
{
    uint32_t h = hash_addr(rl, &rl->e[i].addr);
    for (uint32_t *pp = &rl->heads[h]; *pp != NIL; pp = &rl->e[*pp].hnext) {
        if (*pp == i) {
            *pp = rl->e[i].hnext;
            break;
        }
    }
    rl->e[i].hnext = NIL;
}

static void entry_drop(ep_auth_rl *rl, uint32_t i)
{
    hash_remove(rl, i);
    lru_unlink(rl, i);
    rl->e[i].used = false;
    rl->e[i].hnext = rl->free_head;
    rl->free_head = i;
    rl->used--;
}

ep_err ep_auth_rl_new(ep_auth_rl **out, const ep_auth_rl_opts *opts)
{
    ep_auth_rl_opts o = opts ? *opts : (ep_auth_rl_opts){0};
    if (o.capacity == 0)
        o.capacity = 65536;
    if (o.capacity >= NIL)
        o.capacity = NIL - 1;
    if (o.free_failures == 0)
        o.free_failures = 5;
    if (o.base_delay_ms == 0)
        o.base_delay_ms = 1000;
    if (o.max_delay_ms == 0)
        o.max_delay_ms = 300000;
    if (o.max_delay_ms < o.base_delay_ms)
        o.max_delay_ms = o.base_delay_ms;
    if (o.forget_ms == 0)
        o.forget_ms = 900000;
    if (o.ipv6_prefix == 0)
        o.ipv6_prefix = 64;
    if (o.ipv6_prefix > 128)
        return EP_EINVAL;
    ep_auth_rl *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return EP_ENOMEM;
    rl->o = o;
    rl->nbuckets = 1;
    while (rl->nbuckets < o.capacity && rl->nbuckets < (1u << 30))
        rl->nbuckets <<= 1;
    rl->e = calloc(o.capacity, sizeof(*rl->e));
    rl->heads = malloc(rl->nbuckets * sizeof(*rl->heads));
    if (rl->e == NULL || rl->heads == NULL || ep_auth__random(rl->seed, sizeof(rl->seed))) {
        free(rl->e);
        free(rl->heads);
        free(rl);
        return EP_ENOMEM;
    }
    for (uint32_t i = 0; i < rl->nbuckets; i++)
        rl->heads[i] = NIL;
    for (uint32_t i = 0; i < o.capacity; i++) {
        rl->e[i].prev = rl->e[i].next = NIL;
        rl->e[i].hnext = i + 1 < o.capacity ? i + 1 : NIL;
    }
    rl->free_head = 0;
    rl->lru_head = rl->lru_tail = NIL;
    pthread_mutex_init(&rl->lock, NULL);
    *out = rl;
    return EP_EOK;
}

void ep_auth_rl_free(ep_auth_rl *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->e);
    free(rl->heads);
    free(rl);
}

/* Looks k up; drops it if it has been quiet for forget_ms. */
static uint32_t lookup_live(ep_auth_rl *rl, const ep_auth_rl_addr *k, uint64_t now)
{
    uint32_t i = find(rl, k, hash_addr(rl, k));
    if (i != NIL && now >= rl->e[i].last + rl->o.forget_ms && now >= rl->e[i].blocked_until) {
        entry_drop(rl, i);
        i = NIL;
    }
    return i;
}

bool ep_auth_rl_allow(ep_auth_rl *rl, const ep_auth_rl_addr *addr, uint64_t now,
                      uint64_t *retry_after_ms)
{
    ep_auth_rl_addr k = key_of(rl, addr);
    pthread_mutex_lock(&rl->lock);
    uint32_t i = lookup_live(rl, &k, now);
    bool ok = i == NIL || now >= rl->e[i].blocked_until;
    if (ok)
        rl->st.allowed++;
    else
        rl->st.refused++;
    if (!ok && retry_after_ms != NULL)
        *retry_after_ms = rl->e[i].blocked_until - now;
    pthread_mutex_unlock(&rl->lock);
    return ok;
}

void ep_auth_rl_failure(ep_auth_rl *rl, const ep_auth_rl_addr *addr, uint64_t now)
{
    ep_auth_rl_addr k = key_of(rl, addr);
    pthread_mutex_lock(&rl->lock);
    rl->st.failures++;
    uint32_t i = lookup_live(rl, &k, now);
    if (i == NIL) {
        if (rl->free_head == NIL) {
            entry_drop(rl, rl->lru_tail);
            rl->st.evicted++;
        }
        i = rl->free_head;
        rl->free_head = rl->e[i].hnext;
        rl_entry *x = &rl->e[i];
        memset(x, 0, sizeof(*x));
        x->addr = k;
        x->used = true;
        x->prev = x->next = NIL;
        uint32_t h = hash_addr(rl, &k);
        x->hnext = rl->heads[h];
        rl->heads[h] = i;
        rl->used++;
    } else {
        lru_unlink(rl, i);
    }
    lru_push_front(rl, i);
    rl_entry *x = &rl->e[i];
    x->failures++;
    x->last = now;
    if (x->failures > rl->o.free_failures) {
        uint32_t k2 = x->failures - rl->o.free_failures - 1;
        uint64_t d = k2 >= 32 ? rl->o.max_delay_ms : (uint64_t)rl->o.base_delay_ms << k2;
        if (d > rl->o.max_delay_ms)
            d = rl->o.max_delay_ms;
        x->blocked_until = now + d;
    }
    pthread_mutex_unlock(&rl->lock);
}

void ep_auth_rl_success(ep_auth_rl *rl, const ep_auth_rl_addr *addr, uint64_t now)
{
    (void)now;
    ep_auth_rl_addr k = key_of(rl, addr);
    pthread_mutex_lock(&rl->lock);
    rl->st.successes++;
    uint32_t i = find(rl, &k, hash_addr(rl, &k));
    if (i != NIL)
        entry_drop(rl, i);
    pthread_mutex_unlock(&rl->lock);
}

void ep_auth_rl_get_stats(ep_auth_rl *rl, ep_auth_rl_stats *out)
{
    pthread_mutex_lock(&rl->lock);
    *out = rl->st;
    out->tracked = rl->used;
    pthread_mutex_unlock(&rl->lock);
}
