/*
 * sub.c - subscriptions, monitored items and the publish pipeline.
 *
 * Publish pipeline. While at least one subscription is active, publish_target
 * (opts.max_publish, and at least one more than the active subscriptions,
 * up to MAX_PUBLISH_AUTO) Publish requests are kept outstanding, so the
 * server always has one to answer with and the link's latency never limits
 * the notification rate: with fewer requests than subscriptions whose
 * cycles fall close together (created in one burst), the last ones wait a
 * round trip through the client for theirs. Each Publish carries the acknowledgements queued since
 * the previous one. A request that is lost (connection dropped, timed out,
 * answered with a fault) gives its acknowledgements back to the queue, so
 * the server can release those messages after a reconnect.
 * BadTooManyPublishRequests lowers the target to what the server accepted.
 *
 * Ordering and gaps. Each subscription tracks next_seq, the sequence number
 * of the next NotificationMessage it must deliver. A data message with a
 * higher number means messages went missing (lost with a dropped
 * connection): it is held (deep copy) and each missing number is asked for
 * with Republish. A keep-alive message carries the number the next message
 * will get, so it reveals gaps too. Held messages are delivered as soon as
 * the gap below them is filled; a number the server no longer has
 * (BadMessageNotAvailable) is skipped and reported once to on_status with
 * the count. The application thus sees every notification the server still
 * held, in order. Duplicates (a republished message that arrived anyway)
 * are dropped. Sequence number wrap-around (after 2^32 messages) is not
 * handled.
 *
 * After a reconnect. Same session: publishing restarts; the first response
 * (data or keep-alive) reveals what was lost in flight. New session:
 * TransferSubscriptions moves the subscriptions over (its result lists the
 * sequence numbers still available, which are republished); a
 * subscription the server no longer knows is created again, with its
 * monitored items, from the client's records.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/opcua/gen/attributes.h"
#include "codec/opcua/gen/nodeids.h"
#include "core/log.h"
#include "svc/opcua_client/uac_int.h"

#define MAX_ACKS_PER_PUBLISH 1000u
#define MAX_ACK_QUEUE 65536u
#define MAX_GAP 4096u /* missing numbers tracked per subscription */
#define MAX_REPUBLISH_INFLIGHT 16u
#define MAX_PUBLISH_AUTO 64u /* Publish requests kept for many subscriptions */

enum { MISS_TODO = 0, MISS_INFLIGHT = 1, MISS_LOST = 2 };

/* context of an internal subscription request */
typedef struct sub_ctx {
    uint32_t sub_id;
    uint32_t seq;
    ep_uac_sub_cb cb;
    void *ud;
    size_t n;
    uint32_t *handles;
    bool recreate;
} sub_ctx;

static sub_ctx *ctx_new(uint32_t sub_id, ep_uac_sub_cb cb, void *ud)
{
    sub_ctx *x = calloc(1, sizeof(*x));
    if (x) {
        x->sub_id = sub_id;
        x->cb = cb;
        x->ud = ud;
    }
    return x;
}

static void ctx_free(sub_ctx *x)
{
    if (x) {
        free(x->handles);
        free(x);
    }
}

static void ctx_done(ep_uac *c, sub_ctx *x, ep_err err, ep_ua_status st, const void *resp)
{
    if (x->cb) {
        c->in_callback++;
        x->cb(c, err, st, x->sub_id, err == EP_EOK ? resp : NULL, x->ud);
        c->in_callback--;
    }
    ctx_free(x);
}

