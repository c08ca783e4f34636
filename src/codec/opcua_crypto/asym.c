/*
 * asym.c - RSA signatures and block-wise RSA-OAEP encryption as the OPC UA
 * security policies use them (OpenSecureChannel chunks, session signatures,
 * user token secrets).
 *
 * Every operation first checks the key length against the policy's
 * min/max: a policy that promises 2048..4096 bit keys must never be used
 * with a 1024 bit key, whichever side forgot to validate the certificate.
 *
 * RSA-PSS signatures use a salt as long as the digest (32 bytes), as OPC
 * 10000-7 specifies; verification recovers the salt length from the
 * signature so that peers using another salt length still interoperate
 * (the salt length does not affect PSS security).
 */
#include "codec/opcua_crypto/crypto_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

static ep_err check_key(const ep_ua_policy *p, const ep_ua_key *key)
{
    if (p == NULL || key == NULL || key->pkey == NULL)
        return EP_EINVAL;
    if (ep_ua_policy_is_none(p))
        return EP_EUNSUPPORTED;
    if (!EVP_PKEY_is_a(key->pkey, "RSA"))
        return EP_ESECURITY;
    unsigned bits = ep_ua_key_bits(key);
    if (bits < p->min_key_bits || bits > p->max_key_bits)
        return EP_ESECURITY;
    return EP_EOK;
}

size_t ep_ua_asym_sig_size(const ep_ua_policy *p, const ep_ua_key *key)
{
    if (ep_ua_policy_is_none(p) || key == NULL || key->pkey == NULL)
        return 0;
    int n = EVP_PKEY_get_size(key->pkey);
    return n > 0 ? (size_t)n : 0;
}

/* Sets padding (and PSS parameters) on a DigestSign/DigestVerify context. */
static int set_sig_padding(const ep_ua_policy *p, EVP_PKEY_CTX *pctx, const ep_ua__algs *a,
                           int verify)
{
    if (p->asym_sig == EP_UA_ASYM_SIG_RSA_PSS_SHA256) {
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, a->sha256) > 0 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, verify ? RSA_PSS_SALTLEN_AUTO
                                                             : RSA_PSS_SALTLEN_DIGEST) > 0;
    }
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
}

ep_err ep_ua_asym_sign(const ep_ua_policy *p, const ep_ua_key *priv, const uint8_t *data,
                       size_t len, uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
    ep_err err = check_key(p, priv);
    const ep_ua__algs *a = ep_ua__algs_get();
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    size_t n;
    if (err != EP_EOK)
        return err;
    if ((data == NULL && len > 0) || sig == NULL || sig_len == NULL || !priv->is_private)
        return EP_EINVAL;
    if (a == NULL)
        return EP_ECRYPTO;
    n = ep_ua_asym_sig_size(p, priv);
    if (sig_cap < n)
        return EP_ETOOBIG;
    md = EVP_MD_CTX_new();
    if (md == NULL)
        return EP_ENOMEM;
    err = EP_ECRYPTO;
    if (EVP_DigestSignInit_ex(md, &pctx, "SHA256", NULL, NULL, priv->pkey, NULL) != 1 ||
        !set_sig_padding(p, pctx, a, 0))
        goto done;
    n = sig_cap;
    if (EVP_DigestSign(md, sig, &n, data, len) != 1)
        goto done;
    *sig_len = n;
    err = EP_EOK;
done:
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return err;
}

ep_err ep_ua_asym_verify(const ep_ua_policy *p, const ep_ua_key *key, const uint8_t *data,
                         size_t len, const uint8_t *sig, size_t sig_len)
{
    ep_err err = check_key(p, key);
    const ep_ua__algs *a = ep_ua__algs_get();
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    if (err != EP_EOK)
        return err;
    if ((data == NULL && len > 0) || sig == NULL)
        return EP_EINVAL;
    if (a == NULL)
        return EP_ECRYPTO;
    if (sig_len != ep_ua_asym_sig_size(p, key))
        return EP_ESECURITY;
    md = EVP_MD_CTX_new();
    if (md == NULL)
        return EP_ENOMEM;
    if (EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, key->pkey, NULL) != 1 ||
        !set_sig_padding(p, pctx, a, 1))
        err = EP_ECRYPTO;
    else if (EVP_DigestVerify(md, sig, sig_len, data, len) != 1)
        err = EP_ESECURITY;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return err;
}

