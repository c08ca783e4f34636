/*
 * channel.c - opc.tcp connection and secure channel, client and server.
 *
 * One state machine serves both roles:
 *
 *   client:  CONNECTING -> [WAIT_RHE] -> WAIT_ACK -> WAIT_OPN -> OPEN
 *   server:  [CONNECTING -> RHE sent] -> WAIT_HEL -> WAIT_OPN -> OPEN
 *   any:     -> CLOSED (on_close called) -> LINGER (output drained, peer's
 *              bytes discarded until EOF or a short timeout) -> freed
 *
 * Reading: bytes go into `in`; every whole message (chunk) is processed in
 * place (symmetric decryption is done in the read buffer), MSG bodies are
 * collected in `msg` until the final chunk and then decoded into the
 * channel's arena. Writing: every chunk is built, signed and encrypted
 * directly in `out`, which the before-poll hook flushes.
 *
 * Security tokens: `tok[0]` is the newest token and `tok[1]` the previous
 * one. A server keeps receiving (and sending) with the previous token
 * until the client uses the new one (OPC 10000-6 6.7.6); a client sends
 * with the newest at once and accepts either on receipt. The one timer
 * serves the open deadline, then the client's renewal at 75 % of the
 * lifetime or the server's expiry check at 125 %.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
    token tok[2]; /* newest, previous */
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

static uint32_t g_channel_id = 0;

static void ch_on_io(ep_io *io, unsigned events);
static void ch_on_timer(ep_timer *t);
static void ch_flush_hook(ep_loop *loop, void *arg);
static void ch_fail(ep_ua_channel *ch, ep_ua_status st, const char *why);
static ep_err send_hello(ep_ua_channel *ch);
static ep_err send_opn_request(ep_ua_channel *ch, int32_t req_type);
static ep_err send_typed(ep_ua_channel *ch, uint32_t msgtype,
                         uint32_t request_id, const ep_ua_type *type,
                         const void *body);

/* ------------------------------------------------------------ helpers -- */

static ep_ua_datetime now_dt(void)
{
    return ep_ua_datetime_from_unix_ms((int64_t)ep_clock_wall_ms());
}

ep_err ep_ua_url_parse(const char *url, char *host, size_t host_cap,
                       uint16_t *port)
{
    static const char pfx[] = "opc.tcp://";
    if (url == NULL || strncasecmp(url, pfx, sizeof(pfx) - 1) != 0)
        return EP_EINVAL;
    const char *h = url + sizeof(pfx) - 1;
    const char *end = h + strcspn(h, "/");
    const char *colon = NULL;
    const char *hs = h, *he;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb == NULL)
            return EP_EINVAL;
        hs = h + 1;
        he = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return EP_EINVAL;
            colon = rb + 1;
        }
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
    }
    if (he <= hs || (size_t)(he - hs) >= host_cap)
        return EP_EINVAL;
    unsigned long p = 4840;
    if (colon) {
        char *e;
        p = strtoul(colon + 1, &e, 10);
        if (e != end || colon + 1 == end || p > 65535)
            return EP_EINVAL;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = 0;
    *port = (uint16_t)p;
    return EP_EOK;
}

static void fill_limits(ep_ua_channel_limits *l)
{
    if (l->recv_buffer_size == 0)
        l->recv_buffer_size = EP_UA_CHANNEL_DEFAULT_BUFFER;
    if (l->recv_buffer_size < EP_UA_CHANNEL_MIN_BUFFER)
        l->recv_buffer_size = EP_UA_CHANNEL_MIN_BUFFER;
    if (l->send_buffer_size == 0)
        l->send_buffer_size = EP_UA_CHANNEL_DEFAULT_BUFFER;
    if (l->send_buffer_size < EP_UA_CHANNEL_MIN_BUFFER)
        l->send_buffer_size = EP_UA_CHANNEL_MIN_BUFFER;
    if (l->max_message_size == 0)
        l->max_message_size = EP_UA_CHANNEL_DEFAULT_MAX_MESSAGE;
    if (l->max_chunk_count == 0)
        l->max_chunk_count = EP_UA_CHANNEL_DEFAULT_MAX_CHUNKS;
    if (l->token_lifetime_ms == 0)
        l->token_lifetime_ms = EP_UA_CHANNEL_DEFAULT_LIFETIME_MS;
    if (l->open_timeout_ms == 0)
        l->open_timeout_ms = EP_UA_CHANNEL_DEFAULT_HELLO_TIMEOUT_MS;
    if (l->decode.max_message_size == 0)
        l->decode.max_message_size = l->max_message_size;
}

static bool is_secure(const ep_ua_channel *ch)
{
    return !ep_ua_policy_is_none(ch->policy);
}

static const ep_ua_key *own_key(const ep_ua_channel *ch)
{
    return ch->opts.pki ? ep_ua_pki_own_key(ch->opts.pki) : NULL;
}

static const ep_ua_cert *own_cert(const ep_ua_channel *ch)
{
    return ch->opts.pki ? ep_ua_pki_own_cert(ch->opts.pki) : NULL;
}

static const ep_ua_key *peer_key(const ep_ua_channel *ch)
{
    return ch->peer_cert ? ep_ua_cert_key(ch->peer_cert) : NULL;
}

static ep_err set_peer_cert(ep_ua_channel *ch, const uint8_t *der, size_t len)
{
    ep_ua_cert *c = NULL;
    size_t used = 0;
    ep_err e = ep_ua_cert_parse(der, len, &c, &used);
    if (e != EP_EOK)
        return e;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        ep_ua_cert_free(c);
        return EP_ENOMEM;
    }
    memcpy(copy, der, len);
    free(ch->peer_der);
    ep_ua_cert_free(ch->peer_cert);
    ch->peer_der = copy;
    ch->peer_der_len = len;
    ch->peer_cert = c;
    return EP_EOK;
}

/* channels allocated and not yet released, by role (lingering ones
 * included); changed on loop threads, read by any thread */
static unsigned long live_channels[2];

unsigned long ep_ua_channels_live(ep_ua_channel_role role)
{
    return __atomic_load_n(&live_channels[role == EP_UA_CHANNEL_SERVER], __ATOMIC_RELAXED);
}

static ep_ua_channel *ch_new(ep_loop *loop, ep_ua_channel_role role,
                             const ep_ua_channel_opts *opts)
{
    ep_ua_channel *ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return NULL;
    __atomic_add_fetch(&live_channels[role == EP_UA_CHANNEL_SERVER], 1, __ATOMIC_RELAXED);
    ch->loop = loop;
    ch->fd = -1;
    ch->role = role;
    ch->opts = *opts;
    ch->opts.server_cert = NULL;
    ch->opts.server_cert_len = 0;
    ch->opts.endpoint_url = NULL;
    ch->lim = opts->limits;
    fill_limits(&ch->lim);
    ch->policy = ep_ua_policy_get(EP_UA_POLICY_NONE);
    ch->mode = EP_UA_MESSAGE_SECURITY_MODE_NONE;
    ch->send_seq = 1;
    ch->next_request_id = 1;
    ch->next_token_id = 1;
    ch->send_chunk = ch->lim.send_buffer_size;
    ch->rl.period_ms = 10000;
    ch->rl.burst = 5;
    ep_buf_init(&ch->in, (size_t)ch->lim.recv_buffer_size * 2 + 64);
    ep_buf_init(&ch->out, 0);
    ep_buf_init(&ch->msg, (size_t)ch->lim.max_message_size + 64);
    ep_timer_init(loop, &ch->timer, ch_on_timer, ch);
    ch->hook.fn = ch_flush_hook;
    ch->hook.arg = ch;
    ep_loop_hook_before_poll(loop, &ch->hook);
    ch->hooked = true;
    return ch;
}

static void ch_release(ep_ua_channel *ch)
{
    if (ch->hooked)
        ep_loop_unhook_before_poll(ch->loop, &ch->hook);
    ep_timer_stop(&ch->timer);
    ep_io_stop(&ch->io);
    if (ch->fd >= 0)
        ep_sock_close(ch->fd);
    ep_buf_fini(&ch->in);
    ep_buf_fini(&ch->out);
    ep_buf_fini(&ch->msg);
    for (int i = 0; i < 2; i++) {
        ep_ua_sym_keys_clear(&ch->tok[i].send);
        ep_ua_sym_keys_clear(&ch->tok[i].recv);
    }
    ep_ua_channel_arena_free(ch->arena);
    ep_ua_cert_free(ch->peer_cert);
    free(ch->peer_der);
    free(ch->url);
    free(ch->rhe_server_uri);
    __atomic_sub_fetch(&live_channels[ch->role == EP_UA_CHANNEL_SERVER], 1, __ATOMIC_RELAXED);
    free(ch);
}

static void start_io(ep_ua_channel *ch, unsigned events)
{
    if (!ch->io_on) {
        if (ep_io_start(ch->loop, &ch->io, ch->fd, events, ch_on_io, ch) == EP_EOK)
            ch->io_on = true;
    } else {
        ep_io_modify(&ch->io, events);
    }
}

/* ------------------------------------------------------------ closing -- */

