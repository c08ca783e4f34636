/*
 * persist.c - the broker's state in the write-ahead log (core/wal.h):
 * record formats, hooks called at each mutation, replay at startup,
 * snapshots for compaction, and durability tickets.
 *
 * What is logged: persistent sessions (expiry > 0) with their expiry and
 * will, their subscriptions, their queued and in-flight QoS 1/2 messages
 * (with the QoS 2 state), their incoming QoS 2 packet ids awaiting PUBREL,
 * and retained messages. Non-persistent sessions and QoS 0 are never
 * logged. Every record is a whole-value upsert or a delete keyed by an id
 * (client id; client id + filter; client id + message id; topic), because a
 * snapshot shows the state at some moment after its cut and the records
 * from the cut on are replayed on top of it (docs/persistence.md).
 *
 * Threads. A hook runs on the worker owning the session (or, for retained
 * messages, the worker handling the PUBLISH) and appends from there; in
 * every mode the append carries the ticket of the PUBLISH being handled
 * (w->cur_ticket) and its completion (after the fdatasync in sync mode,
 * after the write() in periodic and none) comes back on that worker's port.
 * Memory state and record are changed in the same loop callback, so a
 * worker never stops between the two. The log's owner thread is the
 * persistence thread (its own loop): automatic compaction runs there, and
 * its snapshot callback first asks every worker to pause at a barrier (a
 * post on each loop), reads the whole state while they wait, then lets
 * them go. Replay runs in ep_broker_start before any worker thread exists.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/wal.h"
#include "svc/broker/broker_int.h"

/* Record types. Never renumber: they are on disk. */
enum {
    R_SESSION = 1,     /* cid, version u8, expiry u32, has_will u8 [will_delay u32, msg] */
    R_SESSION_DEL = 2, /* cid: the session and everything it owns */
    R_SUB = 3,         /* cid, filter, opts u8, sub_id u32 */
    R_UNSUB = 4,       /* cid, filter */
    R_RETAIN = 5,      /* msg (topic inside) */
    R_RETAIN_DEL = 6,  /* topic */
    R_MSG = 7,         /* cid, pmid u64, qos u8, retain u8, state u8, pid u16, has_msg u8 [msg]
                        * [origin u64, when not 0] */
    R_MSG_STATE = 8,   /* cid, pmid u64, state u8, pid u16 */
    R_MSG_DEL = 9,     /* cid, pmid u64 */
    R_QOS2 = 10,       /* cid, pid u16 [origin u64]: incoming QoS 2 awaiting PUBREL */
    R_QOS2_DEL = 11,   /* cid, pid u16 */
    R_QOS2_DONE = 12,  /* cid, pid u16: every delivery of that PUBLISH is logged */
};

/* How long QoS > 0 publishes are refused after the log said it was full
 * before trying again (the log itself probes the file system every 250 ms). */
#define FULL_BACKOFF_MS 250

typedef struct bk_persist {
    ep_wal *wal;
    int mode; /* ep_broker_durability */
    ep_loop *loop;
    pthread_t thread;
    bool thread_started;
    atomic_bool on;
    atomic_ullong full_until_ms;
    atomic_ullong appends, append_failed, refused_full;
    uint64_t replayed, malformed, dropped_bytes, expired;
    /* Routing ids (origins): the next one, and at replay the highest seen
     * and what was removed of routings not marked done. */
    atomic_ullong next_origin;
    uint64_t max_origin, unfinished, unfinished_msgs;
    atomic_ullong snapshot_records;
    /* compaction barrier */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    uint64_t gen, released;
    int paused;
    bool workers_running;
} bk_persist;

static _Atomic(ep_histogram *) commit_hist;
/* Guards b->persist against a metrics scrape while the log is closed. */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

void bk_persist_set_histogram(ep_broker *b, ep_histogram *h)
{
    (void)b;
    atomic_store(&commit_hist, h);
}

bool bk_persist_on(const ep_broker *b)
{
    return b->persist && atomic_load_explicit(&b->persist->on, memory_order_relaxed);
}

/* Acknowledgements wait for the log in every mode: in sync until the
 * fdatasync, in periodic and none until the write() (the log completes
 * there), so a kill -9 never loses an acknowledged message and a fast
 * publisher is throttled by the disk instead of growing the backlog. */
bool bk_persist_sync(const ep_broker *b) { return bk_persist_on(b); }

bool bk_persist_full(bk_worker *w)
{
    bk_persist *p = w->b->persist;
    if (p == NULL)
        return false;
    uint64_t until = atomic_load_explicit(&p->full_until_ms, memory_order_relaxed);
    return until && ep_clock_mono_ms() < until;
}

void bk_persist_count_refused(ep_broker *b)
{
    if (b->persist)
        atomic_fetch_add_explicit(&b->persist->refused_full, 1, memory_order_relaxed);
}

/* ---- tickets ---- */

bk_ticket *bk_ticket_new(void)
{
    bk_ticket *t = malloc(sizeof(*t));
    if (t == NULL)
        return NULL;
    atomic_init(&t->refs, 1);
    atomic_init(&t->pending, 1);
    atomic_init(&t->status, EP_EOK);
    t->t0_ns = ep_clock_mono_ns();
    t->qos2_pid = 0;
    t->qos2_rec = 0;
    t->origin = 0;
    t->session_id = 0;
    t->home = NULL;
    t->b = NULL;
    atomic_init(&t->gate, BK_GATE_CLOSED);
    atomic_init(&t->wake, 0);
    t->fin_next = NULL;
    return t;
}

void bk_ticket_unref(bk_ticket *t)
{
    if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        free(t);
}

static void routing_settled(bk_ticket *t);

void bk_ticket_settle(bk_ticket *t)
{
    if (t && atomic_fetch_sub_explicit(&t->pending, 1, memory_order_acq_rel) == 1) {
        ep_histogram *h = atomic_load_explicit(&commit_hist, memory_order_relaxed);
        if (h)
            ep_histogram_observe_ns(h, ep_clock_mono_ns() - t->t0_ns);
        if (t->origin)
            routing_settled(t);
    }
}

void bk_ticket_done(bk_ticket *t)
{
    if (t == NULL)
        return;
    bk_ticket_settle(t);
    bk_ticket_unref(t);
}

void bk_ticket_fail(bk_ticket *t, ep_err err)
{
    int expected = EP_EOK;
    if (t && err)
        atomic_compare_exchange_strong(&t->status, &expected, (int)err);
}

/* ---- encoding ---- */

typedef struct penc {
    struct iovec iov[16];
    int n;
    bool last_inline;
    uint8_t sc[160];
    size_t scn;
} penc;

static void pe_inline(penc *e, const void *p, size_t len)
{
    uint8_t *d = e->sc + e->scn;
    memcpy(d, p, len);
    e->scn += len;
    if (e->last_inline) {
        e->iov[e->n - 1].iov_len += len;
    } else {
        e->iov[e->n].iov_base = d;
        e->iov[e->n].iov_len = len;
        e->n++;
        e->last_inline = true;
    }
}

static void pe_ref(penc *e, const void *p, size_t len)
{
    if (len == 0)
        return;
    e->iov[e->n].iov_base = (void *)(uintptr_t)p;
    e->iov[e->n].iov_len = len;
    e->n++;
    e->last_inline = false;
}

static void pe_u8(penc *e, uint8_t v) { pe_inline(e, &v, 1); }

static void pe_u16(penc *e, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    pe_inline(e, b, 2);
}

