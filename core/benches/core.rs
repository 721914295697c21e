//! Native benchmark of the consensus core: `cargo bench -p tabcoin-core --bench core`.
//!
//! Every figure compares two ways of doing the same work, measured side by side in one run:
//! A and B alternate (A, B, A, B, …) and the median rate of each is reported with the ratio of
//! the medians. Mining alternates runs of about 2 s; block accept and `verify_all` alternate
//! call by call. Absolute rates move with the load on the (shared, 2-core) machine; the
//! ratios are what to compare.
//!
//! 1. mining: `MinerJob::step` (midstate) against `sha256d(&header.to_bytes())` per nonce;
//! 2. block validation: `Chain::accept_block` of a block of ~300 payments with
//!    `VerifyMode::Batch` against `VerifyMode::Single`, and `sig::verify_all` alone on the same
//!    signatures;
//! 3. template: `Mempool::select` against the old multi-pass selection on a 5 MB pool of
//!    adversarial chains (`mempool/mod.rs`; its own section of the docs, written whenever the
//!    figure runs under `--bench`).
//!
//! Arguments: cargo passes `--bench`; other flags are ignored. A word without a leading `-`
//! is a filter: only figures whose name (`mining`, `block`, `sigs`, `template`, `parallel`) contains it are measured,
//! and the docs are not rewritten. Without `--bench` (e.g. `cargo test --benches`) every figure
//! runs once, briefly, as a smoke test, and the docs are not rewritten either. A full run
//! rewrites the part of `docs/BENCHMARKS.md` between `<!-- core:begin -->` and
//! `<!-- core:end -->`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixture/mod.rs"]
mod fixture;
#[path = "parallel/mod.rs"]
mod parallel;
#[path = "propagation/mod.rs"]
mod propagation;
#[path = "report/mod.rs"]
mod report;
#[path = "support/mod.rs"]
mod support;
#[path = "mempool/mod.rs"]
mod template;
use fixture::{accept_once, build_fixture, verify_once};
use report::{Results, doc_section, print_ranges, print_table, rows, write_docs};
use support::{Machine, median, spread, spread_name, thread_on_cpu, yes_no};

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use tabcoin_core::chain::Chain;
use tabcoin_core::hash::{Hash256, sha256d};
use tabcoin_core::mempool::Mempool;
use tabcoin_core::miner::{MinerJob, NonceRange, Step};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHeader, OutPoint, Payload, Transaction, TxIn, TxOut};
use tabcoin_core::sig::{self, PublicKey, SigCheck, Signature, VerifyMode};
use tabcoin_core::testkit;
use tabcoin_core::units::{Amount, COIN, CompactTarget};
use tabcoin_core::utxo::UtxoView;
use tabcoin_core::wallet::Wallet;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/BENCHMARKS.md");
const BEGIN: &str = "<!-- core:begin -->";
const END: &str = "<!-- core:end -->";

/// Bits whose target is 1: no hash meets it, so a search never stops early.
const IMPOSSIBLE_BITS: u32 = 0x0300_0001;
/// Nonces between two clock reads while mining.
const MINING_CHUNK: u64 = 1 << 16;

struct Config {
    /// Mining: rounds of A then B, each run lasting `mining_span`.
    mining_rounds: usize,
    mining_span: Duration,
    /// Block accept and `verify_all`: single calls of A then B, repeated for about the budget
    /// and at least `min_pairs` times.
    block_budget: Duration,
    sigs_budget: Duration,
    min_pairs: usize,
    filter: Option<String>,
    /// A full, unfiltered `--bench` run: the figures go into the docs.
    write_docs: bool,
}

impl Config {
    fn from_args() -> Config {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let bench = args.iter().any(|a| a == "--bench");
        let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
        if bench {
            Config {
                mining_rounds: 5,
                mining_span: Duration::from_millis(2_000),
                // A call takes tens of milliseconds and the load of the shared machine changes
                // over seconds: alternating call by call pairs each A with a B under the same
                // load, and the median drops the calls that were preempted.
                block_budget: Duration::from_secs(12),
                sigs_budget: Duration::from_secs(8),
                min_pairs: 20,
                write_docs: filter.is_none(),
                filter,
            }
        } else {
            Config {
                mining_rounds: 1,
                mining_span: Duration::from_millis(50),
                block_budget: Duration::ZERO,
                sigs_budget: Duration::ZERO,
                min_pairs: 1,
                write_docs: false,
                filter,
            }
        }
    }

    fn wants(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }
}

/// Rates of A and B from interleaved runs (index `i` of each from the same round).
struct Pair {
    a: Vec<f64>,
    b: Vec<f64>,
    /// Share of the wall-clock time the bench thread spent on a CPU (the rest it waited for
    /// one: other work on the machine), if the kernel tells.
    on_cpu: Option<f64>,
}

