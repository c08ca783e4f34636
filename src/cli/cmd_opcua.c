/*
 * cmd_opcua.c - `edgeplane opcua SUBCOMMAND URL ...`, the OPC UA client for
 * people (readable output, a tree for browse, live lines for subscribe) and
 * for scripts (--json: one JSON document, or one JSON object per line for
 * subscribe).
 *
 * It drives the asynchronous client (svc/opcua_client) with its synchronous
 * helpers: each step runs the loop until its response arrived. Exit codes
 * separate what went wrong: 2 usage, 3 connection, 4 security (certificate
 * rejected, identity refused), 5 a request or item failed.
 */
#ifdef HAVE_EP_SVC_OPCUA_CLIENT
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_opcua.h"
#include "codec/opcua/gen/attributes.h"
#include "codec/opcua/gen/nodeids.h"
#include "core/clock.h"
#include "core/log.h"
#include "svc/opcua_client/client.h"

typedef struct ua_cli {
    const char *sub;
    const char *url;
    const char *policy;
    const char *mode;
    const char *user; /* NAME:PASSWORD */
    const char *cert, *key;
    const char *pki_dir;
    bool auto_accept;
    bool json;
    bool events;
    bool verbose;
    int depth;
    uint32_t timeout_ms;
    const char *attr;
    const char *type;
    double interval_ms;
    double sampling_ms;
    long count;
    double duration_s;
    const char *select;
    long queue;
    bool stats;
    bool quiet;
    const char *pattern;
    long nitems;
    int npos;
    char **pos; /* positional arguments after the URL */

    ep_loop *loop;
    ep_ua_pki *pki;
    ep_uac *c;
    char *user_name, *password;
} ua_cli;

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ------------------------------------------------------------ help -- */

static const char *const common_help =
    "connection options:\n"
    "  --policy P       None | Basic256Sha256 | Aes128_Sha256_RsaOaep |\n"
    "                   Aes256_Sha256_RsaPss (default None)\n"
    "  --mode M         None | Sign | SignAndEncrypt (default: None for policy\n"
    "                   None, SignAndEncrypt otherwise)\n"
    "  --user N:P       user name identity (password encrypted as the server's\n"
    "                   token policy requires)\n"
    "  --cert F --key F X509 user identity (certificate and private key)\n"
    "  --pki DIR        certificate store (own/, trusted/, rejected/); default\n"
    "                   $HOME/.edgeplane/opcua-client-pki\n"
    "  --auto-accept    trust any server certificate (tests only)\n"
    "  --timeout MS     request timeout (default 10000)\n"
    "  --json           machine-readable output\n"
    "  -v, --verbose    log the protocol steps\n"
    "  -h, --help       this help\n"
    "\nexit codes: 0 ok, 2 usage, 3 connection failed, 4 security (certificate\n"
    "rejected, identity refused), 5 a request or an item failed\n";

static void usage_main(FILE *f)
{
    fprintf(f, "usage: edgeplane opcua <subcommand> URL [args] [options]\n\n"
               "subcommands:\n"
               "  endpoints URL                 list the server's endpoints\n"
               "  browse URL [NODE]             show the address space as a tree\n"
               "  read URL NODE...              read attribute values\n"
               "  write URL NODE VALUE          write a value\n"
               "  call URL OBJECT METHOD [ARG]  call a method (ARG as type:value)\n"
               "  subscribe URL NODE...         print value changes (or events)\n"
               "  trust NAME --pki DIR          trust a rejected server certificate\n"
               "\nNODE is an OPC UA NodeId: i=85, ns=2;s=Demo.Counter, ns=1;g=GUID.\n"
               "Run 'edgeplane opcua <subcommand> --help' for details.\n");
}

static void usage_sub(FILE *f, const char *sub)
{
    if (strcmp(sub, "endpoints") == 0)
        fprintf(f, "usage: edgeplane opcua endpoints URL [options]\n\n"
                   "Lists the endpoints (security policy, mode, user token "
                   "types) from GetEndpoints,\nand the servers from "
                   "FindServers.\n\n");
    else if (strcmp(sub, "browse") == 0)
        fprintf(f, "usage: edgeplane opcua browse URL [NODE] [--depth N] "
                   "[options]\n\n"
                   "Prints the hierarchy below NODE (default i=85, Objects) "
                   "as a tree.\n  --depth N        levels to descend "
                   "(default 2, 0 = only NODE's children)\n\n");
    else if (strcmp(sub, "read") == 0)
        fprintf(f, "usage: edgeplane opcua read URL NODE... [--attr NAME] "
                   "[options]\n\n"
                   "Reads an attribute (default Value) of each node.\n"
                   "  --attr NAME      attribute name (Value, DisplayName, "
                   "DataType, ...)\n\n");
    else if (strcmp(sub, "write") == 0)
        fprintf(f, "usage: edgeplane opcua write URL NODE VALUE [--type T] "
                   "[options]\n\n"
                   "Writes VALUE to the Value attribute. Without --type the "
                   "current value's type is used.\n"
                   "  --type T         Boolean, SByte, Byte, Int16, UInt16, "
                   "Int32, UInt32, Int64,\n"
                   "                   UInt64, Float, Double, String\n\n");
    else if (strcmp(sub, "call") == 0)
        fprintf(f, "usage: edgeplane opcua call URL OBJECT METHOD "
                   "[TYPE:VALUE...] [options]\n\n"
                   "Calls METHOD on OBJECT with the given input arguments "
                   "(e.g. Double:2.5)\nand prints the output arguments.\n\n");
    else if (strcmp(sub, "subscribe") == 0)
        fprintf(f, "usage: edgeplane opcua subscribe URL NODE... [options]\n\n"
                   "Prints one line per notification until interrupted.\n"
                   "  --interval MS    publishing interval (default 1000)\n"
                   "  --sampling MS    sampling interval (default: as fast as "
                   "the server samples)\n"
                   "  --events         monitor events of the NODEs (e.g. i=2253, "
                   "Server)\n"
                   "  --select LIST    event fields, comma-separated (default\n"
                   "                   EventId,Time,SourceName,Severity,Message)\n"
                   "  --queue N        server-side queue per item (default 10,\n"
                   "                   events 100)\n"
                   "  --count N        exit after N notifications\n"
                   "  --duration S     exit after S seconds\n"
                   "  --stats          print client statistics (JSON) to stderr\n"
                   "                   at the end\n"
                   "  --pattern F --n K  monitor K nodes named by the NodeId\n"
                   "                   pattern F with %%u = 0..K-1 (load tests)\n"
                   "  --quiet          count notifications, print nothing per item\n"
                   "The connection is re-established automatically when lost; "
                   "notifications\nthe server still holds are recovered "
                   "(Republish), in order.\n\n");
    else if (strcmp(sub, "trust") == 0) {
        fprintf(f, "usage: edgeplane opcua trust NAME --pki DIR\n"
                   "       edgeplane opcua trust --list --pki DIR\n\n"
                   "Moves a certificate from DIR/rejected/ to "
                   "DIR/trusted/certs/. NAME is a file\nname in rejected/, a "
                   "thumbprint or a unique prefix. --list shows rejected/.\n");
        return;
    }
    fputs(common_help, f);
}

/* ----------------------------------------------------------- parsing -- */

