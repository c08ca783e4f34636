/*
 * server_space.c - the address space: nodes in one open-addressing-free
 * chained hash table keyed by NodeId, references stored on both ends, the
 * namespace-0 skeleton (Root, Objects, Types, Server and ServerStatus), and
 * the services that read it: Browse, BrowseNext,
 * TranslateBrowsePathsToNodeIds, Read, Write and Call.
 *
 * A variable's value is a heap copy; changing it bumps node->version,
 * which is all monitored items look at when they sample, so a sample of an
 * unchanged value costs one comparison.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/opcua/gen/attributes.h"
#include "core/log.h"
#include "svc/opcua/server_int.h"

/* ------------------------------------------------------------ hashing -- */

static uint64_t nid_hash(const ep_ua_nodeid *id)
{
    uint64_t h = 1469598103934665603ull;
#define MIX(b) (h = (h ^ (uint8_t)(b)) * 1099511628211ull)
    MIX(id->ns);
    MIX(id->ns >> 8);
    MIX(id->id_type);
    switch (id->id_type) {
    case EP_UA_NODEID_NUMERIC:
        for (int i = 0; i < 4; i++)
            MIX(id->id.numeric >> (8 * i));
        break;
    case EP_UA_NODEID_STRING:
    case EP_UA_NODEID_OPAQUE:
        for (size_t i = 0; i < id->id.string.len; i++)
            MIX(id->id.string.data[i]);
        break;
    default:
        for (size_t i = 0; i < sizeof(id->id.guid); i++)
            MIX(((const uint8_t *)&id->id.guid)[i]);
    }
#undef MIX
    return h;
}

static bool nid_eq(const ep_ua_nodeid *a, const ep_ua_nodeid *b)
{
    if (a->ns != b->ns || a->id_type != b->id_type)
        return false;
    if (a->id_type == EP_UA_NODEID_NUMERIC)
        return a->id.numeric == b->id.numeric;
    return ep_ua_equal(a, b, EP_UA_T(NodeId));
}

ep_ua_node *ep_ua_server_find(ep_ua_server *srv, const ep_ua_nodeid *id)
{
    if (srv->nodes_cap == 0)
        return NULL;
    for (ep_ua_node *n = srv->nodes[nid_hash(id) & (srv->nodes_cap - 1)]; n; n = n->hnext)
        if (nid_eq(&n->id, id))
            return n;
    return NULL;
}

static ep_ua_node *find_num(ep_ua_server *srv, uint32_t i)
{
    ep_ua_nodeid id = ep_ua_nodeid_numeric(0, i);
    return ep_ua_server_find(srv, &id);
}

static ep_err table_grow(ep_ua_server *srv)
{
    size_t cap = srv->nodes_cap ? srv->nodes_cap * 2 : 1024;
    ep_ua_node **t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return EP_ENOMEM;
    for (size_t i = 0; i < srv->nodes_cap; i++)
        for (ep_ua_node *n = srv->nodes[i], *next; n; n = next) {
            next = n->hnext;
            size_t b = nid_hash(&n->id) & (cap - 1);
            n->hnext = t[b];
            t[b] = n;
        }
    free(srv->nodes);
    srv->nodes = t;
    srv->nodes_cap = cap;
    return EP_EOK;
}

static void node_free(ep_ua_node *n)
{
    ep_ua_clear(&n->id, EP_UA_T(NodeId));
    ep_ua_clear(&n->browse_name, EP_UA_T(QualifiedName));
    ep_ua_clear(&n->display_name, EP_UA_T(LocalizedText));
    ep_ua_clear(&n->value, EP_UA_T(Variant));
    free(n->refs);
    free(n->arg_types);
    free(n);
}

void ep_ua__space_free(ep_ua_server *srv)
{
    ep_timer_stop(&srv->status_timer);
    for (size_t i = 0; i < srv->nodes_cap; i++)
        for (ep_ua_node *n = srv->nodes[i], *next; n; n = next) {
            next = n->hnext;
            node_free(n);
        }
    free(srv->nodes);
    srv->nodes = NULL;
    srv->nodes_cap = 0;
    for (size_t i = 0; i < srv->nns; i++)
        free(srv->ns[i]);
    free(srv->ns);
    srv->ns = NULL;
    srv->nns = 0;
}

static ep_err add_ref1(ep_ua_node *n, uint32_t type, bool inverse, ep_ua_node *t)
{
    if (n->nrefs == n->cap) {
        uint32_t cap = n->cap ? n->cap * 2 : 4;
        ua_ref *r = realloc(n->refs, cap * sizeof(*r));
        if (r == NULL)
            return EP_ENOMEM;
        n->refs = r;
        n->cap = cap;
    }
    n->refs[n->nrefs++] = (ua_ref){type, inverse, t};
    return EP_EOK;
}

static ep_err link(ep_ua_node *src, uint32_t type, ep_ua_node *dst)
{
    ep_err e = add_ref1(src, type, false, dst);
    if (e == EP_EOK)
        e = add_ref1(dst, type, true, src);
    if (type == EP_UA_NS0_HasTypeDefinition)
        src->type_def = dst;
    return e;
}

/* Creates and inserts a node; the caller sets class-specific fields. */
static ep_err node_new(ep_ua_server *srv, const ep_ua_nodeid *id, uint8_t cls, const char *name,
                       ep_ua_node **out)
{
    if (id == NULL || name == NULL)
        return EP_EINVAL;
    if (ep_ua_server_find(srv, id))
        return EP_EEXIST;
    if (srv->nnodes + 1 > srv->nodes_cap && table_grow(srv) != EP_EOK)
        return EP_ENOMEM;
    ep_ua_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return EP_ENOMEM;
    ep_ua_qualifiedname qn = {id->ns, ep_ua_string_from(name)};
    ep_ua_localizedtext lt = {{0, NULL}, ep_ua_string_from(name)};
    if (ep_ua_copy(id, &n->id, EP_UA_T(NodeId)) != EP_EOK ||
        ep_ua_copy(&qn, &n->browse_name, EP_UA_T(QualifiedName)) != EP_EOK ||
        ep_ua_copy(&lt, &n->display_name, EP_UA_T(LocalizedText)) != EP_EOK) {
        node_free(n);
        return EP_ENOMEM;
    }
    n->node_class = cls;
    n->value_rank = -1;
    size_t b = nid_hash(id) & (srv->nodes_cap - 1);
    n->hnext = srv->nodes[b];
    srv->nodes[b] = n;
    srv->nnodes++;
    *out = n;
    return EP_EOK;
}

static ep_err attach(ep_ua_server *srv, ep_ua_node *n, const ep_ua_nodeid *parent,
                     uint32_t ref_type, uint32_t type_def)
{
    ep_err e = EP_EOK;
    if (parent) {
        ep_ua_node *p = ep_ua_server_find(srv, parent);
        if (p == NULL)
            return EP_ENOTFOUND;
        e = link(p, ref_type, n);
    }
    if (e == EP_EOK && type_def) {
        ep_ua_node *t = find_num(srv, type_def);
        if (t)
            e = link(n, EP_UA_NS0_HasTypeDefinition, t);
    }
    return e;
}

/* ------------------------------------------------------- public adds -- */

