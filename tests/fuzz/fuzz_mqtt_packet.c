/*
 * fuzz_mqtt_packet.c - MQTT framing + decoder, both protocol versions.
 *
 * Input: byte 0 picks the starting version (0 = before CONNECT, 4, 5), the
 * rest is a byte stream framed packet by packet, as a connection would.
 * Every packet that decodes must re-encode, the re-encoded bytes must decode
 * to an equal packet, and encoding that again must give identical bytes
 * (the encoder's output is canonical). PUBLISH packets also go through the
 * fan-out fast path. Any violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mqtt/packet.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void walk(const ep_mqtt_packet *p)
{
    size_t it = 0;
    ep_mqtt_user_prop u;
    uint32_t id;
    const ep_mqtt_props *pr = NULL;
    switch (p->type) {
    case EP_MQTT_PUBLISH:
        pr = &p->publish.props;
        (void)ep_mqtt_payload_check(pr, p->publish.payload, NULL);
        break;
    case EP_MQTT_SUBSCRIBE: {
        ep_mqtt_sub s;
        uint32_t n = 0;
        while (ep_mqtt_subscribe_next(&p->subscribe, &it, &s)) {
            CHECK(ep_mqtt_topic_filter_valid(s.filter));
            n++;
        }
        CHECK(n == p->subscribe.count);
        pr = &p->subscribe.props;
        break;
    }
    case EP_MQTT_UNSUBSCRIBE: {
        ep_mqtt_slice f;
        uint32_t n = 0;
        while (ep_mqtt_unsubscribe_next(&p->unsubscribe, &it, &f))
            n++;
        CHECK(n == p->unsubscribe.count);
        pr = &p->unsubscribe.props;
        break;
    }
    case EP_MQTT_CONNECT:
        pr = &p->connect.props;
        break;
    default:
        return;
    }
    uint32_t n = 0;
    it = 0;
    while (ep_mqtt_props_user_next(pr, &it, &u))
        n++;
    CHECK(n == pr->user_count);
    n = 0;
    it = 0;
    while (ep_mqtt_props_sub_id_next(pr, &it, &id)) {
        CHECK(id >= 1 && id <= EP_MQTT_MAX_SUB_ID);
        n++;
    }
    CHECK(n == pr->sub_id_count);
}

static void fast_path(const ep_mqtt_publish *m, uint8_t version)
{
    static uint8_t fwd[1 << 16], out[1 << 17];
    const uint64_t drop = EP_MQTT_PROP_BIT(EP_MQTT_PROP_TOPIC_ALIAS) |
                          EP_MQTT_PROP_BIT(EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER) |
                          EP_MQTT_PROP_BIT(EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    if (m->props.raw.len > sizeof(fwd))
        return;
    ep_mqtt_publish_hdr h;
    memset(&h, 0, sizeof(h));
    h.qos = m->qos;
    h.dup = m->dup;
    h.retain = m->retain;
    h.topic = m->topic;
    h.packet_id = m->packet_id;
    h.payload_len = m->payload.len;
    h.props = ep_mqtt_slice_make(fwd, ep_mqtt_props_filter(m->props.raw, drop, fwd));
    h.topic_alias = m->props.topic_alias;
    h.has_message_expiry = EP_MQTT_PROPS_HAS(&m->props, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    h.message_expiry = m->props.message_expiry_interval;
    if (version == EP_MQTT_V311 && m->topic.len == 0)
        return;
    size_t hs = ep_mqtt_publish_header_size(&h, version), w = 0;
    CHECK(hs > 0);
    if (hs + m->payload.len > sizeof(out))
        return;
    CHECK(ep_mqtt_publish_header_write(&h, version, 0, out, sizeof(out), &w) == EP_EOK);
    CHECK(w == hs);
    memcpy(out + w, m->payload.p, m->payload.len);
    ep_mqtt_packet q;
    CHECK(ep_mqtt_packet_decode(out, w + m->payload.len, version, &q, NULL) == EP_EOK);
    CHECK(ep_mqtt_slice_eq(q.publish.topic, m->topic));
    CHECK(ep_mqtt_slice_eq(q.publish.payload, m->payload));
    CHECK(q.publish.props.user_count == (version == EP_MQTT_V5 ? m->props.user_count : 0));
}

static void round_trip(const ep_mqtt_packet *p, uint8_t version)
{
    ep_buf a, b;
    ep_buf_init(&a, 0);
    ep_buf_init(&b, 0);
    ep_mqtt_packet q, r;

    CHECK(ep_mqtt_packet_encode(&a, p, version, 0) == EP_EOK);
    size_t hl, tl;
    CHECK(ep_mqtt_packet_frame(ep_buf_head(&a), ep_buf_used(&a), 0, &hl, &tl) == EP_EOK);
    CHECK(tl == ep_buf_used(&a));
    CHECK(ep_mqtt_packet_decode(ep_buf_head(&a), tl, version, &q, NULL) == EP_EOK);
    CHECK(ep_mqtt_packet_eq(p, &q));
    CHECK(ep_mqtt_packet_eq(&q, p));
    CHECK(ep_mqtt_packet_encode(&b, &q, version, 0) == EP_EOK);
    CHECK(ep_buf_used(&a) == ep_buf_used(&b));
    CHECK(memcmp(ep_buf_head(&a), ep_buf_head(&b), ep_buf_used(&a)) == 0);
    CHECK(ep_mqtt_packet_decode(ep_buf_head(&b), ep_buf_used(&b), version, &r, NULL) == EP_EOK);
    CHECK(ep_mqtt_packet_eq(&q, &r));

    /* a limit one byte short must be refused, or met by dropping optional
     * properties, never exceeded */
    ep_buf_clear(&b);
    ep_err err = ep_mqtt_packet_encode(&b, p, version, (uint32_t)tl - 1);
    CHECK(err == EP_ETOOBIG || (err == EP_EOK && ep_buf_used(&b) < tl));

    ep_buf_fini(&a);
    ep_buf_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint8_t versions[] = {0, EP_MQTT_V311, EP_MQTT_V5};
    uint8_t version = versions[data[0] % 3];
    data++;
    size--;

    while (size > 0) {
        size_t hl, tl;
        ep_err err = ep_mqtt_packet_frame(data, size, 1u << 20, &hl, &tl);
        if (err == EP_ENEEDMORE) {
            /* decoding a truncated packet must fail cleanly */
            ep_mqtt_packet p;
            ep_mqtt_rc rc;
            CHECK(ep_mqtt_packet_decode(data, size, version ? version : 5, &p, &rc) != EP_EOK);
            break;
        }
        if (err != EP_EOK)
            break;
        CHECK(hl >= 2 && hl <= 5 && tl >= hl && tl <= size);

        ep_mqtt_packet p;
        ep_mqtt_rc rc = 0xEE;
        err = ep_mqtt_packet_decode(data, tl, version, &p, &rc);
        ep_mqtt_slice name;
        uint8_t level;
        (void)ep_mqtt_connect_peek(data, tl, &name, &level);
        if (err == EP_EOK) {
            CHECK(rc == EP_MQTT_RC_SUCCESS);
            uint8_t v = version;
            if (p.type == EP_MQTT_CONNECT) {
                v = p.connect.protocol_version;
                CHECK(v == EP_MQTT_V311 || v == EP_MQTT_V5);
                if (version == 0)
                    version = v;
            }
            walk(&p);
            round_trip(&p, v);
            if (p.type == EP_MQTT_PUBLISH)
                fast_path(&p.publish, v);
        } else {
            CHECK(rc != EP_MQTT_RC_SUCCESS && ep_mqtt_rc_name(rc) != NULL);
            CHECK(err == EP_EMALFORMED || err == EP_EUTF8 || err == EP_EPROTO ||
                  err == EP_EUNSUPPORTED);
            if (err == EP_EMALFORMED || err == EP_EUTF8)
                CHECK(rc == EP_MQTT_RC_MALFORMED_PACKET);
            /* a connection would be closed here; keep going to cover more */
        }
        data += tl;
        size -= tl;
    }
    return 0;
}
