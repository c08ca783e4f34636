/*
 * tls.c - see tls.h. Socket BIOs on the caller's fd; partial writes and a
 * moving write buffer are allowed because connection buffers grow.
 */
#include "core/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ep_tls_ctx {
    pthread_mutex_t lock;
    SSL_CTX *ssl_ctx; /* current; guarded by lock */
    char *cert_file, *key_file, *ca_file;
    ep_tls_verify verify;
    int min_version;
    struct timespec mtime[3];
};

struct ep_tls {
    SSL *ssl;
    bool want_write;
    char error[160];
};

static void openssl_reason(char *why, size_t n, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char ebuf[160] = "unknown error";
    if (e)
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
    ERR_clear_error();
    if (why && n)
        snprintf(why, n, "%s%s%s: %s", what, file ? " " : "", file ? file : "", ebuf);
}

static void file_mtime(const char *path, struct timespec *out)
{
    struct stat st;
    memset(out, 0, sizeof(*out));
    if (path && stat(path, &st) == 0)
        *out = st.st_mtim;
}

static SSL_CTX *build_ctx(const ep_tls_ctx *c, char *why, size_t why_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        openssl_reason(why, why_len, "cannot create TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, c->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1) {
        openssl_reason(why, why_len, "cannot load certificate", c->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1) {
        openssl_reason(why, why_len, "cannot load private key", c->key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        openssl_reason(why, why_len, "private key does not match certificate", c->key_file);
        goto fail;
    }
    if (c->verify != EP_TLS_VERIFY_NONE) {
        if (c->ca_file == NULL) {
            if (why)
                snprintf(why, why_len, "client certificate verification needs a CA file");
            goto fail;
        }
        if (SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
            openssl_reason(why, why_len, "cannot load CA bundle", c->ca_file);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(
            ctx,
            SSL_VERIFY_PEER |
                (c->verify == EP_TLS_VERIFY_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
            NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void ep_tls_ctx_free(ep_tls_ctx *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ssl_ctx);
    pthread_mutex_destroy(&c->lock);
    free(c->cert_file);
    free(c->key_file);
    free(c->ca_file);
    free(c);
}

ep_err ep_tls_ctx_new(ep_tls_ctx **out, const ep_tls_opts *o, char *why, size_t why_len)
{
    if (o->cert_file == NULL || o->key_file == NULL) {
        if (why)
            snprintf(why, why_len, "TLS needs a certificate and a key file");
        return EP_EINVAL;
    }
    ep_tls_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return EP_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    c->cert_file = dup_or_null(o->cert_file);
    c->key_file = dup_or_null(o->key_file);
    c->ca_file = dup_or_null(o->ca_file);
    c->verify = o->verify;
    c->min_version = o->min_version;
    if (c->cert_file == NULL || c->key_file == NULL || (o->ca_file && c->ca_file == NULL)) {
        ep_tls_ctx_free(c);
        return EP_ENOMEM;
    }
    ep_err err = ep_tls_ctx_reload(c, why, why_len);
    if (err) {
        ep_tls_ctx_free(c);
        return err;
    }
    *out = c;
    return EP_EOK;
}

ep_err ep_tls_ctx_reload(ep_tls_ctx *c, char *why, size_t why_len)
{
    struct timespec m[3];
    file_mtime(c->cert_file, &m[0]);
    file_mtime(c->key_file, &m[1]);
    file_mtime(c->ca_file, &m[2]);
    SSL_CTX *ctx = build_ctx(c, why, why_len);
    if (ctx == NULL)
        return EP_ECRYPTO;
    pthread_mutex_lock(&c->lock);
    SSL_CTX *old = c->ssl_ctx;
    c->ssl_ctx = ctx;
    memcpy(c->mtime, m, sizeof(m));
    pthread_mutex_unlock(&c->lock);
    SSL_CTX_free(old); /* live connections hold their own reference */
    return EP_EOK;
}

bool ep_tls_ctx_changed(ep_tls_ctx *c)
{
    struct timespec m[3];
    file_mtime(c->cert_file, &m[0]);
    file_mtime(c->key_file, &m[1]);
    file_mtime(c->ca_file, &m[2]);
    pthread_mutex_lock(&c->lock);
    bool changed = memcmp(m, c->mtime, sizeof(m)) != 0;
    pthread_mutex_unlock(&c->lock);
    return changed;
}

ep_err ep_tls_new(ep_tls_ctx *c, int fd, ep_tls **out)
{
    ep_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return EP_ENOMEM;
    pthread_mutex_lock(&c->lock);
    t->ssl = SSL_new(c->ssl_ctx);
    pthread_mutex_unlock(&c->lock);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1) {
        ERR_clear_error();
        ep_tls_free(t);
        return EP_ECRYPTO;
    }
    SSL_set_accept_state(t->ssl);
    *out = t;
    return EP_EOK;
}

void ep_tls_free(ep_tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t);
}

static ssize_t io_result(ep_tls *t, int r)
{
    int e = SSL_get_error(t->ssl, r);
    t->want_write = false;
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return EP_EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->want_write = true;
        return EP_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return EP_ECLOSED;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        return EP_ECLOSED;
    default: {
        unsigned long code = ERR_get_error();
        const char *reason = code ? ERR_reason_error_string(code) : NULL;
        long vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK)
            snprintf(t->error, sizeof(t->error), "client certificate rejected: %s",
                     X509_verify_cert_error_string(vr));
        else
            snprintf(t->error, sizeof(t->error), "%s", reason ? reason : "TLS failure");
        ERR_clear_error();
        return EP_ESECURITY;
    }
    }
}

ssize_t ep_tls_read(ep_tls *t, void *buf, size_t n)
{
    size_t got = 0;
    int r = SSL_read_ex(t->ssl, buf, n, &got);
    if (r == 1) {
        t->want_write = false;
        return (ssize_t)got;
    }
    return io_result(t, r);
}

ssize_t ep_tls_write(ep_tls *t, const void *buf, size_t n)
{
    size_t put = 0;
    int r = SSL_write_ex(t->ssl, buf, n, &put);
    if (r == 1) {
        t->want_write = false;
        return (ssize_t)put;
    }
    return io_result(t, r);
}

size_t ep_tls_pending(const ep_tls *t) { return (size_t)SSL_pending(t->ssl); }
bool ep_tls_want_write(const ep_tls *t) { return t->want_write; }
bool ep_tls_handshake_done(const ep_tls *t) { return SSL_is_init_finished(t->ssl) == 1; }
const char *ep_tls_error(const ep_tls *t) { return t->error; }

bool ep_tls_peer_cn(const ep_tls *t, char *buf, size_t n)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return false;
    return X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, (int)n) > 0;
}

struct stack_st_X509 *ep_tls_peer_chain(const ep_tls *t)
{
    if (SSL_get0_peer_certificate(t->ssl) == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return NULL;
    return SSL_get0_verified_chain(t->ssl);
}

long long ep_tls_peer_not_after(const ep_tls *t)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (cert == NULL)
        return 0;
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
        return 0;
    return (long long)timegm(&tm);
}
