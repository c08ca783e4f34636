/*
 * channel_asym.c - OpenSecureChannel: the asymmetric part of the secure
 * channel (channel_int.h).
 *
 * OPN messages are single-chunk. The sender signs with its own private key
 * and encrypts with the receiver's public key (the policy's asymmetric
 * algorithms); the receiver parses the asymmetric security header, checks
 * the policy and its own certificate's thumbprint, decrypts in place,
 * verifies the signature, and only then validates the sender's certificate
 * through the PKI (an untrusted one is saved in rejected/). The nonces of
 * request and response give the symmetric keys of each token (derive);
 * a server issues a new token on Renew and keeps the previous one until
 * the client uses the new one, a client renews at 75 % of the lifetime.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/opcua/channel_int.h"

static uint32_t g_channel_id = 0;

/* Append one asymmetric (OPN) chunk; single chunk only. */
static ep_err put_asym(ep_ua_channel *ch, uint32_t request_id, const ep_ua_type *type,
                       const void *body)
{
    ep_buf b, hdr;
    ep_buf_init(&b, 0);
    ep_buf_init(&hdr, 0);
    uint8_t *plain = NULL;
    ep_err e = ep_ua__ch_encode_msg(type, body, &b);
    if (e != EP_EOK)
        goto done;
    /* header and asymmetric security header */
    uint8_t h[12] = {'O', 'P', 'N', 'F', 0, 0, 0, 0, 0, 0, 0, 0};
    ep_ua__wr32(h + 8, ch->channel_id);
    e = ep_buf_append(&hdr, h, sizeof(h));
    ep_ua_string uri = ep_ua_string_from(ch->policy->uri);
    if (e == EP_EOK)
        e = ep_ua_encode(&uri, EP_UA_T(String), &hdr);
    ep_ua_bytestring cert = {0, NULL}, thumb = {0, NULL};
    if (is_secure(ch)) {
        cert.data = (uint8_t *)ep_ua_cert_der(own_cert(ch), &cert.len);
        thumb.data = (uint8_t *)ep_ua_cert_thumbprint(ch->peer_cert);
        thumb.len = 20;
    }
    if (e == EP_EOK)
        e = ep_ua_encode(&cert, EP_UA_T(ByteString), &hdr);
    if (e == EP_EOK)
        e = ep_ua_encode(&thumb, EP_UA_T(ByteString), &hdr);
    if (e != EP_EOK)
        goto done;
    size_t hlen = ep_buf_used(&hdr), blen = ep_buf_used(&b);
    size_t plain_len = 8 + blen, size, sig = 0, pad = 0;
    bool extra = false;
    size_t pb = 0, cb = 0;
    if (is_secure(ch)) {
        e = ep_ua_asym_block_sizes(ch->policy, peer_key(ch), &pb, &cb);
        if (e != EP_EOK)
            goto done;
        sig = ep_ua_asym_sig_size(ch->policy, own_key(ch));
        extra = cb > 256;
        size_t fixed = 8 + blen + 1 + (extra ? 1 : 0) + sig;
        pad = (pb - fixed % pb) % pb;
        plain_len = fixed + pad;
        size = hlen + plain_len / pb * cb;
    } else {
        size = hlen + plain_len;
    }
    if (size > ch->send_chunk || size > UINT32_MAX) {
        e = EP_ETOOBIG;
        goto done;
    }
    ep_ua__wr32(hdr.data + hdr.off + 4, (uint32_t)size);
    /* plaintext: header || seq || body || padding, then signature */
    plain = malloc(hlen + plain_len);
    if (plain == NULL) {
        e = EP_ENOMEM;
        goto done;
    }
    memcpy(plain, ep_buf_head(&hdr), hlen);
    uint8_t *q = plain + hlen;
    ep_ua__wr32(q, ch->send_seq);
    ep_ua__wr32(q + 4, request_id);
    memcpy(q + 8, ep_buf_head(&b), blen);
    if (is_secure(ch)) {
        uint8_t *pp = q + 8 + blen;
        memset(pp, (int)(pad & 0xff), pad + 1);
        if (extra)
            pp[pad + 1] = (uint8_t)(pad >> 8);
        size_t signed_len = hlen + plain_len - sig;
        size_t sl = 0;
        e = ep_ua_asym_sign(ch->policy, own_key(ch), plain, signed_len, plain + signed_len, sig,
                            &sl);
        if (e != EP_EOK)
            goto done;
        e = ep_buf_reserve(&ch->out, size);
        if (e != EP_EOK)
            goto done;
        uint8_t *o = ep_buf_tail(&ch->out);
        memcpy(o, plain, hlen);
        size_t outl = 0;
        e = ep_ua_asym_encrypt(ch->policy, peer_key(ch), q, plain_len, o + hlen, size - hlen,
                               &outl);
        if (e != EP_EOK)
            goto done;
        ch->out.len += size;
    } else {
        e = ep_buf_append(&ch->out, plain, hlen + plain_len);
        if (e != EP_EOK)
            goto done;
    }
    ch->send_seq++;
done:
    free(plain);
    ep_buf_fini(&b);
    ep_buf_fini(&hdr);
    return e;
}

