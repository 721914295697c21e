//! Rebuilding a chain from what a store holds: headers, not bodies.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Reverse;

use super::{BlockEntry, Candidate, Chain, DEFAULT_BODY_CACHE_BYTES, LoadError, Status};
use crate::params::Params;
use crate::primitives::{Block, BlockHash, BlockHeader};
use crate::store::ChangeSet;
use crate::validation::{check_block, check_header};

impl Chain {
    /// Rebuilds the state a store holds: the header tree from `stored.headers` (and from
    /// `stored.blocks`, if a host still hands bodies back), the UTXO set and the tip. Headers
    /// are re-checked statelessly (proof of work) and must link to genesis; bodies, if
    /// given, are checked statelessly too and only the newest fill the body cache. The UTXO
    /// set and tip are taken as stored; undo data is read from the store when a reorg needs
    /// it, so loading reads no body and no undo data. A switch of branches a crash
    /// interrupted leaves a stored tip below the most-work chain: [`Chain::resume`] goes on
    /// with it.
    pub fn load(params: Params, stored: ChangeSet) -> Result<Chain, LoadError> {
        Self::load_with_cache(params, stored, DEFAULT_BODY_CACHE_BYTES)
    }

    /// [`Chain::load`] with a body cache of `cache_bytes`.
    pub fn load_with_cache(
        params: Params,
        stored: ChangeSet,
        cache_bytes: usize,
    ) -> Result<Chain, LoadError> {
        let mut chain = Chain::new(params);
        chain.bodies.set_budget(cache_bytes);
        let mut prune_state = ChangeSet {
            prune_height: stored.prune_height,
            sizes: stored.sizes.clone(),
            ..ChangeSet::default()
        };
        for b in &stored.blocks {
            let size = u32::try_from(crate::encode::Encode::encoded_len(b)).unwrap_or(u32::MAX);
            prune_state.sizes.entry(b.hash()).or_insert(size);
        }
        let mut pending: BTreeMap<BlockHash, Vec<(BlockHeader, Option<Block>)>> = BTreeMap::new();
        let items = stored
            .headers
            .into_iter()
            .map(|h| (h, None))
            .chain(stored.blocks.into_iter().map(|b| (b.header, Some(b))));
        for (header, body) in items {
            if header.hash() == chain.genesis {
                continue;
            }
            if header.prev == BlockHash::ZERO {
                return Err(LoadError::WrongNetwork);
            }
            pending.entry(header.prev).or_default().push((header, body));
        }
        // The store keeps undo data of active blocks only.
        let mut undo = stored.undo;
        // Attach stored blocks parent-first.
        let mut queue = alloc::vec![chain.genesis];
        while let Some(parent) = queue.pop() {
            for (header, body) in pending.remove(&parent).unwrap_or_default() {
                let hash = header.hash();
                if chain.index.contains_key(&hash) {
                    // Both as a header and as a body: the body fills the cache below.
                    if let Some(body) = body {
                        chain
                            .bodies
                            .insert(hash, body, undo.remove(&hash).flatten());
                        chain.bodies.trim();
                    }
                    continue;
                }
                let checked = match &body {
                    Some(block) => check_block(block, &chain.params).map(|_| ()),
                    None => check_header(&header, &chain.params),
                };
                if let Err(error) = checked {
                    return Err(LoadError::BadBlock { hash, error });
                }
                let entry = chain.make_entry(&header, Status::HaveData);
                if stored.invalid.contains(&hash) {
                    chain.index.insert(
                        hash,
                        BlockEntry {
                            status: Status::Invalid,
                            ..entry
                        },
                    );
                } else {
                    chain.index.insert(hash, entry);
                }
                chain.children.entry(parent).or_default().push(hash);
                if let Some(body) = body {
                    chain
                        .bodies
                        .insert(hash, body, undo.remove(&hash).flatten());
                    chain.bodies.trim();
                }
                queue.push(hash);
            }
        }
        // What is left does not link to genesis through the stored headers: bodies of blocks
        // whose parent was still a header when they arrived (out of order, from several
        // peers), stored before the process died and before that parent came. They are
        // left out, as if never downloaded: the node asks for them again once it has their
        // ancestors. The active chain cannot be among them (its tip is checked below).
        drop(pending);
        // Descendants of invalid blocks are invalid; the rest are candidates.
        let hashes: Vec<BlockHash> = chain.index.keys().copied().collect();
        for hash in hashes {
            if chain.index[&hash].status == Status::Invalid {
                chain.mark_invalid(hash);
            }
        }
        let candidates: Vec<Candidate> = chain
            .index
            .values()
            .filter(|e| e.status == Status::HaveData)
            .map(|e| (e.work, Reverse(e.seq), e.hash))
            .collect();
        chain.candidates.extend(candidates);

        let tip = stored.tip.unwrap_or(chain.genesis);
        let tip_entry = chain.index.get(&tip).ok_or(LoadError::Inconsistent {
            reason: "tip is not a stored block",
        })?;
        if tip_entry.status == Status::Invalid {
            return Err(LoadError::Inconsistent {
                reason: "tip is marked invalid",
            });
        }
        let mut active = Vec::with_capacity(tip_entry.height.0 as usize + 1);
        let mut cursor = tip;
        loop {
            active.push(cursor);
            if cursor == chain.genesis {
                break;
            }
            cursor = chain.index[&cursor].header.prev;
        }
        active.reverse();
        chain.active = active;
        chain.recompute_best_header();
        chain.prune_load(&prune_state);
        chain.utxo = stored
            .utxo
            .into_iter()
            .filter_map(|(op, coin)| Some((op, coin?)))
            .collect();
        Ok(chain)
    }
}
