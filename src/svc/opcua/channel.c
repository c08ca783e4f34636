/*
 * channel.c - opc.tcp connection and secure channel, client and server:
 * connection, framing and the state machine (OpenSecureChannel is in
 * channel_asym.c, MSG/CLO in channel_sym.c; channel_int.h joins them).
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

#include "svc/opcua/channel_int.h"

static void ch_on_io(ep_io *io, unsigned events);
static void ch_on_timer(ep_timer *t);
static void ch_flush_hook(ep_loop *loop, void *arg);
static ep_err send_hello(ep_ua_channel *ch);

/* ------------------------------------------------------------ helpers -- */

ep_err ep_ua_url_parse(const char *url, char *host, size_t host_cap, uint16_t *port)
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

ep_err ep_ua__ch_set_peer_cert(ep_ua_channel *ch, const uint8_t *der, size_t len)
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

static ep_ua_channel *ch_new(ep_loop *loop, ep_ua_channel_role role, const ep_ua_channel_opts *opts)
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

void ep_ua__ch_do_close(ep_ua_channel *ch, ep_ua_status st)
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

void ep_ua_channel_close(ep_ua_channel *ch, ep_ua_status status, const char *reason)
{
    if (ch == NULL || ch->state >= ST_CLOSED)
        return;
    if (ch->role == EP_UA_CHANNEL_CLIENT && ch->state == ST_OPEN) {
        ep_ua_close_secure_channel_request req;
        memset(&req, 0, sizeof(req));
        req.request_header.timestamp = now_dt();
        uint32_t id = ch->next_request_id++;
        ep_ua__ch_send_typed(ch, EP_UA_MSG_CLO, id, EP_UA_T(CloseSecureChannelRequest), &req);
    } else if (ch->role == EP_UA_CHANNEL_SERVER && status != EP_UA_STATUS_Good &&
               ch->state != ST_CONNECTING) {
        send_err(ch, status, reason);
    }
    ep_ua__ch_do_close(ch, status);
}

/* ep_ua__ch_fail: a protocol error; a server tells the peer with ERR. */
void ep_ua__ch_fail(ep_ua_channel *ch, ep_ua_status st, const char *why)
{
    if (ch->state >= ST_CLOSED)
        return;
    if (ep_ratelimit_allow(&ch->rl, ep_loop_now(ch->loop)))
        EP_LOG_WARN(LOGCAT, "channel %u peer=%s closed: %s (0x%08x)", ch->channel_id, ch->peer, why,
                    st);
    if (ch->role == EP_UA_CHANNEL_SERVER && ch->state != ST_CONNECTING)
        send_err(ch, st, why);
    ep_ua__ch_do_close(ch, st);
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
                ep_ua__ch_do_close(ch, EP_UA_STATUS_BadConnectionClosed);
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

/* ------------------------------------------------------------ reading -- */

static void on_hello(ep_ua_channel *ch, const uint8_t *p, size_t n)
{
    ep_ua__hello h;
    if (ep_ua__hello_decode(p, n, &h) != EP_EOK) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "malformed Hello");
        return;
    }
    if (h.recv_buffer < EP_UA_CHANNEL_MIN_BUFFER || h.send_buffer < EP_UA_CHANNEL_MIN_BUFFER) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpInternalError, "buffer sizes below 8192");
        return;
    }
    free(ch->url);
    ch->url = strndup(h.url.data ? (const char *)h.url.data : "", h.url.len);
    ep_ua__hello a = {0, 0, 0, 0, 0, {0, NULL}};
    a.recv_buffer =
        h.send_buffer < ch->lim.recv_buffer_size ? h.send_buffer : ch->lim.recv_buffer_size;
    a.send_buffer =
        h.recv_buffer < ch->lim.send_buffer_size ? h.recv_buffer : ch->lim.send_buffer_size;
    a.max_message = ch->lim.max_message_size;
    a.max_chunks = ch->lim.max_chunk_count;
    ch->send_chunk = a.send_buffer;
    ch->peer_max_msg = h.max_message;
    ch->peer_max_chunks = h.max_chunks;
    if (ep_ua__ack_encode(&ch->out, &a) != EP_EOK) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
        return;
    }
    ch->state = ST_WAIT_OPN;
}

