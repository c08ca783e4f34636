/* e2e_test.c - `edgeplane bench` end to end against an in-process relay.
 *
 * The relay is a deliberately tiny MQTT forwarder built on ep_codec_mqtt
 * (CONNACK, SUBACK, PUBACK, PINGRESP; PUBLISH forwarded to matching
 * subscribers, shared groups round-robin; QoS 0 and 1 only). It can drop or
 * duplicate every Nth message, which checks that the generator's loss and
 * duplicate accounting reports exactly what happened. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/mqtt/packet.h"
#include "core/sock.h"
#include "svc/bench/bench.h"

#define MAXC 512

typedef struct rconn {
    int fd;
    uint8_t version;
    int sub; /* has a subscription */
    int shared;
    char filter[8][160]; /* without any $share/group/ prefix */
    uint32_t nfilters;
    uint8_t sub_qos;
    uint16_t next_id;
    ep_buf in, out;
} rconn;

typedef struct relay {
    int lfd, epfd;
    uint16_t port;
    pthread_t th;
    atomic_int stop;
    rconn *c[MAXC];
    uint32_t drop_every, dup_every;
    uint64_t seen, dropped, duplicated;
    uint32_t rr;
} relay;

static void arm(relay *r, rconn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | (ep_buf_used(&c->out) ? EPOLLOUT : 0u),
                             .data.ptr = c};
    epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush(relay *r, rconn *c)
{
    while (ep_buf_used(&c->out)) {
        ssize_t n = send(c->fd, ep_buf_head(&c->out), ep_buf_used(&c->out), MSG_NOSIGNAL);
        if (n <= 0)
            break;
        ep_buf_consume(&c->out, (size_t)n);
    }
    arm(r, c);
}

static void drop_conn(relay *r, rconn *c)
{
    for (int i = 0; i < MAXC; i++)
        if (r->c[i] == c)
            r->c[i] = NULL;
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    ep_buf_fini(&c->in);
    ep_buf_fini(&c->out);
    free(c);
}

static void forward(relay *r, rconn *to, const ep_mqtt_publish *p)
{
    uint8_t hdr[512];
    size_t hl = 0;
    ep_mqtt_publish_hdr h;
    memset(&h, 0, sizeof(h));
    h.qos = p->qos < to->sub_qos ? p->qos : to->sub_qos;
    h.topic = p->topic;
    h.payload_len = p->payload.len;
    if (h.qos) {
        if (++to->next_id == 0)
            to->next_id = 1;
        h.packet_id = to->next_id;
    }
    assert_int_equal(ep_mqtt_publish_header_write(&h, to->version, 0, hdr, sizeof(hdr), &hl),
                     EP_EOK);
    assert_int_equal(ep_buf_append(&to->out, hdr, hl), EP_EOK);
    assert_int_equal(ep_buf_append(&to->out, p->payload.p, p->payload.len), EP_EOK);
}

static void on_publish(relay *r, rconn *from, const ep_mqtt_publish *p)
{
    if (p->qos == 1) {
        ep_mqtt_packet a;
        memset(&a, 0, sizeof(a));
        a.type = EP_MQTT_PUBACK;
        a.ack.packet_id = p->packet_id;
        assert_int_equal(ep_mqtt_packet_encode(&from->out, &a, from->version, 0), EP_EOK);
    }
    r->seen++;
    if (r->drop_every && r->seen % r->drop_every == 0) {
        r->dropped++;
        return;
    }
    int copies = r->dup_every && r->seen % r->dup_every == 0 ? 2 : 1;
    r->duplicated += (uint64_t)(copies - 1);
    rconn *shared[MAXC];
    uint32_t ns = 0;
    for (int i = 0; i < MAXC; i++) {
        rconn *c = r->c[i];
        if (!c || !c->sub)
            continue;
        int match = 0;
        for (uint32_t k = 0; k < c->nfilters && !match; k++)
            match = ep_mqtt_topic_match(ep_mqtt_slice_make(c->filter[k], strlen(c->filter[k])),
                                        p->topic);
        if (!match)
            continue;
        if (c->shared) {
            shared[ns++] = c;
            continue;
        }
        for (int k = 0; k < copies; k++)
            forward(r, c, p);
    }
    if (ns) {
        /* a duplicate goes to the next member of the group */
        for (int k = 0; k < copies; k++)
            forward(r, shared[(r->rr + (uint32_t)k) % ns], p);
        r->rr++;
    }
}

