//! Property tests of the chain state: reorgs of depth 1, 6 and 100 equal a replay from
//! genesis; total unspent value equals subsidy issued; a block invalid in the middle of a
//! reorg leaves the state byte-identical.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use proptest::prelude::*;
use tabcoin_core::chain::{Chain, ChainError};
use tabcoin_core::mempool::Mempool;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, Transaction};
use tabcoin_core::store::{MemStore, Store};
use tabcoin_core::testkit::{block_with, child_of, seal, wallet};
use tabcoin_core::units::Amount;
use tabcoin_core::wallet::Wallet;

struct World {
    params: Params,
    wallets: Vec<Wallet>,
}

impl World {
    fn new() -> Self {
        let params = Params::test();
        let wallets = (1..=4).map(|i| wallet(i, &params)).collect();
        World { params, wallets }
    }

    /// A few payments between wallets that are valid on the current tip of `chain`.
    fn payments(&self, chain: &Chain, choices: &[(u8, u8, u16)]) -> Vec<Transaction> {
        let mut pool = Mempool::new(usize::MAX, 0);
        let mut txs = Vec::new();
        for &(from, to, amount) in choices {
            let from = &self.wallets[from as usize % self.wallets.len()];
            let to = self.wallets[to as usize % self.wallets.len()].public_key();
            let amount = Amount::from_units(u64::from(amount) * 1_000 + 1).unwrap();
            if let Ok(tx) = from.pay(chain, &pool, to, amount, 1_000, None) {
                if pool.add(tx.clone(), chain).is_ok() {
                    txs.push(tx);
                }
            }
        }
        txs
    }

    /// Mines `n` blocks on `chain`, each with payments picked from `choices`, and returns them.
    fn grow(
        &self,
        chain: &mut Chain,
        n: usize,
        choices: &[(u8, u8, u16)],
        tag: &[u8],
    ) -> Vec<Block> {
        let mut blocks = Vec::new();
        for i in 0..n {
            let miner = self.wallets[i % self.wallets.len()].public_key();
            let picks: Vec<_> = choices
                .iter()
                .copied()
                .skip(i % 3)
                .step_by(2)
                .take(3)
                .collect();
            let txs = self.payments(chain, &picks);
            let block = block_with(chain, &txs, miner, tag);
            let out = chain.accept_block(&block, block.header.time).unwrap();
            assert!(out.invalidated.is_empty());
            blocks.push(block);
        }
        blocks
    }
}

/// A chain that received only `blocks` (in order) starting from genesis.
fn replay(params: &Params, blocks: &[Block]) -> Chain {
    let mut c = Chain::new(params.clone());
    for b in blocks {
        c.accept_block(b, b.header.time).unwrap();
    }
    c
}

fn active_blocks(chain: &Chain) -> Vec<Block> {
    chain.active_chain()[1..]
        .iter()
        .map(|h| chain.block(h).unwrap().clone())
        .collect()
}

