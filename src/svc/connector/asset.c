/*
 * asset.c - an asset at run time.
 *
 * Start: settings are resolved (data point, dataset, asset defaults, then
 * the profile's defaults), NodeIds parsed, and the asset attaches to its
 * session. When the session is up, setup runs:
 *
 *   1. browse paths (data points whose dataSource starts with '/') are
 *      resolved with TranslateBrowsePathsToNodeIds, 1000 per request, from
 *      the dataset's dataSource node (default Objects);
 *   2. per dataset, one subscription per maxItems (<= 1000) data points,
 *      each created, then its monitored items; per event, one subscription
 *      with one event item and its select clauses.
 *
 * A data point that cannot be monitored (unknown node, path not found) is
 * reported in the asset's status and the others flow. If a whole request
 * fails (connection lost during setup) the partial setup is removed and
 * tried again a second later. Once set up, the subscriptions live in the
 * OPC UA client, which keeps them across reconnects and republishes what
 * the server still holds, in order, so nothing has to be redone here.
 *
 * Data path: every data change is appended to the dataset's open frame
 * ("name":{...}); the frame is published when the notification message
 * ends (one message per publishing cycle), or earlier when the same point
 * changes twice in one message (queueSize > 1), so that every value the
 * server sent is published, in order. Every keyFrameCount cycles a key
 * frame with the last value of every point is sent instead.
 *
 * Callbacks from the OPC UA client that belong to setup carry the asset's
 * id and epoch: an asset stopped or restarted meanwhile ignores them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/opcua/gen/attributes.h"
#include "codec/opcua/gen/nodeids.h"
#include "core/log.h"
#include "svc/connector/conn_int.h"

#define FRAME_MAX_BYTES ((size_t)1 << 20)
#define TRANSLATE_BATCH 1000

static const char *const default_select[] = {"EventId", "EventType",   "SourceNode", "SourceName",
                                             "Time",    "ReceiveTime", "Message",    "Severity"};
#define NDEFAULT_SELECT (sizeof(default_select) / sizeof(default_select[0]))

void ep_conn__asset_set_error(conn_asset *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->error, sizeof(a->error), fmt, ap);
    va_end(ap);
    ep_conn__status_mark(a);
}

static void set_state(conn_asset *a, conn_asset_state st)
{
    if (a->state == st)
        return;
    bool was = a->state == ASSET_RUNNING;
    a->state = st;
    bool is = st == ASSET_RUNNING;
    if (was != is) {
        if (is)
            atomic_fetch_add_explicit(&a->cn->n_connected, 1, memory_order_relaxed);
        else
            atomic_fetch_sub_explicit(&a->cn->n_connected, 1, memory_order_relaxed);
    }
    ep_conn__status_mark(a);
}

static int64_t pick(int64_t a, int64_t b, int64_t c) { return a >= 0 ? a : b >= 0 ? b : c; }

/* ------------------------------------------------------------------ */
/* building and freeing the run-time state                             */

/* Builds every point's "name": key into one block per dataset: one
 * allocation instead of one (of at least a buffer's 256 bytes) per point. */
static bool keys_build(conn_ds *ds, const ep_conn_dataset *d)
{
    ep_buf b;
    ep_buf_init(&b, 0);
    for (size_t j = 0; j < d->npoints; j++) {
        size_t off = ep_buf_used(&b);
        ep_conn__json_cstr(&b, d->points[j].name);
        ep_buf_append(&b, ":", 1);
        if (!ep_conn__json_ok(&b) || ep_buf_used(&b) > UINT32_MAX)
            break;
        ds->pts[j].key_off = (uint32_t)off;
        ds->pts[j].key_len = (uint32_t)(ep_buf_used(&b) - off);
    }
    if (!ep_conn__json_ok(&b) || ep_buf_used(&b) > UINT32_MAX || b.data == NULL) {
        ep_buf_fini(&b);
        return d->npoints == 0;
    }
    /* off is 0: the buffer never consumed; give back the growth slack */
    char *keys = realloc(b.data, ep_buf_used(&b));
    ds->keys = keys ? keys : (char *)b.data;
    return true;
}

/* A dataset's frame is open from the first value of a notification message
 * to its end, and the OPC UA client delivers one message at a time, so the
 * datasets pass one buffer around instead of each keeping its own (at
 * 100 000 points those held ~10 MB of frames that were empty nearly all
 * the time). */
static void frame_release(ep_connector *cn, conn_ds *ds)
{
    ep_buf *f = &ds->frame;
    ep_buf_clear(f);
    f->limit = 0;
    if (f->data == NULL)
        return;
    if (f->cap > cn->spare.cap) {
        ep_buf_fini(&cn->spare);
        cn->spare = *f;
    } else {
        ep_buf_fini(f);
    }
    ep_buf_init(f, 0);
}

static void frame_acquire(ep_connector *cn, conn_ds *ds)
{
    if (ds->frame.data != NULL || cn->spare.data == NULL)
        return;
    ds->frame = cn->spare;
    ep_buf_init(&cn->spare, 0);
}

