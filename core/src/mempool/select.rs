//! Block template selection in O(n log n).
//!
//! Two greedy selections run on an index of the pool and the one collecting more fees wins:
//!
//! - **By ancestor fee rate** (child pays for parent): take the transaction whose package —
//!   itself and its not yet selected pool ancestors — has the highest fee rate, add the whole
//!   package (ancestors first), then lower the packages of the descendants of what was added.
//!   The ancestor and descendant limits bound a package and a descendant set to 25
//!   transactions, so each transaction is added once and updates at most 24 descendants; a
//!   binary heap with lazy deletion (stale entries carry an old version number) makes each
//!   update O(log n).
//! - **By own fee rate**: repeatedly take the highest-rate transaction all of whose pool
//!   parents are in (a heap of ready transactions). This is what a miner ignoring packages
//!   would do, and it wins where the block is nearly full and packages do not fit well.
//!
//! Both keep every transaction after its pool parents and stay within the byte and count
//! budgets, so either is a valid block body.

use alloc::collections::BinaryHeap;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::{Mempool, MempoolEntry, Package};
use crate::primitives::Txid;

/// A candidate in a heap: its (package) fee over its (package) size, older (lower `seq`)
/// first at equal rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    fee: u64,
    bytes: usize,
    seq: u64,
    index: u32,
    version: u32,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // fee / bytes against other.fee / other.bytes without division.
        let a = u128::from(self.fee) * other.bytes.max(1) as u128;
        let b = u128::from(other.fee) * self.bytes.max(1) as u128;
        a.cmp(&b)
            .then_with(|| other.seq.cmp(&self.seq))
            .then_with(|| other.index.cmp(&self.index))
            .then_with(|| self.version.cmp(&other.version))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The pool as dense arrays (in txid order, the pool's own): entries, and parent and child
/// lists flattened into one array each.
pub(super) struct Graph<'a> {
    entries: Vec<&'a MempoolEntry>,
    parent_at: Vec<u32>,
    parents: Vec<u32>,
    child_at: Vec<u32>,
    children: Vec<u32>,
    /// The smallest transaction: once less room than this is left, nothing more fits.
    min_size: usize,
}

impl<'a> Graph<'a> {
    pub(super) fn new(pool: &'a Mempool) -> Graph<'a> {
        // One pass over the map (in txid order); then the parent links as (parent txid,
        // child) pairs, sorted and merged with the sorted txids: sequential memory access
        // instead of a lookup per link.
        let mut entries: Vec<&MempoolEntry> = Vec::with_capacity(pool.entries.len());
        let mut links: Vec<(Txid, u32)> = Vec::new();
        for (i, e) in pool.entries.values().enumerate() {
            entries.push(e);
            links.extend(e.parents.iter().map(|p| (*p, i as u32)));
        }
        links.sort_unstable();
        let n = entries.len();
        // Children: `links` is grouped by parent, in txid order like `entries`.
        let mut child_at = Vec::with_capacity(n + 1);
        let mut children = Vec::with_capacity(links.len());
        let mut parent_count = vec![0u32; n + 1];
        let mut k = 0;
        for e in &entries {
            child_at.push(children.len() as u32);
            while k < links.len() && links[k].0 == e.txid {
                children.push(links[k].1);
                parent_count[links[k].1 as usize] += 1;
                k += 1;
            }
        }
        child_at.push(children.len() as u32);
        assert_eq!(k, links.len(), "every pool parent is a pool entry");
        // Parents by counting sort over the child lists.
        let mut parent_at = Vec::with_capacity(n + 1);
        let mut at = 0u32;
        for c in &parent_count {
            parent_at.push(at);
            at += c;
        }
        let mut fill = parent_at.clone();
        let mut parents = vec![0u32; children.len()];
        for p in 0..n {
            for &c in &children[child_at[p] as usize..child_at[p + 1] as usize] {
                parents[fill[c as usize] as usize] = p as u32;
                fill[c as usize] += 1;
            }
        }
        let min_size = entries.iter().map(|e| e.size).min().unwrap_or(0);
        Graph {
            entries,
            parent_at,
            parents,
            child_at,
            children,
            min_size,
        }
    }

    fn parents(&self, i: usize) -> &[u32] {
        &self.parents[self.parent_at[i] as usize..self.parent_at[i + 1] as usize]
    }

    fn children(&self, i: usize) -> &[u32] {
        &self.children[self.child_at[i] as usize..self.child_at[i + 1] as usize]
    }
}

/// What a selection chose, in block order, with its fees and the heap operations it took.
pub(crate) struct Selection {
    pub order: Vec<u32>,
    pub fees: u64,
    pub heap_ops: usize,
}

/// Budget bookkeeping shared by both selections.
struct Budget {
    max_bytes: usize,
    max_txs: usize,
    bytes: usize,
    txs: usize,
}

impl Budget {
    /// Nothing of at least `min_size` bytes fits any more.
    fn full(&self, min_size: usize) -> bool {
        !self.fits(min_size, 1)
    }

