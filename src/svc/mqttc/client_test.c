/*
 * client_test.c - the client state machine against a scripted server.
 *
 * The transport is a socketpair (one end for the client, one for the test),
 * the loop runs on a fake clock, and the test plays the server with the
 * codec: it reads what the client wrote, decodes it, and answers with
 * whatever the case needs - including acknowledgements out of order,
 * withheld PINGRESPs and dropped connections, which a real broker does not
 * produce on demand.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/sock.h"
#include "svc/auth/passwd.h"
#include "svc/auth/scram.h"
#include "svc/mqttc/mqttc_int.h"

/* ---- fake network ----------------------------------------------------- */

static struct {
    int fd; /* the test's (server's) end, -1 when none */
    int opens;
    bool refuse;
    uint8_t version; /* negotiated, from the last CONNECT */
    uint8_t rx[1 << 20];
    size_t rxlen;
    uint8_t *keep[512]; /* decoded packets' bytes, freed at teardown */
    int nkeep;
} net;

static ep_fakeclock fc;
static ep_loop *loop;

static int fd_of(void *conn) { return (int)((intptr_t)conn - 1); }

static ep_err fake_open(void *ctx, const char *host, uint16_t port, void **conn, int *fd)
{
    (void)ctx;
    (void)host;
    (void)port;
    if (net.refuse)
        return EP_ECONNREFUSED;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    if (net.fd >= 0)
        close(net.fd);
    net.fd = sv[1];
    net.rxlen = 0;
    net.opens++;
    *fd = sv[0];
    *conn = (void *)(intptr_t)(sv[0] + 1);
    return EP_EOK;
}

static ep_err fake_handshake(void *conn, unsigned *want)
{
    (void)conn;
    (void)want;
    return EP_EOK;
}

static ssize_t fake_read(void *conn, void *p, size_t n) { return ep_sock_read(fd_of(conn), p, n); }

static ssize_t fake_writev(void *conn, const struct iovec *iov, int cnt)
{
    return ep_sock_writev(fd_of(conn), iov, cnt);
}

static void fake_close(void *conn) { close(fd_of(conn)); }

static const ep_mqttc_transport_ops fake = {
    .name = "fake",
    .open = fake_open,
    .handshake = fake_handshake,
    .read = fake_read,
    .writev = fake_writev,
    .close = fake_close,
};

static void spin(void)
{
    for (int i = 0; i < 10; i++)
        ep_loop_run_once(loop, 0);
}

static void advance(uint64_t ms)
{
    ep_fakeclock_advance(&fc, ms);
    spin();
}

/* Next packet the client sent, or false when none is complete. */
static bool srv_next(ep_mqtt_packet *p)
{
    for (;;) {
        ssize_t r = read(net.fd, net.rx + net.rxlen, sizeof(net.rx) - net.rxlen);
        if (r <= 0)
            break;
        net.rxlen += (size_t)r;
    }
    size_t hl, total;
    if (ep_mqtt_packet_frame(net.rx, net.rxlen, 0, &hl, &total) != EP_EOK)
        return false;
    uint8_t *copy = malloc(total);
    assert_non_null(copy);
    memcpy(copy, net.rx, total);
    memmove(net.rx, net.rx + total, net.rxlen - total);
    net.rxlen -= total;
    /* A ring: a test only looks at the packets it just read. */
    int slot = net.nkeep++ % 512;
    free(net.keep[slot]);
    net.keep[slot] = copy;
    bool connect = (copy[0] >> 4) == EP_MQTT_CONNECT;
    assert_int_equal(ep_mqtt_packet_decode(copy, total, connect ? 0 : net.version, p, NULL),
                     EP_EOK);
    if (connect)
        net.version = p->connect.protocol_version;
    return true;
}

static ep_mqtt_packet expect(ep_mqtt_type type)
{
    ep_mqtt_packet p;
    assert_true(srv_next(&p));
    assert_string_equal(ep_mqtt_type_name(p.type), ep_mqtt_type_name(type));
    return p;
}

static void expect_nothing(void)
{
    ep_mqtt_packet p;
    if (srv_next(&p))
        fail_msg("unexpected %s from the client", ep_mqtt_type_name(p.type));
}

static void srv_send(const ep_mqtt_packet *p)
{
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_mqtt_packet_encode(&b, p, net.version, 0), EP_EOK);
    assert_int_equal(write(net.fd, ep_buf_head(&b), ep_buf_used(&b)), (ssize_t)ep_buf_used(&b));
    ep_buf_fini(&b);
}

static void srv_ack(ep_mqtt_type type, uint16_t id, ep_mqtt_rc rc)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = type;
    p.ack.packet_id = id;
    p.ack.rc = rc;
    srv_send(&p);
}

static void srv_connack(bool sp, const ep_mqtt_props *props)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_CONNACK;
    p.connack.session_present = sp;
    if (props)
        p.connack.props = *props;
    srv_send(&p);
}

static void srv_drop(void)
{
    close(net.fd);
    net.fd = -1;
    net.rxlen = 0;
}

/* ---- recording callbacks ---------------------------------------------- */

typedef struct rec {
    int connects, disconnects, messages;
    bool last_sp;
    ep_mqttc_disconnect_info last_disc;
    char server_ref[64];
    char topics[32][32];
    char payloads[32][32];
    uint64_t tokens[32];
    uint8_t qos[32];
    /* publish completions, in completion order */
    int ndone;
    int done_tag[256];
    ep_err done_err[256];
    ep_mqtt_rc done_rc[256];
    int times_done[256]; /* per tag: must end up 0 or 1 */
    /* subscribe completions */
    int nsub;
    ep_err sub_err[8];
    uint8_t sub_rcs[8][8];
    size_t sub_n[8];
    bool free_in_message;
} rec;

static rec R;

static void on_connect(ep_mqttc *c, bool sp, const ep_mqtt_props *props, void *ud)
{
    (void)c;
    (void)props;
    (void)ud;
    R.connects++;
    R.last_sp = sp;
}

static void on_disconnect(ep_mqttc *c, const ep_mqttc_disconnect_info *info, void *ud)
{
    (void)c;
    (void)ud;
    R.disconnects++;
    R.last_disc = *info;
    snprintf(R.server_ref, sizeof(R.server_ref), "%.*s", (int)info->server_reference.len,
             (const char *)info->server_reference.p);
    R.last_disc.reason_string.p = NULL;
    R.last_disc.server_reference.p = NULL;
}

static void on_message(ep_mqttc *c, const ep_mqttc_message *m, void *ud)
{
    (void)ud;
    int i = R.messages++;
    if (i >= 32) /* the hostile-input case delivers many: count only */
        return;
    snprintf(R.topics[i], sizeof(R.topics[i]), "%.*s", (int)m->topic.len, (const char *)m->topic.p);
    snprintf(R.payloads[i], sizeof(R.payloads[i]), "%.*s", (int)m->payload.len,
             (const char *)m->payload.p);
    R.tokens[i] = m->ack_token;
    R.qos[i] = m->qos;
    if (R.free_in_message)
        ep_mqttc_free(c);
}

static void pub_done(ep_mqttc *c, ep_err err, ep_mqtt_rc rc, void *ud)
{
    (void)c;
    int tag = (int)(intptr_t)ud;
    if (R.ndone < 256) {
        R.done_tag[R.ndone] = tag;
        R.done_err[R.ndone] = err;
        R.done_rc[R.ndone] = rc;
    }
    R.ndone++;
    R.times_done[tag]++;
}

static void sub_done(ep_mqttc *c, ep_err err, const uint8_t *rcs, size_t n, void *ud)
{
    (void)c;
    (void)ud;
    int i = R.nsub++;
    R.sub_err[i] = err;
    R.sub_n[i] = n;
    if (n)
        memcpy(R.sub_rcs[i], rcs, n < 8 ? n : 8);
}

