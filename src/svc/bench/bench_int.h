/*
 * bench_int.h - internal types of the load generator (not for other modules).
 *
 * Layout of the module:
 *   opts.c    command line -> ep_bench_opts
 *   hist.c    log-bucketed latency histogram (HDR-like, mergeable)
 *   track.c   per-(subscriber, publisher) stream: loss, duplicates, order
 *   wire.c    every MQTT byte in or out goes through ep_codec_mqtt here
 *   tls.c     optional TLS client side of every connection (OpenSSL 3)
 *   conn.c    one connection: connect, read+parse, generate+write
 *   cycle.c   handshake scenario: connect, CONNACK, DISCONNECT, repeat
 *   worker.c  one thread: edge-triggered epoll loop, pacing timer
 *   run.c     ep_bench_main: plan, start workers, phases, merge, report
 *   report.c  human table and one-line JSON
 *
 * Threads: the main thread owns ep_bench_run and only reads worker state
 * through the relaxed atomic counters in ep_bench_worker.live until the
 * workers are joined; afterwards it reads everything.
 */
#ifndef EP_SVC_BENCH_BENCH_INT_H
#define EP_SVC_BENCH_BENCH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "codec/mqtt/packet.h"
#include "core/buf.h"
#include "core/err.h"

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

typedef enum ep_bench_scenario {
    EP_BENCH_FAN_IN = 0, /* P publishers -> S subscribers, 1 or K topics */
    EP_BENCH_FAN_OUT,    /* 1 publisher -> N subscribers */
    EP_BENCH_P2P,        /* N pairs, each on its own topic */
    EP_BENCH_SHARED,     /* P publishers -> N members of $share/g/... */
    EP_BENCH_IDLE,       /* --connections C: open, hold, report memory */
    EP_BENCH_HANDSHAKE,  /* N connectors: connect, CONNACK, DISCONNECT, repeat */
} ep_bench_scenario;

/* Topic names stay below this, so a PUBLISH header fits EP_BENCH_MAX_HDR. */
#define EP_BENCH_MAX_TOPIC 200u
#define EP_BENCH_MAX_HDR 256u

/* Smallest payload: publisher id (4) + sequence (4) + send time ns (8). */
#define EP_BENCH_MIN_SIZE 16u

typedef struct ep_bench_opts {
    char host[256];
    uint16_t port;
    ep_bench_scenario scenario;
    uint8_t qos;
    uint8_t version; /* EP_MQTT_V311 or EP_MQTT_V5 */
    uint32_t size;   /* payload bytes, >= EP_BENCH_MIN_SIZE */
    uint32_t publishers;
    uint32_t subscribers;
    uint32_t topics;   /* fan-in: publishers spread over this many topics */
    double rate;       /* total msgs/s, 0 = as fast as possible */
    double duration;   /* measured seconds */
    double warmup;     /* seconds before measuring */
    double drain;      /* max seconds to wait for stragglers after the end */
    uint32_t inflight; /* QoS 1/2 window per publisher */
    uint32_t threads;
    uint32_t connections; /* idle scenario */
    uint32_t batch;       /* bytes generated per write */
    uint16_t keepalive;   /* seconds, 0 = off */
    uint32_t spin_us;     /* busy-poll when the next paced send is this close */
    int broker_pid;       /* idle: sample this process's RSS (0 = don't) */
    int json;
    char prefix[64];     /* topic prefix, unique per run by default */
    uint32_t connectors; /* handshake scenario: concurrent connectors */

    /* TLS: on with --tls or any option below (tls.c) */
    int tls;
    int tls_insecure; /* do not verify the broker's certificate */
    int tls_resume;   /* offer each connector's previous session */
    int tls_version;  /* 0 = 1.2 or 1.3, 12 = 1.2 only, 13 = 1.3 only */
    char cafile[256];
    char certfile[256];
    char keyfile[256];
    char ciphers[256]; /* TLS 1.2 cipher list, "" = OpenSSL default */
} ep_bench_opts;

