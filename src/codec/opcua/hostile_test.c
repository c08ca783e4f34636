/*
 * hostile_test.c - the decoder against a peer that lies.
 *
 * Length claims far beyond the input, limits, nesting bombs through every
 * recursive type, memory amplification, allocation failure at every step,
 * and a deterministic garbage sweep over every type. In every case the
 * decoder must return a clean error with the matching status code, leave
 * the output zeroed, keep no arena memory and never ask the allocator for a
 * block sized by the peer's claim.
 */
#include "codec/opcua/ua_testutil.h"

#include "codec/opcua/gen/nodeids.h"

/* ---- tiny byte builder ---- */

typedef struct bb {
    uint8_t *p;
    size_t n, cap;
} bb;

static void bb_put(bb *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void bb_u8(bb *b, uint8_t v) { bb_put(b, &v, 1); }

static void bb_u32(bb *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    bb_put(b, x, 4);
}

/* Decodes with a counting allocator, expects err/status, and checks that no
 * allocation was larger than a standard arena chunk. */
static void expect_fail(const uint8_t *p, size_t n, const ep_ua_type *t, const ep_ua_limits *lim,
                        ep_err want, ep_ua_status want_st)
{
    test_alloc ta;
    ep_ua_allocator al = test_allocator(&ta);
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, &al);
    void *out = malloc(t->size);
    assert_non_null(out);
    size_t pos = 0;
    ep_ua_status st = 0;
    ep_err err = ep_ua_decode(p, n, &pos, t, out, &a, lim, &st);
    if (err != want)
        fail_msg("%s: expected %s, got %s", t->name, ep_err_name(want), ep_err_name(err));
    assert_int_equal(st, want_st);
    assert_int_equal(pos, 0);
    assert_true(ta.largest <= 65536 + 64);
    assert_int_equal(ta.live, 0); /* rewound */
    free(out);
    ep_ua_arena_fini(&a);
}

static const uint8_t read_req_prefix[] = {
    0x00, 0x00,                         /* authenticationToken */
    0,    0,    0,    0,    0, 0, 0, 0, /* timestamp */
    0x01, 0x00, 0x00, 0x00,             /* requestHandle */
    0x00, 0x00, 0x00, 0x00,             /* returnDiagnostics */
    0xFF, 0xFF, 0xFF, 0xFF,             /* auditEntryId */
    0x00, 0x00, 0x00, 0x00,             /* timeoutHint */
    0x00, 0x00, 0x00,                   /* additionalHeader */
    0,    0,    0,    0,    0, 0, 0, 0, /* maxAge */
    0x00, 0x00, 0x00, 0x00,             /* timestampsToReturn */
};

static void test_huge_array_claims(void **state)
{
    bb b = {0};
    bb_put(&b, read_req_prefix, sizeof(read_req_prefix));
    bb_u32(&b, 0x7FFFFFFF); /* nodesToRead: 2^31-1 elements */
    for (int i = 0; i < 64; i++)
        bb_u8(&b, 0);
    expect_fail(b.p, b.n, EP_UA_T(ReadRequest), NULL, EP_EMALFORMED, EP_UA_STATUS_BadDecodingError);

    /* Just over what the bytes could hold: a ReadValueId needs 16 bytes;
     * 64 bytes hold 4, a claim of 5 is rejected before allocating. */
    b.n = sizeof(read_req_prefix);
    bb_u32(&b, 5);
    for (int i = 0; i < 64; i++)
        bb_u8(&b, 0);
    expect_fail(b.p, b.n, EP_UA_T(ReadRequest), NULL, EP_EMALFORMED, EP_UA_STATUS_BadDecodingError);
    free(b.p);

    /* Variant arrays, strings, dimensions, ExtensionObject bodies. */
    CHECK_REJECT(Variant, EP_EMALFORMED, BadDecodingError, 0x86, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0,
                 0);
    CHECK_REJECT(Variant, EP_EMALFORMED, BadDecodingError, 0x81, 0x03, 0x00, 0x00, 0x00, 0x01,
                 0x01);
    CHECK_REJECT(Variant, EP_EMALFORMED, BadDecodingError, 0x83, 0xFF, 0xFF, 0xFF,
                 0x80); /* -2^31 */
    CHECK_REJECT(String, EP_EMALFORMED, BadDecodingError, 0xFF, 0xFF, 0xFF, 0x7F, 'a');
    CHECK_REJECT(Variant, EP_EMALFORMED, BadDecodingError, 0xC6, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF,
                 0xFF, 0x7F, 0x00);
    CHECK_REJECT(ExtensionObject, EP_EMALFORMED, BadDecodingError, 0x00, 0x00, 0x01, 0xFF, 0xFF,
                 0xFF, 0x7F, 0x00);
    CHECK_REJECT(ByteString, EP_EMALFORMED, BadDecodingError, 0x00, 0x00, 0x00, 0x80);

    /* Exactly as many Booleans as bytes remain is fine. */
    static const uint8_t ok[] = {0x81, 0x03, 0x00, 0x00, 0x00, 1, 0, 1};
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    ep_ua_variant v;
    check_decode_into(ok, sizeof(ok), EP_UA_T(Variant), &v, &a);
    assert_int_equal(v.array_len, 3);
    ep_ua_arena_fini(&a);
}

