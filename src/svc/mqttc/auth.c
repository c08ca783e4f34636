/*
 * auth.c - MQTT 5 enhanced authentication in the client: SCRAM-SHA-256
 * through the SCRAM client of svc/auth (scram.h), for the connection and
 * for re-authentication.
 *
 *   CONNECT   method + client-first          (ep_mqttc__auth_connect)
 *   AUTH 0x18 <- server-first  ->  AUTH 0x18 client-final   (on_auth)
 *   CONNACK 0 <- server-final, verified      (ep_mqttc__auth_connack)
 *
 * Re-authentication is the same with AUTH 0x19 first and AUTH 0x00 last.
 * The server's final message is always verified: a server that cannot
 * prove it knows the password is dropped even though it said "success".
 * One exchange at a time; its state lives in c->auth and ends with the
 * exchange or the connection (teardown).
 */
#include <string.h>

#include "svc/auth/scram.h"
#include "svc/mqttc/mqttc_int.h"

static const ep_mqtt_slice method = {(const uint8_t *)EP_MQTTC_AUTH_SCRAM_SHA_256,
                                     sizeof(EP_MQTTC_AUTH_SCRAM_SHA_256) - 1};

void ep_mqttc__auth_end(ep_mqttc *c)
{
    ep_scram_client_free(c->auth);
    c->auth = NULL;
    c->reauth = false;
}

static void set_method(ep_mqtt_props *pr, const uint8_t *data, size_t len)
{
    EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_AUTHENTICATION_METHOD);
    pr->authentication_method = method;
    EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_AUTHENTICATION_DATA);
    pr->authentication_data = ep_mqtt_slice_make(data, len);
}

/* Starts a new exchange; *first is the client-first message. */
static ep_err begin(ep_mqttc *c, const uint8_t **first, size_t *len)
{
    ep_mqttc__auth_end(c);
    const char *pw = c->password ? (const char *)c->password : "";
    ep_err err = ep_scram_client_new(&c->auth, c->username, pw, c->password_len);
    if (err) {
        ep_mqttc__set_detail(c, "cannot start SCRAM-SHA-256: %s", ep_strerror(err));
        return err;
    }
    return ep_scram_client_first(c->auth, first, len);
}

ep_err ep_mqttc__auth_connect(ep_mqttc *c, ep_mqtt_props *pr)
{
    const uint8_t *d = NULL;
    size_t n = 0;
    ep_err err = begin(c, &d, &n);
    if (err)
        return err;
    set_method(pr, d, n);
    return EP_EOK;
}

static bool same_method(const ep_mqtt_props *pr)
{
    return EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_AUTHENTICATION_METHOD) &&
           pr->authentication_method.len == method.len &&
           memcmp(pr->authentication_method.p, method.p, method.len) == 0;
}

/* Checks server-final; on failure drops the connection for good. */
static bool verify_final(ep_mqttc *c, const ep_mqtt_props *pr, const char *where)
{
    ep_err err = EP_EPROTO;
    if (c->auth && same_method(pr) && EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_AUTHENTICATION_DATA))
        err =
            ep_scram_client_verify(c->auth, pr->authentication_data.p, pr->authentication_data.len);
    if (err == EP_EOK) {
        ep_mqttc__auth_end(c);
        return true;
    }
    ep_mqttc__set_detail(c, "SCRAM-SHA-256: the server's %s does not prove it knows the password",
                         where);
    c->fatal = true;
    ep_mqttc__protocol_error(c, EP_ESECURITY, EP_MQTT_RC_UNSPECIFIED_ERROR,
                             "SCRAM server signature");
    return false;
}

bool ep_mqttc__auth_connack(ep_mqttc *c, const ep_mqtt_connack *ca)
{
    return verify_final(c, &ca->props, "CONNACK");
}

/* Answers server-first with client-final. */
static void auth_continue(ep_mqttc *c, const ep_mqtt_auth *a)
{
    const ep_mqtt_props *pr = &a->props;
    const uint8_t *out = NULL;
    size_t n = 0;
    ep_err err = EP_EPROTO;
    if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_AUTHENTICATION_DATA))
        err = ep_scram_client_final(c->auth, pr->authentication_data.p, pr->authentication_data.len,
                                    &out, &n);
    if (err) {
        ep_mqttc__set_detail(c, "SCRAM-SHA-256: unusable server-first message (%s)",
                             ep_strerror(err));
        c->fatal = true;
        ep_mqttc__protocol_error(c, err, EP_MQTT_RC_PROTOCOL_ERROR, "SCRAM server-first");
        return;
    }
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_AUTH;
    p.auth.rc = EP_MQTT_RC_CONTINUE_AUTHENTICATION;
    set_method(&p.auth.props, out, n);
    err = ep_mqttc__send(c, &p);
    if (err)
        ep_mqttc__protocol_error(c, err, EP_MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR,
                                 "cannot encode AUTH");
}

void ep_mqttc__on_auth(ep_mqttc *c, const ep_mqtt_auth *a)
{
    if (c->auth == NULL || !same_method(&a->props)) {
        ep_mqttc__protocol_error(c, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR,
                                 c->auth ? "AUTH with another method" : "unexpected AUTH");
        return;
    }
    if (a->rc == EP_MQTT_RC_CONTINUE_AUTHENTICATION) {
        auth_continue(c, a);
    } else if (a->rc == EP_MQTT_RC_SUCCESS && c->reauth && c->state == MQ_CONNECTED) {
        if (verify_final(c, &a->props, "AUTH")) {
            c->st.reauths++;
            EP_LOG_INFO(MQC_LOG, "%s: re-authenticated with %s:%u", c->client_id, c->host, c->port);
        }
    } else {
        ep_mqttc__protocol_error(c, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR, "AUTH reason code");
    }
}

ep_err ep_mqttc_reauthenticate(ep_mqttc *c)
{
    if (c == NULL)
        return EP_EINVAL;
    if (c->freeing || c->state != MQ_CONNECTED || !c->scram || c->auth)
        return EP_ESTATE;
    if (c->password_file && ep_mqttc__read_password_file(c))
        return EP_ECONFIG;
    const uint8_t *d = NULL;
    size_t n = 0;
    ep_err err = begin(c, &d, &n);
    if (err)
        return err == EP_ENOMEM ? EP_ENOMEM : EP_ESTATE;
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_AUTH;
    p.auth.rc = EP_MQTT_RC_REAUTHENTICATE;
    set_method(&p.auth.props, d, n);
    err = ep_mqttc__send(c, &p);
    if (err) {
        ep_mqttc__auth_end(c);
        return err == EP_ENOMEM ? EP_ENOMEM : EP_ESTATE;
    }
    c->reauth = true;
    return EP_EOK;
}
