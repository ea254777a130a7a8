#!/usr/bin/env bash
# Builds the log explorer's verifier, explorer/web/acd_explorer.wasm: the
# crate explorer/ (and with it acd-core) for wasm32-unknown-unknown. The log
# server compiles the file into its binary, so it is committed; run this
# after changing explorer/src or the core, and commit the result.
#
# --check: build into a scratch file and fail when it differs from the
# committed one (scripts/test.sh runs this). Paths are remapped and the
# profile pinned so that the same sources and toolchain give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=wasm32-unknown-unknown
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
# The verifier never draws randomness: getrandom, pulled in by the core's
# ciphers, gets the backend that always refuses.
export RUSTFLAGS="--remap-path-prefix=$CARGO_HOME=/cargo --remap-path-prefix=$PWD=/acd --cfg getrandom_backend=\"unsupported\""
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_STRIP=true
export CARGO_PROFILE_RELEASE_OPT_LEVEL=s
export CARGO_PROFILE_RELEASE_LTO=true
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_PANIC=abort
cargo build --locked --release --target "$TARGET" -p acd-explorer --lib \
    --target-dir target/wasm
BUILT="target/wasm/$TARGET/release/acd_explorer.wasm"
COMMITTED=explorer/web/acd_explorer.wasm
# The compiler that built the committed file: another rustc may emit other
# bytes from the same sources, so the check compares bytes only under the
# same one (and then still proves the sources build).
TOOLCHAIN_FILE=explorer/web/acd_explorer.wasm.rustc
TOOLCHAIN="$(rustc --version)"

if [ "${1:-}" = "--check" ]; then
    if [ "$(cat "$TOOLCHAIN_FILE" 2>/dev/null)" != "$TOOLCHAIN" ]; then
        echo "explorer: the sources build; $COMMITTED was built by $(cat "$TOOLCHAIN_FILE" 2>/dev/null || echo 'an unrecorded rustc'), this is $TOOLCHAIN, so the bytes are not compared"
        exit 0
    fi
    if ! cmp -s "$BUILT" "$COMMITTED"; then
        echo "explorer/web/acd_explorer.wasm is not the build of the sources: run scripts/build-explorer.sh and commit it" >&2
        exit 1
    fi
    echo "explorer: $COMMITTED is the build of the sources ($(wc -c <"$COMMITTED") bytes, $TOOLCHAIN)"
else
    cp "$BUILT" "$COMMITTED"
    echo "$TOOLCHAIN" >"$TOOLCHAIN_FILE"
    echo "explorer: wrote $COMMITTED ($(wc -c <"$COMMITTED") bytes, $TOOLCHAIN)"
fi
