/*
 * mqttc_int.h - internals of the MQTT client (include/ep/mqtt_client.h).
 *
 * Files:
 *   client.c     lifecycle, options, the connection state machine, backoff
 *                and keepalive timers, callback plumbing (enter/leave)
 *   io.c         reading and framing, packet dispatch, the write buffer and
 *                its before-poll flush
 *   outgoing.c   publish queue, in-flight window, PUBACK/PUBREC/PUBCOMP,
 *                resend on reconnect, outgoing topic aliases
 *   incoming.c   received PUBLISH, acknowledgements (auto and manual),
 *                incoming topic aliases, QoS 2 duplicate suppression
 *   subscribe.c  SUBSCRIBE/UNSUBSCRIBE requests and their acks
 *   pktid.c      packet identifier allocator (bitmap)
 *   backoff.c    reconnect delay computation
 *   props.c      property deep copy and encoding helpers
 *   env.c        ep_mqttc_options_from_env
 *   transport_tcp.c  the plain TCP transport
 *   transport_tls.c  the TLS transport (OpenSSL 3)
 *   auth.c       MQTT 5 enhanced authentication (SCRAM-SHA-256 client),
 *                AUTH packets and re-authentication
 *   spool.c      the optional disk spool of QoS 1/2 publications
 *
 * Every outstanding request is an mq_op that sits in exactly one list:
 * `queue` (publications not yet sent), `inflight` (QoS 1/2 sent, in send
 * order), `ctl_queue` / `ctl_wait` (SUBSCRIBE/UNSUBSCRIBE before / after
 * sending) or `done` (finished, completion not yet called). Ops holding a
 * packet id are also in the id hash, so acknowledgements are matched by id
 * in any order.
 *
 * Callbacks: user code is only ever called between enter() and leave() (from
 * an I/O or timer callback of the loop), never from an API call and never
 * from the before-poll hook. leave() runs pending completions; the last
 * leave() releases a client freed from inside a callback.
 */
#ifndef EP_SVC_MQTTC_INT_H
#define EP_SVC_MQTTC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/log.h"
#include "ep/mqtt_client.h"

#define MQC_LOG "mqttc"

/* Defaults for zero options. */
#define MQC_DEF_HOST "127.0.0.1"
#define MQC_DEF_PORT 1883u
#define MQC_DEF_KEEPALIVE 60u
#define MQC_DEF_MAX_PACKET (16u * 1024u * 1024u)
#define MQC_DEF_RECONNECT_MIN 500u
#define MQC_DEF_RECONNECT_MAX 30000u
#define MQC_DEF_CONNECT_TIMEOUT 10000u
#define MQC_DEF_QUEUE_MSGS 10000u
#define MQC_DEF_QUEUE_BYTES ((size_t)16u * 1024u * 1024u)
#define MQC_DEF_INFLIGHT 64u
#define MQC_STABLE_MS 10000u                  /* connection age that resets the backoff */
#define MQC_CLOSE_TIMEOUT 2000u               /* DISCONNECT flush limit */
#define MQC_HIGH_WATER ((size_t)256u * 1024u) /* stop encoding above this */
#define MQC_READ_CHUNK 16384u
#define MQC_ALIAS_OUT_CAP 1024u /* most outgoing aliases we use */

/* ---- pktid.c ---------------------------------------------------------- */

/* Packet identifiers 1..65535 in use, as a bitmap; allocation hands out the
 * next free id after the last one (so ids are not reused immediately). */
typedef struct ep_mqttc__ids {
    uint64_t bits[1024];
    uint16_t next; /* candidate for the next allocation */
    uint32_t used;
} ep_mqttc__ids;

void ep_mqttc__ids_init(ep_mqttc__ids *ids);
/* ep_mqttc__ids_alloc returns a free id (now in use), or 0 if none. */
uint16_t ep_mqttc__ids_alloc(ep_mqttc__ids *ids);
/* ep_mqttc__ids_release frees id; releasing a free id or 0 does nothing. */
void ep_mqttc__ids_release(ep_mqttc__ids *ids, uint16_t id);
bool ep_mqttc__ids_in_use(const ep_mqttc__ids *ids, uint16_t id);

