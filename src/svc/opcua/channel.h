/*
 * channel.h - OPC UA Connection Protocol (opc.tcp) and Secure Conversation,
 * both roles, on the project's event loop.
 *
 * An ep_ua_channel is one TCP connection carrying one secure channel
 * (OPC 10000-6 sections 6.7 and 7.1):
 *
 *   client role                          server role
 *   ep_ua_channel_connect(url)           ep_ua_listener accepts, or
 *     TCP connect, HEL ------------->      ep_ua_channel_accept(fd)
 *                      <------------- ACK  (sizes negotiated, see below)
 *     OPN Issue (asymmetric) ------->      policy/mode checked, client
 *                                          certificate validated by the PKI
 *                      <------------- OPN  token issued
 *     on_open()                            on_open()
 *     MSG requests ---------------->       on_message()  (decoded body)
 *                      <------------- MSG  ep_ua_channel_send(request_id)
 *     OPN Renew at 75% of lifetime         previous token accepted until
 *                                          the client uses the new one
 *     ep_ua_channel_close(): CLO ---->     on_close(Good)
 *
 * A reverse connection (server connects out, sends ReverseHello, the
 * client then proceeds as above) is started with ep_ua_channel_reverse
 * on the server and accepted with ep_ua_channel_accept in the client role.
 *
 * What the channel does for its user:
 *  - framing: reads into a reusable buffer, reassembles chunks (C, F, and
 *    A = abort) into one message, enforcing the negotiated chunk size, the
 *    maximum message size and the maximum chunk count; decodes the body
 *    into an arena with ep_ua_message_decode and calls on_message;
 *  - sending: encodes the body, splits it into chunks of the negotiated
 *    send size, adds sequence numbers, pads, signs and encrypts according
 *    to the policy and mode (asymmetric for OPN, symmetric for MSG/CLO),
 *    and queues the bytes; the queue is flushed in a before-poll hook, a
 *    write watcher is armed only when a flush was incomplete;
 *  - security: None, Basic256Sha256, Aes128_Sha256_RsaOaep and
 *    Aes256_Sha256_RsaPss in modes Sign and SignAndEncrypt; token issue,
 *    renew and expiry; sequence numbers checked in both directions (a wrong
 *    one closes the channel with Bad_SequenceNumberInvalid); peer
 *    certificates validated through the ep_ua_pki (an untrusted one is
 *    saved to rejected/ and logged with the command that trusts it).
 *
 * Buffer size negotiation (OPC 10000-6 7.1.2.3/7.1.2.4). The server answers
 * a Hello with
 *    Ack.ReceiveBufferSize = min(own receive, Hello.SendBufferSize)
 *    Ack.SendBufferSize    = min(own send, Hello.ReceiveBufferSize)
 * and each side then sends chunks no larger than what the peer receives:
 * the client Ack.ReceiveBufferSize, the server Ack.SendBufferSize.
 * Messages sent are limited by the peer's MaxMessageSize/MaxChunkCount (0:
 * no limit). On receipt the channel is lenient by design: it accepts chunks
 * up to its own configured receive buffer size even if the negotiated value
 * is smaller, because node-opcua advertises a smaller SendBufferSize than
 * it actually uses. Everything else (message size, chunk count) is checked
 * against our own limits, never the peer's claims.
 *
 * Threads: a channel belongs to the thread of its loop; every function here
 * must be called on that thread, and every callback runs on it.
 *
 * Lifetime: the channel is created by connect/accept/reverse (or by a
 * listener) and ends with exactly one on_close callback, whatever the cause
 * (peer closed, protocol error, ep_ua_channel_close). The memory is
 * released after on_close returns (deferred to the end of the loop
 * iteration); the handle must not be used after on_close. Functions called
 * on a channel that is closing are harmless no-ops returning EP_ECLOSED.
 */
#ifndef EP_SVC_OPCUA_CHANNEL_H
#define EP_SVC_OPCUA_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/opcua/arena.h"
#include "codec/opcua/binary.h"
#include "codec/opcua_crypto/pki.h"
#include "codec/opcua_crypto/policy.h"
#include "core/err.h"
#include "core/loop.h"

typedef struct ep_ua_channel ep_ua_channel;
typedef struct ep_ua_listener ep_ua_listener;

