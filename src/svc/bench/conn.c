/*
 * conn.c - one generator connection: publisher, subscriber or idle.
 *
 * Why the generator keeps up with a broker that relays millions of messages
 * a second:
 *  - Writes are batched. A publisher fills up to --batch bytes of complete
 *    PUBLISH packets in its output buffer (header from the codec's PUBLISH
 *    header fast path, payload stamped in place) and hands them to the
 *    kernel in ONE write(): at 64-byte payloads that is ~1500 messages per
 *    syscall.
 *  - Reads are big. Every read() takes up to the worker's scratch size
 *    (256 KiB or more) and all whole packets in it are framed and decoded
 *    in place; only the tail of an incomplete packet is carried over.
 *  - The clock is read once per read() and once per batch, not per message.
 *  - Sockets are edge-triggered: a short read or short write means "wait for
 *    the next edge", so no syscall is spent on a read or write that would
 *    return EAGAIN. See worker.c for the loop.
 *
 * Payload: ep_bench_stamp (publisher id, sequence, send time in ns on
 * CLOCK_MONOTONIC), the actual generation time when there is room for it,
 * then filler up to --size bytes. Paced publishers stamp the time the
 * message was *scheduled* for, so a generator that falls behind shows up as
 * latency instead of hiding it (no coordinated omission); the second time
 * tells that lateness apart from the broker's part.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "svc/bench/bench_int.h"

#define FILLER 0x5a

void ep_bench__conn_fail(ep_bench_conn *c, ep_err err, const char *fmt, ...)
{
    ep_bench_worker *w = c->w;
    ep_bench_run *r = w->run;
    if (!w->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
        va_end(ap);
        w->err = err;
    }
    if (c->role == EP_BENCH_ROLE_HS && ep_bench__hs_fail(c))
        return;
    if (c->state < EP_BENCH_ST_READY) {
        atomic_fetch_add_explicit(&r->n_failed, 1, memory_order_relaxed);
        if (w->opening)
            w->opening--;
    } else if (atomic_load_explicit(&r->phase, memory_order_relaxed) < EP_BENCH_PH_STOP) {
        w->closed++;
        atomic_fetch_add_explicit(&r->n_lost, 1, memory_order_relaxed);
    }
    ep_bench__conn_close(c);
}

void ep_bench__conn_close(ep_bench_conn *c)
{
    ep_bench__tls_end(c);
    c->rd_wants_out = c->wr_wants_in = c->rdhup = 0;
    if (c->fd >= 0) {
        epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->state = EP_BENCH_ST_CLOSED;
    c->readable = c->writable = 0;
    ep_buf_fini(&c->out);
    ep_buf_fini(&c->carry);
}

void ep_bench__conn_fini(ep_bench_conn *c)
{
    ep_bench__tls_fini(c);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    ep_buf_fini(&c->out);
    ep_buf_fini(&c->carry);
    free(c->slots);
    c->slots = NULL;
    free(c->streams);
    c->streams = NULL;
}

ep_err ep_bench__conn_open(ep_bench_conn *c)
{
    ep_bench_run *r = c->w->run;
    int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return EP_ERR_FROM_ERRNO();
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->role == EP_BENCH_ROLE_PUB) {
        /* A fixed send buffer of about two batches (the kernel doubles the
         * value) instead of autotuning up to megabytes: at max rate the
         * backlog then sits in the broker, where it is measured, rather
         * than in our socket, and "sent" tracks what the broker took. */
        int sndbuf = (int)r->o.batch;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    if (connect(fd, (const struct sockaddr *)&r->addr, r->addrlen) < 0 && errno != EINPROGRESS) {
        ep_err err = EP_ERR_FROM_ERRNO();
        close(fd);
        return err;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        ep_err err = EP_ERR_FROM_ERRNO();
        close(fd);
        return err;
    }
    c->fd = fd;
    c->state = EP_BENCH_ST_TCP;
    c->readable = c->writable = 0;
    c->w->opening++;
    return EP_EOK;
}

