/*
 * outgoing.c - publications from the application to the server.
 *
 * A publication is an mq_op holding one ep_msg reference. It waits in
 * `queue` (bounded by queue_max_messages/bytes, with the drop-oldest or
 * refuse-new policy) until the connection is up and, for QoS 1/2, a slot of
 * the in-flight window is free; the window is min(inflight_max, the server's
 * Receive Maximum). Sending assigns a packet id and moves the op to
 * `inflight`, kept in send order for the resend after a reconnect.
 *
 * Acknowledgements are looked up by packet id in a hash, so they complete
 * their op in whatever order they come; each one frees a window slot and
 * pumps the queue again. Nothing waits for the oldest message: one slow
 * acknowledgement costs one slot, not the whole window.
 *
 * Topic aliases (v5): when the server's CONNACK allows them, each topic
 * gets an alias the first time it is sent (topic + alias), and later sends
 * carry only the alias. Aliases are per connection, assigned up to
 * min(server maximum, MQC_ALIAS_OUT_CAP) and recycled least recently used.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/mqttc/mqttc_int.h"

/* ---- lists and the id hash -------------------------------------------- */

void ep_mqttc__list_push(mq_list *l, mq_op *op)
{
    op->next = NULL;
    op->prev = l->tail;
    if (l->tail)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    l->n++;
}

void ep_mqttc__list_push_front(mq_list *l, mq_op *op)
{
    op->prev = NULL;
    op->next = l->head;
    if (l->head)
        l->head->prev = op;
    else
        l->tail = op;
    l->head = op;
    l->n++;
}

mq_op *ep_mqttc__list_pop(mq_list *l)
{
    mq_op *op = l->head;
    if (op == NULL)
        return NULL;
    l->head = op->next;
    if (l->head)
        l->head->prev = NULL;
    else
        l->tail = NULL;
    op->next = op->prev = NULL;
    l->n--;
    return op;
}

void ep_mqttc__list_remove(mq_list *l, mq_op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->next = op->prev = NULL;
    l->n--;
}

mq_op *ep_mqttc__op_find(ep_mqttc *c, uint16_t id)
{
    for (mq_op *op = c->htab[id & c->hmask]; op; op = op->hnext)
        if (op->id == id)
            return op;
    return NULL;
}

void ep_mqttc__op_hash_add(ep_mqttc *c, mq_op *op)
{
    mq_op **b = &c->htab[op->id & c->hmask];
    op->hnext = *b;
    *b = op;
}

void ep_mqttc__op_hash_del(ep_mqttc *c, mq_op *op)
{
    for (mq_op **pp = &c->htab[op->id & c->hmask]; *pp; pp = &(*pp)->hnext) {
        if (*pp == op) {
            *pp = op->hnext;
            op->hnext = NULL;
            return;
        }
    }
}

/* ---- completion ------------------------------------------------------- */

void ep_mqttc__op_free(mq_op *op)
{
    ep_msg_unref(op->msg);
    ep_buf_fini(&op->pkt);
    free(op->rcs);
    free(op);
}

void ep_mqttc__op_complete(ep_mqttc *c, mq_list *from, mq_op *op, ep_err err, ep_mqtt_rc rc)
{
    if (from) {
        ep_mqttc__list_remove(from, op);
        if (from == &c->queue)
            c->queued_bytes -= op->acct;
    }
    if (op->id) {
        ep_mqttc__op_hash_del(c, op);
        ep_mqttc__ids_release(&c->ids, op->id);
        op->id = 0;
    }
    /* Closing the client keeps spooled messages for the next start. */
    if (op->spool_key && err != EP_ECLOSED)
        ep_mqttc__spool_done(c, op);
    op->err = err;
    op->rc = rc;
    op->state = MQ_ST_DONE;
    if (op->kind == MQ_OP_PUB) {
        if (err == EP_EOK)
            c->st.completed++;
        else if (err == EP_EFULL)
            c->st.dropped_full++;
        else if (err == EP_ETIMEDOUT)
            c->st.dropped_expired++;
        else if (err != EP_ECLOSED)
            c->st.dropped_other++;
    }
    ep_mqttc__list_push(&c->done, op);
    if (c->depth == 0)
        ep_mqttc__kick(c);
}

