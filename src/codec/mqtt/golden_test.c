/*
 * golden_test.c - byte-exact vectors for every MQTT packet type in 3.1.1 and
 * 5.0. For each vector: encoding the expected struct gives exactly the bytes,
 * decoding the bytes gives the expected struct (ep_mqtt_packet_eq), framing
 * finds the whole packet, and re-encoding the decoded struct gives the bytes
 * again. Variable-header examples from the specs (CONNECT flags 0xCE and
 * keep alive 10 with Session Expiry 10, PUBLISH "a/b" id 10, SUBSCRIBE
 * "a/b" QoS 1 + "c/d" QoS 2, SUBACK 0/1/2/0x80, UNSUBSCRIBE "a/b" "c/d",
 * the U+2A6D4 string example) are embedded in the vectors below.
 *
 * With EP_MQTT_CORPUS_DIR set, every vector is also written there as a fuzz
 * seed (first byte: 1 = protocol 3.1.1, 2 = protocol 5; then the packet),
 * see tools/mqtt_fuzz_corpus.sh.
 */
#include "codec/mqtt/testutil.h"

#include <stdlib.h>

typedef struct golden {
    const char *name;
    uint8_t version;
    const char *hex;
    void (*build)(ep_mqtt_packet *p);
} golden;

/* ---- 3.1.1 -------------------------------------------------------------- */

static void v4_connect_min(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_CONNECT;
    p->connect.protocol_version = 4;
    p->connect.clean_start = true;
    p->connect.keep_alive = 60;
    p->connect.client_id = S("c1");
}

/* Connect Flags 0xCE and Keep Alive 10 as in the 3.1.1 variable header
 * example: user name, password, Will QoS 1, Will flag, Clean Session. */
static void v4_connect_full(ep_mqtt_packet *p)
{
    ep_mqtt_connect *c = &p->connect;
    p->type = EP_MQTT_CONNECT;
    c->protocol_version = 4;
    c->clean_start = true;
    c->keep_alive = 10;
    c->client_id = S("cid");
    c->has_will = true;
    c->will.qos = 1;
    c->will.topic = S("w/t");
    c->will.payload = S("bye");
    c->has_username = true;
    c->username = S("user");
    c->has_password = true;
    c->password = S("pw");
}

static void v4_connack(ep_mqtt_packet *p) { p->type = EP_MQTT_CONNACK; }

static void v4_connack_sp(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_CONNACK;
    p->connack.session_present = true;
}

static void v4_connack_notauth(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_CONNACK;
    p->connack.rc = EP_MQTT_RC_NOT_AUTHORIZED;
}

static void v4_connack_badver(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_CONNACK;
    p->connack.rc = EP_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION;
}

static void v4_publish_q0(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_PUBLISH;
    p->publish.topic = S("a/b");
    p->publish.payload = S("hi");
}

static void v4_publish_q1(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_PUBLISH;
    p->publish.qos = 1;
    p->publish.dup = true;
    p->publish.retain = true;
    p->publish.topic = S("a/b");
    p->publish.packet_id = 10;
    p->publish.payload = S("x");
}

static void v4_publish_q2(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_PUBLISH;
    p->publish.qos = 2;
    p->publish.topic = S("a/b");
    p->publish.packet_id = 10;
}

/* Topic "A" U+2A6D4, the UTF-8 example of both specs (41 F0 AA 9B 94). */
static void v4_publish_utf8(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_PUBLISH;
    p->publish.topic = S("A\xF0\xAA\x9B\x94");
}

#define ACK(fn, t)                                                                                 \
    static void fn(ep_mqtt_packet *p)                                                              \
    {                                                                                              \
        p->type = (t);                                                                             \
        p->ack.packet_id = 10;                                                                     \
    }
ACK(v4_puback, EP_MQTT_PUBACK)
ACK(v4_pubrec, EP_MQTT_PUBREC)
ACK(v4_pubrel, EP_MQTT_PUBREL)
ACK(v4_pubcomp, EP_MQTT_PUBCOMP)

static const ep_mqtt_sub spec_subs[] = {{.filter = {(const uint8_t *)"a/b", 3}, .qos = 1},
                                        {.filter = {(const uint8_t *)"c/d", 3}, .qos = 2}};

static void v4_subscribe(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_SUBSCRIBE;
    p->subscribe.packet_id = 10;
    p->subscribe.subs = spec_subs;
    p->subscribe.n_subs = 2;
}

