/*
 * broker.c - broker lifecycle, worker threads, accepting, handing
 * connections between workers, routing and $SYS statistics.
 *
 * Routing (bk_route): the topic tree is matched under its read lock; the
 * targets are sorted by session so overlapping subscriptions give one copy
 * at the highest granted QoS; targets on this worker are delivered at once,
 * the others are batched per worker and posted to that worker's mailbox in
 * the before-poll hook (one push and one wakeup per worker per iteration).
 * A small batch for a worker that sleeps is delivered without waking it:
 * this thread enters that worker's loop and runs the delivery itself
 * (ep_mailbox_set_direct), so a lightly loaded broker pays no cross-thread
 * wakeup; bigger batches wake the worker so that under load every worker
 * keeps doing its own share.
 * A delivery posted for a PUBLISH that waits for the disk carries its
 * durability ticket, so the acknowledgement also waits for the records the
 * receiving worker appends for its sessions (persist.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/sock.h"
#include "svc/broker/broker_int.h"

void ep_broker_config_defaults(ep_broker_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listeners[0].addr.host, sizeof(cfg->listeners[0].addr.host), "127.0.0.1");
    cfg->listeners[0].addr.port = 1883;
    cfg->n_listeners = 1;
    cfg->sys_interval_s = 10;
}

static void apply_limit_defaults(ep_broker_limits *l)
{
#define DEF(field, v)                                                                              \
    if (l->field == 0)                                                                             \
        l->field = (v);
    DEF(max_connections, 100000)
    DEF(max_packet_size, 1024 * 1024)
    DEF(max_queued_messages, 10000)
    DEF(max_queued_bytes, 64ull * 1024 * 1024)
    DEF(max_inflight, 64)
    DEF(receive_maximum, 1024)
    DEF(max_outbuf, 4u * 1024 * 1024)
    DEF(max_topic_length, 65535)
    DEF(max_topic_levels, 128)
    DEF(max_subscriptions_per_client, 1000)
    DEF(max_session_expiry, 7u * 24 * 3600)
    DEF(topic_alias_maximum, 64)
    DEF(connect_timeout_ms, 10000)
    DEF(max_client_id_length, 256)
#undef DEF
}

uint16_t bk_worker_for_client(const ep_broker *b, const uint8_t *cid, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= cid[i];
        h *= 16777619u;
    }
    return (uint16_t)(h % (uint32_t)b->nworkers);
}

/* ---- routing ---- */

/* Deliveries for another worker that its loop may receive straight from the
 * routing thread (see above). A trickle of messages, where the wakeup is
 * most of the latency, comes in batches of one or two; at high rates the
 * batches are far larger than this. */
#define BK_DIRECT_MAX 8

static int target_cmp(const void *a, const void *b)
{
    const bk_target *x = a, *y = b;
    return x->session_id < y->session_id ? -1 : x->session_id > y->session_id;
}

static void deliver_to(bk_worker *w, const bk_target *t, ep_msg *msg)
{
    if (t->worker == w->idx) {
        bk_session *s = bk_session_find_id(w, t->session_id);
        if (s)
            bk_session_deliver(s, msg, t->opts, false);
        return;
    }
    bk_outq *q = &w->outq[t->worker];
    if (q->n == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 256;
        bk_delivery *v = realloc(q->v, cap * sizeof(*v));
        if (v == NULL) {
            bk_count_drop(w, BK_DROP_NO_MEMORY, 1);
            return;
        }
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n].session_id = t->session_id;
    q->v[q->n].msg = ep_msg_ref(msg);
    q->v[q->n].ticket = bk_ticket_hold(w->cur_ticket);
    q->v[q->n].opts = t->opts;
    q->n++;
}

