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
measures the scheduler, not the broker; it busy-polls with --spin-us 200
instead of sleeping between sends, because a sleep of 100 us can end a
millisecond late on a virtual machine): p99 as the headline, plus p50,
p99.9 and the p99 from the actual send time (without the generator's own
lateness) from the same runs;
broker RSS per idle connection (10 000 connections, fresh broker each run).
EOF
}

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TEST_IDS="q0fanin q1fanin q0fanout p99 idle"
parse_args "$@"

EP_BINARY=${EP_BINARY:-build/edgeplane}
EP_BENCH=${EP_BENCH:-"$EP_BINARY bench"}
MOSQUITTO=${MOSQUITTO:-mosquitto}
BENCH_ARGS=${BENCH_ARGS:-}

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

make_work ep-vs-mosq

# start_edgeplane: sets EP_PID/EP_PORT, or returns 1 (and prints why).
start_edgeplane() {
    EP_PID=
    EP_PORT=$(free_port) || return 1
    available edgeplane "$EP_BINARY" || return 1
    launch edgeplane "$EP_BINARY" broker --listen "127.0.0.1:$EP_PORT" --log-level warn
    EP_PID=$LAUNCHED
    wait_ready "$EP_PORT" "$EP_PID" && return 0
    launch_failed edgeplane "$EP_PID" "broker did not accept connections on 127.0.0.1:$EP_PORT"
    EP_PID=
    return 1
}

# wait_ready PORT PID: until a TCP connect succeeds (10 s at most), failing
# early if the process died.
wait_ready() { poll_ready 10000 "$2" tcp_open "$1"; }

# start_mosquitto: sets MQ_PID/MQ_PORT, or returns 1.
start_mosquitto() {
    MQ_PID=
    MQ_PORT=$(free_port) || return 1
    available mosquitto "$MOSQUITTO" || return 1
    { echo "listener $MQ_PORT 127.0.0.1"; mosquitto_conf; } >"$WORK/mosquitto.conf"
    launch mosquitto "$MOSQUITTO" -c "$WORK/mosquitto.conf"
    MQ_PID=$LAUNCHED
    wait_ready "$MQ_PORT" "$MQ_PID" && return 0
    launch_failed mosquitto "$MQ_PID" "did not accept connections on 127.0.0.1:$MQ_PORT"
    MQ_PID=
    return 1
}

# Tests: id | label | unit | better | generator options | JSON field
TESTS=(
    "q0fanin|QoS 0 fan-in 10→1, 64 B, max rate|msg/s delivered|higher|--scenario fan-in --publishers 10 --subscribers 1 --qos 0 --size 64|delivered_per_s"
    "q1fanin|QoS 1 fan-in 10→1, 64 B, window 64|msg/s delivered|higher|--scenario fan-in --publishers 10 --subscribers 1 --qos 1 --inflight 64 --size 64|delivered_per_s"
    "q0fanout|QoS 0 fan-out 1→100, 64 B, max rate|msg/s delivered|higher|--scenario fan-out --publishers 1 --subscribers 100 --qos 0 --size 64|delivered_per_s"
    "p99|p99 latency, QoS 0 fan-in 10→1 at 10 000 msg/s|µs|lower|--scenario fan-in --publishers 10 --subscribers 1 --qos 0 --size 64 --rate 10000 --threads 1 --spin-us 200|latency_p99_us"
)

# More figures taken from the same runs as a test: test id | extra id |
# label | unit | better | JSON field.
EXTRAS=(
    "p99|p50|latency p50, same runs|µs|lower|latency_p50_us"
    "p99|p999|latency p99.9, same runs|µs|lower|latency_p999_us"
    "p99|sentp99|latency p99 from the actual send time, same runs|µs|lower|latency_sent_p99_us"
)

declare -A LOST # lost messages per run, for the loss check

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

mosquitto_version
banner ""
check_load

start_brokers

for run in $(seq 1 "$RUNS"); do
    echo "run $run/$RUNS"
    order=$(run_order "$run")
    for spec in "${TESTS[@]}"; do
        selected "${spec%%|*}" || continue
        for b in $order; do
            if [ "$b" = edgeplane ]; then
                ep_running "${spec%%|*}" && run_test edgeplane "$EP_PORT" "$spec"
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
    summarise "$id"
    extra=
    if [ "$id" = q1fanin ]; then
        extra=" lost per run: edgeplane [${LOST[edgeplane.$id]:- n/a} ], mosquitto [${LOST[mosquitto.$id]:- n/a} ]"
    fi
    if [ "$EP_AVAILABLE" = 1 ]; then
        printf '  %-62s edgeplane %12s  mosquitto %12s  %s  edgeplane/mosquitto %s (%s is better)%s\n' \
            "$label" "$(fmt "$E")" "$(fmt "$M")" "$unit" "$R" "$better" "$extra"
    else
        printf '  %-62s edgeplane: not available  mosquitto %12s %s%s\n' "$label" "$(fmt "$M")" "$unit" "$extra"
    fi
    table_row "$label" "$unit"
    if [ "$id" = q1fanin ]; then
        # QoS 1 must not lose anything: show it next to the rate.
        le=$(median "${LOST[edgeplane.$id]:-}")
        lm=$(median "${LOST[mosquitto.$id]:-}")
        [ "$EP_AVAILABLE" = 1 ] || le=n/a
        ROWS+=("| ↳ messages lost per run (should be 0) | messages | $(fmt "$le") | $(fmt "$lm") | |")
    fi
done

print_markdown "_$(nproc) cores, $(uname -sr), load average $LOAD at start, loopback, medians of $RUNS run(s); generator: edgeplane bench; brokers with max_queued_messages $QUEUED_MESSAGES, max_inflight $INFLIGHT, no persistence._"