static void on_ack(ep_ua_channel *ch, const uint8_t *p, size_t n)
{
    ep_ua__hello a;
    if (ep_ua__ack_decode(p, n, &a) != EP_EOK || a.recv_buffer < EP_UA_CHANNEL_MIN_BUFFER) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "malformed Acknowledge");
        return;
    }
    ch->send_chunk =
        a.recv_buffer < ch->lim.send_buffer_size ? a.recv_buffer : ch->lim.send_buffer_size;
    ch->peer_max_msg = a.max_message;
    ch->peer_max_chunks = a.max_chunks;
    ch->state = ST_WAIT_OPN;
    if (ep_ua__ch_send_opn_request(ch, EP_UA_SECURITY_TOKEN_REQUEST_TYPE_ISSUE) != EP_EOK)
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadInternalError, "could not send OpenSecureChannel");
}

static void on_rhe(ep_ua_channel *ch, const uint8_t *p, size_t n)
{
    ep_ua__rhello r;
    if (ep_ua__rhello_decode(p, n, &r) != EP_EOK) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "malformed ReverseHello");
        return;
    }
    if (ch->url == NULL && r.url.data)
        ch->url = strndup((const char *)r.url.data, r.url.len);
    ch->state = ST_WAIT_ACK;
    if (send_hello(ch) != EP_EOK)
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
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
        ep_ua__ch_do_close(ch, st ? st : EP_UA_STATUS_BadTcpInternalError);
        return false;
    }
    switch (ch->state) {
    case ST_WAIT_HEL:
        if (h->type != EP_UA_MSG_HEL)
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "expected Hello");
        else
            on_hello(ch, p, n);
        break;
    case ST_WAIT_RHE:
        if (h->type != EP_UA_MSG_RHE)
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "expected ReverseHello");
        else
            on_rhe(ch, p, n);
        break;
    case ST_WAIT_ACK:
        if (h->type != EP_UA_MSG_ACK)
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "expected Acknowledge");
        else
            on_ack(ch, p, n);
        break;
    case ST_WAIT_OPN:
    case ST_OPEN:
        if (h->type == EP_UA_MSG_OPN) {
            if (ch->role == EP_UA_CHANNEL_SERVER)
                ep_ua__ch_server_on_opn(ch, p, n);
            else
                ep_ua__ch_client_on_opn(ch, p, n);
        } else if (h->type == EP_UA_MSG_MSG || h->type == EP_UA_MSG_CLO) {
            ep_ua__ch_on_sym(ch, h->type, h->chunk, p, n);
        } else {
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "unexpected message type");
        }
        break;
    default:
        return false;
    }
    return ch->state < ST_CLOSED;
}

/* One call reads at most READ_BUDGET bytes (and handles every whole
 * message they complete); the loop calls again while the socket stays
 * readable. A peer streaming faster than we decode would otherwise keep us
 * in one loop iteration, and the work queued meanwhile (the connector's MQTT
 * publishes, flushed before the next poll) would wait for the whole
 * stream. */
#define READ_BUDGET ((size_t)64 << 10)

