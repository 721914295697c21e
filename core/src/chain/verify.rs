//! Signature checks handed to the host (docs/PROTOCOL.md, "parallel signature checks").
//!
//! By default a block's signatures are verified in place when it connects. With deferred
//! verification on ([`Chain::set_deferred_verify`]), connecting a block (a step of the
//! switch in `switch.rs`) does every other check first, on an overlay, and when its verdict
//! is not known yet asks the host to verify its signature job ([`BlockOutcome::verify`]):
//! the switch stops before that block, which is not committed meanwhile (the steps before
//! it are). The host verifies the job's chunks anywhere and returns each
//! [`ChunkResult`] with [`Chain::sigs_verified`]; once a block's job is complete its verdict is
//! remembered and the switch is tried again, redoing the cheap checks and using the verdict.
//! The error and the input it names are those of the in-place path.
//!
//! A verdict is keyed by block hash: the hash commits to the parent, so the outputs a block
//! spends — and with them its sighashes and its whole job — are the same whenever it
//! connects.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{BlockOutcome, Chain};
use crate::primitives::BlockHash;
use crate::sig::{ChunkResult, SigError, VerifyJob, VerifyMode};

/// At most this many verdicts of blocks not yet connected are kept (the oldest by hash are
/// dropped beyond it, and verified again if ever needed).
const MAX_VERDICTS: usize = 256;

/// A block's signatures to verify, for the host: split `job` with [`VerifyJob::chunks`],
/// verify each chunk, return every result with [`Chain::sigs_verified`] and this `ticket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyRequest {
    pub ticket: u64,
    pub job: VerifyJob,
}

pub(super) type Verdict = Result<(), (usize, SigError)>;

#[derive(Clone, Debug)]
struct InFlight {
    hash: BlockHash,
    job: VerifyJob,
    results: Vec<ChunkResult>,
}

/// Deferred verification state of a chain.
#[derive(Clone, Debug, Default)]
pub(super) struct Deferred {
    enabled: bool,
    next_ticket: u64,
    in_flight: BTreeMap<u64, InFlight>,
    verdicts: BTreeMap<BlockHash, Verdict>,
}

impl Deferred {
    /// The verdict on `job` (the signatures of block `hash`): computed here when deferral is
    /// off or there is nothing to verify, remembered from the host, or `None` (ask the host).
    pub(super) fn verdict(
        &self,
        hash: &BlockHash,
        job: &VerifyJob,
        mode: VerifyMode,
    ) -> Option<Verdict> {
        if !self.enabled || job.is_empty() {
            return Some(job.verify(mode));
        }
        self.verdicts.get(hash).copied()
    }

    /// A request for the host, unless one for `hash` is already out.
    pub(super) fn request(&mut self, hash: BlockHash, job: VerifyJob) -> Option<VerifyRequest> {
        if self.in_flight.values().any(|f| f.hash == hash) {
            return None;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.in_flight.insert(
            ticket,
            InFlight {
                hash,
                job: job.clone(),
                results: Vec::new(),
            },
        );
        Some(VerifyRequest { ticket, job })
    }

    /// The block is connected or invalid: its verdict is no longer needed.
    pub(super) fn forget(&mut self, hash: &BlockHash) {
        self.verdicts.remove(hash);
    }
}

impl Chain {
    /// Hands signature jobs to the host ([`BlockOutcome::verify`]) instead of verifying them
    /// in place. Off by default: hosts that do not answer jobs must leave it off.
    pub fn set_deferred_verify(&mut self, on: bool) {
        self.sigs.enabled = on;
    }

    /// Jobs asked for and not yet answered.
    pub fn verify_in_flight(&self) -> usize {
        self.sigs.in_flight.len()
    }

    /// One chunk result for the request `ticket`. Results of unknown (stale or finished)
    /// tickets are ignored. When the job is complete its verdict is kept and the chain goes
    /// on with the switch that waited for it; the outcome says what that did. Results that
    /// do not fit the job (a host bug) are dropped and the job is verified here instead.
    pub fn sigs_verified(&mut self, ticket: u64, result: ChunkResult) -> BlockOutcome {
        let mut outcome = BlockOutcome::default();
        let Some(f) = self.sigs.in_flight.get_mut(&ticket) else {
            return outcome;
        };
        f.results.push(result);
        let verdict = match f.job.finish(&f.results) {
            Ok(None) => return outcome,
            Ok(Some(v)) => v,
            Err(_) => f.job.verify(self.verify_mode),
        };
        let hash = f.hash;
        self.sigs.in_flight.remove(&ticket);
        while self.sigs.verdicts.len() >= MAX_VERDICTS {
            self.sigs.verdicts.pop_first();
        }
        self.sigs.verdicts.insert(hash, verdict);
        self.activate_best_chain(&mut outcome);
        outcome
    }
}
