//! SHA-NI mining bench: `cargo bench -p tabcoin-relay --bench shani`.
//!
//! Single-threaded hash rates of three ways to search nonces, measured side by side in one
//! run (rounds of A, B, C — the order rotating from round to round — with medians):
//!
//! - A: core's `MinerJob::step` (the `sha2` crate, which picks SHA-NI at run time itself; one
//!   nonce at a time);
//! - B: the relay's `sha_ni::FastJob::step`, what `--mine` threads run;
//! - C: the reference loop `sha_ni::reference_loop`: the same SHA-NI kernel, the same number
//!   of interleaved nonces, in a bare loop with no target check and no bookkeeping — the
//!   ceiling for B.
//!
//! Two more figures run the reference loop at several interleave widths (1 to 8 nonces at a
//! time), which is how the kernel's width was chosen, and compiled for each instruction
//! encoding the CPU runs (SSE4.1, AVX, AVX-512VL), which is why `FastJob` picks one at run
//! time.
//!
//! One more runs the relay's real miner threads (`miner::Miner`, what `--mine` starts) with
//! one thread and with as many as the machine has (`available_parallelism`), side by side:
//! issue 14 asks N threads ÷ 1 thread ≥ 0.95·min(N, cores).
//!
//! Rates are hashes per second of the bench thread's time on a CPU (Linux
//! `/proc/thread-self/schedstat`; wall-clock time elsewhere), so time spent waiting while
//! other work runs on the shared machine does not count. About 22 s of CPU time in all.
//!
//! Arguments: cargo passes `--bench`. A word without a leading `-` is a filter (`mining`,
//! `widths`, `encodings`, `threads`): only those figures run and the docs are not rewritten. Without
//! `--bench` (e.g. `cargo test --benches`) everything runs once, briefly, as a smoke test,
//! and the docs are not rewritten either. A full run rewrites the part of
//! `docs/BENCHMARKS.md` between `<!-- shani:begin -->` and `<!-- shani:end -->` (adding the
//! markers at the end if missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/benches/support/mod.rs"]
mod support;
use support::{Machine, median, min_max, thread_on_cpu};

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tabcoin_core::miner::{BlockTemplate, MinerJob, NonceRange, Step};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::BlockHeader;
use tabcoin_core::units::{Amount, CompactTarget, Height};
use tabcoin_relay::miner::Miner;
use tabcoin_relay::sha_ni::{self, Backend, FastJob, LANES};

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/BENCHMARKS.md");
const BEGIN: &str = "<!-- shani:begin -->";
const END: &str = "<!-- shani:end -->";

/// Bits whose target is 1: no hash meets it, so a search never stops early.
const IMPOSSIBLE_BITS: u32 = 0x0300_0001;
/// Nonces per `step` call, and between two clock reads: the relay's miner threads step
/// `1 << 15` nonces at a time.
const CHUNK: u64 = 1 << 15;
/// Interleave widths of the width figure.
const WIDTHS: [usize; 6] = [1, 2, 3, 4, 6, 8];
/// Instruction encodings of the encoding figure (names as `sha_ni::encoding` gives them).
const ENCODINGS: [&str; 3] = ["sse4.1", "avx", "avx-512vl"];

struct Config {
    rounds: usize,
    span: Duration,
    width_rounds: usize,
    width_span: Duration,
    filter: Option<String>,
    write_docs: bool,
}

impl Config {
    fn from_args() -> Config {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let bench = args.iter().any(|a| a == "--bench");
        let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
        if bench {
            Config {
                rounds: 7,
                span: Duration::from_millis(600),
                width_rounds: 5,
                width_span: Duration::from_millis(200),
                write_docs: filter.is_none(),
                filter,
            }
        } else {
            Config {
                rounds: 1,
                span: Duration::from_millis(30),
                width_rounds: 1,
                width_span: Duration::from_millis(10),
                write_docs: false,
                filter,
            }
        }
    }