static ep_mqttc_options base_opts(void)
{
    ep_mqttc_options o = {0};
    o.client_id = "test-client";
    o.transport = &fake;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 1000;
    o.reconnect_no_jitter = true;
    o.on_connect = on_connect;
    o.on_disconnect = on_disconnect;
    o.on_message = on_message;
    return o;
}

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    for (int i = 0; i < 512; i++)
        free(net.keep[i]);
    memset(&net, 0, sizeof(net));
    net.fd = -1;
    ep_fakeclock_init(&fc, 1000000);
    assert_int_equal(ep_loop_new(&loop, &fc.clock), EP_EOK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (net.fd >= 0)
        close(net.fd);
    net.fd = -1;
    spin();
    ep_loop_free(loop);
    for (int i = 0; i < 512; i++) {
        free(net.keep[i]);
        net.keep[i] = NULL;
    }
    net.nkeep = 0;
    return 0;
}

/* Connects c and answers CONNACK; returns the CONNECT seen. */
static ep_mqtt_packet establish(ep_mqttc *c, bool sp, const ep_mqtt_props *props)
{
    if (ep_mqttc_connect(c) != EP_EOK) {
        /* already waiting to reconnect: let the timer run */
    }
    spin();
    ep_mqtt_packet cn = expect(EP_MQTT_CONNECT);
    srv_connack(sp, props);
    spin();
    assert_true(ep_mqttc_is_connected(c));
    return cn;
}

static void publish(ep_mqttc *c, const char *topic, const char *payload, uint8_t qos, int tag,
                    ep_err want)
{
    ep_mqttc_pub p = {0};
    p.topic = topic;
    p.payload = payload;
    p.payload_len = strlen(payload);
    p.qos = qos;
    assert_int_equal(ep_mqttc_publish(c, &p, pub_done, (void *)(intptr_t)tag), want);
}

static void assert_slice(ep_mqtt_slice s, const char *want)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%.*s", (int)s.len, (const char *)s.p);
    assert_string_equal(buf, want);
}

static void assert_all_done_once(int ntags)
{
    for (int t = 0; t < ntags; t++)
        assert_int_equal(R.times_done[t], 1);
}

/* ---- cases ------------------------------------------------------------ */

/* A slow PUBACK holds one slot of the window; the rest keeps moving. The
 * server's Receive Maximum (4) caps the window below inflight_max. */
static void test_qos1_out_of_order_acks_no_head_of_line(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_props ca = {0};
    EP_MQTT_PROPS_SET(&ca, EP_MQTT_PROP_RECEIVE_MAXIMUM);
    ca.receive_maximum = 4;
    ep_mqtt_packet cn = establish(c, false, &ca);
    assert_true(cn.connect.clean_start == false);
    assert_int_equal(cn.connect.protocol_version, 5);

    for (int i = 0; i < 12; i++) {
        char pl[16];
        snprintf(pl, sizeof(pl), "m%d", i);
        publish(c, "t/q1", pl, 1, i, EP_EOK);
    }
    spin();
    uint16_t ids[12];
    for (int i = 0; i < 4; i++) {
        ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
        ids[i] = p.publish.packet_id;
        assert_int_equal(p.publish.qos, 1);
        assert_false(p.publish.dup);
    }
    expect_nothing(); /* window full */
    ep_mqttc_stats st;
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.inflight, 4);
    assert_int_equal(st.inflight_window, 4);
    assert_int_equal(st.queued, 8);

    /* Withhold the ack of message 0; ack every other one as it arrives. */
    int next = 4;
    for (int k = 1; k < 12; k++) {
        srv_ack(EP_MQTT_PUBACK, ids[k], k == 5 ? EP_MQTT_RC_NO_MATCHING_SUBSCRIBERS : 0);
        spin();
        if (next < 12) {
            ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
            ids[next++] = p.publish.packet_id;
        }
        expect_nothing();
    }
    /* All 12 were sent while message 0 was still unacknowledged. */
    assert_int_equal(next, 12);
    assert_int_equal(R.ndone, 11);
    for (int k = 0; k < 11; k++) {
        assert_int_equal(R.done_tag[k], k + 1);
        assert_int_equal(R.done_err[k], EP_EOK);
    }
    assert_int_equal(R.done_rc[4], EP_MQTT_RC_NO_MATCHING_SUBSCRIBERS);
    srv_ack(EP_MQTT_PUBACK, ids[0], 0);
    spin();
    assert_int_equal(R.ndone, 12);
    assert_int_equal(R.done_tag[11], 0);
    assert_all_done_once(12);
    /* An ack for an id not in flight is ignored. */
    srv_ack(EP_MQTT_PUBACK, 999, 0);
    spin();
    assert_true(ep_mqttc_is_connected(c));
    ep_mqttc_free(c);
}

/* QoS 2: PUBRECs and PUBCOMPs in any order; PUBREL per id. */
static void test_qos2_out_of_order(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    establish(c, false, NULL);
    for (int i = 0; i < 3; i++)
        publish(c, "t/q2", "x", 2, i, EP_EOK);
    spin();
    uint16_t id[3];
    for (int i = 0; i < 3; i++)
        id[i] = expect(EP_MQTT_PUBLISH).publish.packet_id;
    srv_ack(EP_MQTT_PUBREC, id[2], 0);
    srv_ack(EP_MQTT_PUBREC, id[0], 0);
    spin();
    assert_int_equal(expect(EP_MQTT_PUBREL).ack.packet_id, id[2]);
    assert_int_equal(expect(EP_MQTT_PUBREL).ack.packet_id, id[0]);
    /* A refusing PUBREC ends that flow at once, without PUBREL. */
    srv_ack(EP_MQTT_PUBREC, id[1], EP_MQTT_RC_NOT_AUTHORIZED);
    spin();
    expect_nothing();
    assert_int_equal(R.ndone, 1);
    assert_int_equal(R.done_tag[0], 1);
    assert_int_equal(R.done_rc[0], EP_MQTT_RC_NOT_AUTHORIZED);
    srv_ack(EP_MQTT_PUBCOMP, id[0], 0);
    srv_ack(EP_MQTT_PUBCOMP, id[2], 0);
    spin();
    assert_int_equal(R.ndone, 3);
    assert_int_equal(R.done_tag[1], 0);
    assert_int_equal(R.done_tag[2], 2);
    assert_all_done_once(3);
    ep_mqttc_free(c);
}

static void test_offline_queue_drop_oldest(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.queue_max_messages = 3;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    for (int i = 0; i < 5; i++) {
        char pl[8];
        snprintf(pl, sizeof(pl), "%d", i);
        publish(c, "t/off", pl, 1, i, EP_EOK);
    }
    assert_int_equal(R.ndone, 0); /* never from inside publish */
    spin();
    assert_int_equal(R.ndone, 2);
    assert_int_equal(R.done_tag[0], 0);
    assert_int_equal(R.done_err[0], EP_EFULL);
    assert_int_equal(R.done_tag[1], 1);
    ep_mqttc_stats st;
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.dropped_full, 2);
    assert_int_equal(st.queued, 3);
    establish(c, false, NULL);
    for (int i = 2; i < 5; i++) {
        ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
        char want[8];
        snprintf(want, sizeof(want), "%d", i);
        assert_slice(p.publish.payload, want);
        srv_ack(EP_MQTT_PUBACK, p.publish.packet_id, 0);
    }
    spin();
    assert_int_equal(R.ndone, 5);
    assert_all_done_once(5);
    ep_mqttc_free(c);
}

