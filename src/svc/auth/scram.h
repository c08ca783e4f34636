/*
 * scram.h - SCRAM-SHA-256 (RFC 5802, RFC 7677) for MQTT 5 enhanced
 * authentication, server and client side.
 *
 * MQTT carries the SCRAM messages as Authentication Data with the
 * Authentication Method "SCRAM-SHA-256":
 *
 *   client CONNECT  data = client-first   "n,,n=user,r=<cnonce>"
 *   server AUTH 0x18 data = server-first  "r=<cnonce><snonce>,s=<salt>,i=<n>"
 *   client AUTH 0x18 data = client-final  "c=biws,r=<nonce>,p=<proof>"
 *   server CONNACK  data = server-final   "v=<server signature>"
 *
 * and the same through AUTH 0x19 for re-authentication. Channel binding
 * (SCRAM-SHA-256-PLUS, gs2 flag "p=") is not supported and is refused; "n"
 * and "y" are accepted. An authorization identity ("a=") is accepted only
 * when equal to the user name. Names and passwords are compared as UTF-8
 * bytes; SASLprep normalisation is not applied (clients must send the
 * same bytes that were used to create the entry).
 *
 * The server holds only StoredKey and ServerKey (the scram-sha-256 entries
 * of the password file, passwd.h), never a password, and each step costs a
 * few hashes: it runs directly on the broker worker, unlike plain password
 * checks. An unknown user (or a user with only a pbkdf2 entry) gets a
 * server-first message with a salt derived from the name and a secret, so
 * the exchange looks the same until it fails at the proof.
 */
#ifndef EP_SVC_AUTH_SCRAM_H
#define EP_SVC_AUTH_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "svc/auth/passwd.h"

#define EP_SCRAM_METHOD "SCRAM-SHA-256"
#define EP_SCRAM_MAX_MSG 2048u                   /* bytes per SCRAM message */
#define EP_SCRAM_MIN_ITERATIONS 4096u            /* RFC 7677: at least 4096 */
#define EP_SCRAM_MAX_CLIENT_ITERATIONS 10000000u /* the client refuses more */

/* Same values as ep_broker_auth_result (broker.h). */
typedef enum ep_scram_result {
    EP_SCRAM_SUCCESS = 0,
    EP_SCRAM_CONTINUE = 1,
    EP_SCRAM_FAIL = 2,
} ep_scram_result;

/* Server credentials of one user. */
typedef struct ep_scram_cred {
    uint32_t iterations;
    uint8_t salt[EP_PASSWD_MAX_SALT];
    size_t salt_len;
    uint8_t stored_key[32];
    uint8_t server_key[32];
} ep_scram_cred;

/* Looks up user (len bytes, not NUL-terminated). Called on the thread
 * running the step; must not block. Returns EP_EOK with *out filled, or
 * EP_ENOTFOUND. */
typedef ep_err (*ep_scram_lookup_fn)(void *ud, const char *user, size_t len, ep_scram_cred *out);

typedef struct ep_scram_server ep_scram_server;

/* ep_scram_server_new creates a server context using lookup(lookup_ud, ...)
 * for credentials. Returns EP_EOK, EP_ENOMEM, EP_ECRYPTO. */
ep_err ep_scram_server_new(ep_scram_server **out, ep_scram_lookup_fn lookup, void *lookup_ud);

/* ep_scram_server_new_passwd creates a server context whose credentials
 * are the scram-sha-256 entries of pf (borrowed: it must outlive the
 * server). Reloads of pf take effect for the next exchange. */
ep_err ep_scram_server_new_passwd(ep_scram_server **out, ep_passwd_file *pf);

/* ep_scram_server_free frees the context; every exchange state must have
 * been released with ep_scram_server_done. NULL accepted. */
void ep_scram_server_free(ep_scram_server *s);

/* ep_scram_server_step is an ep_broker_auth_method step: ud is the
 * ep_scram_server; *state is NULL on the first call of an exchange (the
 * client-first message) and is allocated here; `in` is the client's
 * Authentication Data. On CONTINUE and SUCCESS, *out and *out_len give the data
 * to send (server-first, server-final), owned by the state and valid until
 * the next call with it. client_id is not used. Thread: the worker that
 * owns the connection; the server context may be shared by all workers.
 * Returns CONTINUE after client-first, SUCCESS after a valid client-final,
 * FAIL for anything else (malformed message, unknown user, wrong proof,
 * nonce mismatch, out of memory, a call after the exchange ended). */
ep_scram_result ep_scram_server_step(void *ud, void **state, const char *client_id,
                                     const uint8_t *in, size_t in_len, const uint8_t **out,
                                     size_t *out_len);

/* ep_scram_server_done frees an exchange state (NULL accepted). */
void ep_scram_server_done(void *ud, void *state);

/* ep_scram_server_username returns the authenticated user name (decoded,
 * NUL-terminated, owned by state) once the step returned SUCCESS, else
 * NULL. The broker uses it as the principal's username for authorization
 * (and must check that a re-authentication keeps the same name). */
const char *ep_scram_server_username(const void *state);

/* ------------------------------------------------------------------------ */
/* Client                                                                    */

typedef struct ep_scram_client ep_scram_client;

/* ep_scram_client_new prepares an exchange for user/password (copied) with
 * a fresh random nonce. Returns EP_EOK, EP_EINVAL (empty or over-long user
 * or password), EP_ENOMEM, EP_ECRYPTO. */
ep_err ep_scram_client_new(ep_scram_client **out, const char *user, const void *password,
                           size_t plen);

/* ep_scram_client_first gives the client-first message (owned by c, valid
 * until c is freed). Returns EP_EOK. */
ep_err ep_scram_client_first(ep_scram_client *c, const uint8_t **out, size_t *out_len);

/* ep_scram_client_final parses server-first and computes client-final
 * (owned by c). CPU: PBKDF2 with the server's iteration count.
 * Returns EP_EOK; EP_EPROTO (malformed, nonce not extending ours,
 * iterations below EP_SCRAM_MIN_ITERATIONS or above the client maximum,
 * called out of order); EP_ECRYPTO. */
ep_err ep_scram_client_final(ep_scram_client *c, const uint8_t *in, size_t in_len,
                             const uint8_t **out, size_t *out_len);

/* ep_scram_client_verify checks server-final. Returns EP_EOK when the
 * server proved knowledge of ServerKey; EP_ESECURITY for a wrong signature
 * or a server error ("e=..."); EP_EPROTO for malformed input or out of
 * order. */
ep_err ep_scram_client_verify(ep_scram_client *c, const uint8_t *in, size_t in_len);

/* ep_scram_client_free wipes and frees c; NULL accepted. */
void ep_scram_client_free(ep_scram_client *c);

#endif
