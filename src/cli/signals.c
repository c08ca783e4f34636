/* signals.c - signal handling for long-running commands: the signals are
 * blocked in every thread and collected synchronously by the main thread. */
#include <pthread.h>
#include <signal.h>

#include "cli/cli.h"

static sigset_t stop_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return set;
}

void ep_cli_block_signals(void)
{
    sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int ep_cli_wait_signal(void)
{
    sigset_t set = stop_signals();
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}
