/* ratelimit_test.c - failed-login limiter: backoff schedule, reset on
 * success and after quiet time, IPv6 prefix aggregation, mapped IPv4,
 * bounded memory under an address flood (LRU eviction). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "svc/auth/ratelimit.h"

static ep_auth_rl_addr A(const char *s)
{
    ep_auth_rl_addr a;
    assert_int_equal(ep_auth_rl_addr_parse(s, &a), EP_EOK);
    return a;
}

static void test_backoff(void **st)
{
    (void)st;
    ep_auth_rl *rl = NULL;
    ep_auth_rl_opts o = {
        .free_failures = 3, .base_delay_ms = 1000, .max_delay_ms = 8000, .forget_ms = 60000};
    assert_int_equal(ep_auth_rl_new(&rl, &o), EP_EOK);
    ep_auth_rl_addr a = A("192.0.2.1"), b = A("192.0.2.2");
    uint64_t t = 1000, retry = 0;
    for (int i = 0; i < 3; i++) {
        assert_true(ep_auth_rl_allow(rl, &a, t, NULL));
        ep_auth_rl_failure(rl, &a, t);
    }
    assert_true(ep_auth_rl_allow(rl, &a, t, NULL)); /* three free failures */
    /* 4th failure: 1 s, 5th: 2 s, 6th: 4 s, then capped at 8 s */
    uint64_t want[] = {1000, 2000, 4000, 8000, 8000, 8000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ep_auth_rl_failure(rl, &a, t);
        assert_false(ep_auth_rl_allow(rl, &a, t, &retry));
        assert_int_equal(retry, want[i]);
        assert_false(ep_auth_rl_allow(rl, &a, t + want[i] - 1, NULL));
        assert_true(ep_auth_rl_allow(rl, &b, t, NULL)); /* others unaffected */
        t += want[i];
        assert_true(ep_auth_rl_allow(rl, &a, t, NULL));
    }
    /* success resets */
    ep_auth_rl_success(rl, &a, t);
    ep_auth_rl_failure(rl, &a, t);
    assert_true(ep_auth_rl_allow(rl, &a, t, NULL));
    /* quiet time resets too */
    for (int i = 0; i < 10; i++)
        ep_auth_rl_failure(rl, &a, t);
    assert_false(ep_auth_rl_allow(rl, &a, t + 7999, NULL));
    assert_true(ep_auth_rl_allow(rl, &a, t + 60000, NULL));
    ep_auth_rl_failure(rl, &a, t + 60000);
    assert_true(ep_auth_rl_allow(rl, &a, t + 60000, NULL));

    ep_auth_rl_stats s;
    ep_auth_rl_get_stats(rl, &s);
    assert_int_equal(s.failures, 3 + 6 + 1 + 10 + 1);
    assert_true(s.refused >= 12);
    assert_int_equal(s.successes, 1);
    ep_auth_rl_free(rl);
}

static void test_addresses(void **st)
{
    (void)st;
    ep_auth_rl_addr a;
    assert_int_equal(ep_auth_rl_addr_parse("::ffff:192.0.2.7", &a), EP_EOK);
    assert_int_equal(a.len, 4);
    assert_memory_equal(a.b, "\xc0\x00\x02\x07", 4);
    assert_int_equal(ep_auth_rl_addr_parse("2001:db8::1", &a), EP_EOK);
    assert_int_equal(a.len, 16);
    assert_int_equal(ep_auth_rl_addr_parse("example.com", &a), EP_EINVAL);
    assert_int_equal(ep_auth_rl_addr_parse("1.2.3", &a), EP_EINVAL);
    assert_int_equal(ep_auth_rl_addr_from_bytes("abc", 3, &a), EP_EINVAL);

    ep_auth_rl *rl = NULL;
    ep_auth_rl_opts o = {.free_failures = 1};
    assert_int_equal(ep_auth_rl_new(&rl, &o), EP_EOK);
    ep_auth_rl_addr x1 = A("2001:db8:1:2::1"), x2 = A("2001:db8:1:2:ffff::9"),
                    y = A("2001:db8:1:3::1"), m = A("::ffff:10.0.0.1"), v4 = A("10.0.0.1");
    ep_auth_rl_failure(rl, &x1, 0);
    ep_auth_rl_failure(rl, &x2, 0); /* same /64: second failure -> blocked */
    assert_false(ep_auth_rl_allow(rl, &x1, 1, NULL));
    assert_false(ep_auth_rl_allow(rl, &x2, 1, NULL));
    assert_true(ep_auth_rl_allow(rl, &y, 1, NULL));
    ep_auth_rl_failure(rl, &m, 0);
    ep_auth_rl_failure(rl, &v4, 0); /* mapped and plain IPv4 are one address */
    assert_false(ep_auth_rl_allow(rl, &v4, 1, NULL));
    ep_auth_rl_free(rl);

    ep_auth_rl_opts bad = {.ipv6_prefix = 129};
    assert_int_equal(ep_auth_rl_new(&rl, &bad), EP_EINVAL);
}

static void test_bounded(void **st)
{
    (void)st;
    ep_auth_rl *rl = NULL;
    ep_auth_rl_opts o = {.capacity = 100, .free_failures = 1};
    assert_int_equal(ep_auth_rl_new(&rl, &o), EP_EOK);
    ep_auth_rl_addr attacker = A("198.51.100.1");
    ep_auth_rl_failure(rl, &attacker, 0);
    ep_auth_rl_failure(rl, &attacker, 0);
    assert_false(ep_auth_rl_allow(rl, &attacker, 1, NULL));
    /* 99 more addresses fit; the attacker stays (it is in the LRU) */
    for (uint32_t i = 0; i < 99; i++) {
        uint8_t b[4] = {10, 1, (uint8_t)(i >> 8), (uint8_t)i};
        ep_auth_rl_addr a;
        ep_auth_rl_addr_from_bytes(b, 4, &a);
        ep_auth_rl_failure(rl, &a, 0);
    }
    assert_false(ep_auth_rl_allow(rl, &attacker, 1, NULL));
    ep_auth_rl_stats s;
    ep_auth_rl_get_stats(rl, &s);
    assert_int_equal(s.tracked, 100);
    assert_int_equal(s.evicted, 0);
    /* a flood of 100000 addresses: memory stays at 100 entries, the least
     * recently seen go first */
    for (uint32_t i = 0; i < 100000; i++) {
        uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        ep_auth_rl_addr a;
        ep_auth_rl_addr_from_bytes(b, 16, &a);
        ep_auth_rl_failure(rl, &a, 0);
        if (i % 1000 == 0) {
            ep_auth_rl_get_stats(rl, &s);
            assert_true(s.tracked <= 100);
        }
    }
    ep_auth_rl_get_stats(rl, &s);
    assert_int_equal(s.tracked, 100);
    assert_int_equal(s.evicted, 100000);
    assert_true(ep_auth_rl_allow(rl, &attacker, 1, NULL)); /* evicted: forgotten */
    /* entries freed by success are reused */
    uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0x86, 0x9f};
    ep_auth_rl_addr last;
    ep_auth_rl_addr_from_bytes(b, 16, &last);
    ep_auth_rl_success(rl, &last, 1);
    ep_auth_rl_get_stats(rl, &s);
    assert_int_equal(s.tracked, 99);
    ep_auth_rl_failure(rl, &attacker, 2);
    ep_auth_rl_get_stats(rl, &s);
    assert_int_equal(s.tracked, 100);
    assert_int_equal(s.evicted, 100000);
    ep_auth_rl_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
