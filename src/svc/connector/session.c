/*
 * session.c - OPC UA sessions of the connector.
 *
 * By default each asset has its own session (as the reference does); with
 * additionalConfiguration.shared the assets of one endpoint profile share
 * one. A session is an ep_uac plus what the connector needs around it:
 *
 *  - The first connection is retried here, every reconnectPeriod with
 *    exponential backoff up to reconnectExponentialBackOff: the client
 *    itself retries only connections that once succeeded. This is also the
 *    trust workflow: a refused server certificate lands in the PKI's
 *    rejected/ folder, `edgeplane opcua trust NAME --pki DIR` moves it to
 *    trusted/, the PKI notices the change at the next validation and the
 *    next retry succeeds - no restart.
 *  - Secrets (user name, password, certificate files) are read from the
 *    secrets directory at every attempt, so a rotated password is used
 *    without a restart. Secret names are plain file names: a resource
 *    (which anyone allowed to publish on the resource topics can write)
 *    cannot make the connector read an arbitrary file.
 *  - The PKI (one application certificate for every session, as the
 *    reference) is opened on first need; profiles with
 *    autoAcceptUntrustedServerCertificates use a second handle on the same
 *    folder that trusts every server.
 *  - On connect the server's ApplicationUri (Server_ServerArray[0]) is read
 *    once: it is the CloudEvents `source` of every message.
 *
 * A session being closed (last asset detached, or shutdown) is kept until
 * its CloseSession completed, flagged `closing` so that no callback acts
 * on it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/opcua/gen/attributes.h"
#include "codec/opcua/gen/nodeids.h"
#include "core/log.h"
#include "svc/connector/conn_int.h"

static void sess_connect(conn_session *s);

const char *ep_conn__session_source(const conn_session *s)
{
    if (s->source)
        return s->source;
    return s->p ? s->p->target_address : "";
}

static void for_assets(conn_session *s, void (*fn)(conn_asset *a, const char *why), const char *why)
{
    for (conn_asset *a = s->cn->assets; a; a = a->next)
        if (a->sess == s)
            fn(a, why);
}

static void asset_up(conn_asset *a, const char *why)
{
    (void)why;
    ep_conn__asset_session_up(a);
}

/* ------------------------------------------------------------------ */
/* secrets and PKI                                                     */

static int read_secret(const ep_connector *cn, const char *name, char **out, char *err, size_t errn)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", cn->o.secrets_dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errn, "secret %.64s: cannot read %.300s: %.100s", name, path,
                 strerror(errno));
        return -1;
    }
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = 0;
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = 0;
    *out = strdup(buf);
    memset(buf, 0, sizeof(buf));
    return *out ? 0 : -1;
}

static ep_ua_pki *get_pki(ep_connector *cn, bool auto_accept, char *err, size_t errn)
{
    ep_ua_pki **slot = auto_accept ? &cn->pki_auto : &cn->pki;
    if (*slot != NULL)
        return *slot; /* opened before */
    char def[PATH_MAX];
    const char *dir = cn->o.pki_dir;
    if (dir == NULL) {
        const char *home = getenv("HOME");
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%.4000s/.edgeplane", home ? home : ".");
        mkdir(parent, 0700);
        snprintf(def, sizeof(def), "%.4000s/connector-pki", parent);
        dir = def;
    }
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    char uri[400];
    snprintf(uri, sizeof(uri), "urn:%s:edgeplane:connector", host);
    ep_ua_pki_opts po;
    memset(&po, 0, sizeof(po));
    po.app_name = "edgeplane OPC UA connector";
    po.app_uri = uri;
    po.auto_accept = auto_accept;
    char detail[512] = "";
    ep_err rc = ep_ua_pki_open(dir, &po, slot, detail, sizeof(detail));
    if (rc != EP_EOK) {
        snprintf(err, errn, "PKI %.200s: %.280s", dir, detail[0] ? detail : ep_strerror(rc));
        *slot = NULL;
    }
    return *slot;
}