/* Parses the asymmetric security header at p[12..n); *off is set past it. */
static ep_err parse_asym_hdr(const uint8_t *p, size_t n, ep_ua_string *uri, ep_ua_bytestring *cert,
                             ep_ua_bytestring *thumb, size_t *off)
{
    /* Strings borrow from p: decode with a throwaway arena is overkill;
     * read them by hand. */
    size_t pos = 12;
    ep_ua_string *f[3] = {uri, cert, thumb};
    for (int i = 0; i < 3; i++) {
        if (n - pos < 4)
            return EP_EMALFORMED;
        uint32_t l = ep_ua__rd32(p + pos);
        pos += 4;
        if (l == 0xffffffffu) {
            f[i]->len = 0;
            f[i]->data = NULL;
            continue;
        }
        if (l > n - pos || l > (1u << 20))
            return EP_EMALFORMED;
        f[i]->len = l;
        f[i]->data = (uint8_t *)(uintptr_t)(p + pos);
        pos += l;
    }
    *off = pos;
    return EP_EOK;
}

static void arm_token_timer(ep_ua_channel *ch)
{
    const token *t = &ch->tok[0];
    uint64_t delay = ch->role == EP_UA_CHANNEL_CLIENT ? (uint64_t)t->lifetime_ms * 3 / 4
                                                      : (uint64_t)t->lifetime_ms * 5 / 4;
    ep_timer_start(&ch->timer, delay);
}

static void new_token(ep_ua_channel *ch)
{
    ep_ua_sym_keys_clear(&ch->tok[1].send);
    ep_ua_sym_keys_clear(&ch->tok[1].recv);
    ch->tok[1] = ch->tok[0];
    memset(&ch->tok[0], 0, sizeof(ch->tok[0]));
}

static ep_err derive(ep_ua_channel *ch, token *t)
{
    if (!is_secure(ch))
        return EP_EOK;
    const uint8_t *cn, *sn;
    size_t cl, sl;
    if (ch->role == EP_UA_CHANNEL_CLIENT) {
        cn = ch->local_nonce, cl = ch->local_nonce_len;
        sn = ch->remote_nonce, sl = ch->remote_nonce_len;
    } else {
        cn = ch->remote_nonce, cl = ch->remote_nonce_len;
        sn = ch->local_nonce, sl = ch->local_nonce_len;
    }
    ep_ua_sym_keys ck, sk;
    ep_err e = ep_ua_channel_keys_derive(ch->policy, cn, cl, sn, sl, &ck, &sk);
    if (e != EP_EOK)
        return e;
    if (ch->role == EP_UA_CHANNEL_CLIENT) {
        t->send = ck;
        t->recv = sk;
    } else {
        t->send = sk;
        t->recv = ck;
    }
    ep_ua_sym_keys_clear(&ck);
    ep_ua_sym_keys_clear(&sk);
    return EP_EOK;
}

