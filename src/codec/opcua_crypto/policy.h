/*
 * policy.h - OPC UA security policy descriptors (OPC 10000-7 profiles).
 *
 * A security policy is a fixed bundle of algorithms and lengths. They are kept
 * as one constant table so the secure channel never branches on policy names:
 * it looks the descriptor up by URI once (OpenSecureChannel request or
 * endpoint description) and then reads algorithms and sizes from it. The
 * operations themselves (crypto.h) take the descriptor as first argument.
 *
 *   policy                 asym sign          asym encrypt     sym enc      keys s/e/iv
 *   None                   -                  -                -            -
 *   Basic256Sha256         RSA-PKCS1-v1_5     RSA-OAEP-SHA1    AES-256-CBC  32/32/16
 *                          SHA-256
 *   Aes128_Sha256_RsaOaep  RSA-PKCS1-v1_5     RSA-OAEP-SHA1    AES-128-CBC  32/16/16
 *                          SHA-256
 *   Aes256_Sha256_RsaPss   RSA-PSS-SHA256     RSA-OAEP-SHA256  AES-256-CBC  32/32/16
 *
 * All three secure policies use HMAC-SHA256 (32 byte signature) for symmetric
 * signing, P_SHA256 for key derivation, 32 byte nonces, RSA keys of
 * 2048..4096 bits and certificates signed with SHA-256 (or stronger).
 *
 * The descriptors are static and immutable: any thread may use them.
 */
#ifndef EP_CODEC_OPCUA_CRYPTO_POLICY_H
#define EP_CODEC_OPCUA_CRYPTO_POLICY_H

#include <stddef.h>

typedef enum ep_ua_policy_id {
    EP_UA_POLICY_NONE = 0,
    EP_UA_POLICY_BASIC256SHA256,
    EP_UA_POLICY_AES128_SHA256_RSAOAEP,
    EP_UA_POLICY_AES256_SHA256_RSAPSS,
    EP_UA_POLICY_COUNT
} ep_ua_policy_id;

/* Asymmetric signature algorithms (OpenSecureChannel, CreateSession
 * signatures). */
typedef enum ep_ua_asym_sig_alg {
    EP_UA_ASYM_SIG_NONE = 0,
    EP_UA_ASYM_SIG_RSA_PKCS1_SHA256, /* RSASSA-PKCS1-v1_5 with SHA-256 */
    EP_UA_ASYM_SIG_RSA_PSS_SHA256    /* RSASSA-PSS, SHA-256, MGF1-SHA256, salt 32 */
} ep_ua_asym_sig_alg;

/* Asymmetric encryption algorithms (OpenSecureChannel, user token secrets). */
typedef enum ep_ua_asym_enc_alg {
    EP_UA_ASYM_ENC_NONE = 0,
    EP_UA_ASYM_ENC_RSA_OAEP_SHA1,  /* RSAES-OAEP, SHA-1, MGF1-SHA1: 42 byte overhead */
    EP_UA_ASYM_ENC_RSA_OAEP_SHA256 /* RSAES-OAEP, SHA-256, MGF1-SHA256: 66 byte overhead */
} ep_ua_asym_enc_alg;

/* Symmetric encryption algorithms (MSG/CLO chunks). No padding: OPC UA pads
 * the plaintext itself before encrypting. */
typedef enum ep_ua_sym_enc_alg {
    EP_UA_SYM_ENC_NONE = 0,
    EP_UA_SYM_ENC_AES128_CBC,
    EP_UA_SYM_ENC_AES256_CBC
} ep_ua_sym_enc_alg;

typedef struct ep_ua_policy {
    ep_ua_policy_id id;
    const char *uri;  /* "http://opcfoundation.org/UA/SecurityPolicy#..." */
    const char *name; /* short name, e.g. "Basic256Sha256" */

    ep_ua_asym_sig_alg asym_sig;
    const char *asym_sig_uri; /* SignatureData.algorithm; NULL for None */
    ep_ua_asym_enc_alg asym_enc;
    const char *asym_enc_uri; /* UserIdentityToken.encryptionAlgorithm */
    size_t asym_enc_overhead; /* OAEP bytes per block: plain = key bytes - this */

    ep_ua_sym_enc_alg sym_enc;
    const char *sym_enc_uri;
    const char *sym_sig_uri;        /* HMAC-SHA256 */
    const char *key_derivation_uri; /* P_SHA256 */
    const char *cert_sig_uri;       /* required certificate signature algorithm */

    size_t sym_sig_key_len; /* derived signing key, bytes */
    size_t sym_enc_key_len; /* derived encrypting key, bytes */
    size_t sym_block_len;   /* cipher block = derived IV length, bytes */
    size_t sym_sig_len;     /* symmetric signature (HMAC) length, bytes */
    size_t nonce_len;       /* secure channel nonce length, bytes */

    unsigned min_key_bits;         /* minimum asymmetric (RSA modulus) length */
    unsigned max_key_bits;         /* maximum asymmetric (RSA modulus) length */
    unsigned cert_min_digest_bits; /* weakest digest allowed in the peer
                                      certificate's signature (256 = SHA-256) */
} ep_ua_policy;

/* ep_ua_policy_find returns the descriptor whose URI equals the len bytes at
 * uri (OPC UA strings are not NUL-terminated; pass strlen() for C strings),
 * or NULL when the policy is unknown or unsupported (Basic128Rsa15 and
 * Basic256 are deprecated and deliberately absent). Any thread. */
const ep_ua_policy *ep_ua_policy_find(const char *uri, size_t len);

/* ep_ua_policy_get returns the descriptor for id, or NULL when id is out of
 * range. Any thread. */
const ep_ua_policy *ep_ua_policy_get(ep_ua_policy_id id);

/* ep_ua_policy_is_none reports whether p is the None policy (no signing, no
 * encryption). NULL counts as None. */
static inline int ep_ua_policy_is_none(const ep_ua_policy *p)
{
    return p == NULL || p->id == EP_UA_POLICY_NONE;
}

#endif
