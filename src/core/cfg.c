/*
 * cfg.c - YAML text to ep_cfg_node tree, and the diagnostics list.
 *
 * Design: libyaml's event API feeds a small state machine with an explicit
 * stack of open containers (no recursion, so nesting depth costs heap, and
 * it is capped anyway). All nodes and strings of a tree live in one arena
 * freed in one call. The input is treated as hostile:
 *   - size, depth, node count and key length are bounded before allocating;
 *   - aliases are rejected, never expanded (no exponential blow-up), and so
 *     are anchors and tags, which would only be useful with them;
 *   - duplicate keys are found by sorting each map's keys when it closes
 *     (n log n: a 100k-key map must not cost 10^10 string compares);
 *   - key paths are rebuilt on demand from parent links, not stored.
 * Soft problems (duplicate key, anchor, tag, NUL in a value) are recorded
 * and parsing goes on so one run reports them all; structural ones (syntax,
 * limits, second document) stop the parse.
 */
#include "core/cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/cfg_int.h"

/* ------------------------------------------------------------------------ */
/* Diagnostics                                                               */

bool ep_cfg__errs_full(const ep_cfg_errs *errs)
{
    size_t max = errs->max ? errs->max : EP_CFG_ERRS_MAX;
    return errs->count >= max;
}

static void errs_push(ep_cfg_errs *errs, char *text, bool warning, uint32_t line, uint32_t col)
{
    if (text == NULL || ep_cfg__errs_full(errs)) {
        free(text);
        errs->dropped++;
        return;
    }
    if (errs->count == errs->_cap) {
        size_t cap = errs->_cap ? errs->_cap * 2 : 8;
        ep_cfg_msg *items = realloc(errs->items, cap * sizeof(*items));
        if (items == NULL) {
            free(text);
            errs->dropped++;
            return;
        }
        errs->items = items;
        errs->_cap = cap;
    }
    errs->items[errs->count].text = text;
    errs->items[errs->count].warning = warning;
    errs->items[errs->count].line = line;
    errs->items[errs->count].col = col;
    errs->count++;
}

void ep_cfg__vreport(ep_cfg_errs *errs, bool warning, const ep_cfg_node *n, bool at_key,
                     const char *fmt, va_list ap)
{
    char loc[600], path[512], msg[1024];
    uint32_t line = 0, col = 0;

    if (warning)
        errs->nwarn++;
    else
        errs->nerr++;
    if (ep_cfg__errs_full(errs)) {
        errs->dropped++;
        return;
    }
    loc[0] = '\0';
    if (n != NULL) {
        size_t l;
        line = n->line;
        col = n->col;
        if (at_key && n->key != NULL) {
            line = n->key_line;
            col = n->key_col;
        }
        if (line > 0)
            l = (size_t)snprintf(loc, sizeof(loc), "%s:%u:%u: ", n->file, (unsigned)line,
                                 (unsigned)col);
        else
            l = (size_t)snprintf(loc, sizeof(loc), "%s: ", n->file);
        if (l >= sizeof(loc))
            l = sizeof(loc) - 1;
        ep_cfg_node_path(n, path, sizeof(path));
        if (path[0] != '\0')
            snprintf(loc + l, sizeof(loc) - l, "%s: ", path);
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t need = strlen(loc) + (warning ? 9 : 0) + strlen(msg) + 1;
    char *text = malloc(need);
    if (text != NULL)
        snprintf(text, need, "%s%s%s", loc, warning ? "warning: " : "", msg);
    errs_push(errs, text, warning, line, col);
}

void ep_cfg__report(ep_cfg_errs *errs, bool warning, const ep_cfg_node *n, bool at_key,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ep_cfg__vreport(errs, warning, n, at_key, fmt, ap);
    va_end(ap);
}

void ep_cfg_errs_add(ep_cfg_errs *errs, const ep_cfg_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ep_cfg__vreport(errs, false, n, false, fmt, ap);
    va_end(ap);
}

void ep_cfg_errs_warn(ep_cfg_errs *errs, const ep_cfg_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ep_cfg__vreport(errs, true, n, false, fmt, ap);
    va_end(ap);
}

void ep_cfg_errs_fini(ep_cfg_errs *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->count; i++)
        free(errs->items[i].text);
    free(errs->items);
    size_t max = errs->max;
    memset(errs, 0, sizeof(*errs));
    errs->max = max;
}

void ep_cfg_errs_print(const ep_cfg_errs *errs, FILE *f)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(f, "%s\n", errs->items[i].text);
    if (errs->dropped > 0)
        fprintf(f, "%zu more message%s not shown\n", errs->dropped, errs->dropped == 1 ? "" : "s");
}

