/*
 * mqtt_client.h - asynchronous MQTT 3.1.1 / 5.0 client on an edgeplane loop.
 *
 * One ep_mqttc is one logical client (one client id, one session) driven by
 * an ep_loop. It connects, reconnects with exponential backoff, keeps its
 * session (CleanStart=false on every reconnect) and re-sends what the server
 * has not acknowledged, buffers publications while offline within fixed
 * limits, and reports everything through callbacks run on the loop thread.
 *
 * Threads. Every function here must be called on the thread running the
 * client's loop (use ep_loop_post() from other threads), except
 * ep_mqttc_options_from_env(). Callbacks run on that thread, never inside
 * the API call that caused them: a completion is never called from inside
 * ep_mqttc_publish(), for example. The one exception is ep_mqttc_free(),
 * which calls the pending completions before it returns. Any API function,
 * including ep_mqttc_free(), may be called from inside any callback.
 *
 * Ownership.
 *  - Options: every string and buffer in ep_mqttc_options is copied by
 *    ep_mqttc_new(); the caller may free them on return.
 *  - Publishing: ep_mqttc_publish() copies topic, payload and properties into
 *    a new ep_msg. ep_mqttc_publish_msg() takes over one reference to the
 *    caller's ep_msg in every case, even when it fails (consume-always).
 *  - Completions: when a publish, subscribe or unsubscribe call is made with
 *    a completion callback, that callback is called exactly once, whether
 *    the call returned EP_EOK or an error: with the server's reason code
 *    when the acknowledgement arrives, or with an error when the request is
 *    dropped (queue full, expired, too large for the server, client freed).
 *    The return value only tells the caller early; do clean-up in the
 *    completion. The single exception: EP_ENOMEM because not even the
 *    request record (one small allocation) could be allocated - the call
 *    then returns EP_ENOMEM and never calls the completion.
 *  - Received messages: everything in ep_mqttc_message is borrowed and valid
 *    only during the on_message call. Keep a message with
 *    ep_mqttc_message_to_msg().
 *
 * Acknowledgements and ordering. Outgoing QoS 1/2 publications are matched
 * to PUBACK/PUBREC/PUBCOMP by packet identifier, in whatever order they
 * arrive: a message whose acknowledgement is slow holds one slot of the
 * in-flight window and nothing else, and the rest of the window keeps
 * moving. Incoming QoS 1/2 messages are acknowledged when on_message returns
 * (automatic), or, with manual_ack, when the application calls
 * ep_mqttc_ack(): acknowledgements then go out in the order the application
 * gives them, not in receive order, so one slow consumer of one message
 * never blocks the delivery of the others (docs/mqtt-client.md explains
 * this departure from the receive-order rule of MQTT 4.6).
 *
 * Transport. The client reads and writes through ep_mqttc_transport_ops,
 * a small vtable (open, handshake, read, writev, close). Plain TCP is the
 * default; options.tls.enable selects the built-in TLS transport (OpenSSL 3,
 * TLS 1.2/1.3, non-blocking on the loop: server verification against a CA
 * file or the system store, host name check, optional client certificate).
 *
 * Authentication: user name and password (also read from a file at every
 * attempt), X.509 client certificates (TLS), and MQTT 5 enhanced
 * authentication with SCRAM-SHA-256 (options.auth_method), including
 * re-authentication on a live connection (ep_mqttc_reauthenticate).
 *
 * Error codes used below: EP_EINVAL (bad argument), EP_ESTATE (not valid in
 * the current state), EP_ENOMEM, EP_EFULL (queue or packet ids exhausted),
 * EP_ETOOBIG (over a size limit), EP_EUNSUPPORTED (feature not available),
 * EP_ECLOSED (connection or client gone), EP_ETIMEDOUT (timer expired).
 */
#ifndef EP_MQTT_CLIENT_H
#define EP_MQTT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "codec/mqtt/packet.h"
#include "core/err.h"
#include "core/loop.h"
#include "core/msg.h"

typedef struct ep_mqttc ep_mqttc;

/* ------------------------------------------------------------------------ */
/* Transport seam                                                            */

