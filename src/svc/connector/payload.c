/*
 * payload.c - JSON for published messages: OPC UA values in the reference's
 * shape (the OPC UA PubSub JSON style, non-reversible form) and the
 * identifiers that go in the CloudEvents user properties.
 *
 *   {"temperature":{"SourceTimestamp":"2024-07-29T15:02:17.1858435Z",
 *                   "Value":45.5}, ...}
 *
 * StatusCode is written only when not Good ({"Code":2150891520,
 * "Symbol":"BadNodeIdUnknown"}), as the OPC UA JSON encoding omits a Good
 * status. Value is omitted when the DataValue has none. Timestamps keep
 * the full 100 ns resolution of OPC UA DateTime. Integers are JSON numbers
 * (Int64/UInt64 too, unlike the reversible encoding, which quotes them);
 * ByteStrings are base64; NaN and infinities are the strings "NaN",
 * "Infinity", "-Infinity" as in Part 6.
 *
 * Everything appends to an ep_buf; an allocation failure is remembered by
 * the buffer's owner through the return value of the final check
 * (ep_conn__json_ok), so the hot path does not test every append.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "codec/opcua/gen/statuscodes.h"
#include "svc/connector/conn_int.h"
#include "svc/opcua_client/client.h"

static inline void put(ep_buf *b, const void *p, size_t n)
{
    if (ep_buf_reserve(b, n) != EP_EOK) {
        b->limit = 1; /* mark failed: later reserves fail too */
        return;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void putc_(ep_buf *b, char c) { put(b, &c, 1); }
#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

bool ep_conn__json_ok(const ep_buf *b) { return b->limit != 1; }

/* UTF-8 validity of one sequence at p (n bytes left): its length, or 0 */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

/* str_body writes s escaped, without the quotes */
static void str_body(ep_buf *b, const void *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = s;
    size_t run = 0; /* bytes copied as they are, flushed in one put */
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            i++;
            continue;
        }
        size_t l = c >= 0x80 ? utf8_seq(p + i, n - i) : 0;
        if (l > 1) {
            run += l;
            i += l;
            continue;
        }
        if (run)
            put(b, p + i - run, run);
        run = 0;
        if (c == '"')
            PUTS(b, "\\\"");
        else if (c == '\\')
            PUTS(b, "\\\\");
        else if (c == '\n')
            PUTS(b, "\\n");
        else if (c == '\r')
            PUTS(b, "\\r");
        else if (c == '\t')
            PUTS(b, "\\t");
        else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(b, e, 6);
        } else {
            PUTS(b, "\xEF\xBF\xBD"); /* invalid UTF-8: U+FFFD */
        }
        i++;
    }
    if (run)
        put(b, p + n - run, run);
}

void ep_conn__json_str(ep_buf *b, const void *s, size_t n)
{
    putc_(b, '"');
    str_body(b, s, n);
    putc_(b, '"');
}

void ep_conn__json_cstr(ep_buf *b, const char *s) { ep_conn__json_str(b, s, strlen(s)); }

static void put_uint(ep_buf *b, uint64_t v)
{
    char t[24];
    size_t i = sizeof(t);
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, t + i, sizeof(t) - i);
}

static void put_int(ep_buf *b, int64_t v)
{
    if (v < 0) {
        putc_(b, '-');
        put_uint(b, (uint64_t)0 - (uint64_t)v);
    } else {
        put_uint(b, (uint64_t)v);
    }
}

static void put_double(ep_buf *b, double d)
{
    if (isnan(d)) {
        PUTS(b, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        if (d > 0)
            PUTS(b, "\"Infinity\"");
        else
            PUTS(b, "\"-Infinity\"");
        return;
    }
    if (d == (double)(int64_t)d && fabs(d) < 1e15) {
        put_int(b, (int64_t)d);
        return;
    }
    char t[40];
    int k = snprintf(t, sizeof(t), "%.15g", d);
    if (strtod(t, NULL) != d)
        k = snprintf(t, sizeof(t), "%.17g", d);
    put(b, t, (size_t)k);
}

static void put_base64(ep_buf *b, const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    putc_(b, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char o[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], i + 1 < n ? tbl[(v >> 6) & 63] : '=',
                     i + 2 < n ? tbl[v & 63] : '='};
        put(b, o, 4);
    }
    putc_(b, '"');
}