/* ------------------------------------------------------------------ */
/* connection                                                          */

static void schedule_retry(conn_session *s)
{
    const ep_conn_profile *p = s->p;
    uint32_t lo = p->reconnect_period_ms ? p->reconnect_period_ms : 2000;
    uint32_t hi = p->reconnect_backoff_ms > (int64_t)lo ? (uint32_t)p->reconnect_backoff_ms : lo;
    if (s->retry_ms < lo)
        s->retry_ms = lo;
    s->state = SESS_IDLE;
    ep_timer_start(&s->retry, s->retry_ms);
    s->retry_ms = s->retry_ms * 2 > hi ? hi : s->retry_ms * 2;
}

static void asset_down(conn_asset *a, const char *why) { ep_conn__asset_session_down(a, why); }

static void on_server_array(ep_uac *c, ep_err err, ep_ua_status st, const void *resp, void *ud)
{
    (void)c;
    (void)st;
    conn_session *s = ud;
    if (err != EP_EOK || s->closing)
        return;
    const ep_ua_read_response *r = resp;
    if (r->results_len < 1)
        return;
    const ep_ua_variant *v = &r->results[0].value;
    if (v->type && v->type->kind == EP_UA_KIND_STRING && v->is_array && v->array_len > 0 &&
        v->data) {
        const ep_ua_string *str = v->data;
        if (str->data && str->len > 0 && str->len < 1024) {
            free(s->source);
            s->source = strndup((const char *)str->data, str->len);
        }
    }
}

static void on_state(ep_uac *c, ep_uac_state st, ep_err err, void *ud)
{
    conn_session *s = ud;
    if (s->closing)
        return;
    if (st == EP_UAC_CONNECTED) {
        bool was = s->state == SESS_RECONNECTING;
        s->state = SESS_CONNECTED;
        s->retry_ms = 0;
        s->error[0] = 0;
        EP_LOG_INFO(CONN_LOG, "session %s: %s %s", s->key, was ? "reconnected to" : "connected to",
                    s->p->target_address);
        if (s->source == NULL) {
            ep_ua_read_value_id rv;
            memset(&rv, 0, sizeof(rv));
            rv.node_id = ep_ua_nodeid_numeric(0, EP_UA_NS0_Server_ServerArray);
            rv.attribute_id = EP_UA_ATTR_Value;
            ep_uac_read(c, 1, &rv, EP_UA_TIMESTAMPS_TO_RETURN_NEITHER, on_server_array, s);
        }
        for_assets(s, asset_up, NULL);
    } else if (st == EP_UAC_RECONNECTING && s->state == SESS_CONNECTED) {
        s->state = SESS_RECONNECTING;
        s->reconnects++;
        const char *why = ep_uac_last_error(c);
        snprintf(s->error, sizeof(s->error), "connection lost: %s",
                 why && why[0] ? why : ep_strerror(err));
        for_assets(s, asset_down, s->error);
    }
}

static void on_connected(ep_uac *c, ep_err err, ep_ua_status st, void *ud)
{
    conn_session *s = ud;
    if (s->closing || err == EP_EOK)
        return;
    const char *why = ep_uac_last_error(c);
    snprintf(s->error, sizeof(s->error), "cannot connect to %s: %s%s%s", s->p->target_address,
             why && why[0] ? why : ep_strerror(err),
             st && (!why || !strstr(why, ep_ua_status_name(st))) ? " " : "",
             st && (!why || !strstr(why, ep_ua_status_name(st))) ? ep_ua_status_name(st) : "");
    if (err == EP_ESECURITY && !s->p->auto_accept && strstr(s->error, "rejected") == NULL)
        strncat(s->error,
                " (if the server certificate was refused, trust it with "
                "`edgeplane opcua trust NAME --pki DIR`)",
                sizeof(s->error) - strlen(s->error) - 1);
    EP_LOG_WARN(CONN_LOG, "session %s: %s; retrying", s->key, s->error);
    for_assets(s, asset_down, s->error);
    schedule_retry(s);
}