static void listener_unlink(ep_ua_channel *ch)
{
    ep_ua_listener *l = ch->listener;
    if (l == NULL)
        return;
    if (ch->lprev)
        ch->lprev->lnext = ch->lnext;
    else
        l->channels = ch->lnext;
    if (ch->lnext)
        ch->lnext->lprev = ch->lprev;
    l->nchannels--;
    ch->listener = NULL;
}

static void ch_finish(ep_loop *loop, void *arg)
{
    ep_ua_channel *ch = arg;
    (void)loop;
    listener_unlink(ch);
    if (ch->opts.cbs.on_close)
        ch->opts.cbs.on_close(ch, ch->close_status, ch->opts.ud);
    /* Linger: drain what is queued, discard the peer's bytes until it
     * closes too, so that an ERR is not lost to a reset. */
    if (ch->fd >= 0 && ch->io_on) {
        ch->state = ST_LINGER;
        if (ep_buf_used(&ch->out) == 0)
            shutdown(ch->fd, SHUT_WR);
        start_io(ch, EP_IO_READ | (ep_buf_used(&ch->out) ? EP_IO_WRITE : 0));
        ep_timer_start(&ch->timer, LINGER_MS);
        return;
    }
    ch_release(ch);
}

static void ch_free_deferred(ep_loop *loop, void *arg)
{
    (void)loop;
    ch_release(arg);
}

static void ch_do_close(ep_ua_channel *ch, ep_ua_status st)
{
    if (ch->state >= ST_CLOSED)
        return;
    ch->state = ST_CLOSED;
    ch->close_status = st;
    ep_timer_stop(&ch->timer);
    if (ep_loop_defer(ch->loop, ch_finish, ch) != EP_EOK)
        ch_finish(ch->loop, ch); /* out of memory: finish now */
}

static void send_err(ep_ua_channel *ch, ep_ua_status st, const char *why)
{
    ep_ua__error e = {st, ep_ua_string_from(why ? why : "")};
    if (e.reason.len > 256)
        e.reason.len = 256;
    ep_ua__error_encode(&ch->out, &e);
}

void ep_ua_channel_close(ep_ua_channel *ch, ep_ua_status status,
                         const char *reason)
{
    if (ch == NULL || ch->state >= ST_CLOSED)
        return;
    if (ch->role == EP_UA_CHANNEL_CLIENT && ch->state == ST_OPEN) {
        ep_ua_close_secure_channel_request req;
        memset(&req, 0, sizeof(req));
        req.request_header.timestamp = now_dt();
        uint32_t id = ch->next_request_id++;
        send_typed(ch, EP_UA_MSG_CLO, id,
                                  EP_UA_T(CloseSecureChannelRequest), &req);
    } else if (ch->role == EP_UA_CHANNEL_SERVER && status != EP_UA_STATUS_Good &&
               ch->state != ST_CONNECTING) {
        send_err(ch, status, reason);
    }
    ch_do_close(ch, status);
}

/* ch_fail: a protocol error; a server tells the peer with ERR. */
static void ch_fail(ep_ua_channel *ch, ep_ua_status st, const char *why)
{
    if (ch->state >= ST_CLOSED)
        return;
    if (ep_ratelimit_allow(&ch->rl, ep_loop_now(ch->loop)))
        EP_LOG_WARN(LOGCAT, "channel %u peer=%s closed: %s (0x%08x)",
                    ch->channel_id, ch->peer, why, st);
    if (ch->role == EP_UA_CHANNEL_SERVER && ch->state != ST_CONNECTING)
        send_err(ch, st, why);
    ch_do_close(ch, st);
}

/* ------------------------------------------------------------ writing -- */

static void flush_now(ep_ua_channel *ch)
{
    while (ep_buf_used(&ch->out)) {
        struct iovec iov = {ep_buf_head(&ch->out), ep_buf_used(&ch->out)};
        ssize_t n = ep_sock_writev(ch->fd, &iov, 1);
        if (n == EP_EAGAIN)
            break;
        if (n < 0) {
            ep_buf_clear(&ch->out);
            if (ch->state < ST_CLOSED)
                ch_do_close(ch, EP_UA_STATUS_BadConnectionClosed);
            return;
        }
        ep_buf_consume(&ch->out, (size_t)n);
    }
    unsigned ev = EP_IO_READ;
    if (ep_buf_used(&ch->out))
        ev |= EP_IO_WRITE;
    else
        ep_buf_shrink(&ch->out, 65536);
    if (ch->state == ST_LINGER && ev == EP_IO_READ)
        shutdown(ch->fd, SHUT_WR);
    start_io(ch, ev);
}

static void ch_flush_hook(ep_loop *loop, void *arg)
{
    ep_ua_channel *ch = arg;
    (void)loop;
    if (ch->fd >= 0 && ch->state != ST_CONNECTING && ep_buf_used(&ch->out))
        flush_now(ch);
}

/* Largest body per symmetric chunk for the current security. */
static size_t sym_body_max(const ep_ua_channel *ch)
{
    size_t room = ch->send_chunk - 16 - 8; /* headers, sequence header */
    if (ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT) {
        size_t b = ch->policy->sym_block_len;
        room = (ch->send_chunk - 16) / b * b - 8 - ch->policy->sym_sig_len - 1;
    } else if (ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN) {
        room -= ch->policy->sym_sig_len;
    }
    return room;
}

static const token *send_token(const ep_ua_channel *ch)
{
    if (ch->role == EP_UA_CHANNEL_SERVER && !ch->tok_active && ch->tok[1].valid)
        return &ch->tok[1];
    return &ch->tok[0];
}

/* Append one symmetric chunk (MSG or CLO) to out. */
static ep_err put_sym_chunk(ep_ua_channel *ch, uint32_t type, uint8_t chunk,
                            uint32_t request_id, const uint8_t *body,
                            size_t blen)
{
    const token *t = send_token(ch);
    bool sign = ch->mode >= EP_UA_MESSAGE_SECURITY_MODE_SIGN && is_secure(ch);
    bool enc = ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT &&
               is_secure(ch);
    size_t sig = sign ? ch->policy->sym_sig_len : 0;
    size_t pad = 0, padfield = 0;
    if (enc) {
        size_t b = ch->policy->sym_block_len;
        pad = (b - ((8 + blen + 1 + sig) % b)) % b;
        padfield = pad + 1;
    }
    size_t size = 16 + 8 + blen + padfield + sig;
    ep_err e = ep_buf_reserve(&ch->out, size);
    if (e != EP_EOK)
        return e;
    uint8_t *p = ep_buf_tail(&ch->out);
    p[0] = (uint8_t)type;
    p[1] = (uint8_t)(type >> 8);
    p[2] = (uint8_t)(type >> 16);
    p[3] = chunk;
    ep_ua__wr32(p + 4, (uint32_t)size);
    ep_ua__wr32(p + 8, ch->channel_id);
    ep_ua__wr32(p + 12, t->id);
    ep_ua__wr32(p + 16, ch->send_seq);
    ep_ua__wr32(p + 20, request_id);
    if (blen)
        memcpy(p + 24, body, blen);
    if (padfield)
        memset(p + 24 + blen, (int)(pad & 0xff), padfield);
    ch->send_seq = ch->send_seq >= 0xfffffbffu ? 1 : ch->send_seq + 1;
    if (sign) {
        e = ep_ua_sym_sign(ch->policy, &t->send, p, size - sig, p + size - sig,
                           sig);
        if (e != EP_EOK)
            return e;
    }
    if (enc) {
        e = ep_ua_sym_encrypt(ch->policy, &t->send, p + 16, p + 16, size - 16);
        if (e != EP_EOK)
            return e;
    }
    ch->out.len += size;
    return EP_EOK;
}

static ep_err encode_msg(const ep_ua_type *type, const void *body, ep_buf *b)
{
    return ep_ua_message_encode(body, type, b);
}

static ep_err send_typed(ep_ua_channel *ch, uint32_t msgtype,
                         uint32_t request_id, const ep_ua_type *type,
                         const void *body)
{
    ep_buf b;
    ep_buf_init(&b, ch->peer_max_msg ? ch->peer_max_msg : 0);
    ep_err e = encode_msg(type, body, &b);
    if (e != EP_EOK) {
        ep_buf_fini(&b);
        return e;
    }
    size_t len = ep_buf_used(&b);
    size_t max = sym_body_max(ch);
    size_t nchunks = len ? (len + max - 1) / max : 1;
    if (ch->peer_max_chunks && nchunks > ch->peer_max_chunks) {
        ep_buf_fini(&b);
        return EP_ETOOBIG;
    }
    size_t undo = ch->out.len;
    for (size_t off = 0, i = 0; i < nchunks; i++) {
        size_t n = len - off < max ? len - off : max;
        e = put_sym_chunk(ch, msgtype, i + 1 == nchunks ? 'F' : 'C', request_id,
                          ep_buf_head(&b) + off, n);
        if (e != EP_EOK) {
            ch->out.len = undo;
            break;
        }
        off += n;
    }
    ep_buf_fini(&b);
    if (e == EP_ENOMEM)
        ch_do_close(ch, EP_UA_STATUS_BadOutOfMemory);
    return e;
}

