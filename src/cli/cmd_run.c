/*
 * cmd_run.c - `edgeplane run`: every service in one process.
 *
 * With no configuration it starts the MQTT broker (127.0.0.1:1883), the
 * OPC UA simulation server (opc.tcp://127.0.0.1:4840, src/svc/opcua/sim.h,
 * in-process on its own loop thread) and the OPC UA connector with an
 * embedded set of simulated assets (ovens, a pump, a thermostat), and
 * prints how to watch the data. The connector talks to the broker through
 * the MQTT client exactly as it does when it runs alone (`edgeplane
 * connector`); the default resources reach it through the broker as if
 * applied with `edgeplane apply`, so `edgeplane get assets`, `apply` and
 * `delete` work on them too.
 *
 * Flags: the broker's (--listen, --config, --workers, --log-level), plus
 * --opcua-listen URL, --no-opcua-sim and --resources PATH (resources to
 * load instead of the default assets).
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/config.h"
#include "core/log.h"
#include "svc/broker/broker.h"
#ifdef HAVE_EP_SVC_OPCUA
#include "svc/opcua/server.h"
#include "svc/opcua/sim.h"
#endif
#ifdef HAVE_EP_SVC_CONNECTOR
#include "svc/connector/connector.h"
#endif

#define RUN_MAX_ARGS 64

#ifdef HAVE_EP_SVC_CONNECTOR
/* The default plant, for the simulation server's node ids (namespace 2).
 * "%s" is the server's endpoint URL. */
static const char default_resources[] =
    "apiVersion: edgeplane.io/v1\n"
    "kind: AssetEndpointProfile\n"
    "metadata: {name: plant-sim}\n"
    "spec:\n"
    "  targetAddress: %s\n"
    "  authentication: {method: Anonymous}\n"
    "  additionalConfiguration: >-\n"
    "    {\"shared\": true, \"defaults\": {\"publishingIntervalMilliseconds\": 1000,\n"
    "    \"samplingIntervalMilliseconds\": 500, \"queueSize\": 1}}\n"
    "---\n"
    "apiVersion: edgeplane.io/v1\n"
    "kind: Asset\n"
    "metadata: {name: oven-1}\n"
    "spec:\n"
    "  assetEndpointProfileRef: plant-sim\n"
    "  displayName: Oven 1\n"
    "  datasets:\n"
    "    - name: telemetry\n"
    "      topic: {path: plant/oven-1/telemetry}\n"
    "      datasetConfiguration: '{\"keyFrameCount\": 10}'\n"
    "      dataPoints:\n"
    "        - {name: temperature, dataSource: ns=2;s=Plant.Oven1.Temperature}\n"
    "        - {name: setpoint, dataSource: ns=2;s=Plant.Oven1.Setpoint}\n"
    "        - {name: heating, dataSource: ns=2;s=Plant.Oven1.Heating}\n"
    "        - {name: status, dataSource: ns=2;s=Plant.Oven1.Status}\n"
    "        - {name: counter, dataSource: ns=2;s=Plant.Oven1.Counter}\n"
    "  events:\n"
    "    - name: alarms\n"
    "      eventNotifier: ns=2;s=Plant.Oven1\n"
    "      topic: {path: plant/oven-1/events}\n"
    "---\n"
    "apiVersion: edgeplane.io/v1\n"
    "kind: Asset\n"
    "metadata: {name: oven-2}\n"
    "spec:\n"
    "  assetEndpointProfileRef: plant-sim\n"
    "  displayName: Oven 2\n"
    "  datasets:\n"
    "    - name: telemetry\n"
    "      topic: {path: plant/oven-2/telemetry}\n"
    "      dataPoints:\n"
    "        - {name: temperature, dataSource: ns=2;s=Plant.Oven2.Temperature}\n"
    "        - {name: pressure, dataSource: ns=2;s=Plant.Oven2.Pressure}\n"
    "        - {name: heating, dataSource: ns=2;s=Plant.Oven2.Heating}\n"
    "---\n"
    "apiVersion: edgeplane.io/v1\n"
    "kind: Asset\n"
    "metadata: {name: pump-1}\n"
    "spec:\n"
    "  assetEndpointProfileRef: plant-sim\n"
    "  displayName: Pump 1 (data points by browse path)\n"
    "  datasets:\n"
    "    - name: telemetry\n"
    "      topic: {path: plant/pump-1/telemetry}\n"
    "      dataPoints:\n"
    "        - {name: pressure, dataSource: /2:Plant/2:Pump1/2:Pressure}\n"
    "        - {name: flowRate, dataSource: /2:Plant/2:Pump1/2:FlowRate}\n"
    "        - {name: running, dataSource: /2:Plant/2:Pump1/2:Running}\n"
    "---\n"
    "apiVersion: edgeplane.io/v1\n"
    "kind: Asset\n"
    "metadata: {name: thermostat-1}\n"
    "spec:\n"
    "  assetEndpointProfileRef: plant-sim\n"
    "  displayName: Thermostat 1\n"
    "  datasets:\n"
    "    - name: telemetry\n"
    "      topic: {path: plant/thermostat-1/telemetry}\n"
    "      dataPoints:\n"
    "        - {name: temperature, dataSource: ns=2;s=Plant.Thermostat1.Temperature}\n"
    "        - {name: setpoint, dataSource: ns=2;s=Plant.Thermostat1.Setpoint}\n"
    "        - {name: mode, dataSource: ns=2;s=Plant.Thermostat1.Mode}\n";
