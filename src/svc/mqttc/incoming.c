/*
 * incoming.c - publications from the server to the application.
 *
 * Per server packet id the client keeps two bits (16 KiB, allocated on the
 * first QoS 1/2 message): none, QoS 1 held by the application, QoS 2 held by
 * the application, QoS 2 PUBREC sent. That is enough to
 *  - suppress QoS 2 duplicates: a PUBLISH for an id in "PUBREC sent" is
 *    answered with PUBREC again and not delivered (exactly once);
 *  - let the application acknowledge in any order (manual_ack): the ack
 *    token is (connection generation << 16 | packet id), and an ack is sent
 *    only if that id is still held on the same connection;
 *  - count unacknowledged messages against our Receive Maximum.
 * "Held by the application" does not survive a reconnect (the token is
 * stale and the server delivers again); "PUBREC sent" does when the session
 * is resumed, so the PUBREL that follows is answered.
 *
 * Incoming topic aliases: a table of topic copies indexed by alias, reset
 * on every connection, sized by our topic_alias_maximum.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/mqttc/mqttc_int.h"

#define IN_ST_BYTES 16384u /* 65536 ids x 2 bits */

static unsigned in_get(const ep_mqttc *c, uint16_t id)
{
    if (c->in_st == NULL)
        return MQ_IN_NONE;
    return (c->in_st[id >> 2] >> ((id & 3u) * 2u)) & 3u;
}

static bool in_set(ep_mqttc *c, uint16_t id, unsigned v)
{
    if (c->in_st == NULL) {
        if (v == MQ_IN_NONE)
            return true;
        c->in_st = calloc(IN_ST_BYTES, 1);
        if (c->in_st == NULL)
            return false;
    }
    unsigned sh = (id & 3u) * 2u;
    c->in_st[id >> 2] = (uint8_t)((c->in_st[id >> 2] & ~(3u << sh)) | (v << sh));
    return true;
}

void ep_mqttc__alias_in_reset(ep_mqttc *c)
{
    if (c->alias_in == NULL)
        return;
    for (uint32_t i = 0; i < c->alias_in_max; i++) {
        free(c->alias_in[i]);
        c->alias_in[i] = NULL;
        c->alias_in_len[i] = 0;
    }
}

void ep_mqttc__in_new_conn(ep_mqttc *c, bool keep_session)
{
    ep_mqttc__alias_in_reset(c);
    c->in_unacked = 0;
    if (c->in_st == NULL)
        return;
    for (uint32_t id = 1; id <= 65535u; id++) {
        unsigned st = in_get(c, (uint16_t)id);
        if (st == MQ_IN_NONE)
            continue;
        if (st == MQ_IN_Q2_REC && keep_session)
            c->in_unacked++;
        else
            in_set(c, (uint16_t)id, MQ_IN_NONE);
    }
}

static ep_err send_ack(ep_mqttc *c, ep_mqtt_type type, uint16_t id, ep_mqtt_rc rc)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = type;
    p.ack.packet_id = id;
    p.ack.rc = c->version == EP_MQTT_V5 ? rc : 0;
    return ep_mqttc__send(c, &p);
}

/* Sends the acknowledgement for a held message. */
static void do_ack(ep_mqttc *c, uint16_t id, unsigned st, ep_mqtt_rc rc)
{
    if (st == MQ_IN_Q1_APP) {
        send_ack(c, EP_MQTT_PUBACK, id, rc);
        in_set(c, id, MQ_IN_NONE);
        c->in_unacked--;
    } else {
        send_ack(c, EP_MQTT_PUBREC, id, rc);
        if ((unsigned)rc >= 0x80) {
            in_set(c, id, MQ_IN_NONE);
            c->in_unacked--;
        } else {
            in_set(c, id, MQ_IN_Q2_REC);
        }
    }
}

/* Resolves (and records) a topic alias. Returns false after a protocol
 * error, which has closed the connection. */
