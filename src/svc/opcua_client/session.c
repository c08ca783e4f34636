/*
 * session.c - CreateSession, ActivateSession and CloseSession (OPC 10000-4
 * 5.6), with the three user identities.
 *
 * Signatures (secure policies): the client proves it holds its key by
 * signing serverCertificate || serverNonce (ActivateSession.clientSignature);
 * the server proves the same by signing clientCertificate || clientNonce
 * (CreateSessionResponse.serverSignature), which is verified here.
 *
 * Identity tokens take their policyId from the server's endpoint (the
 * UserTokenPolicy of the right type on the endpoint of our policy and
 * mode). A token policy may name its own security policy; when it is empty
 * the channel's applies. UserName passwords are encrypted with that policy
 * (legacy secret format: length || password || serverNonce, RSA-OAEP under
 * the server certificate); under None they go in clear, as the spec allows
 * only when the server says so. X509 tokens carry the user certificate and
 * a userTokenSignature over serverCertificate || serverNonce made with the
 * user's key.
 *
 * Reactivation: on a new channel the same session is activated again with
 * a fresh signature over the last server nonce. If the server refuses
 * (session gone), a new session is created; sub.c then transfers the
 * subscriptions.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "svc/opcua_client/uac_int.h"

static void activate(ep_uac *c, bool after_create);

static ep_err copy_bytes(ep_ua_bytestring *dst, const ep_ua_bytestring *src)
{
    free(dst->data);
    dst->data = NULL;
    dst->len = 0;
    if (src->data == NULL || src->len == 0)
        return EP_EOK;
    dst->data = malloc(src->len);
    if (dst->data == NULL)
        return EP_ENOMEM;
    memcpy(dst->data, src->data, src->len);
    dst->len = src->len;
    return EP_EOK;
}

void ep_uac__session_clear(ep_uac *c)
{
    ep_ua_clear(&c->session_id, EP_UA_T(NodeId));
    ep_ua_clear(&c->auth_token, EP_UA_T(NodeId));
    c->have_session = false;
    free(c->server_nonce.data);
    c->server_nonce.data = NULL;
    c->server_nonce.len = 0;
    free(c->client_nonce.data);
    c->client_nonce.data = NULL;
    c->client_nonce.len = 0;
    for (size_t i = 0; i < c->nendpoints; i++)
        ep_ua_clear(&c->endpoints[i], EP_UA_T(EndpointDescription));
    free(c->endpoints);
    c->endpoints = NULL;
    c->nendpoints = 0;
}

static bool str_eq(const ep_ua_string *a, const char *b)
{
    size_t n = strlen(b);
    return a->len == n && (n == 0 || memcmp(a->data, b, n) == 0);
}

/* the user token policy for our identity on our endpoint */
static const ep_ua_user_token_policy *find_token_policy(const ep_uac *c, int32_t type)
{
    const ep_ua_user_token_policy *any = NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->nendpoints; i++) {
            const ep_ua_endpoint_description *e = &c->endpoints[i];
            bool ours =
                e->security_mode == c->mode && str_eq(&e->security_policy_uri, c->policy->uri);
            if (pass == 0 && !ours)
                continue;
            for (size_t k = 0; k < e->user_identity_tokens_len; k++) {
                const ep_ua_user_token_policy *t = &e->user_identity_tokens[k];
                if (t->token_type != type)
                    continue;
                /* prefer a token policy whose security we support */
                if (t->security_policy_uri.len &&
                    ep_ua_policy_find((const char *)t->security_policy_uri.data,
                                      t->security_policy_uri.len) == NULL) {
                    if (any == NULL)
                        any = t;
                    continue;
                }
                return t;
            }
        }
    }
    return any;
}

static ep_err concat(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t **out)
{
    uint8_t *p = malloc(alen + blen + 1);
    if (p == NULL)
        return EP_ENOMEM;
    if (alen)
        memcpy(p, a, alen);
    if (blen)
        memcpy(p + alen, b, blen);
    *out = p;
    return EP_EOK;
}

