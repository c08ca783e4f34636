/*
 * server_int.h - internal structures of the OPC UA server, shared by
 * server.c (channels, sessions, dispatch, discovery), server_space.c
 * (address space, View/Attribute/Method services) and server_sub.c
 * (subscriptions, monitored items, Publish, events).
 */
#ifndef EP_SVC_OPCUA_SERVER_INT_H
#define EP_SVC_OPCUA_SERVER_INT_H

#include "codec/opcua/gen/nodeids.h"
#include "codec/opcua/gen/statuscodes.h"
#include "codec/opcua/gen/types.h"
#include "svc/opcua/server.h"

#define UA_LOG "opcua"

typedef struct ua_ref {
    uint32_t type; /* ns=0 ReferenceType id */
    bool inverse;
    ep_ua_node *target;
} ua_ref;

typedef struct ua_item ua_item;
typedef struct ua_sub ua_sub;
typedef struct ua_session ua_session;

struct ep_ua_node {
    ep_ua_nodeid id; /* heap copy */
    uint8_t node_class;
    ep_ua_qualifiedname browse_name;
    ep_ua_localizedtext display_name;
    ua_ref *refs;
    uint32_t nrefs, cap;
    ep_ua_node *type_def;
    ep_ua_node *hnext;
    /* variable */
    ep_ua_variant value; /* heap (ep_ua_copy) */
    ep_ua_status status;
    ep_ua_datetime source_ts, server_ts;
    uint32_t data_type;
    int32_t value_rank;
    uint8_t access_level;
    uint64_t version; /* bumped on every change */
    /* object */
    uint8_t event_notifier;
    /* method */
    ep_ua_server_method_fn fn;
    void *fn_ud;
    uint32_t *arg_types; /* declared input DataTypes (ns=0 ids) */
    size_t nargs;
    /* types */
    bool is_abstract, symmetric;
    /* event monitored items watching this node */
    ua_item *ev_items;
};

/* A browse continuation point. */
typedef struct ua_cp {
    uint64_t id;
    ep_ua_node *node;
    uint32_t next_ref;
    uint32_t max;
    ep_ua_browse_direction dir;
    uint32_t ref_type;
    bool subtypes;
    uint32_t class_mask, result_mask;
} ua_cp;

#define UA_MAX_CP 16

typedef struct ua_pub {
    uint32_t request_id, handle;
} ua_pub;

struct ua_session {
    ep_ua_server *srv;
    uint32_t num;
    ep_ua_nodeid session_id, auth_token; /* numeric ns=1 / GUID */
    ep_ua_channel *ch;
    bool activated;
    char name[128];
    char user[128]; /* "" anonymous */
    uint8_t nonce[32];
    size_t nonce_len;
    uint8_t *client_cert;
    size_t client_cert_len;
    uint32_t timeout_ms;
    ep_timer timer;
    ua_pub *pubs; /* ring of queued Publish requests */
    unsigned npubs, pub_head;
    ua_sub *subs;
    bool orphan; /* ended; only holds subscriptions kept for transfer */
    ua_cp cps[UA_MAX_CP];
    unsigned ncps;
    ua_session *next;
};

typedef struct ua_group ua_group;

typedef struct ua_event {
    ep_ua_variant *fields; /* heap, item->nsel entries */
} ua_event;

/* A notification taken from an item's queue at the start of a publishing
 * cycle, waiting to be sent (ua_sub.harv). */
typedef struct ua_notif {
    uint32_t client_handle;
    bool is_event;
    uint32_t nsel;         /* event: number of fields */
    ep_ua_datavalue dv;    /* data change (owned) */
    ep_ua_variant *fields; /* event: heap, nsel entries */
} ua_notif;

struct ua_item {
    uint32_t id, client_handle;
    ua_sub *sub;
    ep_ua_node *node;
    uint32_t attr;
    int32_t mode;
    uint32_t sampling_ms;
    uint32_t queue_size;
    bool discard_oldest;
    int32_t trigger;
    uint32_t deadband_type;
    double deadband;
    int32_t ts_return;
    uint64_t last_version;
    bool has_last;
    double last_num; /* last reported numeric value (deadband) */
    ep_ua_status last_status;
    /* data queue (ring) */
    ep_ua_datavalue *q;
    uint32_t qhead, qlen;
    bool overflow;
    /* events */
    bool is_event;
    size_t nsel;
    int *sel; /* field ids per select clause */
    ua_event *eq;
    uint32_t eqhead, eqlen;
    ua_item *ev_next;
    /* sampling group membership */
    ua_group *group;
    size_t gidx;
    /* subscription ready list */
    ua_item *ready_next;
    bool ready;
    ua_item *hnext; /* subscription id hash chain */
};

struct ua_group {
    uint32_t interval_ms;
    ep_timer timer;
    ua_item **items;
    size_t n, cap;
    ep_ua_server *srv;
    ua_group *next;
};

typedef struct ua_retx {
    uint32_t seq;
    ep_buf msg; /* encoded NotificationMessage */
} ua_retx;

