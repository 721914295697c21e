//! Native mining threads: each works a disjoint nonce slice of the current template with a
//! [`FastJob`] (the SHA-NI kernel when the CPU has it, else core's miner job), in short
//! chunks, and drops stale work as soon as a new template arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use tabcoin_core::miner::{BlockTemplate, NonceRange, Step};
use tabcoin_core::primitives::BlockHeader;
use tokio::sync::{mpsc, watch};

use crate::node_task::ToNode;
use crate::sha_ni::{self, FastJob};

/// Nonces per chunk between checks for a new template (a few milliseconds of work).
const CHUNK: u64 = 1 << 15;

/// Running miner threads.
#[derive(Debug)]
pub struct Miner {
    pub(crate) templates: watch::Sender<Option<(u64, BlockTemplate)>>,
    /// Hashes tried by all threads.
    pub hashes: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

/// What a miner thread does with a header that meets its target.
type Found = Arc<dyn Fn(BlockHeader) + Send + Sync>;

impl Miner {
    pub(crate) fn start(
        threads: usize,
        to_node: mpsc::Sender<ToNode>,
        shutdown: watch::Receiver<bool>,
    ) -> Miner {
        Miner::spawn(
            threads,
            move |header| {
                let _ = to_node.blocking_send(ToNode::Mined(header));
            },
            shutdown,
        )
    }

    /// `threads` miner threads (at least one) that hand each header they find to `found`
    /// (called on the miner thread) and wait for the next template: what `--mine` runs,
    /// without a node (benches measure them this way). They idle until [`Miner::mine`].
    pub fn spawn(
        threads: usize,
        found: impl Fn(BlockHeader) + Send + Sync + 'static,
        shutdown: watch::Receiver<bool>,
    ) -> Miner {
        let found: Found = Arc::new(found);
        let (templates, rx) = watch::channel::<Option<(u64, BlockTemplate)>>(None);
        let hashes = Arc::new(AtomicU64::new(0));
        let n = threads.max(1);
        tracing::info!(
            threads = n,
            backend = sha_ni::backend(),
            encoding = sha_ni::encoding().unwrap_or("-"),
            "mining"
        );
        let handles = (0..n)
            .map(|i| {
                let mut rx = rx.clone();
                let shutdown = shutdown.clone();
                let found = found.clone();
                let hashes = hashes.clone();
                std::thread::Builder::new()
                    .name(format!("miner-{i}"))
                    .spawn(move || {
                        mine_loop(i as u32, n as u32, &mut rx, &shutdown, &*found, &hashes)
                    })
                    .expect("spawning a thread only fails when the OS is out of resources")
            })
            .collect();
        Miner {
            templates,
            hashes,
            threads: handles,
        }
    }

    /// Every thread drops its work and mines `template` (generation `generation`).
    pub fn mine(&self, generation: u64, template: BlockTemplate) {
        self.templates.send_replace(Some((generation, template)));
    }

    /// Stops the threads (once they see the templates closed or `shutdown`) and waits.
    pub fn join(self) {
        drop(self.templates);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn mine_loop(
    worker: u32,
    workers: u32,
    rx: &mut watch::Receiver<Option<(u64, BlockTemplate)>>,
    shutdown: &watch::Receiver<bool>,
    found: &(dyn Fn(BlockHeader) + Send + Sync),
    hashes: &AtomicU64,
) {
    let mut job: Option<(u64, FastJob)> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if rx.has_changed().unwrap_or(true) {
            if rx.has_changed().is_err() {
                return;
            }
            let current = rx.borrow_and_update().clone();
            job = current.and_then(|(generation, t)| {
                #[cfg(feature = "test-hooks")]
                let t = test_hooks::skew(t);
                FastJob::new(t.block.header, NonceRange::slice(worker, workers))
                    .ok()
                    .map(|j| (generation, j))
            });
        }
        let Some((_, j)) = job.as_mut() else {
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        };
        let before = j.hashes();
        let step = j.step(CHUNK);
        hashes.fetch_add(j.hashes() - before, Ordering::Relaxed);
        match step {
            Step::Found(header) => {
                #[cfg(feature = "test-hooks")]
                test_hooks::found(&header);
                found(header);
                // Wait for the template of the next height.
                job = None;
            }
            Step::Continue => {}
            Step::Exhausted => job = None,
        }
    }
}

/// Narrow hooks for the relay's integration tests (feature `test-hooks`, which only the
/// tests enable): they make the miner produce a block the node really rejects, so the tests
/// can reach the node's recovery path. Process-wide: a test that arms them runs alone in its
/// own test binary.
#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tabcoin_core::miner::BlockTemplate;
    use tabcoin_core::primitives::BlockHeader;

    /// Seconds added to the time of the next template a miner thread takes up (once).
    static SKEW_NEXT_S: AtomicU64 = AtomicU64::new(0);
    /// The time of the skewed template, until a header for it is found.
    static SKEWED_TIME: AtomicU64 = AtomicU64::new(0);
    /// Headers found for a skewed template.
    static SKEWED_FOUND: AtomicU64 = AtomicU64::new(0);

    /// The next template taken up is stamped `seconds` later than the node stamped it.
    pub fn skew_next_template(seconds: u64) {
        SKEW_NEXT_S.store(seconds, Ordering::SeqCst);
    }

    /// How many headers were found (and handed to the node) for skewed templates.
    pub fn skewed_found() -> u64 {
        SKEWED_FOUND.load(Ordering::SeqCst)
    }

    pub(super) fn skew(mut t: BlockTemplate) -> BlockTemplate {
        let s = SKEW_NEXT_S.swap(0, Ordering::SeqCst);
        if s > 0 {
            t.block.header.time = t.block.header.time.saturating_add(s);
            SKEWED_TIME.store(t.block.header.time, Ordering::SeqCst);
        }
        t
    }

    pub(super) fn found(header: &BlockHeader) {
        let skewed = SKEWED_TIME.load(Ordering::SeqCst);
        if skewed != 0 && header.time == skewed {
            SKEWED_TIME.store(0, Ordering::SeqCst);
            SKEWED_FOUND.fetch_add(1, Ordering::SeqCst);
        }
    }
}
