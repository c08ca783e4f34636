/*
 * roundtrip_test.c - every type in ep_ua_types[] survives a round trip.
 *
 * A data-driven filler walks the descriptor of each type and populates a
 * value (numbers from a seed, strings null/empty/set, arrays null/empty/two
 * elements, every NodeId form, nested Variants, DataValues, decoded and raw
 * ExtensionObjects, DiagnosticInfo chains). For each value and several
 * seeds: encode, decode, compare, re-encode and compare bytes; deep-copy to
 * the heap, compare, encode the copy, clear it (ASan checks for leaks); and
 * decode every strict prefix of the encoding, which must fail cleanly.
 */
#include "codec/opcua/ua_testutil.h"

#define FILL_DEPTH 3
#define SEEDS 8

static void *fill_alloc(ep_ua_arena *a, size_t n)
{
    void *p = NULL;
    assert_int_equal(ep_ua_arena_alloc(a, n, &p), EP_EOK);
    return p;
}

static void fill(void *v, const ep_ua_type *t, ep_ua_arena *a, unsigned seed, unsigned depth);

static void fill_string(ep_ua_string *s, ep_ua_arena *a, unsigned seed)
{
    switch (seed % 3) {
    case 0:
        s->data = NULL;
        s->len = 0;
        break;
    case 1:
        s->data = EP_UA_EMPTY;
        s->len = 0;
        break;
    default: {
        char tmp[32];
        int n = snprintf(tmp, sizeof(tmp), "s%u\xC3\xA9", seed);
        s->data = fill_alloc(a, (size_t)n);
        memcpy(s->data, tmp, (size_t)n);
        s->len = (size_t)n;
    }
    }
}

static void fill_guid(ep_ua_guid *g, unsigned seed)
{
    g->data1 = 0x01020304u * seed;
    g->data2 = (uint16_t)(seed * 7);
    g->data3 = (uint16_t)(seed * 13);
    for (int i = 0; i < 8; i++)
        g->data4[i] = (uint8_t)(seed + i);
}

static void fill_nodeid(ep_ua_nodeid *n, ep_ua_arena *a, unsigned seed)
{
    static const uint32_t ids[] = {7, 300, 70000};
    n->ns = (uint16_t)((seed * 3) % 5 == 0 ? 0 : seed % 300);
    switch (seed % 4) {
    case 0:
        n->id_type = EP_UA_NODEID_NUMERIC;
        n->id.numeric = ids[(seed / 4) % 3];
        break;
    case 1:
        n->id_type = EP_UA_NODEID_STRING;
        fill_string(&n->id.string, a, seed + 1);
        break;
    case 2:
        n->id_type = EP_UA_NODEID_GUID;
        fill_guid(&n->id.guid, seed);
        break;
    default:
        n->id_type = EP_UA_NODEID_OPAQUE;
        fill_string(&n->id.opaque, a, seed + 2);
        break;
    }
}

/* Types usable inside a Variant at the given depth. */
static const ep_ua_type *variant_type(unsigned seed, unsigned depth)
{
    unsigned id = 1 + seed % EP_UA_BUILTIN_COUNT;
    if (depth >= FILL_DEPTH &&
        (id == EP_UA_KIND_VARIANT || id == EP_UA_KIND_DATAVALUE ||
         id == EP_UA_KIND_EXTENSIONOBJECT || id == EP_UA_KIND_DIAGNOSTICINFO))
        id = EP_UA_KIND_UINT32;
    return ep_ua_type_builtin(id);
}

