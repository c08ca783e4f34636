/*
 * transport_tcp.c - the plain TCP transport of the MQTT client: a thin
 * adapter from ep_mqttc_transport_ops to core/sock.h. The per-connection
 * state is just the descriptor, so it is stored in the conn pointer itself
 * and nothing is allocated. transport_tls.c reuses the connect step.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/sock.h"
#include "svc/mqttc/mqttc_int.h"

static int conn_fd(void *conn) { return (int)((intptr_t)conn - 1); }

ep_err ep_mqttc__tcp_connect(const char *host, uint16_t port, int *fd)
{
    ep_hostport hp;
    size_t n = strlen(host);
    if (n >= sizeof(hp.host))
        return EP_EINVAL;
    /* Accept "[v6]" as well as a bare address. */
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memcpy(hp.host, host + 1, n - 2);
        hp.host[n - 2] = '\0';
    } else {
        memcpy(hp.host, host, n + 1);
    }
    hp.port = port;
    return ep_sock_connect(&hp, fd);
}

static ep_err tcp_open(void *ctx, const char *host, uint16_t port, void **conn, int *fd)
{
    (void)ctx;
    int s = -1;
    ep_err err = ep_mqttc__tcp_connect(host, port, &s);
    if (err != EP_EOK && err != EP_EAGAIN)
        return err;
    *conn = (void *)(intptr_t)(s + 1); /* NOLINT(performance-no-int-to-ptr): fd+1 */
    *fd = s;
    return err;
}

static ep_err tcp_handshake(void *conn, unsigned *want)
{
    (void)want;
    return ep_sock_connect_result(conn_fd(conn));
}

static ssize_t tcp_read(void *conn, void *p, size_t n) { return ep_sock_read(conn_fd(conn), p, n); }

static ssize_t tcp_writev(void *conn, const struct iovec *iov, int iovcnt)
{
    return ep_sock_writev(conn_fd(conn), iov, iovcnt);
}

static void tcp_close(void *conn) { ep_sock_close(conn_fd(conn)); }

const ep_mqttc_transport_ops ep_mqttc_transport_tcp = {
    .name = "tcp",
    .open = tcp_open,
    .handshake = tcp_handshake,
    .read = tcp_read,
    .writev = tcp_writev,
    .close = tcp_close,
};
