#!/usr/bin/env bash
# npm start: run Tabcoin locally.
#   with relay/: build the browser node, then run the relay (arguments go to the relay);
#   before it:   run the core devnet example (mines a short test chain, sends a payment and a post).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TABCOIN_ROOT"

if [[ -d relay ]]; then
  bash scripts/build-web.sh
  # A local network: let the relay dial relays on this machine and the LAN (--peer ws://127.0.0.1:…).
  section "cargo run --release -p tabcoin-relay -- --allow-local-dial $*"
  exec cargo run --release -p tabcoin-relay -- --allow-local-dial "$@"
fi

if [[ ! -f core/examples/devnet.rs && ! -f core/examples/devnet/main.rs ]]; then
  die "core/examples/devnet.rs does not exist yet: there is nothing to start"
fi
# The example may use the simulator behind `test-utils` (it only adds code): enable it when it exists.
features=()
if crate_has_feature core test-utils; then features=(--features test-utils); fi
section "cargo run --release -p tabcoin-core ${features[*]} --example devnet"
exec cargo run --release -p tabcoin-core "${features[@]}" --example devnet -- "$@"
