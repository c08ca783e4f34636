/*
 * client.c - the client's connection state machine.
 *
 *   DISCONNECTED --connect--> CONNECTING
 *       [secure policy, no server certificate yet]
 *       ENDPOINTS: None channel, GetEndpoints, pick the endpoint of our
 *                  policy and mode, validate its certificate (PKI)
 *       CHANNEL:   secure channel with the policy and mode
 *       CREATE/ACTIVATE: session (session.c)
 *   --> CONNECTED (phase READY): requests flow, publish pipeline runs
 *
 * When the link drops in CONNECTED (socket closed, channel error, a
 * Publish or keep-alive Read not answered in time) the client goes
 * RECONNECTING: requests on the wire fail with EP_ECLOSED, queued ones wait,
 * and a backoff timer starts a new attempt: CHANNEL, then ActivateSession
 * of the same session (session.c), or a new session followed by
 * TransferSubscriptions (sub.c). A failed attempt (refused, timed out, or
 * security) just schedules the next one; a security failure also forgets
 * the server certificate so that it is fetched again (a server re-installed
 * with a new certificate).
 *
 * Keep-alive: with subscriptions, Publish responses (data or keep-alive
 * messages) must come within the subscription's keep-alive window; without,
 * a Read of Server_ServerStatus_State is sent every keepalive_ms of silence.
 * Either failing counts as a lost connection.
 *
 * Links are destroyed from a deferred call, never from inside their own
 * callbacks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/opcua/gen/attributes.h"
#include "codec/opcua/gen/nodeids.h"
#include "core/log.h"
#include "svc/opcua_client/uac_int.h"

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

const char *ep_uac_state_name(ep_uac_state st)
{
    switch (st) {
    case EP_UAC_DISCONNECTED:
        return "disconnected";
    case EP_UAC_CONNECTING:
        return "connecting";
    case EP_UAC_CONNECTED:
        return "connected";
    case EP_UAC_RECONNECTING:
        return "reconnecting";
    case EP_UAC_CLOSING:
        return "closing";
    }
    return "?";
}

void ep_uac__set_error(ep_uac *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
    va_end(ap);
}

const char *ep_uac_last_error(const ep_uac *c) { return c->last_error; }
ep_uac_state ep_uac_get_state(const ep_uac *c) { return c->state; }

void ep_uac_get_stats(const ep_uac *c, ep_uac_stats *out)
{
    *out = c->stats;
    out->outstanding = c->nactive;
    out->queued = c->nqueued;
    out->publish_outstanding = c->publish_outstanding;
}

void ep_uac__set_state(ep_uac *c, ep_uac_state st, ep_err err)
{
    if (c->state == st)
        return;
    c->state = st;
    EP_LOG_DEBUG(EP_UAC_LOG, "%s: %s", c->url, ep_uac_state_name(st));
    if (c->opts.on_state && !c->freeing) {
        c->in_callback++;
        c->opts.on_state(c, st, err, c->opts.ud);
        c->in_callback--;
    }
}

void ep_uac__set_link_factory(ep_uac *c, ep_uac_link_factory f, void *ud)
{
    c->link_factory = f;
    c->link_factory_ud = ud;
}

ep_err ep_uac_err_from_status(ep_ua_status st)
{
    switch (st & 0xFFFF0000u) {
    case EP_UA_STATUS_BadTimeout:
        return EP_ETIMEDOUT;
    case EP_UA_STATUS_BadIdentityTokenInvalid:
    case EP_UA_STATUS_BadIdentityTokenRejected:
    case EP_UA_STATUS_BadUserAccessDenied:
    case EP_UA_STATUS_BadSecurityChecksFailed:
    case EP_UA_STATUS_BadCertificateUntrusted:
    case EP_UA_STATUS_BadCertificateInvalid:
    case EP_UA_STATUS_BadApplicationSignatureInvalid:
    case EP_UA_STATUS_BadUserSignatureInvalid:
    case EP_UA_STATUS_BadSecurityPolicyRejected:
    case EP_UA_STATUS_BadSecurityModeRejected:
    case EP_UA_STATUS_BadNonceInvalid:
    case EP_UA_STATUS_BadCertificateUriInvalid:
    case EP_UA_STATUS_BadCertificateTimeInvalid:
    case EP_UA_STATUS_BadCertificateHostNameInvalid:
    case EP_UA_STATUS_BadCertificateUseNotAllowed:
    case EP_UA_STATUS_BadCertificateRevoked:
    case EP_UA_STATUS_BadCertificateChainIncomplete:
        return EP_ESECURITY;
    default:
        return EP_EPROTO;
    }
}

/* ---------------------------------------------------------------- links -- */

