/*
 * client_test.c - the client's state machines against a fake link and a
 * fake clock: session establishment, publish pipelining, acknowledgement
 * bookkeeping, republish of missing sequence numbers (in-order delivery,
 * BadMessageNotAvailable, gaps seen in keep-alives), reconnect with backoff
 * (reactivation, new session + TransferSubscriptions, re-creation),
 * request timeouts and hostile responses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "svc/opcua_client/uac_int.h"

/* ------------------------------------------------------------ fake link -- */

typedef struct sent {
    const ep_ua_type *type;
    void *msg; /* deep copy */
    uint32_t request_id;
    bool answered;
} sent;

typedef struct fake {
    ep_uac_link base;
    struct world *w;
    bool open_called, closed, destroyed;
} fake;

typedef struct world {
    ep_fakeclock clock;
    ep_loop *loop;
    ep_uac *c;
    fake *link; /* current link */
    int nlinks;
    bool auto_open; /* open succeeds at once */
    sent log[512];
    size_t nlog;
    uint32_t next_rid;
    /* observations */
    uint32_t data[256];
    size_t ndata;
    uint32_t lost;
    ep_ua_status last_status;
    int connected;
    ep_err connect_err;
} world;

static world *W;

static ep_err f_open(ep_uac_link *l, const ep_uac_link_params *p)
{
    (void)p;
    fake *f = (fake *)l;
    f->open_called = true;
    if (f->w->auto_open)
        f->base.ev.opened(f->base.ud, EP_EOK, 0, NULL);
    return EP_EOK;
}

static ep_err f_send(ep_uac_link *l, const ep_ua_type *type, const void *msg, uint32_t *rid)
{
    fake *f = (fake *)l;
    world *w = f->w;
    if (f->closed)
        return EP_ECLOSED;
    assert_true(w->nlog < 512);
    sent *s = &w->log[w->nlog++];
    s->type = type;
    s->msg = calloc(1, type->size);
    assert_int_equal(ep_ua_copy(msg, s->msg, type), EP_EOK);
    s->request_id = ++w->next_rid;
    s->answered = false;
    *rid = s->request_id;
    return EP_EOK;
}

static void f_close(ep_uac_link *l) { ((fake *)l)->closed = true; }

static void f_destroy(ep_uac_link *l)
{
    fake *f = (fake *)l;
    if (f->w->link == f)
        f->w->link = NULL;
    free(f);
}

static const uint8_t *f_cert(ep_uac_link *l, size_t *len)
{
    (void)l;
    *len = 0;
    return NULL;
}

static const ep_uac_link_ops fake_ops = {f_open, f_send, f_close, f_destroy, f_cert};

static ep_err fake_factory(ep_loop *loop, void *ud, ep_uac_link **out)
{
    (void)loop;
    world *w = ud;
    fake *f = calloc(1, sizeof(*f));
    f->base.ops = &fake_ops;
    f->w = w;
    w->link = f;
    w->nlinks++;
    *out = &f->base;
    return EP_EOK;
}

/* ------------------------------------------------------------- helpers -- */

static sent *pending(world *w, const ep_ua_type *type, int nth)
{
    for (size_t i = 0; i < w->nlog; i++)
        if (!w->log[i].answered && w->log[i].type == type && nth-- == 0)
            return &w->log[i];
    return NULL;
}

static size_t count_pending(world *w, const ep_ua_type *type)
{
    size_t n = 0;
    for (size_t i = 0; i < w->nlog; i++)
        n += !w->log[i].answered && w->log[i].type == type;
    return n;
}

/* answer s with resp (a response struct of type rtype) */
static void answer(world *w, sent *s, const ep_ua_type *rtype, void *resp)
{
    ep_ua_response_header *h = resp;
    h->request_handle = ((ep_ua_request_header *)s->msg)->request_handle;
    s->answered = true;
    assert_non_null(w->link);
    w->link->base.ev.message(w->link->base.ud, s->request_id, rtype, resp, EP_UA_STATUS_Good);
}

