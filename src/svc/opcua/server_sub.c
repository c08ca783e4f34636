/*
 * server_sub.c - subscriptions, monitored items, Publish and events.
 *
 * Sampling is organised by interval, not by item: every distinct sampling
 * interval (in ms) has one ua_group with one timer and an array of items,
 * so 100 000 items sampled every second cost one timer and one tight loop
 * per second. Sampling an item compares the node's version with the last
 * one seen; only a changed value is filtered (trigger, absolute deadband)
 * and queued on the item. Items with queued values sit on their
 * subscription's ready list.
 *
 * Each subscription has a publishing timer. On every cycle it first takes
 * every queued notification off the ready items (harvest, into sub->harv),
 * then either sends them in NotificationMessages (at most max_notif
 * notifications each, more_notifications set while harvested ones remain,
 * in which case the next Publish request is answered at once), a keep-alive
 * when keepalive_count cycles passed silently, or, lacking a Publish
 * request, marks itself late and is served when the next Publish request
 * arrives. Harvesting at the tick means a sampling timer firing in the
 * middle of a burst neither overwrites values of the cycle being sent (queue
 * size 1) nor stretches the burst: what it samples waits for the next
 * cycle. Sent messages are kept encoded in a bounded retransmission ring
 * until acknowledged, so Republish and TransferSubscriptions can return
 * what the client missed.
 * lifetime_count cycles without any Publish request delete the
 * subscription.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/opcua/gen/attributes.h"
#include "core/log.h"
#include "svc/opcua/server_int.h"

#define MIN_INTERVAL_MS 50u
#define MAX_INTERVAL_MS 3600000u
#define MAX_QUEUE 10000u
#define DEFAULT_EVENT_QUEUE 1000u

enum {
    F_EVENT_ID,
    F_EVENT_TYPE,
    F_SOURCE_NODE,
    F_SOURCE_NAME,
    F_TIME,
    F_RECEIVE_TIME,
    F_MESSAGE,
    F_SEVERITY,
    F_UNKNOWN = -1,
};

static const char *const field_names[] = {"EventId", "EventType",   "SourceNode", "SourceName",
                                          "Time",    "ReceiveTime", "Message",    "Severity"};

/* ------------------------------------------------------------ lookup -- */

static ua_sub *find_sub(ua_session *s, uint32_t id)
{
    for (ua_sub *x = s->subs; x; x = x->next)
        if (x->id == id)
            return x;
    return NULL;
}

static ua_item *find_item(ua_sub *sub, uint32_t id)
{
    if (sub->ihash_cap == 0)
        return NULL;
    for (ua_item *i = sub->ihash[id & (sub->ihash_cap - 1)]; i; i = i->hnext)
        if (i->id == id)
            return i;
    return NULL;
}

static ep_err ihash_insert(ua_sub *sub, ua_item *it)
{
    if (sub->nitems + 1 > sub->ihash_cap) {
        size_t cap = sub->ihash_cap ? sub->ihash_cap * 2 : 64;
        ua_item **t = calloc(cap, sizeof(*t));
        if (t == NULL)
            return EP_ENOMEM;
        for (size_t i = 0; i < sub->ihash_cap; i++)
            for (ua_item *x = sub->ihash[i], *n; x; x = n) {
                n = x->hnext;
                x->hnext = t[x->id & (cap - 1)];
                t[x->id & (cap - 1)] = x;
            }
        free(sub->ihash);
        sub->ihash = t;
        sub->ihash_cap = cap;
    }
    it->hnext = sub->ihash[it->id & (sub->ihash_cap - 1)];
    sub->ihash[it->id & (sub->ihash_cap - 1)] = it;
    sub->nitems++;
    return EP_EOK;
}

static void ihash_remove(ua_sub *sub, ua_item *it)
{
    for (ua_item **pp = &sub->ihash[it->id & (sub->ihash_cap - 1)]; *pp; pp = &(*pp)->hnext)
        if (*pp == it) {
            *pp = it->hnext;
            sub->nitems--;
            return;
        }
}

/* ------------------------------------------------------------ groups -- */

static void group_tick(ep_timer *t);

static ep_err group_add(ep_ua_server *srv, ua_item *it)
{
    ua_group *g;
    for (g = srv->groups; g; g = g->next)
        if (g->interval_ms == it->sampling_ms)
            break;
    if (g == NULL) {
        g = calloc(1, sizeof(*g));
        if (g == NULL)
            return EP_ENOMEM;
        g->interval_ms = it->sampling_ms;
        g->srv = srv;
        ep_timer_init(srv->loop, &g->timer, group_tick, g);
        ep_timer_start(&g->timer, g->interval_ms);
        g->next = srv->groups;
        srv->groups = g;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        ua_item **a = realloc(g->items, cap * sizeof(*a));
        if (a == NULL)
            return EP_ENOMEM;
        g->items = a;
        g->cap = cap;
    }
    it->group = g;
    it->gidx = g->n;
    g->items[g->n++] = it;
    return EP_EOK;
}

static void group_remove(ep_ua_server *srv, ua_item *it)
{
    ua_group *g = it->group;
    if (g == NULL)
        return;
    g->items[it->gidx] = g->items[--g->n];
    g->items[it->gidx]->gidx = it->gidx;
    it->group = NULL;
    if (g->n == 0) {
        ep_timer_stop(&g->timer);
        for (ua_group **pp = &srv->groups; *pp; pp = &(*pp)->next)
            if (*pp == g) {
                *pp = g->next;
                break;
            }
        free(g->items);
        free(g);
    }
}

void ep_ua__groups_free(ep_ua_server *srv)
{
    while (srv->groups) {
        ua_group *g = srv->groups;
        srv->groups = g->next;
        ep_timer_stop(&g->timer);
        free(g->items);
        free(g);
    }
}

/* ------------------------------------------------------------ queues -- */

static void mark_ready(ua_item *it)
{
    if (it->ready)
        return;
    ua_sub *sub = it->sub;
    it->ready = true;
    it->ready_next = NULL;
    if (sub->ready_tail)
        sub->ready_tail->ready_next = it;
    else
        sub->ready_head = it;
    sub->ready_tail = it;
}

static void enqueue_value(ua_item *it, const ep_ua_datavalue *dv)
{
    ep_ua_datavalue copy;
    if (ep_ua_copy(dv, &copy, EP_UA_T(DataValue)) != EP_EOK)
        return;
    if (it->qlen == it->queue_size) {
        uint32_t victim =
            it->discard_oldest ? it->qhead : (it->qhead + it->qlen - 1) % it->queue_size;
        ep_ua_clear(&it->q[victim], EP_UA_T(DataValue));
        if (it->discard_oldest) {
            it->qhead = (it->qhead + 1) % it->queue_size;
            it->qlen--;
        } else {
            it->qlen--;
        }
        it->sub->pending--;
        if (it->queue_size > 1) {
            copy.mask |= EP_UA_DATAVALUE_STATUS;
            copy.status |= 0x480u; /* InfoType DataValue | Overflow */
        }
    }
    it->q[(it->qhead + it->qlen) % it->queue_size] = copy;
    it->qlen++;
    it->sub->pending++;
    mark_ready(it);
}