/* the leaf certificate of a DER chain (length of the first certificate) */
static size_t leaf_len(const uint8_t *der, size_t len)
{
    ep_ua_cert *cert = NULL;
    size_t used = len;
    if (ep_ua_cert_parse(der, len, &cert, &used) != EP_EOK)
        return len;
    ep_ua_cert_free(cert);
    return used ? used : len;
}

static ep_err sign_over(const ep_ua_policy *pol, const ep_ua_key *key, const ep_ua_bytestring *cert,
                        const ep_ua_bytestring *nonce, ep_ua_signature_data *sd, uint8_t **sigbuf)
{
    uint8_t *data = NULL;
    size_t clen = cert->len ? leaf_len(cert->data, cert->len) : 0;
    ep_err err = concat(cert->data, clen, nonce->data, nonce->len, &data);
    if (err != EP_EOK)
        return err;
    size_t cap = ep_ua_asym_sig_size(pol, key);
    *sigbuf = malloc(cap ? cap : 1);
    if (*sigbuf == NULL) {
        free(data);
        return EP_ENOMEM;
    }
    size_t slen = 0;
    err = ep_ua_asym_sign(pol, key, data, clen + nonce->len, *sigbuf, cap, &slen);
    free(data);
    if (err != EP_EOK)
        return err;
    sd->algorithm = ep_ua_string_from(pol->asym_sig_uri);
    sd->signature.data = *sigbuf;
    sd->signature.len = slen;
    return EP_EOK;
}

static void fail_session(ep_uac *c, ep_err err, ep_ua_status st, const char *what)
{
    ep_uac__set_error(c, "%s failed: %s", what, st ? ep_ua_status_name(st) : ep_strerror(err));
    EP_LOG_WARN(EP_UAC_LOG, "%s: %s", c->url, c->last_error);
    if (c->state == EP_UAC_CONNECTING && !c->ever_connected) {
        ep_uac__connect_failed(c, err, st);
        return;
    }
    ep_uac__connection_lost(c, err, st, c->last_error);
}

/* ------------------------------------------------------ ActivateSession -- */

static void activate_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    bool after_create = r->ictx != NULL;
    if (err == EP_EOK && st != EP_UA_STATUS_Good)
        err = ep_uac_err_from_status(st);
    if (err != EP_EOK) {
        if (!after_create && err != EP_ECLOSED && err != EP_ETIMEDOUT &&
            c->phase == EP_UAC_PH_ACTIVATE) {
            /* the session is gone on the server: start a new one, then
             * transfer the subscriptions */
            EP_LOG_INFO(EP_UAC_LOG,
                        "%s: reactivation refused (%s), creating a new "
                        "session",
                        c->url, ep_ua_status_name(st));
            ep_uac__session_clear(c);
            ep_uac__session_start(c);
            return;
        }
        fail_session(c, err, st, "ActivateSession");
        return;
    }
    const ep_ua_activate_session_response *a = resp;
    if (a->server_nonce.len && copy_bytes(&c->server_nonce, &a->server_nonce) != EP_EOK) {
        fail_session(c, EP_ENOMEM, EP_UA_STATUS_BadOutOfMemory, "ActivateSession");
        return;
    }
    ep_uac__session_ready(c, after_create);
}

