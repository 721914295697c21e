//! The fuzz targets of `tabcoin-core`, as plain functions of a byte string.
//!
//! Each `fuzz_targets/NAME.rs` is a one-line libFuzzer wrapper around [`NAME`] here, so the
//! same harness also runs without libFuzzer: `cargo test` in this crate replays every committed
//! corpus file through it, and the corpus generator (`examples/gen_corpus.rs`) builds its seeds
//! from the fixture below. A harness panics only when an invariant of the core breaks.

use std::sync::OnceLock;

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, Transaction, TxOut};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit;
use tabcoin_core::units::Amount;
use tabcoin_core::utxo::UtxoView;
use tabcoin_core::wallet::Wallet;

pub mod alloc_count;
mod decoders;
mod node_stream;
pub mod validation;

pub use decoders::{
    decode_block, decode_changeset, decode_header, decode_message, decode_node_records, decode_tx,
};
pub use node_stream::{Op, encode_ops, node_stream, stream_flags};
pub use validation::{validate_block, validate_tx};

/// The names of every target (one `fuzz_targets/NAME.rs` and one `corpus/NAME/` each).
pub const TARGETS: [&str; 9] = [
    "decode_header",
    "decode_tx",
    "decode_block",
    "decode_message",
    "decode_changeset",
    "decode_node_records",
    "validate_block",
    "validate_tx",
    "node_stream",
];

/// Signs every input of `tx` with `wallet` over the outputs it spends: found in the fixture
/// chain's UTXO set or among the outputs of its unconfirmed payment; an input spending
/// anything else is signed over a zero-value output of the wallet (so its signature fails).
pub fn sign(f: &Fixture, wallet: &Wallet, tx: &mut Transaction) {
    let unconfirmed = f.unconfirmed.txid();
    let spent: Vec<TxOut> = tx
        .inputs
        .iter()
        .map(|i| {
            if let Some(coin) = f.chain.utxo().coin(&i.prev) {
                return coin.output;
            }
            if i.prev.txid == unconfirmed
                && let Some(out) = f.unconfirmed.outputs.get(i.prev.vout as usize)
            {
                return *out;
            }
            TxOut {
                amount: Amount::ZERO,
                key: wallet.public_key(),
            }
        })
        .collect();
    wallet.sign_tx(tx, &spent, &f.params.genesis_hash());
}

/// A small test-network chain that the validation and node targets start from: eight blocks
/// mined by wallet 1 (coinbases of blocks 1..=6 are mature), block 8 holding a payment from
/// wallet 1 to wallet 2.
#[derive(Debug)]
pub struct Fixture {
    pub params: Params,
    pub chain: Chain,
    /// Everything a store would hold for `chain` (to start a node from).
    pub stored: ChangeSet,
    pub blocks: Vec<Block>,
    /// Wallet 1: mined every block; its coins are spendable.
    pub miner: Wallet,
    /// Wallet 2: paid in block 8.
    pub payee: Wallet,
    /// A valid transaction not yet in any block (wallet 1 pays wallet 2 again).
    pub unconfirmed: Transaction,
    /// Seconds: a clock a little past the tip, used as "now" by the validation targets.
    pub now: u64,
}

/// The shared fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    let params = Params::test();
    let miner = testkit::wallet(1, &params);
    let payee = testkit::wallet(2, &params);
    let mut chain = Chain::new(params.clone());
    let mut stored = ChangeSet::default();
    let mut blocks = Vec::new();
    for _ in 0..7 {
        let (block, outcome) = testkit::extend(&mut chain, &[], miner.public_key(), b"fuzz")
            .expect("an empty block on the tip is valid");
        stored.merge(outcome.changes);
        blocks.push(block);
    }
    let pool = Mempool::new(usize::MAX, 0);
    let pay = miner
        .pay(
            &chain,
            &pool,
            payee.public_key(),
            Amount::from_units(1_000_000).expect("small amount"),
            1_000,
            Some("hello fuzz"),
        )
        .expect("wallet 1 has mature coins");
    let (block, outcome) = testkit::extend(&mut chain, &[pay], miner.public_key(), b"fuzz")
        .expect("a valid payment block");
    stored.merge(outcome.changes);
    blocks.push(block);
    let unconfirmed = miner
        .pay(
            &chain,
            &pool,
            payee.public_key(),
            Amount::from_units(2_000_000).expect("small amount"),
            1_000,
            None,
        )
        .expect("wallet 1 still has mature coins");
    let now = testkit::next_time(&chain) + 600;
    Fixture {
        params,
        chain,
        stored,
        blocks,
        miner,
        payee,
        unconfirmed,
        now,
    }
}

/// The encoding of a value, for seeds.
pub fn bytes_of(v: &impl Encode) -> Vec<u8> {
    v.encode()
}
