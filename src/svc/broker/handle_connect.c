/*
 * handle_connect.c - CONNECT: client identifier, session takeover and
 * resumption, will, keep alive and the CONNACK with the server's limits.
 *
 * A session lives on the worker chosen by its client identifier, so the
 * first thing done here is to hand the connection over when it arrived on
 * another worker (the CONNECT is parsed again there).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "svc/broker/auth_custom.h"
#include "svc/broker/broker_int.h"

static void connack(bk_conn *c, ep_mqtt_rc rc, bool session_present, const ep_mqtt_props *props)
{
    ep_mqtt_packet p = {.type = EP_MQTT_CONNACK};
    p.connack.rc = rc;
    p.connack.session_present = session_present;
    if (props && c->version == EP_MQTT_V5)
        p.connack.props = *props;
    bk_conn_send_packet(c, &p);
}

static ep_err refuse(bk_conn *c, ep_mqtt_rc rc, const char *why)
{
    connack(c, rc, false, NULL);
    bk_conn_close(c, -1, why);
    return EP_EPERM;
}

/* Assigned identifiers are chosen so that they hash to this worker: the
 * session then never has to move. */
static void assign_client_id(bk_worker *w, char *out, size_t n)
{
    for (;;) {
        uint8_t r[8];
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
            memset(r, 0x5a, sizeof(r));
        snprintf(out, n, "ep-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
                 r[6], r[7]);
        if (bk_worker_for_client(w->b, (const uint8_t *)out, strlen(out)) == w->idx &&
            bk_session_find_cid(w, (const uint8_t *)out, strlen(out)) == NULL)
            return;
    }
}

static ep_msg *make_will(bk_conn *c, const ep_mqtt_will *will, uint32_t *delay)
{
    uint8_t stackbuf[512];
    uint8_t *props = stackbuf;
    size_t plen = 0;
    *delay = 0;
    if (c->version == EP_MQTT_V5 && will->props.raw.len) {
        if (will->props.raw.len > sizeof(stackbuf)) {
            props = malloc(will->props.raw.len);
            if (props == NULL)
                return NULL;
        }
        plen = ep_mqtt_props_filter(will->props.raw,
                                    EP_MQTT_PROP_BIT(EP_MQTT_PROP_WILL_DELAY_INTERVAL) |
                                        EP_MQTT_PROP_BIT(EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL),
                                    props);
        if (EP_MQTT_PROPS_HAS(&will->props, EP_MQTT_PROP_WILL_DELAY_INTERVAL))
            *delay = will->props.will_delay_interval;
    }
    ep_msg *m = ep_msg_new((const char *)will->topic.p, will->topic.len, plen ? props : NULL, plen,
                           will->payload.p, will->payload.len);
    if (props != stackbuf)
        free(props);
    if (m == NULL)
        return NULL;
    m->qos = will->qos;
    m->retain = will->retain;
    m->created_ms = ep_loop_now(c->w->loop);
    if (c->version == EP_MQTT_V5 &&
        EP_MQTT_PROPS_HAS(&will->props, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL)) {
        m->has_expiry = 1;
        m->expiry_interval = will->props.message_expiry_interval;
        /* The expiry of a will starts when it is published; approximated
         * here as connect time plus delay. */
        m->expiry_at_ms = m->created_ms + (uint64_t)(*delay + m->expiry_interval) * 1000u;
    }
    return m;
}

static const ep_broker_auth_method *find_method(bk_worker *w, ep_mqtt_slice name)
{
    const ep_broker_config *cfg = &w->b->cfg;
    for (int i = 0; i < cfg->n_auth_methods; i++)
        if (ep_mqtt_slice_eq(name, ep_mqtt_slice_make(cfg->auth_methods[i].name,
                                                      strlen(cfg->auth_methods[i].name))))
            return &cfg->auth_methods[i];
    return NULL;
}

void bk_send_auth(bk_conn *c, ep_mqtt_rc rc)
{
    ep_mqtt_packet a = {.type = EP_MQTT_AUTH};
    a.auth.rc = rc;
    a.auth.props.authentication_method =
        ep_mqtt_slice_make(c->auth->method->name, strlen(c->auth->method->name));
    EP_MQTT_PROPS_SET(&a.auth.props, EP_MQTT_PROP_AUTHENTICATION_METHOD);
    if (c->auth->out_len) {
        a.auth.props.authentication_data = ep_mqtt_slice_make(c->auth->out, c->auth->out_len);
        EP_MQTT_PROPS_SET(&a.auth.props, EP_MQTT_PROP_AUTHENTICATION_DATA);
    }
    bk_conn_send_packet(c, &a);
}

