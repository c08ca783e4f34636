/*
 * binary.c - OPC UA Binary encoder and decoder (Part 6, 5.2).
 *
 * Design (after open62541's ua_types_encoding_binary.c): two jump tables,
 * indexed by ep_ua_kind, hold one encoder and one decoder per built-in type
 * plus the generic enum and structure coders. The structure coder walks the
 * generated field table and dispatches on each field's kind, so every
 * generated type - service messages included - goes through the same few
 * hundred lines.
 *
 * Decoder rules:
 *  - The output is zeroed first and arena memory comes zeroed, so coders
 *    only write what is present on the wire.
 *  - Lengths are validated before allocating: a string must fit in the
 *    remaining bytes and under max_string_len; an array of N elements must
 *    fit in the remaining bytes at the type's minimum encoded size
 *    (min_wire, from the generator) and under max_array_len.
 *  - Every recursive path (structure, Variant, ExtensionObject,
 *    DiagnosticInfo) goes through enter()/leave(), which enforce max_depth.
 *  - ExtensionObject bodies are decoded with the input bound narrowed to the
 *    body, so a known type can never read past its declared length.
 *  - On failure ep_ua_decode zeroes the output and rewinds the arena, so a
 *    failed decode costs nothing and leaves no dangling pointers.
 *
 * The encoder appends to an ep_buf and patches ExtensionObject body lengths
 * afterwards (offsets are relative to the buffer head, which survives the
 * compaction ep_buf_reserve may do).
 */
#include "codec/opcua/binary.h"

#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EP_UA_LITTLE_ENDIAN 1
#else
#define EP_UA_LITTLE_ENDIAN 0
#endif

/* Variant encoding mask bits. */
#define VARIANT_ARRAY 0x80u
#define VARIANT_DIMS 0x40u
#define VARIANT_TYPE 0x3Fu

/* NodeId encoding byte flags (ExpandedNodeId only). */
#define NODEID_URI_FLAG 0x80u
#define NODEID_SERVER_FLAG 0x40u

/* ---- little-endian primitives ---- */

static inline void st16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

static inline void st32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

static inline void st64(uint8_t *b, uint64_t v)
{
    st32(b, (uint32_t)v);
    st32(b + 4, (uint32_t)(v >> 32));
}

static inline uint16_t ld16(const uint8_t *b) { return (uint16_t)(b[0] | (b[1] << 8)); }