fn check_reorg(depth: usize, base: usize, choices: Vec<(u8, u8, u16)>) {
    let w = World::new();
    let mut a = Chain::new(w.params.clone());
    w.grow(&mut a, base, &choices, b"common");
    // Branch B starts from a copy at the fork point and grows one block longer.
    let mut b = a.clone();
    w.grow(&mut a, depth, &choices, b"side-a");
    let old_tip = a.tip().hash;
    let branch = w.grow(&mut b, depth + 1, &choices[choices.len() / 2..], b"side-b");
    let mut disconnected = 0;
    for blk in &branch {
        let out = a.accept_block(blk, blk.header.time).unwrap();
        disconnected += out.disconnected.len();
    }
    assert_eq!(disconnected, depth, "reorg depth");
    assert_ne!(a.tip().hash, old_tip);
    assert_eq!(a.tip().hash, b.tip().hash);
    let replayed = replay(&w.params, &active_blocks(&a));
    assert_eq!(a.utxo().digest(), replayed.utxo().digest());
    assert_eq!(a.utxo(), replayed.utxo());
    assert_eq!(
        a.utxo().total_value(),
        a.issued(),
        "unspent value equals subsidy issued"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn reorg_depth_1_equals_replay(choices in proptest::collection::vec((0u8..4, 0u8..4, 1u16..5000), 6..12)) {
        check_reorg(1, 6, choices);
    }

    #[test]
    fn reorg_depth_6_equals_replay(choices in proptest::collection::vec((0u8..4, 0u8..4, 1u16..5000), 6..12)) {
        check_reorg(6, 5, choices);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2, ..ProptestConfig::default() })]

    #[test]
    fn reorg_depth_100_equals_replay(choices in proptest::collection::vec((0u8..4, 0u8..4, 1u16..5000), 6..12)) {
        check_reorg(100, 4, choices);
    }

    /// A competing branch with more work whose middle block has a bad signature: nothing
    /// about the state changes (UTXO set, undo data, tip, active chain).
    #[test]
    fn invalid_block_mid_reorg_leaves_state_identical(choices in proptest::collection::vec((0u8..4, 0u8..4, 1u16..5000), 6..12), bad_at in 1usize..5) {
        let w = World::new();
        let mut a = Chain::new(w.params.clone());
        w.grow(&mut a, 4, &choices, b"common");
        let mut b = a.clone();
        w.grow(&mut a, 6, &choices, b"side-a");
        // Branch B: good blocks, then a block whose payment carries a broken signature.
        let mut branch = w.grow(&mut b, bad_at, &choices[1..], b"side-b");
        let payer = &w.wallets[0];
        let tx = payer
            .pay(&b, &Mempool::new(usize::MAX, 0), w.wallets[1].public_key(), Amount::from_units(5_000).unwrap(), 1_000, None)
            .unwrap();
        let mut bad = block_with(&b, &[tx], w.wallets[2].public_key(), b"bad");
        bad.txs[1].inputs[0].sig.0[5] ^= 1;
        let bad = seal(bad);
        let bad_hash = bad.hash();
        branch.push(bad);
        // Descendants of the bad block give its branch more work than A.
        let mut height = tabcoin_core::units::Height(b.height().0 + 1);
        for i in 0..8u8 {
            let blk = child_of(&w.params, branch.last().unwrap(), height, w.wallets[3].public_key(), &[i]);
            height = height.next();
            branch.push(blk);
        }

        let before_utxo = a.utxo().clone();
        let before_tip = a.tip().hash;
        let before_active = a.active_chain().to_vec();
        let before_undo: Vec<_> = before_active[1..].iter().map(|h| a.undo_data(h).unwrap().clone()).collect();
        let mut invalidated = Vec::new();
        for blk in &branch {
            match a.accept_block(blk, blk.header.time + 1_000_000) {
                Ok(out) => invalidated.extend(out.invalidated),
                // Once the bad block is known invalid its child is refused, and the
                // grandchildren are orphans.
                Err(e) => prop_assert!(
                    matches!(e, ChainError::KnownInvalid { .. } | ChainError::UnknownParent { .. }),
                    "{e}"
                ),
            }
        }
        prop_assert_eq!(invalidated.len(), 1);
        prop_assert_eq!(invalidated[0].0, bad_hash);
        let expected = tabcoin_core::validation::BlockError::Tx {
            index: 1,
            error: tabcoin_core::validation::TxError::BadSignature { input: 0 },
        };
        prop_assert_eq!(&invalidated[0].1, &expected);
        // The good prefix of branch B has less work than A (bad_at < 6 + 1): A stays.
        prop_assert_eq!(a.tip().hash, before_tip);
        prop_assert_eq!(a.active_chain(), &before_active[..]);
        prop_assert_eq!(a.utxo().digest(), before_utxo.digest());
        let after_undo: Vec<_> = before_active[1..].iter().map(|h| a.undo_data(h).unwrap().clone()).collect();
        prop_assert_eq!(after_undo, before_undo);
    }
}

#[test]
fn reload_from_store_resumes_same_state() {
    let w = World::new();
    let mut a = Chain::new(w.params.clone());
    let mut store = MemStore::new();
    let choices: Vec<(u8, u8, u16)> = (0..10)
        .map(|i| (i % 4, (i + 1) % 4, 100 + u16::from(i)))
        .collect();
    for i in 0..12 {
        let miner = w.wallets[i % 4].public_key();
        let txs = w.payments(&a, &choices[i % 5..i % 5 + 3]);
        let blk = block_with(&a, &txs, miner, b"x");
        let out = a.accept_block(&blk, blk.header.time).unwrap();
        store.persist(&out.changes).unwrap();
    }
    // A competing branch forces one reorg through the store too.
    let mut b = Chain::load(w.params.clone(), store.load().unwrap()).unwrap();
    assert_eq!(b.tip().hash, a.tip().hash);
    assert_eq!(b.utxo(), a.utxo());
    let fork = a.hash_at(tabcoin_core::units::Height(9)).unwrap();
    let mut side = replay(&w.params, &active_blocks(&a)[..9]);
    assert_eq!(side.tip().hash, fork);
    let branch = w.grow(&mut side, 5, &choices, b"y");
    for blk in &branch {
        let mut out = b.accept_block(blk, blk.header.time).unwrap();
        // The loaded chain holds no bodies: it reads those of the reorg from the store.
        loop {
            store.persist(&out.changes).unwrap();
            let Some(hash) = out.need.pop() else { break };
            let (block, undo) = store.load_block(&hash).unwrap();
            let need = out.need;
            out = b.provide(hash, block, undo);
            out.need.extend(need);
        }
    }
    let c = Chain::load(w.params.clone(), store.load().unwrap()).unwrap();
    assert_eq!(c.tip().hash, side.tip().hash);
    assert_eq!(c.utxo(), side.utxo());
    assert_eq!(c.active_chain(), side.active_chain());
    assert!(store.loads > 0, "the reorg read undo data from the store");
}

// ---- Valid means decodable (issue 9, rule 1) ----

/// Characters a hostile post may try: plain, right-to-left, bidi controls, invisible ones and
/// 4-byte ones (so texts cross the 320-byte limit).
const POST_CHARS: &[char] = &[
    'a',
    ' ',
    '\n',
    '\u{5d0}',
    '\u{202e}',
    '\u{2066}',
    '\u{200b}',
    '\u{a0}',
    '\u{3164}',
    '\u{1f600}',
    '\u{0}',
];

