/*
 * server.c - the OPC UA server: listener, request dispatch, Discovery
 * (GetEndpoints, FindServers) and Session services.
 *
 * Every request arrives through on_message with its body decoded in the
 * channel's arena; the response is built in the same arena and sent before
 * the callback returns (Publish is the exception: its request id and
 * handle are queued on the session and answered by a subscription later).
 *
 * Sessions are bound to the channel that activated them. When that channel
 * closes, the session lives on (its subscriptions keep sampling) until its
 * timeout, so a client may reconnect and ActivateSession on a new channel,
 * or TransferSubscriptions to a new session, without losing notifications
 * still held in the retransmission queues.
 *
 * Bad input never stops the server: a request that cannot be decoded gets
 * a ServiceFault, a broken channel is closed by the channel layer, and
 * every per-peer quantity (sessions, subscriptions, items, queued publish
 * requests, continuation points) is bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/opcua_crypto/cert.h"
#include "codec/opcua_crypto/crypto.h"
#include "core/clock.h"
#include "core/log.h"
#include "svc/opcua/server_int.h"

#define UA_TOKEN_ANON "anonymous"
#define UA_TOKEN_USER "username"
#define UA_TOKEN_X509 "certificate"

ep_ua_datetime ep_ua__now(void) { return ep_ua_datetime_from_unix_ms((int64_t)ep_clock_wall_ms()); }

void *ep_ua__alloc(ep_ua_arena *a, size_t n, size_t sz)
{
    void *p = NULL;
    if (n == 0)
        return EP_UA_EMPTY;
    if (sz && n > SIZE_MAX / sz)
        return NULL;
    if (ep_ua_arena_alloc(a, n * sz, &p) != EP_EOK)
        return NULL;
    return p;
}

void ep_ua__resp_header(ep_ua_response_header *h, uint32_t handle, ep_ua_status st)
{
    memset(h, 0, sizeof(*h));
    h->timestamp = ep_ua__now();
    h->request_handle = handle;
    h->service_result = st;
}

void ep_ua__send_fault(ep_ua_channel *ch, uint32_t request_id, uint32_t handle, ep_ua_status st)
{
    ep_ua_service_fault f;
    ep_ua__resp_header(&f.response_header, handle, st);
    ep_ua_channel_send(ch, request_id, EP_UA_T(ServiceFault), &f);
}

void ep_ua__send(ep_ua_channel *ch, uint32_t request_id, const ep_ua_type *type, void *body,
                 ep_ua_response_header *rh)
{
    ep_err e = ep_ua_channel_send(ch, request_id, type, body);
    if (e == EP_ETOOBIG)
        ep_ua__send_fault(ch, request_id, rh->request_handle, EP_UA_STATUS_BadResponseTooLarge);
    else if (e == EP_EINVAL)
        ep_ua__send_fault(ch, request_id, rh->request_handle, EP_UA_STATUS_BadEncodingError);
}

static bool str_eq(const ep_ua_string *s, const char *c)
{
    size_t n = strlen(c);
    return s->data && s->len == n && memcmp(s->data, c, n) == 0;
}

/* ------------------------------------------------------- endpoints -- */

static ep_ua_string estr(const char *s) { return ep_ua_string_from(s); }

static void app_desc(ep_ua_server *srv, ep_ua_application_description *d, ep_ua_arena *a)
{
    memset(d, 0, sizeof(*d));
    d->application_uri = estr(srv->app_uri);
    d->product_uri = estr(srv->product_uri);
    d->application_name.text = estr(srv->app_name);
    d->application_name.locale = EP_UA_STRING_LIT("en");
    d->application_type = EP_UA_APPLICATION_TYPE_SERVER;
    d->discovery_urls = ep_ua__alloc(a, 1, sizeof(ep_ua_string));
    if (d->discovery_urls) {
        d->discovery_urls_len = 1;
        d->discovery_urls[0] = estr(srv->url);
    }
}

