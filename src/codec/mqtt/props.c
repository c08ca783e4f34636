/*
 * props.c - MQTT v5 properties: the table of every property (type, where it
 * is allowed, whether it may repeat), decode with validation, iteration over
 * the repeatable ones, filtering for forwarding, and encode.
 *
 * Decode keeps the raw property bytes so User Properties can be forwarded
 * unchanged and in order [MQTT-3.3.2-17/18] without copying them anywhere.
 * Error classes follow the spec: an identifier that is unknown or not valid
 * for the packet, or a value that does not parse, is a Malformed Packet
 * (2.2.2.2); a repeated single-valued property or an out-of-range value is a
 * Protocol Error (stated per property in 3.x).
 */
#include "codec/mqtt/wire.h"

enum ptype { PT_NONE, PT_BYTE, PT_U16, PT_U32, PT_VARINT, PT_STR, PT_BIN, PT_PAIR };

#define C(t) (1u << (t))
#define C_WILL (1u << EP_MQTT_PROPS_CTX_WILL)
#define C_ACKS (C(EP_MQTT_PUBACK) | C(EP_MQTT_PUBREC) | C(EP_MQTT_PUBREL) | C(EP_MQTT_PUBCOMP))

typedef struct pdef {
    uint8_t type;
    uint16_t ctx; /* bit per ep_mqtt_type, bit 0 = Will Properties */
    const char *name;
} pdef;

static const pdef props_tab[0x2B] = {
    [0x01] = {PT_BYTE, C(EP_MQTT_PUBLISH) | C_WILL, "Payload Format Indicator"},
    [0x02] = {PT_U32, C(EP_MQTT_PUBLISH) | C_WILL, "Message Expiry Interval"},
    [0x03] = {PT_STR, C(EP_MQTT_PUBLISH) | C_WILL, "Content Type"},
    [0x08] = {PT_STR, C(EP_MQTT_PUBLISH) | C_WILL, "Response Topic"},
    [0x09] = {PT_BIN, C(EP_MQTT_PUBLISH) | C_WILL, "Correlation Data"},
    [0x0B] = {PT_VARINT, C(EP_MQTT_PUBLISH) | C(EP_MQTT_SUBSCRIBE), "Subscription Identifier"},
    [0x11] = {PT_U32, C(EP_MQTT_CONNECT) | C(EP_MQTT_CONNACK) | C(EP_MQTT_DISCONNECT),
              "Session Expiry Interval"},
    [0x12] = {PT_STR, C(EP_MQTT_CONNACK), "Assigned Client Identifier"},
    [0x13] = {PT_U16, C(EP_MQTT_CONNACK), "Server Keep Alive"},
    [0x15] = {PT_STR, C(EP_MQTT_CONNECT) | C(EP_MQTT_CONNACK) | C(EP_MQTT_AUTH),
              "Authentication Method"},
    [0x16] = {PT_BIN, C(EP_MQTT_CONNECT) | C(EP_MQTT_CONNACK) | C(EP_MQTT_AUTH),
              "Authentication Data"},
    [0x17] = {PT_BYTE, C(EP_MQTT_CONNECT), "Request Problem Information"},
    [0x18] = {PT_U32, C_WILL, "Will Delay Interval"},
    [0x19] = {PT_BYTE, C(EP_MQTT_CONNECT), "Request Response Information"},
    [0x1A] = {PT_STR, C(EP_MQTT_CONNACK), "Response Information"},
    [0x1C] = {PT_STR, C(EP_MQTT_CONNACK) | C(EP_MQTT_DISCONNECT), "Server Reference"},
    [0x1F] = {PT_STR,
              C(EP_MQTT_CONNACK) | C_ACKS | C(EP_MQTT_SUBACK) | C(EP_MQTT_UNSUBACK) |
                  C(EP_MQTT_DISCONNECT) | C(EP_MQTT_AUTH),
              "Reason String"},
    [0x21] = {PT_U16, C(EP_MQTT_CONNECT) | C(EP_MQTT_CONNACK), "Receive Maximum"},
    [0x22] = {PT_U16, C(EP_MQTT_CONNECT) | C(EP_MQTT_CONNACK), "Topic Alias Maximum"},
    [0x23] = {PT_U16, C(EP_MQTT_PUBLISH), "Topic Alias"},
    [0x24] = {PT_BYTE, C(EP_MQTT_CONNACK), "Maximum QoS"},
    [0x25] = {PT_BYTE, C(EP_MQTT_CONNACK), "Retain Available"},
    [0x26] = {PT_PAIR,
              C(EP_MQTT_CONNECT) | C(EP_MQTT_CONNACK) | C(EP_MQTT_PUBLISH) | C_WILL | C_ACKS |
                  C(EP_MQTT_SUBSCRIBE) | C(EP_MQTT_SUBACK) | C(EP_MQTT_UNSUBSCRIBE) |
                  C(EP_MQTT_UNSUBACK) | C(EP_MQTT_DISCONNECT) | C(EP_MQTT_AUTH),
              "User Property"},
    [0x27] = {PT_U32, C(EP_MQTT_CONNECT) | C(EP_MQTT_CONNACK), "Maximum Packet Size"},
    [0x28] = {PT_BYTE, C(EP_MQTT_CONNACK), "Wildcard Subscription Available"},
    [0x29] = {PT_BYTE, C(EP_MQTT_CONNACK), "Subscription Identifier Available"},
    [0x2A] = {PT_BYTE, C(EP_MQTT_CONNACK), "Shared Subscription Available"},
};

