/* bench_test.c - load generator internals: histogram buckets and quantiles,
 * per-publisher stream tracking (loss, duplicates, order), option parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "svc/bench/bench_int.h"

static void test_hist_index_monotonic_and_precise(void **state)
{
    (void)state;
    uint32_t prev = 0;
    for (uint64_t v = 0; v < 5000000; v = v < 1000 ? v + 1 : v + v / 97) {
        uint32_t i = ep_bench__hist_index(v);
        assert_true(i >= prev);
        assert_true(i < EP_BENCH_HIST_BUCKETS);
        uint64_t hi = ep_bench__hist_highest(i);
        assert_true(hi >= v);
        /* upper bound within 1/128 of the value */
        assert_true((double)(hi - v) <= (double)v / 128.0 + 1.0);
        prev = i;
    }
    assert_int_equal(ep_bench__hist_index(0), 0);
    assert_int_equal(ep_bench__hist_index(255), 255);
    assert_int_equal(ep_bench__hist_index(256), 256);
    assert_true(ep_bench__hist_index(UINT64_MAX) == EP_BENCH_HIST_BUCKETS - 1);
    assert_true(ep_bench__hist_highest(EP_BENCH_HIST_BUCKETS - 1) == UINT64_MAX);
}

static void test_hist_quantiles_and_merge(void **state)
{
    (void)state;
    ep_bench_hist *a = malloc(sizeof(*a));
    ep_bench_hist *b = malloc(sizeof(*b));
    assert_non_null(a);
    assert_non_null(b);
    ep_bench__hist_clear(a);
    ep_bench__hist_clear(b);
    assert_int_equal(ep_bench__hist_quantile(a, 0.5), 0);
    /* 1..1000 us split over two "threads" */
    for (uint64_t us = 1; us <= 1000; us++)
        ep_bench__hist_add(us % 2 ? a : b, us * 1000);
    ep_bench__hist_merge(a, b);
    assert_int_equal(a->count, 1000);
    assert_int_equal(a->max, 1000000);
    assert_int_equal(a->min, 1000);
    uint64_t p50 = ep_bench__hist_quantile(a, 0.5);
    uint64_t p99 = ep_bench__hist_quantile(a, 0.99);
    assert_true(p50 >= 500000 && p50 <= 500000 + 500000 / 128 + 1);
    assert_true(p99 >= 990000 && p99 <= 990000 + 990000 / 128 + 1);
    assert_int_equal(ep_bench__hist_quantile(a, 1.0), 1000000);
    assert_true(ep_bench__hist_quantile(a, 0.9999) <= 1000000);
    free(a);
    free(b);
}

static void test_stream_in_order(void **state)
{
    (void)state;
    ep_bench_stream s;
    memset(&s, 0, sizeof(s));
    for (uint32_t i = 0; i < 5000; i++)
        ep_bench__stream_see(&s, i);
    assert_int_equal(s.unique, 5000);
    assert_int_equal(s.dup, 0);
    assert_int_equal(s.ooo, 0);
    assert_int_equal(s.next, 5000);
}

static void test_stream_gap_late_dup(void **state)
{
    (void)state;
    ep_bench_stream s;
    memset(&s, 0, sizeof(s));
    ep_bench__stream_see(&s, 0);
    ep_bench__stream_see(&s, 1);
    ep_bench__stream_see(&s, 4); /* 2 and 3 missing for now */
    assert_int_equal(s.unique, 3);
    ep_bench__stream_see(&s, 2); /* late: out of order, not a duplicate */
    assert_int_equal(s.ooo, 1);
    assert_int_equal(s.unique, 4);
    ep_bench__stream_see(&s, 2); /* again: duplicate */
    ep_bench__stream_see(&s, 4); /* newest again: duplicate */
    assert_int_equal(s.dup, 2);
    assert_int_equal(s.unique, 4); /* 3 is lost unless it shows up */
    assert_int_equal(s.next, 5);
}

static void test_stream_window_wrap(void **state)
{
    (void)state;
    ep_bench_stream s;
    memset(&s, 0, sizeof(s));
    /* Bits of sequences that scrolled out must not make later ones look
     * like duplicates. */
    for (uint32_t i = 0; i < 3 * EP_BENCH_WIN_BITS; i += 2)
        ep_bench__stream_see(&s, i);
    for (uint32_t i = 3 * EP_BENCH_WIN_BITS - 101; i < 3 * EP_BENCH_WIN_BITS; i += 2)
        ep_bench__stream_see(&s, i); /* the odd ones, late */
    assert_int_equal(s.dup, 0);
    assert_int_equal(s.ooo, 50);
    /* A jump larger than the window clears it. */
    ep_bench__stream_see(&s, 10 * EP_BENCH_WIN_BITS);
    ep_bench__stream_see(&s, 10 * EP_BENCH_WIN_BITS - 1);
    assert_int_equal(s.dup, 0);
    assert_int_equal(s.ooo, 51);
    /* Too old to classify: counted as late, not as a duplicate. */
    ep_bench__stream_see(&s, 0);
    assert_int_equal(s.ooo, 52);
}