/* Fills *out with every endpoint (arena-allocated). */
static size_t endpoints(ep_ua_server *srv, const char *url, ep_ua_endpoint_description **out,
                        ep_ua_arena *a)
{
    ep_ua_endpoint_description *e = ep_ua__alloc(a, 1 + 2 * (EP_UA_POLICY_COUNT - 1), sizeof(*e));
    if (e == NULL)
        return 0;
    size_t n = 0;
    ep_ua_bytestring cert = {0, NULL};
    if (srv->pki && ep_ua_pki_own_cert(srv->pki))
        cert.data = (uint8_t *)ep_ua_cert_der(ep_ua_pki_own_cert(srv->pki), &cert.len);
    /* user tokens under None are protected with the strongest secure
     * policy we offer, so a password never travels in clear */
    const ep_ua_policy *tok_pol = NULL;
    for (int p = EP_UA_POLICY_COUNT - 1; p > 0; p--)
        if (srv->policies & (1u << p))
            tok_pol = ep_ua_policy_get((ep_ua_policy_id)p);
    if (tok_pol == NULL || cert.data == NULL)
        tok_pol = NULL;
    for (int p = 0; p < EP_UA_POLICY_COUNT; p++) {
        if (!(srv->policies & (1u << p)))
            continue;
        const ep_ua_policy *pol = ep_ua_policy_get((ep_ua_policy_id)p);
        for (int mode = EP_UA_MESSAGE_SECURITY_MODE_NONE;
             mode <= EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT; mode++) {
            if ((p == EP_UA_POLICY_NONE) != (mode == EP_UA_MESSAGE_SECURITY_MODE_NONE))
                continue;
            ep_ua_endpoint_description *d = &e[n++];
            d->endpoint_url = estr(url);
            app_desc(srv, &d->server, a);
            d->server_certificate = cert;
            d->security_mode = mode;
            d->security_policy_uri = estr(pol->uri);
            d->transport_profile_uri = EP_UA_STRING_LIT(
                "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary");
            d->security_level = (uint8_t)(p == 0 ? 0 : mode * 10 + p);
            ep_ua_user_token_policy *t = ep_ua__alloc(a, 3, sizeof(*t));
            if (t == NULL)
                continue;
            size_t nt = 0;
            ep_ua_string tp = {0, NULL};
            if (p == EP_UA_POLICY_NONE && tok_pol)
                tp = estr(tok_pol->uri);
            if (!srv->no_anonymous) {
                t[nt].policy_id = EP_UA_STRING_LIT(UA_TOKEN_ANON);
                t[nt++].token_type = EP_UA_USER_TOKEN_TYPE_ANONYMOUS;
            }
            if (srv->nusers && (p != EP_UA_POLICY_NONE || tok_pol)) {
                t[nt].policy_id = EP_UA_STRING_LIT(UA_TOKEN_USER);
                t[nt].token_type = EP_UA_USER_TOKEN_TYPE_USER_NAME;
                t[nt++].security_policy_uri = tp;
            }
            if (srv->x509_users && (p != EP_UA_POLICY_NONE || tok_pol)) {
                t[nt].policy_id = EP_UA_STRING_LIT(UA_TOKEN_X509);
                t[nt].token_type = EP_UA_USER_TOKEN_TYPE_CERTIFICATE;
                t[nt++].security_policy_uri = tp;
            }
            d->user_identity_tokens = t;
            d->user_identity_tokens_len = nt;
        }
    }
    *out = e;
    return n;
}

static const char *client_url(ep_ua_server *srv, ep_ua_channel *ch, const ep_ua_string *req_url,
                              ep_ua_arena *a)
{
    (void)ch;
    (void)a;
    (void)req_url;
    return srv->url;
}

static void svc_get_endpoints(ep_ua_server *srv, ep_ua_channel *ch, const ep_ua_channel_msg *m)
{
    const ep_ua_get_endpoints_request *req = m->body;
    ep_ua_get_endpoints_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.endpoints_len =
        endpoints(srv, client_url(srv, ch, &req->endpoint_url, m->arena), &r.endpoints, m->arena);
    ep_ua__send(ch, m->request_id, EP_UA_T(GetEndpointsResponse), &r, &r.response_header);
}

static void svc_find_servers(ep_ua_server *srv, ep_ua_channel *ch, const ep_ua_channel_msg *m)
{
    const ep_ua_find_servers_request *req = m->body;
    ep_ua_find_servers_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    bool match = req->server_uris_len == 0;
    for (size_t i = 0; i < req->server_uris_len; i++)
        if (str_eq(&req->server_uris[i], srv->app_uri))
            match = true;
    r.servers = EP_UA_EMPTY;
    if (match) {
        r.servers = ep_ua__alloc(m->arena, 1, sizeof(*r.servers));
        if (r.servers) {
            app_desc(srv, r.servers, m->arena);
            r.servers_len = 1;
        }
    }
    ep_ua__send(ch, m->request_id, EP_UA_T(FindServersResponse), &r, &r.response_header);
}

/* ------------------------------------------------------- sessions -- */

static void session_timeout(ep_timer *t);

static ua_session *session_by_token(ep_ua_server *srv, const ep_ua_nodeid *tok)
{
    for (ua_session *s = srv->sessions; s; s = s->next)
        if (ep_ua_equal(&s->auth_token, tok, EP_UA_T(NodeId)))
            return s;
    return NULL;
}

static void session_release(ua_session *s)
{
    ep_timer_stop(&s->timer);
    free(s->pubs);
    free(s->client_cert);
    ep_ua_clear(&s->auth_token, EP_UA_T(NodeId));
    free(s);
}

/* Ends a session. With keep_subs (timeout, CloseSession with
 * deleteSubscriptions false) its subscriptions live on without a session,
 * sampling and counting down their lifetime, until a session of the same
 * user takes them with TransferSubscriptions (OPC 10000-4 6.7: a client
 * that finds its session gone creates a new one and transfers its
 * subscriptions) or the lifetime expires. The ended session stays as an
 * "orphan" holder, unknown to every session service. */
