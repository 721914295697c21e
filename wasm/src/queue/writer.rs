//! [`Writer`]: the write queue driven over an [`IdbStore`] on the tab's event loop, one
//! transaction at a time; between batches, when nothing is unstored, it folds the UTXO log
//! into a snapshot of the node's set (`idb/utxo.rs`).

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::oneshot;
use tabcoin_core::primitives::{Block, BlockHash};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::utxo::BlockUndo;

use super::{Limits, WriteQueue};
use crate::idb::{IdbStore, StoreError};

/// What the writer tells its host after each transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A batch committed; `tip` is the stored tip when the batch moved it.
    Stored {
        tip: Option<BlockHash>,
        unstored_blocks: usize,
    },
    /// A write failed; nothing more is written.
    Failed(StoreError),
}

type Notify = Rc<dyn Fn(&Notice)>;

/// Where the writer gets the node's UTXO set when it folds the store's log into a snapshot
/// ([`crate::idb::snapshot_chunks`] of it). Called only while nothing is unstored, so the
/// set is the one the store holds after its last commit, with the tip that commit stored
/// (a source checks its node is there); `None` when it cannot be had right now (the fold
/// waits until the queue drains again after another commit).
pub type SnapshotSource = Rc<dyn Fn(Option<BlockHash>) -> Option<Vec<Vec<u8>>>>;

struct State {
    queue: WriteQueue,
    store: IdbStore,
    failed: Option<StoreError>,
    running: bool,
    stored_tip: Option<BlockHash>,
    /// Woken when the queue is no longer full.
    room: Vec<oneshot::Sender<()>>,
    /// Test-only: [`Writer::hold`] makes [`Writer::room`] wait as if the queue were full.
    held: bool,
    /// Woken when nothing is unstored (or the writer failed).
    drained: Vec<oneshot::Sender<()>>,
    notify: Option<Notify>,
    transactions: u64,
    /// The batch being written, so reads (`loads`) see it before its transaction commits.
    writing: Option<Rc<ChangeSet>>,
    snapshot: Option<SnapshotSource>,
    /// The UTXO log is overdue for a fold: [`Writer::room`] waits (the node is held back)
    /// until the queue drains and the fold is written.
    fold_overdue: bool,
    /// The snapshot source could not give the set: no fold until the next batch commits.
    fold_skipped: bool,
    /// Snapshots written so far.
    snapshots: u64,
}

impl State {
    /// A write failed: later ChangeSets build on state the store does not have, so nothing
    /// more is written.
    fn fail(&mut self, e: StoreError) {
        self.queue.failed();
        self.failed = Some(e);
        self.running = false;
    }

    /// Whom a finished write wakes: those waiting for room once the queue has it (or the
    /// writer failed), and those waiting for the drain if it failed.
    fn woken(&mut self) -> Vec<oneshot::Sender<()>> {
        let mut wake = Vec::new();
        if !self.queue.is_full() || self.failed.is_some() {
            wake.append(&mut self.room);
        }
        if self.failed.is_some() {
            wake.append(&mut self.drained);
        }
        wake
    }
}

fn wake(waiters: Vec<oneshot::Sender<()>>) {
    for w in waiters {
        let _ = w.send(());
    }
}

/// The async writer: one transaction at a time, in order, each a merged [`Batch`].
#[derive(Clone)]
pub struct Writer {
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("queue", &self.state.borrow().queue)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub fn new(store: IdbStore, limits: Limits) -> Writer {
        Writer {
            state: Rc::new(RefCell::new(State {
                queue: WriteQueue::new(limits),
                store,
                failed: None,
                running: false,
                stored_tip: None,
                room: Vec::new(),
                held: false,
                drained: Vec::new(),
                notify: None,
                transactions: 0,
                writing: None,
                snapshot: None,
                fold_overdue: false,
                fold_skipped: false,
                snapshots: 0,
            })),
        }
    }