    fn wants(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Rates of several sides measured in interleaved rounds: `rates[side][round]`.
struct Sides {
    rates: Vec<Vec<f64>>,
    /// Share of the wall-clock time the bench thread spent on a CPU.
    on_cpu: Option<f64>,
}

impl Sides {
    /// `rounds` rounds; in round `r` the sides run in turn starting at side `r % n`, so each
    /// side runs first, second, … about equally often. Each closure does one timed run and
    /// returns hashes per second.
    fn measure(rounds: usize, sides: &mut [&mut dyn FnMut() -> f64]) -> Sides {
        let n = sides.len();
        let mut rates = vec![Vec::with_capacity(rounds); n];
        let wall = Instant::now();
        let cpu = thread_on_cpu();
        for r in 0..rounds {
            for k in 0..n {
                let s = (r + k) % n;
                rates[s].push(sides[s]());
            }
        }
        let elapsed = wall.elapsed();
        let on_cpu = cpu
            .zip(thread_on_cpu())
            .map(|(before, after)| (after - before).as_secs_f64() / elapsed.as_secs_f64());
        Sides { rates, on_cpu }
    }

    fn median(&self, side: usize) -> f64 {
        median(&self.rates[side])
    }

    /// `a ÷ b` within each round.
    fn round_ratios(&self, a: usize, b: usize) -> Vec<f64> {
        self.rates[a]
            .iter()
            .zip(&self.rates[b])
            .map(|(x, y)| x / y)
            .collect()
    }

    /// The median over rounds of `a ÷ b` within the round.
    fn ratio(&self, a: usize, b: usize) -> f64 {
        median(&self.round_ratios(a, b))
    }
}

// ---------------------------------------------------------------------------------------------
// The three searches

fn bench_header() -> BlockHeader {
    let mut header = Params::test().genesis_block().header;
    header.bits = CompactTarget(IMPOSSIBLE_BITS);
    header
}

/// A clock for rates: the time this thread has run on a CPU when the kernel tells
/// (`/proc/thread-self/schedstat`), else wall-clock time. On the shared machines the bench
/// thread often waits for a CPU while other work runs; on-CPU time leaves those waits out.
struct Clock {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: thread_on_cpu(),
        }
    }

    fn elapsed(&self) -> Duration {
        match (self.cpu, thread_on_cpu()) {
            (Some(before), Some(now)) => now.saturating_sub(before),
            _ => self.wall.elapsed(),
        }
    }
}

/// Runs `chunk` (which returns the nonces it hashed) until `span` of the clock has passed
/// (or 1.5 times that of wall-clock time, so a busy machine does not stretch the run much);
/// hashes per second of the clock.
fn rate(span: Duration, mut chunk: impl FnMut() -> u64) -> f64 {
    let clock = Clock::start();
    let mut hashes = 0u64;
    loop {
        hashes += chunk();
        let elapsed = clock.elapsed();
        if elapsed >= span || clock.wall.elapsed() >= span * 3 / 2 {
            return hashes as f64 / elapsed.as_secs_f64();
        }
    }
}

/// A: core's `MinerJob::step`.
fn miner_job_rate(header: BlockHeader, span: Duration) -> f64 {
    let mut job = MinerJob::new(header, NonceRange::ALL).expect("the bench bits decode");
    rate(span, || {
        let before = job.hashes();
        let step = job.step(CHUNK);
        assert!(
            matches!(step, Step::Continue),
            "impossible target met: {step:?}"
        );
        job.hashes() - before
    })
}

/// B: the relay's `FastJob::step`.
fn fast_job_rate(header: BlockHeader, span: Duration) -> f64 {
    let mut job = FastJob::new(header, NonceRange::ALL).expect("the bench bits decode");
    rate(span, || {
        let before = job.hashes();
        let step = job.step(CHUNK);
        assert!(
            matches!(step, Step::Continue),
            "impossible target met: {step:?}"
        );
        job.hashes() - before
    })
}

/// C: the bare SHA-NI loop, `width` nonces at a time, in `encoding` (`None`: this CPU's best).
fn reference_rate(
    header: BlockHeader,
    encoding: Option<&str>,
    width: usize,
    span: Duration,
) -> f64 {
    let batches = CHUNK / width as u64;
    let mut start = 0u64;
    rate(span, || {
        let x = sha_ni::reference_loop(black_box(&header), encoding, width, start, batches)
            .expect("SHA-NI is available and the width is supported");
        black_box(x);
        start += batches * width as u64;
        batches * width as u64
    })
}

/// The template the miner threads get: [`bench_header`] in an otherwise empty block.
fn bench_template() -> BlockTemplate {
    let mut block = Params::test().genesis_block();
    block.header = bench_header();
    BlockTemplate {
        block,
        height: Height(0),
        fees: Amount::ZERO,
        reward: Amount::ZERO,
    }
}

/// Time the relay's miner threads of this process (named `miner-…`) have spent on a CPU:
/// the sum of their `/proc/self/task/*/schedstat`.
fn miner_threads_on_cpu() -> Option<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("miner-") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(ns))
}

