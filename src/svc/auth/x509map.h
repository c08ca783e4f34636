/*
 * x509map.h - authorization attributes from client certificates, as the
 * reference's x509Settings.authorizationAttributes:
 *
 *   <name>: {subject: "CN = Contoso Intermediate CA, O = Contoso",
 *            attributes: {building: b1}}
 *
 * A client's verified chain is walked from the leaf up to the root; the
 * first certificate whose subject equals an entry's subject gives that
 * entry's attributes, and the walk stops (a device certificate's own entry
 * beats its issuing CA's). Entries are tried in configuration order for
 * each certificate.
 *
 * Subjects compare as lists of TYPE=value pairs: spaces around '=' and
 * after ',' are ignored, types are case-insensitive short names (CN, O,
 * OU, C, L, ST, ...), values are compared exactly (UTF-8), "\," is a comma
 * inside a value. The certificate's name matches in either order, RFC 4514
 * (most specific first, as the reference writes it: "CN = x, O = y") or
 * the order in the certificate ("O = y, CN = x").
 *
 * Threads: a map is immutable once built; any thread may match.
 */
#ifndef EP_SVC_AUTH_X509MAP_H
#define EP_SVC_AUTH_X509MAP_H

#include <stddef.h>

#include "core/err.h"
#include "svc/auth/attrs.h"

struct stack_st_X509; /* OpenSSL STACK_OF(X509) */

typedef struct ep_x509_map_entry {
    const char *name;         /* for logs */
    const char *subject;      /* "CN = ..., O = ..." */
    const char *const *attrs; /* "name=value" strings */
    size_t n_attrs;
} ep_x509_map_entry;

typedef struct ep_x509_map ep_x509_map;

/* ep_x509_map_new builds a map from n entries (copied). Startup; any
 * thread. Returns EP_EOK, EP_EINVAL (a subject that is not TYPE=value
 * pairs, or a bad attribute; why says which), EP_ENOMEM. */
ep_err ep_x509_map_new(const ep_x509_map_entry *e, size_t n, ep_x509_map **out, char *why,
                       size_t why_n);

void ep_x509_map_free(ep_x509_map *m);

/* ep_x509_map_match finds the attributes of a verified chain (leaf first;
 * borrowed). *out receives a copy (free with ep_auth_attrs_free), or NULL
 * when nothing matched; *matched (may be NULL) the entry's name.
 * Returns EP_EOK or EP_ENOMEM. */
ep_err ep_x509_map_match(const ep_x509_map *m, struct stack_st_X509 *chain, ep_auth_attrs **out,
                         const char **matched);

/* ep_x509_subject_normalize writes the canonical form of a configured
 * subject ("TYPE=value,TYPE=value", types upper-case) into out.
 * Returns EP_EOK, EP_EINVAL, EP_ETOOBIG. */
ep_err ep_x509_subject_normalize(const char *subject, char *out, size_t n);

/* ep_x509_chain_pem encodes a chain (leaf first) as concatenated PEM
 * (malloc'd, NUL-terminated) for a custom authentication server.
 * Returns EP_EOK, EP_ENOMEM, EP_ECRYPTO. */
ep_err ep_x509_chain_pem(struct stack_st_X509 *chain, char **out);

#endif
