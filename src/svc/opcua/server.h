/*
 * server.h - OPC UA server on the project's event loop: an address space
 * built from C, sessions, and the service sets a simulation server and an
 * embedded device need (Discovery, Session, View, Attribute, Method,
 * Subscription, MonitoredItem).
 *
 * The server owns an ep_ua_listener (channel.h); every request that
 * arrives on a channel is dispatched to one handler per service. Nodes are
 * created from C with the ep_ua_server_add_* functions, before or while
 * the server runs; values are changed with ep_ua_server_set_value, and
 * monitored items see changes at their next sample.
 *
 * Limits (zero in the options means the default, each documented in
 * docs/opcua.md):
 *   max_sessions                 100
 *   max_subscriptions_per_session 50
 *   max_items_per_subscription   200000
 *   max_notifications_per_publish 1000 (node-opcua clients accept no more;
 *                                 a client's smaller non-zero request wins)
 *   max_publish_per_session      20 queued Publish requests
 *   max_retransmit               100 notification messages per subscription
 *   max_session_timeout_ms       3600000
 *   max_browse_refs              1000 references per node per Browse
 *   max_nodes_per_request        100000 (Read, Write, Browse, Call, ...)
 *   channel limits               see channel.h
 *
 * Threads: the server and all its nodes belong to the loop's thread;
 * every function here must be called on it.
 */
#ifndef EP_SVC_OPCUA_SERVER_H
#define EP_SVC_OPCUA_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/opcua/binary.h"
#include "codec/opcua_crypto/pki.h"
#include "core/err.h"
#include "core/loop.h"
#include "svc/opcua/channel.h"

typedef struct ep_ua_server ep_ua_server;
typedef struct ep_ua_node ep_ua_node;

typedef struct ep_ua_server_user {
    const char *name;
    const char *password;
} ep_ua_server_user;

typedef struct ep_ua_server_limits {
    unsigned max_sessions;
    unsigned max_subscriptions_per_session;
    unsigned max_items_per_subscription;
    unsigned max_notifications_per_publish;
    unsigned max_publish_per_session;
    unsigned max_retransmit;
    uint32_t max_session_timeout_ms;
    unsigned max_browse_refs;
    unsigned max_nodes_per_request;
} ep_ua_server_limits;

/* Server options; zero-initialisable except url. Strings are copied. */
typedef struct ep_ua_server_opts {
    const char *url;                /* "opc.tcp://host:port" to listen on */
    const char *app_uri;            /* NULL: "urn:edgeplane:opcua-server" */
    const char *app_name;           /* NULL: "edgeplane OPC UA server" */
    const char *product_uri;        /* NULL: "urn:edgeplane" */
    ep_ua_pki *pki;                 /* borrowed; required for secure policies */
    unsigned policies;              /* bit 1u << ep_ua_policy_id; 0: None only */
    bool no_anonymous;              /* refuse AnonymousIdentityToken */
    bool allow_x509_users;          /* offer the X509 user token */
    const ep_ua_server_user *users; /* UserName accounts (copied) */
    size_t nusers;
    ep_ua_server_limits limits;
    ep_ua_channel_limits channel;
} ep_ua_server_opts;

/* ep_ua_server_new creates the server with the standard namespace-0 nodes
 * (Root, Objects, Types, Views, Server with NamespaceArray, ServerArray,
 * ServerStatus and its children, ServerCapabilities) and starts listening.
 * Returns EP_EOK, EP_EINVAL (no url, secure policies without pki),
 * EP_ENOMEM, or a listen error (EP_EADDRINUSE...). */
ep_err ep_ua_server_new(ep_loop *loop, const ep_ua_server_opts *opts, ep_ua_server **out);
/* ep_ua_server_free closes every channel and session and frees the address
 * space. NULL is a no-op. */
void ep_ua_server_free(ep_ua_server *srv);
/* ep_ua_server_reverse_connect connects out to a client's reverse-connect
 * listener at client_url ("opc.tcp://host:port") and sends a ReverseHello
 * (ServerUri = the application URI, EndpointUrl = the server's endpoint
 * URL); the client then opens a secure channel and sessions on that
 * connection as on an accepted one. One connection per call, not redialled
 * when it closes. Loop thread. Returns EP_EOK (the connection is being
 * made), EP_EINVAL, EP_EFULL (16 reverse connections open), EP_ENOMEM or a
 * connect error. */
ep_err ep_ua_server_reverse_connect(ep_ua_server *srv, const char *client_url);
/* ep_ua_server_port returns the bound TCP port. */
uint16_t ep_ua_server_port(const ep_ua_server *srv);
/* ep_ua_server_endpoint_url returns the URL clients should use (the listen
 * URL with the bound port). Borrowed. */