ep_err ep_ua_channel_send(ep_ua_channel *ch, uint32_t request_id,
                          const ep_ua_type *type, const void *body)
{
    if (ch == NULL || ch->state != ST_OPEN)
        return EP_ECLOSED;
    ep_err e = send_typed(ch, EP_UA_MSG_MSG, request_id, type, body);
    if (e == EP_ETOOBIG && ep_ratelimit_allow(&ch->rl, ep_loop_now(ch->loop)))
        EP_LOG_INFO(LOGCAT, "channel %u: %s too large for the peer's limits",
                    ch->channel_id, type->name);
    return e;
}

ep_err ep_ua_channel_request(ep_ua_channel *ch, const ep_ua_type *type,
                             const void *body, uint32_t *request_id)
{
    if (ch == NULL || ch->state != ST_OPEN)
        return EP_ECLOSED;
    uint32_t id = ch->next_request_id++;
    if (ch->next_request_id == 0)
        ch->next_request_id = 1;
    ep_err e = ep_ua_channel_send(ch, id, type, body);
    if (e == EP_EOK && request_id)
        *request_id = id;
    return e;
}

/* Append one asymmetric (OPN) chunk; single chunk only. */
static ep_err put_asym(ep_ua_channel *ch, uint32_t request_id,
                       const ep_ua_type *type, const void *body)
{
    ep_buf b, hdr;
    ep_buf_init(&b, 0);
    ep_buf_init(&hdr, 0);
    uint8_t *plain = NULL;
    ep_err e = encode_msg(type, body, &b);
    if (e != EP_EOK)
        goto done;
    /* header and asymmetric security header */
    uint8_t h[12] = {'O', 'P', 'N', 'F', 0, 0, 0, 0, 0, 0, 0, 0};
    ep_ua__wr32(h + 8, ch->channel_id);
    e = ep_buf_append(&hdr, h, sizeof(h));
    ep_ua_string uri = ep_ua_string_from(ch->policy->uri);
    if (e == EP_EOK)
        e = ep_ua_encode(&uri, EP_UA_T(String), &hdr);
    ep_ua_bytestring cert = {0, NULL}, thumb = {0, NULL};
    if (is_secure(ch)) {
        cert.data = (uint8_t *)ep_ua_cert_der(own_cert(ch), &cert.len);
        thumb.data = (uint8_t *)ep_ua_cert_thumbprint(ch->peer_cert);
        thumb.len = 20;
    }
    if (e == EP_EOK)
        e = ep_ua_encode(&cert, EP_UA_T(ByteString), &hdr);
    if (e == EP_EOK)
        e = ep_ua_encode(&thumb, EP_UA_T(ByteString), &hdr);
    if (e != EP_EOK)
        goto done;
    size_t hlen = ep_buf_used(&hdr), blen = ep_buf_used(&b);
    size_t plain_len = 8 + blen, size, sig = 0, pad = 0;
    bool extra = false;
    size_t pb = 0, cb = 0;
    if (is_secure(ch)) {
        e = ep_ua_asym_block_sizes(ch->policy, peer_key(ch), &pb, &cb);
        if (e != EP_EOK)
            goto done;
        sig = ep_ua_asym_sig_size(ch->policy, own_key(ch));
        extra = cb > 256;
        size_t fixed = 8 + blen + 1 + (extra ? 1 : 0) + sig;
        pad = (pb - fixed % pb) % pb;
        plain_len = fixed + pad;
        size = hlen + plain_len / pb * cb;
    } else {
        size = hlen + plain_len;
    }
    if (size > ch->send_chunk || size > UINT32_MAX) {
        e = EP_ETOOBIG;
        goto done;
    }
    ep_ua__wr32(hdr.data + hdr.off + 4, (uint32_t)size);
    /* plaintext: header || seq || body || padding, then signature */
    plain = malloc(hlen + plain_len);
    if (plain == NULL) {
        e = EP_ENOMEM;
        goto done;
    }
    memcpy(plain, ep_buf_head(&hdr), hlen);
    uint8_t *q = plain + hlen;
    ep_ua__wr32(q, ch->send_seq);
    ep_ua__wr32(q + 4, request_id);
    memcpy(q + 8, ep_buf_head(&b), blen);
    if (is_secure(ch)) {
        uint8_t *pp = q + 8 + blen;
        memset(pp, (int)(pad & 0xff), pad + 1);
        if (extra)
            pp[pad + 1] = (uint8_t)(pad >> 8);
        size_t signed_len = hlen + plain_len - sig;
        size_t sl = 0;
        e = ep_ua_asym_sign(ch->policy, own_key(ch), plain, signed_len,
                            plain + signed_len, sig, &sl);
        if (e != EP_EOK)
            goto done;
        e = ep_buf_reserve(&ch->out, size);
        if (e != EP_EOK)
            goto done;
        uint8_t *o = ep_buf_tail(&ch->out);
        memcpy(o, plain, hlen);
        size_t outl = 0;
        e = ep_ua_asym_encrypt(ch->policy, peer_key(ch), q, plain_len, o + hlen,
                               size - hlen, &outl);
        if (e != EP_EOK)
            goto done;
        ch->out.len += size;
    } else {
        e = ep_buf_append(&ch->out, plain, hlen + plain_len);
        if (e != EP_EOK)
            goto done;
    }
    ch->send_seq++;
done:
    free(plain);
    ep_buf_fini(&b);
    ep_buf_fini(&hdr);
    return e;
}

/* ------------------------------------------------------------ reading -- */

/* Parses the asymmetric security header at p[12..n); *off is set past it. */
static ep_err parse_asym_hdr(const uint8_t *p, size_t n, ep_ua_string *uri,
                             ep_ua_bytestring *cert, ep_ua_bytestring *thumb,
                             size_t *off)
{
    /* Strings borrow from p: decode with a throwaway arena is overkill;
     * read them by hand. */
    size_t pos = 12;
    ep_ua_string *f[3] = {uri, cert, thumb};
    for (int i = 0; i < 3; i++) {
        if (n - pos < 4)
            return EP_EMALFORMED;
        uint32_t l = ep_ua__rd32(p + pos);
        pos += 4;
        if (l == 0xffffffffu) {
            f[i]->len = 0;
            f[i]->data = NULL;
            continue;
        }
        if (l > n - pos || l > (1u << 20))
            return EP_EMALFORMED;
        f[i]->len = l;
        f[i]->data = (uint8_t *)(uintptr_t)(p + pos);
        pos += l;
    }
    *off = pos;
    return EP_EOK;
}

static bool seq_ok(ep_ua_channel *ch, uint32_t seq)
{
    if (!ch->recv_seq_init) {
        ch->recv_seq_init = true;
        ch->recv_seq = seq;
        return true;
    }
    uint32_t want = ch->recv_seq + 1;
    /* Wrap-around: after 4294966271 the sender restarts below 1024. */
    if (seq == want || (ch->recv_seq > 0xfffffbffu && seq < 1024)) {
        ch->recv_seq = seq;
        return true;
    }
    return false;
}

static ep_ua_arena *ch_arena(ep_ua_channel *ch)
{
    if (ch->arena == NULL) {
        ch->arena = malloc(sizeof(*ch->arena));
        if (ch->arena == NULL)
            return NULL;
        ep_ua_arena_init(ch->arena, (size_t)ch->lim.max_message_size * 4 + (1u << 20),
                         NULL);
    }
    return ch->arena;
}

ep_ua_arena *ep_ua_channel_take_arena(ep_ua_channel *ch)
{
    ep_ua_arena *a = ch->arena;
    ch->arena = NULL;
    return a;
}

void ep_ua_channel_arena_free(ep_ua_arena *a)
{
    if (a == NULL)
        return;
    ep_ua_arena_fini(a);
    free(a);
}

/* Best-effort request handle of a body that failed to decode. */
static uint32_t peek_request_handle(const uint8_t *p, size_t n,
                                    ep_ua_arena *arena)
{
    size_t pos = 0;
    ep_ua_nodeid id;
    ep_ua_request_header rh;
    ep_ua_arena_mark m = ep_ua_arena_save(arena);
    uint32_t h = 0;
    if (ep_ua_decode(p, n, &pos, EP_UA_T(NodeId), &id, arena, NULL, NULL) ==
            EP_EOK &&
        ep_ua_decode(p, n, &pos, EP_UA_T(RequestHeader), &rh, arena, NULL,
                     NULL) == EP_EOK)
        h = rh.request_handle;
    ep_ua_arena_rewind(arena, m);
    return h;
}

static void deliver(ep_ua_channel *ch, uint32_t request_id, ep_ua_status fail)
{
    ep_ua_arena *arena = ch_arena(ch);
    if (arena == NULL) {
        ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
        return;
    }
    ep_ua_channel_msg m;
    memset(&m, 0, sizeof(m));
    m.request_id = request_id;
    m.arena = arena;
    m.status = fail;
    if (fail == EP_UA_STATUS_Good) {
        size_t pos = 0;
        const ep_ua_type *type = NULL;
        void *body = NULL;
        ep_ua_status st = EP_UA_STATUS_Good;
        ep_err e = ep_ua_message_decode(ep_buf_head(&ch->msg), ep_buf_used(&ch->msg),
                                        &pos, &type, &body, arena,
                                        &ch->lim.decode, &st);
        if (e == EP_EOK) {
            m.type = type;
            m.body = body;
            /* Request and response headers both start the body. */
            if (type->nfields && type->fields[0].type == EP_UA_TYPE_RequestHeader)
                m.request_handle = ((ep_ua_request_header *)body)->request_handle;
            else if (type->nfields &&
                     type->fields[0].type == EP_UA_TYPE_ResponseHeader)
                m.request_handle = ((ep_ua_response_header *)body)->request_handle;
        } else {
            m.status = st != EP_UA_STATUS_Good ? st : EP_UA_STATUS_BadDecodingError;
            m.request_handle =
                peek_request_handle(ep_buf_head(&ch->msg), ep_buf_used(&ch->msg), arena);
        }
    }
    ep_buf_clear(&ch->msg);
    ep_buf_shrink(&ch->msg, 65536);
    ch->opts.cbs.on_message(ch, &m, ch->opts.ud);
    if (ch->arena)
        ep_ua_arena_clear(ch->arena);
}