static void rt_free(conn_asset *a)
{
    for (size_t i = 0; i < a->nds; i++) {
        conn_ds *ds = &a->ds[i];
        for (size_t j = 0; j < ds->npoints; j++) {
            conn_point *pt = &ds->pts[j];
            if (ds->last)
                free(ds->last[j].json);
            if (pt->node_owned)
                ep_ua_clear(&pt->node, EP_UA_T(NodeId));
        }
        free(ds->last);
        free(ds->pts);
        free(ds->keys);
        free(ds->subs);
        free(ds->pending);
        free(ds->topic);
        frame_release(a->cn, ds);
    }
    free(a->ds);
    for (size_t i = 0; i < a->nev; i++) {
        free(a->ev[i].topic);
        free(a->ev[i].select);
        free(a->ev[i].fields);
    }
    free(a->ev);
    a->ds = NULL;
    a->ev = NULL;
    a->nds = a->nev = 0;
}

static char *default_topic(const char *kind, const char *asset, const char *name)
{
    size_t n = strlen(kind) + strlen(asset) + strlen(name) + 16;
    char *t = malloc(n);
    if (t == NULL)
        return NULL;
    snprintf(t, n, "edgeplane/%s/%s/%s", kind, asset, name);
    /* names may hold characters that are not valid in topics */
    for (char *p = t; *p; p++)
        if (*p == '+' || *p == '#')
            *p = '_';
    return t;
}

static void resolve_dest(const ep_conn_dest *d, const ep_conn_dest *def, char **topic, uint8_t *qos,
                         bool *retain, uint32_t *ttl)
{
    *topic = d->topic ? strdup(d->topic) : def->topic ? strdup(def->topic) : NULL;
    *qos = d->has_qos ? d->qos : def->has_qos ? def->qos : 1;
    *retain = d->has_retain ? d->retain : def->has_retain ? def->retain : false;
    *ttl = d->ttl_s ? d->ttl_s : def->ttl_s;
}

static bool rt_build(conn_asset *a, const ep_conn_profile *p)
{
    const ep_conn_asset *def = &a->res->u.asset;
    a->bad_points = 0;
    a->error[0] = 0;
    if (def->ndatasets) {
        a->ds = calloc(def->ndatasets, sizeof(*a->ds));
        if (a->ds == NULL)
            return false;
    }
    if (def->nevents) {
        a->ev = calloc(def->nevents, sizeof(*a->ev));
        if (a->ev == NULL)
            return false;
    }
    char first_bad[256] = "";
    for (size_t i = 0; i < def->ndatasets; i++) {
        const ep_conn_dataset *d = &def->datasets[i];
        conn_ds *ds = &a->ds[a->nds++];
        ds->a = a;
        ds->index = i;
        ds->def = d;
        ep_buf_init(&ds->frame, 0);
        resolve_dest(&d->dest, &def->default_dest, &ds->topic, &ds->qos, &ds->retain, &ds->ttl_s);
        if (ds->topic == NULL)
            ds->topic = default_topic("data", a->name, d->name);
        ds->publishing_ms = (double)pick(d->cfg.publishing_ms, def->ds_defaults.publishing_ms,
                                         p->defaults.publishing_ms);
        ds->sampling_ms =
            (double)pick(d->cfg.sampling_ms, def->ds_defaults.sampling_ms, p->defaults.sampling_ms);
        ds->queue =
            (uint32_t)pick(d->cfg.queue_size, def->ds_defaults.queue_size, p->defaults.queue_size);
        ds->kfc = pick(d->cfg.key_frame_count, def->ds_defaults.key_frame_count,
                       p->defaults.key_frame_count);
        ds->pts = calloc(d->npoints ? d->npoints : 1, sizeof(*ds->pts));
        ds->pending = calloc(d->npoints ? d->npoints : 1, sizeof(*ds->pending));
        if (ds->kfc > 0)
            ds->last = calloc(d->npoints ? d->npoints : 1, sizeof(*ds->last));
        if (ds->topic == NULL || ds->pts == NULL || ds->pending == NULL ||
            (ds->kfc > 0 && ds->last == NULL))
            return false;
        ds->npoints = d->npoints;
        if (!keys_build(ds, d))
            return false;
        for (size_t j = 0; j < d->npoints; j++) {
            conn_point *pt = &ds->pts[j];
            const char *src = d->points[j].source;
            if (src[0] == '/')
                continue; /* browse path: resolved at setup */
            /* string identifiers point into the resource, which outlives
             * this run-time state */
            if (ep_uac_nodeid_parse(src, &pt->node) != EP_EOK) {
                pt->bad = true;
                a->bad_points++;
                if (!first_bad[0])
                    snprintf(first_bad, sizeof(first_bad),
                             "dataset %s point %s: cannot parse NodeId \"%s\"", d->name,
                             d->points[j].name, src);
                continue;
            }
            pt->has_node = true;
        }
    }
    for (size_t i = 0; i < def->nevents; i++) {
        const ep_conn_event *e = &def->events[i];
        conn_ev *ev = &a->ev[a->nev++];
        ev->a = a;
        ev->index = i;
        ev->def = e;
        ep_conn_dest none;
        memset(&none, 0, sizeof(none));
        resolve_dest(&e->dest, &none, &ev->topic, &ev->qos, &ev->retain, &ev->ttl_s);
        if (ev->topic == NULL)
            ev->topic = default_topic("events", a->name, e->name);
        ev->nselect = e->nselect ? e->nselect : NDEFAULT_SELECT;
        ev->select = calloc(ev->nselect, sizeof(*ev->select));
        ev->fields = calloc(ev->nselect, sizeof(*ev->fields));
        if (ev->topic == NULL || ev->select == NULL || ev->fields == NULL)
            return false;
        for (size_t k = 0; k < ev->nselect; k++) {
            ev->select[k] = e->nselect ? e->select[k].browse_path : default_select[k];
            ev->fields[k] = e->nselect ? e->select[k].field : default_select[k];
        }
    }
    if (first_bad[0])
        snprintf(a->error, sizeof(a->error), "%s", first_bad);
    return true;
}

