/* asym_test.c - RSA sign/verify and block-wise OAEP for every policy, block
 * sizes, negatives (tampering, wrong key, short key), independent checks of
 * the padding parameters with raw OpenSSL, legacy user token secrets, key
 * import/export. */
#include "test_util.h"

#include <openssl/pem.h>
#include <openssl/rsa.h>

typedef struct keys {
    ep_ua_key *a, *b; /* two 2048-bit keys */
    ep_ua_key *k3072;
    ep_ua_key *k1024;
} keys;

static keys K;

static int setup(void **state)
{
    (void)state;
    if (ep_ua_key_generate(2048, &K.a) != EP_EOK || ep_ua_key_generate(0, &K.b) != EP_EOK ||
        ep_ua_key_generate(3072, &K.k3072) != EP_EOK ||
        ep_ua_key_generate(1024, &K.k1024) != EP_EOK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ep_ua_key_free(K.a);
    ep_ua_key_free(K.b);
    ep_ua_key_free(K.k3072);
    ep_ua_key_free(K.k1024);
    return 0;
}

static const ep_ua_policy *pol(int id) { return ep_ua_policy_get((ep_ua_policy_id)id); }

#define FOR_SECURE_POLICIES(p)                                                                     \
    for (int id_ = EP_UA_POLICY_BASIC256SHA256; id_ < EP_UA_POLICY_COUNT; id_++)                   \
        for (const ep_ua_policy *p = pol(id_); p != NULL; p = NULL)

static void test_key_bits(void **state)
{
    (void)state;
    assert_int_equal(ep_ua_key_bits(K.a), 2048);
    assert_int_equal(ep_ua_key_bits(K.b), 2048); /* 0 means 2048 */
    assert_int_equal(ep_ua_key_bits(K.k3072), 3072);
    assert_int_equal(ep_ua_key_bits(NULL), 0);
    assert_true(ep_ua_key_is_private(K.a));
    ep_ua_key *k = NULL;
    assert_int_equal(ep_ua_key_generate(512, &k), EP_EINVAL);
    assert_null(k);
}

static void test_sign_verify(void **state)
{
    (void)state;
    uint8_t msg[300], sig[512], sig2[512];
    size_t sl = 0, sl2 = 0;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 31);
    FOR_SECURE_POLICIES(p)
    {
        assert_int_equal(ep_ua_asym_sig_size(p, K.a), 256);
        assert_int_equal(ep_ua_asym_sig_size(p, K.k3072), 384);
        assert_int_equal(ep_ua_asym_sign(p, K.a, msg, sizeof(msg), sig, sizeof(sig), &sl), EP_EOK);
        assert_int_equal(sl, 256);
        assert_int_equal(ep_ua_asym_verify(p, K.a, msg, sizeof(msg), sig, sl), EP_EOK);

        /* PKCS#1 v1.5 is deterministic, PSS is randomised. */
        assert_int_equal(ep_ua_asym_sign(p, K.a, msg, sizeof(msg), sig2, sizeof(sig2), &sl2),
                         EP_EOK);
        if (p->asym_sig == EP_UA_ASYM_SIG_RSA_PSS_SHA256)
            assert_memory_not_equal(sig, sig2, sl);
        else
            assert_memory_equal(sig, sig2, sl);

        /* Tampered data, tampered signature, wrong key, truncated signature. */
        msg[7] ^= 0x40;
        assert_int_equal(ep_ua_asym_verify(p, K.a, msg, sizeof(msg), sig, sl), EP_ESECURITY);
        msg[7] ^= 0x40;
        sig[100] ^= 1;
        assert_int_equal(ep_ua_asym_verify(p, K.a, msg, sizeof(msg), sig, sl), EP_ESECURITY);
        sig[100] ^= 1;
        assert_int_equal(ep_ua_asym_verify(p, K.b, msg, sizeof(msg), sig, sl), EP_ESECURITY);
        assert_int_equal(ep_ua_asym_verify(p, K.a, msg, sizeof(msg), sig, sl - 1), EP_ESECURITY);
        assert_int_equal(ep_ua_asym_sign(p, K.a, msg, sizeof(msg), sig, 255, &sl2), EP_ETOOBIG);

        /* Keys outside the policy's 2048..4096 bits are refused both ways. */
        assert_int_equal(ep_ua_asym_sign(p, K.k1024, msg, sizeof(msg), sig, sizeof(sig), &sl2),
                         EP_ESECURITY);
        assert_int_equal(ep_ua_asym_verify(p, K.k1024, msg, sizeof(msg), sig, 128), EP_ESECURITY);
        /* 3072-bit keys work. */
        assert_int_equal(ep_ua_asym_sign(p, K.k3072, msg, 1, sig, sizeof(sig), &sl2), EP_EOK);
        assert_int_equal(sl2, 384);
        assert_int_equal(ep_ua_asym_verify(p, K.k3072, msg, 1, sig, sl2), EP_EOK);
    }
    /* A PKCS#1 v1.5 signature is not a PSS signature and vice versa. */
    const ep_ua_policy *pk = pol(EP_UA_POLICY_BASIC256SHA256);
    const ep_ua_policy *ps = pol(EP_UA_POLICY_AES256_SHA256_RSAPSS);
    assert_int_equal(ep_ua_asym_sign(pk, K.a, msg, 10, sig, sizeof(sig), &sl), EP_EOK);
    assert_int_equal(ep_ua_asym_verify(ps, K.a, msg, 10, sig, sl), EP_ESECURITY);
    assert_int_equal(ep_ua_asym_sign(ps, K.a, msg, 10, sig, sizeof(sig), &sl), EP_EOK);
    assert_int_equal(ep_ua_asym_verify(pk, K.a, msg, 10, sig, sl), EP_ESECURITY);

    const ep_ua_policy *none = pol(EP_UA_POLICY_NONE);
    assert_int_equal(ep_ua_asym_sig_size(none, K.a), 0);
    assert_int_equal(ep_ua_asym_sign(none, K.a, msg, 10, sig, sizeof(sig), &sl), EP_EUNSUPPORTED);
}

