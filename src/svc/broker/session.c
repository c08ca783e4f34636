/*
 * session.c - MQTT sessions: lookup tables, subscriptions owned by the
 * session, the outgoing QoS 1/2 window and queue, incoming QoS 2 state,
 * wills and expiry.
 *
 * Queue policy. A message for a session waits in `queue` when the client is
 * offline (QoS 1/2 only; QoS 0 is not queued for offline clients) or when
 * its in-flight window is full. The queue is bounded by
 * limits.max_queued_messages and limits.max_queued_bytes; when full,
 * DROP_OLDEST drops the head, REFUSE_NEW drops the arriving message. Either
 * way the drop is counted in publish_dropped. Expired messages are dropped
 * when they reach the head (passive expiry, as the reference does).
 *
 * Persistence. Each QoS 1/2 message of a session gets a message id (pmid);
 * for a persistent session every change of the window, the queue, the
 * incoming QoS 2 set and the will is also written to the log through the
 * bk_persist_* hooks (persist.c), in the same callback as the change.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/broker/broker_int.h"

static uint32_t hash_cid(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t hash_id(uint64_t id) { return (uint32_t)(id * 0x9E3779B97F4A7C15ull >> 32); }

static bool tables_grow(bk_worker *w)
{
    uint32_t nb = w->nbuckets ? w->nbuckets * 2 : 256;
    bk_session **cid = calloc(nb, sizeof(*cid));
    bk_session **ids = calloc(nb, sizeof(*ids));
    if (cid == NULL || ids == NULL) {
        free(cid);
        free(ids);
        return false;
    }
    for (uint32_t i = 0; i < w->nbuckets; i++) {
        for (bk_session *s = w->by_cid[i], *next; s; s = next) {
            next = s->next_by_cid;
            uint32_t h = hash_cid((const uint8_t *)s->client_id, s->client_id_len) & (nb - 1);
            s->next_by_cid = cid[h];
            cid[h] = s;
        }
        for (bk_session *s = w->by_id[i], *next; s; s = next) {
            next = s->next_by_id;
            uint32_t h = hash_id(s->id) & (nb - 1);
            s->next_by_id = ids[h];
            ids[h] = s;
        }
    }
    free(w->by_cid);
    free(w->by_id);
    w->by_cid = cid;
    w->by_id = ids;
    w->nbuckets = nb;
    return true;
}

bk_session *bk_session_find_cid(bk_worker *w, const uint8_t *cid, size_t len)
{
    if (w->nbuckets == 0)
        return NULL;
    uint32_t h = hash_cid(cid, len) & (w->nbuckets - 1);
    for (bk_session *s = w->by_cid[h]; s; s = s->next_by_cid)
        if (s->client_id_len == len && memcmp(s->client_id, cid, len) == 0)
            return s;
    return NULL;
}

bk_session *bk_session_find_id(bk_worker *w, uint64_t id)
{
    if (w->nbuckets == 0)
        return NULL;
    for (bk_session *s = w->by_id[hash_id(id) & (w->nbuckets - 1)]; s; s = s->next_by_id)
        if (s->id == id)
            return s;
    return NULL;
}

static void on_expiry(ep_timer *t)
{
    bk_session *s = t->data;
    EP_LOG_DEBUG(BK_LOG, "session %.*s expired", (int)s->client_id_len, s->client_id);
    bk_session_destroy(s);
}

static void on_will_delay(ep_timer *t) { bk_session_publish_will(t->data); }

bk_session *bk_session_new(bk_worker *w, const uint8_t *cid, size_t len)
{
    if (w->nsessions + 1 > w->nbuckets * 2 && !tables_grow(w))
        return NULL;
    bk_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->client_id = malloc(len + 1);
    s->flow = calloc(1, sizeof(*s->flow));
    if (s->client_id == NULL || s->flow == NULL) {
        free(s->client_id);
        free(s->flow);
        free(s);
        return NULL;
    }
    atomic_init(&s->flow->refs, 1);
    s->flow->high = w->b->cfg.limits.max_queued_messages / 10 + 1;
    s->flow->stall_ms = 1000;
    memcpy(s->client_id, cid, len);
    s->client_id[len] = '\0';
    s->client_id_len = (uint16_t)len;
    s->w = w;
    s->id = atomic_fetch_add(&w->b->next_session_id, 1);
    s->next_pid = 1;
    ep_timer_init(w->loop, &s->expiry_timer, on_expiry, s);
    ep_timer_init(w->loop, &s->will_timer, on_will_delay, s);
    uint32_t h = hash_cid(cid, len) & (w->nbuckets - 1);
    s->next_by_cid = w->by_cid[h];
    w->by_cid[h] = s;
    h = hash_id(s->id) & (w->nbuckets - 1);
    s->next_by_id = w->by_id[h];
    w->by_id[h] = s;
    w->nsessions++;
    atomic_fetch_add(&w->b->nsessions, 1);
    return s;
}

static void unlink_session(bk_session *s)
{
    bk_worker *w = s->w;
    bk_session **pp =
        &w->by_cid[hash_cid((const uint8_t *)s->client_id, s->client_id_len) & (w->nbuckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->next_by_cid;
    if (*pp)
        *pp = s->next_by_cid;
    pp = &w->by_id[hash_id(s->id) & (w->nbuckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->next_by_id;
    if (*pp)
        *pp = s->next_by_id;
    w->nsessions--;
    atomic_fetch_sub(&w->b->nsessions, 1);
}

void bk_session_unsubscribe_all(bk_session *s)
{
    bk_tree *t = &s->w->b->tree;
    if (s->nsubs == 0)
        return;
    pthread_rwlock_wrlock(&t->lock);
    for (uint32_t i = 0; i < s->nsubs; i++)
        bk_tree_sub_remove(t, s->subs[i].match, s->subs[i].group, s->id);
    pthread_rwlock_unlock(&t->lock);
    for (uint32_t i = 0; i < s->nsubs; i++)
        free(s->subs[i].filter);
    s->nsubs = 0;
    s->has_subids = false;
}

static void queue_clear(bk_session *s)
{
    for (uint32_t i = 0; i < s->q_count; i++) {
        bk_qitem *q = &s->queue[(s->q_head + i) % s->q_cap];
        ep_msg_unref(q->msg);
        bk_ticket_unref(q->gate);
    }
    atomic_fetch_sub_explicit(&s->w->ctr.queued, (long)s->q_count, memory_order_relaxed);
    s->q_count = s->q_head = 0;
    s->q_bytes = 0;
    for (uint32_t i = 0; i < s->if_count; i++) {
        bk_inflight *f = &s->inflight[(s->if_head + i) % s->if_cap];
        ep_msg_unref(f->msg);
        bk_ticket_unref(f->gate);
    }
    s->if_count = s->if_head = 0;
    for (uint32_t i = 0; i < s->n_qos2_in; i++)
        bk_ticket_unref(s->qos2_in[i].tk);
    s->n_qos2_in = 0;
}

void bk_session_destroy(bk_session *s)
{
    if (s == NULL)
        return;
    if (ep_timer_active(&s->will_timer)) {
        /* Session ends before the will delay: the will goes out now. */
        ep_timer_stop(&s->will_timer);
        bk_session_publish_will(s);
    }
    bk_persist_session_del(s);
    ep_timer_stop(&s->expiry_timer);
    bk_session_unsubscribe_all(s);
    unlink_session(s);
    queue_clear(s);
    ep_msg_unref(s->will);
    atomic_store(&s->flow->congested, false);
    bk_flow_unref(s->flow);
    free(s->subs);
    free(s->inflight);
    free(s->queue);
    free(s->qos2_in);
    free(s->client_id);
    free(s);
}