/* ------------------------------------------------------------------ */
/* publishing                                                          */

/* s2c: serverToConnectorMilliseconds text, or NULL */
static void publish_payload(conn_asset *a, const char *topic, uint8_t qos, bool retain,
                            uint32_t ttl, const ep_buf *payload, const char *type, uint64_t seq,
                            const char *s2c)
{
    ep_connector *cn = a->cn;
    char id[37], tp[56], now[32], seqs[24];
    ep_conn__uuid(id);
    ep_conn__traceparent(tp);
    size_t nl = ep_conn__now_text(now);
    int sl = snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
    const char *src = a->sess ? ep_conn__session_source(a->sess) : "";
    const ep_conn_asset *def = &a->res->u.asset;
    ep_mqtt_user_prop up[11];
    size_t n = 0;
#define UP(k, v, l) up[n++] = (ep_mqtt_user_prop){EP_MQTT_STR(k), ep_mqtt_slice_make((v), (l))}
    UP("specversion", "1.0", 3);
    UP("type", type, strlen(type));
    UP("source", src, strlen(src));
    UP("id", id, 36);
    UP("time", now, nl);
    UP("subject", a->name, strlen(a->name));
    UP("sequence", seqs, (size_t)sl);
    UP("datacontenttype", "application/json", 16);
    if (s2c)
        UP("serverToConnectorMilliseconds", s2c, strlen(s2c));
    UP("traceparent", tp, 55);
    if (def->external_id)
        UP("externalAssetId", def->external_id, strlen(def->external_id));
#undef UP
    ep_err err = ep_conn__publish(cn, a, topic, ep_buf_head(payload), ep_buf_used(payload), qos,
                                  retain, ttl, up, n);
    if (err != EP_EOK && err != EP_EFULL) {
        atomic_fetch_add_explicit(&a->dropped, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&cn->tot_dropped, 1, memory_order_relaxed);
        if (a->m_dropped)
            ep_counter_inc(a->m_dropped);
    }
    atomic_fetch_add_explicit(&a->messages, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&cn->tot_messages, 1, memory_order_relaxed);
    if (a->m_messages)
        ep_counter_inc(a->m_messages);
}

static void ds_flush(conn_ds *ds, bool key)
{
    conn_asset *a = ds->a;
    if (!key && ds->nframe == 0)
        return;
    ep_buf *b = &a->cn->scratch;
    ep_buf_clear(b);
    b->limit = 0;
    ep_buf_append(b, "{", 1);
    if (key) {
        bool first = true;
        for (size_t i = 0; ds->last && i < ds->npoints; i++) {
            conn_point *pt = &ds->pts[i];
            if (ds->last[i].json == NULL)
                continue;
            if (!first)
                ep_buf_append(b, ",", 1);
            first = false;
            ep_buf_append(b, ds->keys + pt->key_off, pt->key_len);
            ep_buf_append(b, ds->last[i].json, ds->last[i].len);
        }
    } else {
        ep_buf_append(b, ep_buf_head(&ds->frame), ep_buf_used(&ds->frame));
    }
    ep_buf_append(b, "}", 1);
    for (size_t i = 0; i < ds->npending; i++)
        ds->pts[ds->pending[i]].pending = false;
    ds->npending = 0;
    ds->nframe = 0;
    bool ok = ep_conn__json_ok(&ds->frame);
    frame_release(a->cn, ds);
    if (!ok)
        return;
    if (ep_buf_used(b) < 2 || (key && ep_buf_used(b) == 2))
        return;
    /* from the server's publishTime of the notification message to now:
     * the OPC UA link and the connector's share of the latency */
    char s2c[24];
    if (ds->pub_time > EP_UA_DATETIME_UNIX_EPOCH)
        snprintf(s2c, sizeof(s2c), "%lld",
                 (long long)ep_clock_wall_ms() -
                     (long long)((ds->pub_time - EP_UA_DATETIME_UNIX_EPOCH) / 10000));
    publish_payload(a, ds->topic, ds->qos, ds->retain, ds->ttl_s, b,
                    key ? "ua-keyframe" : "ua-deltaframe", ++ds->seq,
                    ds->pub_time > EP_UA_DATETIME_UNIX_EPOCH ? s2c : NULL);
}

