/* cert_test.c - certificate generation, parsing, files, CA-issued
 * certificates and chains, and the openssl command line tool reading what
 * we generate. */
#include "test_util.h"

#include <openssl/x509v3.h>

#define APP_URI "urn:edgeplane:test:app"
#define HOST "plc-gw.example.net"

static ep_ua_key *KEY, *CAKEY;

static int setup(void **state)
{
    (void)state;
    return ep_ua_key_generate(2048, &KEY) == EP_EOK && ep_ua_key_generate(2048, &CAKEY) == EP_EOK
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    ep_ua_key_free(KEY);
    ep_ua_key_free(CAKEY);
    return 0;
}

static ep_ua_cert *make_self_signed(const char *uri, const char *host)
{
    ep_ua_cert_opts o = {.app_name = "edgeplane test", .app_uri = uri, .hostname = host};
    ep_ua_cert *c = NULL;
    char detail[256] = "";
    assert_int_equal(ep_ua_cert_create(&o, KEY, NULL, NULL, &c, detail, sizeof(detail)), EP_EOK);
    assert_non_null(c);
    return c;
}

static void test_self_signed_profile(void **state)
{
    (void)state;
    ep_ua_cert *c = make_self_signed(APP_URI, HOST);
    X509 *x = c->x509;

    assert_string_equal(ep_ua_cert_app_uri(c), APP_URI);
    assert_string_equal(ep_ua_cert_common_name(c), "edgeplane test");
    assert_int_equal(ep_ua_cert_key_bits(c), 2048);
    assert_true(ep_ua_cert_matches_key(c, KEY));
    assert_false(ep_ua_cert_matches_key(c, CAKEY));

    /* Thumbprint = SHA-1 of the DER encoding. */
    size_t dl = 0;
    const uint8_t *der = ep_ua_cert_der(c, &dl);
    uint8_t sha1[20];
    unsigned int sl = 0;
    assert_int_equal(EVP_Digest(der, dl, sha1, &sl, EVP_sha1(), NULL), 1);
    assert_memory_equal(ep_ua_cert_thumbprint(c), sha1, 20);
    assert_int_equal(strlen(ep_ua_cert_thumbprint_hex(c)), 40);

    /* Validity: one hour back-dated, 365 days. */
    int64_t nb = 0, na = 0, now = (int64_t)time(NULL);
    assert_int_equal(ep_ua_cert_validity(c, &nb, &na), EP_EOK);
    assert_true(nb <= now - 3500 && nb >= now - 3700);
    assert_int_equal(na - nb, 365 * 86400);

    /* Key usage, extended key usage, basic constraints as OPC UA expects. */
    uint32_t ku = X509_get_key_usage(x);
    assert_int_equal(ku, KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_ENCIPHERMENT |
                             KU_DATA_ENCIPHERMENT | KU_KEY_CERT_SIGN);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    uint32_t fl = X509_get_extension_flags(x);
    assert_true(fl & EXFLAG_BCONS);
    assert_false(fl & EXFLAG_CA);
    assert_true(fl & EXFLAG_SS); /* self-signed, usable as its own anchor */
    int crit = 0;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_non_null(X509_get0_authority_key_id(x));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(x), X509_get0_authority_key_id(x)), 0);
    assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);

    /* SAN: URI first, then the DNS name. */
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 2);
    assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_URI);
    assert_int_equal(sk_GENERAL_NAME_value(gens, 1)->type, GEN_DNS);
    GENERAL_NAMES_free(gens);
    assert_int_equal(X509_check_host(x, HOST, 0, 0, NULL), 1);

    /* Subject CN and O. */
    char buf[256];
    X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf));
    assert_string_equal(buf, "/CN=edgeplane test/O=edgeplane");
    assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
    ep_ua_cert_free(c);
}

