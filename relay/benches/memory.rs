//! Relay memory against chain size, and relay start-up time (issue 10's "Measure" rows).
//!
//! `cargo bench -p tabcoin-relay --bench memory` builds (or takes from `target/membench/`) a
//! chain of 4 × `MEMBENCH_BLOCKS` (default 4,000) ~50 KB blocks whose prefixes are the 1× and
//! 2× chains (see `memory/chain.rs`), and for each chain:
//! - starts a source relay on the chain's database (the relay built with this bench);
//! - starts a fresh relay on an empty directory linked to the source over loopback and waits
//!   until its tip is the chain's tip: its RSS then (and its peak RSS during the sync) is the
//!   memory figure;
//! - stops it (SIGTERM) and starts it again on its own store: the time from spawn until
//!   `/api/status` reports the tip is the start-up figure.
//!
//! With a relay binary from before the issue-10 storage work (main at 61671f8, the parent of
//! the storage merge cbf2152) at `target/membench/old-relay/tabcoin-relay`, or named by
//! `MEMBENCH_OLD_RELAY=PATH`, a fresh relay of that binary syncs at the same time as the new
//! one (start-ups one at a time); without it only the new side is reported. To build it once:
//!
//! ```text
//! git worktree add /tmp/oldrelay 61671f8
//! (cd /tmp/oldrelay && CARGO_TARGET_DIR=/tmp/oldrelay/target cargo build --release -p tabcoin-relay)
//! mkdir -p target/membench/old-relay && cp /tmp/oldrelay/target/release/tabcoin-relay target/membench/old-relay/
//! git worktree remove --force /tmp/oldrelay
//! ```
//!
//! `BENCH_NO_DOC=1` leaves the docs alone; `MEMBENCH_SCALES=1,2` measures only some of the
//! chains; `MEMBENCH_BLOCKS`, `MEMBENCH_OUTPUTS` and `MEMBENCH_LANES` change the chains.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool: failing loudly is right

#[path = "../../core/benches/support/mod.rs"]
mod support;

#[path = "memory/chain.rs"]
mod chain;
#[path = "../tests/common/http.rs"]
mod http;
#[path = "memory/procs.rs"]
mod procs;
#[path = "memory/report.rs"]
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chain::Spec;
use procs::Relay;

const RELAY_BIN: &str = env!("CARGO_BIN_EXE_tabcoin-relay");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// Upper bound on one sync or start-up (a failure, not a figure, beyond it).
const TIMEOUT: Duration = Duration::from_secs(1800);

/// What one relay binary did on one chain.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    pub(crate) side: &'static str,
    pub(crate) scale: u64,
    /// Seconds from spawn to the tip.
    pub(crate) sync_s: f64,
    /// RSS when the tip was reached, and the peak RSS of the process until then.
    pub(crate) rss: procs::Mem,
    /// Seconds from spawn (on the synced store) until `/api/status` reports the tip.
    pub(crate) startup_s: f64,
    /// RSS right after that start-up.
    pub(crate) startup_rss: procs::Mem,
    /// Size of its database file after the sync.
    pub(crate) store_bytes: u64,
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: a number")))
        .unwrap_or(default)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A fresh relay of one side, synced.
struct Synced {
    side: &'static str,
    bin: PathBuf,
    dir: PathBuf,
    sync: Duration,
    rss: procs::Mem,
}

