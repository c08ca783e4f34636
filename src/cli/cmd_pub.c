/*
 * cmd_pub.c - `edgeplane pub`: publish messages from the command line (the
 * connection options it shares with `sub` are in cmd_mqtt.c).
 *
 * The command runs one client on its own loop. Messages come from -m, -f,
 * -n (one payload, published --repeat times, --interval ms apart) or from
 * stdin lines (-s). The client's queue is unbounded here; instead, input
 * pauses while 1000 messages or 32 MiB wait in it, and resumes below half
 * of that, so a fast producer feeding a slow or absent broker is slowed
 * down instead of losing messages, and memory stays bounded.
 *
 * It exits once every message has completed: 0 when all were acknowledged
 * (QoS 1/2) or written (QoS 0), 1 when the first connection fails or a
 * message was refused or dropped, 2 for usage errors. After a successful
 * first connection, a lost connection is retried with backoff and the
 * queued messages are delivered when it is back.
 */
#ifdef HAVE_EP_SVC_MQTTC /* built with the MQTT client module */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_mqtt.h"
#include "core/log.h"

/* ------------------------------------------------------------------------ */
/* pub                                                                       */

#define PUB_QUEUE_MSGS 1000u /* queued messages before input pauses */
#define PUB_QUEUE_BYTES ((size_t)32u * 1024u * 1024u)
#define PUB_MAX_USER 32
#define PUB_CHUNK 65536u

enum { SRC_NONE, SRC_MESSAGE, SRC_FILE, SRC_STDIN, SRC_NULL };

enum {
    OPT_REPEAT = EP_CLI_OPT_FIRST_OWN,
    OPT_INTERVAL,
    OPT_USER_PROPERTY,
    OPT_CONTENT_TYPE,
    OPT_RESPONSE_TOPIC,
    OPT_CORRELATION_DATA,
    OPT_MESSAGE_EXPIRY,
};

typedef struct pub_ctx {
    ep_cli_mqtt m;
    ep_loop *loop;
    ep_mqttc *c;
    int src;
    const char *topic;
    const char *message;
    uint8_t *file_data;
    size_t file_len;
    uint8_t qos;
    bool retain, numbered;
    unsigned long repeat, interval_ms;
    ep_mqtt_user_prop user[PUB_MAX_USER];
    uint32_t n_user;
    ep_mqtt_props props;
    bool has_props;

    unsigned long sent, done, failed;
    bool input_done, connected_once, finishing, quiet;
    int exit_code;
    ep_timer feed_timer;
    ep_io in_io;
    bool in_watched, in_timer_mode, in_paused, in_eof;
    ep_buf line;
} pub_ctx;

static void pub_usage(FILE *f)
{
    fprintf(f,
            "usage: edgeplane pub -t TOPIC (-m MESSAGE | -f FILE | -s | -n) [options]\n\n"
            "Publish MQTT messages and wait until the broker has acknowledged them.\n\n"
            "message:\n"
            "  -t, --topic TOPIC        topic to publish to (required)\n"
            "  -m, --message MESSAGE    the payload\n"
            "  -f, --file FILE          the whole file as one payload (binary safe)\n"
            "  -s, --stdin-line         publish every line read from stdin (without its\n"
            "                           newline; an empty line is an empty payload)\n"
            "  -n, --null-message       an empty payload\n"
            "  -q, --qos 0|1|2          quality of service (default 0)\n"
            "  -r, --retain             ask the broker to retain the message\n"
            "  -c, --count              number the messages: '{n}' in the payload becomes\n"
            "                           1, 2, ...; without '{n}', ' N' is appended\n"
            "      --repeat N           publish the message N times (default 1)\n"
            "      --interval MS        wait MS milliseconds between messages (default 0)\n\n"
            "MQTT 5 properties:\n"
            "      --user-property K=V  add a user property (repeatable, order kept)\n"
            "      --content-type TYPE  content type, e.g. application/json\n"
            "      --response-topic T   response topic\n"
            "      --correlation-data D correlation data\n"
            "      --message-expiry S   discard the message if not delivered within S seconds\n\n");
    ep_cli_mqtt_help(f);
    fprintf(f, "\nExit codes: 0 every message was acknowledged (QoS 1/2) or sent (QoS 0),\n"
               "1 the broker could not be reached or a message was refused or dropped,\n"
               "2 bad options.\n\n"
               "Examples:\n"
               "  edgeplane pub -t sensors/temp -m 21.5 -q 1\n"
               "  edgeplane pub -t cmd/reboot -m '{}' --content-type application/json -u ops -P x\n"
               "  tail -F app.log | edgeplane pub -t logs/app -s -q 1\n"
               "  edgeplane pub -h broker.local --cafile ca.pem -u dev --password-file pw \\\n"
               "      --auth-method SCRAM-SHA-256 -t sensors/temp -m 21.5\n");
}

