/*
 * cfg_bind.c - fill a C struct from a config tree through a field table.
 *
 * Design: one pass applies every default of the table (recursively for
 * nested maps; a LIST default is YAML flow text parsed by the tree reader),
 * so defaults go through exactly the parsers used for file values and a bad
 * default is found by the first test that binds the table. A second pass
 * walks the keys present in the map node: unknown keys get an edit-distance
 * suggestion, values are parsed by type, validate callbacks run on values
 * that parsed. Errors do not stop the walk, so one run reports everything
 * (up to ep_cfg_errs.max); on any error the struct is cleared, never left
 * half-filled. Values are parsed strictly: decimal integers without leading
 * zeros (YAML 1.1 reads 010 as octal), true/false only for booleans (the
 * "Norway problem"), explicit units for durations.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/cfg_int.h"

/* ------------------------------------------------------------------------ */
/* Storage                                                                   */

uint64_t ep_cfg__load_u(const void *p, size_t size)
{
    switch (size) {
    case 1: {
        uint8_t v;
        memcpy(&v, p, 1);
        return v;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

int64_t ep_cfg__load_s(const void *p, size_t size)
{
    switch (size) {
    case 1: {
        int8_t v;
        memcpy(&v, p, 1);
        return v;
    }
    case 2: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

void ep_cfg__store_u(void *p, size_t size, uint64_t x)
{
    switch (size) {
    case 1: {
        uint8_t v = (uint8_t)x;
        memcpy(p, &v, 1);
        break;
    }
    case 2: {
        uint16_t v = (uint16_t)x;
        memcpy(p, &v, 2);
        break;
    }
    case 4: {
        uint32_t v = (uint32_t)x;
        memcpy(p, &v, 4);
        break;
    }
    default:
        memcpy(p, &x, 8);
        break;
    }
}

void ep_cfg__store_s(void *p, size_t size, int64_t x)
{
    switch (size) {
    case 1: {
        int8_t v = (int8_t)x;
        memcpy(p, &v, 1);
        break;
    }
    case 2: {
        int16_t v = (int16_t)x;
        memcpy(p, &v, 2);
        break;
    }
    case 4: {
        int32_t v = (int32_t)x;
        memcpy(p, &v, 4);
        break;
    }
    default:
        memcpy(p, &x, 8);
        break;
    }
}

uint64_t ep_cfg__umax(size_t size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (size * 8)) - 1;
}

int64_t ep_cfg__smax(size_t size)
{
    return size >= 8 ? INT64_MAX : (INT64_C(1) << (size * 8 - 1)) - 1;
}

int64_t ep_cfg__smin(size_t size) { return -ep_cfg__smax(size) - 1; }

void ep_cfg__ubounds(const ep_cfg_field *f, uint64_t *lo, uint64_t *hi)
{
    uint64_t smax = UINT64_MAX;
    if (f->type == EP_CFG_UINT || f->type == EP_CFG_SIZE || f->type == EP_CFG_DURATION)
        smax = ep_cfg__umax(f->size);
    else if (f->type == EP_CFG_HOSTPORT)
        smax = 65535;
    else if (f->type == EP_CFG_STRING || f->type == EP_CFG_LIST)
        smax = SIZE_MAX;
    *lo = f->min;
    *hi = f->max != 0 && f->max < smax ? f->max : smax;
}

void ep_cfg__sbounds(const ep_cfg_field *f, int64_t *lo, int64_t *hi)
{
    int64_t smin = ep_cfg__smin(f->size), smax = ep_cfg__smax(f->size);
    *lo = f->smin != 0 && f->smin > smin ? f->smin : smin;
    *hi = f->smax != 0 && f->smax < smax ? f->smax : smax;
}

/* ------------------------------------------------------------------------ */
/* Scalar syntax                                                             */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Decimal digits at *s, no leading zeros; advances *s. */
static bool scan_u64(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (!is_digit(*p) || (p[0] == '0' && is_digit(p[1])))
        return false;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return true;
}

static bool parse_uint(const char *s, uint64_t *out) { return scan_u64(&s, out) && *s == '\0'; }

static bool parse_int(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t u;
    if (neg)
        s++;
    if (!parse_uint(s, &u))
        return false;
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1)
            return false;
        *out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)u;
    }
    return true;
}

static int parse_bool(const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return 1;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return 0;
    return -1;
}

static const struct unit {
    const char *name;
    uint64_t mult;
} size_units[] =
    {
        {"B", 1},
        {"kB", UINT64_C(1000)},
        {"KB", UINT64_C(1000)},
        {"MB", UINT64_C(1000000)},
        {"GB", UINT64_C(1000000000)},
        {"TB", UINT64_C(1000000000000)},
        {"PB", UINT64_C(1000000000000000)},
        {"KiB", UINT64_C(1) << 10},
        {"MiB", UINT64_C(1) << 20},
        {"GiB", UINT64_C(1) << 30},
        {"TiB", UINT64_C(1) << 40},
        {"PiB", UINT64_C(1) << 50},
        {NULL, 0},
},
  duration_units[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {NULL, 0},
};

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b != 0 && a > UINT64_MAX / b)
        return false;
    *out = a * b;
    return true;
}

