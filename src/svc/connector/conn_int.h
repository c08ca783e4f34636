/*
 * conn_int.h - connector internals shared by its files:
 *
 *   service.c   lifecycle, the MQTT client, resource topics, reconciling
 *   session.c   OPC UA sessions (one per asset, or one per endpoint when
 *               the profile says shared), connect retries, secrets, PKI
 *   asset.c     an asset at run time: browse path resolution,
 *               subscriptions of at most maxItems items, data and event
 *               notifications turned into dataset messages (delta and key
 *               frames) and published with their CloudEvents properties
 *   status.c    per-asset health: retained status messages and metrics
 *   payload.c   JSON and identifiers
 *
 * Everything runs on the connector's loop thread. Callbacks of the OPC UA
 * and MQTT clients that may outlive the object they are about carry an id
 * (asset id, session id) and look the object up again, never a pointer.
 */
#ifndef EP_SVC_CONNECTOR_CONN_INT_H
#define EP_SVC_CONNECTOR_CONN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "codec/opcua/binary.h"
#include "codec/opcua_crypto/pki.h"
#include "core/buf.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "ep/mqtt_client.h"
#include "svc/connector/connector.h"
#include "svc/opcua_client/client.h"

#define CONN_LOG "connector"

typedef struct conn_session conn_session;
typedef struct conn_asset conn_asset;
typedef struct conn_profile conn_profile;

/* A profile as received: the last valid resource, and the error of the
 * last text if it was not valid. */
struct conn_profile {
    conn_profile *next;
    char *name;
    ep_conn_res *res; /* last valid version, NULL if never valid */
    char *text;       /* last text received (valid or not) */
    char *error;      /* why the last text was refused, or NULL */
    uint64_t generation;
};

typedef enum conn_sess_state {
    SESS_IDLE = 0, /* waiting for the retry timer */
    SESS_CONNECTING,
    SESS_CONNECTED,
    SESS_RECONNECTING,
} conn_sess_state;

struct conn_session {
    conn_session *next;
    ep_connector *cn;
    uint64_t id;
    char *key;                /* profile name, or profile/asset */
    char *profile;            /* profile name */
    const ep_conn_profile *p; /* the profile resource (valid while attached) */
    ep_uac *uac;
    conn_sess_state state;
    ep_timer retry;
    uint32_t retry_ms;
    char *source; /* server application URI (CloudEvents source) */
    char *user, *password;
    char error[512];
    size_t nassets; /* attached assets */
    uint64_t reconnects;
    bool closing;
    bool dead; /* being freed: callbacks fired by the free do nothing */
};

/* One per data point, 100 000 of them at scale: kept small (40 bytes);
 * the point's JSON key lives in its dataset's key block, its last value
 * (key frames only) in the dataset's last array. */
typedef struct conn_point {
    ep_ua_nodeid node;         /* string ids point into the resource, or owned */
    uint32_t key_off, key_len; /* "\"name\":" in the dataset's keys */
    bool has_node;
    bool node_owned; /* node's identifier is a heap copy */
    bool pending;    /* has a value in the current frame */
    bool bad;        /* not monitored: see the asset's error */
} conn_point;

typedef struct conn_last {
    char *json; /* last value JSON, kept for key frames */
    uint32_t len, cap;
} conn_last;

typedef struct conn_ds {
    conn_asset *a;
    size_t index;
    const ep_conn_dataset *def;
    char *topic;
    uint8_t qos;
    bool retain;
    uint32_t ttl_s;
    double publishing_ms, sampling_ms;
    uint32_t queue;
    int64_t kfc;
    size_t npoints;
    conn_point *pts;
    char *keys;      /* every point's key, JSON-escaped with its colon */
    conn_last *last; /* per point, only with key frames (kfc > 0) */
    uint32_t *subs;
    size_t nsubs;
    ep_buf frame; /* entries of the open frame; storage taken from the
                   * connector's spare when the frame opens */
    size_t nframe;
    uint32_t *pending; /* indices of points in the open frame */
    size_t npending;
    uint64_t cycles, seq;
    ep_ua_datetime pub_time; /* of the message being flushed, 0: unknown */
} conn_ds;

typedef struct conn_ev {
    conn_asset *a;
    size_t index;
    const ep_conn_event *def;
    char *topic;
    uint8_t qos;
    bool retain;
    uint32_t ttl_s;
    uint32_t sub;
    size_t nselect;
    const char **select; /* browse paths (borrowed from def or static) */
    const char **fields; /* output names */
    uint64_t seq;
} conn_ev;

typedef enum conn_asset_state {
    ASSET_INVALID = 0, /* resource never valid */
    ASSET_DISABLED,    /* enabled: false */
    ASSET_NO_PROFILE,  /* profile missing or invalid */
    ASSET_CONNECTING,  /* session not connected yet */
    ASSET_SETUP,       /* resolving paths, creating subscriptions */
    ASSET_RUNNING,
    ASSET_RECONNECTING,
    ASSET_ERROR, /* setup failed; retried */
} conn_asset_state;

