/*
 * fuzz_opcua_message.c - OPC UA service message decoder.
 *
 * Input: a message body as it follows the secure-channel headers: the
 * encoding NodeId, then the body of that type (any structure with a
 * DefaultBinary id). Same oracle as fuzz_opcua_variant.c: clean rejection,
 * or re-encode / decode / equal / byte-identical re-encode, plus heap copy.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ep_ua_arena a;
    ep_ua_arena_init(&a, 64u << 20, NULL);
    const ep_ua_type *t = NULL;
    void *v = NULL;
    size_t pos = 0;
    ep_ua_status st = 0;
    ep_err err =
        ep_ua_message_decode(size ? data : (const uint8_t *)"", size, &pos, &t, &v, &a, NULL, &st);
    if (err) {
        CHECK(err == EP_EMALFORMED || err == EP_ETOOBIG || err == EP_EUNSUPPORTED);
        CHECK(EP_UA_STATUS_IS_BAD(st));
        CHECK(pos == 0 && t == NULL && v == NULL);
        CHECK(ep_ua_arena_used(&a) == 0);
        ep_ua_arena_fini(&a);
        return 0;
    }
    CHECK(t != NULL && v != NULL && pos <= size);

    ep_buf b1, b2;
    ep_buf_init(&b1, 0);
    ep_buf_init(&b2, 0);
    CHECK(ep_ua_message_encode(v, t, &b1) == EP_EOK);
    const ep_ua_type *t2 = NULL;
    void *v2 = NULL;
    size_t pos2 = 0;
    CHECK(ep_ua_message_decode(ep_buf_head(&b1), ep_buf_used(&b1), &pos2, &t2, &v2, &a, NULL,
                               &st) == EP_EOK);
    CHECK(t2 == t && pos2 == ep_buf_used(&b1));
    CHECK(ep_ua_equal(v, v2, t));
    CHECK(ep_ua_message_encode(v2, t, &b2) == EP_EOK);
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