ep_uac_sub *ep_uac__sub_find(const ep_uac *c, uint32_t id)
{
    for (ep_uac_sub *s = c->subs; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

ep_uac_sub *ep_uac__sub_find_server(const ep_uac *c, uint32_t server_id)
{
    for (ep_uac_sub *s = c->subs; s; s = s->next)
        if (s->server_id == server_id && s->state == EP_UAC_SUB_ACTIVE)
            return s;
    return NULL;
}

uint32_t ep_uac_sub_server_id(const ep_uac *c, uint32_t sub_id)
{
    const ep_uac_sub *s = ep_uac__sub_find(c, sub_id);
    return s ? s->server_id : 0;
}

static void held_clear(ep_uac_sub *s)
{
    for (size_t i = 0; i < s->nheld; i++)
        ep_ua_clear(&s->held[i].msg, EP_UA_T(NotificationMessage));
    s->nheld = 0;
    s->nmissing = 0;
}

static void sub_free(ep_uac_sub *s)
{
    held_clear(s);
    free(s->held);
    free(s->missing);
    free(s->missing_state);
    ep_uac__montab_fini(&s->mons);
    free(s);
}

static void sub_unlink(ep_uac *c, ep_uac_sub *s)
{
    for (ep_uac_sub **pp = &c->subs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

void ep_uac__sub_free_all(ep_uac *c)
{
    while (c->subs) {
        ep_uac_sub *s = c->subs;
        c->subs = s->next;
        sub_free(s);
    }
}

static bool any_active(const ep_uac *c)
{
    for (const ep_uac_sub *s = c->subs; s; s = s->next)
        if (s->state == EP_UAC_SUB_ACTIVE && s->server_id)
            return true;
    return false;
}

/* Publish requests to keep outstanding when the server set no limit */
static uint32_t publish_want(const ep_uac *c)
{
    uint32_t n = 1;
    for (const ep_uac_sub *s = c->subs; s && n < MAX_PUBLISH_AUTO; s = s->next)
        if (s->state == EP_UAC_SUB_ACTIVE && s->server_id)
            n++;
    return n > c->opts.max_publish ? n : c->opts.max_publish;
}

uint64_t ep_uac__publish_window_ms(const ep_uac *c)
{
    uint64_t w = 0;
    for (const ep_uac_sub *s = c->subs; s; s = s->next) {
        if (s->state != EP_UAC_SUB_ACTIVE)
            continue;
        uint64_t x = (uint64_t)(s->revised_interval * (double)(s->revised_keepalive + 1));
        if (x > w)
            w = x;
    }
    if (w == 0)
        return 0;
    return w + c->opts.request_timeout_ms;
}

/* ------------------------------------------------------------- acks -- */

static void ack_push(ep_uac *c, uint32_t sub, uint32_t seq)
{
    if (c->nacks == c->capacks) {
        size_t ncap = c->capacks ? c->capacks * 2 : 64;
        if (ncap > MAX_ACK_QUEUE) {
            /* the server drops unacknowledged messages itself; losing an
             * ack only costs it memory until the subscription's queue
             * wraps */
            if (c->nacks == 0)
                return;
            memmove(c->acks, c->acks + 1, (c->nacks - 1) * sizeof(*c->acks));
            c->nacks--;
        } else {
            void *p = realloc(c->acks, ncap * sizeof(*c->acks));
            if (p == NULL)
                return;
            c->acks = p;
            c->capacks = ncap;
        }
    }
    c->acks[c->nacks].subscription_id = sub;
    c->acks[c->nacks].sequence_number = seq;
    c->nacks++;
}

void ep_uac__ack_requeue(ep_uac *c, size_t n, const ep_ua_subscription_acknowledgement *acks)
{
    for (size_t i = 0; i < n; i++)
        ack_push(c, acks[i].subscription_id, acks[i].sequence_number);
}

/* ---------------------------------------------------------- delivery -- */

static void deliver(ep_uac *c, ep_uac_sub *s, const ep_ua_notification_message *m)
{
    uint32_t id = s->id;
    /* ep_uac_disconnect ends the subscriptions for the application at once,
     * even though the server may still answer Publish requests until the
     * session is closed */
    if (c->state == EP_UAC_CLOSING)
        return;
    EP_LOG_TRACE(EP_UAC_LOG, "subscription %u: deliver seq %u", id, m->sequence_number);
    c->in_callback++;
    for (size_t i = 0; i < m->notification_data_len; i++) {
        const ep_ua_extensionobject *x = &m->notification_data[i];
        if (x->encoding != EP_UA_EXTOBJ_DECODED || x->data == NULL)
            continue;
        if (x->type == EP_UA_T(DataChangeNotification)) {
            const ep_ua_data_change_notification *d = x->data;
            c->stats.notifications += d->monitored_items_len;
            if (s->h.on_data)
                for (size_t k = 0; k < d->monitored_items_len; k++)
                    s->h.on_data(c, id, d->monitored_items[k].client_handle,
                                 &d->monitored_items[k].value, s->h.ud);
        } else if (x->type == EP_UA_T(EventNotificationList)) {
            const ep_ua_event_notification_list *e = x->data;
            c->stats.notifications += e->events_len;
            if (s->h.on_event)
                for (size_t k = 0; k < e->events_len; k++)
                    s->h.on_event(c, id, e->events[k].client_handle, e->events[k].event_fields_len,
                                  e->events[k].event_fields, s->h.ud);
        } else if (x->type == EP_UA_T(StatusChangeNotification)) {
            const ep_ua_status_change_notification *sc = x->data;
            EP_LOG_INFO(EP_UAC_LOG, "subscription %u: status %s", id,
                        ep_ua_status_name(sc->status));
            if (s->h.on_status)
                s->h.on_status(c, id, sc->status, 0, s->h.ud);
        }
    }
    if (s->h.on_message)
        s->h.on_message(c, id, m->sequence_number, m->publish_time, s->h.ud);
    c->in_callback--;
}

static ptrdiff_t missing_find(const ep_uac_sub *s, uint32_t seq)
{
    size_t lo = 0, hi = s->nmissing;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->missing[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nmissing && s->missing[lo] == seq ? (ptrdiff_t)lo : -1;
}

static void missing_remove_at(ep_uac_sub *s, size_t i)
{
    memmove(s->missing + i, s->missing + i + 1, (s->nmissing - i - 1) * sizeof(*s->missing));
    memmove(s->missing_state + i, s->missing_state + i + 1, s->nmissing - i - 1);
    s->nmissing--;
}

static bool held_has(const ep_uac_sub *s, uint32_t seq)
{
    for (size_t i = 0; i < s->nheld; i++)
        if (s->held[i].seq == seq)
            return true;
    return false;
}

/* insert seq (not present) keeping order; false when full or OOM */
static bool missing_add(ep_uac_sub *s, uint32_t seq)
{
    if (s->nmissing >= MAX_GAP)
        return false;
    if (s->nmissing == s->capmissing) {
        size_t ncap = s->capmissing ? s->capmissing * 2 : 16;
        uint32_t *a = realloc(s->missing, ncap * sizeof(*a));
        if (a == NULL)
            return false;
        s->missing = a;
        uint8_t *b = realloc(s->missing_state, ncap);
        if (b == NULL)
            return false;
        s->missing_state = b;
        s->capmissing = ncap;
    }
    size_t i = s->nmissing;
    while (i > 0 && s->missing[i - 1] > seq)
        i--;
    memmove(s->missing + i + 1, s->missing + i, (s->nmissing - i) * sizeof(*s->missing));
    memmove(s->missing_state + i + 1, s->missing_state + i, s->nmissing - i);
    s->missing[i] = seq;
    s->missing_state[i] = MISS_TODO;
    s->nmissing++;
    return true;
}

/* record [from, to) as missing unless held or already missing; numbers
 * beyond the tracking limit are declared lost at once */
static uint32_t mark_gap(ep_uac_sub *s, uint32_t from, uint32_t to)
{
    uint32_t lost = 0;
    for (uint32_t k = from; k < to; k++) {
        if (held_has(s, k) || missing_find(s, k) >= 0)
            continue;
        if (!missing_add(s, k))
            lost++;
    }
    return lost;
}

static void drain(ep_uac *c, ep_uac_sub *s)
{
    uint32_t lost = 0;
    for (;;) {
        if (s->nheld && s->held[0].seq == s->next_seq) {
            ep_uac_held h = s->held[0];
            memmove(s->held, s->held + 1, (s->nheld - 1) * sizeof(*s->held));
            s->nheld--;
            ptrdiff_t mi = missing_find(s, h.seq);
            if (mi >= 0)
                missing_remove_at(s, (size_t)mi);
            s->next_seq = h.seq + 1;
            deliver(c, s, &h.msg);
            ep_ua_clear(&h.msg, EP_UA_T(NotificationMessage));
            if (ep_uac__sub_find(c, s->id) != s)
                return; /* deleted from a callback */
            continue;
        }
        if (s->nmissing && s->missing[0] == s->next_seq && s->missing_state[0] == MISS_LOST) {
            missing_remove_at(s, 0);
            s->next_seq++;
            lost++;
            continue;
        }
        if (s->nmissing && s->missing[0] < s->next_seq) {
            missing_remove_at(s, 0); /* filled meanwhile */
            continue;
        }
        break;
    }
    if (lost) {
        c->stats.lost += lost;
        EP_LOG_WARN(EP_UAC_LOG,
                    "subscription %u: %u notification message(s) no longer "
                    "available on the server",
                    s->id, lost);
        if (s->h.on_status) {
            c->in_callback++;
            s->h.on_status(c, s->id, EP_UA_STATUS_BadMessageNotAvailable, lost, s->h.ud);
            c->in_callback--;
        }
    }
}

static void republish_more(ep_uac *c, ep_uac_sub *s);

static void republish_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    sub_ctx *x = r->ictx;
    uint32_t sid = x->sub_id;
    ep_uac_sub *s = ep_uac__sub_find(c, sid);
    uint32_t seq = x->seq;
    ctx_free(x);
    if (s == NULL || s->state != EP_UAC_SUB_ACTIVE)
        return;
    ptrdiff_t mi = missing_find(s, seq);
    if (mi < 0)
        return; /* already arrived */
    if (err == EP_EOK && st == EP_UA_STATUS_Good) {
        const ep_ua_republish_response *rr = resp;
        if (rr->notification_message.sequence_number == seq) {
            c->stats.republished++;
            ep_uac__sub_on_notification(c, s, &rr->notification_message, true);
            if (ep_uac__sub_find(c, sid) != s)
                return;
        } else {
            s->missing_state[mi] = MISS_LOST;
        }
    } else if (err == EP_ECLOSED || err == EP_ETIMEDOUT) {
        s->missing_state[mi] = MISS_TODO; /* again after reconnecting */
        return;
    } else {
        /* BadMessageNotAvailable (ServiceFault) or anything else: gone */
        s->missing_state[mi] = MISS_LOST;
    }
    drain(c, s);
    if (ep_uac__sub_find(c, sid) == s)
        republish_more(c, s);
}

static void republish_more(ep_uac *c, ep_uac_sub *s)
{
    if (c->phase != EP_UAC_PH_READY || s->state != EP_UAC_SUB_ACTIVE)
        return;
    unsigned inflight = 0;
    for (size_t i = 0; i < s->nmissing; i++)
        if (s->missing_state[i] == MISS_INFLIGHT)
            inflight++;
    for (size_t i = 0; i < s->nmissing && inflight < MAX_REPUBLISH_INFLIGHT; i++) {
        if (s->missing_state[i] != MISS_TODO)
            continue;
        sub_ctx *x = ctx_new(s->id, NULL, NULL);
        ep_uac_req *r =
            x ? ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(RepublishRequest)) : NULL;
        if (r == NULL) {
            ctx_free(x);
            return;
        }
        x->seq = s->missing[i];
        r->icb = republish_done;
        r->ictx = x;
        ep_ua_republish_request req;
        memset(&req, 0, sizeof(req));
        req.subscription_id = s->server_id;
        req.retransmit_sequence_number = s->missing[i];
        if (ep_uac__req_submit(c, r, &req) != EP_EOK) {
            ctx_free(x);
            return;
        }
        s->missing_state[i] = MISS_INFLIGHT;
        inflight++;
    }
}

static bool hold(ep_uac_sub *s, const ep_ua_notification_message *m)
{
    if (s->nheld == s->capheld) {
        size_t ncap = s->capheld ? s->capheld * 2 : 8;
        void *p = realloc(s->held, ncap * sizeof(*s->held));
        if (p == NULL)
            return false;
        s->held = p;
        s->capheld = ncap;
    }
    size_t i = s->nheld;
    while (i > 0 && s->held[i - 1].seq > m->sequence_number)
        i--;
    ep_uac_held h;
    memset(&h, 0, sizeof(h));
    h.seq = m->sequence_number;
    if (ep_ua_copy(m, &h.msg, EP_UA_T(NotificationMessage)) != EP_EOK)
        return false;
    memmove(s->held + i + 1, s->held + i, (s->nheld - i) * sizeof(*s->held));
    s->held[i] = h;
    s->nheld++;
    return true;
}

/* numbers [next_seq, to) not held are missing. A gap wider than MAX_GAP
 * gives up its oldest part at once: held messages there are delivered and
 * the rest counted as lost. */
static void open_gap(ep_uac *c, ep_uac_sub *s, uint32_t to)
{
    if (to - s->next_seq > MAX_GAP) {
        uint32_t new_next = to - MAX_GAP;
        for (size_t i = 0; i < s->nmissing; i++)
            if (s->missing[i] < new_next)
                s->missing_state[i] = MISS_LOST;
        uint32_t gone = 0;
        for (uint32_t k = s->next_seq; k < new_next; k++)
            if (!held_has(s, k) && missing_find(s, k) < 0)
                gone++;
        c->stats.lost += gone;
        while (s->next_seq < new_next) {
            uint32_t sid = s->id;
            drain(c, s);
            if (ep_uac__sub_find(c, sid) != s)
                return;
            if (s->next_seq < new_next && !(s->nheld && s->held[0].seq == s->next_seq))
                s->next_seq++;
        }
        if (gone && s->h.on_status) {
            c->in_callback++;
            s->h.on_status(c, s->id, EP_UA_STATUS_BadMessageNotAvailable, gone, s->h.ud);
            c->in_callback--;
        }
    }
    mark_gap(s, s->next_seq, to);
}

void ep_uac__sub_on_notification(ep_uac *c, ep_uac_sub *s, const ep_ua_notification_message *m,
                                 bool republished)
{
    uint32_t seq = m->sequence_number;
    if (m->notification_data_len == 0) {
        /* keep-alive: seq is the number the next message will carry */
        c->stats.keepalives++;
        if (republished)
            return;
        if (s->next_seq == 0) {
            s->next_seq = seq;
        } else if (seq > s->next_seq) {
            uint32_t sid = s->id;
            open_gap(c, s, seq);
            if (ep_uac__sub_find(c, sid) != s)
                return;
            drain(c, s);
            if (ep_uac__sub_find(c, sid) == s)
                republish_more(c, s);
        }
        return;
    }
    ack_push(c, s->server_id, seq);
    if (s->next_seq == 0)
        s->next_seq = seq;
    if (seq < s->next_seq)
        return; /* duplicate */
    uint32_t sid = s->id;
    if (seq == s->next_seq) {
        ptrdiff_t mi = missing_find(s, seq);
        if (mi >= 0)
            missing_remove_at(s, (size_t)mi);
        s->next_seq = seq + 1;
        deliver(c, s, m);
        if (ep_uac__sub_find(c, sid) != s)
            return;
        drain(c, s);
        return;
    }
    /* ahead of next_seq: hold it until the gap is filled */
    if (held_has(s, seq))
        return;
    ptrdiff_t mi = missing_find(s, seq);
    if (mi >= 0)
        missing_remove_at(s, (size_t)mi);
    if (!hold(s, m)) {
        /* cannot hold: give up on the gap and deliver now */
        for (size_t i = 0; i < s->nmissing; i++)
            s->missing_state[i] = MISS_LOST;
        drain(c, s);
        if (ep_uac__sub_find(c, sid) != s)
            return;
        s->next_seq = seq + 1;
        deliver(c, s, m);
        return;
    }
    if (!republished) {
        open_gap(c, s, seq);
        if (ep_uac__sub_find(c, sid) != s)
            return;
    }
    drain(c, s);
    if (ep_uac__sub_find(c, sid) == s)
        republish_more(c, s);
}

/* ---------------------------------------------------------- publish -- */

static void publish_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    (void)r;
    if (err == EP_EOK && st != EP_UA_STATUS_Good)
        err = EP_EPROTO;
    if (err != EP_EOK) {
        switch (st & 0xFFFF0000u) {
        case EP_UA_STATUS_BadNoSubscription:
            c->no_subscription_on_server = true;
            break;
        case EP_UA_STATUS_BadTooManyPublishRequests:
            c->publish_target = c->publish_outstanding ? c->publish_outstanding : 1;
            EP_LOG_DEBUG(EP_UAC_LOG, "publish target lowered to %u", c->publish_target);
            break;
        default:
            break;
        }
        return;
    }
    const ep_ua_publish_response *p = resp;
    c->stats.publish_responses++;
    ep_uac_sub *s = ep_uac__sub_find_server(c, p->subscription_id);
    if (s == NULL) {
        EP_LOG_DEBUG(EP_UAC_LOG, "Publish response for unknown subscription %u",
                     p->subscription_id);
        return;
    }
    ep_uac__sub_on_notification(c, s, &p->notification_message, false);
}

void ep_uac__publish_pump(ep_uac *c)
{
    if (c->phase != EP_UAC_PH_READY || c->no_subscription_on_server || !any_active(c))
        return;
    uint32_t target = c->publish_target ? c->publish_target : publish_want(c);
    uint64_t window = ep_uac__publish_window_ms(c);
    while (c->publish_outstanding < target) {
        ep_uac_req *r = ep_uac__req_new(c, EP_UAC_REQ_PUBLISH, EP_UA_T(PublishRequest));
        if (r == NULL)
            return;
        size_t n = c->nacks < MAX_ACKS_PER_PUBLISH ? c->nacks : MAX_ACKS_PER_PUBLISH;
        if (n) {
            r->acks = malloc(n * sizeof(*r->acks));
            if (r->acks == NULL) {
                ep_uac__req_free(r);
                return;
            }
            memcpy(r->acks, c->acks, n * sizeof(*r->acks));
            r->nacks = n;
            memmove(c->acks, c->acks + n, (c->nacks - n) * sizeof(*c->acks));
            c->nacks -= n;
        }
        r->icb = publish_done;
        /* the server may hold each request up to a keep-alive period per
         * request queued before it */
        uint64_t t = window * (uint64_t)(target + 1);
        r->timeout_ms = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
        ep_ua_publish_request req;
        memset(&req, 0, sizeof(req));
        req.subscription_acknowledgements_len = r->nacks;
        req.subscription_acknowledgements = r->acks;
        size_t nacks = r->nacks;
        ep_ua_subscription_acknowledgement *acks = NULL;
        if (nacks) {
            acks = malloc(nacks * sizeof(*acks));
            if (acks)
                memcpy(acks, r->acks, nacks * sizeof(*acks));
        }
        ep_err err = ep_uac__req_submit(c, r, &req); /* frees r on error */
        if (err != EP_EOK) {
            if (acks)
                ep_uac__ack_requeue(c, nacks, acks);
            free(acks);
            return;
        }
        free(acks);
    }
}

void ep_uac__sub_on_link_lost(ep_uac *c)
{
    c->publish_outstanding = 0;
    c->publish_target = 0;
    for (ep_uac_sub *s = c->subs; s; s = s->next)
        for (size_t i = 0; i < s->nmissing; i++)
            if (s->missing_state[i] == MISS_INFLIGHT)
                s->missing_state[i] = MISS_TODO;
}

/* ------------------------------------------------------ create/modify -- */

static void fill_sub_opts(ep_uac_sub_opts *o)
{
    if (o->publishing_interval_ms <= 0)
        o->publishing_interval_ms = 1000;
    if (!o->max_keepalive_count)
        o->max_keepalive_count = 10;
    if (!o->lifetime_count) {
        o->lifetime_count = o->max_keepalive_count * 3;
        if (o->lifetime_count < 60)
            o->lifetime_count = 60;
    }
}

static ep_err send_create_monitored(ep_uac *c, ep_uac_sub *s, size_t n,
                                    const ep_ua_monitored_item_create_request *it, ep_uac_sub_cb cb,
                                    void *ud);

static void recreate_items_done(ep_uac *c, ep_err err, ep_ua_status st, uint32_t sub_id,
                                const void *resp, void *ud)
{
    (void)c;
    (void)resp;
    (void)ud;
    if (err != EP_EOK)
        EP_LOG_WARN(EP_UAC_LOG, "subscription %u: monitored items not created again: %s", sub_id,
                    ep_ua_status_name(st));
}

static void create_sub_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    sub_ctx *x = r->ictx;
    r->ictx = NULL;
    ep_uac_sub *s = ep_uac__sub_find(c, x->sub_id);
    if (err == EP_EOK && st != EP_UA_STATUS_Good)
        err = EP_EPROTO;
    if (s == NULL) {
        ctx_done(c, x, err == EP_EOK ? EP_ECLOSED : err, st, NULL);
        return;
    }
    if (err != EP_EOK) {
        if (x->recreate) {
            s->state = EP_UAC_SUB_LOST; /* try again after next reconnect */
        } else {
            sub_unlink(c, s);
            sub_free(s);
        }
        ctx_done(c, x, err, st, NULL);
        return;
    }
    const ep_ua_create_subscription_response *cr = resp;
    s->server_id = cr->subscription_id;
    s->revised_interval = cr->revised_publishing_interval;
    s->revised_keepalive = cr->revised_max_keep_alive_count;
    s->revised_lifetime = cr->revised_lifetime_count;
    s->state = EP_UAC_SUB_ACTIVE;
    s->next_seq = 0;
    held_clear(s);
    c->no_subscription_on_server = false;
    if (x->recreate && s->mons.n) {
        size_t n = s->mons.n;
        ep_ua_monitored_item_create_request *items = calloc(n, sizeof(*items));
        if (items) {
            for (size_t i = 0; i < n; i++) {
                /* shallow: borrowed for the call */
                ep_uac__mon_request(&s->mons.v[i], &items[i]);
                s->mons.v[i].server_id = 0;
            }
            send_create_monitored(c, s, n, items, recreate_items_done, NULL);
            free(items);
        }
        if (s->h.on_status) {
            c->in_callback++;
            s->h.on_status(c, s->id, EP_UA_STATUS_BadSubscriptionIdInvalid, 0, s->h.ud);
            c->in_callback--;
        }
    }
    ep_uac__keepalive_arm(c);
    ep_uac__publish_pump(c);
    ctx_done(c, x, EP_EOK, st, resp);
}

static ep_err send_create_sub(ep_uac *c, ep_uac_sub *s, bool recreate, ep_uac_sub_cb cb, void *ud)
{
    sub_ctx *x = ctx_new(s->id, cb, ud);
    if (x == NULL)
        return EP_ENOMEM;
    x->recreate = recreate;
    ep_uac_req *r = ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(CreateSubscriptionRequest));
    if (r == NULL) {
        ctx_free(x);
        return EP_ENOMEM;
    }
    r->icb = create_sub_done;
    r->ictx = x;
    ep_ua_create_subscription_request req;
    memset(&req, 0, sizeof(req));
    req.requested_publishing_interval = s->opts.publishing_interval_ms;
    req.requested_lifetime_count = s->opts.lifetime_count;
    req.requested_max_keep_alive_count = s->opts.max_keepalive_count;
    req.max_notifications_per_publish = s->opts.max_notifications;
    req.publishing_enabled = true;
    req.priority = s->opts.priority;
    ep_err err = ep_uac__req_submit(c, r, &req);
    if (err != EP_EOK)
        ctx_free(x);
    return err;
}

