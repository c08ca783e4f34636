/*
 * pki.c - the PKI folder: creating the layout, loading or generating the own
 * certificate, scanning trust lists into an X509_STORE, saving rejected
 * certificates and moving them to trusted/ on request.
 *
 * Reload detection compares the modification times of the four trust-list
 * directories with those seen at the last scan. Adding, removing or renaming
 * a file changes its directory's mtime. A change made in the same clock
 * tick as a scan would be missed, so a directory modified less than a
 * second before the last scan started is treated as changed (git's "racy
 * index" rule); re-scanning a handful of files is cheap.
 */
#include "codec/opcua_crypto/pki_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#define OWN_CERT "own/certs/cert.der"
#define OWN_KEY "own/private/private_key.pem"
#define DEFAULT_MAX_REJECTED 256
#define MAX_PATH 4096

static const char *const watched[EP_UA__DIR_WATCHED] = {
    [EP_UA__DIR_TRUSTED_CERTS] = "trusted/certs",
    [EP_UA__DIR_TRUSTED_CRL] = "trusted/crl",
    [EP_UA__DIR_ISSUERS_CERTS] = "issuers/certs",
    [EP_UA__DIR_ISSUERS_CRL] = "issuers/crl",
};

static const char *const layout[] = {
    "own",         "own/certs", "own/private",   "trusted",     "trusted/certs",
    "trusted/crl", "issuers",   "issuers/certs", "issuers/crl", "rejected",
};

int ep_ua__pki_path(const ep_ua_pki *pki, const char *sub, const char *name, char *buf, size_t cap)
{
    int n = name ? snprintf(buf, cap, "%s/%s/%s", pki->dir, sub, name)
                 : snprintf(buf, cap, "%s/%s", pki->dir, sub);
    return n > 0 && (size_t)n < cap;
}

static void warn(ep_ua_pki *pki, const char *fmt, const char *a, const char *b)
{
    size_t used = strlen(pki->warning);
    if (used + 3 >= sizeof(pki->warning))
        return;
    if (used > 0) {
        memcpy(pki->warning + used, "; ", 3);
        used += 2;
    }
    snprintf(pki->warning + used, sizeof(pki->warning) - used, fmt, a, b);
}

/* ---------------------------------------------------------- scanning -- */

static int has_ext(const char *name, const char *const *exts)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return 0;
    for (; *exts; exts++)
        if (strcasecmp(dot + 1, *exts) == 0)
            return 1;
    return 0;
}

/* Takes ownership of one certificate or CRL read from a trust-list file:
 * certificates go to certs when given (issuers), else into the store as
 * trust anchors; CRLs always into the store. Returns 1 when kept. */
static int keep_obj(void *obj, int crl, STACK_OF(X509) * certs, X509_STORE *store)
{
    int ok;
    if (crl) {
        ok = X509_STORE_add_crl(store, obj) == 1;
        X509_CRL_free(obj);
    } else if (certs != NULL) {
        ok = sk_X509_push(certs, obj) > 0;
        if (!ok)
            X509_free(obj);
    } else {
        ok = X509_STORE_add_cert(store, obj) == 1;
        X509_free(obj);
    }
    return ok;
}

/* Reads every certificate (or CRL) in one file, DER (possibly several
 * concatenated) or PEM (possibly a bundle). Returns the number kept. */
static int load_objs(const uint8_t *data, size_t len, int crl, STACK_OF(X509) * certs,
                     X509_STORE *store)
{
    int kept = 0;
    void *obj;
    if (ep_ua__is_pem(data, len)) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio == NULL)
            return 0;
        while ((obj = crl ? (void *)PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)
                          : (void *)PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
            kept += keep_obj(obj, crl, certs, store);
        BIO_free(bio);
    } else {
        const unsigned char *p = data, *end = data + len;
        while (p < end && (obj = crl ? (void *)d2i_X509_CRL(NULL, &p, (long)(end - p))
                                     : (void *)d2i_X509(NULL, &p, (long)(end - p))) != NULL)
            kept += keep_obj(obj, crl, certs, store);
    }
    ERR_clear_error();
    return kept;
}

/* Loads one directory. certs == NULL means "add certificates to store as
 * trust anchors". Returns the number of objects loaded. */
