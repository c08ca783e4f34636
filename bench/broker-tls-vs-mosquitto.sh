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

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_args "$@"

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

make_work ep-tls-vs-mosq
chmod 755 "$WORK" # mosquitto drops to its own user and must read the keys
BENCH_EXTRA=(--cafile "$WORK/ca.pem")

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

# tls_ready PORT: true when a TLS handshake + CONNACK succeeds.
tls_ready() {
    # shellcheck disable=SC2086
    $EP_BENCH --host 127.0.0.1 --port "$1" --cafile "$WORK/ca.pem" --scenario handshake \
        --connectors 1 --duration 0.05 --warmup 0 --json >/dev/null 2>&1
}

# wait_tls PORT PID: until tls_ready (15 s at most), failing early if the
# process died.
wait_tls() { poll_ready 15000 "$2" tls_ready "$1"; }

start_edgeplane() {
    EP_PID=
    EP_EC=$(free_port) && EP_RSA=$(free_port "$EP_EC") || return 1
    available edgeplane "$EP_BINARY" || return 1
    cat >"$WORK/edgeplane.yaml" <<EOF
listeners:
  - address: 127.0.0.1:$EP_EC
    tls: {cert: $WORK/server-ec.pem, key: $WORK/server-ec.key}
  - address: 127.0.0.1:$EP_RSA
    tls: {cert: $WORK/server-rsa.pem, key: $WORK/server-rsa.key}
EOF
    launch edgeplane "$EP_BINARY" broker --config "$WORK/edgeplane.yaml" --log-level warn
    EP_PID=$LAUNCHED
    wait_tls "$EP_EC" "$EP_PID" && wait_tls "$EP_RSA" "$EP_PID" && return 0
    launch_failed edgeplane "$EP_PID" "no TLS handshake on 127.0.0.1:$EP_EC/$EP_RSA"
    EP_PID=
    return 1
}

start_mosquitto() {
    MQ_PID=
    MQ_EC=$(free_port) && MQ_RSA=$(free_port "$MQ_EC") || return 1
    available mosquitto "$MOSQUITTO" || return 1
    {
        mosquitto_conf
        cat <<EOF
set_tcp_nodelay $MOSQ_NODELAY
listener $MQ_EC 127.0.0.1
certfile $WORK/server-ec.pem
keyfile $WORK/server-ec.key
listener $MQ_RSA 127.0.0.1
certfile $WORK/server-rsa.pem
keyfile $WORK/server-rsa.key
EOF
    } >"$WORK/mosquitto.conf"
    launch mosquitto "$MOSQUITTO" -c "$WORK/mosquitto.conf"
    MQ_PID=$LAUNCHED
    wait_tls "$MQ_EC" "$MQ_PID" && wait_tls "$MQ_RSA" "$MQ_PID" && return 0
    launch_failed mosquitto "$MQ_PID" "no TLS handshake on 127.0.0.1:$MQ_EC/$MQ_RSA"
    MQ_PID=
    return 1
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

declare -A P99 ERR

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

mosquitto_version
OSSL=$(openssl version 2>/dev/null | cut -d' ' -f1-2)
banner " over TLS ($OSSL)"
check_load

make_pki
start_brokers

for run in $(seq 1 "$RUNS"); do
    echo "run $run/$RUNS (load average $(cut -d' ' -f1 /proc/loadavg))"
    order=$(run_order "$run")
    for spec in "${TESTS[@]}"; do
        for b in $order; do
            [ "$b" = mosquitto ] || ep_running "${spec%%|*}" || continue
            run_test "$b" "$spec"
        done
    done
done

echo
echo "medians of $RUNS run(s) (higher is better)"
ROWS=()
for spec in "${TESTS[@]}"; do
    IFS='|' read -r id label _ unit _ field <<<"$spec"
    summarise "$id"
    extra=
    if [ "$field" = handshakes_per_s ]; then
        extra=" p99 µs: edgeplane $(fmt "$(median "${P99[edgeplane.$id]:-}")"), mosquitto $(fmt "$(median "${P99[mosquitto.$id]:-}")"); errors per run: edgeplane [${ERR[edgeplane.$id]:- n/a} ], mosquitto [${ERR[mosquitto.$id]:- n/a} ]"
    fi
    printf '  %-56s edgeplane %10s  mosquitto %10s  %s  edgeplane/mosquitto %s\n   %s\n' \
        "$label" "$(fmt "$E")" "$(fmt "$M")" "$unit" "$R" "$extra"
    table_row "$label" "$unit"
done

print_markdown "_$(nproc) cores, $(uname -sr), $OSSL, load average $LOAD at start, loopback, medians of $RUNS run(s); generator: edgeplane bench (closed loop, full handshakes); mosquitto with set_tcp_nodelay $MOSQ_NODELAY._"
