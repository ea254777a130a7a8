#!/usr/bin/env bash
# `acd loadgen log` against `acd-log serve` without and with `--tiles
# file://DIR` (the read path published to a directory), interleaved round by
# round, each run on a fresh log. Usage:
#   scripts/bench-tiles.sh BIN_DIR [ROUNDS] [ENTRIES] [CONCURRENCY]
# Prints one line per run: set-up, load, loadgen's throughput line.
set -euo pipefail
BIN=$1; ROUNDS=${2:-3}; ENTRIES=${3:-50000}; CONC=${4:-256}
PORT=${PORT:-18750}

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

one_run() {
    local label=$1 round=$2
    local dir; dir=$(mktemp -d)
    local args=()
    [ "$label" = tiles ] && args=(--tiles "file://$dir/pub")
    "$BIN/acd-log" serve --listen 127.0.0.1:$PORT --origin bench.example/log --data "$dir/log" \
        "${args[@]}" >/dev/null 2>"$dir/log.err" &
    local pid=$!
    wait_port $PORT
    local out
    out=$("$BIN/acd" loadgen log --url http://127.0.0.1:$PORT --entries "$ENTRIES" \
        --concurrency "$CONC" 2>/dev/null | grep -E 'throughput' || echo FAILED)
    echo "$label#$round load=$(cut -d' ' -f1 /proc/loadavg) $out"
    kill $pid 2>/dev/null || { echo "the log failed:" >&2; cat "$dir/log.err" >&2; }
    wait $pid 2>/dev/null || true
    rm -rf "$dir"
}

for i in $(seq 1 "$ROUNDS"); do
    one_run none "$i"
    one_run tiles "$i"
done