ep_err ep_ua_server_add_object(ep_ua_server *srv, const ep_ua_nodeid *id,
                               const ep_ua_nodeid *parent, uint32_t ref_type,
                               const char *browse_name, uint32_t type_def, uint8_t event_notifier,
                               ep_ua_node **out)
{
    if (parent && !ep_ua_server_find(srv, parent))
        return EP_ENOTFOUND;
    ep_ua_node *n;
    ep_err e = node_new(srv, id, EP_UA_NODE_CLASS_OBJECT, browse_name, &n);
    if (e != EP_EOK)
        return e;
    n->event_notifier = event_notifier;
    if (type_def == 0)
        type_def = EP_UA_NS0_BaseObjectType;
    if (ref_type == 0) {
        ep_ua_node *p = parent ? ep_ua_server_find(srv, parent) : NULL;
        ref_type = p && p->type_def && p->type_def->id.ns == 0 &&
                           p->type_def->id.id.numeric == EP_UA_NS0_FolderType
                       ? EP_UA_NS0_Organizes
                       : EP_UA_NS0_HasComponent;
    }
    e = attach(srv, n, parent, ref_type, type_def);
    if (e == EP_EOK && out)
        *out = n;
    return e;
}

ep_err ep_ua_server_add_variable(ep_ua_server *srv, const ep_ua_nodeid *id,
                                 const ep_ua_nodeid *parent, uint32_t ref_type,
                                 const char *browse_name, const ep_ua_variant *initial,
                                 uint32_t data_type, uint8_t access_level, ep_ua_node **out)
{
    if (parent && !ep_ua_server_find(srv, parent))
        return EP_ENOTFOUND;
    ep_ua_node *n;
    ep_err e = node_new(srv, id, EP_UA_NODE_CLASS_VARIABLE, browse_name, &n);
    if (e != EP_EOK)
        return e;
    if (initial && ep_ua_copy(initial, &n->value, EP_UA_T(Variant)) != EP_EOK)
        return EP_ENOMEM;
    if (data_type == 0)
        data_type = initial && initial->type ? initial->type->type_id : EP_UA_NS0_BaseDataType;
    n->data_type = data_type;
    n->value_rank = initial && initial->is_array ? 1 : -1;
    n->access_level = access_level ? access_level : EP_UA_ACCESS_READ;
    n->source_ts = n->server_ts = ep_ua__now();
    n->version = 1;
    if (ref_type == 0)
        ref_type = EP_UA_NS0_HasComponent;
    e = attach(srv, n, parent, ref_type,
               ref_type == EP_UA_NS0_HasProperty ? EP_UA_NS0_PropertyType
                                                 : EP_UA_NS0_BaseDataVariableType);
    if (e == EP_EOK && out)
        *out = n;
    return e;
}

static ep_err add_args_prop(ep_ua_server *srv, ep_ua_node *m, const char *name, uint32_t num,
                            size_t n, const ep_ua_argument *args)
{
    ep_ua_extensionobject *eo = calloc(n ? n : 1, sizeof(*eo));
    if (eo == NULL)
        return EP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        eo[i].encoding = EP_UA_EXTOBJ_DECODED;
        eo[i].type = EP_UA_T(Argument);
        eo[i].data = (void *)(uintptr_t)&args[i];
    }
    ep_ua_variant v;
    memset(&v, 0, sizeof(v));
    v.type = EP_UA_T(ExtensionObject);
    v.is_array = true;
    v.array_len = n;
    v.data = n ? (void *)eo : EP_UA_EMPTY;
    ep_ua_nodeid pid = m->id;
    ep_ua_nodeid id;
    /* property ids derive from the method id: numeric +1/+2, or
     * "<string>.InputArguments" */
    char buf[512];
    if (m->id.id_type == EP_UA_NODEID_NUMERIC) {
        id = ep_ua_nodeid_numeric(m->id.ns, m->id.id.numeric + num);
    } else {
        snprintf(buf, sizeof(buf), "%.*s.%s", (int)m->id.id.string.len,
                 (const char *)m->id.id.string.data, name);
        memset(&id, 0, sizeof(id));
        id.ns = m->id.ns;
        id.id_type = EP_UA_NODEID_STRING;
        id.id.string = ep_ua_string_from(buf);
    }
    ep_ua_node *p;
    ep_err e = ep_ua_server_add_variable(srv, &id, &pid, EP_UA_NS0_HasProperty, name, &v,
                                         EP_UA_NS0_Argument, EP_UA_ACCESS_READ, &p);
    if (e == EP_EOK) {
        p->browse_name.ns = 0;
        p->value_rank = 1;
    }
    free(eo);
    return e;
}

ep_err ep_ua_server_add_method(ep_ua_server *srv, const ep_ua_nodeid *id,
                               const ep_ua_nodeid *parent, const char *browse_name, size_t nin,
                               const ep_ua_argument *in, size_t nout, const ep_ua_argument *outargs,
                               ep_ua_server_method_fn fn, void *ud, ep_ua_node **out)
{
    if (fn == NULL)
        return EP_EINVAL;
    if (parent && !ep_ua_server_find(srv, parent))
        return EP_ENOTFOUND;
    ep_ua_node *n;
    ep_err e = node_new(srv, id, EP_UA_NODE_CLASS_METHOD, browse_name, &n);
    if (e != EP_EOK)
        return e;
    n->fn = fn;
    n->fn_ud = ud;
    if (nin) {
        n->arg_types = calloc(nin, sizeof(*n->arg_types));
        if (n->arg_types == NULL)
            return EP_ENOMEM;
        for (size_t i = 0; i < nin; i++)
            n->arg_types[i] = in[i].data_type.ns == 0 ? in[i].data_type.id.numeric : 0;
        n->nargs = nin;
    }
    e = attach(srv, n, parent, EP_UA_NS0_HasComponent, 0);
    if (e == EP_EOK && nin)
        e = add_args_prop(srv, n, "InputArguments", 1, nin, in);
    if (e == EP_EOK && nout)
        e = add_args_prop(srv, n, "OutputArguments", 2, nout, outargs);
    if (e == EP_EOK && out)
        *out = n;
    return e;
}

ep_err ep_ua_server_add_reference(ep_ua_server *srv, const ep_ua_nodeid *src, uint32_t ref_type,
                                  const ep_ua_nodeid *dst)
{
    ep_ua_node *a = ep_ua_server_find(srv, src), *b = ep_ua_server_find(srv, dst);
    if (a == NULL || b == NULL)
        return EP_ENOTFOUND;
    return link(a, ref_type, b);
}

static bool fast_kind(const ep_ua_type *t) { return t && t->kind <= EP_UA_KIND_DOUBLE; }

ep_err ep_ua_server_set_value(ep_ua_server *srv, ep_ua_node *n, const ep_ua_variant *v,
                              ep_ua_datetime ts)
{
    (void)srv;
    if (n == NULL || n->node_class != EP_UA_NODE_CLASS_VARIABLE || v == NULL)
        return EP_EINVAL;
    if (n->value.type == v->type && !v->is_array && !n->value.is_array && fast_kind(v->type) &&
        n->value.data && v->data) {
        memcpy(n->value.data, v->data, v->type->size);
    } else {
        ep_ua_variant copy;
        ep_err e = ep_ua_copy(v, &copy, EP_UA_T(Variant));
        if (e != EP_EOK)
            return e;
        ep_ua_clear(&n->value, EP_UA_T(Variant));
        n->value = copy;
    }
    n->server_ts = ep_ua__now();
    n->source_ts = ts ? ts : n->server_ts;
    n->status = EP_UA_STATUS_Good;
    n->version++;
    return EP_EOK;
}

ep_err ep_ua_server_set_double(ep_ua_server *srv, ep_ua_node *n, double d)
{
    ep_ua_variant v;
    memset(&v, 0, sizeof(v));
    v.type = EP_UA_T(Double);
    v.data = &d;
    return ep_ua_server_set_value(srv, n, &v, 0);
}

const ep_ua_variant *ep_ua_server_value(const ep_ua_node *n)
{
    return n && n->node_class == EP_UA_NODE_CLASS_VARIABLE ? &n->value : NULL;
}