ep_err ep_uac_sub_create(ep_uac *c, const ep_uac_sub_opts *o, const ep_uac_sub_handlers *h,
                         ep_uac_sub_cb cb, void *ud, uint32_t *sub_id)
{
    if (c->phase != EP_UAC_PH_READY)
        return EP_ESTATE;
    ep_uac_sub *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return EP_ENOMEM;
    s->id = c->next_sub_id++;
    if (c->next_sub_id == 0)
        c->next_sub_id = 1;
    if (o)
        s->opts = *o;
    fill_sub_opts(&s->opts);
    if (h)
        s->h = *h;
    s->state = EP_UAC_SUB_CREATING;
    s->next = c->subs;
    c->subs = s;
    ep_err err = send_create_sub(c, s, false, cb, ud);
    if (err != EP_EOK) {
        sub_unlink(c, s);
        sub_free(s);
        return err;
    }
    if (sub_id)
        *sub_id = s->id;
    return EP_EOK;
}

static void modify_sub_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    sub_ctx *x = r->ictx;
    ep_uac_sub *s = ep_uac__sub_find(c, x->sub_id);
    if (err == EP_EOK && st == EP_UA_STATUS_Good && s) {
        const ep_ua_modify_subscription_response *m = resp;
        s->revised_interval = m->revised_publishing_interval;
        s->revised_keepalive = m->revised_max_keep_alive_count;
        s->revised_lifetime = m->revised_lifetime_count;
    }
    ctx_done(c, x, err, st, resp);
}

