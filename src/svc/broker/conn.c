/*
 * conn.c - one client connection: reading and framing packets, dispatching
 * them to the handle_*.c functions, writing, keepalive and closing.
 *
 * Reads go into the worker's shared scratch buffer, and every whole packet
 * is decoded in place; only a trailing partial packet is copied into the
 * connection's own buffer. Writes are appended to `out` and flushed by the
 * worker's before-poll hook, once per loop iteration for all connections,
 * so a burst of deliveries to one subscriber becomes one write(). A write
 * watcher is armed only when a flush was incomplete. Idle connections hold
 * no buffers at all (both are freed when empty).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/sock.h"
#include "svc/broker/broker_int.h"

static void conn_on_io(ep_io *io, unsigned events);
static void conn_ka_check(ep_timer *t);

void bk_conn_want_flush(bk_conn *c)
{
    if (!c->in_flush_list && c->state != BK_CONN_CLOSED) {
        c->in_flush_list = true;
        c->flush_next = c->w->flush_head;
        c->w->flush_head = c;
    }
}

const char *bk_conn_peer(const bk_conn *c, char *buf, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (c->fd >= 0 && getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(buf, n, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    return buf;
}

void bk_conn_accept(bk_worker *w, int fd, int listener, ep_tls *tls, bk_ws *ws, const uint8_t *pre,
                    size_t pre_len)
{
    bk_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        ep_tls_free(tls);
        bk_ws_free(ws);
        ep_sock_close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    c->listener = (uint8_t)listener;
    c->tls = tls;
    c->ws = ws;
    c->handoff_to = -1;
    ep_buf_init(&c->in, w->b->cfg.limits.max_packet_size + 8u);
    ep_buf_init(&c->out, 0);
    c->last_rx_ms = ep_loop_now(w->loop);
    ep_timer_init(w->loop, &c->ka_timer, conn_ka_check, c);
    if (ep_io_start(w->loop, &c->io, fd, EP_IO_READ, conn_on_io, c) != EP_EOK) {
        ep_tls_free(tls);
        bk_ws_free(ws);
        ep_sock_close(fd);
        free(c);
        return;
    }
    c->all_next = w->all_conns;
    if (w->all_conns)
        w->all_conns->all_prev = c;
    w->all_conns = c;
    w->nconns++;
    atomic_fetch_add(&w->b->nconnected, 1);
    /* Until CONNECT arrives the keepalive timer enforces the connect timeout. */
    ep_timer_start(&c->ka_timer, w->b->cfg.limits.connect_timeout_ms);
    if (pre_len) {
        if (ep_buf_append(&c->in, pre, pre_len) != EP_EOK) {
            bk_conn_close(c, -1, "out of memory");
            return;
        }
        conn_on_io(&c->io, 0);
    }
}

static void conn_free(ep_loop *loop, void *arg)
{
    bk_conn *c = arg;
    (void)loop;
    if (c->alias_in) {
        for (uint16_t i = 0; i < c->alias_in_max; i++)
            free(c->alias_in[i]);
        free(c->alias_in);
    }
    for (uint16_t i = 0; i < c->alias_out_n; i++)
        free(c->alias_out[i]);
    free(c->alias_out);
    for (uint32_t i = 0; i < c->held_n; i++) {
        bk_flow_unref(c->held[(c->held_head + i) % c->held_cap].flow);
        bk_ticket_unref(c->held[(c->held_head + i) % c->held_cap].ticket);
    }
    free(c->held);
    if (c->auth) {
        if (c->auth->method->done)
            c->auth->method->done(c->auth->method->ud, c->auth->state);
        ep_buf_fini(&c->auth->pending_connect);
        free(c->auth);
    }
    ep_tls_free(c->tls);
    bk_ws_free(c->ws);
    ep_buf_fini(&c->in);
    ep_buf_fini(&c->out);
    free(c);
}

static void flush_now(bk_conn *c);
static void unlink_conn(bk_conn *c);
static void held_list_remove(bk_conn *c);
static void flush_list_remove(bk_conn *c);

