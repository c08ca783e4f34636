/*
 * cert.c - creating, parsing and saving application instance certificates.
 *
 * Parsing caches what the secure channel asks for on every handshake
 * (DER, SHA-1 thumbprint, application URI, CN, public key) so that those
 * accessors are plain field reads. The subjectAltName is built from
 * GENERAL_NAME objects rather than an OpenSSL config string, so URIs that
 * contain commas or other config syntax are encoded exactly as given.
 */
#include "codec/opcua_crypto/crypto_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define DEFAULT_VALIDITY_DAYS 365
#define DEFAULT_BACKDATE 3600 /* tolerate peers whose clock is behind */

static char *dup_asn1_utf8(const ASN1_STRING *s)
{
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    char *r;
    if (n < 0)
        return NULL;
    if (memchr(utf8, 0, (size_t)n) != NULL) {
        OPENSSL_free(utf8);
        return NULL;
    }
    r = malloc((size_t)n + 1);
    if (r != NULL) {
        memcpy(r, utf8, (size_t)n);
        r[n] = '\0';
    }
    OPENSSL_free(utf8);
    return r;
}

/* Extracts the first SAN URI. Returns EP_EOK with *uri NULL when absent,
 * EP_EMALFORMED when the URI holds a NUL byte. */
static ep_err san_uri(X509 *x, char **uri)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    ep_err err = EP_EOK;
    *uri = NULL;
    if (gens == NULL)
        return EP_EOK;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.ia5);
        int n = ASN1_STRING_length(g->d.ia5);
        if (n < 0 || memchr(d, 0, (size_t)n) != NULL) {
            err = EP_EMALFORMED;
            break;
        }
        *uri = malloc((size_t)n + 1);
        if (*uri == NULL) {
            err = EP_ENOMEM;
            break;
        }
        memcpy(*uri, d, (size_t)n);
        (*uri)[n] = '\0';
        break;
    }
    GENERAL_NAMES_free(gens);
    return err;
}

static char *subject_cn(X509 *x)
{
    const X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    char *cn = NULL;
    if (i >= 0)
        cn = dup_asn1_utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (cn == NULL)
        cn = calloc(1, 1);
    return cn;
}

ep_err ep_ua__cert_wrap(X509 *x509, ep_ua_cert **out)
{
    static const char hex[] = "0123456789abcdef";
    const ep_ua__algs *a = ep_ua__algs_get();
    ep_ua_cert *c;
    unsigned char *der = NULL;
    unsigned int tl = 0;
    int n;
    ep_err err;
    if (a == NULL) {
        X509_free(x509);
        return EP_ECRYPTO;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        X509_free(x509);
        return EP_ENOMEM;
    }
    c->x509 = x509;
    c->pub.pkey = X509_get0_pubkey(x509);
    c->pub.borrowed = 1;
    err = EP_EMALFORMED;
    if (c->pub.pkey == NULL || !EVP_PKEY_is_a(c->pub.pkey, "RSA"))
        goto fail;
    n = i2d_X509(x509, &der);
    if (n <= 0)
        goto fail;
    c->der = der;
    c->der_len = (size_t)n;
    err = EP_ECRYPTO;
    if (EVP_Digest(der, (size_t)n, c->thumb, &tl, a->sha1, NULL) != 1 || tl != EP_UA__THUMB_LEN)
        goto fail;
    for (size_t i = 0; i < EP_UA__THUMB_LEN; i++) {
        c->thumb_hex[2 * i] = hex[c->thumb[i] >> 4];
        c->thumb_hex[2 * i + 1] = hex[c->thumb[i] & 15];
    }
    err = san_uri(x509, &c->app_uri);
    if (err != EP_EOK)
        goto fail;
    c->cn = subject_cn(x509);
    if (c->cn == NULL) {
        err = EP_ENOMEM;
        goto fail;
    }
    ERR_clear_error();
    *out = c;
    return EP_EOK;
fail:
    ERR_clear_error();
    ep_ua_cert_free(c);
    return err;
}

void ep_ua_cert_free(ep_ua_cert *cert)
{
    if (cert == NULL)
        return;
    X509_free(cert->x509);
    OPENSSL_free(cert->der);
    free(cert->app_uri);
    free(cert->cn);
    free(cert);
}

ep_err ep_ua_cert_parse(const uint8_t *data, size_t len, ep_ua_cert **out, size_t *used)
{
    X509 *x = NULL;
    size_t consumed = len;
    if (data == NULL || out == NULL || len == 0 || len > EP_UA__MAX_CRL_FILE)
        return EP_EINVAL;
    if (ep_ua__is_pem(data, len)) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio == NULL)
            return EP_ENOMEM;
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *p = data;
        x = d2i_X509(NULL, &p, (long)len);
        consumed = (size_t)(p - data);
    }
    ERR_clear_error();
    if (x == NULL)
        return EP_EMALFORMED;
    ep_err err = ep_ua__cert_wrap(x, out);
    if (err == EP_EOK && used != NULL)
        *used = consumed;
    return err;
}

