/* tree_test.c - topic tree: wildcard matching, $-topics, overlapping
 * subscriptions, shared groups (round robin and $partition hashing),
 * retained matching and pruning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "svc/broker/broker_int.h"

#define S(x) ep_mqtt_slice_make((x), strlen(x))
static const ep_mqtt_slice NOGROUP = {NULL, 0};

static void add(bk_tree *t, const char *filter, uint64_t sid, uint8_t opts)
{
    bk_tsub s = {.session_id = sid, .worker = 0, .opts = opts};
    assert_int_equal(bk_tree_sub_add(t, S(filter), NOGROUP, &s), EP_EOK);
}

/* Returns a bitmask of the session ids (1..63) matched. */
static uint64_t match(bk_tree *t, const char *topic)
{
    bk_targets tg = {0};
    uint64_t mask = 0;
    assert_int_equal(bk_tree_match(t, S(topic), NOGROUP, &tg), EP_EOK);
    for (uint32_t i = 0; i < tg.n; i++)
        mask |= UINT64_C(1) << tg.v[i].session_id;
    free(tg.v);
    return mask;
}

#define B(n) (UINT64_C(1) << (n))

static void test_wildcards(void **state)
{
    (void)state;
    bk_tree t;
    bk_tree_init(&t);
    add(&t, "a/b/c", 1, 0);
    add(&t, "a/+/c", 2, 0);
    add(&t, "a/#", 3, 0);
    add(&t, "#", 4, 0);
    add(&t, "+/+", 5, 0);
    add(&t, "/+", 6, 0);
    add(&t, "+", 7, 0);
    add(&t, "$SYS/#", 8, 0);
    add(&t, "a/b/c/#", 9, 0);
    add(&t, "+/b/#", 10, 0);
    assert_int_equal(match(&t, "a/b/c"), B(1) | B(2) | B(3) | B(4) | B(9) | B(10));
    assert_int_equal(match(&t, "a/x/c"), B(2) | B(3) | B(4));
    assert_int_equal(match(&t, "a"), B(3) | B(4) | B(7)); /* "a/#" matches "a" */
    assert_int_equal(match(&t, "a/b"), B(3) | B(4) | B(5) | B(10));
    assert_int_equal(match(&t, "/x"), B(4) | B(5) | B(6));
    assert_int_equal(match(&t, "b/b"), B(4) | B(5) | B(10));
    /* $-topics are not matched by a leading wildcard (MQTT-4.7.2-1). */
    assert_int_equal(match(&t, "$SYS/broker/uptime"), B(8));
    assert_int_equal(match(&t, "$SYS"), B(8));
    assert_int_equal(match(&t, "x/y/z"), B(4));
    assert_int_equal(atomic_load(&t.nsubs), 10);
    bk_tree_fini(&t);
}

static void test_remove_and_prune(void **state)
{
    (void)state;
    bk_tree t;
    bk_tree_init(&t);
    add(&t, "a/b/c/d", 1, 0);
    add(&t, "a/b/c/d", 2, 0);
    add(&t, "a/b", 3, 0);
    /* Re-adding replaces options instead of duplicating. */
    bk_tsub s = {.session_id = 1, .worker = 0, .opts = 2};
    assert_int_equal(bk_tree_sub_add(&t, S("a/b/c/d"), NOGROUP, &s), EP_EEXIST);
    assert_int_equal(match(&t, "a/b/c/d"), B(1) | B(2));
    assert_int_equal(bk_tree_sub_remove(&t, S("a/b/c/d"), NOGROUP, 1), EP_EOK);
    assert_int_equal(bk_tree_sub_remove(&t, S("a/b/c/d"), NOGROUP, 1), EP_ENOTFOUND);
    assert_int_equal(bk_tree_sub_remove(&t, S("x"), NOGROUP, 1), EP_ENOTFOUND);
    assert_int_equal(match(&t, "a/b/c/d"), B(2));
    assert_int_equal(bk_tree_sub_remove(&t, S("a/b/c/d"), NOGROUP, 2), EP_EOK);
    /* The c and d levels are gone; a/b stays for session 3. */
    bk_tnode *a = t.root.kids[0];
    assert_int_equal(t.root.nkids, 1);
    assert_int_equal(a->nkids, 1);
    assert_int_equal(a->kids[0]->nkids, 0);
    assert_int_equal(bk_tree_sub_remove(&t, S("a/b"), NOGROUP, 3), EP_EOK);
    assert_int_equal(t.root.nkids, 0);
    assert_int_equal(atomic_load(&t.nsubs), 0);
    bk_tree_fini(&t);
}

