//! The task that owns the core node, and the wiring around it: HTTP server, outbound
//! dials, the store and the miner. Connection tasks reach it only through bounded channels.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use tabcoin_core::node::{Event, Input, Node, NodeConfig, Output, PeerId};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::BlockHeader;
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::wire::NodeKind;

use crate::api::ApiState;
use crate::budget::{Budget, Charge, OVER_BUDGET, OutboxCharges};
use crate::counter::PerIpCounter;
use crate::miner::Miner;
use crate::snapshot::Publisher;
use crate::store::RedbStore;
use crate::{Config, Limits, conn};

pub(crate) type ConnId = PeerId;

/// Why the relay could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum RelayError {
    Store(crate::store::StoreError),
    Load(tabcoin_core::chain::LoadError),
    Io(std::io::Error),
    Tls(crate::tls::TlsError),
    /// The limits contradict each other (e.g. a memory budget below the inbox budget).
    Limits(String),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::Store(e) => write!(f, "store: {e}"),
            RelayError::Load(e) => write!(f, "loading the chain: {e}"),
            RelayError::Io(e) => write!(f, "io: {e}"),
            RelayError::Tls(e) => write!(f, "tls: {e}"),
            RelayError::Limits(e) => write!(f, "limits: {e}"),
        }
    }
}

impl std::error::Error for RelayError {}

/// One message queued for a connection's writer, with its charge against the memory budget
/// (shared by every queue holding the same buffer).
#[derive(Debug)]
pub(crate) struct Queued {
    pub bytes: Arc<[u8]>,
    _charge: Arc<Charge>,
}

/// The way from the node task to one connection's writer.
#[derive(Debug)]
pub(crate) struct ConnOut {
    pub tx: mpsc::Sender<Queued>,
    /// Bytes queued and not yet written.
    pub queued: Arc<AtomicUsize>,
    /// Tells the connection to close, and why (WebSocket close code and reason).
    pub kill: watch::Sender<Option<CloseReason>>,
}

/// A WebSocket close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseReason {
    pub code: u16,
    pub reason: String,
}

impl CloseReason {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        // A close frame's reason is at most 123 bytes.
        while reason.len() > 120 {
            reason.pop();
        }
        CloseReason { code, reason }
    }
}

/// What connection tasks, dialers, the miner and the API tell the node task.
#[derive(Debug)]
pub(crate) enum ToNode {
    Connected {
        conn: ConnId,
        outbound: bool,
        remote: String,
        out: ConnOut,
    },
    Received {
        conn: ConnId,
        bytes: Vec<u8>,
        /// The message's room in the inbox byte budget, freed once the node handled it.
        permit: OwnedSemaphorePermit,
    },
    Closed {
        conn: ConnId,
    },
    DialFailed {
        url: String,
    },
    Mined(BlockHeader),
}

/// Shared with HTTP handlers and connection tasks.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub to_node: mpsc::Sender<ToNode>,
    pub counter: Arc<PerIpCounter>,
    pub limits: Limits,
    pub next_conn: Arc<AtomicU64>,
    pub shutdown: watch::Receiver<bool>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub refused: Arc<AtomicU64>,
    /// What the HTTP API reads (never the node itself).
    pub api: Arc<ApiState>,
    /// Client TLS for dialing `wss://` relays.
    pub tls_client: Arc<rustls::ClientConfig>,
    /// The memory budget every connection and queue charges.
    pub budget: Arc<Budget>,
    /// Room in the node inbox, in bytes.
    pub inbox: Arc<Semaphore>,
    /// Peers closed because a message was not written within the write deadline.
    pub write_timeouts: Arc<AtomicU64>,
}

impl AppState {
    pub fn conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::SeqCst)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The store: a redb database on disk, or the same in memory (`data_dir: None`), so that
/// the API reads one kind of store.
struct AnyStore(Box<RedbStore>);