void bk_session_publish_will(bk_session *s)
{
    ep_msg *will = s->will;
    if (will == NULL)
        return;
    s->will = NULL;
    ep_timer_stop(&s->will_timer);
    bk_persist_session(s); /* the will is gone */
    if (will->retain) {
        bk_tree *t = &s->w->b->tree;
        ep_mqtt_slice topic = ep_mqtt_slice_make(will->topic, will->topic_len);
        pthread_rwlock_wrlock(&t->lock);
        bk_tree_retain(t, topic, will->payload_len ? will : NULL);
        pthread_rwlock_unlock(&t->lock);
        bk_persist_retain(s->w, topic, will->payload_len ? will : NULL);
    }
    bk_route(s->w, will, NULL, (ep_mqtt_slice){NULL, 0}, NULL);
    ep_msg_unref(will);
}

/* bk_session_detach runs when the session's connection closes. */
void bk_session_detach(bk_session *s, bool publish_will)
{
    s->conn = NULL;
    bk_session_update_flow(s);
    if (s->w->stopping && s->plogged)
        return; /* shutting down: the session, will included, waits for the next start */
    if (s->will) {
        if (!publish_will) {
            ep_msg_unref(s->will);
            s->will = NULL;
            bk_persist_session(s);
        } else if (s->will_delay == 0 || s->expiry_interval == 0) {
            bk_session_publish_will(s);
        } else {
            uint32_t d = s->will_delay < s->expiry_interval ? s->will_delay : s->expiry_interval;
            ep_timer_start(&s->will_timer, (uint64_t)d * 1000u);
        }
    }
    if (s->expiry_interval == 0) {
        bk_session_destroy(s);
        return;
    }
    if (s->expiry_interval != UINT32_MAX)
        ep_timer_start(&s->expiry_timer, (uint64_t)s->expiry_interval * 1000u);
}