static ep_broker_auth_result auth_step(bk_conn *c, const char *cid, ep_mqtt_slice data)
{
    c->auth->out = NULL;
    c->auth->out_len = 0;
    return c->auth->method->step(c->auth->method->ud, &c->auth->state, cid, data.p, data.len,
                                 &c->auth->out, &c->auth->out_len);
}

/* First step of enhanced authentication, from CONNECT. Returns EP_EOK when
 * the method accepted at once or when the listener's custom method takes
 * it (bk_auth_connect asks the callout, auth_custom.h), EP_EAGAIN while
 * the exchange goes on (the CONNECT is kept and finished by
 * bk_handle_auth), an error when refused. */
static ep_err start_auth(bk_conn *c, const ep_mqtt_connect *cn, ep_mqtt_slice cid)
{
    char id[300];
    const ep_broker_auth_method *method = find_method(c->w, cn->props.authentication_method);
    if ((method == NULL || !bk_auth_method_allowed(c, method->name)) && bk_auth_custom_relevant(c))
        return EP_EOK;
    if (method == NULL || !bk_auth_method_allowed(c, method->name))
        return refuse(c, EP_MQTT_RC_BAD_AUTHENTICATION_METHOD,
                      "authentication method not offered on this listener");
    c->auth = calloc(1, sizeof(*c->auth));
    if (c->auth == NULL)
        return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
    c->auth->method = method;
    snprintf(id, sizeof(id), "%.*s", (int)cid.len, (const char *)cid.p);
    switch (auth_step(c, id, cn->props.authentication_data)) {
    case EP_BROKER_AUTH_SUCCESS:
        c->auth->ok = true;
        return EP_EOK;
    case EP_BROKER_AUTH_CONTINUE:
        if (ep_buf_append(&c->auth->pending_connect, c->cur_pkt, c->cur_len) != EP_EOK)
            return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
        bk_send_auth(c, EP_MQTT_RC_CONTINUE_AUTHENTICATION);
        return EP_EAGAIN;
    default:
        return refuse(c, EP_MQTT_RC_NOT_AUTHORIZED, "authentication failed");
    }
}

ep_err bk_handle_auth(bk_conn *c, const ep_mqtt_packet *p)
{
    const ep_mqtt_auth *a = &p->auth;
    bool reauth = c->state == BK_CONN_ACTIVE;
    if (reauth && bk_auth_is_custom(c))
        return bk_auth_custom_reauth(c, a); /* answered by the callout, later */
    if (c->auth == NULL ||
        !ep_mqtt_slice_eq(
            a->props.authentication_method,
            ep_mqtt_slice_make(c->auth->method->name, strlen(c->auth->method->name))) ||
        a->rc != (reauth && c->auth->ok ? EP_MQTT_RC_REAUTHENTICATE
                                        : EP_MQTT_RC_CONTINUE_AUTHENTICATION)) {
        if (!reauth)
            return refuse(c, EP_MQTT_RC_PROTOCOL_ERROR, "unexpected AUTH");
        bk_conn_close(c, EP_MQTT_RC_PROTOCOL_ERROR, "unexpected AUTH");
        return EP_EPROTO;
    }
    if (reauth && a->rc == EP_MQTT_RC_REAUTHENTICATE) {
        /* A new exchange starts from a fresh state. */
        if (c->auth->method->done)
            c->auth->method->done(c->auth->method->ud, c->auth->state);
        c->auth->state = NULL;
        c->auth->ok = false;
    }
    const char *cid = c->s ? c->s->client_id : "";
    switch (auth_step(c, cid, a->props.authentication_data)) {
    case EP_BROKER_AUTH_CONTINUE:
        bk_send_auth(c, EP_MQTT_RC_CONTINUE_AUTHENTICATION);
        return EP_EOK;
    case EP_BROKER_AUTH_SUCCESS:
        c->auth->ok = true;
        if (reauth) {
            bk_send_auth(c, EP_MQTT_RC_SUCCESS);
            return EP_EOK;
        } else {
            ep_mqtt_packet cp;
            if (ep_mqtt_packet_decode(ep_buf_head(&c->auth->pending_connect),
                                      ep_buf_used(&c->auth->pending_connect), 0, &cp,
                                      NULL) != EP_EOK)
                return refuse(c, EP_MQTT_RC_UNSPECIFIED_ERROR, "held CONNECT unreadable");
            ep_err err = bk_handle_connect(c, &cp);
            ep_buf_fini(&c->auth->pending_connect);
            return err;
        }
    default:
        if (!reauth)
            return refuse(c, EP_MQTT_RC_NOT_AUTHORIZED, "authentication failed");
        bk_conn_close(c, EP_MQTT_RC_NOT_AUTHORIZED, "re-authentication failed");
        return EP_EPERM;
    }
}

