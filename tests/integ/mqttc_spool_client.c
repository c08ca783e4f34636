/*
 * mqttc_spool_client.c - drives the MQTT client library's disk spool
 * (options.spool_dir) for mqttc_spool.py, which starts and stops the
 * broker, kills this program and checks what a subscriber receives.
 *
 * usage: mqttc_spool_client PORT SPOOL_DIR N MAX_BYTES drop|refuse
 *
 * Opens a client on SPOOL_DIR (budget MAX_BYTES, 0 = none), prints
 *   replayed R
 * (messages queued again from the spool), publishes N QoS 1 messages with
 * payload "1".."N" on topic spool/seq and prints
 *   published N accepted A refused F dropped D
 * (F: EP_EFULL returned; D: the client's dropped_full counter, evicted
 * and refused), then connects (retrying while the broker is down) and
 * prints "all acknowledged" and exits 0 once nothing is pending. It is
 * meant to be killed before that when the broker is down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ep/mqtt_client.h"

typedef struct run {
    ep_loop *loop;
    ep_mqttc *c;
    ep_timer tick;
} run;

/* Polls until no spooled message is pending. */
static void on_tick(ep_timer *t)
{
    run *r = t->data;
    ep_mqttc_stats st;
    ep_mqttc_stats_get(r->c, &st);
    if (st.spooled == 0 && st.queued == 0 && st.inflight == 0) {
        printf("all acknowledged\n");
        ep_loop_stop(r->loop);
        return;
    }
    ep_timer_start(t, 20);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT SPOOL_DIR N MAX_BYTES drop|refuse\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    run r;
    memset(&r, 0, sizeof(r));
    if (ep_loop_new(&r.loop, NULL) != EP_EOK)
        return 1;
    ep_mqttc_options o;
    memset(&o, 0, sizeof(o));
    o.port = (uint16_t)atoi(argv[1]);
    o.client_id = "spool-client";
    o.clean_start = true;
    o.spool_dir = argv[2];
    o.spool_max_bytes = strtoull(argv[4], NULL, 10);
    o.queue_policy = strcmp(argv[5], "refuse") == 0 ? EP_MQTTC_REFUSE_NEW : EP_MQTTC_DROP_OLDEST;
    o.queue_max_messages = UINT32_MAX;
    o.queue_max_bytes = SIZE_MAX;
    o.reconnect_min_ms = 50;
    o.reconnect_max_ms = 200;
    o.inflight_max = 8;
    char why[256];
    if (ep_mqttc_new_why(&r.c, r.loop, &o, why, sizeof(why)) != EP_EOK) {
        fprintf(stderr, "cannot create the client: %s\n", why);
        return 1;
    }
    ep_mqttc_stats st;
    ep_mqttc_stats_get(r.c, &st);
    printf("replayed %llu\n", (unsigned long long)st.spool_replayed);
    long n = atol(argv[3]), accepted = 0, refused = 0;
    for (long i = 1; i <= n; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%ld", i);
        ep_mqttc_pub p = {
            .topic = "spool/seq", .payload = buf, .payload_len = (size_t)len, .qos = 1};
        ep_err err = ep_mqttc_publish(r.c, &p, NULL, NULL);
        if (err == EP_EOK)
            accepted++;
        else if (err == EP_EFULL)
            refused++;
        else
            fprintf(stderr, "publish %ld: %s\n", i, ep_strerror(err));
    }
    ep_mqttc_stats_get(r.c, &st);
    printf("published %ld accepted %ld refused %ld dropped %llu\n", n, accepted, refused,
           (unsigned long long)st.dropped_full);
    ep_timer_init(r.loop, &r.tick, on_tick, &r);
    ep_timer_start(&r.tick, 20);
    if (ep_mqttc_connect(r.c) != EP_EOK)
        return 1;
    ep_loop_run(r.loop);
    ep_timer_stop(&r.tick);
    ep_mqttc_free(r.c);
    ep_loop_run_once(r.loop, 0); /* runs what the spool's log posted */
    ep_loop_free(r.loop);
    return 0;
}
