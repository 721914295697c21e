//! Network parameters as data. The real network and a test network with trivial difficulty
//! and short maturity; tests and local demos must pick the test network explicitly.

use alloc::vec;
use alloc::vec::Vec;

use crate::hash::Hash256;
use crate::pow::{AsertAnchor, AsertParams};
use crate::primitives::{Block, BlockHash, BlockHeader, HEADER_VERSION, Payload, Transaction};
use crate::units::{Amount, COIN, CompactTarget, Height, Target};

/// Which network a node is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// The real network.
    Main,
    /// Trivial difficulty and short maturity: tests and local demos.
    Test,
}

/// Every constant a consensus rule reads. See `docs/CONSENSUS.md` for the reasoning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub network: Network,
    pub name: &'static str,
    /// Human-readable prefix of addresses (`tab` or `ttab`).
    pub address_prefix: &'static str,
    /// Seconds the difficulty rule aims for between blocks.
    pub target_block_time: i64,
    /// Seconds of schedule deviation that halve or double the difficulty (ASERT half-life).
    pub half_life: i64,
    /// Easiest target any block may have.
    pub pow_limit: CompactTarget,
    pub genesis_time: u64,
    /// When the network starts (seconds since the epoch, ≥ `genesis_time`): block 1 must be
    /// later, and the difficulty schedule expects block `h` at `launch_time + h·T`. Fixed
    /// at launch in the parameters, so no miner's timestamp can move the schedule.
    pub launch_time: u64,
    pub genesis_bits: CompactTarget,
    pub genesis_nonce: u64,
    pub genesis_message: &'static [u8],
    /// Blocks a coinbase output waits before it can be spent.
    pub coinbase_maturity: u64,
    pub initial_subsidy: Amount,
    /// Blocks between subsidy halvings.
    pub halving_interval: u64,
    /// Largest encoded block in bytes.
    pub max_block_size: usize,
    /// Most transactions (coinbase included) in one block.
    pub max_block_txs: usize,
    /// Largest encoded non-coinbase transaction in bytes.
    pub max_tx_size: usize,
    /// Seconds a block's time may be ahead of the validating node's clock.
    pub max_future_drift: u64,
    /// Blocks whose median time a new block must exceed.
    pub mtp_window: usize,
}

impl Params {
    pub fn for_network(network: Network) -> Params {
        match network {
            Network::Main => Params::main(),
            Network::Test => Params::test(),
        }
    }

    /// The real network: 30 s blocks; a genesis target at which one browser worker at about
    /// 2 MH/s finds a block in about half a minute; ASERT with a 10-minute half-life.
    pub fn main() -> Params {
        Params {
            network: Network::Main,
            name: "main",
            address_prefix: "tab",
            target_block_time: 30,
            half_life: 600,
            // Target 0x0fffff << 216 ≈ 2^236: at most about 2^20 hashes per block.
            pow_limit: CompactTarget(0x1e0f_ffff),
            genesis_time: 1_795_219_200, // 2026-11-21T00:00:00Z
            // Set to the announced start when the network launches (CONSENSUS.md §6.2).
            launch_time: 1_795_219_200,
            // Target 2^230: 2^26 ≈ 67 million expected hashes.
            genesis_bits: CompactTarget(0x1d40_0000),
            genesis_nonce: MAIN_GENESIS_NONCE,
            genesis_message: b"Tabcoin 2026-11-21: every tab a full node",
            coinbase_maturity: 100,
            initial_subsidy: Amount::from_units(50 * COIN).expect("50 coins is below the cap"),
            halving_interval: 2_100_000,
            max_block_size: 1_000_000,
            max_block_txs: 10_000,
            max_tx_size: 100_000,
            max_future_drift: 120,
            mtp_window: 11,
        }
    }

    /// The test network: about every other hash is a block, coinbases mature after 2 blocks
    /// and the subsidy halves every 150 blocks so schedules can be tested quickly. Its
    /// half-life is so long that difficulty stays at the limit however fast blocks come: tests
    /// and demos mine bursts of blocks (ASERT itself is exercised by the main parameters and
    /// the published vectors).
    pub fn test() -> Params {
        Params {
            network: Network::Test,
            name: "test",
            address_prefix: "ttab",
            half_life: 1_000_000_000,
            pow_limit: CompactTarget(0x207f_ffff),
            genesis_bits: CompactTarget(0x207f_ffff),
            genesis_nonce: TEST_GENESIS_NONCE,
            genesis_message: b"Tabcoin test network",
            coinbase_maturity: 2,
            halving_interval: 150,
            ..Params::main()
        }
    }

    pub fn pow_limit_target(&self) -> Target {
        self.pow_limit
            .to_target()
            .expect("network pow limits are valid compact targets")
    }

    pub fn asert(&self) -> AsertParams {
        AsertParams {
            target_block_time: self.target_block_time,
            half_life: self.half_life,
            pow_limit: self.pow_limit_target(),
        }
    }

    /// The difficulty anchor, fixed by the parameters: genesis (height 0) with the genesis
    /// bits, its "parent time" one block time before `launch_time`, so the schedule expects
    /// block `h` at `launch_time + h·T`. No block's timestamp moves it: a miner who stamps a
    /// block early only makes the next block harder.
    pub fn asert_anchor(&self) -> AsertAnchor {
        AsertAnchor {
            height: 0,
            parent_time: i64::try_from(self.launch_time)
                .unwrap_or(i64::MAX)
                .saturating_sub(self.target_block_time),
            bits: self.genesis_bits,
        }
    }

