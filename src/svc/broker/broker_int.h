/*
 * broker_int.h - internal structures shared by the broker's files.
 * Nothing outside src/svc/broker includes this.
 *
 * Ownership and threads:
 * - ep_broker: shared by all workers; read-only after start except the
 *   topic tree (tree_lock) and atomic counters.
 * - bk_worker: one per thread; owns its loop, connections and sessions.
 * - bk_session: owned by worker (hash of client id % workers); referred to
 *   from other threads only by its 64-bit id (never by pointer).
 * - bk_conn: owned by the worker whose loop watches its fd.
 */
#ifndef EP_SVC_BROKER_INT_H
#define EP_SVC_BROKER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "codec/mqtt/packet.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/mailbox.h"
#include "core/msg.h"
#include "core/tls.h"
#include "svc/broker/broker.h"

#define BK_READ_CHUNK (256 * 1024)
/* Server-to-client topic aliases kept per connection (first come). */
#define BK_ALIAS_OUT_MAX 64
#define BK_LOG "broker"

typedef struct bk_worker bk_worker;
typedef struct bk_conn bk_conn;
typedef struct bk_session bk_session;
typedef struct bk_tnode bk_tnode;

/* ---- topic tree (tree.c) ---- */

/* Subscription options packed in one byte. */
enum {
    BK_OPT_QOS_MASK = 0x03,
    BK_OPT_NO_LOCAL = 0x04,
    BK_OPT_RAP = 0x08, /* retain as published */
    BK_OPT_HAS_SUBID = 0x10,
};

/*
 * Flow control cell of a session, shared with the topic tree so publishers
 * on any worker can see that a subscriber is congested (its queue is above
 * the high watermark while it is online). Refcounted: the session and each
 * of its tree entries hold a reference; a publisher holding back an
 * acknowledgement holds one too.
 */
typedef struct bk_flow {
    atomic_uint refs;
    atomic_bool congested;
    /* Deliveries posted by other workers and not yet taken in by the owner:
     * without this a busy owner would notice congestion too late. */
    atomic_uint pending;
    uint32_t high;     /* congestion threshold for `pending` */
    uint32_t stall_ms; /* no progress for this long: stop holding publishers */
    /* Monotonic ms of the subscriber's last progress (acks, bytes written).
     * A congested subscriber that makes no progress is stalled, and a
     * stalled subscriber must not stall its publishers: its own queue
     * limit and policy apply instead. */
    atomic_ullong progress_ms;
} bk_flow;

