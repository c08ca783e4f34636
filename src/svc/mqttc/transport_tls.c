/*
 * transport_tls.c - the TLS transport of the MQTT client (OpenSSL 3), the
 * client-side counterpart of core/tls.c (which only accepts).
 *
 * One ep_mqttc__tls (an SSL_CTX plus the name to check) is built by
 * ep_mqttc_new from ep_mqttc_tls_options, so a bad file fails there and not
 * at the first connection. Each connection is a TCP connect (shared with
 * transport_tcp.c) followed by SSL_connect on the non-blocking fd: the
 * handshake op reports which direction OpenSSL waits for, and the client
 * calls it again when the fd is ready, so nothing blocks the loop.
 *
 * Errors are kept per connection as one line for the client to report:
 * the verification failure as X509_verify_cert_error_string() gives it
 * (with the host name mismatch said in plain words), an alert from the
 * server (e.g. our certificate refused, which TLS 1.3 reports only on the
 * first read), or the OpenSSL error queue.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sock.h"
#include "svc/mqttc/mqttc_int.h"

struct ep_mqttc__tls {
    SSL_CTX *ctx;
    char name[256]; /* name or address checked in the certificate */
    bool name_is_ip;
    bool insecure;
    char key_pw[1024]; /* pass phrase of the client key, if any */
};

typedef struct tls_conn {
    ep_mqttc__tls *t;
    SSL *ssl;
    int fd;
    bool tcp_done;
    char error[400];
} tls_conn;

/* ---- context ---------------------------------------------------------- */

static void ossl_reason(char *why, size_t n, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    if (why && n)
        snprintf(why, n, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
                 r ? r : "unknown error");
}

static int key_pw_cb(char *buf, int size, int rwflag, void *ud)
{
    (void)rwflag;
    const ep_mqttc__tls *t = ud;
    size_t n = strlen(t->key_pw);
    if (n >= (size_t)size)
        return -1;
    memcpy(buf, t->key_pw, n);
    return (int)n;
}

/* Reads the first line of a pass phrase file into t->key_pw. */
static ep_err read_key_pw(ep_mqttc__tls *t, const char *path, char *why, size_t n)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(why, n, "cannot read key password file %s: %s", path,
                 ep_strerror(EP_ERR_FROM_ERRNO()));
        return EP_ECONFIG;
    }
    size_t len = fread(t->key_pw, 1, sizeof(t->key_pw) - 1, f);
    fclose(f);
    t->key_pw[len] = '\0';
    t->key_pw[strcspn(t->key_pw, "\r\n")] = '\0';
    return EP_EOK;
}

/* OpenSSL says only "system lib" for a missing file: check first. */
static bool readable(const char *path, const char *what, char *why, size_t n)
{
    if (access(path, R_OK) == 0)
        return true;
    snprintf(why, n, "cannot read %s %s: %s", what, path, ep_strerror(EP_ERR_FROM_ERRNO()));
    return false;
}

static ep_err load_files(ep_mqttc__tls *t, const ep_mqttc_tls_options *o, char *why, size_t n)
{
    const char *key = o->key_file ? o->key_file : o->cert_file;
    if ((o->ca_file && !o->insecure && !readable(o->ca_file, "CA file", why, n)) ||
        (o->cert_file && !readable(o->cert_file, "client certificate", why, n)) ||
        (key && !readable(key, "client key", why, n)))
        return EP_ECONFIG;
    if (o->insecure) {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
        int ok = o->ca_file ? SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(t->ctx);
        if (ok != 1) {
            ossl_reason(why, n, o->ca_file ? "cannot load CA file" : "cannot load the system CAs",
                        o->ca_file);
            return EP_ECONFIG;
        }
    }
    if (o->cert_file == NULL)
        return EP_EOK;
    if (o->key_password_file && read_key_pw(t, o->key_password_file, why, n))
        return EP_ECONFIG;
    SSL_CTX_set_default_passwd_cb(t->ctx, key_pw_cb);
    SSL_CTX_set_default_passwd_cb_userdata(t->ctx, t);
    if (SSL_CTX_use_certificate_chain_file(t->ctx, o->cert_file) != 1) {
        ossl_reason(why, n, "cannot load client certificate", o->cert_file);
        return EP_ECONFIG;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
        ossl_reason(why, n, "cannot load client key", key);
        return EP_ECONFIG;
    }
    if (SSL_CTX_check_private_key(t->ctx) != 1) {
        ossl_reason(why, n, "client key does not match the certificate", key);
        return EP_ECONFIG;
    }
    return EP_EOK;
}

