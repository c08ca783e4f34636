/*
 * cmd_opcua_sim.c - `edgeplane opcua-sim`: an OPC UA server with a
 * simulated plant (src/svc/opcua/sim.h), for tests, demos and load tests.
 *
 * Flags scripts rely on (keep stable): --listen opc.tcp://HOST:PORT,
 * --pki DIR, --extra-nodes N, --update-ms MS, --user NAME:PASSWORD
 * (repeatable), --no-anonymous, --auto-accept, --log-level LEVEL, --help.
 * When listening it prints one line on stdout:
 *   opcua-sim ready: opc.tcp://HOST:PORT
 * The loop runs on its own thread; the main thread waits for a signal.
 */
#ifdef HAVE_EP_SVC_OPCUA
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_opcua_sim.h"
#include "codec/opcua_crypto/pki.h"
#include "core/log.h"
#include "svc/opcua/server.h"
#include "svc/opcua/sim.h"

#define MAX_USERS 32

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgeplane opcua-sim [options]\n\n"
            "Run an OPC UA server with a simulated plant (ovens, pumps, thermostats,\n"
            "an event source, writable setpoints, methods) under Objects/Plant.\n\n"
            "options:\n"
            "      --listen URL          opc.tcp://HOST:PORT (default opc.tcp://127.0.0.1:4840;\n"
            "                            port 0 picks a free port)\n"
            "      --pki DIR             PKI folder (own/ trusted/ rejected/ issuers/); the\n"
            "                            certificate is generated on first start. Without it\n"
            "                            only SecurityPolicy None is offered\n"
            "      --extra-nodes N       N extra Double variables Plant.Extra.<i> (default 0)\n"
            "      --update-ms MS        how often values change (default 1000)\n"
            "      --event-ms MS         how often an oven raises an event (default 5000)\n"
            "      --user NAME:PASSWORD  accept this UserName token (repeatable)\n"
            "      --no-anonymous        refuse anonymous sessions\n"
            "      --no-x509-users       do not offer the X509 user token\n"
            "      --auto-accept         trust every client certificate (tests only)\n"
            "      --max-sessions N      default 100\n"
            "      --log-level LEVEL     trace, debug, info, warn, error (default info)\n"
            "  -h, --help                show this help\n\n"
            "Prints 'opcua-sim ready: URL' when listening. Exit codes: 0 stopped by a\n"
            "signal, 1 runtime failure (address in use, PKI unreadable), 2 bad flags.\n");
}

