/*
 * spool.c - the optional disk spool of the MQTT client: QoS 1/2
 * publications written to a core/wal log so that they survive a restart of
 * the client process (docs/mqtt-client.md "Disk spool").
 *
 * Owns the log and the replay of its records. Each accepted publication is
 * a PUT record with a client-assigned key (increasing, so replay order is
 * publication order); its completion writes a DONE record with the key.
 * Compaction writes a PUT for every message still pending. Everything runs
 * on the client's loop thread, which is also the log's owner thread.
 */
#include <stdlib.h>
#include <string.h>

#include "core/wal.h"
#include "svc/mqttc/mqttc_int.h"

enum { SP_PUT = 1, SP_DONE = 2, SP_PUT_HDR = 28 };

struct ep_mqttc__spool {
    ep_wal *wal;
    uint64_t next_key;
    uint64_t live;      /* snapshot size of the pending messages */
    uint64_t max_bytes; /* disk budget, 0 = none; a quarter of it holds messages */
};

/* Replay state: PUT records in key order, DONE ones cleared. */
typedef struct sp_rec {
    uint64_t key;
    ep_msg *msg;
} sp_rec;

typedef struct sp_replay {
    sp_rec *v;
    size_t n, cap;
    uint64_t max_key;
    ep_err err;
} sp_replay;

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* PUT: key u64, qos u8, retain u8, has_expiry u8, 0 u8, expiry u32,
 * topic_len u16, 0 u16, props_len u32, payload_len u32, then the bytes. */
static size_t put_header(uint8_t h[SP_PUT_HDR], uint64_t key, const mq_op *op)
{
    const ep_msg *m = op->msg;
    memset(h, 0, SP_PUT_HDR);
    put_u64(h, key);
    h[8] = op->qos;
    h[9] = op->retain;
    h[10] = m->has_expiry;
    put_u32(h + 12, m->expiry_interval);
    put_u16(h + 16, m->topic_len);
    put_u32(h + 20, m->props_len);
    put_u32(h + 24, m->payload_len);
    return SP_PUT_HDR + (size_t)m->topic_len + m->props_len + m->payload_len;
}

/* The size of a message's PUT record in a snapshot (live estimate). */
static uint64_t rec_size(const ep_msg *m)
{
    return EP_WAL__REC_HDR + SP_PUT_HDR + (uint64_t)m->topic_len + m->props_len + m->payload_len;
}

static int put_iov(struct iovec iov[4], uint8_t h[SP_PUT_HDR], const ep_msg *m)
{
    iov[0] = (struct iovec){h, SP_PUT_HDR};
    iov[1] = (struct iovec){m->topic, m->topic_len};
    iov[2] = (struct iovec){m->props, m->props_len};
    iov[3] = (struct iovec){m->payload, m->payload_len};
    return 4;
}

/* ---- replay ----------------------------------------------------------- */

static ep_err replay_put(sp_replay *r, const ep_wal_rec *rec)
{
    const uint8_t *d = rec->data;
    if (rec->len < SP_PUT_HDR)
        return EP_EOK; /* not ours: skipped */
    uint64_t key = get_le(d, 8);
    size_t tl = (size_t)get_le(d + 16, 2), pl = (size_t)get_le(d + 20, 4);
    size_t yl = (size_t)get_le(d + 24, 4);
    if (SP_PUT_HDR + tl + pl + yl != rec->len || d[8] < 1 || d[8] > 2 ||
        (r->n && key <= r->v[r->n - 1].key))
        return EP_EOK;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        sp_rec *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL)
            return EP_ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    const uint8_t *t = d + SP_PUT_HDR;
    ep_msg *m = ep_msg_new((const char *)t, tl, t + tl, pl, t + tl + pl, yl);
    if (m == NULL)
        return EP_ENOMEM;
    m->qos = d[8];
    m->retain = d[9] != 0;
    m->has_expiry = d[10] != 0;
    m->expiry_interval = (uint32_t)get_le(d + 12, 4);
    r->v[r->n++] = (sp_rec){key, m};
    if (key > r->max_key)
        r->max_key = key;
    return EP_EOK;
}

