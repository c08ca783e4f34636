/*
 * log.h - leveled, categorised logging for services (never for core/codec
 * libraries, which return errors and let the caller decide).
 *
 * EP_LOG tests the level before evaluating its arguments, so a disabled
 * debug line costs one comparison. Output is one line per record:
 *   2026-11-26T06:30:01.123Z info  broker  listening on 127.0.0.1:1883
 * The sink is pluggable (stderr by default) and thread-safe.
 */
#ifndef EP_CORE_LOG_H
#define EP_CORE_LOG_H

#include <stdarg.h>

typedef enum ep_log_level {
    EP_LOG_TRACE = 0,
    EP_LOG_DEBUG,
    EP_LOG_INFO,
    EP_LOG_WARN,
    EP_LOG_ERROR,
    EP_LOG_OFF,
} ep_log_level;

/* Categories are short static strings: "broker", "mqtt", "opcua", "config"... */
typedef void (*ep_log_sink_fn)(void *ud, ep_log_level lvl, const char *cat, const char *line);

extern ep_log_level ep_log_threshold;

/* ep_log_set_level sets the global threshold. Call before starting threads. */
void ep_log_set_level(ep_log_level lvl);
/* ep_log_level_parse maps "trace|debug|info|warn|error|off" to a level.
 * Returns 0 on success, -1 for an unknown name. */
int ep_log_level_parse(const char *name, ep_log_level *out);
const char *ep_log_level_name(ep_log_level lvl);
/* ep_log_set_sink replaces the sink; NULL restores stderr. */
void ep_log_set_sink(ep_log_sink_fn fn, void *ud);

void ep_log_write(ep_log_level lvl, const char *cat, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define EP_LOG(lvl, cat, ...)                                                                      \
    do {                                                                                           \
        if ((lvl) >= ep_log_threshold)                                                             \
            ep_log_write((lvl), (cat), __VA_ARGS__);                                               \
    } while (0)

#define EP_LOG_TRACE(cat, ...) EP_LOG(EP_LOG_TRACE, cat, __VA_ARGS__)
#define EP_LOG_DEBUG(cat, ...) EP_LOG(EP_LOG_DEBUG, cat, __VA_ARGS__)
#define EP_LOG_INFO(cat, ...) EP_LOG(EP_LOG_INFO, cat, __VA_ARGS__)
#define EP_LOG_WARN(cat, ...) EP_LOG(EP_LOG_WARN, cat, __VA_ARGS__)
#define EP_LOG_ERROR(cat, ...) EP_LOG(EP_LOG_ERROR, cat, __VA_ARGS__)

/* ep_ratelimit lets at most `burst` events through per `period_ms`; used for
 * repeated peer errors so a hostile client cannot flood the log. */
typedef struct ep_ratelimit {
    unsigned period_ms, burst;
    unsigned long long window_start_ms;
    unsigned count;
    unsigned long long suppressed;
} ep_ratelimit;

/* ep_ratelimit_allow returns 1 if the event may be logged now. Not
 * thread-safe: keep one limiter per thread or per object. */
int ep_ratelimit_allow(ep_ratelimit *rl, unsigned long long now_ms);

#endif
