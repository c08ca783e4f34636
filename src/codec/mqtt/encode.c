/*
 * encode.c - MQTT 3.1.1 / 5.0 packet encoding.
 *
 * Every packet body is produced by one function run twice through an
 * ep_mqtt__wr: first counting (to learn the Remaining Length and check the
 * peer's Maximum Packet Size), then writing straight into reserved ep_buf
 * space. So the buffer is only touched once the packet is known to fit, and
 * a failed encode leaves it unchanged.
 *
 * When a v5 packet other than CONNECT/PUBLISH/SUBSCRIBE/UNSUBSCRIBE is too
 * big for the peer, it is re-encoded without Reason String and User
 * Properties, which the spec requires of the sender ([MQTT-3.4.2-2] etc.).
 *
 * ep_mqtt_publish_header_write is the fan-out path: it writes only the
 * header of a PUBLISH into caller memory so one payload buffer can be shared
 * by all subscribers.
 */
#include "codec/mqtt/wire.h"

size_t ep_mqtt_varint_size(uint32_t v)
{
    if (v < 128u)
        return 1;
    if (v < 16384u)
        return 2;
    if (v < 2097152u)
        return 3;
    if (v <= EP_MQTT_MAX_REMAINING)
        return 4;
    return 0;
}

size_t ep_mqtt_varint_write(uint8_t *out, uint32_t v)
{
    if (v > EP_MQTT_MAX_REMAINING)
        return 0;
    size_t n = 0;
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        if (v)
            b |= 0x80;
        out[n++] = b;
    } while (v);
    return n;
}

static bool str_ok(ep_mqtt_slice s) { return s.len <= 0xFFFF && (s.len == 0 || s.p != NULL); }

/* Encoder state shared by the counting and the writing pass. Property sets
 * are measured once, in the counting pass, and the writing pass reuses the
 * lengths in the same order (a packet has at most two sets: CONNECT and its
 * Will). */
typedef struct ectx {
    uint8_t version;
    bool drop; /* omit Reason String and User Properties */
    uint8_t n_props, i_props;
    size_t props_len[2];
} ectx;

static ep_err props_len(const ep_mqtt__wr *w, const ep_mqtt_props *p, int ctx, ectx *e, size_t *len)
{
    if (w->p == NULL) {
        ep_mqtt__wr c = {NULL, 0};
        ep_err err = ep_mqtt__props_body(&c, p, ctx, e->drop);
        if (err)
            return err;
        if (c.len > EP_MQTT_MAX_REMAINING)
            return EP_ETOOBIG;
        if (e->n_props >= 2)
            return EP_EINVAL;
        e->props_len[e->n_props++] = c.len;
        *len = c.len;
        return EP_EOK;
    }
    *len = e->props_len[e->i_props++];
    return EP_EOK;
}

/* Property Length + properties, len from props_len. */
static ep_err props_put(ep_mqtt__wr *w, const ep_mqtt_props *p, int ctx, ectx *e, size_t len)
{
    ep_mqtt__wr_varint(w, (uint32_t)len);
    if (w->p == NULL) {
        w->len += len;
        return EP_EOK;
    }
    return ep_mqtt__props_body(w, p, ctx, e->drop);
}

static ep_err props_out(ep_mqtt__wr *w, const ep_mqtt_props *p, int ctx, ectx *e)
{
    size_t len;
    ep_err err = props_len(w, p, ctx, e, &len);
    return err ? err : props_put(w, p, ctx, e, len);
}