static void link_destroy_deferred(ep_loop *loop, void *arg)
{
    (void)loop;
    ep_uac_link *l = arg;
    l->ops->destroy(l);
}

void ep_uac__drop_link(ep_uac *c, bool graceful)
{
    ep_uac_link *l = c->link;
    if (l == NULL)
        return;
    c->link = NULL;
    c->link_open = false;
    l->ev.opened = NULL;
    l->ev.message = NULL;
    l->ev.closed = NULL;
    if (graceful)
        l->ops->close(l);
    if (ep_loop_defer(c->loop, link_destroy_deferred, l) != EP_EOK)
        l->ops->destroy(l);
}

static void on_link_opened(void *ud, ep_err err, ep_ua_status st, const char *why);
static void on_link_closed(void *ud, ep_err err, ep_ua_status st, const char *why);

static ep_err open_link(ep_uac *c, bool none_for_endpoints)
{
    ep_uac_link *l = NULL;
    ep_err err = c->link_factory(c->loop, c->link_factory_ud, &l);
    if (err != EP_EOK)
        return err;
    l->ev.opened = on_link_opened;
    l->ev.message = ep_uac__on_message;
    l->ev.closed = on_link_closed;
    l->ud = c;
    ep_uac_link_params p;
    memset(&p, 0, sizeof(p));
    p.url = c->url;
    p.connect_timeout_ms = c->opts.connect_timeout_ms;
    p.lifetime_ms = 600000;
    p.max_message_size = c->opts.max_message_size;
    p.pki = c->pki;
    if (none_for_endpoints) {
        p.policy = ep_ua_policy_get(EP_UA_POLICY_NONE);
        p.mode = EP_UA_MESSAGE_SECURITY_MODE_NONE;
    } else {
        p.policy = c->policy;
        p.mode = c->mode;
        p.server_cert = c->server_cert.data;
        p.server_cert_len = c->server_cert.len;
    }
    c->link = l;
    c->link_open = false;
    c->phase = none_for_endpoints ? EP_UAC_PH_ENDPOINTS : EP_UAC_PH_CHANNEL;
    err = l->ops->open(l, &p);
    if (err != EP_EOK) {
        c->link = NULL;
        l->ops->destroy(l);
    }
    return err;
}

/* -------------------------------------------------------- keep-alive -- */

static void ka_read_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    (void)r;
    (void)resp;
    c->ka_inflight = false;
    if (err == EP_EOK)
        return;
    if (c->phase == EP_UAC_PH_READY && err != EP_ECLOSED)
        ep_uac__connection_lost(c, err, st, "keep-alive Read failed");
}

static void ka_tick(ep_timer *t)
{
    ep_uac *c = t->data;
    if (c->phase != EP_UAC_PH_READY)
        return;
    uint64_t now = ep_loop_now(c->loop);
    uint64_t window = ep_uac__publish_window_ms(c);
    uint64_t idle = now - c->last_rx_ms;
    if (window && c->publish_outstanding && idle > window) {
        ep_uac__connection_lost(c, EP_ETIMEDOUT, EP_UA_STATUS_BadTimeout,
                                "no Publish response within the keep-alive "
                                "window");
        return;
    }
    if (!window && !c->ka_inflight && idle >= c->opts.keepalive_ms) {
        ep_uac_req *r = ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(ReadRequest));
        if (r) {
            ep_ua_read_value_id id;
            memset(&id, 0, sizeof(id));
            id.node_id = ep_ua_nodeid_numeric(0, EP_UA_NS0_Server_ServerStatus_State);
            id.attribute_id = EP_UA_ATTR_Value;
            ep_ua_read_request req;
            memset(&req, 0, sizeof(req));
            req.timestamps_to_return = EP_UA_TIMESTAMPS_TO_RETURN_NEITHER;
            req.nodes_to_read_len = 1;
            req.nodes_to_read = &id;
            r->icb = ka_read_done;
            r->timeout_ms = c->opts.keepalive_ms < c->opts.request_timeout_ms
                                ? c->opts.keepalive_ms
                                : c->opts.request_timeout_ms;
            if (ep_uac__req_submit(c, r, &req) == EP_EOK)
                c->ka_inflight = true;
        }
    }
    ep_uac__keepalive_arm(c);
}

