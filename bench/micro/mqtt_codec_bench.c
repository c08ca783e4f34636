/*
 * mqtt_codec_bench.c - MQTT codec microbenchmarks.
 *
 * Prints ns per operation for decode and encode of PUBLISH (3.1.1 and 5 with
 * properties), CONNECT and SUBSCRIBE, the fan-out PUBLISH header fast path,
 * framing, and a linear topic match of one topic against N subscriptions
 * (N = 10 .. 100000; the broker's subscription tree avoids the linear scan,
 * this measures the per-filter matcher cost). Each case runs until it has
 * taken at least the target time; the best of three rounds is reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/mqtt/packet.h"

static double target_s = 0.3;
static volatile uint64_t sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef void (*bench_fn)(void *ctx, uint64_t iters);

/* Returns the best ns/iteration over three rounds. */
static double run(bench_fn fn, void *ctx)
{
    uint64_t iters = 1;
    double best = 1e30;
    for (;;) { /* calibrate */
        double t0 = now_s();
        fn(ctx, iters);
        double dt = now_s() - t0;
        if (dt > target_s / 10 || iters > (UINT64_C(1) << 40))
            break;
        iters *= 4;
    }
    iters = iters * 10 > 1 ? iters * 10 : 1;
    for (int round = 0; round < 3; round++) {
        double t0 = now_s();
        fn(ctx, iters);
        double ns = (now_s() - t0) * 1e9 / (double)iters;
        if (ns < best)
            best = ns;
    }
    return best;
}

/* ---- packets ------------------------------------------------------------ */

typedef struct pkt_case {
    const char *name;
    uint8_t version;
    ep_mqtt_packet pkt;
    uint8_t *bytes;
    size_t len;
    ep_buf buf;
} pkt_case;

static void bench_decode(void *ctx, uint64_t iters)
{
    pkt_case *c = ctx;
    ep_mqtt_packet out;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        ep_err err = ep_mqtt_packet_decode(c->bytes, c->len, c->version, &out, NULL);
        acc += (uint64_t)err + out.type;
    }
    sink += acc;
}

static void bench_encode(void *ctx, uint64_t iters)
{
    pkt_case *c = ctx;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        ep_buf_clear(&c->buf);
        acc += (uint64_t)ep_mqtt_packet_encode(&c->buf, &c->pkt, c->version, 0);
        acc += ep_buf_used(&c->buf);
    }
    sink += acc;
}

static void bench_frame(void *ctx, uint64_t iters)
{
    pkt_case *c = ctx;
    uint64_t acc = 0;
    size_t hl, tl;
    for (uint64_t i = 0; i < iters; i++) {
        acc += (uint64_t)ep_mqtt_packet_frame(c->bytes, c->len, 1u << 20, &hl, &tl);
        acc += tl;
    }
    sink += acc;
}

static void prepare(pkt_case *c)
{
    ep_buf_init(&c->buf, 0);
    if (ep_mqtt_packet_encode(&c->buf, &c->pkt, c->version, 0)) {
        fprintf(stderr, "%s: encode failed\n", c->name);
        exit(1);
    }
    c->len = ep_buf_used(&c->buf);
    c->bytes = malloc(c->len);
    memcpy(c->bytes, ep_buf_head(&c->buf), c->len);
    ep_mqtt_packet check;
    if (ep_mqtt_packet_decode(c->bytes, c->len, c->version, &check, NULL)) {
        fprintf(stderr, "%s: decode failed\n", c->name);
        exit(1);
    }
}

static uint8_t payload[256];

static const ep_mqtt_user_prop users[] = {
    {{(const uint8_t *)"device", 6}, {(const uint8_t *)"press-07", 8}},
    {{(const uint8_t *)"unit", 4}, {(const uint8_t *)"bar", 3}},
    {{(const uint8_t *)"trace", 5}, {(const uint8_t *)"4bf92f3577b34da6", 16}}};

