#!/bin/sh
# Installs the pinned npm peers of the interop suite (package-lock.json)
# into tests/interop/node_modules with `npm ci`, unless that exact lock
# file is already installed. Used by ctest (fixture interop/npm-ci) and by
# run-against-mosquitto.sh.
set -eu
cd "$(dirname "$0")"
stamp=node_modules/.ep-installed-lock.json
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
    echo "npm peers up to date ($(node -p 'require("mqtt/package.json").version' 2>/dev/null || echo '?'))"
    exit 0
fi
npm ci --no-audit --no-fund
cp package-lock.json "$stamp"