void ep_uac__keepalive_arm(ep_uac *c)
{
    uint64_t window = ep_uac__publish_window_ms(c);
    uint64_t period = window ? window / 4 : c->opts.keepalive_ms / 2;
    if (period < 50)
        period = 50;
    ep_timer_start(&c->ka_timer, period);
}

/* ------------------------------------------------------------ states -- */

static void finish_connect(ep_uac *c, ep_err err, ep_ua_status st)
{
    ep_uac_done_cb cb = c->connect_cb;
    void *ud = c->connect_ud;
    c->connect_cb = NULL;
    c->connect_ud = NULL;
    if (cb) {
        c->in_callback++;
        cb(c, err, st, ud);
        c->in_callback--;
    }
}

void ep_uac__connect_failed(ep_uac *c, ep_err err, ep_ua_status st)
{
    ep_timer_stop(&c->connect_timer);
    ep_uac__drop_link(c, false);
    c->phase = EP_UAC_PH_IDLE;
    ep_uac__req_fail_all(c, err, false);
    ep_uac__session_clear(c);
    ep_uac__set_state(c, EP_UAC_DISCONNECTED, err);
    finish_connect(c, err, st);
}

static void schedule_retry(ep_uac *c)
{
    c->phase = EP_UAC_PH_WAIT;
    uint32_t d = ep_uac__backoff_next(&c->backoff);
    EP_LOG_INFO(EP_UAC_LOG, "%s: reconnecting in %u ms", c->url, d);
    ep_timer_start(&c->retry_timer, d);
}

void ep_uac__connection_lost(ep_uac *c, ep_err err, ep_ua_status st, const char *why)
{
    if (c->freeing)
        return;
    if (why && why != c->last_error)
        ep_uac__set_error(c, "%s", why);
    ep_timer_stop(&c->ka_timer);
    c->ka_inflight = false;
    switch (c->state) {
    case EP_UAC_CONNECTING:
        if (c->discovery_only || !c->ever_connected) {
            ep_uac__connect_failed(c, err, st);
            return;
        }
        break;
    case EP_UAC_CLOSING: {
        ep_uac__drop_link(c, false);
        c->phase = EP_UAC_PH_IDLE;
        ep_uac__req_fail_all(c, EP_ECLOSED, false);
        ep_uac__session_clear(c);
        ep_uac__set_state(c, EP_UAC_DISCONNECTED, EP_EOK);
        ep_uac_done_cb cb = c->close_cb;
        c->close_cb = NULL;
        if (cb)
            cb(c, EP_EOK, EP_UA_STATUS_Good, c->close_ud);
        return;
    }
    case EP_UAC_DISCONNECTED:
        return;
    default:
        break;
    }
    bool was_ready = c->phase == EP_UAC_PH_READY;
    if (was_ready)
        EP_LOG_WARN(EP_UAC_LOG, "%s: connection lost: %s", c->url, why ? why : ep_strerror(err));
    else
        EP_LOG_INFO(EP_UAC_LOG, "%s: reconnect attempt failed: %s", c->url,
                    why ? why : ep_strerror(err));
    ep_timer_stop(&c->connect_timer);
    ep_uac__drop_link(c, false);
    ep_uac__req_fail_all(c, EP_ECLOSED, true);
    ep_uac__sub_on_link_lost(c);
    if (err == EP_ESECURITY) {
        /* the server may have a new certificate: fetch it again */
        free(c->server_cert.data);
        c->server_cert.data = NULL;
        c->server_cert.len = 0;
    }
    if (c->opts.no_reconnect) {
        c->phase = EP_UAC_PH_IDLE;
        ep_uac__req_fail_all(c, EP_ECLOSED, false);
        ep_uac__set_state(c, EP_UAC_DISCONNECTED, err);
        return;
    }
    ep_uac__set_state(c, EP_UAC_RECONNECTING, err);
    schedule_retry(c);
}

