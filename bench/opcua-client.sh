#!/bin/sh
# bench/opcua-client.sh - OPC UA client load: K monitored items at a given
# sampling / publishing interval, against our simulation server
# (`edgeplane opcua-sim`) and against a node-opcua server
# (tests/opcua/client_server.js), in the same run. Reports, for each server,
# the notifications per second delivered to our client (to the application
# callback), the client's CPU time (user + system) per notification, and its
# peak RSS (total and per 1000 items).
#
#   bench/opcua-client.sh [-k ITEMS] [-u UPDATE_MS] [-s SAMPLING_MS]
#                         [-p PUBLISH_MS] [-d SECONDS] [-b EDGEPLANE]
#
# Defaults: 10000 items changing every 1000 ms, sampling 0 (as fast as the
# server samples), publishing 1000 ms, 20 s, ./build/edgeplane.
# Servers listen on free loopback ports chosen at run time and are stopped
# by pid. Needs GNU time (/usr/bin/time) and, for the node-opcua part,
# tests/opcua/node_modules (tools/install-deps.sh test).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
K=10000 U=1000 S=0 P=1000 D=20 BIN="$here/build/edgeplane"
while getopts k:u:s:p:d:b:h o; do
    case $o in
    k) K=$OPTARG ;; u) U=$OPTARG ;; s) S=$OPTARG ;; p) P=$OPTARG ;;
    d) D=$OPTARG ;; b) BIN=$OPTARG ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "bench/opcua-client.sh: $BIN not built" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/opcua-client.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
work=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# run_client NAME URL PATTERN: subscribe to K items, print one result line
run_client() {
    name=$1 url=$2 pattern=$3
    /usr/bin/time -f '%U %S %M' -o "$work/time.$name" \
        "$BIN" opcua subscribe "$url" --pattern "$pattern" --n "$K" \
        --sampling "$S" --interval "$P" --duration "$D" --quiet --stats \
        --timeout 60000 2>"$work/err.$name" >/dev/null || {
        echo "$name: client failed:"; tail -5 "$work/err.$name"; return 0; }
    python3 - "$name" "$K" "$work/err.$name" "$work/time.$name" <<'PY'
import json, sys
name, k, errf, timef = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
st = None
for line in open(errf):
    if line.startswith('{"stats"'):
        st = json.loads(line)["stats"]
u, s, rss = open(timef).read().split()[-3:]
cpu_us = (float(u) + float(s)) * 1e6
n = st["notifications"] if st else 0
print(f"{name:<22} items={k:<7} notif/s={st['notifications_per_s'] if st else 0:>9.0f} "
      f"notifications={n:<9} cpu={cpu_us/1e6:6.2f}s cpu/notif={cpu_us/n if n else 0:6.3f}us "
      f"rss={int(rss)/1024:7.1f}MiB rss/1000 items={int(rss)/(k/1000):8.0f}KiB "
      f"lost={st['lost'] if st else '?'}")
PY
}

echo "OPC UA client benchmark: $K items, update ${U} ms, sampling ${S} ms, publishing ${P} ms, ${D} s"

# our simulation server
if "$BIN" help 2>/dev/null | grep -q opcua-sim; then
    port=$(free_port)
    "$BIN" opcua-sim --listen "opc.tcp://127.0.0.1:$port" --pki "$work/sim-pki" \
        --auto-accept --extra-nodes "$K" --update-ms "$U" >"$work/sim.log" 2>&1 &
    pids="$pids $!"
    i=0
    until "$BIN" opcua endpoints "opc.tcp://127.0.0.1:$port" --timeout 1000 >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "opcua-sim not ready"; tail "$work/sim.log"; exit 1; }
        sleep 0.1
    done
    run_client "edgeplane opcua-sim" "opc.tcp://127.0.0.1:$port" "ns=2;s=Plant.Extra.%u"
else
    echo "edgeplane opcua-sim: not in this build, skipped"
fi

# node-opcua server
if [ -d "$here/tests/opcua/node_modules/node-opcua" ]; then
    node "$here/tests/opcua/client_server.js" --pki "$work/node-pki" --extra "$K" \
        --update-ms "$U" >"$work/node.out" 2>"$work/node.err" &
    pids="$pids $!"
    i=0
    until grep -q READY "$work/node.out"; do
        i=$((i + 1)); [ $i -lt 600 ] || { echo "node-opcua server not ready"; tail "$work/node.err"; exit 1; }
        sleep 0.1
    done
    url=$(sed -n 's/^READY //p' "$work/node.out")
    run_client "node-opcua server" "$url" "ns=1;s=Extra.%u"
else
    echo "node-opcua server: tests/opcua/node_modules missing, skipped"
fi
