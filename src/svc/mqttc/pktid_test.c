/* pktid_test.c - packet identifier allocation: ids 1..65535, no reuse of a
 * just-released id, exhaustion, release in any order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "svc/mqttc/mqttc_int.h"

static void test_sequential_and_never_zero(void **state)
{
    (void)state;
    ep_mqttc__ids ids;
    ep_mqttc__ids_init(&ids);
    for (unsigned i = 1; i <= 200; i++)
        assert_int_equal(ep_mqttc__ids_alloc(&ids), i);
    assert_false(ep_mqttc__ids_in_use(&ids, 0));
    assert_true(ep_mqttc__ids_in_use(&ids, 200));
    assert_false(ep_mqttc__ids_in_use(&ids, 201));
}

static void test_released_id_not_reused_at_once(void **state)
{
    (void)state;
    ep_mqttc__ids ids;
    ep_mqttc__ids_init(&ids);
    uint16_t a = ep_mqttc__ids_alloc(&ids);
    uint16_t b = ep_mqttc__ids_alloc(&ids);
    ep_mqttc__ids_release(&ids, a);
    uint16_t c = ep_mqttc__ids_alloc(&ids);
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    assert_int_equal(c, 3);
    /* Releasing twice, or an id never allocated, changes nothing. */
    ep_mqttc__ids_release(&ids, a);
    ep_mqttc__ids_release(&ids, 999);
    ep_mqttc__ids_release(&ids, 0);
    assert_int_equal(ids.used, 2);
}

static void test_exhaustion_and_wrap(void **state)
{
    (void)state;
    ep_mqttc__ids *ids = malloc(sizeof(*ids));
    assert_non_null(ids);
    ep_mqttc__ids_init(ids);
    for (unsigned i = 1; i <= 65535; i++)
        assert_int_equal(ep_mqttc__ids_alloc(ids), i);
    assert_int_equal(ep_mqttc__ids_alloc(ids), 0); /* full */
    /* Free a few scattered ids out of order: exactly those come back, in
     * ascending order after wrapping past 65535. */
    ep_mqttc__ids_release(ids, 40000);
    ep_mqttc__ids_release(ids, 7);
    ep_mqttc__ids_release(ids, 64);
    ep_mqttc__ids_release(ids, 65535);
    assert_int_equal(ep_mqttc__ids_alloc(ids), 7);
    assert_int_equal(ep_mqttc__ids_alloc(ids), 64);
    assert_int_equal(ep_mqttc__ids_alloc(ids), 40000);
    assert_int_equal(ep_mqttc__ids_alloc(ids), 65535);
    assert_int_equal(ep_mqttc__ids_alloc(ids), 0);
    free(ids);
}

static void test_random_churn_keeps_count(void **state)
{
    (void)state;
    ep_mqttc__ids *ids = malloc(sizeof(*ids));
    assert_non_null(ids);
    ep_mqttc__ids_init(ids);
    uint16_t live[256] = {0};
    uint64_t rnd = 12345;
    for (int round = 0; round < 200000; round++) {
        unsigned slot = ep_mqttc__rand(&rnd) % 256u;
        if (live[slot]) {
            assert_true(ep_mqttc__ids_in_use(ids, live[slot]));
            ep_mqttc__ids_release(ids, live[slot]);
            live[slot] = 0;
        } else {
            live[slot] = ep_mqttc__ids_alloc(ids);
            assert_int_not_equal(live[slot], 0);
            for (unsigned j = 0; j < 256; j++)
                if (j != slot)
                    assert_int_not_equal(live[j], live[slot]);
        }
    }
    unsigned n = 0;
    for (unsigned j = 0; j < 256; j++)
        n += live[j] != 0;
    assert_int_equal(ids->used, n);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_and_never_zero),
        cmocka_unit_test(test_released_id_not_reused_at_once),
        cmocka_unit_test(test_exhaustion_and_wrap),
        cmocka_unit_test(test_random_churn_keeps_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