enum {
    OPT_POLICY = 256,
    OPT_MODE,
    OPT_USER,
    OPT_CERT,
    OPT_KEY,
    OPT_PKI,
    OPT_AUTO,
    OPT_JSON,
    OPT_DEPTH,
    OPT_TIMEOUT,
    OPT_ATTR,
    OPT_TYPE,
    OPT_INTERVAL,
    OPT_SAMPLING,
    OPT_COUNT,
    OPT_DURATION,
    OPT_EVENTS,
    OPT_SELECT,
    OPT_LIST,
    OPT_QUEUE,
    OPT_STATS,
    OPT_PATTERN,
    OPT_N,
    OPT_QUIET,
};

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(s, &end);
    if (*s == 0 || *end || d < lo || d > hi)
        return false;
    *out = d;
    return true;
}

static int parse_args(ua_cli *u, int argc, char **argv, bool *list)
{
    static const struct option opts[] = {
        {"policy", required_argument, NULL, OPT_POLICY},
        {"mode", required_argument, NULL, OPT_MODE},
        {"user", required_argument, NULL, OPT_USER},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"pki", required_argument, NULL, OPT_PKI},
        {"auto-accept", no_argument, NULL, OPT_AUTO},
        {"json", no_argument, NULL, OPT_JSON},
        {"depth", required_argument, NULL, OPT_DEPTH},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"attr", required_argument, NULL, OPT_ATTR},
        {"type", required_argument, NULL, OPT_TYPE},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"sampling", required_argument, NULL, OPT_SAMPLING},
        {"count", required_argument, NULL, OPT_COUNT},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"events", no_argument, NULL, OPT_EVENTS},
        {"select", required_argument, NULL, OPT_SELECT},
        {"list", no_argument, NULL, OPT_LIST},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"stats", no_argument, NULL, OPT_STATS},
        {"pattern", required_argument, NULL, OPT_PATTERN},
        {"n", required_argument, NULL, OPT_N},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0;
    int ch;
    double d;
    while ((ch = getopt_long(argc, argv, "+vh", opts, NULL)) != -1 || optind < argc) {
        if (ch == -1) {
            /* a positional argument: keep it and go on */
            if (u->npos < 16)
                u->pos[u->npos++] = argv[optind];
            optind++;
            continue;
        }
        switch (ch) {
        case OPT_POLICY:
            u->policy = optarg;
            break;
        case OPT_MODE:
            u->mode = optarg;
            break;
        case OPT_USER:
            u->user = optarg;
            break;
        case OPT_CERT:
            u->cert = optarg;
            break;
        case OPT_KEY:
            u->key = optarg;
            break;
        case OPT_PKI:
            u->pki_dir = optarg;
            break;
        case OPT_AUTO:
            u->auto_accept = true;
            break;
        case OPT_JSON:
            u->json = true;
            break;
        case OPT_EVENTS:
            u->events = true;
            break;
        case OPT_LIST:
            *list = true;
            break;
        case OPT_QUEUE:
            if (!parse_num(optarg, 1, 1e6, &d))
                goto bad;
            u->queue = (long)d;
            break;
        case OPT_STATS:
            u->stats = true;
            break;
        case OPT_QUIET:
            u->quiet = true;
            break;
        case OPT_PATTERN:
            if (strstr(optarg, "%u") == NULL)
                goto bad;
            u->pattern = optarg;
            break;
        case OPT_N:
            if (!parse_num(optarg, 1, 1e6, &d))
                goto bad;
            u->nitems = (long)d;
            break;
        case OPT_SELECT:
            u->select = optarg;
            break;
        case OPT_ATTR:
            u->attr = optarg;
            break;
        case OPT_TYPE:
            u->type = optarg;
            break;
        case OPT_DEPTH:
            if (!parse_num(optarg, 0, 64, &d))
                goto bad;
            u->depth = (int)d;
            break;
        case OPT_TIMEOUT:
            if (!parse_num(optarg, 1, 3600000, &d))
                goto bad;
            u->timeout_ms = (uint32_t)d;
            break;
        case OPT_INTERVAL:
            if (!parse_num(optarg, 0, 3600000, &d))
                goto bad;
            u->interval_ms = d;
            break;
        case OPT_SAMPLING:
            if (!parse_num(optarg, -1, 3600000, &d))
                goto bad;
            u->sampling_ms = d;
            break;
        case OPT_COUNT:
            if (!parse_num(optarg, 1, 1e15, &d))
                goto bad;
            u->count = (long)d;
            break;
        case OPT_DURATION:
            if (!parse_num(optarg, 0, 1e9, &d))
                goto bad;
            u->duration_s = d;
            break;
        case 'v':
            u->verbose = true;
            break;
        case 'h':
            return 1;
        default:
            fprintf(stderr, "edgeplane opcua %s: unknown option '%s'\n", u->sub, argv[optind - 1]);
            return -1;
        }
    }
    return 0;
bad:
    fprintf(stderr, "edgeplane opcua %s: bad value '%s' for %s\n", u->sub, optarg,
            argv[optind - 1]);
    return -1;
}

/* ------------------------------------------------------- connecting -- */

static int exit_for(ep_err err)
{
    return err == EP_ESECURITY ? EP_EXIT_UA_SECURITY : EP_EXIT_UA_CONNECT;
}

static void ua_cleanup(ua_cli *u)
{
    if (u->c && ep_uac_get_state(u->c) == EP_UAC_CONNECTED)
        ep_uac_sync_disconnect(u->c);
    ep_uac_free(u->c);
    u->c = NULL;
    if (u->loop) {
        /* let the channels close (a closed channel lingers until the
         * peer has closed its side too, at most about a second): run the
         * loop until it has been idle for 30 ms, bounded */
        uint64_t end = ep_clock_mono_ms() + 1500;
        while (ep_clock_mono_ms() < end) {
            uint64_t t0 = ep_clock_mono_ms();
            ep_loop_run_once(u->loop, 30);
            if (!ep_uac_channels_alive() && ep_clock_mono_ms() - t0 >= 30)
                break;
        }
        ep_loop_free(u->loop);
    }
    u->loop = NULL;
    ep_ua_pki_free(u->pki);
    u->pki = NULL;
    if (u->password) {
        memset(u->password, 0, strlen(u->password));
        free(u->password);
    }
    free(u->user_name);
}