/*
 * ep_mqttc_transport_ops - how bytes reach the server. All functions are
 * called on the loop thread; `conn` is the transport's own per-connection
 * state returned by open.
 *
 *  open       start a connection to host:port. On EP_EOK (connected) or
 *             EP_EAGAIN (in progress: the client waits until *fd is
 *             writable, then calls handshake) sets *conn and *fd, the
 *             descriptor the client watches. Any other return is a failed
 *             attempt (e.g. EP_ENOTFOUND, EP_ECONNREFUSED), *conn untouched.
 *  handshake  finish what open started (TCP connect result, TLS handshake).
 *             EP_EOK when the byte stream is ready; EP_EAGAIN with *want set
 *             to EP_IO_READ and/or EP_IO_WRITE to be called again when the
 *             fd is ready; any other error fails the attempt.
 *  read       like ep_sock_read: > 0 bytes read, EP_EAGAIN, EP_ECLOSED.
 *  writev     like ep_sock_writev: > 0 bytes written, EP_EAGAIN, or an error.
 *  close      close the descriptor and free conn. Never fails.
 *  pending    optional: bytes already decrypted inside the transport that
 *             read would return without the fd becoming readable again.
 *  error      optional: a one-line reason for the last failure of
 *             handshake/read/writev (e.g. the certificate check that
 *             failed), or NULL. Borrowed; valid until the next call on conn.
 *
 * A TLS implementation whose read needs the fd writable (or the reverse)
 * returns EP_EAGAIN; the client retries reads on every readable event and
 * writes on every writable event.
 */
typedef struct ep_mqttc_transport_ops {
    const char *name;
    ep_err (*open)(void *ctx, const char *host, uint16_t port, void **conn, int *fd);
    ep_err (*handshake)(void *conn, unsigned *want);
    ssize_t (*read)(void *conn, void *p, size_t n);
    ssize_t (*writev)(void *conn, const struct iovec *iov, int iovcnt);
    void (*close)(void *conn);
    size_t (*pending)(void *conn);
    const char *(*error)(void *conn);
} ep_mqttc_transport_ops;

/* ep_mqttc_transport_tcp is plain TCP through core/sock.h (the default).
 * Host names are resolved with getaddrinfo(), which blocks the loop for the
 * duration of a DNS lookup; numeric addresses do not. */
extern const ep_mqttc_transport_ops ep_mqttc_transport_tcp;

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */

/* A received PUBLISH, borrowed for the duration of on_message. */
typedef struct ep_mqttc_message {
    ep_mqtt_slice topic; /* topic alias already resolved */
    ep_mqtt_slice payload;
    const ep_mqtt_props *props; /* v5 properties as decoded (including
                                 * Subscription Identifiers and Message
                                 * Expiry); all zero for 3.1.1 */
    uint8_t qos;
    bool retain;
    bool dup;
    /* Pass to ep_mqttc_ack() when the client has manual_ack; 0 for QoS 0.
     * A token belongs to one network connection: after a reconnect the
     * server delivers unacknowledged messages again with new tokens. */
    uint64_t ack_token;
} ep_mqttc_message;

/* Why a connection (or a connection attempt) ended. Borrowed for the
 * duration of on_disconnect. */
typedef struct ep_mqttc_disconnect_info {
    /* EP_EOK when the application called ep_mqttc_disconnect(); otherwise
     * the cause: EP_ECONNREFUSED/EP_ENOTFOUND/EP_ETIMEDOUT (attempt failed),
     * EP_ECLOSED (the server or network closed the connection), EP_EPERM
     * (CONNACK refused: see reason), EP_EPROTO/EP_EMALFORMED/EP_ETOOBIG
     * (protocol violation by the server), EP_ETIMEDOUT (no PINGRESP). */
    ep_err err;
    /* v5 reason code of the server's DISCONNECT or refusing CONNACK (3.1.1
     * CONNACK codes are mapped to v5 codes); 0 when there was none. */
    ep_mqtt_rc reason;
    ep_mqtt_slice reason_string;    /* from the server, may be empty */
    ep_mqtt_slice server_reference; /* v5 "use another server", may be empty */
    /* A one-line reason beyond err, or "": the TLS failure ("certificate
     * verify failed: unable to get local issuer certificate", "host name
     * mismatch: certificate is not valid for 'x'"), the password file that
     * could not be read, a SCRAM exchange that failed. */
    const char *detail;
    bool was_connected;       /* a CONNACK had been accepted on this connection */
    bool will_reconnect;      /* a reconnect is scheduled ... */
    uint32_t reconnect_in_ms; /* ... in this many ms */
} ep_mqttc_disconnect_info;

