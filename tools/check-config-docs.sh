#!/bin/sh
# check-config-docs.sh EDGEPLANE DOC - fails when the generated reference
# table in DOC differs from `EDGEPLANE config doc broker`.
set -eu
bin=$1
doc=$2
expected=$(mktemp)
trap 'rm -f "$expected"' EXIT
sed -n '/^| Key/,$p' "$doc" >"$expected"
if "$bin" config doc broker | diff -u "$expected" -; then
    echo "$doc matches the code"
else
    echo "$doc is out of date: regenerate it with '$bin config doc broker'" >&2
    exit 1
fi
