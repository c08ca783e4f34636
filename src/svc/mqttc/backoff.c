/*
 * backoff.c - reconnect delays.
 *
 * Exponential backoff with "equal jitter": the base delay doubles per failed
 * attempt from min to max, and the actual delay is drawn from [base/2, base]
 * so a fleet of clients that lost the same broker does not reconnect in
 * lockstep, while no client waits less than half the base.
 */
#include "svc/mqttc/mqttc_int.h"

uint32_t ep_mqttc__backoff(uint32_t min_ms, uint32_t max_ms, uint32_t attempt, bool jitter,
                           uint32_t rnd)
{
    if (max_ms < min_ms)
        max_ms = min_ms;
    uint64_t base = min_ms;
    for (uint32_t i = 0; i < attempt && base < max_ms; i++)
        base <<= 1;
    if (base > max_ms)
        base = max_ms;
    if (!jitter || base < 2)
        return (uint32_t)base;
    uint64_t half = base / 2;
    return (uint32_t)(base - half + rnd % (half + 1));
}

uint32_t ep_mqttc__rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (uint32_t)((x * UINT64_C(2685821657736338717)) >> 32);
}
