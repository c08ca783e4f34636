/*
 * cmd_config.c - `edgeplane config`: the configuration reference generated
 * from the services' binding tables, so the docs cannot drift from the code.
 *
 *   edgeplane config doc broker      Markdown reference (docs/broker-config.md)
 *   edgeplane config schema broker   JSON Schema for editors and the web UI
 *   edgeplane config dump broker [--config FILE]   effective configuration
 *   edgeplane config check --config FILE           validate; exit 2 on errors
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/config.h"
#include "svc/broker/broker_config.h"

static void config_usage(FILE *f)
{
    fprintf(f, "usage: edgeplane config doc|schema SERVICE\n"
               "       edgeplane config dump SERVICE [--config FILE]\n"
               "       edgeplane config check --config FILE\n\n"
               "Services: broker.\n"
               "  doc      Markdown reference of every key (type, default, bounds, help)\n"
               "  schema   JSON Schema (draft 2020-12) of the YAML accepted\n"
               "  dump     the effective configuration (defaults + FILE), secrets masked\n"
               "  check    validate FILE; prints every error as FILE:LINE:COL: KEY: message\n\n"
               "Exit codes: 0 ok, 2 usage or configuration errors.\n");
}

static int load_tree_section(const char *path, ep_cfg_tree **t, const ep_cfg_node **sec)
{
    ep_cfg_errs errs = {0};
    ep_err err = ep_cfg_parse_file(path, NULL, t, &errs);
    ep_cfg_errs_print(&errs, stderr);
    ep_cfg_errs_fini(&errs);
    if (err)
        return -1;
    const ep_cfg_node *root = ep_cfg_tree_root(*t);
    const ep_cfg_node *b = ep_cfg_node_get(root, "broker");
    *sec = b ? b : root;
    return 0;
}

int ep_cmd_config(int argc, char **argv)
{
    const char *file = NULL, *verb = NULL, *svc = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            config_usage(stdout);
            return EP_EXIT_OK;
        } else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) &&
                   i + 1 < argc) {
            file = argv[++i];
        } else if (verb == NULL) {
            verb = argv[i];
        } else if (svc == NULL) {
            svc = argv[i];
        } else {
            fprintf(stderr, "edgeplane config: unexpected argument '%s'\n", argv[i]);
            return EP_EXIT_USAGE;
        }
    }
    if (verb == NULL) {
        config_usage(stderr);
        return EP_EXIT_USAGE;
    }
    if (svc == NULL)
        svc = "broker";
    if (strcmp(svc, "broker") != 0) {
        fprintf(stderr, "edgeplane config: unknown service '%s' (known: broker)\n", svc);
        return EP_EXIT_USAGE;
    }
    const ep_cfg_field *table = ep_broker_config_table();
    if (strcmp(verb, "doc") == 0)
        return ep_cfg_doc(table, stdout) == EP_EOK ? EP_EXIT_OK : EP_EXIT_FAILURE;
    if (strcmp(verb, "schema") == 0)
        return ep_cfg_schema(table, stdout) == EP_EOK ? EP_EXIT_OK : EP_EXIT_FAILURE;
    if (strcmp(verb, "check") == 0 || strcmp(verb, "dump") == 0) {
        if (strcmp(verb, "check") == 0 && file == NULL) {
            fprintf(stderr, "edgeplane config check: --config FILE is required\n");
            return EP_EXIT_USAGE;
        }
        ep_broker_config cfg;
        ep_broker_config_defaults(&cfg);
        if (file && ep_cli_load_broker_config(file, &cfg) != 0)
            return EP_EXIT_USAGE;
        if (strcmp(verb, "check") == 0) {
            printf("%s: ok\n", file);
            return EP_EXIT_OK;
        }
        /* Dump what the file says, with every default filled in. */
        ep_cfg_tree *t = NULL;
        const ep_cfg_node *sec = NULL;
        if (file && load_tree_section(file, &t, &sec) != 0)
            return EP_EXIT_USAGE;
        ep_err err = ep_broker_config_dump(sec, stdout);
        ep_cfg_tree_free(t);
        return err == EP_EOK ? EP_EXIT_OK : EP_EXIT_USAGE;
    }
    fprintf(stderr, "edgeplane config: unknown action '%s'\n", verb);
    config_usage(stderr);
    return EP_EXIT_USAGE;
}
