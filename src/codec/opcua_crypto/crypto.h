/*
 * crypto.h - OPC UA secure channel cryptography: keys, asymmetric and
 * symmetric primitives, key derivation and user token secrets.
 *
 * Bytes in, bytes out: nothing here knows the OPC UA type codec. Every
 * operation takes the policy descriptor (policy.h) and picks the algorithm
 * from it, so the secure channel is written once for all policies. The
 * None policy has no cryptography: every operation returns EP_EUNSUPPORTED
 * for it and every size query returns 0.
 *
 * Output buffers are caller storage with an explicit capacity; the size
 * queries tell how much to provide. On failure outputs are not meaningful
 * and *out_len is left untouched.
 *
 * Errors common to all functions:
 *   EP_EINVAL       NULL where a pointer is required, lengths not allowed
 *   EP_EUNSUPPORTED the policy has no such algorithm (None)
 *   EP_ETOOBIG      output capacity too small
 *   EP_ESECURITY    a signature or MAC does not verify, a decryption fails its
 *                   padding check, or a key length is outside the policy's
 *                   min/max (asymmetric operations refuse such keys)
 *   EP_ECRYPTO      OpenSSL failed for another reason (should not happen)
 *   EP_ENOMEM       allocation failed
 *
 * Threads: keys are immutable once created and may be shared by threads for
 * any number of concurrent operations; every function is reentrant.
 * The OpenSSL error queue is cleared before returning.
 */
#ifndef EP_CODEC_OPCUA_CRYPTO_CRYPTO_H
#define EP_CODEC_OPCUA_CRYPTO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "codec/opcua_crypto/policy.h"
#include "core/err.h"

/* ---------------------------------------------------------------- keys -- */

/* An RSA key: private (own application key) or public only (taken from a
 * peer certificate with ep_ua_cert_key, see cert.h). Opaque. */
typedef struct ep_ua_key ep_ua_key;

/* ep_ua_key_generate creates a new RSA private key of bits (0 means 2048;
 * 1024..16384 accepted) into *out, which the caller frees with
 * ep_ua_key_free. Errors: EP_EINVAL, EP_ECRYPTO, EP_ENOMEM. */
ep_err ep_ua_key_generate(unsigned bits, ep_ua_key **out);

/* ep_ua_key_parse reads a private key from PEM (PKCS#8 or PKCS#1, not
 * encrypted) or DER (PKCS#8 or PKCS#1) bytes, borrowed. Only RSA keys are
 * accepted. Errors: EP_EINVAL, EP_EMALFORMED (not an unencrypted RSA
 * private key), EP_ENOMEM. */
ep_err ep_ua_key_parse(const uint8_t *data, size_t len, ep_ua_key **out);

/* ep_ua_key_load reads a private key file (PEM or DER, detected) as
 * ep_ua_key_parse. Errors additionally: EP_ENOTFOUND, EP_EIO, EP_EPERM,
 * EP_ETOOBIG (file above 1 MiB). */
ep_err ep_ua_key_load(const char *path, ep_ua_key **out);

/* ep_ua_key_save writes the private key as unencrypted PKCS#8 PEM with mode
 * 0600, atomically (temporary file + rename). Errors: EP_EINVAL (public-only
 * key), EP_EIO, EP_EPERM, EP_ENOTFOUND (directory missing), EP_ECRYPTO. */
ep_err ep_ua_key_save(const ep_ua_key *key, const char *path);

/* ep_ua_key_bits returns the RSA modulus length in bits, 0 for NULL. */
unsigned ep_ua_key_bits(const ep_ua_key *key);

/* ep_ua_key_is_private reports whether key holds a private key. */
int ep_ua_key_is_private(const ep_ua_key *key);

/* ep_ua_key_free releases a key from ep_ua_key_generate/parse/load; NULL is
 * a no-op. Never call it on the borrowed key of a certificate. */
void ep_ua_key_free(ep_ua_key *key);

/* ---------------------------------------------------------- asymmetric -- */

/* ep_ua_asym_sig_size returns the signature length produced with key (the
 * modulus length in bytes), 0 for None or a NULL key. */
size_t ep_ua_asym_sig_size(const ep_ua_policy *p, const ep_ua_key *key);

/* ep_ua_asym_sign signs data with the private key using the policy's
 * asymmetric signature algorithm. sig must hold ep_ua_asym_sig_size bytes;
 * *sig_len receives the length written. */