ep_err ep_uac_sub_modify(ep_uac *c, uint32_t sub_id, const ep_uac_sub_opts *o, ep_uac_sub_cb cb,
                         void *ud)
{
    ep_uac_sub *s = ep_uac__sub_find(c, sub_id);
    if (s == NULL || o == NULL)
        return EP_EINVAL;
    if (c->phase != EP_UAC_PH_READY || s->state != EP_UAC_SUB_ACTIVE)
        return EP_ESTATE;
    s->opts = *o;
    fill_sub_opts(&s->opts);
    sub_ctx *x = ctx_new(sub_id, cb, ud);
    ep_uac_req *r =
        x ? ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(ModifySubscriptionRequest)) : NULL;
    if (r == NULL) {
        ctx_free(x);
        return EP_ENOMEM;
    }
    r->icb = modify_sub_done;
    r->ictx = x;
    ep_ua_modify_subscription_request req;
    memset(&req, 0, sizeof(req));
    req.subscription_id = s->server_id;
    req.requested_publishing_interval = s->opts.publishing_interval_ms;
    req.requested_lifetime_count = s->opts.lifetime_count;
    req.requested_max_keep_alive_count = s->opts.max_keepalive_count;
    req.max_notifications_per_publish = s->opts.max_notifications;
    req.priority = s->opts.priority;
    ep_err err = ep_uac__req_submit(c, r, &req);
    if (err != EP_EOK)
        ctx_free(x);
    return err;
}

