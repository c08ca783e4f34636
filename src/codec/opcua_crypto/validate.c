/*
 * validate.c - peer certificate validation (OPC 10000-4 6.1.3, Table 106).
 *
 * OpenSSL builds and verifies the chain (signatures, validity periods, CA
 * constraints, CRLs) against an X509_STORE holding trusted/certs as trust
 * anchors (partial chains allowed, so a leaf in trusted/certs is trusted by
 * itself) and issuers/certs plus the peer's own chain as untrusted
 * intermediates. The verify callback never stops verification: it files
 * every error under a category and verification goes on, so that after one
 * pass we know all that is wrong. OPC UA specific checks (policy key length
 * and digest, URI, host name, key usage) are done here. The verdict is the
 * first failing step in the order of Table 106, with the OPC UA status code
 * and a sentence telling the operator what to do.
 */
#include "codec/opcua_crypto/pki_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define MAX_CHAIN 8

/* Status codes, OPC 10000-4 7.38.2 / OPC 10000-6 Annex A. */
#define UA_BAD_CERT_INVALID 0x80120000u
#define UA_BAD_SECURITY_CHECKS_FAILED 0x80130000u
#define UA_BAD_CERT_POLICY_CHECK_FAILED 0x81140000u
#define UA_BAD_CERT_TIME_INVALID 0x80140000u
#define UA_BAD_CERT_ISSUER_TIME_INVALID 0x80150000u
#define UA_BAD_CERT_HOSTNAME_INVALID 0x80160000u
#define UA_BAD_CERT_URI_INVALID 0x80170000u
#define UA_BAD_CERT_USE_NOT_ALLOWED 0x80180000u
#define UA_BAD_CERT_ISSUER_USE_NOT_ALLOWED 0x80190000u
#define UA_BAD_CERT_UNTRUSTED 0x801A0000u
#define UA_BAD_CERT_REVOCATION_UNKNOWN 0x801B0000u
#define UA_BAD_CERT_ISSUER_REVOCATION_UNKNOWN 0x801C0000u
#define UA_BAD_CERT_REVOKED 0x801D0000u
#define UA_BAD_CERT_ISSUER_REVOKED 0x801E0000u
#define UA_BAD_CERT_CHAIN_INCOMPLETE 0x810D0000u

/* What OpenSSL found, by category; the first occurrence of each is kept. */
enum {
    CAT_OTHER,
    CAT_CHAIN,
    CAT_SIGNATURE,
    CAT_UNTRUSTED,
    CAT_EXPIRED,
    CAT_NOT_YET,
    CAT_USAGE,
    CAT_REVOKED,
    CAT_CRL_UNKNOWN,
    CAT_COUNT
};

typedef struct issue {
    int err;   /* X509_V_ERR_*, 0 = none */
    int depth; /* 0 = the peer certificate */
    X509 *cert;
} issue;

typedef struct vstate {
    issue cat[CAT_COUNT];
} vstate;

static int classify(int e)
{
    switch (e) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return CAT_CHAIN;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
        return CAT_SIGNATURE;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
        return CAT_UNTRUSTED;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
        return CAT_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
        return CAT_NOT_YET;
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_INVALID_PURPOSE:
        return CAT_USAGE;
    case X509_V_ERR_CERT_REVOKED:
        return CAT_REVOKED;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
        return CAT_CRL_UNKNOWN;
    default:
        return CAT_OTHER;
    }
}

static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    vstate *st = X509_STORE_CTX_get_app_data(ctx);
    if (ok || st == NULL)
        return 1;
    int e = X509_STORE_CTX_get_error(ctx);
    X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
    int c = classify(e);
    /* A self-signed certificate has no CA to publish a CRL for it. */
    if (c == CAT_CRL_UNKNOWN && cur != NULL && (X509_get_extension_flags(cur) & EXFLAG_SS))
        return 1;
    issue *is = &st->cat[c];
    if (is->err == 0) {
        is->err = e;
        is->depth = X509_STORE_CTX_get_error_depth(ctx);
        if (cur != NULL && X509_up_ref(cur) == 1)
            is->cert = cur;
    }
    return 1;
}

/* ------------------------------------------------------- formatting -- */

/* Keeps control characters out of messages that end up in logs. */
static void scrub(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static void name_cn(const X509_NAME *name, char *buf, size_t cap)
{
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    int n = -1;
    buf[0] = '\0';
    if (i >= 0)
        n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n >= 0) {
        snprintf(buf, cap, "%.*s", n, (const char *)utf8);
        OPENSSL_free(utf8);
    } else {
        X509_NAME_oneline(name, buf, (int)cap);
    }
    scrub(buf);
}