/* Checks our signatures with raw OpenSSL and explicit parameters, so the
 * padding is what OPC 10000-7 specifies and not only self-consistent. */
static void test_sign_parameters(void **state)
{
    (void)state;
    const uint8_t msg[] = "OpenSecureChannel";
    uint8_t sig[256];
    size_t sl = 0;
    for (int pss = 0; pss <= 1; pss++) {
        const ep_ua_policy *p =
            pol(pss ? EP_UA_POLICY_AES256_SHA256_RSAPSS : EP_UA_POLICY_AES128_SHA256_RSAOAEP);
        assert_int_equal(ep_ua_asym_sign(p, K.a, msg, sizeof(msg), sig, sizeof(sig), &sl), EP_EOK);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        assert_int_equal(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, K.a->pkey), 1);
        if (pss) {
            assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
        } else {
            assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 1);
        }
        assert_int_equal(EVP_DigestVerify(md, sig, sl, msg, sizeof(msg)), 1);
        EVP_MD_CTX_free(md);
    }
}

static void test_block_sizes(void **state)
{
    (void)state;
    size_t pb = 0, cb = 0;
    static const struct {
        ep_ua_policy_id id;
        size_t pb2048, pb3072;
    } want[] = {
        {EP_UA_POLICY_BASIC256SHA256, 256 - 42, 384 - 42},
        {EP_UA_POLICY_AES128_SHA256_RSAOAEP, 256 - 42, 384 - 42},
        {EP_UA_POLICY_AES256_SHA256_RSAPSS, 256 - 66, 384 - 66},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const ep_ua_policy *p = pol(want[i].id);
        assert_int_equal(ep_ua_asym_block_sizes(p, K.a, &pb, &cb), EP_EOK);
        assert_int_equal(pb, want[i].pb2048);
        assert_int_equal(cb, 256);
        assert_int_equal(ep_ua_asym_block_sizes(p, K.k3072, &pb, &cb), EP_EOK);
        assert_int_equal(pb, want[i].pb3072);
        assert_int_equal(cb, 384);
        assert_int_equal(ep_ua_asym_encrypted_size(p, K.a, 0), 0);
        assert_int_equal(ep_ua_asym_encrypted_size(p, K.a, 1), 256);
        assert_int_equal(ep_ua_asym_encrypted_size(p, K.a, want[i].pb2048), 256);
        assert_int_equal(ep_ua_asym_encrypted_size(p, K.a, want[i].pb2048 + 1), 512);
        assert_int_equal(ep_ua_asym_encrypted_size(p, K.a, 3 * want[i].pb2048), 768);
    }
    assert_int_equal(ep_ua_asym_block_sizes(pol(EP_UA_POLICY_NONE), K.a, &pb, &cb),
                     EP_EUNSUPPORTED);
    assert_int_equal(ep_ua_asym_encrypted_size(pol(EP_UA_POLICY_NONE), K.a, 10), 0);
}

