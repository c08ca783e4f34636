/*
 * packet.h - MQTT 3.1.1 (protocol level 4) and 5.0 (level 5) codec.
 *
 * Pure and allocation-free: bytes in, structs out (decode); structs in, bytes
 * out (encode, appended to an ep_buf or written into caller memory).
 *
 * Zero-copy decode. Every string or binary field of a decoded packet is an
 * ep_mqtt_slice pointing INTO the input bytes. The decoded struct borrows the
 * input: it is valid only while the input bytes stay alive and unmodified.
 * Nothing in this module keeps a pointer after a call returns.
 *
 * Threads: every function is reentrant and touches only its arguments; any
 * thread may call any function concurrently on distinct objects.
 *
 * Errors. Decoders return an ep_err class and, through rc_out, the MQTT v5
 * reason code the broker should put in CONNACK/DISCONNECT (or, for level 4,
 * map with ep_mqtt_rc_to_v3_connack()):
 *   EP_EMALFORMED  packet cannot be parsed (rc 0x81 Malformed Packet)
 *   EP_EUTF8       ill-formed UTF-8 or U+0000 in a string (rc 0x81)
 *   EP_EPROTO      parsed but not allowed (rc 0x82 Protocol Error, or a more
 *                  specific code: 0x8F Topic Filter invalid, 0x90 Topic Name
 *                  invalid, 0x94 Topic Alias invalid, 0x99 Payload format
 *                  invalid)
 *   EP_EUNSUPPORTED CONNECT with a protocol name/level other than MQTT 4/5
 *                  (rc 0x84 Unsupported Protocol Version)
 *   EP_ETOOBIG     larger than the allowed maximum packet size (rc 0x95)
 *   EP_ENEEDMORE   (framing only) the packet is not complete yet
 *   EP_EINVAL      bad argument from the caller (NULL, unknown version)
 * On any failure the output struct is cleared (zeroed), never half-filled.
 *
 * Where the spec requires a rejection but names no reason code, the decoder
 * picks: wildcard or empty Will/PUBLISH topic -> 0x90 Topic Name invalid
 * (empty PUBLISH topic without alias -> 0x82); invalid topic filter syntax
 * incl. bad "$share/" -> 0x8F Topic Filter invalid; DUP with QoS 0 -> 0x82;
 * unassigned reason code in an ack -> 0x82; 3.1.1 empty ClientId without
 * CleanSession -> 0x85 (maps to 3.1.1 return code 2). A Remaining Length or
 * property identifier that is not minimally encoded is malformed in both
 * versions (MQTT-1.5.5-1).
 *
 * What the decoder does NOT check, because it needs connection state (the
 * broker/client must): topic alias against the negotiated maximum and alias
 * mapping, Subscription Identifier present in a client-to-server PUBLISH,
 * receive maximum, packet identifiers in use, a second CONNECT, AUTH without
 * an authentication method, packet size against max when not framed by
 * ep_mqtt_packet_frame.
 */
#ifndef EP_CODEC_MQTT_PACKET_H
#define EP_CODEC_MQTT_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* ------------------------------------------------------------------------ */
/* Basic types                                                               */

/* ep_mqtt_slice is a borrowed byte range: never owned, never NUL-terminated. */
typedef struct ep_mqtt_slice {
    const uint8_t *p;
    uint32_t len;
} ep_mqtt_slice;

/* EP_MQTT_STR makes a slice from a string literal (no terminating NUL). */
#define EP_MQTT_STR(lit) ((ep_mqtt_slice){(const uint8_t *)(lit), (uint32_t)(sizeof(lit) - 1)})

/* ep_mqtt_slice_make makes a slice from pointer and length (len < 2^32). */
static inline ep_mqtt_slice ep_mqtt_slice_make(const void *p, size_t len)
{
    ep_mqtt_slice s = {(const uint8_t *)p, (uint32_t)len};
    return s;
}

/* ep_mqtt_slice_eq compares contents. */
bool ep_mqtt_slice_eq(ep_mqtt_slice a, ep_mqtt_slice b);

#define EP_MQTT_V311 4
#define EP_MQTT_V5 5

/* Largest Remaining Length a Variable Byte Integer can carry, and the largest
 * whole packet (1 type byte + 4 length bytes + body). */
#define EP_MQTT_MAX_REMAINING 268435455u
#define EP_MQTT_MAX_PACKET (EP_MQTT_MAX_REMAINING + 5u)
/* Largest Subscription Identifier (Variable Byte Integer range). */
#define EP_MQTT_MAX_SUB_ID 268435455u