static int ua_setup(ua_cli *u, bool discovery)
{
    int32_t mode = 0;
    if (u->mode) {
        if (strcmp(u->mode, "None") == 0)
            mode = EP_UA_MESSAGE_SECURITY_MODE_NONE;
        else if (strcmp(u->mode, "Sign") == 0)
            mode = EP_UA_MESSAGE_SECURITY_MODE_SIGN;
        else if (strcmp(u->mode, "SignAndEncrypt") == 0)
            mode = EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT;
        else {
            fprintf(stderr, "edgeplane opcua: unknown --mode '%s'\n", u->mode);
            return EP_EXIT_USAGE;
        }
    }
    const char *policy = u->policy ? u->policy : "None";
    bool secure = strcmp(policy, "None") != 0;
    if (secure && mode == EP_UA_MESSAGE_SECURITY_MODE_NONE) {
        fprintf(stderr,
                "edgeplane opcua: --policy %s needs --mode Sign or "
                "SignAndEncrypt\n",
                policy);
        return EP_EXIT_USAGE;
    }
    if ((u->cert == NULL) != (u->key == NULL)) {
        fprintf(stderr, "edgeplane opcua: --cert and --key go together\n");
        return EP_EXIT_USAGE;
    }
    ep_uac_opts o;
    memset(&o, 0, sizeof(o));
    o.url = u->url;
    o.policy = policy;
    o.mode = mode;
    o.request_timeout_ms = u->timeout_ms;
    o.connect_timeout_ms = u->timeout_ms;
    o.no_reconnect = strcmp(u->sub, "subscribe") != 0;
    if (u->user) {
        const char *colon = strchr(u->user, ':');
        if (colon == NULL) {
            fprintf(stderr, "edgeplane opcua: --user wants NAME:PASSWORD\n");
            return EP_EXIT_USAGE;
        }
        u->user_name = strndup(u->user, (size_t)(colon - u->user));
        u->password = strdup(colon + 1);
        if (u->user_name == NULL || u->password == NULL)
            return EP_EXIT_FAILURE;
        o.identity.kind = EP_UAC_ID_USERNAME;
        o.identity.user = u->user_name;
        o.identity.password = u->password;
    } else if (u->cert) {
        o.identity.kind = EP_UAC_ID_X509;
        o.identity.cert_file = u->cert;
        o.identity.key_file = u->key;
    }
    if (discovery) {
        o.policy = "None";
        o.mode = 0;
    }
    if ((secure && !discovery) || u->pki_dir) {
        char def[PATH_MAX];
        const char *dir = u->pki_dir;
        if (dir == NULL) {
            const char *home = getenv("HOME");
            snprintf(def, sizeof(def), "%s/.edgeplane/opcua-client-pki", home ? home : ".");
            dir = def;
            char parent[PATH_MAX];
            snprintf(parent, sizeof(parent), "%s/.edgeplane", home ? home : ".");
            mkdir(parent, 0700);
        }
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        char uri[400];
        snprintf(uri, sizeof(uri), "urn:%s:edgeplane:opcua-client", host);
        ep_ua_pki_opts po;
        memset(&po, 0, sizeof(po));
        po.app_name = "edgeplane OPC UA client";
        po.app_uri = uri;
        po.auto_accept = u->auto_accept;
        char detail[512] = "";
        ep_err err = ep_ua_pki_open(dir, &po, &u->pki, detail, sizeof(detail));
        if (err != EP_EOK) {
            fprintf(stderr, "edgeplane opcua: PKI %s: %s\n", dir,
                    detail[0] ? detail : ep_strerror(err));
            return EP_EXIT_FAILURE;
        }
        o.pki = u->pki;
    }
    if (ep_loop_new(&u->loop, NULL) != EP_EOK)
        return EP_EXIT_FAILURE;
    ep_err err = ep_uac_new(u->loop, &o, &u->c);
    if (err != EP_EOK) {
        fprintf(stderr, "edgeplane opcua: %s\n",
                err == EP_EINVAL ? "invalid URL, policy or mode" : ep_strerror(err));
        return EP_EXIT_USAGE;
    }
    ep_ua_status st = 0;
    err = discovery ? ep_uac_sync_discover(u->c, &st) : ep_uac_sync_connect(u->c, &st);
    if (err != EP_EOK) {
        const char *why = ep_uac_last_error(u->c);
        fprintf(stderr, "edgeplane opcua: cannot connect to %s: %s\n", u->url,
                why[0] ? why : ep_strerror(err));
        if (st && !strstr(why, ep_ua_status_name(st)))
            fprintf(stderr, "  status: %s\n", ep_ua_status_name(st));
        return exit_for(err);
    }
    return EP_EXIT_OK;
}

/* a synchronous request: the response is deep-copied for the caller */
typedef struct ua_wait {
    int done;
    ep_err err;
    ep_ua_status st;
    const ep_ua_type *type;
    void *resp;
} ua_wait;

static void wait_cb(ep_uac *c, ep_err err, ep_ua_status st, const void *resp, void *ud)
{
    (void)c;
    ua_wait *w = ud;
    w->err = err;
    w->st = st;
    if (err == EP_EOK && resp && w->type) {
        w->resp = calloc(1, w->type->size);
        if (w->resp == NULL || ep_ua_copy(resp, w->resp, w->type) != EP_EOK) {
            free(w->resp);
            w->resp = NULL;
            w->err = EP_ENOMEM;
        }
    }
    w->done = 1;
}

static void wait_free(ua_wait *w)
{
    if (w->resp) {
        ep_ua_clear(w->resp, w->type);
        free(w->resp);
    }
    w->resp = NULL;
}

/* returns an exit code; on success w->resp holds the response */
static int ua_run(ua_cli *u, const ep_ua_type *req_type, const void *req, ua_wait *w)
{
    memset(w, 0, sizeof(*w));
    char name[128];
    snprintf(name, sizeof(name), "%.*sResponse", (int)(strlen(req_type->name) - 7), req_type->name);
    w->type = ep_ua_type_by_name(name);
    ep_err err = ep_uac_request(u->c, req_type, req, wait_cb, w);
    if (err == EP_EOK)
        err = ep_uac_sync_wait(u->c, &w->done, u->timeout_ms + 2000);
    if (err == EP_EOK)
        err = w->err;
    if (err != EP_EOK) {
        fprintf(stderr, "edgeplane opcua: %s failed: %s%s%s\n", req_type->name,
                w->st ? ep_ua_status_name(w->st) : ep_strerror(err),
                ep_uac_last_error(u->c)[0] ? " - " : "", ep_uac_last_error(u->c));
        wait_free(w);
        if (err == EP_ECLOSED)
            return EP_EXIT_UA_CONNECT;
        if (err == EP_EPROTO && ep_uac_err_from_status(w->st) == EP_ESECURITY)
            return EP_EXIT_UA_SECURITY;
        return EP_EXIT_UA_REQUEST;
    }
    const ep_ua_response_header *h = w->resp;
    if (h->service_result & 0x80000000u) {
        fprintf(stderr, "edgeplane opcua: %s: %s\n", req_type->name,
                ep_ua_status_name(h->service_result));
        wait_free(w);
        return EP_EXIT_UA_REQUEST;
    }
    return EP_EXIT_OK;
}

/* ---------------------------------------------------------- output -- */

static void print_str(const ep_ua_string *s)
{
    fwrite(s->data ? (const char *)s->data : "", 1, s->data ? s->len : 0, stdout);
}

static void json_str(const ep_ua_string *s)
{
    ep_ua_variant v;
    memset(&v, 0, sizeof(v));
    v.type = EP_UA_T(String);
    v.data = (void *)(uintptr_t)s;
    char buf[4096];
    ep_uac_variant_format(&v, true, buf, sizeof(buf));
    fputs(buf, stdout);
}

static const char *policy_short(const ep_ua_string *uri)
{
    const char *hash = NULL;
    for (size_t i = 0; uri->data && i < uri->len; i++)
        if (uri->data[i] == '#')
            hash = (const char *)uri->data + i + 1;
    static char buf[128];
    if (hash == NULL)
        return "?";
    size_t n = uri->len - (size_t)(hash - (const char *)uri->data);
    snprintf(buf, sizeof(buf), "%.*s", (int)(n < 120 ? n : 120), hash);
    return buf;
}

static const char *mode_name(int32_t m)
{
    return m == EP_UA_MESSAGE_SECURITY_MODE_NONE               ? "None"
           : m == EP_UA_MESSAGE_SECURITY_MODE_SIGN             ? "Sign"
           : m == EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT ? "SignAndEncrypt"
                                                               : "Invalid";
}