static void free_uac(conn_session *s)
{
    if (s->uac) {
        ep_uac_free(s->uac);
        s->uac = NULL;
    }
    if (s->password) {
        memset(s->password, 0, strlen(s->password));
        free(s->password);
        s->password = NULL;
    }
    free(s->user);
    s->user = NULL;
}

static void sess_connect(conn_session *s)
{
    ep_connector *cn = s->cn;
    const ep_conn_profile *p = s->p;
    char err[512] = "";
    free_uac(s);
    ep_uac_opts o;
    memset(&o, 0, sizeof(o));
    o.url = p->target_address;
    o.policy = p->security_policy;
    o.mode = p->security_mode;
    bool secure = strcmp(p->security_policy, "None") != 0;
    if (p->auth_method == EP_CONN_AUTH_USERNAME) {
        if (read_secret(cn, p->username_secret, &s->user, err, sizeof(err)) != 0 ||
            read_secret(cn, p->password_secret, &s->password, err, sizeof(err)) != 0)
            goto fail;
        o.identity.kind = EP_UAC_ID_USERNAME;
        o.identity.user = s->user;
        o.identity.password = s->password;
    } else if (p->auth_method == EP_CONN_AUTH_CERTIFICATE) {
        char cert[PATH_MAX], key[PATH_MAX];
        snprintf(cert, sizeof(cert), "%s/%s", cn->o.secrets_dir, p->cert_secret);
        if (p->key_secret)
            snprintf(key, sizeof(key), "%s/%s", cn->o.secrets_dir, p->key_secret);
        else
            snprintf(key, sizeof(key), "%s/%s.key", cn->o.secrets_dir, p->cert_secret);
        if (access(cert, R_OK) != 0 || access(key, R_OK) != 0) {
            snprintf(err, sizeof(err), "secret %.64s: cannot read %.200s or %.200s", p->cert_secret,
                     cert, key);
            goto fail;
        }
        s->user = strdup(cert);
        s->password = strdup(key);
        o.identity.kind = EP_UAC_ID_X509;
        o.identity.cert_file = s->user;
        o.identity.key_file = s->password;
    }
    if (secure || p->auth_method != EP_CONN_AUTH_ANONYMOUS) {
        o.pki = get_pki(cn, p->auto_accept, err, sizeof(err));
        if (o.pki == NULL)
            goto fail;
    }
    o.app_name = p->application_name ? p->application_name : "edgeplane OPC UA connector";
    char sname[300];
    snprintf(sname, sizeof(sname), "edgeplane-connector/%s", s->key);
    o.session_name = sname;
    o.session_timeout_ms = p->session_timeout_ms;
    o.keepalive_ms = p->keepalive_ms;
    o.reconnect_min_ms = p->reconnect_period_ms;
    o.reconnect_max_ms = p->reconnect_backoff_ms > (int64_t)p->reconnect_period_ms
                             ? (uint32_t)p->reconnect_backoff_ms
                             : p->reconnect_period_ms;
    o.max_publish = 8;
    o.on_state = on_state;
    o.ud = s;
    ep_err rc = ep_uac_new(cn->loop, &o, &s->uac);
    if (rc != EP_EOK) {
        snprintf(err, sizeof(err), "cannot create an OPC UA client for %s: %s", p->target_address,
                 rc == EP_EINVAL ? "invalid address, policy or mode" : ep_strerror(rc));
        goto fail;
    }
    s->state = SESS_CONNECTING;
    rc = ep_uac_connect(s->uac, on_connected, s);
    if (rc != EP_EOK) {
        snprintf(err, sizeof(err), "cannot connect to %s: %s", p->target_address, ep_strerror(rc));
        goto fail;
    }
    return;
fail:
    snprintf(s->error, sizeof(s->error), "%s", err);
    EP_LOG_WARN(CONN_LOG, "session %s: %s; retrying", s->key, s->error);
    for_assets(s, asset_down, s->error);
    schedule_retry(s);
}

