/* cfg_test.c - config tree, binding, generation. Every message is asserted
 * verbatim, location included, because the message is the product. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/cfg.h"

/* ------------------------------------------------------------------------ */
/* A broker-like table covering every type and flag                         */

enum { MODE_TCP = 1, MODE_TLS = 2, MODE_WS = 3 };

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

typedef struct test_cfg {
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
    ep_cfg_list matrix; /* list of lists of sizes */
    tls_cfg tls;
    char *password;
    uint32_t old_limit;
    int64_t big;
    size_t buf;
} test_cfg;

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

static bool name_check(const ep_cfg_field *f, void *value, const ep_cfg_node *n, ep_cfg_errs *errs)
{
    (void)f;
    (void)n;
    (void)errs;
    return strchr(*(char **)value, ' ') == NULL; /* generic message */
}

static const ep_cfg_field listener_fields[] = {
    {.name = "address",
     .type = EP_CFG_HOSTPORT,
     EP_CFG_AT(listener, address),
     .flags = EP_CFG_REQUIRED,
     .min = 1,
     .help = "Address to listen on."},
    {.name = "backlog",
     .type = EP_CFG_UINT,
     EP_CFG_AT(listener, backlog),
     .def = "128",
     .min = 1,
     .max = 1024,
     .help = "listen() backlog."},
    {.name = "mode",
     .type = EP_CFG_ENUM,
     EP_CFG_AT(listener, mode),
     .def = "tcp",
     .choices = modes,
     .help = "Transport."},
    {.name = "cert", .type = EP_CFG_STRING, EP_CFG_AT(listener, cert), .help = "PEM certificate."},
    {0}};

static const ep_cfg_field listener_elem = {.type = EP_CFG_MAP,
                                           .size = sizeof(listener),
                                           .sub = listener_fields,
                                           .validate = listener_check};

static const ep_cfg_field tag_elem = {.type = EP_CFG_STRING, .size = sizeof(char *), .max = 16};

static const ep_cfg_field size_elem = {.type = EP_CFG_SIZE, .size = sizeof(uint64_t)};
static const ep_cfg_field row_elem = {
    .type = EP_CFG_LIST, .size = sizeof(ep_cfg_list), .sub = &size_elem};

static const ep_cfg_field tls_fields[] = {
    {.name = "cert", .type = EP_CFG_STRING, EP_CFG_AT(tls_cfg, cert), .help = "Certificate file."},
    {.name = "key_password",
     .type = EP_CFG_STRING,
     EP_CFG_AT(tls_cfg, key_password),
     .flags = EP_CFG_SECRET,
     .help = "Private key password."},
    {.name = "verify",
     .type = EP_CFG_BOOL,
     EP_CFG_AT(tls_cfg, verify),
     .def = "true",
     .flags = EP_CFG_RELOADABLE,
     .help = "Verify peers."},
    {0}};

static const ep_cfg_field fields[] = {
    {.name = "enabled",
     .type = EP_CFG_BOOL,
     EP_CFG_AT(test_cfg, enabled),
     .def = "true",
     .help = "Run the service."},
    {.name = "offset",
     .type = EP_CFG_INT,
     EP_CFG_AT(test_cfg, offset),
     .def = "-5",
     .smin = -100,
     .smax = 100,
     .help = "Clock offset."},
    {.name = "port",
     .type = EP_CFG_UINT,
     EP_CFG_AT(test_cfg, port),
     .def = "1883",
     .min = 1,
     .help = "Port."},
    {.name = "max_packet",
     .type = EP_CFG_SIZE,
     EP_CFG_AT(test_cfg, max_packet),
     .def = "1MiB",
     .min = 16,
     .max = 256u << 20,
     .flags = EP_CFG_RELOADABLE,
     .help = "Largest packet accepted."},
    {.name = "keepalive",
     .type = EP_CFG_DURATION,
     EP_CFG_AT(test_cfg, keepalive_ms),
     .def = "60s",
     .max = 86400000,
     .help = "Keepalive | interval."},
    {.name = "name",
     .type = EP_CFG_STRING,
     EP_CFG_AT(test_cfg, name),
     .def = "edge",
     .min = 1,
     .max = 16,
     .validate = name_check,
     .help = "Instance name."},
    {.name = "mode",
     .type = EP_CFG_ENUM,
     EP_CFG_AT(test_cfg, mode),
     .def = "tcp",
     .choices = modes,
     .help = "Default transport."},
    {.name = "bind",
     .type = EP_CFG_HOSTPORT,
     EP_CFG_AT(test_cfg, bind),
     .def = "[::1]:8080",
     .help = "Admin API."},
    {.name = "listeners",
     .type = EP_CFG_LIST,
     EP_CFG_AT(test_cfg, listeners),
     .sub = &listener_elem,
     .max = 8,
     .def = "[{address: '0.0.0.0:1883'}]",
     .help = "Listeners."},
    {.name = "tags",
     .type = EP_CFG_LIST,
     EP_CFG_AT(test_cfg, tags),
     .sub = &tag_elem,
     .max = 4,
     .help = "Free-form tags."},
    {.name = "matrix",
     .type = EP_CFG_LIST,
     EP_CFG_AT(test_cfg, matrix),
     .sub = &row_elem,
     .help = "Rows of sizes."},
    {.name = "tls",
     .type = EP_CFG_MAP,
     EP_CFG_AT(test_cfg, tls),
     .sub = tls_fields,
     .help = "TLS settings."},
    {.name = "password",
     .type = EP_CFG_STRING,
     EP_CFG_AT(test_cfg, password),
     .flags = EP_CFG_SECRET,
     .min = 8,
     .max = 64,
     .help = "Admin password."},
    {.name = "old_limit",
     .type = EP_CFG_UINT,
     EP_CFG_AT(test_cfg, old_limit),
     .flags = EP_CFG_DEPRECATED,
     .help = "Use max_packet."},
    {.name = "big", .type = EP_CFG_INT, EP_CFG_AT(test_cfg, big), .help = "Unbounded signed."},
    {.name = "buf",
     .type = EP_CFG_SIZE,
     EP_CFG_AT(test_cfg, buf),
     .def = "64KiB",
     .help = "Unbounded size."},
    {0}};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static char *errs_text(const ep_cfg_errs *errs)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    ep_cfg_errs_print(errs, f);
    fclose(f);
    return out;
}

