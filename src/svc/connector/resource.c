/*
 * resource.c - parsing and validating connector resources.
 *
 * The YAML tree comes from the shared cfg reader (core/cfg.h), so limits,
 * strictness and file:line:col positions are the same as for every other
 * configuration file. Fixed-shape parts (authentication, topics,
 * destinations, the *Configuration objects) are bound with cfg tables,
 * which gives unknown-key errors with suggestions and typed bounds; the
 * parts a table cannot describe - lists that need per-element handling,
 * the free-form `attributes` map, configuration given as a JSON string -
 * are walked here, and the table binder is given a copy of the map node
 * without those keys (bind_except).
 *
 * Messages for one resource are collected in a local list and copied to
 * the caller's with the "<Kind> <name>: " prefix once the name is known.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "svc/connector/resource.h"

/* ------------------------------------------------------------------ */
/* names and topics                                                    */

const char *ep_conn_kind_topic(ep_conn_kind k)
{
    return k == EP_CONN_KIND_PROFILE ? "assetendpointprofile"
           : k == EP_CONN_KIND_ASSET ? "asset"
                                     : "?";
}

const char *ep_conn_kind_name(ep_conn_kind k)
{
    return k == EP_CONN_KIND_PROFILE ? "AssetEndpointProfile"
           : k == EP_CONN_KIND_ASSET ? "Asset"
                                     : "?";
}

ep_conn_kind ep_conn_kind_parse(const char *s)
{
    static const char *const profile[] = {
        "assetendpointprofile", "assetendpointprofiles", "aep",      "profile",   "profiles",
        "endpointprofile",      "endpointprofiles",      "endpoint", "endpoints", NULL};
    static const char *const asset[] = {"asset", "assets", NULL};
    if (s == NULL)
        return EP_CONN_KIND_NONE;
    for (size_t i = 0; profile[i]; i++)
        if (strcasecmp(s, profile[i]) == 0)
            return EP_CONN_KIND_PROFILE;
    for (size_t i = 0; asset[i]; i++)
        if (strcasecmp(s, asset[i]) == 0)
            return EP_CONN_KIND_ASSET;
    return EP_CONN_KIND_NONE;
}

static bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool ep_conn_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > EP_CONN_NAME_MAX)
        return false;
    if (!is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum_lower(s[i]) && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

void ep_conn_res_topic(ep_conn_kind kind, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s/%s", EP_CONN_TOPIC_RESOURCES, ep_conn_kind_topic(kind), name);
}

/* ------------------------------------------------------------------ */
/* binding helpers                                                     */

/* bind_except binds map node n with table t, ignoring the keys in skip
 * (handled by the caller). The binder sees a shallow copy of n whose
 * children are copies of n's children minus those keys; their subtrees and
 * parent pointers stay in the original tree, so positions and paths in
 * messages are unchanged. */
static ep_err bind_except(const ep_cfg_field *t, const ep_cfg_node *n, void *st, ep_cfg_errs *errs,
                          const char *const *skip)
{
    if (n == NULL || n->kind != EP_CFG_NODE_MAP || n->count == 0)
        return ep_cfg_bind(t, n, st, errs);
    ep_cfg_node *kids = calloc(n->count, sizeof(*kids));
    if (kids == NULL)
        return EP_ENOMEM;
    ep_cfg_node copy = *n;
    size_t k = 0;
    for (const ep_cfg_node *c = n->first; c != NULL; c = c->next) {
        bool skipped = false;
        for (size_t i = 0; skip && skip[i]; i++)
            if (strcmp(c->key, skip[i]) == 0)
                skipped = true;
        if (skipped)
            continue;
        kids[k] = *c;
        kids[k].next = NULL;
        if (k > 0)
            kids[k - 1].next = &kids[k];
        k++;
    }
    copy.first = k ? &kids[0] : NULL;
    copy.count = k;
    ep_err rc = ep_cfg_bind(t, &copy, st, errs);
    free(kids);
    return rc;
}

/* bind_config binds a *Configuration value: JSON text in a string (the
 * reference's form) or a map. An absent or null value binds the defaults. */
static ep_err bind_config(const ep_cfg_field *t, const ep_cfg_node *n, void *st, ep_cfg_errs *errs,
                          const ep_cfg_node **root_out, ep_cfg_tree **tree_out)
{
    *root_out = NULL;
    *tree_out = NULL;
    if (n == NULL || (n->kind == EP_CFG_NODE_SCALAR && n->is_null))
        return ep_cfg_bind(t, NULL, st, errs);
    if (n->kind == EP_CFG_NODE_MAP) {
        *root_out = n;
        return ep_cfg_bind(t, n, st, errs);
    }
    if (n->kind != EP_CFG_NODE_SCALAR) {
        ep_cfg_errs_add(errs, n, "expected a JSON object in a string, or a map");
        return EP_ECONFIG;
    }
    char path[256], label[512];
    snprintf(label, sizeof(label), "%s:%u:%u %s", n->file, n->line, n->col,
             ep_cfg_node_path(n, path, sizeof(path)));
    ep_cfg_limits lim = {.max_bytes = 1u << 20, .max_depth = 16};
    ep_err rc = ep_cfg_parse_str(label, n->value, n->len, &lim, tree_out, errs);
    if (rc != EP_EOK)
        return rc;
    const ep_cfg_node *root = ep_cfg_tree_root(*tree_out);
    if (root != NULL && root->kind != EP_CFG_NODE_MAP) {
        ep_cfg_errs_add(errs, n, "expected a JSON object, got \"%.40s\"", n->value);
        return EP_ECONFIG;
    }
    *root_out = root;
    return ep_cfg_bind(t, root, st, errs);
}

/* ------------------------------------------------------------------ */
/* tables                                                              */

/* SUB_AT: a member of a nested struct, relative to that struct */
#define SUB_AT(T, outer, m)                                                                        \
    .off = offsetof(T, outer.m) - offsetof(T, outer), .size = sizeof(((T *)0)->outer.m)

static const ep_cfg_enum retain_choices[] = {{"Never", 0}, {"Keep", 1}, {NULL, 0}};
static const ep_cfg_enum qos_choices[] = {{"Qos0", 0}, {"Qos1", 1}, {NULL, 0}};
static const ep_cfg_enum target_choices[] = {{"Mqtt", 0}, {NULL, 0}};
static const ep_cfg_enum auth_choices[] = {{"Anonymous", EP_CONN_AUTH_ANONYMOUS},
                                           {"UsernamePassword", EP_CONN_AUTH_USERNAME},
                                           {"Certificate", EP_CONN_AUTH_CERTIFICATE},
                                           {NULL, 0}};
static const ep_cfg_enum mode_choices[] = {
    {"None", 1}, {"Sign", 2}, {"SignAndEncrypt", 3}, {NULL, 0}};
static const ep_cfg_enum obs_choices[] = {{"None", 0},      {"Counter", 1}, {"Gauge", 2},
                                          {"Histogram", 3}, {"Log", 4},     {NULL, 0}};

typedef struct b_topic {
    char *path;
    int32_t retain;
} b_topic;

static const ep_cfg_field topic_fields[] = {{.name = "path",
                                             .type = EP_CFG_STRING,
                                             EP_CFG_AT(b_topic, path),
                                             .min = 1,
                                             .max = 1024,
                                             .flags = EP_CFG_REQUIRED,
                                             .help = "MQTT topic name."},
                                            {.name = "retain",
                                             .type = EP_CFG_ENUM,
                                             EP_CFG_AT(b_topic, retain),
                                             .choices = retain_choices,
                                             .def = "Never",
                                             .help = "Retain flag."},
                                            {0}};

typedef struct b_dest_conf {
    char *topic;
    int32_t retain, qos;
    uint32_t ttl;
} b_dest_conf;

static const ep_cfg_field dest_conf_fields[] = {{.name = "topic",
                                                 .type = EP_CFG_STRING,
                                                 EP_CFG_AT(b_dest_conf, topic),
                                                 .min = 1,
                                                 .max = 1024,
                                                 .flags = EP_CFG_REQUIRED,
                                                 .help = "MQTT topic name."},
                                                {.name = "retain",
                                                 .type = EP_CFG_ENUM,
                                                 EP_CFG_AT(b_dest_conf, retain),
                                                 .choices = retain_choices,
                                                 .def = "Never"},
                                                {.name = "qos",
                                                 .type = EP_CFG_ENUM,
                                                 EP_CFG_AT(b_dest_conf, qos),
                                                 .choices = qos_choices,
                                                 .def = "Qos1"},
                                                {.name = "ttl",
                                                 .type = EP_CFG_UINT,
                                                 EP_CFG_AT(b_dest_conf, ttl),
                                                 .help = "Message expiry in seconds."},
                                                {0}};

typedef struct b_dest {
    int32_t target;
    b_dest_conf configuration;
} b_dest;

static const ep_cfg_field dest_fields[] = {{.name = "target",
                                            .type = EP_CFG_ENUM,
                                            EP_CFG_AT(b_dest, target),
                                            .choices = target_choices,
                                            .flags = EP_CFG_REQUIRED},
                                           {.name = "configuration",
                                            .type = EP_CFG_MAP,
                                            EP_CFG_AT(b_dest, configuration),
                                            .sub = dest_conf_fields,
                                            .flags = EP_CFG_REQUIRED},
                                           {0}};
static const ep_cfg_field dest_elem = {
    .type = EP_CFG_MAP, .size = sizeof(b_dest), .sub = dest_fields};

/* dataset / event / point / default configuration (JSON objects) */
typedef struct b_settings {
    int64_t publishing, sampling, queue, kfc;
    struct {
        ep_cfg_list select; /* b_select */
        char *where;
    } filter;
} b_settings;

typedef struct b_select {
    char *browse_path, *type_def, *field_id;
} b_select;

static const ep_cfg_field select_fields[] = {
    {.name = "browsePath",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_select, browse_path),
     .min = 1,
     .max = 512,
     .flags = EP_CFG_REQUIRED},
    {.name = "typeDefinitionId", .type = EP_CFG_STRING, EP_CFG_AT(b_select, type_def)},
    {.name = "fieldId", .type = EP_CFG_STRING, EP_CFG_AT(b_select, field_id), .max = 256},
    {0}};
