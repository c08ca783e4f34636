/*
 * cmd_run.c - `edgeplane run`: every service in one process. With no
 * configuration it uses the embedded default (the broker on
 * 127.0.0.1:1883) and prints what it started and how to use it.
 */
#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/config.h"
#include "core/log.h"
#include "svc/broker/broker.h"


int ep_cmd_run(int argc, char **argv)
{
    ep_broker_config cfg;
    ep_broker *b = NULL;
    ep_broker_config_defaults(&cfg);
    if (argc > 1 && (argv[1][0] != '-')) {
        fprintf(stderr, "edgeplane run: unexpected argument '%s'\n", argv[1]);
        return EP_EXIT_USAGE;
    }
    int rc = ep_cli_broker_options(argc, argv, &cfg, "run");
    if (rc >= 0)
        return rc;
    ep_cli_block_signals();
    rc = ep_cli_broker_start(&cfg, &b);
    if (rc != EP_EXIT_OK)
        return rc;
    ep_hostport hp = cfg.listeners[0].addr;
    hp.port = ep_broker_listener_port(b, 0);
    printf("edgeplane %s is running:\n"
           "  MQTT broker   mqtt://%s:%u\n\n"
           "Try it:\n"
           "  mosquitto_sub -h %s -p %u -t 'demo/#' -v &\n"
           "  mosquitto_pub -h %s -p %u -t demo/hello -m 'hello edge'\n\n"
           "Press Ctrl-C to stop.\n",
           EP_VERSION, hp.host, hp.port, hp.host, hp.port, hp.host, hp.port);
    fflush(stdout);
    int sig;
    /* SIGHUP reloads (TLS certificates); SIGINT and SIGTERM stop. */
    while ((sig = ep_cli_wait_signal()) == SIGHUP)
        ep_broker_reload(b);
    EP_LOG_INFO("run", "signal %d received, stopping", sig);
    ep_broker_stop(b);
    ep_broker_wait(b);
    ep_broker_free(b);
    EP_LOG_INFO("run", "stopped");
    return EP_EXIT_OK;
}
