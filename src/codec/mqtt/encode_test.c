/*
 * encode_test.c - encoder argument checks, Maximum Packet Size handling
 * (including dropping Reason String / User Properties), buffer limits, and
 * the PUBLISH fan-out fast path against the full encoder.
 */
#include "codec/mqtt/testutil.h"

#include <stdlib.h>

static ep_err enc(ep_buf *b, const ep_mqtt_packet *p, uint8_t v, uint32_t max)
{
    return ep_mqtt_packet_encode(b, p, v, max);
}

static void test_invalid(void **state)
{
    (void)state;
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_buf_append(&b, "xyz", 3), EP_EOK); /* pre-existing data */
    ep_mqtt_packet p;

#define BAD(setup, ver)                                                                            \
    do {                                                                                           \
        memset(&p, 0, sizeof(p));                                                                  \
        setup;                                                                                     \
        assert_int_equal(enc(&b, &p, ver, 0), EP_EINVAL);                                          \
        assert_int_equal(ep_buf_used(&b), 3);                                                      \
    } while (0)

    BAD((p.type = EP_MQTT_PINGREQ), 3);
    BAD((p.type = EP_MQTT_PINGREQ), 0);
    BAD((p.type = 0), 4);
    BAD((p.type = 16), 4);
    BAD((p.type = EP_MQTT_AUTH), 4);
    BAD((p.type = EP_MQTT_PUBLISH, p.publish.topic = S("a"), p.publish.qos = 3), 4);
    BAD((p.type = EP_MQTT_PUBLISH, p.publish.topic = S("a"), p.publish.qos = 1), 4);
    BAD((p.type = EP_MQTT_PUBLISH, p.publish.topic = S("a"), p.publish.dup = true), 4);
    BAD((p.type = EP_MQTT_PUBLISH), 4);
    BAD((p.type = EP_MQTT_PUBLISH), 5);
    BAD((p.type = EP_MQTT_PUBACK), 4);
    BAD((p.type = EP_MQTT_SUBSCRIBE, p.subscribe.packet_id = 1), 4);
    BAD((p.type = EP_MQTT_UNSUBSCRIBE, p.unsubscribe.packet_id = 1), 5);
    BAD((p.type = EP_MQTT_SUBACK, p.suback.packet_id = 1), 5);
    BAD((p.type = EP_MQTT_CONNECT, p.connect.has_password = true), 4);
    BAD((p.type = EP_MQTT_CONNECT, p.connect.has_will = true, p.connect.will.qos = 3), 5);
    static const ep_mqtt_sub rh3 = {.filter = {(const uint8_t *)"a", 1}, .retain_handling = 3};
    BAD((p.type = EP_MQTT_SUBSCRIBE, p.subscribe.packet_id = 1, p.subscribe.subs = &rh3,
         p.subscribe.n_subs = 1),
        5);
    /* properties the packet type does not allow */
    BAD((p.type = EP_MQTT_CONNACK, EP_MQTT_PROPS_SET(&p.connack.props, EP_MQTT_PROP_TOPIC_ALIAS),
         p.connack.props.topic_alias = 1),
        5);
    BAD((p.type = EP_MQTT_PUBLISH, p.publish.topic = S("a"),
         EP_MQTT_PROPS_SET(&p.publish.props, EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL)),
        5);
    BAD((p.type = EP_MQTT_CONNECT, p.connect.has_will = true, p.connect.will.topic = S("w"),
         EP_MQTT_PROPS_SET(&p.connect.will.props, EP_MQTT_PROP_RECEIVE_MAXIMUM),
         p.connect.will.props.receive_maximum = 1),
        5);
    BAD((p.type = EP_MQTT_PUBACK, p.ack.packet_id = 1, p.ack.props.present = UINT64_C(1) << 50), 5);
    static const uint32_t two_ids[] = {1, 2};
    static const ep_mqtt_sub ok_sub = {.filter = {(const uint8_t *)"a", 1}};
    BAD((p.type = EP_MQTT_SUBSCRIBE, p.subscribe.packet_id = 1, p.subscribe.subs = &ok_sub,
         p.subscribe.n_subs = 1, p.subscribe.props.sub_ids = two_ids,
         p.subscribe.props.n_sub_ids = 2),
        5);
    static const ep_mqtt_user_prop one_up[] = {
        {{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}}};
    BAD((p.type = EP_MQTT_UNSUBACK, p.suback.packet_id = 1, p.suback.codes = S("\x00"),
         p.suback.props.sub_ids = two_ids, p.suback.props.n_sub_ids = 1),
        5);
    /* ... while the same in 3.1.1 is simply not written */
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_PUBACK;
    p.ack.packet_id = 1;
    p.ack.props.user = one_up;
    p.ack.props.n_user = 1;
    assert_int_equal(enc(&b, &p, 4, 0), EP_EOK);
    assert_int_equal(ep_buf_used(&b), 3 + 4);
    ep_buf_clear(&b);
    assert_int_equal(ep_buf_append(&b, "xyz", 3), EP_EOK);

    char *big = calloc(1, 70000);
    assert_non_null(big);
    BAD((p.type = EP_MQTT_PUBLISH, p.publish.topic = ep_mqtt_slice_make(big, 65536)), 4);
    BAD((p.type = EP_MQTT_CONNECT, p.connect.client_id = ep_mqtt_slice_make(big, 65536)), 4);
    BAD((p.type = EP_MQTT_DISCONNECT, p.disconnect.rc = 0x80,
         EP_MQTT_PROPS_SET(&p.disconnect.props, EP_MQTT_PROP_REASON_STRING),
         p.disconnect.props.reason_string = ep_mqtt_slice_make(big, 65536)),
        5);
    free(big);