/* ---- queue and window ---- */

/*
 * Flow control. An online session whose queue passes the high watermark is
 * marked congested; publishers routing QoS 1/2 messages to it then hold
 * back their PUBACK/PUBREC (bk_conn_ack) until it drains below the low
 * watermark, so their own in-flight windows throttle them to the
 * subscriber's pace instead of the queue overflowing. Offline sessions are
 * never congested: a subscriber that is away must not stall publishers; its
 * queue limit and policy apply instead.
 */
void bk_session_update_flow(bk_session *s)
{
    const ep_broker_limits *lim = &s->w->b->cfg.limits;
    uint32_t high = lim->max_queued_messages / 10 + 1;
    uint32_t low = high / 2;
    bool c = atomic_load_explicit(&s->flow->congested, memory_order_relaxed);
    bool want = s->conn != NULL && (c ? s->q_count > low : s->q_count >= high);
    if (want && !c) /* the stall clock starts when congestion does */
        bk_flow_progress(s->flow, ep_loop_now(s->w->loop));
    if (want != c)
        atomic_store_explicit(&s->flow->congested, want, memory_order_relaxed);
}

/* queue_push returns EP_EOK, EP_EFULL (queue limit: the caller counts the
 * drop), EP_ENOMEM, or EP_EIO when the log refused the record (counted by
 * the persistence metrics; the message is not queued). */
static ep_err queue_push(bk_session *s, ep_msg *m, uint8_t qos, uint8_t retain)
{
    const ep_broker_limits *lim = &s->w->b->cfg.limits;
    size_t sz = ep_msg_size(m);
    if (s->q_count >= lim->max_queued_messages || s->q_bytes + sz > lim->max_queued_bytes) {
        if (lim->queue_policy == EP_BROKER_REFUSE_NEW || s->q_count == 0)
            return EP_EFULL;
        /* Drop oldest until the new one fits. */
        while (s->q_count > 0 && (s->q_count >= lim->max_queued_messages ||
                                  s->q_bytes + sz > lim->max_queued_bytes)) {
            bk_qitem *h = &s->queue[s->q_head];
            if (h->qos)
                bk_persist_msg_del(s, h->pmid);
            s->q_bytes -= ep_msg_size(h->msg);
            ep_msg_unref(h->msg);
            bk_ticket_unref(h->gate);
            s->q_head = (s->q_head + 1) % s->q_cap;
            s->q_count--;
            atomic_fetch_sub_explicit(&s->w->ctr.queued, 1, memory_order_relaxed);
            bk_count_drop(s->w, BK_DROP_QUEUE_FULL, 1);
        }
    }
    if (s->q_count == s->q_cap) {
        uint32_t cap = s->q_cap ? s->q_cap * 2 : 8;
        bk_qitem *v = malloc(cap * sizeof(*v));
        if (v == NULL)
            return EP_ENOMEM;
        for (uint32_t i = 0; i < s->q_count; i++)
            v[i] = s->queue[(s->q_head + i) % s->q_cap];
        free(s->queue);
        s->queue = v;
        s->q_cap = cap;
        s->q_head = 0;
    }
    uint64_t pmid = s->next_pmid++, seq = 0;
    bk_ticket *gate = bk_persist_gate(s, qos);
    if (qos &&
        bk_persist_msg_put(s, pmid, qos, retain, BK_PSTATE_QUEUED, 0, m, gate, &seq) != EP_EOK) {
        bk_ticket_unref(gate);
        return EP_EIO;
    }
    bk_qitem *it = &s->queue[(s->q_head + s->q_count) % s->q_cap];
    it->msg = ep_msg_ref(m);
    it->pmid = pmid;
    it->seq = seq;
    it->gate = gate;
    it->qos = qos;
    it->retain = retain;
    s->q_count++;
    atomic_fetch_add_explicit(&s->w->ctr.queued, 1, memory_order_relaxed);
    s->q_bytes += sz;
    bk_session_update_flow(s);
    return EP_EOK;
}

