/*
 * auth.c - the broker side of authentication and authorization: each
 * listener's ordered chain of methods, the failed-login limiter, and the
 * compiled authorization of each connection (src/svc/auth does the work).
 *
 * Chains follow the reference's BrokerAuthentication: the first method the
 * client's credentials are relevant to decides (x509: a verified client
 * certificate; scram-sha-256: that CONNECT authentication method;
 * password: a user name without an authentication method); when none is
 * relevant the client is refused.
 *
 * Password checks cost ~0.1 s of CPU by design, so they never run on a
 * worker: the connection is paused (no reading), the check runs on the
 * verifier's threads, and its result comes back to this worker's loop; the
 * CONNECT, still in the connection's input buffer, is then handled again.
 * Custom authentication (an HTTP(S) callout, svc/auth/callout.h) works the
 * same way on the callout pool. It is relevant to every client; when its
 * server cannot be reached the chain resumes at the next method
 * (c->authn_next), as the reference treats that server as not relevant.
 * A callout's expiry and a client certificate's end of validity become
 * c->cred_expiry_ms (the socket is closed then, conn.c); the attributes of
 * the callout or of the X.509 subject mapping become the principal's
 * attributes for authorization.
 *
 * MQTT 5 enhanced authentication through the callout (auth_custom.h): a
 * CONNECT whose Authentication Method no built-in method takes is asked
 * in the callout's "auth" form; once accepted, c->auth holds a one-step
 * method of that name (bk_custom_method) so the CONNACK carries it and an
 * AUTH 0x19 re-authenticates. A re-authentication pauses the connection
 * like a CONNECT check; its answer waits in c->pending (done) until the
 * AUTH, still in the input buffer, is handled again.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "svc/auth/attrs.h"
#include "svc/auth/authz.h"
#include "svc/auth/callout.h"
#include "svc/auth/passwd.h"
#include "svc/auth/ratelimit.h"
#include "svc/auth/scram.h"
#include "svc/auth/verify.h"
#include "svc/auth/x509map.h"
#include "svc/broker/auth_custom.h"
#include "svc/broker/broker_int.h"

typedef struct bk_pending_auth {
    bk_conn *c; /* NULL once the connection went away */
    uint64_t req;
    ep_callout *callout; /* the pool running a callout; NULL: password verifier */
    uint8_t method_idx;  /* chain position of the callout */
    bool enhanced;       /* the callout's "auth" form (MQTT 5 enhanced auth) */
    bool reauth;         /* asked for an AUTH packet of an active client */
    bool done;           /* answered: kept until the packet is handled again */
    /* the answer to a re-authentication, applied when its AUTH is handled again */
    ep_callout_verdict verdict;
    uint8_t reason;
    int64_t expiry_ms;
    ep_auth_attrs *attrs;
    char message[128];
} bk_pending_auth;

static void pa_free(bk_pending_auth *pa)
{
    if (pa) {
        ep_auth_attrs_free(pa->attrs);
        free(pa);
    }
}

/* The method of a client the callout authenticated with its "auth" form:
 * the name is the client's, the exchange is one step (the API has no
 * challenge), and every answer comes from the callout, never from step. */
typedef struct bk_custom_method {
    ep_broker_auth_method m; /* c->auth->method points here; done frees it */
    char name[];
} bk_custom_method;

static ep_broker_auth_result custom_step(void *ud, void **state, const char *client_id,
                                         const uint8_t *in, size_t in_len, const uint8_t **out,
                                         size_t *out_len)
{
    (void)ud, (void)state, (void)client_id, (void)in, (void)in_len, (void)out, (void)out_len;
    return EP_BROKER_AUTH_FAIL;
}

static void custom_done(void *ud, void *state)
{
    (void)state;
    free(ud);
}

static ep_broker_auth_result scram_step(void *ud, void **state, const char *client_id,
                                        const uint8_t *in, size_t in_len, const uint8_t **out,
                                        size_t *out_len)
{
    return (ep_broker_auth_result)ep_scram_server_step(ud, state, client_id, in, in_len, out,
                                                       out_len);
}

static void scram_done(void *ud, void *state) { ep_scram_server_done(ud, state); }

static void report(ep_cfg_errs *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        EP_LOG_ERROR(BK_LOG, "%s", errs->items[i].text);
    ep_cfg_errs_fini(errs);
}