static inline uint32_t ld32(const uint8_t *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

static inline uint64_t ld64(const uint8_t *b)
{
    return (uint64_t)ld32(b) | ((uint64_t)ld32(b + 4) << 32);
}

/* Kinds whose C representation is the wire representation on a
 * little-endian host, so arrays of them are copied in one go. */
static bool is_flat(uint8_t kind)
{
    switch (kind) {
    case EP_UA_KIND_SBYTE:
    case EP_UA_KIND_BYTE:
    case EP_UA_KIND_INT16:
    case EP_UA_KIND_UINT16:
    case EP_UA_KIND_INT32:
    case EP_UA_KIND_UINT32:
    case EP_UA_KIND_INT64:
    case EP_UA_KIND_UINT64:
    case EP_UA_KIND_FLOAT:
    case EP_UA_KIND_DOUBLE:
    case EP_UA_KIND_DATETIME:
    case EP_UA_KIND_STATUSCODE:
    case EP_UA_KIND_ENUM:
        return EP_UA_LITTLE_ENDIAN;
    default:
        return false;
    }
}

/* Wire size of the fixed-size kinds; 0 for variable-size ones. */
static size_t fixed_size(uint8_t kind)
{
    switch (kind) {
    case EP_UA_KIND_BOOLEAN:
    case EP_UA_KIND_SBYTE:
    case EP_UA_KIND_BYTE:
        return 1;
    case EP_UA_KIND_INT16:
    case EP_UA_KIND_UINT16:
        return 2;
    case EP_UA_KIND_INT32:
    case EP_UA_KIND_UINT32:
    case EP_UA_KIND_FLOAT:
    case EP_UA_KIND_STATUSCODE:
    case EP_UA_KIND_ENUM:
        return 4;
    case EP_UA_KIND_INT64:
    case EP_UA_KIND_UINT64:
    case EP_UA_KIND_DOUBLE:
    case EP_UA_KIND_DATETIME:
        return 8;
    default:
        return 0;
    }
}

/* True when the matrix dimensions describe exactly len elements: the
 * product, which is 0 as soon as one dimension is 0 (Part 6: no values are
 * encoded then), computed without overflow. */
static bool dims_match(const uint32_t *dims, size_t n, size_t len)
{
    uint64_t prod = 1;
    for (size_t i = 0; i < n; i++)
        if (dims[i] == 0)
            return len == 0;
    for (size_t i = 0; i < n; i++) {
        prod *= dims[i];
        if (prod > INT32_MAX)
            return false;
    }
    return prod == len;
}

static inline void *ptr_at(void *base, uint32_t off) { return (uint8_t *)base + off; }

static inline const void *cptr_at(const void *base, uint32_t off)
{
    return (const uint8_t *)base + off;
}

/* ======================================================================
 * Encoder
 * ====================================================================== */

typedef struct enc {
    ep_buf *b;
    unsigned depth;
} enc;

typedef ep_err (*enc_fn)(enc *e, const void *v, const ep_ua_type *t);
static const enc_fn enc_table[EP_UA_KIND_COUNT];

static inline ep_err put(enc *e, const void *p, size_t n) { return ep_buf_append(e->b, p, n); }

static inline ep_err put_u8(enc *e, uint8_t v) { return put(e, &v, 1); }

static inline ep_err put_u16(enc *e, uint16_t v)
{
    uint8_t x[2];
    st16(x, v);
    return put(e, x, 2);
}

static inline ep_err put_u32(enc *e, uint32_t v)
{
    uint8_t x[4];
    st32(x, v);
    return put(e, x, 4);
}

static inline ep_err put_u64(enc *e, uint64_t v)
{
    uint8_t x[8];
    st64(x, v);
    return put(e, x, 8);
}

static inline ep_err put_i32(enc *e, int32_t v) { return put_u32(e, (uint32_t)v); }

static ep_err enc_enter(enc *e)
{
    /* Decoded values are at most EP_UA_MAX_DEPTH_CAP deep, so everything
     * the decoder accepts can be encoded again; deeper (or cyclic) values
     * built by hand are refused before the stack runs out. */
    if (e->depth >= EP_UA_MAX_DEPTH_CAP)
        return EP_EINVAL;
    e->depth++;
    return EP_EOK;
}

static ep_err enc_value(enc *e, const void *v, const ep_ua_type *t)
{
    if (t->kind == 0 || t->kind >= EP_UA_KIND_COUNT)
        return EP_EINVAL;
    return enc_table[t->kind](e, v, t);
}

static ep_err enc_boolean(enc *e, const void *v, const ep_ua_type *t)
{
    return put_u8(e, *(const bool *)v ? 1 : 0);
}

static ep_err enc_fixed(enc *e, const void *v, const ep_ua_type *t)
{
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    switch (fixed_size(t->kind)) {
    case 1:
        return put(e, v, 1);
    case 2:
        memcpy(&u16, v, 2);
        return put_u16(e, u16);
    case 4:
        memcpy(&u32, v, 4);
        return put_u32(e, u32);
    case 8:
        memcpy(&u64, v, 8);
        return put_u64(e, u64);
    default:
        return EP_EINVAL;
    }
}

static ep_err enc_string_raw(enc *e, const ep_ua_string *s)
{
    if (s->data == NULL)
        return s->len ? EP_EINVAL : put_i32(e, -1);
    if (s->len > INT32_MAX)
        return EP_EINVAL;
    ep_err err = put_u32(e, (uint32_t)s->len);
    if (err == EP_EOK && s->len)
        err = put(e, s->data, s->len);
    return err;
}

static ep_err enc_string(enc *e, const void *v, const ep_ua_type *t)
{
    return enc_string_raw(e, v);
}

static ep_err enc_guid(enc *e, const void *v, const ep_ua_type *t)
{
    const ep_ua_guid *g = v;
    uint8_t x[16];
    st32(x, g->data1);
    st16(x + 4, g->data2);
    st16(x + 6, g->data3);
    memcpy(x + 8, g->data4, 8);
    return put(e, x, 16);
}

static ep_err enc_nodeid_flags(enc *e, const ep_ua_nodeid *n, uint8_t flags)
{
    uint8_t x[19];
    ep_err err;
    switch (n->id_type) {
    case EP_UA_NODEID_NUMERIC:
        if (n->ns == 0 && n->id.numeric <= 0xFF) {
            x[0] = flags;
            x[1] = (uint8_t)n->id.numeric;
            return put(e, x, 2);
        }
        if (n->ns <= 0xFF && n->id.numeric <= 0xFFFF) {
            x[0] = flags | 0x01;
            x[1] = (uint8_t)n->ns;
            st16(x + 2, (uint16_t)n->id.numeric);
            return put(e, x, 4);
        }
        x[0] = flags | 0x02;
        st16(x + 1, n->ns);
        st32(x + 3, n->id.numeric);
        return put(e, x, 7);
    case EP_UA_NODEID_STRING:
    case EP_UA_NODEID_OPAQUE:
        x[0] = flags | (n->id_type == EP_UA_NODEID_STRING ? 0x03 : 0x05);
        st16(x + 1, n->ns);
        err = put(e, x, 3);
        return err ? err : enc_string_raw(e, &n->id.string);
    case EP_UA_NODEID_GUID:
        x[0] = flags | 0x04;
        st16(x + 1, n->ns);
        st32(x + 3, n->id.guid.data1);
        st16(x + 7, n->id.guid.data2);
        st16(x + 9, n->id.guid.data3);
        memcpy(x + 11, n->id.guid.data4, 8);
        return put(e, x, 19);
    default:
        return EP_EINVAL;
    }
}

static ep_err enc_nodeid(enc *e, const void *v, const ep_ua_type *t)
{
    return enc_nodeid_flags(e, v, 0);
}

static ep_err enc_expandednodeid(enc *e, const void *v, const ep_ua_type *t)
{
    const ep_ua_expandednodeid *x = v;
    uint8_t flags =
        (x->namespace_uri.data ? NODEID_URI_FLAG : 0) | (x->server_index ? NODEID_SERVER_FLAG : 0);
    ep_err err = enc_nodeid_flags(e, &x->node_id, flags);
    if (err == EP_EOK && (flags & NODEID_URI_FLAG))
        err = enc_string_raw(e, &x->namespace_uri);
    if (err == EP_EOK && (flags & NODEID_SERVER_FLAG))
        err = put_u32(e, x->server_index);
    return err;
}

static ep_err enc_qualifiedname(enc *e, const void *v, const ep_ua_type *t)
{
    const ep_ua_qualifiedname *q = v;
    ep_err err = put_u16(e, q->ns);
    return err ? err : enc_string_raw(e, &q->name);
}

static ep_err enc_localizedtext(enc *e, const void *v, const ep_ua_type *t)
{
    const ep_ua_localizedtext *l = v;
    uint8_t mask = (l->locale.data ? 0x01 : 0) | (l->text.data ? 0x02 : 0);
    ep_err err = put_u8(e, mask);
    if (err == EP_EOK && (mask & 0x01))
        err = enc_string_raw(e, &l->locale);
    if (err == EP_EOK && (mask & 0x02))
        err = enc_string_raw(e, &l->text);
    return err;
}

/* Encodes a structure value as an ExtensionObject with a binary body. */
static ep_err enc_wrapped(enc *e, const void *v, const ep_ua_type *t)
{
    if (t->kind != EP_UA_KIND_STRUCT || t->binary_encoding_id == 0 || v == NULL)
        return EP_EINVAL;
    ep_err err = enc_enter(e);
    if (err)
        return err;
    ep_ua_nodeid id = ep_ua_nodeid_numeric(0, t->binary_encoding_id);
    err = enc_nodeid_flags(e, &id, 0);
    if (err == EP_EOK)
        err = put_u8(e, 0x01);
    size_t at = ep_buf_used(e->b);
    if (err == EP_EOK)
        err = put_u32(e, 0);
    if (err == EP_EOK)
        err = enc_value(e, v, t);
    if (err == EP_EOK) {
        size_t body = ep_buf_used(e->b) - at - 4;
        if (body > INT32_MAX)
            err = EP_EINVAL;
        else
            st32(ep_buf_head(e->b) + at, (uint32_t)body);
    }
    e->depth--;
    return err;
}

static ep_err enc_extensionobject(enc *e, const void *v, const ep_ua_type *t)
{
    const ep_ua_extensionobject *x = v;
    ep_err err;
    switch (x->encoding) {
    case EP_UA_EXTOBJ_EMPTY:
        err = enc_nodeid_flags(e, &x->type_id, 0);
        return err ? err : put_u8(e, 0x00);
    case EP_UA_EXTOBJ_BINARY:
    case EP_UA_EXTOBJ_XML:
        err = enc_nodeid_flags(e, &x->type_id, 0);
        if (err == EP_EOK)
            err = put_u8(e, x->encoding == EP_UA_EXTOBJ_BINARY ? 0x01 : 0x02);
        return err ? err : enc_string_raw(e, &x->body);
    case EP_UA_EXTOBJ_DECODED:
        if (x->type == NULL)
            return EP_EINVAL;
        return enc_wrapped(e, x->data, x->type);
    default:
        return EP_EINVAL;
    }
}

/* One element of a Variant: structures are wrapped, enums are Int32. */
static ep_err enc_variant_elem(enc *e, const void *v, const ep_ua_type *t)
{
    if (t->kind == EP_UA_KIND_STRUCT)
        return enc_wrapped(e, v, t);
    return enc_value(e, v, t);
}

static ep_err enc_variant_body(enc *e, const ep_ua_variant *va)
{
    const ep_ua_type *et = va->type;
    uint8_t id;
    if (et->kind >= 1 && et->kind <= EP_UA_BUILTIN_COUNT)
        id = et->kind;
    else if (et->kind == EP_UA_KIND_ENUM)
        id = EP_UA_KIND_INT32;
    else if (et->kind == EP_UA_KIND_STRUCT && et->binary_encoding_id)
        id = EP_UA_KIND_EXTENSIONOBJECT;
    else
        return EP_EINVAL;
    if (!va->is_array) {
        if (va->data == NULL || id == EP_UA_KIND_VARIANT || va->dims_len)
            return EP_EINVAL;
        ep_err err = put_u8(e, id);
        return err ? err : enc_variant_elem(e, va->data, et);
    }
    if (va->array_len > INT32_MAX || (va->data == NULL && va->array_len) ||
        va->dims_len > INT32_MAX || (va->dims_len && va->dims == NULL))
        return EP_EINVAL;
    if (va->dims_len) {
        for (size_t i = 0; i < va->dims_len; i++)
            if (va->dims[i] > INT32_MAX)
                return EP_EINVAL;
        if (!dims_match(va->dims, va->dims_len, va->array_len))
            return EP_EINVAL;
    }
    /* Part 6: dimensions are only sent for two or more of them. */
    bool dims = va->dims_len >= 2;
    ep_err err = put_u8(e, (uint8_t)(id | VARIANT_ARRAY | (dims ? VARIANT_DIMS : 0)));
    if (err == EP_EOK)
        err = put_i32(e, va->data ? (int32_t)va->array_len : -1);
    if (err == EP_EOK && va->array_len && is_flat(et->kind) && fixed_size(et->kind) == et->size)
        err = put(e, va->data, va->array_len * et->size);
    else
        for (size_t i = 0; err == EP_EOK && i < va->array_len; i++)
            err = enc_variant_elem(e, (const uint8_t *)va->data + i * et->size, et);
    if (err == EP_EOK && dims) {
        err = put_i32(e, (int32_t)va->dims_len);
        for (size_t i = 0; err == EP_EOK && i < va->dims_len; i++)
            err = put_u32(e, va->dims[i]);
    }
    return err;
}

static ep_err enc_variant(enc *e, const void *v, const ep_ua_type *t)
{
    const ep_ua_variant *va = v;
    if (va->type == NULL)
        return put_u8(e, 0);
    ep_err err = enc_enter(e);
    if (err)
        return err;
    err = enc_variant_body(e, va);
    e->depth--;
    return err;
}

static ep_err enc_datavalue(enc *e, const void *v, const ep_ua_type *t)
{
    const ep_ua_datavalue *dv = v;
    uint8_t m = dv->mask & 0x3F;
    ep_err err = put_u8(e, m);
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_VALUE))
        err = enc_variant(e, &dv->value, NULL);
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_STATUS))
        err = put_u32(e, dv->status);
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_SOURCE_TIMESTAMP))
        err = put_u64(e, (uint64_t)dv->source_timestamp);
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_SOURCE_PICOSECONDS))
        err = put_u16(e, dv->source_picoseconds);
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_SERVER_TIMESTAMP))
        err = put_u64(e, (uint64_t)dv->server_timestamp);
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_SERVER_PICOSECONDS))
        err = put_u16(e, dv->server_picoseconds);
    return err;
}