static void test_offline_queue_refuse_new_and_bytes(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.queue_policy = EP_MQTTC_REFUSE_NEW;
    o.queue_max_bytes = 3 * (sizeof(ep_msg) + 4 + 1 + 10);
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    for (int i = 0; i < 3; i++)
        publish(c, "t/ab", "0123456789", 0, i, EP_EOK);
    publish(c, "t/ab", "0123456789", 0, 3, EP_EFULL);
    /* Larger than the whole byte budget: never fits. */
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    publish(c, "t/ab", big, 0, 4, EP_ETOOBIG);
    spin();
    assert_int_equal(R.ndone, 2);
    assert_int_equal(R.done_err[0], EP_EFULL);
    assert_int_equal(R.done_err[1], EP_ETOOBIG);
    /* Bad arguments complete too. */
    publish(c, "bad/+/topic", "x", 0, 5, EP_EINVAL);
    spin();
    assert_int_equal(R.done_tag[2], 5);
    assert_int_equal(R.done_err[2], EP_EINVAL);
    establish(c, false, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(expect(EP_MQTT_PUBLISH).publish.qos, 0);
    spin();
    assert_int_equal(R.ndone, 6);
    assert_all_done_once(6);
    ep_mqttc_free(c);
}

/* Lost connection: reconnect with CleanStart=false after the backoff, and
 * with the session present re-send PUBLISH (DUP, same ids) and PUBREL in
 * the original order, then what was queued meanwhile. */
static void test_reconnect_resends_in_order(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.session_expiry = 600;
    o.clean_start = true;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_packet cn = establish(c, false, NULL);
    assert_true(cn.connect.clean_start);
    assert_int_equal(cn.connect.props.session_expiry_interval, 600);
    publish(c, "t/a", "A", 1, 0, EP_EOK);
    publish(c, "t/b", "B", 2, 1, EP_EOK);
    publish(c, "t/c", "C", 2, 2, EP_EOK);
    spin();
    uint16_t ia = expect(EP_MQTT_PUBLISH).publish.packet_id;
    uint16_t ib = expect(EP_MQTT_PUBLISH).publish.packet_id;
    uint16_t ic = expect(EP_MQTT_PUBLISH).publish.packet_id;
    srv_ack(EP_MQTT_PUBREC, ic, 0);
    spin();
    assert_int_equal(expect(EP_MQTT_PUBREL).ack.packet_id, ic);
    srv_drop();
    spin();
    assert_int_equal(R.disconnects, 1);
    assert_true(R.last_disc.was_connected);
    assert_true(R.last_disc.will_reconnect);
    assert_int_equal(R.last_disc.reconnect_in_ms, 100);
    publish(c, "t/d", "D", 1, 3, EP_EOK); /* while offline */
    advance(99);
    assert_int_equal(net.opens, 1);
    advance(1);
    assert_int_equal(net.opens, 2);
    ep_mqtt_packet cn2 = expect(EP_MQTT_CONNECT);
    assert_false(cn2.connect.clean_start);
    srv_connack(true, NULL);
    spin();
    assert_true(R.last_sp);
    ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
    assert_int_equal(p.publish.packet_id, ia);
    assert_true(p.publish.dup);
    assert_slice(p.publish.payload, "A");
    p = expect(EP_MQTT_PUBLISH);
    assert_int_equal(p.publish.packet_id, ib);
    assert_true(p.publish.dup);
    assert_int_equal(expect(EP_MQTT_PUBREL).ack.packet_id, ic);
    p = expect(EP_MQTT_PUBLISH);
    assert_slice(p.publish.payload, "D");
    assert_false(p.publish.dup);
    ep_mqttc_stats st;
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.resent, 3);
    assert_int_equal(R.ndone, 0);
    ep_mqttc_free(c);
    /* Freeing completes everything outstanding, once. */
    assert_int_equal(R.ndone, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(R.done_err[i], EP_ECLOSED);
    assert_all_done_once(4);
}

/* The server lost the session: unacknowledged QoS 1/2 messages are sent
 * again as new messages (at least once), a message already PUBREC'd is
 * complete, and on_connect reports session_present = false. */
static void test_reconnect_without_session(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.session_expiry = 600;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    establish(c, false, NULL);
    publish(c, "t/a", "A", 1, 0, EP_EOK);
    publish(c, "t/b", "B", 2, 1, EP_EOK);
    spin();
    expect(EP_MQTT_PUBLISH);
    uint16_t ib = expect(EP_MQTT_PUBLISH).publish.packet_id;
    srv_ack(EP_MQTT_PUBREC, ib, 0);
    spin();
    expect(EP_MQTT_PUBREL);
    srv_drop();
    spin();
    advance(100);
    expect(EP_MQTT_CONNECT);
    srv_connack(false, NULL);
    spin();
    assert_false(R.last_sp);
    assert_int_equal(R.connects, 2);
    ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
    assert_slice(p.publish.payload, "A");
    assert_false(p.publish.dup);
    expect_nothing();
    assert_int_equal(R.ndone, 1);
    assert_int_equal(R.done_tag[0], 1);
    assert_int_equal(R.done_err[0], EP_EOK);
    srv_ack(EP_MQTT_PUBACK, p.publish.packet_id, 0);
    spin();
    assert_int_equal(R.ndone, 2);
    assert_all_done_once(2);
    ep_mqttc_free(c);
}

static void test_keepalive_ping_and_timeout(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.keepalive = 10;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_packet cn = establish(c, false, NULL);
    assert_int_equal(cn.connect.keep_alive, 10);
    advance(9999);
    expect_nothing();
    advance(1);
    expect(EP_MQTT_PINGREQ);
    ep_mqtt_packet pr;
    memset(&pr, 0, sizeof(pr));
    pr.type = EP_MQTT_PINGRESP;
    srv_send(&pr);
    spin();
    advance(10000);
    expect(EP_MQTT_PINGREQ);
    /* No answer: dropped after min(keepalive, 30 s). */
    advance(9999);
    assert_true(ep_mqttc_is_connected(c));
    advance(1);
    assert_false(ep_mqttc_is_connected(c));
    assert_int_equal(R.last_disc.err, EP_ETIMEDOUT);
    assert_true(R.last_disc.will_reconnect);
    ep_mqttc_free(c);
}

/* The server keep alive from CONNACK replaces ours. */
static void test_server_keepalive(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.keepalive = 100;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_props ca = {0};
    EP_MQTT_PROPS_SET(&ca, EP_MQTT_PROP_SERVER_KEEP_ALIVE);
    ca.server_keep_alive = 2;
    establish(c, false, &ca);
    advance(2000);
    expect(EP_MQTT_PINGREQ);
    ep_mqttc_free(c);
}

static void test_topic_alias_out(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_props ca = {0};
    EP_MQTT_PROPS_SET(&ca, EP_MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
    ca.topic_alias_maximum = 2;
    establish(c, false, &ca);
    const char *seq[] = {"a/1", "a/1", "b/2", "c/3", "a/1", "c/3"};
    /* want: topic sent (or "" for alias only) and alias */
    const char *want_topic[] = {"a/1", "", "b/2", "c/3", "a/1", ""};
    const uint16_t want_alias[] = {1, 1, 2, 1, 2, 1};
    for (int i = 0; i < 6; i++)
        publish(c, seq[i], "p", 0, i, EP_EOK);
    spin();
    for (int i = 0; i < 6; i++) {
        ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
        assert_slice(p.publish.topic, want_topic[i]);
        assert_true(EP_MQTT_PROPS_HAS(&p.publish.props, EP_MQTT_PROP_TOPIC_ALIAS));
        assert_int_equal(p.publish.props.topic_alias, want_alias[i]);
    }
    /* Aliases are per connection: after a reconnect the topic is sent. */
    srv_drop();
    spin();
    advance(100);
    expect(EP_MQTT_CONNECT);
    srv_connack(false, &ca);
    spin();
    publish(c, "c/3", "p", 0, 6, EP_EOK);
    spin();
    ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
    assert_slice(p.publish.topic, "c/3");
    ep_mqttc_free(c);
}

static void test_no_alias_without_server_permission(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    establish(c, false, NULL);
    publish(c, "x", "p", 0, 0, EP_EOK);
    publish(c, "x", "p", 0, 1, EP_EOK);
    spin();
    for (int i = 0; i < 2; i++) {
        ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
        assert_slice(p.publish.topic, "x");
        assert_false(EP_MQTT_PROPS_HAS(&p.publish.props, EP_MQTT_PROP_TOPIC_ALIAS));
    }
    ep_mqttc_free(c);
}

static void srv_publish(uint8_t qos, uint16_t id, bool dup, const char *topic, const char *payload,
                        uint16_t alias)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_PUBLISH;
    p.publish.qos = qos;
    p.publish.dup = dup;
    p.publish.packet_id = id;
    p.publish.topic = ep_mqtt_slice_make(topic, strlen(topic));
    p.publish.payload = ep_mqtt_slice_make(payload, strlen(payload));
    if (alias) {
        EP_MQTT_PROPS_SET(&p.publish.props, EP_MQTT_PROP_TOPIC_ALIAS);
        p.publish.props.topic_alias = alias;
    }
    srv_send(&p);
}

/* Manual acks go out in the order the application gives them; QoS 2
 * duplicates are suppressed; PUBREL is answered. */
static void test_incoming_manual_ack_any_order_and_qos2_dedupe(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.manual_ack = true;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    establish(c, false, NULL);
    srv_publish(1, 1, false, "in/a", "one", 0);
    srv_publish(1, 2, false, "in/a", "two", 0);
    srv_publish(2, 3, false, "in/b", "three", 0);
    srv_publish(0, 0, false, "in/c", "zero", 0);
    spin();
    assert_int_equal(R.messages, 4);
    assert_string_equal(R.payloads[2], "three");
    assert_int_equal(R.tokens[3], 0);
    expect_nothing(); /* nothing acked yet */
    assert_int_equal(ep_mqttc_ack(c, R.tokens[1], 0), EP_EOK);
    assert_int_equal(ep_mqttc_ack(c, R.tokens[2], 0), EP_EOK);
    assert_int_equal(ep_mqttc_ack(c, R.tokens[1], 0), EP_ESTATE); /* twice */
    assert_int_equal(ep_mqttc_ack(c, R.tokens[3], 0), EP_EOK);    /* QoS 0 */
    spin();
    assert_int_equal(expect(EP_MQTT_PUBACK).ack.packet_id, 2);
    assert_int_equal(expect(EP_MQTT_PUBREC).ack.packet_id, 3);
    expect_nothing();
    /* The server did not see our PUBREC and sends id 3 again. */
    srv_publish(2, 3, true, "in/b", "three", 0);
    spin();
    assert_int_equal(R.messages, 4);
    assert_int_equal(expect(EP_MQTT_PUBREC).ack.packet_id, 3);
    ep_mqtt_packet rel;
    memset(&rel, 0, sizeof(rel));
    rel.type = EP_MQTT_PUBREL;
    rel.ack.packet_id = 3;
    srv_send(&rel);
    spin();
    assert_int_equal(expect(EP_MQTT_PUBCOMP).ack.packet_id, 3);
    /* The slow one last. */
    assert_int_equal(ep_mqttc_ack(c, R.tokens[0], 0), EP_EOK);
    spin();
    assert_int_equal(expect(EP_MQTT_PUBACK).ack.packet_id, 1);
    /* A PUBREL for an unknown id is answered with "not found". */
    rel.ack.packet_id = 77;
    srv_send(&rel);
    spin();
    ep_mqtt_packet pc = expect(EP_MQTT_PUBCOMP);
    assert_int_equal(pc.ack.rc, EP_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
    ep_mqttc_stats st;
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.received, 4);
    assert_int_equal(st.received_dup, 1);
    ep_mqttc_free(c);
}

/* Tokens belong to one connection. */
static void test_stale_token_after_reconnect(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.manual_ack = true;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    establish(c, false, NULL);
    srv_publish(1, 9, false, "in/a", "one", 0);
    spin();
    uint64_t tok = R.tokens[0];
    srv_drop();
    spin();
    advance(100);
    expect(EP_MQTT_CONNECT);
    srv_connack(true, NULL);
    spin();
    assert_int_equal(ep_mqttc_ack(c, tok, 0), EP_ESTATE);
    srv_publish(1, 9, true, "in/a", "one", 0);
    spin();
    assert_int_equal(R.messages, 2);
    assert_int_equal(ep_mqttc_ack(c, R.tokens[1], 0), EP_EOK);
    spin();
    assert_int_equal(expect(EP_MQTT_PUBACK).ack.packet_id, 9);
    ep_mqttc_free(c);
}

static void test_receive_maximum_enforced(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.manual_ack = true;
    o.receive_maximum = 2;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_packet cn = establish(c, false, NULL);
    assert_int_equal(cn.connect.props.receive_maximum, 2);
    srv_publish(1, 1, false, "a", "1", 0);
    srv_publish(1, 2, false, "a", "2", 0);
    srv_publish(1, 3, false, "a", "3", 0);
    spin();
    assert_int_equal(R.messages, 2);
    ep_mqtt_packet d = expect(EP_MQTT_DISCONNECT);
    assert_int_equal(d.disconnect.rc, EP_MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED);
    assert_int_equal(R.last_disc.err, EP_EPROTO);
    ep_mqttc_free(c);
}

static void test_incoming_topic_alias(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.topic_alias_maximum = 4;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_packet cn = establish(c, false, NULL);
    assert_int_equal(cn.connect.props.topic_alias_maximum, 4);
    srv_publish(0, 0, false, "long/topic/name", "1", 3);
    srv_publish(0, 0, false, "", "2", 3);
    spin();
    assert_int_equal(R.messages, 2);
    assert_string_equal(R.topics[1], "long/topic/name");
    srv_publish(0, 0, false, "x", "3", 5); /* above our maximum */
    spin();
    assert_int_equal(expect(EP_MQTT_DISCONNECT).disconnect.rc, EP_MQTT_RC_TOPIC_ALIAS_INVALID);
    ep_mqttc_free(c);
}

static void test_server_maximum_packet_size(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_props ca = {0};
    EP_MQTT_PROPS_SET(&ca, EP_MQTT_PROP_MAXIMUM_PACKET_SIZE);
    ca.maximum_packet_size = 64;
    establish(c, false, &ca);
    char big[100];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    publish(c, "t", big, 1, 0, EP_ETOOBIG);
    publish(c, "t", "small", 1, 1, EP_EOK);
    spin();
    assert_int_equal(R.ndone, 1);
    assert_int_equal(R.done_err[0], EP_ETOOBIG);
    ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
    assert_slice(p.publish.payload, "small");
    ep_mqttc_stats st;
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.dropped_other, 1);
    ep_mqttc_free(c);
}