static void test_san_variants(void **state)
{
    (void)state;
    /* URIs with config-file syntax are encoded verbatim; IP hosts go to
     * iPAddress. */
    ep_ua_cert *c = make_self_signed("urn:plant,line=3:opc server", "192.0.2.7");
    assert_string_equal(ep_ua_cert_app_uri(c), "urn:plant,line=3:opc server");
    assert_int_equal(X509_check_ip_asc(c->x509, "192.0.2.7", 0), 1);
    ep_ua_cert_free(c);

    c = make_self_signed(APP_URI, NULL);
    GENERAL_NAMES *gens = X509_get_ext_d2i(c->x509, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    GENERAL_NAMES_free(gens);
    ep_ua_cert_free(c);
}

static void test_create_errors(void **state)
{
    (void)state;
    ep_ua_cert *c = NULL, *ca = NULL;
    char detail[256] = "";
    ep_ua_cert_opts o = {.app_name = "x"};
    assert_int_equal(ep_ua_cert_create(&o, KEY, NULL, NULL, &c, detail, sizeof(detail)), EP_EINVAL);
    assert_non_null(strstr(detail, "application URI"));
    o.app_uri = APP_URI;
    o.app_name = "";
    assert_int_equal(ep_ua_cert_create(&o, KEY, NULL, NULL, &c, NULL, 0), EP_EINVAL);

    /* Issuer and key must belong together. */
    ep_ua_cert_opts cao = {.app_name = "Test CA", .ca = true};
    assert_int_equal(ep_ua_cert_create(&cao, CAKEY, NULL, NULL, &ca, NULL, 0), EP_EOK);
    o.app_name = "leaf";
    assert_int_equal(ep_ua_cert_create(&o, KEY, ca, KEY, &c, detail, sizeof(detail)), EP_EINVAL);
    assert_int_equal(ep_ua_cert_create(&o, KEY, ca, NULL, &c, NULL, 0), EP_EINVAL);
    /* A public-only key cannot self-sign. */
    assert_int_equal(ep_ua_cert_create(&o, ep_ua_cert_key(ca), NULL, NULL, &c, NULL, 0), EP_EINVAL);
    /* Common names are limited to 64 characters by X.520. */
    char longname[100];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    o.app_name = longname;
    assert_int_equal(ep_ua_cert_create(&o, KEY, NULL, NULL, &c, detail, sizeof(detail)),
                     EP_ECRYPTO);
    assert_non_null(strstr(detail, "common name"));
    assert_null(c);
    ep_ua_cert_free(ca);
}

static void test_ca_issued_and_chain(void **state)
{
    (void)state;
    ep_ua_cert *ca = NULL, *leaf = NULL, *p1 = NULL, *p2 = NULL;
    ep_ua_cert_opts cao = {.app_name = "Plant CA", .ca = true, .validity_days = 3650};
    ep_ua_cert_opts lo = {
        .app_name = "press-7", .app_uri = "urn:plant:press-7", .hostname = "press-7"};
    assert_int_equal(ep_ua_cert_create(&cao, CAKEY, NULL, NULL, &ca, NULL, 0), EP_EOK);
    assert_null(ep_ua_cert_app_uri(ca));
    assert_true(X509_get_extension_flags(ca->x509) & EXFLAG_CA);
    assert_int_equal(X509_get_key_usage(ca->x509),
                     KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(ep_ua_cert_create(&lo, KEY, ca, CAKEY, &leaf, NULL, 0), EP_EOK);
    assert_int_equal(X509_check_issued(ca->x509, leaf->x509), X509_V_OK);
    assert_int_equal(X509_verify(leaf->x509, X509_get0_pubkey(ca->x509)), 1);
    /* A CA-issued application certificate does not sign certificates. */
    assert_false(X509_get_key_usage(leaf->x509) & KU_KEY_CERT_SIGN);
    assert_false(X509_get_extension_flags(leaf->x509) & EXFLAG_SS);
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(ca->x509),
                                           X509_get0_authority_key_id(leaf->x509)),
                     0);

    /* OPC UA chains are DER certificates back to back. */
    size_t ll, cl, used = 0, used2 = 0;
    const uint8_t *ld = ep_ua_cert_der(leaf, &ll), *cd = ep_ua_cert_der(ca, &cl);
    uint8_t *chain = malloc(ll + cl);
    memcpy(chain, ld, ll);
    memcpy(chain + ll, cd, cl);
    assert_int_equal(ep_ua_cert_parse(chain, ll + cl, &p1, &used), EP_EOK);
    assert_int_equal(used, ll);
    assert_true(ep_ua_cert_equal(p1, leaf));
    assert_int_equal(ep_ua_cert_parse(chain + used, ll + cl - used, &p2, &used2), EP_EOK);
    assert_true(ep_ua_cert_equal(p2, ca));
    assert_false(ep_ua_cert_equal(p1, p2));
    free(chain);
    ep_ua_cert_free(p1);
    ep_ua_cert_free(p2);
    ep_ua_cert_free(leaf);
    ep_ua_cert_free(ca);
}

