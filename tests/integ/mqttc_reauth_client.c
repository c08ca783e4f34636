/*
 * mqttc_reauth_client.c - drives MQTT 5 re-authentication of the client
 * library (ep_mqttc_reauthenticate) against a real broker, for
 * mqttc_reauth.py, which starts the broker and checks the output.
 *
 * usage: mqttc_reauth_client PORT USER PASSWORD_FILE [CA_FILE]
 *
 * Connects with SCRAM-SHA-256 (over TLS when CA_FILE is given), then
 * re-authenticates three times, each confirmed by stats.reauths; then
 * writes a wrong password into PASSWORD_FILE (re-read by every
 * re-authentication) and re-authenticates once more, which the broker must
 * refuse by closing the connection. Prints one line per step:
 *   connected
 *   reauth N ok
 *   lost: ERR reason 0xRC
 * and exits 0 when every step happened in order, 1 otherwise (with a
 * deadline of 20 s for the whole run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ep/mqtt_client.h"

typedef struct run {
    ep_loop *loop;
    ep_mqttc *c;
    const char *pwfile;
    ep_timer tick, deadline;
    int ok_reauths;
    bool broke_password, refused, failed;
} run;

static void finish(run *r, bool failed)
{
    r->failed |= failed;
    ep_loop_stop(r->loop);
}

static void on_connect(ep_mqttc *c, bool sp, const ep_mqtt_props *p, void *ud)
{
    run *r = ud;
    (void)sp;
    (void)p;
    printf("connected\n");
    if (ep_mqttc_reauthenticate(c) != EP_EOK)
        finish(r, true);
    ep_timer_start(&r->tick, 20);
}

static void on_disconnect(ep_mqttc *c, const ep_mqttc_disconnect_info *i, void *ud)
{
    run *r = ud;
    (void)c;
    printf("lost: %s reason 0x%02x\n", ep_strerror(i->err), (unsigned)i->reason);
    r->refused = r->broke_password && i->reason == EP_MQTT_RC_NOT_AUTHORIZED;
    finish(r, !r->refused);
}

/* Polls the counter: each confirmed re-authentication starts the next. */
static void on_tick(ep_timer *t)
{
    run *r = t->data;
    ep_mqttc_stats st;
    ep_mqttc_stats_get(r->c, &st);
    if ((int)st.reauths > r->ok_reauths) {
        r->ok_reauths = (int)st.reauths;
        printf("reauth %d ok\n", r->ok_reauths);
        if (r->ok_reauths == 3) {
            FILE *f = fopen(r->pwfile, "w");
            if (f == NULL || fputs("not the password\n", f) < 0) {
                finish(r, true);
                return;
            }
            fclose(f);
            r->broke_password = true;
        }
        if (ep_mqttc_reauthenticate(r->c) != EP_EOK) {
            finish(r, true);
            return;
        }
    }
    ep_timer_start(t, 20);
}

static void on_deadline(ep_timer *t)
{
    printf("deadline reached\n");
    finish(t->data, true);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT USER PASSWORD_FILE [CA_FILE]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    run r;
    memset(&r, 0, sizeof(r));
    r.pwfile = argv[3];
    if (ep_loop_new(&r.loop, NULL) != EP_EOK)
        return 1;
    ep_mqttc_options o;
    memset(&o, 0, sizeof(o));
    o.port = (uint16_t)atoi(argv[1]);
    o.client_id = "reauth-client";
    o.clean_start = true;
    o.username = argv[2];
    o.password_file = argv[3];
    o.auth_method = EP_MQTTC_AUTH_SCRAM_SHA_256;
    o.tls.enable = argc > 4;
    o.tls.ca_file = argc > 4 ? argv[4] : NULL;
    o.no_reconnect = true;
    o.on_connect = on_connect;
    o.on_disconnect = on_disconnect;
    o.userdata = &r;
    char why[256];
    if (ep_mqttc_new_why(&r.c, r.loop, &o, why, sizeof(why)) != EP_EOK) {
        fprintf(stderr, "cannot create the client: %s\n", why);
        return 1;
    }
    ep_timer_init(r.loop, &r.tick, on_tick, &r);
    ep_timer_init(r.loop, &r.deadline, on_deadline, &r);
    ep_timer_start(&r.deadline, 20000);
    ep_mqttc_connect(r.c);
    ep_loop_run(r.loop);
    ep_timer_stop(&r.tick);
    ep_timer_stop(&r.deadline);
    ep_mqttc_free(r.c);
    ep_loop_free(r.loop);
    return (!r.failed && r.ok_reauths == 3 && r.refused) ? 0 : 1;
}
