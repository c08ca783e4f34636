/*
 * http_parse.c - HTTP/1.1 request head parser (RFC 9110/9112); see http.h.
 *
 * Stateless: the server calls it again on the whole buffered head each time
 * a new line has arrived, which keeps it a pure function (easy to fuzz and
 * to reason about) at a bounded cost, since a head is at most max_head
 * bytes. Limits are checked on partial input too, so an oversized request
 * line or head is refused as soon as it is seen, not when it ends.
 *
 * Strictness, chosen against request smuggling and for clear errors: lines
 * end in CRLF (a bare LF or CR is 400), no whitespace between a field name
 * and its colon, no obs-fold, Content-Length only as one decimal value
 * (repeats must agree), Transfer-Encoding together with Content-Length is
 * refused, and HTTP/1.1 requires exactly one Host.
 */
#include <string.h>

#include "svc/api/http.h"

enum {
    DEF_MAX_HEAD = 8192,
    DEF_MAX_URI = 2048,
    DEF_MAX_HEADERS = 64,
    DEF_MAX_BODY = 1u << 20,
};

/* tchar per RFC 9110 5.6.2 */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-value octets: VCHAR, SP, HTAB, obs-text */
static bool is_vchar_ws(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

bool ep_http_str_eq(ep_http_str s, const char *z)
{
    size_t n = strlen(z);
    return s.n == n && memcmp(s.p, z, n) == 0;
}

bool ep_http_str_ieq(ep_http_str s, const char *z)
{
    size_t n = strlen(z);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != lower((unsigned char)z[i]))
            return false;
    return true;
}

bool ep_http_request_header(const ep_http_request *req, const char *name, ep_http_str *value)
{
    for (unsigned i = 0; i < req->nheaders; i++) {
        if (ep_http_str_ieq(req->headers[i].name, name)) {
            *value = req->headers[i].value;
            return true;
        }
    }
    return false;
}

static const struct {
    const char *name;
    ep_http_method m;
} methods[] = {
    {"GET", EP_HTTP_GET},         {"HEAD", EP_HTTP_HEAD},     {"POST", EP_HTTP_POST},
    {"PUT", EP_HTTP_PUT},         {"DELETE", EP_HTTP_DELETE}, {"PATCH", EP_HTTP_PATCH},
    {"OPTIONS", EP_HTTP_OPTIONS},
};

const char *ep_http_method_name(ep_http_method m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].m == m)
            return methods[i].name;
    return "?";
}

const char *ep_http_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* Position of the next '\n' in p[from..n), or n. */
static size_t find_lf(const uint8_t *p, size_t from, size_t n)
{
    const uint8_t *q = from < n ? memchr(p + from, '\n', n - from) : NULL;
    return q ? (size_t)(q - p) : n;
}

#define FAIL(code)                                                                                 \
    do {                                                                                           \
        *status = (code);                                                                          \
        return EP_EPROTO;                                                                          \
    } while (0)

/* Request line starting at p[i]; on success *next is the start of the
 * first header line. Handles partial input (EP_ENEEDMORE). */
static ep_err parse_request_line(const uint8_t *p, size_t n, size_t i, size_t max_uri,
                                 size_t max_head, ep_http_request *req, size_t *next, int *status)
{
    size_t start = i;
    /* method */
    while (i < n && is_tchar(p[i]))
        i++;
    if (i - start > 16) /* longer than any method we know */
        FAIL(501);
    if (i == n)
        return EP_ENEEDMORE;
    if (p[i] != ' ' || i == start)
        FAIL(400);
    req->method_name = (ep_http_str){(const char *)p + start, i - start};
    i++;
    /* request-target */
    size_t ts = i;
    while (i < n && p[i] > 0x20 && p[i] < 0x7f) {
        if (i - ts >= max_uri)
            FAIL(414);
        i++;
    }
    if (i == n)
        return i - start > max_head ? (*status = 431, EP_EPROTO) : EP_ENEEDMORE;
    if (p[i] != ' ' || i == ts)
        FAIL(400);
    req->target = (ep_http_str){(const char *)p + ts, i - ts};
    i++;
    /* HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF */
    static const char proto[] = "HTTP/";
    for (size_t k = 0; k < 5; k++, i++) {
        if (i == n)
            return EP_ENEEDMORE;
        if (p[i] != (uint8_t)proto[k])
            FAIL(400);
    }
    uint8_t v[3];
    for (size_t k = 0; k < 3; k++, i++) {
        if (i == n)
            return EP_ENEEDMORE;
        v[k] = p[i];
    }
    if (v[0] < '0' || v[0] > '9' || v[1] != '.' || v[2] < '0' || v[2] > '9')
        FAIL(400);
    if (i == n)
        return EP_ENEEDMORE;
    if (p[i] != '\r')
        FAIL(400);
    if (++i == n)
        return EP_ENEEDMORE;
    if (p[i] != '\n')
        FAIL(400);
    if (v[0] != '1')
        FAIL(505);
    /* 1.x with x > 1 is understood as 1.1 (RFC 9110 2.5). */
    req->version = v[2] == '0' ? 10 : 11;
    *next = i + 1;
    return EP_EOK;
}

