/*
 * channel_int.h - internals of the opc.tcp secure channel (channel.h),
 * shared by its three files:
 *
 *   channel.c       connection, framing, the state machine and its timer,
 *                   Hello/Acknowledge/ReverseHello, closing and lingering,
 *                   the listener, accessors
 *   channel_asym.c  OpenSecureChannel (OPN): asymmetric signing and
 *                   encryption, certificate validation, token issue and
 *                   renewal, symmetric key derivation
 *   channel_sym.c   MSG and CLO: symmetric signing and encryption, chunking
 *                   within the peer's limits, sequence numbers, reassembly
 *                   and decoding into the channel's arena
 */
#ifndef EP_SVC_OPCUA_CHANNEL_INT_H
#define EP_SVC_OPCUA_CHANNEL_INT_H

#include "codec/opcua/gen/nodeids.h"
#include "codec/opcua/gen/statuscodes.h"
#include "codec/opcua/gen/types.h"
#include "codec/opcua_crypto/cert.h"
#include "codec/opcua_crypto/crypto.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/sock.h"
#include "svc/opcua/channel.h"
#include "svc/opcua/tcp.h"

#define LOGCAT "opcua"
#define LINGER_MS 1000u
#define MAX_SIG 512u /* 4096-bit RSA */

enum {
    ST_CONNECTING,
    ST_WAIT_RHE,
    ST_WAIT_HEL,
    ST_WAIT_ACK,
    ST_WAIT_OPN,
    ST_OPEN,
    ST_CLOSED,
    ST_LINGER,
};

typedef struct token {
    bool valid;
    uint32_t id;
    uint64_t created_ms;
    uint32_t lifetime_ms;
    ep_ua_sym_keys send, recv;
} token;

struct ep_ua_channel {
    ep_loop *loop;
    int fd;
    ep_io io;
    ep_hook hook;
    ep_timer timer;
    ep_ua_channel_role role;
    int state;
    bool send_rhe; /* reverse connect: send RHE once connected */
    bool io_on, hooked;
    ep_ua_channel_opts opts; /* copy; borrowed pointers cleared */
    ep_ua_channel_limits lim;
    char *url;
    char *rhe_server_uri;
    char peer[300];
    ep_buf in, out;

    /* negotiated */
    uint32_t send_chunk; /* largest chunk we send */
    uint32_t peer_max_msg, peer_max_chunks;

    /* security */
    const ep_ua_policy *policy;
    int32_t mode;
    uint8_t *peer_der;
    size_t peer_der_len;
    ep_ua_cert *peer_cert;
    uint8_t local_nonce[64], remote_nonce[64];
    size_t local_nonce_len, remote_nonce_len;
    uint32_t channel_id;
    token tok[2];    /* newest, previous */
    bool tok_active; /* server: client has used tok[0] */
    uint32_t next_token_id;
    uint32_t send_seq;
    uint32_t recv_seq;
    bool recv_seq_init;
    uint32_t next_request_id;
    uint32_t opn_request_id; /* client: outstanding OPN */

    /* reassembly */
    ep_buf msg;
    bool msg_active, msg_discard;
    uint32_t msg_request_id, msg_chunks;
    ep_ua_status msg_fail;
    ep_ua_arena *arena;

    ep_ua_status close_status;
    ep_ua_listener *listener;
    ep_ua_channel *lnext, *lprev;
    ep_ratelimit rl;
};

struct ep_ua_listener {
    ep_loop *loop;
    int fd;
    ep_io io;
    uint16_t port;
    ep_ua_channel_opts opts;
    unsigned max_channels, nchannels;
    ep_ua_channel *channels;
    void (*on_accept)(ep_ua_listener *l, ep_ua_channel *ch, void *ud);
    void *ud;
};

static inline ep_ua_datetime now_dt(void)
{
    return ep_ua_datetime_from_unix_ms((int64_t)ep_clock_wall_ms());
}

static inline bool is_secure(const ep_ua_channel *ch) { return !ep_ua_policy_is_none(ch->policy); }

static inline const ep_ua_key *own_key(const ep_ua_channel *ch)
{
    return ch->opts.pki ? ep_ua_pki_own_key(ch->opts.pki) : NULL;
}

static inline const ep_ua_cert *own_cert(const ep_ua_channel *ch)
{
    return ch->opts.pki ? ep_ua_pki_own_cert(ch->opts.pki) : NULL;
}

static inline const ep_ua_key *peer_key(const ep_ua_channel *ch)
{
    return ch->peer_cert ? ep_ua_cert_key(ch->peer_cert) : NULL;
}

/* ep_ua__ch_set_peer_cert stores the peer certificate (DER, copied) and parses it (channel.c) */
ep_err ep_ua__ch_set_peer_cert(ep_ua_channel *ch, const uint8_t *der, size_t len);

/* ep_ua__ch_do_close marks the channel closed with st and schedules on_close (channel.c) */
void ep_ua__ch_do_close(ep_ua_channel *ch, ep_ua_status st);

/* ep_ua__ch_fail ends the channel for a protocol or security error: ERR to the peer
 * (server), a rate-limited log line, close (channel.c) */
void ep_ua__ch_fail(ep_ua_channel *ch, ep_ua_status st, const char *why);

/* ep_ua__ch_log_rejected logs an untrusted peer certificate and how to trust it
 * (channel_asym.c) */
void ep_ua__ch_log_rejected(ep_ua_channel *ch, const ep_ua_cert_verdict *v);

/* ep_ua__ch_send_opn_request (client) sends OpenSecureChannel Issue or Renew
 * (channel_asym.c) */
ep_err ep_ua__ch_send_opn_request(ep_ua_channel *ch, int32_t req_type);

/* ep_ua__ch_server_on_opn (server) handles one OPN chunk p[0..n) (decrypted in place)
 * (channel_asym.c) */
void ep_ua__ch_server_on_opn(ep_ua_channel *ch, uint8_t *p, size_t n);

/* ep_ua__ch_client_on_opn (client) handles the OPN response p[0..n) (channel_asym.c) */
void ep_ua__ch_client_on_opn(ep_ua_channel *ch, uint8_t *p, size_t n);

/* ep_ua__ch_seq_ok checks and advances the receive sequence number (channel_sym.c) */
bool ep_ua__ch_seq_ok(ep_ua_channel *ch, uint32_t seq);

/* ep_ua__ch_arena returns the channel's decode arena, created on first use (channel_sym.c) */
ep_ua_arena *ep_ua__ch_arena(ep_ua_channel *ch);

/* ep_ua__ch_encode_msg appends the encoding id and body of a service message
 * (channel_sym.c) */
ep_err ep_ua__ch_encode_msg(const ep_ua_type *type, const void *body, ep_buf *b);

/* ep_ua__ch_send_typed encodes body as a MSG or CLO message, split into chunks
 * within the peer's limits, signed and encrypted (channel_sym.c) */
ep_err ep_ua__ch_send_typed(ep_ua_channel *ch, uint32_t msgtype, uint32_t request_id,
                            const ep_ua_type *type, const void *body);

/* ep_ua__ch_on_sym handles one MSG or CLO chunk p[0..n): verify, decrypt in place,
 * reassemble, deliver (channel_sym.c) */
void ep_ua__ch_on_sym(ep_ua_channel *ch, uint32_t type, uint8_t chunk, uint8_t *p, size_t n);

#endif