/* ep_bench__opts_parse fills *o from argv (argv[0] = "bench").
 * Returns 0 on success, 1 when --help was printed, -1 on a usage error (the
 * message has been written to stderr). */
int ep_bench__opts_parse(int argc, char **argv, ep_bench_opts *o);
const char *ep_bench__scenario_name(ep_bench_scenario s);

/* ------------------------------------------------------------------------ */
/* Histogram (hist.c)                                                        */

/* 128 sub-buckets per power of two: every recorded value is reported within
 * 1/128 (0.8 %) of its true value; 0 .. 2^64-1 ns in 7424 buckets. */
#define EP_BENCH_HIST_SUB_BITS 7u
#define EP_BENCH_HIST_BUCKETS ((64u - EP_BENCH_HIST_SUB_BITS + 1u) << EP_BENCH_HIST_SUB_BITS)

typedef struct ep_bench_hist {
    uint64_t count;
    uint64_t max;
    uint64_t min;
    double sum;
    uint64_t b[EP_BENCH_HIST_BUCKETS];
} ep_bench_hist;

void ep_bench__hist_clear(ep_bench_hist *h);
uint32_t ep_bench__hist_index(uint64_t v);
/* ep_bench__hist_highest returns the largest value that maps to bucket i. */
uint64_t ep_bench__hist_highest(uint32_t i);
void ep_bench__hist_merge(ep_bench_hist *dst, const ep_bench_hist *src);
/* ep_bench__hist_quantile returns the value at quantile q (0..1), reported
 * as its bucket's upper bound but never above the recorded maximum; 0 when
 * the histogram is empty. */
uint64_t ep_bench__hist_quantile(const ep_bench_hist *h, double q);

