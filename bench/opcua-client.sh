#!/bin/sh
# bench/opcua-client.sh - OPC UA client load: K monitored items, sampling =
# publishing interval, against our simulation server (`edgeplane opcua-sim`)
# and against a node-opcua server (tests/opcua/client_server.js), each
# consumed by our client (ep_uac_bench, src/svc/opcua_client/bench/) and by
# node-opcua's own client (tests/opcua/client_bench.js) in the same run.
# Both clients measure the same three figures the same way:
#
#   notifications/s      items delivered to the application callback
#   CPU us/notification  the client's user+system CPU (getrusage /
#                        process.cpuUsage) over the measured window only --
#                        whole publishing cycles after a warm-up, setup
#                        excluded -- divided by the notifications in it
#   RSS KiB/1000 items   (RSS with the items subscribed - RSS of the idle
#                        connected client) / (K / 1000); node after a full GC
#
# Then our server's capacity: SERVER_ITEMS items every SERVER_INTERVAL ms on
# opcua-sim, consumed by our client, server CPU from /proc/PID/stat.
# Servers run on core 0 (taskset -c 0), clients on core 1. Every figure is
# the median of RUNS runs. Prints a Markdown table and the targets of issue
# 3 section 7.
#
#   bench/opcua-client.sh [-k ITEMS] [-i INTERVAL_MS] [-u UPDATE_MS]
#        [-d SECONDS] [-r RUNS] [-K SERVER_ITEMS] [-I SERVER_INTERVAL_MS]
#        [-b EDGEPLANE] [-c EP_UAC_BENCH]
#
# Defaults: 10000 items, 1000 ms, values changing every INTERVAL_MS / 2, 10 s
# windows, 3 runs, server capacity with 100000 items every 500 ms,
# ./build/edgeplane and ./build/src/svc/opcua_client/ep_uac_bench. The
# node-opcua parts need tests/opcua/node_modules (tools/install-deps.sh
# test); without it they are reported as skipped. Servers listen on free
# loopback ports and are stopped by pid.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
K=10000 I=1000 U= D=10 R=3 K2=100000 I2=500
BIN="$here/build/edgeplane" UB=
while getopts k:i:u:d:r:K:I:b:c:h o; do
    case $o in
    k) K=$OPTARG ;; i) I=$OPTARG ;; u) U=$OPTARG ;; d) D=$OPTARG ;;
    r) R=$OPTARG ;; K) K2=$OPTARG ;; I) I2=$OPTARG ;; b) BIN=$OPTARG ;;
    c) UB=$OPTARG ;;
    *) sed -n '2,32p' "$0"; exit 2 ;;
    esac
done
# values change twice per sampling interval, so that every sample sees a
# change whatever the phase of the server's timers (node-opcua samples each
# item on its own timer)
U=${U:-$((I / 2))}
UB=${UB:-$(dirname "$BIN")/src/svc/opcua_client/ep_uac_bench}
for f in "$BIN" "$UB"; do
    [ -x "$f" ] || { echo "bench/opcua-client.sh: $f not built" >&2; exit 2; }
done
"$BIN" help 2>/dev/null | grep -q opcua-sim ||
    { echo "bench/opcua-client.sh: $BIN has no opcua-sim" >&2; exit 2; }
NODE_OK=0
[ -d "$here/tests/opcua/node_modules/node-opcua" ] && command -v node >/dev/null && NODE_OK=1
SRV_CPU= CLI_CPU=
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SRV_CPU="taskset -c 0" CLI_CPU="taskset -c 1"
fi

work=$(mktemp -d)
SIM= NODESRV=
stop() { # pid
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() { stop "$SIM"; stop "$NODESRV"; rm -rf "$work"; }
trap cleanup EXIT INT TERM

wait_line() { # file pattern
    i=0
    until grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 900 ] || { echo "timeout waiting for '$2' in $1" >&2; tail -5 "$1" >&2; exit 1; }
        sleep 0.1
    done
}

start_sim() { # items update_ms
    $SRV_CPU "$BIN" opcua-sim --listen opc.tcp://127.0.0.1:0 --extra-nodes "$1" \
        --update-ms "$2" --log-level warn >"$work/sim.out" 2>&1 &
    SIM=$!
    wait_line "$work/sim.out" "opcua-sim ready"
    SIM_URL=$(sed -n 's/^opcua-sim ready: //p' "$work/sim.out")
}

start_node_server() { # items update_ms
    $SRV_CPU node "$here/tests/opcua/client_server.js" --pki "$work/node-pki" \
        --extra "$1" --update-ms "$2" >"$work/node.out" 2>"$work/node.err" &
    NODESRV=$!
    wait_line "$work/node.out" "^READY"
    NODE_URL=$(sed -n 's/^READY //p' "$work/node.out")
}

# run_ours TAG URL PATTERN ITEMS INTERVAL SERVER_PID: one JSON line to results
run_ours() {
    if $CLI_CPU "$UB" --url "$2" --pattern "$3" -k "$4" --interval "$5" \
        --seconds "$D" --server-pid "$6" >"$work/one" 2>"$work/one.err"; then
        printf '%s %s\n' "$1" "$(cat "$work/one")" >>"$work/results"
    else
        echo "  $1: ep_uac_bench failed: $(tail -2 "$work/one.err")" >&2
    fi
}