static void test_files_and_parse_errors(void **state)
{
    (void)state;
    char dir[256], der[300], pem[300];
    ep_ua_cert *c = make_self_signed(APP_URI, HOST), *a = NULL, *b = NULL;
    tu_mkdtemp(dir, sizeof(dir), "cert");
    tu_path(der, sizeof(der), "%s/c.der", dir);
    tu_path(pem, sizeof(pem), "%s/c.pem", dir);
    assert_int_equal(ep_ua_cert_save(c, der, EP_UA_CERT_DER), EP_EOK);
    assert_int_equal(ep_ua_cert_save(c, pem, EP_UA_CERT_PEM), EP_EOK);
    assert_int_equal(ep_ua_cert_load(der, &a), EP_EOK);
    assert_int_equal(ep_ua_cert_load(pem, &b), EP_EOK);
    assert_true(ep_ua_cert_equal(a, c));
    assert_true(ep_ua_cert_equal(b, c));
    assert_string_equal(ep_ua_cert_app_uri(b), APP_URI);
    ep_ua_cert_free(a);
    ep_ua_cert_free(b);
    a = NULL;

    /* Truncated DER, garbage and a missing file. */
    size_t dl = 0;
    const uint8_t *d = ep_ua_cert_der(c, &dl);
    assert_int_equal(ep_ua_cert_parse(d, dl - 1, &a, NULL), EP_EMALFORMED);
    assert_int_equal(ep_ua_cert_parse((const uint8_t *)"-----BEGIN junk", 15, &a, NULL),
                     EP_EMALFORMED);
    assert_int_equal(ep_ua_cert_parse((const uint8_t *)"\x30\x03\x02\x01\x01", 5, &a, NULL),
                     EP_EMALFORMED);
    assert_null(a);
    tu_path(der, sizeof(der), "%s/none.der", dir);
    assert_int_equal(ep_ua_cert_load(der, &a), EP_ENOTFOUND);

    /* Encrypting for a peer uses the key in its certificate. */
    const ep_ua_policy *p = ep_ua_policy_get(EP_UA_POLICY_BASIC256SHA256);
    uint8_t ct[256], pt[256];
    size_t cl = 0, pl = 0;
    assert_false(ep_ua_key_is_private(ep_ua_cert_key(c)));
    assert_int_equal(
        ep_ua_asym_encrypt(p, ep_ua_cert_key(c), (const uint8_t *)"hi", 2, ct, sizeof(ct), &cl),
        EP_EOK);
    assert_int_equal(ep_ua_asym_decrypt(p, KEY, ct, cl, pt, sizeof(pt), &pl), EP_EOK);
    assert_int_equal(pl, 2);
    assert_int_equal(ep_ua_asym_decrypt(p, ep_ua_cert_key(c), ct, cl, pt, sizeof(pt), &pl),
                     EP_EINVAL);
    ep_ua_cert_free(c);
    tu_rmtree(dir);
}

/* Runs a shell command and returns its stdout (NUL-terminated, malloc'ed),
 * or NULL when it exits non-zero. */
