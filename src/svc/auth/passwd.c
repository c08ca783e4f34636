/*
 * passwd.c - password file: parse, look up, check, make and rewrite lines.
 *
 * A parsed file is an immutable snapshot: one allocation for the entry
 * array (sorted by user name for binary search) and one for the names.
 * Snapshots are refcounted so that a reload never pulls data from under a
 * verification that is still running on a pool thread. Parsing is strict
 * and reports every bad line with file:line:column; the whole file is
 * refused if any line is bad, since serving a half-read file would lock
 * some users out without anybody noticing.
 *
 * Checks run PBKDF2 at the stored cost and compare with CRYPTO_memcmp.
 * Unknown users get a dummy check of the default cost, so the time taken
 * does not reveal whether a user exists.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "svc/auth/auth_int.h"
#include "svc/auth/passwd.h"

struct ep_passwd {
    atomic_uint refs;
    uint64_t generation;
    size_t n;
    ep_passwd_entry *entries;
    char *names;
};

static atomic_uint_fast64_t next_generation = 1;

static const char PBKDF2_TAG[] = "$pbkdf2-sha512$";
static const char SCRAM_TAG[] = "$scram-sha-256$";

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */

ep_passwd *ep_passwd_ref(ep_passwd *pw)
{
    if (pw != NULL)
        atomic_fetch_add_explicit(&pw->refs, 1, memory_order_relaxed);
    return pw;
}

static void passwd_free(ep_passwd *pw)
{
    if (pw == NULL)
        return;
    if (pw->entries != NULL)
        OPENSSL_cleanse(pw->entries, pw->n * sizeof(*pw->entries));
    free(pw->entries);
    free(pw->names);
    free(pw);
}

void ep_passwd_unref(ep_passwd *pw)
{
    if (pw != NULL && atomic_fetch_sub_explicit(&pw->refs, 1, memory_order_acq_rel) == 1)
        passwd_free(pw);
}

size_t ep_passwd_count(const ep_passwd *pw) { return pw ? pw->n : 0; }

const ep_passwd_entry *ep_passwd_at(const ep_passwd *pw, size_t i)
{
    return pw && i < pw->n ? &pw->entries[i] : NULL;
}

uint64_t ep_passwd_generation(const ep_passwd *pw) { return pw ? pw->generation : 0; }

static int name_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

