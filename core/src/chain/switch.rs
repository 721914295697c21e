//! Moving the active chain to the most-work valid chain, one block at a time.
//!
//! A switch disconnects the tip with its undo data, down to the fork, then connects the new
//! branch oldest first; each step is committed to the UTXO set and its changes are added to
//! the outcome's [`ChangeSet`] at once, so what the host writes is always a chain it can
//! restart from. A body or undo data that is not in the cache is asked from the host
//! ([`BlockOutcome::need`], one block at a time) and the switch goes on when it comes back
//! ([`Chain::provide`]); the cache is trimmed after every step, so a switch of any depth
//! holds the cache's budget and one block. A branch block that does not connect is marked
//! invalid and the chain goes back to the most-work valid chain, reading the old blocks
//! back from the store if it has to.

use alloc::vec::Vec;

use super::{BlockOutcome, Chain, Status};
use crate::primitives::{Block, BlockHash, Transaction};
use crate::sig::VerifyJob;
use crate::store::ChangeSet;
use crate::units::Height;
use crate::utxo::{BlockUndo, UtxoOverlay, undo_block};
use crate::validation::{BlockError, check_block, connect_block_unsigned};

/// Why a switch stopped before reaching its target.
enum Stop {
    /// This block does not connect.
    Invalid(BlockHash, BlockError),
    /// The body (and, for an active block, undo data) of this block is not in memory.
    Need(BlockHash),
    /// Every other check of this block passed, but the host has not yet verified its
    /// signatures (deferred verification, `verify.rs`): nothing of the block is committed.
    Verify(BlockHash, VerifyJob),
}

impl Chain {
    /// Switches to the most-work valid chain, step by step, until it is active or a body
    /// must come from the store.
    pub(super) fn activate_best_chain(&mut self, outcome: &mut BlockOutcome) {
        self.bodies.pinned.clear();
        while let Some(&(work, _, best)) = self.candidates.last() {
            if work <= self.tip().work {
                break;
            }
            match self.switch_to(best, outcome) {
                Ok(()) => {}
                Err(Stop::Invalid(bad, error)) => {
                    self.sigs.forget(&bad);
                    self.mark_invalid(bad);
                    outcome.changes.invalid.insert(bad);
                    outcome.invalidated.push((bad, error));
                }
                Err(Stop::Need(hash)) => {
                    // Wait for the host; keep the block it brings until it is used.
                    self.bodies.pinned.insert(hash);
                    outcome.need.push(hash);
                    return;
                }
                Err(Stop::Verify(hash, job)) => {
                    // Wait for the verdict; keep the body until the switch is tried again.
                    self.bodies.pinned.insert(hash);
                    outcome.verify.extend(self.sigs.request(hash, job));
                    return;
                }
            }
        }
        self.prune_step(&mut outcome.changes);
    }

    /// The height of the fork of `target`'s chain with the active chain, and the blocks
    /// above it up to `target`, oldest first.
    fn branch_to(&self, target: BlockHash) -> (Height, Vec<BlockHash>) {
        let mut branch = Vec::new();
        let mut cursor = target;
        while !self.is_active(&cursor) {
            branch.push(cursor);
            cursor = self.index[&cursor].header.prev;
        }
        branch.reverse();
        (self.index[&cursor].height, branch)
    }

    /// Moves the active chain to `target` one committed step at a time; stops at a block it
    /// lacks in memory or that does not connect (the steps before it stay done).
    fn switch_to(&mut self, target: BlockHash, outcome: &mut BlockOutcome) -> Result<(), Stop> {
        let (fork, branch) = self.branch_to(target);
        // The undone blocks' transactions, last block's first and each block's reversed: one
        // reversal makes them oldest block first, in block order, ahead of what `returned`
        // held (blocks undone before these are newer). Prepending block by block instead
        // moved everything returned so far once per block: quadratic in a deep reorg.
        let mut undone = Vec::new();
        while self.tip().height > fork {
            let tip = self.tip().hash;
            if self.bodies.undo(&tip).is_none() {
                return_undone(outcome, undone);
                return Err(Stop::Need(tip));
            }
            self.disconnect_tip(outcome, &mut undone);
            self.bodies.trim();
        }
        return_undone(outcome, undone);
        for hash in branch {
            if !self.bodies.contains(&hash) {
                return Err(Stop::Need(hash));
            }
            let changes = self.connect_one(hash)?;
            outcome.changes.merge(changes);
            outcome.connected.push(hash);
            self.bodies.trim();
        }
        Ok(())
    }

