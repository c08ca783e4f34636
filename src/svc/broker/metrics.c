/*
 * metrics.c - the broker's Prometheus metrics (edgeplane_broker_*).
 *
 * Hot paths only bump the per-worker atomic counters they already keep;
 * a collector copies them into the registry when /metrics is scraped, so
 * exporting metrics adds nothing per message.
 */
#include <stdio.h>
#include <string.h>

#include "core/metrics.h"
#include "svc/auth/callout.h"
#include "svc/broker/broker_int.h"

static const char *const drop_reason[BK_DROP__COUNT] = {"queue_full", "expired", "too_large",
                                                        "slow_consumer", "no_memory"};

typedef struct bk_metrics {
    ep_gauge *connections, *sessions, *subscriptions, *retained, *queued;
    ep_counter *msgs[2][3]; /* direction, qos */
    ep_counter *bytes[2];
    ep_counter *dropped[BK_DROP__COUNT];
    ep_counter *auth_failures, *authz_denied;
    /* persistence (only with a data directory) */
    ep_counter *p_appends, *p_append_failed, *p_refused, *p_fsyncs, *p_compactions;
    ep_gauge *p_disk_bytes, *p_full;
    ep_histogram *p_commit;
    /* custom authentication callouts, per authentication chain with one */
    struct {
        ep_counter *requests, *allowed, *denied, *unavailable, *timeouts, *rejected;
        ep_gauge *pending;
    } co[EP_BROKER_MAX_CHAINS];
    ep_metrics_collector *collector;
    ep_metrics_check *ready;
} bk_metrics;

static void collect_callouts(ep_broker *b, bk_metrics *m)
{
    for (int i = 0; i < b->cfg.n_authn; i++) {
        ep_callout_stats st;
        if (b->authn_rt[i].callout == NULL || m->co[i].requests == NULL)
            continue;
        ep_callout_get_stats(b->authn_rt[i].callout, &st);
        ep_counter_set(m->co[i].requests, (double)st.submitted);
        ep_counter_set(m->co[i].allowed, (double)st.allowed);
        ep_counter_set(m->co[i].denied, (double)st.denied);
        ep_counter_set(m->co[i].unavailable, (double)st.unavailable);
        ep_counter_set(m->co[i].timeouts, (double)st.timeouts);
        ep_counter_set(m->co[i].rejected, (double)st.rejected_full);
        ep_gauge_set(m->co[i].pending, (double)st.pending);
    }
}

static void collect(ep_metrics *reg, void *ud)
{
    ep_broker *b = ud;
    bk_metrics *m = b->metrics;
    uint64_t msgs[2][3] = {{0}}, bytes[2] = {0}, dropped[BK_DROP__COUNT] = {0};
    long long queued = 0;
    (void)reg;
    for (int i = 0; i < b->nworkers; i++) {
        bk_counters *c = &b->workers[i]->ctr;
        for (int q = 0; q < 3; q++) {
            msgs[0][q] += atomic_load_explicit(&c->msgs_in_qos[q], memory_order_relaxed);
            msgs[1][q] += atomic_load_explicit(&c->msgs_out_qos[q], memory_order_relaxed);
        }
        bytes[0] += atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
        bytes[1] += atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
        for (int r = 0; r < BK_DROP__COUNT; r++)
            dropped[r] += atomic_load_explicit(&c->dropped[r], memory_order_relaxed);
        queued += atomic_load_explicit(&c->queued, memory_order_relaxed);
    }
    for (int d = 0; d < 2; d++) {
        for (int q = 0; q < 3; q++)
            ep_counter_set(m->msgs[d][q], (double)msgs[d][q]);
        ep_counter_set(m->bytes[d], (double)bytes[d]);
    }
    for (int r = 0; r < BK_DROP__COUNT; r++)
        ep_counter_set(m->dropped[r], (double)dropped[r]);
    ep_counter_set(m->auth_failures, (double)atomic_load(&b->auth_failures));
    ep_counter_set(m->authz_denied, (double)atomic_load(&b->authz_denied));
    ep_gauge_set(m->connections, (double)atomic_load(&b->nconnected));
    ep_gauge_set(m->sessions, (double)atomic_load(&b->nsessions));
    ep_gauge_set(m->subscriptions, (double)atomic_load(&b->tree.nsubs));
    ep_gauge_set(m->retained, (double)atomic_load(&b->tree.nretained));
    ep_gauge_set(m->queued, (double)queued);
    collect_callouts(b, m);
    bk_persist_stats ps;
    if (m->p_appends && bk_persist_stats_get(b, &ps)) {
        ep_counter_set(m->p_appends, (double)ps.appends);
        ep_counter_set(m->p_append_failed, (double)ps.append_failed);
        ep_counter_set(m->p_refused, (double)ps.refused_full);
        ep_counter_set(m->p_fsyncs, (double)ps.fsyncs);
        ep_counter_set(m->p_compactions, (double)ps.compactions);
        ep_gauge_set(m->p_disk_bytes, (double)ps.disk_bytes);
        ep_gauge_set(m->p_full, ps.full ? 1.0 : 0.0);
    }
}