static void activate(ep_uac *c, bool after_create)
{
    ep_ua_activate_session_request req;
    memset(&req, 0, sizeof(req));
    uint8_t *sig = NULL, *usig = NULL, *secret = NULL;
    ep_ua_cert *server = NULL;
    ep_err err = EP_EOK;
    ep_ua_status st = EP_UA_STATUS_BadInternalError;
    const char *what = "ActivateSession";

    if (!ep_ua_policy_is_none(c->policy)) {
        err = sign_over(c->policy, ep_ua_pki_own_key(c->pki), &c->server_cert, &c->server_nonce,
                        &req.client_signature, &sig);
        if (err != EP_EOK)
            goto fail;
    }

    ep_ua_anonymous_identity_token anon;
    ep_ua_user_name_identity_token un;
    ep_ua_x509_identity_token x5;
    memset(&anon, 0, sizeof(anon));
    memset(&un, 0, sizeof(un));
    memset(&x5, 0, sizeof(x5));
    int32_t ttype = c->opts.identity.kind == EP_UAC_ID_USERNAME ? EP_UA_USER_TOKEN_TYPE_USER_NAME
                    : c->opts.identity.kind == EP_UAC_ID_X509   ? EP_UA_USER_TOKEN_TYPE_CERTIFICATE
                                                                : EP_UA_USER_TOKEN_TYPE_ANONYMOUS;
    const ep_ua_user_token_policy *tp = find_token_policy(c, ttype);
    if (tp == NULL && c->nendpoints) {
        err = EP_ESECURITY;
        st = EP_UA_STATUS_BadIdentityTokenInvalid;
        what = "the server offers no user token policy of this kind; "
               "ActivateSession";
        goto fail;
    }
    ep_ua_string pid = tp ? tp->policy_id : EP_UA_STRING_LIT("");
    if (tp == NULL) /* no endpoint list: conventional ids */
        pid = ttype == EP_UA_USER_TOKEN_TYPE_ANONYMOUS   ? EP_UA_STRING_LIT("anonymous")
              : ttype == EP_UA_USER_TOKEN_TYPE_USER_NAME ? EP_UA_STRING_LIT("username")
                                                         : EP_UA_STRING_LIT("certificate");
    const ep_ua_policy *tpol = c->policy;
    if (tp && tp->security_policy_uri.len) {
        tpol = ep_ua_policy_find((const char *)tp->security_policy_uri.data,
                                 tp->security_policy_uri.len);
        if (tpol == NULL) {
            err = EP_ESECURITY;
            st = EP_UA_STATUS_BadSecurityPolicyRejected;
            what = "user token security policy unsupported; ActivateSession";
            goto fail;
        }
    }
    req.user_identity_token.encoding = EP_UA_EXTOBJ_DECODED;
    if (ttype == EP_UA_USER_TOKEN_TYPE_ANONYMOUS) {
        anon.policy_id = pid;
        req.user_identity_token.type = EP_UA_T(AnonymousIdentityToken);
        req.user_identity_token.data = &anon;
    } else if (ttype == EP_UA_USER_TOKEN_TYPE_USER_NAME) {
        un.policy_id = pid;
        un.user_name = ep_ua_string_from(c->user);
        const char *pw = c->password ? c->password : "";
        if (ep_ua_policy_is_none(tpol)) {
            un.password.data = (uint8_t *)(uintptr_t)pw;
            un.password.len = strlen(pw);
            if (un.password.len == 0)
                un.password.data = EP_UA_EMPTY;
        } else {
            if (c->server_cert.len == 0 || c->server_nonce.len == 0) {
                err = EP_ESECURITY;
                st = EP_UA_STATUS_BadIdentityTokenInvalid;
                what = "no server certificate or nonce to encrypt the "
                       "password; ActivateSession";
                goto fail;
            }
            err = ep_ua_cert_parse(c->server_cert.data, c->server_cert.len, &server, NULL);
            if (err != EP_EOK)
                goto fail;
            const ep_ua_key *pub = ep_ua_cert_key(server);
            size_t cap = ep_ua_secret_encrypted_size(tpol, pub, strlen(pw), c->server_nonce.len);
            secret = malloc(cap ? cap : 1);
            if (secret == NULL) {
                err = EP_ENOMEM;
                goto fail;
            }
            size_t slen = 0;
            err =
                ep_ua_secret_encrypt(tpol, pub, (const uint8_t *)pw, strlen(pw),
                                     c->server_nonce.data, c->server_nonce.len, secret, cap, &slen);
            if (err != EP_EOK)
                goto fail;
            un.password.data = secret;
            un.password.len = slen;
            un.encryption_algorithm = ep_ua_string_from(tpol->asym_enc_uri);
        }
        req.user_identity_token.type = EP_UA_T(UserNameIdentityToken);
        req.user_identity_token.data = &un;
    } else {
        x5.policy_id = pid;
        size_t dlen = 0;
        const uint8_t *der = ep_ua_cert_der(c->user_cert, &dlen);
        x5.certificate_data.data = (uint8_t *)(uintptr_t)der;
        x5.certificate_data.len = dlen;
        if (ep_ua_policy_is_none(tpol)) /* a signature needs an algorithm */
            tpol = ep_ua_policy_get(EP_UA_POLICY_BASIC256SHA256);
        err = sign_over(tpol, c->user_key, &c->server_cert, &c->server_nonce,
                        &req.user_token_signature, &usig);
        if (err != EP_EOK)
            goto fail;
        req.user_identity_token.type = EP_UA_T(X509IdentityToken);
        req.user_identity_token.data = &x5;
    }

    ep_uac_req *r = ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(ActivateSessionRequest));
    if (r == NULL) {
        err = EP_ENOMEM;
        goto fail;
    }
    r->needs_session = false;
    r->icb = activate_done;
    r->ictx = after_create ? (void *)c : NULL;
    c->phase = EP_UAC_PH_ACTIVATE;
    err = ep_uac__req_submit(c, r, &req);
    if (err != EP_EOK)
        goto fail;
    free(sig);
    free(usig);
    free(secret);
    ep_ua_cert_free(server);
    return;
