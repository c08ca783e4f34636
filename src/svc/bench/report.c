/*
 * report.c - results as a human table or one JSON object (--json).
 *
 * The JSON object is flat (no nesting) and printed on one line so that
 * shell scripts can pick fields out with sed; latencies are microseconds,
 * rates messages per second.
 */
#include <stdio.h>
#include <string.h>

#include "svc/bench/bench_int.h"

static const char *group(char *buf, size_t n, uint64_t v)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static const char *dur(char *buf, size_t n, uint64_t ns)
{
    if (ns < 1000u)
        snprintf(buf, n, "%llu ns", (unsigned long long)ns);
    else if (ns < 1000000u)
        snprintf(buf, n, "%.1f us", (double)ns / 1e3);
    else if (ns < 1000000000u)
        snprintf(buf, n, "%.2f ms", (double)ns / 1e6);
    else
        snprintf(buf, n, "%.2f s", (double)ns / 1e9);
    return buf;
}

static double per_s(uint64_t n, double s) { return s > 0.0 ? (double)n / s : 0.0; }

static void report_idle(const ep_bench_run *r, const ep_bench_result *res)
{
    const ep_bench_opts *o = &r->o;
    long delta = res->rss_before_kb >= 0 && res->rss_after_kb >= 0
                     ? res->rss_after_kb - res->rss_before_kb
                     : -1;
    double per_conn = delta >= 0 ? (double)delta * 1024.0 / res->connections : -1.0;
    if (o->json) {
        printf("{\"scenario\":\"idle\",\"mqtt_version\":%u,\"threads\":%u,"
               "\"connections\":%u,\"connect_s\":%.3f,\"conn_per_s\":%.0f,"
               "\"broker_pid\":%d,\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,"
               "\"bytes_per_connection\":%.0f,\"closed\":%llu}\n",
               o->version == EP_MQTT_V5 ? 5u : 3u, o->threads, res->connections, res->connect_s,
               res->connect_s > 0 ? res->connections / res->connect_s : 0.0, o->broker_pid,
               res->rss_before_kb, res->rss_after_kb, per_conn, (unsigned long long)res->closed);
        fflush(stdout);
        return;
    }
    char a[32];
    printf("edgeplane bench: idle, %s connections to %s:%u, MQTT %s, %u threads\n\n",
           group(a, sizeof(a), res->connections), o->host, (unsigned)o->port,
           o->version == EP_MQTT_V5 ? "5" : "3.1.1", o->threads);
    printf("  %-22s %s in %.2f s (%.0f/s)\n", "connected", group(a, sizeof(a), res->connections),
           res->connect_s, res->connect_s > 0 ? res->connections / res->connect_s : 0.0);
    if (delta >= 0) {
        printf("  %-22s %ld kB -> %ld kB\n", "broker RSS", res->rss_before_kb, res->rss_after_kb);
        printf("  %-22s %.0f bytes\n", "RSS per connection", per_conn);
    }
    if (res->closed)
        printf("  %-22s %llu\n", "closed by broker", (unsigned long long)res->closed);
    fflush(stdout);
}

static const char *tls_name(const ep_bench_run *r, const ep_bench_result *res)
{
    return !r->o.tls ? "off" : res->tls_desc ? res->tls_desc : "on";
}