const ep_passwd_entry *ep_passwd_lookup(const ep_passwd *pw, const void *user, size_t len)
{
    if (pw == NULL || (user == NULL && len > 0))
        return NULL;
    size_t lo = 0, hi = pw->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ep_passwd_entry *e = &pw->entries[mid];
        int c = name_cmp(user, len, e->user, e->user_len);
        if (c == 0)
            return e;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

bool ep_passwd_user_valid(const char *user, size_t len)
{
    if (user == NULL || len == 0 || len > EP_PASSWD_MAX_USER)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)user[i];
        if (c < 0x20 || c == 0x7f || c == ':')
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */

typedef struct pctx {
    const char *name;
    ep_cfg_errs *errs;
    uint32_t line;
} pctx;

static void perr(pctx *c, size_t col, const char *msg)
{
    ep_cfg_node n = {
        .kind = EP_CFG_NODE_SCALAR, .file = c->name, .line = c->line, .col = (uint32_t)(col + 1)};
    ep_cfg_errs_add(c->errs, &n, "%s", msg);
}

/* Splits s[0..len) at '$' into at most max fields; returns the count, or
 * max + 1 when there are more. */
static size_t split_dollar(const char *s, size_t len, const char **f, size_t *fl, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '$') {
            if (n == max)
                return max + 1;
            f[n] = s + start;
            fl[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    return n;
}

static bool parse_u32(const char *s, size_t len, uint32_t max, uint32_t *out)
{
    if (len == 0 || len > 10 || (len > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0 || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool decode_field(pctx *c, const char *line, const char *f, size_t fl, uint8_t *out,
                         size_t min, size_t max, size_t *out_len, const char *what)
{
    char msg[128];
    size_t n = 0;
    uint8_t tmp[EP_PASSWD_MAX_SALT];
    ep_err err = ep_auth__b64_decode(f, fl, tmp, sizeof(tmp), &n);
    if (err == EP_EOK && (n < min || n > max))
        err = EP_ETOOBIG;
    if (err == EP_EINVAL) {
        snprintf(msg, sizeof(msg), "%s: invalid base64", what);
        perr(c, (size_t)(f - line), msg);
        return false;
    }
    if (err != EP_EOK) {
        if (min == max)
            snprintf(msg, sizeof(msg), "%s: expected %zu bytes", what, min);
        else
            snprintf(msg, sizeof(msg), "%s: expected %zu to %zu bytes", what, min, max);
        perr(c, (size_t)(f - line), msg);
        return false;
    }
    memcpy(out, tmp, n);
    if (out_len != NULL)
        *out_len = n;
    return true;
}

/* Parses one non-empty, non-comment line into e (e->user points into
 * line; fixed up by the caller). */
static bool parse_line(pctx *c, const char *line, size_t len, ep_passwd_entry *e)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL) {
        perr(c, 0, "expected USER:$SCHEME$...");
        return false;
    }
    size_t ulen = (size_t)(colon - line);
    if (!ep_passwd_user_valid(line, ulen)) {
        perr(c, 0,
             ulen == 0 ? "empty user name" : "user name too long or contains control characters");
        return false;
    }
    memset(e, 0, sizeof(*e));
    e->user = line;
    e->user_len = ulen;
    const char *h = colon + 1;
    size_t hlen = len - ulen - 1;
    size_t hcol = ulen + 1;
    const char *f[7];
    size_t fl[7];
    size_t nf;
    if (hlen >= sizeof(PBKDF2_TAG) - 1 && memcmp(h, PBKDF2_TAG, sizeof(PBKDF2_TAG) - 1) == 0) {
        e->kind = EP_PASSWD_PBKDF2_SHA512;
        nf = split_dollar(h + sizeof(PBKDF2_TAG) - 1, hlen - (sizeof(PBKDF2_TAG) - 1), f, fl, 3);
        if (nf != 3) {
            perr(c, hcol, "expected $pbkdf2-sha512$ITERATIONS$SALT$HASH");
            return false;
        }
    } else if (hlen >= sizeof(SCRAM_TAG) - 1 && memcmp(h, SCRAM_TAG, sizeof(SCRAM_TAG) - 1) == 0) {
        e->kind = EP_PASSWD_SCRAM_SHA256;
        nf = split_dollar(h + sizeof(SCRAM_TAG) - 1, hlen - (sizeof(SCRAM_TAG) - 1), f, fl, 4);
        if (nf != 4) {
            perr(c, hcol, "expected $scram-sha-256$ITERATIONS$SALT$STOREDKEY$SERVERKEY");
            return false;
        }
    } else {
        perr(c, hcol, "unknown hash scheme (expected $pbkdf2-sha512$ or $scram-sha-256$)");
        return false;
    }
    if (!parse_u32(f[0], fl[0], EP_PASSWD_MAX_ITERATIONS, &e->iterations)) {
        perr(c, (size_t)(f[0] - line), "iterations: expected an integer from 1 to 100000000");
        return false;
    }
    if (!decode_field(c, line, f[1], fl[1], e->salt, EP_PASSWD_MIN_SALT, EP_PASSWD_MAX_SALT,
                      &e->salt_len, "salt"))
        return false;
    if (e->kind == EP_PASSWD_PBKDF2_SHA512)
        return decode_field(c, line, f[2], fl[2], e->hash, 64, 64, NULL, "hash");
    return decode_field(c, line, f[2], fl[2], e->stored_key, 32, 32, NULL, "stored key") &&
           decode_field(c, line, f[3], fl[3], e->server_key, 32, 32, NULL, "server key");
}

static int entry_sort_cmp(const void *a, const void *b)
{
    const ep_passwd_entry *x = a, *y = b;
    return name_cmp(x->user, x->user_len, y->user, y->user_len);
}

ep_err ep_passwd_parse(const char *name, const char *text, size_t len, ep_passwd **out,
                       ep_cfg_errs *errs)
{
    pctx c = {.name = name ? name : "<passwd>", .errs = errs};
    if (len > EP_PASSWD_MAX_FILE) {
        ep_cfg_errs_add(errs, NULL, "%s: file larger than %u bytes", c.name,
                        (unsigned)EP_PASSWD_MAX_FILE);
        return EP_ETOOBIG;
    }
    size_t nerr0 = errs->nerr;
    ep_passwd *pw = calloc(1, sizeof(*pw));
    /* names get a NUL each and are shorter than their line: len + 1 bytes
     * are enough. Entries grow by doubling (a file of empty lines must not
     * cost an entry per line). */
    if (pw == NULL || (pw->names = malloc(len + 1)) == NULL) {
        passwd_free(pw);
        return EP_ENOMEM;
    }
    size_t names_used = 0, cap = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *line = text + pos;
        size_t ll = end - pos;
        c.line++;
        pos = end + 1;
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll == 0 || line[0] == '#')
            continue;
        if (ll > EP_PASSWD_MAX_LINE) {
            perr(&c, 0, "line too long");
            continue;
        }
        if (memchr(line, '\0', ll) != NULL) {
            perr(&c, 0, "NUL byte in line");
            continue;
        }
        if (pw->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            ep_passwd_entry *ne = realloc(pw->entries, ncap * sizeof(*ne));
            if (ne == NULL) {
                passwd_free(pw);
                return EP_ENOMEM;
            }
            pw->entries = ne;
            cap = ncap;
        }
        ep_passwd_entry *e = &pw->entries[pw->n];
        if (!parse_line(&c, line, ll, e))
            continue;
        char *nm = pw->names + names_used;
        memcpy(nm, e->user, e->user_len);
        nm[e->user_len] = '\0';
        e->user = nm; /* fixed up again after sorting; see below */
        names_used += e->user_len + 1;
        pw->n++;
    }
    if (errs->nerr == nerr0 && pw->n > 1) {
        /* user pointers stay valid: they point into names, not entries */
        qsort(pw->entries, pw->n, sizeof(*pw->entries), entry_sort_cmp);
        for (size_t i = 1; i < pw->n; i++) {
            const ep_passwd_entry *a = &pw->entries[i - 1], *b = &pw->entries[i];
            if (a->user_len == b->user_len && memcmp(a->user, b->user, a->user_len) == 0)
                ep_cfg_errs_add(errs, NULL, "%s: user '%.*s' appears more than once", c.name,
                                (int)(a->user_len > 64 ? 64 : a->user_len), a->user);
        }
    }
    if (errs->nerr != nerr0) {
        passwd_free(pw);
        return EP_ECONFIG;
    }
    atomic_init(&pw->refs, 1);
    pw->generation = atomic_fetch_add(&next_generation, 1);
    *out = pw;
    return EP_EOK;
}

static ep_err read_file(const char *path, char **text, size_t *len, struct stat *st,
                        ep_cfg_errs *errs)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto io_fail;
    if (fstat(fd, st) != 0)
        goto io_fail;
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        ep_cfg_errs_add(errs, NULL, "%s: not a regular file", path);
        return EP_EIO;
    }
    if ((uint64_t)st->st_size > EP_PASSWD_MAX_FILE) {
        close(fd);
        ep_cfg_errs_add(errs, NULL, "%s: file larger than %u bytes", path,
                        (unsigned)EP_PASSWD_MAX_FILE);
        return EP_ETOOBIG;
    }
    size_t cap = (size_t)st->st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return EP_ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            /* the file grew while we read it: refuse rather than guess */
            free(buf);
            close(fd);
            ep_cfg_errs_add(errs, NULL, "%s: file changed while reading", path);
            return EP_EIO;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            free(buf);
            goto io_fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *text = buf;
    *len = n;
    return EP_EOK;
