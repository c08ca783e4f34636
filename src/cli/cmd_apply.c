/*
 * cmd_apply.c - the resource commands, all talking to the broker like any
 * other MQTT client:
 *
 *   edgeplane apply -f FILE|DIR [-f ...]   validate locally (every error,
 *       naming resource, field and what was expected; exit 2, nothing
 *       sent), then publish each resource as a retained QoS 1 message on
 *       $edgeplane/resources/<kind>/<name> and wait for the broker's
 *       acknowledgements
 *   edgeplane delete KIND NAME...          an empty retained message
 *   edgeplane get assets|profiles [--json] the retained resources and the
 *       connector's retained status messages, as a table
 *
 * `get` knows it has seen every retained message when a probe it
 * publishes to itself after its SUBACK comes back: the broker sends
 * retained messages when it handles the SUBSCRIBE, before anything
 * published later on the same connection.
 */
#ifdef HAVE_EP_SVC_CONNECTOR
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_connector.h"
#include "core/cfg.h"
#include "core/clock.h"
#include "core/log.h"
#include "ep/mqtt_client.h"
#include "svc/connector/resource.h"

/* ------------------------------------------------------------------ */
/* a short-lived client driven synchronously                           */

typedef struct cli_conn {
    const char *cmd;
    ep_loop *loop;
    ep_mqttc *c;
    bool connected, failed;
    char why[256];
    size_t pending; /* publications not acknowledged */
    size_t refused;
    bool subscribed;
    bool probe_seen;
    char probe[80];
    /* get */
    struct item {
        char *name;
        char *status; /* JSON or NULL */
        bool has_resource;
    } * items;
    size_t nitems, capitems;
    bool profiles;
} cli_conn;

static void on_connect(ep_mqttc *c, bool sp, const ep_mqtt_props *p, void *ud)
{
    (void)c;
    (void)sp;
    (void)p;
    cli_conn *x = ud;
    x->connected = true;
}

static void on_disconnect(ep_mqttc *c, const ep_mqttc_disconnect_info *info, void *ud)
{
    (void)c;
    cli_conn *x = ud;
    if (!x->connected && info->err != EP_EOK) {
        x->failed = true;
        snprintf(x->why, sizeof(x->why), "%s", ep_strerror(info->err));
    }
    x->connected = false;
}

static struct item *item_get(cli_conn *x, const char *name, size_t n)
{
    for (size_t i = 0; i < x->nitems; i++)
        if (strlen(x->items[i].name) == n && memcmp(x->items[i].name, name, n) == 0)
            return &x->items[i];
    if (x->nitems == x->capitems) {
        size_t nc = x->capitems ? x->capitems * 2 : 16;
        struct item *ni = realloc(x->items, nc * sizeof(*ni));
        if (ni == NULL)
            return NULL;
        x->items = ni;
        x->capitems = nc;
    }
    struct item *it = &x->items[x->nitems];
    memset(it, 0, sizeof(*it));
    it->name = strndup(name, n);
    if (it->name == NULL)
        return NULL;
    x->nitems++;
    return it;
}

static void on_message(ep_mqttc *c, const ep_mqttc_message *m, void *ud)
{
    (void)c;
    cli_conn *x = ud;
    const char *t = (const char *)m->topic.p;
    size_t n = m->topic.len;
    if (n == strlen(x->probe) && memcmp(t, x->probe, n) == 0) {
        x->probe_seen = true;
        return;
    }
    char res_prefix[128], st_prefix[128];
    snprintf(res_prefix, sizeof(res_prefix), "%s/%s/", EP_CONN_TOPIC_RESOURCES,
             x->profiles ? "assetendpointprofile" : "asset");
    snprintf(st_prefix, sizeof(st_prefix), "%s/",
             x->profiles ? EP_CONN_TOPIC_STATUS_PROFILES : EP_CONN_TOPIC_STATUS_ASSETS);
    size_t rl = strlen(res_prefix), sl = strlen(st_prefix);
    if (m->payload.len == 0)
        return;
    if (n > rl && memcmp(t, res_prefix, rl) == 0) {
        struct item *it = item_get(x, t + rl, n - rl);
        if (it)
            it->has_resource = true;
    } else if (n > sl && memcmp(t, st_prefix, sl) == 0) {
        struct item *it = item_get(x, t + sl, n - sl);
        if (it) {
            free(it->status);
            it->status = strndup((const char *)m->payload.p, m->payload.len);
        }
    }
}

