//! The relay over real sockets on 127.0.0.1: linking, discovery, gossip, persistence and
//! every transport limit, each refused with its limit while an honest client carries on.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test code

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{ClientOptions, NodeClient, RawClient, Relay};
use tabcoin_core::encode::Encode;
use tabcoin_core::wire::{InvItem, Message};

const WAIT: Duration = Duration::from_secs(20);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A browser client that mines on its own chain, with coins maturing for payments.
async fn miner(url: &str, seed: u8) -> NodeClient {
    let mut opts = ClientOptions::browser(seed);
    opts.mining_key = Some(common::wallet(seed).public_key());
    let c = NodeClient::connect(url, opts).await.unwrap();
    assert!(
        c.wait_connected(WAIT).await,
        "client {seed} did not complete the handshake"
    );
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_linked_by_peer_converge_on_blocks_from_either() {
    let a = Relay::start(Relay::test_config(), true).await;
    let mut cb = Relay::test_config();
    cb.peers = vec![a.ws_url.clone()];
    let b = Relay::start(cb, true).await;
    assert!(
        b.wait_json("/api/status", WAIT, |s| s["peers_relay"] == 1)
            .await,
        "b did not link to a"
    );

    let on_a = miner(&a.ws_url, 1).await;
    let on_b = miner(&b.ws_url, 2).await;
    for round in 0..3 {
        let (who, other) = if round % 2 == 0 {
            (&on_a, &on_b)
        } else {
            (&on_b, &on_a)
        };
        let block = who.mine_and_submit().await.unwrap();
        let hash = block.hash().to_string();
        for relay in [&a, &b] {
            assert!(
                relay
                    .wait_json("/api/status", WAIT, |s| s["tip"] == hash.as_str())
                    .await,
                "relay did not reach block {hash} (round {round})"
            );
        }
        assert!(
            other.wait_tip(block.hash(), WAIT).await,
            "the other client did not get it"
        );
    }
    let sa = a.get("/api/status").await;
    let sb = b.get("/api/status").await;
    assert_eq!(sa["height"], 3);
    assert_eq!(sa["utxo_digest"], sb["utxo_digest"]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_asking_for_known_nodes_gets_every_relay() {
    // A and C both dial B. On loopback every relay and every source share one address
    // group, so all the relays a node hears of but never dialed go to one new-table bucket,
    // where two URLs share a slot one time in 16 and the second is dropped (by design: a
    // bounded table, see addrman). A relay's configured peers are not in that table, so A
    // (which knows B as a configured peer) has room for C whatever the keys; B may drop one
    // of A and C, and then A learns of C either from B or from C itself, which learns of A
    // from B and dials it. (With B dialing A, A heard of both B and C unasked and missed C
    // in 1 of 16 runs.)
    let b = Relay::start(Relay::test_config(), true).await;
    let mut ca = Relay::test_config();
    ca.peers = vec![b.ws_url.clone()];
    let a = Relay::start(ca, true).await;
    let mut cc = Relay::test_config();
    cc.peers = vec![b.ws_url.clone()];
    let c = Relay::start(cc, true).await;
    let all = [a.ws_url.clone(), b.ws_url.clone(), c.ws_url.clone()];
    let learned = a
        .wait_json("/api/peers", WAIT, |p| {
            let known: Vec<&str> = p["known_relays"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| r["url"].as_str())
                .collect();
            known.contains(&b.ws_url.as_str()) && known.contains(&c.ws_url.as_str())
        })
        .await;
    assert!(
        learned,
        "relay a did not learn every relay: {}",
        a.get("/api/peers").await
    );
    let mut client = RawClient::connect(&a.ws_url).await.unwrap();
    client.handshake_browser(9).await.unwrap();
    // The relay asks us first; we ask it.
    client.send(&Message::GetNodes).await.unwrap();
    let nodes = client
        .wait_for(
            WAIT,
            |m| matches!(m, Message::Nodes(list) if list.len() >= 2),
        )
        .await
        .expect("a nodes reply");
    let Message::Nodes(list) = nodes else {
        unreachable!()
    };
    let urls: Vec<&str> = list.iter().map(|r| r.url.as_str()).collect();
    for url in &all {
        assert!(urls.contains(&url.as_str()), "{url} missing from {urls:?}");
    }
    for r in [a, b, c] {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mined_block_reaches_every_other_client_exactly_once() {
    let relay = Relay::start(Relay::test_config(), true).await;
    let miner = miner(&relay.ws_url, 1).await;
    let mut others = Vec::new();
    for seed in 2..6 {
        let c = NodeClient::browser(&relay.ws_url, seed).await.unwrap();
        assert!(c.wait_connected(WAIT).await);
        others.push(c);
    }
    let block = miner.mine_and_submit().await.unwrap();
    for c in &others {
        assert!(c.wait_tip(block.hash(), WAIT).await);
    }
    // Let any duplicate arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &others {
        assert_eq!(
            c.blocks_received_count(),
            1,
            "a client got the block more than once"
        );
        assert_eq!(c.stats().blocks_validated, 1);
    }
    assert_eq!(
        miner.blocks_received_count(),
        0,
        "the block was echoed to its sender"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_tip_utxo_and_known_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let other = Relay::start(Relay::test_config(), true).await;
    let mut config = Relay::test_config();
    config.data_dir = Some(dir.path().to_path_buf());
    config.peers = vec![other.ws_url.clone()];
    let relay = Relay::start(config.clone(), true).await;
    let m = miner(&relay.ws_url, 1).await;
    for _ in 0..4 {
        let b = m.mine_and_submit().await.unwrap();
        assert!(
            relay
                .wait_json("/api/status", WAIT, |s| s["tip"]
                    == b.hash().to_string().as_str())
                .await
        );
    }
    // A payment, so the UTXO set is more than coinbases.
    let tx = m
        .with_node(|n| {
            common::wallet(1).pay(
                n.chain(),
                n.mempool(),
                common::wallet(2).public_key(),
                tabcoin_core::units::Amount::from_units(5_000).unwrap(),
                2_000,
                None,
            )
        })
        .unwrap();
    m.submit_tx(tx).await.unwrap().unwrap();
    let b = m.mine_and_submit().await.unwrap();
    assert!(
        relay
            .wait_json("/api/status", WAIT, |s| s["tip"]
                == b.hash().to_string().as_str())
            .await
    );
    assert!(
        relay
            .wait_json("/api/peers", WAIT, |p| !p["known_relays"]
                .as_array()
                .unwrap()
                .is_empty())
            .await
    );
    let before = relay.get("/api/status").await;
    let known_before = relay.get("/api/peers").await["known_relays"].clone();
    drop(m);
    relay.stop().await;
    other.stop().await;

    let relay = Relay::start(config, true).await;
    let after = relay.get("/api/status").await;
    for key in ["tip", "height", "utxo_digest", "utxo_count", "node_id"] {
        assert_eq!(before[key], after[key], "{key} changed across the restart");
    }
    let known_after = relay.get("/api/peers").await["known_relays"].clone();
    let urls = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["url"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(urls(&known_before), urls(&known_after));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_text_frames_are_refused_with_their_limit() {
    let relay = Relay::start(Relay::test_config(), true).await;
    let m = miner(&relay.ws_url, 1).await;
    let honest = NodeClient::browser(&relay.ws_url, 2).await.unwrap();
    assert!(honest.wait_connected(WAIT).await);

    // Garbage: not a message.
    let mut g = RawClient::connect_from(&relay.ws_url, ip(66), None)
        .await
        .unwrap();
    g.send_bytes(vec![0xee, 1, 2, 3]).await.unwrap();
    assert!(g.closed_within(WAIT).await);
    assert!(
        g.fatal_notice().unwrap().contains("unknown message type"),
        "{:?}",
        g.fatal_notice()
    );
    // Banned: coming back from that address is refused.
    let mut again = RawClient::connect_from(&relay.ws_url, ip(66), None)
        .await
        .unwrap();
    assert!(again.closed_within(WAIT).await);

    // Oversized: above the WebSocket message limit.
    let mut big = RawClient::connect_from(&relay.ws_url, ip(67), None)
        .await
        .unwrap();
    big.handshake_browser(3).await.unwrap();
    let _ = big.send_bytes(vec![9u8; 2_000_000]).await;
    assert!(big.closed_within(WAIT).await);
    let (code, reason) = big.close_frame.clone().unwrap_or((0, String::new()));
    assert!(
        code == 1009 || reason.contains("too") || reason.contains("size"),
        "{code} {reason}"
    );

    // A valid frame kind with a lying size: the decoder's per-type cap.
    let mut lying = RawClient::connect_from(&relay.ws_url, ip(68), None)
        .await
        .unwrap();
    lying.handshake_browser(4).await.unwrap();
    let mut ping = Message::Ping(1).encode();
    ping.extend_from_slice(&[0; 100]);
    lying.send_bytes(ping).await.unwrap();
    assert!(lying.closed_within(WAIT).await);
    assert!(
        lying
            .fatal_notice()
            .unwrap()
            .contains("exceeds the limit of 9")
    );

    // Text frames are not part of the protocol.
    let mut text = RawClient::connect_from(&relay.ws_url, ip(69), None)
        .await
        .unwrap();
    text.send_text("hello?").await.unwrap();
    assert!(text.closed_within(WAIT).await);
    assert_eq!(text.close_frame.clone().map(|c| c.0), Some(1003));

    // Meanwhile the honest client keeps receiving blocks.
    let b = m.mine_and_submit().await.unwrap();
    assert!(honest.wait_tip(b.hash(), WAIT).await);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_handshake_times_out() {
    let relay = Relay::start(Relay::test_config(), true).await;
    let m = miner(&relay.ws_url, 1).await;
    let honest = NodeClient::browser(&relay.ws_url, 2).await.unwrap();
    let mut silent = RawClient::connect_from(&relay.ws_url, ip(70), None)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(
        silent.closed_within(Duration::from_secs(40)).await,
        "silent peer was never dropped"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "dropped before the handshake timeout"
    );
    assert!(
        silent
            .fatal_notice()
            .unwrap()
            .contains("handshake timed out")
    );
    let b = m.mine_and_submit().await.unwrap();
    assert!(honest.wait_tip(b.hash(), WAIT).await);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_is_refused_at_the_per_ip_limit() {
    let mut config = Relay::test_config();
    config.limits.max_per_ip = 4;
    let relay = Relay::start(config, true).await;
    let m = miner(&relay.ws_url, 1).await;
    let honest = NodeClient::browser(&relay.ws_url, 2).await.unwrap();
    assert!(honest.wait_connected(WAIT).await);
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..12 {
        match RawClient::connect_from(&relay.ws_url, ip(80), None).await {
            Ok(c) => open.push(c),
            Err(e) => {
                assert!(e.to_string().contains("429"), "unexpected refusal: {e}");
                refused += 1;
            }
        }
    }
    assert_eq!(open.len(), 4);
    assert_eq!(refused, 8);
    let status = relay.get("/api/status").await;
    assert!(status["connections_refused"].as_u64().unwrap() >= 8);
    let b = m.mine_and_submit().await.unwrap();
    assert!(honest.wait_tip(b.hash(), WAIT).await);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_the_message_rate_is_dropped() {
    let mut config = Relay::test_config();
    config.limits.messages_per_sec = 50;
    let relay = Relay::start(config, true).await;
    let mut fast = RawClient::connect_from(&relay.ws_url, ip(90), None)
        .await
        .unwrap();
    fast.handshake_browser(5).await.unwrap();
    // Bursts of 100 pings until the relay closes the connection: however slowly a busy
    // machine runs either side, the peer stays far above 50 messages per second.
    let deadline = std::time::Instant::now() + WAIT;
    let mut i = 0u64;
    'flood: while !fast.is_closed() && std::time::Instant::now() < deadline {
        for _ in 0..100 {
            i += 1;
            if fast.send(&Message::Ping(i)).await.is_err() {
                break 'flood;
            }
        }
        while let Some(_pong) = fast.recv_raw(Duration::from_millis(50)).await {}
    }
    assert!(fast.closed_within(WAIT).await);
    let (code, reason) = fast.close_frame.clone().unwrap_or_default();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("rate limit"), "{reason}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_dropped_not_buffered_forever() {
    let mut config = Relay::test_config();
    config.limits.max_write_buffer_bytes = 256 * 1024;
    config.limits.max_write_buffer_msgs = 10_000;
    config.limits.messages_per_sec = 100_000;
    let relay = Relay::start(config, true).await;
    let m = miner(&relay.ws_url, 1).await;
    let honest = NodeClient::browser(&relay.ws_url, 2).await.unwrap();
    assert!(honest.wait_connected(WAIT).await);
    // A block of many signed posts, so each copy the slow reader asks for is large.
    let big = common::big_block(&m, &honest).await;

    // It asks for the big block again and again and never reads.
    let mut slow = RawClient::connect_from(&relay.ws_url, ip(100), Some(4096))
        .await
        .unwrap();
    slow.handshake_browser(6).await.unwrap();
    let ask = Message::GetData(vec![InvItem::block(big.hash())]).encode();
    let mut sent = 0;
    for _ in 0..3_000 {
        if tokio::time::timeout(Duration::from_secs(2), slow.send_bytes(ask.clone()))
            .await
            .map(|r| r.is_ok())
            != Ok(true)
        {
            break;
        }
        sent += 1;
    }
    // The relay dropped it once its queue passed the limit, long before `sent` copies.
    let mut metrics = String::new();
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        metrics = relay.get_raw("/metrics").await.1;
        if line_value(&metrics, "tabcoin_slow_readers_dropped_total").is_some_and(|v| v >= 1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        line_value(&metrics, "tabcoin_slow_readers_dropped_total").is_some_and(|v| v >= 1.0),
        "slow reader not dropped after {sent} requests"
    );
    assert!(slow.closed_within(WAIT).await || slow.is_closed());
    // The honest client still gets blocks.
    let b = m.mine_and_submit().await.unwrap();
    assert!(honest.wait_tip(b.hash(), WAIT).await);
    relay.stop().await;
}

fn line_value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_and_refuses_bad_input_clearly() {
    let relay = Relay::start(Relay::test_config(), true).await;
    let m = miner(&relay.ws_url, 1).await;
    let b = m.mine_and_submit().await.unwrap();
    assert!(
        relay
            .wait_json("/api/status", WAIT, |s| s["height"] == 1)
            .await
    );
    let blocks = relay.get("/api/blocks?limit=5").await;
    assert_eq!(blocks["blocks"][0]["hash"], b.hash().to_string());
    let one = relay.get(&format!("/api/block/{}", b.hash())).await;
    assert_eq!(one["transactions"].as_array().unwrap().len(), 1);
    let txid = b.txs[0].txid();
    let tx = relay.get(&format!("/api/tx/{txid}")).await;
    assert_eq!(tx["status"], "confirmed");
    assert_eq!(relay.get_raw("/api/block/nothex").await.0, 400);
    assert_eq!(
        relay
            .get_raw(&format!("/api/block/{}", "00".repeat(32)))
            .await
            .0,
        404
    );
    // The browser is counted, never listed (its address is private).
    assert!(
        relay
            .wait_json("/api/peers", WAIT, |p| p["counts"]["browser"] == 1)
            .await
    );
    let peers = relay.get("/api/peers").await;
    assert!(peers["peers"].as_array().unwrap().is_empty(), "{peers}");
    assert_eq!(relay.get("/api/mempool").await["count"], 0);
    let (code, page) = relay.get_raw("/").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("<html") || page.contains("<!doctype"),
        "page: {}",
        &page[..page.len().min(100)]
    );
    let mut metrics = String::new();
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        metrics = relay.get_raw("/metrics").await.1;
        if line_value(&metrics, "tabcoin_height") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        line_value(&metrics, "tabcoin_height"),
        Some(1.0),
        "{metrics}"
    );
    relay.stop().await;
}
