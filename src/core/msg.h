/*
 * msg.h - ep_msg, the refcounted immutable message every service shares.
 *
 * A message is published once and then only read: the broker's fan-out, the
 * retained store, offline queues, bridges and the flow engine all hold
 * references to the same instance (mosquitto base_msg, nng nni_msg). Topic,
 * properties and payload sit in the same allocation as the header.
 *
 * `props` is the MQTT v5 property block to forward unchanged (payload format,
 * content type, response topic, correlation data, user properties in order);
 * per-delivery properties (topic alias, subscription identifiers, remaining
 * message expiry) are not in it: the sender adds those.
 *
 * Ownership: ep_msg_new returns one reference; ep_msg_ref adds one;
 * ep_msg_unref drops one and frees at zero. Refcounting is atomic, so any
 * thread may ref/unref. A transform that must change a message calls
 * ep_msg_unique() and gets a private copy (copy-on-write).
 */
#ifndef EP_CORE_MSG_H
#define EP_CORE_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct ep_msg {
    atomic_uint _refs;
    uint8_t qos;        /* QoS at which it was published */
    uint8_t retain;     /* RETAIN flag as published */
    uint8_t has_expiry; /* message expiry interval present */
    uint8_t _pad;
    uint32_t expiry_interval; /* seconds, as published */
    uint64_t expiry_at_ms;    /* monotonic deadline when has_expiry */
    uint64_t created_ms;      /* monotonic time of arrival */
    uint16_t topic_len;
    uint32_t props_len;
    uint32_t payload_len;
    char *topic; /* NUL-terminated */
    uint8_t *props;
    uint8_t *payload;
} ep_msg;

/* ep_msg_new copies topic, props and payload into one allocation.
 * Returns NULL on allocation failure (the caller sheds the peer). */
ep_msg *ep_msg_new(const char *topic, size_t topic_len, const void *props, size_t props_len,
                   const void *payload, size_t payload_len);

static inline ep_msg *ep_msg_ref(ep_msg *m)
{
    atomic_fetch_add_explicit(&m->_refs, 1, memory_order_relaxed);
    return m;
}

/* ep_msg_unref drops a reference; NULL is accepted. */
void ep_msg_unref(ep_msg *m);

/* ep_msg_unique returns m if the caller holds the only reference, otherwise a
 * private copy (and drops the caller's reference to m). NULL on ENOMEM, in
 * which case m's reference is still dropped (consume-always rule). */
ep_msg *ep_msg_unique(ep_msg *m);

/* ep_msg_size is the memory the message accounts for in queue limits. */
static inline size_t ep_msg_size(const ep_msg *m)
{
    return sizeof(*m) + m->topic_len + 1u + m->props_len + m->payload_len;
}

/* Global live-message counters for metrics. */
size_t ep_msg_live_count(void);
size_t ep_msg_live_bytes(void);

#endif
