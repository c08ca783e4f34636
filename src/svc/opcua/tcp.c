/*
 * tcp.c - OPC UA Connection Protocol framing: header, HEL, ACK, ERR, RHE.
 *
 * Each message is small and fixed in layout, so the coders are written out
 * by hand rather than through the type tables. Decoders insist that the
 * message is exactly as long as its header says, and bound every string.
 */
#include <string.h>

#include "svc/opcua/tcp.h"

ep_err ep_ua__hdr_parse(const uint8_t *p, size_t n, ep_ua__hdr *h)
{
    if (n < EP_UA_HDR_LEN)
        return EP_ENEEDMORE;
    uint32_t type = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    uint8_t chunk = p[3];
    uint32_t size = ep_ua__rd32(p + 4);
    uint32_t min;
    switch (type) {
    case EP_UA_MSG_HEL:
        min = 8 + 20 + 4;
        break;
    case EP_UA_MSG_ACK:
        min = 8 + 20;
        break;
    case EP_UA_MSG_ERR:
        min = 8 + 8;
        break;
    case EP_UA_MSG_RHE:
        min = 8 + 8;
        break;
    case EP_UA_MSG_OPN:
        min = 8 + 4 + 12 + 8;
        break;
    case EP_UA_MSG_MSG:
    case EP_UA_MSG_CLO:
        min = 8 + 4 + 4 + 8;
        break;
    default:
        return EP_EMALFORMED;
    }
    if (type == EP_UA_MSG_MSG) {
        if (chunk != 'F' && chunk != 'C' && chunk != 'A')
            return EP_EMALFORMED;
    } else if (chunk != 'F') {
        return EP_EMALFORMED;
    }
    if (size < min)
        return EP_EMALFORMED;
    h->type = type;
    h->chunk = chunk;
    h->size = size;
    return EP_EOK;
}

static ep_err put_hdr(ep_buf *out, uint32_t type, size_t *start)
{
    *start = out->len;
    uint8_t h[8] = {(uint8_t)type, (uint8_t)(type >> 8), (uint8_t)(type >> 16), 'F', 0, 0, 0, 0};
    return ep_buf_append(out, h, sizeof(h));
}

static ep_err put_u32(ep_buf *out, uint32_t v)
{
    uint8_t b[4];
    ep_ua__wr32(b, v);
    return ep_buf_append(out, b, 4);
}

static ep_err put_str(ep_buf *out, const ep_ua_string *s, size_t max)
{
    if (s->data == NULL)
        return put_u32(out, 0xffffffffu);
    if (s->len > max)
        return EP_EINVAL;
    ep_err e = put_u32(out, (uint32_t)s->len);
    if (e == EP_EOK && s->len)
        e = ep_buf_append(out, s->data, s->len);
    return e;
}

static ep_err finish(ep_buf *out, size_t start, ep_err e)
{
    if (e != EP_EOK) {
        out->len = start;
        return e;
    }
    ep_ua__wr32(out->data + start + 4, (uint32_t)(out->len - start));
    return EP_EOK;
}

static ep_err put_sizes(ep_buf *out, const ep_ua__hello *h)
{
    ep_err e = put_u32(out, h->version);
    if (e == EP_EOK)
        e = put_u32(out, h->recv_buffer);
    if (e == EP_EOK)
        e = put_u32(out, h->send_buffer);
    if (e == EP_EOK)
        e = put_u32(out, h->max_message);
    if (e == EP_EOK)
        e = put_u32(out, h->max_chunks);
    return e;
}

ep_err ep_ua__hello_encode(ep_buf *out, const ep_ua__hello *h)
{
    size_t start;
    ep_err e = put_hdr(out, EP_UA_MSG_HEL, &start);
    if (e == EP_EOK)
        e = put_sizes(out, h);
    if (e == EP_EOK)
        e = put_str(out, &h->url, EP_UA_MAX_URL);
    return finish(out, start, e);
}

ep_err ep_ua__ack_encode(ep_buf *out, const ep_ua__hello *a)
{
    size_t start;
    ep_err e = put_hdr(out, EP_UA_MSG_ACK, &start);
    if (e == EP_EOK)
        e = put_sizes(out, a);
    return finish(out, start, e);
}