static ep_err init_callout(const ep_broker_custom_auth *cu, ep_callout **out)
{
    const char *headers[EP_BROKER_MAX_HEADERS];
    for (int i = 0; i < cu->n_headers; i++)
        headers[i] = cu->headers[i];
    ep_callout_opts o = {
        .endpoint = cu->endpoint,
        .allow_http = cu->allow_http,
        .ca_file = cu->ca_file[0] ? cu->ca_file : NULL,
        .client_cert = cu->client_cert[0] ? cu->client_cert : NULL,
        .client_key = cu->client_key[0] ? cu->client_key : NULL,
        .headers = headers,
        .n_headers = (size_t)cu->n_headers,
        .timeout_ms = cu->timeout_ms,
        .threads = cu->threads,
        .max_pending = cu->max_pending,
    };
    char why[160] = "";
    ep_err err = ep_callout_new(out, &o, why, sizeof(why));
    if (err)
        EP_LOG_ERROR(BK_LOG, "custom authentication %s: %s", cu->endpoint,
                     why[0] ? why : ep_strerror(err));
    if (err == EP_EOK && cu->allow_http && strncmp(cu->endpoint, "http://", 7) == 0)
        EP_LOG_WARN(BK_LOG, "custom authentication over plain http (%s): passwords travel in clear",
                    cu->endpoint);
    return err;
}

static ep_err init_x509map(const ep_broker_authn *a, ep_x509_map **out)
{
    ep_x509_map_entry e[EP_BROKER_MAX_X509_ATTRS];
    const char *kv[EP_BROKER_MAX_X509_ATTRS][EP_BROKER_MAX_ATTR_KV];
    for (int i = 0; i < a->n_x509_attrs; i++) {
        const ep_broker_x509_attrs *x = &a->x509_attrs[i];
        for (int k = 0; k < x->n_attrs; k++)
            kv[i][k] = x->attrs[k];
        e[i] = (ep_x509_map_entry){x->name, x->subject, kv[i], (size_t)x->n_attrs};
    }
    char why[200] = "";
    ep_err err = ep_x509_map_new(e, (size_t)a->n_x509_attrs, out, why, sizeof(why));
    if (err)
        EP_LOG_ERROR(BK_LOG, "x509_attributes of %s: %s", a->name, why);
    return err;
}

/* Runtime pieces of chain i that do not need the password file. */
static ep_err init_chain_extras(ep_broker *b, int i)
{
    const ep_broker_authn *a = &b->cfg.authn[i];
    if (a->n_x509_attrs > 0 && init_x509map(a, &b->authn_rt[i].x509map) != EP_EOK)
        return EP_ECONFIG;
    for (int k = 0; k < a->n_methods; k++)
        if (a->methods[k] == EP_BROKER_AUTHN_CUSTOM && b->authn_rt[i].callout == NULL &&
            init_callout(&a->custom, &b->authn_rt[i].callout) != EP_EOK)
            return EP_ECONFIG;
    return EP_EOK;
}

ep_err bk_auth_init(ep_broker *b)
{
    ep_cfg_errs errs = {0};
    bool need_verifier = false;
    for (int i = 0; i < b->cfg.n_authn; i++) {
        const ep_broker_authn *a = &b->cfg.authn[i];
        if (init_chain_extras(b, i) != EP_EOK)
            return EP_ECONFIG;
        if (a->password_file[0] == '\0')
            continue;
        if (ep_passwd_file_open(a->password_file, &b->authn_rt[i].pwf, &errs) != EP_EOK) {
            report(&errs);
            return EP_ECONFIG;
        }
        for (int k = 0; k < a->n_methods; k++) {
            if (a->methods[k] == EP_BROKER_AUTHN_PASSWORD)
                need_verifier = true;
            if (a->methods[k] == EP_BROKER_AUTHN_SCRAM && b->authn_rt[i].scram == NULL) {
                if (ep_scram_server_new_passwd(&b->authn_rt[i].scram, b->authn_rt[i].pwf))
                    return EP_ENOMEM;
                /* The broker finds enhanced methods by name: the first
                 * chain's SCRAM credentials serve every listener. */
                bool known = false;
                for (int m = 0; m < b->cfg.n_auth_methods; m++)
                    known = known || strcmp(b->cfg.auth_methods[m].name, "SCRAM-SHA-256") == 0;
                if (!known && b->cfg.n_auth_methods < EP_BROKER_MAX_AUTH_METHODS)
                    b->cfg.auth_methods[b->cfg.n_auth_methods++] = (ep_broker_auth_method){
                        "SCRAM-SHA-256", scram_step, scram_done, b->authn_rt[i].scram};
            }
        }
    }
    if (need_verifier && ep_auth_verifier_new(&b->verifier, NULL) != EP_EOK)
        return EP_ENOMEM;
    if (b->cfg.n_authn > 0 && ep_auth_rl_new(&b->rl, NULL) != EP_EOK)
        return EP_ENOMEM;
    for (int i = 0; i < b->cfg.n_authz; i++) {
        if (ep_authz_new(&b->authz_rt[i]) != EP_EOK)
            return EP_ENOMEM;
        if (ep_authz_load(b->authz_rt[i], b->cfg.authz[i].rules_file, &errs) != EP_EOK) {
            report(&errs);
            return EP_ECONFIG;
        }
    }
    return EP_EOK;
}

