/*
 * tcp.h - OPC UA Connection Protocol framing (OPC 10000-6 7.1.2): the
 * 8-byte message header and the Hello, Acknowledge, Error and ReverseHello
 * messages. Pure functions (bytes in, structs out), internal to the module
 * and shared by channel.c, the unit tests and the fuzz harnesses.
 */
#ifndef EP_SVC_OPCUA_TCP_H
#define EP_SVC_OPCUA_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "codec/opcua/ua_types.h"
#include "core/buf.h"
#include "core/err.h"

/* Message types, as the three ASCII bytes packed little endian. */
enum {
    EP_UA_MSG_HEL = 0x4c4548, /* "HEL" */
    EP_UA_MSG_ACK = 0x4b4341, /* "ACK" */
    EP_UA_MSG_ERR = 0x525245, /* "ERR" */
    EP_UA_MSG_RHE = 0x454852, /* "RHE" */
    EP_UA_MSG_OPN = 0x4e504f, /* "OPN" */
    EP_UA_MSG_MSG = 0x47534d, /* "MSG" */
    EP_UA_MSG_CLO = 0x4f4c43, /* "CLO" */
};

#define EP_UA_HDR_LEN 8u
#define EP_UA_MAX_URL 4096u /* EndpointUrl / ServerUri limit (7.1.2.3) */
#define EP_UA_MAX_REASON 4096u

typedef struct ep_ua__hdr {
    uint32_t type; /* EP_UA_MSG_* */
    uint8_t chunk; /* 'F', 'C' or 'A' ('F' for HEL/ACK/ERR/RHE) */
    uint32_t size; /* whole message including the header */
} ep_ua__hdr;

typedef struct ep_ua__hello {
    uint32_t version;
    uint32_t recv_buffer;
    uint32_t send_buffer;
    uint32_t max_message;
    uint32_t max_chunks;
    ep_ua_string url; /* Hello: EndpointUrl; unused in Acknowledge */
} ep_ua__hello;

typedef struct ep_ua__error {
    ep_ua_status status;
    ep_ua_string reason;
} ep_ua__error;

typedef struct ep_ua__rhello {
    ep_ua_string server_uri;
    ep_ua_string url;
} ep_ua__rhello;

/* ep_ua__hdr_parse reads the header from p[0..n). Returns EP_EOK,
 * EP_ENEEDMORE (n < 8), EP_EMALFORMED (unknown type, chunk type not valid
 * for the type, size < 8 or below the type's minimum). */
ep_err ep_ua__hdr_parse(const uint8_t *p, size_t n, ep_ua__hdr *h);

/* Encoders append a whole message (header included) to out.
 * Errors: EP_EINVAL (string too long), EP_ENOMEM, EP_ETOOBIG. */
ep_err ep_ua__hello_encode(ep_buf *out, const ep_ua__hello *h);
ep_err ep_ua__ack_encode(ep_buf *out, const ep_ua__hello *a);
ep_err ep_ua__error_encode(ep_buf *out, const ep_ua__error *e);
ep_err ep_ua__rhello_encode(ep_buf *out, const ep_ua__rhello *r);

/* Decoders read one whole message p[0..n) (header included, n equal to
 * the header size). Strings borrow from p. Returns EP_EOK or
 * EP_EMALFORMED (wrong type, truncated, trailing bytes, string longer than
 * EP_UA_MAX_URL/EP_UA_MAX_REASON). */
ep_err ep_ua__hello_decode(const uint8_t *p, size_t n, ep_ua__hello *h);
ep_err ep_ua__ack_decode(const uint8_t *p, size_t n, ep_ua__hello *a);
ep_err ep_ua__error_decode(const uint8_t *p, size_t n, ep_ua__error *e);
ep_err ep_ua__rhello_decode(const uint8_t *p, size_t n, ep_ua__rhello *r);

/* Little-endian helpers. */
static inline uint32_t ep_ua__rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void ep_ua__wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

#endif
