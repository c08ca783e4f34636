/*
 * cmd_broker.c - `edgeplane broker`: run the MQTT broker alone.
 * Flags scripts rely on (keep stable): --listen HOST:PORT (repeatable,
 * overrides the configured listeners), --config FILE, --log-level LEVEL,
 * --data-dir DIR, --durability sync|periodic|none.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/config.h"
#include "core/log.h"
#include "core/log_kv.h"
#include "svc/broker/broker.h"
#ifdef HAVE_EP_SVC_API
#include "svc/api/observe.h"
#endif

static const char *http_addr;
#ifdef HAVE_EP_SVC_API
static ep_api_server *http_server;
#endif

static void broker_usage(FILE *f)
{
    fprintf(f, "usage: edgeplane broker [options]\n\n"
               "Run the MQTT 3.1.1/5.0 broker.\n\n"
               "options:\n"
               "  -l, --listen HOST:PORT   listen on this address (repeatable; overrides the\n"
               "                           listeners of the configuration; port 0 = any free)\n"
               "  -c, --config FILE        YAML configuration file (see docs/broker.md)\n"
               "  -w, --workers N          worker threads (default: one per CPU)\n"
               "  -d, --data-dir DIR       persist sessions, subscriptions, retained and queued\n"
               "                           messages in DIR (survive restarts and crashes)\n"
               "      --durability MODE    sync (ack after fsync, default), periodic (fsync\n"
               "                           every persistence.period) or none; see\n"
               "                           docs/persistence.md\n"
               "      --http HOST:PORT     serve /metrics (Prometheus), /healthz and /readyz\n"
               "      --log-level LEVEL    trace, debug, info, warn, error (default info)\n"
               "      --log-format FORMAT  text (default), kv (key=value) or json lines\n"
               "  -h, --help               show this help\n\n"
               "Exit codes: 0 stopped by a signal, 1 runtime failure (e.g. address in use),\n"
               "2 bad flags or configuration.\n");
}

/* ep_cli_broker_options parses the broker's flags into cfg. Returns -1 to
 * continue, or an exit code. */
int ep_cli_broker_options(int argc, char **argv, ep_broker_config *cfg, const char *cmd)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"config", required_argument, NULL, 'c'},
        {"workers", required_argument, NULL, 'w'},
        {"log-level", required_argument, NULL, 'L'},
        {"log-format", required_argument, NULL, 'F'},
        {"http", required_argument, NULL, 'H'},
        {"data-dir", required_argument, NULL, 'd'},
        {"durability", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ep_hostport listen[EP_BROKER_MAX_LISTENERS];
    int nlisten = 0, workers = -1, c;
    const char *config = NULL, *data_dir = NULL;
    int durability = -1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:c:w:d:h", opts, NULL)) != -1) {
        const char *why = NULL;
        ep_log_level lvl;
        switch (c) {
        case 'l':
            if (nlisten == EP_BROKER_MAX_LISTENERS) {
                fprintf(stderr, "edgeplane %s: at most %d --listen addresses\n", cmd,
                        EP_BROKER_MAX_LISTENERS);
                return EP_EXIT_USAGE;
            }
            if (ep_hostport_parse(optarg, &listen[nlisten], &why) != EP_EOK) {
                fprintf(stderr, "edgeplane %s: --listen %s: %s\n", cmd, optarg, why);
                return EP_EXIT_USAGE;
            }
            nlisten++;
            break;
        case 'c':
            config = optarg;
            break;
        case 'd':
            if (optarg[0] == '\0' || strlen(optarg) >= sizeof(cfg->persist.data_dir)) {
                fprintf(stderr, "edgeplane %s: --data-dir: empty or longer than %zu bytes\n", cmd,
                        sizeof(cfg->persist.data_dir) - 1);
                return EP_EXIT_USAGE;
            }
            data_dir = optarg;
            break;
        case 'D':
            if (strcmp(optarg, "sync") == 0)
                durability = EP_BROKER_DURABILITY_SYNC;
            else if (strcmp(optarg, "periodic") == 0)
                durability = EP_BROKER_DURABILITY_PERIODIC;
            else if (strcmp(optarg, "none") == 0)
                durability = EP_BROKER_DURABILITY_NONE;
            else {
                fprintf(stderr,
                        "edgeplane %s: --durability %s: expected sync, periodic or "
                        "none\n",
                        cmd, optarg);
                return EP_EXIT_USAGE;
            }
            break;
        case 'H':
            if (ep_hostport_parse(optarg, &listen[EP_BROKER_MAX_LISTENERS - 1], &why) != EP_EOK) {
                fprintf(stderr, "edgeplane %s: --http %s: %s\n", cmd, optarg, why);
                return EP_EXIT_USAGE;
            }
            http_addr = optarg;
            break;
        case 'w':
            workers = atoi(optarg);
            if (workers < 1 || workers > 64) {
                fprintf(stderr, "edgeplane %s: --workers must be 1..64\n", cmd);
                return EP_EXIT_USAGE;
            }
            break;
        case 'F': {
            ep_log_format fmt;
            if (ep_log_format_parse(optarg, &fmt) != 0) {
                fprintf(stderr, "edgeplane %s: --log-format %s: expected text, kv or json\n", cmd,
                        optarg);
                return EP_EXIT_USAGE;
            }
            ep_log_use_format(fmt);
            break;
        }
        case 'L':
            if (ep_log_level_parse(optarg, &lvl) != 0) {
                fprintf(stderr,
                        "edgeplane %s: --log-level %s: expected trace, debug, info, "
                        "warn or error\n",
                        cmd, optarg);
                return EP_EXIT_USAGE;
            }
            ep_log_set_level(lvl);
            break;
        case 'h':
            broker_usage(stdout);
            return EP_EXIT_OK;
        default:
            broker_usage(stderr);
            return EP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edgeplane %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return EP_EXIT_USAGE;
    }
    if (config && ep_cli_load_broker_config(config, cfg) != 0)
        return EP_EXIT_USAGE;
    if (nlisten) {
        memset(cfg->listeners, 0, sizeof(cfg->listeners));
        for (int i = 0; i < nlisten; i++)
            cfg->listeners[i].addr = listen[i];
        cfg->n_listeners = nlisten;
    }
    if (workers > 0)
        cfg->workers = workers;
    if (data_dir)
        snprintf(cfg->persist.data_dir, sizeof(cfg->persist.data_dir), "%s", data_dir);
    if (durability >= 0)
        cfg->persist.durability = durability;
    return -1;
}

