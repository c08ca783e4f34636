#!/usr/bin/env bash
# broker-vs-mosquitto.sh - run the same load matrix against the edgeplane
# broker and mosquitto on this machine and print medians, ratios and a
# Markdown table for docs/benchmarks.md.
#
# Both brokers run on loopback ports picked at run time, with equivalent
# queue and in-flight limits; runs alternate between the two brokers so that
# drift on the machine (thermal, other load) hits both alike. Readiness is
# detected by connecting, never by sleeping a fixed time. Everything started
# here is stopped by pid on exit.
#
# Environment:
#   EP_BINARY   edgeplane binary (default build/edgeplane)
#   EP_BENCH    load generator command (default "$EP_BINARY bench")
#   MOSQUITTO   mosquitto binary (default mosquitto from PATH)
#   BENCH_ARGS  extra options for every generator run (e.g. "--threads 1")
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/broker-vs-mosquitto.sh [--quick] [--runs N] [--tests LIST] [--help]

  --quick       short runs (3 s measured after 1 s warm-up) for a smoke test
  --runs N      runs per broker and test; the median is reported (default 3)
  --tests LIST  comma-separated subset of: q0fanin q1fanin q0fanout p99 idle
                (default: all), e.g. --tests p99 --runs 9 for latency alone

Matrix: QoS 0 fan-in 10->1 64 B max rate; QoS 1 fan-in 10->1 window 64;
QoS 0 fan-out 1->100; latency at an open-loop 10 000 msg/s QoS 0 (one
generator thread: on 2 cores a second one competes with the broker and
measures the scheduler, not the broker): p99 as the headline, plus p50,
p99.9 and the p99 from the actual send time (without the generator's own
lateness) from the same runs;
broker RSS per idle connection (10 000 connections, fresh broker each run).
EOF
}

RUNS=3
QUICK=0
ONLY=
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --runs)
        [ $# -ge 2 ] || { echo "--runs needs a number" >&2; exit 2; }
        RUNS=$2
        shift
        ;;
    --runs=*) RUNS=${1#--runs=} ;;
    --tests)
        [ $# -ge 2 ] || { echo "--tests needs a list" >&2; exit 2; }
        ONLY=$2
        shift
        ;;
    --tests=*) ONLY=${1#--tests=} ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$RUNS" in '' | *[!0-9]* | 0) echo "--runs wants a positive integer" >&2; exit 2 ;; esac
for t in ${ONLY//,/ }; do
    case "$t" in q0fanin | q1fanin | q0fanout | p99 | idle) ;; *) echo "unknown test: $t (see --help)" >&2; exit 2 ;; esac
done
# selected ID: true when test ID is to run.
selected() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

EP_BINARY=${EP_BINARY:-build/edgeplane}
EP_BENCH=${EP_BENCH:-"$EP_BINARY bench"}
MOSQUITTO=${MOSQUITTO:-mosquitto}
BENCH_ARGS=${BENCH_ARGS:-}

# Limits equivalent to edgeplane's defaults (docs/broker.md, limits.*):
# max_queued_messages 10000, max_queued_bytes 64 MiB, max_inflight 64.
QUEUED_MESSAGES=10000
QUEUED_BYTES=67108864
INFLIGHT=64

IDLE_CONNS=10000
if [ "$QUICK" = 1 ]; then
    DUR=(--duration 3 --warmup 1)
    HOLD=1
else
    DUR=(--duration 10 --warmup 2)
    HOLD=2
fi

# 10 000 idle connections plus the brokers' own descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + 200)) ]; then
    echo "warning: ulimit -n is $(ulimit -n); the idle-connection test needs $((IDLE_CONNS + 200))" >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ep-vs-mosq.XXXXXX")
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        stop_pid "$p"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# stop_pid PID: TERM, wait up to 5 s, then KILL. Only our own children.
stop_pid() {
    local pid=$1 deadline
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + 5000))
    while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# free_port: a loopback TCP port that no socket uses right now, outside the
# ephemeral range (the generator's 10 000 client sockets live there, and a
# port held by one of them cannot be listened on).
free_port() {
    local lo hi port
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { lo=32768; hi=60999; }
    for _ in $(seq 1 200); do
        if [ "$lo" -gt 11024 ]; then
            port=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 11000)))
        else
            port=$((hi + 1 + (RANDOM * 32768 + RANDOM) % (65535 - hi)))
        fi
        if [ -z "$(ss -Htan "sport = :$port" 2>/dev/null)" ]; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# wait_ready PORT PID: poll until a TCP connect succeeds (10 s at most),
