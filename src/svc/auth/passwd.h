/*
 * passwd.h - the password file: salted, iterated password hashes per user.
 *
 * Format (UTF-8 text, one entry per line; blank lines and lines starting
 * with '#' are ignored; a line is at most EP_PASSWD_MAX_LINE bytes):
 *
 *   USER:$pbkdf2-sha512$ITERATIONS$SALT$HASH
 *       HASH = PBKDF2-HMAC-SHA512(password, SALT, ITERATIONS), 64 bytes
 *   USER:$scram-sha-256$ITERATIONS$SALT$STOREDKEY$SERVERKEY
 *       SaltedPassword = PBKDF2-HMAC-SHA256(password, SALT, ITERATIONS)
 *       STOREDKEY = SHA-256(HMAC(SaltedPassword, "Client Key")), 32 bytes
 *       SERVERKEY = HMAC(SaltedPassword, "Server Key"), 32 bytes
 *
 * SALT, HASH and the keys are padded standard base64 (RFC 4648 section 4).
 * USER is everything before the first ':' and may not be empty or contain
 * control characters. ITERATIONS is decimal, 1..EP_PASSWD_MAX_ITERATIONS
 * without leading zeros. Salts are 8..64 bytes. Each user appears once.
 *
 * A pbkdf2-sha512 entry serves username/password logins; a scram-sha-256
 * entry serves both SCRAM-SHA-256 (see scram.h) and username/password
 * logins (the password is checked by recomputing StoredKey).
 *
 * Objects:
 *   ep_passwd       an immutable, refcounted snapshot of one parsed file.
 *                   Readers on any thread hold a reference; nothing in it
 *                   changes, so no lock is needed to use it.
 *   ep_passwd_file  a path plus its current snapshot, reloaded when the
 *                   file changes (mtime, size, inode). A reload that fails
 *                   keeps the previous snapshot.
 */
#ifndef EP_SVC_AUTH_PASSWD_H
#define EP_SVC_AUTH_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/err.h"

#define EP_PASSWD_DEFAULT_ITERATIONS 210000u     /* pbkdf2-sha512 */
#define EP_PASSWD_SCRAM_DEFAULT_ITERATIONS 4096u /* scram-sha-256, RFC 7677 */
#define EP_PASSWD_MIN_ITERATIONS 1000u           /* what `edgeplane passwd` accepts */
#define EP_PASSWD_MAX_ITERATIONS 100000000u
#define EP_PASSWD_SALT_LEN 16u
#define EP_PASSWD_MIN_SALT 8u
#define EP_PASSWD_MAX_SALT 64u
#define EP_PASSWD_MAX_USER 1024u       /* bytes */
#define EP_PASSWD_MAX_PASSWORD 65535u  /* bytes, the MQTT limit */
#define EP_PASSWD_MAX_LINE 4096u       /* bytes, without the newline */
#define EP_PASSWD_MAX_FILE (64u << 20) /* bytes */

typedef enum ep_passwd_kind {
    EP_PASSWD_PBKDF2_SHA512 = 1,
    EP_PASSWD_SCRAM_SHA256 = 2,
} ep_passwd_kind;

/* One user's entry. In a snapshot, `user` points into the snapshot. */
typedef struct ep_passwd_entry {
    const char *user; /* NUL-terminated, user_len bytes */
    size_t user_len;
    ep_passwd_kind kind;
    uint32_t iterations;
    uint8_t salt[EP_PASSWD_MAX_SALT];
    size_t salt_len;
    uint8_t hash[64];       /* PBKDF2_SHA512: the derived key */
    uint8_t stored_key[32]; /* SCRAM_SHA256 */
    uint8_t server_key[32]; /* SCRAM_SHA256 */
} ep_passwd_entry;

typedef struct ep_passwd ep_passwd;

/* ep_passwd_parse parses len bytes of file text. `name` labels messages
 * ("users.pw:3: iterations: expected ..."), one per bad line, added to errs
 * (required). Borrows all arguments; *out is set only on success.
 * Any thread. Returns: EP_EOK; EP_ECONFIG when any line is bad (nothing is
 * returned: a half-read password file would lock users out silently);
 * EP_ETOOBIG for more than EP_PASSWD_MAX_FILE bytes; EP_ENOMEM. */
ep_err ep_passwd_parse(const char *name, const char *text, size_t len, ep_passwd **out,
                       ep_cfg_errs *errs);

/* ep_passwd_load reads and parses the file at path (blocking I/O).
 * Returns as ep_passwd_parse, plus EP_EIO (reported in errs). */
ep_err ep_passwd_load(const char *path, ep_passwd **out, ep_cfg_errs *errs);

/* ep_passwd_ref takes a reference (returns pw); ep_passwd_unref drops one
 * and frees the snapshot with the last. Any thread; NULL is accepted. */
ep_passwd *ep_passwd_ref(ep_passwd *pw);
void ep_passwd_unref(ep_passwd *pw);

/* ep_passwd_count / ep_passwd_at iterate the entries (sorted by user). */
size_t ep_passwd_count(const ep_passwd *pw);
const ep_passwd_entry *ep_passwd_at(const ep_passwd *pw, size_t i);

