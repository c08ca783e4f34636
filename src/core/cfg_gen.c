/*
 * cfg_gen.c - output generated from binding tables: the effective config as
 * YAML (ep_cfg_dump), a Markdown reference (ep_cfg_doc) and a JSON Schema
 * (ep_cfg_schema).
 *
 * Design: every generator walks the same table the binder uses, so the
 * docs, the schema and `config dump` cannot drift from what the parser
 * accepts. The dump prints canonical forms (sizes with the largest exact
 * unit, compound durations, double-quoted strings with YAML escapes for
 * anything not printable) so that binding the dump gives an equal struct;
 * the unit tests and the fuzz harness check that property. Tables may be
 * recursive (a list of its own map); doc and schema stop descending at
 * MAX_NEST levels.
 */
#include <inttypes.h>
#include <string.h>

#include "core/cfg.h"
#include "core/cfg_int.h"

#define MAX_NEST 8

static void indent(FILE *f, int n) { fprintf(f, "%*s", n, ""); }

/* ------------------------------------------------------------------------ */
/* YAML dump                                                                 */

/* utf8_next decodes one well-formed UTF-8 sequence; returns its length, or
 * 0 for an invalid one. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf && (s[1] & 0xc0) == 0x80) {
        *cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if (s[0] >= 0xe0 && s[0] <= 0xef && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
        *cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        return *cp >= 0x800 && (*cp < 0xd800 || *cp > 0xdfff) ? 3 : 0;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
        (s[3] & 0xc0) == 0x80) {
        *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
              (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
        return *cp >= 0x10000 && *cp <= 0x10ffff ? 4 : 0;
    }
    return 0;
}

/* yaml_quote writes s as a double-quoted YAML scalar. Printable text is
 * copied; everything else uses an escape libyaml reads back exactly. */
static void yaml_quote(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    while (*s != '\0') {
        uint32_t cp;
        size_t n = utf8_next(s, &cp);
        if (n == 0) {
            fputs("\\uFFFD", f); /* not UTF-8: cannot come from a parse */
            s++;
            continue;
        }
        if (cp == '"' || cp == '\\')
            fprintf(f, "\\%c", (int)cp);
        else if (cp >= 0x20 && cp < 0x7f)
            fputc((int)cp, f);
        else if (cp < 0x100 && (cp < 0xa0))
            fprintf(f, "\\x%02x", (unsigned)cp);
        else if ((cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd && cp != 0xfeff) ||
                 cp >= 0x10000)
            fwrite(s, 1, n, f);
        else
            fprintf(f, "\\u%04X", (unsigned)cp);
        s += n;
    }
    fputc('"', f);
}

static bool dumpable(const ep_cfg_field *f) { return !(f->flags & EP_CFG_DEPRECATED); }

static bool table_empty(const ep_cfg_field *t)
{
    for (; t->name != NULL; t++)
        if (dumpable(t))
            return false;
    return true;
}

static void dump_scalar(FILE *f, const ep_cfg_field *fl, const void *p)
{
    char b[EP_CFG__NUMBUF];
    switch (fl->type) {
    case EP_CFG_BOOL:
        fputs(*(const bool *)p ? "true" : "false", f);
        break;
    case EP_CFG_INT:
        fprintf(f, "%" PRId64, ep_cfg__load_s(p, fl->size));
        break;
    case EP_CFG_UINT:
        fprintf(f, "%" PRIu64, ep_cfg__load_u(p, fl->size));
        break;
    case EP_CFG_SIZE:
        fputs(ep_cfg__fmt_size(ep_cfg__load_u(p, fl->size), b), f);
        break;
    case EP_CFG_DURATION:
        fputs(ep_cfg__fmt_duration(ep_cfg__load_u(p, fl->size), b), f);
        break;
    case EP_CFG_STRING: {
        const char *s = *(char *const *)p;
        if (s == NULL)
            fputs("~", f);
        else if (fl->flags & EP_CFG_SECRET)
            fputs("\"********\"", f);
        else
            yaml_quote(f, s);
        break;
    }
    case EP_CFG_ENUM: {
        int64_t v = ep_cfg__load_s(p, fl->size);
        const ep_cfg_enum *e = fl->choices;
        while (e->name != NULL && e->value != v)
            e++;
        fputs(e->name != NULL ? e->name : "~", f);
        break;
    }
    case EP_CFG_HOSTPORT: {
        const ep_cfg_hostport *hp = p;
        bool v6 = strchr(hp->host, ':') != NULL;
        fprintf(f, "\"%s%.*s%s:%u\"", v6 ? "[" : "", (int)strnlen(hp->host, sizeof(hp->host)),
                hp->host, v6 ? "]" : "", (unsigned)hp->port);
        break;
    }
    default:
        break;
    }
}

