/*
 * tree.c - the topic tree: subscriptions, shared groups and retained
 * messages, one node per topic level.
 *
 * Matching walks the topic's levels once, following the exact child plus the
 * '+' and '#' children at each level, so its cost grows with the depth of the
 * topic and the number of wildcards on the way, not with the number of
 * subscriptions. Children are kept in a small array (topic trees are wide at
 * few levels; a hash per node would cost more memory than it saves).
 * Empty nodes are pruned on removal so churn does not leak memory.
 * All functions expect the caller to hold tree->lock as documented.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/broker/broker_int.h"

void bk_tree_init(bk_tree *t)
{
    pthread_rwlockattr_t attr;
    memset(t, 0, sizeof(*t));
    /* Publishing takes the read lock all the time; without writer
     * preference a SUBSCRIBE could wait for ever under load. Nothing here
     * takes the read lock recursively, which writer preference forbids. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&t->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
}

static void node_free(bk_tnode *n)
{
    for (uint32_t i = 0; i < n->nkids; i++) {
        node_free(n->kids[i]);
        free(n->kids[i]);
    }
    free(n->kids);
    for (uint32_t i = 0; i < n->nsubs; i++)
        bk_flow_unref(n->subs[i].flow);
    free(n->subs);
    for (uint32_t i = 0; i < n->ngroups; i++) {
        for (uint32_t k = 0; k < n->groups[i]->n; k++)
            bk_flow_unref(n->groups[i]->members[k].flow);
        free(n->groups[i]->name);
        free(n->groups[i]->members);
        free(n->groups[i]);
    }
    free(n->groups);
    ep_msg_unref(n->retained);
    free(n->level);
}

void bk_tree_fini(bk_tree *t)
{
    node_free(&t->root);
    pthread_rwlock_destroy(&t->lock);
}

static bool next_level(ep_mqtt_slice s, uint32_t *pos, ep_mqtt_slice *lvl)
{
    if (*pos > s.len)
        return false;
    uint32_t start = *pos, i = start;
    while (i < s.len && s.p[i] != '/')
        i++;
    lvl->p = s.p + start;
    lvl->len = i - start;
    *pos = i + 1;
    return true;
}

static bk_tnode *child_find(const bk_tnode *n, const uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < n->nkids; i++) {
        bk_tnode *k = n->kids[i];
        if (k->level_len == len && memcmp(k->level, p, len) == 0)
            return k;
    }
    return NULL;
}

static bk_tnode *child_get(bk_tnode *n, const uint8_t *p, uint32_t len)
{
    bk_tnode *k = child_find(n, p, len);
    if (k)
        return k;
    if (n->nkids == n->capkids) {
        uint32_t cap = n->capkids ? n->capkids * 2 : 4;
        bk_tnode **v = realloc(n->kids, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        n->kids = v;
        n->capkids = cap;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->level = malloc(len + 1u);
    if (k->level == NULL) {
        free(k);
        return NULL;
    }
    memcpy(k->level, p, len);
    k->level[len] = '\0';
    k->level_len = (uint16_t)len;
    k->parent = n;
    n->kids[n->nkids++] = k;
    return k;
}

static bk_tnode *node_walk(bk_tree *t, ep_mqtt_slice topic, bool create)
{
    bk_tnode *n = &t->root;
    uint32_t pos = 0;
    ep_mqtt_slice lvl;
    while (n && next_level(topic, &pos, &lvl))
        n = create ? child_get(n, lvl.p, lvl.len) : child_find(n, lvl.p, lvl.len);
    return n;
}

static void node_prune(bk_tnode *n)
{
    while (n->parent && n->nkids == 0 && n->nsubs == 0 && n->ngroups == 0 && n->retained == NULL) {
        bk_tnode *p = n->parent;
        for (uint32_t i = 0; i < p->nkids; i++) {
            if (p->kids[i] == n) {
                p->kids[i] = p->kids[--p->nkids];
                break;
            }
        }
        node_free(n);
        free(n);
        if (p->nkids == 0) {
            free(p->kids);
            p->kids = NULL;
            p->capkids = 0;
        }
        n = p;
    }
}

static ep_err subs_put(bk_tsub **v, uint32_t *n, uint32_t *cap, const bk_tsub *s)
{
    for (uint32_t i = 0; i < *n; i++) {
        if ((*v)[i].session_id == s->session_id) {
            (*v)[i].opts = s->opts; /* same session: same flow cell */
            return EP_EEXIST;
        }
    }
    if (*n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 2;
        bk_tsub *nv = realloc(*v, c * sizeof(*nv));
        if (nv == NULL)
            return EP_ENOMEM;
        *v = nv;
        *cap = c;
    }
    (*v)[*n] = *s;
    (*v)[*n].flow = bk_flow_ref(s->flow);
    (*n)++;
    return EP_EOK;
}

