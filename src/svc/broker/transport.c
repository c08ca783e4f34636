/*
 * transport.c - the bytes under MQTT: plain TCP, TLS (core/tls), and
 * WebSocket framing (codec/ws) over either.
 *
 * WebSockets: the upgrade request is read into `rin` and answered with 101
 * (subprotocol "mqtt"); afterwards every complete client frame is unmasked
 * into the connection's MQTT input, so the MQTT parser never sees framing.
 * A frame is processed once complete; its size is bounded by the maximum
 * packet size plus a margin, so a peer cannot make us buffer more. Output
 * is wrapped as one binary frame per flush (not one per MQTT packet).
 */
#include <stdio.h>
#include <string.h>

#include "codec/ws/ws.h"
#include "core/sock.h"
#include "svc/broker/broker_int.h"

ssize_t bk_tx_read(bk_conn *c, void *buf, size_t n)
{
    return c->tls ? ep_tls_read(c->tls, buf, n) : ep_sock_read(c->fd, buf, n);
}

ssize_t bk_tx_write(bk_conn *c, const void *buf, size_t n)
{
    if (c->tls)
        return ep_tls_write(c->tls, buf, n);
    struct iovec iov = {(void *)buf, n};
    return ep_sock_writev(c->fd, &iov, 1);
}

void bk_ws_free(bk_ws *ws)
{
    if (ws == NULL)
        return;
    ep_buf_fini(&ws->rin);
    ep_buf_fini(&ws->wire);
    free(ws);
}

static void http_error(bk_ws *ws, int status, const char *why)
{
    char resp[256];
    int n =
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 %d %s\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n"
                 "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s\n",
                 status, status == 426 ? "Upgrade Required" : "Bad Request", strlen(why) + 1, why);
    ep_buf_append(&ws->wire, resp, (size_t)n);
    ws->state = BK_WS_CLOSED;
}

static ep_err handshake(bk_conn *c, const char **why)
{
    bk_ws *ws = c->ws;
    long head = ep_ws_handshake_find(ep_buf_head(&ws->rin), ep_buf_used(&ws->rin));
    if (head == 0)
        return EP_EOK;
    if (head < 0) {
        *why = "WebSocket upgrade request too large";
        http_error(ws, 400, *why);
        return EP_EPROTO;
    }
    ep_ws_handshake h;
    int status;
    if (ep_ws_handshake_parse((const char *)ep_buf_head(&ws->rin), (size_t)head, &h, &status,
                              why) != EP_EOK) {
        http_error(ws, status, *why);
        return EP_EPROTO;
    }
    char accept[29];
    if (ep_ws_accept_key(h.key, accept) != EP_EOK) {
        *why = "cannot compute Sec-WebSocket-Accept";
        return EP_ECRYPTO;
    }
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     accept, h.has_mqtt ? "Sec-WebSocket-Protocol: mqtt\r\n" : "");
    if (ep_buf_append(&ws->wire, resp, (size_t)n) != EP_EOK)
        return EP_ENOMEM;
    ep_buf_consume(&ws->rin, (size_t)head);
    ws->state = BK_WS_OPEN;
    bk_conn_want_flush(c);
    return EP_EOK;
}

static ep_err control_frame(bk_conn *c, const ep_ws_frame *f, uint8_t *payload, const char **why)
{
    bk_ws *ws = c->ws;
    uint8_t hdr[10];
    if (f->opcode == EP_WS_OP_PONG)
        return EP_EOK;
    uint8_t op = f->opcode == EP_WS_OP_PING ? EP_WS_OP_PONG : EP_WS_OP_CLOSE;
    size_t hl = ep_ws_frame_header(hdr, op, true, f->payload_len);
    if (ep_buf_append(&ws->wire, hdr, hl) != EP_EOK ||
        ep_buf_append(&ws->wire, payload, (size_t)f->payload_len) != EP_EOK)
        return EP_ENOMEM;
    bk_conn_want_flush(c);
    if (f->opcode == EP_WS_OP_CLOSE) {
        ws->state = BK_WS_CLOSED;
        *why = "WebSocket closed by peer";
        return EP_ECLOSED;
    }
    return EP_EOK;
}

static void close_frame(bk_ws *ws, uint16_t code)
{
    uint8_t fr[4] = {0x88, 2, (uint8_t)(code >> 8), (uint8_t)code};
    ep_buf_append(&ws->wire, fr, sizeof(fr));
    ws->state = BK_WS_CLOSED;
}

ep_err bk_ws_feed(bk_conn *c, const uint8_t *p, size_t n, const char **why)
{
    bk_ws *ws = c->ws;
    uint64_t max_payload = (uint64_t)c->w->b->cfg.limits.max_packet_size + 65536u;
    if (ws->state == BK_WS_CLOSED)
        return EP_EOK;
    if (ep_buf_append(&ws->rin, p, n) != EP_EOK) {
        *why = "WebSocket input limit";
        return EP_ETOOBIG;
    }
    if (ws->state == BK_WS_HANDSHAKE) {
        ep_err err = handshake(c, why);
        if (err || ws->state != BK_WS_OPEN)
            return err;
    }
    for (;;) {
        ep_ws_frame f;
        ep_err err =
            ep_ws_frame_parse(ep_buf_head(&ws->rin), ep_buf_used(&ws->rin), max_payload, true, &f);
        if (err == EP_ENEEDMORE)
            break;
        if (err) {
            *why = err == EP_ETOOBIG ? "WebSocket frame too large" : "WebSocket protocol error";
            close_frame(ws, err == EP_ETOOBIG ? EP_WS_CLOSE_TOO_BIG : EP_WS_CLOSE_PROTOCOL);
            return err;
        }
        if (ep_buf_used(&ws->rin) - f.header_len < f.payload_len)
            break; /* wait for the whole frame */
        uint8_t *payload = ep_buf_head(&ws->rin) + f.header_len;
        size_t plen = (size_t)f.payload_len;
        ep_ws_unmask(payload, plen, f.mask, 0);
        if (f.opcode >= EP_WS_OP_CLOSE) {
            err = control_frame(c, &f, payload, why);
            if (err)
                return err;
        } else if (f.opcode == EP_WS_OP_TEXT) {
            *why = "MQTT over WebSockets uses binary frames";
            close_frame(ws, EP_WS_CLOSE_UNSUPPORTED);
            return EP_EPROTO;
        } else if (ep_buf_append(&c->in, payload, plen) != EP_EOK) {
            *why = "input buffer limit";
            close_frame(ws, EP_WS_CLOSE_TOO_BIG);
            return EP_ETOOBIG;
        }
        ep_buf_consume(&ws->rin, f.header_len + plen);
    }
    if (ep_buf_used(&ws->rin) == 0)
        ep_buf_shrink(&ws->rin, 0);
    return EP_EOK;
}

ep_err bk_ws_frame_out(bk_conn *c)
{
    bk_ws *ws = c->ws;
    size_t n = ep_buf_used(&c->out);
    if (ws->state != BK_WS_OPEN || n == 0)
        return EP_EOK;
    uint8_t hdr[10];
    size_t hl = ep_ws_frame_header(hdr, EP_WS_OP_BINARY, true, n);
    if (ep_buf_append(&ws->wire, hdr, hl) != EP_EOK ||
        ep_buf_append(&ws->wire, ep_buf_head(&c->out), n) != EP_EOK)
        return EP_ENOMEM;
    ep_buf_clear(&c->out);
    return EP_EOK;
}