fail:
    free(sig);
    free(usig);
    free(secret);
    ep_ua_cert_free(server);
    if (st == EP_UA_STATUS_BadInternalError && err == EP_ESECURITY)
        st = EP_UA_STATUS_BadSecurityChecksFailed;
    fail_session(c, err, st, what);
}

/* -------------------------------------------------------- CreateSession -- */

static void create_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    (void)r;
    if (err == EP_EOK && st != EP_UA_STATUS_Good)
        err = ep_uac_err_from_status(st);
    if (err != EP_EOK) {
        fail_session(c, err, st, "CreateSession");
        return;
    }
    const ep_ua_create_session_response *s = resp;
    ep_ua_clear(&c->session_id, EP_UA_T(NodeId));
    ep_ua_clear(&c->auth_token, EP_UA_T(NodeId));
    err = ep_ua_copy(&s->session_id, &c->session_id, EP_UA_T(NodeId));
    if (err == EP_EOK)
        err = ep_ua_copy(&s->authentication_token, &c->auth_token, EP_UA_T(NodeId));
    if (err == EP_EOK)
        err = copy_bytes(&c->server_nonce, &s->server_nonce);
    if (err == EP_EOK && s->server_certificate.len) {
        if (!ep_ua_policy_is_none(c->policy) && c->server_cert.len &&
            (leaf_len(s->server_certificate.data, s->server_certificate.len) !=
                 leaf_len(c->server_cert.data, c->server_cert.len) ||
             memcmp(s->server_certificate.data, c->server_cert.data,
                    leaf_len(c->server_cert.data, c->server_cert.len)) != 0)) {
            fail_session(c, EP_ESECURITY, EP_UA_STATUS_BadCertificateInvalid,
                         "CreateSession (server certificate differs from the "
                         "channel's)");
            return;
        }
        if (c->server_cert.len == 0)
            err = copy_bytes(&c->server_cert, &s->server_certificate);
    }
    for (size_t i = 0; i < c->nendpoints; i++)
        ep_ua_clear(&c->endpoints[i], EP_UA_T(EndpointDescription));
    free(c->endpoints);
    c->endpoints = NULL;
    c->nendpoints = 0;
    if (err == EP_EOK && s->server_endpoints_len) {
        c->endpoints = calloc(s->server_endpoints_len, sizeof(*c->endpoints));
        if (c->endpoints == NULL)
            err = EP_ENOMEM;
        for (size_t i = 0; err == EP_EOK && i < s->server_endpoints_len; i++) {
            err =
                ep_ua_copy(&s->server_endpoints[i], &c->endpoints[i], EP_UA_T(EndpointDescription));
            if (err == EP_EOK)
                c->nendpoints++;
        }
    }
    if (err != EP_EOK) {
        fail_session(c, err, EP_UA_STATUS_BadOutOfMemory, "CreateSession");
        return;
    }
    c->revised_session_timeout = s->revised_session_timeout;
    c->server_max_request = s->max_request_message_size;

    if (!ep_ua_policy_is_none(c->policy)) {
        /* serverSignature over clientCertificate || clientNonce */
        ep_ua_cert *server = NULL;
        uint8_t *data = NULL;
        size_t dlen = 0;
        const uint8_t *own = ep_ua_cert_der(ep_ua_pki_own_cert(c->pki), &dlen);
        err = ep_ua_cert_parse(c->server_cert.data, c->server_cert.len, &server, NULL);
        if (err == EP_EOK)
            err = concat(own, dlen, c->client_nonce.data, c->client_nonce.len, &data);
        if (err == EP_EOK)
            err = ep_ua_asym_verify(c->policy, ep_ua_cert_key(server), data,
                                    dlen + c->client_nonce.len, s->server_signature.signature.data,
                                    s->server_signature.signature.len);
        free(data);
        ep_ua_cert_free(server);
        if (err != EP_EOK) {
            fail_session(c, EP_ESECURITY, EP_UA_STATUS_BadApplicationSignatureInvalid,
                         "CreateSession (server signature does not verify)");
            return;
        }
    }
    c->have_session = true;
    activate(c, true);
}

