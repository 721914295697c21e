//! The `memory` section of docs/BENCHMARKS.md.

use std::fmt::Write;

use super::chain::{Made, Spec};
use super::{Measured, ROOT, support};

const BEGIN: &str = "<!-- memory:begin -->";
const END: &str = "<!-- memory:end -->";

/// How to read this build's figures (the same in every run).
const READING: &str = "Every relay runs with its default flags. This build's RSS does not follow the chain: it is the binary's and libraries' pages (~10 MiB), the node's state (headers, the UTXO set: a few MiB here) and two caches of fixed size, redb's page cache (`--store-cache`, 4 MiB) and the recent block bodies (`--body-cache`, 4 MiB), with glibc malloc set to one arena and separate mappings for allocations of 32 KiB and more, so memory freed after the sync's burst of blocks goes back to the OS (docs/STORAGE.md, \"Relay memory\"). The store's other pages are in the OS page cache, which VmRSS does not count. A fresh sync is slower than with a bigger store cache (docs/STORAGE.md: ~35–45% on this machine against `--store-cache 32M`), which is what the sync column shows against the old relay.";

/// Everything one run measured.
pub(crate) struct Run {
    pub(crate) spec: Spec,
    pub(crate) chains: Vec<Made>,
    pub(crate) results: Vec<Measured>,
    /// Start-up of each source relay on the generated store: (scale, seconds).
    pub(crate) sources: Vec<(u64, f64)>,
    /// Whether the old relay was measured.
    pub(crate) old: bool,
    pub(crate) gen_s: f64,
    pub(crate) total_s: f64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn find<'a>(run: &'a Run, side: &str, scale: u64) -> Option<&'a Measured> {
    run.results
        .iter()
        .find(|m| m.side == side && m.scale == scale)
}

fn chain(run: &Run, scale: u64) -> &Made {
    run.chains
        .iter()
        .find(|c| c.scale == scale)
        .expect("every measured scale has a chain")
}

/// RSS bytes per chain byte from the 2× to the 4× chain, for `side`.
fn slope(run: &Run, side: &str) -> Option<f64> {
    let (a, b) = (find(run, side, 2)?, find(run, side, 4)?);
    let (ca, cb) = (chain(run, 2), chain(run, 4));
    let d_rss = (b.rss.rss_kib as f64 - a.rss.rss_kib as f64) * 1024.0;
    Some(d_rss / (cb.bytes as f64 - ca.bytes as f64))
}