static int on_packet(relay *r, rconn *c, const uint8_t *pkt, size_t len)
{
    ep_mqtt_packet p, a;
    if (ep_mqtt_packet_decode(pkt, len, c->version, &p, NULL) != EP_EOK)
        return -1;
    memset(&a, 0, sizeof(a));
    switch (p.type) {
    case EP_MQTT_CONNECT:
        c->version = p.connect.protocol_version;
        a.type = EP_MQTT_CONNACK;
        return ep_mqtt_packet_encode(&c->out, &a, c->version, 0) == EP_EOK ? 0 : -1;
    case EP_MQTT_SUBSCRIBE: {
        size_t it = 0;
        ep_mqtt_sub s;
        uint8_t codes[64];
        uint32_t n = 0;
        while (ep_mqtt_subscribe_next(&p.subscribe, &it, &s) && n < 64) {
            if (c->nfilters < 8)
                snprintf(c->filter[c->nfilters++], sizeof(c->filter[0]), "%.*s",
                         (int)s.share_filter.len, (const char *)s.share_filter.p);
            c->shared = s.share_group.p != NULL;
            c->sub_qos = s.qos;
            codes[n++] = s.qos;
        }
        c->sub = 1;
        a.type = EP_MQTT_SUBACK;
        a.suback.packet_id = p.subscribe.packet_id;
        a.suback.codes = ep_mqtt_slice_make(codes, n);
        return ep_mqtt_packet_encode(&c->out, &a, c->version, 0) == EP_EOK ? 0 : -1;
    }
    case EP_MQTT_PUBLISH:
        on_publish(r, c, &p.publish);
        return 0;
    case EP_MQTT_PINGREQ:
        a.type = EP_MQTT_PINGRESP;
        return ep_mqtt_packet_encode(&c->out, &a, c->version, 0) == EP_EOK ? 0 : -1;
    case EP_MQTT_PUBACK:
        return 0;
    default:
        return -1; /* DISCONNECT and anything else: close */
    }
}

static void *relay_main(void *arg)
{
    relay *r = arg;
    struct epoll_event evs[64];
    while (!atomic_load(&r->stop)) {
        int n = epoll_wait(r->epfd, evs, 64, 20);
        for (int i = 0; i < n; i++) {
            rconn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while (ep_sock_accept(r->lfd, &fd, NULL, 0) == EP_EOK) {
                    rconn *nc = calloc(1, sizeof(*nc));
                    int slot = -1;
                    for (int k = 0; k < MAXC && slot < 0; k++)
                        if (!r->c[k])
                            slot = k;
                    if (!nc || slot < 0) {
                        free(nc);
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    r->c[slot] = nc;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT)
                flush(r, c);
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            if (ep_buf_reserve(&c->in, 65536) != EP_EOK) {
                drop_conn(r, c);
                continue;
            }
            ssize_t got = read(c->fd, ep_buf_tail(&c->in), ep_buf_room(&c->in));
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN)
                    continue;
                drop_conn(r, c);
                continue;
            }
            c->in.len += (size_t)got;
            int bad = 0;
            for (;;) {
                size_t hl, tl;
                ep_err e =
                    ep_mqtt_packet_frame(ep_buf_head(&c->in), ep_buf_used(&c->in), 0, &hl, &tl);
                if (e == EP_ENEEDMORE)
                    break;
                if (e || on_packet(r, c, ep_buf_head(&c->in), tl) < 0) {
                    bad = 1;
                    break;
                }
                ep_buf_consume(&c->in, tl);
            }
            if (bad) {
                drop_conn(r, c);
                continue;
            }
            for (int k = 0; k < MAXC; k++)
                if (r->c[k] && ep_buf_used(&r->c[k]->out))
                    flush(r, r->c[k]);
        }
    }
    for (int k = 0; k < MAXC; k++)
        if (r->c[k])
            drop_conn(r, r->c[k]);
    return NULL;
}

