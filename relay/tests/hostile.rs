//! Hostile clients over real loopback sockets, each from its own 127.0.0.x address: slow
//! readers, unfinished headers, half-open connections, oversize and partial messages,
//! floods of messages, of `getheaders` and of API requests, and many source addresses.
//! Every test asserts the exact outcome (how the connection ended, that the relay's own
//! memory accounting came back, that an honest client was still served) and waits on
//! events; the only durations are generous upper bounds.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test code

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{ClientOptions, NodeClient, RawClient, Relay, tcp_from};
use tabcoin_core::encode::Encode;
use tabcoin_core::primitives::BlockHash;
use tabcoin_core::wire::{InvItem, Message};

const WAIT: Duration = Duration::from_secs(30);

fn ip(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

async fn miner(url: &str, seed: u8) -> NodeClient {
    let mut opts = ClientOptions::browser(seed);
    opts.mining_key = Some(common::wallet(seed).public_key());
    let c = NodeClient::connect(url, opts).await.unwrap();
    assert!(c.wait_connected(WAIT).await, "client {seed}: no handshake");
    c
}

/// Sends `request` from `local` and reads until the relay closes: the status (0 when the
/// relay closed without answering) and the whole answer.
async fn http_from(relay: SocketAddr, local: IpAddr, request: &str) -> (u16, String) {
    let mut s = tcp_from(relay, local).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    read_to_close(&mut s).await
}

async fn read_to_close(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("the relay closes the connection");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The body of a whole HTTP answer when it is exactly as long as its `content-length` says.
fn exact_body(answer: &str) -> Option<&str> {
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })?
        .parse()
        .ok()?;
    (body.len() == len).then_some(body)
}

/// Asserts that a whole HTTP answer carries every security header the relay sets (limit
/// answers and refusals as much as pages).
fn assert_secured(answer: &str) {
    let head = answer.split_once("\r\n\r\n").map_or(answer, |(h, _)| h);
    for (name, value) in tabcoin_relay::http_policy::SECURITY_HEADERS {
        let found = head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        });
        assert_eq!(found, Some(value), "{name} missing or wrong in {head:?}");
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
}