void bk_auth_fini(ep_broker *b)
{
    ep_auth_verifier_free(b->verifier);
    b->verifier = NULL;
    ep_auth_rl_free(b->rl);
    b->rl = NULL;
    for (int i = 0; i < EP_BROKER_MAX_CHAINS; i++) {
        ep_callout_free(b->authn_rt[i].callout);
        ep_x509_map_free(b->authn_rt[i].x509map);
        ep_scram_server_free(b->authn_rt[i].scram);
        ep_passwd_file_free(b->authn_rt[i].pwf);
        ep_authz_free(b->authz_rt[i]);
        memset(&b->authn_rt[i], 0, sizeof(b->authn_rt[i]));
        b->authz_rt[i] = NULL;
    }
}

void bk_auth_reload(ep_broker *b, bool force)
{
    ep_cfg_errs errs = {0};
    for (int i = 0; i < b->cfg.n_authn; i++) {
        bool changed = false;
        if (b->authn_rt[i].pwf == NULL)
            continue;
        if (ep_passwd_file_reload(b->authn_rt[i].pwf, force, &changed, &errs) != EP_EOK) {
            EP_LOG_ERROR(BK_LOG, "password file %s not reloaded, keeping the previous one:",
                         b->cfg.authn[i].password_file);
            report(&errs);
        } else if (changed) {
            EP_LOG_INFO(BK_LOG, "password file %s reloaded", b->cfg.authn[i].password_file);
        }
    }
    for (int i = 0; i < b->cfg.n_authz; i++) {
        if (ep_authz_load(b->authz_rt[i], b->cfg.authz[i].rules_file, &errs) != EP_EOK) {
            EP_LOG_ERROR(BK_LOG, "authorization rules %s not reloaded, keeping the previous ones:",
                         b->cfg.authz[i].rules_file);
            report(&errs);
        }
    }
}

static bool peer_addr(const bk_conn *c, ep_auth_rl_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0)
        return false;
    if (ss.ss_family == AF_INET)
        return ep_auth_rl_addr_from_bytes(&((struct sockaddr_in *)&ss)->sin_addr, 4, out) == EP_EOK;
    if (ss.ss_family == AF_INET6)
        return ep_auth_rl_addr_from_bytes(&((struct sockaddr_in6 *)&ss)->sin6_addr, 16, out) ==
               EP_EOK;
    return false;
}

static void set_username(bk_conn *c, const char *name, size_t len)
{
    free(c->username);
    c->username = NULL;
    if (name && (c->username = malloc(len + 1)) != NULL) {
        memcpy(c->username, name, len);
        c->username[len] = '\0';
    }
}

static ep_err refuse(bk_conn *c, ep_mqtt_rc rc, const char *why)
{
    ep_mqtt_packet p = {.type = EP_MQTT_CONNACK};
    p.connack.rc = rc;
    bk_conn_send_packet(c, &p);
    bk_conn_close(c, -1, why);
    return EP_EPERM;
}

static void failed(bk_conn *c, ep_mqtt_rc rc, const char *why)
{
    ep_broker *b = c->w->b;
    ep_auth_rl_addr addr;
    char peer[64];
    atomic_fetch_add_explicit(&b->auth_failures, 1, memory_order_relaxed);
    if (b->rl && peer_addr(c, &addr))
        ep_auth_rl_failure(b->rl, &addr, ep_loop_now(c->w->loop));
    if (ep_ratelimit_allow(&c->w->err_rl, ep_loop_now(c->w->loop)))
        EP_LOG_INFO(BK_LOG, "authentication of %s from %s failed: %s",
                    c->username ? c->username : "(no user name)",
                    bk_conn_peer(c, peer, sizeof(peer)), why);
    refuse(c, rc, why);
}

static void succeeded(bk_conn *c)
{
    ep_auth_rl_addr addr;
    c->authn_done = true;
    if (c->w->b->rl && peer_addr(c, &addr))
        ep_auth_rl_success(c->w->b->rl, &addr, ep_loop_now(c->w->loop));
}

