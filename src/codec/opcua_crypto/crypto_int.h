/*
 * crypto_int.h - internals shared by the files of the opcua_crypto module
 * (and its tests). Not for use outside src/codec/opcua_crypto/.
 */
#ifndef EP_CODEC_OPCUA_CRYPTO_CRYPTO_INT_H
#define EP_CODEC_OPCUA_CRYPTO_CRYPTO_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "codec/opcua_crypto/cert.h"
#include "codec/opcua_crypto/crypto.h"
#include "core/err.h"

#define EP_UA__MAX_FILE (1u << 20)      /* certificate and key files */
#define EP_UA__MAX_CRL_FILE (16u << 20) /* CRLs can list many serials */
#define EP_UA__THUMB_LEN 20             /* SHA-1 */

struct ep_ua_key {
    EVP_PKEY *pkey;
    int is_private;
    int borrowed; /* embedded in an ep_ua_cert, pkey owned by the X509 */
};

struct ep_ua_cert {
    X509 *x509;
    uint8_t *der;
    size_t der_len;
    ep_ua_key pub; /* borrowed view of the certificate's public key */
    uint8_t thumb[EP_UA__THUMB_LEN];
    char thumb_hex[2 * EP_UA__THUMB_LEN + 1];
    char *app_uri; /* first URI in subjectAltName, NULL if none */
    char *cn;      /* subject common name, "" if none */
};

/* Algorithms fetched once from the default library context. */
typedef struct ep_ua__algs {
    EVP_MD *sha1;
    EVP_MD *sha256;
    EVP_MAC *hmac;
    EVP_CIPHER *aes128_cbc;
    EVP_CIPHER *aes256_cbc;
} ep_ua__algs;

/* ep_ua__algs_get returns the fetched algorithms, or NULL when a fetch failed
 * (broken OpenSSL installation). Thread-safe. */
const ep_ua__algs *ep_ua__algs_get(void);

/* ep_ua__key_wrap takes ownership of pkey (freed on failure too). */
ep_err ep_ua__key_wrap(EVP_PKEY *pkey, int is_private, ep_ua_key **out);

/* ep_ua__cert_wrap takes ownership of x509 (freed on failure too) and builds
 * the cached views (DER, thumbprint, URI, CN). EP_EMALFORMED when the
 * certificate has no RSA key or a subjectAltName URI with a NUL byte. */
ep_err ep_ua__cert_wrap(X509 *x509, ep_ua_cert **out);

/* ep_ua__hmac_sha256 computes HMAC-SHA256(key, a || b) into out[32]; b may
 * be NULL with blen 0. */
ep_err ep_ua__hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen,
                          const uint8_t *b, size_t blen, uint8_t out[32]);

/* ep_ua__file_read reads a whole regular file of at most max bytes into a
 * malloc'ed buffer. Errors: EP_ENOTFOUND, EP_EPERM, EP_EIO, EP_ETOOBIG,
 * EP_ENOMEM. */
ep_err ep_ua__file_read(const char *path, size_t max, uint8_t **data, size_t *len);

/* ep_ua__file_write writes data to path atomically (temporary file in the
 * same directory, fsync, rename) with the given mode. */
ep_err ep_ua__file_write(const char *path, const void *data, size_t len, mode_t mode);

/* ep_ua__detail formats into detail (may be NULL) and appends the first
 * queued OpenSSL reason, if any; it always clears the OpenSSL error queue. */
void ep_ua__detail(char *detail, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ep_ua__is_pem reports whether data starts (after whitespace) with a PEM
 * "-----BEGIN" line. */
int ep_ua__is_pem(const uint8_t *data, size_t len);

#endif
