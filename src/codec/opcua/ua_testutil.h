/*
 * ua_testutil.h - helpers shared by the OPC UA codec unit tests (header only,
 * so it never ends up in the library).
 *
 * check_vector() is the golden-vector check: encode must produce exactly the
 * expected bytes, decoding them must give an equal value and consume every
 * byte, and every strict prefix must fail cleanly with Bad_DecodingError.
 * The counting allocator records the largest single chunk the arena asked
 * for and can be told to fail after N allocations (OOM injection).
 */
#ifndef EP_CODEC_OPCUA_UA_TESTUTIL_H
#define EP_CODEC_OPCUA_UA_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>

#include "codec/opcua/binary.h"

typedef struct test_alloc {
    size_t calls;
    size_t live;
    size_t largest;
    long fail_after; /* < 0: never fail */
} test_alloc;

static inline void *test_alloc_fn(void *ud, size_t n)
{
    test_alloc *ta = ud;
    if (ta->fail_after >= 0 && (long)ta->calls >= ta->fail_after)
        return NULL;
    ta->calls++;
    if (n > ta->largest)
        ta->largest = n;
    void *p = malloc(n);
    if (p)
        ta->live++;
    return p;
}

static inline void test_free_fn(void *ud, void *p)
{
    test_alloc *ta = ud;
    if (p)
        ta->live--;
    free(p);
}

static inline ep_ua_allocator test_allocator(test_alloc *ta)
{
    memset(ta, 0, sizeof(*ta));
    ta->fail_after = -1;
    ep_ua_allocator a = {test_alloc_fn, test_free_fn, ta};
    return a;
}

static inline void hexdump_diff(const uint8_t *got, size_t gn, const uint8_t *exp, size_t en)
{
    size_t n = gn > en ? gn : en;
    fprintf(stderr, "  off  got exp\n");
    for (size_t i = 0; i < n; i++) {
        int g = i < gn ? got[i] : -1, e = i < en ? exp[i] : -1;
        fprintf(stderr, "%5zu  %02x  %02x%s\n", i, (unsigned)(g & 0xff), (unsigned)(e & 0xff),
                g != e ? "  <--" : "");
    }
}

static inline void assert_bytes(const uint8_t *got, size_t gn, const uint8_t *exp, size_t en)
{
    if (gn != en || memcmp(got, exp, en) != 0) {
        hexdump_diff(got, gn, exp, en);
        fail_msg("encoding differs (%zu bytes vs %zu expected)", gn, en);
    }
}

/* Encodes value and compares with exp. */
static inline void check_encode(const void *value, const ep_ua_type *t, const uint8_t *exp,
                                size_t n)
{
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_ua_encode(value, t, &b), EP_EOK);
    assert_bytes(ep_buf_head(&b), ep_buf_used(&b), exp, n);
    ep_buf_fini(&b);
}

/* Decodes exp completely into out (t->size bytes) from arena a. */
static inline void check_decode_into(const uint8_t *exp, size_t n, const ep_ua_type *t, void *out,
                                     ep_ua_arena *a)
{
    size_t pos = 0;
    ep_ua_status st = 1;
    ep_err err = ep_ua_decode(exp, n, &pos, t, out, a, NULL, &st);
    if (err)
        fail_msg("decode of %s failed: %s, status %s at", t->name, ep_err_name(err),
                 ep_ua_status_name(st));
    assert_int_equal(st, EP_UA_STATUS_Good);
    assert_int_equal(pos, n);
}

