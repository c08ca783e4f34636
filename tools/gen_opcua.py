#!/usr/bin/python3
"""gen_opcua.py - generate the OPC UA type tables of src/codec/opcua/gen/.

Usage: gen_opcua.py REFERENCE_DIR OUTPUT_DIR

REFERENCE_DIR holds the OPC Foundation UA-Nodeset Schema/ files
(Opc.Ua.Types.bsd, NodeIds.csv, StatusCode.csv, AttributeIds.csv).
OUTPUT_DIR receives:

  types.h        C structs for every structured type of the .bsd, enum
                 types, the type-index enum EP_UA_TYPE_<Name>
  types.c        the data-driven descriptor table ep_ua_types[] walked by
                 binary.c (fields with offsetof, array flags, encoding ids)
                 and the sorted id -> type lookup tables
  nodeids.h      EP_UA_NS0_<Name> for every namespace-0 node
  statuscodes.h  EP_UA_STATUS_<Name> for every StatusCode
  statuscodes.c  ep_ua_status_name() / ep_ua_status_description() tables
  attributes.h   EP_UA_ATTR_<Name> attribute ids
  attributes.c   ep_ua_attribute_name()

Only the Python 3 standard library is used and the output is a pure
function of the inputs (no timestamps), so CI can regenerate and diff.

Built-in types (Boolean .. DiagnosticInfo, ids 1..25) are hand-written in
ua_types.h; the .bsd describes their wire layout with bit fields and
switches, which binary.c implements directly. Every other structured type in
the .bsd is a flat sequence of fields (inherited fields are repeated, see the
SourceType attribute), where "NoOfX" Int32 fields carry the length of the
array field X that follows. The generator checks those assumptions and fails
loudly if a future schema breaks them.
"""

import csv
import os
import re
import sys
import xml.etree.ElementTree as ET

BSD_NS = {"opc": "http://opcfoundation.org/BinarySchema/"}

ORIGIN = ("OPC Foundation UA-Nodeset, Schema/, "
          "commit a2d4ae8b337ff9f014878fc88f9b6acda0ff3674")

LICENSE = """\
Copyright (c) 2005-2024 The OPC Foundation, Inc. All rights reserved.

OPC Foundation MIT License 1.00

Permission is hereby granted, free of charge, to any person
obtaining a copy of this software and associated documentation
files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use,
copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following
conditions:

The above copyright notice and this permission notice shall be
included in all copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES
OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY,
WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR
OTHER DEALINGS IN THE SOFTWARE.

The complete license agreement can be found here:
http://opcfoundation.org/License/MIT/1.00/"""

# Built-in types: (name, C type, kind macro, minimum encoded size).
# The order is the built-in type id (1..25), which is also the type index + 1.
BUILTINS = [
    ("Boolean", "bool", 1),
    ("SByte", "int8_t", 1),
    ("Byte", "uint8_t", 1),
    ("Int16", "int16_t", 2),
    ("UInt16", "uint16_t", 2),
    ("Int32", "int32_t", 4),
    ("UInt32", "uint32_t", 4),
    ("Int64", "int64_t", 8),
    ("UInt64", "uint64_t", 8),
    ("Float", "float", 4),
    ("Double", "double", 8),
    ("String", "ep_ua_string", 4),
    ("DateTime", "ep_ua_datetime", 8),
    ("Guid", "ep_ua_guid", 16),
    ("ByteString", "ep_ua_bytestring", 4),
    ("XmlElement", "ep_ua_xmlelement", 4),
    ("NodeId", "ep_ua_nodeid", 2),
    ("ExpandedNodeId", "ep_ua_expandednodeid", 2),
    ("StatusCode", "ep_ua_status", 4),
    ("QualifiedName", "ep_ua_qualifiedname", 6),
    ("LocalizedText", "ep_ua_localizedtext", 1),
    ("ExtensionObject", "ep_ua_extensionobject", 3),
    ("DataValue", "ep_ua_datavalue", 1),
    ("Variant", "ep_ua_variant", 1),
    ("DiagnosticInfo", "ep_ua_diagnosticinfo", 1),
]
BUILTIN_NAMES = {b[0] for b in BUILTINS}

