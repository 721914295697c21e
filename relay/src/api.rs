//! HTTP: the page, `/ws`, the JSON API and `/metrics`. API answers are computed by the
//! node task from the node itself (a query travels over the same bounded channel), so
//! nothing here holds node state.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Path as UrlPath, Query as UrlQuery, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tower_http::services::{ServeDir, ServeFile};

use tabcoin_core::encode::Encode;
use tabcoin_core::node::Node;
use tabcoin_core::primitives::{Block, BlockHash, Payload, Transaction, Txid};
use tabcoin_core::units::Height;
use tabcoin_core::wallet::encode_address;

use crate::node_task::{AppState, ConnRefused, RelayInfo, ToNode};

/// What the API asks the node task.
#[derive(Debug, Clone)]
pub(crate) enum Query {
    Status,
    Blocks { from: Option<u64>, limit: usize },
    Block(BlockHash),
    Tx(Txid),
    Peers,
    Mempool,
}

/// Per-connection WebSocket read buffer.
pub(crate) const READ_BUFFER: usize = 8 * 1024;

pub(crate) fn router(state: AppState, web_dir: &Path) -> Router {
    let index = ServeFile::new(web_dir.join("index.html"));
    let files = ServeDir::new(web_dir).not_found_service(index);
    Router::new()
        .route("/ws", get(ws_handler))
        .route("/api/status", get(status))
        .route("/api/blocks", get(blocks))
        .route("/api/block/{hash}", get(block))
        .route("/api/tx/{id}", get(tx))
        .route("/api/peers", get(peers))
        .route("/api/mempool", get(mempool))
        .route("/metrics", get(metrics))
        .fallback_service(files)
        .with_state(state)
}