static char *run(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    size_t len = 0, cap = 1 << 16;
    char *out = malloc(cap);
    if (f == NULL || out == NULL) {
        free(out);
        if (f)
            pclose(f);
        return NULL;
    }
    size_t n;
    while ((n = fread(out + len, 1, cap - 1 - len, f)) > 0)
        len += n;
    out[len] = '\0';
    if (pclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The stock openssl tool must parse and verify what we generate. */
static void test_openssl_cli_interop(void **state)
{
    (void)state;
    char dir[256], cmd[1024], der[300], capem[300], leafpem[300];
    char *out = run("openssl version 2>/dev/null");
    if (out == NULL) {
        print_message("openssl command line tool not found: interop check SKIPPED\n");
        skip();
    }
    free(out);
    tu_mkdtemp(dir, sizeof(dir), "cli");
    ep_ua_cert *c = make_self_signed(APP_URI, HOST);
    tu_path(der, sizeof(der), "%s/self.der", dir);
    assert_int_equal(ep_ua_cert_save(c, der, EP_UA_CERT_DER), EP_EOK);

    tu_path(cmd, sizeof(cmd), "openssl x509 -inform DER -in '%s' -noout -text", der);
    out = run(cmd);
    assert_non_null(out);
    static const char *const expect[] = {
        "Version: 3 (0x2)",
        "Signature Algorithm: sha256WithRSAEncryption",
        "Subject: CN = edgeplane test, O = edgeplane",
        "Public-Key: (2048 bit)",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature, Non Repudiation, Key Encipherment, Data Encipherment, "
        "Certificate Sign",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "URI:" APP_URI ", DNS:" HOST,
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        if (strstr(out, expect[i]) == NULL)
            fail_msg("openssl x509 -text lacks \"%s\":\n%s", expect[i], out);
    }
    free(out);

    /* Same thumbprint as openssl computes. */
    tu_path(cmd, sizeof(cmd), "openssl x509 -inform DER -in '%s' -noout -fingerprint -sha1", der);
    out = run(cmd);
    assert_non_null(out);
    char hex[41];
    size_t j = 0;
    for (const char *p = strchr(out, '='); p && *p && j < 40; p++)
        if (*p != '=' && *p != ':' && *p != '\n')
            hex[j++] = (char)(*p >= 'A' && *p <= 'F' ? *p + 32 : *p);
    hex[j] = '\0';
    assert_string_equal(hex, ep_ua_cert_thumbprint_hex(c));
    free(out);

    /* A self-signed certificate verifies as its own anchor; a CA-issued one
     * verifies against the CA. */
    tu_path(leafpem, sizeof(leafpem), "%s/self.pem", dir);
    assert_int_equal(ep_ua_cert_save(c, leafpem, EP_UA_CERT_PEM), EP_EOK);
    tu_path(cmd, sizeof(cmd), "openssl verify -CAfile '%s' '%s'", leafpem, leafpem);
    out = run(cmd);
    assert_non_null(out);
    free(out);

    ep_ua_cert *ca = NULL, *leaf = NULL;
    ep_ua_cert_opts cao = {.app_name = "Plant CA", .ca = true};
    ep_ua_cert_opts lo = {.app_name = "press-7", .app_uri = "urn:plant:press-7"};
    assert_int_equal(ep_ua_cert_create(&cao, CAKEY, NULL, NULL, &ca, NULL, 0), EP_EOK);
    assert_int_equal(ep_ua_cert_create(&lo, KEY, ca, CAKEY, &leaf, NULL, 0), EP_EOK);
    tu_path(capem, sizeof(capem), "%s/ca.pem", dir);
    tu_path(leafpem, sizeof(leafpem), "%s/leaf.pem", dir);
    assert_int_equal(ep_ua_cert_save(ca, capem, EP_UA_CERT_PEM), EP_EOK);
    assert_int_equal(ep_ua_cert_save(leaf, leafpem, EP_UA_CERT_PEM), EP_EOK);
    tu_path(cmd, sizeof(cmd), "openssl verify -x509_strict -CAfile '%s' '%s'", capem, leafpem);
    out = run(cmd);
    assert_non_null(out);
    assert_non_null(strstr(out, ": OK"));
    free(out);

    ep_ua_cert_free(leaf);
    ep_ua_cert_free(ca);
    ep_ua_cert_free(c);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_signed_profile),    cmocka_unit_test(test_san_variants),
        cmocka_unit_test(test_create_errors),          cmocka_unit_test(test_ca_issued_and_chain),
        cmocka_unit_test(test_files_and_parse_errors), cmocka_unit_test(test_openssl_cli_interop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
