/*
 * frame_test.c - Remaining Length framing: the spec's Variable Byte Integer
 * table, minimal-encoding and 4-byte limits, and rejection of oversized
 * packets from the fixed header alone.
 */
#include "codec/mqtt/testutil.h"

#include <stdlib.h>

/* MQTT 5 section 1.5.5 / 3.1.1 section 2.2.3 examples. */
static const struct {
    uint32_t v;
    const char *hex;
} varints[] = {
    {0, "00"},
    {127, "7f"},
    {128, "80 01"},
    {16383, "ff 7f"},
    {16384, "80 80 01"},
    {2097151, "ff ff 7f"},
    {2097152, "80 80 80 01"},
    {268435455, "ff ff ff 7f"},
};

static void test_varint_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(varints) / sizeof(varints[0]); i++) {
        uint8_t want[4], got[4];
        size_t wn = hex_decode(varints[i].hex, want, 4);
        size_t gn = ep_mqtt_varint_write(got, varints[i].v);
        assert_int_equal(ep_mqtt_varint_size(varints[i].v), wn);
        assert_bytes(varints[i].hex, got, gn, want, wn);

        /* framing reads the same value back */
        uint8_t hdr[5] = {0x30};
        memcpy(hdr + 1, want, wn);
        size_t hl = 0, tl = 0;
        ep_err err = ep_mqtt_packet_frame(hdr, 1 + wn, 0, &hl, &tl);
        if (varints[i].v == 0) {
            assert_int_equal(err, EP_EOK);
            assert_int_equal(tl, 2);
        } else {
            assert_int_equal(err, EP_ENEEDMORE); /* body not there yet */
        }
        /* with a limit just below the packet size it is refused from the header */
        uint64_t total = 1 + wn + (uint64_t)varints[i].v;
        if (varints[i].v > 0) {
            assert_int_equal(ep_mqtt_packet_frame(hdr, 1 + wn, (uint32_t)(total - 1), &hl, &tl),
                             EP_ETOOBIG);
            assert_int_equal(ep_mqtt_packet_frame(hdr, 1 + wn, (uint32_t)total, &hl, &tl),
                             EP_ENEEDMORE);
        }
    }
    assert_int_equal(ep_mqtt_varint_size(268435456u), 0);
    uint8_t out[4];
    assert_int_equal(ep_mqtt_varint_write(out, 268435456u), 0);
}

static void test_frame_whole_packets(void **state)
{
    (void)state;
    /* two packets back to back plus a partial third */
    uint8_t s[] = {0xC0, 0x00, 0x30, 0x05, 0x00, 0x01, 0x61, 0x68, 0x69, 0xE0};
    size_t hl, tl;
    assert_int_equal(ep_mqtt_packet_frame(s, sizeof(s), 0, &hl, &tl), EP_EOK);
    assert_int_equal(hl, 2);
    assert_int_equal(tl, 2);
    assert_int_equal(ep_mqtt_packet_frame(s + 2, sizeof(s) - 2, 0, &hl, &tl), EP_EOK);
    assert_int_equal(tl, 7);
    hl = tl = 99;
    assert_int_equal(ep_mqtt_packet_frame(s + 9, 1, 0, &hl, &tl), EP_ENEEDMORE);
    assert_int_equal(hl, 99); /* untouched */
    assert_int_equal(tl, 99);
    assert_int_equal(ep_mqtt_packet_frame(s, 0, 0, &hl, &tl), EP_ENEEDMORE);
    assert_int_equal(ep_mqtt_packet_frame(s, 2, 0, NULL, &tl), EP_EINVAL);

    /* 3-byte Remaining Length: header length 4 */
    size_t big = 20000;
    uint8_t *p = calloc(1, big + 4);
    assert_non_null(p);
    p[0] = 0x30;
    assert_int_equal(ep_mqtt_varint_write(p + 1, (uint32_t)big), 3);
    assert_int_equal(ep_mqtt_packet_frame(p, big + 4, 0, &hl, &tl), EP_EOK);
    assert_int_equal(hl, 4);
    assert_int_equal(tl, big + 4);
    assert_int_equal(ep_mqtt_packet_frame(p, big + 3, 0, &hl, &tl), EP_ENEEDMORE);
    assert_int_equal(ep_mqtt_packet_frame(p, big + 4, (uint32_t)big + 3, &hl, &tl), EP_ETOOBIG);
    free(p);
}