static void test_encrypt_decrypt(void **state)
{
    (void)state;
    uint8_t plain[1000], ct[2048], back[1000];
    for (size_t i = 0; i < sizeof(plain); i++)
        plain[i] = (uint8_t)(i ^ 0x5a);
    FOR_SECURE_POLICIES(p)
    {
        size_t pb = 0, cb = 0;
        assert_int_equal(ep_ua_asym_block_sizes(p, K.a, &pb, &cb), EP_EOK);
        const size_t lens[] = {1, pb - 1, pb, pb + 1, 3 * pb, 4 * pb - 5};
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            size_t n = lens[i], cl = 0, bl = 0;
            size_t want = ep_ua_asym_encrypted_size(p, K.a, n);
            assert_true(want <= sizeof(ct));
            assert_int_equal(ep_ua_asym_encrypt(p, K.a, plain, n, ct, sizeof(ct), &cl), EP_EOK);
            assert_int_equal(cl, want);
            assert_int_equal(cl % cb, 0);
            assert_int_equal(ep_ua_asym_decrypt(p, K.a, ct, cl, back, sizeof(back), &bl), EP_EOK);
            assert_int_equal(bl, n);
            assert_memory_equal(back, plain, n);
            /* OAEP is randomised: encrypting twice differs. */
            uint8_t ct2[2048];
            size_t cl2 = 0;
            assert_int_equal(ep_ua_asym_encrypt(p, K.a, plain, n, ct2, sizeof(ct2), &cl2), EP_EOK);
            assert_memory_not_equal(ct, ct2, cb);
        }
        size_t cl = 0, bl = 0;
        assert_int_equal(ep_ua_asym_encrypt(p, K.a, plain, 2 * pb, ct, sizeof(ct), &cl), EP_EOK);
        /* Wrong private key. */
        assert_int_equal(ep_ua_asym_decrypt(p, K.b, ct, cl, back, sizeof(back), &bl), EP_ESECURITY);
        /* Tampered second block. */
        ct[cb + 10] ^= 4;
        assert_int_equal(ep_ua_asym_decrypt(p, K.a, ct, cl, back, sizeof(back), &bl), EP_ESECURITY);
        ct[cb + 10] ^= 4;
        /* Not a whole number of blocks. */
        assert_int_equal(ep_ua_asym_decrypt(p, K.a, ct, cl - 1, back, sizeof(back), &bl),
                         EP_EMALFORMED);
        /* Output too small. */
        assert_int_equal(ep_ua_asym_encrypt(p, K.a, plain, 2 * pb, ct, cl - 1, &cl), EP_ETOOBIG);
        assert_int_equal(ep_ua_asym_decrypt(p, K.a, ct, 2 * cb, back, pb, &bl), EP_ETOOBIG);
        /* Too short a key. */
        assert_int_equal(ep_ua_asym_encrypt(p, K.k1024, plain, 10, ct, sizeof(ct), &cl),
                         EP_ESECURITY);
    }
}

/* Decrypts our ciphertext with raw OpenSSL and the OAEP digest OPC 10000-7
 * names for each policy; the other digest must fail. */
