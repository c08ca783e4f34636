#!/usr/bin/env bash
# broker-tls-vs-mosquitto.sh - TLS handshakes per second and QoS 0
# throughput over TLS, edgeplane broker against mosquitto on this machine;
# prints medians, ratios and a Markdown table for docs/benchmarks.md.
#
# A throw-away PKI is made per run with the openssl command: one CA and two
# server certificates for 127.0.0.1/localhost, one with an ECDSA P-256 key
# and one with an RSA 2048 key. Each broker gets one TLS listener per key,
# with the same certificate and key files and both brokers' default
# protocol versions and ciphers (OpenSSL's). The generator picks the TLS
# version per test. Ports are picked at run time; readiness is a completed
# TLS handshake, never a fixed sleep; runs alternate between the brokers.
# Everything started here is stopped by pid on exit.
#
# Environment:
#   EP_BINARY      edgeplane binary (default build/edgeplane)
#   EP_BENCH       load generator command (default "$EP_BINARY bench")
#   MOSQUITTO      mosquitto binary (default mosquitto from PATH)
#   MOSQ_NODELAY   "true" (default) sets mosquitto's set_tcp_nodelay, as
#                  edgeplane always does; "false" keeps mosquitto's default
#                  (Nagle on: CONNACK then waits for the ACK of the TLS 1.3
#                  session tickets, a delayed-ACK stall of ~40 ms)
#   BENCH_ARGS     extra options for every generator run
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/broker-tls-vs-mosquitto.sh [--quick] [--runs N] [--help]

  --quick    short runs (2 s measured after 1 s warm-up) for a smoke test
  --runs N   runs per broker and test; the median is reported (default 3)

Matrix (closed loop, full handshakes, no session resumption):
  handshakes/s, 10 connectors, TLS 1.3 and TLS 1.2, ECDSA P-256 and RSA 2048
  server keys (TCP connect + TLS handshake + CONNECT/CONNACK + DISCONNECT);
  QoS 0 fan-in 10 -> 1, 64 B, max rate, over TLS 1.3 (ECDSA): msg/s
  delivered.
EOF
}

RUNS=3
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --runs)
        [ $# -ge 2 ] || { echo "--runs needs a number" >&2; exit 2; }
        RUNS=$2
        shift
        ;;
    --runs=*) RUNS=${1#--runs=} ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$RUNS" in '' | *[!0-9]* | 0) echo "--runs wants a positive integer" >&2; exit 2 ;; esac

EP_BINARY=${EP_BINARY:-build/edgeplane}
EP_BENCH=${EP_BENCH:-"$EP_BINARY bench"}
MOSQUITTO=${MOSQUITTO:-mosquitto}
MOSQ_NODELAY=${MOSQ_NODELAY:-true}
BENCH_ARGS=${BENCH_ARGS:-}

if [ "$QUICK" = 1 ]; then
    DUR=(--duration 2 --warmup 1)
else
    DUR=(--duration 10 --warmup 2)
fi

command -v openssl >/dev/null || { echo "the openssl command is needed for the certificates" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ep-tls-vs-mosq.XXXXXX")
chmod 755 "$WORK" # mosquitto drops to its own user and must read the keys
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

# free_port [NOT]: a loopback TCP port no socket uses, outside the
# ephemeral range, other than NOT.
free_port() {
    local lo hi port
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { lo=32768; hi=60999; }
    for _ in $(seq 1 200); do
        if [ "$lo" -gt 11024 ]; then
            port=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 11000)))
        else
            port=$((hi + 1 + (RANDOM * 32768 + RANDOM) % (65535 - hi)))
        fi
        [ "$port" != "${1:-}" ] || continue
        if [ -z "$(ss -Htan "sport = :$port" 2>/dev/null)" ]; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# make_pki: CA, then one server certificate per key type (ec, rsa).