static const ep_cfg_field select_elem = {
    .type = EP_CFG_MAP, .size = sizeof(b_select), .sub = select_fields};

static const ep_cfg_field filter_fields[] = {{.name = "selectClauses",
                                              .type = EP_CFG_LIST,
                                              SUB_AT(b_settings, filter, select),
                                              .sub = &select_elem,
                                              .max = EP_CONN_MAX_SELECT},
                                             {.name = "whereClause",
                                              .type = EP_CFG_STRING,
                                              SUB_AT(b_settings, filter, where),
                                              .help = "Not supported yet; accepted and ignored."},
                                             {0}};

#define SETTING(key, member, lo, hi)                                                               \
    {                                                                                              \
        .name = key, .type = EP_CFG_INT, EP_CFG_AT(b_settings, member), .smin = lo, .smax = hi,    \
        .def = "-1"                                                                                \
    }

static const ep_cfg_field point_cfg_fields[] = {SETTING("samplingInterval", sampling, -1, 86400000),
                                                SETTING("queueSize", queue, -1, 100000),
                                                {0}};

static const ep_cfg_field dataset_cfg_fields[] = {
    SETTING("publishingInterval", publishing, -1, 86400000),
    SETTING("samplingInterval", sampling, -1, 86400000),
    SETTING("queueSize", queue, -1, 100000),
    SETTING("keyFrameCount", kfc, -1, 1000000),
    {0}};

static const ep_cfg_field event_cfg_fields[] = {
    SETTING("publishingInterval", publishing, -1, 86400000),
    SETTING("samplingInterval", sampling, -1, 86400000),
    SETTING("queueSize", queue, -1, 100000),
    {.name = "eventFilter",
     .type = EP_CFG_MAP,
     EP_CFG_AT(b_settings, filter),
     .sub = filter_fields},
    {0}};

/* additionalConfiguration.defaults uses other key names */
static const ep_cfg_field addl_defaults_fields[] = {{.name = "publishingIntervalMilliseconds",
                                                     .type = EP_CFG_INT,
                                                     EP_CFG_AT(b_settings, publishing),
                                                     .smin = 0,
                                                     .smax = 86400000,
                                                     .def = "1000"},
                                                    {.name = "samplingIntervalMilliseconds",
                                                     .type = EP_CFG_INT,
                                                     EP_CFG_AT(b_settings, sampling),
                                                     .smin = -1,
                                                     .smax = 86400000,
                                                     .def = "1000"},
                                                    {.name = "queueSize",
                                                     .type = EP_CFG_INT,
                                                     EP_CFG_AT(b_settings, queue),
                                                     .smin = 0,
                                                     .smax = 100000,
                                                     .def = "1"},
                                                    {.name = "keyFrameCount",
                                                     .type = EP_CFG_INT,
                                                     EP_CFG_AT(b_settings, kfc),
                                                     .smin = 0,
                                                     .smax = 1000000,
                                                     .def = "0"},
                                                    {0}};

typedef struct b_addl {
    char *application_name;
    uint32_t keepalive_ms;
    b_settings defaults;
    struct {
        uint32_t timeout, keepalive, reconnect;
        int64_t backoff;
        bool tracing;
    } session;
    struct {
        uint32_t max_items, lifetime;
    } subscription;
    struct {
        bool auto_accept;
        char *policy;
        int32_t mode;
    } security;
    bool discovery, shared, ha;
    ep_cfg_list asset_types;
} b_addl;

static const ep_cfg_field addl_session_fields[] = {
    {.name = "timeoutMilliseconds",
     .type = EP_CFG_UINT,
     SUB_AT(b_addl, session, timeout),
     .min = 1000,
     .max = 3600000,
     .def = "60000"},
    {.name = "keepAliveIntervalMilliseconds",
     .type = EP_CFG_UINT,
     SUB_AT(b_addl, session, keepalive),
     .min = 100,
     .max = 3600000,
     .def = "10000"},
    {.name = "reconnectPeriodMilliseconds",
     .type = EP_CFG_UINT,
     SUB_AT(b_addl, session, reconnect),
     .min = 100,
     .max = 3600000,
     .def = "2000"},
    {.name = "reconnectExponentialBackOffMilliseconds",
     .type = EP_CFG_INT,
     SUB_AT(b_addl, session, backoff),
     .smin = -1,
     .smax = 3600000,
     .def = "10000"},
    {.name = "enableTracingHeaders",
     .type = EP_CFG_BOOL,
     SUB_AT(b_addl, session, tracing),
     .def = "false"},
    {0}};