/* Splits the target into path and query (origin-form, absolute-form). */
static ep_err split_target(ep_http_request *req, int *status)
{
    const char *t = req->target.p;
    size_t n = req->target.n;
    size_t ps = 0;
    if (n == 1 && t[0] == '*') {
        if (req->method != EP_HTTP_OPTIONS)
            FAIL(400);
        req->path = req->target;
        req->query = (ep_http_str){t + n, 0};
        return EP_EOK;
    }
    if (t[0] != '/') {
        /* absolute-form: scheme "://" authority path-abempty */
        size_t k = 0;
        while (k < n && t[k] != ':')
            k++;
        ep_http_str scheme = {t, k};
        if (!(ep_http_str_ieq(scheme, "http") || ep_http_str_ieq(scheme, "https")) || k + 3 > n ||
            t[k + 1] != '/' || t[k + 2] != '/')
            FAIL(400);
        ps = k + 3;
        while (ps < n && t[ps] != '/' && t[ps] != '?')
            ps++;
    }
    size_t q = ps;
    while (q < n && t[q] != '?')
        q++;
    if (q == ps) /* "http://host" or "http://host?x" */
        req->path = (ep_http_str){"/", 1};
    else
        req->path = (ep_http_str){t + ps, q - ps};
    if (memchr(t + ps, '#', n - ps) != NULL)
        FAIL(400);
    req->query = q < n ? (ep_http_str){t + q + 1, n - q - 1} : (ep_http_str){t + n, 0};
    return EP_EOK;
}

/* Does the comma-separated list s contain token tok (case-insensitive)? */
static bool list_has(ep_http_str s, const char *tok)
{
    size_t i = 0;
    while (i < s.n) {
        while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == ','))
            i++;
        size_t b = i;
        while (i < s.n && s.p[i] != ',')
            i++;
        size_t e = i;
        while (e > b && (s.p[e - 1] == ' ' || s.p[e - 1] == '\t'))
            e--;
        if (e > b && ep_http_str_ieq((ep_http_str){s.p + b, e - b}, tok))
            return true;
    }
    return false;
}

/* The last transfer coding in a list, trimmed. */
static ep_http_str last_coding(ep_http_str s)
{
    size_t e = s.n;
    while (e > 0 && (s.p[e - 1] == ' ' || s.p[e - 1] == '\t' || s.p[e - 1] == ','))
        e--;
    size_t b = e;
    while (b > 0 && s.p[b - 1] != ',')
        b--;
    while (b < e && (s.p[b] == ' ' || s.p[b] == '\t'))
        b++;
    return (ep_http_str){s.p + b, e - b};
}

static ep_err check_semantics(ep_http_request *req, uint64_t max_body, int *status)
{
    bool have_cl = false, have_te = false;
    ep_http_str te = {0};
    unsigned hosts = 0;
    req->keep_alive = req->version == 11;
    req->content_length = 0;
    req->expect_continue = false;
    for (unsigned i = 0; i < req->nheaders; i++) {
        ep_http_str name = req->headers[i].name, v = req->headers[i].value;
        if (ep_http_str_ieq(name, "content-length")) {
            if (v.n == 0)
                FAIL(400);
            uint64_t cl = 0;
            for (size_t k = 0; k < v.n; k++) {
                if (v.p[k] < '0' || v.p[k] > '9')
                    FAIL(400);
                if (cl > UINT64_MAX / 10 - 10)
                    cl = UINT64_MAX; /* saturate: certainly over max_body */
                else
                    cl = cl * 10 + (uint64_t)(v.p[k] - '0');
            }
            if (have_cl && cl != req->content_length)
                FAIL(400);
            have_cl = true;
            req->content_length = cl;
        } else if (ep_http_str_ieq(name, "transfer-encoding")) {
            if (have_te) /* several fields form one list; keep it simple */
                FAIL(501);
            have_te = true;
            te = v;
        } else if (ep_http_str_ieq(name, "host")) {
            hosts++;
        } else if (ep_http_str_ieq(name, "connection")) {
            if (list_has(v, "close"))
                req->keep_alive = false;
            else if (req->version == 10 && list_has(v, "keep-alive"))
                req->keep_alive = true;
        } else if (ep_http_str_ieq(name, "expect")) {
            if (!ep_http_str_ieq(v, "100-continue"))
                FAIL(417);
            req->expect_continue = req->version == 11;
        }
    }
    if (req->version == 11 ? hosts != 1 : hosts > 1)
        FAIL(400);
    if (have_te) {
        if (have_cl || req->version == 10)
            FAIL(400);
        FAIL(ep_http_str_ieq(last_coding(te), "chunked") ? 411 : 501);
    }
    if (req->content_length > max_body)
        FAIL(413);
    return EP_EOK;
}