run_node() { # TAG URL PREFIX ITEMS INTERVAL
    if $CLI_CPU node --expose-gc "$here/tests/opcua/client_bench.js" --url "$2" \
        --prefix "$3" -k "$4" --interval "$5" --seconds "$D" \
        >"$work/one" 2>"$work/one.err"; then
        printf '%s %s\n' "$1" "$(tail -1 "$work/one")" >>"$work/results"
    else
        echo "  $1: client_bench.js failed: $(tail -2 "$work/one.err")" >&2
    fi
}

: >"$work/results"
echo "OPC UA client benchmark: $K items, sampling = publishing = $I ms, values" \
     "changing every $U ms, ${D} s windows, median of $R runs" \
     "(servers: ${SRV_CPU:-any core}, clients: ${CLI_CPU:-any core})" >&2

start_sim "$K" "$U"
[ $NODE_OK = 1 ] && start_node_server "$K" "$U"
r=1
while [ $r -le "$R" ]; do
    echo "run $r/$R" >&2
    run_ours "sim/edgeplane" "$SIM_URL" "ns=2;s=Plant.Extra.%u" "$K" "$I" "$SIM"
    if [ $NODE_OK = 1 ]; then
        run_node "sim/node-opcua" "$SIM_URL" "ns=2;s=Plant.Extra." "$K" "$I"
        run_ours "node/edgeplane" "$NODE_URL" "ns=1;s=Extra.%u" "$K" "$I" "$NODESRV"
        run_node "node/node-opcua" "$NODE_URL" "ns=1;s=Extra." "$K" "$I"
    fi
    r=$((r + 1))
done
stop "$SIM"; SIM=
stop "$NODESRV"; NODESRV=

echo "server capacity: $K2 items every $I2 ms" >&2
start_sim "$K2" "$((I2 / 2))"
r=1
while [ $r -le "$R" ]; do
    run_ours "cap/edgeplane" "$SIM_URL" "ns=2;s=Plant.Extra.%u" "$K2" "$I2" "$SIM"
    r=$((r + 1))
done
stop "$SIM"; SIM=

python3 - "$work/results" "$K" "$I" "$K2" "$I2" "$NODE_OK" <<'PY'
import json, statistics, sys
path, k, i, k2, i2, node_ok = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6] == "1"
rows = {}
for line in open(path):
    tag, js = line.split(" ", 1)
    rows.setdefault(tag, []).append(json.loads(js))
def med(tag, key):
    v = [r[key] for r in rows.get(tag, []) if key in r]
    return statistics.median(v) if v else None
def f(x, fmt):
    return "n/a" if x is None else format(x, fmt)
names = {"sim": "edgeplane opcua-sim", "node": "node-opcua 2.186.4 server", "cap": "edgeplane opcua-sim"}
clients = {"edgeplane": "edgeplane (ep_uac)", "node-opcua": "node-opcua 2.186.4"}
print()
print(f"| server | client | items | interval | notifications/s | client CPU µs/notification | client RSS KiB/1000 items | server CPU µs/notification | runs |")
print("|---|---|---|---|---|---|---|---|---|")
for tag in ["sim/edgeplane", "sim/node-opcua", "node/edgeplane", "node/node-opcua", "cap/edgeplane"]:
    if tag not in rows:
        continue
    srv, cli = tag.split("/")
    items, iv = (k2, i2) if srv == "cap" else (k, i)
    scpu = med(tag, "server_cpu_us_per_notification") if cli == "edgeplane" else None
    print(f"| {names[srv]} | {clients[cli]} | {items} | {iv} ms | {f(med(tag, 'notifications_per_s'), '.0f')} "
          f"| {f(med(tag, 'cpu_us_per_notification'), '.3f')} | {f(med(tag, 'rss_per_1000_items_kib'), '.0f')} "
          f"| {f(scpu, '.2f')} | {len(rows[tag])} |")
print()
def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "MISSED")
print("Targets:")
for srv in ["sim", "node"]:
    ours, theirs = med(f"{srv}/edgeplane", "cpu_us_per_notification"), med(f"{srv}/node-opcua", "cpu_us_per_notification")
    if ours is None:
        continue
    ratio = ours / theirs if theirs else None
    print(f"- client CPU per notification on {names[srv]}: {ours:.3f} µs "
          f"(≤ 0.5 µs: {verdict(ours <= 0.5)}); node-opcua {f(theirs, '.3f')} µs, ratio "
          f"{f(ratio, '.3f')} (≤ 1/5: {verdict(None if ratio is None else ratio <= 0.2)})")
mem = [m for m in (med("sim/edgeplane", "rss_per_1000_items_kib"), med("node/edgeplane", "rss_per_1000_items_kib")) if m is not None]
if mem:
    worst = max(mem) / 1000
    print(f"- client memory at {k} items: {worst:.3f} KiB per item "
          f"(≤ 0.3 KiB{'' if k == 10000 else ', target stated at 10 000 items'}: {verdict(worst <= 0.3)})")
cap = med("cap/edgeplane", "notifications_per_s")
if cap is not None:
    c = med("cap/edgeplane", "server_cpu_s")
    share = f", server busy {c / med('cap/edgeplane', 'seconds') * 100:.0f} % of its core" if c is not None else ""
    print(f"- opcua-sim on one core: {cap:.0f} notifications/s delivered "
          f"({k2} items every {i2} ms{share}) (≥ 100 000/s: {verdict(cap >= 100000)})")
if not node_ok:
    print("- node-opcua: tests/opcua/node_modules missing, node-opcua rows skipped")
PY
