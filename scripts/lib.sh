# shellcheck shell=bash
# Shared helpers for the developer scripts. Source it, do not run it:
#
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Every ensure_* function is idempotent and silent when its requirement is already met;
# it prints one line when it installs something and fails with a clear message when it cannot.
#
# Environment knobs:
#   TABCOIN_DRY_RUN=1           print install commands instead of running them (for checking the logic)
#   TABCOIN_WASM_PACK_VERSION   wasm-pack version to install when absent or different (default below)

set -euo pipefail

TABCOIN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export TABCOIN_ROOT

# wasm-pack 0.14 is the first release with `build --profile NAME`; this is the version we test with.
TABCOIN_WASM_PACK_VERSION="${TABCOIN_WASM_PACK_VERSION:-0.15.1}"
WASM_TARGET="wasm32-unknown-unknown"
CHROMIUM_BIN="/usr/bin/chromium"
CHROMEDRIVER_BIN="/usr/bin/chromedriver"

# `cargo install` puts binaries here; make sure a fresh shell (CI) finds them.
_cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in
  *":$_cargo_bin:"*) ;;
  *) [[ -d "$_cargo_bin" ]] && PATH="$_cargo_bin:$PATH" ;;
esac
export PATH
unset _cargo_bin

# log MESSAGE... — a progress line on stderr.
log() {
  printf '[tabcoin] %s\n' "$*" >&2
}

# die MESSAGE... — an error line on stderr, then exit 1.
die() {
  printf '[tabcoin] error: %s\n' "$*" >&2
  exit 1
}

# section TITLE — a visible header before each step of a script.
section() {
  printf '\n==== %s ====\n' "$*"
}

# have CMD — true if CMD is on PATH.
have() {
  command -v "$1" >/dev/null 2>&1
}

# is_root — true when running as root (apt-get may be used).
is_root() {
  [[ "$(id -u)" -eq 0 ]]
}

# run_install CMD... — run an install command, or only print it under TABCOIN_DRY_RUN=1.
run_install() {
  if [[ "${TABCOIN_DRY_RUN:-0}" == 1 ]]; then
    log "dry run: would run: $*"
  else
    log "running: $*"
    "$@"
  fi
}