/* bind_yaml parses and binds; returns the printed diagnostics. */
static char *bind_yaml(const char *yaml, test_cfg *c, ep_err *rc_out)
{
    ep_cfg_errs errs = {0};
    ep_cfg_tree *t = NULL;
    ep_err rc = ep_cfg_parse_str("t.yaml", yaml, strlen(yaml), NULL, &t, &errs);
    memset(c, 0, sizeof(*c));
    if (rc == EP_EOK)
        rc = ep_cfg_bind(fields, ep_cfg_tree_root(t), c, &errs);
    ep_cfg_tree_free(t);
    char *txt = errs_text(&errs);
    ep_cfg_errs_fini(&errs);
    if (rc_out != NULL)
        *rc_out = rc;
    return txt;
}

/* expect_err: binding yaml fails with exactly these diagnostics. */
static void expect_err(const char *yaml, const char *msgs)
{
    test_cfg c, zero;
    ep_err rc;
    char *txt = bind_yaml(yaml, &c, &rc);
    assert_string_equal(txt, msgs);
    assert_int_equal(rc, EP_ECONFIG);
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&c, &zero, sizeof(c)); /* cleared, not half-filled */
    free(txt);
}

static void expect_ok(const char *yaml, test_cfg *c)
{
    ep_err rc;
    char *txt = bind_yaml(yaml, c, &rc);
    assert_string_equal(txt, "");
    assert_int_equal(rc, EP_EOK);
    free(txt);
}

static char *dump_text(const ep_cfg_field *t, const void *st)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    assert_int_equal(ep_cfg_dump(t, st, f), EP_EOK);
    fclose(f);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Tree                                                                      */

static void test_tree_positions_and_paths(void **state)
{
    (void)state;
    const char *y = "a: 1\n"
                    "listeners:\n"
                    "  - host: x\n"
                    "    port: 18a83\n"
                    "  - {host: y, port: 2}\n";
    ep_cfg_errs errs = {0};
    ep_cfg_tree *t = NULL;
    char path[64];
    assert_int_equal(ep_cfg_parse_str("b.yaml", y, strlen(y), NULL, &t, &errs), EP_EOK);
    const ep_cfg_node *r = ep_cfg_tree_root(t);
    assert_int_equal(r->kind, EP_CFG_NODE_MAP);
    assert_int_equal(r->count, 2);
    const ep_cfg_node *l = ep_cfg_node_get(r, "listeners");
    assert_int_equal(l->kind, EP_CFG_NODE_LIST);
    assert_int_equal(l->count, 2);
    const ep_cfg_node *p = ep_cfg_node_get(l->first, "port");
    assert_string_equal(p->value, "18a83");
    assert_int_equal(p->line, 4);
    assert_int_equal(p->col, 11);
    assert_int_equal(p->key_line, 4);
    assert_int_equal(p->key_col, 5);
    assert_string_equal(p->file, "b.yaml");
    assert_string_equal(ep_cfg_node_path(p, path, sizeof(path)), "listeners[0].port");
    p = ep_cfg_node_get(l->first->next, "port");
    assert_string_equal(ep_cfg_node_path(p, path, sizeof(path)), "listeners[1].port");
    assert_int_equal(p->line, 5);
    assert_int_equal(p->col, 21);
    assert_string_equal(ep_cfg_node_path(r, path, sizeof(path)), "");
    /* truncation keeps the leaf */
    assert_string_equal(ep_cfg_node_path(p, path, 12), "...[1].port");
    assert_null(ep_cfg_node_get(r, "nope"));
    assert_null(ep_cfg_node_get(p, "x"));
    ep_cfg_tree_free(t);
    assert_int_equal(errs.nerr, 0);
    ep_cfg_errs_fini(&errs);
}

static void test_tree_nulls_and_empty(void **state)
{
    (void)state;
    const char *y = "a:\nb: ~\nc: null\nd: ''\ne: \"null\"\nf: NULL\n";
    ep_cfg_errs errs = {0};
    ep_cfg_tree *t = NULL;
    assert_int_equal(ep_cfg_parse_str("n", y, strlen(y), NULL, &t, &errs), EP_EOK);
    const ep_cfg_node *r = ep_cfg_tree_root(t);
    assert_true(ep_cfg_node_get(r, "a")->is_null);
    assert_true(ep_cfg_node_get(r, "b")->is_null);
    assert_true(ep_cfg_node_get(r, "c")->is_null);
    assert_false(ep_cfg_node_get(r, "d")->is_null);
    assert_false(ep_cfg_node_get(r, "e")->is_null);
    assert_true(ep_cfg_node_get(r, "f")->is_null);
    ep_cfg_tree_free(t);
    /* empty input: no root, binds to all defaults */
    assert_int_equal(ep_cfg_parse_str("e", "", 0, NULL, &t, &errs), EP_EOK);
    assert_null(ep_cfg_tree_root(t));
    ep_cfg_tree_free(t);
    assert_int_equal(ep_cfg_parse_str("e", "# only\n", 7, NULL, &t, &errs), EP_EOK);
    assert_null(ep_cfg_tree_root(t));
    ep_cfg_tree_free(t);
    ep_cfg_errs_fini(&errs);
}

static void expect_parse_err(const char *yaml, size_t len, const ep_cfg_limits *lim,
                             const char *msgs)
{
    ep_cfg_errs errs = {0};
    ep_cfg_tree *t = (ep_cfg_tree *)&errs; /* must stay untouched */
    assert_int_equal(ep_cfg_parse_str("t.yaml", yaml, len, lim, &t, &errs), EP_ECONFIG);
    assert_ptr_equal(t, &errs);
    char *txt = errs_text(&errs);
    assert_string_equal(txt, msgs);
    free(txt);
    ep_cfg_errs_fini(&errs);
}

