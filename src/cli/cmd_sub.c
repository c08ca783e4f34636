/*
 * cmd_sub.c - `edgeplane sub`: subscribe and print messages.
 *
 * Each message is written to stdout and flushed before it is acknowledged
 * (the client runs with manual acks), so a message the command did not get
 * to print - because -C was reached or it was interrupted - is not
 * acknowledged, and with --no-clean the broker delivers it on the next run.
 *
 * After a reconnect the subscriptions are made again only when the broker
 * says the session is gone; a resumed session still has them.
 */
#ifdef HAVE_EP_SVC_MQTTC /* built with the MQTT client module */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_mqtt.h"
#include "core/log.h"

#define SUB_MAX_FILTERS 64

enum {
    OPT_JSON = EP_CLI_OPT_FIRST_OWN,
};

typedef struct sub_ctx {
    ep_cli_mqtt m;
    ep_loop *loop;
    ep_mqttc *c;
    const char *filters[SUB_MAX_FILTERS];
    size_t nfilters;
    uint8_t qos;
    bool verbose, json, no_newline;
    unsigned long count_max, timeout_s, received;
    bool connected_once, finishing;
    int exit_code;
    ep_timer wait_timer;
} sub_ctx;

static void sub_usage(FILE *f)
{
    fprintf(f, "usage: edgeplane sub -t FILTER [-t FILTER ...] [options]\n\n"
               "Subscribe to MQTT topic filters and print the messages, one per line.\n\n"
               "subscription and output:\n"
               "  -t, --topic FILTER       topic filter, e.g. 'sensors/+/temp' or 'plant/#'\n"
               "                           (repeatable)\n"
               "  -q, --qos 0|1|2          maximum QoS to receive (default 0)\n"
               "  -v, --verbose            print the topic before the payload\n"
               "  -N                       no newline after the payload\n"
               "      --json               one JSON object per message: topic, qos, retain,\n"
               "                           payload (or payload_base64 when not UTF-8), and the\n"
               "                           MQTT 5 properties that are present\n"
               "  -C, --count N            exit after N messages\n"
               "  -W, --timeout SECONDS    exit after SECONDS (with -C: fail if fewer than N\n"
               "                           messages arrived by then)\n\n");
    ep_cli_mqtt_help(f);
    fprintf(f,
            "\nExit codes: 0 done (-C reached, -W elapsed without -C, or stopped by a\n"
            "signal), 1 the broker could not be reached, refused every subscription, or\n"
            "-W elapsed before -C messages arrived, 2 bad options.\n\n"
            "Examples:\n"
            "  edgeplane sub -t 'sensors/#' -v\n"
            "  edgeplane sub -t jobs/in -q 1 -i worker-1 --no-clean -C 10\n"
            "  edgeplane sub -t 'plant/+/state' --json -W 30\n"
            "  edgeplane sub -h broker.local --cafile ca.pem --cert me.pem --key me.key -t '#'\n");
}

static void sub_finish(sub_ctx *x, int code)
{
    if (x->finishing)
        return;
    x->finishing = true;
    x->exit_code = code;
    ep_timer_stop(&x->wait_timer);
    if (ep_mqttc_disconnect(x->c, EP_MQTT_RC_NORMAL_DISCONNECTION, 0) != EP_EOK)
        ep_loop_stop(x->loop);
}

/* ---- output ---- */

static void put_json_string(FILE *f, const uint8_t *p, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        switch (ch) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (ch < 0x20 || ch == 0x7F)
                fprintf(f, "\\u%04x", ch);
            else
                fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void put_base64(FILE *f, const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc('"', f);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        fputc(tbl[v >> 18], f);
        fputc(tbl[(v >> 12) & 63], f);
        fputc(tbl[(v >> 6) & 63], f);
        fputc(tbl[v & 63], f);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        fputc(tbl[v >> 18], f);
        fputc(tbl[(v >> 12) & 63], f);
        fputs("==", f);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        fputc(tbl[v >> 18], f);
        fputc(tbl[(v >> 12) & 63], f);
        fputc(tbl[(v >> 6) & 63], f);
        fputc('=', f);
    }
    fputc('"', f);
}

