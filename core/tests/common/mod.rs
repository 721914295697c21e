//! What the simulator tests share: the small network most adversarial scenarios start
//! from, a raw peer connected to it, chains to sync, and readers of what the nodes did.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use tabcoin_core::chain::{BlockOutcome, Chain};
use tabcoin_core::mempool::Mempool;
use tabcoin_core::node::{Event, PeerId};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash, BlockHeader, Transaction, Txid};
use tabcoin_core::sim::Sim;
use tabcoin_core::store::{ChangeSet, MemStore, Store};
use tabcoin_core::testkit::{block_with, child_of, wallet};
use tabcoin_core::units::{Amount, Height, Work};
use tabcoin_core::wire::{InvId, InvItem, Message, NodeKind};

pub const MINUTE: u64 = 60_000;

// ---- networks ------------------------------------------------------------------------

/// Four relays that found each other and share a 5-block chain mined by relay 0 (relay `i`
/// pays wallet `i + 1`); a raw endpoint at index 4.
pub fn network() -> (Sim, usize) {
    let mut sim = Sim::new(Params::test());
    for i in 0..4 {
        let boot = if i == 0 { 1 } else { i - 1 };
        let mut c = Sim::config(NodeKind::Relay, i as u8 + 1, &[boot]);
        c.target_outbound = 2;
        c.mining_key = Some(wallet(i as u8 + 1, &sim.params).public_key());
        sim.add_node(c, ChangeSet::default());
    }
    sim.run_for(2 * MINUTE);
    for _ in 0..5 {
        sim.mine(0);
        assert!(sim.run_until_for(MINUTE, |s| s.converged()));
    }
    let raw = sim.add_raw();
    (sim, raw)
}

/// [`network`] with the raw endpoint connected to relay 0 from `addr` and through the
/// handshake with identity `seed`; with `auto_pong` it answers pings, so long scenarios
/// keep the connection. Returns the simulator, the raw endpoint and its connection.
pub fn network_with_peer(addr: &str, seed: u8, auto_pong: bool) -> (Sim, usize, PeerId) {
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, auto_pong);
    let p = handshaken(&mut sim, raw, 0, addr, seed);
    (sim, raw, p)
}

/// Connects the raw endpoint `raw` to node `node` from `addr` and completes the handshake
/// with identity `[seed; 32]`. Returns the connection.
pub fn handshaken(sim: &mut Sim, raw: usize, node: usize, addr: &str, seed: u8) -> PeerId {
    let p = sim.raw_connect(raw, node, addr);
    sim.raw_handshake(raw, p, [seed; 32]);
    p
}

/// [`handshaken`], with a hello that claims `work` of chain.
pub fn handshaken_claiming(
    sim: &mut Sim,
    raw: usize,
    node: usize,
    addr: &str,
    seed: u8,
    work: Work,
) -> PeerId {
    let p = sim.raw_connect(raw, node, addr);
    sim.raw_handshake_claiming(raw, p, [seed; 32], work);
    p
}

/// Honest nodes still agree and still make progress.
pub fn honest_still_converge(sim: &mut Sim) {
    let b = sim.mine(2);
    assert!(sim.run_until_for(MINUTE, |s| s.converged()
        && s.node(0).chain().tip().hash == b.hash()));
}

// ---- chains and blocks ---------------------------------------------------------------

/// `n` sealed blocks on genesis (each only its coinbase), built without a chain.
pub fn branch(params: &Params, n: usize, extra: &[u8]) -> Vec<Block> {
    let key = wallet(77, params).public_key();
    let mut parent = params.genesis_block();
    let mut out: Vec<Block> = Vec::with_capacity(n);
    for h in 0..n as u64 {
        let b = child_of(params, &parent, Height(h), key, extra);
        out.push(b.clone());
        parent = b;
    }
    out
}

/// A valid block on node `node`'s tip paying wallet `payee`, tagged `extra`.
pub fn next_block(sim: &Sim, node: usize, payee: u8, extra: &[u8]) -> Block {
    block_with(
        sim.node(node).chain(),
        &[],
        wallet(payee, &sim.params).public_key(),
        extra,
    )
}

pub fn headers_of(blocks: &[Block]) -> Vec<BlockHeader> {
    blocks.iter().map(|b| b.header).collect()
}

