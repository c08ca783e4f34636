/*
 * malformed_test.c - one vector per decoder rule, each asserting the ep_err
 * class and the v5 reason code the broker would send. Vectors give the first
 * byte and the body; the Remaining Length is computed here so each vector
 * breaks exactly one rule. Framing (Remaining Length) rules are tested in
 * frame_test.c.
 */
#include "codec/mqtt/testutil.h"

#include <stdlib.h>

typedef struct bad {
    const char *name;
    uint8_t version; /* 0 = before CONNECT */
    uint8_t first;   /* fixed header byte 1 */
    const char *body;
    ep_err err;
    int rc;
} bad;

#define MAL EP_EMALFORMED, 0x81
#define UTF EP_EUTF8, 0x81
#define PRO EP_EPROTO, 0x82
#define PRO_(rc) EP_EPROTO, rc
#define UNS EP_EUNSUPPORTED, 0x84

#define V4HDR "00 04 4d 51 54 54 04"
#define V5HDR "00 04 4d 51 54 54 05"
#define SHARE "24 73 68 61 72 65 2f" /* "$share/" */

static const bad bads[] = {
    /* fixed header flags and packet types [MQTT-2.1.3-1] */
    {"PUBREL flags 0000", 4, 0x60, "00 0a", MAL},
    {"PUBREL flags 0011", 4, 0x63, "00 0a", MAL},
    {"SUBSCRIBE flags 0000", 4, 0x80, "00 0a 00 01 61 00", MAL},
    {"UNSUBSCRIBE flags 0000", 4, 0xA0, "00 0a 00 01 61", MAL},
    {"PUBACK flags 0001", 4, 0x41, "00 0a", MAL},
    {"CONNACK flags 0001", 4, 0x21, "00 00", MAL},
    {"CONNECT flags 0001", 0, 0x11, V4HDR "02 00 3c 00 01 63", MAL},
    {"PINGREQ with a body", 4, 0xC0, "00", MAL},
    {"PINGRESP flags", 4, 0xD1, "", MAL},
    {"DISCONNECT 3.1.1 with a body", 4, 0xE0, "00", MAL},
    {"DISCONNECT flags", 5, 0xE2, "", MAL},
    {"AUTH in 3.1.1 (reserved type)", 4, 0xF0, "", MAL},
    {"AUTH flags", 5, 0xF1, "", MAL},
    {"packet type 0", 4, 0x00, "", MAL},
    {"PUBLISH before CONNECT", 0, 0x30, "00 03 61 2f 62", PRO},
    {"PINGREQ before CONNECT", 0, 0xC0, "", PRO},

    /* PUBLISH */
    {"PUBLISH QoS 3", 4, 0x36, "00 03 61 2f 62 00 0a", MAL},
    {"PUBLISH DUP with QoS 0", 4, 0x38, "00 03 61 2f 62", PRO},
    {"PUBLISH topic with +", 4, 0x30, "00 03 61 2f 2b", PRO_(0x90)},
    {"PUBLISH topic with #", 5, 0x30, "00 03 61 2f 23 00", PRO_(0x90)},
    {"PUBLISH empty topic in 3.1.1", 4, 0x30, "00 00 68 69", PRO},
    {"PUBLISH empty topic without Topic Alias", 5, 0x30, "00 00 00 68 69", PRO},
    {"PUBLISH packet id 0", 4, 0x32, "00 03 61 2f 62 00 00", PRO},
    {"PUBLISH topic longer than packet", 4, 0x30, "00 05 61", MAL},
    {"PUBLISH missing packet id", 4, 0x32, "00 03 61 2f 62 00", MAL},
    {"PUBLISH v5 missing property length", 5, 0x30, "00 03 61 2f 62", MAL},
    {"PUBLISH overlong UTF-8 in topic", 4, 0x30, "00 02 c0 80", UTF},
    {"PUBLISH surrogate in topic", 4, 0x30, "00 03 ed a0 80", UTF},
    {"PUBLISH U+0000 in topic", 4, 0x30, "00 03 61 00 62", UTF},
    {"PUBLISH truncated UTF-8 sequence", 4, 0x30, "00 02 61 e2", UTF},
    {"PUBLISH code point above U+10FFFF", 4, 0x30, "00 04 f4 90 80 80", UTF},
    {"PUBLISH lone continuation byte", 4, 0x30, "00 02 61 80", UTF},

    /* v5 properties (in PUBLISH unless noted) */
    {"Topic Alias 0", 5, 0x30, "00 03 61 2f 62 03 23 00 00", PRO_(0x94)},
    {"Topic Alias twice", 5, 0x30, "00 03 61 2f 62 06 23 00 01 23 00 02", PRO},
    {"Payload Format Indicator 2", 5, 0x30, "00 03 61 2f 62 02 01 02", PRO},
    {"Session Expiry not allowed in PUBLISH", 5, 0x30, "00 03 61 2f 62 05 11 00 00 00 01", MAL},
    {"unknown property 0x05", 5, 0x30, "00 03 61 2f 62 02 05 00", MAL},
    {"property id as 2-byte varint", 5, 0x30, "00 03 61 2f 62 03 81 01 00", MAL},
    {"Payload Format Indicator twice", 5, 0x30, "00 03 61 2f 62 04 01 00 01 01", PRO},
    {"Message Expiry Interval twice", 5, 0x30, "00 03 61 2f 62 0a 02 00 00 00 01 02 00 00 00 02",
     PRO},
    {"Subscription Identifier 0", 5, 0x30, "00 03 61 2f 62 02 0b 00", PRO},
    {"Subscription Identifier not minimal", 5, 0x30, "00 03 61 2f 62 03 0b 81 00", MAL},
    {"Subscription Identifier 5-byte varint", 5, 0x30, "00 03 61 2f 62 06 0b ff ff ff ff 01", MAL},
    {"property length beyond packet", 5, 0x30, "00 03 61 2f 62 09 01 00", MAL},
    {"property value truncated", 5, 0x30, "00 03 61 2f 62 02 02 00", MAL},
    {"Response Topic with wildcard", 5, 0x30, "00 03 61 2f 62 04 08 00 01 23", PRO},
    {"Response Topic empty", 5, 0x30, "00 03 61 2f 62 03 08 00 00", PRO},
    {"Content Type invalid UTF-8", 5, 0x30, "00 03 61 2f 62 04 03 00 01 ff", UTF},
    {"User Property missing value", 5, 0x30, "00 03 61 2f 62 04 26 00 01 61", MAL},
    {"User Property value invalid UTF-8", 5, 0x30, "00 03 61 2f 62 07 26 00 01 61 00 01 c1", UTF},

    /* CONNECT 3.1.1 */
    {"protocol name MQTX", 0, 0x10, "00 04 4d 51 54 58 04 02 00 3c 00 01 63", UNS},
    {"MQTT level 3", 0, 0x10, "00 04 4d 51 54 54 03 02 00 3c 00 01 63", UNS},
    {"MQIsdp level 3 (MQTT 3.1)", 0, 0x10, "00 06 4d 51 49 73 64 70 03 02 00 3c 00 01 63", UNS},
    {"MQTT level 6", 0, 0x10, "00 04 4d 51 54 54 06 02 00 3c 00 01 63", UNS},
    {"protocol name truncated", 0, 0x10, "00 04 4d 51", MAL},
    {"reserved connect flag", 0, 0x10, V4HDR "03 00 3c 00 01 63", MAL},
    {"Will QoS without Will flag", 0, 0x10, V4HDR "0a 00 3c 00 01 63", MAL},
    {"Will Retain without Will flag", 0, 0x10, V4HDR "22 00 3c 00 01 63", MAL},
    {"Will QoS 3", 0, 0x10, V4HDR "1e 00 3c 00 01 63 00 01 74 00 00", MAL},
    {"password without user name in 3.1.1", 0, 0x10, V4HDR "42 00 3c 00 01 63 00 01 70", MAL},
    {"empty client id without clean session", 0, 0x10, V4HDR "00 00 3c 00 00", PRO_(0x85)},
    {"Will Topic with wildcard", 0, 0x10, V4HDR "06 00 3c 00 01 63 00 01 23 00 00", PRO_(0x90)},
    {"Will Topic empty", 0, 0x10, V4HDR "06 00 3c 00 01 63 00 00 00 00", PRO_(0x90)},
    {"Will Message missing", 0, 0x10, V4HDR "06 00 3c 00 01 63 00 01 74", MAL},
    {"user name flag without user name", 0, 0x10, V4HDR "82 00 3c 00 01 63", MAL},
    {"trailing bytes after CONNECT payload", 0, 0x10, V4HDR "02 00 3c 00 01 63 00", MAL},
    {"client id invalid UTF-8", 0, 0x10, V4HDR "02 00 3c 00 01 80", UTF},
    {"user name invalid UTF-8", 0, 0x10, V4HDR "82 00 3c 00 01 63 00 01 fe", UTF},
    {"CONNECT truncated keep alive", 0, 0x10, V4HDR "02 00", MAL},

    /* CONNECT 5 */
    {"Receive Maximum 0", 0, 0x10, V5HDR "02 00 3c 03 21 00 00 00 01 63", PRO},
    {"Maximum Packet Size 0", 0, 0x10, V5HDR "02 00 3c 05 27 00 00 00 00 00 01 63", PRO},
    {"Request Problem Information 2", 0, 0x10, V5HDR "02 00 3c 02 17 02 00 01 63", PRO},
    {"Request Response Information 2", 0, 0x10, V5HDR "02 00 3c 02 19 02 00 01 63", PRO},
    {"Session Expiry Interval twice", 0, 0x10,
     V5HDR "02 00 3c 0a 11 00 00 00 01 11 00 00 00 02 00 01 63", PRO},
    {"Authentication Method twice", 0, 0x10, V5HDR "02 00 3c 08 15 00 01 61 15 00 01 61 00 01 63",
     PRO},
    {"Will Delay Interval in CONNECT properties", 0, 0x10,
     V5HDR "02 00 3c 05 18 00 00 00 01 00 01 63", MAL},
    {"Topic Alias in CONNECT properties", 0, 0x10, V5HDR "02 00 3c 03 23 00 01 00 01 63", MAL},
    {"Session Expiry in Will properties", 0, 0x10,
     V5HDR "06 00 3c 00 00 01 63 05 11 00 00 00 01 00 01 74 00 00", MAL},
    {"Will Payload Format Indicator 2", 0, 0x10,
     V5HDR "06 00 3c 00 00 01 63 02 01 02 00 01 74 00 00", PRO},
    {"CONNECT 5 missing property length", 0, 0x10, V5HDR "02 00 3c", MAL},

    /* CONNACK */
    {"CONNACK reserved acknowledge flags", 4, 0x20, "02 00", MAL},
    {"CONNACK 3.1.1 return code 6", 4, 0x20, "00 06", PRO},
    {"CONNACK session present with error code", 4, 0x20, "01 05", PRO},
    {"CONNACK 3.1.1 too long", 4, 0x20, "00 00 00", MAL},
    {"CONNACK truncated", 4, 0x20, "00", MAL},
    {"CONNACK v5 invalid reason code 0x05", 5, 0x20, "00 05 00", PRO},
    {"CONNACK v5 missing properties", 5, 0x20, "00 00", MAL},
    {"CONNACK v5 Maximum QoS 2", 5, 0x20, "00 00 02 24 02", PRO},
    {"CONNACK v5 Retain Available 2", 5, 0x20, "00 00 02 25 02", PRO},
    {"CONNACK v5 Wildcard Subscription Available 2", 5, 0x20, "00 00 02 28 02", PRO},
    {"CONNACK v5 Subscription Identifier Available 2", 5, 0x20, "00 00 02 29 02", PRO},
    {"CONNACK v5 Shared Subscription Available 2", 5, 0x20, "00 00 02 2a 02", PRO},
    {"CONNACK v5 Receive Maximum 0", 5, 0x20, "00 00 03 21 00 00", PRO},
    {"CONNACK v5 Maximum Packet Size 0", 5, 0x20, "00 00 05 27 00 00 00 00", PRO},
    {"CONNACK v5 Topic Alias not allowed", 5, 0x20, "00 00 03 23 00 01", MAL},
    {"CONNACK v5 Will Delay not allowed", 5, 0x20, "00 00 05 18 00 00 00 01", MAL},

    /* SUBSCRIBE */
    {"SUBSCRIBE without payload", 4, 0x82, "00 0a", PRO},
    {"SUBSCRIBE v5 without payload", 5, 0x82, "00 0a 00", PRO},
    {"SUBSCRIBE packet id 0", 4, 0x82, "00 00 00 01 61 00", PRO},
    {"SUBSCRIBE 3.1.1 reserved option bits", 4, 0x82, "00 0a 00 01 61 04", MAL},
    {"SUBSCRIBE 3.1.1 QoS 3", 4, 0x82, "00 0a 00 01 61 03", MAL},
    {"SUBSCRIBE v5 QoS 3", 5, 0x82, "00 0a 00 00 01 61 03", PRO},
    {"SUBSCRIBE v5 reserved option bits 6-7", 5, 0x82, "00 0a 00 00 01 61 40", MAL},
    {"SUBSCRIBE v5 Retain Handling 3", 5, 0x82, "00 0a 00 00 01 61 30", PRO},
    {"SUBSCRIBE # not in last level", 4, 0x82, "00 0a 00 05 61 2f 23 2f 62 00", PRO_(0x8F)},
    {"SUBSCRIBE # not alone in level", 4, 0x82, "00 0a 00 02 61 23 00", PRO_(0x8F)},
    {"SUBSCRIBE + not alone in level", 4, 0x82, "00 0a 00 03 61 2b 2f 00", PRO_(0x8F)},
    {"SUBSCRIBE empty filter", 4, 0x82, "00 0a 00 00 00", PRO_(0x8F)},
    {"SUBSCRIBE $share with empty group", 5, 0x82, "00 0a 00 00 09" SHARE "2f 61 00", PRO_(0x8F)},
    {"SUBSCRIBE $share group with +", 5, 0x82, "00 0a 00 00 0b" SHARE "67 2b 2f 61 00", PRO_(0x8F)},
    {"SUBSCRIBE $share group with #", 5, 0x82, "00 0a 00 00 0a" SHARE "23 2f 61 00", PRO_(0x8F)},
    {"SUBSCRIBE $share without filter", 5, 0x82, "00 0a 00 00 08" SHARE "67 00", PRO_(0x8F)},
    {"SUBSCRIBE $share with empty filter", 5, 0x82, "00 0a 00 00 09" SHARE "67 2f 00", PRO_(0x8F)},
    {"SUBSCRIBE $share with invalid filter", 5, 0x82, "00 0a 00 00 0b" SHARE "67 2f 61 23 00",
     PRO_(0x8F)},
    {"SUBSCRIBE No Local on shared subscription", 5, 0x82, "00 0a 00 00 0a" SHARE "67 2f 61 04",
     PRO},
    {"SUBSCRIBE two Subscription Identifiers", 5, 0x82, "00 0a 04 0b 01 0b 02 00 01 61 00", PRO},
    {"SUBSCRIBE Subscription Identifier 0", 5, 0x82, "00 0a 02 0b 00 00 01 61 00", PRO},
    {"SUBSCRIBE Topic Alias not allowed", 5, 0x82, "00 0a 03 23 00 01 00 01 61 00", MAL},
    {"SUBSCRIBE missing options byte", 4, 0x82, "00 0a 00 01 61", MAL},
    {"SUBSCRIBE filter invalid UTF-8", 4, 0x82, "00 0a 00 01 ff 00", UTF},

    /* SUBACK */
    {"SUBACK 3.1.1 code 0x03", 4, 0x90, "00 0a 03", PRO},
    {"SUBACK v5 code 0x05", 5, 0x90, "00 0a 00 05", PRO},
    {"SUBACK without codes", 4, 0x90, "00 0a", PRO},
    {"SUBACK packet id 0", 4, 0x90, "00 00 00", PRO},

    /* UNSUBSCRIBE / UNSUBACK */
    {"UNSUBSCRIBE without payload", 4, 0xA2, "00 0a", PRO},
    {"UNSUBSCRIBE v5 without payload", 5, 0xA2, "00 0a 00", PRO},
    {"UNSUBSCRIBE packet id 0", 4, 0xA2, "00 00 00 01 61", PRO},
    {"UNSUBSCRIBE invalid filter", 4, 0xA2, "00 0a 00 03 61 23 62", PRO_(0x8F)},
    {"UNSUBSCRIBE truncated filter", 4, 0xA2, "00 0a 00 03 61", MAL},
    {"UNSUBACK 3.1.1 with payload", 4, 0xB0, "00 0a 00", MAL},
    {"UNSUBACK v5 invalid code 0x01", 5, 0xB0, "00 0a 00 01", PRO},
    {"UNSUBACK v5 without codes", 5, 0xB0, "00 0a 00", PRO},

    /* PUBACK, PUBREC, PUBREL, PUBCOMP */
    {"PUBACK 3.1.1 remaining length 3", 4, 0x40, "00 0a 00", MAL},
    {"PUBACK truncated", 4, 0x40, "00", MAL},
    {"PUBACK packet id 0", 4, 0x40, "00 00", PRO},
    {"PUBREL packet id 0", 5, 0x62, "00 00", PRO},
    {"PUBACK v5 reason code 0x92", 5, 0x40, "00 0a 92", PRO},
    {"PUBREL v5 reason code 0x10", 5, 0x62, "00 0a 10", PRO},
    {"PUBACK v5 Reason String twice", 5, 0x40, "00 0a 00 08 1f 00 01 61 1f 00 01 62", PRO},
    {"PUBACK v5 Topic Alias not allowed", 5, 0x40, "00 0a 00 03 23 00 01", MAL},
    {"PUBCOMP v5 bytes after properties", 5, 0x70, "00 0a 00 00 00", MAL},

    /* DISCONNECT / AUTH */
    {"DISCONNECT v5 reason code 0x18", 5, 0xE0, "18", PRO},
    {"DISCONNECT v5 Topic Alias not allowed", 5, 0xE0, "00 03 23 00 01", MAL},
    {"DISCONNECT v5 Session Expiry twice", 5, 0xE0, "00 0a 11 00 00 00 01 11 00 00 00 02", PRO},
    {"AUTH reason code without properties", 5, 0xF0, "18", MAL},
    {"AUTH reason code 0x80", 5, 0xF0, "80 00", PRO},
    {"AUTH Reason String twice", 5, 0xF0, "18 08 1f 00 01 61 1f 00 01 62", PRO},
    {"AUTH Session Expiry not allowed", 5, 0xF0, "18 05 11 00 00 00 01", MAL},
};