/// One run of the relay's miner threads on the impossible header: hashes per second of
/// wall-clock time (the figure), per second of the threads' summed time on a CPU, and the
/// share of `threads × wall-clock` they were on a CPU.
struct ThreadRun {
    wall: f64,
    cpu: f64,
    on_cpu: f64,
}

/// Starts `threads` miner threads as `--mine` does, lets them settle on the template, counts
/// their hashes over `span` of wall-clock time, stops them.
fn miner_threads_run(threads: usize, span: Duration) -> ThreadRun {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let met = Arc::new(AtomicBool::new(false));
    let flag = met.clone();
    let miner = Miner::spawn(
        threads,
        move |_| flag.store(true, Ordering::SeqCst),
        stopped,
    );
    miner.mine(1, bench_template());
    // Idle threads look for a template every 50 ms; then each hashes in chunks.
    std::thread::sleep(Duration::from_millis(150));
    let (h0, c0, t0) = (
        miner.hashes.load(Ordering::SeqCst),
        miner_threads_on_cpu(),
        Instant::now(),
    );
    std::thread::sleep(span);
    let (h1, c1, wall) = (
        miner.hashes.load(Ordering::SeqCst),
        miner_threads_on_cpu(),
        t0.elapsed(),
    );
    let _ = stop.send(true);
    miner.join();
    assert!(!met.load(Ordering::SeqCst), "impossible target met");
    let hashes = (h1 - h0) as f64;
    let cpu = c0
        .zip(c1)
        .map_or(wall * threads as u32, |(a, b)| b.saturating_sub(a));
    ThreadRun {
        wall: hashes / wall.as_secs_f64(),
        cpu: hashes / cpu.as_secs_f64(),
        on_cpu: cpu.as_secs_f64() / (wall.as_secs_f64() * threads as f64),
    }
}

/// The threads figure: side 0 one thread, side 1 `n` threads.
struct Threads {
    n: usize,
    /// Wall-clock rates.
    wall: Sides,
    /// Rates per second on a CPU, and shares on a CPU: `[side][round]`.
    cpu: [Vec<f64>; 2],
    on_cpu: [Vec<f64>; 2],
}

fn measure_threads(n: usize, rounds: usize, span: Duration) -> Threads {
    let cpu = std::cell::RefCell::new([Vec::new(), Vec::new()]);
    let on_cpu = std::cell::RefCell::new([Vec::new(), Vec::new()]);
    let run = |side: usize, threads: usize| {
        let r = miner_threads_run(threads, span);
        cpu.borrow_mut()[side].push(r.cpu);
        on_cpu.borrow_mut()[side].push(r.on_cpu);
        r.wall
    };
    let wall = Sides::measure(rounds, &mut [&mut || run(0, 1), &mut || run(1, n)]);
    Threads {
        n,
        wall,
        cpu: cpu.into_inner(),
        on_cpu: on_cpu.into_inner(),
    }
}

// ---------------------------------------------------------------------------------------------
// Report

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