    /// Lets the writer fold the store's UTXO log into snapshots of the set `source` gives
    /// (`idb/utxo.rs`). Without a source the log only grows (tests of the queue alone).
    pub fn set_snapshot_source(&self, source: SnapshotSource) {
        self.state.borrow_mut().snapshot = Some(source);
    }

    /// UTXO snapshots written so far.
    pub fn snapshots(&self) -> u64 {
        self.state.borrow().snapshots
    }

    /// Called after every transaction, outside any borrow of the writer.
    pub fn set_notify(&self, f: impl Fn(&Notice) + 'static) {
        self.state.borrow_mut().notify = Some(Rc::new(f));
    }

    /// Queues `cs` and starts writing if idle. Dropped once the writer has failed.
    pub fn push(&self, cs: ChangeSet) {
        {
            let mut s = self.state.borrow_mut();
            if s.failed.is_some() {
                return;
            }
            s.queue.push(cs);
        }
        self.kick();
    }

    pub fn unstored_blocks(&self) -> usize {
        self.state.borrow().queue.blocks()
    }

    pub fn unstored_bytes(&self) -> usize {
        self.state.borrow().queue.bytes()
    }

    pub fn is_full(&self) -> bool {
        self.state.borrow().queue.is_full()
    }

    pub fn within_synced_slack(&self) -> bool {
        self.state.borrow().queue.within_synced_slack()
    }

    pub fn failed(&self) -> Option<StoreError> {
        self.state.borrow().failed.clone()
    }

    /// The last tip a committed transaction wrote.
    pub fn stored_tip(&self) -> Option<BlockHash> {
        self.state.borrow().stored_tip
    }

    /// What the ChangeSets not yet committed say about block `hash`, newest first: its body
    /// if one holds it, and the undo data the newest of them sets (`Some(None)`: deleted).
    pub fn unstored_block(&self, hash: &BlockHash) -> (Option<Block>, Option<Option<BlockUndo>>) {
        let s = self.state.borrow();
        let waiting = s.queue.queue.iter().rev().map(|q| &q.cs);
        crate::loads::newest_first(waiting.chain(s.writing.as_deref()), hash)
    }

    /// The newest unstored block body that `f` picks (queued or being written).
    pub fn find_unstored(&self, mut f: impl FnMut(&Block) -> bool) -> Option<Block> {
        let s = self.state.borrow();
        let waiting = s.queue.queue.iter().rev().map(|q| &q.cs);
        waiting
            .chain(s.writing.as_deref())
            .find_map(|cs| cs.blocks.iter().rev().find(|b| f(b)).cloned())
    }

    /// IndexedDB transactions committed so far.
    pub fn transactions(&self) -> u64 {
        self.state.borrow().transactions
    }

    /// Resolves once the queue is not full (at once if it is not).
    pub async fn room(&self) {
        loop {
            let rx = {
                let mut s = self.state.borrow_mut();
                if (!s.queue.is_full() && !s.held && !s.fold_overdue) || s.failed.is_some() {
                    return;
                }
                let (tx, rx) = oneshot::channel();
                s.room.push(tx);
                rx
            };
            let _ = rx.await;
        }
    }

    /// Test-only (the page never calls it; `BrowserNode.testHoldStore`): while held,
    /// [`room`](Writer::room) waits as if the queue were full, so a test can hold a tab's
    /// peers' messages back for as long as it likes. Releasing wakes the waiters.
    pub fn hold(&self, held: bool) {
        let waiters = {
            let mut s = self.state.borrow_mut();
            s.held = held;
            if held {
                Vec::new()
            } else {
                std::mem::take(&mut s.room)
            }
        };
        wake(waiters);
    }