io_fail:
    ep_cfg_errs_add(errs, NULL, "%s: cannot read: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return EP_EIO;
}

static ep_err load_stat(const char *path, ep_passwd **out, struct stat *st, ep_cfg_errs *errs)
{
    char *text = NULL;
    size_t len = 0;
    ep_err err = read_file(path, &text, &len, st, errs);
    if (err == EP_EOK)
        err = ep_passwd_parse(path, text, len, out, errs);
    if (text != NULL) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    return err;
}

ep_err ep_passwd_load(const char *path, ep_passwd **out, ep_cfg_errs *errs)
{
    struct stat st;
    return load_stat(path, out, &st, errs);
}

/* ------------------------------------------------------------------------ */
/* Checking and making                                                       */

static ep_err derive(ep_passwd_kind kind, const void *password, size_t plen, const uint8_t *salt,
                     size_t slen, uint32_t iterations, uint8_t out[64])
{
    if (kind == EP_PASSWD_PBKDF2_SHA512)
        return ep_auth__pbkdf2(true, password, plen, salt, slen, iterations, out, 64);
    uint8_t sp[32];
    ep_err err = ep_auth__pbkdf2(false, password, plen, salt, slen, iterations, sp, 32);
    if (err == EP_EOK)
        err = ep_auth__scram_keys(sp, NULL, out, out + 32);
    OPENSSL_cleanse(sp, sizeof(sp));
    return err;
}

