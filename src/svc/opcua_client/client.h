/*
 * client.h - asynchronous OPC UA client on the edgeplane event loop.
 *
 * One ep_uac holds one connection (secure channel + session) to one server
 * and lives on one loop thread; every function here must be called on that
 * thread, and every callback runs on it. Nothing blocks: a service call
 * returns at once and its callback runs when the response (or an error)
 * arrives. ep_uac_sync_wait (sync.c) runs the loop until a flag is set, for
 * the CLI and tests only.
 *
 *   ep_uac_opts o = {.url = "opc.tcp://plc:4840", .policy = "Basic256Sha256",
 *                    .mode = EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT,
 *                    .pki = pki};
 *   ep_uac_new(loop, &o, &c);
 *   ep_uac_connect(c, on_connected, ud);          // channel + session
 *   ep_uac_read(c, 1, &rvid, EP_UA_TIMESTAMPS_TO_RETURN_BOTH, on_read, ud);
 *
 * Connection life: connect opens the secure channel, creates and activates
 * the session. When the connection is lost later (socket error, channel
 * failure, keep-alive missed) the client reconnects with exponential backoff:
 * a new channel, ActivateSession of the same session; if the server no
 * longer knows the session, a new session and TransferSubscriptions (or, if
 * the server lost the subscriptions too, they are created again from the
 * client's records). Notifications the server still holds are recovered by
 * Republish: every gap in a subscription's sequence numbers is filled before
 * later notifications are delivered, so the application sees them in order.
 *
 * Requests: each carries a request handle and a timeout (opts); at most
 * max_outstanding are on the wire, the rest wait in a bounded queue. Publish
 * requests are separate: max_publish of them, and at least one more than
 * the active subscriptions (up to 64), are kept outstanding while a
 * subscription exists.
 *
 * Ownership: request arguments are borrowed for the duration of the call
 * (the request is encoded or copied before returning). Responses passed to
 * callbacks are borrowed for the duration of the callback only (they live in
 * the client's decode arena); copy with ep_ua_copy to keep them.
 */
#ifndef EP_SVC_OPCUA_CLIENT_CLIENT_H
#define EP_SVC_OPCUA_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/opcua/binary.h"
#include "codec/opcua/gen/types.h"
#include "codec/opcua_crypto/pki.h"
#include "core/err.h"
#include "core/loop.h"

typedef struct ep_uac ep_uac;

typedef enum ep_uac_state {
    EP_UAC_DISCONNECTED = 0, /* not connected, not trying */
    EP_UAC_CONNECTING,       /* first connection in progress */
    EP_UAC_CONNECTED,        /* session active: services may be called */
    EP_UAC_RECONNECTING,     /* connection lost, backoff / reconnect running */
    EP_UAC_CLOSING,          /* ep_uac_disconnect in progress */
} ep_uac_state;

/* User identity used to activate the session. */
typedef enum ep_uac_identity_kind {
    EP_UAC_ID_ANONYMOUS = 0,
    EP_UAC_ID_USERNAME,
    EP_UAC_ID_X509,
} ep_uac_identity_kind;

typedef struct ep_uac_identity {
    ep_uac_identity_kind kind;
    const char *user;      /* USERNAME */
    const char *password;  /* USERNAME; encrypted as the token policy says */
    const char *cert_file; /* X509: user certificate (DER or PEM) */
    const char *key_file;  /* X509: its private key */
} ep_uac_identity;

typedef void (*ep_uac_state_cb)(ep_uac *c, ep_uac_state st, ep_err err, void *ud);

/* Client options. Zero-initialisable: 0 / NULL means the default given. All
 * strings are copied by ep_uac_new. */
typedef struct ep_uac_opts {
    const char *url;             /* opc.tcp://host:port[/path]; required */
    const char *policy;          /* short name ("Basic256Sha256") or URI;
                                    NULL: None */
    int32_t mode;                /* EP_UA_MESSAGE_SECURITY_MODE_*; 0: None with
                                    policy None, else SignAndEncrypt */
    ep_uac_identity identity;    /* default anonymous */
    ep_ua_pki *pki;              /* borrowed; own certificate/key and server
                                    certificate validation. Required unless
                                    policy None and no secret to encrypt */
    const char *app_uri;         /* NULL: the URI of the pki's own certificate,
                                    or "urn:edgeplane:client" */
    const char *app_name;        /* NULL: "edgeplane OPC UA client" */
    const char *session_name;    /* NULL: "edgeplane" */
    uint32_t request_timeout_ms; /* 0: 10000 */
    uint32_t connect_timeout_ms; /* 0: 10000 (channel + session) */
    uint32_t session_timeout_ms; /* requested; 0: 120000 */
    uint32_t max_outstanding;    /* requests on the wire; 0: 32 */
    uint32_t max_queued;         /* requests waiting; 0: 4096 */
    uint32_t max_publish;        /* outstanding Publish, at least; 0: 4 */
    uint32_t keepalive_ms;       /* session check without subscriptions;
                                    0: 5000 */
    uint32_t reconnect_min_ms;   /* first backoff delay; 0: 250 */
    uint32_t reconnect_max_ms;   /* backoff cap; 0: 30000 */
    bool no_reconnect;           /* report loss instead of reconnecting */
    size_t max_message_size;     /* 0: 16 MiB */
    ep_uac_state_cb on_state;    /* state changes (may be NULL) */
    void *ud;
} ep_uac_opts;

