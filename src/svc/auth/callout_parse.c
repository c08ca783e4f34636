/*
 * callout_parse.c - the JSON side of custom authentication (callout.h):
 * building the request body and judging the server's answer. Pure
 * functions; the answer is untrusted input (fuzz target
 * tests/fuzz/fuzz_auth_callout.c).
 *
 * jansson parses the body strictly (RFC 8259, duplicate keys refused,
 * \u0000 refused, nesting bounded); on top of it the shape is checked
 * here: only the keys of API 0.5.0 are read, others are ignored so a newer
 * server's additions do not lock clients out, and attribute values must be
 * strings within EP_AUTH_ATTR_MAX_LEN.
 */
#include <jansson.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/auth/auth_int.h"
#include "svc/auth/callout.h"

/* jansson copies the strings it is given (the base64 password among
 * them): its memory is wiped when freed, so no copy of a password
 * outlives the request. */
static void wiping_free(void *p)
{
    if (p) {
        OPENSSL_cleanse(p, malloc_usable_size(p));
        free(p);
    }
}

static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;
static void set_alloc(void) { json_set_alloc_funcs(malloc, wiping_free); }

/* Sets key to the base64 of n bytes at p (a jansson copy is made). */
static ep_err set_b64(json_t *o, const char *key, const void *p, size_t n)
{
    char *b64 = malloc(ep_auth__b64_len(n) + 1);
    if (b64 == NULL)
        return EP_ENOMEM;
    ep_auth__b64_encode(p, n, b64);
    ep_err err = json_object_set_new(o, key, json_string(b64)) == 0 ? EP_EOK : EP_ENOMEM;
    OPENSSL_cleanse(b64, strlen(b64));
    free(b64);
    return err;
}

/* Sets key to n bytes of UTF-8 text; EP_EINVAL when they are not UTF-8. */
static ep_err set_text(json_t *o, const char *key, const char *p, size_t n)
{
    json_t *v = json_stringn(p, n);
    if (v == NULL)
        return EP_EINVAL;
    return json_object_set_new(o, key, v) == 0 ? EP_EOK : EP_ENOMEM;
}

/* The "auth" form: MQTT 5 enhanced authentication (callout.h). */
static ep_err fill_auth(json_t *o, const ep_callout_creds *cr)
{
    if (json_object_set_new(o, "type", json_string("auth")) != 0)
        return EP_ENOMEM;
    ep_err err = set_text(o, "authenticationMethod", cr->auth_method, cr->mlen);
    if (err == EP_EOK && cr->auth_data)
        err = set_b64(o, "authenticationData", cr->auth_data, cr->dlen);
    return err;
}

static ep_err fill_connect(json_t *o, const ep_callout_creds *cr)
{
    if (json_object_set_new(o, "type", json_string("connect")) != 0)
        return EP_ENOMEM;
    ep_err err = EP_EOK;
    if (cr->username)
        err = set_text(o, "username", cr->username, cr->ulen);
    if (err == EP_EOK && cr->password)
        err = set_b64(o, "password", cr->password, cr->plen);
    if (err == EP_EOK && cr->certs_pem &&
        json_object_set_new(o, "certs", json_string(cr->certs_pem)) != 0)
        err = EP_ENOMEM;
    return err;
}

ep_err ep_callout_request_body(const ep_callout_creds *cr, char **out)
{
    pthread_once(&alloc_once, set_alloc);
    json_t *o = json_object();
    if (o == NULL)
        return EP_ENOMEM;
    ep_err err = cr->auth_method ? fill_auth(o, cr) : fill_connect(o, cr);
    if (err == EP_EOK && (*out = json_dumps(o, JSON_COMPACT)) == NULL)
        err = EP_ENOMEM;
    json_decref(o);
    return err;
}

/* ---- RFC 3339 ---- */

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

ep_err ep_callout_parse_rfc3339(const char *s, size_t len, int64_t *out)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return EP_EINVAL;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return EP_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return EP_EINVAL;
    size_t i = 19;
    int ms = 0;
    if (s[i] == '.') {
        size_t start = ++i;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (i - start < 3)
                ms = ms * 10 + (s[i] - '0');
        if (i == start)
            return EP_EINVAL;
        for (size_t k = i - start; k < 3; k++)
            ms *= 10;
    }
    int sign = 0;
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' &&
               digits(s + i + 1, 2, &oh) && digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59) {
        sign = s[i] == '+' ? 1 : -1;
        i += 6;
    }
    if (i != len)
        return EP_EINVAL;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    *out = (t - sign * (oh * 3600 + om * 60)) * 1000 + ms;
    return EP_EOK;
}

/* ---- responses ---- */