make_pki() {
    local k
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -subj "/CN=bench CA" -days 2 \
        -addext basicConstraints=critical,CA:TRUE 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$WORK/ext.cnf"
    for k in ec rsa; do
        if [ "$k" = ec ]; then
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -keyout "$WORK/server-$k.key" -out "$WORK/server-$k.csr" -subj "/CN=localhost" 2>/dev/null
        else
            openssl req -new -newkey rsa:2048 -nodes \
                -keyout "$WORK/server-$k.key" -out "$WORK/server-$k.csr" -subj "/CN=localhost" 2>/dev/null
        fi
        openssl x509 -req -in "$WORK/server-$k.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
            -CAcreateserial -days 2 -extfile "$WORK/ext.cnf" -out "$WORK/server-$k.pem" 2>/dev/null
    done
    chmod 644 "$WORK"/*.pem "$WORK"/*.key
}

# bench PORT ARGS...: run the generator, print its JSON line or nothing.
bench() {
    local port=$1 out
    shift
    # shellcheck disable=SC2086 # EP_BENCH and BENCH_ARGS are word lists
    if out=$($EP_BENCH --host 127.0.0.1 --port "$port" --json --cafile "$WORK/ca.pem" $BENCH_ARGS "$@" 2>"$WORK/bench.err"); then
        echo "$out" | tail -n1
    else
        sed 's/^/    generator: /' "$WORK/bench.err" >&2
        echo "$out" | tail -n1
    fi
}

# wait_tls PORT PID: until a TLS handshake + CONNACK succeeds (15 s at most).
wait_tls() {
    local port=$1 pid=$2 deadline
    deadline=$(($(now_ms) + 15000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        # shellcheck disable=SC2086
        if $EP_BENCH --host 127.0.0.1 --port "$port" --cafile "$WORK/ca.pem" --scenario handshake \
            --connectors 1 --duration 0.05 --warmup 0 --json >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

start_edgeplane() {
    EP_PID=
    EP_EC=$(free_port) && EP_RSA=$(free_port "$EP_EC") || return 1
    if [ ! -x "${EP_BINARY%% *}" ] && ! command -v "$EP_BINARY" >/dev/null 2>&1; then
        echo "edgeplane: not available ($EP_BINARY not found)" >&2
        return 1
    fi
    cat >"$WORK/edgeplane.yaml" <<EOF
listeners:
  - address: 127.0.0.1:$EP_EC
    tls: {cert: $WORK/server-ec.pem, key: $WORK/server-ec.key}
  - address: 127.0.0.1:$EP_RSA
    tls: {cert: $WORK/server-rsa.pem, key: $WORK/server-rsa.key}
EOF
    "$EP_BINARY" broker --config "$WORK/edgeplane.yaml" --log-level warn >"$WORK/edgeplane.log" 2>&1 &
    EP_PID=$!
    PIDS+=("$EP_PID")
    if ! wait_tls "$EP_EC" "$EP_PID" || ! wait_tls "$EP_RSA" "$EP_PID"; then
        echo "edgeplane: not available (no TLS handshake on 127.0.0.1:$EP_EC/$EP_RSA)" >&2
        sed -n '1,5s/^/  edgeplane: /p' "$WORK/edgeplane.log" >&2
        stop_pid "$EP_PID"
        EP_PID=
        return 1
    fi
}

start_mosquitto() {
    MQ_PID=
    MQ_EC=$(free_port) && MQ_RSA=$(free_port "$MQ_EC") || return 1
    command -v "$MOSQUITTO" >/dev/null 2>&1 || { echo "mosquitto: not available ($MOSQUITTO not found)" >&2; return 1; }
    cat >"$WORK/mosquitto.conf" <<EOF
allow_anonymous true
persistence false
set_tcp_nodelay $MOSQ_NODELAY
max_queued_messages 10000
max_queued_bytes 67108864
max_inflight_messages 64
log_dest stderr
log_type error
log_type warning
listener $MQ_EC 127.0.0.1
certfile $WORK/server-ec.pem
keyfile $WORK/server-ec.key
listener $MQ_RSA 127.0.0.1
certfile $WORK/server-rsa.pem
keyfile $WORK/server-rsa.key
EOF
    "$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
    MQ_PID=$!
    PIDS+=("$MQ_PID")
    if ! wait_tls "$MQ_EC" "$MQ_PID" || ! wait_tls "$MQ_RSA" "$MQ_PID"; then
        echo "mosquitto: not available (no TLS handshake on 127.0.0.1:$MQ_EC/$MQ_RSA)" >&2
        sed -n '1,5s/^/  mosquitto: /p' "$WORK/mosquitto.log" >&2
        stop_pid "$MQ_PID"
        MQ_PID=
        return 1
    fi
}

json_field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" | head -n1; }
json_str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" | head -n1; }

median() {
    # shellcheck disable=SC2048,SC2086
    printf '%s\n' $* | awk '/^-?[0-9.]+([eE][-+]?[0-9]+)?$/' | sort -g |
        awk '{v[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

# Tests: id | label | key | unit | generator options | JSON field
HS=(--scenario handshake --connectors 10)
TESTS=(
    "hs13ec|handshakes/s, TLS 1.3, ECDSA P-256, 10 connectors|ec|handshakes/s|${HS[*]} --tls-version 1.3|handshakes_per_s"
    "hs12ec|handshakes/s, TLS 1.2, ECDSA P-256, 10 connectors|ec|handshakes/s|${HS[*]} --tls-version 1.2|handshakes_per_s"
    "hs13rsa|handshakes/s, TLS 1.3, RSA 2048, 10 connectors|rsa|handshakes/s|${HS[*]} --tls-version 1.3|handshakes_per_s"
    "hs12rsa|handshakes/s, TLS 1.2, RSA 2048, 10 connectors|rsa|handshakes/s|${HS[*]} --tls-version 1.2|handshakes_per_s"
    "q0fanin|QoS 0 fan-in 10→1, 64 B, max rate, TLS 1.3 ECDSA|ec|msg/s delivered|--scenario fan-in --publishers 10 --subscribers 1 --qos 0 --size 64 --tls-version 1.3|delivered_per_s"
)

declare -A VAL P99 ERR

record() { VAL[$1.$2]="${VAL[$1.$2]:-} $3"; }

run_test() { # broker test-spec
    local broker=$1 spec=$2 id label key unit opts field line v port p99 err tls
    IFS='|' read -r id label key unit opts field <<<"$spec"
    if [ "$broker" = edgeplane ]; then
        [ "$key" = ec ] && port=$EP_EC || port=$EP_RSA
    else
        [ "$key" = ec ] && port=$MQ_EC || port=$MQ_RSA
    fi
    # shellcheck disable=SC2086
    line=$(bench "$port" $opts "${DUR[@]}")
    v=$(echo "$line" | json_field "$field")
    [ -n "$v" ] || v=fail
    record "$broker" "$id" "$v"
    p99=$(echo "$line" | json_field handshake_p99_us)
    err=$(echo "$line" | json_field errors)
    [ -n "$err" ] || err=$(echo "$line" | json_field lost)
    tls=$(echo "$line" | json_str tls)
    P99[$broker.$id]="${P99[$broker.$id]:-} ${p99:-}"
    ERR[$broker.$id]="${ERR[$broker.$id]:-} ${err:-?}"
    printf '  %-10s %-54s %12s %s%s (%s %s; %s)\n' "$broker" "$label" "$v" "$unit" \
        "${p99:+, p99 ${p99} µs}" "$([ "$field" = handshakes_per_s ] && echo errors || echo lost)" \
        "${err:-?}" "${tls:-?}"
}

MQ_VERSION=$({ "$MOSQUITTO" -h 2>/dev/null || true; } | sed -n 's/^mosquitto version \([0-9.]*\).*/\1/p' | head -n1)
OSSL=$(openssl version 2>/dev/null | cut -d' ' -f1-2)
echo "edgeplane vs mosquitto ${MQ_VERSION:-?} over TLS ($OSSL): $(nproc) cores, $(uname -sr), $RUNS run(s) each, $([ "$QUICK" = 1 ] && echo quick || echo full) durations"
LOAD=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if LC_ALL=C awk -v l="$LOAD" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
    echo "warning: load average $LOAD on $(nproc) cores before starting: other processes compete for the CPU, expect low and noisy figures" >&2
fi

make_pki
start_mosquitto || { echo "cannot run the comparison without mosquitto" >&2; exit 1; }
EP_AVAILABLE=1
start_edgeplane || EP_AVAILABLE=0

for run in $(seq 1 "$RUNS"); do
    echo "run $run/$RUNS (load average $(cut -d' ' -f1 /proc/loadavg))"
    if [ $((run % 2)) = 1 ]; then order="edgeplane mosquitto"; else order="mosquitto edgeplane"; fi
    for spec in "${TESTS[@]}"; do
        for b in $order; do
            if [ "$b" = edgeplane ] && { [ "$EP_AVAILABLE" = 0 ] || ! kill -0 "$EP_PID" 2>/dev/null; }; then
                record edgeplane "${spec%%|*}" n/a
                echo "  edgeplane: not available"
                continue
            fi
            run_test "$b" "$spec"
        done
    done
done

fmt() {
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
echo "medians of $RUNS run(s) (higher is better)"
ROWS=()
for spec in "${TESTS[@]}"; do
    IFS='|' read -r id label _ unit _ field <<<"$spec"
    e=$(median "${VAL[edgeplane.$id]:-}")
    m=$(median "${VAL[mosquitto.$id]:-}")
    [ "$EP_AVAILABLE" = 1 ] || e=n/a
    r=$(ratio "$e" "$m")
    extra=
    if [ "$field" = handshakes_per_s ]; then
        extra=" p99 µs: edgeplane $(fmt "$(median "${P99[edgeplane.$id]:-}")"), mosquitto $(fmt "$(median "${P99[mosquitto.$id]:-}")"); errors per run: edgeplane [${ERR[edgeplane.$id]:- n/a} ], mosquitto [${ERR[mosquitto.$id]:- n/a} ]"
    fi
    printf '  %-56s edgeplane %10s  mosquitto %10s  %s  edgeplane/mosquitto %s\n   %s\n' \
        "$label" "$(fmt "$e")" "$(fmt "$m")" "$unit" "$r" "$extra"
    ROWS+=("| $label | $unit | $(fmt "$e") | $(fmt "$m") | $r |")
done

echo
echo "Markdown (docs/benchmarks.md):"
echo
echo "| Test | Unit | edgeplane | mosquitto ${MQ_VERSION:-} | edgeplane / mosquitto |"
echo "|---|---|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "_$(nproc) cores, $(uname -sr), $OSSL, load average $LOAD at start, loopback, medians of $RUNS run(s); generator: edgeplane bench (closed loop, full handshakes); mosquitto with set_tcp_nodelay $MOSQ_NODELAY._"
