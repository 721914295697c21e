//! P5 native: the signature checks of the 300-payment validation block as one job
//! (`connect_block_unsigned`), verified on a pool of N threads (N − 1 parked threads and the
//! caller taking chunks from one queue) against 1 chunk on the calling thread — what the
//! relay's `verify::Pool` does with `--verify-threads N` and 1.
//! Calls alternate (N threads, 1 thread, …) for the budget; the docs get the medians, the
//! ratio of the medians of paired calls, and the spread. Written whenever the figure runs
//! under `--bench` (filter `parallel`), between `<!-- p5-native:begin -->` and
//! `<!-- p5-native:end -->`.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tabcoin_core::chain::Chain;
use tabcoin_core::primitives::Block;
use tabcoin_core::sig::{ChunkResult, VerifyChunk, VerifyJob, VerifyMode};
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

/// The relay's verification pool (`relay/src/verify.rs`, which the core cannot depend on),
/// in the same form: `threads − 1` threads started once and parked on a channel; a job is
/// split into chunks of at least 16 signatures (at most 8 per thread) that the pool threads
/// and the caller take from one queue until none is left.
struct Pool {
    workers: Vec<mpsc::Sender<(Arc<Queue>, mpsc::Sender<ChunkResult>)>>,
}

struct Queue {
    chunks: Vec<VerifyChunk>,
    next: AtomicUsize,
}

impl Queue {
    fn work(&self, reply: &mpsc::Sender<ChunkResult>) {
        while let Some(c) = self.chunks.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            if reply.send(c.verify(VerifyMode::Single)).is_err() {
                return;
            }
        }
    }
}

impl Pool {
    fn new(threads: usize) -> Pool {
        let workers = (1..threads)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<(Arc<Queue>, mpsc::Sender<ChunkResult>)>();
                std::thread::spawn(move || {
                    while let Ok((queue, reply)) = rx.recv() {
                        queue.work(&reply);
                    }
                });
                tx
            })
            .collect();
        Pool { workers }
    }

    /// Verifies the job (in place with no pool threads); the time of the call.
    fn run(&self, job: &VerifyJob) -> Duration {
        let start = Instant::now();
        let results = if self.workers.is_empty() {
            job.results_in_place(1, VerifyMode::Single)
        } else {
            let parts = (job.len() / 16).min(8 * (self.workers.len() + 1)).max(1);
            let queue = Arc::new(Queue {
                chunks: job.chunks(parts),
                next: AtomicUsize::new(0),
            });
            let (reply, rx) = mpsc::channel();
            for w in &self.workers {
                w.send((Arc::clone(&queue), reply.clone()))
                    .expect("the pool threads live");
            }
            queue.work(&reply);
            drop(reply);
            rx.iter().take(queue.chunks.len()).collect()
        };
        let elapsed = start.elapsed();
        assert_eq!(job.finish(&results), Ok(Some(Ok(()))));
        elapsed
    }
}

pub struct Measured {
    pub threads: usize,
    pub signatures: usize,
    pub pair: Pair,
    /// CPU time of the whole process (every thread) ÷ wall time, summed over the A calls and
    /// over the B calls: the cores each side actually got.
    pub cores_used: Option<(f64, f64)>,
    /// `/proc/loadavg`'s first figure at the end, and whether the kernel groups threads by
    /// session for the scheduler (`kernel.sched_autogroup_enabled`).
    pub load: Option<f64>,
    pub autogroup: Option<bool>,
}

/// CPU time of this process so far (user + system, every thread), from `/proc/self/stat`.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Runs `f`, adding its wall time and the process's CPU time to `acc`.
fn timed(acc: &Cell<(Duration, Option<Duration>)>, f: impl FnOnce() -> Duration) -> Duration {
    let c0 = process_cpu();
    let d = f();
    let (wall, cpu) = acc.get();
    let used = c0.zip(process_cpu()).map(|(a, b)| b.saturating_sub(a));
    acc.set((wall + d, cpu.zip(used).map(|(c, u)| c + u)));
    d
}

pub fn measure(job: &VerifyJob, threads: usize, budget: Duration, min_pairs: usize) -> Measured {
    // Signatures per second from the time of one call.
    let n = job.len() as f64;
    let pool = Pool::new(threads);
    let alone = Pool::new(1);
    let acc_a = Cell::new((Duration::ZERO, Some(Duration::ZERO)));
    let acc_b = Cell::new((Duration::ZERO, Some(Duration::ZERO)));
    let pair = Pair::alternate(
        budget,
        min_pairs,
        || timed(&acc_a, || pool.run(job)),
        || timed(&acc_b, || alone.run(job)),
    );
    let share = |acc: &Cell<(Duration, Option<Duration>)>| {
        let (wall, cpu) = acc.get();
        cpu.map(|c| c.as_secs_f64() / wall.as_secs_f64().max(1e-9))
    };
    let cores_used = share(&acc_a).zip(share(&acc_b));
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok());
    let autogroup = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .ok()
        .map(|s| s.trim() == "1");
    let pair = Pair {
        a: pair.a.iter().map(|r| r * n).collect(),
        b: pair.b.iter().map(|r| r * n).collect(),
        on_cpu: pair.on_cpu,
    };
    Measured {
        threads,
        signatures: job.len(),
        pair,
        cores_used,
        load,
        autogroup,
    }
}

impl Measured {
    fn range(xs: &[f64]) -> (f64, f64) {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }

    pub fn print(&self) {
        if let Some((a, b)) = self.cores_used {
            println!(
                "P5 native: cores used A {a:.2}, B {b:.2}; load {:?}",
                self.load
            );
        }
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
            "| P5 | Signature checks of the 300-payment block ({} signatures), signatures/s — A: the block's `VerifyJob` on a pool of {} threads, B: in place on 1 thread; goal ≥ {goal:.1} (0.8·min(N, cores)) | {:.0} | {:.0} | {:.3} |",
            self.signatures,
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
             A splits it with `VerifyJob::chunks` into chunks of at least 16 signatures (at most 8 per \
             thread), wakes N − 1 threads started once before the run and parked on channels, and they and \
             the calling thread take chunks from one queue until none is left (the relay's `verify::Pool`: \
             hand-off and wake-up included, no thread start-up; a thread scheduled late takes fewer chunks), \
             B verifies the job as one chunk on the calling thread; both end with `VerifyJob::finish`. Calls alternate A, B for the budget; \
             {} pairs. Rates: A {alo:.0} – {ahi:.0}, B {blo:.0} – {bhi:.0} signatures/s; A ÷ B per pair \
             {rlo:.3} – {rhi:.3}; the ratio is the median of the per-pair ratios. The machine is shared: \
             other builds running meanwhile take cores from the N-thread side first.",
            self.pair.a.len()
        )
        .unwrap();
        writeln!(w).unwrap();
        if let Some((a, b)) = self.cores_used {
            writeln!(
                w,
                "Cores the process got (CPU time of every thread ÷ wall time, over all calls): A {a:.2}, B {b:.2}. \
                 Load average at the end: {}; scheduler autogroup: {}. With autogroup on, every thread of the \
                 bench shares one scheduling group's CPU share, so while other builds keep the cores busy, N \
                 threads get about the CPU of 1 and A ÷ B stays near 1 whatever the pool does; the goal needs \
                 the cores free (A's cores used near N).",
                self.load.map_or_else(|| "unknown".into(), |l| format!("{l:.1}")),
                match self.autogroup {
                    Some(true) => "on",
                    Some(false) => "off",
                    None => "unknown",
                }
            )
            .unwrap();
        }
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
