/*
 * cmd_connector.c - `edgeplane connector`: the OPC UA connector alone
 * (src/svc/connector). It connects to the broker given by --broker, takes
 * its assets from the resource topics there (written by `edgeplane apply`)
 * and, with --resources, applies the resources of a file or directory
 * first. With --http it serves /metrics, /healthz and /readyz (ready while
 * connected to the broker), as `edgeplane broker --http` does. When started
 * it prints one line on stdout:
 *   connector ready: broker HOST:PORT[ http HOST:PORT]
 */
#ifdef HAVE_EP_SVC_CONNECTOR
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_connector.h"
#include "cli/cmd_mqtt.h"
#include "core/log.h"
#include "core/sock.h"
#include "svc/connector/connector.h"
#ifdef HAVE_EP_SVC_API
#include "svc/api/observe.h"
#endif

int ep_cli_broker_addr(const char *cmd, const char *arg, char *host, size_t hostn, uint16_t *port)
{
    ep_hostport hp;
    const char *why = NULL;
    char buf[300];
    /* a bare host gets the default port */
    if (strchr(arg, ':') == NULL) {
        snprintf(buf, sizeof(buf), "%.290s:1883", arg);
        arg = buf;
    }
    if (ep_hostport_parse(arg, &hp, &why) != EP_EOK || hp.port == 0) {
        fprintf(stderr, "edgeplane %s: --broker %s: %s\n", cmd, arg,
                why ? why : "expected HOST:PORT");
        return -1;
    }
    snprintf(host, hostn, "%s", hp.host[0] ? hp.host : "127.0.0.1");
    *port = hp.port;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: edgeplane connector [options]\n\n"
               "Run the OPC UA connector: read assets and endpoint profiles from the\n"
               "broker (edgeplane apply), connect to their OPC UA servers and publish\n"
               "their datasets and events to MQTT (docs/connector.md).\n\n"
               "options:\n"
               "      --broker HOST:PORT     MQTT broker (default 127.0.0.1:1883)\n"
               "      --resources PATH       apply the resources in this file or directory\n"
               "                             (*.yaml, *.yml) at start, as edgeplane apply does\n"
               "      --pki DIR              OPC UA certificate store (default\n"
               "                             ~/.edgeplane/connector-pki; created when a profile\n"
               "                             uses security or user authentication)\n"
               "      --secrets DIR          directory of the secret files named by profiles\n"
               "                             (default: the current directory)\n"
               "      --id ID                MQTT client id (default edgeplane-connector)\n"
               "      --username NAME        broker user name\n"
               "      --password-file FILE   broker password, read at each connection\n"
               "      --auth-method M        MQTT 5 enhanced authentication with the broker:\n"
               "                             SCRAM-SHA-256 (needs --username and\n"
               "                             --password-file)\n"
               "      --tls                  TLS to the broker, verified against the system CAs\n"
               "                             (give the TLS port in --broker, e.g. HOST:8883)\n"
               "      --cafile FILE          verify the broker against these CAs (implies --tls)\n"
               "      --cert FILE            client certificate for mutual TLS (implies --tls)\n"
               "      --key FILE             its private key (default: in the --cert file)\n"
               "      --tls-server-name N    name the broker certificate must carry (default:\n"
               "                             the --broker host)\n"
               "      --insecure             do not verify the broker (testing only)\n"
               "      --buffer-messages N    messages kept while the broker is unreachable\n"
               "                             (default 100000; oldest dropped and counted)\n"
               "      --buffer-mb N          the same, in MiB (default 64)\n"
               "      --status-interval MS   counters in status messages at most this often\n"
               "                             (default 5000)\n"
               "      --http HOST:PORT       serve /metrics (Prometheus), /healthz and /readyz\n"
               "                             (ready while connected to the broker; port 0 =\n"
               "                             any free port, printed in the ready line)\n"
               "      --log-level LEVEL      trace, debug, info, warn, error (default info)\n"
               "  -h, --help                 show this help\n\n"
               "Exit codes: 0 stopped by a signal, 1 runtime failure, 2 bad options or\n"
               "resources.\n");
}

