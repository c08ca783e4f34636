/*
 * config.c - the broker's configuration table: the YAML keys, their types,
 * defaults, bounds and help, bound with core/cfg into ep_broker_config. The
 * same table generates docs/broker-config.md and the JSON Schema.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/tls.h"
#include "svc/auth/x509map.h"
#include "svc/broker/broker_config.h"

typedef struct yaml_tls {
    char *cert;
    char *key;
    char *client_ca;
    int32_t client_certs;
} yaml_tls;

typedef struct yaml_listener {
    ep_cfg_hostport address;
    int32_t protocol;
    yaml_tls tls;
    char *authentication;
    char *authorization;
} yaml_listener;

typedef struct yaml_custom {
    char *endpoint;
    bool allow_http;
    char *ca_file;
    char *client_cert;
    char *client_key;
    ep_cfg_list headers; /* of char * */
    uint64_t timeout_ms;
    uint32_t threads;
    uint32_t max_pending;
} yaml_custom;

typedef struct yaml_x509_attrs {
    char *name;
    char *subject;
    ep_cfg_list attributes; /* of char *, "name=value" */
} yaml_x509_attrs;

typedef struct yaml_authn {
    char *name;
    char *password_file;
    ep_cfg_list methods; /* of int32_t */
    yaml_custom custom;
    ep_cfg_list x509_attributes; /* of yaml_x509_attrs */
} yaml_authn;

typedef struct yaml_authz {
    char *name;
    char *rules_file;
} yaml_authz;

typedef struct yaml_limits {
    uint32_t max_connections;
    uint32_t max_packet_size;
    uint32_t max_queued_messages;
    uint64_t max_queued_bytes;
    int32_t queue_policy;
    uint16_t max_inflight;
    uint16_t receive_maximum;
    uint32_t max_outbuf;
    uint32_t max_topic_length;
    uint32_t max_topic_levels;
    uint32_t max_subscriptions_per_client;
    uint64_t max_session_expiry_ms;
    uint64_t max_keepalive_ms;
    uint16_t topic_alias_maximum;
    uint64_t connect_timeout_ms;
    uint32_t max_client_id_length;
} yaml_limits;

typedef struct yaml_persistence {
    char *data_dir;
    int32_t durability;
    uint64_t period_ms;
    uint64_t max_size;
} yaml_persistence;

typedef struct yaml_broker {
    ep_cfg_list listeners;
    ep_cfg_list authentication;
    ep_cfg_list authorization;
    uint32_t workers;
    uint64_t sys_interval_ms;
    yaml_limits limits;
    yaml_persistence persistence;
} yaml_broker;

static const ep_cfg_enum durabilities[] = {
    {"sync", EP_BROKER_DURABILITY_SYNC},
    {"periodic", EP_BROKER_DURABILITY_PERIODIC},
    {"none", EP_BROKER_DURABILITY_NONE},
    {NULL, 0},
};

#define P(m) EP_CFG_AT(yaml_persistence, m)
static const ep_cfg_field persistence_fields[] = {
    {.name = "data_dir",
     .type = EP_CFG_STRING,
     P(data_dir),
     .min = 1,
     .max = 255,
     .help = "Directory of the write-ahead log (one broker per directory); leave out to keep "
             "everything in memory only."},
    {.name = "durability",
     .type = EP_CFG_ENUM,
     P(durability),
     .def = "sync",
     .choices = durabilities,
     .help = "sync: PUBACK/PUBREC once the message's records are on disk (group commit); "
             "periodic: ack at once, fdatasync every `period`; none: ack at once, the OS "
             "writes back."},
    {.name = "period",
     .type = EP_CFG_DURATION,
     P(period_ms),
     .def = "10ms",
     .min = 1,
     .max = 60000,
     .help = "fdatasync period with durability periodic."},
    {.name = "max_size",
     .type = EP_CFG_SIZE,
     P(max_size),
     .def = "1GiB",
     .min = 1048576,
     .help = "Disk budget of the log (capped at 90% of the file system); when full, QoS 1/2 "
             "publishes are refused with 0x97."},
    {0},
};
#undef P