ep_err ep_passwd_entry_check(const ep_passwd_entry *e, const void *password, size_t len)
{
    if (len > EP_PASSWD_MAX_PASSWORD)
        return EP_ETOOBIG;
    uint8_t got[64];
    ep_err err = derive(e->kind, password, len, e->salt, e->salt_len, e->iterations, got);
    if (err == EP_EOK) {
        bool ok = e->kind == EP_PASSWD_PBKDF2_SHA512 ? ep_auth__ct_eq(got, e->hash, 64)
                                                     : ep_auth__ct_eq(got, e->stored_key, 32);
        err = ok ? EP_EOK : EP_ESECURITY;
    }
    OPENSSL_cleanse(got, sizeof(got));
    return err;
}

ep_err ep_passwd_verify(const ep_passwd *pw, const void *user, size_t ulen, const void *password,
                        size_t plen)
{
    if (plen > EP_PASSWD_MAX_PASSWORD)
        return EP_ETOOBIG;
    const ep_passwd_entry *e = ep_passwd_lookup(pw, user, ulen);
    if (e != NULL)
        return ep_passwd_entry_check(e, password, plen);
    /* Same work as a real default-cost check, result thrown away. */
    static const uint8_t dummy_salt[EP_PASSWD_SALT_LEN] = {0};
    uint8_t out[64];
    ep_err err = derive(EP_PASSWD_PBKDF2_SHA512, password, plen, dummy_salt, sizeof(dummy_salt),
                        EP_PASSWD_DEFAULT_ITERATIONS, out);
    OPENSSL_cleanse(out, sizeof(out));
    return err == EP_EOK ? EP_ENOTFOUND : err;
}

ep_err ep_passwd_entry_make(const char *user, const void *password, size_t plen,
                            ep_passwd_kind kind, uint32_t iterations, ep_passwd_entry *out)
{
    if (user == NULL || !ep_passwd_user_valid(user, strlen(user)))
        return EP_EINVAL;
    if (kind != EP_PASSWD_PBKDF2_SHA512 && kind != EP_PASSWD_SCRAM_SHA256)
        return EP_EINVAL;
    if (iterations == 0)
        iterations = kind == EP_PASSWD_PBKDF2_SHA512 ? EP_PASSWD_DEFAULT_ITERATIONS
                                                     : EP_PASSWD_SCRAM_DEFAULT_ITERATIONS;
    if (iterations > EP_PASSWD_MAX_ITERATIONS)
        return EP_EINVAL;
    if (plen > EP_PASSWD_MAX_PASSWORD)
        return EP_ETOOBIG;
    ep_passwd_entry e = {.user = user,
                         .user_len = strlen(user),
                         .kind = kind,
                         .iterations = iterations,
                         .salt_len = EP_PASSWD_SALT_LEN};
    uint8_t key[64];
    ep_err err = ep_auth__random(e.salt, e.salt_len);
    if (err == EP_EOK)
        err = derive(kind, password, plen, e.salt, e.salt_len, iterations, key);
    if (err == EP_EOK) {
        if (kind == EP_PASSWD_PBKDF2_SHA512) {
            memcpy(e.hash, key, 64);
        } else {
            memcpy(e.stored_key, key, 32);
            memcpy(e.server_key, key + 32, 32);
        }
        *out = e;
    }
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(&e, sizeof(e));
    return err;
}