static void test_shared_round_robin_and_partition(void **state)
{
    (void)state;
    bk_tree t;
    bk_tree_init(&t);
    for (uint64_t id = 1; id <= 3; id++) {
        bk_tsub s = {.session_id = id, .worker = 0, .opts = 1};
        assert_int_equal(bk_tree_sub_add(&t, S("f/+"), S("g"), &s), EP_EOK);
    }
    add(&t, "f/x", 9, 0); /* a normal subscriber gets every message */
    int count[4] = {0};
    for (int i = 0; i < 30; i++) {
        bk_targets tg = {0};
        assert_int_equal(bk_tree_match(&t, S("f/x"), NOGROUP, &tg), EP_EOK);
        assert_int_equal(tg.n, 2);
        for (uint32_t k = 0; k < tg.n; k++)
            if (tg.v[k].session_id <= 3)
                count[tg.v[k].session_id]++;
        free(tg.v);
    }
    assert_int_equal(count[1], 10);
    assert_int_equal(count[2], 10);
    assert_int_equal(count[3], 10);
    /* The same $partition key always picks the same member. */
    uint64_t first = 0;
    for (int i = 0; i < 10; i++) {
        bk_targets tg = {0};
        assert_int_equal(bk_tree_match(&t, S("f/x"), S("client-7"), &tg), EP_EOK);
        for (uint32_t k = 0; k < tg.n; k++) {
            if (tg.v[k].session_id == 9)
                continue;
            if (first == 0)
                first = tg.v[k].session_id;
            assert_int_equal(tg.v[k].session_id, first);
        }
        free(tg.v);
    }
    assert_int_equal(bk_tree_sub_remove(&t, S("f/+"), S("g"), 2), EP_EOK);
    assert_int_equal(bk_tree_sub_remove(&t, S("f/+"), S("nogroup"), 1), EP_ENOTFOUND);
    bk_tree_fini(&t);
}

static int nret;
static char seen[16][32];

static void on_ret(ep_msg *m, void *ud)
{
    (void)ud;
    snprintf(seen[nret++], sizeof(seen[0]), "%s", m->topic);
}

static int retained(bk_tree *t, const char *filter)
{
    nret = 0;
    bk_tree_retained_match(t, S(filter), on_ret, NULL);
    return nret;
}

static void test_retained(void **state)
{
    (void)state;
    bk_tree t;
    bk_tree_init(&t);
    const char *topics[] = {"a", "a/b", "a/b/c", "a/x/c", "$SYS/up", "b"};
    for (size_t i = 0; i < 6; i++) {
        ep_msg *m = ep_msg_new(topics[i], strlen(topics[i]), NULL, 0, "v", 1);
        assert_int_equal(bk_tree_retain(&t, S(topics[i]), m), EP_EOK);
        ep_msg_unref(m);
    }
    assert_int_equal(atomic_load(&t.nretained), 6);
    assert_int_equal(retained(&t, "#"), 5); /* not $SYS */
    assert_int_equal(retained(&t, "a/#"), 4);
    assert_int_equal(retained(&t, "a/+/c"), 2);
    assert_int_equal(retained(&t, "+"), 2);
    assert_int_equal(retained(&t, "$SYS/#"), 1);
    assert_int_equal(retained(&t, "a/b"), 1);
    assert_string_equal(seen[0], "a/b");
    /* An empty retained message clears it. */
    assert_int_equal(bk_tree_retain(&t, S("a/b/c"), NULL), EP_EOK);
    assert_int_equal(retained(&t, "a/#"), 3);
    assert_int_equal(atomic_load(&t.nretained), 5);
    bk_tree_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_remove_and_prune),
        cmocka_unit_test(test_shared_round_robin_and_partition),
        cmocka_unit_test(test_retained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