    /// What a block 1 must be later than: the launch time (never before genesis).
    pub fn genesis_median_time_past(&self) -> u64 {
        self.launch_time.max(self.genesis_time)
    }

    /// Bits required of the block after a tip at `parent_height` with `parent_time`.
    /// Block 1 carries the genesis bits; later blocks follow ASERT from the fixed anchor.
    pub fn next_bits(&self, parent_height: Height, parent_time: u64) -> CompactTarget {
        if parent_height.0 == 0 {
            return self.genesis_bits;
        }
        crate::pow::next_target(
            &self.asert(),
            &self.asert_anchor(),
            parent_height.0,
            i64::try_from(parent_time).unwrap_or(i64::MAX),
        )
    }

    /// New coins a block at `height` may create: halves every `halving_interval` blocks.
    pub fn subsidy(&self, height: Height) -> Amount {
        let halvings = height.0 / self.halving_interval;
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_units(self.initial_subsidy.units() >> halvings)
            .expect("a halved subsidy stays below the cap")
    }

    /// The genesis block: a coinbase with no outputs (nothing is spendable from genesis)
    /// carrying the network's message.
    pub fn genesis_block(&self) -> Block {
        let coinbase = Transaction {
            inputs: Vec::new(),
            outputs: Vec::new(),
            payload: Payload::Coinbase {
                height: Height::GENESIS,
                extra: self.genesis_message.to_vec(),
            },
        };
        let mut block = Block {
            header: BlockHeader {
                version: HEADER_VERSION,
                prev: BlockHash::ZERO,
                merkle_root: Hash256::ZERO,
                time: self.genesis_time,
                bits: self.genesis_bits,
                nonce: self.genesis_nonce,
            },
            txs: vec![coinbase],
        };
        block.header.merkle_root = block.compute_merkle_root();
        block
    }

    /// The genesis hash identifies the network: signatures and handshakes commit to it.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_block().hash()
    }

    /// Genesis hashes of every network this software knows, to name the network a foreign
    /// signature was made for.
    pub fn known_genesis_hashes() -> [(Network, BlockHash); 2] {
        [
            (Network::Main, Params::main().genesis_hash()),
            (Network::Test, Params::test().genesis_hash()),
        ]
    }
}

/// Found by `cargo run --release -p tabcoin-core --example mine_genesis`; a unit test checks it.
const MAIN_GENESIS_NONCE: u64 = 25_501_494;
const TEST_GENESIS_NONCE: u64 = 0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::MAX_MONEY;

    #[test]
    fn subsidy_schedule_halves_and_stays_under_cap() {
        let p = Params::main();
        assert_eq!(p.subsidy(Height(0)).units(), 50 * COIN);
        assert_eq!(p.subsidy(Height(2_099_999)).units(), 50 * COIN);
        assert_eq!(p.subsidy(Height(2_100_000)).units(), 25 * COIN);
        assert_eq!(p.subsidy(Height(u64::MAX)), Amount::ZERO);
        // Total issuance over all halvings stays below the supply cap.
        let mut total: u128 = 0;
        for era in 0..64u64 {
            total += u128::from(p.subsidy(Height(era * p.halving_interval)).units())
                * u128::from(p.halving_interval);
        }
        assert!(total <= u128::from(MAX_MONEY), "{total}");
    }

    #[test]
    fn networks_differ_and_test_is_explicit() {
        assert_ne!(Params::main().genesis_hash(), Params::test().genesis_hash());
        assert_eq!(Params::for_network(Network::Test).coinbase_maturity, 2);
        assert_eq!(Params::main().network, Network::Main);
    }

    #[test]
    fn genesis_meets_its_own_target() {
        for p in [Params::main(), Params::test()] {
            let g = p.genesis_block();
            crate::pow::check_proof_of_work(&g.hash(), g.header.bits, &p.pow_limit_target())
                .unwrap_or_else(|e| panic!("{} genesis: {e}", p.name));
        }
    }

    #[test]
    fn blocks_on_schedule_from_launch_carry_the_genesis_target() {
        for p in [Params::main(), Params::test()] {
            assert!(p.launch_time >= p.genesis_time);
            let t = |h: u64| p.launch_time + 30 * h;
            assert_eq!(p.next_bits(Height(0), p.genesis_time), p.genesis_bits);
            for h in 1..50 {
                assert_eq!(p.next_bits(Height(h), t(h)), p.genesis_bits, "{h}");
            }
        }
    }

    #[test]
    fn main_difficulty_follows_the_schedule_from_launch() {
        let p = Params::main();
        let t = |h: u64| p.launch_time + 30 * h;
        // One half-life behind schedule at height 21: the target doubles.
        let behind = p.next_bits(Height(21), t(21) + 600).to_target().unwrap();
        let start = p.genesis_bits.to_target().unwrap();
        assert!(behind > start);
        // One half-life ahead: it halves.
        let ahead = p.next_bits(Height(41), t(41) - 600).to_target().unwrap();
        assert!(ahead < start);
    }
}
