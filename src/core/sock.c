/* sock.c - see sock.h. */
#include "core/sock.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

ep_err ep_hostport_parse(const char *s, ep_hostport *out, const char **why)
{
    const char *colon;
    size_t hlen;
    const char *h = s;
    if (s == NULL || *s == '\0') {
        *why = "empty address";
        return EP_EINVAL;
    }
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':') {
            *why = "expected [IPv6]:port";
            return EP_EINVAL;
        }
        h = s + 1;
        hlen = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "expected host:port";
            return EP_EINVAL;
        }
        hlen = (size_t)(colon - s);
    }
    if (hlen >= sizeof(out->host)) {
        *why = "host name too long";
        return EP_EINVAL;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        *why = "port must be a number 0..65535";
        return EP_EINVAL;
    }
    memcpy(out->host, h, hlen);
    out->host[hlen] = '\0';
    out->port = (uint16_t)port;
    return EP_EOK;
}

void ep_hostport_format(const ep_hostport *hp, char *buf, size_t n)
{
    if (strchr(hp->host, ':'))
        snprintf(buf, n, "[%s]:%u", hp->host, hp->port);
    else
        snprintf(buf, n, "%s:%u", hp->host[0] ? hp->host : "0.0.0.0", hp->port);
}

static ep_err resolve(const ep_hostport *hp, int passive, struct addrinfo **res)
{
    struct addrinfo hints = {0};
    char port[8];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    snprintf(port, sizeof(port), "%u", hp->port);
    int rc = getaddrinfo(hp->host[0] ? hp->host : NULL, port, &hints, res);
    return rc == 0 ? EP_EOK : EP_ENOTFOUND;
}

ep_err ep_sock_listen(const ep_hostport *hp, int backlog, int reuseport, int *fd)
{
    struct addrinfo *res, *ai;
    ep_err err = resolve(hp, 1, &res);
    if (err)
        return err;
    err = EP_ESYS;
    for (ai = res; ai; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0)
            continue;
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (reuseport)
            setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, backlog) == 0) {
            *fd = s;
            err = EP_EOK;
            break;
        }
        err = EP_ERR_FROM_ERRNO();
        close(s);
    }
    freeaddrinfo(res);
    return err;
}

uint16_t ep_sock_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

ep_err ep_sock_accept(int lfd, int *fd, char *peer, size_t peer_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int s = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? EP_EAGAIN : EP_ERR_FROM_ERRNO();
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (peer && peer_len) {
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
            snprintf(peer, peer_len, "%s:%u", host, port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
            snprintf(peer, peer_len, "[%s]:%u", host, port);
        } else {
            snprintf(peer, peer_len, "?");
        }
    }
    *fd = s;
    return EP_EOK;
}

ep_err ep_sock_connect(const ep_hostport *hp, int *fd)
{
    struct addrinfo *res, *ai;
    ep_err err = resolve(hp, 0, &res);
    if (err)
        return err;
    err = EP_ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0)
            continue;
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0) {
            *fd = s;
            err = EP_EOK;
            break;
        }
        if (errno == EINPROGRESS) {
            *fd = s;
            err = EP_EAGAIN;
            break;
        }
        err = EP_ERR_FROM_ERRNO();
        close(s);
    }
    freeaddrinfo(res);
    return err;
}

ep_err ep_sock_connect_result(int fd)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return EP_ERR_FROM_ERRNO();
    return soerr ? ep_err_from_errno(soerr) : EP_EOK;
}

ssize_t ep_sock_read(int fd, void *p, size_t n)
{
    ssize_t r = read(fd, p, n);
    if (r > 0)
        return r;
    if (r == 0)
        return EP_ECLOSED;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return EP_EAGAIN;
    return EP_ECLOSED;
}

ssize_t ep_sock_writev(int fd, const struct iovec *iov, int iovcnt)
{
    ssize_t r = writev(fd, iov, iovcnt);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return EP_EAGAIN;
    return EP_ECLOSED;
}

void ep_sock_close(int fd)
{
    if (fd >= 0)
        close(fd);
}
