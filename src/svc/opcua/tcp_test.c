/*
 * tcp_test.c - byte-exact vectors for the opc.tcp framing: Hello,
 * Acknowledge, Error, ReverseHello and the message header, plus malformed
 * input (wrong chunk types, short sizes, lying string lengths).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "svc/opcua/tcp.h"

/* Hello from a client: version 0, buffers 65536/65536, max message 0,
 * max chunks 0, endpoint "opc.tcp://h:4840" (OPC 10000-6 7.1.2.3). */
static const uint8_t hello_bytes[] = {
    'H',  'E',  'L',  'F',  0x30, 0x00, 0x00, 0x00, /* size 48 */
    0x00, 0x00, 0x00, 0x00,                         /* version */
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, /* recv, send */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* max msg, chunks */
    0x10, 0x00, 0x00, 0x00, 'o',  'p',  'c',  '.',  't', 'c',
    'p',  ':',  '/',  '/',  'h',  ':',  '4',  '8',  '4', '0',
};

static const uint8_t ack_bytes[] = {
    'A',  'C',  'K',  'F',  0x1c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x10, 0x00, 0x00,
};

static const uint8_t err_bytes[] = {
    'E',  'R',  'R',  'F',  0x13, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x80, 0x80, /* Bad_TcpMessageTooLarge */
    0x03, 0x00, 0x00, 0x00, 'b',  'i',  'g',
};

static const uint8_t rhe_bytes[] = {
    'R', 'H',  'E',  'F',  0x20, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 'u', 'r', 'n', ':',
    's', 0x0b, 0x00, 0x00, 0x00, 'o',  'p',  'c',  '.',  't',  'c',  'p',  ':', '/', '/', 'h',
};

static void test_hello(void **state)
{
    (void)state;
    ep_ua__hello h = {0, 65536, 65536, 0, 0, EP_UA_STRING_LIT("opc.tcp://h:4840")};
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_ua__hello_encode(&b, &h), EP_EOK);
    assert_int_equal(ep_buf_used(&b), sizeof(hello_bytes));
    assert_memory_equal(ep_buf_head(&b), hello_bytes, sizeof(hello_bytes));
    ep_ua__hello d;
    assert_int_equal(ep_ua__hello_decode(hello_bytes, sizeof(hello_bytes), &d), EP_EOK);
    assert_int_equal(d.recv_buffer, 65536);
    assert_int_equal(d.send_buffer, 65536);
    assert_int_equal(d.url.len, 16);
    assert_memory_equal(d.url.data, "opc.tcp://h:4840", 16);
    /* trailing byte, truncated string, lying length */
    uint8_t bad[sizeof(hello_bytes) + 1];
    memcpy(bad, hello_bytes, sizeof(hello_bytes));
    bad[4] = sizeof(bad);
    assert_int_equal(ep_ua__hello_decode(bad, sizeof(bad), &d), EP_EMALFORMED);
    memcpy(bad, hello_bytes, sizeof(hello_bytes));
    bad[28] = 0x40;
    assert_int_equal(ep_ua__hello_decode(bad, sizeof(hello_bytes), &d), EP_EMALFORMED);
    ep_buf_fini(&b);
}

static void test_ack_err_rhe(void **state)
{
    (void)state;
    ep_buf b;
    ep_buf_init(&b, 0);
    ep_ua__hello a = {0, 65535, 8192, 16777216, 4096, {0, NULL}};
    assert_int_equal(ep_ua__ack_encode(&b, &a), EP_EOK);
    assert_int_equal(ep_buf_used(&b), sizeof(ack_bytes));
    assert_memory_equal(ep_buf_head(&b), ack_bytes, sizeof(ack_bytes));
    ep_ua__hello ad;
    assert_int_equal(ep_ua__ack_decode(ack_bytes, sizeof(ack_bytes), &ad), EP_EOK);
    assert_int_equal(ad.max_message, 16777216);
    assert_int_equal(ad.max_chunks, 4096);

    ep_buf_clear(&b);
    ep_ua__error e = {EP_UA_STATUS_BadTcpMessageTooLarge, EP_UA_STRING_LIT("big")};
    assert_int_equal(ep_ua__error_encode(&b, &e), EP_EOK);
    assert_int_equal(ep_buf_used(&b), sizeof(err_bytes));
    assert_memory_equal(ep_buf_head(&b), err_bytes, sizeof(err_bytes));
    ep_ua__error ed;
    assert_int_equal(ep_ua__error_decode(err_bytes, sizeof(err_bytes), &ed), EP_EOK);
    assert_int_equal(ed.status, 0x80800000u);

    ep_buf_clear(&b);
    ep_ua__rhello r = {EP_UA_STRING_LIT("urn:s"), EP_UA_STRING_LIT("opc.tcp://h")};
    assert_int_equal(ep_ua__rhello_encode(&b, &r), EP_EOK);
    assert_int_equal(ep_buf_used(&b), sizeof(rhe_bytes));
    assert_memory_equal(ep_buf_head(&b), rhe_bytes, sizeof(rhe_bytes));
    ep_ua__rhello rd;
    assert_int_equal(ep_ua__rhello_decode(rhe_bytes, sizeof(rhe_bytes), &rd), EP_EOK);
    assert_int_equal(rd.server_uri.len, 5);
    ep_buf_fini(&b);
}

static void test_header(void **state)
{
    (void)state;
    ep_ua__hdr h;
    static const uint8_t msg[] = {'M', 'S', 'G', 'C', 0x20, 0, 0, 0};
    assert_int_equal(ep_ua__hdr_parse(msg, sizeof(msg), &h), EP_EOK);
    assert_int_equal(h.type, EP_UA_MSG_MSG);
    assert_int_equal(h.chunk, 'C');
    assert_int_equal(h.size, 0x20);
    assert_int_equal(ep_ua__hdr_parse(msg, 7, &h), EP_ENEEDMORE);
    static const uint8_t opn_c[] = {'O', 'P', 'N', 'C', 0x40, 0, 0, 0};
    assert_int_equal(ep_ua__hdr_parse(opn_c, 8, &h), EP_EMALFORMED); /* OPN is single-chunk */
    static const uint8_t msg_a[] = {'M', 'S', 'G', 'A', 0x20, 0, 0, 0};
    assert_int_equal(ep_ua__hdr_parse(msg_a, 8, &h), EP_EOK);
    static const uint8_t small[] = {'M', 'S', 'G', 'F', 0x10, 0, 0, 0};
    assert_int_equal(ep_ua__hdr_parse(small, 8, &h), EP_EMALFORMED);
    static const uint8_t http[] = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'};
    assert_int_equal(ep_ua__hdr_parse(http, 8, &h), EP_EMALFORMED);
    static const uint8_t hel_x[] = {'H', 'E', 'L', 'X', 0x30, 0, 0, 0};
    assert_int_equal(ep_ua__hdr_parse(hel_x, 8, &h), EP_EMALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_ack_err_rhe),
        cmocka_unit_test(test_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