static void fault(world *w, sent *s, ep_ua_status st)
{
    ep_ua_service_fault f;
    memset(&f, 0, sizeof(f));
    f.response_header.service_result = st;
    answer(w, s, EP_UA_T(ServiceFault), &f);
}

/* the connection drops: whatever was on the wire is gone */
static void kill_link(world *w)
{
    for (size_t i = 0; i < w->nlog; i++)
        w->log[i].answered = true;
    w->link->base.ev.closed(w->link->base.ud, EP_ECLOSED, EP_UA_STATUS_BadConnectionClosed, "gone");
}

static void advance(world *w, uint64_t ms)
{
    ep_fakeclock_advance(&w->clock, ms);
    ep_loop_update_time(w->loop);
    ep_loop_run_once(w->loop, 0);
}

static void on_connected(ep_uac *c, ep_err err, ep_ua_status st, void *ud)
{
    (void)c;
    (void)st;
    world *w = ud;
    w->connected = 1;
    w->connect_err = err;
}

static void on_data(ep_uac *c, uint32_t sub, uint32_t h, const ep_ua_datavalue *v, void *ud)
{
    (void)c;
    (void)sub;
    (void)h;
    world *w = ud;
    assert_true(w->ndata < 256);
    w->data[w->ndata++] = *(const uint32_t *)v->value.data;
}

static void on_status(ep_uac *c, uint32_t sub, ep_ua_status st, uint32_t lost, void *ud)
{
    (void)c;
    (void)sub;
    world *w = ud;
    w->last_status = st;
    w->lost += lost;
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof(*w));
    W = w;
    ep_fakeclock_init(&w->clock, 1000000);
    assert_int_equal(ep_loop_new(&w->loop, &w->clock.clock), EP_EOK);
    ep_uac_opts o;
    memset(&o, 0, sizeof(o));
    o.url = "opc.tcp://fake:4840";
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 1000;
    o.request_timeout_ms = 5000;
    assert_int_equal(ep_uac_new(w->loop, &o, &w->c), EP_EOK);
    ep_uac__set_link_factory(w->c, fake_factory, w);
    w->auto_open = true;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    ep_uac_free(w->c);
    ep_loop_run_once(w->loop, 0);
    for (size_t i = 0; i < w->nlog; i++) {
        ep_ua_clear(w->log[i].msg, w->log[i].type);
        free(w->log[i].msg);
    }
    ep_loop_free(w->loop);
    free(w);
    return 0;
}

static void answer_create_session(world *w, const char *token)
{
    sent *s = pending(w, EP_UA_T(CreateSessionRequest), 0);
    assert_non_null(s);
    ep_ua_create_session_response r;
    memset(&r, 0, sizeof(r));
    r.session_id = ep_ua_nodeid_numeric(1, 77);
    r.authentication_token.id_type = EP_UA_NODEID_STRING;
    r.authentication_token.ns = 1;
    r.authentication_token.id.string = ep_ua_string_from(token);
    r.revised_session_timeout = 60000;
    answer(w, s, EP_UA_T(CreateSessionResponse), &r);
}

static void answer_activate(world *w)
{
    sent *s = pending(w, EP_UA_T(ActivateSessionRequest), 0);
    assert_non_null(s);
    ep_ua_activate_session_response r;
    memset(&r, 0, sizeof(r));
    answer(w, s, EP_UA_T(ActivateSessionResponse), &r);
}

static void connect_ok(world *w)
{
    assert_int_equal(ep_uac_connect(w->c, on_connected, w), EP_EOK);
    answer_create_session(w, "tok-1");
    answer_activate(w);
    assert_int_equal(w->connected, 1);
    assert_int_equal(w->connect_err, EP_EOK);
    assert_int_equal(ep_uac_get_state(w->c), EP_UAC_CONNECTED);
}