static void clear_queues(ua_item *it)
{
    for (uint32_t k = 0; k < it->qlen; k++)
        ep_ua_clear(&it->q[(it->qhead + k) % it->queue_size], EP_UA_T(DataValue));
    for (uint32_t k = 0; k < it->eqlen; k++) {
        ua_event *ev = &it->eq[(it->eqhead + k) % it->queue_size];
        for (size_t f = 0; f < it->nsel; f++)
            ep_ua_clear(&ev->fields[f], EP_UA_T(Variant));
        free(ev->fields);
    }
    if (it->sub)
        it->sub->pending -= it->qlen + it->eqlen;
    it->qlen = it->qhead = it->eqlen = it->eqhead = 0;
}

static void harv_clear(ua_sub *sub)
{
    for (size_t k = 0; k < sub->harv_len; k++) {
        ua_notif *x = &sub->harv[sub->harv_head + k];
        if (x->is_event) {
            for (uint32_t f = 0; f < x->nsel; f++)
                ep_ua_clear(&x->fields[f], EP_UA_T(Variant));
            free(x->fields);
        } else {
            ep_ua_clear(&x->dv, EP_UA_T(DataValue));
        }
    }
    sub->harv_head = sub->harv_len = 0;
}

/* Moves every queued notification of the ready items to sub->harv, in
 * ready-list order. On allocation failure the rest stay queued. */
static void harvest(ua_sub *sub)
{
    if (sub->pending == 0)
        return;
    if (sub->harv_head && sub->harv_len)
        memmove(sub->harv, sub->harv + sub->harv_head, sub->harv_len * sizeof(*sub->harv));
    sub->harv_head = 0;
    if (sub->harv_len + sub->pending > sub->harv_cap) {
        size_t cap = sub->harv_cap ? sub->harv_cap : 64;
        while (cap < sub->harv_len + sub->pending)
            cap *= 2;
        ua_notif *h = realloc(sub->harv, cap * sizeof(*h));
        if (h == NULL)
            return;
        sub->harv = h;
        sub->harv_cap = cap;
    }
    while (sub->ready_head) {
        ua_item *it = sub->ready_head;
        while (it->qlen) {
            ua_notif *x = &sub->harv[sub->harv_len++];
            x->client_handle = it->client_handle;
            x->is_event = false;
            x->nsel = 0;
            x->fields = NULL;
            x->dv = it->q[it->qhead];
            memset(&it->q[it->qhead], 0, sizeof(it->q[it->qhead]));
            it->qhead = (it->qhead + 1) % it->queue_size;
            it->qlen--;
            sub->pending--;
        }
        while (it->eqlen) {
            ua_notif *x = &sub->harv[sub->harv_len++];
            memset(x, 0, sizeof(*x));
            x->client_handle = it->client_handle;
            x->is_event = true;
            x->nsel = (uint32_t)it->nsel;
            x->fields = it->eq[it->eqhead].fields;
            it->eq[it->eqhead].fields = NULL;
            it->eqhead = (it->eqhead + 1) % it->queue_size;
            it->eqlen--;
            sub->pending--;
        }
        sub->ready_head = it->ready_next;
        it->ready = false;
    }
    sub->ready_tail = NULL;
}

static bool numeric_value(const ep_ua_variant *v, double *out)
{
    if (v->type == NULL || v->is_array || v->data == NULL)
        return false;
    switch (v->type->kind) {
    case EP_UA_KIND_SBYTE:
        *out = *(int8_t *)v->data;
        return true;
    case EP_UA_KIND_BYTE:
        *out = *(uint8_t *)v->data;
        return true;
    case EP_UA_KIND_INT16:
        *out = *(int16_t *)v->data;
        return true;
    case EP_UA_KIND_UINT16:
        *out = *(uint16_t *)v->data;
        return true;
    case EP_UA_KIND_INT32:
        *out = *(int32_t *)v->data;
        return true;
    case EP_UA_KIND_UINT32:
        *out = *(uint32_t *)v->data;
        return true;
    case EP_UA_KIND_INT64:
        *out = (double)*(int64_t *)v->data;
        return true;
    case EP_UA_KIND_UINT64:
        *out = (double)*(uint64_t *)v->data;
        return true;
    case EP_UA_KIND_FLOAT:
        *out = *(float *)v->data;
        return true;
    case EP_UA_KIND_DOUBLE:
        *out = *(double *)v->data;
        return true;
    default:
        return false;
    }
}

static void sample(ep_ua_server *srv, ua_item *it)
{
    ep_ua_node *n = it->node;
    if (it->mode != EP_UA_MONITORING_MODE_REPORTING || it->is_event)
        return;
    if (it->attr != EP_UA_ATTR_Value) {
        if (it->last_version != 0)
            return;
        it->last_version = 1;
        ep_ua_arena a;
        ep_ua_arena_init(&a, 0, NULL);
        ep_ua_datavalue dv;
        ep_ua__read_attr(srv, n, it->attr, it->ts_return, &dv, &a);
        enqueue_value(it, &dv);
        ep_ua_arena_fini(&a);
        return;
    }
    if (n->version == it->last_version)
        return;
    it->last_version = n->version;
    if (it->has_last) {
        if (it->trigger == EP_UA_DATA_CHANGE_TRIGGER_STATUS && n->status == it->last_status)
            return;
        double d;
        if (it->deadband_type == EP_UA_DEADBAND_TYPE_ABSOLUTE && n->status == it->last_status &&
            numeric_value(&n->value, &d) && fabs(d - it->last_num) <= it->deadband)
            return;
    }
    it->has_last = true;
    it->last_status = n->status;
    numeric_value(&n->value, &it->last_num);
    ep_ua_datavalue dv;
    memset(&dv, 0, sizeof(dv));
    dv.mask = EP_UA_DATAVALUE_VALUE;
    dv.value = n->value;
    if (n->status) {
        dv.mask |= EP_UA_DATAVALUE_STATUS;
        dv.status = n->status;
    }
    if (it->ts_return == EP_UA_TIMESTAMPS_TO_RETURN_SOURCE ||
        it->ts_return == EP_UA_TIMESTAMPS_TO_RETURN_BOTH) {
        dv.mask |= EP_UA_DATAVALUE_SOURCE_TIMESTAMP;
        dv.source_timestamp = n->source_ts;
    }
    if (it->ts_return == EP_UA_TIMESTAMPS_TO_RETURN_SERVER ||
        it->ts_return == EP_UA_TIMESTAMPS_TO_RETURN_BOTH) {
        dv.mask |= EP_UA_DATAVALUE_SERVER_TIMESTAMP;
        dv.server_timestamp = n->server_ts;
    }
    enqueue_value(it, &dv);
}

/* Periodic timers keep their phase: the next due time is the last one plus
 * the interval (not now plus the interval, which drifts by the time each
 * tick takes: 100 000 items sampled "every second" were sampled every
 * 1006 ms). A loop that fell behind skips ahead instead of catching up. */
void ep_ua__timer_again(ep_timer *t, uint64_t interval_ms)
{
    uint64_t now = ep_loop_now(t->loop);
    uint64_t next = t->due + interval_ms;
    if (next <= now)
        next = now + interval_ms;
    ep_timer_start_at(t, next);
}

static void group_tick(ep_timer *t)
{
    ua_group *g = t->data;
    ep_ua__timer_again(&g->timer, g->interval_ms);
    for (size_t i = 0; i < g->n; i++)
        sample(g->srv, g->items[i]);
}

/* ------------------------------------------------------------ events -- */

