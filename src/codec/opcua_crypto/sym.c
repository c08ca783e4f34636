/*
 * sym.c - the symmetric half of an OPC UA secure channel: P_SHA256 key
 * derivation, HMAC-SHA256 chunk signatures and AES-CBC chunk encryption
 * without padding (the chunk layer adds OPC UA padding itself), plus nonces.
 *
 * These run once or twice per message chunk, so algorithms are fetched once
 * (util.c) and the only allocation per call is the short-lived OpenSSL
 * context.
 */
#include "codec/opcua_crypto/crypto_int.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define SHA256_LEN 32
#define P_SHA256_MAX (64u * 1024u)

ep_err ep_ua__hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen,
                          const uint8_t *b, size_t blen, uint8_t out[32])
{
    const ep_ua__algs *algs = ep_ua__algs_get();
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *ctx;
    size_t n = 0;
    ep_err err = EP_ECRYPTO;
    if (algs == NULL)
        return EP_ECRYPTO;
    ctx = EVP_MAC_CTX_new(algs->hmac);
    if (ctx == NULL)
        return EP_ENOMEM;
    if (EVP_MAC_init(ctx, key, klen, params) == 1 && EVP_MAC_update(ctx, a, alen) == 1 &&
        (blen == 0 || EVP_MAC_update(ctx, b, blen) == 1) &&
        EVP_MAC_final(ctx, out, &n, SHA256_LEN) == 1 && n == SHA256_LEN)
        err = EP_EOK;
    EVP_MAC_CTX_free(ctx);
    ERR_clear_error();
    return err;
}

ep_err ep_ua_p_sha256(const uint8_t *secret, size_t secret_len, const uint8_t *seed,
                      size_t seed_len, uint8_t *out, size_t out_len)
{
    uint8_t a[SHA256_LEN], block[SHA256_LEN];
    size_t done = 0;
    ep_err err;
    if (secret == NULL || secret_len == 0 || (seed == NULL && seed_len > 0) || out == NULL ||
        out_len > P_SHA256_MAX)
        return EP_EINVAL;
    /* A(1) = HMAC(secret, seed); output block i = HMAC(secret, A(i) || seed) */
    err = ep_ua__hmac_sha256(secret, secret_len, seed, seed_len, NULL, 0, a);
    while (err == EP_EOK && done < out_len) {
        size_t n = out_len - done < SHA256_LEN ? out_len - done : SHA256_LEN;
        err = ep_ua__hmac_sha256(secret, secret_len, a, sizeof(a), seed, seed_len, block);
        if (err != EP_EOK)
            break;
        memcpy(out + done, block, n);
        done += n;
        if (done < out_len)
            err = ep_ua__hmac_sha256(secret, secret_len, a, sizeof(a), NULL, 0, a);
    }
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(block, sizeof(block));
    return err;
}

