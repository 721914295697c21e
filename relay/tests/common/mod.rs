//! Test clients for real-socket tests of the relay.
//!
//! - [`RawClient`]: one bare WebSocket that sends and reads protocol messages exactly as the
//!   test says — for handshakes by hand, malformed input and limits.
//! - [`NodeClient`]: a full core [`Node`] hosted over one outbound WebSocket, the way a
//!   browser tab (or a relay dialing out) talks to a relay — for sync, gossip and mining.
//!
//! Both speak the test network. Every wait takes a timeout and reports failure instead of
//! hanging; timeouts are generous limits, never measurements.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::hash::sha256d_parts;
use tabcoin_core::mempool::{DEFAULT_MIN_FEE_RATE, MempoolError};
use tabcoin_core::miner::{BlockTemplate, build_template, mine};
use tabcoin_core::node::{DisconnectReason, Event, Input, Node, NodeConfig, NodeStats, Output};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash, Transaction, Txid};
use tabcoin_core::sig::{self, Keypair, PublicKey, Signature};
use tabcoin_core::store::{ChangeSet, MemStore, Store};
use tabcoin_core::units::{Amount, Height, Work};
use tabcoin_core::wallet::{Wallet, WalletError};
use tabcoin_core::wire::{Hello, Message, NodeKind, NodeRecord, PROTOCOL_VERSION, auth_message};

/// Errors of the test clients: anything, with a readable message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a handshake step may take before the helper gives up.
pub const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);
/// The peer id a [`NodeClient`]'s node knows its single connection by.
pub const RELAY_PEER: u64 = 1;

mod fixtures;
mod http;
mod node_client;
mod raw;
mod relay;

// Each test binary uses its own subset of the helpers.
#[allow(unused_imports)]
pub use fixtures::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use node_client::*;
#[allow(unused_imports)]
pub use raw::*;
#[allow(unused_imports)]
pub use relay::*;
