/*
 * fuzz_mqtt_topic.c - topic filter parser, shared-subscription split and
 * matcher, checked against a simple level-splitting reference matcher.
 *
 * Input: byte 0 = length of the filter (mod remaining size), then filter
 * bytes, then topic bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mqtt/packet.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* Reference: split both into levels and compare level by level. */
static size_t level_end(const uint8_t *p, size_t n, size_t i)
{
    while (i < n && p[i] != '/')
        i++;
    return i;
}

static bool ref_match(const uint8_t *f, size_t fn, const uint8_t *t, size_t tn)
{
    if (tn && t[0] == '$' && fn && (f[0] == '+' || f[0] == '#'))
        return false;
    size_t fi = 0, ti = 0;
    bool f_done = false, t_done = false;
    for (;;) {
        if (f_done || t_done)
            break;
        size_t fe = level_end(f, fn, fi), te = level_end(t, tn, ti);
        size_t fl = fe - fi, tl = te - ti;
        if (fl == 1 && f[fi] == '#')
            return true;
        if (!(fl == 1 && f[fi] == '+') && (fl != tl || memcmp(f + fi, t + ti, fl) != 0))
            return false;
        f_done = fe >= fn;
        t_done = te >= tn;
        fi = fe + 1;
        ti = te + 1;
    }
    if (f_done && t_done)
        return true;
    /* topic has no more levels: the filter may only continue with "/#" */
    if (t_done && !f_done)
        return fn - fi == 1 && f[fi] == '#';
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t k = size > 1 ? data[0] % size : 0;
    const uint8_t *f = data + 1;
    size_t fn = k < size - 1 ? k : size - 1;
    const uint8_t *t = f + fn;
    size_t tn = size - 1 - fn;
    ep_mqtt_slice filter = ep_mqtt_slice_make(f, fn), topic = ep_mqtt_slice_make(t, tn);

    bool fv = ep_mqtt_topic_filter_valid(filter);
    bool tv = ep_mqtt_topic_name_valid(topic);
    (void)ep_mqtt_utf8_check_strict(topic);
    CHECK(ep_mqtt_topic_levels(topic) >= 1);

    ep_mqtt_slice g, sf;
    ep_err err = ep_mqtt_topic_share_split(filter, &g, &sf);
    if (err == EP_EOK) {
        CHECK(g.len > 0 && sf.len > 0);
        CHECK(g.p + g.len + 1 == sf.p && sf.p + sf.len == f + fn);
        CHECK(memchr(g.p, '/', g.len) == NULL);
        /* the inner filter is plain filter syntax (a nested "$share/" is
         * just literal text there) */
        if (fv && ep_mqtt_topic_share_split(sf, NULL, NULL) == EP_ENOTFOUND)
            CHECK(ep_mqtt_topic_filter_valid(sf));
    } else {
        CHECK(err == EP_ENOTFOUND || err == EP_EPROTO);
        if (err == EP_EPROTO)
            CHECK(!fv);
        sf = filter;
    }
    if (fv && tv) {
        bool m = ep_mqtt_topic_match(sf, topic);
        CHECK(m == ref_match(sf.p, sf.len, topic.p, topic.len));
    }
    if (tv && ep_mqtt_topic_share_split(topic, NULL, NULL) == EP_ENOTFOUND) {
        /* a valid topic name (not "$share/...") is also a valid filter that
         * matches itself */
        CHECK(ep_mqtt_topic_filter_valid(topic));
        CHECK(ep_mqtt_topic_match(topic, topic));
    }
    if (tv && !(tn && t[0] == '$')) {
        CHECK(ep_mqtt_topic_match(EP_MQTT_STR("#"), topic));
    }
    return 0;
}