static void on_verified(ep_loop *loop, void *arg, ep_err result)
{
    bk_pending_auth *pa = arg;
    bk_conn *c = pa->c;
    (void)loop;
    free(pa);
    if (c == NULL)
        return; /* the connection closed while the check ran */
    c->pending = NULL;
    if (result != EP_EOK) {
        failed(c, EP_MQTT_RC_BAD_USER_NAME_OR_PASSWORD, "bad user name or password");
        return;
    }
    succeeded(c);
    bk_conn_resume(c);
}

static ep_err check_password(bk_conn *c, const ep_mqtt_connect *cn, ep_passwd_file *pwf)
{
    ep_broker *b = c->w->b;
    set_username(c, (const char *)cn->username.p, cn->username.len);
    if (pwf == NULL || b->verifier == NULL) {
        failed(c, EP_MQTT_RC_NOT_AUTHORIZED, "no password file");
        return EP_EPERM;
    }
    ep_passwd *pw = ep_passwd_file_get(pwf);
    const void *pass = cn->has_password ? (const void *)cn->password.p : (const void *)"";
    size_t plen = cn->has_password ? cn->password.len : 0;
    ep_err err =
        ep_auth_verifier_cached(b->verifier, pw, cn->username.p, cn->username.len, pass, plen);
    if (err == EP_EOK) {
        ep_passwd_unref(pw);
        succeeded(c);
        return EP_EOK;
    }
    bk_pending_auth *pa = calloc(1, sizeof(*pa));
    if (pa == NULL) {
        ep_passwd_unref(pw);
        return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
    }
    pa->c = c;
    err = ep_auth_verifier_submit(b->verifier, pw, cn->username.p, cn->username.len, pass, plen,
                                  c->w->loop, on_verified, pa, &pa->req);
    ep_passwd_unref(pw);
    if (err) {
        free(pa);
        if (err == EP_ETOOBIG) { /* longer than any entry of the file can be */
            failed(c, EP_MQTT_RC_BAD_USER_NAME_OR_PASSWORD, "user name or password too long");
            return EP_EPERM;
        }
        if (err == EP_EFULL)
            return refuse(c, EP_MQTT_RC_SERVER_BUSY, "too many logins being checked");
        return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "password check failed to start");
    }
    c->pending = pa;
    bk_conn_pause(c);
    return EP_EAGAIN;
}

static ep_err x509_accept(bk_conn *c, const char *cn, const ep_x509_map *map)
{
    uint64_t now = ep_loop_now(c->w->loop);
    set_username(c, cn, strlen(cn));
    long long na = ep_tls_peer_not_after(c->tls);
    long long left = na - (long long)(ep_clock_wall_ms() / 1000u);
    c->cred_expiry_ms = now + (left > 0 ? (uint64_t)left * 1000u : 0);
    const char *matched = NULL;
    ep_auth_attrs_free(c->attrs);
    c->attrs = NULL;
    if (ep_x509_map_match(map, ep_tls_peer_chain(c->tls), &c->attrs, &matched) != EP_EOK)
        return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
    if (matched)
        EP_LOG_DEBUG(BK_LOG, "certificate of %s: attributes of mapping %s", cn, matched);
    succeeded(c);
    return EP_EOK;
}

static void callout_allowed(bk_conn *c, ep_callout_result *res)
{
    ep_auth_attrs_free(c->attrs);
    c->attrs = res->attrs; /* taken over */
    res->attrs = NULL;
    if (res->expiry_ms > 0) {
        int64_t left = res->expiry_ms - (int64_t)ep_clock_wall_ms();
        c->cred_expiry_ms = ep_loop_now(c->w->loop) + (left > 1 ? (uint64_t)left : 1);
    }
    succeeded(c);
}

/* A re-authentication's answer is kept in pa; the AUTH packet, still in
 * the input, is handled again and applies it (bk_auth_custom_reauth). */
static void reauth_answered(bk_conn *c, bk_pending_auth *pa, ep_callout_result *res)
{
    pa->done = true;
    pa->verdict = res->verdict;
    pa->reason = res->reason;
    pa->expiry_ms = res->expiry_ms;
    pa->attrs = res->attrs;
    res->attrs = NULL;
    snprintf(pa->message, sizeof(pa->message), "%.*s", (int)sizeof(pa->message) - 1, res->message);
    bk_conn_resume(c);
}

