/*
 * capture_test.c - decodes a recorded node-opcua client <-> node-opcua
 * server session (tests/data/opcua/, see its README) chunk by chunk with our
 * framing (tcp.h) and codec, and re-encodes every chunk of the None session
 * to the same bytes.
 *
 * capture_none.txt: Hello, Acknowledge, OpenSecureChannel request and
 * response, GetEndpoints (node-opcua asks on every connection),
 * CreateSession, ActivateSession, Read, CloseSession and
 * CloseSecureChannel, all in clear: each chunk's header, security headers,
 * sequence header and service message are decoded, checked (types in the
 * expected order, request ids and handles matched, sequence numbers
 * consecutive per direction) and encoded again byte for byte.
 *
 * capture_basic256sha256.txt: node-opcua's GetEndpoints on a None
 * connection (decoded and re-encoded as above), then the same session with
 * Basic256Sha256 SignAndEncrypt, opened with our crypto using the private
 * keys of the throw-away certificates of the recording: each OPN is
 * decrypted with the receiver's key (RSA-OAEP), its signature verified with
 * the certificate the sender put in the asymmetric header (whose receiver
 * thumbprint must be the SHA-1 of the other side's certificate), its padding
 * checked and its OpenSecureChannel message decoded; the two nonces give
 * the symmetric keys (P_SHA256), with which every MSG and CLO is decrypted
 * (AES-256-CBC), its HMAC-SHA256 verified, padding removed and the service
 * message decoded. Encrypted chunks are not re-encoded (random nonces and
 * padding).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/opcua/arena.h"
#include "codec/opcua/binary.h"
#include "codec/opcua/gen/types.h"
#include "codec/opcua_crypto/cert.h"
#include "codec/opcua_crypto/crypto.h"
#include "codec/opcua_crypto/policy.h"
#include "svc/opcua/tcp.h"

#ifndef EP_UA_CAPTURE_DIR
#define EP_UA_CAPTURE_DIR "tests/data/opcua"
#endif

#define MAX_CHUNKS 64

typedef struct chunk {
    int conn;
    char dir; /* 'C' client to server, 'S' server to client */
    uint8_t *p;
    size_t n;
} chunk;

typedef struct capture {
    chunk c[MAX_CHUNKS];
    size_t n;
} capture;

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static void capture_load(capture *cap, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", EP_UA_CAPTURE_DIR, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    memset(cap, 0, sizeof(*cap));
    static char line[1 << 20];
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        assert_true(cap->n < MAX_CHUNKS);
        chunk *c = &cap->c[cap->n];
        char type[8], *hex = NULL;
        int off = 0;
        assert_int_equal(sscanf(line, "%d %c %7s %n", &c->conn, &c->dir, type, &off), 3);
        hex = line + off;
        size_t len = strcspn(hex, "\r\n");
        assert_true(len % 2 == 0 && len >= 16);
        c->n = len / 2;
        c->p = malloc(c->n);
        assert_non_null(c->p);
        for (size_t i = 0; i < c->n; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            assert_true(hi >= 0 && lo >= 0);
            c->p[i] = (uint8_t)(hi << 4 | lo);
        }
        assert_memory_equal(c->p, type, 4); /* "MSGF" etc. as labelled */
        cap->n++;
    }
    fclose(f);
    assert_true(cap->n > 0);
}

static void capture_free(capture *cap)
{
    for (size_t i = 0; i < cap->n; i++)
        free(cap->c[i].p);
}

/* ------------------------------------------------------ None session -- */

typedef struct dec {
    ep_ua__hdr h;
    uint32_t channel_id, token_id;
    ep_ua_string policy; /* OPN */
    ep_ua_bytestring cert, thumb;
    uint32_t seq, request_id;
    const ep_ua_type *type;
    void *body;
} dec;

/* Decodes one chunk of a None session; checks that the whole chunk is
 * consumed. */