typedef enum ep_mqtt_type {
    EP_MQTT_CONNECT = 1,
    EP_MQTT_CONNACK = 2,
    EP_MQTT_PUBLISH = 3,
    EP_MQTT_PUBACK = 4,
    EP_MQTT_PUBREC = 5,
    EP_MQTT_PUBREL = 6,
    EP_MQTT_PUBCOMP = 7,
    EP_MQTT_SUBSCRIBE = 8,
    EP_MQTT_SUBACK = 9,
    EP_MQTT_UNSUBSCRIBE = 10,
    EP_MQTT_UNSUBACK = 11,
    EP_MQTT_PINGREQ = 12,
    EP_MQTT_PINGRESP = 13,
    EP_MQTT_DISCONNECT = 14,
    EP_MQTT_AUTH = 15 /* MQTT 5 only */
} ep_mqtt_type;

/* ep_mqtt_type_name returns "CONNECT", ..., or "UNKNOWN". Static string. */
const char *ep_mqtt_type_name(int type);

/* ------------------------------------------------------------------------ */
/* Reason codes (reason.c)                                                   */

/* ep_mqtt_rc is an MQTT v5 reason code. It is NOT an ep_err. 0x00 means
 * Success / Normal disconnection / Granted QoS 0 depending on the packet. */
typedef enum ep_mqtt_rc {
    EP_MQTT_RC_SUCCESS = 0x00,
    EP_MQTT_RC_NORMAL_DISCONNECTION = 0x00,
    EP_MQTT_RC_GRANTED_QOS0 = 0x00,
    EP_MQTT_RC_GRANTED_QOS1 = 0x01,
    EP_MQTT_RC_GRANTED_QOS2 = 0x02,
    EP_MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
    EP_MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    EP_MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    EP_MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
    EP_MQTT_RC_REAUTHENTICATE = 0x19,
    EP_MQTT_RC_UNSPECIFIED_ERROR = 0x80,
    EP_MQTT_RC_MALFORMED_PACKET = 0x81,
    EP_MQTT_RC_PROTOCOL_ERROR = 0x82,
    EP_MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR = 0x83,
    EP_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
    EP_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID = 0x85,
    EP_MQTT_RC_BAD_USER_NAME_OR_PASSWORD = 0x86,
    EP_MQTT_RC_NOT_AUTHORIZED = 0x87,
    EP_MQTT_RC_SERVER_UNAVAILABLE = 0x88,
    EP_MQTT_RC_SERVER_BUSY = 0x89,
    EP_MQTT_RC_BANNED = 0x8A,
    EP_MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
    EP_MQTT_RC_BAD_AUTHENTICATION_METHOD = 0x8C,
    EP_MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    EP_MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
    EP_MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
    EP_MQTT_RC_TOPIC_NAME_INVALID = 0x90,
    EP_MQTT_RC_PACKET_IDENTIFIER_IN_USE = 0x91,
    EP_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND = 0x92,
    EP_MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
    EP_MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
    EP_MQTT_RC_PACKET_TOO_LARGE = 0x95,
    EP_MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
    EP_MQTT_RC_QUOTA_EXCEEDED = 0x97,
    EP_MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
    EP_MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    EP_MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    EP_MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
    EP_MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
    EP_MQTT_RC_SERVER_MOVED = 0x9D,
    EP_MQTT_RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E,
    EP_MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    EP_MQTT_RC_MAXIMUM_CONNECT_TIME = 0xA0,
    EP_MQTT_RC_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1,
    EP_MQTT_RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2
} ep_mqtt_rc;

/* MQTT 3.1.1 CONNACK return codes. */
enum {
    EP_MQTT_V3_CONNACK_ACCEPTED = 0,
    EP_MQTT_V3_CONNACK_BAD_PROTOCOL_VERSION = 1,
    EP_MQTT_V3_CONNACK_IDENTIFIER_REJECTED = 2,
    EP_MQTT_V3_CONNACK_SERVER_UNAVAILABLE = 3,
    EP_MQTT_V3_CONNACK_BAD_USERNAME_OR_PASSWORD = 4,
    EP_MQTT_V3_CONNACK_NOT_AUTHORIZED = 5
};

/* ep_mqtt_rc_name returns the spec's name ("Malformed Packet"), "Success" for
 * 0x00, or NULL for an unassigned value. Static string, any thread. */
