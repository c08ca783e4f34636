/*
 * buf.h - growable byte buffer owned by its holder.
 *
 * An ep_buf is a plain struct embedded by its owner (connections embed their
 * read and write buffers). Data lives in [data + off, data + len); consuming
 * from the front advances off, and the buffer compacts lazily when it grows,
 * so a reader can parse many packets out of one read() without memmove per
 * packet. Growth is bounded by the caller: ep_buf_reserve fails with
 * EP_ETOOBIG past `limit` (0 means no limit), which is how peer-sized buffers
 * stay within their configured maximum.
 */
#ifndef EP_CORE_BUF_H
#define EP_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct ep_buf {
    uint8_t *data;
    size_t off;   /* start of unread data */
    size_t len;   /* end of valid data */
    size_t cap;   /* allocated size */
    size_t limit; /* maximum cap, 0 = unbounded */
} ep_buf;

/* ep_buf_init prepares caller storage; limit 0 means unbounded. No allocation. */
void ep_buf_init(ep_buf *b, size_t limit);
/* ep_buf_fini frees the storage; safe on zeroed or already finished buffers. */
void ep_buf_fini(ep_buf *b);
/* ep_buf_clear drops the contents and keeps the storage. */
void ep_buf_clear(ep_buf *b);
/* ep_buf_reserve makes room for n more bytes after len.
 * Returns EP_EOK, EP_ENOMEM, or EP_ETOOBIG when the limit would be exceeded. */
ep_err ep_buf_reserve(ep_buf *b, size_t n);
/* ep_buf_append copies n bytes to the end. Errors as ep_buf_reserve. */
ep_err ep_buf_append(ep_buf *b, const void *p, size_t n);
/* ep_buf_append_u8/u16/u32 append big-endian integers (network order). */
ep_err ep_buf_append_u8(ep_buf *b, uint8_t v);
ep_err ep_buf_append_u16be(ep_buf *b, uint16_t v);
ep_err ep_buf_append_u32be(ep_buf *b, uint32_t v);
/* ep_buf_consume drops n bytes from the front (n <= ep_buf_used). */
void ep_buf_consume(ep_buf *b, size_t n);
/* ep_buf_shrink releases storage above keep bytes when the buffer is empty,
 * so idle connections hold no large buffers. */
void ep_buf_shrink(ep_buf *b, size_t keep);

static inline size_t ep_buf_used(const ep_buf *b) { return b->len - b->off; }
/* Pointer arithmetic on a buffer that never grew would be NULL + 0. */
static inline uint8_t *ep_buf_head(const ep_buf *b) { return b->data ? b->data + b->off : NULL; }
static inline uint8_t *ep_buf_tail(const ep_buf *b) { return b->data ? b->data + b->len : NULL; }
static inline size_t ep_buf_room(const ep_buf *b) { return b->cap - b->len; }

#endif