static void session_end(ep_ua_server *srv, ua_session *s, const char *why, bool keep_subs)
{
    for (ua_session **pp = &srv->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    srv->nsessions--;
    EP_LOG_INFO(UA_LOG, "session %u \"%s\" closed: %s", s->num, s->name, why);
    ep_timer_stop(&s->timer);
    if (keep_subs && s->subs) {
        unsigned n = 0;
        for (ua_sub *sub = s->subs; sub; sub = sub->next)
            n++;
        EP_LOG_INFO(UA_LOG,
                    "session %u: %u subscription(s) kept for transfer until their "
                    "lifetime ends",
                    s->num, n);
        ep_ua__session_detached(srv, s);
        s->ch = NULL;
        s->activated = false;
        s->orphan = true;
        s->next = srv->orphans;
        srv->orphans = s;
        return;
    }
    ep_ua__subs_delete_all(srv, s);
    session_release(s);
}

static void session_free(ep_ua_server *srv, ua_session *s, const char *why)
{
    session_end(srv, s, why, false);
}

void ep_ua__orphan_release(ep_ua_server *srv, ua_session *s)
{
    if (!s->orphan || s->subs)
        return;
    for (ua_session **pp = &srv->orphans; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    EP_LOG_DEBUG(UA_LOG, "session %u: no subscription left", s->num);
    session_release(s);
}

static void session_touch(ua_session *s) { ep_timer_start(&s->timer, s->timeout_ms); }

static void session_timeout(ep_timer *t)
{
    ua_session *s = t->data;
    session_end(s->srv, s, "timed out", true);
}

static ep_err sign_data(const ep_ua_policy *pol, const ep_ua_key *key, const uint8_t *a,
                        size_t alen, const uint8_t *b, size_t blen, ep_ua_signature_data *out,
                        ep_ua_arena *ar)
{
    memset(out, 0, sizeof(*out));
    if (ep_ua_policy_is_none(pol) || key == NULL)
        return EP_EOK;
    uint8_t *buf = ep_ua__alloc(ar, alen + blen, 1);
    size_t sl = ep_ua_asym_sig_size(pol, key);
    uint8_t *sig = ep_ua__alloc(ar, sl, 1);
    if (buf == NULL || sig == NULL)
        return EP_ENOMEM;
    if (alen)
        memcpy(buf, a, alen);
    if (blen)
        memcpy(buf + alen, b, blen);
    size_t got = 0;
    ep_err e = ep_ua_asym_sign(pol, key, buf, alen + blen, sig, sl, &got);
    if (e != EP_EOK)
        return e;
    out->algorithm = estr(pol->asym_sig_uri);
    out->signature.data = sig;
    out->signature.len = got;
    return EP_EOK;
}

static ep_err verify_data(const ep_ua_policy *pol, const ep_ua_key *key, const uint8_t *a,
                          size_t alen, const uint8_t *b, size_t blen,
                          const ep_ua_signature_data *sig)
{
    if (ep_ua_policy_is_none(pol))
        return EP_EOK;
    if (key == NULL || sig->signature.data == NULL)
        return EP_ESECURITY;
    uint8_t *buf = malloc(alen + blen + 1);
    if (buf == NULL)
        return EP_ENOMEM;
    if (alen)
        memcpy(buf, a, alen);
    if (blen)
        memcpy(buf + alen, b, blen);
    ep_err e =
        ep_ua_asym_verify(pol, key, buf, alen + blen, sig->signature.data, sig->signature.len);
    free(buf);
    return e;
}

static void new_nonce(uint8_t *out, size_t *len)
{
    const ep_ua_policy *p = ep_ua_policy_get(EP_UA_POLICY_BASIC256SHA256);
    if (ep_ua_nonce_generate(p, out, 32, len) != EP_EOK) {
        /* The CSPRNG failed: refuse to hand out a predictable nonce. */
        *len = 0;
    }
}

static void svc_create_session(ep_ua_server *srv, ep_ua_channel *ch, const ep_ua_channel_msg *m)
{
    const ep_ua_create_session_request *req = m->body;
    const ep_ua_policy *pol = ep_ua_channel_policy(ch);
    ep_ua_status st = EP_UA_STATUS_Good;
    if (srv->nsessions >= srv->lim.max_sessions)
        st = EP_UA_STATUS_BadTooManySessions;
    else if (!ep_ua_policy_is_none(pol) &&
             (req->client_nonce.len < 32 || req->client_certificate.data == NULL))
        st = req->client_nonce.len < 32 ? EP_UA_STATUS_BadNonceInvalid
                                        : EP_UA_STATUS_BadCertificateInvalid;
    size_t ccl = 0;
    const uint8_t *cc = ep_ua_channel_peer_cert(ch, &ccl);
    if (st == EP_UA_STATUS_Good && !ep_ua_policy_is_none(pol)) {
        /* The session certificate must be the channel's, and its URI the
         * application URI the client claims. */
        ep_ua_cert *c1 = NULL, *c2 = NULL;
        size_t u1, u2;
        if (ep_ua_cert_parse(req->client_certificate.data, req->client_certificate.len, &c1, &u1) !=
                EP_EOK ||
            ep_ua_cert_parse(cc, ccl, &c2, &u2) != EP_EOK || !ep_ua_cert_equal(c1, c2)) {
            st = EP_UA_STATUS_BadCertificateInvalid;
        } else {
            char uri[1024];
            size_t ul = req->client_description.application_uri.len;
            const char *cu = ep_ua_cert_app_uri(c1);
            if (ul >= sizeof(uri) || req->client_description.application_uri.data == NULL ||
                cu == NULL || strlen(cu) != ul ||
                memcmp(cu, req->client_description.application_uri.data, ul) != 0) {
                if (ul < sizeof(uri) && req->client_description.application_uri.data)
                    memcpy(uri, req->client_description.application_uri.data, ul);
                uri[ul < sizeof(uri) ? ul : 0] = 0;
                EP_LOG_WARN(UA_LOG,
                            "peer=%s CreateSession refused: certificate URI \"%s\" "
                            "does not match the application URI \"%s\"",
                            ep_ua_channel_peer(ch), cu ? cu : "", uri);
                st = EP_UA_STATUS_BadCertificateUriInvalid;
            }
        }
        ep_ua_cert_free(c1);
        ep_ua_cert_free(c2);
    }
    ua_session *s = NULL;
    if (st == EP_UA_STATUS_Good) {
        s = calloc(1, sizeof(*s));
        if (s)
            s->pubs = calloc(srv->lim.max_publish_per_session, sizeof(*s->pubs));
        if (s == NULL || s->pubs == NULL) {
            if (s)
                free(s);
            s = NULL;
            st = EP_UA_STATUS_BadOutOfMemory;
        }
    }
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    s->srv = srv;
    s->num = ++srv->next_session;
    s->ch = ch;
    s->session_id = ep_ua_nodeid_numeric(1, s->num);
    s->auth_token.ns = 1;
    s->auth_token.id_type = EP_UA_NODEID_GUID;
    uint8_t rnd[32];
    size_t rl = 0;
    new_nonce(rnd, &rl);
    memcpy(&s->auth_token.id.guid, rnd, sizeof(s->auth_token.id.guid));
    snprintf(s->name, sizeof(s->name), "%.*s",
             (int)(req->session_name.len > 100 ? 100 : req->session_name.len),
             req->session_name.data ? (const char *)req->session_name.data : "");
    double to = req->requested_session_timeout;
    if (!(to >= 10000))
        to = 10000;
    if (to > srv->lim.max_session_timeout_ms)
        to = srv->lim.max_session_timeout_ms;
    s->timeout_ms = (uint32_t)to;
    new_nonce(s->nonce, &s->nonce_len);
    if (req->client_certificate.data && req->client_certificate.len) {
        s->client_cert = malloc(req->client_certificate.len);
        if (s->client_cert) {
            memcpy(s->client_cert, req->client_certificate.data, req->client_certificate.len);
            s->client_cert_len = req->client_certificate.len;
        }
    }
    ep_timer_init(srv->loop, &s->timer, session_timeout, s);
    session_touch(s);
    s->next = srv->sessions;
    srv->sessions = s;
    srv->nsessions++;

    ep_ua_create_session_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.session_id = s->session_id;
    r.authentication_token = s->auth_token;
    r.revised_session_timeout = s->timeout_ms;
    r.server_nonce.data = s->nonce;
    r.server_nonce.len = s->nonce_len;
    if (srv->pki && ep_ua_pki_own_cert(srv->pki))
        r.server_certificate.data =
            (uint8_t *)ep_ua_cert_der(ep_ua_pki_own_cert(srv->pki), &r.server_certificate.len);
    r.server_endpoints_len = endpoints(srv, srv->url, &r.server_endpoints, m->arena);
    r.server_software_certificates = EP_UA_EMPTY;
    if (!ep_ua_policy_is_none(pol))
        sign_data(pol, ep_ua_pki_own_key(srv->pki), req->client_certificate.data,
                  req->client_certificate.len, req->client_nonce.data, req->client_nonce.len,
                  &r.server_signature, m->arena);
    r.max_request_message_size = srv->chlim.max_message_size;
    EP_LOG_INFO(UA_LOG, "session %u \"%s\" created by %s (%s)", s->num, s->name,
                ep_ua_channel_peer(ch), pol->name);
    ep_ua__send(ch, m->request_id, EP_UA_T(CreateSessionResponse), &r, &r.response_header);
}

/* Checks the identity token; on success writes the user name to user. */
static ep_ua_status check_identity(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                                   const ep_ua_activate_session_request *req, char *user,
                                   size_t ucap)
{
    const ep_ua_extensionobject *tok = &req->user_identity_token;
    user[0] = 0;
    const ep_ua_policy *chpol = ep_ua_channel_policy(ch);
    /* The policy protecting token secrets: the channel's, or under None
     * the one advertised in the endpoint (see endpoints()). */
    const ep_ua_policy *tpol = chpol;
    if (ep_ua_policy_is_none(chpol))
        for (int p = EP_UA_POLICY_COUNT - 1; p > 0; p--)
            if (srv->policies & (1u << p))
                tpol = ep_ua_policy_get((ep_ua_policy_id)p);
    if (tok->encoding == EP_UA_EXTOBJ_EMPTY ||
        (tok->encoding == EP_UA_EXTOBJ_DECODED && tok->type == EP_UA_T(AnonymousIdentityToken))) {
        return srv->no_anonymous ? EP_UA_STATUS_BadIdentityTokenRejected : EP_UA_STATUS_Good;
    }
    if (tok->encoding != EP_UA_EXTOBJ_DECODED)
        return EP_UA_STATUS_BadIdentityTokenInvalid;
    if (tok->type == EP_UA_T(UserNameIdentityToken)) {
        const ep_ua_user_name_identity_token *u = tok->data;
        if (srv->nusers == 0 || u->user_name.data == NULL)
            return EP_UA_STATUS_BadIdentityTokenRejected;
        uint8_t pw[512];
        size_t pwl = 0;
        if (u->encryption_algorithm.data && u->encryption_algorithm.len) {
            if (ep_ua_policy_is_none(tpol) || srv->pki == NULL ||
                !str_eq(&u->encryption_algorithm, tpol->asym_enc_uri))
                return EP_UA_STATUS_BadIdentityTokenInvalid;
            if (ep_ua_secret_decrypt(tpol, ep_ua_pki_own_key(srv->pki), u->password.data,
                                     u->password.len, s->nonce, s->nonce_len, pw, sizeof(pw),
                                     &pwl) != EP_EOK)
                return EP_UA_STATUS_BadIdentityTokenInvalid;
        } else {
            /* Clear text: accepted only when nothing better was offered. */
            if (!ep_ua_policy_is_none(tpol) && ep_ua_policy_is_none(chpol))
                return EP_UA_STATUS_BadIdentityTokenInvalid;
            if (u->password.len > sizeof(pw))
                return EP_UA_STATUS_BadIdentityTokenInvalid;
            pwl = u->password.len;
            if (pwl)
                memcpy(pw, u->password.data, pwl);
        }
        ep_ua_status st = EP_UA_STATUS_BadUserAccessDenied;
        for (size_t i = 0; i < srv->nusers; i++) {
            if (str_eq(&u->user_name, srv->users[i].name) &&
                strlen(srv->users[i].password) == pwl &&
                memcmp(srv->users[i].password, pw, pwl) == 0) {
                st = EP_UA_STATUS_Good;
                snprintf(user, ucap, "%s", srv->users[i].name);
            }
        }
        memset(pw, 0, sizeof(pw));
        return st;
    }
    if (tok->type == EP_UA_T(X509IdentityToken)) {
        const ep_ua_x509_identity_token *x = tok->data;
        if (!srv->x509_users || x->certificate_data.data == NULL)
            return EP_UA_STATUS_BadIdentityTokenRejected;
        ep_ua_cert *c = NULL;
        size_t used;
        if (ep_ua_cert_parse(x->certificate_data.data, x->certificate_data.len, &c, &used) !=
            EP_EOK)
            return EP_UA_STATUS_BadIdentityTokenInvalid;
        ep_ua_status st = EP_UA_STATUS_Good;
        const uint8_t *sc = NULL;
        size_t scl = 0;
        if (srv->pki && ep_ua_pki_own_cert(srv->pki))
            sc = ep_ua_cert_der(ep_ua_pki_own_cert(srv->pki), &scl);
        const ep_ua_policy *spol =
            ep_ua_policy_is_none(tpol) ? ep_ua_policy_get(EP_UA_POLICY_BASIC256SHA256) : tpol;
        if (verify_data(spol, ep_ua_cert_key(c), sc, scl, s->nonce, s->nonce_len,
                        &req->user_token_signature) != EP_EOK) {
            st = EP_UA_STATUS_BadUserSignatureInvalid;
        } else if (srv->pki) {
            ep_ua_pki_check chk;
            memset(&chk, 0, sizeof(chk));
            chk.role = EP_UA_PEER_ANY;
            ep_ua_cert_verdict v;
            if (ep_ua_pki_validate(srv->pki, x->certificate_data.data, x->certificate_data.len,
                                   &chk, &v) != EP_EOK) {
                EP_LOG_WARN(UA_LOG, "X509 user \"%s\" [%s] rejected: %s", v.subject, v.thumbprint,
                            v.message);
                st = EP_UA_STATUS_BadIdentityTokenRejected;
            }
        }
        if (st == EP_UA_STATUS_Good)
            snprintf(user, ucap, "x509:%s", ep_ua_cert_common_name(c));
        ep_ua_cert_free(c);
        return st;
    }
    return EP_UA_STATUS_BadIdentityTokenInvalid;
}

static void svc_activate_session(ep_ua_server *srv, ep_ua_channel *ch, const ep_ua_channel_msg *m)
{
    const ep_ua_activate_session_request *req = m->body;
    ua_session *s = session_by_token(srv, &req->request_header.authentication_token);
    if (s == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadSessionIdInvalid);
        return;
    }
    const ep_ua_policy *pol = ep_ua_channel_policy(ch);
    ep_ua_status st = EP_UA_STATUS_Good;
    if (!ep_ua_policy_is_none(pol)) {
        size_t ccl = 0;
        const uint8_t *cc = ep_ua_channel_peer_cert(ch, &ccl);
        ep_ua_cert *c = NULL;
        size_t used = 0;
        const uint8_t *sc = NULL;
        size_t scl = 0;
        sc = ep_ua_cert_der(ep_ua_pki_own_cert(srv->pki), &scl);
        if (ep_ua_cert_parse(cc, ccl, &c, &used) != EP_EOK ||
            verify_data(pol, ep_ua_cert_key(c), sc, scl, s->nonce, s->nonce_len,
                        &req->client_signature) != EP_EOK)
            st = EP_UA_STATUS_BadApplicationSignatureInvalid;
        ep_ua_cert_free(c);
    }
    if (st == EP_UA_STATUS_Good && s->activated && s->ch != ch) {
        /* Rebinding to a new channel: the same client application only. */
        size_t ccl = 0;
        const uint8_t *cc = ep_ua_channel_peer_cert(ch, &ccl);
        if (s->client_cert && (ccl != s->client_cert_len || memcmp(cc, s->client_cert, ccl) != 0))
            st = EP_UA_STATUS_BadSecurityChecksFailed;
    }
    char user[128];
    if (st == EP_UA_STATUS_Good)
        st = check_identity(srv, s, ch, req, user, sizeof(user));
    if (st == EP_UA_STATUS_Good && s->activated && strcmp(user, s->user) != 0 && s->ch != ch)
        st = EP_UA_STATUS_BadIdentityChangeNotSupported;
    if (st != EP_UA_STATUS_Good) {
        if (ep_ratelimit_allow(&srv->rl, ep_loop_now(srv->loop)))
            EP_LOG_WARN(UA_LOG, "session %u: ActivateSession from %s refused (0x%08x)", s->num,
                        ep_ua_channel_peer(ch), st);
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    if (s->ch != ch) {
        ep_ua__session_detached(srv, s);
        s->ch = ch;
    }
    s->activated = true;
    snprintf(s->user, sizeof(s->user), "%s", user);
    new_nonce(s->nonce, &s->nonce_len);
    session_touch(s);
    ep_ua_activate_session_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.server_nonce.data = s->nonce;
    r.server_nonce.len = s->nonce_len;
    r.results = EP_UA_EMPTY;
    r.diagnostic_infos = EP_UA_EMPTY;
    EP_LOG_INFO(UA_LOG, "session %u \"%s\" activated (%s)", s->num, s->name,
                user[0] ? user : "anonymous");
    ep_ua__send(ch, m->request_id, EP_UA_T(ActivateSessionResponse), &r, &r.response_header);
}

static void svc_close_session(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                              const ep_ua_channel_msg *m)
{
    const ep_ua_close_session_request *req = m->body;
    ep_ua_close_session_response r;
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    session_end(srv, s, "closed by the client", !req->delete_subscriptions);
    ep_ua__send(ch, m->request_id, EP_UA_T(CloseSessionResponse), &r, &r.response_header);
}

/* ------------------------------------------------------- dispatch -- */

typedef void (*svc_fn)(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                       const ep_ua_channel_msg *m);

static svc_fn session_service(const ep_ua_type *t)
{
    static const struct {
        int type;
        svc_fn fn;
    } table[] = {
        {EP_UA_TYPE_BrowseRequest, ep_ua__svc_browse},
        {EP_UA_TYPE_BrowseNextRequest, ep_ua__svc_browse_next},
        {EP_UA_TYPE_TranslateBrowsePathsToNodeIdsRequest, ep_ua__svc_translate},
        {EP_UA_TYPE_ReadRequest, ep_ua__svc_read},
        {EP_UA_TYPE_WriteRequest, ep_ua__svc_write},
        {EP_UA_TYPE_CallRequest, ep_ua__svc_call},
        {EP_UA_TYPE_CreateSubscriptionRequest, ep_ua__svc_create_sub},
        {EP_UA_TYPE_ModifySubscriptionRequest, ep_ua__svc_modify_sub},
        {EP_UA_TYPE_DeleteSubscriptionsRequest, ep_ua__svc_delete_subs},
        {EP_UA_TYPE_SetPublishingModeRequest, ep_ua__svc_set_publishing},
        {EP_UA_TYPE_CreateMonitoredItemsRequest, ep_ua__svc_create_items},
        {EP_UA_TYPE_ModifyMonitoredItemsRequest, ep_ua__svc_modify_items},
        {EP_UA_TYPE_DeleteMonitoredItemsRequest, ep_ua__svc_delete_items},
        {EP_UA_TYPE_SetMonitoringModeRequest, ep_ua__svc_set_monitoring},
        {EP_UA_TYPE_PublishRequest, ep_ua__svc_publish},
        {EP_UA_TYPE_RepublishRequest, ep_ua__svc_republish},
        {EP_UA_TYPE_TransferSubscriptionsRequest, ep_ua__svc_transfer},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (t == &ep_ua_types[table[i].type])
            return table[i].fn;
    return NULL;
}

static void on_message(ep_ua_channel *ch, const ep_ua_channel_msg *m, void *ud)
{
    ep_ua_server *srv = ud;
    if (srv == NULL) /* a reverse channel outliving its server */
        return;
    srv->requests++;
    if (m->status != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, m->status);
        return;
    }
    const ep_ua_type *t = m->type;
    if (t == EP_UA_T(GetEndpointsRequest)) {
        svc_get_endpoints(srv, ch, m);
        return;
    }
    if (t == EP_UA_T(FindServersRequest)) {
        svc_find_servers(srv, ch, m);
        return;
    }
    if (t == EP_UA_T(CreateSessionRequest)) {
        svc_create_session(srv, ch, m);
        return;
    }
    if (t == EP_UA_T(ActivateSessionRequest)) {
        svc_activate_session(srv, ch, m);
        return;
    }
    if (t->nfields == 0 || t->fields[0].type != EP_UA_TYPE_RequestHeader) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadServiceUnsupported);
        return;
    }
    const ep_ua_request_header *rh = m->body;
    ua_session *s = session_by_token(srv, &rh->authentication_token);
    ep_ua_status st = EP_UA_STATUS_Good;
    if (s == NULL)
        st = EP_UA_STATUS_BadSessionIdInvalid;
    else if (!s->activated)
        st = t == EP_UA_T(CloseSessionRequest) ? EP_UA_STATUS_Good
                                               : EP_UA_STATUS_BadSessionNotActivated;
    else if (s->ch != ch)
        st = EP_UA_STATUS_BadSecureChannelIdInvalid;
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    session_touch(s);
    if (t == EP_UA_T(CloseSessionRequest)) {
        svc_close_session(srv, s, ch, m);
        return;
    }
    svc_fn fn = session_service(t);
    if (fn == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadServiceUnsupported);
        return;
    }
    fn(srv, s, ch, m);
}