const char *ep_mqtt_rc_name(int rc);
/* ep_mqtt_rc_valid_for reports whether rc is a reason code the v5 spec allows
 * in a packet of the given type (CONNACK, PUBACK..PUBCOMP, SUBACK, UNSUBACK,
 * DISCONNECT, AUTH). False for other types. */
bool ep_mqtt_rc_valid_for(int rc, ep_mqtt_type type);
/* ep_mqtt_rc_to_v3_connack maps a v5 CONNACK reason code to the closest
 * 3.1.1 return code (0x84 -> 1, 0x85 -> 2, 0x86 -> 4, 0x87/0x8A/0x8C -> 5,
 * success -> 0, anything else -> 3 Server unavailable). */
uint8_t ep_mqtt_rc_to_v3_connack(ep_mqtt_rc rc);
/* ep_mqtt_rc_from_v3_connack maps a 3.1.1 return code 0..5 to the v5 code
 * (1 -> 0x84, 2 -> 0x85, 3 -> 0x88, 4 -> 0x86, 5 -> 0x87). Returns
 * EP_EMALFORMED for 6..255. */
ep_err ep_mqtt_rc_from_v3_connack(uint8_t code, ep_mqtt_rc *rc_out);
/* ep_mqtt_rc_from_err gives the default reason code for an ep_err class
 * (EP_EMALFORMED/EP_EUTF8 -> 0x81, EP_EPROTO -> 0x82, EP_EUNSUPPORTED -> 0x84,
 * EP_ETOOBIG -> 0x95, EP_EOK -> 0x00, others -> 0x80). */
ep_mqtt_rc ep_mqtt_rc_from_err(ep_err err);

/* ------------------------------------------------------------------------ */
/* Properties (props.c), MQTT 5 only                                          */

typedef enum ep_mqtt_prop_id {
    EP_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR = 0x01,     /* byte    PUBLISH, will */
    EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL = 0x02,      /* u32     PUBLISH, will */
    EP_MQTT_PROP_CONTENT_TYPE = 0x03,                 /* utf8    PUBLISH, will */
    EP_MQTT_PROP_RESPONSE_TOPIC = 0x08,               /* utf8    PUBLISH, will */
    EP_MQTT_PROP_CORRELATION_DATA = 0x09,             /* binary  PUBLISH, will */
    EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER = 0x0B,      /* varint  PUBLISH*, SUBSCRIBE */
    EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL = 0x11,      /* u32     CONNECT, CONNACK, DISCONNECT */
    EP_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER = 0x12,   /* utf8    CONNACK */
    EP_MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,            /* u16     CONNACK */
    EP_MQTT_PROP_AUTHENTICATION_METHOD = 0x15,        /* utf8    CONNECT, CONNACK, AUTH */
    EP_MQTT_PROP_AUTHENTICATION_DATA = 0x16,          /* binary  CONNECT, CONNACK, AUTH */
    EP_MQTT_PROP_REQUEST_PROBLEM_INFORMATION = 0x17,  /* byte    CONNECT */
    EP_MQTT_PROP_WILL_DELAY_INTERVAL = 0x18,          /* u32     will */
    EP_MQTT_PROP_REQUEST_RESPONSE_INFORMATION = 0x19, /* byte   CONNECT */
    EP_MQTT_PROP_RESPONSE_INFORMATION = 0x1A,         /* utf8    CONNACK */
    EP_MQTT_PROP_SERVER_REFERENCE = 0x1C,             /* utf8    CONNACK, DISCONNECT */
    EP_MQTT_PROP_REASON_STRING =
        0x1F, /* utf8    acks, SUBACK, UNSUBACK, DISCONNECT, AUTH, CONNACK */
    EP_MQTT_PROP_RECEIVE_MAXIMUM = 0x21,                   /* u16     CONNECT, CONNACK */
    EP_MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,               /* u16     CONNECT, CONNACK */
    EP_MQTT_PROP_TOPIC_ALIAS = 0x23,                       /* u16     PUBLISH */
    EP_MQTT_PROP_MAXIMUM_QOS = 0x24,                       /* byte    CONNACK */
    EP_MQTT_PROP_RETAIN_AVAILABLE = 0x25,                  /* byte    CONNACK */
    EP_MQTT_PROP_USER_PROPERTY = 0x26,                     /* pair*   all but PINGs */
    EP_MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,               /* u32     CONNECT, CONNACK */
    EP_MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28,   /* byte CONNACK */
    EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29, /* byte CONNACK */
    EP_MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE = 0x2A      /* byte  CONNACK */
} ep_mqtt_prop_id;
/* (* = repeatable there; Subscription Identifier only in PUBLISH.) */