uint64_t ep_bench__conn_next_due(const ep_bench_conn *c)
{
    return c->first_due_ns + (uint64_t)((double)c->seq * c->interval_ns);
}

int ep_bench__conn_can_generate(const ep_bench_conn *c)
{
    const ep_bench_worker *w = c->w;
    if (c->role != EP_BENCH_ROLE_PUB || c->state != EP_BENCH_ST_READY || !w->started)
        return 0;
    if (w->run->o.qos && (c->inflight >= c->window || c->slots[c->seq % c->window]))
        return 0;
    if (c->interval_ns > 0.0) {
        /* A message scheduled inside the run is sent even if we are late. */
        uint64_t due = ep_bench__conn_next_due(c);
        return due <= w->now && due < w->run->t_end;
    }
    return w->now < w->run->t_end;
}

/* generate appends up to o.batch bytes of PUBLISH packets to c->out.
 * Returns the number of messages added or a negative ep_err. */
static int generate(ep_bench_conn *c)
{
    ep_bench_worker *w = c->w;
    ep_bench_run *r = w->run;
    const ep_bench_opts *o = &r->o;
    if (!ep_bench__conn_can_generate(c))
        return 0;
    size_t pkt_max = (size_t)c->hdr_len + 2u + o->size;
    ep_err err = ep_buf_reserve(&c->out, o->batch + pkt_max);
    if (err)
        return err;
    uint8_t *start = ep_buf_tail(&c->out);
    uint8_t *p = start;
    uint8_t *end = start + o->batch;
    uint64_t now = ep_bench__now_ns();
    w->now = now;
    int n = 0;
    do {
        uint64_t ts = now;
        if (c->interval_ns > 0.0) {
            ts = ep_bench__conn_next_due(c);
            if (ts > now || ts >= r->t_end)
                break;
            if (now - ts > w->lag_max_ns && ts >= r->t_start)
                w->lag_max_ns = now - ts;
        }
        if (o->qos) {
            uint32_t slot = c->seq % c->window;
            if (c->inflight >= c->window || c->slots[slot])
                break;
            size_t hl = 0;
            err = ep_bench__wire_publish_hdr(p, EP_BENCH_MAX_HDR, &hl, o->version, o->qos, c->topic,
                                             (uint16_t)(slot + 1u), o->size);
            if (err)
                return err;
            c->slots[slot] = 1;
            c->inflight++;
            p += hl;
        } else {
            memcpy(p, c->hdr, c->hdr_len);
            p += c->hdr_len;
        }
        ep_bench_stamp st = {c->index, c->seq, ts};
        memcpy(p, &st, sizeof(st));
        if (o->size > sizeof(st))
            memset(p + sizeof(st), FILLER, o->size - sizeof(st));
        if (o->size >= EP_BENCH_SENT_SIZE)
            memcpy(p + sizeof(st), &now, sizeof(now));
        p += o->size;
        if (ts >= r->t_start && ts < r->t_end)
            w->sent_win++;
        c->seq++;
        n++;
    } while (p < end);
    c->out.len += (size_t)(p - start);
    w->sent_all += (uint64_t)n;
    if (c->interval_ns > 0.0 && n)
        w->paced_gen = 1;
    return n;
}

static void queue_err(ep_bench_conn *c, ep_err err, const char *what)
{
    ep_bench__conn_fail(c, err, "cannot encode %s: %s", what, ep_strerror(err));
}

