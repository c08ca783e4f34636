/*
 * wire.c - the generator's MQTT output, built with ep_codec_mqtt.
 *
 * Control packets (CONNECT, SUBSCRIBE, acks, PINGREQ, DISCONNECT) go through
 * ep_mqtt_packet_encode. PUBLISH uses the codec's header fast path
 * (ep_mqtt_publish_header_write): the generator writes the header in front
 * of a payload it fills in place, which is what lets it build hundreds of
 * thousands of messages per second per thread in one contiguous buffer.
 * Inbound bytes are framed and decoded by ep_mqtt_packet_frame/_decode in
 * conn.c.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/bench/bench_int.h"

ep_err ep_bench__wire_connect(ep_buf *out, const ep_bench_run *r, const char *client_id)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_CONNECT;
    p.connect.protocol_version = r->o.version;
    p.connect.clean_start = true;
    p.connect.keep_alive = r->o.keepalive;
    p.connect.client_id = ep_mqtt_slice_make(client_id, strlen(client_id));
    if (r->o.version == EP_MQTT_V5) {
        /* Let the broker push as much as it will: the subscriber side must
         * never be what limits a QoS 1/2 run. */
        p.connect.props.receive_maximum = 65535;
        EP_MQTT_PROPS_SET(&p.connect.props, EP_MQTT_PROP_RECEIVE_MAXIMUM);
    }
    return ep_mqtt_packet_encode(out, &p, r->o.version, 0);
}

ep_err ep_bench__wire_subscribe(ep_buf *out, const ep_bench_run *r, const char *const *filters,
                                uint32_t n, uint16_t packet_id)
{
    ep_err err = EP_EOK;
    ep_mqtt_sub *subs = calloc(n, sizeof(*subs));
    if (!subs)
        return EP_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        subs[i].filter = ep_mqtt_slice_make(filters[i], strlen(filters[i]));
        subs[i].qos = r->o.qos;
    }
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_SUBSCRIBE;
    p.subscribe.packet_id = packet_id;
    p.subscribe.subs = subs;
    p.subscribe.n_subs = n;
    err = ep_mqtt_packet_encode(out, &p, r->o.version, 0);
    free(subs);
    return err;
}

ep_err ep_bench__wire_ack(ep_buf *out, uint8_t version, ep_mqtt_type type, uint16_t packet_id)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = type;
    p.ack.packet_id = packet_id;
    return ep_mqtt_packet_encode(out, &p, version, 0);
}

ep_err ep_bench__wire_pingreq(ep_buf *out, uint8_t version)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_PINGREQ;
    return ep_mqtt_packet_encode(out, &p, version, 0);
}

ep_err ep_bench__wire_disconnect(ep_buf *out, uint8_t version)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_DISCONNECT;
    return ep_mqtt_packet_encode(out, &p, version, 0);
}

ep_err ep_bench__wire_publish_hdr(uint8_t *out, size_t cap, size_t *len, uint8_t version,
                                  uint8_t qos, ep_mqtt_slice topic, uint16_t packet_id,
                                  uint32_t payload_len)
{
    ep_mqtt_publish_hdr h;
    memset(&h, 0, sizeof(h));
    h.qos = qos;
    h.topic = topic;
    h.packet_id = packet_id;
    h.payload_len = payload_len;
    return ep_mqtt_publish_header_write(&h, version, 0, out, cap, len);
}
