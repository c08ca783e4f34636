/*
 * topic.c - Topic Names, Topic Filters, matching and shared subscriptions
 * (MQTT v5 section 4.7 and 4.8, identical rules in 3.1.1 section 4.7).
 *
 * Matching walks filter and topic once, level by level, without splitting or
 * allocating. Topics beginning with '$' are never matched by a filter that
 * starts with a wildcard [MQTT-4.7.2-1]. "sport/#" also matches "sport" (the
 * parent level), and "+" matches an empty level.
 */
#include "codec/mqtt/wire.h"

#include <string.h>

bool ep_mqtt_slice_eq(ep_mqtt_slice a, ep_mqtt_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool ep_mqtt__topic_name_syntax(ep_mqtt_slice t)
{
    if (t.len == 0 || t.len > 0xFFFF)
        return false;
    return memchr(t.p, '+', t.len) == NULL && memchr(t.p, '#', t.len) == NULL;
}

/* Wildcard rules only; no $share handling. */
static bool filter_levels_ok(const uint8_t *p, size_t n)
{
    if (n == 0)
        return false;
    size_t level_start = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '/') {
            level_start = i + 1;
        } else if (c == '+') {
            /* '+' must occupy the whole level [MQTT-4.7.1-2]. */
            if (i != level_start || (i + 1 < n && p[i + 1] != '/'))
                return false;
        } else if (c == '#') {
            /* '#' alone in the last level [MQTT-4.7.1-1]. */
            if (i != level_start || i + 1 != n)
                return false;
        }
    }
    return true;
}

static const uint8_t share_prefix[] = "$share/";
#define SHARE_PREFIX_LEN (sizeof(share_prefix) - 1)

ep_err ep_mqtt_topic_share_split(ep_mqtt_slice f, ep_mqtt_slice *group, ep_mqtt_slice *filter)
{
    if (f.len < SHARE_PREFIX_LEN || memcmp(f.p, share_prefix, SHARE_PREFIX_LEN))
        return EP_ENOTFOUND;
    const uint8_t *g = f.p + SHARE_PREFIX_LEN;
    size_t rest = f.len - SHARE_PREFIX_LEN;
    const uint8_t *slash = memchr(g, '/', rest);
    if (slash == NULL)
        return EP_EPROTO; /* ShareName must be followed by '/' */
    size_t glen = (size_t)(slash - g);
    if (glen == 0 || memchr(g, '+', glen) || memchr(g, '#', glen))
        return EP_EPROTO;
    const uint8_t *fp = slash + 1;
    size_t flen = rest - glen - 1;
    if (!filter_levels_ok(fp, flen))
        return EP_EPROTO;
    if (group) {
        group->p = g;
        group->len = (uint32_t)glen;
    }
    if (filter) {
        filter->p = fp;
        filter->len = (uint32_t)flen;
    }
    return EP_EOK;
}

bool ep_mqtt__topic_filter_syntax(ep_mqtt_slice f)
{
    if (f.len == 0 || f.len > 0xFFFF)
        return false;
    ep_err err = ep_mqtt_topic_share_split(f, NULL, NULL);
    if (err == EP_EOK)
        return true;
    if (err != EP_ENOTFOUND)
        return false;
    return filter_levels_ok(f.p, f.len);
}

bool ep_mqtt_topic_name_valid(ep_mqtt_slice topic)
{
    return ep_mqtt__topic_name_syntax(topic) && ep_mqtt_utf8_check(topic) == EP_EOK;
}

bool ep_mqtt_topic_filter_valid(ep_mqtt_slice filter)
{
    return ep_mqtt__topic_filter_syntax(filter) && ep_mqtt_utf8_check(filter) == EP_EOK;
}

bool ep_mqtt_topic_match(ep_mqtt_slice filter, ep_mqtt_slice topic)
{
    const uint8_t *f = filter.p, *t = topic.p;
    const size_t fn = filter.len, tn = topic.len;
    size_t fi = 0, ti = 0;

    if (tn > 0 && t[0] == '$' && fn > 0 && (f[0] == '+' || f[0] == '#'))
        return false;

    while (fi < fn) {
        /* Both fi and ti are at the start of a level here. */
        if (f[fi] == '#')
            return true;
        if (f[fi] == '+') {
            while (ti < tn && t[ti] != '/')
                ti++;
            fi++;
        } else {
            while (fi < fn && f[fi] != '/') {
                if (ti >= tn || t[ti] != f[fi])
                    return false;
                fi++;
                ti++;
            }
            if (ti < tn && t[ti] != '/')
                return false;
        }
        /* Both at the end of a level. */
        if (fi == fn)
            return ti == tn;
        if (ti == tn) /* topic ended: only "/#" may remain ("a/#" ~ "a") */
            return fn - fi == 2 && f[fi + 1] == '#';
        fi++;
        ti++;
    }
    return ti == tn;
}

uint32_t ep_mqtt_topic_levels(ep_mqtt_slice topic)
{
    uint32_t n = 1;
    for (uint32_t i = 0; i < topic.len; i++)
        n += topic.p[i] == '/';
    return n;
}
