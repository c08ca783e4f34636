/*
 * equal.c - semantic packet equality, used by the golden tests, the fuzz
 * round-trip check and clients. Repeatable properties and SUBSCRIBE /
 * UNSUBSCRIBE entries are compared as ordered lists, wherever they live
 * (decoded raw bytes or encode-side arrays), so "decoded" and "built for
 * encode" forms of the same packet compare equal.
 */
#include "codec/mqtt/wire.h"

/* Cursor over the User Properties of a props set: raw, then the array. */
typedef struct ucur {
    const ep_mqtt_props *p;
    size_t raw_it;
    uint32_t arr_it;
} ucur;

static bool ucur_next(ucur *c, ep_mqtt_user_prop *out)
{
    if (c->raw_it < c->p->raw.len && ep_mqtt_props_user_next(c->p, &c->raw_it, out))
        return true;
    if (c->arr_it < c->p->n_user) {
        *out = c->p->user[c->arr_it++];
        return true;
    }
    return false;
}

typedef struct scur {
    const ep_mqtt_props *p;
    size_t raw_it;
    uint32_t arr_it;
    bool any;
    bool field_done;
} scur;

static bool scur_next(scur *c, uint32_t *out)
{
    if (c->raw_it < c->p->raw.len && ep_mqtt_props_sub_id_next(c->p, &c->raw_it, out)) {
        c->any = true;
        return true;
    }
    if (c->arr_it < c->p->n_sub_ids) {
        *out = c->p->sub_ids[c->arr_it++];
        c->any = true;
        return true;
    }
    if (!c->any && !c->field_done &&
        EP_MQTT_PROPS_HAS(c->p, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER)) {
        c->field_done = true;
        *out = c->p->subscription_id;
        return true;
    }
    return false;
}

#define SEQ(a, b) ep_mqtt_slice_eq((a), (b))

