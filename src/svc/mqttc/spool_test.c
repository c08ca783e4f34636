/*
 * spool_test.c - the MQTT client's disk spool (spool.c): messages survive a
 * new client on the same directory in their original order, completed ones
 * are marked done, compaction keeps exactly the pending ones, QoS 0 is not
 * spooled, and a full spool applies the queue policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "svc/mqttc/mqttc_int.h"

static ep_loop *loop;
static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/ep-spool-test-XXXXXX");
    if (mkdtemp(dir) == NULL || ep_loop_new(&loop, NULL) != EP_EOK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return -1;
    /* a compaction request the log posted may still wait on the loop */
    ep_loop_run_once(loop, 0);
    ep_loop_free(loop);
    return 0;
}

static ep_mqttc *open_client(uint64_t max_bytes, ep_mqttc_queue_policy policy)
{
    ep_mqttc_options o;
    memset(&o, 0, sizeof(o));
    o.client_id = "spool-test";
    o.port = 1; /* never connected */
    o.spool_dir = dir;
    o.spool_max_bytes = max_bytes;
    o.queue_policy = policy;
    ep_mqttc *c = NULL;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    return c;
}

static ep_err pub(ep_mqttc *c, int seq, uint8_t qos, size_t pad)
{
    char buf[4096];
    assert_true(pad < sizeof(buf) - 16);
    int n = snprintf(buf, sizeof(buf), "%d", seq);
    memset(buf + n, '.', pad);
    ep_mqttc_pub p = {
        .topic = "t/spool", .payload = buf, .payload_len = (size_t)n + pad, .qos = qos};
    return ep_mqttc_publish(c, &p, NULL, NULL);
}

/* The sequence numbers of the queued messages, in queue order. */
static int queued_seqs(ep_mqttc *c, int *out, int max)
{
    int n = 0;
    for (mq_op *op = c->queue.head; op && n < max; op = op->next) {
        int v = 0;
        for (uint32_t i = 0; i < op->msg->payload_len && op->msg->payload[i] != '.'; i++)
            v = v * 10 + (op->msg->payload[i] - '0');
        out[n++] = v;
    }
    return n;
}

static void replay_in_order(void **state)
{
    (void)state;
    ep_mqttc *c = open_client(0, EP_MQTTC_DROP_OLDEST);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(pub(c, i, (uint8_t)(1 + (i & 1)), 0), EP_EOK);
    assert_int_equal(pub(c, 99, 0, 0), EP_EOK); /* QoS 0: memory only */
    ep_mqttc_stats st;
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.spooled, 5);
    ep_mqttc_free(c);

    c = open_client(0, EP_MQTTC_DROP_OLDEST);
    int seqs[16];
    assert_int_equal(queued_seqs(c, seqs, 16), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(seqs[i], i + 1);
    assert_int_equal(c->queue.head->qos, 2);
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.spool_replayed, 5);
    /* new messages go after the replayed ones */
    assert_int_equal(pub(c, 6, 1, 0), EP_EOK);
    ep_mqttc_free(c);
    c = open_client(0, EP_MQTTC_DROP_OLDEST);
    assert_int_equal(queued_seqs(c, seqs, 16), 6);
    assert_int_equal(seqs[5], 6);
    ep_mqttc_free(c);
}