static void test_subscribe_queued_then_acked(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_sub subs[2] = {{.filter = EP_MQTT_STR("a/#"), .qos = 1},
                           {.filter = EP_MQTT_STR("b/+"), .qos = 2, .no_local = true}};
    assert_int_equal(ep_mqttc_subscribe(c, subs, 2, 42, sub_done, NULL), EP_EOK);
    publish(c, "a/x", "queued", 0, 0, EP_EOK);
    establish(c, false, NULL);
    ep_mqtt_packet s = expect(EP_MQTT_SUBSCRIBE);
    assert_int_equal(s.subscribe.count, 2);
    assert_int_equal(s.subscribe.props.subscription_id, 42);
    size_t it = 0;
    ep_mqtt_sub e;
    assert_true(ep_mqtt_subscribe_next(&s.subscribe, &it, &e));
    assert_slice(e.filter, "a/#");
    assert_true(ep_mqtt_subscribe_next(&s.subscribe, &it, &e));
    assert_true(e.no_local);
    assert_int_equal(e.qos, 2);
    expect(EP_MQTT_PUBLISH); /* queued publication after the SUBSCRIBE */
    ep_mqtt_packet sa;
    memset(&sa, 0, sizeof(sa));
    sa.type = EP_MQTT_SUBACK;
    sa.suback.packet_id = s.subscribe.packet_id;
    sa.suback.codes = ep_mqtt_slice_make("\x01\x87", 2);
    srv_send(&sa);
    spin();
    assert_int_equal(R.nsub, 1);
    assert_int_equal(R.sub_err[0], EP_EOK);
    assert_int_equal(R.sub_n[0], 2);
    assert_int_equal(R.sub_rcs[0][0], 1);
    assert_int_equal(R.sub_rcs[0][1], 0x87);

    /* Unsubscribe, then lose the connection before UNSUBACK. */
    ep_mqtt_slice f = EP_MQTT_STR("a/#");
    assert_int_equal(ep_mqttc_unsubscribe(c, &f, 1, sub_done, NULL), EP_EOK);
    spin();
    expect(EP_MQTT_UNSUBSCRIBE);
    srv_drop();
    spin();
    assert_int_equal(R.nsub, 2);
    assert_int_equal(R.sub_err[1], EP_ECLOSED);
    /* Bad filters are refused and still completed. */
    ep_mqtt_sub bad = {.filter = EP_MQTT_STR("a/#/b"), .qos = 0};
    assert_int_equal(ep_mqttc_subscribe(c, &bad, 1, 0, sub_done, NULL), EP_EINVAL);
    spin();
    assert_int_equal(R.nsub, 3);
    assert_int_equal(R.sub_err[2], EP_EINVAL);
    ep_mqttc_free(c);
}

