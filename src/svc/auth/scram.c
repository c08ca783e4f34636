/*
 * scram.c - SCRAM-SHA-256 server and client (see scram.h).
 *
 * Messages are comma-separated "x=value" attributes. Parsing is done in
 * place over the received bytes with a fixed attribute limit; nothing is
 * allocated per attribute. The server keeps per exchange only what the
 * proof check needs: the gs2 header (to check "c="), client-first-bare and
 * server-first (both part of AuthMessage), the combined nonce (inside
 * server-first) and the user's keys. The server nonce is 18 random bytes
 * per exchange, so a client-final captured from one exchange never
 * verifies in another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "svc/auth/auth_int.h"
#include "svc/auth/scram.h"

#define NONCE_BYTES 18 /* 24 base64 characters */
#define MAX_ATTRS 16

typedef struct attr {
    char name;
    const char *v;
    size_t len;
} attr;

/* Splits s into attributes. Every part must be "<letter>=<value>" with a
 * value free of ','. Returns the count, or 0 on a syntax error or more
 * than max parts. */
static size_t split_attrs(const char *s, size_t len, attr *a, size_t max)
{
    size_t n = 0, pos = 0;
    for (;;) {
        if (n == max || len - pos < 2)
            return 0;
        char c = s[pos];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) || s[pos + 1] != '=')
            return 0;
        const char *v = s + pos + 2;
        const char *comma = memchr(v, ',', len - pos - 2);
        size_t vl = comma ? (size_t)(comma - v) : len - pos - 2;
        a[n++] = (attr){c, v, vl};
        if (comma == NULL)
            return n;
        pos = (size_t)(comma - s) + 1;
    }
}

/* saslname -> bytes: "=2C" is ',', "=3D" is '=', any other '=' is an
 * error. Returns the decoded length or (size_t)-1. */
static size_t decode_saslname(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '=') {
            if (i + 2 >= len)
                return (size_t)-1;
            if (s[i + 1] == '2' && s[i + 2] == 'C')
                c = ',';
            else if (s[i + 1] == '3' && s[i + 2] == 'D')
                c = '=';
            else
                return (size_t)-1;
            i += 2;
        }
        if (o == cap)
            return (size_t)-1;
        out[o++] = c;
    }
    return o;
}

static bool printable_nonce(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return false;
    return true;
}

static bool has_nul(const uint8_t *p, size_t n) { return n > 0 && memchr(p, 0, n) != NULL; }

/* ------------------------------------------------------------------------ */
/* Server                                                                    */

struct ep_scram_server {
    ep_scram_lookup_fn lookup;
    void *lookup_ud;
    uint8_t secret[32];      /* for fake salts of unknown users */
    const char *fixed_nonce; /* tests only */
};

enum { PH_FINAL = 1, PH_DONE = 2, PH_OK = 3 };

typedef struct scram_state {
    int phase;
    bool known;
    ep_scram_cred cred;
    char user[EP_PASSWD_MAX_USER + 1];
    char gs2[EP_SCRAM_MAX_MSG + 1];
    size_t gs2_len;
    char cfb[EP_SCRAM_MAX_MSG]; /* client-first-bare */
    size_t cfb_len;
    char sf[EP_SCRAM_MAX_MSG + 128]; /* server-first */
    size_t sf_len;
    size_t nonce_len; /* the combined nonce is sf[2..2+nonce_len) */
    char out[64];     /* server-final */
    size_t out_len;
} scram_state;

void ep_scram__server_fixed_nonce(ep_scram_server *s, const char *nonce) { s->fixed_nonce = nonce; }

ep_err ep_scram_server_new(ep_scram_server **out, ep_scram_lookup_fn lookup, void *lookup_ud)
{
    ep_scram_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return EP_ENOMEM;
    s->lookup = lookup;
    s->lookup_ud = lookup_ud;
    if (ep_auth__random(s->secret, sizeof(s->secret)) != EP_EOK) {
        free(s);
        return EP_ECRYPTO;
    }
    *out = s;
    return EP_EOK;
}