static void pub_done(ep_mqttc *c, ep_err err, ep_mqtt_rc rc, void *ud)
{
    (void)c;
    cli_conn *x = ud;
    if (x->pending)
        x->pending--;
    if (err != EP_EOK || rc >= 0x80)
        x->refused++;
}

static void sub_done(ep_mqttc *c, ep_err err, const uint8_t *rcs, size_t n, void *ud)
{
    cli_conn *x = ud;
    bool ok = err == EP_EOK;
    for (size_t i = 0; ok && i < n; i++)
        ok = rcs[i] < 0x80;
    if (!ok) {
        x->failed = true;
        snprintf(x->why, sizeof(x->why), "the broker refused the subscription%s",
                 err == EP_EOK ? " (not authorized?)" : "");
        return;
    }
    x->subscribed = true;
    ep_mqttc_pub p = {.topic = x->probe, .payload = "", .payload_len = 0, .qos = 0};
    ep_mqttc_publish(c, &p, NULL, NULL);
}

static int conn_open(cli_conn *x, const char *host, uint16_t port)
{
    if (ep_loop_new(&x->loop, NULL) != EP_EOK)
        return -1;
    ep_mqttc_options o;
    memset(&o, 0, sizeof(o));
    o.host = host;
    o.port = port;
    o.version = 5;
    o.clean_start = true;
    o.no_reconnect = true;
    o.connect_timeout_ms = 5000;
    o.on_connect = on_connect;
    o.on_disconnect = on_disconnect;
    o.on_message = on_message;
    o.userdata = x;
    char id[64];
    snprintf(id, sizeof(id), "edgeplane-%s-%ld", x->cmd, (long)getpid());
    o.client_id = id;
    if (ep_mqttc_new(&x->c, x->loop, &o) != EP_EOK || ep_mqttc_connect(x->c) != EP_EOK)
        return -1;
    return 0;
}

/* run the loop until *flag (or failure), at most ms */
static bool conn_wait(cli_conn *x, const bool *flag, const size_t *count, uint64_t ms)
{
    uint64_t end = ep_clock_mono_ms() + ms;
    while (!x->failed && ep_clock_mono_ms() < end) {
        if ((flag && *flag) || (count && *count == 0))
            return true;
        ep_loop_run_once(x->loop, 50);
        ep_loop_update_time(x->loop);
    }
    return (flag && *flag) || (count && *count == 0);
}

static void conn_close(cli_conn *x)
{
    if (x->c && x->connected &&
        ep_mqttc_disconnect(x->c, EP_MQTT_RC_NORMAL_DISCONNECTION, EP_MQTTC_END_SESSION) ==
            EP_EOK) {
        bool gone = false;
        uint64_t end = ep_clock_mono_ms() + 2000;
        while (x->connected && ep_clock_mono_ms() < end) {
            ep_loop_run_once(x->loop, 50);
            ep_loop_update_time(x->loop);
        }
        (void)gone;
    }
    ep_mqttc_free(x->c);
    x->c = NULL;
    if (x->loop) {
        ep_loop_run_once(x->loop, 0);
        ep_loop_free(x->loop);
    }
    x->loop = NULL;
    for (size_t i = 0; i < x->nitems; i++) {
        free(x->items[i].name);
        free(x->items[i].status);
    }
    free(x->items);
    x->items = NULL;
    x->nitems = 0;
}