static void pe_u32(penc *e, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    pe_inline(e, b, 4);
}

static void pe_u64(penc *e, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    pe_inline(e, b, 8);
}

static void pe_str(penc *e, const void *p, size_t len)
{
    pe_u16(e, (uint16_t)len);
    pe_ref(e, p, len);
}

/* A message: flags u8 (bit 0: expiry), qos u8, retain u8, expiry interval
 * u32, expiry deadline (wall clock ms) u64, topic len u16, props len u32,
 * payload len u32, then topic, props, payload. */
static void pe_msg(penc *e, const ep_msg *m)
{
    uint64_t deadline = 0;
    if (m->has_expiry) {
        uint64_t now = ep_clock_mono_ms();
        uint64_t left = m->expiry_at_ms > now ? m->expiry_at_ms - now : 0;
        deadline = ep_clock_wall_ms() + left;
    }
    pe_u8(e, m->has_expiry ? 1 : 0);
    pe_u8(e, m->qos);
    pe_u8(e, m->retain);
    pe_u32(e, m->expiry_interval);
    pe_u64(e, deadline);
    pe_u16(e, m->topic_len);
    pe_u32(e, m->props_len);
    pe_u32(e, m->payload_len);
    pe_ref(e, m->topic, m->topic_len);
    pe_ref(e, m->props, m->props_len);
    pe_ref(e, m->payload, m->payload_len);
}

typedef struct pdec {
    const uint8_t *p;
    size_t n, off;
    bool bad;
} pdec;

static const uint8_t *pd_take(pdec *d, size_t len)
{
    if (d->bad || len > d->n - d->off) {
        d->bad = true;
        return NULL;
    }
    const uint8_t *r = d->p + d->off;
    d->off += len;
    return r;
}