static void report_handshake(const ep_bench_run *r, const ep_bench_result *res)
{
    const ep_bench_opts *o = &r->o;
    const ep_bench_hist *h = res->hist;
    uint64_t p50 = ep_bench__hist_quantile(h, 0.50);
    uint64_t p90 = ep_bench__hist_quantile(h, 0.90);
    uint64_t p99 = ep_bench__hist_quantile(h, 0.99);
    double mean = h->count ? h->sum / (double)h->count : 0.0;
    double cores = res->window_s > 0 ? res->cpu_s / res->window_s : 0.0;
    if (o->json) {
        printf("{\"scenario\":\"handshake\",\"tls\":\"%s\",\"tls_resume\":%d,"
               "\"connectors\":%u,\"mqtt_version\":%u,\"threads\":%u,\"rate\":%.0f,"
               "\"duration_s\":%.3f,\"handshakes\":%llu,\"handshakes_per_s\":%.1f,"
               "\"handshakes_total\":%llu,\"resumed\":%llu,\"errors\":%llu,"
               "\"handshake_p50_us\":%.1f,\"handshake_p90_us\":%.1f,"
               "\"handshake_p99_us\":%.1f,\"handshake_max_us\":%.1f,"
               "\"handshake_mean_us\":%.1f,\"generator_cpu_cores\":%.2f}\n",
               tls_name(r, res), o->tls_resume, o->connectors, o->version == EP_MQTT_V5 ? 5u : 3u,
               o->threads, o->rate, res->window_s, (unsigned long long)res->handshakes,
               per_s(res->handshakes, res->window_s), (unsigned long long)res->hs_total,
               (unsigned long long)res->hs_resumed, (unsigned long long)res->hs_errors,
               (double)p50 / 1e3, (double)p90 / 1e3, (double)p99 / 1e3, (double)h->max / 1e3,
               mean / 1e3, cores);
        fflush(stdout);
        return;
    }
    char a[32], b[32];
    printf("edgeplane bench: handshake, %u connectors, %s, TLS %s%s, MQTT %s\n", o->connectors,
           o->rate > 0.0 ? "open loop" : "closed loop", tls_name(r, res),
           o->tls_resume ? " (resumption offered)" : "", o->version == EP_MQTT_V5 ? "5" : "3.1.1");
    printf("  %s:%u, %.1f s measured after %.1f s warm-up, %u threads\n\n", o->host,
           (unsigned)o->port, res->window_s, o->warmup, o->threads);
    printf("  %-16s %16s   %s\n", "", "per s", "cycles");
    printf("  %-16s %16s   %s\n", "handshakes",
           group(a, sizeof(a), (uint64_t)(per_s(res->handshakes, res->window_s) + 0.5)),
           group(b, sizeof(b), res->handshakes));
    printf("  %-16s %16s\n", "resumed", group(a, sizeof(a), res->hs_resumed));
    printf("  %-16s %16s\n", "errors", group(a, sizeof(a), res->hs_errors));
    printf("\n  %-16s %16s   (connect to CONNACK)\n", "time p50", dur(a, sizeof(a), p50));
    printf("  %-16s %16s\n", "time p90", dur(a, sizeof(a), p90));
    printf("  %-16s %16s\n", "time p99", dur(a, sizeof(a), p99));
    printf("  %-16s %16s\n", "time max", dur(a, sizeof(a), h->max));
    printf("\n  %-16s %15.2f    cores busy (generator, all threads)\n", "generator CPU", cores);
    fflush(stdout);
}