void ep_ua__ch_log_rejected(ep_ua_channel *ch, const ep_ua_cert_verdict *v)
{
    EP_LOG_WARN(LOGCAT, "peer=%s certificate \"%s\" [%s] rejected (%s): %s%s%s%s", ch->peer,
                v->subject, v->thumbprint, ep_ua_cert_result_name(v->result), v->message,
                v->rejected[0] ? " Saved as rejected/" : "", v->rejected,
                v->rejected[0] ? "; to trust it, move that file to "
                                 "trusted/certs/ in the PKI folder (or run "
                                 "`edgeplane opcua trust` with its thumbprint)."
                               : "");
}

/* Verifies and decrypts an OPN in place. On success *body and *blen point at
 * the plaintext body and *seq, *rid are set. */
static ep_ua_status open_asym(ep_ua_channel *ch, uint8_t *p, size_t n, const uint8_t **body,
                              size_t *blen, uint32_t *seq, uint32_t *rid)
{
    ep_ua_string uri = {0, NULL};
    ep_ua_bytestring cert = {0, NULL}, thumb = {0, NULL};
    size_t off = 0;
    if (parse_asym_hdr(p, n, &uri, &cert, &thumb, &off) != EP_EOK)
        return EP_UA_STATUS_BadDecodingError;
    const ep_ua_policy *pol = ep_ua_policy_find((const char *)uri.data, uri.len);
    if (pol == NULL)
        return EP_UA_STATUS_BadSecurityPolicyRejected;
    if (ch->role == EP_UA_CHANNEL_SERVER) {
        if (ch->state == ST_OPEN) {
            if (pol != ch->policy)
                return EP_UA_STATUS_BadSecurityPolicyRejected;
        } else {
            unsigned allowed =
                ch->opts.allowed_policies ? ch->opts.allowed_policies : 1u << EP_UA_POLICY_NONE;
            if (!(allowed & (1u << pol->id)))
                return EP_UA_STATUS_BadSecurityPolicyRejected;
            ch->policy = pol;
        }
    } else if (pol != ch->policy) {
        return EP_UA_STATUS_BadSecurityPolicyRejected;
    }
    if (ep_ua_policy_is_none(pol)) {
        if (n - off < 8)
            return EP_UA_STATUS_BadDecodingError;
        *seq = ep_ua__rd32(p + off);
        *rid = ep_ua__rd32(p + off + 4);
        *body = p + off + 8;
        *blen = n - off - 8;
        return EP_UA_STATUS_Good;
    }
    if (cert.data == NULL || cert.len == 0 || thumb.len != 20 || own_cert(ch) == NULL)
        return EP_UA_STATUS_BadSecurityChecksFailed;
    if (memcmp(thumb.data, ep_ua_cert_thumbprint(own_cert(ch)), 20) != 0)
        return EP_UA_STATUS_BadCertificateInvalid;
    if (ch->role == EP_UA_CHANNEL_SERVER) {
        if (ch->peer_cert == NULL || ch->peer_der_len != cert.len ||
            memcmp(ch->peer_der, cert.data, cert.len)) {
            if (ch->state == ST_OPEN)
                return EP_UA_STATUS_BadCertificateInvalid; /* changed on renew */
            if (ep_ua__ch_set_peer_cert(ch, cert.data, cert.len) != EP_EOK)
                return EP_UA_STATUS_BadCertificateInvalid;
        }
    } else {
        size_t used = 0;
        ep_ua_cert *c = NULL;
        if (ep_ua_cert_parse(cert.data, cert.len, &c, &used) != EP_EOK)
            return EP_UA_STATUS_BadCertificateInvalid;
        bool same = ep_ua_cert_equal(c, ch->peer_cert);
        ep_ua_cert_free(c);
        if (!same)
            return EP_UA_STATUS_BadCertificateInvalid;
    }
    /* decrypt with our key, verify with the sender's */
    size_t pb, cb;
    if (ep_ua_asym_block_sizes(pol, own_key(ch), &pb, &cb) != EP_EOK)
        return EP_UA_STATUS_BadSecurityChecksFailed;
    size_t enc = n - off;
    if (enc == 0 || enc % cb != 0)
        return EP_UA_STATUS_BadSecurityChecksFailed;
    uint8_t *plain = malloc(off + enc / cb * pb);
    if (plain == NULL)
        return EP_UA_STATUS_BadOutOfMemory;
    size_t pl = 0;
    ep_ua_status st = EP_UA_STATUS_Good;
    memcpy(plain, p, off);
    if (ep_ua_asym_decrypt(pol, own_key(ch), p + off, enc, plain + off, enc / cb * pb, &pl) !=
        EP_EOK) {
        st = EP_UA_STATUS_BadSecurityChecksFailed;
        goto out;
    }
    size_t sig = ep_ua_asym_sig_size(pol, peer_key(ch));
    bool extra = cb > 256;
    if (pl < 8 + 1 + (extra ? 1u : 0u) + sig ||
        ep_ua_asym_verify(pol, peer_key(ch), plain, off + pl - sig, plain + off + pl - sig, sig) !=
            EP_EOK) {
        st = EP_UA_STATUS_BadSecurityChecksFailed;
        goto out;
    }
    size_t end = pl - sig;
    size_t padn;
    if (extra) {
        padn = (size_t)plain[off + end - 1] << 8 | plain[off + end - 2];
        if (padn + 2 > end - 8) {
            st = EP_UA_STATUS_BadSecurityChecksFailed;
            goto out;
        }
        end -= padn + 2;
    } else {
        padn = plain[off + end - 1];
        if (padn + 1 > end - 8) {
            st = EP_UA_STATUS_BadSecurityChecksFailed;
            goto out;
        }
        end -= padn + 1;
    }
    /* Certificate trust, after the sender proved it holds the key. */
    ep_ua_pki_check chk;
    memset(&chk, 0, sizeof(chk));
    chk.policy = pol;
    chk.role = ch->role == EP_UA_CHANNEL_SERVER ? EP_UA_PEER_CLIENT : EP_UA_PEER_SERVER;
    if (ch->state != ST_OPEN) {
        ep_ua_cert_verdict v;
        if (ep_ua_pki_validate(ch->opts.pki, ch->peer_der, ch->peer_der_len, &chk, &v) != EP_EOK) {
            ep_ua__ch_log_rejected(ch, &v);
            st = v.ua_status ? v.ua_status : EP_UA_STATUS_BadCertificateUntrusted;
            goto out;
        }
    }
    /* Copy the plaintext back over the ciphertext (it is shorter). */
    memcpy(p + off, plain + off, end);
    *seq = ep_ua__rd32(p + off);
    *rid = ep_ua__rd32(p + off + 4);
    *body = p + off + 8;
    *blen = end - 8;
out:
    free(plain);
    return st;
}