/* on_connect: the server accepted the connection. session_present tells
 * whether the server resumed the previous session; when it is false after a
 * reconnect, the server has lost the subscriptions: re-create them here if
 * wanted (the client never does it silently). props are the CONNACK's v5
 * properties (all zero for 3.1.1), borrowed. */
typedef void (*ep_mqttc_connect_fn)(ep_mqttc *c, bool session_present, const ep_mqtt_props *props,
                                    void *ud);
typedef void (*ep_mqttc_disconnect_fn)(ep_mqttc *c, const ep_mqttc_disconnect_info *info, void *ud);
typedef void (*ep_mqttc_message_fn)(ep_mqttc *c, const ep_mqttc_message *m, void *ud);

/* Completion of a publish. err is EP_EOK when the server answered; rc is
 * then its reason code (PUBACK for QoS 1, PUBCOMP - or a failing PUBREC -
 * for QoS 2; < 0x80 success, e.g. 0x10 No matching subscribers; >= 0x80
 * refused). QoS 0 completes with EP_EOK/0 once the packet is handed to the
 * transport. Otherwise err says why it was dropped: EP_EFULL (offline queue
 * full, drop-oldest policy), EP_ETIMEDOUT (message expired while queued),
 * EP_ETOOBIG (larger than the server's Maximum Packet Size),
 * EP_EUNSUPPORTED (QoS or retain not available on the server; rc says
 * which), EP_ECLOSED (client freed). */
typedef void (*ep_mqttc_pub_done_fn)(ep_mqttc *c, ep_err err, ep_mqtt_rc rc, void *ud);
/* Completion of a subscribe or unsubscribe: with err EP_EOK, rcs[0..n) holds
 * one reason code per filter, in request order (SUBACK granted QoS 0..2 or
 * an error >= 0x80; for a 3.1.1 UNSUBACK, which carries no codes, all 0).
 * Otherwise err is EP_ECLOSED (connection lost before the answer, or client
 * freed), EP_ETOOBIG (over the server's Maximum Packet Size) or EP_EPROTO
 * (answer with the wrong number of codes); rcs is then NULL and n 0. */
typedef void (*ep_mqttc_sub_done_fn)(ep_mqttc *c, ep_err err, const uint8_t *rcs, size_t n,
                                     void *ud);

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

/*
 * ep_mqttc_tls_options - TLS to the server; zero means plain TCP. Files are
 * PEM and read by ep_mqttc_new (a missing or unreadable file fails there,
 * with EP_ECONFIG); the key password file is read once, at that time.
 */
typedef struct ep_mqttc_tls_options {
    bool enable;
    const char *ca_file;           /* trusted CAs [NULL: the system store] */
    const char *cert_file;         /* client certificate chain, for mutual TLS */
    const char *key_file;          /* its private key [cert_file] */
    const char *key_password_file; /* pass phrase of an encrypted key */
    /* Name the server certificate must carry (DNS name, or an IP address
     * checked against the IP SANs), also sent as SNI when it is a name
     * [host, without "[]"]. */
    const char *server_name;
    bool insecure;       /* do not verify the server at all (tests only) */
    uint8_t min_version; /* 12 or 13: lowest TLS version [12] */
} ep_mqttc_tls_options;

/* MQTT 5 enhanced authentication method name supported by the client. */
#define EP_MQTTC_AUTH_SCRAM_SHA_256 "SCRAM-SHA-256"

typedef enum ep_mqttc_queue_policy {
    EP_MQTTC_DROP_OLDEST = 0, /* evict the oldest queued message (EP_EFULL) */
    EP_MQTTC_REFUSE_NEW = 1,  /* refuse the new message (EP_EFULL) */
} ep_mqttc_queue_policy;

/*
 * ep_mqttc_options - zero-initialise, then set what differs. Every 0 means
 * the default given in brackets.
 */
