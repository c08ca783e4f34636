/* loop_test.c - timers with a fake clock, posts from other threads, deferred
 * calls, fd watchers, and the mailbox. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"
#include "core/mailbox.h"

static int fired[16];
static int nfired;

static void record_timer(ep_timer *t) { fired[nfired++] = (int)(intptr_t)t->data; }

static void test_timers_fire_in_deadline_order(void **state)
{
    (void)state;
    ep_fakeclock fc;
    ep_fakeclock_init(&fc, 1000);
    ep_loop *loop;
    assert_int_equal(ep_loop_new(&loop, &fc.clock), EP_EOK);
    ep_timer t[5];
    int delays[5] = {50, 10, 30, 10, 100};
    for (int i = 0; i < 5; i++) {
        ep_timer_init(loop, &t[i], record_timer, (void *)(intptr_t)i);
        assert_int_equal(ep_timer_start(&t[i], (uint64_t)delays[i]), EP_EOK);
    }
    ep_timer_stop(&t[2]); /* cancelled: must never fire */
    nfired = 0;
    ep_fakeclock_advance(&fc, 9);
    ep_loop_run_once(loop, 0);
    assert_int_equal(nfired, 0);
    ep_fakeclock_advance(&fc, 1);
    ep_loop_run_once(loop, 0);
    assert_int_equal(nfired, 2);
    assert_int_equal(fired[0], 1); /* equal deadlines keep insertion order */
    assert_int_equal(fired[1], 3);
    ep_fakeclock_advance(&fc, 100);
    ep_loop_run_once(loop, 0);
    assert_int_equal(nfired, 4);
    assert_int_equal(fired[2], 0);
    assert_int_equal(fired[3], 4);
    assert_false(ep_timer_active(&t[2]));
    ep_loop_free(loop);
}

static void test_timer_heap_many(void **state)
{
    (void)state;
    ep_fakeclock fc;
    ep_fakeclock_init(&fc, 0);
    ep_loop *loop;
    assert_int_equal(ep_loop_new(&loop, &fc.clock), EP_EOK);
    enum { N = 1000 };
    static ep_timer t[N];
    for (int i = 0; i < N; i++) {
        ep_timer_init(loop, &t[i], record_timer, (void *)(intptr_t)0);
        ep_timer_start(&t[i], (uint64_t)((i * 7919) % N) + 1);
    }
    for (int i = 0; i < N; i += 2)
        ep_timer_stop(&t[i]);
    int active = 0;
    for (int i = 0; i < N; i++)
        active += ep_timer_active(&t[i]);
    assert_int_equal(active, N / 2);
    /* Advance one ms at a time: each step fires only what is due. */
    for (int ms = 0; ms <= N; ms++) {
        ep_fakeclock_advance(&fc, 1);
        nfired = 0;
        ep_loop_run_once(loop, 0);
        for (int i = 0; i < N; i++)
            if (ep_timer_active(&t[i]))
                assert_true(t[i].due > fc.now);
    }
    for (int i = 0; i < N; i++)
        assert_false(ep_timer_active(&t[i]));
    ep_loop_free(loop);
}

static _Atomic int posted_sum;

static void add_post(ep_loop *loop, void *arg)
{
    (void)loop;
    posted_sum += (int)(intptr_t)arg;
}

static void *poster(void *arg)
{
    ep_loop *loop = arg;
    for (int i = 1; i <= 1000; i++)
        ep_loop_post(loop, add_post, (void *)(intptr_t)i);
    return NULL;
}

static void stop_post(ep_loop *loop, void *arg)
{
    (void)arg;
    ep_loop_stop(loop);
}

static void test_post_from_threads(void **state)
{
    (void)state;
    ep_loop *loop;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    pthread_t th[4];
    posted_sum = 0;
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, poster, loop);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ep_loop_post(loop, stop_post, NULL);
    assert_int_equal(ep_loop_run(loop), EP_EOK);
    assert_int_equal(posted_sum, 4 * 500500);
    ep_loop_free(loop);
}

static int order[8];
static int norder;

static void deferred_cb(ep_loop *loop, void *arg)
{
    (void)loop;
    order[norder++] = (int)(intptr_t)arg;
}