/* ep_uac_new creates a disconnected client on loop (borrowed; the calling
 * thread must be the loop's). Returns EP_EOK, EP_EINVAL (no url, unknown
 * policy, bad mode, secure policy without pki), EP_ENOMEM. */
ep_err ep_uac_new(ep_loop *loop, const ep_uac_opts *opts, ep_uac **out);

/* ep_uac_free closes the connection abruptly (no CloseSession) and frees the
 * client. Pending callbacks are called with EP_ECLOSED first. NULL is
 * accepted. Must not be called from inside a client callback; use
 * ep_uac_free_deferred there. */
void ep_uac_free(ep_uac *c);
void ep_uac_free_deferred(ep_uac *c);

/* Completion of ep_uac_connect / ep_uac_disconnect. err is EP_EOK,
 * EP_ECONNREFUSED/EP_EIO/EP_ECLOSED/EP_ETIMEDOUT (connection),
 * EP_ESECURITY (certificate rejected, signature wrong, access denied:
 * st says which), EP_EPROTO (peer broke the protocol). */
typedef void (*ep_uac_done_cb)(ep_uac *c, ep_err err, ep_ua_status st, void *ud);

/* ep_uac_connect opens the channel and activates a session. cb may be NULL.
 * Returns EP_EOK (cb will run), EP_ESTATE if not disconnected. */
ep_err ep_uac_connect(ep_uac *c, ep_uac_done_cb cb, void *ud);

/* ep_uac_disconnect deletes the subscriptions, closes the session and the
 * channel. No subscription callback runs after this call (notifications
 * still arriving are dropped). cb (may be NULL) runs when done. Returns
 * EP_EOK or EP_ESTATE. */
ep_err ep_uac_disconnect(ep_uac *c, ep_uac_done_cb cb, void *ud);

ep_uac_state ep_uac_get_state(const ep_uac *c);
const char *ep_uac_state_name(ep_uac_state st);
/* ep_uac_last_error returns a sentence about the last failure ("" if none),
 * borrowed until the next client call. */
const char *ep_uac_last_error(const ep_uac *c);

/* ep_uac_err_from_status classifies a status: EP_ESECURITY for certificate,
 * signature, policy and identity failures, EP_ETIMEDOUT for BadTimeout,
 * EP_EPROTO otherwise. Any thread. */
ep_err ep_uac_err_from_status(ep_ua_status st);

/* Statistics, for tests and the benchmark. */
typedef struct ep_uac_stats {
    uint64_t requests, responses, timeouts;
    uint64_t publish_sent, publish_responses, keepalives;
    uint64_t notifications; /* data change + event items delivered */
    uint64_t republished;   /* messages recovered with Republish */
    uint64_t lost;          /* sequence numbers the server no longer had */
    uint64_t reconnects, session_recreated, transfers;
    uint32_t outstanding, queued, publish_outstanding;
} ep_uac_stats;
void ep_uac_get_stats(const ep_uac *c, ep_uac_stats *out);

/* ---- generic service call ------------------------------------------------
 *
 * ep_uac_request sends any service request: req is a value of req_type (a
 * *Request structure beginning with a RequestHeader, borrowed; the client
 * fills the header). cb receives err EP_EOK and the decoded response of the
 * matching *Response type, or err != EP_EOK with resp NULL:
 *   EP_ETIMEDOUT  no response within the request timeout (st BadTimeout)
 *   EP_ECLOSED    the connection was lost before the response
 *   EP_EPROTO     the server answered with a ServiceFault (st is its
 *                 serviceResult) or with a response of the wrong type
 *   EP_ESTATE     no active session (for session services)
 * A response whose serviceResult is bad is delivered with EP_EOK; check
 * resp's response_header.service_result. cb may be NULL.
 * Returns EP_EOK (cb will run exactly once), EP_EINVAL, EP_EFULL (queue
 * full), EP_ESTATE (client disconnected), EP_ENOMEM. */