static const ep_cfg_enum queue_policies[] = {
    {"drop_oldest", EP_BROKER_DROP_OLDEST},
    {"refuse_new", EP_BROKER_REFUSE_NEW},
    {NULL, 0},
};

#define L(m) EP_CFG_AT(yaml_limits, m)
static const ep_cfg_field limit_fields[] = {
    {.name = "max_connections",
     .type = EP_CFG_UINT,
     L(max_connections),
     .def = "100000",
     .min = 1,
     .help = "Connections accepted by the whole broker; more are closed at once."},
    {.name = "max_packet_size",
     .type = EP_CFG_SIZE,
     L(max_packet_size),
     .def = "1MiB",
     .min = 64,
     .max = 268435460,
     .help = "Largest MQTT packet accepted, announced in CONNACK; larger ones are refused from "
             "their header."},
    {.name = "max_queued_messages",
     .type = EP_CFG_UINT,
     L(max_queued_messages),
     .def = "10000",
     .min = 1,
     .help = "Messages queued per session while its window is full or it is offline."},
    {.name = "max_queued_bytes",
     .type = EP_CFG_SIZE,
     L(max_queued_bytes),
     .def = "64MiB",
     .min = 1024,
     .help = "Bytes queued per session."},
    {.name = "queue_policy",
     .type = EP_CFG_ENUM,
     L(queue_policy),
     .def = "drop_oldest",
     .choices = queue_policies,
     .help = "What a full session queue does with a new message."},
    {.name = "max_inflight",
     .type = EP_CFG_UINT,
     L(max_inflight),
     .def = "64",
     .min = 1,
     .max = 65535,
     .help = "Unacknowledged QoS 1/2 messages sent to one client."},
    {.name = "receive_maximum",
     .type = EP_CFG_UINT,
     L(receive_maximum),
     .def = "1024",
     .min = 1,
     .max = 65535,
     .help = "QoS 2 messages a client may have awaiting PUBREL (CONNACK Receive Maximum)."},
    {.name = "max_outbuf",
     .type = EP_CFG_SIZE,
     L(max_outbuf),
     .def = "4MiB",
     .min = 4096,
     .max = 1073741824,
     .help = "Unsent bytes per connection; past it QoS 0 messages to that client are dropped."},
    {.name = "max_topic_length",
     .type = EP_CFG_UINT,
     L(max_topic_length),
     .def = "65535",
     .min = 1,
     .max = 65535,
     .help = "Longest topic name or filter in bytes."},
    {.name = "max_topic_levels",
     .type = EP_CFG_UINT,
     L(max_topic_levels),
     .def = "128",
     .min = 1,
     .max = 65535,
     .help = "Most levels in a topic name or filter."},
    {.name = "max_subscriptions_per_client",
     .type = EP_CFG_UINT,
     L(max_subscriptions_per_client),
     .def = "1000",
     .min = 1,
     .help = "Subscriptions one session may hold."},
    {.name = "max_session_expiry",
     .type = EP_CFG_DURATION,
     L(max_session_expiry_ms),
     .def = "7d",
     .max = 4294967295000ull,
     .help = "Upper bound on a session's expiry interval."},
    {.name = "max_keepalive",
     .type = EP_CFG_DURATION,
     L(max_keepalive_ms),
     .def = "0",
     .max = 65535000,
     .help = "Upper bound on a v5 client's keep alive (0: accept the client's)."},
    {.name = "topic_alias_maximum",
     .type = EP_CFG_UINT,
     L(topic_alias_maximum),
     .def = "64",
     .max = 65535,
     .help = "Topic aliases a client may use (CONNACK Topic Alias Maximum)."},
    {.name = "connect_timeout",
     .type = EP_CFG_DURATION,
     L(connect_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 3600000,
     .help = "Time a new connection has to send CONNECT."},
    {.name = "max_client_id_length",
     .type = EP_CFG_UINT,
     L(max_client_id_length),
     .def = "256",
     .min = 1,
     .max = 65535,
     .help = "Longest client identifier accepted."},
    {0},
};
#undef L

static const ep_cfg_enum protocols[] = {
    {"mqtt", EP_BROKER_MQTT},
    {"websockets", EP_BROKER_WEBSOCKETS},
    {NULL, 0},
};

static const ep_cfg_enum client_cert_modes[] = {
    {"none", EP_TLS_VERIFY_NONE},
    {"optional", EP_TLS_VERIFY_OPTIONAL},
    {"required", EP_TLS_VERIFY_REQUIRED},
    {NULL, 0},
};

static const ep_cfg_field tls_fields[] = {
    {.name = "cert",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_tls, cert),
     .max = 255,
     .help = "PEM certificate (chain) of the listener; setting it turns TLS on."},
    {.name = "key",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_tls, key),
     .max = 255,
     .help = "PEM private key of the certificate."},
    {.name = "client_ca",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_tls, client_ca),
     .max = 255,
     .help = "PEM CA bundle that client certificates are verified against."},
    {.name = "client_certs",
     .type = EP_CFG_ENUM,
     EP_CFG_AT(yaml_tls, client_certs),
     .def = "none",
     .choices = client_cert_modes,
     .help = "Ask clients for a certificate: none, optional (verified if sent) or required."},
    {0},
};

