/*
 * auth_scram_broker.c - SCRAM-SHA-256 from src/svc/auth plugged into the
 * real broker through its enhanced-authentication hook
 * (ep_broker_auth_method), driven over TCP by the raw MQTT 5 client of
 * tests/lib/mqtt_raw_client.h with the SCRAM client of the same module.
 * Covers: a full exchange with the server signature checked by the client,
 * a wrong password and an unknown user (CONNACK 0x87), re-authentication
 * with AUTH 0x19 (success, then a failure that disconnects with 0x87), and
 * a new password taking effect after the password file is rewritten and
 * reloaded.
 *
 * The adapter below (scram_step/scram_done) is the glue the broker needs.
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

#include "codec/mqtt/packet.h"
#include "mqtt_raw_client.h"
#include "svc/auth/passwd.h"
#include "svc/auth/scram.h"
#include "svc/broker/broker.h"

static ep_broker_auth_result scram_step(void *ud, void **state, const char *client_id,
                                        const uint8_t *in, size_t in_len, const uint8_t **out,
                                        size_t *out_len)
{
    switch (ep_scram_server_step(ud, state, client_id, in, in_len, out, out_len)) {
    case EP_SCRAM_SUCCESS:
        return EP_BROKER_AUTH_SUCCESS;
    case EP_SCRAM_CONTINUE:
        return EP_BROKER_AUTH_CONTINUE;
    default:
        return EP_BROKER_AUTH_FAIL;
    }
}

static void scram_done(void *ud, void *state) { ep_scram_server_done(ud, state); }

static char pw_path[64];
static ep_passwd_file *pwf;
static ep_scram_server *scram;
static ep_broker *broker;
static uint16_t port;

static void set_password(const char *user, const char *pass)
{
    ep_passwd_entry e;
    ep_cfg_errs errs = {0};
    assert_int_equal(ep_passwd_entry_make(user, pass, strlen(pass), EP_PASSWD_SCRAM_SHA256, 0, &e),
                     EP_EOK);
    assert_int_equal(ep_passwd_file_update(pw_path, user, &e, &errs), EP_EOK);
    ep_cfg_errs_fini(&errs);
}

static int setup(void **st)
{
    (void)st;
    snprintf(pw_path, sizeof(pw_path), "/tmp/ep_auth_integ.%ld.pw", (long)getpid());
    unlink(pw_path);
    set_password("sensor-1", "correct horse");
    set_password("operator", "battery staple");
    ep_cfg_errs errs = {0};
    if (ep_passwd_file_open(pw_path, &pwf, &errs) != EP_EOK ||
        ep_scram_server_new_passwd(&scram, pwf) != EP_EOK)
        return -1;
    ep_broker_config cfg;
    ep_broker_config_defaults(&cfg);
    cfg.listeners[0].addr.port = 0;
    cfg.sys_interval_s = 0;
    cfg.workers = 2;
    cfg.auth_methods[0] = (ep_broker_auth_method){EP_SCRAM_METHOD, scram_step, scram_done, scram};
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
    ep_scram_server_free(scram);
    ep_passwd_file_free(pwf);
    unlink(pw_path);
    return 0;
}

/* Runs SCRAM over CONNECT (fd < 0: a new connection) or over AUTH 0x19
 * (re-authentication on fd). Returns the connection; *final_rc receives
 * the CONNACK/AUTH reason code, or the DISCONNECT reason code. */