    /// Resolves once everything queued is committed; the store's error if a write failed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let rx = {
            let mut s = self.state.borrow_mut();
            if let Some(e) = &s.failed {
                return Err(e.clone());
            }
            if s.queue.blocks() == 0 && s.queue.queued() == 0 && !s.queue.is_writing() {
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            s.drained.push(tx);
            rx
        };
        self.kick();
        let _ = rx.await;
        match self.failed() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn kick(&self) {
        {
            let mut s = self.state.borrow_mut();
            if s.running || s.failed.is_some() || s.queue.queued() == 0 {
                return;
            }
            s.running = true;
        }
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move { this.run().await });
    }

    /// Whether the UTXO log is due for a fold now: nothing queued or in flight, a source,
    /// and a log that outweighs the stored snapshot.
    fn fold_due(&self, s: &State) -> bool {
        s.snapshot.is_some()
            && s.failed.is_none()
            && !s.fold_skipped
            && s.queue.queued() == 0
            && !s.queue.is_writing()
            && s.store
                .utxo_sizes()
                .due(s.queue.limits().utxo_log_min as u64)
    }

    /// Writes a snapshot of the node's set in place of the store's UTXO log. Called with
    /// nothing unstored, synchronously up to the write's requests, so the set is exactly the
    /// stored one. Returns false if the write failed (the writer has stopped, as for a batch).
    async fn fold(&self) -> bool {
        let (store, chunks) = {
            let s = self.state.borrow();
            let Some(chunks) = s.snapshot.as_ref().and_then(|f| f(s.stored_tip)) else {
                drop(s);
                // Not now: skip this fold until the next batch commits, and hold nothing
                // back for it meanwhile.
                let waiters = {
                    let mut s = self.state.borrow_mut();
                    s.fold_overdue = false;
                    s.fold_skipped = true;
                    std::mem::take(&mut s.room)
                };
                wake(waiters);
                return true;
            };
            (s.store.clone(), chunks)
        };
        let result = store.write_snapshot(&chunks).await;
        let (waiters, notify, failed) = {
            let mut s = self.state.borrow_mut();
            let failed = match result {
                Ok(()) => {
                    s.transactions += 1;
                    s.snapshots += 1;
                    s.fold_overdue = false;
                    None
                }
                Err(e) => {
                    s.fail(e.clone());
                    Some(e)
                }
            };
            (s.woken(), s.notify.clone(), failed)
        };
        wake(waiters);
        match failed {
            None => true,
            Some(e) => {
                if let Some(f) = notify {
                    f(&Notice::Failed(e));
                }
                false
            }
        }
    }

    async fn run(self) {
        loop {
            let next = {
                let mut s = self.state.borrow_mut();
                match s.queue.take_batch() {
                    Some(b) => {
                        let changes = Rc::new(b.changes);
                        s.writing = Some(changes.clone());
                        Some((s.store.clone(), changes))
                    }
                    None if self.fold_due(&s) => None,
                    None => {
                        s.running = false;
                        wake(std::mem::take(&mut s.drained));
                        return;
                    }
                }
            };
            let Some((store, changes)) = next else {
                // Nothing unstored and the UTXO log is due: fold it, then go on.
                if self.fold().await {
                    continue;
                }
                return;
            };
            let result = store.persist(&changes).await;
            let (notice, waiters, notify) = {
                let mut s = self.state.borrow_mut();
                s.writing = None;
                let notice = match result {
                    Ok(()) => {
                        s.queue.committed();
                        s.transactions += 1;
                        s.fold_skipped = false;
                        s.fold_overdue = s.snapshot.is_some()
                            && s.store
                                .utxo_sizes()
                                .overdue(s.queue.limits().utxo_log_min as u64);
                        if changes.tip.is_some() {
                            s.stored_tip = changes.tip;
                        }
                        Notice::Stored {
                            tip: changes.tip,
                            unstored_blocks: s.queue.blocks(),
                        }
                    }
                    Err(e) => {
                        s.fail(e.clone());
                        Notice::Failed(e)
                    }
                };
                (notice, s.woken(), s.notify.clone())
            };
            wake(waiters);
            if let Some(f) = notify {
                f(&notice);
            }
            if matches!(notice, Notice::Failed(_)) {
                return;
            }
        }
    }
}