ep_err ep_mqttc__tls_new(ep_mqttc__tls **out, const ep_mqttc_tls_options *o, const char *host,
                         char *why, size_t why_len)
{
    char dummy[8];
    if (why == NULL || why_len == 0) {
        why = dummy;
        why_len = sizeof(dummy);
    }
    why[0] = '\0';
    ep_mqttc__tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return EP_ENOMEM;
    const char *name = o->server_name ? o->server_name : host;
    size_t nl = strlen(name);
    if (nl >= 2 && name[0] == '[' && name[nl - 1] == ']') {
        name++;
        nl -= 2;
    }
    if (nl >= sizeof(t->name)) {
        free(t);
        return EP_EINVAL;
    }
    memcpy(t->name, name, nl);
    t->name[nl] = '\0';
    unsigned char addr[16];
    t->name_is_ip =
        inet_pton(AF_INET, t->name, addr) == 1 || inet_pton(AF_INET6, t->name, addr) == 1;
    t->insecure = o->insecure;
    ep_err err = EP_ECONFIG;
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (t->ctx == NULL) {
        ossl_reason(why, why_len, "cannot create a TLS context", NULL);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(t->ctx, o->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
    err = load_files(t, o, why, why_len);
    if (err)
        goto fail;
    *out = t;
    return EP_EOK;
fail:
    ep_mqttc__tls_free(t);
    return err;
}

void ep_mqttc__tls_free(ep_mqttc__tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    memset(t->key_pw, 0, sizeof(t->key_pw));
    free(t);
}

/* ---- connections ------------------------------------------------------ */

static void conn_free(tls_conn *tc)
{
    SSL_free(tc->ssl);
    if (tc->fd >= 0)
        ep_sock_close(tc->fd);
    free(tc);
}

/* Verification of the name, and SNI for a DNS name. */
static bool set_peer_checks(tls_conn *tc)
{
    const ep_mqttc__tls *t = tc->t;
    if (!t->name_is_ip && SSL_set_tlsext_host_name(tc->ssl, t->name) != 1)
        return false;
    if (t->insecure)
        return true;
    X509_VERIFY_PARAM *vp = SSL_get0_param(tc->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (t->name_is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(vp, t->name) == 1;
    return X509_VERIFY_PARAM_set1_host(vp, t->name, 0) == 1;
}

static ep_err tls_open(void *ctx, const char *host, uint16_t port, void **conn, int *fd)
{
    ep_mqttc__tls *t = ctx;
    tls_conn *tc = calloc(1, sizeof(*tc));
    if (tc == NULL)
        return EP_ENOMEM;
    tc->t = t;
    tc->fd = -1;
    ep_err err = ep_mqttc__tcp_connect(host, port, &tc->fd);
    if (err != EP_EOK && err != EP_EAGAIN) {
        free(tc);
        return err;
    }
    tc->ssl = SSL_new(t->ctx);
    if (tc->ssl == NULL || SSL_set_fd(tc->ssl, tc->fd) != 1 || !set_peer_checks(tc)) {
        ERR_clear_error();
        conn_free(tc);
        return EP_ECRYPTO;
    }
    SSL_set_connect_state(tc->ssl);
    *conn = tc;
    *fd = tc->fd;
    return EP_EAGAIN; /* the handshake always follows */
}

/* Records why the TLS session failed, from the verify result or the error
 * queue. Returns the error to report. */
static ep_err record_failure(tls_conn *tc, int ssl_err)
{
    /* Without verification OpenSSL still records a result: ignore it. */
    long vr = tc->t->insecure ? X509_V_OK : SSL_get_verify_result(tc->ssl);
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        snprintf(tc->error, sizeof(tc->error),
                 "host name mismatch: the server certificate is not valid for '%s'", tc->t->name);
    } else if (vr != X509_V_OK) {
        snprintf(tc->error, sizeof(tc->error), "server certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
    } else if (ssl_err == SSL_ERROR_SSL) {
        snprintf(tc->error, sizeof(tc->error), "TLS error: %s", r ? r : "unknown");
    } else {
        /* A close without close_notify: worth a word only mid-handshake. */
        if (!SSL_is_init_finished(tc->ssl))
            snprintf(tc->error, sizeof(tc->error), "connection closed during the TLS handshake");
        return EP_ECLOSED;
    }
    return EP_ESECURITY;
}

static ep_err tls_handshake(void *conn, unsigned *want)
{
    tls_conn *tc = conn;
    if (!tc->tcp_done) {
        ep_err err = ep_sock_connect_result(tc->fd);
        if (err)
            return err;
        tc->tcp_done = true;
    }
    ERR_clear_error();
    int r = SSL_connect(tc->ssl);
    if (r == 1)
        return EP_EOK;
    int e = SSL_get_error(tc->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        *want = EP_IO_READ;
        return EP_EAGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *want = EP_IO_WRITE;
        return EP_EAGAIN;
    }
    return record_failure(tc, e);
}

static ssize_t tls_read(void *conn, void *p, size_t n)
{
    tls_conn *tc = conn;
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(tc->ssl, p, n, &got) == 1)
        return (ssize_t)got;
    int e = SSL_get_error(tc->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return EP_EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN)
        return EP_ECLOSED;
    return record_failure(tc, e);
}

static ssize_t tls_writev(void *conn, const struct iovec *iov, int iovcnt)
{
    tls_conn *tc = conn;
    /* One record per call: the client passes one contiguous buffer. */
    int i = 0;
    while (i < iovcnt && iov[i].iov_len == 0)
        i++;
    if (i == iovcnt)
        return 0;
    size_t put = 0;
    ERR_clear_error();
    if (SSL_write_ex(tc->ssl, iov[i].iov_base, iov[i].iov_len, &put) == 1)
        return (ssize_t)put;
    int e = SSL_get_error(tc->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return EP_EAGAIN;
    return record_failure(tc, e);
}

static void tls_close(void *conn)
{
    tls_conn *tc = conn;
    if (SSL_is_init_finished(tc->ssl))
        SSL_shutdown(tc->ssl); /* best effort close_notify; never waits */
    ERR_clear_error();
    conn_free(tc);
}

static size_t tls_pending(void *conn)
{
    const tls_conn *tc = conn;
    return (size_t)SSL_pending(tc->ssl);
}

static const char *tls_error(void *conn)
{
    const tls_conn *tc = conn;
    return tc->error[0] ? tc->error : NULL;
}

const ep_mqttc_transport_ops ep_mqttc__transport_tls = {
    .name = "tls",
    .open = tls_open,
    .handshake = tls_handshake,
    .read = tls_read,
    .writev = tls_writev,
    .close = tls_close,
    .pending = tls_pending,
    .error = tls_error,
};