static uint32_t make_sub(world *w, uint32_t server_id)
{
    ep_uac_sub_handlers h;
    memset(&h, 0, sizeof(h));
    h.on_data = on_data;
    h.on_status = on_status;
    h.ud = w;
    ep_uac_sub_opts o;
    memset(&o, 0, sizeof(o));
    o.publishing_interval_ms = 100;
    o.max_keepalive_count = 10;
    uint32_t id = 0;
    assert_int_equal(ep_uac_sub_create(w->c, &o, &h, NULL, NULL, &id), EP_EOK);
    sent *s = pending(w, EP_UA_T(CreateSubscriptionRequest), 0);
    assert_non_null(s);
    ep_ua_create_subscription_response r;
    memset(&r, 0, sizeof(r));
    r.subscription_id = server_id;
    r.revised_publishing_interval = 100;
    r.revised_max_keep_alive_count = 10;
    r.revised_lifetime_count = 60;
    answer(w, s, EP_UA_T(CreateSubscriptionResponse), &r);
    assert_int_equal(ep_uac_sub_server_id(w->c, id), server_id);
    return id;
}

/* answer the oldest pending Publish with a data message carrying value */
static void publish_data(world *w, uint32_t sub, uint32_t seq, uint32_t value)
{
    sent *s = pending(w, EP_UA_T(PublishRequest), 0);
    assert_non_null(s);
    ep_ua_monitored_item_notification item;
    memset(&item, 0, sizeof(item));
    item.client_handle = 1;
    item.value.mask = EP_UA_DATAVALUE_VALUE;
    item.value.value.type = EP_UA_T(UInt32);
    item.value.value.data = &value;
    ep_ua_data_change_notification dc;
    memset(&dc, 0, sizeof(dc));
    dc.monitored_items_len = 1;
    dc.monitored_items = &item;
    ep_ua_extensionobject x;
    memset(&x, 0, sizeof(x));
    x.encoding = EP_UA_EXTOBJ_DECODED;
    x.type = EP_UA_T(DataChangeNotification);
    x.data = &dc;
    ep_ua_publish_response r;
    memset(&r, 0, sizeof(r));
    r.subscription_id = sub;
    r.notification_message.sequence_number = seq;
    r.notification_message.notification_data_len = 1;
    r.notification_message.notification_data = &x;
    answer(w, s, EP_UA_T(PublishResponse), &r);
}

static void publish_keepalive(world *w, uint32_t sub, uint32_t next_seq)
{
    sent *s = pending(w, EP_UA_T(PublishRequest), 0);
    assert_non_null(s);
    ep_ua_publish_response r;
    memset(&r, 0, sizeof(r));
    r.subscription_id = sub;
    r.notification_message.sequence_number = next_seq;
    answer(w, s, EP_UA_T(PublishResponse), &r);
}

static void republish_answer(world *w, sent *s, uint32_t value)
{
    const ep_ua_republish_request *q = s->msg;
    ep_ua_monitored_item_notification item;
    memset(&item, 0, sizeof(item));
    item.value.mask = EP_UA_DATAVALUE_VALUE;
    item.value.value.type = EP_UA_T(UInt32);
    item.value.value.data = &value;
    ep_ua_data_change_notification dc;
    memset(&dc, 0, sizeof(dc));
    dc.monitored_items_len = 1;
    dc.monitored_items = &item;
    ep_ua_extensionobject x;
    memset(&x, 0, sizeof(x));
    x.encoding = EP_UA_EXTOBJ_DECODED;
    x.type = EP_UA_T(DataChangeNotification);
    x.data = &dc;
    ep_ua_republish_response r;
    memset(&r, 0, sizeof(r));
    r.notification_message.sequence_number = q->retransmit_sequence_number;
    r.notification_message.notification_data_len = 1;
    r.notification_message.notification_data = &x;
    answer(w, s, EP_UA_T(RepublishResponse), &r);
}

/* --------------------------------------------------------------- tests -- */

static void test_backoff(void **state)
{
    (void)state;
    ep_uac_backoff b;
    ep_uac__backoff_init(&b, 100, 1000, 42);
    uint32_t want[] = {100, 200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < 6; i++) {
        uint32_t d = ep_uac__backoff_next(&b);
        assert_true(d <= want[i]);
        assert_true(d >= want[i] - want[i] / 4);
    }
    ep_uac__backoff_reset(&b);
    assert_true(ep_uac__backoff_next(&b) <= 100);
}

