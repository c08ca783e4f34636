/*
 * pki.h - the OPC UA certificate store (PKI folder) and peer certificate
 * validation.
 *
 * Layout (the one node-opcua uses; open62541 and the OPC Foundation stacks
 * use the same certs/crl split, see OPC 10000-12 F.1):
 *
 *   <dir>/own/certs/cert.der             our application instance certificate
 *   <dir>/own/private/private_key.pem    its private key (PKCS#8, mode 0600)
 *   <dir>/trusted/certs/                 trusted peer and CA certificates
 *   <dir>/trusted/crl/                   CRLs of trusted CAs
 *   <dir>/issuers/certs/                 CA certificates used to build chains
 *                                        but not trusted by themselves
 *   <dir>/issuers/crl/                   CRLs of those CAs
 *   <dir>/rejected/                      certificates that failed the trust
 *                                        check, named "<CN>[<thumbprint>].der"
 *
 * Certificate files may be DER or PEM (.der .pem .crt .cer), CRL files DER
 * or PEM (.crl .der .pem). Other files are ignored, unreadable ones are
 * skipped and reported by ep_ua_pki_warning.
 *
 * A peer is trusted when its certificate is in trusted/certs, or when it
 * chains (through certificates sent by the peer or found in issuers/certs)
 * up to a CA in trusted/certs. Putting a certificate in trusted/ is the
 * operator's decision: to trust an unknown peer, move its file from
 * rejected/ to trusted/certs/ (ep_ua_pki_trust does exactly that, and
 * `edgeplane opcua trust <name>` is built on it).
 *
 * The trust lists are re-read when the modification time of one of the four
 * trusted/issuers directories changed since the last scan (checked at each
 * validation), so files dropped in by hand take effect on the next
 * connection without a restart.
 *
 * Threads: an ep_ua_pki belongs to one thread (the OPC UA thread); distinct
 * instances are independent. The own certificate and key it hands out are
 * immutable and may be shared with other threads while the pki lives.
 */
#ifndef EP_CODEC_OPCUA_CRYPTO_PKI_H
#define EP_CODEC_OPCUA_CRYPTO_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/opcua_crypto/cert.h"
#include "codec/opcua_crypto/crypto.h"
#include "codec/opcua_crypto/policy.h"
#include "core/err.h"

typedef struct ep_ua_pki ep_ua_pki;

/* Options for ep_ua_pki_open; zero means default. */
typedef struct ep_ua_pki_opts {
    /* Used only to generate own/ when it is empty. */
    const char *app_name;   /* CN of the generated certificate */
    const char *app_uri;    /* its subjectAltName URI */
    const char *hostname;   /* its DNS name; NULL: gethostname() */
    uint32_t validity_days; /* 0: 365 */
    unsigned key_bits;      /* 0: 2048 */

    bool no_own;           /* do not load or create own/ (e.g. a CLI that only
                              manages trust lists) */
    bool no_generate;      /* fail with EP_ENOTFOUND instead of generating own/ */
    bool auto_accept;      /* treat every peer as trusted (tests, simulators):
                              the trust check passes, every other check still
                              applies; nothing is written to rejected/ */
    bool require_crl;      /* a missing CRL for a CA in the chain fails with
                              REVOCATION_UNKNOWN (default: revocation is checked
                              where a CRL is present) */
    unsigned max_rejected; /* stop saving to rejected/ above this many
                              files; 0: 256 */
} ep_ua_pki_opts;

/* ep_ua_pki_open opens (creating missing directories, mode 0700 for
 * own/private) the PKI folder dir, loads own/ (generating a self-signed
 * certificate and key there on first start unless no_own/no_generate) and
 * scans the trust lists. *out is freed with ep_ua_pki_free.
 * Errors, with a sentence in detail (may be NULL):
 *   EP_EINVAL    NULL argument; generation needed but app_name/app_uri
 *                missing
 *   EP_ENOTFOUND own/ empty and no_generate set
 *   EP_ESECURITY own key does not match own certificate
 *   EP_EMALFORMED own certificate or key unreadable
 *   EP_EPERM, EP_EIO, EP_ENOMEM, EP_ECRYPTO */
ep_err ep_ua_pki_open(const char *dir, const ep_ua_pki_opts *opts, ep_ua_pki **out, char *detail,
                      size_t detail_cap);

/* ep_ua_pki_free releases the store; NULL is a no-op. */
void ep_ua_pki_free(ep_ua_pki *pki);

/* ep_ua_pki_own_cert / ep_ua_pki_own_key return the application instance
 * certificate and private key (borrowed, valid until ep_ua_pki_free; NULL
 * with no_own). */
const ep_ua_cert *ep_ua_pki_own_cert(const ep_ua_pki *pki);
const ep_ua_key *ep_ua_pki_own_key(const ep_ua_pki *pki);

/* ep_ua_pki_dir returns the root directory (borrowed). */
const char *ep_ua_pki_dir(const ep_ua_pki *pki);

/* ep_ua_pki_warning returns a sentence about the last scan (files that
 * could not be read), or NULL when the last scan was clean. Borrowed until
 * the next call on pki. The caller decides whether to log it. */
const char *ep_ua_pki_warning(const ep_ua_pki *pki);

/* ep_ua_pki_reload re-reads the trust lists now. Errors: EP_ENOMEM; a
 * missing directory counts as empty. */
