/*
 * broker_persist_bench.c - QoS 1 fan-in into a PERSISTENT subscriber.
 *
 * `edgeplane bench` connects with clean sessions, so against a broker with
 * a data directory it measures nothing of the log: a non-persistent
 * session's messages are never written. This tool does the same fan-in
 * (P publishers -> 1 subscriber, QoS 1, a window of W messages per
 * publisher, 64-byte payloads, MQTT 3.1.1) with a subscriber whose session
 * is persistent (clean session 0), so every message is written to the log
 * (and deleted when acknowledged) and, with durability sync, every PUBACK
 * to a publisher waits for an fdatasync. It works against any broker.
 *
 *   cc -O2 -pthread -o persist_bench tests/integ/broker_persist_bench.c
 *   persist_bench PORT [publishers=10] [window=64] [seconds=10] [warmup=2] [qos=1]
 *
 * With qos 2 the publishers have persistent sessions too (their QoS 2
 * publishes are then routed exactly once across a crash, which delays the
 * first send of each copy until the routing's done mark is on disk) and
 * both sides complete the PUBREC/PUBREL/PUBCOMP exchange.
 *
 * Prints delivered msgs/s over the measured window (after the warmup).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, npub = 10, window = 64, seconds = 10, warmup = 2, qos = 1;
static atomic_ulong delivered, acked;
static atomic_int stop;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("connect");
        exit(3);
    }
    return fd;
}

static void put(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k <= 0) {
            if (!atomic_load(&stop))
                perror("write");
            pthread_exit(NULL);
        }
        c += k;
        n -= (size_t)k;
    }
}

/* CONNECT 3.1.1 with the given client id and clean flag; reads CONNACK. */
static int mqtt_connect(const char *cid, int clean)
{
    int fd = dial();
    uint8_t b[128];
    size_t cl = strlen(cid), n = 0;
    b[n++] = 0x10;
    b[n++] = (uint8_t)(10 + 2 + cl);
    memcpy(b + n, "\0\4MQTT\4", 7);
    n += 7;
    b[n++] = clean ? 0x02 : 0x00;
    b[n++] = 0;
    b[n++] = 60;
    b[n++] = 0;
    b[n++] = (uint8_t)cl;
    memcpy(b + n, cid, cl);
    n += cl;
    put(fd, b, n);
    if (read(fd, b, 4) != 4 || b[0] != 0x20 || b[3] != 0) {
        fprintf(stderr, "CONNACK refused\n");
        exit(3);
    }
    return fd;
}

/* Buffered packet reader: returns the packet type byte, body in *body. */
typedef struct rd {
    int fd;
    uint8_t buf[1 << 16];
    size_t len, off;
} rd;

static int next_packet(rd *r, const uint8_t **body, size_t *blen)
{
    for (;;) {
        size_t avail = r->len - r->off;
        if (avail >= 2) {
            size_t i = 1, rl = 0, mul = 1;
            while (i < avail && i < 5) {
                uint8_t c = r->buf[r->off + i++];
                rl += (c & 127) * mul;
                mul *= 128;
                if (!(c & 128))
                    goto have_len;
            }
            goto more;
        have_len:
            if (avail >= i + rl) {
                int t = r->buf[r->off];
                *body = r->buf + r->off + i;
                *blen = rl;
                r->off += i + rl;
                return t;
            }
        }
    more:
        if (r->off) {
            memmove(r->buf, r->buf + r->off, r->len - r->off);
            r->len -= r->off;
            r->off = 0;
        }
        ssize_t k = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
        if (k <= 0)
            return -1;
        r->len += (size_t)k;
    }
}