ep_err ep_passwd_entry_format(const ep_passwd_entry *e, char *buf, size_t size)
{
    char salt[ep_auth__b64_len(EP_PASSWD_MAX_SALT) + 1];
    char k1[ep_auth__b64_len(64) + 1], k2[ep_auth__b64_len(32) + 1];
    if (size > 0)
        buf[0] = '\0';
    if (e->salt_len > EP_PASSWD_MAX_SALT)
        return EP_EINVAL;
    ep_auth__b64_encode(e->salt, e->salt_len, salt);
    int n;
    if (e->kind == EP_PASSWD_PBKDF2_SHA512) {
        ep_auth__b64_encode(e->hash, 64, k1);
        n = snprintf(buf, size, "%.*s:%s%u$%s$%s", (int)e->user_len, e->user, PBKDF2_TAG,
                     (unsigned)e->iterations, salt, k1);
    } else if (e->kind == EP_PASSWD_SCRAM_SHA256) {
        ep_auth__b64_encode(e->stored_key, 32, k1);
        ep_auth__b64_encode(e->server_key, 32, k2);
        n = snprintf(buf, size, "%.*s:%s%u$%s$%s$%s", (int)e->user_len, e->user, SCRAM_TAG,
                     (unsigned)e->iterations, salt, k1, k2);
    } else {
        return EP_EINVAL;
    }
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            buf[0] = '\0';
        return EP_ETOOBIG;
    }
    return EP_EOK;
}

/* ------------------------------------------------------------------------ */
/* Rewriting the file (CLI)                                                  */

static ep_err write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return EP_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return EP_EOK;
}

static bool line_is_user(const char *line, size_t ll, const char *user, size_t ulen)
{
    return ll > ulen && line[ulen] == ':' && memcmp(line, user, ulen) == 0 && line[0] != '#';
}