static uint64_t pd_uint(pdec *d, int bytes)
{
    const uint8_t *b = pd_take(d, (size_t)bytes);
    uint64_t v = 0;
    if (b == NULL)
        return 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

#define pd_u8(d) ((uint8_t)pd_uint((d), 1))
#define pd_u16(d) ((uint16_t)pd_uint((d), 2))
#define pd_u32(d) ((uint32_t)pd_uint((d), 4))
#define pd_u64(d) pd_uint((d), 8)

static ep_mqtt_slice pd_str(pdec *d)
{
    uint16_t len = pd_u16(d);
    const uint8_t *p = pd_take(d, len);
    return p ? ep_mqtt_slice_make(p, len) : (ep_mqtt_slice){NULL, 0};
}

/* Decodes a message; *expired is set (and NULL returned) when its expiry
 * passed while the broker was down. NULL with d->bad on bad data. */
static ep_msg *pd_msg(pdec *d, bool *expired)
{
    uint8_t flags = pd_u8(d), qos = pd_u8(d), retain = pd_u8(d);
    uint32_t interval = pd_u32(d);
    uint64_t deadline = pd_u64(d);
    uint16_t tlen = pd_u16(d);
    uint32_t plen = pd_u32(d), blen = pd_u32(d);
    const uint8_t *topic = pd_take(d, tlen);
    const uint8_t *props = pd_take(d, plen);
    const uint8_t *payload = pd_take(d, blen);
    *expired = false;
    if (d->bad || qos > 2)
        return d->bad = true, NULL;
    uint64_t now = ep_clock_mono_ms(), wall = ep_clock_wall_ms();
    if ((flags & 1) && deadline <= wall) {
        *expired = true;
        return NULL;
    }
    ep_msg *m = ep_msg_new((const char *)topic, tlen, plen ? props : NULL, plen,
                           blen ? payload : NULL, blen);
    if (m == NULL)
        return NULL;
    m->qos = qos;
    m->retain = retain ? 1 : 0;
    m->created_ms = now;
    if (flags & 1) {
        m->has_expiry = 1;
        m->expiry_interval = interval;
        m->expiry_at_ms = now + (deadline - wall);
    }
    return m;
}

/* ---- appending ---- */

static void on_appended(void *ud, uint64_t seq, ep_err status)
{
    bk_ticket *t = ud;
    (void)seq;
    bk_ticket_fail(t, status);
    bk_ticket_done(t);
}

static void append_failed(bk_worker *w, ep_err err)
{
    bk_persist *p = w->b->persist;
    atomic_fetch_add_explicit(&p->append_failed, 1, memory_order_relaxed);
    w->cur_fail = err;
    if (err == EP_EFULL) /* EP_EAGAIN (backlog) refuses only this message */
        atomic_store_explicit(&p->full_until_ms, ep_clock_mono_ms() + FULL_BACKOFF_MS,
                              memory_order_relaxed);
    if (w->persist_rl.period_ms == 0) {
        w->persist_rl.period_ms = 10000;
        w->persist_rl.burst = 1;
    }
    if (ep_ratelimit_allow(&w->persist_rl, ep_loop_now(w->loop)))
        EP_LOG_WARN(BK_LOG, "persistence: log append failed: %s%s", ep_strerror(err),
                    err == EP_EFULL || err == EP_EAGAIN
                        ? " (disk budget or file system full); QoS 1/2 publishes that need "
                          "it are refused with 0x97 Quota exceeded"
                        : "");
}

static ep_err p_append(bk_worker *w, uint8_t type, penc *e)
{
    bk_persist *p = w->b->persist;
    bk_ticket *t = w->cur_ticket;
    ep_err err;
    if (t && w->wal_port) {
        bk_ticket_hold(t);
        err = ep_wal_appendv(p->wal, w->wal_port, type, e->iov, e->n, on_appended, t, NULL);
        if (err) {
            bk_ticket_fail(t, err);
            bk_ticket_done(t);
        }
    } else {
        err = ep_wal_appendv(p->wal, NULL, type, e->iov, e->n, NULL, NULL, NULL);
    }
    atomic_fetch_add_explicit(&p->appends, 1, memory_order_relaxed);
    if (err)
        append_failed(w, err);
    return err;
}

/* A QoS 2 message record whose completion also releases the first send. */
typedef struct put_done {
    bk_worker *w;
    bk_ticket *t;
} put_done;

static void on_put_done(void *ud, uint64_t seq, ep_err status)
{
    put_done *pd = ud;
    bk_worker *w = pd->w;
    if (pd->t) {
        bk_ticket_fail(pd->t, status);
        bk_ticket_done(pd->t);
    }
    free(pd);
    if (seq > w->durable_seq)
        w->durable_seq = seq; /* the log is durable as a prefix */
    bk_session_send_durable(w);
}

static ep_err p_append_wait(bk_worker *w, uint8_t type, penc *e, uint64_t *seq)
{
    bk_persist *p = w->b->persist;
    put_done *pd = malloc(sizeof(*pd));
    *seq = 0;
    if (pd == NULL)
        return p_append(w, type, e);
    pd->w = w;
    pd->t = bk_ticket_hold(w->cur_ticket);
    ep_err err = ep_wal_appendv(p->wal, w->wal_port, type, e->iov, e->n, on_put_done, pd, seq);
    atomic_fetch_add_explicit(&p->appends, 1, memory_order_relaxed);
    if (err) {
        if (pd->t) {
            bk_ticket_fail(pd->t, err);
            bk_ticket_done(pd->t);
        }
        free(pd);
        *seq = 0;
        append_failed(w, err);
    }
    return err;
}

static bool logged(const bk_session *s) { return s->plogged && bk_persist_on(s->w->b); }

/* ---- routings: QoS 2 exactly once across a crash ----
 *
 * A QoS 2 PUBLISH from a persistent session is a routing with an origin id.
 * Its records reach the disk in this order (the log is durable as a
 * prefix): the incoming id with the origin (R_QOS2), the deliveries, each
 * with the origin (R_MSG), and, once all of them are on disk, the done mark
 * (R_QOS2_DONE); the PUBREC waits for the done mark. Replay removes the
 * deliveries of an origin whose id is not marked done, and forgets the id:
 * the publisher, never acknowledged, sends the PUBLISH again and it is
 * routed once more. That is safe because no client has such a delivery: a
 * QoS 2 delivery to a persistent session is first sent only when its
 * routing's gate opens, after the done mark is on disk.
 *
 * The done mark is written on the publisher's worker (the home), by the
 * acknowledgement path (bk_conn_ack) or, when the last pending unit settles
 * elsewhere or the publisher is gone, by fin_run: the settling thread pushes
 * the ticket on the home's fin list and posts fin_run there. When the mark
 * completes, the gate opens and the workers that wait for it are woken. */

static void wake_run(ep_loop *loop, void *arg)
{
    (void)loop;
    bk_session_send_durable(arg);
}

/* Home worker w: the gate of t opens; waiting workers send what it held. */
static void gate_open(bk_worker *w, bk_ticket *t)
{
    atomic_store(&t->gate, BK_GATE_OPEN);
    uint64_t mask = atomic_exchange(&t->wake, 0);
    ep_broker *b = t->b;
    for (int i = 0; mask && i < b->nworkers; i++) {
        if (!(mask >> (i % 64) & 1u))
            continue;
        bk_worker *o = b->workers[i];
        if (o == w)
            bk_session_send_durable(w);
        else if (ep_loop_post(o->loop, wake_run, o) != EP_EOK)
            EP_LOG_WARN(BK_LOG, "persistence: cannot wake worker %d (out of memory)", i);
    }
}

bool bk_persist_gate_wait(bk_worker *w, bk_ticket *g)
{
    atomic_fetch_or(&g->wake, 1ull << (w->idx % 64));
    return atomic_load(&g->gate) == BK_GATE_OPEN;
}

bk_ticket *bk_persist_gate(bk_session *s, uint8_t qos)
{
    bk_ticket *t = s->w->cur_ticket;
    if (qos != 2 || t == NULL || t->origin == 0 || !logged(s) || bk_gate_open(t))
        return NULL;
    return bk_ticket_ref(t);
}

void bk_persist_routing(bk_ticket *t, bk_session *s)
{
    if (t == NULL || !logged(s))
        return;
    t->origin = atomic_fetch_add(&s->w->b->persist->next_origin, 1);
    t->session_id = s->id;
    t->home = s->w;
    t->b = s->w->b;
}

static void on_gate_done(void *ud, uint64_t seq, ep_err status)
{
    bk_ticket *t = ud;
    bk_worker *w = t->home;
    if (seq > w->durable_seq)
        w->durable_seq = seq; /* the log is durable as a prefix */
    /* After a failure the log no longer accepts anything: the deliveries
     * are released all the same (the PUBREC reports the failure). */
    gate_open(w, t);
    bk_session_send_durable(w);
    bk_ticket_fail(t, status);
    bk_ticket_done(t);
}

/* Home worker: the deliveries of t are all on disk. */
static void routing_finish(bk_worker *w, bk_ticket *t)
{
    if (atomic_load(&t->gate) != BK_GATE_QUEUED)
        return; /* the acknowledgement path wrote the done mark */
    bk_session *s = bk_session_find_id(w, t->session_id);
    if (s && t->qos2_rec && atomic_load(&t->status) == EP_EOK) {
        t->qos2_rec = 0; /* the acknowledgement path must not write it again */
        bk_ticket *saved = w->cur_ticket;
        atomic_fetch_add(&t->pending, 1);
        w->cur_ticket = t;
        bk_session_qos2_finish(s, t);
        w->cur_ticket = saved;
        bk_ticket_settle(t);
    }
    /* No mark to wait for (failed, publisher gone, id already released):
     * nothing can make the deliveries disappear at a restart any more
     * than it could before, so they go out now. */
    if (atomic_load(&t->gate) == BK_GATE_QUEUED)
        gate_open(w, t);
}

static void fin_run(ep_loop *loop, void *arg)
{
    bk_worker *w = arg;
    (void)loop;
    bk_ticket *t = atomic_exchange(&w->fin_head, NULL), *fifo = NULL;
    while (t) { /* the list is LIFO: finish in arrival order */
        bk_ticket *next = t->fin_next;
        t->fin_next = fifo;
        fifo = t;
        t = next;
    }
    while (fifo) {
        bk_ticket *next = fifo->fin_next;
        routing_finish(w, fifo);
        bk_ticket_unref(fifo);
        fifo = next;
    }
}

/* Any thread: the last pending unit of routing t settled. */
static void routing_settled(bk_ticket *t)
{
    int closed = BK_GATE_CLOSED;
    if (atomic_load(&t->b->stopped) ||
        !atomic_compare_exchange_strong(&t->gate, &closed, BK_GATE_QUEUED))
        return;
    bk_worker *w = t->home;
    bk_ticket_ref(t);
    bk_ticket *head = atomic_load(&w->fin_head);
    do
        t->fin_next = head;
    while (!atomic_compare_exchange_weak(&w->fin_head, &head, t));
    if (ep_loop_post(w->loop, fin_run, w) != EP_EOK)
        EP_LOG_WARN(BK_LOG, "persistence: cannot post to worker %u (out of memory)", w->idx);
}

void bk_persist_worker_fini(bk_worker *w)
{
    bk_ticket *t = atomic_exchange(&w->fin_head, NULL);
    while (t) {
        bk_ticket *next = t->fin_next;
        bk_ticket_unref(t);
        t = next;
    }
}

static void enc_session(penc *e, const bk_session *s)
{
    pe_str(e, s->client_id, s->client_id_len);
    pe_u8(e, s->version);
    pe_u32(e, s->expiry_interval);
    pe_u8(e, s->will ? 1 : 0);
    if (s->will) {
        pe_u32(e, s->will_delay);
        pe_msg(e, s->will);
    }
}

static void enc_sub(penc *e, const bk_session *s, const bk_sub *sub)
{
    pe_str(e, s->client_id, s->client_id_len);
    pe_str(e, sub->filter, sub->filter_len);
    pe_u8(e, sub->opts);
    pe_u32(e, sub->sub_id);
}

static void enc_msg(penc *e, const bk_session *s, uint64_t pmid, uint8_t qos, uint8_t retain,
                    uint8_t state, uint16_t pid, const ep_msg *m, uint64_t origin)
{
    pe_str(e, s->client_id, s->client_id_len);
    pe_u64(e, pmid);
    pe_u8(e, qos);
    pe_u8(e, retain);
    pe_u8(e, state);
    pe_u16(e, pid);
    pe_u8(e, m ? 1 : 0);
    if (m)
        pe_msg(e, m);
    if (origin)
        pe_u64(e, origin);
}

static void enc_qos2(penc *e, const bk_session *s, uint16_t pid, uint64_t origin)
{
    pe_str(e, s->client_id, s->client_id_len);
    pe_u16(e, pid);
    if (origin)
        pe_u64(e, origin);
}

/* The origin a delivery is still tied to: none once its gate is open. */
static uint64_t gate_origin(bk_ticket *g) { return bk_gate_open(g) ? 0 : g->origin; }

/* A sink is either the snapshot being written or the log (appends). */
typedef struct psink {
    ep_wal_snap *snap;
    bk_worker *w;
    uint64_t records;
} psink;

static ep_err sink_put(psink *k, uint8_t type, penc *e)
{
    k->records++;
    if (k->snap)
        return ep_wal_snap_putv(k->snap, type, e->iov, e->n);
    return p_append(k->w, type, e);
}

/* Everything a persistent session owns. */
static ep_err emit_session_full(psink *k, const bk_session *s)
{
    penc e = {0};
    enc_session(&e, s);
    ep_err err = sink_put(k, R_SESSION, &e);
    for (uint32_t i = 0; i < s->nsubs && !err; i++) {
        penc es = {0};
        enc_sub(&es, s, &s->subs[i]);
        err = sink_put(k, R_SUB, &es);
    }
    for (uint32_t i = 0; i < s->if_count && !err; i++) {
        const bk_inflight *f = &s->inflight[(s->if_head + i) % s->if_cap];
        penc em = {0};
        enc_msg(&em, s, f->pmid, f->qos, f->retain, f->state, f->pid, f->msg, gate_origin(f->gate));
        err = sink_put(k, R_MSG, &em);
    }
    for (uint32_t i = 0; i < s->q_count && !err; i++) {
        const bk_qitem *q = &s->queue[(s->q_head + i) % s->q_cap];
        if (q->qos == 0)
            continue;
        penc em = {0};
        enc_msg(&em, s, q->pmid, q->qos, q->retain, BK_PSTATE_QUEUED, 0, q->msg,
                gate_origin(q->gate));
        err = sink_put(k, R_MSG, &em);
    }
    for (uint32_t i = 0; i < s->n_qos2_in && !err; i++) {
        const bk_qos2_in *q = &s->qos2_in[i];
        penc eq = {0}, ed = {0};
        enc_qos2(&eq, s, q->pid, q->origin);
        err = sink_put(k, R_QOS2, &eq);
        enc_qos2(&ed, s, q->pid, 0);
        if (!err && q->done)
            err = sink_put(k, R_QOS2_DONE, &ed);
    }
    return err;
}

/* ---- hooks ---- */

void bk_persist_session(bk_session *s)
{
    if (!bk_persist_on(s->w->b))
        return;
    bool want = s->expiry_interval > 0;
    if (!want) {
        if (s->plogged)
            bk_persist_session_del(s);
        return;
    }
    psink k = {.w = s->w};
    if (!s->plogged) {
        s->plogged = true;
        emit_session_full(&k, s);
        return;
    }
    penc e = {0};
    enc_session(&e, s);
    sink_put(&k, R_SESSION, &e);
}

static void replay_free(bk_session *s);

void bk_persist_session_del(bk_session *s)
{
    replay_free(s);
    if (!logged(s))
        return;
    s->plogged = false;
    penc e = {0};
    pe_str(&e, s->client_id, s->client_id_len);
    p_append(s->w, R_SESSION_DEL, &e);
}

void bk_persist_sub(bk_session *s, const bk_sub *sub)
{
    if (!logged(s))
        return;
    penc e = {0};
    enc_sub(&e, s, sub);
    p_append(s->w, R_SUB, &e);
}

void bk_persist_unsub(bk_session *s, const bk_sub *sub)
{
    if (!logged(s))
        return;
    penc e = {0};
    pe_str(&e, s->client_id, s->client_id_len);
    pe_str(&e, sub->filter, sub->filter_len);
    p_append(s->w, R_UNSUB, &e);
}

ep_err bk_persist_msg_put(bk_session *s, uint64_t pmid, uint8_t qos, uint8_t retain, uint8_t state,
                          uint16_t pid, ep_msg *m, bk_ticket *gate, uint64_t *seq_out)
{
    *seq_out = 0;
    if (!logged(s) || qos == 0)
        return EP_EOK;
    penc e = {0};
    enc_msg(&e, s, pmid, qos, retain, state, pid, m, gate ? gate->origin : 0);
    /* With a gate the done mark, written after this record, is waited for. */
    if (qos == 2 && s->w->wal_port && gate == NULL)
        return p_append_wait(s->w, R_MSG, &e, seq_out);
    return p_append(s->w, R_MSG, &e);
}

void bk_persist_msg_state(bk_session *s, uint64_t pmid, uint8_t state, uint16_t pid)
{
    if (!logged(s))
        return;
    penc e = {0};
    pe_str(&e, s->client_id, s->client_id_len);
    pe_u64(&e, pmid);
    pe_u8(&e, state);
    pe_u16(&e, pid);
    p_append(s->w, R_MSG_STATE, &e);
}

void bk_persist_msg_del(bk_session *s, uint64_t pmid)
{
    if (!logged(s))
        return;
    penc e = {0};
    pe_str(&e, s->client_id, s->client_id_len);
    pe_u64(&e, pmid);
    p_append(s->w, R_MSG_DEL, &e);
}

void bk_persist_qos2(bk_session *s, const bk_qos2_in *q, bool add)
{
    if (!logged(s))
        return;
    penc e = {0};
    enc_qos2(&e, s, q->pid, add ? q->origin : 0);
    p_append(s->w, add ? R_QOS2 : R_QOS2_DEL, &e);
}

void bk_persist_qos2_done(bk_session *s, const bk_qos2_in *q)
{
    if (!logged(s))
        return;
    bk_worker *w = s->w;
    bk_ticket *t = w->cur_ticket;
    penc e = {0};
    enc_qos2(&e, s, q->pid, 0);
    if (t == NULL || q->tk != t || w->wal_port == NULL || atomic_load(&t->gate) == BK_GATE_OPEN) {
        p_append(w, R_QOS2_DONE, &e);
        return;
    }
    /* The mark of the routing being finished: its completion opens the gate. */
    atomic_store(&t->gate, BK_GATE_WRITING);
    bk_ticket_hold(t);
    ep_err err = ep_wal_appendv(w->b->persist->wal, w->wal_port, R_QOS2_DONE, e.iov, e.n,
                                on_gate_done, t, NULL);
    atomic_fetch_add_explicit(&w->b->persist->appends, 1, memory_order_relaxed);
    if (err) {
        bk_ticket_fail(t, err);
        gate_open(w, t);
        bk_ticket_done(t);
        append_failed(w, err);
    }
}

static bool sys_topic(ep_mqtt_slice t) { return t.len >= 5 && memcmp(t.p, "$SYS/", 5) == 0; }

void bk_persist_retain(bk_worker *w, ep_mqtt_slice topic, ep_msg *m)
{
    if (!bk_persist_on(w->b) || sys_topic(topic))
        return;
    penc e = {0};
    if (m) {
        pe_msg(&e, m);
        p_append(w, R_RETAIN, &e);
    } else {
        pe_str(&e, topic.p, topic.len);
        p_append(w, R_RETAIN_DEL, &e);
    }
}

/* ---- replay ---- */

enum { OP_PUT = 0, OP_STATE = 1, OP_DEL = 2 };

typedef struct rp_op {
    uint64_t pmid;
    uint64_t origin; /* of a put: the routing it came from, or 0 */
    ep_msg *msg;
    uint32_t ord;
    uint16_t pid;
    uint8_t kind, qos, retain, state;
} rp_op;

struct bk_replay_msgs {
    rp_op *v;
    uint32_t n, cap;
};

static void replay_free(bk_session *s)
{
    struct bk_replay_msgs *r = s->replay;
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->n; i++)
        ep_msg_unref(r->v[i].msg);
    free(r->v);
    free(r);
    s->replay = NULL;
}