static void decode_clear(const chunk *c, ep_ua_arena *a, dec *d)
{
    memset(d, 0, sizeof(*d));
    assert_int_equal(ep_ua__hdr_parse(c->p, c->n, &d->h), EP_EOK);
    assert_int_equal(d->h.size, c->n);
    assert_int_equal(d->h.chunk, 'F');
    size_t pos = 8;
    ep_ua_status st;
    d->channel_id = ep_ua__rd32(c->p + pos);
    pos += 4;
    if (d->h.type == EP_UA_MSG_OPN) {
        assert_int_equal(ep_ua_decode(c->p, c->n, &pos, EP_UA_T(String), &d->policy, a, NULL, &st),
                         EP_EOK);
        assert_int_equal(
            ep_ua_decode(c->p, c->n, &pos, EP_UA_T(ByteString), &d->cert, a, NULL, &st), EP_EOK);
        assert_int_equal(
            ep_ua_decode(c->p, c->n, &pos, EP_UA_T(ByteString), &d->thumb, a, NULL, &st), EP_EOK);
    } else {
        d->token_id = ep_ua__rd32(c->p + pos);
        pos += 4;
    }
    d->seq = ep_ua__rd32(c->p + pos);
    d->request_id = ep_ua__rd32(c->p + pos + 4);
    pos += 8;
    assert_int_equal(ep_ua_message_decode(c->p, c->n, &pos, &d->type, &d->body, a, NULL, &st),
                     EP_EOK);
    assert_int_equal(pos, c->n);
}

/* Encodes d again as a whole chunk. */
static void encode_clear(const dec *d, ep_buf *b)
{
    uint8_t head[12] = {0};
    head[0] = (uint8_t)d->h.type;
    head[1] = (uint8_t)(d->h.type >> 8);
    head[2] = (uint8_t)(d->h.type >> 16);
    head[3] = d->h.chunk;
    ep_ua__wr32(head + 8, d->channel_id);
    assert_int_equal(ep_buf_append(b, head, sizeof(head)), EP_EOK);
    uint8_t w[4];
    if (d->h.type == EP_UA_MSG_OPN) {
        assert_int_equal(ep_ua_encode(&d->policy, EP_UA_T(String), b), EP_EOK);
        assert_int_equal(ep_ua_encode(&d->cert, EP_UA_T(ByteString), b), EP_EOK);
        assert_int_equal(ep_ua_encode(&d->thumb, EP_UA_T(ByteString), b), EP_EOK);
    } else {
        ep_ua__wr32(w, d->token_id);
        assert_int_equal(ep_buf_append(b, w, 4), EP_EOK);
    }
    ep_ua__wr32(w, d->seq);
    assert_int_equal(ep_buf_append(b, w, 4), EP_EOK);
    ep_ua__wr32(w, d->request_id);
    assert_int_equal(ep_buf_append(b, w, 4), EP_EOK);
    assert_int_equal(ep_ua_message_encode(d->body, d->type, b), EP_EOK);
    ep_ua__wr32(ep_buf_head(b) + 4, (uint32_t)ep_buf_used(b));
}

static uint32_t req_handle(const dec *d)
{
    /* every request and response starts with its header; the handle sits
     * at the same place in both */
    if (d->type->name && strstr(d->type->name, "Response"))
        return ((const ep_ua_response_header *)d->body)->request_handle;
    return ((const ep_ua_request_header *)d->body)->request_handle;
}