static void pub_stop(pub_ctx *x) { ep_loop_stop(x->loop); }

static void pub_finish(pub_ctx *x)
{
    if (x->finishing)
        return;
    x->finishing = true;
    ep_timer_stop(&x->feed_timer);
    if (x->in_watched) {
        ep_io_stop(&x->in_io);
        x->in_watched = false;
    }
    if (ep_mqttc_disconnect(x->c, EP_MQTT_RC_NORMAL_DISCONNECTION, 0) != EP_EOK)
        pub_stop(x);
}

static void pub_maybe_done(pub_ctx *x)
{
    if (x->input_done && x->done == x->sent) {
        if (x->failed)
            x->exit_code = EP_EXIT_FAILURE;
        pub_finish(x);
    }
}

static void pub_feed(pub_ctx *x);
static void pub_stdin_resume(pub_ctx *x);
static void on_stdin(ep_io *io, unsigned events);

static void on_pub_done(ep_mqttc *c, ep_err err, ep_mqtt_rc rc, void *ud)
{
    pub_ctx *x = ud;
    (void)c;
    x->done++;
    EP_LOG_DEBUG("pub", "message %lu of %lu complete: %s (reason 0x%02x)", x->done, x->sent,
                 ep_strerror(err), (unsigned)rc);
    if (err != EP_EOK || (unsigned)rc >= 0x80) {
        x->failed++;
        if (!x->quiet) {
            const char *name = ep_mqtt_rc_name((int)rc);
            if (err != EP_EOK)
                fprintf(stderr, "edgeplane pub: message not delivered: %s\n", ep_strerror(err));
            else
                fprintf(stderr, "edgeplane pub: the broker refused a message: %s (0x%02x)\n",
                        name ? name : "unknown reason", (unsigned)rc);
        }
    }
    if (x->finishing)
        return;
    if (x->src == SRC_STDIN)
        pub_stdin_resume(x);
    else if (!ep_timer_active(&x->feed_timer) && !x->input_done)
        pub_feed(x);
    pub_maybe_done(x);
}

/* Publishes payload p[0..n), numbered when -c. */
static void pub_one(pub_ctx *x, const uint8_t *p, size_t n)
{
    unsigned long seq = x->sent + 1;
    uint8_t *tmp = NULL;
    if (x->numbered) {
        char num[24];
        int nl = snprintf(num, sizeof(num), "%lu", seq);
        size_t holes = 0;
        for (size_t i = 0; i + 3 <= n; i++)
            if (p[i] == '{' && p[i + 1] == 'n' && p[i + 2] == '}')
                holes++;
        size_t cap = holes ? n + holes * (size_t)nl : n + 1 + (size_t)nl;
        tmp = malloc(cap ? cap : 1);
        if (tmp == NULL) {
            fprintf(stderr, "edgeplane pub: out of memory\n");
            x->input_done = true;
            return;
        }
        size_t o = 0;
        if (holes) {
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && p[i] == '{' && p[i + 1] == 'n' && p[i + 2] == '}') {
                    memcpy(tmp + o, num, (size_t)nl);
                    o += (size_t)nl;
                    i += 3;
                } else {
                    tmp[o++] = p[i++];
                }
            }
        } else {
            if (n)
                memcpy(tmp, p, n);
            o = n;
            if (n)
                tmp[o++] = ' ';
            memcpy(tmp + o, num, (size_t)nl);
            o += (size_t)nl;
        }
        p = tmp;
        n = o;
    }
    ep_mqttc_pub pb = {0};
    pb.topic = x->topic;
    pb.payload = p;
    pb.payload_len = n;
    pb.qos = x->qos;
    pb.retain = x->retain;
    pb.props = x->has_props ? &x->props : NULL;
    x->sent++;
    ep_mqttc_publish(x->c, &pb, on_pub_done, x);
    free(tmp);
}

