/* config.h - loading the broker's YAML configuration into ep_broker_config. */
#ifndef EP_CLI_CONFIG_H
#define EP_CLI_CONFIG_H

#include "svc/broker/broker.h"

/* ep_cli_load_broker_config reads FILE into cfg (over its defaults), printing
 * every error as FILE:LINE:COL: KEY: message. Returns 0 or -1. */
int ep_cli_load_broker_config(const char *path, ep_broker_config *cfg);

/* ep_cli_broker_options parses the broker flags (--listen, --config,
 * --workers, --log-level) into cfg. Returns -1 to go on, or an exit code. */
int ep_cli_broker_options(int argc, char **argv, ep_broker_config *cfg, const char *cmd);
/* ep_cli_broker_start creates and starts the broker and logs its addresses.
 * Returns EP_EXIT_OK with *out set, or an exit code. */
int ep_cli_broker_start(ep_broker_config *cfg, ep_broker **out);

#endif