static int parse_num(const char *what, const char *s, unsigned long lo, unsigned long hi,
                     unsigned long *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == 0 || *end != 0 || v < lo || v > hi) {
        fprintf(stderr, "edgeplane connector: %s %s: expected a number in %lu..%lu\n", what, s, lo,
                hi);
        return -1;
    }
    *out = v;
    return 0;
}

#ifdef HAVE_EP_SVC_API
static ep_api_server *http_server;
#endif

/* http_start serves the process registry (the connector's metrics and its
 * readiness check) on its own thread; line gets " http HOST:PORT". */
static ep_err http_start(const char *addr, char *line, size_t n)
{
#ifdef HAVE_EP_SVC_API
    ep_api_opts ao = {0};
    ep_err err = ep_api_server_start_thread(addr, &ao, &http_server);
    if (err != EP_EOK) {
        fprintf(stderr, "edgeplane connector: --http %s: %s\n", addr, ep_strerror(err));
        return err;
    }
    ep_hostport hp;
    const char *why = NULL;
    if (ep_hostport_parse(addr, &hp, &why) == EP_EOK) {
        char a[300];
        hp.port = ep_api_server_port(http_server);
        if (hp.host[0] == 0)
            snprintf(hp.host, sizeof(hp.host), "0.0.0.0");
        ep_hostport_format(&hp, a, sizeof(a));
        snprintf(line, n, " http %s", a);
    }
    return EP_EOK;
#else
    (void)addr;
    (void)line;
    (void)n;
    fprintf(stderr, "edgeplane connector: --http: built without the API module\n");
    return EP_EUNSUPPORTED;
#endif
}

/* Checks the TLS and authentication options (parsed as pub's and sub's,
 * cmd_mqtt.h); prints and returns -1 when they cannot work. */
static int security_check(const ep_connector_opts *o)
{
    const ep_mqttc_tls_options *t = &o->tls;
    const char *bad = NULL;
    if (t->insecure)
        fprintf(stderr, "edgeplane connector: warning: --insecure: the broker's certificate is "
                        "not verified\n");
    if ((t->key_file && !t->cert_file) || (t->server_name && !t->enable))
        bad = "--key needs --cert, and --tls-server-name needs TLS";
    else if (o->auth_method && (!o->username || !o->password_file))
        bad = "--auth-method needs --username and --password-file";
    if (bad) {
        fprintf(stderr, "edgeplane connector: %s\n", bad);
        return -1;
    }
    return 0;
}