/* A symmetric chunk (MSG/CLO): verify, decrypt, collect, deliver. */
static void on_sym(ep_ua_channel *ch, uint32_t type, uint8_t chunk, uint8_t *p,
                   size_t n)
{
    if (ch->state != ST_OPEN) {
        ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid,
                "message before the secure channel was open");
        return;
    }
    if (ep_ua__rd32(p + 8) != ch->channel_id) {
        ch_fail(ch, EP_UA_STATUS_BadTcpSecureChannelUnknown, "wrong channel id");
        return;
    }
    uint32_t tid = ep_ua__rd32(p + 12);
    const token *t = NULL;
    if (ch->tok[0].valid && tid == ch->tok[0].id) {
        t = &ch->tok[0];
        if (ch->role == EP_UA_CHANNEL_SERVER && !ch->tok_active) {
            ch->tok_active = true;
            ep_ua_sym_keys_clear(&ch->tok[1].send);
            ep_ua_sym_keys_clear(&ch->tok[1].recv);
            ch->tok[1].valid = false;
        }
    } else if (ch->tok[1].valid && tid == ch->tok[1].id) {
        t = &ch->tok[1];
    }
    if (t == NULL) {
        ch_fail(ch, EP_UA_STATUS_BadSecureChannelTokenUnknown,
                "unknown security token");
        return;
    }
    size_t end = n;
    if (is_secure(ch) && ch->mode >= EP_UA_MESSAGE_SECURITY_MODE_SIGN) {
        size_t sig = ch->policy->sym_sig_len;
        if (ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT) {
            if ((n - 16) % ch->policy->sym_block_len != 0 ||
                ep_ua_sym_decrypt(ch->policy, &t->recv, p + 16, p + 16, n - 16) !=
                    EP_EOK) {
                ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed,
                        "could not decrypt a message");
                return;
            }
        }
        if (n < 24 + sig ||
            ep_ua_sym_verify(ch->policy, &t->recv, p, n - sig, p + n - sig, sig) !=
                EP_EOK) {
            ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed,
                    "message signature is invalid");
            return;
        }
        end = n - sig;
        if (ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT) {
            uint8_t pad = p[end - 1];
            if ((size_t)pad + 1 > end - 24) {
                ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed, "bad padding");
                return;
            }
            for (size_t i = end - 1 - pad; i < end; i++)
                if (p[i] != pad) {
                    ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed, "bad padding");
                    return;
                }
            end -= (size_t)pad + 1;
        }
    }
    uint32_t seq = ep_ua__rd32(p + 16), rid = ep_ua__rd32(p + 20);
    if (!seq_ok(ch, seq)) {
        ch_fail(ch, EP_UA_STATUS_BadSequenceNumberInvalid,
                "sequence number out of order");
        return;
    }
    if (type == EP_UA_MSG_CLO) {
        if (ch->role == EP_UA_CHANNEL_SERVER)
            ch_do_close(ch, EP_UA_STATUS_Good);
        return;
    }
    if (ch->msg_active && rid != ch->msg_request_id) {
        ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid,
                "chunks of different messages interleaved");
        return;
    }
    if (!ch->msg_active) {
        ch->msg_active = true;
        ch->msg_discard = false;
        ch->msg_request_id = rid;
        ch->msg_chunks = 0;
        ch->msg_fail = EP_UA_STATUS_Good;
    }
    if (chunk == 'A') {
        /* Abort: drop what was collected. A response abort carries an
         * error status and reason, reported to a client's request. */
        ep_buf_clear(&ch->msg);
        ch->msg_active = false;
        if (ch->role == EP_UA_CHANNEL_CLIENT) {
            ep_ua_status st = end - 24 >= 4 ? ep_ua__rd32(p + 24)
                                            : EP_UA_STATUS_BadCommunicationError;
            deliver(ch, rid, st ? st : EP_UA_STATUS_BadCommunicationError);
        }
        return;
    }
    ch->msg_chunks++;
    if (!ch->msg_discard) {
        size_t blen = end - 24;
        if (ch->msg_chunks > ch->lim.max_chunk_count ||
            ep_buf_used(&ch->msg) + blen > ch->lim.max_message_size ||
            ep_buf_append(&ch->msg, p + 24, blen) != EP_EOK) {
            ch->msg_discard = true;
            ch->msg_fail = ch->role == EP_UA_CHANNEL_SERVER
                               ? EP_UA_STATUS_BadRequestTooLarge
                               : EP_UA_STATUS_BadResponseTooLarge;
            ep_buf_clear(&ch->msg);
            if (ep_ratelimit_allow(&ch->rl, ep_loop_now(ch->loop)))
                EP_LOG_INFO(LOGCAT,
                            "channel %u peer=%s: message above %u bytes or %u "
                            "chunks dropped",
                            ch->channel_id, ch->peer, ch->lim.max_message_size,
                            ch->lim.max_chunk_count);
        }
    }
    if (chunk == 'F') {
        ch->msg_active = false;
        deliver(ch, rid, ch->msg_fail);
    }
}

static void arm_token_timer(ep_ua_channel *ch)
{
    const token *t = &ch->tok[0];
    uint64_t delay = ch->role == EP_UA_CHANNEL_CLIENT
                         ? (uint64_t)t->lifetime_ms * 3 / 4
                         : (uint64_t)t->lifetime_ms * 5 / 4;
    ep_timer_start(&ch->timer, delay);
}

static void new_token(ep_ua_channel *ch)
{
    ep_ua_sym_keys_clear(&ch->tok[1].send);
    ep_ua_sym_keys_clear(&ch->tok[1].recv);
    ch->tok[1] = ch->tok[0];
    memset(&ch->tok[0], 0, sizeof(ch->tok[0]));
}

static ep_err derive(ep_ua_channel *ch, token *t)
{
    if (!is_secure(ch))
        return EP_EOK;
    const uint8_t *cn, *sn;
    size_t cl, sl;
    if (ch->role == EP_UA_CHANNEL_CLIENT) {
        cn = ch->local_nonce, cl = ch->local_nonce_len;
        sn = ch->remote_nonce, sl = ch->remote_nonce_len;
    } else {
        cn = ch->remote_nonce, cl = ch->remote_nonce_len;
        sn = ch->local_nonce, sl = ch->local_nonce_len;
    }
    ep_ua_sym_keys ck, sk;
    ep_err e = ep_ua_channel_keys_derive(ch->policy, cn, cl, sn, sl, &ck, &sk);
    if (e != EP_EOK)
        return e;
    if (ch->role == EP_UA_CHANNEL_CLIENT) {
        t->send = ck;
        t->recv = sk;
    } else {
        t->send = sk;
        t->recv = ck;
    }
    ep_ua_sym_keys_clear(&ck);
    ep_ua_sym_keys_clear(&sk);
    return EP_EOK;
}

static void log_rejected(ep_ua_channel *ch, const ep_ua_cert_verdict *v)
{
    EP_LOG_WARN(LOGCAT,
                "peer=%s certificate \"%s\" [%s] rejected (%s): %s%s%s%s",
                ch->peer, v->subject, v->thumbprint,
                ep_ua_cert_result_name(v->result), v->message,
                v->rejected[0] ? " Saved as rejected/" : "", v->rejected,
                v->rejected[0] ? "; to trust it, move that file to "
                                 "trusted/certs/ in the PKI folder (or run "
                                 "`edgeplane opcua trust` with its thumbprint)."
                               : "");
}

/* Verifies and decrypts an OPN in place. On success *body and *blen point at
 * the plaintext body and *seq, *rid are set. */