static void test_connect_session(void **state)
{
    world *w = *state;
    connect_ok(w);
    /* the session's authentication token goes into every request */
    ep_ua_read_value_id id;
    memset(&id, 0, sizeof(id));
    id.node_id = ep_ua_nodeid_numeric(0, 2259);
    id.attribute_id = 13;
    assert_int_equal(ep_uac_read(w->c, 1, &id, 0, NULL, NULL), EP_EOK);
    sent *s = pending(w, EP_UA_T(ReadRequest), 0);
    assert_non_null(s);
    const ep_ua_read_request *rq = s->msg;
    assert_int_equal(rq->request_header.authentication_token.id_type, EP_UA_NODEID_STRING);
    assert_memory_equal(rq->request_header.authentication_token.id.string.data, "tok-1", 5);
    assert_true(rq->request_header.request_handle != 0);
}

static void test_publish_pipeline_and_acks(void **state)
{
    world *w = *state;
    connect_ok(w);
    make_sub(w, 7);
    /* max_publish (default 4) requests outstanding */
    assert_int_equal(count_pending(w, EP_UA_T(PublishRequest)), 4);
    publish_data(w, 7, 1, 100);
    assert_int_equal(w->ndata, 1);
    assert_int_equal(w->data[0], 100);
    /* refilled, and the new request acknowledges sequence number 1 */
    assert_int_equal(count_pending(w, EP_UA_T(PublishRequest)), 4);
    sent *last = &w->log[w->nlog - 1];
    assert_ptr_equal(last->type, EP_UA_T(PublishRequest));
    const ep_ua_publish_request *p = last->msg;
    assert_int_equal(p->subscription_acknowledgements_len, 1);
    assert_int_equal(p->subscription_acknowledgements[0].subscription_id, 7);
    assert_int_equal(p->subscription_acknowledgements[0].sequence_number, 1);
    /* a keep-alive is not acknowledged */
    publish_keepalive(w, 7, 2);
    p = w->log[w->nlog - 1].msg;
    assert_int_equal(p->subscription_acknowledgements_len, 0);
    /* BadTooManyPublishRequests lowers the target */
    fault(w, pending(w, EP_UA_T(PublishRequest), 0), EP_UA_STATUS_BadTooManyPublishRequests);
    assert_int_equal(count_pending(w, EP_UA_T(PublishRequest)), 3);
}

static void test_republish_in_order(void **state)
{
    world *w = *state;
    connect_ok(w);
    make_sub(w, 7);
    publish_data(w, 7, 1, 10);
    publish_data(w, 7, 4, 40); /* 2 and 3 missing */
    assert_int_equal(w->ndata, 1);
    sent *r2 = pending(w, EP_UA_T(RepublishRequest), 0);
    sent *r3 = pending(w, EP_UA_T(RepublishRequest), 1);
    assert_non_null(r2);
    assert_non_null(r3);
    assert_int_equal(((ep_ua_republish_request *)r2->msg)->subscription_id, 7);
    assert_int_equal(((ep_ua_republish_request *)r2->msg)->retransmit_sequence_number, 2);
    assert_int_equal(((ep_ua_republish_request *)r3->msg)->retransmit_sequence_number, 3);
    /* answers arrive out of order: still delivered 2, 3, 4 */
    republish_answer(w, r3, 30);
    assert_int_equal(w->ndata, 1);
    republish_answer(w, r2, 20);
    assert_int_equal(w->ndata, 4);
    assert_int_equal(w->data[1], 20);
    assert_int_equal(w->data[2], 30);
    assert_int_equal(w->data[3], 40);
    /* a duplicate (same sequence number again) is dropped */
    publish_data(w, 7, 4, 40);
    assert_int_equal(w->ndata, 4);
    ep_uac_stats st;
    ep_uac_get_stats(w->c, &st);
    assert_int_equal(st.republished, 2);
    assert_int_equal(st.lost, 0);
}