/* With EP_MQTT_CORPUS_DIR set, vectors are written as fuzz seeds (first
 * byte: 0 = before CONNECT, 1 = 3.1.1, 2 = 5; then the packet). */
static void dump_corpus(const char *prefix, size_t idx, uint8_t version, const uint8_t *pkt,
                        size_t n)
{
    const char *dir = getenv("EP_MQTT_CORPUS_DIR");
    if (dir == NULL)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s-%03zu", dir, prefix, idx);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    uint8_t sel = version == 0 ? 0 : version == 4 ? 1 : 2;
    fwrite(&sel, 1, 1, f);
    fwrite(pkt, 1, n, f);
    fclose(f);
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void test_bad_vectors(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        const bad *v = &bads[i];
        uint8_t pkt[300];
        size_t n = hex_decode(v->body, pkt + 2, sizeof(pkt) - 2);
        assert_true(n < 128);
        pkt[0] = v->first;
        pkt[1] = (uint8_t)n;
        ep_mqtt_packet out;
        memset(&out, 0xA5, sizeof(out));
        ep_mqtt_rc rc = 0;
        ep_err err = ep_mqtt_packet_decode(pkt, n + 2, v->version, &out, &rc);
        dump_corpus("bad", i, v->version, pkt, n + 2);
        if (err != v->err || (int)rc != v->rc) {
            fprintf(stderr, "FAIL %s: got %s rc 0x%02x, want %s rc 0x%02x\n", v->name,
                    ep_err_name(err), rc, ep_err_name(v->err), v->rc);
            failures++;
        }
        if (!all_zero(&out, sizeof(out))) {
            fprintf(stderr, "FAIL %s: output not cleared on error\n", v->name);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Things that look odd but are allowed, so the tables above do not drift
 * into rejecting valid traffic. */
static const bad goods[] = {
    {"v5 empty client id without clean start", 0, 0x10, V5HDR "00 00 3c 00 00 00", 0, 0},
    {"3.1.1 empty client id with clean session", 0, 0x10, V4HDR "02 00 3c 00 00", 0, 0},
    {"v5 PUBLISH repeated User Property", 5, 0x30,
     "00 01 61 0e 26 00 01 61 00 01 62 26 00 01 61 00 01 62", 0, 0},
    {"v5 PUBLISH repeated Subscription Identifier", 5, 0x30, "00 01 61 04 0b 01 0b 02", 0, 0},
    {"PUBLISH topic with control char and BOM", 4, 0x30, "00 05 01 ef bb bf 7f", 0, 0},
    {"PUBLISH $SYS topic", 4, 0x30, "00 06 24 53 59 53 2f 61", 0, 0},
    {"SUBSCRIBE $share in 3.1.1", 4, 0x82, "00 01 00 0a" SHARE "67 2f 61 01", 0, 0},
    {"SUBSCRIBE filter '+/+/#'", 5, 0x82, "00 01 00 00 05 2b 2f 2b 2f 23 00", 0, 0},
    {"SUBSCRIBE filter '/'", 4, 0x82, "00 01 00 01 2f 00", 0, 0},
    {"SUBSCRIBE No Local on $shared (not a shared subscription)", 5, 0x82,
     "00 01 00 00 09 24 73 68 61 72 65 64 2f 61 04", 0, 0},
    {"PUBACK v5 reason code and no properties", 5, 0x40, "00 01 10", 0, 0},
    {"DISCONNECT v5 reason code only", 5, 0xE0, "8e", 0, 0},
    {"CONNECT reaches 4/5 connection (second CONNECT is the broker's call)", 5, 0x10,
     V4HDR "02 00 3c 00 01 63", 0, 0},
    {"MQTT 3.1.1 password flag with user name", 0, 0x10, V4HDR "c2 00 3c 00 01 63 00 01 75 00 00",
     0, 0},
    {"PUBLISH UTF-8 noncharacter U+FFFF in topic", 4, 0x30, "00 03 ef bf bf", 0, 0},
};

static void test_good_vectors(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
        const bad *v = &goods[i];
        uint8_t pkt[300];
        size_t n = hex_decode(v->body, pkt + 2, sizeof(pkt) - 2);
        pkt[0] = v->first;
        pkt[1] = (uint8_t)n;
        ep_mqtt_packet out;
        ep_mqtt_rc rc = 0xFF;
        ep_err err = ep_mqtt_packet_decode(pkt, n + 2, v->version, &out, &rc);
        dump_corpus("good", i, v->version, pkt, n + 2);
        if (err || rc) {
            fprintf(stderr, "FAIL %s: got %s rc 0x%02x\n", v->name, ep_err_name(err), rc);
            failures++;
            continue;
        }
        /* and it re-encodes to a packet that decodes equal */
        ep_buf b;
        ep_buf_init(&b, 0);
        uint8_t ver = v->version ? v->version : out.connect.protocol_version;
        if (out.type == EP_MQTT_CONNECT)
            ver = out.connect.protocol_version;
        ep_mqtt_packet again;
        if (ep_mqtt_packet_encode(&b, &out, ver, 0) ||
            ep_mqtt_packet_decode(ep_buf_head(&b), ep_buf_used(&b), ver, &again, NULL) ||
            !ep_mqtt_packet_eq(&out, &again)) {
            fprintf(stderr, "FAIL %s: does not round-trip\n", v->name);
            failures++;
        }
        ep_buf_fini(&b);
    }
    assert_int_equal(failures, 0);
}

static void test_decode_args(void **state)
{
    (void)state;
    uint8_t pkt[] = {0xC0, 0x00};
    ep_mqtt_packet out;
    ep_mqtt_rc rc;
    assert_int_equal(ep_mqtt_packet_decode(pkt, 2, 3, &out, &rc), EP_EINVAL);
    assert_int_equal(ep_mqtt_packet_decode(pkt, 2, 4, NULL, &rc), EP_EINVAL);
    assert_int_equal(ep_mqtt_packet_decode(NULL, 2, 4, &out, &rc), EP_EINVAL);
    /* rc_out is optional */
    assert_int_equal(ep_mqtt_packet_decode(pkt, 2, 4, &out, NULL), EP_EOK);
    /* len must match the Remaining Length exactly */
    uint8_t longer[] = {0xC0, 0x00, 0x00};
    assert_int_equal(ep_mqtt_packet_decode(longer, 3, 4, &out, &rc), EP_EMALFORMED);
    assert_int_equal(rc, EP_MQTT_RC_MALFORMED_PACKET);
    uint8_t shorter[] = {0x40, 0x02, 0x00};
    assert_int_equal(ep_mqtt_packet_decode(shorter, 3, 4, &out, &rc), EP_EMALFORMED);
    uint8_t one[] = {0xC0};
    assert_int_equal(ep_mqtt_packet_decode(one, 1, 4, &out, &rc), EP_EMALFORMED);
    /* non-minimal Remaining Length inside decode too */
    uint8_t nonmin[] = {0xC0, 0x80, 0x00};
    assert_int_equal(ep_mqtt_packet_decode(nonmin, 3, 4, &out, &rc), EP_EMALFORMED);
}

static void test_connect_peek(void **state)
{
    (void)state;
    uint8_t pkt[64];
    size_t n = hex_decode("10 0f 00 06 4d 51 49 73 64 70 03 02 00 3c 00 01 63", pkt, sizeof(pkt));
    ep_mqtt_packet out;
    ep_mqtt_rc rc;
    assert_int_equal(ep_mqtt_packet_decode(pkt, n, 0, &out, &rc), EP_EUNSUPPORTED);
    assert_int_equal(rc, EP_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION);
    assert_int_equal(ep_mqtt_rc_to_v3_connack(rc), EP_MQTT_V3_CONNACK_BAD_PROTOCOL_VERSION);
    ep_mqtt_slice name;
    uint8_t level = 0;
    assert_int_equal(ep_mqtt_connect_peek(pkt, n, &name, &level), EP_EOK);
    assert_true(ep_mqtt_slice_eq(name, S("MQIsdp")));
    assert_int_equal(level, 3);
    assert_int_equal(ep_mqtt_connect_peek(pkt, 5, &name, &level), EP_EMALFORMED);
    uint8_t ping[] = {0xC0, 0x00};
    assert_int_equal(ep_mqtt_connect_peek(ping, 2, &name, &level), EP_EMALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_vectors),
        cmocka_unit_test(test_good_vectors),
        cmocka_unit_test(test_decode_args),
        cmocka_unit_test(test_connect_peek),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