static ep_err persist_metrics_init(ep_broker *b, ep_metrics *r, bk_metrics *m)
{
    ep_err err =
        ep_metrics_counter_simple(r, "edgeplane_broker_persist_appends_total",
                                  "Records appended to the persistence log.", &m->p_appends);
    err = err ? err
              : ep_metrics_counter_simple(r, "edgeplane_broker_persist_append_failures_total",
                                          "Appends refused by the log (full, backlog, I/O error).",
                                          &m->p_append_failed);
    err = err ? err
              : ep_metrics_counter_simple(r, "edgeplane_broker_persist_refused_total",
                                          "QoS 1/2 publishes refused (0x97, or a 3.1.1 close) "
                                          "because the log was full.",
                                          &m->p_refused);
    err = err ? err
              : ep_metrics_counter_simple(r, "edgeplane_broker_persist_fsyncs_total",
                                          "fdatasync calls of the log (one per group commit).",
                                          &m->p_fsyncs);
    err = err ? err
              : ep_metrics_counter_simple(r, "edgeplane_broker_persist_compactions_total",
                                          "Snapshots written (compactions).", &m->p_compactions);
    err = err ? err
              : ep_metrics_gauge_simple(r, "edgeplane_broker_persist_disk_bytes",
                                        "Bytes of log segments and snapshot on disk.",
                                        &m->p_disk_bytes);
    err = err ? err
              : ep_metrics_gauge_simple(r, "edgeplane_broker_persist_full",
                                        "1 while the log refuses appends (disk budget or file "
                                        "system full).",
                                        &m->p_full);
    err = err ? err
              : ep_metrics_histogram_simple(r, "edgeplane_broker_persist_commit_seconds",
                                            "Time from a QoS 1/2 PUBLISH to all its records on "
                                            "disk (fdatasync in sync mode, write() otherwise).",
                                            NULL, 0, &m->p_commit);
    if (err == EP_EOK)
        bk_persist_set_histogram(b, m->p_commit);
    return err;
}

static ep_err reg(ep_metrics *r, ep_metric_type t, const char *name, const char *help,
                  const char *labels, ep_metric **out)
{
    ep_metric_desc d = {.type = t, .name = name, .help = help, .labels = labels};
    return ep_metrics_register(r, &d, out);
}

/* The families of the callout metrics (labels: chain, and result). */
typedef struct callout_families {
    ep_metric *requests, *results, *timeouts, *rejected, *pending, *seconds;
} callout_families;

static ep_err callout_families_init(ep_metrics *r, callout_families *f)
{
    ep_err err =
        reg(r, EP_METRIC_COUNTER, "edgeplane_broker_auth_callout_requests_total",
            "Custom authentication requests queued for the server.", "chain", &f->requests);
    err = err ? err
              : reg(r, EP_METRIC_COUNTER, "edgeplane_broker_auth_callout_results_total",
                    "Custom authentication verdicts: allowed, denied, unavailable (server not "
                    "reached, 5xx or timeout: the chain goes on).",
                    "chain,result", &f->results);
    err = err ? err
              : reg(r, EP_METRIC_COUNTER, "edgeplane_broker_auth_callout_timeouts_total",
                    "Callouts without an answer within the timeout (part of unavailable).", "chain",
                    &f->timeouts);
    err = err ? err
              : reg(r, EP_METRIC_COUNTER, "edgeplane_broker_auth_callout_rejected_total",
                    "Callouts refused because max_pending were already queued or running "
                    "(client answered 'server busy').",
                    "chain", &f->rejected);
    err = err ? err
              : reg(r, EP_METRIC_GAUGE, "edgeplane_broker_auth_callout_pending",
                    "Callouts queued or running now.", "chain", &f->pending);
    err = err ? err
              : reg(r, EP_METRIC_HISTOGRAM, "edgeplane_broker_auth_callout_duration_seconds",
                    "Time from queueing a callout to its verdict (queueing included).", "chain",
                    &f->seconds);
    return err;
}

static ep_err callout_series(ep_broker *b, const callout_families *f, int i)
{
    bk_metrics *m = b->metrics;
    const char *chain = b->cfg.authn[i].name;
    ep_histogram *h = NULL;
    ep_err err = ep_metric_counter(f->requests, EP_LABELS(chain), &m->co[i].requests);
    err = err ? err : ep_metric_counter(f->results, EP_LABELS(chain, "allowed"), &m->co[i].allowed);
    err = err ? err : ep_metric_counter(f->results, EP_LABELS(chain, "denied"), &m->co[i].denied);
    err =
        err ? err
            : ep_metric_counter(f->results, EP_LABELS(chain, "unavailable"), &m->co[i].unavailable);
    err = err ? err : ep_metric_counter(f->timeouts, EP_LABELS(chain), &m->co[i].timeouts);
    err = err ? err : ep_metric_counter(f->rejected, EP_LABELS(chain), &m->co[i].rejected);
    err = err ? err : ep_metric_gauge(f->pending, EP_LABELS(chain), &m->co[i].pending);
    err = err ? err : ep_metric_histogram(f->seconds, EP_LABELS(chain), &h);
    if (err == EP_EOK)
        ep_callout_set_histogram(b->authn_rt[i].callout, h);
    return err;
}