static bool need_endpoints(const ep_uac *c)
{
    return !ep_ua_policy_is_none(c->policy) && c->server_cert.data == NULL;
}

static void start_attempt(ep_uac *c)
{
    ep_timer_start(&c->connect_timer, (uint64_t)c->opts.connect_timeout_ms * 2);
    ep_err err = open_link(c, need_endpoints(c) || c->discovery_only);
    if (err != EP_EOK) {
        ep_uac__set_error(c, "cannot start connecting to %s: %s", c->url, ep_strerror(err));
        ep_uac__connection_lost(c, err, EP_UA_STATUS_BadCommunicationError, c->last_error);
    }
}

static void on_retry(ep_timer *t)
{
    ep_uac *c = t->data;
    if (c->state != EP_UAC_RECONNECTING)
        return;
    c->stats.reconnects++;
    start_attempt(c);
}

static void on_connect_timeout(ep_timer *t)
{
    ep_uac *c = t->data;
    ep_uac__set_error(c, "connecting to %s timed out", c->url);
    ep_uac__connection_lost(c, EP_ETIMEDOUT, EP_UA_STATUS_BadTimeout, c->last_error);
}

void ep_uac__session_ready(ep_uac *c, bool new_session)
{
    ep_timer_stop(&c->connect_timer);
    ep_uac__backoff_reset(&c->backoff);
    c->phase = EP_UAC_PH_READY;
    c->last_rx_ms = ep_loop_now(c->loop);
    bool first = !c->ever_connected;
    c->ever_connected = true;
    if (!first)
        EP_LOG_INFO(EP_UAC_LOG, "%s: session %s", c->url,
                    new_session ? "created again" : "reactivated");
    ep_uac__set_state(c, EP_UAC_CONNECTED, EP_EOK);
    ep_uac__keepalive_arm(c);
    ep_uac__req_flush_queue(c);
    ep_uac__sub_on_session_ready(c, new_session && !first);
    if (first)
        finish_connect(c, EP_EOK, EP_UA_STATUS_Good);
}

/* GetEndpoints on the None channel: pick our endpoint, validate its cert */
static void endpoints_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    (void)r;
    if (err != EP_EOK) {
        ep_uac__set_error(c, "GetEndpoints failed: %s (%s)", ep_strerror(err),
                          ep_ua_status_name(st));
        ep_uac__connection_lost(c, err, st, c->last_error);
        return;
    }
    const ep_ua_get_endpoints_response *g = resp;
    const ep_ua_endpoint_description *best = NULL;
    for (size_t i = 0; i < g->endpoints_len; i++) {
        const ep_ua_endpoint_description *e = &g->endpoints[i];
        if (e->security_mode != c->mode)
            continue;
        if (e->security_policy_uri.len != strlen(c->policy->uri) ||
            memcmp(e->security_policy_uri.data, c->policy->uri, e->security_policy_uri.len) != 0)
            continue;
        if (best == NULL || e->security_level > best->security_level)
            best = e;
    }
    if (best == NULL || best->server_certificate.len == 0) {
        ep_uac__set_error(c,
                          "the server offers no endpoint with policy %s and "
                          "mode %s",
                          c->policy->name,
                          c->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN ? "Sign" : "SignAndEncrypt");
        ep_uac__connect_failed(c, EP_ESECURITY, EP_UA_STATUS_BadSecurityPolicyRejected);
        return;
    }
    /* validate before trusting anything it says */
    ep_ua_cert_verdict v;
    ep_ua_pki_check chk;
    memset(&chk, 0, sizeof(chk));
    chk.policy = c->policy;
    chk.role = EP_UA_PEER_SERVER;
    char uri[512] = "";
    size_t ul = best->server.application_uri.len;
    if (ul && ul < sizeof(uri)) {
        memcpy(uri, best->server.application_uri.data, ul);
        uri[ul] = 0;
        chk.app_uri = uri;
    }
    err = ep_ua_pki_validate(c->pki, best->server_certificate.data, best->server_certificate.len,
                             &chk, &v);
    if (err != EP_EOK) {
        ep_uac__set_error(c, "server certificate %s: %s", v.subject, v.message);
        EP_LOG_WARN(EP_UAC_LOG, "%s", c->last_error);
        ep_uac__connect_failed(c, EP_ESECURITY,
                               v.ua_status ? v.ua_status : EP_UA_STATUS_BadCertificateUntrusted);
        return;
    }
    c->server_cert.data = malloc(best->server_certificate.len);
    if (c->server_cert.data == NULL) {
        ep_uac__connect_failed(c, EP_ENOMEM, EP_UA_STATUS_BadOutOfMemory);
        return;
    }
    memcpy(c->server_cert.data, best->server_certificate.data, best->server_certificate.len);
    c->server_cert.len = best->server_certificate.len;
    ep_uac__drop_link(c, true);
    err = open_link(c, false);
    if (err != EP_EOK)
        ep_uac__connection_lost(c, err, EP_UA_STATUS_BadCommunicationError,
                                "cannot open the secure channel");
}