void ep_mqttc__drain_done(ep_mqttc *c)
{
    mq_op *op;
    while ((op = ep_mqttc__list_pop(&c->done)) != NULL) {
        if (op->kind == MQ_OP_PUB) {
            if (op->pub_done)
                op->pub_done(c, op->err, op->rc, op->ud);
        } else if (op->sub_done) {
            if (op->err == EP_EOK)
                op->sub_done(c, EP_EOK, op->rcs, op->nrcs, op->ud);
            else
                op->sub_done(c, op->err, NULL, 0, op->ud);
        }
        ep_mqttc__op_free(op);
    }
}

void ep_mqttc__fail_all(ep_mqttc *c, ep_err err)
{
    mq_list *lists[] = {&c->inflight, &c->queue, &c->ctl_wait, &c->ctl_queue};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        while (lists[i]->head)
            ep_mqttc__op_complete(c, lists[i], lists[i]->head, err, 0);
}

/* ---- outgoing topic aliases ------------------------------------------- */

static uint32_t topic_hash(const char *t, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)t[i]) * 16777619u;
    return h;
}

void ep_mqttc__alias_out_reset(ep_mqttc *c)
{
    for (uint16_t i = 0; i < c->alias_out_n; i++)
        free(c->alias_out[i].topic);
    c->alias_out_n = 0;
    c->alias_lru_head = c->alias_lru_tail = -1;
    if (c->alias_htab)
        memset(c->alias_htab, 0xFF, (size_t)(c->alias_hmask + 1) * sizeof(*c->alias_htab));
    if (c->state != MQ_CONNECTED || c->freeing)
        return;
    uint16_t cap =
        c->srv_alias_max < MQC_ALIAS_OUT_CAP ? c->srv_alias_max : (uint16_t)MQC_ALIAS_OUT_CAP;
    if (c->version != EP_MQTT_V5)
        cap = 0;
    if (cap > c->alias_out_cap) {
        mq_alias *a = realloc(c->alias_out, cap * sizeof(*a));
        uint32_t hs = 16;
        while (hs < 2u * cap)
            hs <<= 1;
        int32_t *h = malloc(hs * sizeof(*h));
        if (a == NULL || h == NULL) {
            /* Work without aliases on this connection. */
            if (a)
                c->alias_out = a;
            free(h);
            c->alias_out_cap = 0;
            return;
        }
        free(c->alias_htab);
        c->alias_out = a;
        c->alias_htab = h;
        c->alias_hmask = hs - 1;
        memset(h, 0xFF, hs * sizeof(*h));
    }
    c->alias_out_cap = cap;
}

static void lru_unlink(ep_mqttc *c, int32_t i)
{
    mq_alias *a = &c->alias_out[i];
    if (a->prev >= 0)
        c->alias_out[a->prev].next = a->next;
    else
        c->alias_lru_head = a->next;
    if (a->next >= 0)
        c->alias_out[a->next].prev = a->prev;
    else
        c->alias_lru_tail = a->prev;
}

static void lru_front(ep_mqttc *c, int32_t i)
{
    mq_alias *a = &c->alias_out[i];
    a->prev = -1;
    a->next = c->alias_lru_head;
    if (c->alias_lru_head >= 0)
        c->alias_out[c->alias_lru_head].prev = i;
    else
        c->alias_lru_tail = i;
    c->alias_lru_head = i;
}

/* Picks the alias for topic: an existing one (*fresh false) or the slot a
 * new mapping would take (*fresh true; commit with alias_commit once the
 * packet is encoded). Returns 0 when aliases are not in use. */
static uint16_t alias_pick(ep_mqttc *c, const char *t, size_t n, uint32_t h, bool *fresh)
{
    *fresh = false;
    if (c->alias_out_cap == 0 || n == 0)
        return 0;
    for (int32_t i = c->alias_htab[h & c->alias_hmask]; i >= 0; i = c->alias_out[i].hnext) {
        mq_alias *a = &c->alias_out[i];
        if (a->hash == h && a->len == n && memcmp(a->topic, t, n) == 0) {
            if (c->alias_lru_head != i) {
                lru_unlink(c, i);
                lru_front(c, i);
            }
            return (uint16_t)(i + 1);
        }
    }
    *fresh = true;
    if (c->alias_out_n < c->alias_out_cap)
        return (uint16_t)(c->alias_out_n + 1);
    return (uint16_t)(c->alias_lru_tail + 1);
}

