/*
 * binary.h - OPC UA Binary encoding (Part 6, 5.2) of any described type.
 *
 * One generic encoder and one generic decoder walk the descriptor tables of
 * gen/types.h; the 25 built-in types have hand-written coders. This is the
 * entry point for the transport (message bodies), client and server:
 *
 *   ep_ua_arena arena;  ep_ua_arena_init(&arena, 64 << 20, NULL);
 *   ep_ua_read_request req;  ep_ua_status st;  size_t pos = 0;
 *   if (ep_ua_decode(p, n, &pos, EP_UA_T(ReadRequest), &req, &arena,
 *                    NULL, &st) == EP_EOK) ...
 *   ep_ua_arena_fini(&arena);   // releases req and everything in it
 *
 * Decoding never trusts a length: the message size is checked first, every
 * string and array length is checked against the limits and against the
 * bytes that remain (an array of N elements needs N * min_wire bytes)
 * before anything is allocated, and Variant, ExtensionObject, DiagnosticInfo
 * and structure nesting is bounded by max_depth. Failures return an ep_err
 * and, alongside, the OPC UA status code to report to the peer.
 *
 * Pure functions: no logging, no global state; any thread may call them
 * with its own buffers and arena.
 */
#ifndef EP_CODEC_OPCUA_BINARY_H
#define EP_CODEC_OPCUA_BINARY_H

#include <stddef.h>
#include <stdint.h>

#include "codec/opcua/arena.h"
#include "codec/opcua/gen/types.h"
#include "core/buf.h"
#include "core/err.h"

#define EP_UA_DEFAULT_MAX_STRING ((size_t)16 << 20) /* bytes */
#define EP_UA_DEFAULT_MAX_ARRAY ((size_t)16 << 20)  /* elements */
#define EP_UA_DEFAULT_MAX_DEPTH 100u
#define EP_UA_DEFAULT_MAX_MESSAGE ((size_t)64 << 20) /* bytes */

/* Decode limits. Zero-initialisable: a 0 field takes the default above. */
typedef struct ep_ua_limits {
    size_t max_string_len;   /* String/ByteString/XmlElement bytes */
    size_t max_array_len;    /* elements of any one array */
    unsigned max_depth;      /* Variant/ExtensionObject/DiagnosticInfo/
                                structure nesting, <= EP_UA_MAX_DEPTH_CAP */
    size_t max_message_size; /* bytes from *pos to n */
} ep_ua_limits;

/* ep_ua_encode appends the binary encoding of value (of type type) to out.
 * value and type are borrowed; out is owned by the caller and grows within
 * its limit. On failure out is restored to its previous length.
 * Returns EP_EOK; EP_EINVAL for a value that cannot be encoded (array length
 * without data, length above INT32_MAX, scalar Variant in a Variant, matrix
 * dimensions not matching the array, structure in a Variant without an
 * encoding id, nesting deeper than EP_UA_MAX_DEPTH_CAP, bad NodeId
 * type); EP_ETOOBIG when out would exceed its limit; EP_ENOMEM. */
ep_err ep_ua_encode(const void *value, const ep_ua_type *type, ep_buf *out);

/* ep_ua_decode decodes one value of type type from p[*pos .. n) into out
 * and advances *pos. Everything the value points to is allocated from arena
 * (borrowed; values stay valid until the arena is cleared, rewound or
 * finished). lim may be NULL for the defaults; st may be NULL.
 * On failure out is zeroed, *pos is unchanged, the arena is rewound, and *st
 * holds the status to report:
 *   EP_EMALFORMED  Bad_DecodingError: truncated input, invalid encoding
 *                  byte, negative length other than -1, a length claim
 *                  larger than the remaining bytes can hold, matrix
 *                  dimensions not matching the array
 *   EP_ETOOBIG     Bad_EncodingLimitsExceeded: a limit of lim or the arena
 *                  limit was exceeded
 *   EP_ENOMEM      Bad_OutOfMemory
 *   EP_EINVAL      Bad_InternalError: invalid arguments or descriptor
 * On success *st is Good. */
ep_err ep_ua_decode(const uint8_t *p, size_t n, size_t *pos, const ep_ua_type *type, void *out,
                    ep_ua_arena *arena, const ep_ua_limits *lim, ep_ua_status *st);

/* ep_ua_message_encode appends a service message: the NodeId of the type's
 * DefaultBinary encoding, then the body. Errors as ep_ua_encode, plus
 * EP_EINVAL when the type has no binary encoding id. */
ep_err ep_ua_message_encode(const void *msg, const ep_ua_type *type, ep_buf *out);

/* ep_ua_message_decode reads the encoding NodeId of a service message,
 * looks the type up and decodes the body into a value allocated from
 * arena. On success *type and *out are set (out valid until the arena is
 * released). On failure *type and *out are untouched and, in addition to
 * the ep_ua_decode errors, EP_EUNSUPPORTED with Bad_ServiceUnsupported is
 * returned when the id is not a known namespace-0 encoding id. */
ep_err ep_ua_message_decode(const uint8_t *p, size_t n, size_t *pos, const ep_ua_type **type,
                            void **out, ep_ua_arena *arena, const ep_ua_limits *lim,
                            ep_ua_status *st);

/* ep_ua_status_from_err maps an ep_err of this codec to the status code a
 * peer should see (encoding side: EP_EINVAL is Bad_EncodingError). */
ep_ua_status ep_ua_status_from_err(ep_err err);

#endif
