#!/usr/bin/env bash
# `acd loadgen log` against `acd-log serve` of two builds, A (before) and B
# (after), interleaved round by round, each run on a fresh log: A with JSON
# bodies, B with JSON, binary and batched (100 per request) bodies. Prints
# one line per run with the machine's load, the loadgen's throughput line
# and the log's CPU per append (its user+system time over the run, from
# /proc, divided by the entries) and, for B, the limit measured beside:
# strict ed25519 verifications per second on one core, as the log checks
# one per append. Usage:
#   scripts/bench-log.sh BIN_A BIN_B [ROUNDS] [ENTRIES] [CONCURRENCY]
# Both logs run with RUST_LOG=warn (no per-request lines).
set -euo pipefail
A=$1; B=$2; ROUNDS=${3:-3}; ENTRIES=${4:-100000}; CONC=${5:-256}
PORT=${PORT:-18760}
TICK=$(getconf CLK_TCK)

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

one_run() {
    local label=$1 bin=$2 round=$3 conc=$4; shift 4
    local dir; dir=$(mktemp -d)
    RUST_LOG=warn "$bin/acd-log" serve --listen 127.0.0.1:$PORT --origin bench.example/log \
        --data "$dir/log" >/dev/null 2>"$dir/log.err" &
    local pid=$!
    wait_port $PORT
    local before after out
    before=$(cpu_ticks $pid)
    out=$("$bin/acd" loadgen log --url http://127.0.0.1:$PORT --entries "$ENTRIES" \
        --concurrency "$conc" "$@" 2>/dev/null | grep -E 'throughput|limit' | tr '\n' ' ' || echo FAILED)
    after=$(cpu_ticks $pid)
    local us=$(( (after - before) * 1000000 / TICK / ENTRIES ))
    echo "$label#$round load=$(cut -d' ' -f1 /proc/loadavg) server_cpu=${us}us/append $out"
    kill $pid 2>/dev/null || { echo "the log failed:" >&2; cat "$dir/log.err" >&2; }
    wait $pid 2>/dev/null || true
    rm -rf "$dir"
}

for i in $(seq 1 "$ROUNDS"); do
    one_run A-json "$A" "$i" "$CONC"
    one_run B-json "$B" "$i" "$CONC"
    one_run B-binary "$B" "$i" "$CONC" --body binary
    # 4 requests of 100 in flight: 400 commits, as many as 256 single ones.
    one_run B-batch100 "$B" "$i" 4 --batch 100
done