static void on_callout(ep_loop *loop, void *arg, ep_callout_result *res)
{
    bk_pending_auth *pa = arg;
    bk_conn *c = pa->c;
    (void)loop;
    if (c == NULL) {
        pa_free(pa);
        return; /* the connection closed while the server was asked */
    }
    if (pa->reauth) {
        reauth_answered(c, pa, res);
        return;
    }
    c->pending = NULL;
    switch (res->verdict) {
    case EP_CALLOUT_ALLOW:
        callout_allowed(c, res);
        if (pa->enhanced) { /* bk_auth_custom_attach takes the method */
            pa->done = true;
            c->pending = pa;
            pa = NULL;
        }
        break;
    case EP_CALLOUT_DENY:
        pa_free(pa);
        failed(c, (ep_mqtt_rc)res->reason, res->message);
        return;
    default:
        if (ep_ratelimit_allow(&c->w->err_rl, ep_loop_now(c->w->loop)))
            EP_LOG_WARN(BK_LOG,
                        "custom authentication server not reachable (%s); trying the "
                        "next method",
                        res->message);
        c->authn_next = (uint8_t)(pa->method_idx + 1);
        break;
    }
    pa_free(pa);
    bk_conn_resume(c);
}

/* Queues a callout for c and pauses it. Returns EP_EAGAIN, or EP_EFULL /
 * another error (nothing queued; the caller answers the client). */
static ep_err submit_callout(bk_conn *c, const ep_callout_creds *cr, ep_callout *co, int idx,
                             bool reauth)
{
    bk_pending_auth *pa = calloc(1, sizeof(*pa));
    ep_err err = pa ? ep_callout_submit(co, cr, c->w->loop, on_callout, pa, &pa->req) : EP_ENOMEM;
    if (err) {
        free(pa);
        return err;
    }
    pa->c = c;
    pa->callout = co;
    pa->method_idx = (uint8_t)idx;
    pa->enhanced = cr->auth_method != NULL;
    pa->reauth = reauth;
    c->pending = pa;
    bk_conn_pause(c);
    return EP_EAGAIN;
}

static ep_err callout_refused(bk_conn *c, ep_err err)
{
    if (err == EP_EFULL)
        return refuse(c, EP_MQTT_RC_SERVER_BUSY, "too many custom authentication callouts");
    return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "custom authentication failed to start");
}

static ep_err start_callout(bk_conn *c, const ep_mqtt_connect *cn, ep_callout *co, int idx)
{
    if (cn->has_username)
        set_username(c, (const char *)cn->username.p, cn->username.len);
    char *pem = NULL;
    struct stack_st_X509 *chain = c->tls ? ep_tls_peer_chain(c->tls) : NULL;
    if (co == NULL || (chain && ep_x509_chain_pem(chain, &pem) != EP_EOK))
        return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "custom authentication not available");
    ep_callout_creds cr = {
        .username = cn->has_username ? (const char *)cn->username.p : NULL,
        .ulen = cn->username.len,
        .password = cn->has_password ? (const void *)cn->password.p : NULL,
        .plen = cn->password.len,
        .certs_pem = pem,
    };
    ep_err err = submit_callout(c, &cr, co, idx, false);
    free(pem);
    return err == EP_EAGAIN ? err : callout_refused(c, err);
}

/* The "auth" form for a CONNECT with an Authentication Method (MQTT 5). */
static ep_err start_enhanced(bk_conn *c, const ep_mqtt_connect *cn, ep_callout *co, int idx)
{
    if (cn->has_username)
        set_username(c, (const char *)cn->username.p, cn->username.len);
    if (co == NULL)
        return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "custom authentication not available");
    bool has_data = EP_MQTT_PROPS_HAS(&cn->props, EP_MQTT_PROP_AUTHENTICATION_DATA);
    ep_callout_creds cr = {
        .auth_method = (const char *)cn->props.authentication_method.p,
        .mlen = cn->props.authentication_method.len,
        .auth_data = has_data ? (const void *)cn->props.authentication_data.p : NULL,
        .dlen = has_data ? cn->props.authentication_data.len : 0,
    };
    ep_err err = submit_callout(c, &cr, co, idx, false);
    return err == EP_EAGAIN ? err : callout_refused(c, err);
}

static bool chain_has(const ep_broker_authn *a, int method)
{
    for (int i = 0; i < a->n_methods; i++)
        if (a->methods[i] == method)
            return true;
    return false;
}

bool bk_auth_method_allowed(const bk_conn *c, const char *method)
{
    const ep_broker_listener *li = &c->w->b->cfg.listeners[c->listener];
    if (li->authn == 0)
        return true;
    if (strcmp(method, "SCRAM-SHA-256") == 0)
        return chain_has(&c->w->b->cfg.authn[li->authn - 1], EP_BROKER_AUTHN_SCRAM);
    return false;
}

