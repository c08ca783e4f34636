/* auth_test.c - MQTT 5 enhanced authentication through the broker's AUTH
 * hook: a challenge/response method registered in-process, driven by a
 * blocking raw client built on the project's codec. Covers success after
 * one AUTH round, failure (CONNACK 0x87), an unknown method (CONNACK 0x8C),
 * and re-authentication of a connected client (AUTH 0x19 -> AUTH 0x00, and
 * a failed re-authentication -> DISCONNECT 0x87). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "svc/broker/broker.h"
#include "codec/mqtt/packet.h"

/* The method: "hello" -> challenge "nonce-42"; "nonce-42:secret" -> success
 * with "welcome"; anything else fails. */
static ep_broker_auth_result test_step(void *ud, void **state, const char *client_id,
                                       const uint8_t *in, size_t len, const uint8_t **out,
                                       size_t *out_len)
{
    (void)ud;
    (void)client_id;
    if (*state == NULL) {
        if (len == 5 && memcmp(in, "hello", 5) == 0) {
            *state = malloc(1);
            *out = (const uint8_t *)"nonce-42";
            *out_len = 8;
            return EP_BROKER_AUTH_CONTINUE;
        }
        return EP_BROKER_AUTH_FAIL;
    }
    if (len == 15 && memcmp(in, "nonce-42:secret", 15) == 0) {
        *out = (const uint8_t *)"welcome";
        *out_len = 7;
        return EP_BROKER_AUTH_SUCCESS;
    }
    return EP_BROKER_AUTH_FAIL;
}

static void test_done(void *ud, void *state)
{
    (void)ud;
    free(state);
}

static ep_broker *broker;
static uint16_t port;