static ep_err body_connect(ep_mqtt__wr *w, const ep_mqtt_connect *c, ectx *e)
{
    ep_err err;
    uint8_t fl = 0;
    if (c->has_will) {
        if (c->will.qos > 2 || !str_ok(c->will.topic) || !str_ok(c->will.payload))
            return EP_EINVAL;
        fl |= 0x04 | (uint8_t)(c->will.qos << 3) | (c->will.retain ? 0x20 : 0);
    }
    if (c->clean_start)
        fl |= 0x02;
    if (c->has_username)
        fl |= 0x80;
    if (c->has_password)
        fl |= 0x40;
    if (e->version == EP_MQTT_V311 && c->has_password && !c->has_username)
        return EP_EINVAL;
    if (!str_ok(c->client_id) || !str_ok(c->username) || !str_ok(c->password))
        return EP_EINVAL;

    ep_mqtt__wr_bin(w, EP_MQTT_STR("MQTT"));
    ep_mqtt__wr_u8(w, e->version);
    ep_mqtt__wr_u8(w, fl);
    ep_mqtt__wr_u16(w, c->keep_alive);
    if (e->version == EP_MQTT_V5 && (err = props_out(w, &c->props, EP_MQTT_CONNECT, e)))
        return err;
    ep_mqtt__wr_bin(w, c->client_id);
    if (c->has_will) {
        if (e->version == EP_MQTT_V5 &&
            (err = props_out(w, &c->will.props, EP_MQTT_PROPS_CTX_WILL, e)))
            return err;
        ep_mqtt__wr_bin(w, c->will.topic);
        ep_mqtt__wr_bin(w, c->will.payload);
    }
    if (c->has_username)
        ep_mqtt__wr_bin(w, c->username);
    if (c->has_password)
        ep_mqtt__wr_bin(w, c->password);
    return EP_EOK;
}

static ep_err body_connack(ep_mqtt__wr *w, const ep_mqtt_connack *c, ectx *e)
{
    ep_mqtt__wr_u8(w, c->session_present ? 1 : 0);
    if (e->version == EP_MQTT_V311) {
        ep_mqtt__wr_u8(w, ep_mqtt_rc_to_v3_connack(c->rc));
        return EP_EOK;
    }
    if ((unsigned)c->rc > 0xFF)
        return EP_EINVAL;
    ep_mqtt__wr_u8(w, (uint8_t)c->rc);
    return props_out(w, &c->props, EP_MQTT_CONNACK, e);
}

static ep_err body_publish(ep_mqtt__wr *w, const ep_mqtt_publish *p, ectx *e)
{
    if (p->qos > 2 || (p->qos && p->packet_id == 0) || (p->dup && p->qos == 0))
        return EP_EINVAL;
    if (!str_ok(p->topic) || (p->payload.len && p->payload.p == NULL))
        return EP_EINVAL;
    if (p->topic.len == 0 &&
        (e->version == EP_MQTT_V311 || !EP_MQTT_PROPS_HAS(&p->props, EP_MQTT_PROP_TOPIC_ALIAS)))
        return EP_EINVAL;
    ep_mqtt__wr_bin(w, p->topic);
    if (p->qos)
        ep_mqtt__wr_u16(w, p->packet_id);
    if (e->version == EP_MQTT_V5) {
        ep_err err = props_out(w, &p->props, EP_MQTT_PUBLISH, e);
        if (err)
            return err;
    }
    ep_mqtt__wr_bytes(w, p->payload.p, p->payload.len);
    return EP_EOK;
}

static ep_err body_ack(ep_mqtt__wr *w, ep_mqtt_type type, const ep_mqtt_ack *a, ectx *e)
{
    if (a->packet_id == 0)
        return EP_EINVAL;
    ep_mqtt__wr_u16(w, a->packet_id);
    if (e->version == EP_MQTT_V311)
        return EP_EOK;
    size_t plen;
    ep_err err = props_len(w, &a->props, (int)type, e, &plen);
    if (err)
        return err;
    if ((unsigned)a->rc > 0xFF)
        return EP_EINVAL;
    if (a->rc == EP_MQTT_RC_SUCCESS && plen == 0)
        return EP_EOK; /* Remaining Length 2 */
    ep_mqtt__wr_u8(w, (uint8_t)a->rc);
    if (plen == 0)
        return EP_EOK; /* Remaining Length 3 */
    return props_put(w, &a->props, (int)type, e, plen);
}