static void on_close(ep_ua_channel *ch, ep_ua_status status, void *ud)
{
    ep_ua_server *srv = ud;
    (void)status;
    if (srv == NULL)
        return;
    for (unsigned i = 0; i < srv->nreverse; i++)
        if (srv->reverse[i] == ch) {
            srv->reverse[i] = srv->reverse[--srv->nreverse];
            break;
        }
    for (ua_session *s = srv->sessions; s; s = s->next)
        if (s->ch == ch) {
            ep_ua__session_detached(srv, s);
            s->ch = NULL;
        }
}

/* ------------------------------------------------------- lifecycle -- */

static char *dup_or(const char *s, const char *dflt) { return strdup(s ? s : dflt); }

ep_err ep_ua_server_new(ep_loop *loop, const ep_ua_server_opts *opts, ep_ua_server **out)
{
    if (loop == NULL || opts == NULL || opts->url == NULL || out == NULL)
        return EP_EINVAL;
    unsigned policies = opts->policies ? opts->policies : 1u << EP_UA_POLICY_NONE;
    if ((policies & ~(1u << EP_UA_POLICY_NONE)) && opts->pki == NULL)
        return EP_EINVAL;
    ep_ua_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return EP_ENOMEM;
    srv->loop = loop;
    srv->pki = opts->pki;
    srv->policies = policies;
    srv->no_anonymous = opts->no_anonymous;
    srv->x509_users = opts->allow_x509_users;
    srv->lim = opts->limits;
    ep_ua_server_limits *l = &srv->lim;
    if (!l->max_sessions)
        l->max_sessions = 100;
    if (!l->max_subscriptions_per_session)
        l->max_subscriptions_per_session = 50;
    if (!l->max_items_per_subscription)
        l->max_items_per_subscription = 200000;
    if (!l->max_notifications_per_publish)
        l->max_notifications_per_publish = 1000;
    if (!l->max_publish_per_session)
        l->max_publish_per_session = 20;
    if (!l->max_retransmit)
        l->max_retransmit = 100;
    if (!l->max_session_timeout_ms)
        l->max_session_timeout_ms = 3600000;
    if (!l->max_browse_refs)
        l->max_browse_refs = 1000;
    if (!l->max_nodes_per_request)
        l->max_nodes_per_request = 100000;
    srv->chlim = opts->channel;
    if (!srv->chlim.max_message_size)
        srv->chlim.max_message_size = EP_UA_CHANNEL_DEFAULT_MAX_MESSAGE;
    srv->rl.period_ms = 10000;
    srv->rl.burst = 10;
    srv->app_uri = dup_or(opts->app_uri, "urn:edgeplane:opcua-server");
    srv->app_name = dup_or(opts->app_name, "edgeplane OPC UA server");
    srv->product_uri = dup_or(opts->product_uri, "urn:edgeplane");
    ep_err e = EP_EOK;
    if (!srv->app_uri || !srv->app_name || !srv->product_uri)
        e = EP_ENOMEM;
    if (e == EP_EOK && opts->nusers) {
        srv->users = calloc(opts->nusers, sizeof(*srv->users));
        if (srv->users == NULL)
            e = EP_ENOMEM;
        for (size_t i = 0; e == EP_EOK && i < opts->nusers; i++) {
            srv->users[i].name = strdup(opts->users[i].name);
            srv->users[i].password = strdup(opts->users[i].password);
            srv->nusers++;
            if (!srv->users[i].name || !srv->users[i].password)
                e = EP_ENOMEM;
        }
    }
    srv->start_time = ep_ua__now();
    if (e == EP_EOK)
        e = ep_ua__space_init(srv);
    ep_ua_channel_opts co;
    memset(&co, 0, sizeof(co));
    co.limits = opts->channel;
    co.cbs.on_message = on_message;
    co.cbs.on_close = on_close;
    co.ud = srv;
    co.pki = opts->pki;
    co.allowed_policies = policies;
    co.allowed_modes =
        policies & (1u << EP_UA_POLICY_NONE) ? 1u << EP_UA_MESSAGE_SECURITY_MODE_NONE : 0;
    if (policies & ~(1u << EP_UA_POLICY_NONE))
        co.allowed_modes |= 1u << EP_UA_MESSAGE_SECURITY_MODE_SIGN |
                            1u << EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT;
    srv->chopts = co;
    if (e == EP_EOK)
        e = ep_ua_listener_new(loop, opts->url, &co, srv->lim.max_sessions * 2, NULL, NULL,
                               &srv->listener);
    if (e == EP_EOK) {
        char host[256];
        uint16_t port;
        ep_ua_url_parse(opts->url, host, sizeof(host), &port);
        size_t n = strlen(host) + 40;
        srv->url = malloc(n);
        if (srv->url == NULL)
            e = EP_ENOMEM;
        else if (strchr(host, ':'))
            snprintf(srv->url, n, "opc.tcp://[%s]:%u", host, ep_ua_listener_port(srv->listener));
        else
            snprintf(srv->url, n, "opc.tcp://%s:%u", host, ep_ua_listener_port(srv->listener));
    }
    if (e != EP_EOK) {
        ep_ua_server_free(srv);
        return e;
    }
    *out = srv;
    return EP_EOK;
}

