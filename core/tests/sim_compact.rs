//! Compact block relay (PROTOCOL §7.5) against a scripted relay: a browser that asked it for
//! pushes and speaks compact blocks rebuilds blocks from its pool, fetches only what it
//! lacks, falls back to the whole block when ids collide or the answer never comes, and
//! penalises a relay that sends malformed compact blocks or wrong transactions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{MINUTE, closed, count, penalties};
use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::node::PeerId;
use tabcoin_core::node::compact::{BLOCKTXN_TIMEOUT_MS, compact_of, short_id, short_id_key};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash, Transaction};
use tabcoin_core::sim::Sim;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit::{block_with, extend, wallet};
use tabcoin_core::units::Amount;
use tabcoin_core::wire::{FEATURE_COMPACT, InvId, Message, NodeKind};

struct World {
    sim: Sim,
    browser: usize,
    raw: usize,
    p: PeerId,
    /// A block of two payments `txs[0..2]` on the browser's tip; `txs[2]` is outside it.
    block: Block,
    txs: Vec<Transaction>,
}

/// A browser on a funded chain whose only relay is a raw endpoint speaking compact blocks.
fn world() -> World {
    let params = Params::test();
    let payer = wallet(1, &params);
    let mut chain = Chain::new(params.clone());
    let mut stored = ChangeSet::default();
    for _ in 0..4 {
        let (_, o) = extend(&mut chain, &[], payer.public_key(), b"fund").unwrap();
        stored.merge(o.changes);
    }
    let mut pool = Mempool::new(usize::MAX, 0);
    let to = wallet(2, &params).public_key();
    let txs: Vec<Transaction> = (0..3)
        .map(|k| {
            let tx = payer
                .pay(
                    &chain,
                    &pool,
                    to,
                    Amount::from_units(10_000 + k).unwrap(),
                    1_000,
                    None,
                )
                .unwrap();
            pool.add(tx.clone(), &chain).unwrap();
            tx
        })
        .collect();
    let block = block_with(&chain, &txs[..2], payer.public_key(), b"compact");

    let mut sim = Sim::new(params);
    let raw = sim.add_raw();
    let url = "ws://compact.example/ws";
    sim.raw_listen(raw, url);
    sim.set_auto_pong(raw, true);
    let mut c = Sim::config(NodeKind::Browser, 0x61, &[]);
    c.bootstrap = vec![String::from(url)];
    let browser = sim.add_node(c, stored);
    assert!(sim.run_until_for(MINUTE, |s| !s.raw(raw).inbox.is_empty()));
    let p = *sim.raw(raw).inbox.keys().next().unwrap();
    let tip = sim.node(browser).chain().tip().clone();
    let mut hello = sim.raw_hello([0xc3; 32], tip.work);
    hello.best_hash = tip.hash;
    hello.best_height = tip.height;
    hello.kind = NodeKind::Relay;
    hello.features = FEATURE_COMPACT;
    let now_s = sim.now_ms / 1000;
    hello.record = Some(sim.signed_record([0xc3; 32], String::from(url), now_s));
    sim.raw_handshake_with(raw, p, [0xc3; 32], hello);
    sim.run_for(1_000);
    assert!(
        count(&sim, raw, p, |m| matches!(m, Message::SendBlocks)) > 0,
        "the browser did not ask for pushes"
    );
    World {
        sim,
        browser,
        raw,
        p,
        block,
        txs,
    }
}

impl World {
    fn submit(&mut self, k: usize) {
        self.sim.submit(self.browser, self.txs[k].clone());
        self.sim.run_for(500);
        assert!(
            self.sim
                .node(self.browser)
                .mempool()
                .contains(&self.txs[k].txid())
        );
    }

    fn send(&mut self, m: Message) {
        self.sim.raw_send(self.raw, self.p, m.encode());
        self.sim.run_for(1_000);
    }

    fn tip(&self) -> BlockHash {
        self.sim.node(self.browser).chain().tip().hash
    }

    fn asked_txn(&self) -> Vec<Vec<u32>> {
        self.sim
            .raw_messages(self.raw, self.p)
            .into_iter()
            .filter_map(|m| match m {
                Message::GetBlockTxn { indexes, .. } => Some(indexes),
                _ => None,
            })
            .collect()
    }

    fn asked_whole(&self) -> bool {
        let h = self.block.hash();
        count(
            &self.sim,
            self.raw,
            self.p,
            |m| matches!(m, Message::GetData(items) if items.iter().any(|i| i.id() == InvId::Block(h))),
        ) > 0
    }

    fn penalties(&self) -> Vec<(String, u32)> {
        penalties(&self.sim, self.browser)
    }
}

#[test]
fn a_compact_block_of_pooled_transactions_is_rebuilt_without_a_request() {
    let mut w = world();
    w.submit(0);
    w.submit(1);
    w.send(Message::CmpctBlock(compact_of(&w.block, 7)));
    assert_eq!(w.tip(), w.block.hash());
    assert!(w.asked_txn().is_empty());
    assert!(!w.asked_whole());
    assert!(w.penalties().is_empty(), "{:?}", w.penalties());
    assert_eq!(w.sim.node(w.browser).compact_counts(), (1, 0));
}