struct ua_sub {
    uint32_t id;
    ua_session *s;
    ep_ua_server *srv;
    uint32_t interval_ms;
    uint32_t lifetime_count, keepalive_count, max_notif;
    bool enabled;
    uint8_t priority;
    ep_timer timer;
    uint32_t next_seq;
    uint32_t keepalive_ctr, lifetime_ctr;
    bool late;
    ua_item **ihash; /* items by id */
    size_t ihash_cap, nitems;
    uint32_t next_item_id;
    ua_item *ready_head, *ready_tail;
    size_t pending; /* notifications queued on the items */
    ua_notif *harv; /* this cycle's notifications, not sent yet */
    size_t harv_head, harv_len, harv_cap;
    ua_retx *retx; /* ring */
    unsigned nretx, retx_head;
    ep_ua_status status_change; /* pending StatusChangeNotification */
    ua_sub *next;
};

#define UA_MAX_REVERSE 16

struct ep_ua_server {
    ep_loop *loop;
    ep_ua_listener *listener;
    ep_ua_channel_opts chopts;              /* for reverse connections */
    ep_ua_channel *reverse[UA_MAX_REVERSE]; /* reverse channels not closed */
    unsigned nreverse;
    ep_ua_pki *pki;
    ep_ua_server_limits lim;
    ep_ua_channel_limits chlim;
    unsigned policies;
    bool no_anonymous, x509_users;
    ep_ua_server_user *users;
    size_t nusers;
    char *app_uri, *app_name, *product_uri, *url;
    /* address space */
    ep_ua_node **nodes;
    size_t nodes_cap, nnodes;
    char **ns; /* NamespaceArray */
    size_t nns;
    ep_ua_node *n_namespaces, *n_status, *n_current_time, *n_state, *n_server;
    ep_ua_datetime start_time;
    ep_timer status_timer;
    /* sessions and subscriptions */
    ua_session *sessions;
    ua_session *orphans; /* ended sessions still holding subscriptions */
    unsigned nsessions;
    uint32_t next_session, next_sub_id;
    ua_group *groups;
    unsigned nsubs;
    size_t nitems;
    uint64_t notifications_sent, publish_responses, requests;
    ep_ratelimit rl;
};

/* ---- server.c ---- */
ep_ua_datetime ep_ua__now(void);
void ep_ua__resp_header(ep_ua_response_header *h, uint32_t handle, ep_ua_status st);
void ep_ua__send_fault(ep_ua_channel *ch, uint32_t request_id, uint32_t handle, ep_ua_status st);
void ep_ua__send(ep_ua_channel *ch, uint32_t request_id, const ep_ua_type *type, void *body,
                 ep_ua_response_header *rh);
/* arena helper: zeroed array of n elements of size sz. */
void *ep_ua__alloc(ep_ua_arena *a, size_t n, size_t sz);

/* ---- server_space.c ---- */
ep_err ep_ua__space_init(ep_ua_server *srv);
void ep_ua__space_free(ep_ua_server *srv);
bool ep_ua__ref_is_subtype(uint32_t type, uint32_t base);
void ep_ua__read_attr(ep_ua_server *srv, ep_ua_node *n, uint32_t attr, int32_t ts,
                      ep_ua_datavalue *out, ep_ua_arena *arena);
void ep_ua__svc_browse(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                       const ep_ua_channel_msg *m);
void ep_ua__svc_browse_next(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                            const ep_ua_channel_msg *m);
void ep_ua__svc_translate(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                          const ep_ua_channel_msg *m);
void ep_ua__svc_read(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                     const ep_ua_channel_msg *m);
void ep_ua__svc_write(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                      const ep_ua_channel_msg *m);
void ep_ua__svc_call(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                     const ep_ua_channel_msg *m);
void ep_ua__status_tick(ep_timer *t);

/* ---- server_sub.c ---- */
void ep_ua__svc_create_sub(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                           const ep_ua_channel_msg *m);
void ep_ua__svc_modify_sub(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                           const ep_ua_channel_msg *m);
void ep_ua__svc_delete_subs(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                            const ep_ua_channel_msg *m);
void ep_ua__svc_set_publishing(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                               const ep_ua_channel_msg *m);
void ep_ua__svc_create_items(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                             const ep_ua_channel_msg *m);
void ep_ua__svc_modify_items(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                             const ep_ua_channel_msg *m);
void ep_ua__svc_delete_items(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                             const ep_ua_channel_msg *m);
void ep_ua__svc_set_monitoring(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                               const ep_ua_channel_msg *m);
void ep_ua__svc_publish(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                        const ep_ua_channel_msg *m);
void ep_ua__svc_republish(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                          const ep_ua_channel_msg *m);
void ep_ua__svc_transfer(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                         const ep_ua_channel_msg *m);
/* Session teardown: deletes every subscription of s. */
void ep_ua__subs_delete_all(ep_ua_server *srv, ua_session *s);
/* Channel of s went away: queued Publish requests are dropped. */
void ep_ua__session_detached(ep_ua_server *srv, ua_session *s);
void ep_ua__groups_free(ep_ua_server *srv);
void ep_ua__event_raise(ep_ua_server *srv, ep_ua_node *src, uint16_t sev, const char *msg);

/* ep_ua__timer_again re-arms periodic timer t (from its callback) at its
 * last due time plus interval_ms (server_sub.c) */
void ep_ua__timer_again(ep_timer *t, uint64_t interval_ms);

/* ep_ua__orphan_release frees an orphan session once its last
 * subscription is gone (server.c) */
void ep_ua__orphan_release(ep_ua_server *srv, ua_session *s);

#endif
