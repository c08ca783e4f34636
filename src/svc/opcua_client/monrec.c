/*
 * monrec.c - the client's records of a subscription's monitored items.
 *
 * The client remembers every monitored item it created, so that a
 * subscription the server lost can be created again with its items. Large
 * subscriptions (10^5 items) make this the client's main per-item memory,
 * so a record keeps only what CreateMonitoredItems needs, in a flat array
 * (about 64 bytes plus the NodeId's identifier; no copy of the whole
 * MonitoredItemCreateRequest), and the filter only when there is one.
 * Records are found by client handle through an open-addressing index
 * (linear probing, indexes into the array), so creating, answering and
 * deleting N items costs O(N), not O(N^2).
 */
#include <stdlib.h>
#include <string.h>

#include "svc/opcua_client/uac_int.h"

#define EMPTY 0u /* slot value: record index + 1 */

static size_t slot_of(uint32_t handle, size_t mask)
{
    /* Fibonacci hashing: handles are often consecutive */
    return (size_t)(((uint64_t)handle * 0x9E3779B97F4A7C15ull) >> 24) & mask;
}

static ptrdiff_t find_slot(const ep_uac_montab *t, uint32_t handle)
{
    if (t->nslots == 0)
        return -1;
    size_t mask = t->nslots - 1;
    for (size_t i = slot_of(handle, mask);; i = (i + 1) & mask) {
        uint32_t v = t->slots[i];
        if (v == EMPTY)
            return -1;
        if (t->v[v - 1].client_handle == handle)
            return (ptrdiff_t)i;
    }
}

static void slot_put(ep_uac_montab *t, uint32_t handle, uint32_t value)
{
    size_t mask = t->nslots - 1;
    size_t i = slot_of(handle, mask);
    while (t->slots[i] != EMPTY)
        i = (i + 1) & mask;
    t->slots[i] = value;
}

/* backward-shift deletion keeps every probe chain unbroken */
static void slot_delete(ep_uac_montab *t, size_t i)
{
    size_t mask = t->nslots - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t v = t->slots[j];
        if (v == EMPTY)
            break;
        size_t home = slot_of(t->v[v - 1].client_handle, mask);
        /* move v into the hole at i unless its home lies in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = v;
            i = j;
        }
    }
    t->slots[i] = EMPTY;
}

static ep_err rehash(ep_uac_montab *t, size_t nslots)
{
    uint32_t *s = calloc(nslots, sizeof(*s));
    if (s == NULL)
        return EP_ENOMEM;
    free(t->slots);
    t->slots = s;
    t->nslots = nslots;
    for (size_t k = 0; k < t->n; k++)
        slot_put(t, t->v[k].client_handle, (uint32_t)k + 1);
    return EP_EOK;
}

ep_uac_mon *ep_uac__mon_find(const ep_uac_montab *t, uint32_t handle)
{
    ptrdiff_t i = find_slot(t, handle);
    return i < 0 ? NULL : &t->v[t->slots[i] - 1];
}

ep_err ep_uac__mon_reserve(ep_uac_montab *t, size_t extra)
{
    size_t want = t->n + extra;
    if (want > UINT32_MAX - 1)
        return EP_ENOMEM;
    if (want > t->cap) {
        size_t cap = t->cap ? t->cap : 16;
        while (cap < want)
            cap += cap / 2 + 1;
        void *p = realloc(t->v, cap * sizeof(*t->v));
        if (p == NULL)
            return EP_ENOMEM;
        t->v = p;
        t->cap = cap;
    }
    /* load factor at most 1/2 */
    if (want * 2 > t->nslots) {
        size_t ns = t->nslots ? t->nslots : 32;
        while (ns < want * 2)
            ns *= 2;
        return rehash(t, ns);
    }
    return EP_EOK;
}

static void rec_clear(ep_uac_mon *m)
{
    ep_ua_clear(&m->node, EP_UA_T(NodeId));
    if (m->filter) {
        ep_ua_clear(m->filter, EP_UA_T(ExtensionObject));
        free(m->filter);
        m->filter = NULL;
    }
}

ep_err ep_uac__mon_set_params(ep_uac_mon *m, const ep_ua_monitoring_parameters *p)
{
    ep_ua_extensionobject *f = NULL;
    if (p->filter.encoding != EP_UA_EXTOBJ_EMPTY) {
        f = malloc(sizeof(*f));
        if (f == NULL)
            return EP_ENOMEM;
        if (ep_ua_copy(&p->filter, f, EP_UA_T(ExtensionObject)) != EP_EOK) {
            free(f);
            return EP_ENOMEM;
        }
    }
    if (m->filter) {
        ep_ua_clear(m->filter, EP_UA_T(ExtensionObject));
        free(m->filter);
    }
    m->filter = f;
    m->sampling_ms = p->sampling_interval;
    m->queue_size = p->queue_size;
    m->discard_oldest = p->discard_oldest;
    return EP_EOK;
}

ep_err ep_uac__mon_add(ep_uac_montab *t, const ep_ua_monitored_item_create_request *r)
{
    uint32_t handle = r->requested_parameters.client_handle;
    if (ep_uac__mon_find(t, handle))
        return EP_EEXIST;
    ep_err err = ep_uac__mon_reserve(t, 1);
    if (err != EP_EOK)
        return err;
    ep_uac_mon *m = &t->v[t->n];
    memset(m, 0, sizeof(*m));
    m->client_handle = handle;
    m->attribute_id = r->item_to_monitor.attribute_id;
    m->mode = (int8_t)r->monitoring_mode;
    err = ep_ua_copy(&r->item_to_monitor.node_id, &m->node, EP_UA_T(NodeId));
    if (err == EP_EOK)
        err = ep_uac__mon_set_params(m, &r->requested_parameters);
    if (err != EP_EOK) {
        rec_clear(m);
        return err;
    }
    t->n++;
    slot_put(t, handle, (uint32_t)t->n);
    return EP_EOK;
}

void ep_uac__mon_remove(ep_uac_montab *t, uint32_t handle)
{
    ptrdiff_t si = find_slot(t, handle);
    if (si < 0)
        return;
    size_t k = t->slots[si] - 1;
    slot_delete(t, (size_t)si);
    rec_clear(&t->v[k]);
    size_t last = t->n - 1;
    if (k != last) {
        t->v[k] = t->v[last];
        ptrdiff_t ls = find_slot(t, t->v[k].client_handle);
        if (ls >= 0)
            t->slots[ls] = (uint32_t)k + 1;
    }
    t->n--;
}

void ep_uac__mon_request(const ep_uac_mon *m, ep_ua_monitored_item_create_request *out)
{
    memset(out, 0, sizeof(*out));
    out->item_to_monitor.node_id = m->node;
    out->item_to_monitor.attribute_id = m->attribute_id;
    out->monitoring_mode = m->mode;
    out->requested_parameters.client_handle = m->client_handle;
    out->requested_parameters.sampling_interval = m->sampling_ms;
    out->requested_parameters.queue_size = m->queue_size;
    out->requested_parameters.discard_oldest = m->discard_oldest;
    if (m->filter)
        out->requested_parameters.filter = *m->filter;
}

void ep_uac__montab_fini(ep_uac_montab *t)
{
    for (size_t k = 0; k < t->n; k++)
        rec_clear(&t->v[k]);
    free(t->v);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}