ep_err ep_ua_server_emit_event(ep_ua_server *srv, const ep_ua_nodeid *source, uint16_t severity,
                               const char *message)
{
    ep_ua_node *n = ep_ua_server_find(srv, source);
    if (n == NULL)
        return EP_ENOTFOUND;
    ep_ua__event_raise(srv, n, severity, message);
    return EP_EOK;
}

static ep_err set_namespaces(ep_ua_server *srv)
{
    ep_ua_variant v;
    memset(&v, 0, sizeof(v));
    ep_ua_string *s = calloc(srv->nns, sizeof(*s));
    if (s == NULL)
        return EP_ENOMEM;
    for (size_t i = 0; i < srv->nns; i++)
        s[i] = ep_ua_string_from(srv->ns[i]);
    v.type = EP_UA_T(String);
    v.is_array = true;
    v.array_len = srv->nns;
    v.data = s;
    ep_err e = ep_ua_server_set_value(srv, srv->n_namespaces, &v, 0);
    free(s);
    return e;
}

uint16_t ep_ua_server_add_namespace(ep_ua_server *srv, const char *uri)
{
    for (size_t i = 0; i < srv->nns; i++)
        if (strcmp(srv->ns[i], uri) == 0)
            return (uint16_t)i;
    if (srv->nns >= 65535)
        return 0;
    char **a = realloc(srv->ns, (srv->nns + 1) * sizeof(*a));
    if (a == NULL)
        return 0;
    srv->ns = a;
    if ((a[srv->nns] = strdup(uri)) == NULL)
        return 0;
    srv->nns++;
    if (srv->n_namespaces && set_namespaces(srv) != EP_EOK)
        return 0;
    return (uint16_t)(srv->nns - 1);
}

/* ---------------------------------------------------------- ns0 -- */

typedef struct ns0_def {
    uint32_t id;
    uint8_t cls;
    const char *name;
    uint32_t parent, ref, type_def;
} ns0_def;

static const ns0_def ns0[] = {
    {EP_UA_NS0_RootFolder, EP_UA_NODE_CLASS_OBJECT, "Root", 0, 0, EP_UA_NS0_FolderType},
    {EP_UA_NS0_ObjectsFolder, EP_UA_NODE_CLASS_OBJECT, "Objects", 84, 35, EP_UA_NS0_FolderType},
    {EP_UA_NS0_TypesFolder, EP_UA_NODE_CLASS_OBJECT, "Types", 84, 35, EP_UA_NS0_FolderType},
    {EP_UA_NS0_ViewsFolder, EP_UA_NODE_CLASS_OBJECT, "Views", 84, 35, EP_UA_NS0_FolderType},
    {88, EP_UA_NODE_CLASS_OBJECT, "ObjectTypes", 86, 35, EP_UA_NS0_FolderType},
    {89, EP_UA_NODE_CLASS_OBJECT, "VariableTypes", 86, 35, EP_UA_NS0_FolderType},
    {90, EP_UA_NODE_CLASS_OBJECT, "DataTypes", 86, 35, EP_UA_NS0_FolderType},
    {91, EP_UA_NODE_CLASS_OBJECT, "ReferenceTypes", 86, 35, EP_UA_NS0_FolderType},
    /* reference types */
    {31, EP_UA_NODE_CLASS_REFERENCE_TYPE, "References", 91, 35, 0},
    {32, EP_UA_NODE_CLASS_REFERENCE_TYPE, "NonHierarchicalReferences", 31, 45, 0},
    {33, EP_UA_NODE_CLASS_REFERENCE_TYPE, "HierarchicalReferences", 31, 45, 0},
    {34, EP_UA_NODE_CLASS_REFERENCE_TYPE, "HasChild", 33, 45, 0},
    {35, EP_UA_NODE_CLASS_REFERENCE_TYPE, "Organizes", 33, 45, 0},
    {36, EP_UA_NODE_CLASS_REFERENCE_TYPE, "HasEventSource", 33, 45, 0},
    {48, EP_UA_NODE_CLASS_REFERENCE_TYPE, "HasNotifier", 36, 45, 0},
    {44, EP_UA_NODE_CLASS_REFERENCE_TYPE, "Aggregates", 34, 45, 0},
    {45, EP_UA_NODE_CLASS_REFERENCE_TYPE, "HasSubtype", 34, 45, 0},
    {46, EP_UA_NODE_CLASS_REFERENCE_TYPE, "HasProperty", 44, 45, 0},
    {47, EP_UA_NODE_CLASS_REFERENCE_TYPE, "HasComponent", 44, 45, 0},
    {37, EP_UA_NODE_CLASS_REFERENCE_TYPE, "HasModellingRule", 32, 45, 0},
    {40, EP_UA_NODE_CLASS_REFERENCE_TYPE, "HasTypeDefinition", 32, 45, 0},
    /* object and variable types */
    {58, EP_UA_NODE_CLASS_OBJECT_TYPE, "BaseObjectType", 88, 35, 0},
    {61, EP_UA_NODE_CLASS_OBJECT_TYPE, "FolderType", 58, 45, 0},
    {2004, EP_UA_NODE_CLASS_OBJECT_TYPE, "ServerType", 58, 45, 0},
    {2013, EP_UA_NODE_CLASS_OBJECT_TYPE, "ServerCapabilitiesType", 58, 45, 0},
    {2041, EP_UA_NODE_CLASS_OBJECT_TYPE, "BaseEventType", 58, 45, 0},
    {62, EP_UA_NODE_CLASS_VARIABLE_TYPE, "BaseVariableType", 89, 35, 0},
    {63, EP_UA_NODE_CLASS_VARIABLE_TYPE, "BaseDataVariableType", 62, 45, 0},
    {68, EP_UA_NODE_CLASS_VARIABLE_TYPE, "PropertyType", 62, 45, 0},
    {2138, EP_UA_NODE_CLASS_VARIABLE_TYPE, "ServerStatusType", 63, 45, 0},
    {3051, EP_UA_NODE_CLASS_VARIABLE_TYPE, "BuildInfoType", 63, 45, 0},
    /* data types */
    {24, EP_UA_NODE_CLASS_DATA_TYPE, "BaseDataType", 90, 35, 0},
    {1, EP_UA_NODE_CLASS_DATA_TYPE, "Boolean", 24, 45, 0},
    {26, EP_UA_NODE_CLASS_DATA_TYPE, "Number", 24, 45, 0},
    {27, EP_UA_NODE_CLASS_DATA_TYPE, "Integer", 26, 45, 0},
    {28, EP_UA_NODE_CLASS_DATA_TYPE, "UInteger", 26, 45, 0},
    {2, EP_UA_NODE_CLASS_DATA_TYPE, "SByte", 27, 45, 0},
    {3, EP_UA_NODE_CLASS_DATA_TYPE, "Byte", 28, 45, 0},
    {4, EP_UA_NODE_CLASS_DATA_TYPE, "Int16", 27, 45, 0},
    {5, EP_UA_NODE_CLASS_DATA_TYPE, "UInt16", 28, 45, 0},
    {6, EP_UA_NODE_CLASS_DATA_TYPE, "Int32", 27, 45, 0},
    {7, EP_UA_NODE_CLASS_DATA_TYPE, "UInt32", 28, 45, 0},
    {8, EP_UA_NODE_CLASS_DATA_TYPE, "Int64", 27, 45, 0},
    {9, EP_UA_NODE_CLASS_DATA_TYPE, "UInt64", 28, 45, 0},
    {10, EP_UA_NODE_CLASS_DATA_TYPE, "Float", 26, 45, 0},
    {11, EP_UA_NODE_CLASS_DATA_TYPE, "Double", 26, 45, 0},
    {12, EP_UA_NODE_CLASS_DATA_TYPE, "String", 24, 45, 0},
    {13, EP_UA_NODE_CLASS_DATA_TYPE, "DateTime", 24, 45, 0},
    {294, EP_UA_NODE_CLASS_DATA_TYPE, "UtcTime", 13, 45, 0},
    {14, EP_UA_NODE_CLASS_DATA_TYPE, "Guid", 24, 45, 0},
    {15, EP_UA_NODE_CLASS_DATA_TYPE, "ByteString", 24, 45, 0},
    {17, EP_UA_NODE_CLASS_DATA_TYPE, "NodeId", 24, 45, 0},
    {19, EP_UA_NODE_CLASS_DATA_TYPE, "StatusCode", 24, 45, 0},
    {20, EP_UA_NODE_CLASS_DATA_TYPE, "QualifiedName", 24, 45, 0},
    {21, EP_UA_NODE_CLASS_DATA_TYPE, "LocalizedText", 24, 45, 0},
    {22, EP_UA_NODE_CLASS_DATA_TYPE, "Structure", 24, 45, 0},
    {29, EP_UA_NODE_CLASS_DATA_TYPE, "Enumeration", 24, 45, 0},
    {296, EP_UA_NODE_CLASS_DATA_TYPE, "Argument", 22, 45, 0},
    {338, EP_UA_NODE_CLASS_DATA_TYPE, "BuildInfo", 22, 45, 0},
    {862, EP_UA_NODE_CLASS_DATA_TYPE, "ServerStatusDataType", 22, 45, 0},
    {852, EP_UA_NODE_CLASS_DATA_TYPE, "ServerState", 29, 45, 0},
    /* the Server object */
    {EP_UA_NS0_Server, EP_UA_NODE_CLASS_OBJECT, "Server", 85, 35, EP_UA_NS0_ServerType},
    {EP_UA_NS0_Server_ServerCapabilities, EP_UA_NODE_CLASS_OBJECT, "ServerCapabilities", 2253, 47,
     2013},
};