static void dump_map(FILE *f, const ep_cfg_field *t, const void *base, int ind, bool inline_first);

/* dump_item writes a list element after its "-"; content at column ind. */
static void dump_item(FILE *f, const ep_cfg_field *el, const void *p, int ind)
{
    if (el->type == EP_CFG_MAP) {
        if (table_empty(el->sub)) {
            fputs(" {}\n", f);
        } else {
            fputc(' ', f);
            dump_map(f, el->sub, p, ind, true);
        }
    } else if (el->type == EP_CFG_LIST) {
        const ep_cfg_list *l = p;
        if (l->count == 0) {
            fputs(" []\n", f);
            return;
        }
        fputc('\n', f); /* "-" alone, then the nested list indented */
        for (size_t i = 0; i < l->count; i++) {
            indent(f, ind);
            fputc('-', f);
            dump_item(f, el->sub, (const char *)l->items + i * el->sub->size, ind + 2);
        }
    } else {
        fputc(' ', f);
        dump_scalar(f, el, p);
        fputc('\n', f);
    }
}

/* dump_value writes what follows "key:" for a field indented at ind. */
static void dump_value(FILE *f, const ep_cfg_field *fl, const void *p, int ind)
{
    if (fl->type == EP_CFG_MAP) {
        if (table_empty(fl->sub)) {
            fputs(" {}\n", f);
        } else {
            fputc('\n', f);
            dump_map(f, fl->sub, p, ind + 2, false);
        }
    } else if (fl->type == EP_CFG_LIST) {
        const ep_cfg_list *l = p;
        if (l->count == 0) {
            fputs(" []\n", f);
            return;
        }
        fputc('\n', f);
        for (size_t i = 0; i < l->count; i++) {
            indent(f, ind + 2);
            fputc('-', f);
            dump_item(f, fl->sub, (const char *)l->items + i * fl->sub->size, ind + 4);
        }
    } else {
        fputc(' ', f);
        dump_scalar(f, fl, p);
        fputc('\n', f);
    }
}

static void dump_map(FILE *f, const ep_cfg_field *t, const void *base, int ind, bool inline_first)
{
    bool first = true;
    for (; t->name != NULL; t++) {
        if (!dumpable(t))
            continue;
        if (!(first && inline_first))
            indent(f, ind);
        first = false;
        fprintf(f, "%s:", t->name);
        dump_value(f, t, (const char *)base + t->off, ind);
    }
}

ep_err ep_cfg_dump(const ep_cfg_field *table, const void *st, FILE *f)
{
    if (table_empty(table))
        fputs("{}\n", f);
    else
        dump_map(f, table, st, 0, false);
    return ferror(f) ? EP_EIO : EP_EOK;
}

/* ------------------------------------------------------------------------ */
/* Markdown reference                                                        */