static bool subs_del(bk_tsub *v, uint32_t *n, uint64_t session_id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (v[i].session_id == session_id) {
            bk_flow_unref(v[i].flow);
            /* Keep order: round robin and fairness depend on it. */
            memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
            (*n)--;
            return true;
        }
    }
    return false;
}

static bk_tgroup *group_find(bk_tnode *n, ep_mqtt_slice g, bool create)
{
    for (uint32_t i = 0; i < n->ngroups; i++) {
        if (strlen(n->groups[i]->name) == g.len && memcmp(n->groups[i]->name, g.p, g.len) == 0)
            return n->groups[i];
    }
    if (!create)
        return NULL;
    if (n->ngroups == n->capgroups) {
        uint32_t c = n->capgroups ? n->capgroups * 2 : 2;
        bk_tgroup **v = realloc(n->groups, c * sizeof(*v));
        if (v == NULL)
            return NULL;
        n->groups = v;
        n->capgroups = c;
    }
    bk_tgroup *grp = calloc(1, sizeof(*grp));
    if (grp == NULL)
        return NULL;
    grp->name = strndup((const char *)g.p, g.len);
    if (grp->name == NULL) {
        free(grp);
        return NULL;
    }
    n->groups[n->ngroups++] = grp;
    return grp;
}

ep_err bk_tree_sub_add(bk_tree *t, ep_mqtt_slice filter, ep_mqtt_slice group, const bk_tsub *sub)
{
    bk_tnode *n = node_walk(t, filter, true);
    if (n == NULL)
        return EP_ENOMEM;
    ep_err err;
    if (group.p) {
        bk_tgroup *g = group_find(n, group, true);
        if (g == NULL)
            return EP_ENOMEM;
        err = subs_put(&g->members, &g->n, &g->cap, sub);
    } else {
        err = subs_put(&n->subs, &n->nsubs, &n->capsubs, sub);
    }
    if (err == EP_EOK)
        atomic_fetch_add(&t->nsubs, 1);
    if (err == EP_ENOMEM)
        node_prune(n);
    return err;
}

ep_err bk_tree_sub_remove(bk_tree *t, ep_mqtt_slice filter, ep_mqtt_slice group,
                          uint64_t session_id)
{
    bk_tnode *n = node_walk(t, filter, false);
    bool found = false;
    if (n == NULL)
        return EP_ENOTFOUND;
    if (group.p) {
        bk_tgroup *g = group_find(n, group, false);
        if (g && (found = subs_del(g->members, &g->n, session_id)) && g->n == 0) {
            for (uint32_t i = 0; i < n->ngroups; i++) {
                if (n->groups[i] == g) {
                    n->groups[i] = n->groups[--n->ngroups];
                    break;
                }
            }
            free(g->name);
            free(g->members);
            free(g);
        }
    } else {
        found = subs_del(n->subs, &n->nsubs, session_id);
    }
    if (!found)
        return EP_ENOTFOUND;
    atomic_fetch_sub(&t->nsubs, 1);
    node_prune(n);
    return EP_EOK;
}

static ep_err targets_push(bk_targets *out, const bk_tsub *s)
{
    if (out->n == out->cap) {
        uint32_t c = out->cap ? out->cap * 2 : 64;
        bk_target *v = realloc(out->v, c * sizeof(*v));
        if (v == NULL)
            return EP_ENOMEM;
        out->v = v;
        out->cap = c;
    }
    out->v[out->n].session_id = s->session_id;
    out->v[out->n].flow = s->flow;
    out->v[out->n].worker = s->worker;
    out->v[out->n].opts = s->opts;
    out->n++;
    return EP_EOK;
}

/* FNV-1a: stable across runs, so a $partition key always lands on the same
 * member while the group is unchanged. */
