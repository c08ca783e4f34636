/*
 * io.c - bytes in and out of the MQTT client.
 *
 * Reading: each readable event reads one chunk into `in` and decodes every
 * whole packet in place (zero-copy: the decoded packet points into `in`);
 * only a trailing partial packet waits for the next read. The frame check
 * rejects a packet above our Maximum Packet Size from its fixed header,
 * before the body is buffered. A handler may end the connection (and the
 * application may free the client from a callback), so after each packet
 * the loop checks the connection generation before touching `in` again.
 *
 * Writing: packets are encoded into `out` and written by the before-poll
 * hook once per loop iteration, so a burst of publications becomes one
 * write. A write watcher is armed only when the socket would block. The
 * hook never calls application code: a write failure is parked in io_err
 * and handled by the kick timer, and completions wait in `done`.
 */
#include <string.h>

#include "svc/mqttc/mqttc_int.h"

static const ep_mqtt_slice none;

/* Copies the transport's reason for a failure (the TLS alert or
 * certificate check) before the connection, which owns it, is closed. */
static void take_detail(ep_mqttc *c)
{
    const char *e = c->tops->error ? c->tops->error(c->tconn) : NULL;
    if (e)
        ep_mqttc__set_detail(c, "%s", e);
}

/* Writes as much of `out` as the transport takes. Returns EP_EOK (all
 * written or would block) or the transport error. */
static ep_err flush(ep_mqttc *c)
{
    while (ep_buf_used(&c->out) > 0) {
        struct iovec iov = {ep_buf_head(&c->out), ep_buf_used(&c->out)};
        ssize_t r = c->tops->writev(c->tconn, &iov, 1);
        if (r == EP_EAGAIN) {
            if (!c->want_write) {
                c->want_write = true;
                ep_io_modify(&c->io, EP_IO_READ | EP_IO_WRITE);
            }
            return EP_EOK;
        }
        if (r <= 0) {
            take_detail(c);
            return r < 0 ? (ep_err)r : EP_ECLOSED;
        }
        ep_buf_consume(&c->out, (size_t)r);
    }
    if (c->want_write) {
        c->want_write = false;
        ep_io_modify(&c->io, EP_IO_READ);
    }
    ep_buf_shrink(&c->out, 65536);
    return EP_EOK;
}

static bool can_write(const ep_mqttc *c)
{
    return c->tconn != NULL &&
           (c->state == MQ_WAIT_CONNACK || c->state == MQ_CONNECTED || c->state == MQ_CLOSING);
}

void ep_mqttc__flush_now(ep_mqttc *c)
{
    if (can_write(c) && !c->io_err) {
        ep_err err = flush(c);
        if (err)
            c->io_err = err;
    }
}

void ep_mqttc__flush_hook(ep_loop *loop, void *arg)
{
    ep_mqttc *c = arg;
    (void)loop;
    if (c->freeing || c->io_err || !can_write(c))
        return;
    /* A few rounds of encode + write while the socket keeps up; beyond
     * that, continue on the next iteration (fairness with other clients). */
    for (int round = 0; round < 4; round++) {
        if (ep_buf_used(&c->out) > 0 && !c->want_write) {
            ep_err err = flush(c);
            if (err) {
                c->io_err = err;
                ep_mqttc__kick(c);
                return;
            }
        }
        if (c->want_write || c->state != MQ_CONNECTED || c->queue.head == NULL)
            return;
        size_t before = ep_buf_used(&c->out);
        ep_mqttc__pump(c);
        if (ep_buf_used(&c->out) == before)
            return;
    }
    if (ep_buf_used(&c->out) > 0 || c->queue.head)
        ep_mqttc__kick(c);
}

ep_err ep_mqttc__send(ep_mqttc *c, const ep_mqtt_packet *p)
{
    ep_err err = ep_mqtt_packet_encode(&c->out, p, c->version,
                                       p->type == EP_MQTT_CONNECT ? 0 : c->srv_max_packet);
    if (err == EP_EOK)
        c->last_tx = ep_loop_now(c->loop);
    return err;
}

/* ---- reading ---------------------------------------------------------- */

static void dispatch(ep_mqttc *c, const ep_mqtt_packet *p)
{
    if (c->state == MQ_WAIT_CONNACK && p->type != EP_MQTT_CONNACK &&
        p->type != EP_MQTT_DISCONNECT && p->type != EP_MQTT_AUTH) {
        ep_mqttc__protocol_error(c, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR, "packet before CONNACK");
        return;
    }
    switch (p->type) {
    case EP_MQTT_CONNACK:
        ep_mqttc__on_connack(c, &p->connack);
        return;
    case EP_MQTT_PUBLISH:
        if (c->state == MQ_CONNECTED)
            ep_mqttc__on_publish(c, &p->publish);
        /* While closing, unacknowledged messages are left to the server to
         * deliver again on the next connection. */
        return;
    case EP_MQTT_PUBACK:
    case EP_MQTT_PUBREC:
    case EP_MQTT_PUBCOMP:
        ep_mqttc__on_pub_ack(c, p->type, &p->ack);
        return;
    case EP_MQTT_PUBREL:
        ep_mqttc__on_pubrel(c, &p->ack);
        return;
    case EP_MQTT_SUBACK:
    case EP_MQTT_UNSUBACK:
        ep_mqttc__on_suback(c, p->type, &p->suback);
        return;
    case EP_MQTT_PINGRESP:
        ep_mqttc__on_pingresp(c);
        return;
    case EP_MQTT_DISCONNECT:
        ep_mqttc__on_disconnect_pkt(c, &p->disconnect);
        return;
    case EP_MQTT_AUTH:
        ep_mqttc__on_auth(c, &p->auth);
        return;
    default:
        ep_mqttc__protocol_error(c, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR,
                                 ep_mqtt_type_name(p->type));
        return;
    }
}