static void alias_commit(ep_mqttc *c, uint16_t alias, const char *t, size_t n, uint32_t h)
{
    char *copy = malloc(n);
    int32_t i = alias - 1;
    mq_alias *a = &c->alias_out[i];
    if (i < c->alias_out_n) {
        /* Recycle the least recently used slot: unhash the old topic. */
        for (int32_t *pp = &c->alias_htab[a->hash & c->alias_hmask]; *pp >= 0;
             pp = &c->alias_out[*pp].hnext) {
            if (*pp == i) {
                *pp = a->hnext;
                break;
            }
        }
        lru_unlink(c, i);
        free(a->topic);
    } else {
        c->alias_out_n++;
    }
    if (copy == NULL) {
        /* The server now maps this alias to t, but we cannot remember it:
         * park the slot with an empty topic, which never matches. */
        a->topic = NULL;
        a->len = 0;
        a->hash = 0;
        a->hnext = -1;
        lru_front(c, i);
        return;
    }
    memcpy(copy, t, n);
    a->topic = copy;
    a->len = (uint16_t)n;
    a->hash = h;
    int32_t *b = &c->alias_htab[h & c->alias_hmask];
    a->hnext = *b;
    *b = i;
    lru_front(c, i);
}

/* ---- encoding --------------------------------------------------------- */