#define PARSE_ERR(y, msgs) expect_parse_err((y), strlen(y), NULL, (msgs))

static void test_tree_rejects(void **state)
{
    (void)state;
    PARSE_ERR("port: 1\nname: x\nport: 2\n",
              "t.yaml:3:1: port: duplicate key (first defined at line 1)\n");
    PARSE_ERR("l:\n  - {a: 1, b: 2, a: 3, a: 4}\n",
              "t.yaml:2:18: l[0].a: duplicate key (first defined at line 2)\n"
              "t.yaml:2:24: l[0].a: duplicate key (first defined at line 2)\n");
    PARSE_ERR("a: &x 1\nb: *x\n", "t.yaml:1:4: a: anchors and aliases are not supported\n"
                                  "t.yaml:2:4: b: anchors and aliases are not supported\n");
    PARSE_ERR("a: !!int 5\nb: !custom {}\n",
              "t.yaml:1:4: a: tags are not supported (\"tag:yaml.org,2002:int\")\n"
              "t.yaml:2:4: b: tags are not supported (\"!custom\")\n");
    /* reported in file order although duplicates are found at map end */
    PARSE_ERR("a: 1\na: 2\nb: !t 3\n", "t.yaml:2:1: a: duplicate key (first defined at line 1)\n"
                                       "t.yaml:3:4: b: tags are not supported (\"!t\")\n");
    PARSE_ERR("a: 1\n---\nb: 2\n", "t.yaml:2:1: only one document is allowed\n");
    PARSE_ERR("a: [1, 2\nb: 3\n", "t.yaml:2:2: syntax error: did not find expected ',' or ']' "
                                  "(while parsing a flow sequence started at 1:4)\n");
    PARSE_ERR("a: b: c\n", "t.yaml:1:5: syntax error: mapping values are not "
                           "allowed in this context\n");
    PARSE_ERR("a:\n  b: 1\n c: 2\n", "t.yaml:3:2: syntax error: did not find expected key (while "
                                     "parsing a block mapping started at 1:1)\n");
    PARSE_ERR("? [1]\n: x\n", "t.yaml:1:3: keys must be scalars\n");
    PARSE_ERR("m:\n  \"\": 1\n", "t.yaml:2:3: m: empty key\n");
    PARSE_ERR("a: \"x\\0y\"\n", "t.yaml:1:4: a: value contains a NUL character\n");
    PARSE_ERR("a: \xff\n", "t.yaml:1:4: invalid input: invalid leading UTF-8 "
                           "octet\n");
    expect_parse_err("a: \0\n", 5, NULL,
                     "t.yaml:1:4: invalid input: control characters are not "
                     "allowed\n");
}

static void test_tree_limits(void **state)
{
    (void)state;
    char deep[200], want[400];
    size_t i, l = 0;
    /* 33 nested lists: the 33rd is rejected at its '[' */
    for (i = 0; i < 40; i++)
        deep[i] = '[';
    for (; i < 80; i++)
        deep[i] = ']';
    deep[i] = '\0';
    l = (size_t)snprintf(want, sizeof(want), "t.yaml:1:33: ");
    for (i = 0; i < 32; i++)
        l += (size_t)snprintf(want + l, sizeof(want) - l, "[0]");
    snprintf(want + l, sizeof(want) - l, ": nesting is deeper than 32 levels\n");
    PARSE_ERR(deep, want);

    ep_cfg_limits lim = {.max_depth = 2};
    expect_parse_err("a: {b: {c: 1}}", 14, &lim,
                     "t.yaml:1:8: a.b: nesting is deeper than 2 levels\n");
    lim = (ep_cfg_limits){.max_bytes = 10};
    expect_parse_err("abcdefghijk: 1", 14, &lim,
                     "t.yaml: input is too large (14 bytes, limit 10)\n");
    lim = (ep_cfg_limits){.max_nodes = 3};
    expect_parse_err("a: [1, 2, 3]", 12, &lim, "t.yaml:1:8: too many nodes (limit 3)\n");
    lim = (ep_cfg_limits){.max_key = 4};
    expect_parse_err("m: {abcde: 1}", 13, &lim,
                     "t.yaml:1:5: m: key is too long (5 bytes, limit 4)\n");
}

static void test_tree_file(void **state)
{
    (void)state;
    char path[] = "/tmp/ep_cfg_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *y = "port: 1884\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);

    ep_cfg_errs errs = {0};
    ep_cfg_tree *t = NULL;
    assert_int_equal(ep_cfg_parse_file(path, NULL, &t, &errs), EP_EOK);
    assert_string_equal(ep_cfg_node_get(ep_cfg_tree_root(t), "port")->file, path);
    ep_cfg_tree_free(t);

    ep_cfg_limits lim = {.max_bytes = 4};
    assert_int_equal(ep_cfg_parse_file(path, &lim, &t, &errs), EP_ECONFIG);
    unlink(path);
    assert_int_equal(ep_cfg_parse_file(path, NULL, &t, &errs), EP_EIO);
    char want[256];
    snprintf(want, sizeof(want),
             "%s: input is too large (11 bytes, limit 4)\n"
             "%s: cannot read: No such file or directory\n",
             path, path);
    char *txt = errs_text(&errs);
    assert_string_equal(txt, want);
    free(txt);
    ep_cfg_errs_fini(&errs);
}

/* ------------------------------------------------------------------------ */
/* Binding                                                                   */

