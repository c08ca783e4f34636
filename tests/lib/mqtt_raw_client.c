/*
 * mqtt_raw_client.c - the raw MQTT 5 test client of mqtt_raw_client.h.
 * Blocking sockets and cmocka assertions keep each test a plain sequence of
 * send/expect steps; framing and decoding go through the project's codec so
 * the tests see exactly what a client built on it would.
 */
#include "mqtt_raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"

int ep_test_mqtt_dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {10, 0};
    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

void ep_test_mqtt_send(int fd, const ep_mqtt_packet *p)
{
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_mqtt_packet_encode(&b, p, EP_MQTT_V5, 0), EP_EOK);
    assert_int_equal(write(fd, ep_buf_head(&b), ep_buf_used(&b)), (ssize_t)ep_buf_used(&b));
    ep_buf_fini(&b);
}

static uint8_t rx[8192];

bool ep_test_mqtt_recv(int fd, ep_mqtt_packet *p)
{
    size_t have = 0, hl, total;
    for (;;) {
        ep_err err = ep_mqtt_packet_frame(rx, have, sizeof(rx), &hl, &total);
        if (err == EP_EOK)
            break;
        assert_int_equal(err, EP_ENEEDMORE);
        ssize_t n = read(fd, rx + have, sizeof(rx) - have);
        if (n <= 0)
            return false;
        have += (size_t)n;
    }
    assert_int_equal(ep_mqtt_packet_decode(rx, total, EP_MQTT_V5, p, NULL), EP_EOK);
    return true;
}

void ep_test_mqtt_send_connect(int fd, const char *client_id, const char *method, const void *data,
                               size_t len)
{
    ep_mqtt_packet p = {.type = EP_MQTT_CONNECT};
    p.connect.protocol_version = EP_MQTT_V5;
    p.connect.clean_start = true;
    p.connect.client_id = ep_mqtt_slice_make(client_id, strlen(client_id));
    p.connect.props.authentication_method = ep_mqtt_slice_make(method, strlen(method));
    EP_MQTT_PROPS_SET(&p.connect.props, EP_MQTT_PROP_AUTHENTICATION_METHOD);
    p.connect.props.authentication_data = ep_mqtt_slice_make(data, len);
    EP_MQTT_PROPS_SET(&p.connect.props, EP_MQTT_PROP_AUTHENTICATION_DATA);
    ep_test_mqtt_send(fd, &p);
}

void ep_test_mqtt_send_auth(int fd, ep_mqtt_rc rc, const char *method, const void *data, size_t len)
{
    ep_mqtt_packet p = {.type = EP_MQTT_AUTH};
    p.auth.rc = rc;
    p.auth.props.authentication_method = ep_mqtt_slice_make(method, strlen(method));
    EP_MQTT_PROPS_SET(&p.auth.props, EP_MQTT_PROP_AUTHENTICATION_METHOD);
    p.auth.props.authentication_data = ep_mqtt_slice_make(data, len);
    EP_MQTT_PROPS_SET(&p.auth.props, EP_MQTT_PROP_AUTHENTICATION_DATA);
    ep_test_mqtt_send(fd, &p);
}