static int connect_or_fail(cli_conn *x, const char *host, uint16_t port)
{
    if (conn_open(x, host, port) != 0) {
        fprintf(stderr, "edgeplane %s: out of memory\n", x->cmd);
        return EP_EXIT_FAILURE;
    }
    if (!conn_wait(x, &x->connected, NULL, 6000)) {
        fprintf(stderr, "edgeplane %s: cannot reach the broker at %s:%u: %s\n", x->cmd, host, port,
                x->why[0] ? x->why : "timed out");
        return EP_EXIT_FAILURE;
    }
    return EP_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* apply                                                               */

static void apply_usage(FILE *f)
{
    fprintf(f, "usage: edgeplane apply -f FILE|DIR [-f ...] [--broker HOST:PORT] [--dry-run]\n\n"
               "Validate AssetEndpointProfile and Asset resources (YAML, several per file\n"
               "separated by ---; a directory means its *.yaml and *.yml files) and load\n"
               "them into the running product: each is published as a retained message on\n"
               "$edgeplane/resources/<kind>/<name>, where the connector picks it up.\n"
               "Applying the same resource again changes nothing.\n\n"
               "options:\n"
               "  -f, --filename PATH      file or directory (repeatable)\n"
               "      --broker HOST:PORT   MQTT broker (default 127.0.0.1:1883)\n"
               "      --dry-run            validate only\n"
               "  -h, --help               show this help\n\n"
               "Exit codes: 0 applied, 1 broker unreachable or refused, 2 invalid resources\n"
               "(every error is printed and nothing is applied).\n");
}

int ep_cmd_apply(int argc, char **argv)
{
    static const struct option opts[] = {
        {"filename", required_argument, NULL, 'f'},
        {"broker", required_argument, NULL, 'b'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *paths[64];
    size_t npaths = 0;
    char host[256] = "127.0.0.1";
    uint16_t port = 1883;
    bool dry = false;
    int c;
    optind = 1;
    ep_log_set_level(EP_LOG_WARN);
    while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (npaths == 64) {
                fprintf(stderr, "edgeplane apply: at most 64 -f paths\n");
                return EP_EXIT_USAGE;
            }
            paths[npaths++] = optarg;
            break;
        case 'b':
            if (ep_cli_broker_addr("apply", optarg, host, sizeof(host), &port) != 0)
                return EP_EXIT_USAGE;
            break;
        case 'n':
            dry = true;
            break;
        case 'h':
            apply_usage(stdout);
            return EP_EXIT_OK;
        default:
            apply_usage(stderr);
            return EP_EXIT_USAGE;
        }
    }
    if (optind < argc || npaths == 0) {
        if (optind < argc)
            fprintf(stderr, "edgeplane apply: unexpected argument '%s'\n", argv[optind]);
        apply_usage(stderr);
        return EP_EXIT_USAGE;
    }
    ep_conn_res_list list = {0};
    ep_cfg_errs errs = {.max = 500};
    ep_err worst = EP_EOK;
    for (size_t i = 0; i < npaths; i++) {
        ep_err e = ep_conn_res_load_path(paths[i], &list, &errs);
        if (e != EP_EOK && worst != EP_EIO)
            worst = e;
    }
    for (size_t i = 0; i < list.n; i++)
        for (size_t j = 0; j < i; j++)
            if (list.items[i]->kind == list.items[j]->kind &&
                strcmp(list.items[i]->name, list.items[j]->name) == 0) {
                ep_cfg_errs_add(&errs, NULL, "%s %s: given twice",
                                ep_conn_kind_name(list.items[i]->kind), list.items[i]->name);
                if (worst == EP_EOK)
                    worst = EP_ECONFIG;
                break;
            }
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s: %s\n", errs.items[i].warning ? "warning" : "error",
                errs.items[i].text);
    if (errs.dropped)
        fprintf(stderr, "error: %zu more errors not shown\n", errs.dropped);
    size_t nerr = errs.nerr;
    ep_cfg_errs_fini(&errs);
    if (worst != EP_EOK) {
        fprintf(stderr, "edgeplane apply: %zu error%s; nothing applied\n", nerr,
                nerr == 1 ? "" : "s");
        ep_conn_res_list_fini(&list);
        return worst == EP_EIO ? EP_EXIT_FAILURE : EP_EXIT_USAGE;
    }
    if (list.n == 0) {
        fprintf(stderr, "edgeplane apply: no resources found\n");
        ep_conn_res_list_fini(&list);
        return EP_EXIT_USAGE;
    }
    if (dry) {
        for (size_t i = 0; i < list.n; i++)
            printf("%s/%s valid\n", ep_conn_kind_topic(list.items[i]->kind), list.items[i]->name);
        ep_conn_res_list_fini(&list);
        return EP_EXIT_OK;
    }
    cli_conn x;
    memset(&x, 0, sizeof(x));
    x.cmd = "apply";
    int rc = connect_or_fail(&x, host, port);
    /* profiles first, so that a connector never sees an asset before the
     * profile it needs in the same apply */
    for (int pass = 0; rc == EP_EXIT_OK && pass < 2; pass++)
        for (size_t i = 0; i < list.n; i++) {
            ep_conn_res *r = list.items[i];
            if ((pass == 0) != (r->kind == EP_CONN_KIND_PROFILE))
                continue;
            char topic[256];
            ep_conn_res_topic(r->kind, r->name, topic, sizeof(topic));
            ep_mqttc_pub p = {.topic = topic,
                              .payload = r->text,
                              .payload_len = r->text_len,
                              .qos = 1,
                              .retain = true};
            x.pending++;
            if (ep_mqttc_publish(x.c, &p, pub_done, &x) == EP_ENOMEM)
                x.pending--;
        }
    if (rc == EP_EXIT_OK) {
        if (!conn_wait(&x, NULL, &x.pending, 10000) || x.refused) {
            fprintf(stderr, "edgeplane apply: the broker did not accept %zu resource%s\n",
                    x.refused + x.pending, x.refused + x.pending == 1 ? "" : "s");
            rc = EP_EXIT_FAILURE;
        } else {
            for (size_t i = 0; i < list.n; i++)
                printf("%s/%s applied\n", ep_conn_kind_topic(list.items[i]->kind),
                       list.items[i]->name);
        }
    }
    conn_close(&x);
    ep_conn_res_list_fini(&list);
    return rc;
}