static ep_err op_push(bk_session *s, const rp_op *op)
{
    struct bk_replay_msgs *r = s->replay;
    if (r == NULL && (r = s->replay = calloc(1, sizeof(*r))) == NULL)
        return EP_ENOMEM;
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        rp_op *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL)
            return EP_ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n] = *op;
    r->v[r->n].ord = r->n;
    r->n++;
    return EP_EOK;
}

static bk_session *rp_session(ep_broker *b, ep_mqtt_slice cid, bool create)
{
    if (cid.p == NULL || cid.len == 0)
        return NULL;
    bk_worker *w = b->workers[bk_worker_for_client(b, cid.p, cid.len)];
    bk_session *s = bk_session_find_cid(w, cid.p, cid.len);
    if (s == NULL && create && (s = bk_session_new(w, cid.p, cid.len)) != NULL)
        s->plogged = true;
    return s;
}

static bk_sub *rp_find_sub(bk_session *s, ep_mqtt_slice f)
{
    for (uint32_t i = 0; i < s->nsubs; i++)
        if (s->subs[i].filter_len == f.len && memcmp(s->subs[i].filter, f.p, f.len) == 0)
            return &s->subs[i];
    return NULL;
}

static ep_err rp_sub(bk_session *s, ep_mqtt_slice f, uint8_t opts, uint32_t sub_id)
{
    bk_tree *t = &s->w->b->tree;
    bk_sub *sub = rp_find_sub(s, f);
    if (sub == NULL) {
        if (s->nsubs == s->capsubs) {
            uint32_t cap = s->capsubs ? s->capsubs * 2 : 4;
            bk_sub *v = realloc(s->subs, cap * sizeof(*v));
            if (v == NULL)
                return EP_ENOMEM;
            s->subs = v;
            s->capsubs = cap;
        }
        sub = &s->subs[s->nsubs];
        memset(sub, 0, sizeof(*sub));
        if ((sub->filter = malloc(f.len + 1u)) == NULL)
            return EP_ENOMEM;
        memcpy(sub->filter, f.p, f.len);
        sub->filter[f.len] = '\0';
        sub->filter_len = (uint16_t)f.len;
        ep_mqtt_slice own = ep_mqtt_slice_make(sub->filter, f.len), g, m;
        if (ep_mqtt_topic_share_split(own, &g, &m) == EP_EOK) {
            sub->group = g;
            sub->match = m;
        } else {
            sub->group = (ep_mqtt_slice){NULL, 0};
            sub->match = own;
        }
        s->nsubs++;
    }
    sub->opts = opts;
    sub->sub_id = sub_id;
    if (sub_id)
        s->has_subids = true;
    bk_tsub ts = {.session_id = s->id, .flow = s->flow, .worker = s->w->idx, .opts = opts};
    return bk_tree_sub_add(t, sub->match, sub->group, &ts) == EP_ENOMEM ? EP_ENOMEM : EP_EOK;
}

