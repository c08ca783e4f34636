/* sym_test.c - policy table, P_SHA256, HMAC and AES-CBC known answers, key
 * derivation layout, symmetric sign/verify/encrypt negatives, nonces. */
#include "test_util.h"

#define POL(id) ep_ua_policy_get(EP_UA_POLICY_##id)

static void test_policy_table(void **state)
{
    (void)state;
    static const struct {
        ep_ua_policy_id id;
        const char *uri;
        size_t sk, ek, iv;
        ep_ua_asym_sig_alg sig;
        ep_ua_asym_enc_alg enc;
        ep_ua_sym_enc_alg sym;
    } want[] = {
        {EP_UA_POLICY_BASIC256SHA256, "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256",
         32, 32, 16, EP_UA_ASYM_SIG_RSA_PKCS1_SHA256, EP_UA_ASYM_ENC_RSA_OAEP_SHA1,
         EP_UA_SYM_ENC_AES256_CBC},
        {EP_UA_POLICY_AES128_SHA256_RSAOAEP,
         "http://opcfoundation.org/UA/SecurityPolicy#Aes128_Sha256_RsaOaep", 32, 16, 16,
         EP_UA_ASYM_SIG_RSA_PKCS1_SHA256, EP_UA_ASYM_ENC_RSA_OAEP_SHA1, EP_UA_SYM_ENC_AES128_CBC},
        {EP_UA_POLICY_AES256_SHA256_RSAPSS,
         "http://opcfoundation.org/UA/SecurityPolicy#Aes256_Sha256_RsaPss", 32, 32, 16,
         EP_UA_ASYM_SIG_RSA_PSS_SHA256, EP_UA_ASYM_ENC_RSA_OAEP_SHA256, EP_UA_SYM_ENC_AES256_CBC},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const ep_ua_policy *p = ep_ua_policy_find(want[i].uri, strlen(want[i].uri));
        assert_non_null(p);
        assert_ptr_equal(p, ep_ua_policy_get(want[i].id));
        assert_int_equal(p->id, want[i].id);
        assert_int_equal(p->sym_sig_key_len, want[i].sk);
        assert_int_equal(p->sym_enc_key_len, want[i].ek);
        assert_int_equal(p->sym_block_len, want[i].iv);
        assert_int_equal(p->sym_sig_len, 32);
        assert_int_equal(p->nonce_len, 32);
        assert_int_equal(p->min_key_bits, 2048);
        assert_int_equal(p->max_key_bits, 4096);
        assert_int_equal(p->asym_sig, want[i].sig);
        assert_int_equal(p->asym_enc, want[i].enc);
        assert_int_equal(p->sym_enc, want[i].sym);
        assert_int_equal(p->cert_min_digest_bits, 256);
        assert_false(ep_ua_policy_is_none(p));
        /* A prefix of the URI is not the policy. */
        assert_null(ep_ua_policy_find(want[i].uri, strlen(want[i].uri) - 1));
    }
    const char *none = "http://opcfoundation.org/UA/SecurityPolicy#None";
    assert_ptr_equal(ep_ua_policy_find(none, strlen(none)), POL(NONE));
    assert_true(ep_ua_policy_is_none(POL(NONE)));
    assert_int_equal(POL(NONE)->nonce_len, 0);
    const char *old = "http://opcfoundation.org/UA/SecurityPolicy#Basic128Rsa15";
    assert_null(ep_ua_policy_find(old, strlen(old)));
    assert_null(ep_ua_policy_find(NULL, 0));
    assert_null(ep_ua_policy_get(EP_UA_POLICY_COUNT));
    assert_string_equal(POL(AES256_SHA256_RSAPSS)->asym_sig_uri,
                        "http://opcfoundation.org/UA/security/rsa-pss-sha2-256");
    assert_string_equal(POL(AES256_SHA256_RSAPSS)->asym_enc_uri,
                        "http://opcfoundation.org/UA/security/rsa-oaep-sha2-256");
    assert_string_equal(POL(BASIC256SHA256)->asym_enc_uri,
                        "http://www.w3.org/2001/04/xmlenc#rsa-oaep");
    assert_string_equal(POL(BASIC256SHA256)->asym_sig_uri,
                        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
}

/* The TLS 1.2 PRF test vector (IETF TLS WG, the one RFC 5246 implementations
 * use): PRF(secret, label, seed) = P_SHA256(secret, label || seed). */
static void test_p_sha256_kat(void **state)
{
    (void)state;
    uint8_t secret[16], seed[64], want[100], got[100];
    size_t sl = tu_hex("9bbe436ba940f017b17652849a71db35", secret, sizeof(secret));
    memcpy(seed, "test label", 10);
    size_t seedl = 10 + tu_hex("a0ba9f936cda311827a6f796ffd5198c", seed + 10, sizeof(seed) - 10);
    tu_hex("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
           "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
           "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
           "87347b66",
           want, sizeof(want));
    assert_int_equal(ep_ua_p_sha256(secret, sl, seed, seedl, got, sizeof(got)), EP_EOK);
    assert_memory_equal(got, want, sizeof(want));
    /* Any prefix length gives the prefix of the stream. */
    for (size_t n = 0; n <= sizeof(got); n += 7) {
        memset(got, 0, sizeof(got));
        assert_int_equal(ep_ua_p_sha256(secret, sl, seed, seedl, got, n), EP_EOK);
        assert_memory_equal(got, want, n);
    }
    assert_int_equal(ep_ua_p_sha256(NULL, 0, seed, seedl, got, 1), EP_EINVAL);
    assert_int_equal(ep_ua_p_sha256(secret, sl, seed, seedl, got, 1u << 20), EP_EINVAL);
}

/* RFC 4231 test cases 1, 2 and 4. */
static void test_hmac_kat(void **state)
{
    (void)state;
    static const struct {
        const char *key, *data, *mac;
    } v[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
         "cdcdcdcdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t key[64], data[128], want[32], got[32];
        size_t kl = tu_hex(v[i].key, key, sizeof(key));
        size_t dl = tu_hex(v[i].data, data, sizeof(data));
        tu_hex(v[i].mac, want, sizeof(want));
        assert_int_equal(ep_ua__hmac_sha256(key, kl, data, dl, NULL, 0, got), EP_EOK);
        assert_memory_equal(got, want, 32);
        /* Split input hashes the same. */
        assert_int_equal(ep_ua__hmac_sha256(key, kl, data, dl / 2, data + dl / 2, dl - dl / 2, got),
                         EP_EOK);
        assert_memory_equal(got, want, 32);
    }
}

static void test_sym_sign_verify(void **state)
{
    (void)state;
    for (int id = EP_UA_POLICY_BASIC256SHA256; id < EP_UA_POLICY_COUNT; id++) {
        const ep_ua_policy *p = ep_ua_policy_get((ep_ua_policy_id)id);
        ep_ua_sym_keys k;
        uint8_t nonce_a[32], nonce_b[32], msg[100], sig[32], want[32];
        memset(nonce_a, 0x11, sizeof(nonce_a));
        memset(nonce_b, 0x22, sizeof(nonce_b));
        for (size_t i = 0; i < sizeof(msg); i++)
            msg[i] = (uint8_t)i;
        assert_int_equal(ep_ua_sym_keys_derive(p, nonce_a, 32, nonce_b, 32, &k), EP_EOK);
        assert_int_equal(ep_ua_sym_sign(p, &k, msg, sizeof(msg), sig, sizeof(sig)), EP_EOK);
        assert_int_equal(ep_ua__hmac_sha256(k.sign, 32, msg, sizeof(msg), NULL, 0, want), EP_EOK);
        assert_memory_equal(sig, want, 32);
        assert_int_equal(ep_ua_sym_verify(p, &k, msg, sizeof(msg), sig, 32), EP_EOK);
        msg[50] ^= 1;
        assert_int_equal(ep_ua_sym_verify(p, &k, msg, sizeof(msg), sig, 32), EP_ESECURITY);
        msg[50] ^= 1;
        sig[31] ^= 0x80;
        assert_int_equal(ep_ua_sym_verify(p, &k, msg, sizeof(msg), sig, 32), EP_ESECURITY);
        sig[31] ^= 0x80;
        assert_int_equal(ep_ua_sym_verify(p, &k, msg, sizeof(msg), sig, 31), EP_ESECURITY);
        assert_int_equal(ep_ua_sym_sign(p, &k, msg, sizeof(msg), sig, 31), EP_ETOOBIG);
        /* Another key does not verify. */
        ep_ua_sym_keys other;
        assert_int_equal(ep_ua_sym_keys_derive(p, nonce_b, 32, nonce_a, 32, &other), EP_EOK);
        assert_int_equal(ep_ua_sym_verify(p, &other, msg, sizeof(msg), sig, 32), EP_ESECURITY);
        ep_ua_sym_keys_clear(&k);
        ep_ua_sym_keys_clear(&other);
        assert_int_equal(k.sign_len, 0);
    }
    ep_ua_sym_keys k = {0};
    uint8_t sig[32];
    assert_int_equal(ep_ua_sym_sign(POL(NONE), &k, sig, 1, sig, 32), EP_EUNSUPPORTED);
}

/* NIST SP 800-38A F.2.1 (AES-128-CBC) and F.2.5 (AES-256-CBC). */
static void test_aes_cbc_kat(void **state)
{
    (void)state;
    static const char *plain = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                               "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    static const struct {
        ep_ua_policy_id id;
        const char *key, *cipher;
    } v[] = {
        {EP_UA_POLICY_AES128_SHA256_RSAOAEP, "2b7e151628aed2a6abf7158809cf4f3c",
         "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
         "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"},
        {EP_UA_POLICY_BASIC256SHA256,
         "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
         "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
         "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"},
        {EP_UA_POLICY_AES256_SHA256_RSAPSS,
         "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
         "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
         "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        const ep_ua_policy *p = ep_ua_policy_get(v[i].id);
        ep_ua_sym_keys k = {0};
        uint8_t pt[64], want[64], buf[64];
        k.enc_len = tu_hex(v[i].key, k.enc, sizeof(k.enc));
        k.iv_len = tu_hex("000102030405060708090a0b0c0d0e0f", k.iv, sizeof(k.iv));
        k.sign_len = 32;
        tu_hex(plain, pt, sizeof(pt));
        tu_hex(v[i].cipher, want, sizeof(want));
        assert_int_equal(k.enc_len, p->sym_enc_key_len);
        assert_int_equal(ep_ua_sym_encrypt(p, &k, pt, buf, 64), EP_EOK);
        assert_memory_equal(buf, want, 64);
        assert_int_equal(ep_ua_sym_decrypt(p, &k, buf, buf, 64), EP_EOK); /* in place */
        assert_memory_equal(buf, pt, 64);
        memcpy(buf, pt, 64);
        assert_int_equal(ep_ua_sym_encrypt(p, &k, buf, buf, 64), EP_EOK);
        assert_memory_equal(buf, want, 64);
        /* No padding: lengths must be whole blocks. */
        assert_int_equal(ep_ua_sym_encrypt(p, &k, pt, buf, 63), EP_EINVAL);
        assert_int_equal(ep_ua_sym_decrypt(p, &k, pt, buf, 17), EP_EINVAL);
        assert_int_equal(ep_ua_sym_encrypt(p, &k, pt, buf, 0), EP_EOK);
        /* A key of the wrong length for the policy is refused. */
        k.enc_len = p->sym_enc_key_len == 16 ? 32 : 16;
        assert_int_equal(ep_ua_sym_encrypt(p, &k, pt, buf, 16), EP_EINVAL);
    }
}

/* Derived keys are P_SHA256 output split as signing key, encrypting key, IV. */
static void test_key_derivation_layout(void **state)
{
    (void)state;
    uint8_t cn[32], sn[32], stream[80];
    for (int i = 0; i < 32; i++) {
        cn[i] = (uint8_t)(i * 7 + 1);
        sn[i] = (uint8_t)(255 - i * 3);
    }
    for (int id = EP_UA_POLICY_BASIC256SHA256; id < EP_UA_POLICY_COUNT; id++) {
        const ep_ua_policy *p = ep_ua_policy_get((ep_ua_policy_id)id);
        size_t sk = p->sym_sig_key_len, ek = p->sym_enc_key_len;
        ep_ua_sym_keys c, s;
        assert_int_equal(ep_ua_channel_keys_derive(p, cn, 32, sn, 32, &c, &s), EP_EOK);
        /* Client keys: secret = server nonce, seed = client nonce. */
        assert_int_equal(ep_ua_p_sha256(sn, 32, cn, 32, stream, sk + ek + 16), EP_EOK);
        assert_int_equal(c.sign_len, sk);
        assert_int_equal(c.enc_len, ek);
        assert_int_equal(c.iv_len, 16);
        assert_memory_equal(c.sign, stream, sk);
        assert_memory_equal(c.enc, stream + sk, ek);
        assert_memory_equal(c.iv, stream + sk + ek, 16);
        /* Server keys: secret = client nonce, seed = server nonce. */
        assert_int_equal(ep_ua_p_sha256(cn, 32, sn, 32, stream, sk + ek + 16), EP_EOK);
        assert_memory_equal(s.sign, stream, sk);
        assert_memory_equal(s.enc, stream + sk, ek);
        assert_memory_equal(s.iv, stream + sk + ek, 16);

        /* A message the client encrypts and signs, the server checks. */
        uint8_t msg[48], enc[48], mac[32];
        memset(msg, 'x', sizeof(msg));
        assert_int_equal(ep_ua_sym_sign(p, &c, msg, sizeof(msg), mac, sizeof(mac)), EP_EOK);
        assert_int_equal(ep_ua_sym_encrypt(p, &c, msg, enc, sizeof(msg)), EP_EOK);
        assert_memory_not_equal(enc, msg, sizeof(msg));
        assert_int_equal(ep_ua_sym_decrypt(p, &c, enc, enc, sizeof(enc)), EP_EOK);
        assert_memory_equal(enc, msg, sizeof(msg));
        assert_int_equal(ep_ua_sym_verify(p, &c, enc, sizeof(enc), mac, 32), EP_EOK);
        assert_int_equal(ep_ua_sym_verify(p, &s, enc, sizeof(enc), mac, 32), EP_ESECURITY);

        /* Nonces shorter than the policy's are refused. */
        assert_int_equal(ep_ua_channel_keys_derive(p, cn, 31, sn, 32, &c, &s), EP_ESECURITY);
        ep_ua_sym_keys_clear(&c);
        ep_ua_sym_keys_clear(&s);
    }
    ep_ua_sym_keys c, s;
    assert_int_equal(ep_ua_channel_keys_derive(POL(NONE), cn, 32, sn, 32, &c, &s), EP_EUNSUPPORTED);
}

static void test_nonce(void **state)
{
    (void)state;
    uint8_t a[64], b[64];
    size_t al = 0, bl = 0;
    const ep_ua_policy *p = POL(BASIC256SHA256);
    assert_int_equal(ep_ua_nonce_generate(p, a, sizeof(a), &al), EP_EOK);
    assert_int_equal(ep_ua_nonce_generate(p, b, sizeof(b), &bl), EP_EOK);
    assert_int_equal(al, 32);
    assert_int_equal(bl, 32);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(ep_ua_nonce_generate(p, a, 31, &al), EP_ETOOBIG);
    assert_int_equal(ep_ua_nonce_generate(POL(NONE), a, 64, &al), EP_EUNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_table), cmocka_unit_test(test_p_sha256_kat),
        cmocka_unit_test(test_hmac_kat),     cmocka_unit_test(test_sym_sign_verify),
        cmocka_unit_test(test_aes_cbc_kat),  cmocka_unit_test(test_key_derivation_layout),
        cmocka_unit_test(test_nonce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