static void queue_push_counted(bk_session *s, ep_msg *m, uint8_t qos, uint8_t retain)
{
    ep_err err = queue_push(s, m, qos, retain);
    if (err == EP_EFULL)
        bk_count_drop(s->w, BK_DROP_QUEUE_FULL, 1);
    else if (err == EP_ENOMEM)
        bk_count_drop(s->w, BK_DROP_NO_MEMORY, 1);
}

static uint32_t window_size(const bk_session *s)
{
    uint32_t w = s->w->b->cfg.limits.max_inflight;
    if (s->conn && s->conn->client_receive_max < w)
        w = s->conn->client_receive_max;
    return w ? w : 1;
}

static bool pid_in_use(const bk_session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->if_count; i++)
        if (s->inflight[(s->if_head + i) % s->if_cap].pid == pid)
            return true;
    return false;
}

static uint16_t next_pid(bk_session *s)
{
    for (;;) {
        uint16_t pid = s->next_pid++;
        if (s->next_pid == 0)
            s->next_pid = 1;
        if (pid != 0 && (s->if_count == 0 || !pid_in_use(s, pid)))
            return pid;
    }
}

static bk_inflight *inflight_push(bk_session *s)
{
    if (s->if_count == s->if_cap) {
        uint32_t cap = s->if_cap ? s->if_cap * 2 : 8;
        bk_inflight *v = malloc(cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        for (uint32_t i = 0; i < s->if_count; i++)
            v[i] = s->inflight[(s->if_head + i) % s->if_cap];
        free(s->inflight);
        s->inflight = v;
        s->if_cap = cap;
        s->if_head = 0;
    }
    bk_inflight *f = &s->inflight[(s->if_head + s->if_count) % s->if_cap];
    s->if_count++;
    return f;
}

static bool expired(const bk_session *s, const ep_msg *m)
{
    return m->has_expiry && ep_loop_now(s->w->loop) >= m->expiry_at_ms;
}

typedef struct bk_wait_send {
    uint64_t session_id, pmid, seq;
    bk_ticket *gate; /* own reference, or NULL: wait for seq instead */
} bk_wait_send;

static bool wait_send_push(bk_worker *w, const bk_wait_send *e)
{
    if (w->ws_n == w->ws_cap) {
        uint32_t cap = w->ws_cap ? w->ws_cap * 2 : 64;
        bk_wait_send *v = malloc(cap * sizeof(*v));
        if (v == NULL)
            return false;
        for (uint32_t i = 0; i < w->ws_n; i++)
            v[i] = w->wsend[(w->ws_head + i) % w->ws_cap];
        free(w->wsend);
        w->wsend = v;
        w->ws_cap = cap;
        w->ws_head = 0;
    }
    w->wsend[(w->ws_head + w->ws_n) % w->ws_cap] = *e;
    w->ws_n++;
    return true;
}

/* A message waiting for the disk may go out: its routing's done mark (gate)
 * or else its own record (seq) is on disk. */
static bool send_ready(const bk_worker *w, bk_ticket *gate, uint64_t seq)
{
    return gate ? bk_gate_open(gate) : seq <= w->durable_seq;
}

static void sent_first(bk_inflight *f)
{
    f->unsent = 0;
    bk_ticket_unref(f->gate); /* the done mark is on disk: the origin is no longer needed */
    f->gate = NULL;
}

/* Waiting messages go out in the order they arrived on this worker (a later
 * one never overtakes an earlier one, whichever it waits for). */
void bk_session_send_durable(bk_worker *w)
{
    while (w->ws_n > 0 && send_ready(w, w->wsend[w->ws_head].gate, w->wsend[w->ws_head].seq)) {
        bk_wait_send e = w->wsend[w->ws_head];
        w->ws_head = (w->ws_head + 1) % w->ws_cap;
        w->ws_n--;
        bk_ticket_unref(e.gate);
        bk_session *s = bk_session_find_id(w, e.session_id);
        if (s == NULL || s->conn == NULL)
            continue; /* sent by bk_session_resend on reconnect */
        for (uint32_t i = 0; i < s->if_count; i++) {
            bk_inflight *f = &s->inflight[(s->if_head + i) % s->if_cap];
            if (f->pmid == e.pmid && f->unsent) {
                sent_first(f);
                bk_conn_send_publish(s->conn, f->msg, f->qos, f->pid, f->retain, false);
                break;
            }
        }
    }
    if (w->ws_n == 0)
        w->ws_head = 0;
}

/* Drops the waiting entries (shutdown). */
static void wait_send_clear(bk_worker *w)
{
    for (uint32_t i = 0; i < w->ws_n; i++)
        bk_ticket_unref(w->wsend[(w->ws_head + i) % w->ws_cap].gate);
    w->ws_n = w->ws_head = 0;
}

/* Defers the first send of f until send_ready; false if it may go now. */
static bool wait_for_disk(bk_session *s, bk_inflight *f)
{
    bk_worker *w = s->w;
    if (send_ready(w, f->gate, f->seq))
        return false;
    bk_wait_send ws = {
        .session_id = s->id, .pmid = f->pmid, .seq = f->seq, .gate = bk_ticket_ref(f->gate)};
    if (!wait_send_push(w, &ws)) {
        bk_ticket_unref(ws.gate);
        return false;
    }
    f->unsent = 1;
    if (f->gate && bk_persist_gate_wait(w, f->gate))
        bk_session_send_durable(w); /* opened meanwhile */
    return true;
}

/* send_qos_msg starts delivery of a QoS 1/2 message in a free window slot;
 * `queued` says it comes from the queue (already logged as pmid, with its
 * seq and gate, whose reference it takes). */
static void send_qos_msg(bk_session *s, ep_msg *m, uint8_t qos, uint8_t retain, bool queued,
                         uint64_t pmid, uint64_t seq, bk_ticket *gate)
{
    uint16_t pid = next_pid(s);
    uint8_t state = qos == 1 ? BK_IF_PUBACK : BK_IF_PUBREC;
    if (queued) {
        bk_persist_msg_state(s, pmid, state, pid);
    } else {
        pmid = s->next_pmid++;
        gate = bk_persist_gate(s, qos);
        if (bk_persist_msg_put(s, pmid, qos, retain, state, pid, m, gate, &seq) != EP_EOK) {
            bk_ticket_unref(gate);
            return; /* the log refused it (counted there): not delivered */
        }
    }
    bk_inflight *f = inflight_push(s);
    if (f == NULL) {
        bk_ticket_unref(gate);
        bk_persist_msg_del(s, pmid);
        bk_count_drop(s->w, BK_DROP_NO_MEMORY, 1);
        return;
    }
    f->pid = pid;
    f->pmid = pmid;
    f->msg = ep_msg_ref(m);
    f->qos = qos;
    f->state = state;
    f->retain = retain;
    f->seq = seq;
    f->gate = gate;
    f->unsent = 0;
    /* QoS 2 to a persistent session: first sent once the routing's done
     * mark (or the message's own record) is on disk. */
    if (wait_for_disk(s, f))
        return;
    sent_first(f);
    ep_err err = bk_conn_send_publish(s->conn, m, qos, f->pid, retain, false);
    if (err == EP_ETOOBIG) {
        /* Too large for this client: discarded as if delivered (v5 4.13). */
        s->if_count--;
        ep_msg_unref(f->msg);
        bk_persist_msg_del(s, pmid);
        bk_count_drop(s->w, BK_DROP_TOO_LARGE, 1);
    }
    /* EP_EFULL: stays in flight and is resent on reconnect. */
}

void bk_session_pump(bk_session *s)
{
    while (s->conn && s->q_count > 0 && s->if_count < window_size(s)) {
        bk_qitem it = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_count--;
        atomic_fetch_sub_explicit(&s->w->ctr.queued, 1, memory_order_relaxed);
        s->q_bytes -= ep_msg_size(it.msg);
        if (expired(s, it.msg)) {
            if (it.qos)
                bk_persist_msg_del(s, it.pmid);
            bk_ticket_unref(it.gate);
            bk_count_drop(s->w, BK_DROP_EXPIRED, 1);
        } else if (it.qos == 0) {
            bk_conn_send_publish(s->conn, it.msg, 0, 0, it.retain, false);
        } else {
            send_qos_msg(s, it.msg, it.qos, it.retain, true, it.pmid, it.seq, it.gate);
        }
        ep_msg_unref(it.msg);
    }
    bk_session_update_flow(s);
}

void bk_session_deliver(bk_session *s, ep_msg *m, uint8_t opts, bool retained)
{
    uint8_t qos = opts & BK_OPT_QOS_MASK;
    if (m->qos < qos)
        qos = m->qos;
    uint8_t retain = retained ? 1 : ((opts & BK_OPT_RAP) ? m->retain : 0);
    if (expired(s, m)) {
        bk_count_drop(s->w, BK_DROP_EXPIRED, 1);
        return;
    }
    if (s->conn == NULL) {
        if (qos == 0)
            return; /* QoS 0 is not queued for offline sessions */
        queue_push_counted(s, m, qos, retain);
        return;
    }
    if (qos == 0) {
        /* A stalled reader must not grow memory: over the output limit,
         * QoS 0 is dropped (counted). */
        ep_err err = bk_conn_send_publish(s->conn, m, 0, 0, retain, false);
        if (err)
            bk_count_drop(s->w, err == EP_ETOOBIG ? BK_DROP_TOO_LARGE : BK_DROP_SLOW_CONSUMER, 1);
        return;
    }
    if (s->q_count == 0 && s->if_count < window_size(s)) {
        send_qos_msg(s, m, qos, retain, false, 0, 0, NULL);
        return;
    }
    queue_push_counted(s, m, qos, retain);
}

/* bk_session_resend repeats the in-flight window in order after a reconnect
 * (PUBLISH with DUP, or PUBREL for messages already PUBREC'd). */
void bk_session_resend(bk_session *s)
{
    for (uint32_t i = 0; i < s->if_count && s->conn; i++) {
        bk_inflight *f = &s->inflight[(s->if_head + i) % s->if_cap];
        if (f->state == BK_IF_PUBCOMP) {
            ep_mqtt_packet p = {.type = EP_MQTT_PUBREL};
            p.ack.packet_id = f->pid;
            bk_conn_send_packet(s->conn, &p);
        } else if (f->unsent && !send_ready(s->w, f->gate, f->seq)) {
            continue; /* bk_session_send_durable sends it */
        } else if (f->msg) {
            bool dup = !f->unsent;
            sent_first(f);
            bk_conn_send_publish(s->conn, f->msg, f->qos, f->pid, f->retain, dup);
        }
    }
    bk_session_pump(s);
}

/* bk_session_ack applies PUBACK/PUBREC/PUBCOMP from the client.
 * Returns EP_EOK, or EP_ENOTFOUND for an unknown packet id. */
ep_err bk_session_ack(bk_session *s, uint8_t type, uint16_t pid)
{
    uint32_t i;
    bk_inflight *f = NULL;
    for (i = 0; i < s->if_count; i++) {
        f = &s->inflight[(s->if_head + i) % s->if_cap];
        if (f->pid == pid)
            break;
    }
    if (i == s->if_count)
        return EP_ENOTFOUND;
    if (type == EP_MQTT_PUBREC) {
        if (f->state != BK_IF_PUBREC)
            return f->state == BK_IF_PUBCOMP ? EP_EOK : EP_ENOTFOUND;
        f->state = BK_IF_PUBCOMP;
        ep_msg_unref(f->msg);
        f->msg = NULL;
        bk_persist_msg_state(s, f->pmid, BK_IF_PUBCOMP, f->pid);
        return EP_EOK;
    }
    bk_flow_progress(s->flow, ep_loop_now(s->w->loop));
    if ((type == EP_MQTT_PUBACK && f->state != BK_IF_PUBACK) ||
        (type == EP_MQTT_PUBCOMP && f->state != BK_IF_PUBCOMP))
        return EP_ENOTFOUND;
    ep_msg_unref(f->msg);
    bk_ticket_unref(f->gate);
    bk_persist_msg_del(s, f->pmid);
    /* Remove slot i keeping send order (acks normally arrive in order, so
     * this is the head and costs nothing). */
    for (uint32_t j = i; j > 0; j--)
        s->inflight[(s->if_head + j) % s->if_cap] = s->inflight[(s->if_head + j - 1) % s->if_cap];
    s->if_head = (s->if_head + 1) % s->if_cap;
    s->if_count--;
    if (s->if_count == 0)
        s->if_head = 0;
    bk_session_pump(s);
    return EP_EOK;
}

bk_qos2_in *bk_session_qos2_find(bk_session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->n_qos2_in; i++)
        if (s->qos2_in[i].pid == pid)
            return &s->qos2_in[i];
    return NULL;
}