static void test_bind_defaults(void **state)
{
    (void)state;
    test_cfg c;
    memset(&c, 0, sizeof(c));
    ep_cfg_errs errs = {0};
    assert_int_equal(ep_cfg_bind(fields, NULL, &c, &errs), EP_EOK);
    assert_true(c.enabled);
    assert_int_equal(c.offset, -5);
    assert_int_equal(c.port, 1883);
    assert_int_equal(c.max_packet, 1u << 20);
    assert_int_equal(c.keepalive_ms, 60000);
    assert_string_equal(c.name, "edge");
    assert_int_equal(c.mode, MODE_TCP);
    assert_string_equal(c.bind.host, "::1");
    assert_int_equal(c.bind.port, 8080);
    assert_int_equal(c.listeners.count, 1);
    listener *l = EP_CFG_LIST_AT(c.listeners, listener, 0);
    assert_string_equal(l->address.host, "0.0.0.0");
    assert_int_equal(l->address.port, 1883);
    assert_int_equal(l->backlog, 128); /* element defaults inside the list */
    assert_int_equal(l->mode, MODE_TCP);
    assert_null(l->cert);
    assert_int_equal(c.tags.count, 0);
    assert_null(c.tags.items);
    assert_true(c.tls.verify);
    assert_null(c.tls.cert);
    assert_null(c.password);
    assert_int_equal(c.buf, 65536);
    ep_cfg_clear(fields, &c);
    assert_null(c.name);
    assert_int_equal(c.listeners.count, 0);
    ep_cfg_clear(fields, &c); /* idempotent */
    assert_int_equal(errs.nerr + errs.nwarn, 0);

    /* an empty file and a null document mean the same */
    test_cfg d;
    expect_ok("", &d);
    assert_int_equal(d.port, 1883);
    ep_cfg_clear(fields, &d);
    expect_ok("~\n", &d);
    assert_int_equal(d.port, 1883);
    ep_cfg_clear(fields, &d);
    /* null keeps a default */
    expect_ok("port: ~\nname:\ntls: ~\n", &d);
    assert_int_equal(d.port, 1883);
    assert_string_equal(d.name, "edge");
    assert_true(d.tls.verify);
    ep_cfg_clear(fields, &d);
}

static const char *full_yaml =
    "enabled: false\n"
    "offset: -100\n"
    "port: 65535\n"
    "max_packet: 2 MiB\n"
    "keepalive: 1h30m15s250ms\n"
    "name: \"node-1\"\n"
    "mode: ws\n"
    "bind: 127.0.0.1:9000\n"
    "listeners:\n"
    "  - address: \"[::1]:1883\"\n"
    "    backlog: 1024\n"
    "  - address: \"[fe80::1%eth0]:8883\"\n"
    "    mode: tls\n"
    "    cert: /etc/ep/cert.pem\n"
    "  - {address: ':1885', mode: tcp}\n"
    "tags: [a, \"b c\", '', \"\\u00e9\\\"\\x01\\x85\\uFEFF\\U0001F600\"]\n"
    "matrix:\n"
    "  - [1KiB, 2MB]\n"
    "  - []\n"
    "tls:\n"
    "  cert: c.pem\n"
    "  key_password: hunter22\n"
    "  verify: FALSE\n"
    "password: sup3rsecret\n"
    "big: -9223372036854775808\n"
    "buf: 18446744073709551615\n";

static void test_bind_every_type(void **state)
{
    (void)state;
    test_cfg c;
    expect_ok(full_yaml, &c);
    assert_false(c.enabled);
    assert_int_equal(c.offset, -100);
    assert_int_equal(c.port, 65535);
    assert_int_equal(c.max_packet, 2u << 20);
    assert_int_equal(c.keepalive_ms, 5415250);
    assert_string_equal(c.name, "node-1");
    assert_int_equal(c.mode, MODE_WS);
    assert_string_equal(c.bind.host, "127.0.0.1");
    assert_int_equal(c.bind.port, 9000);
    assert_int_equal(c.listeners.count, 3);
    listener *l = c.listeners.items;
    assert_string_equal(l[0].address.host, "::1");
    assert_int_equal(l[0].backlog, 1024);
    assert_string_equal(l[1].address.host, "fe80::1%eth0");
    assert_int_equal(l[1].address.port, 8883);
    assert_int_equal(l[1].mode, MODE_TLS);
    assert_int_equal(l[1].backlog, 128);
    assert_string_equal(l[1].cert, "/etc/ep/cert.pem");
    assert_string_equal(l[2].address.host, "");
    assert_int_equal(l[2].address.port, 1885);
    assert_int_equal(c.tags.count, 4);
    char **tags = c.tags.items;
    assert_string_equal(tags[1], "b c");
    assert_string_equal(tags[2], "");
    assert_string_equal(tags[3], "\xc3\xa9\"\x01\xc2\x85\xef\xbb\xbf"
                                 "\xf0\x9f\x98\x80");
    assert_int_equal(c.matrix.count, 2);
    ep_cfg_list *rows = c.matrix.items;
    assert_int_equal(rows[0].count, 2);
    assert_int_equal(((uint64_t *)rows[0].items)[0], 1024);
    assert_int_equal(((uint64_t *)rows[0].items)[1], 2000000);
    assert_int_equal(rows[1].count, 0);
    assert_string_equal(c.tls.cert, "c.pem");
    assert_string_equal(c.tls.key_password, "hunter22");
    assert_false(c.tls.verify);
    assert_string_equal(c.password, "sup3rsecret");
    assert_true(c.big == INT64_MIN);
    assert_true(c.buf == SIZE_MAX);
    ep_cfg_clear(fields, &c);
}

static void test_bind_units(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t v;
    } sizes[] =
        {
            {"0", 0},
            {"17", 17},
            {"17B", 17},
            {"1kB", 1000},
            {"1KB", 1000},
            {"64KiB", 65536},
            {"1MB", 1000000},
            {"1 MiB", 1048576},
            {"3GB", 3000000000ull},
            {"2GiB", 2147483648ull},
            {"1TB", 1000000000000ull},
            {"1TiB", 1099511627776ull},
            {"1PB", 1000000000000000ull},
            {"16383PiB", 16383ull << 50},
            {"18446744073709551615B", UINT64_MAX},
        },
      durs[] = {
          {"0", 0},           {"0s", 0},        {"1ms", 1},        {"500ms", 500},
          {"30s", 30000},     {"1m", 60000},    {"1h", 3600000},   {"1d", 86400000},
          {"1h30m", 5400000}, {"1m1ms", 60001}, {"10s10s", 20000},
      };
    char y[128];
    test_cfg c;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(y, sizeof(y), "buf: %s\n", sizes[i].text);
        expect_ok(y, &c);
        assert_true(c.buf == sizes[i].v);
        ep_cfg_clear(fields, &c);
    }
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        snprintf(y, sizeof(y), "keepalive: %s\n", durs[i].text);
        expect_ok(y, &c);
        assert_int_equal(c.keepalive_ms, durs[i].v);
        ep_cfg_clear(fields, &c);
    }
