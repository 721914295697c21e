//! The block tree, fork choice by most cumulative work, and reorganisation of any depth.
//!
//! Headers are accepted into a tree once they pass the header checks; bodies attach to
//! them. The active chain is the most-work chain whose blocks all have bodies and are not
//! known invalid; equal work keeps the chain seen first. Switching chains undoes the old
//! branch and connects the new one a block at a time, each step committed (see `switch`),
//! with bodies and undo data read from the host's store when they are not cached. A block
//! that fails mid-switch is marked invalid and the chain goes back to the most-work valid
//! chain.

mod cache;
mod load;
mod prune;
mod switch;
mod verify;

pub use cache::DEFAULT_BODY_CACHE_BYTES;
pub use prune::{DEFAULT_PRUNE_DEPTH, PruneStatus};
pub use verify::VerifyRequest;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt;

use crate::params::Params;
use crate::primitives::{Block, BlockHash, BlockHeader, Transaction};
use crate::sig::VerifyMode;
use crate::store::ChangeSet;
use crate::units::{Height, Work};
use crate::utxo::{BlockUndo, UtxoSet};
use crate::validation::{
    BlockError, Conduct, ParentInfo, check_block, check_header, check_header_context, median_time,
};

/// What the tree knows of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Header checked; body not yet received.
    HeaderOnly,
    /// Body stored; valid as far as we know (contextually checked once connected).
    HaveData,
    /// Failed validation, or descends from a block that did.
    Invalid,
}

/// One node of the block tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    pub hash: BlockHash,
    pub header: BlockHeader,
    pub height: Height,
    /// Cumulative work from genesis up to and including this block.
    pub work: Work,
    /// Median time of the `mtp_window` blocks ending here (what a child must exceed).
    pub median_time_past: u64,
    pub status: Status,
    /// Arrival order, for first-seen tie breaks.
    pub seq: u64,
}

/// Why the chain refused a header or block.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// The block breaks a consensus rule.
    Block(BlockError),
    /// The parent is not in the tree (an orphan): fetch the parent first.
    UnknownParent { parent: BlockHash },
    /// The block or one of its ancestors is known invalid.
    KnownInvalid { hash: BlockHash },
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Block(e) => write!(f, "invalid block: {e}"),
            ChainError::UnknownParent { parent } => write!(f, "unknown parent {parent}"),
            ChainError::KnownInvalid { hash } => {
                write!(f, "block {hash} is or descends from an invalid block")
            }
        }
    }
}

impl core::error::Error for ChainError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ChainError::Block(e) => Some(e),
            _ => None,
        }
    }
}

impl ChainError {
    pub fn conduct(&self) -> Conduct {
        match self {
            ChainError::Block(e) => e.conduct(),
            ChainError::UnknownParent { .. } => Conduct::Ignore,
            ChainError::KnownInvalid { .. } => Conduct::Disconnect,
        }
    }
}

/// What accepting a header did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderOutcome {
    New,
    AlreadyKnown,
}

/// What accepting a block did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockOutcome {
    /// What to persist (one atomic write).
    pub changes: ChangeSet,
    /// Blocks added to the active chain, in order.
    pub connected: Vec<BlockHash>,
    /// Blocks removed from the active chain, tip first.
    pub disconnected: Vec<BlockHash>,
    /// The transactions (coinbases aside) of the disconnected blocks, oldest block first and
    /// in block order, for the mempool: what a switch holds beyond the body cache, bounded
    /// by the bodies it found in memory (a deeper switch returns them over several outcomes).
    pub returned: Vec<Transaction>,
    /// Blocks found invalid while trying to connect them (the step that tried is not applied).
    pub invalidated: Vec<(BlockHash, BlockError)>,
    /// We already had this block's body.
    pub duplicate: bool,
    /// Bodies (with undo data, for active blocks) the chain needs from the store to go on:
    /// the host answers each with [`Chain::provide`] (the node turns these into
    /// `Output::LoadBlock` and `Input::BlockLoaded`).
    pub need: Vec<BlockHash>,
    /// Blocks the store could not give back although the chain needed them to switch
    /// branches (a damaged or pruned store): that switch was given up.
    pub missing: Vec<BlockHash>,
    /// Signature jobs the host must verify before the switch can go on (only with
    /// [`Chain::set_deferred_verify`]); answer with [`Chain::sigs_verified`].
    pub verify: Vec<VerifyRequest>,
}