static void on_link_opened(void *ud, ep_err err, ep_ua_status st, const char *why)
{
    ep_uac *c = ud;
    if (err != EP_EOK) {
        ep_uac__set_error(c, "cannot open a secure channel to %s: %s%s%s", c->url, ep_strerror(err),
                          why ? ": " : "", why ? why : "");
        ep_uac__connection_lost(c, err, st, c->last_error);
        return;
    }
    c->link_open = true;
    c->last_rx_ms = ep_loop_now(c->loop);
    if (c->phase == EP_UAC_PH_ENDPOINTS && !c->discovery_only) {
        ep_uac_req *r = ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(GetEndpointsRequest));
        if (r == NULL) {
            ep_uac__connect_failed(c, EP_ENOMEM, EP_UA_STATUS_BadOutOfMemory);
            return;
        }
        ep_ua_get_endpoints_request req;
        memset(&req, 0, sizeof(req));
        req.endpoint_url = ep_ua_string_from(c->url);
        r->needs_session = false;
        r->icb = endpoints_done;
        err = ep_uac__req_submit(c, r, &req);
        if (err != EP_EOK)
            ep_uac__connection_lost(c, err, EP_UA_STATUS_BadCommunicationError,
                                    "cannot send GetEndpoints");
        return;
    }
    if (c->discovery_only) {
        ep_timer_stop(&c->connect_timer);
        c->phase = EP_UAC_PH_DISCOVERY;
        ep_uac__set_state(c, EP_UAC_CONNECTED, EP_EOK);
        ep_uac__req_flush_queue(c);
        finish_connect(c, EP_EOK, EP_UA_STATUS_Good);
        return;
    }
    ep_uac__session_start(c);
}

static void on_link_closed(void *ud, ep_err err, ep_ua_status st, const char *why)
{
    ep_uac *c = ud;
    char buf[256];
    snprintf(buf, sizeof(buf), "connection to %s closed: %s", c->url, why ? why : ep_strerror(err));
    ep_uac__connection_lost(c, err, st, buf);
}

/* ---------------------------------------------------------- lifecycle -- */

