/*
 * text.c - the text forms of NodeIds and Variants used by the CLI and logs
 * (the OPC UA string notation "ns=2;s=Name", Part 6 5.3.1.10), plus a JSON
 * rendering of values for scripts.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <time.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/opcua_client/uac_int.h"

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

ep_err ep_uac_nodeid_parse(const char *s, ep_ua_nodeid *out)
{
    if (s == NULL || out == NULL)
        return EP_EINVAL;
    ep_ua_nodeid id;
    memset(&id, 0, sizeof(id));
    uint32_t v;
    if (parse_u32(s, strlen(s), &v)) {
        *out = ep_ua_nodeid_numeric(0, v);
        return EP_EOK;
    }
    if (strncmp(s, "ns=", 3) == 0) {
        const char *semi = strchr(s, ';');
        if (semi == NULL || !parse_u32(s + 3, (size_t)(semi - s - 3), &v) || v > UINT16_MAX)
            return EP_EINVAL;
        id.ns = (uint16_t)v;
        s = semi + 1;
    }
    if (s[0] == 0 || s[1] != '=')
        return EP_EINVAL;
    const char *val = s + 2;
    size_t len = strlen(val);
    switch (s[0]) {
    case 'i':
        if (!parse_u32(val, len, &v))
            return EP_EINVAL;
        id.id_type = EP_UA_NODEID_NUMERIC;
        id.id.numeric = v;
        break;
    case 's':
        id.id_type = EP_UA_NODEID_STRING;
        id.id.string.len = len;
        id.id.string.data = len ? (uint8_t *)(uintptr_t)val : (uint8_t *)EP_UA_EMPTY;
        break;
    case 'g': {
        /* 8-4-4-4-12 */
        if (len != 36)
            return EP_EINVAL;
        uint8_t b[16];
        size_t k = 0;
        for (size_t i = 0; i < len; i++) {
            if (val[i] == '-')
                continue;
            int hi = hexval(val[i]), lo = i + 1 < len ? hexval(val[i + 1]) : -1;
            if (hi < 0 || lo < 0 || k >= 16)
                return EP_EINVAL;
            b[k++] = (uint8_t)(hi << 4 | lo);
            i++;
        }
        if (k != 16)
            return EP_EINVAL;
        id.id_type = EP_UA_NODEID_GUID;
        id.id.guid.data1 = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        id.id.guid.data2 = (uint16_t)(b[4] << 8 | b[5]);
        id.id.guid.data3 = (uint16_t)(b[6] << 8 | b[7]);
        memcpy(id.id.guid.data4, b + 8, 8);
        break;
    }
    case 'b':
        /* opaque ids are kept as the given text bytes (no base64 here) */
        id.id_type = EP_UA_NODEID_OPAQUE;
        id.id.opaque.len = len;
        id.id.opaque.data = len ? (uint8_t *)(uintptr_t)val : (uint8_t *)EP_UA_EMPTY;
        break;
    default:
        return EP_EINVAL;
    }
    *out = id;
    return EP_EOK;
}

void ep_uac_nodeid_format(const ep_ua_nodeid *id, char *buf, size_t n)
{
    char ns[16] = "";
    if (id->ns)
        snprintf(ns, sizeof(ns), "ns=%u;", id->ns);
    switch (id->id_type) {
    case EP_UA_NODEID_NUMERIC:
        snprintf(buf, n, "%si=%" PRIu32, ns, id->id.numeric);
        break;
    case EP_UA_NODEID_STRING:
        snprintf(buf, n, "%ss=%.*s", ns, (int)id->id.string.len,
                 id->id.string.data ? (const char *)id->id.string.data : "");
        break;
    case EP_UA_NODEID_GUID: {
        const ep_ua_guid *g = &id->id.guid;
        snprintf(buf, n, "%sg=%08" PRIx32 "-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", ns,
                 g->data1, g->data2, g->data3, g->data4[0], g->data4[1], g->data4[2], g->data4[3],
                 g->data4[4], g->data4[5], g->data4[6], g->data4[7]);
        break;
    }
    default: {
        size_t off = (size_t)snprintf(buf, n, "%sb=", ns);
        for (size_t i = 0; i < id->id.opaque.len && off + 3 < n; i++)
            off += (size_t)snprintf(buf + off, n - off, "%02x", id->id.opaque.data[i]);
        break;
    }
    }
}

/* a tiny bounded string builder */
typedef struct sb {
    char *p;
    size_t n, off;
} sb;