impl AnyStore {
    fn load(&mut self) -> Result<ChangeSet, RelayError> {
        self.0.load().map_err(RelayError::Store)
    }

    fn persist(&mut self, cs: &ChangeSet) -> Result<(), String> {
        self.0.persist(cs).map_err(|e| e.to_string())
    }
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if getrandom::getrandom(&mut seed).is_err() {
        // No OS randomness: derive from time and address entropy rather than refuse to run.
        let t = now_ms().to_le_bytes();
        seed =
            tabcoin_core::hash::sha256d_parts(&[&t, &(&seed as *const _ as usize).to_le_bytes()]).0;
    }
    seed
}

/// Counters the metrics show that the node does not hold.
#[derive(Debug, Clone)]
pub(crate) struct RelayInfo {
    pub local_hashes: Arc<AtomicU64>,
    pub refused: Arc<AtomicU64>,
}

pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    let params = Params::for_network(config.network);
    let mut store = AnyStore(Box::new(
        match &config.data_dir {
            Some(dir) => {
                RedbStore::open_with_cache(dir, params.genesis_hash(), config.store_cache_bytes)
            }
            None => RedbStore::in_memory(params.genesis_hash()),
        }
        .map_err(RelayError::Store)?,
    ));
    let seed = match config.identity_seed {
        Some(s) => s,
        None => store
            .0
            .identity_seed(random_seed)
            .map_err(RelayError::Store)?,
    };
    let store_reader = store.0.reader(params.genesis_block());
    let server_tls = match &config.tls {
        Some(files) => Some(crate::tls::server_config(files).map_err(RelayError::Tls)?),
        None => None,
    };
    let tls_client = crate::tls::client_config(&config.tls_ca).map_err(RelayError::Tls)?;
    let private_listener = match config.private_api {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(RelayError::Io)?,
        ),
        None => None,
    };
    let stored = store.load()?;
    let mut nc = NodeConfig::new(NodeKind::Relay, seed);
    nc.public_url = config.public_url.clone();
    nc.bootstrap = config.peers.clone();
    nc.target_outbound = config.target_outbound;
    nc.max_inbound = config.limits.max_connections;
    nc.mining_key = config.mining.as_ref().map(|m| m.address);
    nc.agent = format!("tabcoin-relay/{}", env!("CARGO_PKG_VERSION"));
    nc.dial_policy = tabcoin_core::dial::DialPolicy::relay(config.limits.allow_local_dial);
    nc.prune_bytes = config.prune_bytes;
    nc.body_cache_bytes = config.body_cache_bytes;
    nc.parallel_verify = config.verify_threads > 1;
    let mut node = Node::new(nc, params.clone(), stored).map_err(RelayError::Load)?;

    let local = listener.local_addr().map_err(RelayError::Io)?;
    info!(
        "tabcoin relay on {} network, tip {} at height {}, node id {} — open {}",
        params.name,
        node.chain().tip().hash,
        node.chain().height(),
        node.node_id(),
        crate::display_url(local)
    );

    let limits = &config.limits;
    let budget = Budget::new(limits.max_memory);
    // The inbox must hold at least one largest message, or a peer sending one would wait
    // forever; its bytes are set aside from the budget once, here.
    let inbox_bytes = limits
        .inbox_bytes
        .max(limits.max_message_bytes)
        .min(Semaphore::MAX_PERMITS);
    let inbox_charge = budget.reserve(inbox_bytes).ok_or_else(|| {
        RelayError::Limits(format!(
            "the memory budget ({} bytes) is smaller than the inbox ({inbox_bytes} bytes)",
            limits.max_memory
        ))
    })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (to_node, mut inbox) = mpsc::channel::<ToNode>(4_096);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let counter = Arc::new(PerIpCounter::default());
    let refused = Arc::new(AtomicU64::new(0));
    let miner = config
        .mining
        .as_ref()
        .map(|m| Miner::start(m.threads, to_node.clone(), shutdown_rx.clone()));
    let local_hashes = miner
        .as_ref()
        .map_or_else(|| Arc::new(AtomicU64::new(0)), |m| m.hashes.clone());
    let (mut publisher, snapshot) = Publisher::new(private_listener.is_some());
    publisher.after_outputs(&node);
    let api = Arc::new(ApiState::new(
        snapshot,
        store_reader,
        config.proxies.clone(),
        crate::http_policy::OriginPolicy::new(
            &config.allowed_origins,
            config.public_url.as_deref(),
        ),
        params.address_prefix,
        local_hashes.clone(),
        config.mining.as_ref().map_or(0, |m| m.threads),
        counter.clone(),
        refused.clone(),
    ));
    let state = AppState {
        to_node: to_node.clone(),
        counter: counter.clone(),
        limits: config.limits.clone(),
        next_conn: Arc::new(AtomicU64::new(1)),
        shutdown: shutdown_rx.clone(),
        metrics: recorder.handle(),
        refused: refused.clone(),
        api,
        tls_client,
        budget: budget.clone(),
        inbox: Arc::new(Semaphore::new(inbox_bytes)),
        write_timeouts: Arc::new(AtomicU64::new(0)),
    };
    let info = RelayInfo {
        local_hashes,
        refused: refused.clone(),
    };

    let app = crate::server::with_limits(
        crate::api::router(state.clone(), &config.web_dir),
        &config.limits,
    );
    let proxies = state.api.proxies.clone();
    let handles = crate::server::ServerHandles {
        accepted: Arc::new(PerIpCounter::default()),
        refused: refused.clone(),
    };
    if let Some(l) = private_listener {
        if let Ok(addr) = l.local_addr() {
            info!("private api on http://{addr}/api/peers");
        }
        tokio::spawn(crate::server::serve_private(
            l,
            crate::api::private_router(state.clone()),
            &config.limits,
            shutdown_rx.clone(),
        ));
    }
    let server = tokio::spawn(crate::server::serve(
        listener,
        server_tls.map(tokio_rustls::TlsAcceptor::from),
        proxies,
        app,
        config.limits.clone(),
        budget.clone(),
        handles.clone(),
        shutdown_rx.clone(),
    ));
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutdown_tx.send(true);
    });

    let mut conns: HashMap<ConnId, ConnOut> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = shutdown_rx.clone();
    node.handle(now_ms(), Input::Tick);
    let mut ctx = Ctx {
        state: state.clone(),
        recorder,
        slow_readers: 0,
        miner: miner.as_ref().map(|m| m.templates.clone()),
        store,
        info,
        publisher,
        outbox: OutboxCharges::default(),
        budget_drops: 0,
        accepted: handles.accepted.clone(),
        verify: crate::verify::Pool::new(config.verify_threads),
    };
    ctx.drain(&mut node, &mut conns);
    loop {
        tokio::select! {
            biased;
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            msg = inbox.recv() => {
                let Some(msg) = msg else { break };
                ctx.on_message(&mut node, &mut conns, msg);
                // Take what else is already waiting before writing, so bursts batch.
                for _ in 0..64 {
                    match inbox.try_recv() {
                        Ok(m) => ctx.on_message(&mut node, &mut conns, m),
                        Err(_) => break,
                    }
                }
            }
            _ = tick.tick() => {
                node.handle(now_ms(), Input::Tick);
                ctx.outbox.prune();
                ctx.update_metrics(&node, &conns);
            }
            // A mining template the clock holds back comes on time, not at the next tick.
            _ = sleep_until_some(mining_wake(&node)) => {
                node.handle(now_ms(), Input::Tick);
            }
            // The API's pool and peer views catch up within SLOW_VIEWS_EVERY.
            _ = sleep_until_some(ctx.publisher.refresh_due()) => {}
        }
        ctx.publisher.touch();
        // The API shows a new tip before any peer hears of it; slower views follow.
        ctx.publisher.before_outputs(&node);
        ctx.drain(&mut node, &mut conns);
        ctx.publisher.after_outputs(&node);
    }
    info!("shutting down: closing {} connections", conns.len());
    for c in conns.values() {
        let _ = c
            .kill
            .send(Some(CloseReason::new(1001, "relay shutting down")));
    }
    drop(conns);
    if let Some(m) = miner {
        m.join();
    }
    let _ = server.await;
    // Every ChangeSet was written as it came; dropping the store closes the database.
    drop(ctx);
    drop(inbox_charge);
    info!("stopped");
    Ok(())
}

