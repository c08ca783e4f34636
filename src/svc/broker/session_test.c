/* session_test.c - offline queue limits and policies, message expiry,
 * in-flight window bookkeeping and QoS 2 receive state, on a broker that is
 * created but not started (no sockets, no threads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "svc/broker/broker_int.h"

static ep_broker *make_broker(uint32_t max_msgs, uint64_t max_bytes, uint32_t policy)
{
    ep_broker_config cfg;
    ep_broker *b;
    ep_broker_config_defaults(&cfg);
    cfg.workers = 1;
    cfg.limits.max_queued_messages = max_msgs;
    cfg.limits.max_queued_bytes = max_bytes;
    cfg.limits.queue_policy = policy;
    assert_int_equal(ep_broker_new(&b, &cfg), EP_EOK);
    return b;
}

static ep_msg *msg(const char *payload, uint8_t qos)
{
    ep_msg *m = ep_msg_new("t", 1, NULL, 0, payload, strlen(payload));
    m->qos = qos;
    return m;
}

static const char *queued_payload(bk_session *s, uint32_t i)
{
    static char buf[32];
    ep_msg *m = s->queue[(s->q_head + i) % s->q_cap].msg;
    snprintf(buf, sizeof(buf), "%.*s", (int)m->payload_len, (const char *)m->payload);
    return buf;
}

static void fill(bk_session *s, int n)
{
    for (int i = 0; i < n; i++) {
        char p[16];
        snprintf(p, sizeof(p), "m%d", i);
        ep_msg *m = msg(p, 1);
        bk_session_deliver(s, m, 1, false);
        ep_msg_unref(m);
    }
}

static void test_offline_drop_oldest(void **state)
{
    (void)state;
    ep_broker *b = make_broker(3, 1 << 20, EP_BROKER_DROP_OLDEST);
    bk_worker *w = b->workers[0];
    bk_session *s = bk_session_new(w, (const uint8_t *)"c1", 2);
    fill(s, 5);
    assert_int_equal(s->q_count, 3);
    assert_string_equal(queued_payload(s, 0), "m2");
    assert_string_equal(queued_payload(s, 2), "m4");
    assert_int_equal(atomic_load(&w->ctr.dropped[BK_DROP_QUEUE_FULL]), 2);
    /* QoS 0 is not queued for an offline session. */
    ep_msg *m = msg("q0", 0);
    bk_session_deliver(s, m, 1, false);
    ep_msg_unref(m);
    assert_int_equal(s->q_count, 3);
    bk_session_destroy(s);
    ep_broker_free(b);
}

static void test_offline_refuse_new(void **state)
{
    (void)state;
    ep_broker *b = make_broker(3, 1 << 20, EP_BROKER_REFUSE_NEW);
    bk_worker *w = b->workers[0];
    bk_session *s = bk_session_new(w, (const uint8_t *)"c1", 2);
    fill(s, 5);
    assert_int_equal(s->q_count, 3);
    assert_string_equal(queued_payload(s, 0), "m0");
    assert_string_equal(queued_payload(s, 2), "m2");
    assert_int_equal(atomic_load(&w->ctr.dropped[BK_DROP_QUEUE_FULL]), 2);
    bk_session_destroy(s);
    ep_broker_free(b);
}

static void test_byte_limit(void **state)
{
    (void)state;
    ep_msg *probe = msg("m0", 1);
    size_t one = ep_msg_size(probe);
    ep_msg_unref(probe);
    ep_broker *b = make_broker(100, one * 2, EP_BROKER_DROP_OLDEST);
    bk_session *s = bk_session_new(b->workers[0], (const uint8_t *)"c1", 2);
    fill(s, 4);
    assert_int_equal(s->q_count, 2);
    assert_true(s->q_bytes <= one * 2);
    assert_string_equal(queued_payload(s, 0), "m2");
    bk_session_destroy(s);
    ep_broker_free(b);
}

static void test_granted_qos_and_expiry(void **state)
{
    (void)state;
    ep_broker *b = make_broker(10, 1 << 20, EP_BROKER_DROP_OLDEST);
    bk_worker *w = b->workers[0];
    bk_session *s = bk_session_new(w, (const uint8_t *)"c1", 2);
    /* Published at QoS 2, subscribed at QoS 1: queued at QoS 1. */
    ep_msg *m = msg("x", 2);
    bk_session_deliver(s, m, 1, false);
    ep_msg_unref(m);
    assert_int_equal(s->queue[s->q_head].qos, 1);
    /* Already expired messages are dropped on arrival. */
    m = msg("old", 1);
    m->has_expiry = 1;
    m->expiry_at_ms = ep_loop_now(w->loop);
    bk_session_deliver(s, m, 1, false);
    ep_msg_unref(m);
    assert_int_equal(s->q_count, 1);
    bk_session_destroy(s);
    ep_broker_free(b);
}