static int on_connack(ep_bench_conn *c, const ep_mqtt_connack *ca)
{
    ep_bench_run *r = c->w->run;
    if (c->state != EP_BENCH_ST_CONNACK) {
        ep_bench__conn_fail(c, EP_EPROTO, "unexpected CONNACK from broker");
        return -1;
    }
    if (ca->rc != EP_MQTT_RC_SUCCESS) {
        const char *name = ep_mqtt_rc_name((int)ca->rc);
        ep_bench__conn_fail(c, EP_EPERM, "broker refused the connection: %s (0x%02x)",
                            name ? name : "unknown reason", (unsigned)ca->rc);
        return -1;
    }
    if (r->o.version == EP_MQTT_V5) {
        const ep_mqtt_props *pr = &ca->props;
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_MAXIMUM_QOS) && pr->maximum_qos < r->o.qos) {
            ep_bench__conn_fail(c, EP_EUNSUPPORTED, "broker supports QoS %u at most",
                                (unsigned)pr->maximum_qos);
            return -1;
        }
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_RECEIVE_MAXIMUM) && pr->receive_maximum &&
            pr->receive_maximum < c->window)
            c->window = pr->receive_maximum;
    }
    if (c->role == EP_BENCH_ROLE_HS)
        return ep_bench__hs_on_connack(c);
    if (c->role == EP_BENCH_ROLE_SUB) {
        const char *const *filters = (const char *const *)r->filters;
        uint32_t n = r->nfilters;
        if (r->o.scenario == EP_BENCH_P2P) {
            filters = (const char *const *)&r->topics[c->index];
            n = 1;
        }
        ep_err err = ep_bench__wire_subscribe(&c->out, r, filters, n, 1);
        if (err) {
            queue_err(c, err, "SUBSCRIBE");
            return -1;
        }
        c->state = EP_BENCH_ST_SUBACK;
        return 0;
    }
    c->state = EP_BENCH_ST_READY;
    c->w->opening--;
    atomic_fetch_add_explicit(&r->n_ready, 1, memory_order_release);
    return 0;
}

static int on_suback(ep_bench_conn *c, const ep_mqtt_suback *sa)
{
    if (c->state != EP_BENCH_ST_SUBACK || sa->packet_id != 1) {
        ep_bench__conn_fail(c, EP_EPROTO, "unexpected SUBACK from broker");
        return -1;
    }
    for (uint32_t i = 0; i < sa->codes.len; i++) {
        uint8_t code = sa->codes.p[i];
        if (code >= 0x80) {
            const char *name = ep_mqtt_rc_name(code);
            ep_bench__conn_fail(c, EP_EPERM, "broker refused the subscription: %s (0x%02x)",
                                name ? name : "failure", (unsigned)code);
            return -1;
        }
    }
    c->state = EP_BENCH_ST_READY;
    c->w->opening--;
    atomic_fetch_add_explicit(&c->w->run->n_ready, 1, memory_order_release);
    return 0;
}

static int on_publish(ep_bench_conn *c, const ep_mqtt_publish *pub)
{
    ep_bench_worker *w = c->w;
    const ep_bench_run *r = w->run;
    w->delivered_all++;
    if (pub->payload.len >= sizeof(ep_bench_stamp)) {
        ep_bench_stamp st;
        memcpy(&st, pub->payload.p, sizeof(st));
        uint32_t k = st.pub - c->pub_base;
        if (c->streams && k < c->pub_count) {
            ep_bench__stream_see(&c->streams[k], st.seq);
            if (w->now >= r->t_start && w->now < r->t_end) {
                w->delivered_win++;
                ep_bench__hist_add(&w->hist, w->now > st.ts_ns ? w->now - st.ts_ns : 0);
                if (pub->payload.len >= EP_BENCH_SENT_SIZE) {
                    uint64_t sent;
                    memcpy(&sent, pub->payload.p + sizeof(st), sizeof(sent));
                    ep_bench__hist_add(&w->hist_sent, w->now > sent ? w->now - sent : 0);
                }
            }
        } else {
            w->foreign++;
        }
    } else {
        w->foreign++;
    }
    if (pub->qos == 0)
        return 0;
    ep_err err = ep_bench__wire_ack(
        &c->out, r->o.version, pub->qos == 1 ? EP_MQTT_PUBACK : EP_MQTT_PUBREC, pub->packet_id);
    if (err) {
        queue_err(c, err, "acknowledgement");
        return -1;
    }
    return 0;
}

