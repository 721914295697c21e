//! Signature checks packed as a job that hosts can verify anywhere.
//!
//! The core stays single-threaded: it collects the (key, 32-byte message, signature) triples
//! of a block into a [`VerifyJob`], a host splits it with [`VerifyJob::chunks`] into
//! consecutive runs of items, verifies each [`VerifyChunk`] on any thread or Web Worker
//! ([`VerifyChunk::verify`]) and hands the [`ChunkResult`]s back in any order.
//! [`VerifyJob::finish`] then gives exactly what [`verify_all`] gives on the whole list: `Ok`
//! iff every item passes the rule, otherwise the index of the FIRST failing item and its
//! error. Each chunk reports its own first failure; chunks are disjoint, so the smallest of
//! those indexes is the first failure overall.
//!
//! Chunks and results have a fixed byte form so they can cross to a Web Worker:
//! a chunk is `start u32 LE ‖ count u32 LE ‖ count × (key 32 ‖ msg 32 ‖ sig 64)`; a result is
//! `start u32 ‖ len u32 ‖ status u8 (0 ok, 1 invalid key, 2 invalid signature) ‖ index u32`.

use alloc::vec::Vec;
use core::fmt;

use super::{PublicKey, SigCheck, SigError, Signature, VerifyMode, verify_all};

/// Bytes of one encoded item: key, message, signature.
pub const ITEM_BYTES: usize = 32 + 32 + 64;
/// Bytes of an encoded [`ChunkResult`].
pub const RESULT_BYTES: usize = 13;

/// One signature check with its data owned; the message is a 32-byte sighash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobItem {
    pub key: PublicKey,
    pub msg: [u8; 32],
    pub sig: Signature,
}

impl JobItem {
    fn check(&self) -> SigCheck<'_> {
        SigCheck {
            key: &self.key,
            msg: &self.msg,
            sig: &self.sig,
        }
    }
}

/// The signature checks of one block (or any list), in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyJob {
    items: Vec<JobItem>,
}

/// A consecutive run of a job's items, starting at item `start` of the job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyChunk {
    pub start: u32,
    pub items: Vec<JobItem>,
}

/// The verdict on one chunk: items `start .. start + len` of the job, and the first of them
/// that failed (its index in the job) with its error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkResult {
    pub start: u32,
    pub len: u32,
    pub first_failure: Option<(u32, SigError)>,
}

/// Why chunk or result bytes, or a set of results, were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The bytes are not a chunk or result in the fixed form (wrong length or status).
    Malformed,
    /// The results do not cover the job's items exactly once, or name an item outside them.
    Mismatch,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobError::Malformed => "malformed verification chunk or result",
            JobError::Mismatch => "verification results do not match the job",
        })
    }
}

impl core::error::Error for JobError {}

impl VerifyJob {
    pub fn new() -> Self {
        VerifyJob::default()
    }

    pub fn push(&mut self, key: PublicKey, msg: [u8; 32], sig: Signature) {
        self.items.push(JobItem { key, msg, sig });
    }

