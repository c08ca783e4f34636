/*
 * props_test.c - v5 properties: the "allowed in" table checked through the
 * decoder against an independent restatement of the spec's Table 2-4,
 * duplicates, iterators, filtering for forwarding, encode, payload format.
 */
#include "codec/mqtt/testutil.h"

/* Spec Table 2-4, restated: id, value bytes (after the id), where allowed. */
static const struct {
    uint8_t id;
    const char *value;
    const char *where; /* space-separated packet names, WILL for Will Properties */
} spec_props[] = {
    {0x01, "01", "PUBLISH WILL"},
    {0x02, "00 00 00 01", "PUBLISH WILL"},
    {0x03, "00 01 61", "PUBLISH WILL"},
    {0x08, "00 01 61", "PUBLISH WILL"},
    {0x09, "00 01 61", "PUBLISH WILL"},
    {0x0B, "01", "PUBLISH SUBSCRIBE"},
    {0x11, "00 00 00 01", "CONNECT CONNACK DISCONNECT"},
    {0x12, "00 01 61", "CONNACK"},
    {0x13, "00 01", "CONNACK"},
    {0x15, "00 01 61", "CONNECT CONNACK AUTH"},
    {0x16, "00 01 61", "CONNECT CONNACK AUTH"},
    {0x17, "01", "CONNECT"},
    {0x18, "00 00 00 01", "WILL"},
    {0x19, "01", "CONNECT"},
    {0x1A, "00 01 61", "CONNACK"},
    {0x1C, "00 01 61", "CONNACK DISCONNECT"},
    {0x1F, "00 01 61", "CONNACK PUBACK PUBREC PUBREL PUBCOMP SUBACK UNSUBACK DISCONNECT AUTH"},
    {0x21, "00 01", "CONNECT CONNACK"},
    {0x22, "00 01", "CONNECT CONNACK"},
    {0x23, "00 01", "PUBLISH"},
    {0x24, "01", "CONNACK"},
    {0x25, "01", "CONNACK"},
    {0x26, "00 01 61 00 01 62",
     "CONNECT CONNACK PUBLISH WILL PUBACK PUBREC PUBREL PUBCOMP SUBSCRIBE SUBACK "
     "UNSUBSCRIBE UNSUBACK DISCONNECT AUTH"},
    {0x27, "00 00 00 01", "CONNECT CONNACK"},
    {0x28, "01", "CONNACK"},
    {0x29, "01", "CONNACK"},
    {0x2A, "01", "CONNACK"},
};

#define V5HDR "00 04 4d 51 54 54 05"

/* Packet templates; P marks where Property Length + properties go. */
static const struct {
    const char *name;
    int ctx;
    uint8_t first;
    const char *pre, *post;
} templates[] = {
    {"CONNECT", EP_MQTT_CONNECT, 0x10, V5HDR "02 00 3c", "00 01 63"},
    {"WILL", EP_MQTT_PROPS_CTX_WILL, 0x10, V5HDR "06 00 3c 00 00 01 63", "00 01 74 00 00"},
    {"CONNACK", EP_MQTT_CONNACK, 0x20, "00 00", ""},
    {"PUBLISH", EP_MQTT_PUBLISH, 0x30, "00 01 61", ""},
    {"PUBACK", EP_MQTT_PUBACK, 0x40, "00 01 00", ""},
    {"PUBREC", EP_MQTT_PUBREC, 0x50, "00 01 00", ""},
    {"PUBREL", EP_MQTT_PUBREL, 0x62, "00 01 00", ""},
    {"PUBCOMP", EP_MQTT_PUBCOMP, 0x70, "00 01 00", ""},
    {"SUBSCRIBE", EP_MQTT_SUBSCRIBE, 0x82, "00 01", "00 01 61 00"},
    {"SUBACK", EP_MQTT_SUBACK, 0x90, "00 01", "00"},
    {"UNSUBSCRIBE", EP_MQTT_UNSUBSCRIBE, 0xA2, "00 01", "00 01 61"},
    {"UNSUBACK", EP_MQTT_UNSUBACK, 0xB0, "00 01", "00"},
    {"DISCONNECT", EP_MQTT_DISCONNECT, 0xE0, "00", ""},
    {"AUTH", EP_MQTT_AUTH, 0xF0, "00", ""},
};