static bool parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    if (!scan_u64(&s, &v))
        return false;
    if (*s == ' ')
        s++;
    if (*s == '\0')
        return *(s - 1) != ' ' && (*out = v, true);
    for (const struct unit *u = size_units; u->name != NULL; u++)
        if (strcmp(s, u->name) == 0)
            return mul_ok(v, u->mult, out);
    return false;
}

static bool parse_duration(const char *s, uint64_t *out)
{
    uint64_t total = 0;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    while (*s != '\0') {
        uint64_t v, part;
        const char *u0;
        size_t ul;
        const struct unit *u;
        if (!scan_u64(&s, &v))
            return false;
        for (u0 = s; *s >= 'a' && *s <= 'z'; s++)
            ;
        ul = (size_t)(s - u0);
        for (u = duration_units; u->name != NULL; u++)
            if (strlen(u->name) == ul && memcmp(u->name, u0, ul) == 0)
                break;
        if (u->name == NULL || !mul_ok(v, u->mult, &part) || total > UINT64_MAX - part)
            return false;
        total += part;
    }
    *out = total;
    return true;
}

/* Smallest mantissa among exact unit representations. */
char *ep_cfg__fmt_size(uint64_t v, char *buf)
{
    const struct unit *best = &size_units[0];
    for (const struct unit *u = size_units; u->name != NULL; u++)
        if (v != 0 && v % u->mult == 0 && u->mult > best->mult)
            best = u;
    snprintf(buf, EP_CFG__NUMBUF, "%llu%s", (unsigned long long)(v / best->mult), best->name);
    return buf;
}

char *ep_cfg__fmt_duration(uint64_t ms, char *buf)
{
    size_t l = 0;
    if (ms == 0) {
        snprintf(buf, EP_CFG__NUMBUF, "0s");
        return buf;
    }
    buf[0] = '\0';
    for (int i = 4; i >= 0; i--) {
        const struct unit *u = &duration_units[i];
        if (ms >= u->mult) {
            l += (size_t)snprintf(buf + l, EP_CFG__NUMBUF - l, "%llu%s",
                                  (unsigned long long)(ms / u->mult), u->name);
            ms %= u->mult;
        }
    }
    return buf;
}

static bool ipv4_ok(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        unsigned v = 0;
        size_t j = i;
        while (j < n && is_digit(s[j]) && j - i < 4)
            v = v * 10 + (unsigned)(s[j++] - '0');
        if (j == i || j - i > 3 || v > 255 || (s[i] == '0' && j - i > 1))
            return false;
        i = j;
        if (part < 3) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == n;
}