static void on_data(ep_uac *c, uint32_t sub_id, uint32_t h, const ep_ua_datavalue *v, void *ud)
{
    (void)c;
    (void)sub_id;
    conn_ds *ds = ud;
    if (h >= ds->npoints)
        return;
    conn_point *pt = &ds->pts[h];
    if (pt->pending || ep_buf_used(&ds->frame) > FRAME_MAX_BYTES)
        ds_flush(ds, false);
    frame_acquire(ds->a->cn, ds);
    ep_buf *f = &ds->frame;
    if (ds->nframe)
        ep_buf_append(f, ",", 1);
    ep_buf_append(f, ds->keys + pt->key_off, pt->key_len);
    size_t start = f->len;
    ep_conn__json_datavalue(f, v);
    if (ds->last && ep_conn__json_ok(f) && f->len - start <= UINT32_MAX) {
        conn_last *l = &ds->last[h];
        uint32_t n = (uint32_t)(f->len - start);
        if (n > l->cap) {
            char *nl = realloc(l->json, n);
            if (nl) {
                l->json = nl;
                l->cap = n;
            }
        }
        if (n <= l->cap) {
            memcpy(l->json, f->data + start, n);
            l->len = n;
        }
    }
    pt->pending = true;
    ds->pending[ds->npending++] = h;
    ds->nframe++;
    conn_asset *a = ds->a;
    atomic_fetch_add_explicit(&a->values, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->cn->tot_values, 1, memory_order_relaxed);
    if (a->m_values)
        ep_counter_inc(a->m_values);
    a->last_value_ms = ep_clock_wall_ms();
}

static void on_message(ep_uac *c, uint32_t sub_id, uint32_t seq, ep_ua_datetime t, void *ud)
{
    (void)c;
    (void)seq;
    conn_ds *ds = ud;
    if (ds->a->m_notifications)
        ep_counter_inc(ds->a->m_notifications);
    bool cycle = ds->nsubs == 0 || ds->subs[0] == sub_id;
    bool key = false;
    if (cycle) {
        ds->cycles++;
        key = ds->kfc > 0 && (ds->cycles - 1) % (uint64_t)ds->kfc == 0;
    }
    ds->pub_time = t;
    if (key && ds->nframe)
        ds_flush(ds, false); /* the changes, then the key frame */
    ds_flush(ds, key);
    ds->pub_time = 0; /* frames cut early do not know it yet */
}

static void on_ds_status(ep_uac *c, uint32_t sub_id, ep_ua_status st, uint32_t lost, void *ud)
{
    (void)c;
    (void)sub_id;
    conn_ds *ds = ud;
    conn_asset *a = ds->a;
    if (lost) {
        a->lost += lost;
        ep_conn__asset_set_error(a,
                                 "dataset %s: %u notification messages lost (the server "
                                 "no longer held them after a reconnect)",
                                 ds->def->name, lost);
    }
    EP_LOG_INFO(CONN_LOG, "asset %s dataset %s: subscription %s", a->name, ds->def->name,
                ep_ua_status_name(st));
}

static void on_event(ep_uac *c, uint32_t sub_id, uint32_t h, size_t n, const ep_ua_variant *fields,
                     void *ud)
{
    (void)c;
    (void)sub_id;
    (void)h;
    conn_ev *ev = ud;
    conn_asset *a = ev->a;
    ep_buf *b = &a->cn->scratch;
    ep_buf_clear(b);
    b->limit = 0;
    ep_buf_append(b, "{", 1);
    for (size_t i = 0; i < n && i < ev->nselect; i++) {
        if (i)
            ep_buf_append(b, ",", 1);
        ep_conn__json_cstr(b, ev->fields[i]);
        ep_buf_append(b, ":", 1);
        ep_conn__json_variant(b, &fields[i]);
    }
    ep_buf_append(b, "}", 1);
    if (!ep_conn__json_ok(b))
        return;
    atomic_fetch_add_explicit(&a->events, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->cn->tot_events, 1, memory_order_relaxed);
    if (a->m_events)
        ep_counter_inc(a->m_events);
    a->last_value_ms = ep_clock_wall_ms();
    publish_payload(a, ev->topic, ev->qos, ev->retain, ev->ttl_s, b, "ua-event", ++ev->seq, NULL);
}

static void on_ev_status(ep_uac *c, uint32_t sub_id, ep_ua_status st, uint32_t lost, void *ud)
{
    (void)c;
    (void)sub_id;
    conn_ev *ev = ud;
    if (lost) {
        ev->a->lost += lost;
        ep_conn__asset_set_error(ev->a, "event %s: %u notification messages lost", ev->def->name,
                                 lost);
    }
    EP_LOG_INFO(CONN_LOG, "asset %s event %s: subscription %s", ev->a->name, ev->def->name,
                ep_ua_status_name(st));
}

/* ------------------------------------------------------------------ */
/* setup                                                               */

typedef struct setup_ctx {
    ep_connector *cn;
    uint64_t id, epoch;
    size_t ds; /* dataset or event index */
    bool event;
    size_t off, n;   /* monitored items: point range [off, off+n) */
    uint32_t *pairs; /* translate: (ds, point) pairs */
    size_t npairs;
} setup_ctx;

static setup_ctx *ctx_new(conn_asset *a)
{
    setup_ctx *x = calloc(1, sizeof(*x));
    if (x) {
        x->cn = a->cn;
        x->id = a->id;
        x->epoch = a->epoch;
        a->setup_pending++;
    }
    return x;
}