static void v4_suback(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_SUBACK;
    p->suback.packet_id = 10;
    p->suback.codes = S("\x00\x01\x02\x80");
}

static const ep_mqtt_slice spec_unsubs[] = {{(const uint8_t *)"a/b", 3},
                                            {(const uint8_t *)"c/d", 3}};

static void v4_unsubscribe(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_UNSUBSCRIBE;
    p->unsubscribe.packet_id = 10;
    p->unsubscribe.filters = spec_unsubs;
    p->unsubscribe.n_filters = 2;
}

static void v4_unsuback(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_UNSUBACK;
    p->suback.packet_id = 10;
}

static void pingreq(ep_mqtt_packet *p) { p->type = EP_MQTT_PINGREQ; }
static void pingresp(ep_mqtt_packet *p) { p->type = EP_MQTT_PINGRESP; }
static void disconnect(ep_mqtt_packet *p) { p->type = EP_MQTT_DISCONNECT; }

/* ---- 5.0 ---------------------------------------------------------------- */

static const ep_mqtt_user_prop up_kv[] = {{{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}}};
static const ep_mqtt_user_prop up_ab[] = {{{(const uint8_t *)"a", 1}, {(const uint8_t *)"b", 1}}};
static const ep_mqtt_user_prop up_xy[] = {{{(const uint8_t *)"x", 1}, {(const uint8_t *)"y", 1}}};
static const ep_mqtt_user_prop up_uv[] = {{{(const uint8_t *)"u", 1}, {(const uint8_t *)"v", 1}}};
static const ep_mqtt_user_prop up_a1b2[] = {{{(const uint8_t *)"a", 1}, {(const uint8_t *)"1", 1}},
                                            {{(const uint8_t *)"b", 1}, {(const uint8_t *)"2", 1}}};

#define SET(pr, id) EP_MQTT_PROPS_SET((pr), EP_MQTT_PROP_##id)

static void v5_connect_min(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_CONNECT;
    p->connect.protocol_version = 5;
    p->connect.clean_start = true;
}

/* The v5 CONNECT variable header example (flags 0xCE, keep alive 10,
 * Session Expiry Interval 10) plus every CONNECT and Will property. */
static void v5_connect_full(ep_mqtt_packet *p)
{
    ep_mqtt_connect *c = &p->connect;
    ep_mqtt_props *pr = &c->props, *wp = &c->will.props;
    v4_connect_full(p);
    c->protocol_version = 5;
    SET(pr, SESSION_EXPIRY_INTERVAL);
    pr->session_expiry_interval = 10;
    SET(pr, AUTHENTICATION_METHOD);
    pr->authentication_method = S("SCRAM");
    SET(pr, AUTHENTICATION_DATA);
    pr->authentication_data = S("\x01\x02");
    SET(pr, REQUEST_PROBLEM_INFORMATION);
    pr->request_problem_information = 0;
    SET(pr, REQUEST_RESPONSE_INFORMATION);
    pr->request_response_information = 1;
    SET(pr, RECEIVE_MAXIMUM);
    pr->receive_maximum = 20;
    SET(pr, TOPIC_ALIAS_MAXIMUM);
    pr->topic_alias_maximum = 5;
    SET(pr, MAXIMUM_PACKET_SIZE);
    pr->maximum_packet_size = 1024;
    pr->user = up_kv;
    pr->n_user = 1;

    SET(wp, PAYLOAD_FORMAT_INDICATOR);
    wp->payload_format_indicator = 1;
    SET(wp, MESSAGE_EXPIRY_INTERVAL);
    wp->message_expiry_interval = 60;
    SET(wp, CONTENT_TYPE);
    wp->content_type = S("text");
    SET(wp, RESPONSE_TOPIC);
    wp->response_topic = S("r");
    SET(wp, CORRELATION_DATA);
    wp->correlation_data = S("id");
    SET(wp, WILL_DELAY_INTERVAL);
    wp->will_delay_interval = 5;
    wp->user = up_ab;
    wp->n_user = 1;
}

/* v5 allows a password without a user name. */
static void v5_connect_pw_only(ep_mqtt_packet *p)
{
    v5_connect_min(p);
    p->connect.client_id = S("c");
    p->connect.has_password = true;
    p->connect.password = S("\x00\xff");
}