static size_t scan_dir(ep_ua_pki *pki, int which, STACK_OF(X509) * certs)
{
    static const char *const cert_exts[] = {"der", "pem", "crt", "cer", NULL};
    static const char *const crl_exts[] = {"crl", "der", "pem", NULL};
    int crl = which == EP_UA__DIR_TRUSTED_CRL || which == EP_UA__DIR_ISSUERS_CRL;
    char path[MAX_PATH];
    size_t total = 0;
    struct dirent *de;
    DIR *d;
    if (!ep_ua__pki_path(pki, watched[which], NULL, path, sizeof(path)))
        return 0;
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        char file[MAX_PATH];
        uint8_t *data = NULL;
        size_t len = 0;
        if (de->d_name[0] == '.' || !has_ext(de->d_name, crl ? crl_exts : cert_exts))
            continue;
        if (!ep_ua__pki_path(pki, watched[which], de->d_name, file, sizeof(file)))
            continue;
        if (ep_ua__file_read(file, crl ? EP_UA__MAX_CRL_FILE : EP_UA__MAX_FILE, &data, &len) !=
            EP_EOK) {
            warn(pki, "%s/%s cannot be read", watched[which], de->d_name);
            continue;
        }
        int n = len ? load_objs(data, len, crl, certs, pki->store) : 0;
        free(data);
        if (n == 0)
            warn(pki, crl ? "%s/%s is not a CRL, ignored" : "%s/%s is not a certificate, ignored",
                 watched[which], de->d_name);
        total += (size_t)n;
    }
    closedir(d);
    return total;
}

static void stat_dirs(const ep_ua_pki *pki, struct timespec mtime[EP_UA__DIR_WATCHED],
                      bool exists[EP_UA__DIR_WATCHED])
{
    for (int i = 0; i < EP_UA__DIR_WATCHED; i++) {
        char path[MAX_PATH];
        struct stat st;
        exists[i] =
            ep_ua__pki_path(pki, watched[i], NULL, path, sizeof(path)) && stat(path, &st) == 0;
        mtime[i] = exists[i] ? st.st_mtim : (struct timespec){0, 0};
    }
}

ep_err ep_ua_pki_reload(ep_ua_pki *pki)
{
    struct timespec mtime[EP_UA__DIR_WATCHED];
    bool exists[EP_UA__DIR_WATCHED];
    X509_STORE *store;
    STACK_OF(X509) * issuers;
    if (pki == NULL)
        return EP_EINVAL;
    store = X509_STORE_new();
    issuers = sk_X509_new_null();
    if (store == NULL || issuers == NULL) {
        X509_STORE_free(store);
        sk_X509_free(issuers);
        return EP_ENOMEM;
    }
    /* Stat before reading: a change during the scan then shows up as a
     * newer mtime at the next check. */
    clock_gettime(CLOCK_REALTIME, &pki->scanned_at);
    stat_dirs(pki, mtime, exists);

    X509_STORE_free(pki->store);
    sk_X509_pop_free(pki->issuers, X509_free);
    pki->store = store;
    pki->issuers = issuers;
    pki->warning[0] = '\0';
    scan_dir(pki, EP_UA__DIR_TRUSTED_CERTS, NULL);
    scan_dir(pki, EP_UA__DIR_TRUSTED_CRL, NULL);
    scan_dir(pki, EP_UA__DIR_ISSUERS_CERTS, pki->issuers);
    scan_dir(pki, EP_UA__DIR_ISSUERS_CRL, NULL);

    for (int i = 0; i < EP_UA__DIR_WATCHED; i++) {
        pki->seen[i].mtime = mtime[i];
        pki->seen[i].exists = exists[i];
    }
    return EP_EOK;
}

ep_err ep_ua__pki_refresh(ep_ua_pki *pki)
{
    struct timespec mtime[EP_UA__DIR_WATCHED];
    bool exists[EP_UA__DIR_WATCHED];
    bool changed = pki->store == NULL;
    stat_dirs(pki, mtime, exists);
    for (int i = 0; i < EP_UA__DIR_WATCHED && !changed; i++) {
        changed = exists[i] != pki->seen[i].exists ||
                  mtime[i].tv_sec != pki->seen[i].mtime.tv_sec ||
                  mtime[i].tv_nsec != pki->seen[i].mtime.tv_nsec ||
                  mtime[i].tv_sec >= pki->scanned_at.tv_sec - 1;
    }
    return changed ? ep_ua_pki_reload(pki) : EP_EOK;
}

/* ------------------------------------------------------------- open -- */

