/*
 * util.c - shared plumbing of the opcua_crypto module: the algorithm table
 * fetched once from OpenSSL (explicit fetching avoids a provider lookup on
 * every chunk), whole-file reads with a size bound, atomic file writes and
 * detail strings that carry the OpenSSL reason.
 */
#include "codec/opcua_crypto/crypto_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

static ep_ua__algs algs;
static int algs_ok;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_fetch(void)
{
    algs.sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    algs.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    algs.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    algs.aes128_cbc = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    algs.aes256_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    algs_ok = algs.sha1 && algs.sha256 && algs.hmac && algs.aes128_cbc && algs.aes256_cbc;
    ERR_clear_error();
}

const ep_ua__algs *ep_ua__algs_get(void)
{
    if (pthread_once(&algs_once, algs_fetch) != 0)
        return NULL;
    return algs_ok ? &algs : NULL;
}

ep_err ep_ua__file_read(const char *path, size_t max, uint8_t **data, size_t *len)
{
    ep_err err;
    uint8_t *buf = NULL;
    struct stat st;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return EP_ERR_FROM_ERRNO();
    if (fstat(fd, &st) != 0) {
        err = EP_ERR_FROM_ERRNO();
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        err = EP_EINVAL;
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        err = EP_ETOOBIG;
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        err = EP_ENOMEM;
        goto fail;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = EP_ERR_FROM_ERRNO();
            goto fail;
        }
        if (n == 0)
            break; /* file shrank under us: take what is there */
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *len = got;
    return EP_EOK;
fail:
    free(buf);
    close(fd);
    return err;
}

ep_err ep_ua__file_write(const char *path, const void *data, size_t len, mode_t mode)
{
    ep_err err = EP_EOK;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof(".tmp.XXXXXX"));
    const uint8_t *p = data;
    int fd;
    if (tmp == NULL)
        return EP_ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
    fd = mkstemp(tmp);
    if (fd < 0) {
        err = EP_ERR_FROM_ERRNO();
        free(tmp);
        return err;
    }
    if (fchmod(fd, mode) != 0) {
        err = EP_ERR_FROM_ERRNO();
        goto fail;
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = EP_ERR_FROM_ERRNO();
            goto fail;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        err = EP_ERR_FROM_ERRNO();
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        err = EP_ERR_FROM_ERRNO();
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        err = EP_ERR_FROM_ERRNO();
        goto fail;
    }
    free(tmp);
    return EP_EOK;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return err;
}

void ep_ua__detail(char *detail, size_t cap, const char *fmt, ...)
{
    if (detail != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(detail, cap, fmt, ap);
        va_end(ap);
        unsigned long e = ERR_peek_error();
        const char *reason = e ? ERR_reason_error_string(e) : NULL;
        if (reason != NULL && n >= 0 && (size_t)n < cap)
            snprintf(detail + n, cap - (size_t)n, " (%s)", reason);
    }
    ERR_clear_error();
}

int ep_ua__is_pem(const uint8_t *data, size_t len)
{
    static const char tag[] = "-----BEGIN";
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    return len - i >= sizeof(tag) - 1 && memcmp(data + i, tag, sizeof(tag) - 1) == 0;
}