ep_err ep_http_request_parse(const uint8_t *p, size_t n, const ep_http_limits *lim,
                             ep_http_request *req, int *status)
{
    size_t max_head = lim && lim->max_head ? lim->max_head : DEF_MAX_HEAD;
    size_t max_uri = lim && lim->max_uri ? lim->max_uri : DEF_MAX_URI;
    unsigned max_headers = lim && lim->max_headers ? lim->max_headers : DEF_MAX_HEADERS;
    uint64_t max_body = lim && lim->max_body ? lim->max_body : DEF_MAX_BODY;
    if (max_headers > EP_HTTP_MAX_HEADERS)
        max_headers = EP_HTTP_MAX_HEADERS;
    *status = 0;
    req->nheaders = 0;
    req->body = (ep_http_str){NULL, 0};

    /* Leading empty lines (RFC 9112 2.2), bounded like the head. */
    size_t i = 0;
    while (i < n && (p[i] == '\r' || p[i] == '\n')) {
        if (p[i] == '\n' || (i + 1 < n && p[i + 1] != '\n'))
            FAIL(400);
        if (i + 1 == n)
            return EP_ENEEDMORE;
        i += 2;
        if (i > max_head)
            FAIL(431);
    }
    size_t start = i;
    ep_err err = parse_request_line(p, n, i, max_uri, max_head, req, &i, status);
    if (err)
        return err;

    for (;;) {
        size_t lf = find_lf(p, i, n);
        if (lf == n) {
            /* The line is incomplete; is it already too long? Any CTL
             * byte other than HTAB and CR is invalid already. */
            for (size_t k = i; k < n; k++)
                if (p[k] != '\r' && !is_vchar_ws(p[k]) && p[k] != '\t')
                    FAIL(400);
            if (n - start > max_head)
                FAIL(431);
            return EP_ENEEDMORE;
        }
        if (lf + 1 - start > max_head)
            FAIL(431);
        if (lf == i || p[lf - 1] != '\r')
            FAIL(400);     /* bare LF */
        size_t e = lf - 1; /* line is p[i..e) */
        if (e == i) {      /* empty line: end of head */
            req->head_len = lf + 1;
            break;
        }
        if (p[i] == ' ' || p[i] == '\t')
            FAIL(400); /* obs-fold */
        if (req->nheaders == max_headers)
            FAIL(431);
        size_t ns = i;
        while (i < e && is_tchar(p[i]))
            i++;
        if (i == ns || i == e || p[i] != ':')
            FAIL(400);
        ep_http_header *h = &req->headers[req->nheaders++];
        h->name = (ep_http_str){(const char *)p + ns, i - ns};
        i++;
        while (i < e && (p[i] == ' ' || p[i] == '\t'))
            i++;
        size_t vs = i, ve = i;
        for (; i < e; i++) {
            if (!is_vchar_ws(p[i]))
                FAIL(400); /* CTL, including a bare CR */
            if (p[i] != ' ' && p[i] != '\t')
                ve = i + 1;
        }
        h->value = (ep_http_str){(const char *)p + vs, ve - vs};
        i = lf + 1;
    }

    req->method = 0;
    for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++)
        if (ep_http_str_eq(req->method_name, methods[k].name))
            req->method = methods[k].m;
    if (req->method == 0)
        FAIL(501);
    err = split_target(req, status);
    if (err)
        return err;
    return check_semantics(req, max_body, status);
}
