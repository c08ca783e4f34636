/* config.c - placeholder replaced by the table-driven loader. */
#include <stdio.h>

#include "cli/config.h"

int ep_cli_load_broker_config(const char *path, ep_broker_config *cfg)
{
    (void)cfg;
    fprintf(stderr, "edgeplane: %s: configuration files are not supported yet\n", path);
    return -1;
}