static void test_oaep_parameters(void **state)
{
    (void)state;
    const uint8_t msg[] = "client nonce and token";
    FOR_SECURE_POLICIES(p)
    {
        uint8_t ct[256], out[256];
        size_t cl = 0;
        assert_int_equal(ep_ua_asym_encrypt(p, K.a, msg, sizeof(msg), ct, sizeof(ct), &cl), EP_EOK);
        for (int sha256 = 0; sha256 <= 1; sha256++) {
            const EVP_MD *md = sha256 ? EVP_sha256() : EVP_sha1();
            EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(K.a->pkey, NULL);
            size_t ol = sizeof(out);
            assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(c, md), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(c, md), 1);
            int ok = EVP_PKEY_decrypt(c, out, &ol, ct, cl) == 1;
            EVP_PKEY_CTX_free(c);
            int expect = sha256 == (p->asym_enc == EP_UA_ASYM_ENC_RSA_OAEP_SHA256);
            assert_int_equal(ok, expect);
            if (ok) {
                assert_int_equal(ol, sizeof(msg));
                assert_memory_equal(out, msg, sizeof(msg));
            }
        }
    }
}

static void test_user_token_secret(void **state)
{
    (void)state;
    uint8_t nonce[32], other[32], ct[1024], plain[1024], pw[64];
    const char *password = "s3cr3t-pässword";
    size_t pwl = strlen(password);
    for (int i = 0; i < 32; i++) {
        nonce[i] = (uint8_t)(i + 100);
        other[i] = (uint8_t)(i + 101);
    }
    FOR_SECURE_POLICIES(p)
    {
        size_t cl = 0, pl = 0, ol = 0;
        size_t want = ep_ua_secret_encrypted_size(p, K.a, pwl, 32);
        assert_int_equal(want, 256);
        assert_int_equal(ep_ua_secret_encrypt(p, K.a, (const uint8_t *)password, pwl, nonce, 32, ct,
                                              sizeof(ct), &cl),
                         EP_EOK);
        assert_int_equal(cl, want);
        /* The plaintext layout: uint32 LE length, secret, server nonce. */
        assert_int_equal(ep_ua_asym_decrypt(p, K.a, ct, cl, plain, sizeof(plain), &pl), EP_EOK);
        assert_int_equal(pl, 4 + pwl + 32);
        assert_int_equal(plain[0], (uint8_t)(pwl + 32));
        assert_int_equal(plain[1] | plain[2] | plain[3], 0);
        assert_memory_equal(plain + 4, password, pwl);
        assert_memory_equal(plain + 4 + pwl, nonce, 32);

        assert_int_equal(ep_ua_secret_decrypt(p, K.a, ct, cl, nonce, 32, pw, sizeof(pw), &ol),
                         EP_EOK);
        assert_int_equal(ol, pwl);
        assert_memory_equal(pw, password, pwl);
        /* Replayed with another session's nonce. */
        assert_int_equal(ep_ua_secret_decrypt(p, K.a, ct, cl, other, 32, pw, sizeof(pw), &ol),
                         EP_ESECURITY);
        /* Encrypted for another server. */
        assert_int_equal(ep_ua_secret_decrypt(p, K.b, ct, cl, nonce, 32, pw, sizeof(pw), &ol),
                         EP_ESECURITY);
        ct[3] ^= 1;
        assert_int_equal(ep_ua_secret_decrypt(p, K.a, ct, cl, nonce, 32, pw, sizeof(pw), &ol),
                         EP_ESECURITY);
        ct[3] ^= 1;
        assert_int_equal(ep_ua_secret_decrypt(p, K.a, ct, cl, nonce, 32, pw, 3, &ol), EP_ETOOBIG);
        /* Short server nonces are refused. */
        assert_int_equal(ep_ua_secret_encrypt(p, K.a, (const uint8_t *)password, pwl, nonce, 16, ct,
                                              sizeof(ct), &cl),
                         EP_ESECURITY);

        /* A long secret spans several blocks; an empty one works. */
        uint8_t big[600];
        memset(big, 'p', sizeof(big));
        assert_int_equal(
            ep_ua_secret_encrypt(p, K.a, big, sizeof(big), nonce, 32, ct, sizeof(ct), &cl), EP_EOK);
        assert_true(cl >= 3 * 256);
        assert_int_equal(ep_ua_secret_decrypt(p, K.a, ct, cl, nonce, 32, plain, sizeof(plain), &ol),
                         EP_EOK);
        assert_int_equal(ol, sizeof(big));
        assert_memory_equal(plain, big, sizeof(big));
        assert_int_equal(ep_ua_secret_encrypt(p, K.a, NULL, 0, nonce, 32, ct, sizeof(ct), &cl),
                         EP_EOK);
        assert_int_equal(ep_ua_secret_decrypt(p, K.a, ct, cl, nonce, 32, pw, sizeof(pw), &ol),
                         EP_EOK);
        assert_int_equal(ol, 0);
    }
    /* A consistent-looking length field that lies is malformed. */
    const ep_ua_policy *p = pol(EP_UA_POLICY_BASIC256SHA256);
    uint8_t forged[4 + 40];
    size_t cl = 0, ol = 0;
    memset(forged, 0, sizeof(forged));
    forged[0] = 200;
    memcpy(forged + 12, nonce, 32);
    assert_int_equal(ep_ua_asym_encrypt(p, K.a, forged, sizeof(forged), ct, sizeof(ct), &cl),
                     EP_EOK);
    assert_int_equal(ep_ua_secret_decrypt(p, K.a, ct, cl, nonce, 32, pw, sizeof(pw), &ol),
                     EP_EMALFORMED);
    assert_int_equal(
        ep_ua_secret_encrypt(pol(EP_UA_POLICY_NONE), K.a, nonce, 1, nonce, 32, ct, sizeof(ct), &cl),
        EP_EUNSUPPORTED);
}

