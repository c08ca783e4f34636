/*
 * broker.h - the MQTT 3.1.1 + 5.0 broker service.
 *
 * The broker runs one event loop per worker thread (default: one per core).
 * Every worker accepts on the same ports (SO_REUSEPORT), and a session lives
 * on the worker chosen by a hash of its client identifier, so all state of a
 * session is touched by one thread only: a connection whose CONNECT arrives
 * on another worker is handed over before anything else happens. Workers
 * share only the topic tree (subscriptions and retained messages, under a
 * read-write lock) and exchange deliveries through mailboxes.
 *
 * Lifecycle: ep_broker_new -> ep_broker_start -> ... -> ep_broker_stop ->
 * ep_broker_free. ep_broker_stop may be called from any thread or a signal
 * handler's deferred context (it only posts).
 */
#ifndef EP_SVC_BROKER_H
#define EP_SVC_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/sock.h"

#define EP_BROKER_MAX_LISTENERS 8

typedef enum ep_broker_queue_policy {
    EP_BROKER_DROP_OLDEST = 0, /* make room by dropping the oldest queued */
    EP_BROKER_REFUSE_NEW = 1,  /* keep the queue, drop the new message */
} ep_broker_queue_policy;

/* Limits. Every resource a peer can grow is bounded by one of these. Zero
 * means "use the default" (see ep_broker_config_defaults). */
typedef struct ep_broker_limits {
    uint32_t max_connections;     /* whole broker */
    uint32_t max_packet_size;     /* bytes, both directions (CONNACK) */
    uint32_t max_queued_messages; /* per session, waiting for a window slot */
    uint64_t max_queued_bytes;    /* per session */
    uint32_t queue_policy;        /* ep_broker_queue_policy */
    uint16_t max_inflight;        /* our send window per client */
    uint16_t receive_maximum;     /* what we accept from clients (CONNACK) */
    uint32_t max_outbuf;          /* unsent bytes per connection */
    uint32_t max_topic_length;    /* bytes */
    uint32_t max_topic_levels;
    uint32_t max_subscriptions_per_client;
    uint32_t max_session_expiry;  /* seconds; UINT32_MAX = never expire */
    uint16_t max_keepalive;       /* seconds; 0 = accept client's value */
    uint16_t topic_alias_maximum; /* per connection, client to server */
    uint32_t connect_timeout_ms;  /* CONNECT must arrive within this */
    uint32_t max_client_id_length;
} ep_broker_limits;

/*
 * Enhanced authentication (MQTT 5 AUTH). A method is a set of callbacks
 * registered in the configuration; the broker runs the exchange:
 * CONNECT (method + data) -> step() -> CONTINUE: AUTH 0x18 to the client,
 * whose AUTH 0x18 reply goes to step() again ... -> SUCCESS: CONNACK (with
 * the method and the last data) or FAIL: CONNACK 0x87 / 0x86. A connected
 * client may re-authenticate with AUTH 0x19; FAIL then disconnects it.
 * Callbacks run on the worker thread that owns the connection and must not
 * block. `state` is per connection, NULL on the first step; `done` frees it.
 * The out data (authentication data to send) stays valid until the next
 * call for this state.
 */
typedef enum ep_broker_auth_result {
    EP_BROKER_AUTH_SUCCESS = 0,
    EP_BROKER_AUTH_CONTINUE = 1,
    EP_BROKER_AUTH_FAIL = 2,
} ep_broker_auth_result;

typedef struct ep_broker_auth_method {
    const char *name;
    ep_broker_auth_result (*step)(void *ud, void **state, const char *client_id, const uint8_t *in,
                                  size_t in_len, const uint8_t **out, size_t *out_len);
    void (*done)(void *ud, void *state);
    void *ud;
} ep_broker_auth_method;

#define EP_BROKER_MAX_AUTH_METHODS 4

typedef enum ep_broker_protocol {
    EP_BROKER_MQTT = 0,       /* MQTT over TCP (or TLS) */
    EP_BROKER_WEBSOCKETS = 1, /* MQTT over WebSockets, subprotocol "mqtt" */
} ep_broker_protocol;

/* Authentication methods of a chain, tried in order; the first one the
 * client's credentials are relevant to decides (as the reference does). */
typedef enum ep_broker_authn_method {
    EP_BROKER_AUTHN_PASSWORD = 0, /* user name + password against the password file */
    EP_BROKER_AUTHN_X509 = 1,     /* verified client certificate; CN = user name */
    EP_BROKER_AUTHN_SCRAM = 2,    /* MQTT 5 enhanced auth SCRAM-SHA-256 */
    EP_BROKER_AUTHN_CUSTOM = 3,   /* HTTP(S) callout, custom-auth API 0.5.0 */
} ep_broker_authn_method;

#define EP_BROKER_MAX_CHAINS 4
#define EP_BROKER_MAX_X509_ATTRS 8 /* subject mappings per chain */
#define EP_BROKER_MAX_ATTR_KV 8    /* attributes per mapping */
#define EP_BROKER_MAX_HEADERS 4    /* extra headers of a callout */

/* Custom authentication server (docs/security.md). */
typedef struct ep_broker_custom_auth {
    char endpoint[256]; /* https://...; http:// only with allow_http */
    bool allow_http;
    char ca_file[256];     /* PEM CAs for the server; "" = system store */
    char client_cert[256]; /* certificate the broker presents; "" = none */
    char client_key[256];
    char headers[EP_BROKER_MAX_HEADERS][256]; /* "Name: value" */
    int n_headers;
    uint32_t timeout_ms;  /* 0 = 5000 */
    uint32_t threads;     /* concurrent callouts; 0 = 8 */
    uint32_t max_pending; /* queued + running; beyond: CONNACK server busy; 0 = 256 */
} ep_broker_custom_auth;