static bool tls_valid(const ep_cfg_field *f, void *value, const ep_cfg_node *n, ep_cfg_errs *errs)
{
    const yaml_tls *t = value;
    (void)f;
    bool ok = true;
    if ((t->cert == NULL) != (t->key == NULL)) {
        ep_cfg_errs_add(errs, n, "TLS needs both 'cert' and 'key'");
        ok = false;
    }
    if (t->client_certs != EP_TLS_VERIFY_NONE && t->client_ca == NULL) {
        ep_cfg_errs_add(errs, n, "client_certs: %s needs 'client_ca' to verify them",
                        t->client_certs == EP_TLS_VERIFY_REQUIRED ? "required" : "optional");
        ok = false;
    }
    if (t->client_certs != EP_TLS_VERIFY_NONE && t->cert == NULL) {
        ep_cfg_errs_add(errs, n, "client certificates need TLS ('cert' and 'key')");
        ok = false;
    }
    return ok;
}

static const ep_cfg_field listener_fields[] = {
    {.name = "address",
     .type = EP_CFG_HOSTPORT,
     EP_CFG_AT(yaml_listener, address),
     .flags = EP_CFG_REQUIRED,
     .help = "HOST:PORT to listen on; port 0 picks a free port."},
    {.name = "protocol",
     .type = EP_CFG_ENUM,
     EP_CFG_AT(yaml_listener, protocol),
     .def = "mqtt",
     .choices = protocols,
     .help = "mqtt (MQTT over TCP) or websockets (subprotocol mqtt)."},
    {.name = "tls",
     .type = EP_CFG_MAP,
     EP_CFG_AT(yaml_listener, tls),
     .sub = tls_fields,
     .help = "TLS 1.2/1.3 for this listener; certificates reload on SIGHUP or file change.",
     .validate = tls_valid},
    {.name = "authentication",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_listener, authentication),
     .min = 1,
     .max = 63,
     .help = "Name of the authentication chain clients must pass; leave out to accept all."},
    {.name = "authorization",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_listener, authorization),
     .min = 1,
     .max = 63,
     .help = "Name of the authorization rules applied; leave out to allow everything."},
    {0},
};

static const ep_cfg_enum authn_methods[] = {
    {"password", EP_BROKER_AUTHN_PASSWORD},
    {"x509", EP_BROKER_AUTHN_X509},
    {"scram-sha-256", EP_BROKER_AUTHN_SCRAM},
    {"custom", EP_BROKER_AUTHN_CUSTOM},
    {NULL, 0},
};

static const ep_cfg_field header_elem = {
    .type = EP_CFG_STRING, .size = sizeof(char *), .min = 3, .max = 255};

