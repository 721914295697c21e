//! A deterministic network simulator (feature `test-utils`): many [`Node`]s, a fake clock,
//! per-link latency and loss, partitions that heal, and raw endpoints an adversary drives
//! byte by byte. No sockets and no threads: a whole scenario runs in milliseconds and
//! replays identically. Like a WebSocket, a link delivers its messages in the order they were
//! sent: latency and jitter are drawn per message, but no message overtakes an earlier one on
//! the same link. With [`Sim::link_latency`] each pair of actors gets a fixed latency of its
//! own, drawn from the seed; [`Sim::bytes_in_by_type`] counts what each actor received.

mod miner;
pub mod propagation;
mod raw;

pub use miner::SimMiner;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::encode::Encode;
use crate::miner::{build_template, mine};
use crate::node::{Event, Input, Node, NodeConfig, Output, PeerId};
use crate::params::Params;
use crate::primitives::{Block, BlockHash, Transaction};
use crate::sig::Keypair;
use crate::store::{ChangeSet, MemStore, Store};
use crate::wire::{Message, NodeKind};

mod verify;
pub use verify::VerifyHost;

/// Message type byte of blocks on the wire (for counting).
const BLOCK_TYPE: u8 = 9;

/// One simulated participant.
#[derive(Debug)]
pub enum Actor {
    Node(Box<SimNode>),
    /// An endpoint that sends whatever the test says and records what it receives.
    Raw(RawEndpoint),
}

/// An honest node with its store and what it told its host.
#[derive(Debug)]
pub struct SimNode {
    pub node: Node,
    pub store: MemStore,
    pub url: Option<String>,
    pub events: Vec<Event>,
    pub online: bool,
    /// Mining templates the node produced.
    pub templates: u64,
    /// Dials it asked for: (time, URL).
    pub dials: Vec<(u64, String)>,
    /// Its signature jobs (`sim::verify`).
    pub verify: VerifyHost,
    /// Its miner, if one runs ([`Sim::start_miner`]).
    pub miner: Option<SimMiner>,
    /// The wake the node asked for ([`Node::mining_wake_ms`]), scheduled.
    wake_at: Option<u64>,
}

/// A scripted peer.
#[derive(Debug, Default)]
pub struct RawEndpoint {
    /// Messages received, per connection.
    pub inbox: BTreeMap<PeerId, Vec<Vec<u8>>>,
    /// Connections the other side closed.
    pub closed: BTreeSet<PeerId>,
    /// Answer every `ping` with its `pong` (a scripted peer that stays connected).
    pub auto_pong: bool,
    /// Connections joined by a byte-forwarding proxy: what arrives on one is sent on the
    /// other, and a close of one closes the other (see [`Sim::raw_pipe`]).
    pub pipes: BTreeMap<PeerId, PeerId>,
    /// While piping, rewrite the `dialed` URL of a forwarded `hello` to this.
    pub rewrite_dialed: Option<String>,
}

#[derive(Debug, Clone)]
enum Ev {
    Deliver {
        to: usize,
        peer: PeerId,
        bytes: Arc<[u8]>,
    },
    Connected {
        to: usize,
        peer: PeerId,
        outbound: bool,
        remote: String,
    },
    Disconnected {
        to: usize,
        peer: PeerId,
    },
    DialFailed {
        to: usize,
        url: String,
    },
    Tick {
        to: usize,
    },
    /// A miner's job is solved (see `miner.rs`).
    Solve {
        to: usize,
        job: u64,
    },
    /// A tick the node asked for, like a host's timer ([`Node::mining_wake_ms`]).
    Wake {
        to: usize,
        at: u64,
    },
    /// A store read the node asked for ([`Output::LoadBlock`]) completes.
    Load {
        to: usize,
        hash: BlockHash,
    },
}