static const char *token_name(int32_t t)
{
    return t == EP_UA_USER_TOKEN_TYPE_ANONYMOUS     ? "Anonymous"
           : t == EP_UA_USER_TOKEN_TYPE_USER_NAME   ? "UserName"
           : t == EP_UA_USER_TOKEN_TYPE_CERTIFICATE ? "Certificate"
                                                    : "IssuedToken";
}

static const char *node_class_name(int32_t nc)
{
    switch (nc) {
    case 1:
        return "Object";
    case 2:
        return "Variable";
    case 4:
        return "Method";
    case 8:
        return "ObjectType";
    case 16:
        return "VariableType";
    case 32:
        return "ReferenceType";
    case 64:
        return "DataType";
    case 128:
        return "View";
    default:
        return "Unspecified";
    }
}

/* --------------------------------------------------------- endpoints -- */

static int cmd_endpoints(ua_cli *u)
{
    int rc = ua_setup(u, true);
    if (rc != EP_EXIT_OK)
        return rc;
    ep_ua_get_endpoints_request req;
    memset(&req, 0, sizeof(req));
    req.endpoint_url = ep_ua_string_from(u->url);
    ua_wait w;
    rc = ua_run(u, EP_UA_T(GetEndpointsRequest), &req, &w);
    if (rc != EP_EXIT_OK)
        return rc;
    const ep_ua_get_endpoints_response *g = w.resp;
    ep_ua_find_servers_request fr;
    memset(&fr, 0, sizeof(fr));
    fr.endpoint_url = ep_ua_string_from(u->url);
    ua_wait fw;
    int frc = ua_run(u, EP_UA_T(FindServersRequest), &fr, &fw);
    const ep_ua_find_servers_response *f = frc == EP_EXIT_OK ? fw.resp : NULL;
    if (u->json) {
        printf("{\"endpoints\":[");
        for (size_t i = 0; i < g->endpoints_len; i++) {
            const ep_ua_endpoint_description *e = &g->endpoints[i];
            printf("%s{\"url\":", i ? "," : "");
            json_str(&e->endpoint_url);
            printf(",\"policy\":\"%s\",\"policyUri\":", policy_short(&e->security_policy_uri));
            json_str(&e->security_policy_uri);
            printf(",\"mode\":\"%s\",\"securityLevel\":%u,\"applicationUri\":",
                   mode_name(e->security_mode), e->security_level);
            json_str(&e->server.application_uri);
            printf(",\"certificateBytes\":%zu,\"userTokens\":[", e->server_certificate.len);
            for (size_t k = 0; k < e->user_identity_tokens_len; k++) {
                const ep_ua_user_token_policy *t = &e->user_identity_tokens[k];
                printf("%s{\"type\":\"%s\",\"policyId\":", k ? "," : "", token_name(t->token_type));
                json_str(&t->policy_id);
                printf(",\"securityPolicy\":\"%s\"}",
                       t->security_policy_uri.len ? policy_short(&t->security_policy_uri) : "");
            }
            printf("]}");
        }
        printf("],\"servers\":[");
        for (size_t i = 0; f && i < f->servers_len; i++) {
            printf("%s{\"applicationUri\":", i ? "," : "");
            json_str(&f->servers[i].application_uri);
            printf(",\"name\":");
            json_str(&f->servers[i].application_name.text);
            printf("}");
        }
        printf("]}\n");
    } else {
        for (size_t i = 0; f && i < f->servers_len; i++) {
            printf("server: ");
            print_str(&f->servers[i].application_name.text);
            printf(" (");
            print_str(&f->servers[i].application_uri);
            printf(")\n");
        }
        for (size_t i = 0; i < g->endpoints_len; i++) {
            const ep_ua_endpoint_description *e = &g->endpoints[i];
            printf("%2zu  ", i + 1);
            print_str(&e->endpoint_url);
            printf("\n    security: %s / %s (level %u)\n    user tokens:",
                   policy_short(&e->security_policy_uri), mode_name(e->security_mode),
                   e->security_level);
            for (size_t k = 0; k < e->user_identity_tokens_len; k++) {
                const ep_ua_user_token_policy *t = &e->user_identity_tokens[k];
                printf(" %s", token_name(t->token_type));
                if (t->security_policy_uri.len)
                    printf("[%s]", policy_short(&t->security_policy_uri));
            }
            printf("\n");
        }
    }
    wait_free(&w);
    if (f)
        wait_free(&fw);
    return EP_EXIT_OK;
}

/* ------------------------------------------------------------ browse -- */

typedef struct bnode {
    ep_ua_reference_description ref; /* heap copy */
    struct bnode *kids;
    size_t nkids;
} bnode;

static void bnode_clear(bnode *n)
{
    for (size_t i = 0; i < n->nkids; i++)
        bnode_clear(&n->kids[i]);
    free(n->kids);
    ep_ua_clear(&n->ref, EP_UA_T(ReferenceDescription));
}

/* browse one node (all pages) into n->kids */
static int browse_one(ua_cli *u, const ep_ua_nodeid *id, bnode *n)
{
    ep_ua_browse_description d;
    memset(&d, 0, sizeof(d));
    d.node_id = *id;
    d.browse_direction = EP_UA_BROWSE_DIRECTION_FORWARD;
    d.reference_type_id = ep_ua_nodeid_numeric(0, EP_UA_NS0_HierarchicalReferences);
    d.include_subtypes = true;
    d.result_mask = EP_UA_BROWSE_RESULT_MASK_ALL;
    ep_ua_browse_request req;
    memset(&req, 0, sizeof(req));
    req.requested_max_references_per_node = 1000;
    req.nodes_to_browse_len = 1;
    req.nodes_to_browse = &d;
    ua_wait w;
    int rc = ua_run(u, EP_UA_T(BrowseRequest), &req, &w);
    if (rc != EP_EXIT_OK)
        return rc;
    for (;;) {
        const ep_ua_browse_result *r = NULL;
        if (w.type == EP_UA_T(BrowseResponse)) {
            const ep_ua_browse_response *b = w.resp;
            r = b->results_len ? &b->results[0] : NULL;
        } else {
            const ep_ua_browse_next_response *b = w.resp;
            r = b->results_len ? &b->results[0] : NULL;
        }
        if (r == NULL || (r->status_code & 0x80000000u)) {
            if (r)
                fprintf(stderr, "edgeplane opcua: browse: %s\n", ep_ua_status_name(r->status_code));
            wait_free(&w);
            return EP_EXIT_UA_REQUEST;
        }
        if (r->references_len) {
            bnode *k = realloc(n->kids, (n->nkids + r->references_len) * sizeof(*k));
            if (k == NULL) {
                wait_free(&w);
                return EP_EXIT_FAILURE;
            }
            n->kids = k;
            for (size_t i = 0; i < r->references_len; i++) {
                bnode *c = &n->kids[n->nkids];
                memset(c, 0, sizeof(*c));
                if (ep_ua_copy(&r->references[i], &c->ref, EP_UA_T(ReferenceDescription)) == EP_EOK)
                    n->nkids++;
            }
        }
        if (r->continuation_point.len == 0) {
            wait_free(&w);
            return EP_EXIT_OK;
        }
        ep_ua_bytestring cp;
        cp.len = r->continuation_point.len;
        cp.data = malloc(cp.len);
        if (cp.data == NULL) {
            wait_free(&w);
            return EP_EXIT_FAILURE;
        }
        memcpy(cp.data, r->continuation_point.data, cp.len);
        wait_free(&w);
        ep_ua_browse_next_request nx;
        memset(&nx, 0, sizeof(nx));
        nx.continuation_points_len = 1;
        nx.continuation_points = &cp;
        rc = ua_run(u, EP_UA_T(BrowseNextRequest), &nx, &w);
        free(cp.data);
        if (rc != EP_EXIT_OK)
            return rc;
    }
}