ep_err ep_uac_new(ep_loop *loop, const ep_uac_opts *opts, ep_uac **out)
{
    if (loop == NULL || opts == NULL || opts->url == NULL || out == NULL)
        return EP_EINVAL;
    const ep_ua_policy *pol = ep_ua_policy_get(EP_UA_POLICY_NONE);
    if (opts->policy && *opts->policy) {
        pol = ep_ua_policy_find(opts->policy, strlen(opts->policy));
        for (int i = 0; pol == NULL && i < EP_UA_POLICY_COUNT; i++) {
            const ep_ua_policy *p = ep_ua_policy_get((ep_ua_policy_id)i);
            if (p && strcmp(p->name, opts->policy) == 0)
                pol = p;
        }
        if (pol == NULL)
            return EP_EINVAL;
    }
    int32_t mode = opts->mode;
    if (mode == 0)
        mode = ep_ua_policy_is_none(pol) ? EP_UA_MESSAGE_SECURITY_MODE_NONE
                                         : EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT;
    if (mode < EP_UA_MESSAGE_SECURITY_MODE_NONE ||
        mode > EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT)
        return EP_EINVAL;
    if (ep_ua_policy_is_none(pol) != (mode == EP_UA_MESSAGE_SECURITY_MODE_NONE))
        return EP_EINVAL;
    if (!ep_ua_policy_is_none(pol) && opts->pki == NULL)
        return EP_EINVAL;
    if (opts->identity.kind == EP_UAC_ID_X509 &&
        (opts->identity.cert_file == NULL || opts->identity.key_file == NULL))
        return EP_EINVAL;
    if (opts->identity.kind == EP_UAC_ID_USERNAME && opts->identity.user == NULL)
        return EP_EINVAL;

    ep_uac *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return EP_ENOMEM;
    c->loop = loop;
    c->opts = *opts;
    c->policy = pol;
    c->mode = mode;
    c->pki = opts->pki;
    ep_uac_opts *o = &c->opts;
    if (!o->request_timeout_ms)
        o->request_timeout_ms = 10000;
    if (!o->connect_timeout_ms)
        o->connect_timeout_ms = 10000;
    if (!o->session_timeout_ms)
        o->session_timeout_ms = 120000;
    if (!o->max_outstanding)
        o->max_outstanding = 32;
    if (!o->max_queued)
        o->max_queued = 4096;
    if (!o->max_publish)
        o->max_publish = 4;
    if (!o->keepalive_ms)
        o->keepalive_ms = 5000;
    if (!o->reconnect_min_ms)
        o->reconnect_min_ms = 250;
    if (!o->reconnect_max_ms)
        o->reconnect_max_ms = 30000;
    if (!o->max_message_size)
        o->max_message_size = 16u << 20;

    const char *app_uri = opts->app_uri;
    if (app_uri == NULL && c->pki && ep_ua_pki_own_cert(c->pki))
        app_uri = ep_ua_cert_app_uri(ep_ua_pki_own_cert(c->pki));
    c->url = dupstr(opts->url);
    c->app_uri = dupstr(app_uri ? app_uri : "urn:edgeplane:client");
    c->app_name = dupstr(opts->app_name ? opts->app_name : "edgeplane OPC UA client");
    c->session_name = dupstr(opts->session_name ? opts->session_name : "edgeplane");
    c->user = dupstr(opts->identity.user);
    c->password = dupstr(opts->identity.password);
    c->cert_file = dupstr(opts->identity.cert_file);
    c->key_file = dupstr(opts->identity.key_file);
    o->url = o->app_uri = o->app_name = o->session_name = NULL;
    memset(&o->identity, 0, sizeof(o->identity));
    o->identity.kind = opts->identity.kind;
    if (c->url == NULL || c->app_uri == NULL || c->app_name == NULL || c->session_name == NULL ||
        (opts->identity.user && c->user == NULL) ||
        (opts->identity.password && c->password == NULL) ||
        (opts->identity.cert_file && c->cert_file == NULL) ||
        (opts->identity.key_file && c->key_file == NULL)) {
        ep_uac_free(c);
        return EP_ENOMEM;
    }
    ep_timer_init(loop, &c->connect_timer, on_connect_timeout, c);
    ep_timer_init(loop, &c->retry_timer, on_retry, c);
    ep_timer_init(loop, &c->ka_timer, ka_tick, c);
    ep_uac__backoff_init(&c->backoff, o->reconnect_min_ms, o->reconnect_max_ms,
                         (uint64_t)(uintptr_t)c ^ ep_clock_mono_ns());
    c->link_factory = ep_uac__link_chan_new;
    c->next_sub_id = 1;
    *out = c;
    return EP_EOK;
}