static ep_err authenticate(bk_conn *c, const ep_mqtt_connect *cn)
{
    ep_broker *b = c->w->b;
    const ep_broker_listener *li = &b->cfg.listeners[c->listener];
    const ep_broker_authn *chain = &b->cfg.authn[li->authn - 1];
    uint64_t now = ep_loop_now(c->w->loop);
    ep_auth_rl_addr addr;
    if (b->rl && peer_addr(c, &addr) && !ep_auth_rl_allow(b->rl, &addr, now, NULL))
        return refuse(c, EP_MQTT_RC_CONNECTION_RATE_EXCEEDED,
                      "too many failed logins from this address; try later");
    if (c->auth && c->auth->ok) {
        /* Enhanced authentication already succeeded (SCRAM). */
        const char *user = ep_scram_server_username(c->auth->state);
        set_username(c, user, user ? strlen(user) : 0);
        succeeded(c);
        return EP_EOK;
    }
    bool has_method = EP_MQTT_PROPS_HAS(&cn->props, EP_MQTT_PROP_AUTHENTICATION_METHOD);
    for (int i = c->authn_next; i < chain->n_methods; i++) {
        char cnbuf[256];
        switch (chain->methods[i]) {
        case EP_BROKER_AUTHN_X509:
            if (c->tls && ep_tls_peer_cn(c->tls, cnbuf, sizeof(cnbuf)))
                return x509_accept(c, cnbuf, b->authn_rt[li->authn - 1].x509map);
            break;
        case EP_BROKER_AUTHN_CUSTOM:
            if (has_method)
                return start_enhanced(c, cn, b->authn_rt[li->authn - 1].callout, i);
            return start_callout(c, cn, b->authn_rt[li->authn - 1].callout, i);
        case EP_BROKER_AUTHN_PASSWORD:
            if (cn->has_username && !has_method)
                return check_password(c, cn, b->authn_rt[li->authn - 1].pwf);
            break;
        default:
            break; /* SCRAM is relevant only with its CONNECT method, handled before */
        }
    }
    failed(c, EP_MQTT_RC_NOT_AUTHORIZED, "no authentication method of this listener applies");
    return EP_EPERM;
}

static ep_authz_principal principal(const bk_conn *c, const char *client_id)
{
    return (ep_authz_principal){
        .client_id = client_id,
        .username = c->username,
        .attrs = c->attrs ? c->attrs->items : NULL,
        .n_attrs = c->attrs ? c->attrs->n : 0,
    };
}

ep_err bk_auth_connect(bk_conn *c, const ep_mqtt_connect *cn, ep_mqtt_slice cid)
{
    ep_broker *b = c->w->b;
    const ep_broker_listener *li = &b->cfg.listeners[c->listener];
    if (!c->authn_done) {
        if (li->authn == 0) {
            if (cn->has_username)
                set_username(c, (const char *)cn->username.p, cn->username.len);
            c->authn_done = true;
        } else {
            ep_err err = authenticate(c, cn);
            if (err)
                return err;
        }
    }
    if (li->authz && c->authz == NULL) {
        char id[300];
        snprintf(id, sizeof(id), "%.*s", (int)cid.len, (const char *)cid.p);
        ep_authz_rules *rules = ep_authz_get(b->authz_rt[li->authz - 1]);
        ep_authz_principal p = principal(c, id);
        ep_err err = ep_authz_session_new(rules, &p, &c->authz);
        ep_authz_rules_unref(rules);
        if (err)
            return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
        if (!ep_authz_session_allows(c->authz, EP_AUTHZ_CONNECT, NULL, 0)) {
            atomic_fetch_add_explicit(&b->authz_denied, 1, memory_order_relaxed);
            return refuse(c, EP_MQTT_RC_NOT_AUTHORIZED, "not authorized to connect");
        }
    }
    return EP_EOK;
}

/* Rules reloaded since this connection's grants were compiled: recompile
 * so a hot reload applies to connected clients too. */
static void refresh_authz(bk_conn *c)
{
    ep_authz *az = c->w->b->authz_rt[c->w->b->cfg.listeners[c->listener].authz - 1];
    if (ep_authz_generation(az) == ep_authz_session_generation(c->authz))
        return;
    ep_authz_rules *rules = ep_authz_get(az);
    ep_authz_principal p = principal(c, c->s ? c->s->client_id : "");
    ep_authz_session *fresh = NULL;
    if (ep_authz_session_new(rules, &p, &fresh) == EP_EOK) {
        ep_authz_session_free(c->authz);
        c->authz = fresh;
    }
    ep_authz_rules_unref(rules);
}