static void event_fields(ua_item *it, ep_ua_node *src, uint16_t sev, const ep_ua_string *msg,
                         const uint8_t *eid, ep_ua_datetime now)
{
    if (it->eqlen == it->queue_size) {
        ua_event *old = &it->eq[it->eqhead];
        for (size_t f = 0; f < it->nsel; f++)
            ep_ua_clear(&old->fields[f], EP_UA_T(Variant));
        free(old->fields);
        it->eqhead = (it->eqhead + 1) % it->queue_size;
        it->eqlen--;
        it->sub->pending--;
    }
    ep_ua_variant *fields = calloc(it->nsel ? it->nsel : 1, sizeof(*fields));
    if (fields == NULL)
        return;
    ep_ua_bytestring id = {16, (uint8_t *)(uintptr_t)eid};
    ep_ua_nodeid type = ep_ua_nodeid_numeric(0, EP_UA_NS0_BaseEventType);
    ep_ua_localizedtext lt = {EP_UA_STRING_LIT("en"), *msg};
    for (size_t f = 0; f < it->nsel; f++) {
        ep_ua_variant v;
        memset(&v, 0, sizeof(v));
        switch (it->sel[f]) {
        case F_EVENT_ID:
            v.type = EP_UA_T(ByteString);
            v.data = &id;
            break;
        case F_EVENT_TYPE:
            v.type = EP_UA_T(NodeId);
            v.data = &type;
            break;
        case F_SOURCE_NODE:
            v.type = EP_UA_T(NodeId);
            v.data = &src->id;
            break;
        case F_SOURCE_NAME:
            v.type = EP_UA_T(String);
            v.data = &src->browse_name.name;
            break;
        case F_TIME:
        case F_RECEIVE_TIME:
            v.type = EP_UA_T(DateTime);
            v.data = &now;
            break;
        case F_MESSAGE:
            v.type = EP_UA_T(LocalizedText);
            v.data = &lt;
            break;
        case F_SEVERITY:
            v.type = EP_UA_T(UInt16);
            v.data = &sev;
            break;
        default:
            break;
        }
        if (ep_ua_copy(&v, &fields[f], EP_UA_T(Variant)) != EP_EOK)
            memset(&fields[f], 0, sizeof(fields[f]));
    }
    it->eq[(it->eqhead + it->eqlen) % it->queue_size].fields = fields;
    it->eqlen++;
    it->sub->pending++;
    mark_ready(it);
}

static void notify_node(ep_ua_node *n, ep_ua_node *src, uint16_t sev, const ep_ua_string *msg,
                        const uint8_t *eid, ep_ua_datetime now)
{
    for (ua_item *it = n->ev_items; it; it = it->ev_next)
        if (it->mode == EP_UA_MONITORING_MODE_REPORTING)
            event_fields(it, src, sev, msg, eid, now);
}

void ep_ua__event_raise(ep_ua_server *srv, ep_ua_node *src, uint16_t sev, const char *message)
{
    uint8_t eid[16];
    static uint64_t ctr;
    ctr++;
    uint64_t t = (uint64_t)ep_ua__now();
    memcpy(eid, &ctr, 8);
    memcpy(eid + 8, &t, 8);
    ep_ua_string msg = ep_ua_string_from(message ? message : "");
    ep_ua_datetime now = ep_ua__now();
    /* the source, its notifier ancestors, and the Server object */
    ep_ua_node *seen[16];
    size_t nseen = 0;
    ep_ua_node *cur = src;
    for (int depth = 0; cur && depth < 8; depth++) {
        if (nseen < 16)
            seen[nseen++] = cur;
        notify_node(cur, src, sev, &msg, eid, now);
        ep_ua_node *up = NULL;
        for (uint32_t i = 0; i < cur->nrefs; i++)
            if (cur->refs[i].inverse &&
                (ep_ua__ref_is_subtype(cur->refs[i].type, EP_UA_NS0_HasEventSource) ||
                 ep_ua__ref_is_subtype(cur->refs[i].type, EP_UA_NS0_HierarchicalReferences)) &&
                cur->refs[i].target->node_class == EP_UA_NODE_CLASS_OBJECT &&
                cur->refs[i].target->event_notifier) {
                up = cur->refs[i].target;
                break;
            }
        for (size_t k = 0; up && k < nseen; k++)
            if (seen[k] == up)
                up = NULL;
        cur = up;
    }
    bool server_seen = false;
    for (size_t k = 0; k < nseen; k++)
        server_seen |= seen[k] == srv->n_server;
    if (!server_seen && srv->n_server)
        notify_node(srv->n_server, src, sev, &msg, eid, now);
}

/* ------------------------------------------------------------ items -- */

static void item_free(ep_ua_server *srv, ua_item *it)
{
    group_remove(srv, it);
    if (it->is_event && it->node) {
        for (ua_item **pp = &it->node->ev_items; *pp; pp = &(*pp)->ev_next)
            if (*pp == it) {
                *pp = it->ev_next;
                break;
            }
    }
    clear_queues(it);
    if (it->ready && it->sub) {
        ua_item *prev = NULL;
        for (ua_item *x = it->sub->ready_head; x; prev = x, x = x->ready_next)
            if (x == it) {
                if (prev)
                    prev->ready_next = x->ready_next;
                else
                    it->sub->ready_head = x->ready_next;
                if (it->sub->ready_tail == x)
                    it->sub->ready_tail = prev;
                break;
            }
    }
    free(it->q);
    free(it->eq);
    free(it->sel);
    free(it);
    srv->nitems--;
}

static uint32_t revise_interval(double req, uint32_t dflt)
{
    if (isnan(req) || req < 0)
        return dflt;
    if (req < MIN_INTERVAL_MS)
        return MIN_INTERVAL_MS;
    if (req > MAX_INTERVAL_MS)
        return MAX_INTERVAL_MS;
    return (uint32_t)req;
}

