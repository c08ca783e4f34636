/* ws_test.c - RFC 6455 vectors: the accept key example of section 1.3,
 * the frame examples of section 5.7, handshake validation and every frame
 * header rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec/ws/ws.h"

static void test_accept_key_rfc_example(void **st)
{
    (void)st;
    char out[29];
    assert_int_equal(ep_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), EP_EOK);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static const char good_req[] = "GET /mqtt HTTP/1.1\r\n"
                               "Host: example\r\n"
                               "Upgrade: WebSocket\r\n"
                               "Connection: keep-alive, Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "\r\n";

static void test_handshake_valid(void **st)
{
    (void)st;
    ep_ws_handshake h;
    int status;
    const char *why;
    long n = ep_ws_handshake_find((const uint8_t *)good_req, sizeof(good_req) - 1);
    assert_int_equal(n, (long)sizeof(good_req) - 1);
    assert_int_equal(ep_ws_handshake_find((const uint8_t *)good_req, 40), 0);
    assert_int_equal(ep_ws_handshake_parse(good_req, (size_t)n, &h, &status, &why), EP_EOK);
    assert_int_equal(status, 101);
    assert_true(h.has_mqtt);
    assert_string_equal(h.key, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_int_equal(h.path_len, 5);
    assert_memory_equal(h.path, "/mqtt", 5);
}

static void expect_bad(const char *req, int want_status)
{
    ep_ws_handshake h;
    int status = 0;
    const char *why = NULL;
    assert_int_equal(ep_ws_handshake_parse(req, strlen(req), &h, &status, &why), EP_EPROTO);
    assert_int_equal(status, want_status);
    assert_non_null(why);
}

static void test_handshake_invalid(void **st)
{
    (void)st;
    expect_bad("POST / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 400);
    expect_bad("GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n", 400);
    expect_bad("GET / HTTP/1.1\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
               426);
    expect_bad("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
               426);
    expect_bad("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
               400);
    expect_bad("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n",
               400);
    expect_bad("GET / HTTP/1.1\r\nbroken header\r\n\r\n", 400);
    /* Without a blank line within the limit the head is refused. */
    static uint8_t big[EP_WS_MAX_HANDSHAKE + 10];
    memset(big, 'a', sizeof(big));
    assert_int_equal(ep_ws_handshake_find(big, sizeof(big)), -1);
}

static void test_frames_rfc_examples(void **st)
{
    (void)st;
    ep_ws_frame f;
    /* 5.7: a single-frame unmasked text message "Hello" */
    static const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    assert_int_equal(ep_ws_frame_parse(unmasked, sizeof(unmasked), 1000, false, &f), EP_EOK);
    assert_true(f.fin);
    assert_int_equal(f.opcode, EP_WS_OP_TEXT);
    assert_int_equal(f.payload_len, 5);
    assert_int_equal(f.header_len, 2);
    assert_int_equal(ep_ws_frame_parse(unmasked, sizeof(unmasked), 1000, true, &f), EP_EPROTO);
    /* 5.7: a single-frame masked text message "Hello" */
    uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    assert_int_equal(ep_ws_frame_parse(masked, sizeof(masked), 1000, true, &f), EP_EOK);
    assert_int_equal(f.header_len, 6);
    /* Unmasking in two pieces gives the same bytes as in one. */
    ep_ws_unmask(masked + 6, 2, f.mask, 0);
    ep_ws_unmask(masked + 8, 3, f.mask, 2);
    assert_memory_equal(masked + 6, "Hello", 5);
    /* 5.7: 256 bytes binary message in a single unmasked frame */
    static const uint8_t len16[] = {0x82, 0x7E, 0x01, 0x00};
    assert_int_equal(ep_ws_frame_parse(len16, sizeof(len16), 1000, false, &f), EP_EOK);
    assert_int_equal(f.payload_len, 256);
    assert_int_equal(f.header_len, 4);
    /* 5.7: 64 KiB binary message in a single unmasked frame */
    static const uint8_t len64[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    assert_int_equal(ep_ws_frame_parse(len64, sizeof(len64), 1 << 20, false, &f), EP_EOK);
    assert_int_equal(f.payload_len, 65536);
    assert_int_equal(ep_ws_frame_parse(len64, sizeof(len64), 1000, false, &f), EP_ETOOBIG);
    assert_int_equal(ep_ws_frame_parse(len64, 5, 1 << 20, false, &f), EP_ENEEDMORE);
}

static void test_frame_rules(void **st)
{
    (void)st;
    ep_ws_frame f;
    static const uint8_t rsv[] = {0xC2, 0x80, 0, 0, 0, 0};
    assert_int_equal(ep_ws_frame_parse(rsv, sizeof(rsv), 100, true, &f), EP_EPROTO);
    static const uint8_t badop[] = {0x83, 0x80, 0, 0, 0, 0};
    assert_int_equal(ep_ws_frame_parse(badop, sizeof(badop), 100, true, &f), EP_EPROTO);
    static const uint8_t fragping[] = {0x09, 0x80, 0, 0, 0, 0};
    assert_int_equal(ep_ws_frame_parse(fragping, sizeof(fragping), 100, true, &f), EP_EPROTO);
    static const uint8_t bigping[] = {0x89, 0xFE, 0x00, 0x7E, 0, 0, 0, 0};
    assert_int_equal(ep_ws_frame_parse(bigping, sizeof(bigping), 1000, true, &f), EP_EPROTO);
    static const uint8_t nonminimal[] = {0x82, 0xFE, 0x00, 0x05, 0, 0, 0, 0};
    assert_int_equal(ep_ws_frame_parse(nonminimal, sizeof(nonminimal), 100, true, &f), EP_EPROTO);
    static const uint8_t topbit[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    assert_int_equal(ep_ws_frame_parse(topbit, sizeof(topbit), UINT64_MAX, true, &f), EP_EPROTO);
    assert_int_equal(ep_ws_frame_parse(topbit, 1, 100, true, &f), EP_ENEEDMORE);
}

static void test_frame_header_roundtrip(void **st)
{
    (void)st;
    uint64_t lens[] = {0, 1, 125, 126, 65535, 65536, 1u << 24};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t h[10];
        ep_ws_frame f;
        size_t hl = ep_ws_frame_header(h, EP_WS_OP_BINARY, true, lens[i]);
        assert_int_equal(ep_ws_frame_parse(h, hl, UINT64_MAX >> 1, false, &f), EP_EOK);
        assert_int_equal(f.header_len, hl);
        assert_int_equal(f.payload_len, lens[i]);
        assert_int_equal(f.opcode, EP_WS_OP_BINARY);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc_example),
        cmocka_unit_test(test_handshake_valid),
        cmocka_unit_test(test_handshake_invalid),
        cmocka_unit_test(test_frames_rfc_examples),
        cmocka_unit_test(test_frame_rules),
        cmocka_unit_test(test_frame_header_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
