//! A hostile relay for the end-to-end scenario (tests/network-heals.test.mjs, issue 15).
//!
//! `hostile_relay --target DIRECT[,PUBLIC] [--target …] --forward-to ws://… --canary ws://… --ip 127.0.0.N`
//!
//! Each target is the relay's `ws://…/ws` to connect to and, if it differs, the public URL the
//! relay signs handshakes for (the test puts forwarding proxies in front of its relays; the
//! attacker goes around them so that the relay sees the attacker's own addresses).
//!
//! Against each target it opens one connection per offence, each from its own loopback
//! address (127.0.0.N, N+1, …: an honest relay bans the address, so each offence gets one):
//!
//! 1. **invalid block** — announces a chain of headers on the target's tip whose first block
//!    pays its miner one unit more than allowed, and serves that block when asked;
//! 2. **lies about its work** — claims far more work than it has in its `hello`, and answers
//!    the `getheaders` that claim earns with an empty `headers`;
//! 3. **floods bogus relay records** — sends `nodes` messages full of records that name the
//!    canary URL for other nodes' ids (signed with its own key: forgeries) and one unsolicited
//!    message of 30 records;
//! 4. **forwards a handshake** — listens on 127.0.0.N:PORT, advertises that URL in its signed
//!    record, and pipes every connection made to it to `--forward-to` (an honest relay), so a
//!    node that dials it meets someone else's handshake.
//!
//! Prints one JSON line per offence with how the target ended the connection
//! (`{"offence":…,"target":…,"closed":true,"notice":…}`), then `{"done":true}`, and keeps the
//! forwarder running until killed. The test decides what counts as right (PROTOCOL.md §9).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // a test tool: failing loudly is right

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{RawClient, test_params};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{
    Block, BlockHash, BlockHeader, HEADER_VERSION, Payload, Transaction, TxOut,
};
use tabcoin_core::sig::Keypair;
use tabcoin_core::units::{Amount, Height, Work};
use tabcoin_core::wire::{InvItem, InvKind, Message, NodeKind, NodeRecord};

const WAIT: Duration = Duration::from_secs(30);
/// Headers announced after the invalid block, so the branch outweighs a tip that keeps moving.
const DESCENDANTS: usize = 30;

struct Args {
    targets: Vec<String>,
    forward_to: Option<String>,
    canary: String,
    ip: Ipv4Addr,
}