static void rp_unsub(bk_session *s, ep_mqtt_slice f)
{
    bk_sub *sub = rp_find_sub(s, f);
    if (sub == NULL)
        return;
    bk_tree_sub_remove(&s->w->b->tree, sub->match, sub->group, s->id);
    free(sub->filter);
    *sub = s->subs[--s->nsubs];
    s->has_subids = false;
    for (uint32_t k = 0; k < s->nsubs; k++)
        if (s->subs[k].sub_id)
            s->has_subids = true;
}

static ep_err replay_rec(ep_broker *b, uint8_t type, pdec *d)
{
    bk_persist *p = b->persist;
    bool expired = false;
    if (type == R_RETAIN) {
        ep_msg *m = pd_msg(d, &expired);
        if (m) {
            bk_tree_retain(&b->tree, ep_mqtt_slice_make(m->topic, m->topic_len),
                           m->payload_len ? m : NULL);
            ep_msg_unref(m);
        }
        p->expired += expired;
        return d->bad || m || expired ? EP_EOK : EP_ENOMEM;
    }
    ep_mqtt_slice cid = pd_str(d);
    if (type == R_RETAIN_DEL) {
        if (!d->bad)
            bk_tree_retain(&b->tree, cid, NULL);
        return EP_EOK;
    }
    if (d->bad || cid.len == 0) {
        d->bad = true;
        return EP_EOK;
    }
    bk_session *s = rp_session(b, cid, type == R_SESSION);
    if (type == R_SESSION && s == NULL)
        return EP_ENOMEM;
    if (s == NULL)
        return EP_EOK; /* a record of a session deleted later on: nothing to do */
    switch (type) {
    case R_SESSION: {
        uint8_t version = pd_u8(d);
        uint32_t expiry = pd_u32(d);
        uint8_t has_will = pd_u8(d);
        uint32_t delay = has_will ? pd_u32(d) : 0;
        ep_msg *will = has_will ? pd_msg(d, &expired) : NULL;
        if (d->bad)
            return EP_EOK;
        s->version = version;
        s->expiry_interval = expiry;
        ep_msg_unref(s->will);
        s->will = will;
        s->will_delay = delay;
        return EP_EOK;
    }
    case R_SESSION_DEL:
        ep_msg_unref(s->will);
        s->will = NULL;
        bk_session_destroy(s);
        return EP_EOK;
    case R_SUB: {
        ep_mqtt_slice f = pd_str(d);
        uint8_t opts = pd_u8(d);
        uint32_t sub_id = pd_u32(d);
        if (d->bad || f.len == 0)
            return d->bad = true, EP_EOK;
        return rp_sub(s, f, opts, sub_id);
    }
    case R_UNSUB: {
        ep_mqtt_slice f = pd_str(d);
        if (!d->bad)
            rp_unsub(s, f);
        return EP_EOK;
    }
    case R_MSG: {
        rp_op op = {.kind = OP_PUT};
        op.pmid = pd_u64(d);
        op.qos = pd_u8(d);
        op.retain = pd_u8(d);
        op.state = pd_u8(d);
        op.pid = pd_u16(d);
        uint8_t has_msg = pd_u8(d);
        op.msg = has_msg ? pd_msg(d, &expired) : NULL;
        if (!d->bad && d->n - d->off >= 8)
            op.origin = pd_u64(d);
        if (op.origin > p->max_origin)
            p->max_origin = op.origin;
        if (d->bad || op.qos == 0 || op.qos > 2 || op.state > BK_IF_PUBCOMP) {
            ep_msg_unref(op.msg);
            return d->bad = true, EP_EOK;
        }
        if (op.msg == NULL && (expired || op.state != BK_IF_PUBCOMP))
            op.kind = OP_DEL; /* expired while the broker was down */
        p->expired += expired;
        ep_err err = op_push(s, &op);
        if (err)
            ep_msg_unref(op.msg);
        return err;
    }
    case R_MSG_STATE: {
        rp_op op = {.kind = OP_STATE};
        op.pmid = pd_u64(d);
        op.state = pd_u8(d);
        op.pid = pd_u16(d);
        return d->bad ? EP_EOK : op_push(s, &op);
    }
    case R_MSG_DEL: {
        rp_op op = {.kind = OP_DEL};
        op.pmid = pd_u64(d);
        return d->bad ? EP_EOK : op_push(s, &op);
    }
    case R_QOS2:
    case R_QOS2_DEL:
    case R_QOS2_DONE: {
        uint16_t pid = pd_u16(d);
        uint64_t origin = type == R_QOS2 && !d->bad && d->n - d->off >= 8 ? pd_u64(d) : 0;
        if (d->bad)
            return EP_EOK;
        if (type == R_QOS2_DONE) {
            bk_session_qos2_done(s, pid);
            return EP_EOK;
        }
        bk_session_qos2_remove(s, pid); /* a new R_QOS2 starts a new exchange */
        if (type != R_QOS2)
            return EP_EOK;
        ep_err err = bk_session_qos2_add(s, pid);
        if (err == EP_EOK)
            bk_session_qos2_find(s, pid)->origin = origin;
        if (origin > p->max_origin)
            p->max_origin = origin;
        return err;
    }
    default:
        d->bad = true;
        return EP_EOK;
    }
}