static void v5_connack_full(ep_mqtt_packet *p)
{
    ep_mqtt_props *pr = &p->connack.props;
    p->type = EP_MQTT_CONNACK;
    SET(pr, SESSION_EXPIRY_INTERVAL);
    pr->session_expiry_interval = 0x78;
    SET(pr, ASSIGNED_CLIENT_IDENTIFIER);
    pr->assigned_client_identifier = S("auto-1");
    SET(pr, SERVER_KEEP_ALIVE);
    pr->server_keep_alive = 30;
    SET(pr, RESPONSE_INFORMATION);
    pr->response_information = S("ri");
    SET(pr, RECEIVE_MAXIMUM);
    pr->receive_maximum = 10;
    SET(pr, TOPIC_ALIAS_MAXIMUM);
    pr->topic_alias_maximum = 8;
    SET(pr, MAXIMUM_QOS);
    pr->maximum_qos = 1;
    SET(pr, RETAIN_AVAILABLE);
    pr->retain_available = 0;
    SET(pr, MAXIMUM_PACKET_SIZE);
    pr->maximum_packet_size = 65536;
    SET(pr, WILDCARD_SUBSCRIPTION_AVAILABLE);
    pr->wildcard_subscription_available = 1;
    SET(pr, SUBSCRIPTION_IDENTIFIER_AVAILABLE);
    pr->subscription_identifier_available = 0;
    SET(pr, SHARED_SUBSCRIPTION_AVAILABLE);
    pr->shared_subscription_available = 1;
    pr->user = up_xy;
    pr->n_user = 1;
}

static void v5_connack_notauth(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_CONNACK;
    p->connack.rc = EP_MQTT_RC_NOT_AUTHORIZED;
}

static void v5_connack_redirect(ep_mqtt_packet *p)
{
    ep_mqtt_props *pr = &p->connack.props;
    p->type = EP_MQTT_CONNACK;
    p->connack.rc = EP_MQTT_RC_USE_ANOTHER_SERVER;
    SET(pr, SERVER_REFERENCE);
    pr->server_reference = S("host");
    SET(pr, REASON_STRING);
    pr->reason_string = S("bye");
}

static const uint32_t sub_ids_1_200[] = {1, 200};

static void v5_publish_full(ep_mqtt_packet *p)
{
    ep_mqtt_publish *m = &p->publish;
    ep_mqtt_props *pr = &m->props;
    p->type = EP_MQTT_PUBLISH;
    m->qos = 1;
    m->topic = S("a/b");
    m->packet_id = 10;
    m->payload = S("{}");
    SET(pr, PAYLOAD_FORMAT_INDICATOR);
    pr->payload_format_indicator = 1;
    SET(pr, MESSAGE_EXPIRY_INTERVAL);
    pr->message_expiry_interval = 30;
    SET(pr, CONTENT_TYPE);
    pr->content_type = S("json");
    SET(pr, RESPONSE_TOPIC);
    pr->response_topic = S("r/1");
    SET(pr, CORRELATION_DATA);
    pr->correlation_data = S("\xC0\xDE");
    SET(pr, TOPIC_ALIAS);
    pr->topic_alias = 3;
    pr->sub_ids = sub_ids_1_200;
    pr->n_sub_ids = 2;
    pr->user = up_a1b2;
    pr->n_user = 2;
}

static void v5_publish_alias(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_PUBLISH;
    SET(&p->publish.props, TOPIC_ALIAS);
    p->publish.props.topic_alias = 5;
    p->publish.payload = S("z");
}

static void v5_publish_min(ep_mqtt_packet *p) { v4_publish_q0(p); }

static void v5_puback_min(ep_mqtt_packet *p) { v4_puback(p); }

static void v5_puback_rc(ep_mqtt_packet *p)
{
    v4_puback(p);
    p->ack.rc = EP_MQTT_RC_NO_MATCHING_SUBSCRIBERS;
}

static void v5_puback_reason(ep_mqtt_packet *p)
{
    v4_puback(p);
    p->ack.rc = EP_MQTT_RC_NOT_AUTHORIZED;
    SET(&p->ack.props, REASON_STRING);
    p->ack.props.reason_string = S("no");
}

static void v5_pubrec(ep_mqtt_packet *p)
{
    v4_pubrec(p);
    p->ack.rc = EP_MQTT_RC_PACKET_IDENTIFIER_IN_USE;
}