/// The simulated network.
#[derive(Debug)]
pub struct Sim {
    pub now_ms: u64,
    pub actors: Vec<Actor>,
    pub params: Params,
    /// Base one-way latency of every link.
    pub latency_ms: u64,
    /// Extra random latency, up to this.
    pub jitter_ms: u64,
    /// When set, `(lo, hi)`: each pair of actors has a base one-way latency of its own in
    /// `lo..=hi` milliseconds (used instead of `latency_ms`), fixed for the run and drawn
    /// from `link_seed` and the pair, so a scenario replays exactly.
    pub link_latency: Option<(u64, u64)>,
    pub link_seed: u64,
    /// Bytes delivered, by (receiving actor, message type byte).
    pub bytes_in_by_type: BTreeMap<(usize, u8), u64>,
    /// Messages lost per million.
    pub loss_ppm: u32,
    pub tick_ms: u64,
    /// How long a store read takes: 0 answers [`Output::LoadBlock`] at once, in the same
    /// drain (as the relay's redb reads); more makes it asynchronous, as a tab's IndexedDB
    /// reads are, so other inputs can come first.
    pub load_delay_ms: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    seq: u64,
    rng: u64,
    /// (actor, peer id) → (actor, peer id) at the other end.
    links: BTreeMap<(usize, PeerId), (usize, PeerId)>,
    next_peer: PeerId,
    urls: BTreeMap<String, usize>,
    /// Actors in group A when partitioned; messages and dials between groups fail.
    partition: Option<BTreeSet<usize>>,
    /// Block messages sent per directed link and block hash.
    pub block_sends: BTreeMap<(usize, usize, BlockHash), u32>,
    /// Messages delivered by type byte.
    pub delivered: BTreeMap<u8, u64>,
    /// Delivery time of the last message sent on each (sender, peer id) link end: later
    /// messages on the link are not delivered before it (FIFO, like a WebSocket).
    last_delivery: BTreeMap<(usize, PeerId), u64>,
    /// The URL dialed, for the dialing end of each connection.
    dialed: BTreeMap<(usize, PeerId), String>,
}

impl Sim {
    /// An empty network starting at the test network's genesis time plus an hour.
    pub fn new(params: Params) -> Sim {
        let now_ms = (params.genesis_time + 3_600) * 1000;
        Sim {
            now_ms,
            actors: Vec::new(),
            params,
            latency_ms: 50,
            jitter_ms: 20,
            link_latency: None,
            link_seed: 0x1a7e,
            bytes_in_by_type: BTreeMap::new(),
            loss_ppm: 0,
            tick_ms: 1_000,
            load_delay_ms: 0,
            queue: BTreeMap::new(),
            seq: 0,
            rng: 0x5eed,
            links: BTreeMap::new(),
            next_peer: 1,
            urls: BTreeMap::new(),
            partition: None,
            block_sends: BTreeMap::new(),
            delivered: BTreeMap::new(),
            last_delivery: BTreeMap::new(),
            dialed: BTreeMap::new(),
        }
    }

