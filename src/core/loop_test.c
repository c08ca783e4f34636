/* loop_test.c - timers with a fake clock, posts from other threads, deferred
 * calls, fd watchers, the mailbox (also direct: drained by its producers
 * while the loop sleeps) and busy polling. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
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

/* ---- direct mailboxes: a producer runs the consumer's work while the
 * consumer loop sleeps ---- */

typedef struct direct_ctx {
    ep_loop *loop;
    pthread_t loop_thread;
    ep_timer timer;
    int received;  /* owned by whoever owns the loop */
    int on_other;  /* drains that ran off the loop's thread */
    int hook_runs; /* before-poll hook calls */
    int last_seq[4];
    int out_of_order;
    int start_timer; /* the next drain starts a timer */
    atomic_int timer_fired;
} direct_ctx;

static void direct_items(ep_mailbox *mb, void *items, size_t n, void *ud)
{
    direct_ctx *d = ud;
    item *it = items;
    (void)mb;
    if (!pthread_equal(pthread_self(), d->loop_thread))
        d->on_other++;
    for (size_t i = 0; i < n; i++) {
        if (it[i].seq != d->last_seq[it[i].producer] + 1)
            d->out_of_order++;
        d->last_seq[it[i].producer] = it[i].seq;
        d->received++;
    }
    if (d->start_timer) {
        d->start_timer = 0;
        ep_timer_start(&d->timer, 0);
    }
}

static void direct_hook(ep_loop *loop, void *arg)
{
    direct_ctx *d = arg;
    (void)loop;
    d->hook_runs++;
}

static void direct_timer(ep_timer *t)
{
    direct_ctx *d = t->data;
    atomic_store(&d->timer_fired, 1);
    ep_loop_stop(d->loop);
}

static void *direct_loop_main(void *arg)
{
    direct_ctx *d = arg;
    ep_loop_run(d->loop);
    return NULL;
}

typedef struct direct_prod {
    ep_mailbox *mb;
    int id;
} direct_prod;

static void *direct_producer(void *arg)
{
    direct_prod *pa = arg;
    for (int i = 1; i <= 10000; i++) {
        item it = {pa->id, i};
        while (ep_mailbox_push(pa->mb, &it) == EP_EFULL)
            usleep(100);
    }
    return NULL;
}

/* wait_parked returns once the loop's thread waits in the poller. */
static void wait_parked(ep_loop *loop)
{
    while (!ep_loop_try_enter(loop))
        usleep(100);
    ep_loop_leave(loop);
}

static void test_direct_mailbox(void **state)
{
    (void)state;
    static direct_ctx d;
    ep_mailbox *mb;
    ep_hook hook = {.fn = direct_hook, .arg = &d};
    memset(&d, 0, sizeof(d));
    assert_int_equal(ep_loop_new(&d.loop, NULL), EP_EOK);
    assert_int_equal(ep_mailbox_new(&mb, d.loop, sizeof(item), 256, direct_items, &d), EP_EOK);
    ep_mailbox_set_direct(mb, 4);
    ep_loop_hook_before_poll(d.loop, &hook);
    ep_timer_init(d.loop, &d.timer, direct_timer, &d);

    /* A loop that is not running cannot be entered: the push signals and
     * the loop's own iteration drains it. */
    assert_int_equal(ep_loop_try_enter(d.loop), 0);
    d.loop_thread = pthread_self();
    item it = {0, 1};
    assert_int_equal(ep_mailbox_push(mb, &it), EP_EOK);
    assert_int_equal(d.received, 0);
    ep_loop_run_once(d.loop, 1000);
    assert_int_equal(d.received, 1);
    assert_int_equal(d.on_other, 0);
    d.last_seq[0] = 0;

    assert_int_equal(pthread_create(&d.loop_thread, NULL, direct_loop_main, &d), 0);
    /* Parked with nothing to wait for: a push runs the drain and the hooks
     * right here, before it returns. */
    wait_parked(d.loop);
    int hooks_before = d.hook_runs;
    assert_int_equal(ep_mailbox_push(mb, &it), EP_EOK);
    assert_int_equal(d.received, 2);
    assert_int_equal(d.on_other, 1);
    assert_true(d.hook_runs > hooks_before);

    /* A batch above the direct limit wakes the loop's thread instead. */
    wait_parked(d.loop);
    item batch[5] = {{0, 2}, {0, 3}, {0, 4}, {0, 5}, {0, 6}};
    assert_int_equal(ep_mailbox_push_many(mb, batch, 5), EP_EOK);
    for (int done = 0; !done;) {
        usleep(100);
        if (ep_loop_try_enter(d.loop)) {
            done = d.received == 7;
            ep_loop_leave(d.loop);
        }
    }
    assert_int_equal(d.on_other, 1);
    d.last_seq[0] = 0;

    /* Many producers against the loop's own thread: every item exactly
     * once, in order per producer, whichever thread drained it. */
    pthread_t th[4];
    direct_prod pa[4];
    for (int i = 0; i < 4; i++) {
        pa[i].mb = mb;
        pa[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, direct_producer, &pa[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);

    /* A timer started by a direct drain wakes the sleeping loop thread
     * (it would otherwise sleep forever); its callback stops the loop. */
    wait_parked(d.loop);
    d.start_timer = 1;
    item last = {0, 10001};
    assert_int_equal(ep_mailbox_push(mb, &last), EP_EOK);
    pthread_join(d.loop_thread, NULL);
    assert_int_equal(atomic_load(&d.timer_fired), 1);
    ep_mailbox_drain(mb);
    assert_int_equal(d.received, 7 + 40000 + 1);
    assert_int_equal(d.out_of_order, 0);
    ep_mailbox_free(mb);
    ep_loop_free(d.loop);
}

static void test_busy_poll_still_sleeps(void **state)
{
    (void)state;
    ep_loop *loop;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    ep_loop_set_busy_poll(loop, 5000);
    ep_io io;
    norder = 0;
    assert_int_equal(ep_io_start(loop, &io, p[0], EP_IO_READ, io_cb, NULL), EP_EOK);
    assert_int_equal(write(p[1], "x", 1), 1);
    ep_loop_run_once(loop, 1000);
    assert_int_equal(norder, 2);
    /* After activity the loop spins, then sleeps out the rest of the
     * timeout: it returns neither early nor late, with nothing run. */
    uint64_t t0 = ep_clock_mono_ms();
    assert_int_equal(ep_loop_run_once(loop, 30), EP_EOK);
    uint64_t dt = ep_clock_mono_ms() - t0;
    assert_true(dt >= 29 && dt < 1000);
    assert_int_equal(norder, 2);
    close(p[0]);
    close(p[1]);
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
        cmocka_unit_test(test_direct_mailbox),
        cmocka_unit_test(test_busy_poll_still_sleeps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