static void make_cases(pkt_case *cs)
{
    memset(cs, 0, 5 * sizeof(*cs));
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)i;

    cs[0].name = "PUBLISH 3.1.1 qos1 64B";
    cs[0].version = 4;
    cs[0].pkt.type = EP_MQTT_PUBLISH;
    cs[0].pkt.publish.qos = 1;
    cs[0].pkt.publish.packet_id = 42;
    cs[0].pkt.publish.topic = EP_MQTT_STR("plant/line3/press7/temperature");
    cs[0].pkt.publish.payload = ep_mqtt_slice_make(payload, 64);

    cs[1] = cs[0];
    cs[1].name = "PUBLISH 5 qos1 64B +props";
    cs[1].version = 5;
    ep_mqtt_props *pr = &cs[1].pkt.publish.props;
    EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
    pr->payload_format_indicator = 1;
    EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    pr->message_expiry_interval = 3600;
    EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_CONTENT_TYPE);
    pr->content_type = EP_MQTT_STR("application/json");
    pr->user = users;
    pr->n_user = 3;

    cs[2].name = "CONNECT 5 will+auth";
    cs[2].version = 5;
    ep_mqtt_connect *c = &cs[2].pkt.connect;
    cs[2].pkt.type = EP_MQTT_CONNECT;
    c->protocol_version = 5;
    c->clean_start = true;
    c->keep_alive = 30;
    c->client_id = EP_MQTT_STR("sensor-gateway-0042");
    c->has_username = c->has_password = c->has_will = true;
    c->username = EP_MQTT_STR("gateway");
    c->password = EP_MQTT_STR("s3cr3t-token-value");
    c->will.topic = EP_MQTT_STR("plant/line3/gateway/status");
    c->will.payload = EP_MQTT_STR("offline");
    c->will.qos = 1;
    c->will.retain = true;
    EP_MQTT_PROPS_SET(&c->props, EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL);
    c->props.session_expiry_interval = 3600;
    EP_MQTT_PROPS_SET(&c->props, EP_MQTT_PROP_RECEIVE_MAXIMUM);
    c->props.receive_maximum = 100;
    EP_MQTT_PROPS_SET(&c->props, EP_MQTT_PROP_MAXIMUM_PACKET_SIZE);
    c->props.maximum_packet_size = 1 << 20;
    c->props.user = users;
    c->props.n_user = 1;

    static const ep_mqtt_sub subs[] = {
        {.filter = {(const uint8_t *)"plant/+/press7/#", 16}, .qos = 1},
        {.filter = {(const uint8_t *)"$share/workers/jobs/+", 21}, .qos = 1},
        {.filter = {(const uint8_t *)"alarms/#", 8}, .qos = 2, .retain_handling = 1}};
    cs[3].name = "SUBSCRIBE 5 3 filters";
    cs[3].version = 5;
    cs[3].pkt.type = EP_MQTT_SUBSCRIBE;
    cs[3].pkt.subscribe.packet_id = 7;
    EP_MQTT_PROPS_SET(&cs[3].pkt.subscribe.props, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
    cs[3].pkt.subscribe.props.subscription_id = 12;
    cs[3].pkt.subscribe.subs = subs;
    cs[3].pkt.subscribe.n_subs = 3;

    cs[4] = cs[3];
    cs[4].name = "SUBSCRIBE 3.1.1 3 filters";
    cs[4].version = 4;
}

/* ---- fan-out fast path -------------------------------------------------- */

typedef struct fan_ctx {
    ep_mqtt_publish_hdr h;
    uint8_t out[512];
} fan_ctx;

static void bench_fanout(void *ctx, uint64_t iters)
{
    fan_ctx *f = ctx;
    uint64_t acc = 0;
    size_t w;
    for (uint64_t i = 0; i < iters; i++) {
        f->h.packet_id = (uint16_t)(i | 1);
        acc +=
            (uint64_t)ep_mqtt_publish_header_write(&f->h, 5, 1u << 20, f->out, sizeof(f->out), &w);
        acc += w;
    }
    sink += acc;
}

/* ---- topic matching ----------------------------------------------------- */

typedef struct match_ctx {
    ep_mqtt_slice *filters;
    char **storage;
    size_t n;
    ep_mqtt_slice topic;
} match_ctx;

static void bench_match(void *ctx, uint64_t iters)
{
    match_ctx *m = ctx;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++)
        for (size_t k = 0; k < m->n; k++)
            acc += ep_mqtt_topic_match(m->filters[k], m->topic);
    sink += acc;
}

