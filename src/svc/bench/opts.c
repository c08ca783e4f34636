/*
 * opts.c - command line of `edgeplane bench`.
 *
 * Every option has a default that gives a meaningful run, and the publisher
 * and subscriber counts default per scenario (fan-in 10 -> 1, fan-out
 * 1 -> 100, p2p 10 pairs, shared 10 -> 4, handshake 10 connectors).
 * Numbers accept k/M suffixes (decimal for counts and rates, binary for
 * --size and --batch).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc/bench/bench_int.h"

static const char usage[] =
    "usage: edgeplane bench [options]\n"
    "\n"
    "MQTT load generator: drives many connections from a few threads and\n"
    "reports sent/delivered msgs/s, latency p50/p99/max, lost, duplicated\n"
    "and out-of-order messages.\n"
    "\n"
    "  --host HOST          broker address (default 127.0.0.1)\n"
    "  --port PORT          broker port (default 1883)\n"
    "  --scenario NAME      fan-in    P publishers -> S subscribers (default)\n"
    "                       fan-out   1 publisher -> N subscribers\n"
    "                       p2p       N pairs, each on its own topic\n"
    "                       shared    P publishers -> N subscribers in one\n"
    "                                 $share/bench/... group\n"
    "                       idle      open --connections C and hold them\n"
    "                       handshake --connectors N repeat connect (+ TLS),\n"
    "                                 CONNECT/CONNACK, DISCONNECT: reports\n"
    "                                 handshakes/s and handshake time\n"
    "  --qos 0|1|2          QoS of publications and subscriptions (default 0)\n"
    "  --size BYTES         payload size, >= 16 (default 64)\n"
    "  --publishers P       publisher connections (default per scenario)\n"
    "  --subscribers N      subscriber connections (default per scenario)\n"
    "  --topics K           fan-in: spread publishers over K topics, every\n"
    "                       subscriber subscribes to all of them (default 1)\n"
    "  --rate MSGS_PER_S    open-loop total publish rate, paced; without it\n"
    "                       publishers send as fast as the broker accepts\n"
    "                       (handshake: open-loop cycles/s; without it each\n"
    "                       connector starts its next cycle when one ends)\n"
    "  --connectors N       handshake: concurrent connectors (default 10)\n"
    "  --duration S         measured seconds (default 10)\n"
    "  --warmup S           seconds of load before measuring (default 2)\n"
    "  --drain S            longest wait for in-flight messages at the end\n"
    "                       (default 5)\n"
    "  --inflight W         QoS 1/2 window per publisher (default 64)\n"
    "  --mqtt-version 3|5   protocol: 3 = MQTT 3.1.1, 5 = MQTT 5.0 (default 5)\n"
    "  --threads T          generator threads (default: number of cores)\n"
    "  --connections C      idle-connection test: open C connections, hold\n"
    "                       them for --duration seconds, report\n"
    "  --broker-pid PID     with --connections: report the broker's RSS\n"
    "                       growth per connection from /proc/PID/status\n"
    "  --batch BYTES        bytes of PUBLISH packets per write (default 128k)\n"
    "  --keepalive S        MQTT keep alive (default 60, 0 = off)\n"
    "  --spin-us US         busy-poll instead of sleeping when the next paced\n"
    "                       message is due within US microseconds (default 0:\n"
    "                       always sleep); keeps a core busy but takes the\n"
    "                       machine's wake-up lateness out of latency runs\n"
    "  --prefix TOPIC       topic prefix (default bench/<pid>)\n"
    "  --json               print one JSON object instead of the table\n"
    "  --help               this text\n"
    "\n"
    "TLS (OpenSSL; any of these options turns it on):\n"
    "  --tls                connect with TLS, verify against the system CAs\n"
    "  --cafile FILE        PEM CA bundle that verifies the broker\n"
    "  --cert FILE          PEM client certificate (chain)\n"
    "  --key FILE           PEM private key of --cert (default: in --cert)\n"
    "  --insecure           do not verify the broker's certificate or name\n"
    "  --tls-version V      1.2 or 1.3 only (default: either, 1.3 preferred)\n"
    "  --ciphers LIST       TLS 1.2 cipher list (OpenSSL syntax)\n"
    "  --tls-resume         offer each connection's previous session again\n"
    "                       (default: every handshake is a full one)\n"
    "\n"
    "Exit status: 0 success, 1 connections failed or were closed during the\n"
    "run, 2 usage error, 3 the broker could not be reached or refused us.\n";

const char *ep_bench__scenario_name(ep_bench_scenario s)
{
    switch (s) {
    case EP_BENCH_FAN_IN:
        return "fan-in";
    case EP_BENCH_FAN_OUT:
        return "fan-out";
    case EP_BENCH_P2P:
        return "p2p";
    case EP_BENCH_SHARED:
        return "shared";
    case EP_BENCH_IDLE:
        return "idle";
    case EP_BENCH_HANDSHAKE:
        return "handshake";
    }
    return "?";
}

/* parse_num reads a non-negative number with an optional k/M/G suffix
 * (powers of 1000, or of 1024 when binary). Returns 0 or -1. */
