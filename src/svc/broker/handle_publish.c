/*
 * handle_publish.c - PUBLISH from a client: topic alias resolution, limits,
 * payload format check, retained store, QoS 1/2 acknowledgement and routing.
 *
 * QoS 2 is delivered on PUBLISH (the spec's "method B"): the packet id is
 * remembered until PUBREL, and a duplicate PUBLISH with the same id is
 * acknowledged again but not routed again, so subscribers get it once.
 *
 * Durability (with persistence): a QoS 1/2 PUBLISH takes a ticket
 * (bk_ticket) before anything is changed; every record it causes - the
 * incoming QoS 2 id, the retained message, the deliveries queued for
 * persistent sessions here and on other workers - is appended under that
 * ticket, and the PUBACK/PUBREC is held (bk_conn_ack) until all of them are
 * on disk. While the log is full, QoS 1/2 publishes are refused with 0x97.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/auth/authz.h"
#include "svc/broker/broker_int.h"

static void send_ack(bk_conn *c, ep_mqtt_type type, uint16_t pid, ep_mqtt_rc rc)
{
    ep_mqtt_packet a = {.type = type};
    a.ack.packet_id = pid;
    a.ack.rc = c->version == EP_MQTT_V5 ? rc : 0;
    bk_conn_send_packet(c, &a);
}

static ep_err reject(bk_conn *c, const ep_mqtt_publish *pub, ep_mqtt_rc rc, const char *why)
{
    if (pub->qos == 0 || c->version != EP_MQTT_V5) {
        /* QoS 0 has no ack to carry the reason, 3.1.1 has no reason codes. */
        bk_conn_close(c, rc, why);
        return EP_EPROTO;
    }
    send_ack(c, pub->qos == 1 ? EP_MQTT_PUBACK : EP_MQTT_PUBREC, pub->packet_id, rc);
    return EP_EOK;
}

