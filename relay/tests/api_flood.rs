//! An API flood does not hold up block relay: API answers come from the node task's
//! snapshot and the store, never from the node task itself. The test prints how long a
//! block takes from one client through the relay to another, with and without a flood
//! (a figure for the report, not an assertion: timings depend on the machine). The per-IP API
//! rate limit is lifted so the flood reaches the handlers (with the default 20 per second from
//! one address nearly every request would be a cheap 429 and the API would do no work).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{ClientOptions, NodeClient, Relay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(30);
const FLOODERS: usize = 32;
const BLOCKS: usize = 8;

async fn client(url: &str, seed: u8) -> NodeClient {
    let mut opts = ClientOptions::browser(seed);
    opts.mining_key = Some(common::wallet(seed).public_key());
    let c = NodeClient::connect(url, opts).await.unwrap();
    assert!(c.wait_connected(WAIT).await);
    c
}

/// Relays `BLOCKS` blocks from `from` to `to`; the time each took, in order.
async fn relay_blocks(from: &NodeClient, to: &NodeClient) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..BLOCKS {
        let template = from.with_node(|n| {
            tabcoin_core::miner::build_template(
                n.chain(),
                n.mempool(),
                common::wallet(1).public_key(),
                common::now_ms() / 1000,
                b"flood",
            )
        });
        let block = tabcoin_core::miner::mine(template.block).unwrap();
        let hash = block.hash();
        let start = Instant::now();
        from.submit_block(block).await.unwrap();
        loop {
            if to.with_node(|n| n.chain().tip().hash == hash) {
                break;
            }
            assert!(
                start.elapsed() < WAIT,
                "block {hash} never reached the other client"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(start.elapsed());
    }
    times
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One GET on a fresh connection; the status of the complete answer that came back.
async fn get(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let status = buf.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    std::str::from_utf8(status).ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_relayed_while_the_api_is_flooded() {
    let mut config = Relay::test_config();
    // Every flood request is answered by its handler, none by the rate limiter.
    config.limits.api_requests_per_sec = 1_000_000;
    let relay = Relay::start(config, false).await;
    let miner = client(&relay.ws_url, 1).await;
    let watcher = client(&relay.ws_url, 2).await;
    // Some chain first, so block lists and lookups have something to read.
    for _ in 0..20 {
        miner.mine_and_submit().await.unwrap();
    }
    assert!(watcher.wait_height(20, WAIT).await);
    let quiet = relay_blocks(&miner, &watcher).await;

    let stop = Arc::new(AtomicBool::new(false));
    // Requests the handlers answered (200, or 404 for the unknown txid: a transaction-index
    // lookup all the same), and the rest (408, 429, 503, failed connections: no API work).
    let answered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let tip = miner.with_node(|n| n.chain().tip().hash.to_string());
    let paths = [
        "/api/status".to_owned(),
        "/api/blocks?limit=100".to_owned(),
        format!("/api/block/{tip}"),
        format!("/api/tx/{}", "ab".repeat(32)),
        "/api/mempool".to_owned(),
        "/api/peers".to_owned(),
    ];
    let mut flood = Vec::new();
    for i in 0..FLOODERS {
        let (stop, answered, refused, addr) =
            (stop.clone(), answered.clone(), refused.clone(), relay.addr);
        let paths = paths.clone();
        flood.push(tokio::spawn(async move {
            let mut n = i;
            while !stop.load(Ordering::Relaxed) {
                match get(addr, &paths[n % paths.len()]).await {
                    Some(200 | 404) => answered.fetch_add(1, Ordering::Relaxed),
                    _ => refused.fetch_add(1, Ordering::Relaxed),
                };
                n += 1;
            }
        }));
    }
    // The flood is on before the measured blocks.
    let started = Instant::now();
    while answered.load(Ordering::Relaxed) < 200 {
        assert!(
            started.elapsed() < WAIT,
            "the API answers nothing under the flood"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let during = answered.load(Ordering::Relaxed);
    let flooded = relay_blocks(&miner, &watcher).await;
    let during = answered.load(Ordering::Relaxed) - during;
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let requests = answered.load(Ordering::Relaxed);
    let not_ok = refused.load(Ordering::Relaxed);
    println!(
        "block relay, client -> relay -> client: median {:?} quiet, {:?} under an API flood \
         ({FLOODERS} clients, {requests} requests answered by the handlers in {secs:.1} s = \
         {:.0}/s, {during} of them while the blocks were relayed; {not_ok} others); \
         flooded blocks: {flooded:?}",
        median(quiet),
        median(flooded.clone()),
        requests as f64 / secs,
    );
    assert_eq!(flooded.len(), BLOCKS);
    // The blocks crossed the relay while the handlers were busy, not after the flood.
    assert!(
        during > 0,
        "no API request was answered while the blocks were relayed"
    );
    // The flood was the handlers' work, not refusals (with the default per-IP rate nearly
    // every request would have been a 429).
    assert!(requests > not_ok, "{requests} answered, {not_ok} not");
    relay.stop().await;
}