uint32_t bk_route(bk_worker *w, ep_msg *msg, bk_session *from, ep_mqtt_slice partition,
                  bk_flow **congested_out)
{
    bk_tree *tree = &w->b->tree;
    bk_targets *tg = &w->targets;
    tg->n = 0;
    pthread_rwlock_rdlock(&tree->lock);
    ep_err err = bk_tree_match(tree, ep_mqtt_slice_make(msg->topic, msg->topic_len), partition, tg);
    uint64_t self = from ? from->id : 0;
    /* Drop No Local entries for the publisher's own session, then merge
     * overlapping subscriptions of one session into one target. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < tg->n; i++)
        if (!(tg->v[i].session_id == self && (tg->v[i].opts & BK_OPT_NO_LOCAL)))
            tg->v[n++] = tg->v[i];
    if (n > 1)
        qsort(tg->v, n, sizeof(bk_target), target_cmp);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n;) {
        bk_target t = tg->v[i];
        uint32_t j = i + 1;
        for (; j < n && tg->v[j].session_id == t.session_id; j++) {
            uint8_t q = tg->v[j].opts & BK_OPT_QOS_MASK;
            if (q > (t.opts & BK_OPT_QOS_MASK))
                t.opts = (uint8_t)((t.opts & ~BK_OPT_QOS_MASK) | q);
            t.opts |= tg->v[j].opts & (BK_OPT_RAP | BK_OPT_HAS_SUBID);
        }
        /* Flow cells are only safe to touch under the lock. */
        if (congested_out && *congested_out == NULL && (t.opts & BK_OPT_QOS_MASK) && msg->qos > 0 &&
            bk_flow_congested(t.flow, ep_loop_now(w->loop)))
            *congested_out = bk_flow_ref(t.flow);
        if (t.worker != w->idx && t.flow)
            atomic_fetch_add_explicit(&t.flow->pending, 1, memory_order_relaxed);
        tg->v[m++] = t;
        i = j;
    }
    pthread_rwlock_unlock(&tree->lock);
    if (err)
        bk_count_drop(w, BK_DROP_NO_MEMORY, 1);
    for (uint32_t i = 0; i < m; i++)
        deliver_to(w, &tg->v[i], msg);
    return m;
}

void bk_worker_post_deliveries(bk_worker *w)
{
    for (int i = 0; i < w->b->nworkers; i++) {
        bk_outq *q = &w->outq[i];
        if (q->n == 0)
            continue;
        if (ep_mailbox_push_many(w->b->workers[i]->mbox, q->v, q->n) != EP_EOK) {
            for (uint32_t k = 0; k < q->n; k++) {
                ep_msg_unref(q->v[k].msg);
                bk_ticket_fail(q->v[k].ticket, EP_ENOMEM);
                bk_ticket_done(q->v[k].ticket);
            }
            bk_count_drop(w, BK_DROP_NO_MEMORY, q->n);
        }
        q->n = 0;
    }
}

static void on_deliveries(ep_mailbox *mb, void *items, size_t n, void *ud)
{
    bk_worker *w = ud;
    bk_delivery *d = items;
    (void)mb;
    for (size_t i = 0; i < n; i++) {
        bk_session *s = bk_session_find_id(w, d[i].session_id);
        if (s) {
            atomic_fetch_sub_explicit(&s->flow->pending, 1, memory_order_relaxed);
            w->cur_ticket = d[i].ticket;
            bk_session_deliver(s, d[i].msg, d[i].opts, false);
            w->cur_ticket = NULL;
        }
        ep_msg_unref(d[i].msg);
        bk_ticket_done(d[i].ticket);
    }
}

static void before_poll(ep_loop *loop, void *arg)
{
    bk_worker *w = arg;
    bk_worker_post_deliveries(w);
    bk_worker_release_acks(w);
    bk_worker_flush(loop, w);
}

