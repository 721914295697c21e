//! Block templates and the proof-of-work search.
//!
//! A [`MinerJob`] hashes with a precomputed midstate: the header's first 64 bytes (version,
//! parent, most of the merkle root) are one SHA-256 block that does not change while the
//! nonce does, so each nonce costs two compressions (the header's tail block, then the
//! second SHA-256) instead of three. Workers take disjoint [`NonceRange`]s and call
//! [`MinerJob::step`] in short chunks so they stay responsive.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use sha2::compress256;
use sha2::digest::generic_array::GenericArray;

use crate::chain::Chain;
use crate::hash::Hash256;
use crate::mempool::Mempool;
use crate::primitives::{
    Block, BlockHeader, HEADER_SIZE, HEADER_VERSION, Payload, Transaction, TxOut,
};
use crate::sig::PublicKey;
use crate::units::{Amount, Height, TargetError};

/// Bytes kept free in a template for the header and coinbase.
const COINBASE_RESERVE: usize = 1_000;

/// A block ready to mine, with what it pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTemplate {
    pub block: Block,
    pub height: Height,
    pub fees: Amount,
    pub reward: Amount,
}

/// Builds a template on the current tip paying subsidy and fees to `reward_key`. `now` is
/// the host's clock in seconds; the time is raised past the median time past if needed.
pub fn build_template(
    chain: &Chain,
    mempool: &Mempool,
    reward_key: PublicKey,
    now: u64,
    extra: &[u8],
) -> BlockTemplate {
    let params = chain.params();
    let ctx = chain.next_block_context();
    let height = ctx.height.next();
    let entries = mempool.select(
        params.max_block_size.saturating_sub(COINBASE_RESERVE),
        params.max_block_txs.saturating_sub(1),
    );
    let fees = Amount::checked_sum(entries.iter().map(|e| e.fee))
        .expect("pool fees are each below the cap and the pool is bounded");
    let reward = params
        .subsidy(height)
        .checked_add(fees)
        .unwrap_or(Amount::MAX);
    let extra_len = extra.len().min(crate::primitives::MAX_COINBASE_EXTRA);
    let coinbase = Transaction {
        inputs: Vec::new(),
        outputs: vec![TxOut {
            amount: reward,
            key: reward_key,
        }],
        payload: Payload::Coinbase {
            height,
            extra: extra[..extra_len].to_vec(),
        },
    };
    let mut txs = Vec::with_capacity(entries.len() + 1);
    txs.push(coinbase);
    txs.extend(entries.into_iter().map(|e| e.tx.clone()));
    let mut block = Block {
        header: BlockHeader {
            version: HEADER_VERSION,
            prev: chain.tip().hash,
            merkle_root: Hash256::ZERO,
            time: now.max(ctx.median_time_past + 1),
            bits: params.next_bits(ctx.height, ctx.time),
            nonce: 0,
        },
        txs,
    };
    block.header.merkle_root = block.compute_merkle_root();
    BlockTemplate {
        block,
        height,
        fees,
        reward,
    }
}

/// A half-open range of nonces `[start, end)`; `end == None` means up to and including
/// `u64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonceRange {
    pub start: u64,
    pub end: Option<u64>,
}

impl NonceRange {
    pub const ALL: NonceRange = NonceRange {
        start: 0,
        end: None,
    };

    /// Slice `worker` of `workers` equal slices of the whole nonce space. Slices are
    /// disjoint and together cover every nonce.
    pub fn slice(worker: u32, workers: u32) -> NonceRange {
        let workers = u128::from(workers.max(1));
        let worker = u128::from(worker).min(workers - 1);
        let span = (1u128 << 64) / workers;
        let start = (worker * span) as u64;
        let end = if worker == workers - 1 {
            None
        } else {
            Some(((worker + 1) * span) as u64)
        };
        NonceRange { start, end }
    }
}

