//! Parallel signature checks (`docs/PROTOCOL.md` §7, "Signature jobs"): with
//! [`NodeConfig::parallel_verify`](super::NodeConfig) on, the chain hands the signature
//! checks of blocks it connects to the host as [`Output::VerifySigs`] and waits for every
//! chunk's [`Input::SigsVerified`](super::Input) before it commits them; results of unknown
//! tickets are ignored. A block found invalid that way is rejected, and its sender punished,
//! exactly as if it had been verified in place.

use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::chain::VerifyRequest;
use crate::primitives::BlockHash;
use crate::sig::ChunkResult;

use super::{Event, Node, Output, PeerId};

/// Senders of blocks whose signatures may still be verified remembered at most (the oldest
/// by hash are forgotten: such a block, if bad, is still rejected, its sender unpunished).
const MAX_BLOCK_SOURCES: usize = 256;

impl Node {
    pub(super) fn request_verify(&mut self, requests: Vec<VerifyRequest>) {
        for r in requests {
            self.outputs.push_back(Output::VerifySigs {
                ticket: r.ticket,
                job: Arc::new(r.job),
            });
        }
    }

    /// Remembers who sent `hash` while its signatures may be checked later.
    pub(super) fn note_block_source(&mut self, hash: BlockHash, from: Option<PeerId>) {
        let Some(peer) = from else {
            return;
        };
        if !self.config.parallel_verify || self.chain.verify_in_flight() == 0 {
            return;
        }
        while self.block_sources.len() >= MAX_BLOCK_SOURCES {
            self.block_sources.pop_first();
        }
        self.block_sources.insert(hash, peer);
    }

    pub(super) fn on_sigs_verified(&mut self, ticket: u64, result: ChunkResult) {
        let outcome = self.chain.sigs_verified(ticket, result);
        let invalidated = outcome.invalidated.clone();
        for hash in &outcome.connected {
            self.block_sources.remove(hash);
        }
        self.apply_outcome(outcome);
        self.chain.trim_cache();
        for (hash, e) in invalidated {
            self.event(Event::BlockRejected {
                hash,
                reason: e.to_string(),
            });
            if let Some(peer) = self.block_sources.remove(&hash) {
                self.conduct(peer, e.conduct(), alloc::format!("block {hash}: {e}"));
            }
        }
    }
}
