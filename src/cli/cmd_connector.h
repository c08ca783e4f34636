/*
 * cmd_connector.h - `edgeplane connector` (cmd_connector.c) and the
 * resource commands `edgeplane apply`, `delete` and `get` (cmd_apply.c).
 */
#ifndef EP_CLI_CMD_CONNECTOR_H
#define EP_CLI_CMD_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

int ep_cmd_connector(int argc, char **argv);
int ep_cmd_apply(int argc, char **argv);
int ep_cmd_delete(int argc, char **argv);
int ep_cmd_get(int argc, char **argv);

/* ep_cli_broker_addr parses --broker HOST:PORT (default port 1883) into
 * host/port; prints "edgeplane CMD: --broker ...: why" and returns -1 on a
 * bad value. */
int ep_cli_broker_addr(const char *cmd, const char *arg, char *host, size_t hostn, uint16_t *port);

#endif