/* Every strict prefix of a valid encoding must fail cleanly. */
static inline void check_prefixes(const uint8_t *exp, size_t n, const ep_ua_type *t, ep_ua_arena *a)
{
    void *out = malloc(t->size);
    assert_non_null(out);
    for (size_t k = 0; k < n; k++) {
        /* Copy the prefix to its own allocation so ASan sees overreads. */
        uint8_t *pre = malloc(k ? k : 1);
        assert_non_null(pre);
        memcpy(pre, exp, k);
        size_t pos = 0;
        ep_ua_status st = 0;
        size_t before = ep_ua_arena_used(a);
        ep_err err = ep_ua_decode(pre, k, &pos, t, out, a, NULL, &st);
        if (err != EP_EMALFORMED)
            fail_msg("%s: prefix %zu/%zu gave %s", t->name, k, n, ep_err_name(err));
        assert_int_equal(st, EP_UA_STATUS_BadDecodingError);
        assert_int_equal(pos, 0);
        /* The arena was rewound: a failed decode keeps no memory. */
        assert_true(ep_ua_arena_used(a) <= before);
        free(pre);
    }
    free(out);
}

/* Full golden-vector check of value against exp. */
static inline void check_vector(const void *value, const ep_ua_type *t, const uint8_t *exp,
                                size_t n)
{
    check_encode(value, t, exp, n);
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    void *out = malloc(t->size);
    assert_non_null(out);
    check_decode_into(exp, n, t, out, &a);
    if (!ep_ua_equal(value, out, t))
        fail_msg("decoded %s differs from the original", t->name);
    check_encode(out, t, exp, n);
    check_prefixes(exp, n, t, &a);
    free(out);
    ep_ua_arena_fini(&a);
}

#define CHECK_VECTOR(value, tname, ...)                                                            \
    do {                                                                                           \
        static const uint8_t exp_[] = {__VA_ARGS__};                                               \
        check_vector((value), EP_UA_T(tname), exp_, sizeof(exp_));                                 \
    } while (0)

/* Decodes bytes expecting failure err with status st. */
static inline void check_reject(const uint8_t *p, size_t n, const ep_ua_type *t, ep_err err,
                                ep_ua_status st)
{
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    void *out = malloc(t->size);
    assert_non_null(out);
    size_t pos = 0;
    ep_ua_status got = 0;
    ep_err e = ep_ua_decode(p, n, &pos, t, out, &a, NULL, &got);
    if (e != err)
        fail_msg("%s: expected %s, got %s", t->name, ep_err_name(err), ep_err_name(e));
    assert_int_equal(got, st);
    assert_int_equal(pos, 0);
    /* Output zeroed on failure. */
    uint8_t *z = calloc(1, t->size);
    assert_non_null(z);
    assert_memory_equal(out, z, t->size);
    free(z);
    free(out);
    assert_int_equal(ep_ua_arena_used(&a), 0);
    ep_ua_arena_fini(&a);
}

/* Fuzz seeds: when EP_UA_CORPUS_DIR is set, tests write the encodings they
 * produce to $EP_UA_CORPUS_DIR/<corpus>/<hash>, prefixed by sel when
 * sel >= 0 (the harness's type selector byte). */
static inline void corpus_dump(const char *corpus, int sel, const uint8_t *p, size_t n)
{
    const char *dir = getenv("EP_UA_CORPUS_DIR");
    if (dir == NULL || *dir == 0)
        return;
    uint64_t h = 1469598103934665603ULL;
    if (sel >= 0)
        h = (h ^ (uint8_t)sel) * 1099511628211ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, corpus);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/seed-%016llx", dir, corpus, (unsigned long long)h);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    if (sel >= 0)
        fputc(sel, f);
    if (n)
        fwrite(p, 1, n, f);
    fclose(f);
}

/* Selector byte of the opcua_variant harness. */
static inline int corpus_variant_sel(const ep_ua_type *t)
{
    switch (t->kind) {
    case EP_UA_KIND_VARIANT:
        return 0;
    case EP_UA_KIND_DATAVALUE:
        return 1;
    case EP_UA_KIND_EXTENSIONOBJECT:
        return 2;
    case EP_UA_KIND_DIAGNOSTICINFO:
        return 3;
    default:
        return -1;
    }
}

#define CHECK_REJECT(tname, err, st, ...)                                                          \
    do {                                                                                           \
        static const uint8_t in_[] = {__VA_ARGS__};                                                \
        check_reject(in_, sizeof(in_), EP_UA_T(tname), (err), EP_UA_STATUS_##st);                  \
    } while (0)

#endif