/* Filters shaped like an industrial topic tree: site/area/line/cell/signal,
 * a quarter with '+', a tenth ending in '#', the rest exact. */
static void make_filters(match_ctx *m, size_t n, unsigned seed)
{
    m->n = n;
    m->filters = calloc(n, sizeof(*m->filters));
    m->storage = calloc(n, sizeof(*m->storage));
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        char buf[128];
        int len;
        if (r % 10 == 0)
            len = snprintf(buf, sizeof(buf), "site%u/area%u/#", r % 3, (r >> 4) % 8);
        else if (r % 4 == 0)
            len = snprintf(buf, sizeof(buf), "site%u/+/line%u/cell%u/temperature", r % 3,
                           (r >> 4) % 16, (r >> 8) % 32);
        else
            len = snprintf(buf, sizeof(buf), "site%u/area%u/line%u/cell%u/temperature", r % 3,
                           (r >> 4) % 8, (r >> 8) % 16, (r >> 12) % 32);
        m->storage[i] = malloc((size_t)len + 1);
        memcpy(m->storage[i], buf, (size_t)len + 1);
        m->filters[i] = ep_mqtt_slice_make(m->storage[i], (size_t)len);
    }
    m->topic = EP_MQTT_STR("site1/area3/line7/cell12/temperature");
}

static void free_filters(match_ctx *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->storage[i]);
    free(m->storage);
    free(m->filters);
}

typedef struct utf8_ctx {
    ep_mqtt_slice s;
} utf8_ctx;

static void bench_utf8(void *ctx, uint64_t iters)
{
    utf8_ctx *u = ctx;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++)
        acc += (uint64_t)ep_mqtt_utf8_check(u->s);
    sink += acc;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (quick)
        target_s = 0.01;

    pkt_case cs[5];
    make_cases(cs);
    printf("%-28s %7s %12s %12s %12s\n", "packet", "bytes", "frame ns", "decode ns", "encode ns");
    for (int i = 0; i < 5; i++) {
        prepare(&cs[i]);
        double fr = run(bench_frame, &cs[i]);
        double de = run(bench_decode, &cs[i]);
        double en = run(bench_encode, &cs[i]);
        printf("%-28s %7zu %12.1f %12.1f %12.1f\n", cs[i].name, cs[i].len, fr, de, en);
    }

    /* fan-out: forwardable props block from the v5 PUBLISH above */
    ep_mqtt_packet in;
    ep_mqtt_packet_decode(cs[1].bytes, cs[1].len, 5, &in, NULL);
    static uint8_t fwd[256];
    fan_ctx f;
    memset(&f, 0, sizeof(f));
    static const uint32_t ids[] = {17};
    f.h.qos = 1;
    f.h.topic = in.publish.topic;
    f.h.payload_len = in.publish.payload.len;
    f.h.props = ep_mqtt_slice_make(
        fwd, ep_mqtt_props_filter(in.publish.props.raw,
                                  EP_MQTT_PROP_BIT(EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL), fwd));
    f.h.has_message_expiry = true;
    f.h.message_expiry = 3599;
    f.h.sub_ids = ids;
    f.h.n_sub_ids = 1;
    printf("%-28s %7zu %12s %12s %12.1f\n", "PUBLISH 5 fan-out header",
           ep_mqtt_publish_header_size(&f.h, 5), "-", "-", run(bench_fanout, &f));

    utf8_ctx u = {EP_MQTT_STR("plant/line3/press7/temperature/celsius/average-60s")};
    printf("%-28s %7u %12s %12.1f %12s\n", "UTF-8 check (50B topic)", u.s.len, "-",
           run(bench_utf8, &u), "-");

    printf("\n%-12s %16s %16s\n", "subs", "ns/topic", "ns/filter");
    static const size_t counts[] = {10, 100, 1000, 10000, 100000};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        if (quick && counts[i] > 1000)
            break;
        match_ctx m;
        make_filters(&m, counts[i], 7);
        double ns = run(bench_match, &m);
        printf("%-12zu %16.1f %16.2f\n", counts[i], ns, ns / (double)counts[i]);
        free_filters(&m);
    }
    for (int i = 0; i < 5; i++) {
        ep_buf_fini(&cs[i].buf);
        free(cs[i].bytes);
    }
    return sink == 42 ? 1 : 0;
}
