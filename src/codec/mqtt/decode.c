/*
 * decode.c - framing and zero-copy decoding of MQTT 3.1.1 and 5.0 packets.
 *
 * Framing looks only at the fixed header, so an oversized Remaining Length is
 * refused before any of the body is read or buffered. Decoding then works on
 * one whole packet: every length is checked against the bytes that are left
 * (never trusted), nothing is allocated, and strings/binaries in the output
 * point into the input. Each rule that fails reports the error class and the
 * v5 reason code the spec gives for it, so the caller can answer with
 * CONNACK/DISCONNECT without knowing the rule.
 *
 * The decoder is direction-agnostic: it accepts what either side may send and
 * leaves connection-state checks (aliases, quotas, packet ids in use) to the
 * broker and client.
 */
#include "codec/mqtt/wire.h"

#include <stddef.h>

/* ------------------------------------------------------------------------ */
/* Primitives                                                                */

ep_err ep_mqtt__rd_varint(ep_mqtt__rd *r, uint32_t *v)
{
    uint32_t val = 0;
    for (unsigned i = 0; i < 4; i++) {
        if (r->off >= r->n)
            return EP_EMALFORMED;
        uint8_t b = r->p[r->off++];
        val |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            if (i > 0 && b == 0) /* not minimal [MQTT-1.5.5-1] */
                return EP_EMALFORMED;
            *v = val;
            return EP_EOK;
        }
    }
    return EP_EMALFORMED;
}

ep_err ep_mqtt__rd_str(ep_mqtt__rd *r, ep_mqtt_slice *s)
{
    ep_mqtt_slice t;
    if (ep_mqtt__rd_bin(r, &t))
        return EP_EMALFORMED;
    if (ep_mqtt__utf8_scan(t.p, t.len, 0))
        return EP_EUTF8;
    *s = t;
    return EP_EOK;
}

/* ------------------------------------------------------------------------ */
/* Framing                                                                   */

ep_err ep_mqtt_packet_frame(const uint8_t *p, size_t n, uint32_t max_packet, size_t *hdr_len,
                            size_t *total_len)
{
    if (hdr_len == NULL || total_len == NULL || (n && p == NULL))
        return EP_EINVAL;
    if (n < 1)
        return EP_ENEEDMORE;
    if ((p[0] >> 4) == 0)
        return EP_EMALFORMED;
    uint64_t limit = max_packet ? max_packet : EP_MQTT_MAX_PACKET;

    uint32_t val = 0;
    for (unsigned i = 0; i < 4; i++) {
        if (1 + i >= n) {
            /* Incomplete length: refuse early if even the smallest value the
             * remaining bytes could give is already too big. */
            uint64_t min_total = 1 + (uint64_t)i + 1 + val + (i ? (UINT64_C(1) << (7 * i)) : 0);
            if (i && min_total > limit)
                return EP_ETOOBIG;
            return EP_ENEEDMORE;
        }
        uint8_t b = p[1 + i];
        val |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            if (i > 0 && b == 0)
                return EP_EMALFORMED;
            uint64_t total = 1 + (uint64_t)(i + 1) + val;
            if (total > limit)
                return EP_ETOOBIG;
            if (n < total)
                return EP_ENEEDMORE;
            *hdr_len = 1 + (size_t)(i + 1);
            *total_len = (size_t)total;
            return EP_EOK;
        }
    }
    return EP_EMALFORMED;
}

/* ------------------------------------------------------------------------ */
/* Packet decoders                                                           */

typedef struct dctx {
    ep_mqtt__rd r;   /* the variable header + payload */
    uint8_t version; /* 4 or 5 */
    uint8_t flags;   /* low nibble of the fixed header */
    ep_mqtt_rc rc;
} dctx;

static ep_err fail(dctx *c, ep_err err, ep_mqtt_rc rc)
{
    c->rc = rc;
    return err;
}

static ep_err malformed(dctx *c) { return fail(c, EP_EMALFORMED, EP_MQTT_RC_MALFORMED_PACKET); }

static ep_err proto(dctx *c) { return fail(c, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR); }