#undef BAD
    ep_buf_fini(&b);
}

static void test_max_packet(void **state)
{
    (void)state;
    ep_buf b;
    ep_buf_init(&b, 0);
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_PUBLISH;
    p.publish.topic = S("a/b");
    p.publish.payload = S("0123456789");
    /* 2 + 5 + 1 + 10 = 18 bytes in v5 */
    assert_int_equal(enc(&b, &p, 5, 17), EP_ETOOBIG);
    assert_int_equal(ep_buf_used(&b), 0);
    assert_int_equal(enc(&b, &p, 5, 18), EP_EOK);
    assert_int_equal(ep_buf_used(&b), 18);

    /* PUBACK with Reason String + User Property: dropped to fit */
    static const ep_mqtt_user_prop up[] = {{{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}}};
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_PUBACK;
    p.ack.packet_id = 7;
    p.ack.rc = EP_MQTT_RC_QUOTA_EXCEEDED;
    EP_MQTT_PROPS_SET(&p.ack.props, EP_MQTT_PROP_REASON_STRING);
    p.ack.props.reason_string = S("too many");
    p.ack.props.user = up;
    p.ack.props.n_user = 1;
    ep_buf_clear(&b);
    assert_int_equal(enc(&b, &p, 5, 0), EP_EOK);
    size_t full = ep_buf_used(&b);
    assert_int_equal(full, 2 + 2 + 1 + 1 + 11 + 7);
    ep_buf_clear(&b);
    assert_int_equal(enc(&b, &p, 5, (uint32_t)full - 1), EP_EOK);
    uint8_t want[] = {0x40, 0x03, 0x00, 0x07, 0x97};
    assert_bytes("PUBACK without optional props", ep_buf_head(&b), ep_buf_used(&b), want,
                 sizeof(want));
    ep_buf_clear(&b);
    assert_int_equal(enc(&b, &p, 5, 4), EP_ETOOBIG);

    /* DISCONNECT keeps Session Expiry and Server Reference, drops the rest */
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_DISCONNECT;
    p.disconnect.rc = EP_MQTT_RC_SERVER_MOVED;
    EP_MQTT_PROPS_SET(&p.disconnect.props, EP_MQTT_PROP_SERVER_REFERENCE);
    p.disconnect.props.server_reference = S("h");
    EP_MQTT_PROPS_SET(&p.disconnect.props, EP_MQTT_PROP_REASON_STRING);
    p.disconnect.props.reason_string = S("moved to another host");
    ep_buf_clear(&b);
    assert_int_equal(enc(&b, &p, 5, 10), EP_EOK);
    uint8_t want2[] = {0xE0, 0x06, 0x9D, 0x04, 0x1C, 0x00, 0x01, 0x68};
    assert_bytes("DISCONNECT without reason string", ep_buf_head(&b), ep_buf_used(&b), want2,
                 sizeof(want2));

    /* the ep_buf limit is honoured too */
    ep_buf lim;
    ep_buf_init(&lim, 4);
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_PUBLISH;
    p.publish.topic = S("abc");
    assert_int_equal(enc(&lim, &p, 4, 0), EP_ETOOBIG);
    assert_int_equal(ep_buf_used(&lim), 0);
    ep_buf_fini(&lim);
    ep_buf_fini(&b);
}