static void test_none_session(void **state)
{
    (void)state;
    capture cap;
    capture_load(&cap, "capture_none.txt");
    static const struct {
        char dir;
        uint32_t msg;
        int type; /* EP_UA_TYPE_*, -1 for HEL/ACK */
    } want[] = {
        {'C', EP_UA_MSG_HEL, -1},
        {'S', EP_UA_MSG_ACK, -1},
        {'C', EP_UA_MSG_OPN, EP_UA_TYPE_OpenSecureChannelRequest},
        {'S', EP_UA_MSG_OPN, EP_UA_TYPE_OpenSecureChannelResponse},
        {'C', EP_UA_MSG_MSG, EP_UA_TYPE_GetEndpointsRequest},
        {'S', EP_UA_MSG_MSG, EP_UA_TYPE_GetEndpointsResponse},
        {'C', EP_UA_MSG_MSG, EP_UA_TYPE_CreateSessionRequest},
        {'S', EP_UA_MSG_MSG, EP_UA_TYPE_CreateSessionResponse},
        {'C', EP_UA_MSG_MSG, EP_UA_TYPE_ActivateSessionRequest},
        {'S', EP_UA_MSG_MSG, EP_UA_TYPE_ActivateSessionResponse},
        {'C', EP_UA_MSG_MSG, EP_UA_TYPE_ReadRequest},
        {'S', EP_UA_MSG_MSG, EP_UA_TYPE_ReadResponse},
        {'C', EP_UA_MSG_MSG, EP_UA_TYPE_CloseSessionRequest},
        {'S', EP_UA_MSG_MSG, EP_UA_TYPE_CloseSessionResponse},
        {'C', EP_UA_MSG_CLO, EP_UA_TYPE_CloseSecureChannelRequest},
    };
    assert_int_equal(cap.n, sizeof(want) / sizeof(want[0]));
    uint32_t channel = 0, token = 0, last_seq[2] = {0, 0}, pending_rid = 0, pending_handle = 0;
    for (size_t i = 0; i < cap.n; i++) {
        const chunk *c = &cap.c[i];
        print_message("chunk %zu: %c %.4s (%zu bytes)\n", i, c->dir, (const char *)c->p, c->n);
        assert_int_equal(c->conn, 1);
        assert_int_equal(c->dir, want[i].dir);
        ep_ua__hdr h;
        assert_int_equal(ep_ua__hdr_parse(c->p, c->n, &h), EP_EOK);
        assert_int_equal(h.type, want[i].msg);
        ep_buf b;
        ep_buf_init(&b, 0);
        if (h.type == EP_UA_MSG_HEL) {
            ep_ua__hello x;
            assert_int_equal(ep_ua__hello_decode(c->p, c->n, &x), EP_EOK);
            assert_true(x.url.len > 0);
            assert_int_equal(ep_ua__hello_encode(&b, &x), EP_EOK);
        } else if (h.type == EP_UA_MSG_ACK) {
            ep_ua__hello x;
            assert_int_equal(ep_ua__ack_decode(c->p, c->n, &x), EP_EOK);
            assert_true(x.recv_buffer >= 8192 && x.send_buffer >= 8192);
            assert_int_equal(ep_ua__ack_encode(&b, &x), EP_EOK);
        } else {
            ep_ua_arena a;
            ep_ua_arena_init(&a, 0, NULL);
            dec d;
            decode_clear(c, &a, &d);
            assert_ptr_equal(d.type, &ep_ua_types[want[i].type]);
            int side = c->dir == 'S';
            if (last_seq[side])
                assert_int_equal(d.seq, last_seq[side] + 1);
            last_seq[side] = d.seq;
            if (h.type == EP_UA_MSG_OPN) {
                static const char none[] = "http://opcfoundation.org/UA/SecurityPolicy#None";
                assert_int_equal(d.policy.len, strlen(none));
                assert_memory_equal(d.policy.data, none, d.policy.len);
                if (c->dir == 'S') {
                    const ep_ua_open_secure_channel_response *r = d.body;
                    channel = r->security_token.channel_id;
                    token = r->security_token.token_id;
                    assert_int_equal(d.channel_id, channel);
                    assert_int_not_equal(channel, 0);
                }
            } else {
                assert_int_equal(d.channel_id, channel);
                assert_int_equal(d.token_id, token);
            }
            /* a response answers the request before it: same request id
             * and request handle */
            if (c->dir == 'C') {
                pending_rid = d.request_id;
                pending_handle = req_handle(&d);
            } else {
                assert_int_equal(d.request_id, pending_rid);
                assert_int_equal(req_handle(&d), pending_handle);
                assert_int_equal(((const ep_ua_response_header *)d.body)->service_result,
                                 EP_UA_STATUS_Good);
            }
            if (want[i].type == EP_UA_TYPE_ReadResponse) {
                const ep_ua_read_response *r = d.body;
                assert_int_equal(r->results_len, 2);
                assert_true(r->results[0].mask & EP_UA_DATAVALUE_VALUE);
            }
            encode_clear(&d, &b);
            ep_ua_arena_fini(&a);
        }
        /* byte for byte the same chunk */
        assert_int_equal(ep_buf_used(&b), c->n);
        assert_memory_equal(ep_buf_head(&b), c->p, c->n);
        ep_buf_fini(&b);
    }
    capture_free(&cap);
}

