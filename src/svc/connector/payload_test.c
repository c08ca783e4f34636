/*
 * payload_test.c - the JSON of published values: the reference's shape,
 * timestamps at 100 ns, status codes only when not Good, escaping and
 * invalid UTF-8, numbers, and the identifier formats.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "svc/connector/conn_int.h"

static char out[4096];

static const char *dv_json(const ep_ua_datavalue *dv)
{
    ep_buf b;
    ep_buf_init(&b, 0);
    ep_conn__json_datavalue(&b, dv);
    assert_true(ep_conn__json_ok(&b));
    snprintf(out, sizeof(out), "%.*s", (int)ep_buf_used(&b), (const char *)ep_buf_head(&b));
    ep_buf_fini(&b);
    return out;
}

static const char *var_json(const ep_ua_type *t, void *data)
{
    ep_ua_variant v = {.type = t, .data = data};
    ep_buf b;
    ep_buf_init(&b, 0);
    ep_conn__json_variant(&b, &v);
    snprintf(out, sizeof(out), "%.*s", (int)ep_buf_used(&b), (const char *)ep_buf_head(&b));
    ep_buf_fini(&b);
    return out;
}

static void test_datavalue(void **state)
{
    (void)state;
    double d = 4558;
    ep_ua_datavalue dv;
    memset(&dv, 0, sizeof(dv));
    dv.mask = EP_UA_DATAVALUE_VALUE | EP_UA_DATAVALUE_SOURCE_TIMESTAMP;
    dv.value.type = EP_UA_T(Double);
    dv.value.data = &d;
    /* 2024-07-29T15:02:17.1858435Z */
    dv.source_timestamp = ep_ua_datetime_from_unix_ms(1722265337185LL) + 8435;
    assert_string_equal(dv_json(&dv),
                        "{\"SourceTimestamp\":\"2024-07-29T15:02:17.1858435Z\",\"Value\":4558}");
    dv.mask |= EP_UA_DATAVALUE_STATUS;
    dv.status = 0x808C0000u;
    d = 0.1;
    const char *j = dv_json(&dv);
    assert_non_null(strstr(j, "\"Value\":0.1,"));
    assert_non_null(
        strstr(j, "\"StatusCode\":{\"Code\":2156658688,\"Symbol\":\"BadSensorFailure\"}"));
    dv.status = 0; /* Good: no StatusCode */
    assert_null(strstr(dv_json(&dv), "StatusCode"));
    dv.mask = EP_UA_DATAVALUE_STATUS | EP_UA_DATAVALUE_SERVER_TIMESTAMP;
    dv.status = 0x80340000u;
    dv.server_timestamp = ep_ua_datetime_from_unix_ms(0);
    j = dv_json(&dv);
    assert_null(strstr(j, "Value"));
    assert_non_null(strstr(j, "\"ServerTimestamp\":\"1970-01-01T00:00:00Z\""));
}

static void test_scalars(void **state)
{
    (void)state;
    int64_t i64 = -9007199254740993LL;
    assert_string_equal(var_json(EP_UA_T(Int64), &i64), "-9007199254740993");
    uint64_t u64 = UINT64_MAX;
    assert_string_equal(var_json(EP_UA_T(UInt64), &u64), "18446744073709551615");
    double nan_ = NAN, inf = -INFINITY, third = 1.0 / 3.0;
    assert_string_equal(var_json(EP_UA_T(Double), &nan_), "\"NaN\"");
    assert_string_equal(var_json(EP_UA_T(Double), &inf), "\"-Infinity\"");
    assert_string_equal(var_json(EP_UA_T(Double), &third), "0.33333333333333331");
    float f = 1.5f;
    assert_string_equal(var_json(EP_UA_T(Float), &f), "1.5");
    bool bo = true;
    assert_string_equal(var_json(EP_UA_T(Boolean), &bo), "true");
    ep_ua_string s = EP_UA_STRING_LIT("a\"b\\c\n\x01\xC3\xA9\xFF");
    assert_string_equal(var_json(EP_UA_T(String), &s),
                        "\"a\\\"b\\\\c\\n\\u0001\xC3\xA9\xEF\xBF\xBD\"");
    ep_ua_bytestring bs = EP_UA_STRING_LIT("\x01\x02\x03\x04");
    assert_string_equal(var_json(EP_UA_T(ByteString), &bs), "\"AQIDBA==\"");
    ep_ua_localizedtext lt = {EP_UA_STRING_LIT("en"), EP_UA_STRING_LIT("hot")};
    assert_string_equal(var_json(EP_UA_T(LocalizedText), &lt), "\"hot\"");
    ep_ua_qualifiedname qn = {2, EP_UA_STRING_LIT("Oven")};
    assert_string_equal(var_json(EP_UA_T(QualifiedName), &qn), "\"2:Oven\"");
    ep_ua_nodeid id = ep_ua_nodeid_numeric(0, 2253);
    assert_string_equal(var_json(EP_UA_T(NodeId), &id), "\"i=2253\"");
    uint32_t arr[3] = {1, 2, 3};
    ep_ua_variant v = {.type = EP_UA_T(UInt32), .data = arr, .is_array = true, .array_len = 3};
    ep_buf b;
    ep_buf_init(&b, 0);
    ep_conn__json_variant(&b, &v);
    assert_int_equal(ep_buf_used(&b), 7);
    assert_memory_equal(ep_buf_head(&b), "[1,2,3]", 7);
    ep_buf_fini(&b);
}

static void test_ids(void **state)
{
    (void)state;
    char u[37], u2[37], tp[56], now[32];
    ep_conn__uuid(u);
    ep_conn__uuid(u2);
    assert_int_equal(strlen(u), 36);
    assert_string_not_equal(u, u2);
    assert_int_equal(u[14], '4');
    assert_true(strchr("89ab", u[19]) != NULL);
    ep_conn__traceparent(tp);
    assert_int_equal(strlen(tp), 55);
    assert_memory_equal(tp, "00-", 3);
    assert_memory_equal(tp + 52, "-01", 3);
    size_t n = ep_conn__now_text(now);
    assert_int_equal(now[n - 1], 'Z');
    assert_int_equal(now[10], 'T');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_datavalue),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
