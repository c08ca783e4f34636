/* auth_test.c - MQTT 5 enhanced authentication through the broker's AUTH
 * hook: a challenge/response method registered in-process, driven by the
 * blocking raw client of tests/lib/mqtt_raw_client.h. Covers success after
 * one AUTH round, failure (CONNACK 0x87), an unknown method (CONNACK 0x8C),
 * and re-authentication of a connected client (AUTH 0x19 -> AUTH 0x00, and
 * a failed re-authentication -> DISCONNECT 0x87). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/mqtt/packet.h"
#include "mqtt_raw_client.h"
#include "svc/broker/broker.h"

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

static void send_connect(int fd, const char *method, const char *data)
{
    ep_test_mqtt_send_connect(fd, "auth-client", method, data, strlen(data));
}

static void send_auth(int fd, ep_mqtt_rc rc, const char *data)
{
    ep_test_mqtt_send_auth(fd, rc, "TEST-CHALLENGE", data, strlen(data));
}

static int connect_authenticated(void)
{
    ep_mqtt_packet p;
    int fd = ep_test_mqtt_dial(port);
    send_connect(fd, "TEST-CHALLENGE", "hello");
    assert_true(ep_test_mqtt_recv(fd, &p));
    assert_int_equal(p.type, EP_MQTT_AUTH);
    assert_int_equal(p.auth.rc, EP_MQTT_RC_CONTINUE_AUTHENTICATION);
    assert_true(ep_mqtt_slice_eq(p.auth.props.authentication_data, EP_MQTT_STR("nonce-42")));
    send_auth(fd, EP_MQTT_RC_CONTINUE_AUTHENTICATION, "nonce-42:secret");
    assert_true(ep_test_mqtt_recv(fd, &p));
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
    ep_test_mqtt_send(fd, &p);
    assert_true(ep_test_mqtt_recv(fd, &p));
    assert_int_equal(p.type, EP_MQTT_PINGRESP);
    close(fd);
}

static void test_wrong_response_refused(void **st)
{
    (void)st;
    ep_mqtt_packet p;
    int fd = ep_test_mqtt_dial(port);
    send_connect(fd, "TEST-CHALLENGE", "hello");
    assert_true(ep_test_mqtt_recv(fd, &p));
    assert_int_equal(p.type, EP_MQTT_AUTH);
    send_auth(fd, EP_MQTT_RC_CONTINUE_AUTHENTICATION, "nonce-42:wrong");
    assert_true(ep_test_mqtt_recv(fd, &p));
    assert_int_equal(p.type, EP_MQTT_CONNACK);
    assert_int_equal(p.connack.rc, EP_MQTT_RC_NOT_AUTHORIZED);
    assert_false(ep_test_mqtt_recv(fd, &p)); /* then closed */
    close(fd);
}

static void test_unknown_method(void **st)
{
    (void)st;
    ep_mqtt_packet p;
    int fd = ep_test_mqtt_dial(port);
    send_connect(fd, "SCRAM-SHA-1", "x");
    assert_true(ep_test_mqtt_recv(fd, &p));
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
    assert_true(ep_test_mqtt_recv(fd, &p));
    assert_int_equal(p.type, EP_MQTT_AUTH);
    assert_int_equal(p.auth.rc, EP_MQTT_RC_CONTINUE_AUTHENTICATION);
    send_auth(fd, EP_MQTT_RC_CONTINUE_AUTHENTICATION, "nonce-42:secret");
    assert_true(ep_test_mqtt_recv(fd, &p));
    assert_int_equal(p.type, EP_MQTT_AUTH);
    assert_int_equal(p.auth.rc, EP_MQTT_RC_SUCCESS);
    /* A failed re-authentication disconnects with 0x87. */
    send_auth(fd, EP_MQTT_RC_REAUTHENTICATE, "bogus");
    assert_true(ep_test_mqtt_recv(fd, &p));
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