static ep_err encode_publish(ep_mqttc *c, mq_op *op, bool dup)
{
    ep_msg *m = op->msg;
    ep_mqtt_publish_hdr h;
    memset(&h, 0, sizeof(h));
    h.qos = op->qos;
    h.dup = dup;
    h.retain = op->retain;
    h.packet_id = op->id;
    h.payload_len = m->payload_len;
    h.topic = ep_mqtt_slice_make(m->topic, m->topic_len);
    uint32_t hash = 0;
    bool fresh = false;
    if (c->version == EP_MQTT_V5) {
        h.props = ep_mqtt_slice_make(m->props, m->props_len);
        if (m->has_expiry) {
            uint64_t now = ep_loop_now(c->loop);
            uint64_t left = m->expiry_at_ms > now ? (m->expiry_at_ms - now + 999u) / 1000u : 1u;
            h.has_message_expiry = true;
            h.message_expiry = (uint32_t)(left ? left : 1u);
        }
        if (c->alias_out_cap) {
            hash = topic_hash(m->topic, m->topic_len);
            h.topic_alias = alias_pick(c, m->topic, m->topic_len, hash, &fresh);
            if (h.topic_alias && !fresh)
                h.topic = ep_mqtt_slice_make(NULL, 0);
        }
    }
    size_t hlen = ep_mqtt_publish_header_size(&h, c->version);
    if (hlen == 0)
        return EP_EINVAL;
    ep_err err = ep_buf_reserve(&c->out, hlen + m->payload_len);
    if (err)
        return err;
    size_t written = 0;
    err = ep_mqtt_publish_header_write(&h, c->version, c->srv_max_packet, ep_buf_tail(&c->out),
                                       ep_buf_room(&c->out), &written);
    if (err)
        return err;
    c->out.len += written;
    if (m->payload_len)
        memcpy(ep_buf_tail(&c->out), m->payload, m->payload_len);
    c->out.len += m->payload_len;
    if (fresh)
        alias_commit(c, h.topic_alias, m->topic, m->topic_len, hash);
    c->last_tx = ep_loop_now(c->loop);
    return EP_EOK;
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

/* ---- the pump --------------------------------------------------------- */

static uint32_t window(const ep_mqttc *c)
{
    return c->inflight_max < c->srv_receive_max ? c->inflight_max : c->srv_receive_max;
}

void ep_mqttc__pump(ep_mqttc *c)
{
    if (c->state != MQ_CONNECTED || c->io_err)
        return;
    uint64_t now = ep_loop_now(c->loop);
    while (c->queue.head && ep_buf_used(&c->out) < MQC_HIGH_WATER) {
        mq_op *op = c->queue.head;
        ep_msg *m = op->msg;
        if (m->has_expiry && now >= m->expiry_at_ms) {
            ep_mqttc__op_complete(c, &c->queue, op, EP_ETIMEDOUT, 0);
            continue;
        }
        if (op->qos > c->srv_max_qos) {
            ep_mqttc__op_complete(c, &c->queue, op, EP_EUNSUPPORTED, EP_MQTT_RC_QOS_NOT_SUPPORTED);
            continue;
        }
        if (op->retain && !c->srv_retain) {
            ep_mqttc__op_complete(c, &c->queue, op, EP_EUNSUPPORTED,
                                  EP_MQTT_RC_RETAIN_NOT_SUPPORTED);
            continue;
        }
        if (op->qos > 0) {
            if (c->inflight.n >= window(c))
                return;
            op->id = ep_mqttc__ids_alloc(&c->ids);
            if (op->id == 0)
                return; /* every id is taken; acks will free some */
        }
        ep_err err = encode_publish(c, op, false);
        if (err == EP_ENOMEM) {
            ep_mqttc__ids_release(&c->ids, op->id);
            op->id = 0;
            return;
        }
        if (err) {
            /* Too big for the server's Maximum Packet Size (or not
             * encodable): this message can never be sent. */
            ep_mqttc__ids_release(&c->ids, op->id);
            op->id = 0;
            ep_mqttc__op_complete(c, &c->queue, op, err == EP_EINVAL ? EP_EINVAL : EP_ETOOBIG, 0);
            continue;
        }
        c->st.published++;
        ep_mqttc__list_remove(&c->queue, op);
        c->queued_bytes -= op->acct;
        if (op->qos == 0) {
            op->state = MQ_ST_QUEUED;
            ep_mqttc__op_complete(c, NULL, op, EP_EOK, 0);
        } else {
            op->state = MQ_ST_WAIT_ACK;
            ep_mqttc__op_hash_add(c, op);
            ep_mqttc__list_push(&c->inflight, op);
        }
    }
}

/* ---- sessions --------------------------------------------------------- */

void ep_mqttc__session_resume(ep_mqttc *c)
{
    mq_op *next;
    for (mq_op *op = c->inflight.head; op; op = next) {
        next = op->next;
        ep_err err;
        if (op->state == MQ_ST_WAIT_COMP)
            err = send_ack(c, EP_MQTT_PUBREL, op->id, 0);
        else
            err = encode_publish(c, op, true);
        if (err) {
            ep_mqttc__op_complete(c, &c->inflight, op, err == EP_ENOMEM ? EP_ENOMEM : EP_ETOOBIG,
                                  0);
            continue;
        }
        c->st.resent++;
    }
}

void ep_mqttc__session_reset(ep_mqttc *c)
{
    /* Newest first, each to the front: the queue keeps the original order. */
    mq_op *prev;
    for (mq_op *op = c->inflight.tail; op; op = prev) {
        prev = op->prev;
        if (op->state == MQ_ST_WAIT_COMP) {
            /* PUBREC said the server has the message; only the release
             * handshake is lost with the session. */
            ep_mqttc__op_complete(c, &c->inflight, op, EP_EOK, 0);
            continue;
        }
        ep_mqttc__list_remove(&c->inflight, op);
        ep_mqttc__op_hash_del(c, op);
        ep_mqttc__ids_release(&c->ids, op->id);
        op->id = 0;
        op->state = MQ_ST_QUEUED;
        ep_mqttc__list_push_front(&c->queue, op);
        c->queued_bytes += op->acct;
    }
}

/* ---- acknowledgements ------------------------------------------------- */

void ep_mqttc__on_pub_ack(ep_mqttc *c, ep_mqtt_type type, const ep_mqtt_ack *a)
{
    mq_op *op = ep_mqttc__op_find(c, a->packet_id);
    bool pub = op && op->kind == MQ_OP_PUB;
    switch (type) {
    case EP_MQTT_PUBACK:
        if (!pub || op->qos != 1 || op->state != MQ_ST_WAIT_ACK)
            break;
        ep_mqttc__op_complete(c, &c->inflight, op, EP_EOK, a->rc);
        ep_mqttc__pump(c);
        return;
    case EP_MQTT_PUBREC:
        if (pub && op->qos == 2 && op->state == MQ_ST_WAIT_ACK) {
            if ((unsigned)a->rc >= 0x80) {
                ep_mqttc__op_complete(c, &c->inflight, op, EP_EOK, a->rc);
                ep_mqttc__pump(c);
                return;
            }
            op->state = MQ_ST_WAIT_COMP;
            send_ack(c, EP_MQTT_PUBREL, op->id, 0);
            return;
        }
        if (pub && op->qos == 2 && op->state == MQ_ST_WAIT_COMP) {
            send_ack(c, EP_MQTT_PUBREL, op->id, 0);
            return;
        }
        /* Not ours (any more): release it so the server can finish. */
        send_ack(c, EP_MQTT_PUBREL, a->packet_id, EP_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
        return;
    case EP_MQTT_PUBCOMP:
        if (!pub || op->state != MQ_ST_WAIT_COMP)
            break;
        ep_mqttc__op_complete(c, &c->inflight, op, EP_EOK, a->rc);
        ep_mqttc__pump(c);
        return;
    default:
        break;
    }
    EP_LOG_DEBUG(MQC_LOG, "%s: ignoring %s for packet id %u we are not waiting for", c->client_id,
                 ep_mqtt_type_name(type), a->packet_id);
}

/* ---- API -------------------------------------------------------------- */

static ep_err enqueue(ep_mqttc *c, mq_op *op)
{
    ep_msg *m = op->msg;
    op->acct = ep_msg_size(m);
    if (op->acct > c->queue_max_bytes) {
        ep_mqttc__op_complete(c, NULL, op, EP_ETOOBIG, 0);
        return EP_ETOOBIG;
    }
    if (c->state == MQ_CONNECTED && c->srv_max_packet) {
        ep_mqtt_publish_hdr h;
        memset(&h, 0, sizeof(h));
        h.qos = op->qos;
        h.packet_id = 1;
        h.topic = ep_mqtt_slice_make(m->topic, m->topic_len);
        h.payload_len = m->payload_len;
        h.props = ep_mqtt_slice_make(m->props, m->props_len);
        h.has_message_expiry = m->has_expiry;
        size_t hl = ep_mqtt_publish_header_size(&h, c->version);
        if (hl && hl + m->payload_len > c->srv_max_packet) {
            ep_mqttc__op_complete(c, NULL, op, EP_ETOOBIG, 0);
            return EP_ETOOBIG;
        }
    }
    while (c->queue.n >= c->queue_max_msgs || c->queued_bytes + op->acct > c->queue_max_bytes) {
        if (c->policy == EP_MQTTC_REFUSE_NEW || c->queue.head == NULL) {
            ep_mqttc__op_complete(c, NULL, op, EP_EFULL, 0);
            return EP_EFULL;
        }
        ep_mqttc__op_complete(c, &c->queue, c->queue.head, EP_EFULL, 0);
    }
    if (c->spool && op->qos > 0) {
        ep_err err = ep_mqttc__spool_put(c, op);
        if (err) {
            ep_mqttc__op_complete(c, NULL, op, err, 0);
            return err;
        }
    }
    op->state = MQ_ST_QUEUED;
    ep_mqttc__list_push(&c->queue, op);
    c->queued_bytes += op->acct;
    if (c->state == MQ_CONNECTED && c->inflight.n < window(c))
        ep_mqttc__pump(c);
    else if (c->state != MQ_CONNECTED)
        EP_LOG_DEBUG(MQC_LOG, "%s: queued while offline (%u waiting, %zu bytes)", c->client_id,
                     c->queue.n, c->queued_bytes);
    return EP_EOK;
}

static mq_op *new_pub_op(ep_mqttc_pub_done_fn done, void *ud)
{
    mq_op *op = calloc(1, sizeof(*op));
    if (op) {
        op->kind = MQ_OP_PUB;
        op->pub_done = done;
        op->ud = ud;
    }
    return op;
}

/* A request refused before it was queued completes from the loop. */
static ep_err refuse(ep_mqttc *c, mq_op *op, ep_err err)
{
    ep_mqttc__op_complete(c, NULL, op, err, 0);
    return err;
}

ep_err ep_mqttc_publish(ep_mqttc *c, const ep_mqttc_pub *p, ep_mqttc_pub_done_fn done, void *ud)
{
    if (c == NULL || p == NULL)
        return EP_EINVAL;
    if (c->freeing) {
        if (done)
            done(c, EP_ECLOSED, 0, ud);
        return EP_ESTATE;
    }
    mq_op *op = new_pub_op(done, ud);
    if (op == NULL)
        return EP_ENOMEM;
    if (p->topic == NULL || p->qos > 2 || (p->payload_len && p->payload == NULL))
        return refuse(c, op, EP_EINVAL);
    size_t tlen = strlen(p->topic);
    if (!ep_mqtt_topic_name_valid(ep_mqtt_slice_make(p->topic, tlen)) ||
        p->payload_len > UINT32_MAX)
        return refuse(c, op, EP_EINVAL);
    uint8_t *props = NULL;
    size_t plen = 0;
    bool has_expiry = false;
    uint32_t expiry = 0;
    if (c->version == EP_MQTT_V5) {
        ep_err err = ep_mqttc__pub_props_encode(p->props, &props, &plen, &has_expiry, &expiry);
        if (err)
            return refuse(c, op, err);
    }
    ep_msg *m = ep_msg_new(p->topic, tlen, props, plen, p->payload, p->payload_len);
    free(props);
    if (m == NULL)
        return refuse(c, op, EP_ENOMEM);
    uint64_t now = ep_loop_now(c->loop);
    m->qos = p->qos;
    m->retain = p->retain;
    m->created_ms = now;
    if (has_expiry) {
        m->has_expiry = 1;
        m->expiry_interval = expiry;
        m->expiry_at_ms = now + (uint64_t)expiry * 1000u;
    }
    op->msg = m;
    op->qos = p->qos;
    op->retain = p->retain;
    return enqueue(c, op);
}

/* Whether raw (a bare property block) holds a property publish_msg must not
 * forward: Topic Alias or Subscription Identifier. */
static bool props_forbidden(const uint8_t *p, size_t n)
{
    ep_mqtt_slice raw = ep_mqtt_slice_make(p, n);
    if (n == 0)
        return false;
    uint8_t *tmp = malloc(n);
    if (tmp == NULL)
        return true;
    size_t kept = ep_mqtt_props_filter(raw,
                                       EP_MQTT_PROP_BIT(EP_MQTT_PROP_TOPIC_ALIAS) |
                                           EP_MQTT_PROP_BIT(EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER),
                                       tmp);
    free(tmp);
    return kept != n;
}

ep_err ep_mqttc_publish_msg(ep_mqttc *c, ep_msg *m, uint8_t qos, bool retain,
                            ep_mqttc_pub_done_fn done, void *ud)
{
    if (c == NULL || m == NULL) {
        ep_msg_unref(m);
        return EP_EINVAL;
    }
    if (c->freeing) {
        ep_msg_unref(m);
        if (done)
            done(c, EP_ECLOSED, 0, ud);
        return EP_ESTATE;
    }
    mq_op *op = new_pub_op(done, ud);
    if (op == NULL) {
        ep_msg_unref(m);
        return EP_ENOMEM;
    }
    op->msg = m;
    op->qos = qos;
    op->retain = retain;
    if (qos > 2 || !ep_mqtt_topic_name_valid(ep_mqtt_slice_make(m->topic, m->topic_len)))
        return refuse(c, op, EP_EINVAL);
    if (c->version == EP_MQTT_V5 && props_forbidden(m->props, m->props_len))
        return refuse(c, op, EP_EINVAL);
    return enqueue(c, op);
}