# crate_name DIR — the [package] name in DIR/Cargo.toml.
crate_name() {
  awk '
    /^\[/ { in_pkg = ($0 == "[package]") }
    in_pkg && /^name[[:space:]]*=/ { gsub(/^name[[:space:]]*=[[:space:]]*"|".*$/, ""); print; exit }
  ' "$1/Cargo.toml"
}

# crate_has_feature DIR FEATURE — true if DIR/Cargo.toml declares FEATURE in [features].
crate_has_feature() {
  awk -v feat="$2" '
    /^\[/ { in_feat = ($0 == "[features]") }
    in_feat && $0 ~ "^" feat "[[:space:]]*=" { found = 1 }
    END { exit !found }
  ' "$1/Cargo.toml"
}

# locked_version CRATE — the version(s) of CRATE pinned in the workspace Cargo.lock, one per line.
locked_version() {
  local lock="$TABCOIN_ROOT/Cargo.lock"
  [[ -f "$lock" ]] || return 0
  { grep -A1 "^name = \"$1\"\$" "$lock" || true; } | sed -n 's/^version = "\(.*\)"$/\1/p' | sort -u
}

# tool_version CMD — the version a `CMD --version` prints ("wasm-bindgen 0.2.100" -> 0.2.100).
tool_version() {
  "$1" --version 2>/dev/null | awk 'NR == 1 { print $2 }'
}

# _check_installed CMD VERSION — after an install, the CMD first on PATH must be that version.
_check_installed() {
  [[ "${TABCOIN_DRY_RUN:-0}" == 1 ]] && return 0
  hash -r
  local got
  got="$(tool_version "$1" || true)"
  [[ "$got" == "$2" ]] ||
    die "installed $1 $2, but the $1 first on PATH ($(command -v "$1" || echo none)) is ${got:-unknown}"
}

# cargo_install_pinned CRATE VERSION — `cargo install --locked` first (the tool's own lock
# file); if the registry no longer serves a version that lock file names (seen here: a
# webpki-roots release missing from the mirror), install the same pinned tool version with
# dependencies resolved afresh instead of failing the whole run.
cargo_install_pinned() {
  if ! run_install cargo install --locked "$1" --version "$2"; then
    log "cargo install --locked $1 $2 failed to resolve; retrying without --locked"
    run_install cargo install "$1" --version "$2"
  fi
}

# ensure_wasm_target — the wasm32-unknown-unknown standard library for the rustup toolchain.
ensure_wasm_target() {
  if have rustup; then
    local installed
    installed="$(rustup target list --installed)"
    if ! grep -qx "$WASM_TARGET" <<<"$installed"; then
      run_install rustup target add "$WASM_TARGET"
    fi
  elif [[ ! -d "$(rustc --print sysroot)/lib/rustlib/$WASM_TARGET" ]]; then
    die "the Rust target $WASM_TARGET is missing and rustup is not available to add it"
  fi
}

# ensure_wasm_bindgen_cli — wasm-bindgen-cli of exactly the version Cargo.lock pins
# (wasm-pack refuses a mismatch). Skipped when no crate depends on wasm-bindgen.
ensure_wasm_bindgen_cli() {
  local want have_v
  want="$(locked_version wasm-bindgen)"
  if [[ -z "$want" ]]; then
    log "no wasm-bindgen in Cargo.lock: wasm-bindgen-cli not needed"
    return 0
  fi
  if [[ "$want" == *$'\n'* ]]; then
    die "Cargo.lock holds several wasm-bindgen versions ($(echo "$want" | tr '\n' ' ')); pin one with wasm-bindgen = \"=X\""
  fi
  have_v=""
  if have wasm-bindgen; then
    have_v="$(tool_version wasm-bindgen)"
  fi
  if [[ "$have_v" != "$want" ]]; then
    log "wasm-bindgen-cli ${have_v:-absent}, Cargo.lock pins $want: installing (takes a few minutes)"
    cargo_install_pinned wasm-bindgen-cli "$want"
    _check_installed wasm-bindgen "$want"
  fi
}

# ensure_wasm_pack — wasm-pack of the version above (the build uses --profile, new in 0.14).
ensure_wasm_pack() {
  local have_v=""
  if have wasm-pack; then
    have_v="$(tool_version wasm-pack)"
  fi
  if [[ "$have_v" != "$TABCOIN_WASM_PACK_VERSION" ]]; then
    log "wasm-pack ${have_v:-absent}, want $TABCOIN_WASM_PACK_VERSION: installing (takes a few minutes)"
    cargo_install_pinned wasm-pack "$TABCOIN_WASM_PACK_VERSION"
    _check_installed wasm-pack "$TABCOIN_WASM_PACK_VERSION"
  fi
}

# ensure_wasm_tools — both of the above.
ensure_wasm_tools() {
  ensure_wasm_bindgen_cli
  ensure_wasm_pack
}

# ensure_chromium — Debian's chromium and chromedriver (nothing downloads a browser of its own).
ensure_chromium() {
  if [[ -x "$CHROMIUM_BIN" && -x "$CHROMEDRIVER_BIN" ]]; then
    return 0
  fi
  if ! is_root || ! have apt-get; then
    die "need $CHROMIUM_BIN and $CHROMEDRIVER_BIN; install them as root with: apt-get update && apt-get install -y chromium chromium-driver"
  fi
  log "installing Debian chromium and chromium-driver"
  run_install env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  run_install env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
}

# ensure_node_modules — node_modules matching package-lock.json (npm ci), or npm install without a lock.
ensure_node_modules() {
  local root="$TABCOIN_ROOT" stamp
  [[ -f "$root/package.json" ]] || return 0
  have npm || die "npm is not on PATH"
  # npm writes node_modules/.package-lock.json at every install: its age is the install's age.
  stamp="$root/node_modules/.package-lock.json"
  if [[ -f "$root/package-lock.json" ]]; then
    if [[ ! -f "$stamp" || "$root/package-lock.json" -nt "$stamp" ]]; then
      (cd "$root" && run_install npm ci --no-audit --no-fund --loglevel=error)
    fi
  elif [[ ! -f "$stamp" || "$root/package.json" -nt "$stamp" ]]; then
    (cd "$root" && run_install npm install --no-audit --no-fund --loglevel=error)
  fi
}