ep_err ep_uac_connect(ep_uac *c, ep_uac_done_cb cb, void *ud)
{
    if (c->state != EP_UAC_DISCONNECTED)
        return EP_ESTATE;
    if (c->opts.identity.kind == EP_UAC_ID_X509 && c->user_cert == NULL) {
        ep_err err = ep_ua_cert_load(c->cert_file, &c->user_cert);
        if (err == EP_EOK)
            err = ep_ua_key_load(c->key_file, &c->user_key);
        if (err == EP_EOK && !ep_ua_cert_matches_key(c->user_cert, c->user_key))
            err = EP_ESECURITY;
        if (err != EP_EOK) {
            ep_uac__set_error(c, "user certificate %s / key %s: %s", c->cert_file, c->key_file,
                              ep_strerror(err));
            ep_ua_cert_free(c->user_cert);
            ep_ua_key_free(c->user_key);
            c->user_cert = NULL;
            c->user_key = NULL;
            return err == EP_ENOMEM ? err : EP_EINVAL;
        }
    }
    c->connect_cb = cb;
    c->connect_ud = ud;
    c->discovery_only = false;
    c->ever_connected = false;
    ep_uac__set_state(c, EP_UAC_CONNECTING, EP_EOK);
    start_attempt(c);
    return EP_EOK;
}

ep_err ep_uac_discover(ep_uac *c, ep_uac_done_cb cb, void *ud)
{
    if (c->state != EP_UAC_DISCONNECTED)
        return EP_ESTATE;
    c->connect_cb = cb;
    c->connect_ud = ud;
    c->discovery_only = true;
    c->ever_connected = false;
    ep_uac__set_state(c, EP_UAC_CONNECTING, EP_EOK);
    start_attempt(c);
    return EP_EOK;
}

ep_err ep_uac_disconnect(ep_uac *c, ep_uac_done_cb cb, void *ud)
{
    if (c->state == EP_UAC_DISCONNECTED || c->state == EP_UAC_CLOSING)
        return EP_ESTATE;
    c->close_cb = cb;
    c->close_ud = ud;
    ep_timer_stop(&c->retry_timer);
    ep_timer_stop(&c->ka_timer);
    ep_timer_stop(&c->connect_timer);
    bool ready = c->phase == EP_UAC_PH_READY;
    ep_uac__set_state(c, EP_UAC_CLOSING, EP_EOK);
    if (c->connect_cb)
        finish_connect(c, EP_ECLOSED, EP_UA_STATUS_BadConnectionClosed);
    if (ready) {
        ep_uac__session_close(c); /* ends in connection_lost(CLOSING) */
        return EP_EOK;
    }
    ep_uac__drop_link(c, c->link_open);
    ep_uac__connection_lost(c, EP_ECLOSED, EP_UA_STATUS_Good, NULL);
    return EP_EOK;
}

void ep_uac_free(ep_uac *c)
{
    if (c == NULL)
        return;
    c->freeing = true;
    ep_timer_stop(&c->connect_timer);
    ep_timer_stop(&c->retry_timer);
    ep_timer_stop(&c->ka_timer);
    if (c->link) {
        ep_uac_link *l = c->link;
        c->link = NULL;
        l->ev.opened = NULL;
        l->ev.message = NULL;
        l->ev.closed = NULL;
        l->ops->destroy(l);
    }
    ep_uac__req_fail_all(c, EP_ECLOSED, false);
    if (c->connect_cb)
        finish_connect(c, EP_ECLOSED, EP_UA_STATUS_BadConnectionClosed);
    ep_uac__sub_free_all(c);
    ep_uac__session_clear(c);
    free(c->server_cert.data);
    free(c->acks);
    ep_ua_cert_free(c->user_cert);
    ep_ua_key_free(c->user_key);
    free(c->url);
    free(c->app_uri);
    free(c->app_name);
    free(c->session_name);
    free(c->user);
    if (c->password) {
        volatile char *p = c->password;
        while (*p)
            *p++ = 0;
    }
    free(c->password);
    free(c->cert_file);
    free(c->key_file);
    free(c);
}

static void free_deferred(ep_loop *loop, void *arg)
{
    (void)loop;
    ep_uac_free(arg);
}

void ep_uac_free_deferred(ep_uac *c)
{
    if (c == NULL)
        return;
    if (ep_loop_defer(c->loop, free_deferred, c) != EP_EOK)
        ep_uac_free(c);
}
