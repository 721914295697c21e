//! P5 native: the signature checks of the 300-payment validation block as one job
//! (`connect_block_unsigned`), verified as N chunks on N threads against 1 chunk on the
//! calling thread — what the relay's `verify::run` does with `--verify-threads N` and 1.
//! Calls alternate (N threads, 1 thread, …) for the budget; the docs get the medians, the
//! ratio of the medians of paired calls, and the spread. Written whenever the figure runs
//! under `--bench` (filter `parallel`), between `<!-- p5-native:begin -->` and
//! `<!-- p5-native:end -->`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tabcoin_core::chain::Chain;
use tabcoin_core::primitives::Block;
use tabcoin_core::sig::{VerifyJob, VerifyMode};
use tabcoin_core::utxo::UtxoOverlay;
use tabcoin_core::validation::{check_block, connect_block_unsigned};

use super::{Pair, median};

const BEGIN: &str = "<!-- p5-native:begin -->";
const END: &str = "<!-- p5-native:end -->";

/// The signature job of `block` on `parent`'s tip, as the chain builds it.
pub fn block_job(parent: &Chain, block: &Block) -> VerifyJob {
    let checked = check_block(block, parent.params()).expect("the bench block is valid");
    let mut overlay = UtxoOverlay::new(parent.utxo());
    let genesis = parent.genesis_hash();
    let height = parent.height().next();
    let (_, sigs) =
        connect_block_unsigned(&checked, height, &mut overlay, parent.params(), &genesis)
            .expect("the bench block connects");
    sigs.job().clone()
}

/// Verifies the job as `threads` chunks, one scoped thread each (in place for 1).
fn run(job: &VerifyJob, threads: usize) -> Duration {
    let start = Instant::now();
    let results = if threads <= 1 {
        job.results_in_place(1, VerifyMode::Single)
    } else {
        let chunks = job.chunks(threads);
        std::thread::scope(|s| {
            let hs: Vec<_> = chunks
                .iter()
                .map(|c| s.spawn(move || c.verify(VerifyMode::Single)))
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    };
    let elapsed = start.elapsed();
    assert_eq!(job.finish(&results), Ok(Some(Ok(()))));
    elapsed
}

pub struct Measured {
    pub threads: usize,
    pub signatures: usize,
    pub pair: Pair,
}

pub fn measure(job: &VerifyJob, threads: usize, budget: Duration, min_pairs: usize) -> Measured {
    // Signatures per second from the time of one call.
    let n = job.len() as f64;
    let pair = Pair::alternate(budget, min_pairs, || run(job, threads), || run(job, 1));
    let pair = Pair {
        a: pair.a.iter().map(|r| r * n).collect(),
        b: pair.b.iter().map(|r| r * n).collect(),
        on_cpu: pair.on_cpu,
    };
    Measured {
        threads,
        signatures: job.len(),
        pair,
    }
}

impl Measured {
    fn range(xs: &[f64]) -> (f64, f64) {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }

    pub fn print(&self) {
        println!(
            "P5 native: {} signatures, {} threads {:.0}/s, 1 thread {:.0}/s, ratio {:.3} ({} pairs)",
            self.signatures,
            self.threads,
            median(&self.pair.a),
            median(&self.pair.b),
            self.pair.ratio(),
            self.pair.a.len()
        );
    }

    pub fn doc_section(&self, date: &str, machine: &str, cores: usize) -> String {
        let mut w = String::new();
        let goal = 0.8 * (self.threads.min(cores) as f64);
        let ratios: Vec<f64> = self.pair.round_ratios();
        let (rlo, rhi) = Self::range(&ratios);
        let (alo, ahi) = Self::range(&self.pair.a);
        let (blo, bhi) = Self::range(&self.pair.b);
        writeln!(w, "{BEGIN}").unwrap();
        writeln!(w, "### P5 native: parallel signature checks ({date})").unwrap();
        writeln!(w).unwrap();
        writeln!(w, "Machine: {machine}. `cargo bench -p tabcoin-core --features test-utils --bench core -- parallel`.").unwrap();
        writeln!(w).unwrap();
        writeln!(w, "| id | figure | A | B | A ÷ B |").unwrap();
        writeln!(w, "|---|---|---|---|---|").unwrap();
        writeln!(
            w,
            "| P5 | Signature checks of the 300-payment block ({} signatures), signatures/s — A: the block's `VerifyJob` as {} chunks on {} threads, B: 1 chunk on 1 thread; goal ≥ {goal:.1} (0.8·min(N, cores)) | {:.0} | {:.0} | {:.3} |",
            self.signatures,
            self.threads,
            self.threads,
            median(&self.pair.a),
            median(&self.pair.b),
            self.pair.ratio()
        )
        .unwrap();
        writeln!(w).unwrap();
        writeln!(
            w,
            "Method: the job is what `connect_block_unsigned` collects for the validation block of the \
             core bench (same fixture: 20 senders, payments of 1–3 inputs, identical triples verified once). \
             A splits it with `VerifyJob::chunks(N)` and verifies each chunk on its own `std::thread::scope` \
             thread (thread start-up included, as in the relay's `verify::run`), B verifies it as one chunk on \
             the calling thread; both end with `VerifyJob::finish`. Calls alternate A, B for the budget; \
             {} pairs. Rates: A {alo:.0} – {ahi:.0}, B {blo:.0} – {bhi:.0} signatures/s; A ÷ B per pair \
             {rlo:.3} – {rhi:.3}; the ratio is the median of the per-pair ratios. The machine is shared: \
             other builds running meanwhile take cores from the N-thread side first.",
            self.pair.a.len()
        )
        .unwrap();
        writeln!(w, "{END}").unwrap();
        w
    }
}

/// Replaces the P5 native section in the docs at `path`, or appends it.
pub fn write_docs(path: &str, section: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path)?;
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let after = &old[e + END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &old[..b])
        }
        _ => {
            let sep = if old.ends_with('\n') { "\n" } else { "\n\n" };
            format!("{old}{sep}{section}")
        }
    };
    std::fs::write(path, new)
}