static void *loop_thread(void *arg)
{
    ep_loop_run(arg);
    return NULL;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == 0 || *end != 0 || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int ep_cmd_opcua_sim(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"pki", required_argument, NULL, 'p'},
        {"extra-nodes", required_argument, NULL, 'x'},
        {"update-ms", required_argument, NULL, 'u'},
        {"event-ms", required_argument, NULL, 'e'},
        {"user", required_argument, NULL, 'U'},
        {"no-anonymous", no_argument, NULL, 'A'},
        {"no-x509-users", no_argument, NULL, 'X'},
        {"auto-accept", no_argument, NULL, 'a'},
        {"max-sessions", required_argument, NULL, 'm'},
        {"log-level", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "opc.tcp://127.0.0.1:4840", *pki_dir = NULL;
    ep_ua_sim_opts so = {0, 1000, 5000};
    ep_ua_server_user users[MAX_USERS];
    char *user_buf[MAX_USERS];
    size_t nusers = 0;
    bool no_anon = false, auto_accept = false, x509 = true;
    uint32_t max_sessions = 0;
    int c, rc = EP_EXIT_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        ep_log_level lvl;
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 'p':
            pki_dir = optarg;
            break;
        case 'x':
            if (parse_u32(optarg, 10000000, &so.extra_nodes) != 0) {
                fprintf(stderr, "edgeplane opcua-sim: --extra-nodes: 0..10000000\n");
                goto out;
            }
            break;
        case 'u':
            if (parse_u32(optarg, 3600000, &so.update_ms) != 0 || so.update_ms < 10) {
                fprintf(stderr, "edgeplane opcua-sim: --update-ms: 10..3600000\n");
                goto out;
            }
            break;
        case 'e':
            if (parse_u32(optarg, 3600000, &so.event_ms) != 0 || so.event_ms < 10) {
                fprintf(stderr, "edgeplane opcua-sim: --event-ms: 10..3600000\n");
                goto out;
            }
            break;
        case 'm':
            if (parse_u32(optarg, 100000, &max_sessions) != 0 || max_sessions == 0) {
                fprintf(stderr, "edgeplane opcua-sim: --max-sessions: 1..100000\n");
                goto out;
            }
            break;
        case 'U': {
            char *colon = strchr(optarg, ':');
            if (colon == NULL || colon == optarg || nusers == MAX_USERS) {
                fprintf(stderr, "edgeplane opcua-sim: --user NAME:PASSWORD (at most %d)\n",
                        MAX_USERS);
                goto out;
            }
            user_buf[nusers] = strdup(optarg);
            if (user_buf[nusers] == NULL)
                goto out;
            user_buf[nusers][colon - optarg] = 0;
            users[nusers].name = user_buf[nusers];
            users[nusers].password = user_buf[nusers] + (colon - optarg) + 1;
            nusers++;
            break;
        }
        case 'A':
            no_anon = true;
            break;
        case 'X':
            x509 = false;
            break;
        case 'a':
            auto_accept = true;
            break;
        case 'L':
            if (ep_log_level_parse(optarg, &lvl) != 0) {
                fprintf(stderr,
                        "edgeplane opcua-sim: --log-level %s: expected trace, "
                        "debug, info, warn or error\n",
                        optarg);
                goto out;
            }
            ep_log_set_level(lvl);
            break;
        case 'h':
            usage(stdout);
            rc = EP_EXIT_OK;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edgeplane opcua-sim: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    {
        char host[256];
        uint16_t port;
        if (ep_ua_url_parse(listen, host, sizeof(host), &port) != EP_EOK) {
            fprintf(stderr, "edgeplane opcua-sim: --listen %s: expected opc.tcp://HOST:PORT\n",
                    listen);
            goto out;
        }
    }
    rc = EP_EXIT_FAILURE;
    ep_ua_pki *pki = NULL;
    if (pki_dir) {
        ep_ua_pki_opts po;
        memset(&po, 0, sizeof(po));
        po.app_name = "edgeplane opcua-sim";
        po.app_uri = "urn:edgeplane:opcua-sim";
        po.auto_accept = auto_accept;
        char detail[512] = "";
        ep_err e = ep_ua_pki_open(pki_dir, &po, &pki, detail, sizeof(detail));
        if (e != EP_EOK) {
            fprintf(stderr, "edgeplane opcua-sim: --pki %s: %s%s%s\n", pki_dir, ep_strerror(e),
                    detail[0] ? ": " : "", detail);
            goto out;
        }
        const char *w = ep_ua_pki_warning(pki);
        if (w)
            EP_LOG_WARN("opcua", "pki: %s", w);
    } else {
        EP_LOG_INFO("opcua", "no --pki: only SecurityPolicy None is offered");
    }
    ep_cli_block_signals();
    ep_loop *loop = NULL;
    ep_ua_server *srv = NULL;
    ep_ua_sim *sim = NULL;
    if (ep_loop_new(&loop, NULL) != EP_EOK) {
        ep_ua_pki_free(pki);
        goto out;
    }
    ep_ua_server_opts o;
    memset(&o, 0, sizeof(o));
    o.url = listen;
    o.app_uri = "urn:edgeplane:opcua-sim";
    o.app_name = "edgeplane opcua-sim";
    o.pki = pki;
    o.policies = 1u << EP_UA_POLICY_NONE;
    if (pki)
        o.policies |= 1u << EP_UA_POLICY_BASIC256SHA256 | 1u << EP_UA_POLICY_AES128_SHA256_RSAOAEP |
                      1u << EP_UA_POLICY_AES256_SHA256_RSAPSS;
    o.no_anonymous = no_anon;
    o.allow_x509_users = x509 && pki != NULL;
    o.users = users;
    o.nusers = nusers;
    o.limits.max_sessions = max_sessions;
    ep_err e = ep_ua_server_new(loop, &o, &srv);
    if (e != EP_EOK) {
        fprintf(stderr, "edgeplane opcua-sim: cannot listen on %s: %s\n", listen, ep_strerror(e));
    } else if ((e = ep_ua_sim_new(loop, srv, &so, &sim)) != EP_EOK) {
        fprintf(stderr, "edgeplane opcua-sim: cannot build the plant: %s\n", ep_strerror(e));
    } else {
        pthread_t th;
        printf("opcua-sim ready: %s\n", ep_ua_server_endpoint_url(srv));
        fflush(stdout);
        EP_LOG_INFO("opcua", "opcua-sim listening on %s (%u extra nodes, update %u ms)",
                    ep_ua_server_endpoint_url(srv), so.extra_nodes, so.update_ms);
        if (pthread_create(&th, NULL, loop_thread, loop) == 0) {
            int sig = ep_cli_wait_signal();
            EP_LOG_INFO("opcua", "signal %d: stopping", sig);
            ep_loop_stop(loop);
            pthread_join(th, NULL);
            rc = EP_EXIT_OK;
        }
    }
    ep_ua_sim_free(sim);
    ep_ua_server_free(srv);
    /* run deferred closes once so channels release their sockets */
    if (loop)
        ep_loop_run_once(loop, 0);
    ep_loop_free(loop);
    ep_ua_pki_free(pki);
out:
    for (size_t i = 0; i < nusers; i++)
        free(user_buf[i]);
    return rc;
}
#endif
