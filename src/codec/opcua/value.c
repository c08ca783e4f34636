/*
 * value.c - type lookup and generic deep equal / copy / clear.
 *
 * Like binary.c these walk the descriptor tables, dispatching on the kind.
 * Copies are built into zeroed storage one owned pointer at a time, so a
 * copy that fails half-way holds only memory it owns and ep_ua_clear can
 * release it. The empty-array sentinel is never freed.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/opcua/gen/types.h"

/* Recursion bound of equal/copy/clear. Each counts one level per value on
 * the path, which is at most twice the decoder's count (a DataValue is one
 * level here, none there), so any decoded value fits. */
#define VALUE_MAX_DEPTH (2u * EP_UA_MAX_DEPTH_CAP + 8u)

_Alignas(max_align_t) uint8_t ep_ua_empty_sentinel[16];

/* ---- lookup ---- */

static const ep_ua_type *find_entry(const ep_ua_type_entry *tab, size_t n, uint32_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tab[mid].id == id)
            return &ep_ua_types[tab[mid].type];
        if (tab[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const ep_ua_type *ep_ua_type_by_encoding_id(uint32_t id)
{
    return find_entry(ep_ua__types_by_encoding_id, ep_ua__types_by_encoding_id_len, id);
}

const ep_ua_type *ep_ua_type_by_type_id(uint32_t id)
{
    return find_entry(ep_ua__types_by_type_id, ep_ua__types_by_type_id_len, id);
}

const ep_ua_type *ep_ua_type_by_name(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < EP_UA_TYPE_COUNT; i++)
        if (strcmp(ep_ua_types[i].name, name) == 0)
            return &ep_ua_types[i];
    return NULL;
}

const ep_ua_type *ep_ua_type_builtin(unsigned builtin_id)
{
    if (builtin_id < 1 || builtin_id > EP_UA_BUILTIN_COUNT)
        return NULL;
    return &ep_ua_types[builtin_id - 1];
}

/* ---- helpers ---- */

static inline const void *cat(const void *base, size_t off) { return (const uint8_t *)base + off; }

static inline void *at(void *base, size_t off) { return (uint8_t *)base + off; }

static inline bool owned(const void *p) { return p != NULL && p != EP_UA_EMPTY; }

/* ---- equal ---- */

static bool eq(const void *a, const void *b, const ep_ua_type *t, unsigned depth);

static bool str_eq(const ep_ua_string *a, const ep_ua_string *b)
{
    if ((a->data == NULL) != (b->data == NULL) || a->len != b->len)
        return false;
    return a->len == 0 || memcmp(a->data, b->data, a->len) == 0;
}

static bool guid_eq(const ep_ua_guid *a, const ep_ua_guid *b)
{
    return a->data1 == b->data1 && a->data2 == b->data2 && a->data3 == b->data3 &&
           memcmp(a->data4, b->data4, 8) == 0;
}

static bool nodeid_eq(const ep_ua_nodeid *a, const ep_ua_nodeid *b)
{
    if (a->ns != b->ns || a->id_type != b->id_type)
        return false;
    switch (a->id_type) {
    case EP_UA_NODEID_NUMERIC:
        return a->id.numeric == b->id.numeric;
    case EP_UA_NODEID_GUID:
        return guid_eq(&a->id.guid, &b->id.guid);
    default:
        return str_eq(&a->id.string, &b->id.string);
    }
}

static bool array_eq(const void *a, size_t alen, const void *b, size_t blen, const ep_ua_type *t,
                     unsigned depth)
{
    if ((a == NULL) != (b == NULL) || alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (!eq(cat(a, i * t->size), cat(b, i * t->size), t, depth))
            return false;
    return true;
}

static bool variant_eq(const ep_ua_variant *a, const ep_ua_variant *b, unsigned depth)
{
    if (a->type != b->type)
        return false;
    if (a->type == NULL)
        return true;
    if (a->is_array != b->is_array || a->dims_len != b->dims_len)
        return false;
    if (a->dims_len && memcmp(a->dims, b->dims, a->dims_len * 4) != 0)
        return false;
    if (!a->is_array)
        return a->data && b->data && eq(a->data, b->data, a->type, depth);
    return array_eq(a->data, a->array_len, b->data, b->array_len, a->type, depth);
}

static bool eo_eq(const ep_ua_extensionobject *a, const ep_ua_extensionobject *b, unsigned depth)
{
    if (a->encoding != b->encoding)
        return false;
    if (a->encoding == EP_UA_EXTOBJ_DECODED)
        return a->type == b->type && a->data && b->data && eq(a->data, b->data, a->type, depth);
    if (!nodeid_eq(&a->type_id, &b->type_id))
        return false;
    return a->encoding == EP_UA_EXTOBJ_EMPTY || str_eq(&a->body, &b->body);
}

static bool dv_eq(const ep_ua_datavalue *a, const ep_ua_datavalue *b, unsigned depth)
{
    uint8_t m = a->mask & 0x3F;
    if (m != (b->mask & 0x3F))
        return false;
    if ((m & EP_UA_DATAVALUE_VALUE) && !variant_eq(&a->value, &b->value, depth))
        return false;
    if ((m & EP_UA_DATAVALUE_STATUS) && a->status != b->status)
        return false;
    if ((m & EP_UA_DATAVALUE_SOURCE_TIMESTAMP) && a->source_timestamp != b->source_timestamp)
        return false;
    if ((m & EP_UA_DATAVALUE_SOURCE_PICOSECONDS) && a->source_picoseconds != b->source_picoseconds)
        return false;
    if ((m & EP_UA_DATAVALUE_SERVER_TIMESTAMP) && a->server_timestamp != b->server_timestamp)
        return false;
    if ((m & EP_UA_DATAVALUE_SERVER_PICOSECONDS) && a->server_picoseconds != b->server_picoseconds)
        return false;
    return true;
}

static bool di_eq(const ep_ua_diagnosticinfo *a, const ep_ua_diagnosticinfo *b, unsigned depth)
{
    uint8_t m = a->mask & 0x7F;
    if (m != (b->mask & 0x7F))
        return false;
    if ((m & EP_UA_DIAG_SYMBOLIC_ID) && a->symbolic_id != b->symbolic_id)
        return false;
    if ((m & EP_UA_DIAG_NAMESPACE_URI) && a->namespace_uri != b->namespace_uri)
        return false;
    if ((m & EP_UA_DIAG_LOCALE) && a->locale != b->locale)
        return false;
    if ((m & EP_UA_DIAG_LOCALIZED_TEXT) && a->localized_text != b->localized_text)
        return false;
    if ((m & EP_UA_DIAG_ADDITIONAL_INFO) && !str_eq(&a->additional_info, &b->additional_info))
        return false;
    if ((m & EP_UA_DIAG_INNER_STATUS) && a->inner_status != b->inner_status)
        return false;
    if (m & EP_UA_DIAG_INNER_DIAG)
        return depth < VALUE_MAX_DEPTH && a->inner && b->inner &&
               di_eq(a->inner, b->inner, depth + 1);
    return true;
}

static bool eq(const void *a, const void *b, const ep_ua_type *t, unsigned depth)
{
    if (++depth > VALUE_MAX_DEPTH)
        return false;
    switch (t->kind) {
    case EP_UA_KIND_BOOLEAN:
        return *(const bool *)a == *(const bool *)b;
    case EP_UA_KIND_STRING:
    case EP_UA_KIND_BYTESTRING:
    case EP_UA_KIND_XMLELEMENT:
        return str_eq(a, b);
    case EP_UA_KIND_GUID:
        return guid_eq(a, b);
    case EP_UA_KIND_NODEID:
        return nodeid_eq(a, b);
    case EP_UA_KIND_EXPANDEDNODEID: {
        const ep_ua_expandednodeid *x = a, *y = b;
        return nodeid_eq(&x->node_id, &y->node_id) &&
               str_eq(&x->namespace_uri, &y->namespace_uri) && x->server_index == y->server_index;
    }
    case EP_UA_KIND_QUALIFIEDNAME: {
        const ep_ua_qualifiedname *x = a, *y = b;
        return x->ns == y->ns && str_eq(&x->name, &y->name);
    }
    case EP_UA_KIND_LOCALIZEDTEXT: {
        const ep_ua_localizedtext *x = a, *y = b;
        return str_eq(&x->locale, &y->locale) && str_eq(&x->text, &y->text);
    }
    case EP_UA_KIND_EXTENSIONOBJECT:
        return eo_eq(a, b, depth);
    case EP_UA_KIND_DATAVALUE:
        return dv_eq(a, b, depth);
    case EP_UA_KIND_VARIANT:
        return variant_eq(a, b, depth);
    case EP_UA_KIND_DIAGNOSTICINFO:
        return di_eq(a, b, depth);
    case EP_UA_KIND_STRUCT:
        for (uint16_t i = 0; i < t->nfields; i++) {
            const ep_ua_field *f = &t->fields[i];
            const ep_ua_type *ft = &ep_ua_types[f->type];
            if (f->is_array) {
                const void *pa, *pb;
                size_t la, lb;
                memcpy(&pa, cat(a, f->offset), sizeof(pa));
                memcpy(&pb, cat(b, f->offset), sizeof(pb));
                memcpy(&la, cat(a, f->len_offset), sizeof(la));
                memcpy(&lb, cat(b, f->len_offset), sizeof(lb));
                if (!array_eq(pa, la, pb, lb, ft, depth))
                    return false;
            } else if (!eq(cat(a, f->offset), cat(b, f->offset), ft, depth)) {
                return false;
            }
        }
        return true;
    default:
        /* Fixed-size numbers and enums: bitwise. */
        return memcmp(a, b, t->size) == 0;
    }
}

bool ep_ua_equal(const void *a, const void *b, const ep_ua_type *t)
{
    if (a == NULL || b == NULL || t == NULL)
        return false;
    return eq(a, b, t, 0);
}

/* ---- clear ---- */

static void clr(void *v, const ep_ua_type *t, unsigned depth);

static void str_clr(ep_ua_string *s)
{
    if (owned(s->data))
        free(s->data);
    s->data = NULL;
    s->len = 0;
}

static void nodeid_clr(ep_ua_nodeid *n)
{
    if (n->id_type == EP_UA_NODEID_STRING || n->id_type == EP_UA_NODEID_OPAQUE)
        str_clr(&n->id.string);
}

static void array_clr(void *data, size_t len, const ep_ua_type *t, unsigned depth)
{
    if (!owned(data))
        return;
    for (size_t i = 0; i < len; i++)
        clr(at(data, i * t->size), t, depth);
    free(data);
}

/* Same level as its holder, like variant_eq and variant_cp. */
static void variant_clr(ep_ua_variant *x, unsigned depth)
{
    if (x->type && x->is_array) {
        array_clr(x->data, x->array_len, x->type, depth);
    } else if (x->type && owned(x->data)) {
        clr(x->data, x->type, depth);
        free(x->data);
    }
    if (owned(x->dims))
        free(x->dims);
    memset(x, 0, sizeof(*x));
}

static void clr(void *v, const ep_ua_type *t, unsigned depth)
{
    if (++depth > VALUE_MAX_DEPTH)
        return; /* deeper values cannot have been built by ep_ua_copy */
    switch (t->kind) {
    case EP_UA_KIND_STRING:
    case EP_UA_KIND_BYTESTRING:
    case EP_UA_KIND_XMLELEMENT:
        str_clr(v);
        break;
    case EP_UA_KIND_NODEID:
        nodeid_clr(v);
        break;
    case EP_UA_KIND_EXPANDEDNODEID: {
        ep_ua_expandednodeid *x = v;
        nodeid_clr(&x->node_id);
        str_clr(&x->namespace_uri);
        break;
    }
    case EP_UA_KIND_QUALIFIEDNAME:
        str_clr(&((ep_ua_qualifiedname *)v)->name);
        break;
    case EP_UA_KIND_LOCALIZEDTEXT:
        str_clr(&((ep_ua_localizedtext *)v)->locale);
        str_clr(&((ep_ua_localizedtext *)v)->text);
        break;
    case EP_UA_KIND_EXTENSIONOBJECT: {
        ep_ua_extensionobject *x = v;
        nodeid_clr(&x->type_id);
        str_clr(&x->body);
        if (x->type && owned(x->data)) {
            clr(x->data, x->type, depth);
            free(x->data);
        }
        break;
    }
    case EP_UA_KIND_DATAVALUE:
        variant_clr(&((ep_ua_datavalue *)v)->value, depth);
        break;
    case EP_UA_KIND_VARIANT:
        variant_clr(v, depth);
        break;
    case EP_UA_KIND_DIAGNOSTICINFO: {
        ep_ua_diagnosticinfo *x = v;
        str_clr(&x->additional_info);
        if (x->inner) {
            clr(x->inner, t, depth);
            free(x->inner);
        }
        break;
    }
    case EP_UA_KIND_STRUCT:
        for (uint16_t i = 0; i < t->nfields; i++) {
            const ep_ua_field *f = &t->fields[i];
            const ep_ua_type *ft = &ep_ua_types[f->type];
            if (f->is_array) {
                void *data;
                size_t len;
                memcpy(&data, at(v, f->offset), sizeof(data));
                memcpy(&len, at(v, f->len_offset), sizeof(len));
                array_clr(data, len, ft, depth);
            } else {
                clr(at(v, f->offset), ft, depth);
            }
        }
        break;
    default:
        break;
    }
    memset(v, 0, t->size);
}

void ep_ua_clear(void *v, const ep_ua_type *t)
{
    if (v == NULL || t == NULL)
        return;
    clr(v, t, 0);
}

/* ---- copy ---- */

static ep_err cp(const void *src, void *dst, const ep_ua_type *t, unsigned depth);

static ep_err str_cp(const ep_ua_string *s, ep_ua_string *d)
{
    if (s->data == NULL)
        return s->len ? EP_EINVAL : EP_EOK;
    if (s->len == 0) {
        d->data = EP_UA_EMPTY;
        return EP_EOK;
    }
    uint8_t *m = malloc(s->len);
    if (m == NULL)
        return EP_ENOMEM;
    memcpy(m, s->data, s->len);
    d->data = m;
    d->len = s->len;
    return EP_EOK;
}

static ep_err nodeid_cp(const ep_ua_nodeid *s, ep_ua_nodeid *d)
{
    d->ns = s->ns;
    d->id_type = s->id_type;
    switch (s->id_type) {
    case EP_UA_NODEID_NUMERIC:
        d->id.numeric = s->id.numeric;
        return EP_EOK;
    case EP_UA_NODEID_GUID:
        d->id.guid = s->id.guid;
        return EP_EOK;
    case EP_UA_NODEID_STRING:
    case EP_UA_NODEID_OPAQUE:
        return str_cp(&s->id.string, &d->id.string);
    default:
        return EP_EINVAL;
    }
}

/* Allocates and copies a single value; *out set only on success. */
static ep_err new_cp(const void *src, const ep_ua_type *t, void **out, unsigned depth)
{
    void *m = calloc(1, t->size);
    if (m == NULL)
        return EP_ENOMEM;
    ep_err err = cp(src, m, t, depth);
    if (err) {
        clr(m, t, 0);
        free(m);
        return err;
    }
    *out = m;
    return EP_EOK;
}

/* Copies an array into *out (NULL, EP_UA_EMPTY or owned memory). */
static ep_err array_cp(const void *src, size_t len, const ep_ua_type *t, void **out, unsigned depth)
{
    if (src == NULL)
        return len ? EP_EINVAL : EP_EOK;
    if (len == 0) {
        *out = EP_UA_EMPTY;
        return EP_EOK;
    }
    void *m = calloc(len, t->size);
    if (m == NULL)
        return EP_ENOMEM;
    ep_err err = EP_EOK;
    size_t i;
    for (i = 0; err == EP_EOK && i < len; i++)
        err = cp(cat(src, i * t->size), at(m, i * t->size), t, depth);
    if (err) {
        /* Elements 0..i-1 hold only owned memory (the failed one
         * partially): release them all. */
        for (size_t j = 0; j < i; j++)
            clr(at(m, j * t->size), t, 0);
        free(m);
        return err;
    }
    *out = m;
    return EP_EOK;
}

static ep_err variant_cp(const ep_ua_variant *s, ep_ua_variant *d, unsigned depth)
{
    if (s->type == NULL)
        return EP_EOK;
    ep_err err;
    if (s->dims_len) {
        if (s->dims == NULL)
            return EP_EINVAL;
        uint32_t *dims = malloc(s->dims_len * sizeof(uint32_t));
        if (dims == NULL)
            return EP_ENOMEM;
        memcpy(dims, s->dims, s->dims_len * sizeof(uint32_t));
        d->dims = dims;
        d->dims_len = s->dims_len;
    }
    d->type = s->type;
    d->is_array = s->is_array;
    if (s->is_array) {
        err = array_cp(s->data, s->array_len, s->type, &d->data, depth);
        if (err == EP_EOK)
            d->array_len = s->array_len;
        return err;
    }
    if (s->data == NULL)
        return EP_EINVAL;
    return new_cp(s->data, s->type, &d->data, depth);
}

static ep_err cp(const void *src, void *dst, const ep_ua_type *t, unsigned depth)
{
    if (++depth > VALUE_MAX_DEPTH)
        return EP_EINVAL;
    ep_err err = EP_EOK;
    switch (t->kind) {
    case EP_UA_KIND_STRING:
    case EP_UA_KIND_BYTESTRING:
    case EP_UA_KIND_XMLELEMENT:
        return str_cp(src, dst);
    case EP_UA_KIND_NODEID:
        return nodeid_cp(src, dst);
    case EP_UA_KIND_EXPANDEDNODEID: {
        const ep_ua_expandednodeid *s = src;
        ep_ua_expandednodeid *d = dst;
        d->server_index = s->server_index;
        err = nodeid_cp(&s->node_id, &d->node_id);
        return err ? err : str_cp(&s->namespace_uri, &d->namespace_uri);
    }
    case EP_UA_KIND_QUALIFIEDNAME: {
        const ep_ua_qualifiedname *s = src;
        ep_ua_qualifiedname *d = dst;
        d->ns = s->ns;
        return str_cp(&s->name, &d->name);
    }
    case EP_UA_KIND_LOCALIZEDTEXT: {
        const ep_ua_localizedtext *s = src;
        ep_ua_localizedtext *d = dst;
        err = str_cp(&s->locale, &d->locale);
        return err ? err : str_cp(&s->text, &d->text);
    }
    case EP_UA_KIND_EXTENSIONOBJECT: {
        const ep_ua_extensionobject *s = src;
        ep_ua_extensionobject *d = dst;
        d->encoding = s->encoding;
        err = nodeid_cp(&s->type_id, &d->type_id);
        if (err == EP_EOK)
            err = str_cp(&s->body, &d->body);
        if (err == EP_EOK && s->encoding == EP_UA_EXTOBJ_DECODED) {
            if (s->type == NULL || s->data == NULL)
                return EP_EINVAL;
            d->type = s->type;
            err = new_cp(s->data, s->type, &d->data, depth);
        }
        return err;
    }
    case EP_UA_KIND_DATAVALUE: {
        const ep_ua_datavalue *s = src;
        ep_ua_datavalue *d = dst;
        d->mask = s->mask;
        d->status = s->status;
        d->source_timestamp = s->source_timestamp;
        d->source_picoseconds = s->source_picoseconds;
        d->server_timestamp = s->server_timestamp;
        d->server_picoseconds = s->server_picoseconds;
        return variant_cp(&s->value, &d->value, depth);
    }
    case EP_UA_KIND_VARIANT:
        return variant_cp(src, dst, depth);
    case EP_UA_KIND_DIAGNOSTICINFO: {
        const ep_ua_diagnosticinfo *s = src;
        ep_ua_diagnosticinfo *d = dst;
        d->mask = s->mask;
        d->symbolic_id = s->symbolic_id;
        d->namespace_uri = s->namespace_uri;
        d->localized_text = s->localized_text;
        d->locale = s->locale;
        d->inner_status = s->inner_status;
        err = str_cp(&s->additional_info, &d->additional_info);
        if (err == EP_EOK && s->inner) {
            void *inner = NULL;
            err = new_cp(s->inner, t, &inner, depth);
            d->inner = inner;
        }
        return err;
    }
    case EP_UA_KIND_STRUCT:
        for (uint16_t i = 0; err == EP_EOK && i < t->nfields; i++) {
            const ep_ua_field *f = &t->fields[i];
            const ep_ua_type *ft = &ep_ua_types[f->type];
            if (f->is_array) {
                const void *sp;
                void *dp = NULL;
                size_t len;
                memcpy(&sp, cat(src, f->offset), sizeof(sp));
                memcpy(&len, cat(src, f->len_offset), sizeof(len));
                err = array_cp(sp, len, ft, &dp, depth);
                if (err == EP_EOK) {
                    memcpy(at(dst, f->offset), &dp, sizeof(dp));
                    if (owned(dp))
                        memcpy(at(dst, f->len_offset), &len, sizeof(len));
                }
            } else {
                err = cp(cat(src, f->offset), at(dst, f->offset), ft, depth);
            }
        }
        return err;
    default:
        if (t->kind == 0 || t->kind >= EP_UA_KIND_COUNT)
            return EP_EINVAL;
        memcpy(dst, src, t->size);
        return EP_EOK;
    }
}

ep_err ep_ua_copy(const void *src, void *dst, const ep_ua_type *t)
{
    if (src == NULL || dst == NULL || t == NULL)
        return EP_EINVAL;
    memset(dst, 0, t->size);
    ep_err err = cp(src, dst, t, 0);
    if (err)
        clr(dst, t, 0);
    return err;
}
