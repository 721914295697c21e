//! Soak: `npm run soak` (scripts/soak.sh), or `cargo bench -p tabcoin-relay --bench soak`.
//!
//! One relay process (this package's `tabcoin-relay`, bench profile, `--network test
//! --in-memory`, `--max-memory` of the charge per connection (`budget::CONN_BASE`, which
//! includes the core node's worst case per peer) for `SOAK_CONNS` + 1,000 connections plus
//! 64 MiB, unless `SOAK_MAX_MEMORY` says otherwise: the default 512 MiB admits only about
//! 2,070 connections) under, for
//! `SOAK_SECS` seconds (default 300):
//! - `SOAK_CONNS` (default 10,000) handshaken browser connections from 127.0.1.x–127.0.40.x,
//!   silent except to answer protocol pings; each records the block announcements it reads;
//! - two honest miners (full core nodes) that take turns mining a block every
//!   `SOAK_BLOCK_SECS` (default 10) seconds, and two honest browser nodes;
//! - attackers, each replaced as soon as the relay closes it: 16 slow readers asking for a
//!   block over and over and never reading, 200 silent TCP connections, 100 unfinished HTTP
//!   requests, 8 message flooders, one API flooder and, every 5 s, one oversize frame;
//!
//! The relay's resident set (`VmRSS`) is sampled every second and must stay under the memory
//! budget; at the end every honest block must have reached both honest browsers, both
//! miners, and every one of the silent connections still open (and all of them must be).
//! Loopback only; bounded in count and time. Prints a Markdown summary for
//! docs/BENCHMARKS.md. The open-file limit must allow `SOAK_CONNS` + attackers (soak.sh
//! raises it).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{ClientOptions, NodeClient, RawClient};
use tabcoin_core::encode::Encode;
use tabcoin_core::primitives::BlockHash;
use tabcoin_core::wire::{InvItem, Message, NodeKind};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loopback(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// What the attackers achieved, counted.
#[derive(Default)]
struct Attacks {
    slow_closed: AtomicU64,
    idle_closed: AtomicU64,
    headers_closed: AtomicU64,
    floods_closed: AtomicU64,
    api_ok: AtomicU64,
    api_limited: AtomicU64,
    oversize_closed: AtomicU64,
    refused: AtomicU64,
}

async fn tcp_from(addr: SocketAddr, local: IpAddr) -> std::io::Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(local, 0))?;
    s.connect(addr).await
}

/// Reads until the relay closes (or `stop`).
async fn until_closed(s: &mut tokio::net::TcpStream, stop: &AtomicBool) -> bool {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await
        {
            return true;
        }
    }
    false
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(soak());
}

