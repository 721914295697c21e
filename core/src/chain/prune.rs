//! Pruning: a node with a byte budget for block bodies keeps only the bodies of its most
//! recent blocks, never fewer than the deepest reorg it follows. The decision of what to
//! delete is taken here, once; hosts execute it ([`ChangeSet::pruned`]) and record the
//! new lowest kept height ([`ChangeSet::prune_height`]). Headers, the UTXO set and the
//! validation of every block are untouched: a pruned node is a full validating node that
//! cannot serve (or reorg through) old bodies.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::{Chain, Status};
use crate::encode::Encode;
use crate::primitives::{Block, BlockHash};
use crate::store::ChangeSet;
use crate::units::Height;

/// The deepest reorganisation a pruned node follows, in blocks: it always keeps the bodies
/// and undo data of at least this many blocks below and including its tip, whatever its
/// byte budget. A competing branch that forks deeper than this cannot be switched to by a
/// pruned node (it lacks the bodies to undo), so this is also the finality depth a pruned
/// node assumes. 288 blocks are 24 hours at the main network's 5-minute target.
pub const DEFAULT_PRUNE_DEPTH: u64 = 288;

/// What a chain keeps, for hosts and the UI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStatus {
    /// Byte budget of stored bodies (`None`: the node keeps every body).
    pub budget: Option<u64>,
    /// Bodies of at least this many of the newest active blocks are kept.
    pub depth: u64,
    /// The lowest height whose body is kept (0: nothing pruned yet).
    pub kept_from: Height,
    /// Encoded bytes of the bodies kept (those of known size; see [`ChangeSet::sizes`]).
    pub kept_bytes: u64,
}

/// The pruning state of a chain.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pruning {
    budget: Option<u64>,
    depth: u64,
    /// Bodies below this height (genesis aside) are deleted.
    pub(crate) kept_from: Height,
    /// Encoded size of each stored body (only kept while pruning).
    sizes: BTreeMap<BlockHash, u32>,
    bytes: u64,
}

impl Pruning {
    pub(crate) fn new() -> Self {
        Pruning {
            depth: DEFAULT_PRUNE_DEPTH,
            ..Pruning::default()
        }
    }

    fn record(&mut self, hash: BlockHash, size: u32) {
        if let Some(old) = self.sizes.insert(hash, size) {
            self.bytes -= u64::from(old);
        }
        self.bytes += u64::from(size);
    }

    fn forget(&mut self, hash: &BlockHash) {
        if let Some(old) = self.sizes.remove(hash) {
            self.bytes -= u64::from(old);
        }
    }
}

impl Chain {
    /// Makes the chain prune to `budget` bytes of bodies (`None`: keep everything), always
    /// keeping the bodies of at least `depth` (at least 1) of the newest active blocks.
    /// Deletions happen as blocks connect ([`ChangeSet::pruned`]).
    pub fn set_prune(&mut self, budget: Option<u64>, depth: u64) {
        self.prune.budget = budget;
        self.prune.depth = depth.max(1);
        if budget.is_none() {
            self.prune.sizes.clear();
            self.prune.bytes = 0;
        }
    }

    /// What the chain keeps.
    pub fn prune_status(&self) -> PruneStatus {
        PruneStatus {
            budget: self.prune.budget,
            depth: self.prune.depth,
            kept_from: self.prune.kept_from,
            kept_bytes: self.prune.bytes,
        }
    }

    /// What this node says in its `hello` (PROTOCOL §3.2): 0 when it keeps every body, else
    /// the lowest height it keeps a body of (at least 1, so a pruned node that has not
    /// deleted anything yet still says it prunes).
    pub fn advertised_kept_from(&self) -> Height {
        match self.prune.budget {
            None => Height(0),
            Some(_) => Height(self.prune.kept_from.0.max(1)),
        }
    }

    /// Whether the body of `hash` was deleted by pruning (answered `notfound` without a
    /// store read). Genesis is never pruned.
    pub fn body_pruned(&self, hash: &BlockHash) -> bool {
        *hash != self.genesis
            && self
                .index
                .get(hash)
                .is_some_and(|e| e.height < self.prune.kept_from)
    }

    /// Records the size of a body the chain stores (while pruning).
    pub(super) fn prune_note_stored(&mut self, hash: BlockHash, block: &Block) {
        if self.prune.budget.is_some() {
            let size = u32::try_from(block.encoded_len()).unwrap_or(u32::MAX);
            self.prune.record(hash, size);
        }
    }

    /// A stored body is gone (the store lost it).
    pub(super) fn prune_note_forgotten(&mut self, hash: &BlockHash) {
        self.prune.forget(hash);
    }

    /// Restores the pruning state a store holds: its lowest kept height and body sizes.
    pub(super) fn prune_load(&mut self, stored: &ChangeSet) {
        self.prune.kept_from = stored.prune_height.unwrap_or_default();
        for (hash, size) in &stored.sizes {
            if self.index.contains_key(hash) && !self.body_pruned(hash) {
                self.prune.record(*hash, *size);
            }
        }
    }

    /// The pruning decision, taken after the active chain moved: while the stored bodies
    /// weigh more than the budget, the lowest kept height is raised (never closer to the tip
    /// than the prune depth), and the bodies below it are listed in `changes.pruned` — the
    /// active block at each height and every side branch forking below it (a pruned node
    /// can no longer switch to those). Bodies stored by `changes` itself below the kept
    /// height are listed too, so nothing old is left behind.
    pub(super) fn prune_step(&mut self, changes: &mut ChangeSet) {
        if self.prune.budget.is_none() {
            return;
        }
        let budget = self.prune.budget.unwrap_or(u64::MAX);
        let tip = self.tip().height.0;
        let limit = (tip + 1).saturating_sub(self.prune.depth);
        let old = self.prune.kept_from;
        let mut from = old.0.max(1);
        let mut pruned = BTreeSet::new();
        while from < limit && self.prune.bytes > budget {
            let h = from as usize;
            let hash = self.active[h];
            pruned.insert(hash);
            self.prune.forget(&hash);
            // Side branches forking at the parent need this block's body to switch.
            let parent = self.active[h - 1];
            let mut stack: Vec<BlockHash> = self
                .children
                .get(&parent)
                .map(|kids| kids.iter().copied().filter(|k| *k != hash).collect())
                .unwrap_or_default();
            while let Some(side) = stack.pop() {
                if self
                    .index
                    .get(&side)
                    .is_some_and(|e| e.status != Status::HeaderOnly)
                {
                    pruned.insert(side);
                    self.prune.forget(&side);
                }
                if let Some(kids) = self.children.get(&side) {
                    stack.extend(kids.iter().copied());
                }
            }
            from += 1;
        }
        if from > old.0.max(1) {
            self.prune.kept_from = Height(from);
            changes.prune_height = Some(Height(from));
        }
        // Old side-branch bodies this very change stores.
        for b in &changes.blocks {
            let hash = b.hash();
            if self.body_pruned(&hash) {
                pruned.insert(hash);
                self.prune.forget(&hash);
            }
        }
        for hash in &pruned {
            self.bodies.remove(hash);
            if let Some(e) = self.index.get(hash) {
                changes.headers.push(e.header);
            }
        }
        changes.pruned.extend(pruned);
    }
}