ep_err ep_ua_cert_load(const char *path, ep_ua_cert **out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ep_err err;
    if (path == NULL || out == NULL)
        return EP_EINVAL;
    err = ep_ua__file_read(path, EP_UA__MAX_FILE, &data, &len);
    if (err != EP_EOK)
        return err;
    err = len ? ep_ua_cert_parse(data, len, out, NULL) : EP_EMALFORMED;
    free(data);
    return err;
}

ep_err ep_ua_cert_save(const ep_ua_cert *cert, const char *path, ep_ua_cert_format format)
{
    ep_err err;
    if (cert == NULL || path == NULL)
        return EP_EINVAL;
    if (format == EP_UA_CERT_DER)
        return ep_ua__file_write(path, cert->der, cert->der_len, 0644);
    BIO *bio = BIO_new(BIO_s_mem());
    char *mem = NULL;
    long n;
    if (bio == NULL)
        return EP_ENOMEM;
    if (PEM_write_bio_X509(bio, cert->x509) != 1) {
        BIO_free(bio);
        ERR_clear_error();
        return EP_ENOMEM;
    }
    n = BIO_get_mem_data(bio, &mem);
    err = n > 0 ? ep_ua__file_write(path, mem, (size_t)n, 0644) : EP_ENOMEM;
    BIO_free(bio);
    return err;
}

const uint8_t *ep_ua_cert_der(const ep_ua_cert *cert, size_t *len)
{
    *len = cert->der_len;
    return cert->der;
}

const uint8_t *ep_ua_cert_thumbprint(const ep_ua_cert *cert) { return cert->thumb; }

const char *ep_ua_cert_thumbprint_hex(const ep_ua_cert *cert) { return cert->thumb_hex; }

const char *ep_ua_cert_app_uri(const ep_ua_cert *cert) { return cert->app_uri; }

const char *ep_ua_cert_common_name(const ep_ua_cert *cert) { return cert->cn; }

const ep_ua_key *ep_ua_cert_key(const ep_ua_cert *cert) { return &cert->pub; }

unsigned ep_ua_cert_key_bits(const ep_ua_cert *cert) { return ep_ua_key_bits(&cert->pub); }

static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

ep_err ep_ua_cert_validity(const ep_ua_cert *cert, int64_t *not_before, int64_t *not_after)
{
    int64_t nb, na;
    if (cert == NULL || not_before == NULL || not_after == NULL)
        return EP_EINVAL;
    if (!asn1_time_unix(X509_get0_notBefore(cert->x509), &nb) ||
        !asn1_time_unix(X509_get0_notAfter(cert->x509), &na)) {
        ERR_clear_error();
        return EP_EMALFORMED;
    }
    *not_before = nb;
    *not_after = na;
    return EP_EOK;
}

bool ep_ua_cert_matches_key(const ep_ua_cert *cert, const ep_ua_key *key)
{
    if (cert == NULL || key == NULL || key->pkey == NULL)
        return false;
    int r = EVP_PKEY_eq(cert->pub.pkey, key->pkey);
    ERR_clear_error();
    return r == 1;
}

bool ep_ua_cert_equal(const ep_ua_cert *a, const ep_ua_cert *b)
{
    return a != NULL && b != NULL && a->der_len == b->der_len &&
           memcmp(a->der, b->der, a->der_len) == 0;
}

/* ------------------------------------------------------------- create -- */

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (ex == NULL)
        return 0;
    int ok = X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return ok == 1;
}

static int add_gen(GENERAL_NAMES *gens, int type, const char *value)
{
    GENERAL_NAME *g = NULL;
    if (type == GEN_IPADD) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);
        if (ip == NULL)
            return 0;
        g = GENERAL_NAME_new();
        if (g == NULL) {
            ASN1_OCTET_STRING_free(ip);
            return 0;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (s == NULL || ASN1_STRING_set(s, value, (int)strlen(value)) != 1 ||
            (g = GENERAL_NAME_new()) == NULL) {
            ASN1_IA5STRING_free(s);
            return 0;
        }
        GENERAL_NAME_set0_value(g, type, s);
    }
    if (sk_GENERAL_NAME_push(gens, g) <= 0) {
        GENERAL_NAME_free(g);
        return 0;
    }
    return 1;
}

static int add_san(X509 *x, const ep_ua_cert_opts *o)
{
    GENERAL_NAMES *gens;
    int ok = 1;
    if ((o->app_uri == NULL || !*o->app_uri) && (o->hostname == NULL || !*o->hostname))
        return 1;
    gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL)
        return 0;
    if (o->app_uri != NULL && *o->app_uri)
        ok = add_gen(gens, GEN_URI, o->app_uri);
    if (ok && o->hostname != NULL && *o->hostname) {
        ASN1_OCTET_STRING *probe = a2i_IPADDRESS(o->hostname);
        int type = probe != NULL ? GEN_IPADD : GEN_DNS;
        ASN1_OCTET_STRING_free(probe);
        ERR_clear_error();
        ok = add_gen(gens, type, o->hostname);
    }
    if (ok)
        ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(gens);
    return ok;
}