static ep_err ns0_var(ep_ua_server *srv, uint32_t id, uint32_t parent, uint32_t ref,
                      const char *name, const ep_ua_type *t, void *data, bool arr, size_t len,
                      uint32_t dt, ep_ua_node **out)
{
    ep_ua_variant v;
    memset(&v, 0, sizeof(v));
    v.type = t;
    v.data = data;
    v.is_array = arr;
    v.array_len = len;
    ep_ua_nodeid nid = ep_ua_nodeid_numeric(0, id), pid = ep_ua_nodeid_numeric(0, parent);
    ep_ua_node *n = NULL;
    ep_err e = ep_ua_server_add_variable(srv, &nid, &pid, ref, name, &v, dt, EP_UA_ACCESS_READ, &n);
    if (e == EP_EOK && out)
        *out = n;
    return e;
}

static void fill_status(ep_ua_server *srv, ep_ua_server_status_data_type *st)
{
    memset(st, 0, sizeof(*st));
    st->start_time = srv->start_time;
    st->current_time = ep_ua__now();
    st->state = EP_UA_SERVER_STATE_RUNNING;
    st->build_info.product_uri = ep_ua_string_from(srv->product_uri);
    st->build_info.manufacturer_name = EP_UA_STRING_LIT("edgeplane");
    st->build_info.product_name = EP_UA_STRING_LIT("edgeplane");
    st->build_info.software_version = EP_UA_STRING_LIT(EP_VERSION);
    st->build_info.build_number = EP_UA_STRING_LIT(EP_VERSION);
    st->build_info.build_date = srv->start_time;
}

void ep_ua__status_tick(ep_timer *t)
{
    ep_ua_server *srv = t->data;
    ep_ua_server_status_data_type st;
    fill_status(srv, &st);
    ep_ua_variant v;
    memset(&v, 0, sizeof(v));
    v.type = EP_UA_T(DateTime);
    v.data = &st.current_time;
    ep_ua_server_set_value(srv, srv->n_current_time, &v, 0);
    v.type = EP_UA_T(ServerStatusDataType);
    v.data = &st;
    ep_ua_server_set_value(srv, srv->n_status, &v, 0);
    ep_timer_start(&srv->status_timer, 1000);
}

ep_err ep_ua__space_init(ep_ua_server *srv)
{
    ep_err e = EP_EOK;
    /* Types referenced as type definitions must exist first: create every
     * node, then the references. */
    for (size_t i = 0; e == EP_EOK && i < sizeof(ns0) / sizeof(ns0[0]); i++) {
        ep_ua_node *n;
        ep_ua_nodeid id = ep_ua_nodeid_numeric(0, ns0[i].id);
        e = node_new(srv, &id, ns0[i].cls, ns0[i].name, &n);
        if (e == EP_EOK) {
            n->browse_name.ns = 0;
            if (ns0[i].cls == EP_UA_NODE_CLASS_REFERENCE_TYPE)
                n->is_abstract = ns0[i].id <= 34 || ns0[i].id == 44;
            if (ns0[i].id == EP_UA_NS0_Server)
                n->event_notifier = 1;
        }
    }
    for (size_t i = 0; e == EP_EOK && i < sizeof(ns0) / sizeof(ns0[0]); i++) {
        ep_ua_node *n = find_num(srv, ns0[i].id);
        if (ns0[i].parent)
            e = link(find_num(srv, ns0[i].parent), ns0[i].ref, n);
        if (e == EP_EOK && ns0[i].type_def)
            e = link(n, EP_UA_NS0_HasTypeDefinition, find_num(srv, ns0[i].type_def));
    }
    if (e != EP_EOK)
        return e;
    if (ep_ua_server_add_namespace(srv, "http://opcfoundation.org/UA/") != 0 ||
        ep_ua_server_add_namespace(srv, srv->app_uri) != 1)
        return EP_ENOMEM;
    ep_ua_string *nsa = calloc(srv->nns, sizeof(*nsa));
    if (nsa == NULL)
        return EP_ENOMEM;
    for (size_t i = 0; i < srv->nns; i++)
        nsa[i] = ep_ua_string_from(srv->ns[i]);
    e = ns0_var(srv, EP_UA_NS0_Server_NamespaceArray, 2253, 46, "NamespaceArray", EP_UA_T(String),
                nsa, true, srv->nns, 12, &srv->n_namespaces);
    free(nsa);
    ep_ua_string sa = ep_ua_string_from(srv->app_uri);
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerArray, 2253, 46, "ServerArray", EP_UA_T(String),
                    &sa, true, 1, 12, NULL);
    ep_ua_server_status_data_type st;
    fill_status(srv, &st);
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerStatus, 2253, 47, "ServerStatus",
                    EP_UA_T(ServerStatusDataType), &st, false, 0, 862, &srv->n_status);
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerStatus_StartTime, 2256, 47, "StartTime",
                    EP_UA_T(DateTime), &st.start_time, false, 0, 294, NULL);
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerStatus_CurrentTime, 2256, 47, "CurrentTime",
                    EP_UA_T(DateTime), &st.current_time, false, 0, 294, &srv->n_current_time);
    int32_t state = EP_UA_SERVER_STATE_RUNNING;
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerStatus_State, 2256, 47, "State", EP_UA_T(Int32),
                    &state, false, 0, 852, &srv->n_state);
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerStatus_BuildInfo, 2256, 47, "BuildInfo",
                    EP_UA_T(BuildInfo), &st.build_info, false, 0, 338, NULL);
    static const struct {
        uint32_t id;
        const char *name;
        size_t off;
    } bi[] = {
        {2261, "ProductName", offsetof(ep_ua_build_info, product_name)},
        {2262, "ProductUri", offsetof(ep_ua_build_info, product_uri)},
        {2263, "ManufacturerName", offsetof(ep_ua_build_info, manufacturer_name)},
        {2264, "SoftwareVersion", offsetof(ep_ua_build_info, software_version)},
        {2265, "BuildNumber", offsetof(ep_ua_build_info, build_number)},
    };
    for (size_t i = 0; e == EP_EOK && i < sizeof(bi) / sizeof(bi[0]); i++)
        e = ns0_var(srv, bi[i].id, 2260, 47, bi[i].name, EP_UA_T(String),
                    (char *)&st.build_info + bi[i].off, false, 0, 12, NULL);
    if (e == EP_EOK)
        e = ns0_var(srv, 2266, 2260, 47, "BuildDate", EP_UA_T(DateTime), &st.build_info.build_date,
                    false, 0, 294, NULL);
    uint32_t zero = 0;
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerStatus_SecondsTillShutdown, 2256, 47,
                    "SecondsTillShutdown", EP_UA_T(UInt32), &zero, false, 0, 7, NULL);
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerStatus_ShutdownReason, 2256, 47, "ShutdownReason",
                    EP_UA_T(LocalizedText), &st.shutdown_reason, false, 0, 21, NULL);
    uint8_t level = 255;
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServiceLevel, 2253, 46, "ServiceLevel", EP_UA_T(Byte),
                    &level, false, 0, 3, NULL);
    bool f = false;
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_Auditing, 2253, 46, "Auditing", EP_UA_T(Boolean), &f,
                    false, 0, 1, NULL);
    ep_ua_string prof =
        EP_UA_STRING_LIT("http://opcfoundation.org/UA-Profile/Server/StandardUA2017");
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerCapabilities_ServerProfileArray, 2268, 46,
                    "ServerProfileArray", EP_UA_T(String), &prof, true, 1, 12, NULL);
    ep_ua_string loc = EP_UA_STRING_LIT("en");
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerCapabilities_LocaleIdArray, 2268, 46,
                    "LocaleIdArray", EP_UA_T(String), &loc, true, 1, 295, NULL);
    double rate = 0;
    if (e == EP_EOK)
        e = ns0_var(srv, EP_UA_NS0_Server_ServerCapabilities_MinSupportedSampleRate, 2268, 46,
                    "MinSupportedSampleRate", EP_UA_T(Double), &rate, false, 0, 11, NULL);
    for (ep_ua_node *n = srv->n_status; n && e == EP_EOK; n = NULL)
        for (uint32_t i = 0; i < n->nrefs; i++)
            if (n->refs[i].target->id.ns == 0)
                n->refs[i].target->browse_name.ns = 0;
    /* every ns0 node created here keeps namespace 0 in its browse name */
    for (size_t i = 0; i < srv->nodes_cap; i++)
        for (ep_ua_node *n = srv->nodes[i]; n; n = n->hnext)
            if (n->id.ns == 0)
                n->browse_name.ns = 0;
    if (e == EP_EOK) {
        ep_timer_init(srv->loop, &srv->status_timer, ep_ua__status_tick, srv);
        ep_timer_start(&srv->status_timer, 1000);
        srv->n_server = find_num(srv, EP_UA_NS0_Server);
    }
    return e;
}