static bool resolve_alias(ep_mqttc *c, const ep_mqtt_publish *p, ep_mqtt_slice *topic)
{
    uint16_t a = p->props.topic_alias;
    if (a == 0 || a > c->alias_in_max) {
        ep_mqttc__protocol_error(c, EP_EPROTO, EP_MQTT_RC_TOPIC_ALIAS_INVALID,
                                 "topic alias out of range");
        return false;
    }
    if (p->topic.len) {
        char *t = malloc(p->topic.len);
        if (t == NULL) {
            ep_mqttc__protocol_error(c, EP_ENOMEM, EP_MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR,
                                     "out of memory for a topic alias");
            return false;
        }
        memcpy(t, p->topic.p, p->topic.len);
        free(c->alias_in[a - 1]);
        c->alias_in[a - 1] = t;
        c->alias_in_len[a - 1] = (uint16_t)p->topic.len;
        *topic = p->topic;
        return true;
    }
    if (c->alias_in[a - 1] == NULL) {
        ep_mqttc__protocol_error(c, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
        return false;
    }
    *topic = ep_mqtt_slice_make(c->alias_in[a - 1], c->alias_in_len[a - 1]);
    return true;
}

void ep_mqttc__on_publish(ep_mqttc *c, const ep_mqtt_publish *p)
{
    ep_mqtt_slice topic = p->topic;
    if (c->version == EP_MQTT_V5 && EP_MQTT_PROPS_HAS(&p->props, EP_MQTT_PROP_TOPIC_ALIAS) &&
        !resolve_alias(c, p, &topic))
        return;
    uint16_t id = p->packet_id;
    uint64_t token = 0;
    if (p->qos > 0) {
        unsigned st = in_get(c, id);
        if (p->qos == 2 && st == MQ_IN_Q2_REC) {
            /* Our PUBREC was lost or is in flight: answer again, deliver no
             * second copy. */
            c->st.received_dup++;
            send_ack(c, EP_MQTT_PUBREC, id, 0);
            return;
        }
        if (st == MQ_IN_Q1_APP || st == MQ_IN_Q2_APP) {
            /* The server re-sent an id the application still holds: the
             * earlier delivery will be acknowledged. */
            c->st.received_dup++;
            return;
        }
        if (c->in_unacked >= c->receive_max) {
            ep_mqttc__protocol_error(c, EP_EPROTO, EP_MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
                                     "server exceeded our Receive Maximum");
            return;
        }
        if (!in_set(c, id, p->qos == 1 ? MQ_IN_Q1_APP : MQ_IN_Q2_APP)) {
            ep_mqttc__protocol_error(c, EP_ENOMEM, EP_MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR,
                                     "out of memory");
            return;
        }
        c->in_unacked++;
        token = ((uint64_t)c->gen << 16) | id;
    }
    c->st.received++;
    uint32_t gen = c->gen;
    if (c->on_message) {
        ep_mqttc_message m;
        m.topic = topic;
        m.payload = p->payload;
        m.props = &p->props;
        m.qos = p->qos;
        m.retain = p->retain;
        m.dup = p->dup;
        m.ack_token = token;
        c->on_message(c, &m, c->ud);
        if (c->gen != gen)
            return;
    }
    if (p->qos > 0 && (!c->manual_ack || c->on_message == NULL)) {
        unsigned st = in_get(c, id);
        if (st == MQ_IN_Q1_APP || st == MQ_IN_Q2_APP)
            do_ack(c, id, st, 0);
    }
}

void ep_mqttc__on_pubrel(ep_mqttc *c, const ep_mqtt_ack *a)
{
    if (in_get(c, a->packet_id) == MQ_IN_Q2_REC) {
        in_set(c, a->packet_id, MQ_IN_NONE);
        c->in_unacked--;
        send_ack(c, EP_MQTT_PUBCOMP, a->packet_id, 0);
        return;
    }
    send_ack(c, EP_MQTT_PUBCOMP, a->packet_id, EP_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
}

ep_err ep_mqttc_ack(ep_mqttc *c, uint64_t token, ep_mqtt_rc rc)
{
    if (c == NULL)
        return EP_EINVAL;
    if (token == 0)
        return EP_EOK;
    if (c->freeing)
        return EP_ESTATE;
    uint16_t id = (uint16_t)(token & 0xFFFFu);
    uint64_t gen = token >> 16;
    if (id == 0 || gen > UINT32_MAX)
        return EP_EINVAL;
    if ((uint32_t)gen != c->gen || c->state != MQ_CONNECTED)
        return EP_ESTATE;
    unsigned st = in_get(c, id);
    if (st != MQ_IN_Q1_APP && st != MQ_IN_Q2_APP)
        return EP_ESTATE;
    do_ack(c, id, st, rc);
    return EP_EOK;
}

ep_msg *ep_mqttc_message_to_msg(ep_mqttc *c, const ep_mqttc_message *m)
{
    if (c == NULL || m == NULL)
        return NULL;
    uint8_t *props = NULL;
    size_t plen = 0;
    const ep_mqtt_props *pr = m->props;
    if (pr && pr->raw.len) {
        props = malloc(pr->raw.len);
        if (props == NULL)
            return NULL;
        plen = ep_mqtt_props_filter(pr->raw,
                                    EP_MQTT_PROP_BIT(EP_MQTT_PROP_TOPIC_ALIAS) |
                                        EP_MQTT_PROP_BIT(EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER) |
                                        EP_MQTT_PROP_BIT(EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL),
                                    props);
    }
    ep_msg *msg = ep_msg_new((const char *)m->topic.p, m->topic.len, props, plen, m->payload.p,
                             m->payload.len);
    free(props);
    if (msg == NULL)
        return NULL;
    uint64_t now = ep_loop_now(c->loop);
    msg->qos = m->qos;
    msg->retain = m->retain;
    msg->created_ms = now;
    if (pr && EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL)) {
        msg->has_expiry = 1;
        msg->expiry_interval = pr->message_expiry_interval;
        msg->expiry_at_ms = now + (uint64_t)pr->message_expiry_interval * 1000u;
    }
    return msg;
}
