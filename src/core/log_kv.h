/*
 * log_kv.h - structured log output: `key=value` (logfmt) and JSON lines, as
 * sinks for core/log.h, selected by `--log-format text|kv|json`.
 *
 *   kv:   ts=2026-11-26T06:30:01.123Z level=info cat=broker msgid=broker.listen msg="listening on
 * 127.0.0.1:1883" json:
 * {"ts":"2026-11-26T06:30:01.123Z","level":"info","cat":"broker","msgid":"broker.listen","msg":"listening
 * on 127.0.0.1:1883"}
 *
 * msgid is a stable identifier of the kind of event, for alerting and log
 * queries that must survive rewording (nng's style). A call site gives it
 * with EP_LOG_ID; the message then starts with "[msgid] ", which the text
 * format shows as is and the structured formats move into the msgid field.
 * A message logged without one gets msgid "<cat>.untagged".
 * msgid syntax: [a-z0-9_-] segments joined by '.', at least two segments
 * ("broker.listen", "api.http.timeout"), at most 63 bytes.
 */
#ifndef EP_CORE_LOG_KV_H
#define EP_CORE_LOG_KV_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

typedef enum ep_log_format {
    EP_LOG_FORMAT_TEXT = 0, /* the default stderr layout of log.c */
    EP_LOG_FORMAT_KV,
    EP_LOG_FORMAT_JSON,
} ep_log_format;

/* EP_LOG_ID(level, category, "msgid", fmt, ...) logs with a stable msgid. */
#define EP_LOG_ID(lvl, cat, msgid, ...) EP_LOG(lvl, cat, "[" msgid "] " __VA_ARGS__)
#define EP_LOG_ID_DEBUG(cat, msgid, ...) EP_LOG_ID(EP_LOG_DEBUG, cat, msgid, __VA_ARGS__)
#define EP_LOG_ID_INFO(cat, msgid, ...) EP_LOG_ID(EP_LOG_INFO, cat, msgid, __VA_ARGS__)
#define EP_LOG_ID_WARN(cat, msgid, ...) EP_LOG_ID(EP_LOG_WARN, cat, msgid, __VA_ARGS__)
#define EP_LOG_ID_ERROR(cat, msgid, ...) EP_LOG_ID(EP_LOG_ERROR, cat, msgid, __VA_ARGS__)

/* ep_log_format_parse maps "text", "kv" (alias "logfmt") and "json".
 * Returns 0, or -1 for an unknown name. */
int ep_log_format_parse(const char *name, ep_log_format *out);

/* ep_log_kv_format formats one record (no trailing newline) into out
 * (n >= 1), truncating long messages; wall_ms is Unix time in ms. Pure and
 * thread-safe. Returns the length written. */
size_t ep_log_kv_format(ep_log_format fmt, uint64_t wall_ms, ep_log_level lvl, const char *cat,
                        const char *line, char *out, size_t n);

/* ep_log_kv_sink is an ep_log_sink_fn: ud points to an ep_log_kv. */
typedef struct ep_log_kv {
    ep_log_format fmt;
    int fd; /* written with one write(2) per record */
} ep_log_kv;
void ep_log_kv_sink(void *ud, ep_log_level lvl, const char *cat, const char *line);

/* ep_log_use_format installs the sink for fmt on stderr (TEXT restores the
 * default sink). Call at startup, before starting threads. */
void ep_log_use_format(ep_log_format fmt);

#endif