static ep_err enc_diagnosticinfo(enc *e, const void *v, const ep_ua_type *t)
{
    const ep_ua_diagnosticinfo *di = v;
    uint8_t m = di->mask & 0x7F;
    if ((m & EP_UA_DIAG_INNER_DIAG) && di->inner == NULL)
        return EP_EINVAL;
    ep_err err = enc_enter(e);
    if (err)
        return err;
    err = put_u8(e, m);
    if (err == EP_EOK && (m & EP_UA_DIAG_SYMBOLIC_ID))
        err = put_i32(e, di->symbolic_id);
    if (err == EP_EOK && (m & EP_UA_DIAG_NAMESPACE_URI))
        err = put_i32(e, di->namespace_uri);
    if (err == EP_EOK && (m & EP_UA_DIAG_LOCALE))
        err = put_i32(e, di->locale);
    if (err == EP_EOK && (m & EP_UA_DIAG_LOCALIZED_TEXT))
        err = put_i32(e, di->localized_text);
    if (err == EP_EOK && (m & EP_UA_DIAG_ADDITIONAL_INFO))
        err = enc_string_raw(e, &di->additional_info);
    if (err == EP_EOK && (m & EP_UA_DIAG_INNER_STATUS))
        err = put_u32(e, di->inner_status);
    if (err == EP_EOK && (m & EP_UA_DIAG_INNER_DIAG))
        err = enc_diagnosticinfo(e, di->inner, t);
    e->depth--;
    return err;
}