static void test_republish_not_available(void **state)
{
    world *w = *state;
    connect_ok(w);
    make_sub(w, 7);
    publish_data(w, 7, 1, 10);
    publish_data(w, 7, 3, 30);
    sent *r2 = pending(w, EP_UA_T(RepublishRequest), 0);
    assert_non_null(r2);
    fault(w, r2, EP_UA_STATUS_BadMessageNotAvailable);
    assert_int_equal(w->ndata, 2);
    assert_int_equal(w->data[1], 30);
    assert_int_equal(w->lost, 1);
    assert_int_equal(w->last_status, EP_UA_STATUS_BadMessageNotAvailable);
}

static void test_keepalive_reveals_gap(void **state)
{
    world *w = *state;
    connect_ok(w);
    make_sub(w, 7);
    publish_data(w, 7, 1, 10);
    publish_keepalive(w, 7, 3); /* message 2 was sent and lost */
    sent *r2 = pending(w, EP_UA_T(RepublishRequest), 0);
    assert_non_null(r2);
    assert_int_equal(((ep_ua_republish_request *)r2->msg)->retransmit_sequence_number, 2);
    republish_answer(w, r2, 20);
    assert_int_equal(w->ndata, 2);
    assert_int_equal(w->data[1], 20);
}

static void test_reconnect_reactivates(void **state)
{
    world *w = *state;
    connect_ok(w);
    make_sub(w, 7);
    publish_data(w, 7, 1, 10);
    /* the connection drops: requests fail, backoff starts */
    kill_link(w);
    assert_int_equal(ep_uac_get_state(w->c), EP_UAC_RECONNECTING);
    int links = w->nlinks;
    advance(w, 50);
    assert_int_equal(w->nlinks, links); /* backoff not over yet */
    advance(w, 60);
    assert_int_equal(w->nlinks, links + 1);
    /* same session: ActivateSession, no CreateSession */
    assert_null(pending(w, EP_UA_T(CreateSessionRequest), 0));
    answer_activate(w);
    assert_int_equal(ep_uac_get_state(w->c), EP_UAC_CONNECTED);
    /* the acknowledgement of seq 1 lost with the old channel is sent again */
    assert_int_equal(count_pending(w, EP_UA_T(PublishRequest)), 4);
    sent *p = pending(w, EP_UA_T(PublishRequest), 0);
    const ep_ua_publish_request *pr = p->msg;
    assert_int_equal(pr->subscription_acknowledgements_len, 1);
    /* messages 2..3 were lost in flight: next response reveals it */
    publish_data(w, 7, 4, 40);
    assert_non_null(pending(w, EP_UA_T(RepublishRequest), 0));
    assert_non_null(pending(w, EP_UA_T(RepublishRequest), 1));
    ep_uac_stats st;
    ep_uac_get_stats(w->c, &st);
    assert_int_equal(st.reconnects, 1);
}

