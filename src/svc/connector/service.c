/*
 * service.c - the connector's lifecycle, its MQTT client and the
 * reconciliation of resources received from the broker.
 *
 * Resources arrive as retained messages on
 * $edgeplane/resources/<assetendpointprofile|asset>/<name>; an empty
 * payload deletes. Reconciling is idempotent: a text equal to the one in
 * force changes nothing. A text that does not parse leaves what runs
 * untouched (the last valid version keeps running) and its error is
 * reported in the asset's or profile's status. A valid new version of an
 * asset restarts only that asset; of a profile, the assets using it.
 *
 * After a broker reconnect without a session the subscription is made
 * again and the retained resources arrive again; they are all equal to
 * what runs, so nothing restarts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "svc/connector/conn_int.h"

/* The connector whose loop runs on this thread: MQTT completions carry
 * only an asset id, and find their connector here. */
static _Thread_local ep_connector *tls_cn;

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

/* ------------------------------------------------------------------ */
/* lookups                                                             */

conn_profile *ep_conn__profile_find(ep_connector *cn, const char *name)
{
    for (conn_profile *p = cn->profiles; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static conn_asset *asset_find(ep_connector *cn, const char *name)
{
    for (conn_asset *a = cn->assets; a; a = a->next)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

conn_asset *ep_conn__asset_by_id(ep_connector *cn, uint64_t id)
{
    for (conn_asset *a = cn->assets; a; a = a->next)
        if (a->id == id)
            return a;
    return NULL;
}

conn_session *ep_conn__session_by_id(ep_connector *cn, uint64_t id)
{
    for (conn_session *s = cn->sessions; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* publishing                                                          */

static void pub_done(ep_mqttc *c, ep_err err, ep_mqtt_rc rc, void *ud)
{
    (void)c;
    (void)rc;
    ep_connector *cn = tls_cn;
    if (err == EP_EOK || cn == NULL)
        return;
    atomic_fetch_add_explicit(&cn->tot_dropped, 1, memory_order_relaxed);
    conn_asset *a = ep_conn__asset_by_id(cn, (uint64_t)(uintptr_t)ud);
    if (a) {
        atomic_fetch_add_explicit(&a->dropped, 1, memory_order_relaxed);
        if (a->m_dropped)
            ep_counter_inc(a->m_dropped);
    }
}

ep_err ep_conn__publish(ep_connector *cn, conn_asset *a, const char *topic, const void *payload,
                        size_t len, uint8_t qos, bool retain, uint32_t ttl_s,
                        const ep_mqtt_user_prop *up, size_t nup)
{
    if (cn->mq == NULL)
        return EP_ESTATE;
    ep_mqtt_props props;
    memset(&props, 0, sizeof(props));
    EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
    props.payload_format_indicator = 1;
    EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_CONTENT_TYPE);
    props.content_type = EP_MQTT_STR("application/json");
    if (ttl_s) {
        EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
        props.message_expiry_interval = ttl_s;
    }
    if (nup) {
        EP_MQTT_PROPS_SET(&props, EP_MQTT_PROP_USER_PROPERTY);
        props.user = up;
        props.n_user = (uint32_t)nup;
    }
    ep_mqttc_pub p = {.topic = topic,
                      .payload = payload,
                      .payload_len = len,
                      .qos = qos,
                      .retain = retain,
                      .props = &props};
    return ep_mqttc_publish(cn->mq, &p, a ? pub_done : NULL, a ? (void *)(uintptr_t)a->id : NULL);
}

/* ------------------------------------------------------------------ */
/* reconciling                                                         */

static void asset_free(conn_asset *a)
{
    ep_conn__asset_stop(a);
    ep_conn__status_metrics_gone(a);
    ep_timer_stop(&a->retry);
    ep_conn_res_free(a->res);
    free(a->res_error);
    free(a->name);
    free(a);
}

static void profile_free(conn_profile *p)
{
    ep_conn_res_free(p->res);
    free(p->text);
    free(p->error);
    free(p->name);
    free(p);
}

/* restart every asset using profile name (after it changed) */
static void restart_assets_of(ep_connector *cn, const char *profile)
{
    for (conn_asset *a = cn->assets; a; a = a->next)
        if (a->res && strcmp(a->res->u.asset.profile, profile) == 0) {
            ep_conn__asset_stop(a);
            ep_conn__asset_start(a);
        }
}

static char *errs_text(const ep_cfg_errs *errs)
{
    ep_buf b;
    ep_buf_init(&b, 0);
    size_t shown = 0;
    for (size_t i = 0; i < errs->count; i++) {
        if (errs->items[i].warning)
            continue;
        if (shown++)
            ep_buf_append(&b, "; ", 2);
        ep_buf_append(&b, errs->items[i].text, strlen(errs->items[i].text));
    }
    if (shown == 0)
        ep_buf_append(&b, "invalid resource", 16);
    ep_buf_append(&b, "", 1);
    char *s = dupstr((const char *)ep_buf_head(&b));
    ep_buf_fini(&b);
    return s;
}

static void on_profile(ep_connector *cn, const char *name, const char *text, size_t len)
{
    conn_profile *p = ep_conn__profile_find(cn, name);
    if (len == 0) {
        if (p == NULL)
            return;
        EP_LOG_INFO(CONN_LOG, "endpoint profile %s deleted", name);
        for (conn_profile **pp = &cn->profiles; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        ep_conn__status_profile(cn, p, true);
        profile_free(p);
        restart_assets_of(cn, name);
        return;
    }
    if (p && p->text && strlen(p->text) == len && memcmp(p->text, text, len) == 0)
        return; /* unchanged */
    char label[256];
    snprintf(label, sizeof(label), "%s/assetendpointprofile/%s", EP_CONN_TOPIC_RESOURCES, name);
    ep_cfg_errs errs = {0};
    ep_conn_res *r = NULL;
    ep_err rc = ep_conn_res_parse(label, 1, text, len, &r, &errs);
    if (rc == EP_EOK && (r->kind != EP_CONN_KIND_PROFILE || strcmp(r->name, name) != 0)) {
        ep_cfg_errs_add(&errs, NULL,
                        "%s %s: published on the topic of AssetEndpointProfile %s; the "
                        "kind and name must match the topic",
                        ep_conn_kind_name(r->kind), r->name, name);
        ep_conn_res_free(r);
        r = NULL;
        rc = EP_ECONFIG;
    }
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL || (p->name = dupstr(name)) == NULL) {
            free(p);
            ep_conn_res_free(r);
            ep_cfg_errs_fini(&errs);
            return;
        }
        p->next = cn->profiles;
        cn->profiles = p;
    }
    free(p->text);
    p->text = malloc(len + 1);
    if (p->text) {
        memcpy(p->text, text, len);
        p->text[len] = 0;
    }
    free(p->error);
    p->error = NULL;
    p->generation++;
    if (rc != EP_EOK) {
        p->error = errs_text(&errs);
        EP_LOG_WARN(CONN_LOG, "endpoint profile %s refused: %s", name, p->error ? p->error : "");
        ep_conn__status_profile(cn, p, false);
        /* assets keep running on the last valid version; tell them */
        for (conn_asset *a = cn->assets; a; a = a->next)
            if (a->res && strcmp(a->res->u.asset.profile, name) == 0)
                ep_conn__status_mark(a);
        ep_cfg_errs_fini(&errs);
        if (p->res == NULL)
            restart_assets_of(cn, name);
        return;
    }
    ep_cfg_errs_fini(&errs);
    EP_LOG_INFO(CONN_LOG, "endpoint profile %s %s (%s)", name, p->res ? "updated" : "created",
                r->u.profile.target_address);
    /* the assets hold pointers into the old resource: stop them before
     * replacing it */
    for (conn_asset *a = cn->assets; a; a = a->next)
        if (a->res && strcmp(a->res->u.asset.profile, name) == 0)
            ep_conn__asset_stop(a);
    ep_conn_res_free(p->res);
    p->res = r;
    ep_conn__status_profile(cn, p, false);
    for (conn_asset *a = cn->assets; a; a = a->next)
        if (a->res && strcmp(a->res->u.asset.profile, name) == 0)
            ep_conn__asset_start(a);
}

static void on_asset(ep_connector *cn, const char *name, const char *text, size_t len)
{
    conn_asset *a = asset_find(cn, name);
    if (len == 0) {
        if (a == NULL)
            return;
        EP_LOG_INFO(CONN_LOG, "asset %s deleted", name);
        for (conn_asset **pp = &cn->assets; *pp; pp = &(*pp)->next)
            if (*pp == a) {
                *pp = a->next;
                break;
            }
        atomic_fetch_sub_explicit(&cn->n_assets, 1, memory_order_relaxed);
        asset_free(a);
        ep_conn__status_clear(cn, name);
        return;
    }
    uint64_t digest = ep_conn__digest(text, len);
    if (a && a->has_text && a->text_len == len && a->text_digest == digest)
        return;
    char label[256];
    snprintf(label, sizeof(label), "%s/asset/%s", EP_CONN_TOPIC_RESOURCES, name);
    ep_cfg_errs errs = {0};
    ep_conn_res *r = NULL;
    ep_err rc = ep_conn_res_parse(label, 1, text, len, &r, &errs);
    if (rc == EP_EOK && (r->kind != EP_CONN_KIND_ASSET || strcmp(r->name, name) != 0)) {
        ep_cfg_errs_add(&errs, NULL,
                        "%s %s: published on the topic of Asset %s; the kind and name "
                        "must match the topic",
                        ep_conn_kind_name(r->kind), r->name, name);
        ep_conn_res_free(r);
        r = NULL;
        rc = EP_ECONFIG;
    }
    if (a == NULL) {
        a = calloc(1, sizeof(*a));
        if (a == NULL || (a->name = dupstr(name)) == NULL) {
            free(a);
            ep_conn_res_free(r);
            ep_cfg_errs_fini(&errs);
            return;
        }
        a->cn = cn;
        a->id = ++cn->next_id;
        ep_timer_init(cn->loop, &a->retry, NULL, a);
        a->next = cn->assets;
        cn->assets = a;
        atomic_fetch_add_explicit(&cn->n_assets, 1, memory_order_relaxed);
        ep_conn__status_metrics(a);
    }
    a->has_text = true;
    a->text_len = len;
    a->text_digest = digest;
    free(a->res_error);
    a->res_error = NULL;
    a->generation++;
    if (rc != EP_EOK) {
        a->res_error = errs_text(&errs);
        EP_LOG_WARN(CONN_LOG, "asset %s refused%s: %s", name,
                    a->res ? " (the previous version keeps running)" : "",
                    a->res_error ? a->res_error : "");
        ep_cfg_errs_fini(&errs);
        ep_conn__status_mark(a);
        return;
    }
    ep_cfg_errs_fini(&errs);
    /* the digest is what is compared with the next version; the parsed
     * copy of the text is not needed */
    free(r->text);
    r->text = NULL;
    r->text_len = 0;
    EP_LOG_INFO(CONN_LOG, "asset %s %s", name, a->res ? "updated" : "created");
    ep_conn__asset_stop(a);
    ep_conn_res_free(a->res);
    a->res = r;
    ep_conn__asset_start(a);
}

/* ------------------------------------------------------------------ */
/* MQTT client                                                         */

static void on_message(ep_mqttc *c, const ep_mqttc_message *m, void *ud)
{
    (void)c;
    ep_connector *cn = ud;
    static const char prefix[] = EP_CONN_TOPIC_RESOURCES "/";
    const char *t = (const char *)m->topic.p;
    size_t n = m->topic.len, pl = sizeof(prefix) - 1;
    if (cn->stopping || n <= pl || memcmp(t, prefix, pl) != 0)
        return;
    const char *kind = t + pl;
    const char *slash = memchr(kind, '/', n - pl);
    if (slash == NULL)
        return;
    char kbuf[64], name[EP_CONN_NAME_MAX + 1];
    size_t kl = (size_t)(slash - kind), nl = n - pl - kl - 1;
    if (kl >= sizeof(kbuf) || nl >= sizeof(name) || nl == 0)
        return;
    memcpy(kbuf, kind, kl);
    kbuf[kl] = 0;
    memcpy(name, slash + 1, nl);
    name[nl] = 0;
    if (!ep_conn_name_valid(name)) {
        EP_LOG_WARN(CONN_LOG, "ignoring resource with an invalid name on %.*s", (int)n, t);
        return;
    }
    const char *text = (const char *)m->payload.p;
    ep_conn_kind k = ep_conn_kind_parse(kbuf);
    if (k == EP_CONN_KIND_PROFILE && strcmp(kbuf, "assetendpointprofile") == 0)
        on_profile(cn, name, text, m->payload.len);
    else if (k == EP_CONN_KIND_ASSET && strcmp(kbuf, "asset") == 0)
        on_asset(cn, name, text, m->payload.len);
}

static void publish_online(ep_connector *cn, bool online)
{
    char topic[256], body[256];
    snprintf(topic, sizeof(topic), "%s/%s", EP_CONN_TOPIC_STATUS_CONNECTORS, cn->client_id);
    char now[32];
    ep_conn__now_text(now);
    int k = snprintf(body, sizeof(body), "{\"online\":%s,\"time\":\"%s\",\"version\":\"%s\"}",
                     online ? "true" : "false", now, EP_VERSION);
    ep_conn__publish(cn, NULL, topic, body, (size_t)k, 1, true, 0, NULL, 0);
}

static void on_connect(ep_mqttc *c, bool session_present, const ep_mqtt_props *props, void *ud)
{
    (void)props;
    ep_connector *cn = ud;
    cn->mq_connected = true;
    ep_conn__status_ready(cn, true);
    EP_LOG_INFO(CONN_LOG, "connected to the broker %s:%u%s", cn->o.broker_host, cn->o.broker_port,
                session_present ? " (session resumed)" : "");
    if (!session_present || !cn->subscribed) {
        ep_mqtt_sub s = {.filter = EP_MQTT_STR(EP_CONN_TOPIC_RESOURCES "/+/+"), .qos = 1};
        if (ep_mqttc_subscribe(c, &s, 1, 0, NULL, NULL) == EP_EOK)
            cn->subscribed = true;
    }
    publish_online(cn, true);
    /* statuses are retained: after a broker restart they are gone */
    if (!session_present)
        ep_conn__status_tick(cn, true);
}

static void on_disconnect(ep_mqttc *c, const ep_mqttc_disconnect_info *info, void *ud)
{
    (void)c;
    ep_connector *cn = ud;
    if (cn->mq_connected && !cn->stopping)
        EP_LOG_WARN(CONN_LOG, "broker connection lost (%s); buffering up to %u messages",
                    ep_strerror(info->err), cn->o.buffer_messages);
    cn->mq_connected = false;
    ep_conn__status_ready(cn, false);
    if (!info->will_reconnect && cn->stopping)
        ep_loop_stop(cn->loop);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

static void on_status_timer(ep_timer *t)
{
    ep_connector *cn = t->data;
    ep_conn__status_tick(cn, false);
    if (!cn->stopping)
        ep_timer_start(t, 1000);
}

static void on_stop_timer(ep_timer *t)
{
    ep_connector *cn = t->data;
    ep_loop_stop(cn->loop);
}

static void do_init(ep_loop *loop, void *arg)
{
    (void)loop;
    ep_connector *cn = arg;
    tls_cn = cn;
    ep_mqttc_options o;
    memset(&o, 0, sizeof(o));
    o.host = cn->o.broker_host;
    o.port = cn->o.broker_port;
    o.client_id = cn->client_id;
    o.version = 5;
    o.clean_start = true;
    o.session_expiry = 600;
    o.username = cn->o.username;
    o.password_file = cn->o.password_file;
    o.auth_method = cn->o.auth_method;
    o.tls = cn->o.tls;
    o.reconnect_min_ms = 250;
    o.reconnect_max_ms = 5000;
    o.queue_max_messages = cn->o.buffer_messages;
    o.queue_max_bytes = cn->o.buffer_bytes;
    o.queue_policy = EP_MQTTC_DROP_OLDEST;
    o.inflight_max = 1024;
    o.on_connect = on_connect;
    o.on_disconnect = on_disconnect;
    o.on_message = on_message;
    o.userdata = cn;
    char will_topic[256];
    snprintf(will_topic, sizeof(will_topic), "%s/%s", EP_CONN_TOPIC_STATUS_CONNECTORS,
             cn->client_id);
    static const char will[] = "{\"online\":false}";
    o.will_topic = will_topic;
    o.will_payload = will;
    o.will_payload_len = sizeof(will) - 1;
    o.will_qos = 1;
    o.will_retain = true;
    ep_err err = ep_mqttc_new(&cn->mq, cn->loop, &o);
    if (err != EP_EOK) {
        EP_LOG_ERROR(CONN_LOG, "cannot create the MQTT client: %s", ep_strerror(err));
        ep_loop_stop(cn->loop);
        return;
    }
    /* seed resources are published first: they are queued until the
     * connection is up and then reach the broker before our subscribe */
    if (cn->o.seed)
        for (size_t i = 0; i < cn->o.seed->n; i++) {
            const ep_conn_res *r = cn->o.seed->items[i];
            char topic[256];
            ep_conn_res_topic(r->kind, r->name, topic, sizeof(topic));
            ep_mqttc_pub p = {.topic = topic,
                              .payload = r->text,
                              .payload_len = r->text_len,
                              .qos = 1,
                              .retain = true};
            ep_mqttc_publish(cn->mq, &p, NULL, NULL);
        }
    ep_mqttc_connect(cn->mq);
    ep_timer_init(cn->loop, &cn->status_timer, on_status_timer, cn);
    ep_timer_start(&cn->status_timer, 1000);
}

static void do_stop(ep_loop *loop, void *arg)
{
    (void)loop;
    ep_connector *cn = arg;
    if (cn->stopping)
        return;
    cn->stopping = true;
    EP_LOG_INFO(CONN_LOG, "stopping: closing OPC UA sessions");
    ep_timer_stop(&cn->status_timer);
    for (conn_asset *a = cn->assets; a; a = a->next)
        ep_conn__asset_stop(a);
    ep_conn__sessions_close_all(cn);
    ep_timer_init(cn->loop, &cn->stop_timer, on_stop_timer, cn);
    ep_timer_start(&cn->stop_timer, 2000);
    if (cn->mq) {
        publish_online(cn, false);
        if (ep_mqttc_disconnect(cn->mq, EP_MQTT_RC_NORMAL_DISCONNECTION, 0) != EP_EOK)
            ep_loop_stop(cn->loop);
    } else {
        ep_loop_stop(cn->loop);
    }
}

static void *thread_main(void *arg)
{
    ep_connector *cn = arg;
    tls_cn = cn;
    ep_loop_run(cn->loop);
    /* lingering OPC UA channels finish closing (bounded) */
    uint64_t end = ep_clock_mono_ms() + 1000;
    while (ep_uac_channels_alive() && ep_clock_mono_ms() < end)
        ep_loop_run_once(cn->loop, 20);
    while (cn->assets) {
        conn_asset *a = cn->assets;
        cn->assets = a->next;
        asset_free(a);
    }
    ep_conn__sessions_close_all(cn);
    while (cn->profiles) {
        conn_profile *p = cn->profiles;
        cn->profiles = p->next;
        profile_free(p);
    }
    ep_mqttc_free(cn->mq);
    cn->mq = NULL;
    for (int i = 0; i < 5; i++)
        ep_loop_run_once(cn->loop, 0);
    ep_ua_pki_free(cn->pki);
    ep_ua_pki_free(cn->pki_auto);
    cn->pki = cn->pki_auto = NULL;
    tls_cn = NULL;
    return NULL;
}

ep_err ep_connector_new(ep_connector **out, const ep_connector_opts *o)
{
    if (out == NULL || o == NULL)
        return EP_EINVAL;
    ep_connector *cn = calloc(1, sizeof(*cn));
    if (cn == NULL)
        return EP_ENOMEM;
    cn->o = *o;
    cn->o.broker_host = dupstr(o->broker_host ? o->broker_host : "127.0.0.1");
    cn->o.broker_port = o->broker_port ? o->broker_port : 1883;
    cn->client_id = dupstr(o->client_id ? o->client_id : "edgeplane-connector");
    cn->o.client_id = cn->client_id;
    cn->o.username = dupstr(o->username);
    cn->o.password_file = dupstr(o->password_file);
    cn->o.pki_dir = dupstr(o->pki_dir);
    cn->o.secrets_dir = dupstr(o->secrets_dir ? o->secrets_dir : ".");
    if (cn->o.buffer_messages == 0)
        cn->o.buffer_messages = 100000;
    if (cn->o.buffer_bytes == 0)
        cn->o.buffer_bytes = (size_t)64 << 20;
    if (cn->o.status_interval_ms == 0)
        cn->o.status_interval_ms = 5000;
    ep_buf_init(&cn->scratch, 0);
    if (cn->o.broker_host == NULL || cn->client_id == NULL || cn->o.secrets_dir == NULL) {
        ep_connector_free(cn);
        return EP_ENOMEM;
    }
    *out = cn;
    return EP_EOK;
}

ep_err ep_connector_start(ep_connector *cn)
{
    if (cn == NULL || cn->loop)
        return EP_EINVAL;
    ep_err err = ep_loop_new(&cn->loop, NULL);
    if (err != EP_EOK)
        return err;
    err = ep_loop_post(cn->loop, do_init, cn);
    if (err != EP_EOK)
        return err;
    /* before the thread runs: /readyz is not ready until the first CONNACK */
    ep_conn__status_init(cn);
    if (pthread_create(&cn->thread, NULL, thread_main, cn) != 0)
        return EP_ESYS;
    cn->thread_started = true;
    return EP_EOK;
}

void ep_connector_stop(ep_connector *cn)
{
    if (cn && cn->loop)
        ep_loop_post(cn->loop, do_stop, cn);
}

void ep_connector_wait(ep_connector *cn)
{
    if (cn && cn->thread_started) {
        pthread_join(cn->thread, NULL);
        cn->thread_started = false;
    }
}

void ep_connector_free(ep_connector *cn)
{
    if (cn == NULL)
        return;
    ep_loop_free(cn->loop);
    ep_conn__status_fini(cn);
    free((char *)cn->o.broker_host);
    free(cn->client_id);
    free((char *)cn->o.username);
    free((char *)cn->o.password_file);
    free((char *)cn->o.pki_dir);
    free((char *)cn->o.secrets_dir);
    ep_buf_fini(&cn->scratch);
    ep_buf_fini(&cn->spare);
    free(cn);
}

void ep_connector_get_stats(ep_connector *cn, ep_connector_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->values = atomic_load_explicit(&cn->tot_values, memory_order_relaxed);
    out->messages = atomic_load_explicit(&cn->tot_messages, memory_order_relaxed);
    out->events = atomic_load_explicit(&cn->tot_events, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&cn->tot_dropped, memory_order_relaxed);
    out->assets = atomic_load_explicit(&cn->n_assets, memory_order_relaxed);
    out->assets_connected = atomic_load_explicit(&cn->n_connected, memory_order_relaxed);
}
