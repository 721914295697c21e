//! The set of unspent outputs, layered views over it, and per-block undo data.

mod set;

pub use set::UtxoSet;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::encode::{Decode, DecodeError, Encode, Reader, put_varint};
use crate::primitives::{Block, OutPoint, Transaction, TxOut, Txid};
use crate::units::{Amount, Height};

/// An unspent output and where it was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Coin {
    pub output: TxOut,
    pub height: Height,
    pub coinbase: bool,
}

impl Coin {
    /// The first block height whose transactions may spend this coin: a coinbase output
    /// waits `coinbase_maturity` blocks after the block that created it; any other output is
    /// spendable from its own block on.
    pub fn spendable_height(&self, params: &crate::params::Params) -> Height {
        if self.coinbase {
            Height(self.height.0.saturating_add(params.coinbase_maturity))
        } else {
            self.height
        }
    }
}

impl Encode for Coin {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.output.encode_to(out);
        put_varint(out, self.height.0);
        out.push(u8::from(self.coinbase));
    }
}

impl Decode for Coin {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Coin {
            output: TxOut::decode_from(r)?,
            height: Height(r.varint()?),
            coinbase: r.bool("coinbase flag")?,
        })
    }
}

/// Read access to unspent outputs.
pub trait UtxoView {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin>;
}

/// Changes layered over a base view. Validation works on an overlay and the base is only
/// touched when the whole step (a block, or a whole reorg) succeeded.
#[derive(Debug)]
pub struct UtxoOverlay<'a, V: UtxoView + ?Sized> {
    base: &'a V,
    changes: BTreeMap<OutPoint, Option<Coin>>,
}

impl<'a, V: UtxoView + ?Sized> UtxoOverlay<'a, V> {
    pub fn new(base: &'a V) -> Self {
        UtxoOverlay {
            base,
            changes: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, outpoint: OutPoint, coin: Coin) {
        self.changes.insert(outpoint, Some(coin));
    }

    /// Removes and returns the coin, or `None` if it is not unspent in this view.
    pub fn spend(&mut self, outpoint: &OutPoint) -> Option<Coin> {
        let coin = self.coin(outpoint)?;
        self.changes.insert(*outpoint, None);
        Some(coin)
    }

    pub fn into_changes(self) -> BTreeMap<OutPoint, Option<Coin>> {
        self.changes
    }

    pub fn changes(&self) -> &BTreeMap<OutPoint, Option<Coin>> {
        &self.changes
    }
}

impl<V: UtxoView + ?Sized> UtxoView for UtxoOverlay<'_, V> {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        match self.changes.get(outpoint) {
            Some(c) => *c,
            None => self.base.coin(outpoint),
        }
    }
}

/// What connecting a block spent, in spend order, so it can be disconnected exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockUndo {
    pub spent: Vec<(OutPoint, Coin)>,
}

impl Encode for BlockUndo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_varint(out, self.spent.len() as u64);
        for (op, c) in &self.spent {
            op.encode_to(out);
            c.encode_to(out);
        }
    }
}

impl Decode for BlockUndo {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let spent = r.list(
            "undo entries",
            crate::primitives::MAX_TX_INPUTS * 256,
            |r| Ok((OutPoint::decode_from(r)?, Coin::decode_from(r)?)),
        )?;
        Ok(BlockUndo { spent })
    }
}

/// Applies one transaction whose inputs were already checked: spends its inputs (recording
/// them in `undo`) and adds its outputs. Fails only on a missing input, which validation
/// rules out; the overlay is then partly changed and must be dropped.
pub fn apply_tx<V: UtxoView + ?Sized>(
    view: &mut UtxoOverlay<'_, V>,
    tx: &Transaction,
    txid: Txid,
    height: Height,
    undo: &mut BlockUndo,
) -> Result<(), OutPoint> {
    for input in &tx.inputs {
        let coin = view.spend(&input.prev).ok_or(input.prev)?;
        undo.spent.push((input.prev, coin));
    }
    for (vout, output) in tx.outputs.iter().enumerate() {
        view.add(
            OutPoint {
                txid,
                vout: vout as u32,
            },
            Coin {
                output: *output,
                height,
                coinbase: tx.is_coinbase(),
            },
        );
    }
    Ok(())
}