static void done_marks_and_compaction(void **state)
{
    (void)state;
    ep_mqttc *c = open_client(0, EP_MQTTC_DROP_OLDEST);
    for (int i = 1; i <= 6; i++)
        assert_int_equal(pub(c, i, 1, 0), EP_EOK);
    /* as if acknowledged: 1 and 2 (the oldest) and 4 */
    ep_mqttc__op_complete(c, &c->queue, c->queue.head, EP_EOK, 0);
    ep_mqttc__op_complete(c, &c->queue, c->queue.head, EP_EOK, 0);
    ep_mqttc__op_complete(c, &c->queue, c->queue.head->next, EP_EOK, 0);
    ep_mqttc__drain_done(c);
    ep_mqttc_free(c);

    c = open_client(0, EP_MQTTC_DROP_OLDEST);
    int seqs[16];
    assert_int_equal(queued_seqs(c, seqs, 16), 3);
    assert_int_equal(seqs[0], 3);
    assert_int_equal(seqs[1], 5);
    assert_int_equal(seqs[2], 6);
    /* the snapshot holds the pending ones only, in order */
    assert_int_equal(ep_mqttc__spool_compact(c), EP_EOK);
    ep_mqttc__op_complete(c, &c->queue, c->queue.head, EP_EOK, 0);
    ep_mqttc__drain_done(c);
    ep_mqttc_free(c);

    c = open_client(0, EP_MQTTC_DROP_OLDEST);
    assert_int_equal(queued_seqs(c, seqs, 16), 2);
    assert_int_equal(seqs[0], 5);
    assert_int_equal(seqs[1], 6);
    assert_int_equal(pub(c, 7, 1, 0), EP_EOK);
    ep_mqttc_free(c);
    c = open_client(0, EP_MQTTC_DROP_OLDEST);
    assert_int_equal(queued_seqs(c, seqs, 16), 3);
    assert_int_equal(seqs[2], 7);
    ep_mqttc_free(c);
}

/* Fills a small spool: returns how many of n publications were accepted;
 * *dropped gets the client's dropped_full. */
static int fill(ep_mqttc *c, int n, uint64_t *dropped)
{
    int ok = 0;
    for (int i = 1; i <= n; i++)
        if (pub(c, i, 1, 1000) == EP_EOK)
            ok++;
    ep_mqttc__drain_done(c);
    ep_mqttc_stats st;
    ep_mqttc_stats_get(c, &st);
    *dropped = st.dropped_full;
    return ok;
}

static void full_refuse_new(void **state)
{
    (void)state;
    ep_mqttc *c = open_client(64 * 1024, EP_MQTTC_REFUSE_NEW);
    uint64_t dropped;
    int ok = fill(c, 200, &dropped);
    assert_true(ok > 10 && ok < 200);
    assert_int_equal(dropped, 200 - ok);
    ep_mqttc_free(c);
    c = open_client(64 * 1024, EP_MQTTC_REFUSE_NEW);
    int seqs[256];
    assert_int_equal(queued_seqs(c, seqs, 256), ok);
    for (int i = 0; i < ok; i++)
        assert_int_equal(seqs[i], i + 1); /* the first ones were kept */
    ep_mqttc_free(c);
}

static void full_drop_oldest(void **state)
{
    (void)state;
    ep_mqttc *c = open_client(64 * 1024, EP_MQTTC_DROP_OLDEST);
    uint64_t dropped;
    int ok = fill(c, 200, &dropped);
    assert_int_equal(ok, 200);
    int seqs[256];
    int n = queued_seqs(c, seqs, 256);
    assert_true(n > 10 && n < 200);
    assert_int_equal(dropped, 200 - n);
    ep_mqttc_free(c);
    c = open_client(64 * 1024, EP_MQTTC_DROP_OLDEST);
    assert_int_equal(queued_seqs(c, seqs, 256), n);
    for (int i = 0; i < n; i++)
        assert_int_equal(seqs[i], 200 - n + 1 + i); /* the newest were kept */
    ep_mqttc_free(c);
}

/* One process (and one client) per spool directory. */
static void second_client_refused(void **state)
{
    (void)state;
    ep_mqttc *c = open_client(0, EP_MQTTC_DROP_OLDEST);
    ep_mqttc_options o;
    memset(&o, 0, sizeof(o));
    o.client_id = "spool-test-2";
    o.spool_dir = dir;
    ep_mqttc *c2 = NULL;
    char why[256];
    assert_int_equal(ep_mqttc_new_why(&c2, loop, &o, why, sizeof(why)), EP_ESTATE);
    assert_null(c2);
    assert_non_null(strstr(why, "spool directory"));
    ep_mqttc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(replay_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(done_marks_and_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(full_refuse_new, setup, teardown),
        cmocka_unit_test_setup_teardown(full_drop_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(second_client_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