static ep_err body_subscribe(ep_mqtt__wr *w, const ep_mqtt_subscribe *s, ectx *e)
{
    ep_err err;
    if (s->packet_id == 0)
        return EP_EINVAL;
    ep_mqtt__wr_u16(w, s->packet_id);
    if (e->version == EP_MQTT_V5 && (err = props_out(w, &s->props, EP_MQTT_SUBSCRIBE, e)))
        return err;
    if (s->subs == NULL) {
        if (s->list.len == 0 || s->list.p == NULL)
            return EP_EINVAL;
        ep_mqtt__wr_bytes(w, s->list.p, s->list.len);
        return EP_EOK;
    }
    if (s->n_subs == 0)
        return EP_EINVAL;
    for (uint32_t i = 0; i < s->n_subs; i++) {
        const ep_mqtt_sub *sub = &s->subs[i];
        if (!str_ok(sub->filter) || sub->qos > 2 || sub->retain_handling > 2)
            return EP_EINVAL;
        uint8_t opt = sub->qos;
        if (e->version == EP_MQTT_V5)
            opt |= (uint8_t)((sub->no_local ? 0x04 : 0) | (sub->retain_as_published ? 0x08 : 0) |
                             (sub->retain_handling << 4));
        ep_mqtt__wr_bin(w, sub->filter);
        ep_mqtt__wr_u8(w, opt);
    }
    return EP_EOK;
}

static ep_err body_suback(ep_mqtt__wr *w, ep_mqtt_type type, const ep_mqtt_suback *s, ectx *e)
{
    ep_err err;
    if (s->packet_id == 0)
        return EP_EINVAL;
    ep_mqtt__wr_u16(w, s->packet_id);
    if (type == EP_MQTT_UNSUBACK && e->version == EP_MQTT_V311)
        return EP_EOK;
    if (s->codes.len == 0 || s->codes.p == NULL)
        return EP_EINVAL;
    if (e->version == EP_MQTT_V5) {
        if ((err = props_out(w, &s->props, (int)type, e)))
            return err;
        ep_mqtt__wr_bytes(w, s->codes.p, s->codes.len);
        return EP_EOK;
    }
    /* 3.1.1 SUBACK knows 0, 1, 2 and 0x80 Failure only. */
    for (uint32_t i = 0; i < s->codes.len; i++) {
        uint8_t c = s->codes.p[i];
        ep_mqtt__wr_u8(w, c <= 2 ? c : 0x80);
    }
    return EP_EOK;
}

static ep_err body_unsubscribe(ep_mqtt__wr *w, const ep_mqtt_unsubscribe *u, ectx *e)
{
    ep_err err;
    if (u->packet_id == 0)
        return EP_EINVAL;
    ep_mqtt__wr_u16(w, u->packet_id);
    if (e->version == EP_MQTT_V5 && (err = props_out(w, &u->props, EP_MQTT_UNSUBSCRIBE, e)))
        return err;
    if (u->filters == NULL) {
        if (u->list.len == 0 || u->list.p == NULL)
            return EP_EINVAL;
        ep_mqtt__wr_bytes(w, u->list.p, u->list.len);
        return EP_EOK;
    }
    if (u->n_filters == 0)
        return EP_EINVAL;
    for (uint32_t i = 0; i < u->n_filters; i++) {
        if (!str_ok(u->filters[i]))
            return EP_EINVAL;
        ep_mqtt__wr_bin(w, u->filters[i]);
    }
    return EP_EOK;
}

static ep_err body_disconnect(ep_mqtt__wr *w, ep_mqtt_type type, const ep_mqtt_disconnect *d,
                              ectx *e)
{
    if (e->version == EP_MQTT_V311)
        return type == EP_MQTT_AUTH ? EP_EINVAL : EP_EOK;
    size_t plen;
    ep_err err = props_len(w, &d->props, (int)type, e, &plen);
    if (err)
        return err;
    if ((unsigned)d->rc > 0xFF)
        return EP_EINVAL;
    if (d->rc == EP_MQTT_RC_SUCCESS && plen == 0)
        return EP_EOK; /* Remaining Length 0 */
    ep_mqtt__wr_u8(w, (uint8_t)d->rc);
    if (plen == 0 && type == EP_MQTT_DISCONNECT)
        return EP_EOK; /* Remaining Length 1 */
    return props_put(w, &d->props, (int)type, e, plen);
}