static void test_large_payload(void **state)
{
    (void)state;
    size_t n = 3u << 20;
    uint8_t *payload = malloc(n);
    assert_non_null(payload);
    for (size_t i = 0; i < n; i++)
        payload[i] = (uint8_t)i;
    ep_mqtt_packet p, q;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_PUBLISH;
    p.publish.qos = 2;
    p.publish.packet_id = 65535;
    p.publish.topic = S("big");
    p.publish.payload = ep_mqtt_slice_make(payload, n);
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(enc(&b, &p, 5, 0), EP_EOK);
    size_t hl, tl;
    assert_int_equal(ep_mqtt_packet_frame(ep_buf_head(&b), ep_buf_used(&b), 0, &hl, &tl), EP_EOK);
    assert_int_equal(hl, 5);
    assert_int_equal(tl, ep_buf_used(&b));
    assert_int_equal(ep_mqtt_packet_frame(ep_buf_head(&b), ep_buf_used(&b), 1u << 20, &hl, &tl),
                     EP_ETOOBIG);
    assert_int_equal(ep_mqtt_packet_decode(ep_buf_head(&b), tl, 5, &q, NULL), EP_EOK);
    assert_true(ep_mqtt_packet_eq(&p, &q));
    ep_buf_fini(&b);
    free(payload);
}

/* Fast path output decodes to the PUBLISH the full encoder describes. */
static void test_publish_fast_path(void **state)
{
    (void)state;
    /* incoming PUBLISH with alias, expiry and user properties */
    uint8_t in[128];
    size_t n = hex_decode("32 27 00 03 61 2f 62 00 09 1a 23 00 02 26 00 01 6b 00 01 31"
                          " 02 00 00 00 64 03 00 01 74 26 00 01 6b 00 01 32 68 65 6c 6c 6f",
                          in, sizeof(in));
    ep_mqtt_packet src;
    assert_int_equal(ep_mqtt_packet_decode(in, n, 5, &src, NULL), EP_EOK);
    uint8_t fwd[64];
    size_t fn = ep_mqtt_props_filter(src.publish.props.raw,
                                     EP_MQTT_PROP_BIT(EP_MQTT_PROP_TOPIC_ALIAS) |
                                         EP_MQTT_PROP_BIT(EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) |
                                         EP_MQTT_PROP_BIT(EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER),
                                     fwd);

    static const uint32_t subs[] = {3, 300};
    ep_mqtt_publish_hdr h;
    memset(&h, 0, sizeof(h));
    h.qos = 1;
    h.packet_id = 77;
    h.retain = true;
    h.topic = src.publish.topic;
    h.payload_len = src.publish.payload.len;
    h.props = ep_mqtt_slice_make(fwd, fn);
    h.topic_alias = 4;
    h.has_message_expiry = true;
    h.message_expiry = 40;
    h.sub_ids = subs;
    h.n_sub_ids = 2;

    for (uint8_t ver = 4; ver <= 5; ver++) {
        uint8_t out[256];
        size_t hs = ep_mqtt_publish_header_size(&h, ver);
        size_t w = 0;
        assert_int_equal(ep_mqtt_publish_header_write(&h, ver, 0, out, sizeof(out), &w), EP_EOK);
        assert_int_equal(w, hs);
        memcpy(out + w, src.publish.payload.p, src.publish.payload.len);
        size_t total = w + src.publish.payload.len;

        ep_mqtt_packet got;
        assert_int_equal(ep_mqtt_packet_decode(out, total, ver, &got, NULL), EP_EOK);
        assert_int_equal(got.publish.qos, 1);
        assert_int_equal(got.publish.packet_id, 77);
        assert_true(got.publish.retain);
        assert_true(ep_mqtt_slice_eq(got.publish.topic, S("a/b")));
        assert_true(ep_mqtt_slice_eq(got.publish.payload, S("hello")));
        if (ver == 4) {
            assert_int_equal(got.publish.props.present, 0);
            continue;
        }
        const ep_mqtt_props *pr = &got.publish.props;
        assert_int_equal(pr->topic_alias, 4);
        assert_int_equal(pr->message_expiry_interval, 40);
        assert_int_equal(pr->sub_id_count, 2);
        assert_true(ep_mqtt_slice_eq(pr->content_type, S("t")));
        size_t it = 0;
        ep_mqtt_user_prop u;
        assert_true(ep_mqtt_props_user_next(pr, &it, &u));
        assert_true(ep_mqtt_slice_eq(u.value, S("1")));
        assert_true(ep_mqtt_props_user_next(pr, &it, &u));
        assert_true(ep_mqtt_slice_eq(u.value, S("2")));

        /* byte-exact: fixed order expiry, alias, sub ids, then the block */
        uint8_t want[128];
        size_t wn = hex_decode("33 2c 00 03 61 2f 62 00 4d 1f 02 00 00 00 28 23 00 04 0b 03"
                               " 0b ac 02 26 00 01 6b 00 01 31 03 00 01 74 26 00 01 6b 00 01"
                               " 32 68 65 6c 6c 6f",
                               want, sizeof(want));
        assert_bytes("fast path v5", out, total, want, wn);

        /* limits */
        assert_int_equal(
            ep_mqtt_publish_header_write(&h, ver, (uint32_t)total - 1, out, sizeof(out), &w),
            EP_ETOOBIG);
        assert_int_equal(
            ep_mqtt_publish_header_write(&h, ver, (uint32_t)total, out, sizeof(out), &w), EP_EOK);
        assert_int_equal(ep_mqtt_publish_header_write(&h, ver, 0, out, hs - 1, &w), EP_EINVAL);
    }

    /* invalid headers */
    ep_mqtt_publish_hdr bad = h;
    bad.packet_id = 0;
    assert_int_equal(ep_mqtt_publish_header_size(&bad, 5), 0);
    bad = h;
    bad.qos = 0;
    bad.dup = true;
    assert_int_equal(ep_mqtt_publish_header_size(&bad, 5), 0);
    bad = h;
    bad.topic = S("");
    assert_int_equal(ep_mqtt_publish_header_size(&bad, 4), 0);
    assert_true(ep_mqtt_publish_header_size(&bad, 5) > 0); /* alias set */
    bad.topic_alias = 0;
    assert_int_equal(ep_mqtt_publish_header_size(&bad, 5), 0);
    bad = h;
    static const uint32_t zero[] = {0};
    bad.sub_ids = zero;
    bad.n_sub_ids = 1;
    assert_int_equal(ep_mqtt_publish_header_size(&bad, 5), 0);
    size_t w;
    uint8_t out[8];
    assert_int_equal(ep_mqtt_publish_header_write(&bad, 5, 0, out, sizeof(out), &w), EP_EINVAL);
    bad = h;
    bad.payload_len = EP_MQTT_MAX_REMAINING;
    assert_int_equal(ep_mqtt_publish_header_size(&bad, 5), 0);
    assert_int_equal(ep_mqtt_publish_header_write(&bad, 5, 0, out, sizeof(out), &w), EP_ETOOBIG);
}