static int setup(void **st)
{
    (void)st;
    ep_broker_config cfg;
    ep_broker_config_defaults(&cfg);
    cfg.listeners[0].addr.port = 0;
    cfg.sys_interval_s = 0;
    cfg.workers = 2;
    cfg.auth_methods[0] = (ep_broker_auth_method){"TEST-CHALLENGE", test_step, test_done, NULL};
    cfg.n_auth_methods = 1;
    if (ep_broker_new(&broker, &cfg) || ep_broker_start(broker))
        return -1;
    port = ep_broker_listener_port(broker, 0);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ep_broker_stop(broker);
    ep_broker_wait(broker);
    ep_broker_free(broker);
    return 0;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {5, 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_pkt(int fd, const ep_mqtt_packet *p)
{
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_mqtt_packet_encode(&b, p, EP_MQTT_V5, 0), EP_EOK);
    assert_int_equal(write(fd, ep_buf_head(&b), ep_buf_used(&b)), (ssize_t)ep_buf_used(&b));
    ep_buf_fini(&b);
}

static uint8_t rx[4096];

/* Reads one packet into rx and decodes it; returns false on EOF. */
static bool recv_pkt(int fd, ep_mqtt_packet *p)
{
    size_t have = 0, hl, total;
    for (;;) {
        ep_err err = ep_mqtt_packet_frame(rx, have, sizeof(rx), &hl, &total);
        if (err == EP_EOK)
            break;
        assert_int_equal(err, EP_ENEEDMORE);
        ssize_t n = read(fd, rx + have, sizeof(rx) - have);
        if (n <= 0)
            return false;
        have += (size_t)n;
    }
    assert_int_equal(ep_mqtt_packet_decode(rx, total, EP_MQTT_V5, p, NULL), EP_EOK);
    return true;
}

static void send_connect(int fd, const char *method, const char *data)
{
    ep_mqtt_packet p = {.type = EP_MQTT_CONNECT};
    p.connect.protocol_version = EP_MQTT_V5;
    p.connect.clean_start = true;
    p.connect.client_id = ep_mqtt_slice_make("auth-client", 11);
    p.connect.props.authentication_method = ep_mqtt_slice_make(method, strlen(method));
    EP_MQTT_PROPS_SET(&p.connect.props, EP_MQTT_PROP_AUTHENTICATION_METHOD);
    p.connect.props.authentication_data = ep_mqtt_slice_make(data, strlen(data));
    EP_MQTT_PROPS_SET(&p.connect.props, EP_MQTT_PROP_AUTHENTICATION_DATA);
    send_pkt(fd, &p);
}

static void send_auth(int fd, ep_mqtt_rc rc, const char *data)
{
    ep_mqtt_packet p = {.type = EP_MQTT_AUTH};
    p.auth.rc = rc;
    p.auth.props.authentication_method = EP_MQTT_STR("TEST-CHALLENGE");
    EP_MQTT_PROPS_SET(&p.auth.props, EP_MQTT_PROP_AUTHENTICATION_METHOD);
    p.auth.props.authentication_data = ep_mqtt_slice_make(data, strlen(data));
    EP_MQTT_PROPS_SET(&p.auth.props, EP_MQTT_PROP_AUTHENTICATION_DATA);
    send_pkt(fd, &p);
}

static int connect_authenticated(void)
{
    ep_mqtt_packet p;
    int fd = dial();
    send_connect(fd, "TEST-CHALLENGE", "hello");
    assert_true(recv_pkt(fd, &p));
    assert_int_equal(p.type, EP_MQTT_AUTH);
    assert_int_equal(p.auth.rc, EP_MQTT_RC_CONTINUE_AUTHENTICATION);
    assert_true(ep_mqtt_slice_eq(p.auth.props.authentication_data, EP_MQTT_STR("nonce-42")));
    send_auth(fd, EP_MQTT_RC_CONTINUE_AUTHENTICATION, "nonce-42:secret");
    assert_true(recv_pkt(fd, &p));
    assert_int_equal(p.type, EP_MQTT_CONNACK);
    assert_int_equal(p.connack.rc, EP_MQTT_RC_SUCCESS);
    assert_true(
        ep_mqtt_slice_eq(p.connack.props.authentication_method, EP_MQTT_STR("TEST-CHALLENGE")));
    assert_true(ep_mqtt_slice_eq(p.connack.props.authentication_data, EP_MQTT_STR("welcome")));
    return fd;
}

static void test_challenge_success(void **st)
{
    (void)st;
    int fd = connect_authenticated();
    ep_mqtt_packet p = {.type = EP_MQTT_PINGREQ};
    send_pkt(fd, &p);
    assert_true(recv_pkt(fd, &p));
    assert_int_equal(p.type, EP_MQTT_PINGRESP);
    close(fd);
}

static void test_wrong_response_refused(void **st)
{
    (void)st;
    ep_mqtt_packet p;
    int fd = dial();
    send_connect(fd, "TEST-CHALLENGE", "hello");
    assert_true(recv_pkt(fd, &p));
    assert_int_equal(p.type, EP_MQTT_AUTH);
    send_auth(fd, EP_MQTT_RC_CONTINUE_AUTHENTICATION, "nonce-42:wrong");
    assert_true(recv_pkt(fd, &p));
    assert_int_equal(p.type, EP_MQTT_CONNACK);
    assert_int_equal(p.connack.rc, EP_MQTT_RC_NOT_AUTHORIZED);
    assert_false(recv_pkt(fd, &p)); /* then closed */
    close(fd);
}

static void test_unknown_method(void **st)
{
    (void)st;
    ep_mqtt_packet p;
    int fd = dial();
    send_connect(fd, "SCRAM-SHA-1", "x");
    assert_true(recv_pkt(fd, &p));
    assert_int_equal(p.type, EP_MQTT_CONNACK);
    assert_int_equal(p.connack.rc, EP_MQTT_RC_BAD_AUTHENTICATION_METHOD);
    close(fd);
}

static void test_reauthentication(void **st)
{
    (void)st;
    ep_mqtt_packet p;
    int fd = connect_authenticated();
    send_auth(fd, EP_MQTT_RC_REAUTHENTICATE, "hello");
    assert_true(recv_pkt(fd, &p));
    assert_int_equal(p.type, EP_MQTT_AUTH);
    assert_int_equal(p.auth.rc, EP_MQTT_RC_CONTINUE_AUTHENTICATION);
    send_auth(fd, EP_MQTT_RC_CONTINUE_AUTHENTICATION, "nonce-42:secret");
    assert_true(recv_pkt(fd, &p));
    assert_int_equal(p.type, EP_MQTT_AUTH);
    assert_int_equal(p.auth.rc, EP_MQTT_RC_SUCCESS);
    /* A failed re-authentication disconnects with 0x87. */
    send_auth(fd, EP_MQTT_RC_REAUTHENTICATE, "bogus");
    assert_true(recv_pkt(fd, &p));
    assert_int_equal(p.type, EP_MQTT_DISCONNECT);
    assert_int_equal(p.disconnect.rc, EP_MQTT_RC_NOT_AUTHORIZED);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge_success),
        cmocka_unit_test(test_wrong_response_refused),
        cmocka_unit_test(test_unknown_method),
        cmocka_unit_test(test_reauthentication),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
