#!/usr/bin/env bash
# npm test: every check, in the order a failure is cheapest to find. Stops at the first failure.
#   1. rustfmt, clippy (-D warnings), cargo test (+ core's test-utils feature), core for wasm32 no_std
#   1b. fuzz smoke: every cargo-fuzz target for a few seconds (scripts/fuzz.sh --smoke)
#   2. with wasm/:  wasm-pack test in headless Debian Chromium
#   3. with tests/*.test.mjs and package.json: tsc over the page (// @ts-check), then end-to-end
#      tests (node --test, Playwright, Chromium)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TABCOIN_ROOT"

# A CI run builds once from a clean clone: incremental caches would only double the disk it takes.
if [[ "${CI:-}" == true && -z "${CARGO_INCREMENTAL:-}" ]]; then
  export CARGO_INCREMENTAL=0
fi

section "toolchain: rust target $WASM_TARGET"
ensure_wasm_target

section "cargo fmt --all -- --check"
cargo fmt --all -- --check

section "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

core_test_utils=0
if crate_has_feature core test-utils; then
  core_test_utils=1
  section "cargo clippy -p tabcoin-core --all-targets --features test-utils -- -D warnings"
  cargo clippy -p tabcoin-core --all-targets --features test-utils -- -D warnings
fi

if [[ -d wasm ]]; then
  wasm_crate="$(crate_name wasm)"
  section "cargo clippy -p $wasm_crate --target $WASM_TARGET --all-targets -- -D warnings"
  cargo clippy -p "$wasm_crate" --target "$WASM_TARGET" --all-targets -- -D warnings
fi

section "cargo test --workspace"
cargo test --workspace

# (core's tests already run with test-utils: core dev-depends on itself with that feature.)

if [[ -d fuzz ]]; then
  # Each target for FUZZ_SMOKE_SECONDS (default 10); a crash fails the run. npm run fuzz runs longer.
  section "fuzz smoke: scripts/fuzz.sh --smoke"
  bash scripts/fuzz.sh --smoke
fi

section "cargo build -p tabcoin-core --target $WASM_TARGET --no-default-features (no_std)"
cargo build -p tabcoin-core --target "$WASM_TARGET" --no-default-features

if [[ -d wasm ]]; then
  section "wasm-pack test --headless --chrome wasm"
  ensure_wasm_tools
  ensure_chromium
  CHROMEDRIVER="$CHROMEDRIVER_BIN" WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}" \
    wasm-pack test --headless --chrome --chromedriver "$CHROMEDRIVER_BIN" --mode no-install wasm
  section "wasm-pack test --headless --chrome wasm (simd128 miner kernel)"
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+simd128" CARGO_TARGET_DIR="$TABCOIN_ROOT/target/simd" \
    CHROMEDRIVER="$CHROMEDRIVER_BIN" WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}" \
    wasm-pack test --headless --chrome --chromedriver "$CHROMEDRIVER_BIN" --mode no-install wasm --test simd
else
  log "no wasm/ crate yet: skipping browser wasm tests"
fi

# End-to-end tests: files node --test picks up (tests/**/*.test.mjs etc.); helpers are plain .mjs.
e2e_files=()
if [[ -d tests ]]; then
  while IFS= read -r -d '' f; do e2e_files+=("$f"); done < <(
    find tests -path tests/artifacts -prune -o -path '*/node_modules' -prune -o -type f \
      \( -name '*.test.mjs' -o -name '*.test.js' -o -name '*.test.cjs' \) -print0
  )
fi
if [[ ${#e2e_files[@]} -gt 0 && -f package.json ]]; then
  section "end-to-end: prepare (node modules, Chromium, web build, relay build)"
  ensure_node_modules
  ensure_chromium
  bash scripts/build-web.sh
  section "tsc --noEmit -p web (the page against the node's generated declarations)"
  npx --no-install tsc --noEmit -p web
  export CHROMIUM_PATH="$CHROMIUM_BIN"
  if [[ -d relay ]]; then
    relay_crate="$(crate_name relay)"
    cargo build -p "$relay_crate"
    export TABCOIN_RELAY_BIN="${CARGO_TARGET_DIR:-$TABCOIN_ROOT/target}/debug/$relay_crate"
    log "relay binary for the tests: \$TABCOIN_RELAY_BIN=$TABCOIN_RELAY_BIN"
    if [[ -f relay/examples/hostile_relay.rs ]]; then
      # The hostile relay of tests/network-heals.test.mjs (issue 15).
      cargo build -p "$relay_crate" --example hostile_relay
      export TABCOIN_HOSTILE_BIN="${CARGO_TARGET_DIR:-$TABCOIN_ROOT/target}/debug/examples/hostile_relay"
    fi
    if [[ -f relay/examples/sig_chain.rs ]]; then
      # The signature-heavy chains of tests/verify-pool.test.mjs.
      cargo build -p "$relay_crate" --example sig_chain
    fi
  fi
  section "node --test tests/"
  node --test tests/
else
  log "no end-to-end tests (tests/**/*.test.mjs) yet: skipping"
fi

section "all checks passed"