static int browse_tree(ua_cli *u, const ep_ua_nodeid *id, bnode *n, int depth)
{
    int rc = browse_one(u, id, n);
    if (rc != EP_EXIT_OK || depth <= 0)
        return rc;
    for (size_t i = 0; i < n->nkids && !g_stop; i++) {
        bnode *k = &n->kids[i];
        if (k->ref.node_id.server_index != 0 ||
            k->ref.node_class == 4 /* methods have no children worth showing */)
            continue;
        rc = browse_tree(u, &k->ref.node_id.node_id, k, depth - 1);
        if (rc != EP_EXIT_OK)
            return rc;
    }
    return EP_EXIT_OK;
}

static void print_tree(const bnode *n, const char *prefix)
{
    for (size_t i = 0; i < n->nkids; i++) {
        const bnode *k = &n->kids[i];
        bool last = i + 1 == n->nkids;
        char id[256];
        ep_uac_nodeid_format(&k->ref.node_id.node_id, id, sizeof(id));
        printf("%s%s ", prefix, last ? "└─" : "├─");
        print_str(&k->ref.display_name.text);
        printf("  (%s, %s)\n", id, node_class_name(k->ref.node_class));
        char np[512];
        snprintf(np, sizeof(np), "%s%s", prefix, last ? "   " : "│  ");
        print_tree(k, np);
    }
}

static void json_tree(const bnode *n)
{
    printf("[");
    for (size_t i = 0; i < n->nkids; i++) {
        const bnode *k = &n->kids[i];
        char id[256];
        ep_uac_nodeid_format(&k->ref.node_id.node_id, id, sizeof(id));
        printf("%s{\"nodeId\":\"%s\",\"browseName\":", i ? "," : "", id);
        json_str(&k->ref.browse_name.name);
        printf(",\"displayName\":");
        json_str(&k->ref.display_name.text);
        printf(",\"nodeClass\":\"%s\"", node_class_name(k->ref.node_class));
        if (k->nkids) {
            printf(",\"children\":");
            json_tree(k);
        }
        printf("}");
    }
    printf("]");
}

static int cmd_browse(ua_cli *u)
{
    const char *start = u->npos > 0 ? u->pos[0] : "i=85";
    ep_ua_nodeid id;
    if (ep_uac_nodeid_parse(start, &id) != EP_EOK) {
        fprintf(stderr, "edgeplane opcua browse: bad NodeId '%s'\n", start);
        return EP_EXIT_USAGE;
    }
    int rc = ua_setup(u, false);
    if (rc != EP_EXIT_OK)
        return rc;
    bnode root;
    memset(&root, 0, sizeof(root));
    rc = browse_tree(u, &id, &root, u->depth < 0 ? 2 : u->depth);
    if (rc == EP_EXIT_OK) {
        if (u->json) {
            printf("{\"nodeId\":\"%s\",\"children\":", start);
            json_tree(&root);
            printf("}\n");
        } else {
            printf("%s\n", start);
            print_tree(&root, "");
        }
    }
    bnode_clear(&root);
    return rc;
}

/* -------------------------------------------------------------- read -- */

static uint32_t attr_by_name(const char *name)
{
    for (uint32_t a = 1; a <= 27; a++) {
        const char *n = ep_ua_attribute_name(a);
        if (n && strcmp(n, name) == 0)
            return a;
    }
    char *end;
    unsigned long v = strtoul(name, &end, 10);
    return *end == 0 && v >= 1 && v <= 27 ? (uint32_t)v : 0;
}

static void print_dv(const char *node, const ep_ua_datavalue *dv, bool json)
{
    char val[8192];
    ep_uac_variant_format(&dv->value, json, val, sizeof(val));
    const char *st = ep_ua_status_name((dv->mask & EP_UA_DATAVALUE_STATUS) ? dv->status : 0);
    char ts[64] = "";
    if (dv->mask & EP_UA_DATAVALUE_SOURCE_TIMESTAMP) {
        ep_ua_variant t;
        memset(&t, 0, sizeof(t));
        t.type = EP_UA_T(DateTime);
        t.data = (void *)(uintptr_t)&dv->source_timestamp;
        ep_uac_variant_format(&t, json, ts, sizeof(ts));
    }
    if (json) {
        printf("{\"node\":\"%s\",\"value\":%s,\"type\":\"%s\",\"status\":\"%s\"", node, val,
               dv->value.type ? dv->value.type->name : "Null", st);
        if (ts[0])
            printf(",\"sourceTimestamp\":%s", ts);
        printf("}");
    } else {
        printf("%s = %s", node, val);
        if (dv->value.type)
            printf("  (%s%s)", dv->value.type->name, dv->value.is_array ? "[]" : "");
        if (strcmp(st, "Good") != 0)
            printf("  [%s]", st);
        if (ts[0])
            printf("  %s", ts);
    }
}

static int cmd_read(ua_cli *u)
{
    if (u->npos < 1) {
        fprintf(stderr, "edgeplane opcua read: NODE missing\n");
        return EP_EXIT_USAGE;
    }
    uint32_t attr = u->attr ? attr_by_name(u->attr) : EP_UA_ATTR_Value;
    if (attr == 0) {
        fprintf(stderr, "edgeplane opcua read: unknown attribute '%s'\n", u->attr);
        return EP_EXIT_USAGE;
    }
    ep_ua_read_value_id ids[16];
    memset(ids, 0, sizeof(ids));
    for (int i = 0; i < u->npos; i++) {
        if (ep_uac_nodeid_parse(u->pos[i], &ids[i].node_id) != EP_EOK) {
            fprintf(stderr, "edgeplane opcua read: bad NodeId '%s'\n", u->pos[i]);
            return EP_EXIT_USAGE;
        }
        ids[i].attribute_id = attr;
    }
    int rc = ua_setup(u, false);
    if (rc != EP_EXIT_OK)
        return rc;
    ep_ua_read_request req;
    memset(&req, 0, sizeof(req));
    req.timestamps_to_return = EP_UA_TIMESTAMPS_TO_RETURN_BOTH;
    req.nodes_to_read_len = (size_t)u->npos;
    req.nodes_to_read = ids;
    ua_wait w;
    rc = ua_run(u, EP_UA_T(ReadRequest), &req, &w);
    if (rc != EP_EXIT_OK)
        return rc;
    const ep_ua_read_response *r = w.resp;
    if (u->json)
        printf("[");
    for (size_t i = 0; i < r->results_len && i < (size_t)u->npos; i++) {
        if (u->json && i)
            printf(",");
        print_dv(u->pos[i], &r->results[i], u->json);
        if (!u->json)
            printf("\n");
        if ((r->results[i].mask & EP_UA_DATAVALUE_STATUS) && (r->results[i].status & 0x80000000u))
            rc = EP_EXIT_UA_REQUEST;
    }
    if (u->json)
        printf("]\n");
    wait_free(&w);
    return rc;
}