static ep_err body(ep_mqtt__wr *w, const ep_mqtt_packet *p, ectx *e)
{
    switch (p->type) {
    case EP_MQTT_CONNECT:
        return body_connect(w, &p->connect, e);
    case EP_MQTT_CONNACK:
        return body_connack(w, &p->connack, e);
    case EP_MQTT_PUBLISH:
        return body_publish(w, &p->publish, e);
    case EP_MQTT_PUBACK:
    case EP_MQTT_PUBREC:
    case EP_MQTT_PUBREL:
    case EP_MQTT_PUBCOMP:
        return body_ack(w, p->type, &p->ack, e);
    case EP_MQTT_SUBSCRIBE:
        return body_subscribe(w, &p->subscribe, e);
    case EP_MQTT_SUBACK:
    case EP_MQTT_UNSUBACK:
        return body_suback(w, p->type, &p->suback, e);
    case EP_MQTT_UNSUBSCRIBE:
        return body_unsubscribe(w, &p->unsubscribe, e);
    case EP_MQTT_PINGREQ:
    case EP_MQTT_PINGRESP:
        return EP_EOK;
    case EP_MQTT_DISCONNECT:
    case EP_MQTT_AUTH:
        return body_disconnect(w, p->type, &p->disconnect, e);
    }
    return EP_EINVAL;
}

static uint8_t first_byte(const ep_mqtt_packet *p)
{
    uint8_t fl = 0;
    switch (p->type) {
    case EP_MQTT_PUBLISH:
        fl = (uint8_t)((p->publish.dup ? 0x08 : 0) | (p->publish.qos << 1) |
                       (p->publish.retain ? 0x01 : 0));
        break;
    case EP_MQTT_PUBREL:
    case EP_MQTT_SUBSCRIBE:
    case EP_MQTT_UNSUBSCRIBE:
        fl = 0x02;
        break;
    default:
        break;
    }
    return (uint8_t)((unsigned)p->type << 4 | fl);
}

static bool may_drop(ep_mqtt_type t)
{
    return t != EP_MQTT_CONNECT && t != EP_MQTT_PUBLISH && t != EP_MQTT_SUBSCRIBE &&
           t != EP_MQTT_UNSUBSCRIBE;
}

ep_err ep_mqtt_packet_encode(ep_buf *b, const ep_mqtt_packet *p, uint8_t version,
                             uint32_t max_packet)
{
    if (b == NULL || p == NULL)
        return EP_EINVAL;
    if (p->type == EP_MQTT_CONNECT && p->connect.protocol_version)
        version = p->connect.protocol_version;
    if (version != EP_MQTT_V311 && version != EP_MQTT_V5)
        return EP_EINVAL;
    if (p->type < EP_MQTT_CONNECT || p->type > EP_MQTT_AUTH)
        return EP_EINVAL;

    ectx e = {version, false, 0, 0, {0, 0}};
    uint64_t limit = max_packet ? max_packet : EP_MQTT_MAX_PACKET;
    ep_mqtt__wr count;
    size_t total;
    for (;;) {
        count.p = NULL;
        count.len = 0;
        e.n_props = 0;
        ep_err err = body(&count, p, &e);
        if (err)
            return err;
        if (count.len > EP_MQTT_MAX_REMAINING)
            return EP_ETOOBIG;
        total = 1 + ep_mqtt_varint_size((uint32_t)count.len) + count.len;
        if (total <= limit)
            break;
        if (e.drop || version != EP_MQTT_V5 || !may_drop(p->type))
            return EP_ETOOBIG;
        e.drop = true;
    }

    ep_err err = ep_buf_reserve(b, total);
    if (err)
        return err;
    uint8_t *out = ep_buf_tail(b);
    out[0] = first_byte(p);
    size_t h = 1 + ep_mqtt_varint_write(out + 1, (uint32_t)count.len);
    ep_mqtt__wr w = {out + h, 0};
    e.i_props = 0;
    err = body(&w, p, &e);
    if (err)
        return err; /* cannot happen: same input as the counting pass */
    b->len += total;
    return EP_EOK;
}

/* ------------------------------------------------------------------------ */
/* PUBLISH fan-out fast path                                                 */

