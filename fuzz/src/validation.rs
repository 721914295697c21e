//! Validation targets against the fixture chain. The first input byte holds flags that
//! repair what random bytes almost never get right (parent, difficulty, merkle root, proof of
//! work, signatures), so the fuzzer reaches the contextual rules behind them; the rest is the
//! encoded object.

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::{Decode, Encode};
use tabcoin_core::mempool::{DEFAULT_MAX_BYTES, DEFAULT_MIN_FEE_RATE, Mempool};
use tabcoin_core::miner::{build_template, mine};
use tabcoin_core::primitives::{Block, Transaction};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::wire::Message;

use crate::{Fixture, fixture};

/// Flags of the first byte of a `validate_block` input.
pub mod block_flags {
    /// Put the block on the fixture's tip.
    pub const ON_TIP: u8 = 1;
    /// Use the difficulty the next block needs.
    pub const NEXT_BITS: u8 = 2;
    /// Sign every spending transaction with wallet 1's key.
    pub const SIGN: u8 = 4;
    /// Recompute the merkle root.
    pub const MERKLE: u8 = 8;
    /// Search a nonce that meets the target (only at the test network's limit: instant).
    pub const MINE: u8 = 16;
    /// Everything above: the object decides only the body and time.
    pub const ALL: u8 = 31;
}

/// Flags of the first byte of a `validate_tx` input.
pub mod tx_flags {
    /// Sign every input with wallet 1's key.
    pub const SIGN_MINER: u8 = 1;
    /// Sign every input with wallet 2's key.
    pub const SIGN_PAYEE: u8 = 2;
    /// Put the fixture's unconfirmed payment in the pool first.
    pub const POOL_FIRST: u8 = 4;
}

/// What a store holds after `changes` on top of the fixture, loaded back: must give `chain`'s
/// tip. This is what both hosts do on every restart.
fn reload_matches(f: &Fixture, changes: &ChangeSet, chain: &Chain) {
    let bytes = changes.encode();
    let decoded = ChangeSet::decode(&bytes).expect("a ChangeSet the chain made must decode");
    assert_eq!(&decoded, changes, "ChangeSet round trip changed it");
    let mut stored = f.stored.clone();
    stored.merge(decoded);
    let loaded = Chain::load(f.params.clone(), stored).expect("the chain's own writes must load");
    assert_eq!(loaded.tip().hash, chain.tip().hash, "reloaded tip differs");
    assert_eq!(loaded.utxo(), chain.utxo(), "reloaded UTXO set differs");
}

/// Every block the chain stores travels on the wire and comes back from the store.
fn stored_block_round_trips(block: &Block) {
    let bytes = block.encode();
    assert_eq!(
        Block::decode(&bytes).as_ref(),
        Ok(block),
        "block round trip"
    );
    let msg = Message::Block(block.clone()).encode();
    assert_eq!(
        Message::from_bytes(&msg),
        Ok(Message::Block(block.clone())),
        "an accepted block does not fit its wire message"
    );
}

pub fn validate_block(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(mut block) = Block::decode(rest) else {
        return;
    };
    let f = fixture();
    let mut chain = f.chain.clone();
    if flags & block_flags::ON_TIP != 0 {
        block.header.prev = chain.tip().hash;
    }
    if flags & block_flags::NEXT_BITS != 0 {
        let ctx = chain.next_block_context();
        block.header.bits = f.params.next_bits(ctx.height, ctx.time);
    }
    if flags & block_flags::SIGN != 0 {
        for tx in block.txs.iter_mut().filter(|t| !t.is_coinbase()) {
            crate::sign(f, &f.miner, tx);
        }
    }
    if flags & block_flags::MERKLE != 0 {
        block.header.merkle_root = block.compute_merkle_root();
    }
    if flags & block_flags::MINE != 0 && block.header.bits == f.params.pow_limit {
        block = mine(block).expect("test network bits are valid");
    }
    let hash = block.hash();
    let Ok(outcome) = chain.accept_block(&block, f.now) else {
        return;
    };
    if outcome.duplicate {
        return;
    }
    if chain.has_block(&hash) {
        stored_block_round_trips(&block);
    }
    if outcome.tip_changed() {
        assert_eq!(
            chain.tip().hash,
            hash,
            "a lone block moved the tip elsewhere"
        );
    }
    reload_matches(f, &outcome.changes, &chain);
}

pub fn validate_tx(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(mut tx) = Transaction::decode(rest) else {
        return;
    };
    let f = fixture();
    if flags & tx_flags::SIGN_MINER != 0 {
        crate::sign(f, &f.miner, &mut tx);
    }
    if flags & tx_flags::SIGN_PAYEE != 0 {
        crate::sign(f, &f.payee, &mut tx);
    }
    let mut chain = f.chain.clone();
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES, DEFAULT_MIN_FEE_RATE);
    if flags & tx_flags::POOL_FIRST != 0 {
        pool.add(f.unconfirmed.clone(), &chain)
            .expect("the fixture's payment is valid");
    }
    let Ok(txid) = pool.add(tx, &chain) else {
        return;
    };
    // What the pool accepts, a block accepts: mine the template and connect it.
    let template = build_template(&chain, &pool, f.miner.public_key(), f.now, b"fuzz");
    let block = mine(template.block).expect("test network bits are valid");
    assert!(
        block.txs.iter().any(|t| t.txid() == txid),
        "the template left out an accepted transaction"
    );
    let outcome = chain
        .accept_block(&block, f.now)
        .unwrap_or_else(|e| panic!("a template of pool transactions was refused: {e}"));
    assert!(
        outcome.invalidated.is_empty(),
        "a template of pool transactions was invalid: {:?}",
        outcome.invalidated
    );
    assert_eq!(
        chain.tip().hash,
        block.hash(),
        "the template did not become the tip"
    );
    stored_block_round_trips(&block);
    reload_matches(f, &outcome.changes, &chain);
}