static void v5_pubrel(ep_mqtt_packet *p)
{
    v4_pubrel(p);
    p->ack.rc = EP_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND;
}

static void v5_pubcomp_user(ep_mqtt_packet *p)
{
    v4_pubcomp(p);
    p->ack.props.user = up_kv;
    p->ack.props.n_user = 1;
}

static const ep_mqtt_sub v5_subs[] = {
    {.filter = {(const uint8_t *)"a/+", 3},
     .qos = 1,
     .no_local = true,
     .retain_as_published = true,
     .retain_handling = 2},
    {.filter = {(const uint8_t *)"$share/g/s/#", 12}, .qos = 2},
    {.filter = {(const uint8_t *)"#", 1}, .qos = 0, .retain_handling = 1}};

static void v5_subscribe(ep_mqtt_packet *p)
{
    ep_mqtt_subscribe *s = &p->subscribe;
    p->type = EP_MQTT_SUBSCRIBE;
    s->packet_id = 10;
    SET(&s->props, SUBSCRIPTION_IDENTIFIER);
    s->props.subscription_id = 42;
    s->props.user = up_uv;
    s->props.n_user = 1;
    s->subs = v5_subs;
    s->n_subs = 3;
}

static void v5_suback(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_SUBACK;
    p->suback.packet_id = 10;
    SET(&p->suback.props, REASON_STRING);
    p->suback.props.reason_string = S("ok");
    p->suback.codes = S("\x01\x02\x00\xA2\x8F");
}

static void v5_unsubscribe(ep_mqtt_packet *p) { v4_unsubscribe(p); }

static void v5_unsuback(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_UNSUBACK;
    p->suback.packet_id = 10;
    p->suback.codes = S("\x00\x11");
}

static void v5_disconnect_will(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_DISCONNECT;
    p->disconnect.rc = EP_MQTT_RC_DISCONNECT_WITH_WILL;
}

static void v5_disconnect_props(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_DISCONNECT;
    p->disconnect.rc = EP_MQTT_RC_SERVER_SHUTTING_DOWN;
    SET(&p->disconnect.props, SESSION_EXPIRY_INTERVAL);
    p->disconnect.props.session_expiry_interval = 0;
    SET(&p->disconnect.props, REASON_STRING);
    p->disconnect.props.reason_string = S("down");
}

static void v5_auth_min(ep_mqtt_packet *p) { p->type = EP_MQTT_AUTH; }

static void v5_auth_continue(ep_mqtt_packet *p)
{
    p->type = EP_MQTT_AUTH;
    p->auth.rc = EP_MQTT_RC_CONTINUE_AUTHENTICATION;
    SET(&p->auth.props, AUTHENTICATION_METHOD);
    p->auth.props.authentication_method = S("SCRAM");
    SET(&p->auth.props, AUTHENTICATION_DATA);
    p->auth.props.authentication_data = S("abc");
}