static ep_ua_status open_asym(ep_ua_channel *ch, uint8_t *p, size_t n,
                              const uint8_t **body, size_t *blen,
                              uint32_t *seq, uint32_t *rid)
{
    ep_ua_string uri = {0, NULL};
    ep_ua_bytestring cert = {0, NULL}, thumb = {0, NULL};
    size_t off = 0;
    if (parse_asym_hdr(p, n, &uri, &cert, &thumb, &off) != EP_EOK)
        return EP_UA_STATUS_BadDecodingError;
    const ep_ua_policy *pol = ep_ua_policy_find((const char *)uri.data, uri.len);
    if (pol == NULL)
        return EP_UA_STATUS_BadSecurityPolicyRejected;
    if (ch->role == EP_UA_CHANNEL_SERVER) {
        if (ch->state == ST_OPEN) {
            if (pol != ch->policy)
                return EP_UA_STATUS_BadSecurityPolicyRejected;
        } else {
            unsigned allowed = ch->opts.allowed_policies ? ch->opts.allowed_policies
                                                         : 1u << EP_UA_POLICY_NONE;
            if (!(allowed & (1u << pol->id)))
                return EP_UA_STATUS_BadSecurityPolicyRejected;
            ch->policy = pol;
        }
    } else if (pol != ch->policy) {
        return EP_UA_STATUS_BadSecurityPolicyRejected;
    }
    if (ep_ua_policy_is_none(pol)) {
        if (n - off < 8)
            return EP_UA_STATUS_BadDecodingError;
        *seq = ep_ua__rd32(p + off);
        *rid = ep_ua__rd32(p + off + 4);
        *body = p + off + 8;
        *blen = n - off - 8;
        return EP_UA_STATUS_Good;
    }
    if (cert.data == NULL || cert.len == 0 || thumb.len != 20 || own_cert(ch) == NULL)
        return EP_UA_STATUS_BadSecurityChecksFailed;
    if (memcmp(thumb.data, ep_ua_cert_thumbprint(own_cert(ch)), 20) != 0)
        return EP_UA_STATUS_BadCertificateInvalid;
    if (ch->role == EP_UA_CHANNEL_SERVER) {
        if (ch->peer_cert == NULL ||
            ch->peer_der_len != cert.len || memcmp(ch->peer_der, cert.data, cert.len)) {
            if (ch->state == ST_OPEN)
                return EP_UA_STATUS_BadCertificateInvalid; /* changed on renew */
            if (set_peer_cert(ch, cert.data, cert.len) != EP_EOK)
                return EP_UA_STATUS_BadCertificateInvalid;
        }
    } else {
        size_t used = 0;
        ep_ua_cert *c = NULL;
        if (ep_ua_cert_parse(cert.data, cert.len, &c, &used) != EP_EOK)
            return EP_UA_STATUS_BadCertificateInvalid;
        bool same = ep_ua_cert_equal(c, ch->peer_cert);
        ep_ua_cert_free(c);
        if (!same)
            return EP_UA_STATUS_BadCertificateInvalid;
    }
    /* decrypt with our key, verify with the sender's */
    size_t pb, cb;
    if (ep_ua_asym_block_sizes(pol, own_key(ch), &pb, &cb) != EP_EOK)
        return EP_UA_STATUS_BadSecurityChecksFailed;
    size_t enc = n - off;
    if (enc == 0 || enc % cb != 0)
        return EP_UA_STATUS_BadSecurityChecksFailed;
    uint8_t *plain = malloc(off + enc / cb * pb);
    if (plain == NULL)
        return EP_UA_STATUS_BadOutOfMemory;
    size_t pl = 0;
    ep_ua_status st = EP_UA_STATUS_Good;
    memcpy(plain, p, off);
    if (ep_ua_asym_decrypt(pol, own_key(ch), p + off, enc, plain + off,
                           enc / cb * pb, &pl) != EP_EOK) {
        st = EP_UA_STATUS_BadSecurityChecksFailed;
        goto out;
    }
    size_t sig = ep_ua_asym_sig_size(pol, peer_key(ch));
    bool extra = cb > 256;
    if (pl < 8 + 1 + (extra ? 1u : 0u) + sig ||
        ep_ua_asym_verify(pol, peer_key(ch), plain, off + pl - sig,
                          plain + off + pl - sig, sig) != EP_EOK) {
        st = EP_UA_STATUS_BadSecurityChecksFailed;
        goto out;
    }
    size_t end = pl - sig;
    size_t padn;
    if (extra) {
        padn = (size_t)plain[off + end - 1] << 8 | plain[off + end - 2];
        if (padn + 2 > end - 8) {
            st = EP_UA_STATUS_BadSecurityChecksFailed;
            goto out;
        }
        end -= padn + 2;
    } else {
        padn = plain[off + end - 1];
        if (padn + 1 > end - 8) {
            st = EP_UA_STATUS_BadSecurityChecksFailed;
            goto out;
        }
        end -= padn + 1;
    }
    /* Certificate trust, after the sender proved it holds the key. */
    ep_ua_pki_check chk;
    memset(&chk, 0, sizeof(chk));
    chk.policy = pol;
    chk.role = ch->role == EP_UA_CHANNEL_SERVER ? EP_UA_PEER_CLIENT : EP_UA_PEER_SERVER;
    if (ch->state != ST_OPEN) {
        ep_ua_cert_verdict v;
        if (ep_ua_pki_validate(ch->opts.pki, ch->peer_der, ch->peer_der_len, &chk,
                               &v) != EP_EOK) {
            log_rejected(ch, &v);
            st = v.ua_status ? v.ua_status : EP_UA_STATUS_BadCertificateUntrusted;
            goto out;
        }
    }
    /* Copy the plaintext back over the ciphertext (it is shorter). */
    memcpy(p + off, plain + off, end);
    *seq = ep_ua__rd32(p + off);
    *rid = ep_ua__rd32(p + off + 4);
    *body = p + off + 8;
    *blen = end - 8;
out:
    free(plain);
    return st;
}

static void server_on_opn(ep_ua_channel *ch, uint8_t *p, size_t n)
{
    const uint8_t *body;
    size_t blen;
    uint32_t seq, rid;
    if (ch->state == ST_WAIT_OPN && ch->channel_id == 0) {
        if (ep_ua__rd32(p + 8) != 0) {
            ch_fail(ch, EP_UA_STATUS_BadTcpSecureChannelUnknown,
                    "OPN Issue for an unknown channel");
            return;
        }
    } else if (ep_ua__rd32(p + 8) != ch->channel_id) {
        ch_fail(ch, EP_UA_STATUS_BadTcpSecureChannelUnknown, "wrong channel id");
        return;
    }
    ep_ua_status st = open_asym(ch, p, n, &body, &blen, &seq, &rid);
    if (st != EP_UA_STATUS_Good) {
        ch_fail(ch, st, "OpenSecureChannel refused");
        return;
    }
    if (!seq_ok(ch, seq)) {
        ch_fail(ch, EP_UA_STATUS_BadSequenceNumberInvalid,
                "sequence number out of order");
        return;
    }
    ep_ua_arena *arena = ch_arena(ch);
    if (arena == NULL) {
        ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
        return;
    }
    const ep_ua_type *type = NULL;
    void *v = NULL;
    size_t pos = 0;
    if (ep_ua_message_decode(body, blen, &pos, &type, &v, arena, &ch->lim.decode,
                             &st) != EP_EOK ||
        type != EP_UA_T(OpenSecureChannelRequest)) {
        ep_ua_arena_clear(arena);
        ch_fail(ch, EP_UA_STATUS_BadDecodingError, "invalid OpenSecureChannel request");
        return;
    }
    const ep_ua_open_secure_channel_request *req = v;
    bool renew = req->request_type == EP_UA_SECURITY_TOKEN_REQUEST_TYPE_RENEW;
    const char *why = NULL;
    st = EP_UA_STATUS_Good;
    unsigned modes = ch->opts.allowed_modes ? ch->opts.allowed_modes
                                            : 1u << EP_UA_MESSAGE_SECURITY_MODE_NONE;
    if (renew != (ch->state == ST_OPEN)) {
        st = EP_UA_STATUS_BadRequestTypeInvalid;
        why = renew ? "Renew before Issue" : "Issue on an open channel";
    } else if (renew && req->security_mode != ch->mode) {
        st = EP_UA_STATUS_BadSecurityModeRejected;
        why = "security mode changed on renew";
    } else if (req->security_mode < EP_UA_MESSAGE_SECURITY_MODE_NONE ||
               req->security_mode > EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT ||
               !(modes & (1u << req->security_mode)) ||
               (req->security_mode == EP_UA_MESSAGE_SECURITY_MODE_NONE) != !is_secure(ch)) {
        st = EP_UA_STATUS_BadSecurityModeRejected;
        why = "security mode not offered";
    } else if (is_secure(ch) && (req->client_nonce.len != ch->policy->nonce_len ||
                                 req->client_nonce.len > sizeof(ch->remote_nonce))) {
        st = EP_UA_STATUS_BadNonceInvalid;
        why = "client nonce of the wrong length";
    }
    if (st != EP_UA_STATUS_Good) {
        ep_ua_arena_clear(arena);
        ch_fail(ch, st, why);
        return;
    }
    ch->mode = req->security_mode;
    uint32_t lifetime = req->requested_lifetime;
    if (lifetime < EP_UA_CHANNEL_MIN_LIFETIME_MS)
        lifetime = EP_UA_CHANNEL_MIN_LIFETIME_MS;
    if (lifetime > ch->lim.token_lifetime_ms)
        lifetime = ch->lim.token_lifetime_ms;
    uint32_t handle = req->request_header.request_handle;
    if (is_secure(ch)) {
        memcpy(ch->remote_nonce, req->client_nonce.data, req->client_nonce.len);
        ch->remote_nonce_len = req->client_nonce.len;
        ep_ua_nonce_generate(ch->policy, ch->local_nonce, sizeof(ch->local_nonce),
                             &ch->local_nonce_len);
    }
    ep_ua_arena_clear(arena);
    if (!renew) {
        do {
            g_channel_id++;
        } while (g_channel_id == 0);
        ch->channel_id = g_channel_id;
    }
    new_token(ch);
    token *t = &ch->tok[0];
    t->valid = true;
    t->id = ch->next_token_id++;
    t->created_ms = ep_loop_now(ch->loop);
    t->lifetime_ms = lifetime;
    if (derive(ch, t) != EP_EOK) {
        ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed, "key derivation failed");
        return;
    }
    ch->tok_active = !renew;
    if (!renew) {
        ch->tok[1].valid = false;
    }
    ep_ua_open_secure_channel_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.response_header.timestamp = now_dt();
    resp.response_header.request_handle = handle;
    resp.security_token.channel_id = ch->channel_id;
    resp.security_token.token_id = t->id;
    resp.security_token.created_at = now_dt();
    resp.security_token.revised_lifetime = lifetime;
    if (is_secure(ch)) {
        resp.server_nonce.data = ch->local_nonce;
        resp.server_nonce.len = ch->local_nonce_len;
    }
    ep_err e = put_asym(ch, rid, EP_UA_T(OpenSecureChannelResponse), &resp);
    if (e != EP_EOK) {
        ch_fail(ch, EP_UA_STATUS_BadInternalError, "could not send the OPN response");
        return;
    }
    arm_token_timer(ch);
    if (!renew) {
        ch->state = ST_OPEN;
        EP_LOG_DEBUG(LOGCAT, "channel %u peer=%s open (%s, mode %d)", ch->channel_id,
                     ch->peer, ch->policy->name, ch->mode);
        if (ch->opts.cbs.on_open)
            ch->opts.cbs.on_open(ch, ch->opts.ud);
    }
}

