/* log_kv_test.c - logfmt and JSON-lines formatting: golden lines, msgid
 * extraction, escaping, invalid UTF-8, truncation, and EP_LOG_ID through a
 * real sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log_kv.h"

static const uint64_t T = 1795674601123ull; /* 2026-11-26T06:30:01.123Z */

static const char *fmt(ep_log_format f, ep_log_level l, const char *cat, const char *line)
{
    static char buf[512];
    size_t n = ep_log_kv_format(f, T, l, cat, line, buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    return buf;
}

static void test_golden(void **state)
{
    (void)state;
    const char *line = "[broker.listen] listening on 127.0.0.1:1883";
    assert_string_equal(fmt(EP_LOG_FORMAT_KV, EP_LOG_INFO, "broker", line),
                        "ts=2026-11-26T06:30:01.123Z level=info cat=broker msgid=broker.listen "
                        "msg=\"listening on 127.0.0.1:1883\"");
    assert_string_equal(
        fmt(EP_LOG_FORMAT_JSON, EP_LOG_WARN, "broker", line),
        "{\"ts\":\"2026-11-26T06:30:01.123Z\",\"level\":\"warn\",\"cat\":\"broker\","
        "\"msgid\":\"broker.listen\",\"msg\":\"listening on 127.0.0.1:1883\"}");
    assert_string_equal(fmt(EP_LOG_FORMAT_TEXT, EP_LOG_ERROR, "api", "x"),
                        "2026-11-26T06:30:01.123Z error api     x");
}

static void test_msgid(void **state)
{
    (void)state;
    /* Untagged, and things that look like tags but are not. */
    assert_non_null(strstr(fmt(EP_LOG_FORMAT_KV, EP_LOG_INFO, "mqtt", "plain text"),
                           "msgid=mqtt.untagged msg=\"plain text\""));
    assert_non_null(strstr(fmt(EP_LOG_FORMAT_KV, EP_LOG_INFO, "b", "[::1]:1883 connected"),
                           "msgid=b.untagged msg=\"[::1]:1883 connected\""));
    assert_non_null(
        strstr(fmt(EP_LOG_FORMAT_KV, EP_LOG_INFO, "b", "[nodot] x"), "msgid=b.untagged"));
    assert_non_null(
        strstr(fmt(EP_LOG_FORMAT_KV, EP_LOG_INFO, "b", "[a..b] x"), "msgid=b.untagged"));
    assert_non_null(strstr(fmt(EP_LOG_FORMAT_KV, EP_LOG_INFO, "b", "[a.B] x"), "msgid=b.untagged"));
    assert_non_null(strstr(fmt(EP_LOG_FORMAT_KV, EP_LOG_INFO, "b", "[a.b]x"), "msgid=b.untagged"));
    assert_non_null(strstr(fmt(EP_LOG_FORMAT_KV, EP_LOG_INFO, "b", "[api.http.timeout-1] slow"),
                           "msgid=api.http.timeout-1 msg=\"slow\""));
}

static void test_escaping(void **state)
{
    (void)state;
    assert_string_equal(
        fmt(EP_LOG_FORMAT_JSON, EP_LOG_INFO, "b", "q\"b\\n\nt\tc\x01 caf\xc3\xa9 bad\xff\xc3("),
        "{\"ts\":\"2026-11-26T06:30:01.123Z\",\"level\":\"info\",\"cat\":\"b\",\"msgid\":"
        "\"b.untagged\",\"msg\":\"q\\\"b\\\\n\\nt\\tc\\u0001 caf\xc3\xa9 bad\\ufffd\\ufffd(\"}");
    /* logfmt: a category with a space is quoted. */
    assert_non_null(strstr(fmt(EP_LOG_FORMAT_KV, EP_LOG_INFO, "my cat", "m"), "cat=\"my cat\""));
    /* Overlong encodings and surrogates are not valid UTF-8. */
    assert_non_null(strstr(fmt(EP_LOG_FORMAT_JSON, EP_LOG_INFO, "b", "\xc0\xaf \xed\xa0\x80"),
                           "\"msg\":\"\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd\"}"));
}

static void test_truncation(void **state)
{
    (void)state;
    char big[3000];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = "ab\"\xc3\xa9\n"[i % 6];
    big[sizeof(big) - 1] = '\0';
    for (size_t n = 200; n < 400; n++) {
        char buf[400];
        size_t len = ep_log_kv_format(EP_LOG_FORMAT_JSON, T, EP_LOG_INFO, "b", big, buf, n);
        assert_true(len < n);
        assert_int_equal(len, strlen(buf));
        assert_true(len >= 2 && buf[len - 1] == '}' && buf[len - 2] == '"');
        /* No escape cut in half: count backslashes before the final quote. */
        size_t bs = 0;
        for (size_t k = len - 3; buf[k] == '\\'; k--)
            bs++;
        assert_int_equal(bs % 2, 0);
        len = ep_log_kv_format(EP_LOG_FORMAT_KV, T, EP_LOG_INFO, "b", big, buf, n);
        assert_true(len < n && buf[len - 1] == '"');
    }
}

static void test_sink_and_macro(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    ep_log_kv kv = {EP_LOG_FORMAT_KV, fds[1]};
    ep_log_set_sink(ep_log_kv_sink, &kv);
    EP_LOG_ID_INFO("api", "api.http.listen", "listening on %s:%d", "127.0.0.1", 9100);
    EP_LOG_INFO("api", "plain %d", 7);
    EP_LOG_ID_DEBUG("api", "api.hidden", "below the threshold");
    ep_log_set_sink(NULL, NULL);
    close(fds[1]);
    char buf[1024];
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, " level=info cat=api msgid=api.http.listen "
                                "msg=\"listening on 127.0.0.1:9100\"\n"));
    assert_non_null(strstr(buf, " msgid=api.untagged msg=\"plain 7\"\n"));
    assert_null(strstr(buf, "hidden"));
    ep_log_format f;
    assert_int_equal(ep_log_format_parse("json", &f), 0);
    assert_int_equal(f, EP_LOG_FORMAT_JSON);
    assert_int_equal(ep_log_format_parse("logfmt", &f), 0);
    assert_int_equal(f, EP_LOG_FORMAT_KV);
    assert_int_equal(ep_log_format_parse("xml", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),         cmocka_unit_test(test_msgid),
        cmocka_unit_test(test_escaping),       cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_sink_and_macro),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