/* Defaults used for zero fields of ep_ua_channel_limits. */
#define EP_UA_CHANNEL_DEFAULT_BUFFER 65535u           /* bytes per chunk */
#define EP_UA_CHANNEL_DEFAULT_MAX_MESSAGE (16u << 20) /* bytes */
#define EP_UA_CHANNEL_DEFAULT_MAX_CHUNKS 4096u
#define EP_UA_CHANNEL_DEFAULT_LIFETIME_MS 3600000u /* 1 h */
#define EP_UA_CHANNEL_MIN_LIFETIME_MS 10000u       /* server floor */
#define EP_UA_CHANNEL_DEFAULT_HELLO_TIMEOUT_MS 10000u
#define EP_UA_CHANNEL_MIN_BUFFER 8192u /* OPC 10000-6: at least 8192 */

typedef enum ep_ua_channel_role {
    EP_UA_CHANNEL_CLIENT = 0,
    EP_UA_CHANNEL_SERVER = 1,
} ep_ua_channel_role;

/* Transport limits; zero-initialisable, 0 takes the default above. */
typedef struct ep_ua_channel_limits {
    uint32_t recv_buffer_size; /* largest chunk we receive */
    uint32_t send_buffer_size; /* largest chunk we send */
    uint32_t max_message_size; /* largest message we receive (body bytes) */
    uint32_t max_chunk_count;  /* most chunks in a message we receive */
    /* Client: requested token lifetime. Server: upper bound of the revised
     * lifetime (a request below EP_UA_CHANNEL_MIN_LIFETIME_MS is raised). */
    uint32_t token_lifetime_ms;
    /* Server: time allowed from accept to a valid OPN; client: time allowed
     * for connect + HEL/ACK + OPN. */
    uint32_t open_timeout_ms;
    ep_ua_limits decode; /* limits handed to ep_ua_message_decode */
} ep_ua_channel_limits;

/* A received message as handed to on_message. Everything is borrowed and
 * valid only during the callback, unless the callback takes the arena with
 * ep_ua_channel_take_arena. */
typedef struct ep_ua_channel_msg {
    uint32_t request_id;    /* from the sequence header */
    const ep_ua_type *type; /* e.g. EP_UA_T(ReadRequest); NULL on failure */
    void *body;             /* value of *type in arena; NULL on failure */
    ep_ua_arena *arena;     /* holds body */
    /* Good, or why the body could not be decoded (Bad_DecodingError,
     * Bad_EncodingLimitsExceeded, Bad_ServiceUnsupported for an unknown
     * type, Bad_RequestTooLarge when an aborted or oversized message was
     * dropped). A server answers such a message with a ServiceFault
     * carrying request_handle; the channel itself stays open. */
    ep_ua_status status;
    uint32_t request_handle; /* best effort from the request header, 0 if
                                the body could not be read that far */
} ep_ua_channel_msg;

typedef struct ep_ua_channel_cbs {
    /* on_open: the secure channel is established (client: OPN response
     * received and verified; server: first OPN answered). Not called again
     * on token renewal. May be NULL. */
    void (*on_open)(ep_ua_channel *ch, void *ud);
    /* on_message: a complete MSG arrived (service request or response).
     * Required. */
    void (*on_message)(ep_ua_channel *ch, const ep_ua_channel_msg *m, void *ud);
    /* on_close: the channel is gone; status is Good after a CLO or a local
     * ep_ua_channel_close(Good), else the reason (Bad_ConnectionClosed,
     * Bad_SecurityChecksFailed, Bad_CertificateUntrusted,
     * Bad_SequenceNumberInvalid, Bad_TcpMessageTooLarge, Bad_Timeout,
     * Bad_SecureChannelTokenUnknown, the status of a received ERR, ...).
     * Called exactly once. May be NULL. */
    void (*on_close)(ep_ua_channel *ch, ep_ua_status status, void *ud);
} ep_ua_channel_cbs;

/* Channel options; zero-initialisable except where noted. Borrowed for
 * the duration of the creating call only (the channel copies what it
 * keeps), except pki, which must outlive the channel. */