/* ctx_asset returns the asset the context belongs to if it still is in
 * the same epoch; frees nothing */
static conn_asset *ctx_asset(setup_ctx *x)
{
    conn_asset *a = ep_conn__asset_by_id(x->cn, x->id);
    return a && a->epoch == x->epoch ? a : NULL;
}

static void setup_subs(conn_asset *a);
static void setup_finish(conn_asset *a);

static void ctx_done(setup_ctx *x, conn_asset *a, bool failed)
{
    free(x->pairs);
    free(x);
    if (a == NULL)
        return;
    if (failed)
        a->setup_failed = true;
    if (a->setup_pending > 0)
        a->setup_pending--;
    if (a->setup_pending == 0)
        setup_finish(a);
}

static void on_retry(ep_timer *t)
{
    conn_asset *a = t->data;
    if (a->sess && a->sess->state == SESS_CONNECTED && !a->setup_done && a->setup_pending == 0)
        ep_conn__asset_session_up(a);
}

static void teardown_subs(conn_asset *a)
{
    ep_uac *c = a->sess ? a->sess->uac : NULL;
    for (size_t i = 0; i < a->nds; i++) {
        conn_ds *ds = &a->ds[i];
        for (size_t k = 0; k < ds->nsubs; k++)
            if (c)
                ep_uac_sub_delete(c, ds->subs[k], NULL, NULL);
        ds->nsubs = 0;
        for (size_t j = 0; j < ds->npending; j++)
            ds->pts[ds->pending[j]].pending = false;
        ds->npending = ds->nframe = 0;
        frame_release(a->cn, ds);
    }
    for (size_t i = 0; i < a->nev; i++) {
        if (a->ev[i].sub && c)
            ep_uac_sub_delete(c, a->ev[i].sub, NULL, NULL);
        a->ev[i].sub = 0;
    }
}

static void setup_finish(conn_asset *a)
{
    if (!a->setup_failed && !a->setup_done) {
        /* the translate phase finished: create the subscriptions (once) */
        bool subs_started = false;
        for (size_t i = 0; i < a->nds; i++)
            subs_started |= a->ds[i].nsubs > 0;
        for (size_t i = 0; i < a->nev; i++)
            subs_started |= a->ev[i].sub != 0;
        if (!subs_started) {
            a->setup_pending++; /* guard: no nested finish while sending */
            setup_subs(a);
            a->setup_pending--;
            if (a->setup_pending > 0)
                return;
        }
    }
    if (a->setup_failed) {
        teardown_subs(a);
        a->setup_failed = false;
        a->setup_done = false;
        a->epoch++; /* late answers of this attempt are ignored */
        set_state(a,
                  a->sess && a->sess->state == SESS_CONNECTED ? ASSET_ERROR : ASSET_RECONNECTING);
        ep_timer_start(&a->retry, 1000);
        return;
    }
    a->setup_done = true;
    size_t monitored = 0, total = 0;
    for (size_t i = 0; i < a->nds; i++)
        for (size_t j = 0; j < a->ds[i].npoints; j++) {
            total++;
            monitored += !a->ds[i].pts[j].bad;
        }
    a->bad_points = total - monitored;
    EP_LOG_INFO(CONN_LOG, "asset %s: %zu of %zu data points and %zu events monitored", a->name,
                monitored, total, a->nev);
    set_state(a, ASSET_RUNNING);
}

static void point_bad(conn_asset *a, conn_ds *ds, size_t j, const char *why)
{
    if (ds->pts[j].bad)
        return;
    ds->pts[j].bad = true;
    if (!a->error[0] || strncmp(a->error, "connection", 10) == 0)
        snprintf(a->error, sizeof(a->error), "dataset %s point %s (%s): %s", ds->def->name,
                 ds->def->points[j].name, ds->def->points[j].source, why);
    EP_LOG_WARN(CONN_LOG, "asset %s dataset %s point %s (%s): %s", a->name, ds->def->name,
                ds->def->points[j].name, ds->def->points[j].source, why);
    ep_conn__status_mark(a);
}

/* "/2:Plant/2:Oven1/Temp" -> relative path elements (names point into s) */
static ep_err parse_path(const char *s, ep_ua_relative_path_element *el, size_t max, size_t *n)
{
    *n = 0;
    while (*s == '/') {
        s++;
        const char *end = strchr(s, '/');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == 0 || *n >= max)
            return EP_EINVAL;
        ep_ua_relative_path_element *e = &el[(*n)++];
        memset(e, 0, sizeof(*e));
        e->reference_type_id = ep_ua_nodeid_numeric(0, EP_UA_NS0_HierarchicalReferences);
        e->include_subtypes = true;
        const char *colon = memchr(s, ':', len);
        uint32_t ns = 0;
        if (colon) {
            for (const char *p = s; p < colon; p++) {
                if (*p < '0' || *p > '9' || ns > 65535)
                    return EP_EINVAL;
                ns = ns * 10 + (uint32_t)(*p - '0');
            }
            if (colon == s || ns > 65535)
                return EP_EINVAL;
            len -= (size_t)(colon + 1 - s);
            s = colon + 1;
        }
        e->target_name.ns = (uint16_t)ns;
        e->target_name.name.data = (uint8_t *)(uintptr_t)s;
        e->target_name.name.len = len;
        s += len;
    }
    return *s == 0 && *n > 0 ? EP_EOK : EP_EINVAL;
}