static const golden vectors[] = {
    /* 3.1.1 */
    {"v4 CONNECT minimal", 4, "10 0e | 00 04 4d 51 54 54 | 04 | 02 | 00 3c | 00 02 63 31",
     v4_connect_min},
    {"v4 CONNECT will+user+password (flags 0xCE)", 4,
     "10 23 | 00 04 4d 51 54 54 | 04 | ce | 00 0a | 00 03 63 69 64"
     "| 00 03 77 2f 74 | 00 03 62 79 65 | 00 04 75 73 65 72 | 00 02 70 77",
     v4_connect_full},
    {"v4 CONNACK accepted", 4, "20 02 00 00", v4_connack},
    {"v4 CONNACK session present", 4, "20 02 01 00", v4_connack_sp},
    {"v4 CONNACK not authorized", 4, "20 02 00 05", v4_connack_notauth},
    {"v4 CONNACK unacceptable protocol version", 4, "20 02 00 01", v4_connack_badver},
    {"v4 PUBLISH qos0", 4, "30 07 | 00 03 61 2f 62 | 68 69", v4_publish_q0},
    {"v4 PUBLISH qos1 dup retain", 4, "3b 08 | 00 03 61 2f 62 | 00 0a | 78", v4_publish_q1},
    {"v4 PUBLISH qos2 empty payload", 4, "34 07 | 00 03 61 2f 62 | 00 0a", v4_publish_q2},
    {"v4 PUBLISH UTF-8 topic", 4, "30 07 | 00 05 41 f0 aa 9b 94", v4_publish_utf8},
    {"v4 PUBACK", 4, "40 02 00 0a", v4_puback},
    {"v4 PUBREC", 4, "50 02 00 0a", v4_pubrec},
    {"v4 PUBREL", 4, "62 02 00 0a", v4_pubrel},
    {"v4 PUBCOMP", 4, "70 02 00 0a", v4_pubcomp},
    {"v4 SUBSCRIBE", 4, "82 0e | 00 0a | 00 03 61 2f 62 01 | 00 03 63 2f 64 02", v4_subscribe},
    {"v4 SUBACK", 4, "90 06 | 00 0a | 00 01 02 80", v4_suback},
    {"v4 UNSUBSCRIBE", 4, "a2 0c | 00 0a | 00 03 61 2f 62 | 00 03 63 2f 64", v4_unsubscribe},
    {"v4 UNSUBACK", 4, "b0 02 00 0a", v4_unsuback},
    {"v4 PINGREQ", 4, "c0 00", pingreq},
    {"v4 PINGRESP", 4, "d0 00", pingresp},
    {"v4 DISCONNECT", 4, "e0 00", disconnect},

    /* 5.0 */
    {"v5 CONNECT minimal", 5, "10 0d | 00 04 4d 51 54 54 | 05 | 02 | 00 00 | 00 | 00 00",
     v5_connect_min},
    {"v5 CONNECT all properties + will properties", 5,
     "10 70 | 00 04 4d 51 54 54 | 05 | ce | 00 0a"
     "| 28 | 11 00 00 00 0a | 15 00 05 53 43 52 41 4d | 16 00 02 01 02 | 17 00"
     "| 19 01 | 21 00 14 | 22 00 05 | 27 00 00 04 00 | 26 00 01 6b 00 01 76"
     "| 00 03 63 69 64"
     "| 23 | 01 01 | 02 00 00 00 3c | 03 00 04 74 65 78 74 | 08 00 01 72"
     "| 09 00 02 69 64 | 18 00 00 00 05 | 26 00 01 61 00 01 62"
     "| 00 03 77 2f 74 | 00 03 62 79 65 | 00 04 75 73 65 72 | 00 02 70 77",
     v5_connect_full},
    {"v5 CONNECT password without user name", 5,
     "10 12 | 00 04 4d 51 54 54 | 05 | 42 | 00 00 | 00 | 00 01 63 | 00 02 00 ff",
     v5_connect_pw_only},
    {"v5 CONNACK all properties", 5,
     "20 35 | 00 | 00 | 32 | 11 00 00 00 78 | 12 00 06 61 75 74 6f 2d 31"
     "| 13 00 1e | 1a 00 02 72 69 | 21 00 0a | 22 00 08 | 24 01 | 25 00"
     "| 27 00 01 00 00 | 28 01 | 29 00 | 2a 01 | 26 00 01 78 00 01 79",
     v5_connack_full},
    {"v5 CONNACK not authorized", 5, "20 03 00 87 00", v5_connack_notauth},
    {"v5 CONNACK use another server", 5,
     "20 10 | 00 | 9c | 0d | 1c 00 04 68 6f 73 74 | 1f 00 03 62 79 65", v5_connack_redirect},
    {"v5 PUBLISH qos1 all properties", 5,
     "32 39 | 00 03 61 2f 62 | 00 0a | 2f | 01 01 | 02 00 00 00 1e"
     "| 03 00 04 6a 73 6f 6e | 08 00 03 72 2f 31 | 09 00 02 c0 de | 23 00 03"
     "| 0b 01 | 0b c8 01 | 26 00 01 61 00 01 31 | 26 00 01 62 00 01 32 | 7b 7d",
     v5_publish_full},
    {"v5 PUBLISH topic alias, empty topic", 5, "30 07 | 00 00 | 03 23 00 05 | 7a",
     v5_publish_alias},
    {"v5 PUBLISH qos0 no properties", 5, "30 08 | 00 03 61 2f 62 | 00 | 68 69", v5_publish_min},
    {"v5 PUBACK short form", 5, "40 02 00 0a", v5_puback_min},
    {"v5 PUBACK reason code only", 5, "40 03 00 0a 10", v5_puback_rc},
    {"v5 PUBACK reason string", 5, "40 09 | 00 0a | 87 | 05 1f 00 02 6e 6f", v5_puback_reason},
    {"v5 PUBREC id in use", 5, "50 03 00 0a 91", v5_pubrec},
    {"v5 PUBREL id not found", 5, "62 03 00 0a 92", v5_pubrel},
    {"v5 PUBCOMP user property", 5, "70 0b | 00 0a | 00 | 07 26 00 01 6b 00 01 76",
     v5_pubcomp_user},
    {"v5 SUBSCRIBE options, shared, sub id", 5,
     "82 25 | 00 0a | 09 0b 2a 26 00 01 75 00 01 76 | 00 03 61 2f 2b 2d"
     "| 00 0c 24 73 68 61 72 65 2f 67 2f 73 2f 23 02 | 00 01 23 10",
     v5_subscribe},
    {"v5 SUBACK", 5, "90 0d | 00 0a | 05 1f 00 02 6f 6b | 01 02 00 a2 8f", v5_suback},
    {"v5 UNSUBSCRIBE", 5, "a2 0d | 00 0a | 00 | 00 03 61 2f 62 | 00 03 63 2f 64", v5_unsubscribe},
    {"v5 UNSUBACK", 5, "b0 05 | 00 0a | 00 | 00 11", v5_unsuback},
    {"v5 PINGREQ", 5, "c0 00", pingreq},
    {"v5 PINGRESP", 5, "d0 00", pingresp},
    {"v5 DISCONNECT normal", 5, "e0 00", disconnect},
    {"v5 DISCONNECT with will", 5, "e0 01 04", v5_disconnect_will},
    {"v5 DISCONNECT properties", 5, "e0 0e | 8b | 0c | 11 00 00 00 00 | 1f 00 04 64 6f 77 6e",
     v5_disconnect_props},
    {"v5 AUTH success short form", 5, "f0 00", v5_auth_min},
    {"v5 AUTH continue", 5, "f0 10 | 18 | 0e | 15 00 05 53 43 52 41 4d | 16 00 03 61 62 63",
     v5_auth_continue},
};