impl BlockOutcome {
    pub fn tip_changed(&self) -> bool {
        !self.connected.is_empty() || !self.disconnected.is_empty()
    }
}

/// A stored state that cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// A stored block that fails the header checks.
    BadBlock { hash: BlockHash, error: BlockError },
    /// The stored tip is not a stored block, or blocks of the active chain lack undo data.
    Inconsistent { reason: &'static str },
    /// The stored genesis differs from this network's.
    WrongNetwork,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::BadBlock { hash, error } => write!(f, "stored block {hash}: {error}"),
            LoadError::Inconsistent { reason } => write!(f, "inconsistent store: {reason}"),
            LoadError::WrongNetwork => write!(f, "store belongs to another network"),
        }
    }
}

impl core::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            LoadError::BadBlock { error, .. } => Some(error),
            _ => None,
        }
    }
}

type Candidate = (Work, Reverse<u64>, BlockHash);

/// Heights above the fork of the active and best-header chains that
/// [`Chain::missing_blocks`] looks at.
pub const MISSING_BLOCKS_WINDOW: usize = 1_024;

/// The chain state of one node.
#[derive(Clone, Debug)]
pub struct Chain {
    params: Params,
    genesis: BlockHash,
    index: BTreeMap<BlockHash, BlockEntry>,
    children: BTreeMap<BlockHash, Vec<BlockHash>>,
    genesis_block: Block,
    /// Recent bodies (and undo data of active ones); the rest are in the host's store.
    bodies: cache::BodyCache,
    /// Block hash at each height of the active chain.
    active: Vec<BlockHash>,
    utxo: UtxoSet,
    /// Blocks with a body whose ancestors all have bodies and none is invalid.
    candidates: BTreeSet<Candidate>,
    next_seq: u64,
    verify_mode: VerifyMode,
    /// Signature jobs handed to the host, and their verdicts.
    sigs: verify::Deferred,
    /// The most-work header not known invalid (bodies may be missing).
    best_header: BlockHash,
    /// Block hash at each height of the chain ending at `best_header` (like `active`, so
    /// sync questions about that chain are answered by height instead of by walking it).
    best_chain: Vec<BlockHash>,
    /// What a pruned node keeps (see `prune`).
    prune: prune::Pruning,
}

impl Chain {
    /// A chain holding only the genesis block.
    pub fn new(params: Params) -> Chain {
        let genesis_block = params.genesis_block();
        let genesis = genesis_block.hash();
        let header = genesis_block.header;
        let entry = BlockEntry {
            hash: genesis,
            header,
            height: Height::GENESIS,
            work: header
                .bits
                .to_target()
                .expect("genesis bits are valid")
                .work(),
            // Block 1 must be after the launch time (the difficulty schedule's start).
            median_time_past: params.genesis_median_time_past(),
            status: Status::HaveData,
            seq: 0,
        };
        let mut chain = Chain {
            params,
            genesis,
            index: BTreeMap::new(),
            children: BTreeMap::new(),
            genesis_block,
            bodies: cache::BodyCache::new(DEFAULT_BODY_CACHE_BYTES),
            active: alloc::vec![genesis],
            utxo: UtxoSet::new(),
            candidates: BTreeSet::new(),
            next_seq: 1,
            verify_mode: VerifyMode::Single,
            sigs: verify::Deferred::default(),
            best_header: genesis,
            best_chain: alloc::vec![genesis],
            prune: prune::Pruning::new(),
        };
        chain.candidates.insert((entry.work, Reverse(0), genesis));
        chain.index.insert(genesis, entry);
        chain
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis
    }