static ep_err enc_array(enc *e, const void *data, size_t len, const ep_ua_type *t)
{
    if (data == NULL)
        return len ? EP_EINVAL : put_i32(e, -1);
    if (len > INT32_MAX)
        return EP_EINVAL;
    ep_err err = put_u32(e, (uint32_t)len);
    if (err || len == 0)
        return err;
    if (is_flat(t->kind) && fixed_size(t->kind) == t->size)
        return put(e, data, len * t->size);
    for (size_t i = 0; err == EP_EOK && i < len; i++)
        err = enc_value(e, (const uint8_t *)data + i * t->size, t);
    return err;
}

static ep_err enc_struct(enc *e, const void *v, const ep_ua_type *t)
{
    ep_err err = enc_enter(e);
    if (err)
        return err;
    for (uint16_t i = 0; err == EP_EOK && i < t->nfields; i++) {
        const ep_ua_field *f = &t->fields[i];
        const ep_ua_type *ft = &ep_ua_types[f->type];
        if (f->is_array) {
            const void *data;
            size_t len;
            memcpy(&data, cptr_at(v, f->offset), sizeof(data));
            memcpy(&len, cptr_at(v, f->len_offset), sizeof(len));
            err = enc_array(e, data, len, ft);
        } else {
            err = enc_value(e, cptr_at(v, f->offset), ft);
        }
    }
    e->depth--;
    return err;
}

static const enc_fn enc_table[EP_UA_KIND_COUNT] = {
    [EP_UA_KIND_BOOLEAN] = enc_boolean,
    [EP_UA_KIND_SBYTE] = enc_fixed,
    [EP_UA_KIND_BYTE] = enc_fixed,
    [EP_UA_KIND_INT16] = enc_fixed,
    [EP_UA_KIND_UINT16] = enc_fixed,
    [EP_UA_KIND_INT32] = enc_fixed,
    [EP_UA_KIND_UINT32] = enc_fixed,
    [EP_UA_KIND_INT64] = enc_fixed,
    [EP_UA_KIND_UINT64] = enc_fixed,
    [EP_UA_KIND_FLOAT] = enc_fixed,
    [EP_UA_KIND_DOUBLE] = enc_fixed,
    [EP_UA_KIND_STRING] = enc_string,
    [EP_UA_KIND_DATETIME] = enc_fixed,
    [EP_UA_KIND_GUID] = enc_guid,
    [EP_UA_KIND_BYTESTRING] = enc_string,
    [EP_UA_KIND_XMLELEMENT] = enc_string,
    [EP_UA_KIND_NODEID] = enc_nodeid,
    [EP_UA_KIND_EXPANDEDNODEID] = enc_expandednodeid,
    [EP_UA_KIND_STATUSCODE] = enc_fixed,
    [EP_UA_KIND_QUALIFIEDNAME] = enc_qualifiedname,
    [EP_UA_KIND_LOCALIZEDTEXT] = enc_localizedtext,
    [EP_UA_KIND_EXTENSIONOBJECT] = enc_extensionobject,
    [EP_UA_KIND_DATAVALUE] = enc_datavalue,
    [EP_UA_KIND_VARIANT] = enc_variant,
    [EP_UA_KIND_DIAGNOSTICINFO] = enc_diagnosticinfo,
    [EP_UA_KIND_ENUM] = enc_fixed,
    [EP_UA_KIND_STRUCT] = enc_struct,
};

ep_err ep_ua_encode(const void *value, const ep_ua_type *type, ep_buf *out)
{
    if (value == NULL || type == NULL || out == NULL)
        return EP_EINVAL;
    size_t used = ep_buf_used(out);
    enc e = {out, 0};
    ep_err err = enc_value(&e, value, type);
    if (err)
        out->len = out->off + used;
    return err;
}

ep_err ep_ua_message_encode(const void *msg, const ep_ua_type *type, ep_buf *out)
{
    if (msg == NULL || type == NULL || out == NULL || type->binary_encoding_id == 0)
        return EP_EINVAL;
    size_t used = ep_buf_used(out);
    enc e = {out, 0};
    ep_ua_nodeid id = ep_ua_nodeid_numeric(0, type->binary_encoding_id);
    ep_err err = enc_nodeid_flags(&e, &id, 0);
    if (err == EP_EOK)
        err = enc_value(&e, msg, type);
    if (err)
        out->len = out->off + used;
    return err;
}

/* ======================================================================
 * Decoder
 * ====================================================================== */

typedef struct dec {
    const uint8_t *p;
    size_t end; /* current bound (narrowed inside ExtensionObject bodies) */
    size_t pos;
    ep_ua_arena *arena;
    size_t max_string;
    size_t max_array;
    unsigned max_depth;
    unsigned depth;
    ep_ua_status status;
} dec;

typedef ep_err (*dec_fn)(dec *d, void *dst, const ep_ua_type *t);
static const dec_fn dec_table[EP_UA_KIND_COUNT];

static ep_err bad(dec *d, ep_err err, ep_ua_status st)
{
    d->status = st;
    return err;
}

static ep_err malformed(dec *d) { return bad(d, EP_EMALFORMED, EP_UA_STATUS_BadDecodingError); }

static ep_err too_big(dec *d) { return bad(d, EP_ETOOBIG, EP_UA_STATUS_BadEncodingLimitsExceeded); }

static inline size_t left(const dec *d) { return d->end - d->pos; }

static ep_err take(dec *d, size_t n, const uint8_t **out)
{
    if (left(d) < n)
        return malformed(d);
    *out = d->p + d->pos;
    d->pos += n;
    return EP_EOK;
}