#define NPROPS (sizeof(props_tab) / sizeof(props_tab[0]))

static const pdef *pdef_get(uint32_t id)
{
    if (id >= NPROPS || props_tab[id].type == PT_NONE)
        return NULL;
    return &props_tab[id];
}

bool ep_mqtt_prop_allowed(int id, int ctx)
{
    if (id < 0 || ctx < 0 || ctx > 15)
        return false;
    const pdef *d = pdef_get((uint32_t)id);
    return d && (d->ctx & (1u << ctx));
}

const char *ep_mqtt_prop_name(int id)
{
    if (id < 0)
        return NULL;
    const pdef *d = pdef_get((uint32_t)id);
    return d ? d->name : NULL;
}

/* ------------------------------------------------------------------------ */
/* Decode                                                                    */

static ep_err perr(ep_mqtt_rc *rc, ep_err err, ep_mqtt_rc code)
{
    *rc = code;
    return err;
}

ep_err ep_mqtt__props_decode(ep_mqtt__rd *r, int ctx, ep_mqtt_props *out, ep_mqtt_rc *rc)
{
    uint32_t plen;
    ep_err err;

    /* out arrives zeroed (the decoder clears the packet it fills). */
    if (ep_mqtt__rd_varint(r, &plen))
        return perr(rc, EP_EMALFORMED, EP_MQTT_RC_MALFORMED_PACKET);
    if (plen > ep_mqtt__rd_left(r))
        return perr(rc, EP_EMALFORMED, EP_MQTT_RC_MALFORMED_PACKET);

    ep_mqtt__rd pr = {r->p + r->off, plen, 0};
    out->raw.p = pr.p;
    out->raw.len = plen;
    r->off += plen;

    while (ep_mqtt__rd_left(&pr) > 0) {
        uint32_t id;
        if (ep_mqtt__rd_varint(&pr, &id))
            return perr(rc, EP_EMALFORMED, EP_MQTT_RC_MALFORMED_PACKET);
        const pdef *d = pdef_get(id);
        if (d == NULL || !(d->ctx & (1u << ctx)))
            return perr(rc, EP_EMALFORMED, EP_MQTT_RC_MALFORMED_PACKET);

        uint64_t bit = EP_MQTT_PROP_BIT(id);
        bool repeatable = id == EP_MQTT_PROP_USER_PROPERTY ||
                          (id == EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER && ctx == EP_MQTT_PUBLISH);
        if ((out->present & bit) && !repeatable)
            return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
        out->present |= bit;

        uint8_t b = 0;
        uint16_t u16 = 0;
        uint32_t u32 = 0;
        ep_mqtt_slice s = {NULL, 0}, s2;
        switch (d->type) {
        case PT_BYTE:
            err = ep_mqtt__rd_u8(&pr, &b);
            break;
        case PT_U16:
            err = ep_mqtt__rd_u16(&pr, &u16);
            break;
        case PT_U32:
            err = ep_mqtt__rd_u32(&pr, &u32);
            break;
        case PT_VARINT:
            err = ep_mqtt__rd_varint(&pr, &u32);
            break;
        case PT_STR:
            err = ep_mqtt__rd_str(&pr, &s);
            break;
        case PT_BIN:
            err = ep_mqtt__rd_bin(&pr, &s);
            break;
        default: /* PT_PAIR */
            err = ep_mqtt__rd_str(&pr, &s);
            if (!err)
                err = ep_mqtt__rd_str(&pr, &s2);
            break;
        }
        if (err)
            return perr(rc, err, EP_MQTT_RC_MALFORMED_PACKET);

        switch ((ep_mqtt_prop_id)id) {
        case EP_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
            if (b > 1)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->payload_format_indicator = b;
            break;
        case EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
            out->message_expiry_interval = u32;
            break;
        case EP_MQTT_PROP_CONTENT_TYPE:
            out->content_type = s;
            break;
        case EP_MQTT_PROP_RESPONSE_TOPIC:
            /* A Topic Name: non-empty, no wildcards [MQTT-3.3.2-14]. */
            if (!ep_mqtt__topic_name_syntax(s))
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->response_topic = s;
            break;
        case EP_MQTT_PROP_CORRELATION_DATA:
            out->correlation_data = s;
            break;
        case EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
            if (u32 == 0)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            if (out->sub_id_count++ == 0)
                out->subscription_id = u32;
            break;
        case EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL:
            out->session_expiry_interval = u32;
            break;
        case EP_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER:
            out->assigned_client_identifier = s;
            break;
        case EP_MQTT_PROP_SERVER_KEEP_ALIVE:
            out->server_keep_alive = u16;
            break;
        case EP_MQTT_PROP_AUTHENTICATION_METHOD:
            out->authentication_method = s;
            break;
        case EP_MQTT_PROP_AUTHENTICATION_DATA:
            out->authentication_data = s;
            break;
        case EP_MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
            if (b > 1)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->request_problem_information = b;
            break;
        case EP_MQTT_PROP_WILL_DELAY_INTERVAL:
            out->will_delay_interval = u32;
            break;
        case EP_MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
            if (b > 1)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->request_response_information = b;
            break;
        case EP_MQTT_PROP_RESPONSE_INFORMATION:
            out->response_information = s;
            break;
        case EP_MQTT_PROP_SERVER_REFERENCE:
            out->server_reference = s;
            break;
        case EP_MQTT_PROP_REASON_STRING:
            out->reason_string = s;
            break;
        case EP_MQTT_PROP_RECEIVE_MAXIMUM:
            if (u16 == 0)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->receive_maximum = u16;
            break;
        case EP_MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
            out->topic_alias_maximum = u16;
            break;
        case EP_MQTT_PROP_TOPIC_ALIAS:
            if (u16 == 0)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_TOPIC_ALIAS_INVALID);
            out->topic_alias = u16;
            break;
        case EP_MQTT_PROP_MAXIMUM_QOS:
            if (b > 1)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->maximum_qos = b;
            break;
        case EP_MQTT_PROP_RETAIN_AVAILABLE:
            if (b > 1)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->retain_available = b;
            break;
        case EP_MQTT_PROP_USER_PROPERTY:
            out->user_count++;
            break;
        case EP_MQTT_PROP_MAXIMUM_PACKET_SIZE:
            if (u32 == 0)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->maximum_packet_size = u32;
            break;
        case EP_MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE:
            if (b > 1)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->wildcard_subscription_available = b;
            break;
        case EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE:
            if (b > 1)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->subscription_identifier_available = b;
            break;
        case EP_MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE:
            if (b > 1)
                return perr(rc, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR);
            out->shared_subscription_available = b;
            break;
        }
    }
    return EP_EOK;
}