static void sb_add(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sb *b, const char *fmt, ...)
{
    if (b->off >= b->n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->off, b->n - b->off, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->off += (size_t)k;
    if (b->off >= b->n)
        b->off = b->n - 1;
}

static void sb_str(sb *b, const ep_ua_string *s, bool json)
{
    sb_add(b, "\"");
    for (size_t i = 0; s->data && i < s->len; i++) {
        unsigned char ch = s->data[i];
        if (ch == '"' || ch == '\\')
            sb_add(b, "\\%c", ch);
        else if (ch < 0x20)
            sb_add(b, json ? "\\u%04x" : "\\x%02x", ch);
        else
            sb_add(b, "%c", ch);
    }
    sb_add(b, "\"");
}

static void sb_datetime(sb *b, ep_ua_datetime dt, bool json)
{
    const char *q = json ? "\"" : "";
    int64_t ms = (dt - EP_UA_DATETIME_UNIX_EPOCH) / EP_UA_DATETIME_MSEC;
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || gmtime_r(&sec, &tm) == NULL) {
        sb_add(b, "%s%" PRId64 "%s", q, (int64_t)dt, q);
        return;
    }
    sb_add(b, "%s%04d-%02d-%02dT%02d:%02d:%02d.%03dZ%s", q, tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000), q);
}

static void sb_double(sb *b, double d, bool json)
{
    if (json && !isfinite(d))
        sb_add(b, "null");
    else
        sb_add(b, "%.17g", d);
}

static void sb_scalar(sb *b, const ep_ua_type *t, const void *p, bool json)
{
    char tmp[160];
    switch (t->kind) {
    case EP_UA_KIND_BOOLEAN:
        sb_add(b, "%s", *(const bool *)p ? "true" : "false");
        break;
    case EP_UA_KIND_SBYTE:
        sb_add(b, "%d", *(const int8_t *)p);
        break;
    case EP_UA_KIND_BYTE:
        sb_add(b, "%u", *(const uint8_t *)p);
        break;
    case EP_UA_KIND_INT16:
        sb_add(b, "%d", *(const int16_t *)p);
        break;
    case EP_UA_KIND_UINT16:
        sb_add(b, "%u", *(const uint16_t *)p);
        break;
    case EP_UA_KIND_INT32:
    case EP_UA_KIND_ENUM:
        sb_add(b, "%" PRId32, *(const int32_t *)p);
        break;
    case EP_UA_KIND_UINT32:
        sb_add(b, "%" PRIu32, *(const uint32_t *)p);
        break;
    case EP_UA_KIND_INT64:
        sb_add(b, "%" PRId64, *(const int64_t *)p);
        break;
    case EP_UA_KIND_UINT64:
        sb_add(b, "%" PRIu64, *(const uint64_t *)p);
        break;
    case EP_UA_KIND_FLOAT:
        sb_double(b, *(const float *)p, json);
        break;
    case EP_UA_KIND_DOUBLE:
        sb_double(b, *(const double *)p, json);
        break;
    case EP_UA_KIND_STRING:
    case EP_UA_KIND_XMLELEMENT:
        sb_str(b, p, json);
        break;
    case EP_UA_KIND_BYTESTRING: {
        const ep_ua_bytestring *s = p;
        sb_add(b, "\"");
        for (size_t i = 0; s->data && i < s->len && i < 64; i++)
            sb_add(b, "%02x", s->data[i]);
        sb_add(b, "%s\"", s->len > 64 ? "..." : "");
        break;
    }
    case EP_UA_KIND_DATETIME:
        sb_datetime(b, *(const ep_ua_datetime *)p, json);
        break;
    case EP_UA_KIND_NODEID:
        ep_uac_nodeid_format(p, tmp, sizeof(tmp));
        sb_add(b, "\"%s\"", tmp);
        break;
    case EP_UA_KIND_EXPANDEDNODEID:
        ep_uac_nodeid_format(&((const ep_ua_expandednodeid *)p)->node_id, tmp, sizeof(tmp));
        sb_add(b, "\"%s\"", tmp);
        break;
    case EP_UA_KIND_STATUSCODE:
        sb_add(b, "\"%s\"", ep_ua_status_name(*(const ep_ua_status *)p));
        break;
    case EP_UA_KIND_QUALIFIEDNAME: {
        const ep_ua_qualifiedname *q = p;
        if (q->ns)
            sb_add(b, "\"%u:%.*s\"", q->ns, (int)q->name.len,
                   q->name.data ? (const char *)q->name.data : "");
        else
            sb_str(b, &q->name, json);
        break;
    }
    case EP_UA_KIND_LOCALIZEDTEXT:
        sb_str(b, &((const ep_ua_localizedtext *)p)->text, json);
        break;
    case EP_UA_KIND_GUID: {
        ep_ua_nodeid id;
        memset(&id, 0, sizeof(id));
        id.id_type = EP_UA_NODEID_GUID;
        id.id.guid = *(const ep_ua_guid *)p;
        ep_uac_nodeid_format(&id, tmp, sizeof(tmp));
        sb_add(b, "\"%s\"", tmp + 2);
        break;
    }
    case EP_UA_KIND_EXTENSIONOBJECT: {
        const ep_ua_extensionobject *x = p;
        sb_add(b, "\"<%s>\"", x->type ? x->type->name : "ExtensionObject");
        break;
    }
    case EP_UA_KIND_VARIANT: {
        char inner[512];
        ep_uac_variant_format(p, json, inner, sizeof(inner));
        sb_add(b, "%s", inner);
        break;
    }
    default:
        sb_add(b, "\"<%s>\"", t->name);
        break;
    }
}

