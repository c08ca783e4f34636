/*
 * uac_bench.c - load measurement of the OPC UA client (bench/opcua-client.sh).
 *
 * Connects one ep_uac (SecurityPolicy None, anonymous) to URL, measures the
 * RSS of the idle connected client, creates one subscription with K
 * monitored items named by a NodeId pattern (in batches of 1000), waits for
 * the first notifications plus a warm-up, and then measures over a window of
 * SECONDS only (setup excluded):
 *
 *   notifications_per_s       items delivered to the on_data callback
 *   cpu_us_per_notification   getrusage(RUSAGE_SELF) user+system delta over
 *                             the window / notifications in the window
 *   rss_per_1000_items_kib    (RSS at the end of the window - idle RSS) /
 *                             (K / 1000)
 *
 * With --server-pid the server's CPU over the same window is read from
 * /proc/PID/stat (clock ticks) and reported per notification as well.
 * One JSON line on stdout; progress on stderr.
 *
 *   ep_uac_bench --url opc.tcp://127.0.0.1:4840 --pattern "ns=2;s=Plant.Extra.%u"
 *                -k 10000 [--interval 1000] [--sampling -1] [--seconds 10]
 *                [--warmup 3] [--server-pid PID]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "svc/opcua_client/client.h"

/* measurement window: from the first notification of a burst (a gap of
 * more than gap_ms before it) to the first one of the burst that follows
 * the end of the window, so that whole publishing cycles are counted */
enum { W_IDLE, W_ARMED, W_MEASURING, W_DONE };

typedef struct bench {
    ep_loop *loop;
    ep_uac *c;
    uint64_t count;
    uint64_t first_ms, last_ms;
    int wstate;
    uint64_t gap_ms, window_ms;
    uint64_t w_count0, w_count1, w_m0, w_m1;
    double w_cpu0, w_cpu1;
    bool msg_start; /* the next on_data is the first item of a message */
    long server_pid;
    double w_scpu0, w_scpu1;
    int done;
    ep_err err;
    ep_ua_status st;
    size_t bad_items;
} bench;

static double cpu_s(void);

static double proc_cpu_s(long pid);

static void window_edge(bench *b, uint64_t now)
{
    if (b->wstate == W_ARMED) {
        if (b->server_pid)
            b->w_scpu0 = proc_cpu_s(b->server_pid);
        b->w_cpu0 = cpu_s();
        b->w_m0 = now;
        b->w_count0 = b->count;
        b->wstate = W_MEASURING;
    } else if (b->wstate == W_MEASURING && now - b->w_m0 >= b->window_ms) {
        b->w_cpu1 = cpu_s();
        b->w_m1 = now;
        b->w_count1 = b->count;
        b->wstate = W_DONE;
        if (b->server_pid)
            b->w_scpu1 = proc_cpu_s(b->server_pid);
    }
}

/* one clock reading per notification message (not per item), so that the
 * measurement does not weigh on what it measures */
static void on_data(ep_uac *c, uint32_t sub_id, uint32_t handle, const ep_ua_datavalue *v, void *ud)
{
    (void)c;
    (void)sub_id;
    (void)handle;
    (void)v;
    bench *b = ud;
    if (b->msg_start) {
        b->msg_start = false;
        uint64_t now = ep_clock_mono_ms();
        if ((b->wstate == W_ARMED || b->wstate == W_MEASURING) && now - b->last_ms > b->gap_ms)
            window_edge(b, now);
        if (b->count == 0)
            b->first_ms = now;
    }
    b->count++;
}

static int g_trace;
static void on_message(ep_uac *c, uint32_t sub_id, uint32_t seq, ep_ua_datetime publish_time,
                       void *ud)
{
    (void)c;
    (void)sub_id;
    (void)publish_time;
    bench *b = ud;
    b->msg_start = true;
    b->last_ms = ep_clock_mono_ms();
    if (g_trace)
        fprintf(stderr, "%llu seq %u total %llu\n", (unsigned long long)ep_clock_mono_ms(), seq,
                (unsigned long long)b->count);
}

static void on_done(ep_uac *c, ep_err err, ep_ua_status st, uint32_t sub_id, const void *resp,
                    void *ud)
{
    (void)c;
    (void)sub_id;
    (void)resp;
    bench *b = ud;
    b->err = err;
    b->st = st;
    b->done = 1;
}