/* ------------------------------------------------------------------------ */
/* Walking raw property bytes (iterators, filter, encode pass-through)       */

/* Reads the entry at *off in raw: its id and total size. False at the end or
 * on bytes that are not a well-formed property (the walk then stops). */
static bool raw_entry(ep_mqtt_slice raw, size_t off, uint32_t *id, size_t *size)
{
    if (raw.p == NULL || off >= raw.len)
        return false;
    ep_mqtt__rd r = {raw.p, raw.len, off};
    uint32_t v;
    ep_mqtt_slice s;
    uint8_t b;
    uint16_t u16;
    if (ep_mqtt__rd_varint(&r, id))
        return false;
    const pdef *d = pdef_get(*id);
    if (d == NULL)
        return false;
    ep_err err;
    switch (d->type) {
    case PT_BYTE:
        err = ep_mqtt__rd_u8(&r, &b);
        break;
    case PT_U16:
        err = ep_mqtt__rd_u16(&r, &u16);
        break;
    case PT_U32:
        err = ep_mqtt__rd_u32(&r, &v);
        break;
    case PT_VARINT:
        err = ep_mqtt__rd_varint(&r, &v);
        break;
    case PT_PAIR:
        err = ep_mqtt__rd_bin(&r, &s);
        if (!err)
            err = ep_mqtt__rd_bin(&r, &s);
        break;
    default:
        err = ep_mqtt__rd_bin(&r, &s);
        break;
    }
    if (err)
        return false;
    *size = r.off - off;
    return true;
}