/* A read error from ep_mqtt__rd_*: EP_EMALFORMED or EP_EUTF8, both 0x81. */
static ep_err rdfail(dctx *c, ep_err err) { return fail(c, err, EP_MQTT_RC_MALFORMED_PACKET); }

/* out is already zeroed (ep_mqtt_packet_decode clears the member). */
static ep_err props(dctx *c, int ctx, ep_mqtt_props *out)
{
    if (c->version < EP_MQTT_V5)
        return EP_EOK;
    return ep_mqtt__props_decode(&c->r, ctx, out, &c->rc);
}

static ep_err packet_id(dctx *c, uint16_t *id)
{
    ep_err err = ep_mqtt__rd_u16(&c->r, id);
    if (err)
        return rdfail(c, err);
    if (*id == 0) /* [MQTT-2.2.1-3] */
        return proto(c);
    return EP_EOK;
}

static ep_err end(dctx *c) { return ep_mqtt__rd_left(&c->r) ? malformed(c) : EP_EOK; }

static const uint8_t proto_name[4] = {'M', 'Q', 'T', 'T'};

static ep_err dec_connect(dctx *c, ep_mqtt_connect *o)
{
    ep_mqtt_slice name;
    uint8_t level, fl;
    ep_err err;

    if ((err = ep_mqtt__rd_bin(&c->r, &name)))
        return rdfail(c, err);
    if ((err = ep_mqtt__rd_u8(&c->r, &level)))
        return rdfail(c, err);
    /* [MQTT-3.1.2-1], [MQTT-3.1.2-2]: name "MQTT", levels 4 and 5 only.
     * "MQIsdp"/3 (MQTT 3.1) lands here too. */
    if (name.len != 4 || memcmp(name.p, proto_name, 4) ||
        (level != EP_MQTT_V311 && level != EP_MQTT_V5))
        return fail(c, EP_EUNSUPPORTED, EP_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION);
    c->version = level;
    o->protocol_version = level;

    if ((err = ep_mqtt__rd_u8(&c->r, &fl)))
        return rdfail(c, err);
    if (fl & 0x01) /* reserved [MQTT-3.1.2-3] */
        return malformed(c);
    o->clean_start = (fl & 0x02) != 0;
    o->has_will = (fl & 0x04) != 0;
    o->will.qos = (fl >> 3) & 0x03;
    o->will.retain = (fl & 0x20) != 0;
    o->has_password = (fl & 0x40) != 0;
    o->has_username = (fl & 0x80) != 0;
    if (!o->has_will && (o->will.qos || o->will.retain)) /* [MQTT-3.1.2-11..15] */
        return malformed(c);
    if (o->will.qos == 3) /* [MQTT-3.1.2-14] */
        return malformed(c);
    if (level == EP_MQTT_V311 && o->has_password && !o->has_username)
        return malformed(c); /* 3.1.1 [MQTT-3.1.2-22] */

    if ((err = ep_mqtt__rd_u16(&c->r, &o->keep_alive)))
        return rdfail(c, err);
    if ((err = props(c, EP_MQTT_CONNECT, &o->props)))
        return err;

    if ((err = ep_mqtt__rd_str(&c->r, &o->client_id)))
        return rdfail(c, err);
    /* 3.1.1 [MQTT-3.1.3-8]: empty ClientId needs CleanSession=1; answered
     * with return code 0x02 Identifier rejected. */
    if (level == EP_MQTT_V311 && o->client_id.len == 0 && !o->clean_start)
        return fail(c, EP_EPROTO, EP_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID);

    if (o->has_will) {
        if ((err = props(c, EP_MQTT_PROPS_CTX_WILL, &o->will.props)))
            return err;
        if ((err = ep_mqtt__rd_str(&c->r, &o->will.topic)))
            return rdfail(c, err);
        if (!ep_mqtt__topic_name_syntax(o->will.topic))
            return fail(c, EP_EPROTO, EP_MQTT_RC_TOPIC_NAME_INVALID);
        if ((err = ep_mqtt__rd_bin(&c->r, &o->will.payload)))
            return rdfail(c, err);
    }
    if (o->has_username && (err = ep_mqtt__rd_str(&c->r, &o->username)))
        return rdfail(c, err);
    if (o->has_password && (err = ep_mqtt__rd_bin(&c->r, &o->password)))
        return rdfail(c, err);
    return end(c);
}

