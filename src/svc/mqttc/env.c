/*
 * env.c - client options from the AIO connection-settings environment
 * variables (docs/mqtt-client.md, "Environment"), so a service written for
 * the reference SDK's environment can point at edgeplane unchanged.
 *
 * Defaults follow the reference table, including port 8883 and TLS on;
 * since this client has no TLS yet, AIO_MQTT_USE_TLS=false must be set, and
 * TLS or service-account-token settings are reported as unsupported rather
 * than silently ignored.
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
    *o = t;

    static const char *const unsupported[] = {"AIO_TLS_CA_FILE", "AIO_TLS_CERT_FILE",
                                              "AIO_TLS_KEY_FILE", "AIO_TLS_KEY_PASSWORD_FILE",
                                              "AIO_SAT_FILE"};
    if (tls) {
        say(why, why_len,
            "AIO_MQTT_USE_TLS is %s, but TLS is not supported yet; set "
            "AIO_MQTT_USE_TLS=false",
            env("AIO_MQTT_USE_TLS") ? "true" : "unset (default true)");
        return EP_EUNSUPPORTED;
    }
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        if (env(unsupported[i])) {
            say(why, why_len, "%s is set, but %s is not supported yet", unsupported[i],
                i == 4 ? "service account token authentication" : "TLS");
            return EP_EUNSUPPORTED;
        }
    }
    return EP_EOK;
}