/* Presence bit of property id in ep_mqtt_props.present. */
#define EP_MQTT_PROP_BIT(id) (UINT64_C(1) << (id))
#define EP_MQTT_PROPS_HAS(props, id) (((props)->present & EP_MQTT_PROP_BIT(id)) != 0)
#define EP_MQTT_PROPS_SET(props, id) ((props)->present |= EP_MQTT_PROP_BIT(id))

/* A User Property name/value pair (both UTF-8 strings). */
typedef struct ep_mqtt_user_prop {
    ep_mqtt_slice name;
    ep_mqtt_slice value;
} ep_mqtt_user_prop;

/*
 * ep_mqtt_props - the properties of one packet (or of a Will).
 *
 * Decode fills: `present` (one bit per property id seen, see
 * EP_MQTT_PROPS_HAS), the scalar/string fields, the counts, and `raw` (the
 * property bytes after the Property Length, in wire order). User Properties
 * and Subscription Identifiers are iterated from `raw` in order with
 * ep_mqtt_props_user_next / ep_mqtt_props_sub_id_next. For a Subscription
 * Identifier, `subscription_id` holds the first one.
 *
 * Encode writes: every non-repeatable property whose bit is set in `present`
 * (ascending id order, from its field); then Subscription Identifiers: those
 * in `raw` followed by sub_ids[0..n_sub_ids), or, when both are empty and the
 * bit is set, `subscription_id`; then User Properties: those in `raw` (in
 * order, byte-for-byte) followed by user[0..n_user). Only User Property and
 * Subscription Identifier entries are taken from `raw`, so a decoded props
 * struct re-encodes to the same property set. A zeroed struct means "no
 * properties". All pointers are borrowed for the duration of the call.
 */
typedef struct ep_mqtt_props {
    uint64_t present;
    ep_mqtt_slice raw;

    uint32_t message_expiry_interval;
    uint32_t subscription_id;
    uint32_t session_expiry_interval;
    uint32_t will_delay_interval;
    uint32_t maximum_packet_size;
    uint16_t server_keep_alive;
    uint16_t receive_maximum;
    uint16_t topic_alias_maximum;
    uint16_t topic_alias;
    uint8_t payload_format_indicator;
    uint8_t request_problem_information;
    uint8_t request_response_information;
    uint8_t maximum_qos;
    uint8_t retain_available;
    uint8_t wildcard_subscription_available;
    uint8_t subscription_identifier_available;
    uint8_t shared_subscription_available;

    ep_mqtt_slice content_type;
    ep_mqtt_slice response_topic;
    ep_mqtt_slice correlation_data;
    ep_mqtt_slice assigned_client_identifier;
    ep_mqtt_slice authentication_method;
    ep_mqtt_slice authentication_data;
    ep_mqtt_slice response_information;
    ep_mqtt_slice server_reference;
    ep_mqtt_slice reason_string;

    uint32_t user_count;   /* decode: number of User Properties in raw */
    uint32_t sub_id_count; /* decode: number of Subscription Identifiers */

    /* Encode-only extras (ignored and left zero by decode). */
    const ep_mqtt_user_prop *user;
    uint32_t n_user;
    const uint32_t *sub_ids;
    uint32_t n_sub_ids;
} ep_mqtt_props;

/* Where a property set sits, for the "allowed here" table. */
typedef enum ep_mqtt_props_ctx {
    EP_MQTT_PROPS_CTX_WILL = 0 /* Will Properties in CONNECT */
    /* otherwise the ep_mqtt_type of the packet (1..15) */
} ep_mqtt_props_ctx;

/* ep_mqtt_prop_allowed reports whether property id may appear in ctx (an
 * ep_mqtt_type, or EP_MQTT_PROPS_CTX_WILL). */
bool ep_mqtt_prop_allowed(int id, int ctx);
/* ep_mqtt_prop_name returns "Topic Alias" etc., or NULL for unknown ids. */
const char *ep_mqtt_prop_name(int id);

/* ep_mqtt_props_user_next iterates User Properties of a decoded props set in
 * wire order. Start with *iter = 0; returns true and fills *out while there is
 * another one. Borrowed pointers into props->raw. */
bool ep_mqtt_props_user_next(const ep_mqtt_props *props, size_t *iter, ep_mqtt_user_prop *out);
/* ep_mqtt_props_sub_id_next iterates Subscription Identifiers likewise. */
bool ep_mqtt_props_sub_id_next(const ep_mqtt_props *props, size_t *iter, uint32_t *out);