    fn rand(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn schedule(&mut self, delay_ms: u64, ev: Ev) {
        self.schedule_at(self.now_ms + delay_ms, ev);
    }

    /// Events at the same time run in the order they were scheduled.
    fn schedule_at(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn link_delay(&mut self, a: usize, b: usize) -> u64 {
        let jitter = if self.jitter_ms > 0 {
            self.rand() % (self.jitter_ms + 1)
        } else {
            0
        };
        self.base_latency(a, b) + jitter
    }

    /// The base one-way latency between actors `a` and `b` (the same both ways).
    pub fn base_latency(&self, a: usize, b: usize) -> u64 {
        let Some((lo, hi)) = self.link_latency else {
            return self.latency_ms;
        };
        let (x, y) = (a.min(b) as u64, a.max(b) as u64);
        let mut z = self
            .link_seed
            .wrapping_add(x.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .wrapping_add(y.wrapping_mul(0xd1b5_4a32_d192_ed03));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        lo + z % (hi.saturating_sub(lo) + 1)
    }

    /// The URL relay `i` is reachable at.
    pub fn url_of(i: usize) -> String {
        format!("ws://relay{i}.sim/ws")
    }

    /// Adds a node with `config` over `stored` state; relays get a URL. Returns its index.
    pub fn add_node(&mut self, mut config: NodeConfig, stored: ChangeSet) -> usize {
        let i = self.actors.len();
        let url = (config.kind == NodeKind::Relay).then(|| Self::url_of(i));
        if config.public_url.is_none() {
            config.public_url = url.clone();
        }
        let mut store = MemStore::new();
        store.persist(&stored).expect("memory store");
        let node = Node::new(config, self.params.clone(), stored).expect("valid stored state");
        if let Some(u) = &url {
            self.urls.insert(u.clone(), i);
        }
        self.actors.push(Actor::Node(Box::new(SimNode {
            node,
            store,
            url,
            events: Vec::new(),
            online: true,
            templates: 0,
            dials: Vec::new(),
            verify: VerifyHost::default(),
            miner: None,
            wake_at: None,
        })));
        let stagger = (i as u64 * 37) % self.tick_ms;
        self.schedule(stagger, Ev::Tick { to: i });
        i
    }

    /// A relay (or browser) node that knows only `bootstrap`, with identity from `i`.
    pub fn config(kind: NodeKind, seed: u8, bootstrap: &[usize]) -> NodeConfig {
        let mut c = NodeConfig::new(kind, [seed; 32]);
        c.bootstrap = bootstrap.iter().map(|&b| Self::url_of(b)).collect();
        c
    }

    /// Adds a raw endpoint for an adversary (see [`Sim::set_auto_pong`]).
    pub fn add_raw(&mut self) -> usize {
        self.actors.push(Actor::Raw(RawEndpoint::default()));
        self.actors.len() - 1
    }

    pub fn node(&self, i: usize) -> &Node {
        match &self.actors[i] {
            Actor::Node(n) => &n.node,
            Actor::Raw(_) => panic!("actor {i} is not a node"),
        }
    }

    pub fn sim_node(&self, i: usize) -> &SimNode {
        match &self.actors[i] {
            Actor::Node(n) => n,
            Actor::Raw(_) => panic!("actor {i} is not a node"),
        }
    }

    /// Makes raw endpoint `raw` answer pings by itself (or stop doing so).
    pub fn set_auto_pong(&mut self, raw: usize, on: bool) {
        if let Actor::Raw(r) = &mut self.actors[raw] {
            r.auto_pong = on;
        }
    }

    pub fn raw(&self, i: usize) -> &RawEndpoint {
        match &self.actors[i] {
            Actor::Raw(r) => r,
            Actor::Node(_) => panic!("actor {i} is not raw"),
        }
    }

    fn separated(&self, a: usize, b: usize) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|g| g.contains(&a) != g.contains(&b))
    }

    /// Feeds an input to node `i` and carries out what it asks.
    pub fn input(&mut self, i: usize, input: Input) {
        let now = self.now_ms;
        let outputs = match &mut self.actors[i] {
            Actor::Node(n) if n.online => {
                n.node.handle(now, input);
                let mut out = Vec::new();
                while let Some(o) = n.node.poll_output() {
                    out.push(o);
                }
                let wake = n.node.mining_wake_ms();
                if let Some(at) = wake
                    && wake != n.wake_at
                {
                    n.wake_at = wake;
                    self.schedule_at(at, Ev::Wake { to: i, at });
                }
                out
            }
            Actor::Node(_) => return,
            Actor::Raw(r) => {
                match input {
                    Input::Received { peer, bytes } => {
                        if let Some(&to) = r.pipes.get(&peer) {
                            let out = match (&r.rewrite_dialed, Message::from_bytes(&bytes)) {
                                (Some(url), Ok(Message::Hello(mut h))) if h.dialed.is_some() => {
                                    h.dialed = Some(url.clone());
                                    Message::Hello(h).encode()
                                }
                                _ => bytes.clone(),
                            };
                            r.inbox.entry(peer).or_default().push(bytes);
                            self.transmit(i, to, Arc::from(out));
                            return;
                        }
                        let ping = match Message::from_bytes(&bytes) {
                            Ok(Message::Ping(n)) if r.auto_pong => Some(n),
                            _ => None,
                        };
                        r.inbox.entry(peer).or_default().push(bytes);
                        if let Some(n) = ping {
                            self.transmit(i, peer, Arc::from(Message::Pong(n).encode()));
                        }
                    }
                    Input::Disconnected { peer } => {
                        r.closed.insert(peer);
                        if let Some(other) = r.pipes.remove(&peer) {
                            r.pipes.remove(&other);
                            self.close(i, other);
                        }
                    }
                    Input::Connected { peer, .. } => {
                        r.inbox.entry(peer).or_default();
                    }
                    _ => {}
                }
                return;
            }
        };
        for o in outputs {
            self.output(i, o);
        }
    }

    fn output(&mut self, i: usize, o: Output) {
        match o {
            Output::Send { peer, bytes } => self.transmit(i, peer, bytes),
            Output::Disconnect { peer, .. } => self.close(i, peer),
            Output::Dial { url } => {
                let now = self.now_ms;
                if let Actor::Node(n) = &mut self.actors[i] {
                    n.dials.push((now, url.clone()));
                }
                self.dial(i, &url);
            }
            Output::Persist(cs) => {
                if let Actor::Node(n) = &mut self.actors[i] {
                    n.store.persist(&cs).expect("memory store");
                }
            }
            Output::Event(e) => {
                if let Actor::Node(n) = &mut self.actors[i] {
                    n.events.push(e);
                }
            }
            Output::Template(t) => {
                if let Actor::Node(n) = &mut self.actors[i] {
                    n.templates += 1;
                }
                self.new_job(i, t);
            }
            Output::LoadBlock(hash) if self.load_delay_ms > 0 => {
                self.schedule(self.load_delay_ms, Ev::Load { to: i, hash });
            }
            Output::LoadBlock(hash) => self.load(i, hash),
            Output::VerifySigs { ticket, job } => self.verify_sigs(i, ticket, &job),
        }
    }

    /// Reads a body from actor `i`'s store and hands it to the node.
    fn load(&mut self, i: usize, hash: BlockHash) {
        let loaded = match &mut self.actors[i] {
            Actor::Node(n) => n.store.load_block(&hash).expect("memory store"),
            Actor::Raw(_) => return,
        };
        let (block, undo) = loaded;
        self.input(i, Input::BlockLoaded { hash, block, undo });
    }

    fn transmit(&mut self, from: usize, peer: PeerId, bytes: Arc<[u8]>) {
        let Some(&(to, to_peer)) = self.links.get(&(from, peer)) else {
            return;
        };
        if self.separated(from, to) {
            return;
        }
        if self.loss_ppm > 0 && (self.rand() % 1_000_000) < u64::from(self.loss_ppm) {
            return;
        }
        if bytes.first() == Some(&BLOCK_TYPE) && bytes.len() > 89 {
            let hash = BlockHash::from_hash(crate::hash::sha256d(&bytes[1..89]));
            *self.block_sends.entry((from, to, hash)).or_insert(0) += 1;
        }
        let drawn = self.now_ms + self.link_delay(from, to);
        let at = self
            .last_delivery
            .get(&(from, peer))
            .map_or(drawn, |&last| drawn.max(last));
        self.last_delivery.insert((from, peer), at);
        self.schedule_at(
            at,
            Ev::Deliver {
                to,
                peer: to_peer,
                bytes,
            },
        );
    }

    /// Closes a connection from one side. Like a WebSocket host, messages already sent are
    /// delivered first: the other side learns of the close after the slowest of them.
    fn close(&mut self, from: usize, peer: PeerId) {
        if let Some((to, to_peer)) = self.links.remove(&(from, peer)) {
            let last = self.last_delivery.remove(&(from, peer)).unwrap_or(0);
            let at = (self.now_ms + self.base_latency(from, to) + self.jitter_ms + 1).max(last + 1);
            self.schedule_at(at, Ev::Disconnected { to, peer: to_peer });
        }
    }

    fn dial(&mut self, from: usize, url: &str) {
        let target = self.urls.get(url).copied();
        let delay = self.link_delay(from, target.unwrap_or(from));
        let reachable = target.filter(|&t| {
            !self.separated(from, t)
                && match &self.actors[t] {
                    Actor::Node(n) => n.online,
                    Actor::Raw(_) => true,
                }
        });
        match reachable {
            Some(to) => {
                let (pa, pb) = self.connect_ids(from, to);
                self.dialed.insert((from, pa), String::from(url));
                self.schedule(
                    delay,
                    Ev::Connected {
                        to: from,
                        peer: pa,
                        outbound: true,
                        remote: String::from(url),
                    },
                );
                self.schedule(
                    delay,
                    Ev::Connected {
                        to,
                        peer: pb,
                        outbound: false,
                        remote: format!("sim:{from}"),
                    },
                );
            }
            None => self.schedule(
                delay * 4,
                Ev::DialFailed {
                    to: from,
                    url: String::from(url),
                },
            ),
        }
    }

    fn connect_ids(&mut self, a: usize, b: usize) -> (PeerId, PeerId) {
        let (pa, pb) = (self.next_peer, self.next_peer + 1);
        self.next_peer += 2;
        self.links.insert((a, pa), (b, pb));
        self.links.insert((b, pb), (a, pa));
        (pa, pb)
    }

    /// Runs until `ms` of simulated time have passed.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        self.run_until(end, |_| false);
    }