/// What one [`MinerJob::step`] ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// This header (with its nonce) meets the target.
    Found(BlockHeader),
    /// Nothing yet; call again.
    Continue,
    /// Every nonce in the range was tried.
    Exhausted,
}

/// The template's bits do not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinerError(pub TargetError);

impl fmt::Display for MinerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template bits: {}", self.0)
    }
}

impl core::error::Error for MinerError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.0)
    }
}

const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A resumable nonce search over one header.
#[derive(Clone, Debug)]
pub struct MinerJob {
    header: BlockHeader,
    midstate: [u32; 8],
    /// The header's last 24 bytes plus SHA-256 padding: the second message block.
    tail: [u8; 64],
    target: [u8; 32],
    next: u64,
    end: Option<u64>,
    done: bool,
    hashes: u64,
}

/// Offset of the nonce inside the tail block.
const NONCE_AT: usize = 80 - 64;

impl MinerJob {
    pub fn new(header: BlockHeader, range: NonceRange) -> Result<MinerJob, MinerError> {
        let target = header.bits.to_target().map_err(MinerError)?;
        let bytes = header.to_bytes();
        let mut midstate = SHA256_IV;
        compress256(&mut midstate, &[*GenericArray::from_slice(&bytes[..64])]);
        let mut tail = [0u8; 64];
        tail[..HEADER_SIZE - 64].copy_from_slice(&bytes[64..]);
        tail[HEADER_SIZE - 64] = 0x80;
        tail[56..].copy_from_slice(&((HEADER_SIZE as u64) * 8).to_be_bytes());
        Ok(MinerJob {
            header,
            midstate,
            tail,
            target: target.to_be_bytes(),
            next: range.start,
            end: range.end,
            done: range.end == Some(range.start),
            hashes: 0,
        })
    }

    /// Hashes tried so far.
    pub fn hashes(&self) -> u64 {
        self.hashes
    }

    /// The next nonce to try.
    pub fn next_nonce(&self) -> u64 {
        self.next
    }

    pub fn header(&self) -> &BlockHeader {
        &self.header
    }

    /// Tries up to `max_nonces` nonces.
    pub fn step(&mut self, max_nonces: u64) -> Step {
        let mut block2 = self.tail;
        for _ in 0..max_nonces {
            if self.done {
                return Step::Exhausted;
            }
            let nonce = self.next;
            block2[NONCE_AT..NONCE_AT + 8].copy_from_slice(&nonce.to_le_bytes());
            let hash = midstate_hash(&self.midstate, &block2);
            self.hashes += 1;
            match nonce.checked_add(1) {
                Some(n) if Some(n) != self.end => self.next = n,
                _ => self.done = true,
            }
            if hash <= self.target {
                let mut found = self.header;
                found.nonce = nonce;
                return Step::Found(found);
            }
        }
        if self.done {
            Step::Exhausted
        } else {
            Step::Continue
        }
    }
}