void ep_ua__ch_server_on_opn(ep_ua_channel *ch, uint8_t *p, size_t n)
{
    const uint8_t *body;
    size_t blen;
    uint32_t seq, rid;
    if (ch->state == ST_WAIT_OPN && ch->channel_id == 0) {
        if (ep_ua__rd32(p + 8) != 0) {
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpSecureChannelUnknown,
                           "OPN Issue for an unknown channel");
            return;
        }
    } else if (ep_ua__rd32(p + 8) != ch->channel_id) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpSecureChannelUnknown, "wrong channel id");
        return;
    }
    ep_ua_status st = open_asym(ch, p, n, &body, &blen, &seq, &rid);
    if (st != EP_UA_STATUS_Good) {
        ep_ua__ch_fail(ch, st, "OpenSecureChannel refused");
        return;
    }
    if (!ep_ua__ch_seq_ok(ch, seq)) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadSequenceNumberInvalid, "sequence number out of order");
        return;
    }
    ep_ua_arena *arena = ep_ua__ch_arena(ch);
    if (arena == NULL) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
        return;
    }
    const ep_ua_type *type = NULL;
    void *v = NULL;
    size_t pos = 0;
    if (ep_ua_message_decode(body, blen, &pos, &type, &v, arena, &ch->lim.decode, &st) != EP_EOK ||
        type != EP_UA_T(OpenSecureChannelRequest)) {
        ep_ua_arena_clear(arena);
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadDecodingError, "invalid OpenSecureChannel request");
        return;
    }
    const ep_ua_open_secure_channel_request *req = v;
    bool renew = req->request_type == EP_UA_SECURITY_TOKEN_REQUEST_TYPE_RENEW;
    const char *why = NULL;
    st = EP_UA_STATUS_Good;
    unsigned modes =
        ch->opts.allowed_modes ? ch->opts.allowed_modes : 1u << EP_UA_MESSAGE_SECURITY_MODE_NONE;
    if (renew != (ch->state == ST_OPEN)) {
        st = EP_UA_STATUS_BadRequestTypeInvalid;
        why = renew ? "Renew before Issue" : "Issue on an open channel";
    } else if (renew && req->security_mode != ch->mode) {
        st = EP_UA_STATUS_BadSecurityModeRejected;
        why = "security mode changed on renew";
    } else if (req->security_mode < EP_UA_MESSAGE_SECURITY_MODE_NONE ||
               req->security_mode > EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT ||
               !(modes & (1u << req->security_mode)) ||
               (req->security_mode == EP_UA_MESSAGE_SECURITY_MODE_NONE) != !is_secure(ch)) {
        st = EP_UA_STATUS_BadSecurityModeRejected;
        why = "security mode not offered";
    } else if (is_secure(ch) && (req->client_nonce.len != ch->policy->nonce_len ||
                                 req->client_nonce.len > sizeof(ch->remote_nonce))) {
        st = EP_UA_STATUS_BadNonceInvalid;
        why = "client nonce of the wrong length";
    }
    if (st != EP_UA_STATUS_Good) {
        ep_ua_arena_clear(arena);
        ep_ua__ch_fail(ch, st, why);
        return;
    }
    ch->mode = req->security_mode;
    uint32_t lifetime = req->requested_lifetime;
    if (lifetime < EP_UA_CHANNEL_MIN_LIFETIME_MS)
        lifetime = EP_UA_CHANNEL_MIN_LIFETIME_MS;
    if (lifetime > ch->lim.token_lifetime_ms)
        lifetime = ch->lim.token_lifetime_ms;
    uint32_t handle = req->request_header.request_handle;
    if (is_secure(ch)) {
        memcpy(ch->remote_nonce, req->client_nonce.data, req->client_nonce.len);
        ch->remote_nonce_len = req->client_nonce.len;
        ep_ua_nonce_generate(ch->policy, ch->local_nonce, sizeof(ch->local_nonce),
                             &ch->local_nonce_len);
    }
    ep_ua_arena_clear(arena);
    if (!renew) {
        do {
            g_channel_id++;
        } while (g_channel_id == 0);
        ch->channel_id = g_channel_id;
    }
    new_token(ch);
    token *t = &ch->tok[0];
    t->valid = true;
    t->id = ch->next_token_id++;
    t->created_ms = ep_loop_now(ch->loop);
    t->lifetime_ms = lifetime;
    if (derive(ch, t) != EP_EOK) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed, "key derivation failed");
        return;
    }
    ch->tok_active = !renew;
    if (!renew) {
        ch->tok[1].valid = false;
    }
    ep_ua_open_secure_channel_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.response_header.timestamp = now_dt();
    resp.response_header.request_handle = handle;
    resp.security_token.channel_id = ch->channel_id;
    resp.security_token.token_id = t->id;
    resp.security_token.created_at = now_dt();
    resp.security_token.revised_lifetime = lifetime;
    if (is_secure(ch)) {
        resp.server_nonce.data = ch->local_nonce;
        resp.server_nonce.len = ch->local_nonce_len;
    }
    ep_err e = put_asym(ch, rid, EP_UA_T(OpenSecureChannelResponse), &resp);
    if (e != EP_EOK) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadInternalError, "could not send the OPN response");
        return;
    }
    arm_token_timer(ch);
    if (!renew) {
        ch->state = ST_OPEN;
        EP_LOG_DEBUG(LOGCAT, "channel %u peer=%s open (%s, mode %d)", ch->channel_id, ch->peer,
                     ch->policy->name, ch->mode);
        if (ch->opts.cbs.on_open)
            ch->opts.cbs.on_open(ch, ch->opts.ud);
    }
}

