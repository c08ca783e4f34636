/*
 * arena.c - chunked bump allocator; see arena.h.
 *
 * Chunks form a singly linked list, newest standard chunk first. Oversized
 * requests get a dedicated chunk linked right after the head, so the bump
 * chunk keeps its free space. Every chunk carries a sequence number; a mark
 * records the sequence counter, and rewinding frees every chunk numbered
 * after it. Because dedicated chunks are always linked behind the bump chunk
 * current at their creation, the chunk a mark points at is the head again
 * once the newer chunks are gone.
 */
#include "codec/opcua/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN ((size_t) _Alignof(max_align_t))
#define ARENA_FIRST_CHUNK ((size_t)4096)
#define ARENA_MAX_CHUNK ((size_t)65536)

struct ep_ua_arena_chunk {
    struct ep_ua_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    unsigned long seq;
    int dedicated;
};

#define ARENA_HDR ((sizeof(struct ep_ua_arena_chunk) + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1))

static inline unsigned char *chunk_data(struct ep_ua_arena_chunk *c)
{
    return (unsigned char *)c + ARENA_HDR;
}

static void *sys_alloc(const ep_ua_arena *a, size_t n)
{
    if (a->_alloc)
        return a->_alloc->alloc(a->_alloc->ud, n);
    return malloc(n);
}

static void sys_free(const ep_ua_arena *a, void *p)
{
    if (a->_alloc)
        a->_alloc->free(a->_alloc->ud, p);
    else
        free(p);
}

void ep_ua_arena_init(ep_ua_arena *a, size_t limit, const ep_ua_allocator *alloc)
{
    memset(a, 0, sizeof(*a));
    a->_limit = limit;
    a->_alloc = alloc;
    a->_next = ARENA_FIRST_CHUNK;
}

static void free_chunk(ep_ua_arena *a, struct ep_ua_arena_chunk *c)
{
    a->_total -= ARENA_HDR + c->size;
    sys_free(a, c);
}

void ep_ua_arena_fini(ep_ua_arena *a)
{
    if (a == NULL)
        return;
    struct ep_ua_arena_chunk *c = a->_head;
    while (c) {
        struct ep_ua_arena_chunk *next = c->next;
        free_chunk(a, c);
        c = next;
    }
    a->_head = NULL;
    a->_used = 0;
    a->_total = 0;
    a->_next = ARENA_FIRST_CHUNK;
}

void ep_ua_arena_clear(ep_ua_arena *a)
{
    if (a == NULL || a->_head == NULL)
        return;
    /* Keep the oldest standard chunk (the last one in the list). */
    struct ep_ua_arena_chunk *keep = NULL;
    for (struct ep_ua_arena_chunk *c = a->_head; c; c = c->next)
        if (!c->dedicated)
            keep = c;
    struct ep_ua_arena_chunk *c = a->_head;
    while (c) {
        struct ep_ua_arena_chunk *next = c->next;
        if (c != keep)
            free_chunk(a, c);
        c = next;
    }
    a->_head = keep;
    a->_used = 0;
    if (keep) {
        keep->next = NULL;
        keep->seq = 0;
    }
    a->_seq = 0;
}

static ep_err new_chunk(ep_ua_arena *a, size_t size, int dedicated, struct ep_ua_arena_chunk **out)
{
    if (size > SIZE_MAX - ARENA_HDR)
        return EP_ETOOBIG;
    size_t bytes = ARENA_HDR + size;
    if (a->_limit && (bytes > a->_limit || a->_total > a->_limit - bytes))
        return EP_ETOOBIG;
    struct ep_ua_arena_chunk *c = sys_alloc(a, bytes);
    if (c == NULL)
        return EP_ENOMEM;
    c->next = NULL;
    c->size = size;
    c->seq = ++a->_seq;
    c->dedicated = dedicated;
    a->_total += bytes;
    *out = c;
    return EP_EOK;
}

ep_err ep_ua_arena_alloc(ep_ua_arena *a, size_t n, void **out)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - ARENA_ALIGN)
        return EP_ETOOBIG;
    size_t need = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    struct ep_ua_arena_chunk *h = a->_head;
    if (h && h->size - a->_used >= need) {
        void *p = chunk_data(h) + a->_used;
        a->_used += need;
        memset(p, 0, n);
        *out = p;
        return EP_EOK;
    }
    if (a->_next == 0)
        a->_next = ARENA_FIRST_CHUNK;
    struct ep_ua_arena_chunk *c;
    ep_err err;
    if (need > a->_next / 4) {
        /* Dedicated chunk, linked behind the bump chunk. */
        err = new_chunk(a, need, 1, &c);
        if (err)
            return err;
        if (h) {
            c->next = h->next;
            h->next = c;
        } else {
            /* No bump chunk yet: the dedicated chunk becomes a full head. */
            c->next = NULL;
            a->_head = c;
            a->_used = need;
        }
    } else {
        err = new_chunk(a, a->_next, 0, &c);
        if (err)
            return err;
        if (a->_next < ARENA_MAX_CHUNK)
            a->_next *= 2;
        c->next = h;
        a->_head = c;
        a->_used = need;
    }
    memset(chunk_data(c), 0, n);
    *out = chunk_data(c);
    return EP_EOK;
}

ep_ua_arena_mark ep_ua_arena_save(const ep_ua_arena *a)
{
    ep_ua_arena_mark m;
    m._chunk = a->_head;
    m._used = a->_used;
    m._seq = a->_seq;
    return m;
}

void ep_ua_arena_rewind(ep_ua_arena *a, ep_ua_arena_mark m)
{
    struct ep_ua_arena_chunk **pp = &a->_head;
    while (*pp) {
        struct ep_ua_arena_chunk *c = *pp;
        if (c->seq > m._seq) {
            *pp = c->next;
            free_chunk(a, c);
        } else {
            pp = &c->next;
        }
    }
    a->_head = m._chunk;
    a->_used = m._used;
}