int ep_cli_broker_start(ep_broker_config *cfg, ep_broker **out)
{
    ep_broker *b;
    ep_err err = ep_broker_new(&b, cfg);
    if (err) {
        fprintf(stderr, "edgeplane: broker: %s\n", ep_strerror(err));
        return EP_EXIT_USAGE;
    }
    err = ep_broker_start(b);
    if (err) {
        ep_broker_free(b);
        return EP_EXIT_FAILURE;
    }
    if (http_addr) {
#ifdef HAVE_EP_SVC_API
        ep_api_opts ao = {0};
        err = ep_api_server_start_thread(http_addr, &ao, &http_server);
        if (err) {
            EP_LOG_ERROR("broker", "cannot serve HTTP on %s: %s", http_addr, ep_strerror(err));
            ep_broker_stop(b);
            ep_broker_wait(b);
            ep_broker_free(b);
            return EP_EXIT_FAILURE;
        }
        EP_LOG_INFO("broker", "metrics and health on http://%s (/metrics, /healthz, /readyz)",
                    http_addr);
#else
        EP_LOG_WARN("broker", "--http ignored: built without the API module");
#endif
    }
    for (int i = 0; i < cfg->n_listeners; i++) {
        ep_hostport hp = cfg->listeners[i].addr;
        char addr[300];
        hp.port = ep_broker_listener_port(b, i);
        ep_hostport_format(&hp, addr, sizeof(addr));
        EP_LOG_ID_INFO("broker", "broker.listening", "MQTT broker listening on %s (mqtt://%s)",
                       addr, addr);
    }
    *out = b;
    return EP_EXIT_OK;
}

int ep_cmd_broker(int argc, char **argv)
{
    ep_broker_config cfg;
    ep_broker *b = NULL;
    ep_broker_config_defaults(&cfg);
    int rc = ep_cli_broker_options(argc, argv, &cfg, "broker");
    if (rc >= 0)
        return rc;
    ep_cli_block_signals();
    rc = ep_cli_broker_start(&cfg, &b);
    if (rc != EP_EXIT_OK)
        return rc;
    int sig;
    /* SIGHUP reloads (TLS certificates); SIGINT and SIGTERM stop. */
    while ((sig = ep_cli_wait_signal()) == SIGHUP)
        ep_broker_reload(b);
    EP_LOG_INFO("broker", "signal %d received, stopping", sig);
    ep_broker_stop(b);
    ep_broker_wait(b);
#ifdef HAVE_EP_SVC_API
    ep_api_server_stop(http_server);
#endif
    ep_broker_free(b);
    EP_LOG_INFO("broker", "stopped");
    return EP_EXIT_OK;
}