/// Applies a whole block without checking it (replays of blocks already validated).
pub fn apply_block<V: UtxoView + ?Sized>(
    view: &mut UtxoOverlay<'_, V>,
    block: &Block,
    height: Height,
) -> Result<BlockUndo, OutPoint> {
    let mut undo = BlockUndo::default();
    for tx in &block.txs {
        apply_tx(view, tx, tx.txid(), height, &mut undo)?;
    }
    Ok(undo)
}

/// Reverses [`apply_block`]: transaction by transaction from the last, removes its outputs
/// and restores what it spent, so outputs created and spent inside the block stay gone.
pub fn undo_block<V: UtxoView + ?Sized>(
    view: &mut UtxoOverlay<'_, V>,
    block: &Block,
    undo: &BlockUndo,
) {
    let mut spent = undo.spent.len();
    for tx in block.txs.iter().rev() {
        let txid = tx.txid();
        for vout in 0..tx.outputs.len() {
            view.changes.insert(
                OutPoint {
                    txid,
                    vout: vout as u32,
                },
                None,
            );
        }
        let first = spent.saturating_sub(tx.inputs.len());
        for (op, coin) in undo.spent[first..spent].iter().rev() {
            view.add(*op, *coin);
        }
        spent = first;
    }
}

/// Sum of amounts, `None` past the cap.
pub fn sum_outputs(outputs: &[TxOut]) -> Option<Amount> {
    Amount::checked_sum(outputs.iter().map(|o| o.amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::tests::arb_txid;
    use crate::sig::PublicKey;
    use proptest::prelude::*;

    fn arb_coin() -> impl Strategy<Value = Coin> {
        (
            0..=crate::units::MAX_MONEY,
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(|(a, k, h, coinbase)| Coin {
                output: TxOut {
                    amount: Amount::from_units(a).unwrap(),
                    key: PublicKey(k),
                },
                height: Height(h),
                coinbase,
            })
    }

    proptest! {
        #[test]
        fn coin_and_undo_round_trip(
            entries in proptest::collection::vec((arb_txid(), any::<u32>(), arb_coin()), 0..5)
        ) {
            let undo = BlockUndo {
                spent: entries.iter().map(|(t, v, c)| (OutPoint { txid: *t, vout: *v }, *c)).collect(),
            };
            let bytes = undo.encode();
            prop_assert_eq!(BlockUndo::decode(&bytes).unwrap(), undo);
            for (_, _, c) in &entries {
                prop_assert_eq!(Coin::decode(&c.encode()).unwrap(), *c);
            }
        }
    }

    #[test]
    fn overlay_shadows_base_and_only_applies_on_request() {
        let op = |n: u8| OutPoint {
            txid: Txid::from_bytes([n; 32]),
            vout: 0,
        };
        let coin = Coin {
            output: TxOut {
                amount: Amount::from_units(5).unwrap(),
                key: PublicKey([1; 32]),
            },
            height: Height(1),
            coinbase: false,
        };
        let mut base = UtxoSet::new();
        base.insert(op(1), coin);
        let mut ov = UtxoOverlay::new(&base);
        assert_eq!(ov.spend(&op(1)), Some(coin));
        assert_eq!(ov.spend(&op(1)), None);
        ov.add(op(2), coin);
        assert_eq!(ov.coin(&op(2)), Some(coin));
        let changes = ov.into_changes();
        assert_eq!(base.len(), 1);
        base.apply(&changes);
        assert_eq!(base.coin(&op(1)), None);
        assert_eq!(base.coin(&op(2)), Some(coin));
    }
}