#define NVEC (sizeof(vectors) / sizeof(vectors[0]))

static void dump_corpus(const golden *g, const uint8_t *bytes, size_t n, size_t idx)
{
    const char *dir = getenv("EP_MQTT_CORPUS_DIR");
    if (dir == NULL)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/golden-%02zu", dir, idx);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    uint8_t sel = g->version == 4 ? 1 : 2;
    fwrite(&sel, 1, 1, f);
    fwrite(bytes, 1, n, f);
    fclose(f);
}

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC; i++) {
        const golden *g = &vectors[i];
        uint8_t want[512];
        size_t wn = hex_decode(g->hex, want, sizeof(want));
        ep_mqtt_packet exp, got;
        memset(&exp, 0, sizeof(exp));
        g->build(&exp);

        /* encode */
        ep_buf b;
        ep_buf_init(&b, 0);
        ep_err err = ep_mqtt_packet_encode(&b, &exp, g->version, 0);
        if (err)
            fail_msg("%s: encode failed: %s", g->name, ep_err_name(err));
        assert_bytes(g->name, ep_buf_head(&b), ep_buf_used(&b), want, wn);

        /* frame */
        size_t hl = 0, tl = 0;
        assert_int_equal(ep_mqtt_packet_frame(want, wn, 0, &hl, &tl), EP_EOK);
        assert_int_equal(tl, wn);
        assert_int_equal(hl, 2);
        assert_int_equal(ep_mqtt_packet_frame(want, wn - 1, 0, &hl, &tl), EP_ENEEDMORE);

        /* decode */
        ep_mqtt_rc rc = 0xFF;
        err = ep_mqtt_packet_decode(want, wn, g->version, &got, &rc);
        if (err)
            fail_msg("%s: decode failed: %s rc 0x%02x", g->name, ep_err_name(err), rc);
        assert_int_equal(rc, EP_MQTT_RC_SUCCESS);
        if (!ep_mqtt_packet_eq(&got, &exp))
            fail_msg("%s: decoded packet differs from expected", g->name);

        /* CONNECT also decodes before the version is known */
        if (exp.type == EP_MQTT_CONNECT) {
            ep_mqtt_packet g0;
            assert_int_equal(ep_mqtt_packet_decode(want, wn, 0, &g0, NULL), EP_EOK);
            assert_true(ep_mqtt_packet_eq(&g0, &exp));
        }

        /* round trip: the decoded struct re-encodes to the same bytes */
        ep_buf_clear(&b);
        err = ep_mqtt_packet_encode(&b, &got, g->version, 0);
        if (err)
            fail_msg("%s: re-encode failed: %s", g->name, ep_err_name(err));
        assert_bytes(g->name, ep_buf_head(&b), ep_buf_used(&b), want, wn);

        /* the exact size fits a max packet of that size, one less does not */
        ep_buf_clear(&b);
        assert_int_equal(ep_mqtt_packet_encode(&b, &exp, g->version, (uint32_t)wn), EP_EOK);
        ep_buf_fini(&b);
        dump_corpus(g, want, wn, i);
    }
}