/* 3.1.1 encoders map v5-only values down. */
static void test_v3_mapping(void **state)
{
    (void)state;
    ep_buf b;
    ep_buf_init(&b, 0);
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_SUBACK;
    p.suback.packet_id = 1;
    p.suback.codes = S("\x00\x01\x02\x80\x87\xA2");
    assert_int_equal(enc(&b, &p, 4, 0), EP_EOK);
    uint8_t want[] = {0x90, 0x08, 0x00, 0x01, 0x00, 0x01, 0x02, 0x80, 0x80, 0x80};
    assert_bytes("v3 SUBACK", ep_buf_head(&b), ep_buf_used(&b), want, sizeof(want));

    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_CONNACK;
    p.connack.rc = EP_MQTT_RC_BANNED;
    ep_buf_clear(&b);
    assert_int_equal(enc(&b, &p, 4, 0), EP_EOK);
    uint8_t want2[] = {0x20, 0x02, 0x00, 0x05};
    assert_bytes("v3 CONNACK banned", ep_buf_head(&b), ep_buf_used(&b), want2, sizeof(want2));

    /* v5-only fields are not written in 3.1.1 */
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_DISCONNECT;
    p.disconnect.rc = EP_MQTT_RC_SERVER_SHUTTING_DOWN;
    ep_buf_clear(&b);
    assert_int_equal(enc(&b, &p, 4, 0), EP_EOK);
    uint8_t want3[] = {0xE0, 0x00};
    assert_bytes("v3 DISCONNECT", ep_buf_head(&b), ep_buf_used(&b), want3, sizeof(want3));
    ep_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid),       cmocka_unit_test(test_max_packet),
        cmocka_unit_test(test_large_payload), cmocka_unit_test(test_publish_fast_path),
        cmocka_unit_test(test_v3_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
