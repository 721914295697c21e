//! How the simulator answers [`Output::VerifySigs`](crate::node::Output): it splits the job
//! into chunks, verifies them, and feeds the results back at once (last chunk first) or
//! holds them until a test releases them in the order it likes.

use alloc::vec::Vec;

use super::{Actor, Sim};
use crate::node::Input;
use crate::sig::{ChunkResult, VerifyJob, VerifyMode};

/// A node's verification host in the simulator.
#[derive(Debug, Default)]
pub struct VerifyHost {
    /// Chunks each job is split into (at least 1).
    pub chunks: usize,
    /// Keep results until [`Sim::release_verifications`].
    pub hold: bool,
    /// Results verified and not yet delivered: (ticket, result).
    pub held: Vec<(u64, ChunkResult)>,
    /// Jobs asked for so far.
    pub jobs: u64,
}

impl Sim {
    pub(super) fn verify_sigs(&mut self, i: usize, ticket: u64, job: &VerifyJob) {
        let Actor::Node(n) = &mut self.actors[i] else {
            return;
        };
        n.verify.jobs += 1;
        let results: Vec<(u64, ChunkResult)> = job
            .chunks(n.verify.chunks.max(1))
            .iter()
            .map(|c| (ticket, c.verify(VerifyMode::Single)))
            .collect();
        if n.verify.hold {
            n.verify.held.extend(results);
            return;
        }
        for (ticket, result) in results.into_iter().rev() {
            self.input(i, Input::SigsVerified { ticket, result });
        }
    }

    /// Splits node `i`'s jobs into `chunks` and holds their results if `hold`.
    pub fn set_verify_host(&mut self, i: usize, chunks: usize, hold: bool) {
        if let Actor::Node(n) = &mut self.actors[i] {
            n.verify.chunks = chunks;
            n.verify.hold = hold;
        }
    }

    pub fn held_verifications(&self, i: usize) -> &[(u64, ChunkResult)] {
        &self.sim_node(i).verify.held
    }

    /// Delivers the held results at these positions of [`Sim::held_verifications`], in this
    /// order, and forgets them.
    pub fn release_verifications(&mut self, i: usize, order: &[usize]) {
        let picked: Vec<(u64, ChunkResult)> = match &self.actors[i] {
            Actor::Node(n) => order.iter().map(|&k| n.verify.held[k]).collect(),
            Actor::Raw(_) => return,
        };
        if let Actor::Node(n) = &mut self.actors[i] {
            let mut k = 0;
            n.verify.held.retain(|_| {
                k += 1;
                !order.contains(&(k - 1))
            });
        }
        for (ticket, result) in picked {
            self.input(i, Input::SigsVerified { ticket, result });
        }
    }
}
