/* http_parse_test.c - the request head parser: valid requests, pipelined
 * input, every limit, and malformed input with the exact status each gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "svc/api/http.h"

static ep_http_request req;

static ep_err parse_lim(const char *s, const ep_http_limits *lim, int *status)
{
    return ep_http_request_parse((const uint8_t *)s, strlen(s), lim, &req, status);
}

static ep_err parse(const char *s, int *status) { return parse_lim(s, NULL, status); }

static void expect_status(const char *s, int want)
{
    int st = -1;
    ep_err err = parse(s, &st);
    if (err != EP_EPROTO || st != want)
        print_error("input %s: err %d status %d, want status %d\n", s, err, st, want);
    assert_int_equal(err, EP_EPROTO);
    assert_int_equal(st, want);
}

static void test_simple_get(void **state)
{
    (void)state;
    int st;
    const char *s = "GET /metrics?name=a%20b HTTP/1.1\r\nHost: x\r\nAccept:  text/plain \r\n"
                    "X-Empty:\r\n\r\n";
    assert_int_equal(parse(s, &st), EP_EOK);
    assert_int_equal(req.method, EP_HTTP_GET);
    assert_true(ep_http_str_eq(req.path, "/metrics"));
    assert_true(ep_http_str_eq(req.query, "name=a%20b"));
    assert_true(ep_http_str_eq(req.target, "/metrics?name=a%20b"));
    assert_int_equal(req.version, 11);
    assert_true(req.keep_alive);
    assert_int_equal(req.nheaders, 3);
    assert_int_equal(req.head_len, strlen(s));
    ep_http_str v;
    assert_true(ep_http_request_header(&req, "accept", &v));
    assert_true(ep_http_str_eq(v, "text/plain"));
    assert_true(ep_http_request_header(&req, "X-EMPTY", &v));
    assert_int_equal(v.n, 0);
    assert_false(ep_http_request_header(&req, "missing", &v));
    assert_int_equal(req.content_length, 0);
}

static void test_versions_and_connection(void **state)
{
    (void)state;
    int st;
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &st), EP_EOK);
    assert_int_equal(req.version, 10);
    assert_false(req.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &st), EP_EOK);
    assert_true(req.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n", &st),
                     EP_EOK);
    assert_false(req.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.9\r\nHost: h\r\n\r\n", &st), EP_EOK);
    assert_int_equal(req.version, 11);
    expect_status("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    expect_status("GET / HTTP/0.9\r\n\r\n", 505);
    expect_status("GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400);
    expect_status("GET / HTTP/11\r\nHost: h\r\n\r\n", 400);
    expect_status("GET / http/1.1\r\nHost: h\r\n\r\n", 400);
    expect_status("GET /\r\n\r\n", 400); /* HTTP/0.9 request line */
}

