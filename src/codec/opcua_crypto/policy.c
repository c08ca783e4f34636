/*
 * policy.c - the security policy table. Values follow OPC 10000-7 (security
 * policy profiles) and OPC 10000-6 section 6.7.5 (derived key lengths); the
 * algorithm URIs are the ones peers put on the wire (SignatureData.algorithm,
 * UserIdentityToken.encryptionAlgorithm).
 */
#include "codec/opcua_crypto/policy.h"

#include <string.h>

#define URI_PREFIX "http://opcfoundation.org/UA/SecurityPolicy#"
#define URI_RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define URI_RSA_PSS_SHA256 "http://opcfoundation.org/UA/security/rsa-pss-sha2-256"
#define URI_RSA_OAEP "http://www.w3.org/2001/04/xmlenc#rsa-oaep"
#define URI_RSA_OAEP_SHA256 "http://opcfoundation.org/UA/security/rsa-oaep-sha2-256"
#define URI_HMAC_SHA256 "http://www.w3.org/2000/09/xmldsig#hmac-sha256"
#define URI_AES128_CBC "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
#define URI_AES256_CBC "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
#define URI_P_SHA256 "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512/dk/p_sha256"

#define OAEP_SHA1_OVERHEAD (2 * 20 + 2)
#define OAEP_SHA256_OVERHEAD (2 * 32 + 2)

static const ep_ua_policy policies[EP_UA_POLICY_COUNT] = {
    [EP_UA_POLICY_NONE] =
        {
            .id = EP_UA_POLICY_NONE,
            .uri = URI_PREFIX "None",
            .name = "None",
        },
    [EP_UA_POLICY_BASIC256SHA256] =
        {
            .id = EP_UA_POLICY_BASIC256SHA256,
            .uri = URI_PREFIX "Basic256Sha256",
            .name = "Basic256Sha256",
            .asym_sig = EP_UA_ASYM_SIG_RSA_PKCS1_SHA256,
            .asym_sig_uri = URI_RSA_SHA256,
            .asym_enc = EP_UA_ASYM_ENC_RSA_OAEP_SHA1,
            .asym_enc_uri = URI_RSA_OAEP,
            .asym_enc_overhead = OAEP_SHA1_OVERHEAD,
            .sym_enc = EP_UA_SYM_ENC_AES256_CBC,
            .sym_enc_uri = URI_AES256_CBC,
            .sym_sig_uri = URI_HMAC_SHA256,
            .key_derivation_uri = URI_P_SHA256,
            .cert_sig_uri = URI_RSA_SHA256,
            .sym_sig_key_len = 32,
            .sym_enc_key_len = 32,
            .sym_block_len = 16,
            .sym_sig_len = 32,
            .nonce_len = 32,
            .min_key_bits = 2048,
            .max_key_bits = 4096,
            .cert_min_digest_bits = 256,
        },
    [EP_UA_POLICY_AES128_SHA256_RSAOAEP] =
        {
            .id = EP_UA_POLICY_AES128_SHA256_RSAOAEP,
            .uri = URI_PREFIX "Aes128_Sha256_RsaOaep",
            .name = "Aes128_Sha256_RsaOaep",
            .asym_sig = EP_UA_ASYM_SIG_RSA_PKCS1_SHA256,
            .asym_sig_uri = URI_RSA_SHA256,
            .asym_enc = EP_UA_ASYM_ENC_RSA_OAEP_SHA1,
            .asym_enc_uri = URI_RSA_OAEP,
            .asym_enc_overhead = OAEP_SHA1_OVERHEAD,
            .sym_enc = EP_UA_SYM_ENC_AES128_CBC,
            .sym_enc_uri = URI_AES128_CBC,
            .sym_sig_uri = URI_HMAC_SHA256,
            .key_derivation_uri = URI_P_SHA256,
            .cert_sig_uri = URI_RSA_SHA256,
            .sym_sig_key_len = 32,
            .sym_enc_key_len = 16,
            .sym_block_len = 16,
            .sym_sig_len = 32,
            .nonce_len = 32,
            .min_key_bits = 2048,
            .max_key_bits = 4096,
            .cert_min_digest_bits = 256,
        },
    [EP_UA_POLICY_AES256_SHA256_RSAPSS] =
        {
            .id = EP_UA_POLICY_AES256_SHA256_RSAPSS,
            .uri = URI_PREFIX "Aes256_Sha256_RsaPss",
            .name = "Aes256_Sha256_RsaPss",
            .asym_sig = EP_UA_ASYM_SIG_RSA_PSS_SHA256,
            .asym_sig_uri = URI_RSA_PSS_SHA256,
            .asym_enc = EP_UA_ASYM_ENC_RSA_OAEP_SHA256,
            .asym_enc_uri = URI_RSA_OAEP_SHA256,
            .asym_enc_overhead = OAEP_SHA256_OVERHEAD,
            .sym_enc = EP_UA_SYM_ENC_AES256_CBC,
            .sym_enc_uri = URI_AES256_CBC,
            .sym_sig_uri = URI_HMAC_SHA256,
            .key_derivation_uri = URI_P_SHA256,
            .cert_sig_uri = URI_RSA_SHA256,
            .sym_sig_key_len = 32,
            .sym_enc_key_len = 32,
            .sym_block_len = 16,
            .sym_sig_len = 32,
            .nonce_len = 32,
            .min_key_bits = 2048,
            .max_key_bits = 4096,
            .cert_min_digest_bits = 256,
        },
};

const ep_ua_policy *ep_ua_policy_find(const char *uri, size_t len)
{
    if (uri == NULL)
        return NULL;
    for (size_t i = 0; i < EP_UA_POLICY_COUNT; i++) {
        const char *u = policies[i].uri;
        if (strlen(u) == len && memcmp(u, uri, len) == 0)
            return &policies[i];
    }
    return NULL;
}

const ep_ua_policy *ep_ua_policy_get(ep_ua_policy_id id)
{
    if ((unsigned)id >= EP_UA_POLICY_COUNT)
        return NULL;
    return &policies[id];
}
