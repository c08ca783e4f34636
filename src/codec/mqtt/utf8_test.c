/*
 * utf8_test.c - MQTT UTF-8 Encoded String rules (1.5.4) and the strict
 * variant, including the boundaries of every multi-byte form.
 */
#include "codec/mqtt/testutil.h"

static const struct {
    const char *hex;
    bool ok, strict_ok;
} cases[] = {
    {"", true, true},
    {"41", true, true},
    {"41 f0 aa 9b 94", true, true}, /* spec example: A U+2A6D4 */
    {"ef bb bf 41", true, true},    /* U+FEFF kept, not stripped [MQTT-1.5.4-3] */
    {"c2 80", true, false},         /* U+0080 C1 control */
    {"c2 9f", true, false},         /* U+009F */
    {"c2 a0", true, true},          /* U+00A0 */
    {"df bf", true, true},          /* U+07FF */
    {"e0 a0 80", true, true},       /* U+0800 */
    {"ed 9f bf", true, true},       /* U+D7FF */
    {"ee 80 80", true, true},       /* U+E000 */
    {"ef b7 90", true, false},      /* U+FDD0 non-character */
    {"ef b7 af", true, false},      /* U+FDEF */
    {"ef b7 b0", true, true},       /* U+FDF0 */
    {"ef bf be", true, false},      /* U+FFFE */
    {"ef bf bf", true, false},      /* U+FFFF */
    {"f0 90 80 80", true, true},    /* U+10000 */
    {"f0 9f bf bf", true, false},   /* U+1FFFF */
    {"f4 8f bf bf", true, false},   /* U+10FFFF */
    {"f4 8f bf bd", true, true},    /* U+10FFFD */
    {"01", true, false},            /* U+0001 */
    {"1f", true, false},
    {"7f", true, false},
    {"09", true, false},                       /* tab is a control too */
    {"00", false, false},                      /* U+0000 [MQTT-1.5.4-2] */
    {"41 42 43 44 45 46 47 00", false, false}, /* NUL in the 8-byte fast path */
    {"41 42 43 44 45 46 47 48 49 00", false, false},
    {"c0 80", false, false},       /* overlong NUL */
    {"c1 bf", false, false},       /* overlong */
    {"e0 9f bf", false, false},    /* overlong 3-byte */
    {"f0 8f bf bf", false, false}, /* overlong 4-byte */
    {"ed a0 80", false, false},    /* U+D800 surrogate [MQTT-1.5.4-1] */
    {"ed bf bf", false, false},    /* U+DFFF */
    {"f4 90 80 80", false, false}, /* above U+10FFFF */
    {"f5 80 80 80", false, false},
    {"ff", false, false},
    {"80", false, false}, /* lone continuation */
    {"c2", false, false}, /* truncated */
    {"e2 82", false, false},
    {"f0 9f 98", false, false},
    {"c2 41", false, false}, /* bad continuation */
    {"e2 28 a1", false, false},
    {"41 42 43 44 45 46 47 48 c3 a9 49", true, true},
    {"41 42 43 44 45 46 47 48 c3", false, false},
    {"41 42 43 44 45 46 47 e9", false, false}, /* high byte inside a word */
};

static void test_cases(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[32];
        size_t n = hex_decode(cases[i].hex, b, sizeof(b));
        ep_mqtt_slice s = ep_mqtt_slice_make(b, n);
        bool ok = ep_mqtt_utf8_check(s) == EP_EOK;
        bool sok = ep_mqtt_utf8_check_strict(s) == EP_EOK;
        if (ok != cases[i].ok || sok != cases[i].strict_ok) {
            fprintf(stderr, "FAIL \"%s\": check %d strict %d\n", cases[i].hex, ok, sok);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    assert_int_equal(ep_mqtt_utf8_check(S("\xff")), EP_EUTF8);
}

/* Exhaustive over all 1- to 3-byte sequences against a reference decoder. */
static bool ref_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i], cp;
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        if (len == 0 || i + len > n)
            return false;
        cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0)
            return false;
        i += len;
    }
    return true;
}

static void test_exhaustive_short(void **state)
{
    (void)state;
    uint8_t b[3];
    for (uint32_t x = 0; x < (1u << 24); x += 1) {
        b[0] = (uint8_t)(x >> 16);
        b[1] = (uint8_t)(x >> 8);
        b[2] = (uint8_t)x;
        bool want = ref_ok(b, 3);
        bool got = ep_mqtt_utf8_check(ep_mqtt_slice_make(b, 3)) == EP_EOK;
        if (want != got)
            fail_msg("mismatch for %02x %02x %02x: want %d", b[0], b[1], b[2], want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_exhaustive_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