static const ep_cfg_field addl_sub_fields[] = {{.name = "maxItems",
                                                .type = EP_CFG_UINT,
                                                SUB_AT(b_addl, subscription, max_items),
                                                .min = 1,
                                                .max = EP_CONN_MAX_ITEMS_PER_SUB,
                                                .def = "1000"},
                                               {.name = "lifeTimeMilliseconds",
                                                .type = EP_CFG_UINT,
                                                SUB_AT(b_addl, subscription, lifetime),
                                                .min = 1000,
                                                .max = 3600000,
                                                .def = "60000"},
                                               {0}};

static const ep_cfg_field addl_sec_fields[] = {
    {.name = "autoAcceptUntrustedServerCertificates",
     .type = EP_CFG_BOOL,
     SUB_AT(b_addl, security, auto_accept),
     .def = "false"},
    {.name = "securityPolicy",
     .type = EP_CFG_STRING,
     SUB_AT(b_addl, security, policy),
     .def = "http://opcfoundation.org/UA/SecurityPolicy#None",
     .min = 1,
     .max = 128},
    {.name = "securityMode",
     .type = EP_CFG_ENUM,
     SUB_AT(b_addl, security, mode),
     .choices = mode_choices,
     .def = "None"},
    {0}};

static const ep_cfg_field str_elem = {.type = EP_CFG_STRING, .size = sizeof(char *)};

static const ep_cfg_field addl_fields[] = {
    {.name = "applicationName",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_addl, application_name),
     .max = 256},
    {.name = "keepAliveMilliseconds",
     .type = EP_CFG_UINT,
     EP_CFG_AT(b_addl, keepalive_ms),
     .min = 100,
     .max = 3600000,
     .def = "10000"},
    {.name = "defaults",
     .type = EP_CFG_MAP,
     EP_CFG_AT(b_addl, defaults),
     .sub = addl_defaults_fields},
    {.name = "session", .type = EP_CFG_MAP, EP_CFG_AT(b_addl, session), .sub = addl_session_fields},
    {.name = "subscription",
     .type = EP_CFG_MAP,
     EP_CFG_AT(b_addl, subscription),
     .sub = addl_sub_fields},
    {.name = "security", .type = EP_CFG_MAP, EP_CFG_AT(b_addl, security), .sub = addl_sec_fields},
    {.name = "runAssetDiscovery",
     .type = EP_CFG_BOOL,
     EP_CFG_AT(b_addl, discovery),
     .def = "false"},
    {.name = "assetTypes",
     .type = EP_CFG_LIST,
     EP_CFG_AT(b_addl, asset_types),
     .sub = &str_elem,
     .max = 1000},
    {.name = "shared", .type = EP_CFG_BOOL, EP_CFG_AT(b_addl, shared), .def = "false"},
    {.name = "highAvailability", .type = EP_CFG_BOOL, EP_CFG_AT(b_addl, ha), .def = "false"},
    {0}};

typedef struct b_profile {
    char *target_address, *profile_type, *uuid, *discovered_ref;
    struct {
        int32_t method;
        struct {
            char *user, *pass;
        } up;
        struct {
            char *cert, *key;
        } x509;
    } auth;
} b_profile;

typedef struct b_up {
    char *user, *pass;
} b_up;
typedef struct b_x509 {
    char *cert, *key;
} b_x509;

static const ep_cfg_field up_fields[] = {{.name = "usernameSecretName",
                                          .type = EP_CFG_STRING,
                                          EP_CFG_AT(b_up, user),
                                          .min = 1,
                                          .max = 255,
                                          .flags = EP_CFG_REQUIRED},
                                         {.name = "passwordSecretName",
                                          .type = EP_CFG_STRING,
                                          EP_CFG_AT(b_up, pass),
                                          .min = 1,
                                          .max = 255,
                                          .flags = EP_CFG_REQUIRED},
                                         {0}};
static const ep_cfg_field x509_fields[] = {
    {.name = "certificateSecretName",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_x509, cert),
     .min = 1,
     .max = 255,
     .flags = EP_CFG_REQUIRED},
    {.name = "keySecretName", .type = EP_CFG_STRING, EP_CFG_AT(b_x509, key), .min = 1, .max = 255},
    {0}};

typedef struct b_auth {
    int32_t method;
    b_up up;
    b_x509 x509;
} b_auth;

static const ep_cfg_field auth_fields[] = {
    {.name = "method",
     .type = EP_CFG_ENUM,
     EP_CFG_AT(b_auth, method),
     .choices = auth_choices,
     .def = "Anonymous"},
    {.name = "usernamePasswordCredentials",
     .type = EP_CFG_MAP,
     EP_CFG_AT(b_auth, up),
     .sub = up_fields},
    {.name = "x509Credentials", .type = EP_CFG_MAP, EP_CFG_AT(b_auth, x509), .sub = x509_fields},
    {0}};

static const ep_cfg_field profile_fields[] = {
    {.name = "targetAddress",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_profile, target_address),
     .min = 1,
     .max = 1024,
     .flags = EP_CFG_REQUIRED,
     .help = "opc.tcp://HOST:PORT[/PATH] of the OPC UA server."},
    {.name = "endpointProfileType",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_profile, profile_type),
     .def = "Microsoft.OpcUa"},
    {.name = "uuid", .type = EP_CFG_STRING, EP_CFG_AT(b_profile, uuid)},
    {.name = "discoveredAssetEndpointProfileRef",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_profile, discovered_ref)},
    {.name = "authentication", .type = EP_CFG_MAP, EP_CFG_AT(b_profile, auth), .sub = auth_fields},
    {0}};

typedef struct b_asset {
    char *profile, *external_id, *display_name, *description, *manufacturer, *manufacturer_uri,
        *model, *product_code, *hw_rev, *sw_rev, *doc_uri, *serial, *uuid;
    bool enabled;
    uint64_t version;
    ep_cfg_list discovered; /* char * */
    b_topic default_topic;
    ep_cfg_list ds_dest, ev_dest; /* b_dest */
} b_asset;

static const ep_cfg_field asset_fields[] = {
    {.name = "assetEndpointProfileRef",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_asset, profile),
     .min = 1,
     .max = 253,
     .flags = EP_CFG_REQUIRED},
    {.name = "enabled", .type = EP_CFG_BOOL, EP_CFG_AT(b_asset, enabled), .def = "true"},
    {.name = "externalAssetId", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, external_id), .max = 256},
    {.name = "displayName", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, display_name)},
    {.name = "description", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, description)},
    {.name = "manufacturer", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, manufacturer)},
    {.name = "manufacturerUri", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, manufacturer_uri)},
    {.name = "model", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, model)},
    {.name = "productCode", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, product_code)},
    {.name = "hardwareRevision", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, hw_rev)},
    {.name = "softwareRevision", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, sw_rev)},
    {.name = "documentationUri", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, doc_uri)},
    {.name = "serialNumber", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, serial)},
    {.name = "uuid", .type = EP_CFG_STRING, EP_CFG_AT(b_asset, uuid)},
    {.name = "version", .type = EP_CFG_UINT, EP_CFG_AT(b_asset, version)},
    {.name = "discoveredAssetRefs",
     .type = EP_CFG_LIST,
     EP_CFG_AT(b_asset, discovered),
     .sub = &str_elem,
     .max = 1000},
    {.name = "defaultTopic",
     .type = EP_CFG_MAP,
     EP_CFG_AT(b_asset, default_topic),
     .sub = topic_fields},
    {.name = "defaultDatasetsDestinations",
     .type = EP_CFG_LIST,
     EP_CFG_AT(b_asset, ds_dest),
     .sub = &dest_elem,
     .max = 1},
    {.name = "defaultEventsDestinations",
     .type = EP_CFG_LIST,
     EP_CFG_AT(b_asset, ev_dest),
     .sub = &dest_elem,
     .max = 1},
    {0}};

