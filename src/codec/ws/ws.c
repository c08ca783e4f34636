/* ws.c - see ws.h. Header matching is case-insensitive as HTTP requires. */
#include "codec/ws/ws.h"

#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

long ep_ws_handshake_find(const uint8_t *p, size_t n)
{
    size_t lim = n < EP_WS_MAX_HANDSHAKE ? n : EP_WS_MAX_HANDSHAKE;
    for (size_t i = 3; i < lim; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            return (long)(i + 1);
    return n >= EP_WS_MAX_HANDSHAKE ? -1 : 0;
}

/* Does comma-separated header value v (len n) contain token tok? */
static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(v + start, tok, tl) == 0)
            return true;
    }
    return false;
}

static bool header_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

ep_err ep_ws_handshake_parse(const char *head, size_t len, ep_ws_handshake *out, int *http_status,
                             const char **why)
{
    bool upgrade = false, connection = false, version = false;
    memset(out, 0, sizeof(*out));
    *http_status = 400;
    const char *end = head + len;
    const char *eol = memchr(head, '\n', len);
    if (eol == NULL || len < 16 || memcmp(head, "GET ", 4) != 0) {
        *why = "expected a GET request";
        return EP_EPROTO;
    }
    const char *sp = memchr(head + 4, ' ', (size_t)(eol - head - 4));
    if (sp == NULL || (size_t)(eol - sp) < 9 || memcmp(sp + 1, "HTTP/1.1", 8) != 0) {
        *why = "expected HTTP/1.1";
        return EP_EPROTO;
    }
    out->path = head + 4;
    out->path_len = (size_t)(sp - head - 4);
    for (const char *line = eol + 1; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            break;
        size_t ll = (size_t)(nl - line);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            break;
        const char *colon = memchr(line, ':', ll);
        if (colon == NULL) {
            *why = "malformed header line";
            return EP_EPROTO;
        }
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1;
        size_t vlen = ll - nlen - 1;
        while (vlen && (*v == ' ' || *v == '\t')) {
            v++;
            vlen--;
        }
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (header_is(line, nlen, "Upgrade"))
            upgrade = has_token(v, vlen, "websocket");
        else if (header_is(line, nlen, "Connection"))
            connection = has_token(v, vlen, "upgrade");
        else if (header_is(line, nlen, "Sec-WebSocket-Version"))
            version = vlen == 2 && memcmp(v, "13", 2) == 0;
        else if (header_is(line, nlen, "Sec-WebSocket-Protocol"))
            out->has_mqtt = out->has_mqtt || has_token(v, vlen, "mqtt");
        else if (header_is(line, nlen, "Sec-WebSocket-Key")) {
            bool b64 = vlen == 24 && v[22] == '=' && v[23] == '=';
            for (size_t k = 0; b64 && k < 22; k++)
                b64 = (v[k] >= 'A' && v[k] <= 'Z') || (v[k] >= 'a' && v[k] <= 'z') ||
                      (v[k] >= '0' && v[k] <= '9') || v[k] == '+' || v[k] == '/';
            if (!b64) {
                *why = "Sec-WebSocket-Key is not 16 bytes of base64";
                return EP_EPROTO;
            }
            memcpy(out->key, v, vlen);
            out->key[vlen] = '\0';
        }
        line = nl + 1;
    }
    if (!upgrade || !connection) {
        *http_status = 426;
        *why = "not a WebSocket upgrade request";
        return EP_EPROTO;
    }
    if (!version) {
        *http_status = 426;
        *why = "only WebSocket version 13 is supported";
        return EP_EPROTO;
    }
    if (out->key[0] == '\0') {
        *why = "missing Sec-WebSocket-Key";
        return EP_EPROTO;
    }
    *http_status = 101;
    *why = "";
    return EP_EOK;
}

ep_err ep_ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return EP_ECRYPTO;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, key, strlen(key)) == 1 &&
             EVP_DigestUpdate(ctx, guid, sizeof(guid) - 1) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen != 20)
        return EP_ECRYPTO;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 chars + NUL */
    return EP_EOK;
}

ep_err ep_ws_frame_parse(const uint8_t *p, size_t n, uint64_t max_payload, bool require_mask,
                         ep_ws_frame *f)
{
    if (n < 2)
        return EP_ENEEDMORE;
    if (p[0] & 0x70)
        return EP_EPROTO; /* no extension was negotiated */
    f->fin = (p[0] & 0x80) != 0;
    f->opcode = p[0] & 0x0F;
    f->masked = (p[1] & 0x80) != 0;
    switch (f->opcode) {
    case EP_WS_OP_CONT:
    case EP_WS_OP_TEXT:
    case EP_WS_OP_BINARY:
    case EP_WS_OP_CLOSE:
    case EP_WS_OP_PING:
    case EP_WS_OP_PONG:
        break;
    default:
        return EP_EPROTO;
    }
    if (require_mask && !f->masked)
        return EP_EPROTO;
    uint64_t len = p[1] & 0x7F;
    size_t hl = 2;
    if (len == 126) {
        if (n < 4)
            return EP_ENEEDMORE;
        len = ((uint64_t)p[2] << 8) | p[3];
        if (len < 126)
            return EP_EPROTO;
        hl = 4;
    } else if (len == 127) {
        if (n < 10)
            return EP_ENEEDMORE;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        if (len < 65536 || (len >> 63))
            return EP_EPROTO;
        hl = 10;
    }
    if (f->opcode >= EP_WS_OP_CLOSE && (!f->fin || len > 125))
        return EP_EPROTO;
    if (len > max_payload)
        return EP_ETOOBIG;
    if (f->masked) {
        if (n < hl + 4)
            return EP_ENEEDMORE;
        memcpy(f->mask, p + hl, 4);
        hl += 4;
    }
    f->payload_len = len;
    f->header_len = hl;
    return EP_EOK;
}

void ep_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(offset + i) & 3];
}

size_t ep_ws_frame_header(uint8_t *out, uint8_t opcode, bool fin, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}
