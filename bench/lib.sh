# shellcheck shell=bash
# bench/lib.sh - shell functions shared by the broker comparison scripts
# (broker-vs-mosquitto.sh, broker-tls-vs-mosquitto.sh); sourced, not run.
#
# Owns what both scripts do alike: option parsing (--quick, --runs and,
# where the script has test ids, --tests), a scratch directory and the
# pids started (all stopped by pid on exit), loopback ports picked at run
# time, readiness by polling a probe (never a fixed sleep), the generator
# call, medians, ratios and the Markdown table. The calling script defines
# usage() and sets EP_BINARY, EP_BENCH, MOSQUITTO and BENCH_ARGS.

# Limits equivalent to edgeplane's defaults (docs/broker.md, limits.*):
# max_queued_messages 10000, max_queued_bytes 64 MiB, max_inflight 64.
QUEUED_MESSAGES=10000
QUEUED_BYTES=67108864
INFLIGHT=64

# Options every generator run gets after --json (e.g. --cafile for TLS).
BENCH_EXTRA=()

declare -A VAL # VAL[broker.test] = space-separated values

# parse_args ARGS...: sets QUICK, RUNS and ONLY. --tests is accepted when
# the script set TEST_IDS (its test ids, space-separated).
parse_args() {
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
        --tests | --tests=*)
            [ -n "${TEST_IDS:-}" ] || { echo "unknown option: $1 (see --help)" >&2; exit 2; }
            if [ "$1" = --tests ]; then
                [ $# -ge 2 ] || { echo "--tests needs a list" >&2; exit 2; }
                ONLY=$2
                shift
            else
                ONLY=${1#--tests=}
            fi
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
        esac
        shift
    done
    case "$RUNS" in '' | *[!0-9]* | 0) echo "--runs wants a positive integer" >&2; exit 2 ;; esac
    local t
    for t in ${ONLY//,/ }; do
        [[ " $TEST_IDS " == *" $t "* ]] || { echo "unknown test: $t (see --help)" >&2; exit 2; }
    done
}

# selected ID: true when test ID is to run.
selected() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# make_work PREFIX: the scratch directory WORK, removed on exit together
# with every process in PIDS.
make_work() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    PIDS=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        stop_pid "$p"
    done
    rm -rf "$WORK"
}

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

# free_port [NOT]: a loopback TCP port that no socket uses right now, other
# than NOT, outside the ephemeral range (the generator's 10 000 client
# sockets live there, and a port held by one of them cannot be listened on).
# shellcheck disable=SC2120 # NOT is optional
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

# poll_ready MS PID PROBE...: runs PROBE until it succeeds (true), MS
# milliseconds pass or PID dies (false).
poll_ready() {
    local ms=$1 pid=$2 deadline
    shift 2
    deadline=$(($(now_ms) + ms))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        "$@" && return 0
        sleep 0.02
    done
    return 1
}

# tcp_open PORT: true when a TCP connect to 127.0.0.1:PORT succeeds.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# available NAME COMMAND: true when COMMAND can be run, else says why not.
available() {
    [ -x "${2%% *}" ] || command -v "$2" >/dev/null 2>&1 && return 0
    echo "$1: not available ($2 not found)" >&2
    return 1
}

# launch NAME COMMAND...: starts COMMAND in the background with its output
# in $WORK/NAME.log; LAUNCHED is its pid, also kept in PIDS.
launch() {
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    LAUNCHED=$!
    PIDS+=("$LAUNCHED")
}

# launch_failed NAME PID WHY: reports NAME not available because of WHY,
# with the first lines of its log, and stops PID. Returns 1.
launch_failed() {
    echo "$1: not available ($3)" >&2
    sed -n "1,5s/^/  $1: /p" "$WORK/$1.log" >&2
    stop_pid "$2"
    forget_pid "$2"
    return 1
}

# mosquitto_conf: the mosquitto.conf lines both comparisons share (no
# persistence, edgeplane's default limits, warnings and errors on stderr).
mosquitto_conf() {
    cat <<EOF
allow_anonymous true
persistence false
max_queued_messages $QUEUED_MESSAGES
max_queued_bytes $QUEUED_BYTES
max_inflight_messages $INFLIGHT
log_dest stderr
log_type error
log_type warning
EOF
}

