/*
 * cfg.h - configuration: one generic tree, one binding table per service.
 *
 * A configuration file (or a resource sent by a user, so untrusted input) is
 * read in two steps:
 *
 *   1. ep_cfg_parse_file / ep_cfg_parse_str turn YAML text into a read-only
 *      tree of ep_cfg_node (map, list, scalar). Every node remembers its file,
 *      line, column and parent, so any later error can say where it came from:
 *          broker.yaml:7:11: listeners[0].port: expected an integer ...
 *      The reader is bounded (input bytes, nesting depth, node count, key
 *      length) and strict: duplicate keys, anchors/aliases, tags and more
 *      than one document are rejected (aliases are never expanded, so no
 *      "billion laughs").
 *
 *   2. ep_cfg_bind fills a C struct from a subtree using a table of
 *      ep_cfg_field (redis static_configs[] + h2o directives): name, type,
 *      storage (offset/size), default as text, bounds, flags, help and an
 *      optional validate callback. Defaults are applied first and parsed by
 *      the same code as file values; unknown keys are rejected with a
 *      "did you mean" suggestion; every error is collected in ep_cfg_errs.
 *
 * The same tables generate the effective config (ep_cfg_dump), the Markdown
 * reference (ep_cfg_doc) and a JSON Schema (ep_cfg_schema).
 *
 * Declaring and binding (see docs/configuration.md for the full story):
 *
 *   typedef struct listener { ep_cfg_hostport addr; char *tls_cert; } listener;
 *   typedef struct broker_cfg { ep_cfg_list listeners; uint32_t max_inflight;
 *                               uint64_t keepalive_ms; } broker_cfg;
 *
 *   static const ep_cfg_field listener_fields[] = {
 *       {.name = "address", .type = EP_CFG_HOSTPORT, EP_CFG_AT(listener, addr),
 *        .def = "0.0.0.0:1883", .min = 1, .help = "Address to listen on."},
 *       {.name = "tls_cert", .type = EP_CFG_STRING, EP_CFG_AT(listener, tls_cert),
 *        .help = "PEM certificate file; enables TLS."},
 *       {0}};
 *   static const ep_cfg_field listener_elem =
 *       {.type = EP_CFG_MAP, .size = sizeof(listener), .sub = listener_fields};
 *   static const ep_cfg_field broker_fields[] = {
 *       {.name = "listeners", .type = EP_CFG_LIST, EP_CFG_AT(broker_cfg, listeners),
 *        .sub = &listener_elem, .def = "[{address: '0.0.0.0:1883'}]", .min = 1},
 *       {.name = "keepalive", .type = EP_CFG_DURATION,
 *        EP_CFG_AT(broker_cfg, keepalive_ms), .def = "60s", .max = 3600000,
 *        .flags = EP_CFG_RELOADABLE, .help = "Default keepalive."},
 *       {0}};
 *
 *   ep_cfg_errs errs = {0};
 *   ep_cfg_tree *t = NULL;
 *   broker_cfg c = {0};
 *   ep_err rc = ep_cfg_parse_file("broker.yaml", NULL, &t, &errs);
 *   if (rc == EP_EOK)
 *       rc = ep_cfg_bind(broker_fields, ep_cfg_tree_root(t), &c, &errs);
 *   ep_cfg_errs_print(&errs, stderr);  // errors and deprecation warnings
 *   ep_cfg_tree_free(t);               // c does not point into the tree
 *   ...
 *   ep_cfg_clear(broker_fields, &c);
 *
 * Threads: nothing here has global state. A tree is immutable after parsing
 * and may be read from any number of threads; a struct being bound, an
 * ep_cfg_errs and a FILE belong to the calling thread.
 *
 * Diagnostics: every function that takes an ep_cfg_errs requires it (not
 * NULL) and only appends to it.
 *
 * Ownership: ep_cfg_bind allocates strings and list items with malloc; they
 * belong to the bound struct and are released by ep_cfg_clear. The struct
 * never points into the tree.
 */
#ifndef EP_CORE_CFG_H
#define EP_CORE_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

/* ------------------------------------------------------------------------ */
/* Error list                                                                */

/* One diagnostic, already formatted as "FILE:LINE:COL: KEY: message" (the
 * KEY part is omitted at the document root, LINE:COL when unknown).
 * Warnings carry "warning: " in front of the message. */