ep_err ep_ua_sym_keys_derive(const ep_ua_policy *p, const uint8_t *secret, size_t secret_len,
                             const uint8_t *seed, size_t seed_len, ep_ua_sym_keys *keys)
{
    uint8_t buf[sizeof(keys->sign) + sizeof(keys->enc) + sizeof(keys->iv)];
    size_t total;
    ep_err err;
    if (p == NULL || secret == NULL || seed == NULL || keys == NULL)
        return EP_EINVAL;
    if (ep_ua_policy_is_none(p))
        return EP_EUNSUPPORTED;
    if (secret_len < p->nonce_len || seed_len < p->nonce_len)
        return EP_ESECURITY;
    total = p->sym_sig_key_len + p->sym_enc_key_len + p->sym_block_len;
    if (p->sym_sig_key_len > sizeof(keys->sign) || p->sym_enc_key_len > sizeof(keys->enc) ||
        p->sym_block_len > sizeof(keys->iv))
        return EP_EINVAL;
    err = ep_ua_p_sha256(secret, secret_len, seed, seed_len, buf, total);
    if (err == EP_EOK) {
        memset(keys, 0, sizeof(*keys));
        memcpy(keys->sign, buf, p->sym_sig_key_len);
        memcpy(keys->enc, buf + p->sym_sig_key_len, p->sym_enc_key_len);
        memcpy(keys->iv, buf + p->sym_sig_key_len + p->sym_enc_key_len, p->sym_block_len);
        keys->sign_len = p->sym_sig_key_len;
        keys->enc_len = p->sym_enc_key_len;
        keys->iv_len = p->sym_block_len;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return err;
}

ep_err ep_ua_channel_keys_derive(const ep_ua_policy *p, const uint8_t *client_nonce, size_t cn_len,
                                 const uint8_t *server_nonce, size_t sn_len, ep_ua_sym_keys *client,
                                 ep_ua_sym_keys *server)
{
    ep_ua_sym_keys c, s;
    ep_err err;
    if (client == NULL || server == NULL)
        return EP_EINVAL;
    err = ep_ua_sym_keys_derive(p, server_nonce, sn_len, client_nonce, cn_len, &c);
    if (err == EP_EOK)
        err = ep_ua_sym_keys_derive(p, client_nonce, cn_len, server_nonce, sn_len, &s);
    if (err == EP_EOK) {
        *client = c;
        *server = s;
    }
    ep_ua_sym_keys_clear(&c);
    ep_ua_sym_keys_clear(&s);
    return err;
}

void ep_ua_sym_keys_clear(ep_ua_sym_keys *keys)
{
    if (keys != NULL)
        OPENSSL_cleanse(keys, sizeof(*keys));
}

static ep_err check_sym(const ep_ua_policy *p, const ep_ua_sym_keys *keys)
{
    if (p == NULL || keys == NULL)
        return EP_EINVAL;
    if (ep_ua_policy_is_none(p))
        return EP_EUNSUPPORTED;
    return EP_EOK;
}

ep_err ep_ua_sym_sign(const ep_ua_policy *p, const ep_ua_sym_keys *keys, const uint8_t *data,
                      size_t len, uint8_t *sig, size_t sig_cap)
{
    ep_err err = check_sym(p, keys);
    if (err != EP_EOK)
        return err;
    if ((data == NULL && len > 0) || sig == NULL || keys->sign_len != p->sym_sig_key_len)
        return EP_EINVAL;
    if (sig_cap < p->sym_sig_len)
        return EP_ETOOBIG;
    return ep_ua__hmac_sha256(keys->sign, keys->sign_len, data, len, NULL, 0, sig);
}

ep_err ep_ua_sym_verify(const ep_ua_policy *p, const ep_ua_sym_keys *keys, const uint8_t *data,
                        size_t len, const uint8_t *sig, size_t sig_len)
{
    uint8_t mac[SHA256_LEN];
    ep_err err = check_sym(p, keys);
    if (err != EP_EOK)
        return err;
    if ((data == NULL && len > 0) || sig == NULL || keys->sign_len != p->sym_sig_key_len)
        return EP_EINVAL;
    if (sig_len != p->sym_sig_len)
        return EP_ESECURITY;
    err = ep_ua__hmac_sha256(keys->sign, keys->sign_len, data, len, NULL, 0, mac);
    if (err == EP_EOK && CRYPTO_memcmp(mac, sig, sizeof(mac)) != 0)
        err = EP_ESECURITY;
    OPENSSL_cleanse(mac, sizeof(mac));
    return err;
}

static ep_err sym_cipher(const ep_ua_policy *p, const ep_ua_sym_keys *keys, const uint8_t *in,
                         uint8_t *out, size_t len, int enc)
{
    const ep_ua__algs *a;
    const EVP_CIPHER *cipher;
    EVP_CIPHER_CTX *ctx;
    int n = 0, fin = 0;
    ep_err err = check_sym(p, keys);
    if (err != EP_EOK)
        return err;
    if ((len > 0 && (in == NULL || out == NULL)) || keys->enc_len != p->sym_enc_key_len ||
        keys->iv_len != p->sym_block_len || len % p->sym_block_len != 0 || len > INT_MAX)
        return EP_EINVAL;
    if (len == 0)
        return EP_EOK;
    a = ep_ua__algs_get();
    if (a == NULL)
        return EP_ECRYPTO;
    cipher = p->sym_enc == EP_UA_SYM_ENC_AES128_CBC ? a->aes128_cbc : a->aes256_cbc;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return EP_ENOMEM;
    if (EVP_CipherInit_ex2(ctx, cipher, keys->enc, keys->iv, enc, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1 ||
        EVP_CipherFinal_ex(ctx, out + n, &fin) != 1 || (size_t)n + (size_t)fin != len)
        err = EP_ECRYPTO;
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return err;
}

ep_err ep_ua_sym_encrypt(const ep_ua_policy *p, const ep_ua_sym_keys *keys, const uint8_t *in,
                         uint8_t *out, size_t len)
{
    return sym_cipher(p, keys, in, out, len, 1);
}

ep_err ep_ua_sym_decrypt(const ep_ua_policy *p, const ep_ua_sym_keys *keys, const uint8_t *in,
                         uint8_t *out, size_t len)
{
    return sym_cipher(p, keys, in, out, len, 0);
}

ep_err ep_ua_nonce_generate(const ep_ua_policy *p, uint8_t *out, size_t cap, size_t *len)
{
    if (p == NULL || out == NULL || len == NULL)
        return EP_EINVAL;
    if (ep_ua_policy_is_none(p))
        return EP_EUNSUPPORTED;
    if (cap < p->nonce_len)
        return EP_ETOOBIG;
    if (RAND_bytes(out, (int)p->nonce_len) != 1) {
        ERR_clear_error();
        return EP_ECRYPTO;
    }
    *len = p->nonce_len;
    return EP_EOK;
}