static void fill_variant(ep_ua_variant *va, ep_ua_arena *a, unsigned seed, unsigned depth)
{
    if (seed % 7 == 0)
        return; /* empty */
    const ep_ua_type *et = variant_type(seed, depth);
    va->type = et;
    unsigned shape = (seed / 3) % 4;
    if (et->kind == EP_UA_KIND_VARIANT && shape == 0)
        shape = 1; /* no scalar Variant in a Variant */
    if (shape == 0) {
        va->data = fill_alloc(a, et->size);
        fill(va->data, et, a, seed * 5 + 1, depth + 1);
        return;
    }
    va->is_array = true;
    if (shape == 1) {
        va->data = (seed & 1) ? NULL : EP_UA_EMPTY;
        return;
    }
    size_t n = shape == 2 ? 2 : 6;
    va->array_len = n;
    va->data = fill_alloc(a, n * et->size);
    for (size_t i = 0; i < n; i++)
        fill((uint8_t *)va->data + i * et->size, et, a, seed * 11 + (unsigned)i, depth + 1);
    if (shape == 3) {
        va->dims_len = 2;
        va->dims = fill_alloc(a, 2 * sizeof(uint32_t));
        va->dims[0] = 2;
        va->dims[1] = 3;
    }
}

static void fill_eo(ep_ua_extensionobject *x, ep_ua_arena *a, unsigned seed, unsigned depth)
{
    switch (depth >= FILL_DEPTH ? 0 : seed % 3) {
    case 0:
        x->encoding = EP_UA_EXTOBJ_EMPTY;
        fill_nodeid(&x->type_id, a, seed);
        break;
    case 1:
        /* ns=3 ids are unknown to the decoder, so the body stays raw */
        x->encoding = (seed & 4) ? EP_UA_EXTOBJ_XML : EP_UA_EXTOBJ_BINARY;
        x->type_id = ep_ua_nodeid_numeric(3, 1000 + seed);
        fill_string(&x->body, a, seed);
        break;
    default: {
        const ep_ua_type *t = (seed & 4) ? EP_UA_T(Argument) : EP_UA_T(Range);
        x->encoding = EP_UA_EXTOBJ_DECODED;
        x->type = t;
        x->data = fill_alloc(a, t->size);
        fill(x->data, t, a, seed + 1, depth + 1);
    }
    }
}

static void fill_di(ep_ua_diagnosticinfo *di, ep_ua_arena *a, unsigned seed, unsigned depth)
{
    di->mask = (uint8_t)((seed * 37) & 0x7F);
    if (depth >= FILL_DEPTH)
        di->mask &= (uint8_t)~EP_UA_DIAG_INNER_DIAG;
    di->symbolic_id = (int32_t)seed;
    di->namespace_uri = (int32_t)seed + 1;
    di->localized_text = (int32_t)seed + 2;
    di->locale = -(int32_t)seed;
    fill_string(&di->additional_info, a, seed + 2);
    di->inner_status = EP_UA_STATUS_BadDecodingError | seed;
    if (di->mask & EP_UA_DIAG_INNER_DIAG) {
        di->inner = fill_alloc(a, sizeof(*di->inner));
        fill_di(di->inner, a, seed + 1, depth + 1);
    }
}

