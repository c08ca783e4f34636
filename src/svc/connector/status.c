/*
 * status.c - per-asset health, published as retained messages on
 * $edgeplane/status/assets/<name> (read by `edgeplane get assets`) and
 * kept as metrics (edgeplane_connector_*{asset="..."}).
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

void ep_conn__status_metrics(conn_asset *a)
{
    ep_metrics *reg = ep_metrics_default();
    static const struct {
        const char *name, *help;
        ep_metric_type type;
    } fam[] = {
        {"edgeplane_connector_values_total", "Data values published, per asset.",
         EP_METRIC_COUNTER},
        {"edgeplane_connector_messages_total", "Dataset and event messages published, per asset.",
         EP_METRIC_COUNTER},
        {"edgeplane_connector_events_total", "OPC UA events published, per asset.",
         EP_METRIC_COUNTER},
        {"edgeplane_connector_dropped_total",
         "Messages dropped by the MQTT client (offline buffer full, refused), per asset.",
         EP_METRIC_COUNTER},
        {"edgeplane_connector_connected",
         "1 when the asset's OPC UA session is up and its "
         "subscriptions are running.",
         EP_METRIC_GAUGE},
    };
    ep_metric *m[5] = {0};
    for (size_t i = 0; i < 5; i++) {
        ep_metric_desc d = {
            .type = fam[i].type, .name = fam[i].name, .help = fam[i].help, .labels = "asset"};
        if (ep_metrics_register(reg, &d, &m[i]) != EP_EOK)
            return;
    }
    const char *const lv[] = {a->name};
    ep_metric_counter(m[0], lv, &a->m_values);
    ep_metric_counter(m[1], lv, &a->m_messages);
    ep_metric_counter(m[2], lv, &a->m_events);
    ep_metric_counter(m[3], lv, &a->m_dropped);
    ep_metric_gauge(m[4], lv, &a->m_connected);
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
    /* the most important problem first: a refused resource, then runtime */
    const char *err = a->res_error ? a->res_error : a->error[0] ? a->error : NULL;
    if (err == NULL && a->sess && a->sess->error[0] && !connected)
        err = a->sess->error;
    put_kv_str(&b, "lastError", err, true);
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
    if (a->m_connected)
        ep_gauge_set(a->m_connected, connected ? 1.0 : 0.0);
}

void ep_conn__status_tick(ep_connector *cn, bool force)
{
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