typedef struct ep_mqttc_options {
    const char *host;      /* ["127.0.0.1"] */
    uint16_t port;         /* [1883] */
    const char *client_id; /* [""]: the server assigns one (v5), which is
                            * then kept for reconnects */
    uint8_t version;       /* EP_MQTT_V311 (4) or EP_MQTT_V5 (5) [5] */
    /* Start a new session on the first connection. Reconnects always use
     * CleanStart=false in v5; in 3.1.1 this flag is "Clean Session" and is
     * used for every connection. */
    bool clean_start;
    uint32_t session_expiry; /* v5 Session Expiry Interval, seconds [0:
                              * the session ends with the connection];
                              * UINT32_MAX = never expires */
    uint16_t keepalive;      /* seconds [60] */
    bool no_keepalive;       /* send Keep Alive 0 (no PINGREQ) */

    const char *username; /* [none] */
    const void *password; /* [none]; binary, password_len bytes */
    size_t password_len;
    /* Read the password from this file at every connection attempt (so a
     * rotated token is picked up); one trailing "\n" or "\r\n" is removed.
     * Overrides password. */
    const char *password_file;
    /* MQTT 5 enhanced authentication [NULL: none]. Only
     * EP_MQTTC_AUTH_SCRAM_SHA_256, which needs username and a password (or
     * password_file); the password is then never sent, only a proof. */
    const char *auth_method;
    ep_mqttc_tls_options tls;

    /* Will message: sent when will_topic is set. will_props (v5) is deep
     * copied; Will Delay Interval goes in will_props. */
    const char *will_topic;
    const void *will_payload;
    size_t will_payload_len;
    uint8_t will_qos;
    bool will_retain;
    const ep_mqtt_props *will_props;

    /* What this client accepts (sent in the v5 CONNECT). */
    uint16_t receive_maximum;     /* unacked QoS 1/2 from the server [65535] */
    uint32_t maximum_packet_size; /* largest packet accepted [16 MiB] */
    uint16_t topic_alias_maximum; /* server-to-client aliases [0: none] */

    /* Reconnection: delay = min(max, min * 2^attempt), scaled by a random
     * factor in [0.5, 1] unless no_jitter. The attempt count restarts after
     * a connection that stayed up for 10 s. */
    uint32_t reconnect_min_ms; /* [500] */
    uint32_t reconnect_max_ms; /* [30000] */
    bool reconnect_no_jitter;
    bool no_reconnect;           /* report the loss and stay disconnected */
    uint32_t connect_timeout_ms; /* TCP + handshake + CONNACK [10000] */

    /* Publications waiting to be sent (offline, or beyond the in-flight
     * window). In-flight messages are not counted here. */
    uint32_t queue_max_messages;        /* [10000]; UINT32_MAX = no limit */
    size_t queue_max_bytes;             /* [16 MiB] (ep_msg_size); SIZE_MAX = none */
    ep_mqttc_queue_policy queue_policy; /* [EP_MQTTC_DROP_OLDEST] */
    /* Optional disk spool (docs/mqtt-client.md "Disk spool"): when set,
     * every QoS 1/2 publication is written to a log in this directory
     * (created if missing, one client process per directory) before
     * ep_mqttc_publish returns EP_EOK, marked done when the server
     * acknowledges it, and messages not done are queued again by the next
     * ep_mqttc_new with the same directory (at-least-once). QoS 0 is never
     * spooled. Messages may fill a quarter of spool_max_bytes (the rest is
     * room for the log and compaction); beyond, queue_policy applies: the
     * oldest queued spooled message is dropped (EP_EFULL), or the new one
     * is refused with EP_EFULL. [NULL: memory only] */
    const char *spool_dir;
    uint64_t spool_max_bytes; /* disk budget of the spool [0: unbounded] */
    /* QoS 1/2 publications in flight; also capped by the server's Receive
     * Maximum. [64] */
    uint16_t inflight_max;

    bool manual_ack; /* incoming QoS 1/2 acked by ep_mqttc_ack() */

    /* [&ep_mqttc_transport_tcp, or the TLS transport with tls.enable];
     * a custom transport cannot be combined with tls.enable. */
    const ep_mqttc_transport_ops *transport;
    void *transport_ctx; /* passed to transport->open */

    ep_mqttc_connect_fn on_connect;
    ep_mqttc_disconnect_fn on_disconnect;
    ep_mqttc_message_fn on_message;
    void *userdata; /* passed to the three callbacks above */
} ep_mqttc_options;

