/*
 * fuzz_auth_callout.c - libFuzzer harness for the answer of a custom
 * authentication server (svc/auth/callout.h), which is untrusted input.
 *
 * The first byte picks the HTTP status (200, 403, 422, 400, 405, 500), the
 * rest is the body. The same bytes also go to the RFC 3339 parser and the
 * certificate subject normalizer. Properties checked: only a 200 allows; a
 * denial carries a CONNACK failure reason (>= 0x80); an allowed expiry is
 * in the future; attributes stay within EP_AUTH_ATTRS_MAX; the message is
 * printable ASCII.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/auth/callout.h"
#include "svc/auth/x509map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const ep_callout_result *r, long status, int64_t now)
{
    if (r->verdict == EP_CALLOUT_ALLOW && status != 200)
        abort();
    if (r->verdict == EP_CALLOUT_DENY && r->reason < 0x80)
        abort();
    if (r->verdict == EP_CALLOUT_ALLOW && r->expiry_ms != 0 && r->expiry_ms <= now)
        abort();
    if (r->attrs && (r->verdict != EP_CALLOUT_ALLOW || r->attrs->n > EP_AUTH_ATTRS_MAX))
        abort();
    for (size_t i = 0; r->message[i]; i++)
        if ((unsigned char)r->message[i] < 0x20 || (unsigned char)r->message[i] >= 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 403, 422, 400, 405, 500};
    if (size == 0)
        return 0;
    long status = statuses[data[0] % 6];
    const char *body = (const char *)data + 1;
    int64_t now = 1700000000000;
    ep_callout_result r;
    ep_callout_parse_response(status, body, size - 1, now, &r);
    check(&r, status, now);
    ep_callout_result_clear(&r);

    int64_t t;
    (void)ep_callout_parse_rfc3339(body, size - 1, &t);

    char *s = malloc(size);
    if (s) {
        memcpy(s, body, size - 1);
        s[size - 1] = '\0';
        char out[256];
        (void)ep_x509_subject_normalize(s, out, sizeof(out));
        free(s);
    }
    return 0;
}