static void delete_sub_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    ctx_done(c, r->ictx, err, st, resp);
}

ep_err ep_uac_sub_delete(ep_uac *c, uint32_t sub_id, ep_uac_sub_cb cb, void *ud)
{
    ep_uac_sub *s = ep_uac__sub_find(c, sub_id);
    if (s == NULL)
        return EP_EINVAL;
    uint32_t server_id = s->server_id;
    bool on_server = s->state == EP_UAC_SUB_ACTIVE && server_id;
    sub_unlink(c, s);
    sub_free(s);
    /* drop its queued acknowledgements */
    size_t k = 0;
    for (size_t i = 0; i < c->nacks; i++)
        if (c->acks[i].subscription_id != server_id)
            c->acks[k++] = c->acks[i];
    c->nacks = k;
    if (!on_server || c->phase != EP_UAC_PH_READY) {
        if (cb)
            cb(c, EP_EOK, EP_UA_STATUS_Good, sub_id, NULL, ud);
        return EP_EOK;
    }
    sub_ctx *x = ctx_new(sub_id, cb, ud);
    ep_uac_req *r =
        x ? ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(DeleteSubscriptionsRequest)) : NULL;
    if (r == NULL) {
        ctx_free(x);
        return EP_ENOMEM;
    }
    r->icb = delete_sub_done;
    r->ictx = x;
    ep_ua_delete_subscriptions_request req;
    memset(&req, 0, sizeof(req));
    req.subscription_ids_len = 1;
    req.subscription_ids = &server_id;
    ep_err err = ep_uac__req_submit(c, r, &req);
    if (err != EP_EOK)
        ctx_free(x);
    return err;
}

