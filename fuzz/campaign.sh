#!/usr/bin/env bash
# Runs a fuzzing campaign on each target (default 600 s each) on nightly and
# prints one table line per target: executions, corpus size, crashes.
# Usage: fuzz/campaign.sh [SECONDS] [TARGET...]
# Needs: rustup toolchain nightly, cargo install cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}; shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(note checkpoint tile entry tlog_proof evidence witness_request json_api merkle_proofs)
fi
if [ "${ACD_FUZZ_SEEDS:-1}" = 1 ]; then
  (cd .. && cargo run -q -p acd-fuzz-targets --example write_seeds)
fi
mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="logs/$t.log"
  cargo +nightly fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -max_len=65536 >"$log" 2>&1 || true
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  printf '| %s | %s s | %s | %s files | %s |\n' "$t" "$secs" "$execs" "$(ls "corpus/$t" | wc -l)" "$crashes"
done