/* Explicit field checks, independent of ep_mqtt_packet_eq. */
static void test_decode_fields_v5_connect(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n = 0;
    for (size_t i = 0; i < NVEC; i++)
        if (vectors[i].build == v5_connect_full)
            n = hex_decode(vectors[i].hex, buf, sizeof(buf));
    ep_mqtt_packet p;
    assert_int_equal(ep_mqtt_packet_decode(buf, n, 0, &p, NULL), EP_EOK);
    const ep_mqtt_connect *c = &p.connect;
    assert_int_equal(p.type, EP_MQTT_CONNECT);
    assert_int_equal(c->protocol_version, 5);
    assert_true(c->clean_start && c->has_will && c->has_username && c->has_password);
    assert_int_equal(c->will.qos, 1);
    assert_false(c->will.retain);
    assert_int_equal(c->keep_alive, 10);
    assert_true(ep_mqtt_slice_eq(c->client_id, S("cid")));
    assert_true(c->client_id.p >= buf && c->client_id.p < buf + n); /* zero-copy */
    assert_true(ep_mqtt_slice_eq(c->username, S("user")));
    assert_true(ep_mqtt_slice_eq(c->password, S("pw")));
    assert_true(ep_mqtt_slice_eq(c->will.topic, S("w/t")));
    assert_true(ep_mqtt_slice_eq(c->will.payload, S("bye")));
    assert_int_equal(c->props.session_expiry_interval, 10);
    assert_int_equal(c->props.receive_maximum, 20);
    assert_int_equal(c->props.topic_alias_maximum, 5);
    assert_int_equal(c->props.maximum_packet_size, 1024);
    assert_int_equal(c->props.request_response_information, 1);
    assert_true(EP_MQTT_PROPS_HAS(&c->props, EP_MQTT_PROP_REQUEST_PROBLEM_INFORMATION));
    assert_int_equal(c->props.request_problem_information, 0);
    assert_true(ep_mqtt_slice_eq(c->props.authentication_method, S("SCRAM")));
    assert_true(ep_mqtt_slice_eq(c->props.authentication_data, S("\x01\x02")));
    assert_int_equal(c->props.user_count, 1);
    assert_int_equal(c->props.raw.len, 0x28);
    assert_false(EP_MQTT_PROPS_HAS(&c->props, EP_MQTT_PROP_TOPIC_ALIAS));
    assert_int_equal(c->will.props.will_delay_interval, 5);
    assert_int_equal(c->will.props.payload_format_indicator, 1);
    assert_int_equal(c->will.props.message_expiry_interval, 60);
    assert_true(ep_mqtt_slice_eq(c->will.props.content_type, S("text")));
    assert_true(ep_mqtt_slice_eq(c->will.props.response_topic, S("r")));
    assert_true(ep_mqtt_slice_eq(c->will.props.correlation_data, S("id")));
    size_t it = 0;
    ep_mqtt_user_prop u;
    assert_true(ep_mqtt_props_user_next(&c->will.props, &it, &u));
    assert_true(ep_mqtt_slice_eq(u.name, S("a")) && ep_mqtt_slice_eq(u.value, S("b")));
    assert_false(ep_mqtt_props_user_next(&c->will.props, &it, &u));
}