static void on_retry(ep_timer *t)
{
    conn_session *s = t->data;
    if (s->closing)
        return;
    if (s->uac && ep_uac_get_state(s->uac) == EP_UAC_DISCONNECTED && s->state == SESS_IDLE) {
        /* the same client again: it keeps the server certificate and
         * subscriptions records */
        s->state = SESS_CONNECTING;
        if (ep_uac_connect(s->uac, on_connected, s) == EP_EOK)
            return;
    }
    sess_connect(s);
}

/* ------------------------------------------------------------------ */
/* attach / detach                                                     */

conn_session *ep_conn__session_attach(ep_connector *cn, conn_asset *a, const conn_profile *pf)
{
    const ep_conn_profile *p = &pf->res->u.profile;
    char key[EP_CONN_NAME_MAX * 2 + 2];
    if (p->shared)
        snprintf(key, sizeof(key), "%s", pf->name);
    else
        snprintf(key, sizeof(key), "%s/%s", pf->name, a->name);
    for (conn_session *s = cn->sessions; s; s = s->next)
        if (!s->closing && s->p == p && strcmp(s->key, key) == 0) {
            s->nassets++;
            return s;
        }
    conn_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cn = cn;
    s->id = ++cn->next_id;
    s->key = strdup(key);
    s->profile = strdup(pf->name);
    s->p = p;
    s->nassets = 1;
    if (s->key == NULL || s->profile == NULL) {
        free(s->key);
        free(s->profile);
        free(s);
        return NULL;
    }
    ep_timer_init(cn->loop, &s->retry, on_retry, s);
    s->next = cn->sessions;
    cn->sessions = s;
    /* connect from the loop, after the caller has linked the asset */
    ep_timer_start(&s->retry, 0);
    s->state = SESS_IDLE;
    return s;
}

static void sess_unlink_free(conn_session *s)
{
    ep_connector *cn = s->cn;
    for (conn_session **pp = &cn->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    s->closing = true;
    s->dead = true;
    ep_timer_stop(&s->retry);
    free_uac(s);
    free(s->source);
    free(s->key);
    free(s->profile);
    free(s);
}

static void on_closed(ep_uac *c, ep_err err, ep_ua_status st, void *ud)
{
    (void)err;
    (void)st;
    conn_session *s = ud;
    if (s->dead)
        return;
    /* we are inside a client callback: free the client later */
    s->uac = NULL;
    ep_uac_free_deferred(c);
    sess_unlink_free(s);
}

static void sess_close(conn_session *s)
{
    if (s->closing)
        return;
    s->closing = true;
    ep_timer_stop(&s->retry);
    EP_LOG_INFO(CONN_LOG, "session %s: closing", s->key);
    if (s->uac && ep_uac_get_state(s->uac) == EP_UAC_CONNECTED &&
        ep_uac_disconnect(s->uac, on_closed, s) == EP_EOK)
        return;
    sess_unlink_free(s);
}

void ep_conn__session_detach(conn_session *s, conn_asset *a)
{
    (void)a;
    if (s == NULL)
        return;
    if (s->nassets > 0)
        s->nassets--;
    if (s->nassets == 0)
        sess_close(s);
}

void ep_conn__sessions_close_all(ep_connector *cn)
{
    /* first pass: graceful; sessions still closing after the loop ended
     * are freed abruptly by a second call */
    conn_session *s = cn->sessions;
    while (s) {
        conn_session *next = s->next;
        if (s->closing)
            sess_unlink_free(s);
        else
            sess_close(s);
        s = next;
    }
}
