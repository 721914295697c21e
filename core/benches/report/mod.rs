//! The core bench's table, spreads and docs section.

use super::*;
use crate::fixture::{COINS_PER_SENDER, Fixture, RECIPIENTS, SENDERS};

pub(crate) struct Results {
    pub(crate) mining: Option<Pair>,
    pub(crate) block: Option<Pair>,
    pub(crate) sigs: Option<Pair>,
    pub(crate) fixture: Option<Fixture>,
}

/// One table row: `figure | A | B | ratio`.
pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) ratio: String,
}

pub(crate) fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}", x)
    } else {
        format!("{:.1}", x)
    }
}

pub(crate) fn rows(r: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(m) = &r.mining {
        rows.push(Row {
            figure: "Mining, 1 thread, MH/s — A: `MinerJob::step` (midstate), \
                     B: `sha256d(&header.to_bytes())`"
                .into(),
            a: format!("{:.2}", m.median_a() / 1e6),
            b: format!("{:.2}", m.median_b() / 1e6),
            ratio: format!("{:.3}", m.ratio()),
        });
    }
    if let (Some(b), Some(fx)) = (&r.block, &r.fixture) {
        rows.push(Row {
            figure: "Block accept, blocks/s — A: `VerifyMode::Batch`, B: `VerifyMode::Single`"
                .into(),
            a: format!("{} ({:.1} ms)", fmt_rate(b.median_a()), 1e3 / b.median_a()),
            b: format!("{} ({:.1} ms)", fmt_rate(b.median_b()), 1e3 / b.median_b()),
            ratio: format!("{:.3}", b.ratio()),
        });
        let s = b.scaled(fx.signatures() as f64);
        rows.push(Row {
            figure: "Block accept, signatures/s (same runs) — A: Batch, B: Single".into(),
            a: fmt_rate(s.median_a()),
            b: fmt_rate(s.median_b()),
            ratio: format!("{:.3}", s.ratio()),
        });
    }
    if let (Some(p), Some(fx)) = (&r.sigs, &r.fixture) {
        let s = p.scaled(fx.signatures() as f64);
        rows.push(Row {
            figure: "`sig::verify_all` alone, signatures/s — A: Batch, B: Single".into(),
            a: fmt_rate(s.median_a()),
            b: fmt_rate(s.median_b()),
            ratio: format!("{:.3}", s.ratio()),
        });
    }
    rows
}

pub(crate) fn print_table(rows: &[Row], machine: &Machine, cfg: &Config) {
    let plain = |s: &str| s.replace('`', "");
    let w0 = rows
        .iter()
        .map(|r| plain(&r.figure).chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let w1 = rows.iter().map(|r| r.a.len()).max().unwrap_or(1).max(1);
    let w2 = rows.iter().map(|r| r.b.len()).max().unwrap_or(1).max(1);
    println!();
    println!(
        "tabcoin-core native bench — {} — {} ({} logical CPUs, sha_ni {}, avx2 {}) — {}",
        machine.date,
        machine.cpu,
        machine.logical_cpus,
        yes_no(machine.sha_ni),
        yes_no(machine.avx2),
        machine.rustc
    );
    println!(
        "A and B interleaved: mining in {} rounds of {:.1} s per side, the others call by call; \
         medians; ratio = median over rounds of A / B within the round",
        cfg.mining_rounds,
        cfg.mining_span.as_secs_f64()
    );
    println!();
    println!("{:<w0$}  {:>w1$}  {:>w2$}  ratio A/B", "figure", "A", "B");
    for r in rows {
        println!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {}",
            plain(&r.figure),
            r.a,
            r.b,
            r.ratio
        );
    }
    println!();
}

pub(crate) fn cpu_share(p: &Pair) -> String {
    p.on_cpu.map_or_else(
        || "unknown".into(),
        |x| format!("{:.0}% of the time", x * 100.0),
    )
}