/* ---- backoff.c -------------------------------------------------------- */

/* ep_mqttc__backoff returns the delay before reconnect attempt `attempt`
 * (0-based): min(max_ms, min_ms * 2^attempt), and with jitter a value in
 * [base/2, base] picked by rnd. */
uint32_t ep_mqttc__backoff(uint32_t min_ms, uint32_t max_ms, uint32_t attempt, bool jitter,
                           uint32_t rnd);
/* ep_mqttc__rand is xorshift64*; *state must not be 0. */
uint32_t ep_mqttc__rand(uint64_t *state);

/* ---- props.c ---------------------------------------------------------- */

/* ep_mqttc__props_dup deep-copies src into *dst (one allocation in *block;
 * free(*block) releases it). User Properties and Subscription Identifiers
 * from both `raw` and the arrays are kept. Returns EP_EOK or EP_ENOMEM. */
ep_err ep_mqttc__props_dup(ep_mqtt_props *dst, void **block, const ep_mqtt_props *src);
/* ep_mqttc__pub_props_encode encodes PUBLISH properties (without the Property
 * Length) into a malloc'd block (*out, *len; NULL/0 when empty), leaving out
 * Message Expiry Interval, which it returns in *expiry / *has_expiry.
 * Returns EP_EOK, EP_EINVAL (Topic Alias, Subscription Identifier or a
 * property not allowed in PUBLISH; not encodable), EP_ENOMEM. */
ep_err ep_mqttc__pub_props_encode(const ep_mqtt_props *p, uint8_t **out, size_t *len,
                                  bool *has_expiry, uint32_t *expiry);

/* ---- transports ------------------------------------------------------- */

/* ep_mqttc__tcp_connect starts a non-blocking TCP connect to host ("[v6]"
 * accepted) : port. Returns EP_EOK / EP_EAGAIN with *fd set, or an error. */
ep_err ep_mqttc__tcp_connect(const char *host, uint16_t port, int *fd);

/* The TLS transport's context (transport_ctx of ep_mqttc__transport_tls). */
typedef struct ep_mqttc__tls ep_mqttc__tls;
/* ep_mqttc__tls_new loads the files of o; host is the name checked when
 * o->server_name is NULL. Returns EP_EOK, EP_ECONFIG (why says which file
 * and what failed), EP_EINVAL (name too long), EP_ENOMEM. */
ep_err ep_mqttc__tls_new(ep_mqttc__tls **out, const ep_mqttc_tls_options *o, const char *host,
                         char *why, size_t why_len);
void ep_mqttc__tls_free(ep_mqttc__tls *t);
extern const ep_mqttc_transport_ops ep_mqttc__transport_tls;

/* ---- ops -------------------------------------------------------------- */

enum { MQ_OP_PUB = 1, MQ_OP_SUB, MQ_OP_UNSUB };

enum {
    MQ_ST_QUEUED = 1, /* PUB: waiting in `queue`; SUB/UNSUB: in ctl_queue */
    MQ_ST_WAIT_ACK,   /* PUB: PUBACK/PUBREC expected; SUB: SUBACK expected */
    MQ_ST_WAIT_COMP,  /* PUB QoS 2: PUBREL sent, PUBCOMP expected */
    MQ_ST_DONE,       /* in `done` */
};

typedef struct mq_op mq_op;
struct mq_op {
    mq_op *next, *prev; /* list links */
    mq_op *hnext;       /* id hash chain */
    uint8_t kind, state, qos;
    bool retain;
    bool sent;          /* PUB: sent at least once (DUP on resend) */
    uint16_t id;        /* 0 = none */
    uint64_t spool_key; /* PUB: key of its record in the disk spool, 0 = none */
    ep_msg *msg;        /* PUB */
    size_t acct;        /* PUB: bytes counted in queue limits */
    ep_buf pkt;         /* SUB/UNSUB: encoded packet */
    uint32_t nfilters;
    ep_mqttc_pub_done_fn pub_done;
    ep_mqttc_sub_done_fn sub_done;
    void *ud;
    /* result */
    ep_err err;
    ep_mqtt_rc rc;
    uint8_t *rcs;
    size_t nrcs;
};

