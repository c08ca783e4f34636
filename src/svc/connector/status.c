/*
 * status.c - per-asset health, published as retained messages on
 * $edgeplane/status/assets/<name> (read by `edgeplane get assets`) and
 * kept as metrics (edgeplane_connector_*{asset="..."}, plus the broker
 * connection and offline buffer per connector), and the readiness check
 * connector_broker:<client id> (connected to the broker).
 *
 * Counters are updated where things happen (lock-free); everything read
 * from the loop thread's state (connected, state, times, reconnects, buffer)
 * is copied into gauges every second, so a scrape on the HTTP thread never
 * touches the connector's objects.
 *
 * A state change (connected, error, resource refused) is published within
 * a second; counters alone at most every status_interval_ms. After the
 * broker lost its retained messages (restart, new session) everything is
 * published again. A deleted asset's status is cleared (empty retained
 * message).
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "svc/connector/conn_int.h"

const char *ep_conn__asset_state_name(conn_asset_state st)
{
    switch (st) {
    case ASSET_INVALID:
        return "invalid";
    case ASSET_DISABLED:
        return "disabled";
    case ASSET_NO_PROFILE:
        return "no-endpoint";
    case ASSET_CONNECTING:
        return "connecting";
    case ASSET_SETUP:
        return "starting";
    case ASSET_RUNNING:
        return "running";
    case ASSET_RECONNECTING:
        return "reconnecting";
    case ASSET_ERROR:
        return "error";
    }
    return "?";
}

void ep_conn__status_mark(conn_asset *a) { a->dirty = true; }

/* Metric families of an asset; registering again returns the same family,
 * so every asset (and every connector in the process) shares them. */
enum {
    FAM_VALUES,
    FAM_MESSAGES,
    FAM_EVENTS,
    FAM_DROPPED,
    FAM_NOTIFICATIONS,
    FAM_RECONNECTS,
    FAM_LOST,
    FAM_CONNECTED,
    FAM_LAST_VALUE,
    FAM_ERROR_TIME,
    FAM_STATE,
    FAM__COUNT
};

static const struct {
    const char *name, *help, *labels;
    ep_metric_type type;
} fam[FAM__COUNT] = {
    [FAM_VALUES] = {"edgeplane_connector_values_total",
                    "Data values published (one per data change received), per asset.", "asset",
                    EP_METRIC_COUNTER},
    [FAM_MESSAGES] = {"edgeplane_connector_messages_total",
                      "Dataset and event messages published, per asset.", "asset",
                      EP_METRIC_COUNTER},
    [FAM_EVENTS] = {"edgeplane_connector_events_total", "OPC UA events published, per asset.",
                    "asset", EP_METRIC_COUNTER},
    [FAM_DROPPED] = {"edgeplane_connector_dropped_total",
                     "Messages dropped by the MQTT client (offline buffer full, refused), "
                     "per asset.",
                     "asset", EP_METRIC_COUNTER},
    [FAM_NOTIFICATIONS] = {"edgeplane_connector_notifications_total",
                           "OPC UA notification messages received for the asset's dataset "
                           "subscriptions.",
                           "asset", EP_METRIC_COUNTER},
    [FAM_RECONNECTS] = {"edgeplane_connector_reconnects_total",
                        "Times the asset's OPC UA session was lost while running.", "asset",
                        EP_METRIC_COUNTER},
    [FAM_LOST] = {"edgeplane_connector_lost_total",
                  "Notification messages the server no longer held after a reconnect.", "asset",
                  EP_METRIC_COUNTER},
    [FAM_CONNECTED] = {"edgeplane_connector_connected",
                       "1 when the asset's OPC UA session is up and its subscriptions are "
                       "running.",
                       "asset", EP_METRIC_GAUGE},
    [FAM_LAST_VALUE] = {"edgeplane_connector_last_value_timestamp_seconds",
                        "Unix time of the asset's last value or event (0: none yet).", "asset",
                        EP_METRIC_GAUGE},
    [FAM_ERROR_TIME] = {"edgeplane_connector_last_error_timestamp_seconds",
                        "Unix time the asset's current lastError (status message) first "
                        "appeared (0: none).",
                        "asset", EP_METRIC_GAUGE},
    [FAM_STATE] = {"edgeplane_connector_state",
                   "1 on the series of the asset's state (docs/connector.md), 0 on the others.",
                   "asset,state", EP_METRIC_GAUGE},
};