static inline bk_flow *bk_flow_ref(bk_flow *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

static inline void bk_flow_unref(bk_flow *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

static inline bool bk_flow_congested(bk_flow *f, uint64_t now_ms)
{
    if (f == NULL)
        return false;
    if (!atomic_load_explicit(&f->congested, memory_order_relaxed) &&
        atomic_load_explicit(&f->pending, memory_order_relaxed) < f->high)
        return false;
    uint64_t p = atomic_load_explicit(&f->progress_ms, memory_order_relaxed);
    return now_ms < p + f->stall_ms;
}

static inline void bk_flow_progress(bk_flow *f, uint64_t now_ms)
{
    atomic_store_explicit(&f->progress_ms, now_ms, memory_order_relaxed);
}

typedef struct bk_tsub {
    uint64_t session_id;
    bk_flow *flow; /* may be NULL (tests) */
    uint16_t worker;
    uint8_t opts;
} bk_tsub;

typedef struct bk_tgroup {
    char *name;
    bk_tsub *members;
    uint32_t n, cap;
    atomic_uint rr; /* round-robin cursor */
} bk_tgroup;

struct bk_tnode {
    char *level;
    uint16_t level_len;
    bk_tnode *parent;
    bk_tnode **kids;
    uint32_t nkids, capkids;
    bk_tsub *subs;
    uint32_t nsubs, capsubs;
    bk_tgroup **groups;
    uint32_t ngroups, capgroups;
    ep_msg *retained;
};

/* A delivery target produced by matching. */
typedef struct bk_target {
    uint64_t session_id;
    bk_flow *flow; /* borrowed: valid only under the tree lock */
    uint16_t worker;
    uint8_t opts;
} bk_target;

typedef struct bk_targets {
    bk_target *v;
    uint32_t n, cap;
} bk_targets;

typedef struct bk_tree {
    pthread_rwlock_t lock;
    bk_tnode root;
    atomic_ulong nsubs;
    atomic_ulong nretained;
} bk_tree;

void bk_tree_init(bk_tree *t);
void bk_tree_fini(bk_tree *t);
/* Add or replace the subscription of session_id on filter (share group NULL
 * for a normal subscription). Caller holds the write lock.
 * Returns EP_EOK (new), EP_EEXIST (replaced options) or EP_ENOMEM. */
ep_err bk_tree_sub_add(bk_tree *t, ep_mqtt_slice filter, ep_mqtt_slice group, const bk_tsub *sub);
/* Remove; returns EP_EOK or EP_ENOTFOUND. Caller holds the write lock. */
ep_err bk_tree_sub_remove(bk_tree *t, ep_mqtt_slice filter, ep_mqtt_slice group,
                          uint64_t session_id);
/* Collect every matching subscriber of topic; shared groups contribute one
 * member each (chosen by partition hash when partition.p != NULL, else
 * round robin). Caller holds the read lock. Returns EP_EOK or EP_ENOMEM. */
ep_err bk_tree_match(bk_tree *t, ep_mqtt_slice topic, ep_mqtt_slice partition, bk_targets *out);
/* Set (msg != NULL, takes a reference) or clear the retained message of
 * topic. Caller holds the write lock. */
ep_err bk_tree_retain(bk_tree *t, ep_mqtt_slice topic, ep_msg *msg);
/* Call fn for every retained message matching filter (read lock held). */
typedef void (*bk_retained_fn)(ep_msg *m, void *ud);
void bk_tree_retained_match(bk_tree *t, ep_mqtt_slice filter, bk_retained_fn fn, void *ud);
/* Call fn for every retained message, '$' topics included (lock held). */
void bk_tree_retained_each(bk_tree *t, bk_retained_fn fn, void *ud);

/* ---- worker-to-worker delivery ---- */

/*
 * Durability ticket (persistence, persist.c). A PUBLISH that
 * must not be acknowledged before its records are on disk takes a ticket;
 * `pending` counts the log appends it caused that have not completed plus
 * the deliveries posted to other workers that have not been taken in yet
 * (each of which may append for its session). The held PUBACK/PUBREC goes
 * out when pending is 0; status is the first failure (EP_EFULL, EP_EIO...).
 * Refcounted: the acknowledgement, each posted delivery and each append
 * completion hold a reference. Any thread.
 */
typedef struct bk_ticket {
    atomic_uint refs;
    atomic_uint pending;
    atomic_int status;
    uint64_t t0_ns; /* creation, for the commit latency histogram */
    /* QoS 2 from a persistent session: once every delivery is on disk a
     * second record marks the incoming packet id "done" (the PUBREC waits
     * for it too). Set and read on the publisher's worker only. */
    uint16_t qos2_pid;
    uint8_t qos2_rec;
    /* The routing of that PUBLISH (exactly once across a crash, persist.c):
     * `origin` is written into the R_QOS2 record and into every QoS 2
     * delivery record it causes; replay drops the deliveries of an origin
     * not marked done. `gate` opens (BK_GATE_OPEN) once the done mark is
     * on disk: only then is such a delivery first sent. Fixed before the
     * ticket is shared, except gate, wake (bit per waiting worker) and
     * fin_next (the home worker's list of routings to finish). */
    uint64_t origin; /* 0: none */
    uint64_t session_id;
    struct bk_worker *home;
    struct ep_broker *b;
    atomic_int gate;
    atomic_ullong wake;
    struct bk_ticket *fin_next;
} bk_ticket;

enum { BK_GATE_CLOSED = 0, BK_GATE_QUEUED = 1, BK_GATE_WRITING = 2, BK_GATE_OPEN = 3 };

typedef struct bk_delivery {
    uint64_t session_id;
    ep_msg *msg;       /* one reference travels with the item */
    bk_ticket *ticket; /* one reference and one pending unit, or NULL */
    uint8_t opts;      /* merged subscription options (max QoS, RAP, ...) */
} bk_delivery;

typedef struct bk_outq {
    bk_delivery *v;
    uint32_t n, cap;
} bk_outq;

/* ---- session (session.c) ---- */

typedef struct bk_qitem {
    ep_msg *msg;
    uint64_t pmid;   /* message id within the session (persistence key) */
    uint64_t seq;    /* log seq to be on disk before it is sent (QoS 2); 0 = none */
    bk_ticket *gate; /* routing whose done mark must be on disk first (QoS 2), or NULL */
    uint8_t qos;
    uint8_t retain;
} bk_qitem;

enum { BK_IF_PUBACK = 1, BK_IF_PUBREC = 2, BK_IF_PUBCOMP = 3 };

typedef struct bk_inflight {
    ep_msg *msg;     /* NULL once PUBREC'd (only the id is kept) */
    uint64_t pmid;   /* as bk_qitem.pmid */
    uint64_t seq;    /* as bk_qitem.seq */
    bk_ticket *gate; /* as bk_qitem.gate; dropped once sent */
    uint16_t pid;
    uint8_t qos;
    uint8_t state;
    uint8_t retain;
    uint8_t unsent; /* waits for its record to be on disk (see bk_session_send_durable) */
} bk_inflight;

typedef struct bk_sub {
    char *filter; /* as subscribed, including $share/group/ */
    uint16_t filter_len;
    uint8_t opts;
    uint32_t sub_id;
    ep_mqtt_slice group; /* into filter; p == NULL when not shared */
    ep_mqtt_slice match; /* the part matched against topics */
} bk_sub;

/* An incoming QoS 2 packet id awaiting PUBREL. */
typedef struct bk_qos2_in {
    uint64_t origin; /* routing id in the log (0: not logged) */
    bk_ticket *tk;   /* the routing's ticket while it is known, or NULL */
    uint16_t pid;
    uint8_t done; /* every delivery of that PUBLISH is logged */
} bk_qos2_in;

struct bk_session {
    uint64_t id;
    char *client_id;
    uint16_t client_id_len;
    bk_worker *w;
    bk_conn *conn; /* NULL when offline */
    uint8_t version;
    uint32_t expiry_interval; /* seconds, as granted */
    ep_timer expiry_timer;
    bk_session *next_by_cid, *next_by_id; /* hash chains */

    bk_sub *subs;
    uint32_t nsubs, capsubs;
    bool has_subids;

    /* Outgoing QoS 1/2: a window of in-flight messages (send order) and a
     * bounded queue of messages waiting for a slot (or for the client). */
    bk_inflight *inflight;
    uint32_t if_head, if_count, if_cap;
    uint16_t next_pid;
    bk_qitem *queue;
    uint32_t q_head, q_count, q_cap;
    uint64_t q_bytes;

    /* Incoming QoS 2 packet ids awaiting PUBREL. */
    struct bk_qos2_in *qos2_in;
    uint32_t n_qos2_in, cap_qos2_in;

    bk_flow *flow;

    /* Will of the current/last connection. */
    ep_msg *will;
    uint32_t will_delay;
    ep_timer will_timer;

    /* Persistence: the session is in the log (persistent and the broker
     * has a data directory); next message id; replay scratch. */
    bool plogged;
    uint64_t next_pmid;
    struct bk_replay_msgs *replay;
};

/* ---- transport (transport.c): TLS and WebSocket under MQTT ---- */

enum { BK_WS_HANDSHAKE = 0, BK_WS_OPEN = 1, BK_WS_CLOSED = 2 };

typedef struct bk_ws {
    int state;
    ep_buf rin;  /* raw bytes not yet decoded (request head, partial frame) */
    ep_buf wire; /* bytes ready for the socket: 101 response, frames, pongs */
} bk_ws;

/* ---- connection (conn.c) ---- */

/* An acknowledgement (PUBACK/PUBREC) held back until `flow` is no longer
 * congested; later acks queue behind it to keep the order the spec requires. */
typedef struct bk_held_ack {
    bk_flow *flow;     /* owned reference, or NULL */
    bk_ticket *ticket; /* owned reference, or NULL: also wait for the disk */
    uint16_t pid;
    uint8_t type;
    uint8_t rc;
} bk_held_ack;

enum { BK_CONN_NEW = 0, BK_CONN_ACTIVE = 1, BK_CONN_CLOSED = 2 };

struct bk_conn {
    bk_worker *w;
    ep_io io;
    int fd;
    uint8_t state;
    uint8_t version; /* 0 until CONNECT */
    bool in_flush_list;
    bool want_write;
    bool clean_disconnect;           /* DISCONNECT without will */
    int handoff_to;                  /* worker to move to after CONNECT, or -1 */
    struct bk_conn_auth *auth;       /* enhanced authentication, NULL if none */
    struct bk_pending_auth *pending; /* password check running elsewhere */
    struct ep_authz_session *authz;  /* compiled grants, NULL = no rules */
    char *username;                  /* authenticated user name, or NULL */
    struct ep_auth_attrs *attrs;     /* authorization attributes, or NULL */
    uint64_t cred_expiry_ms;         /* credentials expire then (0: never) */
    bool authn_done;
    uint8_t authn_next;       /* chain position to resume at (after an unreachable callout) */
    bool paused;              /* not reading: waiting for a check */
    struct bk_held_ack *held; /* acks held back while a target is congested */
    uint32_t held_head, held_n, held_cap;
    bool in_held_list;
    const uint8_t *cur_pkt; /* raw bytes of the packet being handled */
    size_t cur_len;
    bk_session *s;
    ep_tls *tls; /* NULL on plain TCP */
    bk_ws *ws;   /* NULL unless the listener speaks WebSockets */
    uint8_t listener;
    ep_buf in;  /* unparsed partial packet */
    ep_buf out; /* encoded, unsent bytes */
    uint64_t last_rx_ms;
    uint16_t keepalive; /* effective, seconds */
    ep_timer ka_timer;
    uint32_t client_max_packet;
    uint16_t client_receive_max;
    uint16_t client_alias_max;
    char **alias_in; /* client-to-server topic aliases */
    uint16_t alias_in_max;
    char **alias_out; /* server-to-client aliases, index = alias - 1 */
    uint16_t alias_out_n;
    bk_conn *flush_next;
    bk_conn *all_next, *all_prev;
};

/* Enhanced-authentication state, allocated only for clients that use it. */
typedef struct bk_conn_auth {
    const ep_broker_auth_method *method;
    void *state;
    ep_buf pending_connect; /* CONNECT held while AUTH is exchanged */
    bool ok;                /* the exchange succeeded: finish CONNECT */
    const uint8_t *out;     /* data of the method's last step */
    size_t out_len;
} bk_conn_auth;

/* ---- worker and broker (broker.c) ---- */

/* Why a delivery was dropped; each has a counter (and a $SYS topic). */
typedef enum bk_drop {
    BK_DROP_QUEUE_FULL = 0, /* session queue limit, per queue_policy */
    BK_DROP_EXPIRED,        /* message expiry interval passed */
    BK_DROP_TOO_LARGE,      /* above the client's Maximum Packet Size */
    BK_DROP_SLOW_CONSUMER,  /* QoS 0 over the connection's output limit */
    BK_DROP_NO_MEMORY,      /* allocation failed */
    BK_DROP__COUNT
} bk_drop;

typedef struct bk_counters {
    atomic_ulong msgs_in, msgs_out, bytes_in, bytes_out;
    atomic_ulong msgs_in_qos[3], msgs_out_qos[3];
    atomic_long queued; /* messages in this worker's session queues */
    atomic_ulong dropped[BK_DROP__COUNT];
} bk_counters;

#define bk_count_drop(w, reason, n)                                                                \
    atomic_fetch_add_explicit(&(w)->ctr.dropped[(reason)], (n), memory_order_relaxed)

struct bk_worker {
    ep_broker *b;
    uint16_t idx;
    pthread_t thread;
    bool thread_started;
    ep_loop *loop;
    ep_mailbox *mbox;
    int lfd[EP_BROKER_MAX_LISTENERS];
    ep_io lio[EP_BROKER_MAX_LISTENERS];
    ep_hook flush_hook;
    bk_conn *flush_head;
    bk_conn *all_conns;
    uint32_t nconns;
    uint8_t *rbuf;
    bk_outq *outq; /* one per worker, deliveries waiting to be posted */
    bk_targets targets;
    bk_conn **held; /* connections with held acknowledgements */
    uint32_t nheld, capheld;
    ep_timer held_timer;   /* re-checks held acks while there are any */
    ep_timer accept_timer; /* resumes accepting after running out of fds */
    ep_timer tls_timer;    /* worker 0: reloads TLS certificates that changed */
    /* sessions */
    bk_session **by_cid;
    bk_session **by_id;
    uint32_t nbuckets, nsessions;
    bk_counters ctr;
    ep_timer sys_timer;
    ep_ratelimit err_rl;
    bool stopping;
    /* persistence (persist.c) */
    struct ep_wal_port *wal_port;
    bk_ticket *cur_ticket;   /* ticket of the PUBLISH being routed/delivered */
    ep_err cur_fail;         /* an append failed while cur_* was set */
    ep_ratelimit persist_rl; /* log lines about refused appends */
    uint64_t paused_for;     /* last compaction barrier generation joined */
    /* QoS 2 messages waiting for their record before the first send, in
     * log order, and the highest seq known to be on disk. */
    uint64_t durable_seq;
    struct bk_wait_send *wsend;
    uint32_t ws_head, ws_n, ws_cap;
    /* Routings of this worker's publishers whose deliveries are all on
     * disk: pushed by any thread, their done mark is written here. */
    _Atomic(bk_ticket *) fin_head;
};

struct bk_authn_rt {
    struct ep_passwd_file *pwf;
    struct ep_scram_server *scram;
    struct ep_callout *callout;  /* custom authentication, or NULL */
    struct ep_x509_map *x509map; /* certificate subject -> attributes, or NULL */
};

struct ep_broker {
    ep_broker_config cfg;
    struct bk_authn_rt authn_rt[EP_BROKER_MAX_CHAINS];
    struct ep_authz *authz_rt[EP_BROKER_MAX_CHAINS];
    struct ep_auth_verifier *verifier;
    struct ep_auth_rl *rl;
    atomic_ulong auth_failures, authz_denied;
    struct bk_metrics *metrics;
    ep_tls_ctx *tls[EP_BROKER_MAX_LISTENERS];
    int nworkers;
    bk_worker **workers;
    bk_tree tree;
    atomic_ullong next_session_id;
    atomic_int nconnected;
    atomic_int nsessions;
    uint64_t start_ms;
    uint16_t ports[EP_BROKER_MAX_LISTENERS];
    int lfd[EP_BROKER_MAX_LISTENERS]; /* listening sockets, shared by workers */
    atomic_int stopped;
    struct bk_persist *persist; /* NULL without a data directory */
};

/* persist.c: the broker's state in the write-ahead log (docs/persistence.md).
 * Every bk_persist_* hook below is a no-op without a data directory or for
 * a session that is not persistent (s->plogged false). Hooks run on the
 * session's worker and append with w->cur_ticket, so the
 * acknowledgement of the PUBLISH being handled waits for them. */
enum {
    BK_PSTATE_QUEUED = 0, /* in the queue, not sent */
    /* in flight: BK_IF_PUBACK / BK_IF_PUBREC / BK_IF_PUBCOMP */
};
ep_err bk_persist_open(ep_broker *b);      /* ep_broker_start, before the workers run */
void bk_persist_start(ep_broker *b);       /* after the worker threads started */
void bk_persist_stop(ep_broker *b);        /* ep_broker_stop: any thread, only signals */
void bk_persist_close(ep_broker *b);       /* ep_broker_wait: snapshot and close */
void bk_persist_worker_exit(bk_worker *w); /* worker thread, on its way out */
/* bk_persist_on: appends are wanted (log open, replay over). */
bool bk_persist_on(const ep_broker *b);
/* bk_persist_sync: acknowledgements wait for the log (fdatasync in sync
 * mode, write() in periodic and none). */
bool bk_persist_sync(const ep_broker *b);
/* bk_persist_full: QoS > 0 publishes are refused for now (0x97). */
bool bk_persist_full(bk_worker *w);
bk_ticket *bk_ticket_new(void);
/* bk_ticket_settle drops one pending unit; bk_ticket_done also drops one
 * reference. NULL ok. */
void bk_ticket_settle(bk_ticket *t);
void bk_ticket_done(bk_ticket *t);
void bk_ticket_unref(bk_ticket *t);
void bk_ticket_fail(bk_ticket *t, ep_err err);
static inline bk_ticket *bk_ticket_hold(bk_ticket *t)
{
    if (t) {
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->pending, 1, memory_order_relaxed);
    }
    return t;
}
/* bk_ticket_ref takes a reference only (no pending unit). NULL ok. */
static inline bk_ticket *bk_ticket_ref(bk_ticket *t)
{
    if (t)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}
/* Session-level records; the return value matters only for message puts
 * (EP_EOK or the append error: the caller then drops the message). */
void bk_persist_session(bk_session *s); /* upsert (or delete if no longer persistent) */
void bk_persist_session_del(bk_session *s);
void bk_persist_sub(bk_session *s, const bk_sub *sub);
void bk_persist_unsub(bk_session *s, const bk_sub *sub);
/* *seq_out: 0, or (QoS 2 without a gate) the log seq that must be on disk
 * (written in periodic/none) before the message is first sent: a subscriber
 * must not see a QoS 2 message that a crash could make the broker forget.
 * `gate` (see bk_persist_gate) puts its routing's origin into the record. */
ep_err bk_persist_msg_put(bk_session *s, uint64_t pmid, uint8_t qos, uint8_t retain, uint8_t state,
                          uint16_t pid, ep_msg *m, bk_ticket *gate, uint64_t *seq_out);
void bk_persist_msg_state(bk_session *s, uint64_t pmid, uint8_t state, uint16_t pid);
void bk_persist_msg_del(bk_session *s, uint64_t pmid);
void bk_persist_qos2(bk_session *s, const bk_qos2_in *e, bool add);
/* bk_persist_qos2_done logs the done mark of e; when e's routing ticket is
 * w->cur_ticket its completion opens the routing's gate. */
void bk_persist_qos2_done(bk_session *s, const bk_qos2_in *e);
/* bk_persist_routing gives the ticket of a QoS 2 PUBLISH from persistent
 * session s an origin id (publisher's worker, before routing). */
void bk_persist_routing(bk_ticket *t, bk_session *s);
/* bk_persist_gate: a reference to the current routing's ticket when a QoS
 * `qos` delivery to s must wait for its done mark, else NULL. */
bk_ticket *bk_persist_gate(bk_session *s, uint8_t qos);
static inline bool bk_gate_open(bk_ticket *g)
{
    return g == NULL || atomic_load_explicit(&g->gate, memory_order_acquire) == BK_GATE_OPEN;
}
/* bk_persist_gate_wait registers worker w to be woken (bk_session_send_durable)
 * when g opens; returns true if it is open already. */
bool bk_persist_gate_wait(bk_worker *w, bk_ticket *g);
/* bk_persist_worker_fini drops what the worker still holds (shutdown). */
void bk_persist_worker_fini(bk_worker *w);
/* bk_persist_retain records a retained message (m) or its removal (NULL). */
void bk_persist_retain(bk_worker *w, ep_mqtt_slice topic, ep_msg *m);
/* Metrics (metrics.c reads these). */
typedef struct bk_persist_stats {
    uint64_t appends, append_failed, refused_full, disk_bytes, fsyncs, compactions;
    uint64_t snapshot_records, replayed_records, dropped_bytes;
    bool full;
} bk_persist_stats;
bool bk_persist_stats_get(ep_broker *b, bk_persist_stats *out);
void bk_persist_count_refused(ep_broker *b);
struct ep_histogram;
void bk_persist_set_histogram(ep_broker *b, struct ep_histogram *h);

/* metrics.c */
ep_err bk_metrics_init(ep_broker *b);
void bk_metrics_ready(ep_broker *b, bool ready);
void bk_metrics_fini(ep_broker *b);

/* auth.c */
ep_err bk_auth_init(ep_broker *b);
void bk_auth_fini(ep_broker *b);
void bk_auth_reload(ep_broker *b, bool force);
/* bk_auth_connect authenticates and authorizes a CONNECT on the session's
 * worker: EP_EOK to go on, EP_EAGAIN when paused for a check (the CONNECT
 * is handled again on resume), another error when refused (closed). */
ep_err bk_auth_connect(bk_conn *c, const ep_mqtt_connect *cn, ep_mqtt_slice cid);
/* bk_auth_method_allowed: may this listener use enhanced method `name`? */
bool bk_auth_method_allowed(const bk_conn *c, const char *method);
/* bk_authz_allows checks a PUBLISH topic or SUBSCRIBE filter (action is an
 * ep_authz_action). */
bool bk_authz_allows(bk_conn *c, int action, ep_mqtt_slice topic);
void bk_auth_conn_free(bk_conn *c);
void bk_conn_pause(bk_conn *c);
void bk_conn_arm_timer(bk_conn *c);
void bk_conn_resume(bk_conn *c);

/* transport.c */
/* bk_tx_read reads transport bytes (decrypted for TLS, still framed for
 * WebSockets): > 0, EP_EAGAIN, EP_ECLOSED or EP_ESECURITY. */
ssize_t bk_tx_read(bk_conn *c, void *buf, size_t n);
ssize_t bk_tx_write(bk_conn *c, const void *buf, size_t n);
/* bk_ws_feed takes raw WebSocket bytes: completes the upgrade, answers
 * pings and closes, and appends unmasked MQTT bytes to c->in. Returns
 * EP_EOK, or an error after which the connection must be closed (*why). */
ep_err bk_ws_feed(bk_conn *c, const uint8_t *p, size_t n, const char **why);
/* bk_ws_frame_out moves c->out into one binary frame on the ws wire. */
ep_err bk_ws_frame_out(bk_conn *c);
void bk_ws_free(bk_ws *ws);

/* broker.c */
uint16_t bk_worker_for_client(const ep_broker *b, const uint8_t *cid, size_t len);
/* bk_route returns the number of subscribers the message went to; when
 * congested_out is not NULL and a target session is congested, it receives
 * a reference to that session's flow cell (the caller unrefs it). */
uint32_t bk_route(bk_worker *w, ep_msg *msg, bk_session *from, ep_mqtt_slice partition,
                  bk_flow **congested_out);
void bk_worker_post_deliveries(bk_worker *w);
void bk_publish_internal(bk_worker *w, const char *topic, const char *payload, bool retain);
void bk_handoff(bk_conn *c, const uint8_t *pending, size_t n);

/* conn.c */
void bk_conn_accept(bk_worker *w, int fd, int listener, ep_tls *tls, bk_ws *ws, const uint8_t *pre,
                    size_t pre_len);
/* bk_conn_peer formats the peer address ("1.2.3.4:5678") for log lines. */
const char *bk_conn_peer(const bk_conn *c, char *buf, size_t n);
void bk_conn_close(bk_conn *c, int v5_rc, const char *why);
void bk_conn_want_flush(bk_conn *c);
ep_err bk_conn_send_packet(bk_conn *c, const ep_mqtt_packet *p);
/* Returns EP_EOK, EP_ETOOBIG (too big for this client: dropped) or EP_EFULL
 * (output buffer limit: not written). */
ep_err bk_conn_send_publish(bk_conn *c, ep_msg *m, uint8_t qos, uint16_t pid, bool retain,
                            bool dup);
void bk_worker_flush(ep_loop *loop, void *arg);
void bk_conn_free_all(bk_worker *w);
/* bk_conn_ack sends PUBACK/PUBREC (or PUBREL/PUBCOMP) now, or holds it
 * (taking `flow` and `ticket`) while flow is congested, the ticket's
 * records are not yet on disk, or earlier acks are held. A failed ticket
 * turns a PUBACK/PUBREC into 0x97/0x80 (v5) or closes a 3.1.1 connection. */
void bk_conn_ack(bk_conn *c, uint8_t type, uint16_t pid, uint8_t rc, bk_flow *flow,
                 bk_ticket *ticket);
/* bk_worker_release_acks sends every held ack whose flow has cleared. */
void bk_worker_release_acks(bk_worker *w);
/* bk_conn_release detaches c from its worker without closing the fd and
 * returns the fd (used to hand a connection to another worker). */
int bk_conn_release(bk_conn *c, ep_tls **tls, bk_ws **ws);

/* handle_*.c: each returns EP_EOK or an error after which the connection
 * has been closed (or must be). */
ep_err bk_handle_connect(bk_conn *c, const ep_mqtt_packet *p);
ep_err bk_handle_publish(bk_conn *c, const ep_mqtt_packet *p);
ep_err bk_handle_ack(bk_conn *c, const ep_mqtt_packet *p);
ep_err bk_handle_subscribe(bk_conn *c, const ep_mqtt_packet *p);
ep_err bk_handle_unsubscribe(bk_conn *c, const ep_mqtt_packet *p);
ep_err bk_handle_auth(bk_conn *c, const ep_mqtt_packet *p);
/* bk_send_auth sends AUTH rc for c's enhanced-authentication method, with
 * the data of the method's last step when it has any (c->auth set). */
void bk_send_auth(bk_conn *c, ep_mqtt_rc rc);

/* session.c */
bk_session *bk_session_find_cid(bk_worker *w, const uint8_t *cid, size_t len);
bk_session *bk_session_find_id(bk_worker *w, uint64_t id);
bk_session *bk_session_new(bk_worker *w, const uint8_t *cid, size_t len);
void bk_session_destroy(bk_session *s);
void bk_session_deliver(bk_session *s, ep_msg *m, uint8_t opts, bool retained);
void bk_session_pump(bk_session *s);
void bk_session_resend(bk_session *s);
void bk_session_detach(bk_session *s, bool publish_will);
void bk_session_publish_will(bk_session *s);
void bk_session_unsubscribe_all(bk_session *s);
uint32_t bk_session_collect_subids(bk_session *s, const ep_msg *m, uint32_t *ids, uint32_t max);
ep_err bk_session_ack(bk_session *s, uint8_t type, uint16_t pid);
bool bk_session_qos2_has(bk_session *s, uint16_t pid);
bk_qos2_in *bk_session_qos2_find(bk_session *s, uint16_t pid);
ep_err bk_session_qos2_add(bk_session *s, uint16_t pid);
bool bk_session_qos2_remove(bk_session *s, uint16_t pid);
/* bk_session_qos2_done marks pid as fully routed (and logs it). */
void bk_session_qos2_done(bk_session *s, uint16_t pid);
/* bk_session_qos2_finish marks the entry of routing t done (and logs it);
 * false when no entry of s belongs to t. */
bool bk_session_qos2_finish(bk_session *s, bk_ticket *t);
void bk_sessions_free_all(bk_worker *w);
void bk_session_update_flow(bk_session *s);
/* bk_session_send_durable sends the QoS 2 messages whose record is now on
 * disk (w->durable_seq). */
void bk_session_send_durable(bk_worker *w);

#endif