/* md_text writes s for a table cell: '|' escaped, newlines as spaces. */
static void md_text(FILE *f, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

static void md_type(FILE *f, const ep_cfg_field *fl)
{
    int guard = 0;
    while (fl->type == EP_CFG_LIST && guard++ < MAX_NEST) {
        fputs("list of ", f);
        fl = fl->sub;
    }
    fputs(ep_cfg__type_name(fl), f);
}

static void md_bounds(FILE *f, const ep_cfg_field *fl)
{
    char a[EP_CFG__NUMBUF], b[EP_CFG__NUMBUF];
    uint64_t lo, hi;
    int64_t slo, shi;
    bool bounded = fl->min != 0 || fl->max != 0;

    ep_cfg__ubounds(fl, &lo, &hi);
    switch (fl->type) {
    case EP_CFG_INT:
        ep_cfg__sbounds(fl, &slo, &shi);
        fprintf(f, "%" PRId64 "..%" PRId64, slo, shi);
        break;
    case EP_CFG_UINT:
        fprintf(f, "%" PRIu64 "..%" PRIu64, lo, hi);
        break;
    case EP_CFG_SIZE:
        if (bounded)
            fprintf(f, "%s..%s", ep_cfg__fmt_size(lo, a), ep_cfg__fmt_size(hi, b));
        break;
    case EP_CFG_DURATION:
        if (bounded)
            fprintf(f, "%s..%s", ep_cfg__fmt_duration(lo, a), ep_cfg__fmt_duration(hi, b));
        break;
    case EP_CFG_STRING:
        if (bounded)
            fprintf(f, "%" PRIu64 "..%" PRIu64 " bytes", lo, hi);
        break;
    case EP_CFG_ENUM:
        for (const ep_cfg_enum *e = fl->choices; e->name != NULL; e++)
            fprintf(f, "%s`%s`", e == fl->choices ? "" : ", ", e->name);
        break;
    case EP_CFG_HOSTPORT:
        fprintf(f, "port %" PRIu64 "..%" PRIu64, lo, hi);
        break;
    case EP_CFG_LIST:
        if (bounded)
            fprintf(f, "%" PRIu64 "..%" PRIu64 " items", lo, hi);
        break;
    default:
        break;
    }
}

static void md_flags(FILE *f, unsigned flags)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{EP_CFG_REQUIRED, "required"},
                 {EP_CFG_RELOADABLE, "reloadable"},
                 {EP_CFG_SECRET, "secret"},
                 {EP_CFG_DEPRECATED, "deprecated"}};
    bool first = true;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (flags & names[i].bit) {
            fprintf(f, "%s%s", first ? "" : ", ", names[i].name);
            first = false;
        }
}

static void md_rows(FILE *f, const ep_cfg_field *t, const char *prefix, int depth)
{
    char path[512];
    for (; t->name != NULL; t++) {
        snprintf(path, sizeof(path), "%s%s", prefix, t->name);
        fputs("| `", f);
        md_text(f, path);
        fputs("` | ", f);
        md_type(f, t);
        fputs(" | ", f);
        if (t->def != NULL) {
            fputc('`', f);
            md_text(f, (t->flags & EP_CFG_SECRET) ? "********" : t->def);
            fputc('`', f);
        }
        fputs(" | ", f);
        md_bounds(f, t);
        fputs(" | ", f);
        md_flags(f, t->flags);
        fputs(" | ", f);
        md_text(f, t->help);
        fputs(" |\n", f);

        /* Nested keys: tls.cert, listeners[].port */
        const ep_cfg_field *el = t;
        size_t l = strlen(path);
        while (el->type == EP_CFG_LIST && l + 3 < sizeof(path)) {
            memcpy(path + l, "[]", 3);
            l += 2;
            el = el->sub;
        }
        if (el->type == EP_CFG_MAP && depth < MAX_NEST && l + 2 < sizeof(path)) {
            memcpy(path + l, ".", 2);
            md_rows(f, el->sub, path, depth + 1);
        }
    }
}

ep_err ep_cfg_doc(const ep_cfg_field *table, FILE *f)
{
    fputs("| Key | Type | Default | Allowed | Flags | Description |\n"
          "|-----|------|---------|---------|-------|-------------|\n",
          f);
    md_rows(f, table, "", 0);
    return ferror(f) ? EP_EIO : EP_EOK;
}