/* on_pub_ack handles PUBACK, PUBREC and PUBCOMP for a publisher's window. */
static int on_pub_ack(ep_bench_conn *c, ep_mqtt_type type, const ep_mqtt_ack *ack)
{
    const ep_bench_run *r = c->w->run;
    uint32_t slot = (uint32_t)ack->packet_id - 1u;
    uint8_t want = type == EP_MQTT_PUBCOMP ? 2 : 1;
    uint8_t qos_ok = type == EP_MQTT_PUBACK ? (r->o.qos == 1) : (r->o.qos == 2);
    if (c->role != EP_BENCH_ROLE_PUB || !qos_ok || !c->slots || slot >= c->window ||
        c->slots[slot] != want) {
        ep_bench__conn_fail(c, EP_EPROTO, "unexpected %s (packet id %u) from broker",
                            ep_mqtt_type_name(type), (unsigned)ack->packet_id);
        return -1;
    }
    if (ack->rc >= 0x80) {
        const char *name = ep_mqtt_rc_name((int)ack->rc);
        ep_bench__conn_fail(c, EP_EPERM, "broker rejected a publication: %s (0x%02x)",
                            name ? name : "failure", (unsigned)ack->rc);
        return -1;
    }
    if (type == EP_MQTT_PUBREC) {
        ep_err err = ep_bench__wire_ack(&c->out, r->o.version, EP_MQTT_PUBREL, ack->packet_id);
        if (err) {
            queue_err(c, err, "PUBREL");
            return -1;
        }
        c->slots[slot] = 2;
        return 0;
    }
    c->slots[slot] = 0;
    c->inflight--;
    return 0;
}

/* handle decodes and acts on one framed packet. Returns 0 or -1 (closed). */
static int handle(ep_bench_conn *c, const uint8_t *pkt, size_t len)
{
    const ep_bench_run *r = c->w->run;
    ep_mqtt_packet p;
    ep_mqtt_rc rc = EP_MQTT_RC_SUCCESS;
    ep_err err = ep_mqtt_packet_decode(pkt, len, r->o.version, &p, &rc);
    if (err) {
        ep_bench__conn_fail(c, err, "bad packet from broker (type %u): %s", (unsigned)(pkt[0] >> 4),
                            ep_strerror(err));
        return -1;
    }
    switch (p.type) {
    case EP_MQTT_PUBLISH:
        return on_publish(c, &p.publish);
    case EP_MQTT_PUBACK:
    case EP_MQTT_PUBREC:
    case EP_MQTT_PUBCOMP:
        return on_pub_ack(c, p.type, &p.ack);
    case EP_MQTT_PUBREL:
        err = ep_bench__wire_ack(&c->out, r->o.version, EP_MQTT_PUBCOMP, p.ack.packet_id);
        if (err) {
            queue_err(c, err, "PUBCOMP");
            return -1;
        }
        return 0;
    case EP_MQTT_CONNACK:
        return on_connack(c, &p.connack);
    case EP_MQTT_SUBACK:
        return on_suback(c, &p.suback);
    case EP_MQTT_PINGRESP:
        return 0;
    case EP_MQTT_DISCONNECT: {
        const char *name = ep_mqtt_rc_name((int)p.disconnect.rc);
        ep_bench__conn_fail(c, EP_ECLOSED, "broker sent DISCONNECT: %s (0x%02x)",
                            name ? name : "unknown reason", (unsigned)p.disconnect.rc);
        return -1;
    }
    default:
        ep_bench__conn_fail(c, EP_EPROTO, "unexpected %s from broker",
                            ep_mqtt_type_name((int)p.type));
        return -1;
    }
}

static void lost(ep_bench_conn *c, ep_err err)
{
    const char *what = c->role == EP_BENCH_ROLE_PUB   ? "publisher"
                       : c->role == EP_BENCH_ROLE_SUB ? "subscriber"
                       : c->role == EP_BENCH_ROLE_HS  ? "connector"
                                                      : "connection";
    ep_bench__conn_fail(c, err, "%s %u: connection closed by the broker (%s)", what,
                        (unsigned)c->index, ep_strerror(err));
}