ep_err ep_ua__error_encode(ep_buf *out, const ep_ua__error *er)
{
    size_t start;
    ep_err e = put_hdr(out, EP_UA_MSG_ERR, &start);
    if (e == EP_EOK)
        e = put_u32(out, er->status);
    if (e == EP_EOK)
        e = put_str(out, &er->reason, EP_UA_MAX_REASON);
    return finish(out, start, e);
}

ep_err ep_ua__rhello_encode(ep_buf *out, const ep_ua__rhello *r)
{
    size_t start;
    ep_err e = put_hdr(out, EP_UA_MSG_RHE, &start);
    if (e == EP_EOK)
        e = put_str(out, &r->server_uri, EP_UA_MAX_URL);
    if (e == EP_EOK)
        e = put_str(out, &r->url, EP_UA_MAX_URL);
    return finish(out, start, e);
}

/* ---- decoding ---- */

typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
} rd;

static int get_u32(rd *r, uint32_t *v)
{
    if (r->n - r->pos < 4)
        return -1;
    *v = ep_ua__rd32(r->p + r->pos);
    r->pos += 4;
    return 0;
}

static int get_str(rd *r, ep_ua_string *s, size_t max)
{
    uint32_t len;
    if (get_u32(r, &len) != 0)
        return -1;
    if (len == 0xffffffffu) {
        s->len = 0;
        s->data = NULL;
        return 0;
    }
    if (len > max || len > r->n - r->pos)
        return -1;
    s->len = len;
    s->data = len ? (uint8_t *)(uintptr_t)(r->p + r->pos) : (uint8_t *)EP_UA_EMPTY;
    r->pos += len;
    return 0;
}

static int open_rd(rd *r, const uint8_t *p, size_t n, uint32_t type)
{
    ep_ua__hdr h;
    if (ep_ua__hdr_parse(p, n, &h) != EP_EOK || h.type != type || h.size != n)
        return -1;
    r->p = p;
    r->n = n;
    r->pos = EP_UA_HDR_LEN;
    return 0;
}

static int get_sizes(rd *r, ep_ua__hello *h)
{
    return get_u32(r, &h->version) || get_u32(r, &h->recv_buffer) || get_u32(r, &h->send_buffer) ||
                   get_u32(r, &h->max_message) || get_u32(r, &h->max_chunks)
               ? -1
               : 0;
}

ep_err ep_ua__hello_decode(const uint8_t *p, size_t n, ep_ua__hello *h)
{
    rd r;
    ep_ua__hello v;
    memset(&v, 0, sizeof(v));
    if (open_rd(&r, p, n, EP_UA_MSG_HEL) || get_sizes(&r, &v) ||
        get_str(&r, &v.url, EP_UA_MAX_URL) || r.pos != n)
        return EP_EMALFORMED;
    *h = v;
    return EP_EOK;
}

ep_err ep_ua__ack_decode(const uint8_t *p, size_t n, ep_ua__hello *a)
{
    rd r;
    ep_ua__hello v;
    memset(&v, 0, sizeof(v));
    if (open_rd(&r, p, n, EP_UA_MSG_ACK) || get_sizes(&r, &v) || r.pos != n)
        return EP_EMALFORMED;
    *a = v;
    return EP_EOK;
}

ep_err ep_ua__error_decode(const uint8_t *p, size_t n, ep_ua__error *e)
{
    rd r;
    ep_ua__error v;
    memset(&v, 0, sizeof(v));
    if (open_rd(&r, p, n, EP_UA_MSG_ERR) || get_u32(&r, &v.status) ||
        get_str(&r, &v.reason, EP_UA_MAX_REASON) || r.pos != n)
        return EP_EMALFORMED;
    *e = v;
    return EP_EOK;
}

ep_err ep_ua__rhello_decode(const uint8_t *p, size_t n, ep_ua__rhello *rh)
{
    rd r;
    ep_ua__rhello v;
    memset(&v, 0, sizeof(v));
    if (open_rd(&r, p, n, EP_UA_MSG_RHE) || get_str(&r, &v.server_uri, EP_UA_MAX_URL) ||
        get_str(&r, &v.url, EP_UA_MAX_URL) || r.pos != n)
        return EP_EMALFORMED;
    *rh = v;
    return EP_EOK;
}
