#!/bin/sh
# opcua-server.sh - notifications/s delivered to one node-opcua client with
# K monitored items (sampling = publishing = 1 s, all values changing every
# second): `edgeplane opcua-sim` vs a node-opcua server with the same K
# variables, and each server's CPU microseconds per notification delivered.
#
# usage: bench/opcua-server.sh [K] [SECONDS]   (default 100000 10)
# needs: build/edgeplane (EDGEPLANE=path to override), node, and
# tests/opcua/node_modules (npm ci in tests/opcua).
set -eu
K=${1:-100000}
SECS=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EP=${EDGEPLANE:-$ROOT/build/edgeplane}
UA=$ROOT/tests/opcua
TMP=$(mktemp -d)
trap 'kill $SIM $NODESRV 2>/dev/null || true; rm -rf "$TMP"' EXIT INT TERM
SIM= NODESRV=

wait_line() { # file pattern
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 600 ] && { echo "timeout waiting for $2" >&2; exit 1; }
        sleep 0.1
    done
}

"$EP" opcua-sim --listen opc.tcp://127.0.0.1:0 --extra-nodes "$K" --update-ms 1000 \
    --log-level warn > "$TMP/sim.out" &
SIM=$!
wait_line "$TMP/sim.out" "opcua-sim ready"
URL=$(sed -n 's/^opcua-sim ready: //p' "$TMP/sim.out")
R1=$(cd "$UA" && node server_bench.js --url "$URL" --prefix "ns=2;s=Plant.Extra." -k "$K" \
    --seconds "$SECS" --pid $SIM 2>/dev/null | sed -n "s/^RESULT //p")
echo "edgeplane opcua-sim: $R1"
kill $SIM; SIM=

(cd "$UA" && node client_server.js --pki "$TMP/pki" --extra "$K" --update-ms 1000) > "$TMP/node.out" &
NODESRV=$!
wait_line "$TMP/node.out" "READY"
URL=$(sed -n 's/^READY //p' "$TMP/node.out")
R2=$(cd "$UA" && node server_bench.js --url "$URL" --prefix "ns=1;s=Extra." -k "$K" \
    --seconds "$SECS" --pid $NODESRV 2>/dev/null | sed -n "s/^RESULT //p")
echo "node-opcua server:   $R2"
