//! HTTP: the page, `/ws`, the JSON API and `/metrics`. API answers never run on the node
//! task: node state comes from the snapshot it publishes ([`crate::snapshot`]), blocks and
//! transactions from the store's indexes, read on blocking threads (a few at a time).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{
    ConnectInfo, Extension, Path as UrlPath, Query as UrlQuery, Request, State, WebSocketUpgrade,
};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tower_http::services::{ServeDir, ServeFile};

use tabcoin_core::encode::Encode;
use tabcoin_core::primitives::{BlockHash, Txid};
use tabcoin_core::wallet::encode_address;

use crate::client_addr::{self, ProxyPolicy};
use crate::counter::{Over, PerIpCounter};
use crate::http_policy::OriginPolicy;
use crate::node_task::AppState;
use crate::snapshot::{Snapshot, tx_json};
use crate::store::{StoreReader, StoredBlock};

/// Store reads running at once; more API requests wait for a turn.
const STORE_READERS: usize = 4;

/// What API handlers read: the node's snapshot, the store and live counters.
#[derive(Debug)]
pub(crate) struct ApiState {
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub store: StoreReader,
    pub reads: Semaphore,
    pub proxies: ProxyPolicy,
    pub origins: OriginPolicy,
    pub address_prefix: &'static str,
    pub started: Instant,
    pub local_hashes: Arc<AtomicU64>,
    pub mining_threads: usize,
    pub connections: Arc<PerIpCounter>,
    pub refused: Arc<AtomicU64>,
}

impl ApiState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        snapshot: watch::Receiver<Arc<Snapshot>>,
        store: StoreReader,
        proxies: ProxyPolicy,
        origins: OriginPolicy,
        address_prefix: &'static str,
        local_hashes: Arc<AtomicU64>,
        mining_threads: usize,
        connections: Arc<PerIpCounter>,
        refused: Arc<AtomicU64>,
    ) -> ApiState {
        ApiState {
            snapshot,
            store,
            reads: Semaphore::new(STORE_READERS),
            proxies,
            origins,
            address_prefix,
            started: Instant::now(),
            local_hashes,
            mining_threads,
            connections,
            refused,
        }
    }
}

/// The client a request is from (after trusted proxies) and the address its per-IP
/// limits and bans count against (IPv6 by /64).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr {
    pub ip: IpAddr,
    pub key: IpAddr,
}

/// Per-connection WebSocket read buffer.
pub(crate) const READ_BUFFER: usize = 8 * 1024;

pub(crate) fn router(state: AppState, web_dir: &Path) -> Router {
    let index = ServeFile::new(web_dir.join("index.html"));
    let files = ServeDir::new(web_dir).not_found_service(index);
    let app = Router::new()
        .route("/ws", get(ws_handler))
        .route("/api/status", get(status))
        .route("/api/blocks", get(blocks))
        .route("/api/block/{hash}", get(block))
        .route("/api/tx/{id}", get(tx))
        .route("/api/peers", get(peers))
        .route("/api/mempool", get(mempool))
        .route("/metrics", get(metrics))
        .fallback_service(files)
        // Inner: the per-client API rate; outer: who the client is (it runs first).
        .layer(middleware::from_fn_with_state(
            Arc::new(crate::server::ApiRate::new(
                state.limits.api_requests_per_sec,
            )),
            crate::server::api_rate_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client_addr_layer,
        ))
        .with_state(state);
    crate::http_policy::security_headers(app)
}

/// The operator's listener (`--private-api`): the same API, and `/api/peers` with every
/// peer's address.
pub(crate) fn private_router(state: AppState) -> Router {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/peers", get(private_peers))
        .route("/api/mempool", get(mempool))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Works out the client address once per request, for every handler and limit.
async fn client_addr_layer(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = state.api.proxies.client_ip(peer.ip(), req.headers());
    let addr = ClientAddr {
        ip,
        key: client_addr::limit_key(ip),
    };
    req.extensions_mut().insert(addr);
    next.run(req).await
}

async fn ws_handler(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    meter: Option<axum::Extension<std::sync::Arc<crate::budget::ConnMeter>>>,
    ws: WebSocketUpgrade,
) -> Response {
    let snap = snapshot(&state);
    if !state
        .api
        .origins
        .allows(&headers, &snap.peers.relay_origins)
    {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not open /ws here (see --allowed-origin)",
        )
            .into_response();
    }
    match state.counter.acquire(
        client.key,
        state.limits.max_connections,
        Some(state.limits.max_per_ip),
    ) {
        Err(refused) => {
            state.refused.fetch_add(1, Ordering::SeqCst);
            let (code, msg) = match refused {
                Over::PerIp => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many connections from {} (limit {})",
                        client_addr::limit_key_string(client.ip),
                        state.limits.max_per_ip
                    ),
                ),
                Over::Total => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "relay is full (limit {} connections)",
                        state.limits.max_connections
                    ),
                ),
            };
            (code, msg).into_response()
        }
        Ok(slot) => ws
            // tungstenite's 128 KiB default read buffer is zero-filled on every read and was
            // most of each idle connection's memory (fan-out bench); messages larger than the
            // buffer still arrive whole, up to the message limit.
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(state.limits.max_message_bytes)
            .max_frame_size(state.limits.max_message_bytes)
            .on_upgrade(move |socket| {
                crate::conn::serve_inbound(
                    state,
                    socket,
                    client_addr::limit_key_string(client.ip),
                    slot,
                    meter.map(|m| m.0),
                )
            }),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