static void fill(void *v, const ep_ua_type *t, ep_ua_arena *a, unsigned seed, unsigned depth)
{
    switch (t->kind) {
    case EP_UA_KIND_BOOLEAN:
        *(bool *)v = seed & 1;
        break;
    case EP_UA_KIND_STRING:
    case EP_UA_KIND_BYTESTRING:
    case EP_UA_KIND_XMLELEMENT:
        fill_string(v, a, seed);
        break;
    case EP_UA_KIND_GUID:
        fill_guid(v, seed);
        break;
    case EP_UA_KIND_NODEID:
        fill_nodeid(v, a, seed);
        break;
    case EP_UA_KIND_EXPANDEDNODEID: {
        ep_ua_expandednodeid *x = v;
        fill_nodeid(&x->node_id, a, seed);
        if (seed & 1)
            fill_string(&x->namespace_uri, a, 2);
        x->server_index = (seed & 2) ? seed : 0;
        break;
    }
    case EP_UA_KIND_QUALIFIEDNAME: {
        ep_ua_qualifiedname *q = v;
        q->ns = (uint16_t)seed;
        fill_string(&q->name, a, seed);
        break;
    }
    case EP_UA_KIND_LOCALIZEDTEXT: {
        ep_ua_localizedtext *l = v;
        fill_string(&l->locale, a, seed / 3);
        fill_string(&l->text, a, seed);
        break;
    }
    case EP_UA_KIND_EXTENSIONOBJECT:
        fill_eo(v, a, seed, depth);
        break;
    case EP_UA_KIND_DATAVALUE: {
        ep_ua_datavalue *dv = v;
        dv->mask = (uint8_t)((seed * 13 + 1) & 0x3F);
        if (dv->mask & EP_UA_DATAVALUE_VALUE)
            fill_variant(&dv->value, a, seed, depth + 1);
        dv->status = seed << 16;
        dv->source_timestamp = (ep_ua_datetime)seed * 1000;
        dv->source_picoseconds = (uint16_t)seed;
        dv->server_timestamp = -(ep_ua_datetime)seed;
        dv->server_picoseconds = (uint16_t)(seed + 1);
        break;
    }
    case EP_UA_KIND_VARIANT:
        fill_variant(v, a, seed, depth);
        break;
    case EP_UA_KIND_DIAGNOSTICINFO:
        fill_di(v, a, seed, depth);
        break;
    case EP_UA_KIND_STRUCT:
        for (uint16_t i = 0; i < t->nfields; i++) {
            const ep_ua_field *f = &t->fields[i];
            const ep_ua_type *ft = &ep_ua_types[f->type];
            unsigned s = seed * 31 + i;
            uint8_t *fv = (uint8_t *)v + f->offset;
            if (!f->is_array) {
                fill(fv, ft, a, s, depth + 1);
                continue;
            }
            void *data = NULL;
            size_t len = 0;
            switch (s % 3) {
            case 0:
                break;
            case 1:
                data = EP_UA_EMPTY;
                break;
            default:
                len = depth < FILL_DEPTH ? 2 : 1;
                data = fill_alloc(a, len * ft->size);
                for (size_t k = 0; k < len; k++)
                    fill((uint8_t *)data + k * ft->size, ft, a, s + (unsigned)k, depth + 1);
            }
            memcpy(fv, &data, sizeof(data));
            memcpy((uint8_t *)v + f->len_offset, &len, sizeof(len));
        }
        break;
    default: /* numbers and enums: a seed-derived bit pattern */
        for (size_t i = 0; i < t->size; i++)
            ((uint8_t *)v)[i] = (uint8_t)(seed * 31 + i * 7 + 1);
        break;
    }
}

static size_t total_bytes;

/* ep_buf_head of a never-grown buffer is NULL + 0; structures without
 * fields encode to nothing, so go through this. */
static const uint8_t *head(const ep_buf *b)
{
    return b->data ? ep_buf_head(b) : (const uint8_t *)"";
}

static void dump_seeds(const ep_ua_type *t, const void *v, const ep_buf *b, bool message)
{
    int sel = corpus_variant_sel(t);
    if (sel >= 0)
        corpus_dump("opcua_variant", sel, head(b), ep_buf_used(b));
    if (message && t->kind == EP_UA_KIND_STRUCT && t->binary_encoding_id) {
        ep_buf m;
        ep_buf_init(&m, 0);
        assert_int_equal(ep_ua_message_encode(v, t, &m), EP_EOK);
        corpus_dump("opcua_message", -1, head(&m), ep_buf_used(&m));
        ep_buf_fini(&m);
    }
}