static void cert_cn(X509 *x, char *buf, size_t cap)
{
    if (x == NULL)
        snprintf(buf, cap, "?");
    else
        name_cn(X509_get_subject_name(x), buf, cap);
}

static void fmt_time(const ASN1_TIME *t, char *buf, size_t cap)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, cap, "(unreadable date)");
}

static int digest_bits(int mdnid)
{
    switch (mdnid) {
    case NID_md5:
        return 128;
    case NID_sha1:
        return 160;
    case NID_sha224:
        return 224;
    case NID_sha256:
        return 256;
    case NID_sha384:
        return 384;
    case NID_sha512:
        return 512;
    default:
        return 0;
    }
}

typedef struct vctx {
    ep_ua_pki *pki;
    const ep_ua_pki_check *chk;
    const ep_ua_cert *leaf;
    ep_ua_cert_verdict *out;
    vstate st;
} vctx;

#define SAY(...) snprintf(v->out->message, sizeof(v->out->message), __VA_ARGS__)

static void set(vctx *v, ep_ua_cert_result r, uint32_t status)
{
    v->out->result = r;
    v->out->ua_status = status;
}

/* -------------------------------------------------------- the checks -- */

/* Security policy: key length and certificate signature digest. */
static int check_policy(vctx *v)
{
    const ep_ua_policy *p = v->chk->policy;
    unsigned bits = ep_ua_cert_key_bits(v->leaf);
    int mdnid = NID_undef, pknid = NID_undef, secbits = 0;
    uint32_t flags = 0;
    if (ep_ua_policy_is_none(p))
        return 0;
    if (bits < p->min_key_bits || bits > p->max_key_bits) {
        set(v, bits < p->min_key_bits ? EP_UA_CERT_KEY_TOO_SHORT : EP_UA_CERT_KEY_TOO_LONG,
            UA_BAD_CERT_POLICY_CHECK_FAILED);
        SAY("certificate \"%s\" has a %u-bit RSA key, but security policy %s "
            "requires %u to %u bits: the peer needs a certificate with a "
            "suitable key, or use another security policy",
            v->out->subject, bits, p->name, p->min_key_bits, p->max_key_bits);
        return 1;
    }
    X509_get_signature_info(v->leaf->x509, &mdnid, &pknid, &secbits, &flags);
    if (digest_bits(mdnid) < (int)p->cert_min_digest_bits) {
        set(v, EP_UA_CERT_POLICY_MISMATCH, UA_BAD_CERT_POLICY_CHECK_FAILED);
        SAY("certificate \"%s\" is signed with %s, but security policy %s "
            "requires SHA-256 or stronger: the peer needs a certificate signed "
            "with sha256WithRSAEncryption",
            v->out->subject, mdnid != NID_undef ? OBJ_nid2sn(mdnid) : "an unknown digest", p->name);
        return 1;
    }
    return 0;
}

static void say_untrusted(vctx *v, const char *saved_note)
{
    const issue *is = &v->st.cat[CAT_UNTRUSTED];
    const char *dir = v->pki->dir;
    if (is->depth > 0) {
        char ca[80];
        cert_cn(is->cert, ca, sizeof(ca));
        SAY("certificate \"%s\" (thumbprint %s) is not trusted: neither it nor "
            "its CA \"%s\" is in %s/trusted/certs/. %s To trust this peer only, "
            "move %s/rejected/%s to %s/trusted/certs/ (edgeplane opcua trust %s); "
            "to trust everything the CA issues, copy the CA certificate to "
            "%s/trusted/certs/",
            v->out->subject, v->out->thumbprint, ca, dir, saved_note, dir, v->out->rejected, dir,
            v->out->thumbprint, dir);
    } else {
        SAY("certificate \"%s\" (thumbprint %s) is not trusted. %s To trust "
            "it, move %s/rejected/%s to %s/trusted/certs/ (edgeplane opcua "
            "trust %s)",
            v->out->subject, v->out->thumbprint, saved_note, dir, v->out->rejected, dir,
            v->out->thumbprint);
    }
}