static void *subscriber(void *arg)
{
    rd *r = calloc(1, sizeof(*r));
    (void)arg;
    r->fd = mqtt_connect("persist-bench-sub", 0);
    uint8_t sub[] = {0x82, 12, 0, 1, 0, 7, 'b', 'e', 'n', 'c', 'h', '/', '#', (uint8_t)qos};
    put(r->fd, sub, sizeof(sub));
    uint8_t out[8192];
    size_t on = 0;
    for (;;) {
        const uint8_t *b;
        size_t n;
        int t = next_packet(r, &b, &n);
        if (t < 0)
            return NULL;
        if ((t >> 4) == 3) { /* PUBLISH: PUBACK or PUBREC */
            size_t tl = (size_t)b[0] << 8 | b[1];
            out[on++] = ((t >> 1) & 3) == 2 ? 0x50 : 0x40;
            out[on++] = 2;
            out[on++] = b[2 + tl];
            out[on++] = b[3 + tl];
            atomic_fetch_add_explicit(&delivered, 1, memory_order_relaxed);
        } else if ((t >> 4) == 6) { /* PUBREL: PUBCOMP */
            out[on++] = 0x70;
            out[on++] = 2;
            out[on++] = b[0];
            out[on++] = b[1];
        }
        if (on + 4 > sizeof(out) || r->off == r->len) {
            put(r->fd, out, on);
            on = 0;
        }
    }
}

static void *publisher(void *arg)
{
    char cid[32];
    snprintf(cid, sizeof(cid), "persist-bench-pub%d", (int)(intptr_t)arg);
    rd *r = calloc(1, sizeof(*r));
    r->fd = mqtt_connect(cid, qos == 1);
    uint8_t pkt[2 + 2 + 7 + 2 + 64];
    size_t n = 0;
    pkt[n++] = qos == 2 ? 0x34 : 0x32;
    pkt[n++] = 2 + 7 + 2 + 64;
    pkt[n++] = 0;
    pkt[n++] = 7;
    memcpy(pkt + n, "bench/t", 7);
    n += 7;
    size_t pid_at = n;
    n += 2;
    memset(pkt + n, 'x', 64);
    n += 64;
    uint16_t pid = 0;
    int inflight = 0;
    uint8_t out[sizeof(pkt) * 64];
    while (!atomic_load(&stop)) {
        size_t on = 0;
        while (inflight < window && on + n <= sizeof(out)) {
            if (++pid == 0)
                pid = 1;
            pkt[pid_at] = (uint8_t)(pid >> 8);
            pkt[pid_at + 1] = (uint8_t)pid;
            memcpy(out + on, pkt, n);
            on += n;
            inflight++;
        }
        if (on)
            put(r->fd, out, on);
        uint8_t rel[4 * 256];
        size_t rn = 0;
        do {
            const uint8_t *b;
            size_t bl;
            int t = next_packet(r, &b, &bl);
            if (t < 0)
                return NULL;
            if ((t >> 4) == 4 || (t >> 4) == 7) { /* PUBACK, PUBCOMP */
                inflight--;
                atomic_fetch_add_explicit(&acked, 1, memory_order_relaxed);
            } else if ((t >> 4) == 5) { /* PUBREC: PUBREL */
                rel[rn++] = 0x62;
                rel[rn++] = 2;
                rel[rn++] = b[0];
                rel[rn++] = b[1];
            }
            if (rn + 4 > sizeof(rel)) {
                put(r->fd, rel, rn);
                rn = 0;
            }
        } while (r->off < r->len);
        if (rn)
            put(r->fd, rel, rn);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [publishers] [window] [seconds] [warmup] [qos]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    if (argc > 2)
        npub = atoi(argv[2]);
    if (argc > 3)
        window = atoi(argv[3]);
    if (argc > 4)
        seconds = atoi(argv[4]);
    if (argc > 5)
        warmup = atoi(argv[5]);
    if (argc > 6)
        qos = atoi(argv[6]) == 2 ? 2 : 1;
    pthread_t st, pt[256];
    pthread_create(&st, NULL, subscriber, NULL);
    usleep(300000);
    for (int i = 0; i < npub && i < 256; i++)
        pthread_create(&pt[i], NULL, publisher, (void *)(intptr_t)i);
    sleep((unsigned)warmup);
    unsigned long d0 = atomic_load(&delivered), a0 = atomic_load(&acked);
    double t0 = now();
    sleep((unsigned)seconds);
    unsigned long d1 = atomic_load(&delivered), a1 = atomic_load(&acked);
    double t1 = now();
    atomic_store(&stop, 1);
    printf("delivered_per_s %.0f acked_per_s %.0f publishers %d window %d seconds %d qos %d\n",
           (double)(d1 - d0) / (t1 - t0), (double)(a1 - a0) / (t1 - t0), npub, window, seconds,
           qos);
    fflush(stdout);
    _exit(0);
}
