/* env_test.c - ep_mqttc_options_from_env: required variables, defaults
 * (TLS on), malformed values, the TLS and SCRAM settings, and service
 * account tokens reported as unsupported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "svc/mqttc/mqttc_int.h"

static const char *const all_vars[] = {
    "AIO_BROKER_HOSTNAME",       "AIO_BROKER_TCP_PORT",
    "AIO_MQTT_USE_TLS",          "AIO_TLS_CA_FILE",
    "AIO_MQTT_CLEAN_START",      "AIO_MQTT_KEEP_ALIVE",
    "AIO_MQTT_CLIENT_ID",        "AIO_MQTT_SESSION_EXPIRY",
    "AIO_MQTT_USERNAME",         "AIO_MQTT_PASSWORD_FILE",
    "AIO_TLS_CERT_FILE",         "AIO_TLS_KEY_FILE",
    "AIO_TLS_KEY_PASSWORD_FILE", "AIO_SAT_FILE",
    "AIO_MQTT_AUTH_METHOD",
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
        unsetenv(all_vars[i]);
    return 0;
}

static void test_required(void **state)
{
    (void)state;
    ep_mqttc_options o = {0};
    char why[200];
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_ECONFIG);
    assert_non_null(strstr(why, "AIO_BROKER_HOSTNAME"));
    assert_null(o.host); /* untouched on failure */
    setenv("AIO_BROKER_HOSTNAME", "broker.local", 1);
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_ECONFIG);
    assert_non_null(strstr(why, "AIO_MQTT_CLIENT_ID"));
}

static void test_defaults_tls_on(void **state)
{
    (void)state;
    setenv("AIO_BROKER_HOSTNAME", "broker.local", 1);
    setenv("AIO_MQTT_CLIENT_ID", "conn-1", 1);
    ep_mqttc_options o = {0};
    char why[200];
    /* TLS defaults to on, verified against the system store. */
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EOK);
    assert_string_equal(why, "");
    assert_true(o.tls.enable);
    assert_null(o.tls.ca_file);
    assert_null(o.tls.cert_file);
    assert_false(o.tls.insecure);
    assert_null(o.auth_method);
    assert_string_equal(o.host, "broker.local");
    assert_string_equal(o.client_id, "conn-1");
    assert_int_equal(o.port, 8883);
    assert_int_equal(o.keepalive, 60);
    assert_int_equal(o.session_expiry, 3600);
    assert_false(o.clean_start);
    assert_int_equal(o.version, 5);
    setenv("AIO_MQTT_USE_TLS", "false", 1);
    memset(&o, 0, sizeof(o));
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EOK);
    assert_false(o.tls.enable);
}

static void test_tls_files(void **state)
{
    (void)state;
    setenv("AIO_BROKER_HOSTNAME", "h", 1);
    setenv("AIO_MQTT_CLIENT_ID", "c", 1);
    setenv("AIO_TLS_CA_FILE", "/ca.pem", 1);
    setenv("AIO_TLS_CERT_FILE", "/c.pem", 1);
    setenv("AIO_TLS_KEY_FILE", "/c.key", 1);
    setenv("AIO_TLS_KEY_PASSWORD_FILE", "/c.pw", 1);
    ep_mqttc_options o = {0};
    char why[200];
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EOK);
    assert_true(o.tls.enable);
    assert_string_equal(o.tls.ca_file, "/ca.pem");
    assert_string_equal(o.tls.cert_file, "/c.pem");
    assert_string_equal(o.tls.key_file, "/c.key");
    assert_string_equal(o.tls.key_password_file, "/c.pw");
    /* a key without its certificate */
    unsetenv("AIO_TLS_CERT_FILE");
    memset(&o, 0, sizeof(o));
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EINVAL);
    assert_non_null(strstr(why, "AIO_TLS_CERT_FILE"));
    assert_null(o.host); /* untouched on failure */
    /* TLS files while TLS is off are a contradiction, not ignored */
    setenv("AIO_TLS_CERT_FILE", "/c.pem", 1);
    setenv("AIO_MQTT_USE_TLS", "false", 1);
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EINVAL);
    assert_non_null(strstr(why, "AIO_MQTT_USE_TLS is false"));
}