static void test_reconnect_new_session_transfers(void **state)
{
    world *w = *state;
    connect_ok(w);
    uint32_t id = make_sub(w, 7);
    ep_uac_mon_item it;
    memset(&it, 0, sizeof(it));
    it.node = ep_ua_nodeid_numeric(1, 5);
    it.client_handle = 1;
    assert_int_equal(ep_uac_mon_create(w->c, id, 1, &it, NULL, NULL), EP_EOK);
    sent *cm = pending(w, EP_UA_T(CreateMonitoredItemsRequest), 0);
    ep_ua_monitored_item_create_result res;
    memset(&res, 0, sizeof(res));
    res.monitored_item_id = 55;
    ep_ua_create_monitored_items_response cmr;
    memset(&cmr, 0, sizeof(cmr));
    cmr.results_len = 1;
    cmr.results = &res;
    answer(w, cm, EP_UA_T(CreateMonitoredItemsResponse), &cmr);
    publish_data(w, 7, 1, 10);

    kill_link(w);
    advance(w, 200);
    /* the server lost the session: create a new one, then transfer */
    fault(w, pending(w, EP_UA_T(ActivateSessionRequest), 0), EP_UA_STATUS_BadSessionIdInvalid);
    answer_create_session(w, "tok-2");
    answer_activate(w);
    sent *t = pending(w, EP_UA_T(TransferSubscriptionsRequest), 0);
    assert_non_null(t);
    const ep_ua_transfer_subscriptions_request *tq = t->msg;
    assert_int_equal(tq->subscription_ids_len, 1);
    assert_int_equal(tq->subscription_ids[0], 7);
    /* transfer fails: the subscription and its items are created again */
    ep_ua_transfer_result tr;
    memset(&tr, 0, sizeof(tr));
    tr.status_code = EP_UA_STATUS_BadSubscriptionIdInvalid;
    ep_ua_transfer_subscriptions_response trr;
    memset(&trr, 0, sizeof(trr));
    trr.results_len = 1;
    trr.results = &tr;
    answer(w, t, EP_UA_T(TransferSubscriptionsResponse), &trr);
    sent *cs = pending(w, EP_UA_T(CreateSubscriptionRequest), 0);
    assert_non_null(cs);
    ep_ua_create_subscription_response csr;
    memset(&csr, 0, sizeof(csr));
    csr.subscription_id = 9;
    csr.revised_publishing_interval = 100;
    csr.revised_max_keep_alive_count = 10;
    answer(w, cs, EP_UA_T(CreateSubscriptionResponse), &csr);
    assert_int_equal(ep_uac_sub_server_id(w->c, id), 9);
    sent *cm2 = pending(w, EP_UA_T(CreateMonitoredItemsRequest), 0);
    assert_non_null(cm2);
    const ep_ua_create_monitored_items_request *cq = cm2->msg;
    assert_int_equal(cq->subscription_id, 9);
    assert_int_equal(cq->items_to_create_len, 1);
    assert_int_equal(cq->items_to_create[0].requested_parameters.client_handle, 1);
    assert_int_equal(w->last_status, EP_UA_STATUS_BadSubscriptionIdInvalid);
}

static int timeouts_seen;
static void on_read_done(ep_uac *c, ep_err err, ep_ua_status st, const void *resp, void *ud)
{
    (void)c;
    (void)resp;
    (void)ud;
    if (err == EP_ETIMEDOUT && st == EP_UA_STATUS_BadTimeout)
        timeouts_seen++;
}

static void test_request_timeout(void **state)
{
    world *w = *state;
    connect_ok(w);
    timeouts_seen = 0;
    ep_ua_read_value_id id;
    memset(&id, 0, sizeof(id));
    id.node_id = ep_ua_nodeid_numeric(0, 2259);
    assert_int_equal(ep_uac_read(w->c, 1, &id, 0, on_read_done, NULL), EP_EOK);
    advance(w, 4000);
    assert_int_equal(timeouts_seen, 0);
    advance(w, 1500);
    assert_int_equal(timeouts_seen, 1);
    /* a late answer is ignored */
    sent *s = pending(w, EP_UA_T(ReadRequest), 0);
    ep_ua_read_response r;
    memset(&r, 0, sizeof(r));
    answer(w, s, EP_UA_T(ReadResponse), &r);
    assert_int_equal(ep_uac_get_state(w->c), EP_UAC_CONNECTED);
}

static int proto_errors;
static void on_proto(ep_uac *c, ep_err err, ep_ua_status st, const void *resp, void *ud)
{
    (void)c;
    (void)st;
    (void)ud;
    if (err == EP_EPROTO && resp == NULL)
        proto_errors++;
}

