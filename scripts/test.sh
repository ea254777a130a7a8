#!/usr/bin/env bash
# The README's test command and what CI runs (.ci/run): installs and starts
# the real servers that some tests need, each on a free loopback port under
# a scratch directory, exports their addresses, then runs every test.
#
# Each server has a file in scripts/services/*.sh that defines
# `service_install` (Debian/PyPI/npm packages, idempotent) and
# `service_start` (start it, export its address, register a stop command
# with `on_exit`). Set ACD_SERVICES=none to run only the tests that need no
# outside server (the others then skip, or fail when CI is set).
set -euo pipefail
cd "$(dirname "$0")/.."

ACD_SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/acd-services.XXXXXX")"
export ACD_SCRATCH
STOPS=()
on_exit() { STOPS+=("$1"); }
cleanup() {
    local i
    for ((i = ${#STOPS[@]} - 1; i >= 0; i--)); do eval "${STOPS[i]}" || true; done
    rm -rf "$ACD_SCRATCH" 2>/dev/null || true
}
trap cleanup EXIT

# A free TCP port on 127.0.0.1 (the kernel picks it; the small race until
# the service binds it is accepted in tests).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# apt-get update once per run, and only when something must be installed.
APT_UPDATED=0
apt_install() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    if [ "$APT_UPDATED" -eq 0 ]; then
        $sudo apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# What the build needs beyond a Rust toolchain and gcc: OpenSSL's headers
# for the bank's signer; and curl, which the README's by-hand block uses.
command -v dpkg-query >/dev/null && apt_install libssl-dev pkg-config curl

if [ "${ACD_SERVICES:-all}" != "none" ]; then
    for f in scripts/services/*.sh; do
        [ -e "$f" ] || continue
        # shellcheck source=/dev/null
        (source "$f" && service_install)
    done
    for f in scripts/services/*.sh; do
        [ -e "$f" ] || continue
        unset -f service_install service_start
        # shellcheck source=/dev/null
        source "$f"
        service_start
    done
fi

# The explorer's verifier is committed (the log compiles it in): it must be
# the build of the sources it sits beside.
bash scripts/build-explorer.sh --check

cargo test --workspace --locked "$@"

# The behaviour and hostile-input suites of the bank and the merchant once
# more with both on PostgreSQL (each test its own scratch database; the
# bank's engine tests already run on both). Skipped with ACD_SERVICES=none
# or when arguments narrow the run.
if [ "${ACD_SERVICES:-all}" != "none" ] && [ $# -eq 0 ]; then
    echo "again with the bank and the merchant on PostgreSQL:"
    ACD_TEST_BACKEND=postgres cargo test --locked \
        -p acd-bank -p acd-merchant --lib --test hostile --test purchase
    ACD_TEST_BACKEND=postgres cargo test --locked -p acd-tests --test purchase
fi
