/*
 * transfer_test.c - our client's "new session + TransferSubscriptions"
 * recovery against the real `edgeplane opcua-sim` (ctest
 * integ/opcua_transfer, tests/integ/opcua_transfer.cmake).
 *
 * The client (ep_uac, session timeout 10 s, the server's floor) subscribes
 * to Plant.Oven1.Counter (+1 every 200 ms, sampled every 50 ms, queue 1000)
 * through a TCP relay run by this program. The relay then drops every
 * connection and refuses new ones for longer than the session timeout: the
 * server times the session out but keeps its subscription (sampling into
 * the item queue, the sent-but-unacknowledged messages in the
 * retransmission queue) for transfer. When the relay lets connections
 * through again, ActivateSession of the old session fails, the client
 * creates a new session and transfers the subscription, republishing what
 * the server still holds. Asserted: one transfer, a new session, no lost
 * message, and the counter values delivered to the application are
 * consecutive from the first to the last (none missing, none twice),
 * covering the outage.
 *
 * usage: opcua_transfer_test EDGEPLANE   (exit 0 pass, 1 fail, 77 skip)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "svc/opcua_client/client.h"

#define OUTAGE_MS 13000u /* > session timeout (10 s) + its timer slack */
#define MAX_PAIRS 16

/* ---------------------------------------------------------------- relay */

typedef struct relay {
    int lfd;
    uint16_t port;
    uint16_t target_port;
    int pass; /* 1: relay, 0: drop everything (atomic) */
    int stop; /* atomic */
    int a[MAX_PAIRS], b[MAX_PAIRS];
    unsigned accepted, refused;
} relay;

static void pair_close(relay *r, int i)
{
    if (r->a[i] >= 0)
        close(r->a[i]);
    if (r->b[i] >= 0)
        close(r->b[i]);
    r->a[i] = r->b[i] = -1;
}

static int connect_target(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void *relay_main(void *arg)
{
    relay *r = arg;
    char buf[65536];
    while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
        int pass = __atomic_load_n(&r->pass, __ATOMIC_RELAXED);
        if (!pass)
            for (int i = 0; i < MAX_PAIRS; i++)
                if (r->a[i] >= 0)
                    pair_close(r, i);
        struct pollfd p[1 + 2 * MAX_PAIRS];
        int idx[1 + 2 * MAX_PAIRS];
        int n = 0;
        p[n].fd = r->lfd;
        p[n].events = POLLIN;
        idx[n++] = -1;
        for (int i = 0; i < MAX_PAIRS; i++)
            if (r->a[i] >= 0) {
                p[n].fd = r->a[i];
                p[n].events = POLLIN;
                idx[n++] = i;
                p[n].fd = r->b[i];
                p[n].events = POLLIN;
                idx[n++] = i + MAX_PAIRS;
            }
        if (poll(p, (nfds_t)n, 50) <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            int c = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0) {
                int slot = -1;
                for (int i = 0; i < MAX_PAIRS && slot < 0; i++)
                    if (r->a[i] < 0)
                        slot = i;
                int t = pass && slot >= 0 ? connect_target(r->target_port) : -1;
                if (t < 0) {
                    close(c);
                    r->refused++;
                } else {
                    r->a[slot] = c;
                    r->b[slot] = t;
                    r->accepted++;
                }
            }
        }
        for (int k = 1; k < n; k++) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int i = idx[k] % MAX_PAIRS;
            if (r->a[i] < 0)
                continue;
            int from = idx[k] < MAX_PAIRS ? r->a[i] : r->b[i];
            int to = idx[k] < MAX_PAIRS ? r->b[i] : r->a[i];
            ssize_t got = read(from, buf, sizeof(buf));
            if (got <= 0) {
                pair_close(r, i);
                continue;
            }
            for (ssize_t off = 0; off < got;) {
                ssize_t w = write(to, buf + off, (size_t)(got - off));
                if (w <= 0) {
                    pair_close(r, i);
                    break;
                }
                off += w;
            }
        }
    }
    for (int i = 0; i < MAX_PAIRS; i++)
        pair_close(r, i);
    return NULL;
}