static int parse_num(const char *s, int binary, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0.0 && v <= 1e18))
        return -1;
    double k = binary ? 1024.0 : 1000.0;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        v *= k;
        end++;
        break;
    case 'm':
    case 'M':
        v *= k * k;
        end++;
        break;
    case 'g':
    case 'G':
        v *= k * k * k;
        end++;
        break;
    default:
        return -1;
    }
    if (*end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *opt, const char *s, int binary, uint32_t lo, uint32_t hi,
                     uint32_t *out)
{
    double v;
    if (parse_num(s, binary, &v) < 0 || v < lo || v > hi || v != (double)(uint32_t)v) {
        fprintf(stderr, "bench: --%s wants an integer in %u..%u, got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_secs(const char *opt, const char *s, double *out)
{
    double v;
    if (parse_num(s, 0, &v) < 0 || v > 86400.0) {
        fprintf(stderr, "bench: --%s wants seconds (0..86400), got '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* copy_arg copies a file name or list into a 256-byte option field. */
static int copy_arg(const char *opt, const char *s, char *dst)
{
    size_t n = strlen(s);
    if (!n || n >= 256) {
        fprintf(stderr, "bench: --%s wants 1..255 bytes\n", opt);
        return -1;
    }
    memcpy(dst, s, n + 1);
    return 0;
}

enum {
    O_HOST = 256,
    O_PORT,
    O_SCENARIO,
    O_QOS,
    O_SIZE,
    O_PUBS,
    O_SUBS,
    O_TOPICS,
    O_RATE,
    O_DURATION,
    O_WARMUP,
    O_DRAIN,
    O_INFLIGHT,
    O_VERSION,
    O_THREADS,
    O_CONNS,
    O_PID,
    O_BATCH,
    O_KEEPALIVE,
    O_PREFIX,
    O_JSON,
    O_CONNECTORS,
    O_TLS,
    O_CAFILE,
    O_CERT,
    O_KEY,
    O_INSECURE,
    O_TLS_VERSION,
    O_CIPHERS,
    O_TLS_RESUME,
    O_SPIN,
    O_HELP,
};

static const struct option longopts[] = {
    {"host", required_argument, NULL, O_HOST},
    {"port", required_argument, NULL, O_PORT},
    {"scenario", required_argument, NULL, O_SCENARIO},
    {"qos", required_argument, NULL, O_QOS},
    {"size", required_argument, NULL, O_SIZE},
    {"publishers", required_argument, NULL, O_PUBS},
    {"subscribers", required_argument, NULL, O_SUBS},
    {"topics", required_argument, NULL, O_TOPICS},
    {"rate", required_argument, NULL, O_RATE},
    {"duration", required_argument, NULL, O_DURATION},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"drain", required_argument, NULL, O_DRAIN},
    {"inflight", required_argument, NULL, O_INFLIGHT},
    {"mqtt-version", required_argument, NULL, O_VERSION},
    {"threads", required_argument, NULL, O_THREADS},
    {"connections", required_argument, NULL, O_CONNS},
    {"broker-pid", required_argument, NULL, O_PID},
    {"batch", required_argument, NULL, O_BATCH},
    {"keepalive", required_argument, NULL, O_KEEPALIVE},
    {"spin-us", required_argument, NULL, O_SPIN},
    {"prefix", required_argument, NULL, O_PREFIX},
    {"json", no_argument, NULL, O_JSON},
    {"connectors", required_argument, NULL, O_CONNECTORS},
    {"tls", no_argument, NULL, O_TLS},
    {"cafile", required_argument, NULL, O_CAFILE},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"insecure", no_argument, NULL, O_INSECURE},
    {"tls-version", required_argument, NULL, O_TLS_VERSION},
    {"ciphers", required_argument, NULL, O_CIPHERS},
    {"tls-resume", no_argument, NULL, O_TLS_RESUME},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static int scenario_parse(const char *s, ep_bench_scenario *out)
{
    static const ep_bench_scenario all[] = {EP_BENCH_FAN_IN, EP_BENCH_FAN_OUT, EP_BENCH_P2P,
                                            EP_BENCH_SHARED, EP_BENCH_IDLE,    EP_BENCH_HANDSHAKE};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(s, ep_bench__scenario_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    if (strcmp(s, "fanin") == 0) {
        *out = EP_BENCH_FAN_IN;
        return 0;
    }
    if (strcmp(s, "fanout") == 0) {
        *out = EP_BENCH_FAN_OUT;
        return 0;
    }
    return -1;
}

/* apply_defaults fills the counts the user left at 0 and checks that the
 * combination makes sense. */
static int apply_defaults(ep_bench_opts *o, int have_scenario)
{
    if (o->connections && !have_scenario)
        o->scenario = EP_BENCH_IDLE;
    switch (o->scenario) {
    case EP_BENCH_FAN_IN:
        if (!o->publishers)
            o->publishers = 10;
        if (!o->subscribers)
            o->subscribers = 1;
        if (!o->topics)
            o->topics = 1;
        if (o->topics > o->publishers) {
            fprintf(stderr, "bench: --topics must not exceed --publishers\n");
            return -1;
        }
        break;
    case EP_BENCH_FAN_OUT:
        if (!o->publishers)
            o->publishers = 1;
        if (!o->subscribers)
            o->subscribers = 100;
        break;
    case EP_BENCH_P2P:
        if (o->publishers && o->subscribers && o->publishers != o->subscribers) {
            fprintf(stderr, "bench: p2p uses pairs: give --publishers or "
                            "--subscribers (or both equal)\n");
            return -1;
        }
        if (!o->publishers)
            o->publishers = o->subscribers ? o->subscribers : 10;
        o->subscribers = o->publishers;
        break;
    case EP_BENCH_SHARED:
        if (!o->publishers)
            o->publishers = 10;
        if (!o->subscribers)
            o->subscribers = 4;
        break;
    case EP_BENCH_IDLE:
        if (!o->connections) {
            fprintf(stderr, "bench: the idle scenario needs --connections C\n");
            return -1;
        }
        break;
    case EP_BENCH_HANDSHAKE:
        if (!o->connectors)
            o->connectors = 10;
        break;
    }
    if (o->connectors && o->scenario != EP_BENCH_HANDSHAKE) {
        fprintf(stderr, "bench: --connectors applies to the handshake scenario only\n");
        return -1;
    }
    if ((o->tls_resume || o->tls_version || o->ciphers[0]) && !o->tls)
        o->tls = 1;
    if (o->scenario != EP_BENCH_FAN_IN && o->topics > 1) {
        fprintf(stderr, "bench: --topics applies to fan-in only\n");
        return -1;
    }
    if (o->scenario != EP_BENCH_IDLE && o->connections) {
        fprintf(stderr,
                "bench: --connections is the idle scenario; drop "
                "--scenario %s\n",
                ep_bench__scenario_name(o->scenario));
        return -1;
    }
    if (!o->topics)
        o->topics = 1;
    if (o->duration <= 0.0 && o->scenario != EP_BENCH_IDLE) {
        fprintf(stderr, "bench: --duration must be > 0\n");
        return -1;
    }
    if (!o->threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->threads = n > 0 ? (uint32_t)n : 1;
    }
    uint32_t total = o->scenario == EP_BENCH_IDLE        ? o->connections
                     : o->scenario == EP_BENCH_HANDSHAKE ? o->connectors
                                                         : o->publishers + o->subscribers;
    if (o->threads > total)
        o->threads = total;
    if (o->scenario == EP_BENCH_HANDSHAKE)
        o->publishers = o->subscribers = 0;
    if (o->rate > 0.0 && o->publishers && o->rate / o->publishers > 1e9) {
        fprintf(stderr, "bench: --rate too high\n");
        return -1;
    }
    if (!o->prefix[0])
        snprintf(o->prefix, sizeof(o->prefix), "bench/%ld", (long)getpid());
    return 0;
}

int ep_bench__opts_parse(int argc, char **argv, ep_bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = 1883;
    o->scenario = EP_BENCH_FAN_IN;
    o->version = EP_MQTT_V5;
    o->size = 64;
    o->duration = 10.0;
    o->warmup = 2.0;
    o->drain = 5.0;
    o->inflight = 64;
    o->batch = 128 * 1024;
    o->keepalive = 60;

    int have_scenario = 0;
    uint32_t u;
    optind = 1;
    opterr = 0;
    for (;;) {
        int longidx = 0;
        int ch = getopt_long(argc, argv, "h", longopts, &longidx);
        if (ch == -1)
            break;
        const char *name = ch >= O_HOST && ch <= O_HELP ? longopts[ch - O_HOST].name : "?";
        switch (ch) {
        case O_HOST:
            if (strlen(optarg) >= sizeof(o->host) || !optarg[0]) {
                fprintf(stderr, "bench: bad --host\n");
                return -1;
            }
            snprintf(o->host, sizeof(o->host), "%s", optarg);
            break;
        case O_PORT:
            if (parse_u32(name, optarg, 0, 1, 65535, &u) < 0)
                return -1;
            o->port = (uint16_t)u;
            break;
        case O_SCENARIO:
            if (scenario_parse(optarg, &o->scenario) < 0) {
                fprintf(stderr,
                        "bench: unknown scenario '%s' (fan-in, "
                        "fan-out, p2p, shared, idle, handshake)\n",
                        optarg);
                return -1;
            }
            have_scenario = 1;
            break;
        case O_QOS:
            if (parse_u32(name, optarg, 0, 0, 2, &u) < 0)
                return -1;
            o->qos = (uint8_t)u;
            break;
        case O_SIZE:
            if (parse_u32(name, optarg, 1, EP_BENCH_MIN_SIZE, 16u << 20, &u) < 0)
                return -1;
            o->size = u;
            break;
        case O_PUBS:
            if (parse_u32(name, optarg, 0, 1, 1000000, &o->publishers) < 0)
                return -1;
            break;
        case O_SUBS:
            if (parse_u32(name, optarg, 0, 1, 1000000, &o->subscribers) < 0)
                return -1;
            break;
        case O_TOPICS:
            if (parse_u32(name, optarg, 0, 1, 1000000, &o->topics) < 0)
                return -1;
            break;
        case O_RATE:
            if (parse_num(optarg, 0, &o->rate) < 0 || o->rate <= 0.0) {
                fprintf(stderr, "bench: --rate wants msgs/s > 0, got '%s'\n", optarg);
                return -1;
            }
            break;
        case O_DURATION:
            if (parse_secs(name, optarg, &o->duration) < 0)
                return -1;
            break;
        case O_WARMUP:
            if (parse_secs(name, optarg, &o->warmup) < 0)
                return -1;
            break;
        case O_DRAIN:
            if (parse_secs(name, optarg, &o->drain) < 0)
                return -1;
            break;
        case O_INFLIGHT:
            if (parse_u32(name, optarg, 0, 1, 32768, &o->inflight) < 0)
                return -1;
            break;
        case O_VERSION:
            if (!strcmp(optarg, "3") || !strcmp(optarg, "4") || !strcmp(optarg, "3.1.1")) {
                o->version = EP_MQTT_V311;
            } else if (!strcmp(optarg, "5") || !strcmp(optarg, "5.0")) {
                o->version = EP_MQTT_V5;
            } else {
                fprintf(stderr, "bench: --mqtt-version wants 3 or 5\n");
                return -1;
            }
            break;
        case O_THREADS:
            if (parse_u32(name, optarg, 0, 1, 1024, &o->threads) < 0)
                return -1;
            break;
        case O_CONNS:
            if (parse_u32(name, optarg, 0, 1, 10000000, &o->connections) < 0)
                return -1;
            break;
        case O_PID:
            if (parse_u32(name, optarg, 0, 1, 0x7fffffff, &u) < 0)
                return -1;
            o->broker_pid = (int)u;
            break;
        case O_BATCH:
            if (parse_u32(name, optarg, 1, 1024, 64u << 20, &o->batch) < 0)
                return -1;
            break;
        case O_KEEPALIVE:
            if (parse_u32(name, optarg, 0, 0, 65535, &u) < 0)
                return -1;
            o->keepalive = (uint16_t)u;
            break;
        case O_SPIN:
            if (parse_u32(name, optarg, 0, 0, 100000, &o->spin_us) < 0)
                return -1;
            break;
        case O_PREFIX:
            if (strlen(optarg) >= sizeof(o->prefix) || !optarg[0] || strpbrk(optarg, "+#")) {
                fprintf(stderr, "bench: --prefix wants 1..63 bytes without "
                                "wildcards\n");
                return -1;
            }
            snprintf(o->prefix, sizeof(o->prefix), "%s", optarg);
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_CONNECTORS:
            if (parse_u32(name, optarg, 0, 1, 100000, &o->connectors) < 0)
                return -1;
            break;
        case O_TLS:
            o->tls = 1;
            break;
        case O_CAFILE:
        case O_CERT:
        case O_KEY:
        case O_CIPHERS:
            if (copy_arg(name, optarg,
                         ch == O_CAFILE ? o->cafile
                         : ch == O_CERT ? o->certfile
                         : ch == O_KEY  ? o->keyfile
                                        : o->ciphers) < 0)
                return -1;
            o->tls = 1;
            break;
        case O_INSECURE:
            o->tls = o->tls_insecure = 1;
            break;
        case O_TLS_VERSION:
            if (!strcmp(optarg, "1.2") || !strcmp(optarg, "12")) {
                o->tls_version = 12;
            } else if (!strcmp(optarg, "1.3") || !strcmp(optarg, "13")) {
                o->tls_version = 13;
            } else {
                fprintf(stderr, "bench: --tls-version wants 1.2 or 1.3\n");
                return -1;
            }
            break;
        case O_TLS_RESUME:
            o->tls_resume = 1;
            break;
        case O_HELP:
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            fprintf(stderr,
                    "bench: unknown or incomplete option '%s' (see "
                    "--help)\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    return apply_defaults(o, have_scenario);
}