static ep_err replay(void *ud, const ep_wal_rec *rec)
{
    ep_broker *b = ud;
    bk_persist *p = b->persist;
    pdec d = {.p = rec->data, .n = rec->len};
    ep_err err = replay_rec(b, rec->type, &d);
    if (d.bad) {
        if (p->malformed++ < 5)
            EP_LOG_WARN(BK_LOG,
                        "persistence: record %llu (type %u, %u bytes) is malformed; skipped",
                        (unsigned long long)rec->seq, rec->type, rec->len);
        p->dropped_bytes += rec->len;
    }
    p->replayed++;
    return err;
}

static int op_cmp(const void *a, const void *b)
{
    const rp_op *x = a, *y = b;
    if (x->pmid != y->pmid)
        return x->pmid < y->pmid ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* The origins of routings not marked done, sorted. */
typedef struct origin_set {
    uint64_t *v;
    size_t n, cap;
} origin_set;

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool origin_unfinished(const origin_set *u, uint64_t origin)
{
    return origin && u->n && bsearch(&origin, u->v, u->n, sizeof(*u->v), u64_cmp);
}

/* Turns the replayed operations of s into its in-flight window and queue,
 * both in message id order (the order they arrived in). A delivery of an
 * unfinished routing is dropped: it was never sent (see "routings"). */
static ep_err replay_build(bk_session *s, const origin_set *unfinished, uint64_t *dropped)
{
    struct bk_replay_msgs *r = s->replay;
    if (r == NULL)
        return EP_EOK;
    qsort(r->v, r->n, sizeof(*r->v), op_cmp);
    uint32_t live = 0; /* compact the final state of each pmid into v[0..live) */
    for (uint32_t i = 0; i < r->n;) {
        rp_op cur = {0};
        bool present = false;
        uint32_t j = i;
        for (; j < r->n && r->v[j].pmid == r->v[i].pmid; j++) {
            rp_op *o = &r->v[j];
            if (o->kind == OP_PUT) {
                ep_msg_unref(cur.msg);
                cur = *o;
                o->msg = NULL;
                present = true;
            } else if (o->kind == OP_STATE && present) {
                cur.state = o->state;
                cur.pid = o->pid;
                if (o->state == BK_IF_PUBCOMP) {
                    ep_msg_unref(cur.msg);
                    cur.msg = NULL;
                }
            } else if (o->kind == OP_DEL) {
                ep_msg_unref(cur.msg);
                cur.msg = NULL;
                present = false;
            }
        }
        if (present && origin_unfinished(unfinished, cur.origin)) {
            present = false;
            ++*dropped;
        }
        if (present && (cur.msg || cur.state == BK_IF_PUBCOMP))
            r->v[live++] = cur;
        else
            ep_msg_unref(cur.msg);
        i = j;
    }
    r->n = live;
    uint32_t nq = 0, nf = 0;
    for (uint32_t i = 0; i < live; i++) {
        if (r->v[i].state == BK_PSTATE_QUEUED)
            nq++;
        else
            nf++;
    }
    bk_qitem *q = nq ? malloc(nq * sizeof(*q)) : NULL;
    bk_inflight *f = nf ? malloc(nf * sizeof(*f)) : NULL;
    if ((nq && q == NULL) || (nf && f == NULL)) {
        free(q);
        free(f);
        return EP_ENOMEM;
    }
    uint32_t iq = 0, iff = 0;
    uint16_t maxpid = 0;
    for (uint32_t i = 0; i < live; i++) {
        rp_op *o = &r->v[i];
        if (o->state == BK_PSTATE_QUEUED) {
            q[iq++] =
                (bk_qitem){.msg = o->msg, .pmid = o->pmid, .qos = o->qos, .retain = o->retain};
            s->q_bytes += ep_msg_size(o->msg);
        } else {
            f[iff++] = (bk_inflight){.msg = o->msg,
                                     .pmid = o->pmid,
                                     .pid = o->pid,
                                     .qos = o->qos,
                                     .state = o->state,
                                     .retain = o->retain};
            if (o->pid > maxpid)
                maxpid = o->pid;
        }
        if (o->pmid >= s->next_pmid)
            s->next_pmid = o->pmid + 1;
        o->msg = NULL;
    }
    s->queue = q;
    s->q_head = 0;
    s->q_count = s->q_cap = nq;
    atomic_fetch_add_explicit(&s->w->ctr.queued, (long)nq, memory_order_relaxed);
    s->inflight = f;
    s->if_head = 0;
    s->if_count = s->if_cap = nf;
    s->next_pid = (uint16_t)(maxpid + 1u) ? (uint16_t)(maxpid + 1u) : 1;
    r->n = 0;
    replay_free(s);
    return EP_EOK;
}

static ep_err collect_unfinished(ep_broker *b, origin_set *u)
{
    for (int i = 0; i < b->nworkers; i++) {
        bk_worker *w = b->workers[i];
        for (uint32_t h = 0; h < w->nbuckets; h++) {
            for (bk_session *s = w->by_cid[h]; s; s = s->next_by_cid) {
                for (uint32_t q = 0; q < s->n_qos2_in; q++) {
                    if (s->qos2_in[q].done || s->qos2_in[q].origin == 0)
                        continue;
                    if (u->n == u->cap) {
                        size_t cap = u->cap ? u->cap * 2 : 64;
                        uint64_t *v = realloc(u->v, cap * sizeof(*v));
                        if (v == NULL)
                            return EP_ENOMEM;
                        u->v = v;
                        u->cap = cap;
                    }
                    u->v[u->n++] = s->qos2_in[q].origin;
                }
            }
        }
    }
    if (u->n > 1)
        qsort(u->v, u->n, sizeof(*u->v), u64_cmp);
    return EP_EOK;
}

/* After replay: queues, timers (every restored session starts offline). */
static ep_err replay_finish(ep_broker *b, uint64_t *nmsgs)
{
    bk_persist *p = b->persist;
    origin_set unfinished = {0};
    ep_err err = collect_unfinished(b, &unfinished);
    p->unfinished = unfinished.n;
    for (int i = 0; i < b->nworkers && !err; i++) {
        bk_worker *w = b->workers[i];
        for (uint32_t h = 0; h < w->nbuckets && !err; h++) {
            for (bk_session *s = w->by_cid[h]; s && !err; s = s->next_by_cid) {
                err = replay_build(s, &unfinished, &p->unfinished_msgs);
                if (err)
                    break;
                *nmsgs += s->q_count + s->if_count;
                /* An incoming QoS 2 id not marked done is forgotten (and its
                 * deliveries were dropped above): the publisher, never
                 * acknowledged, sends the PUBLISH again and it is routed
                 * again, once. */
                for (uint32_t q = 0; q < s->n_qos2_in;) {
                    if (s->qos2_in[q].done)
                        q++;
                    else
                        bk_session_qos2_remove(s, s->qos2_in[q].pid);
                }
                if (s->expiry_interval != UINT32_MAX)
                    ep_timer_start(&s->expiry_timer, (uint64_t)s->expiry_interval * 1000u);
                if (s->will) {
                    /* The client was connected when the broker went down:
                     * its will goes out after the will delay unless it
                     * reconnects first. */
                    uint32_t d =
                        s->will_delay < s->expiry_interval ? s->will_delay : s->expiry_interval;
                    ep_timer_start(&s->will_timer, (uint64_t)d * 1000u);
                }
            }
        }
    }
    free(unfinished.v);
    atomic_store(&p->next_origin, p->max_origin + 1);
    return err;
}

/* ---- snapshot and the worker barrier ---- */

static void on_pause(ep_loop *loop, void *arg)
{
    bk_worker *w = arg;
    bk_persist *p = w->b->persist;
    (void)loop;
    pthread_mutex_lock(&p->lock);
    uint64_t g = p->gen;
    if (p->released < g && w->paused_for != g) {
        w->paused_for = g;
        p->paused++;
        pthread_cond_broadcast(&p->cv);
        while (p->released < g)
            pthread_cond_wait(&p->cv, &p->lock);
    }
    pthread_mutex_unlock(&p->lock);
}

static void barrier_leave(bk_persist *p, uint64_t g)
{
    pthread_mutex_lock(&p->lock);
    p->released = g;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->lock);
}