/* ------------------------------------------------- reference types -- */

static uint32_t ref_parent(uint32_t t)
{
    switch (t) {
    case 32:
    case 33:
        return 31;
    case 34:
    case 35:
    case 36:
        return 33;
    case 48:
        return 36;
    case 44:
    case 45:
        return 34;
    case 46:
    case 47:
        return 44;
    case 37:
    case 40:
    case 41:
        return 32;
    default:
        return 0;
    }
}

bool ep_ua__ref_is_subtype(uint32_t type, uint32_t base)
{
    for (int i = 0; i < 8 && type; i++, type = ref_parent(type))
        if (type == base)
            return true;
    return false;
}

/* ------------------------------------------------------------ browse -- */

static bool ref_matches(const ua_ref *r, int32_t dir, uint32_t rtype, bool sub, uint32_t class_mask)
{
    if (dir == EP_UA_BROWSE_DIRECTION_FORWARD && r->inverse)
        return false;
    if (dir == EP_UA_BROWSE_DIRECTION_INVERSE && !r->inverse)
        return false;
    if (rtype && !(r->type == rtype || (sub && ep_ua__ref_is_subtype(r->type, rtype))))
        return false;
    if (class_mask && !(class_mask & r->target->node_class))
        return false;
    return true;
}

static void fill_refdesc(ep_ua_reference_description *d, const ua_ref *r, uint32_t mask)
{
    memset(d, 0, sizeof(*d));
    if (mask & EP_UA_BROWSE_RESULT_MASK_REFERENCE_TYPE_ID)
        d->reference_type_id = ep_ua_nodeid_numeric(0, r->type);
    d->is_forward = !r->inverse;
    d->node_id.node_id = r->target->id;
    if (mask & EP_UA_BROWSE_RESULT_MASK_BROWSE_NAME)
        d->browse_name = r->target->browse_name;
    if (mask & EP_UA_BROWSE_RESULT_MASK_DISPLAY_NAME)
        d->display_name = r->target->display_name;
    if (mask & EP_UA_BROWSE_RESULT_MASK_NODE_CLASS)
        d->node_class = r->target->node_class;
    if ((mask & EP_UA_BROWSE_RESULT_MASK_TYPE_DEFINITION) && r->target->type_def &&
        (r->target->node_class == EP_UA_NODE_CLASS_OBJECT ||
         r->target->node_class == EP_UA_NODE_CLASS_VARIABLE))
        d->type_definition.node_id = r->target->type_def->id;
}

/* Browses from cp->next_ref; sets a continuation point when refs remain. */
static void browse_from(ua_session *s, ua_cp *cp, ep_ua_browse_result *res, ep_ua_arena *a)
{
    ep_ua_node *n = cp->node;
    uint32_t count = 0;
    uint32_t i;
    res->references =
        ep_ua__alloc(a, cp->max < n->nrefs ? cp->max : n->nrefs, sizeof(*res->references));
    if (res->references == NULL) {
        res->status_code = EP_UA_STATUS_BadOutOfMemory;
        return;
    }
    for (i = cp->next_ref; i < n->nrefs; i++) {
        const ua_ref *r = &n->refs[i];
        if (!ref_matches(r, cp->dir, cp->ref_type, cp->subtypes, cp->class_mask))
            continue;
        if (count == cp->max)
            break;
        fill_refdesc(&res->references[count++], r, cp->result_mask);
    }
    res->references_len = count;
    if (i < n->nrefs) {
        if (s->ncps >= UA_MAX_CP) {
            res->status_code = EP_UA_STATUS_BadNoContinuationPoints;
            res->references_len = 0;
            return;
        }
        ua_cp *c = &s->cps[s->ncps++];
        *c = *cp;
        c->next_ref = i;
        static uint64_t ctr = 0x5eed;
        c->id = ++ctr * 0x9e3779b97f4a7c15ull;
        uint8_t *b = ep_ua__alloc(a, 8, 1);
        if (b) {
            memcpy(b, &c->id, 8);
            res->continuation_point.data = b;
            res->continuation_point.len = 8;
        }
    }
}

static ep_ua_status check_count(ep_ua_server *srv, size_t n)
{
    if (n == 0)
        return EP_UA_STATUS_BadNothingToDo;
    if (n > srv->lim.max_nodes_per_request)
        return EP_UA_STATUS_BadTooManyOperations;
    return EP_UA_STATUS_Good;
}

