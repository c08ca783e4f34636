/*
 * ua_types.h - OPC UA built-in types and the data-driven type model.
 *
 * Every OPC UA data type known to the codec has a descriptor (ep_ua_type) in
 * the generated table ep_ua_types[] (gen/types.h). A descriptor gives the
 * C size, the kind (one of the 25 built-ins, an enumeration or a structure),
 * the namespace-0 DataType id and binary encoding id, and for structures the
 * list of fields (type index, array flag, offsetof). The encoder and decoder
 * in binary.c walk these tables, so adding a type is a table entry, not code.
 *
 * Value conventions, shared by every type:
 *  - A zeroed value is the OPC UA default/null value of its type.
 *  - Strings and arrays distinguish null from empty: data == NULL is null
 *    (encoded with length -1); an empty value has length 0 and data set to
 *    EP_UA_EMPTY (encoded with length 0). Arrays are (size_t x_len, T *x).
 *  - Numeric NodeIds are stored once; the encoder picks the two-byte,
 *    four-byte or full numeric form, so decoding normalises the form.
 *  - Decoded values live in an arena (arena.h) and are never freed one by
 *    one. Values built on the heap (ep_ua_copy) are freed with ep_ua_clear.
 */
#ifndef EP_CODEC_OPCUA_UA_TYPES_H
#define EP_CODEC_OPCUA_UA_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec/opcua/gen/statuscodes.h"
#include "core/err.h"

/* ---- type descriptors ---- */

/* Kind of a type: the built-in type id for built-ins, then enum/struct.
 * Option sets use the unsigned integer kind of their width. */
typedef enum ep_ua_kind {
    EP_UA_KIND_BOOLEAN = 1,
    EP_UA_KIND_SBYTE = 2,
    EP_UA_KIND_BYTE = 3,
    EP_UA_KIND_INT16 = 4,
    EP_UA_KIND_UINT16 = 5,
    EP_UA_KIND_INT32 = 6,
    EP_UA_KIND_UINT32 = 7,
    EP_UA_KIND_INT64 = 8,
    EP_UA_KIND_UINT64 = 9,
    EP_UA_KIND_FLOAT = 10,
    EP_UA_KIND_DOUBLE = 11,
    EP_UA_KIND_STRING = 12,
    EP_UA_KIND_DATETIME = 13,
    EP_UA_KIND_GUID = 14,
    EP_UA_KIND_BYTESTRING = 15,
    EP_UA_KIND_XMLELEMENT = 16,
    EP_UA_KIND_NODEID = 17,
    EP_UA_KIND_EXPANDEDNODEID = 18,
    EP_UA_KIND_STATUSCODE = 19,
    EP_UA_KIND_QUALIFIEDNAME = 20,
    EP_UA_KIND_LOCALIZEDTEXT = 21,
    EP_UA_KIND_EXTENSIONOBJECT = 22,
    EP_UA_KIND_DATAVALUE = 23,
    EP_UA_KIND_VARIANT = 24,
    EP_UA_KIND_DIAGNOSTICINFO = 25,
    EP_UA_KIND_ENUM = 26,   /* Int32 on the wire */
    EP_UA_KIND_STRUCT = 27, /* fields in order */
} ep_ua_kind;

#define EP_UA_KIND_COUNT 28
#define EP_UA_BUILTIN_COUNT 25

/* Hard cap on value nesting, for the encoder, the decoder (a configured
 * max_depth above it is lowered to it) and the generic operations below:
 * it bounds stack use, and whatever decodes can be encoded, copied,
 * compared and cleared again. */
#define EP_UA_MAX_DEPTH_CAP 1000u

/* One field of a structure. */
typedef struct ep_ua_field {
    const char *name;    /* as in the .bsd */
    uint16_t type;       /* index into ep_ua_types[] */
    uint8_t is_array;    /* (size_t len, T *ptr) pair */
    uint32_t offset;     /* of the value, or of the array pointer */
    uint32_t len_offset; /* of the size_t array length */
} ep_ua_field;

/* One value of an enumeration or option set. */
typedef struct ep_ua_enum_value {
    const char *name;
    int64_t value;
} ep_ua_enum_value;

typedef struct ep_ua_type {
    const char *name;            /* "ReadRequest" */
    uint32_t type_id;            /* DataType NodeId (ns 0); built-in id */
    uint32_t binary_encoding_id; /* ns 0 DefaultBinary id, 0 if none */
    uint32_t size;               /* sizeof the C type */
    uint32_t min_wire;           /* smallest encoding in bytes, >= 1 */
    uint8_t kind;                /* ep_ua_kind */
    uint16_t nfields;
    const ep_ua_field *fields;
    uint16_t nvalues;
    const ep_ua_enum_value *values;
} ep_ua_type;