/* ep_mqtt_props_filter copies well-formed property bytes `raw` (e.g. a
 * decoded props->raw) to `out`, dropping every property whose bit is set in
 * drop_mask (EP_MQTT_PROP_BIT(id) | ...), order kept. `out` must have room
 * for raw.len bytes; it may not overlap raw. Returns the bytes written. Used
 * once per incoming PUBLISH to build the forwardable property block
 * (drop Topic Alias, Subscription Identifier, Message Expiry Interval). */
size_t ep_mqtt_props_filter(ep_mqtt_slice raw, uint64_t drop_mask, uint8_t *out);

/* ep_mqtt_props_size returns the encoded size of props, without the Property
 * Length prefix (what ep_mqtt_props_encode appends after it), or SIZE_MAX
 * when props cannot be encoded (see ep_mqtt_props_encode). */
size_t ep_mqtt_props_size(const ep_mqtt_props *props);
/* ep_mqtt_props_encode appends Property Length + properties to b.
 * Returns EP_EOK, EP_ENOMEM/EP_ETOOBIG from the buffer, EP_EINVAL for a value
 * that cannot be encoded (string > 65535 bytes, sub id 0 or too large). */
ep_err ep_mqtt_props_encode(ep_buf *b, const ep_mqtt_props *props);

/* ------------------------------------------------------------------------ */
/* Packets                                                                   */

typedef struct ep_mqtt_will {
    ep_mqtt_props props; /* v5 Will Properties */
    ep_mqtt_slice topic;
    ep_mqtt_slice payload;
    uint8_t qos;
    bool retain;
} ep_mqtt_will;

typedef struct ep_mqtt_connect {
    uint8_t protocol_version; /* 4 or 5 (encode: 0 = the version argument) */
    bool clean_start;         /* "Clean Session" in 3.1.1 */
    bool has_will;
    bool has_username;
    bool has_password;
    uint16_t keep_alive;
    ep_mqtt_props props;
    ep_mqtt_slice client_id; /* may be empty */
    ep_mqtt_will will;       /* valid when has_will */
    ep_mqtt_slice username;  /* valid when has_username */
    ep_mqtt_slice password;  /* valid when has_password (binary) */
} ep_mqtt_connect;

typedef struct ep_mqtt_connack {
    bool session_present;
    /* Always a v5 reason code, also for 3.1.1: decode maps the 3.1.1 return
     * code, encode maps back with ep_mqtt_rc_to_v3_connack(). */
    ep_mqtt_rc rc;
    ep_mqtt_props props;
} ep_mqtt_connack;

typedef struct ep_mqtt_publish {
    uint8_t qos; /* 0..2 */
    bool dup;
    bool retain;
    ep_mqtt_slice topic; /* may be empty in v5 when props carry a Topic Alias */
    uint16_t packet_id;  /* non-zero iff qos > 0 */
    ep_mqtt_props props;
    ep_mqtt_slice payload;
} ep_mqtt_publish;

/* PUBACK, PUBREC, PUBREL, PUBCOMP. rc is 0 for 3.1.1. On encode (v5) the
 * short forms are used: no rc/props when rc is 0 and props are empty. */
typedef struct ep_mqtt_ack {
    uint16_t packet_id;
    ep_mqtt_rc rc;
    ep_mqtt_props props;
} ep_mqtt_ack;

/* Subscription options of one SUBSCRIBE entry. */
typedef struct ep_mqtt_sub {
    ep_mqtt_slice filter;     /* as on the wire, including any $share/ prefix */
    uint8_t qos;              /* maximum QoS 0..2 */
    bool no_local;            /* v5 */
    bool retain_as_published; /* v5 */
    uint8_t retain_handling;  /* v5, 0..2 */
    /* Decode-filled (ignored by encode): shared subscription split of
     * `filter`; share_group.p == NULL when not shared. */
    ep_mqtt_slice share_group;
    ep_mqtt_slice share_filter; /* the filter to match (== filter if not shared) */
} ep_mqtt_sub;

/* SUBSCRIBE. Decode fills `list` (raw payload) and `count`; iterate entries
 * with ep_mqtt_subscribe_next. Encode writes subs[0..n_subs) when subs is
 * non-NULL, else copies `list` verbatim (so a decoded packet re-encodes). */