void bk_conn_close(bk_conn *c, int v5_rc, const char *why)
{
    bk_worker *w = c->w;
    if (c->state == BK_CONN_CLOSED)
        return;
    if (why && ep_log_threshold <= EP_LOG_DEBUG) {
        char peer[64];
        EP_LOG_DEBUG(BK_LOG, "closing %s (%s): %s", bk_conn_peer(c, peer, sizeof(peer)),
                     c->s ? c->s->client_id : "-", why);
    }
    if (v5_rc >= 0 && c->version == EP_MQTT_V5 && c->state == BK_CONN_ACTIVE) {
        ep_mqtt_packet p = {.type = EP_MQTT_DISCONNECT};
        p.disconnect.rc = (ep_mqtt_rc)v5_rc;
        if (why && v5_rc != EP_MQTT_RC_SESSION_TAKEN_OVER) {
            p.disconnect.props.reason_string = ep_mqtt_slice_make(why, strlen(why));
            EP_MQTT_PROPS_SET(&p.disconnect.props, EP_MQTT_PROP_REASON_STRING);
        }
        bk_conn_send_packet(c, &p);
    }
    flush_now(c); /* best effort: the DISCONNECT and anything pending */
    bk_auth_conn_free(c);
    bool had_session = c->state == BK_CONN_ACTIVE && c->s;
    c->state = BK_CONN_CLOSED;
    ep_io_stop(&c->io);
    ep_timer_stop(&c->ka_timer);
    shutdown(c->fd, SHUT_RDWR);
    ep_sock_close(c->fd);
    c->fd = -1;
    unlink_conn(c);
    held_list_remove(c);
    flush_list_remove(c);
    if (had_session && c->s->conn == c)
        bk_session_detach(c->s, !c->clean_disconnect);
    c->s = NULL;
    /* Freed after this round: other callbacks may still hold c. */
    ep_loop_defer(w->loop, conn_free, c);
}

static void flush_now(bk_conn *c)
{
    ep_buf *src = &c->out;
    if (c->ws) {
        /* WebSockets: what MQTT wrote becomes one frame on the wire. */
        if (bk_ws_frame_out(c) != EP_EOK)
            ep_buf_clear(&c->out);
        src = &c->ws->wire;
    }
    while (ep_buf_used(src) > 0) {
        ssize_t n = bk_tx_write(c, ep_buf_head(src), ep_buf_used(src));
        if (n == EP_EAGAIN)
            break;
        if (n < 0) {
            ep_buf_clear(src);
            break;
        }
        atomic_fetch_add_explicit(&c->w->ctr.bytes_out, (unsigned long)n, memory_order_relaxed);
        ep_buf_consume(src, (size_t)n);
        if (c->s && c->state == BK_CONN_ACTIVE)
            bk_flow_progress(c->s->flow, ep_loop_now(c->w->loop));
    }
}

/* Before-poll hook: flush every connection that has output. */
void bk_worker_flush(ep_loop *loop, void *arg)
{
    bk_worker *w = arg;
    (void)loop;
    bk_conn *c = w->flush_head;
    w->flush_head = NULL;
    while (c) {
        bk_conn *next = c->flush_next;
        c->in_flush_list = false;
        if (c->state != BK_CONN_CLOSED) {
            flush_now(c);
            bool pending = ep_buf_used(&c->out) > 0 || (c->ws && ep_buf_used(&c->ws->wire) > 0) ||
                           (c->tls && ep_tls_want_write(c->tls));
            if (!pending) {
                ep_buf_shrink(&c->out, 0);
                if (c->ws)
                    ep_buf_shrink(&c->ws->wire, 0);
            }
            if (pending != c->want_write) {
                c->want_write = pending;
                ep_io_modify(&c->io, EP_IO_READ | (pending ? EP_IO_WRITE : 0));
            }
        }
        c = next;
    }
}

ep_err bk_conn_send_packet(bk_conn *c, const ep_mqtt_packet *p)
{
    if (c->state == BK_CONN_CLOSED)
        return EP_ECLOSED;
    ep_err err = ep_mqtt_packet_encode(&c->out, p, c->version ? c->version : EP_MQTT_V311,
                                       c->client_max_packet);
    if (err == EP_EOK)
        bk_conn_want_flush(c);
    return err;
}