static bool listed(const char *where, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = where; (p = strstr(p, name)) != NULL; p += n)
        if ((p == where || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
            return true;
    return false;
}

/* Builds template t with `copies` copies of property i; returns length. */
static size_t build(uint8_t *pkt, size_t t, size_t i, int copies)
{
    uint8_t prop[64] = {0}, body[256];
    size_t pn = 0, bn = 0;
    for (int c = 0; c < copies; c++) {
        prop[pn++] = spec_props[i].id;
        pn += hex_decode(spec_props[i].value, prop + pn, sizeof(prop) - pn);
    }
    bn += hex_decode(templates[t].pre, body, sizeof(body));
    body[bn++] = (uint8_t)pn;
    memcpy(body + bn, prop, pn);
    bn += pn;
    bn += hex_decode(templates[t].post, body + bn, sizeof(body) - bn);
    pkt[0] = templates[t].first;
    pkt[1] = (uint8_t)bn;
    memcpy(pkt + 2, body, bn);
    return bn + 2;
}

static void test_allowed_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t t = 0; t < sizeof(templates) / sizeof(templates[0]); t++) {
        for (size_t i = 0; i < sizeof(spec_props) / sizeof(spec_props[0]); i++) {
            bool allowed = listed(spec_props[i].where, templates[t].name);
            if (allowed != ep_mqtt_prop_allowed(spec_props[i].id, templates[t].ctx)) {
                fprintf(stderr, "FAIL table: %s in %s\n", ep_mqtt_prop_name(spec_props[i].id),
                        templates[t].name);
                failures++;
            }
            uint8_t pkt[300];
            size_t n = build(pkt, t, i, 1);
            ep_mqtt_packet out;
            ep_mqtt_rc rc;
            ep_err err = ep_mqtt_packet_decode(pkt, n, 5, &out, &rc);
            ep_err want = allowed ? EP_EOK : EP_EMALFORMED;
            if (err != want) {
                fprintf(stderr, "FAIL decode: %s in %s: %s\n", ep_mqtt_prop_name(spec_props[i].id),
                        templates[t].name, ep_err_name(err));
                failures++;
                continue;
            }
            if (!allowed)
                continue;
            /* twice: only User Property, and Subscription Identifier in
             * PUBLISH, may repeat */
            n = build(pkt, t, i, 2);
            bool repeat = spec_props[i].id == 0x26 ||
                          (spec_props[i].id == 0x0B && templates[t].ctx == EP_MQTT_PUBLISH);
            err = ep_mqtt_packet_decode(pkt, n, 5, &out, &rc);
            if (err != (repeat ? EP_EOK : EP_EPROTO) ||
                rc != (repeat ? EP_MQTT_RC_SUCCESS : EP_MQTT_RC_PROTOCOL_ERROR)) {
                fprintf(stderr, "FAIL duplicate: %s in %s: %s\n",
                        ep_mqtt_prop_name(spec_props[i].id), templates[t].name, ep_err_name(err));
                failures++;
            }
        }
    }
    assert_int_equal(failures, 0);
    /* ids outside the table */
    for (int id = 0; id < 128; id++) {
        bool known = false;
        for (size_t i = 0; i < sizeof(spec_props) / sizeof(spec_props[0]); i++)
            known |= spec_props[i].id == id;
        assert_int_equal(ep_mqtt_prop_name(id) != NULL, known);
    }
    assert_false(ep_mqtt_prop_allowed(-1, 3));
    assert_false(ep_mqtt_prop_allowed(0x26, 16));
}

static void test_iterators_and_filter(void **state)
{
    (void)state;
    /* PUBLISH with user props interleaved with others and two sub ids */
    uint8_t pkt[128];
    size_t n = hex_decode("30 28 00 01 61 22"
                          " 26 00 01 31 00 01 61" /* "1"="a" */
                          " 23 00 07"             /* Topic Alias 7 */
                          " 0b 05"                /* Sub Id 5 */
                          " 26 00 01 32 00 01 62" /* "2"="b" */
                          " 02 00 00 00 3c"       /* Message Expiry 60 */
                          " 0b 81 01"             /* Sub Id 129 */
                          " 26 00 01 31 00 01 63" /* "1"="c" (same name again) */
                          " 70 6c",
                          pkt, sizeof(pkt));
    ep_mqtt_packet p;
    assert_int_equal(ep_mqtt_packet_decode(pkt, n, 5, &p, NULL), EP_EOK);
    const ep_mqtt_props *pr = &p.publish.props;
    assert_int_equal(pr->user_count, 3);
    assert_int_equal(pr->sub_id_count, 2);
    assert_true(ep_mqtt_slice_eq(p.publish.payload, S("pl")));

    const char *want[3][2] = {{"1", "a"}, {"2", "b"}, {"1", "c"}};
    size_t it = 0;
    ep_mqtt_user_prop u;
    for (int i = 0; i < 3; i++) {
        assert_true(ep_mqtt_props_user_next(pr, &it, &u));
        assert_true(ep_mqtt_slice_eq(u.name, ep_mqtt_slice_make(want[i][0], 1)));
        assert_true(ep_mqtt_slice_eq(u.value, ep_mqtt_slice_make(want[i][1], 1)));
    }
    assert_false(ep_mqtt_props_user_next(pr, &it, &u));
    assert_false(ep_mqtt_props_user_next(pr, &it, &u)); /* stays at the end */

    it = 0;
    uint32_t id;
    assert_true(ep_mqtt_props_sub_id_next(pr, &it, &id));
    assert_int_equal(id, 5);
    assert_true(ep_mqtt_props_sub_id_next(pr, &it, &id));
    assert_int_equal(id, 129);
    assert_false(ep_mqtt_props_sub_id_next(pr, &it, &id));

    /* forwardable block: drop alias, sub ids, expiry; user props stay in order */
    uint8_t fwd[64];
    size_t fn = ep_mqtt_props_filter(pr->raw,
                                     EP_MQTT_PROP_BIT(EP_MQTT_PROP_TOPIC_ALIAS) |
                                         EP_MQTT_PROP_BIT(EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER) |
                                         EP_MQTT_PROP_BIT(EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL),
                                     fwd);
    uint8_t want_fwd[32];
    size_t wn = hex_decode("26 00 01 31 00 01 61 26 00 01 32 00 01 62 26 00 01 31 00 01 63",
                           want_fwd, sizeof(want_fwd));
    assert_bytes("filtered", fwd, fn, want_fwd, wn);
    assert_int_equal(ep_mqtt_props_filter(pr->raw, 0, fwd), pr->raw.len);
    assert_memory_equal(fwd, pr->raw.p, pr->raw.len);

    /* iterators on an empty set */
    ep_mqtt_props none;
    memset(&none, 0, sizeof(none));
    it = 0;
    assert_false(ep_mqtt_props_user_next(&none, &it, &u));
    assert_false(ep_mqtt_props_sub_id_next(&none, &it, &id));
}