static ep_err dec_connack(dctx *c, ep_mqtt_connack *o)
{
    uint8_t fl, code;
    ep_err err;
    if ((err = ep_mqtt__rd_u8(&c->r, &fl)))
        return rdfail(c, err);
    if (fl & 0xFE) /* [MQTT-3.2.2-1] */
        return malformed(c);
    o->session_present = fl & 0x01;
    if ((err = ep_mqtt__rd_u8(&c->r, &code)))
        return rdfail(c, err);
    if (c->version == EP_MQTT_V311) {
        if (ep_mqtt_rc_from_v3_connack(code, &o->rc))
            return proto(c);
    } else {
        if (!ep_mqtt_rc_valid_for(code, EP_MQTT_CONNACK))
            return proto(c);
        o->rc = (ep_mqtt_rc)code;
    }
    if (o->rc != EP_MQTT_RC_SUCCESS && o->session_present) /* [MQTT-3.2.2-6] */
        return proto(c);
    if ((err = props(c, EP_MQTT_CONNACK, &o->props)))
        return err;
    return end(c);
}

static ep_err dec_publish(dctx *c, ep_mqtt_publish *o)
{
    ep_err err;
    o->retain = c->flags & 0x01;
    o->qos = (c->flags >> 1) & 0x03;
    o->dup = (c->flags & 0x08) != 0;
    if (o->qos == 3) /* [MQTT-3.3.1-4] */
        return malformed(c);
    if (o->dup && o->qos == 0) /* [MQTT-3.3.1-2] */
        return proto(c);
    if ((err = ep_mqtt__rd_str(&c->r, &o->topic)))
        return rdfail(c, err);
    if (o->topic.len && !ep_mqtt__topic_name_syntax(o->topic)) /* [MQTT-3.3.2-2] */
        return fail(c, EP_EPROTO, EP_MQTT_RC_TOPIC_NAME_INVALID);
    if (o->qos && (err = packet_id(c, &o->packet_id)))
        return err;
    if ((err = props(c, EP_MQTT_PUBLISH, &o->props)))
        return err;
    /* Empty topic only with a Topic Alias (v5 3.3.2.1); never in 3.1.1. */
    if (o->topic.len == 0 && !EP_MQTT_PROPS_HAS(&o->props, EP_MQTT_PROP_TOPIC_ALIAS))
        return proto(c);
    o->payload.p = c->r.p + c->r.off;
    o->payload.len = (uint32_t)ep_mqtt__rd_left(&c->r);
    c->r.off = c->r.n;
    return EP_EOK;
}

static ep_err dec_ack(dctx *c, ep_mqtt_type type, ep_mqtt_ack *o)
{
    ep_err err;
    uint8_t code;
    if ((err = packet_id(c, &o->packet_id)))
        return err;
    o->rc = EP_MQTT_RC_SUCCESS;
    if (c->version == EP_MQTT_V311 || ep_mqtt__rd_left(&c->r) == 0)
        return end(c);
    /* v5: Reason Code, then Property Length unless remaining length < 4. */
    (void)ep_mqtt__rd_u8(&c->r, &code);
    if (!ep_mqtt_rc_valid_for(code, type))
        return proto(c);
    o->rc = (ep_mqtt_rc)code;
    if (ep_mqtt__rd_left(&c->r) == 0)
        return EP_EOK;
    if ((err = props(c, (int)type, &o->props)))
        return err;
    return end(c);
}

/* Validates one topic filter as received. */
static ep_err check_filter(dctx *c, ep_mqtt_slice f)
{
    if (!ep_mqtt__topic_filter_syntax(f))
        return fail(c, EP_EPROTO, EP_MQTT_RC_TOPIC_FILTER_INVALID);
    return EP_EOK;
}