static int set_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    int ok = bn != NULL && BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1 &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static int set_name(X509 *x, const ep_ua_cert_opts *o)
{
    X509_NAME *name = X509_get_subject_name(x);
    const char *org = o->organization ? o->organization : "edgeplane";
    return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)o->app_name,
                                      -1, -1, 0) == 1 &&
           (!*org || X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                (const unsigned char *)org, -1, -1, 0) == 1);
}

ep_err ep_ua_cert_create(const ep_ua_cert_opts *opts, const ep_ua_key *key,
                         const ep_ua_cert *issuer, const ep_ua_key *issuer_key, ep_ua_cert **out,
                         char *detail, size_t detail_cap)
{
    const ep_ua__algs *a = ep_ua__algs_get();
    const ep_ua_key *signer = issuer ? issuer_key : key;
    X509 *x = NULL;
    X509V3_CTX v3;
    int64_t nb;
    uint32_t days;
    const char *ku;
    if (opts == NULL || key == NULL || out == NULL || opts->app_name == NULL || !*opts->app_name ||
        (!opts->ca && (opts->app_uri == NULL || !*opts->app_uri))) {
        ep_ua__detail(detail, detail_cap, "certificate needs an application name%s",
                      opts && opts->ca ? "" : " and an application URI");
        return EP_EINVAL;
    }
    if ((issuer == NULL) != (issuer_key == NULL) || signer == NULL || !signer->is_private ||
        (issuer != NULL && !ep_ua_cert_matches_key(issuer, issuer_key))) {
        ep_ua__detail(detail, detail_cap, "signing key is not the private key of the issuer");
        return EP_EINVAL;
    }
    if (a == NULL) {
        ep_ua__detail(detail, detail_cap, "OpenSSL lacks SHA-256");
        return EP_ECRYPTO;
    }
    nb = opts->not_before ? opts->not_before : (int64_t)time(NULL) - DEFAULT_BACKDATE;
    days = opts->validity_days ? opts->validity_days : DEFAULT_VALIDITY_DAYS;

    x = X509_new();
    if (x == NULL) {
        ep_ua__detail(detail, detail_cap, "out of memory");
        return EP_ENOMEM;
    }
    if (X509_set_version(x, X509_VERSION_3) != 1 || !set_serial(x) ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(nb + (int64_t)days * 86400)) == NULL ||
        X509_set_pubkey(x, key->pkey) != 1) {
        ep_ua__detail(detail, detail_cap, "cannot set certificate fields");
        goto fail;
    }
    if (!set_name(x, opts)) {
        ep_ua__detail(detail, detail_cap,
                      "cannot use \"%s\" as subject common name (at most 64 "
                      "characters)",
                      opts->app_name);
        goto fail;
    }
    if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->x509)
                                       : X509_get_subject_name(x)) != 1) {
        ep_ua__detail(detail, detail_cap, "cannot set issuer name");
        goto fail;
    }
    if (opts->ca)
        ku = "critical,digitalSignature,keyCertSign,cRLSign";
    else if (issuer == NULL)
        ku = "critical,digitalSignature,nonRepudiation,keyEncipherment,"
             "dataEncipherment,keyCertSign";
    else
        ku = "critical,digitalSignature,nonRepudiation,keyEncipherment,"
             "dataEncipherment";
    X509V3_set_ctx(&v3, issuer ? issuer->x509 : x, x, NULL, NULL, 0);
    if (!add_ext(x, &v3, NID_basic_constraints,
                 opts->ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
        !add_ext(x, &v3, NID_key_usage, ku) ||
        (!opts->ca && !add_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth")) ||
        !add_ext(x, &v3, NID_subject_key_identifier, "hash") ||
        !add_ext(x, &v3, NID_authority_key_identifier, issuer ? "keyid,issuer" : "keyid:always")) {
        ep_ua__detail(detail, detail_cap, "cannot add certificate extensions");
        goto fail;
    }
    if (!add_san(x, opts)) {
        ep_ua__detail(detail, detail_cap, "cannot encode subjectAltName (URI \"%s\", host \"%s\")",
                      opts->app_uri ? opts->app_uri : "", opts->hostname ? opts->hostname : "");
        goto fail;
    }
    if (X509_sign(x, signer->pkey, a->sha256) <= 0) {
        ep_ua__detail(detail, detail_cap, "cannot sign certificate");
        goto fail;
    }
    ERR_clear_error();
    ep_err err = ep_ua__cert_wrap(x, out);
    if (err != EP_EOK)
        ep_ua__detail(detail, detail_cap, "cannot encode certificate");
    return err;
fail:
    X509_free(x);
    return EP_ECRYPTO;
}
