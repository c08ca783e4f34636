#!/bin/sh
# install-deps.sh [run|test] - installs the Debian packages (and, for tests,
# the pinned npm packages) that edgeplane needs. Installs only what is
# missing; as non-root it prints the sudo line instead.
set -eu
what=${1:-test}

RUN_PKGS="build-essential cmake pkg-config libssl-dev libyaml-dev libcurl4-openssl-dev libjansson-dev"
TEST_PKGS="$RUN_PKGS clang libclang-rt-14-dev libcmocka-dev cppcheck mosquitto mosquitto-clients python3 python3-paho-mqtt python3-cryptography openssl curl"

case "$what" in
run) pkgs=$RUN_PKGS ;;
test) pkgs=$TEST_PKGS ;;
*) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=""
# Node.js and npm are needed by the test peers (MQTT.js, node-opcua). A
# machine may already have them from another source (a bundled npm), in
# which case Debian's npm package would conflict: check the commands.
if [ "$what" = test ] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
    pkgs="$pkgs nodejs npm"
fi
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing Debian packages:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing
    else
        echo "missing Debian packages:$missing" >&2
        echo "run: sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi

if [ "$what" = test ]; then
    here=$(cd "$(dirname "$0")/.." && pwd)
    for dir in tests/interop tests/opcua; do
        if [ -f "$here/$dir/package-lock.json" ]; then
            lock_sum=$(sha256sum "$here/$dir/package-lock.json" | cut -d' ' -f1)
            stamp="$here/$dir/node_modules/.edgeplane-lock"
            if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
                echo "installing npm packages in $dir (from package-lock.json)"
                (cd "$here/$dir" && npm ci --no-audit --no-fund --loglevel=error)
                echo "$lock_sum" >"$stamp"
            fi
        fi
    done
fi