static bool is_xdigit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool ipv6_ok(const char *s, size_t n)
{
    size_t i = 0;
    unsigned groups = 0;
    bool dcolon = false;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        dcolon = true;
        i = 2;
    } else if (n == 0 || s[0] == ':') {
        return false;
    }
    while (i < n) {
        size_t j = i;
        while (j < n && is_xdigit(s[j]) && j - i < 5)
            j++;
        if (j < n && s[j] == '.') { /* embedded IPv4 ends the address */
            if (!ipv4_ok(s + i, n - i))
                return false;
            groups += 2;
            break;
        }
        if (j == i || j - i > 4)
            return false;
        groups++;
        i = j;
        if (i == n)
            break;
        if (s[i++] != ':' || i == n)
            return false;
        if (s[i] == ':') {
            if (dcolon)
                return false;
            dcolon = true;
            if (++i == n)
                break;
        }
    }
    return dcolon ? groups <= 7 : groups == 8;
}

static bool name_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '.' || c == '_';
}

static bool parse_hostport(const char *s, size_t len, ep_cfg_hostport *out, uint64_t *port)
{
    const char *host, *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *end = memchr(s, ']', len);
        if (end == NULL || end[1] != ':')
            return false;
        host = s + 1;
        hl = (size_t)(end - host);
        colon = end + 1;
        const char *pct = memchr(host, '%', hl);
        size_t al = pct != NULL ? (size_t)(pct - host) : hl;
        if (!ipv6_ok(host, al))
            return false;
        if (pct != NULL) { /* zone id: fe80::1%eth0 */
            if (al + 1 == hl)
                return false;
            for (size_t i = al + 1; i < hl; i++)
                if (!name_char(host[i]))
                    return false;
        }
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        host = s;
        hl = (size_t)(colon - s);
        for (size_t i = 0; i < hl; i++)
            if (!name_char(host[i]))
                return false;
    }
    if (hl >= sizeof(out->host) || !parse_uint(colon + 1, port) || *port > 65535)
        return false;
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    return true;
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */

const char *ep_cfg__type_name(const ep_cfg_field *f)
{
    switch (f->type) {
    case EP_CFG_BOOL:
        return "bool";
    case EP_CFG_INT:
        return "integer";
    case EP_CFG_UINT:
        return "integer";
    case EP_CFG_SIZE:
        return "size";
    case EP_CFG_DURATION:
        return "duration";
    case EP_CFG_STRING:
        return "string";
    case EP_CFG_ENUM:
        return "enum";
    case EP_CFG_HOSTPORT:
        return "host:port";
    case EP_CFG_LIST:
        return "list";
    case EP_CFG_MAP:
        return "map";
    }
    return "?";
}

/* expect() describes what a field accepts: "an integer 1..65535". */
static char *expect(const ep_cfg_field *f, char *buf, size_t size)
{
    char a[EP_CFG__NUMBUF], b[EP_CFG__NUMBUF];
    uint64_t lo, hi;
    int64_t slo, shi;
    bool bounded = f->min != 0 || f->max != 0;
    size_t l;

    ep_cfg__ubounds(f, &lo, &hi);
    switch (f->type) {
    case EP_CFG_BOOL:
        snprintf(buf, size, "true or false");
        break;
    case EP_CFG_INT:
        ep_cfg__sbounds(f, &slo, &shi);
        snprintf(buf, size, "an integer %lld..%lld", (long long)slo, (long long)shi);
        break;
    case EP_CFG_UINT:
        snprintf(buf, size, "an integer %llu..%llu", (unsigned long long)lo,
                 (unsigned long long)hi);
        break;
    case EP_CFG_SIZE:
        if (bounded)
            snprintf(buf, size, "a size %s..%s (e.g. 64KiB, 1MB)", ep_cfg__fmt_size(lo, a),
                     ep_cfg__fmt_size(hi, b));
        else
            snprintf(buf, size, "a size (e.g. 64KiB, 1MB)");
        break;
    case EP_CFG_DURATION:
        if (bounded)
            snprintf(buf, size, "a duration %s..%s (e.g. 30s, 500ms, 1h)",
                     ep_cfg__fmt_duration(lo, a), ep_cfg__fmt_duration(hi, b));
        else
            snprintf(buf, size, "a duration (e.g. 30s, 500ms, 1h)");
        break;
    case EP_CFG_STRING:
        if (bounded)
            snprintf(buf, size, "a string of %llu..%llu bytes", (unsigned long long)lo,
                     (unsigned long long)hi);
        else
            snprintf(buf, size, "a string");
        break;
    case EP_CFG_ENUM:
        l = (size_t)snprintf(buf, size, "one of ");
        for (const ep_cfg_enum *e = f->choices; e->name != NULL && l < size; e++)
            l += (size_t)snprintf(buf + l, size - l, "%s%s", e == f->choices ? "" : "|", e->name);
        break;
    case EP_CFG_HOSTPORT:
        snprintf(buf, size, "host:port with port %llu..%llu", (unsigned long long)lo,
                 (unsigned long long)hi);
        break;
    case EP_CFG_LIST:
        if (bounded)
            snprintf(buf, size, "a list of %llu..%llu items", (unsigned long long)lo,
                     (unsigned long long)hi);
        else
            snprintf(buf, size, "a list");
        break;
    case EP_CFG_MAP:
        snprintf(buf, size, "a map");
        break;
    }
    return buf;
}