void bk_publish_internal(bk_worker *w, const char *topic, const char *payload, bool retain)
{
    ep_msg *m = ep_msg_new(topic, strlen(topic), NULL, 0, payload, strlen(payload));
    if (m == NULL)
        return;
    m->retain = retain;
    m->created_ms = ep_loop_now(w->loop);
    if (retain) {
        pthread_rwlock_wrlock(&w->b->tree.lock);
        bk_tree_retain(&w->b->tree, ep_mqtt_slice_make(topic, strlen(topic)), m);
        pthread_rwlock_unlock(&w->b->tree.lock);
    }
    bk_route(w, m, NULL, (ep_mqtt_slice){NULL, 0}, NULL);
    ep_msg_unref(m);
}

/* ---- handing a connection to another worker ---- */

typedef struct handoff {
    int fd;
    int listener;
    ep_tls *tls;
    bk_ws *ws;
    size_t n;
    uint8_t bytes[];
} handoff;

typedef struct handoff_msg {
    bk_worker *to;
    handoff *h;
} handoff_msg;

static void on_handoff_msg(ep_loop *loop, void *arg)
{
    handoff_msg *m = arg;
    (void)loop;
    bk_conn_accept(m->to, m->h->fd, m->h->listener, m->h->tls, m->h->ws, m->h->bytes, m->h->n);
    free(m->h);
    free(m);
}

void bk_handoff(bk_conn *c, const uint8_t *pending, size_t n)
{
    bk_worker *to = c->w->b->workers[c->handoff_to];
    handoff_msg *m = malloc(sizeof(*m));
    handoff *h = malloc(sizeof(*h) + n);
    if (m == NULL || h == NULL) {
        free(m);
        free(h);
        bk_conn_close(c, -1, "out of memory during handoff");
        return;
    }
    memcpy(h->bytes, pending, n);
    h->n = n;
    h->listener = c->listener;
    h->fd = bk_conn_release(c, &h->tls, &h->ws);
    m->to = to;
    m->h = h;
    if (ep_loop_post(to->loop, on_handoff_msg, m) != EP_EOK) {
        ep_tls_free(h->tls);
        bk_ws_free(h->ws);
        ep_sock_close(h->fd);
        free(h);
        free(m);
    }
}

/* ---- accepting ---- */

/* The transport objects a new connection on listener l starts with. */
static ep_err new_transport(bk_worker *w, int l, int fd, ep_tls **tls, bk_ws **ws)
{
    *tls = NULL;
    *ws = NULL;
    if (w->b->tls[l] && ep_tls_new(w->b->tls[l], fd, tls) != EP_EOK)
        return EP_ENOMEM;
    if (w->b->cfg.listeners[l].protocol == EP_BROKER_WEBSOCKETS) {
        *ws = calloc(1, sizeof(**ws));
        if (*ws == NULL) {
            ep_tls_free(*tls);
            return EP_ENOMEM;
        }
        ep_buf_init(&(*ws)->rin, w->b->cfg.limits.max_packet_size + 131072u);
        ep_buf_init(&(*ws)->wire, 0);
    }
    return EP_EOK;
}

static void on_accept(ep_io *io, unsigned events)
{
    bk_worker *w = io->data;
    int l = 0;
    (void)events;
    while (l < w->b->cfg.n_listeners - 1 && w->lfd[l] != io->fd)
        l++;
    for (int i = 0; i < 64; i++) {
        int fd;
        char peer[48];
        ep_err err = ep_sock_accept(io->fd, &fd, peer, sizeof(peer));
        if (err == EP_EAGAIN)
            return;
        if (err) {
            /* Out of descriptors (or another accept error): the listening
             * socket stays readable, so stop watching it for a moment
             * instead of spinning; existing clients keep being served. */
            if (ep_ratelimit_allow(&w->err_rl, ep_loop_now(w->loop)))
                EP_LOG_WARN(BK_LOG,
                            "accept failed: %s (open files limit?); pausing accepts for 100 ms",
                            ep_strerror(err));
            for (int k = 0; k < w->b->cfg.n_listeners; k++)
                ep_io_stop(&w->lio[k]);
            ep_timer_start(&w->accept_timer, 100);
            return;
        }
        if ((uint32_t)atomic_load(&w->b->nconnected) >= w->b->cfg.limits.max_connections) {
            if (ep_ratelimit_allow(&w->err_rl, ep_loop_now(w->loop)))
                EP_LOG_WARN(BK_LOG, "connection from %s refused: limit of %u connections reached",
                            peer, w->b->cfg.limits.max_connections);
            ep_sock_close(fd);
            continue;
        }
        ep_tls *tls;
        bk_ws *ws;
        if (new_transport(w, l, fd, &tls, &ws) != EP_EOK) {
            ep_sock_close(fd);
            continue;
        }
        bk_conn_accept(w, fd, l, tls, ws, NULL, 0);
    }
}

