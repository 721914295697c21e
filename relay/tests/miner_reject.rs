//! The relay's native miner keeps mining after the node rejects one of its blocks.
//!
//! Its own test binary: it arms the process-wide miner hook (`miner::test_hooks`, feature
//! `test-hooks`, enabled only for the tests), which must not reach other tests' miners.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Relay, now_ms, wallet};
use tabcoin_relay::MiningConfig;
use tabcoin_relay::miner::test_hooks;

/// The first template the miner takes up is stamped past the future-drift limit, so the
/// block it finds (with a valid proof of work) is refused by the node (`TimeTooNew`, the
/// rule every peer applies). The node then gives the miner a fresh template and mining goes
/// on: further blocks are accepted, none of them the refused one. Before the recovery the
/// miner waited for a template that never came and the chain stayed at height 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_miner_goes_on_after_the_node_refuses_its_block() {
    let drift = common::test_params().max_future_drift;
    test_hooks::skew_next_template(drift + 600);
    let mut config = Relay::test_config();
    config.mining = Some(MiningConfig {
        threads: 1,
        address: wallet(1).public_key(),
    });
    let relay = Relay::start(config, false).await;

    // The refused block is found first (the hook marks it when the miner hands it over).
    let deadline = Instant::now() + Duration::from_secs(60);
    while test_hooks::skewed_found() == 0 {
        assert!(
            Instant::now() < deadline,
            "the miner found no block for the skewed template"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(test_hooks::skewed_found(), 1);

    let mut refused_in_chain = None;
    let went_on = relay
        .wait_json("/api/status", Duration::from_secs(90), |s| {
            let time = s["time"].as_u64().unwrap();
            if time > now_ms() / 1000 + drift && refused_in_chain.is_none() {
                refused_in_chain = Some(s.clone());
            }
            s["height"].as_u64().unwrap() >= 3
        })
        .await;
    assert!(
        went_on,
        "mining stopped after the refused block: {}",
        relay.get("/api/status").await
    );
    assert!(
        refused_in_chain.is_none(),
        "the node accepted a block past the drift limit: {refused_in_chain:?}"
    );
    relay.stop().await;
}