/*
 * ep_mqttc_options_from_env fills o from the AIO connection settings
 * (docs/mqtt-client.md): AIO_BROKER_HOSTNAME (required), AIO_BROKER_TCP_PORT
 * [8883], AIO_MQTT_CLIENT_ID (required), AIO_MQTT_KEEP_ALIVE [60],
 * AIO_MQTT_SESSION_EXPIRY [3600], AIO_MQTT_CLEAN_START [false],
 * AIO_MQTT_USERNAME, AIO_MQTT_PASSWORD_FILE, AIO_MQTT_USE_TLS [true] ->
 * tls.enable, AIO_TLS_CA_FILE -> tls.ca_file, AIO_TLS_CERT_FILE,
 * AIO_TLS_KEY_FILE, AIO_TLS_KEY_PASSWORD_FILE, and the edgeplane addition
 * AIO_MQTT_AUTH_METHOD (SCRAM-SHA-256). Only those fields of o are written
 * (version is set to 5); string fields point into the environment
 * (ep_mqttc_new copies them). Any thread, but not concurrently with
 * setenv().
 * Returns EP_EOK; EP_ECONFIG when a required variable is missing; EP_EINVAL
 * for a malformed value (including TLS files with AIO_MQTT_USE_TLS=false, a
 * key without a certificate, an unknown auth method); EP_EUNSUPPORTED for
 * AIO_SAT_FILE (service account tokens), after filling everything else.
 * why (may be NULL) receives a one-line explanation naming the variable.
 */
ep_err ep_mqttc_options_from_env(ep_mqttc_options *o, char *why, size_t why_len);

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                 */

/* ep_mqttc_new creates a disconnected client on loop (which must outlive it).
 * o is borrowed (copied). Returns EP_EOK with *out set; EP_EINVAL (NULL
 * arguments, version not 4/5, will_qos > 2, password without username in
 * 3.1.1, empty client id with clean_start false in 3.1.1, reconnect_min >
 * reconnect_max, will_props not encodable, auth_method other than SCRAM or
 * without username and password or with 3.1.1, tls with a custom
 * transport, key without certificate, min_version not 0/12/13);
 * EP_ECONFIG (a TLS file cannot be loaded: the reason is logged and
 * returned by ep_mqttc_new_why when given a buffer); EP_ENOMEM. */
ep_err ep_mqttc_new(ep_mqttc **out, ep_loop *loop, const ep_mqttc_options *o);

/* ep_mqttc_new_why is ep_mqttc_new that also writes a one-line reason for
 * a failure into why[0..why_len) (e.g. "cannot load CA file x: no such
 * file"). why may be NULL. */
ep_err ep_mqttc_new_why(ep_mqttc **out, ep_loop *loop, const ep_mqttc_options *o, char *why,
                        size_t why_len);

/* ep_mqttc_free disconnects at once (no DISCONNECT packet), calls every
 * pending completion with EP_ECLOSED, then releases the client. Calls made
 * on the client from those completions fail with EP_ESTATE (a publish
 * completion given then is called at once with EP_ECLOSED). When called
 * from inside one of the client's callbacks, the memory is released once
 * that callback returns. NULL is accepted. */
void ep_mqttc_free(ep_mqttc *c);

/* ep_mqttc_connect starts connecting (asynchronously, from the loop). The
 * outcome is on_connect, or on_disconnect for a failed attempt followed by
 * retries with backoff (unless no_reconnect). From the backoff wait it
 * retries at once. Returns EP_EOK; EP_ESTATE when already connecting,
 * connected, or still closing after ep_mqttc_disconnect() (wait for its
 * on_disconnect); EP_EINVAL for NULL. */
ep_err ep_mqttc_connect(ep_mqttc *c);

enum {
    /* v5: send Session Expiry Interval 0, ending the session on the server
     * (what an application that is shutting down for good should do). */
    EP_MQTTC_END_SESSION = 1u,
};