static void test_v311_flow(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.version = EP_MQTT_V311;
    o.clean_start = false;
    o.username = "u";
    o.password = "pw";
    o.password_len = 2;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_packet cn = establish(c, false, NULL);
    assert_int_equal(cn.connect.protocol_version, 4);
    assert_false(cn.connect.clean_start);
    assert_slice(cn.connect.username, "u");
    assert_slice(cn.connect.password, "pw");
    publish(c, "v3/t", "hello", 1, 0, EP_EOK);
    spin();
    ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
    srv_ack(EP_MQTT_PUBACK, p.publish.packet_id, 0);
    ep_mqtt_slice f = EP_MQTT_STR("v3/#");
    assert_int_equal(ep_mqttc_unsubscribe(c, &f, 1, sub_done, NULL), EP_EOK);
    spin();
    ep_mqtt_packet u = expect(EP_MQTT_UNSUBSCRIBE);
    ep_mqtt_packet ua;
    memset(&ua, 0, sizeof(ua));
    ua.type = EP_MQTT_UNSUBACK;
    ua.suback.packet_id = u.unsubscribe.packet_id;
    srv_send(&ua);
    spin();
    assert_int_equal(R.ndone, 1);
    assert_int_equal(R.nsub, 1);
    assert_int_equal(R.sub_n[0], 1);
    assert_int_equal(R.sub_rcs[0][0], 0);
    /* 3.1.1 keeps Clean Session as configured on reconnect too. */
    srv_drop();
    spin();
    advance(100);
    assert_false(expect(EP_MQTT_CONNECT).connect.clean_start);
    ep_mqttc_free(c);
}

static void test_will_and_connect_properties(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.will_topic = "status/test";
    o.will_payload = "offline";
    o.will_payload_len = 7;
    o.will_qos = 1;
    o.will_retain = true;
    ep_mqtt_user_prop up = {EP_MQTT_STR("k"), EP_MQTT_STR("v")};
    ep_mqtt_props wp = {0};
    EP_MQTT_PROPS_SET(&wp, EP_MQTT_PROP_WILL_DELAY_INTERVAL);
    wp.will_delay_interval = 5;
    wp.user = &up;
    wp.n_user = 1;
    o.will_props = &wp;
    o.maximum_packet_size = 4096;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    memset(&wp, 0, sizeof(wp)); /* copied at creation */
    ep_mqtt_packet cn = establish(c, false, NULL);
    assert_true(cn.connect.has_will);
    assert_slice(cn.connect.will.topic, "status/test");
    assert_slice(cn.connect.will.payload, "offline");
    assert_int_equal(cn.connect.will.qos, 1);
    assert_true(cn.connect.will.retain);
    assert_int_equal(cn.connect.will.props.will_delay_interval, 5);
    assert_int_equal(cn.connect.will.props.user_count, 1);
    assert_int_equal(cn.connect.props.maximum_packet_size, 4096);
    ep_mqttc_free(c);
}