ep_err ep_ua_asym_sign(const ep_ua_policy *p, const ep_ua_key *priv, const uint8_t *data,
                       size_t len, uint8_t *sig, size_t sig_cap, size_t *sig_len);

/* ep_ua_asym_verify checks sig over data with the (public or private) key.
 * Returns EP_EOK when valid, EP_ESECURITY when it is not. */
ep_err ep_ua_asym_verify(const ep_ua_policy *p, const ep_ua_key *key, const uint8_t *data,
                         size_t len, const uint8_t *sig, size_t sig_len);

/* ep_ua_asym_block_sizes gives the asymmetric encryption block sizes for
 * key: OPC UA encrypts block by block, each plaintext block of up to
 * *plain_block bytes becoming one *cipher_block byte block (the modulus
 * length). plain = modulus bytes - 42 for OAEP-SHA1, - 66 for OAEP-SHA256.
 * Errors: EP_EINVAL, EP_EUNSUPPORTED. */
ep_err ep_ua_asym_block_sizes(const ep_ua_policy *p, const ep_ua_key *key, size_t *plain_block,
                              size_t *cipher_block);

/* ep_ua_asym_encrypted_size returns the ciphertext length for len plaintext
 * bytes (ceil(len / plain_block) * cipher_block), 0 for None. */
size_t ep_ua_asym_encrypted_size(const ep_ua_policy *p, const ep_ua_key *key, size_t len);

/* ep_ua_asym_encrypt encrypts len bytes with the peer's public key, block by
 * block; the last block may be short. out must not overlap in and must hold
 * ep_ua_asym_encrypted_size bytes; *out_len receives the length written. */
ep_err ep_ua_asym_encrypt(const ep_ua_policy *p, const ep_ua_key *pub, const uint8_t *in,
                          size_t len, uint8_t *out, size_t out_cap, size_t *out_len);

/* ep_ua_asym_decrypt decrypts len bytes (a multiple of the cipher block)
 * with the private key. out must not overlap in; len / cipher_block *
 * plain_block bytes always suffice. EP_ESECURITY when a block fails to
 * decrypt (wrong key, tampered data); EP_EMALFORMED when len is not a
 * multiple of the cipher block. */
ep_err ep_ua_asym_decrypt(const ep_ua_policy *p, const ep_ua_key *priv, const uint8_t *in,
                          size_t len, uint8_t *out, size_t out_cap, size_t *out_len);

/* ----------------------------------------------------------- symmetric -- */

/* Keys for one direction of a secure channel, derived with P_SHA256. The
 * struct is plain caller storage; wipe it with ep_ua_sym_keys_clear. */
typedef struct ep_ua_sym_keys {
    uint8_t sign[32];
    uint8_t enc[32];
    uint8_t iv[16];
    size_t sign_len; /* policy->sym_sig_key_len */
    size_t enc_len;  /* policy->sym_enc_key_len */
    size_t iv_len;   /* policy->sym_block_len */
} ep_ua_sym_keys;

/* ep_ua_p_sha256 is the P_SHA256 pseudo random function of RFC 5246 section
 * 5 (OPC 10000-6 section 6.7.5): HMAC-SHA256 expansion of secret over seed,
 * writing out_len bytes (at most 65536) to out. Errors: EP_EINVAL,
 * EP_ECRYPTO. */
ep_err ep_ua_p_sha256(const uint8_t *secret, size_t secret_len, const uint8_t *seed,
                      size_t seed_len, uint8_t *out, size_t out_len);

/* ep_ua_sym_keys_derive fills *keys with signing key, encrypting key and IV
 * (in that order) taken from P_SHA256(secret, seed) with the policy's
 * lengths. OPC 10000-6 6.7.5: the keys a client uses to send are derived
 * with secret = server nonce and seed = client nonce; the keys the server
 * uses to send with secret = client nonce and seed = server nonce. Nonces
 * shorter than policy->nonce_len are refused (EP_ESECURITY). */
ep_err ep_ua_sym_keys_derive(const ep_ua_policy *p, const uint8_t *secret, size_t secret_len,
                             const uint8_t *seed, size_t seed_len, ep_ua_sym_keys *keys);