static void on_translated(ep_uac *c, ep_err err, ep_ua_status st, const void *resp, void *ud)
{
    (void)c;
    setup_ctx *x = ud;
    conn_asset *a = ctx_asset(x);
    if (a == NULL || err != EP_EOK) {
        if (a)
            ep_conn__asset_set_error(a, "resolving browse paths: %s",
                                     st ? ep_ua_status_name(st) : ep_strerror(err));
        ctx_done(x, a, true);
        return;
    }
    const ep_ua_translate_browse_paths_to_node_ids_response *r = resp;
    for (size_t k = 0; k < x->npairs; k++) {
        conn_ds *ds = &a->ds[x->pairs[2 * k]];
        size_t j = x->pairs[2 * k + 1];
        conn_point *pt = &ds->pts[j];
        if (k >= r->results_len) {
            point_bad(a, ds, j, "no result for this browse path");
            continue;
        }
        const ep_ua_browse_path_result *br = &r->results[k];
        if ((br->status_code & 0x80000000u) || br->targets_len == 0) {
            point_bad(
                a, ds, j,
                ep_ua_status_name(br->status_code ? br->status_code : EP_UA_STATUS_BadNoMatch));
            continue;
        }
        if (pt->node_owned)
            ep_ua_clear(&pt->node, EP_UA_T(NodeId));
        pt->has_node = pt->node_owned =
            ep_ua_copy(&br->targets[0].target_id.node_id, &pt->node, EP_UA_T(NodeId)) == EP_EOK;
        if (!pt->has_node)
            point_bad(a, ds, j, "out of memory");
    }
    ctx_done(x, a, false);
}

static bool start_node(const char *text, ep_ua_nodeid *out)
{
    if (text == NULL) {
        *out = ep_ua_nodeid_numeric(0, EP_UA_NS0_ObjectsFolder);
        return true;
    }
    return ep_uac_nodeid_parse(text, out) == EP_EOK;
}

static void send_translate(conn_asset *a, uint32_t *pairs, size_t npairs)
{
    ep_ua_browse_path *paths = calloc(npairs, sizeof(*paths));
    ep_ua_relative_path_element *els = calloc(npairs * 32, sizeof(*els));
    setup_ctx *x = paths && els ? ctx_new(a) : NULL;
    if (x == NULL) {
        free(paths);
        free(els);
        free(pairs);
        a->setup_failed = true;
        return;
    }
    x->pairs = pairs;
    x->npairs = npairs;
    for (size_t k = 0; k < npairs; k++) {
        conn_ds *ds = &a->ds[pairs[2 * k]];
        const ep_conn_point *dp = &ds->def->points[pairs[2 * k + 1]];
        size_t n = 0;
        if (!start_node(ds->def->start_node, &paths[k].starting_node) ||
            parse_path(dp->source, els + k * 32, 32, &n) != EP_EOK) {
            point_bad(a, ds, pairs[2 * k + 1],
                      "cannot parse the browse path (expected /NS:Name/NS:Name...)");
            /* send a path that cannot match, to keep result positions */
            paths[k].starting_node = ep_ua_nodeid_numeric(0, EP_UA_NS0_ObjectsFolder);
            n = 0;
        }
        paths[k].relative_path.elements = n ? els + k * 32 : NULL;
        paths[k].relative_path.elements_len = n;
    }
    ep_err err = ep_uac_translate(a->sess->uac, npairs, paths, on_translated, x);
    free(paths);
    free(els);
    if (err != EP_EOK) {
        ep_conn__asset_set_error(a, "resolving browse paths: %s", ep_strerror(err));
        ctx_done(x, a, true);
    }
}

static void on_items(ep_uac *c, ep_err err, ep_ua_status st, uint32_t sub_id, const void *resp,
                     void *ud)
{
    (void)c;
    (void)sub_id;
    setup_ctx *x = ud;
    conn_asset *a = ctx_asset(x);
    if (a == NULL || err != EP_EOK) {
        if (a)
            ep_conn__asset_set_error(a, "creating monitored items: %s",
                                     st ? ep_ua_status_name(st) : ep_strerror(err));
        ctx_done(x, a, true);
        return;
    }
    const ep_ua_create_monitored_items_response *r = resp;
    if (x->event) {
        conn_ev *ev = &a->ev[x->ds];
        if (r->results_len < 1 || (r->results[0].status_code & 0x80000000u)) {
            ep_ua_status s =
                r->results_len ? r->results[0].status_code : r->response_header.service_result;
            ep_conn__asset_set_error(a, "event %s (%s): %s", ev->def->name, ev->def->notifier,
                                     ep_ua_status_name(s));
        }
        ctx_done(x, a, false);
        return;
    }
    conn_ds *ds = &a->ds[x->ds];
    size_t k = 0;
    for (size_t j = x->off; j < x->off + x->n && j < ds->npoints; j++) {
        if (ds->pts[j].bad || !ds->pts[j].has_node)
            continue;
        if (k < r->results_len && (r->results[k].status_code & 0x80000000u))
            point_bad(a, ds, j, ep_ua_status_name(r->results[k].status_code));
        k++;
    }
    ctx_done(x, a, false);
}