static void test_limits(void **state)
{
    /* 4 Int32 elements against max_array_len 3 */
    static const uint8_t arr[] = {0x86, 0x04, 0x00, 0x00, 0x00, 1, 0, 0, 0, 2, 0,
                                  0,    0,    3,    0,    0,    0, 4, 0, 0, 0};
    ep_ua_limits lim = {.max_array_len = 3};
    expect_fail(arr, sizeof(arr), EP_UA_T(Variant), &lim, EP_ETOOBIG,
                EP_UA_STATUS_BadEncodingLimitsExceeded);
    /* message size is checked before anything is read */
    ep_ua_limits small = {.max_message_size = 8};
    expect_fail(arr, sizeof(arr), EP_UA_T(Variant), &small, EP_ETOOBIG,
                EP_UA_STATUS_BadEncodingLimitsExceeded);
    /* string limit applies inside NodeIds too */
    static const uint8_t sn[] = {0x03, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 'a', 'b', 'c', 'd'};
    ep_ua_limits str = {.max_string_len = 3};
    expect_fail(sn, sizeof(sn), EP_UA_T(NodeId), &str, EP_ETOOBIG,
                EP_UA_STATUS_BadEncodingLimitsExceeded);
    /* dimension count against max_array_len */
    static const uint8_t dims[] = {0xC6, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0, 0, 0, 0,
                                   0,    0,    0,    0,    0,    0,    0,    0,    0,    0, 0, 0};
    expect_fail(dims, sizeof(dims), EP_UA_T(Variant), &lim, EP_ETOOBIG,
                EP_UA_STATUS_BadEncodingLimitsExceeded);
}

/* ---- nesting bombs ---- */

static bb nested_variants(size_t levels)
{
    bb b = {0};
    for (size_t i = 0; i < levels; i++) {
        bb_u8(&b, 0x98); /* array of Variant */
        bb_u32(&b, 1);
    }
    bb_u8(&b, 0x00);
    return b;
}

static bb nested_diag(size_t levels)
{
    bb b = {0};
    for (size_t i = 0; i + 1 < levels; i++)
        bb_u8(&b, 0x40); /* inner DiagnosticInfo follows */
    bb_u8(&b, 0x00);
    return b;
}

/* Variant -> ExtensionObject(KeyValuePair) -> Variant -> ... built inside
 * out, since the encoder itself refuses to nest this deep. */