    pub fn items(&self) -> &[JobItem] {
        &self.items
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Verifies every item here, in order: the synchronous path, same verdict as
    /// verifying the chunks anywhere and calling [`VerifyJob::finish`].
    pub fn verify(&self, mode: VerifyMode) -> Result<(), (usize, SigError)> {
        let checks: Vec<SigCheck<'_>> = self.items.iter().map(JobItem::check).collect();
        verify_all(&checks, mode)
    }

    /// The results of verifying the job as `parts` chunks one after another on this thread:
    /// what a host that runs nothing in parallel returns.
    pub fn results_in_place(&self, parts: usize, mode: VerifyMode) -> Vec<ChunkResult> {
        self.chunks(parts).iter().map(|c| c.verify(mode)).collect()
    }

    /// Splits the job into at most `parts` consecutive chunks of nearly equal size (none
    /// empty; no chunk at all for an empty job).
    pub fn chunks(&self, parts: usize) -> Vec<VerifyChunk> {
        let n = self.items.len();
        let parts = parts.clamp(1, n.max(1));
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        for p in 0..parts {
            let end = n * (p + 1) / parts;
            if end > start {
                out.push(VerifyChunk {
                    start: u32::try_from(start).expect("a block holds far fewer than 2^32 inputs"),
                    items: self.items[start..end].to_vec(),
                });
            }
            start = end;
        }
        out
    }

    /// Combines chunk results (any order) into the job's verdict: `Ok(None)` while items are
    /// still uncovered, `Ok(Some(verdict))` once every item is covered exactly once, and
    /// [`JobError::Mismatch`] for overlapping or out-of-range results.
    #[allow(clippy::type_complexity)]
    pub fn finish(
        &self,
        results: &[ChunkResult],
    ) -> Result<Option<Result<(), (usize, SigError)>>, JobError> {
        let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(results.len());
        for r in results {
            let (start, end) = (u64::from(r.start), u64::from(r.start) + u64::from(r.len));
            if end > self.items.len() as u64 {
                return Err(JobError::Mismatch);
            }
            if let Some((i, _)) = r.first_failure {
                if u64::from(i) < start || u64::from(i) >= end {
                    return Err(JobError::Mismatch);
                }
            }
            ranges.push((start, end));
        }
        ranges.sort_unstable();
        let mut covered = 0u64;
        for (start, end) in ranges {
            if start < covered {
                return Err(JobError::Mismatch);
            }
            if start > covered {
                return Ok(None);
            }
            covered = end;
        }
        if covered < self.items.len() as u64 {
            return Ok(None);
        }
        let first = results
            .iter()
            .filter_map(|r| r.first_failure)
            .min_by_key(|&(i, _)| i);
        Ok(Some(match first {
            None => Ok(()),
            Some((i, e)) => Err((i as usize, e)),
        }))
    }
}

impl VerifyChunk {
    /// Verifies this chunk's items in order with the rule (`mode` as in [`verify_all`]).
    pub fn verify(&self, mode: VerifyMode) -> ChunkResult {
        let checks: Vec<SigCheck<'_>> = self.items.iter().map(JobItem::check).collect();
        ChunkResult {
            start: self.start,
            len: u32::try_from(self.items.len()).expect("chunk lengths come from u32 starts"),
            first_failure: verify_all(&checks, mode)
                .err()
                .map(|(i, e)| (self.start + i as u32, e)),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.items.len() * ITEM_BYTES);
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&(self.items.len() as u32).to_le_bytes());
        for it in &self.items {
            out.extend_from_slice(&it.key.0);
            out.extend_from_slice(&it.msg);
            out.extend_from_slice(&it.sig.0);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, JobError> {
        let (head, body) = bytes.split_at_checked(8).ok_or(JobError::Malformed)?;
        let start = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let count = u32::from_le_bytes(head[4..].try_into().expect("4 bytes")) as usize;
        if count.checked_mul(ITEM_BYTES) != Some(body.len())
            || start.checked_add(count as u32).is_none()
        {
            return Err(JobError::Malformed);
        }
        let items = body
            .chunks_exact(ITEM_BYTES)
            .map(|b| JobItem {
                key: PublicKey(b[..32].try_into().expect("32 bytes")),
                msg: b[32..64].try_into().expect("32 bytes"),
                sig: Signature(b[64..].try_into().expect("64 bytes")),
            })
            .collect();
        Ok(VerifyChunk { start, items })
    }
}

impl ChunkResult {
    pub fn encode(&self) -> [u8; RESULT_BYTES] {
        let mut out = [0u8; RESULT_BYTES];
        out[..4].copy_from_slice(&self.start.to_le_bytes());
        out[4..8].copy_from_slice(&self.len.to_le_bytes());
        let (status, index) = match self.first_failure {
            None => (0, 0),
            Some((i, SigError::InvalidKey)) => (1, i),
            Some((i, SigError::Invalid)) => (2, i),
        };
        out[8] = status;
        out[9..].copy_from_slice(&index.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, JobError> {
        let b: &[u8; RESULT_BYTES] = bytes.try_into().map_err(|_| JobError::Malformed)?;
        let start = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes"));
        let index = u32::from_le_bytes(b[9..].try_into().expect("4 bytes"));
        let first_failure = match b[8] {
            0 if index == 0 => None,
            1 => Some((index, SigError::InvalidKey)),
            2 => Some((index, SigError::Invalid)),
            _ => return Err(JobError::Malformed),
        };
        Ok(ChunkResult {
            start,
            len,
            first_failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testvec::{kind, make_item};
    use super::*;
    use proptest::prelude::*;

    /// A job from test items (their messages are 32 bytes, the job's message form).
    fn job_of(items: &[(PublicKey, Vec<u8>, Signature)]) -> VerifyJob {
        let mut job = VerifyJob::new();
        for (key, msg, sig) in items {
            job.push(
                *key,
                msg[..].try_into().expect("32-byte test messages"),
                *sig,
            );
        }
        job
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Chunks verified in any order (and through their byte form) give the verdict and
        /// the first failing index of verifying the whole job in order.
        #[test]
        fn chunked_verdict_equals_sequential(
            spec in proptest::collection::vec((0u64..4, kind()), 0..40),
            parts in 1usize..9,
            rotate in 0usize..9,
            batch in any::<bool>(),
        ) {
            let items: Vec<_> = spec
                .iter()
                .enumerate()
                .map(|(i, (key_no, kind))| make_item(i as u64, *key_no, *kind))
                .collect();
            let job = job_of(&items);
            let mode = if batch { VerifyMode::Batch } else { VerifyMode::Single };
            let sequential = job.verify(VerifyMode::Single);
            let chunks = job.chunks(parts);
            prop_assert!(chunks.len() <= parts);
            prop_assert!(chunks.iter().all(|c| !c.items.is_empty()));
            let mut results: Vec<ChunkResult> = chunks
                .iter()
                .map(|c| VerifyChunk::decode(&c.encode()).unwrap())
                .map(|c| ChunkResult::decode(&c.verify(mode).encode()).unwrap())
                .collect();
            let len = results.len();
            if len > 0 {
                results.rotate_left(rotate % len);
            }
            // Nothing is decided until the last result is in.
            if len > 0 {
                prop_assert_eq!(job.finish(&results[..len - 1]), Ok(None));
            }
            prop_assert_eq!(job.finish(&results), Ok(Some(sequential)));
        }
    }

    #[test]
    fn honest_job_in_chunks_and_a_bad_item_in_chunk_k() {
        let kp = super::super::Keypair::from_seed(&[7; 32]);
        let mut job = VerifyJob::new();
        for i in 0..300u32 {
            let mut msg = [0u8; 32];
            msg[..4].copy_from_slice(&i.to_le_bytes());
            job.push(kp.public_key(), msg, kp.sign(&msg));
        }
        for parts in [1, 2, 3, 7] {
            let results: Vec<_> = job
                .chunks(parts)
                .iter()
                .map(|c| c.verify(VerifyMode::Single))
                .collect();
            assert_eq!(job.finish(&results), Ok(Some(Ok(()))));
        }
        // Bad signatures at 170 and 260: with 3 chunks (0..100, 100..200, 200..300) chunk 1
        // and chunk 2 both fail; the first failure overall is 170.
        job.items[170].sig.0[3] ^= 1;
        job.items[260].msg[0] ^= 1;
        let mut results: Vec<_> = job
            .chunks(3)
            .iter()
            .map(|c| c.verify(VerifyMode::Single))
            .collect();
        results.reverse();
        assert_eq!(results[0].first_failure, Some((260, SigError::Invalid)));
        assert_eq!(
            job.finish(&results),
            Ok(Some(Err((170, SigError::Invalid))))
        );
        assert_eq!(
            job.verify(VerifyMode::Single),
            Err((170, SigError::Invalid))
        );
    }

    #[test]
    fn malformed_bytes_and_mismatched_results_are_refused() {
        let kp = super::super::Keypair::from_seed(&[9; 32]);
        let mut job = VerifyJob::new();
        for i in 0..4u8 {
            job.push(kp.public_key(), [i; 32], kp.sign(&[i; 32]));
        }
        let chunk = &job.chunks(1)[0];
        let bytes = chunk.encode();
        assert_eq!(bytes.len(), 8 + 4 * ITEM_BYTES);
        assert_eq!(
            VerifyChunk::decode(&bytes[..bytes.len() - 1]),
            Err(JobError::Malformed)
        );
        assert_eq!(VerifyChunk::decode(&bytes[..7]), Err(JobError::Malformed));
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(VerifyChunk::decode(&extra), Err(JobError::Malformed));
        let mut status = chunk.verify(VerifyMode::Single).encode();
        status[8] = 3;
        assert_eq!(ChunkResult::decode(&status), Err(JobError::Malformed));
        assert_eq!(ChunkResult::decode(&status[..12]), Err(JobError::Malformed));

        let ok = |start, len| ChunkResult {
            start,
            len,
            first_failure: None,
        };
        assert_eq!(job.finish(&[ok(0, 2), ok(1, 3)]), Err(JobError::Mismatch));
        assert_eq!(job.finish(&[ok(0, 5)]), Err(JobError::Mismatch));
        assert_eq!(job.finish(&[ok(2, 2)]), Ok(None));
        let outside = ChunkResult {
            start: 0,
            len: 2,
            first_failure: Some((3, SigError::Invalid)),
        };
        assert_eq!(job.finish(&[outside, ok(2, 2)]), Err(JobError::Mismatch));
        assert_eq!(job.finish(&[ok(2, 2), ok(0, 2)]), Ok(Some(Ok(()))));
        assert!(job.chunks(4).iter().all(|c| c.items.len() == 1));
        assert_eq!(VerifyJob::new().chunks(3), Vec::new());
        assert_eq!(VerifyJob::new().finish(&[]), Ok(Some(Ok(()))));
    }
}