/// SHA-256d of a header given the midstate of its first 64 bytes and its padded tail block.
pub fn midstate_hash(midstate: &[u32; 8], tail: &[u8; 64]) -> [u8; 32] {
    let mut state = *midstate;
    compress256(&mut state, &[*GenericArray::from_slice(tail)]);
    let mut second = [0u8; 64];
    for (chunk, word) in second.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    second[32] = 0x80;
    second[56..].copy_from_slice(&256u64.to_be_bytes());
    let mut out_state = SHA256_IV;
    compress256(&mut out_state, &[*GenericArray::from_slice(&second)]);
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(out_state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Mines `template` to completion on this thread (tests, demos, and the test network).
pub fn mine(mut template: Block) -> Result<Block, MinerError> {
    let mut job = MinerJob::new(template.header, NonceRange::ALL)?;
    loop {
        match job.step(1 << 16) {
            Step::Found(h) => {
                template.header = h;
                return Ok(template);
            }
            Step::Continue => {}
            Step::Exhausted => {
                // 2^64 nonces without a block: bump the time and start over.
                template.header.time += 1;
                job = MinerJob::new(template.header, NonceRange::ALL)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::BlockHash;
    use crate::units::CompactTarget;
    use proptest::prelude::*;

    fn header(bits: u32) -> BlockHeader {
        BlockHeader {
            version: 1,
            prev: BlockHash::from_hash(crate::hash::sha256d(b"p")),
            merkle_root: crate::hash::sha256d(b"m"),
            time: 1_795_219_200,
            bits: CompactTarget(bits),
            nonce: 0,
        }
    }

    proptest! {
        #[test]
        fn midstate_hash_equals_full_sha256d(nonce: u64, time: u64, seed: [u8; 32]) {
            let mut h = header(0x207f_ffff);
            h.nonce = nonce;
            h.time = time;
            h.prev = BlockHash::from_bytes(seed);
            let job = MinerJob::new(h, NonceRange::ALL).unwrap();
            let mut tail = job.tail;
            tail[NONCE_AT..NONCE_AT + 8].copy_from_slice(&nonce.to_le_bytes());
            prop_assert_eq!(midstate_hash(&job.midstate, &tail), *h.hash().as_bytes());
        }

        #[test]
        fn slices_are_disjoint_and_cover(workers in 1u32..64) {
            let mut expect = 0u64;
            for w in 0..workers {
                let s = NonceRange::slice(w, workers);
                prop_assert_eq!(s.start, expect);
                match s.end {
                    Some(e) => { prop_assert!(e > s.start); expect = e; }
                    None => prop_assert_eq!(w, workers - 1),
                }
            }
        }
    }

    #[test]
    fn found_header_meets_target_and_chunking_is_resumable() {
        // About 1 in 256 hashes meets this target.
        let h = header(0x2000_ffff);
        let mut one = MinerJob::new(h, NonceRange::ALL).unwrap();
        let Step::Found(a) = one.step(1 << 20) else {
            panic!("no block in 2^20 tries")
        };
        let target = CompactTarget(0x2000_ffff).to_target().unwrap();
        assert!(target.is_met_by(a.hash().as_hash()));
        let mut chunked = MinerJob::new(h, NonceRange::ALL).unwrap();
        let b = loop {
            match chunked.step(7) {
                Step::Found(b) => break b,
                Step::Continue => {}
                Step::Exhausted => panic!("exhausted"),
            }
        };
        assert_eq!(a, b);
        assert_eq!(one.hashes(), chunked.hashes());
    }

    #[test]
    fn a_range_is_exhausted_exactly() {
        // A target nothing meets: every nonce of the range is tried once.
        let mut h = header(0x0300_0001);
        h.bits = CompactTarget(0x0300_0001);
        let mut job = MinerJob::new(
            h,
            NonceRange {
                start: u64::MAX - 9,
                end: None,
            },
        )
        .unwrap();
        assert_eq!(job.step(100), Step::Exhausted);
        assert_eq!(job.hashes(), 10);
        let mut job = MinerJob::new(
            h,
            NonceRange {
                start: 5,
                end: Some(8),
            },
        )
        .unwrap();
        assert_eq!(job.step(2), Step::Continue);
        assert_eq!(job.step(2), Step::Exhausted);
        assert_eq!(job.hashes(), 3);
    }

    /// A template whose bits do not decode is a typed error like every other in the core: it
    /// implements `core::error::Error` and names the target error it wraps as its source.
    #[test]
    fn bad_bits_are_an_error_with_the_target_error_as_source() {
        use alloc::string::ToString;
        // Sign bit set with a non-zero mantissa: a negative target.
        let err = MinerJob::new(header(0x1d80_0001), NonceRange::ALL).unwrap_err();
        assert_eq!(err, MinerError(TargetError::Negative));
        let dyn_err: &dyn core::error::Error = &err;
        let source = dyn_err.source().expect("the target error is the source");
        assert_eq!(source.to_string(), TargetError::Negative.to_string());
        assert!(dyn_err.to_string().starts_with("template bits: "));
    }
}