static int scram_login(int fd, const char *user, const char *pass, ep_mqtt_rc *final_rc,
                       ep_mqtt_type *final_type)
{
    ep_scram_client *c = NULL;
    assert_int_equal(ep_scram_client_new(&c, user, pass, strlen(pass)), EP_EOK);
    const uint8_t *m;
    size_t mn;
    ep_scram_client_first(c, &m, &mn);
    bool reauth = fd >= 0;
    if (!reauth) {
        fd = ep_test_mqtt_dial(port);
        ep_test_mqtt_send_connect(fd, "scram-client", EP_SCRAM_METHOD, m, mn);
    } else {
        ep_test_mqtt_send_auth(fd, EP_MQTT_RC_REAUTHENTICATE, EP_SCRAM_METHOD, m, mn);
    }
    ep_mqtt_packet p;
    assert_true(ep_test_mqtt_recv(fd, &p));
    assert_int_equal(p.type, EP_MQTT_AUTH);
    assert_int_equal(p.auth.rc, EP_MQTT_RC_CONTINUE_AUTHENTICATION);
    assert_int_equal(ep_scram_client_final(c, p.auth.props.authentication_data.p,
                                           p.auth.props.authentication_data.len, &m, &mn),
                     EP_EOK);
    ep_test_mqtt_send_auth(fd, EP_MQTT_RC_CONTINUE_AUTHENTICATION, EP_SCRAM_METHOD, m, mn);
    assert_true(ep_test_mqtt_recv(fd, &p));
    *final_type = p.type;
    if (p.type == EP_MQTT_CONNACK) {
        *final_rc = p.connack.rc;
        if (p.connack.rc == EP_MQTT_RC_SUCCESS)
            assert_int_equal(ep_scram_client_verify(c, p.connack.props.authentication_data.p,
                                                    p.connack.props.authentication_data.len),
                             EP_EOK);
    } else if (p.type == EP_MQTT_AUTH) {
        *final_rc = p.auth.rc;
        if (p.auth.rc == EP_MQTT_RC_SUCCESS)
            assert_int_equal(ep_scram_client_verify(c, p.auth.props.authentication_data.p,
                                                    p.auth.props.authentication_data.len),
                             EP_EOK);
    } else {
        assert_int_equal(p.type, EP_MQTT_DISCONNECT);
        *final_rc = p.disconnect.rc;
    }
    ep_scram_client_free(c);
    return fd;
}

static void test_login(void **st)
{
    (void)st;
    ep_mqtt_rc rc;
    ep_mqtt_type t;
    int fd = scram_login(-1, "sensor-1", "correct horse", &rc, &t);
    assert_int_equal(t, EP_MQTT_CONNACK);
    assert_int_equal(rc, EP_MQTT_RC_SUCCESS);
    ep_mqtt_packet p = {.type = EP_MQTT_PINGREQ};
    ep_test_mqtt_send(fd, &p);
    assert_true(ep_test_mqtt_recv(fd, &p));
    assert_int_equal(p.type, EP_MQTT_PINGRESP);
    close(fd);
}

static void test_refused(void **st)
{
    (void)st;
    ep_mqtt_rc rc;
    ep_mqtt_type t;
    ep_mqtt_packet p;
    int fd = scram_login(-1, "sensor-1", "wrong horse", &rc, &t);
    assert_int_equal(t, EP_MQTT_CONNACK);
    assert_int_equal(rc, EP_MQTT_RC_NOT_AUTHORIZED);
    assert_false(ep_test_mqtt_recv(fd, &p));
    close(fd);
    fd = scram_login(-1, "nobody", "correct horse", &rc, &t);
    assert_int_equal(t, EP_MQTT_CONNACK);
    assert_int_equal(rc, EP_MQTT_RC_NOT_AUTHORIZED);
    close(fd);
}

static void test_reauth(void **st)
{
    (void)st;
    ep_mqtt_rc rc;
    ep_mqtt_type t;
    int fd = scram_login(-1, "operator", "battery staple", &rc, &t);
    assert_int_equal(rc, EP_MQTT_RC_SUCCESS);
    scram_login(fd, "operator", "battery staple", &rc, &t);
    assert_int_equal(t, EP_MQTT_AUTH);
    assert_int_equal(rc, EP_MQTT_RC_SUCCESS);
    scram_login(fd, "operator", "staple battery", &rc, &t);
    assert_int_equal(t, EP_MQTT_DISCONNECT);
    assert_int_equal(rc, EP_MQTT_RC_NOT_AUTHORIZED);
    close(fd);
}

static void test_password_change_reload(void **st)
{
    (void)st;
    ep_mqtt_rc rc;
    ep_mqtt_type t;
    set_password("sensor-1", "new secret");
    ep_cfg_errs errs = {0};
    bool changed = false;
    assert_int_equal(ep_passwd_file_reload(pwf, false, &changed, &errs), EP_EOK);
    assert_true(changed);
    int fd = scram_login(-1, "sensor-1", "correct horse", &rc, &t);
    assert_int_equal(rc, EP_MQTT_RC_NOT_AUTHORIZED);
    close(fd);
    fd = scram_login(-1, "sensor-1", "new secret", &rc, &t);
    assert_int_equal(rc, EP_MQTT_RC_SUCCESS);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_reauth),
        cmocka_unit_test(test_password_change_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
