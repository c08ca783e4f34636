/*
 * cmd_mqtt.h - `edgeplane pub` and `edgeplane sub`, MQTT command-line
 * clients on the embeddable client library (include/ep/mqtt_client.h).
 * The connection options both commands share are parsed and documented
 * once, in cmd_pub.c.
 */
#ifndef EP_CLI_CMD_MQTT_H
#define EP_CLI_CMD_MQTT_H

#include <getopt.h>
#include <stdio.h>

#include "ep/mqtt_client.h"

int ep_cmd_pub(int argc, char **argv);
int ep_cmd_sub(int argc, char **argv);

/* Connection settings shared by pub and sub. */
typedef struct ep_cli_mqtt {
    const char *cmd; /* "pub" or "sub", for messages */
    ep_mqttc_options o;
    bool no_clean;
    bool have_expiry;
    char id[96];
} ep_cli_mqtt;

/* Option codes of the shared long-only options (short ones use letters). */
enum {
    EP_CLI_OPT_PASSWORD_FILE = 1000,
    EP_CLI_OPT_NO_CLEAN,
    EP_CLI_OPT_SESSION_EXPIRY,
    EP_CLI_OPT_MAX_INFLIGHT,
    EP_CLI_OPT_HELP,
    EP_CLI_OPT_FIRST_OWN = 1100, /* commands number their own from here */
};

/* The shared short options, for getopt_long's optstring. */
#define EP_CLI_MQTT_SHORTOPTS "h:p:i:V:u:P:k:d"

/* The shared long options, to be placed first in a command's table. */
/* clang-format off */
#define EP_CLI_MQTT_LONGOPTS                                                   \
    {"host", required_argument, NULL, 'h'},                                    \
    {"port", required_argument, NULL, 'p'},                                    \
    {"id", required_argument, NULL, 'i'},                                      \
    {"protocol", required_argument, NULL, 'V'},                                \
    {"username", required_argument, NULL, 'u'},                                \
    {"password", required_argument, NULL, 'P'},                                \
    {"password-file", required_argument, NULL, EP_CLI_OPT_PASSWORD_FILE},     \
    {"keepalive", required_argument, NULL, 'k'},                               \
    {"no-clean", no_argument, NULL, EP_CLI_OPT_NO_CLEAN},                      \
    {"session-expiry", required_argument, NULL, EP_CLI_OPT_SESSION_EXPIRY},    \
    {"max-inflight", required_argument, NULL, EP_CLI_OPT_MAX_INFLIGHT},        \
    {"debug", no_argument, NULL, 'd'},                                         \
    {"help", no_argument, NULL, EP_CLI_OPT_HELP}
/* clang-format on */

/* ep_cli_mqtt_init prepares m with the defaults (127.0.0.1:1883, MQTT 5,
 * log level warn). */
void ep_cli_mqtt_init(ep_cli_mqtt *m, const char *cmd);
/* ep_cli_mqtt_option handles one shared option. Returns 1 when handled, 0
 * when opt is not a shared option, -1 after printing a usage error. */
int ep_cli_mqtt_option(ep_cli_mqtt *m, int opt, const char *arg);
/* ep_cli_mqtt_finish checks the combination and fills the client id.
 * Returns 0, or -1 after printing a usage error. */
int ep_cli_mqtt_finish(ep_cli_mqtt *m);
/* ep_cli_mqtt_help prints the shared options. */
void ep_cli_mqtt_help(FILE *f);
/* ep_cli_mqtt_parse_uint parses a decimal in [min, max]; -1 after printing
 * "edgeplane CMD: WHAT: ..." on error. */
int ep_cli_mqtt_parse_uint(const ep_cli_mqtt *m, const char *what, const char *arg,
                           unsigned long min, unsigned long max, unsigned long *out);

/* ep_cli_mqtt_describe writes a one-line explanation of a disconnect for a
 * person ("connection refused", "Not authorized (0x87)"). */
void ep_cli_mqtt_describe(const ep_mqttc_disconnect_info *info, char *buf, size_t n);

/* ep_cli_mqtt_signals_open blocks SIGINT and SIGTERM and returns a signalfd
 * delivering them (to watch on the loop), or -1. close() it, then call
 * ep_cli_mqtt_signals_close to unblock. */
int ep_cli_mqtt_signals_open(void);
void ep_cli_mqtt_signals_close(int fd);
/* ep_cli_mqtt_signal_read returns the signal number pending on fd, or 0. */
int ep_cli_mqtt_signal_read(int fd);

#endif