/* Outgoing topic aliases: the first BK_ALIAS_OUT_MAX distinct topics sent
 * to a client that allows aliases get one; later topics go out in full.
 * Returns the alias (0 = none) and whether the topic may be left out. */
static uint16_t alias_for(bk_conn *c, const ep_msg *m, bool *known)
{
    *known = false;
    if (c->client_alias_max == 0)
        return 0;
    for (uint16_t i = 0; i < c->alias_out_n; i++) {
        if (strcmp(c->alias_out[i], m->topic) == 0) {
            *known = true;
            return (uint16_t)(i + 1);
        }
    }
    uint16_t max = c->client_alias_max < BK_ALIAS_OUT_MAX ? c->client_alias_max : BK_ALIAS_OUT_MAX;
    if (c->alias_out_n >= max)
        return 0;
    if (c->alias_out == NULL && (c->alias_out = calloc(max, sizeof(char *))) == NULL)
        return 0;
    if ((c->alias_out[c->alias_out_n] = strdup(m->topic)) == NULL)
        return 0;
    return ++c->alias_out_n;
}

ep_err bk_conn_send_publish(bk_conn *c, ep_msg *m, uint8_t qos, uint16_t pid, bool retain, bool dup)
{
    if (c->state == BK_CONN_CLOSED)
        return EP_ECLOSED;
    const ep_broker_limits *lim = &c->w->b->cfg.limits;
    if (qos == 0 && ep_buf_used(&c->out) >= lim->max_outbuf)
        return EP_EFULL;
    uint32_t subids[32];
    ep_mqtt_publish_hdr h = {0};
    h.qos = qos;
    h.dup = dup;
    h.retain = retain;
    h.topic = ep_mqtt_slice_make(m->topic, m->topic_len);
    h.packet_id = pid;
    h.payload_len = m->payload_len;
    if (c->version == EP_MQTT_V5) {
        h.props = ep_mqtt_slice_make(m->props, m->props_len);
        if (m->has_expiry) {
            uint64_t now = ep_loop_now(c->w->loop);
            uint64_t left = m->expiry_at_ms > now ? (m->expiry_at_ms - now + 999) / 1000 : 0;
            h.has_message_expiry = true;
            h.message_expiry = (uint32_t)left;
        }
        bool known;
        h.topic_alias = alias_for(c, m, &known);
        if (known)
            h.topic = (ep_mqtt_slice){(const uint8_t *)"", 0};
        if (c->s && c->s->has_subids) {
            h.n_sub_ids = bk_session_collect_subids(c->s, m, subids, 32);
            h.sub_ids = subids;
        }
    }
    size_t hl = ep_mqtt_publish_header_size(&h, c->version);
    if (hl == 0)
        return EP_EINVAL;
    if (c->client_max_packet && hl + m->payload_len > c->client_max_packet)
        return EP_ETOOBIG;
    if (ep_buf_reserve(&c->out, hl + m->payload_len) != EP_EOK)
        return EP_EFULL;
    size_t written;
    ep_err err = ep_mqtt_publish_header_write(&h, c->version, c->client_max_packet,
                                              ep_buf_tail(&c->out), ep_buf_room(&c->out), &written);
    if (err)
        return err;
    c->out.len += written;
    memcpy(ep_buf_tail(&c->out), m->payload, m->payload_len);
    c->out.len += m->payload_len;
    atomic_fetch_add_explicit(&c->w->ctr.msgs_out, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->w->ctr.msgs_out_qos[qos], 1, memory_order_relaxed);
    bk_conn_want_flush(c);
    return EP_EOK;
}

static void log_peer_error(bk_conn *c, const char *what, ep_err err, ep_mqtt_rc rc)
{
    char peer[64];
    if (ep_ratelimit_allow(&c->w->err_rl, ep_loop_now(c->w->loop)))
        EP_LOG_INFO(BK_LOG, "client %s (%s): %s: %s (reason 0x%02x %s)",
                    bk_conn_peer(c, peer, sizeof(peer)), c->s ? c->s->client_id : "-", what,
                    ep_strerror(err), rc, ep_mqtt_rc_name(rc) ? ep_mqtt_rc_name(rc) : "?");
}

