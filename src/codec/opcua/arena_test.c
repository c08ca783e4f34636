/*
 * arena_test.c - the decode arena: alignment, zeroing, limits, allocator
 * failure, rewind across standard and dedicated chunks, clear and reuse.
 */
#include "codec/opcua/ua_testutil.h"

static void *must_alloc(ep_ua_arena *a, size_t n)
{
    void *p = NULL;
    assert_int_equal(ep_ua_arena_alloc(a, n, &p), EP_EOK);
    assert_non_null(p);
    return p;
}

static void test_alloc_aligned_zeroed(void **state)
{
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    uint8_t *prev = NULL;
    for (size_t n = 0; n < 300; n++) {
        uint8_t *p = must_alloc(&a, n);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xAB, n);
        assert_true(p != prev);
        prev = p;
    }
    /* large blocks get their own chunk, also zeroed */
    uint8_t *big = must_alloc(&a, 200000);
    for (size_t i = 0; i < 200000; i += 4096)
        assert_int_equal(big[i], 0);
    ep_ua_arena_fini(&a);
    ep_ua_arena_fini(&a); /* idempotent */
}

static void test_limit(void **state)
{
    ep_ua_arena a;
    ep_ua_arena_init(&a, 10000, NULL);
    void *p = NULL;
    assert_int_equal(ep_ua_arena_alloc(&a, 20000, &p), EP_ETOOBIG);
    assert_null(p);
    must_alloc(&a, 1000);
    assert_true(ep_ua_arena_used(&a) <= 10000);
    /* keep allocating until the limit bites; never above it */
    ep_err err = EP_EOK;
    while (err == EP_EOK)
        err = ep_ua_arena_alloc(&a, 500, &p);
    assert_int_equal(err, EP_ETOOBIG);
    assert_true(ep_ua_arena_used(&a) <= 10000);
    assert_int_equal(ep_ua_arena_alloc(&a, SIZE_MAX, &p), EP_ETOOBIG);
    assert_int_equal(ep_ua_arena_alloc(&a, SIZE_MAX - 8, &p), EP_ETOOBIG);
    ep_ua_arena_fini(&a);
}

static void test_allocator_failure(void **state)
{
    test_alloc ta;
    ep_ua_allocator al = test_allocator(&ta);
    ta.fail_after = 2;
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, &al);
    must_alloc(&a, 100);   /* chunk 1 */
    must_alloc(&a, 50000); /* dedicated chunk 2 */
    void *p = NULL;
    assert_int_equal(ep_ua_arena_alloc(&a, 50000, &p), EP_ENOMEM);
    assert_null(p);
    assert_int_equal(ta.live, 2);
    ep_ua_arena_fini(&a);
    assert_int_equal(ta.live, 0);
}

static void test_rewind(void **state)
{
    test_alloc ta;
    ep_ua_allocator al = test_allocator(&ta);
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, &al);

    /* rewind to an empty arena frees everything */
    ep_ua_arena_mark m0 = ep_ua_arena_save(&a);
    must_alloc(&a, 10);
    must_alloc(&a, 100000);
    must_alloc(&a, 3000);
    must_alloc(&a, 3000);
    ep_ua_arena_rewind(&a, m0);
    assert_int_equal(ta.live, 0);
    assert_int_equal(ep_ua_arena_used(&a), 0);

    /* rewind in the middle keeps what came before */
    uint8_t *keep = must_alloc(&a, 16);
    memset(keep, 0x5A, 16);
    uint8_t *keep_big = must_alloc(&a, 70000);
    memset(keep_big, 0x5B, 70000);
    size_t used = ep_ua_arena_used(&a);
    size_t live = ta.live;
    ep_ua_arena_mark m1 = ep_ua_arena_save(&a);
    for (int i = 0; i < 50; i++)
        must_alloc(&a, (size_t)(i * 997) % 40000);
    ep_ua_arena_rewind(&a, m1);
    assert_int_equal(ep_ua_arena_used(&a), used);
    assert_int_equal(ta.live, live);
    for (int i = 0; i < 16; i++)
        assert_int_equal(keep[i], 0x5A);
    assert_int_equal(keep_big[69999], 0x5B);
    /* the space after the mark is handed out again, zeroed */
    uint8_t *again = must_alloc(&a, 32);
    for (int i = 0; i < 32; i++)
        assert_int_equal(again[i], 0);
    ep_ua_arena_fini(&a);
    assert_int_equal(ta.live, 0);

    /* a dedicated chunk as the very first allocation */
    ep_ua_arena_init(&a, 0, &al);
    must_alloc(&a, 100000);
    ep_ua_arena_mark m2 = ep_ua_arena_save(&a);
    must_alloc(&a, 10);
    must_alloc(&a, 100000);
    ep_ua_arena_rewind(&a, m2);
    assert_int_equal(ta.live, 1);
    must_alloc(&a, 10);
    ep_ua_arena_fini(&a);
    assert_int_equal(ta.live, 0);
}

static void test_clear_reuses_first_chunk(void **state)
{
    test_alloc ta;
    ep_ua_allocator al = test_allocator(&ta);
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, &al);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 100; i++)
            must_alloc(&a, 200);
        must_alloc(&a, 100000);
        ep_ua_arena_clear(&a);
        assert_int_equal(ta.live, 1);
    }
    size_t calls = ta.calls;
    must_alloc(&a, 64); /* served from the kept chunk */
    assert_int_equal(ta.calls, calls);
    ep_ua_arena_fini(&a);
    assert_int_equal(ta.live, 0);

    ep_ua_arena z;
    memset(&z, 0, sizeof(z)); /* zeroed arenas are usable and clearable */
    ep_ua_arena_clear(&z);
    must_alloc(&z, 8);
    ep_ua_arena_fini(&z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_zeroed),     cmocka_unit_test(test_limit),
        cmocka_unit_test(test_allocator_failure),        cmocka_unit_test(test_rewind),
        cmocka_unit_test(test_clear_reuses_first_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