typedef struct ep_mqtt_subscribe {
    uint16_t packet_id;
    ep_mqtt_props props;
    ep_mqtt_slice list;
    uint32_t count;
    const ep_mqtt_sub *subs;
    uint32_t n_subs;
} ep_mqtt_subscribe;

/* SUBACK and UNSUBACK: one reason code byte per topic filter in `codes`.
 * 3.1.1 SUBACK codes are 0x00, 0x01, 0x02, 0x80 (encode maps any v5 error
 * code >= 0x80 to 0x80); a 3.1.1 UNSUBACK has no payload (codes ignored on
 * encode, empty on decode). */
typedef struct ep_mqtt_suback {
    uint16_t packet_id;
    ep_mqtt_props props;
    ep_mqtt_slice codes;
} ep_mqtt_suback;

/* UNSUBSCRIBE. Like SUBSCRIBE: decode fills list/count (iterate with
 * ep_mqtt_unsubscribe_next), encode writes filters[0..n_filters) or `list`. */
typedef struct ep_mqtt_unsubscribe {
    uint16_t packet_id;
    ep_mqtt_props props;
    ep_mqtt_slice list;
    uint32_t count;
    const ep_mqtt_slice *filters;
    uint32_t n_filters;
} ep_mqtt_unsubscribe;

/* DISCONNECT and AUTH (v5; a 3.1.1 DISCONNECT has neither field). Encode uses
 * the short form (no rc, no props) when rc is 0 and props are empty. */
typedef struct ep_mqtt_disconnect {
    ep_mqtt_rc rc;
    ep_mqtt_props props;
} ep_mqtt_disconnect;

typedef ep_mqtt_disconnect ep_mqtt_auth;

/* ep_mqtt_packet - tagged union over all packet types. PINGREQ and PINGRESP
 * have no fields. `flags` is the low nibble of the fixed header as decoded
 * (encode computes it and ignores this field). */
typedef struct ep_mqtt_packet {
    ep_mqtt_type type;
    uint8_t flags;
    union {
        ep_mqtt_connect connect;
        ep_mqtt_connack connack;
        ep_mqtt_publish publish;
        ep_mqtt_ack ack; /* PUBACK, PUBREC, PUBREL, PUBCOMP */
        ep_mqtt_subscribe subscribe;
        ep_mqtt_suback suback; /* SUBACK, UNSUBACK */
        ep_mqtt_unsubscribe unsubscribe;
        ep_mqtt_disconnect disconnect;
        ep_mqtt_auth auth;
    };
} ep_mqtt_packet;

/* ------------------------------------------------------------------------ */
/* Framing and decoding (decode.c)                                           */

/*
 * ep_mqtt_packet_frame looks at the start of a stream buffer p[0..n).
 * max_packet is the largest whole packet accepted (0 = protocol maximum).
 * Returns:
 *   EP_EOK        a whole packet is present: *hdr_len = fixed header size
 *                 (2..5), *total_len = whole packet size (<= n)
 *   EP_ENEEDMORE  not complete yet (outputs untouched); read more
 *   EP_EMALFORMED Remaining Length not a valid Variable Byte Integer (more
 *                 than 4 bytes or not minimally encoded, MQTT-1.5.5-1), or
 *                 packet type 0
 *   EP_ETOOBIG    the Remaining Length claims a packet above max_packet;
 *                 detected from the fixed header alone, before the body
 *   EP_EINVAL     NULL outputs
 * Borrows p. hdr_len/total_len are written only on EP_EOK.
 */
ep_err ep_mqtt_packet_frame(const uint8_t *p, size_t n, uint32_t max_packet, size_t *hdr_len,
                            size_t *total_len);

/*
 * ep_mqtt_packet_decode decodes one whole packet pkt[0..len) (as delimited by
 * ep_mqtt_packet_frame: fixed header included, len must equal its total_len).
 *   version  4 or 5 for the negotiated protocol; 0 when the connection has
 *            no version yet: then only CONNECT is accepted (anything else is
 *            EP_EPROTO/0x82). A CONNECT is always decoded with the level it
 *            carries, whatever `version` says.
 *   out      filled on EP_EOK; zeroed on failure. Borrows pkt.
 *   rc_out   optional (NULL ok): EP_MQTT_RC_SUCCESS on EP_EOK, else the
 *            reason code the spec mandates for the failure (see top).
 * Returns EP_EOK, EP_EMALFORMED, EP_EUTF8, EP_EPROTO, EP_EUNSUPPORTED,
 * EP_EINVAL (bad arguments or version not 0/4/5).
 * Never allocates.
 */
