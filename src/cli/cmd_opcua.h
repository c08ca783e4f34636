/*
 * cmd_opcua.h - `edgeplane opcua`: an OPC UA client for people and scripts
 * (endpoints, browse, read, write, call, subscribe, trust).
 */
#ifndef EP_CLI_CMD_OPCUA_H
#define EP_CLI_CMD_OPCUA_H

/* Exit codes of `edgeplane opcua` besides EP_EXIT_OK/EP_EXIT_USAGE. */
enum {
    EP_EXIT_UA_CONNECT = 3,  /* server unreachable, channel/session failed */
    EP_EXIT_UA_SECURITY = 4, /* certificate rejected, access denied */
    EP_EXIT_UA_REQUEST = 5,  /* a service or an item returned a bad status */
};

int ep_cmd_opcua(int argc, char **argv);

#endif