int ep_cmd_connector(int argc, char **argv)
{
    static const struct option opts[] = {
        {"broker", required_argument, NULL, 'b'},
        {"resources", required_argument, NULL, 'r'},
        {"pki", required_argument, NULL, 'p'},
        {"secrets", required_argument, NULL, 's'},
        {"id", required_argument, NULL, 'i'},
        {"username", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'P'},
        {"buffer-messages", required_argument, NULL, 'n'},
        {"buffer-mb", required_argument, NULL, 'm'},
        {"status-interval", required_argument, NULL, 'S'},
        {"log-level", required_argument, NULL, 'L'},
        {"http", required_argument, NULL, 'H'},
        EP_CLI_MQTT_SECURITY_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ep_connector_opts o;
    memset(&o, 0, sizeof(o));
    char host[256] = "127.0.0.1";
    uint16_t port = 1883;
    const char *resources = NULL, *http = NULL;
    unsigned long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        ep_log_level lvl;
        int sr = ep_cli_mqtt_security_option("connector", &o.tls, &o.auth_method, c, optarg);
        if (sr < 0)
            return EP_EXIT_USAGE;
        if (sr > 0)
            continue;
        switch (c) {
        case 'b':
            if (ep_cli_broker_addr("connector", optarg, host, sizeof(host), &port) != 0)
                return EP_EXIT_USAGE;
            break;
        case 'r':
            resources = optarg;
            break;
        case 'p':
            o.pki_dir = optarg;
            break;
        case 's':
            o.secrets_dir = optarg;
            break;
        case 'i':
            o.client_id = optarg;
            break;
        case 'u':
            o.username = optarg;
            break;
        case 'P':
            o.password_file = optarg;
            break;
        case 'n':
            if (parse_num("--buffer-messages", optarg, 1, 100000000, &v) != 0)
                return EP_EXIT_USAGE;
            o.buffer_messages = (uint32_t)v;
            break;
        case 'm':
            if (parse_num("--buffer-mb", optarg, 1, 65536, &v) != 0)
                return EP_EXIT_USAGE;
            o.buffer_bytes = (size_t)v << 20;
            break;
        case 'S':
            if (parse_num("--status-interval", optarg, 100, 3600000, &v) != 0)
                return EP_EXIT_USAGE;
            o.status_interval_ms = (uint32_t)v;
            break;
        case 'L':
            if (ep_log_level_parse(optarg, &lvl) != 0) {
                fprintf(stderr,
                        "edgeplane connector: --log-level %s: expected trace, debug, "
                        "info, warn or error\n",
                        optarg);
                return EP_EXIT_USAGE;
            }
            ep_log_set_level(lvl);
            break;
        case 'H': {
            ep_hostport hp;
            const char *why = NULL;
            if (ep_hostport_parse(optarg, &hp, &why) != EP_EOK) {
                fprintf(stderr, "edgeplane connector: --http %s: %s\n", optarg,
                        why ? why : "expected HOST:PORT");
                return EP_EXIT_USAGE;
            }
            http = optarg;
            break;
        }
        case 'h':
            usage(stdout);
            return EP_EXIT_OK;
        default:
            usage(stderr);
            return EP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edgeplane connector: unexpected argument '%s'\n", argv[optind]);
        return EP_EXIT_USAGE;
    }
    if (security_check(&o))
        return EP_EXIT_USAGE;
    ep_conn_res_list seed = {0};
    if (resources) {
        ep_cfg_errs errs = {.max = 200};
        ep_err err = ep_conn_res_load_path(resources, &seed, &errs);
        ep_cfg_errs_print(&errs, stderr);
        ep_cfg_errs_fini(&errs);
        if (err != EP_EOK) {
            fprintf(stderr, "edgeplane connector: --resources %s: not started\n", resources);
            ep_conn_res_list_fini(&seed);
            return err == EP_EIO ? EP_EXIT_FAILURE : EP_EXIT_USAGE;
        }
        o.seed = &seed;
    }
    o.broker_host = host;
    o.broker_port = port;
    ep_cli_block_signals();
    ep_connector *cn = NULL;
    int rc = EP_EXIT_FAILURE;
    char http_line[320] = "";
    ep_err err = ep_connector_new(&cn, &o);
    if (err == EP_EOK)
        err = ep_connector_start(cn);
    if (err != EP_EOK)
        fprintf(stderr, "edgeplane connector: cannot start: %s\n", ep_strerror(err));
    else if (http && http_start(http, http_line, sizeof(http_line)) != EP_EOK)
        ep_connector_stop(cn);
    else {
        printf("connector ready: broker %s:%u%s\n", host, port, http_line);
        fflush(stdout);
        int sig;
        while ((sig = ep_cli_wait_signal()) == SIGHUP)
            ;
        EP_LOG_INFO("connector", "signal %d received, stopping", sig);
        ep_connector_stop(cn);
        rc = EP_EXIT_OK;
    }
    ep_connector_wait(cn);
#ifdef HAVE_EP_SVC_API
    ep_api_server_stop(http_server);
    http_server = NULL;
#endif
    ep_connector_free(cn);
    ep_conn_res_list_fini(&seed);
    return rc;
}
#endif
