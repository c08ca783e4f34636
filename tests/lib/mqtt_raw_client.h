/*
 * mqtt_raw_client.h - a blocking raw MQTT 5 client for C tests of the
 * broker (unit tests under src/ and integration tests under tests/integ):
 * dial the broker on loopback, send one packet encoded by the project's
 * codec, read and decode one packet. It owns nothing but one static receive
 * buffer.
 *
 * Every failure is a cmocka assertion, so these functions are called only
 * from inside a running cmocka test, on the test's thread.
 */
#ifndef EP_TESTS_LIB_MQTT_RAW_CLIENT_H
#define EP_TESTS_LIB_MQTT_RAW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/mqtt/packet.h"

/* ep_test_mqtt_dial connects to 127.0.0.1:port with a 10 s receive
 * timeout and returns the socket; the caller closes it. */
int ep_test_mqtt_dial(uint16_t port);

/* ep_test_mqtt_send encodes p (borrowed) as MQTT 5 and writes it whole. */
void ep_test_mqtt_send(int fd, const ep_mqtt_packet *p);

/* ep_test_mqtt_recv reads exactly one packet and decodes it into *p.
 * Returns false on EOF, a read error or the receive timeout. The slices in
 * *p point into the static receive buffer and are valid until the next
 * call. Bytes read past the packet's end are dropped, which is safe only
 * because the tests using it are lockstep (one request, one reply). */
bool ep_test_mqtt_recv(int fd, ep_mqtt_packet *p);

/* ep_test_mqtt_send_connect sends a clean-start MQTT 5 CONNECT for
 * client_id carrying the enhanced-authentication method and its first data
 * (data[0..len), borrowed). */
void ep_test_mqtt_send_connect(int fd, const char *client_id, const char *method, const void *data,
                               size_t len);

/* ep_test_mqtt_send_auth sends an AUTH with reason code rc carrying method
 * and data[0..len) (borrowed). */
void ep_test_mqtt_send_auth(int fd, ep_mqtt_rc rc, const char *method, const void *data,
                            size_t len);

#endif