ep_err ep_mqtt_packet_decode(const uint8_t *pkt, size_t len, uint8_t version, ep_mqtt_packet *out,
                             ep_mqtt_rc *rc_out);

/* ep_mqtt_connect_peek reads the protocol name and level of a framed CONNECT
 * without validating the rest, so a broker can pick the CONNACK format for a
 * CONNECT that ep_mqtt_packet_decode rejected with EP_EUNSUPPORTED (3.1.1
 * CONNACK 0x01 for level <= 4, v5 CONNACK 0x84 otherwise).
 * Returns EP_EOK, EP_EMALFORMED (not a CONNECT / too short). */
ep_err ep_mqtt_connect_peek(const uint8_t *pkt, size_t len, ep_mqtt_slice *name, uint8_t *level);

/* ep_mqtt_subscribe_next iterates the entries of a decoded SUBSCRIBE (which
 * were validated by decode). Start with *iter = 0. Returns true and fills
 * *out while there is another entry. */
bool ep_mqtt_subscribe_next(const ep_mqtt_subscribe *s, size_t *iter, ep_mqtt_sub *out);
/* ep_mqtt_unsubscribe_next iterates the topic filters of an UNSUBSCRIBE. */
bool ep_mqtt_unsubscribe_next(const ep_mqtt_unsubscribe *u, size_t *iter, ep_mqtt_slice *filter);

/* ep_mqtt_payload_check validates a PUBLISH (or Will) payload against its
 * Payload Format Indicator: when it is 1 the payload must be well-formed
 * UTF-8 per RFC 3629 (U+0000 allowed, surrogates and overlongs not).
 * Optional per spec, so decode does not do it.
 * Returns EP_EOK or EP_EPROTO with *rc_out = 0x99 Payload format invalid. */
ep_err ep_mqtt_payload_check(const ep_mqtt_props *props, ep_mqtt_slice payload, ep_mqtt_rc *rc_out);

/* ep_mqtt_packet_eq reports whether a and b carry the same packet: same type
 * and fields, slices compared by content, properties compared by value with
 * User Properties and Subscription Identifiers compared as ordered lists
 * whether they sit in `raw` or in the encode-only arrays, SUBSCRIBE and
 * UNSUBSCRIBE entries compared whether given as `list` or as arrays.
 * `flags` is ignored. For tests, fuzzing and clients. Borrows both. */
bool ep_mqtt_packet_eq(const ep_mqtt_packet *a, const ep_mqtt_packet *b);
/* ep_mqtt_props_eq compares two property sets the same way. */
bool ep_mqtt_props_eq(const ep_mqtt_props *a, const ep_mqtt_props *b);

/* ------------------------------------------------------------------------ */
/* Encoding (encode.c)                                                       */

/*
 * ep_mqtt_packet_encode appends the wire form of p for protocol `version`
 * (4 or 5) to b. max_packet is the peer's Maximum Packet Size (0 = protocol
 * maximum). When the packet does not fit and it is not CONNECT or PUBLISH,
 * Reason String and User Properties are dropped (as the v5 spec requires)
 * and the encode is retried before giving up.
 * Returns EP_EOK; EP_ETOOBIG (larger than max_packet, or than b's limit);
 * EP_EINVAL (field out of range: QoS > 2, packet id 0 where required,
 * string > 65535, AUTH in 3.1.1, a v5 property the packet type does not
 * allow, several Subscription Identifiers outside PUBLISH, ...);
 * EP_ENOMEM. On failure b is unchanged. String contents are not validated
 * (callers encode what they decoded or built from validated input).
 * Borrows p and everything it points to.
 */
ep_err ep_mqtt_packet_encode(ep_buf *b, const ep_mqtt_packet *p, uint8_t version,
                             uint32_t max_packet);

/*
 * PUBLISH fast path for fan-out: the broker writes this header into its own
 * memory and then sends the shared payload bytes after it (iovec), so the
 * payload is never copied per subscriber.
 */
typedef struct ep_mqtt_publish_hdr {
    uint8_t qos;
    bool dup;
    bool retain;
    ep_mqtt_slice topic; /* may be empty (v5) when topic_alias != 0 */
    uint16_t packet_id;  /* required iff qos > 0 */
    uint32_t payload_len;
    /* v5 only (ignored for 3.1.1): */
    ep_mqtt_slice props;  /* pre-encoded property bytes, no length prefix,
                           * e.g. from ep_mqtt_props_filter; copied verbatim
                           * after the overrides below, so it must not hold
                           * Topic Alias, Subscription Identifier or Message
                           * Expiry Interval itself */
    uint16_t topic_alias; /* 0 = none */
    bool has_message_expiry;
    uint32_t message_expiry; /* remaining lifetime, written when has_message_expiry */
    const uint32_t *sub_ids; /* Subscription Identifiers to add */
    uint32_t n_sub_ids;
} ep_mqtt_publish_hdr;