/* Applies monitoring parameters (create or modify). */
static ep_ua_status apply_params(ep_ua_server *srv, ua_item *it,
                                 const ep_ua_monitoring_parameters *p, bool create)
{
    const ep_ua_extensionobject *f = &p->filter;
    int32_t trigger = EP_UA_DATA_CHANGE_TRIGGER_STATUS_VALUE;
    uint32_t db_type = EP_UA_DEADBAND_TYPE_NONE;
    double db = 0;
    int *sel = NULL;
    size_t nsel = 0;
    if (f->encoding == EP_UA_EXTOBJ_DECODED && f->type == EP_UA_T(DataChangeFilter)) {
        const ep_ua_data_change_filter *dcf = f->data;
        if (it->is_event)
            return EP_UA_STATUS_BadFilterNotAllowed;
        if (dcf->trigger < 0 || dcf->trigger > 2)
            return EP_UA_STATUS_BadMonitoredItemFilterInvalid;
        if (dcf->deadband_type == EP_UA_DEADBAND_TYPE_PERCENT)
            return EP_UA_STATUS_BadMonitoredItemFilterUnsupported;
        if (dcf->deadband_type > EP_UA_DEADBAND_TYPE_PERCENT ||
            (dcf->deadband_type == EP_UA_DEADBAND_TYPE_ABSOLUTE && !(dcf->deadband_value >= 0)))
            return EP_UA_STATUS_BadDeadbandFilterInvalid;
        double d;
        if (dcf->deadband_type == EP_UA_DEADBAND_TYPE_ABSOLUTE &&
            !numeric_value(&it->node->value, &d))
            return EP_UA_STATUS_BadFilterNotAllowed;
        trigger = dcf->trigger;
        db_type = dcf->deadband_type;
        db = dcf->deadband_value;
    } else if (f->encoding == EP_UA_EXTOBJ_DECODED && f->type == EP_UA_T(EventFilter)) {
        if (!it->is_event)
            return EP_UA_STATUS_BadFilterNotAllowed;
        const ep_ua_event_filter *ef = f->data;
        if (ef->select_clauses_len == 0 || ef->select_clauses_len > 64)
            return EP_UA_STATUS_BadEventFilterInvalid;
        nsel = ef->select_clauses_len;
        sel = calloc(nsel, sizeof(*sel));
        if (sel == NULL)
            return EP_UA_STATUS_BadOutOfMemory;
        for (size_t i = 0; i < nsel; i++) {
            const ep_ua_simple_attribute_operand *op = &ef->select_clauses[i];
            sel[i] = F_UNKNOWN;
            if (op->browse_path_len == 1 && op->browse_path[0].ns == 0)
                for (int k = 0; k < (int)(sizeof(field_names) / sizeof(field_names[0])); k++)
                    if (op->browse_path[0].name.len == strlen(field_names[k]) &&
                        memcmp(op->browse_path[0].name.data, field_names[k],
                               op->browse_path[0].name.len) == 0)
                        sel[i] = k;
        }
    } else if (f->encoding != EP_UA_EXTOBJ_EMPTY) {
        return EP_UA_STATUS_BadMonitoredItemFilterUnsupported;
    } else if (it->is_event) {
        /* no filter on an event item: the standard fields */
        nsel = 8;
        sel = calloc(nsel, sizeof(*sel));
        if (sel == NULL)
            return EP_UA_STATUS_BadOutOfMemory;
        for (size_t i = 0; i < nsel; i++)
            sel[i] = (int)i;
    }
    uint32_t qs = p->queue_size;
    if (it->is_event)
        qs = qs == 0 ? DEFAULT_EVENT_QUEUE : qs;
    if (qs == 0)
        qs = 1;
    if (qs > MAX_QUEUE)
        qs = MAX_QUEUE;
    uint32_t interval =
        it->is_event ? 0 : revise_interval(p->sampling_interval, it->sub->interval_ms);
    if (!it->is_event && p->sampling_interval == 0)
        interval = MIN_INTERVAL_MS;
    /* resize queues: values beyond the new size are dropped */
    if (qs != it->queue_size) {
        clear_queues(it);
        void *nq =
            it->is_event ? calloc(qs, sizeof(ua_event)) : calloc(qs, sizeof(ep_ua_datavalue));
        if (nq == NULL) {
            free(sel);
            return EP_UA_STATUS_BadOutOfMemory;
        }
        if (it->is_event) {
            free(it->eq);
            it->eq = nq;
        } else {
            free(it->q);
            it->q = nq;
        }
        it->queue_size = qs;
    }
    if (sel) {
        clear_queues(it);
        free(it->sel);
        it->sel = sel;
        it->nsel = nsel;
    }
    it->client_handle = p->client_handle;
    it->discard_oldest = p->discard_oldest;
    it->trigger = trigger;
    it->deadband_type = db_type;
    it->deadband = db;
    if (!it->is_event && (create || interval != it->sampling_ms)) {
        group_remove(srv, it);
        it->sampling_ms = interval;
        if (group_add(srv, it) != EP_EOK)
            return EP_UA_STATUS_BadOutOfMemory;
    }
    return EP_UA_STATUS_Good;
}

/* Opens a service call over n operations (the monitored-item and the
 * subscription-list services): the request is refused with, in this order,
 * the verdict `pre` of the checks that come before the count (an unknown
 * subscription), the count's (nothing to do, too many operations), then the
 * service's own verdict `post`; otherwise fills the response header and
 * allocates the n results (size bytes each) from the request's arena.
 * Returns the results, or NULL once the fault has been sent. */
static void *ops_begin(ep_ua_server *srv, ep_ua_channel *ch, const ep_ua_channel_msg *m, size_t n,
                       ep_ua_status pre, ep_ua_status post, size_t size, ep_ua_response_header *hdr)
{
    ep_ua_status st = pre;
    if (st == EP_UA_STATUS_Good)
        st = n == 0                               ? EP_UA_STATUS_BadNothingToDo
             : n > srv->lim.max_nodes_per_request ? EP_UA_STATUS_BadTooManyOperations
                                                  : post;
    void *results = NULL;
    if (st == EP_UA_STATUS_Good && (results = ep_ua__alloc(m->arena, n, size)) == NULL)
        st = EP_UA_STATUS_BadOutOfMemory;
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return NULL;
    }
    ep_ua__resp_header(hdr, m->request_handle, EP_UA_STATUS_Good);
    return results;
}

static ep_ua_status sub_known(const ua_sub *sub)
{
    return sub ? EP_UA_STATUS_Good : EP_UA_STATUS_BadSubscriptionIdInvalid;
}

static ep_ua_status check_timestamps(int32_t ts)
{
    return ts < 0 || ts > 3 ? EP_UA_STATUS_BadTimestampsToReturnInvalid : EP_UA_STATUS_Good;
}

void ep_ua__svc_create_items(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                             const ep_ua_channel_msg *m)
{
    const ep_ua_create_monitored_items_request *req = m->body;
    ua_sub *sub = find_sub(s, req->subscription_id);
    ep_ua_create_monitored_items_response r;
    memset(&r, 0, sizeof(r));
    r.results = ops_begin(srv, ch, m, req->items_to_create_len, sub_known(sub),
                          check_timestamps(req->timestamps_to_return), sizeof(*r.results),
                          &r.response_header);
    if (r.results == NULL)
        return;
    r.results_len = req->items_to_create_len;
    for (size_t i = 0; i < req->items_to_create_len; i++) {
        const ep_ua_monitored_item_create_request *c = &req->items_to_create[i];
        ep_ua_monitored_item_create_result *res = &r.results[i];
        ep_ua_node *n = ep_ua_server_find(srv, &c->item_to_monitor.node_id);
        uint32_t attr = c->item_to_monitor.attribute_id;
        if (n == NULL) {
            res->status_code = EP_UA_STATUS_BadNodeIdUnknown;
            continue;
        }
        if (sub->nitems >= srv->lim.max_items_per_subscription) {
            res->status_code = EP_UA_STATUS_BadTooManyMonitoredItems;
            continue;
        }
        if (c->monitoring_mode < 0 || c->monitoring_mode > 2) {
            res->status_code = EP_UA_STATUS_BadMonitoringModeInvalid;
            continue;
        }
        bool is_event = attr == EP_UA_ATTR_EventNotifier;
        if (is_event && (n->node_class != EP_UA_NODE_CLASS_OBJECT || !n->event_notifier)) {
            res->status_code = EP_UA_STATUS_BadAttributeIdInvalid;
            continue;
        }
        if (attr == EP_UA_ATTR_Value && n->node_class != EP_UA_NODE_CLASS_VARIABLE) {
            res->status_code = EP_UA_STATUS_BadAttributeIdInvalid;
            continue;
        }
        if (attr == 0 || attr > 27) {
            res->status_code = EP_UA_STATUS_BadAttributeIdInvalid;
            continue;
        }
        if (c->item_to_monitor.index_range.data && c->item_to_monitor.index_range.len) {
            res->status_code = EP_UA_STATUS_BadIndexRangeInvalid;
            continue;
        }
        ua_item *it = calloc(1, sizeof(*it));
        if (it == NULL) {
            res->status_code = EP_UA_STATUS_BadOutOfMemory;
            continue;
        }
        srv->nitems++;
        it->sub = sub;
        it->node = n;
        it->attr = attr;
        it->mode = c->monitoring_mode;
        it->is_event = is_event;
        it->ts_return = req->timestamps_to_return;
        do {
            it->id = ++sub->next_item_id;
        } while (it->id == 0 || find_item(sub, it->id));
        res->status_code = apply_params(srv, it, &c->requested_parameters, true);
        if (res->status_code == EP_UA_STATUS_Good && ihash_insert(sub, it) != EP_EOK)
            res->status_code = EP_UA_STATUS_BadOutOfMemory;
        if (res->status_code != EP_UA_STATUS_Good) {
            it->sub = NULL;
            item_free(srv, it);
            continue;
        }
        if (is_event) {
            it->ev_next = n->ev_items;
            n->ev_items = it;
        } else {
            sample(srv, it); /* the initial value, at once */
        }
        res->monitored_item_id = it->id;
        res->revised_sampling_interval = it->sampling_ms;
        res->revised_queue_size = it->queue_size;
    }
    ep_ua__send(ch, m->request_id, EP_UA_T(CreateMonitoredItemsResponse), &r, &r.response_header);
}