static void send_connack_error(bk_conn *c, const uint8_t *pkt, size_t len, ep_mqtt_rc rc)
{
    ep_mqtt_slice name;
    uint8_t level = 0;
    if (ep_mqtt_connect_peek(pkt, len, &name, &level) != EP_EOK)
        return;
    ep_mqtt_packet p = {.type = EP_MQTT_CONNACK};
    p.connack.rc = rc;
    c->version = level == EP_MQTT_V5 ? EP_MQTT_V5 : EP_MQTT_V311;
    ep_mqtt_packet_encode(&c->out, &p, c->version, 0);
    flush_now(c);
}

/* Returns false when the connection was closed. */
static bool dispatch(bk_conn *c, const uint8_t *pkt, size_t len)
{
    ep_mqtt_packet p;
    ep_mqtt_rc rc = 0;
    ep_err err = ep_mqtt_packet_decode(pkt, len, c->version, &p, &rc);
    atomic_fetch_add_explicit(&c->w->ctr.bytes_in, len, memory_order_relaxed);
    if (err) {
        log_peer_error(c, "bad packet", err, rc);
        if (c->state == BK_CONN_NEW && (pkt[0] >> 4) == EP_MQTT_CONNECT)
            send_connack_error(c, pkt, len, rc);
        bk_conn_close(c, rc, ep_mqtt_rc_name(rc));
        return false;
    }
    if (c->state == BK_CONN_NEW) {
        if (p.type == EP_MQTT_AUTH && c->auth) {
            bk_handle_auth(c, &p);
            return c->state != BK_CONN_CLOSED;
        }
        if (p.type != EP_MQTT_CONNECT || c->auth) {
            bk_conn_close(c, -1, c->auth ? "second CONNECT" : "first packet is not CONNECT");
            return false;
        }
        c->cur_pkt = pkt;
        c->cur_len = len;
        bk_handle_connect(c, &p);
        c->cur_pkt = NULL;
        /* A handed-over connection continues on its home worker. */
        return c->handoff_to < 0 && c->state != BK_CONN_CLOSED;
    }
    switch (p.type) {
    case EP_MQTT_PUBLISH:
        err = bk_handle_publish(c, &p);
        break;
    case EP_MQTT_PUBACK:
    case EP_MQTT_PUBREC:
    case EP_MQTT_PUBREL:
    case EP_MQTT_PUBCOMP:
        err = bk_handle_ack(c, &p);
        break;
    case EP_MQTT_SUBSCRIBE:
        err = bk_handle_subscribe(c, &p);
        break;
    case EP_MQTT_UNSUBSCRIBE:
        err = bk_handle_unsubscribe(c, &p);
        break;
    case EP_MQTT_PINGREQ: {
        ep_mqtt_packet r = {.type = EP_MQTT_PINGRESP};
        err = bk_conn_send_packet(c, &r);
        break;
    }
    case EP_MQTT_DISCONNECT:
        if (c->version == EP_MQTT_V5 && c->s) {
            const ep_mqtt_props *pr = &p.disconnect.props;
            if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL)) {
                /* 0 -> non-zero is a protocol error (MQTT-3.14.2-2). */
                if (c->s->expiry_interval == 0 && pr->session_expiry_interval != 0) {
                    bk_conn_close(c, EP_MQTT_RC_PROTOCOL_ERROR, "session expiry set on DISCONNECT");
                    return false;
                }
                uint32_t max = c->w->b->cfg.limits.max_session_expiry;
                c->s->expiry_interval =
                    pr->session_expiry_interval > max ? max : pr->session_expiry_interval;
                bk_persist_session(c->s);
            }
        }
        c->clean_disconnect =
            !(c->version == EP_MQTT_V5 && p.disconnect.rc == EP_MQTT_RC_DISCONNECT_WITH_WILL);
        bk_conn_close(c, -1, NULL);
        return false;
    case EP_MQTT_AUTH:
        err = bk_handle_auth(c, &p);
        break;
    case EP_MQTT_CONNECT:
        bk_conn_close(c, EP_MQTT_RC_PROTOCOL_ERROR, "second CONNECT");
        return false;
    default:
        /* CONNACK, SUBACK, ... are server-to-client only. */
        bk_conn_close(c, EP_MQTT_RC_PROTOCOL_ERROR, "unexpected packet type");
        return false;
    }
    if (err && c->state != BK_CONN_CLOSED)
        bk_conn_close(c, EP_MQTT_RC_UNSPECIFIED_ERROR, ep_strerror(err));
    return c->state == BK_CONN_ACTIVE;
}

