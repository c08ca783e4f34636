/* x509map_test.c - certificate subject mapping: the canonical subject form,
 * matching from the leaf up (first match wins, either name order), the PEM
 * chain for custom authentication, and attribute sets (attrs.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "svc/auth/x509map.h"

static void test_normalize(void **st)
{
    (void)st;
    char out[256];
    assert_int_equal(ep_x509_subject_normalize("CN = a b , o=Site 1", out, sizeof(out)), EP_EOK);
    assert_string_equal(out, "CN=a b,O=Site 1");
    assert_int_equal(ep_x509_subject_normalize("cn=x\\,y", out, sizeof(out)), EP_EOK);
    assert_string_equal(out, "CN=x\\,y");
    static const char *bad[] = {"", "CN", "=x", "CN=", "C N=x", "CN=a,,O=b", "CN=a,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ep_x509_subject_normalize(bad[i], out, sizeof(out)), EP_EINVAL);
    assert_int_equal(ep_x509_subject_normalize("CN=abcdefgh", out, 8), EP_ETOOBIG);
}

typedef struct cert {
    X509 *x;
    EVP_PKEY *k;
} cert;

/* A certificate named O=org (if any), CN=cn, signed by issuer (or self). */
static cert make(const char *cn, const char *org, const cert *issuer)
{
    cert c = {X509_new(), EVP_EC_gen("P-256")};
    assert_non_null(c.x);
    assert_non_null(c.k);
    X509_NAME *n = X509_NAME_new();
    if (org)
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_version(c.x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.x), 1);
    X509_gmtime_adj(X509_getm_notBefore(c.x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c.x), 3600);
    X509_set_subject_name(c.x, n);
    X509_set_issuer_name(c.x, issuer ? X509_get_subject_name(issuer->x) : n);
    X509_set_pubkey(c.x, c.k);
    assert_true(X509_sign(c.x, issuer ? issuer->k : c.k, EVP_sha256()) > 0);
    X509_NAME_free(n);
    return c;
}

static void drop(cert *c)
{
    X509_free(c->x);
    EVP_PKEY_free(c->k);
}

static STACK_OF(X509) * chain_of(const cert *leaf, const cert *inter, const cert *root)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    sk_X509_push(sk, leaf->x);
    if (inter)
        sk_X509_push(sk, inter->x);
    sk_X509_push(sk, root->x);
    return sk;
}

static const char *value(const ep_auth_attrs *a, const char *name)
{
    for (size_t i = 0; a && i < a->n; i++)
        if (strcmp(a->items[i].name, name) == 0)
            return a->items[i].value;
    return NULL;
}

static void test_match(void **st)
{
    (void)st;
    cert root = make("root CA", NULL, NULL);
    cert inter = make("site CA", "Site 1", &root);
    cert dev = make("dev-1", NULL, &inter);
    cert special = make("dev-special", NULL, &inter);
    cert direct = make("dev-direct", NULL, &root);
    const char *site_kv[] = {"building=b1", "role=sensor"};
    const char *special_kv[] = {"building=b9"};
    ep_x509_map_entry e[] = {
        {"site", "CN = site CA, O = Site 1", site_kv, 2},        /* RFC 4514 order */
        {"special", "cn=dev-special", special_kv, 1},            /* a leaf of its own */
        {"stored-order", "O=Nobody, CN=site CA", special_kv, 1}, /* never matches */
    };
    ep_x509_map *m = NULL;
    char why[200];
    assert_int_equal(ep_x509_map_new(e, 3, &m, why, sizeof(why)), EP_EOK);

    ep_auth_attrs *a = NULL;
    const char *which = NULL;
    STACK_OF(X509) *sk = chain_of(&dev, &inter, &root);
    assert_int_equal(ep_x509_map_match(m, sk, &a, &which), EP_EOK);
    assert_string_equal(which, "site");
    assert_string_equal(value(a, "building"), "b1");
    assert_string_equal(value(a, "role"), "sensor");
    ep_auth_attrs_free(a);
    char *pem = NULL;
    assert_int_equal(ep_x509_chain_pem(sk, &pem), EP_EOK);
    int certs = 0;
    for (const char *p = pem; (p = strstr(p, "BEGIN CERTIFICATE")) != NULL; p++)
        certs++;
    assert_int_equal(certs, 3);
    free(pem);
    sk_X509_free(sk);

    sk = chain_of(&special, &inter, &root); /* the leaf's entry stops the walk */
    assert_int_equal(ep_x509_map_match(m, sk, &a, &which), EP_EOK);
    assert_string_equal(which, "special");
    assert_string_equal(value(a, "building"), "b9");
    ep_auth_attrs_free(a);
    sk_X509_free(sk);

    sk = chain_of(&direct, NULL, &root); /* nothing matches */
    assert_int_equal(ep_x509_map_match(m, sk, &a, &which), EP_EOK);
    assert_null(a);
    assert_null(which);
    sk_X509_free(sk);

    /* the stored order matches too */
    ep_x509_map_entry fwd = {"fwd", "O = Site 1, CN = site CA", site_kv, 1};
    ep_x509_map *m2 = NULL;
    assert_int_equal(ep_x509_map_new(&fwd, 1, &m2, why, sizeof(why)), EP_EOK);
    sk = chain_of(&dev, &inter, &root);
    assert_int_equal(ep_x509_map_match(m2, sk, &a, NULL), EP_EOK);
    assert_string_equal(value(a, "building"), "b1");
    ep_auth_attrs_free(a);
    sk_X509_free(sk);
    ep_x509_map_free(m2);

    ep_x509_map_entry bad = {"bad", "CN=x", (const char *[]){"novalue"}, 1};
    assert_int_equal(ep_x509_map_new(&bad, 1, &m2, why, sizeof(why)), EP_EINVAL);
    assert_non_null(strstr(why, "bad: attributes"));
    ep_x509_map_free(m);
    drop(&root);
    drop(&inter);
    drop(&dev);
    drop(&special);
    drop(&direct);
}

static void test_attrs(void **st)
{
    (void)st;
    ep_auth_attrs *a = NULL;
    const char *kv[] = {"a=1", "b=x=y", "a=2", "c="};
    assert_int_equal(ep_auth_attrs_parse_kv(kv, 4, &a), EP_EOK);
    assert_int_equal(a->n, 3); /* the first "a" wins */
    assert_string_equal(value(a, "a"), "1");
    assert_string_equal(value(a, "b"), "x=y");
    assert_string_equal(value(a, "c"), "");
    ep_auth_attrs *b = NULL;
    assert_int_equal(ep_auth_attrs_dup(a, &b), EP_EOK);
    ep_auth_attrs_free(a);
    assert_string_equal(value(b, "b"), "x=y");
    ep_auth_attrs_free(b);
    const char *bad[] = {"=x"};
    assert_int_equal(ep_auth_attrs_parse_kv(bad, 1, &a), EP_EINVAL);
    const char *none[] = {"x"};
    assert_int_equal(ep_auth_attrs_parse_kv(none, 1, &a), EP_EINVAL);
    assert_int_equal(ep_auth_attrs_dup(NULL, &b), EP_EOK);
    assert_null(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_attrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
