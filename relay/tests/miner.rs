//! The relay's native miner keeps mining after one of its blocks is rejected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Relay, now_ms, wallet};
use tabcoin_relay::MiningConfig;

/// On the test network a native miner finds blocks far faster than one per second, and each
/// block's time must be above the median of the last 11: the chain's clock runs ahead of
/// the wall clock until a block's time passes the drift limit (`max_future_drift` ahead of
/// now) and the node rejects the miner's own block. The miner must then get new work and
/// carry on once the wall clock allows, instead of waiting for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mining_goes_on_after_the_node_rejects_a_mined_block() {
    let drift = common::test_params().max_future_drift;
    let mut config = Relay::test_config();
    config.mining = Some(MiningConfig {
        threads: 1,
        address: wallet(1).public_key(),
    });
    let relay = Relay::start(config, false).await;
    // The chain's time reaches the drift limit: from here on some mined blocks are rejected.
    let at_limit = relay
        .wait_json("/api/status", Duration::from_secs(120), |s| {
            s["time"].as_u64().unwrap() + 3 >= now_ms() / 1000 + drift
        })
        .await;
    assert!(
        at_limit,
        "the chain never ran ahead: {}",
        relay.get("/api/status").await
    );
    let height = relay.get("/api/status").await["height"].as_u64().unwrap();
    // Rejections happen within a second there; mining must still go on well past it.
    let went_on = relay
        .wait_json("/api/status", Duration::from_secs(90), |s| {
            s["height"].as_u64().unwrap() >= height + 40
        })
        .await;
    assert!(
        went_on,
        "mining stopped at the drift limit: height {height}, now {}",
        relay.get("/api/status").await
    );
    relay.stop().await;
}