ep_err ep_ua_pki_reload(ep_ua_pki *pki);

/* Outcome of a validation, in OPC 10000-4 Table 106 order: when several
 * checks fail, the first failing step in this order is reported. */
typedef enum ep_ua_cert_result {
    EP_UA_CERT_TRUSTED = 0,
    EP_UA_CERT_INVALID,           /* not a parseable X.509 RSA certificate */
    EP_UA_CERT_CHAIN_INCOMPLETE,  /* an issuer is in neither the chain sent,
                                     issuers/certs nor trusted/certs */
    EP_UA_CERT_SIGNATURE_INVALID, /* a signature in the chain is wrong */
    EP_UA_CERT_KEY_TOO_SHORT,     /* below policy->min_key_bits */
    EP_UA_CERT_KEY_TOO_LONG,      /* above policy->max_key_bits */
    EP_UA_CERT_POLICY_MISMATCH,   /* signed with a digest weaker than the
                                     policy allows (e.g. SHA-1) */
    EP_UA_CERT_UNTRUSTED,         /* valid, but neither it nor a CA above it
                                     is in trusted/certs */
    EP_UA_CERT_EXPIRED,           /* peer or issuer certificate expired */
    EP_UA_CERT_NOT_YET_VALID,     /* peer or issuer not yet valid */
    EP_UA_CERT_HOSTNAME_MISMATCH, /* hostname not in subjectAltName */
    EP_UA_CERT_URI_MISMATCH,      /* SAN URI != ApplicationDescription URI */
    EP_UA_CERT_BAD_USAGE,         /* keyUsage/extendedKeyUsage/basic
                                     constraints forbid this use */
    EP_UA_CERT_REVOKED,           /* listed in its issuer's CRL */
    EP_UA_CERT_REVOCATION_UNKNOWN /* require_crl and a CRL is missing */
} ep_ua_cert_result;

typedef enum ep_ua_peer_role {
    EP_UA_PEER_ANY = 0, /* do not check extendedKeyUsage */
    EP_UA_PEER_SERVER,  /* we are a client: peer needs serverAuth */
    EP_UA_PEER_CLIENT   /* we are a server: peer needs clientAuth */
} ep_ua_peer_role;

/* What to check a peer certificate against; zero means skip. */
typedef struct ep_ua_pki_check {
    const ep_ua_policy *policy; /* key length and signature digest limits */
    const char *app_uri;        /* ApplicationDescription.applicationUri (NUL-
                                   terminated copy of the OPC UA string) */
    const char *hostname;       /* host of the endpoint URL we connected to */
    ep_ua_peer_role role;
    int64_t now; /* Unix seconds to validate at; 0: current time */
} ep_ua_pki_check;

/* The verdict, in caller storage (no allocation). */
typedef struct ep_ua_cert_verdict {
    ep_ua_cert_result result;
    uint32_t ua_status;  /* OPC UA StatusCode to send/report, 0 = Good
                            (e.g. 0x801A0000 BadCertificateUntrusted,
                            0x80150000 BadCertificateIssuerTimeInvalid,
                            0x80130000 BadSecurityChecksFailed when the
                            validation itself failed) */
    char subject[256];   /* CN of the peer certificate (UTF-8) */
    char thumbprint[41]; /* SHA-1 thumbprint, lowercase hex */
    char rejected[128];  /* file name saved in rejected/, "" if none */
    char message[1024];  /* what is wrong and how to fix it, for a person */
} ep_ua_cert_verdict;

/* ep_ua_pki_validate checks a peer certificate. der holds the DER leaf
 * certificate optionally followed by its CA chain (concatenated, as OPC UA
 * sends SenderCertificate/ServerCertificate); it is borrowed. The trust
 * lists are re-scanned first if their directories changed.
 * An untrusted (or chain-incomplete) certificate is saved to
 * rejected/<CN>[<thumbprint>].der unless auto_accept is set or rejected/
 * holds max_rejected files; the message says how to trust it.
 * Returns EP_EOK when trusted (out->result == EP_UA_CERT_TRUSTED),
 * EP_ESECURITY when not (out says why), EP_EINVAL for NULL arguments,
 * EP_ENOMEM. Unless EP_EINVAL, out is filled, and it reads "trusted" only
 * when EP_EOK is returned. */
ep_err ep_ua_pki_validate(ep_ua_pki *pki, const uint8_t *der, size_t len,
                          const ep_ua_pki_check *check, ep_ua_cert_verdict *out);

/* ep_ua_pki_trust moves a certificate from rejected/ to trusted/certs/.
 * name is a file name in rejected/ (with or without ".der"), or a
 * thumbprint (any case) or a unique prefix of a file name. The trust lists
 * are reloaded. detail (may be NULL) receives what was done or why not.
 * Errors: EP_EINVAL (name empty or containing '/', or matching several
 * files), EP_ENOTFOUND, EP_EMALFORMED (file is not a certificate; left in
 * place), EP_EPERM, EP_EIO. */
ep_err ep_ua_pki_trust(ep_ua_pki *pki, const char *name, char *detail, size_t detail_cap);

/* ep_ua_cert_result_name returns a static name, e.g. "untrusted". */
const char *ep_ua_cert_result_name(ep_ua_cert_result r);

#endif