#define C(m) EP_CFG_AT(yaml_custom, m)
static const ep_cfg_field custom_fields[] = {
    {.name = "endpoint",
     .type = EP_CFG_STRING,
     C(endpoint),
     .min = 1,
     .max = 255,
     .help = "URL of the authentication server (custom-auth API 0.5.0); https:// required."},
    {.name = "allow_http",
     .type = EP_CFG_BOOL,
     C(allow_http),
     .def = "false",
     .help = "Accept an http:// endpoint: passwords then travel in clear, for local testing "
             "only."},
    {.name = "ca_file",
     .type = EP_CFG_STRING,
     C(ca_file),
     .max = 255,
     .help = "PEM CA bundle that verifies the server; leave out for the system store."},
    {.name = "client_cert",
     .type = EP_CFG_STRING,
     C(client_cert),
     .max = 255,
     .help = "PEM certificate the broker presents to the server (with client_key)."},
    {.name = "client_key",
     .type = EP_CFG_STRING,
     C(client_key),
     .max = 255,
     .flags = EP_CFG_SECRET,
     .help = "PEM private key of client_cert."},
    {.name = "headers",
     .type = EP_CFG_LIST,
     C(headers),
     .sub = &header_elem,
     .max = EP_BROKER_MAX_HEADERS,
     .flags = EP_CFG_SECRET,
     .help = "Extra request headers, each 'Name: value'."},
    {.name = "timeout",
     .type = EP_CFG_DURATION,
     C(timeout_ms),
     .def = "5s",
     .min = 10,
     .max = 60000,
     .help = "Limit on one callout, queueing included; past it the server counts as "
             "unreachable and the next method is tried."},
    {.name = "threads",
     .type = EP_CFG_UINT,
     C(threads),
     .def = "8",
     .min = 1,
     .max = 64,
     .help = "Callouts in progress at once (one pool thread each)."},
    {.name = "max_pending",
     .type = EP_CFG_UINT,
     C(max_pending),
     .def = "256",
     .min = 1,
     .max = 65536,
     .help = "Callouts queued or in progress; beyond it CONNECT gets 0x89 Server busy (3.1.1: "
             "0x03)."},
    {0},
};
#undef C

static const ep_cfg_field attr_kv_elem = {
    .type = EP_CFG_STRING, .size = sizeof(char *), .min = 2, .max = 127};

static const ep_cfg_field x509_attrs_fields[] = {
    {.name = "name",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_x509_attrs, name),
     .flags = EP_CFG_REQUIRED,
     .min = 1,
     .max = 63,
     .help = "Name of the mapping, for logs."},
    {.name = "subject",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_x509_attrs, subject),
     .flags = EP_CFG_REQUIRED,
     .min = 3,
     .max = 255,
     .help = "Certificate subject to match, e.g. 'CN = Site 1 CA, O = Example'."},
    {.name = "attributes",
     .type = EP_CFG_LIST,
     EP_CFG_AT(yaml_x509_attrs, attributes),
     .sub = &attr_kv_elem,
     .flags = EP_CFG_REQUIRED,
     .max = EP_BROKER_MAX_ATTR_KV,
     .help = "Attributes given to the client, each 'name=value'."},
    {0},
};

static const ep_cfg_field x509_attrs_elem = {
    .type = EP_CFG_MAP, .size = sizeof(yaml_x509_attrs), .sub = x509_attrs_fields};

static const ep_cfg_field authn_method_elem = {
    .type = EP_CFG_ENUM, .size = sizeof(int32_t), .choices = authn_methods};

static const ep_cfg_field authn_fields[] = {
    {.name = "name",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_authn, name),
     .flags = EP_CFG_REQUIRED,
     .min = 1,
     .max = 63,
     .help = "Name listeners refer to."},
    {.name = "methods",
     .type = EP_CFG_LIST,
     EP_CFG_AT(yaml_authn, methods),
     .sub = &authn_method_elem,
     .flags = EP_CFG_REQUIRED,
     .min = 1,
     .max = 4,
     .help = "Ordered methods; the first one the credentials are relevant to decides."},
    {.name = "password_file",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_authn, password_file),
     .max = 255,
     .help = "Password file (edgeplane passwd) for password and scram-sha-256."},
    {.name = "custom",
     .type = EP_CFG_MAP,
     EP_CFG_AT(yaml_authn, custom),
     .sub = custom_fields,
     .help = "Custom authentication server for method custom (docs/security.md)."},
    {.name = "x509_attributes",
     .type = EP_CFG_LIST,
     EP_CFG_AT(yaml_authn, x509_attributes),
     .sub = &x509_attrs_elem,
     .max = EP_BROKER_MAX_X509_ATTRS,
     .help = "Authorization attributes by certificate subject, first match from the leaf up."},
    {0},
};

