#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The relay writes what the node persists after it has queued the drain's messages
//! (`node_task.rs`, `Ctx::drain`), so a new block reaches peers before its coins are stored.
//! A read of the store in the same drain must still see those writes: here a relay that
//! keeps no body in memory (`body_cache_bytes` 0) is sent two blocks and, in the same
//! breath, asked for the first back. Every ask must be answered with the block, read from the store, never
//! with `notfound`.

mod common;

use std::time::Duration;

use common::{RawClient, Relay, test_params, wallet};
use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::primitives::{Block, TxOut};
use tabcoin_core::sig::PublicKey;
use tabcoin_core::testkit::{block_with, seal};
use tabcoin_core::units::Amount;
use tabcoin_core::wire::{InvItem, Message};

const WAIT: Duration = Duration::from_secs(60);
const ROUNDS: usize = 40;

/// `n` blocks whose coinbases pay their subsidy in 2,000 outputs (~80 KB each): slow enough
/// to validate and connect that the messages sent right after one are waiting when the
/// relay's node task is done with it.
fn fat_blocks(n: usize, key: PublicKey) -> Vec<Block> {
    let mut chain = Chain::new(test_params());
    (0..n)
        .map(|_| {
            let mut b = block_with(&chain, &[], key, b"deferred");
            let total = b.txs[0].outputs[0].amount.units();
            let each = Amount::from_units(total / 2000).unwrap();
            b.txs[0].outputs = vec![TxOut { amount: each, key }; 2000];
            let b = seal(b);
            chain.accept_block(&b, b.header.time).unwrap();
            b
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_asked_for_in_the_drain_that_stored_it_is_read_back_from_the_store() {
    let mut config = Relay::test_config();
    config.body_cache_bytes = 0;
    let relay = Relay::start(config, false).await;
    let blocks = fat_blocks(ROUNDS, wallet(5).public_key());
    let mut raw = RawClient::connect(&relay.ws_url).await.unwrap();
    raw.handshake_browser(5).await.unwrap();
    let (mut read_back, mut not_found) = (0, 0);
    for pair in blocks.chunks(2) {
        let (first, second) = (&pair[0], &pair[1]);
        let hash = first.hash();
        raw.send(&Message::Headers(vec![first.header, second.header]))
            .await
            .unwrap();
        let second_hash = second.hash();
        raw.wait_for(WAIT, |m| {
            matches!(m, Message::GetData(items) if items.contains(&InvItem::block(second_hash)))
        })
        .await
        .expect("the relay asks for the announced blocks");
        // Both blocks and a request for the first, back to back: the relay's node task mostly
        // takes all three in one drain (it reads what is waiting before it writes). The first
        // block is no longer the tip once the second connects, so a relay without a body
        // cache must read it from its store, written in that same drain.
        let burst = [
            Message::Block(first.clone()).encode(),
            Message::Block(second.clone()).encode(),
            Message::GetData(vec![InvItem::block(hash)]).encode(),
        ];
        for m in burst {
            raw.send_bytes(m).await.unwrap();
        }
        match raw
            .wait_for(WAIT, |m| {
                matches!(m, Message::Block(x) if x.hash() == hash)
                    || matches!(m, Message::NotFound(items) if items.contains(&InvItem::block(hash)))
            })
            .await
            .expect("an answer to getdata")
        {
            Message::Block(_) => read_back += 1,
            _ => not_found += 1,
        }
    }
    assert_eq!(
        (read_back, not_found),
        (ROUNDS / 2, 0),
        "blocks read back from the store, notfound answers"
    );
    let status = relay.get("/api/status").await;
    assert_eq!(status["height"], ROUNDS as u64);
    relay.stop().await;
}