/* ---------------------------------------------- Basic256Sha256 session -- */

static ep_ua_key *load_key(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", EP_UA_CAPTURE_DIR, name);
    ep_ua_key *k = NULL;
    assert_int_equal(ep_ua_key_load(path, &k), EP_EOK);
    return k;
}

/* Opens an OPN chunk: returns the sender's certificate (parsed) and decodes
 * the message into a. */
static ep_ua_cert *open_opn(const chunk *c, const ep_ua_policy *pol, const ep_ua_key *own,
                            const ep_ua_cert *own_cert, ep_ua_arena *a, dec *d)
{
    memset(d, 0, sizeof(*d));
    assert_int_equal(ep_ua__hdr_parse(c->p, c->n, &d->h), EP_EOK);
    assert_int_equal(d->h.type, EP_UA_MSG_OPN);
    assert_int_equal(d->h.size, c->n);
    d->channel_id = ep_ua__rd32(c->p + 8);
    size_t pos = 12;
    ep_ua_status st;
    assert_int_equal(ep_ua_decode(c->p, c->n, &pos, EP_UA_T(String), &d->policy, a, NULL, &st),
                     EP_EOK);
    assert_int_equal(ep_ua_decode(c->p, c->n, &pos, EP_UA_T(ByteString), &d->cert, a, NULL, &st),
                     EP_EOK);
    assert_int_equal(ep_ua_decode(c->p, c->n, &pos, EP_UA_T(ByteString), &d->thumb, a, NULL, &st),
                     EP_EOK);
    assert_ptr_equal(ep_ua_policy_find((const char *)d->policy.data, d->policy.len), pol);
    /* the receiver thumbprint names our certificate */
    assert_int_equal(d->thumb.len, 20);
    assert_memory_equal(d->thumb.data, ep_ua_cert_thumbprint(own_cert), 20);
    ep_ua_cert *sender = NULL;
    size_t used = 0;
    assert_int_equal(ep_ua_cert_parse(d->cert.data, d->cert.len, &sender, &used), EP_EOK);
    size_t pb, cb;
    assert_int_equal(ep_ua_asym_block_sizes(pol, own, &pb, &cb), EP_EOK);
    size_t enc = c->n - pos;
    assert_true(enc > 0 && enc % cb == 0);
    uint8_t *plain = malloc(pos + enc / cb * pb);
    assert_non_null(plain);
    memcpy(plain, c->p, pos);
    size_t pl = 0;
    assert_int_equal(ep_ua_asym_decrypt(pol, own, c->p + pos, enc, plain + pos, enc / cb * pb, &pl),
                     EP_EOK);
    size_t sig = ep_ua_asym_sig_size(pol, ep_ua_cert_key(sender));
    assert_true(pl > 8 + 1 + sig);
    /* signed: everything before the signature, headers in clear included
     * (the message size in the header is the encrypted one) */
    assert_int_equal(ep_ua_asym_verify(pol, ep_ua_cert_key(sender), plain, pos + pl - sig,
                                       plain + pos + pl - sig, sig),
                     EP_EOK);
    size_t end = pl - sig;
    uint8_t pad = plain[pos + end - 1]; /* 2048-bit keys: no extra byte */
    assert_true((size_t)pad + 1 <= end - 8);
    for (size_t i = end - 1 - pad; i < end; i++)
        assert_int_equal(plain[pos + i], pad);
    end -= (size_t)pad + 1;
    d->seq = ep_ua__rd32(plain + pos);
    d->request_id = ep_ua__rd32(plain + pos + 4);
    size_t bpos = pos + 8;
    assert_int_equal(
        ep_ua_message_decode(plain, pos + end, &bpos, &d->type, &d->body, a, NULL, &st), EP_EOK);
    assert_int_equal(bpos, pos + end);
    free(plain);
    return sender;
}

