/*
 * log_kv.c - logfmt and JSON-lines sinks; see log_kv.h.
 *
 * A record is formatted into a stack buffer and written with one write(2),
 * so lines from several processes sharing a pipe do not interleave (up to
 * PIPE_BUF) and a crash never leaves half a record in a stdio buffer. The
 * JSON writer replaces invalid UTF-8 with U+FFFD so every line stays valid
 * JSON whatever a peer managed to get into a message.
 */
#include "core/log_kv.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int ep_log_format_parse(const char *name, ep_log_format *out)
{
    if (strcmp(name, "text") == 0)
        *out = EP_LOG_FORMAT_TEXT;
    else if (strcmp(name, "kv") == 0 || strcmp(name, "logfmt") == 0)
        *out = EP_LOG_FORMAT_KV;
    else if (strcmp(name, "json") == 0)
        *out = EP_LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

typedef struct out {
    char *p;
    size_t n, len; /* len < n always; p[len] == '\0' */
} out;

static void put(out *o, const char *s, size_t k)
{
    if (k > o->n - 1 - o->len)
        k = o->n - 1 - o->len;
    memcpy(o->p + o->len, s, k);
    o->len += k;
    o->p[o->len] = '\0';
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

/* Length of a valid UTF-8 sequence at s (max bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t k;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (left < k)
        return 0;
    unsigned cp = c & (0xffu >> (k + 1));
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

/* Quoted string with JSON escapes (also used for quoted logfmt values).
 * Each character or escape is written whole; when the buffer runs short
 * the string is cut there and still closed, leaving `reserve` bytes free
 * for what follows, so a truncated record stays well-formed. */
static void put_quoted(out *o, const char *s, size_t n, size_t reserve)
{
    put(o, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        char esc[8];
        const char *piece = esc;
        size_t k = 1, plen;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            plen = 2;
        } else if (c == '\n') {
            piece = "\\n";
            plen = 2;
        } else if (c == '\t') {
            piece = "\\t";
            plen = 2;
        } else if (c == '\r') {
            piece = "\\r";
            plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            plen = 6;
        } else if ((k = utf8_len(u + i, n - i)) == 0) {
            piece = "\\ufffd";
            plen = 6;
            k = 1;
        } else {
            piece = s + i;
            plen = k;
        }
        if (o->len + plen + 1 + reserve > o->n - 1)
            break;
        put(o, piece, plen);
        i += k;
    }
    put(o, "\"", 1);
}

/* logfmt value: bare when it is a simple word, quoted otherwise. */
static void put_kv_value(out *o, const char *s, size_t n)
{
    bool bare = n > 0;
    for (size_t i = 0; i < n && bare; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
            bare = false;
    }
    if (bare)
        put(o, s, n);
    else
        put_quoted(o, s, n, 0);
}

static bool msgid_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Splits a leading "[msgid] " off line. Returns the msgid length or 0. */
static size_t split_msgid(const char *line)
{
    if (line[0] != '[')
        return 0;
    size_t i = 1, dots = 0;
    bool seg = false;
    for (; line[i] && line[i] != ']'; i++) {
        if (line[i] == '.') {
            if (!seg)
                return 0;
            dots++;
            seg = false;
        } else if (msgid_char(line[i])) {
            seg = true;
        } else {
            return 0;
        }
        if (i > 63)
            return 0;
    }
    if (line[i] != ']' || line[i + 1] != ' ' || !seg || dots == 0)
        return 0;
    return i - 1;
}

size_t ep_log_kv_format(ep_log_format fmt, uint64_t wall_ms, ep_log_level lvl, const char *cat,
                        const char *line, char *buf, size_t n)
{
    out o = {buf, n, 0};
    buf[0] = '\0';
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    char ts[40];
    gmtime_r(&secs, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03uZ", (unsigned)(wall_ms % 1000));
    size_t idl = split_msgid(line);
    const char *msg = idl ? line + idl + 3 : line;
    char idbuf[96];
    if (idl)
        snprintf(idbuf, sizeof(idbuf), "%.*s", (int)idl, line + 1);
    else
        snprintf(idbuf, sizeof(idbuf), "%s.untagged", cat);
    const char *lv = ep_log_level_name(lvl);

    if (fmt == EP_LOG_FORMAT_JSON) {
        puts_(&o, "{\"ts\":\"");
        puts_(&o, ts);
        puts_(&o, "\",\"level\":");
        put_quoted(&o, lv, strlen(lv), 0);
        puts_(&o, ",\"cat\":");
        put_quoted(&o, cat, strlen(cat), 0);
        puts_(&o, ",\"msgid\":");
        put_quoted(&o, idbuf, strlen(idbuf), 0);
        puts_(&o, ",\"msg\":");
        put_quoted(&o, msg, strlen(msg), 1);
        puts_(&o, "}");
        return o.len;
    }
    if (fmt == EP_LOG_FORMAT_KV) {
        puts_(&o, "ts=");
        puts_(&o, ts);
        puts_(&o, " level=");
        puts_(&o, lv);
        puts_(&o, " cat=");
        put_kv_value(&o, cat, strlen(cat));
        puts_(&o, " msgid=");
        put_kv_value(&o, idbuf, strlen(idbuf));
        puts_(&o, " msg=");
        put_quoted(&o, msg, strlen(msg), 0);
        return o.len;
    }
    snprintf(buf, n, "%s %-5s %-7s %s", ts, lv, cat, line);
    return strlen(buf);
}

void ep_log_kv_sink(void *ud, ep_log_level lvl, const char *cat, const char *line)
{
    const ep_log_kv *k = ud;
    struct timeval tv;
    char buf[4096];
    gettimeofday(&tv, NULL);
    uint64_t ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
    size_t len = ep_log_kv_format(k->fmt, ms, lvl, cat, line, buf, sizeof(buf) - 1);
    buf[len++] = '\n';
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(k->fd, buf + off, len - off);
        if (w <= 0)
            break; /* nowhere to report a failing log sink */
        off += (size_t)w;
    }
}

void ep_log_use_format(ep_log_format fmt)
{
    static ep_log_kv kv = {EP_LOG_FORMAT_KV, 2};
    static ep_log_kv json = {EP_LOG_FORMAT_JSON, 2};
    if (fmt == EP_LOG_FORMAT_KV)
        ep_log_set_sink(ep_log_kv_sink, &kv);
    else if (fmt == EP_LOG_FORMAT_JSON)
        ep_log_set_sink(ep_log_kv_sink, &json);
    else
        ep_log_set_sink(NULL, NULL);
}
