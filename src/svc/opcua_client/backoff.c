/*
 * backoff.c - reconnect delays: exponential from min to max with jitter.
 *
 * Jitter (up to a quarter of the delay, subtracted) keeps a fleet of
 * clients that lost the same server from reconnecting in lock step. The
 * random source is a seeded xorshift so tests get reproducible delays.
 */
#include "svc/opcua_client/uac_int.h"

void ep_uac__backoff_init(ep_uac_backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed)
{
    b->min_ms = min_ms ? min_ms : 1;
    b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
    b->attempt = 0;
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

uint32_t ep_uac__backoff_next(ep_uac_backoff *b)
{
    uint64_t d = b->min_ms;
    for (uint32_t i = 0; i < b->attempt && d < b->max_ms; i++)
        d *= 2;
    if (d > b->max_ms)
        d = b->max_ms;
    if (b->attempt < 64)
        b->attempt++;
    uint64_t jitter = d / 4;
    if (jitter)
        d -= xorshift(&b->rng) % (jitter + 1);
    return (uint32_t)d;
}

void ep_uac__backoff_reset(ep_uac_backoff *b) { b->attempt = 0; }