ep_err bk_handle_connect(bk_conn *c, const ep_mqtt_packet *p)
{
    bk_worker *w = c->w;
    const ep_broker_limits *lim = &w->b->cfg.limits;
    const ep_mqtt_connect *cn = &p->connect;
    char assigned[32];
    ep_mqtt_slice cid = cn->client_id;
    bool v5 = cn->protocol_version == EP_MQTT_V5;

    c->version = cn->protocol_version;
    if (cid.len == 0) {
        if (!v5 && !cn->clean_start)
            return refuse(c, EP_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
                          "empty client id needs clean session");
        assign_client_id(w, assigned, sizeof(assigned));
        cid = ep_mqtt_slice_make(assigned, strlen(assigned));
    } else if (cid.len > lim->max_client_id_length) {
        return refuse(c, EP_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID, "client id too long");
    }
    uint16_t home = bk_worker_for_client(w->b, cid.p, cid.len);
    if (home != w->idx && cn->client_id.len > 0) {
        c->handoff_to = home;
        c->version = 0;
        return EP_EAGAIN;
    }
    if (v5 && EP_MQTT_PROPS_HAS(&cn->props, EP_MQTT_PROP_AUTHENTICATION_METHOD) &&
        !(c->auth && c->auth->ok)) {
        ep_err serr = start_auth(c, cn, cid);
        if (serr != EP_EOK)
            return serr;
    }
    ep_err aerr = bk_auth_connect(c, cn, cid);
    if (aerr == EP_EOK && v5 && c->auth == NULL)
        aerr = bk_auth_custom_attach(c, cn);
    if (aerr != EP_EOK)
        return aerr;
    if ((uint32_t)atomic_load(&w->b->nconnected) > lim->max_connections)
        return refuse(c, EP_MQTT_RC_SERVER_BUSY, "connection limit reached");
    if (cn->has_will) {
        if (cn->will.topic.len > lim->max_topic_length ||
            ep_mqtt_topic_levels(cn->will.topic) > lim->max_topic_levels)
            return refuse(c, EP_MQTT_RC_TOPIC_NAME_INVALID, "will topic exceeds limits");
        ep_mqtt_rc prc;
        if (v5 && ep_mqtt_payload_check(&cn->will.props, cn->will.payload, &prc) != EP_EOK)
            return refuse(c, EP_MQTT_RC_PAYLOAD_FORMAT_INVALID, "will payload is not UTF-8");
    }

    /* Session expiry as granted. */
    uint32_t expiry;
    if (v5)
        expiry = EP_MQTT_PROPS_HAS(&cn->props, EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL)
                     ? cn->props.session_expiry_interval
                     : 0;
    else
        expiry = cn->clean_start ? 0 : UINT32_MAX;
    bool expiry_capped = false;
    if (expiry > lim->max_session_expiry) {
        expiry = lim->max_session_expiry;
        expiry_capped = true;
    }

    /* Takeover and resumption. */
    bk_session *s = bk_session_find_cid(w, cid.p, cid.len);
    if (s && s->conn) {
        bk_conn *old = s->conn;
        EP_LOG_DEBUG(BK_LOG, "session %s taken over", s->client_id);
        bk_conn_close(old, EP_MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
        /* Closing may have ended the session (expiry 0). */
        s = bk_session_find_cid(w, cid.p, cid.len);
    }
    bool present = false;
    if (s && cn->clean_start) {
        bk_session_destroy(s);
        s = NULL;
    }
    if (s) {
        present = true;
        ep_timer_stop(&s->expiry_timer);
        if (ep_timer_active(&s->will_timer)) {
            /* Reconnected within the will delay: the will is not sent. */
            ep_timer_stop(&s->will_timer);
            ep_msg_unref(s->will);
            s->will = NULL;
        }
    } else {
        s = bk_session_new(w, cid.p, cid.len);
        if (s == NULL)
            return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
    }
    s->version = c->version;
    s->expiry_interval = expiry;
    ep_msg_unref(s->will);
    s->will = NULL;
    if (cn->has_will) {
        s->will = make_will(c, &cn->will, &s->will_delay);
        if (s->will == NULL) {
            bk_session_destroy(s);
            return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
        }
    }
    /* Persistent (expiry > 0): the session, its will and expiry go to the
     * log; a session that stops being persistent leaves it. */
    bk_persist_session(s);

    /* Client limits. */
    c->client_receive_max = 65535;
    c->client_max_packet = 0;
    c->client_alias_max = 0;
    if (v5) {
        if (EP_MQTT_PROPS_HAS(&cn->props, EP_MQTT_PROP_RECEIVE_MAXIMUM))
            c->client_receive_max = cn->props.receive_maximum;
        if (EP_MQTT_PROPS_HAS(&cn->props, EP_MQTT_PROP_MAXIMUM_PACKET_SIZE))
            c->client_max_packet = cn->props.maximum_packet_size;
        if (EP_MQTT_PROPS_HAS(&cn->props, EP_MQTT_PROP_TOPIC_ALIAS_MAXIMUM))
            c->client_alias_max = cn->props.topic_alias_maximum;
    }
    c->keepalive = cn->keep_alive;
    bool server_ka = false;
    if (v5 && lim->max_keepalive && (c->keepalive == 0 || c->keepalive > lim->max_keepalive)) {
        c->keepalive = lim->max_keepalive;
        server_ka = true;
    }

    ep_mqtt_props props = {0};
    char resp_info[300];
    if (v5) {
        props.receive_maximum = lim->receive_maximum;
        EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_RECEIVE_MAXIMUM);
        props.maximum_packet_size = lim->max_packet_size;
        EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_MAXIMUM_PACKET_SIZE);
        props.topic_alias_maximum = lim->topic_alias_maximum;
        EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
        if (cn->client_id.len == 0) {
            props.assigned_client_identifier = cid;
            EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER);
        }
        if (server_ka) {
            props.server_keep_alive = c->keepalive;
            EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_SERVER_KEEP_ALIVE);
        }
        if (expiry_capped) {
            props.session_expiry_interval = expiry;
            EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL);
        }
        if (c->auth && c->auth->ok) {
            props.authentication_method =
                ep_mqtt_slice_make(c->auth->method->name, strlen(c->auth->method->name));
            EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_AUTHENTICATION_METHOD);
            if (c->auth->out_len) {
                props.authentication_data = ep_mqtt_slice_make(c->auth->out, c->auth->out_len);
                EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_AUTHENTICATION_DATA);
            }
        }
        if (EP_MQTT_PROPS_HAS(&cn->props, EP_MQTT_PROP_REQUEST_RESPONSE_INFORMATION) &&
            cn->props.request_response_information == 1) {
            int n = snprintf(resp_info, sizeof(resp_info), "response/%.*s", (int)cid.len,
                             (const char *)cid.p);
            props.response_information = ep_mqtt_slice_make(resp_info, (size_t)n);
            EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_RESPONSE_INFORMATION);
        }
    }

    c->s = s;
    s->conn = c;
    c->state = BK_CONN_ACTIVE;
    connack(c, EP_MQTT_RC_SUCCESS, present, &props);
    bk_conn_arm_timer(c);
    if (present)
        bk_session_resend(s);
    if (ep_log_threshold <= EP_LOG_DEBUG) {
        char peer[64];
        EP_LOG_DEBUG(BK_LOG, "client %s connected from %s (v%u, session %s)", s->client_id,
                     bk_conn_peer(c, peer, sizeof(peer)), c->version == EP_MQTT_V5 ? 5 : 3,
                     present ? "resumed" : "new");
    }
    return EP_EOK;
}