static void on_sub_created(ep_uac *c, ep_err err, ep_ua_status st, uint32_t sub_id,
                           const void *resp, void *ud)
{
    (void)resp;
    setup_ctx *x = ud;
    conn_asset *a = ctx_asset(x);
    if (a == NULL || err != EP_EOK) {
        if (a)
            ep_conn__asset_set_error(a, "creating a subscription: %s",
                                     st ? ep_ua_status_name(st) : ep_strerror(err));
        ctx_done(x, a, true);
        return;
    }
    /* now its monitored items, with the same context */
    ep_uac_mon_item *items = NULL;
    size_t n = 0;
    if (x->event) {
        conn_ev *ev = &a->ev[x->ds];
        items = calloc(1, sizeof(*items));
        if (items && ep_uac_nodeid_parse(ev->def->notifier, &items[0].node) == EP_EOK) {
            items[0].client_handle = 0;
            items[0].attribute_id = EP_UA_ATTR_EventNotifier;
            items[0].queue_size =
                ev->def->cfg.queue_size >= 0 ? (uint32_t)ev->def->cfg.queue_size : 1000;
            items[0].sampling_ms = 0;
            items[0].nselect = ev->nselect;
            items[0].select = ev->select;
            n = 1;
        } else if (items) {
            ep_conn__asset_set_error(a, "event %s: cannot parse eventNotifier \"%s\"",
                                     ev->def->name, ev->def->notifier);
        }
    } else {
        conn_ds *ds = &a->ds[x->ds];
        items = calloc(x->n ? x->n : 1, sizeof(*items));
        for (size_t j = x->off; items && j < x->off + x->n; j++) {
            conn_point *pt = &ds->pts[j];
            if (pt->bad || !pt->has_node)
                continue;
            const ep_conn_point *dp = &ds->def->points[j];
            ep_uac_mon_item *it = &items[n++];
            it->node = pt->node;
            it->client_handle = (uint32_t)j;
            it->sampling_ms =
                dp->cfg.sampling_ms >= 0 ? (double)dp->cfg.sampling_ms : ds->sampling_ms;
            it->queue_size = dp->cfg.queue_size >= 0 ? (uint32_t)dp->cfg.queue_size : ds->queue;
            if (it->queue_size == 0)
                it->queue_size = 1;
        }
    }
    if (items == NULL) {
        ctx_done(x, a, true);
        return;
    }
    if (n == 0) {
        free(items);
        ctx_done(x, a, false);
        return;
    }
    ep_err e = ep_uac_mon_create(c, sub_id, n, items, on_items, x);
    free(items);
    if (e != EP_EOK) {
        ep_conn__asset_set_error(a, "creating monitored items: %s", ep_strerror(e));
        ctx_done(x, a, true);
    }
}

static void setup_subs(conn_asset *a)
{
    ep_uac *c = a->sess->uac;
    const ep_conn_profile *p = a->sess->p;
    uint32_t max_items = p->max_items ? p->max_items : EP_CONN_MAX_ITEMS_PER_SUB;
    uint32_t lifetime = p->lifetime_ms ? p->lifetime_ms : 60000;
    for (size_t i = 0; i < a->nds; i++) {
        conn_ds *ds = &a->ds[i];
        size_t nsub = (ds->npoints + max_items - 1) / max_items;
        free(ds->subs);
        ds->nsubs = 0;
        ds->subs = nsub ? calloc(nsub, sizeof(*ds->subs)) : NULL;
        if (nsub && ds->subs == NULL) {
            a->setup_failed = true;
            return;
        }
        for (size_t k = 0; k < nsub; k++) {
            ep_uac_sub_opts so;
            memset(&so, 0, sizeof(so));
            so.publishing_interval_ms = ds->publishing_ms > 0 ? ds->publishing_ms : 1000;
            so.max_keepalive_count = 10;
            uint32_t ka_ms = (uint32_t)(so.publishing_interval_ms * 10);
            so.lifetime_count = ka_ms ? (lifetime + ka_ms - 1) / ka_ms * 10 : 60;
            if (so.lifetime_count < 30)
                so.lifetime_count = 30;
            ep_uac_sub_handlers h = {
                .on_data = on_data, .on_status = on_ds_status, .on_message = on_message, .ud = ds};
            setup_ctx *x = ctx_new(a);
            if (x == NULL) {
                a->setup_failed = true;
                return;
            }
            x->ds = i;
            x->off = k * max_items;
            x->n = ds->npoints - x->off < max_items ? ds->npoints - x->off : max_items;
            uint32_t sid = 0;
            ep_err err = ep_uac_sub_create(c, &so, &h, on_sub_created, x, &sid);
            if (err != EP_EOK) {
                ep_conn__asset_set_error(a, "creating a subscription: %s", ep_strerror(err));
                ctx_done(x, a, true);
                return;
            }
            ds->subs[ds->nsubs++] = sid;
        }
    }
    for (size_t i = 0; i < a->nev; i++) {
        conn_ev *ev = &a->ev[i];
        ep_uac_sub_opts so;
        memset(&so, 0, sizeof(so));
        int64_t pub = pick(ev->def->cfg.publishing_ms, a->res->u.asset.ev_defaults.publishing_ms,
                           p->defaults.publishing_ms);
        so.publishing_interval_ms = pub > 0 ? (double)pub : 1000;
        ep_uac_sub_handlers h = {.on_event = on_event, .on_status = on_ev_status, .ud = ev};
        setup_ctx *x = ctx_new(a);
        if (x == NULL) {
            a->setup_failed = true;
            return;
        }
        x->ds = i;
        x->event = true;
        uint32_t sid = 0;
        ep_err err = ep_uac_sub_create(c, &so, &h, on_sub_created, x, &sid);
        if (err != EP_EOK) {
            ep_conn__asset_set_error(a, "creating an event subscription: %s", ep_strerror(err));
            ctx_done(x, a, true);
            return;
        }
        ev->sub = sid;
    }
}

