/* backoff_test.c - reconnect delays: doubling from min to max, jitter
 * bounds, and the schedule a client follows under a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "svc/mqttc/mqttc_int.h"

static void test_doubling_capped(void **state)
{
    (void)state;
    const uint32_t want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (uint32_t a = 0; a < 8; a++)
        assert_int_equal(ep_mqttc__backoff(500, 30000, a, false, 0), want[a]);
    /* Huge attempt counts must not overflow. */
    assert_int_equal(ep_mqttc__backoff(500, 30000, 1000, false, 0), 30000);
    assert_int_equal(ep_mqttc__backoff(0xFFFFFFFFu, 0xFFFFFFFFu, 40, false, 0), 0xFFFFFFFFu);
    /* min > max behaves as max == min. */
    assert_int_equal(ep_mqttc__backoff(800, 100, 3, false, 0), 800);
}

static void test_jitter_bounds(void **state)
{
    (void)state;
    uint64_t rnd = 99;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < 100000; i++) {
        uint32_t d = ep_mqttc__backoff(1000, 60000, 2, true, ep_mqttc__rand(&rnd));
        assert_true(d >= 2000 && d <= 4000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    /* The whole range is used. */
    assert_true(lo < 2050);
    assert_true(hi > 3950);
    assert_int_equal(ep_mqttc__backoff(1000, 60000, 0, true, 0), 500);
    assert_int_equal(ep_mqttc__backoff(1000, 60000, 0, true, 500), 1000);
    assert_int_equal(ep_mqttc__backoff(1, 1, 0, true, 7), 1);
}

/* A client that cannot reach its server follows the schedule: attempts at
 * t = 0, +100, +200, +400, +800, +800 (max), ... Driven by a fake clock. */
static uint64_t attempts_at[16];
static int nattempts;
static ep_fakeclock fc;

static ep_err refuse_open(void *ctx, const char *host, uint16_t port, void **conn, int *fd)
{
    (void)ctx;
    (void)host;
    (void)port;
    (void)conn;
    (void)fd;
    attempts_at[nattempts++] = fc.now;
    return EP_ECONNREFUSED;
}

static const ep_mqttc_transport_ops refusing = {.name = "refuse", .open = refuse_open};

static int lost;
static void on_disc(ep_mqttc *c, const ep_mqttc_disconnect_info *info, void *ud)
{
    (void)c;
    (void)ud;
    assert_false(info->was_connected);
    if (info->err == EP_EOK) {
        assert_false(info->will_reconnect); /* after ep_mqttc_disconnect */
    } else {
        assert_int_equal(info->err, EP_ECONNREFUSED);
        assert_true(info->will_reconnect);
    }
    lost++;
}

static void test_client_schedule_with_fake_clock(void **state)
{
    (void)state;
    ep_fakeclock_init(&fc, 5000);
    ep_loop *loop;
    assert_int_equal(ep_loop_new(&loop, &fc.clock), EP_EOK);
    ep_mqttc_options o = {0};
    o.client_id = "b";
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 800;
    o.reconnect_no_jitter = true;
    o.transport = &refusing;
    o.on_disconnect = on_disc;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    assert_int_equal(ep_mqttc_connect(c), EP_EOK);
    assert_int_equal(ep_mqttc_connect(c), EP_EOK); /* from the wait: now */
    for (int ms = 0; ms <= 3000; ms++) {
        ep_loop_run_once(loop, 0);
        ep_fakeclock_advance(&fc, 1);
    }
    const uint64_t want[] = {5000, 5100, 5300, 5700, 6500, 7300};
    assert_int_equal(nattempts, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(attempts_at[i], want[i]);
    assert_int_equal(lost, 6);
    ep_mqttc_stats st;
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.connect_failures, 6);
    /* disconnect from the backoff wait stops the retries, and reports it. */
    assert_int_equal(ep_mqttc_disconnect(c, 0, 0), EP_EOK);
    assert_int_equal(ep_mqttc_disconnect(c, 0, 0), EP_ESTATE);
    fc.now += 100000;
    ep_loop_run_once(loop, 0);
    ep_loop_run_once(loop, 0);
    assert_int_equal(nattempts, 6);
    assert_int_equal(lost, 7);
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.connect_failures, 6);
    ep_mqttc_free(c);
    ep_loop_free(loop);
}

int main(void)
{
    ep_log_set_level(EP_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubling_capped),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_client_schedule_with_fake_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