/* Returns true once every worker waits in on_pause. */
static bool barrier_enter(ep_broker *b, uint64_t *gen)
{
    bk_persist *p = b->persist;
    pthread_mutex_lock(&p->lock);
    uint64_t g = ++p->gen;
    p->paused = 0;
    pthread_mutex_unlock(&p->lock);
    *gen = g;
    for (int i = 0; i < b->nworkers; i++) {
        if (ep_loop_post(b->workers[i]->loop, on_pause, b->workers[i]) != EP_EOK) {
            barrier_leave(p, g);
            return false;
        }
    }
    pthread_mutex_lock(&p->lock);
    while (p->paused < b->nworkers && !atomic_load(&b->stopped)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->lock, &ts);
    }
    bool ok = p->paused == b->nworkers;
    pthread_mutex_unlock(&p->lock);
    if (!ok)
        barrier_leave(p, g);
    return ok;
}

typedef struct retained_snap {
    psink *k;
    ep_err err;
} retained_snap;

static void snap_retained(ep_msg *m, void *ud)
{
    retained_snap *r = ud;
    if (r->err || sys_topic(ep_mqtt_slice_make(m->topic, m->topic_len)))
        return;
    penc e = {0};
    pe_msg(&e, m);
    r->err = sink_put(r->k, R_RETAIN, &e);
}

static ep_err on_snapshot(ep_wal_snap *snap, void *ud)
{
    ep_broker *b = ud;
    bk_persist *p = b->persist;
    uint64_t gen = 0;
    bool barrier = p->workers_running;
    uint64_t t0 = ep_clock_mono_ns();
    if (barrier && !barrier_enter(b, &gen))
        return EP_ESTATE;
    uint64_t t1 = ep_clock_mono_ns();
    psink k = {.snap = snap};
    ep_err err = EP_EOK;
    for (int i = 0; i < b->nworkers && !err; i++) {
        bk_worker *w = b->workers[i];
        for (uint32_t h = 0; h < w->nbuckets && !err; h++)
            for (bk_session *s = w->by_cid[h]; s && !err; s = s->next_by_cid)
                if (s->plogged)
                    err = emit_session_full(&k, s);
    }
    retained_snap r = {.k = &k};
    if (!err) {
        pthread_rwlock_rdlock(&b->tree.lock);
        bk_tree_retained_each(&b->tree, snap_retained, &r);
        pthread_rwlock_unlock(&b->tree.lock);
        err = r.err;
    }
    if (barrier)
        barrier_leave(p, gen);
    atomic_store_explicit(&p->snapshot_records, k.records, memory_order_relaxed);
    uint64_t t2 = ep_clock_mono_ns();
    if (barrier)
        EP_LOG_INFO(BK_LOG,
                    "persistence: snapshot of %llu records (workers paused %.1f ms, "
                    "%.1f ms to reach the barrier)%s%s",
                    (unsigned long long)k.records, (double)(t2 - t1) / 1e6, (double)(t1 - t0) / 1e6,
                    err ? ": " : "", err ? ep_strerror(err) : "");
    else
        EP_LOG_INFO(BK_LOG, "persistence: snapshot of %llu records in %.1f ms%s%s",
                    (unsigned long long)k.records, (double)(t2 - t0) / 1e6, err ? ": " : "",
                    err ? ep_strerror(err) : "");
    return err;
}

/* ---- lifecycle ---- */

static void *persist_main(void *arg)
{
    bk_persist *p = arg;
    ep_err err = ep_loop_run(p->loop);
    if (err)
        EP_LOG_ERROR(BK_LOG, "persistence thread: event loop failed: %s", ep_strerror(err));
    return NULL;
}