void ep_ua_server_free(ep_ua_server *srv)
{
    if (srv == NULL)
        return;
    while (srv->sessions)
        session_free(srv, srv->sessions, "server shutting down");
    /* reverse channels close on their own; they must not call back */
    for (unsigned i = 0; i < srv->nreverse; i++) {
        ep_ua_channel_set_ud(srv->reverse[i], NULL);
        ep_ua_channel_close(srv->reverse[i], EP_UA_STATUS_BadServerHalted, "server shutting down");
    }
    srv->nreverse = 0;
    while (srv->orphans) {
        ua_session *o = srv->orphans;
        srv->orphans = o->next;
        ep_ua__subs_delete_all(srv, o);
        session_release(o);
    }
    ep_ua_listener_free(srv->listener);
    ep_ua__groups_free(srv);
    ep_ua__space_free(srv);
    for (size_t i = 0; i < srv->nusers; i++) {
        free((char *)srv->users[i].name);
        free((char *)srv->users[i].password);
    }
    free(srv->users);
    free(srv->app_uri);
    free(srv->app_name);
    free(srv->product_uri);
    free(srv->url);
    free(srv);
}

ep_err ep_ua_server_reverse_connect(ep_ua_server *srv, const char *client_url)
{
    if (srv == NULL || client_url == NULL)
        return EP_EINVAL;
    if (srv->nreverse == UA_MAX_REVERSE)
        return EP_EFULL;
    ep_ua_channel *ch = NULL;
    ep_err e =
        ep_ua_channel_reverse(srv->loop, client_url, srv->app_uri, srv->url, &srv->chopts, &ch);
    if (e != EP_EOK)
        return e;
    srv->reverse[srv->nreverse++] = ch;
    EP_LOG_INFO(UA_LOG, "reverse connect to %s", client_url);
    return EP_EOK;
}

uint16_t ep_ua_server_port(const ep_ua_server *srv) { return ep_ua_listener_port(srv->listener); }

const char *ep_ua_server_endpoint_url(const ep_ua_server *srv) { return srv->url; }

void ep_ua_server_get_stats(const ep_ua_server *srv, ep_ua_server_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->channels = ep_ua_listener_channels(srv->listener);
    st->sessions = srv->nsessions;
    st->subscriptions = srv->nsubs;
    st->monitored_items = srv->nitems;
    st->notifications_sent = srv->notifications_sent;
    st->publish_responses = srv->publish_responses;
    st->requests = srv->requests;
}
