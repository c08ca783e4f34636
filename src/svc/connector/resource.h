/*
 * resource.h - the connector's resources: endpoint profiles and assets,
 * YAML documents shaped like the reference's AssetEndpointProfile and Asset
 * (docs/connector.md lists every field).
 *
 *   apiVersion: edgeplane.io/v1          (any string, optional)
 *   kind: AssetEndpointProfile | Asset
 *   metadata: {name: plant-sim}          (lowercase letters, digits, '-', '.')
 *   spec: {...}
 *
 * Parsing is pure (no I/O except ep_conn_res_load_path, no globals) so that
 * `edgeplane apply` validates exactly as the connector does, and so that the
 * parser can be fuzzed. Text comes from a user or from the broker, so it is
 * untrusted: everything is bounded by the cfg reader's limits and by the
 * counts below, and every problem is reported as
 *   Asset oven-1: FILE:LINE:COL: spec.datasets[0].dataPoints[2].dataSource: expected ...
 * naming the resource, the field and what was expected.
 *
 * "*Configuration" fields (additionalConfiguration, datasetConfiguration,
 * dataPointConfiguration, eventConfiguration, default*Configuration) are, as
 * in the reference, JSON text in a string; a YAML map is accepted too.
 *
 * Ownership: a parsed ep_conn_res owns every string and array in it and is
 * released with ep_conn_res_free. Threads: any, nothing is shared.
 */
#ifndef EP_SVC_CONNECTOR_RESOURCE_H
#define EP_SVC_CONNECTOR_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/err.h"

#define EP_CONN_NAME_MAX 63       /* resource name length */
#define EP_CONN_MAX_DATASETS 1000 /* per asset */
#define EP_CONN_MAX_POINTS 200000 /* per dataset */
#define EP_CONN_MAX_EVENTS 1000   /* per asset */
#define EP_CONN_MAX_SELECT 64     /* select clauses per event */
#define EP_CONN_MAX_ITEMS_PER_SUB 1000

typedef enum ep_conn_kind {
    EP_CONN_KIND_NONE = 0,
    EP_CONN_KIND_PROFILE = 1, /* AssetEndpointProfile */
    EP_CONN_KIND_ASSET = 2,   /* Asset */
} ep_conn_kind;

/* ep_conn_kind_topic returns the topic segment of a kind
 * ("assetendpointprofile", "asset"); ep_conn_kind_name the YAML kind. */
const char *ep_conn_kind_topic(ep_conn_kind k);
const char *ep_conn_kind_name(ep_conn_kind k);
/* ep_conn_kind_parse accepts the YAML kind, the topic segment and the
 * CLI aliases (assets, aep, profile, endpointprofile ...), any case. */
ep_conn_kind ep_conn_kind_parse(const char *s);
/* ep_conn_name_valid: 1..63 of [a-z0-9.-], starting and ending alnum. */
bool ep_conn_name_valid(const char *s);

/* Sampling/publishing settings; -1 in an int field means "not set here". */
typedef struct ep_conn_settings {
    int64_t publishing_ms;
    int64_t sampling_ms; /* 0: as fast as possible */
    int64_t queue_size;
    int64_t key_frame_count; /* 0 none, 1 every frame, N every N cycles */
} ep_conn_settings;

enum { EP_CONN_AUTH_ANONYMOUS = 0, EP_CONN_AUTH_USERNAME, EP_CONN_AUTH_CERTIFICATE };

typedef struct ep_conn_profile {
    char *target_address;  /* opc.tcp://host:port */
    char *profile_type;    /* endpointProfileType, default Microsoft.OpcUa */
    int32_t auth_method;   /* EP_CONN_AUTH_* */
    char *username_secret; /* file names under the connector's secrets dir */
    char *password_secret;
    char *cert_secret;
    char *key_secret;
    /* additionalConfiguration */
    char *application_name;
    ep_conn_settings defaults; /* all set (defaults filled) */
    uint32_t session_timeout_ms;
    uint32_t keepalive_ms;
    uint32_t reconnect_period_ms;
    int64_t reconnect_backoff_ms; /* -1: no exponential backoff */
    uint32_t max_items;           /* per subscription, 1..1000 */
    uint32_t lifetime_ms;
    bool auto_accept;
    char *security_policy; /* short name: None, Basic256Sha256, ... */
    int32_t security_mode; /* EP_UA_MESSAGE_SECURITY_MODE_* (1 None) */
    bool shared;           /* one session per endpoint */
} ep_conn_profile;

typedef struct ep_conn_dest {
    char *topic; /* NULL: the asset's default, then edgeplane/... */
    bool retain;
    uint8_t qos;    /* 0 or 1 (default 1) */
    uint32_t ttl_s; /* message expiry, 0 none */
    bool has_retain, has_qos;
} ep_conn_dest;