# bench PORT ARGS...: run the generator, print its JSON line or nothing.
bench() {
    local port=$1 out
    shift
    # shellcheck disable=SC2086 # EP_BENCH and BENCH_ARGS are word lists
    if out=$($EP_BENCH --host 127.0.0.1 --port "$port" --json ${BENCH_EXTRA[@]+"${BENCH_EXTRA[@]}"} \
        $BENCH_ARGS "$@" 2>"$WORK/bench.err"); then
        echo "$out" | tail -n1
    else
        sed 's/^/    generator: /' "$WORK/bench.err" >&2
        echo "$out" | tail -n1
    fi
}

# json_field NAME: the numeric value of "NAME" in the JSON line on stdin.
json_field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" | head -n1; }
# json_str NAME: the string value of "NAME" in the JSON line on stdin.
json_str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" | head -n1; }

record() { VAL[$1.$2]="${VAL[$1.$2]:-} $3"; }

# start_brokers: the script's start_mosquitto (the comparison needs it)
# and start_edgeplane; EP_AVAILABLE is 0 when edgeplane cannot run.
start_brokers() {
    start_mosquitto || { echo "cannot run the comparison without mosquitto" >&2; exit 1; }
    EP_AVAILABLE=1
    start_edgeplane || EP_AVAILABLE=0
}

# ep_running ID: true when the edgeplane broker is up; otherwise records
# n/a for test ID and says so.
ep_running() {
    [ "$EP_AVAILABLE" = 1 ] && kill -0 "$EP_PID" 2>/dev/null && return 0
    record edgeplane "$1" n/a
    echo "  edgeplane: not available"
    return 1
}

# run_order RUN: the brokers in the order run RUN measures them; it
# alternates so that drift on the machine hits both alike.
run_order() {
    if [ $(($1 % 2)) = 1 ]; then echo "edgeplane mosquitto"; else echo "mosquitto edgeplane"; fi
}

median() {
    # shellcheck disable=SC2048,SC2086
    printf '%s\n' $* | awk '/^-?[0-9.]+([eE][-+]?[0-9]+)?$/' | sort -g |
        awk '{v[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

fmt() { # value -> human string
    case "$1" in
    n/a | fail | '') echo "${1:-n/a}" ;;
    *) LC_ALL=C awk -v v="$1" 'BEGIN { if (v >= 1000) { s = sprintf("%.0f", v); n = length(s); o = ""; for (i = 1; i <= n; i++) { o = o substr(s, i, 1); if ((n - i) % 3 == 0 && i < n) o = o " " } print o } else if (v == int(v)) printf "%d\n", v; else printf "%.1f\n", v }' ;;
    esac
}

ratio() {
    case "$1$2" in *n/a* | *fail*) echo "n/a"; return ;; esac
    LC_ALL=C awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f×\n", a / b }'
}

# summarise ID: E and M, the medians of test ID for edgeplane and
# mosquitto, and R, their ratio.
summarise() {
    E=$(median "${VAL[edgeplane.$1]:-}")
    M=$(median "${VAL[mosquitto.$1]:-}")
    [ "$EP_AVAILABLE" = 1 ] || E=n/a
    R=$(ratio "$E" "$M")
}

# table_row LABEL UNIT: adds the Markdown row of the last summarise.
table_row() { ROWS+=("| $1 | $2 | $(fmt "$E") | $(fmt "$M") | $R |"); }

# mosquitto_version: sets MQ_VERSION (empty when unknown).
mosquitto_version() {
    MQ_VERSION=$({ "$MOSQUITTO" -h 2>/dev/null || true; } | sed -n 's/^mosquitto version \([0-9.]*\).*/\1/p' | head -n1)
}

# banner WHAT: the first line of the output; WHAT follows "mosquitto X.Y".
banner() {
    echo "edgeplane vs mosquitto ${MQ_VERSION:-?}$1: $(nproc) cores, $(uname -sr), $RUNS run(s) each, $([ "$QUICK" = 1 ] && echo quick || echo full) durations"
}

# check_load: sets LOAD; warns when other processes compete for the cores
# (they make every figure low and noisy).
check_load() {
    LOAD=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
    if LC_ALL=C awk -v l="$LOAD" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
        echo "warning: load average $LOAD on $(nproc) cores before starting: other processes compete for the CPU, expect low and noisy figures" >&2
    fi
}

# print_markdown FOOTER: the table of ROWS for docs/benchmarks.md.
print_markdown() {
    echo
    echo "Markdown (docs/benchmarks.md):"
    echo
    echo "| Test | Unit | edgeplane | mosquitto ${MQ_VERSION:-} | edgeplane / mosquitto |"
    echo "|---|---|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "$1"
}