void ep_bench__report(const ep_bench_run *r, const ep_bench_result *res)
{
    const ep_bench_opts *o = &r->o;
    if (o->scenario == EP_BENCH_IDLE) {
        report_idle(r, res);
        return;
    }
    if (o->scenario == EP_BENCH_HANDSHAKE) {
        report_handshake(r, res);
        return;
    }
    const ep_bench_hist *h = res->hist;
    uint64_t p50 = ep_bench__hist_quantile(h, 0.50);
    uint64_t p90 = ep_bench__hist_quantile(h, 0.90);
    uint64_t p99 = ep_bench__hist_quantile(h, 0.99);
    uint64_t p999 = ep_bench__hist_quantile(h, 0.999);
    double mean = h->count ? h->sum / (double)h->count : 0.0;
    /* From the actual send time: the broker's part without the generator's
     * lateness (0 when the payload is too small to carry that time). */
    const ep_bench_hist *hs = res->hist_sent;
    uint64_t s50 = ep_bench__hist_quantile(hs, 0.50);
    uint64_t s99 = ep_bench__hist_quantile(hs, 0.99);
    uint64_t s999 = ep_bench__hist_quantile(hs, 0.999);
    uint64_t smax = hs->count ? hs->max : 0;
    double cores = res->window_s > 0 ? res->cpu_s / res->window_s : 0.0;

    if (o->json) {
        printf("{\"scenario\":\"%s\",\"qos\":%u,\"size\":%u,\"publishers\":%u,"
               "\"subscribers\":%u,\"topics\":%u,\"mqtt_version\":%u,\"threads\":%u,"
               "\"inflight\":%u,\"rate\":%.0f,\"duration_s\":%.3f,"
               "\"sent\":%llu,\"sent_per_s\":%.0f,"
               "\"delivered\":%llu,\"delivered_per_s\":%.0f,"
               "\"latency_p50_us\":%.1f,\"latency_p90_us\":%.1f,"
               "\"latency_p99_us\":%.1f,\"latency_p999_us\":%.1f,"
               "\"latency_max_us\":%.1f,\"latency_mean_us\":%.1f,"
               "\"latency_samples\":%llu,"
               "\"latency_sent_p50_us\":%.1f,\"latency_sent_p99_us\":%.1f,"
               "\"latency_sent_p999_us\":%.1f,\"latency_sent_max_us\":%.1f,"
               "\"lost\":%llu,\"duplicated\":%llu,\"out_of_order\":%llu,"
               "\"expected\":%llu,\"sent_total\":%llu,\"received_total\":%llu,"
               "\"foreign\":%llu,\"closed\":%llu,\"send_lag_max_us\":%.1f,"
               "\"generator_cpu_cores\":%.2f,\"tls\":\"%s\"}\n",
               ep_bench__scenario_name(o->scenario), (unsigned)o->qos, o->size, o->publishers,
               o->subscribers, o->topics, o->version == EP_MQTT_V5 ? 5u : 3u, o->threads,
               o->inflight, o->rate, res->window_s, (unsigned long long)res->sent,
               per_s(res->sent, res->window_s), (unsigned long long)res->delivered,
               per_s(res->delivered, res->window_s), (double)p50 / 1e3, (double)p90 / 1e3,
               (double)p99 / 1e3, (double)p999 / 1e3, (double)h->max / 1e3, mean / 1e3,
               (unsigned long long)h->count, (double)s50 / 1e3, (double)s99 / 1e3,
               (double)s999 / 1e3, (double)smax / 1e3, (unsigned long long)res->lost,
               (unsigned long long)res->dup, (unsigned long long)res->ooo,
               (unsigned long long)res->expected, (unsigned long long)res->sent_total,
               (unsigned long long)res->received_total, (unsigned long long)res->foreign,
               (unsigned long long)res->closed, (double)res->lag_max_ns / 1e3, cores,
               tls_name(r, res));
        fflush(stdout);
        return;
    }

    char a[32], b[32], rate[48];
    if (o->rate > 0.0)
        snprintf(rate, sizeof(rate), "paced at %s msg/s", group(a, sizeof(a), (uint64_t)o->rate));
    else
        snprintf(rate, sizeof(rate), "max rate");
    printf("edgeplane bench: %s, %u publisher%s -> %u subscriber%s",
           ep_bench__scenario_name(o->scenario), o->publishers, o->publishers == 1 ? "" : "s",
           o->subscribers, o->subscribers == 1 ? "" : "s");
    if (o->scenario == EP_BENCH_FAN_IN)
        printf(" on %u topic%s", o->topics, o->topics == 1 ? "" : "s");
    printf(", QoS %u", (unsigned)o->qos);
    if (o->qos)
        printf(" (window %u)", o->inflight);
    printf(", %u B, MQTT %s, TLS %s\n", o->size, o->version == EP_MQTT_V5 ? "5" : "3.1.1",
           tls_name(r, res));
    printf("  %s:%u, %s, %.1f s measured after %.1f s warm-up, %u threads\n\n", o->host,
           (unsigned)o->port, rate, res->window_s, o->warmup, o->threads);

    printf("  %-16s %16s   %s\n", "", "msgs/s", "messages");
    printf("  %-16s %16s   %s\n", "sent",
           group(a, sizeof(a), (uint64_t)(per_s(res->sent, res->window_s) + 0.5)),
           group(b, sizeof(b), res->sent));
    printf("  %-16s %16s   %s\n", "delivered",
           group(a, sizeof(a), (uint64_t)(per_s(res->delivered, res->window_s) + 0.5)),
           group(b, sizeof(b), res->delivered));
    printf("\n  %-16s %16s\n", "latency p50", dur(a, sizeof(a), p50));
    printf("  %-16s %16s\n", "latency p90", dur(a, sizeof(a), p90));
    printf("  %-16s %16s\n", "latency p99", dur(a, sizeof(a), p99));
    printf("  %-16s %16s\n", "latency p99.9", dur(a, sizeof(a), p999));
    printf("  %-16s %16s\n", "latency max", dur(a, sizeof(a), h->max));
    if (o->rate > 0.0 && hs->count) {
        printf("\n  from the actual send time (without the generator's lateness):\n");
        printf("  %-16s %16s\n", "latency p50", dur(a, sizeof(a), s50));
        printf("  %-16s %16s\n", "latency p99", dur(a, sizeof(a), s99));
        printf("  %-16s %16s\n", "latency p99.9", dur(a, sizeof(a), s999));
        printf("  %-16s %16s\n", "latency max", dur(a, sizeof(a), smax));
    }
    printf("\n  %-16s %16s   of %s expected deliveries\n", "lost", group(a, sizeof(a), res->lost),
           group(b, sizeof(b), res->expected));
    printf("  %-16s %16s\n", "duplicated", group(a, sizeof(a), res->dup));
    printf("  %-16s %16s\n", "out of order", group(a, sizeof(a), res->ooo));
    if (res->foreign)
        printf("  %-16s %16s   (not from this run)\n", "foreign",
               group(a, sizeof(a), res->foreign));
    if (res->closed)
        printf("  %-16s %16s\n", "conns lost", group(a, sizeof(a), res->closed));
    printf("\n  %-16s %15.2f    cores busy (generator, all threads)\n", "generator CPU", cores);
    if (o->rate > 0.0)
        printf("  %-16s %16s   worst lateness of a paced send\n", "send lag max",
               dur(a, sizeof(a), res->lag_max_ns));
    fflush(stdout);
}