static void print_json(FILE *f, const ep_mqttc_message *m)
{
    fputs("{\"topic\":", f);
    put_json_string(f, m->topic.p, m->topic.len);
    fprintf(f, ",\"qos\":%u,\"retain\":%s", m->qos, m->retain ? "true" : "false");
    if (ep_mqtt_utf8_check(m->payload) == EP_EOK) {
        fputs(",\"payload\":", f);
        put_json_string(f, m->payload.p, m->payload.len);
    } else {
        fputs(",\"payload_base64\":", f);
        put_base64(f, m->payload.p, m->payload.len);
    }
    const ep_mqtt_props *pr = m->props;
    if (pr == NULL) {
        fputs("}\n", f);
        return;
    }
    if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_CONTENT_TYPE)) {
        fputs(",\"content_type\":", f);
        put_json_string(f, pr->content_type.p, pr->content_type.len);
    }
    if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_RESPONSE_TOPIC)) {
        fputs(",\"response_topic\":", f);
        put_json_string(f, pr->response_topic.p, pr->response_topic.len);
    }
    if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_CORRELATION_DATA)) {
        fputs(",\"correlation_data_base64\":", f);
        put_base64(f, pr->correlation_data.p, pr->correlation_data.len);
    }
    if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR))
        fprintf(f, ",\"payload_format\":%u", pr->payload_format_indicator);
    if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL))
        fprintf(f, ",\"message_expiry\":%u", pr->message_expiry_interval);
    if (pr->user_count) {
        fputs(",\"user_properties\":[", f);
        size_t it = 0;
        ep_mqtt_user_prop u;
        bool first = true;
        while (ep_mqtt_props_user_next(pr, &it, &u)) {
            fputs(first ? "[" : ",[", f);
            put_json_string(f, u.name.p, u.name.len);
            fputc(',', f);
            put_json_string(f, u.value.p, u.value.len);
            fputc(']', f);
            first = false;
        }
        fputc(']', f);
    }
    fputs("}\n", f);
}

/* ---- client callbacks ---- */

static void on_suback(ep_mqttc *c, ep_err err, const uint8_t *rcs, size_t n, void *ud)
{
    sub_ctx *x = ud;
    (void)c;
    if (err != EP_EOK) {
        if (err != EP_ECLOSED) /* a lost connection re-subscribes on its own */
            fprintf(stderr, "edgeplane sub: subscribe failed: %s\n", ep_strerror(err));
        return;
    }
    size_t refused = 0;
    for (size_t i = 0; i < n && i < x->nfilters; i++) {
        if (rcs[i] >= 0x80) {
            const char *name = ep_mqtt_rc_name(rcs[i]);
            fprintf(stderr, "edgeplane sub: subscription to '%s' refused: %s (0x%02x)\n",
                    x->filters[i], name ? name : "unknown reason", rcs[i]);
            refused++;
        } else {
            EP_LOG_INFO("sub", "subscribed to '%s' (granted QoS %u)", x->filters[i], rcs[i]);
            if (rcs[i] < x->qos)
                fprintf(stderr, "edgeplane sub: '%s' granted with QoS %u only\n", x->filters[i],
                        rcs[i]);
        }
    }
    if (refused == n)
        sub_finish(x, EP_EXIT_FAILURE);
}

static void subscribe_all(sub_ctx *x)
{
    ep_mqtt_sub subs[SUB_MAX_FILTERS];
    memset(subs, 0, sizeof(subs));
    for (size_t i = 0; i < x->nfilters; i++) {
        subs[i].filter = ep_mqtt_slice_make(x->filters[i], strlen(x->filters[i]));
        subs[i].qos = x->qos;
    }
    ep_err err = ep_mqttc_subscribe(x->c, subs, x->nfilters, 0, on_suback, x);
    if (err != EP_EOK)
        fprintf(stderr, "edgeplane sub: cannot subscribe: %s\n", ep_strerror(err));
}