/* Whether input should wait: the client's queue holds enough (full), or
 * has drained to half of that (!low). */
static bool pub_full(const pub_ctx *x, unsigned div)
{
    ep_mqttc_stats st;
    ep_mqttc_stats_get(x->c, &st);
    return st.queued >= PUB_QUEUE_MSGS / div || st.queued_bytes >= PUB_QUEUE_BYTES / div;
}

/* -m / -f / -n: while the queue has room, or one per --interval. */
static void pub_feed(pub_ctx *x)
{
    while (!x->input_done && !pub_full(x, 1)) {
        if (x->src == SRC_MESSAGE)
            pub_one(x, (const uint8_t *)x->message, strlen(x->message));
        else if (x->src == SRC_FILE)
            pub_one(x, x->file_data, x->file_len);
        else
            pub_one(x, NULL, 0);
        if (x->sent >= x->repeat)
            x->input_done = true;
        else if (x->interval_ms) {
            ep_timer_start(&x->feed_timer, x->interval_ms);
            break;
        }
    }
}

static void feed_timer_cb(ep_timer *t)
{
    pub_ctx *x = t->data;
    if (x->src == SRC_STDIN) {
        /* stdin is a regular file: read it in chunks from the loop. */
        pub_stdin_resume(x);
        return;
    }
    pub_feed(x);
    pub_maybe_done(x);
}

/* ---- stdin lines ---- */

/* Publishes the complete lines already read while the client's queue has
 * room; after end of input also the last unterminated line, and then marks
 * the input done. Lines that do not fit now stay buffered. */
static void pub_drain_lines(pub_ctx *x)
{
    while (!pub_full(x, 1)) {
        uint8_t *h = ep_buf_head(&x->line);
        size_t used = ep_buf_used(&x->line);
        uint8_t *nl = used ? memchr(h, '\n', used) : NULL;
        if (nl) {
            pub_one(x, h, (size_t)(nl - h));
            ep_buf_consume(&x->line, (size_t)(nl - h) + 1);
            continue;
        }
        if (x->in_eof) {
            if (used)
                pub_one(x, h, used);
            ep_buf_clear(&x->line);
            x->input_done = true;
        }
        return;
    }
}

/* Reads one chunk of stdin (unless at its end) and publishes what fits. */
static void pub_stdin_read(pub_ctx *x)
{
    if (!x->in_eof) {
        if (ep_buf_reserve(&x->line, PUB_CHUNK) != EP_EOK) {
            fprintf(stderr, "edgeplane pub: input line longer than %u bytes\n",
                    (unsigned)(x->line.limit - PUB_CHUNK));
            x->exit_code = EP_EXIT_FAILURE;
            x->input_done = true;
            return;
        }
        ssize_t r = read(STDIN_FILENO, ep_buf_tail(&x->line), PUB_CHUNK);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r < 0) {
            fprintf(stderr, "edgeplane pub: reading stdin: %s\n", strerror(errno));
            x->exit_code = EP_EXIT_FAILURE;
            x->input_done = true;
            return;
        }
        if (r == 0)
            x->in_eof = true;
        else
            x->line.len += (size_t)r;
    }
    pub_drain_lines(x);
}

static void pub_stdin_pause(pub_ctx *x)
{
    if (x->in_watched) {
        ep_io_stop(&x->in_io);
        x->in_watched = false;
    }
    ep_timer_stop(&x->feed_timer);
    x->in_paused = true;
}

/* After reading: stop at the end, pause when the queue is full, otherwise
 * keep reading (the watcher stays, or the next chunk is scheduled). */
static void pub_stdin_after(pub_ctx *x)
{
    if (x->input_done) {
        pub_stdin_pause(x);
        x->in_paused = false;
        pub_maybe_done(x);
    } else if (pub_full(x, 1) || x->in_eof) {
        pub_stdin_pause(x);
    } else if (x->in_timer_mode) {
        ep_timer_start(&x->feed_timer, 0);
    } else if (!x->in_watched &&
               ep_io_start(x->loop, &x->in_io, STDIN_FILENO, EP_IO_READ, on_stdin, x) == EP_EOK) {
        x->in_watched = true;
    }
}