    pub fn set_verify_mode(&mut self, mode: VerifyMode) {
        self.verify_mode = mode;
    }

    pub fn tip(&self) -> &BlockEntry {
        let hash = self.active.last().expect("the active chain holds genesis");
        &self.index[hash]
    }

    pub fn height(&self) -> Height {
        self.tip().height
    }

    pub fn utxo(&self) -> &UtxoSet {
        &self.utxo
    }

    pub fn entry(&self, hash: &BlockHash) -> Option<&BlockEntry> {
        self.index.get(hash)
    }

    /// The body of `hash` if it is in memory (the genesis block always is). A body that is
    /// only in the store ([`Chain::has_block`]) is read by the host: see [`Chain::provide`].
    pub fn block(&self, hash: &BlockHash) -> Option<&Block> {
        if *hash == self.genesis {
            return Some(&self.genesis_block);
        }
        self.bodies.block(hash)
    }

    /// The undo data of an active block, if it is in memory.
    pub fn undo_data(&self, hash: &BlockHash) -> Option<&BlockUndo> {
        self.bodies.undo(hash)
    }

    /// Sets the byte budget of the in-memory body cache (counted on encodings).
    pub fn set_body_cache_bytes(&mut self, bytes: usize) {
        self.bodies.set_budget(bytes);
        self.bodies.trim();
    }

    /// Bytes and number of bodies in the in-memory cache.
    pub fn body_cache_usage(&self) -> (usize, usize) {
        (self.bodies.bytes(), self.bodies.len())
    }

    /// The most bytes the body cache held since [`Chain::reset_body_cache_peak`] (or since
    /// the chain was made): what bounds a switch of branches' memory.
    pub fn body_cache_peak(&self) -> usize {
        self.bodies.peak()
    }

    /// Starts measuring [`Chain::body_cache_peak`] from the cache's current size.
    pub fn reset_body_cache_peak(&mut self) {
        self.bodies.reset_peak();
    }

    /// Evicts cached bodies beyond the budget (the block a pending switch waits for keeps its
    /// place).
    pub fn trim_cache(&mut self) {
        self.bodies.trim();
    }