#endif

#ifdef HAVE_EP_SVC_OPCUA
typedef struct run_sim {
    ep_loop *loop;
    ep_ua_server *srv;
    ep_ua_sim *sim;
    pthread_t th;
    bool running;
} run_sim;

static void *sim_thread(void *arg)
{
    ep_loop_run(arg);
    return NULL;
}

static int sim_start(run_sim *s, const char *url)
{
    if (ep_loop_new(&s->loop, NULL) != EP_EOK)
        return EP_EXIT_FAILURE;
    ep_ua_server_opts o;
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.app_uri = "urn:edgeplane:opcua-sim";
    o.app_name = "edgeplane opcua-sim";
    ep_err e = ep_ua_server_new(s->loop, &o, &s->srv);
    if (e != EP_EOK) {
        fprintf(stderr, "edgeplane run: OPC UA simulation: cannot listen on %s: %s\n", url,
                ep_strerror(e));
        return EP_EXIT_FAILURE;
    }
    ep_ua_sim_opts so;
    memset(&so, 0, sizeof(so));
    if ((e = ep_ua_sim_new(s->loop, s->srv, &so, &s->sim)) != EP_EOK) {
        fprintf(stderr, "edgeplane run: OPC UA simulation: %s\n", ep_strerror(e));
        return EP_EXIT_FAILURE;
    }
    if (pthread_create(&s->th, NULL, sim_thread, s->loop) != 0)
        return EP_EXIT_FAILURE;
    s->running = true;
    return EP_EXIT_OK;
}

static void sim_stop(run_sim *s)
{
    if (s->running) {
        ep_loop_stop(s->loop);
        pthread_join(s->th, NULL);
        s->running = false;
    }
    ep_ua_sim_free(s->sim);
    ep_ua_server_free(s->srv);
    if (s->loop)
        ep_loop_run_once(s->loop, 0);
    ep_loop_free(s->loop);
    memset(s, 0, sizeof(*s));
}
#endif

/* how to call this binary from the current directory ("./build/edgeplane"
 * under the source tree, else "edgeplane") */
