/* buf.c - see buf.h. Compaction happens only when growing, never per read. */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

void ep_buf_init(ep_buf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void ep_buf_fini(ep_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

void ep_buf_clear(ep_buf *b) { b->off = b->len = 0; }

ep_err ep_buf_reserve(ep_buf *b, size_t n)
{
    size_t used = b->len - b->off;
    if (b->cap - b->len >= n)
        return EP_EOK;
    if (n > SIZE_MAX / 2 - used)
        return EP_ETOOBIG;
    /* Reclaim consumed space first: cheaper than a bigger allocation. */
    if (b->off > 0 && b->cap - used >= n) {
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = used;
        return EP_EOK;
    }
    size_t need = used + n;
    if (b->limit && need > b->limit)
        return EP_ETOOBIG;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (b->limit && cap > b->limit)
        cap = b->limit;
    uint8_t *p = malloc(cap);
    if (p == NULL)
        return EP_ENOMEM;
    if (used)
        memcpy(p, b->data + b->off, used);
    free(b->data);
    b->data = p;
    b->off = 0;
    b->len = used;
    b->cap = cap;
    return EP_EOK;
}

ep_err ep_buf_append(ep_buf *b, const void *p, size_t n)
{
    ep_err err = ep_buf_reserve(b, n);
    if (err)
        return err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return EP_EOK;
}

ep_err ep_buf_append_u8(ep_buf *b, uint8_t v) { return ep_buf_append(b, &v, 1); }

ep_err ep_buf_append_u16be(ep_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return ep_buf_append(b, x, 2);
}

ep_err ep_buf_append_u32be(ep_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return ep_buf_append(b, x, 4);
}

void ep_buf_consume(ep_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void ep_buf_shrink(ep_buf *b, size_t keep)
{
    if (b->len == b->off && b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->off = b->len = b->cap = 0;
    }
}
