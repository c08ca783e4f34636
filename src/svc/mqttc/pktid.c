/*
 * pktid.c - MQTT packet identifier allocation.
 *
 * A 65536-bit bitmap (8 KiB) marks identifiers in use. Allocation starts at
 * the id after the previous allocation and scans word by word, so ids cycle
 * through the whole space instead of reusing the one just released: a late
 * acknowledgement for an old id can then not be mistaken for a new message
 * unless 65535 others were sent in between. Id 0 is never handed out.
 */
#include "svc/mqttc/mqttc_int.h"

#include <string.h>

void ep_mqttc__ids_init(ep_mqttc__ids *ids)
{
    memset(ids, 0, sizeof(*ids));
    ids->bits[0] = 1; /* id 0 is reserved */
    ids->next = 1;
}

bool ep_mqttc__ids_in_use(const ep_mqttc__ids *ids, uint16_t id)
{
    return id != 0 && (ids->bits[id >> 6] >> (id & 63) & 1u) != 0;
}

uint16_t ep_mqttc__ids_alloc(ep_mqttc__ids *ids)
{
    if (ids->used >= 65535u)
        return 0;
    uint32_t id = ids->next ? ids->next : 1;
    /* At most 1025 words are visited: the whole map plus the partial first. */
    for (uint32_t steps = 0; steps <= 1024u; steps++) {
        uint32_t w = id >> 6;
        uint64_t freebits = ~ids->bits[w] & (~UINT64_C(0) << (id & 63));
        if (freebits) {
            uint32_t got = (w << 6) | (uint32_t)__builtin_ctzll(freebits);
            ids->bits[w] |= UINT64_C(1) << (got & 63);
            ids->used++;
            ids->next = (uint16_t)(got + 1); /* 65535 + 1 wraps to 0 -> 1 */
            return (uint16_t)got;
        }
        id = ((w + 1) & 1023u) << 6;
    }
    return 0;
}

void ep_mqttc__ids_release(ep_mqttc__ids *ids, uint16_t id)
{
    if (!ep_mqttc__ids_in_use(ids, id))
        return;
    ids->bits[id >> 6] &= ~(UINT64_C(1) << (id & 63));
    ids->used--;
}
