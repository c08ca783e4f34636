/*
 * ws.h - WebSocket (RFC 6455) server-side codec: the HTTP upgrade request
 * and frame headers. Pure: bytes in, structs out; no I/O, no allocation,
 * no logging. Used for MQTT over WebSockets (subprotocol "mqtt").
 */
#ifndef EP_CODEC_WS_H
#define EP_CODEC_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define EP_WS_MAX_HANDSHAKE 8192 /* bytes of request head we accept */

enum {
    EP_WS_OP_CONT = 0x0,
    EP_WS_OP_TEXT = 0x1,
    EP_WS_OP_BINARY = 0x2,
    EP_WS_OP_CLOSE = 0x8,
    EP_WS_OP_PING = 0x9,
    EP_WS_OP_PONG = 0xA,
};

/* Close status codes we send. */
enum {
    EP_WS_CLOSE_NORMAL = 1000,
    EP_WS_CLOSE_PROTOCOL = 1002,
    EP_WS_CLOSE_UNSUPPORTED = 1003,
    EP_WS_CLOSE_TOO_BIG = 1009,
};

typedef struct ep_ws_handshake {
    char key[64];     /* Sec-WebSocket-Key as sent */
    bool has_mqtt;    /* "mqtt" offered in Sec-WebSocket-Protocol */
    const char *path; /* request target, borrowed (not terminated) */
    size_t path_len;
} ep_ws_handshake;

/* ep_ws_handshake_find returns the length of the request head (through the
 * blank line) in p[0..n), 0 when it is not complete yet, or -1 when more
 * than EP_WS_MAX_HANDSHAKE bytes came without one. */
long ep_ws_handshake_find(const uint8_t *p, size_t n);

/* ep_ws_handshake_parse validates a complete request head: GET, HTTP/1.1,
 * Upgrade: websocket, Connection containing "upgrade",
 * Sec-WebSocket-Version: 13, a 16-byte base64 Sec-WebSocket-Key.
 * Returns EP_EOK, or EP_EPROTO with *http_status (400 or 426) and a static
 * reason in *why. Borrows head; out->path points into it. */
ep_err ep_ws_handshake_parse(const char *head, size_t len, ep_ws_handshake *out, int *http_status,
                             const char **why);

/* ep_ws_accept_key computes Sec-WebSocket-Accept for key into out (29
 * bytes incl. NUL). Returns EP_EOK or EP_ECRYPTO. */
ep_err ep_ws_accept_key(const char *key, char out[29]);

typedef struct ep_ws_frame {
    bool fin;
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t payload_len;
    size_t header_len;
} ep_ws_frame;

/* ep_ws_frame_parse reads a frame header from p[0..n). max_payload bounds
 * the payload length a peer may claim.
 * Returns EP_EOK (header complete, payload may not be), EP_ENEEDMORE,
 * EP_EPROTO (reserved bits, unknown opcode, fragmented or oversize control
 * frame, non-minimal length, unmasked client frame when require_mask) or
 * EP_ETOOBIG (payload above max_payload). */
ep_err ep_ws_frame_parse(const uint8_t *p, size_t n, uint64_t max_payload, bool require_mask,
                         ep_ws_frame *f);

/* ep_ws_unmask XORs p[0..n) with mask, starting at byte `offset` of the
 * payload (so a payload can be unmasked in pieces). */
void ep_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* ep_ws_frame_header writes an unmasked server frame header for a payload
 * of len bytes into out (room for 10 bytes); returns its size. */
size_t ep_ws_frame_header(uint8_t *out, uint8_t opcode, bool fin, uint64_t len);

#endif