static void say_chain(vctx *v, const char *saved_note)
{
    const issue *is = &v->st.cat[CAT_CHAIN];
    char who[80], issuer[80];
    cert_cn(is->cert, who, sizeof(who));
    if (is->cert != NULL)
        name_cn(X509_get_issuer_name(is->cert), issuer, sizeof(issuer));
    else
        snprintf(issuer, sizeof(issuer), "?");
    SAY("certificate \"%s\" (thumbprint %s) cannot be checked: \"%s\" was "
        "issued by CA \"%s\", which is not known. %s Put that CA certificate "
        "in %s/issuers/certs/ (or in %s/trusted/certs/ to trust everything it "
        "issues)",
        v->out->subject, v->out->thumbprint, who, issuer, saved_note, v->pki->dir, v->pki->dir);
}

/* Saves the peer certificate to rejected/ and returns a note about it. */
static const char *reject(vctx *v, char *note, size_t cap)
{
    ep_err err = ep_ua__pki_reject(v->pki, v->leaf, v->out->rejected, sizeof(v->out->rejected));
    if (err == EP_EOK)
        snprintf(note, cap, "It was saved as %s/rejected/%s.", v->pki->dir, v->out->rejected);
    else if (err == EP_EFULL)
        snprintf(note, cap,
                 "It was not saved because %s/rejected/ already holds %u "
                 "files; clean it up.",
                 v->pki->dir, v->pki->max_rejected);
    else
        snprintf(note, cap, "It could not be saved to %s/rejected/ (%s).", v->pki->dir,
                 ep_strerror(err));
    if (v->out->rejected[0] == '\0')
        snprintf(v->out->rejected, sizeof(v->out->rejected), "%s.der", v->out->thumbprint);
    return note;
}

static int check_time(vctx *v)
{
    for (int c = CAT_EXPIRED; c <= CAT_NOT_YET; c++) {
        const issue *is = &v->st.cat[c];
        char when[40], who[80];
        if (is->err == 0)
            continue;
        bool expired = c == CAT_EXPIRED;
        fmt_time(is->cert == NULL ? NULL
                 : expired        ? X509_get0_notAfter(is->cert)
                                  : X509_get0_notBefore(is->cert),
                 when, sizeof(when));
        set(v, expired ? EP_UA_CERT_EXPIRED : EP_UA_CERT_NOT_YET_VALID,
            is->depth == 0 ? UA_BAD_CERT_TIME_INVALID : UA_BAD_CERT_ISSUER_TIME_INVALID);
        if (is->depth == 0 && expired)
            SAY("certificate \"%s\" expired on %s: the peer needs a renewed "
                "certificate (if that date looks wrong, check the clocks of "
                "both machines)",
                v->out->subject, when);
        else if (is->depth == 0)
            SAY("certificate \"%s\" is not valid before %s: check the clocks "
                "of this machine and of the peer",
                v->out->subject, when);
        else {
            cert_cn(is->cert, who, sizeof(who));
            SAY("CA certificate \"%s\" that issued \"%s\" %s %s: the CA must "
                "be renewed and the peer certificate reissued (or check the "
                "clocks)",
                who, v->out->subject, expired ? "expired on" : "is not valid before", when);
        }
        return 1;
    }
    return 0;
}

static int check_hostname(vctx *v)
{
    const char *host = v->chk->hostname;
    X509 *x = v->leaf->x509;
    if (host == NULL || !*host)
        return 0;
    int ok = X509_check_ip_asc(x, host, 0) == 1 || X509_check_host(x, host, 0, 0, NULL) == 1;
    ERR_clear_error();
    if (ok)
        return 0;
    set(v, EP_UA_CERT_HOSTNAME_MISMATCH, UA_BAD_CERT_HOSTNAME_INVALID);
    SAY("certificate \"%s\" does not list host \"%s\" in its subjectAltName: "
        "connect with a host name the certificate lists, or have the peer "
        "reissue it with DNS:%s",
        v->out->subject, host, host);
    return 1;
}

static int check_uri(vctx *v)
{
    const char *want = v->chk->app_uri;
    const char *have = ep_ua_cert_app_uri(v->leaf);
    if (want == NULL || (have != NULL && strcmp(want, have) == 0))
        return 0;
    set(v, EP_UA_CERT_URI_MISMATCH, UA_BAD_CERT_URI_INVALID);
    if (have == NULL)
        SAY("certificate \"%s\" has no application URI in its subjectAltName, "
            "but the peer announces \"%s\": the peer needs a certificate with "
            "URI:%s",
            v->out->subject, want, want);
    else
        SAY("certificate \"%s\" carries application URI \"%s\", but the peer "
            "announces \"%s\" in its ApplicationDescription: configure the "
            "peer with the URI of its certificate, or reissue the certificate "
            "with URI:%s",
            v->out->subject, have, want, want);
    return 1;
}