/* ------------------------------------------------------------------------ */
/* JSON Schema                                                               */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Patterns are JSON strings already (backslashes doubled). */
#define SIZE_PATTERN "^(0|[1-9][0-9]*) ?(B|kB|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB)?$"
#define DURATION_PATTERN "^(0|((0|[1-9][0-9]*)(ms|s|m|h|d))+)$"
#define HOSTPORT_PATTERN                                                                           \
    "^(\\\\[[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?\\\\]|[A-Za-z0-9._-]*)"                               \
    ":(0|[1-9][0-9]{0,4})$"

static void schema_table(FILE *f, const ep_cfg_field *t, int ind, int depth);

/* schema_field writes the members of one field's schema object (no braces);
 * `first` tracks comma placement. */
static void schema_field(FILE *f, const ep_cfg_field *fl, int ind, int depth)
{
    uint64_t lo, hi;
    int64_t slo, shi;
    bool bounded = fl->min != 0 || fl->max != 0;
    char b[EP_CFG__NUMBUF];

#define KEY(k) (fputs(",\n", f), indent(f, ind), fputs("\"" k "\": ", f))
    ep_cfg__ubounds(fl, &lo, &hi);
    indent(f, ind);
    fputs("\"x-ep-type\": ", f);
    json_str(f, ep_cfg__type_name(fl));
    switch (fl->type) {
    case EP_CFG_BOOL:
        KEY("type"), fputs("\"boolean\"", f);
        break;
    case EP_CFG_INT:
        ep_cfg__sbounds(fl, &slo, &shi);
        KEY("type"), fputs("\"integer\"", f);
        KEY("minimum"), fprintf(f, "%" PRId64, slo);
        KEY("maximum"), fprintf(f, "%" PRId64, shi);
        break;
    case EP_CFG_UINT:
        KEY("type"), fputs("\"integer\"", f);
        KEY("minimum"), fprintf(f, "%" PRIu64, lo);
        KEY("maximum"), fprintf(f, "%" PRIu64, hi);
        break;
    case EP_CFG_SIZE:
        KEY("type"), fputs("[\"integer\", \"string\"]", f);
        KEY("pattern"), fputs("\"" SIZE_PATTERN "\"", f);
        if (bounded) {
            KEY("minimum"), fprintf(f, "%" PRIu64, lo);
            KEY("maximum"), fprintf(f, "%" PRIu64, hi);
            KEY("x-ep-bounds"), fprintf(f, "\"%s..", ep_cfg__fmt_size(lo, b));
            fprintf(f, "%s\"", ep_cfg__fmt_size(hi, b));
        }
        break;
    case EP_CFG_DURATION:
        KEY("type"), fputs("[\"integer\", \"string\"]", f);
        KEY("pattern"), fputs("\"" DURATION_PATTERN "\"", f);
        /* the only bare number accepted is 0 */
        KEY("minimum"), fputs("0", f);
        KEY("maximum"), fputs("0", f);
        KEY("x-ep-unit"), fputs("\"ms\"", f);
        if (bounded) {
            KEY("x-ep-bounds"), fprintf(f, "\"%s..", ep_cfg__fmt_duration(lo, b));
            fprintf(f, "%s\"", ep_cfg__fmt_duration(hi, b));
        }
        break;
    case EP_CFG_STRING:
        KEY("type"), fputs("\"string\"", f);
        if (bounded) {
            KEY("minLength"), fprintf(f, "%" PRIu64, lo);
            KEY("maxLength"), fprintf(f, "%" PRIu64, hi);
        }
        break;
    case EP_CFG_ENUM:
        KEY("enum"), fputc('[', f);
        for (const ep_cfg_enum *e = fl->choices; e->name != NULL; e++) {
            if (e != fl->choices)
                fputs(", ", f);
            json_str(f, e->name);
        }
        fputc(']', f);
        break;
    case EP_CFG_HOSTPORT:
        KEY("type"), fputs("\"string\"", f);
        KEY("pattern"), fputs("\"" HOSTPORT_PATTERN "\"", f);
        KEY("x-ep-port"), fprintf(f, "[%" PRIu64 ", %" PRIu64 "]", lo, hi);
        break;
    case EP_CFG_LIST:
        KEY("type"), fputs("\"array\"", f);
        if (bounded) {
            KEY("minItems"), fprintf(f, "%" PRIu64, lo);
            KEY("maxItems"), fprintf(f, "%" PRIu64, hi);
        }
        KEY("items"), fputs("{\n", f);
        if (depth < MAX_NEST)
            schema_field(f, fl->sub, ind + 2, depth + 1);
        fputc('\n', f);
        indent(f, ind);
        fputc('}', f);
        break;
    case EP_CFG_MAP:
        fputs(",\n", f);
        if (depth < MAX_NEST)
            schema_table(f, fl->sub, ind, depth + 1);
        else
            indent(f, ind), fputs("\"type\": \"object\"", f);
        break;
    }
    if (fl->def != NULL && fl->type != EP_CFG_LIST) {
        KEY("default");
        if (fl->flags & EP_CFG_SECRET)
            json_str(f, "********");
        else if (fl->type == EP_CFG_BOOL) /* True/TRUE are YAML, not JSON */
            fputs(fl->def[0] == 't' || fl->def[0] == 'T' ? "true" : "false", f);
        else if (fl->type == EP_CFG_INT || fl->type == EP_CFG_UINT)
            fputs(fl->def, f); /* strict decimal, checked by ep_cfg_bind */
        else
            json_str(f, fl->def);
    }
    if (fl->help != NULL)
        KEY("description"), json_str(f, fl->help);
    if (fl->flags & EP_CFG_DEPRECATED)
        KEY("deprecated"), fputs("true", f);
    if (fl->flags & EP_CFG_SECRET)
        KEY("writeOnly"), fputs("true", f);
    if (fl->flags & EP_CFG_RELOADABLE)
        KEY("x-reloadable"), fputs("true", f);
#undef KEY
}