/* Only when some chain has a custom method (its callout pool exists). */
static ep_err callout_metrics_init(ep_broker *b, ep_metrics *r)
{
    callout_families f;
    bool any = false;
    for (int i = 0; i < b->cfg.n_authn; i++)
        any = any || b->authn_rt[i].callout != NULL;
    if (!any)
        return EP_EOK;
    ep_err err = callout_families_init(r, &f);
    for (int i = 0; i < b->cfg.n_authn && err == EP_EOK; i++)
        if (b->authn_rt[i].callout)
            err = callout_series(b, &f, i);
    return err;
}

ep_err bk_metrics_init(ep_broker *b)
{
    ep_metrics *r = ep_metrics_default();
    bk_metrics *m = calloc(1, sizeof(*m));
    ep_metric *f;
    ep_err err = EP_EOK;
    if (m == NULL)
        return EP_ENOMEM;
    b->metrics = m;
    err = err ? err
              : ep_metrics_gauge_simple(r, "edgeplane_broker_connections",
                                        "Client connections open now.", &m->connections);
    err = err ? err
              : ep_metrics_gauge_simple(r, "edgeplane_broker_sessions",
                                        "Sessions, connected or kept for a disconnected client.",
                                        &m->sessions);
    err = err ? err
              : ep_metrics_gauge_simple(r, "edgeplane_broker_subscriptions",
                                        "Subscriptions in the topic tree.", &m->subscriptions);
    err = err ? err
              : ep_metrics_gauge_simple(r, "edgeplane_broker_retained_messages",
                                        "Retained messages stored.", &m->retained);
    err = err ? err
              : ep_metrics_gauge_simple(r, "edgeplane_broker_queued_messages",
                                        "Messages waiting in session queues (all sessions).",
                                        &m->queued);
    if (err == EP_EOK && (err = reg(r, EP_METRIC_COUNTER, "edgeplane_broker_messages_total",
                                    "PUBLISH packets received (in) and sent (out), by QoS.",
                                    "direction,qos", &f)) == EP_EOK) {
        static const char *const dir[2] = {"in", "out"}, *const qos[3] = {"0", "1", "2"};
        for (int d = 0; d < 2 && !err; d++)
            for (int q = 0; q < 3 && !err; q++)
                err = ep_metric_counter(f, EP_LABELS(dir[d], qos[q]), &m->msgs[d][q]);
    }
    if (err == EP_EOK && (err = reg(r, EP_METRIC_COUNTER, "edgeplane_broker_bytes_total",
                                    "Bytes received (in) and sent (out) on client connections.",
                                    "direction", &f)) == EP_EOK) {
        err = ep_metric_counter(f, EP_LABELS("in"), &m->bytes[0]);
        err = err ? err : ep_metric_counter(f, EP_LABELS("out"), &m->bytes[1]);
    }
    if (err == EP_EOK &&
        (err = reg(r, EP_METRIC_COUNTER, "edgeplane_broker_dropped_total",
                   "Deliveries dropped, by reason (docs/broker.md).", "reason", &f)) == EP_EOK)
        for (int i = 0; i < BK_DROP__COUNT && !err; i++)
            err = ep_metric_counter(f, EP_LABELS(drop_reason[i]), &m->dropped[i]);
    err =
        err ? err
            : ep_metrics_counter_simple(r, "edgeplane_broker_auth_failures_total",
                                        "Failed authentications (all methods).", &m->auth_failures);
    err = err ? err
              : ep_metrics_counter_simple(r, "edgeplane_broker_authz_denied_total",
                                          "Requests denied by authorization.", &m->authz_denied);
    if (err == EP_EOK && b->cfg.persist.data_dir[0])
        err = persist_metrics_init(b, r, m);
    err = err ? err : callout_metrics_init(b, r);
    err = err ? err : ep_metrics_collector_add(r, collect, b, &m->collector);
    err = err ? err : ep_metrics_check_add(r, "broker_listeners", NULL, NULL, &m->ready);
    return err;
}

void bk_metrics_ready(ep_broker *b, bool ready)
{
    if (b->metrics && b->metrics->ready)
        ep_metrics_check_set(b->metrics->ready, ready, ready ? NULL : "broker stopping");
}

void bk_metrics_fini(ep_broker *b)
{
    bk_metrics *m = b->metrics;
    if (m == NULL)
        return;
    if (m->collector)
        ep_metrics_collector_remove(ep_metrics_default(), m->collector);
    bk_persist_set_histogram(b, NULL);
    for (int i = 0; i < b->cfg.n_authn; i++)
        if (b->authn_rt[i].callout)
            ep_callout_set_histogram(b->authn_rt[i].callout, NULL);
    if (m->ready)
        ep_metrics_check_remove(ep_metrics_default(), m->ready);
    free(m);
    b->metrics = NULL;
}