/* ep_mqttc_disconnect stops reconnecting and closes the connection. When
 * connected (or waiting for CONNACK) it sends DISCONNECT with reason (v5;
 * 0x04 asks the server to publish the Will) and waits for the server to
 * close the connection (at most 2 s); an attempt still opening, or a retry
 * waiting for its backoff, is dropped. Whenever it returns EP_EOK,
 * on_disconnect follows once, with err EP_EOK and will_reconnect false.
 * Queued and unacknowledged publications stay with the client for the next
 * ep_mqttc_connect().
 * flags: EP_MQTTC_END_SESSION. Returns EP_EOK; EP_ESTATE when already
 * disconnected or disconnecting; EP_ENOMEM; EP_EINVAL for NULL. */
ep_err ep_mqttc_disconnect(ep_mqttc *c, ep_mqtt_rc reason, unsigned flags);

/* ep_mqttc_reauthenticate starts an MQTT 5 re-authentication (AUTH 0x19)
 * with the configured auth_method on the live connection, re-reading the
 * password file first. A failure ends the connection (the server sends
 * DISCONNECT 0x87 and on_disconnect reports it). Returns EP_EOK; EP_ESTATE
 * when not connected, no auth_method is configured, or an exchange is
 * already running; EP_ENOMEM; EP_ECONFIG (password file unreadable). */
ep_err ep_mqttc_reauthenticate(ep_mqttc *c);

/* ------------------------------------------------------------------------ */
/* Publishing                                                                */

typedef struct ep_mqttc_pub {
    const char *topic; /* NUL-terminated, a valid Topic Name */
    const void *payload;
    size_t payload_len;
    uint8_t qos; /* 0..2 */
    bool retain;
    /* v5 properties, or NULL: Payload Format Indicator, Message Expiry
     * Interval, Content Type, Response Topic, Correlation Data and User
     * Properties. Topic Alias (managed by the client) and Subscription
     * Identifier are refused. Ignored for 3.1.1. */
    const ep_mqtt_props *props;
} ep_mqttc_pub;

/*
 * ep_mqttc_publish queues a copy of p for sending (p is borrowed). QoS 1 and
 * 2 messages are kept until the server acknowledges them, across
 * reconnects. When the server allows topic aliases (v5), repeated topics are
 * sent as aliases. done (may be NULL) is called exactly once with ud.
 * Returns EP_EOK; EP_EINVAL (bad topic, QoS > 2, forbidden property);
 * EP_EFULL (queue or disk spool full under EP_MQTTC_REFUSE_NEW, or no
 * packet id); EP_ETOOBIG (message alone exceeds queue_max_bytes, a quarter
 * of spool_max_bytes or the server's Maximum Packet Size); EP_EIO (disk
 * spool write failed); EP_ENOMEM; EP_ESTATE (client being freed). With a
 * disk spool, a QoS 1/2 message is on disk when EP_EOK is returned.
 */
ep_err ep_mqttc_publish(ep_mqttc *c, const ep_mqttc_pub *p, ep_mqttc_pub_done_fn done, void *ud);

/* ep_mqttc_publish_msg is ep_mqttc_publish for an existing message: it
 * consumes one reference to m in every case. m->props is the v5 property
 * block sent as is (it must not hold Topic Alias or Subscription
 * Identifier); when m->has_expiry, the remaining lifetime from
 * m->expiry_at_ms (loop clock) is sent as Message Expiry Interval. qos and
 * retain are given here (m->qos and m->retain are not used). Same returns. */
ep_err ep_mqttc_publish_msg(ep_mqttc *c, ep_msg *m, uint8_t qos, bool retain,
                            ep_mqttc_pub_done_fn done, void *ud);

/* ------------------------------------------------------------------------ */
/* Subscribing                                                               */

/*
 * ep_mqttc_subscribe sends one SUBSCRIBE for subs[0..n) (filter, maximum
 * QoS and, v5, no_local, retain_as_published, retain_handling; the
 * share_* fields are ignored). sub_id (v5) is the Subscription Identifier
 * the server will attach to matching messages, 0 for none. Everything is
 * copied. While disconnected the request waits and is sent on connect; a
 * request sent but not answered when the connection drops completes with
 * EP_ECLOSED. done (may be NULL) is called exactly once.
 * Returns EP_EOK; EP_EINVAL (n == 0, bad filter, QoS > 2, retain_handling >
 * 2, sub_id out of range or used with 3.1.1); EP_EFULL (no packet id);
 * EP_ENOMEM; EP_ESTATE (client being freed).
 */