static ep_err get_u8(dec *d, uint8_t *v)
{
    const uint8_t *b;
    ep_err err = take(d, 1, &b);
    if (err == EP_EOK)
        *v = b[0];
    return err;
}

static ep_err get_u16(dec *d, uint16_t *v)
{
    const uint8_t *b;
    ep_err err = take(d, 2, &b);
    if (err == EP_EOK)
        *v = ld16(b);
    return err;
}

static ep_err get_u32(dec *d, uint32_t *v)
{
    const uint8_t *b;
    ep_err err = take(d, 4, &b);
    if (err == EP_EOK)
        *v = ld32(b);
    return err;
}

static ep_err get_i32(dec *d, int32_t *v)
{
    uint32_t u;
    ep_err err = get_u32(d, &u);
    if (err == EP_EOK)
        *v = (int32_t)u;
    return err;
}

static ep_err get_u64(dec *d, uint64_t *v)
{
    const uint8_t *b;
    ep_err err = take(d, 8, &b);
    if (err == EP_EOK)
        *v = ld64(b);
    return err;
}

static ep_err dec_alloc(dec *d, size_t n, void **out)
{
    ep_err err = ep_ua_arena_alloc(d->arena, n, out);
    if (err == EP_ENOMEM)
        return bad(d, err, EP_UA_STATUS_BadOutOfMemory);
    if (err)
        return too_big(d);
    return EP_EOK;
}

static ep_err dec_enter(dec *d)
{
    if (d->depth >= d->max_depth)
        return too_big(d);
    d->depth++;
    return EP_EOK;
}

static ep_err dec_value(dec *d, void *dst, const ep_ua_type *t)
{
    if (t->kind == 0 || t->kind >= EP_UA_KIND_COUNT)
        return bad(d, EP_EINVAL, EP_UA_STATUS_BadInternalError);
    return dec_table[t->kind](d, dst, t);
}

static ep_err dec_boolean(dec *d, void *dst, const ep_ua_type *t)
{
    uint8_t b;
    ep_err err = get_u8(d, &b);
    if (err == EP_EOK)
        *(bool *)dst = b != 0; /* any non-zero value is true */
    return err;
}

static ep_err dec_fixed(dec *d, void *dst, const ep_ua_type *t)
{
    size_t n = fixed_size(t->kind);
    const uint8_t *b;
    if (n == 0)
        return bad(d, EP_EINVAL, EP_UA_STATUS_BadInternalError);
    ep_err err = take(d, n, &b);
    if (err)
        return err;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    switch (n) {
    case 1:
        memcpy(dst, b, 1);
        break;
    case 2:
        u16 = ld16(b);
        memcpy(dst, &u16, 2);
        break;
    case 4:
        u32 = ld32(b);
        memcpy(dst, &u32, 4);
        break;
    default:
        u64 = ld64(b);
        memcpy(dst, &u64, 8);
        break;
    }
    return EP_EOK;
}

static ep_err dec_string_raw(dec *d, ep_ua_string *s, size_t max)
{
    int32_t len;
    ep_err err = get_i32(d, &len);
    if (err)
        return err;
    if (len == -1)
        return EP_EOK; /* null: already zeroed */
    if (len < -1 || (size_t)len > left(d))
        return malformed(d);
    if ((size_t)len > max)
        return too_big(d);
    if (len == 0) {
        s->len = 0;
        s->data = EP_UA_EMPTY;
        return EP_EOK;
    }
    void *mem;
    err = dec_alloc(d, (size_t)len, &mem);
    if (err)
        return err;
    memcpy(mem, d->p + d->pos, (size_t)len);
    d->pos += (size_t)len;
    s->len = (size_t)len;
    s->data = mem;
    return EP_EOK;
}

static ep_err dec_string(dec *d, void *dst, const ep_ua_type *t)
{
    return dec_string_raw(d, dst, d->max_string);
}

static void guid_load(ep_ua_guid *g, const uint8_t *b)
{
    g->data1 = ld32(b);
    g->data2 = ld16(b + 4);
    g->data3 = ld16(b + 6);
    memcpy(g->data4, b + 8, 8);
}

static ep_err dec_guid(dec *d, void *dst, const ep_ua_type *t)
{
    const uint8_t *b;
    ep_err err = take(d, 16, &b);
    if (err == EP_EOK)
        guid_load(dst, b);
    return err;
}

/* Decodes a NodeId whose encoding byte (flags removed) is form. */
static ep_err dec_nodeid_form(dec *d, ep_ua_nodeid *n, uint8_t form)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    const uint8_t *b;
    ep_err err;
    switch (form) {
    case 0x00:
        if ((err = get_u8(d, &u8)) != EP_EOK)
            return err;
        n->id.numeric = u8;
        return EP_EOK;
    case 0x01:
        if ((err = get_u8(d, &u8)) != EP_EOK || (err = get_u16(d, &u16)))
            return err;
        n->ns = u8;
        n->id.numeric = u16;
        return EP_EOK;
    case 0x02:
        if ((err = get_u16(d, &n->ns)) != EP_EOK || (err = get_u32(d, &u32)))
            return err;
        n->id.numeric = u32;
        return EP_EOK;
    case 0x03:
    case 0x05:
        if ((err = get_u16(d, &n->ns)) != EP_EOK)
            return err;
        n->id_type = form == 0x03 ? EP_UA_NODEID_STRING : EP_UA_NODEID_OPAQUE;
        return dec_string_raw(d, &n->id.string, d->max_string);
    case 0x04:
        if ((err = get_u16(d, &n->ns)) != EP_EOK || (err = take(d, 16, &b)))
            return err;
        n->id_type = EP_UA_NODEID_GUID;
        guid_load(&n->id.guid, b);
        return EP_EOK;
    default:
        return malformed(d);
    }
}

static ep_err dec_nodeid(dec *d, void *dst, const ep_ua_type *t)
{
    uint8_t b;
    ep_err err = get_u8(d, &b);
    if (err)
        return err;
    if (b & (NODEID_URI_FLAG | NODEID_SERVER_FLAG))
        return malformed(d); /* ExpandedNodeId flags in a NodeId */
    return dec_nodeid_form(d, dst, b);
}