static void on_stdin(ep_io *io, unsigned events)
{
    pub_ctx *x = io->data;
    (void)events;
    pub_stdin_read(x);
    pub_stdin_after(x);
}

static void pub_stdin_resume(pub_ctx *x)
{
    if (x->input_done || x->finishing)
        return;
    if (x->in_paused && pub_full(x, 2))
        return;
    x->in_paused = false;
    if (x->in_timer_mode) {
        pub_stdin_read(x); /* regular file: one chunk per loop iteration */
    } else {
        pub_drain_lines(x); /* lines read before the pause come first */
    }
    pub_stdin_after(x);
}

/* ---- client callbacks ---- */

static void on_pub_connect(ep_mqttc *c, bool sp, const ep_mqtt_props *props, void *ud)
{
    pub_ctx *x = ud;
    (void)c;
    (void)sp;
    (void)props;
    if (x->connected_once)
        fprintf(stderr, "edgeplane pub: reconnected to %s:%u\n", x->m.o.host, x->m.o.port);
    x->connected_once = true;
}

static void on_pub_disconnect(ep_mqttc *c, const ep_mqttc_disconnect_info *info, void *ud)
{
    pub_ctx *x = ud;
    if (x->finishing) {
        pub_stop(x);
        return;
    }
    if (!x->connected_once || !info->will_reconnect) {
        char why[300];
        ep_cli_mqtt_describe(info, why, sizeof(why));
        fprintf(stderr, "edgeplane pub: %s %s:%u: %s\n",
                x->connected_once ? "lost the connection to" : "cannot connect to", x->m.o.host,
                x->m.o.port, why);
        x->exit_code = EP_EXIT_FAILURE;
        x->quiet = true;
        x->finishing = true;
        ep_mqttc_disconnect(c, 0, 0);
        pub_stop(x);
    }
}

static void on_pub_signal(ep_io *io, unsigned events)
{
    pub_ctx *x = io->data;
    (void)events;
    int sig = ep_cli_mqtt_signal_read(x->m.sigfd);
    if (sig == 0)
        return;
    if (x->finishing) {
        pub_stop(x); /* second signal: do not wait any longer */
        return;
    }
    x->input_done = true;
    if (x->sent != x->done) {
        fprintf(stderr, "edgeplane pub: interrupted with %lu message(s) not acknowledged\n",
                x->sent - x->done);
        x->exit_code = EP_EXIT_FAILURE;
        x->quiet = true;
    }
    pub_finish(x);
}