fn line_value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Reads `/metrics` (from 127.0.0.1) until `name` satisfies `pred`; its last value.
async fn wait_metric(relay: &Relay, name: &str, pred: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, body) = relay.get_raw("/metrics").await;
        let v = if code == 200 {
            line_value(&body, name)
        } else {
            None
        };
        if let Some(v) = v
            && pred(v)
        {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never satisfied the condition (last {v:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The relay's memory accounting once it is steady: two equal readings a tick apart.
async fn steady_memory(relay: &Relay) -> f64 {
    let mut last = wait_metric(relay, "tabcoin_memory_used_bytes", |_| true).await;
    loop {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let now = wait_metric(relay, "tabcoin_memory_used_bytes", |_| true).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

/// An honest miner and an honest browser; the browser must see the miner's next block.
struct Honest {
    miner: NodeClient,
    browser: NodeClient,
}

impl Honest {
    async fn join(relay: &Relay) -> Honest {
        let miner = miner(&relay.ws_url, 1).await;
        let browser = NodeClient::browser(&relay.ws_url, 2).await.unwrap();
        assert!(browser.wait_connected(WAIT).await);
        Honest { miner, browser }
    }

    async fn still_served(&self) {
        let b = self.miner.mine_and_submit().await.unwrap();
        assert!(
            self.browser.wait_tip(b.hash(), WAIT).await,
            "the honest browser did not get the next block"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_are_closed_at_the_write_deadline_and_their_memory_returned() {
    let mut config = Relay::test_config();
    config.limits.write_timeout = Duration::from_secs(1);
    config.limits.close_timeout = Duration::from_secs(1);
    // The queue limit is out of reach: only the write deadline can close them.
    config.limits.max_write_buffer_bytes = 256 * 1024 * 1024;
    config.limits.max_write_buffer_msgs = 100_000;
    config.limits.messages_per_sec = 100_000;
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await;
    let big = common::big_block(&honest.miner, &honest.browser).await;
    let baseline = steady_memory(&relay).await;
    // The honest miner and browser.
    let conns_before = 2.0;

    // Eight readers from eight addresses ask for the big block again and again, never read.
    let ask = Message::GetData(vec![InvItem::block(big.hash())]).encode();
    let mut slow = Vec::new();
    for i in 0..8u8 {
        let mut c = RawClient::connect_from(&relay.ws_url, ip(1, 10 + i), Some(4096))
            .await
            .unwrap();
        c.handshake_browser(10 + i).await.unwrap();
        for _ in 0..400 {
            if tokio::time::timeout(Duration::from_secs(2), c.send_bytes(ask.clone()))
                .await
                .map(|r| r.is_ok())
                != Ok(true)
            {
                break;
            }
        }
        slow.push(c);
    }
    // Each is closed at its write deadline (not by the queue limit), and everything it
    // held — queue, buffers, socket and slot — is returned.
    wait_metric(&relay, "tabcoin_write_deadline_drops_total", |v| v >= 8.0).await;
    assert_eq!(
        wait_metric(&relay, "tabcoin_slow_readers_dropped_total", |_| true).await,
        0.0
    );
    for c in &mut slow {
        assert!(
            c.closed_within(WAIT).await,
            "a slow reader's socket stayed open"
        );
    }
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v == conns_before).await;
    let after = wait_metric(&relay, "tabcoin_memory_used_bytes", |v| v <= baseline).await;
    assert!(after <= baseline, "{after} > {baseline}");
    honest.still_served().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_and_oversize_http_headers_are_cut() {
    let mut config = Relay::test_config();
    config.limits.header_read_timeout = Duration::from_secs(1);
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await;
    // The honest miner and browser.
    let conns_before = 2.0;

    // 50 clients start a request and never finish its headers: closed without an answer.
    let mut stalled = Vec::new();
    for i in 0..50u8 {
        let mut s = tcp_from(relay.addr, ip(2, i)).await.unwrap();
        s.write_all(b"GET /api/status HTTP/1.1\r\nHost: relay\r\nX-Slow: ")
            .await
            .unwrap();
        stalled.push(s);
    }
    for s in &mut stalled {
        let (status, text) = read_to_close(s).await;
        assert_eq!((status, text.as_str()), (0, ""));
    }
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v == conns_before).await;

    // Headers larger than the header buffer: 431.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: relay\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let (status, _) = http_from(relay.addr, ip(2, 200), &huge).await;
    assert_eq!(status, 431);

    // A body where none is expected, above the body limit: 413.
    let post = format!(
        "POST /api/status HTTP/1.1\r\nHost: relay\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n{}",
        "b".repeat(100_000)
    );
    // The body limit answers from Content-Length alone, before routing (so not 405).
    let (status, text) = http_from(relay.addr, ip(2, 201), &post).await;
    assert_eq!(status, 413, "{text}");
    assert_secured(&text);
    honest.still_served().await;
    relay.stop().await;
}

/// A request whose headers stall is closed, without an answer, at the header-read timeout
/// (hyper writes no 408 there); one whose body comes slowly is answered at once — no route
/// waits for a body, so the request timeout's 408 is not reachable from a client (a unit
/// test in server.rs reaches it) — and closed rather than kept open for the rest of the
/// body. The timeouts that should not act are far beyond the test's bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_headers_and_slow_bodies_cannot_hold_a_connection() {
    let mut config = Relay::test_config();
    config.limits.header_read_timeout = Duration::from_secs(1);
    config.limits.request_timeout = Duration::from_secs(600);
    config.limits.write_timeout = Duration::from_secs(600);
    let relay = Relay::start(config, true).await;

    // The request line and some headers, then nothing.
    let mut s = tcp_from(relay.addr, ip(15, 1)).await.unwrap();
    s.write_all(b"GET /api/status HTTP/1.1\r\nHost: relay\r\nAccept: */*\r\n")
        .await
        .unwrap();
    let (status, text) = read_to_close(&mut s).await;
    assert_eq!((status, text.as_str()), (0, ""));
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v == 0.0).await;
    relay.stop().await;

    // Whole headers announcing a body, and only its first bytes: answered, then closed, on
    // a relay where no timeout could end them within the test's bound.
    let mut config = Relay::test_config();
    config.limits.header_read_timeout = Duration::from_secs(600);
    config.limits.request_timeout = Duration::from_secs(600);
    config.limits.write_timeout = Duration::from_secs(600);
    let relay = Relay::start(config, true).await;
    for (i, request) in [
        "GET /api/status HTTP/1.1\r\nHost: relay\r\nContent-Length: 1000\r\n\r\nfirst bytes",
        "POST /api/status HTTP/1.1\r\nHost: relay\r\nContent-Length: 1000\r\n\r\nfirst bytes",
        "POST /api/status HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst",
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = tcp_from(relay.addr, ip(15, 2 + i as u8)).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let (status, text) = read_to_close(&mut s).await;
        let expected = if request.starts_with("GET") { 200 } else { 405 };
        assert_eq!(status, expected, "{request:?}: {text}");
        assert_secured(&text);
    }
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v == 0.0).await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_half_open_connections_are_closed_at_the_header_timeout() {
    let mut config = Relay::test_config();
    config.limits.header_read_timeout = Duration::from_secs(2);
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await;
    // The honest miner and browser.
    let conns_before = 2.0;
    let mem_before = steady_memory(&relay).await;

    // 1,000 connections that never send a byte, 50 from each of 20 addresses.
    let mut idle = Vec::new();
    for i in 0..1_000u32 {
        let s = tcp_from(relay.addr, ip(3, (i / 50) as u8)).await.unwrap();
        idle.push(s);
    }
    // Each is accepted (a refused one would read a 503) and closed without an answer.
    for s in &mut idle {
        let (status, text) = read_to_close(s).await;
        assert_eq!((status, text.as_str()), (0, ""));
    }
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v == conns_before).await;
    wait_metric(&relay, "tabcoin_memory_used_bytes", |v| v <= mem_before).await;
    honest.still_served().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_half_open_or_slow_clients() {
    let mut config = Relay::test_config();
    // Far longer than the stop is given: only the shutdown path can end them.
    config.limits.header_read_timeout = Duration::from_secs(600);
    config.limits.write_timeout = Duration::from_secs(600);
    config.limits.request_timeout = Duration::from_secs(600);
    let relay = Relay::start(config, true).await;
    let _honest = Honest::join(&relay).await;
    let mut held = Vec::new();
    for i in 0..1_000u32 {
        held.push(tcp_from(relay.addr, ip(4, (i / 50) as u8)).await.unwrap());
    }
    for i in 0..20u8 {
        let mut s = tcp_from(relay.addr, ip(5, i)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        held.push(s);
    }
    let mut silent_ws = Vec::new();
    for i in 0..20u8 {
        let mut c = RawClient::connect_from(&relay.ws_url, ip(6, i), Some(4096))
            .await
            .unwrap();
        c.handshake_browser(30 + i).await.unwrap();
        silent_ws.push(c);
    }
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v >= 1_040.0).await;
    // `stop` fails the test unless the relay returns within its (generous) bound.
    relay.stop().await;
    for s in &mut held {
        let (status, _) = read_to_close(s).await;
        assert_eq!(status, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_are_refused_with_503_before_the_budget_is_exceeded() {
    let base = tabcoin_relay::budget::CONN_BASE;
    let mut config = Relay::test_config();
    let inbox = config.limits.max_message_bytes;
    config.limits.inbox_bytes = inbox;
    // Room for the inbox and exactly 12 connections' base.
    config.limits.max_memory = inbox + 12 * base;
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await; // 2 connections
    // Ten more fill it (the relay accepts in order, so the next one finds it full).
    let mut open = Vec::new();
    for i in 0..10u8 {
        open.push(tcp_from(relay.addr, ip(7, i)).await.unwrap());
    }
    // Full: the next one, HTTP or WebSocket, gets 503 without being read.
    let (status, text) = http_from(relay.addr, ip(7, 100), &get("/api/status")).await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(
        exact_body(&text),
        Some("relay memory budget exhausted\r\n"),
        "{text:?}"
    );
    assert_secured(&text);
    let ws = RawClient::connect_from(&relay.ws_url, ip(7, 101), None).await;
    let err = ws.expect_err("refused").to_string();
    assert!(err.contains("503"), "{err}");
    // Closing some makes room again.
    drop(open.drain(..5));
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v <= 7.0).await;
    let (status, _) = http_from(relay.addr, ip(7, 102), &get("/api/status")).await;
    assert_eq!(status, 200);
    honest.still_served().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_message_the_budget_cannot_hold_closes_its_peer_with_1013() {
    let base = tabcoin_relay::budget::CONN_BASE;
    let mut config = Relay::test_config();
    let inbox = config.limits.max_message_bytes;
    config.limits.inbox_bytes = inbox;
    // The inbox, the base of 4 connections (the honest pair, this peer and one HTTP request;
    // a base includes the node's state per peer, so spare bases would hold the message) and
    // 200 KB for messages in flight.
    config.limits.max_memory = inbox + 4 * base + 200_000;
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await;
    let mem_before = steady_memory(&relay).await;
    let mut big = RawClient::connect_from(&relay.ws_url, ip(8, 1), None)
        .await
        .unwrap();
    big.handshake_browser(40).await.unwrap();
    // 900 KB: within the message limit, beyond what the budget has left.
    let _ = big.send_bytes(vec![7u8; 900_000]).await;
    assert!(big.closed_within(WAIT).await);
    let (code, reason) = big.close_frame.clone().unwrap_or_default();
    assert_eq!(code, 1013, "{reason}");
    wait_metric(&relay, "tabcoin_memory_used_bytes", |v| v <= mem_before).await;
    honest.still_served().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_frame_is_refused_with_1009_and_nothing_kept() {
    let relay = Relay::start(Relay::test_config(), true).await;
    let honest = Honest::join(&relay).await;
    let mem_before = steady_memory(&relay).await;
    let mut big = RawClient::connect_from(&relay.ws_url, ip(9, 1), None)
        .await
        .unwrap();
    big.handshake_browser(41).await.unwrap();
    let _ = big.send_bytes(vec![9u8; 2_000_000]).await;
    assert!(big.closed_within(WAIT).await);
    assert_eq!(big.close_frame.clone().map(|c| c.0), Some(1009));
    wait_metric(&relay, "tabcoin_memory_used_bytes", |v| v <= mem_before).await;
    honest.still_served().await;
    relay.stop().await;
}

/// Sends `msg` in bursts of 100, far above any rate limit, until the relay closes the
/// connection; between bursts it reads what came (answers, then the close frame).
async fn flood(c: &mut RawClient, msg: &Message) {
    let bytes = msg.encode();
    let deadline = tokio::time::Instant::now() + WAIT;
    'flood: while tokio::time::Instant::now() < deadline {
        for _ in 0..100 {
            if c.send_bytes(bytes.clone()).await.is_err() {
                break 'flood;
            }
        }
        loop {
            match c.recv_frame(Duration::from_millis(50)).await {
                common::Frame::Closed => return,
                common::Frame::Timeout => break,
                _ => {}
            }
        }
    }
    assert!(c.closed_within(WAIT).await, "never closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_flood_is_closed_with_1008_at_the_rate_limit() {
    let mut config = Relay::test_config();
    config.limits.messages_per_sec = 50;
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await;
    let mut f = RawClient::connect_from(&relay.ws_url, ip(10, 1), None)
        .await
        .unwrap();
    f.handshake_browser(42).await.unwrap();
    flood(&mut f, &Message::Ping(7)).await;
    let (code, reason) = f.close_frame.clone().unwrap_or_default();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("rate limit"), "{reason}");
    honest.still_served().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_getheaders_flood_is_closed_with_1008_at_the_rate_limit() {
    let mut config = Relay::test_config();
    config.limits.messages_per_sec = 50;
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await;
    for _ in 0..5 {
        honest.miner.mine_and_submit().await.unwrap();
    }
    let mut f = RawClient::connect_from(&relay.ws_url, ip(11, 1), None)
        .await
        .unwrap();
    f.handshake_browser(43).await.unwrap();
    // The largest locator, of hashes the relay does not know, with no stop.
    let locator = (0..64u8).map(|i| BlockHash::from_bytes([i; 32])).collect();
    let msg = Message::GetHeaders {
        locator,
        stop: BlockHash::ZERO,
    };
    flood(&mut f, &msg).await;
    let (code, reason) = f.close_frame.clone().unwrap_or_default();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("rate limit"), "{reason}");
    honest.still_served().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_flood_gets_429_while_other_addresses_are_served() {
    let mut config = Relay::test_config();
    config.limits.api_requests_per_sec = 2;
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await;
    let started = std::time::Instant::now();
    let (mut ok, mut limited) = (0u32, 0u32);
    for _ in 0..40 {
        let (status, text) = http_from(relay.addr, ip(12, 1), &get("/api/status")).await;
        match status {
            200 => ok += 1,
            429 => {
                assert!(text.contains("too many API requests"), "{text}");
                assert_secured(&text);
                limited += 1;
            }
            s => panic!("unexpected status {s}: {text}"),
        }
    }
    // A burst of 4, then 2 per second.
    let allowed = 4.0 + 2.0 * started.elapsed().as_secs_f64();
    assert!(f64::from(ok) <= allowed.ceil(), "{ok} answered");
    assert!(limited >= 40 - allowed.ceil() as u32, "{limited} limited");
    // Another address, and the page itself, are not limited.
    let (status, _) = http_from(relay.addr, ip(12, 2), &get("/api/status")).await;
    assert_eq!(status, 200);
    for _ in 0..10 {
        let (status, _) = http_from(relay.addr, ip(12, 1), &get("/")).await;
        assert_eq!(status, 200);
    }
    honest.still_served().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_many_addresses_meet_the_global_cap_with_503() {
    let mut config = Relay::test_config();
    config.limits.max_connections = 40;
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await; // 2 of the 40
    let mut open = Vec::new();
    let mut refused = 0;
    for i in 0..60u8 {
        match RawClient::connect_from(&relay.ws_url, ip(13, i), None).await {
            Ok(c) => open.push(c),
            Err(e) => {
                assert!(e.to_string().contains("503"), "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!(open.len(), 38);
    assert_eq!(refused, 22);
    // Plain HTTP counts too.
    let (status, text) = http_from(relay.addr, ip(13, 200), &get("/")).await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(exact_body(&text), Some("relay is full\r\n"), "{text:?}");
    assert_secured(&text);
    honest.still_served().await;
    relay.stop().await;
}

/// A request for `path` as a reverse proxy forwards it for `client`.
fn get_for(path: &str, client: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: relay\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_carries_many_clients_each_limited_on_its_own() {
    let proxy = ip(15, 9);
    let mut config = Relay::test_config();
    config.limits.max_http_per_ip = 4;
    config.limits.api_requests_per_sec = 1;
    config.proxies = tabcoin_relay::client_addr::ProxyPolicy {
        trusted: vec![proxy.to_string().parse().unwrap()],
        header: tabcoin_relay::client_addr::ForwardedHeader::XForwardedFor,
    };
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await;
    // The proxy holds more connections than one address may: it carries many clients.
    let mut open = Vec::new();
    for _ in 0..12 {
        open.push(tcp_from(relay.addr, proxy).await.unwrap());
    }
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v >= 14.0).await;
    let (status, text) = http_from(relay.addr, proxy, &get_for("/", "198.51.100.7")).await;
    assert_eq!(status, 200, "{text}");
    // Any other address still meets its cap of 4.
    let mut other = Vec::new();
    for _ in 0..4 {
        other.push(tcp_from(relay.addr, ip(15, 10)).await.unwrap());
    }
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v >= 18.0).await;
    let (status, text) = http_from(relay.addr, ip(15, 10), &get("/")).await;
    assert_eq!(status, 429, "{text}");
    drop(open);
    drop(other);
    // The API rate counts each forwarded client, not the proxy: one client flooding through
    // the proxy is limited (a burst of 2, then 1 per second) while another is still served.
    let mut limited = 0;
    for _ in 0..10 {
        let (status, text) =
            http_from(relay.addr, proxy, &get_for("/api/status", "198.51.100.7")).await;
        match status {
            200 => {}
            429 => {
                assert!(text.contains("198.51.100.7"), "{text}");
                limited += 1;
            }
            s => panic!("unexpected status {s}: {text}"),
        }
    }
    assert!(
        limited >= 1,
        "a flooding client behind the proxy was never limited"
    );
    let (status, text) =
        http_from(relay.addr, proxy, &get_for("/api/status", "198.51.100.8")).await;
    assert_eq!(status, 200, "{text}");
    honest.still_served().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let mut config = Relay::test_config();
    config.limits.max_http_per_ip = 10;
    let relay = Relay::start(config, true).await;
    let honest = Honest::join(&relay).await;
    let mut open = Vec::new();
    for _ in 0..10 {
        open.push(tcp_from(relay.addr, ip(14, 1)).await.unwrap());
    }
    wait_metric(&relay, "tabcoin_tcp_connections", |v| v >= 12.0).await;
    let (status, text) = http_from(relay.addr, ip(14, 1), &get("/")).await;
    assert_eq!(status, 429, "{text}");
    // The refusal is written at accept time without hyper: its framing must still be exact.
    assert_eq!(
        exact_body(&text),
        Some("too many connections from this IP\r\n"),
        "{text:?}"
    );
    assert_secured(&text);
    let (status, _) = http_from(relay.addr, ip(14, 2), &get("/")).await;
    assert_eq!(status, 200);
    honest.still_served().await;
    relay.stop().await;
}