/* ------------------------------------------------------------------ */
/* delete                                                              */

int ep_cmd_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        {"broker", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char host[256] = "127.0.0.1";
    uint16_t port = 1883;
    int c;
    optind = 1;
    ep_log_set_level(EP_LOG_WARN);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (ep_cli_broker_addr("delete", optarg, host, sizeof(host), &port) != 0)
                return EP_EXIT_USAGE;
            break;
        case 'h':
            printf("usage: edgeplane delete asset|assetendpointprofile NAME... "
                   "[--broker HOST:PORT]\n\nRemove resources (an empty retained message "
                   "on their topic); the connector stops\nthe asset and clears its "
                   "status.\n");
            return EP_EXIT_OK;
        default:
            return EP_EXIT_USAGE;
        }
    }
    if (argc - optind < 2) {
        fprintf(stderr, "usage: edgeplane delete asset|assetendpointprofile NAME... "
                        "[--broker HOST:PORT]\n");
        return EP_EXIT_USAGE;
    }
    ep_conn_kind k = ep_conn_kind_parse(argv[optind]);
    if (k == EP_CONN_KIND_NONE) {
        fprintf(stderr,
                "edgeplane delete: unknown kind '%s' (expected asset or "
                "assetendpointprofile)\n",
                argv[optind]);
        return EP_EXIT_USAGE;
    }
    for (int i = optind + 1; i < argc; i++)
        if (!ep_conn_name_valid(argv[i])) {
            fprintf(stderr, "edgeplane delete: '%s' is not a valid resource name\n", argv[i]);
            return EP_EXIT_USAGE;
        }
    cli_conn x;
    memset(&x, 0, sizeof(x));
    x.cmd = "delete";
    int rc = connect_or_fail(&x, host, port);
    for (int i = optind + 1; rc == EP_EXIT_OK && i < argc; i++) {
        char topic[256];
        ep_conn_res_topic(k, argv[i], topic, sizeof(topic));
        ep_mqttc_pub p = {
            .topic = topic, .payload = "", .payload_len = 0, .qos = 1, .retain = true};
        x.pending++;
        if (ep_mqttc_publish(x.c, &p, pub_done, &x) == EP_ENOMEM)
            x.pending--;
    }
    if (rc == EP_EXIT_OK) {
        if (!conn_wait(&x, NULL, &x.pending, 10000) || x.refused) {
            fprintf(stderr, "edgeplane delete: the broker did not accept the deletion\n");
            rc = EP_EXIT_FAILURE;
        } else {
            for (int i = optind + 1; i < argc; i++)
                printf("%s/%s deleted\n", ep_conn_kind_topic(k), argv[i]);
        }
    }
    conn_close(&x);
    return rc;
}