ep_err ep_ua_asym_block_sizes(const ep_ua_policy *p, const ep_ua_key *key, size_t *plain_block,
                              size_t *cipher_block)
{
    size_t cb;
    if (p == NULL || key == NULL || plain_block == NULL || cipher_block == NULL)
        return EP_EINVAL;
    if (ep_ua_policy_is_none(p))
        return EP_EUNSUPPORTED;
    cb = ep_ua_asym_sig_size(p, key);
    if (cb <= p->asym_enc_overhead)
        return EP_EINVAL;
    *plain_block = cb - p->asym_enc_overhead;
    *cipher_block = cb;
    return EP_EOK;
}

size_t ep_ua_asym_encrypted_size(const ep_ua_policy *p, const ep_ua_key *key, size_t len)
{
    size_t pb, cb;
    if (ep_ua_asym_block_sizes(p, key, &pb, &cb) != EP_EOK)
        return 0;
    size_t blocks = len / pb + (len % pb != 0);
    if (blocks > SIZE_MAX / cb)
        return 0;
    return blocks * cb;
}

/* Creates an encrypt or decrypt context with the policy's OAEP parameters. */
static EVP_PKEY_CTX *oaep_ctx(const ep_ua_policy *p, const ep_ua_key *key, int decrypt)
{
    const ep_ua__algs *a = ep_ua__algs_get();
    EVP_PKEY_CTX *ctx;
    if (a == NULL)
        return NULL;
    const EVP_MD *md = p->asym_enc == EP_UA_ASYM_ENC_RSA_OAEP_SHA256 ? a->sha256 : a->sha1;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (ctx == NULL)
        return NULL;
    if ((decrypt ? EVP_PKEY_decrypt_init(ctx) : EVP_PKEY_encrypt_init(ctx)) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) <= 0 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

ep_err ep_ua_asym_encrypt(const ep_ua_policy *p, const ep_ua_key *pub, const uint8_t *in,
                          size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    ep_err err = check_key(p, pub);
    size_t pb, cb, need, off = 0, done = 0;
    EVP_PKEY_CTX *ctx;
    if (err != EP_EOK)
        return err;
    if ((in == NULL && len > 0) || out == NULL || out_len == NULL)
        return EP_EINVAL;
    err = ep_ua_asym_block_sizes(p, pub, &pb, &cb);
    if (err != EP_EOK)
        return err;
    need = ep_ua_asym_encrypted_size(p, pub, len);
    if (need == 0 && len > 0)
        return EP_ETOOBIG;
    if (out_cap < need)
        return EP_ETOOBIG;
    ctx = oaep_ctx(p, pub, 0);
    if (ctx == NULL) {
        ERR_clear_error();
        return EP_ECRYPTO;
    }
    while (off < len) {
        size_t chunk = len - off < pb ? len - off : pb;
        size_t n = cb;
        if (EVP_PKEY_encrypt(ctx, out + done, &n, in + off, chunk) != 1 || n != cb) {
            err = EP_ECRYPTO;
            break;
        }
        off += chunk;
        done += cb;
    }
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    if (err == EP_EOK)
        *out_len = done;
    return err;
}

ep_err ep_ua_asym_decrypt(const ep_ua_policy *p, const ep_ua_key *priv, const uint8_t *in,
                          size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    ep_err err = check_key(p, priv);
    size_t pb, cb, off = 0, done = 0;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t *tmp = NULL;
    if (err != EP_EOK)
        return err;
    if ((in == NULL && len > 0) || out == NULL || out_len == NULL || !priv->is_private)
        return EP_EINVAL;
    err = ep_ua_asym_block_sizes(p, priv, &pb, &cb);
    if (err != EP_EOK)
        return err;
    if (len % cb != 0)
        return EP_EMALFORMED;
    tmp = malloc(cb);
    if (tmp == NULL)
        return EP_ENOMEM;
    ctx = oaep_ctx(p, priv, 1);
    if (ctx == NULL) {
        err = EP_ECRYPTO;
        goto done;
    }
    for (off = 0; off < len; off += cb) {
        size_t n = cb;
        if (EVP_PKEY_decrypt(ctx, tmp, &n, in + off, cb) != 1 || n > pb) {
            err = EP_ESECURITY;
            goto done;
        }
        if (out_cap - done < n) {
            err = EP_ETOOBIG;
            goto done;
        }
        memcpy(out + done, tmp, n);
        done += n;
    }
    *out_len = done;
done:
    OPENSSL_cleanse(tmp, cb);
    free(tmp);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return err;
}