pub(crate) fn section(run: &Run) -> String {
    let mut w = String::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let s = run.spec;
    let c1 = chain(run, 1);
    writeln!(w, "{BEGIN}").unwrap();
    writeln!(
        w,
        "## Relay memory against chain size, and start-up (`cargo bench -p tabcoin-relay --bench memory`)\n"
    )
    .unwrap();
    writeln!(
        w,
        "Written by `relay/benches/memory.rs` on {}: {cpu} ({cpus} logical CPUs), {}, bench profile (release). {} min {} s in all{}.\n",
        support::utc_now(),
        support::rustc_version(),
        run.total_s as u64 / 60,
        run.total_s as u64 % 60,
        if run.gen_s > 0.0 {
            format!(", {:.0} s of it generating the chains", run.gen_s)
        } else {
            ", the chains taken from the cache under `target/membench/`".into()
        }
    )
    .unwrap();
    writeln!(
        w,
        "The chains: one test-network chain of {} blocks; its first {} and {} blocks are the 1× and 2× chains. After {} blocks of coinbases and funding, every block is a coinbase and one transaction spending the {} coins of one of {} lanes and paying the same amounts to {} new coins of that lane, which the block {} blocks later spends: blocks of ~{:.0} KB ({:.1} MiB per 1,000 blocks), a UTXO set of {} coins plus one coinbase per block whatever the chain's length, one signature per block (all inputs of a transaction spend one key's coins). Each fresh relay starts on an empty directory with `--peer` naming a source relay (this build, on the chain's database) over loopback, both with `--messages-per-sec 100000` (the sync measures the node, not the per-peer limiter); its RSS (VmRSS) is read when `/api/status` first reports the tip, its peak (VmHWM) is of the whole sync. The fresh relays of both builds sync from the same source at the same time (so the sync times are of two syncs sharing the machine; they are not a figure of this section). Then each is stopped (SIGTERM) and started again on its store, one at a time: start-up is spawn → `/api/status` reports the tip.\n",
        c1.blocks * 4,
        c1.blocks,
        c1.blocks * 2,
        s.lanes + 3,
        s.outputs,
        s.lanes,
        s.outputs,
        s.lanes,
        c1.bytes as f64 / c1.blocks as f64 / 1000.0,
        c1.bytes as f64 / c1.blocks as f64 * 1000.0 / 1048576.0,
        s.lanes * s.outputs,
    )
    .unwrap();
    if run.old {
        writeln!(
            w,
            "\"Old\" is the relay before the issue-10 storage work (main at 61671f8, the parent of the storage merge cbf2152: every block body in memory, the whole UTXO set a map, start-up reads every block), built separately (`target/membench/old-relay/tabcoin-relay` or `MEMBENCH_OLD_RELAY`, see `relay/benches/memory.rs`); it syncs from the same source at the same time as the new one.\n"
        )
        .unwrap();
    } else {
        writeln!(
            w,
            "Only this build was measured: the old relay (main at 61671f8, before the issue-10 storage merge cbf2152) is measured only when its binary is at `target/membench/old-relay/tabcoin-relay` or named by `MEMBENCH_OLD_RELAY` (see `relay/benches/memory.rs`).\n"
        )
        .unwrap();
    }
    writeln!(w, "{READING}\n").unwrap();
    let sides: Vec<&str> = if run.old {
        vec!["new", "old"]
    } else {
        vec!["new"]
    };
    writeln!(
        w,
        "| chain | blocks | chain MiB | relay | sync, s | RSS at tip, MiB | RSS ÷ chain bytes | peak RSS, MiB | store file, MiB | start-up, s | RSS after start-up, MiB |"
    )
    .unwrap();
    writeln!(w, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|").unwrap();
    for m in run
        .chains
        .iter()
        .filter(|c| run.results.iter().any(|r| r.scale == c.scale))
    {
        for side in &sides {
            let Some(r) = find(run, side, m.scale) else {
                continue;
            };
            writeln!(
                w,
                "| {}× | {} | {:.1} | {side} | {:.1} | {:.1} | {:.3} | {:.1} | {:.1} | {:.2} | {:.1} |",
                m.scale,
                m.blocks,
                m.bytes as f64 / 1048576.0,
                r.sync_s,
                mib(r.rss.rss_kib),
                r.rss.rss_kib as f64 * 1024.0 / m.bytes as f64,
                mib(r.rss.hwm_kib),
                r.store_bytes as f64 / 1048576.0,
                r.startup_s,
                mib(r.startup_rss.rss_kib),
            )
            .unwrap();
        }
    }
    writeln!(w).unwrap();
    let goal = |ok: bool| if ok { "met" } else { "not met" };
    let worst = run
        .results
        .iter()
        .filter(|r| r.side == "new")
        .map(|r| r.rss.rss_kib as f64 * 1024.0 / chain(run, r.scale).bytes as f64)
        .fold(0.0f64, f64::max);
    if run.results.iter().any(|r| r.side == "new") {
        writeln!(
            w,
            "- RSS ÷ chain bytes (goal ≤ 0.15): at most {worst:.3} for this build ({}).",
            goal(worst <= 0.15)
        )
        .unwrap();
    }
    match (slope(run, "new"), slope(run, "old")) {
        (Some(n), Some(o)) => writeln!(
            w,
            "- Slope of RSS from the 2× to the 4× chain (RSS bytes per chain byte): {n:.3} for this build, {o:.3} for the old relay: {:.2} of the old (goal ≤ 0.25, {}).",
            n / o,
            goal(n / o <= 0.25)
        )
        .unwrap(),
        (Some(n), None) => writeln!(
            w,
            "- Slope of RSS from the 2× to the 4× chain (RSS bytes per chain byte): {n:.3} for this build (the old relay not measured in this run)."
        )
        .unwrap(),
        _ => {}
    }
    for scale in [1, 2, 4] {
        if let (Some(n), Some(o)) = (find(run, "new", scale), find(run, "old", scale)) {
            writeln!(
                w,
                "- Start-up on the {scale}× store: {:.2} s against {:.2} s for the old relay ({:.2}×).",
                n.startup_s,
                o.startup_s,
                n.startup_s / o.startup_s
            )
            .unwrap();
        }
    }
    let sources: Vec<String> = run
        .sources
        .iter()
        .map(|(s, t)| format!("{s}× {t:.2} s"))
        .collect();
    writeln!(
        w,
        "- The source relays' start-up on the generated stores (this build): {}.",
        sources.join(", ")
    )
    .unwrap();
    writeln!(w, "{END}").unwrap();
    w
}

/// Replaces our marked section in docs/BENCHMARKS.md, or appends it.
pub(crate) fn write_docs(section: &str) -> std::io::Result<()> {
    let path = std::path::Path::new(ROOT)
        .join("docs")
        .join("BENCHMARKS.md");
    let old = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    std::fs::write(&path, support::splice_section(&old, BEGIN, END, section))
}