/* ---------------------------------------------------- monitored items -- */

static ep_uac_mon *mon_find(ep_uac_sub *s, uint32_t handle)
{
    return ep_uac__mon_find(&s->mons, handle);
}

static void mon_remove(ep_uac_sub *s, uint32_t handle) { ep_uac__mon_remove(&s->mons, handle); }

static void create_mon_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    sub_ctx *x = r->ictx;
    ep_uac_sub *s = ep_uac__sub_find(c, x->sub_id);
    if (s && err == EP_EOK && st == EP_UA_STATUS_Good) {
        const ep_ua_create_monitored_items_response *m = resp;
        for (size_t i = 0; i < x->n && i < m->results_len; i++) {
            ep_uac_mon *mon = mon_find(s, x->handles[i]);
            if (mon == NULL)
                continue;
            if (m->results[i].status_code & 0x80000000u)
                mon_remove(s, x->handles[i]);
            else
                mon->server_id = m->results[i].monitored_item_id;
        }
    } else if (s && !x->recreate) {
        for (size_t i = 0; i < x->n; i++) {
            ep_uac_mon *mon = mon_find(s, x->handles[i]);
            if (mon && mon->server_id == 0)
                mon_remove(s, x->handles[i]);
        }
    }
    ctx_done(c, x, err, st, resp);
}

static ep_err send_create_monitored(ep_uac *c, ep_uac_sub *s, size_t n,
                                    const ep_ua_monitored_item_create_request *it, ep_uac_sub_cb cb,
                                    void *ud)
{
    sub_ctx *x = ctx_new(s->id, cb, ud);
    if (x == NULL)
        return EP_ENOMEM;
    x->n = n;
    x->handles = malloc((n ? n : 1) * sizeof(uint32_t));
    ep_uac_req *r =
        x->handles ? ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(CreateMonitoredItemsRequest))
                   : NULL;
    if (r == NULL) {
        ctx_free(x);
        return EP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        x->handles[i] = it[i].requested_parameters.client_handle;
    r->icb = create_mon_done;
    r->ictx = x;
    ep_ua_create_monitored_items_request req;
    memset(&req, 0, sizeof(req));
    req.subscription_id = s->server_id;
    req.timestamps_to_return = EP_UA_TIMESTAMPS_TO_RETURN_BOTH;
    req.items_to_create_len = n;
    req.items_to_create = (ep_ua_monitored_item_create_request *)(uintptr_t)it;
    ep_err err = ep_uac__req_submit(c, r, &req);
    if (err != EP_EOK)
        ctx_free(x);
    return err;
}

