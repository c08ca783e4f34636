/*
 * utf8.c - MQTT UTF-8 Encoded String validation.
 *
 * MQTT strings must be well-formed UTF-8 (RFC 3629: no overlong forms, no
 * code points above U+10FFFF), must not encode surrogates, and must not
 * contain U+0000 [MQTT-1.5.4-1, -2]. Control characters and non-characters
 * are only "SHOULD NOT", so the decoder accepts them and a strict variant is
 * offered for callers that want to refuse them (client identifiers, config).
 *
 * Topics and most strings are ASCII, so the scanner checks 8 bytes at a time
 * while they are all in 0x01..0x7F and only decodes sequences otherwise.
 */
#include "codec/mqtt/wire.h"

#include <string.h>

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

ep_err ep_mqtt__utf8_scan(const uint8_t *p, size_t n, unsigned flags)
{
    const bool strict = (flags & EP_MQTT__UTF8_STRICT) != 0;
    const bool allow_nul = (flags & EP_MQTT__UTF8_ALLOW_NUL) != 0;
    size_t i = 0;

    while (i < n) {
        if (!strict && n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            /* No high bit set, and (unless NUL is allowed) no zero byte. */
            bool has_zero = ((w - ONES) & ~w & HIGHS) != 0;
            if ((w & HIGHS) == 0 && (allow_nul || !has_zero)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c == 0 && !allow_nul)
                return EP_EUTF8;
            if (strict && (c < 0x20 || c == 0x7F))
                return EP_EUTF8;
            i++;
            continue;
        }
        uint32_t cp;
        size_t len;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return EP_EUTF8; /* continuation byte, C0/C1 overlong, F5+ */
        }
        if (n - i < len)
            return EP_EUTF8;
        for (size_t k = 1; k < len; k++) {
            uint8_t b = p[i + k];
            if ((b & 0xC0) != 0x80)
                return EP_EUTF8;
            cp = (cp << 6) | (b & 0x3Fu);
        }
        if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
            return EP_EUTF8;
        if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
            return EP_EUTF8;
        if (strict) {
            if (cp <= 0x9F) /* U+0080..U+009F C1 controls */
                return EP_EUTF8;
            if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFEu) == 0xFFFEu)
                return EP_EUTF8;
        }
        i += len;
    }
    return EP_EOK;
}

ep_err ep_mqtt_utf8_check(ep_mqtt_slice s)
{
    if (s.len && s.p == NULL)
        return EP_EUTF8;
    return ep_mqtt__utf8_scan(s.p, s.len, 0);
}

ep_err ep_mqtt_utf8_check_strict(ep_mqtt_slice s)
{
    if (s.len && s.p == NULL)
        return EP_EUTF8;
    return ep_mqtt__utf8_scan(s.p, s.len, EP_MQTT__UTF8_STRICT);
}