typedef struct ep_cfg_msg {
    char *text;
    bool warning;
    uint32_t line, col; /* position in text (0 when none), for UIs */
} ep_cfg_msg;

/* ep_cfg_errs collects diagnostics from parsing and binding, in order.
 * Messages from one parse are sorted by position; binding reports in key
 * order. Zero-initialise it (`ep_cfg_errs e = {0};`); set `max` to keep more or
 * fewer than EP_CFG_ERRS_MAX messages. Errors past `max` are counted in
 * `nerr` but not stored (`dropped` of them); warnings past `max` likewise. */
typedef struct ep_cfg_errs {
    size_t max;     /* messages kept; 0 means EP_CFG_ERRS_MAX */
    size_t nerr;    /* errors reported, stored or not */
    size_t nwarn;   /* warnings reported, stored or not */
    size_t count;   /* messages stored in items[] */
    size_t dropped; /* messages not stored because of max (or memory) */
    ep_cfg_msg *items;
    size_t _cap;
} ep_cfg_errs;

#define EP_CFG_ERRS_MAX 20

/* ep_cfg_errs_fini frees the stored messages and zeroes the list (keeping
 * max). Safe on a zeroed or already finished list. Caller's thread. */
void ep_cfg_errs_fini(ep_cfg_errs *errs);

/* ep_cfg_errs_print writes each stored message on its own line to f, then
 * "N more errors not shown" if some were dropped. Borrows both. */
void ep_cfg_errs_print(const ep_cfg_errs *errs, FILE *f);

/* ------------------------------------------------------------------------ */
/* Generic tree                                                              */

typedef enum ep_cfg_kind {
    EP_CFG_NODE_SCALAR = 0,
    EP_CFG_NODE_MAP,
    EP_CFG_NODE_LIST,
} ep_cfg_kind;

/* A node of the parsed tree. Read-only; owned by its ep_cfg_tree. The key
 * path ("listeners[1].port") is not stored but rebuilt from the parent chain
 * by ep_cfg_node_path: storing it per node would let a small, deep document
 * with long keys cost memory quadratic in its size. */
typedef struct ep_cfg_node ep_cfg_node;
struct ep_cfg_node {
    ep_cfg_kind kind;
    const char *file;           /* as given to the parser; shared by all nodes */
    uint32_t line, col;         /* 1-based position of the value */
    const char *key;            /* key in the parent map, NULL otherwise */
    uint32_t key_line, key_col; /* position of the key (parent map only) */
    size_t index;               /* position in the parent list/map */
    const ep_cfg_node *parent;
    /* scalar: NUL-terminated text (never contains NUL), len bytes */
    const char *value;
    size_t len;
    bool is_null; /* plain "", "~", "null", "Null", "NULL" */
    /* map and list: children in document order */
    const ep_cfg_node *first, *next;
    size_t count;
};

/* Parser limits. Zero-initialise; 0 in a field selects its default. */
typedef struct ep_cfg_limits {
    size_t max_bytes;   /* input size; default 1 MiB */
    unsigned max_depth; /* nesting of maps/lists; default 32, at most 256 */
    size_t max_nodes;   /* nodes in the tree; default 100000 */
    size_t max_key;     /* key length in bytes; default 256 */
} ep_cfg_limits;

typedef struct ep_cfg_tree ep_cfg_tree;

/* ep_cfg_parse_str parses one YAML document of len bytes from data (which
 * need not be NUL-terminated) into a new tree. `name` labels error messages
 * and nodes (copied). `lim` may be NULL for the defaults. Diagnostics are
 * added to errs. Borrows everything; *out is set only on success and owned
 * by the caller (ep_cfg_tree_free). An empty document gives a tree whose
 * root is NULL. Any thread.
 * Returns: EP_EOK; EP_ECONFIG on a syntax error, duplicate key, anchor,
 * alias, tag, non-scalar or over-long key, second document, input too large,
 * nesting too deep or too many nodes (all reported in errs); EP_ENOMEM. */
ep_err ep_cfg_parse_str(const char *name, const char *data, size_t len, const ep_cfg_limits *lim,
                        ep_cfg_tree **out, ep_cfg_errs *errs);

