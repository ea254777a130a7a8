#!/usr/bin/env bash
# Interleaved A/B of `acd loadgen purchases`: for each pair, a fresh log,
# bank and merchant from build A, then the same from build B, each run on
# its own scratch data. Usage:
#   scripts/bench-purchases.sh DIR_A DIR_B [PAIRS] [COUNT] [CONCURRENCY]
# DIR_A, DIR_B: folders holding release binaries acd, acd-bank, acd-log.
# Prints one line per run: build, withdrawals/s line, purchases/s line.
set -euo pipefail
A=$1; B=$2; PAIRS=${3:-3}; COUNT=${4:-3000}; CONC=${5:-32}
PORT_BASE=${PORT_BASE:-18700}

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

# The machine's limit beside each run: OpenSSL's RSA-2048 signatures/s on
# one core (`openssl speed`), measured right after the run.
openssl_rate() {
    openssl speed -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}'
}

one_run() {
    local bin=$1 label=$2
    local dir; dir=$(mktemp -d)
    local lp=$PORT_BASE bp=$((PORT_BASE + 1)) mp=$((PORT_BASE + 2))
    local pids=()
    mkdir -p "$dir/goods"
    head -c 1024 /dev/urandom > "$dir/goods/item.bin"
    cat > "$dir/catalog.toml" <<CAT
[[items]]
id = "item"
description = "1 KiB of bytes"
price = 10
file = "goods/item.bin"
CAT
    local bank_key; bank_key=$("$bin/acd-bank" key --data "$dir/bank")
    "$bin/acd-log" serve --listen 127.0.0.1:$lp --origin bench.example/log --data "$dir/log" \
        --trust-bank "$bank_key" >/dev/null 2>"$dir/log.err" & pids+=($!)
    wait_port $lp
    local log; log="$("$bin/acd-log" vkey --data "$dir/log")@http://127.0.0.1:$lp"
    "$bin/acd-bank" serve --listen 127.0.0.1:$bp --data "$dir/bank" --log "$log" >/dev/null 2>"$dir/bank.err" & pids+=($!)
    wait_port $bp
    "$bin/acd-bank" admin --url http://127.0.0.1:$bp --token-file "$dir/bank/admin.token" \
        create-account --kind merchant --key "$("$bin/acd" merchant key --data "$dir/shop")" >/dev/null
    "$bin/acd" merchant serve --listen 127.0.0.1:$mp --data "$dir/shop" --bank http://127.0.0.1:$bp \
        --log "$log" --catalog "$dir/catalog.toml" >/dev/null 2>"$dir/shop.err" & pids+=($!)
    wait_port $mp
    local out
    out=$("$bin/acd" loadgen purchases --bank http://127.0.0.1:$bp \
        --admin-token-file "$dir/bank/admin.token" --merchant http://127.0.0.1:$mp \
        --item item --count "$COUNT" --concurrency "$CONC" 2>/dev/null) || out="FAILED"
    echo "$label load=$(cut -d' ' -f1 /proc/loadavg) openssl-rsa2048-signs/s=$(openssl_rate) $(echo "$out" | grep -E '^(withdrawals|purchases) ' | tr '\n' ' ')"
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    rm -rf "$dir"
}

for i in $(seq 1 "$PAIRS"); do
    one_run "$A" "A#$i"
    one_run "$B" "B#$i"
done