/* ---- options ---- */

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t cap = 65536, n = 0;
    uint8_t *p = malloc(cap);
    for (;;) {
        if (p == NULL) {
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        if (n == cap) {
            if (cap >= (size_t)EP_MQTT_MAX_REMAINING) {
                free(p);
                close(fd);
                errno = EFBIG;
                return -1;
            }
            uint8_t *q = realloc(p, cap * 2);
            if (q == NULL)
                free(p);
            p = q;
            cap *= 2;
            continue;
        }
        ssize_t r = read(fd, p + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(p);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *out = p;
    *len = n;
    return 0;
}

static int pub_source(pub_ctx *x, int src)
{
    if (x->src != SRC_NONE && x->src != src) {
        fprintf(stderr, "edgeplane pub: use only one of -m, -f, -s and -n\n");
        return -1;
    }
    x->src = src;
    return 0;
}

static int pub_options(pub_ctx *x, int argc, char **argv)
{
    static const struct option opts[] = {
        EP_CLI_MQTT_LONGOPTS,
        {"topic", required_argument, NULL, 't'},
        {"message", required_argument, NULL, 'm'},
        {"file", required_argument, NULL, 'f'},
        {"stdin-line", no_argument, NULL, 's'},
        {"null-message", no_argument, NULL, 'n'},
        {"qos", required_argument, NULL, 'q'},
        {"retain", no_argument, NULL, 'r'},
        {"count", no_argument, NULL, 'c'},
        {"repeat", required_argument, NULL, OPT_REPEAT},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"user-property", required_argument, NULL, OPT_USER_PROPERTY},
        {"content-type", required_argument, NULL, OPT_CONTENT_TYPE},
        {"response-topic", required_argument, NULL, OPT_RESPONSE_TOPIC},
        {"correlation-data", required_argument, NULL, OPT_CORRELATION_DATA},
        {"message-expiry", required_argument, NULL, OPT_MESSAGE_EXPIRY},
        {NULL, 0, NULL, 0},
    };
    ep_cli_mqtt *m = &x->m;
    ep_mqtt_props *pr = &x->props;
    const char *file = NULL;
    unsigned long v;
    int c;
    x->repeat = 1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":" EP_CLI_MQTT_SHORTOPTS "t:m:f:snq:rc", opts, NULL)) !=
           -1) {
        int r = ep_cli_mqtt_option(m, c, optarg);
        if (r < 0)
            return EP_EXIT_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case EP_CLI_OPT_HELP:
            pub_usage(stdout);
            return EP_EXIT_OK;
        case 't':
            x->topic = optarg;
            break;
        case 'm':
            if (pub_source(x, SRC_MESSAGE))
                return EP_EXIT_USAGE;
            x->message = optarg;
            break;
        case 'f':
            if (pub_source(x, SRC_FILE))
                return EP_EXIT_USAGE;
            file = optarg;
            break;
        case 's':
            if (pub_source(x, SRC_STDIN))
                return EP_EXIT_USAGE;
            break;
        case 'n':
            if (pub_source(x, SRC_NULL))
                return EP_EXIT_USAGE;
            break;
        case 'q':
            if (ep_cli_mqtt_parse_uint(m, "--qos", optarg, 0, 2, &v))
                return EP_EXIT_USAGE;
            x->qos = (uint8_t)v;
            break;
        case 'r':
            x->retain = true;
            break;
        case 'c':
            x->numbered = true;
            break;
        case OPT_REPEAT:
            if (ep_cli_mqtt_parse_uint(m, "--repeat", optarg, 1, 1000000000ul, &x->repeat))
                return EP_EXIT_USAGE;
            break;
        case OPT_INTERVAL:
            if (ep_cli_mqtt_parse_uint(m, "--interval", optarg, 0, 86400000ul, &x->interval_ms))
                return EP_EXIT_USAGE;
            break;
        case OPT_USER_PROPERTY: {
            const char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg) {
                fprintf(stderr, "edgeplane pub: --user-property '%s': expected NAME=VALUE\n",
                        optarg);
                return EP_EXIT_USAGE;
            }
            if (x->n_user == PUB_MAX_USER) {
                fprintf(stderr, "edgeplane pub: at most %d --user-property options\n",
                        PUB_MAX_USER);
                return EP_EXIT_USAGE;
            }
            x->user[x->n_user].name = ep_mqtt_slice_make(optarg, (size_t)(eq - optarg));
            x->user[x->n_user].value = ep_mqtt_slice_make(eq + 1, strlen(eq + 1));
            x->n_user++;
            x->has_props = true;
            break;
        }
        case OPT_CONTENT_TYPE:
            EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_CONTENT_TYPE);
            pr->content_type = ep_mqtt_slice_make(optarg, strlen(optarg));
            x->has_props = true;
            break;
        case OPT_RESPONSE_TOPIC:
            if (!ep_mqtt_topic_name_valid(ep_mqtt_slice_make(optarg, strlen(optarg)))) {
                fprintf(stderr, "edgeplane pub: --response-topic '%s' is not a valid topic\n",
                        optarg);
                return EP_EXIT_USAGE;
            }
            EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_RESPONSE_TOPIC);
            pr->response_topic = ep_mqtt_slice_make(optarg, strlen(optarg));
            x->has_props = true;
            break;
        case OPT_CORRELATION_DATA:
            EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_CORRELATION_DATA);
            pr->correlation_data = ep_mqtt_slice_make(optarg, strlen(optarg));
            x->has_props = true;
            break;
        case OPT_MESSAGE_EXPIRY:
            if (ep_cli_mqtt_parse_uint(m, "--message-expiry", optarg, 1, UINT32_MAX, &v))
                return EP_EXIT_USAGE;
            EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
            pr->message_expiry_interval = (uint32_t)v;
            x->has_props = true;
            break;
        case ':':
            if (optopt == 'h')
                fprintf(stderr, "edgeplane pub: -h needs a host name (for help, use --help)\n");
            else
                fprintf(stderr, "edgeplane pub: option '%s' needs a value\n", argv[optind - 1]);
            return EP_EXIT_USAGE;
        default:
            fprintf(stderr, "edgeplane pub: unknown option '%s' (see 'edgeplane pub --help')\n",
                    argv[optind - 1]);
            return EP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edgeplane pub: unexpected argument '%s'\n", argv[optind]);
        return EP_EXIT_USAGE;
    }
    if (x->topic == NULL) {
        fprintf(stderr, "edgeplane pub: a topic is required (-t TOPIC); see "
                        "'edgeplane pub --help'\n");
        return EP_EXIT_USAGE;
    }
    if (!ep_mqtt_topic_name_valid(ep_mqtt_slice_make(x->topic, strlen(x->topic)))) {
        fprintf(stderr,
                "edgeplane pub: '%s' is not a topic name one can publish to (no '+' "
                "or '#', not empty)\n",
                x->topic);
        return EP_EXIT_USAGE;
    }
    if (x->src == SRC_NONE) {
        fprintf(stderr, "edgeplane pub: nothing to publish: give -m MESSAGE, -f FILE, -s "
                        "(stdin lines) or -n (empty)\n");
        return EP_EXIT_USAGE;
    }
    if (x->has_props && m->o.version != EP_MQTT_V5) {
        fprintf(stderr, "edgeplane pub: message properties need MQTT 5 (-V 5)\n");
        return EP_EXIT_USAGE;
    }
    if (x->src == SRC_STDIN && x->repeat != 1) {
        fprintf(stderr, "edgeplane pub: --repeat does not apply to -s (each line is sent once)\n");
        return EP_EXIT_USAGE;
    }
    if (ep_cli_mqtt_finish(m))
        return EP_EXIT_USAGE;
    if (file && read_file(file, &x->file_data, &x->file_len)) {
        fprintf(stderr, "edgeplane pub: cannot read %s: %s\n", file, strerror(errno));
        return EP_EXIT_USAGE;
    }
    x->props.user = x->n_user ? x->user : NULL;
    x->props.n_user = x->n_user;
    return -1;
}

