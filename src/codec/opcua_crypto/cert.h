/*
 * cert.h - X.509 application instance certificates for OPC UA.
 *
 * An ep_ua_cert is an immutable, parsed certificate together with its DER
 * encoding (what OPC UA puts on the wire), its SHA-1 thumbprint (what OPC UA
 * uses to name certificates) and the application URI from subjectAltName
 * (what must match ApplicationDescription.applicationUri).
 *
 * ep_ua_cert_create issues the certificates OPC UA applications use
 * (OPC 10000-6 6.2.2; the same profile open62541 and node-opcua generate):
 *   subject             CN=<app name>, O=<organization, default edgeplane>
 *   subjectAltName      URI:<application URI>, DNS:<hostname> (or IP:)
 *   basicConstraints    critical, CA:FALSE
 *   keyUsage            critical, digitalSignature, nonRepudiation,
 *                       keyEncipherment, dataEncipherment (+ keyCertSign
 *                       when self-signed, so that the certificate can be
 *                       its own trust anchor)
 *   extendedKeyUsage    serverAuth, clientAuth
 *   subject/authority key identifiers, signature sha256WithRSAEncryption,
 *   random 127-bit serial.
 * With opts.ca set it issues a CA certificate instead (CA:TRUE, keyCertSign,
 * cRLSign), used to build CA-signed PKIs and in tests.
 *
 * Threads: a certificate is immutable and may be shared; functions are
 * reentrant. Library code does not log: failures carry an optional detail
 * string (char *detail, size_t detail_cap; detail may be NULL).
 */
#ifndef EP_CODEC_OPCUA_CRYPTO_CERT_H
#define EP_CODEC_OPCUA_CRYPTO_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/opcua_crypto/crypto.h"
#include "core/err.h"

typedef struct ep_ua_cert ep_ua_cert;

typedef enum ep_ua_cert_format { EP_UA_CERT_DER = 0, EP_UA_CERT_PEM } ep_ua_cert_format;

/* Options for ep_ua_cert_create; zero means default. */
typedef struct ep_ua_cert_opts {
    const char *app_name;     /* subject CN; required */
    const char *app_uri;      /* SAN URI; required unless ca */
    const char *hostname;     /* SAN DNS name, or IP address literal; NULL: none */
    const char *organization; /* subject O; NULL: "edgeplane" */
    int64_t not_before;       /* Unix seconds; 0: now minus one hour, so that
                                 peers whose clock lags accept it at once */
    uint32_t validity_days;   /* 0: 365 */
    bool ca;                  /* issue a CA certificate */
} ep_ua_cert_opts;

/* ep_ua_cert_create issues a certificate for key (borrowed; its public half
 * goes into the certificate). With issuer and issuer_key NULL the
 * certificate is self-signed with key, which must then be private;
 * otherwise it is signed by issuer_key and names issuer (both borrowed).
 * *out is freed with ep_ua_cert_free.
 * Errors: EP_EINVAL (missing name/URI, public-only signing key, issuer
 * without key or key not matching issuer), EP_ECRYPTO, EP_ENOMEM. */
ep_err ep_ua_cert_create(const ep_ua_cert_opts *opts, const ep_ua_key *key,
                         const ep_ua_cert *issuer, const ep_ua_key *issuer_key, ep_ua_cert **out,
                         char *detail, size_t detail_cap);

/* ep_ua_cert_parse reads one certificate from DER or PEM bytes (borrowed).
 * For DER, *used (may be NULL) receives the length of the first certificate
 * so that OPC UA chains (concatenated DER certificates) can be walked; for
 * PEM it is len. Errors: EP_EINVAL, EP_EMALFORMED (not a certificate, not
 * RSA, or a subjectAltName URI with a NUL byte), EP_ENOMEM. */
ep_err ep_ua_cert_parse(const uint8_t *data, size_t len, ep_ua_cert **out, size_t *used);

/* ep_ua_cert_load reads a certificate file, DER or PEM (detected).
 * Errors as ep_ua_cert_parse plus EP_ENOTFOUND, EP_EPERM, EP_EIO, EP_ETOOBIG. */
ep_err ep_ua_cert_load(const char *path, ep_ua_cert **out);

/* ep_ua_cert_save writes the certificate in format, atomically, mode 0644.
 * Errors: EP_EINVAL, EP_EIO, EP_EPERM, EP_ENOTFOUND, EP_ENOMEM. */
ep_err ep_ua_cert_save(const ep_ua_cert *cert, const char *path, ep_ua_cert_format format);

/* ep_ua_cert_free releases a certificate; NULL is a no-op. */
void ep_ua_cert_free(ep_ua_cert *cert);

/* ep_ua_cert_der returns the DER encoding, borrowed for the lifetime of cert,
 * and its length in *len. */
const uint8_t *ep_ua_cert_der(const ep_ua_cert *cert, size_t *len);

/* ep_ua_cert_thumbprint returns the 20 byte SHA-1 thumbprint of the DER
 * encoding (borrowed); ep_ua_cert_thumbprint_hex the same as 40 lowercase
 * hex digits. */
const uint8_t *ep_ua_cert_thumbprint(const ep_ua_cert *cert);
const char *ep_ua_cert_thumbprint_hex(const ep_ua_cert *cert);

/* ep_ua_cert_app_uri returns the first URI of subjectAltName (borrowed), or
 * NULL when the certificate has none. */
const char *ep_ua_cert_app_uri(const ep_ua_cert *cert);

/* ep_ua_cert_common_name returns the subject CN (borrowed), "" if absent. */
const char *ep_ua_cert_common_name(const ep_ua_cert *cert);

/* ep_ua_cert_key returns the public key (borrowed for the lifetime of cert;
 * never pass it to ep_ua_key_free). */
const ep_ua_key *ep_ua_cert_key(const ep_ua_cert *cert);

/* ep_ua_cert_key_bits returns the public key length in bits. */
unsigned ep_ua_cert_key_bits(const ep_ua_cert *cert);

/* ep_ua_cert_validity gives notBefore/notAfter as Unix seconds. */
ep_err ep_ua_cert_validity(const ep_ua_cert *cert, int64_t *not_before, int64_t *not_after);

/* ep_ua_cert_matches_key reports whether key is the private key for cert. */
bool ep_ua_cert_matches_key(const ep_ua_cert *cert, const ep_ua_key *key);

/* ep_ua_cert_equal reports whether a and b have the same DER encoding. */
bool ep_ua_cert_equal(const ep_ua_cert *a, const ep_ua_cert *b);

#endif