/* Remaining Length without the payload, or 0 when not encodable. */
static size_t pub_props_len(const ep_mqtt_publish_hdr *h)
{
    size_t n = h->props.len;
    if (h->topic_alias)
        n += 3;
    if (h->has_message_expiry)
        n += 5;
    for (uint32_t i = 0; i < h->n_sub_ids; i++) {
        size_t vs = ep_mqtt_varint_size(h->sub_ids[i]);
        if (h->sub_ids[i] == 0 || vs == 0)
            return SIZE_MAX;
        n += 1 + vs;
    }
    return n;
}

static bool pub_hdr_ok(const ep_mqtt_publish_hdr *h, uint8_t version)
{
    if (version != EP_MQTT_V311 && version != EP_MQTT_V5)
        return false;
    if (h->qos > 2 || (h->qos && h->packet_id == 0) || (h->dup && h->qos == 0))
        return false;
    if (!str_ok(h->topic) || (h->props.len && h->props.p == NULL))
        return false;
    if (h->topic.len == 0 && (version == EP_MQTT_V311 || h->topic_alias == 0))
        return false;
    return true;
}

/* Computes Remaining Length (body incl. payload) and property length. */
static bool pub_lengths(const ep_mqtt_publish_hdr *h, uint8_t version, uint64_t *rl, size_t *plen)
{
    if (!pub_hdr_ok(h, version))
        return false;
    uint64_t n = 2 + (uint64_t)h->topic.len + (h->qos ? 2 : 0) + h->payload_len;
    *plen = 0;
    if (version == EP_MQTT_V5) {
        *plen = pub_props_len(h);
        if (*plen > EP_MQTT_MAX_REMAINING)
            return false;
        n += ep_mqtt_varint_size((uint32_t)*plen) + *plen;
    }
    *rl = n;
    return true;
}

size_t ep_mqtt_publish_header_size(const ep_mqtt_publish_hdr *h, uint8_t version)
{
    uint64_t rl;
    size_t plen;
    if (h == NULL || !pub_lengths(h, version, &rl, &plen) || rl > EP_MQTT_MAX_REMAINING)
        return 0;
    return (size_t)(1 + ep_mqtt_varint_size((uint32_t)rl) + rl - h->payload_len);
}

ep_err ep_mqtt_publish_header_write(const ep_mqtt_publish_hdr *h, uint8_t version,
                                    uint32_t max_packet, uint8_t *out, size_t cap, size_t *written)
{
    uint64_t rl;
    size_t plen;
    if (h == NULL || out == NULL || written == NULL || !pub_lengths(h, version, &rl, &plen))
        return EP_EINVAL;
    if (rl > EP_MQTT_MAX_REMAINING)
        return EP_ETOOBIG;
    uint64_t total = 1 + ep_mqtt_varint_size((uint32_t)rl) + rl;
    if (total > (max_packet ? max_packet : EP_MQTT_MAX_PACKET))
        return EP_ETOOBIG;
    size_t hlen = (size_t)(total - h->payload_len);
    if (cap < hlen)
        return EP_EINVAL;

    ep_mqtt__wr w = {out, 0};
    ep_mqtt__wr_u8(&w,
                   (uint8_t)(0x30 | (h->dup ? 0x08 : 0) | (h->qos << 1) | (h->retain ? 0x01 : 0)));
    ep_mqtt__wr_varint(&w, (uint32_t)rl);
    ep_mqtt__wr_bin(&w, h->topic);
    if (h->qos)
        ep_mqtt__wr_u16(&w, h->packet_id);
    if (version == EP_MQTT_V5) {
        ep_mqtt__wr_varint(&w, (uint32_t)plen);
        if (h->has_message_expiry) {
            ep_mqtt__wr_u8(&w, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
            ep_mqtt__wr_u32(&w, h->message_expiry);
        }
        if (h->topic_alias) {
            ep_mqtt__wr_u8(&w, EP_MQTT_PROP_TOPIC_ALIAS);
            ep_mqtt__wr_u16(&w, h->topic_alias);
        }
        for (uint32_t i = 0; i < h->n_sub_ids; i++) {
            ep_mqtt__wr_u8(&w, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
            ep_mqtt__wr_varint(&w, h->sub_ids[i]);
        }
        ep_mqtt__wr_bytes(&w, h->props.p, h->props.len);
    }
    *written = w.len;
    return EP_EOK;
}
