/*
 * tls.c - the generator's TLS client side (OpenSSL 3) on its non-blocking,
 * edge-triggered sockets.
 *
 * One SSL_CTX per run, shared by all worker threads (OpenSSL allows that
 * once it is set up); one SSL per connection, used by its worker only.
 *
 * Edge-triggered epoll needs to know when a call has drained the socket:
 * SSL_ERROR_WANT_READ/WANT_WRITE mean exactly that, so they clear
 * c->readable / c->writable. A read that needs the fd writable (or a write
 * that needs it readable: a TLS 1.3 key update, never seen in practice) sets
 * rd_wants_out / wr_wants_in so that worker.c retries it on the other edge.
 *
 * Read-ahead is on with a 64 KiB buffer: a subscriber then pulls several
 * records per read() instead of one 16 KiB record at a time. conn.c reads
 * until WANT_READ, so nothing stays buffered inside OpenSSL unnoticed.
 *
 * Session resumption is off unless --tls-resume: the client keeps no cache,
 * so every handshake is a full one (what a fleet of devices that reboot
 * costs the broker). With --tls-resume each connector keeps its last
 * session and offers it on the next connect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "svc/bench/bench_int.h"

#define READ_AHEAD_LEN (64u * 1024u)

const char *ep_bench__tls_why(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, n);
    else
        snprintf(buf, n, "%s", errno ? strerror(errno) : "unknown TLS error");
    ERR_clear_error();
    return buf;
}

static int load_files(SSL_CTX *ctx, const ep_bench_opts *o)
{
    char why[256];
    if (o->cafile[0] && SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
        fprintf(stderr, "bench: cannot load --cafile %s: %s\n", o->cafile,
                ep_bench__tls_why(why, sizeof(why)));
        return -1;
    }
    if (!o->cafile[0] && !o->tls_insecure && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        fprintf(stderr, "bench: cannot load the system CA certificates: %s\n",
                ep_bench__tls_why(why, sizeof(why)));
        return -1;
    }
    if (o->certfile[0] && SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1) {
        fprintf(stderr, "bench: cannot load --cert %s: %s\n", o->certfile,
                ep_bench__tls_why(why, sizeof(why)));
        return -1;
    }
    const char *key = o->keyfile[0] ? o->keyfile : o->certfile;
    if (o->certfile[0] && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "bench: cannot load --key %s: %s\n", key,
                ep_bench__tls_why(why, sizeof(why)));
        return -1;
    }
    if (o->ciphers[0] && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
        fprintf(stderr, "bench: no usable cipher in --ciphers %s\n", o->ciphers);
        return -1;
    }
    return 0;
}

int ep_bench__tls_ctx_new(ep_bench_run *r)
{
    const ep_bench_opts *o = &r->o;
    if (!o->tls)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fprintf(stderr, "bench: cannot create a TLS context\n");
        return -1;
    }
    r->tls_ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, o->tls_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, o->tls_version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* A broker that closes after DISCONNECT without close_notify is fine. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (!o->tls_resume)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, READ_AHEAD_LEN);
    SSL_CTX_set_verify(ctx, o->tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    return load_files(ctx, o);
}

void ep_bench__tls_ctx_free(ep_bench_run *r)
{
    SSL_CTX_free(r->tls_ctx);
    r->tls_ctx = NULL;
}

ep_err ep_bench__tls_start(ep_bench_conn *c)
{
    const ep_bench_run *r = c->w->run;
    SSL *ssl = SSL_new(r->tls_ctx);
    if (!ssl)
        return EP_ENOMEM;
    SSL_set_connect_state(ssl);
    if (SSL_set_fd(ssl, c->fd) != 1)
        goto fail;
    if (!r->o.tls_insecure && SSL_set1_host(ssl, r->o.host) != 1)
        goto fail;
    /* SNI carries host names only, never address literals (RFC 6066). */
    unsigned char a[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, r->o.host, a) != 1 && inet_pton(AF_INET6, r->o.host, a) != 1)
        (void)SSL_set_tlsext_host_name(ssl, r->o.host);
    if (c->session && SSL_set_session(ssl, c->session) != 1)
        goto fail;
    c->ssl = ssl;
    return EP_EOK;
fail:
    SSL_free(ssl);
    return EP_ECRYPTO;
}

/* io_result maps a failed SSL call to EP_EAGAIN (and the edge flags), 0 for
 * a clean close, or an error. */
static ssize_t io_result(ep_bench_conn *c, int ret, int reading)
{
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->readable = 0;
        if (!reading)
            c->wr_wants_in = 1;
        return EP_EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->writable = 0;
        if (reading)
            c->rd_wants_out = 1;
        return EP_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == EINTR)
            return EP_EAGAIN; /* flags unchanged: try again */
        return errno ? EP_ERR_FROM_ERRNO() : 0;
    default:
        return EP_ESECURITY;
    }
}

int ep_bench__tls_handshake(ep_bench_conn *c)
{
    ERR_clear_error();
    errno = 0;
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1)
        return 1;
    ssize_t rc = io_result(c, ret, 1);
    c->rd_wants_out = 0; /* the handshake runs again on any edge */
    if (rc == EP_EAGAIN)
        return 0;
    return rc == 0 ? EP_ECLOSED : (int)rc;
}

ssize_t ep_bench__tls_read(ep_bench_conn *c, void *buf, size_t n)
{
    size_t got = 0;
    ERR_clear_error();
    errno = 0;
    if (SSL_read_ex(c->ssl, buf, n, &got) == 1)
        return (ssize_t)got;
    return io_result(c, 0, 1);
}

ssize_t ep_bench__tls_write(ep_bench_conn *c, const void *buf, size_t n)
{
    size_t put = 0;
    ERR_clear_error();
    errno = 0;
    if (SSL_write_ex(c->ssl, buf, n, &put) == 1)
        return (ssize_t)put;
    ssize_t rc = io_result(c, 0, 0);
    return rc == 0 ? EP_ECLOSED : rc;
}

void ep_bench__tls_bye(ep_bench_conn *c, const void *buf, size_t n)
{
    size_t put = 0;
    ERR_clear_error();
    if (SSL_write_ex(c->ssl, buf, n, &put) == 1 && put == n)
        (void)SSL_shutdown(c->ssl); /* close_notify; the reply is not awaited */
    ERR_clear_error();
}

void ep_bench__tls_describe(const ep_bench_conn *c, char *buf, size_t n)
{
    if (!c->ssl) {
        snprintf(buf, n, "off");
        return;
    }
    snprintf(buf, n, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
}

int ep_bench__tls_resumed(const ep_bench_conn *c) { return c->ssl && SSL_session_reused(c->ssl); }

void ep_bench__tls_end(ep_bench_conn *c)
{
    if (!c->ssl)
        return;
    if (c->w && c->w->run->o.tls_resume && SSL_is_init_finished(c->ssl)) {
        /* Freeing a connection that was not shut down marks its session
         * not resumable; the cycle ended as MQTT intends (DISCONNECT, the
         * broker closes), so declare the TLS shutdown done. */
        SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_SESSION *s = SSL_get1_session(c->ssl);
        if (s && SSL_SESSION_is_resumable(s)) {
            SSL_SESSION_free(c->session);
            c->session = s;
        } else {
            SSL_SESSION_free(s);
        }
    }
    SSL_free(c->ssl);
    c->ssl = NULL;
}

void ep_bench__tls_fini(ep_bench_conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
    SSL_SESSION_free(c->session);
    c->session = NULL;
}