/* ---- $SYS ---- */

static void sys_publish(ep_timer *t)
{
    bk_worker *w = t->data;
    ep_broker_stats st;
    char buf[64];
    ep_broker_get_stats(w->b, &st);
#define PUB(topic, fmt, v)                                                                         \
    do {                                                                                           \
        snprintf(buf, sizeof(buf), fmt, v);                                                        \
        bk_publish_internal(w, "$SYS/broker/" topic, buf, true);                                   \
    } while (0)
    PUB("version", "edgeplane %s", EP_VERSION);
    PUB("uptime", "%llu seconds", (unsigned long long)st.uptime_s);
    PUB("clients/connected", "%llu", (unsigned long long)st.clients_connected);
    PUB("clients/total", "%llu", (unsigned long long)st.clients_total);
    PUB("messages/received", "%llu", (unsigned long long)st.msgs_received);
    PUB("messages/sent", "%llu", (unsigned long long)st.msgs_sent);
    PUB("bytes/received", "%llu", (unsigned long long)st.bytes_received);
    PUB("bytes/sent", "%llu", (unsigned long long)st.bytes_sent);
    PUB("publish/dropped", "%llu", (unsigned long long)st.publish_dropped);
    PUB("publish/dropped/queue_full", "%llu", (unsigned long long)st.dropped[0]);
    PUB("publish/dropped/expired", "%llu", (unsigned long long)st.dropped[1]);
    PUB("publish/dropped/too_large", "%llu", (unsigned long long)st.dropped[2]);
    PUB("publish/dropped/slow_consumer", "%llu", (unsigned long long)st.dropped[3]);
    PUB("publish/dropped/no_memory", "%llu", (unsigned long long)st.dropped[4]);
    PUB("subscriptions/count", "%llu", (unsigned long long)st.subscriptions);
    PUB("retained messages/count", "%llu", (unsigned long long)st.retained);
#undef PUB
    ep_timer_start(t, (uint64_t)w->b->cfg.sys_interval_s * 1000u);
}

void ep_broker_get_stats(ep_broker *b, ep_broker_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < b->nworkers; i++) {
        bk_counters *c = &b->workers[i]->ctr;
        out->msgs_received += atomic_load_explicit(&c->msgs_in, memory_order_relaxed);
        out->msgs_sent += atomic_load_explicit(&c->msgs_out, memory_order_relaxed);
        out->bytes_received += atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
        out->bytes_sent += atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
        for (int r = 0; r < BK_DROP__COUNT; r++) {
            uint64_t d = atomic_load_explicit(&c->dropped[r], memory_order_relaxed);
            out->dropped[r] += d;
            out->publish_dropped += d;
        }
    }
    out->clients_connected = (uint64_t)atomic_load(&b->nconnected);
    out->clients_total = (uint64_t)atomic_load(&b->nsessions);
    out->subscriptions = atomic_load(&b->tree.nsubs);
    out->retained = atomic_load(&b->tree.nretained);
    out->uptime_s = (ep_clock_mono_ms() - b->start_ms) / 1000u;
}

/* ---- lifecycle ---- */