void ep_ua__svc_browse(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                       const ep_ua_channel_msg *m)
{
    const ep_ua_browse_request *req = m->body;
    ep_ua_status st = check_count(srv, req->nodes_to_browse_len);
    if (st == EP_UA_STATUS_Good &&
        !(req->view.view_id.id_type == EP_UA_NODEID_NUMERIC && req->view.view_id.id.numeric == 0))
        st = EP_UA_STATUS_BadViewIdUnknown;
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    ep_ua_browse_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.results = ep_ua__alloc(m->arena, req->nodes_to_browse_len, sizeof(*r.results));
    if (r.results == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadOutOfMemory);
        return;
    }
    r.results_len = req->nodes_to_browse_len;
    uint32_t max = req->requested_max_references_per_node;
    if (max == 0 || max > srv->lim.max_browse_refs)
        max = srv->lim.max_browse_refs;
    for (size_t i = 0; i < req->nodes_to_browse_len; i++) {
        const ep_ua_browse_description *d = &req->nodes_to_browse[i];
        ep_ua_browse_result *res = &r.results[i];
        ep_ua_node *n = ep_ua_server_find(srv, &d->node_id);
        uint32_t rt = 0;
        if (!(d->reference_type_id.id_type == EP_UA_NODEID_NUMERIC &&
              d->reference_type_id.ns == 0)) {
            res->status_code = EP_UA_STATUS_BadReferenceTypeIdInvalid;
            continue;
        }
        rt = d->reference_type_id.id.numeric;
        if (rt && ref_parent(rt) == 0 && rt != 31) {
            res->status_code = EP_UA_STATUS_BadReferenceTypeIdInvalid;
            continue;
        }
        if (n == NULL) {
            res->status_code = EP_UA_STATUS_BadNodeIdUnknown;
            continue;
        }
        if (d->browse_direction < 0 || d->browse_direction > 2) {
            res->status_code = EP_UA_STATUS_BadBrowseDirectionInvalid;
            continue;
        }
        ua_cp cp = {0,
                    n,
                    0,
                    max,
                    d->browse_direction,
                    rt,
                    d->include_subtypes,
                    d->node_class_mask,
                    d->result_mask};
        browse_from(s, &cp, res, m->arena);
    }
    r.diagnostic_infos = EP_UA_EMPTY;
    ep_ua__send(ch, m->request_id, EP_UA_T(BrowseResponse), &r, &r.response_header);
}

void ep_ua__svc_browse_next(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                            const ep_ua_channel_msg *m)
{
    const ep_ua_browse_next_request *req = m->body;
    ep_ua_status st = check_count(srv, req->continuation_points_len);
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    ep_ua_browse_next_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.results = ep_ua__alloc(m->arena, req->continuation_points_len, sizeof(*r.results));
    if (r.results == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadOutOfMemory);
        return;
    }
    r.results_len = req->continuation_points_len;
    for (size_t i = 0; i < req->continuation_points_len; i++) {
        const ep_ua_bytestring *c = &req->continuation_points[i];
        ua_cp cp;
        bool found = false;
        if (c->len == 8) {
            uint64_t id;
            memcpy(&id, c->data, 8);
            for (unsigned k = 0; k < s->ncps; k++)
                if (s->cps[k].id == id) {
                    cp = s->cps[k];
                    s->cps[k] = s->cps[--s->ncps];
                    found = true;
                    break;
                }
        }
        if (!found) {
            r.results[i].status_code = EP_UA_STATUS_BadContinuationPointInvalid;
            continue;
        }
        if (!req->release_continuation_points)
            browse_from(s, &cp, &r.results[i], m->arena);
    }
    r.diagnostic_infos = EP_UA_EMPTY;
    ep_ua__send(ch, m->request_id, EP_UA_T(BrowseNextResponse), &r, &r.response_header);
}

void ep_ua__svc_translate(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                          const ep_ua_channel_msg *m)
{
    (void)s;
    const ep_ua_translate_browse_paths_to_node_ids_request *req = m->body;
    ep_ua_status st = check_count(srv, req->browse_paths_len);
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    ep_ua_translate_browse_paths_to_node_ids_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.results = ep_ua__alloc(m->arena, req->browse_paths_len, sizeof(*r.results));
    if (r.results == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadOutOfMemory);
        return;
    }
    r.results_len = req->browse_paths_len;
    enum { MAXSET = 64 };
    for (size_t i = 0; i < req->browse_paths_len; i++) {
        const ep_ua_browse_path *bp = &req->browse_paths[i];
        ep_ua_browse_path_result *res = &r.results[i];
        ep_ua_node *cur[MAXSET], *nxt[MAXSET];
        size_t ncur = 0;
        cur[0] = ep_ua_server_find(srv, &bp->starting_node);
        if (cur[0] == NULL) {
            res->status_code = EP_UA_STATUS_BadNodeIdUnknown;
            continue;
        }
        ncur = 1;
        if (bp->relative_path.elements_len == 0) {
            res->status_code = EP_UA_STATUS_BadNothingToDo;
            continue;
        }
        for (size_t k = 0; k < bp->relative_path.elements_len && ncur; k++) {
            const ep_ua_relative_path_element *el = &bp->relative_path.elements[k];
            if (el->target_name.name.data == NULL || el->target_name.name.len == 0) {
                res->status_code = EP_UA_STATUS_BadBrowseNameInvalid;
                ncur = 0;
                break;
            }
            uint32_t rt = el->reference_type_id.ns == 0 &&
                                  el->reference_type_id.id_type == EP_UA_NODEID_NUMERIC
                              ? el->reference_type_id.id.numeric
                              : 0;
            size_t nn = 0;
            for (size_t c = 0; c < ncur; c++)
                for (uint32_t j = 0; j < cur[c]->nrefs && nn < MAXSET; j++) {
                    const ua_ref *ref = &cur[c]->refs[j];
                    if (ref->inverse != el->is_inverse)
                        continue;
                    if (rt && !(ref->type == rt ||
                                (el->include_subtypes && ep_ua__ref_is_subtype(ref->type, rt))))
                        continue;
                    if (ep_ua_equal(&ref->target->browse_name, &el->target_name,
                                    EP_UA_T(QualifiedName)))
                        nxt[nn++] = ref->target;
                }
            memcpy(cur, nxt, nn * sizeof(*cur));
            ncur = nn;
        }
        if (res->status_code)
            continue;
        if (ncur == 0) {
            res->status_code = EP_UA_STATUS_BadNoMatch;
            continue;
        }
        res->targets = ep_ua__alloc(m->arena, ncur, sizeof(*res->targets));
        if (res->targets == NULL) {
            res->status_code = EP_UA_STATUS_BadOutOfMemory;
            continue;
        }
        res->targets_len = ncur;
        for (size_t c = 0; c < ncur; c++) {
            res->targets[c].target_id.node_id = cur[c]->id;
            res->targets[c].remaining_path_index = UINT32_MAX;
        }
    }
    r.diagnostic_infos = EP_UA_EMPTY;
    ep_ua__send(ch, m->request_id, EP_UA_T(TranslateBrowsePathsToNodeIdsResponse), &r,
                &r.response_header);
}

/* ------------------------------------------------------------ read -- */

static bool put_scalar(ep_ua_datavalue *dv, const ep_ua_type *t, const void *v, ep_ua_arena *a)
{
    void *p = ep_ua__alloc(a, 1, t->size);
    if (p == NULL) {
        dv->mask = EP_UA_DATAVALUE_STATUS;
        dv->status = EP_UA_STATUS_BadOutOfMemory;
        return false;
    }
    memcpy(p, v, t->size);
    dv->value.type = t;
    dv->value.data = p;
    dv->mask |= EP_UA_DATAVALUE_VALUE;
    return true;
}