static void test_hostile_responses(void **state)
{
    world *w = *state;
    connect_ok(w);
    proto_errors = 0;
    ep_ua_read_value_id id;
    memset(&id, 0, sizeof(id));
    id.node_id = ep_ua_nodeid_numeric(0, 2259);
    /* wrong response type */
    assert_int_equal(ep_uac_read(w->c, 1, &id, 0, on_proto, NULL), EP_EOK);
    ep_ua_write_response wr;
    memset(&wr, 0, sizeof(wr));
    answer(w, pending(w, EP_UA_T(ReadRequest), 0), EP_UA_T(WriteResponse), &wr);
    assert_int_equal(proto_errors, 1);
    assert_int_equal(ep_uac_get_state(w->c), EP_UAC_RECONNECTING);
    /* reconnect, then an undecodable response */
    advance(w, 200);
    answer_activate(w);
    assert_int_equal(ep_uac_read(w->c, 1, &id, 0, on_proto, NULL), EP_EOK);
    sent *s = pending(w, EP_UA_T(ReadRequest), 0);
    s->answered = true;
    w->link->base.ev.message(w->link->base.ud, s->request_id, NULL, NULL,
                             EP_UA_STATUS_BadDecodingError);
    assert_int_equal(proto_errors, 2);
    /* a response to a request id never sent is ignored */
    advance(w, 1000);
    answer_activate(w);
    ep_ua_read_response rr;
    memset(&rr, 0, sizeof(rr));
    w->link->base.ev.message(w->link->base.ud, 999999, EP_UA_T(ReadResponse), &rr, 0);
    assert_int_equal(ep_uac_get_state(w->c), EP_UAC_CONNECTED);
    /* another request's handle: the response is refused */
    assert_int_equal(ep_uac_read(w->c, 1, &id, 0, on_proto, NULL), EP_EOK);
    s = pending(w, EP_UA_T(ReadRequest), 0);
    rr.response_header.request_handle = 12345;
    s->answered = true;
    w->link->base.ev.message(w->link->base.ud, s->request_id, EP_UA_T(ReadResponse), &rr, 0);
    assert_int_equal(proto_errors, 3);
}

static void test_connect_refused(void **state)
{
    world *w = *state;
    w->auto_open = false;
    assert_int_equal(ep_uac_connect(w->c, on_connected, w), EP_EOK);
    w->link->base.ev.opened(w->link->base.ud, EP_ECONNREFUSED, EP_UA_STATUS_BadConnectionClosed,
                            "refused");
    assert_int_equal(w->connected, 1);
    assert_int_equal(w->connect_err, EP_ECONNREFUSED);
    assert_int_equal(ep_uac_get_state(w->c), EP_UAC_DISCONNECTED);
}

static void test_text(void **state)
{
    (void)state;
    ep_ua_nodeid id;
    char buf[128];
    assert_int_equal(ep_uac_nodeid_parse("ns=2;s=Demo.Counter", &id), EP_EOK);
    ep_uac_nodeid_format(&id, buf, sizeof(buf));
    assert_string_equal(buf, "ns=2;s=Demo.Counter");
    assert_int_equal(ep_uac_nodeid_parse("i=85", &id), EP_EOK);
    assert_int_equal(id.id.numeric, 85);
    assert_int_equal(ep_uac_nodeid_parse("2253", &id), EP_EOK);
    assert_int_equal(ep_uac_nodeid_parse("ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63", &id),
                     EP_EOK);
    ep_uac_nodeid_format(&id, buf, sizeof(buf));
    assert_string_equal(buf, "ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63");
    assert_int_equal(ep_uac_nodeid_parse("ns=x;i=1", &id), EP_EINVAL);
    assert_int_equal(ep_uac_nodeid_parse("q=1", &id), EP_EINVAL);
    ep_ua_variant v;
    uint8_t st[32];
    assert_int_equal(ep_uac_variant_parse("-5", 6, st, &v), EP_EOK);
    ep_uac_variant_format(&v, true, buf, sizeof(buf));
    assert_string_equal(buf, "-5");
    assert_int_equal(ep_uac_variant_parse("300", 3, st, &v), EP_EINVAL);
    assert_int_equal(ep_uac_variant_parse("a\"b", 12, st, &v), EP_EOK);
    ep_uac_variant_format(&v, true, buf, sizeof(buf));
    assert_string_equal(buf, "\"a\\\"b\"");
}

int main(void)
{
    ep_log_set_level(EP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_text),
        cmocka_unit_test_setup_teardown(test_connect_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_pipeline_and_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_republish_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_republish_not_available, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_reveals_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_reactivates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_new_session_transfers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_responses, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
