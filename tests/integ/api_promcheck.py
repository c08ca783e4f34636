#!/usr/bin/env python3
"""api_promcheck.py FILE|- : strict checker for the Prometheus text
exposition format 0.0.4, written independently of the C renderer so that
the two can disagree. Exits 0 when valid, 1 with one message per problem.

Checked: UTF-8; every line ends in LF; HELP/TYPE syntax and escapes (at most
one of each per family, TYPE before the family's first sample, a known
type); metric and label names; label value escapes (only \\\\, \\" and \\n);
no duplicate label names or series; a family's samples are contiguous;
values parse as Go's ParseFloat would (plus +Inf/-Inf/NaN); optional integer
timestamps; counters are not negative; sample names match their family's
type (histogram: _bucket with le, _sum, _count); histogram buckets per
series ascend by le, are cumulative, end with le="+Inf", and +Inf equals
_count.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf|NaN|nan)\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def unescape(s, allowed, where, errs):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in allowed:
                errs.append(f"{where}: invalid escape in {s!r}")
                return s
            out.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_value(v, where, errs):
    if not FLOAT.match(v):
        errs.append(f"{where}: bad value {v!r}")
        return None
    return float(v)


def parse_sample(line, where, errs):
    m = NAME.match(line)
    if not m:
        errs.append(f"{where}: bad metric name in {line!r}")
        return None
    name, i = m.group(0), m.end()
    labels = {}
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            if i < len(line) and line[i] == "}":
                i += 1
                break
            lm = LABEL.match(line, i)
            if not lm:
                errs.append(f"{where}: bad label name at column {i}")
                return None
            ln = lm.group(0)
            if ln.startswith("__"):
                errs.append(f"{where}: reserved label name {ln}")
            i = lm.end()
            if line[i:i + 2] != '="':
                errs.append(f"{where}: expected =\" after label {ln}")
                return None
            i += 2
            j = i
            while j < len(line) and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            if j >= len(line):
                errs.append(f"{where}: unterminated label value")
                return None
            if ln in labels:
                errs.append(f"{where}: duplicate label {ln}")
            labels[ln] = unescape(line[i:j], '\\"n', where, errs)
            i = j + 1
            if i < len(line) and line[i] == ",":
                i += 1
            elif i >= len(line) or line[i] != "}":
                errs.append(f"{where}: expected , or }} after label value")
                return None
    if i >= len(line) or line[i] != " ":
        errs.append(f"{where}: expected one space before the value")
        return None
    rest = line[i + 1:].split(" ")
    if len(rest) not in (1, 2) or rest[0] == "":
        errs.append(f"{where}: expected value [timestamp], got {line[i + 1:]!r}")
        return None
    value = parse_value(rest[0], where, errs)
    if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
        errs.append(f"{where}: bad timestamp {rest[1]!r}")
    return name, labels, value


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if types.get(base) in ("histogram", "summary"):
                return base
    return name


def check(text):
    errs = []
    if not text.endswith("\n") and text:
        errs.append("last line does not end with a line feed")
    types, helps, seen_series, done_fams = {}, set(), set(), set()
    sampled = set()
    current = None
    hist = {}  # (family, labels without le) -> {"buckets": [(le, v)], "count": v}
    for no, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {no}"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    errs.append(f"{where}: bad metric name {name!r}")
                if parts[1] == "HELP":
                    if name in helps:
                        errs.append(f"{where}: second HELP for {name}")
                    helps.add(name)
                    unescape(parts[3] if len(parts) > 3 else "", "\\n", where, errs)
                else:
                    t = parts[3] if len(parts) > 3 else ""
                    if t not in TYPES:
                        errs.append(f"{where}: unknown type {t!r}")
                    if name in types:
                        errs.append(f"{where}: second TYPE for {name}")
                    if name in sampled:
                        errs.append(f"{where}: TYPE for {name} after its samples")
                    types[name] = t
                if name != current and name in done_fams:
                    errs.append(f"{where}: family {name} is not contiguous")
                if current is not None and name != current:
                    done_fams.add(current)
                current = name
            continue
        if line.strip() == "":
            errs.append(f"{where}: empty line")
            continue
        s = parse_sample(line, where, errs)
        if s is None:
            continue
        name, labels, value = s
        fam = family_of(name, types)
        sampled.add(fam)
        if fam != current:
            if fam in done_fams:
                errs.append(f"{where}: family {fam} is not contiguous")
            if current is not None:
                done_fams.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            errs.append(f"{where}: duplicate series {name}{labels}")
        seen_series.add(key)
        t = types.get(fam, "untyped")
        if t in ("counter", "gauge", "untyped") and name != fam:
            errs.append(f"{where}: {name} in {t} family {fam}")
        if t == "counter" and value is not None and (value < 0 or math.isnan(value)):
            errs.append(f"{where}: negative or NaN counter {name}")
        if t == "histogram":
            if name == fam:
                errs.append(f"{where}: bare sample {name} in histogram family")
                continue
            rest = {k: v for k, v in labels.items() if k != "le"}
            h = hist.setdefault((fam, tuple(sorted(rest.items()))), {"buckets": [], "count": None})
            if name.endswith("_bucket"):
                if "le" not in labels:
                    errs.append(f"{where}: bucket without le")
                    continue
                le = parse_value(labels["le"], where, errs)
                h["buckets"].append((le, value, where))
            elif name.endswith("_count"):
                h["count"] = (value, where)
            elif "le" in labels:
                errs.append(f"{where}: le label on {name}")
    for (fam, lbl), h in hist.items():
        b = h["buckets"]
        if not b:
            errs.append(f"{fam}{dict(lbl)}: histogram without buckets")
            continue
        for (le0, v0, _), (le1, v1, w1) in zip(b, b[1:]):
            if le0 is not None and le1 is not None and not le1 > le0:
                errs.append(f"{w1}: buckets of {fam} not ascending by le")
            if v0 is not None and v1 is not None and v1 < v0:
                errs.append(f"{w1}: buckets of {fam} not cumulative")
        last = b[-1]
        if last[0] != math.inf:
            errs.append(f"{last[2]}: last bucket of {fam} is not le=\"+Inf\"")
        if h["count"] is None:
            errs.append(f"{fam}{dict(lbl)}: histogram without _count")
        elif last[1] != h["count"][0]:
            errs.append(f"{h['count'][1]}: {fam}_count {h['count'][0]} != +Inf bucket {last[1]}")
    return errs


def main():
    if len(sys.argv) != 2:
        print("usage: api_promcheck.py FILE|-", file=sys.stderr)
        return 2
    data = sys.stdin.buffer.read() if sys.argv[1] == "-" else open(sys.argv[1], "rb").read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        print(f"not UTF-8: {e}")
        return 1
    errs = check(text)
    for e in errs:
        print(e)
    nseries = sum(1 for l in text.split("\n") if l and not l.startswith("#"))
    print(f"promcheck: {nseries} samples, {len(errs)} problems")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