static relay *relay_start(uint32_t drop_every, uint32_t dup_every)
{
    relay *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->drop_every = drop_every;
    r->dup_every = dup_every;
    ep_hostport hp;
    const char *why = NULL;
    assert_int_equal(ep_hostport_parse("127.0.0.1:0", &hp, &why), EP_EOK);
    assert_int_equal(ep_sock_listen(&hp, 512, 0, &r->lfd), EP_EOK);
    r->port = ep_sock_local_port(r->lfd);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_true(r->epfd >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    assert_int_equal(epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->lfd, &ev), 0);
    assert_int_equal(pthread_create(&r->th, NULL, relay_main, r), 0);
    return r;
}

static void relay_stop(relay *r)
{
    atomic_store(&r->stop, 1);
    pthread_join(r->th, NULL);
    close(r->lfd);
    close(r->epfd);
    free(r);
}

/* run_bench runs `bench ARGS --port PORT --json` with stdout captured into
 * out (NUL-terminated). Returns the exit status. */
static int run_bench(uint16_t port, const char *args, char *out, size_t cap)
{
    char line[512], *argv[48];
    int argc = 0;
    snprintf(line, sizeof(line), "bench --port %u --json --threads 2 %s", (unsigned)port, args);
    for (char *t = strtok(line, " "); t && argc < 47; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    char path[] = "/tmp/ep-bench-e2e-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    int rc = ep_bench_main(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    ssize_t n = pread(fd, out, cap - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    fprintf(stderr, "  bench %s\n  -> %s", args, out);
    return rc;
}

static double field(const char *json, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":", name);
    const char *p = strstr(json, key);
    assert_non_null(p);
    return strtod(p + strlen(key), NULL);
}

static void expect_clean(const char *out)
{
    assert_true(field(out, "delivered") > 0);
    assert_true(field(out, "lost") == 0);
    assert_true(field(out, "duplicated") == 0);
    assert_true(field(out, "out_of_order") == 0);
    assert_true(field(out, "foreign") == 0);
    assert_true(field(out, "received_total") == field(out, "expected"));
}

static void test_scenarios_clean(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "--scenario fan-in --publishers 3 --subscribers 2 --rate 3000 --duration 0.4 --warmup 0.1",
        ("--scenario fan-in --publishers 4 --subscribers 1 --topics 2 --qos 1 --inflight 8 "
         "--duration 0.3 --warmup 0.1 --mqtt-version 3"),
        "--scenario fan-out --subscribers 20 --rate 2000 --duration 0.3 --warmup 0.1",
        "--scenario p2p --publishers 8 --qos 1 --rate 4000 --duration 0.3 --warmup 0.1",
        "--scenario shared --publishers 3 --subscribers 3 --rate 3000 --duration 0.3 --warmup 0.1",
        "--scenario fan-in --publishers 2 --subscribers 1 --duration 0.3 --warmup 0.1 --size 3000",
    };
    char out[4096];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        relay *r = relay_start(0, 0);
        assert_int_equal(run_bench(r->port, cases[i], out, sizeof(out)), 0);
        expect_clean(out);
        relay_stop(r);
    }
}

static void test_paced_rate_is_kept(void **state)
{
    (void)state;
    char out[4096];
    relay *r = relay_start(0, 0);
    assert_int_equal(run_bench(r->port, "--publishers 5 --rate 5000 --duration 1 --warmup 0.2", out,
                               sizeof(out)),
                     0);
    /* Every message scheduled inside the window is counted there. */
    assert_true(field(out, "sent") >= 4990 && field(out, "sent") <= 5010);
    expect_clean(out);
    /* Latency from the actual send time leaves out the generator's own
     * lateness: never more than from the scheduled time, and measured. */
    assert_true(field(out, "latency_sent_p50_us") > 0);
    assert_true(field(out, "latency_sent_p50_us") <= field(out, "latency_p50_us"));
    assert_true(field(out, "latency_sent_p99_us") <= field(out, "latency_p99_us"));
    assert_true(field(out, "latency_sent_max_us") <= field(out, "latency_max_us"));
    /* Busy-polling between sends keeps the same schedule. */
    assert_int_equal(run_bench(r->port,
                               "--publishers 5 --rate 5000 --duration 1 --warmup 0.2 --spin-us 200",
                               out, sizeof(out)),
                     0);
    assert_true(field(out, "sent") >= 4990 && field(out, "sent") <= 5010);
    expect_clean(out);
    relay_stop(r);
}