static void self_name(char *out, size_t n)
{
    char exe[PATH_MAX], cwd[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    snprintf(out, n, "edgeplane");
    if (k <= 0 || getcwd(cwd, sizeof(cwd)) == NULL)
        return;
    exe[k] = 0;
    size_t cl = strlen(cwd);
    if (strncmp(exe, cwd, cl) == 0 && exe[cl] == '/')
        snprintf(out, n, "./%.*s", (int)(n - 3), exe + cl + 1);
}

int ep_cmd_run(int argc, char **argv)
{
    ep_broker_config cfg;
    ep_broker *b = NULL;
    const char *opcua_url = "opc.tcp://127.0.0.1:4840";
    const char *resources = NULL;
    bool no_sim = false;
    char *bargv[RUN_MAX_ARGS];
    int bargc = 0;

    ep_broker_config_defaults(&cfg);
    if (argc > 1 && (argv[1][0] != '-')) {
        fprintf(stderr, "edgeplane run: unexpected argument '%s'\n", argv[1]);
        return EP_EXIT_USAGE;
    }
    /* take our own flags out, pass the rest to the broker's parser */
    for (int i = 0; i < argc && bargc < RUN_MAX_ARGS - 1; i++) {
        if (i > 0 &&
            (strcmp(argv[i], "--opcua-listen") == 0 || strcmp(argv[i], "--resources") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "edgeplane run: %s needs a value\n", argv[i]);
                return EP_EXIT_USAGE;
            }
            if (argv[i][2] == 'o')
                opcua_url = argv[++i];
            else
                resources = argv[++i];
            continue;
        }
        if (i > 0 && strcmp(argv[i], "--no-opcua-sim") == 0) {
            no_sim = true;
            continue;
        }
        if (i > 0 && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
            printf("usage: edgeplane run [--listen HOST:PORT] [--config FILE] "
                   "[--workers N]\n"
                   "                     [--opcua-listen URL] [--no-opcua-sim] "
                   "[--resources PATH]\n"
                   "                     [--http HOST:PORT] [--log-level LEVEL]\n\n"
                   "Run the broker, the OPC UA simulation server (default\n"
                   "opc.tcp://127.0.0.1:4840) and the OPC UA connector in one process. "
                   "Without\n--resources the connector gets a default set of simulated "
                   "assets. --http serves\n/metrics, /healthz and /readyz of both the "
                   "broker and the connector.\n");
            return EP_EXIT_OK;
        }
        bargv[bargc++] = argv[i];
    }
    bargv[bargc] = NULL;
    int rc = ep_cli_broker_options(bargc, bargv, &cfg, "run");
    if (rc >= 0)
        return rc;
#ifdef HAVE_EP_SVC_CONNECTOR
    ep_conn_res_list seed = {0};
    if (resources) {
        ep_cfg_errs errs = {.max = 200};
        ep_err e = ep_conn_res_load_path(resources, &seed, &errs);
        ep_cfg_errs_print(&errs, stderr);
        ep_cfg_errs_fini(&errs);
        if (e != EP_EOK) {
            ep_conn_res_list_fini(&seed);
            return e == EP_EIO ? EP_EXIT_FAILURE : EP_EXIT_USAGE;
        }
    }
#else
    (void)resources;
#endif
    ep_cli_block_signals();
    rc = ep_cli_broker_start(&cfg, &b);
    if (rc != EP_EXIT_OK) {
#ifdef HAVE_EP_SVC_CONNECTOR
        ep_conn_res_list_fini(&seed);
#endif
        return rc;
    }
    ep_hostport hp = cfg.listeners[0].addr;
    hp.port = ep_broker_listener_port(b, 0);
    const char *bhost = hp.host[0] && strcmp(hp.host, "0.0.0.0") != 0 ? hp.host : "127.0.0.1";
    const char *sim_url = NULL;
#ifdef HAVE_EP_SVC_OPCUA
    run_sim sim;
    memset(&sim, 0, sizeof(sim));
    if (!no_sim) {
        if (sim_start(&sim, opcua_url) != EP_EXIT_OK) {
            sim_stop(&sim);
            ep_broker_stop(b);
            ep_broker_wait(b);
            ep_broker_free(b);
#ifdef HAVE_EP_SVC_CONNECTOR
            ep_conn_res_list_fini(&seed);
#endif
            return EP_EXIT_FAILURE;
        }
        sim_url = ep_ua_server_endpoint_url(sim.srv);
    }
#else
    (void)no_sim;
    (void)opcua_url;
#endif
#ifdef HAVE_EP_SVC_CONNECTOR
    ep_connector *cn = NULL;
    if (!resources && sim_url) {
        size_t n = sizeof(default_resources) + strlen(sim_url);
        char *text = malloc(n);
        if (text) {
            int k = snprintf(text, n, default_resources, sim_url);
            ep_cfg_errs errs = {0};
            if (ep_conn_res_parse_multi("<default resources>", text, (size_t)k, &seed, &errs) !=
                EP_EOK)
                ep_cfg_errs_print(&errs, stderr);
            ep_cfg_errs_fini(&errs);
            free(text);
        }
    }
    ep_connector_opts co;
    memset(&co, 0, sizeof(co));
    co.broker_host = bhost;
    co.broker_port = hp.port;
    co.seed = &seed;
    if (ep_connector_new(&cn, &co) != EP_EOK || ep_connector_start(cn) != EP_EOK) {
        fprintf(stderr, "edgeplane run: cannot start the OPC UA connector\n");
        ep_connector_free(cn);
        cn = NULL;
    }
#endif
    char self[PATH_MAX];
    self_name(self, sizeof(self));
    printf("edgeplane %s is running:\n"
           "  MQTT broker          mqtt://%s:%u\n",
           EP_VERSION, bhost, hp.port);
    if (sim_url)
        printf("  OPC UA simulation    %s (ovens, pumps, thermostats)\n", sim_url);
#ifdef HAVE_EP_SVC_CONNECTOR
    if (cn) {
        printf("  OPC UA connector     assets");
        for (size_t i = 0; i < seed.n; i++)
            if (seed.items[i]->kind == EP_CONN_KIND_ASSET)
                printf(" %s", seed.items[i]->name);
        printf("\n\nWatch the plant data:\n"
               "  %s sub -h %s -p %u -t 'plant/#' -v\n"
               "Asset health:\n"
               "  %s get assets --broker %s:%u\n"
               "Add your own OPC UA server and assets (docs/connector.md):\n"
               "  %s apply -f my-assets.yaml --broker %s:%u\n",
               self, bhost, hp.port, self, bhost, hp.port, self, bhost, hp.port);
    }
#endif
    printf("\nPress Ctrl-C to stop.\n");
    fflush(stdout);
    int sig;
    /* SIGHUP reloads (TLS certificates); SIGINT and SIGTERM stop. */
    while ((sig = ep_cli_wait_signal()) == SIGHUP)
        ep_broker_reload(b);
    EP_LOG_INFO("run", "signal %d received, stopping", sig);
#ifdef HAVE_EP_SVC_CONNECTOR
    if (cn) {
        ep_connector_stop(cn);
        ep_connector_wait(cn);
        ep_connector_free(cn);
    }
    ep_conn_res_list_fini(&seed);
#endif
#ifdef HAVE_EP_SVC_OPCUA
    sim_stop(&sim);
#endif
    ep_broker_stop(b);
    ep_broker_wait(b);
    ep_broker_free(b);
    EP_LOG_INFO("run", "stopped");
    return EP_EXIT_OK;
}