static inline void ep_bench__hist_add(ep_bench_hist *h, uint64_t v)
{
    h->b[ep_bench__hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
    if (v < h->min)
        h->min = v;
}

/* ------------------------------------------------------------------------ */
/* Streams (track.c)                                                         */

/* Sequence numbers older than this behind the newest one seen cannot be
 * classified as duplicate or late; they count as out of order. */
#define EP_BENCH_WIN_BITS 1024u

typedef struct ep_bench_stream {
    uint32_t next; /* newest sequence seen + 1; 0 = none yet */
    uint32_t _pad;
    uint64_t unique; /* distinct sequences received */
    uint64_t dup;    /* received again */
    uint64_t ooo;    /* arrived after a newer one */
    uint64_t win[EP_BENCH_WIN_BITS / 64u];
} ep_bench_stream;

/* ep_bench__stream_see records one received sequence number. */
void ep_bench__stream_see(ep_bench_stream *s, uint32_t seq);

/* ------------------------------------------------------------------------ */
/* Connections and workers                                                   */

typedef enum ep_bench_role {
    EP_BENCH_ROLE_PUB = 0,
    EP_BENCH_ROLE_SUB,
    EP_BENCH_ROLE_IDLE,
    EP_BENCH_ROLE_HS, /* handshake scenario connector */
} ep_bench_role;

typedef enum ep_bench_state {
    EP_BENCH_ST_NEW = 0, /* not opened yet */
    EP_BENCH_ST_TCP,     /* TCP connect in progress */
    EP_BENCH_ST_TLS,     /* TLS handshake in progress */
    EP_BENCH_ST_CONNACK, /* CONNECT sent */
    EP_BENCH_ST_SUBACK,  /* SUBSCRIBE sent */
    EP_BENCH_ST_READY,
    EP_BENCH_ST_BYE, /* handshake connector: DISCONNECT sent, wait for EOF */
    EP_BENCH_ST_CLOSED,
} ep_bench_state;

typedef struct ep_bench_worker ep_bench_worker;

typedef struct ep_bench_conn {
    int fd;
    uint8_t role;
    uint8_t state;
    uint8_t readable;               /* edge seen, not yet read to exhaustion */
    uint8_t writable;               /* edge seen, no EAGAIN since */
    uint8_t in_ready;               /* on the worker's ready list */
    uint8_t rdhup;                  /* peer shut down its side: read until EOF */
    uint8_t rd_wants_out;           /* TLS read needs the fd writable first */
    uint8_t wr_wants_in;            /* TLS write needs the fd readable first */
    uint32_t index;                 /* global publisher / subscriber / idle index */
    struct ssl_st *ssl;             /* TLS session on fd, or NULL */
    struct ssl_session_st *session; /* --tls-resume: last session */
    uint64_t cycle_t0;              /* handshake: when this cycle was due to start */
    ep_bench_worker *w;
    ep_buf out;   /* bytes not yet written */
    ep_buf carry; /* start of an incomplete inbound packet */
    uint64_t last_tx_ns;

    /* publisher */
    ep_mqtt_slice topic;
    uint8_t hdr[EP_BENCH_MAX_HDR]; /* encoded QoS 0 header (fixed for the run) */
    uint32_t hdr_len;
    uint32_t seq;    /* next sequence number = messages generated */
    uint32_t window; /* effective QoS 1/2 window */
    uint32_t inflight;
    uint8_t *slots;        /* [window]: 0 free, 1 wait PUBACK/PUBREC, 2 wait PUBCOMP */
    double interval_ns;    /* paced: ns between messages, 0 = max rate */
    uint64_t first_due_ns; /* paced: intended time of message 0 */

    /* subscriber */
    uint32_t pub_base; /* streams[i] tracks publisher pub_base + i */
    uint32_t pub_count;
    ep_bench_stream *streams;
} ep_bench_conn;

typedef struct ep_bench_run ep_bench_run;

/* Counters a worker publishes while running (relaxed; read by main). */
typedef struct ep_bench_live {
    _Atomic uint64_t delivered; /* PUBLISH received by subscribers, all time */
    _Atomic uint64_t sent;      /* messages generated, all time */
    _Atomic uint32_t busy;      /* publishers with unsent bytes or in flight */
} ep_bench_live;

struct ep_bench_worker {
    ep_bench_run *run;
    uint32_t id;
    pthread_t thread;
    int epfd;
    ep_bench_conn **paced; /* publishers on a --rate schedule, in order */
    uint32_t npaced;
    uint32_t pace_cursor; /* paced[] entry with the earliest deadline */
    int no_pwait2;        /* kernel lacks epoll_pwait2: ms timeouts */
    ep_bench_conn **conns;
    uint32_t nconns;
    uint32_t next_open;     /* conns[next_open..] are not opened yet */
    uint32_t opening;       /* TCP or CONNACK in progress */
    ep_bench_conn **ready;  /* connections with work, this round */
    ep_bench_conn **ready2; /* ... next round */
    uint32_t nready;
    uint32_t nready2;
    uint8_t *scratch; /* read buffer */
    size_t scratch_cap;
    uint64_t now;         /* cached CLOCK_MONOTONIC ns */
    int started;          /* saw the RUN phase */
    int paced_gen;        /* a paced publisher generated this round */
    uint64_t next_due_ns; /* earliest paced message, UINT64_MAX = none */
    ep_bench_live live;

    uint64_t sent_all;      /* messages generated (mirrored to live) */
    uint64_t delivered_all; /* PUBLISH received (mirrored to live) */

    /* results, read by main after join */
    ep_bench_hist hist; /* from the stamped (for paced: scheduled) time */
    /* from the time the message was actually written */
    ep_bench_hist hist_sent;
    uint64_t sent_win;      /* generated inside the measured window */
    uint64_t delivered_win; /* received inside the measured window */
    uint64_t lag_max_ns;    /* worst lateness of a paced message */
    uint64_t foreign;       /* PUBLISH whose payload is not ours */
    uint64_t closed;        /* connections lost after setup */
    uint64_t hs_win;        /* handshake cycles completed inside the window */
    uint64_t hs_all;        /* ... at any time in the RUN phase */
    uint64_t hs_errors;     /* cycles that failed in the RUN phase */
    uint64_t hs_resumed;    /* cycles whose TLS session was resumed */
    uint64_t hs_next_ns;    /* earliest due idle connector, UINT64_MAX = none */
    char tls_desc[96];      /* negotiated version and cipher, first seen */
    ep_err err;             /* first fatal error */
    char errmsg[512];
};

enum {
    EP_BENCH_PH_CONNECT = 0, /* open connections, subscribe */
    EP_BENCH_PH_RUN,         /* publish (warm-up + measured window) */
    EP_BENCH_PH_DRAIN,       /* stop generating, flush, collect stragglers */
    EP_BENCH_PH_STOP,        /* workers return */
};

struct ep_bench_run {
    ep_bench_opts o;
    struct ssl_ctx_st *tls_ctx; /* NULL without TLS */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char client_prefix[32];

    /* Per-run constants, written by main before the phase moves to RUN
     * (release) and read by workers after seeing it (acquire). */
    uint64_t t_go;    /* ns: publishing starts */
    uint64_t t_start; /* ns: measured window [t_start, t_end) */
    uint64_t t_end;

    _Atomic int phase;
    _Atomic uint32_t n_ready; /* connections set up (and subscribed) */
    _Atomic uint32_t n_failed;
    _Atomic uint32_t n_lost; /* set-up connections closed since */

    uint32_t nconns;
    ep_bench_conn *conns;
    char **topics; /* topic names */
    uint32_t ntopics;
    char **filters; /* what each subscriber subscribes to */
    uint32_t nfilters;
    ep_bench_worker *workers;
    uint32_t nworkers;
};

/* conn.c */
ep_err ep_bench__conn_open(ep_bench_conn *c);
/* ep_bench__conn_service does the pending reads and writes of c; returns 1
 * while c still has work that does not depend on a new epoll event. */
int ep_bench__conn_service(ep_bench_conn *c);
/* ep_bench__conn_can_generate: 1 when a publisher may create a message now. */
int ep_bench__conn_can_generate(const ep_bench_conn *c);
void ep_bench__conn_fail(ep_bench_conn *c, ep_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ep_bench__conn_close(ep_bench_conn *c);
void ep_bench__conn_fini(ep_bench_conn *c);
/* ep_bench__conn_next_due returns the intended time of a paced publisher's
 * next message (ns). */
uint64_t ep_bench__conn_next_due(const ep_bench_conn *c);

/* ep_bench__conn_hs_open starts a handshake cycle of an idle connector
 * (cycle.c); on failure the cycle counts as an error. */
void ep_bench__conn_hs_open(ep_bench_conn *c, uint64_t due_ns);
/* ep_bench__hs_on_connack / _on_eof: cycle.c's half of CONNACK and of the
 * broker closing the connection after our DISCONNECT. Return -1 (closed). */
int ep_bench__hs_on_connack(ep_bench_conn *c);
void ep_bench__hs_on_eof(ep_bench_conn *c);
/* ep_bench__hs_fail: a cycle failed; count it (RUN phase) and go idle.
 * Returns 1 when it was handled, 0 when the normal failure path applies. */
int ep_bench__hs_fail(ep_bench_conn *c);
/* ep_bench__hs_tick opens the connectors whose next cycle is due and sets
 * w->hs_next_ns. */
void ep_bench__hs_tick(ep_bench_worker *w);
/* ep_bench__hs_busy: 1 while c is inside a cycle. */
int ep_bench__hs_busy(const ep_bench_conn *c);

/* tls.c: the client side. ctx_new reads the files named in the options;
 * on failure it prints why and returns -1. The per-connection calls return
 * bytes moved (> 0), 0 at a clean end of stream, EP_EAGAIN when the fd must
 * become readable (c->readable is cleared) or writable (c->writable is
 * cleared) first, or another ep_err (ep_bench__tls_why says why). */
int ep_bench__tls_ctx_new(ep_bench_run *r);
void ep_bench__tls_ctx_free(ep_bench_run *r);
ep_err ep_bench__tls_start(ep_bench_conn *c);
/* ep_bench__tls_handshake: 1 done, 0 in progress (EP_EAGAIN rules), or an
 * ep_err. */
int ep_bench__tls_handshake(ep_bench_conn *c);
ssize_t ep_bench__tls_read(ep_bench_conn *c, void *buf, size_t n);
ssize_t ep_bench__tls_write(ep_bench_conn *c, const void *buf, size_t n);
/* ep_bench__tls_end frees the TLS session (keeping it for resumption when
 * asked to); ep_bench__tls_fini also drops the kept session. */
void ep_bench__tls_end(ep_bench_conn *c);
void ep_bench__tls_fini(ep_bench_conn *c);
/* ep_bench__tls_bye writes the final DISCONNECT in buf and a close_notify,
 * best effort (the run is over). */
void ep_bench__tls_bye(ep_bench_conn *c, const void *buf, size_t n);
/* ep_bench__tls_why: the pending OpenSSL error as text (clears it). */
const char *ep_bench__tls_why(char *buf, size_t n);
/* ep_bench__tls_describe writes "TLSv1.3 TLS_AES_256_GCM_SHA384" for c. */
void ep_bench__tls_describe(const ep_bench_conn *c, char *buf, size_t n);
/* ep_bench__tls_resumed: 1 when c's handshake resumed a session. */
int ep_bench__tls_resumed(const ep_bench_conn *c);

/* worker.c */
void *ep_bench__worker_main(void *arg);
void ep_bench__worker_mark_ready(ep_bench_worker *w, ep_bench_conn *c);

/* wire.c: the only place bytes are encoded or decoded, via ep_codec_mqtt. */
ep_err ep_bench__wire_connect(ep_buf *out, const ep_bench_run *r, const char *client_id);
ep_err ep_bench__wire_subscribe(ep_buf *out, const ep_bench_run *r, const char *const *filters,
                                uint32_t n, uint16_t packet_id);
ep_err ep_bench__wire_ack(ep_buf *out, uint8_t version, ep_mqtt_type type, uint16_t packet_id);
ep_err ep_bench__wire_pingreq(ep_buf *out, uint8_t version);
ep_err ep_bench__wire_disconnect(ep_buf *out, uint8_t version);
/* ep_bench__wire_publish_hdr writes a PUBLISH header for topic and packet id
 * into out (cap bytes); *len gets its size. */
ep_err ep_bench__wire_publish_hdr(uint8_t *out, size_t cap, size_t *len, uint8_t version,
                                  uint8_t qos, ep_mqtt_slice topic, uint16_t packet_id,
                                  uint32_t payload_len);

/* Payload layout (native byte order: both ends are this process). ts_ns is
 * the time a paced message was scheduled for (the generation time at max
 * rate). With a payload of at least EP_BENCH_SENT_SIZE bytes, the 8 bytes
 * after the stamp hold the time the message was actually generated and
 * handed to write(): latency from there leaves out the generator's own
 * lateness (its thread waking up after the scheduled time). */
typedef struct ep_bench_stamp {
    uint32_t pub;
    uint32_t seq;
    uint64_t ts_ns;
} ep_bench_stamp;
#define EP_BENCH_SENT_SIZE (sizeof(ep_bench_stamp) + sizeof(uint64_t))

/* Clock. */
uint64_t ep_bench__now_ns(void);

/* report.c */
typedef struct ep_bench_result {
    double window_s;
    uint64_t sent, delivered; /* inside the window */
    uint64_t sent_total, received_total;
    uint64_t expected; /* deliveries the scenario implies */
    uint64_t lost, dup, ooo, foreign;
    uint64_t closed;
    uint64_t lag_max_ns;
    double cpu_s; /* generator CPU inside the window */
    ep_bench_hist *hist;
    ep_bench_hist *hist_sent; /* empty when the payload has no send time */
    /* handshake */
    uint64_t handshakes, hs_total, hs_errors, hs_resumed;
    const char *tls_desc;
    /* idle */
    uint32_t connections;
    double connect_s;
    long rss_before_kb, rss_after_kb;
} ep_bench_result;

void ep_bench__report(const ep_bench_run *r, const ep_bench_result *res);

#endif