static void test_publish_properties_and_expiry(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_user_prop ups[2] = {{EP_MQTT_STR("a"), EP_MQTT_STR("1")},
                                {EP_MQTT_STR("a"), EP_MQTT_STR("2")}};
    ep_mqtt_props pp = {0};
    EP_MQTT_PROPS_SET(&pp, EP_MQTT_PROP_CONTENT_TYPE);
    pp.content_type = EP_MQTT_STR("application/json");
    EP_MQTT_PROPS_SET(&pp, EP_MQTT_PROP_RESPONSE_TOPIC);
    pp.response_topic = EP_MQTT_STR("clients/me/resp");
    EP_MQTT_PROPS_SET(&pp, EP_MQTT_PROP_CORRELATION_DATA);
    pp.correlation_data = ep_mqtt_slice_make("\x00\x01\x02", 3);
    EP_MQTT_PROPS_SET(&pp, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    pp.message_expiry_interval = 10;
    pp.user = ups;
    pp.n_user = 2;
    ep_mqttc_pub p = {.topic = "props", .payload = "{}", .payload_len = 2, .qos = 1, .props = &pp};
    assert_int_equal(ep_mqttc_publish(c, &p, pub_done, (void *)(intptr_t)0), EP_EOK);
    /* Expires while offline. */
    EP_MQTT_PROPS_SET(&pp, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    pp.message_expiry_interval = 1;
    assert_int_equal(ep_mqttc_publish(c, &p, pub_done, (void *)(intptr_t)1), EP_EOK);
    /* Client-managed properties are refused. */
    ep_mqtt_props bad = {0};
    EP_MQTT_PROPS_SET(&bad, EP_MQTT_PROP_TOPIC_ALIAS);
    bad.topic_alias = 1;
    p.props = &bad;
    assert_int_equal(ep_mqttc_publish(c, &p, pub_done, (void *)(intptr_t)2), EP_EINVAL);
    ep_fakeclock_advance(&fc, 4000);
    establish(c, false, NULL);
    ep_mqtt_packet m = expect(EP_MQTT_PUBLISH);
    expect_nothing();
    assert_slice(m.publish.props.content_type, "application/json");
    assert_slice(m.publish.props.response_topic, "clients/me/resp");
    assert_int_equal(m.publish.props.correlation_data.len, 3);
    assert_int_equal(m.publish.props.message_expiry_interval, 6); /* 10 - 4 */
    assert_int_equal(m.publish.props.user_count, 2);
    size_t it = 0;
    ep_mqtt_user_prop u;
    assert_true(ep_mqtt_props_user_next(&m.publish.props, &it, &u));
    assert_true(ep_mqtt_props_user_next(&m.publish.props, &it, &u));
    assert_slice(u.value, "2");
    spin();
    assert_int_equal(R.ndone, 2);
    assert_int_equal(R.done_tag[0], 2);
    assert_int_equal(R.done_err[0], EP_EINVAL);
    assert_int_equal(R.done_tag[1], 1);
    assert_int_equal(R.done_err[1], EP_ETIMEDOUT);
    ep_mqttc_stats st;
    ep_mqttc_stats_get(c, &st);
    assert_int_equal(st.dropped_expired, 1);
    ep_mqttc_free(c);
}

static void test_server_disconnect_with_reference(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    establish(c, false, NULL);
    ep_mqtt_packet d;
    memset(&d, 0, sizeof(d));
    d.type = EP_MQTT_DISCONNECT;
    d.disconnect.rc = EP_MQTT_RC_USE_ANOTHER_SERVER;
    EP_MQTT_PROPS_SET(&d.disconnect.props, EP_MQTT_PROP_SERVER_REFERENCE);
    d.disconnect.props.server_reference = EP_MQTT_STR("other:1883");
    srv_send(&d);
    spin();
    assert_int_equal(R.disconnects, 1);
    assert_int_equal(R.last_disc.reason, EP_MQTT_RC_USE_ANOTHER_SERVER);
    assert_string_equal(R.server_ref, "other:1883");
    assert_true(R.last_disc.will_reconnect);
    /* Session taken over: no reconnect. */
    advance(100);
    establish(c, true, NULL);
    d.disconnect.rc = EP_MQTT_RC_SESSION_TAKEN_OVER;
    memset(&d.disconnect.props, 0, sizeof(d.disconnect.props));
    srv_send(&d);
    spin();
    assert_false(R.last_disc.will_reconnect);
    advance(100000);
    assert_int_equal(net.opens, 2);
    ep_mqttc_free(c);
}

static void test_connack_refused_is_final(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    assert_int_equal(ep_mqttc_connect(c), EP_EOK);
    spin();
    expect(EP_MQTT_CONNECT);
    ep_mqtt_packet ca;
    memset(&ca, 0, sizeof(ca));
    ca.type = EP_MQTT_CONNACK;
    ca.connack.rc = EP_MQTT_RC_NOT_AUTHORIZED;
    srv_send(&ca);
    spin();
    assert_int_equal(R.last_disc.err, EP_EPERM);
    assert_int_equal(R.last_disc.reason, EP_MQTT_RC_NOT_AUTHORIZED);
    assert_false(R.last_disc.will_reconnect);
    assert_false(R.last_disc.was_connected);
    /* Busy is retried. */
    assert_int_equal(ep_mqttc_connect(c), EP_EOK);
    spin();
    expect(EP_MQTT_CONNECT);
    ca.connack.rc = EP_MQTT_RC_SERVER_BUSY;
    srv_send(&ca);
    spin();
    assert_true(R.last_disc.will_reconnect);
    ep_mqttc_free(c);
}

static void test_connect_timeout(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.connect_timeout_ms = 3000;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    assert_int_equal(ep_mqttc_connect(c), EP_EOK);
    spin();
    expect(EP_MQTT_CONNECT);
    advance(2999);
    assert_int_equal(R.disconnects, 0);
    advance(1);
    assert_int_equal(R.disconnects, 1);
    assert_int_equal(R.last_disc.err, EP_ETIMEDOUT);
    ep_mqttc_free(c);
}

static void test_user_disconnect(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.session_expiry = 300;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    establish(c, false, NULL);
    publish(c, "t", "kept", 1, 0, EP_EOK);
    spin();
    expect(EP_MQTT_PUBLISH);
    assert_int_equal(ep_mqttc_disconnect(c, EP_MQTT_RC_DISCONNECT_WITH_WILL, EP_MQTTC_END_SESSION),
                     EP_EOK);
    assert_int_equal(ep_mqttc_disconnect(c, 0, 0), EP_ESTATE);
    spin();
    ep_mqtt_packet d = expect(EP_MQTT_DISCONNECT);
    assert_int_equal(d.disconnect.rc, EP_MQTT_RC_DISCONNECT_WITH_WILL);
    assert_true(EP_MQTT_PROPS_HAS(&d.disconnect.props, EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL));
    assert_int_equal(d.disconnect.props.session_expiry_interval, 0);
    assert_int_equal(R.disconnects, 0); /* waits for the server to close */
    srv_drop();
    spin();
    assert_int_equal(R.disconnects, 1);
    assert_int_equal(R.last_disc.err, EP_EOK);
    assert_false(R.last_disc.will_reconnect);
    advance(10000);
    assert_int_equal(net.opens, 1);
    /* The unacknowledged message is still there for the next connection. */
    assert_int_equal(R.ndone, 0);
    establish(c, true, NULL);
    ep_mqtt_packet p = expect(EP_MQTT_PUBLISH);
    assert_true(p.publish.dup);
    ep_mqttc_free(c);
    assert_int_equal(R.ndone, 1);
}

static void test_free_inside_callback(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    establish(c, false, NULL);
    publish(c, "t", "a", 1, 0, EP_EOK);
    publish(c, "t", "b", 2, 1, EP_EOK);
    spin();
    R.free_in_message = true;
    srv_publish(0, 0, false, "x", "bye", 0);
    srv_publish(0, 0, false, "x", "not delivered", 0);
    spin();
    assert_int_equal(R.messages, 1);
    assert_int_equal(R.ndone, 2);
    assert_int_equal(R.done_err[0], EP_ECLOSED);
    assert_all_done_once(2);
}

static void test_message_to_msg(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_user_prop up = {EP_MQTT_STR("k"), EP_MQTT_STR("v")};
    ep_mqtt_props pr = {0};
    EP_MQTT_PROPS_SET(&pr, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    pr.message_expiry_interval = 30;
    EP_MQTT_PROPS_SET(&pr, EP_MQTT_PROP_CONTENT_TYPE);
    pr.content_type = EP_MQTT_STR("text/plain");
    EP_MQTT_PROPS_SET(&pr, EP_MQTT_PROP_TOPIC_ALIAS);
    pr.topic_alias = 3;
    pr.user = &up;
    pr.n_user = 1;
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_mqtt_props_encode(&b, &pr), EP_EOK);
    /* Decode the block back the way the client sees it. */
    ep_mqtt_packet pk;
    memset(&pk, 0, sizeof(pk));
    pk.type = EP_MQTT_PUBLISH;
    pk.publish.qos = 1;
    pk.publish.packet_id = 1;
    pk.publish.topic = EP_MQTT_STR("m/t");
    pk.publish.payload = EP_MQTT_STR("body");
    pk.publish.props = pr;
    ep_buf enc;
    ep_buf_init(&enc, 0);
    assert_int_equal(ep_mqtt_packet_encode(&enc, &pk, 5, 0), EP_EOK);
    ep_mqtt_packet dec;
    assert_int_equal(ep_mqtt_packet_decode(ep_buf_head(&enc), ep_buf_used(&enc), 5, &dec, NULL),
                     EP_EOK);
    ep_mqttc_message m = {.topic = dec.publish.topic,
                          .payload = dec.publish.payload,
                          .props = &dec.publish.props,
                          .qos = 1,
                          .retain = true};
    ep_msg *msg = ep_mqttc_message_to_msg(c, &m);
    assert_non_null(msg);
    assert_string_equal(msg->topic, "m/t");
    assert_int_equal(msg->payload_len, 4);
    assert_int_equal(msg->qos, 1);
    assert_true(msg->retain);
    assert_true(msg->has_expiry);
    assert_int_equal(msg->expiry_interval, 30);
    assert_int_equal(msg->expiry_at_ms, fc.now + 30000);
    /* Forwardable block: content type + user property, no alias/expiry. */
    assert_int_equal(msg->props_len, 1 + 2 + 10 + 1 + 2 + 1 + 2 + 1);
    /* Forward it through publish_msg: the expiry is recomputed. */
    establish(c, false, NULL);
    advance(10000);
    assert_int_equal(ep_mqttc_publish_msg(c, msg, 1, false, pub_done, (void *)(intptr_t)0), EP_EOK);
    spin();
    ep_mqtt_packet fw = expect(EP_MQTT_PUBLISH);
    assert_int_equal(fw.publish.props.message_expiry_interval, 20);
    assert_slice(fw.publish.props.content_type, "text/plain");
    assert_int_equal(fw.publish.props.user_count, 1);
    ep_buf_fini(&b);
    ep_buf_fini(&enc);
    ep_mqttc_free(c);
}

static void test_options_validation(void **state)
{
    (void)state;
    ep_mqttc *c = NULL;
    ep_mqttc_options o = base_opts();
    o.version = 3;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    o = base_opts();
    o.version = EP_MQTT_V311;
    o.client_id = NULL; /* empty id needs Clean Session in 3.1.1 */
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    o.clean_start = true;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqttc_free(c);
    o = base_opts();
    o.version = EP_MQTT_V311;
    o.password = "x";
    o.password_len = 1;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    o = base_opts();
    o.will_topic = "a/+";
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    o = base_opts();
    o.reconnect_min_ms = 5000;
    o.reconnect_max_ms = 10;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    ep_mqttc_free(NULL);
}

/* The server may assign a client id; it is kept for reconnects. */
static void test_assigned_client_id(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.client_id = NULL;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_props ca = {0};
    EP_MQTT_PROPS_SET(&ca, EP_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER);
    ca.assigned_client_identifier = EP_MQTT_STR("srv-42");
    ep_mqtt_packet cn = establish(c, false, &ca);
    assert_int_equal(cn.connect.client_id.len, 0);
    assert_string_equal(ep_mqttc_client_id(c), "srv-42");
    srv_drop();
    spin();
    advance(100);
    assert_slice(expect(EP_MQTT_CONNECT).connect.client_id, "srv-42");
    ep_mqttc_free(c);
}

/* The password file is read at every attempt (a rotated token is picked
 * up); one trailing newline is removed; a missing file fails the attempt,
 * which is retried. */
static void test_password_file(void **state)
{
    (void)state;
    char path[] = "/tmp/ep-mqttc-pw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret\r\n", 8), 8);
    close(fd);
    ep_mqttc_options o = base_opts();
    o.username = "svc";
    o.password = "ignored";
    o.password_len = 7;
    o.password_file = path;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    ep_mqtt_packet cn = establish(c, false, NULL);
    assert_slice(cn.connect.username, "svc");
    assert_slice(cn.connect.password, "s3cret");
    /* Rotate the token, drop the connection: the new one is used. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "rotated", 7), 7);
    close(fd);
    srv_drop();
    spin();
    advance(100);
    assert_slice(expect(EP_MQTT_CONNECT).connect.password, "rotated");
    srv_connack(false, NULL);
    spin();
    /* Without the file the attempt fails before connecting. */
    unlink(path);
    srv_drop();
    spin();
    int opens = net.opens;
    advance(200); /* second quick loss in a row: 200 ms */
    assert_int_equal(net.opens, opens);
    assert_int_equal(R.last_disc.err, EP_ECONFIG);
    assert_true(R.last_disc.will_reconnect);
    ep_mqttc_free(c);
}

