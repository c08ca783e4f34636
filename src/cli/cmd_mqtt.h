/*
 * cmd_mqtt.h - `edgeplane pub` and `edgeplane sub`, MQTT command-line
 * clients on the embeddable client library (include/ep/mqtt_client.h).
 * The connection, TLS and authentication options both commands share are
 * parsed and documented once, and the loop, client and signal watcher are
 * set up once, in cmd_mqtt.c.
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
    bool port_set;
    char id[96];
    /* running (ep_cli_mqtt_start .. ep_cli_mqtt_stop) */
    ep_loop *loop;
    ep_mqttc *c;
    int sigfd;
    ep_io sig_io;
    bool sig_watched;
} ep_cli_mqtt;

/* Option codes of the shared long-only options (short ones use letters). */
enum {
    EP_CLI_OPT_PASSWORD_FILE = 1000,
    EP_CLI_OPT_NO_CLEAN,
    EP_CLI_OPT_SESSION_EXPIRY,
    EP_CLI_OPT_MAX_INFLIGHT,
    EP_CLI_OPT_HELP,
    EP_CLI_OPT_TLS,
    EP_CLI_OPT_CAFILE,
    EP_CLI_OPT_CERT,
    EP_CLI_OPT_KEY,
    EP_CLI_OPT_TLS_SERVER_NAME,
    EP_CLI_OPT_INSECURE,
    EP_CLI_OPT_AUTH_METHOD,
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
    EP_CLI_MQTT_SECURITY_LONGOPTS,                                             \
    {"help", no_argument, NULL, EP_CLI_OPT_HELP}

/* The TLS and authentication options alone, for the connector's table. */
#define EP_CLI_MQTT_SECURITY_LONGOPTS                                          \
    {"tls", no_argument, NULL, EP_CLI_OPT_TLS},                                \
    {"cafile", required_argument, NULL, EP_CLI_OPT_CAFILE},                    \
    {"cert", required_argument, NULL, EP_CLI_OPT_CERT},                        \
    {"key", required_argument, NULL, EP_CLI_OPT_KEY},                          \
    {"tls-server-name", required_argument, NULL, EP_CLI_OPT_TLS_SERVER_NAME},  \
    {"insecure", no_argument, NULL, EP_CLI_OPT_INSECURE},                      \
    {"auth-method", required_argument, NULL, EP_CLI_OPT_AUTH_METHOD}
/* clang-format on */

/* ep_cli_mqtt_init prepares m with the defaults (127.0.0.1:1883, MQTT 5,
 * log level warn). */
void ep_cli_mqtt_init(ep_cli_mqtt *m, const char *cmd);
/* ep_cli_mqtt_option handles one shared option. Returns 1 when handled, 0
 * when opt is not a shared option, -1 after printing a usage error. */
int ep_cli_mqtt_option(ep_cli_mqtt *m, int opt, const char *arg);
/* ep_cli_mqtt_security_option handles one of EP_CLI_MQTT_SECURITY_LONGOPTS
 * into t and *auth_method (pub, sub and the connector share them); cmd
 * names the command in messages. Returns 1 when handled, 0 when opt is not
 * one of them, -1 after printing a usage error. */
int ep_cli_mqtt_security_option(const char *cmd, ep_mqttc_tls_options *t, const char **auth_method,
                                int opt, const char *arg);
/* ep_cli_mqtt_finish checks the combination, fills the client id, and
 * makes 8883 the default port with TLS; warns about --insecure.
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

/* ep_cli_mqtt_start creates m->loop, the client m->c from m->o (the
 * command sets callbacks and userdata first) and a watcher of SIGINT and
 * SIGTERM calling on_signal with io->data = ud (read the signal with
 * ep_cli_mqtt_signal_read(m->sigfd)). Returns -1 when everything is
 * running, or an exit code after printing why (bad TLS files give
 * EP_EXIT_USAGE); call ep_cli_mqtt_stop in both cases. */
int ep_cli_mqtt_start(ep_cli_mqtt *m, ep_io_cb on_signal, void *ud);
/* ep_cli_mqtt_stop undoes ep_cli_mqtt_start (the command stops its own
 * watchers and timers first): signals, client, loop. */
void ep_cli_mqtt_stop(ep_cli_mqtt *m);

/* ep_cli_mqtt_signals_open blocks SIGINT and SIGTERM and returns a signalfd
 * delivering them (to watch on the loop), or -1. close() it, then call
 * ep_cli_mqtt_signals_close to unblock. */
int ep_cli_mqtt_signals_open(void);
void ep_cli_mqtt_signals_close(int fd);
/* ep_cli_mqtt_signal_read returns the signal number pending on fd, or 0. */
int ep_cli_mqtt_signal_read(int fd);

#endif