void ep_ua__svc_modify_items(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                             const ep_ua_channel_msg *m)
{
    const ep_ua_modify_monitored_items_request *req = m->body;
    ua_sub *sub = find_sub(s, req->subscription_id);
    ep_ua_modify_monitored_items_response r;
    memset(&r, 0, sizeof(r));
    r.results = ops_begin(srv, ch, m, req->items_to_modify_len, sub_known(sub),
                          check_timestamps(req->timestamps_to_return), sizeof(*r.results),
                          &r.response_header);
    if (r.results == NULL)
        return;
    r.results_len = req->items_to_modify_len;
    for (size_t i = 0; i < req->items_to_modify_len; i++) {
        ua_item *it = find_item(sub, req->items_to_modify[i].monitored_item_id);
        if (it == NULL) {
            r.results[i].status_code = EP_UA_STATUS_BadMonitoredItemIdInvalid;
            continue;
        }
        it->ts_return = req->timestamps_to_return;
        r.results[i].status_code =
            apply_params(srv, it, &req->items_to_modify[i].requested_parameters, false);
        r.results[i].revised_sampling_interval = it->sampling_ms;
        r.results[i].revised_queue_size = it->queue_size;
    }
    ep_ua__send(ch, m->request_id, EP_UA_T(ModifyMonitoredItemsResponse), &r, &r.response_header);
}

void ep_ua__svc_delete_items(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                             const ep_ua_channel_msg *m)
{
    const ep_ua_delete_monitored_items_request *req = m->body;
    ua_sub *sub = find_sub(s, req->subscription_id);
    ep_ua_delete_monitored_items_response r;
    memset(&r, 0, sizeof(r));
    r.results = ops_begin(srv, ch, m, req->monitored_item_ids_len, sub_known(sub),
                          EP_UA_STATUS_Good, sizeof(*r.results), &r.response_header);
    if (r.results == NULL)
        return;
    r.results_len = req->monitored_item_ids_len;
    for (size_t i = 0; i < req->monitored_item_ids_len; i++) {
        ua_item *it = find_item(sub, req->monitored_item_ids[i]);
        if (it == NULL) {
            r.results[i] = EP_UA_STATUS_BadMonitoredItemIdInvalid;
            continue;
        }
        ihash_remove(sub, it);
        item_free(srv, it);
    }
    ep_ua__send(ch, m->request_id, EP_UA_T(DeleteMonitoredItemsResponse), &r, &r.response_header);
}

void ep_ua__svc_set_monitoring(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                               const ep_ua_channel_msg *m)
{
    const ep_ua_set_monitoring_mode_request *req = m->body;
    ua_sub *sub = find_sub(s, req->subscription_id);
    ep_ua_status mode = req->monitoring_mode < 0 || req->monitoring_mode > 2
                            ? EP_UA_STATUS_BadMonitoringModeInvalid
                            : EP_UA_STATUS_Good;
    ep_ua_set_monitoring_mode_response r;
    memset(&r, 0, sizeof(r));
    r.results = ops_begin(srv, ch, m, req->monitored_item_ids_len, sub_known(sub), mode,
                          sizeof(*r.results), &r.response_header);
    if (r.results == NULL)
        return;
    r.results_len = req->monitored_item_ids_len;
    for (size_t i = 0; i < req->monitored_item_ids_len; i++) {
        ua_item *it = find_item(sub, req->monitored_item_ids[i]);
        if (it == NULL) {
            r.results[i] = EP_UA_STATUS_BadMonitoredItemIdInvalid;
            continue;
        }
        bool was = it->mode == EP_UA_MONITORING_MODE_REPORTING;
        it->mode = req->monitoring_mode;
        if (it->mode != EP_UA_MONITORING_MODE_REPORTING)
            clear_queues(it);
        else if (!was && !it->is_event) {
            it->last_version = 0;
            it->has_last = false;
            sample(srv, it);
        }
    }
    ep_ua__send(ch, m->request_id, EP_UA_T(SetMonitoringModeResponse), &r, &r.response_header);
}

/* ------------------------------------------------------ subscriptions -- */

static void sub_tick(ep_timer *t);

static void sub_free(ep_ua_server *srv, ua_sub *sub)
{
    ep_timer_stop(&sub->timer);
    for (size_t i = 0; i < sub->ihash_cap; i++)
        for (ua_item *it = sub->ihash[i], *n; it; it = n) {
            n = it->hnext;
            it->ready = false;
            item_free(srv, it);
        }
    free(sub->ihash);
    harv_clear(sub);
    free(sub->harv);
    for (unsigned k = 0; k < sub->nretx; k++)
        ep_buf_fini(&sub->retx[(sub->retx_head + k) % srv->lim.max_retransmit].msg);
    free(sub->retx);
    free(sub);
    srv->nsubs--;
}

static void sub_unlink(ua_session *s, ua_sub *sub)
{
    for (ua_sub **pp = &s->subs; *pp; pp = &(*pp)->next)
        if (*pp == sub) {
            *pp = sub->next;
            return;
        }
}

void ep_ua__subs_delete_all(ep_ua_server *srv, ua_session *s)
{
    while (s->subs) {
        ua_sub *sub = s->subs;
        s->subs = sub->next;
        sub_free(srv, sub);
    }
}

void ep_ua__session_detached(ep_ua_server *srv, ua_session *s)
{
    (void)srv;
    s->npubs = 0;
    s->pub_head = 0;
}

