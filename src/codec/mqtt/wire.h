/*
 * wire.h - internal helpers shared by the MQTT codec files (not installed,
 * not for use outside src/codec/mqtt).
 *
 * rd is a bounds-checked cursor over received bytes; every read either
 * succeeds or reports EP_EMALFORMED, so decoders never index past the packet.
 * wr is a writer that either only counts (p == NULL) or writes into memory
 * that was sized by a previous counting pass, so each encoder has a single
 * code path for "how big" and "write it".
 */
#ifndef EP_CODEC_MQTT_WIRE_H
#define EP_CODEC_MQTT_WIRE_H

#include <string.h>

#include "codec/mqtt/packet.h"

typedef struct ep_mqtt__rd {
    const uint8_t *p;
    size_t n;
    size_t off;
} ep_mqtt__rd;

static inline size_t ep_mqtt__rd_left(const ep_mqtt__rd *r) { return r->n - r->off; }

static inline ep_err ep_mqtt__rd_u8(ep_mqtt__rd *r, uint8_t *v)
{
    if (r->n - r->off < 1)
        return EP_EMALFORMED;
    *v = r->p[r->off++];
    return EP_EOK;
}

static inline ep_err ep_mqtt__rd_u16(ep_mqtt__rd *r, uint16_t *v)
{
    if (r->n - r->off < 2)
        return EP_EMALFORMED;
    *v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
    r->off += 2;
    return EP_EOK;
}

static inline ep_err ep_mqtt__rd_u32(ep_mqtt__rd *r, uint32_t *v)
{
    if (r->n - r->off < 4)
        return EP_EMALFORMED;
    const uint8_t *q = r->p + r->off;
    *v = ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | (uint32_t)q[3];
    r->off += 4;
    return EP_EOK;
}

/* Binary Data / string body: 2-byte length then bytes (no UTF-8 check). */
static inline ep_err ep_mqtt__rd_bin(ep_mqtt__rd *r, ep_mqtt_slice *s)
{
    uint16_t len;
    if (ep_mqtt__rd_u16(r, &len))
        return EP_EMALFORMED;
    if (r->n - r->off < len)
        return EP_EMALFORMED;
    s->p = r->p + r->off;
    s->len = len;
    r->off += len;
    return EP_EOK;
}

/* Variable Byte Integer: at most 4 bytes, minimally encoded. */
ep_err ep_mqtt__rd_varint(ep_mqtt__rd *r, uint32_t *v);
/* UTF-8 Encoded String: Binary Data that passes ep_mqtt_utf8_check. */
ep_err ep_mqtt__rd_str(ep_mqtt__rd *r, ep_mqtt_slice *s);

typedef struct ep_mqtt__wr {
    uint8_t *p; /* NULL: count only */
    size_t len;
} ep_mqtt__wr;

static inline void ep_mqtt__wr_u8(ep_mqtt__wr *w, uint8_t v)
{
    if (w->p)
        w->p[w->len] = v;
    w->len += 1;
}

static inline void ep_mqtt__wr_u16(ep_mqtt__wr *w, uint16_t v)
{
    if (w->p) {
        w->p[w->len] = (uint8_t)(v >> 8);
        w->p[w->len + 1] = (uint8_t)v;
    }
    w->len += 2;
}

static inline void ep_mqtt__wr_u32(ep_mqtt__wr *w, uint32_t v)
{
    if (w->p) {
        uint8_t *q = w->p + w->len;
        q[0] = (uint8_t)(v >> 24);
        q[1] = (uint8_t)(v >> 16);
        q[2] = (uint8_t)(v >> 8);
        q[3] = (uint8_t)v;
    }
    w->len += 4;
}

static inline void ep_mqtt__wr_bytes(ep_mqtt__wr *w, const void *p, size_t n)
{
    if (w->p && n)
        memcpy(w->p + w->len, p, n);
    w->len += n;
}

/* Length-prefixed string or binary; the caller checked len <= 65535. */
static inline void ep_mqtt__wr_bin(ep_mqtt__wr *w, ep_mqtt_slice s)
{
    ep_mqtt__wr_u16(w, (uint16_t)s.len);
    ep_mqtt__wr_bytes(w, s.p, s.len);
}

static inline void ep_mqtt__wr_varint(ep_mqtt__wr *w, uint32_t v)
{
    if (w->p)
        w->len += ep_mqtt_varint_write(w->p + w->len, v);
    else
        w->len += ep_mqtt_varint_size(v);
}

/* Properties: decode into out (ctx = packet type or EP_MQTT_PROPS_CTX_WILL),
 * which must be zeroed. Reads Property Length and the properties from r.
 * On error sets *rc. */
ep_err ep_mqtt__props_decode(ep_mqtt__rd *r, int ctx, ep_mqtt_props *out, ep_mqtt_rc *rc);
/* Properties: write the properties only (no Property Length); counts when
 * w->p is NULL. ctx is the packet type or EP_MQTT_PROPS_CTX_WILL (-1: no
 * check); a property not allowed there, a set id outside the table or an
 * unencodable value gives EP_EINVAL. */
ep_err ep_mqtt__props_body(ep_mqtt__wr *w, const ep_mqtt_props *props, int ctx, bool drop_optional);
/* Properties: write Property Length + properties. drop_optional omits
 * Reason String and User Properties (maximum packet size fallback).
 * Returns EP_EINVAL for unencodable values (then nothing valid was written). */
ep_err ep_mqtt__props_write(ep_mqtt__wr *w, const ep_mqtt_props *props, int ctx,
                            bool drop_optional);

/* Topic syntax checks without the UTF-8 pass (decode already did it). */
bool ep_mqtt__topic_name_syntax(ep_mqtt_slice topic);
bool ep_mqtt__topic_filter_syntax(ep_mqtt_slice filter);

/* UTF-8 scan flags. */
#define EP_MQTT__UTF8_ALLOW_NUL 1u /* payloads: RFC 3629 well-formedness only */
#define EP_MQTT__UTF8_STRICT 2u    /* no controls, no non-characters */
ep_err ep_mqtt__utf8_scan(const uint8_t *p, size_t n, unsigned flags);

#endif