static void test_body_and_pipelining(void **state)
{
    (void)state;
    int st;
    const char *two = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                      "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(parse(two, &st), EP_EOK);
    assert_int_equal(req.method, EP_HTTP_POST);
    assert_int_equal(req.content_length, 5);
    size_t next = req.head_len + 5;
    assert_memory_equal(two + req.head_len, "hello", 5);
    assert_int_equal(
        ep_http_request_parse((const uint8_t *)two + next, strlen(two) - next, NULL, &req, &st),
        EP_EOK);
    assert_true(ep_http_str_eq(req.path, "/b"));
    assert_int_equal(req.head_len, strlen(two) - next);
    /* Repeated identical Content-Length is accepted, different ones not. */
    assert_int_equal(parse("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                           "Content-Length: 3\r\n\r\n",
                           &st),
                     EP_EOK);
    assert_int_equal(req.content_length, 3);
    expect_status("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                  400);
    expect_status("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", 400);
    expect_status("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400);
    expect_status("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", 400);
    expect_status("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400);
    expect_status("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 413);
    expect_status("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                  413);
    assert_int_equal(parse("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n", &st),
                     EP_EOK);
    /* Transfer codings. */
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 411);
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", 411);
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  "Content-Length: 4\r\n\r\n",
                  400);
    expect_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    /* Expect. */
    assert_int_equal(
        parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n",
              &st),
        EP_EOK);
    assert_true(req.expect_continue);
    expect_status("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417);
}

static void test_incremental(void **state)
{
    (void)state;
    /* Every prefix of a valid request is EP_ENEEDMORE, never an error. */
    const char *s = "\r\nDELETE http://example.com:8080/x/y?z=1 HTTP/1.1\r\nHost: example.com\r\n"
                    "Content-Length: 0\r\n\r\n";
    size_t n = strlen(s);
    int st;
    for (size_t i = 0; i < n; i++) {
        ep_err err = ep_http_request_parse((const uint8_t *)s, i, NULL, &req, &st);
        if (err != EP_ENEEDMORE)
            print_error("prefix %zu: %d status %d\n", i, err, st);
        assert_int_equal(err, EP_ENEEDMORE);
    }
    assert_int_equal(ep_http_request_parse((const uint8_t *)s, n, NULL, &req, &st), EP_EOK);
    assert_int_equal(req.head_len, n);
    assert_int_equal(req.method, EP_HTTP_DELETE);
    assert_true(ep_http_str_eq(req.path, "/x/y"));
    assert_true(ep_http_str_eq(req.query, "z=1"));
    assert_int_equal(parse("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", &st), EP_EOK);
    assert_true(ep_http_str_eq(req.path, "/"));
    assert_int_equal(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &st), EP_EOK);
    assert_true(ep_http_str_eq(req.path, "*"));
}

static void test_limits(void **state)
{
    (void)state;
    ep_http_limits lim = {.max_head = 256, .max_uri = 32, .max_headers = 3, .max_body = 10};
    int st;
    char buf[2048];
    /* URI exactly at the limit passes; one more is 414, even unterminated. */
    snprintf(buf, sizeof(buf), "GET /%031d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    assert_int_equal(parse_lim(buf, &lim, &st), EP_EOK);
    snprintf(buf, sizeof(buf), "GET /%032d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    assert_int_equal(parse_lim(buf, &lim, &st), EP_EPROTO);
    assert_int_equal(st, 414);
    snprintf(buf, sizeof(buf), "GET /%040d", 0);
    assert_int_equal(parse_lim(buf, &lim, &st), EP_EPROTO);
    assert_int_equal(st, 414);
    /* Header count. */
    assert_int_equal(parse_lim("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", &lim, &st),
                     EP_EOK);
    assert_int_equal(
        parse_lim("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &lim, &st),
        EP_EPROTO);
    assert_int_equal(st, 431);
    /* Head size: complete and incomplete (no end in sight). */
    int k = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX: ");
    memset(buf + k, 'a', 300);
    strcpy(buf + k + 300, "\r\n\r\n");
    assert_int_equal(parse_lim(buf, &lim, &st), EP_EPROTO);
    assert_int_equal(st, 431);
    buf[k + 250] = '\0';
    assert_int_equal(parse_lim(buf, &lim, &st), EP_EPROTO);
    assert_int_equal(st, 431);
    buf[k + 200] = '\0';
    assert_int_equal(parse_lim(buf, &lim, &st), EP_ENEEDMORE);
    /* A head of exactly max_head bytes passes. */
    const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    k = (int)strlen(pre);
    memcpy(buf, pre, (size_t)k);
    memset(buf + k, 'b', 256 - (size_t)k - 4);
    strcpy(buf + 256 - 4, "\r\n\r\n");
    assert_int_equal(strlen(buf), 256);
    assert_int_equal(parse_lim(buf, &lim, &st), EP_EOK);
    /* Body size. */
    assert_int_equal(
        parse_lim("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", &lim, &st), EP_EOK);
    assert_int_equal(
        parse_lim("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", &lim, &st), EP_EPROTO);
    assert_int_equal(st, 413);
    /* Default limits: 64 headers, 8 KiB head. */
    k = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 64; i++)
        k += snprintf(buf + k, sizeof(buf) - (size_t)k, "H%d: v\r\n", i);
    strcpy(buf + k, "\r\n");
    expect_status(buf, 431);
}

static void test_malformed(void **state)
{
    (void)state;
    expect_status("FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 501);
    expect_status("get / HTTP/1.1\r\nHost: h\r\n\r\n", 501); /* methods are case-sensitive */
    expect_status("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 501);
    expect_status("GETTTTTTTTTTTTTTTTTTTTTTTTT / HTTP/1.1\r\n", 501);
    expect_status("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400); /* two spaces */
    expect_status("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400); /* trailing space */
    expect_status(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\nHost: h\r\n\r\n", 400); /* bare LF */
    expect_status("GET / HTTP/1.1\r\nHost: h\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
    expect_status("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400); /* bare CR */
    expect_status("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);   /* space before colon */
    expect_status("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fz\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHo\"st: h\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\n\r\n", 400); /* no Host */
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    expect_status("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_status("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_status("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_status("GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_status("GET x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_status("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400); /* TLS ClientHello */
    int st;
    /* obs-text in values is allowed. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n", &st), EP_EOK);
    /* An incomplete line with a NUL is refused before it ends. */
    const uint8_t nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0";
    assert_int_equal(ep_http_request_parse(nul, sizeof(nul) - 1, NULL, &req, &st), EP_EPROTO);
    assert_int_equal(st, 400);
}

static void test_reason_phrases(void **state)
{
    (void)state;
    assert_string_equal(ep_http_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(ep_http_status_reason(599), "Unknown");
    assert_string_equal(ep_http_method_name(EP_HTTP_PATCH), "PATCH");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_versions_and_connection),
        cmocka_unit_test(test_body_and_pipelining),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_reason_phrases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
