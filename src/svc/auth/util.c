/*
 * util.c - small primitives for the auth module: strict base64 (the
 * password file and SCRAM both use padded standard base64, and a parser
 * that accepts several spellings of one value would make the fuzzer's
 * round-trip oracle meaningless), constant-time comparison and thin
 * wrappers over OpenSSL's PBKDF2 and HMAC.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "svc/auth/auth_int.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ep_auth__b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ep_err ep_auth__b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (len % 4 != 0)
        return EP_EINVAL;
    size_t pad = 0;
    if (len >= 4 && in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    size_t n = len / 4 * 3 - pad;
    if (n > cap)
        return EP_ETOOBIG;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v[4];
        for (int k = 0; k < 4; k++) {
            if (last && k >= 4 - (int)pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_val(in[i + (size_t)k]);
            if (v[k] < 0)
                return EP_EINVAL;
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (last && pad == 2 && (w & 0xffff) != 0)
            return EP_EINVAL; /* non-canonical: unused bits set */
        if (last && pad == 1 && (w & 0xff) != 0)
            return EP_EINVAL;
        out[o++] = (uint8_t)(w >> 16);
        if (!(last && pad == 2))
            out[o++] = (uint8_t)(w >> 8);
        if (!(last && pad >= 1))
            out[o++] = (uint8_t)w;
    }
    *out_len = o;
    return EP_EOK;
}

ep_err ep_auth__random(void *p, size_t n)
{
    if (n > (size_t)INT32_MAX || RAND_bytes(p, (int)n) != 1)
        return EP_ECRYPTO;
    return EP_EOK;
}

bool ep_auth__ct_eq(const void *a, const void *b, size_t n) { return CRYPTO_memcmp(a, b, n) == 0; }

ep_err ep_auth__pbkdf2(bool sha512, const void *pass, size_t plen, const uint8_t *salt, size_t slen,
                       uint32_t iterations, uint8_t *out, size_t out_len)
{
    if (plen > (size_t)INT32_MAX || slen > (size_t)INT32_MAX || iterations == 0 ||
        iterations > (uint32_t)INT32_MAX || out_len > (size_t)INT32_MAX)
        return EP_EINVAL;
    /* OpenSSL rejects a NULL password even with length 0. */
    const char *p = plen ? pass : "";
    if (PKCS5_PBKDF2_HMAC(p, (int)plen, salt, (int)slen, (int)iterations,
                          sha512 ? EVP_sha512() : EVP_sha256(), (int)out_len, out) != 1)
        return EP_ECRYPTO;
    return EP_EOK;
}

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void) { hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL); }

ep_err ep_auth__hmac256(const uint8_t *key, size_t klen, const void *a, size_t alen, const void *b,
                        size_t blen, const void *c, size_t clen, uint8_t out[32])
{
    pthread_once(&hmac_once, hmac_fetch);
    if (hmac_alg == NULL)
        return EP_ECRYPTO;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);
    if (ctx == NULL)
        return EP_ENOMEM;
    ep_err err = EP_ECRYPTO;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    if (EVP_MAC_init(ctx, key, klen, params) != 1)
        goto out;
    if (a != NULL && EVP_MAC_update(ctx, a, alen) != 1)
        goto out;
    if (b != NULL && EVP_MAC_update(ctx, b, blen) != 1)
        goto out;
    if (c != NULL && EVP_MAC_update(ctx, c, clen) != 1)
        goto out;
    if (EVP_MAC_final(ctx, out, &outl, 32) != 1 || outl != 32)
        goto out;
    err = EP_EOK;
out:
    EVP_MAC_CTX_free(ctx);
    return err;
}

ep_err ep_auth__scram_keys(const uint8_t sp[32], uint8_t client_key[32], uint8_t stored_key[32],
                           uint8_t server_key[32])
{
    uint8_t ck[32];
    ep_err err = ep_auth__hmac256(sp, 32, "Client Key", 10, NULL, 0, NULL, 0, ck);
    if (err == EP_EOK && stored_key != NULL &&
        EVP_Digest(ck, sizeof(ck), stored_key, NULL, EVP_sha256(), NULL) != 1)
        err = EP_ECRYPTO;
    if (err == EP_EOK && server_key != NULL)
        err = ep_auth__hmac256(sp, 32, "Server Key", 10, NULL, 0, NULL, 0, server_key);
    if (err == EP_EOK && client_key != NULL)
        memcpy(client_key, ck, 32);
    OPENSSL_cleanse(ck, sizeof(ck));
    return err;
}