/* conn_recv reads into buf (room bytes): one read() for TCP; for TLS,
 * records until OpenSSL wants more from the socket or buf is full.
 * Clears c->readable once the socket is drained. Returns the bytes read
 * (*eof set at the end of stream) or a negative ep_err. */
static ssize_t conn_recv(ep_bench_conn *c, uint8_t *buf, size_t room, int *eof)
{
    *eof = 0;
    if (!c->ssl) {
        ssize_t n = read(c->fd, buf, room);
        if (n > 0) {
            /* A short read drained the socket: the next data raises a new
             * edge. Not so for a FIN already reported: read on until EOF. */
            if ((size_t)n < room && !c->rdhup)
                c->readable = 0;
            return n;
        }
        if (n == 0) {
            *eof = 1;
            return 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            c->readable = errno == EINTR;
            return 0;
        }
        return EP_ERR_FROM_ERRNO();
    }
    size_t got = 0;
    while (got < room) {
        ssize_t n = ep_bench__tls_read(c, buf + got, room - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            *eof = 1;
        else if (n != EP_EAGAIN && !got)
            return n;
        break;
    }
    return (ssize_t)got;
}

static void fail_tls(ep_bench_conn *c, ep_err err, const char *what)
{
    char why[256];
    if (err == EP_ESECURITY || err == EP_ECRYPTO)
        ep_bench__conn_fail(c, err, "%s: TLS: %s", what, ep_bench__tls_why(why, sizeof(why)));
    else
        lost(c, err);
}

/* conn_read does one big read and handles every whole packet in it.
 * Returns 0, or -1 when the connection was closed. */
static int conn_read(ep_bench_conn *c)
{
    ep_bench_worker *w = c->w;
    uint8_t *buf = w->scratch;
    size_t have = ep_buf_used(&c->carry);
    if (have)
        memcpy(buf, ep_buf_head(&c->carry), have);
    int eof = 0;
    ssize_t n = conn_recv(c, buf + have, w->scratch_cap - have, &eof);
    if (n < 0) {
        fail_tls(c, (ep_err)n, "read");
        return -1;
    }
    if (n == 0 && !eof)
        return 0;
    ep_buf_clear(&c->carry);
    w->now = ep_bench__now_ns();
    size_t total = have + (size_t)n, off = 0;
    while (off < total) {
        size_t hl = 0, pl = 0;
        ep_err err =
            ep_mqtt_packet_frame(buf + off, total - off, (uint32_t)(w->scratch_cap / 2u), &hl, &pl);
        if (err == EP_ENEEDMORE)
            break;
        if (err) {
            ep_bench__conn_fail(c, err, "bad packet framing from broker: %s", ep_strerror(err));
            return -1;
        }
        if (handle(c, buf + off, pl) < 0)
            return -1;
        off += pl;
    }
    if (eof) {
        if (c->state == EP_BENCH_ST_BYE) {
            ep_bench__hs_on_eof(c);
            return -1;
        }
        lost(c, EP_ECLOSED);
        return -1;
    }
    if (off < total) {
        ep_err err = ep_buf_append(&c->carry, buf + off, total - off);
        if (err) {
            ep_bench__conn_fail(c, err, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* conn_write flushes c->out and, for a publisher, keeps generating and
 * writing while the socket takes it (a few batches at most per call so that
 * one connection cannot starve the others). Returns 0 or -1 (closed). */
static int conn_write(ep_bench_conn *c)
{
    for (int round = 0; round < 4; round++) {
        if (!ep_buf_used(&c->out)) {
            int g = generate(c);
            if (g < 0) {
                ep_bench__conn_fail(c, (ep_err)g, "cannot build PUBLISH: %s",
                                    ep_strerror((ep_err)g));
                return -1;
            }
            if (g == 0)
                return 0;
        }
        size_t len = ep_buf_used(&c->out);
        ssize_t n;
        if (c->ssl) {
            n = ep_bench__tls_write(c, ep_buf_head(&c->out), len);
            if (n == EP_EAGAIN)
                return 0;
            if (n < 0) {
                fail_tls(c, (ep_err)n, "write");
                return -1;
            }
        } else {
            n = send(c->fd, ep_buf_head(&c->out), len, MSG_NOSIGNAL);
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->writable = 0;
                return 0;
            }
            if (errno == EINTR)
                continue;
            lost(c, EP_ERR_FROM_ERRNO());
            return -1;
        }
        ep_buf_consume(&c->out, (size_t)n);
        c->last_tx_ns = c->w->now;
        if (c->ssl && ep_buf_used(&c->out)) {
            /* TLS writes one record (16 KiB) per call: a short write says
             * nothing about the socket, only EP_EAGAIN does. */
            round--;
            continue;
        }
        if ((size_t)n < len) {
            /* Short write: the kernel set SOCK_NOSPACE and will raise the
             * next EPOLLOUT edge when there is room again. */
            c->writable = 0;
            return 0;
        }
    }
    return 0;
}

static int send_connect(ep_bench_conn *c);

static int tcp_connected(ep_bench_conn *c)
{
    ep_bench_run *r = c->w->run;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr) {
        ep_bench__conn_fail(c, ep_err_from_errno(soerr), "cannot connect to %.200s:%u: %s",
                            r->o.host, (unsigned)r->o.port, ep_strerror(ep_err_from_errno(soerr)));
        return -1;
    }
    if (r->tls_ctx) {
        ep_err err = ep_bench__tls_start(c);
        if (err) {
            fail_tls(c, err, "TLS setup");
            return -1;
        }
        c->state = EP_BENCH_ST_TLS;
        return 0;
    }
    return send_connect(c);
}

/* tls_step advances the TLS handshake; once done, CONNECT goes out.
 * Returns 0 or -1 (closed). */
static int tls_step(ep_bench_conn *c)
{
    int rc = ep_bench__tls_handshake(c);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        char msg[320];
        const ep_bench_run *r = c->w->run;
        snprintf(msg, sizeof(msg), "TLS handshake with %.200s:%u", r->o.host, (unsigned)r->o.port);
        fail_tls(c, (ep_err)rc, msg);
        return -1;
    }
    if (!c->w->tls_desc[0])
        ep_bench__tls_describe(c, c->w->tls_desc, sizeof(c->w->tls_desc));
    if (ep_bench__tls_resumed(c))
        c->w->hs_resumed++;
    /* Read-ahead may already hold the broker's first records. */
    c->readable = 1;
    return send_connect(c);
}

static int send_connect(ep_bench_conn *c)
{
    const ep_bench_run *r = c->w->run;
    char id[64];
    static const char role_ch[] = {'p', 's', 'i', 'h'};
    snprintf(id, sizeof(id), "%s%c%u", r->client_prefix, role_ch[c->role], (unsigned)c->index);
    ep_err err = ep_bench__wire_connect(&c->out, r, id);
    if (err) {
        queue_err(c, err, "CONNECT");
        return -1;
    }
    c->state = EP_BENCH_ST_CONNACK;
    return 0;
}

int ep_bench__conn_service(ep_bench_conn *c)
{
    if (c->state == EP_BENCH_ST_CLOSED || c->state == EP_BENCH_ST_NEW)
        return 0;
    if (c->state == EP_BENCH_ST_TCP) {
        if (!c->writable && !c->readable)
            return 0;
        if (tcp_connected(c) < 0)
            return 0;
    }
    if (c->state == EP_BENCH_ST_TLS) {
        if (!c->writable && !c->readable)
            return 0;
        if (tls_step(c) < 0)
            return 0;
        if (c->state == EP_BENCH_ST_TLS)
            return 0; /* waits for an edge */
    }
    if (c->readable && conn_read(c) < 0)
        return 0;
    if (c->writable && conn_write(c) < 0)
        return 0;
    return c->readable || (c->writable && (ep_buf_used(&c->out) || ep_bench__conn_can_generate(c)));
}