/* Sorted id -> type index entry (generated lookup tables). */
typedef struct ep_ua_type_entry {
    uint32_t id;
    uint16_t type;
} ep_ua_type_entry;

/* ---- built-in types ---- */

/* Marks an empty (not null) string or array; never dereferenced. */
extern _Alignas(max_align_t) uint8_t ep_ua_empty_sentinel[16];
#define EP_UA_EMPTY ((void *)ep_ua_empty_sentinel)

/* String, ByteString and XmlElement: UTF-8 / raw bytes, not terminated. */
typedef struct ep_ua_string {
    size_t len;
    uint8_t *data; /* NULL = null string, EP_UA_EMPTY allowed when len 0 */
} ep_ua_string;
typedef ep_ua_string ep_ua_bytestring;
typedef ep_ua_string ep_ua_xmlelement;

/* DateTime: 100 ns ticks since 1601-01-01 UTC. */
typedef int64_t ep_ua_datetime;
#define EP_UA_DATETIME_UNIX_EPOCH ((ep_ua_datetime)116444736000000000LL)
#define EP_UA_DATETIME_MSEC ((ep_ua_datetime)10000)
#define EP_UA_DATETIME_SEC ((ep_ua_datetime)10000000)

typedef struct ep_ua_guid {
    uint32_t data1;
    uint16_t data2;
    uint16_t data3;
    uint8_t data4[8];
} ep_ua_guid;

/* NodeId identifier types (id_type). */
enum {
    EP_UA_NODEID_NUMERIC = 0,
    EP_UA_NODEID_STRING = 1,
    EP_UA_NODEID_GUID = 2,
    EP_UA_NODEID_OPAQUE = 3,
};

typedef struct ep_ua_nodeid {
    uint16_t ns;
    uint8_t id_type; /* EP_UA_NODEID_* */
    union {
        uint32_t numeric;
        ep_ua_string string;
        ep_ua_guid guid;
        ep_ua_bytestring opaque;
    } id;
} ep_ua_nodeid;

/* ExpandedNodeId: the NamespaceUri flag is set when namespace_uri is not
 * null, the ServerIndex flag when server_index is not 0. */
typedef struct ep_ua_expandednodeid {
    ep_ua_nodeid node_id;
    ep_ua_string namespace_uri;
    uint32_t server_index;
} ep_ua_expandednodeid;

typedef struct ep_ua_qualifiedname {
    uint16_t ns;
    ep_ua_string name;
} ep_ua_qualifiedname;

/* LocalizedText: each part is encoded only when not null. */
typedef struct ep_ua_localizedtext {
    ep_ua_string locale;
    ep_ua_string text;
} ep_ua_localizedtext;

/* ExtensionObject encodings. */
enum {
    EP_UA_EXTOBJ_EMPTY = 0,   /* no body (type_id still encoded) */
    EP_UA_EXTOBJ_BINARY = 1,  /* raw binary body of an unknown type */
    EP_UA_EXTOBJ_XML = 2,     /* raw XML body */
    EP_UA_EXTOBJ_DECODED = 3, /* body is a value of a known type */
};

typedef struct ep_ua_extensionobject {
    uint8_t encoding;       /* EP_UA_EXTOBJ_* */
    ep_ua_nodeid type_id;   /* encoding id as on the wire; for DECODED the
                               encoder uses type->binary_encoding_id */
    ep_ua_bytestring body;  /* BINARY, XML */
    const ep_ua_type *type; /* DECODED: a structure with an encoding id */
    void *data;             /* DECODED: the value, of type *type */
} ep_ua_extensionobject;

/* Variant. type NULL is the empty variant. Scalars: data points to one value
 * of *type. Arrays: is_array, data holds array_len values (NULL = null
 * array); dims/dims_len optionally give the matrix dimensions, whose product
 * must equal array_len. type may be a built-in, an enumeration (sent as
 * Int32) or a structure (each value sent wrapped in an ExtensionObject).
 * Decoding always yields built-in types: structures arrive as
 * ExtensionObjects (decoded when their encoding id is known). A scalar
 * Variant may not hold a scalar Variant (Part 6, 5.2.2.16). */
typedef struct ep_ua_variant {
    const ep_ua_type *type;
    void *data;
    bool is_array;
    size_t array_len;
    size_t dims_len;
    uint32_t *dims;
} ep_ua_variant;

/* DataValue mask bits (as on the wire). */
#define EP_UA_DATAVALUE_VALUE 0x01u
#define EP_UA_DATAVALUE_STATUS 0x02u
#define EP_UA_DATAVALUE_SOURCE_TIMESTAMP 0x04u
#define EP_UA_DATAVALUE_SERVER_TIMESTAMP 0x08u
#define EP_UA_DATAVALUE_SOURCE_PICOSECONDS 0x10u
#define EP_UA_DATAVALUE_SERVER_PICOSECONDS 0x20u