bool bk_authz_allows(bk_conn *c, int action, ep_mqtt_slice topic)
{
    if (c->authz == NULL)
        return true;
    refresh_authz(c);
    bool ok = ep_authz_session_allows(c->authz, (ep_authz_action)action, (const char *)topic.p,
                                      topic.len);
    if (!ok)
        atomic_fetch_add_explicit(&c->w->b->authz_denied, 1, memory_order_relaxed);
    return ok;
}

void bk_auth_conn_free(bk_conn *c)
{
    if (c->pending) {
        bk_pending_auth *pa = c->pending;
        ep_err cerr = pa->done      ? EP_EOK
                      : pa->callout ? ep_callout_cancel(pa->callout, pa->req)
                                    : ep_auth_verifier_cancel(c->w->b->verifier, pa->req);
        if (cerr == EP_EOK)
            pa_free(pa);
        else
            pa->c = NULL; /* the callback is on its way and frees it */
        c->pending = NULL;
    }
    ep_authz_session_free(c->authz);
    c->authz = NULL;
    free(c->username);
    c->username = NULL;
    ep_auth_attrs_free(c->attrs);
    c->attrs = NULL;
}

/* ---- custom authentication for MQTT 5 enhanced authentication ---- */

bool bk_auth_custom_relevant(const bk_conn *c)
{
    const ep_broker_listener *li = &c->w->b->cfg.listeners[c->listener];
    return li->authn != 0 && chain_has(&c->w->b->cfg.authn[li->authn - 1], EP_BROKER_AUTHN_CUSTOM);
}

bool bk_auth_is_custom(const bk_conn *c) { return c->auth && c->auth->method->step == custom_step; }

