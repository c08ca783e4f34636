/*
 * fuzz_opcua_variant.c - OPC UA decoder for the recursive built-ins.
 *
 * Input: byte 0 selects the type (0 Variant, 1 DataValue, 2 ExtensionObject,
 * 3 DiagnosticInfo), the rest is decoded with the default limits and a
 * 64 MiB arena. A rejected input must fail cleanly (Bad status, position
 * untouched). An accepted value must encode; the encoding must decode to an
 * equal value whose encoding is byte-identical (the encoder is canonical);
 * and a heap deep copy must compare equal and be released completely (the
 * leak checker runs). Any violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/opcua/binary.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ep_ua_type *pick(uint8_t sel)
{
    switch (sel % 4) {
    case 0:
        return EP_UA_T(Variant);
    case 1:
        return EP_UA_T(DataValue);
    case 2:
        return EP_UA_T(ExtensionObject);
    default:
        return EP_UA_T(DiagnosticInfo);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ep_ua_type *t = pick(data[0]);
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    ep_ua_arena a;
    ep_ua_arena_init(&a, 64u << 20, NULL);
    void *v = NULL, *v2 = NULL;
    CHECK(ep_ua_arena_alloc(&a, t->size, &v) == EP_EOK);
    CHECK(ep_ua_arena_alloc(&a, t->size, &v2) == EP_EOK);

    size_t pos = 0;
    ep_ua_status st = 0;
    ep_err err = ep_ua_decode(p, n, &pos, t, v, &a, NULL, &st);
    if (err) {
        CHECK(err == EP_EMALFORMED || err == EP_ETOOBIG);
        CHECK(EP_UA_STATUS_IS_BAD(st));
        CHECK(pos == 0);
        ep_ua_arena_fini(&a);
        return 0;
    }
    CHECK(st == EP_UA_STATUS_Good && pos <= n);

    ep_buf b1, b2;
    ep_buf_init(&b1, 0);
    ep_buf_init(&b2, 0);
    CHECK(ep_ua_encode(v, t, &b1) == EP_EOK);
    size_t pos2 = 0;
    CHECK(ep_ua_decode(ep_buf_head(&b1), ep_buf_used(&b1), &pos2, t, v2, &a, NULL, &st) == EP_EOK);
    CHECK(pos2 == ep_buf_used(&b1));
    CHECK(ep_ua_equal(v, v2, t));
    CHECK(ep_ua_encode(v2, t, &b2) == EP_EOK);
    CHECK(ep_buf_used(&b1) == ep_buf_used(&b2));
    CHECK(memcmp(ep_buf_head(&b1), ep_buf_head(&b2), ep_buf_used(&b1)) == 0);

    void *copy = malloc(t->size);
    CHECK(copy != NULL);
    CHECK(ep_ua_copy(v, copy, t) == EP_EOK);
    CHECK(ep_ua_equal(v, copy, t));
    ep_ua_clear(copy, t);
    free(copy);

    ep_buf_fini(&b1);
    ep_buf_fini(&b2);
    ep_ua_arena_fini(&a);
    return 0;
}