/* build the parameters of one item; temporaries from arena */
static ep_err build_params(const ep_uac_mon_item *m, ep_ua_arena *a, ep_ua_monitoring_parameters *p)
{
    memset(p, 0, sizeof(*p));
    p->client_handle = m->client_handle;
    p->sampling_interval = m->sampling_ms;
    p->queue_size = m->queue_size ? m->queue_size : (m->nselect ? 0 : 1);
    p->discard_oldest = !m->discard_newest;
    if (m->nselect) {
        ep_ua_event_filter *f;
        ep_ua_simple_attribute_operand *ops;
        ep_err err = ep_ua_arena_alloc(a, sizeof(*f), (void **)&f);
        if (err == EP_EOK)
            err = ep_ua_arena_alloc(a, m->nselect * sizeof(*ops), (void **)&ops);
        if (err != EP_EOK)
            return err;
        for (size_t i = 0; i < m->nselect; i++) {
            const char *path = m->select[i];
            size_t parts = 1;
            for (const char *q = path; *q; q++)
                parts += *q == '/';
            ep_ua_qualifiedname *qn;
            err = ep_ua_arena_alloc(a, parts * sizeof(*qn), (void **)&qn);
            if (err != EP_EOK)
                return err;
            size_t k = 0;
            const char *start = path;
            for (const char *q = path;; q++) {
                if (*q == '/' || *q == 0) {
                    qn[k].ns = 0;
                    qn[k].name.len = (size_t)(q - start);
                    qn[k].name.data =
                        qn[k].name.len ? (uint8_t *)(uintptr_t)start : (uint8_t *)EP_UA_EMPTY;
                    k++;
                    if (*q == 0)
                        break;
                    start = q + 1;
                }
            }
            ops[i].type_definition_id = ep_ua_nodeid_numeric(0, EP_UA_NS0_BaseEventType);
            ops[i].browse_path_len = parts;
            ops[i].browse_path = qn;
            ops[i].attribute_id = EP_UA_ATTR_Value;
        }
        f->select_clauses_len = m->nselect;
        f->select_clauses = ops;
        p->filter.encoding = EP_UA_EXTOBJ_DECODED;
        p->filter.type = EP_UA_T(EventFilter);
        p->filter.data = f;
    } else if (m->data_filter) {
        ep_ua_data_change_filter *f;
        ep_err err = ep_ua_arena_alloc(a, sizeof(*f), (void **)&f);
        if (err != EP_EOK)
            return err;
        f->trigger = m->trigger;
        f->deadband_type = (uint32_t)m->deadband_type;
        f->deadband_value = m->deadband;
        p->filter.encoding = EP_UA_EXTOBJ_DECODED;
        p->filter.type = EP_UA_T(DataChangeFilter);
        p->filter.data = f;
    }
    return EP_EOK;
}

ep_err ep_uac_mon_create(ep_uac *c, uint32_t sub_id, size_t n, const ep_uac_mon_item *items,
                         ep_uac_sub_cb cb, void *ud)
{
    ep_uac_sub *s = ep_uac__sub_find(c, sub_id);
    if (s == NULL || (n && items == NULL))
        return EP_EINVAL;
    if (c->phase != EP_UAC_PH_READY || s->state != EP_UAC_SUB_ACTIVE)
        return EP_ESTATE;
    for (size_t i = 0; i < n; i++)
        if (mon_find(s, items[i].client_handle))
            return EP_EEXIST;
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    ep_ua_monitored_item_create_request *reqs = NULL;
    ep_err err = ep_ua_arena_alloc(&a, (n ? n : 1) * sizeof(*reqs), (void **)&reqs);
    for (size_t i = 0; err == EP_EOK && i < n; i++) {
        reqs[i].item_to_monitor.node_id = items[i].node;
        reqs[i].item_to_monitor.attribute_id = items[i].attribute_id ? items[i].attribute_id
                                               : items[i].nselect    ? EP_UA_ATTR_EventNotifier
                                                                     : EP_UA_ATTR_Value;
        reqs[i].monitoring_mode = items[i].mode ? items[i].mode : EP_UA_MONITORING_MODE_REPORTING;
        err = build_params(&items[i], &a, &reqs[i].requested_parameters);
    }
    /* remember them for re-creation */
    if (err == EP_EOK)
        err = ep_uac__mon_reserve(&s->mons, n);
    size_t added = 0;
    for (size_t i = 0; err == EP_EOK && i < n; i++) {
        err = ep_uac__mon_add(&s->mons, &reqs[i]);
        if (err == EP_EOK)
            added++;
    }
    if (err == EP_EOK)
        err = send_create_monitored(c, s, n, reqs, cb, ud);
    if (err != EP_EOK) {
        for (size_t i = 0; i < added; i++)
            mon_remove(s, items[i].client_handle);
    }
    ep_ua_arena_fini(&a);
    return err;
}

static void simple_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    ctx_done(c, r->ictx, err, st, resp);
}

ep_err ep_uac_mon_modify(ep_uac *c, uint32_t sub_id, size_t n, const ep_uac_mon_item *items,
                         ep_uac_sub_cb cb, void *ud)
{
    ep_uac_sub *s = ep_uac__sub_find(c, sub_id);
    if (s == NULL || n == 0 || items == NULL)
        return EP_EINVAL;
    if (c->phase != EP_UAC_PH_READY || s->state != EP_UAC_SUB_ACTIVE)
        return EP_ESTATE;
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    ep_ua_monitored_item_modify_request *mods = NULL;
    ep_err err = ep_ua_arena_alloc(&a, n * sizeof(*mods), (void **)&mods);
    for (size_t i = 0; err == EP_EOK && i < n; i++) {
        ep_uac_mon *m = mon_find(s, items[i].client_handle);
        if (m == NULL || m->server_id == 0) {
            err = EP_ENOTFOUND;
            break;
        }
        mods[i].monitored_item_id = m->server_id;
        err = build_params(&items[i], &a, &mods[i].requested_parameters);
        if (err == EP_EOK) /* keep the record current for re-creation */
            err = ep_uac__mon_set_params(m, &mods[i].requested_parameters);
    }
    sub_ctx *x = NULL;
    ep_uac_req *r = NULL;
    if (err == EP_EOK) {
        x = ctx_new(sub_id, cb, ud);
        r = x ? ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(ModifyMonitoredItemsRequest))
              : NULL;
        if (r == NULL) {
            ctx_free(x);
            err = EP_ENOMEM;
        }
    }
    if (err == EP_EOK) {
        r->icb = simple_done;
        r->ictx = x;
        ep_ua_modify_monitored_items_request req;
        memset(&req, 0, sizeof(req));
        req.subscription_id = s->server_id;
        req.timestamps_to_return = EP_UA_TIMESTAMPS_TO_RETURN_BOTH;
        req.items_to_modify_len = n;
        req.items_to_modify = mods;
        err = ep_uac__req_submit(c, r, &req);
        if (err != EP_EOK)
            ctx_free(x);
    }
    ep_ua_arena_fini(&a);
    return err;
}