# .bsd types that only describe the wire layout of built-ins.
WIRE_HELPERS = {"TwoByteNodeId", "FourByteNodeId", "NumericNodeId",
                "StringNodeId", "GuidNodeId", "ByteStringNodeId",
                "NodeIdType"}

# opc: primitive names used by field TypeName attributes.
OPC_ALIASES = {"String": "String", "CharArray": "String"}

C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do",
    "double", "else", "enum", "extern", "float", "for", "goto", "if",
    "inline", "int", "long", "register", "restrict", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "bool", "true", "false",
}

# Hand-written names a generated type must never shadow.
RESERVED_C_NAMES = {
    "ep_ua_type", "ep_ua_field", "ep_ua_enum_value", "ep_ua_limits",
    "ep_ua_arena", "ep_ua_allocator", "ep_ua_status", "ep_ua_datetime",
    "ep_ua_type_entry", "ep_ua_arena_mark",
} | {b[1] for b in BUILTINS}


def fail(msg):
    sys.stderr.write("gen_opcua.py: error: %s\n" % msg)
    sys.exit(1)


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^A-Za-z0-9_]", "_", s)
    return s.lower()


def ident(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def c_string(s):
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif 32 <= o < 127:
            out.append(ch)
        else:
            for byte in ch.encode("utf-8"):
                out.append("\\%03o" % byte)
    return '"' + "".join(out) + '"'


def header(fname, what, sources):
    lines = ["%s - %s" % (fname, what), "",
             "This file is generated by tools/gen_opcua.py \u2014 do not edit.",
             "Origin: " + ORIGIN,
             "Input: " + ", ".join(sources), ""]
    lines += LICENSE.split("\n")
    body = "\n".join((" * " + l).rstrip() for l in lines)
    return "/*\n" + body + "\n */\n"


# --------------------------------------------------------------------------
# Input parsing
# --------------------------------------------------------------------------

class Field:
    def __init__(self, name, type_name, is_array):
        self.name = name
        self.type_name = type_name
        self.is_array = is_array
        self.c_name = snake(name)
        if self.c_name in C_KEYWORDS:
            self.c_name += "_"


class Type:
    def __init__(self, name, kind):
        self.name = name
        self.kind = kind        # "builtin", "enum", "optionset", "struct"
        self.fields = []
        self.values = []        # enums: (name, value)
        self.bits = 32
        self.doc = ""
        self.c_name = None
        self.type_id = 0
        self.encoding_id = 0


def parse_bsd(path):
    root = ET.parse(path).getroot()
    types = []
    for b in BUILTINS:
        t = Type(b[0], "builtin")
        t.c_name = b[1]
        types.append(t)
    for el in root:
        tag = el.tag.split("}")[1]
        name = el.get("Name")
        if tag == "Import" or name in BUILTIN_NAMES or name in WIRE_HELPERS:
            continue
        doc_el = el.find("opc:Documentation", BSD_NS)
        doc = doc_el.text.strip() if doc_el is not None and doc_el.text else ""
        if tag == "OpaqueType":
            continue        # aliases of built-ins; never used as field types
        if tag == "EnumeratedType":
            bits = int(el.get("LengthInBits", "32"))
            opt = el.get("IsOptionSet") == "true"
            if bits not in (8, 16, 32):
                fail("enum %s has %d bits" % (name, bits))
            t = Type(name, "optionset" if opt else "enum")
            t.bits = bits
            for v in el.findall("opc:EnumeratedValue", BSD_NS):
                t.values.append((v.get("Name"), int(v.get("Value"))))
            if not opt and bits != 32:
                fail("non option-set enum %s is not 32 bits" % name)
        elif tag == "StructuredType":
            t = Type(name, "struct")
            flds = el.findall("opc:Field", BSD_NS)
            length_fields = {f.get("LengthField") for f in flds
                             if f.get("LengthField")}
            for f in flds:
                for a in f.attrib:
                    if a not in ("Name", "TypeName", "LengthField",
                                 "SourceType"):
                        fail("%s.%s uses unsupported attribute %s"
                             % (name, f.get("Name"), a))
                fname = f.get("Name")
                tname = f.get("TypeName").split(":", 1)[1]
                tname = OPC_ALIASES.get(tname, tname)
                if fname in length_fields:
                    if tname != "Int32":
                        fail("length field %s.%s is not Int32"
                             % (name, fname))
                    continue
                t.fields.append(Field(fname, tname,
                                      f.get("LengthField") is not None))
            for f in flds:
                lf = f.get("LengthField")
                if lf:
                    idx = [x.get("Name") for x in flds].index(f.get("Name"))
                    if idx == 0 or flds[idx - 1].get("Name") != lf:
                        fail("%s.%s: length field does not precede array"
                             % (name, f.get("Name")))
        else:
            fail("unknown element %s" % tag)
        t.doc = doc
        types.append(t)
    return types


def parse_nodeids(path):
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if not row:
                continue
            if len(row) != 3:
                fail("bad NodeIds.csv row %r" % row)
            rows.append((row[0], int(row[1]), row[2]))
    return rows


def parse_status(path):
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if not row:
                continue
            if len(row) != 3:
                fail("bad StatusCode.csv row %r" % row)
            rows.append((row[0], int(row[1], 16), row[2]))
    return rows


def parse_attributes(path):
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if row:
                rows.append((row[0], int(row[1])))
    return rows


# --------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------

def resolve(types, nodeids):
    by_name = {t.name: t for t in types}
    ids = {}
    for name, num, cls in nodeids:
        ids[(name, cls)] = num
    seen_c = set()
    for t in types:
        if t.kind != "builtin":
            t.c_name = "ep_ua_" + snake(t.name)
        if t.c_name in seen_c or (t.kind != "builtin"
                                  and t.c_name in RESERVED_C_NAMES):
            fail("C name collision: %s" % t.c_name)
        seen_c.add(t.c_name)
        if t.kind == "builtin":
            t.type_id = [b[0] for b in BUILTINS].index(t.name) + 1
        else:
            t.type_id = ids.get((t.name, "DataType"), 0)
        if t.type_id == 0:
            fail("no DataType node id for %s" % t.name)
        t.encoding_id = ids.get((t.name + "_Encoding_DefaultBinary",
                                 "Object"), 0)
        for f in t.fields:
            if f.type_name not in by_name:
                fail("%s.%s has unknown type %s" % (t.name, f.name,
                                                    f.type_name))
            f.type = by_name[f.type_name]
        names = [f.c_name for f in t.fields]
        names += [f.c_name + "_len" for f in t.fields if f.is_array]
        if len(names) != len(set(names)):
            fail("field name collision in %s" % t.name)
    # Definition order: a struct embedding another by value comes after it.
    order = []
    state = {}

    def visit(t, stack):
        if state.get(t.name) == 2:
            return
        if state.get(t.name) == 1:
            fail("by-value cycle: %s" % " -> ".join(stack + [t.name]))
        state[t.name] = 1
        for f in t.fields:
            if not f.is_array and f.type.kind == "struct":
                visit(f.type, stack + [t.name])
        state[t.name] = 2
        order.append(t)

    for t in types:
        if t.kind == "struct":
            visit(t, [])
    return order


def min_wire(t, memo):
    if t.name in memo:
        return memo[t.name]
    if t.kind == "builtin":
        v = [b[2] for b in BUILTINS if b[0] == t.name][0]
    elif t.kind in ("enum", "optionset"):
        v = t.bits // 8
    else:
        v = 0
        for f in t.fields:
            v += 4 if f.is_array else min_wire(f.type, memo)
    memo[t.name] = v
    return v


def kind_macro(t):
    if t.kind == "builtin":
        return "EP_UA_KIND_" + t.name.upper()
    if t.kind == "enum":
        return "EP_UA_KIND_ENUM"
    if t.kind == "optionset":
        return {8: "EP_UA_KIND_BYTE", 16: "EP_UA_KIND_UINT16",
                32: "EP_UA_KIND_UINT32"}[t.bits]
    return "EP_UA_KIND_STRUCT"


def c_type_of(t):
    return t.c_name


# --------------------------------------------------------------------------
# Emitters
# --------------------------------------------------------------------------

def comment_block(text, indent=""):
    if not text:
        return ""
    words = text.replace("*/", "* /").split()
    lines, cur = [], ""
    for w in words:
        if len(cur) + len(w) + 1 > 72:
            lines.append(cur)
            cur = w
        else:
            cur = (cur + " " + w).strip()
    if cur:
        lines.append(cur)
    if len(lines) == 1:
        return "%s/* %s */\n" % (indent, lines[0])
    out = "%s/*\n" % indent
    for l in lines:
        out += "%s * %s\n" % (indent, l)
    return out + "%s */\n" % indent


def enum_const(t, value_name, seen):
    name = "EP_UA_%s_%s" % (snake(t.name).upper(), snake(value_name).upper())
    if name in seen:
        fail("enum constant collision: %s" % name)
    seen.add(name)
    return name


def emit_types_h(types, order):
    o = [header("types.h", "OPC UA data types generated from the .bsd",
                ["Opc.Ua.Types.bsd", "NodeIds.csv"])]
    o.append("""#ifndef EP_CODEC_OPCUA_GEN_TYPES_H
#define EP_CODEC_OPCUA_GEN_TYPES_H

#include "codec/opcua/ua_types.h"

/* Index of every type in ep_ua_types[]. Built-ins come first, so that
 * EP_UA_TYPE_<builtin> == built-in type id - 1. */
enum {
""")
    for i, t in enumerate(types):
        o.append("    EP_UA_TYPE_%s = %d,\n" % (t.name, i))
    o.append("    EP_UA_TYPE_COUNT = %d\n};\n\n" % len(types))
    o.append("""/* The descriptor table, indexed by EP_UA_TYPE_*. */
extern const ep_ua_type ep_ua_types[EP_UA_TYPE_COUNT];

/* EP_UA_T(ReadRequest) is the descriptor of ep_ua_read_request. */
#define EP_UA_T(name) (&ep_ua_types[EP_UA_TYPE_##name])

/* Sorted id -> type tables behind ep_ua_type_by_encoding_id() and
 * ep_ua_type_by_type_id(); internal to the codec. */
extern const ep_ua_type_entry ep_ua__types_by_encoding_id[];
extern const size_t ep_ua__types_by_encoding_id_len;
extern const ep_ua_type_entry ep_ua__types_by_type_id[];
extern const size_t ep_ua__types_by_type_id_len;

""")
    o.append("/* ---- enumerations ---- */\n\n")
    seen = set()
    for t in types:
        if t.kind not in ("enum", "optionset"):
            continue
        o.append(comment_block(t.doc))
        if t.kind == "enum":
            o.append("typedef int32_t %s;\n" % t.c_name)
            if t.values:
                o.append("enum {\n")
                for n, v in t.values:
                    o.append("    %s = %d,\n" % (enum_const(t, n, seen), v))
                o.append("};\n\n")
            else:
                o.append("\n")
        else:
            ct = {8: "uint8_t", 16: "uint16_t", 32: "uint32_t"}[t.bits]
            o.append("typedef %s %s;\n" % (ct, t.c_name))
            for n, v in t.values:
                o.append("#define %s 0x%Xu\n" % (enum_const(t, n, seen), v))
            o.append("\n")
    o.append("/* ---- structures ---- */\n\n")
    for t in types:
        if t.kind == "struct":
            o.append("typedef struct %s %s;\n" % (t.c_name, t.c_name))
    o.append("\n")
    for t in order:
        o.append(comment_block(t.doc))
        o.append("struct %s {\n" % t.c_name)
        if not t.fields:
            o.append("    uint8_t _unused; /* no fields */\n")
        for f in t.fields:
            if f.is_array:
                o.append("    size_t %s_len;\n" % f.c_name)
                o.append("    %s *%s;\n" % (c_type_of(f.type), f.c_name))
            else:
                o.append("    %s %s;\n" % (c_type_of(f.type), f.c_name))
        o.append("};\n\n")
    o.append("#endif\n")
    return "".join(o)


def emit_types_c(types):
    memo = {}
    o = [header("types.c", "OPC UA type descriptor tables",
                ["Opc.Ua.Types.bsd", "NodeIds.csv"])]
    o.append("""#include <stddef.h>

#include "codec/opcua/gen/types.h"

""")
    for t in types:
        if t.kind == "struct" and t.fields:
            o.append("static const ep_ua_field f_%s[%d] = {\n"
                     % (t.name, len(t.fields)))
            for f in t.fields:
                if f.is_array:
                    o.append("    {\"%s\", EP_UA_TYPE_%s, 1, "
                             "offsetof(%s, %s), offsetof(%s, %s_len)},\n"
                             % (f.name, f.type.name, t.c_name, f.c_name,
                                t.c_name, f.c_name))
                else:
                    o.append("    {\"%s\", EP_UA_TYPE_%s, 0, "
                             "offsetof(%s, %s), 0},\n"
                             % (f.name, f.type.name, t.c_name, f.c_name))
            o.append("};\n")
        if t.kind in ("enum", "optionset") and t.values:
            o.append("static const ep_ua_enum_value e_%s[%d] = {\n"
                     % (t.name, len(t.values)))
            for n, v in t.values:
                o.append("    {%s, %d},\n" % (c_string(n), v))
            o.append("};\n")
    o.append("\nconst ep_ua_type ep_ua_types[EP_UA_TYPE_COUNT] = {\n")
    for t in types:
        fields = ("f_%s" % t.name) if (t.kind == "struct" and t.fields) \
            else "NULL"
        values = ("e_%s" % t.name) if t.values else "NULL"
        o.append("    {%s, %d, %d, sizeof(%s), %d, %s, %d, %s, %d, %s},\n"
                 % (c_string(t.name), t.type_id, t.encoding_id, t.c_name,
                    max(1, min_wire(t, memo)), kind_macro(t),
                    len(t.fields), fields, len(t.values), values))
    o.append("};\n\n")
    enc = sorted((t.encoding_id, t.name) for t in types if t.encoding_id)
    o.append("const ep_ua_type_entry ep_ua__types_by_encoding_id[%d] = {\n"
             % len(enc))
    for i, n in enc:
        o.append("    {%d, EP_UA_TYPE_%s},\n" % (i, n))
    o.append("};\nconst size_t ep_ua__types_by_encoding_id_len = %d;\n\n"
             % len(enc))
    tid = sorted((t.type_id, t.name) for t in types)
    o.append("const ep_ua_type_entry ep_ua__types_by_type_id[%d] = {\n"
             % len(tid))
    for i, n in tid:
        o.append("    {%d, EP_UA_TYPE_%s},\n" % (i, n))
    o.append("};\nconst size_t ep_ua__types_by_type_id_len = %d;\n"
             % len(tid))
    return "".join(o)


def emit_nodeids_h(rows):
    o = [header("nodeids.h", "namespace-0 node ids", ["NodeIds.csv"])]
    o.append("#ifndef EP_CODEC_OPCUA_GEN_NODEIDS_H\n"
             "#define EP_CODEC_OPCUA_GEN_NODEIDS_H\n\n"
             "/* EP_UA_NS0_<BrowsePath>: numeric identifier in namespace 0. "
             "*/\n")
    seen = set()
    for name, num, _cls in rows:
        n = ident(name)
        if n in seen:
            fail("duplicate node id name %s" % n)
        seen.add(n)
        o.append("#define EP_UA_NS0_%s %du\n" % (n, num))
    o.append("\n#endif\n")
    return "".join(o)


def emit_status_h(rows):
    o = [header("statuscodes.h", "OPC UA StatusCode values",
                ["StatusCode.csv"])]
    o.append("""#ifndef EP_CODEC_OPCUA_GEN_STATUSCODES_H
#define EP_CODEC_OPCUA_GEN_STATUSCODES_H

#include <stdint.h>

/* An OPC UA StatusCode. The top 16 bits are the code, the low 16 bits carry
 * info bits (limits, overflow, ...). Never mixed with ep_err. */
typedef uint32_t ep_ua_status;

""")
    for name, val, _desc in rows:
        o.append("#define EP_UA_STATUS_%s 0x%08Xu\n" % (ident(name), val))
    o.append("""
/* ep_ua_status_name returns the symbolic name ("BadDecodingError") of the
 * code part of st (info bits ignored), or NULL if unknown. Any thread. */
const char *ep_ua_status_name(ep_ua_status st);
/* ep_ua_status_description returns the specification's description of the
 * code part of st, or NULL if unknown. Any thread. */
const char *ep_ua_status_description(ep_ua_status st);

#define EP_UA_STATUS_IS_GOOD(st) (((st) & 0xC0000000u) == 0)
#define EP_UA_STATUS_IS_UNCERTAIN(st) (((st) & 0xC0000000u) == 0x40000000u)
#define EP_UA_STATUS_IS_BAD(st) (((st) & 0x80000000u) != 0)

#endif
""")
    return "".join(o)


def emit_status_c(rows):
    o = [header("statuscodes.c", "StatusCode name and description table",
                ["StatusCode.csv"])]
    srt = sorted(rows, key=lambda r: r[1])
    vals = [r[1] for r in srt]
    if len(vals) != len(set(vals)):
        fail("duplicate status code values")
    o.append("""#include <stddef.h>

#include "codec/opcua/gen/statuscodes.h"

struct status_entry {
    uint32_t code;
    const char *name;
    const char *description;
};

/* Sorted by code for binary search. */
static const struct status_entry status_table[%d] = {
""" % len(srt))
    for name, val, desc in srt:
        o.append("    {0x%08Xu, %s,\n     %s},\n"
                 % (val, c_string(name), c_string(desc)))
    o.append("""};

static const struct status_entry *status_find(ep_ua_status st)
{
    uint32_t code = st & 0xFFFF0000u;
    size_t lo = 0, hi = sizeof(status_table) / sizeof(status_table[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (status_table[mid].code == code)
            return &status_table[mid];
        if (status_table[mid].code < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *ep_ua_status_name(ep_ua_status st)
{
    const struct status_entry *e = status_find(st);
    return e ? e->name : NULL;
}

const char *ep_ua_status_description(ep_ua_status st)
{
    const struct status_entry *e = status_find(st);
    return e ? e->description : NULL;
}
""")
    return "".join(o)


def emit_attributes_h(rows):
    o = [header("attributes.h", "OPC UA attribute ids",
                ["AttributeIds.csv"])]
    o.append("#ifndef EP_CODEC_OPCUA_GEN_ATTRIBUTES_H\n"
             "#define EP_CODEC_OPCUA_GEN_ATTRIBUTES_H\n\n"
             "#include <stdint.h>\n\n")
    for name, val in rows:
        o.append("#define EP_UA_ATTR_%s %du\n" % (ident(name), val))
    o.append("\n/* ep_ua_attribute_name returns the name (\"Value\") of an "
             "attribute id, or\n * NULL if unknown. Any thread. */\n"
             "const char *ep_ua_attribute_name(uint32_t attribute_id);\n\n"
             "#endif\n")
    return "".join(o)


def emit_attributes_c(rows):
    o = [header("attributes.c", "attribute id names", ["AttributeIds.csv"])]
    o.append("#include <stddef.h>\n\n"
             "#include \"codec/opcua/gen/attributes.h\"\n\n"
             "const char *ep_ua_attribute_name(uint32_t attribute_id)\n{\n"
             "    switch (attribute_id) {\n")
    for name, val in rows:
        o.append("    case %d:\n        return %s;\n" % (val, c_string(name)))
    o.append("    default:\n        return NULL;\n    }\n}\n")
    return "".join(o)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: gen_opcua.py REFERENCE_DIR OUTPUT_DIR\n")
        return 2
    ref, out = argv[1], argv[2]
    types = parse_bsd(os.path.join(ref, "Opc.Ua.Types.bsd"))
    nodeids = parse_nodeids(os.path.join(ref, "NodeIds.csv"))
    status = parse_status(os.path.join(ref, "StatusCode.csv"))
    attrs = parse_attributes(os.path.join(ref, "AttributeIds.csv"))
    order = resolve(types, nodeids)
    os.makedirs(out, exist_ok=True)
    files = {
        "types.h": emit_types_h(types, order),
        "types.c": emit_types_c(types),
        "nodeids.h": emit_nodeids_h(nodeids),
        "statuscodes.h": emit_status_h(status),
        "statuscodes.c": emit_status_c(status),
        "attributes.h": emit_attributes_h(attrs),
        "attributes.c": emit_attributes_c(attrs),
    }
    for name, text in files.items():
        with open(os.path.join(out, name), "w", encoding="utf-8",
                  newline="\n") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
