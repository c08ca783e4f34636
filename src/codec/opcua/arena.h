/*
 * arena.h - bump allocator for decoded OPC UA values.
 *
 * The binary decoder allocates every string, array and nested value of a
 * message from an arena, so a whole decoded message is released with one
 * ep_ua_arena_clear() or ep_ua_arena_fini() and a failed decode is undone by
 * rewinding to a mark (h2o mem pool style). An arena has a byte limit, which
 * is how peer-sized decode memory stays bounded: allocations past the limit
 * fail with EP_ETOOBIG before anything is requested from the system.
 *
 * Memory comes from chunks of growing size; requests larger than a quarter of
 * the standard chunk get a chunk of their own. Chunks come from an
 * ep_ua_allocator, malloc/free by default; tests inject a failing one.
 *
 * An arena is not thread-safe: one owner thread at a time.
 */
#ifndef EP_CODEC_OPCUA_ARENA_H
#define EP_CODEC_OPCUA_ARENA_H

#include <stddef.h>

#include "core/err.h"

/* ep_ua_allocator supplies the arena's chunks. alloc returns NULL on
 * failure; free accepts pointers returned by alloc only. */
typedef struct ep_ua_allocator {
    void *(*alloc)(void *ud, size_t n);
    void (*free)(void *ud, void *p);
    void *ud;
} ep_ua_allocator;

struct ep_ua_arena_chunk;

typedef struct ep_ua_arena {
    struct ep_ua_arena_chunk *_head; /* current bump chunk first */
    size_t _used;                    /* bytes used in _head */
    size_t _total;                   /* bytes held in all chunks */
    size_t _limit;                   /* 0 = unlimited */
    size_t _next;                    /* size of the next standard chunk */
    unsigned long _seq;              /* chunk sequence counter */
    const ep_ua_allocator *_alloc;   /* NULL = malloc/free */
} ep_ua_arena;

/* A position in an arena, for ep_ua_arena_rewind. */
typedef struct ep_ua_arena_mark {
    struct ep_ua_arena_chunk *_chunk;
    size_t _used;
    unsigned long _seq;
} ep_ua_arena_mark;

/* ep_ua_arena_init prepares caller storage. limit bounds the bytes held in
 * chunks (headers included), 0 means unlimited. alloc may be NULL (malloc);
 * it is borrowed and must outlive the arena. No allocation happens here. */
void ep_ua_arena_init(ep_ua_arena *a, size_t limit, const ep_ua_allocator *alloc);

/* ep_ua_arena_fini frees every chunk. Safe on zeroed or finished arenas. */
void ep_ua_arena_fini(ep_ua_arena *a);

/* ep_ua_arena_clear frees everything allocated but keeps the oldest
 * standard chunk for reuse, so a per-connection arena stops calling malloc
 * once warmed up. Safe on zeroed arenas. */
void ep_ua_arena_clear(ep_ua_arena *a);

/* ep_ua_arena_alloc returns in *out n zeroed bytes aligned for any type
 * (n == 0 yields a valid unique pointer). *out is untouched on error.
 * Returns EP_EOK, EP_ETOOBIG when the limit would be exceeded, EP_ENOMEM
 * when the allocator fails. */
ep_err ep_ua_arena_alloc(ep_ua_arena *a, size_t n, void **out);

/* ep_ua_arena_save returns the current position. */
ep_ua_arena_mark ep_ua_arena_save(const ep_ua_arena *a);

/* ep_ua_arena_rewind releases everything allocated since m was saved.
 * Marks saved later than m become invalid. */
void ep_ua_arena_rewind(ep_ua_arena *a, ep_ua_arena_mark m);

/* ep_ua_arena_used returns the bytes currently held in chunks. */
static inline size_t ep_ua_arena_used(const ep_ua_arena *a) { return a->_total; }

#endif