static ep_err dec_subscribe(dctx *c, ep_mqtt_subscribe *o)
{
    ep_err err;
    if ((err = packet_id(c, &o->packet_id)))
        return err;
    if ((err = props(c, EP_MQTT_SUBSCRIBE, &o->props)))
        return err;
    o->list.p = c->r.p + c->r.off;
    o->list.len = (uint32_t)ep_mqtt__rd_left(&c->r);
    if (o->list.len == 0) /* [MQTT-3.8.3-2] */
        return proto(c);
    while (ep_mqtt__rd_left(&c->r)) {
        ep_mqtt_slice f;
        uint8_t opt;
        if ((err = ep_mqtt__rd_str(&c->r, &f)))
            return rdfail(c, err);
        if ((err = ep_mqtt__rd_u8(&c->r, &opt)))
            return rdfail(c, err);
        if (c->version == EP_MQTT_V311) {
            if ((opt & 0xFC) || (opt & 0x03) == 3) /* [MQTT-3.8.3-4] (3.1.1) */
                return malformed(c);
        } else {
            if (opt & 0xC0) /* [MQTT-3.8.3-5] */
                return malformed(c);
            if ((opt & 0x03) == 3 || ((opt >> 4) & 0x03) == 3)
                return proto(c); /* Maximum QoS 3, Retain Handling 3 */
        }
        if ((err = check_filter(c, f)))
            return err;
        if ((opt & 0x04) && ep_mqtt_topic_share_split(f, NULL, NULL) == EP_EOK)
            return proto(c); /* No Local on a shared subscription [MQTT-3.8.3-4] */
        o->count++;
    }
    return EP_EOK;
}

static ep_err dec_suback(dctx *c, ep_mqtt_type type, ep_mqtt_suback *o)
{
    ep_err err;
    if ((err = packet_id(c, &o->packet_id)))
        return err;
    if (type == EP_MQTT_UNSUBACK && c->version == EP_MQTT_V311)
        return end(c);
    if ((err = props(c, (int)type, &o->props)))
        return err;
    o->codes.p = c->r.p + c->r.off;
    o->codes.len = (uint32_t)ep_mqtt__rd_left(&c->r);
    if (o->codes.len == 0)
        return proto(c);
    for (uint32_t i = 0; i < o->codes.len; i++) {
        uint8_t code = o->codes.p[i];
        bool ok = c->version == EP_MQTT_V311 ? (code <= 2 || code == 0x80) /* [MQTT-3.9.3-2] */
                                             : ep_mqtt_rc_valid_for(code, type);
        if (!ok)
            return proto(c);
    }
    c->r.off = c->r.n;
    return EP_EOK;
}

static ep_err dec_unsubscribe(dctx *c, ep_mqtt_unsubscribe *o)
{
    ep_err err;
    if ((err = packet_id(c, &o->packet_id)))
        return err;
    if ((err = props(c, EP_MQTT_UNSUBSCRIBE, &o->props)))
        return err;
    o->list.p = c->r.p + c->r.off;
    o->list.len = (uint32_t)ep_mqtt__rd_left(&c->r);
    if (o->list.len == 0) /* [MQTT-3.10.3-2] */
        return proto(c);
    while (ep_mqtt__rd_left(&c->r)) {
        ep_mqtt_slice f;
        if ((err = ep_mqtt__rd_str(&c->r, &f)))
            return rdfail(c, err);
        if ((err = check_filter(c, f)))
            return err;
        o->count++;
    }
    return EP_EOK;
}

/* DISCONNECT and AUTH. */
static ep_err dec_disconnect(dctx *c, ep_mqtt_type type, ep_mqtt_disconnect *o)
{
    ep_err err;
    uint8_t code;
    o->rc = EP_MQTT_RC_SUCCESS;
    if (c->version == EP_MQTT_V311 || ep_mqtt__rd_left(&c->r) == 0)
        return end(c);
    (void)ep_mqtt__rd_u8(&c->r, &code);
    if (!ep_mqtt_rc_valid_for(code, type))
        return proto(c);
    o->rc = (ep_mqtt_rc)code;
    if (ep_mqtt__rd_left(&c->r) == 0) {
        /* DISCONNECT may stop after the Reason Code; AUTH may not. */
        return type == EP_MQTT_DISCONNECT ? EP_EOK : malformed(c);
    }
    if ((err = props(c, (int)type, &o->props)))
        return err;
    return end(c);
}