static ep_err passwd_lookup(void *ud, const char *user, size_t len, ep_scram_cred *out)
{
    ep_passwd *pw = ep_passwd_file_get(ud);
    const ep_passwd_entry *e = ep_passwd_lookup(pw, user, len);
    ep_err err = EP_ENOTFOUND;
    if (e != NULL && e->kind == EP_PASSWD_SCRAM_SHA256) {
        out->iterations = e->iterations;
        memcpy(out->salt, e->salt, e->salt_len);
        out->salt_len = e->salt_len;
        memcpy(out->stored_key, e->stored_key, 32);
        memcpy(out->server_key, e->server_key, 32);
        err = EP_EOK;
    }
    ep_passwd_unref(pw);
    return err;
}

ep_err ep_scram_server_new_passwd(ep_scram_server **out, ep_passwd_file *pf)
{
    return ep_scram_server_new(out, passwd_lookup, pf);
}

void ep_scram_server_free(ep_scram_server *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s->secret, sizeof(s->secret));
    free(s);
}

void ep_scram_server_done(void *ud, void *state)
{
    (void)ud;
    if (state == NULL)
        return;
    OPENSSL_cleanse(state, sizeof(scram_state));
    free(state);
}

const char *ep_scram_server_username(const void *state)
{
    const scram_state *st = state;
    return st != NULL && st->phase == PH_OK ? st->user : NULL;
}

/* Parses client-first into st and builds server-first. */
static bool server_first(ep_scram_server *s, scram_state *st, const char *in, size_t len)
{
    size_t pos;
    /* gs2-cbind-flag */
    if (len < 3 || (in[0] != 'n' && in[0] != 'y') || in[1] != ',')
        return false; /* "p=" (channel binding) is not supported */
    pos = 2;
    const char *authz = NULL;
    size_t authz_len = 0;
    if (in[pos] == 'a') {
        if (pos + 1 >= len || in[pos + 1] != '=')
            return false;
        authz = in + pos + 2;
        const char *comma = memchr(authz, ',', len - pos - 2);
        if (comma == NULL)
            return false;
        authz_len = (size_t)(comma - authz);
        pos = (size_t)(comma - in);
    }
    if (pos >= len || in[pos] != ',')
        return false;
    pos++;
    st->gs2_len = pos;
    memcpy(st->gs2, in, pos);

    const char *bare = in + pos;
    size_t blen = len - pos;
    attr a[MAX_ATTRS];
    size_t n = split_attrs(bare, blen, a, MAX_ATTRS);
    if (n < 2 || a[0].name != 'n' || a[1].name != 'r') /* also refuses "m=" */
        return false;
    size_t ulen = decode_saslname(a[0].v, a[0].len, st->user, EP_PASSWD_MAX_USER);
    if (ulen == (size_t)-1 || ulen == 0)
        return false;
    st->user[ulen] = '\0';
    if (authz != NULL) {
        char az[EP_PASSWD_MAX_USER];
        size_t azl = decode_saslname(authz, authz_len, az, sizeof(az));
        if (azl != ulen || memcmp(az, st->user, ulen) != 0)
            return false;
    }
    if (!printable_nonce(a[1].v, a[1].len))
        return false;
    for (size_t i = 2; i < n; i++)
        if (a[i].name < 'a' || a[i].name > 'z')
            return false;
    memcpy(st->cfb, bare, blen);
    st->cfb_len = blen;

    st->known = s->lookup(s->lookup_ud, st->user, ulen, &st->cred) == EP_EOK;
    if (!st->known) {
        /* a stable fake salt, so repeated probes see the same values */
        uint8_t d[32];
        if (ep_auth__hmac256(s->secret, sizeof(s->secret), "salt", 4, st->user, ulen, NULL, 0, d) !=
            EP_EOK)
            return false;
        memcpy(st->cred.salt, d, EP_PASSWD_SALT_LEN);
        st->cred.salt_len = EP_PASSWD_SALT_LEN;
        st->cred.iterations = EP_PASSWD_SCRAM_DEFAULT_ITERATIONS;
        if (ep_auth__random(st->cred.stored_key, 32) != EP_EOK)
            return false;
    }
    if (st->cred.salt_len > EP_PASSWD_MAX_SALT)
        return false;

    char snonce[64];
    if (s->fixed_nonce != NULL) {
        snprintf(snonce, sizeof(snonce), "%s", s->fixed_nonce);
    } else {
        uint8_t r[NONCE_BYTES];
        if (ep_auth__random(r, sizeof(r)) != EP_EOK)
            return false;
        ep_auth__b64_encode(r, sizeof(r), snonce);
    }
    char salt[ep_auth__b64_len(EP_PASSWD_MAX_SALT) + 1];
    ep_auth__b64_encode(st->cred.salt, st->cred.salt_len, salt);
    int w = snprintf(st->sf, sizeof(st->sf), "r=%.*s%s,s=%s,i=%u", (int)a[1].len, a[1].v, snonce,
                     salt, (unsigned)st->cred.iterations);
    if (w < 0 || (size_t)w >= sizeof(st->sf))
        return false;
    st->sf_len = (size_t)w;
    st->nonce_len = a[1].len + strlen(snonce);
    return true;
}