typedef struct b_elem {
    char *name, *source, *type_ref; /* source: dataSource or eventNotifier */
    int32_t obs;
    b_topic topic;
    ep_cfg_list dest; /* b_dest */
} b_elem;

static const ep_cfg_field dataset_fields[] = {
    {.name = "name",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_elem, name),
     .min = 1,
     .max = 256,
     .flags = EP_CFG_REQUIRED},
    {.name = "dataSource",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_elem, source),
     .min = 1,
     .max = 4096,
     .help = "Start node for the data points' browse paths."},
    {.name = "typeRef", .type = EP_CFG_STRING, EP_CFG_AT(b_elem, type_ref)},
    {.name = "topic", .type = EP_CFG_MAP, EP_CFG_AT(b_elem, topic), .sub = topic_fields},
    {.name = "destinations",
     .type = EP_CFG_LIST,
     EP_CFG_AT(b_elem, dest),
     .sub = &dest_elem,
     .max = 1},
    {0}};

static const ep_cfg_field point_fields[] = {
    {.name = "name", .type = EP_CFG_STRING, EP_CFG_AT(b_elem, name), .min = 1, .max = 256},
    {.name = "dataSource",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_elem, source),
     .min = 1,
     .max = 4096,
     .flags = EP_CFG_REQUIRED,
     .help = "NodeId (ns=2;s=X) or browse path (/2:Plant/2:Oven1)."},
    {.name = "typeRef", .type = EP_CFG_STRING, EP_CFG_AT(b_elem, type_ref)},
    {.name = "observabilityMode",
     .type = EP_CFG_ENUM,
     EP_CFG_AT(b_elem, obs),
     .choices = obs_choices,
     .def = "None"},
    {0}};

static const ep_cfg_field event_fields[] = {
    {.name = "name",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_elem, name),
     .min = 1,
     .max = 256,
     .flags = EP_CFG_REQUIRED},
    {.name = "eventNotifier",
     .type = EP_CFG_STRING,
     EP_CFG_AT(b_elem, source),
     .min = 1,
     .max = 4096,
     .flags = EP_CFG_REQUIRED},
    {.name = "typeRef", .type = EP_CFG_STRING, EP_CFG_AT(b_elem, type_ref)},
    {.name = "observabilityMode",
     .type = EP_CFG_ENUM,
     EP_CFG_AT(b_elem, obs),
     .choices = obs_choices,
     .def = "None"},
    {.name = "topic", .type = EP_CFG_MAP, EP_CFG_AT(b_elem, topic), .sub = topic_fields},
    {.name = "destinations",
     .type = EP_CFG_LIST,
     EP_CFG_AT(b_elem, dest),
     .sub = &dest_elem,
     .max = 1},
    {0}};

/* the one-field tables used to clear the per-element structs */
static const ep_cfg_field b_settings_wrap[] = {{.name = "x",
                                                .type = EP_CFG_MAP,
                                                .off = 0,
                                                .size = sizeof(b_settings),
                                                .sub = event_cfg_fields},
                                               {0}};

/* ------------------------------------------------------------------ */
/* conversion                                                          */

static char *take(char **p)
{
    char *s = *p;
    *p = NULL;
    return s;
}

static void settings_from(ep_conn_settings *out, const b_settings *b)
{
    out->publishing_ms = b->publishing;
    out->sampling_ms = b->sampling;
    out->queue_size = b->queue;
    out->key_frame_count = b->kfc;
}

static void settings_unset(ep_conn_settings *s)
{
    s->publishing_ms = s->sampling_ms = s->queue_size = s->key_frame_count = -1;
}

/* dest_from picks topic{path,retain} or destinations[0] */
static void dest_from(ep_conn_dest *d, b_topic *t, const ep_cfg_node *tn, ep_cfg_list *dl)
{
    memset(d, 0, sizeof(*d));
    d->qos = 1;
    if (t->path) {
        d->topic = take(&t->path);
        d->retain = t->retain == 1;
        d->has_retain = tn != NULL && ep_cfg_node_get(tn, "retain") != NULL;
    } else if (dl->count > 0) {
        b_dest *bd = EP_CFG_LIST_AT(*dl, b_dest, 0);
        d->topic = take(&bd->configuration.topic);
        d->retain = bd->configuration.retain == 1;
        d->qos = (uint8_t)bd->configuration.qos;
        d->ttl_s = bd->configuration.ttl;
        d->has_retain = d->has_qos = true;
    }
}

static bool topic_name_ok(const char *t)
{
    if (t == NULL || t[0] == 0 || strlen(t) > 1024)
        return false;
    if (t[0] == '$')
        return false;
    for (const char *p = t; *p; p++)
        if (*p == '+' || *p == '#')
            return false;
    return true;
}

static void check_dest(const ep_conn_dest *d, const ep_cfg_node *n, const char *key,
                       ep_cfg_errs *errs)
{
    if (d->topic && !topic_name_ok(d->topic)) {
        const ep_cfg_node *k = n ? ep_cfg_node_get(n, key) : NULL;
        ep_cfg_errs_add(errs, k ? k : n,
                        "expected an MQTT topic name without wildcards and not "
                        "starting with '$', got \"%.80s\"",
                        d->topic);
    }
}

static const char *policy_short(const char *uri)
{
    static const char prefix[] = "http://opcfoundation.org/UA/SecurityPolicy#";
    if (strncmp(uri, prefix, sizeof(prefix) - 1) == 0)
        return uri + sizeof(prefix) - 1;
    return uri;
}