static int check_usage(vctx *v)
{
    X509 *x = v->leaf->x509;
    uint32_t ku = X509_get_key_usage(x);
    uint32_t xku = X509_get_extended_key_usage(x);
    const issue *is = &v->st.cat[CAT_USAGE];
    const char *missing = NULL;
    if ((ku & KU_DIGITAL_SIGNATURE) == 0)
        missing = "keyUsage digitalSignature";
    else if ((ku & KU_KEY_ENCIPHERMENT) == 0)
        missing = "keyUsage keyEncipherment";
    else if (v->chk->role == EP_UA_PEER_SERVER && (xku & XKU_SSL_SERVER) == 0)
        missing = "extendedKeyUsage serverAuth";
    else if (v->chk->role == EP_UA_PEER_CLIENT && (xku & XKU_SSL_CLIENT) == 0)
        missing = "extendedKeyUsage clientAuth";
    if (missing != NULL) {
        set(v, EP_UA_CERT_BAD_USAGE, UA_BAD_CERT_USE_NOT_ALLOWED);
        SAY("certificate \"%s\" lacks %s, which OPC UA requires for this use: "
            "the peer needs a certificate with keyUsage digitalSignature, "
            "nonRepudiation, keyEncipherment, dataEncipherment and "
            "extendedKeyUsage serverAuth, clientAuth",
            v->out->subject, missing);
        return 1;
    }
    if (is->err != 0) {
        char who[80];
        cert_cn(is->cert, who, sizeof(who));
        set(v, EP_UA_CERT_BAD_USAGE,
            is->depth == 0 ? UA_BAD_CERT_USE_NOT_ALLOWED : UA_BAD_CERT_ISSUER_USE_NOT_ALLOWED);
        SAY("certificate \"%s\" in the chain of \"%s\" may not be used this "
            "way (%s): an issuing certificate must be a CA (basicConstraints "
            "CA:TRUE) with keyUsage keyCertSign",
            who, v->out->subject, X509_verify_cert_error_string(is->err));
        return 1;
    }
    return 0;
}

static int check_revocation(vctx *v)
{
    const issue *rv = &v->st.cat[CAT_REVOKED];
    const issue *uk = &v->st.cat[CAT_CRL_UNKNOWN];
    char who[80], ca[80];
    if (rv->err != 0) {
        cert_cn(rv->cert, who, sizeof(who));
        if (rv->cert != NULL)
            name_cn(X509_get_issuer_name(rv->cert), ca, sizeof(ca));
        else
            snprintf(ca, sizeof(ca), "?");
        set(v, EP_UA_CERT_REVOKED,
            rv->depth == 0 ? UA_BAD_CERT_REVOKED : UA_BAD_CERT_ISSUER_REVOKED);
        SAY("certificate \"%s\"%s%s%s has been revoked by its CA \"%s\" (CRL in "
            "%s/trusted/crl/ or %s/issuers/crl/): the peer needs a new "
            "certificate",
            who, rv->depth ? " (CA of \"" : "", rv->depth ? v->out->subject : "",
            rv->depth ? "\")" : "", ca, v->pki->dir, v->pki->dir);
        return 1;
    }
    if (uk->err != 0 && v->pki->require_crl) {
        cert_cn(uk->cert, who, sizeof(who));
        if (uk->cert != NULL)
            name_cn(X509_get_issuer_name(uk->cert), ca, sizeof(ca));
        else
            snprintf(ca, sizeof(ca), "?");
        set(v, EP_UA_CERT_REVOCATION_UNKNOWN,
            uk->depth == 0 ? UA_BAD_CERT_REVOCATION_UNKNOWN
                           : UA_BAD_CERT_ISSUER_REVOCATION_UNKNOWN);
        SAY("revocation of certificate \"%s\" cannot be checked (%s): put a "
            "current CRL of CA \"%s\" in %s/trusted/crl/ (or %s/issuers/crl/ "
            "when the CA is in issuers/certs/)",
            who, X509_verify_cert_error_string(uk->err), ca, v->pki->dir, v->pki->dir);
        return 1;
    }
    return 0;
}