/* Opens a MSG/CLO chunk with the sender's keys (in place in a copy). */
static void open_sym(const chunk *c, const ep_ua_policy *pol, const ep_ua_sym_keys *k,
                     ep_ua_arena *a, dec *d)
{
    memset(d, 0, sizeof(*d));
    assert_int_equal(ep_ua__hdr_parse(c->p, c->n, &d->h), EP_EOK);
    assert_int_equal(d->h.chunk, 'F');
    d->channel_id = ep_ua__rd32(c->p + 8);
    d->token_id = ep_ua__rd32(c->p + 12);
    uint8_t *p = malloc(c->n);
    assert_non_null(p);
    memcpy(p, c->p, c->n);
    size_t n = c->n;
    assert_int_equal((n - 16) % pol->sym_block_len, 0);
    assert_int_equal(ep_ua_sym_decrypt(pol, k, p + 16, p + 16, n - 16), EP_EOK);
    size_t sig = pol->sym_sig_len;
    assert_int_equal(ep_ua_sym_verify(pol, k, p, n - sig, p + n - sig, sig), EP_EOK);
    size_t end = n - sig;
    uint8_t pad = p[end - 1];
    assert_true((size_t)pad + 1 <= end - 24);
    for (size_t i = end - 1 - pad; i < end; i++)
        assert_int_equal(p[i], pad);
    end -= (size_t)pad + 1;
    d->seq = ep_ua__rd32(p + 16);
    d->request_id = ep_ua__rd32(p + 20);
    size_t pos = 24;
    ep_ua_status st;
    assert_int_equal(ep_ua_message_decode(p, end, &pos, &d->type, &d->body, a, NULL, &st), EP_EOK);
    assert_int_equal(pos, end);
    free(p);
}