static void revise_sub(ep_ua_server *srv, ua_sub *sub, double interval, uint32_t lifetime,
                       uint32_t keepalive, uint32_t max_notif)
{
    sub->interval_ms = revise_interval(interval, 1000);
    if (keepalive == 0)
        keepalive = 10;
    if (keepalive > 10000)
        keepalive = 10000;
    if (lifetime < 3 * keepalive)
        lifetime = 3 * keepalive;
    if ((uint64_t)lifetime * sub->interval_ms > 24ull * 3600 * 1000)
        lifetime = (uint32_t)(24ull * 3600 * 1000 / sub->interval_ms);
    if (lifetime < 3 * keepalive)
        lifetime = 3 * keepalive;
    sub->keepalive_count = keepalive;
    sub->lifetime_count = lifetime;
    sub->max_notif = max_notif == 0 || max_notif > srv->lim.max_notifications_per_publish
                         ? srv->lim.max_notifications_per_publish
                         : max_notif;
}

void ep_ua__svc_create_sub(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                           const ep_ua_channel_msg *m)
{
    const ep_ua_create_subscription_request *req = m->body;
    unsigned n = 0;
    for (ua_sub *x = s->subs; x; x = x->next)
        n++;
    if (n >= srv->lim.max_subscriptions_per_session) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle,
                          EP_UA_STATUS_BadTooManySubscriptions);
        return;
    }
    ua_sub *sub = calloc(1, sizeof(*sub));
    if (sub)
        sub->retx = calloc(srv->lim.max_retransmit, sizeof(*sub->retx));
    if (sub == NULL || sub->retx == NULL) {
        free(sub);
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadOutOfMemory);
        return;
    }
    srv->nsubs++;
    sub->srv = srv;
    sub->s = s;
    do {
        sub->id = ++srv->next_sub_id;
    } while (sub->id == 0);
    revise_sub(srv, sub, req->requested_publishing_interval, req->requested_lifetime_count,
               req->requested_max_keep_alive_count, req->max_notifications_per_publish);
    sub->enabled = req->publishing_enabled;
    sub->priority = req->priority;
    sub->next_seq = 1;
    sub->keepalive_ctr = sub->keepalive_count; /* first cycle: keep-alive */
    ep_timer_init(srv->loop, &sub->timer, sub_tick, sub);
    ep_timer_start(&sub->timer, sub->interval_ms);
    sub->next = s->subs;
    s->subs = sub;
    ep_ua_create_subscription_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.subscription_id = sub->id;
    r.revised_publishing_interval = sub->interval_ms;
    r.revised_lifetime_count = sub->lifetime_count;
    r.revised_max_keep_alive_count = sub->keepalive_count;
    ep_ua__send(ch, m->request_id, EP_UA_T(CreateSubscriptionResponse), &r, &r.response_header);
}

void ep_ua__svc_modify_sub(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                           const ep_ua_channel_msg *m)
{
    const ep_ua_modify_subscription_request *req = m->body;
    ua_sub *sub = find_sub(s, req->subscription_id);
    if (sub == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle,
                          EP_UA_STATUS_BadSubscriptionIdInvalid);
        return;
    }
    uint32_t old = sub->interval_ms;
    revise_sub(srv, sub, req->requested_publishing_interval, req->requested_lifetime_count,
               req->requested_max_keep_alive_count, req->max_notifications_per_publish);
    sub->priority = req->priority;
    if (old != sub->interval_ms)
        ep_timer_start(&sub->timer, sub->interval_ms);
    ep_ua_modify_subscription_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.revised_publishing_interval = sub->interval_ms;
    r.revised_lifetime_count = sub->lifetime_count;
    r.revised_max_keep_alive_count = sub->keepalive_count;
    ep_ua__send(ch, m->request_id, EP_UA_T(ModifySubscriptionResponse), &r, &r.response_header);
}

void ep_ua__svc_delete_subs(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                            const ep_ua_channel_msg *m)
{
    const ep_ua_delete_subscriptions_request *req = m->body;
    ep_ua_delete_subscriptions_response r;
    memset(&r, 0, sizeof(r));
    r.results = ops_begin(srv, ch, m, req->subscription_ids_len, EP_UA_STATUS_Good,
                          EP_UA_STATUS_Good, sizeof(*r.results), &r.response_header);
    if (r.results == NULL)
        return;
    r.results_len = req->subscription_ids_len;
    for (size_t i = 0; i < req->subscription_ids_len; i++) {
        ua_sub *sub = find_sub(s, req->subscription_ids[i]);
        if (sub == NULL) {
            r.results[i] = EP_UA_STATUS_BadSubscriptionIdInvalid;
            continue;
        }
        sub_unlink(s, sub);
        sub_free(srv, sub);
    }
    ep_ua__send(ch, m->request_id, EP_UA_T(DeleteSubscriptionsResponse), &r, &r.response_header);
}

void ep_ua__svc_set_publishing(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                               const ep_ua_channel_msg *m)
{
    const ep_ua_set_publishing_mode_request *req = m->body;
    ep_ua_set_publishing_mode_response r;
    memset(&r, 0, sizeof(r));
    r.results = ops_begin(srv, ch, m, req->subscription_ids_len, EP_UA_STATUS_Good,
                          EP_UA_STATUS_Good, sizeof(*r.results), &r.response_header);
    if (r.results == NULL)
        return;
    r.results_len = req->subscription_ids_len;
    for (size_t i = 0; i < req->subscription_ids_len; i++) {
        ua_sub *sub = find_sub(s, req->subscription_ids[i]);
        if (sub == NULL)
            r.results[i] = EP_UA_STATUS_BadSubscriptionIdInvalid;
        else
            sub->enabled = req->publishing_enabled;
    }
    ep_ua__send(ch, m->request_id, EP_UA_T(SetPublishingModeResponse), &r, &r.response_header);
}

/* ------------------------------------------------------------ publish -- */

static bool pop_pub(ua_session *s, ua_pub *out)
{
    if (s->npubs == 0 || s->ch == NULL)
        return false;
    *out = s->pubs[s->pub_head];
    s->pub_head = (s->pub_head + 1) % s->srv->lim.max_publish_per_session;
    s->npubs--;
    return true;
}

static uint32_t *available_seqs(ua_sub *sub, size_t *n, ep_ua_arena *a)
{
    unsigned max = sub->srv->lim.max_retransmit;
    uint32_t *v = ep_ua__alloc(a, sub->nretx, sizeof(uint32_t));
    if (v == NULL) {
        *n = 0;
        return EP_UA_EMPTY;
    }
    for (unsigned k = 0; k < sub->nretx; k++)
        v[k] = sub->retx[(sub->retx_head + k) % max].seq;
    *n = sub->nretx;
    return v;
}

static void retx_store(ua_sub *sub, const ep_ua_notification_message *nm)
{
    unsigned max = sub->srv->lim.max_retransmit;
    if (sub->nretx == max) { /* full: the oldest unacknowledged is lost */
        ep_buf_fini(&sub->retx[sub->retx_head].msg);
        sub->retx_head = (sub->retx_head + 1) % max;
        sub->nretx--;
    }
    ua_retx *r = &sub->retx[(sub->retx_head + sub->nretx) % max];
    ep_buf_init(&r->msg, 0);
    r->seq = nm->sequence_number;
    if (ep_ua_encode(nm, EP_UA_T(NotificationMessage), &r->msg) != EP_EOK) {
        ep_buf_fini(&r->msg);
        return;
    }
    sub->nretx++;
}

