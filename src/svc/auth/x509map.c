/*
 * x509map.c - see x509map.h. Subjects are compared in a canonical text
 * form built the same way from the configuration and from the
 * certificate, so matching is a string comparison per certificate and
 * entry (chains are a few certificates, maps a few entries).
 */
#include "svc/auth/x509map.h"

#include <ctype.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBJ_MAX 1024

typedef struct entry {
    char *name;
    char subject[SUBJ_MAX]; /* canonical */
    ep_auth_attrs *attrs;
} entry;

struct ep_x509_map {
    size_t n;
    entry e[];
};

typedef struct wr {
    char *p;
    size_t n, k;
    bool over;
} wr;

static void put(wr *w, char c)
{
    if (w->k + 1 >= w->n) {
        w->over = true;
        return;
    }
    w->p[w->k++] = c;
    w->p[w->k] = '\0';
}

/* Appends "TYPE=value" (type upper-cased, commas in value escaped). */
static void put_pair(wr *w, const char *type, size_t tl, const char *val, size_t vl)
{
    if (w->k > 0)
        put(w, ',');
    for (size_t i = 0; i < tl; i++)
        put(w, (char)toupper((unsigned char)type[i]));
    put(w, '=');
    for (size_t i = 0; i < vl; i++) {
        if (val[i] == ',' || val[i] == '\\')
            put(w, '\\');
        put(w, val[i]);
    }
}

static void trim(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* One "TYPE = value" part of a configured subject, unescaping "\," and
 * "\\" into tmp. */
static ep_err norm_part(wr *w, const char *s, size_t n)
{
    char tmp[SUBJ_MAX];
    size_t tl = 0;
    for (size_t i = 0; i < n; i++) {
        if (tl == sizeof(tmp))
            return EP_ETOOBIG;
        if (s[i] == '\\' && i + 1 < n)
            i++;
        tmp[tl++] = s[i];
    }
    if (tl == 0)
        return EP_EINVAL;
    const char *eq = memchr(tmp, '=', tl);
    if (eq == NULL)
        return EP_EINVAL;
    const char *k = tmp, *v = eq + 1;
    size_t kl = (size_t)(eq - tmp), vl = tl - kl - 1;
    trim(&k, &kl);
    trim(&v, &vl);
    if (kl == 0 || vl == 0)
        return EP_EINVAL;
    for (size_t i = 0; i < kl; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '.')
            return EP_EINVAL;
    put_pair(w, k, kl, v, vl);
    return EP_EOK;
}

ep_err ep_x509_subject_normalize(const char *subject, char *out, size_t n)
{
    wr w = {out, n, 0, false};
    if (n == 0)
        return EP_ETOOBIG;
    out[0] = '\0';
    size_t start = 0, len = strlen(subject);
    for (size_t i = 0; i <= len; i++) {
        if (i < len && subject[i] == '\\' && i + 1 < len) {
            i++;
            continue;
        }
        if (i < len && subject[i] != ',')
            continue;
        ep_err err = norm_part(&w, subject + start, i - start);
        if (err)
            return err;
        start = i + 1;
    }
    return w.over ? EP_ETOOBIG : EP_EOK;
}

/* The certificate's subject in canonical form, in the certificate's order
 * (reverse false) or RFC 4514 order (reverse true). */
static bool cert_subject(X509 *x, bool reverse, char *out, size_t n)
{
    const X509_NAME *name = X509_get_subject_name(x);
    int cnt = X509_NAME_entry_count(name);
    wr w = {out, n, 0, false};
    out[0] = '\0';
    for (int j = 0; j < cnt; j++) {
        const X509_NAME_ENTRY *ne = X509_NAME_get_entry(name, reverse ? cnt - 1 - j : j);
        const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(ne);
        char type[80];
        int nid = OBJ_obj2nid(obj);
        if (nid != NID_undef)
            snprintf(type, sizeof(type), "%s", OBJ_nid2sn(nid));
        else if (OBJ_obj2txt(type, sizeof(type), obj, 1) <= 0)
            return false;
        unsigned char *val = NULL;
        int vl = ASN1_STRING_to_UTF8(&val, X509_NAME_ENTRY_get_data(ne));
        if (vl < 0)
            return false;
        put_pair(&w, type, strlen(type), (const char *)val, (size_t)vl);
        OPENSSL_free(val);
    }
    return !w.over;
}

ep_err ep_x509_map_new(const ep_x509_map_entry *e, size_t n, ep_x509_map **out, char *why,
                       size_t why_n)
{
    ep_x509_map *m = calloc(1, sizeof(*m) + n * sizeof(entry));
    if (m == NULL)
        return EP_ENOMEM;
    ep_err err = EP_EOK;
    for (size_t i = 0; i < n && err == EP_EOK; i++, m->n++) {
        entry *d = &m->e[i];
        if ((d->name = strdup(e[i].name ? e[i].name : "")) == NULL) {
            err = EP_ENOMEM;
        } else if ((err = ep_x509_subject_normalize(e[i].subject ? e[i].subject : "", d->subject,
                                                    sizeof(d->subject))) != EP_EOK) {
            snprintf(why, why_n, "%s: subject must be 'TYPE = value' pairs separated by commas",
                     d->name);
        } else if ((err = ep_auth_attrs_parse_kv(e[i].attrs, e[i].n_attrs, &d->attrs)) != EP_EOK) {
            snprintf(why, why_n, "%s: attributes must be 'name=value' strings", d->name);
        }
    }
    if (err) {
        ep_x509_map_free(m);
        return err;
    }
    *out = m;
    return EP_EOK;
}

void ep_x509_map_free(ep_x509_map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].name);
        ep_auth_attrs_free(m->e[i].attrs);
    }
    free(m);
}

static const entry *match_cert(const ep_x509_map *m, X509 *x)
{
    char fwd[SUBJ_MAX], rev[SUBJ_MAX];
    if (!cert_subject(x, false, fwd, sizeof(fwd)) || !cert_subject(x, true, rev, sizeof(rev)))
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].subject, fwd) == 0 || strcmp(m->e[i].subject, rev) == 0)
            return &m->e[i];
    return NULL;
}

ep_err ep_x509_map_match(const ep_x509_map *m, struct stack_st_X509 *chain, ep_auth_attrs **out,
                         const char **matched)
{
    *out = NULL;
    if (matched)
        *matched = NULL;
    if (m == NULL || chain == NULL)
        return EP_EOK;
    STACK_OF(X509) *sk = chain;
    for (int i = 0; i < sk_X509_num(sk); i++) {
        const entry *e = match_cert(m, sk_X509_value(sk, i));
        if (e == NULL)
            continue;
        if (matched)
            *matched = e->name;
        return ep_auth_attrs_dup(e->attrs, out);
    }
    return EP_EOK;
}

ep_err ep_x509_chain_pem(struct stack_st_X509 *chain, char **out)
{
    STACK_OF(X509) *sk = chain;
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return EP_ENOMEM;
    ep_err err = EP_EOK;
    for (int i = 0; i < sk_X509_num(sk) && err == EP_EOK; i++)
        if (PEM_write_bio_X509(b, sk_X509_value(sk, i)) != 1)
            err = EP_ECRYPTO;
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = err == EP_EOK && n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
        *out = s;
    } else if (err == EP_EOK) {
        err = EP_ENOMEM;
    }
    BIO_free(b);
    return err;
}