static void test_qos2_receive_state(void **state)
{
    (void)state;
    ep_broker *b = make_broker(10, 1 << 20, EP_BROKER_DROP_OLDEST);
    bk_session *s = bk_session_new(b->workers[0], (const uint8_t *)"c1", 2);
    assert_false(bk_session_qos2_has(s, 7));
    for (uint16_t pid = 1; pid <= 20; pid++)
        assert_int_equal(bk_session_qos2_add(s, pid), EP_EOK);
    assert_true(bk_session_qos2_has(s, 7));
    assert_true(bk_session_qos2_remove(s, 7));
    assert_false(bk_session_qos2_has(s, 7));
    assert_false(bk_session_qos2_remove(s, 7));
    assert_int_equal(s->n_qos2_in, 19);
    bk_session_destroy(s);
    ep_broker_free(b);
}

/* Incoming QoS 2 entries take the routing of the PUBLISH being handled
 * (w->cur_ticket with an origin): its id and a reference to its ticket,
 * dropped with the entry. Only persistent sessions get gates. */
static void test_qos2_routing_entries(void **state)
{
    (void)state;
    ep_broker *b = make_broker(10, 1 << 20, EP_BROKER_DROP_OLDEST);
    bk_worker *w = b->workers[0];
    bk_session *s = bk_session_new(w, (const uint8_t *)"c1", 2);
    bk_ticket *t = bk_ticket_new(), *other = bk_ticket_new();
    t->origin = 42;
    w->cur_ticket = t;
    assert_int_equal(bk_session_qos2_add(s, 5), EP_EOK);
    /* not persistent: no gate for a QoS 2 copy, even inside a routing */
    assert_null(bk_persist_gate(s, 2));
    w->cur_ticket = NULL;
    assert_int_equal(bk_session_qos2_add(s, 6), EP_EOK);
    bk_qos2_in *e = bk_session_qos2_find(s, 5);
    assert_non_null(e);
    assert_int_equal(e->origin, 42);
    assert_ptr_equal(e->tk, t);
    assert_int_equal(atomic_load(&t->refs), 2);
    assert_false(e->done);
    bk_qos2_in *plain = bk_session_qos2_find(s, 6);
    assert_int_equal(plain->origin, 0);
    assert_null(plain->tk);
    assert_false(bk_session_qos2_finish(s, other));
    assert_true(bk_session_qos2_finish(s, t));
    assert_true(bk_session_qos2_find(s, 5)->done);
    assert_false(bk_session_qos2_find(s, 6)->done);
    assert_false(bk_gate_open(t));
    assert_true(bk_gate_open(NULL));
    assert_true(bk_session_qos2_remove(s, 5));
    assert_int_equal(atomic_load(&t->refs), 1);
    assert_true(bk_session_qos2_add(s, 7) == EP_EOK && bk_session_qos2_find(s, 7)->tk == NULL);
    bk_session_destroy(s);
    bk_ticket_unref(t);
    bk_ticket_unref(other);
    ep_broker_free(b);
}

static void test_session_tables(void **state)
{
    (void)state;
    ep_broker *b = make_broker(10, 1 << 20, EP_BROKER_DROP_OLDEST);
    bk_worker *w = b->workers[0];
    char id[16];
    uint64_t ids[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "client-%d", i);
        bk_session *s = bk_session_new(w, (const uint8_t *)id, strlen(id));
        assert_non_null(s);
        ids[i] = s->id;
    }
    for (int i = 0; i < 1000; i += 3) {
        snprintf(id, sizeof(id), "client-%d", i);
        bk_session *s = bk_session_find_cid(w, (const uint8_t *)id, strlen(id));
        assert_non_null(s);
        assert_ptr_equal(bk_session_find_id(w, ids[i]), s);
        bk_session_destroy(s);
    }
    assert_null(bk_session_find_cid(w, (const uint8_t *)"client-0", 8));
    assert_non_null(bk_session_find_cid(w, (const uint8_t *)"client-1", 8));
    assert_int_equal(w->nsessions, 1000 - 334);
    ep_broker_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offline_drop_oldest), cmocka_unit_test(test_offline_refuse_new),
        cmocka_unit_test(test_byte_limit),          cmocka_unit_test(test_granted_qos_and_expiry),
        cmocka_unit_test(test_qos2_receive_state),  cmocka_unit_test(test_qos2_routing_entries),
        cmocka_unit_test(test_session_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