/* ep_cfg_parse_file reads path (at most lim->max_bytes) and parses it like
 * ep_cfg_parse_str, with path as the name. Any thread (blocking I/O).
 * Returns: as ep_cfg_parse_str, plus EP_EIO when the file cannot be opened
 * or read (reported in errs as "PATH: cannot read: <strerror>"). */
ep_err ep_cfg_parse_file(const char *path, const ep_cfg_limits *lim, ep_cfg_tree **out,
                         ep_cfg_errs *errs);

/* ep_cfg_tree_root returns the root node, NULL for an empty document. */
const ep_cfg_node *ep_cfg_tree_root(const ep_cfg_tree *t);

/* ep_cfg_tree_free frees the tree and all its nodes; NULL is fine. */
void ep_cfg_tree_free(ep_cfg_tree *t);

/* ep_cfg_node_get returns the child of map `n` with key `key`, or NULL (also
 * when n is NULL or not a map). Linear in the number of children. */
const ep_cfg_node *ep_cfg_node_get(const ep_cfg_node *n, const char *key);

/* ep_cfg_node_path writes n's key path ("listeners[1].port", "" for the
 * root) into buf (always NUL-terminated; truncated with "..." if it does
 * not fit) and returns buf. */
char *ep_cfg_node_path(const ep_cfg_node *n, char *buf, size_t size);

/* ep_cfg_errs_add records an error about node n (NULL: no location)
 * formatted as "FILE:LINE:COL: KEY: <fmt...>". For validate callbacks and
 * cross-field checks done by a service after binding. */