void ep_conn__status_metrics(conn_asset *a)
{
    ep_metrics *reg = ep_metrics_default();
    ep_metric *m[FAM__COUNT] = {0};
    for (size_t i = 0; i < FAM__COUNT; i++) {
        ep_metric_desc d = {
            .type = fam[i].type, .name = fam[i].name, .help = fam[i].help, .labels = fam[i].labels};
        if (ep_metrics_register(reg, &d, &m[i]) != EP_EOK)
            return;
    }
    const char *const lv[] = {a->name};
    ep_metric_counter(m[FAM_VALUES], lv, &a->m_values);
    ep_metric_counter(m[FAM_MESSAGES], lv, &a->m_messages);
    ep_metric_counter(m[FAM_EVENTS], lv, &a->m_events);
    ep_metric_counter(m[FAM_DROPPED], lv, &a->m_dropped);
    ep_metric_counter(m[FAM_NOTIFICATIONS], lv, &a->m_notifications);
    ep_metric_counter(m[FAM_RECONNECTS], lv, &a->m_reconnects);
    ep_metric_counter(m[FAM_LOST], lv, &a->m_lost);
    ep_metric_gauge(m[FAM_CONNECTED], lv, &a->m_connected);
    ep_metric_gauge(m[FAM_LAST_VALUE], lv, &a->m_last_value);
    ep_metric_gauge(m[FAM_ERROR_TIME], lv, &a->m_error_time);
    for (int st = 0; st <= (int)ASSET_ERROR; st++) {
        const char *const sv[] = {a->name, ep_conn__asset_state_name((conn_asset_state)st)};
        ep_metric_gauge(m[FAM_STATE], sv, &a->m_state[st]);
    }
}

/* the asset's most important problem: a refused resource, then runtime */
static const char *asset_error(const conn_asset *a)
{
    const char *err = a->res_error ? a->res_error : a->error[0] ? a->error : NULL;
    if (err == NULL && a->sess && a->sess->error[0] && a->state != ASSET_RUNNING)
        err = a->sess->error;
    return err;
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static void gauge_set(ep_gauge *g, double v)
{
    if (g)
        ep_gauge_set(g, v);
}

/* Copies the loop thread's health into the asset's metrics: the scrape
 * runs on another thread and must not read the asset itself. */
static void metrics_sync(conn_asset *a)
{
    if (a->m_reconnects)
        ep_counter_set(a->m_reconnects, (double)a->reconnects);
    if (a->m_lost)
        ep_counter_set(a->m_lost, (double)a->lost);
    gauge_set(a->m_connected, a->state == ASSET_RUNNING ? 1.0 : 0.0);
    gauge_set(a->m_last_value, (double)a->last_value_ms / 1000.0);
    const char *err = asset_error(a);
    uint64_t h = err ? str_hash(err) | 1 : 0;
    if (h != a->error_hash) {
        a->error_hash = h;
        gauge_set(a->m_error_time, h ? (double)ep_clock_wall_ms() / 1000.0 : 0.0);
    }
    for (int st = 0; st <= (int)ASSET_ERROR; st++)
        gauge_set(a->m_state[st], st == (int)a->state ? 1.0 : 0.0);
}

void ep_conn__status_metrics_sync(ep_connector *cn)
{
    for (conn_asset *a = cn->assets; a; a = a->next)
        metrics_sync(a);
    if (cn->mq) {
        ep_mqttc_stats st;
        ep_mqttc_stats_get(cn->mq, &st);
        gauge_set(cn->m_buf_msgs, (double)st.queued);
        gauge_set(cn->m_buf_bytes, (double)st.queued_bytes);
    }
}

void ep_conn__status_metrics_gone(conn_asset *a)
{
    /* series cannot be removed from the registry: a deleted asset reads as
     * not connected and in no state; its counters keep their totals */
    gauge_set(a->m_connected, 0.0);
    for (int st = 0; st <= (int)ASSET_ERROR; st++)
        gauge_set(a->m_state[st], 0.0);
}

/* Connector-wide families, labelled with the MQTT client id so that two
 * connectors in one process (tests) keep apart. */
static void connector_metrics(ep_connector *cn)
{
    static const struct {
        const char *name, *help;
    } g[] = {
        {"edgeplane_connector_broker_connected", "1 while the connector's MQTT session is up."},
        {"edgeplane_connector_buffer_messages",
         "Messages waiting in the offline buffer (sampled every second)."},
        {"edgeplane_connector_buffer_bytes",
         "Bytes accounted to the offline buffer (sampled every second)."},
        {"edgeplane_connector_buffer_limit_messages", "--buffer-messages: the buffer's bound."},
        {"edgeplane_connector_buffer_limit_bytes", "--buffer-mb in bytes: the buffer's bound."},
    };
    ep_gauge **out[] = {&cn->m_broker_connected, &cn->m_buf_msgs, &cn->m_buf_bytes,
                        &cn->m_buf_limit_msgs, &cn->m_buf_limit_bytes};
    const char *const lv[] = {cn->client_id};
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
        ep_metric_desc d = {
            .type = EP_METRIC_GAUGE, .name = g[i].name, .help = g[i].help, .labels = "connector"};
        ep_metric *m;
        if (ep_metrics_register(ep_metrics_default(), &d, &m) != EP_EOK ||
            ep_metric_gauge(m, lv, out[i]) != EP_EOK)
            *out[i] = NULL;
    }
    gauge_set(cn->m_buf_limit_msgs, (double)cn->o.buffer_messages);
    gauge_set(cn->m_buf_limit_bytes, (double)cn->o.buffer_bytes);
}