fn args() -> Args {
    let mut a = Args {
        targets: Vec::new(),
        forward_to: None,
        canary: String::from("ws://127.0.0.1:9/ws"),
        ip: Ipv4Addr::new(127, 0, 0, 40),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => a.targets.push(v),
            "--forward-to" => a.forward_to = Some(v),
            "--canary" => a.canary = v,
            "--ip" => a.ip = v.parse().expect("--ip 127.0.0.N"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.targets.is_empty(), "at least one --target ws://…/ws");
    assert!(a.ip.is_loopback(), "--ip must be a loopback address");
    a
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn ip_plus(ip: Ipv4Addr, n: u8) -> IpAddr {
    let [a, b, c, d] = ip.octets();
    IpAddr::V4(Ipv4Addr::new(a, b, c, d.wrapping_add(n)))
}

fn report(offence: &str, target: &str, c: &RawClient, extra: &str) {
    let target = public(target);
    let notice = c.fatal_notice().unwrap_or_default();
    println!(
        "{{\"offence\":\"{offence}\",\"target\":\"{target}\",\"closed\":{},\"notice\":{:?}{extra}}}",
        c.is_closed(),
        notice
    );
}

/// Reads until the connection closes or `timeout` passes, answering pings.
async fn drain(c: &mut RawClient, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !c.is_closed() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        if let Some(Message::Ping(n)) = c.recv(left).await {
            let _ = c.send(&Message::Pong(n)).await;
        }
    }
}

/// A block on `prev` (at `prev_height`, time `prev_time`) paying `subsidy + overpay`.
fn child(
    params: &Params,
    prev: BlockHash,
    prev_height: Height,
    prev_time: u64,
    overpay: u64,
    tag: &[u8],
) -> Block {
    let height = prev_height.next();
    let key = Keypair::from_seed(&[0x44; 32]).public_key();
    let amount =
        Amount::from_units(params.subsidy(height).units() + overpay).expect("within the cap");
    let coinbase = Transaction {
        inputs: Vec::new(),
        outputs: vec![TxOut { amount, key }],
        payload: Payload::Coinbase {
            height,
            extra: tag.to_vec(),
        },
    };
    tabcoin_core::testkit::seal(Block {
        header: BlockHeader {
            version: HEADER_VERSION,
            prev,
            merkle_root: tabcoin_core::hash::Hash256::ZERO,
            time: prev_time + 1,
            bits: params.next_bits(prev_height, prev_time),
            nonce: 0,
        },
        txs: vec![coinbase],
    })
}

/// Connects to `target` ("DIRECT[,PUBLIC]") from `local`, naming PUBLIC as the URL dialed.
async fn connect(target: &str, local: IpAddr) -> common::Result<RawClient> {
    let (direct, public) = target.split_once(',').unwrap_or((target, target));
    Ok(RawClient::connect_from(direct, local, None)
        .await?
        .dialed_as(public))
}

/// The public URL of a target ("DIRECT[,PUBLIC]").
fn public(target: &str) -> &str {
    target.split_once(',').map_or(target, |(_, p)| p)
}

/// Offence 1: the invalid block, on the target's current tip.
async fn invalid_block(
    target: &str,
    local: IpAddr,
    record_url: Option<String>,
) -> common::Result<()> {
    let params = test_params();
    let mut c = connect(target, local).await?;
    let theirs = c
        .handshake(&params, [0x41; 32], NodeKind::Relay, record_url, None)
        .await?;
    // Their tip, as a block (for its time).
    c.send(&Message::GetData(vec![InvItem::block(theirs.best_hash)]))
        .await?;
    let parent = loop {
        match c.recv(WAIT).await {
            Some(Message::Block(b)) if b.hash() == theirs.best_hash => break b,
            Some(Message::Ping(n)) => c.send(&Message::Pong(n)).await?,
            Some(_) => {}
            None => {
                report("invalid-block", target, &c, ",\"error\":\"no tip block\"");
                return Ok(());
            }
        }
    };
    let bad = child(
        &params,
        parent.hash(),
        theirs.best_height,
        parent.header.time,
        1,
        b"hostile: overpays",
    );
    let mut chain = vec![bad.clone()];
    for i in 0..DESCENDANTS {
        let last = chain.last().expect("not empty");
        let h = Height(theirs.best_height.0 + 1 + i as u64);
        chain.push(child(
            &params,
            last.hash(),
            h,
            last.header.time,
            0,
            b"hostile: on top",
        ));
    }
    let headers: Vec<BlockHeader> = chain.iter().map(|b| b.header).collect();
    c.send(&Message::Headers(headers.clone())).await?;
    let mut served = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !c.is_closed() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match c.recv(left).await {
            Some(Message::GetData(items)) => {
                for it in items.iter().filter(|i| i.kind == InvKind::Block) {
                    if let Some(b) = chain.iter().find(|b| b.hash().to_hash() == it.hash) {
                        c.send(&Message::Block(b.clone())).await?;
                        served += 1;
                    }
                }
            }
            Some(Message::GetHeaders { .. }) => c.send(&Message::Headers(headers.clone())).await?,
            Some(Message::Ping(n)) => c.send(&Message::Pong(n)).await?,
            _ => {}
        }
    }
    report(
        "invalid-block",
        target,
        &c,
        &format!(",\"invalid\":\"{}\",\"served\":{served}", bad.hash()),
    );
    Ok(())
}

/// Offence 2: claims far more work than it has and shows none of it.
async fn lie_about_work(target: &str, local: IpAddr) -> common::Result<()> {
    let params = test_params();
    let mut c = connect(target, local).await?;
    let fake = BlockHash::from_hex(&"ab".repeat(32)).expect("hex");
    let mut work = [0u8; 32];
    work[8] = 1; // 2^184: more than any test chain
    let claim = (fake, Height(1_000_000), Work::from_be_bytes(work));
    c.handshake(&params, [0x42; 32], NodeKind::Relay, None, Some(claim))
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !c.is_closed() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match c.recv(left).await {
            Some(Message::GetHeaders { .. }) => c.send(&Message::Headers(Vec::new())).await?,
            Some(Message::Ping(n)) => c.send(&Message::Pong(n)).await?,
            _ => {}
        }
    }
    report("lies-about-work", target, &c, "");
    Ok(())
}