/* Required fixed-header flags per type; 0xFF = PUBLISH (variable). */
static const uint8_t fixed_flags[16] = {[EP_MQTT_PUBLISH] = 0xFF,
                                        [EP_MQTT_PUBREL] = 0x02,
                                        [EP_MQTT_SUBSCRIBE] = 0x02,
                                        [EP_MQTT_UNSUBSCRIBE] = 0x02};

static ep_err decode(const uint8_t *pkt, size_t len, uint8_t version, ep_mqtt_packet *out, dctx *c)
{
    ep_mqtt__rd hr = {pkt, len, 1};
    uint32_t rl;
    if (len < 2)
        return malformed(c);
    if (ep_mqtt__rd_varint(&hr, &rl) || rl != len - hr.off)
        return malformed(c);

    int type = pkt[0] >> 4;
    c->flags = pkt[0] & 0x0F;
    c->version = version;
    c->r.p = pkt + hr.off;
    c->r.n = rl;
    c->r.off = 0;
    out->type = (ep_mqtt_type)type;
    out->flags = c->flags;

    if (type == 0 || (type == EP_MQTT_AUTH && version == EP_MQTT_V311))
        return malformed(c); /* reserved packet types */
    if (fixed_flags[type] != 0xFF && c->flags != fixed_flags[type])
        return malformed(c); /* [MQTT-2.1.3-1] */
    if (version == 0 && type != EP_MQTT_CONNECT)
        return proto(c); /* first packet must be CONNECT [MQTT-3.1.0-1] */

    switch ((ep_mqtt_type)type) {
    case EP_MQTT_CONNECT:
        return dec_connect(c, &out->connect);
    case EP_MQTT_CONNACK:
        return dec_connack(c, &out->connack);
    case EP_MQTT_PUBLISH:
        return dec_publish(c, &out->publish);
    case EP_MQTT_PUBACK:
    case EP_MQTT_PUBREC:
    case EP_MQTT_PUBREL:
    case EP_MQTT_PUBCOMP:
        return dec_ack(c, (ep_mqtt_type)type, &out->ack);
    case EP_MQTT_SUBSCRIBE:
        return dec_subscribe(c, &out->subscribe);
    case EP_MQTT_SUBACK:
    case EP_MQTT_UNSUBACK:
        return dec_suback(c, (ep_mqtt_type)type, &out->suback);
    case EP_MQTT_UNSUBSCRIBE:
        return dec_unsubscribe(c, &out->unsubscribe);
    case EP_MQTT_PINGREQ:
    case EP_MQTT_PINGRESP:
        return end(c);
    case EP_MQTT_DISCONNECT:
    case EP_MQTT_AUTH:
        return dec_disconnect(c, (ep_mqtt_type)type, &out->disconnect);
    }
    return malformed(c);
}

/* Bytes to clear before decoding a packet of each type: the fixed part and
 * the union member in use, not the whole (largest-member) union. */
#define UPTO(m) (offsetof(ep_mqtt_packet, m) + sizeof(((ep_mqtt_packet *)0)->m))
static const uint16_t clear_size[16] = {
    [EP_MQTT_CONNECT] = UPTO(connect), [EP_MQTT_CONNACK] = UPTO(connack),
    [EP_MQTT_PUBLISH] = UPTO(publish), [EP_MQTT_PUBACK] = UPTO(ack),
    [EP_MQTT_PUBREC] = UPTO(ack),      [EP_MQTT_PUBREL] = UPTO(ack),
    [EP_MQTT_PUBCOMP] = UPTO(ack),     [EP_MQTT_SUBSCRIBE] = UPTO(subscribe),
    [EP_MQTT_SUBACK] = UPTO(suback),   [EP_MQTT_UNSUBSCRIBE] = UPTO(unsubscribe),
    [EP_MQTT_UNSUBACK] = UPTO(suback), [EP_MQTT_PINGREQ] = UPTO(type),
    [EP_MQTT_PINGRESP] = UPTO(type),   [EP_MQTT_DISCONNECT] = UPTO(disconnect),
    [EP_MQTT_AUTH] = UPTO(auth)};

