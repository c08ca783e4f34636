/*
 * cli.h - the `edgeplane` command table. Each command lives in
 * cmd_<name>.c and is listed once in main.c.
 */
#ifndef EP_CLI_H
#define EP_CLI_H

typedef struct ep_cli_cmd {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name */
} ep_cli_cmd;

/* Exit codes shared by all commands. */
enum {
    EP_EXIT_OK = 0,
    EP_EXIT_FAILURE = 1, /* runtime failure (bind error, peer unreachable) */
    EP_EXIT_USAGE = 2,   /* bad flags or bad configuration */
};

int ep_cmd_broker(int argc, char **argv);
int ep_cmd_run(int argc, char **argv);
int ep_cmd_version(int argc, char **argv);
int ep_cmd_config(int argc, char **argv);

/* ep_cli_wait_for_signal blocks SIGINT/SIGTERM/SIGHUP in the calling thread
 * (call before starting service threads so they inherit the mask) and, with
 * ep_cli_wait_signal, waits for one. Returns the signal number. */
void ep_cli_block_signals(void);
int ep_cli_wait_signal(void);

#endif