static void ch_read(ep_ua_channel *ch)
{
    for (size_t got = 0; got < READ_BUDGET;) {
        if (ch->state == ST_LINGER)
            ep_buf_clear(&ch->in); /* unread input is discarded */
        if (ep_buf_reserve(&ch->in, 16384) != EP_EOK) {
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTooLarge, "input buffer full");
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
            ep_ua__ch_do_close(ch, EP_UA_STATUS_BadConnectionClosed);
            return;
        }
        ch->in.len += (size_t)r;
        got += (size_t)r;
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
                ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "invalid message header");
                return;
            }
            if (h.size > ch->lim.recv_buffer_size) {
                ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTooLarge,
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
            ep_ua__ch_do_close(ch, EP_UA_STATUS_BadConnectionRejected);
            ep_io_stop(&ch->io);
            ch->io_on = false;
            return;
        }
        if (ch->send_rhe) {
            ep_ua__rhello r = {ep_ua_string_from(ch->rhe_server_uri), ep_ua_string_from(ch->url)};
            ep_ua__rhello_encode(&ch->out, &r);
            ch->state = ST_WAIT_HEL;
        } else {
            ch->state = ST_WAIT_ACK;
            if (send_hello(ch) != EP_EOK) {
                ep_ua__ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
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
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTimeout, "secure channel not opened in time");
        return;
    }
    if (ch->state != ST_OPEN)
        return;
    if (ch->role == EP_UA_CHANNEL_CLIENT) {
        if (ch->opn_request_id != 0) {
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadTimeout, "token renewal not answered");
            return;
        }
        if (ep_ua__ch_send_opn_request(ch, EP_UA_SECURITY_TOKEN_REQUEST_TYPE_RENEW) != EP_EOK) {
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadInternalError, "could not renew the token");
            return;
        }
        /* Give the renewal until the old token's end. */
        ep_timer_start(&ch->timer, ch->tok[0].lifetime_ms / 4 + 1);
    } else {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadSecureChannelTokenUnknown,
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
        ep_err e = ep_ua__ch_set_peer_cert(ch, opts->server_cert, opts->server_cert_len);
        if (e != EP_EOK)
            return e == EP_ENOMEM ? e : EP_EINVAL;
        ep_ua_pki_check chk;
        memset(&chk, 0, sizeof(chk));
        chk.policy = ch->policy;
        chk.role = EP_UA_PEER_SERVER;
        ep_ua_cert_verdict v;
        if (ep_ua_pki_validate(opts->pki, ch->peer_der, ch->peer_der_len, &chk, &v) != EP_EOK) {
            ep_ua__ch_log_rejected(ch, &v);
            ch->close_status = v.ua_status ? v.ua_status : EP_UA_STATUS_BadCertificateUntrusted;
            return EP_ESECURITY;
        }
    } else if (ch->mode != EP_UA_MESSAGE_SECURITY_MODE_NONE) {
        return EP_EINVAL;
    }
    return EP_EOK;
}

ep_err ep_ua_channel_connect(ep_loop *loop, const char *url, const ep_ua_channel_opts *opts,
                             ep_ua_channel **out)
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

ep_err ep_ua_channel_accept(ep_loop *loop, int fd, ep_ua_channel_role role, const char *peer,
                            const ep_ua_channel_opts *opts, ep_ua_channel **out)
{
    if (loop == NULL || opts == NULL || opts->cbs.on_message == NULL || out == NULL || fd < 0) {
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

ep_err ep_ua_channel_reverse(ep_loop *loop, const char *client_url, const char *server_uri,
                             const char *endpoint_url, const ep_ua_channel_opts *opts,
                             ep_ua_channel **out)
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
const char *ep_ua_channel_endpoint_url(const ep_ua_channel *ch) { return ch->url ? ch->url : ""; }
const char *ep_ua_channel_peer(const ep_ua_channel *ch) { return ch->peer; }
ep_ua_pki *ep_ua_channel_pki(const ep_ua_channel *ch) { return ch->opts.pki; }
void ep_ua_channel_set_ud(ep_ua_channel *ch, void *ud) { ch->opts.ud = ud; }
void *ep_ua_channel_ud(const ep_ua_channel *ch) { return ch->opts.ud; }
uint32_t ep_ua_channel_send_max_message(const ep_ua_channel *ch) { return ch->peer_max_msg; }
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
            EP_LOG_WARN(LOGCAT, "refused %s: %u channels open (limit)", peer, l->nchannels);
            continue;
        }
        ep_ua_channel *ch = NULL;
        if (ep_ua_channel_accept(l->loop, fd, EP_UA_CHANNEL_SERVER, peer, &l->opts, &ch) != EP_EOK)
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

ep_err ep_ua_listener_new(ep_loop *loop, const char *url, const ep_ua_channel_opts *opts,
                          unsigned max_channels,
                          void (*on_accept)(ep_ua_listener *l, ep_ua_channel *ch, void *ud),
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
