/*
 * tls.h - TLS 1.2/1.3 for server connections over non-blocking sockets
 * (OpenSSL 3), independent of any protocol on top.
 *
 * An ep_tls_ctx holds the certificate, key and optional client-CA bundle of
 * one listener. It can be reloaded from its files while connections are
 * open: new connections use the new certificate, established ones keep the
 * one they negotiated (OpenSSL refcounts the underlying SSL_CTX).
 *
 * An ep_tls wraps one accepted fd. The handshake runs inside ep_tls_read
 * (and ep_tls_write), so the caller simply reads when the fd is readable.
 * Both return bytes moved (> 0), EP_EAGAIN (would block: when
 * ep_tls_want_write() is true, wait for writability too), EP_ECLOSED (peer
 * closed), or EP_ESECURITY (handshake or record failure; ep_tls_error()
 * says why). Like every core module this one never logs.
 *
 * Threads: a context may be shared by all threads (reload is locked); one
 * connection is used by one thread at a time (it may move between threads).
 */
#ifndef EP_CORE_TLS_H
#define EP_CORE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

typedef enum ep_tls_verify {
    EP_TLS_VERIFY_NONE = 0,     /* no client certificate asked */
    EP_TLS_VERIFY_OPTIONAL = 1, /* asked; verified against ca_file if sent */
    EP_TLS_VERIFY_REQUIRED = 2, /* a valid client certificate is required */
} ep_tls_verify;

typedef struct ep_tls_opts {
    const char *cert_file; /* PEM certificate (chain) */
    const char *key_file;  /* PEM private key */
    const char *ca_file;   /* PEM CA bundle for client certificates, or NULL */
    ep_tls_verify verify;
    int min_version; /* 0 or 12 = TLS 1.2, 13 = TLS 1.3 */
} ep_tls_opts;

typedef struct ep_tls_ctx ep_tls_ctx;
typedef struct ep_tls ep_tls;

/* ep_tls_ctx_new loads the files named in opts (copied). On failure *why
 * (caller buffer) says which file and what OpenSSL reported.
 * Returns EP_EOK, EP_EINVAL (missing file names), EP_ECRYPTO, EP_ENOMEM. */
ep_err ep_tls_ctx_new(ep_tls_ctx **out, const ep_tls_opts *opts, char *why, size_t why_len);
/* ep_tls_ctx_reload re-reads the files; on failure the old certificate stays
 * in use. Any thread. Errors as ep_tls_ctx_new. */
ep_err ep_tls_ctx_reload(ep_tls_ctx *ctx, char *why, size_t why_len);
/* ep_tls_ctx_changed reports whether a file's mtime changed since the last
 * (re)load, for reload-on-change polling. */
bool ep_tls_ctx_changed(ep_tls_ctx *ctx);
/* ep_tls_ctx_free: after every connection made from it is freed. NULL ok. */
void ep_tls_ctx_free(ep_tls_ctx *ctx);

/* ep_tls_new starts a server-side TLS connection on a connected,
 * non-blocking fd (borrowed: closing it stays the caller's job).
 * Returns EP_EOK or EP_ENOMEM/EP_ECRYPTO. */
ep_err ep_tls_new(ep_tls_ctx *ctx, int fd, ep_tls **out);
void ep_tls_free(ep_tls *t);
ssize_t ep_tls_read(ep_tls *t, void *buf, size_t n);
ssize_t ep_tls_write(ep_tls *t, const void *buf, size_t n);
/* ep_tls_pending: decrypted bytes buffered inside TLS (read them before
 * waiting for the fd again). */
size_t ep_tls_pending(const ep_tls *t);
bool ep_tls_want_write(const ep_tls *t);
bool ep_tls_handshake_done(const ep_tls *t);
/* ep_tls_error: the reason for the last EP_ESECURITY, or "". */
const char *ep_tls_error(const ep_tls *t);
/* ep_tls_peer_cn copies the verified client certificate's subject CN into
 * buf; returns false when there is none. */
bool ep_tls_peer_cn(const ep_tls *t, char *buf, size_t n);
/* ep_tls_peer_not_after returns the client certificate's expiry (Unix
 * seconds), or 0 when there is none. */
long long ep_tls_peer_not_after(const ep_tls *t);
/* ep_tls_peer_chain returns the verified client certificate chain, leaf
 * first and up to the trusted root (OpenSSL STACK_OF(X509), owned by t,
 * valid until t is freed), or NULL when no verified certificate. */
struct stack_st_X509;
struct stack_st_X509 *ep_tls_peer_chain(const ep_tls *t);

#endif