/* Parse and dispatch every whole packet in p[0..n). Returns the bytes
 * consumed, or -1 when the connection closed. */
static ssize_t parse(bk_conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    uint32_t max = c->w->b->cfg.limits.max_packet_size;
    while (off < n) {
        size_t hl, total;
        ep_err err = ep_mqtt_packet_frame(p + off, n - off, max, &hl, &total);
        if (err == EP_ENEEDMORE)
            break;
        if (err) {
            ep_mqtt_rc rc = ep_mqtt_rc_from_err(err);
            log_peer_error(c, "bad frame", err, rc);
            bk_conn_close(c, rc, err == EP_ETOOBIG ? "packet too large" : "malformed packet");
            return -1;
        }
        if (!dispatch(c, p + off, total)) {
            if (c->handoff_to >= 0 && c->state == BK_CONN_NEW)
                bk_handoff(c, p + off, n - off);
            return -1;
        }
        if (c->paused)
            return (ssize_t)off; /* this packet is handled again on resume */
        off += total;
    }
    return (ssize_t)off;
}

/* A read error other than "would block": close, saying why. */
static void read_failed(bk_conn *c, ssize_t n)
{
    if (n == EP_ESECURITY && c->tls) {
        char peer[64];
        if (ep_ratelimit_allow(&c->w->err_rl, ep_loop_now(c->w->loop)))
            EP_LOG_INFO(BK_LOG, "TLS with %s failed: %s", bk_conn_peer(c, peer, sizeof(peer)),
                        ep_tls_error(c->tls));
        bk_conn_close(c, -1, "TLS failure");
        return;
    }
    bk_conn_close(c, -1, "connection closed by peer");
}

/* After EP_EAGAIN on TLS: the handshake may need to write before reading. */
static void tls_wait(bk_conn *c)
{
    bool ww = c->tls && ep_tls_want_write(c->tls);
    if (ww != c->want_write) {
        c->want_write = ww;
        ep_io_modify(&c->io, EP_IO_READ | (ww ? EP_IO_WRITE : 0));
    }
}

/* Reading under TLS and/or WebSockets: transport bytes into the scratch
 * buffer, then (WebSockets) unframed into c->in, then MQTT parsing. Data
 * already decrypted inside TLS does not wake the poller again, so reading
 * goes on while TLS holds some; otherwise it stops after 16 records and
 * leaves the rest in the socket (the poller is level-triggered), so a fast
 * TLS publisher cannot keep the worker from flushing its subscribers. */
enum { BK_TLS_READ_ROUNDS = 16 };

static void conn_read_layered(bk_conn *c)
{
    bk_worker *w = c->w;
    for (int round = 0;; round++) {
        ssize_t n = bk_tx_read(c, w->rbuf, BK_READ_CHUNK);
        if (n == EP_EAGAIN) {
            tls_wait(c);
            return;
        }
        if (n < 0) {
            read_failed(c, n);
            return;
        }
        if (c->ws) {
            const char *why = NULL;
            ep_err err = bk_ws_feed(c, w->rbuf, (size_t)n, &why);
            if (err) {
                bk_conn_close(c, -1, why);
                return;
            }
        } else if (ep_buf_append(&c->in, w->rbuf, (size_t)n) != EP_EOK) {
            bk_conn_close(c, EP_MQTT_RC_PACKET_TOO_LARGE, "input buffer limit");
            return;
        }
        ssize_t used = parse(c, ep_buf_head(&c->in), ep_buf_used(&c->in));
        if (used < 0)
            return;
        ep_buf_consume(&c->in, (size_t)used);
        if (ep_buf_used(&c->in) == 0)
            ep_buf_shrink(&c->in, 0);
        if ((c->tls == NULL && n < BK_READ_CHUNK) || c->paused)
            return;
        if (c->tls && round >= BK_TLS_READ_ROUNDS - 1 && ep_tls_pending(c->tls) == 0)
            return;
    }
}

