//! The report: tables and paragraphs for the terminal and for docs/BENCHMARKS.md.

use super::*;

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

pub(crate) fn f2(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "—".into()
    }
}

pub(crate) fn f1(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "—".into()
    }
}

/// Table rows: figure | relay | bare | relay ÷ bare.
pub(crate) fn rows(f: Option<&FanoutResults>, i: Option<&IdleResults>) -> Vec<[String; 4]> {
    let mut rows = Vec::new();
    if let Some(f) = f {
        let n = f.clients as f64;
        for s in &f.sizes {
            let (r, b) = (median(&s.relay_ms()), median(&s.bare_ms()));
            rows.push([
                format!(
                    "Fan-out of a block, {} ({} bytes), to {} clients: submit → last client has it, ms (µs per client)",
                    s.name, s.bytes, f.clients
                ),
                format!("{} ({:.0})", f2(r), r * 1e3 / n),
                format!("{} ({:.0})", f2(b), b * 1e3 / n),
                f2(median(&s.ratios())),
            ]);
        }
        for s in &f.sizes {
            let (r, b) = (s.cpu_ms(true), s.cpu_ms(false));
            rows.push([
                format!(
                    "Server CPU time per fan-out, {} block, ms (µs per client)",
                    s.name
                ),
                format!("{} ({:.0})", f1(r), r * 1e3 / n),
                format!("{} ({:.0})", f1(b), b * 1e3 / n),
                f2(r / b),
            ]);
        }
        rows.push([
            "Peak RSS before clients (VmHWM), MiB".into(),
            mib(f.relay_mem0.hwm_kib),
            mib(f.bare_mem0.hwm_kib),
            f2(f.relay_mem0.hwm_kib as f64 / f.bare_mem0.hwm_kib as f64),
        ]);
        let per = |m0: Mem, m1: Mem| (m1.hwm_kib as f64 - m0.hwm_kib as f64) / n;
        let (pr, pb) = (
            per(f.relay_mem0, f.relay_mem1),
            per(f.bare_mem0, f.bare_mem1),
        );
        rows.push([
            format!(
                "Peak RSS with {} clients (relay: handshaken browsers), MiB; per connection, KiB",
                f.clients
            ),
            format!("{}; {:.1}", mib(f.relay_mem1.hwm_kib), pr),
            format!("{}; {:.1}", mib(f.bare_mem1.hwm_kib), pb),
            f2(pr / pb),
        ]);
        rows.push([
            "After all fan-out rounds: peak RSS (VmHWM); RSS now (VmRSS), MiB".into(),
            format!(
                "{}; {}",
                mib(f.relay_mem_after.hwm_kib),
                mib(f.relay_mem_after.rss_kib)
            ),
            format!(
                "{}; {}",
                mib(f.bare_mem_after.hwm_kib),
                mib(f.bare_mem_after.rss_kib)
            ),
            f2(f.relay_mem_after.rss_kib as f64 / f.bare_mem_after.rss_kib as f64),
        ]);
    }
    if let Some(i) = i {
        rows.push([
            format!(
                "Idle connections held (relay: handshaken; bare: upgraded), of {} tried",
                i.relay.attempted
            ),
            format!(
                "{} (opened in {:.1} s)",
                i.relay.held,
                i.relay.open_time.as_secs_f64()
            ),
            format!(
                "{} (opened in {:.1} s)",
                i.bare.held,
                i.bare.open_time.as_secs_f64()
            ),
            f2(i.relay.held as f64 / i.bare.held.max(1) as f64),
        ]);
        rows.push([
            "RSS per idle connection (VmRSS delta ÷ connections held), KiB".into(),
            f1(i.relay.per_conn_kib()),
            f1(i.bare.per_conn_kib()),
            f2(i.relay.per_conn_kib() / i.bare.per_conn_kib()),
        ]);
    }
    rows
}

pub(crate) fn table(rows: &[[String; 4]]) -> String {
    let mut t = String::from(
        "| figure | relay | bare tokio-tungstenite | relay ÷ bare |\n|---|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(t, "| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
    }
    t
}

/// Reads one phase's time off a relay run.
pub(crate) type Phase = fn(&Run) -> Option<Duration>;

pub(crate) fn phase_table(f: &FanoutResults) -> String {
    let mut t = String::from("| relay, median ms after the submit |");
    for s in &f.sizes {
        let _ = write!(t, " {} |", s.name);
    }
    t.push_str("\n|---|");
    for _ in &f.sizes {
        t.push_str("---:|");
    }
    t.push('\n');
    let phases: [(&str, Phase); 5] = [
        ("the relay asks the miner for the block (GetData)", |r| {
            r.getdata
        }),
        ("first client has the Headers announcement", |r| {
            r.first_headers
        }),
        ("last client has the Headers announcement", |r| {
            r.last_headers
        }),
        ("first client has the block", |r| r.first_block),
        ("last client has the block", |r| r.last_block),
    ];
    for (name, get) in phases {
        let _ = write!(t, "| {name} |");
        for s in &f.sizes {
            let _ = write!(t, " {} |", f2(s.relay_phase(get)));
        }
        t.push('\n');
    }
    t
}