void ep_cfg_errs_add(ep_cfg_errs *errs, const ep_cfg_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ep_cfg_errs_warn is ep_cfg_errs_add for a warning (does not fail a bind). */
void ep_cfg_errs_warn(ep_cfg_errs *errs, const ep_cfg_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------ */
/* Binding tables                                                            */

/* Field types and the C storage each expects at .off (.size must match):
 *   BOOL      bool
 *   INT       int8/16/32/64_t, bounds .smin/.smax; decimal, optional '-'
 *   UINT      uint8/16/32/64_t, bounds .min/.max; decimal
 *   SIZE      uint32/64_t bytes; "65536", "64KiB", "1MB", "2 GiB"
 *             (kB/KB/MB/GB/TB/PB are powers of 1000, KiB..PiB of 1024)
 *   DURATION  uint32/64_t milliseconds; "0", "500ms", "30s", "1h30m", "2d"
 *             (units d h m s ms, summed)
 *   STRING    char * (malloc'd, NUL-terminated); .min/.max bound the length
 *   ENUM      int8/16/32/64_t holding the .value of one of .choices
 *   HOSTPORT  ep_cfg_hostport; "host:port", "[::1]:1883", ":1883" (any
 *             address); .min/.max bound the port (default 0..65535)
 *   LIST      ep_cfg_list; .sub points to ONE field describing an element
 *             (its .type, .size = element size, bounds, .sub, .choices; its
 *             .name and .off are ignored). .min/.max bound the item count.
 *   MAP       a nested struct; .sub is its field table. .size is unused
 *             except for a LIST element, where it is the struct size.
 * Bounds: 0 means "none" (the storage limit); .max/.smax 0 means no upper
 * bound, so a bound of exactly 0 cannot be expressed as a maximum. */
typedef enum ep_cfg_type {
    EP_CFG_BOOL = 1,
    EP_CFG_INT,
    EP_CFG_UINT,
    EP_CFG_SIZE,
    EP_CFG_DURATION,
    EP_CFG_STRING,
    EP_CFG_ENUM,
    EP_CFG_HOSTPORT,
    EP_CFG_LIST,
    EP_CFG_MAP,
} ep_cfg_type;

enum {
    EP_CFG_RELOADABLE = 1u << 0, /* may change on reload without restart */
    EP_CFG_SECRET = 1u << 1,     /* never printed: masked in dump and errors */
    EP_CFG_DEPRECATED = 1u << 2, /* accepted with a warning; not dumped */
    EP_CFG_REQUIRED = 1u << 3,   /* must be present (and not null) */
};

typedef struct ep_cfg_enum {
    const char *name;
    int64_t value;
} ep_cfg_enum;

typedef struct ep_cfg_hostport {
    char host[256]; /* without brackets; "" means any address */
    uint16_t port;
} ep_cfg_hostport;

typedef struct ep_cfg_list {
    void *items; /* count elements of the element field's .size bytes */
    size_t count;
} ep_cfg_list;

#define EP_CFG_LIST_AT(list, T, i) (&((T *)(list).items)[(i)])

typedef struct ep_cfg_field ep_cfg_field;

/* Validate callback: called after a value from the file was parsed and
 * stored (not for defaults). `value` points at the field's storage (the
 * nested struct for MAP, a list element's storage inside a list), `n` at
 * its node. Report problems with ep_cfg_errs_add(errs, n or a child, ...)
 * and return false. Called on the binding thread. */
typedef bool (*ep_cfg_validate_fn)(const ep_cfg_field *f, void *value, const ep_cfg_node *n,
                                   ep_cfg_errs *errs);

struct ep_cfg_field {
    const char *name; /* key; NULL terminates a table */
    ep_cfg_type type;
    unsigned flags;             /* EP_CFG_RELOADABLE | SECRET | DEPRECATED | REQUIRED */
    size_t off, size;           /* storage, see EP_CFG_AT */
    const char *def;            /* default, parsed like file text; NULL = zero/empty.
                                   LIST defaults are YAML flow text: "[a, b]" */
    uint64_t min, max;          /* UINT SIZE DURATION STRING LIST HOSTPORT bounds */
    int64_t smin, smax;         /* INT bounds */
    const ep_cfg_enum *choices; /* ENUM, terminated by {NULL, 0} */
    const ep_cfg_field *sub;    /* MAP: table; LIST: element field */
    const char *help;           /* one sentence for docs and schema */
    ep_cfg_validate_fn validate;
};

/* EP_CFG_AT(T, member) fills .off and .size inside a field initializer. */
#define EP_CFG_AT(T, m) .off = offsetof(T, m), .size = sizeof(((T *)0)->m)

/* ep_cfg_bind fills the fields of `table` in the struct at `st` from map
 * node `n`: defaults first, then the values present in n. n may be NULL or a
 * null scalar, meaning "all defaults". The struct's table fields must be
 * zeroed or cleared on entry (other members are not touched).
 * Errors (unknown keys with suggestions, wrong types, out of bounds, missing
 * required keys, validate failures) and deprecation warnings are all added
 * to errs, not just the first. Borrows table, n, errs; st keeps the
 * allocations it receives. Calling thread.
 * Returns: EP_EOK; EP_ECONFIG if any error was reported, and then every
 * table field of st is cleared (freed and zeroed), never half-filled;
 * EP_EINVAL for a table bug (bad storage size, bad default; also reported);
 * EP_ENOMEM. */
ep_err ep_cfg_bind(const ep_cfg_field *table, const ep_cfg_node *n, void *st, ep_cfg_errs *errs);

/* ep_cfg_clear frees what ep_cfg_bind allocated in st and zeroes the table
 * fields. Safe on zeroed, half-bound or already cleared structs. */
void ep_cfg_clear(const ep_cfg_field *table, void *st);

/* ep_cfg_equal compares the table fields of two bound structs (deeply,
 * strings by content). For reload change detection and round-trip tests. */
bool ep_cfg_equal(const ep_cfg_field *table, const void *a, const void *b);

/* ------------------------------------------------------------------------ */
/* Generation                                                                */

/* ep_cfg_dump writes the bound struct as YAML that ep_cfg_bind accepts and
 * that binds to an equal struct, except that SECRET values print as
 * "********" and DEPRECATED fields are omitted. Borrows all arguments.
 * Returns: EP_EOK; EP_EIO if writing to f failed. */
ep_err ep_cfg_dump(const ep_cfg_field *table, const void *st, FILE *f);

/* ep_cfg_doc writes a Markdown reference table of `table`: key (nested keys
 * as "listeners[].port"), type, default, bounds and flags, help.
 * Returns: EP_EOK; EP_EIO if writing to f failed. */
ep_err ep_cfg_doc(const ep_cfg_field *table, FILE *f);

/* ep_cfg_schema writes a JSON Schema (draft 2020-12) describing the YAML
 * accepted for `table` (types, bounds, enums, patterns for units, defaults,
 * descriptions; "deprecated", "writeOnly" for secrets, "x-reloadable").
 * Returns: EP_EOK; EP_EIO if writing to f failed. */
ep_err ep_cfg_schema(const ep_cfg_field *table, FILE *f);

#endif