/* got() describes the node found: "a map", "null", "\"18a83\"". Scalar text
 * is quoted, escaped and cut to keep messages one readable line. */
static char *got(const ep_cfg_field *f, const ep_cfg_node *n, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t l = 0, i;

    if (n->kind == EP_CFG_NODE_MAP)
        snprintf(buf, size, "a map");
    else if (n->kind == EP_CFG_NODE_LIST)
        snprintf(buf, size, "a list");
    else if (n->is_null)
        snprintf(buf, size, "null");
    else if (f->flags & EP_CFG_SECRET)
        snprintf(buf, size, "a hidden value");
    else {
        buf[l++] = '"';
        for (i = 0; i < n->len; i++) {
            unsigned char c = (unsigned char)n->value[i];
            /* Cut only between characters. A character adds at most 4
             * bytes, leaving room for the ellipsis, quote and NUL. */
            if (((c & 0xc0) != 0x80 && (i >= 60 || l + 9 >= size)) ||
                l + 6 >= size) /* (a run of stray continuation bytes) */
                break;
            if (c == '"' || c == '\\') {
                buf[l++] = '\\';
                buf[l++] = (char)c;
            } else if (c < 0x20 || c == 0x7f) {
                buf[l++] = '\\';
                buf[l++] = 'x';
                buf[l++] = hex[c >> 4];
                buf[l++] = hex[c & 15];
            } else {
                buf[l++] = (char)c;
            }
        }
        if (i < n->len) {
            memcpy(buf + l, "...", 3);
            l += 3;
        }
        buf[l++] = '"';
        buf[l] = '\0';
    }
    return buf;
}

/* Optimal string alignment distance, ASCII case-insensitive, capped. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXL = 64 };
    size_t la = strlen(a), lb = strlen(b);
    size_t d[3][MAXL + 1];
    if (la > MAXL || lb > MAXL)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *cur = d[i % 3], *prev = d[(i - 1) % 3], *pp = d[(i + 1) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            char ca = a[i - 1], cb = b[j - 1];
            if (ca >= 'A' && ca <= 'Z')
                ca = (char)(ca - 'A' + 'a');
            if (cb >= 'A' && cb <= 'Z')
                cb = (char)(cb - 'A' + 'a');
            size_t cost = ca != cb;
            size_t v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v)
                v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
        }
    }
    return d[la % 3][lb];
}

/* suggest() returns the closest candidate if it is close enough. */
static const char *suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, cands[i]);
        size_t la = strlen(word), lb = strlen(cands[i]);
        size_t longest = la > lb ? la : lb;
        if (d < bestd && d <= 2 && 2 * d < longest) {
            best = cands[i];
            bestd = d;
        }
    }
    return best;
}

/* ------------------------------------------------------------------------ */
/* Binding                                                                   */

typedef struct bctx {
    ep_cfg_errs *errs;
    ep_err hard; /* EP_ENOMEM or EP_EINVAL (table bug) */
} bctx;

static void clear_value(const ep_cfg_field *f, void *p);
static void clear_table(const ep_cfg_field *t, void *base);
static void bind_value(bctx *c, const ep_cfg_field *f, const ep_cfg_node *n, void *p);
static void bind_map(bctx *c, const ep_cfg_field *t, const ep_cfg_node *n, void *base);
static void defaults_value(bctx *c, const ep_cfg_field *f, void *p);