struct Results {
    mining: Option<Sides>,
    /// Reference-loop rates, one side per entry of `WIDTHS`.
    widths: Option<Sides>,
    /// Reference-loop rates at `LANES`, one side per encoding this CPU runs.
    encodings: Option<(Vec<&'static str>, Sides)>,
    /// The relay's miner threads, one and many.
    threads: Option<Threads>,
}

fn mhs(x: f64) -> String {
    format!("{:.2}", x / 1e6)
}

fn cpu_share(s: &Sides) -> String {
    s.on_cpu
        .map_or_else(|| "unknown".into(), |x| format!("{:.0}%", x * 100.0))
}

/// The markdown section (also printed).
fn section(r: &Results, machine: &Machine, cfg: &Config) -> String {
    let mut s = String::new();
    let w = &mut s;
    writeln!(w, "{BEGIN}").unwrap();
    writeln!(
        w,
        "## Native SHA-NI miner (`cargo bench -p tabcoin-relay --bench shani`)\n"
    )
    .unwrap();
    writeln!(
        w,
        "Written by `relay/benches/shani.rs` on {}: {} ({} logical CPUs), {}, bench profile \
         (release; no `target-cpu=native`: both kernels detect SHA-NI at run time). \
         Single-threaded but for the miner-threads figure. Backend of `FastJob` on this machine: `{}`.\n",
        machine.date,
        machine.cpu,
        machine.logical_cpus,
        machine.rustc,
        sha_ni::backend()
    )
    .unwrap();
    if let Some(m) = &r.mining {
        writeln!(
            w,
            "Hash rates of three nonce searches over the same header (the test network's \
             genesis header with bits `{IMPOSSIBLE_BITS:#010x}`, a target of 1 that no hash \
             meets, so no run ends early), one thread, in {} rounds of about {:.1} s per side; \
             within a round the three run one after the other, starting with a different one \
             each round. A rate is hashes per second of the time the bench thread was on a CPU \
             (`/proc/thread-self/schedstat`: on the shared machines it often waits while \
             other work runs; it was on a CPU {} of the wall-clock time), the median over \
             rounds; a ratio is the median over rounds of the ratio within the round. \
             Absolute rates still move with the load (other work shares caches and, on a \
             virtual machine, perhaps the core's SHA unit): compare the ratios.\n",
            m.rates[A].len(),
            cfg.span.as_secs_f64(),
            cpu_share(m)
        )
        .unwrap();
        writeln!(w, "| search | MH/s (median) | min – max |").unwrap();
        writeln!(w, "|---|---:|---:|").unwrap();
        let names = [
            "A: core `MinerJob::step` (`sha2`, its own SHA-NI detection; one nonce at a time)"
                .to_string(),
            format!(
                "B: relay `sha_ni::FastJob::step` (`{}`), what `--mine` runs",
                sha_ni::backend()
            ),
            format!(
                "C: reference loop: the same kernel, {LANES} nonces at a time, no target check \
                 or bookkeeping (the ceiling)"
            ),
        ];
        for (side, name) in names.iter().enumerate() {
            let (lo, hi) = min_max(&m.rates[side]);
            writeln!(
                w,
                "| {name} | {} | {} – {} |",
                mhs(m.median(side)),
                mhs(lo),
                mhs(hi)
            )
            .unwrap();
        }
        writeln!(w).unwrap();
        let ratio_line = |w: &mut String, name: &str, a: usize, b: usize| {
            let (lo, hi) = min_max(&m.round_ratios(a, b));
            writeln!(
                w,
                "- {name}: **{:.3}** (per round {lo:.3} – {hi:.3})",
                m.ratio(a, b)
            )
            .unwrap();
        };
        ratio_line(w, "FastJob ÷ reference loop (B ÷ C; target ≥ 0.8)", B, C);
        ratio_line(w, "FastJob ÷ MinerJob (B ÷ A)", B, A);
        writeln!(w).unwrap();
    }
    if let Some(ws) = &r.widths {
        let base = ws.median(0);
        writeln!(
            w,
            "Interleave width: the reference loop hashing 1 to 8 nonces in lockstep, in this \
             CPU's encoding (`{}`; {} rounds of about {:.1} s per width, interleaved as above; \
             bench thread on a CPU {} of the time). `FastJob` uses {LANES}.\n",
            sha_ni::encoding().unwrap_or("none"),
            ws.rates[0].len(),
            cfg.width_span.as_secs_f64(),
            cpu_share(ws)
        )
        .unwrap();
        writeln!(w, "| nonces at a time | MH/s (median) | ÷ one at a time |").unwrap();
        writeln!(w, "|---:|---:|---:|").unwrap();
        for (i, width) in WIDTHS.iter().enumerate() {
            writeln!(
                w,
                "| {width} | {} | {:.2} |",
                mhs(ws.median(i)),
                ws.median(i) / base
            )
            .unwrap();
        }
        writeln!(w).unwrap();
        let best = (0..WIDTHS.len())
            .max_by(|&a, &b| ws.median(a).total_cmp(&ws.median(b)))
            .expect("at least one width");
        let ours = WIDTHS
            .iter()
            .position(|&x| x == LANES)
            .expect("LANES is one of the widths");
        let fastest = if WIDTHS[best] == LANES {
            format!("Fastest here: {LANES} at a time, the kernel's width.")
        } else {
            format!(
                "Fastest here: {} at a time; {LANES} at a time reaches {:.2} of that.",
                WIDTHS[best],
                ws.median(ours) / ws.median(best)
            )
        };
        writeln!(
            w,
            "{fastest} One stream waits on `SHA256RNDS2`'s latency; from two or three on, \
             the SHA unit's throughput is the limit and more streams add little. The SHA \
             instructions reach only 16 registers (they have no VEX or EVEX form), and each \
             stream keeps two state and four message-word registers, so from three streams \
             on some message words are parked elsewhere (on the stack, or with AVX-512VL in \
             the upper 16 registers) and extra streams cost moves. {LANES} sits on the \
             plateau here and leaves room for CPUs whose `SHA256RNDS2` has a longer latency \
             relative to its throughput.\n"
        )
        .unwrap();
    }
    if let Some((names, es)) = &r.encodings {
        writeln!(
            w,
            "Instruction encoding: the reference loop, {LANES} nonces at a time, compiled for each \
             encoding this CPU runs ({} rounds of about {:.2} s each, interleaved as above; \
             bench thread on a CPU {} of the time). The SHA instructions themselves exist only \
             in the legacy SSE encoding (16 registers, the destination overwritten); AVX gives \
             the adds, shuffles and copies around them three-operand forms, and AVX-512VL \
             16 more registers, so fewer message words are spilled to the stack. `FastJob` \
             picks the best one at run time: here `{}`.\n",
            es.rates[0].len(),
            cfg.width_span.as_secs_f64(),
            cpu_share(es),
            sha_ni::encoding().unwrap_or("none")
        )
        .unwrap();
        writeln!(w, "| encoding | MH/s (median) | ÷ {} |", names[0]).unwrap();
        writeln!(w, "|---|---:|---:|").unwrap();
        for (i, name) in names.iter().enumerate() {
            writeln!(
                w,
                "| {name} | {} | {:.2} |",
                mhs(es.median(i)),
                es.ratio(i, 0)
            )
            .unwrap();
        }
        writeln!(w).unwrap();
    }
    if let Some(t) = &r.threads {
        writeln!(
            w,
            "Miner threads: the relay's own `Miner` (the threads `--mine` starts, each a \
             `FastJob` on its slice of the nonces, stepping {CHUNK} nonces at a time and adding \
             to the shared hash counter) on the same header, 1 thread and {n} threads \
             (`available_parallelism`), {} rounds of about {:.1} s of wall-clock time per \
             side, alternating as above; threads are started afresh for each run and given \
             0.15 s to pick up the template before the count starts. The wall-clock rate is \
             the figure issue 14 asks for (N ÷ 1 ≥ 0.95·min(N, cores)); the on-CPU rate \
             divides the same hashes by the time the miner threads were on a CPU (the sum of \
             their `/proc/self/task/*/schedstat`), which shows whether the threads slow each \
             other down apart from the machine's load. **This machine was busy** (2 logical \
             CPUs shared with several builds and tests): the wall-clock ratio is bounded by \
             the CPU time the threads got (last column), not by the miner.\n",
            t.wall.rates[0].len(),
            cfg.span.as_secs_f64(),
            n = t.n,
        )
        .unwrap();
        writeln!(
            w,
            "| threads | MH/s, wall clock (median) | MH/s per second on a CPU (median) | on a CPU (median share of threads × wall clock) |"
        )
        .unwrap();
        writeln!(w, "|---:|---:|---:|---:|").unwrap();
        for (side, threads) in [(0, 1), (1, t.n)] {
            writeln!(
                w,
                "| {threads} | {} | {} | {:.0}% |",
                mhs(t.wall.median(side)),
                mhs(median(&t.cpu[side])),
                median(&t.on_cpu[side]) * 100.0
            )
            .unwrap();
        }
        writeln!(w).unwrap();
        let goal = 0.95 * t.n.min(machine.logical_cpus.max(1)) as f64;
        let (lo, hi) = min_max(&t.wall.round_ratios(1, 0));
        writeln!(
            w,
            "- {n} threads ÷ 1 thread, wall clock: **{:.2}** (per round {lo:.2} – {hi:.2}; \
             goal ≥ 0.95·min({n}, {cores}) = {goal:.2})",
            t.wall.ratio(1, 0),
            n = t.n,
            cores = machine.logical_cpus,
        )
        .unwrap();
        let per_cpu: Vec<f64> = t.cpu[1].iter().zip(&t.cpu[0]).map(|(a, b)| a / b).collect();
        writeln!(
            w,
            "- per second on a CPU, {n} threads ÷ 1 thread: {:.2} (1.00: each thread hashes as \
             fast as one alone)\n",
            median(&per_cpu),
            n = t.n,
        )
        .unwrap();
    }
    writeln!(
        w,
        "How it works: per nonce, two SHA-256 compressions (the header's padded 24-byte tail \
         from the precomputed midstate of its first 64 bytes, then the padded 32-byte digest), \
         as in core; the tail block's first four rounds do not depend on the nonce and are \
         done once per `step` call. `SHA256RNDS2` (two rounds) waits on the previous pair's \
         result, so a single stream leaves the SHA unit idle between rounds; hashing several \
         nonces in lockstep gives the CPU independent rounds to issue meanwhile. `FastJob` \
         checks the most significant word of each hash against the target's and reads the \
         whole hash only when that word does not decide. A and B step {CHUNK} nonces per call \
         (as the relay's miner threads do); C hashes {CHUNK} nonces per call."
    )
    .unwrap();
    writeln!(w, "{END}").unwrap();
    s
}

/// Replaces our marked section in the docs, or appends it (creating the file if needed).
/// Text outside the markers is kept as it is.
fn write_docs(section: &str) -> std::io::Result<()> {
    let path = std::path::Path::new(DOC_PATH);
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let new = support::splice_section(&old, BEGIN, END, section);
    std::fs::write(path, new)
}

fn main() {
    let cfg = Config::from_args();
    let started = Instant::now();
    let machine = Machine::probe();
    let header = bench_header();
    let mut results = Results {
        mining: None,
        widths: None,
        encodings: None,
        threads: None,
    };
    let ni = Backend::detect() == Backend::ShaNi;
    if !ni {
        eprintln!(
            "this CPU lacks SHA-NI (or this is not x86-64): FastJob runs core's MinerJob and \
             there is no reference loop; nothing to measure"
        );
        return;
    }

    if cfg.wants("mining") {
        eprintln!(
            "mining: {} rounds of 3 × {:.1} s …",
            cfg.rounds,
            cfg.span.as_secs_f64()
        );
        let span = cfg.span;
        results.mining = Some(Sides::measure(
            cfg.rounds,
            &mut [
                &mut || miner_job_rate(header, span),
                &mut || fast_job_rate(header, span),
                &mut || reference_rate(header, None, LANES, span),
            ],
        ));
    }
    if cfg.wants("widths") {
        eprintln!(
            "widths: {} rounds of {} × {:.1} s …",
            cfg.width_rounds,
            WIDTHS.len(),
            cfg.width_span.as_secs_f64()
        );
        let span = cfg.width_span;
        let mut runs: Vec<Box<dyn FnMut() -> f64>> = WIDTHS
            .iter()
            .map(|&width| Box::new(move || reference_rate(header, None, width, span)) as Box<_>)
            .collect();
        let mut sides: Vec<&mut dyn FnMut() -> f64> = runs
            .iter_mut()
            .map(|f| f.as_mut() as &mut dyn FnMut() -> f64)
            .collect();
        results.widths = Some(Sides::measure(cfg.width_rounds, &mut sides));
    }
    if cfg.wants("encodings") {
        let names: Vec<&'static str> = ENCODINGS
            .into_iter()
            .filter(|e| sha_ni::reference_loop(&header, Some(e), LANES, 0, 1).is_some())
            .collect();
        eprintln!(
            "encodings {names:?}: {} rounds of {} × {:.2} s …",
            cfg.width_rounds,
            names.len(),
            cfg.width_span.as_secs_f64()
        );
        let span = cfg.width_span;
        let mut runs: Vec<Box<dyn FnMut() -> f64>> = names
            .iter()
            .map(|&e| Box::new(move || reference_rate(header, Some(e), LANES, span)) as Box<_>)
            .collect();
        let mut sides: Vec<&mut dyn FnMut() -> f64> = runs
            .iter_mut()
            .map(|f| f.as_mut() as &mut dyn FnMut() -> f64)
            .collect();
        results.encodings = Some((names, Sides::measure(cfg.width_rounds, &mut sides)));
    }
    if cfg.wants("threads") {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        eprintln!(
            "threads: {} rounds of 1 and {n} miner threads × {:.1} s …",
            cfg.rounds,
            cfg.span.as_secs_f64()
        );
        results.threads = Some(measure_threads(n, cfg.rounds, cfg.span));
    }
    if results.mining.is_none()
        && results.widths.is_none()
        && results.encodings.is_none()
        && results.threads.is_none()
    {
        eprintln!(
            "no figure matches the filter {:?} (figures: mining, widths, encodings, threads)",
            cfg.filter.as_deref().unwrap_or("")
        );
        return;
    }

    let section = section(&results, &machine, &cfg);
    println!();
    println!("{section}");
    if cfg.write_docs {
        match write_docs(&section) {
            Ok(()) => println!("wrote the shani section of docs/BENCHMARKS.md"),
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