/* ep_mqtt_publish_header_size returns the number of bytes
 * ep_mqtt_publish_header_write will write (whole packet minus payload), or 0
 * when h is not encodable (see below). */
size_t ep_mqtt_publish_header_size(const ep_mqtt_publish_hdr *h, uint8_t version);
/* ep_mqtt_publish_header_write writes fixed header, topic, packet id and
 * (v5) properties into out[0..cap). *written gets the header length.
 * Returns EP_EOK; EP_ETOOBIG when header + payload exceeds max_packet (0 =
 * protocol maximum) - the caller must then drop the message for this peer;
 * EP_EINVAL for bad fields (QoS > 2, packet id 0 with QoS > 0, empty topic
 * without alias, sub id 0) or when cap is too small. Borrows h. */
ep_err ep_mqtt_publish_header_write(const ep_mqtt_publish_hdr *h, uint8_t version,
                                    uint32_t max_packet, uint8_t *out, size_t cap, size_t *written);

/* ep_mqtt_varint_size returns 1..4 for v <= EP_MQTT_MAX_REMAINING, else 0. */
size_t ep_mqtt_varint_size(uint32_t v);
/* ep_mqtt_varint_write writes v minimally into out (room for 4 bytes);
 * returns the bytes written, 0 when v is out of range. */
size_t ep_mqtt_varint_write(uint8_t *out, uint32_t v);

/* ------------------------------------------------------------------------ */
/* Topics (topic.c)                                                          */

/* ep_mqtt_topic_name_valid: a PUBLISH Topic Name - 1..65535 bytes of valid
 * MQTT UTF-8 (ep_mqtt_utf8_check), no '+' or '#'. */
bool ep_mqtt_topic_name_valid(ep_mqtt_slice topic);
/* ep_mqtt_topic_filter_valid: a SUBSCRIBE/UNSUBSCRIBE Topic Filter -
 * 1..65535 bytes of valid MQTT UTF-8; '+' alone in its level; '#' alone in
 * the last level. A filter starting with "$share/" must also be a valid
 * shared subscription (ep_mqtt_topic_share_split). */
bool ep_mqtt_topic_filter_valid(ep_mqtt_slice filter);
/* ep_mqtt_topic_match reports whether topic name `topic` matches the
 * (non-shared, valid) filter. Topics starting with '$' are not matched by a
 * filter whose first level is '+' or '#'. Byte comparison, no allocation. */
bool ep_mqtt_topic_match(ep_mqtt_slice filter, ep_mqtt_slice topic);
/* ep_mqtt_topic_share_split splits "$share/{group}/{filter}".
 * Returns EP_EOK with *group and *filter set (borrowed from f);
 * EP_ENOTFOUND when f does not start with "$share/" (outputs untouched);
 * EP_EPROTO when it does but the group is empty or contains '+' or '#', or
 * the filter is missing/empty/invalid. */
ep_err ep_mqtt_topic_share_split(ep_mqtt_slice f, ep_mqtt_slice *group, ep_mqtt_slice *filter);
/* ep_mqtt_topic_levels returns the number of levels ("a/b" -> 2, "/" -> 2,
 * "" -> 1), for per-topic depth limits. */
uint32_t ep_mqtt_topic_levels(ep_mqtt_slice topic);

/* ------------------------------------------------------------------------ */
/* UTF-8 (utf8.c)                                                            */

/* ep_mqtt_utf8_check validates an MQTT UTF-8 string as the decoder does:
 * well-formed UTF-8 (no overlongs, no code points above U+10FFFF), no
 * surrogates U+D800..U+DFFF, no U+0000. Returns EP_EOK or EP_EUTF8. */
ep_err ep_mqtt_utf8_check(ep_mqtt_slice s);
/* ep_mqtt_utf8_check_strict additionally rejects what the spec says SHOULD
 * NOT appear: control characters U+0001..U+001F and U+007F..U+009F, and
 * non-characters (U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF). EP_EOK / EP_EUTF8. */
ep_err ep_mqtt_utf8_check_strict(ep_mqtt_slice s);

#endif