# failing early if the process died.
wait_ready() {
    local port=$1 pid=$2 deadline
    deadline=$(($(now_ms) + 10000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.02
    done
    return 1
}

# start_edgeplane: sets EP_PID/EP_PORT, or returns 1 (and prints why).
start_edgeplane() {
    EP_PID=
    EP_PORT=$(free_port) || return 1
    if [ ! -x "${EP_BINARY%% *}" ] && ! command -v "$EP_BINARY" >/dev/null 2>&1; then
        echo "edgeplane: not available ($EP_BINARY not found)" >&2
        return 1
    fi
    "$EP_BINARY" broker --listen "127.0.0.1:$EP_PORT" --log-level warn \
        >"$WORK/edgeplane.log" 2>&1 &
    EP_PID=$!
    PIDS+=("$EP_PID")
    if ! wait_ready "$EP_PORT" "$EP_PID"; then
        echo "edgeplane: not available (broker did not accept connections on 127.0.0.1:$EP_PORT)" >&2
        sed -n '1,5s/^/  edgeplane: /p' "$WORK/edgeplane.log" >&2
        stop_pid "$EP_PID"
        forget_pid "$EP_PID"
        EP_PID=
        return 1
    fi
}

# start_mosquitto: sets MQ_PID/MQ_PORT, or returns 1.
start_mosquitto() {
    MQ_PID=
    MQ_PORT=$(free_port) || return 1
    if ! command -v "$MOSQUITTO" >/dev/null 2>&1; then
        echo "mosquitto: not available ($MOSQUITTO not found)" >&2
        return 1
    fi
    cat >"$WORK/mosquitto.conf" <<EOF
listener $MQ_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages $QUEUED_MESSAGES
max_queued_bytes $QUEUED_BYTES
max_inflight_messages $INFLIGHT
log_dest stderr
log_type error
log_type warning
EOF
    "$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
    MQ_PID=$!
    PIDS+=("$MQ_PID")
    if ! wait_ready "$MQ_PORT" "$MQ_PID"; then
        echo "mosquitto: not available (did not accept connections on 127.0.0.1:$MQ_PORT)" >&2
        sed -n '1,5s/^/  mosquitto: /p' "$WORK/mosquitto.log" >&2
        stop_pid "$MQ_PID"
        forget_pid "$MQ_PID"
        MQ_PID=
        return 1
    fi
}

# json_field NAME: the numeric value of "NAME" in the JSON line on stdin.
json_field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" | head -n1; }

# bench PORT ARGS...: run the generator, print its JSON line or nothing.
bench() {
    local port=$1 out
    shift
    # shellcheck disable=SC2086 # EP_BENCH and BENCH_ARGS are word lists
    if out=$($EP_BENCH --host 127.0.0.1 --port "$port" --json $BENCH_ARGS "$@" 2>"$WORK/bench.err"); then
        echo "$out" | tail -n1
    else
        sed 's/^/    generator: /' "$WORK/bench.err" >&2
        echo "$out" | tail -n1
    fi
}

median() {
    # shellcheck disable=SC2048,SC2086
    printf '%s\n' $* | awk '/^-?[0-9.]+([eE][-+]?[0-9]+)?$/' | sort -g |
        awk '{v[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

# Tests: id | label | unit | better | generator options | JSON field
TESTS=(
    "q0fanin|QoS 0 fan-in 10→1, 64 B, max rate|msg/s delivered|higher|--scenario fan-in --publishers 10 --subscribers 1 --qos 0 --size 64|delivered_per_s"
    "q1fanin|QoS 1 fan-in 10→1, 64 B, window 64|msg/s delivered|higher|--scenario fan-in --publishers 10 --subscribers 1 --qos 1 --inflight 64 --size 64|delivered_per_s"
    "q0fanout|QoS 0 fan-out 1→100, 64 B, max rate|msg/s delivered|higher|--scenario fan-out --publishers 1 --subscribers 100 --qos 0 --size 64|delivered_per_s"
    "p99|p99 latency, QoS 0 fan-in 10→1 at 10 000 msg/s|µs|lower|--scenario fan-in --publishers 10 --subscribers 1 --qos 0 --size 64 --rate 10000 --threads 1|latency_p99_us"
)

# More figures taken from the same runs as a test: test id | extra id |
# label | unit | better | JSON field.
EXTRAS=(
    "p99|p50|latency p50, same runs|µs|lower|latency_p50_us"
    "p99|p999|latency p99.9, same runs|µs|lower|latency_p999_us"
    "p99|sentp99|latency p99 from the actual send time, same runs|µs|lower|latency_sent_p99_us"
)

declare -A VAL  # VAL[broker.test] = space-separated values
declare -A LOST # lost messages per run, for the loss check

record() { VAL[$1.$2]="${VAL[$1.$2]:-} $3"; }

run_test() { # broker port test-spec
    local broker=$1 port=$2 spec=$3 id label unit better opts field line v lost
    IFS='|' read -r id label unit better opts field <<<"$spec"
    # shellcheck disable=SC2086
    line=$(bench "$port" $opts "${DUR[@]}")
    v=$(echo "$line" | json_field "$field")
    lost=$(echo "$line" | json_field lost)
    [ -n "$v" ] || v=fail
    record "$broker" "$id" "$v"
    LOST[$broker.$id]="${LOST[$broker.$id]:-} ${lost:-?}"
    printf '  %-10s %-48s %14s %s (lost %s)\n' "$broker" "$label" "$v" "$unit" "${lost:-?}"
    local x tid xid xfield
    for x in "${EXTRAS[@]}"; do
        IFS='|' read -r tid xid _ _ _ xfield <<<"$x"
        [ "$tid" = "$id" ] || continue
        v=$(echo "$line" | json_field "$xfield")
        record "$broker" "$xid" "${v:-fail}"
    done
}

run_idle() { # broker
    local broker=$1 line v pid port
    # A fresh instance; the long-running one (EP_PID/MQ_PID) stays as it is.
    local keep_ep_pid=${EP_PID:-} keep_ep_port=${EP_PORT:-}
    local keep_mq_pid=${MQ_PID:-} keep_mq_port=${MQ_PORT:-}
    if [ "$broker" = edgeplane ]; then
        if start_edgeplane; then
            pid=$EP_PID port=$EP_PORT
        else
            pid=
        fi
    else
        if start_mosquitto; then
            pid=$MQ_PID port=$MQ_PORT
        else
            pid=
        fi
    fi
    EP_PID=$keep_ep_pid EP_PORT=$keep_ep_port MQ_PID=$keep_mq_pid MQ_PORT=$keep_mq_port
    if [ -z "$pid" ]; then
        record "$broker" idle fail
        return
    fi
    line=$(bench "$port" --connections "$IDLE_CONNS" --broker-pid "$pid" --duration "$HOLD")
    v=$(echo "$line" | json_field bytes_per_connection)
    [ -n "$v" ] || v=fail
    record "$broker" idle "$v"
    printf '  %-10s %-48s %14s %s\n' "$broker" "RSS per idle connection ($IDLE_CONNS)" "$v" "bytes"
    stop_pid "$pid"
    forget_pid "$pid"
}

MQ_VERSION=$({ "$MOSQUITTO" -h 2>/dev/null || true; } | sed -n 's/^mosquitto version \([0-9.]*\).*/\1/p' | head -n1)
echo "edgeplane vs mosquitto ${MQ_VERSION:-?}: $(nproc) cores, $(uname -sr), $RUNS run(s) each, $([ "$QUICK" = 1 ] && echo quick || echo full) durations"

# Other processes competing for the cores make every figure low and noisy.
LOAD=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if LC_ALL=C awk -v l="$LOAD" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
    echo "warning: load average $LOAD on $(nproc) cores before starting: other processes compete for the CPU, expect low and noisy figures" >&2
fi


start_mosquitto || { echo "cannot run the comparison without mosquitto" >&2; exit 1; }
EP_AVAILABLE=1
start_edgeplane || EP_AVAILABLE=0

for run in $(seq 1 "$RUNS"); do
    echo "run $run/$RUNS"
    # Alternate which broker goes first.
    if [ $((run % 2)) = 1 ]; then order="edgeplane mosquitto"; else order="mosquitto edgeplane"; fi
    for spec in "${TESTS[@]}"; do
        selected "${spec%%|*}" || continue
        for b in $order; do
            if [ "$b" = edgeplane ]; then
                if [ "$EP_AVAILABLE" = 1 ] && kill -0 "$EP_PID" 2>/dev/null; then
                    run_test edgeplane "$EP_PORT" "$spec"
                else
                    record edgeplane "${spec%%|*}" n/a
                    echo "  edgeplane: not available"
                fi
            else
                run_test mosquitto "$MQ_PORT" "$spec"
            fi
        done
    done
    # Memory needs a fresh process: heap grown by the load tests would hide
    # what connections cost.
    selected idle || continue
    for b in $order; do
        if [ "$b" = edgeplane ] && [ "$EP_AVAILABLE" = 0 ]; then
            record edgeplane idle n/a
            continue
        fi
        run_idle "$b"
    done
done

fmt() { # value unit -> human string
    case "$1" in
    n/a | fail | '') echo "${1:-n/a}" ;;
    *) LC_ALL=C awk -v v="$1" 'BEGIN { if (v >= 1000) { s = sprintf("%.0f", v); n = length(s); o = ""; for (i = 1; i <= n; i++) { o = o substr(s, i, 1); if ((n - i) % 3 == 0 && i < n) o = o " " } print o } else if (v == int(v)) printf "%d\n", v; else printf "%.1f\n", v }' ;;
    esac
}

ratio() {
    case "$1$2" in *n/a* | *fail*) echo "n/a"; return ;; esac
    LC_ALL=C awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f×\n", a / b }'
}