/* ep_passwd_generation returns a process-unique number for this snapshot;
 * a reload always gives a new one (the verification cache keys on it). */
uint64_t ep_passwd_generation(const ep_passwd *pw);

/* ep_passwd_lookup finds user (len bytes, need not be NUL-terminated).
 * Returns a pointer into pw (valid while the caller holds pw) or NULL.
 * O(log n), no allocation, any thread. */
const ep_passwd_entry *ep_passwd_lookup(const ep_passwd *pw, const void *user, size_t len);

/* ep_passwd_entry_check compares password (len bytes) with entry e in
 * constant time. CPU-expensive by design (e->iterations rounds of PBKDF2):
 * never call it on an event-loop thread; see verify.h.
 * Returns: EP_EOK on a match; EP_ESECURITY on a mismatch; EP_ETOOBIG for a
 * password over EP_PASSWD_MAX_PASSWORD; EP_ECRYPTO. */
ep_err ep_passwd_entry_check(const ep_passwd_entry *e, const void *password, size_t len);

/* ep_passwd_verify looks user up in pw and checks password. For an unknown
 * user it still spends the time of one default-cost check, so response
 * time does not reveal which users exist. CPU-expensive (see above).
 * Returns: EP_EOK; EP_ESECURITY (wrong password); EP_ENOTFOUND (no such
 * user; the caller may try its next authentication method); EP_ETOOBIG;
 * EP_ECRYPTO. */
ep_err ep_passwd_verify(const ep_passwd *pw, const void *user, size_t ulen, const void *password,
                        size_t plen);

/* ep_passwd_entry_make fills *out for user/password: a fresh random
 * EP_PASSWD_SALT_LEN-byte salt and the hash (or SCRAM keys) of `kind` with
 * `iterations` (0 = the kind's default). out->user is set to user (borrowed).
 * CPU-expensive. Returns: EP_EOK; EP_EINVAL (bad user, iterations out of
 * 1..EP_PASSWD_MAX_ITERATIONS, unknown kind); EP_ETOOBIG; EP_ECRYPTO. */
ep_err ep_passwd_entry_make(const char *user, const void *password, size_t plen,
                            ep_passwd_kind kind, uint32_t iterations, ep_passwd_entry *out);

/* ep_passwd_entry_format writes e as one line (no newline, NUL-terminated)
 * into buf. Returns EP_EOK or EP_ETOOBIG when size is too small (buf is then
 * an empty string). EP_PASSWD_MAX_LINE + 1 bytes are always enough. */
ep_err ep_passwd_entry_format(const ep_passwd_entry *e, char *buf, size_t size);

/* ep_passwd_user_valid reports whether user (len bytes) can be stored:
 * 1..EP_PASSWD_MAX_USER bytes, no ':' and no control characters. */
bool ep_passwd_user_valid(const char *user, size_t len);

/* ep_passwd_file_update rewrites the file at path with user's line replaced
 * by e (added at the end if absent), or removed when e is NULL. Every other
 * line, comments included, is kept byte for byte. The new file is written
 * to a temporary file in the same directory with mode 0600, fsynced and
 * renamed over path, so readers see the old or the new file, never a mix.
 * A missing file is created (when adding). The existing file must parse
 * cleanly (errors are reported in errs and nothing is written).
 * Blocking I/O; for the CLI. Returns: EP_EOK; EP_ENOTFOUND (removing an
 * absent user); EP_EINVAL (bad user); EP_ECONFIG; EP_EIO; EP_ENOMEM. */
ep_err ep_passwd_file_update(const char *path, const char *user, const ep_passwd_entry *e,
                             ep_cfg_errs *errs);

/* ------------------------------------------------------------------------ */
/* A watched file                                                            */

typedef struct ep_passwd_file ep_passwd_file;

/* ep_passwd_file_open loads path (copied). Returns as ep_passwd_load; *out
 * is set only on success. Blocking I/O. */
ep_err ep_passwd_file_open(const char *path, ep_passwd_file **out, ep_cfg_errs *errs);

/* ep_passwd_file_reload re-reads the file if its mtime, size or inode
 * changed (or always, with force). On success the new snapshot replaces the
 * current one atomically; readers holding the old one keep it until they
 * unref. On failure the current snapshot stays and errs says why.
 * *changed (may be NULL) tells whether a new snapshot was installed.
 * Blocking I/O (one stat when unchanged): call it from a control thread or
 * a timer that tolerates a short stall, not per login. One reloader at a
 * time (serialised inside). Returns as ep_passwd_load. */
ep_err ep_passwd_file_reload(ep_passwd_file *f, bool force, bool *changed, ep_cfg_errs *errs);

/* ep_passwd_file_get returns a new reference to the current snapshot
 * (never NULL). Any thread; a mutex held for a pointer copy. */
ep_passwd *ep_passwd_file_get(ep_passwd_file *f);

/* ep_passwd_file_free drops the file's reference. Snapshots still held by
 * readers stay valid. NULL is accepted. */
void ep_passwd_file_free(ep_passwd_file *f);

#endif