static void conn_read(bk_conn *c)
{
    bk_worker *w = c->w;
    c->last_rx_ms = ep_loop_now(w->loop);
    if (c->tls || c->ws) {
        conn_read_layered(c);
        return;
    }
    /* Bounded number of reads per wakeup so one busy client cannot starve
     * the others on this worker. */
    for (int round = 0; round < 8; round++) {
        if (ep_buf_used(&c->in) == 0) {
            ssize_t n = ep_sock_read(c->fd, w->rbuf, BK_READ_CHUNK);
            if (n == EP_EAGAIN)
                return;
            if (n < 0) {
                read_failed(c, n);
                return;
            }
            ssize_t used = parse(c, w->rbuf, (size_t)n);
            if (used < 0)
                return;
            if ((size_t)used < (size_t)n &&
                ep_buf_append(&c->in, w->rbuf + used, (size_t)n - (size_t)used) != EP_EOK) {
                bk_conn_close(c, EP_MQTT_RC_PACKET_TOO_LARGE, "input buffer limit");
                return;
            }
            if (n < BK_READ_CHUNK || c->paused)
                return;
        } else {
            if (ep_buf_reserve(&c->in, 16384) != EP_EOK) {
                bk_conn_close(c, EP_MQTT_RC_PACKET_TOO_LARGE, "input buffer limit");
                return;
            }
            size_t room = ep_buf_room(&c->in);
            ssize_t n = ep_sock_read(c->fd, ep_buf_tail(&c->in), room);
            if (n == EP_EAGAIN)
                return;
            if (n < 0) {
                read_failed(c, n);
                return;
            }
            c->in.len += (size_t)n;
            ssize_t used = parse(c, ep_buf_head(&c->in), ep_buf_used(&c->in));
            if (used < 0)
                return;
            ep_buf_consume(&c->in, (size_t)used);
            if (ep_buf_used(&c->in) == 0)
                ep_buf_shrink(&c->in, 0);
            if ((size_t)n < room || c->paused)
                return;
        }
    }
}

static void conn_on_io(ep_io *io, unsigned events)
{
    bk_conn *c = io->data;
    if (events & EP_IO_WRITE) {
        bk_conn_want_flush(c);
        /* A TLS handshake waiting to write continues through a read. */
        if (c->tls && !ep_tls_handshake_done(c->tls)) {
            conn_read(c);
            return;
        }
    }
    if ((events & EP_IO_READ) || events == 0) {
        if (events == 0 && ep_buf_used(&c->in) > 0) {
            /* Bytes handed over from another worker: parse them first. */
            ssize_t used = parse(c, ep_buf_head(&c->in), ep_buf_used(&c->in));
            if (used < 0)
                return;
            ep_buf_consume(&c->in, (size_t)used);
            return;
        }
        conn_read(c);
    }
}

void bk_conn_pause(bk_conn *c)
{
    c->paused = true;
    ep_io_modify(&c->io, c->want_write ? EP_IO_WRITE : 0);
}

void bk_conn_resume(bk_conn *c)
{
    c->paused = false;
    ep_io_modify(&c->io, EP_IO_READ | (c->want_write ? EP_IO_WRITE : 0));
    /* What arrived while paused (starting with the held CONNECT). */
    ssize_t used = parse(c, ep_buf_head(&c->in), ep_buf_used(&c->in));
    if (used >= 0)
        ep_buf_consume(&c->in, (size_t)used);
}

/* The keep alive timer also enforces the connect timeout (before CONNECT)
 * and the expiry of the client's credentials (a client certificate's end
 * of validity): then the socket is closed without a DISCONNECT, as the
 * reference does. */
void bk_conn_arm_timer(bk_conn *c)
{
    uint64_t due = UINT64_MAX;
    if (c->keepalive)
        due = c->last_rx_ms + (uint64_t)c->keepalive * 1500u;
    if (c->cred_expiry_ms && c->cred_expiry_ms < due)
        due = c->cred_expiry_ms;
    if (due != UINT64_MAX)
        ep_timer_start_at(&c->ka_timer, due);
    else
        ep_timer_stop(&c->ka_timer);
}

