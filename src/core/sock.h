/*
 * sock.h - thin TCP helpers over POSIX sockets (non-blocking, CLOEXEC).
 * Errors are converted at this boundary; errno never leaks to callers.
 */
#ifndef EP_CORE_SOCK_H
#define EP_CORE_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/err.h"

typedef struct ep_hostport {
    char host[256]; /* without brackets for IPv6 */
    uint16_t port;
} ep_hostport;

/* ep_hostport_parse parses "host:port", "[v6]:port" or ":port" (all
 * interfaces). Returns EP_EOK or EP_EINVAL with a reason in *why. */
ep_err ep_hostport_parse(const char *s, ep_hostport *out, const char **why);
/* ep_hostport_format writes "host:port" (brackets for IPv6) into buf. */
void ep_hostport_format(const ep_hostport *hp, char *buf, size_t n);

/* ep_sock_listen binds and listens (SO_REUSEADDR, and SO_REUSEPORT when
 * reuseport is set so several loops can accept on the same port).
 * On success *fd is a non-blocking listening socket. */
ep_err ep_sock_listen(const ep_hostport *hp, int backlog, int reuseport, int *fd);
/* ep_sock_local_port returns the bound port of fd (for port 0 listeners). */
uint16_t ep_sock_local_port(int fd);
/* ep_sock_accept accepts one connection, non-blocking + CLOEXEC + NODELAY.
 * Returns EP_EOK, EP_EAGAIN when none is pending, or another error. */
ep_err ep_sock_accept(int lfd, int *fd, char *peer, size_t peer_len);
/* ep_sock_connect starts a non-blocking connect; EP_EAGAIN means in progress
 * (wait for writability, then ep_sock_connect_result). */
ep_err ep_sock_connect(const ep_hostport *hp, int *fd);
ep_err ep_sock_connect_result(int fd);
/* ep_sock_read/write: >0 bytes moved; EP_EAGAIN would block; EP_ECLOSED on
 * orderly close (read) or reset. */
ssize_t ep_sock_read(int fd, void *p, size_t n);
ssize_t ep_sock_writev(int fd, const struct iovec *iov, int iovcnt);
void ep_sock_close(int fd);

#endif