/* CONNACK reason codes a server may ask for (MQTT 5 section 3.2.2.2). */
static uint8_t connack_reason(json_int_t r)
{
    static const uint8_t ok[] = {0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
                                 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
    for (size_t i = 0; i < sizeof(ok); i++)
        if (r == ok[i])
            return ok[i];
    return 0x87; /* Not authorized */
}

/* Printable ASCII only: the text ends up in log lines. */
static void set_message(ep_callout_result *res, const char *prefix, const char *s, size_t n)
{
    size_t k = (size_t)snprintf(res->message, sizeof(res->message), "%s", prefix);
    for (size_t i = 0; i < n && k + 1 < sizeof(res->message); i++) {
        unsigned char ch = (unsigned char)s[i];
        res->message[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    res->message[k < sizeof(res->message) ? k : sizeof(res->message) - 1] = '\0';
}

static void deny(ep_callout_result *res, uint8_t reason, const char *why)
{
    res->verdict = EP_CALLOUT_DENY;
    res->reason = reason;
    set_message(res, why, "", 0);
}

static json_t *load(const char *body, size_t len)
{
    if (body == NULL || len == 0)
        return NULL;
    json_error_t e;
    return json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
}

static bool attrs_from(json_t *obj, ep_callout_result *res)
{
    size_t n = json_object_size(obj);
    if (n > EP_AUTH_ATTRS_MAX)
        return false;
    ep_authz_attr tmp[EP_AUTH_ATTRS_MAX];
    size_t k = 0;
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        const char *s = json_string_value(v);
        size_t nl = strlen(name);
        if (s == NULL || nl == 0 || nl > EP_AUTH_ATTR_MAX_LEN ||
            json_string_length(v) > EP_AUTH_ATTR_MAX_LEN || strlen(s) != json_string_length(v))
            return false;
        tmp[k++] = (ep_authz_attr){name, s};
    }
    return k == 0 || ep_auth_attrs_new(tmp, k, &res->attrs) == EP_EOK;
}

static void parse_ok(json_t *j, int64_t now_ms, ep_callout_result *res)
{
    if (!json_is_object(j)) {
        deny(res, 0x87, "200 without a JSON object body");
        return;
    }
    json_t *exp = json_object_get(j, "expiry");
    json_t *attrs = json_object_get(j, "attributes");
    if (exp && !json_is_null(exp)) {
        const char *s = json_string_value(exp);
        if (s == NULL ||
            ep_callout_parse_rfc3339(s, json_string_length(exp), &res->expiry_ms) != EP_EOK) {
            deny(res, 0x87, "200 with an expiry that is not an RFC 3339 time");
            return;
        }
        if (res->expiry_ms <= now_ms) {
            deny(res, 0x87, "200 with an expiry in the past");
            return;
        }
    }
    if (attrs && !json_is_null(attrs) && (!json_is_object(attrs) || !attrs_from(attrs, res))) {
        ep_callout_result_clear(res);
        deny(res, 0x87, "200 with attributes that are not a map of strings");
        return;
    }
    res->verdict = EP_CALLOUT_ALLOW;
    set_message(res, "allowed", "", 0);
}

static void parse_403(json_t *j, ep_callout_result *res)
{
    json_t *r = json_is_object(j) ? json_object_get(j, "reason") : NULL;
    json_t *m = json_is_object(j) ? json_object_get(j, "message") : NULL;
    res->verdict = EP_CALLOUT_DENY;
    res->reason = json_is_integer(r) ? connack_reason(json_integer_value(r)) : 0x87;
    if (json_is_string(m))
        set_message(res, "denied: ", json_string_value(m), json_string_length(m));
    else
        set_message(res, "denied", "", 0);
}

static void parse_422(json_t *j, ep_callout_result *res)
{
    json_t *v = json_is_object(j) ? json_object_get(j, "supportedVersions") : NULL;
    char list[128] = "";
    size_t k = 0, i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (json_is_string(e) && k < sizeof(list))
            k += (size_t)snprintf(list + k, sizeof(list) - k, "%s%s", k ? "," : "",
                                  json_string_value(e));
    }
    deny(res, 0x87, "");
    set_message(res, "server does not support API " EP_CALLOUT_API_VERSION "; it supports: ", list,
                strnlen(list, sizeof(list)));
}

void ep_callout_parse_response(long status, const char *body, size_t len, int64_t now_ms,
                               ep_callout_result *res)
{
    memset(res, 0, sizeof(*res));
    res->status = status;
    if (status == 0 || status >= 500) {
        res->verdict = EP_CALLOUT_UNAVAILABLE;
        snprintf(res->message, sizeof(res->message), "server error (HTTP %ld)", status);
        return;
    }
    if (status == 200 || status == 403 || status == 422) {
        json_t *j = load(body, len);
        if (status == 200)
            parse_ok(j, now_ms, res);
        else if (status == 403)
            parse_403(j, res);
        else
            parse_422(j, res);
        json_decref(j);
        return;
    }
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "HTTP %ld: ", status);
    deny(res, 0x87, "");
    set_message(res, prefix, body ? body : "", body ? (len > 200 ? 200 : len) : 0);
}

void ep_callout_result_clear(ep_callout_result *res)
{
    ep_auth_attrs_free(res->attrs);
    res->attrs = NULL;
}
