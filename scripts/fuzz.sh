#!/usr/bin/env bash
# npm run fuzz: coverage-guided fuzzing of tabcoin-core (cargo fuzz + libFuzzer) on the stable
# toolchain. Runs each target in turn; stops at the first crash (its input is saved under
# fuzz/artifacts/TARGET/ and the command to replay it is printed).
#
#   bash scripts/fuzz.sh [--smoke] [TARGET...]     (all targets when none is named)
#
# Environment knobs:
#   FUZZ_SECONDS        seconds per target for a full run (default 120)
#   FUZZ_SMOKE_SECONDS  seconds per target with --smoke (default 10; npm test uses --smoke)
#   FUZZ_SANITIZER      none (default: the core has no unsafe code) or address
#   FUZZ_ARGS           extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# Inputs that find new coverage go to fuzz/target/corpus-work/TARGET (not committed); the
# committed seeds in fuzz/corpus/TARGET are only read. To keep a useful new input, copy it
# into fuzz/corpus/TARGET (keep that small) and, for a crash, add a regression test to core.
#
# Stable rustc: without a sanitizer, cargo fuzz passes rustc only stable flags (-C passes,
# -C llvm-args for coverage); AddressSanitizer needs -Zsanitizer, which stable accepts under
# RUSTC_BOOTSTRAP=1. It is set for these builds only (their own target dir, fuzz/target).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TABCOIN_ROOT"

TABCOIN_CARGO_FUZZ_VERSION="${TABCOIN_CARGO_FUZZ_VERSION:-0.13.2}"

# ensure_cargo_fuzz — cargo-fuzz of the version above, installed when absent or different.
ensure_cargo_fuzz() {
  local have_v=""
  if have cargo-fuzz; then
    have_v="$(tool_version cargo-fuzz)"
  fi
  if [[ "$have_v" != "$TABCOIN_CARGO_FUZZ_VERSION" ]]; then
    log "cargo-fuzz ${have_v:-absent}, want $TABCOIN_CARGO_FUZZ_VERSION: installing (takes about 2 minutes)"
    cargo_install_pinned cargo-fuzz "$TABCOIN_CARGO_FUZZ_VERSION"
    _check_installed cargo-fuzz "$TABCOIN_CARGO_FUZZ_VERSION"
  fi
}

smoke=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=1 ;;
    -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) targets+=("$arg") ;;
  esac
done
if [[ ${#targets[@]} -eq 0 ]]; then
  # Every fuzz target the crate declares, in file order.
  while IFS= read -r t; do targets+=("$t"); done < <(
    sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v -e '^tabcoin-fuzz$' -e '^gen_corpus$'
  )
fi
if [[ $smoke == 1 ]]; then
  seconds="${FUZZ_SMOKE_SECONDS:-10}"
else
  seconds="${FUZZ_SECONDS:-120}"
fi
sanitizer="${FUZZ_SANITIZER:-none}"

ensure_cargo_fuzz
# Only AddressSanitizer needs it (see above); plain builds use stable rustc as it is.
if [[ $sanitizer != none ]]; then export RUSTC_BOOTSTRAP=1; fi

section "cargo fmt --check (fuzz crate)"
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check

section "cargo fuzz build -s $sanitizer (debug assertions and overflow checks on)"
(cd fuzz && cargo fuzz build -s "$sanitizer")

# Longest input per target: decoders see whole messages; the node's streams are many.
max_len() {
  case "$1" in
    node_stream) echo 32768 ;;
    *) echo 16384 ;;
  esac
}

for t in "${targets[@]}"; do
  [[ -d "fuzz/corpus/$t" ]] || die "no seed corpus fuzz/corpus/$t (run: cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus)"
  work="fuzz/target/corpus-work/$t"
  mkdir -p "$work" "fuzz/artifacts/$t"
  section "fuzz $t for ${seconds}s"
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  (cd fuzz && cargo fuzz run -s "$sanitizer" "$t" "../$work" "corpus/$t" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 ${FUZZ_ARGS:-}) ||
    die "fuzz target $t failed: replay with (a sanitizer also needs RUSTC_BOOTSTRAP=1): (cd fuzz && cargo fuzz run -s $sanitizer $t artifacts/$t/<file>)"
done

section "fuzzing passed: ${#targets[@]} targets, ${seconds}s each"
