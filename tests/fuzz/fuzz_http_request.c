/*
 * fuzz_http_request.c - the HTTP request head parser (src/svc/api).
 *
 * Input: byte 0 selects small or default limits, the rest is the request
 * stream. Checked properties, beyond "no crash, no out-of-bounds read":
 *  - every slice of a parsed request lies inside the input and head_len is
 *    within it, content_length within max_body, nheaders within the limit;
 *  - an error comes with one of the documented statuses;
 *  - incremental consistency (what the server relies on): a prefix of an
 *    accepted head is never an error, and once complete, the result does
 *    not change when more bytes follow (pipelining);
 *  - parsing is deterministic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/api/http.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_slice(ep_http_str s, const uint8_t *p, size_t n)
{
    if (s.n == 0)
        return;
    CHECK((const uint8_t *)s.p >= p && (const uint8_t *)s.p + s.n <= p + n);
}

static int valid_status(int st)
{
    static const int ok[] = {400, 411, 413, 414, 417, 431, 501, 505};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (st == ok[i])
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ep_http_request a, b;
    if (size < 1)
        return 0;
    ep_http_limits small = {.max_head = 256, .max_uri = 64, .max_headers = 4, .max_body = 100};
    const ep_http_limits *lim = (data[0] & 1) ? &small : NULL;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    int st = 0, st2 = 0;
    ep_err err = ep_http_request_parse(p, n, lim, &a, &st);
    CHECK(err == EP_EOK || err == EP_ENEEDMORE || err == EP_EPROTO);
    if (err == EP_EPROTO) {
        CHECK(valid_status(st));
        return 0;
    }
    if (err == EP_ENEEDMORE)
        return 0;
    CHECK(a.head_len > 0 && a.head_len <= n);
    CHECK(a.content_length <= (lim ? lim->max_body : (1u << 20)));
    CHECK(a.nheaders <= (lim ? lim->max_headers : 64u));
    CHECK(a.version == 10 || a.version == 11);
    CHECK(a.method != 0);
    check_slice(a.method_name, p, n);
    check_slice(a.target, p, n);
    /* "http://host" has the path "/", which is not in the input. */
    uintptr_t pp = (uintptr_t)a.path.p, lo = (uintptr_t)p, hi = (uintptr_t)(p + n);
    if (!(a.path.n == 1 && (pp < lo || pp >= hi)))
        check_slice(a.path, p, n);
    check_slice(a.query, p, n);
    for (unsigned i = 0; i < a.nheaders; i++) {
        check_slice(a.headers[i].name, p, n);
        check_slice(a.headers[i].value, p, n);
        CHECK(a.headers[i].name.n > 0);
    }
    /* The head alone parses to the same result. */
    CHECK(ep_http_request_parse(p, a.head_len, lim, &b, &st2) == EP_EOK);
    CHECK(b.head_len == a.head_len && b.nheaders == a.nheaders &&
          b.content_length == a.content_length && b.method == a.method &&
          b.keep_alive == a.keep_alive && b.path.n == a.path.n);
    /* Every shorter prefix needs more (never an error): sample a few. */
    size_t step = a.head_len / 16 + 1;
    for (size_t k = 0; k < a.head_len; k += step) {
        ep_err e = ep_http_request_parse(p, k, lim, &b, &st2);
        CHECK(e == EP_ENEEDMORE);
    }
    return 0;
}