static const ep_cfg_field authn_elem = {
    .type = EP_CFG_MAP, .size = sizeof(yaml_authn), .sub = authn_fields};

static const ep_cfg_field authz_fields[] = {
    {.name = "name",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_authz, name),
     .flags = EP_CFG_REQUIRED,
     .min = 1,
     .max = 63,
     .help = "Name listeners refer to."},
    {.name = "rules_file",
     .type = EP_CFG_STRING,
     EP_CFG_AT(yaml_authz, rules_file),
     .flags = EP_CFG_REQUIRED,
     .min = 1,
     .max = 255,
     .help = "Rules file (docs/security.md); reloaded on SIGHUP and when it changes."},
    {0},
};

static const ep_cfg_field authz_elem = {
    .type = EP_CFG_MAP, .size = sizeof(yaml_authz), .sub = authz_fields};

static const ep_cfg_field listener_elem = {
    .type = EP_CFG_MAP, .size = sizeof(yaml_listener), .sub = listener_fields};

static const ep_cfg_field broker_fields[] = {
    {.name = "listeners",
     .type = EP_CFG_LIST,
     EP_CFG_AT(yaml_broker, listeners),
     .sub = &listener_elem,
     .def = "[{address: '127.0.0.1:1883'}]",
     .min = 1,
     .max = EP_BROKER_MAX_LISTENERS,
     .help = "MQTT over TCP listeners."},
    {.name = "authentication",
     .type = EP_CFG_LIST,
     EP_CFG_AT(yaml_broker, authentication),
     .sub = &authn_elem,
     .max = EP_BROKER_MAX_CHAINS,
     .help = "Named authentication chains (docs/security.md)."},
    {.name = "authorization",
     .type = EP_CFG_LIST,
     EP_CFG_AT(yaml_broker, authorization),
     .sub = &authz_elem,
     .max = EP_BROKER_MAX_CHAINS,
     .help = "Named authorization rule sets (docs/security.md)."},
    {.name = "workers",
     .type = EP_CFG_UINT,
     EP_CFG_AT(yaml_broker, workers),
     .def = "0",
     .max = 64,
     .help = "Worker threads; 0 means one per CPU."},
    {.name = "sys_interval",
     .type = EP_CFG_DURATION,
     EP_CFG_AT(yaml_broker, sys_interval_ms),
     .def = "10s",
     .max = 86400000,
     .help = "Period of $SYS/broker statistics; 0 turns them off."},
    {.name = "limits",
     .type = EP_CFG_MAP,
     EP_CFG_AT(yaml_broker, limits),
     .sub = limit_fields,
     .help = "Resource limits and their policies (docs/broker.md)."},
    {.name = "persistence",
     .type = EP_CFG_MAP,
     EP_CFG_AT(yaml_broker, persistence),
     .sub = persistence_fields,
     .help = "Crash-safe storage of sessions, subscriptions, retained and queued messages "
             "(docs/persistence.md)."},
    {0},
};

const ep_cfg_field *ep_broker_config_table(void) { return broker_fields; }

static int find_named(const ep_cfg_list *l, size_t elem, size_t name_off, const char *name)
{
    for (size_t i = 0; i < l->count; i++) {
        const char *n = *(char *const *)((const char *)l->items + i * elem + name_off);
        if (n && strcmp(n, name) == 0)
            return (int)i;
    }
    return -1;
}