static ep_err mkdir_p(const char *path, mode_t mode)
{
    char buf[MAX_PATH];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf))
        return EP_EINVAL;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return EP_ERR_FROM_ERRNO();
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return EP_ERR_FROM_ERRNO();
    return S_ISDIR(st.st_mode) ? EP_EOK : EP_EEXIST;
}

static ep_err make_layout(ep_ua_pki *pki, char *detail, size_t cap)
{
    ep_err err = mkdir_p(pki->dir, 0750);
    if (err != EP_EOK) {
        ep_ua__detail(detail, cap, "cannot create PKI directory %s: %s", pki->dir,
                      ep_strerror(err));
        return err;
    }
    for (size_t i = 0; i < sizeof(layout) / sizeof(layout[0]); i++) {
        char path[MAX_PATH];
        int private = strcmp(layout[i], "own/private") == 0;
        if (!ep_ua__pki_path(pki, layout[i], NULL, path, sizeof(path))) {
            ep_ua__detail(detail, cap, "PKI directory path too long");
            return EP_ETOOBIG;
        }
        if (mkdir(path, private ? 0700 : 0750) != 0 && errno != EEXIST) {
            err = EP_ERR_FROM_ERRNO();
            ep_ua__detail(detail, cap, "cannot create %s: %s", path, ep_strerror(err));
            return err;
        }
    }
    return EP_EOK;
}

static ep_err generate_own(ep_ua_pki *pki, const ep_ua_pki_opts *o, const char *cert_path,
                           const char *key_path, char *detail, size_t cap)
{
    char host[256];
    ep_ua_cert_opts co = {
        .app_name = o->app_name,
        .app_uri = o->app_uri,
        .hostname = o->hostname,
        .validity_days = o->validity_days,
    };
    ep_err err;
    if (o->app_name == NULL || !*o->app_name || o->app_uri == NULL || !*o->app_uri) {
        ep_ua__detail(detail, cap,
                      "%s is missing and no application name and URI were "
                      "given to generate it",
                      cert_path);
        return EP_EINVAL;
    }
    if (co.hostname == NULL && gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        co.hostname = host;
    }
    err = ep_ua_key_generate(o->key_bits, &pki->own_key);
    if (err != EP_EOK) {
        ep_ua__detail(detail, cap, "cannot generate a %u-bit RSA key",
                      o->key_bits ? o->key_bits : 2048);
        return err;
    }
    err = ep_ua_cert_create(&co, pki->own_key, NULL, NULL, &pki->own_cert, detail, cap);
    if (err != EP_EOK)
        return err;
    /* Key first: a certificate without its key would block the next start. */
    err = ep_ua_key_save(pki->own_key, key_path);
    if (err == EP_EOK)
        err = ep_ua_cert_save(pki->own_cert, cert_path, EP_UA_CERT_DER);
    if (err != EP_EOK) {
        unlink(key_path);
        ep_ua__detail(detail, cap, "cannot write %s and %s: %s", cert_path, key_path,
                      ep_strerror(err));
    }
    return err;
}

static ep_err load_own(ep_ua_pki *pki, const ep_ua_pki_opts *o, char *detail, size_t cap)
{
    char cert_path[MAX_PATH], key_path[MAX_PATH];
    struct stat st;
    bool have_cert, have_key;
    ep_err err;
    if (!ep_ua__pki_path(pki, OWN_CERT, NULL, cert_path, sizeof(cert_path)) ||
        !ep_ua__pki_path(pki, OWN_KEY, NULL, key_path, sizeof(key_path)))
        return EP_ETOOBIG;
    have_cert = stat(cert_path, &st) == 0;
    have_key = stat(key_path, &st) == 0;
    if (!have_cert && !have_key) {
        if (o->no_generate) {
            ep_ua__detail(detail, cap, "no application certificate in %s", cert_path);
            return EP_ENOTFOUND;
        }
        return generate_own(pki, o, cert_path, key_path, detail, cap);
    }
    if (have_cert != have_key) {
        ep_ua__detail(detail, cap,
                      "%s exists but %s does not: restore the missing file, or "
                      "delete the other one to generate a new certificate",
                      have_cert ? cert_path : key_path, have_cert ? key_path : cert_path);
        return EP_ENOTFOUND;
    }
    err = ep_ua_cert_load(cert_path, &pki->own_cert);
    if (err != EP_EOK) {
        ep_ua__detail(detail, cap, "cannot load %s: %s", cert_path, ep_strerror(err));
        return err;
    }
    err = ep_ua_key_load(key_path, &pki->own_key);
    if (err != EP_EOK) {
        ep_ua__detail(detail, cap, "cannot load %s: %s", key_path, ep_strerror(err));
        return err;
    }
    if (!ep_ua_cert_matches_key(pki->own_cert, pki->own_key)) {
        ep_ua__detail(detail, cap, "%s is not the private key of %s", key_path, cert_path);
        return EP_ESECURITY;
    }
    return EP_EOK;
}