#[test]
fn only_the_missing_transaction_is_fetched() {
    let mut w = world();
    w.submit(1);
    w.send(Message::CmpctBlock(compact_of(&w.block, 7)));
    assert_eq!(w.asked_txn(), vec![vec![1]]);
    assert_ne!(w.tip(), w.block.hash());
    w.send(Message::BlockTxn {
        block: w.block.hash(),
        txs: vec![w.txs[0].clone()],
    });
    assert_eq!(w.tip(), w.block.hash());
    assert!(!w.asked_whole());
    assert!(w.penalties().is_empty(), "{:?}", w.penalties());
}

#[test]
fn withheld_transactions_fall_back_to_the_whole_block() {
    let mut w = world();
    w.send(Message::CmpctBlock(compact_of(&w.block, 7)));
    assert_eq!(w.asked_txn(), vec![vec![1, 2]]);
    // The relay never answers: after the timeout the whole block is asked for.
    w.sim.run_for(BLOCKTXN_TIMEOUT_MS - 2_000);
    assert!(!w.asked_whole());
    w.sim.run_for(3_000);
    assert!(w.asked_whole());
    w.send(Message::Block(w.block.clone()));
    assert_eq!(w.tip(), w.block.hash());
    assert!(w.penalties().is_empty(), "{:?}", w.penalties());
    assert_eq!(w.sim.node(w.browser).compact_counts(), (0, 1));
}

#[test]
fn wrong_transactions_in_blocktxn_are_penalised_and_the_whole_block_fetched() {
    let mut w = world();
    w.submit(1);
    w.send(Message::CmpctBlock(compact_of(&w.block, 7)));
    w.send(Message::BlockTxn {
        block: w.block.hash(),
        txs: vec![w.txs[2].clone()],
    });
    assert!(
        w.penalties()
            .iter()
            .any(|(r, _)| r.contains("wrong blocktxn")),
        "{:?}",
        w.penalties()
    );
    assert!(w.asked_whole());
    w.send(Message::Block(w.block.clone()));
    assert_eq!(w.tip(), w.block.hash());
    // An answer to nothing is penalised too: with the first, 100 points, a ban.
    w.send(Message::BlockTxn {
        block: w.block.hash(),
        txs: vec![],
    });
    let bans = common::bans(&w.sim, w.browser);
    assert!(
        bans.iter().any(|r| r.contains("wrong blocktxn")),
        "{bans:?}"
    );
    assert!(closed(&w.sim, w.raw, w.p));
}

#[test]
fn a_colliding_short_id_falls_back_to_the_whole_block_without_penalty() {
    let mut w = world();
    w.submit(1);
    w.submit(2);
    // The short id of the block's first payment is replaced by that of the pooled payment
    // outside the block, as a collision would make it: the rebuilt block's root is wrong.
    let mut cb = compact_of(&w.block, 7);
    cb.short_ids[0] = short_id(&short_id_key(&w.block.header, 7), &w.txs[2].txid());
    w.send(Message::CmpctBlock(cb));
    assert!(w.asked_txn().is_empty());
    assert!(w.asked_whole());
    assert_ne!(w.tip(), w.block.hash());
    w.send(Message::Block(w.block.clone()));
    assert_eq!(w.tip(), w.block.hash());
    assert!(w.penalties().is_empty(), "{:?}", w.penalties());
    assert!(!closed(&w.sim, w.raw, w.p));
}

#[test]
fn a_malformed_compact_block_costs_the_connection() {
    let mut w = world();
    let mut cb = compact_of(&w.block, 7);
    // No coinbase: every transaction by short id.
    cb.prefilled.clear();
    cb.short_ids.push(cb.short_ids[0]);
    w.send(Message::CmpctBlock(cb));
    assert!(closed(&w.sim, w.raw, w.p));
    assert_ne!(w.tip(), w.block.hash());
}

#[test]
fn a_relay_serves_getblocktxn_and_penalises_bad_indexes() {
    let (mut sim, raw) = common::network();
    let p = sim.raw_connect(raw, 0, "10.0.0.91");
    sim.set_auto_pong(raw, true);
    sim.raw_handshake(raw, p, [0xc4; 32]);
    let tip = sim.node(0).chain().tip().hash;
    sim.raw_send(
        raw,
        p,
        Message::GetBlockTxn {
            block: tip,
            indexes: vec![0],
        }
        .encode(),
    );
    sim.run_for(1_000);
    let served = count(
        &sim,
        raw,
        p,
        |m| matches!(m, Message::BlockTxn { block, txs } if *block == tip && txs.len() == 1),
    );
    assert_eq!(served, 1);
    for indexes in [vec![5], vec![0, 0]] {
        sim.raw_send(
            raw,
            p,
            Message::GetBlockTxn {
                block: tip,
                indexes,
            }
            .encode(),
        );
        sim.run_for(1_000);
    }
    let bad = penalties(&sim, 0)
        .iter()
        .filter(|(r, _)| r.contains("bad getblocktxn"))
        .count();
    assert_eq!(bad, 2);
}
