/*
 * fuzz_auth_scram.c - libFuzzer harness for the SCRAM-SHA-256 message
 * parsers.
 *
 * The input is split at the first 0x00 byte (a byte no SCRAM message may
 * contain): the first part is fed to the server as client-first, the rest
 * as client-final; the first part is also fed to a client as server-first
 * and the rest as server-final. The server knows one user ("user", the
 * RFC 7677 credentials) and uses the RFC's server nonce, so a corpus seeded
 * with the RFC exchange reaches the proof check. Client iteration counts
 * are capped by the harness's lookup, never by the input: server-first
 * inputs with huge counts are refused by the client's own limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/auth/auth_int.h"
#include "svc/auth/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SALT[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};
static const char STORED[] = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=";
static const char SERVER[] = "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

static ep_err lookup(void *ud, const char *user, size_t len, ep_scram_cred *out)
{
    (void)ud;
    if (len != 4 || memcmp(user, "user", 4) != 0)
        return EP_ENOTFOUND;
    size_t n;
    out->iterations = 4096;
    memcpy(out->salt, SALT, sizeof(SALT));
    out->salt_len = sizeof(SALT);
    ep_auth__b64_decode(STORED, strlen(STORED), out->stored_key, 32, &n);
    ep_auth__b64_decode(SERVER, strlen(SERVER), out->server_key, 32, &n);
    return EP_EOK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ep_scram_server *srv;
    if (srv == NULL) {
        if (ep_scram_server_new(&srv, lookup, NULL) != EP_EOK)
            abort();
        ep_scram__server_fixed_nonce(srv, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    }
    const uint8_t *sep = memchr(data, 0, size);
    size_t n1 = sep ? (size_t)(sep - data) : size;
    const uint8_t *m2 = sep ? sep + 1 : data + size;
    size_t n2 = sep ? size - n1 - 1 : 0;

    void *state = NULL;
    const uint8_t *out;
    size_t out_len;
    ep_scram_result r = ep_scram_server_step(srv, &state, "fuzz", data, n1, &out, &out_len);
    if (r == EP_SCRAM_CONTINUE) {
        if (out == NULL || out_len == 0)
            abort();
        r = ep_scram_server_step(srv, &state, "fuzz", m2, n2, &out, &out_len);
        if (r == EP_SCRAM_SUCCESS && ep_scram_server_username(state) == NULL)
            abort();
        if (r == EP_SCRAM_CONTINUE)
            abort(); /* two steps at most */
    } else if (r == EP_SCRAM_SUCCESS) {
        abort(); /* never on the first message */
    }
    ep_scram_server_done(srv, state);

    /* client side: only when the iteration count is cheap, to keep the
     * fuzzer fast (the count is input-controlled) */
    if (n1 < 200) {
        const char *i = memmem(data, n1, ",i=", 3);
        if (i != NULL && (size_t)(i - (const char *)data) + 8 <= n1 &&
            memcmp(i, ",i=4096", 7) == 0) {
            ep_scram_client *c = NULL;
            if (ep_scram_client_new(&c, "user", "pencil", 6) != EP_EOK)
                abort();
            ep_scram__client_fixed_nonce(c, "rOprNGfwEbeRWgbNEkqO");
            if (ep_scram_client_final(c, data, n1, &out, &out_len) == EP_EOK)
                (void)ep_scram_client_verify(c, m2, n2);
            ep_scram_client_free(c);
        }
    }
    return 0;
}