static void replay_done(sp_replay *r, const ep_wal_rec *rec)
{
    if (rec->len != 8)
        return;
    uint64_t key = get_le(rec->data, 8);
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->v[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < r->n && r->v[lo].key == key) {
        ep_msg_unref(r->v[lo].msg);
        r->v[lo].msg = NULL;
    }
    if (key > r->max_key)
        r->max_key = key;
}

static ep_err replay_cb(void *ud, const ep_wal_rec *rec)
{
    sp_replay *r = ud;
    if (rec->type == SP_PUT)
        return replay_put(r, rec);
    if (rec->type == SP_DONE)
        replay_done(r, rec);
    return EP_EOK;
}

/* Moves the pending messages of r into the queue, in key order. */
static ep_err replay_queue(ep_mqttc *c, sp_replay *r)
{
    uint64_t now = ep_loop_now(c->loop);
    for (size_t i = 0; i < r->n; i++) {
        ep_msg *m = r->v[i].msg;
        if (m == NULL)
            continue;
        mq_op *op = calloc(1, sizeof(*op));
        if (op == NULL)
            return EP_ENOMEM;
        r->v[i].msg = NULL;
        op->kind = MQ_OP_PUB;
        op->msg = m;
        op->qos = m->qos;
        op->retain = m->retain;
        op->spool_key = r->v[i].key;
        op->state = MQ_ST_QUEUED;
        op->acct = ep_msg_size(m);
        /* The lifetime of a message with an expiry restarts here: the
         * loop clock of the previous process is meaningless. */
        m->created_ms = now;
        if (m->has_expiry)
            m->expiry_at_ms = now + (uint64_t)m->expiry_interval * 1000u;
        ep_mqttc__list_push(&c->queue, op);
        c->queued_bytes += op->acct;
        c->spool->live += rec_size(m);
        c->st.spooled++;
        c->st.spool_replayed++;
    }
    return EP_EOK;
}

/* Undoes replay_queue after a failure (the messages stay in the log). */
static void unqueue_all(ep_mqttc *c)
{
    mq_op *op;
    while ((op = ep_mqttc__list_pop(&c->queue)) != NULL)
        ep_mqttc__op_free(op);
    c->queued_bytes = 0;
    c->st.spooled = 0;
    c->st.spool_replayed = 0;
}

/* ---- compaction ------------------------------------------------------- */

static ep_err snap_list(ep_wal_snap *s, const mq_list *l)
{
    for (const mq_op *op = l->head; op; op = op->next) {
        if (op->spool_key == 0)
            continue;
        uint8_t h[SP_PUT_HDR];
        struct iovec iov[4];
        put_header(h, op->spool_key, op);
        ep_err err = ep_wal_snap_putv(s, SP_PUT, iov, put_iov(iov, h, op->msg));
        if (err)
            return err;
    }
    return EP_EOK;
}

/* In-flight messages were queued before the queued ones: key order. */
static ep_err snapshot_cb(ep_wal_snap *s, void *ud)
{
    ep_mqttc *c = ud;
    ep_err err = snap_list(s, &c->inflight);
    return err ? err : snap_list(s, &c->queue);
}

ep_err ep_mqttc__spool_compact(ep_mqttc *c)
{
    return c->spool ? ep_wal_compact(c->spool->wal) : EP_ESTATE;
}

/* ---- API -------------------------------------------------------------- */