    /// Undoes the tip block (its body and undo data are cached): its transactions, but the
    /// coinbase, go to `undone` in reverse order (see [`return_undone`]).
    fn disconnect_tip(&mut self, outcome: &mut BlockOutcome, undone: &mut Vec<Transaction>) {
        let hash = self.tip().hash;
        let block = self
            .bodies
            .block(&hash)
            .expect("the caller checked it is cached");
        let undo = self
            .bodies
            .undo(&hash)
            .expect("the caller checked it is cached");
        let mut overlay = UtxoOverlay::new(&self.utxo);
        undo_block(&mut overlay, block, undo);
        let utxo = overlay.into_changes();
        undone.extend(block.txs.iter().skip(1).rev().cloned());
        self.utxo.apply(&utxo);
        self.bodies.set_undo(&hash, None);
        self.active.pop();
        let mut changes = ChangeSet {
            utxo,
            tip: Some(self.tip().hash),
            ..ChangeSet::default()
        };
        changes.undo.insert(hash, None);
        outcome.changes.merge(changes);
        outcome.disconnected.push(hash);
    }

    /// Connects the cached body of `hash`, a child of the tip, and makes it the tip; the
    /// step's changes come back. On error, or while the host verifies its signatures,
    /// nothing changed.
    fn connect_one(&mut self, hash: BlockHash) -> Result<ChangeSet, Stop> {
        let height = self.index[&hash].height;
        let block = self
            .bodies
            .block(&hash)
            .expect("the caller checked it is cached");
        let mut overlay = UtxoOverlay::new(&self.utxo);
        let invalid = |e: BlockError| Stop::Invalid(hash, e);
        let checked = check_block(block, &self.params).map_err(invalid)?;
        let (undo, sigs) =
            connect_block_unsigned(&checked, height, &mut overlay, &self.params, &self.genesis)
                .map_err(invalid)?;
        // The signatures: verified here, or a verdict the host returned, or a job for it.
        match self.sigs.verdict(&hash, sigs.job(), self.verify_mode) {
            Some(verdict) => sigs.check(block, verdict, &self.params).map_err(invalid)?,
            None => return Err(Stop::Verify(hash, sigs.job().clone())),
        }
        self.sigs.forget(&hash);
        let utxo = overlay.into_changes();
        self.utxo.apply(&utxo);
        self.active.push(hash);
        self.bodies.set_undo(&hash, Some(undo.clone()));
        let mut changes = ChangeSet {
            utxo,
            tip: Some(hash),
            ..ChangeSet::default()
        };
        changes.undo.insert(hash, Some(undo));
        Ok(changes)
    }

    /// Goes on with a switch of branches a restart interrupted: a store written step by step
    /// may hold a chain with more work than its tip (see [`Chain::load`]). Nothing happens
    /// when the tip is the most-work valid chain.
    pub fn resume(&mut self) -> BlockOutcome {
        let mut outcome = BlockOutcome::default();
        if self
            .candidates
            .last()
            .is_some_and(|&(work, _, _)| work > self.tip().work)
        {
            self.activate_best_chain(&mut outcome);
        }
        outcome
    }

    /// Whether a pending switch of branches waits for this block's body or undo data.
    pub fn wants(&self, hash: &BlockHash) -> bool {
        self.bodies.pinned.contains(hash)
    }