ep_err ep_ua_pki_open(const char *dir, const ep_ua_pki_opts *opts, ep_ua_pki **out, char *detail,
                      size_t detail_cap)
{
    static const ep_ua_pki_opts defaults;
    const ep_ua_pki_opts *o = opts ? opts : &defaults;
    ep_ua_pki *pki;
    ep_err err;
    size_t len;
    if (dir == NULL || out == NULL || !*dir) {
        ep_ua__detail(detail, detail_cap, "no PKI directory given");
        return EP_EINVAL;
    }
    len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (len >= MAX_PATH / 2) {
        ep_ua__detail(detail, detail_cap, "PKI directory path too long");
        return EP_EINVAL;
    }
    pki = calloc(1, sizeof(*pki));
    if (pki == NULL || (pki->dir = malloc(len + 1)) == NULL) {
        free(pki);
        ep_ua__detail(detail, detail_cap, "out of memory");
        return EP_ENOMEM;
    }
    memcpy(pki->dir, dir, len);
    pki->dir[len] = '\0';
    pki->auto_accept = o->auto_accept;
    pki->require_crl = o->require_crl;
    pki->max_rejected = o->max_rejected ? o->max_rejected : DEFAULT_MAX_REJECTED;

    err = make_layout(pki, detail, detail_cap);
    if (err == EP_EOK && !o->no_own)
        err = load_own(pki, o, detail, detail_cap);
    if (err == EP_EOK)
        err = ep_ua_pki_reload(pki);
    if (err != EP_EOK) {
        ep_ua_pki_free(pki);
        return err;
    }
    *out = pki;
    return EP_EOK;
}

void ep_ua_pki_free(ep_ua_pki *pki)
{
    if (pki == NULL)
        return;
    X509_STORE_free(pki->store);
    sk_X509_pop_free(pki->issuers, X509_free);
    ep_ua_cert_free(pki->own_cert);
    ep_ua_key_free(pki->own_key);
    free(pki->dir);
    free(pki);
}

const ep_ua_cert *ep_ua_pki_own_cert(const ep_ua_pki *pki) { return pki ? pki->own_cert : NULL; }

const ep_ua_key *ep_ua_pki_own_key(const ep_ua_pki *pki) { return pki ? pki->own_key : NULL; }

const char *ep_ua_pki_dir(const ep_ua_pki *pki) { return pki ? pki->dir : NULL; }

const char *ep_ua_pki_warning(const ep_ua_pki *pki)
{
    return pki && pki->warning[0] ? pki->warning : NULL;
}

/* --------------------------------------------------------- rejected/ -- */

