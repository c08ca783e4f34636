/*
 * fuzz_cfg.c - libFuzzer harness for the config reader and binder.
 *
 * Arbitrary bytes are parsed as YAML and bound to a sample table that uses
 * every field type (nested maps, lists of maps, lists of lists, enums,
 * host:port, secrets, a deprecated key, a validate callback). Besides
 * memory safety the harness checks one property: whatever binds, dumps to
 * YAML that parses and binds again to an equal struct (secrets and
 * deprecated keys, which the dump hides, excepted). Errors are printed to
 * exercise the formatting path.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"

enum { MODE_TCP = 1, MODE_TLS, MODE_WS };

typedef struct listener {
    ep_cfg_hostport address;
    uint16_t backlog;
    int mode;
    char *cert;
} listener;

typedef struct tls_cfg {
    char *cert;
    char *key_password;
    bool verify;
} tls_cfg;

typedef struct sample {
    bool enabled;
    int32_t offset;
    uint16_t port;
    uint64_t max_packet;
    uint32_t keepalive_ms;
    char *name;
    int8_t mode;
    ep_cfg_hostport bind;
    ep_cfg_list listeners;
    ep_cfg_list tags;
    ep_cfg_list matrix;
    tls_cfg tls;
    char *password;
    uint32_t old_limit;
    int64_t big;
    size_t buf;
    uint64_t timeout_ms;
} sample;

static const ep_cfg_enum modes[] = {
    {"tcp", MODE_TCP}, {"tls", MODE_TLS}, {"ws", MODE_WS}, {NULL, 0}};

static bool listener_check(const ep_cfg_field *f, void *value, const ep_cfg_node *n,
                           ep_cfg_errs *errs)
{
    const listener *l = value;
    (void)f;
    if (l->mode == MODE_TLS && l->cert == NULL) {
        ep_cfg_errs_add(errs, n, "mode tls needs 'cert'");
        return false;
    }
    return true;
}

static const ep_cfg_field listener_fields[] = {
    {.name = "address",
     .type = EP_CFG_HOSTPORT,
     EP_CFG_AT(listener, address),
     .flags = EP_CFG_REQUIRED,
     .min = 1},
    {.name = "backlog",
     .type = EP_CFG_UINT,
     EP_CFG_AT(listener, backlog),
     .def = "128",
     .min = 1,
     .max = 1024},
    {.name = "mode",
     .type = EP_CFG_ENUM,
     EP_CFG_AT(listener, mode),
     .def = "tcp",
     .choices = modes},
    {.name = "cert", .type = EP_CFG_STRING, EP_CFG_AT(listener, cert)},
    {0}};
static const ep_cfg_field listener_elem = {.type = EP_CFG_MAP,
                                           .size = sizeof(listener),
                                           .sub = listener_fields,
                                           .validate = listener_check};
static const ep_cfg_field tag_elem = {.type = EP_CFG_STRING, .size = sizeof(char *)};
static const ep_cfg_field size_elem = {.type = EP_CFG_SIZE, .size = sizeof(uint64_t)};
static const ep_cfg_field row_elem = {
    .type = EP_CFG_LIST, .size = sizeof(ep_cfg_list), .sub = &size_elem};
static const ep_cfg_field tls_fields[] = {
    {.name = "cert", .type = EP_CFG_STRING, EP_CFG_AT(tls_cfg, cert)},
    {.name = "key_password",
     .type = EP_CFG_STRING,
     EP_CFG_AT(tls_cfg, key_password),
     .flags = EP_CFG_SECRET},
    {.name = "verify", .type = EP_CFG_BOOL, EP_CFG_AT(tls_cfg, verify), .def = "true"},
    {0}};
static const ep_cfg_field fields[] = {
    {.name = "enabled", .type = EP_CFG_BOOL, EP_CFG_AT(sample, enabled), .def = "true"},
    {.name = "offset",
     .type = EP_CFG_INT,
     EP_CFG_AT(sample, offset),
     .def = "-5",
     .smin = -100,
     .smax = 100},
    {.name = "port", .type = EP_CFG_UINT, EP_CFG_AT(sample, port), .def = "1883", .min = 1},
    {.name = "max_packet",
     .type = EP_CFG_SIZE,
     EP_CFG_AT(sample, max_packet),
     .def = "1MiB",
     .min = 16,
     .max = 256u << 20},
    {.name = "keepalive",
     .type = EP_CFG_DURATION,
     EP_CFG_AT(sample, keepalive_ms),
     .def = "60s",
     .max = 86400000},
    {.name = "name",
     .type = EP_CFG_STRING,
     EP_CFG_AT(sample, name),
     .def = "edge",
     .min = 1,
     .max = 64},
    {.name = "mode", .type = EP_CFG_ENUM, EP_CFG_AT(sample, mode), .def = "tcp", .choices = modes},
    {.name = "bind", .type = EP_CFG_HOSTPORT, EP_CFG_AT(sample, bind), .def = "[::1]:8080"},
    {.name = "listeners",
     .type = EP_CFG_LIST,
     EP_CFG_AT(sample, listeners),
     .sub = &listener_elem,
     .max = 64,
     .def = "[{address: '0.0.0.0:1883'}]"},
    {.name = "tags", .type = EP_CFG_LIST, EP_CFG_AT(sample, tags), .sub = &tag_elem},
    {.name = "matrix", .type = EP_CFG_LIST, EP_CFG_AT(sample, matrix), .sub = &row_elem},
    {.name = "tls", .type = EP_CFG_MAP, EP_CFG_AT(sample, tls), .sub = tls_fields},
    {.name = "password",
     .type = EP_CFG_STRING,
     EP_CFG_AT(sample, password),
     .flags = EP_CFG_SECRET},
    {.name = "old_limit",
     .type = EP_CFG_UINT,
     EP_CFG_AT(sample, old_limit),
     .flags = EP_CFG_DEPRECATED},
    {.name = "big", .type = EP_CFG_INT, EP_CFG_AT(sample, big)},
    {.name = "buf", .type = EP_CFG_SIZE, EP_CFG_AT(sample, buf)},
    {.name = "timeout", .type = EP_CFG_DURATION, EP_CFG_AT(sample, timeout_ms)},
    {0}};

static FILE *devnull;

static void roundtrip(const sample *a)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return;
    if (ep_cfg_dump(fields, a, f) != EP_EOK)
        abort();
    fclose(f);

    ep_cfg_errs errs = {0};
    ep_cfg_tree *t = NULL;
    sample b;
    memset(&b, 0, sizeof(b));
    if (ep_cfg_parse_str("dump", out, len, NULL, &t, &errs) != EP_EOK ||
        ep_cfg_bind(fields, ep_cfg_tree_root(t), &b, &errs) != EP_EOK) {
        fprintf(stderr, "dump does not re-parse:\n%s\n", out);
        ep_cfg_errs_print(&errs, stderr);
        abort();
    }
    /* The dump masks secrets and leaves deprecated keys out. */
    free(b.password);
    b.password = a->password ? strdup(a->password) : NULL;
    free(b.tls.key_password);
    b.tls.key_password = a->tls.key_password ? strdup(a->tls.key_password) : NULL;
    b.old_limit = a->old_limit;
    if (!ep_cfg_equal(fields, a, &b)) {
        fprintf(stderr, "dump binds to a different struct:\n%s\n", out);
        abort();
    }
    ep_cfg_clear(fields, &b);
    ep_cfg_tree_free(t);
    ep_cfg_errs_fini(&errs);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ep_cfg_limits lim = {.max_bytes = 64 * 1024, .max_nodes = 4096};
    ep_cfg_errs errs = {.max = 8};
    ep_cfg_tree *t = NULL;
    sample s;

    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    memset(&s, 0, sizeof(s));
    if (ep_cfg_parse_str("fuzz.yaml", (const char *)data, size, &lim, &t, &errs) == EP_EOK &&
        ep_cfg_bind(fields, ep_cfg_tree_root(t), &s, &errs) == EP_EOK) {
        roundtrip(&s);
        ep_cfg_clear(fields, &s);
    }
    if (devnull != NULL)
        ep_cfg_errs_print(&errs, devnull);
    ep_cfg_tree_free(t);
    ep_cfg_errs_fini(&errs);
    return 0;
}