typedef struct mq_list {
    mq_op *head, *tail;
    uint32_t n;
} mq_list;

void ep_mqttc__list_push(mq_list *l, mq_op *op);
void ep_mqttc__list_push_front(mq_list *l, mq_op *op);
void ep_mqttc__list_remove(mq_list *l, mq_op *op);
/* ep_mqttc__list_pop removes and returns the head, or NULL. */
mq_op *ep_mqttc__list_pop(mq_list *l);

/* ---- the client ------------------------------------------------------- */

typedef enum mq_state {
    MQ_IDLE = 0,     /* disconnected, nothing scheduled */
    MQ_WAIT_RETRY,   /* an attempt is scheduled on conn_timer */
    MQ_CONNECTING,   /* transport open/handshake in progress */
    MQ_WAIT_CONNACK, /* CONNECT sent */
    MQ_CONNECTED,
    MQ_CLOSING, /* DISCONNECT queued, closing once written */
} mq_state;

/* One outgoing topic alias slot (LRU list + hash chain by topic). */
typedef struct mq_alias {
    char *topic;
    uint16_t len;
    int32_t hnext, prev, next; /* indices, -1 = none */
    uint32_t hash;
} mq_alias;

/* Incoming QoS 1/2 state per server packet id, 2 bits each. */
enum { MQ_IN_NONE = 0, MQ_IN_Q1_APP, MQ_IN_Q2_APP, MQ_IN_Q2_REC };

struct ep_mqttc {
    ep_loop *loop;

    /* configuration (owned copies) */
    char *host;
    uint16_t port;
    char *client_id;
    uint8_t version;
    bool clean_start;
    uint32_t session_expiry;
    uint16_t keepalive;
    char *username;
    uint8_t *password;
    size_t password_len;
    bool has_password;
    char *password_file;
    char *will_topic;
    uint8_t *will_payload;
    size_t will_payload_len;
    uint8_t will_qos;
    bool will_retain;
    ep_mqtt_props will_props;
    void *will_props_block;
    uint16_t receive_max;
    uint32_t max_packet;
    uint16_t alias_in_max;
    uint32_t reconnect_min, reconnect_max;
    bool jitter, auto_reconnect;
    uint32_t connect_timeout;
    uint32_t queue_max_msgs;
    size_t queue_max_bytes;
    ep_mqttc_queue_policy policy;
    uint16_t inflight_max;
    bool manual_ack;
    const ep_mqttc_transport_ops *tops;
    void *tctx;
    ep_mqttc__tls *tls; /* owned TLS context when tls.enable */
    bool scram;         /* auth_method is SCRAM-SHA-256 */
    ep_mqttc_connect_fn on_connect;
    ep_mqttc_disconnect_fn on_disconnect;
    ep_mqttc_message_fn on_message;
    void *ud;

    /* connection */
    mq_state state;
    void *tconn;
    int fd;
    ep_io io;
    ep_buf in, out;
    bool want_write;
    ep_hook hook;
    ep_timer conn_timer; /* retry, connect timeout, close timeout */
    ep_timer ka_timer;
    ep_timer kick_timer; /* deferred work from API calls and the hook */
    uint32_t gen;        /* bumped when a connection ends */
    uint32_t attempt;
    bool ever_connected;
    bool established;             /* a CONNACK was accepted on this connection */
    bool fatal;                   /* last loss must not be retried */
    ep_err io_err;                /* write failure seen by the hook */
    struct ep_scram_client *auth; /* enhanced auth exchange in progress */
    bool reauth;                  /* ... and it is a re-authentication */
    char detail[256];             /* reason beyond the error code, or "" */
    uint64_t connected_at, last_tx, last_rx, ping_deadline;
    bool ping_out;
    uint32_t ka_ms;
    uint64_t rnd;