/* ------------------------------------------------------------- write -- */

static int cmd_write(ua_cli *u)
{
    if (u->npos != 2) {
        fprintf(stderr, "edgeplane opcua write: want NODE VALUE\n");
        return EP_EXIT_USAGE;
    }
    ep_ua_write_value wv;
    memset(&wv, 0, sizeof(wv));
    if (ep_uac_nodeid_parse(u->pos[0], &wv.node_id) != EP_EOK) {
        fprintf(stderr, "edgeplane opcua write: bad NodeId '%s'\n", u->pos[0]);
        return EP_EXIT_USAGE;
    }
    uint32_t type_id = 0;
    if (u->type) {
        const ep_ua_type *t = ep_ua_type_by_name(u->type);
        if (t == NULL || t->kind > EP_UA_KIND_STRING) {
            fprintf(stderr, "edgeplane opcua write: unsupported --type '%s'\n", u->type);
            return EP_EXIT_USAGE;
        }
        type_id = t->type_id;
    }
    int rc = ua_setup(u, false);
    if (rc != EP_EXIT_OK)
        return rc;
    if (type_id == 0) {
        /* use the type of the current value */
        ep_ua_read_value_id id;
        memset(&id, 0, sizeof(id));
        id.node_id = wv.node_id;
        id.attribute_id = EP_UA_ATTR_Value;
        ep_ua_read_request rq;
        memset(&rq, 0, sizeof(rq));
        rq.timestamps_to_return = EP_UA_TIMESTAMPS_TO_RETURN_NEITHER;
        rq.nodes_to_read_len = 1;
        rq.nodes_to_read = &id;
        ua_wait w;
        rc = ua_run(u, EP_UA_T(ReadRequest), &rq, &w);
        if (rc != EP_EXIT_OK)
            return rc;
        const ep_ua_read_response *r = w.resp;
        if (r->results_len == 1 && r->results[0].value.type && !r->results[0].value.is_array)
            type_id = r->results[0].value.type->type_id;
        wait_free(&w);
        if (type_id == 0) {
            fprintf(stderr,
                    "edgeplane opcua write: cannot tell the type of "
                    "%s; use --type\n",
                    u->pos[0]);
            return EP_EXIT_UA_REQUEST;
        }
    }
    _Alignas(max_align_t) uint8_t storage[32];
    wv.attribute_id = EP_UA_ATTR_Value;
    wv.value.mask = EP_UA_DATAVALUE_VALUE;
    if (ep_uac_variant_parse(u->pos[1], type_id, storage, &wv.value.value) != EP_EOK) {
        fprintf(stderr, "edgeplane opcua write: '%s' is not a valid %s\n", u->pos[1],
                ep_ua_type_builtin(type_id) ? ep_ua_type_builtin(type_id)->name : "value");
        return EP_EXIT_USAGE;
    }
    ep_ua_write_request req;
    memset(&req, 0, sizeof(req));
    req.nodes_to_write_len = 1;
    req.nodes_to_write = &wv;
    ua_wait w;
    rc = ua_run(u, EP_UA_T(WriteRequest), &req, &w);
    if (rc != EP_EXIT_OK)
        return rc;
    const ep_ua_write_response *r = w.resp;
    ep_ua_status st = r->results_len ? r->results[0] : EP_UA_STATUS_BadUnexpectedError;
    if (u->json)
        printf("{\"node\":\"%s\",\"status\":\"%s\"}\n", u->pos[0], ep_ua_status_name(st));
    else
        printf("%s: %s\n", u->pos[0], ep_ua_status_name(st));
    wait_free(&w);
    return (st & 0x80000000u) ? EP_EXIT_UA_REQUEST : EP_EXIT_OK;
}

/* -------------------------------------------------------------- call -- */

static int cmd_call(ua_cli *u)
{
    if (u->npos < 2) {
        fprintf(stderr, "edgeplane opcua call: want OBJECT METHOD [TYPE:VALUE...]\n");
        return EP_EXIT_USAGE;
    }
    ep_ua_call_method_request m;
    memset(&m, 0, sizeof(m));
    if (ep_uac_nodeid_parse(u->pos[0], &m.object_id) != EP_EOK ||
        ep_uac_nodeid_parse(u->pos[1], &m.method_id) != EP_EOK) {
        fprintf(stderr, "edgeplane opcua call: bad NodeId\n");
        return EP_EXIT_USAGE;
    }
    ep_ua_variant args[14];
    _Alignas(max_align_t) uint8_t storage[14][32];
    size_t nargs = 0;
    for (int i = 2; i < u->npos && nargs < 14; i++) {
        char *colon = strchr(u->pos[i], ':');
        if (colon == NULL) {
            fprintf(stderr, "edgeplane opcua call: argument '%s' wants TYPE:VALUE\n", u->pos[i]);
            return EP_EXIT_USAGE;
        }
        *colon = 0;
        const ep_ua_type *t = ep_ua_type_by_name(u->pos[i]);
        if (t == NULL || t->kind > EP_UA_KIND_STRING ||
            ep_uac_variant_parse(colon + 1, t->type_id, storage[nargs], &args[nargs]) != EP_EOK) {
            fprintf(stderr, "edgeplane opcua call: bad argument %s:%s\n", u->pos[i], colon + 1);
            return EP_EXIT_USAGE;
        }
        nargs++;
    }
    m.input_arguments_len = nargs;
    m.input_arguments = nargs ? args : NULL;
    int rc = ua_setup(u, false);
    if (rc != EP_EXIT_OK)
        return rc;
    ep_ua_call_request req;
    memset(&req, 0, sizeof(req));
    req.methods_to_call_len = 1;
    req.methods_to_call = &m;
    ua_wait w;
    rc = ua_run(u, EP_UA_T(CallRequest), &req, &w);
    if (rc != EP_EXIT_OK)
        return rc;
    const ep_ua_call_response *r = w.resp;
    if (r->results_len != 1) {
        wait_free(&w);
        return EP_EXIT_UA_REQUEST;
    }
    const ep_ua_call_method_result *res = &r->results[0];
    if (u->json)
        printf("{\"status\":\"%s\",\"outputs\":[", ep_ua_status_name(res->status_code));
    else
        printf("status: %s\n", ep_ua_status_name(res->status_code));
    for (size_t i = 0; i < res->output_arguments_len; i++) {
        char val[4096];
        ep_uac_variant_format(&res->output_arguments[i], u->json, val, sizeof(val));
        if (u->json)
            printf("%s%s", i ? "," : "", val);
        else
            printf("output[%zu] = %s\n", i, val);
    }
    if (u->json)
        printf("]}\n");
    rc = (res->status_code & 0x80000000u) ? EP_EXIT_UA_REQUEST : EP_EXIT_OK;
    wait_free(&w);
    return rc;
}

/* --------------------------------------------------------- subscribe -- */

typedef struct sub_state {
    ua_cli *u;
    long seen;
    uint64_t first_ms;
    int created;
    ep_err err;
    ep_ua_status st;
    char **select;
    size_t nselect;
    bool done; /* the command returned: late notifications are ignored */
} sub_state;

static void now_text(char *buf, size_t n)
{
    ep_ua_datetime dt = ep_ua_datetime_from_unix_ms((int64_t)ep_clock_wall_ms());
    ep_ua_variant t;
    memset(&t, 0, sizeof(t));
    t.type = EP_UA_T(DateTime);
    t.data = &dt;
    ep_uac_variant_format(&t, false, buf, n);
}

