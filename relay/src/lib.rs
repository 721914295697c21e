//! `tabcoin-relay`: a relay and full node. It hosts the core [`Node`] unchanged — one task
//! owns it, connection tasks talk to it through bounded channels — serves the page, the
//! WebSocket endpoint `/ws`, a JSON API and Prometheus metrics on one port, links to other
//! relays, persists to an embedded crash-safe database and can mine natively.
//!
//! [`Node`]: tabcoin_core::node::Node

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tabcoin_core::params::Network;
use tabcoin_core::sig::PublicKey;

mod api;
pub mod budget;
pub mod client_addr;
mod conn;
mod counter;
pub mod dial;
pub mod http_policy;
pub mod miner;
mod node_task;
mod server;
pub mod sha_ni;
mod snapshot;
pub mod store;
pub mod tls;
pub mod verify;

pub use node_task::RelayError;

/// Default bytes of recent block bodies a relay's node keeps in memory (`--body-cache`): the
/// newest blocks, which peers ask for most, and reorgs within them are served without a
/// store read; every other body is one redb read away. Several full (1 MB) blocks, ~80 of
/// the memory bench's. Smaller than the core's default for tabs
/// ([`tabcoin_core::chain::DEFAULT_BODY_CACHE_BYTES`]), which read bodies from IndexedDB
/// asynchronously.
pub const DEFAULT_BODY_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Transport limits. Every one has a flag; the defaults suit one relay on a 1 GB machine.
/// The worst case they allow is written out in docs/PROTOCOL.md ("Limits").
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open TCP connections in total, HTTP and WebSocket alike (counted at accept time).
    pub max_connections: usize,
    /// Open WebSocket connections from one IP address.
    pub max_per_ip: usize,
    /// Open TCP connections from one IP address, HTTP and WebSocket alike.
    pub max_http_per_ip: usize,
    /// The memory budget in bytes for everything peers and visitors can make the relay hold
    /// (connections, their buffers and queues, the node inbox): see [`budget`].
    pub max_memory: usize,
    /// Bytes of received messages waiting for the node task, all peers together.
    pub inbox_bytes: usize,
    /// How long one queued message may take to be written before the peer is closed.
    pub write_timeout: Duration,
    /// How long a closing connection may take to flush its queue and close frame.
    pub close_timeout: Duration,
    /// How long a client may take to send a request's headers (also the keep-alive idle
    /// time between requests).
    pub header_read_timeout: Duration,
    /// How long one HTTP request may take to be answered.
    pub request_timeout: Duration,
    /// Largest HTTP request body.
    pub max_body_bytes: usize,
    /// API requests per second from one IP (bursts of twice that), `/api/…` and `/metrics`.
    pub api_requests_per_sec: u32,
    /// How long connections get to finish after shutdown is asked for.
    pub shutdown_grace: Duration,
    /// Largest WebSocket message and frame: just above the largest valid protocol message.
    pub max_message_bytes: usize,
    /// Messages per second a peer may send (with a burst of twice that), block bodies
    /// (`block`, `blocktxn`) not counted: the node bounds those itself.
    pub messages_per_sec: u32,
    /// Bytes queued for one peer before it counts as a slow reader and is dropped.
    pub max_write_buffer_bytes: usize,
    /// Messages queued for one peer before it counts as a slow reader and is dropped.
    pub max_write_buffer_msgs: usize,
    /// How long an outbound dial may take.
    pub dial_timeout: Duration,
    /// Dial loopback, private, link-local and CGNAT addresses and local names
    /// (`--allow-local-dial`), for a test network on one machine or a LAN. Off by default:
    /// relays learned from gossip could otherwise point the relay at internal services.
    pub allow_local_dial: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 20_000,
            max_per_ip: 16,
            max_http_per_ip: 64,
            max_memory: 512 * 1024 * 1024,
            inbox_bytes: 16 * 1024 * 1024,
            write_timeout: Duration::from_secs(15),
            close_timeout: Duration::from_secs(2),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024,
            api_requests_per_sec: 20,
            shutdown_grace: Duration::from_secs(2),
            max_message_bytes: tabcoin_core::wire::MAX_MESSAGE_SIZE + 64,
            // An honest tab syncing at ~1,000 blocks/s sends ~130 getdata/s (windows of 8+
            // blocks) plus pongs and announcements; 500/s with bursts of 1,000 leaves it room
            // while a flooder is still cut off within two seconds.
            messages_per_sec: 500,
            max_write_buffer_bytes: 16 * 1024 * 1024,
            max_write_buffer_msgs: 1_024,
            dial_timeout: Duration::from_secs(10),
            allow_local_dial: false,
        }
    }
}

/// Native mining.
#[derive(Clone, Debug)]
pub struct MiningConfig {
    pub threads: usize,
    pub address: PublicKey,
}

/// Everything `run` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub network: Network,
    /// Database directory; `None` keeps everything in memory (tests).
    pub data_dir: Option<PathBuf>,
    /// Static files served at `/` (the page and its wasm package).
    pub web_dir: PathBuf,
    /// The `ws://…/ws` URL other nodes can reach this relay at.
    pub public_url: Option<String>,
    /// Relays to link to (`ws://host:port/ws`).
    pub peers: Vec<String>,
    /// Relay links to keep.
    pub target_outbound: usize,
    pub limits: Limits,
    pub mining: Option<MiningConfig>,
    /// Fixed node identity (tests); otherwise kept in the database or random.
    pub identity_seed: Option<[u8; 32]>,
    /// Serve https and wss with this certificate and key (PEM) instead of plain http/ws.
    pub tls: Option<tls::TlsFiles>,
    /// Extra trusted root certificates (PEM files) for dialing `wss://` relays.
    pub tls_ca: Vec<PathBuf>,
    /// Reverse proxies whose forwarding header names the client.
    pub proxies: client_addr::ProxyPolicy,
    /// Empty: every page may open `/ws`. Otherwise only the relay's own, known relays' and
    /// these origins (`*`: every page again); see [`http_policy::OriginPolicy`].
    pub allowed_origins: Vec<String>,
    /// A second listener for the operator: `/api/peers` with peer addresses.
    pub private_api: Option<SocketAddr>,
    /// Byte budget of stored block bodies (`--prune`); `None` keeps every body.
    pub prune_bytes: Option<u64>,
    /// Threads that verify the signatures of blocks being connected (1: in place, on the
    /// node task, as before parallel verification).
    pub verify_threads: usize,
    /// Bytes of redb's page cache (`--store-cache`), read cache and write buffer together.
    pub store_cache_bytes: usize,
    /// Bytes of recent block bodies the node keeps in memory (`--body-cache`).
    pub body_cache_bytes: usize,
}

impl Config {
    pub fn new(network: Network) -> Config {
        Config {
            network,
            data_dir: None,
            web_dir: PathBuf::from("web"),
            public_url: None,
            peers: Vec::new(),
            target_outbound: 8,
            limits: Limits::default(),
            mining: None,
            identity_seed: None,
            tls: None,
            tls_ca: Vec::new(),
            proxies: client_addr::ProxyPolicy::default(),
            allowed_origins: Vec::new(),
            private_api: None,
            prune_bytes: None,
            verify_threads: verify::default_threads(),
            store_cache_bytes: store::DEFAULT_CACHE_BYTES,
            body_cache_bytes: DEFAULT_BODY_CACHE_BYTES,
        }
    }
}

/// Runs a relay on `listener` until `shutdown` resolves, then flushes and returns.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    node_task::run(listener, config, shutdown).await
}

/// The local address a listener is bound to, formatted for humans.
pub fn display_url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}
