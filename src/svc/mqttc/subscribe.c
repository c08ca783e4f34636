/*
 * subscribe.c - SUBSCRIBE and UNSUBSCRIBE requests.
 *
 * A request is encoded once, when it is made (so the caller's filters are
 * not needed later), with a packet id from the same allocator as QoS 1/2
 * publications. It waits in ctl_queue while disconnected and is written on
 * connect, before queued publications. Requests are not re-sent after a
 * lost connection (MQTT only re-sends PUBLISH and PUBREL): one sent but not
 * answered completes with EP_ECLOSED, and on_connect's session_present says
 * whether the server kept the subscriptions.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/mqttc/mqttc_int.h"

static ep_err ctl_send(ep_mqttc *c, mq_op *op)
{
    if (c->srv_max_packet && ep_buf_used(&op->pkt) > c->srv_max_packet) {
        ep_mqttc__op_complete(c, NULL, op, EP_ETOOBIG, 0);
        return EP_ETOOBIG;
    }
    ep_err err = ep_buf_append(&c->out, ep_buf_head(&op->pkt), ep_buf_used(&op->pkt));
    if (err) {
        ep_mqttc__op_complete(c, NULL, op, err, 0);
        return err;
    }
    c->last_tx = ep_loop_now(c->loop);
    op->state = MQ_ST_WAIT_ACK;
    ep_mqttc__list_push(&c->ctl_wait, op);
    return EP_EOK;
}

void ep_mqttc__ctl_send_queued(ep_mqttc *c)
{
    mq_op *op;
    while ((op = c->ctl_queue.head) != NULL) {
        ep_mqttc__list_remove(&c->ctl_queue, op);
        ctl_send(c, op);
    }
}

void ep_mqttc__ctl_conn_lost(ep_mqttc *c)
{
    while (c->ctl_wait.head)
        ep_mqttc__op_complete(c, &c->ctl_wait, c->ctl_wait.head, EP_ECLOSED, 0);
}

void ep_mqttc__on_suback(ep_mqttc *c, ep_mqtt_type type, const ep_mqtt_suback *s)
{
    mq_op *op = ep_mqttc__op_find(c, s->packet_id);
    uint8_t want = type == EP_MQTT_SUBACK ? MQ_OP_SUB : MQ_OP_UNSUB;
    if (op == NULL || op->kind != want || op->state != MQ_ST_WAIT_ACK) {
        EP_LOG_DEBUG(MQC_LOG, "%s: ignoring %s for packet id %u we are not waiting for",
                     c->client_id, ep_mqtt_type_name(type), s->packet_id);
        return;
    }
    size_t n = op->nfilters;
    bool no_codes = type == EP_MQTT_UNSUBACK && c->version == EP_MQTT_V311;
    if (!no_codes && s->codes.len != n) {
        EP_LOG_WARN(MQC_LOG, "%s: %s with %u reason codes for %zu filters", c->client_id,
                    ep_mqtt_type_name(type), s->codes.len, n);
        ep_mqttc__op_complete(c, &c->ctl_wait, op, EP_EPROTO, 0);
        return;
    }
    op->rcs = calloc(n, 1);
    if (op->rcs == NULL) {
        ep_mqttc__op_complete(c, &c->ctl_wait, op, EP_ENOMEM, 0);
        return;
    }
    if (!no_codes)
        memcpy(op->rcs, s->codes.p, n);
    op->nrcs = n;
    ep_mqttc__op_complete(c, &c->ctl_wait, op, EP_EOK, 0);
}

static mq_op *new_ctl_op(uint8_t kind, ep_mqttc_sub_done_fn done, void *ud)
{
    mq_op *op = calloc(1, sizeof(*op));
    if (op) {
        op->kind = kind;
        op->sub_done = done;
        op->ud = ud;
        ep_buf_init(&op->pkt, 0);
    }
    return op;
}

/* Encodes p into op, with a fresh packet id, and sends or queues it. */
static ep_err submit(ep_mqttc *c, mq_op *op, ep_mqtt_packet *p, uint16_t *pid)
{
    uint16_t id = ep_mqttc__ids_alloc(&c->ids);
    if (id == 0) {
        ep_mqttc__op_complete(c, NULL, op, EP_EFULL, 0);
        return EP_EFULL;
    }
    *pid = id;
    ep_err err = ep_mqtt_packet_encode(&op->pkt, p, c->version, 0);
    if (err) {
        ep_mqttc__ids_release(&c->ids, id);
        ep_mqttc__op_complete(c, NULL, op, err == EP_ENOMEM ? EP_ENOMEM : EP_EINVAL, 0);
        return err == EP_ENOMEM ? EP_ENOMEM : EP_EINVAL;
    }
    op->id = id;
    ep_mqttc__op_hash_add(c, op);
    if (c->state == MQ_CONNECTED)
        return ctl_send(c, op);
    op->state = MQ_ST_QUEUED;
    ep_mqttc__list_push(&c->ctl_queue, op);
    return EP_EOK;
}

