//! The read snapshot: what the HTTP API shows of the node's memory (status, pool, peers),
//! built by the node task after state changes and published through a `watch` channel, so
//! that API requests never run on the node task. Blocks and transactions of the chain are
//! read from the store instead ([`crate::store::StoreReader`]).
//!
//! Cost on the node task is bounded: the status is O(1) (plus the UTXO digest on small sets,
//! see [`DIGEST_EVERY_TIP_MAX_COINS`]) and is rebuilt before the outputs of a tip change are sent, so the API never shows a
//! state older than what peers were told; the pool and peer views are O(pool) and O(peers)
//! and are rebuilt at most every [`SLOW_VIEWS_EVERY`], after the outputs went out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use tabcoin_core::node::Node;
use tabcoin_core::primitives::{BlockHash, Payload, Transaction, Txid};
use tabcoin_core::wallet::encode_address;
use tabcoin_core::wire::NodeKind;

/// Pool and peer views are rebuilt at most this often.
pub(crate) const SLOW_VIEWS_EVERY: Duration = Duration::from_millis(200);
/// `/api/mempool` lists at most this many transactions (highest fee rate first).
pub(crate) const MEMPOOL_LIST: usize = 1_000;
/// `/api/peers` lists at most this many relay links and known relays.
pub(crate) const PEERS_LIST: usize = 500;
/// Up to this many coins (about 1 MB to hash) the UTXO digest is recomputed on every tip
/// change; above it, at most once per [`BIG_DIGEST_EVERY`] and only after the outputs went
/// out (it hashes the whole set: the core keeps no incremental commitment).
pub(crate) const DIGEST_EVERY_TIP_MAX_COINS: usize = 10_000;
pub(crate) const BIG_DIGEST_EVERY: Duration = Duration::from_secs(60);

/// One published view of the node.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub tip: BlockHash,
    pub tip_height: u64,
    /// `/api/status` fields that come from the node.
    pub status: Value,
    pub mempool: Arc<MempoolView>,
    pub peers: Arc<PeersView>,
}

/// The pool: every transaction by id (for `/api/tx`) and the listing.
#[derive(Debug, Default)]
pub(crate) struct MempoolView {
    key: (usize, usize, BlockHash),
    pub count: usize,
    pub bytes: usize,
    pub by_id: HashMap<Txid, Arc<Value>>,
    /// The first [`MEMPOOL_LIST`] by fee rate.
    pub list: Vec<Arc<Value>>,
}

/// Peers: the public view (kinds, counts, relay URLs) and the operator's (with addresses).
#[derive(Debug, Default)]
pub(crate) struct PeersView {
    /// Origins of the pages of known and linked relays (allowed to open `/ws`).
    pub relay_origins: HashSet<String>,
    pub browsers: usize,
    pub relays: usize,
    pub known_relays: usize,
    pub public: Value,
    pub private: Value,
}

/// Builds and publishes snapshots; lives in the node task.
#[derive(Debug)]
pub(crate) struct Publisher {
    tx: watch::Sender<Arc<Snapshot>>,
    current: Arc<Snapshot>,
    slow_built: Option<Instant>,
    slow_dirty: bool,
    digest: (BlockHash, Value),
    digest_at: Option<Instant>,
    /// Build the operator's peer list (with addresses) too: only with a private listener.
    with_private: bool,
}

impl Publisher {
    pub fn new(with_private: bool) -> (Publisher, watch::Receiver<Arc<Snapshot>>) {
        let current = Arc::new(Snapshot::default());
        let (tx, rx) = watch::channel(current.clone());
        let publisher = Publisher {
            tx,
            current,
            slow_built: None,
            slow_dirty: true,
            digest: (BlockHash::ZERO, Value::Null),
            digest_at: None,
            with_private,
        };
        (publisher, rx)
    }

    /// Something may have changed (a message was handled).
    pub fn touch(&mut self) {
        self.slow_dirty = true;
    }