static void table_bug(bctx *c, const ep_cfg_field *f, const char *what)
{
    ep_cfg__report(c->errs, false, NULL, false, "internal: field '%s': %s",
                   f->name ? f->name : "(list element)", what);
    c->hard = EP_EINVAL;
}

static bool size_in(size_t s, size_t a, size_t b, size_t cc, size_t d)
{
    return s == a || s == b || s == cc || s == d;
}

/* check_field validates a table entry before it is used. */
static bool check_field(bctx *c, const ep_cfg_field *f, int depth)
{
    bool ok = true;
    switch (f->type) {
    case EP_CFG_BOOL:
        ok = f->size == sizeof(bool);
        break;
    case EP_CFG_INT:
    case EP_CFG_UINT:
    case EP_CFG_ENUM:
        ok = size_in(f->size, 1, 2, 4, 8);
        break;
    case EP_CFG_SIZE:
    case EP_CFG_DURATION:
        ok = f->size == 4 || f->size == 8;
        break;
    case EP_CFG_STRING:
        ok = f->size == sizeof(char *);
        break;
    case EP_CFG_HOSTPORT:
        ok = f->size == sizeof(ep_cfg_hostport);
        break;
    case EP_CFG_LIST:
        ok = f->size == sizeof(ep_cfg_list);
        break;
    case EP_CFG_MAP:
        ok = true;
        break;
    default:
        table_bug(c, f, "unknown type");
        return false;
    }
    if (!ok) {
        table_bug(c, f, "storage size does not match the type");
        return false;
    }
    if (f->max != 0 && f->min > f->max) {
        table_bug(c, f, "min is above max");
        return false;
    }
    if (f->type == EP_CFG_INT && f->smax != 0 && f->smin > f->smax) {
        table_bug(c, f, "smin is above smax");
        return false;
    }
    if (f->type == EP_CFG_ENUM) {
        if (f->choices == NULL || f->choices[0].name == NULL) {
            table_bug(c, f, "enum without choices");
            return false;
        }
        for (const ep_cfg_enum *e = f->choices; e->name != NULL; e++)
            if (e->value < ep_cfg__smin(f->size) || e->value > ep_cfg__smax(f->size)) {
                table_bug(c, f, "enum value does not fit its storage");
                return false;
            }
    }
    if (f->type == EP_CFG_MAP && f->sub == NULL) {
        table_bug(c, f, "map without a sub-table");
        return false;
    }
    if (f->type == EP_CFG_LIST) {
        if (f->sub == NULL || f->sub->size == 0) {
            table_bug(c, f, "list without an element field");
            return false;
        }
        /* Recursive tables (a list of itself) are legal; stop descending. */
        if (depth < 8 && !check_field(c, f->sub, depth + 1))
            return false;
    }
    if (f->type == EP_CFG_MAP && depth < 8)
        for (const ep_cfg_field *s = f->sub; s->name != NULL; s++)
            if (!check_field(c, s, depth + 1))
                return false;
    return true;
}

/* A stand-in node so default text is parsed and reported like file text. */
static ep_cfg_node default_node(const ep_cfg_field *f)
{
    ep_cfg_node n = {.kind = EP_CFG_NODE_SCALAR,
                     .file = "<default>",
                     .key = f->name,
                     .value = f->def,
                     .len = strlen(f->def)};
    return n;
}

static void type_error(bctx *c, const ep_cfg_field *f, const ep_cfg_node *n)
{
    char e[512], g[128];
    ep_cfg__report(c->errs, false, n, false, "expected %s, got %s", expect(f, e, sizeof(e)),
                   got(f, n, g, sizeof(g)));
}