/* Runs OpenSSL chain verification, filling v->st. */
static ep_err verify_chain(vctx *v, STACK_OF(X509) * untrusted)
{
    X509_STORE_CTX *sctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *vp;
    ep_err err = EP_EOK;
    if (sctx == NULL)
        return EP_ENOMEM;
    if (X509_STORE_CTX_init(sctx, v->pki->store, v->leaf->x509, untrusted) != 1) {
        X509_STORE_CTX_free(sctx);
        return EP_ENOMEM;
    }
    vp = X509_STORE_CTX_get0_param(sctx);
    X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_CHECK_SS_SIGNATURE |
                                        X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    X509_VERIFY_PARAM_set_depth(vp, MAX_CHAIN);
    if (v->chk->now != 0)
        X509_VERIFY_PARAM_set_time(vp, (time_t)v->chk->now);
    X509_STORE_CTX_set_verify_cb(sctx, verify_cb);
    X509_STORE_CTX_set_app_data(sctx, &v->st);
    if (X509_verify_cert(sctx) <= 0) {
        int e = X509_STORE_CTX_get_error(sctx);
        if (e == X509_V_ERR_OUT_OF_MEM)
            err = EP_ENOMEM;
        else if (v->st.cat[CAT_OTHER].err == 0)
            v->st.cat[CAT_OTHER].err = e ? e : X509_V_ERR_UNSPECIFIED;
    }
    X509_STORE_CTX_free(sctx);
    ERR_clear_error();
    return err;
}

/* Decides the verdict in Table 106 order. */
static void decide(vctx *v)
{
    char note[256];
    const issue *other = &v->st.cat[CAT_OTHER];
    const issue *sig = &v->st.cat[CAT_SIGNATURE];
    bool accept_all = v->pki->auto_accept;
    if (other->err != 0) {
        set(v, EP_UA_CERT_INVALID, UA_BAD_CERT_INVALID);
        SAY("certificate \"%s\" (thumbprint %s) is invalid: %s", v->out->subject,
            v->out->thumbprint, X509_verify_cert_error_string(other->err));
        return;
    }
    if (v->st.cat[CAT_CHAIN].err != 0 && !accept_all) {
        set(v, EP_UA_CERT_CHAIN_INCOMPLETE, UA_BAD_CERT_CHAIN_INCOMPLETE);
        say_chain(v, reject(v, note, sizeof(note)));
        return;
    }
    if (sig->err != 0) {
        char who[80];
        cert_cn(sig->cert, who, sizeof(who));
        set(v, EP_UA_CERT_SIGNATURE_INVALID, UA_BAD_CERT_INVALID);
        SAY("the signature of certificate \"%s\"%s%s%s does not verify (%s): "
            "the certificate is corrupt or forged; do not trust it",
            who, sig->depth ? " (CA of \"" : "", sig->depth ? v->out->subject : "",
            sig->depth ? "\")" : "", X509_verify_cert_error_string(sig->err));
        return;
    }
    if (check_policy(v))
        return;
    if (v->st.cat[CAT_UNTRUSTED].err != 0 && !accept_all) {
        set(v, EP_UA_CERT_UNTRUSTED, UA_BAD_CERT_UNTRUSTED);
        say_untrusted(v, reject(v, note, sizeof(note)));
        return;
    }
    if (check_time(v) || check_hostname(v) || check_uri(v) || check_usage(v) || check_revocation(v))
        return;
    set(v, EP_UA_CERT_TRUSTED, 0);
    SAY("certificate \"%s\" (thumbprint %s) is trusted%s", v->out->subject, v->out->thumbprint,
        v->st.cat[CAT_UNTRUSTED].err || v->st.cat[CAT_CHAIN].err
            ? " (auto-accept: not in the trust list)"
            : "");
}