static bool custom_ok(const yaml_custom *c, const ep_cfg_node *an, ep_cfg_errs *errs)
{
    const ep_cfg_node *cn = ep_cfg_node_get(an, "custom");
    if (c->endpoint == NULL) {
        ep_cfg_errs_add(errs, cn ? cn : an, "method custom needs 'custom.endpoint'");
        return false;
    }
    bool ok = true;
    const ep_cfg_node *en = ep_cfg_node_get(cn, "endpoint");
    bool https = strncmp(c->endpoint, "https://", 8) == 0;
    if (!https && !(c->allow_http && strncmp(c->endpoint, "http://", 7) == 0)) {
        ep_cfg_errs_add(errs, en, "must start with https:// (http:// needs allow_http: true)");
        ok = false;
    }
    if ((c->client_cert == NULL) != (c->client_key == NULL)) {
        ep_cfg_errs_add(errs, cn, "client_cert and client_key go together");
        ok = false;
    }
    const ep_cfg_node *hn = ep_cfg_node_get(cn, "headers");
    hn = hn ? hn->first : NULL;
    for (size_t i = 0; i < c->headers.count; i++, hn = hn ? hn->next : NULL) {
        const char *h = *EP_CFG_LIST_AT(c->headers, char *, i);
        const char *colon = strchr(h, ':');
        if (colon == NULL || colon == h || strpbrk(h, "\r\n") != NULL) {
            ep_cfg_errs_add(errs, hn, "a header must be 'Name: value'");
            ok = false;
        }
    }
    return ok;
}

static bool x509_attrs_ok(const yaml_authn *a, const ep_cfg_node *xs, ep_cfg_errs *errs)
{
    bool ok = true;
    const ep_cfg_node *xn = xs ? xs->first : NULL;
    for (size_t i = 0; i < a->x509_attributes.count; i++, xn = xn ? xn->next : NULL) {
        const yaml_x509_attrs *x = EP_CFG_LIST_AT(a->x509_attributes, yaml_x509_attrs, i);
        char canon[1024];
        if (ep_x509_subject_normalize(x->subject, canon, sizeof(canon)) != EP_EOK) {
            ep_cfg_errs_add(errs, ep_cfg_node_get(xn, "subject"),
                            "expected 'TYPE = value' pairs separated by commas");
            ok = false;
        }
        const ep_cfg_node *kn = ep_cfg_node_get(xn, "attributes");
        kn = kn ? kn->first : NULL;
        for (size_t k = 0; k < x->attributes.count; k++, kn = kn ? kn->next : NULL) {
            const char *kv = *EP_CFG_LIST_AT(x->attributes, char *, k);
            const char *eq = strchr(kv, '=');
            if (eq == NULL || eq == kv) {
                ep_cfg_errs_add(errs, kn, "expected 'name=value'");
                ok = false;
            }
        }
    }
    return ok;
}

/* Cross references and method requirements, which a table cannot say. */
static bool check_refs(const yaml_broker *y, const ep_cfg_node *root, ep_cfg_errs *errs)
{
    bool ok = true;
    const ep_cfg_node *ls = ep_cfg_node_get(root, "listeners");
    for (size_t i = 0; i < y->listeners.count; i++) {
        const yaml_listener *l = EP_CFG_LIST_AT(y->listeners, yaml_listener, i);
        const ep_cfg_node *ln = ls ? ls->first : NULL;
        for (size_t k = 0; ln && k < i; k++)
            ln = ln->next;
        if (l->authentication && find_named(&y->authentication, sizeof(yaml_authn),
                                            offsetof(yaml_authn, name), l->authentication) < 0) {
            ep_cfg_errs_add(errs, ep_cfg_node_get(ln, "authentication"),
                            "no authentication chain named '%s'", l->authentication);
            ok = false;
        }
        if (l->authorization && find_named(&y->authorization, sizeof(yaml_authz),
                                           offsetof(yaml_authz, name), l->authorization) < 0) {
            ep_cfg_errs_add(errs, ep_cfg_node_get(ln, "authorization"),
                            "no authorization rules named '%s'", l->authorization);
            ok = false;
        }
    }
    const ep_cfg_node *as = ep_cfg_node_get(root, "authentication");
    const ep_cfg_node *an = as ? as->first : NULL;
    for (size_t i = 0; i < y->authentication.count; i++, an = an ? an->next : NULL) {
        const yaml_authn *a = EP_CFG_LIST_AT(y->authentication, yaml_authn, i);
        for (size_t k = 0; k < a->methods.count; k++) {
            int32_t m = *EP_CFG_LIST_AT(a->methods, int32_t, k);
            if ((m == EP_BROKER_AUTHN_PASSWORD || m == EP_BROKER_AUTHN_SCRAM) &&
                a->password_file == NULL) {
                ep_cfg_errs_add(errs, an, "method %s needs 'password_file'",
                                m == EP_BROKER_AUTHN_SCRAM ? "scram-sha-256" : "password");
                ok = false;
                break;
            }
            if (m == EP_BROKER_AUTHN_CUSTOM && !custom_ok(&a->custom, an, errs))
                ok = false;
        }
        ok = x509_attrs_ok(a, ep_cfg_node_get(an, "x509_attributes"), errs) && ok;
    }
    return ok;
}

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