    /// Runs until `done` holds (checked after each event) or time `end_ms`; returns whether
    /// `done` held.
    pub fn run_until(&mut self, end_ms: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let Some((&(at, seq), _)) = self.queue.iter().next() else {
                self.now_ms = end_ms;
                return false;
            };
            if at > end_ms {
                self.now_ms = end_ms;
                return done(self);
            }
            let ev = self.queue.remove(&(at, seq)).expect("key was just read");
            self.now_ms = at;
            self.process(ev);
        }
    }

    /// Runs until `done` or `max_ms` more simulated milliseconds.
    pub fn run_until_for(&mut self, max_ms: u64, done: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now_ms + max_ms;
        self.run_until(end, done)
    }

    fn process(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { to, peer, bytes } => {
                if !self.links.contains_key(&(to, peer)) {
                    return;
                }
                *self
                    .delivered
                    .entry(bytes.first().copied().unwrap_or(255))
                    .or_insert(0) += 1;
                *self
                    .bytes_in_by_type
                    .entry((to, bytes.first().copied().unwrap_or(255)))
                    .or_insert(0) += bytes.len() as u64;
                self.input(
                    to,
                    Input::Received {
                        peer,
                        bytes: bytes.to_vec(),
                    },
                );
            }
            Ev::Connected {
                to,
                peer,
                outbound,
                remote,
            } => {
                if self.links.contains_key(&(to, peer)) {
                    self.input(
                        to,
                        Input::Connected {
                            peer,
                            outbound,
                            remote,
                        },
                    );
                }
            }
            Ev::Disconnected { to, peer } => {
                if let Some(other) = self.links.remove(&(to, peer)) {
                    self.links.remove(&other);
                    self.last_delivery.remove(&other);
                }
                self.last_delivery.remove(&(to, peer));
                self.input(to, Input::Disconnected { peer });
            }
            Ev::DialFailed { to, url } => self.input(to, Input::DialFailed { url }),
            Ev::Tick { to } => {
                self.input(to, Input::Tick);
                let tick = self.tick_ms;
                if matches!(self.actors[to], Actor::Node(_)) {
                    self.schedule(tick, Ev::Tick { to });
                }
            }
            Ev::Solve { to, job } => self.solve(to, job),
            Ev::Load { to, hash } => self.load(to, hash),
            Ev::Wake { to, at } => {
                if let Actor::Node(n) = &mut self.actors[to]
                    && n.wake_at == Some(at)
                {
                    n.wake_at = None;
                    self.input(to, Input::Tick);
                }
            }
        }
    }

    /// Node `i` mines a block on its tip paying its mining key (or a key from `i`) and
    /// receives it as its own. Returns the block.
    pub fn mine(&mut self, i: usize) -> Block {
        let key = self
            .node(i)
            .config()
            .mining_key
            .unwrap_or_else(|| Keypair::from_seed(&[i as u8; 32]).public_key());
        let node = self.node(i);
        let now_s = (self.now_ms / 1000).max(node.chain().tip().header.time + 1);
        let t = build_template(
            node.chain(),
            node.mempool(),
            key,
            now_s,
            format!("sim{i}").as_bytes(),
        );
        let block = mine(t.block).expect("test bits are valid");
        self.input(i, Input::MinedBlock(block.clone()));
        block
    }

    /// Submits a transaction at node `i`.
    pub fn submit(&mut self, i: usize, tx: Transaction) {
        self.input(i, Input::SubmitTx(tx));
    }

    /// Cuts every link between `group` and the rest; dials across fail until [`Sim::heal`].
    pub fn partition(&mut self, group: &[usize]) {
        let g: BTreeSet<usize> = group.iter().copied().collect();
        self.partition = Some(g);
        let crossing: Vec<(usize, PeerId)> = self
            .links
            .iter()
            .filter(|((a, _), (b, _))| self.separated(*a, *b))
            .map(|(k, _)| *k)
            .collect();
        for (a, p) in crossing {
            if self.links.contains_key(&(a, p)) {
                self.close(a, p);
                self.input(a, Input::Disconnected { peer: p });
            }
        }
    }

    pub fn heal(&mut self) {
        self.partition = None;
    }

    /// Takes node `i` offline (all its links close) or back online.
    pub fn set_online(&mut self, i: usize, online: bool) {
        if !online {
            let mine: Vec<(usize, PeerId)> = self
                .links
                .keys()
                .filter(|(a, _)| *a == i)
                .copied()
                .collect();
            for (a, p) in mine {
                self.close(a, p);
                self.input(a, Input::Disconnected { peer: p });
            }
        }
        if let Actor::Node(n) = &mut self.actors[i] {
            n.online = online;
        }
    }

    /// Closes the link between nodes `a` and `b`, if any.
    pub fn cut(&mut self, a: usize, b: usize) {
        let ids: Vec<PeerId> = self
            .links
            .iter()
            .filter(|((x, _), (y, _))| *x == a && *y == b)
            .map(|((_, p), _)| *p)
            .collect();
        for p in ids {
            self.close(a, p);
            self.input(a, Input::Disconnected { peer: p });
        }
    }

    /// Indices of honest nodes.
    pub fn node_indices(&self) -> Vec<usize> {
        (0..self.actors.len())
            .filter(|&i| matches!(self.actors[i], Actor::Node(_)))
            .collect()
    }

    /// Whether every honest online node has the same tip.
    pub fn converged(&self) -> bool {
        let tips: BTreeSet<BlockHash> = self
            .node_indices()
            .into_iter()
            .filter(|&i| self.sim_node(i).online)
            .map(|i| self.node(i).chain().tip().hash)
            .collect();
        tips.len() == 1
    }
}