void ep_ua__read_attr(ep_ua_server *srv, ep_ua_node *n, uint32_t attr, int32_t ts,
                      ep_ua_datavalue *dv, ep_ua_arena *a)
{
    (void)srv;
    memset(dv, 0, sizeof(*dv));
    bool var = n->node_class == EP_UA_NODE_CLASS_VARIABLE;
    bool vt = n->node_class == EP_UA_NODE_CLASS_VARIABLE_TYPE;
    bool types = n->node_class & (EP_UA_NODE_CLASS_OBJECT_TYPE | EP_UA_NODE_CLASS_VARIABLE_TYPE |
                                  EP_UA_NODE_CLASS_REFERENCE_TYPE | EP_UA_NODE_CLASS_DATA_TYPE);
    uint32_t u32 = 0;
    int32_t i32;
    bool b;
    double d;
    uint8_t u8;
    switch (attr) {
    case EP_UA_ATTR_NodeId:
        put_scalar(dv, EP_UA_T(NodeId), &n->id, a);
        return;
    case EP_UA_ATTR_NodeClass:
        i32 = n->node_class;
        put_scalar(dv, EP_UA_T(Int32), &i32, a);
        return;
    case EP_UA_ATTR_BrowseName:
        put_scalar(dv, EP_UA_T(QualifiedName), &n->browse_name, a);
        return;
    case EP_UA_ATTR_DisplayName:
        put_scalar(dv, EP_UA_T(LocalizedText), &n->display_name, a);
        return;
    case EP_UA_ATTR_Description: {
        ep_ua_localizedtext lt = {{0, NULL}, {0, NULL}};
        put_scalar(dv, EP_UA_T(LocalizedText), &lt, a);
        return;
    }
    case EP_UA_ATTR_WriteMask:
    case EP_UA_ATTR_UserWriteMask:
        put_scalar(dv, EP_UA_T(UInt32), &u32, a);
        return;
    case EP_UA_ATTR_IsAbstract:
        if (!types)
            break;
        b = n->is_abstract;
        put_scalar(dv, EP_UA_T(Boolean), &b, a);
        return;
    case EP_UA_ATTR_Symmetric:
        if (n->node_class != EP_UA_NODE_CLASS_REFERENCE_TYPE)
            break;
        b = n->symmetric;
        put_scalar(dv, EP_UA_T(Boolean), &b, a);
        return;
    case EP_UA_ATTR_InverseName: {
        if (n->node_class != EP_UA_NODE_CLASS_REFERENCE_TYPE)
            break;
        ep_ua_localizedtext lt = {{0, NULL}, {0, NULL}};
        put_scalar(dv, EP_UA_T(LocalizedText), &lt, a);
        return;
    }
    case EP_UA_ATTR_EventNotifier:
        if (n->node_class != EP_UA_NODE_CLASS_OBJECT)
            break;
        u8 = n->event_notifier;
        put_scalar(dv, EP_UA_T(Byte), &u8, a);
        return;
    case EP_UA_ATTR_Value:
        if (!var && !vt)
            break;
        dv->mask = EP_UA_DATAVALUE_VALUE;
        dv->value = n->value; /* borrowed: valid while the response is sent */
        if (n->status) {
            dv->mask |= EP_UA_DATAVALUE_STATUS;
            dv->status = n->status;
        }
        if (ts == EP_UA_TIMESTAMPS_TO_RETURN_SOURCE || ts == EP_UA_TIMESTAMPS_TO_RETURN_BOTH) {
            dv->mask |= EP_UA_DATAVALUE_SOURCE_TIMESTAMP;
            dv->source_timestamp = n->source_ts;
        }
        if (ts == EP_UA_TIMESTAMPS_TO_RETURN_SERVER || ts == EP_UA_TIMESTAMPS_TO_RETURN_BOTH) {
            dv->mask |= EP_UA_DATAVALUE_SERVER_TIMESTAMP;
            dv->server_timestamp = ep_ua__now();
        }
        return;
    case EP_UA_ATTR_DataType: {
        if (!var && !vt)
            break;
        ep_ua_nodeid id = ep_ua_nodeid_numeric(0, n->data_type);
        put_scalar(dv, EP_UA_T(NodeId), &id, a);
        return;
    }
    case EP_UA_ATTR_ValueRank:
        if (!var && !vt)
            break;
        put_scalar(dv, EP_UA_T(Int32), &n->value_rank, a);
        return;
    case EP_UA_ATTR_ArrayDimensions:
        if (!var && !vt)
            break;
        dv->mask = EP_UA_DATAVALUE_VALUE;
        if (n->value_rank == 1) {
            uint32_t *dims = ep_ua__alloc(a, 1, sizeof(uint32_t));
            if (dims) {
                dims[0] = 0;
                dv->value.type = EP_UA_T(UInt32);
                dv->value.is_array = true;
                dv->value.array_len = 1;
                dv->value.data = dims;
            }
        }
        return;
    case EP_UA_ATTR_AccessLevel:
    case EP_UA_ATTR_UserAccessLevel:
        if (!var)
            break;
        u8 = n->access_level;
        put_scalar(dv, EP_UA_T(Byte), &u8, a);
        return;
    case EP_UA_ATTR_AccessLevelEx:
        if (!var)
            break;
        u32 = n->access_level;
        put_scalar(dv, EP_UA_T(UInt32), &u32, a);
        return;
    case EP_UA_ATTR_MinimumSamplingInterval:
        if (!var)
            break;
        d = 0;
        put_scalar(dv, EP_UA_T(Double), &d, a);
        return;
    case EP_UA_ATTR_Historizing:
        if (!var)
            break;
        b = false;
        put_scalar(dv, EP_UA_T(Boolean), &b, a);
        return;
    case EP_UA_ATTR_Executable:
    case EP_UA_ATTR_UserExecutable:
        if (n->node_class != EP_UA_NODE_CLASS_METHOD)
            break;
        b = true;
        put_scalar(dv, EP_UA_T(Boolean), &b, a);
        return;
    case EP_UA_ATTR_ContainsNoLoops:
        if (n->node_class != EP_UA_NODE_CLASS_VIEW)
            break;
        b = true;
        put_scalar(dv, EP_UA_T(Boolean), &b, a);
        return;
    default:
        break;
    }
    dv->mask = EP_UA_DATAVALUE_STATUS;
    dv->status = EP_UA_STATUS_BadAttributeIdInvalid;
}

void ep_ua__svc_read(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                     const ep_ua_channel_msg *m)
{
    (void)s;
    const ep_ua_read_request *req = m->body;
    ep_ua_status st = check_count(srv, req->nodes_to_read_len);
    if (st == EP_UA_STATUS_Good && (req->max_age < 0 || isnan(req->max_age)))
        st = EP_UA_STATUS_BadMaxAgeInvalid;
    if (st == EP_UA_STATUS_Good && (req->timestamps_to_return < 0 || req->timestamps_to_return > 3))
        st = EP_UA_STATUS_BadTimestampsToReturnInvalid;
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    ep_ua_read_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.results = ep_ua__alloc(m->arena, req->nodes_to_read_len, sizeof(*r.results));
    if (r.results == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadOutOfMemory);
        return;
    }
    r.results_len = req->nodes_to_read_len;
    for (size_t i = 0; i < req->nodes_to_read_len; i++) {
        const ep_ua_read_value_id *rv = &req->nodes_to_read[i];
        ep_ua_datavalue *dv = &r.results[i];
        ep_ua_node *n = ep_ua_server_find(srv, &rv->node_id);
        if (n == NULL) {
            dv->mask = EP_UA_DATAVALUE_STATUS;
            dv->status = EP_UA_STATUS_BadNodeIdUnknown;
        } else if (rv->index_range.data && rv->index_range.len) {
            dv->mask = EP_UA_DATAVALUE_STATUS;
            dv->status = EP_UA_STATUS_BadIndexRangeInvalid;
        } else if (rv->data_encoding.name.data && rv->data_encoding.name.len &&
                   !(rv->data_encoding.ns == 0 && rv->data_encoding.name.len == 14 &&
                     memcmp(rv->data_encoding.name.data, "Default Binary", 14) == 0)) {
            dv->mask = EP_UA_DATAVALUE_STATUS;
            dv->status = EP_UA_STATUS_BadDataEncodingInvalid;
        } else {
            ep_ua__read_attr(srv, n, rv->attribute_id, req->timestamps_to_return, dv, m->arena);
        }
    }
    r.diagnostic_infos = EP_UA_EMPTY;
    ep_ua__send(ch, m->request_id, EP_UA_T(ReadResponse), &r, &r.response_header);
}