/// Measures the share of wall time spent on a CPU around `f`.
fn with_cpu_share(f: impl FnOnce() -> Pair) -> Pair {
    let wall = Instant::now();
    let cpu = thread_on_cpu();
    let mut pair = f();
    let elapsed = wall.elapsed();
    pair.on_cpu = cpu
        .zip(thread_on_cpu())
        .map(|(before, after)| (after - before).as_secs_f64() / elapsed.as_secs_f64());
    pair
}

impl Pair {
    /// `rounds` rounds of A then B; each closure performs one timed run and returns a rate.
    fn measure(rounds: usize, mut a: impl FnMut() -> f64, mut b: impl FnMut() -> f64) -> Pair {
        with_cpu_share(|| {
            let mut pair = Pair {
                a: Vec::with_capacity(rounds),
                b: Vec::with_capacity(rounds),
                on_cpu: None,
            };
            for _ in 0..rounds {
                pair.a.push(a());
                pair.b.push(b());
            }
            pair
        })
    }

    /// One call of A then one of B, repeated for about `budget` and at least `min` times;
    /// each closure times one call and returns its duration.
    fn alternate(
        budget: Duration,
        min: usize,
        mut a: impl FnMut() -> Duration,
        mut b: impl FnMut() -> Duration,
    ) -> Pair {
        with_cpu_share(|| {
            let mut pair = Pair {
                a: Vec::new(),
                b: Vec::new(),
                on_cpu: None,
            };
            let start = Instant::now();
            while pair.a.len() < min || start.elapsed() < budget {
                pair.a.push(1.0 / a().as_secs_f64());
                pair.b.push(1.0 / b().as_secs_f64());
            }
            pair
        })
    }

    fn rounds(&self) -> usize {
        self.a.len()
    }

    fn median_a(&self) -> f64 {
        median(&self.a)
    }

    fn median_b(&self) -> f64 {
        median(&self.b)
    }

    /// The median over rounds of A ÷ B within a round: each A is compared with the B run
    /// next to it, under the same load.
    fn ratio(&self) -> f64 {
        median(&self.round_ratios())
    }

    /// A ÷ B within each round: how much the ratio itself moves.
    fn round_ratios(&self) -> Vec<f64> {
        self.a.iter().zip(&self.b).map(|(a, b)| a / b).collect()
    }