fn snapshot(s: &AppState) -> Arc<Snapshot> {
    s.api.snapshot.borrow().clone()
}

/// Runs a store read on a blocking thread, at most [`STORE_READERS`] at a time.
async fn read_store<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&StoreReader) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    let unavailable =
        |e: String| (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": e}))).into_response();
    let _turn = s
        .api
        .reads
        .acquire()
        .await
        .map_err(|_| unavailable("relay is shutting down".into()))?;
    let store = s.api.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| unavailable(format!("store read failed: {e}")))?
        .map_err(|e| unavailable(e.to_string()))
}

async fn status(State(s): State<AppState>) -> Response {
    let snap = snapshot(&s);
    let mut v = snap.status.clone();
    let api = &s.api;
    let uptime = api.started.elapsed().as_secs_f64();
    v["connections"] = json!(api.connections.total());
    v["connections_refused"] = json!(api.refused.load(Ordering::SeqCst));
    v["local_hashrate"] = json!(api.local_hashes.load(Ordering::SeqCst) as f64 / uptime.max(1.0));
    v["mining_threads"] = json!(api.mining_threads);
    v["uptime_secs"] = json!(uptime as u64);
    Json(v).into_response()
}

#[derive(Deserialize)]
struct BlocksParams {
    from: Option<u64>,
    limit: Option<usize>,
}

async fn blocks(State(s): State<AppState>, UrlQuery(p): UrlQuery<BlocksParams>) -> Response {
    let snap = snapshot(&s);
    let top = p.from.map_or(snap.tip_height, |f| f.min(snap.tip_height));
    let limit = p.limit.unwrap_or(20).clamp(1, 100);
    let prefix = s.api.address_prefix;
    match read_store(&s, move |r| r.active_blocks(top, limit)).await {
        Ok(list) => {
            let list: Vec<Value> = list
                .iter()
                .map(|b| block_summary(b, snap.tip_height, prefix))
                .collect();
            Json(json!({ "blocks": list })).into_response()
        }
        Err(r) => r,
    }
}

async fn block(State(s): State<AppState>, UrlPath(hash): UrlPath<String>) -> Response {
    let hash = match BlockHash::from_hex(&hash) {
        Ok(h) => h,
        Err(e) => return bad_request(format!("block hash: {e}")),
    };
    let snap = snapshot(&s);
    let prefix = s.api.address_prefix;
    match read_store(&s, move |r| r.block(&hash)).await {
        Ok(Some(b)) => {
            let mut v = block_summary(&b, snap.tip_height, prefix);
            v["transactions"] = b.block.txs.iter().map(|t| tx_json(t, prefix)).collect();
            Json(v).into_response()
        }
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

async fn tx(State(s): State<AppState>, UrlPath(id): UrlPath<String>) -> Response {
    let id = match Txid::from_hex(&id) {
        Ok(h) => h,
        Err(e) => return bad_request(format!("transaction id: {e}")),
    };
    let snap = snapshot(&s);
    if let Some(v) = snap.mempool.by_id.get(&id) {
        return Json(&**v).into_response();
    }
    let prefix = s.api.address_prefix;
    match read_store(&s, move |r| r.tx(&id)).await {
        Ok(Some((b, position))) => {
            let mut v = tx_json(&b.block.txs[position], prefix);
            v["status"] = json!("confirmed");
            v["block"] = json!(b.hash.to_string());
            v["height"] = json!(b.height);
            v["confirmations"] = json!(confirmations(&b, snap.tip_height));
            Json(v).into_response()
        }
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

async fn peers(State(s): State<AppState>) -> Response {
    Json(&snapshot(&s).peers.public).into_response()
}

async fn private_peers(State(s): State<AppState>) -> Response {
    Json(&snapshot(&s).peers.private).into_response()
}

async fn mempool(State(s): State<AppState>) -> Response {
    let snap = snapshot(&s);
    let m = &snap.mempool;
    Json(json!({
        "count": m.count,
        "bytes": m.bytes,
        "listed": m.list.len(),
        "transactions": m.list.iter().map(|v| &**v).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

/// Confirmations of an active block under a tip at `tip_height` (none if not active).
fn confirmations(b: &StoredBlock, tip_height: u64) -> Option<u64> {
    // The store can be a block ahead of the snapshot: never below one confirmation.
    b.active
        .then(|| tip_height.saturating_sub(b.height).saturating_add(1))
}

fn block_summary(b: &StoredBlock, tip_height: u64, prefix: &str) -> Value {
    let block = &b.block;
    json!({
        "hash": b.hash.to_string(),
        "height": b.height,
        "prev": block.header.prev.to_string(),
        "time": block.header.time,
        "bits": format!("{:#010x}", block.header.bits.0),
        "nonce": block.header.nonce,
        "merkle_root": block.header.merkle_root.to_string(),
        "tx_count": block.txs.len(),
        "size": block.encoded_len(),
        "active": b.active,
        "confirmations": confirmations(b, tip_height),
        "miner": block.txs.first().and_then(|c| c.outputs.first()).map(|o| encode_address(prefix, &o.key)),
        "reward": block.txs.first().map(|c| c.outputs.iter().map(|o| o.amount.units()).sum::<u64>()),
    })
}