static void custom_to_config(const yaml_custom *y, ep_broker_custom_auth *d)
{
    COPY(d->endpoint, y->endpoint);
    d->allow_http = y->allow_http;
    COPY(d->ca_file, y->ca_file);
    COPY(d->client_cert, y->client_cert);
    COPY(d->client_key, y->client_key);
    d->n_headers = (int)y->headers.count;
    for (size_t i = 0; i < y->headers.count; i++)
        COPY(d->headers[i], *EP_CFG_LIST_AT(y->headers, char *, i));
    d->timeout_ms = (uint32_t)y->timeout_ms;
    d->threads = y->threads;
    d->max_pending = y->max_pending;
}

static void x509_attrs_to_config(const yaml_authn *a, ep_broker_authn *d)
{
    d->n_x509_attrs = (int)a->x509_attributes.count;
    for (size_t i = 0; i < a->x509_attributes.count; i++) {
        const yaml_x509_attrs *x = EP_CFG_LIST_AT(a->x509_attributes, yaml_x509_attrs, i);
        ep_broker_x509_attrs *o = &d->x509_attrs[i];
        COPY(o->name, x->name);
        COPY(o->subject, x->subject);
        o->n_attrs = (int)x->attributes.count;
        for (size_t k = 0; k < x->attributes.count; k++)
            COPY(o->attrs[k], *EP_CFG_LIST_AT(x->attributes, char *, k));
    }
}