    /// Hands the chain a body (and, for an active block, its undo data) it asked for in
    /// [`BlockOutcome::need`], read from the host's store; `None` when the store does not
    /// have it. Goes on with the switch of branches that waited for it.
    pub fn provide(
        &mut self,
        hash: BlockHash,
        block: Option<Block>,
        undo: Option<BlockUndo>,
    ) -> BlockOutcome {
        let mut outcome = BlockOutcome::default();
        let Some(entry) = self.index.get(&hash) else {
            return outcome;
        };
        if entry.status != Status::HaveData {
            return outcome;
        }
        let active = self.is_active(&hash);
        let block = block.filter(|b| b.hash() == hash);
        let usable = block.is_some() && (!active || undo.is_some());
        if let Some(block) = block {
            self.bodies
                .insert(hash, block, if active { undo } else { None });
        }
        if !usable && self.bodies.pinned.contains(&hash) {
            outcome.missing.push(hash);
            if active {
                // The active chain cannot be undone past this block: give up the branch
                // that needed it (the next best is tried, and asks again if it needs it).
                if let Some(&best) = self.candidates.last() {
                    self.candidates.remove(&best);
                }
            } else {
                // The body is gone: download it again like any missing body.
                self.forget_body(hash);
            }
        }
        self.activate_best_chain(&mut outcome);
        outcome
    }

    /// Marks a stored body as lost: the block is a header again and it and its
    /// descendants leave the candidates until it is downloaded again.
    fn forget_body(&mut self, hash: BlockHash) {
        self.bodies.remove(&hash);
        self.prune_note_forgotten(&hash);
        if let Some(e) = self.index.get_mut(&hash) {
            e.status = Status::HeaderOnly;
        }
        let mut stack = alloc::vec![hash];
        while let Some(h) = stack.pop() {
            if let Some(e) = self.index.get(&h) {
                self.candidates
                    .remove(&(e.work, core::cmp::Reverse(e.seq), h));
            }
            if let Some(kids) = self.children.get(&h) {
                stack.extend(kids.iter().copied());
            }
        }
    }
}

/// Puts the transactions `disconnect_tip` collected (newest block first, each block
/// reversed) at the front of [`BlockOutcome::returned`], oldest block first in block order.
fn return_undone(outcome: &mut BlockOutcome, mut undone: Vec<Transaction>) {
    if undone.is_empty() {
        return;
    }
    undone.reverse();
    outcome.returned.splice(0..0, undone);
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use crate::params::Params;
    use crate::primitives::Transaction;
    use crate::sig::PublicKey;
    use crate::testkit::{child_of, extend, funded_chain, payments, wallet};

    /// A switch hands the mempool the disconnected blocks' transactions oldest block first
    /// and in block order, however many blocks it undoes.
    #[test]
    fn a_reorg_returns_the_disconnected_transactions_oldest_block_first() {
        let params = Params::test();
        let payers = [wallet(1, &params), wallet(2, &params)];
        let keys: Vec<PublicKey> = payers.iter().map(|w| w.public_key()).collect();
        let (mut chain, _) = funded_chain(&params, &keys, 8);
        let fork = chain.tip().hash;
        let fork_height = chain.height();
        let fork_block = chain.block(&fork).expect("the tip is cached").clone();
        let reward = PublicKey([0x11; 32]);
        let mut sent: Vec<Transaction> = Vec::new();
        for _ in 0..4 {
            let txs = payments(&chain, &payers, 3);
            extend(&mut chain, &txs, reward, b"a").expect("valid payments");
            sent.extend(txs);
        }
        // A heavier branch from the fork: five coinbase-only blocks.
        let mut parent = fork_block;
        let mut height = fork_height;
        let mut last = None;
        for _ in 0..5 {
            let block = child_of(&params, &parent, height, reward, b"b");
            let outcome = chain
                .accept_block(&block, block.header.time)
                .expect("a valid branch");
            height = height.next();
            parent = block;
            last = Some(outcome);
        }
        let outcome = last.expect("five blocks");
        assert_eq!(outcome.disconnected.len(), 4, "the switch happened at once");
        assert_eq!(outcome.returned, sent);
    }
}