static void client_on_opn(ep_ua_channel *ch, uint8_t *p, size_t n)
{
    const uint8_t *body;
    size_t blen;
    uint32_t seq, rid;
    if (ch->state != ST_OPEN && ch->state != ST_WAIT_OPN) {
        ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "unexpected OPN");
        return;
    }
    ep_ua_status st = open_asym(ch, p, n, &body, &blen, &seq, &rid);
    if (st != EP_UA_STATUS_Good) {
        ch_fail(ch, st, "OpenSecureChannel response refused");
        return;
    }
    if (!seq_ok(ch, seq) || rid != ch->opn_request_id) {
        ch_fail(ch, EP_UA_STATUS_BadSequenceNumberInvalid,
                "unexpected OPN sequence number or request id");
        return;
    }
    ep_ua_arena *arena = ch_arena(ch);
    if (arena == NULL) {
        ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
        return;
    }
    const ep_ua_type *type = NULL;
    void *v = NULL;
    size_t pos = 0;
    if (ep_ua_message_decode(body, blen, &pos, &type, &v, arena, &ch->lim.decode,
                             &st) != EP_EOK) {
        ep_ua_arena_clear(arena);
        ch_fail(ch, EP_UA_STATUS_BadDecodingError, "invalid OPN response");
        return;
    }
    if (type == EP_UA_T(ServiceFault)) {
        st = ((ep_ua_service_fault *)v)->response_header.service_result;
        ep_ua_arena_clear(arena);
        ch_fail(ch, st ? st : EP_UA_STATUS_BadUnexpectedError,
                "server refused the secure channel");
        return;
    }
    if (type != EP_UA_T(OpenSecureChannelResponse)) {
        ep_ua_arena_clear(arena);
        ch_fail(ch, EP_UA_STATUS_BadUnknownResponse, "invalid OPN response");
        return;
    }
    const ep_ua_open_secure_channel_response *r = v;
    if (is_secure(ch)) {
        if (r->server_nonce.len != ch->policy->nonce_len ||
            r->server_nonce.len > sizeof(ch->remote_nonce)) {
            ep_ua_arena_clear(arena);
            ch_fail(ch, EP_UA_STATUS_BadNonceInvalid, "server nonce of the wrong length");
            return;
        }
        memcpy(ch->remote_nonce, r->server_nonce.data, r->server_nonce.len);
        ch->remote_nonce_len = r->server_nonce.len;
    }
    bool first = ch->state != ST_OPEN;
    if (first)
        ch->channel_id = r->security_token.channel_id;
    else if (r->security_token.channel_id != ch->channel_id) {
        ep_ua_arena_clear(arena);
        ch_fail(ch, EP_UA_STATUS_BadSecureChannelIdInvalid, "channel id changed");
        return;
    }
    new_token(ch);
    token *t = &ch->tok[0];
    t->valid = true;
    t->id = r->security_token.token_id;
    t->created_ms = ep_loop_now(ch->loop);
    t->lifetime_ms = r->security_token.revised_lifetime
                         ? r->security_token.revised_lifetime
                         : ch->lim.token_lifetime_ms;
    ep_ua_arena_clear(arena);
    if (derive(ch, t) != EP_EOK) {
        ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed, "key derivation failed");
        return;
    }
    ch->opn_request_id = 0;
    arm_token_timer(ch);
    if (first) {
        ch->state = ST_OPEN;
        if (ch->opts.cbs.on_open)
            ch->opts.cbs.on_open(ch, ch->opts.ud);
    }
}

static void on_hello(ep_ua_channel *ch, const uint8_t *p, size_t n)
{
    ep_ua__hello h;
    if (ep_ua__hello_decode(p, n, &h) != EP_EOK) {
        ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "malformed Hello");
        return;
    }
    if (h.recv_buffer < EP_UA_CHANNEL_MIN_BUFFER || h.send_buffer < EP_UA_CHANNEL_MIN_BUFFER) {
        ch_fail(ch, EP_UA_STATUS_BadTcpInternalError, "buffer sizes below 8192");
        return;
    }
    free(ch->url);
    ch->url = strndup(h.url.data ? (const char *)h.url.data : "", h.url.len);
    ep_ua__hello a = {0, 0, 0, 0, 0, {0, NULL}};
    a.recv_buffer = h.send_buffer < ch->lim.recv_buffer_size ? h.send_buffer
                                                              : ch->lim.recv_buffer_size;
    a.send_buffer = h.recv_buffer < ch->lim.send_buffer_size ? h.recv_buffer
                                                              : ch->lim.send_buffer_size;
    a.max_message = ch->lim.max_message_size;
    a.max_chunks = ch->lim.max_chunk_count;
    ch->send_chunk = a.send_buffer;
    ch->peer_max_msg = h.max_message;
    ch->peer_max_chunks = h.max_chunks;
    if (ep_ua__ack_encode(&ch->out, &a) != EP_EOK) {
        ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
        return;
    }
    ch->state = ST_WAIT_OPN;
}

static void on_ack(ep_ua_channel *ch, const uint8_t *p, size_t n)
{
    ep_ua__hello a;
    if (ep_ua__ack_decode(p, n, &a) != EP_EOK ||
        a.recv_buffer < EP_UA_CHANNEL_MIN_BUFFER) {
        ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "malformed Acknowledge");
        return;
    }
    ch->send_chunk = a.recv_buffer < ch->lim.send_buffer_size ? a.recv_buffer
                                                               : ch->lim.send_buffer_size;
    ch->peer_max_msg = a.max_message;
    ch->peer_max_chunks = a.max_chunks;
    ch->state = ST_WAIT_OPN;
    if (send_opn_request(ch, EP_UA_SECURITY_TOKEN_REQUEST_TYPE_ISSUE) != EP_EOK)
        ch_fail(ch, EP_UA_STATUS_BadInternalError, "could not send OpenSecureChannel");
}

static void on_rhe(ep_ua_channel *ch, const uint8_t *p, size_t n)
{
    ep_ua__rhello r;
    if (ep_ua__rhello_decode(p, n, &r) != EP_EOK) {
        ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "malformed ReverseHello");
        return;
    }
    if (ch->url == NULL && r.url.data)
        ch->url = strndup((const char *)r.url.data, r.url.len);
    ch->state = ST_WAIT_ACK;
    if (send_hello(ch) != EP_EOK)
        ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
}

/* Handles one whole message; returns false when the channel closed. */
static bool on_message(ep_ua_channel *ch, const ep_ua__hdr *h, uint8_t *p)
{
    size_t n = h->size;
    if (h->type == EP_UA_MSG_ERR) {
        ep_ua__error er;
        ep_ua_status st = EP_UA_STATUS_BadTcpInternalError;
        if (ep_ua__error_decode(p, n, &er) == EP_EOK) {
            st = er.status;
            EP_LOG_INFO(LOGCAT, "peer=%s sent Error 0x%08x: %.*s", ch->peer, st,
                        (int)(er.reason.len > 200 ? 200 : er.reason.len),
                        er.reason.data ? (const char *)er.reason.data : "");
        }
        ch_do_close(ch, st ? st : EP_UA_STATUS_BadTcpInternalError);
        return false;
    }
    switch (ch->state) {
    case ST_WAIT_HEL:
        if (h->type != EP_UA_MSG_HEL)
            ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "expected Hello");
        else
            on_hello(ch, p, n);
        break;
    case ST_WAIT_RHE:
        if (h->type != EP_UA_MSG_RHE)
            ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "expected ReverseHello");
        else
            on_rhe(ch, p, n);
        break;
    case ST_WAIT_ACK:
        if (h->type != EP_UA_MSG_ACK)
            ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "expected Acknowledge");
        else
            on_ack(ch, p, n);
        break;
    case ST_WAIT_OPN:
    case ST_OPEN:
        if (h->type == EP_UA_MSG_OPN) {
            if (ch->role == EP_UA_CHANNEL_SERVER)
                server_on_opn(ch, p, n);
            else
                client_on_opn(ch, p, n);
        } else if (h->type == EP_UA_MSG_MSG || h->type == EP_UA_MSG_CLO) {
            on_sym(ch, h->type, h->chunk, p, n);
        } else {
            ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid,
                    "unexpected message type");
        }
        break;
    default:
        return false;
    }
    return ch->state < ST_CLOSED;
}