/* ------------------------------------------------------------------ */
/* get                                                                 */

static const char *jget(const ep_cfg_node *root, const char *key, const char *def)
{
    const ep_cfg_node *n = root ? ep_cfg_node_get(root, key) : NULL;
    if (n == NULL || n->kind != EP_CFG_NODE_SCALAR || n->is_null)
        return def;
    return n->value;
}

static void age_text(const char *iso, char *out, size_t n)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (iso == NULL || strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) == NULL) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = timegm(&tm);
    long d = (long)(time(NULL) - t);
    if (d < 0)
        d = 0;
    if (d < 120)
        snprintf(out, n, "%lds ago", d);
    else if (d < 7200)
        snprintf(out, n, "%ldm ago", d / 60);
    else
        snprintf(out, n, "%ldh ago", d / 3600);
}

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->name, ((const struct item *)b)->name);
}

int ep_cmd_get(int argc, char **argv)
{
    static const struct option opts[] = {
        {"broker", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char host[256] = "127.0.0.1";
    uint16_t port = 1883;
    bool json = false;
    int c;
    optind = 1;
    ep_log_set_level(EP_LOG_WARN);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (ep_cli_broker_addr("get", optarg, host, sizeof(host), &port) != 0)
                return EP_EXIT_USAGE;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            printf("usage: edgeplane get assets|assetendpointprofiles [--json] "
                   "[--broker HOST:PORT]\n\nList resources with the status the connector "
                   "reports for them (connected,\nlast value time, last error, counters). "
                   "--json prints the status objects.\n");
            return EP_EXIT_OK;
        default:
            return EP_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "usage: edgeplane get assets|assetendpointprofiles [--json] "
                        "[--broker HOST:PORT]\n");
        return EP_EXIT_USAGE;
    }
    ep_conn_kind k = ep_conn_kind_parse(argv[optind]);
    if (k == EP_CONN_KIND_NONE) {
        fprintf(stderr,
                "edgeplane get: unknown kind '%s' (expected assets or "
                "assetendpointprofiles)\n",
                argv[optind]);
        return EP_EXIT_USAGE;
    }
    cli_conn x;
    memset(&x, 0, sizeof(x));
    x.cmd = "get";
    x.profiles = k == EP_CONN_KIND_PROFILE;
    snprintf(x.probe, sizeof(x.probe), "$edgeplane/cli/get-%ld-%ld", (long)getpid(),
             (long)ep_clock_mono_ms());
    int rc = connect_or_fail(&x, host, port);
    if (rc == EP_EXIT_OK) {
        char f1[128], f2[128];
        snprintf(f1, sizeof(f1), "%s/%s/+", EP_CONN_TOPIC_RESOURCES, ep_conn_kind_topic(k));
        snprintf(f2, sizeof(f2), "%s/+",
                 x.profiles ? EP_CONN_TOPIC_STATUS_PROFILES : EP_CONN_TOPIC_STATUS_ASSETS);
        ep_mqtt_sub subs[3] = {
            {.filter = ep_mqtt_slice_make(f1, strlen(f1)), .qos = 0},
            {.filter = ep_mqtt_slice_make(f2, strlen(f2)), .qos = 0},
            {.filter = ep_mqtt_slice_make(x.probe, strlen(x.probe)), .qos = 0},
        };
        ep_mqttc_subscribe(x.c, subs, 3, 0, sub_done, &x);
        if (!conn_wait(&x, &x.probe_seen, NULL, 5000)) {
            fprintf(stderr, "edgeplane get: %s\n", x.why[0] ? x.why : "no answer from the broker");
            rc = EP_EXIT_FAILURE;
        }
    }
    if (rc == EP_EXIT_OK) {
        if (x.nitems)
            qsort(x.items, x.nitems, sizeof(*x.items), item_cmp);
        if (json) {
            printf("[");
            for (size_t i = 0; i < x.nitems; i++) {
                struct item *it = &x.items[i];
                printf("%s\n  ", i ? "," : "");
                if (it->status)
                    printf("%s", it->status);
                else
                    printf("{\"name\":\"%s\",\"state\":\"pending\",\"connected\":false}", it->name);
            }
            printf("%s]\n", x.nitems ? "\n" : "");
        } else if (x.profiles) {
            printf("%-24s %-7s %-36s %s\n", "NAME", "VALID", "TARGET", "ERROR");
            for (size_t i = 0; i < x.nitems; i++) {
                struct item *it = &x.items[i];
                ep_cfg_tree *t = NULL;
                ep_cfg_errs e = {0};
                if (it->status)
                    ep_cfg_parse_str("status", it->status, strlen(it->status), NULL, &t, &e);
                const ep_cfg_node *r = t ? ep_cfg_tree_root(t) : NULL;
                printf("%-24s %-7s %-36s %s\n", it->name,
                       !it->has_resource ? "deleted" : jget(r, "valid", "?"),
                       jget(r, "targetAddress", "-"), jget(r, "lastError", ""));
                ep_cfg_tree_free(t);
                ep_cfg_errs_fini(&e);
            }
        } else {
            printf("%-20s %-16s %-12s %-9s %-10s %9s %9s %7s  %s\n", "NAME", "ENDPOINT", "STATE",
                   "CONNECTED", "LAST VALUE", "VALUES", "MESSAGES", "DROPPED", "ERROR");
            for (size_t i = 0; i < x.nitems; i++) {
                struct item *it = &x.items[i];
                ep_cfg_tree *t = NULL;
                ep_cfg_errs e = {0};
                if (it->status)
                    ep_cfg_parse_str("status", it->status, strlen(it->status), NULL, &t, &e);
                const ep_cfg_node *r = t ? ep_cfg_tree_root(t) : NULL;
                const ep_cfg_node *cn = r ? ep_cfg_node_get(r, "counters") : NULL;
                char age[32];
                age_text(jget(r, "lastValueTime", NULL), age, sizeof(age));
                const char *state = r ? jget(r, "state", "?") : "pending";
                if (!it->has_resource)
                    state = "deleted";
                printf("%-20s %-16s %-12s %-9s %-10s %9s %9s %7s  %s\n", it->name,
                       jget(r, "endpointProfile", "-"), state,
                       strcmp(jget(r, "connected", "false"), "true") == 0 ? "yes" : "no", age,
                       jget(cn, "values", "0"), jget(cn, "messages", "0"), jget(cn, "dropped", "0"),
                       jget(r, "lastError", ""));
                ep_cfg_tree_free(t);
                ep_cfg_errs_fini(&e);
            }
            if (x.nitems == 0)
                printf("(no assets; add some with edgeplane apply -f FILE)\n");
        }
    }
    conn_close(&x);
    return rc;
}
#endif
