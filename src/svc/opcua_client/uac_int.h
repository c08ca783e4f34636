/*
 * uac_int.h - internals of the OPC UA client, shared by its files only.
 *
 *   client.c    lifecycle, connection state machine, reconnect, keep-alive
 *   request.c   request table: handles, ids, timeouts, bounded queue
 *   session.c   CreateSession / ActivateSession / CloseSession, identities
 *   sub.c       subscriptions, monitored items, publish pipeline, acks,
 *               republish, transfer
 *   services.c  typed service helpers
 *   backoff.c   reconnect delays
 *   sync.c      synchronous helpers (CLI, tests)
 *   text.c      NodeId / Variant text forms
 *   link_chan.c the secure-channel link (see link.h)
 */
#ifndef EP_SVC_OPCUA_CLIENT_UAC_INT_H
#define EP_SVC_OPCUA_CLIENT_UAC_INT_H

#include "codec/opcua/arena.h"
#include "codec/opcua_crypto/cert.h"
#include "codec/opcua_crypto/crypto.h"
#include "core/buf.h"
#include "core/clock.h"
#include "svc/opcua_client/client.h"
#include "svc/opcua_client/link.h"

#define EP_UAC_LOG "opcua-client"

/* ---- backoff (backoff.c) ---- */
typedef struct ep_uac_backoff {
    uint32_t min_ms, max_ms;
    uint32_t attempt;
    uint64_t rng; /* xorshift state for jitter */
} ep_uac_backoff;

void ep_uac__backoff_init(ep_uac_backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed);
/* ep_uac__backoff_next returns the next delay: min * 2^attempt capped at
 * max, minus up to 25 % jitter; increments attempt. */
uint32_t ep_uac__backoff_next(ep_uac_backoff *b);
void ep_uac__backoff_reset(ep_uac_backoff *b);

/* ---- requests (request.c) ---- */

/* What a request is for, which decides how its response is routed. */
typedef enum ep_uac_req_kind {
    EP_UAC_REQ_USER = 0, /* application call: cb/ud */
    EP_UAC_REQ_INTERNAL, /* internal: icb/ictx */
    EP_UAC_REQ_PUBLISH,  /* publish pipeline */
} ep_uac_req_kind;

typedef struct ep_uac_req ep_uac_req;
typedef void (*ep_uac_icb)(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp);

struct ep_uac_req {
    ep_uac *client;
    ep_uac_req *next, *prev; /* in the active or queued list */
    ep_uac_req_kind kind;
    const ep_ua_type *req_type;
    const ep_ua_type *resp_type;
    void *queued_msg; /* heap copy while queued */
    uint32_t handle;
    uint32_t request_id;
    uint32_t timeout_ms;
    bool sent;
    bool needs_session;
    ep_timer timer;
    ep_uac_resp_cb cb;
    void *ud;
    ep_uac_icb icb;
    void *ictx; /* internal context (freed by icb) */
    /* publish only: acknowledgements carried by this request */
    size_t nacks;
    ep_ua_subscription_acknowledgement *acks;
};

/* ep_uac__req_submit sends msg (borrowed) of type, or queues a copy.
 * Fills the RequestHeader. On error nothing was queued and r is freed. */
ep_err ep_uac__req_submit(ep_uac *c, ep_uac_req *r, const void *msg);
ep_uac_req *ep_uac__req_new(ep_uac *c, ep_uac_req_kind kind, const ep_ua_type *req_type);
/* ep_uac__req_fail_all completes every request with err (connection lost);
 * publish requests give their acks back to the ack queue. */
void ep_uac__req_fail_all(ep_uac *c, ep_err err, bool keep_queued);
void ep_uac__req_free(ep_uac_req *r);
void ep_uac__req_flush_queue(ep_uac *c);
/* ep_uac__on_message is the link's message event. */
void ep_uac__on_message(void *ud, uint32_t request_id, const ep_ua_type *type, const void *body,
                        ep_ua_status st);
/* ep_uac__response_type maps a *Request type to its *Response type. */
const ep_ua_type *ep_uac__response_type(const ep_ua_type *req);

/* ---- subscriptions (sub.c) ---- */

/* ---- monitored item records (monrec.c) ---- */