#define SZ "t.yaml:1:6: buf: expected a size (e.g. 64KiB, 1MB), got "
    expect_err("buf: 18446744073709551616\n", SZ "\"18446744073709551616\"\n");
    expect_err("buf: 16384PiB\n", SZ "\"16384PiB\"\n");
    expect_err("buf: 1.5MB\n", SZ "\"1.5MB\"\n");
    expect_err("buf: 1mb\n", SZ "\"1mb\"\n");
    expect_err("buf: 1K\n", SZ "\"1K\"\n");
    expect_err("buf: -1\n", SZ "\"-1\"\n");
    expect_err("buf: 064KiB\n", SZ "\"064KiB\"\n");
    expect_err("buf: '64 '\n", SZ "\"64 \"\n");
    expect_err("buf: KiB\n", SZ "\"KiB\"\n");
#define DU                                                                                         \
    "t.yaml:1:12: keepalive: expected a duration 0s..1d (e.g. 30s, "                               \
    "500ms, 1h), got "
    expect_err("keepalive: 30\n", DU "\"30\"\n");
    expect_err("keepalive: 1d1ms\n", DU "\"1d1ms\"\n");
    expect_err("keepalive: 1y\n", DU "\"1y\"\n");
    expect_err("keepalive: 1h30\n", DU "\"1h30\"\n");
    expect_err("keepalive: 1.5s\n", DU "\"1.5s\"\n");
    expect_err("keepalive: 99999999999999999999ms\n", DU "\"99999999999999999999ms\"\n");
    expect_err("keepalive: 9999999999999999d\n", DU "\"9999999999999999d\"\n");
    expect_err("keepalive: 5124095576030431d5124095576030431d\n",
               DU "\"5124095576030431d5124095576030431d\"\n");
}

static void test_bind_errors(void **state)
{
    (void)state;
    expect_err("port: 18a83\n", "t.yaml:1:7: port: expected an integer 1..65535, got "
                                "\"18a83\"\n");
    expect_err("port: 0\n", "t.yaml:1:7: port: expected an integer 1..65535, got \"0\"\n");
    expect_err("port: 65536\n", "t.yaml:1:7: port: expected an integer "
                                "1..65535, got \"65536\"\n");
    expect_err("port: 010\n", "t.yaml:1:7: port: expected an integer 1..65535, got \"010\"\n");
    expect_err("port: [1]\n", "t.yaml:1:7: port: expected an integer 1..65535, got a list\n");
    expect_err("offset: -101\n", "t.yaml:1:9: offset: expected an integer "
                                 "-100..100, got \"-101\"\n");
    expect_err("big: 9223372036854775808\n", "t.yaml:1:6: big: expected an integer "
                                             "-9223372036854775808..9223372036854775807, got "
                                             "\"9223372036854775808\"\n");
    expect_err("enabled: yes\n", "t.yaml:1:10: enabled: expected true or false, got \"yes\"\n");
    expect_err("max_packet: 512MiB\n", "t.yaml:1:13: max_packet: expected a size 16B..256MiB (e.g. "
                                       "64KiB, 1MB), got \"512MiB\"\n");
    expect_err("name: a very long instance name\n",
               "t.yaml:1:7: name: expected a string of 1..16 bytes, got 25 "
               "bytes\n");
    expect_err("name: ''\n", "t.yaml:1:7: name: expected a string of 1..16 "
                             "bytes, got 0 bytes\n");
    expect_err("name: {a: 1}\n", "t.yaml:1:7: name: expected a string of 1..16 bytes, got a "
                                 "map\n");
    expect_err("name: a b\n", "t.yaml:1:7: name: invalid value\n");
    expect_err("mode: tsl\n", "t.yaml:1:7: mode: expected one of tcp|tls|ws, "
                              "got \"tsl\"; did you mean \"tls\"?\n");
    expect_err("mode: quic\n", "t.yaml:1:7: mode: expected one of tcp|tls|ws, got \"quic\"\n");
    expect_err("password: abc\n", "t.yaml:1:11: password: expected a string "
                                  "of 8..64 bytes, got 3 bytes\n");
    expect_err("password: [abc]\n", "t.yaml:1:11: password: expected a string of 8..64 bytes, got "
                                    "a list\n");
    expect_err("tls: 5\n", "t.yaml:1:6: tls: expected a map, got \"5\"\n");
    expect_err("tls: {verify: 1}\n",
               "t.yaml:1:15: tls.verify: expected true or false, got \"1\"\n");
    expect_err("tags: [a, b, c, d, e]\n",
               "t.yaml:1:7: tags: expected a list of 0..4 items, got 5\n");
    expect_err("tags: a\n", "t.yaml:1:7: tags: expected a list of 0..4 items, "
                            "got \"a\"\n");
    expect_err("tags: [toolongtag_abcdefg]\n",
               "t.yaml:1:8: tags[0]: expected a string of 0..16 bytes, got 18 "
               "bytes\n");
    expect_err("matrix: [[1KiB, 1kib]]\n",
               "t.yaml:1:17: matrix[0][1]: expected a size (e.g. 64KiB, 1MB), "
               "got \"1kib\"\n");
    /* long and odd values are escaped and cut */
    expect_err("mode: \"a\\tb\\\"c\\\\d\"\n", "t.yaml:1:7: mode: expected one of tcp|tls|ws, got "
                                              "\"a\\x09b\\\"c\\\\d\"\n");
    expect_err("mode: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
               "\xc3\xa9\xc3\xa9\xc3\xa9\n",
               "t.yaml:1:7: mode: expected one of tcp|tls|ws, got "
               "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
               "\xc3\xa9...\"\n");
}