/* ep_ua_channel_keys_derive derives both directions from the two nonces of
 * an OpenSecureChannel exchange: *client gets the keys of messages sent by
 * the client, *server those of messages sent by the server. Errors as
 * ep_ua_sym_keys_derive. */
ep_err ep_ua_channel_keys_derive(const ep_ua_policy *p, const uint8_t *client_nonce, size_t cn_len,
                                 const uint8_t *server_nonce, size_t sn_len, ep_ua_sym_keys *client,
                                 ep_ua_sym_keys *server);

/* ep_ua_sym_keys_clear wipes the key material (not optimised away). */
void ep_ua_sym_keys_clear(ep_ua_sym_keys *keys);

/* ep_ua_sym_sign computes HMAC-SHA256 of data with keys->sign into sig,
 * which must hold policy->sym_sig_len (32) bytes. */
ep_err ep_ua_sym_sign(const ep_ua_policy *p, const ep_ua_sym_keys *keys, const uint8_t *data,
                      size_t len, uint8_t *sig, size_t sig_cap);

/* ep_ua_sym_verify checks sig over data in constant time. Returns EP_EOK or
 * EP_ESECURITY (mismatch, including a wrong sig_len). */
ep_err ep_ua_sym_verify(const ep_ua_policy *p, const ep_ua_sym_keys *keys, const uint8_t *data,
                        size_t len, const uint8_t *sig, size_t sig_len);

/* ep_ua_sym_encrypt / ep_ua_sym_decrypt run AES-CBC with keys->enc and
 * keys->iv over len bytes, which must be a multiple of the block size
 * (EP_EINVAL otherwise) and below 2 GiB. No padding is added or removed.
 * in and out may be the same buffer (in-place); they must not otherwise
 * overlap. Every call starts from keys->iv, as each OPC UA chunk does. */
ep_err ep_ua_sym_encrypt(const ep_ua_policy *p, const ep_ua_sym_keys *keys, const uint8_t *in,
                         uint8_t *out, size_t len);
ep_err ep_ua_sym_decrypt(const ep_ua_policy *p, const ep_ua_sym_keys *keys, const uint8_t *in,
                         uint8_t *out, size_t len);

/* ep_ua_nonce_generate fills out with policy->nonce_len random bytes from
 * the OpenSSL CSPRNG and sets *len. Errors: EP_EUNSUPPORTED (None),
 * EP_ETOOBIG, EP_ECRYPTO. */
ep_err ep_ua_nonce_generate(const ep_ua_policy *p, uint8_t *out, size_t cap, size_t *len);

/* -------------------------------------------------- user token secrets -- */

/* ep_ua_secret_encrypted_size returns the length of an encrypted legacy
 * secret for a secret of secret_len bytes and a server nonce of nonce_len
 * bytes under the server's key, 0 for None. */
size_t ep_ua_secret_encrypted_size(const ep_ua_policy *p, const ep_ua_key *pub, size_t secret_len,
                                   size_t nonce_len);

/* ep_ua_secret_encrypt builds the legacy encrypted token secret of OPC
 * 10000-4 (UserNameIdentityToken.password, IssuedIdentityToken.tokenData):
 *   length (uint32, little endian, = secret_len + nonce_len)
 *   || secret || server nonce
 * encrypted with the server certificate's public key using the policy's
 * asymmetric encryption algorithm (policy->asym_enc_uri is the token's
 * encryptionAlgorithm). The server nonce is the last one received
 * (CreateSession/ActivateSession); at least 32 bytes are required. */
ep_err ep_ua_secret_encrypt(const ep_ua_policy *p, const ep_ua_key *pub, const uint8_t *secret,
                            size_t secret_len, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                            size_t out_cap, size_t *out_len);

/* ep_ua_secret_decrypt reverses ep_ua_secret_encrypt on the server side: it
 * decrypts with the server's private key, checks the length field and that
 * the trailing bytes equal the server nonce that was issued (constant time),
 * and copies the secret to out (at most len bytes are needed). Returns
 * EP_ESECURITY when decryption fails or the nonce does not match,
 * EP_EMALFORMED when the length field is inconsistent. The decrypted
 * plaintext is wiped before returning. */
ep_err ep_ua_secret_decrypt(const ep_ua_policy *p, const ep_ua_key *priv, const uint8_t *in,
                            size_t len, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                            size_t out_cap, size_t *out_len);

#endif