/* What the client keeps of a monitored item to create it again. */
typedef struct ep_uac_mon {
    uint32_t client_handle;
    uint32_t server_id; /* 0 until the server answered */
    uint32_t attribute_id;
    uint32_t queue_size;
    double sampling_ms;
    ep_ua_nodeid node;             /* identifier on the heap */
    ep_ua_extensionobject *filter; /* heap copy, NULL: none */
    int8_t mode;
    bool discard_oldest;
} ep_uac_mon;

/* A subscription's records: a flat array and an index by client handle.
 * Pointers into v are valid until the next add or remove. */
typedef struct ep_uac_montab {
    ep_uac_mon *v;
    size_t n, cap;
    uint32_t *slots; /* record index + 1, 0 = empty */
    size_t nslots;   /* power of two, at least 2 n */
} ep_uac_montab;

ep_uac_mon *ep_uac__mon_find(const ep_uac_montab *t, uint32_t handle);
/* ep_uac__mon_reserve makes room for extra more records (EP_ENOMEM) */
ep_err ep_uac__mon_reserve(ep_uac_montab *t, size_t extra);
/* ep_uac__mon_add records r (borrowed, copied). EP_EEXIST if its client
 * handle is recorded already, EP_ENOMEM. */
ep_err ep_uac__mon_add(ep_uac_montab *t, const ep_ua_monitored_item_create_request *r);
/* ep_uac__mon_set_params updates sampling, queue and filter (copied) */
ep_err ep_uac__mon_set_params(ep_uac_mon *m, const ep_ua_monitoring_parameters *p);
void ep_uac__mon_remove(ep_uac_montab *t, uint32_t handle);
/* ep_uac__mon_request fills a request that borrows m's node and filter */
void ep_uac__mon_request(const ep_uac_mon *m, ep_ua_monitored_item_create_request *out);
void ep_uac__montab_fini(ep_uac_montab *t);

typedef struct ep_uac_held {
    uint32_t seq;
    ep_ua_notification_message msg; /* heap copy */
} ep_uac_held;

typedef enum ep_uac_sub_state {
    EP_UAC_SUB_CREATING = 0,
    EP_UAC_SUB_ACTIVE,
    EP_UAC_SUB_LOST, /* must be created again on the server */
    EP_UAC_SUB_DELETED,
} ep_uac_sub_state;

typedef struct ep_uac_sub {
    uint32_t id;
    uint32_t server_id;
    ep_uac_sub_state state;
    ep_uac_sub_opts opts;
    double revised_interval;
    uint32_t revised_keepalive, revised_lifetime;
    ep_uac_sub_handlers h;
    uint32_t next_seq; /* next sequence number expected, 0 unknown */
    /* gap handling: sequence numbers missing below the held messages */
    size_t nmissing, capmissing;
    uint32_t *missing;      /* sorted */
    uint8_t *missing_state; /* 0 to request, 1 in flight, 2 lost */
    size_t nheld, capheld;
    ep_uac_held *held; /* sorted by seq */
    ep_uac_montab mons;
    struct ep_uac_sub *next;
} ep_uac_sub;

void ep_uac__sub_on_session_ready(ep_uac *c, bool new_session);
void ep_uac__sub_on_link_lost(ep_uac *c);
void ep_uac__sub_free_all(ep_uac *c);
void ep_uac__publish_pump(ep_uac *c);
void ep_uac__ack_requeue(ep_uac *c, size_t n, const ep_ua_subscription_acknowledgement *acks);
/* ep_uac__publish_window_ms: how long without any publish response before
 * the connection counts as dead (0 = no subscription) */
uint64_t ep_uac__publish_window_ms(const ep_uac *c);
/* republish/ delivery entry point for a notification message (tests) */
void ep_uac__sub_on_notification(ep_uac *c, ep_uac_sub *s, const ep_ua_notification_message *m,
                                 bool republished);
ep_uac_sub *ep_uac__sub_find(const ep_uac *c, uint32_t id);
ep_uac_sub *ep_uac__sub_find_server(const ep_uac *c, uint32_t server_id);

/* ---- session (session.c) ---- */
void ep_uac__session_start(ep_uac *c); /* after link opened */
void ep_uac__session_close(ep_uac *c); /* CloseSession then link close */
void ep_uac__session_clear(ep_uac *c);

