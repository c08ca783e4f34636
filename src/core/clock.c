/* clock.c - see clock.h. */
#include "core/clock.h"

#include <time.h>

uint64_t ep_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ep_clock_mono_ms(void) { return ep_clock_mono_ns() / 1000000u; }

uint64_t ep_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t system_now(void *ud)
{
    (void)ud;
    return ep_clock_mono_ms();
}

static const ep_clock system_clock = {system_now, NULL};

const ep_clock *ep_clock_system(void) { return &system_clock; }

static uint64_t fake_now(void *ud) { return ((ep_fakeclock *)ud)->now; }

void ep_fakeclock_init(ep_fakeclock *fc, uint64_t start_ms)
{
    fc->clock.now_ms = fake_now;
    fc->clock.ud = fc;
    fc->now = start_ms;
}

void ep_fakeclock_advance(ep_fakeclock *fc, uint64_t ms) { fc->now += ms; }