typedef void (*ep_uac_resp_cb)(ep_uac *c, ep_err err, ep_ua_status st, const void *resp, void *ud);
ep_err ep_uac_request(ep_uac *c, const ep_ua_type *req_type, const void *req, ep_uac_resp_cb cb,
                      void *ud);

/* ---- typed helpers (services.c); arguments borrowed, errors as above ---- */

/* Discovery services may be called while CONNECTING/CONNECTED; with
 * ep_uac_discover a client that has no session opens a channel only. */
ep_err ep_uac_get_endpoints(ep_uac *c, ep_uac_resp_cb cb, void *ud);
ep_err ep_uac_find_servers(ep_uac *c, ep_uac_resp_cb cb, void *ud);
/* ep_uac_discover opens a secure channel without a session (GetEndpoints,
 * FindServers). cb runs when the channel is open. */
ep_err ep_uac_discover(ep_uac *c, ep_uac_done_cb cb, void *ud);

ep_err ep_uac_read(ep_uac *c, size_t n, const ep_ua_read_value_id *ids,
                   ep_ua_timestamps_to_return ts, ep_uac_resp_cb cb, void *ud);
ep_err ep_uac_write(ep_uac *c, size_t n, const ep_ua_write_value *values, ep_uac_resp_cb cb,
                    void *ud);
ep_err ep_uac_browse(ep_uac *c, size_t n, const ep_ua_browse_description *d, uint32_t max_refs,
                     ep_uac_resp_cb cb, void *ud);
ep_err ep_uac_browse_next(ep_uac *c, bool release, size_t n, const ep_ua_bytestring *cps,
                          ep_uac_resp_cb cb, void *ud);
ep_err ep_uac_translate(ep_uac *c, size_t n, const ep_ua_browse_path *paths, ep_uac_resp_cb cb,
                        void *ud);
ep_err ep_uac_call(ep_uac *c, size_t n, const ep_ua_call_method_request *m, ep_uac_resp_cb cb,
                   void *ud);

/* ---- subscriptions (sub.c) ------------------------------------------------
 *
 * A subscription is referred to by a client-side id (never 0) that stays the
 * same across reconnects, transfers and re-creation; ep_uac_sub_server_id
 * gives the server's current id. Monitored items are referred to by their
 * client handle, chosen by the application (unique within the
 * subscription) and used in notifications.
 */
typedef struct ep_uac_sub_opts {
    double publishing_interval_ms; /* 0: 1000 */
    uint32_t lifetime_count;       /* 0: 3 * keepalive count, at least 60 */
    uint32_t max_keepalive_count;  /* 0: 10 */
    uint32_t max_notifications;    /* per Publish; 0: unlimited */
    uint8_t priority;
} ep_uac_sub_opts;

typedef struct ep_uac_sub_handlers {
    /* one data change: client handle and the value (borrowed) */
    void (*on_data)(ep_uac *c, uint32_t sub_id, uint32_t client_handle, const ep_ua_datavalue *v,
                    void *ud);
    /* one event: client handle and its select-clause fields (borrowed) */
    void (*on_event)(ep_uac *c, uint32_t sub_id, uint32_t client_handle, size_t nfields,
                     const ep_ua_variant *fields, void *ud);
    /* a subscription status: StatusChangeNotification from the server,
     * BadMessageNotAvailable when `lost` notification messages the server
     * no longer holds were skipped, GoodSubscriptionTransferred /
     * BadSubscriptionIdInvalid when the subscription was moved to a new
     * session / created again after a reconnect */
    void (*on_status)(ep_uac *c, uint32_t sub_id, ep_ua_status st, uint32_t lost, void *ud);
    /* end of one notification message (after its items), may be NULL */
    void (*on_message)(ep_uac *c, uint32_t sub_id, uint32_t seq, ep_ua_datetime publish_time,
                       void *ud);
    void *ud;
} ep_uac_sub_handlers;

/* Completion of subscription calls; resp as for ep_uac_resp_cb (the
 * service response, e.g. CreateSubscriptionResponse), sub_id the client id. */
typedef void (*ep_uac_sub_cb)(ep_uac *c, ep_err err, ep_ua_status st, uint32_t sub_id,
                              const void *resp, void *ud);

/* ep_uac_sub_create creates a subscription; *sub_id is set at once (the id
 * is valid even before the server answers). h is copied. Returns EP_EOK,
 * EP_ESTATE (not connected), EP_ENOMEM, EP_EFULL. */
ep_err ep_uac_sub_create(ep_uac *c, const ep_uac_sub_opts *o, const ep_uac_sub_handlers *h,
                         ep_uac_sub_cb cb, void *ud, uint32_t *sub_id);
ep_err ep_uac_sub_modify(ep_uac *c, uint32_t sub_id, const ep_uac_sub_opts *o, ep_uac_sub_cb cb,
                         void *ud);