static void test_key_files(void **state)
{
    (void)state;
    char dir[256], path[300];
    ep_ua_key *k = NULL;
    uint8_t msg[4] = {1, 2, 3, 4}, sig[256];
    size_t sl = 0;
    const ep_ua_policy *p = pol(EP_UA_POLICY_BASIC256SHA256);
    tu_mkdtemp(dir, sizeof(dir), "key");
    tu_path(path, sizeof(path), "%s/key.pem", dir);
    assert_int_equal(ep_ua_key_save(K.a, path), EP_EOK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ep_ua_key_load(path, &k), EP_EOK);
    assert_int_equal(ep_ua_key_bits(k), 2048);
    assert_int_equal(ep_ua_asym_sign(p, k, msg, 4, sig, sizeof(sig), &sl), EP_EOK);
    assert_int_equal(ep_ua_asym_verify(p, K.a, msg, 4, sig, sl), EP_EOK);
    ep_ua_key_free(k);
    k = NULL;

    /* DER (PKCS#1 and PKCS#8) parses too. */
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(K.a->pkey, &der);
    assert_true(n > 0);
    assert_int_equal(ep_ua_key_parse(der, (size_t)n, &k), EP_EOK);
    assert_int_equal(EVP_PKEY_eq(k->pkey, K.a->pkey), 1);
    ep_ua_key_free(k);
    k = NULL;
    OPENSSL_free(der);

    /* Encrypted keys are refused without prompting; garbage is malformed. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, K.a->pkey, EVP_aes_256_cbc(),
                                              (unsigned char *)"pw", 2, NULL, NULL),
                     1);
    char *mem = NULL;
    long ml = BIO_get_mem_data(bio, &mem);
    assert_int_equal(ep_ua_key_parse((const uint8_t *)mem, (size_t)ml, &k), EP_EMALFORMED);
    BIO_free(bio);
    assert_int_equal(ep_ua_key_parse(msg, sizeof(msg), &k), EP_EMALFORMED);
    assert_null(k);
    tu_path(path, sizeof(path), "%s/missing.pem", dir);
    assert_int_equal(ep_ua_key_load(path, &k), EP_ENOTFOUND);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_bits),          cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_sign_parameters),   cmocka_unit_test(test_block_sizes),
        cmocka_unit_test(test_encrypt_decrypt),   cmocka_unit_test(test_oaep_parameters),
        cmocka_unit_test(test_user_token_secret), cmocka_unit_test(test_key_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