/* Authorization attributes of the certificates with this subject. */
typedef struct ep_broker_x509_attrs {
    char name[64];
    char subject[256];                      /* "CN = ..., O = ..." */
    char attrs[EP_BROKER_MAX_ATTR_KV][128]; /* "name=value" */
    int n_attrs;
} ep_broker_x509_attrs;

typedef struct ep_broker_authn {
    char name[64];
    int methods[4];
    int n_methods;
    char password_file[256];
    ep_broker_custom_auth custom;
    ep_broker_x509_attrs x509_attrs[EP_BROKER_MAX_X509_ATTRS];
    int n_x509_attrs;
} ep_broker_authn;

typedef struct ep_broker_authz {
    char name[64];
    char rules_file[256];
} ep_broker_authz;

/* One listener: address, protocol and optional TLS. Empty tls_cert = plain. */
typedef struct ep_broker_listener {
    ep_hostport addr;
    int protocol;       /* ep_broker_protocol */
    char tls_cert[256]; /* PEM certificate chain */
    char tls_key[256];  /* PEM private key */
    char tls_ca[256];   /* PEM CA bundle for client certificates */
    int tls_verify;     /* ep_tls_verify: none, optional, required */
    int authn;          /* 1 + index into authn[], 0 = no authentication */
    int authz;          /* 1 + index into authz[], 0 = no authorization */
} ep_broker_listener;

/* Persistence (docs/persistence.md). An empty data_dir turns it off: the
 * broker then keeps everything in memory only. */
typedef enum ep_broker_durability {
    EP_BROKER_DURABILITY_SYNC = 0,     /* PUBACK/PUBREC after fdatasync (group commit) */
    EP_BROKER_DURABILITY_PERIODIC = 1, /* ack at once; fdatasync every period_ms */
    EP_BROKER_DURABILITY_NONE = 2,     /* ack at once; the kernel writes back */
} ep_broker_durability;

typedef struct ep_broker_persistence {
    char data_dir[256]; /* "" = no persistence */
    int durability;     /* ep_broker_durability */
    uint32_t period_ms; /* periodic fsync period; 0 = 10 ms */
    uint64_t max_size;  /* disk budget in bytes; 0 = 1 GiB */
} ep_broker_persistence;

typedef struct ep_broker_config {
    ep_broker_listener listeners[EP_BROKER_MAX_LISTENERS];
    int n_listeners;
    int workers; /* 0 = number of online CPUs */
    ep_broker_limits limits;
    uint32_t sys_interval_s; /* $SYS publish period; 0 = off */
    ep_broker_auth_method auth_methods[EP_BROKER_MAX_AUTH_METHODS];
    int n_auth_methods;
    ep_broker_authn authn[EP_BROKER_MAX_CHAINS];
    int n_authn;
    ep_broker_authz authz[EP_BROKER_MAX_CHAINS];
    int n_authz;
    ep_broker_persistence persist;
} ep_broker_config;

typedef struct ep_broker ep_broker;

/* ep_broker_config_defaults fills cfg with the documented defaults: one
 * listener on 127.0.0.1:1883 and the limits listed in docs/broker.md. */
void ep_broker_config_defaults(ep_broker_config *cfg);

/* ep_broker_new validates cfg (copied) and allocates the broker; nothing
 * listens yet. Returns EP_EOK, EP_EINVAL (bad config) or EP_ENOMEM. */
ep_err ep_broker_new(ep_broker **out, const ep_broker_config *cfg);
/* ep_broker_start loads the persisted state (when persist.data_dir is set:
 * replays the log, then compacts it), binds every listener and starts the
 * worker threads. Returns EP_EOK, the bind error (EP_EADDRINUSE,
 * EP_EPERM...), EP_ESTATE (data directory used by another process) or a
 * file system error of the data directory, in which case nothing is left
 * running. The bound ports (useful with port 0) are
 * available from ep_broker_listener_port. */
ep_err ep_broker_start(ep_broker *b);
/* ep_broker_reload re-reads what can change without a restart: TLS
 * certificates (the old ones stay in use when the new files are bad).
 * Any thread; called on SIGHUP. */
void ep_broker_reload(ep_broker *b);
/* ep_broker_listener_port returns the actual port of listener i. */
uint16_t ep_broker_listener_port(const ep_broker *b, int i);
/* ep_broker_wait blocks until the broker has stopped (worker threads
 * joined); with persistence it then writes a snapshot and closes the log. */
void ep_broker_wait(ep_broker *b);
/* ep_broker_stop asks every worker to close its connections and exit.
 * Any thread. Idempotent. */
void ep_broker_stop(ep_broker *b);
/* ep_broker_free releases everything; call after ep_broker_wait. NULL ok. */
void ep_broker_free(ep_broker *b);

/* Statistics, also published under $SYS/broker/. Any thread (atomics). */
typedef struct ep_broker_stats {
    uint64_t clients_connected;
    uint64_t clients_total; /* connected + disconnected persistent */
    uint64_t msgs_received;
    uint64_t msgs_sent;
    uint64_t bytes_received;
    uint64_t bytes_sent;
    uint64_t publish_dropped; /* sum of dropped[] */
    /* by reason: queue full, expired, too large for the client, slow
     * consumer (QoS 0 over the output limit), out of memory */
    uint64_t dropped[5];
    uint64_t subscriptions;
    uint64_t retained;
    uint64_t uptime_s;
} ep_broker_stats;

void ep_broker_get_stats(ep_broker *b, ep_broker_stats *out);

#endif