static ep_err early_fail(ep_mqttc *c, mq_op *op, ep_err err)
{
    ep_mqttc__op_complete(c, NULL, op, err, 0);
    return err;
}

ep_err ep_mqttc_subscribe(ep_mqttc *c, const ep_mqtt_sub *subs, size_t n, uint32_t sub_id,
                          ep_mqttc_sub_done_fn done, void *ud)
{
    if (c == NULL)
        return EP_EINVAL;
    if (c->freeing) {
        if (done)
            done(c, EP_ECLOSED, NULL, 0, ud);
        return EP_ESTATE;
    }
    mq_op *op = new_ctl_op(MQ_OP_SUB, done, ud);
    if (op == NULL)
        return EP_ENOMEM;
    if (subs == NULL || n == 0 || n > 65535u || sub_id > EP_MQTT_MAX_SUB_ID ||
        (sub_id && c->version != EP_MQTT_V5))
        return early_fail(c, op, EP_EINVAL);
    ep_mqtt_sub *copy = calloc(n, sizeof(*copy));
    if (copy == NULL)
        return early_fail(c, op, EP_ENOMEM);
    for (size_t i = 0; i < n; i++) {
        if (!ep_mqtt_topic_filter_valid(subs[i].filter) || subs[i].qos > 2 ||
            subs[i].retain_handling > 2) {
            free(copy);
            return early_fail(c, op, EP_EINVAL);
        }
        copy[i].filter = subs[i].filter;
        copy[i].qos = subs[i].qos;
        if (c->version == EP_MQTT_V5) {
            copy[i].no_local = subs[i].no_local;
            copy[i].retain_as_published = subs[i].retain_as_published;
            copy[i].retain_handling = subs[i].retain_handling;
        }
    }
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_SUBSCRIBE;
    p.subscribe.subs = copy;
    p.subscribe.n_subs = (uint32_t)n;
    if (sub_id) {
        EP_MQTT_PROPS_SET(&p.subscribe.props, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
        p.subscribe.props.subscription_id = sub_id;
    }
    op->nfilters = (uint32_t)n;
    ep_err err = submit(c, op, &p, &p.subscribe.packet_id);
    free(copy);
    return err;
}

ep_err ep_mqttc_unsubscribe(ep_mqttc *c, const ep_mqtt_slice *filters, size_t n,
                            ep_mqttc_sub_done_fn done, void *ud)
{
    if (c == NULL)
        return EP_EINVAL;
    if (c->freeing) {
        if (done)
            done(c, EP_ECLOSED, NULL, 0, ud);
        return EP_ESTATE;
    }
    mq_op *op = new_ctl_op(MQ_OP_UNSUB, done, ud);
    if (op == NULL)
        return EP_ENOMEM;
    if (filters == NULL || n == 0 || n > 65535u)
        return early_fail(c, op, EP_EINVAL);
    for (size_t i = 0; i < n; i++)
        if (!ep_mqtt_topic_filter_valid(filters[i]))
            return early_fail(c, op, EP_EINVAL);
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_UNSUBSCRIBE;
    p.unsubscribe.filters = filters;
    p.unsubscribe.n_filters = (uint32_t)n;
    op->nfilters = (uint32_t)n;
    return submit(c, op, &p, &p.unsubscribe.packet_id);
}