static void ch_read(ep_ua_channel *ch)
{
    for (;;) {
        if (ch->state == ST_LINGER)
            ep_buf_clear(&ch->in); /* unread input is discarded */
        if (ep_buf_reserve(&ch->in, 16384) != EP_EOK) {
            ch_fail(ch, EP_UA_STATUS_BadTcpMessageTooLarge, "input buffer full");
            return;
        }
        ssize_t r = ep_sock_read(ch->fd, ep_buf_tail(&ch->in), ep_buf_room(&ch->in));
        if (r == EP_EAGAIN)
            break;
        if (r <= 0) {
            if (ch->state == ST_LINGER) {
                ep_timer_stop(&ch->timer);
                ep_io_stop(&ch->io);
                ch->io_on = false;
                ch->state = ST_CLOSED + 100;
                if (ep_loop_defer(ch->loop, ch_free_deferred, ch) != EP_EOK)
                    ch_release(ch);
                return;
            }
            ch_do_close(ch, EP_UA_STATUS_BadConnectionClosed);
            return;
        }
        ch->in.len += (size_t)r;
        if (ch->state == ST_LINGER) {
            ep_buf_clear(&ch->in);
            continue;
        }
        /* Process every whole message. */
        for (;;) {
            ep_ua__hdr h;
            ep_err e = ep_ua__hdr_parse(ep_buf_head(&ch->in), ep_buf_used(&ch->in), &h);
            if (e == EP_ENEEDMORE)
                break;
            if (e != EP_EOK) {
                ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid,
                        "invalid message header");
                return;
            }
            if (h.size > ch->lim.recv_buffer_size) {
                ch_fail(ch, EP_UA_STATUS_BadTcpMessageTooLarge,
                        "chunk larger than the receive buffer");
                return;
            }
            if (ep_buf_used(&ch->in) < h.size)
                break;
            uint8_t *p = ep_buf_head(&ch->in);
            bool alive = on_message(ch, &h, p);
            if (ch->state == ST_LINGER || ch->state > ST_LINGER)
                return;
            ep_buf_consume(&ch->in, h.size);
            if (!alive)
                return;
        }
        if (ep_buf_used(&ch->in) == 0)
            ep_buf_clear(&ch->in);
    }
}

static void ch_on_io(ep_io *io, unsigned events)
{
    ep_ua_channel *ch = io->data;
    if (ch->state == ST_CONNECTING) {
        ep_err e = ep_sock_connect_result(ch->fd);
        if (e != EP_EOK) {
            ch_do_close(ch, EP_UA_STATUS_BadConnectionRejected);
            ep_io_stop(&ch->io);
            ch->io_on = false;
            return;
        }
        if (ch->send_rhe) {
            ep_ua__rhello r = {ep_ua_string_from(ch->rhe_server_uri),
                               ep_ua_string_from(ch->url)};
            ep_ua__rhello_encode(&ch->out, &r);
            ch->state = ST_WAIT_HEL;
        } else {
            ch->state = ST_WAIT_ACK;
            if (send_hello(ch) != EP_EOK) {
                ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
                return;
            }
        }
        flush_now(ch);
        return;
    }
    if (events & EP_IO_WRITE) {
        flush_now(ch);
        if (ch->state > ST_LINGER)
            return;
    }
    if (events & (EP_IO_READ | EP_IO_HUP))
        ch_read(ch);
}

static void ch_on_timer(ep_timer *t)
{
    ep_ua_channel *ch = t->data;
    if (ch->state == ST_LINGER) {
        ep_io_stop(&ch->io);
        ch->io_on = false;
        ch->state = ST_CLOSED + 100;
        ch_release(ch);
        return;
    }
    if (ch->state < ST_OPEN) {
        ch_fail(ch, EP_UA_STATUS_BadTimeout, "secure channel not opened in time");
        return;
    }
    if (ch->state != ST_OPEN)
        return;
    if (ch->role == EP_UA_CHANNEL_CLIENT) {
        if (ch->opn_request_id != 0) {
            ch_fail(ch, EP_UA_STATUS_BadTimeout, "token renewal not answered");
            return;
        }
        if (send_opn_request(ch, EP_UA_SECURITY_TOKEN_REQUEST_TYPE_RENEW) != EP_EOK) {
            ch_fail(ch, EP_UA_STATUS_BadInternalError, "could not renew the token");
            return;
        }
        /* Give the renewal until the old token's end. */
        ep_timer_start(&ch->timer, ch->tok[0].lifetime_ms / 4 + 1);
    } else {
        ch_fail(ch, EP_UA_STATUS_BadSecureChannelTokenUnknown,
                "security token expired without renewal");
    }
}

/* ------------------------------------------------------------ client -- */

static ep_err send_hello(ep_ua_channel *ch)
{
    ep_ua__hello h = {0,
                      ch->lim.recv_buffer_size,
                      ch->lim.send_buffer_size,
                      ch->lim.max_message_size,
                      ch->lim.max_chunk_count,
                      ep_ua_string_from(ch->url ? ch->url : "")};
    return ep_ua__hello_encode(&ch->out, &h);
}

static ep_err send_opn_request(ep_ua_channel *ch, int32_t req_type)
{
    ep_ua_open_secure_channel_request req;
    memset(&req, 0, sizeof(req));
    req.request_header.timestamp = now_dt();
    req.request_header.request_handle = ch->next_request_id;
    req.request_header.timeout_hint = 10000;
    req.request_type = req_type;
    req.security_mode = ch->mode;
    req.requested_lifetime = ch->lim.token_lifetime_ms;
    if (is_secure(ch)) {
        ep_err e = ep_ua_nonce_generate(ch->policy, ch->local_nonce,
                                        sizeof(ch->local_nonce), &ch->local_nonce_len);
        if (e != EP_EOK)
            return e;
        req.client_nonce.data = ch->local_nonce;
        req.client_nonce.len = ch->local_nonce_len;
    } else {
        req.client_nonce.data = EP_UA_EMPTY;
        req.client_nonce.len = 0;
    }
    uint32_t id = ch->next_request_id++;
    ep_err e = put_asym(ch, id, EP_UA_T(OpenSecureChannelRequest), &req);
    if (e == EP_EOK)
        ch->opn_request_id = id;
    return e;
}

static ep_err client_setup(ep_ua_channel *ch, const ep_ua_channel_opts *opts)
{
    ch->policy = opts->policy ? opts->policy : ep_ua_policy_get(EP_UA_POLICY_NONE);
    ch->mode = opts->mode;
    if (ch->mode == 0)
        ch->mode = is_secure(ch) ? EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT
                                 : EP_UA_MESSAGE_SECURITY_MODE_NONE;
    if (is_secure(ch)) {
        if (opts->pki == NULL || ep_ua_pki_own_key(opts->pki) == NULL ||
            opts->server_cert == NULL || opts->server_cert_len == 0 ||
            ch->mode == EP_UA_MESSAGE_SECURITY_MODE_NONE)
            return EP_EINVAL;
        ep_err e = set_peer_cert(ch, opts->server_cert, opts->server_cert_len);
        if (e != EP_EOK)
            return e == EP_ENOMEM ? e : EP_EINVAL;
        ep_ua_pki_check chk;
        memset(&chk, 0, sizeof(chk));
        chk.policy = ch->policy;
        chk.role = EP_UA_PEER_SERVER;
        ep_ua_cert_verdict v;
        if (ep_ua_pki_validate(opts->pki, ch->peer_der, ch->peer_der_len, &chk, &v) !=
            EP_EOK) {
            log_rejected(ch, &v);
            ch->close_status = v.ua_status ? v.ua_status
                                           : EP_UA_STATUS_BadCertificateUntrusted;
            return EP_ESECURITY;
        }
    } else if (ch->mode != EP_UA_MESSAGE_SECURITY_MODE_NONE) {
        return EP_EINVAL;
    }
    return EP_EOK;
}

