/* buf_test.c - ep_buf growth, limits, consume/compaction; ep_msg refcounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/msg.h"
#include "core/sock.h"

static void test_buf_append_consume_compact(void **state)
{
    (void)state;
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_buf_append(&b, "hello", 5), EP_EOK);
    assert_int_equal(ep_buf_append_u16be(&b, 0x1234), EP_EOK);
    assert_int_equal(ep_buf_append_u32be(&b, 0xdeadbeef), EP_EOK);
    assert_int_equal(ep_buf_used(&b), 11);
    assert_memory_equal(ep_buf_head(&b), "hello\x12\x34\xde\xad\xbe\xef", 11);
    ep_buf_consume(&b, 5);
    assert_int_equal(ep_buf_used(&b), 6);
    assert_int_equal(ep_buf_head(&b)[0], 0x12);
    size_t cap = b.cap;
    /* Reserving what fits after compaction must not reallocate. */
    assert_int_equal(ep_buf_reserve(&b, cap - 6), EP_EOK);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.off, 0);
    ep_buf_consume(&b, 6);
    assert_int_equal(ep_buf_used(&b), 0);
    ep_buf_shrink(&b, 0);
    assert_null(b.data);
    ep_buf_fini(&b);
    ep_buf_fini(&b); /* idempotent */
}

static void test_buf_limit(void **state)
{
    (void)state;
    ep_buf b;
    uint8_t x[100] = {0};
    ep_buf_init(&b, 300);
    assert_int_equal(ep_buf_append(&b, x, 100), EP_EOK);
    assert_int_equal(ep_buf_append(&b, x, 100), EP_EOK);
    assert_int_equal(ep_buf_append(&b, x, 100), EP_EOK);
    assert_int_equal(ep_buf_append(&b, x, 1), EP_ETOOBIG);
    assert_int_equal(ep_buf_used(&b), 300);
    assert_true(b.cap <= 300);
    ep_buf_fini(&b);
}

static void test_msg_refcount_and_unique(void **state)
{
    (void)state;
    size_t live = ep_msg_live_count();
    ep_msg *m = ep_msg_new("a/b", 3, "\x01\x01", 2, "payload", 7);
    assert_non_null(m);
    assert_string_equal(m->topic, "a/b");
    assert_memory_equal(m->payload, "payload", 7);
    assert_int_equal(ep_msg_live_count(), live + 1);
    ep_msg *r = ep_msg_ref(m);
    ep_msg *u = ep_msg_unique(r); /* shared: gets a copy */
    assert_ptr_not_equal(u, m);
    assert_memory_equal(u->props, "\x01\x01", 2);
    ep_msg *same = ep_msg_unique(u); /* sole owner: same instance */
    assert_ptr_equal(same, u);
    ep_msg_unref(same);
    ep_msg_unref(m);
    assert_int_equal(ep_msg_live_count(), live);
    ep_msg_unref(NULL);
}

static void test_hostport_parse(void **state)
{
    (void)state;
    ep_hostport hp;
    const char *why = NULL;
    assert_int_equal(ep_hostport_parse("127.0.0.1:1883", &hp, &why), EP_EOK);
    assert_string_equal(hp.host, "127.0.0.1");
    assert_int_equal(hp.port, 1883);
    assert_int_equal(ep_hostport_parse("[::1]:8883", &hp, &why), EP_EOK);
    assert_string_equal(hp.host, "::1");
    assert_int_equal(ep_hostport_parse(":0", &hp, &why), EP_EOK);
    assert_string_equal(hp.host, "");
    assert_int_equal(ep_hostport_parse("localhost", &hp, &why), EP_EINVAL);
    assert_int_equal(ep_hostport_parse("h:70000", &hp, &why), EP_EINVAL);
    assert_int_equal(ep_hostport_parse("h:12a", &hp, &why), EP_EINVAL);
    char out[64];
    ep_hostport_parse("[::1]:8883", &hp, &why);
    ep_hostport_format(&hp, out, sizeof(out));
    assert_string_equal(out, "[::1]:8883");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_consume_compact),
        cmocka_unit_test(test_buf_limit),
        cmocka_unit_test(test_msg_refcount_and_unique),
        cmocka_unit_test(test_hostport_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