pub(crate) fn spreads(f: &FanoutResults) -> String {
    let mut t = String::new();
    for s in &f.sizes {
        let (rl, rh) = min_max(&s.relay_ms());
        let (bl, bh) = min_max(&s.bare_ms());
        let (ql, qh) = min_max(&s.ratios());
        let _ = writeln!(
            t,
            "- {} block, min – max of {} rounds: relay {} – {} ms, bare {} – {} ms; relay ÷ bare {} – {}; this process (the clients) used a median {} ms of CPU per relay run and {} ms per bare run",
            s.name,
            s.ratios().len(),
            f2(rl),
            f2(rh),
            f2(bl),
            f2(bh),
            f2(ql),
            f2(qh),
            f1(s.client_cpu_ms(true)),
            f1(s.client_cpu_ms(false)),
        );
        for e in s.errors() {
            let _ = writeln!(t, "- failed run ({}): {e}", s.name);
        }
    }
    t
}

/// Where a report goes: the terminal after a run, or the relay section of docs/BENCHMARKS.md.
/// Both say the same things; the docs spell them out for a reader who did not watch the run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Terminal,
    Docs,
}

/// The figures of a run: heading, table, where the time goes, spread and checks.
pub(crate) fn summary(
    mode: Mode,
    machine: &Machine,
    f: Option<&FanoutResults>,
    i: Option<&IdleResults>,
) -> String {
    let mut s = String::new();
    match mode {
        Mode::Terminal => {
            let _ = writeln!(
                s,
                "\nrelay bench — {} ({} logical CPUs), {}, {}\n",
                machine.cpu, machine.logical_cpus, machine.rustc, machine.date
            );
        }
        Mode::Docs => {
            let _ = writeln!(
                s,
                "## Relay (`cargo bench -p tabcoin-relay --bench fanout`)\n"
            );
            let _ = writeln!(
                s,
                "Written by `relay/benches/fanout.rs` on {}: {} ({} logical CPUs), Linux {}, {}, bench profile (release). \
                 Servers and clients share the machine's {} CPUs and loopback.\n",
                machine.date,
                machine.cpu,
                machine.logical_cpus,
                machine.kernel,
                machine.rustc,
                machine.logical_cpus
            );
        }
    }
    s.push_str(&table(&rows(f, i)));
    if let Some(f) = f {
        s.push_str(match mode {
            Mode::Terminal => "\n",
            Mode::Docs => {
                "\nWhere the relay's time goes (same runs; the submit is the miner sending its Headers):\n\n"
            }
        });
        s.push_str(&phase_table(f));
        s.push_str(match mode {
            Mode::Terminal => "\n",
            Mode::Docs => "\nSpread and checks:\n\n",
        });
        s.push_str(&spreads(f));
        let (relay_connect, bare_connect) =
            (f.relay_connect.as_secs_f64(), f.bare_connect.as_secs_f64());
        let busy = f.on_cpu * 100.0;
        let _ = match mode {
            Mode::Terminal => writeln!(
                s,
                "- relay connect + handshake of {} clients: {relay_connect:.1} s; bare connect: {bare_connect:.1} s; \
                 \"slow reader\" lines in the relay log: {}; machine busy {busy:.0}% during the rounds",
                f.clients, f.slow_reader_lines,
            ),
            Mode::Docs => writeln!(
                s,
                "- connecting and handshaking {n} browser clients with the relay took {relay_connect:.1} s \
                 ({CONNECT_CONCURRENCY} at a time); connecting {n} clients to the bare server {bare_connect:.1} s; \
                 \"slow reader\" drops in the relay log: {}; the machine's CPUs were {busy:.0}% busy while the \
                 rounds ran (all processes, `/proc/stat`)",
                f.slow_reader_lines,
                n = f.clients,
            ),
        };
    }
    if let Some(i) = i {
        let names = match mode {
            Mode::Terminal => ["relay", "bare", "bare, 8 KiB read buffer"],
            Mode::Docs => [
                "relay",
                "bare server",
                "bare server with an 8 KiB read buffer",
            ],
        };
        for (name, side) in names.into_iter().zip([&i.relay, &i.bare, &i.bare_small]) {
            let first = side
                .first_failure
                .as_ref()
                .map_or(String::new(), |e| match mode {
                    Mode::Terminal => format!(" (first: {e})"),
                    Mode::Docs => format!(" (first: `{e}`)"),
                });
            let peers = side.peers.map_or(String::new(), |p| match mode {
                Mode::Terminal => format!(" ({p} established)"),
                Mode::Docs => format!(" ({p} established browser peers)"),
            });
            let (tried, opened, failed, held) =
                (side.attempted, side.opened, side.failures, side.held);
            let (rss0, rss1) = (side.mem0.rss_kib, side.mem1.rss_kib);
            let _ = match mode {
                Mode::Terminal => writeln!(
                    s,
                    "- idle {name}: tried {tried}, opened {opened}, failed {failed}{first}, held {held}{peers}; \
                     RSS {rss0} → {rss1} KiB (VmHWM {} KiB)",
                    side.mem1.hwm_kib
                ),
                Mode::Docs => writeln!(
                    s,
                    "- idle, {name}: {tried} tried, {opened} opened, {failed} failed{first}; held {held}{peers}; \
                     VmRSS {rss0} → {rss1} KiB"
                ),
            };
        }
    }
    s
}

pub(crate) fn print_report(machine: &Machine, f: Option<&FanoutResults>, i: Option<&IdleResults>) {
    print!("{}", summary(Mode::Terminal, machine, f, i));
}