/* DateTime text: the date and time of day change at most once a second in
 * a stream of values, so the "YYYY-MM-DDTHH:MM:SS" part is cached per
 * thread. */
static _Thread_local int64_t dt_cached_sec = INT64_MIN;
static _Thread_local char dt_cached[64];

size_t ep_conn__datetime_text(ep_ua_datetime dt, char out[32])
{
    int64_t rel = dt - EP_UA_DATETIME_UNIX_EPOCH;
    if (dt <= 0 || rel < 0 || rel / EP_UA_DATETIME_SEC > (int64_t)253402300799LL) {
        memcpy(out, "0001-01-01T00:00:00Z", 21);
        return 20;
    }
    int64_t sec = rel / EP_UA_DATETIME_SEC;
    int64_t frac = rel % EP_UA_DATETIME_SEC; /* 100 ns units, 7 digits */
    if (sec != dt_cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(dt_cached, sizeof(dt_cached), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        dt_cached_sec = sec;
    }
    memcpy(out, dt_cached, 19);
    size_t n = 19;
    if (frac) {
        out[n++] = '.';
        char d[7];
        for (int i = 6; i >= 0; i--) {
            d[i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        int last = 6;
        while (last > 0 && d[last] == '0')
            last--;
        memcpy(out + n, d, (size_t)last + 1);
        n += (size_t)last + 1;
    }
    out[n++] = 'Z';
    out[n] = 0;
    return n;
}

void ep_conn__json_datetime(ep_buf *b, ep_ua_datetime dt)
{
    char t[32];
    size_t n = ep_conn__datetime_text(dt, t);
    putc_(b, '"');
    put(b, t, n);
    putc_(b, '"');
}

static void put_status_obj(ep_buf *b, ep_ua_status st)
{
    PUTS(b, "{\"Code\":");
    put_uint(b, st);
    PUTS(b, ",\"Symbol\":");
    ep_conn__json_cstr(b, ep_ua_status_name(st));
    putc_(b, '}');
}

static void put_scalar(ep_buf *b, const ep_ua_type *t, const void *p, unsigned depth);

void ep_conn__json_variant(ep_buf *b, const ep_ua_variant *v)
{
    if (v == NULL || v->type == NULL) {
        PUTS(b, "null");
        return;
    }
    if (!v->is_array) {
        put_scalar(b, v->type, v->data, 0);
        return;
    }
    putc_(b, '[');
    for (size_t i = 0; v->data && i < v->array_len; i++) {
        if (i)
            putc_(b, ',');
        put_scalar(b, v->type, (const uint8_t *)v->data + i * v->type->size, 0);
    }
    putc_(b, ']');
}

static void put_scalar(ep_buf *b, const ep_ua_type *t, const void *p, unsigned depth)
{
    char tmp[256];
    switch (t->kind) {
    case EP_UA_KIND_BOOLEAN:
        if (*(const bool *)p)
            PUTS(b, "true");
        else
            PUTS(b, "false");
        break;
    case EP_UA_KIND_SBYTE:
        put_int(b, *(const int8_t *)p);
        break;
    case EP_UA_KIND_BYTE:
        put_uint(b, *(const uint8_t *)p);
        break;
    case EP_UA_KIND_INT16:
        put_int(b, *(const int16_t *)p);
        break;
    case EP_UA_KIND_UINT16:
        put_uint(b, *(const uint16_t *)p);
        break;
    case EP_UA_KIND_INT32:
    case EP_UA_KIND_ENUM:
        put_int(b, *(const int32_t *)p);
        break;
    case EP_UA_KIND_UINT32:
        put_uint(b, *(const uint32_t *)p);
        break;
    case EP_UA_KIND_INT64:
        put_int(b, *(const int64_t *)p);
        break;
    case EP_UA_KIND_UINT64:
        put_uint(b, *(const uint64_t *)p);
        break;
    case EP_UA_KIND_FLOAT:
        put_double(b, (double)*(const float *)p);
        break;
    case EP_UA_KIND_DOUBLE:
        put_double(b, *(const double *)p);
        break;
    case EP_UA_KIND_STRING:
    case EP_UA_KIND_XMLELEMENT: {
        const ep_ua_string *s = p;
        if (s->data == NULL)
            PUTS(b, "null");
        else
            ep_conn__json_str(b, s->data, s->len);
        break;
    }
    case EP_UA_KIND_BYTESTRING: {
        const ep_ua_bytestring *s = p;
        if (s->data == NULL)
            PUTS(b, "null");
        else
            put_base64(b, s->len ? s->data : (const uint8_t *)"", s->len);
        break;
    }
    case EP_UA_KIND_DATETIME:
        ep_conn__json_datetime(b, *(const ep_ua_datetime *)p);
        break;
    case EP_UA_KIND_NODEID:
        ep_uac_nodeid_format(p, tmp, sizeof(tmp));
        ep_conn__json_cstr(b, tmp);
        break;
    case EP_UA_KIND_EXPANDEDNODEID:
        ep_uac_nodeid_format(&((const ep_ua_expandednodeid *)p)->node_id, tmp, sizeof(tmp));
        ep_conn__json_cstr(b, tmp);
        break;
    case EP_UA_KIND_STATUSCODE:
        put_status_obj(b, *(const ep_ua_status *)p);
        break;
    case EP_UA_KIND_QUALIFIEDNAME: {
        const ep_ua_qualifiedname *q = p;
        if (q->ns) {
            int k = snprintf(tmp, sizeof(tmp), "\"%u:", q->ns);
            put(b, tmp, (size_t)k);
            str_body(b, q->name.data ? q->name.data : (const uint8_t *)"", q->name.len);
            putc_(b, '"');
        } else {
            ep_conn__json_str(b, q->name.data ? q->name.data : (const uint8_t *)"", q->name.len);
        }
        break;
    }
    case EP_UA_KIND_LOCALIZEDTEXT: {
        const ep_ua_localizedtext *l = p;
        if (l->text.data == NULL)
            PUTS(b, "null");
        else
            ep_conn__json_str(b, l->text.data, l->text.len);
        break;
    }
    case EP_UA_KIND_GUID: {
        const ep_ua_guid *g = p;
        snprintf(tmp, sizeof(tmp), "%08" PRIx32 "-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 g->data1, g->data2, g->data3, g->data4[0], g->data4[1], g->data4[2], g->data4[3],
                 g->data4[4], g->data4[5], g->data4[6], g->data4[7]);
        ep_conn__json_cstr(b, tmp);
        break;
    }
    case EP_UA_KIND_VARIANT:
        if (depth < 8) {
            const ep_ua_variant *iv = p;
            if (iv->type == NULL)
                PUTS(b, "null");
            else if (!iv->is_array)
                put_scalar(b, iv->type, iv->data, depth + 1);
            else
                ep_conn__json_variant(b, iv);
        } else {
            PUTS(b, "null");
        }
        break;
    case EP_UA_KIND_DATAVALUE:
        ep_conn__json_datavalue(b, p);
        break;
    case EP_UA_KIND_EXTENSIONOBJECT: {
        const ep_ua_extensionobject *x = p;
        ep_uac_nodeid_format(&x->type_id, tmp, sizeof(tmp));
        PUTS(b, "{\"TypeId\":");
        ep_conn__json_cstr(b, x->type ? x->type->name : tmp);
        if (x->encoding == EP_UA_EXTOBJ_BINARY && x->body.data) {
            PUTS(b, ",\"Body\":");
            put_base64(b, x->body.data, x->body.len);
        }
        putc_(b, '}');
        break;
    }
    default:
        PUTS(b, "null");
        break;
    }
}

void ep_conn__json_datavalue(ep_buf *b, const ep_ua_datavalue *dv)
{
    bool comma = false;
    putc_(b, '{');
    if (dv->mask & EP_UA_DATAVALUE_SOURCE_TIMESTAMP) {
        PUTS(b, "\"SourceTimestamp\":");
        ep_conn__json_datetime(b, dv->source_timestamp);
        comma = true;
    }
    if ((dv->mask & EP_UA_DATAVALUE_VALUE) && dv->value.type != NULL) {
        if (comma)
            putc_(b, ',');
        PUTS(b, "\"Value\":");
        ep_conn__json_variant(b, &dv->value);
        comma = true;
    }
    if ((dv->mask & EP_UA_DATAVALUE_STATUS) && dv->status != 0) {
        if (comma)
            putc_(b, ',');
        PUTS(b, "\"StatusCode\":");
        put_status_obj(b, dv->status);
        comma = true;
    }
    if (!(dv->mask & EP_UA_DATAVALUE_SOURCE_TIMESTAMP) &&
        (dv->mask & EP_UA_DATAVALUE_SERVER_TIMESTAMP)) {
        if (comma)
            putc_(b, ',');
        PUTS(b, "\"ServerTimestamp\":");
        ep_conn__json_datetime(b, dv->server_timestamp);
    }
    putc_(b, '}');
}

/* ------------------------------------------------------------------ */
/* identifiers                                                         */

static _Thread_local uint64_t rng_s[2];

static uint64_t rng_next(void)
{
    if (rng_s[0] == 0 && rng_s[1] == 0) {
        if (getrandom(rng_s, sizeof(rng_s), 0) != (ssize_t)sizeof(rng_s) ||
            (rng_s[0] | rng_s[1]) == 0) {
            rng_s[0] = (uint64_t)time(NULL) ^ 0x9E3779B97F4A7C15ull;
            rng_s[1] = (uint64_t)(uintptr_t)&rng_s ^ 0xD1B54A32D192ED03ull;
        }
    }
    /* xorshift128+: identifiers must be unique, not secret */
    uint64_t s1 = rng_s[0];
    const uint64_t s0 = rng_s[1];
    rng_s[0] = s0;
    s1 ^= s1 << 23;
    rng_s[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
    return rng_s[1] + s0;
}

static void hex64(char *o, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        o[i] = hex[v & 15];
        v >>= 4;
    }
}

void ep_conn__uuid(char out[37])
{
    uint64_t a = rng_next(), b = rng_next();
    a = (a & ~0xF000ull) | 0x4000ull;       /* version 4 */
    b = (b & ~(3ull << 62)) | (2ull << 62); /* variant 10 */
    char h[32];
    hex64(h, a, 16);
    hex64(h + 16, b, 16);
    memcpy(out, h, 8);
    out[8] = '-';
    memcpy(out + 9, h + 8, 4);
    out[13] = '-';
    memcpy(out + 14, h + 12, 4);
    out[18] = '-';
    memcpy(out + 19, h + 16, 4);
    out[23] = '-';
    memcpy(out + 24, h + 20, 12);
    out[36] = 0;
}

void ep_conn__traceparent(char out[56])
{
    memcpy(out, "00-", 3);
    hex64(out + 3, rng_next(), 16);
    hex64(out + 19, rng_next() | 1, 16);
    out[35] = '-';
    hex64(out + 36, rng_next() | 1, 16);
    memcpy(out + 52, "-01", 3);
    out[55] = 0;
}

/* ep_conn__digest is FNV-1a (64 bits) of n bytes: tells a resource text
 * from the previous version of the same resource. Two different versions
 * with equal length and digest (a chance of 2^-64) would leave the second
 * one unapplied until the next change; whoever can publish resources can
 * change the asset anyway, so a crafted collision gains nothing. */
uint64_t ep_conn__digest(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

size_t ep_conn__now_text(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ep_ua_datetime dt =
        EP_UA_DATETIME_UNIX_EPOCH + (int64_t)ts.tv_sec * EP_UA_DATETIME_SEC + ts.tv_nsec / 100;
    return ep_conn__datetime_text(dt, out);
}
