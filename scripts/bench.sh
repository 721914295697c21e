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

# The relay's fan-out bench opens up to 10,000 loopback connections: each is an open file in
# the bench and in the relay process it starts (which inherits the limit). Raise the soft limit
# as far as the hard limit allows, in a subshell so the rest of the script keeps its own.
if [[ -f relay/benches/fanout.rs ]]; then
  section "cargo bench -p tabcoin-relay --bench fanout"
  (
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    log "open-file limit for the relay bench: $(ulimit -n)"
    cargo bench -p tabcoin-relay --bench fanout
  )
  ran=1
fi
# The SHA-NI miner kernel against core's miner job and a bare SHA-NI loop (about 30 s).
if [[ -f relay/benches/shani.rs ]]; then section "cargo bench -p tabcoin-relay --bench shani"; cargo bench -p tabcoin-relay --bench shani; ran=1; fi
# Relay memory against chain size (1x, 2x, 4x chains of ~50 KB blocks, cached under
# target/membench/) and start-up time, side by side with the relay from before the issue-10
# storage work when its binary is at target/membench/old-relay/tabcoin-relay or named by
# MEMBENCH_OLD_RELAY (how to build it: relay/benches/memory.rs).
if [[ -f relay/benches/memory.rs ]]; then section "cargo bench -p tabcoin-relay --bench memory"; cargo bench -p tabcoin-relay --bench memory; ran=1; fi

# Later stages: browser benches (node scripts driving Chromium).
# tests/bench/browser.bench.mjs (P1–P7, the `browser` section of docs/BENCHMARKS.md, about
# 4 minutes) builds what it needs besides web/ itself — the relay, the make_chain and hashrate
# examples, in release — generates its chain under web/bench-data/ and starts and stops its
# own relays on 127.0.0.1. BENCH_QUICK=1 makes it short; BENCH_NO_DOC=1 leaves the doc alone.
shopt -s nullglob
browser_benches=(tests/bench/*.bench.mjs)
shopt -u nullglob
if [[ -d wasm && ${#browser_benches[@]} -gt 0 ]]; then
  section "browser benchmarks (tests/bench/*.bench.mjs)"
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