static void test_frame_malformed(void **state)
{
    (void)state;
    size_t hl, tl;
    /* continuation bit on the 4th byte: a 5th length byte is not allowed */
    uint8_t five[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    assert_int_equal(ep_mqtt_packet_frame(five, sizeof(five), 0, &hl, &tl), EP_EMALFORMED);
    uint8_t five_short[] = {0x30, 0x80, 0x80, 0x80, 0x80};
    assert_int_equal(ep_mqtt_packet_frame(five_short, 5, 0, &hl, &tl), EP_EMALFORMED);
    /* non-minimal encodings [MQTT-1.5.5-1] */
    uint8_t nm1[] = {0x30, 0x80, 0x00};
    assert_int_equal(ep_mqtt_packet_frame(nm1, sizeof(nm1), 0, &hl, &tl), EP_EMALFORMED);
    uint8_t nm2[] = {0x30, 0x85, 0x80, 0x00};
    assert_int_equal(ep_mqtt_packet_frame(nm2, sizeof(nm2), 0, &hl, &tl), EP_EMALFORMED);
    uint8_t nm3[] = {0x30, 0xFF, 0x80, 0x80, 0x00};
    assert_int_equal(ep_mqtt_packet_frame(nm3, sizeof(nm3), 0, &hl, &tl), EP_EMALFORMED);
    /* reserved packet type 0 */
    uint8_t t0[] = {0x00, 0x00};
    assert_int_equal(ep_mqtt_packet_frame(t0, 2, 0, &hl, &tl), EP_EMALFORMED);
}

static void test_frame_too_big_from_header(void **state)
{
    (void)state;
    size_t hl, tl;
    /* 256 MB claim, only the 5 header bytes present, 1 MB limit */
    uint8_t huge[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    assert_int_equal(ep_mqtt_packet_frame(huge, 5, 1u << 20, &hl, &tl), EP_ETOOBIG);
    /* without a limit the protocol maximum applies: just wait for the body */
    assert_int_equal(ep_mqtt_packet_frame(huge, 5, 0, &hl, &tl), EP_ENEEDMORE);
    /* partial length bytes that already imply > limit are refused early */
    uint8_t partial[] = {0x30, 0xFF, 0xFF};
    assert_int_equal(ep_mqtt_packet_frame(partial, 3, 1000, &hl, &tl), EP_ETOOBIG);
    assert_int_equal(ep_mqtt_packet_frame(partial, 3, 0, &hl, &tl), EP_ENEEDMORE);
    /* but not while the value could still be small enough */
    uint8_t partial1[] = {0x30, 0x80};
    assert_int_equal(ep_mqtt_packet_frame(partial1, 2, 200, &hl, &tl), EP_ENEEDMORE);
    assert_int_equal(ep_mqtt_packet_frame(partial1, 2, 100, &hl, &tl), EP_ETOOBIG);
    /* exact limit is accepted */
    uint8_t ping[] = {0xC0, 0x00};
    assert_int_equal(ep_mqtt_packet_frame(ping, 2, 2, &hl, &tl), EP_EOK);
    assert_int_equal(ep_mqtt_packet_frame(ping, 2, 1, &hl, &tl), EP_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_table),
        cmocka_unit_test(test_frame_whole_packets),
        cmocka_unit_test(test_frame_malformed),
        cmocka_unit_test(test_frame_too_big_from_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