/// When the node asked to be ticked for a held mining template ([`Node::mining_wake_ms`]).
fn mining_wake(node: &Node) -> Option<tokio::time::Instant> {
    let at = node.mining_wake_ms()?;
    Some(tokio::time::Instant::now() + Duration::from_millis(at.saturating_sub(now_ms())))
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A drain writes what the node persisted once it holds about this much
/// ([`ChangeSet::estimated_bytes`]), not only at its end: merging saves commits during a
/// sync, and the bound keeps a burst of large blocks from waiting in memory all at once.
const MAX_UNWRITTEN_BYTES: usize = 1 << 20;

/// What a drain has persisted but not yet written: the ChangeSets merged, and their size.
#[derive(Default)]
struct Unwritten {
    cs: Option<ChangeSet>,
    bytes: usize,
}

impl Unwritten {
    fn add(&mut self, cs: ChangeSet) {
        self.bytes += cs.estimated_bytes();
        match &mut self.cs {
            Some(u) => u.merge(cs),
            None => self.cs = Some(cs),
        }
    }

    fn is_full(&self) -> bool {
        self.bytes >= MAX_UNWRITTEN_BYTES
    }

    fn take(&mut self) -> Option<ChangeSet> {
        self.bytes = 0;
        self.cs.take()
    }
}

struct Ctx {
    state: AppState,
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    slow_readers: u64,
    miner: Option<watch::Sender<Option<(u64, tabcoin_core::miner::BlockTemplate)>>>,
    store: AnyStore,
    info: RelayInfo,
    publisher: Publisher,
    outbox: OutboxCharges,
    /// Peers closed because the memory budget could not hold what they were sent.
    budget_drops: u64,
    accepted: Arc<PerIpCounter>,
    /// Threads for signature jobs (`crate::verify`).
    verify: crate::verify::Pool,
}

impl Ctx {
    fn on_message(&mut self, node: &mut Node, conns: &mut HashMap<ConnId, ConnOut>, msg: ToNode) {
        let now = now_ms();
        match msg {
            ToNode::Connected {
                conn,
                outbound,
                remote,
                out,
            } => {
                conns.insert(conn, out);
                node.handle(
                    now,
                    Input::Connected {
                        peer: conn,
                        outbound,
                        remote,
                    },
                );
            }
            ToNode::Received {
                conn,
                bytes,
                permit,
            } => {
                if conns.contains_key(&conn) {
                    node.handle(now, Input::Received { peer: conn, bytes });
                }
                drop(permit);
            }
            ToNode::Closed { conn } => {
                if conns.remove(&conn).is_some() {
                    node.handle(now, Input::Disconnected { peer: conn });
                }
            }
            ToNode::DialFailed { url } => node.handle(now, Input::DialFailed { url }),
            ToNode::Mined(header) => {
                info!(
                    "mined block {} at height {}",
                    header.hash(),
                    node.chain().height().next()
                );
                let hash = header.hash();
                node.handle(now, Input::MinedHeader(header));
                if !node.chain().has_block(&hash) {
                    // Rejected (e.g. its time ran past the drift limit on a fast chain):
                    // ask for a fresh template, or the miner would wait for one forever.
                    let key = node.config().mining_key;
                    node.set_mining_key(key);
                }
            }
        }
    }

    /// Writes what the drain deferred, in one redb transaction.
    fn write(&mut self, unwritten: Option<ChangeSet>) {
        let Some(cs) = unwritten else { return };
        if let Err(e) = self.store.persist(&cs) {
            // A failed write leaves the store at the previous state; the node's memory is
            // ahead of it. Stop rather than diverge further.
            tracing::error!("store write failed: {e}; shutting down");
            std::process::exit(2);
        }
    }

    /// Carries out everything the node asked for. Writes to the store wait until the
    /// drain's messages are queued to their connections (or until a read needs them), merged
    /// into one transaction: a new block reaches the writers — and the peers — before the
    /// relay spends the time to store its coins, and a burst of blocks costs one commit.
    /// Peers may so hear of a block a moment before it is stored; a relay killed in between
    /// downloads it again, as it would one it had not yet received.
    fn drain(&mut self, node: &mut Node, conns: &mut HashMap<ConnId, ConnOut>) {
        let mut unwritten = Unwritten::default();
        while let Some(out) = node.poll_output() {
            match out {
                Output::Send { peer, bytes } => {
                    let Some(c) = conns.get(&peer) else { continue };
                    let len = bytes.len();
                    let queued = c.queued.load(Ordering::SeqCst);
                    let slow = CloseReason::new(
                        1008,
                        format!(
                            "slow reader: write buffer over {} bytes",
                            self.state.limits.max_write_buffer_bytes
                        ),
                    );
                    let close = if queued + len > self.state.limits.max_write_buffer_bytes {
                        Some(slow)
                    } else {
                        match self.outbox.charge(&self.state.budget, &bytes) {
                            None => Some(CloseReason::new(1013, OVER_BUDGET)),
                            Some(charge) => {
                                let item = Queued {
                                    bytes,
                                    _charge: charge,
                                };
                                match c.tx.try_send(item) {
                                    Ok(()) => {
                                        c.queued.fetch_add(len, Ordering::SeqCst);
                                        None
                                    }
                                    Err(_) => Some(slow),
                                }
                            }
                        }
                    };
                    if let Some(reason) = close {
                        if reason.code == 1013 {
                            warn!(peer, len, "memory budget exhausted, dropping the peer");
                            self.budget_drops += 1;
                        } else {
                            warn!(peer, queued, "slow reader: write buffer full, dropping");
                            self.slow_readers += 1;
                        }
                        let _ = c.kill.send(Some(reason));
                        conns.remove(&peer);
                        node.handle(now_ms(), Input::Disconnected { peer });
                    }
                }
                Output::Disconnect { peer, reason } => {
                    debug!(peer, %reason, "disconnect");
                    if let Some(c) = conns.remove(&peer) {
                        // The writer sends what is queued (the notice) before closing.
                        let _ = c
                            .kill
                            .send(Some(CloseReason::new(1008, reason.to_string())));
                    }
                }
                Output::Dial { url } => conn::dial(self.state.clone(), url),
                Output::Persist(cs) => {
                    unwritten.add(cs);
                    // Bounded: a burst of large blocks is written in parts, so what waits
                    // in memory (and in redb's write buffer) stays small.
                    if unwritten.is_full() {
                        self.write(unwritten.take());
                    }
                }
                Output::LoadBlock(hash) => {
                    // The read must see everything the node persisted before asking.
                    self.write(unwritten.take());
                    // One redb read of one body and its undo data: answered at once, so
                    // the node goes on in the same drain.
                    let (block, undo) = match self.store.0.load_block(&hash) {
                        Ok(loaded) => loaded,
                        Err(e) => {
                            tracing::error!("store read failed: {e}; shutting down");
                            std::process::exit(2);
                        }
                    };
                    node.handle(now_ms(), Input::BlockLoaded { hash, block, undo });
                }
                Output::VerifySigs { ticket, job } => {
                    for result in self.verify.run(&job) {
                        node.handle(now_ms(), Input::SigsVerified { ticket, result });
                    }
                }
                Output::Event(e) => log_event(&e),
                Output::Template(t) => {
                    if let Some(m) = &self.miner {
                        let generation = now_ms();
                        let _ = m.send(Some((generation, t)));
                    }
                }
            }
        }
        self.write(unwritten.take());
    }

    /// Refreshes the Prometheus gauges from the node (rendered at `/metrics`).
    fn update_metrics(&self, node: &Node, conns: &HashMap<ConnId, ConnOut>) {
        let peers = node.peers();
        let browsers = peers.iter().filter(|p| p.kind == NodeKind::Browser).count();
        let s = &node.stats;
        metrics::with_local_recorder(&self.recorder, || {
            metrics::gauge!("tabcoin_height").set(node.chain().height().0 as f64);
            metrics::gauge!("tabcoin_chain_work_log2").set(node.chain().tip().work.log2());
            metrics::gauge!("tabcoin_peers", "kind" => "browser").set(browsers as f64);
            metrics::gauge!("tabcoin_peers", "kind" => "relay")
                .set((peers.len() - browsers) as f64);
            metrics::gauge!("tabcoin_connections").set(conns.len() as f64);
            metrics::gauge!("tabcoin_known_relays").set(node.known_nodes().len() as f64);
            metrics::gauge!("tabcoin_mempool_transactions").set(node.mempool().len() as f64);
            metrics::gauge!("tabcoin_mempool_bytes").set(node.mempool().bytes() as f64);
            metrics::counter!("tabcoin_blocks_validated_total").absolute(s.blocks_validated);
            metrics::counter!("tabcoin_blocks_sent_total").absolute(s.blocks_sent);
            metrics::counter!("tabcoin_messages_received_total").absolute(s.messages_received);
            metrics::counter!("tabcoin_messages_sent_total").absolute(s.messages_sent);
            metrics::counter!("tabcoin_bytes_sent_total").absolute(s.bytes_sent);
            metrics::counter!("tabcoin_peers_banned_total").absolute(s.peers_banned);
            metrics::counter!("tabcoin_slow_readers_dropped_total").absolute(self.slow_readers);
            metrics::counter!("tabcoin_memory_budget_drops_total").absolute(self.budget_drops);
            metrics::counter!("tabcoin_write_deadline_drops_total")
                .absolute(self.state.write_timeouts.load(Ordering::SeqCst));
            let budget = &self.state.budget;
            metrics::gauge!("tabcoin_memory_budget_bytes").set(budget.limit() as f64);
            metrics::gauge!("tabcoin_memory_used_bytes").set(budget.used() as f64);
            metrics::gauge!("tabcoin_inbox_free_bytes")
                .set(self.state.inbox.available_permits() as f64);
            metrics::gauge!("tabcoin_tcp_connections").set(self.accepted.total() as f64);
            metrics::counter!("tabcoin_connections_refused_total")
                .absolute(self.info.refused.load(Ordering::SeqCst));
            metrics::counter!("tabcoin_local_hashes_total")
                .absolute(self.info.local_hashes.load(Ordering::SeqCst));
        });
    }
}

fn log_event(e: &Event) {
    match e {
        Event::TipChanged {
            hash,
            height,
            disconnected,
        } => {
            if *disconnected > 0 {
                info!("reorg: {disconnected} block(s) replaced, tip {hash} at height {height}");
            } else {
                debug!("tip {hash} at height {height}");
            }
        }
        Event::BlockRejected { hash, reason } => warn!("rejected block {hash}: {reason}"),
        Event::PeerBanned { peer, reason } => warn!(peer, "banned: {reason}"),
        Event::PeerConnected {
            peer,
            kind,
            outbound,
            ..
        } => debug!(peer, ?kind, outbound, "peer connected"),
        Event::Synced { height } => info!("synced at height {height}"),
        _ => debug!(?e, "event"),
    }
}
