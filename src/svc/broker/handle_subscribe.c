/*
 * handle_subscribe.c - SUBSCRIBE and UNSUBSCRIBE: the session's own list of
 * subscriptions, the shared topic tree, and retained messages sent for new
 * subscriptions according to Retain Handling.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/auth/authz.h"
#include "svc/broker/broker_int.h"

static bk_sub *find_sub(bk_session *s, ep_mqtt_slice filter)
{
    for (uint32_t i = 0; i < s->nsubs; i++)
        if (s->subs[i].filter_len == filter.len &&
            memcmp(s->subs[i].filter, filter.p, filter.len) == 0)
            return &s->subs[i];
    return NULL;
}

static void set_views(bk_sub *sub, const ep_mqtt_sub *e)
{
    /* group and match point into our own copy of the filter. */
    const uint8_t *base = (const uint8_t *)sub->filter;
    if (e->share_group.p) {
        sub->group =
            ep_mqtt_slice_make(base + (e->share_group.p - e->filter.p), e->share_group.len);
        sub->match =
            ep_mqtt_slice_make(base + (e->share_filter.p - e->filter.p), e->share_filter.len);
    } else {
        sub->group = (ep_mqtt_slice){NULL, 0};
        sub->match = ep_mqtt_slice_make(base, sub->filter_len);
    }
}

typedef struct retained_item {
    ep_msg *msg;
    uint8_t opts;
} retained_item;

typedef struct retained_list {
    retained_item *v;
    uint32_t n, cap;
    uint8_t opts; /* options of the subscription being matched */
} retained_list;

static void collect_retained(ep_msg *m, void *ud)
{
    retained_list *l = ud;
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 16;
        retained_item *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].msg = ep_msg_ref(m);
    l->v[l->n].opts = l->opts;
    l->n++;
}

/* Adds one subscription; returns the SUBACK reason code. */
static uint8_t subscribe_one(bk_session *s, const ep_mqtt_sub *e, uint32_t sub_id,
                             retained_list *retained)
{
    const ep_broker_limits *lim = &s->w->b->cfg.limits;
    bk_tree *t = &s->w->b->tree;
    if (e->filter.len > lim->max_topic_length ||
        ep_mqtt_topic_levels(e->share_group.p ? e->share_filter : e->filter) >
            lim->max_topic_levels)
        return EP_MQTT_RC_TOPIC_FILTER_INVALID;
    if (s->conn && !bk_authz_allows(s->conn, EP_AUTHZ_SUBSCRIBE, e->filter))
        return EP_MQTT_RC_NOT_AUTHORIZED; /* 3.1.1 SUBACK encodes it as 0x80 */
    bk_sub *sub = find_sub(s, e->filter);
    bool existed = sub != NULL;
    if (!existed) {
        if (s->nsubs >= lim->max_subscriptions_per_client)
            return EP_MQTT_RC_QUOTA_EXCEEDED;
        if (s->nsubs == s->capsubs) {
            uint32_t cap = s->capsubs ? s->capsubs * 2 : 4;
            bk_sub *v = realloc(s->subs, cap * sizeof(*v));
            if (v == NULL)
                return EP_MQTT_RC_UNSPECIFIED_ERROR;
            s->subs = v;
            s->capsubs = cap;
        }
        sub = &s->subs[s->nsubs];
        memset(sub, 0, sizeof(*sub));
        sub->filter = malloc(e->filter.len + 1u);
        if (sub->filter == NULL)
            return EP_MQTT_RC_UNSPECIFIED_ERROR;
        memcpy(sub->filter, e->filter.p, e->filter.len);
        sub->filter[e->filter.len] = '\0';
        sub->filter_len = (uint16_t)e->filter.len;
        set_views(sub, e);
    }
    uint8_t qos = e->qos > 2 ? 2 : e->qos;
    sub->opts =
        (uint8_t)(qos | (e->no_local ? BK_OPT_NO_LOCAL : 0) |
                  (e->retain_as_published ? BK_OPT_RAP : 0) | (sub_id ? BK_OPT_HAS_SUBID : 0));
    sub->sub_id = sub_id;
    bk_tsub ts = {.session_id = s->id, .flow = s->flow, .worker = s->w->idx, .opts = sub->opts};
    pthread_rwlock_wrlock(&t->lock);
    ep_err err = bk_tree_sub_add(t, sub->match, sub->group, &ts);
    pthread_rwlock_unlock(&t->lock);
    if (err == EP_ENOMEM) {
        if (!existed)
            free(sub->filter);
        return EP_MQTT_RC_UNSPECIFIED_ERROR;
    }
    if (!existed)
        s->nsubs++;
    if (sub_id)
        s->has_subids = true;
    bk_persist_sub(s, sub);
    bool send_retained =
        !sub->group.p && (e->retain_handling == 0 || (e->retain_handling == 1 && !existed));
    if (send_retained) {
        retained->opts = sub->opts;
        pthread_rwlock_rdlock(&t->lock);
        bk_tree_retained_match(t, sub->match, collect_retained, retained);
        pthread_rwlock_unlock(&t->lock);
    }
    return qos;
}

