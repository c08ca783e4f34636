#!/bin/sh
# check.sh - static checks run by `make test`: a clang -Werror build of the
# whole tree, cppcheck on our sources, and the layering rule
# (core <- codec <- svc <- cli: a lower layer never includes a higher one).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

echo "check: layering"
bad=0
if grep -rn --include='*.[ch]' -E '#include "(codec|svc|cli)/' src/core; then bad=1; fi
if grep -rn --include='*.[ch]' -E '#include "(svc|cli)/' src/codec; then bad=1; fi
if grep -rn --include='*.[ch]' -E '#include "cli/' src/svc; then bad=1; fi
if [ $bad -ne 0 ]; then echo "check: layering violated (see above)" >&2; exit 1; fi

echo "check: clang-format"
unformatted=""
for f in $(git ls-files '*.c' '*.h' | grep -v '^src/codec/opcua/gen/'); do
    clang-format "$f" | cmp -s - "$f" || unformatted="$unformatted $f"
done
if [ -n "$unformatted" ]; then
    echo "check: not formatted with .clang-format (run clang-format -i):$unformatted" >&2
    exit 1
fi

echo "check: cppcheck"
cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
    --inline-suppr --suppress=missingIncludeSystem -I src -I include \
    -D__GNUC__ --std=c11 src

echo "check: clang -Werror build"
CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-clang -j "$(nproc)" >/dev/null 2>build-clang/errors.txt || { cat build-clang/errors.txt >&2; exit 1; }
echo "check: ok"