    /// The same pair with every rate multiplied by `k` (e.g. blocks/s to signatures/s).
    fn scaled(&self, k: f64) -> Pair {
        Pair {
            a: self.a.iter().map(|r| r * k).collect(),
            b: self.b.iter().map(|r| r * k).collect(),
            on_cpu: self.on_cpu,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mining

fn mining_header() -> BlockHeader {
    let mut header = Params::test().genesis_block().header;
    header.bits = CompactTarget(IMPOSSIBLE_BITS);
    header
}

/// Hashes per second of `MinerJob::step` over about `span`.
fn midstate_rate(header: BlockHeader, span: Duration) -> f64 {
    let mut job = MinerJob::new(header, NonceRange::ALL).expect("the bench bits decode");
    let start = Instant::now();
    let elapsed = loop {
        let step = job.step(MINING_CHUNK);
        assert!(
            matches!(step, Step::Continue),
            "a hash met the impossible target: {step:?}"
        );
        let elapsed = start.elapsed();
        if elapsed >= span {
            break elapsed;
        }
    };
    job.hashes() as f64 / elapsed.as_secs_f64()
}

/// Hashes per second of SHA-256d over the whole serialised header, nonce set each time.
fn full_header_rate(header: BlockHeader, span: Duration) -> f64 {
    let target = header
        .bits
        .to_target()
        .expect("the bench bits decode")
        .to_be_bytes();
    let mut header = header;
    let mut nonce = 0u64;
    let mut hashes = 0u64;
    let start = Instant::now();
    let elapsed = loop {
        for _ in 0..MINING_CHUNK {
            header.nonce = nonce;
            let hash = sha256d(&header.to_bytes());
            assert!(hash.0 > target, "a hash met the impossible target");
            nonce += 1;
        }
        hashes += MINING_CHUNK;
        let elapsed = start.elapsed();
        if elapsed >= span {
            break elapsed;
        }
    };
    hashes as f64 / elapsed.as_secs_f64()
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let cfg = Config::from_args();
    let started = Instant::now();
    let machine = Machine::probe();
    let mut results = Results {
        mining: None,
        block: None,
        sigs: None,
        fixture: None,
    };

    if cfg.wants("mining") {
        eprintln!(
            "mining: {} rounds of {:.1} s + {:.1} s …",
            cfg.mining_rounds,
            cfg.mining_span.as_secs_f64(),
            cfg.mining_span.as_secs_f64()
        );
        let header = mining_header();
        results.mining = Some(Pair::measure(
            cfg.mining_rounds,
            || midstate_rate(header, cfg.mining_span),
            || full_header_rate(header, cfg.mining_span),
        ));
    }

    if cfg.wants("block") || cfg.wants("sigs") {
        let t = Instant::now();
        let fx = build_fixture();
        // The block is valid under both modes before anything is timed.
        for mode in [VerifyMode::Single, VerifyMode::Batch] {
            let mut chain = fx.parent.clone();
            chain.set_verify_mode(mode);
            let outcome = chain.accept_block(&fx.block, fx.now).expect("valid block");
            assert_eq!(outcome.connected, vec![fx.block.hash()]);
        }
        eprintln!(
            "block: {} payments, {} signatures, {} bytes (built in {:.1} s)",
            fx.payments(),
            fx.signatures(),
            fx.block_bytes,
            t.elapsed().as_secs_f64()
        );
        if cfg.wants("block") {
            eprintln!(
                "block accept: alternating calls for {:.0} s …",
                cfg.block_budget.as_secs_f64()
            );
            results.block = Some(Pair::alternate(
                cfg.block_budget,
                cfg.min_pairs,
                || accept_once(&fx, VerifyMode::Batch),
                || accept_once(&fx, VerifyMode::Single),
            ));
        }
        if cfg.wants("sigs") {
            eprintln!(
                "verify_all: alternating calls for {:.0} s …",
                cfg.sigs_budget.as_secs_f64()
            );
            let sighashes = fx.sighashes();
            let checks = fx.checks(&sighashes);
            assert_eq!(checks.len(), fx.signatures());
            results.sigs = Some(Pair::alternate(
                cfg.sigs_budget,
                cfg.min_pairs,
                || verify_once(&checks, VerifyMode::Batch),
                || verify_once(&checks, VerifyMode::Single),
            ));
        }
        results.fixture = Some(fx);
    }

    let mut ran_other = false;
    if cfg.wants("p10") {
        let (before, after) = propagation::measure();
        if cfg.block_budget > Duration::ZERO {
            let desc = format!(
                "{} ({} logical CPUs), {}",
                machine.cpu, machine.logical_cpus, machine.rustc
            );
            let section = propagation::doc_section(&before, &after, &machine.date, &desc);
            match propagation::write_docs(DOC_PATH, &section) {
                Ok(()) => println!("wrote the p10 section of docs/BENCHMARKS.md"),
                Err(e) => {
                    eprintln!("cannot write {DOC_PATH}: {e}");
                    std::process::exit(1);
                }
            }
        }
        ran_other = true;
    }
    if cfg.wants("template") {
        let bench = cfg.block_budget > Duration::ZERO;
        let budget = if bench {
            Duration::from_secs(10)
        } else {
            Duration::ZERO
        };
        let m = template::measure(bench, budget, if bench { 10 } else { 1 });
        m.print();
        if bench {
            let desc = format!(
                "{} ({} logical CPUs), {}",
                machine.cpu, machine.logical_cpus, machine.rustc
            );
            match template::write_docs(DOC_PATH, &m.doc_section(&machine.date, &desc)) {
                Ok(()) => println!("wrote the mempool section of docs/BENCHMARKS.md"),
                Err(e) => {
                    eprintln!("cannot write {DOC_PATH}: {e}");
                    std::process::exit(1);
                }
            }
        }
        ran_other = true;
    }

    if cfg.wants("parallel") {
        let bench = cfg.block_budget > Duration::ZERO;
        let fx = results.fixture.take().unwrap_or_else(build_fixture);
        let job = parallel::block_job(&fx.parent, &fx.block);
        let threads = machine.logical_cpus.max(2);
        eprintln!("P5 native: {} vs 1 thread, alternating calls …", threads);
        let budget = if bench {
            Duration::from_secs(10)
        } else {
            Duration::ZERO
        };
        let m = parallel::measure(&job, threads, budget, cfg.min_pairs);
        m.print();
        if bench {
            let desc = format!(
                "{} ({} logical CPUs), {}",
                machine.cpu, machine.logical_cpus, machine.rustc
            );
            let section = m.doc_section(&machine.date, &desc, machine.logical_cpus);
            match parallel::write_docs(DOC_PATH, &section) {
                Ok(()) => println!("wrote the P5 native section of docs/BENCHMARKS.md"),
                Err(e) => {
                    eprintln!("cannot write {DOC_PATH}: {e}");
                    std::process::exit(1);
                }
            }
        }
        results.fixture = Some(fx);
        ran_other = true;
    }

    let rows = rows(&results);
    if rows.is_empty() && ran_other {
        return;
    }
    if rows.is_empty() {
        eprintln!(
            "no figure matches the filter {:?} (figures: mining, block, sigs, template)",
            cfg.filter.as_deref().unwrap_or("")
        );
        return;
    }
    print_table(&rows, &machine, &cfg);
    print_ranges(&results);
    if cfg.write_docs {
        let section = doc_section(&results, &machine, &cfg);
        match write_docs(&section) {
            Ok(()) => println!("wrote the core section of docs/BENCHMARKS.md"),
            Err(e) => {
                eprintln!("cannot write {DOC_PATH}: {e}");
                std::process::exit(1);
            }
        }
    } else {
        println!("docs/BENCHMARKS.md not rewritten (filtered or not a --bench run)");
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
