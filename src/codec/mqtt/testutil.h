/*
 * testutil.h - helpers shared by the MQTT codec unit tests (header only, so
 * it never ends up in the library).
 */
#ifndef EP_CODEC_MQTT_TESTUTIL_H
#define EP_CODEC_MQTT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "codec/mqtt/packet.h"

/* hex_decode parses "10 0e 00 04 ..." (spaces, newlines and '|' ignored)
 * into out (cap bytes); returns the byte count, fails the test on error. */
static inline size_t hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *s = hex; *s; s++) {
        int v;
        if (*s >= '0' && *s <= '9')
            v = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            v = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F')
            v = *s - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            if (n >= cap)
                fail_msg("hex vector larger than %zu bytes", cap);
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0)
        fail_msg("odd number of hex digits in \"%s\"", hex);
    return n;
}

static inline void hex_print(const char *label, const uint8_t *p, size_t n)
{
    fprintf(stderr, "%s (%zu):", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

/* Fails with both sides printed when the bytes differ. */
#define assert_bytes(name, got, gotn, want, wantn)                                                 \
    do {                                                                                           \
        if ((gotn) != (wantn) || memcmp((got), (want), (wantn)) != 0) {                            \
            fprintf(stderr, "vector %s:\n", (name));                                               \
            hex_print("  want", (want), (wantn));                                                  \
            hex_print("  got ", (got), (gotn));                                                    \
            fail_msg("encoded bytes differ for %s", (name));                                       \
        }                                                                                          \
    } while (0)

#define S(lit) EP_MQTT_STR(lit)

#endif
