//! The template figure: block template building on a 5 MB pool of adversarial chains
//! (issue 9, rule 6). Included by `core.rs`; writes its own section of docs/BENCHMARKS.md
//! (between `<!-- mempool:begin -->` and `<!-- mempool:end -->`) on a `--bench` run whose
//! filter is empty or matches `template`.
//!
//! The pool: `CHAINS` chains of `MAX_ANCESTORS` one-in one-out transactions (143 bytes each),
//! each rooted in a confirmed output, the fee rate rising with depth (1,000, 2,000, …
//! 25,000 units per kB): the shape that made the old multi-pass selection quadratic (a pass
//! per depth, each scanning the whole pool). A is today's `Mempool::select` (packages by
//! ancestor fee rate plus the own-rate fallback), B the old selection, reimplemented here
//! as it was (passes over the pool in own-fee-rate order, a transaction only once its
//! parents are in), on the same entries with the same budget. B's rate-ordered list is built
//! outside its timer (the old pool kept it as an index); A's index is built inside.

use crate::support::{median, spread};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::hash::sha256d;
use tabcoin_core::mempool::{
    DEFAULT_MAX_BYTES, DEFAULT_MIN_FEE_RATE, MAX_ANCESTORS, Mempool, MempoolEntry, Package,
};
use tabcoin_core::miner::build_template;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{OutPoint, Payload, Transaction, TxIn, TxOut};
use tabcoin_core::sig::Signature;
use tabcoin_core::testkit;
use tabcoin_core::units::{Amount, Height};

const BEGIN: &str = "<!-- mempool:begin -->";
const END: &str = "<!-- mempool:end -->";
/// Chains that fill the 5 MB pool: 1,398 × 25 × 143 bytes = 4,997,850 bytes.
const CHAINS: usize = 1_398;
/// Value of each chain's confirmed root.
const ROOT_VALUE: u64 = 1_000_000;
/// Depths of the single unbounded chain the old pool admitted, for the old selection alone.
const OLD_DEPTHS: [usize; 2] = [1_000, 2_000];

pub struct Fixture {
    chain: Chain,
    pool: Mempool,
    /// The old selection's index: entries by own fee rate, highest first, older first.
    by_rate: Vec<Txid>,
    max_bytes: usize,
    max_txs: usize,
    built_in: Duration,
}

type Txid = tabcoin_core::primitives::Txid;

fn one_in_one_out(prev: OutPoint, value: u64, key: tabcoin_core::sig::PublicKey) -> Transaction {
    Transaction {
        inputs: vec![TxIn {
            prev,
            sig: Signature([0; 64]),
        }],
        outputs: vec![TxOut {
            amount: Amount::from_units(value).expect("below the cap"),
            key,
        }],
        payload: Payload::None,
    }
}