ep_err ep_ua_pki_validate(ep_ua_pki *pki, const uint8_t *der, size_t len,
                          const ep_ua_pki_check *check, ep_ua_cert_verdict *out)
{
    static const ep_ua_pki_check no_check;
    vctx v;
    ep_ua_cert *leaf = NULL;
    STACK_OF(X509) *untrusted = NULL;
    size_t used = 0;
    ep_err err;
    if (pki == NULL || out == NULL || (der == NULL && len > 0))
        return EP_EINVAL;
    memset(out, 0, sizeof(*out));
    memset(&v, 0, sizeof(v));
    v.pki = pki;
    v.chk = check ? check : &no_check;
    v.out = out;
    /* Until a verdict is reached, the answer is "no". */
    set(&v, EP_UA_CERT_INVALID, UA_BAD_SECURITY_CHECKS_FAILED);
    snprintf(out->message, sizeof(out->message),
             "the certificate could not be validated: out of memory");

    err = ep_ua__pki_refresh(pki);
    if (err != EP_EOK)
        return err;

    err = len ? ep_ua_cert_parse(der, len, &leaf, &used) : EP_EMALFORMED;
    if (err == EP_ENOMEM)
        return err;
    if (err != EP_EOK) {
        set(&v, EP_UA_CERT_INVALID, UA_BAD_CERT_INVALID);
        snprintf(out->message, sizeof(out->message),
                 "the peer sent %zu bytes that are not an X.509 certificate "
                 "with an RSA key",
                 len);
        return EP_ESECURITY;
    }
    v.leaf = leaf;
    snprintf(out->subject, sizeof(out->subject), "%s", ep_ua_cert_common_name(leaf));
    scrub(out->subject);
    snprintf(out->thumbprint, sizeof(out->thumbprint), "%s", ep_ua_cert_thumbprint_hex(leaf));

    untrusted = sk_X509_new_null();
    if (untrusted == NULL) {
        err = EP_ENOMEM;
        goto done;
    }
    /* The rest of the blob is the peer's chain, DER certificates back to
     * back (OPC 10000-6 6.7.2.3). */
    for (const unsigned char *p = der + used, *end = der + len; p < end;) {
        X509 *x = sk_X509_num(untrusted) < MAX_CHAIN ? d2i_X509(NULL, &p, (long)(end - p)) : NULL;
        if (x == NULL || sk_X509_push(untrusted, x) <= 0) {
            X509_free(x);
            ERR_clear_error();
            set(&v, EP_UA_CERT_INVALID, UA_BAD_CERT_INVALID);
            snprintf(out->message, sizeof(out->message),
                     "the chain sent with certificate \"%s\" holds more than "
                     "%d certificates or bytes that are not a certificate",
                     out->subject, MAX_CHAIN);
            err = EP_ESECURITY;
            goto done;
        }
    }
    for (int i = 0; i < sk_X509_num(pki->issuers); i++) {
        X509 *x = sk_X509_value(pki->issuers, i);
        if (X509_up_ref(x) != 1 || sk_X509_push(untrusted, x) <= 0) {
            X509_free(x);
            err = EP_ENOMEM;
            goto done;
        }
    }

    err = verify_chain(&v, untrusted);
    if (err != EP_EOK)
        goto done;
    decide(&v);
    err = out->result == EP_UA_CERT_TRUSTED ? EP_EOK : EP_ESECURITY;
done:
    for (int c = 0; c < CAT_COUNT; c++)
        X509_free(v.st.cat[c].cert);
    sk_X509_pop_free(untrusted, X509_free);
    ep_ua_cert_free(leaf);
    ERR_clear_error();
    return err;
}

const char *ep_ua_cert_result_name(ep_ua_cert_result r)
{
    static const char *const names[] = {
        [EP_UA_CERT_TRUSTED] = "trusted",
        [EP_UA_CERT_INVALID] = "invalid",
        [EP_UA_CERT_CHAIN_INCOMPLETE] = "chain incomplete",
        [EP_UA_CERT_SIGNATURE_INVALID] = "signature invalid",
        [EP_UA_CERT_KEY_TOO_SHORT] = "key too short",
        [EP_UA_CERT_KEY_TOO_LONG] = "key too long",
        [EP_UA_CERT_POLICY_MISMATCH] = "signature algorithm too weak",
        [EP_UA_CERT_UNTRUSTED] = "untrusted",
        [EP_UA_CERT_EXPIRED] = "expired",
        [EP_UA_CERT_NOT_YET_VALID] = "not yet valid",
        [EP_UA_CERT_HOSTNAME_MISMATCH] = "host name mismatch",
        [EP_UA_CERT_URI_MISMATCH] = "application URI mismatch",
        [EP_UA_CERT_BAD_USAGE] = "usage not allowed",
        [EP_UA_CERT_REVOKED] = "revoked",
        [EP_UA_CERT_REVOCATION_UNKNOWN] = "revocation unknown",
    };
    if ((unsigned)r >= sizeof(names) / sizeof(names[0]) || names[r] == NULL)
        return "unknown";
    return names[r];
}
