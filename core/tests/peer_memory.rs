//! Heap bytes one peer can make the node hold, measured with a counting allocator: peers fill
//! their per-peer state through ordinary messages (announcing far more unknown transactions
//! than the known and waiting sets hold, and unknown blocks; never answering, so 100
//! requests are in flight and the ones that timed out are remembered) and the node's heap
//! growth per peer must stay within [`PEER_STATE_MAX_BYTES`], the bound the relay charges
//! per connection (`--max-memory`). The old ordered sets and queues measured 687 KB here.
//! `-- --nocapture` prints the figure. No timing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod counting_alloc;

mod common;

use common::MINUTE;
use tabcoin_core::encode::Encode;
use tabcoin_core::node::{PEER_STATE_MAX_BYTES, TX_REQUEST_TIMEOUT_MS};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{BlockHash, Txid};
use tabcoin_core::sim::Sim;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::wire::{InvItem, MAX_INV, Message, NodeKind};

/// Distinct, never-valid 32-byte ids: `tag` keeps the kinds apart; the id words differ in
/// every 64-bit word, as real hashes do.
fn id(tag: u8, peer: u32, i: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    for (w, chunk) in h.chunks_mut(8).enumerate() {
        let v = (u64::from(peer) << 32 | u64::from(i))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(w as u32 * 13);
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    h[31] = tag;
    h
}

#[test]
fn one_peers_state_stays_within_its_bound_in_bytes() {
    const PEERS: u32 = 8;
    let mut sim = Sim::new(Params::test());
    sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    sim.run_for(1_000);
    let raws: Vec<usize> = (0..PEERS)
        .map(|_| {
            let r = sim.add_raw();
            sim.set_auto_pong(r, true);
            r
        })
        .collect();
    let before = counting_alloc::live();
    let mut conns = Vec::new();
    for (k, &raw) in raws.iter().enumerate() {
        let addr = format!("10.{k}.0.1");
        let p = common::handshaken(&mut sim, raw, 0, &addr, 0x40 + k as u8);
        conns.push((raw, p));
    }
    // Each peer announces far more than any cap holds, in ordinary messages spread over
    // time (under the message rate), and never answers a request, so its requests time out
    // and are remembered too.
    let rounds = 3 * (TX_REQUEST_TIMEOUT_MS / 1_000) as u32;
    for round in 0..rounds {
        for (k, &(raw, p)) in conns.iter().enumerate() {
            let txs: Vec<InvItem> = (0..MAX_INV as u32)
                .map(|i| InvItem::tx(Txid::from_bytes(id(0xa1, k as u32, round * 10_000 + i))))
                .collect();
            sim.raw_send(raw, p, Message::Inv(txs).encode());
            let blocks: Vec<InvItem> = (0..8u32)
                .map(|i| InvItem::block(BlockHash::from_bytes(id(0xb2, k as u32, round * 10 + i))))
                .collect();
            sim.raw_send(raw, p, Message::Inv(blocks).encode());
        }
        sim.run_for(1_000);
    }
    sim.run_for(MINUTE / 2);
    let open = conns
        .iter()
        .filter(|&&(raw, p)| !common::closed(&sim, raw, p))
        .count();
    assert_eq!(
        open, PEERS as usize,
        "a peer was dropped; the bound is not exercised"
    );
    let grown = counting_alloc::live() - before;
    let per_peer = grown / PEERS as isize;
    println!(
        "peer state: {per_peer} heap bytes per peer filled to every cap (bound {PEER_STATE_MAX_BYTES})"
    );
    assert!(
        per_peer <= PEER_STATE_MAX_BYTES as isize,
        "{per_peer} heap bytes per peer > PEER_STATE_MAX_BYTES = {PEER_STATE_MAX_BYTES}"
    );
}