echo
echo "medians of $RUNS run(s)"
ROWS=()
SUMMARY=()
for spec in "${TESTS[@]}" "idle|user-space RSS per idle connection ($IDLE_CONNS connections)|bytes|lower||"; do
    SUMMARY+=("$spec")
    for x in "${EXTRAS[@]}"; do
        [ "${x%%|*}" = "${spec%%|*}" ] && SUMMARY+=("${x#*|}")
    done
done
for spec in "${SUMMARY[@]}"; do
    IFS='|' read -r id label unit better _ _ <<<"$spec"
    [ -n "${VAL[mosquitto.$id]:-}" ] || continue # not selected
    e=$(median "${VAL[edgeplane.$id]:-}")
    m=$(median "${VAL[mosquitto.$id]:-}")
    [ "$EP_AVAILABLE" = 1 ] || e=n/a
    r=$(ratio "$e" "$m")
    extra=
    if [ "$id" = q1fanin ]; then
        extra=" lost per run: edgeplane [${LOST[edgeplane.$id]:- n/a} ], mosquitto [${LOST[mosquitto.$id]:- n/a} ]"
    fi
    if [ "$EP_AVAILABLE" = 1 ]; then
        printf '  %-62s edgeplane %12s  mosquitto %12s  %s  edgeplane/mosquitto %s (%s is better)%s\n' \
            "$label" "$(fmt "$e")" "$(fmt "$m")" "$unit" "$r" "$better" "$extra"
    else
        printf '  %-62s edgeplane: not available  mosquitto %12s %s%s\n' "$label" "$(fmt "$m")" "$unit" "$extra"
    fi
    ROWS+=("| $label | $unit | $(fmt "$e") | $(fmt "$m") | $r |")
    if [ "$id" = q1fanin ]; then
        # QoS 1 must not lose anything: show it next to the rate.
        le=$(median "${LOST[edgeplane.$id]:-}")
        lm=$(median "${LOST[mosquitto.$id]:-}")
        [ "$EP_AVAILABLE" = 1 ] || le=n/a
        ROWS+=("| ↳ messages lost per run (should be 0) | messages | $(fmt "$le") | $(fmt "$lm") | |")
    fi
done

echo
echo "Markdown (docs/benchmarks.md):"
echo
echo "| Test | Unit | edgeplane | mosquitto ${MQ_VERSION:-} | edgeplane / mosquitto |"
echo "|---|---|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "_$(nproc) cores, $(uname -sr), load average $LOAD at start, loopback, medians of $RUNS run(s); generator: edgeplane bench; brokers with max_queued_messages $QUEUED_MESSAGES, max_inflight $INFLIGHT, no persistence._"