static void conn_ka_check(ep_timer *t)
{
    bk_conn *c = t->data;
    uint64_t now = ep_loop_now(c->w->loop);
    if (c->state == BK_CONN_NEW) {
        bk_conn_close(c, -1, "no CONNECT within the connect timeout");
        return;
    }
    if (c->cred_expiry_ms && now >= c->cred_expiry_ms) {
        bk_conn_close(c, -1, "client credentials expired");
        return;
    }
    if (c->keepalive && now - c->last_rx_ms >= (uint64_t)c->keepalive * 1500u) {
        bk_conn_close(c, EP_MQTT_RC_KEEP_ALIVE_TIMEOUT, "keep alive timeout");
        return;
    }
    bk_conn_arm_timer(c);
}

static void unlink_conn(bk_conn *c)
{
    bk_worker *w = c->w;
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        w->all_conns = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    w->nconns--;
    atomic_fetch_sub(&w->b->nconnected, 1);
}

int bk_conn_release(bk_conn *c, ep_tls **tls, bk_ws **ws)
{
    held_list_remove(c);
    flush_list_remove(c);
    int fd = c->fd;
    *tls = c->tls;
    *ws = c->ws;
    c->tls = NULL;
    c->ws = NULL;
    c->state = BK_CONN_CLOSED;
    ep_io_stop(&c->io);
    ep_timer_stop(&c->ka_timer);
    c->fd = -1;
    unlink_conn(c);
    ep_loop_defer(c->w->loop, conn_free, c);
    return fd;
}

/* ---- acknowledgements held back by flow control ---- */

/* A closed connection must leave the flush list before it is freed. */
static void flush_list_remove(bk_conn *c)
{
    if (!c->in_flush_list)
        return;
    for (bk_conn **pp = &c->w->flush_head; *pp; pp = &(*pp)->flush_next) {
        if (*pp == c) {
            *pp = c->flush_next;
            break;
        }
    }
    c->in_flush_list = false;
}

static void held_list_remove(bk_conn *c)
{
    bk_worker *w = c->w;
    if (!c->in_held_list)
        return;
    for (uint32_t i = 0; i < w->nheld; i++) {
        if (w->held[i] == c) {
            w->held[i] = w->held[--w->nheld];
            break;
        }
    }
    c->in_held_list = false;
}

static void send_ack_now(bk_conn *c, uint8_t type, uint16_t pid, uint8_t rc)
{
    ep_mqtt_packet a = {.type = (ep_mqtt_type)type};
    a.ack.packet_id = pid;
    a.ack.rc = (ep_mqtt_rc)rc;
    bk_conn_send_packet(c, &a);
}

/* Once the deliveries of a QoS 2 PUBLISH are on disk, its packet id is
 * marked done (under the same ticket). Publisher's worker. */
static void ticket_qos2_record(bk_conn *c, bk_ticket *t)
{
    if (t == NULL || !t->qos2_rec || atomic_load_explicit(&t->pending, memory_order_acquire))
        return;
    t->qos2_rec = 0;
    if (c->s == NULL || atomic_load_explicit(&t->status, memory_order_acquire) != EP_EOK)
        return;
    atomic_fetch_add_explicit(&t->pending, 1, memory_order_acq_rel);
    c->w->cur_ticket = t;
    bk_session_qos2_done(c->s, t->qos2_pid);
    c->w->cur_ticket = NULL;
    bk_ticket_settle(t);
}

static bool ticket_pending(const bk_ticket *t)
{
    return t && (t->qos2_rec || atomic_load_explicit(&t->pending, memory_order_acquire) > 0);
}

/* A ticket whose records did not reach the log: the publisher is told
 * (v5 PUBACK/PUBREC 0x97 Quota exceeded, or 0x80 after an I/O error). A
 * 3.1.1 client cannot be told: returns false, the connection must close. */
static bool ticket_outcome(bk_conn *c, const bk_ticket *t, uint8_t type, uint16_t pid, uint8_t *rc)
{
    int st = t ? atomic_load_explicit(&t->status, memory_order_acquire) : EP_EOK;
    if (st == EP_EOK || (type != EP_MQTT_PUBACK && type != EP_MQTT_PUBREC))
        return true;
    bk_persist_count_refused(c->w->b);
    if (c->version != EP_MQTT_V5)
        return false;
    *rc = st == EP_EFULL || st == EP_EAGAIN ? EP_MQTT_RC_QUOTA_EXCEEDED
                                            : EP_MQTT_RC_UNSPECIFIED_ERROR;
    if (type == EP_MQTT_PUBREC && c->s)
        bk_session_qos2_remove(c->s, pid); /* a PUBREC >= 0x80 ends the exchange */
    return true;
}