ep_err ep_mqttc_subscribe(ep_mqttc *c, const ep_mqtt_sub *subs, size_t n, uint32_t sub_id,
                          ep_mqttc_sub_done_fn done, void *ud);

/* ep_mqttc_unsubscribe sends one UNSUBSCRIBE for filters[0..n). Same rules
 * and returns as ep_mqttc_subscribe. */
ep_err ep_mqttc_unsubscribe(ep_mqttc *c, const ep_mqtt_slice *filters, size_t n,
                            ep_mqttc_sub_done_fn done, void *ud);

/* ------------------------------------------------------------------------ */
/* Receiving                                                                 */

/* ep_mqttc_ack acknowledges a message delivered with manual_ack: PUBACK for
 * QoS 1, PUBREC for QoS 2 (the client completes PUBREL/PUBCOMP itself).
 * rc (v5; ignored for 3.1.1) is the reason code to send, 0 for success; a
 * code >= 0x80 tells the server the message was not accepted. Acks may be
 * given in any order, also from inside on_message. Without manual_ack the
 * client acknowledges when on_message returns, unless on_message already
 * did with ep_mqttc_ack().
 * Returns EP_EOK (also for token 0, a QoS 0 message); EP_ESTATE when the
 * token is from an earlier connection (the server will deliver the message
 * again) or was already acknowledged; EP_EINVAL for a malformed token. */
ep_err ep_mqttc_ack(ep_mqttc *c, uint64_t token, ep_mqtt_rc rc);

/* ep_mqttc_message_to_msg copies a received message into a new ep_msg (one
 * reference, owned by the caller): topic, payload, qos, retain, and the v5
 * properties minus Topic Alias, Subscription Identifier and Message Expiry
 * (which sets has_expiry/expiry_interval/expiry_at_ms from the loop clock).
 * Returns NULL on allocation failure. */
ep_msg *ep_mqttc_message_to_msg(ep_mqttc *c, const ep_mqttc_message *m);

/* ------------------------------------------------------------------------ */
/* Inspection                                                                */

typedef struct ep_mqttc_stats {
    uint64_t connects;         /* CONNACKs accepted */
    uint64_t connect_failures; /* attempts that did not reach CONNACK */
    uint64_t disconnects;      /* established connections lost or closed */
    uint64_t published;        /* PUBLISH packets sent, resends excluded */
    uint64_t resent;           /* PUBLISH (DUP) and PUBREL resent */
    uint64_t completed;        /* publications completed with EP_EOK */
    uint64_t dropped_full;     /* evicted or refused: queue limits */
    uint64_t dropped_expired;  /* expired while queued */
    uint64_t dropped_other;    /* too big, QoS/retain unsupported */
    uint64_t received;         /* PUBLISH packets delivered to on_message */
    uint64_t received_dup;     /* QoS 2 duplicates suppressed */
    uint32_t queued;           /* now: waiting to be sent */
    size_t queued_bytes;       /* now */
    uint32_t inflight;         /* now: QoS 1/2 awaiting acknowledgement */
    uint32_t inflight_window;  /* now: min(inflight_max, server Receive Max) */
    uint64_t reauths;          /* re-authentications the server accepted */
    uint64_t spool_replayed;   /* messages queued again from the spool at start */
    uint32_t spooled;          /* now: spooled messages not yet acknowledged */
} ep_mqttc_stats;

/* ep_mqttc_stats_get copies the counters into *out. */
void ep_mqttc_stats_get(const ep_mqttc *c, ep_mqttc_stats *out);
/* ep_mqttc_is_connected reports whether a CONNACK has been accepted on the
 * current connection. */
bool ep_mqttc_is_connected(const ep_mqttc *c);
/* ep_mqttc_client_id returns the client id in use (the configured one, or
 * the one the server assigned). Borrowed; valid until the next connection. */
const char *ep_mqttc_client_id(const ep_mqttc *c);

#endif
