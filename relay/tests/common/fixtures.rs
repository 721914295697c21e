//! Test network, wallets, blocks, clock and handshake fields shared by every client.

use super::*;

/// The network every test speaks (start the relay with the same).
pub fn test_params() -> Params {
    Params::test()
}

/// The wallet of test participant `i` (seed = 32 bytes of `i`) on the test network.
pub fn wallet(i: u8) -> Wallet {
    tabcoin_core::testkit::wallet(i, &test_params())
}

/// A block of 60 signed posts (~30 KB) mined through `m` (whose key is wallet 1); returns it
/// once `honest` holds it. Mines 8 blocks first, so the posts spread over several unconfirmed
/// chains within the pool's 25-transaction ancestor limit (the wallet spends the largest coin).
#[allow(dead_code)] // not every test file uses it
pub async fn big_block(m: &NodeClient, honest: &NodeClient) -> Block {
    let wait = Duration::from_secs(30);
    for _ in 0..8 {
        m.mine_and_submit().await.expect("mine");
    }
    for i in 0..60 {
        let tx = m
            .with_node(|n| {
                wallet(1).post(
                    n.chain(),
                    n.mempool(),
                    &format!("post {i} {}", "x".repeat(280)),
                    2_000,
                )
            })
            .expect("the wallet can post");
        m.submit_tx(tx).await.expect("submit").expect("accepted");
    }
    let big = m.mine_and_submit().await.expect("mine");
    assert!(big.encoded_len() > 20_000);
    assert!(honest.wait_tip(big.hash(), wait).await);
    big
}

/// Wall-clock milliseconds since the epoch: the relay checks block times against its own
/// clock, so clients use the real one too.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64
}

/// The `/ws` URL of a server listening on `addr`.
pub fn ws_url(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

/// Chain work of the genesis block alone.
pub fn genesis_work(params: &Params) -> Work {
    Chain::new(params.clone()).tip().work
}

/// `n` empty test-network blocks on genesis paying `reward`, one block time apart from the
/// genesis time (valid against any clock after it). `extra` tells branches apart.
pub fn build_blocks(n: usize, reward: PublicKey, extra: &[u8]) -> Vec<Block> {
    let mut chain = Chain::new(test_params());
    tabcoin_core::testkit::extend_empty(&mut chain, n, reward, extra)
}

/// A protocol Hello as a node with identity `seed` would send it. `claimed_best` defaults
/// to the genesis block (hash, height 0, genesis work).
pub fn make_hello(
    params: &Params,
    seed: [u8; 32],
    kind: NodeKind,
    url: Option<String>,
    claimed_best: Option<(BlockHash, Height, Work)>,
    challenge: [u8; 32],
) -> Hello {
    let genesis = params.genesis_hash();
    let (best_hash, best_height, best_work) =
        claimed_best.unwrap_or_else(|| (genesis, Height::GENESIS, genesis_work(params)));
    let key = Keypair::from_seed(&seed);
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Hello {
        version: PROTOCOL_VERSION,
        features: 0,
        network: genesis,
        node_id: key.public_key(),
        kind,
        // A relay advertises `url` with a record signed by its own key.
        record: url.map(|u| NodeRecord::sign(&key, &genesis, u, now_s)),
        dialed: None,
        best_hash,
        best_height,
        best_work,
        challenge,
        agent: String::from("tabcoin-test-client"),
        kept_from: Default::default(),
        extra: Vec::new(),
    }
}

/// The Auth message proving identity `seed` on a connection where we sent `my_challenge`
/// and the peer (`their_id`) sent `their_challenge`: the proof binds both challenges and
/// both ids, so it is worthless on any other connection.
pub fn auth_for(
    params: &Params,
    seed: [u8; 32],
    my_challenge: &[u8; 32],
    their_challenge: &[u8; 32],
    their_id: &PublicKey,
    dialed: &str,
) -> Message {
    let key = Keypair::from_seed(&seed);
    let msg = auth_message(
        &params.genesis_hash(),
        my_challenge,
        their_challenge,
        &key.public_key(),
        their_id,
        dialed,
    );
    Message::Auth(key.sign(&msg.0))
}