static size_t count_entries(const char *path)
{
    size_t n = 0;
    struct dirent *de;
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

ep_err ep_ua__pki_reject(ep_ua_pki *pki, const ep_ua_cert *cert, char *name, size_t cap)
{
    char cn[65], path[MAX_PATH], dir[MAX_PATH];
    const char *src = ep_ua_cert_common_name(cert);
    struct stat st;
    size_t i;
    ep_err err;
    name[0] = '\0';
    /* Keep file names portable and free of path or shell syntax. */
    for (i = 0; i < sizeof(cn) - 1 && src[i]; i++) {
        unsigned char c = (unsigned char)src[i];
        cn[i] = (isalnum(c) || c == '-' || c == '_' || (c == '.' && i > 0)) ? (char)c : '_';
    }
    cn[i] = '\0';
    if (i == 0)
        memcpy(cn, "unnamed", sizeof("unnamed"));
    if (snprintf(name, cap, "%s[%s].der", cn, ep_ua_cert_thumbprint_hex(cert)) >= (int)cap ||
        !ep_ua__pki_path(pki, "rejected", name, path, sizeof(path)) ||
        !ep_ua__pki_path(pki, "rejected", NULL, dir, sizeof(dir))) {
        name[0] = '\0';
        return EP_ETOOBIG;
    }
    if (stat(path, &st) == 0)
        return EP_EOK;
    if (count_entries(dir) >= pki->max_rejected) {
        name[0] = '\0';
        return EP_EFULL;
    }
    err = ep_ua_cert_save(cert, path, EP_UA_CERT_DER);
    if (err != EP_EOK)
        name[0] = '\0';
    return err;
}

/* Finds the rejected/ entry that name designates: the exact file name, the
 * name plus ".der", else the single entry containing "[name]" (a
 * thumbprint) or starting with name. */
static ep_err find_rejected(const ep_ua_pki *pki, const char *name, char *found, size_t cap,
                            char *detail, size_t detail_cap)
{
    char dir[MAX_PATH], first[256] = "", second[256] = "";
    size_t nlen = strlen(name), matches = 0;
    struct dirent *de;
    DIR *d;
    if (!ep_ua__pki_path(pki, "rejected", NULL, dir, sizeof(dir)))
        return EP_ETOOBIG;
    d = opendir(dir);
    if (d == NULL) {
        ep_ua__detail(detail, detail_cap, "cannot open %s", dir);
        return EP_ERR_FROM_ERRNO();
    }
    while ((de = readdir(d)) != NULL) {
        const char *e = de->d_name;
        size_t elen = strlen(e);
        if (e[0] == '.')
            continue;
        if (strcmp(e, name) == 0 ||
            (elen == nlen + 4 && strncmp(e, name, nlen) == 0 && strcmp(e + nlen, ".der") == 0)) {
            snprintf(first, sizeof(first), "%s", e);
            matches = 1;
            break;
        }
        const char *lb = strrchr(e, '[');
        bool thumb = lb != NULL && strncasecmp(lb + 1, name, nlen) == 0 && lb[1 + nlen] == ']';
        if (thumb || strncmp(e, name, nlen) == 0) {
            snprintf(matches ? second : first, sizeof(first), "%s", e);
            matches++;
        }
    }
    closedir(d);
    if (matches == 0) {
        ep_ua__detail(detail, detail_cap,
                      "no certificate named \"%s\" in %s (give a file name, "
                      "a thumbprint or a unique name prefix)",
                      name, dir);
        return EP_ENOTFOUND;
    }
    if (matches > 1) {
        ep_ua__detail(detail, detail_cap,
                      "\"%s\" matches %zu certificates in %s (%s, %s%s): give "
                      "the full file name or thumbprint",
                      name, matches, dir, first, second, matches > 2 ? ", ..." : "");
        return EP_EINVAL;
    }
    if (snprintf(found, cap, "%s", first) >= (int)cap)
        return EP_ETOOBIG;
    return EP_EOK;
}

ep_err ep_ua_pki_trust(ep_ua_pki *pki, const char *name, char *detail, size_t detail_cap)
{
    char file[256], from[MAX_PATH], to[MAX_PATH], dir[MAX_PATH];
    ep_ua_cert *cert = NULL;
    ep_err err;
    if (pki == NULL || name == NULL || !*name || strchr(name, '/') != NULL ||
        strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        ep_ua__detail(detail, detail_cap, "give the name of a file in rejected/ (no '/')");
        return EP_EINVAL;
    }
    err = find_rejected(pki, name, file, sizeof(file), detail, detail_cap);
    if (err != EP_EOK)
        return err;
    if (!ep_ua__pki_path(pki, "rejected", file, from, sizeof(from)) ||
        !ep_ua__pki_path(pki, "trusted/certs", file, to, sizeof(to)) ||
        !ep_ua__pki_path(pki, "trusted/certs", NULL, dir, sizeof(dir)))
        return EP_ETOOBIG;
    err = ep_ua_cert_load(from, &cert);
    if (err != EP_EOK) {
        ep_ua__detail(detail, detail_cap, "%s is not a certificate (%s); left in place", from,
                      ep_strerror(err));
        return err == EP_ENOTFOUND ? err : EP_EMALFORMED;
    }
    err = mkdir_p(dir, 0750);
    if (err == EP_EOK && rename(from, to) != 0)
        err = EP_ERR_FROM_ERRNO();
    if (err != EP_EOK) {
        ep_ua__detail(detail, detail_cap, "cannot move %s to %s: %s", from, dir, ep_strerror(err));
    } else {
        ep_ua__detail(detail, detail_cap,
                      "trusted \"%s\" (thumbprint %s): moved rejected/%s to "
                      "trusted/certs/",
                      ep_ua_cert_common_name(cert), ep_ua_cert_thumbprint_hex(cert), file);
        err = ep_ua_pki_reload(pki);
    }
    ep_ua_cert_free(cert);
    return err;
}
