/*
 * clock.h - time sources.
 *
 * Every loop reads time through an ep_clock so tests can substitute a fake
 * one and advance it by hand (open62541 UA_fakeSleep): keepalive, session
 * expiry and will delays become deterministic to test.
 */
#ifndef EP_CORE_CLOCK_H
#define EP_CORE_CLOCK_H

#include <stdint.h>

typedef struct ep_clock {
    uint64_t (*now_ms)(void *ud); /* monotonic milliseconds */
    void *ud;
} ep_clock;

/* ep_clock_mono_ms/ns read CLOCK_MONOTONIC. Any thread. */
uint64_t ep_clock_mono_ms(void);
uint64_t ep_clock_mono_ns(void);
/* ep_clock_wall_ms reads CLOCK_REALTIME (Unix epoch milliseconds). */
uint64_t ep_clock_wall_ms(void);
/* ep_clock_system returns the process-wide monotonic clock. */
const ep_clock *ep_clock_system(void);

/* A fake clock for tests: starts at `start` and moves only when advanced. */
typedef struct ep_fakeclock {
    ep_clock clock;
    uint64_t now;
} ep_fakeclock;

void ep_fakeclock_init(ep_fakeclock *fc, uint64_t start_ms);
void ep_fakeclock_advance(ep_fakeclock *fc, uint64_t ms);

#endif
