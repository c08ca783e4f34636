/*
 * attrs.h - a principal's authorization attributes: an immutable list of
 * name/value pairs in one allocation, produced at CONNECT by the X.509
 * subject mapping (x509map.h) or a custom authentication server
 * (callout.h), kept by the connection and handed to authorization
 * ({principal.attributes.NAME}, authz.h).
 */
#ifndef EP_SVC_AUTH_ATTRS_H
#define EP_SVC_AUTH_ATTRS_H

#include <stddef.h>

#include "core/err.h"
#include "svc/auth/authz.h"

typedef struct ep_auth_attrs {
    size_t n;
    ep_authz_attr *items; /* points into the same allocation */
} ep_auth_attrs;

/* Limits on what a peer (a custom authentication server) may hand us. */
#define EP_AUTH_ATTRS_MAX 64
#define EP_AUTH_ATTR_MAX_LEN 1024

/* ep_auth_attrs_new copies n pairs (borrowed; NUL-terminated strings) into
 * one allocation. Later duplicates of a name are dropped (the first one
 * wins). Any thread. Returns EP_EOK, EP_EINVAL (NULL name or value),
 * EP_ENOMEM. *out is set only on success. */
ep_err ep_auth_attrs_new(const ep_authz_attr *src, size_t n, ep_auth_attrs **out);

/* ep_auth_attrs_parse_kv builds a set from "name=value" strings (the
 * configuration form). Returns as ep_auth_attrs_new, EP_EINVAL also for a
 * string without '=' or with an empty name. */
ep_err ep_auth_attrs_parse_kv(const char *const *kv, size_t n, ep_auth_attrs **out);

/* ep_auth_attrs_dup copies a set (NULL gives NULL and EP_EOK). */
ep_err ep_auth_attrs_dup(const ep_auth_attrs *a, ep_auth_attrs **out);

/* ep_auth_attrs_free releases a set. NULL accepted. */
void ep_auth_attrs_free(ep_auth_attrs *a);

#endif