/* ------------------------------------------------------------ write -- */

static ep_ua_status write_value(ep_ua_server *srv, ep_ua_node *n, const ep_ua_datavalue *dv)
{
    if (n->node_class != EP_UA_NODE_CLASS_VARIABLE)
        return EP_UA_STATUS_BadAttributeIdInvalid;
    if (!(n->access_level & EP_UA_ACCESS_WRITE))
        return EP_UA_STATUS_BadNotWritable;
    if (!(dv->mask & EP_UA_DATAVALUE_VALUE) || dv->value.type == NULL)
        return EP_UA_STATUS_BadTypeMismatch;
    const ep_ua_type *t = dv->value.type;
    if (t->type_id != n->data_type || dv->value.is_array != (n->value_rank >= 0))
        return EP_UA_STATUS_BadTypeMismatch;
    if (dv->mask & (EP_UA_DATAVALUE_SERVER_TIMESTAMP))
        return EP_UA_STATUS_BadWriteNotSupported;
    ep_err e = ep_ua_server_set_value(
        srv, n, &dv->value,
        (dv->mask & EP_UA_DATAVALUE_SOURCE_TIMESTAMP) ? dv->source_timestamp : 0);
    if (e != EP_EOK)
        return EP_UA_STATUS_BadOutOfMemory;
    if (dv->mask & EP_UA_DATAVALUE_STATUS)
        n->status = dv->status;
    return EP_UA_STATUS_Good;
}

void ep_ua__svc_write(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                      const ep_ua_channel_msg *m)
{
    const ep_ua_write_request *req = m->body;
    ep_ua_status st = check_count(srv, req->nodes_to_write_len);
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    ep_ua_write_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.results = ep_ua__alloc(m->arena, req->nodes_to_write_len, sizeof(*r.results));
    if (r.results == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadOutOfMemory);
        return;
    }
    r.results_len = req->nodes_to_write_len;
    for (size_t i = 0; i < req->nodes_to_write_len; i++) {
        const ep_ua_write_value *wv = &req->nodes_to_write[i];
        ep_ua_node *n = ep_ua_server_find(srv, &wv->node_id);
        if (n == NULL)
            r.results[i] = EP_UA_STATUS_BadNodeIdUnknown;
        else if (wv->index_range.data && wv->index_range.len)
            r.results[i] = EP_UA_STATUS_BadIndexRangeInvalid;
        else if (wv->attribute_id != EP_UA_ATTR_Value)
            r.results[i] = wv->attribute_id >= 1 && wv->attribute_id <= 27
                               ? EP_UA_STATUS_BadNotWritable
                               : EP_UA_STATUS_BadAttributeIdInvalid;
        else
            r.results[i] = write_value(srv, n, &wv->value);
        if (r.results[i] == EP_UA_STATUS_Good)
            EP_LOG_DEBUG(UA_LOG, "session %u wrote a value", s->num);
    }
    r.diagnostic_infos = EP_UA_EMPTY;
    ep_ua__send(ch, m->request_id, EP_UA_T(WriteResponse), &r, &r.response_header);
}

/* ------------------------------------------------------------ call -- */

static bool has_component(const ep_ua_node *obj, const ep_ua_node *method)
{
    for (uint32_t i = 0; i < obj->nrefs; i++)
        if (!obj->refs[i].inverse && obj->refs[i].target == method &&
            ep_ua__ref_is_subtype(obj->refs[i].type, EP_UA_NS0_HasComponent))
            return true;
    return false;
}

void ep_ua__svc_call(ep_ua_server *srv, ua_session *s, ep_ua_channel *ch,
                     const ep_ua_channel_msg *m)
{
    (void)s;
    const ep_ua_call_request *req = m->body;
    ep_ua_status st = check_count(srv, req->methods_to_call_len);
    if (st != EP_UA_STATUS_Good) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, st);
        return;
    }
    ep_ua_call_response r;
    memset(&r, 0, sizeof(r));
    ep_ua__resp_header(&r.response_header, m->request_handle, EP_UA_STATUS_Good);
    r.results = ep_ua__alloc(m->arena, req->methods_to_call_len, sizeof(*r.results));
    if (r.results == NULL) {
        ep_ua__send_fault(ch, m->request_id, m->request_handle, EP_UA_STATUS_BadOutOfMemory);
        return;
    }
    r.results_len = req->methods_to_call_len;
    for (size_t i = 0; i < req->methods_to_call_len; i++) {
        const ep_ua_call_method_request *c = &req->methods_to_call[i];
        ep_ua_call_method_result *res = &r.results[i];
        res->input_argument_results = EP_UA_EMPTY;
        res->input_argument_diagnostic_infos = EP_UA_EMPTY;
        res->output_arguments = EP_UA_EMPTY;
        ep_ua_node *obj = ep_ua_server_find(srv, &c->object_id);
        ep_ua_node *meth = ep_ua_server_find(srv, &c->method_id);
        if (obj == NULL) {
            res->status_code = EP_UA_STATUS_BadNodeIdUnknown;
            continue;
        }
        if (meth == NULL || meth->node_class != EP_UA_NODE_CLASS_METHOD || meth->fn == NULL) {
            res->status_code = EP_UA_STATUS_BadMethodInvalid;
            continue;
        }
        if (!has_component(obj, meth)) {
            res->status_code = EP_UA_STATUS_BadMethodInvalid;
            continue;
        }
        if (c->input_arguments_len < meth->nargs) {
            res->status_code = EP_UA_STATUS_BadArgumentsMissing;
            continue;
        }
        if (c->input_arguments_len > meth->nargs) {
            res->status_code = EP_UA_STATUS_BadTooManyArguments;
            continue;
        }
        bool bad = false;
        if (meth->nargs) {
            res->input_argument_results = ep_ua__alloc(m->arena, meth->nargs, sizeof(ep_ua_status));
            if (res->input_argument_results == NULL) {
                res->status_code = EP_UA_STATUS_BadOutOfMemory;
                continue;
            }
            res->input_argument_results_len = meth->nargs;
            for (size_t k = 0; k < meth->nargs; k++) {
                const ep_ua_variant *v = &c->input_arguments[k];
                if (meth->arg_types[k] && meth->arg_types[k] != EP_UA_NS0_BaseDataType &&
                    (v->type == NULL || v->type->type_id != meth->arg_types[k] || v->is_array)) {
                    res->input_argument_results[k] = EP_UA_STATUS_BadTypeMismatch;
                    bad = true;
                }
            }
        }
        if (bad) {
            res->status_code = EP_UA_STATUS_BadInvalidArgument;
            continue;
        }
        res->input_argument_results_len = 0;
        res->input_argument_results = EP_UA_EMPTY;
        size_t nout = 0;
        ep_ua_variant *out = NULL;
        res->status_code = meth->fn(srv, meth->fn_ud, &obj->id, c->input_arguments_len,
                                    c->input_arguments, &nout, &out, m->arena);
        if (out && nout) {
            res->output_arguments = out;
            res->output_arguments_len = nout;
        }
    }
    r.diagnostic_infos = EP_UA_EMPTY;
    ep_ua__send(ch, m->request_id, EP_UA_T(CallResponse), &r, &r.response_header);
}
