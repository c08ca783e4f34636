/*
 * pki_int.h - the ep_ua_pki object, shared by pki.c (folder, trust lists,
 * rejected/) and validate.c (certificate validation).
 */
#ifndef EP_CODEC_OPCUA_CRYPTO_PKI_INT_H
#define EP_CODEC_OPCUA_CRYPTO_PKI_INT_H

#include <time.h>

#include <openssl/x509.h>

#include "codec/opcua_crypto/crypto_int.h"
#include "codec/opcua_crypto/pki.h"

enum {
    EP_UA__DIR_TRUSTED_CERTS,
    EP_UA__DIR_TRUSTED_CRL,
    EP_UA__DIR_ISSUERS_CERTS,
    EP_UA__DIR_ISSUERS_CRL,
    EP_UA__DIR_WATCHED /* the directories whose changes trigger a re-scan */
};

struct ep_ua_pki {
    char *dir;
    bool auto_accept;
    bool require_crl;
    unsigned max_rejected;

    ep_ua_cert *own_cert;
    ep_ua_key *own_key;

    X509_STORE *store;        /* trusted certs (anchors) + all CRLs */
    STACK_OF(X509) * issuers; /* issuers/certs: chain building only */

    struct {
        struct timespec mtime;
        bool exists;
    } seen[EP_UA__DIR_WATCHED];
    struct timespec scanned_at;
    char warning[512];
};

/* ep_ua__pki_path writes <dir>/<sub>[/<name>] into buf; 0 if it does not fit. */
int ep_ua__pki_path(const ep_ua_pki *pki, const char *sub, const char *name, char *buf, size_t cap);

/* ep_ua__pki_refresh re-scans the trust lists if a watched directory
 * changed since the last scan. */
ep_err ep_ua__pki_refresh(ep_ua_pki *pki);

/* ep_ua__pki_reject saves cert to rejected/ (if not already there and
 * below the limit) and writes the file name into name[cap] ("" when not
 * saved). Returns EP_EOK when saved or already present, EP_EFULL at the
 * limit, or the write error. */
ep_err ep_ua__pki_reject(ep_ua_pki *pki, const ep_ua_cert *cert, char *name, size_t cap);

#endif
