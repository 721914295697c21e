#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The per-peer message rate limit (`--messages-per-sec`) must not cut a sync: the blocks a
//! relay asked a peer for arrive as fast as the peer can send them, many more per second than
//! the limit, and they are bounded by the relay's own download window instead. A relay that
//! counted them closed its source mid-sync (close 1008 "rate limit") and synced on only after a
//! reconnect — every 2 × the limit blocks.

mod common;

use std::time::Duration;

use common::{RawClient, Relay, build_blocks, wallet};
use tabcoin_core::encode::Encode;
use tabcoin_core::wire::{InvId, Message};

const WAIT: Duration = Duration::from_secs(60);
/// Ten times the burst the limit below allows (twice the rate).
const BLOCKS: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocks_a_relay_asked_for_are_not_cut_by_its_message_rate_limit() {
    let mut config = Relay::test_config();
    config.limits.messages_per_sec = 20;
    let relay = Relay::start(config, false).await;
    let blocks = build_blocks(BLOCKS, wallet(6).public_key(), b"rate");
    let mut raw = RawClient::connect(&relay.ws_url).await.unwrap();
    raw.handshake_browser(6).await.unwrap();
    let headers: Vec<_> = blocks.iter().map(|b| b.header).collect();
    raw.send(&Message::Headers(headers)).await.unwrap();
    // Serve every getdata at once, each block its own message, until all are sent.
    let mut sent = 0;
    while sent < BLOCKS {
        let Some(Message::GetData(items)) = raw
            .wait_for(WAIT, |m| matches!(m, Message::GetData(_)))
            .await
        else {
            panic!(
                "no getdata after {sent} blocks (closed: {:?})",
                raw.close_frame
            );
        };
        for item in items {
            let InvId::Block(hash) = item.id() else {
                continue;
            };
            let b = blocks
                .iter()
                .find(|b| b.hash() == hash)
                .expect("one of ours");
            raw.send_bytes(Message::Block(b.clone()).encode())
                .await
                .unwrap();
            sent += 1;
        }
    }
    assert!(
        relay
            .wait_json("/api/status", WAIT, |v| v["height"] == BLOCKS as u64)
            .await,
        "the relay synced the {BLOCKS} blocks"
    );
    assert!(
        !raw.is_closed(),
        "the relay closed its source: {:?}",
        raw.close_frame
    );
    relay.stop().await;
}

/// What the rate limit no longer counts is still bounded: blocks nobody asked for are
/// offences, and a peer that floods them is banned after a few.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unasked_blocks_is_banned_not_rate_limited() {
    let mut config = Relay::test_config();
    config.limits.messages_per_sec = 20;
    let relay = Relay::start(config, false).await;
    let blocks = build_blocks(200, wallet(7).public_key(), b"flood");
    let mut raw = RawClient::connect(&relay.ws_url).await.unwrap();
    raw.handshake_browser(7).await.unwrap();
    for b in &blocks {
        if raw
            .send_bytes(Message::Block(b.clone()).encode())
            .await
            .is_err()
        {
            break;
        }
    }
    assert!(raw.closed_within(WAIT).await, "the flooder was not closed");
    let (code, reason) = raw.close_frame.clone().unwrap_or_default();
    assert!(reason.contains("unsolicited block"), "{code} {reason}");
    // Five offences of 20 points ban: the relay took at most a handful of the 200.
    let status = relay.get("/api/status").await;
    assert_eq!(status["height"], 0, "no unasked block was connected");
    relay.stop().await;
}