async fn ws_handler(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    match state.counter.acquire(addr.ip(), &state.limits) {
        Err(refused) => {
            state.refused.fetch_add(1, Ordering::SeqCst);
            let (code, msg) = match refused {
                ConnRefused::PerIp => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many connections from {} (limit {})",
                        addr.ip(),
                        state.limits.max_per_ip
                    ),
                ),
                ConnRefused::Total => (
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
            .on_upgrade(move |socket| crate::conn::serve_inbound(state, socket, addr, slot)),
    }
}

async fn ask(state: &AppState, q: Query) -> Result<Value, Response> {
    let (tx, rx) = oneshot::channel();
    let unavailable = || (StatusCode::SERVICE_UNAVAILABLE, "node is shutting down").into_response();
    state
        .to_node
        .send(ToNode::Query(q, tx))
        .await
        .map_err(|_| unavailable())?;
    rx.await.map_err(|_| unavailable())
}

fn reply(v: Result<Value, Response>) -> Response {
    match v {
        Ok(Value::Null) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
        }
        Ok(v) if v.get("error").is_some() => (StatusCode::BAD_REQUEST, Json(v)).into_response(),
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

async fn status(State(s): State<AppState>) -> Response {
    reply(ask(&s, Query::Status).await)
}

#[derive(Deserialize)]
struct BlocksParams {
    from: Option<u64>,
    limit: Option<usize>,
}

async fn blocks(State(s): State<AppState>, UrlQuery(p): UrlQuery<BlocksParams>) -> Response {
    let (from, limit) = (p.from, p.limit.unwrap_or(20));
    reply(
        ask(
            &s,
            Query::Blocks {
                from,
                limit: limit.clamp(1, 100),
            },
        )
        .await,
    )
}

async fn block(State(s): State<AppState>, UrlPath(hash): UrlPath<String>) -> Response {
    match BlockHash::from_hex(&hash) {
        Ok(h) => reply(ask(&s, Query::Block(h)).await),
        Err(e) => bad_request(format!("block hash: {e}")),
    }
}

async fn tx(State(s): State<AppState>, UrlPath(id): UrlPath<String>) -> Response {
    match Txid::from_hex(&id) {
        Ok(h) => reply(ask(&s, Query::Tx(h)).await),
        Err(e) => bad_request(format!("transaction id: {e}")),
    }
}

async fn peers(State(s): State<AppState>) -> Response {
    reply(ask(&s, Query::Peers).await)
}

async fn mempool(State(s): State<AppState>) -> Response {
    reply(ask(&s, Query::Mempool).await)
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

// ---- answers, computed in the node task -------------------------------------------------

pub(crate) fn answer(node: &Node, q: &Query, info: &RelayInfo) -> Value {
    match q {
        Query::Status => status_json(node, info),
        Query::Blocks { from, limit } => {
            let chain = node.chain();
            let top = from.map_or(chain.height().0, |f| f.min(chain.height().0));
            let list: Vec<Value> = (0..=top)
                .rev()
                .take(*limit)
                .filter_map(|h| chain.hash_at(Height(h)))
                .filter_map(|hash| chain.block(&hash).map(|b| block_summary(node, b, hash)))
                .collect();
            json!({ "blocks": list })
        }
        Query::Block(hash) => match node.chain().block(hash) {
            Some(b) => {
                let mut v = block_summary(node, b, *hash);
                let prefix = node.chain().params().address_prefix;
                v["transactions"] = b.txs.iter().map(|t| tx_json(t, prefix)).collect();
                v
            }
            None => Value::Null,
        },
        Query::Tx(id) => find_tx(node, id),
        Query::Peers => {
            let peers: Vec<Value> = node
                .peers()
                .into_iter()
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
            let known: Vec<Value> = node
                .known_nodes()
                .into_iter()
                .map(|r| json!({"url": r.url, "node_id": r.node_id.to_string(), "last_seen": r.last_seen}))
                .collect();
            json!({ "peers": peers, "known_relays": known })
        }
        Query::Mempool => {
            let prefix = node.chain().params().address_prefix;
            let entries: Vec<Value> = node
                .mempool()
                .entries()
                .into_iter()
                .map(|e| {
                    let mut v = tx_json(&e.tx, prefix);
                    v["fee"] = json!(e.fee.units());
                    v["fee_rate"] = json!(e.fee_rate());
                    v
                })
                .collect();
            json!({
                "count": node.mempool().len(),
                "bytes": node.mempool().bytes(),
                "transactions": entries,
            })
        }
    }
}

fn status_json(node: &Node, info: &RelayInfo) -> Value {
    let chain = node.chain();
    let tip = chain.tip();
    let peers = node.peers();
    let browsers = peers
        .iter()
        .filter(|p| p.kind == tabcoin_core::wire::NodeKind::Browser)
        .count();
    let uptime = info.started.elapsed().as_secs_f64();
    json!({
        "network": chain.params().name,
        "genesis": chain.genesis_hash().to_string(),
        "tip": tip.hash.to_string(),
        "height": tip.height.0,
        "work": format!("{:x}", tip.work),
        "work_log2": tip.work.log2(),
        "bits": format!("{:#010x}", tip.header.bits.0),
        "time": tip.header.time,
        "synced": node.is_synced(),
        "utxo_count": chain.utxo().len(),
        "utxo_digest": chain.utxo().digest().to_string(),
        "best_header_height": chain.best_header().height.0,
        "peers": peers.len(),
        "peers_browser": browsers,
        "peers_relay": peers.len() - browsers,
        "known_relays": node.known_nodes().len(),
        "connections": info.connections.total(),
        "connections_refused": info.refused.load(Ordering::SeqCst),
        "mempool": { "count": node.mempool().len(), "bytes": node.mempool().bytes() },
        "hashrate_estimate": node.chain().hashrate_estimate(60),
        "local_hashrate": info.local_hashes.load(Ordering::SeqCst) as f64 / uptime.max(1.0),
        "mining_threads": info.mining_threads,
        "node_id": node.node_id().to_string(),
        "public_url": node.config().public_url,
        "target_block_time": chain.params().target_block_time,
        "uptime_secs": uptime as u64,
    })
}

fn block_summary(node: &Node, b: &Block, hash: BlockHash) -> Value {
    let chain = node.chain();
    let e = chain.entry(&hash);
    let height = e.map(|e| e.height.0);
    json!({
        "hash": hash.to_string(),
        "height": height,
        "prev": b.header.prev.to_string(),
        "time": b.header.time,
        "bits": format!("{:#010x}", b.header.bits.0),
        "nonce": b.header.nonce,
        "merkle_root": b.header.merkle_root.to_string(),
        "tx_count": b.txs.len(),
        "size": b.encoded_len(),
        "active": chain.is_active(&hash),
        "confirmations": height.filter(|_| chain.is_active(&hash)).map(|h| chain.height().0 - h + 1),
        "miner": b.txs.first().and_then(|c| c.outputs.first()).map(|o| encode_address(chain.params().address_prefix, &o.key)),
        "reward": b.txs.first().map(|c| c.outputs.iter().map(|o| o.amount.units()).sum::<u64>()),
    })
}

fn tx_json(t: &Transaction, prefix: &str) -> Value {
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
        "size": t.encoded_len(),
        "inputs": t.inputs.iter().map(|i| json!({"txid": i.prev.txid.to_string(), "vout": i.prev.vout})).collect::<Vec<_>>(),
        "outputs": t.outputs.iter().map(|o| json!({"amount": o.amount.units(), "address": encode_address(prefix, &o.key)})).collect::<Vec<_>>(),
        "post": post,
    })
}

/// A transaction from the pool or the active chain (searching back at most 10,000 blocks:
/// there is no transaction index yet).
fn find_tx(node: &Node, id: &Txid) -> Value {
    let prefix = node.chain().params().address_prefix;
    if let Some(e) = node.mempool().get(id) {
        let mut v = tx_json(&e.tx, prefix);
        v["status"] = json!("mempool");
        v["fee"] = json!(e.fee.units());
        return v;
    }
    let chain = node.chain();
    let tip = chain.height().0;
    for h in (0..=tip).rev().take(10_000) {
        let Some(hash) = chain.hash_at(Height(h)) else {
            continue;
        };
        let Some(b) = chain.block(&hash) else {
            continue;
        };
        if let Some(t) = b.txs.iter().find(|t| t.txid() == *id) {
            let mut v = tx_json(t, prefix);
            v["status"] = json!("confirmed");
            v["block"] = json!(hash.to_string());
            v["height"] = json!(h);
            v["confirmations"] = json!(tip - h + 1);
            return v;
        }
    }
    Value::Null
}