/// Builds the chain, the confirmed roots and the adversarial pool (`chains` chains).
pub fn build(chains: usize) -> Fixture {
    let t = Instant::now();
    let params = Params::test();
    let w = testkit::wallet(1, &params);
    let key = w.public_key();
    let mut chain = Chain::new(params.clone());
    testkit::extend_empty(&mut chain, 1 + params.coinbase_maturity as usize, key, b"t");
    let genesis_hash = chain.genesis_hash();
    let cb = chain
        .block(&chain.hash_at(Height(1)).expect("block 1"))
        .expect("stored")
        .txs[0]
        .clone();
    let have = cb.outputs[0].amount.units();
    let mut outputs = vec![
        TxOut {
            amount: Amount::from_units(ROOT_VALUE).expect("below the cap"),
            key,
        };
        chains
    ];
    outputs.push(TxOut {
        amount: Amount::from_units(have - ROOT_VALUE * chains as u64 - 200_000).expect("cap"),
        key,
    });
    let mut fan = Transaction {
        inputs: vec![TxIn {
            prev: OutPoint {
                txid: cb.txid(),
                vout: 0,
            },
            sig: Signature([0; 64]),
        }],
        outputs,
        payload: Payload::None,
    };
    w.sign_tx(&mut fan, &[cb.outputs[0]], &genesis_hash);
    testkit::extend(&mut chain, std::slice::from_ref(&fan), key, b"roots").expect("roots");
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES, DEFAULT_MIN_FEE_RATE);
    for c in 0..chains {
        let mut prev = OutPoint {
            txid: fan.txid(),
            vout: c as u32,
        };
        let mut value = ROOT_VALUE;
        for depth in 0..MAX_ANCESTORS {
            let spent = [TxOut {
                amount: Amount::from_units(value).expect("below the cap"),
                key,
            }];
            let mut tx = one_in_one_out(prev, value, key);
            let fee = (depth as u64 + 1) * DEFAULT_MIN_FEE_RATE * tx.encoded_len() as u64 / 1000;
            value -= fee;
            tx.outputs[0].amount = Amount::from_units(value).expect("below the cap");
            w.sign_tx(&mut tx, &spent, &genesis_hash);
            prev = OutPoint {
                txid: pool.add(tx, &chain).expect("the pool takes the chain"),
                vout: 0,
            };
        }
    }
    let mut by_rate: Vec<&MempoolEntry> = pool.entries();
    by_rate.sort_by(|a, b| b.fee_rate().cmp(&a.fee_rate()).then(a.seq.cmp(&b.seq)));
    let by_rate = by_rate.into_iter().map(|e| e.txid).collect();
    Fixture {
        max_bytes: params.max_block_size - 1_000,
        max_txs: params.max_block_txs - 1,
        chain,
        pool,
        by_rate,
        built_in: t.elapsed(),
    }
}

/// The old selection: passes over the pool in own-fee-rate order, each taking every
/// transaction whose pool parents are in and that fits, until a pass takes none.
fn old_select<'a>(
    entries: &'a std::collections::BTreeMap<Txid, &'a MempoolEntry>,
    by_rate: &[Txid],
    max_bytes: usize,
    max_txs: usize,
) -> (Vec<&'a MempoolEntry>, usize) {
    let mut chosen: Vec<&MempoolEntry> = Vec::new();
    let mut included = BTreeSet::new();
    let mut bytes = 0usize;
    let mut passes = 0;
    loop {
        passes += 1;
        let mut progress = false;
        for txid in by_rate {
            if included.contains(txid) || chosen.len() >= max_txs {
                continue;
            }
            let e = entries[txid];
            if bytes + e.size > max_bytes || !e.parents.iter().all(|p| included.contains(p)) {
                continue;
            }
            included.insert(*txid);
            bytes += e.size;
            chosen.push(e);
            progress = true;
        }
        if !progress {
            return (chosen, passes);
        }
    }
}

/// Fabricated entries of one chain of `depth` (fee rate rising with depth), as the old pool
/// admitted them; no signatures (the old selection never looks).
fn fabricated_chain(depth: usize) -> Vec<MempoolEntry> {
    let key = tabcoin_core::sig::PublicKey([1; 32]);
    let mut out = Vec::with_capacity(depth);
    let mut parent: Option<Txid> = None;
    for d in 0..depth {
        let txid = Txid::from_hash(sha256d(&(d as u64).to_le_bytes()));
        let tx = one_in_one_out(
            OutPoint {
                txid: parent.unwrap_or(txid),
                vout: 0,
            },
            1,
            key,
        );
        let size = tx.encoded_len();
        let fee = Amount::from_units((d as u64 + 1) * size as u64).expect("small");
        out.push(MempoolEntry {
            tx,
            txid,
            fee,
            size,
            seq: d as u64,
            parents: parent.into_iter().collect(),
            ancestors: Package::default(),
            descendants: Package::default(),
        });
        parent = Some(txid);
    }
    out
}

