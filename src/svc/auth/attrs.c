/*
 * attrs.c - see attrs.h. Layout of the single allocation: the header, the
 * pair array, then the NUL-terminated strings the pairs point at.
 */
#include "svc/auth/attrs.h"

#include <stdlib.h>
#include <string.h>

static bool seen(const ep_authz_attr *src, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (strcmp(src[k].name, src[i].name) == 0)
            return true;
    return false;
}

ep_err ep_auth_attrs_new(const ep_authz_attr *src, size_t n, ep_auth_attrs **out)
{
    size_t bytes = sizeof(ep_auth_attrs) + n * sizeof(ep_authz_attr);
    for (size_t i = 0; i < n; i++) {
        if (src[i].name == NULL || src[i].value == NULL)
            return EP_EINVAL;
        bytes += strlen(src[i].name) + strlen(src[i].value) + 2;
    }
    ep_auth_attrs *a = malloc(bytes);
    if (a == NULL)
        return EP_ENOMEM;
    a->items = (ep_authz_attr *)(a + 1);
    a->n = 0;
    char *p = (char *)(a->items + n);
    for (size_t i = 0; i < n; i++) {
        if (seen(src, i))
            continue;
        size_t nl = strlen(src[i].name) + 1, vl = strlen(src[i].value) + 1;
        a->items[a->n].name = memcpy(p, src[i].name, nl);
        a->items[a->n].value = memcpy(p + nl, src[i].value, vl);
        a->n++;
        p += nl + vl;
    }
    *out = a;
    return EP_EOK;
}

ep_err ep_auth_attrs_parse_kv(const char *const *kv, size_t n, ep_auth_attrs **out)
{
    if (n > EP_AUTH_ATTRS_MAX)
        return EP_EINVAL;
    ep_authz_attr tmp[EP_AUTH_ATTRS_MAX] = {{0}}; /* gcc -O2 cannot see every slot < n is set */
    char *copies[EP_AUTH_ATTRS_MAX];
    size_t made = 0;
    ep_err err = EP_EOK;
    for (; made < n; made++) {
        const char *eq = kv[made] ? strchr(kv[made], '=') : NULL;
        if (eq == NULL || eq == kv[made]) {
            err = EP_EINVAL;
            break;
        }
        if ((copies[made] = strdup(kv[made])) == NULL) {
            err = EP_ENOMEM;
            break;
        }
        copies[made][eq - kv[made]] = '\0';
        tmp[made] = (ep_authz_attr){copies[made], copies[made] + (eq - kv[made]) + 1};
    }
    if (err == EP_EOK)
        err = ep_auth_attrs_new(tmp, n, out);
    for (size_t i = 0; i < made; i++)
        free(copies[i]);
    return err;
}

ep_err ep_auth_attrs_dup(const ep_auth_attrs *a, ep_auth_attrs **out)
{
    if (a == NULL) {
        *out = NULL;
        return EP_EOK;
    }
    return ep_auth_attrs_new(a->items, a->n, out);
}

void ep_auth_attrs_free(ep_auth_attrs *a) { free(a); }