static void test_props_encode(void **state)
{
    (void)state;
    ep_mqtt_props p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(ep_mqtt_props_size(&p), 0);
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_mqtt_props_encode(&b, &p), EP_EOK);
    assert_int_equal(ep_buf_used(&b), 1);
    assert_int_equal(ep_buf_head(&b)[0], 0);

    static const uint32_t ids[] = {1, 268435455};
    static const ep_mqtt_user_prop up[] = {{{(const uint8_t *)"n", 1}, {(const uint8_t *)"v", 1}}};
    EP_MQTT_PROPS_SET(&p, EP_MQTT_PROP_CONTENT_TYPE);
    p.content_type = S("t");
    p.sub_ids = ids;
    p.n_sub_ids = 2;
    p.user = up;
    p.n_user = 1;
    ep_buf_clear(&b);
    assert_int_equal(ep_mqtt_props_encode(&b, &p), EP_EOK);
    uint8_t want[32];
    size_t wn =
        hex_decode("12 03 00 01 74 0b 01 0b ff ff ff 7f 26 00 01 6e 00 01 76", want, sizeof(want));
    assert_bytes("props", ep_buf_head(&b), ep_buf_used(&b), want, wn);
    assert_int_equal(ep_mqtt_props_size(&p), wn - 1);

    /* unencodable values */
    static const uint32_t zero[] = {0};
    p.sub_ids = zero;
    p.n_sub_ids = 1;
    assert_int_equal(ep_mqtt_props_size(&p), SIZE_MAX);
    ep_buf_clear(&b);
    assert_int_equal(ep_mqtt_props_encode(&b, &p), EP_EINVAL);
    assert_int_equal(ep_buf_used(&b), 0);
    p.n_sub_ids = 0;
    EP_MQTT_PROPS_SET(&p, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
    p.subscription_id = 0;
    assert_int_equal(ep_mqtt_props_encode(&b, &p), EP_EINVAL);
    ep_buf_fini(&b);
}

static void test_payload_check(void **state)
{
    (void)state;
    ep_mqtt_props p;
    memset(&p, 0, sizeof(p));
    ep_mqtt_rc rc;
    assert_int_equal(ep_mqtt_payload_check(&p, S("\xff"), &rc), EP_EOK);
    EP_MQTT_PROPS_SET(&p, EP_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
    p.payload_format_indicator = 0;
    assert_int_equal(ep_mqtt_payload_check(&p, S("\xff"), &rc), EP_EOK);
    p.payload_format_indicator = 1;
    assert_int_equal(ep_mqtt_payload_check(&p, S("h\xc3\xa9llo\x00"), &rc), EP_EOK);
    assert_int_equal(rc, EP_MQTT_RC_SUCCESS);
    assert_int_equal(ep_mqtt_payload_check(&p, S("\xed\xa0\x80"), &rc), EP_EPROTO);
    assert_int_equal(rc, EP_MQTT_RC_PAYLOAD_FORMAT_INVALID);
    assert_int_equal(ep_mqtt_payload_check(NULL, S("\xff"), NULL), EP_EOK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_table),
        cmocka_unit_test(test_iterators_and_filter),
        cmocka_unit_test(test_props_encode),
        cmocka_unit_test(test_payload_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