struct conn_asset {
    conn_asset *next;
    ep_connector *cn;
    uint64_t id;
    char *name;
    ep_conn_res *res; /* last valid version (NULL: never valid) */
    /* the last text received, as its length and digest (what the next
     * version is compared with: an asset of 10 000 points is ~650 kB of
     * text, not worth keeping) */
    size_t text_len;
    uint64_t text_digest;
    bool has_text;
    char *res_error; /* why the last text was refused */
    uint64_t generation;
    uint64_t epoch; /* bumped at every start and stop */
    conn_asset_state state;
    conn_session *sess;
    size_t nds, nev;
    conn_ds *ds;
    conn_ev *ev;
    unsigned setup_pending; /* requests of the setup in flight */
    bool setup_failed;
    bool setup_done;
    ep_timer retry;
    /* health */
    char error[512]; /* runtime error (connection, items) */
    size_t bad_points;
    uint64_t last_value_ms; /* wall clock */
    _Atomic uint64_t values, messages, events, dropped;
    uint64_t lost, reconnects;
    bool dirty; /* state changed: publish status soon */
    uint64_t status_sent_ms, status_values;
    ep_counter *m_values, *m_messages, *m_events, *m_dropped, *m_notifications;
    ep_counter *m_reconnects, *m_lost; /* copies of reconnects, lost */
    ep_gauge *m_connected, *m_last_value, *m_error_time;
    ep_gauge *m_state[ASSET_ERROR + 1]; /* 1 on the current state's series */
    uint64_t error_hash;                /* of the error last seen by the metrics */
};

struct ep_connector {
    ep_connector_opts o; /* strings owned (copies) */
    char *client_id;
    ep_loop *loop;
    ep_buf spare; /* frame storage between frames (see asset.c) */
    pthread_t thread;
    bool thread_started;
    ep_mqttc *mq;
    bool mq_connected;
    bool subscribed;
    ep_ua_pki *pki, *pki_auto;
    conn_profile *profiles;
    conn_asset *assets;
    conn_session *sessions;
    uint64_t next_id;
    ep_timer status_timer;
    ep_timer stop_timer;
    bool stopping;
    _Atomic uint64_t n_assets, n_connected;
    _Atomic uint64_t tot_values, tot_messages, tot_events, tot_dropped;
    ep_metrics_check *ready; /* /readyz: connected to the broker */
    ep_gauge *m_broker_connected, *m_buf_msgs, *m_buf_bytes, *m_buf_limit_msgs, *m_buf_limit_bytes;
    ep_buf scratch; /* payload assembly */
};

/* service.c */
ep_err ep_conn__publish(ep_connector *cn, conn_asset *a, const char *topic, const void *payload,
                        size_t len, uint8_t qos, bool retain, uint32_t ttl_s,
                        const ep_mqtt_user_prop *up, size_t nup);
conn_profile *ep_conn__profile_find(ep_connector *cn, const char *name);
conn_asset *ep_conn__asset_by_id(ep_connector *cn, uint64_t id);
conn_session *ep_conn__session_by_id(ep_connector *cn, uint64_t id);

/* session.c */
conn_session *ep_conn__session_attach(ep_connector *cn, conn_asset *a, const conn_profile *pf);
void ep_conn__session_detach(conn_session *s, conn_asset *a);
void ep_conn__sessions_close_all(ep_connector *cn);
const char *ep_conn__session_source(const conn_session *s);

/* asset.c */
void ep_conn__asset_start(conn_asset *a);
void ep_conn__asset_stop(conn_asset *a);
void ep_conn__asset_session_up(conn_asset *a);
void ep_conn__asset_session_down(conn_asset *a, const char *why);
void ep_conn__asset_set_error(conn_asset *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* status.c */
void ep_conn__status_mark(conn_asset *a);
void ep_conn__status_tick(ep_connector *cn, bool force);
void ep_conn__status_clear(ep_connector *cn, const char *name);
void ep_conn__status_profile(ep_connector *cn, const conn_profile *p, bool deleted);
void ep_conn__status_metrics(conn_asset *a);
void ep_conn__status_metrics_sync(ep_connector *cn);
void ep_conn__status_metrics_gone(conn_asset *a);
void ep_conn__status_init(ep_connector *cn);
void ep_conn__status_ready(ep_connector *cn, bool connected);
void ep_conn__status_fini(ep_connector *cn);
const char *ep_conn__asset_state_name(conn_asset_state st);

/* payload.c */
bool ep_conn__json_ok(const ep_buf *b);
void ep_conn__json_str(ep_buf *b, const void *s, size_t n);
void ep_conn__json_cstr(ep_buf *b, const char *s);
void ep_conn__json_variant(ep_buf *b, const ep_ua_variant *v);
void ep_conn__json_datavalue(ep_buf *b, const ep_ua_datavalue *dv);
void ep_conn__json_datetime(ep_buf *b, ep_ua_datetime dt);
size_t ep_conn__datetime_text(ep_ua_datetime dt, char out[32]);
size_t ep_conn__now_text(char out[32]);
uint64_t ep_conn__digest(const void *p, size_t n);
void ep_conn__uuid(char out[37]);
void ep_conn__traceparent(char out[56]);

#endif