typedef struct ep_conn_point {
    char *name;
    char *source;         /* NodeId text, or a browse path starting with '/' */
    ep_conn_settings cfg; /* sampling_ms, queue_size (others -1) */
} ep_conn_point;

typedef struct ep_conn_dataset {
    char *name;
    char *start_node; /* dataSource: start node for browse paths, or NULL */
    ep_conn_settings cfg;
    ep_conn_dest dest;
    size_t npoints;
    ep_conn_point *points;
} ep_conn_dataset;

typedef struct ep_conn_select {
    char *browse_path; /* "Message", "/Severity", "A/B" */
    char *field;       /* output name (fieldId, or the last path element) */
    char *type_def;    /* typeDefinitionId as given (informational) */
} ep_conn_select;

typedef struct ep_conn_event {
    char *name;
    char *notifier; /* eventNotifier NodeId text */
    ep_conn_settings cfg;
    ep_conn_dest dest;
    size_t nselect; /* 0: the default fields */
    ep_conn_select *select;
} ep_conn_event;

typedef struct ep_conn_asset {
    char *profile; /* assetEndpointProfileRef */
    bool enabled;
    char *external_id, *display_name, *description;
    char *manufacturer, *model, *serial_number;
    ep_conn_settings ds_defaults; /* defaultDatasetsConfiguration */
    ep_conn_settings ev_defaults; /* defaultEventsConfiguration */
    ep_conn_dest default_dest;    /* defaultTopic */
    size_t ndatasets;
    ep_conn_dataset *datasets;
    size_t nevents;
    ep_conn_event *events;
} ep_conn_asset;

typedef struct ep_conn_res {
    ep_conn_kind kind;
    char *name;
    char *text; /* the document text (for the broker and for comparing) */
    size_t text_len;
    union {
        ep_conn_profile profile;
        ep_conn_asset asset;
    } u;
} ep_conn_res;

/*
 * ep_conn_res_parse parses one YAML document (data, len bytes; borrowed)
 * into *out. `label` names the source in messages (a file name or a topic;
 * borrowed); `first_line` is the 1-based line of the document in that
 * source, so that messages point into the file. Every problem is appended
 * to errs, prefixed with "<Kind> <name>: " once kind and name are known.
 * Returns EP_EOK with *out set (caller frees), EP_ECONFIG (errors in
 * errs, *out untouched), EP_ENOMEM.
 */
ep_err ep_conn_res_parse(const char *label, unsigned first_line, const char *data, size_t len,
                         ep_conn_res **out, ep_cfg_errs *errs);

/* ep_conn_res_free releases r; NULL is accepted. */
void ep_conn_res_free(ep_conn_res *r);

/* A set of parsed resources (one file or a directory). */
typedef struct ep_conn_res_list {
    size_t n, cap;
    ep_conn_res **items;
} ep_conn_res_list;

/*
 * ep_conn_res_parse_multi splits text into YAML documents at "---" lines
 * and parses each (empty documents are skipped), appending the good ones to
 * list. Returns EP_EOK when every document parsed, EP_ECONFIG otherwise (the
 * good ones are still appended), EP_ENOMEM.
 */
ep_err ep_conn_res_parse_multi(const char *label, const char *data, size_t len,
                               ep_conn_res_list *list, ep_cfg_errs *errs);

/*
 * ep_conn_res_load_path reads a file, or every *.yaml / *.yml file of a
 * directory in name order, through ep_conn_res_parse_multi. Duplicate
 * kind/name pairs are errors. Blocking I/O; caller's thread.
 * Returns EP_EOK, EP_ECONFIG, EP_EIO (reported in errs), EP_ENOMEM.
 */
ep_err ep_conn_res_load_path(const char *path, ep_conn_res_list *list, ep_cfg_errs *errs);

/* ep_conn_res_list_fini frees every resource and the array. */
void ep_conn_res_list_fini(ep_conn_res_list *list);

/* ep_conn_res_topic writes "$edgeplane/resources/<kind>/<name>". */
void ep_conn_res_topic(ep_conn_kind kind, const char *name, char *buf, size_t n);

#define EP_CONN_TOPIC_RESOURCES "$edgeplane/resources"
#define EP_CONN_TOPIC_STATUS_ASSETS "$edgeplane/status/assets"
#define EP_CONN_TOPIC_STATUS_PROFILES "$edgeplane/status/assetendpointprofiles"
#define EP_CONN_TOPIC_STATUS_CONNECTORS "$edgeplane/status/connectors"

#endif