bool ep_mqtt_props_user_next(const ep_mqtt_props *props, size_t *iter, ep_mqtt_user_prop *out)
{
    uint32_t id;
    size_t size;
    while (raw_entry(props->raw, *iter, &id, &size)) {
        size_t at = *iter;
        *iter += size;
        if (id == EP_MQTT_PROP_USER_PROPERTY) {
            ep_mqtt__rd r = {props->raw.p, props->raw.len, at + 1};
            (void)ep_mqtt__rd_bin(&r, &out->name);
            (void)ep_mqtt__rd_bin(&r, &out->value);
            return true;
        }
    }
    *iter = props->raw.len;
    return false;
}

bool ep_mqtt_props_sub_id_next(const ep_mqtt_props *props, size_t *iter, uint32_t *out)
{
    uint32_t id;
    size_t size;
    while (raw_entry(props->raw, *iter, &id, &size)) {
        size_t at = *iter;
        *iter += size;
        if (id == EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
            ep_mqtt__rd r = {props->raw.p, props->raw.len, at + 1};
            (void)ep_mqtt__rd_varint(&r, out);
            return true;
        }
    }
    *iter = props->raw.len;
    return false;
}

size_t ep_mqtt_props_filter(ep_mqtt_slice raw, uint64_t drop_mask, uint8_t *out)
{
    size_t off = 0, w = 0, size;
    uint32_t id;
    while (raw_entry(raw, off, &id, &size)) {
        if (!(drop_mask & EP_MQTT_PROP_BIT(id))) {
            memcpy(out + w, raw.p + off, size);
            w += size;
        }
        off += size;
    }
    return w;
}

/* ------------------------------------------------------------------------ */
/* Encode                                                                    */