static void test_loss_and_duplicates_are_counted(void **state)
{
    (void)state;
    char out[4096];
    relay *r = relay_start(7, 0);
    assert_int_equal(run_bench(r->port,
                               "--publishers 2 --subscribers 1 --rate 4000 --duration 0.3 "
                               "--warmup 0.1 --drain 2",
                               out, sizeof(out)),
                     0);
    assert_true(r->dropped > 0);
    assert_true(field(out, "lost") == (double)r->dropped);
    assert_true(field(out, "duplicated") == 0);
    relay_stop(r);

    r = relay_start(0, 5);
    assert_int_equal(run_bench(r->port,
                               "--publishers 2 --subscribers 2 --rate 4000 --duration 0.3 "
                               "--warmup 0.1",
                               out, sizeof(out)),
                     0);
    assert_true(r->duplicated > 0);
    assert_true(field(out, "duplicated") == (double)(r->duplicated * 2));
    assert_true(field(out, "lost") == 0);
    relay_stop(r);

    /* Shared group: a second copy on another member is a duplicate too. */
    r = relay_start(0, 4);
    assert_int_equal(run_bench(r->port,
                               "--scenario shared --publishers 2 --subscribers 3 --rate 4000 "
                               "--duration 0.3 --warmup 0.1",
                               out, sizeof(out)),
                     0);
    assert_true(field(out, "duplicated") == (double)r->duplicated);
    assert_true(field(out, "lost") == 0);
    relay_stop(r);
}

static void test_idle_and_refused(void **state)
{
    (void)state;
    char out[4096], args[128];
    relay *r = relay_start(0, 0);
    snprintf(args, sizeof(args), "--connections 200 --duration 0.1 --broker-pid %d", (int)getpid());
    assert_int_equal(run_bench(r->port, args, out, sizeof(out)), 0);
    assert_true(field(out, "connections") == 200);
    assert_true(field(out, "rss_after_kb") > 0);
    uint16_t port = r->port;
    relay_stop(r);
    /* Nobody listens any more: exit status 3 and a message. */
    assert_int_equal(run_bench(port, "--duration 0.2", out, sizeof(out)), 3);
}

static void test_handshake_cycles(void **state)
{
    (void)state;
    char out[4096];
    relay *r = relay_start(0, 0);
    /* Closed loop: every connector cycles as fast as the relay answers. */
    assert_int_equal(run_bench(r->port,
                               "--scenario handshake --connectors 4 --duration 0.5 "
                               "--warmup 0.1",
                               out, sizeof(out)),
                     0);
    assert_true(field(out, "handshakes") > 20);
    assert_true(field(out, "errors") == 0);
    assert_true(field(out, "handshake_p50_us") > 0);
    assert_true(field(out, "handshake_p99_us") >= field(out, "handshake_p50_us"));
    /* Open loop: the schedule sets the rate. */
    assert_int_equal(run_bench(r->port,
                               "--scenario handshake --connectors 8 --rate 400 "
                               "--duration 1 --warmup 0.2",
                               out, sizeof(out)),
                     0);
    assert_true(field(out, "handshakes") >= 200 && field(out, "handshakes") <= 410);
    assert_true(field(out, "errors") == 0);
    /* TLS against a plain-TCP peer: the handshake fails, reported as a
     * broker that refused us. */
    assert_int_equal(run_bench(r->port,
                               "--scenario handshake --connectors 2 --duration 0.2 "
                               "--insecure",
                               out, sizeof(out)),
                     3);
    relay_stop(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenarios_clean),
        cmocka_unit_test(test_paced_rate_is_kept),
        cmocka_unit_test(test_loss_and_duplicates_are_counted),
        cmocka_unit_test(test_idle_and_refused),
        cmocka_unit_test(test_handshake_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
