/*
 * secret.c - the "legacy" encrypted token secret of OPC 10000-4 (used for
 * UserNameIdentityToken passwords by every RSA security policy):
 *
 *   plaintext = uint32 LE (secret_len + nonce_len) || secret || server nonce
 *   token     = policy asymmetric encryption (block-wise) of plaintext
 *               with the public key of the server certificate
 *
 * The server nonce binds the secret to the session so that a captured token
 * cannot be replayed; the server therefore checks it on decryption.
 */
#include "codec/opcua_crypto/crypto_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define MIN_NONCE 32
#define MAX_SECRET (64u * 1024u)

size_t ep_ua_secret_encrypted_size(const ep_ua_policy *p, const ep_ua_key *pub, size_t secret_len,
                                   size_t nonce_len)
{
    if (secret_len > MAX_SECRET || nonce_len > MAX_SECRET)
        return 0;
    return ep_ua_asym_encrypted_size(p, pub, 4 + secret_len + nonce_len);
}

ep_err ep_ua_secret_encrypt(const ep_ua_policy *p, const ep_ua_key *pub, const uint8_t *secret,
                            size_t secret_len, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                            size_t out_cap, size_t *out_len)
{
    uint8_t *plain;
    size_t plen, body;
    ep_err err;
    if (p == NULL || pub == NULL || (secret == NULL && secret_len > 0) || nonce == NULL ||
        out == NULL || out_len == NULL)
        return EP_EINVAL;
    if (ep_ua_policy_is_none(p))
        return EP_EUNSUPPORTED;
    if (nonce_len < MIN_NONCE)
        return EP_ESECURITY;
    if (secret_len > MAX_SECRET || nonce_len > MAX_SECRET)
        return EP_ETOOBIG;
    body = secret_len + nonce_len;
    plen = 4 + body;
    plain = malloc(plen);
    if (plain == NULL)
        return EP_ENOMEM;
    plain[0] = (uint8_t)body;
    plain[1] = (uint8_t)(body >> 8);
    plain[2] = (uint8_t)(body >> 16);
    plain[3] = (uint8_t)(body >> 24);
    if (secret_len > 0)
        memcpy(plain + 4, secret, secret_len);
    memcpy(plain + 4 + secret_len, nonce, nonce_len);
    err = ep_ua_asym_encrypt(p, pub, plain, plen, out, out_cap, out_len);
    OPENSSL_cleanse(plain, plen);
    free(plain);
    return err;
}

ep_err ep_ua_secret_decrypt(const ep_ua_policy *p, const ep_ua_key *priv, const uint8_t *in,
                            size_t len, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                            size_t out_cap, size_t *out_len)
{
    uint8_t *plain = NULL;
    size_t plen = 0, body, secret_len;
    ep_err err;
    if (p == NULL || priv == NULL || in == NULL || nonce == NULL || out == NULL || out_len == NULL)
        return EP_EINVAL;
    if (ep_ua_policy_is_none(p))
        return EP_EUNSUPPORTED;
    if (nonce_len < MIN_NONCE)
        return EP_ESECURITY;
    if (len == 0 || len > 4 * MAX_SECRET)
        return EP_EMALFORMED;
    plain = malloc(len); /* plaintext is always shorter than ciphertext */
    if (plain == NULL)
        return EP_ENOMEM;
    err = ep_ua_asym_decrypt(p, priv, in, len, plain, len, &plen);
    if (err != EP_EOK)
        goto done;
    err = EP_EMALFORMED;
    if (plen < 4)
        goto done;
    body =
        (size_t)plain[0] | (size_t)plain[1] << 8 | (size_t)plain[2] << 16 | (size_t)plain[3] << 24;
    if (body != plen - 4 || body < nonce_len)
        goto done;
    secret_len = body - nonce_len;
    if (CRYPTO_memcmp(plain + 4 + secret_len, nonce, nonce_len) != 0) {
        err = EP_ESECURITY;
        goto done;
    }
    if (out_cap < secret_len) {
        err = EP_ETOOBIG;
        goto done;
    }
    if (secret_len > 0)
        memcpy(out, plain + 4, secret_len);
    *out_len = secret_len;
    err = EP_EOK;
done:
    OPENSSL_cleanse(plain, len);
    free(plain);
    return err;
}