static void tls_watch(ep_timer *t);

static void accept_resume(ep_timer *t)
{
    bk_worker *w = t->data;
    for (int l = 0; l < w->b->cfg.n_listeners; l++)
        ep_io_start(w->loop, &w->lio[l], w->lfd[l], EP_IO_READ | EP_IO_EXCLUSIVE, on_accept, w);
}

static void held_tick(ep_timer *t)
{
    /* Nothing to do here: waking the loop runs the before-poll hook, which
     * releases the acks whose subscribers have drained. */
    (void)t;
}

static void worker_free(bk_worker *w)
{
    if (w == NULL)
        return;
    for (int i = 0; i < EP_BROKER_MAX_LISTENERS; i++) {
        ep_io_stop(&w->lio[i]);
        w->lfd[i] = -1; /* shared: closed once by the broker */
    }
    if (w->outq) {
        for (int i = 0; i < w->b->nworkers; i++) {
            for (uint32_t k = 0; k < w->outq[i].n; k++) {
                ep_msg_unref(w->outq[i].v[k].msg);
                bk_ticket_done(w->outq[i].v[k].ticket);
            }
            free(w->outq[i].v);
        }
        free(w->outq);
    }
    if (w->mbox)
        ep_mailbox_drain(w->mbox);
    ep_mailbox_free(w->mbox);
    ep_loop_free(w->loop);
    free(w->targets.v);
    free(w->wsend);
    free(w->held);
    free(w->rbuf);
    free(w);
}

static bk_worker *worker_new(ep_broker *b, int idx)
{
    bk_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->b = b;
    w->idx = (uint16_t)idx;
    for (int i = 0; i < EP_BROKER_MAX_LISTENERS; i++)
        w->lfd[i] = -1;
    w->err_rl.period_ms = 10000;
    w->err_rl.burst = 20;
    w->rbuf = malloc(BK_READ_CHUNK);
    w->outq = calloc((size_t)b->nworkers, sizeof(*w->outq));
    if (w->rbuf == NULL || w->outq == NULL || ep_loop_new(&w->loop, NULL) != EP_EOK ||
        ep_mailbox_new(&w->mbox, w->loop, sizeof(bk_delivery), 4u * 1024 * 1024, on_deliveries,
                       w) != EP_EOK) {
        worker_free(w);
        return NULL;
    }
    ep_mailbox_set_direct(w->mbox, BK_DIRECT_MAX);
    w->flush_hook.fn = before_poll;
    w->flush_hook.arg = w;
    ep_loop_hook_before_poll(w->loop, &w->flush_hook);
    ep_timer_init(w->loop, &w->sys_timer, sys_publish, w);
    ep_timer_init(w->loop, &w->held_timer, held_tick, w);
    ep_timer_init(w->loop, &w->accept_timer, accept_resume, w);
    ep_timer_init(w->loop, &w->tls_timer, tls_watch, w);
    return w;
}

ep_err ep_broker_new(ep_broker **out, const ep_broker_config *cfg)
{
    if (cfg->n_listeners < 1 || cfg->n_listeners > EP_BROKER_MAX_LISTENERS)
        return EP_EINVAL;
    ep_broker *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return EP_ENOMEM;
    b->cfg = *cfg;
    apply_limit_defaults(&b->cfg.limits);
    if (b->cfg.limits.max_packet_size > EP_MQTT_MAX_PACKET)
        b->cfg.limits.max_packet_size = EP_MQTT_MAX_PACKET;
    b->nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (b->nworkers < 1)
        b->nworkers = 1;
    if (b->nworkers > 64)
        b->nworkers = 64;
    atomic_init(&b->next_session_id, 1);
    for (int l = 0; l < EP_BROKER_MAX_LISTENERS; l++)
        b->lfd[l] = -1;
    bk_tree_init(&b->tree);
    b->workers = calloc((size_t)b->nworkers, sizeof(*b->workers));
    if (b->workers == NULL) {
        ep_broker_free(b);
        return EP_ENOMEM;
    }
    for (int i = 0; i < b->nworkers; i++) {
        if ((b->workers[i] = worker_new(b, i)) == NULL) {
            ep_broker_free(b);
            return EP_ENOMEM;
        }
    }
    *out = b;
    return EP_EOK;
}