async fn soak() {
    let secs = env_num("SOAK_SECS", 300);
    let conns = env_num("SOAK_CONNS", 10_000) as usize;
    let block_secs = env_num("SOAK_BLOCK_SECS", 10);
    // The charge per connection is the worst case a peer can make the relay hold; silent
    // browsers hold far less, so RSS under this budget is still checked below.
    let budget = std::env::var("SOAK_MAX_MEMORY").unwrap_or_else(|_| {
        let bytes = (conns + 1_000) * tabcoin_relay::budget::CONN_BASE + (64 << 20);
        format!("{}M", bytes.div_ceil(1 << 20))
    });
    let budget_bytes: u64 = {
        let t = budget.trim();
        let (n, m) = match t.chars().last() {
            Some('M') => (&t[..t.len() - 1], 1 << 20),
            Some('G') => (&t[..t.len() - 1], 1 << 30),
            Some('K') => (&t[..t.len() - 1], 1 << 10),
            _ => (t, 1),
        };
        n.parse::<u64>().expect("SOAK_MAX_MEMORY") * m
    };
    eprintln!("soak: {conns} connections, {secs} s, budget {budget}");

    // The relay.
    let (mut child, pid, addr) = common::spawn_relay_binary(
        env!("CARGO_BIN_EXE_tabcoin-relay"),
        &[
            "--max-memory",
            &budget,
            "--max-per-ip",
            "300",
            "--max-http-per-ip",
            "300",
        ],
        // A bound, not a figure: the relay prints its address at once.
        Duration::from_secs(120),
    )
    .await;
    let url = format!("ws://{addr}/ws");
    let rss_start = rss_kib(pid);

    // RSS every second.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<u64>::new()));
    {
        let (stop, samples) = (stop.clone(), samples.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                samples.lock().unwrap().push(rss_kib(pid));
            }
        });
    }

    // Honest nodes.
    let mut o1 = ClientOptions::browser(201);
    o1.mining_key = Some(common::wallet(201).public_key());
    let mut o2 = ClientOptions::browser(202);
    o2.mining_key = Some(common::wallet(202).public_key());
    let miners = [
        NodeClient::connect(&url, o1).await.unwrap(),
        NodeClient::connect(&url, o2).await.unwrap(),
    ];
    let browsers = [
        NodeClient::browser(&url, 203).await.unwrap(),
        NodeClient::browser(&url, 204).await.unwrap(),
    ];
    for c in miners.iter().chain(&browsers) {
        assert!(c.wait_connected(Duration::from_secs(30)).await);
    }

    // A ~30 KB block of posts, for the slow readers to ask for. Its 60 posts chain on each
    // other's change, at most 25 to a chain (the pool's ancestor limit), so the wallet needs
    // several spendable coins first: 8 blocks, as `common::big_block` mines.
    for _ in 0..8 {
        miners[0].mine_and_submit().await.unwrap();
    }
    for i in 0..60 {
        let tx = miners[0]
            .with_node(|n| {
                common::wallet(201).post(
                    n.chain(),
                    n.mempool(),
                    &format!("soak post {i} {}", "x".repeat(280)),
                    2_000,
                )
            })
            .unwrap();
        miners[0].submit_tx(tx).await.unwrap().unwrap();
    }
    let big = miners[0].mine_and_submit().await.unwrap().hash();
    for c in miners.iter().chain(&browsers) {
        assert!(c.wait_tip(big, Duration::from_secs(60)).await);
    }

    // The silent crowd.
    let seen: Arc<Mutex<HashMap<BlockHash, usize>>> = Arc::default();
    let alive = Arc::new(AtomicU64::new(0));
    let opened_at = Instant::now();
    let mut crowd = Vec::new();
    let params = common::test_params();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut opening = tokio::task::JoinSet::new();
    for i in 0..conns {
        let (url, params, sem) = (url.clone(), params.clone(), sem.clone());
        opening.spawn(async move {
            let _p = sem.acquire_owned().await;
            let local = loopback(1 + (i / 250) as u8, 1 + (i % 250) as u8);
            let mut c = RawClient::connect_lean(&url, local).await.ok()?;
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            c.handshake(&params, seed, NodeKind::Browser, None, None)
                .await
                .ok()?;
            Some(c)
        });
    }
    while let Some(r) = opening.join_next().await {
        if let Ok(Some(c)) = r {
            crowd.push(c);
        }
    }
    let open_secs = opened_at.elapsed().as_secs_f64();
    let crowd_size = crowd.len();
    eprintln!("soak: {crowd_size} of {conns} silent connections open in {open_secs:.1} s");
    let mut crowd_tasks = Vec::new();
    for mut c in crowd {
        let (seen, alive, stop) = (seen.clone(), alive.clone(), stop.clone());
        alive.fetch_add(1, Ordering::SeqCst);
        crowd_tasks.push(tokio::spawn(async move {
            let mut mine = std::collections::HashSet::new();
            loop {
                let Some(m) = c.recv(Duration::from_secs(2)).await else {
                    if c.is_closed() {
                        alive.fetch_sub(1, Ordering::SeqCst);
                        return false;
                    }
                    if stop.load(Ordering::SeqCst) {
                        return true;
                    }
                    continue;
                };
                c.history.clear();
                match m {
                    Message::Ping(n) => {
                        let _ = c.send(&Message::Pong(n)).await;
                    }
                    Message::Headers(hs) => {
                        for h in hs {
                            if mine.insert(h.hash()) {
                                *seen.lock().unwrap().entry(h.hash()).or_insert(0) += 1;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }));
    }

    // Attackers.
    let attacks = Arc::new(Attacks::default());
    let mut attackers = Vec::new();
    // Slow readers: ask for the tip block again and again, never read.
    for i in 0..16u8 {
        let (url, stop, attacks) = (url.clone(), stop.clone(), attacks.clone());
        attackers.push(tokio::spawn(async move {
            let mut round = 0u8;
            while !stop.load(Ordering::SeqCst) {
                round = round.wrapping_add(1);
                let local = loopback(50, i.wrapping_mul(16).wrapping_add(round % 16));
                let Ok(mut c) = RawClient::connect_from(&url, local, Some(4096)).await else {
                    attacks.refused.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                };
                if c.handshake_browser(100 + i).await.is_err() {
                    continue;
                }
                let ask = Message::GetData(vec![InvItem::block(big)]).encode();
                while !stop.load(Ordering::SeqCst) {
                    match tokio::time::timeout(Duration::from_secs(1), c.send_bytes(ask.clone()))
                        .await
                    {
                        Ok(Ok(())) => tokio::time::sleep(Duration::from_millis(20)).await,
                        Ok(Err(_)) => break,
                        // The relay stopped reading it: see whether it is closed.
                        Err(_) => {
                            if c.closed_within(Duration::from_secs(60)).await {
                                break;
                            }
                        }
                    }
                }
                attacks.slow_closed.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Silent TCP connections and unfinished requests.
    for (n, partial, base) in [(200u32, false, 60u8), (100, true, 70)] {
        for i in 0..n {
            let (stop, attacks) = (stop.clone(), attacks.clone());
            attackers.push(tokio::spawn(async move {
                let local = loopback(base + (i / 100) as u8, 1 + (i % 100) as u8);
                while !stop.load(Ordering::SeqCst) {
                    let Ok(mut s) = tcp_from(addr, local).await else {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    };
                    if partial {
                        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
                    }
                    if until_closed(&mut s, &stop).await {
                        let c = if partial {
                            &attacks.headers_closed
                        } else {
                            &attacks.idle_closed
                        };
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
    }
    // Message flooders (each banned address is replaced by the next).
    for i in 0..8u8 {
        let (url, stop, attacks) = (url.clone(), stop.clone(), attacks.clone());
        attackers.push(tokio::spawn(async move {
            let mut round = 0u8;
            while !stop.load(Ordering::SeqCst) {
                round = round.wrapping_add(1);
                let local = loopback(80 + i, round);
                let Ok(mut c) = RawClient::connect_lean(&url, local).await else {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                };
                if c.handshake_browser(150 + i).await.is_err() {
                    continue;
                }
                'flood: while !stop.load(Ordering::SeqCst) {
                    for n in 0..100 {
                        if c.send(&Message::Ping(n)).await.is_err() {
                            break 'flood;
                        }
                    }
                    while c.recv_raw(Duration::from_millis(20)).await.is_some() {}
                    if c.is_closed() {
                        break;
                    }
                }
                attacks.floods_closed.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // API flooder.
    {
        let (stop, attacks) = (stop.clone(), attacks.clone());
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let Ok(mut s) = tcp_from(addr, loopback(90, 1)).await else {
                    continue;
                };
                let _ = s
                    .write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .await;
                let mut buf = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
                if buf.starts_with(b"HTTP/1.1 200") {
                    attacks.api_ok.fetch_add(1, Ordering::SeqCst);
                } else if buf.starts_with(b"HTTP/1.1 429") {
                    attacks.api_limited.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    // Oversize frames.
    {
        let (url, stop, attacks) = (url.clone(), stop.clone(), attacks.clone());
        attackers.push(tokio::spawn(async move {
            let mut round = 0u8;
            while !stop.load(Ordering::SeqCst) {
                round = round.wrapping_add(1);
                if let Ok(mut c) = RawClient::connect_lean(&url, loopback(91, round)).await {
                    let _ = c.send_bytes(vec![1u8; 2_000_000]).await;
                    if c.closed_within(Duration::from_secs(30)).await {
                        attacks.oversize_closed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }));
    }

    // Honest mining, turn about.
    let started = Instant::now();
    let mut honest_blocks = Vec::new();
    let mut turn = 0usize;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(block_secs)).await;
        let m = &miners[turn % 2];
        turn += 1;
        match m.mine_and_submit().await {
            Ok(b) => honest_blocks.push(b.hash()),
            Err(e) => panic!("honest miner failed: {e}"),
        }
        let rss = samples.lock().unwrap().last().copied().unwrap_or(0);
        eprintln!(
            "soak: {:>4} s, {} honest blocks, relay RSS {} MiB, {} silent open",
            started.elapsed().as_secs(),
            honest_blocks.len(),
            rss / 1024,
            alive.load(Ordering::SeqCst)
        );
    }
    let last = *honest_blocks.last().expect("at least one block");
    let wait = Duration::from_secs(60);
    let mut delivered_all = true;
    for c in miners.iter().chain(&browsers) {
        if !c.wait_tip(last, wait).await {
            delivered_all = false;
        }
        for h in &honest_blocks {
            if !c.has_block(h) {
                delivered_all = false;
            }
        }
    }
    // Give the crowd a moment to read the last announcement, then stop everything.
    let deadline = Instant::now() + wait;
    let alive_now = alive.load(Ordering::SeqCst) as usize;
    while Instant::now() < deadline
        && seen.lock().unwrap().get(&last).copied().unwrap_or(0) < alive_now
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let crowd_missing: usize = {
        let seen = seen.lock().unwrap();
        honest_blocks
            .iter()
            .map(|h| crowd_size - seen.get(h).copied().unwrap_or(0).min(crowd_size))
            .sum()
    };
    let crowd_alive = alive.load(Ordering::SeqCst);
    let samples = samples.lock().unwrap().clone();
    let max_rss = samples.iter().copied().max().unwrap_or(0);
    let metrics = {
        let mut s = tcp_from(addr, loopback(99, 1)).await.expect("metrics");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        String::from_utf8_lossy(&buf).into_owned()
    };
    let metric = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("?")
            .to_owned()
    };
    let a = &attacks;
    let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
    println!("| Soak figure | Value |");
    println!("|---|---|");
    println!("| Duration (SOAK_SECS), s | {secs} |");
    println!(
        "| Silent browser connections held (of {conns}); opened in, s | {crowd_alive} of {crowd_size}; {open_secs:.1} |"
    );
    println!(
        "| Honest blocks (2 miners, one every {block_secs} s); reached all 4 honest nodes | {}; {} |",
        honest_blocks.len(),
        if delivered_all { "yes" } else { "NO" }
    );
    println!(
        "| Announcements the silent connections missed (blocks × connections) | {crowd_missing} |"
    );
    println!(
        "| Relay RSS: start; max of {} one-second samples; budget, MiB | {:.1}; {:.1}; {} |",
        samples.len(),
        rss_start as f64 / 1024.0,
        max_rss as f64 / 1024.0,
        budget_bytes >> 20
    );
    println!(
        "| Relay memory accounting at the end (tabcoin_memory_used_bytes), MiB | {} |",
        metric("tabcoin_memory_used_bytes")
            .parse::<f64>()
            .map(|v| format!("{:.1}", v / 1048576.0))
            .unwrap_or_else(|_| "?".into())
    );
    println!(
        "| Slow readers closed (write deadline drops; queue-limit drops) | {} ({}; {}) |",
        get(&a.slow_closed),
        metric("tabcoin_write_deadline_drops_total"),
        metric("tabcoin_slow_readers_dropped_total")
    );
    println!(
        "| Silent TCP / unfinished-header connections closed by the header timeout | {} / {} |",
        get(&a.idle_closed),
        get(&a.headers_closed)
    );
    println!(
        "| Message flooders closed; oversize frames refused | {}; {} |",
        get(&a.floods_closed),
        get(&a.oversize_closed)
    );
    println!(
        "| API flood: answered / 429 | {} / {} |",
        get(&a.api_ok),
        get(&a.api_limited)
    );
    println!(
        "| Connections refused by the relay (all causes); memory-budget drops | {}; {} |",
        metric("tabcoin_connections_refused_total"),
        metric("tabcoin_memory_budget_drops_total")
    );
    for t in attackers {
        t.abort();
    }
    for t in crowd_tasks {
        t.abort();
    }
    let _ = child.kill().await;
    assert!(
        max_rss * 1024 < budget_bytes,
        "relay RSS {max_rss} KiB went over the budget"
    );
    assert!(
        delivered_all,
        "an honest block did not reach every honest node"
    );
    assert_eq!(crowd_missing, 0, "silent connections missed announcements");
    assert_eq!(
        crowd_alive as usize, crowd_size,
        "silent connections were dropped"
    );
}