static void on_sub_data(ep_uac *c, uint32_t sub_id, uint32_t h, const ep_ua_datavalue *v, void *ud)
{
    (void)c;
    (void)sub_id;
    sub_state *s = ud;
    if (s->done)
        return;
    if (s->first_ms == 0)
        s->first_ms = ep_clock_mono_ms();
    if (s->u->quiet) {
        s->seen++;
        return;
    }
    char pname[128];
    const char *node = "?";
    if (s->u->pattern) {
        snprintf(pname, sizeof(pname), s->u->pattern, h);
        node = pname;
    } else if (h < (uint32_t)s->u->npos) {
        node = s->u->pos[h];
    }
    if (s->u->count && s->seen >= s->u->count)
        return;
    if (!s->u->json) {
        char ts[64];
        now_text(ts, sizeof(ts));
        printf("%s  ", ts);
    }
    print_dv(node, v, s->u->json);
    printf("\n");
    fflush(stdout);
    s->seen++;
}

static void on_sub_event(ep_uac *c, uint32_t sub_id, uint32_t h, size_t n, const ep_ua_variant *f,
                         void *ud)
{
    (void)c;
    (void)sub_id;
    sub_state *s = ud;
    if (s->done)
        return;
    const char *node = h < (uint32_t)s->u->npos ? s->u->pos[h] : "?";
    if (s->u->count && s->seen >= s->u->count)
        return;
    if (s->u->json)
        printf("{\"node\":\"%s\",\"event\":{", node);
    else {
        char ts[64];
        now_text(ts, sizeof(ts));
        printf("%s  %s event", ts, node);
    }
    for (size_t i = 0; i < n; i++) {
        char val[2048];
        ep_uac_variant_format(&f[i], s->u->json, val, sizeof(val));
        const char *name = i < s->nselect ? s->select[i] : "?";
        if (s->u->json)
            printf("%s\"%s\":%s", i ? "," : "", name, val);
        else
            printf("  %s=%s", name, val);
    }
    printf(s->u->json ? "}}\n" : "\n");
    fflush(stdout);
    s->seen++;
}

static void on_sub_status(ep_uac *c, uint32_t sub_id, ep_ua_status st, uint32_t lost, void *ud)
{
    (void)c;
    (void)sub_id;
    sub_state *s = ud;
    if (s->done)
        return;
    if (s->u->json)
        printf("{\"status\":\"%s\",\"lost\":%u}\n", ep_ua_status_name(st), lost);
    else
        fprintf(stderr, "subscription: %s%s\n", ep_ua_status_name(st),
                lost ? " (notifications lost)" : "");
    fflush(stdout);
}

static void sub_created(ep_uac *c, ep_err err, ep_ua_status st, uint32_t id, const void *resp,
                        void *ud)
{
    (void)c;
    (void)id;
    (void)resp;
    sub_state *s = ud;
    s->err = err;
    s->st = st;
    s->created = 1;
}

static void mon_created(ep_uac *c, ep_err err, ep_ua_status st, uint32_t id, const void *resp,
                        void *ud)
{
    (void)c;
    (void)id;
    sub_state *s = ud;
    s->err = err;
    s->st = st;
    if (err == EP_EOK) {
        const ep_ua_create_monitored_items_response *r = resp;
        for (size_t i = 0; i < r->results_len; i++)
            if (r->results[i].status_code & 0x80000000u) {
                fprintf(stderr, "edgeplane opcua subscribe: item %zu (%s): %s\n", i,
                        i < (size_t)s->u->npos ? s->u->pos[i] : "pattern",
                        ep_ua_status_name(r->results[i].status_code));
                s->err = EP_EPROTO;
                s->st = r->results[i].status_code;
            }
    }
    s->created = 1;
}

/* monitored items for --pattern: node ids formatted into one buffer */
static int pattern_items(ua_cli *u, ep_uac_mon_item **out, char **names)
{
    size_t n = (size_t)u->nitems;
    *out = calloc(n, sizeof(**out));
    *names = calloc(n, 128);
    if (*out == NULL || *names == NULL)
        return EP_EXIT_FAILURE;
    for (size_t i = 0; i < n; i++) {
        char *nm = *names + i * 128;
        snprintf(nm, 128, u->pattern, (unsigned)i);
        if (ep_uac_nodeid_parse(nm, &(*out)[i].node) != EP_EOK) {
            fprintf(stderr, "edgeplane opcua subscribe: bad NodeId '%s'\n", nm);
            return EP_EXIT_USAGE;
        }
        (*out)[i].client_handle = (uint32_t)i;
        (*out)[i].sampling_ms = u->sampling_ms;
        (*out)[i].queue_size = u->queue ? (uint32_t)u->queue : 1;
    }
    return EP_EXIT_OK;
}