// ---- messages ------------------------------------------------------------------------

pub fn block_inv(hash: BlockHash) -> Message {
    Message::Inv(vec![InvItem::block(hash)])
}

pub fn tx_inv(txid: Txid) -> Message {
    Message::Inv(vec![InvItem::tx(txid)])
}

/// Whether `m` asks for `id` (a block hash or a txid, matched with its kind).
pub fn getdata_for(m: &Message, id: impl Into<InvId>) -> bool {
    let id = id.into();
    matches!(m, Message::GetData(items) if items.iter().any(|i| i.id() == id))
}

pub fn is_getheaders(m: &Message) -> bool {
    matches!(m, Message::GetHeaders { .. })
}

/// Messages `raw` received on `peer` since `seen` (which is advanced).
pub fn fresh(sim: &Sim, raw: usize, peer: PeerId, seen: &mut usize) -> Vec<Message> {
    let all = sim.raw_messages(raw, peer);
    let out = all[(*seen).min(all.len())..].to_vec();
    *seen = all.len();
    out
}

/// How many messages `raw` received on `peer` match `f`.
pub fn count<F: Fn(&Message) -> bool>(sim: &Sim, raw: usize, peer: PeerId, f: F) -> usize {
    sim.raw_messages(raw, peer).iter().filter(|m| f(m)).count()
}

// ---- what the nodes did --------------------------------------------------------------

/// Whether the node closed the raw endpoint's connection `peer`.
pub fn closed(sim: &Sim, raw: usize, peer: PeerId) -> bool {
    sim.raw(raw).closed.contains(&peer)
}

/// The reasons of every ban node `node` made.
pub fn bans(sim: &Sim, node: usize) -> Vec<String> {
    sim.sim_node(node)
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PeerBanned { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// The reason and resulting score of every penalty node `node` gave.
pub fn penalties(sim: &Sim, node: usize) -> Vec<(String, u32)> {
    sim.sim_node(node)
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PeerPenalised { reason, score, .. } => Some((reason.clone(), *score)),
            _ => None,
        })
        .collect()
}

/// A payment of 5,000 units from wallet 1 to wallet 2, built on node `node`'s chain and
/// mempool (fee rate 2,000).
pub fn small_payment(sim: &Sim, node: usize) -> Transaction {
    let n = sim.node(node);
    wallet(1, &sim.params)
        .pay(
            n.chain(),
            n.mempool(),
            wallet(2, &sim.params).public_key(),
            Amount::from_units(5_000).unwrap(),
            2_000,
            None,
        )
        .unwrap()
}

/// A block on `chain`'s tip whose coinbase pays wallet 1 and which, once wallet 1 has mature
/// coins, holds its payment of 1,000 units to wallet 2.
pub fn paying_block(chain: &Chain, tag: &[u8]) -> Block {
    let params = chain.params();
    let (w1, w2) = (wallet(1, params), wallet(2, params));
    let pool = Mempool::new(usize::MAX, 0);
    let txs: Vec<_> = w1
        .pay(
            chain,
            &pool,
            w2.public_key(),
            Amount::from_units(1_000).unwrap(),
            1_000,
            None,
        )
        .into_iter()
        .collect();
    block_with(chain, &txs, w1.public_key(), tag)
}

/// A fresh chain that accepted `blocks` in order.
pub fn replay(params: &Params, blocks: &[Block]) -> Chain {
    let mut c = Chain::new(params.clone());
    for b in blocks {
        c.accept_block(b, b.header.time).unwrap();
    }
    c
}

/// Answers every body the chain asked for in `need` from `store`; what the chain did with
/// them, merged.
pub fn answer_loads(chain: &mut Chain, store: &mut MemStore, need: &[BlockHash]) -> BlockOutcome {
    let mut next = BlockOutcome::default();
    for hash in need {
        let (block, undo) = store.load_block(hash).unwrap();
        let step = chain.provide(*hash, block, undo);
        next.changes.merge(step.changes);
        next.need.extend(step.need);
        next.disconnected.extend(step.disconnected);
        next.connected.extend(step.connected);
        next.invalidated.extend(step.invalidated);
        // A later step undid older blocks: theirs go first, as `BlockOutcome::returned` lists.
        next.returned.splice(0..0, step.returned);
    }
    next
}
