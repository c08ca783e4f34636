/*
 * main.c - `edgeplane`, one binary for every service: the command table and
 * the top-level help. Commands parse their own flags.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#ifdef HAVE_EP_SVC_BENCH
#include "svc/bench/bench.h"
#endif
#ifdef HAVE_EP_SVC_OPCUA
#include "cli/cmd_opcua_sim.h"
#endif
#ifdef HAVE_EP_SVC_OPCUA_CLIENT
#include "cli/cmd_opcua.h"
#endif
#ifdef HAVE_EP_SVC_MQTTC
#include "cli/cmd_mqtt.h"
#endif
#ifdef HAVE_EP_SVC_AUTH
#include "cli/cmd_passwd.h"
#endif
#ifdef HAVE_EP_SVC_CONNECTOR
#include "cli/cmd_connector.h"
#endif

static int cmd_help(int argc, char **argv);

static const ep_cli_cmd commands[] = {
    {"run", "run every service in one process with the embedded default configuration", ep_cmd_run},
    {"broker", "run the MQTT broker alone", ep_cmd_broker},
#ifdef HAVE_EP_SVC_BENCH
    {"bench", "load-test an MQTT broker (fan-in, fan-out, p2p, shared)", ep_bench_main},
#endif
#ifdef HAVE_EP_SVC_MQTTC
    {"pub", "publish MQTT messages", ep_cmd_pub},
    {"sub", "subscribe to MQTT topics and print the messages", ep_cmd_sub},
#endif
#ifdef HAVE_EP_SVC_OPCUA_CLIENT
    {"opcua", "OPC UA client: endpoints, browse, read, write, call, subscribe, trust",
     ep_cmd_opcua},
#endif
#ifdef HAVE_EP_SVC_CONNECTOR
    {"connector", "run the OPC UA connector alone (assets come from the broker)", ep_cmd_connector},
    {"apply", "validate assets and endpoint profiles and load them into the product", ep_cmd_apply},
    {"get", "list assets or endpoint profiles with their status", ep_cmd_get},
    {"delete", "delete an asset or an endpoint profile", ep_cmd_delete},
#endif
#ifdef HAVE_EP_SVC_OPCUA
    {"opcua-sim", "run an OPC UA server with a simulated plant", ep_cmd_opcua_sim},
#endif
#ifdef HAVE_EP_SVC_AUTH
    {"passwd", "add, change or delete a user in a broker password file", ep_cmd_passwd},
#endif
    {"config", "configuration reference, schema, effective values and checks", ep_cmd_config},
    {"version", "print the version", ep_cmd_version},
    {"help", "show help for a command", cmd_help},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: edgeplane <command> [options]\n\n"
               "edgeplane is a data plane for industrial edge sites: an MQTT broker,\n"
               "OPC UA connectors and dataflows in one small binary.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'edgeplane <command> --help' for the options of a command.\n");
}

static const ep_cli_cmd *find(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return EP_EXIT_OK;
    }
    const ep_cli_cmd *c = find(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "edgeplane: unknown command '%s'\n", argv[1]);
        return EP_EXIT_USAGE;
    }
    char *args[] = {argv[1], "--help", NULL};
    return c->fn(2, args);
}

int ep_cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("edgeplane %s\n", EP_VERSION);
    return EP_EXIT_OK;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return EP_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EP_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return ep_cmd_version(0, NULL);
    const ep_cli_cmd *c = find(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "edgeplane: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return EP_EXIT_USAGE;
    }
    return c->fn(argc - 1, argv + 1);
}
