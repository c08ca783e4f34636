/* msg.c - see msg.h. One allocation per message: header, topic, props, payload. */
#include "core/msg.h"

#include <stdlib.h>
#include <string.h>

static atomic_size_t live_count;
static atomic_size_t live_bytes;

ep_msg *ep_msg_new(const char *topic, size_t topic_len, const void *props, size_t props_len,
                   const void *payload, size_t payload_len)
{
    if (topic_len > UINT16_MAX || props_len > UINT32_MAX || payload_len > UINT32_MAX)
        return NULL;
    size_t total = sizeof(ep_msg) + topic_len + 1 + props_len + payload_len;
    ep_msg *m = malloc(total);
    if (m == NULL)
        return NULL;
    memset(m, 0, sizeof(*m));
    atomic_init(&m->_refs, 1);
    m->topic = (char *)(m + 1);
    m->props = (uint8_t *)m->topic + topic_len + 1;
    m->payload = m->props + props_len;
    m->topic_len = (uint16_t)topic_len;
    m->props_len = (uint32_t)props_len;
    m->payload_len = (uint32_t)payload_len;
    if (topic_len)
        memcpy(m->topic, topic, topic_len);
    m->topic[topic_len] = '\0';
    if (props_len)
        memcpy(m->props, props, props_len);
    if (payload_len)
        memcpy(m->payload, payload, payload_len);
    atomic_fetch_add_explicit(&live_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&live_bytes, total, memory_order_relaxed);
    return m;
}

void ep_msg_unref(ep_msg *m)
{
    if (m == NULL)
        return;
    if (atomic_fetch_sub_explicit(&m->_refs, 1, memory_order_acq_rel) == 1) {
        atomic_fetch_sub_explicit(&live_count, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&live_bytes, ep_msg_size(m), memory_order_relaxed);
        free(m);
    }
}

ep_msg *ep_msg_unique(ep_msg *m)
{
    if (atomic_load_explicit(&m->_refs, memory_order_acquire) == 1)
        return m;
    ep_msg *c =
        ep_msg_new(m->topic, m->topic_len, m->props, m->props_len, m->payload, m->payload_len);
    if (c) {
        c->qos = m->qos;
        c->retain = m->retain;
        c->has_expiry = m->has_expiry;
        c->expiry_interval = m->expiry_interval;
        c->expiry_at_ms = m->expiry_at_ms;
        c->created_ms = m->created_ms;
    }
    ep_msg_unref(m);
    return c;
}

size_t ep_msg_live_count(void) { return atomic_load(&live_count); }
size_t ep_msg_live_bytes(void) { return atomic_load(&live_bytes); }