static void test_decode_fields_v5_publish(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n = 0;
    for (size_t i = 0; i < NVEC; i++)
        if (vectors[i].build == v5_publish_full)
            n = hex_decode(vectors[i].hex, buf, sizeof(buf));
    ep_mqtt_packet p;
    assert_int_equal(ep_mqtt_packet_decode(buf, n, 5, &p, NULL), EP_EOK);
    const ep_mqtt_publish *m = &p.publish;
    assert_int_equal(m->qos, 1);
    assert_int_equal(m->packet_id, 10);
    assert_true(ep_mqtt_slice_eq(m->topic, S("a/b")));
    assert_true(ep_mqtt_slice_eq(m->payload, S("{}")));
    assert_ptr_equal(m->payload.p, buf + n - 2);
    assert_int_equal(m->props.topic_alias, 3);
    assert_int_equal(m->props.message_expiry_interval, 30);
    assert_int_equal(m->props.sub_id_count, 2);
    assert_int_equal(m->props.subscription_id, 1);
    assert_int_equal(m->props.user_count, 2);
    size_t it = 0;
    uint32_t id;
    assert_true(ep_mqtt_props_sub_id_next(&m->props, &it, &id));
    assert_int_equal(id, 1);
    assert_true(ep_mqtt_props_sub_id_next(&m->props, &it, &id));
    assert_int_equal(id, 200);
    assert_false(ep_mqtt_props_sub_id_next(&m->props, &it, &id));
    it = 0;
    ep_mqtt_user_prop u;
    assert_true(ep_mqtt_props_user_next(&m->props, &it, &u));
    assert_true(ep_mqtt_slice_eq(u.name, S("a")) && ep_mqtt_slice_eq(u.value, S("1")));
    assert_true(ep_mqtt_props_user_next(&m->props, &it, &u));
    assert_true(ep_mqtt_slice_eq(u.name, S("b")) && ep_mqtt_slice_eq(u.value, S("2")));
    assert_false(ep_mqtt_props_user_next(&m->props, &it, &u));
}

static void test_decode_fields_v5_subscribe(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n = 0;
    for (size_t i = 0; i < NVEC; i++)
        if (vectors[i].build == v5_subscribe)
            n = hex_decode(vectors[i].hex, buf, sizeof(buf));
    ep_mqtt_packet p;
    assert_int_equal(ep_mqtt_packet_decode(buf, n, 5, &p, NULL), EP_EOK);
    assert_int_equal(p.subscribe.count, 3);
    assert_int_equal(p.subscribe.props.subscription_id, 42);
    size_t it = 0;
    ep_mqtt_sub s;
    assert_true(ep_mqtt_subscribe_next(&p.subscribe, &it, &s));
    assert_true(ep_mqtt_slice_eq(s.filter, S("a/+")));
    assert_true(s.no_local && s.retain_as_published);
    assert_int_equal(s.qos, 1);
    assert_int_equal(s.retain_handling, 2);
    assert_null(s.share_group.p);
    assert_true(ep_mqtt_slice_eq(s.share_filter, S("a/+")));
    assert_true(ep_mqtt_subscribe_next(&p.subscribe, &it, &s));
    assert_true(ep_mqtt_slice_eq(s.filter, S("$share/g/s/#")));
    assert_true(ep_mqtt_slice_eq(s.share_group, S("g")));
    assert_true(ep_mqtt_slice_eq(s.share_filter, S("s/#")));
    assert_int_equal(s.qos, 2);
    assert_true(ep_mqtt_subscribe_next(&p.subscribe, &it, &s));
    assert_true(ep_mqtt_slice_eq(s.filter, S("#")));
    assert_int_equal(s.retain_handling, 1);
    assert_false(ep_mqtt_subscribe_next(&p.subscribe, &it, &s));
}

static void test_v3_connack_codes(void **state)
{
    (void)state;
    for (uint8_t code = 0; code <= 5; code++) {
        uint8_t pkt[4] = {0x20, 0x02, 0x00, code};
        ep_mqtt_packet p;
        assert_int_equal(ep_mqtt_packet_decode(pkt, 4, 4, &p, NULL), EP_EOK);
        assert_int_equal(ep_mqtt_rc_to_v3_connack(p.connack.rc), code);
        ep_buf b;
        ep_buf_init(&b, 0);
        assert_int_equal(ep_mqtt_packet_encode(&b, &p, 4, 0), EP_EOK);
        assert_memory_equal(ep_buf_head(&b), pkt, 4);
        ep_buf_fini(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_decode_fields_v5_connect),
        cmocka_unit_test(test_decode_fields_v5_publish),
        cmocka_unit_test(test_decode_fields_v5_subscribe),
        cmocka_unit_test(test_v3_connack_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