static void test_bind_hostport(void **state)
{
    (void)state;
    static const struct {
        const char *text, *host;
        unsigned port;
    } ok[] = {
        {"0.0.0.0:1883", "0.0.0.0", 1883},
        {"localhost:1", "localhost", 1},
        {"broker-1.example.com:8883", "broker-1.example.com", 8883},
        {"\":0\"", "", 0},
        {"\"[::]:1883\"", "::", 1883},
        {"\"[::1]:1883\"", "::1", 1883},
        {"\"[2001:db8::1]:65535\"", "2001:db8::1", 65535},
        {"\"[1:2:3:4:5:6:7:8]:1\"", "1:2:3:4:5:6:7:8", 1},
        {"\"[::ffff:192.0.2.1]:1\"", "::ffff:192.0.2.1", 1},
        {"\"[fe80::1%eth0]:1\"", "fe80::1%eth0", 1},
    };
    static const char *bad[] = {
        "localhost",
        "\"::1:1883\"",
        "\"[::1]\"",
        "\"[::1]1883\"",
        "\"[::1]:70000\"",
        "\"host:\"",
        "\"[1:2:3:4:5:6:7:8:9]:1\"",
        "\"[1::2::3]:1\"",
        "\"[12345::]:1\"",
        "\"[::1%]:1\"",
        "\"[::ffff:1.2.3.256]:1\"",
        "\"[:1]:1\"",
        "\"[1:]:1\"",
        "a/b:1",
        "host:01",
        "\"[]:1\"",
        "\"[1:2:3:4:5:6:7]:1\"",
        "x:-1",
    };
    char y[128], want[256];
    test_cfg c;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(y, sizeof(y), "bind: %s\n", ok[i].text);
        expect_ok(y, &c);
        assert_string_equal(c.bind.host, ok[i].host);
        assert_int_equal(c.bind.port, ok[i].port);
        ep_cfg_clear(fields, &c);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *shown = bad[i];
        char unq[64];
        if (shown[0] == '"') {
            snprintf(unq, sizeof(unq), "%.*s", (int)strlen(shown) - 2, shown + 1);
            shown = unq;
        }
        snprintf(y, sizeof(y), "bind: %s\n", bad[i]);
        snprintf(want, sizeof(want),
                 "t.yaml:1:7: bind: expected host:port with port 0..65535, "
                 "got \"%s\"\n",
                 shown);
        expect_err(y, want);
    }
    /* per-field port bounds */
    expect_err("listeners: [{address: 'h:0'}]\n",
               "t.yaml:1:23: listeners[0].address: expected host:port with "
               "port 1..65535, got \"h:0\"\n");
}

static void test_bind_lists_of_tables(void **state)
{
    (void)state;
    expect_err("listeners:\n"
               "  - address: 0.0.0.0:1883\n"
               "    backlog: 18a83\n",
               "t.yaml:3:14: listeners[0].backlog: expected an integer "
               "1..1024, got \"18a83\"\n");
    expect_err("listeners:\n"
               "  - backlog: 5\n"
               "  - address: ~\n"
               "  - ~\n",
               "t.yaml:2:5: listeners[0]: missing required key 'address'\n"
               "t.yaml:3:14: listeners[1].address: expected host:port with "
               "port 1..65535, got null\n"
               "t.yaml:4:5: listeners[2]: missing required key 'address'\n");
    expect_err("listeners:\n  - {address: 'a:1', mode: tls}\n",
               "t.yaml:2:5: listeners[0]: mode tls needs 'cert'\n");
    expect_err("listeners: [1]\n", "t.yaml:1:13: listeners[0]: expected a map, got \"1\"\n");
    expect_err("listeners: {address: 'a:1'}\n",
               "t.yaml:1:12: listeners: expected a list of 0..8 items, got a "
               "map\n");
    /* an explicit empty list replaces the default one */
    test_cfg c;
    expect_ok("listeners: []\n", &c);
    assert_int_equal(c.listeners.count, 0);
    ep_cfg_clear(fields, &c);
}

static void test_bind_unknown_keys(void **state)
{
    (void)state;
    expect_err("prot: 1\n", "t.yaml:1:1: prot: unknown key; did you mean 'port'?\n");
    expect_err("PORT: 1\n", "t.yaml:1:1: PORT: unknown key; did you mean 'port'?\n");
    expect_err("keep_alive: 1s\n", "t.yaml:1:1: keep_alive: unknown key; did you mean "
                                   "'keepalive'?\n");
    expect_err("zzz: 1\n", "t.yaml:1:1: zzz: unknown key\n");
    expect_err("tls:\n  cret: x\n", "t.yaml:2:3: tls.cret: unknown key; did you mean 'cert'?\n");
    expect_err("listeners:\n  - adress: a:1\n",
               "t.yaml:2:5: listeners[0].adress: unknown key; did you mean "
               "'address'?\n"
               "t.yaml:2:5: listeners[0]: missing required key 'address'\n");
    /* deprecated names are accepted but never suggested */
    expect_err("old_limt: 1\n", "t.yaml:1:1: old_limt: unknown key\n");
}