/* schema_table writes "type": "object" ... for a field table. */
static void schema_table(FILE *f, const ep_cfg_field *t, int ind, int depth)
{
    bool any_req = false;
    indent(f, ind);
    fputs("\"type\": \"object\",\n", f);
    indent(f, ind);
    fputs("\"additionalProperties\": false,\n", f);
    indent(f, ind);
    fputs("\"properties\": {", f);
    for (const ep_cfg_field *fl = t; fl->name != NULL; fl++) {
        fputs(fl == t ? "\n" : ",\n", f);
        indent(f, ind + 2);
        json_str(f, fl->name);
        fputs(": {\n", f);
        schema_field(f, fl, ind + 4, depth);
        fputc('\n', f);
        indent(f, ind + 2);
        fputc('}', f);
        any_req |= (fl->flags & EP_CFG_REQUIRED) != 0;
    }
    fputc('\n', f);
    indent(f, ind);
    fputc('}', f);
    if (any_req) {
        bool first = true;
        fputs(",\n", f);
        indent(f, ind);
        fputs("\"required\": [", f);
        for (const ep_cfg_field *fl = t; fl->name != NULL; fl++)
            if (fl->flags & EP_CFG_REQUIRED) {
                fputs(first ? "" : ", ", f);
                json_str(f, fl->name);
                first = false;
            }
        fputc(']', f);
    }
}

ep_err ep_cfg_schema(const ep_cfg_field *table, FILE *f)
{
    fputs("{\n  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\","
          "\n",
          f);
    schema_table(f, table, 2, 0);
    fputs("\n}\n", f);
    return ferror(f) ? EP_EIO : EP_EOK;
}
