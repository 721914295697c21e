//! What the page hears from the node: the events it is sent (`onEvent`) and the mining
//! state it is shown, translated from the core's [`Event`]s.

use serde::Serialize;
use tabcoin_core::node::Event;
use tsify::Tsify;

use crate::Inner;

/// Events as the page sees them (`ev.kind` plus fields). The derives put each type into
/// the generated `tabcoin_wasm.d.ts`, which the page is checked against (`tsc`, npm test).
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub(crate) enum NodeEvent {
    Tip {
        height: u64,
        hash: String,
        disconnected: usize,
    },
    Sync {
        height: u64,
        target: u64,
    },
    Synced {
        height: u64,
    },
    Peer {
        connected: bool,
        id: u64,
        peer_kind: Option<String>,
    },
    Tx {
        txid: String,
        accepted: bool,
        error: Option<String>,
    },
    BlockRejected {
        hash: String,
        reason: String,
    },
    Connection {
        state: ConnState,
        url: String,
        /// With `closed`: milliseconds until the node dials this relay again (null: it
        /// will not, e.g. a relay it no longer knows).
        retry_in_ms: Option<u64>,
        /// With `closed`, when this tab dropped the link: why (a relay that flooded its
        /// inbox or stopped reading, a peer the node disconnected). Null when the relay or
        /// the network closed it.
        reason: Option<String>,
    },
    Store {
        error: Option<String>,
        quota_exceeded: bool,
        repaired: Option<String>,
    },
    Banned {
        reason: String,
    },
}

/// A relay link's state in a `connection` event.
#[derive(Serialize, Tsify, Clone, Copy)]
#[tsify(missing_as_null)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ConnState {
    Connecting,
    Open,
    Closed,
}

/// Why no mining template comes (`status().miningWait`), from the core's `MiningWait`.
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
#[serde(
    tag = "reason",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub(crate) enum MiningWait {
    /// Mining is switched off.
    Off,
    /// Not synced (a browser node with no relay is never synced).
    NotSynced,
    /// The next block's time must exceed the tip's median time past: a template comes
    /// once the clock passes `notBefore` (seconds since the epoch).
    Clock { not_before: u64 },
}

pub(crate) fn event_view(i: &mut Inner, e: Event) -> Option<NodeEvent> {
    Some(match e {
        Event::TipChanged {
            hash,
            height,
            disconnected,
        } => NodeEvent::Tip {
            height: height.0,
            hash: hash.to_hex(),
            disconnected,
        },
        Event::SyncProgress { height, target } => {
            i.sync_target = target;
            NodeEvent::Sync {
                height: height.0,
                target: target.0,
            }
        }
        Event::Synced { height } => {
            if !i.writer.within_synced_slack() {
                // Said once the queue drains (on_store_notice).
                i.synced_pending = Some(height);
                return None;
            }
            NodeEvent::Synced { height: height.0 }
        }
        Event::PeerConnected { peer, kind, .. } => NodeEvent::Peer {
            connected: true,
            id: peer,
            peer_kind: Some(format!("{kind:?}").to_lowercase()),
        },
        Event::PeerDisconnected { peer } => NodeEvent::Peer {
            connected: false,
            id: peer,
            peer_kind: None,
        },
        Event::TxAccepted { txid } => NodeEvent::Tx {
            txid: txid.to_hex(),
            accepted: true,
            error: None,
        },
        Event::TxRejected { txid, error } => NodeEvent::Tx {
            txid: txid.to_hex(),
            accepted: false,
            error: Some(error.to_string()),
        },
        Event::BlockRejected { hash, reason } => NodeEvent::BlockRejected {
            hash: hash.to_hex(),
            reason,
        },
        _ => return None,
    })
}