static bb nested_eo(size_t levels)
{
    bb in = {0};
    bb_u8(&in, 0x00);
    for (size_t i = 0; i < levels; i++) {
        bb out = {0};
        bb_u8(&out, 0x16); /* Variant: ExtensionObject */
        bb_u8(&out, 0x01); /* NodeId four-byte */
        bb_u8(&out, 0x00);
        bb_u8(&out, (uint8_t)(EP_UA_NS0_KeyValuePair_Encoding_DefaultBinary & 0xFF));
        bb_u8(&out, (uint8_t)(EP_UA_NS0_KeyValuePair_Encoding_DefaultBinary >> 8));
        bb_u8(&out, 0x01); /* binary body */
        bb_u32(&out, (uint32_t)(6 + in.n));
        static const uint8_t qn[] = {0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
        bb_put(&out, qn, sizeof(qn)); /* key */
        bb_put(&out, in.p, in.n);     /* value */
        free(in.p);
        in = out;
    }
    return in;
}

static void decode_depth(const bb *b, const ep_ua_type *t, unsigned max_depth, ep_err want)
{
    ep_ua_limits lim = {.max_depth = max_depth};
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    void *out = malloc(t->size);
    assert_non_null(out);
    size_t pos = 0;
    ep_ua_status st = 0;
    ep_err err = ep_ua_decode(b->p, b->n, &pos, t, out, &a, &lim, &st);
    if (err != want)
        fail_msg("%s depth: expected %s, got %s", t->name, ep_err_name(want), ep_err_name(err));
    if (want == EP_ETOOBIG)
        assert_int_equal(st, EP_UA_STATUS_BadEncodingLimitsExceeded);
    else
        assert_int_equal(pos, b->n);
    free(out);
    ep_ua_arena_fini(&a);
}

static void test_nesting(void **state)
{
    bb b = nested_variants(100);
    decode_depth(&b, EP_UA_T(Variant), 0, EP_EOK); /* default 100 */
    free(b.p);
    b = nested_variants(101);
    decode_depth(&b, EP_UA_T(Variant), 0, EP_ETOOBIG);
    decode_depth(&b, EP_UA_T(Variant), 101, EP_EOK);
    free(b.p);

    b = nested_diag(100);
    decode_depth(&b, EP_UA_T(DiagnosticInfo), 0, EP_EOK);
    free(b.p);
    b = nested_diag(101);
    decode_depth(&b, EP_UA_T(DiagnosticInfo), 0, EP_ETOOBIG);
    free(b.p);

    /* Variant + ExtensionObject + structure = 3 levels per step. */
    b = nested_eo(33);
    decode_depth(&b, EP_UA_T(Variant), 0, EP_EOK);
    free(b.p);
    b = nested_eo(34);
    decode_depth(&b, EP_UA_T(Variant), 0, EP_ETOOBIG);
    free(b.p);

    /* A huge configured depth is capped, so the stack stays bounded. */
    b = nested_variants(5000);
    decode_depth(&b, EP_UA_T(Variant), 1000000, EP_ETOOBIG);
    free(b.p);
    b = nested_diag(5000);
    decode_depth(&b, EP_UA_T(DiagnosticInfo), 1000000, EP_ETOOBIG);
    free(b.p);
}

/* Everything the decoder accepts at the deepest nesting can be encoded,
 * compared, copied and cleared (found by fuzzing: clear used to count
 * levels differently from copy and stopped early, leaking). */
static void deep_generic_ops(const bb *b, const ep_ua_type *t, unsigned depth)
{
    ep_ua_limits lim = {.max_depth = depth};
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    void *v = malloc(t->size), *c = malloc(t->size);
    assert_non_null(v);
    assert_non_null(c);
    size_t pos = 0;
    ep_ua_status st;
    assert_int_equal(ep_ua_decode(b->p, b->n, &pos, t, v, &a, &lim, &st), EP_EOK);
    ep_buf e;
    ep_buf_init(&e, 0);
    assert_int_equal(ep_ua_encode(v, t, &e), EP_EOK);
    assert_bytes(ep_buf_head(&e), ep_buf_used(&e), b->p, b->n);
    ep_buf_fini(&e);
    assert_int_equal(ep_ua_copy(v, c, t), EP_EOK);
    assert_true(ep_ua_equal(v, c, t));
    ep_ua_clear(c, t);
    free(c);
    free(v);
    ep_ua_arena_fini(&a);
}

static void test_deep_values_generic_ops(void **state)
{
    for (unsigned depth = 100; depth <= 1000; depth += 900) {
        /* Variant(DataValue(Variant(DataValue(...)))) */
        bb b = {0};
        for (unsigned i = 0; i < depth; i++) {
            bb_u8(&b, 0x17);
            bb_u8(&b, 0x01);
        }
        bb_u8(&b, 0x00);
        deep_generic_ops(&b, EP_UA_T(Variant), depth);
        free(b.p);
        b = nested_variants(depth);
        deep_generic_ops(&b, EP_UA_T(Variant), depth);
        free(b.p);
        b = nested_diag(depth);
        deep_generic_ops(&b, EP_UA_T(DiagnosticInfo), depth);
        free(b.p);
        b = nested_eo(depth / 3);
        deep_generic_ops(&b, EP_UA_T(Variant), depth);
        free(b.p);
    }
}

/* ---- memory ---- */

static void test_amplification_bounded_by_arena(void **state)
{
    /* 100000 empty Variants: 1 byte each on the wire, far more in memory */
    bb b = {0};
    bb_u8(&b, 0x98);
    bb_u32(&b, 100000);
    for (int i = 0; i < 100000; i++)
        bb_u8(&b, 0x00);
    ep_ua_arena a;
    ep_ua_arena_init(&a, 1 << 20, NULL);
    ep_ua_variant v;
    size_t pos = 0;
    ep_ua_status st = 0;
    assert_int_equal(ep_ua_decode(b.p, b.n, &pos, EP_UA_T(Variant), &v, &a, NULL, &st), EP_ETOOBIG);
    assert_int_equal(st, EP_UA_STATUS_BadEncodingLimitsExceeded);
    assert_int_equal(ep_ua_arena_used(&a), 0);
    /* with room it decodes */
    ep_ua_arena_fini(&a);
    ep_ua_arena_init(&a, 16 << 20, NULL);
    assert_int_equal(ep_ua_decode(b.p, b.n, &pos, EP_UA_T(Variant), &v, &a, NULL, &st), EP_EOK);
    assert_int_equal(v.array_len, 100000);
    ep_ua_arena_fini(&a);
    free(b.p);
}

/* Fail the Nth chunk allocation for every N until the decode succeeds. */
static void oom_sweep(const uint8_t *p, size_t n, const ep_ua_type *t)
{
    for (long fail = 0;; fail++) {
        test_alloc ta;
        ep_ua_allocator al = test_allocator(&ta);
        ta.fail_after = fail;
        ep_ua_arena a;
        ep_ua_arena_init(&a, 0, &al);
        void *out = malloc(t->size);
        assert_non_null(out);
        size_t pos = 0;
        ep_ua_status st = 0;
        ep_err err = ep_ua_decode(p, n, &pos, t, out, &a, NULL, &st);
        if (err == EP_EOK) {
            assert_int_equal(pos, n);
            free(out);
            ep_ua_arena_fini(&a);
            assert_int_equal(ta.live, 0);
            assert_true(fail > 0);
            return;
        }
        assert_int_equal(err, EP_ENOMEM);
        assert_int_equal(st, EP_UA_STATUS_BadOutOfMemory);
        assert_int_equal(pos, 0);
        assert_int_equal(ta.live, 0);
        free(out);
        ep_ua_arena_fini(&a);
        assert_true(fail < 10000);
    }
}

static void test_oom_every_allocation(void **state)
{
    /* A DataChangeNotification with many values spreads over chunks. */
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    size_t n = 300;
    void *mem = NULL;
    assert_int_equal(ep_ua_arena_alloc(&a, n * sizeof(ep_ua_monitored_item_notification), &mem),
                     EP_EOK);
    ep_ua_monitored_item_notification *items = mem;
    ep_ua_string s = ep_ua_string_from("a fairly long string value to copy");
    for (size_t i = 0; i < n; i++) {
        items[i].client_handle = (uint32_t)i;
        items[i].value.mask = EP_UA_DATAVALUE_VALUE;
        items[i].value.value.type = EP_UA_T(String);
        items[i].value.value.data = &s;
    }
    ep_ua_data_change_notification dcn;
    memset(&dcn, 0, sizeof(dcn));
    dcn.monitored_items = items;
    dcn.monitored_items_len = n;
    ep_ua_extensionobject eo = {
        .encoding = EP_UA_EXTOBJ_DECODED, .type = EP_UA_T(DataChangeNotification), .data = &dcn};
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_ua_encode(&eo, EP_UA_T(ExtensionObject), &b), EP_EOK);
    oom_sweep(ep_buf_head(&b), ep_buf_used(&b), EP_UA_T(ExtensionObject));
    ep_buf_fini(&b);
    ep_ua_arena_fini(&a);
}

