/*
 * test_util.h - helpers shared by the opcua_crypto unit tests (header only:
 * every *_test.c in this directory is its own executable).
 */
#ifndef EP_CODEC_OPCUA_CRYPTO_TEST_UTIL_H
#define EP_CODEC_OPCUA_CRYPTO_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/opcua_crypto/crypto_int.h"

/* Decodes hex (whitespace ignored) into out; returns the byte count. */
static inline size_t tu_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
            continue;
        }
        assert_true(n < cap);
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    assert_int_equal(hi, -1);
    return n;
}

/* Creates a fresh directory under $TMPDIR (or /tmp) into buf. */
static inline void tu_mkdtemp(char *buf, size_t cap, const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || !*base)
        base = "/tmp";
    assert_true((size_t)snprintf(buf, cap, "%s/ep_ua_%s_XXXXXX", base, tag) < cap);
    assert_non_null(mkdtemp(buf));
}

static inline int tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes a directory tree created by a test. */
static inline void tu_rmtree(const char *dir) { nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* Reports whether path exists. */
static inline int tu_exists(const char *path) { return access(path, F_OK) == 0; }

/* printf into a static-per-call buffer the caller provides. */
static inline const char *tu_path(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline const char *tu_path(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < cap);
    return buf;
}

#endif