static ep_err dec_expandednodeid(dec *d, void *dst, const ep_ua_type *t)
{
    ep_ua_expandednodeid *x = dst;
    uint8_t b;
    ep_err err = get_u8(d, &b);
    if (err == EP_EOK)
        err = dec_nodeid_form(d, &x->node_id, b & 0x3F);
    if (err == EP_EOK && (b & NODEID_URI_FLAG))
        err = dec_string_raw(d, &x->namespace_uri, d->max_string);
    if (err == EP_EOK && (b & NODEID_SERVER_FLAG))
        err = get_u32(d, &x->server_index);
    return err;
}

static ep_err dec_qualifiedname(dec *d, void *dst, const ep_ua_type *t)
{
    ep_ua_qualifiedname *q = dst;
    ep_err err = get_u16(d, &q->ns);
    return err ? err : dec_string_raw(d, &q->name, d->max_string);
}

static ep_err dec_localizedtext(dec *d, void *dst, const ep_ua_type *t)
{
    ep_ua_localizedtext *l = dst;
    uint8_t m;
    ep_err err = get_u8(d, &m);
    if (err == EP_EOK && (m & 0x01))
        err = dec_string_raw(d, &l->locale, d->max_string);
    if (err == EP_EOK && (m & 0x02))
        err = dec_string_raw(d, &l->text, d->max_string);
    return err;
}

static ep_err dec_struct(dec *d, void *dst, const ep_ua_type *t);

/* Decodes a binary body of a known structure, bounded to len bytes. */
static ep_err dec_body(dec *d, ep_ua_extensionobject *x, const ep_ua_type *t, size_t len)
{
    void *data;
    ep_err err = dec_enter(d);
    if (err)
        return err;
    err = dec_alloc(d, t->size, &data);
    if (err == EP_EOK) {
        size_t end = d->end, body_end = d->pos + len;
        d->end = body_end;
        err = dec_struct(d, data, t);
        d->end = end;
        /* Trailing bytes inside the declared length are skipped. */
        d->pos = body_end;
    }
    if (err == EP_EOK) {
        x->encoding = EP_UA_EXTOBJ_DECODED;
        x->type = t;
        x->data = data;
    }
    d->depth--;
    return err;
}

static ep_err dec_extensionobject(dec *d, void *dst, const ep_ua_type *t)
{
    ep_ua_extensionobject *x = dst;
    uint8_t enc_byte;
    int32_t len;
    ep_err err = dec_nodeid(d, &x->type_id, NULL);
    if (err == EP_EOK)
        err = get_u8(d, &enc_byte);
    if (err)
        return err;
    switch (enc_byte) {
    case 0x00:
        x->encoding = EP_UA_EXTOBJ_EMPTY;
        return EP_EOK;
    case 0x01:
    case 0x02:
        break;
    default:
        return malformed(d);
    }
    x->encoding = enc_byte == 0x01 ? EP_UA_EXTOBJ_BINARY : EP_UA_EXTOBJ_XML;
    size_t at = d->pos;
    if ((err = get_i32(d, &len)) != EP_EOK)
        return err;
    if (len < -1 || (len > 0 && (size_t)len > left(d)))
        return malformed(d);
    if (enc_byte == 0x01 && len >= 0 && x->type_id.ns == 0 &&
        x->type_id.id_type == EP_UA_NODEID_NUMERIC) {
        const ep_ua_type *bt = ep_ua_type_by_encoding_id(x->type_id.id.numeric);
        if (bt && bt->kind == EP_UA_KIND_STRUCT)
            return dec_body(d, x, bt, (size_t)len);
    }
    /* Unknown type or XML: keep the raw body. Bounded by the input size,
     * not by max_string_len: a body is a structure, not a string. */
    d->pos = at;
    return dec_string_raw(d, &x->body, SIZE_MAX);
}

/* Decodes an array of len elements of type t into freshly allocated
 * memory; len has been validated against the remaining bytes. */
static ep_err dec_elems(dec *d, void **out, size_t len, const ep_ua_type *t)
{
    void *mem;
    if (len > SIZE_MAX / t->size)
        return too_big(d);
    ep_err err = dec_alloc(d, len * t->size, &mem);
    if (err)
        return err;
    if (is_flat(t->kind) && fixed_size(t->kind) == t->size) {
        memcpy(mem, d->p + d->pos, len * t->size);
        d->pos += len * t->size;
    } else {
        for (size_t i = 0; err == EP_EOK && i < len; i++)
            err = dec_value(d, (uint8_t *)mem + i * t->size, t);
        if (err)
            return err;
    }
    *out = mem;
    return EP_EOK;
}

/* Reads an array length and its elements. *data stays NULL for a null
 * array and becomes EP_UA_EMPTY for an empty one. */
static ep_err dec_array(dec *d, void **data, size_t *len, const ep_ua_type *t)
{
    int32_t n;
    ep_err err = get_i32(d, &n);
    if (err)
        return err;
    if (n == -1)
        return EP_EOK;
    if (n < -1 || (size_t)n > left(d) / t->min_wire)
        return malformed(d);
    if ((size_t)n > d->max_array)
        return too_big(d);
    if (n == 0) {
        *data = EP_UA_EMPTY;
        return EP_EOK;
    }
    err = dec_elems(d, data, (size_t)n, t);
    if (err == EP_EOK)
        *len = (size_t)n;
    return err;
}