static void io_cb(ep_io *io, unsigned events)
{
    char buf[8];
    assert_true(events & EP_IO_READ);
    assert_true(read(io->fd, buf, sizeof(buf)) > 0);
    ep_loop_defer(io->loop, deferred_cb, (void *)2);
    order[norder++] = 1;
    ep_io_stop(io);
}

static void test_io_and_deferred(void **state)
{
    (void)state;
    ep_loop *loop;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    ep_io io;
    assert_int_equal(ep_io_start(loop, &io, p[0], EP_IO_READ, io_cb, NULL), EP_EOK);
    assert_int_equal(write(p[1], "x", 1), 1);
    norder = 0;
    ep_loop_run_once(loop, 1000);
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 1); /* the callback first ... */
    assert_int_equal(order[1], 2); /* ... then what it deferred */
    close(p[0]);
    close(p[1]);
    ep_loop_free(loop);
}

typedef struct item {
    int producer;
    int seq;
} item;

static int last_seq[4];
static int received;
static int out_of_order;

static void on_items(ep_mailbox *mb, void *items, size_t n, void *ud)
{
    item *it = items;
    (void)mb;
    for (size_t i = 0; i < n; i++) {
        if (it[i].seq != last_seq[it[i].producer] + 1)
            out_of_order++;
        last_seq[it[i].producer] = it[i].seq;
        received++;
    }
    if (received == 4 * 10000)
        ep_loop_stop(ud);
}

typedef struct prod_arg {
    ep_mailbox *mb;
    int id;
} prod_arg;

static void *producer(void *arg)
{
    prod_arg *pa = arg;
    for (int i = 1; i <= 10000; i++) {
        item it = {pa->id, i};
        while (ep_mailbox_push(pa->mb, &it) == EP_EFULL)
            usleep(100);
    }
    return NULL;
}

static void test_mailbox_fifo_per_producer_and_bounded(void **state)
{
    (void)state;
    ep_loop *loop;
    ep_mailbox *mb;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    assert_int_equal(ep_mailbox_new(&mb, loop, sizeof(item), 256, on_items, loop), EP_EOK);
    /* The bound is enforced before the consumer runs. */
    item it = {0, 0};
    for (int i = 0; i < 256; i++)
        assert_int_equal(ep_mailbox_push(mb, &it), EP_EOK);
    assert_int_equal(ep_mailbox_push(mb, &it), EP_EFULL);
    ep_mailbox_drain(mb);
    received = 0;
    for (int i = 0; i < 4; i++)
        last_seq[i] = 0;
    out_of_order = 0;
    pthread_t th[4];
    prod_arg pa[4];
    for (int i = 0; i < 4; i++) {
        pa[i].mb = mb;
        pa[i].id = i;
        pthread_create(&th[i], NULL, producer, &pa[i]);
    }
    ep_loop_run(loop);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(received, 40000);
    assert_int_equal(out_of_order, 0);
    ep_mailbox_free(mb);
    ep_loop_free(loop);
}

static ep_hook hooks[3];
static int hook_calls[3];

static void hook_fn(ep_loop *loop, void *arg)
{
    int i = (int)(intptr_t)arg;
    hook_calls[i]++;
    /* The first hook removes the next two; they must not run afterwards. */
    if (i == 0) {
        ep_loop_unhook_before_poll(loop, &hooks[1]);
        ep_loop_unhook_before_poll(loop, &hooks[2]);
        memset(&hooks[1], 0xAA, sizeof(hooks[1])); /* as if freed */
    }
}

static void test_hook_unhooks_others(void **state)
{
    (void)state;
    ep_loop *loop;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    /* Registered in reverse: hooks[0] runs first. */
    for (int i = 2; i >= 0; i--) {
        hooks[i].fn = hook_fn;
        hooks[i].arg = (void *)(intptr_t)i;
        ep_loop_hook_before_poll(loop, &hooks[i]);
    }
    ep_loop_run_once(loop, 0);
    ep_loop_run_once(loop, 0);
    assert_int_equal(hook_calls[0], 2);
    assert_int_equal(hook_calls[1], 0);
    assert_int_equal(hook_calls[2], 0);
    ep_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_deadline_order),
        cmocka_unit_test(test_timer_heap_many),
        cmocka_unit_test(test_post_from_threads),
        cmocka_unit_test(test_io_and_deferred),
        cmocka_unit_test(test_mailbox_fifo_per_producer_and_bounded),
        cmocka_unit_test(test_hook_unhooks_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