void ep_ua__ch_client_on_opn(ep_ua_channel *ch, uint8_t *p, size_t n)
{
    const uint8_t *body;
    size_t blen;
    uint32_t seq, rid;
    if (ch->state != ST_OPEN && ch->state != ST_WAIT_OPN) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid, "unexpected OPN");
        return;
    }
    ep_ua_status st = open_asym(ch, p, n, &body, &blen, &seq, &rid);
    if (st != EP_UA_STATUS_Good) {
        ep_ua__ch_fail(ch, st, "OpenSecureChannel response refused");
        return;
    }
    if (!ep_ua__ch_seq_ok(ch, seq) || rid != ch->opn_request_id) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadSequenceNumberInvalid,
                       "unexpected OPN sequence number or request id");
        return;
    }
    ep_ua_arena *arena = ep_ua__ch_arena(ch);
    if (arena == NULL) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
        return;
    }
    const ep_ua_type *type = NULL;
    void *v = NULL;
    size_t pos = 0;
    if (ep_ua_message_decode(body, blen, &pos, &type, &v, arena, &ch->lim.decode, &st) != EP_EOK) {
        ep_ua_arena_clear(arena);
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadDecodingError, "invalid OPN response");
        return;
    }
    if (type == EP_UA_T(ServiceFault)) {
        st = ((ep_ua_service_fault *)v)->response_header.service_result;
        ep_ua_arena_clear(arena);
        ep_ua__ch_fail(ch, st ? st : EP_UA_STATUS_BadUnexpectedError,
                       "server refused the secure channel");
        return;
    }
    if (type != EP_UA_T(OpenSecureChannelResponse)) {
        ep_ua_arena_clear(arena);
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadUnknownResponse, "invalid OPN response");
        return;
    }
    const ep_ua_open_secure_channel_response *r = v;
    if (is_secure(ch)) {
        if (r->server_nonce.len != ch->policy->nonce_len ||
            r->server_nonce.len > sizeof(ch->remote_nonce)) {
            ep_ua_arena_clear(arena);
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadNonceInvalid, "server nonce of the wrong length");
            return;
        }
        memcpy(ch->remote_nonce, r->server_nonce.data, r->server_nonce.len);
        ch->remote_nonce_len = r->server_nonce.len;
    }
    bool first = ch->state != ST_OPEN;
    if (first)
        ch->channel_id = r->security_token.channel_id;
    else if (r->security_token.channel_id != ch->channel_id) {
        ep_ua_arena_clear(arena);
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadSecureChannelIdInvalid, "channel id changed");
        return;
    }
    new_token(ch);
    token *t = &ch->tok[0];
    t->valid = true;
    t->id = r->security_token.token_id;
    t->created_ms = ep_loop_now(ch->loop);
    t->lifetime_ms = r->security_token.revised_lifetime ? r->security_token.revised_lifetime
                                                        : ch->lim.token_lifetime_ms;
    ep_ua_arena_clear(arena);
    if (derive(ch, t) != EP_EOK) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed, "key derivation failed");
        return;
    }
    ch->opn_request_id = 0;
    arm_token_timer(ch);
    if (first) {
        ch->state = ST_OPEN;
        if (ch->opts.cbs.on_open)
            ch->opts.cbs.on_open(ch, ch->opts.ud);
    }
}

ep_err ep_ua__ch_send_opn_request(ep_ua_channel *ch, int32_t req_type)
{
    ep_ua_open_secure_channel_request req;
    memset(&req, 0, sizeof(req));
    req.request_header.timestamp = now_dt();
    req.request_header.request_handle = ch->next_request_id;
    req.request_header.timeout_hint = 10000;
    req.request_type = req_type;
    req.security_mode = ch->mode;
    req.requested_lifetime = ch->lim.token_lifetime_ms;
    if (is_secure(ch)) {
        ep_err e = ep_ua_nonce_generate(ch->policy, ch->local_nonce, sizeof(ch->local_nonce),
                                        &ch->local_nonce_len);
        if (e != EP_EOK)
            return e;
        req.client_nonce.data = ch->local_nonce;
        req.client_nonce.len = ch->local_nonce_len;
    } else {
        req.client_nonce.data = EP_UA_EMPTY;
        req.client_nonce.len = 0;
    }
    uint32_t id = ch->next_request_id++;
    ep_err e = put_asym(ch, id, EP_UA_T(OpenSecureChannelRequest), &req);
    if (e == EP_EOK)
        ch->opn_request_id = id;
    return e;
}
