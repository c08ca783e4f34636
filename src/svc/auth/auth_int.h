/*
 * auth_int.h - helpers shared by the files of the auth module (not for
 * other modules): strict base64, constant-time comparison, randomness.
 */
#ifndef EP_SVC_AUTH_INT_H
#define EP_SVC_AUTH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* ep_auth__b64_len returns the encoded length of n bytes (padded, no NUL). */
static inline size_t ep_auth__b64_len(size_t n) { return (n + 2) / 3 * 4; }

/* ep_auth__b64_encode writes the padded standard base64 of in[0..n) and a
 * NUL to out (ep_auth__b64_len(n) + 1 bytes). Returns the length. */
size_t ep_auth__b64_encode(const uint8_t *in, size_t n, char *out);

/* ep_auth__b64_decode decodes padded standard base64 (RFC 4648 section 4,
 * no whitespace, canonical: unused bits must be zero) of len chars into out
 * (cap bytes). Returns EP_EOK with *out_len set, EP_EINVAL for bad input,
 * EP_ETOOBIG when out is too small. out is not touched on failure
 * beyond cap. */
ep_err ep_auth__b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* ep_auth__random fills p with n bytes from the OpenSSL CSPRNG.
 * Returns EP_EOK or EP_ECRYPTO. Any thread. */
ep_err ep_auth__random(void *p, size_t n);

/* ep_auth__ct_eq compares n bytes in time independent of their content. */
bool ep_auth__ct_eq(const void *a, const void *b, size_t n);

/* ep_auth__pbkdf2 runs PBKDF2-HMAC with SHA-512 (sha512 true) or SHA-256.
 * Returns EP_EOK or EP_ECRYPTO. CPU-bound; any thread. */
ep_err ep_auth__pbkdf2(bool sha512, const void *pass, size_t plen, const uint8_t *salt, size_t slen,
                       uint32_t iterations, uint8_t *out, size_t out_len);

/* SCRAM-SHA-256 key derivation from a salted password (RFC 5802 section 3):
 * ClientKey = HMAC(sp, "Client Key"), StoredKey = H(ClientKey),
 * ServerKey = HMAC(sp, "Server Key"). Any output pointer may be NULL. */
ep_err ep_auth__scram_keys(const uint8_t sp[32], uint8_t client_key[32], uint8_t stored_key[32],
                           uint8_t server_key[32]);

/* ep_auth__hmac256 computes HMAC-SHA-256 of the concatenation of up to
 * three parts (NULL parts are skipped). */
ep_err ep_auth__hmac256(const uint8_t *key, size_t klen, const void *a, size_t alen, const void *b,
                        size_t blen, const void *c, size_t clen, uint8_t out[32]);

/* Test hooks: fixed nonces for the RFC 7677 vector (scram.c). */
struct ep_scram_server;
struct ep_scram_client;
void ep_scram__server_fixed_nonce(struct ep_scram_server *s, const char *nonce);
void ep_scram__client_fixed_nonce(struct ep_scram_client *c, const char *nonce);

#endif
