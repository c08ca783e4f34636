/* pki_test.c - the PKI folder: own certificate generation and loading,
 * untrusted -> rejected/ -> trust(), reload on directory change, expiry,
 * URI and host name checks, policy key length and digest, key usage, CA
 * chains through issuers/ and trusted/, CRL revocation, tampering,
 * auto-accept and the rejected/ limit. */
#include "test_util.h"

#include <ctype.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "codec/opcua_crypto/pki.h"

#define UA_UNTRUSTED 0x801A0000u
#define UA_TIME_INVALID 0x80140000u
#define UA_ISSUER_TIME_INVALID 0x80150000u
#define UA_URI_INVALID 0x80170000u
#define UA_HOST_INVALID 0x80160000u
#define UA_USE_NOT_ALLOWED 0x80180000u
#define UA_REVOKED 0x801D0000u
#define UA_REVOCATION_UNKNOWN 0x801B0000u
#define UA_CHAIN_INCOMPLETE 0x810D0000u
#define UA_POLICY_CHECK_FAILED 0x81140000u
#define UA_CERT_INVALID 0x80120000u

static ep_ua_key *OWN_KEY, *PEER_KEY, *CA_KEY, *SHORT_KEY;
static ep_ua_cert *OWN_CERT, *CA;

static ep_ua_cert *make_cert(const char *cn, const char *uri, ep_ua_key *key,
                             const ep_ua_cert *issuer, ep_ua_key *issuer_key, int64_t not_before,
                             uint32_t days)
{
    ep_ua_cert_opts o = {.app_name = cn,
                         .app_uri = uri,
                         .hostname = "localhost",
                         .not_before = not_before,
                         .validity_days = days};
    ep_ua_cert *c = NULL;
    assert_int_equal(ep_ua_cert_create(&o, key, issuer, issuer_key, &c, NULL, 0), EP_EOK);
    return c;
}

static int setup(void **state)
{
    (void)state;
    ep_ua_cert_opts cao = {.app_name = "Plant CA", .ca = true, .validity_days = 3650};
    if (ep_ua_key_generate(2048, &OWN_KEY) || ep_ua_key_generate(2048, &PEER_KEY) ||
        ep_ua_key_generate(2048, &CA_KEY) || ep_ua_key_generate(1024, &SHORT_KEY))
        return -1;
    ep_ua_cert_opts oo = {.app_name = "edgeplane", .app_uri = "urn:edgeplane:test"};
    if (ep_ua_cert_create(&oo, OWN_KEY, NULL, NULL, &OWN_CERT, NULL, 0) ||
        ep_ua_cert_create(&cao, CA_KEY, NULL, NULL, &CA, NULL, 0))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ep_ua_cert_free(OWN_CERT);
    ep_ua_cert_free(CA);
    ep_ua_key_free(OWN_KEY);
    ep_ua_key_free(PEER_KEY);
    ep_ua_key_free(CA_KEY);
    ep_ua_key_free(SHORT_KEY);
    return 0;
}

/* A PKI in a fresh directory, own/ pre-seeded so that no key is generated. */
typedef struct fixture {
    char dir[256];
    ep_ua_pki *pki;
} fixture;

static void open_pki(fixture *f, const ep_ua_pki_opts *opts)
{
    char p[512], detail[256] = "";
    tu_mkdtemp(f->dir, sizeof(f->dir), "pki");
    assert_int_equal(mkdir(tu_path(p, sizeof(p), "%s/own", f->dir), 0700), 0);
    assert_int_equal(mkdir(tu_path(p, sizeof(p), "%s/own/certs", f->dir), 0700), 0);
    assert_int_equal(mkdir(tu_path(p, sizeof(p), "%s/own/private", f->dir), 0700), 0);
    assert_int_equal(ep_ua_cert_save(OWN_CERT,
                                     tu_path(p, sizeof(p), "%s/own/certs/cert.der", f->dir),
                                     EP_UA_CERT_DER),
                     EP_EOK);
    assert_int_equal(
        ep_ua_key_save(OWN_KEY, tu_path(p, sizeof(p), "%s/own/private/private_key.pem", f->dir)),
        EP_EOK);
    ep_err err = ep_ua_pki_open(f->dir, opts, &f->pki, detail, sizeof(detail));
    if (err != EP_EOK)
        fail_msg("ep_ua_pki_open: %s: %s", ep_err_name(err), detail);
}

static void close_pki(fixture *f)
{
    ep_ua_pki_free(f->pki);
    tu_rmtree(f->dir);
}

static void put(const fixture *f, const char *sub, const char *name, const ep_ua_cert *c)
{
    char p[512];
    assert_int_equal(
        ep_ua_cert_save(c, tu_path(p, sizeof(p), "%s/%s/%s", f->dir, sub, name), EP_UA_CERT_DER),
        EP_EOK);
}