void ep_conn__status_init(ep_connector *cn)
{
    char name[300];
    connector_metrics(cn);
    snprintf(name, sizeof(name), "connector_broker:%.256s", cn->client_id);
    if (ep_metrics_check_add(ep_metrics_default(), name, NULL, NULL, &cn->ready) != EP_EOK)
        EP_LOG_WARN(CONN_LOG, "no readiness check %s (name taken by another connector)", name);
    ep_conn__status_ready(cn, false);
}

void ep_conn__status_ready(ep_connector *cn, bool connected)
{
    gauge_set(cn->m_broker_connected, connected ? 1.0 : 0.0);
    if (cn->ready)
        ep_metrics_check_set(cn->ready, connected,
                             connected ? NULL : "not connected to the MQTT broker");
}

void ep_conn__status_fini(ep_connector *cn)
{
    gauge_set(cn->m_broker_connected, 0.0);
    ep_metrics_check_remove(ep_metrics_default(), cn->ready);
    cn->ready = NULL;
}

static void put_kv_str(ep_buf *b, const char *k, const char *v, bool comma)
{
    if (comma)
        ep_buf_append(b, ",", 1);
    ep_conn__json_cstr(b, k);
    ep_buf_append(b, ":", 1);
    if (v)
        ep_conn__json_cstr(b, v);
    else
        ep_buf_append(b, "null", 4);
}

static void put_kv_u64(ep_buf *b, const char *k, uint64_t v)
{
    char t[64];
    int n = snprintf(t, sizeof(t), ",\"%s\":%llu", k, (unsigned long long)v);
    ep_buf_append(b, t, (size_t)n);
}