void ep_uac_variant_format(const ep_ua_variant *v, bool json, char *buf, size_t n)
{
    sb b = {buf, n, 0};
    if (n == 0)
        return;
    buf[0] = 0;
    if (v == NULL || v->type == NULL) {
        sb_add(&b, "null");
        return;
    }
    if (!v->is_array) {
        sb_scalar(&b, v->type, v->data, json);
        return;
    }
    sb_add(&b, "[");
    for (size_t i = 0; v->data && i < v->array_len; i++) {
        if (i)
            sb_add(&b, ", ");
        if (b.off + 8 >= b.n) {
            sb_add(&b, "...");
            break;
        }
        sb_scalar(&b, v->type, (const uint8_t *)v->data + i * v->type->size, json);
    }
    sb_add(&b, "]");
}

ep_err ep_uac_variant_parse(const char *s, uint32_t type_id, void *storage, ep_ua_variant *out)
{
    const ep_ua_type *t = ep_ua_type_builtin(type_id);
    if (t == NULL || s == NULL)
        return EP_EINVAL;
    char *end = NULL;
    memset(storage, 0, 16);
    switch (t->kind) {
    case EP_UA_KIND_BOOLEAN:
        if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
            *(bool *)storage = true;
        else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
            *(bool *)storage = false;
        else
            return EP_EINVAL;
        break;
    case EP_UA_KIND_SBYTE:
    case EP_UA_KIND_INT16:
    case EP_UA_KIND_INT32:
    case EP_UA_KIND_INT64: {
        long long v = strtoll(s, &end, 0);
        if (*s == 0 || *end)
            return EP_EINVAL;
        if (t->kind == EP_UA_KIND_SBYTE) {
            if (v < INT8_MIN || v > INT8_MAX)
                return EP_EINVAL;
            *(int8_t *)storage = (int8_t)v;
        } else if (t->kind == EP_UA_KIND_INT16) {
            if (v < INT16_MIN || v > INT16_MAX)
                return EP_EINVAL;
            *(int16_t *)storage = (int16_t)v;
        } else if (t->kind == EP_UA_KIND_INT32) {
            if (v < INT32_MIN || v > INT32_MAX)
                return EP_EINVAL;
            *(int32_t *)storage = (int32_t)v;
        } else {
            *(int64_t *)storage = v;
        }
        break;
    }
    case EP_UA_KIND_BYTE:
    case EP_UA_KIND_UINT16:
    case EP_UA_KIND_UINT32:
    case EP_UA_KIND_UINT64: {
        if (*s == '-')
            return EP_EINVAL;
        unsigned long long v = strtoull(s, &end, 0);
        if (*s == 0 || *end)
            return EP_EINVAL;
        if (t->kind == EP_UA_KIND_BYTE) {
            if (v > UINT8_MAX)
                return EP_EINVAL;
            *(uint8_t *)storage = (uint8_t)v;
        } else if (t->kind == EP_UA_KIND_UINT16) {
            if (v > UINT16_MAX)
                return EP_EINVAL;
            *(uint16_t *)storage = (uint16_t)v;
        } else if (t->kind == EP_UA_KIND_UINT32) {
            if (v > UINT32_MAX)
                return EP_EINVAL;
            *(uint32_t *)storage = (uint32_t)v;
        } else {
            *(uint64_t *)storage = v;
        }
        break;
    }
    case EP_UA_KIND_FLOAT:
    case EP_UA_KIND_DOUBLE: {
        double d = strtod(s, &end);
        if (*s == 0 || *end)
            return EP_EINVAL;
        if (t->kind == EP_UA_KIND_FLOAT)
            *(float *)storage = (float)d;
        else
            *(double *)storage = d;
        break;
    }
    case EP_UA_KIND_STRING:
        *(ep_ua_string *)storage = ep_ua_string_from(s);
        break;
    case EP_UA_KIND_LOCALIZEDTEXT:
        return EP_EINVAL; /* needs 32 bytes; not supported as a scalar here */
    default:
        return EP_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    out->type = t;
    out->data = storage;
    return EP_EOK;
}