bool bk_session_qos2_has(bk_session *s, uint16_t pid) { return bk_session_qos2_find(s, pid); }

/* The entry takes the routing of the PUBLISH being handled (w->cur_ticket,
 * when it has an origin): its id goes into the record. */
ep_err bk_session_qos2_add(bk_session *s, uint16_t pid)
{
    if (s->n_qos2_in == s->cap_qos2_in) {
        uint32_t cap = s->cap_qos2_in ? s->cap_qos2_in * 2 : 4;
        bk_qos2_in *v = realloc(s->qos2_in, cap * sizeof(*v));
        if (v == NULL)
            return EP_ENOMEM;
        s->qos2_in = v;
        s->cap_qos2_in = cap;
    }
    bk_ticket *t = s->w->cur_ticket;
    bk_qos2_in *e = &s->qos2_in[s->n_qos2_in++];
    *e = (bk_qos2_in){.pid = pid};
    if (t && t->origin) {
        e->origin = t->origin;
        e->tk = bk_ticket_ref(t);
    }
    bk_persist_qos2(s, e, true);
    return EP_EOK;
}

bool bk_session_qos2_remove(bk_session *s, uint16_t pid)
{
    bk_qos2_in *e = bk_session_qos2_find(s, pid);
    if (e == NULL)
        return false;
    bk_qos2_in gone = *e;
    *e = s->qos2_in[--s->n_qos2_in];
    bk_persist_qos2(s, &gone, false);
    bk_ticket_unref(gone.tk);
    return true;
}

