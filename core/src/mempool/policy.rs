//! Relay policy that is not consensus: what a transaction must cost and how far unconfirmed
//! chains may grow (docs/CONSENSUS.md §16).

use crate::units::Amount;

/// Most transactions in one unconfirmed ancestry, the transaction itself included.
pub const MAX_ANCESTORS: usize = 25;
/// Most encoded bytes in one unconfirmed ancestry, the transaction itself included.
pub const MAX_ANCESTOR_BYTES: usize = 101_000;
/// Most pool transactions descending from one pool transaction, itself included.
pub const MAX_DESCENDANTS: usize = 25;
/// Most encoded bytes of one pool transaction and its pool descendants.
pub const MAX_DESCENDANT_BYTES: usize = 101_000;

/// Encoded bytes of one input: a 36-byte outpoint and a 64-byte signature.
pub const INPUT_SIZE: usize = 100;
/// Encoded bytes of one output: an 8-byte amount and a 32-byte key.
pub const OUTPUT_SIZE: usize = 40;
/// The dust fee rate is this many times the pool's minimum fee rate.
pub const DUST_RATE_MULTIPLIER: u64 = 3;

/// The smallest output value a pool with minimum fee rate `min_fee_rate` (units per 1000
/// bytes) relays: what creating the output and later spending it costs at
/// `DUST_RATE_MULTIPLIER` times that rate, rounded up. Smaller outputs are dust: spending
/// them would cost more than they hold, so they would stay in every node's UTXO set forever.
pub fn dust_limit(min_fee_rate: u64) -> Amount {
    let rate = u128::from(min_fee_rate) * u128::from(DUST_RATE_MULTIPLIER);
    let units = (rate * (INPUT_SIZE + OUTPUT_SIZE) as u128).div_ceil(1000);
    u64::try_from(units)
        .ok()
        .and_then(Amount::from_units)
        .unwrap_or(Amount::MAX)
}

/// Transactions, bytes and fees of a set of pool transactions (an ancestry or a
/// descendant set, the transaction itself included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Package {
    pub count: usize,
    pub bytes: usize,
    /// Sum of the fees, in base units (each fee is below the money cap and a package holds
    /// at most `MAX_ANCESTORS` of them, so this cannot overflow).
    pub fee: u64,
}

impl Package {
    pub(super) fn one(fee: Amount, bytes: usize) -> Package {
        Package {
            count: 1,
            bytes,
            fee: fee.units(),
        }
    }

    pub(super) fn add(&mut self, other: Package) {
        self.count += other.count;
        self.bytes += other.bytes;
        self.fee += other.fee;
    }

    pub(super) fn sub(&mut self, other: Package) {
        self.count -= other.count;
        self.bytes -= other.bytes;
        self.fee -= other.fee;
    }

    /// Fee in base units per 1000 bytes.
    pub fn fee_rate(&self) -> u64 {
        (u128::from(self.fee) * 1000 / self.bytes.max(1) as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dust_limit_is_the_cost_of_an_output_and_its_spend_at_three_times_the_rate() {
        assert_eq!(dust_limit(1_000).units(), 420);
        assert_eq!(dust_limit(0).units(), 0);
        assert_eq!(dust_limit(1).units(), 1); // 0.42 rounds up
        assert_eq!(dust_limit(u64::MAX), Amount::MAX);
    }
}
