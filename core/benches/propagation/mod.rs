//! P10 (issue 14): block propagation in the deterministic simulator at full size — 100
//! relays, 900 tabs, 50–150 ms links — before and after compact blocks, in one run. Writes
//! the part of `docs/BENCHMARKS.md` between `<!-- p10:begin -->` and `<!-- p10:end -->`.

use std::fmt::Write as _;
use std::time::Instant;

use tabcoin_core::sim::propagation::{BlockFigure, Network, Shape};

const BEGIN: &str = "<!-- p10:begin -->";
const END: &str = "<!-- p10:end -->";
const PAYMENTS: usize = 300;

/// One side: the figures of a coinbase-only block and of a block of relayed payments.
pub struct Side {
    pub empty: BlockFigure,
    pub full: BlockFigure,
    pub wall_s: f64,
}

fn side(compact: bool) -> Side {
    let t = Instant::now();
    let mut shape = Shape::p10(PAYMENTS);
    shape.compact = compact;
    let mut net = Network::build(shape);
    let empty = net.mine_and_measure(net.relays[3], 60_000);
    let txs = net.payments(PAYMENTS);
    assert!(
        net.relay_txs(&txs, 300_000),
        "payments did not reach every pool"
    );
    let full = net.mine_and_measure(net.relays[57], 60_000);
    Side {
        empty,
        full,
        wall_s: t.elapsed().as_secs_f64(),
    }
}

/// Runs both sides (whole blocks first, then compact blocks).
pub fn measure() -> (Side, Side) {
    eprintln!("p10: 1000 nodes, whole blocks …");
    let before = side(false);
    eprintln!("  {}\n  {}", before.empty.line(), before.full.line());
    eprintln!("p10: 1000 nodes, compact blocks …");
    let after = side(true);
    eprintln!("  {}\n  {}", after.empty.line(), after.full.line());
    (before, after)
}

fn ms(m: Option<u64>) -> String {
    m.map_or(String::from("never"), |m| m.to_string())
}

pub fn doc_section(before: &Side, after: &Side, date: &str, machine: &str) -> String {
    let mut s = String::new();
    let w = &mut s;
    writeln!(w, "{BEGIN}").unwrap();
    writeln!(w, "## Block propagation, 1,000 simulated nodes (P10; `cargo bench -p tabcoin-core --features test-utils --bench core -- p10`)\n").unwrap();
    writeln!(
        w,
        "Written by `core/benches/propagation/mod.rs` on {date}: {machine}, bench profile (release). \
         Simulated time, so the figures do not depend on the machine; deterministic (the same run \
         gives the same figures). Goals (issue 14): 99% of the nodes within 2 s; bytes received per \
         node ≤ 0.35 × the block for blocks whose transactions were already relayed.\n"
    )
    .unwrap();
    writeln!(
        w,
        "Method: `tabcoin_core::sim::propagation` builds 100 relays and 900 tabs on one funded \
         chain every node starts from. Each pair of nodes has a fixed one-way latency drawn from \
         50–150 ms (seeded; no jitter, no loss). Relays bootstrap from four others (a ring and far \
         links) and keep 8 outbound relay links; each tab connects to 3 relays and asks 2 of them \
         to push blocks (§7.4). After 2 simulated minutes of discovery a relay mines a \
         coinbase-only block; then {PAYMENTS} payments (one input, one output each) are submitted \
         at tabs spread over the network and relayed until every pool holds all of them, and \
         another relay mines a block of them. Time: from the mined block until 99% (and 100%) of \
         the nodes have it as their tip, checked every 5 ms of simulated time. Bytes: everything \
         the nodes received from the mining until 2 s after the last node had the block, except \
         discovery (`getnodes`/`nodes`) and keep-alive (`ping`/`pong`), divided by the number of \
         nodes and by the block's encoded size. A: nodes with the compact-block feature bit \
         cleared (whole blocks, the behaviour before compact blocks); B: compact blocks (§7.5). \
         Both sides in the same run.\n"
    )
    .unwrap();
    writeln!(
        w,
        "| figure | A: whole blocks | B: compact blocks | B ÷ A |"
    )
    .unwrap();
    writeln!(w, "|---|---:|---:|---:|").unwrap();
    for (name, a, b) in [
        ("coinbase-only block", &before.empty, &after.empty),
        ("block of 300 relayed payments", &before.full, &after.full),
    ] {
        writeln!(
            w,
            "| {name} ({} B): ms until 99% of nodes have it | {} | {} | {} |",
            b.block_bytes,
            ms(a.ms_to_99),
            ms(b.ms_to_99),
            match (a.ms_to_99, b.ms_to_99) {
                (Some(x), Some(y)) if x > 0 => format!("{:.2}", y as f64 / x as f64),
                _ => String::from("—"),
            }
        )
        .unwrap();
        writeln!(
            w,
            "| {name}: ms until every node has it | {} | {} | — |",
            ms(a.ms_to_all),
            ms(b.ms_to_all)
        )
        .unwrap();
        writeln!(
            w,
            "| {name}: bytes received per node ÷ block size (bytes per node) | {:.3} ({:.0}) | {:.3} ({:.0}) | {:.2} |",
            a.bytes_ratio,
            a.bytes_per_node,
            b.bytes_ratio,
            b.bytes_per_node,
            b.bytes_ratio / a.bytes_ratio
        )
        .unwrap();
    }
    writeln!(
        w,
        "\nWall clock of the simulation: A {:.0} s, B {:.0} s.",
        before.wall_s, after.wall_s
    )
    .unwrap();
    writeln!(w, "{END}").unwrap();
    s
}

pub fn write_docs(path: &str, section: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path)?;
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let after = &old[e + END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &old[..b])
        }
        _ => format!(
            "{}\n{section}",
            old.trim_end_matches('\n').to_string() + "\n"
        ),
    };
    std::fs::write(path, new)
}