static void enum_error(bctx *c, const ep_cfg_field *f, const ep_cfg_node *n)
{
    const char *names[64];
    size_t k = 0;
    char e[512], g[128];
    const char *s = NULL;

    if (n->kind == EP_CFG_NODE_SCALAR && !(f->flags & EP_CFG_SECRET) &&
        !ep_cfg__errs_full(c->errs)) {
        for (const ep_cfg_enum *x = f->choices; x->name != NULL && k < 64; x++)
            names[k++] = x->name;
        s = suggest(n->value, names, k);
    }
    if (s != NULL)
        ep_cfg__report(c->errs, false, n, false, "expected %s, got %s; did you mean \"%s\"?",
                       expect(f, e, sizeof(e)), got(f, n, g, sizeof(g)), s);
    else
        type_error(c, f, n);
}

/* set_scalar parses scalar node n for field f into storage p. */
static bool set_scalar(bctx *c, const ep_cfg_field *f, const ep_cfg_node *n, void *p)
{
    uint64_t u, lo, hi;
    int64_t s, slo, shi;
    int b;

    if (n->kind != EP_CFG_NODE_SCALAR || n->is_null) {
        type_error(c, f, n);
        return false;
    }
    ep_cfg__ubounds(f, &lo, &hi);
    switch (f->type) {
    case EP_CFG_BOOL:
        if ((b = parse_bool(n->value)) < 0)
            break;
        *(bool *)p = b != 0;
        return true;
    case EP_CFG_INT:
        ep_cfg__sbounds(f, &slo, &shi);
        if (!parse_int(n->value, &s) || s < slo || s > shi)
            break;
        ep_cfg__store_s(p, f->size, s);
        return true;
    case EP_CFG_UINT:
    case EP_CFG_SIZE:
    case EP_CFG_DURATION:
        if (!(f->type == EP_CFG_UINT   ? parse_uint(n->value, &u)
              : f->type == EP_CFG_SIZE ? parse_size(n->value, &u)
                                       : parse_duration(n->value, &u)) ||
            u < lo || u > hi)
            break;
        ep_cfg__store_u(p, f->size, u);
        return true;
    case EP_CFG_STRING: {
        if (n->len < lo || n->len > hi) {
            char e[128];
            ep_cfg__report(c->errs, false, n, false, "expected %s, got %zu bytes",
                           expect(f, e, sizeof(e)), n->len);
            return false;
        }
        char *dup = malloc(n->len + 1);
        if (dup == NULL) {
            c->hard = EP_ENOMEM;
            return false;
        }
        memcpy(dup, n->value, n->len + 1);
        free(*(char **)p);
        *(char **)p = dup;
        return true;
    }
    case EP_CFG_ENUM:
        for (const ep_cfg_enum *e = f->choices; e->name != NULL; e++)
            if (strcmp(e->name, n->value) == 0) {
                ep_cfg__store_s(p, f->size, e->value);
                return true;
            }
        enum_error(c, f, n);
        return false;
    case EP_CFG_HOSTPORT: {
        ep_cfg_hostport hp;
        if (!parse_hostport(n->value, n->len, &hp, &u) || u < lo || u > hi)
            break;
        hp.port = (uint16_t)u;
        memcpy(p, &hp, sizeof(hp));
        return true;
    }
    default:
        break;
    }
    type_error(c, f, n);
    return false;
}

static void bind_list(bctx *c, const ep_cfg_field *f, const ep_cfg_node *n, void *p)
{
    const ep_cfg_field *el = f->sub;
    uint64_t lo, hi;
    ep_cfg_list nl = {NULL, 0};

    ep_cfg__ubounds(f, &lo, &hi);
    if (n->kind != EP_CFG_NODE_LIST || n->count < lo || n->count > hi) {
        if (n->kind == EP_CFG_NODE_LIST) {
            char e[128];
            ep_cfg__report(c->errs, false, n, false, "expected %s, got %zu",
                           expect(f, e, sizeof(e)), n->count);
        } else {
            type_error(c, f, n);
        }
        return;
    }
    if (n->count > 0) {
        /* count is bounded by the parser's node limit; guard anyway */
        if (n->count > SIZE_MAX / el->size || (nl.items = calloc(n->count, el->size)) == NULL) {
            c->hard = EP_ENOMEM;
            return;
        }
    }
    nl.count = n->count;
    size_t i = 0;
    for (const ep_cfg_node *it = n->first; it != NULL && c->hard == EP_EOK; it = it->next, i++) {
        void *ip = (char *)nl.items + i * el->size;
        defaults_value(c, el, ip);
        if (c->hard == EP_EOK)
            bind_value(c, el, it, ip);
    }
    clear_value(f, p);
    memcpy(p, &nl, sizeof(nl));
}