void bk_conn_ack(bk_conn *c, uint8_t type, uint16_t pid, uint8_t rc, bk_flow *flow,
                 bk_ticket *ticket)
{
    bk_worker *w = c->w;
    ticket_qos2_record(c, ticket);
    if (flow == NULL && c->held_n == 0 && !ticket_pending(ticket)) {
        bool ok = ticket_outcome(c, ticket, type, pid, &rc);
        bk_ticket_unref(ticket);
        if (!ok) {
            bk_conn_close(c, -1, "persistent storage full");
            return;
        }
        send_ack_now(c, type, pid, rc);
        return;
    }
    if (c->held_n == c->held_cap) {
        uint32_t cap = c->held_cap ? c->held_cap * 2 : 16;
        bk_held_ack *v = malloc(cap * sizeof(*v));
        if (v == NULL) {
            /* Cannot hold it: with a ticket, the message cannot be promised;
             * without one, acknowledge now rather than never. */
            bk_flow_unref(flow);
            if (ticket) {
                bk_ticket_unref(ticket);
                bk_conn_close(c, EP_MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
                return;
            }
            send_ack_now(c, type, pid, rc);
            return;
        }
        for (uint32_t i = 0; i < c->held_n; i++)
            v[i] = c->held[(c->held_head + i) % c->held_cap];
        free(c->held);
        c->held = v;
        c->held_cap = cap;
        c->held_head = 0;
    }
    bk_held_ack *h = &c->held[(c->held_head + c->held_n) % c->held_cap];
    h->flow = flow;
    h->ticket = ticket;
    h->pid = pid;
    h->type = type;
    h->rc = rc;
    c->held_n++;
    if (!c->in_held_list) {
        if (w->nheld == w->capheld) {
            uint32_t cap = w->capheld ? w->capheld * 2 : 16;
            bk_conn **v = realloc(w->held, cap * sizeof(*v));
            if (v == NULL)
                return; /* retried on the next ack */
            w->held = v;
            w->capheld = cap;
        }
        w->held[w->nheld++] = c;
        c->in_held_list = true;
    }
}

void bk_worker_release_acks(bk_worker *w)
{
    for (uint32_t i = 0; i < w->nheld;) {
        bk_conn *c = w->held[i];
        bool refuse = false;
        while (c->held_n > 0) {
            bk_held_ack *h = &c->held[c->held_head];
            ticket_qos2_record(c, h->ticket);
            if (ticket_pending(h->ticket) || bk_flow_congested(h->flow, ep_loop_now(w->loop)))
                break;
            uint8_t rc = h->rc;
            if (!ticket_outcome(c, h->ticket, h->type, h->pid, &rc)) {
                refuse = true;
                break;
            }
            send_ack_now(c, h->type, h->pid, rc);
            bk_flow_unref(h->flow);
            bk_ticket_unref(h->ticket);
            c->held_head = (c->held_head + 1) % c->held_cap;
            c->held_n--;
        }
        if (refuse) {
            /* 3.1.1 has no way to refuse a PUBLISH: close. Closing takes c
             * off the held list (slot i now holds another connection). */
            bk_conn_close(c, -1, "persistent storage full");
            continue;
        }
        if (c->held_n == 0) {
            c->held_head = 0;
            c->in_held_list = false;
            w->held[i] = w->held[--w->nheld];
        } else {
            i++;
        }
    }
    /* Congestion clears on another thread: poll for it while acks wait. */
    if (w->nheld > 0 && !ep_timer_active(&w->held_timer))
        ep_timer_start(&w->held_timer, 1);
}

void bk_conn_free_all(bk_worker *w)
{
    while (w->all_conns) {
        bk_conn *c = w->all_conns;
        c->clean_disconnect = true; /* shutting down is not a client failure */
        bk_conn_close(c, EP_MQTT_RC_SERVER_SHUTTING_DOWN, "server shutting down");
    }
}