static void on_mon_done(ep_uac *c, ep_err err, ep_ua_status st, uint32_t sub_id, const void *resp,
                        void *ud)
{
    on_done(c, err, st, sub_id, resp, ud);
    if (err == EP_EOK && resp && st == EP_UA_STATUS_Good) {
        const ep_ua_create_monitored_items_response *r = resp;
        bench *b = ud;
        for (size_t i = 0; i < r->results_len; i++)
            if (r->results[i].status_code & 0x80000000u)
                b->bad_items++;
    }
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* user+system seconds of another process, -1 if unknown */
static double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long ut = 0, stt = 0;
    /* after ")": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
        return -1;
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

static ep_err run_until(bench *b, const int *flag, uint64_t deadline_ms)
{
    while (flag == NULL || !*flag) {
        uint64_t now = ep_clock_mono_ms();
        if (now >= deadline_ms)
            return flag ? EP_ETIMEDOUT : EP_EOK;
        uint64_t left = deadline_ms - now;
        ep_err err = ep_loop_run_once(b->loop, left > 100 ? 100 : (int)left);
        if (err != EP_EOK)
            return err;
        ep_loop_update_time(b->loop);
    }
    return EP_EOK;
}

static void usage(void)
{
    fprintf(stderr, "usage: ep_uac_bench --url URL --pattern FMT -k K [--interval MS]\n"
                    "       [--sampling MS] [--seconds S] [--warmup S] "
                    "[--server-pid PID]\n");
}

int main(int argc, char **argv)
{
    const char *url = NULL, *pattern = NULL;
    long k = 10000, server_pid = 0;
    double interval = 1000, sampling = -1, seconds = 10, warmup = 3;
    enum { O_URL = 256, O_PAT, O_INT, O_SAMP, O_SECS, O_WARM, O_PID };
    static const struct option lo[] = {
        {"url", required_argument, NULL, O_URL},
        {"pattern", required_argument, NULL, O_PAT},
        {"interval", required_argument, NULL, O_INT},
        {"sampling", required_argument, NULL, O_SAMP},
        {"seconds", required_argument, NULL, O_SECS},
        {"warmup", required_argument, NULL, O_WARM},
        {"server-pid", required_argument, NULL, O_PID},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "k:h", lo, NULL)) != -1) {
        switch (o) {
        case 'k':
            k = strtol(optarg, NULL, 10);
            break;
        case O_URL:
            url = optarg;
            break;
        case O_PAT:
            pattern = optarg;
            break;
        case O_INT:
            interval = strtod(optarg, NULL);
            break;
        case O_SAMP:
            sampling = strtod(optarg, NULL);
            break;
        case O_SECS:
            seconds = strtod(optarg, NULL);
            break;
        case O_WARM:
            warmup = strtod(optarg, NULL);
            break;
        case O_PID:
            server_pid = strtol(optarg, NULL, 10);
            break;
        default:
            usage();
            return 2;
        }
    }
    if (url == NULL || pattern == NULL || k <= 0 || interval <= 0 || seconds <= 0) {
        usage();
        return 2;
    }
    ep_log_set_level(EP_LOG_WARN);

    bench b;
    memset(&b, 0, sizeof(b));
    b.msg_start = true;
    int rc = 1;
    if (ep_loop_new(&b.loop, NULL) != EP_EOK)
        return 1;
    ep_uac_opts uo;
    memset(&uo, 0, sizeof(uo));
    uo.url = url;
    uo.request_timeout_ms = 60000;
    uo.no_reconnect = true;
    ep_ua_status st = 0;
    ep_err err = ep_uac_new(b.loop, &uo, &b.c);
    if (err == EP_EOK)
        err = ep_uac_sync_connect(b.c, &st);
    if (err != EP_EOK) {
        fprintf(stderr, "ep_uac_bench: connect: %s %s\n", ep_strerror(err),
                st ? ep_ua_status_name(st) : "");
        goto out;
    }
    /* idle connected client: let the first buffers settle */
    run_until(&b, NULL, ep_clock_mono_ms() + 500);
    long rss_idle = rss_kib();

    ep_uac_sub_opts so;
    memset(&so, 0, sizeof(so));
    so.publishing_interval_ms = interval;
    ep_uac_sub_handlers h;
    memset(&h, 0, sizeof(h));
    h.on_data = on_data;
    h.on_message = on_message;
    g_trace = getenv("UAC_BENCH_TRACE") != NULL;
    h.ud = &b;
    uint32_t sid = 0;
    uint64_t t0 = ep_clock_mono_ms();
    err = ep_uac_sub_create(b.c, &so, &h, on_done, &b, &sid);
    if (err == EP_EOK)
        err = run_until(&b, &b.done, ep_clock_mono_ms() + 60000);
    if (err == EP_EOK)
        err = b.err;
    /* items in batches of 1000, generated per batch so that the
     * application's own arrays do not count as client memory */
    ep_uac_mon_item items[1000];
    char names[1000][64];
    for (long off = 0; err == EP_EOK && off < k; off += 1000) {
        size_t n = (size_t)(k - off < 1000 ? k - off : 1000);
        memset(items, 0, n * sizeof(items[0]));
        for (size_t i = 0; i < n && err == EP_EOK; i++) {
            snprintf(names[i], sizeof(names[i]), pattern, (unsigned)(off + (long)i));
            err = ep_uac_nodeid_parse(names[i], &items[i].node);
            items[i].client_handle = (uint32_t)(off + (long)i);
            items[i].sampling_ms = sampling;
            items[i].queue_size = 1;
        }
        b.done = 0;
        if (err == EP_EOK)
            err = ep_uac_mon_create(b.c, sid, n, items, on_mon_done, &b);
        if (err == EP_EOK)
            err = run_until(&b, &b.done, ep_clock_mono_ms() + 60000);
        if (err == EP_EOK)
            err = b.err;
    }
    if (err != EP_EOK || b.bad_items) {
        fprintf(stderr, "ep_uac_bench: subscribe: %s %s (%zu items refused)\n", ep_strerror(err),
                b.st ? ep_ua_status_name(b.st) : "", b.bad_items);
        goto out;
    }
    double created_s = (double)(ep_clock_mono_ms() - t0) / 1000.0;
    /* warm-up: until values flow, then a few publishing cycles more */
    uint64_t wend = ep_clock_mono_ms() + 30000;
    while (b.count == 0 && ep_clock_mono_ms() < wend)
        run_until(&b, NULL, ep_clock_mono_ms() + 50);
    run_until(&b, NULL, ep_clock_mono_ms() + (uint64_t)(warmup * 1000));

    ep_uac_stats s0, s1;
    ep_uac_get_stats(b.c, &s0);
    b.window_ms = (uint64_t)(seconds * 1000);
    b.gap_ms = (uint64_t)(interval / 4);
    b.server_pid = server_pid;
    b.w_scpu0 = b.w_scpu1 = -1;
    b.wstate = W_ARMED;
    /* the loop sleeps until traffic: the window edges are taken in on_data */
    uint64_t hard_end = ep_clock_mono_ms() + b.window_ms + (uint64_t)(4 * interval) + 5000;
    while (b.wstate != W_DONE && ep_clock_mono_ms() < hard_end) {
        if (ep_loop_run_once(b.loop, 1000) != EP_EOK)
            break;
        ep_loop_update_time(b.loop);
        /* no burst edge (continuous flow): close on time */
        if (b.wstate == W_MEASURING &&
            ep_clock_mono_ms() - b.w_m0 >= b.window_ms + (uint64_t)(2 * interval))
            window_edge(&b, ep_clock_mono_ms());
    }
    if (b.wstate != W_DONE) {
        fprintf(stderr, "ep_uac_bench: no notifications in the window\n");
        goto out;
    }
    long rss_sub = rss_kib();
    ep_uac_get_stats(b.c, &s1);
    uint64_t n = b.w_count1 - b.w_count0;
    double span = (double)(b.w_m1 - b.w_m0) / 1000.0;
    double cpu_us = (b.w_cpu1 - b.w_cpu0) * 1e6;
    printf("{\"client\":\"edgeplane\",\"items\":%ld,\"created_s\":%.2f,"
           "\"seconds\":%.2f,\"notifications\":%llu,"
           "\"notifications_per_s\":%.0f,\"cpu_s\":%.4f,"
           "\"cpu_us_per_notification\":%.4f,\"rss_idle_kib\":%ld,"
           "\"rss_subscribed_kib\":%ld,\"rss_per_1000_items_kib\":%.1f,"
           "\"lost\":%llu,\"reconnects\":%llu",
           k, created_s, span, (unsigned long long)n, span > 0 ? (double)n / span : 0.0,
           cpu_us / 1e6, n ? cpu_us / (double)n : 0.0, rss_idle, rss_sub,
           (double)(rss_sub - rss_idle) / ((double)k / 1000.0),
           (unsigned long long)(s1.lost - s0.lost),
           (unsigned long long)(s1.reconnects - s0.reconnects));
    if (server_pid && b.w_scpu0 >= 0 && b.w_scpu1 >= 0)
        printf(",\"server_cpu_s\":%.2f,\"server_cpu_us_per_notification\":%.3f",
               b.w_scpu1 - b.w_scpu0, n ? (b.w_scpu1 - b.w_scpu0) * 1e6 / (double)n : 0.0);
    printf("}\n");
    fflush(stdout);
    rc = 0;
out:
    if (b.c && ep_uac_get_state(b.c) == EP_UAC_CONNECTED)
        ep_uac_sync_disconnect(b.c);
    ep_uac_free(b.c);
    uint64_t lend = ep_clock_mono_ms() + 2000;
    while (ep_uac_channels_alive() && ep_clock_mono_ms() < lend)
        run_until(&b, NULL, ep_clock_mono_ms() + 50);
    ep_loop_free(b.loop);
    return rc;
}