static void bind_value(bctx *c, const ep_cfg_field *f, const ep_cfg_node *n, void *p)
{
    size_t before = c->errs->nerr;

    if (n->kind == EP_CFG_NODE_SCALAR && n->is_null) {
        /* null keeps the default; a null map still checks required keys */
        if (f->flags & EP_CFG_REQUIRED)
            type_error(c, f, n);
        else if (f->type == EP_CFG_MAP)
            bind_map(c, f->sub, n, p);
        return;
    }
    switch (f->type) {
    case EP_CFG_MAP:
        if (n->kind != EP_CFG_NODE_MAP) {
            type_error(c, f, n);
            return;
        }
        bind_map(c, f->sub, n, p);
        break;
    case EP_CFG_LIST:
        bind_list(c, f, n, p);
        break;
    default:
        if (!set_scalar(c, f, n, p))
            return;
        break;
    }
    if (f->validate != NULL && c->errs->nerr == before && c->hard == EP_EOK &&
        !f->validate(f, p, n, c->errs) && c->errs->nerr == before)
        ep_cfg__report(c->errs, false, n, false, "invalid value");
}

static void unknown_key(bctx *c, const ep_cfg_field *t, const ep_cfg_node *k)
{
    const char *names[256];
    size_t n = 0;
    const char *s = NULL;

    if (!ep_cfg__errs_full(c->errs)) {
        for (const ep_cfg_field *f = t; f->name != NULL && n < 256; f++)
            if (!(f->flags & EP_CFG_DEPRECATED))
                names[n++] = f->name;
        s = suggest(k->key, names, n);
    }
    if (s != NULL)
        ep_cfg__report(c->errs, false, k, true, "unknown key; did you mean '%s'?", s);
    else
        ep_cfg__report(c->errs, false, k, true, "unknown key");
}

static void bind_map(bctx *c, const ep_cfg_field *t, const ep_cfg_node *n, void *base)
{
    bool is_map = n != NULL && n->kind == EP_CFG_NODE_MAP;

    if (is_map) {
        for (const ep_cfg_node *k = n->first; k != NULL && c->hard == EP_EOK; k = k->next) {
            const ep_cfg_field *f;
            for (f = t; f->name != NULL; f++)
                if (strcmp(f->name, k->key) == 0)
                    break;
            if (f->name == NULL) {
                unknown_key(c, t, k);
                continue;
            }
            if (f->flags & EP_CFG_DEPRECATED)
                ep_cfg__report(c->errs, true, k, true, "deprecated key");
            bind_value(c, f, k, (char *)base + f->off);
        }
    }
    for (const ep_cfg_field *f = t; f->name != NULL; f++)
        if ((f->flags & EP_CFG_REQUIRED) && (!is_map || ep_cfg_node_get(n, f->name) == NULL))
            ep_cfg__report(c->errs, false, n, false, "missing required key '%s'", f->name);
}

static void defaults_table(bctx *c, const ep_cfg_field *t, void *base)
{
    for (const ep_cfg_field *f = t; f->name != NULL && c->hard == EP_EOK; f++)
        defaults_value(c, f, (char *)base + f->off);
}

static void defaults_value(bctx *c, const ep_cfg_field *f, void *p)
{
    size_t before = c->errs->nerr;

    if (f->type == EP_CFG_MAP) {
        defaults_table(c, f->sub, p);
        return;
    }
    if (f->def == NULL)
        return;
    if (f->type == EP_CFG_LIST) {
        ep_cfg_errs e2 = {0};
        ep_cfg_tree *tr = NULL;
        ep_err rc = ep_cfg_parse_str("<default>", f->def, strlen(f->def), NULL, &tr, &e2);
        if (rc == EP_EOK && ep_cfg_tree_root(tr) != NULL)
            bind_list(c, f, ep_cfg_tree_root(tr), p);
        else if (rc == EP_ENOMEM)
            c->hard = EP_ENOMEM;
        else if (rc != EP_EOK)
            table_bug(c, f, "default is not valid YAML");
        ep_cfg_tree_free(tr);
        ep_cfg_errs_fini(&e2);
    } else {
        ep_cfg_node dn = default_node(f);
        set_scalar(c, f, &dn, p);
    }
    if (c->errs->nerr != before && c->hard == EP_EOK)
        table_bug(c, f, "invalid default");
}