ep_err bk_handle_subscribe(bk_conn *c, const ep_mqtt_packet *p)
{
    const ep_mqtt_subscribe *sp = &p->subscribe;
    bk_session *s = c->s;
    uint8_t codes[256];
    uint8_t *rc = sp->count <= sizeof(codes) ? codes : malloc(sp->count);
    retained_list retained = {0};
    uint32_t sub_id = EP_MQTT_PROPS_HAS(&sp->props, EP_MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
                          ? sp->props.subscription_id
                          : 0;
    if (rc == NULL)
        return EP_ENOMEM;
    size_t it = 0;
    ep_mqtt_sub e;
    uint32_t i = 0;
    while (ep_mqtt_subscribe_next(sp, &it, &e) && i < sp->count) {
        /* Retained messages are collected now and sent after SUBACK. */
        rc[i] = subscribe_one(s, &e, sub_id, &retained);
        i++;
    }
    ep_mqtt_packet ack = {.type = EP_MQTT_SUBACK};
    ack.suback.packet_id = sp->packet_id;
    ack.suback.codes = ep_mqtt_slice_make(rc, i);
    ep_err err = bk_conn_send_packet(c, &ack);
    /* Retained messages go out at the QoS granted to the subscription that
     * matched them, with the RETAIN flag set. */
    for (uint32_t k = 0; k < retained.n; k++) {
        if (s->conn)
            bk_session_deliver(s, retained.v[k].msg, retained.v[k].opts, true);
        ep_msg_unref(retained.v[k].msg);
    }
    free(retained.v);
    if (rc != codes)
        free(rc);
    return err;
}

ep_err bk_handle_unsubscribe(bk_conn *c, const ep_mqtt_packet *p)
{
    const ep_mqtt_unsubscribe *up = &p->unsubscribe;
    bk_session *s = c->s;
    bk_tree *t = &c->w->b->tree;
    uint8_t codes[256];
    uint8_t *rc = up->count <= sizeof(codes) ? codes : malloc(up->count);
    if (rc == NULL)
        return EP_ENOMEM;
    size_t it = 0;
    ep_mqtt_slice f;
    uint32_t i = 0;
    while (ep_mqtt_unsubscribe_next(up, &it, &f) && i < up->count) {
        bk_sub *sub = find_sub(s, f);
        if (sub == NULL) {
            rc[i++] = EP_MQTT_RC_NO_SUBSCRIPTION_EXISTED;
            continue;
        }
        pthread_rwlock_wrlock(&t->lock);
        bk_tree_sub_remove(t, sub->match, sub->group, s->id);
        pthread_rwlock_unlock(&t->lock);
        bk_persist_unsub(s, sub);
        free(sub->filter);
        *sub = s->subs[--s->nsubs];
        rc[i++] = EP_MQTT_RC_SUCCESS;
    }
    s->has_subids = false;
    for (uint32_t k = 0; k < s->nsubs; k++)
        if (s->subs[k].sub_id)
            s->has_subids = true;
    ep_mqtt_packet ack = {.type = EP_MQTT_UNSUBACK};
    ack.suback.packet_id = up->packet_id;
    ack.suback.codes = ep_mqtt_slice_make(rc, i);
    ep_err err = bk_conn_send_packet(c, &ack);
    if (rc != codes)
        free(rc);
    return err;
}
