#!/usr/bin/env bash
# Build the browser node: wasm/ -> web/pkg (wasm-pack --target web), and vendor uPlot into web/vendor.
# A no-op until the wasm/ crate exists.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TABCOIN_ROOT"

if [[ ! -d wasm ]]; then
  log "no wasm/ crate yet: nothing to build for the web"
  exit 0
fi

section "wasm-pack build wasm -> web/pkg (profile release-wasm)"
ensure_wasm_target
ensure_wasm_tools
# --profile needs wasm-pack >= 0.14. --no-opt: Debian's binaryen wasm-opt breaks wasm-bindgen
# output, and with a custom profile wasm-pack reads [package.metadata.wasm-pack.profile.custom],
# not .release, so we switch wasm-opt off here rather than trust either metadata table.
# --mode no-install: never let wasm-pack download a tool; lib.sh installs them with cargo install.
wasm-pack build wasm \
  --target web \
  --out-dir ../web/pkg \
  --profile release-wasm \
  --no-opt \
  --mode no-install

# The same crate with simd128: its miner hashes four nonces per v128 lane group. Workers load
# it where WebAssembly.validate accepts a simd module and fall back to web/pkg otherwise. A
# separate target dir keeps the two flag sets from rebuilding each other.
section "wasm-pack build wasm -> web/pkg-simd (simd128 miner)"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+simd128" CARGO_TARGET_DIR="$TABCOIN_ROOT/target/simd" \
  wasm-pack build wasm \
  --target web \
  --out-dir ../web/pkg-simd \
  --profile release-wasm \
  --no-opt \
  --mode no-install

if [[ -f package.json ]]; then
  ensure_node_modules
fi
if [[ -d node_modules/uplot/dist ]]; then
  mkdir -p web/vendor/uplot
  cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css web/vendor/uplot/
  cp node_modules/uplot/LICENSE web/vendor/uplot/ 2>/dev/null || true
  log "vendored uPlot into web/vendor/uplot"
fi
# The browser benchmark page (web/bench.html, `npm run bench`) compares the wasm build with
# pure-JS and other-wasm libraries: vendor their ES module builds the same way.
if [[ -d node_modules/@noble/hashes ]]; then
  mkdir -p web/vendor/noble-hashes
  cp node_modules/@noble/hashes/*.js node_modules/@noble/hashes/LICENSE web/vendor/noble-hashes/
  log "vendored @noble/hashes into web/vendor/noble-hashes"
fi
if [[ -d node_modules/@noble/ed25519 ]]; then
  mkdir -p web/vendor/noble-ed25519
  cp node_modules/@noble/ed25519/index.js node_modules/@noble/ed25519/LICENSE web/vendor/noble-ed25519/
  log "vendored @noble/ed25519 into web/vendor/noble-ed25519"
fi
if [[ -d node_modules/hash-wasm/dist ]]; then
  mkdir -p web/vendor/hash-wasm
  cp node_modules/hash-wasm/dist/index.esm.js web/vendor/hash-wasm/
  cp node_modules/hash-wasm/LICENSE web/vendor/hash-wasm/ 2>/dev/null || true
  log "vendored hash-wasm into web/vendor/hash-wasm"
fi
# The service worker's list of this version's files and hashes (web/precache.js): last, after
# everything above that it lists has been written.
node scripts/precache.mjs web