ep_err bk_auth_custom_attach(bk_conn *c, const ep_mqtt_connect *cn)
{
    bk_pending_auth *pa = c->pending;
    if (pa == NULL || !pa->done || !pa->enhanced || c->auth != NULL)
        return EP_EOK;
    c->pending = NULL;
    pa_free(pa);
    ep_mqtt_slice m = cn->props.authentication_method;
    bk_custom_method *cm = calloc(1, sizeof(*cm) + m.len + 1);
    c->auth = cm ? calloc(1, sizeof(*c->auth)) : NULL;
    if (c->auth == NULL) {
        free(cm);
        return refuse(c, EP_MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
    }
    memcpy(cm->name, m.p, m.len);
    cm->m = (ep_broker_auth_method){cm->name, custom_step, custom_done, cm};
    c->auth->method = &cm->m;
    c->auth->ok = true;
    return EP_EOK;
}

/* A 403's reason is a CONNACK code; DISCONNECT allows fewer (MQTT 5
 * section 3.14.2.1): the refusals valid in both pass, others become 0x87
 * Not authorized. */
static ep_mqtt_rc disconnect_reason(uint8_t r)
{
    static const uint8_t ok[] = {0x80, 0x83, 0x87, 0x89, 0x97, 0x9C, 0x9D, 0x9F};
    for (size_t i = 0; i < sizeof(ok); i++)
        if (ok[i] == r)
            return (ep_mqtt_rc)r;
    return EP_MQTT_RC_NOT_AUTHORIZED;
}

/* New attributes: the connection's grants are compiled again from them. */
static ep_err regrant(bk_conn *c)
{
    ep_broker *b = c->w->b;
    const ep_broker_listener *li = &b->cfg.listeners[c->listener];
    if (li->authz == 0)
        return EP_EOK;
    ep_authz_rules *rules = ep_authz_get(b->authz_rt[li->authz - 1]);
    ep_authz_principal p = principal(c, c->s ? c->s->client_id : "");
    ep_authz_session *fresh = NULL;
    ep_err err = ep_authz_session_new(rules, &p, &fresh);
    ep_authz_rules_unref(rules);
    if (err)
        return err;
    ep_authz_session_free(c->authz);
    c->authz = fresh;
    if (!ep_authz_session_allows(c->authz, EP_AUTHZ_CONNECT, NULL, 0)) {
        atomic_fetch_add_explicit(&b->authz_denied, 1, memory_order_relaxed);
        return EP_EPERM;
    }
    return EP_EOK;
}

static ep_err reauth_allowed(bk_conn *c, bk_pending_auth *pa)
{
    ep_auth_attrs_free(c->attrs);
    c->attrs = pa->attrs; /* the new attributes and expiry replace the old */
    pa->attrs = NULL;
    c->cred_expiry_ms = 0;
    if (pa->expiry_ms > 0) {
        int64_t left = pa->expiry_ms - (int64_t)ep_clock_wall_ms();
        c->cred_expiry_ms = ep_loop_now(c->w->loop) + (left > 1 ? (uint64_t)left : 1);
    }
    ep_err err = regrant(c);
    if (err) {
        bk_conn_close(c, err == EP_EPERM ? EP_MQTT_RC_NOT_AUTHORIZED : EP_MQTT_RC_UNSPECIFIED_ERROR,
                      err == EP_EPERM ? "not authorized to connect" : "out of memory");
        return err;
    }
    c->auth->ok = true;
    /* no Authentication Data: the callout's c->auth keeps out_len 0 */
    bk_send_auth(c, EP_MQTT_RC_SUCCESS);
    bk_conn_arm_timer(c);
    return EP_EOK;
}

static void reauth_denied(bk_conn *c, const bk_pending_auth *pa)
{
    char peer[64];
    atomic_fetch_add_explicit(&c->w->b->auth_failures, 1, memory_order_relaxed);
    if (ep_ratelimit_allow(&c->w->err_rl, ep_loop_now(c->w->loop)))
        EP_LOG_INFO(BK_LOG, "re-authentication of %s from %s refused: %s",
                    c->s ? c->s->client_id : "-", bk_conn_peer(c, peer, sizeof(peer)), pa->message);
    bk_conn_close(c, disconnect_reason(pa->reason),
                  pa->message[0] ? pa->message : "re-authentication failed");
}

/* The server could not be asked: as the reference, ContinueAuthentication.
 * The exchange stays open (the client may send AUTH 0x18 again) and the
 * credentials granted before keep applying until their expiry. */
static void reauth_transient(bk_conn *c, const char *why)
{
    if (ep_ratelimit_allow(&c->w->err_rl, ep_loop_now(c->w->loop)))
        EP_LOG_WARN(BK_LOG,
                    "re-authentication of %s: custom authentication server not "
                    "reachable (%s); answered ContinueAuthentication",
                    c->s ? c->s->client_id : "-", why);
    c->auth->ok = false;
    bk_send_auth(c, EP_MQTT_RC_CONTINUE_AUTHENTICATION);
}

static ep_err reauth_apply(bk_conn *c, bk_pending_auth *pa)
{
    ep_err err = EP_EOK;
    c->pending = NULL;
    if (pa->verdict == EP_CALLOUT_ALLOW) {
        err = reauth_allowed(c, pa);
    } else if (pa->verdict == EP_CALLOUT_DENY) {
        reauth_denied(c, pa);
        err = EP_EPERM;
    } else {
        reauth_transient(c, pa->message);
    }
    pa_free(pa);
    return err;
}

ep_err bk_auth_custom_reauth(bk_conn *c, const ep_mqtt_auth *a)
{
    bk_pending_auth *pa = c->pending;
    if (pa && pa->done)
        return reauth_apply(c, pa); /* the AUTH handled again, with the answer */
    const char *name = c->auth->method->name;
    ep_mqtt_rc want = c->auth->ok ? EP_MQTT_RC_REAUTHENTICATE : EP_MQTT_RC_CONTINUE_AUTHENTICATION;
    if (pa || a->rc != want ||
        !ep_mqtt_slice_eq(a->props.authentication_method, ep_mqtt_slice_make(name, strlen(name)))) {
        bk_conn_close(c, EP_MQTT_RC_PROTOCOL_ERROR, "unexpected AUTH");
        return EP_EPROTO;
    }
    const ep_broker_listener *li = &c->w->b->cfg.listeners[c->listener];
    ep_callout *co = li->authn ? c->w->b->authn_rt[li->authn - 1].callout : NULL;
    bool has_data = EP_MQTT_PROPS_HAS(&a->props, EP_MQTT_PROP_AUTHENTICATION_DATA);
    ep_callout_creds cr = {
        .auth_method = name,
        .mlen = strlen(name),
        .auth_data = has_data ? (const void *)a->props.authentication_data.p : NULL,
        .dlen = has_data ? a->props.authentication_data.len : 0,
    };
    ep_err err = co ? submit_callout(c, &cr, co, 0, true) : EP_ECLOSED;
    if (err != EP_EAGAIN)
        reauth_transient(c, err == EP_EFULL ? "too many callouts" : ep_strerror(err));
    return EP_EOK;
}