pub(crate) fn print_ranges(r: &Results) {
    let show = |name: &str, unit: f64, p: &Pair| {
        let (alo, ahi) = spread(&p.a);
        let (blo, bhi) = spread(&p.b);
        let (rlo, rhi) = spread(&p.round_ratios());
        println!(
            "  {name} ({} rounds, {}): A {} .. {}, B {} .. {}, \
             A/B within a round {rlo:.3} .. {rhi:.3}; on a CPU {}",
            p.rounds(),
            spread_name(p.rounds()),
            fmt_rate(alo * unit),
            fmt_rate(ahi * unit),
            fmt_rate(blo * unit),
            fmt_rate(bhi * unit),
            cpu_share(p)
        );
    };
    println!("spread:");
    if let Some(m) = &r.mining {
        show("mining, hashes/s", 1.0, m);
    }
    if let Some(b) = &r.block {
        show("block accept, blocks/s", 1.0, b);
    }
    if let (Some(s), Some(fx)) = (&r.sigs, &r.fixture) {
        show("verify_all, signatures/s", fx.signatures() as f64, s);
    }
    println!();
}

/// The markdown between the markers (markers included).
pub(crate) fn doc_section(r: &Results, machine: &Machine, cfg: &Config) -> String {
    let fx = r.fixture.as_ref().expect("a full run builds the fixture");
    let mining = r.mining.as_ref().expect("a full run measures mining");
    let block = r.block.as_ref().expect("a full run measures blocks");
    let sigs = r.sigs.as_ref().expect("a full run measures signatures");
    let n = fx.signatures();
    let h = &fx.inputs_histogram;
    let mut s = String::new();
    let w = &mut s;
    writeln!(w, "{BEGIN}").unwrap();
    writeln!(
        w,
        "## Native core (`cargo bench -p tabcoin-core --bench core`)\n"
    )
    .unwrap();
    writeln!(
        w,
        "Written by `core/benches/core.rs` on {}: {} ({} logical CPUs; sha_ni {}, avx2 {}), {}, \
         bench profile (release; no `target-cpu=native`: sha2 and curve25519-dalek pick SHA-NI \
         and AVX2 at run time). Single-threaded.\n",
        machine.date,
        machine.cpu,
        machine.logical_cpus,
        yes_no(machine.sha_ni),
        yes_no(machine.avx2),
        machine.rustc
    )
    .unwrap();
    writeln!(
        w,
        "Each figure runs A and B alternately, A, B, A, B, …: mining in {} rounds of about \
         {:.1} s per side; block accept and `verify_all` call by call (one A, one B, repeated \
         for about {:.0} s and {:.0} s: {} and {} pairs), so that each A runs under the same \
         load as its B. The table gives the median rate of each side (for single calls, \
         1 ÷ the median time of a call, so that calls the scheduler interrupted for long do \
         not skew it); the ratio is the median over rounds (or pairs) of A ÷ B within the \
         round, which is steadier than median A ÷ median B when the machine's load changes \
         during the run. Absolute rates move with the load of the shared 2-core machine \
         (the list below says how much of the time the bench thread actually had a CPU): \
         compare ratios, not raw numbers across runs.\n",
        cfg.mining_rounds,
        cfg.mining_span.as_secs_f64(),
        cfg.block_budget.as_secs_f64(),
        cfg.sigs_budget.as_secs_f64(),
        block.rounds(),
        sigs.rounds()
    )
    .unwrap();
    writeln!(w, "| figure | A | B | ratio A ÷ B |").unwrap();
    writeln!(w, "|---|---:|---:|---:|").unwrap();
    for row in rows(r) {
        writeln!(
            w,
            "| {} | {} | {} | {} |",
            row.figure, row.a, row.b, row.ratio
        )
        .unwrap();
    }
    writeln!(w).unwrap();
    writeln!(
        w,
        "Spread of each side's rate and of A ÷ B within a round (or pair of calls), and the \
         share of the wall-clock time the bench thread was running on a CPU \
         (`/proc/thread-self/schedstat`; the rest it waited while other work ran):\n"
    )
    .unwrap();
    let range_line = |w: &mut String, name: &str, unit: f64, scale: f64, p: &Pair| {
        let (alo, ahi) = spread(&p.a);
        let (blo, bhi) = spread(&p.b);
        let (rlo, rhi) = spread(&p.round_ratios());
        writeln!(
            w,
            "- {name}, {} of {}: A {:.2} – {:.2}, B {:.2} – {:.2}; \
             A ÷ B {rlo:.3} – {rhi:.3}; on a CPU {}",
            spread_name(p.rounds()),
            p.rounds(),
            alo * scale / unit,
            ahi * scale / unit,
            blo * scale / unit,
            bhi * scale / unit,
            cpu_share(p)
        )
        .unwrap();
    };
    range_line(w, "mining, MH/s", 1e6, 1.0, mining);
    range_line(w, "block accept, blocks/s", 1.0, 1.0, block);
    range_line(
        w,
        "`verify_all`, thousand signatures/s",
        1e3,
        n as f64,
        sigs,
    );
    writeln!(w).unwrap();

    writeln!(w, "### How each figure is measured\n").unwrap();
    writeln!(
        w,
        "- **Mining.** Both sides hash the same header — the test network's genesis header with \
         bits `{IMPOSSIBLE_BITS:#010x}`, a target of 1 that no hash meets, so nothing is found \
         and no run ends early — on one thread, nonces counting up from 0, reading the clock \
         every {MINING_CHUNK} nonces. A is `MinerJob::step`: the SHA-256 state after the \
         header's first 64 bytes is computed once per job, and each nonce costs two \
         compressions (the header's padded 24-byte tail, then the outer SHA-256 of the 32-byte \
         digest). B sets `header.nonce` and calls `hash::sha256d(&header.to_bytes())` per \
         nonce: serialising 88 bytes and three compressions. Both compare the hash with the \
         target. Counting compressions alone predicts a ratio of 1.5."
    )
    .unwrap();
    writeln!(
        w,
        "- **The block.** Built on the test network (coinbase maturity 2) with `testkit`: \
         {} funding blocks — one coinbase for each of {SENDERS} sender wallets \
         (`testkit::wallet(1..={SENDERS})`, `extend_empty`), {} blocks to mature them, and one \
         block splitting each coinbase into {COINS_PER_SENDER} outputs of 1 coin (10^8 base \
         units) — then {} payments made with `Wallet::pay` through a mempool, round-robin \
         over the senders to {RECIPIENTS} other keys, the amount chosen so each needs 1, 2 or \
         3 coins ({} / {} / {} transactions). The block holds the coinbase and the {} payments: {} \
         bytes, {n} input signatures by {SENDERS} keys. The wallet signs every input of a \
         transaction with the same signature over the transaction's sighash, so a 3-input \
         payment is 3 identical (key, message, signature) checks; neither mode deduplicates.",
        fx.funding_blocks,
        fx.funding_blocks - usize::from(SENDERS) - 1,
        fx.payments(),
        h[1],
        h[2],
        h[3],
        fx.payments(),
        fx.block_bytes
    )
    .unwrap();
    writeln!(
        w,
        "- **Block accept.** Timed: `chain.accept_block(&block, now)` on a fresh `clone()` of \
         the chain at the block's parent, after `set_verify_mode(VerifyMode::Batch)` (A) or \
         `VerifyMode::Single` (B); the clone and its drop are outside the timer. That is all a \
         node does for a new tip: header and proof-of-work checks, stateless block checks (twice: \
         on arrival and again when connecting), UTXO lookups and updates, undo data, the \
         ChangeSet, and the {n} signature checks. Signatures/s = blocks/s × {n}."
    )
    .unwrap();
    writeln!(
        w,
        "- **`verify_all` alone.** `sig::verify_all` on the same {n} (key, sighash, signature) \
         items, in the order connecting the block checks them. Batch mode decodes and \
         subgroup-checks each distinct key once per call, prechecks each signature (canonical \
         `s`; `R` canonical, not of small order, torsion-free — one variable-base scalar \
         multiplication), then calls `ed25519_dalek::verify_batch` on chunks of 128 items; the \
         prechecks are what keeps batch mode from ever accepting what the single rule \
         (`verify_strict`) rejects (see `core/src/sig.rs`)."
    )
    .unwrap();
    writeln!(w).unwrap();

    writeln!(w, "### Reading\n").unwrap();
    writeln!(
        w,
        "- Midstate mining runs at {:.2}× the full-header rate.",
        mining.ratio()
    )
    .unwrap();
    let verdict = |ratio: f64| {
        if ratio > 1.03 {
            format!("{:.0}% faster than", (ratio - 1.0) * 100.0)
        } else if ratio < 0.97 {
            format!("{:.0}% slower than", (1.0 - ratio) * 100.0)
        } else {
            "within 3% of".to_string()
        }
    };
    writeln!(
        w,
        "- Batch verification is {} single verification on raw signatures ({:.3}) and {} it \
         for a whole block accept ({:.3}).",
        verdict(sigs.ratio()),
        sigs.ratio(),
        verdict(block.ratio()),
        block.ratio()
    )
    .unwrap();
    if sigs.ratio() <= 1.03 {
        writeln!(
            w,
            "  The sound batch path pays for its prechecks: the torsion test on every `R` costs \
             about half a single verification and decompressing and re-compressing it \
             about a fifth more, so what `verify_batch` saves is spent again; \
             `VerifyMode::Single` stays the default."
        )
        .unwrap();
    }
    writeln!(
        w,
        "  Within a run these ratios are tight (see the quartiles), but between runs they \
         move far more: on the project's shared 2-core machines (November 2026), runs minutes \
         apart, the same binary included, measured batch ÷ single anywhere from about 0.73 to \
         1.03 (0.78 to 1.03 in runs where the bench thread had a CPU 99–100% of the time); the \
         crate's own `sig::tests::measure_single_vs_batch` (best of 20) gives about 0.97. \
         Something outside the bench (presumably other guests sharing caches) slows the two \
         paths unequally. What holds in every run: batch mode is not meaningfully faster."
    )
    .unwrap();
    let busiest = [mining, block, sigs]
        .iter()
        .filter_map(|p| p.on_cpu)
        .fold(f64::INFINITY, f64::min);
    if busiest < 0.9 {
        writeln!(
            w,
            "- **This run shared the CPU** (the bench thread ran only {:.0}% of the time in its \
             busiest figure): its ratios are less reliable than those of a quiet run.",
            busiest * 100.0
        )
        .unwrap();
    }
    // Seconds per call of each: 1 / (calls per second).
    let sig_share = block.median_b() / sigs.median_b();
    let (sig_ms, block_ms) = (1e3 / sigs.median_b(), 1e3 / block.median_b());
    if sig_share < 1.0 {
        writeln!(
            w,
            "- In single mode, checking the signatures takes about {:.0}% of a block accept \
             ({sig_ms:.1} ms of {block_ms:.1} ms; medians of the two figures, measured one \
             after the other).",
            sig_share * 100.0
        )
        .unwrap();
    } else {
        writeln!(
            w,
            "- In single mode, checking the signatures takes nearly all of a block accept: \
             {sig_ms:.1} ms for `verify_all` against {block_ms:.1} ms for the whole accept, \
             measured one after the other (the difference is within the noise)."
        )
        .unwrap();
    }
    writeln!(w, "{END}").unwrap();
    s
}

pub(crate) const DOC_INTRO: &str = "# Benchmarks\n\n\
Figures written by `npm run bench` (`scripts/bench.sh`). Each bench rewrites only its own \
section, between its `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers; text outside the \
markers is kept. Absolute timings on the shared 2-core machines are noisy: compare the ratios, \
which are measured side by side in one run.\n\n\
## Targets\n\n\
The figures below are native (x86-64) measurements of the consensus core. The wasm/browser \
figures (P1–P8) will be added by later issues, each in its own marked section.\n\n";

/// Replaces our marked section in the docs, or adds it (creating the file if needed).
pub(crate) fn write_docs(section: &str) -> std::io::Result<()> {
    let path = std::path::Path::new(DOC_PATH);
    let old = match std::fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let new = match old {
        None => format!("{DOC_INTRO}{section}"),
        Some(old) => support::splice_section(&old, BEGIN, END, section),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, new)
}