bool ep_mqtt_props_eq(const ep_mqtt_props *a, const ep_mqtt_props *b)
{
    const uint64_t rep = EP_MQTT_PROP_BIT(EP_MQTT_PROP_USER_PROPERTY) |
                         EP_MQTT_PROP_BIT(EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
    uint64_t m = a->present & ~rep;
    if (m != (b->present & ~rep))
        return false;
#define HAS(id) ((m & EP_MQTT_PROP_BIT(EP_MQTT_PROP_##id)) != 0)
#define INT(id, f)                                                                                 \
    if (HAS(id) && a->f != b->f)                                                                   \
        return false;
#define STR(id, f)                                                                                 \
    if (HAS(id) && !SEQ(a->f, b->f))                                                               \
        return false;
    INT(PAYLOAD_FORMAT_INDICATOR, payload_format_indicator)
    INT(MESSAGE_EXPIRY_INTERVAL, message_expiry_interval)
    STR(CONTENT_TYPE, content_type)
    STR(RESPONSE_TOPIC, response_topic)
    STR(CORRELATION_DATA, correlation_data)
    INT(SESSION_EXPIRY_INTERVAL, session_expiry_interval)
    STR(ASSIGNED_CLIENT_IDENTIFIER, assigned_client_identifier)
    INT(SERVER_KEEP_ALIVE, server_keep_alive)
    STR(AUTHENTICATION_METHOD, authentication_method)
    STR(AUTHENTICATION_DATA, authentication_data)
    INT(REQUEST_PROBLEM_INFORMATION, request_problem_information)
    INT(WILL_DELAY_INTERVAL, will_delay_interval)
    INT(REQUEST_RESPONSE_INFORMATION, request_response_information)
    STR(RESPONSE_INFORMATION, response_information)
    STR(SERVER_REFERENCE, server_reference)
    STR(REASON_STRING, reason_string)
    INT(RECEIVE_MAXIMUM, receive_maximum)
    INT(TOPIC_ALIAS_MAXIMUM, topic_alias_maximum)
    INT(TOPIC_ALIAS, topic_alias)
    INT(MAXIMUM_QOS, maximum_qos)
    INT(RETAIN_AVAILABLE, retain_available)
    INT(MAXIMUM_PACKET_SIZE, maximum_packet_size)
    INT(WILDCARD_SUBSCRIPTION_AVAILABLE, wildcard_subscription_available)
    INT(SUBSCRIPTION_IDENTIFIER_AVAILABLE, subscription_identifier_available)
    INT(SHARED_SUBSCRIPTION_AVAILABLE, shared_subscription_available)
#undef INT
#undef STR
#undef HAS

    ucur ua = {a, 0, 0}, ub = {b, 0, 0};
    for (;;) {
        ep_mqtt_user_prop x, y;
        bool hx = ucur_next(&ua, &x), hy = ucur_next(&ub, &y);
        if (hx != hy)
            return false;
        if (!hx)
            break;
        if (!SEQ(x.name, y.name) || !SEQ(x.value, y.value))
            return false;
    }
    scur sa = {a, 0, 0, false, false}, sb = {b, 0, 0, false, false};
    for (;;) {
        uint32_t x, y;
        bool hx = scur_next(&sa, &x), hy = scur_next(&sb, &y);
        if (hx != hy)
            return false;
        if (!hx)
            break;
        if (x != y)
            return false;
    }
    return true;
}

/* SUBSCRIBE entries: from the array when set, else parsed from list. */
static bool sub_at(const ep_mqtt_subscribe *s, size_t *it, uint32_t *idx, ep_mqtt_sub *out)
{
    if (s->subs) {
        if (*idx >= s->n_subs)
            return false;
        *out = s->subs[(*idx)++];
        return true;
    }
    return ep_mqtt_subscribe_next(s, it, out);
}

static bool unsub_at(const ep_mqtt_unsubscribe *u, size_t *it, uint32_t *idx, ep_mqtt_slice *out)
{
    if (u->filters) {
        if (*idx >= u->n_filters)
            return false;
        *out = u->filters[(*idx)++];
        return true;
    }
    return ep_mqtt_unsubscribe_next(u, it, out);
}

static bool connect_eq(const ep_mqtt_connect *a, const ep_mqtt_connect *b)
{
    if (a->protocol_version && b->protocol_version && a->protocol_version != b->protocol_version)
        return false;
    if (a->clean_start != b->clean_start || a->has_will != b->has_will ||
        a->has_username != b->has_username || a->has_password != b->has_password ||
        a->keep_alive != b->keep_alive || !SEQ(a->client_id, b->client_id) ||
        !ep_mqtt_props_eq(&a->props, &b->props))
        return false;
    if (a->has_will &&
        (a->will.qos != b->will.qos || a->will.retain != b->will.retain ||
         !SEQ(a->will.topic, b->will.topic) || !SEQ(a->will.payload, b->will.payload) ||
         !ep_mqtt_props_eq(&a->will.props, &b->will.props)))
        return false;
    if (a->has_username && !SEQ(a->username, b->username))
        return false;
    if (a->has_password && !SEQ(a->password, b->password))
        return false;
    return true;
}

bool ep_mqtt_packet_eq(const ep_mqtt_packet *a, const ep_mqtt_packet *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case EP_MQTT_CONNECT:
        return connect_eq(&a->connect, &b->connect);
    case EP_MQTT_CONNACK:
        return a->connack.session_present == b->connack.session_present &&
               a->connack.rc == b->connack.rc &&
               ep_mqtt_props_eq(&a->connack.props, &b->connack.props);
    case EP_MQTT_PUBLISH: {
        const ep_mqtt_publish *x = &a->publish, *y = &b->publish;
        return x->qos == y->qos && x->dup == y->dup && x->retain == y->retain &&
               SEQ(x->topic, y->topic) && (x->qos == 0 || x->packet_id == y->packet_id) &&
               SEQ(x->payload, y->payload) && ep_mqtt_props_eq(&x->props, &y->props);
    }
    case EP_MQTT_PUBACK:
    case EP_MQTT_PUBREC:
    case EP_MQTT_PUBREL:
    case EP_MQTT_PUBCOMP:
        return a->ack.packet_id == b->ack.packet_id && a->ack.rc == b->ack.rc &&
               ep_mqtt_props_eq(&a->ack.props, &b->ack.props);
    case EP_MQTT_SUBSCRIBE: {
        const ep_mqtt_subscribe *x = &a->subscribe, *y = &b->subscribe;
        if (x->packet_id != y->packet_id || !ep_mqtt_props_eq(&x->props, &y->props))
            return false;
        size_t ix = 0, iy = 0;
        uint32_t nx = 0, ny = 0;
        for (;;) {
            ep_mqtt_sub s, t;
            bool hs = sub_at(x, &ix, &nx, &s), ht = sub_at(y, &iy, &ny, &t);
            if (hs != ht)
                return false;
            if (!hs)
                return true;
            if (!SEQ(s.filter, t.filter) || s.qos != t.qos || s.no_local != t.no_local ||
                s.retain_as_published != t.retain_as_published ||
                s.retain_handling != t.retain_handling)
                return false;
        }
    }
    case EP_MQTT_SUBACK:
    case EP_MQTT_UNSUBACK:
        return a->suback.packet_id == b->suback.packet_id &&
               SEQ(a->suback.codes, b->suback.codes) &&
               ep_mqtt_props_eq(&a->suback.props, &b->suback.props);
    case EP_MQTT_UNSUBSCRIBE: {
        const ep_mqtt_unsubscribe *x = &a->unsubscribe, *y = &b->unsubscribe;
        if (x->packet_id != y->packet_id || !ep_mqtt_props_eq(&x->props, &y->props))
            return false;
        size_t ix = 0, iy = 0;
        uint32_t nx = 0, ny = 0;
        for (;;) {
            ep_mqtt_slice s, t;
            bool hs = unsub_at(x, &ix, &nx, &s), ht = unsub_at(y, &iy, &ny, &t);
            if (hs != ht)
                return false;
            if (!hs)
                return true;
            if (!SEQ(s, t))
                return false;
        }
    }
    case EP_MQTT_PINGREQ:
    case EP_MQTT_PINGRESP:
        return true;
    case EP_MQTT_DISCONNECT:
    case EP_MQTT_AUTH:
        return a->disconnect.rc == b->disconnect.rc &&
               ep_mqtt_props_eq(&a->disconnect.props, &b->disconnect.props);
    }
    return false;
}