static ep_err dec_variant_body(dec *d, ep_ua_variant *va, uint8_t m)
{
    unsigned id = m & VARIANT_TYPE;
    ep_err err;
    if (id == 0 || id > 31 || ((m & VARIANT_DIMS) && !(m & VARIANT_ARRAY)))
        return malformed(d);
    /* Part 6: ids 26..31 are reserved; decoders treat them as ByteString. */
    if (id > EP_UA_BUILTIN_COUNT)
        id = EP_UA_KIND_BYTESTRING;
    const ep_ua_type *et = &ep_ua_types[id - 1];
    if (!(m & VARIANT_ARRAY)) {
        if (id == EP_UA_KIND_VARIANT)
            return malformed(d); /* no scalar Variant in a Variant */
        void *data;
        err = dec_alloc(d, et->size, &data);
        if (err == EP_EOK)
            err = dec_value(d, data, et);
        if (err)
            return err;
        va->type = et;
        va->data = data;
        return EP_EOK;
    }
    err = dec_array(d, &va->data, &va->array_len, et);
    if (err)
        return err;
    va->type = et;
    va->is_array = true;
    if (!(m & VARIANT_DIMS))
        return EP_EOK;
    int32_t nd;
    if ((err = get_i32(d, &nd)) != EP_EOK)
        return err;
    if (nd < -1 || (nd > 0 && (size_t)nd > left(d) / 4))
        return malformed(d);
    if (nd <= 0)
        return EP_EOK;
    if ((size_t)nd > d->max_array)
        return too_big(d);
    void *mem;
    err = dec_alloc(d, (size_t)nd * sizeof(uint32_t), &mem);
    if (err)
        return err;
    uint32_t *dims = mem;
    for (int32_t i = 0; i < nd; i++) {
        int32_t v;
        if ((err = get_i32(d, &v)) != EP_EOK)
            return err;
        if (v < 0)
            return malformed(d);
        dims[i] = (uint32_t)v;
    }
    if (!dims_match(dims, (size_t)nd, va->array_len))
        return malformed(d);
    /* A single dimension only repeats the array length; dropping it keeps
     * decoded values canonical (the encoder never sends one). */
    if (nd >= 2) {
        va->dims = dims;
        va->dims_len = (size_t)nd;
    }
    return EP_EOK;
}

static ep_err dec_variant(dec *d, void *dst, const ep_ua_type *t)
{
    uint8_t m;
    ep_err err = get_u8(d, &m);
    if (err || m == 0)
        return err;
    if ((err = dec_enter(d)) != EP_EOK)
        return err;
    err = dec_variant_body(d, dst, m);
    d->depth--;
    return err;
}

static ep_err dec_datavalue(dec *d, void *dst, const ep_ua_type *t)
{
    ep_ua_datavalue *dv = dst;
    uint8_t m;
    uint64_t u64;
    ep_err err = get_u8(d, &m);
    if (err)
        return err;
    dv->mask = m & 0x3F; /* reserved bits are ignored */
    if (m & EP_UA_DATAVALUE_VALUE)
        err = dec_variant(d, &dv->value, NULL);
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_STATUS))
        err = get_u32(d, &dv->status);
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_SOURCE_TIMESTAMP) &&
        (err = get_u64(d, &u64)) == EP_EOK)
        dv->source_timestamp = (ep_ua_datetime)u64;
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_SOURCE_PICOSECONDS))
        err = get_u16(d, &dv->source_picoseconds);
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_SERVER_TIMESTAMP) &&
        (err = get_u64(d, &u64)) == EP_EOK)
        dv->server_timestamp = (ep_ua_datetime)u64;
    if (err == EP_EOK && (m & EP_UA_DATAVALUE_SERVER_PICOSECONDS))
        err = get_u16(d, &dv->server_picoseconds);
    return err;
}

static ep_err dec_diagnosticinfo(dec *d, void *dst, const ep_ua_type *t)
{
    ep_ua_diagnosticinfo *di = dst;
    uint8_t m;
    ep_err err = dec_enter(d);
    if (err)
        return err;
    err = get_u8(d, &m);
    if (err == EP_EOK)
        di->mask = m & 0x7F;
    if (err == EP_EOK && (m & EP_UA_DIAG_SYMBOLIC_ID))
        err = get_i32(d, &di->symbolic_id);
    if (err == EP_EOK && (m & EP_UA_DIAG_NAMESPACE_URI))
        err = get_i32(d, &di->namespace_uri);
    if (err == EP_EOK && (m & EP_UA_DIAG_LOCALE))
        err = get_i32(d, &di->locale);
    if (err == EP_EOK && (m & EP_UA_DIAG_LOCALIZED_TEXT))
        err = get_i32(d, &di->localized_text);
    if (err == EP_EOK && (m & EP_UA_DIAG_ADDITIONAL_INFO))
        err = dec_string_raw(d, &di->additional_info, d->max_string);
    if (err == EP_EOK && (m & EP_UA_DIAG_INNER_STATUS))
        err = get_u32(d, &di->inner_status);
    if (err == EP_EOK && (m & EP_UA_DIAG_INNER_DIAG)) {
        void *inner;
        err = dec_alloc(d, sizeof(ep_ua_diagnosticinfo), &inner);
        if (err == EP_EOK)
            err = dec_diagnosticinfo(d, inner, t);
        if (err == EP_EOK)
            di->inner = inner;
    }
    d->depth--;
    return err;
}

static ep_err dec_struct(dec *d, void *dst, const ep_ua_type *t)
{
    ep_err err = dec_enter(d);
    if (err)
        return err;
    for (uint16_t i = 0; err == EP_EOK && i < t->nfields; i++) {
        const ep_ua_field *f = &t->fields[i];
        const ep_ua_type *ft = &ep_ua_types[f->type];
        if (f->is_array) {
            void *data = NULL;
            size_t len = 0;
            err = dec_array(d, &data, &len, ft);
            memcpy(ptr_at(dst, f->offset), &data, sizeof(data));
            memcpy(ptr_at(dst, f->len_offset), &len, sizeof(len));
        } else {
            err = dec_value(d, ptr_at(dst, f->offset), ft);
        }
    }
    d->depth--;
    return err;
}