static int parse(ep_bench_opts *o, const char *line)
{
    char buf[512];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof(buf), "bench %s", line);
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    return ep_bench__opts_parse(argc, argv, o);
}

static void test_opts_defaults_per_scenario(void **state)
{
    (void)state;
    ep_bench_opts o;
    assert_int_equal(parse(&o, "--threads 2"), 0);
    assert_int_equal(o.scenario, EP_BENCH_FAN_IN);
    assert_int_equal(o.publishers, 10);
    assert_int_equal(o.subscribers, 1);
    assert_int_equal(o.inflight, 64);
    assert_int_equal(o.size, 64);
    assert_int_equal(o.version, EP_MQTT_V5);
    assert_true(o.rate == 0.0);
    assert_int_equal(o.spin_us, 0);

    assert_int_equal(parse(&o, "--scenario fan-out --qos 1 --mqtt-version 3"), 0);
    assert_int_equal(o.publishers, 1);
    assert_int_equal(o.subscribers, 100);
    assert_int_equal(o.qos, 1);
    assert_int_equal(o.version, EP_MQTT_V311);

    assert_int_equal(parse(&o, "--scenario p2p --subscribers 7"), 0);
    assert_int_equal(o.publishers, 7);
    assert_int_equal(o.subscribers, 7);

    assert_int_equal(parse(&o, "--connections 10k --broker-pid 1"), 0);
    assert_int_equal(o.scenario, EP_BENCH_IDLE);
    assert_int_equal(o.connections, 10000);

    assert_int_equal(parse(&o, "--rate 10k --size 1k --publishers 4 --topics 2"), 0);
    assert_true(o.rate == 10000.0);
    assert_int_equal(o.size, 1024);
    assert_int_equal(o.topics, 2);

    assert_int_equal(parse(&o, "--rate 10k --spin-us 200"), 0);
    assert_int_equal(o.spin_us, 200);
}

static void test_opts_errors(void **state)
{
    (void)state;
    ep_bench_opts o;
    assert_int_equal(parse(&o, "--size 15"), -1);
    assert_int_equal(parse(&o, "--qos 3"), -1);
    assert_int_equal(parse(&o, "--mqtt-version 4.5"), -1);
    assert_int_equal(parse(&o, "--scenario nope"), -1);
    assert_int_equal(parse(&o, "--scenario p2p --publishers 2 --subscribers 3"), -1);
    assert_int_equal(parse(&o, "--scenario fan-out --topics 3"), -1);
    assert_int_equal(parse(&o, "--topics 11"), -1);
    assert_int_equal(parse(&o, "--scenario idle"), -1);
    assert_int_equal(parse(&o, "--rate 0"), -1);
    assert_int_equal(parse(&o, "--spin-us 100001"), -1);
    assert_int_equal(parse(&o, "--spin-us x"), -1);
    assert_int_equal(parse(&o, "--port 70000"), -1);
    assert_int_equal(parse(&o, "--bogus"), -1);
    assert_int_equal(parse(&o, "stray"), -1);
}

static void test_opts_tls_and_handshake(void **state)
{
    (void)state;
    ep_bench_opts o;
    assert_int_equal(parse(&o, "--scenario handshake"), 0);
    assert_int_equal(o.scenario, EP_BENCH_HANDSHAKE);
    assert_int_equal(o.connectors, 10);
    assert_int_equal(o.publishers, 0);
    assert_int_equal(o.tls, 0);

    assert_int_equal(parse(&o, "--scenario handshake --connectors 3 --rate 500 --threads 8 "
                               "--cafile /x/ca.pem --tls-version 1.2"),
                     0);
    assert_int_equal(o.connectors, 3);
    assert_int_equal(o.threads, 3); /* never more threads than connections */
    assert_true(o.rate == 500.0);
    assert_int_equal(o.tls, 1);
    assert_int_equal(o.tls_version, 12);
    assert_string_equal(o.cafile, "/x/ca.pem");
    assert_int_equal(o.tls_resume, 0);

    assert_int_equal(parse(&o, "--tls-resume --tls-version 1.3"), 0);
    assert_int_equal(o.tls, 1); /* implied */
    assert_int_equal(o.tls_resume, 1);
    assert_int_equal(o.tls_version, 13);

    assert_int_equal(parse(&o, "--insecure --cert c.pem --key k.pem"), 0);
    assert_int_equal(o.tls, 1);
    assert_int_equal(o.tls_insecure, 1);
    assert_string_equal(o.certfile, "c.pem");
    assert_string_equal(o.keyfile, "k.pem");

    assert_int_equal(parse(&o, "--tls-version 1.1"), -1);
    assert_int_equal(parse(&o, "--connectors 4"), -1); /* fan-in has none */
    assert_int_equal(parse(&o, "--scenario handshake --connectors 0"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_index_monotonic_and_precise),
        cmocka_unit_test(test_hist_quantiles_and_merge),
        cmocka_unit_test(test_stream_in_order),
        cmocka_unit_test(test_stream_gap_late_dup),
        cmocka_unit_test(test_stream_window_wrap),
        cmocka_unit_test(test_opts_defaults_per_scenario),
        cmocka_unit_test(test_opts_errors),
        cmocka_unit_test(test_opts_tls_and_handshake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