/* Checks client-final; on success builds server-final. */
static bool server_final(scram_state *st, const char *in, size_t len)
{
    attr a[MAX_ATTRS];
    size_t n = split_attrs(in, len, a, MAX_ATTRS);
    if (n < 3 || a[0].name != 'c' || a[1].name != 'r' || a[n - 1].name != 'p')
        return false;
    for (size_t i = 2; i + 1 < n; i++)
        if (a[i].name < 'a' || a[i].name > 'z')
            return false;
    /* c= is base64(gs2 header), since no channel binding data is used */
    char cb[ep_auth__b64_len(sizeof(st->gs2)) + 1];
    size_t cbl = ep_auth__b64_encode((const uint8_t *)st->gs2, st->gs2_len, cb);
    if (a[0].len != cbl || memcmp(a[0].v, cb, cbl) != 0)
        return false;
    if (a[1].len != st->nonce_len || memcmp(a[1].v, st->sf + 2, st->nonce_len) != 0)
        return false;
    uint8_t proof[32];
    size_t pl = 0;
    if (ep_auth__b64_decode(a[n - 1].v, a[n - 1].len, proof, sizeof(proof), &pl) != EP_EOK ||
        pl != 32)
        return false;
    size_t without_proof = (size_t)(a[n - 1].v - in) - 3; /* drop ",p=" */

    uint8_t sig[32], ck[32], sk[32];
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    char msg[sizeof(st->cfb) + sizeof(st->sf) + EP_SCRAM_MAX_MSG + 2];
    size_t ml = 0;
    memcpy(msg + ml, st->cfb, st->cfb_len);
    ml += st->cfb_len;
    msg[ml++] = ',';
    memcpy(msg + ml, st->sf, st->sf_len);
    ml += st->sf_len;
    msg[ml++] = ',';
    memcpy(msg + ml, in, without_proof);
    ml += without_proof;
    bool ok = ep_auth__hmac256(st->cred.stored_key, 32, msg, ml, NULL, 0, NULL, 0, sig) == EP_EOK;
    for (int i = 0; i < 32; i++)
        ck[i] = proof[i] ^ sig[i];
    ok = ok && EVP_Digest(ck, 32, sk, NULL, EVP_sha256(), NULL) == 1;
    ok = ok && ep_auth__ct_eq(sk, st->cred.stored_key, 32) && st->known;
    if (ok) {
        uint8_t ssig[32];
        ok = ep_auth__hmac256(st->cred.server_key, 32, msg, ml, NULL, 0, NULL, 0, ssig) == EP_EOK;
        memcpy(st->out, "v=", 2);
        st->out_len = 2 + ep_auth__b64_encode(ssig, 32, st->out + 2);
    }
    OPENSSL_cleanse(ck, sizeof(ck));
    OPENSSL_cleanse(sig, sizeof(sig));
    return ok;
}

ep_scram_result ep_scram_server_step(void *ud, void **state, const char *client_id,
                                     const uint8_t *in, size_t in_len, const uint8_t **out,
                                     size_t *out_len)
{
    (void)client_id;
    ep_scram_server *s = ud;
    *out = NULL;
    *out_len = 0;
    if (in_len > EP_SCRAM_MAX_MSG || (in == NULL && in_len > 0) || has_nul(in, in_len))
        goto fail;
    scram_state *st = *state;
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return EP_SCRAM_FAIL;
        *state = st;
        if (!server_first(s, st, (const char *)in, in_len))
            goto fail;
        st->phase = PH_FINAL;
        *out = (const uint8_t *)st->sf;
        *out_len = st->sf_len;
        return EP_SCRAM_CONTINUE;
    }
    if (st->phase != PH_FINAL || !server_final(st, (const char *)in, in_len))
        goto fail;
    st->phase = PH_OK;
    *out = (const uint8_t *)st->out;
    *out_len = st->out_len;
    return EP_SCRAM_SUCCESS;