pub struct Measured {
    fx: Fixture,
    /// Seconds per call.
    new: Vec<f64>,
    old: Vec<f64>,
    template: Vec<f64>,
    new_fees: u64,
    old_fees: u64,
    new_txs: usize,
    old_txs: usize,
    old_passes: usize,
    /// (depth, seconds, passes) of the old selection on one unbounded chain.
    old_unbounded: Vec<(usize, f64, usize)>,
    /// Share of the timed wall-clock time the thread was on a CPU.
    cpu_share: Option<f64>,
    /// CPU seconds per call (empty where the kernel does not tell).
    new_cpu: Vec<f64>,
    old_cpu: Vec<f64>,
    template_cpu: Vec<f64>,
}

/// CPU times from schedstat advance at scheduler ticks, so one call's reading is off by up
/// to a tick; the mean over many calls is not.
fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Builds the pool and times A, B and the whole template, call by call, for about `budget`
/// and at least `min_pairs` pairs. `bench == false`: a small pool, once (a smoke test).
pub fn measure(bench: bool, budget: Duration, min_pairs: usize) -> Measured {
    let chains = if bench { CHAINS } else { 8 };
    let fx = build(chains);
    eprintln!(
        "template: pool of {} transactions, {} bytes (built in {:.1} s)",
        fx.pool.len(),
        fx.pool.bytes(),
        fx.built_in.as_secs_f64()
    );
    let entries: std::collections::BTreeMap<Txid, &MempoolEntry> =
        fx.pool.entries().into_iter().map(|e| (e.txid, e)).collect();
    let new_sel = fx.pool.select(fx.max_bytes, fx.max_txs);
    let (old_sel, old_passes) = old_select(&entries, &fx.by_rate, fx.max_bytes, fx.max_txs);
    let fees = |s: &[&MempoolEntry]| s.iter().map(|e| e.fee.units()).sum::<u64>();
    let (new_fees, old_fees, new_txs, old_txs) =
        (fees(&new_sel), fees(&old_sel), new_sel.len(), old_sel.len());
    drop((new_sel, old_sel));
    let (mut new, mut old, mut template) = (Vec::new(), Vec::new(), Vec::new());
    let (mut wall, mut on_cpu) = (0.0, 0.0);
    let mut cpu_times: [Vec<f64>; 3] = Default::default();
    let mut timed = |which: usize, f: &mut dyn FnMut()| {
        let cpu = crate::support::thread_on_cpu();
        let t = Instant::now();
        f();
        let elapsed = t.elapsed().as_secs_f64();
        if let (Some(a), Some(b)) = (cpu, crate::support::thread_on_cpu()) {
            wall += elapsed;
            on_cpu += (b - a).as_secs_f64();
            cpu_times[which].push((b - a).as_secs_f64());
        }
        elapsed
    };
    let key = tabcoin_core::sig::PublicKey([2; 32]);
    let now = fx.chain.tip().header.time + 30;
    let start = Instant::now();
    while new.len() < min_pairs || start.elapsed() < budget {
        new.push(timed(0, &mut || {
            black_box(fx.pool.select(black_box(fx.max_bytes), fx.max_txs));
        }));
        old.push(timed(1, &mut || {
            black_box(old_select(
                &entries,
                &fx.by_rate,
                black_box(fx.max_bytes),
                fx.max_txs,
            ));
        }));
        template.push(timed(2, &mut || {
            black_box(build_template(&fx.chain, &fx.pool, key, now, b"bench"));
        }));
    }
    let cpu_share = (wall > 0.0).then(|| on_cpu / wall);
    let [new_cpu, old_cpu, template_cpu] = cpu_times;
    let mut old_unbounded = Vec::new();
    for depth in OLD_DEPTHS {
        let depth = if bench { depth } else { depth / 10 };
        let chain = fabricated_chain(depth);
        let entries: std::collections::BTreeMap<Txid, &MempoolEntry> =
            chain.iter().map(|e| (e.txid, e)).collect();
        let by_rate: Vec<Txid> = chain.iter().rev().map(|e| e.txid).collect();
        let t = Instant::now();
        let (sel, passes) = old_select(&entries, &by_rate, usize::MAX, usize::MAX);
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(sel.len(), depth);
        old_unbounded.push((depth, secs, passes));
    }
    drop(entries);
    Measured {
        fx,
        new,
        old,
        template,
        new_fees,
        old_fees,
        new_txs,
        old_txs,
        old_passes,
        old_unbounded,
        cpu_share,
        new_cpu,
        old_cpu,
        template_cpu,
    }
}