void ep_conn__asset_session_up(conn_asset *a)
{
    if (a->sess == NULL)
        return;
    if (a->setup_done) {
        if (strncmp(a->error, "connection", 10) == 0 ||
            strncmp(a->error, "cannot connect", 14) == 0)
            a->error[0] = 0;
        set_state(a, ASSET_RUNNING);
        return;
    }
    if (a->setup_pending > 0)
        return;
    if (strncmp(a->error, "connection", 10) == 0 || strncmp(a->error, "cannot connect", 14) == 0)
        a->error[0] = 0;
    set_state(a, ASSET_SETUP);
    a->setup_failed = false;
    /* phase 1: browse paths; the guard keeps setup_finish from running
     * before every request is out */
    a->setup_pending++;
    uint32_t *pairs = NULL;
    size_t np = 0;
    for (size_t i = 0; i < a->nds && !a->setup_failed; i++)
        for (size_t j = 0; j < a->ds[i].npoints && !a->setup_failed; j++) {
            conn_point *pt = &a->ds[i].pts[j];
            if (pt->has_node || pt->bad || a->ds[i].def->points[j].source[0] != '/')
                continue;
            if (pairs == NULL && (pairs = calloc(2 * TRANSLATE_BATCH, sizeof(*pairs))) == NULL) {
                a->setup_failed = true;
                break;
            }
            pairs[2 * np] = (uint32_t)i;
            pairs[2 * np + 1] = (uint32_t)j;
            if (++np == TRANSLATE_BATCH) {
                send_translate(a, pairs, np);
                pairs = NULL;
                np = 0;
            }
        }
    if (np)
        send_translate(a, pairs, np);
    else
        free(pairs);
    a->setup_pending--;
    if (a->setup_pending == 0)
        setup_finish(a);
}

void ep_conn__asset_session_down(conn_asset *a, const char *why)
{
    snprintf(a->error, sizeof(a->error), "%s", why ? why : "connection lost");
    if (a->state == ASSET_RUNNING || a->state == ASSET_SETUP)
        a->reconnects++;
    set_state(a, a->setup_done ? ASSET_RECONNECTING : ASSET_CONNECTING);
    ep_conn__status_mark(a);
}

/* ------------------------------------------------------------------ */
/* start / stop                                                        */

void ep_conn__asset_start(conn_asset *a)
{
    ep_connector *cn = a->cn;
    a->epoch++;
    a->retry.cb = on_retry;
    a->retry.data = a;
    if (a->res == NULL) {
        set_state(a, ASSET_INVALID);
        return;
    }
    const ep_conn_asset *def = &a->res->u.asset;
    if (!def->enabled) {
        a->error[0] = 0;
        set_state(a, ASSET_DISABLED);
        return;
    }
    conn_profile *pf = ep_conn__profile_find(cn, def->profile);
    if (pf == NULL || pf->res == NULL) {
        ep_conn__asset_set_error(
            a, pf ? "endpoint profile %s is not valid: %s" : "endpoint profile %s not found%s",
            def->profile, pf && pf->error ? pf->error : "");
        set_state(a, ASSET_NO_PROFILE);
        return;
    }
    if (!rt_build(a, &pf->res->u.profile)) {
        rt_free(a);
        ep_conn__asset_set_error(a, "out of memory");
        set_state(a, ASSET_ERROR);
        return;
    }
    a->sess = ep_conn__session_attach(cn, a, pf);
    if (a->sess == NULL) {
        rt_free(a);
        ep_conn__asset_set_error(a, "out of memory");
        set_state(a, ASSET_ERROR);
        return;
    }
    set_state(a, ASSET_CONNECTING);
    ep_conn__status_mark(a);
    if (a->sess->state == SESS_CONNECTED)
        ep_conn__asset_session_up(a);
}

void ep_conn__asset_stop(conn_asset *a)
{
    a->epoch++;
    ep_timer_stop(&a->retry);
    if (a->sess) {
        teardown_subs(a);
        ep_conn__session_detach(a->sess, a);
        a->sess = NULL;
    }
    rt_free(a);
    a->setup_pending = 0;
    a->setup_done = false;
    a->setup_failed = false;
    if (a->state == ASSET_RUNNING)
        atomic_fetch_sub_explicit(&a->cn->n_connected, 1, memory_order_relaxed);
    a->state = ASSET_INVALID;
}