/// Fresh relays of every side sync from `source` at the same time (each waited for on its
/// own thread, its RSS read as soon as it reports the tip), then are stopped.
fn sync_all(
    sides: &[(&'static str, PathBuf)],
    source: &Relay,
    made: &chain::Made,
    work: &Path,
) -> Vec<Synced> {
    let url = source.ws_url();
    let relays: Vec<(&'static str, PathBuf, PathBuf, Relay)> = sides
        .iter()
        .map(|(side, bin)| {
            let dir = work.join(format!("{side}-{}x", made.scale));
            let _ = std::fs::remove_dir_all(&dir);
            let log = work.join(format!("{side}-{}x-sync.log", made.scale));
            let relay = Relay::start(bin, &dir, Some(&url), log);
            (*side, bin.clone(), dir, relay)
        })
        .collect();
    let synced: Vec<(Synced, Relay)> = std::thread::scope(|s| {
        let handles: Vec<_> = relays
            .into_iter()
            .map(|(side, bin, dir, mut relay)| {
                s.spawn(move || {
                    let sync = relay.wait_height(made.blocks, TIMEOUT);
                    let rss = relay.mem();
                    eprintln!(
                        "  {side} {}x: synced {} blocks in {:.1} s, RSS {} MiB (peak {} MiB)",
                        made.scale,
                        made.blocks,
                        sync.as_secs_f64(),
                        rss.rss_kib / 1024,
                        rss.hwm_kib / 1024
                    );
                    let done = Synced {
                        side,
                        bin,
                        dir,
                        sync,
                        rss,
                    };
                    (done, relay)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sync thread panicked"))
            .collect()
    });
    synced
        .into_iter()
        .map(|(done, relay)| {
            relay.stop();
            done
        })
        .collect()
}

/// Starts a synced relay again on its own store (alone on the machine).
fn restart(synced: Synced, made: &chain::Made, work: &Path) -> Measured {
    let side = synced.side;
    let store_bytes = dir_bytes(&synced.dir);
    let log = work.join(format!("{side}-{}x-start.log", made.scale));
    let mut again = Relay::start(&synced.bin, &synced.dir, None, log);
    let startup = again.wait_height(made.blocks, TIMEOUT);
    let startup_rss = again.mem();
    eprintln!(
        "  {side} {}x: start-up {:.2} s, RSS {} MiB",
        made.scale,
        startup.as_secs_f64(),
        startup_rss.rss_kib / 1024
    );
    again.stop();
    let _ = std::fs::remove_dir_all(&synced.dir);
    Measured {
        side,
        scale: made.scale,
        sync_s: synced.sync.as_secs_f64(),
        rss: synced.rss,
        startup_s: startup.as_secs_f64(),
        startup_rss,
        store_bytes,
    }
}

fn main() {
    let t0 = Instant::now();
    let spec = Spec {
        blocks: env_num("MEMBENCH_BLOCKS", 4_000),
        outputs: env_num("MEMBENCH_OUTPUTS", 350) as usize,
        lanes: env_num("MEMBENCH_LANES", 10) as usize,
    };
    let scales: Vec<u64> = std::env::var("MEMBENCH_SCALES")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .map(|s| s.trim().parse().expect("MEMBENCH_SCALES: numbers"))
        .collect();
    let cache = Path::new(ROOT).join("target").join("membench");
    let old = match std::env::var_os("MEMBENCH_OLD_RELAY").map(PathBuf::from) {
        Some(o) => {
            assert!(o.is_file(), "MEMBENCH_OLD_RELAY: no file {}", o.display());
            Some(o)
        }
        None => Some(cache.join("old-relay").join("tabcoin-relay")).filter(|p| p.is_file()),
    };
    let work = cache.join("run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create the bench's work directory");

    eprintln!("memory bench: chains of {spec:?} under {}", cache.display());
    let (chains, gen_s) = chain::chains(&cache, spec);
    eprintln!("  chains ready ({gen_s:.1} s generating)");

    let new_bin = PathBuf::from(RELAY_BIN);
    let mut results = Vec::new();
    let mut sources = Vec::new();
    for made in chains.iter().filter(|m| scales.contains(&m.scale)) {
        let mut source = Relay::start(
            &new_bin,
            &made.dir,
            None,
            work.join(format!("source-{}x.log", made.scale)),
        );
        let up = source.wait_height(made.blocks, TIMEOUT);
        let tip = source
            .status()
            .map(|s| s["tip"].as_str().unwrap_or("").to_string());
        assert_eq!(
            tip.as_deref(),
            Some(made.tip.as_str()),
            "the source holds the chain"
        );
        sources.push((made.scale, up.as_secs_f64()));
        let mut sides = vec![("new", new_bin.clone())];
        sides.extend(old.iter().map(|o| ("old", o.clone())));
        let synced = sync_all(&sides, &source, made, &work);
        source.stop();
        for s in synced {
            results.push(restart(s, made, &work));
        }
    }
    let total_s = t0.elapsed().as_secs_f64();
    eprintln!("memory bench: {total_s:.0} s in all ({gen_s:.0} s generating)");

    let run = report::Run {
        spec,
        chains: chains.clone(),
        results,
        sources,
        old: old.is_some(),
        gen_s,
        total_s,
    };
    let section = report::section(&run);
    println!("{section}");
    if std::env::var_os("BENCH_NO_DOC").is_none() {
        report::write_docs(&section).expect("write docs/BENCHMARKS.md");
    }
}