static void to_config(const yaml_broker *y, ep_broker_config *cfg)
{
    cfg->n_listeners = (int)y->listeners.count;
    for (size_t i = 0; i < y->listeners.count; i++) {
        const yaml_listener *l = EP_CFG_LIST_AT(y->listeners, yaml_listener, i);
        ep_broker_listener *d = &cfg->listeners[i];
        memset(d, 0, sizeof(*d));
        snprintf(d->addr.host, sizeof(d->addr.host), "%s", l->address.host);
        d->addr.port = l->address.port;
        d->protocol = (int)l->protocol;
        snprintf(d->tls_cert, sizeof(d->tls_cert), "%s", l->tls.cert ? l->tls.cert : "");
        snprintf(d->tls_key, sizeof(d->tls_key), "%s", l->tls.key ? l->tls.key : "");
        snprintf(d->tls_ca, sizeof(d->tls_ca), "%s", l->tls.client_ca ? l->tls.client_ca : "");
        d->tls_verify = (int)l->tls.client_certs;
        if (l->authentication)
            d->authn = 1 + find_named(&y->authentication, sizeof(yaml_authn),
                                      offsetof(yaml_authn, name), l->authentication);
        if (l->authorization)
            d->authz = 1 + find_named(&y->authorization, sizeof(yaml_authz),
                                      offsetof(yaml_authz, name), l->authorization);
    }
    cfg->n_authn = (int)y->authentication.count;
    for (size_t i = 0; i < y->authentication.count; i++) {
        const yaml_authn *a = EP_CFG_LIST_AT(y->authentication, yaml_authn, i);
        ep_broker_authn *d = &cfg->authn[i];
        memset(d, 0, sizeof(*d));
        snprintf(d->name, sizeof(d->name), "%s", a->name);
        snprintf(d->password_file, sizeof(d->password_file), "%s",
                 a->password_file ? a->password_file : "");
        d->n_methods = (int)a->methods.count;
        for (size_t k = 0; k < a->methods.count; k++)
            d->methods[k] = (int)*EP_CFG_LIST_AT(a->methods, int32_t, k);
        custom_to_config(&a->custom, &d->custom);
        x509_attrs_to_config(a, d);
    }
    cfg->n_authz = (int)y->authorization.count;
    for (size_t i = 0; i < y->authorization.count; i++) {
        const yaml_authz *a = EP_CFG_LIST_AT(y->authorization, yaml_authz, i);
        snprintf(cfg->authz[i].name, sizeof(cfg->authz[i].name), "%s", a->name);
        snprintf(cfg->authz[i].rules_file, sizeof(cfg->authz[i].rules_file), "%s", a->rules_file);
    }
    cfg->workers = (int)y->workers;
    cfg->sys_interval_s = (uint32_t)(y->sys_interval_ms / 1000u);
    const yaml_limits *s = &y->limits;
    ep_broker_limits *d = &cfg->limits;
    d->max_connections = s->max_connections;
    d->max_packet_size = s->max_packet_size;
    d->max_queued_messages = s->max_queued_messages;
    d->max_queued_bytes = s->max_queued_bytes;
    d->queue_policy = (uint32_t)s->queue_policy;
    d->max_inflight = s->max_inflight;
    d->receive_maximum = s->receive_maximum;
    d->max_outbuf = s->max_outbuf;
    d->max_topic_length = s->max_topic_length;
    d->max_topic_levels = s->max_topic_levels;
    d->max_subscriptions_per_client = s->max_subscriptions_per_client;
    uint64_t exp = s->max_session_expiry_ms / 1000u;
    d->max_session_expiry = exp >= UINT32_MAX ? UINT32_MAX : (uint32_t)exp;
    d->max_keepalive = (uint16_t)(s->max_keepalive_ms / 1000u);
    d->topic_alias_maximum = s->topic_alias_maximum;
    d->connect_timeout_ms = (uint32_t)s->connect_timeout_ms;
    d->max_client_id_length = s->max_client_id_length;
    const yaml_persistence *yp = &y->persistence;
    ep_broker_persistence *pp = &cfg->persist;
    snprintf(pp->data_dir, sizeof(pp->data_dir), "%s", yp->data_dir ? yp->data_dir : "");
    pp->durability = (int)yp->durability;
    pp->period_ms = (uint32_t)yp->period_ms;
    pp->max_size = yp->max_size;
}

ep_err ep_broker_config_bind(const ep_cfg_node *root, ep_broker_config *cfg, ep_cfg_errs *errs)
{
    yaml_broker y;
    memset(&y, 0, sizeof(y));
    ep_err err = ep_cfg_bind(broker_fields, root, &y, errs);
    if (err == EP_EOK && !check_refs(&y, root, errs))
        err = EP_ECONFIG;
    if (err == EP_EOK)
        to_config(&y, cfg);
    ep_cfg_clear(broker_fields, &y);
    return err;
}

ep_err ep_broker_config_load(const char *path, ep_broker_config *cfg, ep_cfg_errs *errs)
{
    ep_cfg_tree *t = NULL;
    ep_err err = ep_cfg_parse_file(path, NULL, &t, errs);
    if (err == EP_EOK) {
        /* The file may hold several services' sections; the broker reads
         * its own ("broker:") when present, else the whole document. */
        const ep_cfg_node *root = ep_cfg_tree_root(t);
        const ep_cfg_node *sec = ep_cfg_node_get(root, "broker");
        err = ep_broker_config_bind(sec ? sec : root, cfg, errs);
    }
    ep_cfg_tree_free(t);
    return err;
}

ep_err ep_broker_config_dump(const ep_cfg_node *root, FILE *f)
{
    yaml_broker y;
    ep_cfg_errs errs = {0};
    memset(&y, 0, sizeof(y));
    ep_err err = ep_cfg_bind(broker_fields, root, &y, &errs);
    ep_cfg_errs_print(&errs, stderr);
    ep_cfg_errs_fini(&errs);
    if (err == EP_EOK)
        err = ep_cfg_dump(broker_fields, &y, f);
    ep_cfg_clear(broker_fields, &y);
    return err;
}
