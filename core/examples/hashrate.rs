//! Native mining speed of the core's midstate miner on one thread, for the browser benchmark
//! (`npm run bench`, P1): `hashrate [SECONDS [HEADER_HEX]]`.
//!
//! Runs `MinerJob::step` over an 88-byte header whose bits (`0x03000001`, a target of 1) no
//! hash meets, nonces counting up from the header's own, for about SECONDS (default 3), and
//! prints one JSON line: `{"mhs": …, "hashes": …, "seconds": …, …}`. Without HEADER_HEX the
//! header is the test network's genesis header with those bits.
//!
//! Which SHA-256 compression runs is chosen when building: by default `sha2` picks SHA-NI at
//! run time when the CPU has it; `--features sha2/force-soft` forces its portable scalar code,
//! the same code the wasm build runs (wasm has no SHA instructions):
//!
//! ```text
//! cargo run --release -p tabcoin-core --example hashrate --features sha2/force-soft
//! cargo run --release -p tabcoin-core --example hashrate -- 2 <88-byte header in hex>
//! ```

use std::time::{Duration, Instant};

use tabcoin_core::hash::{decode_hex, to_hex};
use tabcoin_core::miner::{MinerJob, NonceRange, Step};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{BlockHeader, HEADER_SIZE};
use tabcoin_core::units::CompactTarget;

/// A target of 1: no hash meets it, so no run ends early.
const IMPOSSIBLE_BITS: u32 = 0x0300_0001;
/// Nonces per `step` call between two looks at the clock.
const CHUNK: u64 = 1 << 16;

fn usage() -> ! {
    eprintln!("usage: hashrate [SECONDS [HEADER_HEX]]  (HEADER_HEX: 88 bytes, bits 0x03000001)");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: f64 = match args.first() {
        None => 3.0,
        Some(s) => match s.parse() {
            Ok(v) if v > 0.0 && v < 3600.0 => v,
            _ => usage(),
        },
    };
    let header = match args.get(1) {
        None => {
            let mut h = Params::test().genesis_block().header;
            h.bits = CompactTarget(IMPOSSIBLE_BITS);
            h.nonce = 0;
            h
        }
        Some(hex) => {
            let Ok(bytes) = decode_hex(hex) else { usage() };
            let Ok(bytes) = <[u8; HEADER_SIZE]>::try_from(bytes.as_slice()) else {
                usage()
            };
            BlockHeader::from_bytes(&bytes)
        }
    };
    if header.bits != CompactTarget(IMPOSSIBLE_BITS) {
        eprintln!(
            "hashrate: the header's bits are {:#010x}; use {IMPOSSIBLE_BITS:#010x} so nothing is found",
            header.bits.0
        );
        std::process::exit(2);
    }
    let range = NonceRange {
        start: header.nonce,
        end: None,
    };
    let mut job = match MinerJob::new(header, range) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("hashrate: {e}");
            std::process::exit(2);
        }
    };
    let span = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let elapsed = loop {
        match job.step(CHUNK) {
            Step::Continue => {}
            other => {
                eprintln!("hashrate: the search ended: {other:?}");
                std::process::exit(1);
            }
        }
        let e = start.elapsed();
        if e >= span {
            break e;
        }
    };
    let secs = elapsed.as_secs_f64();
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    let cpu_sha = std::arch::is_x86_feature_detected!("sha");
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    let cpu_sha = false;
    println!(
        "{{\"mhs\": {:.4}, \"hashes\": {}, \"seconds\": {:.4}, \"chunk\": {CHUNK}, \"cpu_has_sha_ni\": {cpu_sha}, \"header\": \"{}\"}}",
        job.hashes() as f64 / secs / 1e6,
        job.hashes(),
        secs,
        to_hex(&header.to_bytes()),
    );
}