static const ep_mqtt_slice *str_field(const ep_mqtt_props *p, uint32_t id)
{
    switch (id) {
    case EP_MQTT_PROP_CONTENT_TYPE:
        return &p->content_type;
    case EP_MQTT_PROP_RESPONSE_TOPIC:
        return &p->response_topic;
    case EP_MQTT_PROP_CORRELATION_DATA:
        return &p->correlation_data;
    case EP_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER:
        return &p->assigned_client_identifier;
    case EP_MQTT_PROP_AUTHENTICATION_METHOD:
        return &p->authentication_method;
    case EP_MQTT_PROP_AUTHENTICATION_DATA:
        return &p->authentication_data;
    case EP_MQTT_PROP_RESPONSE_INFORMATION:
        return &p->response_information;
    case EP_MQTT_PROP_SERVER_REFERENCE:
        return &p->server_reference;
    default: /* EP_MQTT_PROP_REASON_STRING */
        return &p->reason_string;
    }
}

static uint32_t int_field(const ep_mqtt_props *p, uint32_t id)
{
    switch (id) {
    case EP_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
        return p->payload_format_indicator;
    case EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
        return p->message_expiry_interval;
    case EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
        return p->subscription_id;
    case EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL:
        return p->session_expiry_interval;
    case EP_MQTT_PROP_SERVER_KEEP_ALIVE:
        return p->server_keep_alive;
    case EP_MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
        return p->request_problem_information;
    case EP_MQTT_PROP_WILL_DELAY_INTERVAL:
        return p->will_delay_interval;
    case EP_MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
        return p->request_response_information;
    case EP_MQTT_PROP_RECEIVE_MAXIMUM:
        return p->receive_maximum;
    case EP_MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
        return p->topic_alias_maximum;
    case EP_MQTT_PROP_TOPIC_ALIAS:
        return p->topic_alias;
    case EP_MQTT_PROP_MAXIMUM_QOS:
        return p->maximum_qos;
    case EP_MQTT_PROP_RETAIN_AVAILABLE:
        return p->retain_available;
    case EP_MQTT_PROP_MAXIMUM_PACKET_SIZE:
        return p->maximum_packet_size;
    case EP_MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE:
        return p->wildcard_subscription_available;
    case EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE:
        return p->subscription_identifier_available;
    default: /* EP_MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE */
        return p->shared_subscription_available;
    }
}

static bool sub_id_ok(uint32_t v) { return v >= 1 && v <= EP_MQTT_MAX_SUB_ID; }

