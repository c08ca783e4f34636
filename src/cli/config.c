/* config.c - loading configuration files for the CLI commands. */
#include <stdio.h>

#include "cli/config.h"
#include "svc/broker/broker_config.h"

int ep_cli_load_broker_config(const char *path, ep_broker_config *cfg)
{
    ep_cfg_errs errs = {0};
    ep_err err = ep_broker_config_load(path, cfg, &errs);
    ep_cfg_errs_print(&errs, stderr);
    ep_cfg_errs_fini(&errs);
    if (err) {
        fprintf(stderr, "edgeplane: %s: configuration not loaded\n", path);
        return -1;
    }
    return 0;
}
