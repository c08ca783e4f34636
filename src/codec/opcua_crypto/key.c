/*
 * key.c - RSA keys: generation, PEM/DER import, PKCS#8 PEM export. Keys are
 * a thin wrapper around EVP_PKEY so that callers never include OpenSSL.
 */
#include "codec/opcua_crypto/crypto_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

ep_err ep_ua__key_wrap(EVP_PKEY *pkey, int is_private, ep_ua_key **out)
{
    ep_ua_key *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return EP_ENOMEM;
    }
    k->pkey = pkey;
    k->is_private = is_private;
    *out = k;
    return EP_EOK;
}

ep_err ep_ua_key_generate(unsigned bits, ep_ua_key **out)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx;
    if (out == NULL)
        return EP_EINVAL;
    if (bits == 0)
        bits = 2048;
    if (bits < 1024 || bits > 16384)
        return EP_EINVAL;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) <= 0 ||
        EVP_PKEY_generate(ctx, &pkey) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        ERR_clear_error();
        return EP_ECRYPTO;
    }
    EVP_PKEY_CTX_free(ctx);
    return ep_ua__key_wrap(pkey, 1, out);
}

/* Encrypted keys are not supported: refuse instead of prompting on a tty. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

ep_err ep_ua_key_parse(const uint8_t *data, size_t len, ep_ua_key **out)
{
    EVP_PKEY *pkey = NULL;
    if (data == NULL || out == NULL || len == 0 || len > EP_UA__MAX_FILE)
        return EP_EINVAL;
    if (ep_ua__is_pem(data, len)) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio == NULL)
            return EP_ENOMEM;
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *p = data;
        pkey = d2i_AutoPrivateKey(NULL, &p, (long)len);
    }
    ERR_clear_error();
    if (pkey == NULL)
        return EP_EMALFORMED;
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        EVP_PKEY_free(pkey);
        return EP_EMALFORMED;
    }
    return ep_ua__key_wrap(pkey, 1, out);
}

ep_err ep_ua_key_load(const char *path, ep_ua_key **out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ep_err err;
    if (path == NULL || out == NULL)
        return EP_EINVAL;
    err = ep_ua__file_read(path, EP_UA__MAX_FILE, &data, &len);
    if (err != EP_EOK)
        return err;
    err = len ? ep_ua_key_parse(data, len, out) : EP_EMALFORMED;
    OPENSSL_cleanse(data, len);
    free(data);
    return err;
}

ep_err ep_ua_key_save(const ep_ua_key *key, const char *path)
{
    ep_err err;
    char *mem = NULL;
    long n;
    BIO *bio;
    if (key == NULL || path == NULL || !key->is_private)
        return EP_EINVAL;
    bio = BIO_new(BIO_s_secmem());
    if (bio == NULL)
        return EP_ENOMEM;
    if (PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(bio);
        ERR_clear_error();
        return EP_ECRYPTO;
    }
    n = BIO_get_mem_data(bio, &mem);
    err = n > 0 ? ep_ua__file_write(path, mem, (size_t)n, 0600) : EP_ECRYPTO;
    BIO_free(bio);
    return err;
}

unsigned ep_ua_key_bits(const ep_ua_key *key)
{
    if (key == NULL || key->pkey == NULL)
        return 0;
    int bits = EVP_PKEY_get_bits(key->pkey);
    return bits > 0 ? (unsigned)bits : 0;
}

int ep_ua_key_is_private(const ep_ua_key *key) { return key != NULL && key->is_private; }

void ep_ua_key_free(ep_ua_key *key)
{
    if (key == NULL || key->borrowed)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}