    /* negotiated with the server (CONNACK) */
    uint16_t srv_receive_max;
    uint32_t srv_max_packet; /* 0 = protocol maximum */
    uint16_t srv_alias_max;
    uint8_t srv_max_qos;
    bool srv_retain;

    /* outgoing */
    ep_mqttc__ids ids;
    struct ep_mqttc__spool *spool; /* disk spool, NULL when off (spool.c) */
    mq_op **htab;
    uint32_t hmask;
    mq_list queue, inflight, ctl_queue, ctl_wait, done;
    size_t queued_bytes;
    mq_alias *alias_out;
    int32_t *alias_htab;
    uint32_t alias_hmask;
    uint16_t alias_out_n, alias_out_cap;
    int32_t alias_lru_head, alias_lru_tail; /* head = most recent */

    /* incoming */
    uint8_t *in_st; /* 2 bits per packet id, allocated on first use */
    uint32_t in_unacked;
    char **alias_in;
    uint16_t *alias_in_len;

    ep_mqttc_stats st;

    /* callback nesting and deferred destruction */
    int depth;
    bool freeing, free_pending;
};

/* client.c */
void ep_mqttc__enter(ep_mqttc *c);
void ep_mqttc__leave(ep_mqttc *c);
/* ep_mqttc__kick arranges for deferred work to run from the loop soon. */
void ep_mqttc__kick(ep_mqttc *c);
/* ep_mqttc__conn_lost ends the current connection or attempt: releases the
 * transport, decides on a reconnect, calls on_disconnect. */
void ep_mqttc__conn_lost(ep_mqttc *c, ep_err err, ep_mqtt_rc reason, ep_mqtt_slice reason_string,
                         ep_mqtt_slice server_ref);
/* ep_mqttc__send_connect queues CONNECT once the transport is ready. */
ep_err ep_mqttc__send_connect(ep_mqttc *c);
/* ep_mqttc__protocol_error sends DISCONNECT (v5) with rc and ends the
 * connection with err. */
void ep_mqttc__protocol_error(ep_mqttc *c, ep_err err, ep_mqtt_rc rc, const char *what);
void ep_mqttc__on_connack(ep_mqttc *c, const ep_mqtt_connack *ca);
void ep_mqttc__on_pingresp(ep_mqttc *c);
void ep_mqttc__on_disconnect_pkt(ep_mqttc *c, const ep_mqtt_disconnect *d);