typedef struct ep_ua_channel_opts {
    ep_ua_channel_limits limits;
    ep_ua_channel_cbs cbs; /* on_message required */
    void *ud;              /* passed to every callback */

    /* PKI: own certificate and key, and validation of peer certificates.
     * Required unless every allowed policy is None. Borrowed. */
    ep_ua_pki *pki;

    /* Client: the policy and mode to open with (NULL policy = None; mode 0
     * means None for the None policy and SignAndEncrypt otherwise), and the
     * server certificate (DER, from the endpoint description; required for
     * secure policies; copied). endpoint_url goes into the Hello (NULL: the
     * URL given to connect). */
    const ep_ua_policy *policy;
    int32_t mode; /* EP_UA_MESSAGE_SECURITY_MODE_* */
    const uint8_t *server_cert;
    size_t server_cert_len;
    const char *endpoint_url;

    /* Server: which policies (bit 1u << ep_ua_policy_id) and modes (bit
     * 1u << EP_UA_MESSAGE_SECURITY_MODE_*) a client may open with; 0 means
     * None only. A combination outside these is refused with
     * Bad_SecurityPolicyRejected / Bad_SecurityModeRejected. */
    unsigned allowed_policies;
    unsigned allowed_modes;
} ep_ua_channel_opts;

/* ep_ua_channel_connect starts a client channel to url
 * ("opc.tcp://host:port[/path]"; IPv6 as [addr]). Asynchronous: returns
 * once the TCP connect started; on_open or on_close follows. *out is the
 * handle, valid until on_close returns.
 * Returns EP_EOK; EP_EINVAL (bad URL, secure policy without pki or server
 * certificate, no on_message); EP_ENOMEM; a connect error from sock.h (then
 * no callback follows). */
ep_err ep_ua_channel_connect(ep_loop *loop, const char *url, const ep_ua_channel_opts *opts,
                             ep_ua_channel **out);

/* ep_ua_channel_accept wraps a connected socket fd. role SERVER expects a
 * Hello (server side of a normal connection); role CLIENT expects a
 * ReverseHello and then behaves as ep_ua_channel_connect (opts as for a
 * client). The channel takes fd in every case (closed on failure too).
 * peer ("host:port", may be NULL) is copied for logs.
 * Returns EP_EOK, EP_EINVAL, EP_ENOMEM. */
ep_err ep_ua_channel_accept(ep_loop *loop, int fd, ep_ua_channel_role role, const char *peer,
                            const ep_ua_channel_opts *opts, ep_ua_channel **out);

/* ep_ua_channel_reverse connects out to a client listening at client_url
 * and sends ReverseHello(server_uri, endpoint_url); the channel then acts
 * as a server channel (opts as for accept). Errors as connect. */
ep_err ep_ua_channel_reverse(ep_loop *loop, const char *client_url, const char *server_uri,
                             const char *endpoint_url, const ep_ua_channel_opts *opts,
                             ep_ua_channel **out);

/* ep_ua_channel_send encodes body (of type, e.g. EP_UA_T(ReadResponse);
 * borrowed) as a service message and queues it in chunks on the channel
 * with the given request id (server: the id of the request answered).
 * Returns EP_EOK; EP_ECLOSED (channel closing or not open yet); EP_ETOOBIG
 * when the message exceeds the peer's MaxMessageSize or MaxChunkCount
 * (nothing queued: a server then answers with a ServiceFault
 * Bad_ResponseTooLarge, a client reports Bad_RequestTooLarge); EP_EINVAL
 * (body cannot be encoded); EP_ENOMEM (the channel is then closed). */
ep_err ep_ua_channel_send(ep_ua_channel *ch, uint32_t request_id, const ep_ua_type *type,
                          const void *body);

/* ep_ua_channel_request is ep_ua_channel_send for a client: it allocates
 * the next request id and returns it in *request_id (may be NULL); the
 * response arrives in on_message with the same id. Errors as send. */
ep_err ep_ua_channel_request(ep_ua_channel *ch, const ep_ua_type *type, const void *body,
                             uint32_t *request_id);

/* ep_ua_channel_close closes the channel: a client with an open channel
 * sends CloseSecureChannel first; a server with a Bad status sends an ERR
 * message (status and reason, may be NULL) first. Queued output is flushed
 * as far as the socket accepts without blocking. on_close(status) follows
 * from the loop (never from inside this call). Idempotent. */
void ep_ua_channel_close(ep_ua_channel *ch, ep_ua_status status, const char *reason);

/* ep_ua_channel_take_arena, called inside on_message, transfers the arena
 * holding m->body to the caller, who later releases it with
 * ep_ua_channel_arena_free. Returns NULL (keep using m only during the
 * callback) when out of memory. */