static void *worker_main(void *arg)
{
    bk_worker *w = arg;
    ep_err err = ep_loop_run(w->loop);
    if (err)
        EP_LOG_ERROR(BK_LOG, "worker %u: event loop failed: %s", w->idx, ep_strerror(err));
    /* Shutdown: close connections, then let deferred frees run. */
    w->stopping = true;
    bk_conn_free_all(w);
    ep_loop_run_once(w->loop, 0);
    bk_persist_worker_exit(w);
    return NULL;
}

static ep_err bind_listeners(ep_broker *b)
{
    for (int l = 0; l < b->cfg.n_listeners; l++) {
        ep_hostport hp = b->cfg.listeners[l].addr;
        char name[300];
        for (int i = 0; i < b->nworkers; i++) {
            bk_worker *w = b->workers[i];
            /* One listening socket per listener, watched by every worker:
             * the kernel wakes one of them per connection (EPOLLEXCLUSIVE).
             * No SO_REUSEPORT, so a second broker on the same port fails to
             * bind instead of silently sharing it. */
            if (i == 0) {
                ep_err err = ep_sock_listen(&hp, 1024, 0, &b->lfd[l]);
                if (err) {
                    ep_hostport_format(&b->cfg.listeners[l].addr, name, sizeof(name));
                    EP_LOG_ERROR(BK_LOG, "cannot listen on %s: %s", name, ep_strerror(err));
                    return err;
                }
                b->ports[l] = ep_sock_local_port(b->lfd[l]);
            }
            w->lfd[l] = b->lfd[l];
            ep_err err = ep_io_start(w->loop, &w->lio[l], w->lfd[l], EP_IO_READ | EP_IO_EXCLUSIVE,
                                     on_accept, w);
            if (err) {
                EP_LOG_ERROR(BK_LOG, "cannot watch the listening socket: %s", ep_strerror(err));
                return err;
            }
        }
    }
    return EP_EOK;
}

/* Each connection is a descriptor: raise the soft limit to the hard one so
 * max_connections is reachable, and say so when it still is not. */
static void raise_fd_limit(const ep_broker *b)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)b->cfg.limits.max_connections + 64)
        EP_LOG_INFO(BK_LOG,
                    "open files limit is %llu: fewer than max_connections (%u) clients "
                    "can connect; raise it with ulimit -n",
                    (unsigned long long)rl.rlim_cur, b->cfg.limits.max_connections);
}

static ep_err load_tls(ep_broker *b)
{
    for (int l = 0; l < b->cfg.n_listeners; l++) {
        const ep_broker_listener *li = &b->cfg.listeners[l];
        if (li->tls_cert[0] == '\0')
            continue;
        ep_tls_opts o = {.cert_file = li->tls_cert,
                         .key_file = li->tls_key,
                         .ca_file = li->tls_ca[0] ? li->tls_ca : NULL,
                         .verify = (ep_tls_verify)li->tls_verify};
        char why[300];
        ep_err err = ep_tls_ctx_new(&b->tls[l], &o, why, sizeof(why));
        if (err) {
            char name[300];
            ep_hostport_format(&li->addr, name, sizeof(name));
            EP_LOG_ERROR(BK_LOG, "listener %s: %s", name, why);
            return err;
        }
    }
    return EP_EOK;
}