/* ep_mqttc__read_password_file re-reads password_file into password. */
ep_err ep_mqttc__read_password_file(ep_mqttc *c);
/* ep_mqttc__set_detail records a reason for the next on_disconnect. */
void ep_mqttc__set_detail(ep_mqttc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* auth.c */
/* ep_mqttc__auth_connect starts an exchange and adds Authentication Method
 * and Data to the CONNECT properties (data owned by the exchange). */
ep_err ep_mqttc__auth_connect(ep_mqttc *c, ep_mqtt_props *pr);
/* ep_mqttc__auth_connack checks the server-final of a successful CONNACK;
 * false when the connection must be dropped (already done). */
bool ep_mqttc__auth_connack(ep_mqttc *c, const ep_mqtt_connack *ca);
void ep_mqttc__on_auth(ep_mqttc *c, const ep_mqtt_auth *a);
/* ep_mqttc__auth_end frees the exchange. */
void ep_mqttc__auth_end(ep_mqttc *c);

/* io.c */
void ep_mqttc__on_io(ep_io *io, unsigned events);
void ep_mqttc__flush_hook(ep_loop *loop, void *arg);
/* ep_mqttc__send encodes p into the write buffer (flushed before the next
 * poll). Returns errors of ep_mqtt_packet_encode. */
ep_err ep_mqttc__send(ep_mqttc *c, const ep_mqtt_packet *p);
/* ep_mqttc__flush_now writes what it can without waiting. */
void ep_mqttc__flush_now(ep_mqttc *c);

/* outgoing.c */
mq_op *ep_mqttc__op_find(ep_mqttc *c, uint16_t id);
void ep_mqttc__op_hash_add(ep_mqttc *c, mq_op *op);
void ep_mqttc__op_hash_del(ep_mqttc *c, mq_op *op);
/* ep_mqttc__op_complete detaches op (from its list, the id hash and the id
 * allocator), records the result and queues the completion. */
void ep_mqttc__op_complete(ep_mqttc *c, mq_list *from, mq_op *op, ep_err err, ep_mqtt_rc rc);
void ep_mqttc__op_free(mq_op *op);
/* ep_mqttc__drain_done calls the completions in `done`. */
void ep_mqttc__drain_done(ep_mqttc *c);
/* ep_mqttc__pump moves queued publications to the wire within the window. */
void ep_mqttc__pump(ep_mqttc *c);
/* ep_mqttc__session_resume re-sends in-flight PUBLISH (DUP) and PUBREL in
 * order; ep_mqttc__session_reset handles a CONNACK without session: the
 * in-flight publications go back to the front of the queue. */
void ep_mqttc__session_resume(ep_mqttc *c);
void ep_mqttc__session_reset(ep_mqttc *c);
void ep_mqttc__on_pub_ack(ep_mqttc *c, ep_mqtt_type type, const ep_mqtt_ack *a);
void ep_mqttc__alias_out_reset(ep_mqttc *c);
/* ep_mqttc__fail_all completes every op with err (client freed). */
void ep_mqttc__fail_all(ep_mqttc *c, ep_err err);

/* spool.c: the optional disk spool of QoS 1/2 publications (a core/wal
 * log in options.spool_dir). Records: PUT (key, message) when accepted,
 * DONE (key) when finished; a compaction snapshot holds the PUT records of
 * the messages still pending (in flight, then queued). */
typedef struct ep_mqttc__spool ep_mqttc__spool;
/* ep_mqttc__spool_open opens dir (max_bytes 0 = unbounded) and queues the
 * messages not done, in their original order. Returns EP_EOK or the
 * error of ep_wal_open / EP_ENOMEM. */
ep_err ep_mqttc__spool_open(ep_mqttc *c, const char *dir, uint64_t max_bytes);
void ep_mqttc__spool_close(ep_mqttc *c);
/* ep_mqttc__spool_put writes op (QoS 1/2) to the spool and waits until the
 * record is on disk; when the spool is full it applies the queue policy.
 * Returns EP_EOK (op->spool_key set), EP_EFULL, EP_ETOOBIG, EP_EIO. */
ep_err ep_mqttc__spool_put(ep_mqttc *c, mq_op *op);
/* ep_mqttc__spool_done marks op finished (no wait; a lost mark means a
 * duplicate after a restart, never a loss). */
void ep_mqttc__spool_done(ep_mqttc *c, mq_op *op);
/* ep_mqttc__spool_compact writes the pending messages as a snapshot. */
ep_err ep_mqttc__spool_compact(ep_mqttc *c);

/* incoming.c */
void ep_mqttc__on_publish(ep_mqttc *c, const ep_mqtt_publish *p);
void ep_mqttc__on_pubrel(ep_mqttc *c, const ep_mqtt_ack *a);
/* ep_mqttc__in_new_conn drops per-connection incoming state; with
 * keep_session false also the QoS 2 receive state. */
void ep_mqttc__in_new_conn(ep_mqttc *c, bool keep_session);
void ep_mqttc__alias_in_reset(ep_mqttc *c);

/* subscribe.c */
void ep_mqttc__ctl_send_queued(ep_mqttc *c);
void ep_mqttc__on_suback(ep_mqttc *c, ep_mqtt_type type, const ep_mqtt_suback *s);
/* ep_mqttc__ctl_conn_lost completes requests sent but unanswered. */
void ep_mqttc__ctl_conn_lost(ep_mqttc *c);

#endif