ep_err ep_passwd_file_update(const char *path, const char *user, const ep_passwd_entry *e,
                             ep_cfg_errs *errs)
{
    if (user == NULL || !ep_passwd_user_valid(user, strlen(user)))
        return EP_EINVAL;
    size_t ulen = strlen(user);
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    mode_t mode = 0600;
    ep_err err;
    if (access(path, F_OK) == 0) {
        ep_passwd *old = NULL;
        err = read_file(path, &text, &len, &st, errs);
        if (err != EP_EOK)
            return err;
        err = ep_passwd_parse(path, text, len, &old, errs);
        ep_passwd_unref(old);
        if (err != EP_EOK)
            goto out;
    } else if (e == NULL) {
        return EP_ENOTFOUND;
    }

    char newline[EP_PASSWD_MAX_LINE + 2];
    if (e != NULL) {
        ep_passwd_entry copy = *e;
        copy.user = user;
        copy.user_len = ulen;
        err = ep_passwd_entry_format(&copy, newline, sizeof(newline) - 1);
        OPENSSL_cleanse(&copy, sizeof(copy));
        if (err != EP_EOK)
            goto out;
        strcat(newline, "\n");
    }

    size_t dlen = strlen(path) + 32;
    char *tmp = malloc(dlen);
    if (tmp == NULL) {
        err = EP_ENOMEM;
        goto out;
    }
    snprintf(tmp, dlen, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        ep_cfg_errs_add(errs, NULL, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        err = EP_EIO;
        goto out;
    }
    bool found = false;
    size_t pos = 0;
    err = EP_EOK;
    while (err == EP_EOK && pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        const char *line = text + pos;
        size_t ll = end - pos;
        pos = end;
        if (line_is_user(line, ll, user, ulen)) {
            found = true;
            if (e != NULL)
                err = write_all(fd, newline, strlen(newline));
            continue;
        }
        err = write_all(fd, line, ll);
        if (err == EP_EOK && nl == NULL && ll > 0)
            err = write_all(fd, "\n", 1); /* last line had no newline */
    }
    if (err == EP_EOK && e != NULL && !found)
        err = write_all(fd, newline, strlen(newline));
    if (err == EP_EOK && fchmod(fd, mode) != 0)
        err = EP_EIO;
    if (err == EP_EOK && fsync(fd) != 0)
        err = EP_EIO;
    if (close(fd) != 0 && err == EP_EOK)
        err = EP_EIO;
    if (err == EP_EOK && e == NULL && !found)
        err = EP_ENOTFOUND;
    if (err == EP_EOK && rename(tmp, path) != 0) {
        ep_cfg_errs_add(errs, NULL, "%s: cannot replace: %s", path, strerror(errno));
        err = EP_EIO;
    } else if (err == EP_EIO) {
        ep_cfg_errs_add(errs, NULL, "%s: cannot write: %s", tmp, strerror(errno));
    }
    if (err != EP_EOK)
        unlink(tmp);
    free(tmp);
    if (err == EP_EOK) {
        /* make the rename durable */
        char *dir = strdup(path);
        if (dir != NULL) {
            char *slash = strrchr(dir, '/');
            const char *d = ".";
            if (slash == dir)
                d = "/";
            else if (slash != NULL) {
                *slash = '\0';
                d = dir;
            }
            int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
    OPENSSL_cleanse(newline, sizeof(newline));
out:
    if (text != NULL) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    return err;
}

/* ------------------------------------------------------------------------ */
/* Watched file                                                              */

struct ep_passwd_file {
    char *path;
    pthread_mutex_t lock;        /* guards cur */
    pthread_mutex_t reload_lock; /* one reloader at a time; guards st */
    ep_passwd *cur;
    struct stat st;
};

ep_err ep_passwd_file_open(const char *path, ep_passwd_file **out, ep_cfg_errs *errs)
{
    ep_passwd_file *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->path = strdup(path)) == NULL) {
        free(f);
        return EP_ENOMEM;
    }
    ep_err err = load_stat(path, &f->cur, &f->st, errs);
    if (err != EP_EOK) {
        free(f->path);
        free(f);
        return err;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->reload_lock, NULL);
    *out = f;
    return EP_EOK;
}

ep_err ep_passwd_file_reload(ep_passwd_file *f, bool force, bool *changed, ep_cfg_errs *errs)
{
    if (changed != NULL)
        *changed = false;
    pthread_mutex_lock(&f->reload_lock);
    struct stat st;
    ep_err err = EP_EOK;
    if (!force && stat(f->path, &st) == 0 && st.st_ino == f->st.st_ino &&
        st.st_dev == f->st.st_dev && st.st_size == f->st.st_size &&
        st.st_mtim.tv_sec == f->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == f->st.st_mtim.tv_nsec)
        goto out;
    ep_passwd *pw = NULL;
    err = load_stat(f->path, &pw, &st, errs);
    if (err != EP_EOK)
        goto out;
    f->st = st;
    pthread_mutex_lock(&f->lock);
    ep_passwd *old = f->cur;
    f->cur = pw;
    pthread_mutex_unlock(&f->lock);
    ep_passwd_unref(old);
    if (changed != NULL)
        *changed = true;
out:
    pthread_mutex_unlock(&f->reload_lock);
    return err;
}

ep_passwd *ep_passwd_file_get(ep_passwd_file *f)
{
    pthread_mutex_lock(&f->lock);
    ep_passwd *pw = ep_passwd_ref(f->cur);
    pthread_mutex_unlock(&f->lock);
    return pw;
}

void ep_passwd_file_free(ep_passwd_file *f)
{
    if (f == NULL)
        return;
    ep_passwd_unref(f->cur);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->reload_lock);
    free(f->path);
    free(f);
}