static void test_auth_method(void **state)
{
    (void)state;
    setenv("AIO_BROKER_HOSTNAME", "h", 1);
    setenv("AIO_MQTT_CLIENT_ID", "c", 1);
    setenv("AIO_MQTT_AUTH_METHOD", "SCRAM-SHA-256", 1);
    ep_mqttc_options o = {0};
    char why[200];
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EINVAL);
    assert_non_null(strstr(why, "AIO_MQTT_USERNAME"));
    setenv("AIO_MQTT_USERNAME", "u", 1);
    setenv("AIO_MQTT_PASSWORD_FILE", "/pw", 1);
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EOK);
    assert_string_equal(o.auth_method, "SCRAM-SHA-256");
    setenv("AIO_MQTT_AUTH_METHOD", "SCRAM-SHA-1", 1);
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EINVAL);
    assert_non_null(strstr(why, "AIO_MQTT_AUTH_METHOD"));
}

static void test_all_values(void **state)
{
    (void)state;
    setenv("AIO_BROKER_HOSTNAME", "10.0.0.5", 1);
    setenv("AIO_MQTT_CLIENT_ID", "c", 1);
    setenv("AIO_MQTT_USE_TLS", "False", 1);
    setenv("AIO_BROKER_TCP_PORT", "1883", 1);
    setenv("AIO_MQTT_KEEP_ALIVE", "0", 1);
    setenv("AIO_MQTT_SESSION_EXPIRY", "0", 1);
    setenv("AIO_MQTT_CLEAN_START", "true", 1);
    setenv("AIO_MQTT_USERNAME", "user", 1);
    setenv("AIO_MQTT_PASSWORD_FILE", "/run/secret/pw", 1);
    ep_mqttc_options o = {0};
    o.inflight_max = 7; /* fields not covered by the environment stay */
    assert_int_equal(ep_mqttc_options_from_env(&o, NULL, 0), EP_EOK);
    assert_int_equal(o.port, 1883);
    assert_true(o.no_keepalive);
    assert_int_equal(o.session_expiry, 0);
    assert_true(o.clean_start);
    assert_string_equal(o.username, "user");
    assert_string_equal(o.password_file, "/run/secret/pw");
    assert_int_equal(o.inflight_max, 7);
}

static void test_malformed(void **state)
{
    (void)state;
    setenv("AIO_BROKER_HOSTNAME", "h", 1);
    setenv("AIO_MQTT_CLIENT_ID", "c", 1);
    setenv("AIO_MQTT_USE_TLS", "false", 1);
    const char *bad[][2] = {{"AIO_BROKER_TCP_PORT", "70000"},  {"AIO_BROKER_TCP_PORT", "0"},
                            {"AIO_MQTT_KEEP_ALIVE", "-1"},     {"AIO_MQTT_SESSION_EXPIRY", "1h"},
                            {"AIO_MQTT_CLEAN_START", "maybe"}, {"AIO_MQTT_USE_TLS", "on?"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char saved[64] = "";
        const char *old = getenv(bad[i][0]);
        if (old)
            strncpy(saved, old, sizeof(saved) - 1);
        setenv(bad[i][0], bad[i][1], 1);
        char why[200];
        ep_mqttc_options o = {0};
        assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EINVAL);
        assert_non_null(strstr(why, bad[i][0]));
        if (saved[0])
            setenv(bad[i][0], saved, 1);
        else
            unsetenv(bad[i][0]);
    }
}

static void test_sat_unsupported(void **state)
{
    (void)state;
    setenv("AIO_BROKER_HOSTNAME", "h", 1);
    setenv("AIO_MQTT_CLIENT_ID", "c", 1);
    setenv("AIO_SAT_FILE", "/var/run/token", 1);
    char why[200];
    ep_mqttc_options o = {0};
    assert_int_equal(ep_mqttc_options_from_env(&o, why, sizeof(why)), EP_EUNSUPPORTED);
    assert_non_null(strstr(why, "AIO_SAT_FILE"));
    assert_string_equal(o.host, "h"); /* everything else filled */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_required, clear_env),
        cmocka_unit_test_setup(test_defaults_tls_on, clear_env),
        cmocka_unit_test_setup(test_tls_files, clear_env),
        cmocka_unit_test_setup(test_auth_method, clear_env),
        cmocka_unit_test_setup(test_all_values, clear_env),
        cmocka_unit_test_setup(test_malformed, clear_env),
        cmocka_unit_test_setup(test_sat_unsupported, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