    fn fits(&self, bytes: usize, txs: usize) -> bool {
        self.bytes.saturating_add(bytes) <= self.max_bytes
            && self.txs.saturating_add(txs) <= self.max_txs
    }
}

pub(super) fn by_ancestor_rate(g: &Graph<'_>, max_bytes: usize, max_txs: usize) -> Selection {
    let n = g.entries.len();
    // The package of each transaction not yet selected: itself and its unselected ancestors.
    let mut package: Vec<_> = g.entries.iter().map(|e| e.ancestors).collect();
    let mut version = vec![0u32; n];
    let mut selected = vec![false; n];
    let mut heap: BinaryHeap<Candidate> = (0..n)
        .map(|i| Candidate {
            fee: package[i].fee,
            bytes: package[i].bytes,
            seq: g.entries[i].seq,
            index: i as u32,
            version: 0,
        })
        .collect();
    let mut budget = Budget {
        max_bytes,
        max_txs,
        bytes: 0,
        txs: 0,
    };
    let mut out = Selection {
        order: Vec::new(),
        fees: 0,
        heap_ops: n,
    };
    // Scratch space reused across packages.
    let mut members: Vec<u32> = Vec::new();
    let mut stack: Vec<u32> = Vec::new();
    let mut touched: Vec<u32> = Vec::new();
    // Epoch marks: `visited[t] == e` means t was seen in walk e.
    let mut visited = vec![0u32; n];
    let mut pushed = vec![0u32; n];
    let mut epoch = 0u32;
    while !budget.full(g.min_size) {
        let Some(c) = heap.pop() else { break };
        out.heap_ops += 1;
        let i = c.index as usize;
        if selected[i] || c.version != version[i] {
            continue;
        }
        if !budget.fits(package[i].bytes, package[i].count) {
            // It may fit later if its ancestors are selected by another package (its
            // package then shrinks and it is pushed again).
            continue;
        }
        // The package: i and its unselected ancestors.
        epoch += 1;
        members.clear();
        stack.clear();
        stack.push(c.index);
        while let Some(t) = stack.pop() {
            if visited[t as usize] == epoch || selected[t as usize] {
                continue;
            }
            visited[t as usize] = epoch;
            members.push(t);
            stack.extend(g.parents(t as usize).iter().copied());
        }
        // Ancestors first: an ancestor's ancestry is a strict subset of its descendant's.
        members.sort_by_key(|&t| (g.entries[t as usize].ancestors.count, t));
        for &t in &members {
            let e = g.entries[t as usize];
            selected[t as usize] = true;
            budget.bytes += e.size;
            budget.txs += 1;
            out.fees += e.fee.units();
            out.order.push(t);
        }
        debug_assert_eq!(members.len(), package[i].count, "package bookkeeping");
        // Their unselected descendants lose them from their packages: each descendant loses
        // each member once (a walk per member), and is pushed again once (per package).
        epoch += 1;
        let this_package = epoch;
        touched.clear();
        for &t in &members {
            let own = Package::one(g.entries[t as usize].fee, g.entries[t as usize].size);
            epoch += 1;
            let this_walk = epoch;
            stack.clear();
            stack.extend(g.children(t as usize).iter().copied());
            while let Some(d) = stack.pop() {
                let du = d as usize;
                if visited[du] == this_walk {
                    continue;
                }
                visited[du] = this_walk;
                stack.extend(g.children(du).iter().copied());
                // A selected descendant (another member) is walked through, not updated.
                if selected[du] {
                    continue;
                }
                if pushed[du] != this_package {
                    pushed[du] = this_package;
                    touched.push(d);
                }
                package[du].sub(own);
            }
        }
        for &d in &touched {
            let du = d as usize;
            version[du] += 1;
            heap.push(Candidate {
                fee: package[du].fee,
                bytes: package[du].bytes,
                seq: g.entries[du].seq,
                index: d,
                version: version[du],
            });
            out.heap_ops += 1;
        }
    }
    out
}

fn by_own_rate(g: &Graph<'_>, max_bytes: usize, max_txs: usize) -> Selection {
    let n = g.entries.len();
    let mut missing: Vec<usize> = (0..n).map(|i| g.parents(i).len()).collect();
    let candidate = |i: usize| Candidate {
        fee: g.entries[i].fee.units(),
        bytes: g.entries[i].size,
        seq: g.entries[i].seq,
        index: i as u32,
        version: 0,
    };
    let mut heap: BinaryHeap<Candidate> =
        (0..n).filter(|&i| missing[i] == 0).map(candidate).collect();
    let mut budget = Budget {
        max_bytes,
        max_txs,
        bytes: 0,
        txs: 0,
    };
    let mut out = Selection {
        order: Vec::new(),
        fees: 0,
        heap_ops: heap.len(),
    };
    while !budget.full(g.min_size) {
        let Some(c) = heap.pop() else { break };
        out.heap_ops += 1;
        let i = c.index as usize;
        let e = g.entries[i];
        if !budget.fits(e.size, 1) {
            // Dropped, and its descendants never become ready.
            continue;
        }
        budget.bytes += e.size;
        budget.txs += 1;
        out.fees += e.fee.units();
        out.order.push(c.index);
        for &k in g.children(i) {
            missing[k as usize] -= 1;
            if missing[k as usize] == 0 {
                heap.push(candidate(k as usize));
                out.heap_ops += 1;
            }
        }
    }
    out
}

impl Mempool {
    /// Transactions for a block template, a transaction only after its pool parents, within
    /// `max_bytes` and `max_txs`: the better (more fees; at a tie the first) of the
    /// selection by ancestor fee rate and the selection by own fee rate (module docs).
    pub fn select(&self, max_bytes: usize, max_txs: usize) -> Vec<&MempoolEntry> {
        self.select_counted(max_bytes, max_txs).0
    }

    /// [`Mempool::select`] and the heap operations both selections took together.
    pub(crate) fn select_counted(
        &self,
        max_bytes: usize,
        max_txs: usize,
    ) -> (Vec<&MempoolEntry>, usize) {
        let g = Graph::new(self);
        let a = by_ancestor_rate(&g, max_bytes, max_txs);
        let b = by_own_rate(&g, max_bytes, max_txs);
        let ops = a.heap_ops + b.heap_ops;
        let best = if b.fees > a.fees { b } else { a };
        let chosen = best
            .order
            .into_iter()
            .map(|i| g.entries[i as usize])
            .collect();
        (chosen, ops)
    }
}