static void persist_free(ep_broker *b)
{
    bk_persist *p = b->persist;
    if (p == NULL)
        return;
    pthread_mutex_lock(&stats_lock);
    b->persist = NULL;
    pthread_mutex_unlock(&stats_lock);
    for (int i = 0; i < b->nworkers; i++) {
        if (b->workers[i] && b->workers[i]->wal_port) {
            ep_wal_port_free(b->workers[i]->wal_port);
            b->workers[i]->wal_port = NULL;
        }
    }
    ep_wal_close(p->wal);
    if (p->loop) {
        ep_loop_run_once(p->loop, 0); /* frees a compaction request still queued */
        ep_loop_free(p->loop);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* The budget cannot exceed the file system: a smaller file system gets a
 * budget that leaves room below it, so the log reports "full" (and keeps
 * room for a snapshot) before the kernel says ENOSPC. */
static uint64_t fit_budget(const char *dir, uint64_t want)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return want;
    uint64_t fs = (uint64_t)sv.f_blocks * sv.f_frsize;
    uint64_t cap = fs / 10 * 9;
    if (cap && cap < want) {
        EP_LOG_INFO(BK_LOG,
                    "persistence: the file system of %s holds %llu bytes: disk budget "
                    "lowered from %llu to %llu bytes",
                    dir, (unsigned long long)fs, (unsigned long long)want, (unsigned long long)cap);
        return cap;
    }
    return want;
}

ep_err bk_persist_open(ep_broker *b)
{
    const ep_broker_persistence *c = &b->cfg.persist;
    if (c->data_dir[0] == '\0')
        return EP_EOK;
    bk_persist *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return EP_ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->mode = c->durability;
    b->persist = p;
    ep_err err = ep_loop_new(&p->loop, NULL);
    if (err) {
        persist_free(b);
        return err;
    }
    if (mkdir(c->data_dir, 0755) != 0 && errno != EEXIST)
        EP_LOG_WARN(BK_LOG, "persistence: cannot create %s: %s", c->data_dir, strerror(errno));
    ep_wal_opts o = {0};
    o.dir = c->data_dir;
    o.durability = c->durability == EP_BROKER_DURABILITY_PERIODIC ? EP_WAL_PERIODIC
                   : c->durability == EP_BROKER_DURABILITY_NONE   ? EP_WAL_NONE
                                                                  : EP_WAL_SYNC;
    o.period_ms = c->period_ms ? c->period_ms : 10;
    o.max_bytes = fit_budget(c->data_dir, c->max_size ? c->max_size : 1ull << 30);
    o.segment_bytes = o.max_bytes / 16 < (64ull << 20) ? o.max_bytes / 16 : 64ull << 20;
    if (o.segment_bytes < 64 * 1024)
        o.segment_bytes = 64 * 1024;
    o.snapshot = on_snapshot;
    o.snapshot_ud = b;
    o.owner = p->loop;
    ep_wal_report rep;
    memset(&rep, 0, sizeof(rep));
    uint64_t t0 = ep_clock_mono_ns();
    err = ep_wal_open(&p->wal, &o, replay, b, &rep);
    if (err) {
        EP_LOG_ERROR(BK_LOG, "persistence: cannot open the log in %s: %s%s", c->data_dir,
                     ep_strerror(err),
                     err == EP_ESTATE ? " (another broker process uses this directory)" : "");
        persist_free(b);
        return err;
    }
    uint64_t nmsgs = 0;
    err = replay_finish(b, &nmsgs);
    if (err) {
        EP_LOG_ERROR(BK_LOG, "persistence: rebuilding the state failed: %s", ep_strerror(err));
        persist_free(b);
        return err;
    }
    uint64_t t1 = ep_clock_mono_ns();
    EP_LOG_INFO(BK_LOG,
                "persistence: %s, durability %s, budget %llu bytes: loaded %llu snapshot + "
                "%llu log records (%llu bytes) in %.3f s: %d sessions, "
                "%llu queued/in-flight messages, %lu retained",
                c->data_dir, ep_wal_durability_name(o.durability), (unsigned long long)o.max_bytes,
                (unsigned long long)rep.snapshot_records, (unsigned long long)rep.records,
                (unsigned long long)rep.bytes, (double)(t1 - t0) / 1e9, atomic_load(&b->nsessions),
                (unsigned long long)nmsgs, (unsigned long)atomic_load(&b->tree.nretained));
    if (rep.torn_bytes)
        EP_LOG_WARN(BK_LOG,
                    "persistence: torn tail: dropped %llu bytes at offset %llu of "
                    "wal-%020llu.log (an append interrupted by the crash)",
                    (unsigned long long)rep.torn_bytes, (unsigned long long)rep.torn_offset,
                    (unsigned long long)rep.torn_file_seq);
    for (uint32_t i = 0; i < rep.nlosses && i < EP_WAL_MAX_LOSSES; i++) {
        const ep_wal_loss *l = &rep.losses[i];
        EP_LOG_WARN(BK_LOG,
                    "persistence: corrupt data skipped in %s-%020llu.log: %llu bytes at "
                    "offset %llu (records %llu..%llu lost)",
                    l->snapshot ? "snap" : "wal", (unsigned long long)l->file_seq,
                    (unsigned long long)l->bytes, (unsigned long long)l->offset,
                    (unsigned long long)l->from_seq, (unsigned long long)l->to_seq);
    }
    if (rep.nlosses)
        EP_LOG_WARN(BK_LOG, "persistence: %u damaged region(s), %llu bytes not loaded", rep.nlosses,
                    (unsigned long long)rep.lost_bytes);
    if (p->malformed)
        EP_LOG_WARN(BK_LOG, "persistence: %llu malformed record(s) skipped (%llu bytes)",
                    (unsigned long long)p->malformed, (unsigned long long)p->dropped_bytes);
    if (p->expired)
        EP_LOG_INFO(BK_LOG, "persistence: %llu message(s) expired while the broker was down",
                    (unsigned long long)p->expired);
    if (p->unfinished)
        EP_LOG_INFO(BK_LOG,
                    "persistence: %llu QoS 2 publish(es) were being routed when the broker "
                    "went down: %llu undelivered copies removed (the publishers send them again)",
                    (unsigned long long)p->unfinished, (unsigned long long)p->unfinished_msgs);
    p->dropped_bytes += rep.torn_bytes + rep.lost_bytes;
    /* Start from a small log: one snapshot of what was just loaded. */
    err = ep_wal_compact(p->wal);
    if (err)
        EP_LOG_WARN(BK_LOG,
                    "persistence: compaction at startup failed: %s (the log is kept "
                    "as it is)",
                    ep_strerror(err));
    for (int i = 0; i < b->nworkers; i++) {
        /* Before the worker threads exist; the port is used only there. */
        err = ep_wal_port_new(&b->workers[i]->wal_port, p->wal, b->workers[i]->loop);
        if (err) {
            persist_free(b);
            return err;
        }
    }
    pthread_mutex_lock(&p->lock);
    p->workers_running = true;
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->on, true);
    return EP_EOK;
}

void bk_persist_start(ep_broker *b)
{
    bk_persist *p = b->persist;
    if (p == NULL || p->thread_started)
        return;
    if (pthread_create(&p->thread, NULL, persist_main, p) == 0)
        p->thread_started = true;
    else
        EP_LOG_WARN(BK_LOG, "persistence: no compaction thread; the log grows until restart");
}

void bk_persist_stop(ep_broker *b)
{
    if (b->persist && b->persist->loop)
        ep_loop_stop(b->persist->loop);
}

void bk_persist_worker_exit(bk_worker *w)
{
    if (w->wal_port) {
        ep_wal_port_free(w->wal_port); /* runs the completions still due */
        w->wal_port = NULL;
    }
}

void bk_persist_close(ep_broker *b)
{
    bk_persist *p = b->persist;
    if (p == NULL)
        return;
    bool clean = p->thread_started;
    if (p->thread_started) {
        ep_loop_stop(p->loop);
        pthread_join(p->thread, NULL);
        p->thread_started = false;
    }
    pthread_mutex_lock(&p->lock);
    p->workers_running = false;
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->on, false);
    if (clean && p->wal) {
        ep_err err = ep_wal_compact(p->wal);
        if (err)
            EP_LOG_WARN(BK_LOG,
                        "persistence: snapshot at shutdown failed: %s (the log is "
                        "replayed at the next start)",
                        ep_strerror(err));
    }
    persist_free(b);
}

bool bk_persist_stats_get(ep_broker *b, bk_persist_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&stats_lock);
    bk_persist *p = b->persist;
    if (p == NULL || p->wal == NULL) {
        pthread_mutex_unlock(&stats_lock);
        return false;
    }
    ep_wal_stats st;
    ep_wal_stats_get(p->wal, &st);
    out->appends = atomic_load_explicit(&p->appends, memory_order_relaxed);
    out->append_failed = atomic_load_explicit(&p->append_failed, memory_order_relaxed);
    out->refused_full = atomic_load_explicit(&p->refused_full, memory_order_relaxed);
    out->disk_bytes = st.disk_bytes;
    out->fsyncs = st.fsyncs;
    out->compactions = st.compactions;
    out->full = st.full || bk_persist_full(b->workers[0]);
    out->replayed_records = p->replayed;
    out->snapshot_records = atomic_load_explicit(&p->snapshot_records, memory_order_relaxed);
    out->dropped_bytes = p->dropped_bytes;
    pthread_mutex_unlock(&stats_lock);
    return true;
}