static ep_err validate(fixture *f, const ep_ua_cert *c, const ep_ua_pki_check *chk,
                       ep_ua_cert_verdict *v)
{
    size_t len = 0;
    const uint8_t *der = ep_ua_cert_der(c, &len);
    return ep_ua_pki_validate(f->pki, der, len, chk, v);
}

static void expect(fixture *f, const ep_ua_cert *c, const ep_ua_pki_check *chk, ep_ua_cert_result r,
                   uint32_t status)
{
    ep_ua_cert_verdict v;
    ep_err err = validate(f, c, chk, &v);
    if (v.result != r || v.ua_status != status)
        fail_msg("expected %s/0x%08x, got %s/0x%08x: %s", ep_ua_cert_result_name(r), status,
                 ep_ua_cert_result_name(v.result), v.ua_status, v.message);
    assert_int_equal(err, r == EP_UA_CERT_TRUSTED ? EP_EOK : EP_ESECURITY);
}

/* --------------------------------------------------------------- own -- */

static void test_open_generates_and_reloads_own(void **state)
{
    (void)state;
    char dir[256], p[512], detail[256] = "";
    ep_ua_pki *pki = NULL;
    ep_ua_pki_opts o = {
        .app_name = "edgeplane-gw", .app_uri = "urn:edgeplane:gw", .hostname = "gw.example"};
    tu_mkdtemp(dir, sizeof(dir), "own");
    /* Layout under a directory that does not exist yet. */
    char root[300];
    tu_path(root, sizeof(root), "%s/pki/", dir);

    ep_ua_pki_opts nogen = o;
    nogen.no_generate = true;
    assert_int_equal(ep_ua_pki_open(root, &nogen, &pki, detail, sizeof(detail)), EP_ENOTFOUND);
    ep_ua_pki_opts nouri = {.app_name = "x"};
    assert_int_equal(ep_ua_pki_open(root, &nouri, &pki, detail, sizeof(detail)), EP_EINVAL);
    assert_non_null(strstr(detail, "application name and URI"));

    assert_int_equal(ep_ua_pki_open(root, &o, &pki, detail, sizeof(detail)), EP_EOK);
    static const char *const dirs[] = {"own/certs",   "own/private",   "trusted/certs",
                                       "trusted/crl", "issuers/certs", "issuers/crl",
                                       "rejected"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        assert_true(tu_exists(tu_path(p, sizeof(p), "%s/pki/%s", dir, dirs[i])));
    struct stat st;
    assert_int_equal(stat(tu_path(p, sizeof(p), "%s/pki/own/private", dir), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(tu_path(p, sizeof(p), "%s/pki/own/private/private_key.pem", dir), &st),
                     0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_string_equal(ep_ua_pki_dir(pki), tu_path(p, sizeof(p), "%s/pki", dir));

    const ep_ua_cert *own = ep_ua_pki_own_cert(pki);
    assert_non_null(own);
    assert_string_equal(ep_ua_cert_app_uri(own), "urn:edgeplane:gw");
    assert_string_equal(ep_ua_cert_common_name(own), "edgeplane-gw");
    assert_true(ep_ua_cert_matches_key(own, ep_ua_pki_own_key(pki)));
    assert_int_equal(X509_check_host(own->x509, "gw.example", 0, 0, NULL), 1);
    ep_ua_cert *copy = NULL;
    size_t dl = 0;
    const uint8_t *der = ep_ua_cert_der(own, &dl);
    assert_int_equal(ep_ua_cert_parse(der, dl, &copy, NULL), EP_EOK);
    ep_ua_pki_free(pki);
    pki = NULL;

    /* Second start loads the same certificate, whatever the options say. */
    ep_ua_pki_opts other = {.app_name = "other", .app_uri = "urn:other"};
    assert_int_equal(ep_ua_pki_open(root, &other, &pki, detail, sizeof(detail)), EP_EOK);
    assert_true(ep_ua_cert_equal(ep_ua_pki_own_cert(pki), copy));
    ep_ua_pki_free(pki);
    pki = NULL;

    /* A key that does not belong to the certificate is refused. */
    assert_int_equal(
        ep_ua_key_save(PEER_KEY, tu_path(p, sizeof(p), "%s/pki/own/private/private_key.pem", dir)),
        EP_EOK);
    assert_int_equal(ep_ua_pki_open(root, &o, &pki, detail, sizeof(detail)), EP_ESECURITY);
    assert_non_null(strstr(detail, "is not the private key of"));
    /* A missing key is reported, not silently regenerated. */
    unlink(p);
    assert_int_equal(ep_ua_pki_open(root, &o, &pki, detail, sizeof(detail)), EP_ENOTFOUND);
    assert_non_null(strstr(detail, "restore the missing file"));
    /* no_own leaves own/ alone. */
    ep_ua_pki_opts trust_only = {.no_own = true};
    assert_int_equal(ep_ua_pki_open(root, &trust_only, &pki, detail, sizeof(detail)), EP_EOK);
    assert_null(ep_ua_pki_own_cert(pki));
    ep_ua_pki_free(pki);
    ep_ua_cert_free(copy);
    tu_rmtree(dir);
}

/* ----------------------------------------------------------- trusting -- */

static void test_untrusted_rejected_then_trusted(void **state)
{
    (void)state;
    fixture f;
    char p[512], detail[512] = "";
    open_pki(&f, NULL);
    ep_ua_cert *peer = make_cert("PLC 7/Line:3", "urn:plc7", PEER_KEY, NULL, NULL, 0, 0);
    ep_ua_cert_verdict v;

    assert_int_equal(validate(&f, peer, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_UNTRUSTED);
    assert_int_equal(v.ua_status, UA_UNTRUSTED);
    assert_string_equal(v.subject, "PLC 7/Line:3");
    assert_string_equal(v.thumbprint, ep_ua_cert_thumbprint_hex(peer));
    /* Saved as <CN>[<thumbprint>].der with the CN made file-name safe. */
    char want[128];
    snprintf(want, sizeof(want), "PLC_7_Line_3[%s].der", v.thumbprint);
    assert_string_equal(v.rejected, want);
    assert_true(tu_exists(tu_path(p, sizeof(p), "%s/rejected/%s", f.dir, want)));
    /* The message says exactly what to move where. */
    assert_non_null(strstr(v.message, tu_path(p, sizeof(p), "%s/rejected/%s", f.dir, want)));
    assert_non_null(strstr(v.message, tu_path(p, sizeof(p), "%s/trusted/certs/", f.dir)));
    assert_non_null(strstr(v.message, "not trusted"));

    /* Seen again: same verdict, still one file. */
    assert_int_equal(validate(&f, peer, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_UNTRUSTED);

    /* Bad names. */
    assert_int_equal(ep_ua_pki_trust(f.pki, "../x", detail, sizeof(detail)), EP_EINVAL);
    assert_int_equal(ep_ua_pki_trust(f.pki, "", detail, sizeof(detail)), EP_EINVAL);
    assert_int_equal(ep_ua_pki_trust(f.pki, "nothing", detail, sizeof(detail)), EP_ENOTFOUND);

    assert_int_equal(ep_ua_pki_trust(f.pki, want, detail, sizeof(detail)), EP_EOK);
    assert_non_null(strstr(detail, "trusted/certs"));
    assert_false(tu_exists(tu_path(p, sizeof(p), "%s/rejected/%s", f.dir, want)));
    assert_true(tu_exists(tu_path(p, sizeof(p), "%s/trusted/certs/%s", f.dir, want)));
    expect(&f, peer, NULL, EP_UA_CERT_TRUSTED, 0);

    /* trust() by thumbprint (any case) and by unique prefix. */
    ep_ua_cert *p2 = make_cert("hmi-1", "urn:hmi1", PEER_KEY, NULL, NULL, 0, 0);
    ep_ua_cert *p3 = make_cert("hmi-2", "urn:hmi2", PEER_KEY, NULL, NULL, 0, 0);
    expect(&f, p2, NULL, EP_UA_CERT_UNTRUSTED, UA_UNTRUSTED);
    expect(&f, p3, NULL, EP_UA_CERT_UNTRUSTED, UA_UNTRUSTED);
    assert_int_equal(ep_ua_pki_trust(f.pki, "hmi", detail, sizeof(detail)), EP_EINVAL);
    assert_non_null(strstr(detail, "matches 2"));
    char upper[41];
    for (int i = 0; i < 41; i++)
        upper[i] = (char)toupper((unsigned char)ep_ua_cert_thumbprint_hex(p2)[i]);
    assert_int_equal(ep_ua_pki_trust(f.pki, upper, detail, sizeof(detail)), EP_EOK);
    expect(&f, p2, NULL, EP_UA_CERT_TRUSTED, 0);
    assert_int_equal(ep_ua_pki_trust(f.pki, "hmi-2", detail, sizeof(detail)), EP_EOK);
    expect(&f, p3, NULL, EP_UA_CERT_TRUSTED, 0);

    /* A file in rejected/ that is not a certificate stays there. */
    FILE *junk = fopen(tu_path(p, sizeof(p), "%s/rejected/junk.der", f.dir), "w");
    fputs("junk", junk);
    fclose(junk);
    assert_int_equal(ep_ua_pki_trust(f.pki, "junk", detail, sizeof(detail)), EP_EMALFORMED);
    assert_true(tu_exists(p));

    ep_ua_cert_free(p2);
    ep_ua_cert_free(p3);
    ep_ua_cert_free(peer);
    close_pki(&f);
}

static void test_reload_on_directory_change(void **state)
{
    (void)state;
    fixture f;
    char p[512];
    open_pki(&f, NULL);
    ep_ua_cert *peer = make_cert("srv", "urn:srv", PEER_KEY, NULL, NULL, 0, 0);
    expect(&f, peer, NULL, EP_UA_CERT_UNTRUSTED, UA_UNTRUSTED);
    /* An operator copies the certificate in by hand (PEM this time). */
    assert_int_equal(ep_ua_cert_save(peer, tu_path(p, sizeof(p), "%s/trusted/certs/srv.pem", f.dir),
                                     EP_UA_CERT_PEM),
                     EP_EOK);
    expect(&f, peer, NULL, EP_UA_CERT_TRUSTED, 0);
    /* ... and removes it again. */
    assert_int_equal(unlink(p), 0);
    expect(&f, peer, NULL, EP_UA_CERT_UNTRUSTED, UA_UNTRUSTED);
    /* Unreadable files are skipped and reported. */
    FILE *junk = fopen(tu_path(p, sizeof(p), "%s/trusted/certs/broken.der", f.dir), "w");
    fputs("not a certificate", junk);
    fclose(junk);
    expect(&f, peer, NULL, EP_UA_CERT_UNTRUSTED, UA_UNTRUSTED);
    assert_non_null(ep_ua_pki_warning(f.pki));
    assert_non_null(strstr(ep_ua_pki_warning(f.pki), "trusted/certs/broken.der"));
    ep_ua_cert_free(peer);
    close_pki(&f);
}

/* --------------------------------------------------------- the checks -- */

static void test_expired_and_not_yet_valid(void **state)
{
    (void)state;
    fixture f;
    open_pki(&f, NULL);
    int64_t now = (int64_t)time(NULL);
    ep_ua_cert *old = make_cert("old", "urn:old", PEER_KEY, NULL, NULL, now - 400 * 86400, 30);
    ep_ua_cert *future =
        make_cert("future", "urn:future", PEER_KEY, NULL, NULL, now + 10 * 86400, 30);
    ep_ua_cert *ok = make_cert("ok", "urn:ok", PEER_KEY, NULL, NULL, 0, 0);
    put(&f, "trusted/certs", "old.der", old);
    put(&f, "trusted/certs", "future.der", future);
    put(&f, "trusted/certs", "ok.der", ok);

    ep_ua_cert_verdict v;
    assert_int_equal(validate(&f, old, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_EXPIRED);
    assert_int_equal(v.ua_status, UA_TIME_INVALID);
    assert_non_null(strstr(v.message, "expired on"));
    assert_string_equal(v.rejected, ""); /* trusted but expired: nothing to move */
    expect(&f, future, NULL, EP_UA_CERT_NOT_YET_VALID, UA_TIME_INVALID);
    expect(&f, ok, NULL, EP_UA_CERT_TRUSTED, 0);
    /* The clock is injectable: two years on, the certificate has expired. */
    ep_ua_pki_check later = {.now = now + 2 * 365 * 86400};
    expect(&f, ok, &later, EP_UA_CERT_EXPIRED, UA_TIME_INVALID);

    /* Untrusted comes before expired (OPC 10000-4 Table 106 order). */
    char p[512];
    unlink(tu_path(p, sizeof(p), "%s/trusted/certs/old.der", f.dir));
    expect(&f, old, NULL, EP_UA_CERT_UNTRUSTED, UA_UNTRUSTED);

    /* An expired CA makes its certificates fail with IssuerTimeInvalid. */
    ep_ua_cert_opts cao = {
        .app_name = "Old CA", .ca = true, .not_before = now - 1000 * 86400, .validity_days = 100};
    ep_ua_cert *oldca = NULL;
    assert_int_equal(ep_ua_cert_create(&cao, CA_KEY, NULL, NULL, &oldca, NULL, 0), EP_EOK);
    ep_ua_cert *leaf =
        make_cert("leaf", "urn:leaf", PEER_KEY, oldca, CA_KEY, now - 950 * 86400, 2000);
    put(&f, "trusted/certs", "oldca.der", oldca);
    ep_ua_pki_check any = {0};
    expect(&f, leaf, &any, EP_UA_CERT_EXPIRED, UA_ISSUER_TIME_INVALID);

    ep_ua_cert_free(leaf);
    ep_ua_cert_free(oldca);
    ep_ua_cert_free(old);
    ep_ua_cert_free(future);
    ep_ua_cert_free(ok);
    close_pki(&f);
}

static void test_uri_and_hostname(void **state)
{
    (void)state;
    fixture f;
    open_pki(&f, NULL);
    ep_ua_cert *peer = make_cert("srv", "urn:plant:srv", PEER_KEY, NULL, NULL, 0, 0);
    put(&f, "trusted/certs", "srv.der", peer);
    ep_ua_pki_check chk = {.app_uri = "urn:plant:srv", .hostname = "localhost"};
    expect(&f, peer, &chk, EP_UA_CERT_TRUSTED, 0);

    ep_ua_cert_verdict v;
    chk.app_uri = "urn:plant:other";
    assert_int_equal(validate(&f, peer, &chk, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_URI_MISMATCH);
    assert_int_equal(v.ua_status, UA_URI_INVALID);
    assert_non_null(strstr(v.message, "urn:plant:srv"));
    assert_non_null(strstr(v.message, "urn:plant:other"));

    chk.app_uri = "urn:plant:srv";
    chk.hostname = "elsewhere.example";
    expect(&f, peer, &chk, EP_UA_CERT_HOSTNAME_MISMATCH, UA_HOST_INVALID);
    ep_ua_cert_free(peer);
    close_pki(&f);
}

/* Re-signs a copy of c after replacing keyUsage / extendedKeyUsage, or with
 * another digest, to build certificates our generator never produces. */
static ep_ua_cert *resign(const ep_ua_cert *c, ep_ua_key *key, const char *ku, const char *eku,
                          const EVP_MD *md)
{
    X509 *x = X509_dup(c->x509);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const struct {
        int nid;
        const char *val;
    } repl[] = {{NID_key_usage, ku}, {NID_ext_key_usage, eku}};
    for (size_t i = 0; i < 2; i++) {
        if (repl[i].val == NULL)
            continue;
        X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x, repl[i].nid, -1)));
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, repl[i].nid, repl[i].val);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, key->pkey, md) > 0);
    ep_ua_cert *out = NULL;
    assert_int_equal(ep_ua__cert_wrap(x, &out), EP_EOK);
    return out;
}

static void test_key_usage(void **state)
{
    (void)state;
    fixture f;
    open_pki(&f, NULL);
    ep_ua_cert *base = make_cert("dev", "urn:dev", PEER_KEY, NULL, NULL, 0, 0);
    ep_ua_cert *sign_only =
        resign(base, PEER_KEY, "critical,digitalSignature,keyCertSign", NULL, EVP_sha256());
    ep_ua_cert *client_only = resign(base, PEER_KEY, NULL, "clientAuth", EVP_sha256());
    put(&f, "trusted/certs", "a.der", sign_only);
    put(&f, "trusted/certs", "b.der", client_only);

    ep_ua_cert_verdict v;
    assert_int_equal(validate(&f, sign_only, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_BAD_USAGE);
    assert_int_equal(v.ua_status, UA_USE_NOT_ALLOWED);
    assert_non_null(strstr(v.message, "keyEncipherment"));

    /* extendedKeyUsage is checked against the peer's role. */
    ep_ua_pki_check as_server = {.role = EP_UA_PEER_SERVER};
    ep_ua_pki_check as_client = {.role = EP_UA_PEER_CLIENT};
    expect(&f, client_only, &as_server, EP_UA_CERT_BAD_USAGE, UA_USE_NOT_ALLOWED);
    expect(&f, client_only, &as_client, EP_UA_CERT_TRUSTED, 0);
    expect(&f, client_only, NULL, EP_UA_CERT_TRUSTED, 0);
    ep_ua_cert_free(sign_only);
    ep_ua_cert_free(client_only);
    ep_ua_cert_free(base);
    close_pki(&f);
}

static void test_policy_limits(void **state)
{
    (void)state;
    fixture f;
    open_pki(&f, NULL);
    ep_ua_cert *weak = make_cert("weak", "urn:weak", SHORT_KEY, NULL, NULL, 0, 0);
    ep_ua_cert *base = make_cert("sha1", "urn:sha1", PEER_KEY, NULL, NULL, 0, 0);
    ep_ua_cert *sha1 = resign(base, PEER_KEY, NULL, NULL, EVP_sha1());
    put(&f, "trusted/certs", "weak.der", weak);
    put(&f, "trusted/certs", "sha1.der", sha1);

    ep_ua_pki_check b256 = {.policy = ep_ua_policy_get(EP_UA_POLICY_BASIC256SHA256)};
    ep_ua_pki_check none = {.policy = ep_ua_policy_get(EP_UA_POLICY_NONE)};
    ep_ua_cert_verdict v;
    assert_int_equal(validate(&f, weak, &b256, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_KEY_TOO_SHORT);
    assert_int_equal(v.ua_status, UA_POLICY_CHECK_FAILED);
    assert_non_null(strstr(v.message, "1024-bit"));
    assert_non_null(strstr(v.message, "Basic256Sha256"));
    expect(&f, weak, &none, EP_UA_CERT_TRUSTED, 0);
    expect(&f, weak, NULL, EP_UA_CERT_TRUSTED, 0);
    expect(&f, sha1, &b256, EP_UA_CERT_POLICY_MISMATCH, UA_POLICY_CHECK_FAILED);
    expect(&f, sha1, NULL, EP_UA_CERT_TRUSTED, 0);
    ep_ua_cert_free(weak);
    ep_ua_cert_free(base);
    ep_ua_cert_free(sha1);
    close_pki(&f);
}

/* ------------------------------------------------------------ chains -- */

static uint8_t *concat(const ep_ua_cert *a, const ep_ua_cert *b, size_t *len)
{
    size_t al, bl;
    const uint8_t *ad = ep_ua_cert_der(a, &al), *bd = ep_ua_cert_der(b, &bl);
    uint8_t *out = malloc(al + bl);
    memcpy(out, ad, al);
    memcpy(out + al, bd, bl);
    *len = al + bl;
    return out;
}

static void test_ca_chain(void **state)
{
    (void)state;
    fixture f;
    char p[512];
    open_pki(&f, NULL);
    ep_ua_cert *leaf = make_cert("press-7", "urn:press7", PEER_KEY, CA, CA_KEY, 0, 0);
    ep_ua_cert_verdict v;

    /* Issuer unknown anywhere: chain incomplete, saved, told where the CA goes. */
    assert_int_equal(validate(&f, leaf, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_CHAIN_INCOMPLETE);
    assert_int_equal(v.ua_status, UA_CHAIN_INCOMPLETE);
    assert_non_null(strstr(v.message, "Plant CA"));
    assert_non_null(strstr(v.message, "issuers/certs/"));
    assert_true(tu_exists(tu_path(p, sizeof(p), "%s/rejected/%s", f.dir, v.rejected)));
    unlink(p);

    /* CA in issuers/ only: the chain is complete but nothing is trusted. */
    put(&f, "issuers/certs", "ca.der", CA);
    assert_int_equal(validate(&f, leaf, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_UNTRUSTED);
    assert_non_null(strstr(v.message, "Plant CA"));
    assert_non_null(strstr(v.message, "copy the CA certificate"));

    /* Trusting the leaf itself works with the CA only in issuers/ ... */
    assert_int_equal(ep_ua_pki_trust(f.pki, v.rejected, NULL, 0), EP_EOK);
    expect(&f, leaf, NULL, EP_UA_CERT_TRUSTED, 0);
    assert_int_equal(unlink(tu_path(p, sizeof(p), "%s/trusted/certs/%s", f.dir, v.rejected)), 0);
    expect(&f, leaf, NULL, EP_UA_CERT_UNTRUSTED, UA_UNTRUSTED);

    /* ... and trusting the CA trusts everything it issued. */
    assert_int_equal(unlink(tu_path(p, sizeof(p), "%s/issuers/certs/ca.der", f.dir)), 0);
    put(&f, "trusted/certs", "ca.der", CA);
    expect(&f, leaf, NULL, EP_UA_CERT_TRUSTED, 0);
    ep_ua_cert *other = make_cert("press-8", "urn:press8", OWN_KEY, CA, CA_KEY, 0, 0);
    expect(&f, other, NULL, EP_UA_CERT_TRUSTED, 0);

    /* A chain sent by the peer completes a path to a trusted CA. */
    ep_ua_cert_opts io = {.app_name = "Line CA", .ca = true};
    ep_ua_cert *inter = NULL;
    assert_int_equal(ep_ua_cert_create(&io, OWN_KEY, CA, CA_KEY, &inter, NULL, 0), EP_EOK);
    ep_ua_cert *deep = make_cert("robot", "urn:robot", PEER_KEY, inter, OWN_KEY, 0, 0);
    expect(&f, deep, NULL, EP_UA_CERT_CHAIN_INCOMPLETE, UA_CHAIN_INCOMPLETE);
    size_t len = 0;
    uint8_t *chain = concat(deep, inter, &len);
    assert_int_equal(ep_ua_pki_validate(f.pki, chain, len, NULL, &v), EP_EOK);
    assert_int_equal(v.result, EP_UA_CERT_TRUSTED);
    assert_string_equal(v.subject, "robot");
    /* Trailing garbage after the chain is refused. */
    chain[len - 1] ^= 0xff;
    assert_int_equal(ep_ua_pki_validate(f.pki, chain, len - 3, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_INVALID);
    free(chain);

    /* A CA that is not a CA cannot issue. */
    ep_ua_cert *fake_ca = make_cert("not-a-ca", "urn:x", CA_KEY, NULL, NULL, 0, 0);
    ep_ua_cert *by_fake = make_cert("victim", "urn:v", PEER_KEY, fake_ca, CA_KEY, 0, 0);
    put(&f, "trusted/certs", "fake.der", fake_ca);
    expect(&f, by_fake, NULL, EP_UA_CERT_BAD_USAGE, 0x80190000u);

    ep_ua_cert_free(fake_ca);
    ep_ua_cert_free(by_fake);
    ep_ua_cert_free(deep);
    ep_ua_cert_free(inter);
    ep_ua_cert_free(other);
    ep_ua_cert_free(leaf);
    close_pki(&f);
}

static void write_crl(const char *path, const ep_ua_cert *ca, const ep_ua_key *cakey,
                      const ep_ua_cert *revoked)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL) - 3600);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->x509)), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
    if (revoked != NULL) {
        X509_REVOKED *r = X509_REVOKED_new();
        assert_int_equal(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked->x509)), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
    }
    ASN1_TIME_set(t, time(NULL) + 30 * 86400);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
    assert_int_equal(X509_CRL_sort(crl), 1);
    assert_true(X509_CRL_sign(crl, cakey->pkey, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_CRL(crl, &der);
    assert_true(n > 0);
    assert_int_equal(ep_ua__file_write(path, der, (size_t)n, 0644), EP_EOK);
    OPENSSL_free(der);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
}

static void test_crl_revocation(void **state)
{
    (void)state;
    fixture f;
    char p[512];
    open_pki(&f, NULL);
    ep_ua_cert *bad = make_cert("stolen", "urn:stolen", PEER_KEY, CA, CA_KEY, 0, 0);
    ep_ua_cert *good = make_cert("fine", "urn:fine", PEER_KEY, CA, CA_KEY, 0, 0);
    put(&f, "trusted/certs", "ca.der", CA);
    expect(&f, bad, NULL, EP_UA_CERT_TRUSTED, 0); /* no CRL yet: accepted */

    write_crl(tu_path(p, sizeof(p), "%s/trusted/crl/plant.crl", f.dir), CA, CA_KEY, bad);
    ep_ua_cert_verdict v;
    assert_int_equal(validate(&f, bad, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_REVOKED);
    assert_int_equal(v.ua_status, UA_REVOKED);
    assert_non_null(strstr(v.message, "revoked"));
    assert_non_null(strstr(v.message, "Plant CA"));
    expect(&f, good, NULL, EP_UA_CERT_TRUSTED, 0);
    close_pki(&f);

    /* With require_crl a CA without CRL makes revocation unknown; a CRL in
     * issuers/crl counts as well. */
    ep_ua_pki_opts strict = {.require_crl = true};
    open_pki(&f, &strict);
    put(&f, "trusted/certs", "ca.der", CA);
    expect(&f, good, NULL, EP_UA_CERT_REVOCATION_UNKNOWN, UA_REVOCATION_UNKNOWN);
    ep_ua_cert *self = make_cert("self", "urn:self", PEER_KEY, NULL, NULL, 0, 0);
    put(&f, "trusted/certs", "self.der", self);
    expect(&f, self, NULL, EP_UA_CERT_TRUSTED, 0); /* self-signed: no CRL applies */
    write_crl(tu_path(p, sizeof(p), "%s/issuers/crl/plant.crl", f.dir), CA, CA_KEY, NULL);
    expect(&f, good, NULL, EP_UA_CERT_TRUSTED, 0);
    ep_ua_cert_free(self);
    ep_ua_cert_free(bad);
    ep_ua_cert_free(good);
    close_pki(&f);
}

static void test_tampered_and_garbage(void **state)
{
    (void)state;
    fixture f;
    open_pki(&f, NULL);
    ep_ua_cert *leaf = make_cert("leaf", "urn:leaf", PEER_KEY, CA, CA_KEY, 0, 0);
    put(&f, "trusted/certs", "ca.der", CA);
    size_t len = 0;
    const uint8_t *der = ep_ua_cert_der(leaf, &len);
    uint8_t *copy = malloc(len);
    memcpy(copy, der, len);
    copy[len - 5] ^= 0x01; /* inside the signature value */
    ep_ua_cert_verdict v;
    assert_int_equal(ep_ua_pki_validate(f.pki, copy, len, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_SIGNATURE_INVALID);
    assert_int_equal(v.ua_status, UA_CERT_INVALID);
    assert_non_null(strstr(v.message, "forged"));
    assert_string_equal(v.rejected, ""); /* never offered for trust */

    /* A self-signed certificate with a broken self-signature. */
    ep_ua_cert *self = make_cert("self", "urn:self", PEER_KEY, NULL, NULL, 0, 0);
    put(&f, "trusted/certs", "self.der", self);
    der = ep_ua_cert_der(self, &len);
    uint8_t *copy2 = malloc(len);
    memcpy(copy2, der, len);
    copy2[len - 5] ^= 0x01;
    assert_int_equal(ep_ua_pki_validate(f.pki, copy2, len, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_SIGNATURE_INVALID);

    assert_int_equal(ep_ua_pki_validate(f.pki, (const uint8_t *)"hello", 5, NULL, &v),
                     EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_INVALID);
    assert_int_equal(v.ua_status, UA_CERT_INVALID);
    assert_int_equal(ep_ua_pki_validate(f.pki, NULL, 0, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_INVALID);
    assert_int_equal(ep_ua_pki_validate(f.pki, copy, len, NULL, NULL), EP_EINVAL);
    free(copy);
    free(copy2);
    ep_ua_cert_free(self);
    ep_ua_cert_free(leaf);
    close_pki(&f);
}

static void test_auto_accept_and_limits(void **state)
{
    (void)state;
    fixture f;
    char p[512];
    ep_ua_pki_opts aa = {.auto_accept = true};
    open_pki(&f, &aa);
    int64_t now = (int64_t)time(NULL);
    ep_ua_cert *peer = make_cert("sim", "urn:sim", PEER_KEY, NULL, NULL, 0, 0);
    ep_ua_cert *old = make_cert("old", "urn:old", PEER_KEY, NULL, NULL, now - 400 * 86400, 30);
    ep_ua_cert_verdict v;
    assert_int_equal(validate(&f, peer, NULL, &v), EP_EOK);
    assert_int_equal(v.result, EP_UA_CERT_TRUSTED);
    assert_non_null(strstr(v.message, "auto-accept"));
    assert_string_equal(v.rejected, "");
    /* Auto-accept trusts, it does not ignore the other checks. */
    expect(&f, old, NULL, EP_UA_CERT_EXPIRED, UA_TIME_INVALID);
    ep_ua_pki_check uri = {.app_uri = "urn:else"};
    expect(&f, peer, &uri, EP_UA_CERT_URI_MISMATCH, UA_URI_INVALID);
    ep_ua_cert *chained = make_cert("chained", "urn:c", PEER_KEY, CA, CA_KEY, 0, 0);
    expect(&f, chained, NULL, EP_UA_CERT_TRUSTED, 0);
    close_pki(&f);

    /* rejected/ does not grow without bound. */
    ep_ua_pki_opts lim = {.max_rejected = 1};
    open_pki(&f, &lim);
    expect(&f, peer, NULL, EP_UA_CERT_UNTRUSTED, UA_UNTRUSTED);
    assert_int_equal(validate(&f, chained, NULL, &v), EP_ESECURITY);
    assert_int_equal(v.result, EP_UA_CERT_CHAIN_INCOMPLETE);
    assert_non_null(strstr(v.message, "not saved"));
    assert_false(tu_exists(tu_path(p, sizeof(p), "%s/rejected/%s", f.dir, v.rejected)));
    ep_ua_cert_free(chained);
    ep_ua_cert_free(peer);
    ep_ua_cert_free(old);
    close_pki(&f);
}

static void test_result_names(void **state)
{
    (void)state;
    for (int r = EP_UA_CERT_TRUSTED; r <= EP_UA_CERT_REVOCATION_UNKNOWN; r++)
        assert_string_not_equal(ep_ua_cert_result_name((ep_ua_cert_result)r), "unknown");
    assert_string_equal(ep_ua_cert_result_name((ep_ua_cert_result)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_generates_and_reloads_own),
        cmocka_unit_test(test_untrusted_rejected_then_trusted),
        cmocka_unit_test(test_reload_on_directory_change),
        cmocka_unit_test(test_expired_and_not_yet_valid),
        cmocka_unit_test(test_uri_and_hostname),
        cmocka_unit_test(test_key_usage),
        cmocka_unit_test(test_policy_limits),
        cmocka_unit_test(test_ca_chain),
        cmocka_unit_test(test_crl_revocation),
        cmocka_unit_test(test_tampered_and_garbage),
        cmocka_unit_test(test_auto_accept_and_limits),
        cmocka_unit_test(test_result_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
