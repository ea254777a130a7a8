#!/usr/bin/env bash
# `acd loadgen purchases` on each storage set-up, interleaved round by
# round: the bank and the merchant on sled; both on PostgreSQL with one
# bank front-end; both on PostgreSQL with two bank front-ends (customers
# withdraw and spend at the first, the merchant deposits at the second).
# Each run gets a fresh log, bank and merchant on scratch data and fresh
# databases. Usage:
#   scripts/bench-storage.sh BIN_DIR PG_ADMIN_URL [ROUNDS] [COUNT] [CONCURRENCY]
# BIN_DIR holds release binaries acd, acd-bank, acd-log; PG_ADMIN_URL is a
# URL of a role that may CREATE DATABASE (its database part is replaced).
# Prints one line per run: set-up, load, withdrawals/s line, purchases/s line.
set -euo pipefail
BIN=$1; ADMIN=$2; ROUNDS=${3:-3}; COUNT=${4:-3000}; CONC=${5:-32}
PORT_BASE=${PORT_BASE:-18800}
PSQL=${PSQL:-psql}

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

fresh_db() {
    local name="acd_bench_$$_$RANDOM$RANDOM"
    "$PSQL" -X -q "$ADMIN" -c "CREATE DATABASE $name" >/dev/null
    echo "${ADMIN%/*}/$name"
}

# one_run LABEL STORAGE FRONTS: STORAGE is sled or postgres.
one_run() {
    local label=$1 storage=$2 fronts=$3
    local dir; dir=$(mktemp -d)
    local lp=$PORT_BASE bp=$((PORT_BASE + 1)) bp2=$((PORT_BASE + 2)) mp=$((PORT_BASE + 3))
    local pids=() bank_db=() shop_db=()
    if [ "$storage" = postgres ]; then
        bank_db=(--database "$(fresh_db)")
        shop_db=(--database "$(fresh_db)")
    fi
    mkdir -p "$dir/goods"
    head -c 1024 /dev/urandom > "$dir/goods/item.bin"
    cat > "$dir/catalog.toml" <<CAT
[[items]]
id = "item"
description = "1 KiB of bytes"
price = 10
file = "goods/item.bin"
CAT
    local bank_key; bank_key=$("$BIN/acd-bank" key --data "$dir/bank")
    "$BIN/acd-log" serve --listen 127.0.0.1:$lp --origin bench.example/log --data "$dir/log" \
        --trust-bank "$bank_key" >/dev/null 2>"$dir/log.err" & pids+=($!)
    wait_port $lp
    local log; log="$("$BIN/acd-log" vkey --data "$dir/log")@http://127.0.0.1:$lp"
    "$BIN/acd-bank" serve --listen 127.0.0.1:$bp --data "$dir/bank" --log "$log" "${bank_db[@]}" \
        >/dev/null 2>"$dir/bank.err" & pids+=($!)
    wait_port $bp
    local deposit_at=$bp
    if [ "$fronts" = 2 ]; then
        "$BIN/acd-bank" serve --listen 127.0.0.1:$bp2 --data "$dir/bank" --log "$log" "${bank_db[@]}" \
            >/dev/null 2>"$dir/bank2.err" & pids+=($!)
        wait_port $bp2
        deposit_at=$bp2
    fi
    "$BIN/acd-bank" admin --url http://127.0.0.1:$bp --token-file "$dir/bank/admin.token" \
        create-account --kind merchant --key "$("$BIN/acd" merchant key --data "$dir/shop")" >/dev/null
    "$BIN/acd" merchant serve --listen 127.0.0.1:$mp --data "$dir/shop" --bank http://127.0.0.1:$deposit_at \
        --log "$log" --catalog "$dir/catalog.toml" "${shop_db[@]}" >/dev/null 2>"$dir/shop.err" & pids+=($!)
    wait_port $mp
    local out
    out=$("$BIN/acd" loadgen purchases --bank http://127.0.0.1:$bp \
        --admin-token-file "$dir/bank/admin.token" --merchant http://127.0.0.1:$mp \
        --item item --count "$COUNT" --concurrency "$CONC" 2>/dev/null) || out="FAILED"
    echo "$label load=$(cut -d' ' -f1 /proc/loadavg) $(echo "$out" | grep -E '^(withdrawals|purchases) ' | tr '\n' ' ')"
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    rm -rf "$dir"
}

for i in $(seq 1 "$ROUNDS"); do
    one_run "sled#$i" sled 1
    one_run "postgres-1-front#$i" postgres 1
    one_run "postgres-2-fronts#$i" postgres 2
done