ep_err ep_cfg_bind(const ep_cfg_field *table, const ep_cfg_node *n, void *st, ep_cfg_errs *errs)
{
    bctx c = {.errs = errs, .hard = EP_EOK};
    size_t before = errs->nerr;

    for (const ep_cfg_field *f = table; f->name != NULL; f++)
        if (!check_field(&c, f, 0))
            return c.hard;
    defaults_table(&c, table, st);
    if (c.hard == EP_EOK) {
        if (n != NULL && n->kind != EP_CFG_NODE_MAP && !n->is_null)
            ep_cfg__report(errs, false, n, false, "expected a map, got %s",
                           n->kind == EP_CFG_NODE_LIST ? "a list" : "a scalar");
        else
            bind_map(&c, table, n, st);
    }
    if (c.hard != EP_EOK || errs->nerr != before) {
        ep_cfg_clear(table, st);
        return c.hard != EP_EOK ? c.hard : EP_ECONFIG;
    }
    return EP_EOK;
}

/* ------------------------------------------------------------------------ */
/* Clear and compare                                                         */

static void clear_value(const ep_cfg_field *f, void *p)
{
    switch (f->type) {
    case EP_CFG_STRING:
        free(*(char **)p);
        *(char **)p = NULL;
        break;
    case EP_CFG_LIST: {
        ep_cfg_list *l = p;
        for (size_t i = 0; i < l->count && l->items != NULL; i++)
            clear_value(f->sub, (char *)l->items + i * f->sub->size);
        free(l->items);
        l->items = NULL;
        l->count = 0;
        break;
    }
    case EP_CFG_MAP:
        clear_table(f->sub, p);
        break;
    default:
        memset(p, 0, f->size);
        break;
    }
}

static void clear_table(const ep_cfg_field *t, void *base)
{
    for (const ep_cfg_field *f = t; f->name != NULL; f++)
        clear_value(f, (char *)base + f->off);
}

void ep_cfg_clear(const ep_cfg_field *table, void *st)
{
    if (table != NULL && st != NULL)
        clear_table(table, st);
}

static bool equal_table(const ep_cfg_field *t, const void *a, const void *b);

static bool equal_value(const ep_cfg_field *f, const void *a, const void *b)
{
    switch (f->type) {
    case EP_CFG_STRING: {
        const char *x = *(char *const *)a, *y = *(char *const *)b;
        return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
    }
    case EP_CFG_HOSTPORT: {
        const ep_cfg_hostport *x = a, *y = b;
        return x->port == y->port && strcmp(x->host, y->host) == 0;
    }
    case EP_CFG_LIST: {
        const ep_cfg_list *x = a, *y = b;
        if (x->count != y->count)
            return false;
        for (size_t i = 0; i < x->count; i++)
            if (!equal_value(f->sub, (const char *)x->items + i * f->sub->size,
                             (const char *)y->items + i * f->sub->size))
                return false;
        return true;
    }
    case EP_CFG_MAP:
        return equal_table(f->sub, a, b);
    case EP_CFG_BOOL:
        return *(const bool *)a == *(const bool *)b;
    default:
        return ep_cfg__load_u(a, f->size) == ep_cfg__load_u(b, f->size);
    }
}

static bool equal_table(const ep_cfg_field *t, const void *a, const void *b)
{
    for (const ep_cfg_field *f = t; f->name != NULL; f++)
        if (!equal_value(f, (const char *)a + f->off, (const char *)b + f->off))
            return false;
    return true;
}

bool ep_cfg_equal(const ep_cfg_field *table, const void *a, const void *b)
{
    return equal_table(table, a, b);
}