static ep_ua_status retx_ack(ua_sub *sub, uint32_t seq)
{
    unsigned max = sub->srv->lim.max_retransmit;
    for (unsigned k = 0; k < sub->nretx; k++) {
        unsigned idx = (sub->retx_head + k) % max;
        if (sub->retx[idx].seq != seq)
            continue;
        ep_buf_fini(&sub->retx[idx].msg);
        /* close the gap: shift the later entries down by one */
        for (unsigned j = k; j + 1 < sub->nretx; j++)
            sub->retx[(sub->retx_head + j) % max] = sub->retx[(sub->retx_head + j + 1) % max];
        sub->nretx--;
        return EP_UA_STATUS_Good;
    }
    return EP_UA_STATUS_BadSequenceNumberUnknown;
}

/* Sends one PublishResponse for sub using request p: notifications if any
 * (or the pending status change), else a keep-alive. */
static void send_publish(ua_sub *sub, const ua_pub *p, ep_ua_status *ack_results, size_t nacks)
{
    ep_ua_server *srv = sub->srv;
    ua_session *s = sub->s;
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    ep_ua_publish_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, p->handle, EP_UA_STATUS_Good);
    r.subscription_id = sub->id;
    r.results = nacks ? ack_results : EP_UA_EMPTY;
    r.results_len = nacks;
    ep_ua_notification_message *nm = &r.notification_message;
    nm->publish_time = ep_ua__now();
    nm->notification_data = EP_UA_EMPTY;
    ep_ua_datavalue **taken = NULL;
    size_t ntaken = 0;
    bool data = sub->enabled && (sub->harv_len || sub->status_change);
    if (data) {
        size_t budget = sub->max_notif;
        ep_ua_monitored_item_notification *mi = ep_ua__alloc(&a, budget, sizeof(*mi));
        ep_ua_event_field_list *ev = ep_ua__alloc(&a, budget, sizeof(*ev));
        taken = calloc(budget ? budget : 1, sizeof(*taken));
        ua_event **etaken = calloc(budget ? budget : 1, sizeof(*etaken));
        size_t nmi = 0, nev = 0, netaken = 0;
        size_t *ensel = calloc(budget ? budget : 1, sizeof(size_t));
        if (mi == NULL || ev == NULL || taken == NULL || etaken == NULL || ensel == NULL) {
            free(taken);
            free(etaken);
            free(ensel);
            ep_ua_arena_fini(&a);
            return;
        }
        ep_ua_datavalue *vals = ep_ua__alloc(&a, budget, sizeof(*vals));
        ua_event *evs = ep_ua__alloc(&a, budget, sizeof(*evs));
        while (sub->harv_len && nmi + nev < budget && vals && evs) {
            ua_notif *x = &sub->harv[sub->harv_head++];
            sub->harv_len--;
            if (!x->is_event) {
                vals[nmi] = x->dv;
                mi[nmi].client_handle = x->client_handle;
                mi[nmi].value = vals[nmi];
                taken[ntaken++] = &vals[nmi];
                nmi++;
            } else {
                evs[netaken].fields = x->fields;
                ev[nev].client_handle = x->client_handle;
                ev[nev].event_fields = x->fields;
                ev[nev].event_fields_len = x->nsel;
                ensel[netaken] = x->nsel;
                etaken[netaken] = &evs[netaken];
                netaken++;
                nev++;
            }
        }
        if (sub->harv_len == 0)
            sub->harv_head = 0;
        ep_ua_extensionobject *eo = ep_ua__alloc(&a, 3, sizeof(*eo));
        ep_ua_data_change_notification dcn;
        memset(&dcn, 0, sizeof(dcn));
        dcn.monitored_items_len = nmi;
        dcn.monitored_items = mi;
        dcn.diagnostic_infos = EP_UA_EMPTY;
        ep_ua_event_notification_list enl;
        memset(&enl, 0, sizeof(enl));
        enl.events_len = nev;
        enl.events = ev;
        ep_ua_status_change_notification scn;
        memset(&scn, 0, sizeof(scn));
        size_t neo = 0;
        if (eo && nmi) {
            eo[neo].encoding = EP_UA_EXTOBJ_DECODED;
            eo[neo].type = EP_UA_T(DataChangeNotification);
            eo[neo++].data = &dcn;
        }
        if (eo && nev) {
            eo[neo].encoding = EP_UA_EXTOBJ_DECODED;
            eo[neo].type = EP_UA_T(EventNotificationList);
            eo[neo++].data = &enl;
        }
        if (eo && sub->status_change) {
            scn.status = sub->status_change;
            sub->status_change = 0;
            eo[neo].encoding = EP_UA_EXTOBJ_DECODED;
            eo[neo].type = EP_UA_T(StatusChangeNotification);
            eo[neo++].data = &scn;
        }
        if (neo) {
            nm->notification_data = eo;
            nm->notification_data_len = neo;
            nm->sequence_number = sub->next_seq;
            sub->next_seq = sub->next_seq == UINT32_MAX ? 1 : sub->next_seq + 1;
            r.more_notifications = sub->harv_len > 0;
            retx_store(sub, nm);
            srv->notifications_sent += nmi + nev;
        } else {
            nm->sequence_number = sub->next_seq;
        }
        r.available_sequence_numbers = available_seqs(sub, &r.available_sequence_numbers_len, &a);
        ep_ua_channel_send(s->ch, p->request_id, EP_UA_T(PublishResponse), &r);
        for (size_t k = 0; k < ntaken; k++)
            ep_ua_clear(taken[k], EP_UA_T(DataValue));
        for (size_t k = 0; k < netaken; k++) {
            for (size_t f = 0; f < ensel[k]; f++)
                ep_ua_clear(&etaken[k]->fields[f], EP_UA_T(Variant));
            free(etaken[k]->fields);
        }
        free(taken);
        free(etaken);
        free(ensel);
    } else {
        nm->sequence_number = sub->next_seq; /* keep-alive */
        r.available_sequence_numbers = available_seqs(sub, &r.available_sequence_numbers_len, &a);
        ep_ua_channel_send(s->ch, p->request_id, EP_UA_T(PublishResponse), &r);
    }
    srv->publish_responses++;
    sub->keepalive_ctr = 0;
    sub->lifetime_ctr = 0;
    /* more notifications of this cycle: the next Publish request is
     * answered at once */
    sub->late = sub->enabled && sub->harv_len > 0;
    ep_ua_arena_fini(&a);
}

static void expire_sub(ua_sub *sub)
{
    ua_session *s = sub->s;
    ep_ua_server *srv = sub->srv;
    EP_LOG_INFO(UA_LOG,
                "subscription %u of session %u expired (no Publish request "
                "for %u cycles)",
                sub->id, s->num, sub->lifetime_count);
    ua_pub p;
    if (pop_pub(s, &p)) {
        for (size_t i = 0; i < sub->ihash_cap; i++)
            for (ua_item *it = sub->ihash[i]; it; it = it->hnext)
                clear_queues(it);
        sub->ready_head = sub->ready_tail = NULL;
        harv_clear(sub);
        sub->status_change = EP_UA_STATUS_BadTimeout;
        sub->enabled = true;
        send_publish(sub, &p, NULL, 0);
    }
    sub_unlink(s, sub);
    sub_free(srv, sub);
    ep_ua__orphan_release(srv, s);
}