void ep_uac__session_start(ep_uac *c)
{
    if (c->have_session) {
        activate(c, false);
        return;
    }
    ep_err err = EP_EOK;
    uint8_t nonce[32];
    size_t nlen = 0;
    err = ep_ua_nonce_generate(ep_ua_policy_get(EP_UA_POLICY_BASIC256SHA256), nonce, sizeof(nonce),
                               &nlen);
    ep_ua_bytestring nb = {nlen, nonce};
    if (err == EP_EOK)
        err = copy_bytes(&c->client_nonce, &nb);
    if (err != EP_EOK) {
        fail_session(c, err, EP_UA_STATUS_BadInternalError, "CreateSession");
        return;
    }
    ep_ua_create_session_request req;
    memset(&req, 0, sizeof(req));
    req.client_description.application_uri = ep_ua_string_from(c->app_uri);
    req.client_description.product_uri = EP_UA_STRING_LIT("urn:edgeplane:opcua-client");
    req.client_description.application_name.text = ep_ua_string_from(c->app_name);
    req.client_description.application_type = EP_UA_APPLICATION_TYPE_CLIENT;
    req.endpoint_url = ep_ua_string_from(c->url);
    req.session_name = ep_ua_string_from(c->session_name);
    req.client_nonce = c->client_nonce;
    if (c->pki && ep_ua_pki_own_cert(c->pki)) {
        size_t dlen = 0;
        const uint8_t *der = ep_ua_cert_der(ep_ua_pki_own_cert(c->pki), &dlen);
        req.client_certificate.data = (uint8_t *)(uintptr_t)der;
        req.client_certificate.len = dlen;
    }
    req.requested_session_timeout = c->opts.session_timeout_ms;
    req.max_response_message_size = 0;
    ep_uac_req *r = ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(CreateSessionRequest));
    if (r == NULL) {
        fail_session(c, EP_ENOMEM, EP_UA_STATUS_BadOutOfMemory, "CreateSession");
        return;
    }
    r->needs_session = false;
    r->icb = create_done;
    c->phase = EP_UAC_PH_CREATE;
    err = ep_uac__req_submit(c, r, &req);
    if (err != EP_EOK)
        fail_session(c, err, EP_UA_STATUS_BadCommunicationError, "CreateSession");
}

/* --------------------------------------------------------- CloseSession -- */

static void close_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    (void)r;
    (void)err;
    (void)st;
    (void)resp;
    if (c->state != EP_UAC_CLOSING)
        return;
    c->have_session = false;
    ep_uac__drop_link(c, true); /* CloseSecureChannel, then report */
    ep_uac__connection_lost(c, EP_ECLOSED, EP_UA_STATUS_Good, NULL);
}

void ep_uac__session_close(ep_uac *c)
{
    ep_ua_close_session_request req;
    memset(&req, 0, sizeof(req));
    req.delete_subscriptions = true;
    ep_uac_req *r = ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(CloseSessionRequest));
    if (r == NULL) {
        close_done(c, NULL, EP_ENOMEM, 0, NULL);
        return;
    }
    r->needs_session = false;
    r->icb = close_done;
    r->timeout_ms = c->opts.request_timeout_ms < 3000 ? c->opts.request_timeout_ms : 3000;
    if (ep_uac__req_submit(c, r, &req) != EP_EOK)
        close_done(c, NULL, EP_ECLOSED, 0, NULL);
}