    /// When the pool and peer views are due for a refresh they are waiting for.
    pub fn refresh_due(&self) -> Option<tokio::time::Instant> {
        if !self.slow_dirty {
            return None;
        }
        let at = self
            .slow_built
            .map_or_else(Instant::now, |t| t + SLOW_VIEWS_EVERY);
        Some(tokio::time::Instant::from_std(at))
    }

    /// Before the node's outputs go out: republishes the status if the tip moved.
    pub fn before_outputs(&mut self, node: &Node) {
        if node.chain().tip().hash != self.current.tip {
            self.publish(node, false);
        }
    }

    /// After the outputs went out (and on ticks): refreshes the pool and peer views when
    /// they may have changed and the last refresh is old enough.
    pub fn after_outputs(&mut self, node: &Node) {
        let due = self
            .slow_built
            .is_none_or(|t| t.elapsed() >= SLOW_VIEWS_EVERY);
        if self.slow_dirty && due {
            self.publish(node, true);
        }
    }

    fn publish(&mut self, node: &Node, slow: bool) {
        let chain = node.chain();
        let tip = chain.tip();
        let (mempool, peers) = if slow {
            self.slow_dirty = false;
            self.slow_built = Some(Instant::now());
            (
                mempool_view(node, &self.current.mempool),
                Arc::new(peers_view(node, self.with_private)),
            )
        } else {
            (self.current.mempool.clone(), self.current.peers.clone())
        };
        let coins = chain.utxo().len();
        let digest_due = if coins <= DIGEST_EVERY_TIP_MAX_COINS {
            self.digest.0 != tip.hash
        } else {
            slow && self
                .digest_at
                .is_none_or(|t| t.elapsed() >= BIG_DIGEST_EVERY)
        };
        if digest_due {
            self.digest = (tip.hash, json!(chain.utxo().digest().to_string()));
            self.digest_at = Some(Instant::now());
        }
        let status = json!({
            "network": chain.params().name,
            "genesis": chain.genesis_hash().to_string(),
            "tip": tip.hash.to_string(),
            "height": tip.height.0,
            "work": format!("{:x}", tip.work),
            "work_log2": tip.work.log2(),
            "bits": format!("{:#010x}", tip.header.bits.0),
            "time": tip.header.time,
            "synced": node.is_synced(),
            "utxo_count": coins,
            "utxo_digest": self.digest.1,
            "utxo_digest_tip": self.digest.0.to_string(),
            "best_header_height": chain.best_header().height.0,
            "peers": peers.browsers + peers.relays,
            "peers_browser": peers.browsers,
            "peers_relay": peers.relays,
            "known_relays": peers.known_relays,
            "mempool": { "count": mempool.count, "bytes": mempool.bytes },
            "hashrate_estimate": chain.hashrate_estimate(60),
            "node_id": node.node_id().to_string(),
            "public_url": node.config().public_url,
            "target_block_time": chain.params().target_block_time,
            "prune": prune_view(chain),
        });
        let snap = Arc::new(Snapshot {
            tip: tip.hash,
            tip_height: tip.height.0,
            status,
            mempool,
            peers,
        });
        self.current = snap.clone();
        self.tx.send_replace(snap);
    }
}

fn mempool_view(node: &Node, old: &Arc<MempoolView>) -> Arc<MempoolView> {
    let pool = node.mempool();
    let key = (pool.len(), pool.bytes(), node.chain().tip().hash);
    if key == old.key {
        return old.clone();
    }
    let prefix = node.chain().params().address_prefix;
    let mut entries = pool.entries();
    entries.sort_by_key(|e| std::cmp::Reverse(e.fee_rate()));
    let mut by_id = HashMap::with_capacity(entries.len());
    let mut list = Vec::with_capacity(entries.len().min(MEMPOOL_LIST));
    for e in entries {
        // Transactions already shown are reused: only new ones are turned into JSON.
        let v = old.by_id.get(&e.txid).cloned().unwrap_or_else(|| {
            let mut v = tx_json(&e.tx, prefix);
            v["fee"] = json!(e.fee.units());
            v["fee_rate"] = json!(e.fee_rate());
            v["status"] = json!("mempool");
            Arc::new(v)
        });
        if list.len() < MEMPOOL_LIST {
            list.push(v.clone());
        }
        by_id.insert(e.txid, v);
    }
    Arc::new(MempoolView {
        key,
        count: pool.len(),
        bytes: pool.bytes(),
        by_id,
        list,
    })
}