static const dec_fn dec_table[EP_UA_KIND_COUNT] = {
    [EP_UA_KIND_BOOLEAN] = dec_boolean,
    [EP_UA_KIND_SBYTE] = dec_fixed,
    [EP_UA_KIND_BYTE] = dec_fixed,
    [EP_UA_KIND_INT16] = dec_fixed,
    [EP_UA_KIND_UINT16] = dec_fixed,
    [EP_UA_KIND_INT32] = dec_fixed,
    [EP_UA_KIND_UINT32] = dec_fixed,
    [EP_UA_KIND_INT64] = dec_fixed,
    [EP_UA_KIND_UINT64] = dec_fixed,
    [EP_UA_KIND_FLOAT] = dec_fixed,
    [EP_UA_KIND_DOUBLE] = dec_fixed,
    [EP_UA_KIND_STRING] = dec_string,
    [EP_UA_KIND_DATETIME] = dec_fixed,
    [EP_UA_KIND_GUID] = dec_guid,
    [EP_UA_KIND_BYTESTRING] = dec_string,
    [EP_UA_KIND_XMLELEMENT] = dec_string,
    [EP_UA_KIND_NODEID] = dec_nodeid,
    [EP_UA_KIND_EXPANDEDNODEID] = dec_expandednodeid,
    [EP_UA_KIND_STATUSCODE] = dec_fixed,
    [EP_UA_KIND_QUALIFIEDNAME] = dec_qualifiedname,
    [EP_UA_KIND_LOCALIZEDTEXT] = dec_localizedtext,
    [EP_UA_KIND_EXTENSIONOBJECT] = dec_extensionobject,
    [EP_UA_KIND_DATAVALUE] = dec_datavalue,
    [EP_UA_KIND_VARIANT] = dec_variant,
    [EP_UA_KIND_DIAGNOSTICINFO] = dec_diagnosticinfo,
    [EP_UA_KIND_ENUM] = dec_fixed,
    [EP_UA_KIND_STRUCT] = dec_struct,
};

static void dec_setup(dec *d, const uint8_t *p, size_t n, size_t pos, ep_ua_arena *arena,
                      const ep_ua_limits *lim)
{
    memset(d, 0, sizeof(*d));
    d->p = p;
    d->end = n;
    d->pos = pos;
    d->arena = arena;
    d->max_string = EP_UA_DEFAULT_MAX_STRING;
    d->max_array = EP_UA_DEFAULT_MAX_ARRAY;
    d->max_depth = EP_UA_DEFAULT_MAX_DEPTH;
    if (lim) {
        if (lim->max_string_len)
            d->max_string = lim->max_string_len;
        if (lim->max_array_len)
            d->max_array = lim->max_array_len;
        if (lim->max_depth)
            d->max_depth =
                lim->max_depth < EP_UA_MAX_DEPTH_CAP ? lim->max_depth : EP_UA_MAX_DEPTH_CAP;
    }
    d->status = EP_UA_STATUS_Good;
}

static size_t max_message(const ep_ua_limits *lim)
{
    return lim && lim->max_message_size ? lim->max_message_size : EP_UA_DEFAULT_MAX_MESSAGE;
}

static void set_status(ep_ua_status *st, ep_ua_status v)
{
    if (st)
        *st = v;
}

ep_err ep_ua_decode(const uint8_t *p, size_t n, size_t *pos, const ep_ua_type *type, void *out,
                    ep_ua_arena *arena, const ep_ua_limits *lim, ep_ua_status *st)
{
    if ((p == NULL && n) || pos == NULL || *pos > n || type == NULL || out == NULL ||
        arena == NULL || type->kind == 0 || type->kind >= EP_UA_KIND_COUNT) {
        set_status(st, EP_UA_STATUS_BadInternalError);
        return EP_EINVAL;
    }
    memset(out, 0, type->size);
    if (n - *pos > max_message(lim)) {
        set_status(st, EP_UA_STATUS_BadEncodingLimitsExceeded);
        return EP_ETOOBIG;
    }
    dec d;
    dec_setup(&d, p, n, *pos, arena, lim);
    ep_ua_arena_mark mark = ep_ua_arena_save(arena);
    ep_err err = dec_table[type->kind](&d, out, type);
    if (err) {
        memset(out, 0, type->size);
        ep_ua_arena_rewind(arena, mark);
        set_status(st, d.status);
        return err;
    }
    *pos = d.pos;
    set_status(st, EP_UA_STATUS_Good);
    return EP_EOK;
}

ep_err ep_ua_message_decode(const uint8_t *p, size_t n, size_t *pos, const ep_ua_type **type,
                            void **out, ep_ua_arena *arena, const ep_ua_limits *lim,
                            ep_ua_status *st)
{
    if (type == NULL || out == NULL || arena == NULL || pos == NULL) {
        set_status(st, EP_UA_STATUS_BadInternalError);
        return EP_EINVAL;
    }
    ep_ua_arena_mark mark = ep_ua_arena_save(arena);
    size_t at = *pos;
    ep_ua_nodeid id;
    void *msg = NULL;
    const ep_ua_type *t;
    ep_err err = ep_ua_decode(p, n, &at, EP_UA_T(NodeId), &id, arena, lim, st);
    if (err)
        return err;
    t = NULL;
    if (id.ns == 0 && id.id_type == EP_UA_NODEID_NUMERIC)
        t = ep_ua_type_by_encoding_id(id.id.numeric);
    if (t == NULL || t->kind != EP_UA_KIND_STRUCT) {
        set_status(st, EP_UA_STATUS_BadServiceUnsupported);
        err = EP_EUNSUPPORTED;
        goto fail;
    }
    err = ep_ua_arena_alloc(arena, t->size, &msg);
    if (err) {
        set_status(st, err == EP_ENOMEM ? EP_UA_STATUS_BadOutOfMemory
                                        : EP_UA_STATUS_BadEncodingLimitsExceeded);
        goto fail;
    }
    err = ep_ua_decode(p, n, &at, t, msg, arena, lim, st);
    if (err)
        goto fail;
    *pos = at;
    *type = t;
    *out = msg;
    return EP_EOK;
fail:
    ep_ua_arena_rewind(arena, mark);
    return err;
}

ep_ua_status ep_ua_status_from_err(ep_err err)
{
    switch (err) {
    case EP_EOK:
        return EP_UA_STATUS_Good;
    case EP_ENOMEM:
        return EP_UA_STATUS_BadOutOfMemory;
    case EP_ETOOBIG:
        return EP_UA_STATUS_BadEncodingLimitsExceeded;
    case EP_EMALFORMED:
        return EP_UA_STATUS_BadDecodingError;
    case EP_EINVAL:
        return EP_UA_STATUS_BadEncodingError;
    case EP_EUNSUPPORTED:
        return EP_UA_STATUS_BadServiceUnsupported;
    default:
        return EP_UA_STATUS_BadInternalError;
    }
}