/* Writes the properties (no length prefix). */
ep_err ep_mqtt__props_body(ep_mqtt__wr *w, const ep_mqtt_props *p, int ctx, bool drop)
{
    /* ctx < 0: no "allowed here" check (ep_mqtt_props_encode). */
    const unsigned ctx_bit = ctx < 0 ? 0xFFFFu : 1u << ctx;
    const uint64_t repeatable = EP_MQTT_PROP_BIT(EP_MQTT_PROP_USER_PROPERTY) |
                                EP_MQTT_PROP_BIT(EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
    uint64_t bits = p->present & ~repeatable;
    if (drop)
        bits &= ~EP_MQTT_PROP_BIT(EP_MQTT_PROP_REASON_STRING);

    for (; bits; bits &= bits - 1) {
        uint32_t id = (uint32_t)__builtin_ctzll(bits);
        const pdef *d = pdef_get(id);
        if (d == NULL || !(d->ctx & ctx_bit))
            return EP_EINVAL;
        ep_mqtt__wr_u8(w, (uint8_t)id);
        switch (d->type) {
        case PT_BYTE:
            ep_mqtt__wr_u8(w, (uint8_t)int_field(p, id));
            break;
        case PT_U16:
            ep_mqtt__wr_u16(w, (uint16_t)int_field(p, id));
            break;
        case PT_U32:
            ep_mqtt__wr_u32(w, int_field(p, id));
            break;
        default: { /* PT_STR, PT_BIN */
            const ep_mqtt_slice *s = str_field(p, id);
            if (s->len > 0xFFFF || (s->len && s->p == NULL))
                return EP_EINVAL;
            ep_mqtt__wr_bin(w, *s);
            break;
        }
        }
    }

    /* Subscription Identifiers: raw ones, then the array, else the field.
     * Repeatable in PUBLISH only. */
    size_t off = 0, size;
    uint32_t id, n_sub = 0;
    const bool has_raw = p->raw.len != 0;
    while (has_raw && raw_entry(p->raw, off, &id, &size)) {
        if (id == EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
            ep_mqtt__wr_bytes(w, p->raw.p + off, size);
            n_sub++;
        }
        off += size;
    }
    for (uint32_t i = 0; i < p->n_sub_ids; i++) {
        if (!sub_id_ok(p->sub_ids[i]))
            return EP_EINVAL;
        ep_mqtt__wr_u8(w, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
        ep_mqtt__wr_varint(w, p->sub_ids[i]);
        n_sub++;
    }
    if (n_sub == 0 && EP_MQTT_PROPS_HAS(p, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER)) {
        if (!sub_id_ok(p->subscription_id))
            return EP_EINVAL;
        ep_mqtt__wr_u8(w, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
        ep_mqtt__wr_varint(w, p->subscription_id);
        n_sub = 1;
    }
    if (n_sub && ctx >= 0 && !(props_tab[EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER].ctx & ctx_bit))
        return EP_EINVAL;
    if (n_sub > 1 && ctx >= 0 && ctx != EP_MQTT_PUBLISH)
        return EP_EINVAL;

    if (drop)
        return EP_EOK;
    /* User Properties: raw ones byte-for-byte in order, then the array. */
    off = 0;
    uint32_t n_user = 0;
    while (has_raw && raw_entry(p->raw, off, &id, &size)) {
        if (id == EP_MQTT_PROP_USER_PROPERTY) {
            ep_mqtt__wr_bytes(w, p->raw.p + off, size);
            n_user++;
        }
        off += size;
    }
    n_user += p->n_user;
    if (n_user && ctx >= 0 && !(props_tab[EP_MQTT_PROP_USER_PROPERTY].ctx & ctx_bit))
        return EP_EINVAL;
    for (uint32_t i = 0; i < p->n_user; i++) {
        const ep_mqtt_user_prop *u = &p->user[i];
        if (u->name.len > 0xFFFF || u->value.len > 0xFFFF)
            return EP_EINVAL;
        ep_mqtt__wr_u8(w, EP_MQTT_PROP_USER_PROPERTY);
        ep_mqtt__wr_bin(w, u->name);
        ep_mqtt__wr_bin(w, u->value);
    }
    return EP_EOK;
}

ep_err ep_mqtt__props_write(ep_mqtt__wr *w, const ep_mqtt_props *props, int ctx, bool drop_optional)
{
    static const ep_mqtt_props none;
    if (props == NULL)
        props = &none;
    ep_mqtt__wr count = {NULL, 0};
    ep_err err = ep_mqtt__props_body(&count, props, ctx, drop_optional);
    if (err)
        return err;
    if (count.len > EP_MQTT_MAX_REMAINING)
        return EP_ETOOBIG;
    ep_mqtt__wr_varint(w, (uint32_t)count.len);
    if (w->p == NULL) {
        w->len += count.len;
        return EP_EOK;
    }
    return ep_mqtt__props_body(w, props, ctx, drop_optional);
}

size_t ep_mqtt_props_size(const ep_mqtt_props *props)
{
    ep_mqtt__wr count = {NULL, 0};
    if (ep_mqtt__props_body(&count, props, -1, false))
        return SIZE_MAX;
    return count.len;
}

ep_err ep_mqtt_props_encode(ep_buf *b, const ep_mqtt_props *props)
{
    ep_mqtt__wr count = {NULL, 0};
    ep_err err = ep_mqtt__props_write(&count, props, -1, false);
    if (err)
        return err;
    err = ep_buf_reserve(b, count.len);
    if (err)
        return err;
    ep_mqtt__wr w = {ep_buf_tail(b), 0};
    err = ep_mqtt__props_write(&w, props, -1, false);
    if (err)
        return err;
    b->len += w.len;
    return EP_EOK;
}