/* ---- the client ---- */

typedef enum ep_uac_phase {
    EP_UAC_PH_IDLE = 0,
    EP_UAC_PH_CHANNEL,  /* opening the channel */
    EP_UAC_PH_CREATE,   /* CreateSession in flight */
    EP_UAC_PH_ACTIVATE, /* ActivateSession in flight */
    EP_UAC_PH_TRANSFER, /* TransferSubscriptions / re-creation */
    EP_UAC_PH_READY,
    EP_UAC_PH_DISCOVERY, /* channel only, no session */
    EP_UAC_PH_WAIT,      /* backoff timer running */
    EP_UAC_PH_ENDPOINTS, /* None channel for GetEndpoints (server cert) */
} ep_uac_phase;

struct ep_uac {
    ep_loop *loop;
    ep_uac_opts opts; /* strings below are owned copies */
    char *url, *app_uri, *app_name, *session_name;
    char *user, *password, *cert_file, *key_file;
    const ep_ua_policy *policy;
    int32_t mode;
    ep_ua_pki *pki;
    ep_ua_cert *user_cert; /* X509 identity */
    ep_ua_key *user_key;

    ep_uac_state state;
    ep_uac_phase phase;
    bool discovery_only;
    bool ever_connected;
    ep_uac_link_factory link_factory;
    void *link_factory_ud;
    ep_uac_link *link;
    bool link_open;
    ep_timer connect_timer; /* connect timeout */
    ep_timer retry_timer;   /* backoff */
    ep_timer ka_timer;      /* keep-alive watchdog / read */
    uint64_t last_rx_ms;    /* loop time of the last response */
    bool ka_inflight;
    ep_uac_backoff backoff;
    ep_uac_done_cb connect_cb;
    void *connect_ud;
    ep_uac_done_cb close_cb;
    void *close_ud;
    char last_error[512];

    /* session */
    ep_ua_nodeid session_id; /* heap copies */
    ep_ua_nodeid auth_token;
    bool have_session;
    double revised_session_timeout;
    ep_ua_bytestring server_nonce; /* last one received */
    ep_ua_bytestring server_cert;  /* DER from CreateSession/channel */
    ep_ua_bytestring client_nonce;
    ep_ua_endpoint_description *endpoints; /* from CreateSession (heap) */
    size_t nendpoints;
    uint32_t server_max_request;

    /* requests */
    uint32_t next_handle;
    ep_uac_req *active_head; /* sent, awaiting response */
    ep_uac_req *queue_head, *queue_tail;
    uint32_t nactive, nqueued;

    /* subscriptions */
    ep_uac_sub *subs;
    uint32_t next_sub_id;
    uint32_t publish_outstanding;
    uint32_t publish_target;
    bool no_subscription_on_server;
    size_t nacks, capacks;
    ep_ua_subscription_acknowledgement *acks;

    ep_uac_stats stats;
    bool freeing;
    int in_callback;
};

void ep_uac__set_state(ep_uac *c, ep_uac_state st, ep_err err);
void ep_uac__set_error(ep_uac *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ep_uac__connection_lost closes the link and starts reconnecting (or
 * reports failure while connecting). */
void ep_uac__connection_lost(ep_uac *c, ep_err err, ep_ua_status st, const char *why);
/* ep_uac__drop_link detaches the link (graceful: CloseSecureChannel) and
 * destroys it from a deferred call. */
void ep_uac__drop_link(ep_uac *c, bool graceful);
/* ep_uac__session_ready: the session is active (first time or again). */
void ep_uac__session_ready(ep_uac *c, bool new_session);
/* ep_uac__connect_failed finishes a failed connect attempt. */
void ep_uac__connect_failed(ep_uac *c, ep_err err, ep_ua_status st);
/* ep_uac__set_link_factory replaces the link factory (tests). */
void ep_uac__set_link_factory(ep_uac *c, ep_uac_link_factory f, void *ud);
/* ep_uac__keepalive_kick re-arms the watchdog after traffic. */
void ep_uac__keepalive_arm(ep_uac *c);

static inline ep_ua_datetime ep_uac__now_dt(void)
{
    return ep_ua_datetime_from_unix_ms((int64_t)ep_clock_wall_ms());
}

#endif
