/* log.c - formatting and the default stderr sink; see log.h. */
#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

ep_log_level ep_log_threshold = EP_LOG_INFO;

static ep_log_sink_fn log_sink;
static void *log_sink_ud;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

void ep_log_set_level(ep_log_level lvl) { ep_log_threshold = lvl; }

int ep_log_level_parse(const char *name, ep_log_level *out)
{
    for (int i = 0; i <= EP_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (ep_log_level)i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *out = EP_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *ep_log_level_name(ep_log_level lvl)
{
    return (lvl >= EP_LOG_TRACE && lvl <= EP_LOG_OFF) ? level_names[lvl] : "?";
}

void ep_log_set_sink(ep_log_sink_fn fn, void *ud)
{
    pthread_mutex_lock(&log_lock);
    log_sink = fn;
    log_sink_ud = ud;
    pthread_mutex_unlock(&log_lock);
}

void ep_log_write(ep_log_level lvl, const char *cat, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&log_lock);
    if (log_sink) {
        log_sink(log_sink_ud, lvl, cat, msg);
    } else {
        struct timeval tv;
        struct tm tm;
        char ts[32];
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03dZ %-5s %-7s %s\n", ts, (int)(tv.tv_usec / 1000),
                ep_log_level_name(lvl), cat, msg);
    }
    pthread_mutex_unlock(&log_lock);
}

int ep_ratelimit_allow(ep_ratelimit *rl, unsigned long long now_ms)
{
    if (now_ms - rl->window_start_ms >= rl->period_ms) {
        rl->window_start_ms = now_ms;
        rl->count = 0;
    }
    if (rl->count < rl->burst) {
        rl->count++;
        return 1;
    }
    rl->suppressed++;
    return 0;
}