static void roundtrip(const ep_ua_type *t, unsigned seed, bool dump)
{
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    void *v = fill_alloc(&a, t->size);
    fill(v, t, &a, seed, 0);

    ep_buf b1, b2, b3;
    ep_buf_init(&b1, 0);
    ep_buf_init(&b2, 0);
    ep_buf_init(&b3, 0);
    ep_err err = ep_ua_encode(v, t, &b1);
    if (err)
        fail_msg("%s seed %u: encode failed: %s", t->name, seed, ep_err_name(err));
    total_bytes += ep_buf_used(&b1);
    if (dump)
        dump_seeds(t, v, &b1, true);

    void *out = fill_alloc(&a, t->size);
    check_decode_into(head(&b1), ep_buf_used(&b1), t, out, &a);
    if (!ep_ua_equal(v, out, t))
        fail_msg("%s seed %u: decoded value differs", t->name, seed);
    assert_int_equal(ep_ua_encode(out, t, &b2), EP_EOK);
    assert_bytes(head(&b2), ep_buf_used(&b2), head(&b1), ep_buf_used(&b1));

    /* heap deep copy */
    void *copy = malloc(t->size);
    assert_non_null(copy);
    assert_int_equal(ep_ua_copy(out, copy, t), EP_EOK);
    if (!ep_ua_equal(v, copy, t))
        fail_msg("%s seed %u: copy differs", t->name, seed);
    assert_int_equal(ep_ua_encode(copy, t, &b3), EP_EOK);
    assert_bytes(head(&b3), ep_buf_used(&b3), head(&b1), ep_buf_used(&b1));
    ep_ua_clear(copy, t);
    free(copy);

    check_prefixes(head(&b1), ep_buf_used(&b1), t, &a);

    ep_buf_fini(&b1);
    ep_buf_fini(&b2);
    ep_buf_fini(&b3);
    ep_ua_arena_fini(&a);
}

static void test_every_type(void **state)
{
    size_t structs = 0;
    for (size_t i = 0; i < EP_UA_TYPE_COUNT; i++) {
        const ep_ua_type *t = &ep_ua_types[i];
        if (t->kind == EP_UA_KIND_STRUCT)
            structs++;
        for (unsigned seed = 1; seed <= SEEDS; seed++)
            roundtrip(t, seed * 17 + (unsigned)i, seed == 1);
    }
    /* every structured type of the schema is in the table */
    assert_true(structs > 300);
    print_message("round-tripped %d types x %d seeds, %zu bytes encoded\n", (int)EP_UA_TYPE_COUNT,
                  SEEDS, total_bytes);
}

/* Wide sweep over the built-ins with many seeds: covers every Variant
 * element type in every shape. */
static void test_builtins_many_seeds(void **state)
{
    for (unsigned id = 1; id <= EP_UA_BUILTIN_COUNT; id++)
        for (unsigned seed = 0; seed < 200; seed++)
            roundtrip(ep_ua_type_builtin(id), seed, seed < 30);
}

/* Copy and clear are safe on zeroed values, and a copy of a value with an
 * inconsistent array (length without data) fails without leaking. */
static void test_copy_clear_edges(void **state)
{
    ep_ua_read_request r, c;
    memset(&r, 0, sizeof(r));
    ep_ua_clear(&r, EP_UA_T(ReadRequest));
    assert_int_equal(ep_ua_copy(&r, &c, EP_UA_T(ReadRequest)), EP_EOK);
    assert_true(ep_ua_equal(&r, &c, EP_UA_T(ReadRequest)));
    ep_ua_clear(&c, EP_UA_T(ReadRequest));

    ep_ua_read_value_id ids[2];
    memset(ids, 0, sizeof(ids));
    ids[0].index_range = ep_ua_string_from("1:2");
    ids[1].data_encoding.name = ep_ua_string_from("Default Binary");
    r.nodes_to_read = ids;
    r.nodes_to_read_len = 2;
    r.request_header.audit_entry_id = ep_ua_string_from("audit");
    r.request_header.additional_header.encoding = EP_UA_EXTOBJ_BINARY;
    r.request_header.additional_header.body.len = 5; /* but data NULL */
    assert_int_equal(ep_ua_copy(&r, &c, EP_UA_T(ReadRequest)), EP_EINVAL);
    /* dst left zeroed */
    ep_ua_read_request z;
    memset(&z, 0, sizeof(z));
    assert_memory_equal(&c, &z, sizeof(c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_builtins_many_seeds),
        cmocka_unit_test(test_copy_clear_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
