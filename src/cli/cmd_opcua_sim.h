/* cmd_opcua_sim.h - `edgeplane opcua-sim`, the OPC UA simulation server. */
#ifndef EP_CLI_CMD_OPCUA_SIM_H
#define EP_CLI_CMD_OPCUA_SIM_H

int ep_cmd_opcua_sim(int argc, char **argv);

#endif
