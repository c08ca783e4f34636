/*
 * reason.c - MQTT v5 reason codes: names, which packet may carry which code,
 * and the mapping to and from MQTT 3.1.1 CONNACK return codes.
 *
 * Reason codes are a protocol value (ep_mqtt_rc), never an ep_err; the only
 * bridge is ep_mqtt_rc_from_err, which gives the default code for an error
 * class when a decoder did not pick a more specific one.
 */
#include "codec/mqtt/packet.h"

#include <string.h>

/* One row per assigned value; 0x00 and a few others are named per packet in
 * the spec, the table keeps the generic name. */
static const struct {
    uint8_t rc;
    const char *name;
} rc_names[] = {
    {0x00, "Success"},
    {0x01, "Granted QoS 1"},
    {0x02, "Granted QoS 2"},
    {0x04, "Disconnect with Will Message"},
    {0x10, "No matching subscribers"},
    {0x11, "No subscription existed"},
    {0x18, "Continue authentication"},
    {0x19, "Re-authenticate"},
    {0x80, "Unspecified error"},
    {0x81, "Malformed Packet"},
    {0x82, "Protocol Error"},
    {0x83, "Implementation specific error"},
    {0x84, "Unsupported Protocol Version"},
    {0x85, "Client Identifier not valid"},
    {0x86, "Bad User Name or Password"},
    {0x87, "Not authorized"},
    {0x88, "Server unavailable"},
    {0x89, "Server busy"},
    {0x8A, "Banned"},
    {0x8B, "Server shutting down"},
    {0x8C, "Bad authentication method"},
    {0x8D, "Keep Alive timeout"},
    {0x8E, "Session taken over"},
    {0x8F, "Topic Filter invalid"},
    {0x90, "Topic Name invalid"},
    {0x91, "Packet Identifier in use"},
    {0x92, "Packet Identifier not found"},
    {0x93, "Receive Maximum exceeded"},
    {0x94, "Topic Alias invalid"},
    {0x95, "Packet too large"},
    {0x96, "Message rate too high"},
    {0x97, "Quota exceeded"},
    {0x98, "Administrative action"},
    {0x99, "Payload format invalid"},
    {0x9A, "Retain not supported"},
    {0x9B, "QoS not supported"},
    {0x9C, "Use another server"},
    {0x9D, "Server moved"},
    {0x9E, "Shared Subscriptions not supported"},
    {0x9F, "Connection rate exceeded"},
    {0xA0, "Maximum connect time"},
    {0xA1, "Subscription Identifiers not supported"},
    {0xA2, "Wildcard Subscriptions not supported"},
};

const char *ep_mqtt_rc_name(int rc)
{
    for (size_t i = 0; i < sizeof(rc_names) / sizeof(rc_names[0]); i++)
        if (rc_names[i].rc == rc)
            return rc_names[i].name;
    return NULL;
}

/* Allowed codes per packet, from the v5 spec tables 3-1, 3-4 .. 3-13. */
static const uint8_t rc_connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                     0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                     0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
static const uint8_t rc_puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
static const uint8_t rc_pubrel[] = {0x00, 0x92};
static const uint8_t rc_suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                    0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
static const uint8_t rc_unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
static const uint8_t rc_disconnect[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                        0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                        0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
static const uint8_t rc_auth[] = {0x00, 0x18, 0x19};

static bool in_set(const uint8_t *set, size_t n, int rc)
{
    return rc >= 0 && rc <= 0xFF && memchr(set, rc, n) != NULL;
}

#define IN(set, rc) in_set(set, sizeof(set), rc)

bool ep_mqtt_rc_valid_for(int rc, ep_mqtt_type type)
{
    switch (type) {
    case EP_MQTT_CONNACK:
        return IN(rc_connack, rc);
    case EP_MQTT_PUBACK:
    case EP_MQTT_PUBREC:
        return IN(rc_puback, rc);
    case EP_MQTT_PUBREL:
    case EP_MQTT_PUBCOMP:
        return IN(rc_pubrel, rc);
    case EP_MQTT_SUBACK:
        return IN(rc_suback, rc);
    case EP_MQTT_UNSUBACK:
        return IN(rc_unsuback, rc);
    case EP_MQTT_DISCONNECT:
        return IN(rc_disconnect, rc);
    case EP_MQTT_AUTH:
        return IN(rc_auth, rc);
    default:
        return false;
    }
}

uint8_t ep_mqtt_rc_to_v3_connack(ep_mqtt_rc rc)
{
    switch (rc) {
    case EP_MQTT_RC_SUCCESS:
        return EP_MQTT_V3_CONNACK_ACCEPTED;
    case EP_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
        return EP_MQTT_V3_CONNACK_BAD_PROTOCOL_VERSION;
    case EP_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID:
        return EP_MQTT_V3_CONNACK_IDENTIFIER_REJECTED;
    case EP_MQTT_RC_BAD_USER_NAME_OR_PASSWORD:
        return EP_MQTT_V3_CONNACK_BAD_USERNAME_OR_PASSWORD;
    case EP_MQTT_RC_NOT_AUTHORIZED:
    case EP_MQTT_RC_BANNED:
    case EP_MQTT_RC_BAD_AUTHENTICATION_METHOD:
        return EP_MQTT_V3_CONNACK_NOT_AUTHORIZED;
    default:
        return EP_MQTT_V3_CONNACK_SERVER_UNAVAILABLE;
    }
}

ep_err ep_mqtt_rc_from_v3_connack(uint8_t code, ep_mqtt_rc *rc_out)
{
    static const ep_mqtt_rc map[] = {
        EP_MQTT_RC_SUCCESS,
        EP_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
        EP_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
        EP_MQTT_RC_SERVER_UNAVAILABLE,
        EP_MQTT_RC_BAD_USER_NAME_OR_PASSWORD,
        EP_MQTT_RC_NOT_AUTHORIZED,
    };
    if (code >= sizeof(map) / sizeof(map[0]))
        return EP_EMALFORMED;
    if (rc_out)
        *rc_out = map[code];
    return EP_EOK;
}

ep_mqtt_rc ep_mqtt_rc_from_err(ep_err err)
{
    switch (err) {
    case EP_EOK:
        return EP_MQTT_RC_SUCCESS;
    case EP_EMALFORMED:
    case EP_EUTF8:
        return EP_MQTT_RC_MALFORMED_PACKET;
    case EP_EPROTO:
        return EP_MQTT_RC_PROTOCOL_ERROR;
    case EP_EUNSUPPORTED:
        return EP_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION;
    case EP_ETOOBIG:
        return EP_MQTT_RC_PACKET_TOO_LARGE;
    default:
        return EP_MQTT_RC_UNSPECIFIED_ERROR;
    }
}

const char *ep_mqtt_type_name(int type)
{
    static const char *const names[] = {"UNKNOWN",   "CONNECT",  "CONNACK",     "PUBLISH",
                                        "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                        "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                        "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH"};
    if (type < 1 || type > 15)
        return names[0];
    return names[type];
}