ep_ua_arena *ep_ua_channel_take_arena(ep_ua_channel *ch);
/* ep_ua_channel_arena_free releases an arena from take_arena; NULL is a
 * no-op. Any thread. */
void ep_ua_channel_arena_free(ep_ua_arena *a);

/* ep_ua_channels_live returns how many channels of role exist in this
 * process: created and not yet released, lingering ones (closed, waiting
 * for the peer to close its side, at most about a second) included. A
 * program that exits runs its loops until this is 0 for its roles. Any
 * thread. */
unsigned long ep_ua_channels_live(ep_ua_channel_role role);

/* ---- accessors (loop thread; borrowed results valid until on_close) ---- */

bool ep_ua_channel_is_open(const ep_ua_channel *ch);
ep_ua_channel_role ep_ua_channel_role_of(const ep_ua_channel *ch);
uint32_t ep_ua_channel_id(const ep_ua_channel *ch);
/* ep_ua_channel_policy: the policy in force (never NULL once open; None
 * before). */
const ep_ua_policy *ep_ua_channel_policy(const ep_ua_channel *ch);
int32_t ep_ua_channel_mode(const ep_ua_channel *ch);
/* ep_ua_channel_peer_cert: the peer's certificate (DER, leaf first, chain
 * possibly following) from the OPN exchange or the client options; NULL
 * with len 0 under policy None. */
const uint8_t *ep_ua_channel_peer_cert(const ep_ua_channel *ch, size_t *len);
/* ep_ua_channel_endpoint_url: server: EndpointUrl from the Hello; client:
 * the URL connected to. */
const char *ep_ua_channel_endpoint_url(const ep_ua_channel *ch);
/* ep_ua_channel_peer: "host:port" of the peer, for logs. */
const char *ep_ua_channel_peer(const ep_ua_channel *ch);
/* ep_ua_channel_pki: the PKI from the options (may be NULL). */
ep_ua_pki *ep_ua_channel_pki(const ep_ua_channel *ch);
/* ep_ua_channel_set_ud replaces the callback user data (e.g. once a
 * listener-accepted channel gets its own per-connection state). */
void ep_ua_channel_set_ud(ep_ua_channel *ch, void *ud);
void *ep_ua_channel_ud(const ep_ua_channel *ch);
/* ep_ua_channel_send_max_message: largest body the peer accepts (0 = no
 * limit); a server uses it to size Browse/Publish responses. */
uint32_t ep_ua_channel_send_max_message(const ep_ua_channel *ch);
/* ep_ua_channel_queued: bytes waiting to be written (back-pressure). */
size_t ep_ua_channel_queued(const ep_ua_channel *ch);

/* ---- listener (server role) ---- */

/* ep_ua_listener_new listens on url ("opc.tcp://host:port", port 0 picks a
 * free port) and creates a server channel with a copy of *opts for each
 * accepted connection, then calls on_accept (may be NULL) so the caller
 * can attach its state with ep_ua_channel_set_ud. opts->pki must outlive
 * the listener. max_channels bounds concurrent channels (0: 1000); above
 * it new connections get ERR Bad_TcpNotEnoughResources and are closed.
 * Returns EP_EOK, EP_EINVAL, EP_ENOMEM, EP_EADDRINUSE or another socket
 * error. */
ep_err ep_ua_listener_new(ep_loop *loop, const char *url, const ep_ua_channel_opts *opts,
                          unsigned max_channels,
                          void (*on_accept)(ep_ua_listener *l, ep_ua_channel *ch, void *ud),
                          void *ud, ep_ua_listener **out);
/* ep_ua_listener_port returns the bound TCP port. */
uint16_t ep_ua_listener_port(const ep_ua_listener *l);
/* ep_ua_listener_channels returns the number of live channels. */
unsigned ep_ua_listener_channels(const ep_ua_listener *l);
/* ep_ua_listener_free stops listening and closes every channel it created
 * with Bad_Shutdown (an ERR is sent); their on_close is NOT called, since
 * the owner of the listener is going away. NULL is a no-op. */
void ep_ua_listener_free(ep_ua_listener *l);

/* ---- URL helper ---- */

/* ep_ua_url_parse splits "opc.tcp://host:port/path" into host and port
 * (default 4840 when absent). Returns EP_EOK or EP_EINVAL. */
ep_err ep_ua_url_parse(const char *url, char *host, size_t host_cap, uint16_t *port);

#endif