/* ------------------------------------------------------------------------ */
/* Paths                                                                     */

char *ep_cfg_node_path(const ep_cfg_node *n, char *buf, size_t size)
{
    /* Build right to left at the end of buf, then move to the front. */
    char seg[48];
    size_t pos = size - 1;
    bool cut = false;

    if (size == 0)
        return buf;
    buf[pos] = '\0';
    for (; n != NULL && (n->parent != NULL || n->key != NULL); n = n->parent) {
        const char *s;
        size_t sl;
        bool dot = n->key != NULL && n->parent != NULL &&
                   (n->parent->parent != NULL || n->parent->key != NULL);
        if (n->key != NULL) {
            s = n->key;
            sl = strlen(s);
        } else {
            snprintf(seg, sizeof(seg), "[%zu]", n->index);
            s = seg;
            sl = strlen(s);
        }
        if (sl + (dot ? 1 : 0) + 3 > pos) {
            cut = true;
            break;
        }
        pos -= sl;
        memcpy(buf + pos, s, sl);
        if (dot)
            buf[--pos] = '.';
    }
    if (cut) {
        pos -= 3;
        memcpy(buf + pos, "...", 3);
    }
    memmove(buf, buf + pos, size - pos);
    return buf;
}

const ep_cfg_node *ep_cfg_node_get(const ep_cfg_node *n, const char *key)
{
    if (n == NULL || n->kind != EP_CFG_NODE_MAP)
        return NULL;
    for (const ep_cfg_node *c = n->first; c != NULL; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Arena                                                                     */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

struct ep_cfg_tree {
    chunk *chunks;
    const ep_cfg_node *root;
    char *file;
};

#define CHUNK_SIZE 16384

static void *arena_alloc(ep_cfg_tree *t, size_t n)
{
    const size_t al = _Alignof(max_align_t);
    n = (n + al - 1) & ~(al - 1);
    chunk *c = t->chunks;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        chunk *nc = malloc(sizeof(*nc) + cap);
        if (nc == NULL)
            return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (c != NULL && n > CHUNK_SIZE) {
            /* Big one-off: keep the current chunk open for small ones. */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            t->chunks = nc;
        }
        c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

void ep_cfg_tree_free(ep_cfg_tree *t)
{
    if (t == NULL)
        return;
    for (chunk *c = t->chunks, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(t->file);
    free(t);
}

const ep_cfg_node *ep_cfg_tree_root(const ep_cfg_tree *t) { return t != NULL ? t->root : NULL; }

/* ------------------------------------------------------------------------ */
/* Parser                                                                    */

typedef struct frame {
    ep_cfg_node *node, *last;
    const char *key; /* pending key in a map, NULL when expecting one */
    uint32_t key_line, key_col;
} frame;

typedef struct pstate {
    yaml_parser_t yp;
    ep_cfg_tree *t;
    ep_cfg_errs *errs;
    ep_cfg_limits lim;
    frame *stack;
    unsigned depth;
    size_t nodes;
    unsigned docs;
    bool failed; /* a soft error was reported; keep parsing */
    const char *data;
    size_t len;
} pstate;

/* A located message without a node (syntax errors, limits). */
static void report_at(pstate *ps, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_at(pstate *ps, uint32_t line, uint32_t col, const char *fmt, ...)
{
    ep_cfg_node fake = {.file = ps->t->file, .line = line, .col = col};
    va_list ap;
    va_start(ap, fmt);
    ep_cfg__vreport(ps->errs, false, &fake, false, fmt, ap);
    va_end(ap);
}

static uint32_t mark_u32(size_t v) { return v >= UINT32_MAX ? UINT32_MAX : (uint32_t)(v + 1); }

static void syntax_error(pstate *ps)
{
    const yaml_parser_t *yp = &ps->yp;
    const char *problem = yp->problem ? yp->problem : "unknown error";
    if (yp->error == YAML_READER_ERROR) {
        /* The reader has no marks; derive line and column from the byte. */
        size_t off = yp->problem_offset < ps->len ? yp->problem_offset : ps->len;
        size_t line = 0, col = 0;
        for (size_t i = 0; i < off; i++) {
            if (ps->data[i] == '\n') {
                line++;
                col = 0;
            } else {
                col++;
            }
        }
        report_at(ps, mark_u32(line), mark_u32(col), "invalid input: %s", problem);
    } else if (yp->context != NULL) {
        report_at(ps, mark_u32(yp->problem_mark.line), mark_u32(yp->problem_mark.column),
                  "syntax error: %s (%s started at %u:%u)", problem, yp->context,
                  (unsigned)mark_u32(yp->context_mark.line),
                  (unsigned)mark_u32(yp->context_mark.column));
    } else {
        report_at(ps, mark_u32(yp->problem_mark.line), mark_u32(yp->problem_mark.column),
                  "syntax error: %s", problem);
    }
}

/* Soft check for anchors and tags on a node or key. */
static void check_props(pstate *ps, const ep_cfg_node *at, bool at_key, const yaml_char_t *anchor,
                        const yaml_char_t *tag)
{
    if (anchor != NULL) {
        ep_cfg__report(ps->errs, false, at, at_key, "anchors and aliases are not supported");
        ps->failed = true;
    }
    if (tag != NULL) {
        ep_cfg__report(ps->errs, false, at, at_key, "tags are not supported (\"%.40s\")",
                       (const char *)tag);
        ps->failed = true;
    }
}

static char *arena_strdup(ep_cfg_tree *t, const void *s, size_t len)
{
    char *p = arena_alloc(t, len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* new_node allocates a node at mark and links it under the open container.
 * Returns NULL with *rc set on a hard failure. */
static ep_cfg_node *new_node(pstate *ps, ep_cfg_kind kind, yaml_mark_t mark, ep_err *rc)
{
    if (++ps->nodes > ps->lim.max_nodes) {
        report_at(ps, mark_u32(mark.line), mark_u32(mark.column), "too many nodes (limit %zu)",
                  ps->lim.max_nodes);
        *rc = EP_ECONFIG;
        return NULL;
    }
    ep_cfg_node *n = arena_alloc(ps->t, sizeof(*n));
    if (n == NULL) {
        *rc = EP_ENOMEM;
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->file = ps->t->file;
    n->line = mark_u32(mark.line);
    n->col = mark_u32(mark.column);
    if (ps->depth == 0) {
        ps->t->root = n;
        return n;
    }
    frame *fr = &ps->stack[ps->depth - 1];
    ep_cfg_node *p = fr->node;
    n->parent = p;
    n->index = p->count;
    if (p->kind == EP_CFG_NODE_MAP) {
        n->key = fr->key;
        n->key_line = fr->key_line;
        n->key_col = fr->key_col;
        fr->key = NULL;
    }
    if (fr->last != NULL)
        fr->last->next = n;
    else
        p->first = n;
    fr->last = n;
    p->count++;
    return n;
}

static int cmp_key(const void *a, const void *b)
{
    const ep_cfg_node *x = *(const ep_cfg_node *const *)a;
    const ep_cfg_node *y = *(const ep_cfg_node *const *)b;
    int c = strcmp(x->key, y->key);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static ep_err check_duplicates(pstate *ps, const ep_cfg_node *map)
{
    if (map->count < 2)
        return EP_EOK;
    const ep_cfg_node **v = malloc(map->count * sizeof(*v));
    if (v == NULL)
        return EP_ENOMEM;
    size_t i = 0;
    for (const ep_cfg_node *c = map->first; c != NULL; c = c->next)
        v[i++] = c;
    qsort(v, map->count, sizeof(*v), cmp_key);
    for (i = 1; i < map->count; i++) {
        size_t first = i - 1;
        while (i < map->count && strcmp(v[first]->key, v[i]->key) == 0) {
            ep_cfg__report(ps->errs, false, v[i], true, "duplicate key (first defined at line %u)",
                           (unsigned)v[first]->key_line);
            ps->failed = true;
            i++;
        }
    }
    free(v);
    return EP_EOK;
}

/* handle_scalar: a map key, or a value. */
static ep_err handle_scalar(pstate *ps, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    ep_err rc = EP_EOK;
    frame *fr = ps->depth > 0 ? &ps->stack[ps->depth - 1] : NULL;

    if (fr != NULL && fr->node->kind == EP_CFG_NODE_MAP && fr->key == NULL) {
        /* A key. Until it is known to be sane, locate problems at the map
         * (same path) but at the key's position. */
        ep_cfg_node at = *fr->node;
        at.line = mark_u32(ev->start_mark.line);
        at.col = mark_u32(ev->start_mark.column);
        at.key_line = at.line;
        at.key_col = at.col;
        if (len > ps->lim.max_key || memchr(s, '\0', len) != NULL || len == 0) {
            if (len == 0)
                ep_cfg__report(ps->errs, false, &at, false, "empty key");
            else if (len > ps->lim.max_key)
                ep_cfg__report(ps->errs, false, &at, false,
                               "key is too long (%zu bytes, limit %zu)", len, ps->lim.max_key);
            else
                ep_cfg__report(ps->errs, false, &at, false, "key contains a NUL character");
            return EP_ECONFIG;
        }
        char *key = arena_strdup(ps->t, s, len);
        if (key == NULL)
            return EP_ENOMEM;
        at.parent = fr->node;
        at.key = key;
        at.index = fr->node->count;
        check_props(ps, &at, true, ev->data.scalar.anchor, ev->data.scalar.tag);
        fr->key = key;
        fr->key_line = at.line;
        fr->key_col = at.col;
        return EP_EOK;
    }

    ep_cfg_node *n = new_node(ps, EP_CFG_NODE_SCALAR, ev->start_mark, &rc);
    if (n == NULL)
        return rc;
    char *v = arena_strdup(ps->t, s, len);
    if (v == NULL)
        return EP_ENOMEM;
    n->value = v;
    n->len = len;
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        n->is_null = len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
                     strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
    if (memchr(s, '\0', len) != NULL) {
        n->len = strlen(v);
        ep_cfg__report(ps->errs, false, n, false, "value contains a NUL character");
        ps->failed = true;
    }
    check_props(ps, n, false, ev->data.scalar.anchor, ev->data.scalar.tag);
    return EP_EOK;
}

static ep_err handle_event(pstate *ps, const yaml_event_t *ev, bool *done)
{
    ep_err rc = EP_EOK;
    frame *fr = ps->depth > 0 ? &ps->stack[ps->depth - 1] : NULL;
    bool want_key = fr != NULL && fr->node->kind == EP_CFG_NODE_MAP && fr->key == NULL;

    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return EP_EOK;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return EP_EOK;
    case YAML_DOCUMENT_START_EVENT:
        if (++ps->docs > 1) {
            report_at(ps, mark_u32(ev->start_mark.line), mark_u32(ev->start_mark.column),
                      "only one document is allowed");
            return EP_ECONFIG;
        }
        return EP_EOK;
    case YAML_SCALAR_EVENT:
        return handle_scalar(ps, ev);
    case YAML_ALIAS_EVENT: {
        if (want_key) {
            report_at(ps, mark_u32(ev->start_mark.line), mark_u32(ev->start_mark.column),
                      "anchors and aliases are not supported");
            return EP_ECONFIG;
        }
        /* Keep the tree shape with a null placeholder, go on. */
        ep_cfg_node *n = new_node(ps, EP_CFG_NODE_SCALAR, ev->start_mark, &rc);
        if (n == NULL)
            return rc;
        n->value = "";
        n->is_null = true;
        ep_cfg__report(ps->errs, false, n, false, "anchors and aliases are not supported");
        ps->failed = true;
        return EP_EOK;
    }
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        bool map = ev->type == YAML_MAPPING_START_EVENT;
        if (want_key) {
            report_at(ps, mark_u32(ev->start_mark.line), mark_u32(ev->start_mark.column),
                      "keys must be scalars");
            return EP_ECONFIG;
        }
        if (ps->depth >= ps->lim.max_depth) {
            ep_cfg_node at = {.file = ps->t->file,
                              .line = mark_u32(ev->start_mark.line),
                              .col = mark_u32(ev->start_mark.column),
                              .parent = fr->node,
                              .key = fr->node->kind == EP_CFG_NODE_MAP ? fr->key : NULL,
                              .index = fr->node->count};
            ep_cfg__report(ps->errs, false, &at, false, "nesting is deeper than %u levels",
                           ps->lim.max_depth);
            return EP_ECONFIG;
        }
        ep_cfg_node *n =
            new_node(ps, map ? EP_CFG_NODE_MAP : EP_CFG_NODE_LIST, ev->start_mark, &rc);
        if (n == NULL)
            return rc;
        n->value = "";
        if (map)
            check_props(ps, n, false, ev->data.mapping_start.anchor, ev->data.mapping_start.tag);
        else
            check_props(ps, n, false, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
        ps->stack[ps->depth++] = (frame){.node = n};
        return EP_EOK;
    }
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        if (fr == NULL)
            return EP_ECONFIG; /* libyaml never does this */
        ps->depth--;
        if (fr->node->kind == EP_CFG_NODE_MAP)
            return check_duplicates(ps, fr->node);
        return EP_EOK;
    }
    return EP_EOK;
}

/* sort_msgs puts the messages of one parse in file order (duplicate keys
 * are only found when their map closes). Stable insertion sort: few items. */
static void sort_msgs(ep_cfg_errs *errs, size_t from)
{
    for (size_t i = from + 1; i < errs->count; i++) {
        ep_cfg_msg m = errs->items[i];
        size_t j = i;
        while (j > from &&
               (errs->items[j - 1].line > m.line ||
                (errs->items[j - 1].line == m.line && errs->items[j - 1].col > m.col))) {
            errs->items[j] = errs->items[j - 1];
            j--;
        }
        errs->items[j] = m;
    }
}

static ep_err parse(pstate *ps)
{
    yaml_event_t ev;
    bool done = false;
    ep_err rc = EP_EOK;

    while (!done && rc == EP_EOK) {
        if (!yaml_parser_parse(&ps->yp, &ev)) {
            if (ps->yp.error == YAML_MEMORY_ERROR)
                return EP_ENOMEM;
            syntax_error(ps);
            return EP_ECONFIG;
        }
        rc = handle_event(ps, &ev, &done);
        yaml_event_delete(&ev);
    }
    if (rc == EP_EOK && ps->failed)
        rc = EP_ECONFIG;
    return rc;
}

ep_err ep_cfg_parse_str(const char *name, const char *data, size_t len, const ep_cfg_limits *lim,
                        ep_cfg_tree **out, ep_cfg_errs *errs)
{
    pstate ps;
    ep_err rc;

    memset(&ps, 0, sizeof(ps));
    if (lim != NULL)
        ps.lim = *lim;
    if (ps.lim.max_bytes == 0)
        ps.lim.max_bytes = 1u << 20;
    if (ps.lim.max_depth == 0)
        ps.lim.max_depth = 32;
    if (ps.lim.max_depth > 256)
        ps.lim.max_depth = 256;
    if (ps.lim.max_nodes == 0)
        ps.lim.max_nodes = 100000;
    if (ps.lim.max_key == 0)
        ps.lim.max_key = 256;
    if (name == NULL)
        name = "<string>";
    if (data == NULL)
        data = "";
    ps.errs = errs;
    ps.data = data;
    ps.len = len;

    ps.t = calloc(1, sizeof(*ps.t));
    if (ps.t == NULL)
        return EP_ENOMEM;
    ps.t->file = strdup(name);
    ps.stack = malloc((ps.lim.max_depth + 1) * sizeof(*ps.stack));
    if (ps.t->file == NULL || ps.stack == NULL) {
        rc = EP_ENOMEM;
        goto fail;
    }
    if (len > ps.lim.max_bytes) {
        ep_cfg_node at = {.file = ps.t->file};
        ep_cfg__report(errs, false, &at, false, "input is too large (%zu bytes, limit %zu)", len,
                       ps.lim.max_bytes);
        rc = EP_ECONFIG;
        goto fail;
    }
    if (!yaml_parser_initialize(&ps.yp)) {
        rc = EP_ENOMEM;
        goto fail;
    }
    yaml_parser_set_encoding(&ps.yp, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&ps.yp, (const unsigned char *)data, len);
    size_t first_msg = errs->count;
    rc = parse(&ps);
    yaml_parser_delete(&ps.yp);
    sort_msgs(errs, first_msg);
    if (rc != EP_EOK)
        goto fail;
    free(ps.stack);
    *out = ps.t;
    return EP_EOK;
fail:
    free(ps.stack);
    ep_cfg_tree_free(ps.t);
    return rc;
}

ep_err ep_cfg_parse_file(const char *path, const ep_cfg_limits *lim, ep_cfg_tree **out,
                         ep_cfg_errs *errs)
{
    size_t max = lim != NULL && lim->max_bytes ? lim->max_bytes : 1u << 20;
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    ep_err rc = EP_EOK;
    FILE *f = NULL;

    if (data == NULL)
        return EP_ENOMEM;
    f = fopen(path, "rb");
    if (f == NULL)
        goto io_fail;
    for (;;) {
        if (len == cap) {
            char *nd = realloc(data, cap * 2);
            if (nd == NULL) {
                rc = EP_ENOMEM;
                goto out;
            }
            data = nd;
            cap *= 2;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (len > max)
            break; /* parse_str reports the size */
        if (n == 0) {
            if (ferror(f))
                goto io_fail;
            break;
        }
    }
    rc = ep_cfg_parse_str(path, data, len, lim, out, errs);
    goto out;
io_fail : {
    ep_cfg_node at = {.file = path};
    ep_cfg__report(errs, false, &at, false, "cannot read: %s", strerror(errno));
    rc = EP_EIO;
}
out:
    if (f != NULL)
        fclose(f);
    free(data);
    return rc;
}