/// Offence 3: bogus relay records naming the canary for other nodes' ids.
async fn bogus_records(target: &str, local: IpAddr, canary: &str) -> common::Result<()> {
    let params = test_params();
    let genesis = params.genesis_hash();
    let mut c = connect(target, local).await?;
    let theirs = c
        .handshake(&params, [0x43; 32], NodeKind::Relay, None, None)
        .await?;
    let me = Keypair::from_seed(&[0x43; 32]);
    // Forgeries: someone else's id (the target's own, and made-up ones) at the canary URL,
    // signed with our key.
    let forged = |i: u8| {
        let mut r = NodeRecord::sign(&me, &genesis, canary.to_owned(), now_s());
        r.node_id = if i == 0 {
            theirs.node_id
        } else {
            Keypair::from_seed(&[i; 32]).public_key()
        };
        r
    };
    // Too many to be a forward (unsolicited, over 10): ignored and penalised.
    let flood: Vec<NodeRecord> = (1..=30).map(forged).collect();
    c.send(&Message::Nodes(flood)).await?;
    for round in 0..4u8 {
        if c.is_closed() {
            break;
        }
        let batch: Vec<NodeRecord> = (0..10).map(|i| forged(i + round * 10)).collect();
        c.send(&Message::Nodes(batch)).await?;
    }
    drain(&mut c, Duration::from_secs(10)).await;
    report("bogus-records", target, &c, "");
    Ok(())
}

/// Offence 4: a listener whose every connection is piped to an honest relay, advertised as
/// this node's own URL. Returns the URL.
async fn forwarder(local: IpAddr, to: &str) -> common::Result<String> {
    let upstream: SocketAddr = to
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .ok_or("url without host")?
        .parse()?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(local, 0)).await?;
    let url = format!("ws://{}/ws", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
                    return;
                };
                if socket.bind(SocketAddr::new(local, 0)).is_err() {
                    return;
                }
                if let Ok(mut out) = socket.connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    Ok(url)
}

/// Offence 4, second half: hands the target this node's record naming the forwarder, so the
/// target (and whoever it tells) may dial it and meet the relay behind it.
async fn advertise(target: &str, local: IpAddr, url: &str) -> common::Result<()> {
    let params = test_params();
    let mut c = connect(target, local).await?;
    c.handshake(
        &params,
        [0x45; 32],
        NodeKind::Relay,
        Some(url.to_owned()),
        None,
    )
    .await?;
    drain(&mut c, Duration::from_secs(20)).await;
    report(
        "forwards-handshake",
        target,
        &c,
        &format!(",\"advertised\":\"{url}\""),
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let forward_url = match &a.forward_to {
        Some(to) => Some(
            forwarder(ip_plus(a.ip, 0), to)
                .await
                .expect("forwarder listens"),
        ),
        None => None,
    };
    if let Some(u) = &forward_url {
        println!("{{\"forwarder\":\"{u}\"}}");
    }
    let mut tasks = Vec::new();
    for (i, t) in a.targets.iter().enumerate() {
        let base = 1 + 5 * i as u8;
        let (t1, t2, t3) = (t.clone(), t.clone(), t.clone());
        let canary = a.canary.clone();
        let ip = a.ip;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = invalid_block(&t1, ip_plus(ip, base), None).await {
                println!(
                    "{{\"offence\":\"invalid-block\",\"target\":\"{}\",\"error\":{:?}}}",
                    public(&t1),
                    e.to_string()
                );
            }
        }));
        tasks.push(tokio::spawn(async move {
            if let Err(e) = lie_about_work(&t2, ip_plus(ip, base + 1)).await {
                println!(
                    "{{\"offence\":\"lies-about-work\",\"target\":\"{}\",\"error\":{:?}}}",
                    public(&t2),
                    e.to_string()
                );
            }
        }));
        tasks.push(tokio::spawn(async move {
            if let Err(e) = bogus_records(&t3, ip_plus(ip, base + 2), &canary).await {
                println!(
                    "{{\"offence\":\"bogus-records\",\"target\":\"{}\",\"error\":{:?}}}",
                    public(&t3),
                    e.to_string()
                );
            }
        }));
        if let Some(u) = forward_url.clone() {
            let t4 = t.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = advertise(&t4, ip_plus(ip, base + 3), &u).await {
                    println!(
                        "{{\"offence\":\"forwards-handshake\",\"target\":\"{}\",\"error\":{:?}}}",
                        public(&t4),
                        e.to_string()
                    );
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    println!("{{\"done\":true}}");
    // The forwarder keeps running until the test kills this process.
    if forward_url.is_some() {
        std::future::pending::<()>().await;
    }
}