fail:
    if (*state != NULL)
        ((scram_state *)*state)->phase = PH_DONE;
    return EP_SCRAM_FAIL;
}

/* ------------------------------------------------------------------------ */
/* Client                                                                    */

struct ep_scram_client {
    int phase; /* 0 first sent, 1 final sent, 2 verified */
    char *pass;
    size_t plen;
    char cfirst[EP_SCRAM_MAX_MSG];
    size_t cf_len, bare_off, cnonce_len;
    char cfinal[EP_SCRAM_MAX_MSG + 128];
    size_t cfin_len;
    uint8_t server_sig[32];
};

static ep_err client_build_first(ep_scram_client *c, const char *user, const char *nonce)
{
    size_t o = 0;
    memcpy(c->cfirst, "n,,n=", 5);
    o = 5;
    c->bare_off = 3;
    for (const char *p = user; *p; p++) {
        const char *rep = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
        size_t rl = rep ? 3 : 1;
        if (o + rl + 64 >= sizeof(c->cfirst))
            return EP_EINVAL;
        memcpy(c->cfirst + o, rep ? rep : p, rl);
        o += rl;
    }
    int w = snprintf(c->cfirst + o, sizeof(c->cfirst) - o, ",r=%s", nonce);
    if (w < 0 || (size_t)w >= sizeof(c->cfirst) - o)
        return EP_EINVAL;
    c->cf_len = o + (size_t)w;
    c->cnonce_len = strlen(nonce);
    return EP_EOK;
}

void ep_scram__client_fixed_nonce(ep_scram_client *c, const char *nonce)
{
    /* rewrite ",r=<nonce>" after the user part */
    size_t ul = c->cf_len - c->cnonce_len - 3 - 5; /* between "n,,n=" and ",r=" */
    int w = snprintf(c->cfirst + 5 + ul, sizeof(c->cfirst) - 5 - ul, ",r=%s", nonce);
    c->cf_len = 5 + ul + (size_t)w;
    c->cnonce_len = strlen(nonce);
}

ep_err ep_scram_client_new(ep_scram_client **out, const char *user, const void *password,
                           size_t plen)
{
    if (user == NULL || user[0] == '\0' || strlen(user) > EP_PASSWD_MAX_USER ||
        plen > EP_PASSWD_MAX_PASSWORD)
        return EP_EINVAL;
    ep_scram_client *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->pass = malloc(plen + 1)) == NULL) {
        free(c);
        return EP_ENOMEM;
    }
    if (plen)
        memcpy(c->pass, password, plen);
    c->plen = plen;
    uint8_t r[NONCE_BYTES];
    char nonce[ep_auth__b64_len(NONCE_BYTES) + 1];
    ep_err err = ep_auth__random(r, sizeof(r));
    if (err == EP_EOK) {
        ep_auth__b64_encode(r, sizeof(r), nonce);
        err = client_build_first(c, user, nonce);
    }
    if (err != EP_EOK) {
        ep_scram_client_free(c);
        return err;
    }
    *out = c;
    return EP_EOK;
}

ep_err ep_scram_client_first(ep_scram_client *c, const uint8_t **out, size_t *out_len)
{
    *out = (const uint8_t *)c->cfirst;
    *out_len = c->cf_len;
    return EP_EOK;
}