/* ---- garbage sweep ---- */

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void test_garbage_every_type(void **state)
{
    uint32_t seed = 12345;
    uint8_t buf[256];
    ep_ua_arena a;
    ep_ua_arena_init(&a, 8 << 20, NULL);
    size_t ok = 0, bad = 0;
    for (size_t i = 0; i < EP_UA_TYPE_COUNT; i++) {
        const ep_ua_type *t = &ep_ua_types[i];
        void *out = malloc(t->size);
        assert_non_null(out);
        for (int r = 0; r < 300; r++) {
            size_t n = lcg(&seed) % sizeof(buf);
            /* biased bytes: many small values and 0xFF runs */
            for (size_t k = 0; k < n; k++) {
                uint32_t x = lcg(&seed);
                buf[k] = (x & 3) == 0 ? 0xFF : (x & 3) == 1 ? 0 : (uint8_t)(x >> 4);
            }
            size_t pos = 0;
            ep_ua_status st = 0;
            ep_err err = ep_ua_decode(buf, n, &pos, t, out, &a, NULL, &st);
            if (err == EP_EOK) {
                ok++;
                assert_true(pos <= n);
                /* whatever decoded must encode */
                ep_buf e;
                ep_buf_init(&e, 0);
                assert_int_equal(ep_ua_encode(out, t, &e), EP_EOK);
                ep_buf_fini(&e);
            } else {
                bad++;
                assert_true(err == EP_EMALFORMED || err == EP_ETOOBIG);
                assert_true(EP_UA_STATUS_IS_BAD(st));
            }
            ep_ua_arena_clear(&a);
        }
        free(out);
    }
    print_message("garbage: %zu decoded, %zu rejected\n", ok, bad);
    ep_ua_arena_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_array_claims),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_deep_values_generic_ops),
        cmocka_unit_test(test_amplification_bounded_by_arena),
        cmocka_unit_test(test_oom_every_allocation),
        cmocka_unit_test(test_garbage_every_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