ep_err ep_ua_channel_connect(ep_loop *loop, const char *url,
                             const ep_ua_channel_opts *opts, ep_ua_channel **out)
{
    ep_hostport hp;
    memset(&hp, 0, sizeof(hp));
    if (loop == NULL || opts == NULL || opts->cbs.on_message == NULL || out == NULL ||
        ep_ua_url_parse(url, hp.host, sizeof(hp.host), &hp.port) != EP_EOK)
        return EP_EINVAL;
    ep_ua_channel *ch = ch_new(loop, EP_UA_CHANNEL_CLIENT, opts);
    if (ch == NULL)
        return EP_ENOMEM;
    ep_err e = client_setup(ch, opts);
    if (e == EP_EOK) {
        ch->url = strdup(opts->endpoint_url ? opts->endpoint_url : url);
        if (ch->url == NULL)
            e = EP_ENOMEM;
    }
    if (e == EP_EOK) {
        snprintf(ch->peer, sizeof(ch->peer), "%s:%u", hp.host, hp.port);
        e = ep_sock_connect(&hp, &ch->fd);
        if (e == EP_EOK || e == EP_EAGAIN) {
            ch->state = ST_CONNECTING;
            start_io(ch, EP_IO_WRITE);
            ep_timer_start(&ch->timer, ch->lim.open_timeout_ms);
            e = ch->io_on ? EP_EOK : EP_ESYS;
        }
    }
    if (e != EP_EOK) {
        ch_release(ch);
        return e;
    }
    *out = ch;
    return EP_EOK;
}

ep_err ep_ua_channel_accept(ep_loop *loop, int fd, ep_ua_channel_role role,
                            const char *peer, const ep_ua_channel_opts *opts,
                            ep_ua_channel **out)
{
    if (loop == NULL || opts == NULL || opts->cbs.on_message == NULL || out == NULL ||
        fd < 0) {
        if (fd >= 0)
            ep_sock_close(fd);
        return EP_EINVAL;
    }
    ep_ua_channel *ch = ch_new(loop, role, opts);
    if (ch == NULL) {
        ep_sock_close(fd);
        return EP_ENOMEM;
    }
    ch->fd = fd;
    snprintf(ch->peer, sizeof(ch->peer), "%s", peer ? peer : "?");
    ep_err e = EP_EOK;
    if (role == EP_UA_CHANNEL_CLIENT) {
        e = client_setup(ch, opts);
        if (e == EP_EOK && opts->endpoint_url && (ch->url = strdup(opts->endpoint_url)) == NULL)
            e = EP_ENOMEM;
        ch->state = ST_WAIT_RHE;
    } else {
        ch->state = ST_WAIT_HEL;
    }
    if (e == EP_EOK) {
        start_io(ch, EP_IO_READ);
        if (!ch->io_on)
            e = EP_ESYS;
    }
    if (e != EP_EOK) {
        ch_release(ch);
        return e;
    }
    ep_timer_start(&ch->timer, ch->lim.open_timeout_ms);
    *out = ch;
    return EP_EOK;
}

ep_err ep_ua_channel_reverse(ep_loop *loop, const char *client_url,
                             const char *server_uri, const char *endpoint_url,
                             const ep_ua_channel_opts *opts, ep_ua_channel **out)
{
    ep_hostport hp;
    memset(&hp, 0, sizeof(hp));
    if (loop == NULL || opts == NULL || opts->cbs.on_message == NULL || out == NULL ||
        server_uri == NULL || endpoint_url == NULL ||
        ep_ua_url_parse(client_url, hp.host, sizeof(hp.host), &hp.port) != EP_EOK)
        return EP_EINVAL;
    ep_ua_channel *ch = ch_new(loop, EP_UA_CHANNEL_SERVER, opts);
    if (ch == NULL)
        return EP_ENOMEM;
    ch->send_rhe = true;
    ch->url = strdup(endpoint_url);
    ch->rhe_server_uri = strdup(server_uri);
    ep_err e = ch->url && ch->rhe_server_uri ? EP_EOK : EP_ENOMEM;
    if (e == EP_EOK) {
        snprintf(ch->peer, sizeof(ch->peer), "%s:%u", hp.host, hp.port);
        e = ep_sock_connect(&hp, &ch->fd);
        if (e == EP_EOK || e == EP_EAGAIN) {
            ch->state = ST_CONNECTING;
            start_io(ch, EP_IO_WRITE);
            ep_timer_start(&ch->timer, ch->lim.open_timeout_ms);
            e = ch->io_on ? EP_EOK : EP_ESYS;
        }
    }
    if (e != EP_EOK) {
        ch_release(ch);
        return e;
    }
    *out = ch;
    return EP_EOK;
}

/* ---------------------------------------------------------- accessors -- */

bool ep_ua_channel_is_open(const ep_ua_channel *ch) { return ch->state == ST_OPEN; }
ep_ua_channel_role ep_ua_channel_role_of(const ep_ua_channel *ch) { return ch->role; }
uint32_t ep_ua_channel_id(const ep_ua_channel *ch) { return ch->channel_id; }
const ep_ua_policy *ep_ua_channel_policy(const ep_ua_channel *ch) { return ch->policy; }
int32_t ep_ua_channel_mode(const ep_ua_channel *ch) { return ch->mode; }
const char *ep_ua_channel_endpoint_url(const ep_ua_channel *ch)
{
    return ch->url ? ch->url : "";
}
const char *ep_ua_channel_peer(const ep_ua_channel *ch) { return ch->peer; }
ep_ua_pki *ep_ua_channel_pki(const ep_ua_channel *ch) { return ch->opts.pki; }
void ep_ua_channel_set_ud(ep_ua_channel *ch, void *ud) { ch->opts.ud = ud; }
void *ep_ua_channel_ud(const ep_ua_channel *ch) { return ch->opts.ud; }
uint32_t ep_ua_channel_send_max_message(const ep_ua_channel *ch)
{
    return ch->peer_max_msg;
}
size_t ep_ua_channel_queued(const ep_ua_channel *ch) { return ep_buf_used(&ch->out); }

const uint8_t *ep_ua_channel_peer_cert(const ep_ua_channel *ch, size_t *len)
{
    if (!is_secure(ch) || ch->peer_der == NULL) {
        *len = 0;
        return NULL;
    }
    *len = ch->peer_der_len;
    return ch->peer_der;
}

/* ----------------------------------------------------------- listener -- */

static void listener_on_io(ep_io *io, unsigned events)
{
    ep_ua_listener *l = io->data;
    (void)events;
    for (int i = 0; i < 64; i++) {
        int fd;
        char peer[128];
        ep_err e = ep_sock_accept(l->fd, &fd, peer, sizeof(peer));
        if (e != EP_EOK)
            return;
        if (l->nchannels >= l->max_channels) {
            ep_buf b;
            ep_buf_init(&b, 0);
            ep_ua__error er = {EP_UA_STATUS_BadTcpNotEnoughResources,
                               EP_UA_STRING_LIT("too many connections")};
            if (ep_ua__error_encode(&b, &er) == EP_EOK) {
                struct iovec iov = {ep_buf_head(&b), ep_buf_used(&b)};
                (void)ep_sock_writev(fd, &iov, 1);
            }
            ep_buf_fini(&b);
            ep_sock_close(fd);
            EP_LOG_WARN(LOGCAT, "refused %s: %u channels open (limit)", peer,
                        l->nchannels);
            continue;
        }
        ep_ua_channel *ch = NULL;
        if (ep_ua_channel_accept(l->loop, fd, EP_UA_CHANNEL_SERVER, peer, &l->opts,
                                 &ch) != EP_EOK)
            continue;
        ch->listener = l;
        ch->lnext = l->channels;
        if (l->channels)
            l->channels->lprev = ch;
        l->channels = ch;
        l->nchannels++;
        if (l->on_accept)
            l->on_accept(l, ch, l->ud);
    }
}

ep_err ep_ua_listener_new(ep_loop *loop, const char *url,
                          const ep_ua_channel_opts *opts, unsigned max_channels,
                          void (*on_accept)(ep_ua_listener *l, ep_ua_channel *ch,
                                            void *ud),
                          void *ud, ep_ua_listener **out)
{
    ep_hostport hp;
    memset(&hp, 0, sizeof(hp));
    if (loop == NULL || opts == NULL || opts->cbs.on_message == NULL || out == NULL ||
        ep_ua_url_parse(url, hp.host, sizeof(hp.host), &hp.port) != EP_EOK)
        return EP_EINVAL;
    ep_ua_listener *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return EP_ENOMEM;
    l->loop = loop;
    l->opts = *opts;
    l->opts.server_cert = NULL;
    l->opts.endpoint_url = NULL;
    l->max_channels = max_channels ? max_channels : 1000;
    l->on_accept = on_accept;
    l->ud = ud;
    ep_err e = ep_sock_listen(&hp, 128, 0, &l->fd);
    if (e != EP_EOK) {
        free(l);
        return e;
    }
    l->port = ep_sock_local_port(l->fd);
    e = ep_io_start(loop, &l->io, l->fd, EP_IO_READ, listener_on_io, l);
    if (e != EP_EOK) {
        ep_sock_close(l->fd);
        free(l);
        return e;
    }
    *out = l;
    return EP_EOK;
}

uint16_t ep_ua_listener_port(const ep_ua_listener *l) { return l->port; }
unsigned ep_ua_listener_channels(const ep_ua_listener *l) { return l->nchannels; }

void ep_ua_listener_free(ep_ua_listener *l)
{
    if (l == NULL)
        return;
    ep_io_stop(&l->io);
    ep_sock_close(l->fd);
    while (l->channels) {
        ep_ua_channel *ch = l->channels;
        listener_unlink(ch);
        ch->opts.cbs.on_close = NULL; /* the owner is going away */
        ep_ua_channel_close(ch, EP_UA_STATUS_BadShutdown, "server shutting down");
    }
    free(l);
}