ep_err ep_uac_mon_delete(ep_uac *c, uint32_t sub_id, size_t n, const uint32_t *client_handles,
                         ep_uac_sub_cb cb, void *ud)
{
    ep_uac_sub *s = ep_uac__sub_find(c, sub_id);
    if (s == NULL || n == 0 || client_handles == NULL)
        return EP_EINVAL;
    if (c->phase != EP_UAC_PH_READY || s->state != EP_UAC_SUB_ACTIVE)
        return EP_ESTATE;
    uint32_t *ids = malloc(n * sizeof(*ids));
    if (ids == NULL)
        return EP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        ep_uac_mon *m = mon_find(s, client_handles[i]);
        if (m == NULL) {
            free(ids);
            return EP_ENOTFOUND;
        }
        ids[i] = m->server_id;
    }
    sub_ctx *x = ctx_new(sub_id, cb, ud);
    ep_uac_req *r =
        x ? ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(DeleteMonitoredItemsRequest)) : NULL;
    if (r == NULL) {
        ctx_free(x);
        free(ids);
        return EP_ENOMEM;
    }
    r->icb = simple_done;
    r->ictx = x;
    ep_ua_delete_monitored_items_request req;
    memset(&req, 0, sizeof(req));
    req.subscription_id = s->server_id;
    req.monitored_item_ids_len = n;
    req.monitored_item_ids = ids;
    ep_err err = ep_uac__req_submit(c, r, &req);
    free(ids);
    if (err != EP_EOK) {
        ctx_free(x);
        return err;
    }
    for (size_t i = 0; i < n; i++)
        mon_remove(s, client_handles[i]);
    return EP_EOK;
}

/* ------------------------------------------------ session recovery -- */

static void recreate(ep_uac *c, ep_uac_sub *s)
{
    EP_LOG_INFO(EP_UAC_LOG,
                "subscription %u unknown to the server: creating it again "
                "with %zu monitored item(s)",
                s->id, s->mons.n);
    if (s->nmissing || s->nheld) {
        uint32_t lost = (uint32_t)s->nmissing;
        c->stats.lost += lost;
    }
    held_clear(s);
    s->state = EP_UAC_SUB_CREATING;
    s->server_id = 0;
    if (send_create_sub(c, s, true, NULL, NULL) != EP_EOK)
        s->state = EP_UAC_SUB_LOST;
}

static void transfer_done(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    (void)r;
    const ep_ua_transfer_subscriptions_response *t = resp;
    if (err == EP_ECLOSED || err == EP_ETIMEDOUT)
        return; /* the next reconnect tries again */
    size_t k = 0;
    for (ep_uac_sub *s = c->subs; s; s = s->next) {
        if (s->state != EP_UAC_SUB_LOST || s->server_id == 0)
            continue;
        bool ok = err == EP_EOK && st == EP_UA_STATUS_Good && t && k < t->results_len &&
                  !(t->results[k].status_code & 0x80000000u);
        if (ok) {
            s->state = EP_UAC_SUB_ACTIVE;
            c->stats.transfers++;
            const ep_ua_transfer_result *tr = &t->results[k];
            for (size_t i = 0; i < tr->available_sequence_numbers_len; i++) {
                uint32_t q = tr->available_sequence_numbers[i];
                if (s->next_seq && q >= s->next_seq && !held_has(s, q) && missing_find(s, q) < 0)
                    missing_add(s, q);
            }
            if (s->h.on_status) {
                c->in_callback++;
                s->h.on_status(c, s->id, EP_UA_STATUS_GoodSubscriptionTransferred, 0, s->h.ud);
                c->in_callback--;
            }
            republish_more(c, s);
        }
        k++;
    }
    /* whatever was not transferred is created again */
    for (ep_uac_sub *s = c->subs; s; s = s->next)
        if (s->state == EP_UAC_SUB_LOST)
            recreate(c, s);
    ep_uac__keepalive_arm(c);
    ep_uac__publish_pump(c);
}

void ep_uac__sub_on_session_ready(ep_uac *c, bool new_session)
{
    c->publish_target = 0;
    c->no_subscription_on_server = false;
    if (new_session) {
        size_t n = 0;
        for (ep_uac_sub *s = c->subs; s; s = s->next)
            if (s->server_id && (s->state == EP_UAC_SUB_ACTIVE || s->state == EP_UAC_SUB_LOST))
                n++;
        if (n) {
            c->stats.session_recreated++;
            uint32_t *ids = malloc(n * sizeof(*ids));
            ep_uac_req *r =
                ids ? ep_uac__req_new(c, EP_UAC_REQ_INTERNAL, EP_UA_T(TransferSubscriptionsRequest))
                    : NULL;
            size_t k = 0;
            for (ep_uac_sub *s = c->subs; s; s = s->next)
                if (s->server_id &&
                    (s->state == EP_UAC_SUB_ACTIVE || s->state == EP_UAC_SUB_LOST)) {
                    s->state = EP_UAC_SUB_LOST;
                    if (ids)
                        ids[k++] = s->server_id;
                }
            if (r) {
                r->icb = transfer_done;
                ep_ua_transfer_subscriptions_request req;
                memset(&req, 0, sizeof(req));
                req.subscription_ids_len = n;
                req.subscription_ids = ids;
                req.send_initial_values = false;
                if (ep_uac__req_submit(c, r, &req) != EP_EOK)
                    r = NULL;
            }
            free(ids);
            if (r == NULL)
                transfer_done(c, NULL, EP_ENOMEM, EP_UA_STATUS_BadOutOfMemory, NULL);
            return;
        }
    }
    for (ep_uac_sub *s = c->subs; s; s = s->next) {
        if (s->state == EP_UAC_SUB_LOST)
            recreate(c, s);
        else
            republish_more(c, s);
    }
    ep_uac__publish_pump(c);
}
