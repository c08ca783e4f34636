/* api_serve.c - serves the observability endpoints from a process of its
 * own, for load tests (wrk) and black-box checks: `ep_api_serve HOST:PORT`
 * prints "listening on PORT" once bound and runs until SIGINT or SIGTERM.
 * It registers a few sample metrics so /metrics has content. Not a product
 * command: the broker's --http flag is the real entry point. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "core/loop.h"
#include "core/metrics.h"
#include "svc/api/observe.h"

static void *signal_thread(void *arg)
{
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    ep_loop_stop(arg);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    ep_metrics *reg = ep_metrics_default();
    ep_metric *m;
    ep_metric_desc d = {.type = EP_METRIC_COUNTER,
                        .name = "edgeplane_broker_messages_total",
                        .help = "Messages by direction and QoS (sample).",
                        .labels = "direction,qos"};
    ep_counter *c;
    if (ep_metrics_register(reg, &d, &m) == EP_EOK) {
        for (int q = 0; q < 3; q++) {
            char qs[2] = {(char)('0' + q), 0};
            if (ep_metric_counter(m, EP_LABELS("in", qs), &c) == EP_EOK)
                ep_counter_add(c, (uint64_t)(q + 1) * 1000);
            ep_metric_counter(m, EP_LABELS("out", qs), &c);
        }
    }
    ep_metrics_check *ready;
    ep_metrics_check_add(reg, "sample", NULL, NULL, &ready);
    ep_metrics_check_set(ready, true, NULL);

    ep_loop *loop;
    ep_api_server *api;
    if (ep_loop_new(&loop, NULL) != EP_EOK)
        return 1;
    ep_err err = ep_api_server_start(loop, argv[1], NULL, &api);
    if (err) {
        fprintf(stderr, "cannot serve on %s: %s\n", argv[1], ep_strerror(err));
        return 1;
    }
    printf("listening on %u\n", ep_api_server_port(api));
    fflush(stdout);
    pthread_t t;
    pthread_create(&t, NULL, signal_thread, loop);
    ep_loop_run(loop);
    pthread_join(t, NULL);
    ep_api_server_stop(api);
    ep_loop_run_once(loop, 0);
    ep_loop_free(loop);
    return 0;
}