ep_err ep_mqttc__spool_open(ep_mqttc *c, const char *dir, uint64_t max_bytes)
{
    ep_mqttc__spool *sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return EP_ENOMEM;
    ep_wal_opts o;
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.durability = EP_WAL_SYNC;
    o.max_bytes = max_bytes;
    if (max_bytes && max_bytes < 256u * 1024u * 1024u)
        o.segment_bytes = max_bytes / 64 > 4096 ? max_bytes / 64 : 4096; /* fine-grained budget */
    o.snapshot = snapshot_cb;
    o.snapshot_ud = c;
    o.owner = c->loop;
    sp_replay r;
    memset(&r, 0, sizeof(r));
    ep_wal_report rep;
    ep_err err = ep_wal_open(&sp->wal, &o, replay_cb, &r, &rep);
    if (err == EP_EOK) {
        c->spool = sp;
        sp->max_bytes = max_bytes;
        sp->next_key = r.max_key + 1;
        err = replay_queue(c, &r);
        if (err)
            unqueue_all(c); /* the caller destroys the client */
        ep_wal_set_live_bytes(sp->wal, sp->live);
        if (rep.torn_bytes || rep.nlosses)
            EP_LOG_WARN(MQC_LOG, "%s: spool %s: %llu torn and %llu corrupt bytes dropped",
                        c->client_id, dir, (unsigned long long)rep.torn_bytes,
                        (unsigned long long)rep.lost_bytes);
        if (c->st.spool_replayed)
            EP_LOG_INFO(MQC_LOG, "%s: %llu spooled messages queued again from %s", c->client_id,
                        (unsigned long long)c->st.spool_replayed, dir);
    } else {
        free(sp);
    }
    for (size_t i = 0; i < r.n; i++)
        ep_msg_unref(r.v[i].msg);
    free(r.v);
    return err;
}

void ep_mqttc__spool_close(ep_mqttc *c)
{
    if (c->spool == NULL)
        return;
    ep_wal_close(c->spool->wal);
    free(c->spool);
    c->spool = NULL;
}

/* The oldest spooled message still queued (in-flight ones are on the
 * wire and are not dropped), or NULL. */
static mq_op *oldest_queued(ep_mqttc *c)
{
    for (mq_op *op = c->queue.head; op; op = op->next)
        if (op->spool_key)
            return op;
    return NULL;
}

static ep_err append_put(ep_mqttc__spool *sp, mq_op *op)
{
    uint8_t h[SP_PUT_HDR];
    struct iovec iov[4];
    put_header(h, sp->next_key, op);
    return ep_wal_appendv(sp->wal, NULL, SP_PUT, iov, put_iov(iov, h, op->msg), NULL, NULL, NULL);
}

/* Whether a message of rec bytes fits the live share of the budget. */
static bool fits(const ep_mqttc__spool *sp, uint64_t rec)
{
    return sp->max_bytes == 0 || sp->live + rec <= sp->max_bytes / 4;
}

ep_err ep_mqttc__spool_put(ep_mqttc *c, mq_op *op)
{
    ep_mqttc__spool *sp = c->spool;
    uint64_t rec = rec_size(op->msg);
    if (sp->max_bytes && rec > sp->max_bytes / 4)
        return EP_ETOOBIG;
    while (!fits(sp, rec) && c->policy == EP_MQTTC_DROP_OLDEST) {
        mq_op *old = oldest_queued(c);
        if (old == NULL)
            break;
        ep_mqttc__op_complete(c, &c->queue, old, EP_EFULL, 0);
    }
    if (!fits(sp, rec))
        return EP_EFULL;
    ep_wal_stats ws;
    ep_wal_stats_get(sp->wal, &ws);
    if (ws.compact_wanted)
        (void)ep_wal_compact(sp->wal); /* keeps room for the next snapshot */
    ep_err err = append_put(sp, op);
    if (err == EP_EFULL && ep_wal_compact(sp->wal) == EP_EOK)
        err = append_put(sp, op);
    if (err == EP_EOK)
        err = ep_wal_sync(sp->wal);
    if (err)
        return err == EP_EAGAIN ? EP_EFULL : err;
    op->spool_key = sp->next_key++;
    sp->live += rec;
    ep_wal_set_live_bytes(sp->wal, sp->live);
    c->st.spooled++;
    return EP_EOK;
}

void ep_mqttc__spool_done(ep_mqttc *c, mq_op *op)
{
    ep_mqttc__spool *sp = c->spool;
    if (sp == NULL || op->spool_key == 0)
        return;
    uint8_t k[8];
    put_u64(k, op->spool_key);
    op->spool_key = 0;
    if (ep_wal_append(sp->wal, NULL, SP_DONE, k, sizeof(k), NULL, NULL, NULL) == EP_EFULL)
        (void)ep_wal_compact(sp->wal); /* the snapshot leaves the message out */
    uint64_t sz = rec_size(op->msg);
    sp->live = sp->live > sz ? sp->live - sz : 0;
    ep_wal_set_live_bytes(sp->wal, sp->live);
    if (c->st.spooled)
        c->st.spooled--;
}