static int cmd_subscribe(ua_cli *u)
{
    if (u->npos < 1 && u->pattern == NULL) {
        fprintf(stderr, "edgeplane opcua subscribe: NODE missing\n");
        return EP_EXIT_USAGE;
    }
    if (u->pattern && u->nitems == 0)
        u->nitems = 1;
    ep_uac_mon_item items_fixed[16];
    ep_uac_mon_item *items = items_fixed;
    char *pnames = NULL;
    memset(items_fixed, 0, sizeof(items_fixed));
    char selbuf[1024];
    char *sel[32];
    size_t nsel = 0;
    snprintf(selbuf, sizeof(selbuf), "%s",
             u->select ? u->select : "EventId,Time,SourceName,Severity,Message");
    for (char *save = NULL, *t = strtok_r(selbuf, ",", &save); t && nsel < 32;
         t = strtok_r(NULL, ",", &save))
        sel[nsel++] = t;
    for (int i = 0; i < u->npos; i++) {
        if (ep_uac_nodeid_parse(u->pos[i], &items[i].node) != EP_EOK) {
            fprintf(stderr, "edgeplane opcua subscribe: bad NodeId '%s'\n", u->pos[i]);
            return EP_EXIT_USAGE;
        }
        items[i].client_handle = (uint32_t)i;
        items[i].sampling_ms = u->sampling_ms;
        items[i].queue_size = u->queue ? (uint32_t)u->queue : u->events ? 100 : 10;
        if (u->events) {
            items[i].nselect = nsel;
            items[i].select = (const char *const *)sel;
        }
    }
    size_t nitems = (size_t)u->npos;
    if (u->pattern) {
        ep_uac_mon_item *pi = NULL;
        int prc = pattern_items(u, &pi, &pnames);
        if (prc != EP_EXIT_OK) {
            free(pi);
            free(pnames);
            return prc;
        }
        items = pi;
        nitems = (size_t)u->nitems;
    }
    int rc = ua_setup(u, false);
    if (rc != EP_EXIT_OK)
        goto out;
    /* Static: the client may still deliver a notification while it shuts
     * down after this function returned; `done` makes it a no-op. */
    static sub_state s;
    memset(&s, 0, sizeof(s));
    s.u = u;
    s.select = sel;
    s.nselect = nsel;
    ep_uac_sub_opts so;
    memset(&so, 0, sizeof(so));
    so.publishing_interval_ms = u->interval_ms > 0 ? u->interval_ms : 1000;
    ep_uac_sub_handlers h;
    memset(&h, 0, sizeof(h));
    h.on_data = on_sub_data;
    h.on_event = on_sub_event;
    h.on_status = on_sub_status;
    h.ud = &s;
    uint32_t sid = 0;
    ep_err err = ep_uac_sub_create(u->c, &so, &h, sub_created, &s, &sid);
    if (err == EP_EOK)
        err = ep_uac_sync_wait(u->c, &s.created, u->timeout_ms + 2000);
    if (err == EP_EOK)
        err = s.err;
    /* in batches, so that no request exceeds the server's limits */
    for (size_t off = 0; err == EP_EOK && off < nitems; off += 1000) {
        size_t n = nitems - off < 1000 ? nitems - off : 1000;
        s.created = 0;
        err = ep_uac_mon_create(u->c, sid, n, items + off, mon_created, &s);
        if (err == EP_EOK)
            err = ep_uac_sync_wait(u->c, &s.created, u->timeout_ms + 2000);
        if (err == EP_EOK)
            err = s.err;
    }
    if (err != EP_EOK) {
        fprintf(stderr, "edgeplane opcua subscribe: %s\n",
                s.st ? ep_ua_status_name(s.st) : ep_strerror(err));
        rc = EP_EXIT_UA_REQUEST;
        goto out;
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    uint64_t end =
        u->duration_s > 0 ? ep_clock_mono_ms() + (uint64_t)(u->duration_s * 1000) : UINT64_MAX;
    while (!g_stop && (u->count == 0 || s.seen < u->count) && ep_clock_mono_ms() < end) {
        ep_loop_run_once(u->loop, 100);
        ep_loop_update_time(u->loop);
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (u->stats) {
        ep_uac_stats st;
        ep_uac_get_stats(u->c, &st);
        uint64_t span = s.first_ms ? ep_clock_mono_ms() - s.first_ms : 0;
        fprintf(stderr,
                "{\"stats\":{\"items\":%zu,\"seconds\":%.3f,"
                "\"notifications_per_s\":%.0f,"
                "\"notifications\":%llu,\"publish_responses\":%llu,"
                "\"keepalives\":%llu,\"republished\":%llu,\"lost\":%llu,"
                "\"reconnects\":%llu,\"session_recreated\":%llu,"
                "\"transfers\":%llu,\"timeouts\":%llu}}\n",
                nitems, span / 1000.0, span ? (double)s.seen * 1000.0 / (double)span : 0.0,
                (unsigned long long)st.notifications, (unsigned long long)st.publish_responses,
                (unsigned long long)st.keepalives, (unsigned long long)st.republished,
                (unsigned long long)st.lost, (unsigned long long)st.reconnects,
                (unsigned long long)st.session_recreated, (unsigned long long)st.transfers,
                (unsigned long long)st.timeouts);
    }
    rc = EP_EXIT_OK;
out:
    s.done = true;
    if (items != items_fixed)
        free(items);
    free(pnames);
    return rc;
}

/* ------------------------------------------------------------- trust -- */

static int cmd_trust(ua_cli *u, bool list)
{
    if (u->pki_dir == NULL || (!list && u->url == NULL)) {
        usage_sub(stderr, "trust");
        return EP_EXIT_USAGE;
    }
    ep_ua_pki_opts po;
    memset(&po, 0, sizeof(po));
    po.no_own = true;
    char detail[1024] = "";
    ep_err err = ep_ua_pki_open(u->pki_dir, &po, &u->pki, detail, sizeof(detail));
    if (err != EP_EOK) {
        fprintf(stderr, "edgeplane opcua trust: %s: %s\n", u->pki_dir,
                detail[0] ? detail : ep_strerror(err));
        return EP_EXIT_FAILURE;
    }
    if (list) {
        char cmd[PATH_MAX + 32];
        snprintf(cmd, sizeof(cmd), "%s/rejected", u->pki_dir);
        printf("rejected certificates in %s:\n", cmd);
        fflush(stdout);
        DIR *d = opendir(cmd);
        for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d))
            if (e->d_name[0] != '.')
                printf("  %s\n", e->d_name);
        if (d)
            closedir(d);
        return EP_EXIT_OK;
    }
    err = ep_ua_pki_trust(u->pki, u->url, detail, sizeof(detail));
    if (err != EP_EOK) {
        fprintf(stderr, "edgeplane opcua trust: %s\n", detail[0] ? detail : ep_strerror(err));
        return err == EP_EINVAL || err == EP_ENOTFOUND ? EP_EXIT_USAGE : EP_EXIT_FAILURE;
    }
    printf("%s\n", detail[0] ? detail : "trusted");
    return EP_EXIT_OK;
}

/* -------------------------------------------------------------- main -- */

int ep_cmd_opcua(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? EP_EXIT_USAGE : EP_EXIT_OK;
    }
    static const char *const subs[] = {"endpoints", "browse",    "read", "write",
                                       "call",      "subscribe", "trust"};
    bool known = false;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        known |= strcmp(argv[1], subs[i]) == 0;
    if (!known) {
        fprintf(stderr, "edgeplane opcua: unknown subcommand '%s'\n\n", argv[1]);
        usage_main(stderr);
        return EP_EXIT_USAGE;
    }
    ua_cli u;
    memset(&u, 0, sizeof(u));
    char *pos[16];
    u.pos = pos;
    u.sub = argv[1];
    u.depth = -1;
    u.timeout_ms = 10000;
    bool list = false;
    int prc = parse_args(&u, argc - 1, argv + 1, &list);
    if (prc > 0) {
        usage_sub(stdout, u.sub);
        return EP_EXIT_OK;
    }
    if (prc < 0)
        return EP_EXIT_USAGE;
    ep_log_set_level(u.verbose ? (getenv("EP_UA_TRACE") ? EP_LOG_TRACE : EP_LOG_DEBUG)
                               : EP_LOG_ERROR);
    if (u.npos < 1 && !(list && strcmp(u.sub, "trust") == 0)) {
        fprintf(stderr, "edgeplane opcua %s: %s missing\n\n", u.sub,
                strcmp(u.sub, "trust") == 0 ? "NAME" : "URL");
        usage_sub(stderr, u.sub);
        return EP_EXIT_USAGE;
    }
    if (u.npos >= 1) {
        u.url = u.pos[0];
        u.pos++;
        u.npos--;
    }
    if (strcmp(u.sub, "trust") != 0 && strncmp(u.url, "opc.tcp://", 10) != 0) {
        fprintf(stderr, "edgeplane opcua %s: URL must start with opc.tcp://\n", u.sub);
        return EP_EXIT_USAGE;
    }
    int rc;
    if (strcmp(u.sub, "endpoints") == 0)
        rc = cmd_endpoints(&u);
    else if (strcmp(u.sub, "browse") == 0)
        rc = cmd_browse(&u);
    else if (strcmp(u.sub, "read") == 0)
        rc = cmd_read(&u);
    else if (strcmp(u.sub, "write") == 0)
        rc = cmd_write(&u);
    else if (strcmp(u.sub, "call") == 0)
        rc = cmd_call(&u);
    else if (strcmp(u.sub, "subscribe") == 0)
        rc = cmd_subscribe(&u);
    else
        rc = cmd_trust(&u, list);
    fflush(stdout);
    ua_cleanup(&u);
    return rc;
}

#endif /* HAVE_EP_SVC_OPCUA_CLIENT */