fn arb_count() -> impl Strategy<Value = usize> {
    use tabcoin_core::primitives::MAX_TX_OUTPUTS;
    prop_oneof![0usize..4, MAX_TX_OUTPUTS - 1..=MAX_TX_OUTPUTS + 1]
}

/// Checks that a block the chain accepted round-trips through every codec a node uses: the
/// block encoding, the wire message, the ChangeSet a host stores, and a reload from a store.
fn check_round_trips(
    params: &Params,
    block: &Block,
    changes: &tabcoin_core::store::ChangeSet,
    store: &mut MemStore,
) {
    use tabcoin_core::encode::{Decode, Encode};
    use tabcoin_core::wire::{MAX_MESSAGE_SIZE, Message};
    let bytes = block.encode();
    assert_eq!(&Block::decode(&bytes).unwrap(), block, "Block::decode");
    let msg = Message::Block(block.clone()).encode();
    assert!(msg.len() <= MAX_MESSAGE_SIZE);
    assert_eq!(
        Message::from_bytes(&msg).unwrap(),
        Message::Block(block.clone()),
        "wire codec"
    );
    let cs = changes.encode();
    assert_eq!(
        &tabcoin_core::store::ChangeSet::decode(&cs).unwrap(),
        changes,
        "ChangeSet codec"
    );
    store.persist(changes).unwrap();
    let loaded = tabcoin_core::store::ChangeSet::decode(&store.load().unwrap().encode()).unwrap();
    Chain::load(params.clone(), loaded).expect("a stored valid chain loads");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every block `Chain` accepts round-trips through `Block::decode`, the wire codec and
    /// `ChangeSet` encode/decode, whatever a miner puts in it: coinbase outputs around the
    /// decode limit, long coinbase data, a payment with that many outputs, hostile post text.
    #[test]
    fn every_accepted_block_round_trips_through_every_codec(
        attempts in proptest::collection::vec(
            (arb_count(), 0usize..=66, proptest::option::of((arb_count(), proptest::collection::vec(proptest::sample::select(POST_CHARS), 0..100)))),
            1..4,
        )
    ) {
        use tabcoin_core::primitives::{Payload, Post, TxIn, TxOut};
        use tabcoin_core::sig::Signature;
        use tabcoin_core::utxo::UtxoView;
        // No transaction size limit: only the decode limits stand between a miner and an
        // undecodable block.
        let params = Params { max_tx_size: usize::MAX, ..Params::test() };
        let alice = wallet(1, &params);
        let mut chain = Chain::new(params.clone());
        let mut store = MemStore::new();
        for _ in 0..3 {
            let b = block_with(&chain, &[], alice.public_key(), b"");
            let out = chain.accept_block(&b, b.header.time).unwrap();
            check_round_trips(&params, &b, &out.changes, &mut store);
        }
        for (i, (cb_outputs, extra, payment)) in attempts.into_iter().enumerate() {
            let mut blk = block_with(&chain, &[], alice.public_key(), b"");
            let one = Amount::from_units(1).unwrap();
            blk.txs[0].outputs = vec![TxOut { amount: one, key: alice.public_key() }; cb_outputs];
            if let Payload::Coinbase { extra: e, .. } = &mut blk.txs[0].payload {
                *e = vec![7; extra];
            }
            if let Some((outputs, text)) = payment {
                // Spend the coinbase of block 1 + i (mature), to `outputs` outputs, with a post.
                let hash = chain.hash_at(tabcoin_core::units::Height(1 + i as u64)).unwrap();
                let prev = tabcoin_core::primitives::OutPoint { txid: chain.block(&hash).unwrap().txs[0].txid(), vout: 0 };
                let Some(coin) = chain.utxo().coin(&prev) else { continue };
                let mut tx = Transaction {
                    inputs: vec![TxIn { prev, sig: Signature([0; 64]) }],
                    outputs: vec![TxOut { amount: one, key: alice.public_key() }; outputs],
                    payload: Payload::Post(Post { author: alice.public_key(), text: text.into_iter().collect() }),
                };
                alice.sign_tx(&mut tx, &[coin.output], &chain.genesis_hash());
                blk.txs.push(tx);
            }
            let blk = seal(blk);
            let decodes = {
                use tabcoin_core::encode::{Decode, Encode};
                Block::decode(&blk.encode()).is_ok()
            };
            match chain.accept_block(&blk, blk.header.time) {
                Ok(out) if out.invalidated.is_empty() => {
                    prop_assert!(decodes, "the chain accepted a block no node can decode");
                    check_round_trips(&params, &blk, &out.changes, &mut store);
                }
                _ => {}
            }
        }
    }
}

/// A block at the size limit fits a wire message on both networks.
#[test]
fn the_largest_valid_block_fits_a_wire_message() {
    for params in [Params::main(), Params::test()] {
        // One type byte, then the block.
        assert!(params.max_block_size < tabcoin_core::wire::MAX_MESSAGE_SIZE);
    }
}
