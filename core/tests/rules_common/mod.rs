//! The chain every rule test starts from, and the helpers that build and judge its next
//! transactions and blocks (shared by `rules.rs` and `rules_adversary.rs`).

// Each test binary uses its own subset of these helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use tabcoin_core::chain::{Chain, ChainError};
use tabcoin_core::miner::mine;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, OutPoint, Payload, Transaction, TxIn, TxOut};
use tabcoin_core::sig::Signature;
use tabcoin_core::testkit::{block_with, extend_empty, next_time, wallet};
use tabcoin_core::units::{Amount, Height};
use tabcoin_core::utxo::UtxoView;
use tabcoin_core::validation::{BlockError, TxError, validate_tx};
use tabcoin_core::wallet::Wallet;

pub struct Setup {
    pub params: Params,
    pub chain: Chain,
    pub alice: Wallet,
    pub bob: Wallet,
}

/// Alice mined blocks 1..=4 on the test network (maturity 2): blocks 1..=2 are spendable
/// in block 5; 3 and 4 are not.
pub fn setup() -> Setup {
    setup_with(Params::test())
}

pub fn setup_with(params: Params) -> Setup {
    let alice = wallet(1, &params);
    let bob = wallet(2, &params);
    let mut chain = Chain::new(params.clone());
    extend_empty(&mut chain, 4, alice.public_key(), b"alice");
    Setup {
        params,
        chain,
        alice,
        bob,
    }
}

impl Setup {
    pub fn coinbase_of(&self, height: u64) -> OutPoint {
        let hash = self.chain.hash_at(Height(height)).unwrap();
        OutPoint {
            txid: self.chain.block(&hash).unwrap().txs[0].txid(),
            vout: 0,
        }
    }

    pub fn amount(&self, op: &OutPoint) -> Amount {
        self.chain.utxo().coin(op).unwrap().output.amount
    }

    /// Alice spends `inputs` to `outputs`, signed for this network.
    pub fn tx(&self, inputs: &[OutPoint], outputs: Vec<TxOut>, payload: Payload) -> Transaction {
        let mut tx = Transaction {
            inputs: inputs
                .iter()
                .map(|&prev| TxIn {
                    prev,
                    sig: Signature([0; 64]),
                })
                .collect(),
            outputs,
            payload,
        };
        let spent = self.spent(&tx);
        self.alice
            .sign_tx(&mut tx, &spent, &self.chain.genesis_hash());
        tx
    }

    /// The outputs `tx` spends (a missing coin counts as zero to Alice, so transactions
    /// spending nothing real can still be signed for the rules that reject them).
    pub fn spent(&self, tx: &Transaction) -> Vec<TxOut> {
        tx.inputs
            .iter()
            .map(|i| {
                self.chain.utxo().coin(&i.prev).map_or(
                    TxOut {
                        amount: Amount::ZERO,
                        key: self.alice.public_key(),
                    },
                    |c| c.output,
                )
            })
            .collect()
    }

    pub fn pay_bob(&self, amount: u64) -> TxOut {
        TxOut {
            amount: Amount::from_units(amount).unwrap(),
            key: self.bob.public_key(),
        }
    }

    pub fn validate(&self, tx: &Transaction) -> Result<Amount, TxError> {
        validate_tx(
            tx,
            self.chain.utxo(),
            self.chain.height().next(),
            &self.params,
            &self.chain.genesis_hash(),
        )
    }

    /// A valid template on the tip holding `txs`, before sealing.
    pub fn template(&self, txs: &[Transaction]) -> Block {
        block_with(&self.chain, txs, self.alice.public_key(), b"t")
    }

    /// Accepts `block` and returns the rule it broke, whether found by the stateless or
    /// the contextual stage.
    pub fn reject(&mut self, block: &Block) -> BlockError {
        let tip = self.chain.tip().hash;
        let now = next_time(&self.chain);
        let err = match self.chain.accept_block(block, now) {
            Err(ChainError::Block(e)) => e,
            Err(other) => panic!("unexpected {other}"),
            Ok(mut out) => {
                assert_eq!(out.invalidated.len(), 1, "block was accepted");
                out.invalidated.pop().unwrap().1
            }
        };
        assert_eq!(self.chain.tip().hash, tip, "tip moved");
        err
    }
}

pub fn reseal_no_merkle(block: Block) -> Block {
    mine(block).unwrap()
}