ep_err ep_scram_client_final(ep_scram_client *c, const uint8_t *in, size_t in_len,
                             const uint8_t **out, size_t *out_len)
{
    if (c->phase != 0 || in_len > EP_SCRAM_MAX_MSG || has_nul(in, in_len))
        return EP_EPROTO;
    const char *s = (const char *)in;
    attr a[MAX_ATTRS];
    size_t n = split_attrs(s, in_len, a, MAX_ATTRS);
    if (n < 3 || a[0].name != 'r' || a[1].name != 's' || a[2].name != 'i')
        return EP_EPROTO;
    const char *cnonce = c->cfirst + c->cf_len - c->cnonce_len;
    if (a[0].len <= c->cnonce_len || memcmp(a[0].v, cnonce, c->cnonce_len) != 0 ||
        !printable_nonce(a[0].v, a[0].len))
        return EP_EPROTO;
    uint8_t salt[EP_PASSWD_MAX_SALT];
    size_t sl = 0;
    if (ep_auth__b64_decode(a[1].v, a[1].len, salt, sizeof(salt), &sl) != EP_EOK || sl == 0)
        return EP_EPROTO;
    uint64_t it = 0;
    if (a[2].len == 0 || a[2].len > 9)
        return EP_EPROTO;
    for (size_t i = 0; i < a[2].len; i++) {
        if (a[2].v[i] < '0' || a[2].v[i] > '9')
            return EP_EPROTO;
        it = it * 10 + (uint64_t)(a[2].v[i] - '0');
    }
    if (it < EP_SCRAM_MIN_ITERATIONS || it > EP_SCRAM_MAX_CLIENT_ITERATIONS)
        return EP_EPROTO;

    int w = snprintf(c->cfinal, sizeof(c->cfinal), "c=biws,r=%.*s", (int)a[0].len, a[0].v);
    if (w < 0 || (size_t)w + 48 >= sizeof(c->cfinal))
        return EP_EPROTO;
    size_t wp = (size_t)w;

    char msg[EP_SCRAM_MAX_MSG * 3 + 2];
    size_t ml = 0;
    const char *bare = c->cfirst + c->bare_off;
    size_t bl = c->cf_len - c->bare_off;
    memcpy(msg, bare, bl);
    ml = bl;
    msg[ml++] = ',';
    memcpy(msg + ml, s, in_len);
    ml += in_len;
    msg[ml++] = ',';
    memcpy(msg + ml, c->cfinal, wp);
    ml += wp;

    uint8_t sp[32], ck[32], stk[32], svk[32], sig[32], proof[32];
    ep_err err = ep_auth__pbkdf2(false, c->pass, c->plen, salt, sl, (uint32_t)it, sp, 32);
    if (err == EP_EOK)
        err = ep_auth__scram_keys(sp, ck, stk, svk);
    if (err == EP_EOK)
        err = ep_auth__hmac256(stk, 32, msg, ml, NULL, 0, NULL, 0, sig);
    if (err == EP_EOK)
        err = ep_auth__hmac256(svk, 32, msg, ml, NULL, 0, NULL, 0, c->server_sig);
    if (err == EP_EOK) {
        for (int i = 0; i < 32; i++)
            proof[i] = ck[i] ^ sig[i];
        memcpy(c->cfinal + wp, ",p=", 3);
        wp += 3;
        wp += ep_auth__b64_encode(proof, 32, c->cfinal + wp);
        c->cfin_len = wp;
        c->phase = 1;
        *out = (const uint8_t *)c->cfinal;
        *out_len = c->cfin_len;
    }
    OPENSSL_cleanse(sp, sizeof(sp));
    OPENSSL_cleanse(ck, sizeof(ck));
    OPENSSL_cleanse(stk, sizeof(stk));
    OPENSSL_cleanse(svk, sizeof(svk));
    return err;
}

ep_err ep_scram_client_verify(ep_scram_client *c, const uint8_t *in, size_t in_len)
{
    if (c->phase != 1 || in_len > EP_SCRAM_MAX_MSG || has_nul(in, in_len))
        return EP_EPROTO;
    attr a[MAX_ATTRS];
    size_t n = split_attrs((const char *)in, in_len, a, MAX_ATTRS);
    if (n >= 1 && a[0].name == 'e')
        return EP_ESECURITY;
    if (n < 1 || a[0].name != 'v')
        return EP_EPROTO;
    uint8_t sig[32];
    size_t sl = 0;
    if (ep_auth__b64_decode(a[0].v, a[0].len, sig, sizeof(sig), &sl) != EP_EOK || sl != 32)
        return EP_EPROTO;
    if (!ep_auth__ct_eq(sig, c->server_sig, 32))
        return EP_ESECURITY;
    c->phase = 2;
    return EP_EOK;
}

void ep_scram_client_free(ep_scram_client *c)
{
    if (c == NULL)
        return;
    if (c->pass != NULL) {
        OPENSSL_cleanse(c->pass, c->plen);
        free(c->pass);
    }
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}