static void on_sub_connect(ep_mqttc *c, bool sp, const ep_mqtt_props *props, void *ud)
{
    sub_ctx *x = ud;
    (void)c;
    (void)props;
    if (x->connected_once) {
        fprintf(stderr, "edgeplane sub: reconnected to %s:%u (%s)\n", x->m.o.host, x->m.o.port,
                sp ? "session resumed" : "new session, subscribing again");
        if (!sp)
            subscribe_all(x);
    } else {
        subscribe_all(x);
    }
    x->connected_once = true;
}

static void on_sub_disconnect(ep_mqttc *c, const ep_mqttc_disconnect_info *info, void *ud)
{
    sub_ctx *x = ud;
    if (x->finishing) {
        ep_loop_stop(x->loop);
        return;
    }
    if (!x->connected_once || !info->will_reconnect) {
        char why[300];
        ep_cli_mqtt_describe(info, why, sizeof(why));
        fprintf(stderr, "edgeplane sub: %s %s:%u: %s\n",
                x->connected_once ? "lost the connection to" : "cannot connect to", x->m.o.host,
                x->m.o.port, why);
        x->finishing = true;
        x->exit_code = EP_EXIT_FAILURE;
        ep_mqttc_disconnect(c, 0, 0);
        ep_loop_stop(x->loop);
    }
}

static void on_sub_message(ep_mqttc *c, const ep_mqttc_message *m, void *ud)
{
    sub_ctx *x = ud;
    if (x->finishing || (x->count_max && x->received >= x->count_max))
        return; /* not acknowledged: the broker keeps it for the session */
    if (x->json) {
        print_json(stdout, m);
    } else {
        if (x->verbose) {
            fwrite(m->topic.p, 1, m->topic.len, stdout);
            fputc(' ', stdout);
        }
        fwrite(m->payload.p, 1, m->payload.len, stdout);
        if (!x->no_newline)
            fputc('\n', stdout);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "edgeplane sub: cannot write the output\n");
        sub_finish(x, EP_EXIT_FAILURE);
        return;
    }
    ep_mqttc_ack(c, m->ack_token, 0);
    x->received++;
    if (x->count_max && x->received == x->count_max)
        sub_finish(x, EP_EXIT_OK);
}

static void on_wait_timeout(ep_timer *t)
{
    sub_ctx *x = t->data;
    if (x->count_max && x->received < x->count_max) {
        fprintf(stderr, "edgeplane sub: timed out after %lu s with %lu of %lu messages\n",
                x->timeout_s, x->received, x->count_max);
        sub_finish(x, EP_EXIT_FAILURE);
        return;
    }
    sub_finish(x, EP_EXIT_OK);
}

static void on_sub_signal(ep_io *io, unsigned events)
{
    sub_ctx *x = io->data;
    (void)events;
    if (ep_cli_mqtt_signal_read(x->m.sigfd) == 0)
        return;
    if (x->finishing)
        ep_loop_stop(x->loop);
    else
        sub_finish(x, EP_EXIT_OK);
}

/* ---- options ---- */