typedef struct ep_ua_datavalue {
    uint8_t mask; /* EP_UA_DATAVALUE_*: which fields are present */
    ep_ua_variant value;
    ep_ua_status status;
    ep_ua_datetime source_timestamp;
    uint16_t source_picoseconds;
    ep_ua_datetime server_timestamp;
    uint16_t server_picoseconds;
} ep_ua_datavalue;

/* DiagnosticInfo mask bits (as on the wire). */
#define EP_UA_DIAG_SYMBOLIC_ID 0x01u
#define EP_UA_DIAG_NAMESPACE_URI 0x02u
#define EP_UA_DIAG_LOCALIZED_TEXT 0x04u
#define EP_UA_DIAG_LOCALE 0x08u
#define EP_UA_DIAG_ADDITIONAL_INFO 0x10u
#define EP_UA_DIAG_INNER_STATUS 0x20u
#define EP_UA_DIAG_INNER_DIAG 0x40u

typedef struct ep_ua_diagnosticinfo {
    uint8_t mask; /* EP_UA_DIAG_*: which fields are present */
    int32_t symbolic_id;
    int32_t namespace_uri;
    int32_t localized_text;
    int32_t locale;
    ep_ua_string additional_info;
    ep_ua_status inner_status;
    struct ep_ua_diagnosticinfo *inner; /* when EP_UA_DIAG_INNER_DIAG */
} ep_ua_diagnosticinfo;

/* ---- small helpers ---- */

/* EP_UA_STRING_LIT("abc") borrows a string literal (never null). */
#define EP_UA_STRING_LIT(s) ((ep_ua_string){sizeof(s) - 1, (uint8_t *)(s)})

/* ep_ua_string_from borrows a C string; NULL gives the null string. */
static inline ep_ua_string ep_ua_string_from(const char *s)
{
    ep_ua_string r = {0, NULL};
    if (s) {
        r.len = strlen(s);
        r.data = r.len ? (uint8_t *)(uintptr_t)s : (uint8_t *)EP_UA_EMPTY;
    }
    return r;
}

static inline bool ep_ua_string_is_null(const ep_ua_string *s) { return s->data == NULL; }

/* ep_ua_nodeid_numeric returns the numeric NodeId ns=<ns>;i=<id>. */
static inline ep_ua_nodeid ep_ua_nodeid_numeric(uint16_t ns, uint32_t id)
{
    ep_ua_nodeid n;
    memset(&n, 0, sizeof(n));
    n.ns = ns;
    n.id_type = EP_UA_NODEID_NUMERIC;
    n.id.numeric = id;
    return n;
}

/* ep_ua_datetime_from_unix_ms converts Unix milliseconds to a DateTime. */
static inline ep_ua_datetime ep_ua_datetime_from_unix_ms(int64_t ms)
{
    return EP_UA_DATETIME_UNIX_EPOCH + ms * EP_UA_DATETIME_MSEC;
}

/* ---- type lookup (value.c); any thread ---- */

/* ep_ua_type_by_encoding_id returns the type whose ns=0 DefaultBinary
 * encoding id is id, or NULL. */
const ep_ua_type *ep_ua_type_by_encoding_id(uint32_t id);
/* ep_ua_type_by_type_id returns the type whose ns=0 DataType id (built-in
 * id for built-ins) is id, or NULL. */
const ep_ua_type *ep_ua_type_by_type_id(uint32_t id);
/* ep_ua_type_by_name returns the type named name ("ReadRequest"), or NULL.
 * Linear scan: for tools and configuration, not the data path. */
const ep_ua_type *ep_ua_type_by_name(const char *name);
/* ep_ua_type_builtin returns the built-in type with id 1..25, or NULL. */
const ep_ua_type *ep_ua_type_builtin(unsigned builtin_id);

/* ---- generic value operations (value.c); any thread ---- */

/* ep_ua_equal compares two values of type t deeply. Null and empty differ,
 * floating point compares bit patterns, DECODED extension objects compare
 * their type and value (not type_id). a and b are borrowed. */
bool ep_ua_equal(const void *a, const void *b, const ep_ua_type *t);

/* ep_ua_copy deep-copies src into dst using malloc; dst is overwritten
 * (not freed first). src is borrowed; the caller owns dst and releases it
 * with ep_ua_clear. On failure dst is left zeroed.
 * Returns EP_EOK, EP_ENOMEM, EP_EINVAL (inconsistent src: array length
 * without data, unknown kind, nesting beyond what the decoder accepts). */
ep_err ep_ua_copy(const void *src, void *dst, const ep_ua_type *t);

/* ep_ua_clear frees the heap members of a value built with malloc (for
 * example by ep_ua_copy) and zeroes it. Never call it on arena-decoded
 * values. Accepts zeroed values. */
void ep_ua_clear(void *v, const ep_ua_type *t);

#endif