static void sub_tick(ep_timer *t)
{
    ua_sub *sub = t->data;
    ua_session *s = sub->s;
    ep_ua__timer_again(&sub->timer, sub->interval_ms);
    if (sub->enabled)
        harvest(sub);
    bool has = sub->enabled && (sub->harv_len || sub->status_change);
    if (has || ++sub->keepalive_ctr >= sub->keepalive_count) {
        ua_pub p;
        if (pop_pub(s, &p)) {
            send_publish(sub, &p, NULL, 0);
            /* more harvested? use further queued requests right away */
            while (sub->enabled && sub->harv_len && s->npubs && pop_pub(s, &p))
                send_publish(sub, &p, NULL, 0);
            return;
        }
        sub->late = true;
    }
    if (s->npubs == 0 && ++sub->lifetime_ctr >= sub->lifetime_count)
        expire_sub(sub);
}

void ep_ua__svc_publish(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                        const ep_ua_channel_msg *m)
{
    const ep_ua_publish_request *req = m->body;
    (void)ch;
    if (s->subs == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadNoSubscription);
        return;
    }
    size_t nacks = req->subscription_acknowledgements_len;
    if (nacks > srv->lim.max_nodes_per_request) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadTooManyOperations);
        return;
    }
    ep_ua_status *acks = nacks ? malloc(nacks * sizeof(*acks)) : NULL;
    if (nacks && acks == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadOutOfMemory);
        return;
    }
    for (size_t i = 0; i < nacks; i++) {
        const ep_ua_subscription_acknowledgement *a = &req->subscription_acknowledgements[i];
        ua_sub *sub = find_sub(s, a->subscription_id);
        acks[i] = sub ? retx_ack(sub, a->sequence_number) : EP_UA_STATUS_BadSubscriptionIdInvalid;
    }
    for (ua_sub *x = s->subs; x; x = x->next)
        x->lifetime_ctr = 0;
    /* a late subscription gets this request at once */
    ua_sub *late = NULL;
    for (ua_sub *x = s->subs; x; x = x->next)
        if (x->late && (late == NULL || x->priority > late->priority))
            late = x;
    ua_pub p = {m->request_id, m->request_handle};
    if (late) {
        send_publish(late, &p, acks, nacks);
        free(acks);
        return;
    }
    /* Queued request: the acknowledgements took effect already; their
     * results are not carried to the later response. */
    free(acks);
    unsigned max = srv->lim.max_publish_per_session;
    if (s->npubs == max) {
        ua_pub old = {0, 0};
        pop_pub(s, &old);
        ep_ua__send_fault(ch, old.request_id, old.handle, EP_UA_STATUS_BadTooManyPublishRequests);
    }
    s->pubs[(s->pub_head + s->npubs) % max] = p;
    s->npubs++;
}

void ep_ua__svc_republish(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                          const ep_ua_channel_msg *m)
{
    const ep_ua_republish_request *req = m->body;
    ua_sub *sub = find_sub(s, req->subscription_id);
    if (sub == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle,
                          EP_UA_STATUS_BadSubscriptionIdInvalid);
        return;
    }
    unsigned max = srv->lim.max_retransmit;
    for (unsigned k = 0; k < sub->nretx; k++) {
        ua_retx *rx = &sub->retx[(sub->retx_head + k) % max];
        if (rx->seq != req->retransmit_sequence_number)
            continue;
        ep_ua_republish_response r;
        memset(&r, 0, sizeof(r));
        size_t pos = 0;
        if (ep_ua_decode(ep_buf_head(&rx->msg), ep_buf_used(&rx->msg), &pos,
                         EP_UA_T(NotificationMessage), &r.notification_message, m->arena, NULL,
                         NULL) != EP_EOK)
            break;
        ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
        ep_ua__send(ch, m->request_id, EP_UA_T(RepublishResponse), &r, &r.response_header);
        return;
    }
    ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadMessageNotAvailable);
}

void ep_ua__svc_transfer(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                         const ep_ua_channel_msg *m)
{
    const ep_ua_transfer_subscriptions_request *req = m->body;
    ep_ua_status st = req->subscription_ids_len == 0 ? EP_UA_STATUS_BadNothingToDo
                      : req->subscription_ids_len > srv->lim.max_nodes_per_request
                          ? EP_UA_STATUS_BadTooManyOperations
                          : EP_UA_STATUS_Good;
    ep_ua_transfer_subscriptions_response r;
    memset(&r, 0, sizeof(r));
    if (st == EP_UA_STATUS_Good &&
        (r.results = ep_ua__alloc(m->arena, req->subscription_ids_len, sizeof(*r.results))) == NULL)
        st = EP_UA_STATUS_BadOutOfMemory;
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.results_len = req->subscription_ids_len;
    for (size_t i = 0; i < req->subscription_ids_len; i++) {
        ep_ua_transfer_result *res = &r.results[i];
        res->available_sequence_numbers = EP_UA_EMPTY;
        ua_sub *sub = NULL;
        ua_session *owner = NULL;
        for (ua_session *x = srv->sessions; x && !sub; x = x->next)
            if ((sub = find_sub(x, req->subscription_ids[i])) != NULL)
                owner = x;
        for (ua_session *x = srv->orphans; x && !sub; x = x->next)
            if ((sub = find_sub(x, req->subscription_ids[i])) != NULL)
                owner = x;
        if (sub == NULL) {
            res->status_code = EP_UA_STATUS_BadSubscriptionIdInvalid;
            continue;
        }
        if (strcmp(owner->user, s->user) != 0) {
            res->status_code = EP_UA_STATUS_BadUserAccessDenied;
            continue;
        }
        if (owner != s) {
            /* tell the old owner, if it can still hear it */
            ua_pub p;
            if (owner->ch && pop_pub(owner, &p)) {
                ep_ua_publish_response pr;
                memset(&pr, 0, sizeof(pr));
                ep_ua__resp_header(&pr.response_header, p.handle, EP_UA_STATUS_Good);
                ep_ua_status_change_notification scn;
                memset(&scn, 0, sizeof(scn));
                scn.status = EP_UA_STATUS_GoodSubscriptionTransferred;
                ep_ua_extensionobject eo;
                memset(&eo, 0, sizeof(eo));
                eo.encoding = EP_UA_EXTOBJ_DECODED;
                eo.type = EP_UA_T(StatusChangeNotification);
                eo.data = &scn;
                pr.subscription_id = sub->id;
                pr.notification_message.sequence_number = sub->next_seq;
                pr.notification_message.publish_time = ep_ua__now();
                pr.notification_message.notification_data = &eo;
                pr.notification_message.notification_data_len = 1;
                pr.available_sequence_numbers = EP_UA_EMPTY;
                pr.results = EP_UA_EMPTY;
                ep_ua_channel_send(owner->ch, p.request_id, EP_UA_T(PublishResponse), &pr);
            }
            sub_unlink(owner, sub);
            sub->s = s;
            sub->next = s->subs;
            s->subs = sub;
            ep_ua__orphan_release(srv, owner);
        }
        if (req->send_initial_values)
            for (size_t k = 0; k < sub->ihash_cap; k++)
                for (ua_item *it = sub->ihash[k]; it; it = it->hnext)
                    if (!it->is_event) {
                        it->last_version = 0;
                        it->has_last = false;
                        sample(srv, it);
                    }
        res->available_sequence_numbers =
            available_seqs(sub, &res->available_sequence_numbers_len, m->arena);
    }
    ep_ua__send(ch, m->request_id, EP_UA_T(TransferSubscriptionsResponse), &r, &r.response_header);
}
