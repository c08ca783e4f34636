/*
 * ratelimit.h - failed-authentication limiter per source address.
 *
 * Each source address (IPv6 addresses aggregated to a prefix, /64 by
 * default, since one host usually owns a whole /64) has a failure count.
 * The first `free_failures` failures cost nothing; after that the address
 * is refused until last_failure + base_delay * 2^(k-1) (k = failures past
 * the free ones), capped at max_delay. A success resets the address, and
 * an address quiet for `forget_ms` starts over. Memory is bounded: at most
 * `capacity` addresses are tracked, in an LRU; a new address evicts the
 * least recently seen one.
 *
 * All functions are O(1), take one internal mutex, and may be called from
 * any thread (one limiter is shared by all broker workers: SO_REUSEPORT
 * spreads one attacker's connections across workers). Time is passed in
 * by the caller (ms, monotonic), so tests need no clock.
 *
 * Broker use, on the worker owning the connection:
 *   on accept or before checking credentials:
 *       if (!ep_auth_rl_allow(rl, &addr, now, NULL)) -> refuse/close
 *   on a failed authentication: ep_auth_rl_failure(rl, &addr, now)
 *   on success: ep_auth_rl_success(rl, &addr, now)
 */
#ifndef EP_SVC_AUTH_RATELIMIT_H
#define EP_SVC_AUTH_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* A source address: 4 bytes (IPv4) or 16 (IPv6). Make one with
 * ep_auth_rl_addr_parse or ep_auth_rl_addr_from_bytes. */
typedef struct ep_auth_rl_addr {
    uint8_t b[16];
    uint8_t len; /* 4 or 16 */
} ep_auth_rl_addr;

/* Options; zero-initialise, 0 selects the default. */
typedef struct ep_auth_rl_opts {
    uint32_t capacity;      /* addresses tracked; default 65536 */
    uint32_t free_failures; /* failures before any delay; default 5 */
    uint32_t base_delay_ms; /* first delay; default 1000 */
    uint32_t max_delay_ms;  /* cap; default 300000 (5 min) */
    uint32_t forget_ms;     /* idle time after which an address resets;
                               default 900000 (15 min) */
    uint8_t ipv6_prefix;    /* bits kept of IPv6 addresses; default 64 */
} ep_auth_rl_opts;

typedef struct ep_auth_rl_stats {
    uint64_t allowed, refused, failures, successes, evicted;
    uint32_t tracked;
} ep_auth_rl_stats;

typedef struct ep_auth_rl ep_auth_rl;

/* ep_auth_rl_addr_parse reads "192.0.2.1", "2001:db8::1" or
 * "::ffff:192.0.2.1" (mapped addresses become IPv4).
 * Returns EP_EOK or EP_EINVAL; *out untouched on error. */
ep_err ep_auth_rl_addr_parse(const char *s, ep_auth_rl_addr *out);

/* ep_auth_rl_addr_from_bytes takes 4 or 16 network-order bytes (e.g. from
 * a sockaddr_in/in6). Returns EP_EOK or EP_EINVAL for another length. */
ep_err ep_auth_rl_addr_from_bytes(const void *p, size_t len, ep_auth_rl_addr *out);

/* ep_auth_rl_new allocates a limiter of opts->capacity entries up front
 * (about 64 bytes each). Borrows opts. Returns EP_EOK, EP_EINVAL
 * (ipv6_prefix over 128), EP_ENOMEM. */
ep_err ep_auth_rl_new(ep_auth_rl **out, const ep_auth_rl_opts *opts);
/* ep_auth_rl_free frees the limiter; NULL accepted. No concurrent calls. */
void ep_auth_rl_free(ep_auth_rl *rl);

/* ep_auth_rl_allow reports whether an authentication attempt from addr may
 * proceed at time now. When refused, *retry_after_ms (may be NULL) says how
 * long until it would be allowed. Does not create an entry. */
bool ep_auth_rl_allow(ep_auth_rl *rl, const ep_auth_rl_addr *addr, uint64_t now,
                      uint64_t *retry_after_ms);
/* ep_auth_rl_failure records a failed authentication from addr. */
void ep_auth_rl_failure(ep_auth_rl *rl, const ep_auth_rl_addr *addr, uint64_t now);
/* ep_auth_rl_success forgets addr's failures. */
void ep_auth_rl_success(ep_auth_rl *rl, const ep_auth_rl_addr *addr, uint64_t now);

void ep_auth_rl_get_stats(ep_auth_rl *rl, ep_auth_rl_stats *out);

#endif