ep_err ep_mqtt_packet_decode(const uint8_t *pkt, size_t len, uint8_t version, ep_mqtt_packet *out,
                             ep_mqtt_rc *rc_out)
{
    dctx c;
    ep_err err;

    c.rc = EP_MQTT_RC_SUCCESS;
    if (out == NULL || (pkt == NULL && len) ||
        (version != 0 && version != EP_MQTT_V311 && version != EP_MQTT_V5)) {
        err = EP_EINVAL;
        c.rc = EP_MQTT_RC_UNSPECIFIED_ERROR;
    } else {
        size_t clear = len ? clear_size[pkt[0] >> 4] : 0;
        memset(out, 0, clear ? clear : sizeof(*out));
        err = decode(pkt, len, version, out, &c);
        if (err)
            memset(out, 0, sizeof(*out));
        else
            c.rc = EP_MQTT_RC_SUCCESS;
    }
    if (rc_out)
        *rc_out = c.rc;
    return err;
}

ep_err ep_mqtt_connect_peek(const uint8_t *pkt, size_t len, ep_mqtt_slice *name, uint8_t *level)
{
    if (pkt == NULL || len < 2 || (pkt[0] >> 4) != EP_MQTT_CONNECT)
        return EP_EMALFORMED;
    ep_mqtt__rd r = {pkt, len, 1};
    uint32_t rl;
    ep_mqtt_slice n;
    uint8_t lv;
    if (ep_mqtt__rd_varint(&r, &rl) || rl > len - r.off)
        return EP_EMALFORMED;
    r.n = r.off + rl;
    if (ep_mqtt__rd_bin(&r, &n) || ep_mqtt__rd_u8(&r, &lv))
        return EP_EMALFORMED;
    if (name)
        *name = n;
    if (level)
        *level = lv;
    return EP_EOK;
}

/* ------------------------------------------------------------------------ */
/* Iterators over validated payloads                                         */

bool ep_mqtt_subscribe_next(const ep_mqtt_subscribe *s, size_t *iter, ep_mqtt_sub *out)
{
    ep_mqtt__rd r = {s->list.p, s->list.len, *iter};
    ep_mqtt_slice f;
    uint8_t opt;
    if (s->list.p == NULL || *iter >= s->list.len)
        return false;
    if (ep_mqtt__rd_bin(&r, &f) || ep_mqtt__rd_u8(&r, &opt)) {
        *iter = s->list.len;
        return false;
    }
    *iter = r.off;
    memset(out, 0, sizeof(*out));
    out->filter = f;
    out->qos = opt & 0x03;
    out->no_local = (opt & 0x04) != 0;
    out->retain_as_published = (opt & 0x08) != 0;
    out->retain_handling = (opt >> 4) & 0x03;
    if (ep_mqtt_topic_share_split(f, &out->share_group, &out->share_filter)) {
        out->share_group.p = NULL;
        out->share_group.len = 0;
        out->share_filter = f;
    }
    return true;
}

bool ep_mqtt_unsubscribe_next(const ep_mqtt_unsubscribe *u, size_t *iter, ep_mqtt_slice *filter)
{
    ep_mqtt__rd r = {u->list.p, u->list.len, *iter};
    if (u->list.p == NULL || *iter >= u->list.len)
        return false;
    if (ep_mqtt__rd_bin(&r, filter)) {
        *iter = u->list.len;
        return false;
    }
    *iter = r.off;
    return true;
}

ep_err ep_mqtt_payload_check(const ep_mqtt_props *props, ep_mqtt_slice payload, ep_mqtt_rc *rc_out)
{
    if (props && EP_MQTT_PROPS_HAS(props, EP_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) &&
        props->payload_format_indicator == 1 &&
        ep_mqtt__utf8_scan(payload.p, payload.len, EP_MQTT__UTF8_ALLOW_NUL)) {
        if (rc_out)
            *rc_out = EP_MQTT_RC_PAYLOAD_FORMAT_INVALID;
        return EP_EPROTO;
    }
    if (rc_out)
        *rc_out = EP_MQTT_RC_SUCCESS;
    return EP_EOK;
}
