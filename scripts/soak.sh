#!/usr/bin/env bash
# npm run soak: one relay under 10,000 silent connections, attackers and two honest miners
# for SOAK_SECS seconds (default 300); its RSS must stay under the memory budget and every
# honest block must reach every honest client. Prints a table for docs/BENCHMARKS.md.
# SOAK_CONNS (default 10000), SOAK_BLOCK_SECS (10) and SOAK_MAX_MEMORY (512M) change the load.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TABCOIN_ROOT"

# 10,000 connections plus attackers are open files in the soak process, and as many in the
# relay it starts (which inherits the limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "open-file limit for the soak: $(ulimit -n); SOAK_SECS=${SOAK_SECS:-300}"
section "cargo bench -p tabcoin-relay --bench soak"
cargo bench -p tabcoin-relay --bench soak