void ep_broker_reload(ep_broker *b)
{
    bk_auth_reload(b, true);
    for (int l = 0; l < b->cfg.n_listeners; l++) {
        char why[300], name[300];
        if (b->tls[l] == NULL)
            continue;
        ep_hostport_format(&b->cfg.listeners[l].addr, name, sizeof(name));
        if (ep_tls_ctx_reload(b->tls[l], why, sizeof(why)) == EP_EOK)
            EP_LOG_INFO(BK_LOG, "listener %s: TLS certificate reloaded", name);
        else
            EP_LOG_ERROR(BK_LOG, "listener %s: TLS reload failed, keeping the old certificate: %s",
                         name, why);
    }
}

/* Certificates renewed on disk (cert-manager, ACME...) are picked up
 * without a signal. */
static void tls_watch(ep_timer *t)
{
    bk_worker *w = t->data;
    ep_broker *b = w->b;
    for (int l = 0; l < b->cfg.n_listeners; l++)
        if (b->tls[l] && ep_tls_ctx_changed(b->tls[l])) {
            ep_broker_reload(b);
            break;
        }
    /* Password and rule files: one stat each unless they changed. */
    bk_auth_reload(b, false);
    ep_timer_start(t, 2000);
}

ep_err ep_broker_start(ep_broker *b)
{
    b->start_ms = ep_clock_mono_ms();
    raise_fd_limit(b);
    ep_err terr = load_tls(b);
    if (terr == EP_EOK)
        terr = bk_auth_init(b);
    if (terr == EP_EOK)
        terr = bk_metrics_init(b);
    if (terr == EP_EOK)
        terr = bk_persist_open(b); /* replays the log before anyone connects */
    if (terr)
        return terr;
    ep_timer_start(&b->workers[0]->tls_timer, 2000);
    ep_err err = bind_listeners(b);
    if (err)
        return err;
    if (b->cfg.sys_interval_s)
        ep_timer_start(&b->workers[0]->sys_timer, 0);
    for (int i = 0; i < b->nworkers; i++) {
        bk_worker *w = b->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            ep_broker_stop(b);
            ep_broker_wait(b);
            return EP_ESYS;
        }
        w->thread_started = true;
    }
    bk_persist_start(b);
    bk_metrics_ready(b, true);
    return EP_EOK;
}

uint16_t ep_broker_listener_port(const ep_broker *b, int i)
{
    return (i >= 0 && i < b->cfg.n_listeners) ? b->ports[i] : 0;
}

void ep_broker_stop(ep_broker *b)
{
    bk_metrics_ready(b, false);
    atomic_store(&b->stopped, 1);
    bk_persist_stop(b);
    for (int i = 0; i < b->nworkers; i++)
        if (b->workers[i])
            ep_loop_stop(b->workers[i]->loop);
}

void ep_broker_wait(ep_broker *b)
{
    for (int i = 0; i < b->nworkers; i++) {
        bk_worker *w = b->workers[i];
        if (w && w->thread_started) {
            pthread_join(w->thread, NULL);
            w->thread_started = false;
        }
    }
    bk_persist_close(b); /* snapshot of the final state, then close the log */
}

void ep_broker_free(ep_broker *b)
{
    if (b == NULL)
        return;
    bk_persist_close(b); /* no-op after ep_broker_wait */
    if (b->workers) {
        /* Sessions first (they unsubscribe from the shared tree), then the
         * workers' loops and queues. */
        for (int i = 0; i < b->nworkers; i++)
            if (b->workers[i])
                bk_sessions_free_all(b->workers[i]);
        for (int i = 0; i < b->nworkers; i++)
            worker_free(b->workers[i]);
        free(b->workers);
    }
    bk_tree_fini(&b->tree);
    bk_auth_fini(b);
    bk_metrics_fini(b);
    for (int l = 0; l < EP_BROKER_MAX_LISTENERS; l++)
        if (b->lfd[l] >= 0)
            ep_sock_close(b->lfd[l]);
    for (int l = 0; l < EP_BROKER_MAX_LISTENERS; l++)
        ep_tls_ctx_free(b->tls[l]);
    free(b);
}