    /// Hash of the active block at `height`.
    pub fn hash_at(&self, height: Height) -> Option<BlockHash> {
        self.active.get(height.0 as usize).copied()
    }

    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.index
            .get(hash)
            .is_some_and(|e| self.hash_at(e.height) == Some(*hash))
    }

    /// Active chain hashes from genesis to tip.
    pub fn active_chain(&self) -> &[BlockHash] {
        &self.active
    }

    /// Number of blocks in the tree (any status).
    pub fn tree_len(&self) -> usize {
        self.index.len()
    }

    /// What the next block on the tip must satisfy.
    pub fn next_block_context(&self) -> ParentInfo {
        let tip = self.tip();
        ParentInfo {
            height: tip.height,
            time: tip.header.time,
            median_time_past: tip.median_time_past,
        }
    }

    fn parent_info(entry: &BlockEntry) -> ParentInfo {
        ParentInfo {
            height: entry.height,
            time: entry.header.time,
            median_time_past: entry.median_time_past,
        }
    }

    /// An entry for a header whose parent is in the index.
    fn make_entry(&mut self, header: &BlockHeader, status: Status) -> BlockEntry {
        let parent = &self.index[&header.prev];
        let work = parent.work.checked_add(
            header
                .bits
                .to_target()
                .expect("bits were checked before making an entry")
                .work(),
        );
        let mut times = Vec::with_capacity(self.params.mtp_window);
        times.push(header.time);
        let mut cursor = Some(parent);
        while let Some(e) = cursor {
            if times.len() == self.params.mtp_window {
                break;
            }
            times.push(e.header.time);
            cursor = self.index.get(&e.header.prev);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        BlockEntry {
            hash: header.hash(),
            header: *header,
            height: parent.height.next(),
            work: work.expect("cumulative work cannot pass 2^256"),
            median_time_past: median_time(&mut times),
            status,
            seq,
        }
    }

    /// Adds a header to the tree after the header checks (`now` in seconds).
    pub fn accept_header(
        &mut self,
        header: &BlockHeader,
        now: u64,
    ) -> Result<HeaderOutcome, ChainError> {
        let hash = header.hash();
        if let Some(e) = self.index.get(&hash) {
            return match e.status {
                Status::Invalid => Err(ChainError::KnownInvalid { hash }),
                _ => Ok(HeaderOutcome::AlreadyKnown),
            };
        }
        check_header(header, &self.params).map_err(ChainError::Block)?;
        let parent = self
            .index
            .get(&header.prev)
            .ok_or(ChainError::UnknownParent {
                parent: header.prev,
            })?;
        if parent.status == Status::Invalid {
            return Err(ChainError::KnownInvalid { hash: header.prev });
        }
        check_header_context(header, &Self::parent_info(parent), &self.params, now)
            .map_err(ChainError::Block)?;
        let entry = self.make_entry(header, Status::HeaderOnly);
        self.children.entry(header.prev).or_default().push(hash);
        let better = entry.work > self.best_header().work;
        self.index.insert(hash, entry);
        if better {
            self.set_best_header(hash);
        }
        Ok(HeaderOutcome::New)
    }

    /// Accepts a block: checks it, stores it, and moves the active chain to the most-work
    /// valid chain. Errors mean nothing was stored; blocks found invalid while connecting are
    /// reported in [`BlockOutcome::invalidated`] (state then is exactly as before them).
    pub fn accept_block(&mut self, block: &Block, now: u64) -> Result<BlockOutcome, ChainError> {
        let hash = block.hash();
        if let Some(e) = self.index.get(&hash) {
            match e.status {
                Status::Invalid => return Err(ChainError::KnownInvalid { hash }),
                Status::HaveData => {
                    return Ok(BlockOutcome {
                        duplicate: true,
                        ..BlockOutcome::default()
                    });
                }
                Status::HeaderOnly => {}
            }
        }
        if let Err(error) = check_block(block, &self.params) {
            // A known header whose body breaks a rule is itself invalid; remember that in
            // memory (it was never stored, so there is nothing to persist).
            if self.index.contains_key(&hash) && error.marks_header_invalid() {
                self.mark_invalid(hash);
            }
            return Err(ChainError::Block(error));
        }
        if !self.index.contains_key(&hash) {
            self.accept_header(&block.header, now)?;
        }
        self.bodies.trim();
        let entry = self.index.get_mut(&hash).expect("header was just accepted");
        entry.status = Status::HaveData;
        self.bodies.insert(hash, block.clone(), None);
        self.prune_note_stored(hash, block);
        let mut outcome = BlockOutcome::default();
        outcome.changes.blocks.push(block.clone());
        self.link(hash);
        self.activate_best_chain(&mut outcome);
        Ok(outcome)
    }

    /// Whether every ancestor of `hash` (excluding it) has a body and is valid.
    fn parent_linked(&self, hash: &BlockHash) -> bool {
        let e = &self.index[hash];
        if *hash == self.genesis {
            return true;
        }
        let parent = &self.index[&e.header.prev];
        self.candidates
            .contains(&(parent.work, Reverse(parent.seq), parent.hash))
            || self.is_active(&parent.hash)
    }

    /// Adds `hash` and any descendants that were waiting for it to the candidates.
    fn link(&mut self, hash: BlockHash) {
        if !self.parent_linked(&hash) {
            return;
        }
        let mut stack = alloc::vec![hash];
        while let Some(h) = stack.pop() {
            let e = &self.index[&h];
            if e.status != Status::HaveData {
                continue;
            }
            self.candidates.insert((e.work, Reverse(e.seq), h));
            if let Some(kids) = self.children.get(&h) {
                stack.extend(kids.iter().copied());
            }
        }
    }

    /// Marks `hash` and all its descendants invalid.
    fn mark_invalid(&mut self, hash: BlockHash) {
        let mut stack = alloc::vec![hash];
        while let Some(h) = stack.pop() {
            if let Some(e) = self.index.get_mut(&h) {
                e.status = Status::Invalid;
                let key = (e.work, Reverse(e.seq), h);
                self.candidates.remove(&key);
            }
            if let Some(kids) = self.children.get(&h) {
                stack.extend(kids.iter().copied());
            }
        }
        if self.index[&self.best_header].status == Status::Invalid {
            self.recompute_best_header();
        }
    }

    fn recompute_best_header(&mut self) {
        let tip = self.tip().hash;
        let best = self
            .index
            .values()
            .filter(|e| e.status != Status::Invalid)
            .max_by(|a, b| a.work.cmp(&b.work).then(b.seq.cmp(&a.seq)))
            .map_or(tip, |e| e.hash);
        self.set_best_header(best);
    }

    /// Makes `hash` (in the index) the best header and re-indexes its chain by height: only
    /// the part above the fork with the previous best chain is walked, so extending the best
    /// chain by one header costs one step.
    fn set_best_header(&mut self, hash: BlockHash) {
        self.best_header = hash;
        let mut branch = Vec::new();
        let mut cursor = hash;
        loop {
            let e = &self.index[&cursor];
            if self.best_chain.get(e.height.0 as usize) == Some(&cursor) {
                break;
            }
            branch.push(cursor);
            // Genesis is at height 0 of every chain, so the walk stops there at the latest.
            cursor = e.header.prev;
        }
        let fork = self.index[&cursor].height.0 as usize;
        self.best_chain.truncate(fork + 1);
        self.best_chain.extend(branch.iter().rev().copied());
    }

    /// Hash of the block at `height` on the best-header chain.
    pub fn best_chain_hash_at(&self, height: Height) -> Option<BlockHash> {
        self.best_chain.get(height.0 as usize).copied()
    }

    /// Height of the newest block of the best-header chain that `hash` has (itself or an
    /// ancestor), or `None` if `hash` is not in the tree. Walks only the part of `hash`'s
    /// branch that is off the best-header chain (nothing for a block on it).
    pub fn best_chain_common_height(&self, hash: &BlockHash) -> Option<Height> {
        let mut e = self.index.get(hash)?;
        loop {
            if self.best_chain_hash_at(e.height) == Some(e.hash) {
                return Some(e.height);
            }
            e = self.index.get(&e.header.prev)?;
        }
    }

    /// Height of the last block shared by the active chain and the best-header chain.
    fn best_fork_height(&self) -> usize {
        // Both chains start at genesis and, once they differ, differ at every greater height:
        // binary search for the last equal height.
        let n = self.active.len().min(self.best_chain.len());
        let (mut lo, mut hi) = (0usize, n);
        // Invariant: active[lo] == best_chain[lo]; every height >= hi differs (or is beyond).
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.active[mid] == self.best_chain[mid] {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The most-work header we know that is not invalid; its chain is what sync downloads.
    pub fn best_header(&self) -> &BlockEntry {
        &self.index[&self.best_header]
    }

    /// Blocks on the best header chain whose bodies we lack, oldest first, at most `max`.
    /// Bodies that arrived out of order are skipped, so a gap below them is still listed.
    /// Only the first [`MISSING_BLOCKS_WINDOW`] heights above the active chain's fork with
    /// the best-header chain are looked at (the download window), so the cost does not grow
    /// with the length of the gap.
    pub fn missing_blocks(&self, max: usize) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let fork = self.best_fork_height();
        let end = self
            .best_chain
            .len()
            .min(fork.saturating_add(1).saturating_add(MISSING_BLOCKS_WINDOW));
        for hash in &self.best_chain[fork + 1..end] {
            if out.len() >= max {
                break;
            }
            if self.index[hash].status == Status::HeaderOnly {
                out.push(*hash);
            }
        }
        out
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors (both in the tree). A
    /// descendant on the active or best-header chain is answered by height lookups; otherwise
    /// only its branch off those chains is walked.
    pub fn is_ancestor(&self, ancestor: &BlockHash, descendant: &BlockHash) -> bool {
        let (Some(a), Some(mut d)) = (self.index.get(ancestor), self.index.get(descendant)) else {
            return false;
        };
        loop {
            if d.height < a.height {
                return false;
            }
            if self.hash_at(d.height) == Some(d.hash) {
                return self.hash_at(a.height) == Some(a.hash);
            }
            if self.best_chain_hash_at(d.height) == Some(d.hash) {
                return self.best_chain_hash_at(a.height) == Some(a.hash);
            }
            if d.height == a.height {
                return d.hash == a.hash;
            }
            match self.index.get(&d.header.prev) {
                Some(p) => d = p,
                None => return false,
            }
        }
    }

    /// Whether the block's body is stored (in memory or in the host's store) and not known
    /// invalid.
    pub fn has_block(&self, hash: &BlockHash) -> bool {
        self.index
            .get(hash)
            .is_some_and(|e| e.status == Status::HaveData)
    }

    /// A block locator: hashes of the active chain from the tip back, dense at first and
    /// then doubling the step, ending at genesis.
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let mut h = self.tip().height.0 as i64;
        let mut step = 1i64;
        while h > 0 {
            out.push(self.active[h as usize]);
            if out.len() >= 10 {
                step *= 2;
            }
            h -= step;
        }
        out.push(self.genesis);
        out
    }

    /// A block locator along the best-header chain (bodies may be missing): the best header
    /// back, dense at first and then doubling the step, ending at genesis; at most
    /// `max` hashes (at least 2). Cost is O(`max`), whatever the chain's length.
    pub fn best_header_locator(&self, max: usize) -> Vec<BlockHash> {
        let max = max.max(2);
        let mut out = Vec::new();
        let mut h = self.best_header().height.0 as i64;
        let mut step = 1i64;
        while h > 0 && out.len() < max - 1 {
            out.push(self.best_chain[h as usize]);
            if out.len() >= 10 {
                step = step.saturating_mul(2);
            }
            h -= step;
        }
        out.push(self.genesis);
        out
    }

    /// The newest locator entry on our active chain (the fork point with the asker).
    pub fn find_fork(&self, locator: &[BlockHash]) -> BlockHash {
        locator
            .iter()
            .find(|h| self.is_active(h))
            .copied()
            .unwrap_or(self.genesis)
    }

    /// Up to `max` active headers after `from`.
    pub fn headers_after(&self, from: &BlockHash, max: usize) -> Vec<BlockHeader> {
        let Some(e) = self.index.get(from).filter(|_| self.is_active(from)) else {
            return Vec::new();
        };
        let start = e.height.0 as usize + 1;
        self.active
            .iter()
            .skip(start)
            .take(max)
            .map(|h| self.index[h].header)
            .collect()
    }

    /// Hashes per second spent on the active chain over its last `window` blocks: the work
    /// they represent divided by the time they took. 0 with fewer than two blocks.
    pub fn hashrate_estimate(&self, window: u64) -> f64 {
        let tip = self.tip();
        let n = tip.height.0.min(window);
        if n == 0 {
            return 0.0;
        }
        let Some(start) = self
            .hash_at(Height(tip.height.0 - n))
            .and_then(|h| self.index.get(&h))
        else {
            return 0.0;
        };
        let secs = tip.header.time.saturating_sub(start.header.time).max(1) as f64;
        (tip.work.to_f64_approx() - start.work.to_f64_approx()) / secs
    }

    /// Total subsidy issued by the active chain (genesis issues nothing).
    pub fn issued(&self) -> u128 {
        (1..=self.tip().height.0)
            .map(|h| u128::from(self.params.subsidy(Height(h)).units()))
            .sum()
    }
}