static void publish_status(ep_connector *cn, conn_asset *a)
{
    ep_buf b;
    ep_buf_init(&b, 0);
    const ep_conn_asset *def = a->res ? &a->res->u.asset : NULL;
    bool connected = a->state == ASSET_RUNNING;
    ep_buf_append(&b, "{", 1);
    put_kv_str(&b, "name", a->name, false);
    put_kv_str(&b, "state", ep_conn__asset_state_name(a->state), true);
    ep_buf_append(&b, connected ? ",\"connected\":true" : ",\"connected\":false",
                  connected ? 17 : 18);
    put_kv_str(&b, "endpointProfile", def ? def->profile : NULL, true);
    conn_profile *pf = def ? ep_conn__profile_find(cn, def->profile) : NULL;
    put_kv_str(&b, "targetAddress", pf && pf->res ? pf->res->u.profile.target_address : NULL, true);
    put_kv_u64(&b, "resourceGeneration", a->generation);
    char t[32];
    if (a->last_value_ms) {
        ep_conn__datetime_text(ep_ua_datetime_from_unix_ms((int64_t)a->last_value_ms), t);
        put_kv_str(&b, "lastValueTime", t, true);
    } else {
        put_kv_str(&b, "lastValueTime", NULL, true);
    }
    put_kv_str(&b, "lastError", asset_error(a), true);
    put_kv_str(&b, "resourceError", a->res_error, true);
    size_t npoints = 0;
    if (def)
        for (size_t i = 0; i < def->ndatasets; i++)
            npoints += def->datasets[i].npoints;
    put_kv_u64(&b, "datasets", def ? def->ndatasets : 0);
    put_kv_u64(&b, "dataPoints", npoints);
    put_kv_u64(&b, "badDataPoints", a->bad_points);
    put_kv_u64(&b, "events", def ? def->nevents : 0);
    ep_buf_append(&b, ",\"counters\":{", 13);
    char c[512];
    int n = snprintf(
        c, sizeof(c),
        "\"values\":%llu,\"messages\":%llu,\"events\":%llu,\"dropped\":%llu,"
        "\"lost\":%llu,\"reconnects\":%llu}",
        (unsigned long long)atomic_load(&a->values), (unsigned long long)atomic_load(&a->messages),
        (unsigned long long)atomic_load(&a->events), (unsigned long long)atomic_load(&a->dropped),
        (unsigned long long)a->lost, (unsigned long long)a->reconnects);
    ep_buf_append(&b, c, (size_t)n);
    put_kv_str(&b, "connector", cn->client_id, true);
    ep_conn__now_text(t);
    put_kv_str(&b, "time", t, true);
    ep_buf_append(&b, "}", 1);
    if (ep_conn__json_ok(&b)) {
        char topic[256];
        snprintf(topic, sizeof(topic), "%s/%s", EP_CONN_TOPIC_STATUS_ASSETS, a->name);
        ep_conn__publish(cn, NULL, topic, ep_buf_head(&b), ep_buf_used(&b), 1, true, 0, NULL, 0);
    }
    ep_buf_fini(&b);
    metrics_sync(a);
}

void ep_conn__status_tick(ep_connector *cn, bool force)
{
    ep_conn__status_metrics_sync(cn);
    if (cn->mq == NULL)
        return;
    uint64_t now = ep_clock_mono_ms();
    for (conn_asset *a = cn->assets; a; a = a->next) {
        uint64_t v = atomic_load(&a->values) + atomic_load(&a->events);
        bool counters =
            v != a->status_values && now - a->status_sent_ms >= cn->o.status_interval_ms;
        if (!force && !a->dirty && !counters)
            continue;
        a->dirty = false;
        a->status_values = v;
        a->status_sent_ms = now;
        publish_status(cn, a);
    }
    if (force)
        for (conn_profile *p = cn->profiles; p; p = p->next)
            ep_conn__status_profile(cn, p, false);
}

void ep_conn__status_clear(ep_connector *cn, const char *name)
{
    char topic[256];
    snprintf(topic, sizeof(topic), "%s/%s", EP_CONN_TOPIC_STATUS_ASSETS, name);
    ep_conn__publish(cn, NULL, topic, "", 0, 1, true, 0, NULL, 0);
}

void ep_conn__status_profile(ep_connector *cn, const conn_profile *p, bool deleted)
{
    char topic[256];
    snprintf(topic, sizeof(topic), "%s/%s", EP_CONN_TOPIC_STATUS_PROFILES, p->name);
    if (deleted) {
        ep_conn__publish(cn, NULL, topic, "", 0, 1, true, 0, NULL, 0);
        return;
    }
    ep_buf b;
    ep_buf_init(&b, 0);
    ep_buf_append(&b, "{", 1);
    put_kv_str(&b, "name", p->name, false);
    ep_buf_append(&b, p->res ? ",\"valid\":true" : ",\"valid\":false", p->res ? 13 : 14);
    put_kv_str(&b, "targetAddress", p->res ? p->res->u.profile.target_address : NULL, true);
    put_kv_str(&b, "lastError", p->error, true);
    put_kv_u64(&b, "resourceGeneration", p->generation);
    put_kv_str(&b, "connector", cn->client_id, true);
    ep_buf_append(&b, "}", 1);
    if (ep_conn__json_ok(&b))
        ep_conn__publish(cn, NULL, topic, ep_buf_head(&b), ep_buf_used(&b), 1, true, 0, NULL, 0);
    ep_buf_fini(&b);
}
