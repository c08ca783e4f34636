/*
 * authz.c - authorization rules: load (core/cfg), compile per principal,
 * check, hot swap.
 *
 * Loading. The file is parsed into a cfg tree. Most of it has a fixed
 * shape and is bound with cfg tables (brokerResources[] and
 * stateStoreResources[] elements), but principals.attributes holds maps
 * with user-chosen keys, which a binding table cannot describe; the rule
 * and principal maps are therefore walked by hand with the same error
 * reporting (file:line:col: key: message, every error, unknown keys
 * refused). Topic templates are parsed once into literal and variable
 * parts and checked by rendering them with a placeholder value.
 *
 * Everything a rule set owns lives in one arena, freed at once when the
 * last reference goes.
 *
 * Compiling. For a principal, the matching rules' templates are rendered
 * into one allocation of slices and bytes (two passes: size, then fill).
 * A check is then a loop over slices.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mqtt/packet.h"
#include "core/buf.h"
#include "svc/auth/authz.h"

/* ------------------------------------------------------------------------ */
/* Arena                                                                     */

typedef struct chunk chunk;
struct chunk {
    chunk *next;
    size_t used, cap;
    max_align_t data[];
};

typedef struct arena {
    chunk *head;
} arena;

static void *arena_alloc(arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0)
        n = sizeof(max_align_t);
    if (a->head == NULL || a->head->cap - a->head->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        chunk *c = malloc(sizeof(chunk) + cap);
        if (c == NULL)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (p != NULL) {
        if (n > 0)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void arena_free(arena *a)
{
    while (a->head != NULL) {
        chunk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

/* ------------------------------------------------------------------------ */
/* Model                                                                     */

typedef enum pkind { P_LIT, P_CID, P_USER, P_ATTR } pkind;

typedef struct tpart {
    pkind k;
    const char *s; /* literal text or attribute name */
    size_t len;
} tpart;

typedef struct tmpl {
    tpart *p;
    size_t n;
    bool glob; /* clientIds pattern ending with '*' (removed from p) */
} tmpl;

typedef struct attrmap {
    ep_authz_attr *kv;
    size_t n;
} attrmap;

typedef struct rule {
    const char **cids;
    size_t n_cids;
    const char **users;
    size_t n_users;
    attrmap *am;
    size_t n_am;
    tmpl *conn;
    size_t n_conn;
    bool conn_any;
    tmpl *pub;
    size_t n_pub;
    tmpl *sub;
    size_t n_sub;
} rule;

struct ep_authz_rules {
    atomic_uint refs;
    uint64_t generation;
    rule *r;
    size_t n;
    arena mem;
};

static atomic_uint_fast64_t next_generation = 1;

ep_authz_rules *ep_authz_rules_ref(ep_authz_rules *r)
{
    if (r != NULL)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void ep_authz_rules_unref(ep_authz_rules *r)
{
    if (r != NULL && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        arena mem = r->mem;
        arena_free(&mem); /* r itself lives in the arena */
    }
}

size_t ep_authz_rules_count(const ep_authz_rules *r) { return r ? r->n : 0; }

/* ------------------------------------------------------------------------ */
/* Loading                                                                   */

enum { M_CONNECT = 1, M_PUBLISH, M_SUBSCRIBE };

typedef struct br_cfg {
    int32_t method;
    ep_cfg_list client_ids;
    ep_cfg_list topics;
} br_cfg;

typedef struct ss_cfg {
    int32_t method;
    int32_t key_type;
    ep_cfg_list keys;
} ss_cfg;

static const ep_cfg_enum br_methods[] = {
    {"Connect", M_CONNECT}, {"Publish", M_PUBLISH}, {"Subscribe", M_SUBSCRIBE}, {NULL, 0}};
static const ep_cfg_enum ss_methods[] = {{"Read", 1}, {"Write", 2}, {"ReadWrite", 3}, {NULL, 0}};
static const ep_cfg_enum ss_key_types[] = {{"Pattern", 1}, {"String", 2}, {"Binary", 3}, {NULL, 0}};
static const ep_cfg_field str_elem = {
    .type = EP_CFG_STRING, .size = sizeof(char *), .min = 1, .max = 65535};

static const ep_cfg_field br_fields[] = {
    {.name = "method",
     .type = EP_CFG_ENUM,
     EP_CFG_AT(br_cfg, method),
     .flags = EP_CFG_REQUIRED,
     .choices = br_methods,
     .help = "The MQTT operation granted."},
    {.name = "clientIds",
     .type = EP_CFG_LIST,
     EP_CFG_AT(br_cfg, client_ids),
     .sub = &str_elem,
     .help = "Connect only: client ids allowed to connect; a trailing '*' matches any suffix."},
    {.name = "topics",
     .type = EP_CFG_LIST,
     EP_CFG_AT(br_cfg, topics),
     .sub = &str_elem,
     .help = "Publish and Subscribe: topic filters granted."},
    {0}};

static const ep_cfg_field ss_fields[] = {{.name = "method",
                                          .type = EP_CFG_ENUM,
                                          EP_CFG_AT(ss_cfg, method),
                                          .flags = EP_CFG_REQUIRED,
                                          .choices = ss_methods,
                                          .help = "State store access granted."},
                                         {.name = "keyType",
                                          .type = EP_CFG_ENUM,
                                          EP_CFG_AT(ss_cfg, key_type),
                                          .flags = EP_CFG_REQUIRED,
                                          .choices = ss_key_types,
                                          .help = "How keys are matched."},
                                         {.name = "keys",
                                          .type = EP_CFG_LIST,
                                          EP_CFG_AT(ss_cfg, keys),
                                          .sub = &str_elem,
                                          .min = 1,
                                          .flags = EP_CFG_REQUIRED,
                                          .help = "Keys or key patterns."},
                                         {0}};

typedef struct lctx {
    ep_cfg_errs *errs;
    arena *mem;
    bool oom;
} lctx;

static bool is_null(const ep_cfg_node *n)
{
    return n == NULL || (n->kind == EP_CFG_NODE_SCALAR && n->is_null);
}

/* Reports every key of map n not in `known` (NULL-terminated). */
static void check_keys(lctx *c, const ep_cfg_node *n, const char *const *known, const char *expect)
{
    for (const ep_cfg_node *k = n->first; k != NULL; k = k->next) {
        bool ok = false;
        for (const char *const *q = known; *q != NULL; q++)
            ok = ok || strcmp(k->key, *q) == 0;
        if (!ok)
            ep_cfg_errs_add(c->errs, k, "unknown key (expected %s)", expect);
    }
}

/* A list of non-empty strings, copied into the arena. */
static const char **string_list(lctx *c, const ep_cfg_node *n, size_t *count)
{
    *count = 0;
    if (is_null(n))
        return NULL;
    if (n->kind != EP_CFG_NODE_LIST) {
        ep_cfg_errs_add(c->errs, n, "expected a list of strings");
        return NULL;
    }
    const char **v = arena_alloc(c->mem, (n->count + 1) * sizeof(*v));
    if (v == NULL) {
        c->oom = true;
        return NULL;
    }
    size_t k = 0;
    for (const ep_cfg_node *i = n->first; i != NULL; i = i->next) {
        if (i->kind != EP_CFG_NODE_SCALAR || i->is_null || i->len == 0) {
            ep_cfg_errs_add(c->errs, i, "expected a non-empty string");
            continue;
        }
        if ((v[k++] = arena_strndup(c->mem, i->value, i->len)) == NULL)
            c->oom = true;
    }
    *count = k;
    return v;
}

static bool parse_attrs(lctx *c, const ep_cfg_node *n, rule *r)
{
    if (is_null(n))
        return true;
    if (n->kind != EP_CFG_NODE_LIST) {
        ep_cfg_errs_add(c->errs, n, "expected a list of maps of attribute: value");
        return false;
    }
    r->am = arena_alloc(c->mem, (n->count + 1) * sizeof(*r->am));
    if (r->am == NULL)
        return !(c->oom = true);
    for (const ep_cfg_node *m = n->first; m != NULL; m = m->next) {
        if (m->kind != EP_CFG_NODE_MAP || m->count == 0) {
            ep_cfg_errs_add(c->errs, m, "expected a non-empty map of attribute: value");
            continue;
        }
        attrmap *am = &r->am[r->n_am++];
        am->kv = arena_alloc(c->mem, m->count * sizeof(*am->kv));
        if (am->kv == NULL)
            return !(c->oom = true);
        for (const ep_cfg_node *kv = m->first; kv != NULL; kv = kv->next) {
            if (kv->kind != EP_CFG_NODE_SCALAR || kv->is_null) {
                ep_cfg_errs_add(c->errs, kv, "expected a string value");
                continue;
            }
            ep_authz_attr *a = &am->kv[am->n++];
            a->name = arena_strndup(c->mem, kv->key, strlen(kv->key));
            a->value = arena_strndup(c->mem, kv->value, kv->len);
            if (a->name == NULL || a->value == NULL)
                return !(c->oom = true);
        }
    }
    return true;
}

static void parse_principals(lctx *c, const ep_cfg_node *n, rule *r)
{
    static const char *const keys[] = {"clientIds", "usernames", "attributes", NULL};
    if (is_null(n)) {
        ep_cfg_errs_add(c->errs, n, "required: a map with clientIds, usernames or attributes");
        return;
    }
    if (n->kind != EP_CFG_NODE_MAP) {
        ep_cfg_errs_add(c->errs, n, "expected a map with clientIds, usernames or attributes");
        return;
    }
    check_keys(c, n, keys, "clientIds, usernames or attributes");
    r->cids = string_list(c, ep_cfg_node_get(n, "clientIds"), &r->n_cids);
    r->users = string_list(c, ep_cfg_node_get(n, "usernames"), &r->n_users);
    parse_attrs(c, ep_cfg_node_get(n, "attributes"), r);
    if (r->n_cids == 0 && r->n_users == 0 && r->n_am == 0)
        ep_cfg_errs_add(c->errs, n, "no principal given: the rule would never apply");
}

/* Parses a template; reports errors at node n. topic: a topic filter
 * (validated); else a clientIds pattern (trailing '*'). */
static bool parse_tmpl(lctx *c, const ep_cfg_node *n, const char *s, size_t len, bool topic,
                       tmpl *t)
{
    static const char CID[] = "principal.clientId", USER[] = "principal.username",
                      ATTR[] = "principal.attributes.";
    t->p = arena_alloc(c->mem, (len + 1) * sizeof(*t->p));
    if (t->p == NULL)
        return !(c->oom = true);
    size_t i = 0, lit = 0;
    while (i <= len) {
        if (i == len || s[i] == '{') {
            if (i > lit)
                t->p[t->n++] = (tpart){P_LIT, s + lit, i - lit};
            if (i == len)
                break;
            const char *end = memchr(s + i, '}', len - i);
            if (end == NULL) {
                ep_cfg_errs_add(c->errs, n, "unclosed '{'");
                return false;
            }
            const char *v = s + i + 1;
            size_t vl = (size_t)(end - v);
            if (vl == sizeof(CID) - 1 && memcmp(v, CID, vl) == 0)
                t->p[t->n++] = (tpart){P_CID, NULL, 0};
            else if (vl == sizeof(USER) - 1 && memcmp(v, USER, vl) == 0)
                t->p[t->n++] = (tpart){P_USER, NULL, 0};
            else if (vl > sizeof(ATTR) - 1 && memcmp(v, ATTR, sizeof(ATTR) - 1) == 0 &&
                     memchr(v, '{', vl) == NULL)
                t->p[t->n++] = (tpart){P_ATTR, v + sizeof(ATTR) - 1, vl - (sizeof(ATTR) - 1)};
            else {
                ep_cfg_errs_add(c->errs, n,
                                "unknown variable '{%.*s}' (expected {principal.clientId}, "
                                "{principal.username} or {principal.attributes.NAME})",
                                (int)(vl > 64 ? 64 : vl), v);
                return false;
            }
            i = (size_t)(end - s) + 1;
            lit = i;
            continue;
        }
        if (s[i] == '}') {
            ep_cfg_errs_add(c->errs, n, "'}' without '{'");
            return false;
        }
        i++;
    }
    /* copy literal and attribute-name text into the arena (the tree goes away) */
    for (size_t k = 0; k < t->n; k++) {
        if (t->p[k].k == P_LIT || t->p[k].k == P_ATTR) {
            t->p[k].s = arena_strndup(c->mem, t->p[k].s, t->p[k].len);
            if (t->p[k].s == NULL)
                return !(c->oom = true);
        }
    }
    if (!topic) {
        for (size_t k = 0; k < t->n; k++) {
            if (t->p[k].k != P_LIT)
                continue;
            const char *star = memchr(t->p[k].s, '*', t->p[k].len);
            if (star == NULL)
                continue;
            if (k + 1 != t->n || star != t->p[k].s + t->p[k].len - 1) {
                ep_cfg_errs_add(c->errs, n, "only a trailing '*' is supported");
                return false;
            }
            t->glob = true;
            t->p[k].len--;
        }
        return true;
    }
    /* validate the filter shape with a placeholder for each variable */
    size_t total = 0;
    for (size_t k = 0; k < t->n; k++)
        total += t->p[k].k == P_LIT ? t->p[k].len : 1;
    char *buf = malloc(total + 1);
    if (buf == NULL)
        return !(c->oom = true);
    size_t o = 0;
    for (size_t k = 0; k < t->n; k++) {
        if (t->p[k].k == P_LIT) {
            memcpy(buf + o, t->p[k].s, t->p[k].len);
            o += t->p[k].len;
        } else {
            buf[o++] = 'x';
        }
    }
    bool ok = total > 0 && total <= 65535 &&
              ep_mqtt_topic_filter_valid(ep_mqtt_slice_make(buf, total)) &&
              !(total >= 7 && memcmp(buf, "$share/", 7) == 0);
    free(buf);
    if (!ok)
        ep_cfg_errs_add(c->errs, n, "not a valid MQTT topic filter (or a $share/ filter)");
    return ok;
}

static tmpl *tmpl_list(lctx *c, const ep_cfg_node *list, const ep_cfg_list *vals, bool topic,
                       size_t *count)
{
    tmpl *t = arena_alloc(c->mem, (vals->count + 1) * sizeof(*t));
    if (t == NULL) {
        c->oom = true;
        return NULL;
    }
    size_t k = 0, i = 0;
    for (const ep_cfg_node *n = list ? list->first : NULL; n != NULL && i < vals->count;
         n = n->next, i++) {
        const char *s = *EP_CFG_LIST_AT(*vals, char *, i);
        if (s == NULL) { /* a YAML null in the list */
            ep_cfg_errs_add(c->errs, n, "expected a non-empty string, got null");
            continue;
        }
        if (parse_tmpl(c, n, s, strlen(s), topic, &t[k]))
            k++;
    }
    *count = k;
    return t;
}

/* brokerResources: bound element by element; templates parsed into r. */
static void parse_broker_resources(lctx *c, const ep_cfg_node *n, rule *r)
{
    if (is_null(n))
        return;
    if (n->kind != EP_CFG_NODE_LIST) {
        ep_cfg_errs_add(c->errs, n, "expected a list of {method, clientIds, topics}");
        return;
    }
    tmpl **lists[3] = {&r->conn, &r->pub, &r->sub};
    size_t *counts[3] = {&r->n_conn, &r->n_pub, &r->n_sub};
    /* per method, the template lists of up to 64 resources, flattened below */
    tmpl *parts[3][64];
    size_t nparts[3][64];
    size_t np[3] = {0, 0, 0};
    for (const ep_cfg_node *e = n->first; e != NULL; e = e->next) {
        br_cfg b = {0};
        if (ep_cfg_bind(br_fields, e, &b, c->errs) != EP_EOK)
            continue;
        const ep_cfg_node *tn = ep_cfg_node_get(e, "topics");
        const ep_cfg_node *cn = ep_cfg_node_get(e, "clientIds");
        int m = b.method - 1;
        if (b.method == M_CONNECT) {
            if (b.topics.count > 0)
                ep_cfg_errs_add(c->errs, tn, "topics apply to Publish and Subscribe, not Connect");
            if (b.client_ids.count == 0)
                r->conn_any = true;
        } else {
            if (b.client_ids.count > 0)
                ep_cfg_errs_add(c->errs, cn, "clientIds apply to Connect only");
            if (b.topics.count == 0)
                ep_cfg_errs_add(c->errs, e, "%s needs at least one topic",
                                b.method == M_PUBLISH ? "Publish" : "Subscribe");
        }
        const ep_cfg_list *vals = b.method == M_CONNECT ? &b.client_ids : &b.topics;
        const ep_cfg_node *vn = b.method == M_CONNECT ? cn : tn;
        if (vals->count > 0) {
            if (np[m] == 64) {
                ep_cfg_errs_add(c->errs, e, "more than 64 %s resources in one rule",
                                br_methods[m].name);
            } else {
                size_t cnt = 0;
                tmpl *t = tmpl_list(c, vn, vals, b.method != M_CONNECT, &cnt);
                parts[m][np[m]] = t;
                nparts[m][np[m]] = cnt;
                np[m]++;
            }
        }
        ep_cfg_clear(br_fields, &b);
    }
    /* flatten per method */
    for (int m = 0; m < 3; m++) {
        size_t total = 0;
        for (size_t k = 0; k < np[m]; k++)
            total += nparts[m][k];
        tmpl *all = arena_alloc(c->mem, (total + 1) * sizeof(*all));
        if (all == NULL) {
            c->oom = true;
            return;
        }
        size_t o = 0;
        for (size_t k = 0; k < np[m]; k++)
            for (size_t j = 0; j < nparts[m][k]; j++)
                all[o++] = parts[m][k][j];
        *lists[m] = all;
        *counts[m] = o;
    }
}

static void parse_state_store(lctx *c, const ep_cfg_node *n)
{
    if (is_null(n))
        return;
    if (n->kind != EP_CFG_NODE_LIST) {
        ep_cfg_errs_add(c->errs, n, "expected a list of {method, keyType, keys}");
        return;
    }
    for (const ep_cfg_node *e = n->first; e != NULL; e = e->next) {
        ss_cfg s = {0};
        if (ep_cfg_bind(ss_fields, e, &s, c->errs) == EP_EOK)
            ep_cfg_clear(ss_fields, &s);
    }
}

static ep_err rules_from_tree(const ep_cfg_node *root, ep_authz_rules **out, ep_cfg_errs *errs)
{
    static const char *const top_keys[] = {"cache", "rules", NULL};
    static const char *const rule_keys[] = {"principals", "brokerResources", "stateStoreResources",
                                            NULL};
    arena mem = {0};
    ep_authz_rules *rs = arena_alloc(&mem, sizeof(*rs));
    if (rs == NULL)
        return EP_ENOMEM;
    lctx c = {.errs = errs, .mem = &mem};
    size_t nerr0 = errs->nerr;
    if (root == NULL || root->kind != EP_CFG_NODE_MAP) {
        ep_cfg_errs_add(errs, root, "expected a map with 'rules'");
        arena_free(&mem);
        return EP_ECONFIG;
    }
    check_keys(&c, root, top_keys, "cache or rules");
    const ep_cfg_node *cache = ep_cfg_node_get(root, "cache");
    if (cache != NULL &&
        !(cache->kind == EP_CFG_NODE_SCALAR &&
          (strcmp(cache->value, "Enabled") == 0 || strcmp(cache->value, "Disabled") == 0)))
        ep_cfg_errs_add(errs, cache, "expected Enabled or Disabled");
    const ep_cfg_node *rules = ep_cfg_node_get(root, "rules");
    if (rules == NULL || (rules->kind != EP_CFG_NODE_LIST && !is_null(rules))) {
        ep_cfg_errs_add(errs, rules ? rules : root, "'rules' must be a list (may be empty)");
    } else if (rules->kind == EP_CFG_NODE_LIST) {
        rs->r = arena_alloc(&mem, (rules->count + 1) * sizeof(*rs->r));
        if (rs->r == NULL)
            c.oom = true;
        for (const ep_cfg_node *rn = rules->first; rn != NULL && !c.oom; rn = rn->next) {
            if (rn->kind != EP_CFG_NODE_MAP) {
                ep_cfg_errs_add(errs, rn, "expected a map with principals and brokerResources");
                continue;
            }
            check_keys(&c, rn, rule_keys, "principals, brokerResources or stateStoreResources");
            rule *r = &rs->r[rs->n++];
            const ep_cfg_node *pn = ep_cfg_node_get(rn, "principals");
            if (pn == NULL)
                ep_cfg_errs_add(errs, rn, "missing 'principals'");
            else
                parse_principals(&c, pn, r);
            parse_broker_resources(&c, ep_cfg_node_get(rn, "brokerResources"), r);
            parse_state_store(&c, ep_cfg_node_get(rn, "stateStoreResources"));
        }
    }
    if (c.oom || errs->nerr != nerr0) {
        arena_free(&mem);
        return c.oom ? EP_ENOMEM : EP_ECONFIG;
    }
    atomic_init(&rs->refs, 1);
    rs->generation = atomic_fetch_add(&next_generation, 1);
    rs->mem = mem;
    *out = rs;
    return EP_EOK;
}

ep_err ep_authz_rules_parse(const char *name, const char *text, size_t len, ep_authz_rules **out,
                            ep_cfg_errs *errs)
{
    ep_cfg_tree *t = NULL;
    ep_err err = ep_cfg_parse_str(name ? name : "<rules>", text, len, NULL, &t, errs);
    if (err == EP_EOK)
        err = rules_from_tree(ep_cfg_tree_root(t), out, errs);
    ep_cfg_tree_free(t);
    return err;
}

ep_err ep_authz_rules_load(const char *path, ep_authz_rules **out, ep_cfg_errs *errs)
{
    ep_cfg_tree *t = NULL;
    ep_err err = ep_cfg_parse_file(path, NULL, &t, errs);
    if (err == EP_EOK)
        err = rules_from_tree(ep_cfg_tree_root(t), out, errs);
    ep_cfg_tree_free(t);
    return err;
}

/* ------------------------------------------------------------------------ */
/* Compiling for a principal                                                 */

struct ep_authz_session {
    ep_authz_rules *rules;
    bool all; /* no rules: everything allowed */
    bool connect;
    ep_mqtt_slice *pub, *sub;
    size_t n_pub, n_sub;
};

static bool in_list(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static const char *attr_get(const ep_authz_principal *p, const char *name, size_t len)
{
    for (size_t i = 0; i < p->n_attrs; i++)
        if (p->attrs[i].name != NULL && strlen(p->attrs[i].name) == len &&
            memcmp(p->attrs[i].name, name, len) == 0)
            return p->attrs[i].value;
    return NULL;
}

static bool rule_applies(const rule *r, const ep_authz_principal *p)
{
    if (in_list(r->cids, r->n_cids, p->client_id) || in_list(r->users, r->n_users, p->username))
        return true;
    for (size_t m = 0; m < r->n_am; m++) {
        bool all = true;
        for (size_t k = 0; k < r->am[m].n && all; k++) {
            const char *v = attr_get(p, r->am[m].kv[k].name, strlen(r->am[m].kv[k].name));
            all = v != NULL && strcmp(v, r->am[m].kv[k].value) == 0;
        }
        if (all)
            return true;
    }
    return false;
}

/* Renders t for p into out (NULL: measure only). Returns the length, or
 * (size_t)-1 when a variable is undefined or (topic) not a plain level
 * part, or the result is not a valid filter. */
static size_t render(const tmpl *t, const ep_authz_principal *p, bool topic, char *out)
{
    size_t o = 0;
    for (size_t k = 0; k < t->n; k++) {
        const char *v;
        size_t vl;
        switch (t->p[k].k) {
        case P_LIT:
            v = t->p[k].s;
            vl = t->p[k].len;
            break;
        case P_CID:
            v = p->client_id;
            vl = strlen(v);
            break;
        case P_USER:
            v = p->username;
            vl = v ? strlen(v) : 0;
            break;
        default:
            v = attr_get(p, t->p[k].s, t->p[k].len);
            vl = v ? strlen(v) : 0;
            break;
        }
        if (v == NULL)
            return (size_t)-1;
        if (topic && t->p[k].k != P_LIT && (vl == 0 || strpbrk(v, "/+#") != NULL))
            return (size_t)-1;
        if (out != NULL)
            memcpy(out + o, v, vl);
        o += vl;
        if (o > 65535)
            return (size_t)-1;
    }
    if (topic && out != NULL && !ep_mqtt_topic_filter_valid(ep_mqtt_slice_make(out, o)))
        return (size_t)-1; /* e.g. invalid UTF-8 in a substituted value */
    return o;
}

static bool pattern_matches(const tmpl *t, const ep_authz_principal *p)
{
    size_t len = render(t, p, false, NULL);
    if (len == (size_t)-1)
        return false;
    char stackbuf[256];
    char *buf = len < sizeof(stackbuf) ? stackbuf : malloc(len + 1);
    if (buf == NULL)
        return false;
    render(t, p, false, buf);
    size_t cl = strlen(p->client_id);
    bool ok = t->glob ? cl >= len && memcmp(p->client_id, buf, len) == 0
                      : cl == len && memcmp(p->client_id, buf, len) == 0;
    if (buf != stackbuf)
        free(buf);
    return ok;
}

typedef struct grant_ref {
    uint32_t off, len;
    bool sub;
} grant_ref;

ep_err ep_authz_session_new(ep_authz_rules *rules, const ep_authz_principal *p,
                            ep_authz_session **out)
{
    if (p == NULL || p->client_id == NULL)
        return EP_EINVAL;
    /* Render every granted filter once into `text`, remembering where each
     * one is in `refs`; then copy both into one allocation. */
    ep_buf text, refs;
    ep_buf_init(&text, 0);
    ep_buf_init(&refs, 0);
    ep_err err = EP_EOK;
    size_t n_pub = 0, n_sub = 0;
    bool connect = false;
    for (size_t i = 0; rules != NULL && i < rules->n && err == EP_EOK; i++) {
        const rule *r = &rules->r[i];
        if (!rule_applies(r, p))
            continue;
        connect = connect || r->conn_any;
        for (size_t k = 0; k < r->n_conn && !connect; k++)
            connect = pattern_matches(&r->conn[k], p);
        for (int which = 0; which < 2 && err == EP_EOK; which++) {
            const tmpl *ts = which ? r->sub : r->pub;
            size_t nt = which ? r->n_sub : r->n_pub;
            for (size_t k = 0; k < nt && err == EP_EOK; k++) {
                size_t l = render(&ts[k], p, true, NULL);
                if (l == (size_t)-1 || (err = ep_buf_reserve(&text, l)) != EP_EOK)
                    continue;
                if (render(&ts[k], p, true, (char *)ep_buf_tail(&text)) == (size_t)-1)
                    continue; /* not a valid filter once substituted */
                grant_ref g = {(uint32_t)text.len, (uint32_t)l, which == 1};
                text.len += l;
                err = ep_buf_append(&refs, &g, sizeof(g));
                *(which ? &n_sub : &n_pub) += 1;
            }
        }
    }
    ep_authz_session *s = NULL;
    if (err == EP_EOK) {
        size_t hdr = sizeof(ep_authz_session);
        size_t sl = (n_pub + n_sub) * sizeof(ep_mqtt_slice);
        s = calloc(1, hdr + sl + text.len + 1);
        if (s == NULL)
            err = EP_ENOMEM;
    }
    if (err == EP_EOK) {
        s->rules = ep_authz_rules_ref(rules);
        s->all = rules == NULL;
        s->connect = connect;
        s->pub = (ep_mqtt_slice *)(void *)((char *)s + sizeof(ep_authz_session));
        s->sub = s->pub + n_pub;
        char *b = (char *)(s->sub + n_sub);
        if (text.len > 0)
            memcpy(b, text.data, text.len);
        size_t ng = ep_buf_used(&refs) / sizeof(grant_ref);
        for (size_t i = 0; i < ng; i++) {
            grant_ref g;
            memcpy(&g, refs.data + i * sizeof(g), sizeof(g));
            ep_mqtt_slice sl = ep_mqtt_slice_make(b + g.off, g.len);
            if (g.sub)
                s->sub[s->n_sub++] = sl;
            else
                s->pub[s->n_pub++] = sl;
        }
        *out = s;
    }
    ep_buf_fini(&text);
    ep_buf_fini(&refs);
    return err;
}

void ep_authz_session_free(ep_authz_session *s)
{
    if (s == NULL)
        return;
    ep_authz_rules_unref(s->rules);
    free(s);
}

uint64_t ep_authz_session_generation(const ep_authz_session *s)
{
    return s && s->rules ? s->rules->generation : 0;
}

/* Next level of f at *pos: returns its length and advances *pos past the
 * separator; *more tells whether a level follows. */
static size_t next_level(const uint8_t *f, size_t len, size_t *pos, bool *more)
{
    size_t start = *pos;
    const uint8_t *slash = memchr(f + start, '/', len - start);
    size_t end = slash ? (size_t)(slash - f) : len;
    *more = slash != NULL;
    *pos = end + 1;
    return end - start;
}

/* Does granted filter g cover every topic requested filter q can match? */
static bool filter_covers(ep_mqtt_slice g, ep_mqtt_slice q)
{
    size_t gp = 0, qp = 0;
    bool gmore = true, qmore = true, first = true;
    while (gmore) {
        const uint8_t *gl = g.p + gp;
        size_t gn = next_level(g.p, g.len, &gp, &gmore);
        bool g_hash = gn == 1 && gl[0] == '#', g_plus = gn == 1 && gl[0] == '+';
        if (first && (g_hash || g_plus) && q.len > 0 && q.p[0] == '$')
            return false; /* wildcards do not match $ topics at the first level */
        if (g_hash)
            return true;
        if (!qmore)
            return false; /* granted filter is deeper than every requested topic */
        const uint8_t *ql = q.p + qp;
        size_t qn = next_level(q.p, q.len, &qp, &qmore);
        bool q_hash = qn == 1 && ql[0] == '#', q_plus = qn == 1 && ql[0] == '+';
        if (q_hash)
            return false;
        if (!g_plus && (q_plus || gn != qn || memcmp(gl, ql, gn) != 0))
            return false;
        first = false;
    }
    return !qmore;
}

bool ep_authz_session_allows(const ep_authz_session *s, ep_authz_action a, const char *topic,
                             size_t len)
{
    if (s == NULL)
        return false;
    if (s->all)
        return true;
    if (a == EP_AUTHZ_CONNECT)
        return s->connect;
    if (topic == NULL || len == 0 || len > 65535)
        return false;
    ep_mqtt_slice t = ep_mqtt_slice_make(topic, len);
    if (a == EP_AUTHZ_PUBLISH) {
        for (size_t i = 0; i < s->n_pub; i++)
            if (ep_mqtt_topic_match(s->pub[i], t))
                return true;
        return false;
    }
    if (a != EP_AUTHZ_SUBSCRIBE || !ep_mqtt_topic_filter_valid(t))
        return false;
    if (len >= 7 && memcmp(topic, "$share/", 7) == 0) {
        ep_mqtt_slice group, inner;
        if (ep_mqtt_topic_share_split(t, &group, &inner) != EP_EOK)
            return false;
        t = inner;
    }
    for (size_t i = 0; i < s->n_sub; i++)
        if (filter_covers(s->sub[i], t))
            return true;
    return false;
}

bool ep_authz_check(ep_authz_rules *rules, const ep_authz_principal *p, ep_authz_action a,
                    const char *topic)
{
    ep_authz_session *s = NULL;
    if (ep_authz_session_new(rules, p, &s) != EP_EOK)
        return false;
    bool ok = ep_authz_session_allows(s, a, topic, topic ? strlen(topic) : 0);
    ep_authz_session_free(s);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Live rule set                                                             */

struct ep_authz {
    pthread_mutex_t lock;
    ep_authz_rules *cur;
    atomic_uint_fast64_t generation;
};

ep_err ep_authz_new(ep_authz **out)
{
    ep_authz *az = calloc(1, sizeof(*az));
    if (az == NULL)
        return EP_ENOMEM;
    pthread_mutex_init(&az->lock, NULL);
    *out = az;
    return EP_EOK;
}

void ep_authz_free(ep_authz *az)
{
    if (az == NULL)
        return;
    ep_authz_rules_unref(az->cur);
    pthread_mutex_destroy(&az->lock);
    free(az);
}

void ep_authz_set(ep_authz *az, ep_authz_rules *rules)
{
    pthread_mutex_lock(&az->lock);
    ep_authz_rules *old = az->cur;
    az->cur = rules;
    atomic_store(&az->generation, rules ? rules->generation : 0);
    pthread_mutex_unlock(&az->lock);
    ep_authz_rules_unref(old);
}

ep_err ep_authz_load(ep_authz *az, const char *path, ep_cfg_errs *errs)
{
    ep_authz_rules *r = NULL;
    ep_err err = ep_authz_rules_load(path, &r, errs);
    if (err == EP_EOK)
        ep_authz_set(az, r);
    return err;
}

ep_authz_rules *ep_authz_get(ep_authz *az)
{
    pthread_mutex_lock(&az->lock);
    ep_authz_rules *r = ep_authz_rules_ref(az->cur);
    pthread_mutex_unlock(&az->lock);
    return r;
}

uint64_t ep_authz_generation(const ep_authz *az)
{
    return atomic_load(&((ep_authz *)az)->generation);
}
