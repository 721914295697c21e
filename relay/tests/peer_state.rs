//! The core node's state per peer fits in what the relay charges per connection
//! (`budget::CONN_BASE`, which includes `node::PEER_STATE_MAX_BYTES`): a relay process with
//! 250 browsers that each announce thousands of unknown transactions in ordinary `inv`
//! messages grows its resident set by less than that charge per connection. Real sockets
//! from loopback addresses, bounded in count and time; RSS is noisy, so the count is large
//! and the margin generous; no timing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::RawClient;
use tabcoin_core::primitives::{BlockHash, Txid};
use tabcoin_core::wire::{InvItem, MAX_INV, Message};
use tabcoin_relay::budget::CONN_BASE;

const CONNS: u32 = 250;
/// `inv` messages of [`MAX_INV`] new txids per browser: more than every per-peer cap holds.
const INVS: u32 = 6;
const WAIT: Duration = Duration::from_secs(120);

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

/// A distinct id whose four 64-bit words all vary.
fn id(tag: u8, k: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (w, chunk) in b.chunks_mut(8).enumerate() {
        let v = k
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(w as u32 * 11);
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    b[31] = tag;
    b
}

/// Sends a ping and reads until its pong: everything sent before it has been handled.
async fn settled(c: &mut RawClient, nonce: u64) -> bool {
    c.send(&Message::Ping(nonce)).await.unwrap();
    loop {
        match c.recv(WAIT).await {
            Some(Message::Pong(n)) if n == nonce => return true,
            Some(_) => continue,
            None => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_grow_the_relay_by_less_than_its_charge_per_connection() {
    let (mut child, pid, addr) =
        common::spawn_relay_binary(env!("CARGO_BIN_EXE_tabcoin-relay"), &[], WAIT).await;
    let url = format!("ws://{addr}/ws");

    // One browser first, so the relay's one-time allocations are in the baseline.
    let mut warm = RawClient::connect_lean(&url, IpAddr::V4(Ipv4Addr::new(127, 0, 60, 1)))
        .await
        .unwrap();
    warm.handshake_browser(1).await.unwrap();
    assert!(settled(&mut warm, 1).await);
    let rss0 = rss_kib(pid);

    let mut held = Vec::new();
    let mut k = 0u64;
    for i in 0..CONNS {
        let ip = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            61 + (i / 200) as u8,
            (i % 200) as u8 + 1,
        ));
        let mut c = RawClient::connect_lean(&url, ip).await.unwrap();
        c.handshake_browser((i % 250) as u8 + 2).await.unwrap();
        for _ in 0..INVS {
            let items = (0..MAX_INV)
                .map(|_| {
                    k += 1;
                    InvItem::tx(Txid::from_bytes(id(0x5a, k)))
                })
                .collect();
            c.send(&Message::Inv(items)).await.unwrap();
        }
        let blocks = (0..8)
            .map(|_| {
                k += 1;
                InvItem::block(BlockHash::from_bytes(id(0x6b, k)))
            })
            .collect();
        c.send(&Message::Inv(blocks)).await.unwrap();
        assert!(
            settled(&mut c, u64::from(i) + 2).await,
            "browser {i} dropped"
        );
        held.push(c);
    }
    let rss1 = rss_kib(pid);
    let mut open = 0;
    for c in &mut held {
        if !c.closed_within(Duration::from_millis(1)).await {
            open += 1;
        }
    }
    assert_eq!(
        open, CONNS,
        "browsers were dropped; the state was not built up"
    );
    let per_conn_kib = (rss1.saturating_sub(rss0)) as f64 / f64::from(CONNS);
    let charge_kib = CONN_BASE as f64 / 1024.0;
    println!(
        "peer state: relay RSS {rss0} -> {rss1} KiB with {CONNS} announcing browsers: \
         {per_conn_kib:.1} KiB per connection (charge {charge_kib:.1} KiB)"
    );
    assert!(
        per_conn_kib <= charge_kib,
        "{per_conn_kib:.1} KiB of RSS per connection > the {charge_kib:.1} KiB charged"
    );
    drop(held);
    drop(warm);
    child.kill().await.unwrap();
}
