//! SIGTERM ends the relay process within seconds whatever its clients do (issue 12, HTTP
//! limits): the real binary, with every client timeout set far longer than the bound, holding
//! idle TCP connections, unfinished HTTP headers, a slow request body and WebSocket peers that
//! never read. Real sockets from loopback addresses, bounded in count and time.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::RawClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(60);
/// What the test allows from the signal to the process's exit: the relay gives its
/// connections 2 s to finish (PROTOCOL §10.1); the rest is margin for a busy machine.
const EXIT_BOUND: Duration = Duration::from_secs(15);

fn ip(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

async fn tcp_from(relay: SocketAddr, local: IpAddr) -> TcpStream {
    common::tcp_from(relay, local).await.unwrap()
}

/// Reads until the peer closes (or resets) the connection, within `WAIT`.
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_relay_within_seconds_whatever_its_clients_do() {
    let (mut child, pid, addr) = common::spawn_relay_binary(
        env!("CARGO_BIN_EXE_tabcoin-relay"),
        &[
            "--header-read-timeout-secs",
            "600",
            "--request-timeout-secs",
            "600",
            "--write-timeout-secs",
            "600",
        ],
        WAIT,
    )
    .await;
    let url = format!("ws://{addr}/ws");

    let mut held = Vec::new();
    // Idle connections that never send a byte, 40 per source address.
    for i in 0..200u32 {
        held.push(tcp_from(addr, ip(70, (i / 40) as u8)).await);
    }
    // Unfinished request headers.
    for i in 0..20u8 {
        let mut s = tcp_from(addr, ip(71, i)).await;
        s.write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    // A request whose body never finishes.
    let mut slow = tcp_from(addr, ip(72, 1)).await;
    slow.write_all(b"POST /api/tx HTTP/1.1\r\nHost: x\r\ncontent-length: 1000\r\n\r\n{")
        .await
        .unwrap();
    held.push(slow);
    // WebSocket peers that finish the handshake and then never read.
    let mut silent = Vec::new();
    for i in 0..10u8 {
        let mut c = RawClient::connect_from(&url, ip(73, i), Some(4096))
            .await
            .unwrap();
        c.handshake_browser(40 + i).await.unwrap();
        silent.push(c);
    }
    // Everything above was accepted: the relay still answers a fresh request.
    let mut probe = tcp_from(addr, ip(74, 1)).await;
    probe
        .write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, probe.read_to_end(&mut answer))
        .await
        .expect("the relay answers while holding the others")
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(EXIT_BOUND, child.wait())
        .await
        .expect("the relay exits within the bound after SIGTERM")
        .unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    eprintln!(
        "SIGTERM to exit: {took:?}, holding {} TCP and {} WebSocket clients",
        held.len(),
        silent.len()
    );
    // Every connection it held is closed, none left half-open.
    for s in &mut held {
        assert!(closed(s).await, "a connection outlived the relay");
    }
}