const char *ep_ua_server_endpoint_url(const ep_ua_server *srv);

/* ep_ua_server_add_namespace appends uri to the NamespaceArray (or finds
 * it) and returns its index, 0 on allocation failure. */
uint16_t ep_ua_server_add_namespace(ep_ua_server *srv, const char *uri);

/* ---- address space ---- */

/* Node creation. id and parent are borrowed (copied). parent NULL means no
 * parent reference; ref_type is the reference from parent to the new node
 * (0: Organizes for folders/objects under a folder, HasComponent
 * otherwise). The browse name takes the namespace of id. *out (may be
 * NULL) receives a handle valid until the server is freed.
 * Errors: EP_EEXIST (id in use), EP_ENOTFOUND (parent unknown), EP_EINVAL,
 * EP_ENOMEM. */
ep_err ep_ua_server_add_object(ep_ua_server *srv, const ep_ua_nodeid *id,
                               const ep_ua_nodeid *parent, uint32_t ref_type,
                               const char *browse_name, uint32_t type_def, uint8_t event_notifier,
                               ep_ua_node **out);
/* initial (borrowed, copied) gives the value and its type; data_type is the
 * ns=0 DataType id (0: taken from the value's type). access_level is a
 * mask of EP_UA_ACCESS_* (0: read only). */
ep_err ep_ua_server_add_variable(ep_ua_server *srv, const ep_ua_nodeid *id,
                                 const ep_ua_nodeid *parent, uint32_t ref_type,
                                 const char *browse_name, const ep_ua_variant *initial,
                                 uint32_t data_type, uint8_t access_level, ep_ua_node **out);

#define EP_UA_ACCESS_READ 0x01u
#define EP_UA_ACCESS_WRITE 0x02u

/* A method implementation: inputs borrowed; outputs allocated from arena
 * (valid until the response is sent). Returns the method's status. */
typedef ep_ua_status (*ep_ua_server_method_fn)(ep_ua_server *srv, void *ud,
                                               const ep_ua_nodeid *object, size_t nin,
                                               const ep_ua_variant *in, size_t *nout,
                                               ep_ua_variant **out, ep_ua_arena *arena);

/* ep_ua_server_add_method adds a method with InputArguments and
 * OutputArguments properties (args borrowed, copied; may be NULL). */
ep_err ep_ua_server_add_method(ep_ua_server *srv, const ep_ua_nodeid *id,
                               const ep_ua_nodeid *parent, const char *browse_name, size_t nin,
                               const ep_ua_argument *in, size_t nout, const ep_ua_argument *outargs,
                               ep_ua_server_method_fn fn, void *ud, ep_ua_node **out);

/* ep_ua_server_add_reference adds src --ref_type--> dst (and the inverse).
 * Errors: EP_ENOTFOUND, EP_ENOMEM. */
ep_err ep_ua_server_add_reference(ep_ua_server *srv, const ep_ua_nodeid *src, uint32_t ref_type,
                                  const ep_ua_nodeid *dst);

/* ep_ua_server_find returns the node with id, or NULL. */
ep_ua_node *ep_ua_server_find(ep_ua_server *srv, const ep_ua_nodeid *id);

/* ep_ua_server_set_value replaces a variable's value (v borrowed, copied;
 * same type as before for the fast path) with source timestamp ts (0:
 * now). Returns EP_EOK, EP_EINVAL (not a variable), EP_ENOMEM. */
ep_err ep_ua_server_set_value(ep_ua_server *srv, ep_ua_node *n, const ep_ua_variant *v,
                              ep_ua_datetime ts);
/* ep_ua_server_set_double is set_value for a Double scalar (fast path). */
ep_err ep_ua_server_set_double(ep_ua_server *srv, ep_ua_node *n, double d);
/* ep_ua_server_value borrows the current value of a variable (NULL if not
 * a variable). */
const ep_ua_variant *ep_ua_server_value(const ep_ua_node *n);

/* ep_ua_server_emit_event raises a BaseEventType event from source (an
 * object; its SourceName is its browse name) to every event monitored
 * item on the source, on its notifier parents and on the Server object.
 * message borrowed. Returns EP_EOK, EP_ENOTFOUND, EP_ENOMEM. */
ep_err ep_ua_server_emit_event(ep_ua_server *srv, const ep_ua_nodeid *source, uint16_t severity,
                               const char *message);

/* Counters for logs and benchmarks. */
typedef struct ep_ua_server_stats {
    unsigned channels, sessions, subscriptions;
    size_t monitored_items;
    uint64_t notifications_sent, publish_responses, requests;
} ep_ua_server_stats;
void ep_ua_server_get_stats(const ep_ua_server *srv, ep_ua_server_stats *st);

#endif