static int sub_options(sub_ctx *x, int argc, char **argv)
{
    static const struct option opts[] = {
        EP_CLI_MQTT_LONGOPTS,
        {"topic", required_argument, NULL, 't'},
        {"qos", required_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"count", required_argument, NULL, 'C'},
        {"timeout", required_argument, NULL, 'W'},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    ep_cli_mqtt *m = &x->m;
    unsigned long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":" EP_CLI_MQTT_SHORTOPTS "t:q:vNC:W:", opts, NULL)) !=
           -1) {
        int r = ep_cli_mqtt_option(m, c, optarg);
        if (r < 0)
            return EP_EXIT_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case EP_CLI_OPT_HELP:
            sub_usage(stdout);
            return EP_EXIT_OK;
        case 't':
            if (!ep_mqtt_topic_filter_valid(ep_mqtt_slice_make(optarg, strlen(optarg)))) {
                fprintf(stderr,
                        "edgeplane sub: '%s' is not a valid topic filter ('+' and '#' "
                        "must fill a whole level, '#' only last)\n",
                        optarg);
                return EP_EXIT_USAGE;
            }
            if (x->nfilters == SUB_MAX_FILTERS) {
                fprintf(stderr, "edgeplane sub: at most %d topic filters\n", SUB_MAX_FILTERS);
                return EP_EXIT_USAGE;
            }
            x->filters[x->nfilters++] = optarg;
            break;
        case 'q':
            if (ep_cli_mqtt_parse_uint(m, "--qos", optarg, 0, 2, &v))
                return EP_EXIT_USAGE;
            x->qos = (uint8_t)v;
            break;
        case 'v':
            x->verbose = true;
            break;
        case 'N':
            x->no_newline = true;
            break;
        case 'C':
            if (ep_cli_mqtt_parse_uint(m, "--count", optarg, 1, 4000000000ul, &x->count_max))
                return EP_EXIT_USAGE;
            break;
        case 'W':
            if (ep_cli_mqtt_parse_uint(m, "--timeout", optarg, 1, 31536000ul, &x->timeout_s))
                return EP_EXIT_USAGE;
            break;
        case OPT_JSON:
            x->json = true;
            break;
        case ':':
            if (optopt == 'h')
                fprintf(stderr, "edgeplane sub: -h needs a host name (for help, use --help)\n");
            else
                fprintf(stderr, "edgeplane sub: option '%s' needs a value\n", argv[optind - 1]);
            return EP_EXIT_USAGE;
        default:
            fprintf(stderr, "edgeplane sub: unknown option '%s' (see 'edgeplane sub --help')\n",
                    argv[optind - 1]);
            return EP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edgeplane sub: unexpected argument '%s'\n", argv[optind]);
        return EP_EXIT_USAGE;
    }
    if (x->nfilters == 0) {
        fprintf(stderr, "edgeplane sub: at least one topic filter is required (-t FILTER); see "
                        "'edgeplane sub --help'\n");
        return EP_EXIT_USAGE;
    }
    if (x->json && (x->verbose || x->no_newline)) {
        fprintf(stderr, "edgeplane sub: --json cannot be combined with -v or -N\n");
        return EP_EXIT_USAGE;
    }
    if (ep_cli_mqtt_finish(m))
        return EP_EXIT_USAGE;
    return -1;
}

int ep_cmd_sub(int argc, char **argv)
{
    sub_ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        fprintf(stderr, "edgeplane sub: out of memory\n");
        return EP_EXIT_FAILURE;
    }
    ep_cli_mqtt_init(&x->m, "sub");
    int rc = sub_options(x, argc, argv);
    if (rc >= 0)
        goto out;
    ep_mqttc_options *o = &x->m.o;
    o->manual_ack = true;
    o->on_connect = on_sub_connect;
    o->on_disconnect = on_sub_disconnect;
    o->on_message = on_sub_message;
    o->userdata = x;
    rc = ep_cli_mqtt_start(&x->m, on_sub_signal, x);
    x->loop = x->m.loop;
    x->c = x->m.c;
    if (rc >= 0)
        goto out;
    ep_timer_init(x->loop, &x->wait_timer, on_wait_timeout, x);
    if (x->timeout_s)
        ep_timer_start(&x->wait_timer, (uint64_t)x->timeout_s * 1000u);
    ep_mqttc_connect(x->c);
    x->exit_code = EP_EXIT_OK;
    ep_loop_run(x->loop);
    rc = x->exit_code;
out:
    if (x->c)
        ep_timer_stop(&x->wait_timer);
    ep_cli_mqtt_stop(&x->m);
    free(x);
    return rc;
}

#endif /* HAVE_EP_SVC_MQTTC */