static void test_bind_collects_errors(void **state)
{
    (void)state;
    const char *y = "port: x\nmode: y\nzzz: 1\nold_limit: 5\nenabled: 2\n";
    test_cfg c;
    expect_err(y, "t.yaml:1:7: port: expected an integer 1..65535, got \"x\"\n"
                  "t.yaml:2:7: mode: expected one of tcp|tls|ws, got \"y\"\n"
                  "t.yaml:3:1: zzz: unknown key\n"
                  "t.yaml:4:1: old_limit: warning: deprecated key\n"
                  "t.yaml:5:10: enabled: expected true or false, got \"2\"\n");

    /* max caps stored messages; the rest are counted */
    ep_cfg_errs errs = {.max = 2};
    ep_cfg_tree *t = NULL;
    assert_int_equal(ep_cfg_parse_str("t.yaml", y, strlen(y), NULL, &t, &errs), EP_EOK);
    memset(&c, 0, sizeof(c));
    assert_int_equal(ep_cfg_bind(fields, ep_cfg_tree_root(t), &c, &errs), EP_ECONFIG);
    assert_int_equal(errs.nerr, 4);
    assert_int_equal(errs.nwarn, 1);
    assert_int_equal(errs.count, 2);
    assert_int_equal(errs.dropped, 3);
    assert_int_equal(errs.items[1].line, 2); /* positions for UIs */
    assert_int_equal(errs.items[1].col, 7);
    assert_false(errs.items[1].warning);
    char *txt = errs_text(&errs);
    assert_string_equal(txt, "t.yaml:1:7: port: expected an integer 1..65535, got \"x\"\n"
                             "t.yaml:2:7: mode: expected one of tcp|tls|ws, got \"y\"\n"
                             "3 more messages not shown\n");
    free(txt);
    ep_cfg_errs_fini(&errs);
    assert_int_equal(errs.max, 2);
    assert_int_equal(errs.count, 0);

    /* a warning alone does not fail the bind */
    txt = bind_yaml("old_limit: 7\n", &c, NULL);
    assert_string_equal(txt, "t.yaml:1:1: old_limit: warning: deprecated key\n");
    assert_int_equal(c.old_limit, 7);
    free(txt);
    ep_cfg_clear(fields, &c);

    /* ep_cfg_errs_add without a node, and the root must be a map */
    ep_cfg_errs_add(&errs, NULL, "plain %d", 1);
    ep_cfg_errs_warn(&errs, NULL, "careful");
    txt = errs_text(&errs);
    assert_string_equal(txt, "plain 1\nwarning: careful\n");
    free(txt);
    ep_cfg_errs_fini(&errs);
    ep_cfg_tree_free(t);
    expect_err("[1, 2]\n", "t.yaml:1:1: expected a map, got a list\n");
    expect_err("hello\n", "t.yaml:1:1: expected a map, got a scalar\n");
}

static void test_bind_required_root(void **state)
{
    (void)state;
    typedef struct {
        char *endpoint;
        uint8_t level;
    } req_cfg;
    static const ep_cfg_field req[] = {
        {.name = "endpoint",
         .type = EP_CFG_STRING,
         EP_CFG_AT(req_cfg, endpoint),
         .flags = EP_CFG_REQUIRED},
        {.name = "level", .type = EP_CFG_UINT, EP_CFG_AT(req_cfg, level), .def = "3"},
        {0}};
    req_cfg c = {0};
    ep_cfg_errs errs = {0};
    assert_int_equal(ep_cfg_bind(req, NULL, &c, &errs), EP_ECONFIG);
    char *txt = errs_text(&errs);
    assert_string_equal(txt, "missing required key 'endpoint'\n");
    free(txt);
    assert_int_equal(c.level, 0); /* cleared on failure */
    ep_cfg_errs_fini(&errs);
}