impl Measured {
    pub fn print(&self) {
        let ms = |x: f64| x * 1e3;
        println!(
            "template, adversarial pool ({} txs): select {:.2} ms, old select {:.2} ms \
             (old / new {:.1}), build_template {:.2} ms; fees {} vs {} ({} vs {} txs)",
            self.fx.pool.len(),
            ms(median(&self.new)),
            ms(median(&self.old)),
            median(&self.old) / median(&self.new),
            ms(median(&self.template)),
            self.new_fees,
            self.old_fees,
            self.new_txs,
            self.old_txs
        );
        if let Some(c) = self.cpu_share {
            println!(
                "on a CPU {:.0}% of the timed calls' wall-clock time; CPU time per call: \
                 select {:.2} ms, old select {:.2} ms, build_template {:.2} ms",
                c * 100.0,
                ms(mean(&self.new_cpu)),
                ms(mean(&self.old_cpu)),
                ms(mean(&self.template_cpu))
            );
        }
        for (depth, secs, passes) in &self.old_unbounded {
            println!(
                "old select on one chain of {depth}: {:.1} ms ({passes} passes)",
                secs * 1e3
            );
        }
    }

    /// The markdown between the markers (markers included).
    pub fn doc_section(&self, date: &str, machine: &str) -> String {
        let ms = |x: f64| x * 1e3;
        let ratios: Vec<f64> = self.old.iter().zip(&self.new).map(|(o, n)| o / n).collect();
        let (nlo, nhi) = spread(&self.new);
        let (olo, ohi) = spread(&self.old);
        let (tlo, thi) = spread(&self.template);
        let mut s = String::new();
        let w = &mut s;
        writeln!(w, "{BEGIN}").unwrap();
        writeln!(w, "## Block templates on an adversarial pool (`cargo bench -p tabcoin-core --bench core -- template`)\n").unwrap();
        writeln!(
            w,
            "Written by `core/benches/mempool/mod.rs` on {date}: {machine}, bench profile \
             (release). Single-threaded. Target (issue 9): a template in ≤ 50 ms native.\n"
        )
        .unwrap();
        writeln!(
            w,
            "| figure | A: `Mempool::select` (packages) | B: old selection | B ÷ A |"
        )
        .unwrap();
        writeln!(w, "|---|---:|---:|---:|").unwrap();
        writeln!(
            w,
            "| Selection for one block, {} pool transactions ({} bytes), ms per call, wall clock (median of {}) | {:.2} | {:.2} | {:.1} |",
            self.fx.pool.len(),
            self.fx.pool.bytes(),
            self.new.len(),
            ms(median(&self.new)),
            ms(median(&self.old)),
            median(&ratios)
        )
        .unwrap();
        writeln!(
            w,
            "| The same, CPU time of the bench thread per call (schedstat, mean: it advances at scheduler ticks) | {:.2} | {:.2} | {:.1} |",
            ms(mean(&self.new_cpu)),
            ms(mean(&self.old_cpu)),
            mean(&self.old_cpu) / mean(&self.new_cpu)
        )
        .unwrap();
        writeln!(
            w,
            "| Whole template (`build_template`: selection, coinbase, merkle root), ms wall clock (CPU) | {:.2} ({:.2}) | — | — |",
            ms(median(&self.template)),
            ms(mean(&self.template_cpu))
        )
        .unwrap();
        writeln!(
            w,
            "| Transactions / fees (units) in the block | {} / {} | {} / {} | — |\n",
            self.new_txs, self.new_fees, self.old_txs, self.old_fees
        )
        .unwrap();
        writeln!(
            w,
            "Quartiles, ms: A {:.2} – {:.2}, B {:.2} – {:.2}, whole template {:.2} – {:.2}; \
             B ÷ A within a pair {:.1} – {:.1}. The bench thread was on a CPU {} of the \
             timed calls' wall-clock time (`/proc/thread-self/schedstat`).\n",
            ms(nlo),
            ms(nhi),
            ms(olo),
            ms(ohi),
            ms(tlo),
            ms(thi),
            spread(&ratios).0,
            spread(&ratios).1,
            self.cpu_share.map_or_else(
                || "(unknown share)".to_string(),
                |c| format!("{:.0}%", c * 100.0)
            )
        )
        .unwrap();
        writeln!(
            w,
            "- **The pool.** The test network; {CHAINS} confirmed outputs of {ROOT_VALUE} units \
             (one fan-out block), each the root of a chain of {MAX_ANCESTORS} one-in one-out \
             transactions of 143 bytes — the ancestor limit — whose fee rate rises with depth \
             (1,000, 2,000, … 25,000 units per kB), added through `Mempool::add` to a default \
             pool (5,000,000 bytes, minimum rate 1,000). Budget: the template's \
             `max_block_size − 1,000` bytes and `max_block_txs − 1` transactions."
        )
        .unwrap();
        writeln!(
            w,
            "- **A** is `Mempool::select`: an index of the pool (txid order, parent and child \
             lists), then the selection by ancestor fee rate (a package at a time, descendants' \
             packages updated, lazy binary heap) and the selection by own fee rate, keeping \
             the one with more fees. **B** is the selection the pool had before the limits: \
             passes over the pool in own-fee-rate order, each taking every transaction whose \
             pool parents are already in, until a pass takes nothing; it needed {} passes here. \
             A and B alternate call by call (then one whole template), {} rounds.",
            self.old_passes,
            self.new.len()
        )
        .unwrap();
        let mut unbounded = String::new();
        for (depth, secs, passes) in &self.old_unbounded {
            write!(
                unbounded,
                "{}one chain of {depth}: {:.0} ms ({passes} passes)",
                if unbounded.is_empty() { "" } else { "; " },
                secs * 1e3
            )
            .unwrap();
        }
        writeln!(
            w,
            "- **What the old pool admitted.** Without limits a pool could hold one chain of \
             any depth, and B then takes one pass per transaction: {unbounded} (fabricated \
             entries, B alone, one call each) — quadratic in the depth. The limits refuse the \
             26th transaction of a chain, so no pool today has such a chain."
        )
        .unwrap();
        let (cpu, wall) = (ms(mean(&self.template_cpu)), ms(median(&self.template)));
        writeln!(
            w,
            "- **Reading.** A whole template costs {cpu:.1} ms of CPU ({wall:.1} ms of wall \
             clock on this shared machine), against the 50 ms target: {}. The package \
             selection collects {:.1}× the fees of the old one on this pool, and the bound no \
             longer depends on how the pool is shaped (`mempool::tests` counts heap operations).\n",
            if cpu <= 50.0 && wall <= 50.0 {
                "met"
            } else if cpu <= 50.0 {
                "met in CPU time; the wall-clock time includes the waits for a CPU that other \
                 work on the machine caused"
            } else {
                "not met"
            },
            self.new_fees as f64 / self.old_fees.max(1) as f64
        )
        .unwrap();
        writeln!(w, "{END}").unwrap();
        s
    }
}

/// Replaces the mempool section in the docs at `path`, or appends it.
pub fn write_docs(path: &str, section: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path)?;
    let new = crate::support::splice_section(&old, BEGIN, END, section);
    std::fs::write(path, new)
}