static bool is_node_text(const char *s)
{
    /* a NodeId: i=, ns=N;x=, or a plain number; checked loosely here
     * (the connector parses it and reports bad ones per point) */
    if (s == NULL || *s == 0)
        return false;
    if (s[0] == '/')
        return true; /* browse path */
    if (strncmp(s, "ns=", 3) == 0)
        return strchr(s, ';') != NULL && strchr(s, '=') != NULL;
    if (s[1] == '=' && strchr("isgb", s[0]))
        return true;
    if (strncmp(s, "nsu=", 4) == 0)
        return strchr(s, ';') != NULL;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

static void check_node(const char *s, const ep_cfg_node *parent, const char *key, bool allow_path,
                       ep_cfg_errs *errs)
{
    if (s == NULL)
        return;
    if (is_node_text(s) && (allow_path || s[0] != '/'))
        return;
    const ep_cfg_node *k = ep_cfg_node_get(parent, key);
    ep_cfg_errs_add(errs, k ? k : parent,
                    allow_path ? "expected a NodeId (ns=2;s=Name, i=85) or a browse "
                                 "path (/2:Plant/2:Oven1), got \"%.80s\""
                               : "expected a NodeId (ns=2;s=Name, i=85), got \"%.80s\"",
                    s);
}

/* ------------------------------------------------------------------ */
/* profile                                                             */

static void parse_profile(const ep_cfg_node *spec, ep_conn_profile *p, ep_cfg_errs *errs)
{
    static const char *const skip[] = {"additionalConfiguration", NULL};
    b_profile bp;
    memset(&bp, 0, sizeof(bp));
    if (bind_except(profile_fields, spec, &bp, errs, skip) == EP_EOK) {
        p->target_address = take(&bp.target_address);
        p->profile_type = take(&bp.profile_type);
        p->auth_method = bp.auth.method;
        p->username_secret = take(&bp.auth.up.user);
        p->password_secret = take(&bp.auth.up.pass);
        p->cert_secret = take(&bp.auth.x509.cert);
        p->key_secret = take(&bp.auth.x509.key);
        const ep_cfg_node *an = ep_cfg_node_get(spec, "authentication");
        if (strncmp(p->target_address, "opc.tcp://", 10) != 0 || p->target_address[10] == 0)
            ep_cfg_errs_add(errs, ep_cfg_node_get(spec, "targetAddress"),
                            "expected an opc.tcp://HOST:PORT address, got \"%.80s\"",
                            p->target_address);
        if (strcmp(p->profile_type, "Microsoft.OpcUa") != 0 &&
            strcmp(p->profile_type, "OpcUa") != 0)
            ep_cfg_errs_add(errs, ep_cfg_node_get(spec, "endpointProfileType"),
                            "expected Microsoft.OpcUa (the only connector type), "
                            "got \"%.80s\"",
                            p->profile_type);
        if (p->auth_method == EP_CONN_AUTH_USERNAME && p->username_secret == NULL)
            ep_cfg_errs_add(errs, an, "method UsernamePassword needs usernamePasswordCredentials");
        if (p->auth_method == EP_CONN_AUTH_CERTIFICATE && p->cert_secret == NULL)
            ep_cfg_errs_add(errs, an, "method Certificate needs x509Credentials");
        const char *secrets[] = {p->username_secret, p->password_secret, p->cert_secret,
                                 p->key_secret};
        for (size_t i = 0; i < 4; i++)
            if (secrets[i] && (strchr(secrets[i], '/') || secrets[i][0] == '.'))
                ep_cfg_errs_add(errs, an,
                                "expected a secret name (a file name in the "
                                "connector's secrets directory, without '/'), got "
                                "\"%.80s\"",
                                secrets[i]);
    }
    ep_cfg_clear(profile_fields, &bp);

    b_addl ba;
    memset(&ba, 0, sizeof(ba));
    const ep_cfg_node *root = NULL;
    ep_cfg_tree *tree = NULL;
    const ep_cfg_node *acn = ep_cfg_node_get(spec, "additionalConfiguration");
    if (bind_config(addl_fields, acn, &ba, errs, &root, &tree) == EP_EOK) {
        p->application_name = take(&ba.application_name);
        p->keepalive_ms = ba.keepalive_ms;
        settings_from(&p->defaults, &ba.defaults);
        p->session_timeout_ms = ba.session.timeout;
        p->reconnect_period_ms = ba.session.reconnect;
        p->reconnect_backoff_ms = ba.session.backoff;
        if (ba.session.keepalive)
            p->keepalive_ms = ba.session.keepalive;
        p->max_items = ba.subscription.max_items;
        p->lifetime_ms = ba.subscription.lifetime;
        p->auto_accept = ba.security.auto_accept;
        p->security_mode = ba.security.mode;
        p->shared = ba.shared;
        const char *pol = policy_short(ba.security.policy);
        static const char *const ok[] = {"None", "Basic256Sha256", "Aes128_Sha256_RsaOaep",
                                         "Aes256_Sha256_RsaPss", NULL};
        bool found = false;
        for (size_t i = 0; ok[i]; i++)
            found |= strcmp(pol, ok[i]) == 0;
        const ep_cfg_node *sec = root ? ep_cfg_node_get(root, "security") : NULL;
        const ep_cfg_node *polnode = sec ? ep_cfg_node_get(sec, "securityPolicy") : NULL;
        const ep_cfg_node *where = polnode ? polnode : acn;
        if (!found)
            ep_cfg_errs_add(errs, where,
                            "expected a security policy None, Basic256Sha256, "
                            "Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss (short name "
                            "or http://opcfoundation.org/UA/SecurityPolicy# URI), got "
                            "\"%.80s\"%s",
                            pol,
                            strcmp(pol, "Basic128Rsa15") == 0 || strcmp(pol, "Basic256") == 0
                                ? " (deprecated by OPC UA, not offered)"
                                : "");
        else if ((strcmp(pol, "None") == 0) != (p->security_mode == 1))
            ep_cfg_errs_add(errs, where, "securityPolicy %s goes with securityMode %s", pol,
                            strcmp(pol, "None") == 0 ? "None" : "Sign or SignAndEncrypt");
        p->security_policy = strdup(pol);
        if (ba.ha)
            ep_cfg_errs_warn(errs, acn, "highAvailability is not supported yet; ignored");
        if (ba.discovery)
            ep_cfg_errs_warn(errs, acn, "runAssetDiscovery is not supported yet; ignored");
    }
    ep_cfg_clear(addl_fields, &ba);
    ep_cfg_tree_free(tree);
}

/* ------------------------------------------------------------------ */
/* asset                                                               */

static bool list_node(const ep_cfg_node *n, ep_cfg_errs *errs, size_t max)
{
    if (n == NULL || (n->kind == EP_CFG_NODE_SCALAR && n->is_null))
        return false;
    if (n->kind != EP_CFG_NODE_LIST) {
        ep_cfg_errs_add(errs, n, "expected a list");
        return false;
    }
    if (n->count > max) {
        ep_cfg_errs_add(errs, n, "expected at most %zu items, got %zu", max, n->count);
        return false;
    }
    return n->count > 0;
}

static void parse_settings(const ep_cfg_field *t, const ep_cfg_node *n, ep_conn_settings *out,
                           ep_cfg_errs *errs, b_settings *keep)
{
    b_settings b;
    memset(&b, 0, sizeof(b));
    const ep_cfg_node *root = NULL;
    ep_cfg_tree *tree = NULL;
    settings_unset(out);
    if (bind_config(t, n, &b, errs, &root, &tree) == EP_EOK) {
        settings_from(out, &b);
        if (keep) {
            *keep = b;
            memset(&b, 0, sizeof(b));
        }
    }
    ep_cfg_clear(b_settings_wrap, &b);
    ep_cfg_tree_free(tree);
}

/* One kind of list element of an asset: datasets, their data points and
 * events are bound by the same walk (elems_parse), which this table
 * drives. Offsets are into the output element (ep_conn_dataset, ...). */
typedef struct elem_kind {
    const char *list_key;       /* the list's key, for messages */
    const char *scope;          /* what names must be unique in, or NULL */
    const char *unique_what;    /* "name", "dataset name" */
    const char *not_map;        /* message for an item that is not a map */
    const ep_cfg_field *fields; /* binding table (into b_elem) */
    const char *const *skip;    /* keys bound separately */
    size_t max, size;           /* items at most; sizeof an element */
    size_t name_off, source_off, cfg_off, dest_off;
    const char *source_key;
    bool source_path; /* the source may be a browse path */
    bool has_dest;    /* topic / destinations */
    const char *cfg_key;
    const ep_cfg_field *cfg_fields;
    /* the rest of an element (sub-lists, select clauses); may be NULL */
    void (*finish)(void *el, const ep_cfg_node *it, b_settings *cfg, ep_cfg_errs *errs);
} elem_kind;

#define ELEM_STR(el, off) (*(char **)((char *)(el) + (off)))

/* elem_unique reports element i (item it) when an earlier one has its
 * name; pos holds the earlier elements' positions in the list. */
static void elem_unique(const elem_kind *k, const char *arr, size_t i, const size_t *pos,
                        const ep_cfg_node *it, ep_cfg_errs *errs)
{
    const char *name = ELEM_STR(arr + i * k->size, k->name_off);
    for (size_t j = 0; k->scope && name && j < i; j++) {
        const char *other = ELEM_STR(arr + j * k->size, k->name_off);
        if (other && strcmp(other, name) == 0) {
            const ep_cfg_node *nn = ep_cfg_node_get(it, "name");
            ep_cfg_errs_add(errs, nn ? nn : it,
                            "expected a %s unique in the %s, \"%.80s\" is used by %s[%zu]",
                            k->unique_what, k->scope, name, k->list_key, pos[j]);
            return;
        }
    }
}

/* elem_fill moves what was bound for item it into element el. */
static void elem_fill(const elem_kind *k, void *el, b_elem *b, const ep_cfg_node *it,
                      ep_cfg_errs *errs)
{
    char *source = take(&b->source);
    ELEM_STR(el, k->source_off) = source;
    /* a data point without a name is named by its source (required) */
    ELEM_STR(el, k->name_off) = b->name || source == NULL ? take(&b->name) : strdup(source);
    check_node(source, it, k->source_key, k->source_path, errs);
    if (k->has_dest) {
        ep_conn_dest *d = (ep_conn_dest *)((char *)el + k->dest_off);
        const ep_cfg_node *tn = ep_cfg_node_get(it, "topic");
        dest_from(d, &b->topic, tn, &b->dest);
        check_dest(d, it, tn ? "topic" : "destinations", errs);
    }
    b_settings keep;
    memset(&keep, 0, sizeof(keep));
    parse_settings(k->cfg_fields, ep_cfg_node_get(it, k->cfg_key),
                   (ep_conn_settings *)((char *)el + k->cfg_off), errs, &keep);
    if (k->finish)
        k->finish(el, it, &keep, errs);
    ep_cfg_clear(b_settings_wrap, &keep);
}

/* elems_parse binds every item of list as a k; returns the array (NULL
 * when there is none) and its length in *n. Items that are refused are
 * left out, with their errors. */
static void *elems_parse(const elem_kind *k, const ep_cfg_node *list, size_t *n, ep_cfg_errs *errs)
{
    *n = 0;
    if (!list_node(list, errs, k->max))
        return NULL;
    char *arr = calloc(list->count, k->size);
    size_t *pos = calloc(list->count, sizeof(*pos));
    size_t idx = 0;
    if (arr == NULL || pos == NULL) {
        free(arr);
        free(pos);
        return NULL;
    }
    for (const ep_cfg_node *it = list->first; it; it = it->next, idx++) {
        if (it->kind != EP_CFG_NODE_MAP) {
            ep_cfg_errs_add(errs, it, "%s", k->not_map);
            continue;
        }
        b_elem b;
        memset(&b, 0, sizeof(b));
        if (bind_except(k->fields, it, &b, errs, k->skip) == EP_EOK) {
            pos[*n] = idx;
            elem_fill(k, arr + *n * k->size, &b, it, errs);
            elem_unique(k, arr, *n, pos, it, errs);
            (*n)++;
        }
        ep_cfg_clear(k->fields, &b);
    }
    free(pos);
    return arr;
}

static const char *const point_skip[] = {"dataPointConfiguration", NULL};
static const elem_kind point_kind = {
    .list_key = "dataPoints",
    .scope = "dataset",
    .unique_what = "name",
    .not_map = "expected a map with name and dataSource",
    .fields = point_fields,
    .skip = point_skip,
    .max = EP_CONN_MAX_POINTS,
    .size = sizeof(ep_conn_point),
    .name_off = offsetof(ep_conn_point, name),
    .source_off = offsetof(ep_conn_point, source),
    .cfg_off = offsetof(ep_conn_point, cfg),
    .source_key = "dataSource",
    .source_path = true,
    .cfg_key = "dataPointConfiguration",
    .cfg_fields = point_cfg_fields,
};

static void dataset_finish(void *el, const ep_cfg_node *it, b_settings *cfg, ep_cfg_errs *errs)
{
    ep_conn_dataset *ds = el;
    (void)cfg;
    const ep_cfg_node *pl = ep_cfg_node_get(it, "dataPoints");
    if (pl == NULL)
        ep_cfg_errs_add(errs, it, "missing required key 'dataPoints'");
    else
        ds->points = elems_parse(&point_kind, pl, &ds->npoints, errs);
}

static const char *const dataset_skip[] = {"dataPoints", "datasetConfiguration", NULL};
static const elem_kind dataset_kind = {
    .list_key = "datasets",
    .scope = "asset",
    .unique_what = "dataset name",
    .not_map = "expected a map with name and dataPoints",
    .fields = dataset_fields,
    .skip = dataset_skip,
    .max = EP_CONN_MAX_DATASETS,
    .size = sizeof(ep_conn_dataset),
    .name_off = offsetof(ep_conn_dataset, name),
    .source_off = offsetof(ep_conn_dataset, start_node),
    .cfg_off = offsetof(ep_conn_dataset, cfg),
    .dest_off = offsetof(ep_conn_dataset, dest),
    .source_key = "dataSource",
    .has_dest = true,
    .cfg_key = "datasetConfiguration",
    .cfg_fields = dataset_cfg_fields,
    .finish = dataset_finish,
};

/* select clauses: browse path without leading '/', output name fieldId or
 * the last path element without its namespace */
static void event_finish(void *el, const ep_cfg_node *it, b_settings *cfg, ep_cfg_errs *errs)
{
    ep_conn_event *ev = el;
    (void)it;
    (void)errs;
    if (cfg->filter.select.count == 0)
        return;
    ev->select = calloc(cfg->filter.select.count, sizeof(*ev->select));
    for (size_t i = 0; ev->select && i < cfg->filter.select.count; i++) {
        b_select *s = EP_CFG_LIST_AT(cfg->filter.select, b_select, i);
        ep_conn_select *o = &ev->select[ev->nselect++];
        const char *bp = s->browse_path;
        while (*bp == '/')
            bp++;
        o->browse_path = strdup(bp);
        o->type_def = take(&s->type_def);
        if (s->field_id && s->field_id[0]) {
            o->field = take(&s->field_id);
        } else {
            const char *last = strrchr(bp, '/');
            last = last ? last + 1 : bp;
            const char *colon = strchr(last, ':');
            o->field = strdup(colon ? colon + 1 : last);
        }
    }
}

static const char *const event_skip[] = {"eventConfiguration", NULL};
static const elem_kind event_kind = {
    .list_key = "events",
    .scope = NULL, /* each event has its own subscription and topic */
    .not_map = "expected a map with name and eventNotifier",
    .fields = event_fields,
    .skip = event_skip,
    .max = EP_CONN_MAX_EVENTS,
    .size = sizeof(ep_conn_event),
    .name_off = offsetof(ep_conn_event, name),
    .source_off = offsetof(ep_conn_event, notifier),
    .cfg_off = offsetof(ep_conn_event, cfg),
    .dest_off = offsetof(ep_conn_event, dest),
    .source_key = "eventNotifier",
    .has_dest = true,
    .cfg_key = "eventConfiguration",
    .cfg_fields = event_cfg_fields,
    .finish = event_finish,
};

static void parse_asset(const ep_cfg_node *spec, ep_conn_asset *a, ep_cfg_errs *errs)
{
    static const char *const skip[] = {"attributes",
                                       "datasets",
                                       "events",
                                       "defaultDatasetsConfiguration",
                                       "defaultEventsConfiguration",
                                       NULL};
    b_asset b;
    memset(&b, 0, sizeof(b));
    settings_unset(&a->ds_defaults);
    settings_unset(&a->ev_defaults);
    if (bind_except(asset_fields, spec, &b, errs, skip) == EP_EOK) {
        a->profile = take(&b.profile);
        a->enabled = b.enabled;
        a->external_id = take(&b.external_id);
        a->display_name = take(&b.display_name);
        a->description = take(&b.description);
        a->manufacturer = take(&b.manufacturer);
        a->model = take(&b.model);
        a->serial_number = take(&b.serial);
        dest_from(&a->default_dest, &b.default_topic, ep_cfg_node_get(spec, "defaultTopic"),
                  &b.ds_dest);
        check_dest(&a->default_dest, spec, "defaultTopic", errs);
        if (!ep_conn_name_valid(a->profile))
            ep_cfg_errs_add(errs, ep_cfg_node_get(spec, "assetEndpointProfileRef"),
                            "expected the name of an AssetEndpointProfile (lowercase "
                            "letters, digits, '-', '.'), got \"%.80s\"",
                            a->profile);
    }
    ep_cfg_clear(asset_fields, &b);
    const ep_cfg_node *attrs = ep_cfg_node_get(spec, "attributes");
    if (attrs && attrs->kind != EP_CFG_NODE_MAP &&
        !(attrs->kind == EP_CFG_NODE_SCALAR && attrs->is_null))
        ep_cfg_errs_add(errs, attrs, "expected a map of names to values");
    parse_settings(dataset_cfg_fields, ep_cfg_node_get(spec, "defaultDatasetsConfiguration"),
                   &a->ds_defaults, errs, NULL);
    parse_settings(dataset_cfg_fields, ep_cfg_node_get(spec, "defaultEventsConfiguration"),
                   &a->ev_defaults, errs, NULL);
    a->datasets =
        elems_parse(&dataset_kind, ep_cfg_node_get(spec, "datasets"), &a->ndatasets, errs);
    a->events = elems_parse(&event_kind, ep_cfg_node_get(spec, "events"), &a->nevents, errs);
    if (a->ndatasets == 0 && a->nevents == 0 && errs->nerr == 0)
        ep_cfg_errs_add(errs, spec, "expected at least one dataset or event");
}

/* ------------------------------------------------------------------ */
/* documents                                                           */

static void profile_free(ep_conn_profile *p)
{
    free(p->target_address);
    free(p->profile_type);
    free(p->username_secret);
    free(p->password_secret);
    free(p->cert_secret);
    free(p->key_secret);
    free(p->application_name);
    free(p->security_policy);
}

static void dest_free(ep_conn_dest *d) { free(d->topic); }

static void asset_free(ep_conn_asset *a)
{
    free(a->profile);
    free(a->external_id);
    free(a->display_name);
    free(a->description);
    free(a->manufacturer);
    free(a->model);
    free(a->serial_number);
    dest_free(&a->default_dest);
    for (size_t i = 0; i < a->ndatasets; i++) {
        ep_conn_dataset *ds = &a->datasets[i];
        free(ds->name);
        free(ds->start_node);
        dest_free(&ds->dest);
        for (size_t j = 0; j < ds->npoints; j++) {
            free(ds->points[j].name);
            free(ds->points[j].source);
        }
        free(ds->points);
    }
    free(a->datasets);
    for (size_t i = 0; i < a->nevents; i++) {
        ep_conn_event *ev = &a->events[i];
        free(ev->name);
        free(ev->notifier);
        dest_free(&ev->dest);
        for (size_t j = 0; j < ev->nselect; j++) {
            free(ev->select[j].browse_path);
            free(ev->select[j].field);
            free(ev->select[j].type_def);
        }
        free(ev->select);
    }
    free(a->events);
}

void ep_conn_res_free(ep_conn_res *r)
{
    if (r == NULL)
        return;
    if (r->kind == EP_CONN_KIND_PROFILE)
        profile_free(&r->u.profile);
    else if (r->kind == EP_CONN_KIND_ASSET)
        asset_free(&r->u.asset);
    free(r->name);
    free(r->text);
    free(r);
}

/* copy_errs copies the messages with the resource prefix, each on one
 * line: keys and values quoted in messages may hold line breaks and other
 * control characters, which would break the status message and logs. */
static void copy_errs(ep_cfg_errs *dst, const ep_cfg_errs *src, const char *prefix)
{
    for (size_t i = 0; i < src->count; i++) {
        const ep_cfg_msg *m = &src->items[i];
        char line[1200];
        snprintf(line, sizeof(line), "%s%s", prefix, m->text);
        for (char *p = line; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
        if (m->warning)
            ep_cfg_errs_warn(dst, NULL, "%s", line);
        else
            ep_cfg_errs_add(dst, NULL, "%s", line);
    }
    if (src->dropped)
        ep_cfg_errs_add(dst, NULL, "%s%zu more errors not shown", prefix, src->dropped);
}

ep_err ep_conn_res_parse(const char *label, unsigned first_line, const char *data, size_t len,
                         ep_conn_res **out, ep_cfg_errs *errs)
{
    ep_cfg_errs local = {0};
    ep_cfg_tree *tree = NULL;
    ep_conn_res *r = NULL;
    char prefix[128] = "";
    ep_err rc;

    if (first_line < 1)
        first_line = 1;
    /* keep line numbers of a document inside a multi-document file: pad
     * with the newlines that precede it */
    size_t pad = first_line - 1;
    if (pad > (1u << 20) || len > (1u << 20)) {
        ep_cfg_errs_add(errs, NULL, "%s: document too large (at most 1 MiB)", label);
        return EP_ECONFIG;
    }
    char *buf = malloc(pad + len + 1);
    if (buf == NULL)
        return EP_ENOMEM;
    memset(buf, '\n', pad);
    memcpy(buf + pad, data, len);
    buf[pad + len] = 0;
    ep_cfg_limits lim = {.max_bytes = (1u << 20) * 2, .max_nodes = 1000000};
    rc = ep_cfg_parse_str(label, buf, pad + len, &lim, &tree, &local);
    free(buf);
    if (rc != EP_EOK)
        goto done;
    const ep_cfg_node *root = ep_cfg_tree_root(tree);
    if (root == NULL || root->kind != EP_CFG_NODE_MAP) {
        ep_cfg_errs_add(&local, root,
                        "expected a resource: a map with kind, metadata "
                        "and spec");
        rc = EP_ECONFIG;
        goto done;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        rc = EP_ENOMEM;
        goto done;
    }
    const ep_cfg_node *kn = ep_cfg_node_get(root, "kind");
    const ep_cfg_node *md = ep_cfg_node_get(root, "metadata");
    const ep_cfg_node *nm = md ? ep_cfg_node_get(md, "name") : NULL;
    const ep_cfg_node *spec = ep_cfg_node_get(root, "spec");
    if (kn && kn->kind == EP_CFG_NODE_SCALAR) {
        if (strcmp(kn->value, "AssetEndpointProfile") == 0 || strcmp(kn->value, "Device") == 0)
            r->kind = EP_CONN_KIND_PROFILE;
        else if (strcmp(kn->value, "Asset") == 0)
            r->kind = EP_CONN_KIND_ASSET;
    }
    if (r->kind == EP_CONN_KIND_NONE || (kn && strcmp(kn->value, "Device") == 0)) {
        ep_cfg_errs_add(&local, kn ? kn : root,
                        "expected kind AssetEndpointProfile or Asset%s%.60s%s",
                        kn ? ", got \"" : "", kn && kn->value ? kn->value : "", kn ? "\"" : "");
        r->kind = EP_CONN_KIND_NONE;
        rc = EP_ECONFIG;
        goto done;
    }
    if (nm && nm->kind == EP_CFG_NODE_SCALAR && !nm->is_null)
        r->name = strdup(nm->value);
    snprintf(prefix, sizeof(prefix), "%s %.63s: ", ep_conn_kind_name(r->kind),
             r->name ? r->name : "(no name)");
    if (md == NULL || md->kind != EP_CFG_NODE_MAP)
        ep_cfg_errs_add(&local, md ? md : root, "expected metadata: {name: NAME}");
    else if (r->name == NULL || !ep_conn_name_valid(r->name))
        ep_cfg_errs_add(&local, nm ? nm : md,
                        "expected metadata.name of 1-63 lowercase letters, digits, "
                        "'-' or '.', starting and ending with a letter or digit%s%.63s%s",
                        r->name ? ", got \"" : "", r->name ? r->name : "", r->name ? "\"" : "");
    for (const ep_cfg_node *k = root->first; k; k = k->next)
        if (strcmp(k->key, "apiVersion") && strcmp(k->key, "kind") && strcmp(k->key, "metadata") &&
            strcmp(k->key, "spec") && strcmp(k->key, "status"))
            ep_cfg_errs_add(&local, k,
                            "unknown key (expected apiVersion, kind, "
                            "metadata, spec)");
    if (spec == NULL || spec->kind != EP_CFG_NODE_MAP) {
        ep_cfg_errs_add(&local, spec ? spec : root, "expected spec: a map");
    } else if (r->kind == EP_CONN_KIND_PROFILE) {
        parse_profile(spec, &r->u.profile, &local);
    } else {
        parse_asset(spec, &r->u.asset, &local);
    }
    rc = local.nerr ? EP_ECONFIG : EP_EOK;
done:
    copy_errs(errs, &local, prefix);
    ep_cfg_errs_fini(&local);
    ep_cfg_tree_free(tree);
    if (rc == EP_EOK) {
        r->text = malloc(len + 1);
        if (r->text == NULL || r->name == NULL) {
            ep_conn_res_free(r);
            return EP_ENOMEM;
        }
        memcpy(r->text, data, len);
        r->text[len] = 0;
        r->text_len = len;
        *out = r;
        return EP_EOK;
    }
    ep_conn_res_free(r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* multi-document files and directories                                */

static bool is_separator(const char *p, const char *end)
{
    if (end - p < 3 || memcmp(p, "---", 3) != 0)
        return false;
    p += 3;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p == end || *p == '\n' || *p == '\r' || *p == '#';
}

static bool blank_doc(const char *p, const char *end)
{
    bool line_start = true, comment = false;
    for (; p < end; p++) {
        if (*p == '\n') {
            line_start = true;
            comment = false;
            continue;
        }
        if (comment || *p == ' ' || *p == '\t' || *p == '\r')
            continue;
        if (*p == '#') {
            comment = true;
            continue;
        }
        (void)line_start;
        return false;
    }
    return true;
}

static ep_err list_push(ep_conn_res_list *l, ep_conn_res *r)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        ep_conn_res **ni = realloc(l->items, nc * sizeof(*ni));
        if (ni == NULL)
            return EP_ENOMEM;
        l->items = ni;
        l->cap = nc;
    }
    l->items[l->n++] = r;
    return EP_EOK;
}

ep_err ep_conn_res_parse_multi(const char *label, const char *data, size_t len,
                               ep_conn_res_list *list, ep_cfg_errs *errs)
{
    const char *end = data + len;
    const char *doc = data;
    unsigned doc_line = 1, line = 1;
    ep_err worst = EP_EOK;
    const char *p = data;
    for (;;) {
        bool at_end = p >= end;
        bool sep = !at_end && is_separator(p, end);
        if (at_end || sep) {
            if (!blank_doc(doc, p)) {
                ep_conn_res *r = NULL;
                ep_err rc = ep_conn_res_parse(label, doc_line, doc, (size_t)(p - doc), &r, errs);
                if (rc == EP_EOK && list_push(list, r) != EP_EOK) {
                    ep_conn_res_free(r);
                    rc = EP_ENOMEM;
                }
                if (rc == EP_ENOMEM)
                    return rc;
                if (rc != EP_EOK)
                    worst = EP_ECONFIG;
            }
            if (at_end)
                break;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        line++;
        if (sep) {
            doc = next;
            doc_line = line;
        }
        p = next;
    }
    return worst;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static ep_err load_file(const char *path, ep_conn_res_list *list, ep_cfg_errs *errs)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        ep_cfg_errs_add(errs, NULL, "%s: cannot read: %s", path, strerror(errno));
        return EP_EIO;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            if (cap >= (64u << 20)) {
                fclose(f);
                free(buf);
                ep_cfg_errs_add(errs, NULL, "%s: file too large (at most 64 MiB)", path);
                return EP_ECONFIG;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf == NULL)
        return EP_ENOMEM;
    ep_err rc = ep_conn_res_parse_multi(path, buf, n, list, errs);
    free(buf);
    return rc;
}

ep_err ep_conn_res_load_path(const char *path, ep_conn_res_list *list, ep_cfg_errs *errs)
{
    struct stat st;
    ep_err worst = EP_EOK;
    size_t first = list->n;
    if (stat(path, &st) != 0) {
        ep_cfg_errs_add(errs, NULL, "%s: cannot read: %s", path, strerror(errno));
        return EP_EIO;
    }
    if (!S_ISDIR(st.st_mode)) {
        worst = load_file(path, list, errs);
    } else {
        DIR *d = opendir(path);
        if (d == NULL) {
            ep_cfg_errs_add(errs, NULL, "%s: cannot read: %s", path, strerror(errno));
            return EP_EIO;
        }
        char **names = NULL;
        size_t nn = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t l = strlen(de->d_name);
            bool yaml = (l > 5 && strcmp(de->d_name + l - 5, ".yaml") == 0) ||
                        (l > 4 && strcmp(de->d_name + l - 4, ".yml") == 0);
            if (!yaml || de->d_name[0] == '.')
                continue;
            if (nn == cap) {
                cap = cap ? cap * 2 : 16;
                char **nb = realloc(names, cap * sizeof(*nb));
                if (nb == NULL)
                    break;
                names = nb;
            }
            names[nn] = strdup(de->d_name);
            if (names[nn])
                nn++;
        }
        closedir(d);
        if (nn)
            qsort(names, nn, sizeof(*names), name_cmp);
        for (size_t i = 0; i < nn; i++) {
            char full[4096];
            snprintf(full, sizeof(full), "%s/%s", path, names[i]);
            ep_err rc = load_file(full, list, errs);
            if (rc == EP_ENOMEM)
                worst = rc;
            else if (rc != EP_EOK && worst == EP_EOK)
                worst = rc;
            free(names[i]);
        }
        free(names);
    }
    for (size_t i = first; i < list->n; i++)
        for (size_t j = 0; j < i; j++)
            if (list->items[i]->kind == list->items[j]->kind &&
                strcmp(list->items[i]->name, list->items[j]->name) == 0) {
                ep_cfg_errs_add(errs, NULL, "%s %s: defined twice in %s",
                                ep_conn_kind_name(list->items[i]->kind), list->items[i]->name,
                                path);
                if (worst == EP_EOK)
                    worst = EP_ECONFIG;
                break;
            }
    return worst;
}

void ep_conn_res_list_fini(ep_conn_res_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        ep_conn_res_free(list->items[i]);
    free(list->items);
    memset(list, 0, sizeof(*list));
}