fn peers_view(node: &Node, with_private: bool) -> PeersView {
    let peers = node.peers();
    let browsers = peers.iter().filter(|p| p.kind == NodeKind::Browser).count();
    let relays = peers.len() - browsers;
    let relay_links: Vec<Value> = peers
        .iter()
        .filter(|p| p.kind != NodeKind::Browser)
        .take(PEERS_LIST)
        .map(|p| {
            json!({
                "node_id": p.node_id.to_string(),
                "kind": format!("{:?}", p.kind).to_lowercase(),
                // Relays publish their URL themselves; an inbound relay without one is
                // shown without an address.
                "url": p.url,
                "outbound": p.outbound,
                "best_height": p.best_height.0,
            })
        })
        .collect();
    let known = node.known_nodes();
    let known_relays = known.len();
    let relay_origins: HashSet<String> = known
        .iter()
        .map(|r| r.url.as_str())
        .chain(peers.iter().filter_map(|p| p.url.as_deref()))
        .filter_map(crate::http_policy::relay_origin)
        .collect();
    let known: Vec<Value> = known
        .into_iter()
        .take(PEERS_LIST)
        .map(|r| json!({"url": r.url, "node_id": r.node_id.to_string(), "last_seen": r.last_seen}))
        .collect();
    let public = json!({
        "counts": { "browser": browsers, "relay": relays },
        "peers": relay_links,
        "known_relays": known,
    });
    if !with_private {
        return PeersView {
            relay_origins,
            browsers,
            relays,
            known_relays,
            public,
            private: Value::Null,
        };
    }
    let all: Vec<Value> = peers
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "node_id": p.node_id.to_string(),
                "kind": format!("{:?}", p.kind).to_lowercase(),
                "url": p.url,
                "remote": p.remote,
                "outbound": p.outbound,
                "best_height": p.best_height.0,
                "score": p.score,
            })
        })
        .collect();
    let private = json!({
        "counts": { "browser": browsers, "relay": relays },
        "peers": all,
        "known_relays": known,
    });
    PeersView {
        relay_origins,
        browsers,
        relays,
        known_relays,
        public,
        private,
    }
}

/// A transaction as the API shows it.
pub(crate) fn tx_json(t: &Transaction, prefix: &str) -> Value {
    let (coinbase_height, post) = match &t.payload {
        Payload::Coinbase { height, .. } => (Some(height.0), None),
        Payload::Post(p) => (
            None,
            Some(json!({"author": encode_address(prefix, &p.author), "text": p.text})),
        ),
        Payload::None => (None, None),
    };
    json!({
        "txid": t.txid().to_string(),
        "coinbase": t.is_coinbase(),
        "coinbase_height": coinbase_height,
        "size": tabcoin_core::encode::Encode::encoded_len(t),
        "inputs": t.inputs.iter().map(|i| json!({"txid": i.prev.txid.to_string(), "vout": i.prev.vout})).collect::<Vec<_>>(),
        "outputs": t.outputs.iter().map(|o| json!({"amount": o.amount.units(), "address": encode_address(prefix, &o.key)})).collect::<Vec<_>>(),
        "post": post,
    })
}

/// What `/api/status` says the node keeps: `budget` null for a node that keeps every body;
/// otherwise bodies from `kept_from` to the tip, `kept_bytes` of them.
fn prune_view(chain: &tabcoin_core::chain::Chain) -> Value {
    let p = chain.prune_status();
    json!({
        "budget": p.budget,
        "depth": p.depth,
        "kept_from": p.kept_from.0,
        "kept_bytes": p.kept_bytes,
    })
}