int ep_cmd_pub(int argc, char **argv)
{
    pub_ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        fprintf(stderr, "edgeplane pub: out of memory\n");
        return EP_EXIT_FAILURE;
    }
    ep_cli_mqtt_init(&x->m, "pub");
    int rc = pub_options(x, argc, argv);
    if (rc >= 0)
        goto out;
    ep_mqttc_options *o = &x->m.o;
    o->queue_max_messages = UINT32_MAX; /* bounded by pausing the input */
    o->queue_max_bytes = SIZE_MAX;
    o->on_connect = on_pub_connect;
    o->on_disconnect = on_pub_disconnect;
    o->userdata = x;
    rc = ep_cli_mqtt_start(&x->m, on_pub_signal, x);
    x->loop = x->m.loop;
    x->c = x->m.c;
    if (rc >= 0)
        goto out;
    ep_timer_init(x->loop, &x->feed_timer, feed_timer_cb, x);
    ep_buf_init(&x->line, (size_t)16u * 1024u * 1024u + PUB_CHUNK);
    ep_mqttc_connect(x->c);
    if (x->src == SRC_STDIN) {
        if (ep_io_start(x->loop, &x->in_io, STDIN_FILENO, EP_IO_READ, on_stdin, x) == EP_EOK) {
            x->in_watched = true;
        } else {
            x->in_timer_mode = true; /* regular file or /dev/null */
            ep_timer_start(&x->feed_timer, 0);
        }
    } else {
        pub_feed(x);
    }
    x->exit_code = EP_EXIT_OK;
    ep_loop_run(x->loop);
    rc = x->exit_code;
    if (x->sent != x->done && rc == EP_EXIT_OK)
        rc = EP_EXIT_FAILURE;
out:
    if (x->in_watched)
        ep_io_stop(&x->in_io);
    if (x->c)
        ep_timer_stop(&x->feed_timer);
    x->quiet = true;
    ep_cli_mqtt_stop(&x->m);
    ep_buf_fini(&x->line);
    free(x->file_data);
    free(x);
    return rc;
}

#endif /* HAVE_EP_SVC_MQTTC */