static void srv_raw(const void *p, size_t n) { assert_int_equal(write(net.fd, p, n), (ssize_t)n); }

/* Malformed or unexpected input from the server ends the connection with a
 * protocol error (and a v5 DISCONNECT saying why); random bytes never crash
 * the client. Run under ASan/UBSan this is a small fuzz pass. */
static void test_hostile_server_input(void **state)
{
    (void)state;
    ep_mqttc_options o = base_opts();
    o.maximum_packet_size = 1024;
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    static const struct {
        const char *what;
        const char *bytes;
        size_t n;
        ep_err err;
        ep_mqtt_rc rc;
    } cases[] = {
        {"type 0", "\x00\x00", 2, EP_EMALFORMED, EP_MQTT_RC_MALFORMED_PACKET},
        {"5-byte length", "\x30\xff\xff\xff\xff\x01", 6, EP_EMALFORMED,
         EP_MQTT_RC_MALFORMED_PACKET},
        {"over our maximum", "\x30\x80\x10", 3, EP_ETOOBIG, EP_MQTT_RC_PACKET_TOO_LARGE},
        {"bad UTF-8 topic", "\x30\x05\x00\x02\xc3\x28\x00", 7, EP_EUTF8,
         EP_MQTT_RC_MALFORMED_PACKET},
        {"second CONNACK", "\x20\x03\x00\x00\x00", 5, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR},
        {"SUBSCRIBE from server", "\x82\x06\x00\x01\x00\x00\x01\x61", 8, EP_EMALFORMED,
         EP_MQTT_RC_MALFORMED_PACKET},
        {"PINGREQ from server", "\xc0\x00", 2, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (i == 0)
            establish(c, false, NULL);
        else {
            advance(1000);
            expect(EP_MQTT_CONNECT);
            srv_connack(false, NULL);
            spin();
        }
        assert_true(ep_mqttc_is_connected(c));
        srv_raw(cases[i].bytes, cases[i].n);
        spin();
        if (ep_mqttc_is_connected(c))
            fail_msg("still connected after %s", cases[i].what);
        ep_mqtt_packet d;
        if (cases[i].err != EP_EOK && srv_next(&d) && d.type == EP_MQTT_DISCONNECT)
            assert_int_equal(d.disconnect.rc, cases[i].rc);
        if (R.last_disc.err != cases[i].err)
            fail_msg("%s: got %s", cases[i].what, ep_err_name(R.last_disc.err));
        assert_true(R.last_disc.will_reconnect);
    }
    /* Random bytes after CONNACK. */
    uint64_t rnd = 0x5eed;
    for (int round = 0; round < 300; round++) {
        if (!R.last_disc.will_reconnect) /* e.g. a random "session taken over" */
            assert_int_equal(ep_mqttc_connect(c), EP_EOK);
        advance(2000);
        ep_mqtt_packet p;
        while (srv_next(&p) && p.type != EP_MQTT_CONNECT) {
        }
        srv_connack(round % 3 == 0, NULL);
        spin();
        uint8_t junk[96];
        size_t n = 1 + ep_mqttc__rand(&rnd) % sizeof(junk);
        for (size_t k = 0; k < n; k++)
            junk[k] = (uint8_t)ep_mqttc__rand(&rnd);
        if (round % 2)
            junk[0] = (uint8_t)(0x30 | (junk[0] & 0x0F)); /* mostly PUBLISH */
        srv_raw(junk, n);
        spin();
        publish(c, "still/works", "x", (uint8_t)(round % 3), 0, EP_EOK);
        spin();
        srv_drop();
        spin();
        while (srv_next(&p)) {
        }
    }
    ep_mqttc_free(c);
}

/* ---- SCRAM-SHA-256 enhanced authentication ---------------------------- */

/* The server side is the broker's own SCRAM implementation, with one user
 * "dev" whose password is "s3cret". */
static ep_passwd_entry scram_user;

static ep_err scram_lookup(void *ud, const char *user, size_t len, ep_scram_cred *out)
{
    (void)ud;
    if (len != 3 || memcmp(user, "dev", 3) != 0)
        return EP_ENOTFOUND;
    out->iterations = scram_user.iterations;
    memcpy(out->salt, scram_user.salt, scram_user.salt_len);
    out->salt_len = scram_user.salt_len;
    memcpy(out->stored_key, scram_user.stored_key, 32);
    memcpy(out->server_key, scram_user.server_key, 32);
    return EP_EOK;
}

static bool is_scram(const ep_mqtt_props *pr)
{
    return EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_AUTHENTICATION_METHOD) &&
           pr->authentication_method.len == 13 &&
           memcmp(pr->authentication_method.p, "SCRAM-SHA-256", 13) == 0 &&
           EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_AUTHENTICATION_DATA);
}

static void srv_auth(ep_mqtt_rc rc, const uint8_t *data, size_t len)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_AUTH;
    p.auth.rc = rc;
    EP_MQTT_PROPS_SET(&p.auth.props, EP_MQTT_PROP_AUTHENTICATION_METHOD);
    p.auth.props.authentication_method = ep_mqtt_slice_make("SCRAM-SHA-256", 13);
    EP_MQTT_PROPS_SET(&p.auth.props, EP_MQTT_PROP_AUTHENTICATION_DATA);
    p.auth.props.authentication_data = ep_mqtt_slice_make(data, len);
    srv_send(&p);
}

/* Plays the server through one exchange started by `first` (CONNECT or
 * AUTH 0x19 properties). With tamper, the server's final message carries a
 * wrong signature. Returns the step result for the client-final; *fin and
 * *fin_len are the server-final to send. */
