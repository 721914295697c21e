//! The relay's native miner keeps mining after one of its blocks is rejected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Relay, now_ms, wallet};
use tabcoin_relay::MiningConfig;

/// On the test network a native miner finds blocks far faster than one per second, and each
/// block's time must be above the median of the last 11. The node makes no template while
/// the tip's median time past has caught up with its clock (CONSENSUS §12), so the chain's
/// time never runs past the drift limit (`max_future_drift` ahead of now), where the node
/// would reject the miner's own blocks; mining goes on at the clock's pace instead of
/// stalling. (Before that rule, the chain ran ahead until the node rejected a block, and the
/// miner had to recover from it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mining_keeps_pace_with_the_clock_and_never_outruns_the_drift_limit() {
    let drift = common::test_params().max_future_drift;
    let mut config = Relay::test_config();
    config.mining = Some(MiningConfig {
        threads: 1,
        address: wallet(1).public_key(),
    });
    let relay = Relay::start(config, false).await;
    let mut ahead = None;
    let mut check = |s: &serde_json::Value| {
        let time = s["time"].as_u64().unwrap();
        // The clock is read after the status was made: it can only be later.
        let now_s = now_ms() / 1000;
        if time > now_s + drift && ahead.is_none() {
            ahead = Some(s.clone());
        }
        s["height"].as_u64().unwrap()
    };
    // Well past the first 11 blocks (the median window) and many clock seconds of mining.
    let went_on = relay
        .wait_json("/api/status", Duration::from_secs(120), |s| check(s) >= 60)
        .await;
    assert!(
        went_on,
        "mining stopped: {}",
        relay.get("/api/status").await
    );
    assert!(
        ahead.is_none(),
        "the chain's time ran past the drift limit: {ahead:?}"
    );
    relay.stop().await;
}