static ep_err resolve_alias(bk_conn *c, const ep_mqtt_publish *pub, ep_mqtt_slice *topic)
{
    uint16_t alias = pub->props.topic_alias;
    uint16_t max = c->w->b->cfg.limits.topic_alias_maximum;
    if (alias == 0 || alias > max) {
        bk_conn_close(c, EP_MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
        return EP_EPROTO;
    }
    if (c->alias_in == NULL) {
        c->alias_in = calloc(max, sizeof(char *));
        if (c->alias_in == NULL)
            return EP_ENOMEM;
        c->alias_in_max = max;
    }
    char **slot = &c->alias_in[alias - 1];
    if (pub->topic.len > 0) {
        char *t = malloc(pub->topic.len + 1u);
        if (t == NULL)
            return EP_ENOMEM;
        memcpy(t, pub->topic.p, pub->topic.len);
        t[pub->topic.len] = '\0';
        free(*slot);
        *slot = t;
        *topic = pub->topic;
        return EP_EOK;
    }
    if (*slot == NULL) {
        bk_conn_close(c, EP_MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
        return EP_EPROTO;
    }
    *topic = ep_mqtt_slice_make(*slot, strlen(*slot));
    return EP_EOK;
}

static ep_mqtt_slice find_partition(const ep_mqtt_props *props)
{
    ep_mqtt_slice none = {NULL, 0};
    if (props->user_count == 0)
        return none;
    size_t it = 0;
    ep_mqtt_user_prop up;
    while (ep_mqtt_props_user_next(props, &it, &up))
        if (ep_mqtt_slice_eq(up.name, EP_MQTT_STR("$partition")))
            return up.value;
    return none;
}

static ep_msg *make_msg(bk_conn *c, const ep_mqtt_publish *pub, ep_mqtt_slice topic)
{
    uint8_t stackbuf[1024];
    uint8_t *props = stackbuf;
    size_t plen = 0;
    if (c->version == EP_MQTT_V5 && pub->props.raw.len) {
        if (pub->props.raw.len > sizeof(stackbuf) && (props = malloc(pub->props.raw.len)) == NULL)
            return NULL;
        plen = ep_mqtt_props_filter(pub->props.raw,
                                    EP_MQTT_PROP_BIT(EP_MQTT_PROP_TOPIC_ALIAS) |
                                        EP_MQTT_PROP_BIT(EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER) |
                                        EP_MQTT_PROP_BIT(EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL),
                                    props);
    }
    ep_msg *m = ep_msg_new((const char *)topic.p, topic.len, plen ? props : NULL, plen,
                           pub->payload.p, pub->payload.len);
    if (props != stackbuf)
        free(props);
    if (m == NULL)
        return NULL;
    m->qos = pub->qos;
    m->retain = pub->retain;
    m->created_ms = ep_loop_now(c->w->loop);
    if (c->version == EP_MQTT_V5 &&
        EP_MQTT_PROPS_HAS(&pub->props, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL)) {
        m->has_expiry = 1;
        m->expiry_interval = pub->props.message_expiry_interval;
        m->expiry_at_ms = m->created_ms + (uint64_t)m->expiry_interval * 1000u;
    }
    return m;
}

/* A QoS 2 PUBLISH whose id is still held (re-sent after a reconnect): it is
 * not routed again, only acknowledged. */
static ep_err resent_qos2(bk_conn *c, bk_qos2_in *e)
{
    bk_session *s = c->s;
    uint16_t pid = e->pid;
    if (!s->plogged || !bk_persist_sync(c->w->b)) {
        send_ack(c, EP_MQTT_PUBREC, pid, EP_MQTT_RC_SUCCESS);
        return EP_EOK;
    }
    if (e->tk && atomic_load(&e->tk->status) == EP_EOK) {
        /* The first copy's routing is known: the PUBREC waits for its done
         * mark, written once all its deliveries are on disk. */
        bk_conn_ack(c, EP_MQTT_PUBREC, pid, 0, NULL, bk_ticket_ref(e->tk));
        return EP_EOK;
    }
    bk_ticket *t = bk_ticket_new();
    if (t == NULL) {
        send_ack(c, EP_MQTT_PUBREC, pid, EP_MQTT_RC_SUCCESS);
        return EP_EOK;
    }
    /* Marked done (restored ids always are): acknowledge once the mark,
     * and so every record appended before it, is on disk. */
    c->w->cur_ticket = t;
    bk_session_qos2_done(s, pid);
    c->w->cur_ticket = NULL;
    bk_ticket_settle(t);
    bk_conn_ack(c, EP_MQTT_PUBREC, pid, 0, NULL, t);
    return EP_EOK;
}

ep_err bk_handle_publish(bk_conn *c, const ep_mqtt_packet *p)
{
    const ep_mqtt_publish *pub = &p->publish;
    const ep_broker_limits *lim = &c->w->b->cfg.limits;
    bk_session *s = c->s;
    ep_mqtt_slice topic = pub->topic;
    ep_err err;

    atomic_fetch_add_explicit(&c->w->ctr.msgs_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->w->ctr.msgs_in_qos[pub->qos], 1, memory_order_relaxed);
    if (c->version == EP_MQTT_V5) {
        if (EP_MQTT_PROPS_HAS(&pub->props, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER)) {
            bk_conn_close(c, EP_MQTT_RC_PROTOCOL_ERROR, "subscription identifier in PUBLISH");
            return EP_EPROTO;
        }
        if (EP_MQTT_PROPS_HAS(&pub->props, EP_MQTT_PROP_TOPIC_ALIAS) &&
            (err = resolve_alias(c, pub, &topic)) != EP_EOK)
            return err;
    }
    if (topic.len == 0) {
        bk_conn_close(c, EP_MQTT_RC_PROTOCOL_ERROR, "empty topic without alias");
        return EP_EPROTO;
    }
    bk_qos2_in *known = pub->qos == 2 ? bk_session_qos2_find(s, pub->packet_id) : NULL;
    if (known)
        return resent_qos2(c, known);
    if (pub->qos == 2 && s->n_qos2_in >= lim->receive_maximum) {
        bk_conn_close(c, EP_MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED, "receive maximum exceeded");
        return EP_EPROTO;
    }
    if (topic.len > lim->max_topic_length || ep_mqtt_topic_levels(topic) > lim->max_topic_levels)
        return reject(c, pub, EP_MQTT_RC_TOPIC_NAME_INVALID, "topic exceeds limits");
    if (c->version == EP_MQTT_V5) {
        ep_mqtt_rc rc;
        if (ep_mqtt_payload_check(&pub->props, pub->payload, &rc) != EP_EOK)
            return reject(c, pub, EP_MQTT_RC_PAYLOAD_FORMAT_INVALID, "payload is not UTF-8");
    }

    if (!bk_authz_allows(c, EP_AUTHZ_PUBLISH, topic)) {
        /* v5: the ack says 0x87. 3.1.1 has no way to say it: the message
         * is acknowledged and dropped, as the spec allows. Never routed. */
        if (pub->qos == 1)
            bk_conn_ack(c, EP_MQTT_PUBACK, pub->packet_id,
                        c->version == EP_MQTT_V5 ? EP_MQTT_RC_NOT_AUTHORIZED : 0, NULL, NULL);
        else if (pub->qos == 2 && c->version == EP_MQTT_V5)
            /* A PUBREC >= 0x80 ends the exchange: no PUBREL follows. */
            bk_conn_ack(c, EP_MQTT_PUBREC, pub->packet_id, EP_MQTT_RC_NOT_AUTHORIZED, NULL, NULL);
        else if (pub->qos == 2 && bk_session_qos2_add(s, pub->packet_id) == EP_EOK)
            bk_conn_ack(c, EP_MQTT_PUBREC, pub->packet_id, 0, NULL, NULL);
        return EP_EOK;
    }
    bk_worker *w = c->w;
    bool persist = pub->qos > 0 && bk_persist_on(w->b);
    if (persist && bk_persist_full(w)) {
        bk_persist_count_refused(w->b);
        return reject(c, pub, EP_MQTT_RC_QUOTA_EXCEEDED, "persistent storage full");
    }
    ep_msg *m = make_msg(c, pub, topic);
    if (m == NULL)
        return reject(c, pub, EP_MQTT_RC_QUOTA_EXCEEDED, "out of memory");
    bk_ticket *ticket = NULL;
    if (persist && bk_persist_sync(w->b) && (ticket = bk_ticket_new()) == NULL) {
        ep_msg_unref(m);
        return reject(c, pub, EP_MQTT_RC_QUOTA_EXCEEDED, "out of memory");
    }
    w->cur_ticket = ticket;
    w->cur_fail = EP_EOK;
    if (ticket && pub->qos == 2 && s->plogged) {
        /* The id is logged (with the routing's origin) before the
         * deliveries and marked done after them, before the PUBREC: see
         * "routings" in persist.c. */
        ticket->qos2_rec = 1;
        ticket->qos2_pid = pub->packet_id;
        bk_persist_routing(ticket, s);
    }
    if (pub->qos == 2 && bk_session_qos2_add(s, pub->packet_id) != EP_EOK) {
        w->cur_ticket = NULL;
        bk_ticket_done(ticket);
        ep_msg_unref(m);
        return EP_ENOMEM;
    }
    if (pub->retain) {
        bk_tree *t = &w->b->tree;
        pthread_rwlock_wrlock(&t->lock);
        err = bk_tree_retain(t, topic, pub->payload.len ? m : NULL);
        pthread_rwlock_unlock(&t->lock);
        if (err == EP_EOK)
            bk_persist_retain(w, topic, pub->payload.len ? m : NULL);
        if (err) {
            w->cur_ticket = NULL;
            if (pub->qos == 2)
                bk_session_qos2_remove(s, pub->packet_id);
            bk_ticket_done(ticket);
            ep_msg_unref(m);
            return reject(c, pub, EP_MQTT_RC_QUOTA_EXCEEDED, "retained store full");
        }
    }
    bk_flow *congested = NULL;
    uint32_t n = bk_route(w, m, s, find_partition(&pub->props), pub->qos ? &congested : NULL);
    ep_msg_unref(m);
    w->cur_ticket = NULL;
    ep_mqtt_rc rc = n ? EP_MQTT_RC_SUCCESS : EP_MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    if (c->version != EP_MQTT_V5)
        rc = 0;
    if (persist && ticket == NULL && w->cur_fail) {
        /* periodic/none: an append here failed at once. */
        bk_persist_count_refused(w->b);
        if (c->version != EP_MQTT_V5) {
            bk_flow_unref(congested);
            bk_conn_close(c, -1, "persistent storage full");
            return EP_EPROTO;
        }
        if (pub->qos == 2)
            bk_session_qos2_remove(s, pub->packet_id);
        rc = EP_MQTT_RC_QUOTA_EXCEEDED;
    }
    if (ticket) {
        bk_ticket_fail(ticket, w->cur_fail);
        bk_ticket_settle(ticket); /* the publisher's own unit; the ack keeps the reference */
    }
    bk_conn_ack(c, pub->qos == 1 ? EP_MQTT_PUBACK : EP_MQTT_PUBREC, pub->packet_id, rc, congested,
                ticket);
    return EP_EOK;
}

ep_err bk_handle_ack(bk_conn *c, const ep_mqtt_packet *p)
{
    bk_session *s = c->s;
    uint16_t pid = p->ack.packet_id;
    switch (p->type) {
    case EP_MQTT_PUBACK:
    case EP_MQTT_PUBCOMP:
        /* An unknown id is ignored: it may be a late ack after a resend. */
        bk_session_ack(s, (uint8_t)p->type, pid);
        return EP_EOK;
    case EP_MQTT_PUBREC: {
        /* With persistence the PUBREL waits until "awaiting PUBCOMP" is on
         * disk: after a restart the broker then never sends the message
         * again to a client that may already have released it. */
        bk_ticket *t = NULL;
        if (s->plogged && bk_persist_sync(c->w->b))
            t = bk_ticket_new();
        c->w->cur_ticket = t;
        ep_err err = bk_session_ack(s, EP_MQTT_PUBREC, pid);
        c->w->cur_ticket = NULL;
        if (err != EP_EOK) {
            bk_ticket_done(t);
            send_ack(c, EP_MQTT_PUBREL, pid, EP_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
            return EP_EOK;
        }
        if (p->ack.rc >= 0x80) {
            /* The client refused it: the exchange ends here. */
            bk_ticket_done(t);
            bk_session_ack(s, EP_MQTT_PUBCOMP, pid);
            return EP_EOK;
        }
        if (t == NULL) {
            send_ack(c, EP_MQTT_PUBREL, pid, EP_MQTT_RC_SUCCESS);
            return EP_EOK;
        }
        bk_ticket_settle(t);
        bk_conn_ack(c, EP_MQTT_PUBREL, pid, 0, NULL, t);
        return EP_EOK;
    }
    case EP_MQTT_PUBREL: {
        /* With persistence the PUBCOMP waits until the removal of the id is in
         * disk: the client may reuse the id right after it. */
        bk_ticket *t = NULL;
        if (s->plogged && bk_persist_sync(c->w->b))
            t = bk_ticket_new();
        c->w->cur_ticket = t;
        bool known = bk_session_qos2_remove(s, pid);
        c->w->cur_ticket = NULL;
        ep_mqtt_rc rc = known ? EP_MQTT_RC_SUCCESS : EP_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND;
        if (t == NULL) {
            send_ack(c, EP_MQTT_PUBCOMP, pid, rc);
            return EP_EOK;
        }
        bk_ticket_settle(t);
        bk_conn_ack(c, EP_MQTT_PUBCOMP, pid, c->version == EP_MQTT_V5 ? rc : 0, NULL, t);
        return EP_EOK;
    }
    default:
        return EP_EINVAL;
    }
}