static void test_basic256sha256_session(void **state)
{
    (void)state;
    capture cap;
    capture_load(&cap, "capture_basic256sha256.txt");
    const ep_ua_policy *pol = ep_ua_policy_get(EP_UA_POLICY_BASIC256SHA256);
    ep_ua_key *skey = load_key("capture_server_key.pem");
    ep_ua_key *ckey = load_key("capture_client_key.pem");
    static const int want[] = {
        /* connection 1, None: node-opcua fetches the server certificate */
        -1, -1, EP_UA_TYPE_OpenSecureChannelRequest, EP_UA_TYPE_OpenSecureChannelResponse,
        EP_UA_TYPE_GetEndpointsRequest, EP_UA_TYPE_GetEndpointsResponse,
        EP_UA_TYPE_GetEndpointsRequest, EP_UA_TYPE_GetEndpointsResponse,
        EP_UA_TYPE_CloseSecureChannelRequest,
        /* connection 2, Basic256Sha256 SignAndEncrypt */
        -1, -1, EP_UA_TYPE_OpenSecureChannelRequest, EP_UA_TYPE_OpenSecureChannelResponse,
        EP_UA_TYPE_GetEndpointsRequest, EP_UA_TYPE_GetEndpointsResponse,
        EP_UA_TYPE_CreateSessionRequest, EP_UA_TYPE_CreateSessionResponse,
        EP_UA_TYPE_ActivateSessionRequest, EP_UA_TYPE_ActivateSessionResponse,
        EP_UA_TYPE_ReadRequest, EP_UA_TYPE_ReadResponse, EP_UA_TYPE_CloseSessionRequest,
        EP_UA_TYPE_CloseSessionResponse, EP_UA_TYPE_CloseSecureChannelRequest};
    assert_int_equal(cap.n, sizeof(want) / sizeof(want[0]));
    ep_ua_cert *server_cert = NULL, *client_cert = NULL;
    ep_ua_sym_keys ck, sk;
    memset(&ck, 0, sizeof(ck));
    memset(&sk, 0, sizeof(sk));
    uint8_t cnonce[64];
    size_t cnonce_len = 0;
    uint32_t channel = 0, token = 0, last_seq[2] = {0, 0}, pending_rid = 0;
    for (size_t i = 0; i < cap.n; i++) {
        const chunk *c = &cap.c[i];
        print_message("chunk %zu: %d %c %.4s (%zu bytes)\n", i, c->conn, c->dir, (const char *)c->p,
                      c->n);
        ep_ua__hdr h;
        assert_int_equal(ep_ua__hdr_parse(c->p, c->n, &h), EP_EOK);
        ep_ua_arena a;
        ep_ua_arena_init(&a, 0, NULL);
        dec d;
        memset(&d, 0, sizeof(d));
        if (h.type == EP_UA_MSG_HEL) {
            ep_ua__hello x;
            assert_int_equal(ep_ua__hello_decode(c->p, c->n, &x), EP_EOK);
            last_seq[0] = last_seq[1] = 0;
        } else if (h.type == EP_UA_MSG_ACK) {
            ep_ua__hello x;
            assert_int_equal(ep_ua__ack_decode(c->p, c->n, &x), EP_EOK);
        } else if (c->conn == 1) {
            decode_clear(c, &a, &d);
            ep_buf b;
            ep_buf_init(&b, 0);
            encode_clear(&d, &b);
            assert_int_equal(ep_buf_used(&b), c->n);
            assert_memory_equal(ep_buf_head(&b), c->p, c->n);
            ep_buf_fini(&b);
            if (d.type == EP_UA_T(GetEndpointsResponse)) {
                /* the server certificate node-opcua then uses */
                const ep_ua_get_endpoints_response *r = d.body;
                for (size_t k = 0; k < r->endpoints_len && server_cert == NULL; k++)
                    if (r->endpoints[k].server_certificate.len) {
                        size_t used = 0;
                        assert_int_equal(ep_ua_cert_parse(r->endpoints[k].server_certificate.data,
                                                          r->endpoints[k].server_certificate.len,
                                                          &server_cert, &used),
                                         EP_EOK);
                    }
            }
        } else if (h.type == EP_UA_MSG_OPN && c->dir == 'C') {
            /* the client's certificate is in its request: load it first to
             * name the receiver of the response */
            assert_non_null(server_cert);
            assert_true(ep_ua_cert_matches_key(server_cert, skey));
            client_cert = open_opn(c, pol, skey, server_cert, &a, &d);
            assert_true(ep_ua_cert_matches_key(client_cert, ckey));
            const ep_ua_open_secure_channel_request *r = d.body;
            assert_int_equal(r->security_mode, EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT);
            assert_int_equal(r->client_nonce.len, pol->nonce_len);
            memcpy(cnonce, r->client_nonce.data, r->client_nonce.len);
            cnonce_len = r->client_nonce.len;
        } else if (h.type == EP_UA_MSG_OPN) {
            ep_ua_cert *sender = open_opn(c, pol, ckey, client_cert, &a, &d);
            assert_true(ep_ua_cert_equal(sender, server_cert));
            ep_ua_cert_free(sender);
            const ep_ua_open_secure_channel_response *r = d.body;
            channel = r->security_token.channel_id;
            token = r->security_token.token_id;
            assert_int_equal(d.channel_id, channel);
            assert_int_equal(ep_ua_channel_keys_derive(pol, cnonce, cnonce_len,
                                                       r->server_nonce.data, r->server_nonce.len,
                                                       &ck, &sk),
                             EP_EOK);
        } else {
            open_sym(c, pol, c->dir == 'C' ? &ck : &sk, &a, &d);
            assert_int_equal(d.channel_id, channel);
            assert_int_equal(d.token_id, token);
        }
        if (want[i] >= 0) {
            assert_ptr_equal(d.type, &ep_ua_types[want[i]]);
            int side = c->dir == 'S';
            if (last_seq[side])
                assert_int_equal(d.seq, last_seq[side] + 1);
            last_seq[side] = d.seq;
            if (c->dir == 'C') {
                pending_rid = d.request_id;
            } else {
                assert_int_equal(d.request_id, pending_rid);
                assert_int_equal(((const ep_ua_response_header *)d.body)->service_result,
                                 EP_UA_STATUS_Good);
            }
            if (d.type == EP_UA_T(ReadResponse)) {
                const ep_ua_read_response *r = d.body;
                assert_int_equal(r->results_len, 2);
                assert_true(r->results[0].mask & EP_UA_DATAVALUE_VALUE);
            }
        } else {
            assert_true(h.type == EP_UA_MSG_HEL || h.type == EP_UA_MSG_ACK);
        }
        ep_ua_arena_fini(&a);
    }
    ep_ua_sym_keys_clear(&ck);
    ep_ua_sym_keys_clear(&sk);
    ep_ua_cert_free(server_cert);
    ep_ua_cert_free(client_cert);
    ep_ua_key_free(skey);
    ep_ua_key_free(ckey);
    capture_free(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none_session),
        cmocka_unit_test(test_basic256sha256_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
