/*
 * env.c - client options from the AIO connection-settings environment
 * variables (docs/mqtt-client.md, "Environment"), so a service written for
 * the reference SDK's environment can point at edgeplane unchanged.
 *
 * Defaults follow the reference table, including port 8883 and TLS on. The
 * TLS files map onto ep_mqttc_tls_options; AIO_MQTT_AUTH_METHOD (not in the
 * reference, which authenticates with service account tokens instead)
 * selects SCRAM-SHA-256. Service-account-token authentication
 * (AIO_SAT_FILE) is reported as unsupported rather than silently ignored.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "svc/mqttc/mqttc_int.h"

static void say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t n, const char *fmt, ...)
{
    if (why && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, n, fmt, ap);
        va_end(ap);
    }
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    if (s[0] < '0' || s[0] > '9')
        return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes")) {
        *out = true;
        return true;
    }
    if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no")) {
        *out = false;
        return true;
    }
    return false;
}

/* The TLS variables: files only make sense with TLS on, and a key only
 * with its certificate. */
static ep_err tls_from_env(ep_mqttc_tls_options *t, bool tls, char *why, size_t why_len)
{
    static const char *const files[] = {"AIO_TLS_CA_FILE", "AIO_TLS_CERT_FILE", "AIO_TLS_KEY_FILE",
                                        "AIO_TLS_KEY_PASSWORD_FILE"};
    memset(t, 0, sizeof(*t));
    if (!tls) {
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            if (env(files[i])) {
                say(why, why_len, "%s is set, but AIO_MQTT_USE_TLS is false", files[i]);
                return EP_EINVAL;
            }
        return EP_EOK;
    }
    t->enable = true;
    t->ca_file = env(files[0]);
    t->cert_file = env(files[1]);
    t->key_file = env(files[2]);
    t->key_password_file = env(files[3]);
    if ((t->key_file != NULL) != (t->cert_file != NULL)) {
        say(why, why_len, "AIO_TLS_CERT_FILE and AIO_TLS_KEY_FILE must be set together");
        return EP_EINVAL;
    }
    if (t->key_password_file && !t->key_file) {
        say(why, why_len, "AIO_TLS_KEY_PASSWORD_FILE needs AIO_TLS_KEY_FILE");
        return EP_EINVAL;
    }
    return EP_EOK;
}

ep_err ep_mqttc_options_from_env(ep_mqttc_options *o, char *why, size_t why_len)
{
    if (o == NULL)
        return EP_EINVAL;
    if (why && why_len)
        why[0] = '\0';
    ep_mqttc_options t = *o;
    const char *v;

    if ((t.host = env("AIO_BROKER_HOSTNAME")) == NULL) {
        say(why, why_len, "AIO_BROKER_HOSTNAME is required");
        return EP_ECONFIG;
    }
    if ((t.client_id = env("AIO_MQTT_CLIENT_ID")) == NULL) {
        say(why, why_len, "AIO_MQTT_CLIENT_ID is required");
        return EP_ECONFIG;
    }
    uint32_t u = 8883;
    if ((v = env("AIO_BROKER_TCP_PORT")) && (!parse_u32(v, 65535, &u) || u == 0)) {
        say(why, why_len, "AIO_BROKER_TCP_PORT=%s: expected a port number 1..65535", v);
        return EP_EINVAL;
    }
    t.port = (uint16_t)u;
    u = 60;
    if ((v = env("AIO_MQTT_KEEP_ALIVE")) && !parse_u32(v, 65535, &u)) {
        say(why, why_len, "AIO_MQTT_KEEP_ALIVE=%s: expected seconds 0..65535", v);
        return EP_EINVAL;
    }
    t.keepalive = (uint16_t)u;
    t.no_keepalive = u == 0;
    u = 3600;
    if ((v = env("AIO_MQTT_SESSION_EXPIRY")) && !parse_u32(v, UINT32_MAX, &u)) {
        say(why, why_len, "AIO_MQTT_SESSION_EXPIRY=%s: expected seconds 0..4294967295", v);
        return EP_EINVAL;
    }
    t.session_expiry = u;
    bool b = false;
    if ((v = env("AIO_MQTT_CLEAN_START")) && !parse_bool(v, &b)) {
        say(why, why_len, "AIO_MQTT_CLEAN_START=%s: expected true or false", v);
        return EP_EINVAL;
    }
    t.clean_start = b;
    bool tls = true;
    if ((v = env("AIO_MQTT_USE_TLS")) && !parse_bool(v, &tls)) {
        say(why, why_len, "AIO_MQTT_USE_TLS=%s: expected true or false", v);
        return EP_EINVAL;
    }
    t.username = env("AIO_MQTT_USERNAME");
    t.password_file = env("AIO_MQTT_PASSWORD_FILE");
    t.version = EP_MQTT_V5;
    ep_err err = tls_from_env(&t.tls, tls, why, why_len);
    if (err)
        return err;
    if ((v = env("AIO_MQTT_AUTH_METHOD"))) {
        if (strcmp(v, EP_MQTTC_AUTH_SCRAM_SHA_256) != 0) {
            say(why, why_len,
                "AIO_MQTT_AUTH_METHOD=%s: only " EP_MQTTC_AUTH_SCRAM_SHA_256 " is supported", v);
            return EP_EINVAL;
        }
        if (t.username == NULL || t.password_file == NULL) {
            say(why, why_len,
                "AIO_MQTT_AUTH_METHOD=%s needs AIO_MQTT_USERNAME and "
                "AIO_MQTT_PASSWORD_FILE",
                v);
            return EP_EINVAL;
        }
        t.auth_method = v;
    }
    *o = t;
    if (env("AIO_SAT_FILE")) {
        say(why, why_len,
            "AIO_SAT_FILE is set, but service account token authentication is not supported");
        return EP_EUNSUPPORTED;
    }
    return EP_EOK;
}