static void process(ep_mqttc *c)
{
    uint32_t gen = c->gen;
    while (c->gen == gen && ep_buf_used(&c->in) > 0) {
        const uint8_t *head = ep_buf_head(&c->in);
        size_t used = ep_buf_used(&c->in), hl = 0, total = 0;
        ep_err err = ep_mqtt_packet_frame(head, used, c->max_packet, &hl, &total);
        if (err == EP_ENEEDMORE)
            return;
        if (err) {
            ep_mqttc__protocol_error(
                c, err,
                err == EP_ETOOBIG ? EP_MQTT_RC_PACKET_TOO_LARGE : EP_MQTT_RC_MALFORMED_PACKET,
                err == EP_ETOOBIG ? "packet larger than our maximum" : "malformed fixed header");
            return;
        }
        ep_mqtt_packet p;
        ep_mqtt_rc rc = 0;
        err = ep_mqtt_packet_decode(head, total, c->version, &p, &rc);
        if (err) {
            ep_mqttc__protocol_error(c, err, rc, ep_mqtt_type_name(head[0] >> 4));
            return;
        }
        EP_LOG_TRACE(MQC_LOG, "%s: <- %s (%zu bytes)", c->client_id, ep_mqtt_type_name(p.type),
                     total);
        dispatch(c, &p);
        if (c->gen != gen)
            return;
        ep_buf_consume(&c->in, total);
    }
    if (ep_buf_used(&c->in) == 0)
        ep_buf_shrink(&c->in, 65536);
}

static void read_some(ep_mqttc *c)
{
    if (ep_buf_room(&c->in) < MQC_READ_CHUNK) {
        ep_err err = ep_buf_reserve(&c->in, MQC_READ_CHUNK);
        if (err) {
            ep_mqttc__protocol_error(c, err, EP_MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR,
                                     "cannot grow the read buffer");
            return;
        }
    }
    ssize_t r = c->tops->read(c->tconn, ep_buf_tail(&c->in), ep_buf_room(&c->in));
    if (r == EP_EAGAIN)
        return;
    if (r <= 0) {
        /* A TLS alert (e.g. our certificate refused after a TLS 1.3
         * handshake) is worth reporting; an ordinary close is EP_ECLOSED. */
        ep_err err = r == EP_ESECURITY ? EP_ESECURITY : EP_ECLOSED;
        take_detail(c);
        ep_mqttc__conn_lost(c, c->state == MQ_CLOSING ? EP_EOK : err, 0, none, none);
        return;
    }
    c->in.len += (size_t)r;
    c->last_rx = ep_loop_now(c->loop);
    process(c);
}

static void handshake_step(ep_mqttc *c)
{
    unsigned want = 0;
    ep_err err = c->tops->handshake(c->tconn, &want);
    if (err == EP_EAGAIN) {
        ep_io_modify(&c->io, want ? want : EP_IO_WRITE);
        return;
    }
    if (err) {
        take_detail(c);
        ep_mqttc__conn_lost(c, err, 0, none, none);
        return;
    }
    err = ep_mqttc__send_connect(c);
    if (err) {
        EP_LOG_WARN(MQC_LOG, "%s: cannot encode CONNECT: %s", c->client_id, ep_strerror(err));
        c->fatal = true;
        ep_mqttc__conn_lost(c, err, 0, none, none);
        return;
    }
    c->state = MQ_WAIT_CONNACK;
    ep_io_modify(&c->io, EP_IO_READ);
    c->want_write = false;
}

void ep_mqttc__on_io(ep_io *io, unsigned events)
{
    ep_mqttc *c = io->data;
    ep_mqttc__enter(c);
    if (c->state == MQ_CONNECTING) {
        handshake_step(c);
        ep_mqttc__leave(c);
        return;
    }
    uint32_t gen = c->gen;
    if ((events & EP_IO_WRITE) && c->want_write) {
        ep_err err = flush(c);
        if (err)
            ep_mqttc__conn_lost(c, c->state == MQ_CLOSING ? EP_EOK : err, 0, none, none);
    }
    if (c->gen == gen && c->tconn && (events & (EP_IO_READ | EP_IO_HUP)))
        read_some(c);
    /* TLS may hold decrypted bytes the fd will not signal again. */
    for (int i = 0;
         i < 64 && c->gen == gen && c->tconn && c->tops->pending && c->tops->pending(c->tconn) > 0;
         i++)
        read_some(c);
    ep_mqttc__leave(c);
}
