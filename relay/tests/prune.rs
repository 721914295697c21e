#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `--prune` on real sockets: a pruned relay keeps only its newest bodies (never fewer than
//! `DEFAULT_PRUNE_DEPTH`), says so in its `hello` and `/api/status`, serves recent blocks,
//! answers `notfound` for pruned ones without penalising the asker, restarts from its
//! pruned store, and a fresh relay linked to it and to a full relay syncs the whole chain.

mod common;

use std::time::Duration;

use common::{ClientOptions, NodeClient, RawClient, Relay, build_blocks, wallet};
use tabcoin_core::chain::DEFAULT_PRUNE_DEPTH;
use tabcoin_core::primitives::Block;
use tabcoin_core::units::Height;
use tabcoin_core::wire::{InvItem, Message};

const WAIT: Duration = Duration::from_secs(120);
const CHAIN: usize = DEFAULT_PRUNE_DEPTH as usize + 32;
/// The lowest height a relay pruned to a one-byte budget keeps at a tip of [`CHAIN`].
const KEPT_FROM: u64 = CHAIN as u64 + 1 - DEPTH;
const DEPTH: u64 = DEFAULT_PRUNE_DEPTH;

fn pruned_config(dir: &std::path::Path, peers: Vec<String>) -> tabcoin_relay::Config {
    let mut c = Relay::test_config();
    c.data_dir = Some(dir.to_path_buf());
    c.prune_bytes = Some(1);
    c.peers = peers;
    c
}

async fn wait_height(relay: &Relay, height: usize) -> bool {
    relay
        .wait_json("/api/status", WAIT, |v| v["height"] == height as u64)
        .await
}

/// Asks `relay` for `old` and `recent` on a fresh raw connection: the block comes for
/// `recent`, `notfound` for `old`, and the connection stays open.
async fn serves_recent_not_pruned(relay: &Relay, old: &Block, recent: &Block, seed: u8) {
    let mut raw = RawClient::connect(&relay.ws_url).await.unwrap();
    let hello = raw.handshake_browser(seed).await.unwrap();
    assert_eq!(hello.kept_from, Height(KEPT_FROM));
    raw.send(&Message::GetData(vec![
        InvItem::block(old.hash()),
        InvItem::block(recent.hash()),
    ]))
    .await
    .unwrap();
    let (mut got_block, mut got_notfound) = (false, false);
    while !(got_block && got_notfound) {
        let m = raw
            .wait_for(WAIT, |m| {
                matches!(m, Message::Block(_) | Message::NotFound(_))
            })
            .await
            .expect("an answer to getdata");
        match m {
            Message::Block(b) => {
                assert_eq!(b.hash(), recent.hash(), "only the kept block is served");
                got_block = true;
            }
            Message::NotFound(items) => {
                assert_eq!(items, vec![InvItem::block(old.hash())]);
                got_notfound = true;
            }
            _ => unreachable!(),
        }
    }
    // Asking for a pruned body is not misbehaviour.
    raw.send(&Message::Ping(7)).await.unwrap();
    assert!(
        raw.wait_for(WAIT, |m| matches!(m, Message::Pong(7)))
            .await
            .is_some()
    );
    assert!(!raw.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruned_relay_serves_recent_blocks_restarts_and_a_fresh_relay_syncs_past_it() {
    let blocks = build_blocks(CHAIN, wallet(3).public_key(), b"prune");
    let tip = blocks.last().unwrap().hash();
    // A full relay, fed the chain by a client.
    let full = Relay::start(Relay::test_config(), true).await;
    let feeder = NodeClient::connect(
        &full.ws_url,
        ClientOptions::browser(3).with_preload(blocks.clone()),
    )
    .await
    .unwrap();
    assert!(wait_height(&full, CHAIN).await, "the full relay synced");
    drop(feeder);

    // A pruned relay syncs from it and keeps only the newest bodies.
    let dir = tempfile::tempdir().unwrap();
    let pruned = Relay::start(pruned_config(dir.path(), vec![full.ws_url.clone()]), true).await;
    assert!(wait_height(&pruned, CHAIN).await, "the pruned relay synced");
    let status = pruned.get("/api/status").await;
    assert_eq!(status["tip"], tip.to_string());
    assert_eq!(status["prune"]["budget"], 1);
    assert_eq!(status["prune"]["depth"], DEPTH);
    assert_eq!(status["prune"]["kept_from"], KEPT_FROM);
    let kept_bytes = status["prune"]["kept_bytes"].as_u64().unwrap();
    let expected: usize = blocks[KEPT_FROM as usize - 1..]
        .iter()
        .map(tabcoin_core::encode::Encode::encoded_len)
        .sum();
    assert_eq!(kept_bytes, expected as u64);
    assert_eq!(
        full.get("/api/status").await["prune"]["budget"],
        serde_json::Value::Null
    );
    let (old, recent) = (&blocks[4], &blocks[CHAIN - 3]);
    serves_recent_not_pruned(&pruned, old, recent, 40).await;

    // A fresh relay that dials the pruned relay first syncs the whole chain from the pair.
    let mut fresh_config = Relay::test_config();
    fresh_config.peers = vec![pruned.ws_url.clone(), full.ws_url.clone()];
    let fresh = Relay::start(fresh_config, true).await;
    if !wait_height(&fresh, CHAIN).await {
        panic!(
            "the fresh relay synced: status {}, peers {}",
            fresh.get("/api/status").await,
            fresh.get("/api/peers").await
        );
    }
    assert_eq!(fresh.get("/api/status").await["tip"], tip.to_string());
    let (code, _) = fresh.get_raw(&format!("/api/block/{}", old.hash())).await;
    assert_eq!(code, 200, "the fresh relay has the old bodies");
    fresh.stop().await;

    // Restart from the pruned store: same tip and what it keeps, still serving.
    pruned.stop().await;
    let pruned = Relay::start(pruned_config(dir.path(), vec![]), true).await;
    let status = pruned.get("/api/status").await;
    assert_eq!(status["tip"], tip.to_string());
    assert_eq!(status["height"], CHAIN as u64);
    assert_eq!(status["prune"]["kept_from"], KEPT_FROM);
    assert_eq!(status["prune"]["kept_bytes"], kept_bytes);
    serves_recent_not_pruned(&pruned, old, recent, 41).await;
    pruned.stop().await;
    full.stop().await;
}