static void test_bind_table_bugs(void **state)
{
    (void)state;
    typedef struct {
        uint32_t a;
        int e;
        ep_cfg_list l;
    } bug_cfg;
    static const ep_cfg_field bad_size[] = {
        {.name = "a", .type = EP_CFG_BOOL, EP_CFG_AT(bug_cfg, a)}, {0}};
    static const ep_cfg_field bad_def[] = {
        {.name = "a", .type = EP_CFG_UINT, EP_CFG_AT(bug_cfg, a), .def = "x"}, {0}};
    static const ep_cfg_field bad_enum[] = {
        {.name = "e", .type = EP_CFG_ENUM, EP_CFG_AT(bug_cfg, e)}, {0}};
    static const ep_cfg_field elem = {.type = EP_CFG_UINT, .size = 4};
    static const ep_cfg_field bad_list[] = {
        {.name = "l", .type = EP_CFG_LIST, EP_CFG_AT(bug_cfg, l), .sub = &elem, .def = "[1, ["},
        {0}};
    static const ep_cfg_field bad_bounds[] = {
        {.name = "a", .type = EP_CFG_UINT, EP_CFG_AT(bug_cfg, a), .min = 5, .max = 4}, {0}};
    static const struct {
        const ep_cfg_field *t;
        const char *msg;
    } cases[] = {
        {bad_size, "internal: field 'a': storage size does not match the "
                   "type\n"},
        {bad_def, "<default>: a: expected an integer 0..4294967295, got "
                  "\"x\"\ninternal: field 'a': invalid default\n"},
        {bad_enum, "internal: field 'e': enum without choices\n"},
        {bad_list, "internal: field 'l': default is not valid YAML\n"},
        {bad_bounds, "internal: field 'a': min is above max\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bug_cfg c = {0};
        ep_cfg_errs errs = {0};
        assert_int_equal(ep_cfg_bind(cases[i].t, NULL, &c, &errs), EP_EINVAL);
        char *txt = errs_text(&errs);
        assert_string_equal(txt, cases[i].msg);
        free(txt);
        ep_cfg_errs_fini(&errs);
    }
}

/* ------------------------------------------------------------------------ */
/* Generation                                                                */

static void test_dump_roundtrip(void **state)
{
    (void)state;
    test_cfg a, b;
    expect_ok(full_yaml, &a);
    char *y = dump_text(fields, &a);
    /* secrets are masked, so restore them before comparing */
    assert_non_null(strstr(y, "password: \"********\"\n"));
    assert_non_null(strstr(y, "  key_password: \"********\"\n"));
    assert_null(strstr(y, "old_limit"));
    assert_null(strstr(y, "hunter22"));
    expect_ok(y, &b);
    assert_false(ep_cfg_equal(fields, &a, &b));
    free(b.password);
    b.password = strdup(a.password);
    free(b.tls.key_password);
    b.tls.key_password = strdup(a.tls.key_password);
    assert_true(ep_cfg_equal(fields, &a, &b));
    free(y);
    ep_cfg_clear(fields, &b);

    /* defaults, empty lists and NULL strings round-trip too */
    ep_cfg_clear(fields, &a);
    expect_ok("listeners: []\n", &a);
    y = dump_text(fields, &a);
    assert_string_equal(y, "enabled: true\n"
                           "offset: -5\n"
                           "port: 1883\n"
                           "max_packet: 1MiB\n"
                           "keepalive: 1m\n"
                           "name: \"edge\"\n"
                           "mode: tcp\n"
                           "bind: \"[::1]:8080\"\n"
                           "listeners: []\n"
                           "tags: []\n"
                           "matrix: []\n"
                           "tls:\n"
                           "  cert: ~\n"
                           "  key_password: ~\n"
                           "  verify: true\n"
                           "password: ~\n"
                           "big: 0\n"
                           "buf: 64KiB\n");
    expect_ok(y, &b);
    assert_true(ep_cfg_equal(fields, &a, &b));
    free(y);
    ep_cfg_clear(fields, &a);
    ep_cfg_clear(fields, &b);

    /* nested layout */
    expect_ok("listeners: [{address: 'h:1', cert: c}]\n"
              "matrix: [[1, 1000], [], [1024]]\ntags: [x]\n",
              &a);
    y = dump_text(fields, &a);
    assert_non_null(strstr(y, "listeners:\n"
                              "  - address: \"h:1\"\n"
                              "    backlog: 128\n"
                              "    mode: tcp\n"
                              "    cert: \"c\"\n"
                              "tags:\n"
                              "  - \"x\"\n"
                              "matrix:\n"
                              "  -\n"
                              "    - 1B\n"
                              "    - 1kB\n"
                              "  - []\n"
                              "  -\n"
                              "    - 1KiB\n"));
    expect_ok(y, &b);
    assert_true(ep_cfg_equal(fields, &a, &b));
    free(y);
    ep_cfg_clear(fields, &a);
    ep_cfg_clear(fields, &b);
}

static void test_doc_and_schema(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_int_equal(ep_cfg_doc(listener_fields, f), EP_EOK);
    fclose(f);
    assert_string_equal(out, "| Key | Type | Default | Allowed | Flags | Description |\n"
                             "|-----|------|---------|---------|-------|-------------|\n"
                             "| `address` | host:port |  | port 1..65535 | required | Address to "
                             "listen on. |\n"
                             "| `backlog` | integer | `128` | 1..1024 |  | listen() backlog. |\n"
                             "| `mode` | enum | `tcp` | `tcp`, `tls`, `ws` |  | Transport. |\n"
                             "| `cert` | string |  |  |  | PEM certificate. |\n");
    free(out);

    f = open_memstream(&out, &len);
    assert_int_equal(ep_cfg_doc(fields, f), EP_EOK);
    fclose(f);
    assert_non_null(strstr(out, "| `listeners[].backlog` | integer | `128` "));
    assert_non_null(strstr(out, "| `tls.key_password` | string |  |  | "
                                "secret | Private key password. |\n"));
    assert_non_null(strstr(out, "| `matrix` | list of list of size |"));
    assert_non_null(strstr(out, "Keepalive \\| interval."));
    assert_non_null(strstr(out, "| `old_limit` | integer |  | 0..4294967295 | "
                                "deprecated | Use max_packet. |"));
    free(out);

    f = open_memstream(&out, &len);
    assert_int_equal(ep_cfg_schema(fields, f), EP_EOK);
    fclose(f);
    assert_non_null(strstr(out, "\"$schema\": \"https://json-schema.org/draft/2020-12/schema\""));
    assert_non_null(strstr(out, "\"port\": {\n"
                                "      \"x-ep-type\": \"integer\",\n"
                                "      \"type\": \"integer\",\n"
                                "      \"minimum\": 1,\n"
                                "      \"maximum\": 65535,\n"
                                "      \"default\": 1883,\n"
                                "      \"description\": \"Port.\"\n"
                                "    }"));
    assert_non_null(strstr(out, "\"enum\": [\"tcp\", \"tls\", \"ws\"]"));
    assert_non_null(strstr(out, "\"required\": [\"address\"]"));
    assert_non_null(strstr(out, "\"writeOnly\": true"));
    assert_non_null(strstr(out, "\"deprecated\": true"));
    assert_non_null(strstr(out, "\"x-reloadable\": true"));
    /* JSON is YAML: the schema must parse (and has no duplicate keys) */
    ep_cfg_errs errs = {0};
    ep_cfg_tree *t = NULL;
    assert_int_equal(ep_cfg_parse_str("schema.json", out, len, NULL, &t, &errs), EP_EOK);
    const ep_cfg_node *props = ep_cfg_node_get(ep_cfg_tree_root(t), "properties");
    assert_int_equal(props->count, 16);
    const ep_cfg_node *hp = ep_cfg_node_get(ep_cfg_node_get(props, "bind"), "pattern");
    assert_string_equal(hp->value, "^(\\[[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?\\]"
                                   "|[A-Za-z0-9._-]*):(0|[1-9][0-9]{0,4})$");
    ep_cfg_tree_free(t);
    ep_cfg_errs_fini(&errs);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_positions_and_paths),
        cmocka_unit_test(test_tree_nulls_and_empty),
        cmocka_unit_test(test_tree_rejects),
        cmocka_unit_test(test_tree_limits),
        cmocka_unit_test(test_tree_file),
        cmocka_unit_test(test_bind_defaults),
        cmocka_unit_test(test_bind_every_type),
        cmocka_unit_test(test_bind_units),
        cmocka_unit_test(test_bind_errors),
        cmocka_unit_test(test_bind_hostport),
        cmocka_unit_test(test_bind_lists_of_tables),
        cmocka_unit_test(test_bind_unknown_keys),
        cmocka_unit_test(test_bind_collects_errors),
        cmocka_unit_test(test_bind_required_root),
        cmocka_unit_test(test_bind_table_bugs),
        cmocka_unit_test(test_dump_roundtrip),
        cmocka_unit_test(test_doc_and_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
