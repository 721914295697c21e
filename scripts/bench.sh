#!/usr/bin/env bash
# npm run bench: the benchmarks. Each bench rewrites its part of docs/BENCHMARKS.md itself.
# Extra arguments go to the core bench (e.g. a filter).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TABCOIN_ROOT"

ran=0

if [[ -f core/benches/core.rs ]]; then
  # The bench may use the simulator behind `test-utils`: enable it when it exists.
  features=()
  if crate_has_feature core test-utils; then features=(--features test-utils); fi
  section "cargo bench -p tabcoin-core ${features[*]} --bench core"
  cargo bench -p tabcoin-core "${features[@]}" --bench core -- "$@"
  ran=1
fi

# Later stages: relay benches (cargo) and browser benches (node scripts driving Chromium).
if [[ -d relay/benches ]]; then
  section "cargo bench -p tabcoin-relay"
  cargo bench -p tabcoin-relay
  ran=1
fi

shopt -s nullglob
browser_benches=(tests/bench/*.mjs)
shopt -u nullglob
if [[ -d wasm && ${#browser_benches[@]} -gt 0 ]]; then
  section "browser benchmarks (tests/bench/*.mjs)"
  ensure_chromium
  ensure_node_modules
  bash scripts/build-web.sh
  for bench in "${browser_benches[@]}"; do
    log "node $bench"
    node "$bench"
  done
  ran=1
fi

if [[ $ran -eq 0 ]]; then
  die "no benchmarks yet (expected core/benches/core.rs)"
fi