/* ep_uac_sub_delete deletes the subscription (DeleteSubscriptions); the id
 * is invalid at once, no more notifications are delivered. */
ep_err ep_uac_sub_delete(ep_uac *c, uint32_t sub_id, ep_uac_sub_cb cb, void *ud);
/* ep_uac_sub_server_id returns the server's id, 0 if not (yet) created. */
uint32_t ep_uac_sub_server_id(const ep_uac *c, uint32_t sub_id);

/* A monitored item to create. */
typedef struct ep_uac_mon_item {
    ep_ua_nodeid node;
    uint32_t attribute_id;  /* 0: Value (13); EventNotifier for events */
    uint32_t client_handle; /* unique within the subscription */
    double sampling_ms;     /* -1: publishing interval (default 0 = as
                               fast as the server samples) */
    uint32_t queue_size;    /* 0: 1 (events: 0 lets the server decide) */
    bool discard_newest;    /* default discard oldest */
    int32_t mode;           /* EP_UA_MONITORING_MODE_*; 0 -> REPORTING */
    /* data change filter (used when trigger or deadband set) */
    bool data_filter;
    ep_ua_data_change_trigger trigger;
    ep_ua_deadband_type deadband_type;
    double deadband;
    /* event filter: select clauses as BaseEventType browse names
     * ("EventId", "Message", "Severity", "SourceName", "Time", ...);
     * "A/B" selects a nested property. */
    size_t nselect;
    const char *const *select;
} ep_uac_mon_item;

/* ep_uac_mon_create creates n monitored items (TimestampsToReturn Both).
 * The items are remembered (for re-creation after a reconnect that lost the
 * subscription). resp is a CreateMonitoredItemsResponse. */
ep_err ep_uac_mon_create(ep_uac *c, uint32_t sub_id, size_t n, const ep_uac_mon_item *items,
                         ep_uac_sub_cb cb, void *ud);
/* ep_uac_mon_modify changes sampling interval, queue size and data change
 * filter of the items with the given client handles. */
ep_err ep_uac_mon_modify(ep_uac *c, uint32_t sub_id, size_t n, const ep_uac_mon_item *items,
                         ep_uac_sub_cb cb, void *ud);
/* ep_uac_mon_delete deletes the items with the given client handles. */
ep_err ep_uac_mon_delete(ep_uac *c, uint32_t sub_id, size_t n, const uint32_t *client_handles,
                         ep_uac_sub_cb cb, void *ud);

/* ep_uac_channels_alive returns how many secure channels opened by clients
 * of this process are not released yet (a channel outlives ep_uac_free until
 * its CloseSecureChannel went out and the server closed its side, or at
 * most about a second). A program that exits runs its loop until this is
 * 0. Any thread. */
unsigned long ep_uac_channels_alive(void);

/* ---- synchronous helpers (sync.c): CLI and tests only ------------------ */

/* ep_uac_sync_wait runs the client's loop until *done is non-zero or
 * timeout_ms passes. Returns EP_EOK or EP_ETIMEDOUT. */
ep_err ep_uac_sync_wait(ep_uac *c, const int *done, uint32_t timeout_ms);
/* ep_uac_sync_connect connects and waits. Errors as ep_uac_done_cb; *st
 * (may be NULL) receives the status. */
ep_err ep_uac_sync_connect(ep_uac *c, ep_ua_status *st);
ep_err ep_uac_sync_discover(ep_uac *c, ep_ua_status *st);
ep_err ep_uac_sync_disconnect(ep_uac *c);

/* ---- value helpers (text.c): any thread ------------------------------- */

/* ep_uac_nodeid_parse parses "i=85", "ns=2;s=Demo.Counter", "ns=1;g=...",
 * "ns=1;b=<base64>" or a bare number. String identifiers point into s
 * (borrowed). Returns EP_EOK or EP_EINVAL. */
ep_err ep_uac_nodeid_parse(const char *s, ep_ua_nodeid *out);
/* ep_uac_nodeid_format writes the same notation (truncated to n). */
void ep_uac_nodeid_format(const ep_ua_nodeid *id, char *buf, size_t n);
/* ep_uac_variant_format writes a readable value ("42", "\"text\"",
 * "[1, 2, 3]"), or JSON with json set (truncated to n). */
void ep_uac_variant_format(const ep_ua_variant *v, bool json, char *buf, size_t n);
/* ep_uac_variant_parse builds a scalar of builtin type id type_id (1..21
 * except 14/16/17 composite cases unsupported) from text into *out, with
 * storage in storage (at least 16 bytes, caller's) and strings pointing into
 * s. Returns EP_EOK or EP_EINVAL. */
ep_err ep_uac_variant_parse(const char *s, uint32_t type_id, void *storage, ep_ua_variant *out);

#endif