static ep_scram_result srv_scram(ep_scram_server *srv, void **st, const ep_mqtt_props *first,
                                 const uint8_t **fin, size_t *fin_len)
{
    assert_true(is_scram(first));
    const uint8_t *out;
    size_t n;
    assert_int_equal(ep_scram_server_step(srv, st, "c", first->authentication_data.p,
                                          first->authentication_data.len, &out, &n),
                     EP_SCRAM_CONTINUE);
    srv_auth(EP_MQTT_RC_CONTINUE_AUTHENTICATION, out, n);
    spin();
    ep_mqtt_packet a = expect(EP_MQTT_AUTH);
    assert_int_equal(a.auth.rc, EP_MQTT_RC_CONTINUE_AUTHENTICATION);
    assert_true(is_scram(&a.auth.props));
    return ep_scram_server_step(srv, st, "c", a.auth.props.authentication_data.p,
                                a.auth.props.authentication_data.len, fin, fin_len);
}

static ep_mqttc_options scram_opts(const char *password)
{
    ep_mqttc_options o = base_opts();
    o.username = "dev";
    o.password = password;
    o.password_len = strlen(password);
    o.auth_method = EP_MQTTC_AUTH_SCRAM_SHA_256;
    return o;
}

static void test_scram_connect_and_reauth(void **state)
{
    (void)state;
    assert_int_equal(
        ep_passwd_entry_make("dev", "s3cret", 6, EP_PASSWD_SCRAM_SHA256, 4096, &scram_user),
        EP_EOK);
    ep_scram_server *srv;
    assert_int_equal(ep_scram_server_new(&srv, scram_lookup, NULL), EP_EOK);
    ep_mqttc_options o = scram_opts("s3cret");
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    assert_int_equal(ep_mqttc_reauthenticate(c), EP_ESTATE); /* not connected */
    assert_int_equal(ep_mqttc_connect(c), EP_EOK);
    spin();
    ep_mqtt_packet cn = expect(EP_MQTT_CONNECT);
    assert_false(cn.connect.has_password); /* only a proof goes out */
    assert_true(cn.connect.has_username);
    void *st = NULL;
    const uint8_t *fin;
    size_t fin_len;
    assert_int_equal(srv_scram(srv, &st, &cn.connect.props, &fin, &fin_len), EP_SCRAM_SUCCESS);
    ep_mqtt_props ca;
    memset(&ca, 0, sizeof(ca));
    EP_MQTT_PROPS_SET(&ca, EP_MQTT_PROP_AUTHENTICATION_METHOD);
    ca.authentication_method = ep_mqtt_slice_make("SCRAM-SHA-256", 13);
    EP_MQTT_PROPS_SET(&ca, EP_MQTT_PROP_AUTHENTICATION_DATA);
    ca.authentication_data = ep_mqtt_slice_make(fin, fin_len);
    srv_connack(false, &ca);
    spin();
    assert_true(ep_mqttc_is_connected(c));
    assert_int_equal(R.connects, 1);
    ep_scram_server_done(srv, st);

    /* Re-authentication: AUTH 0x19, 0x18 both ways, AUTH 0x00. */
    assert_int_equal(ep_mqttc_reauthenticate(c), EP_EOK);
    assert_int_equal(ep_mqttc_reauthenticate(c), EP_ESTATE); /* one at a time */
    spin();
    ep_mqtt_packet ra = expect(EP_MQTT_AUTH);
    assert_int_equal(ra.auth.rc, EP_MQTT_RC_REAUTHENTICATE);
    st = NULL;
    assert_int_equal(srv_scram(srv, &st, &ra.auth.props, &fin, &fin_len), EP_SCRAM_SUCCESS);
    srv_auth(EP_MQTT_RC_SUCCESS, fin, fin_len);
    spin();
    ep_scram_server_done(srv, st);
    ep_mqttc_stats stats;
    ep_mqttc_stats_get(c, &stats);
    assert_int_equal(stats.reauths, 1);
    assert_true(ep_mqttc_is_connected(c));

    /* A server whose final signature is wrong is dropped for good. */
    assert_int_equal(ep_mqttc_reauthenticate(c), EP_EOK);
    spin();
    ra = expect(EP_MQTT_AUTH);
    st = NULL;
    assert_int_equal(srv_scram(srv, &st, &ra.auth.props, &fin, &fin_len), EP_SCRAM_SUCCESS);
    static const uint8_t forged[] = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    srv_auth(EP_MQTT_RC_SUCCESS, forged, sizeof(forged) - 1);
    spin();
    ep_scram_server_done(srv, st);
    assert_false(ep_mqttc_is_connected(c));
    assert_int_equal(R.last_disc.err, EP_ESECURITY);
    assert_false(R.last_disc.will_reconnect);
    ep_mqttc_free(c);
    ep_scram_server_free(srv);
}

static void test_scram_wrong_password(void **state)
{
    (void)state;
    assert_int_equal(
        ep_passwd_entry_make("dev", "s3cret", 6, EP_PASSWD_SCRAM_SHA256, 4096, &scram_user),
        EP_EOK);
    ep_scram_server *srv;
    assert_int_equal(ep_scram_server_new(&srv, scram_lookup, NULL), EP_EOK);
    ep_mqttc_options o = scram_opts("guess");
    ep_mqttc *c;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EOK);
    assert_int_equal(ep_mqttc_connect(c), EP_EOK);
    spin();
    ep_mqtt_packet cn = expect(EP_MQTT_CONNECT);
    void *st = NULL;
    const uint8_t *fin;
    size_t fin_len;
    assert_int_equal(srv_scram(srv, &st, &cn.connect.props, &fin, &fin_len), EP_SCRAM_FAIL);
    ep_scram_server_done(srv, st);
    ep_mqtt_packet ca;
    memset(&ca, 0, sizeof(ca));
    ca.type = EP_MQTT_CONNACK;
    ca.connack.rc = EP_MQTT_RC_NOT_AUTHORIZED;
    srv_send(&ca);
    spin();
    assert_int_equal(R.last_disc.err, EP_EPERM);
    assert_int_equal(R.last_disc.reason, EP_MQTT_RC_NOT_AUTHORIZED);
    assert_false(R.last_disc.will_reconnect); /* a wrong password is final */
    ep_mqttc_free(c);
    ep_scram_server_free(srv);
}

static void test_auth_and_tls_option_checks(void **state)
{
    (void)state;
    ep_mqttc *c = NULL;
    ep_mqttc_options o = scram_opts("pw");
    o.version = EP_MQTT_V311; /* enhanced auth is MQTT 5 */
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    o = scram_opts("pw");
    o.auth_method = "SCRAM-SHA-1";
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    o = scram_opts("pw");
    o.password = NULL;
    o.password_len = 0;
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    o = base_opts();
    o.tls.enable = true; /* with a custom transport */
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    o.transport = NULL;
    o.tls.key_file = "k.pem"; /* key without certificate */
    assert_int_equal(ep_mqttc_new(&c, loop, &o), EP_EINVAL);
    o.tls.key_file = NULL;
    o.tls.ca_file = "/nonexistent/ca.pem";
    char why[256];
    assert_int_equal(ep_mqttc_new_why(&c, loop, &o, why, sizeof(why)), EP_ECONFIG);
    assert_non_null(strstr(why, "/nonexistent/ca.pem"));
    assert_null(c);
}

int main(void)
{
    ep_log_set_level(EP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_qos1_out_of_order_acks_no_head_of_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_qos2_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_queue_drop_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_queue_refuse_new_and_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_resends_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_without_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_ping_and_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topic_alias_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_alias_without_server_permission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_manual_ack_any_order_and_qos2_dedupe, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stale_token_after_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_maximum_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_topic_alias, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_maximum_packet_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_queued_then_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v311_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_will_and_connect_properties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_properties_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_disconnect_with_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connack_refused_is_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_to_msg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assigned_client_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_server_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scram_connect_and_reauth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scram_wrong_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_and_tls_option_checks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