void bk_session_qos2_done(bk_session *s, uint16_t pid)
{
    bk_qos2_in *e = bk_session_qos2_find(s, pid);
    if (e) {
        e->done = 1;
        bk_persist_qos2_done(s, e);
    }
}

bool bk_session_qos2_finish(bk_session *s, bk_ticket *t)
{
    for (uint32_t i = 0; i < s->n_qos2_in; i++) {
        bk_qos2_in *e = &s->qos2_in[i];
        if (e->tk == t) {
            if (!e->done) {
                e->done = 1;
                bk_persist_qos2_done(s, e);
            }
            return true;
        }
    }
    return false;
}

uint32_t bk_session_collect_subids(bk_session *s, const ep_msg *m, uint32_t *ids, uint32_t max)
{
    uint32_t n = 0;
    ep_mqtt_slice topic = ep_mqtt_slice_make(m->topic, m->topic_len);
    for (uint32_t i = 0; i < s->nsubs && n < max; i++) {
        if (s->subs[i].sub_id && ep_mqtt_topic_match(s->subs[i].match, topic))
            ids[n++] = s->subs[i].sub_id;
    }
    return n;
}

void bk_sessions_free_all(bk_worker *w)
{
    for (uint32_t i = 0; i < w->nbuckets; i++) {
        while (w->by_cid[i]) {
            bk_session *s = w->by_cid[i];
            ep_msg_unref(s->will);
            s->will = NULL;
            ep_timer_stop(&s->will_timer);
            bk_session_destroy(s);
        }
    }
    free(w->by_cid);
    free(w->by_id);
    w->by_cid = w->by_id = NULL;
    w->nbuckets = 0;
    wait_send_clear(w);
    bk_persist_worker_fini(w);
}