static int relay_start(relay *r, uint16_t target, pthread_t *th)
{
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < MAX_PAIRS; i++)
        r->a[i] = r->b[i] = -1;
    r->target_port = target;
    r->pass = 1;
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(r->lfd, 16) != 0 || getsockname(r->lfd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    r->port = ntohs(sa.sin_port);
    return pthread_create(th, NULL, relay_main, r) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- server */

static pid_t sim_pid;

/* starts opcua-sim on a free port; returns its port, 0 on failure */
static uint16_t sim_start(const char *bin)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return 0;
    sim_pid = fork();
    if (sim_pid < 0)
        return 0;
    if (sim_pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(bin, bin, "opcua-sim", "--listen", "opc.tcp://127.0.0.1:0", "--update-ms", "200",
              "--event-ms", "60000", "--log-level", "info", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    char line[512];
    unsigned port = 0;
    while (f && fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "opcua-sim ready: opc.tcp://127.0.0.1:");
        if (p && sscanf(p + strlen("opcua-sim ready: opc.tcp://127.0.0.1:"), "%u", &port) == 1)
            break;
    }
    /* keep the pipe open (the server writes to it) but stop reading */
    return (uint16_t)port;
}

/* ------------------------------------------------------------- client */

typedef struct state {
    int done;
    ep_err err;
    ep_ua_status st;
    uint32_t first, last;
    uint64_t count, gaps, dups;
    int have;
    int transferred_status;
} state;

static void on_done(ep_uac *c, ep_err err, ep_ua_status st, uint32_t sub_id, const void *resp,
                    void *ud)
{
    (void)c;
    (void)sub_id;
    state *s = ud;
    s->err = err;
    s->st = st;
    if (err == EP_EOK && resp && st == EP_UA_STATUS_Good && s->done == 0 && s->have < 0) {
        const ep_ua_create_monitored_items_response *r = resp;
        if (r->results_len != 1 || (r->results[0].status_code & 0x80000000u))
            s->err = EP_EPROTO;
        s->have = 0;
    }
    s->done = 1;
}

static void on_data(ep_uac *c, uint32_t sub_id, uint32_t h, const ep_ua_datavalue *v, void *ud)
{
    (void)c;
    (void)sub_id;
    (void)h;
    state *s = ud;
    if (!(v->mask & EP_UA_DATAVALUE_VALUE) || v->value.type != EP_UA_T(UInt32) ||
        v->value.data == NULL)
        return;
    uint32_t x = *(const uint32_t *)v->value.data;
    if (s->have) {
        if (x == s->last + 1) {
            /* in order */
        } else if (x <= s->last) {
            s->dups++;
            fprintf(stderr, "  value %u again after %u\n", x, s->last);
        } else {
            s->gaps++;
            fprintf(stderr, "  gap: %u after %u\n", x, s->last);
        }
    } else {
        s->first = x;
        s->have = 1;
    }
    if (!s->have || x > s->last || s->count == 0)
        s->last = x;
    s->count++;
}

static void on_status(ep_uac *c, uint32_t sub_id, ep_ua_status st, uint32_t lost, void *ud)
{
    (void)c;
    (void)sub_id;
    state *s = ud;
    fprintf(stderr, "  subscription status %s (lost %u)\n", ep_ua_status_name(st), lost);
    if (st == EP_UA_STATUS_GoodSubscriptionTransferred)
        s->transferred_status++;
}

static void run_for(ep_loop *loop, uint64_t ms)
{
    uint64_t end = ep_clock_mono_ms() + ms;
    while (ep_clock_mono_ms() < end) {
        ep_loop_run_once(loop, 50);
        ep_loop_update_time(loop);
    }
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                                                 \
            fprintf(stderr, "\n");                                                                 \
            failed = 1;                                                                            \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    if (argc < 2 || access(argv[1], X_OK) != 0) {
        fprintf(stderr, "SKIP: usage: opcua_transfer_test EDGEPLANE\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    ep_log_set_level(EP_LOG_WARN);
    int failed = 0;
    uint16_t sport = sim_start(argv[1]);
    if (sport == 0) {
        fprintf(stderr, "FAIL: opcua-sim did not start\n");
        return 1;
    }
    relay r;
    pthread_t th;
    if (relay_start(&r, sport, &th) != 0) {
        fprintf(stderr, "FAIL: relay\n");
        kill(sim_pid, SIGTERM);
        return 1;
    }
    char url[64];
    snprintf(url, sizeof(url), "opc.tcp://127.0.0.1:%u", r.port);

    ep_loop *loop = NULL;
    ep_uac *c = NULL;
    state s;
    memset(&s, 0, sizeof(s));
    ep_loop_new(&loop, NULL);
    ep_uac_opts o;
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.session_timeout_ms = 10000; /* the server's floor */
    o.request_timeout_ms = 5000;
    o.connect_timeout_ms = 3000;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 1000;
    ep_ua_status st = 0;
    ep_err err = ep_uac_new(loop, &o, &c);
    if (err == EP_EOK)
        err = ep_uac_sync_connect(c, &st);
    CHECK(err == EP_EOK, "connect: %s %s", ep_strerror(err), ep_ua_status_name(st));
    uint32_t sid = 0;
    if (err == EP_EOK) {
        ep_uac_sub_opts so = {
            .publishing_interval_ms = 200, .max_keepalive_count = 10, .lifetime_count = 600};
        ep_uac_sub_handlers h = {.on_data = on_data, .on_status = on_status, .ud = &s};
        err = ep_uac_sub_create(c, &so, &h, on_done, &s, &sid);
        if (err == EP_EOK)
            err = ep_uac_sync_wait(c, &s.done, 10000);
        if (err == EP_EOK)
            err = s.err;
        ep_uac_mon_item it;
        memset(&it, 0, sizeof(it));
        ep_uac_nodeid_parse("ns=2;s=Plant.Oven1.Counter", &it.node);
        it.client_handle = 1;
        it.sampling_ms = 50;
        it.queue_size = 1000;
        s.done = 0;
        s.have = -1;
        if (err == EP_EOK)
            err = ep_uac_mon_create(c, sid, 1, &it, on_done, &s);
        if (err == EP_EOK)
            err = ep_uac_sync_wait(c, &s.done, 10000);
        if (err == EP_EOK)
            err = s.err;
        CHECK(err == EP_EOK, "subscribe: %s %s", ep_strerror(err), ep_ua_status_name(s.st));
    }
    if (err == EP_EOK) {
        run_for(loop, 2500);
        uint64_t before = s.count;
        uint32_t last_before = s.last;
        fprintf(stderr, "%llu values (%u..%u) before the outage\n", (unsigned long long)before,
                s.first, s.last);
        CHECK(before >= 5, "only %llu values before the outage", (unsigned long long)before);
        __atomic_store_n(&r.pass, 0, __ATOMIC_RELAXED);
        fprintf(stderr, "relay drops every connection for %u ms\n", OUTAGE_MS);
        run_for(loop, OUTAGE_MS);
        __atomic_store_n(&r.pass, 1, __ATOMIC_RELAXED);
        uint64_t end = ep_clock_mono_ms() + 20000;
        ep_uac_stats stt;
        do {
            run_for(loop, 100);
            ep_uac_get_stats(c, &stt);
        } while ((stt.transfers == 0 || s.last < last_before + 80) && ep_clock_mono_ms() < end);
        run_for(loop, 1500);
        ep_uac_get_stats(c, &stt);
        fprintf(stderr,
                "%llu values (%u..%u); reconnects %llu, sessions created "
                "again %llu, transfers %llu, republished %llu, lost %llu; "
                "relay: %u connections relayed, %u refused\n",
                (unsigned long long)s.count, s.first, s.last, (unsigned long long)stt.reconnects,
                (unsigned long long)stt.session_recreated, (unsigned long long)stt.transfers,
                (unsigned long long)stt.republished, (unsigned long long)stt.lost, r.accepted,
                r.refused);
        CHECK(stt.session_recreated == 1, "session created again %llu times",
              (unsigned long long)stt.session_recreated);
        CHECK(stt.transfers == 1, "%llu transfers", (unsigned long long)stt.transfers);
        CHECK(s.transferred_status == 1, "GoodSubscriptionTransferred reported %d times",
              s.transferred_status);
        CHECK(stt.lost == 0, "%llu messages lost", (unsigned long long)stt.lost);
        CHECK(s.gaps == 0 && s.dups == 0, "%llu gaps, %llu duplicates", (unsigned long long)s.gaps,
              (unsigned long long)s.dups);
        CHECK(s.count == (uint64_t)(s.last - s.first) + 1, "%llu values for %u..%u",
              (unsigned long long)s.count, s.first, s.last);
        /* the outage alone spans about 65 counter steps */
        CHECK(s.last >= last_before + 60, "values stop at %u (%u before the outage)", s.last,
              last_before);
        CHECK(r.refused > 0, "the client never tried during the outage");
        ep_uac_sync_disconnect(c);
    }
    ep_uac_free(c);
    uint64_t lend = ep_clock_mono_ms() + 2000;
    while (ep_uac_channels_alive() && ep_clock_mono_ms() < lend)
        run_for(loop, 20);
    ep_loop_free(loop);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    close(r.lfd);
    kill(sim_pid, SIGTERM);
    int wst = 0;
    waitpid(sim_pid, &wst, 0);
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "opcua-sim exit status %d", wst);
    fprintf(stderr, "%s\n", failed ? "FAILED" : "PASSED");
    return failed;
}