static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static ep_err collect_node(bk_tnode *n, ep_mqtt_slice partition, bk_targets *out)
{
    for (uint32_t i = 0; i < n->nsubs; i++)
        if (targets_push(out, &n->subs[i]))
            return EP_ENOMEM;
    for (uint32_t i = 0; i < n->ngroups; i++) {
        bk_tgroup *g = n->groups[i];
        if (g->n == 0)
            continue;
        uint32_t k = partition.p ? hash_bytes(partition.p, partition.len)
                                 : atomic_fetch_add_explicit(&g->rr, 1, memory_order_relaxed);
        if (targets_push(out, &g->members[k % g->n]))
            return EP_ENOMEM;
    }
    return EP_EOK;
}

static ep_err match_rec(bk_tnode *n, ep_mqtt_slice topic, uint32_t pos, bool first,
                        ep_mqtt_slice partition, bk_targets *out)
{
    ep_mqtt_slice lvl;
    bool dollar = first && topic.len > 0 && topic.p[0] == '$';
    /* '#' also matches the parent level ("a/#" matches "a"). */
    if (!dollar) {
        bk_tnode *h = child_find(n, (const uint8_t *)"#", 1);
        if (h && collect_node(h, partition, out))
            return EP_ENOMEM;
    }
    if (!next_level(topic, &pos, &lvl))
        return collect_node(n, partition, out);
    bk_tnode *k = child_find(n, lvl.p, lvl.len);
    if (k && match_rec(k, topic, pos, false, partition, out))
        return EP_ENOMEM;
    if (!dollar) {
        k = child_find(n, (const uint8_t *)"+", 1);
        if (k && match_rec(k, topic, pos, false, partition, out))
            return EP_ENOMEM;
    }
    return EP_EOK;
}

ep_err bk_tree_match(bk_tree *t, ep_mqtt_slice topic, ep_mqtt_slice partition, bk_targets *out)
{
    return match_rec(&t->root, topic, 0, true, partition, out);
}

ep_err bk_tree_retain(bk_tree *t, ep_mqtt_slice topic, ep_msg *msg)
{
    bk_tnode *n = node_walk(t, topic, msg != NULL);
    if (n == NULL)
        return msg ? EP_ENOMEM : EP_EOK;
    if (n->retained)
        atomic_fetch_sub(&t->nretained, 1);
    ep_msg_unref(n->retained);
    n->retained = msg ? ep_msg_ref(msg) : NULL;
    if (msg)
        atomic_fetch_add(&t->nretained, 1);
    else
        node_prune(n);
    return EP_EOK;
}

static void retained_all(bk_tnode *n, bool skip_dollar, bk_retained_fn fn, void *ud)
{
    if (n->retained)
        fn(n->retained, ud);
    for (uint32_t i = 0; i < n->nkids; i++) {
        if (skip_dollar && n->kids[i]->level_len > 0 && n->kids[i]->level[0] == '$')
            continue;
        retained_all(n->kids[i], false, fn, ud);
    }
}

static void retained_rec(bk_tnode *n, ep_mqtt_slice filter, uint32_t pos, bool first,
                         bk_retained_fn fn, void *ud)
{
    ep_mqtt_slice lvl;
    if (!next_level(filter, &pos, &lvl)) {
        if (n->retained)
            fn(n->retained, ud);
        return;
    }
    if (lvl.len == 1 && lvl.p[0] == '#') {
        /* "a/#" includes "a" itself. */
        if (!first && n->retained)
            fn(n->retained, ud);
        for (uint32_t i = 0; i < n->nkids; i++) {
            bk_tnode *k = n->kids[i];
            if (first && k->level_len > 0 && k->level[0] == '$')
                continue;
            retained_all(k, false, fn, ud);
        }
        return;
    }
    if (lvl.len == 1 && lvl.p[0] == '+') {
        for (uint32_t i = 0; i < n->nkids; i++) {
            bk_tnode *k = n->kids[i];
            if (first && k->level_len > 0 && k->level[0] == '$')
                continue;
            retained_rec(k, filter, pos, false, fn, ud);
        }
        return;
    }
    bk_tnode *k = child_find(n, lvl.p, lvl.len);
    if (k)
        retained_rec(k, filter, pos, false, fn, ud);
}

void bk_tree_retained_match(bk_tree *t, ep_mqtt_slice filter, bk_retained_fn fn, void *ud)
{
    retained_rec(&t->root, filter, 0, true, fn, ud);
}

void bk_tree_retained_each(bk_tree *t, bk_retained_fn fn, void *ud)
{
    retained_all(&t->root, false, fn, ud);
}
