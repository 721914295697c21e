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
//!
//! Verifying ahead: while the switch waits for one block's verdict, the jobs of the next
//! blocks of its branch that are in memory go out too (up to [`Chain::set_verify_ahead`] jobs
//! at once),
//! each built on an overlay holding the blocks before it connected without their signatures —
//! the outputs it will spend when it connects. The host's threads then verify the next blocks
//! while this one connects the earlier ones, instead of idling through one round trip per
//! block. Blocks still connect one at a time, in order, each with every check of the in-place
//! path.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{BlockOutcome, Chain};
use crate::primitives::BlockHash;
use crate::sig::{ChunkResult, SigError, VerifyJob, VerifyMode};
use crate::utxo::UtxoOverlay;
use crate::validation::{check_block, connect_block_unsigned};

/// The most jobs [`Chain::set_verify_ahead`] lets out at once.
pub const MAX_VERIFY_AHEAD: usize = 16;

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
    /// Jobs out at once (at least 1: the block the switch waits for).
    ahead: usize,
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

    /// Neither a verdict on `hash` nor a request for it is held.
    fn open(&self, hash: &BlockHash) -> bool {
        !self.verdicts.contains_key(hash) && !self.in_flight.values().any(|f| f.hash == *hash)
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

    /// While the switch to `target` waits for the signatures of `waiting` (a child of the
    /// tip), hands out the jobs of the next blocks of that branch held in memory, until
    /// [`Chain::set_verify_ahead`] jobs are out. Each job is built on one overlay of the tip's UTXO set
    /// with the blocks before it connected without their signatures: the outputs that block
    /// will spend when it connects (its hash, the verdict's key, commits to those blocks).
    /// Nothing is committed or marked here: the look-ahead stops at the first block it lacks
    /// or that does not connect, and the switch deals with that block in its turn. Costs one
    /// unsigned connect per block it passes, paid only while a job slot is free.
    pub(super) fn verify_ahead(
        &mut self,
        target: BlockHash,
        waiting: BlockHash,
        outcome: &mut BlockOutcome,
    ) {
        if !self.sigs.enabled || self.sigs.in_flight.len() >= self.sigs.ahead.max(1) {
            return;
        }
        let (_, branch) = self.branch_to(target);
        let Some(start) = branch.iter().position(|h| *h == waiting) else {
            return;
        };
        let mut overlay = UtxoOverlay::new(&self.utxo);
        for &hash in &branch[start..] {
            if self.sigs.in_flight.len() >= self.sigs.ahead.max(1) {
                break;
            }
            let Some(block) = self.bodies.block(&hash) else {
                break;
            };
            let height = self.index[&hash].height;
            let Ok(checked) = check_block(block, &self.params) else {
                break;
            };
            let Ok((_, sigs)) =
                connect_block_unsigned(&checked, height, &mut overlay, &self.params, &self.genesis)
            else {
                break;
            };
            if hash != waiting && !sigs.job().is_empty() && self.sigs.open(&hash) {
                outcome
                    .verify
                    .extend(self.sigs.request(hash, sigs.job().clone()));
            }
        }
    }

    /// With deferred verification, how many signature jobs may be out at once: the block the
    /// switch waits for and the next `jobs - 1` of its branch (clamped to
    /// 1..=[`MAX_VERIFY_AHEAD`]; 1 by default). More than one only helps a host that verifies
    /// while the chain goes on (worker threads answering later); it costs an unsigned connect
    /// of each block passed on the way, while a job slot is free.
    pub fn set_verify_ahead(&mut self, jobs: usize) {
        self.sigs.ahead = jobs.clamp(1, MAX_VERIFY_AHEAD);
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
