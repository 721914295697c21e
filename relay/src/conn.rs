//! One task pair per WebSocket connection: a reader that enforces the transport limits and
//! feeds the node task, and a writer that drains a bounded queue. Inbound connections come
//! from axum, outbound ones from tokio-tungstenite; both run the same pump.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::extract::ws::{self, WebSocket};
use futures_util::{Sink, SinkExt, Stream, StreamExt, future};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use crate::budget::{ConnMeter, OVER_BUDGET};
use crate::counter::Slot;
use crate::node_task::{AppState, CloseReason, ConnOut, Queued, ToNode};

/// What a reader saw, whatever the WebSocket library.
pub(crate) enum Incoming {
    Binary(Vec<u8>),
    /// Text frames are not part of the protocol.
    Text,
    /// Ping, pong: handled by the library.
    Control,
    Close,
    /// The library refused the frame (too large, malformed) or the socket failed.
    Error(String),
}

/// What a writer sends.
pub(crate) enum Outgoing {
    Binary(Arc<[u8]>),
    Close(CloseReason),
}

/// Accepts an upgraded inbound WebSocket; `remote` is what bans count against (the
/// client's address after trusted proxies, IPv6 by /64).
pub(crate) async fn serve_inbound(
    state: AppState,
    socket: WebSocket,
    remote: String,
    slot: Slot,
    meter: Option<Arc<ConnMeter>>,
) {
    // The socket under this WebSocket charges what it reads to `meter` from now on.
    let meter = meter.unwrap_or_else(|| ConnMeter::new(state.budget.clone()));
    meter.start_websocket();
    let (sink, stream) = socket.split();
    let stream = stream.map(|m| match m {
        Ok(ws::Message::Binary(b)) => Incoming::Binary(b.to_vec()),
        Ok(ws::Message::Text(_)) => Incoming::Text,
        Ok(ws::Message::Ping(_) | ws::Message::Pong(_)) => Incoming::Control,
        Ok(ws::Message::Close(_)) => Incoming::Close,
        Err(e) => Incoming::Error(e.to_string()),
    });
    let sink = sink.with(|o: Outgoing| {
        future::ready(Ok::<_, axum::Error>(match o {
            Outgoing::Binary(b) => ws::Message::Binary(axum::body::Bytes::from_owner(b)),
            Outgoing::Close(c) => ws::Message::Close(Some(ws::CloseFrame {
                code: c.code,
                reason: c.reason.into(),
            })),
        }))
    });
    // Bans apply to the (grouped) client address, not the port.
    pump(state, false, remote, stream, sink, Some(slot), meter).await;
}

/// Dials a relay in the background; failure is reported to the node.
pub(crate) fn dial(state: AppState, url: String) {
    tokio::spawn(async move {
        use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig};
        let config = WebSocketConfig::default()
            .read_buffer_size(crate::api::READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(state.limits.max_message_bytes))
            .max_frame_size(Some(state.limits.max_message_bytes));
        let tls = tokio_tungstenite::Connector::Rustls(state.tls_client.clone());
        // Resolve and check before connecting, then connect to the checked address
        // (docs/PROTOCOL.md §5.6).
        let policy = tabcoin_core::dial::DialPolicy::relay(state.limits.allow_local_dial);
        let attempt = tokio::time::timeout(state.limits.dial_timeout, async {
            let addr = crate::dial::resolve_checked(&policy, &url)
                .await
                .map_err(|e| e.to_string())?;
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            tokio_tungstenite::client_async_tls_with_config(
                url.as_str(),
                tcp,
                Some(config),
                Some(tls),
            )
            .await
            .map_err(|e| e.to_string())
        })
        .await;
        let socket = match attempt {
            Ok(Ok((socket, _))) => socket,
            Ok(Err(e)) => {
                debug!(%url, "dial failed: {e}");
                let _ = state.to_node.send(ToNode::DialFailed { url }).await;
                return;
            }
            Err(_) => {
                debug!(%url, "dial timed out");
                let _ = state.to_node.send(ToNode::DialFailed { url }).await;
                return;
            }
        };
        let (sink, stream) = socket.split();
        let stream = stream.map(|m| match m {
            Ok(tungstenite::Message::Binary(b)) => Incoming::Binary(b.to_vec()),
            Ok(tungstenite::Message::Text(_)) => Incoming::Text,
            Ok(tungstenite::Message::Close(_)) => Incoming::Close,
            Ok(_) => Incoming::Control,
            Err(e) => Incoming::Error(e.to_string()),
        });
        let sink = sink.with(|o: Outgoing| {
            future::ready(Ok::<_, tungstenite::Error>(match o {
                Outgoing::Binary(b) => {
                    tungstenite::Message::Binary(tungstenite::Bytes::from_owner(b))
                }
                Outgoing::Close(c) => {
                    tungstenite::Message::Close(Some(tungstenite::protocol::CloseFrame {
                        code: c.code.into(),
                        reason: c.reason.into(),
                    }))
                }
            }))
        });
        // Outbound links are few (`target_outbound`); only their retained buffers are charged.
        let meter = ConnMeter::new(state.budget.clone());
        pump(state, true, url, stream, sink, None, meter).await;
    });
}

/// A token bucket: `rate` per second, bursts of twice that.
struct Bucket {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        Bucket {
            tokens: 2.0 * f64::from(rate),
            rate: f64::from(rate),
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(2.0 * self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn pump<R, W>(
    state: AppState,
    outbound: bool,
    remote: String,
    mut stream: R,
    mut sink: W,
    slot: Option<Slot>,
    meter: Arc<ConnMeter>,
) where
    R: Stream<Item = Incoming> + Unpin + Send,
    W: Sink<Outgoing> + Unpin + Send + 'static,
{
    let conn = state.conn_id();
    let (tx, mut rx) = mpsc::channel::<Queued>(state.limits.max_write_buffer_msgs);
    let queued = Arc::new(AtomicUsize::new(0));
    let (kill_tx, mut kill_rx) = watch::channel::<Option<CloseReason>>(None);
    let out = ConnOut {
        tx,
        queued: queued.clone(),
        kill: kill_tx.clone(),
    };
    if state
        .to_node
        .send(ToNode::Connected {
            conn,
            outbound,
            remote: remote.clone(),
            out,
        })
        .await
        .is_err()
    {
        return;
    }
    let mut shutdown = state.shutdown.clone();

    // Writer: queued messages in order, each within the write deadline; on a close, what is
    // queued goes first, all of it within the close deadline. A peer that does not read is
    // closed and everything it held is dropped with the socket.
    let writer_queued = queued.clone();
    let mut writer_kill = kill_rx.clone();
    let writer_kill_tx = kill_tx.clone();
    let writer_meter = meter.clone();
    let write_timeouts = state.write_timeouts.clone();
    let (write_timeout, close_timeout) = (state.limits.write_timeout, state.limits.close_timeout);
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = closing(&mut writer_kill) => break,
                msg = rx.recv() => {
                    let Some(q) = msg else { break };
                    let len = q.bytes.len();
                    if !writer_meter.retain(len) {
                        let _ = writer_kill_tx.send(Some(CloseReason::new(1013, OVER_BUDGET)));
                        return;
                    }
                    match tokio::time::timeout(write_timeout, sink.send(Outgoing::Binary(q.bytes.clone()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            let _ = writer_kill_tx.send(Some(CloseReason::new(1006, "socket failed")));
                            return;
                        }
                        Err(_) => {
                            write_timeouts.fetch_add(1, Ordering::SeqCst);
                            let _ = writer_kill_tx.send(Some(CloseReason::new(
                                1008,
                                format!("write deadline: a message took over {} ms", write_timeout.as_millis()),
                            )));
                            return;
                        }
                    }
                    writer_queued.fetch_sub(len, Ordering::SeqCst);
                    drop(q);
                }
            }
        }
        let reason = writer_kill
            .borrow()
            .clone()
            .unwrap_or_else(|| CloseReason::new(1000, "closing"));
        let _ = tokio::time::timeout(close_timeout, async move {
            while let Ok(q) = rx.try_recv() {
                if sink.send(Outgoing::Binary(q.bytes.clone())).await.is_err() {
                    return;
                }
            }
            let _ = sink.send(Outgoing::Close(reason)).await;
            let _ = sink.close().await;
        })
        .await;
    });

    // Reader: limits first, then the node. Every wait also watches for a close.
    let mut bucket = Bucket::new(state.limits.messages_per_sec);
    let reason = loop {
        let frame = tokio::select! {
            biased;
            _ = closing(&mut kill_rx) => break None,
            _ = stopping(&mut shutdown) => break Some(CloseReason::new(1001, "relay shutting down")),
            frame = stream.next() => frame,
        };
        match frame {
            None | Some(Incoming::Close) => break None,
            Some(Incoming::Control) => meter.delivered(),
            Some(Incoming::Text) => {
                break Some(CloseReason::new(
                    1003,
                    "text frames are not part of the protocol",
                ));
            }
            Some(Incoming::Error(e)) => {
                let code = if e.contains(OVER_BUDGET) {
                    1013
                } else if e.contains("too long")
                    || e.contains("too big")
                    || e.contains("Space limit")
                {
                    1009
                } else {
                    1002
                };
                break Some(CloseReason::new(code, format!("refused: {e}")));
            }
            Some(Incoming::Binary(bytes)) => {
                meter.delivered();
                // Block bodies come as fast as the peer sends what we asked for; the node
                // bounds them itself (its download window; unsolicited ones are offences).
                if !tabcoin_core::wire::carries_block_bodies(&bytes) && !bucket.take() {
                    break Some(CloseReason::new(
                        1008,
                        format!(
                            "rate limit: more than {} messages per second",
                            state.limits.messages_per_sec
                        ),
                    ));
                }
                if !meter.retain(bytes.len()) {
                    break Some(CloseReason::new(1013, OVER_BUDGET));
                }
                // The inbox holds at most `inbox_bytes` of messages: wait for room (the peer's
                // socket is not read meanwhile, so it is slowed down, not buffered).
                let need = u32::try_from(bytes.len().max(1)).unwrap_or(u32::MAX);
                let permit = tokio::select! {
                    biased;
                    _ = closing(&mut kill_rx) => break None,
                    _ = stopping(&mut shutdown) => break Some(CloseReason::new(1001, "relay shutting down")),
                    p = state.inbox.clone().acquire_many_owned(need) => match p {
                        Ok(p) => p,
                        Err(_) => break None,
                    },
                };
                let sent = tokio::select! {
                    biased;
                    _ = closing(&mut kill_rx) => break None,
                    _ = stopping(&mut shutdown) => break Some(CloseReason::new(1001, "relay shutting down")),
                    r = state.to_node.send(ToNode::Received { conn, bytes, permit }) => r,
                };
                if sent.is_err() {
                    break None;
                }
            }
        }
    };
    if let Some(r) = reason {
        debug!(conn, %remote, code = r.code, "closing: {}", r.reason);
        let _ = kill_tx.send(Some(r));
    } else if let Some(r) = kill_rx.borrow().clone() {
        debug!(conn, %remote, code = r.code, "closed: {}", r.reason);
    }
    // The node may be busy; do not hold the socket for it (the writer is already closing).
    if let Err(mpsc::error::TrySendError::Full(m)) = state.to_node.try_send(ToNode::Closed { conn })
    {
        let to_node = state.to_node.clone();
        tokio::spawn(async move { to_node.send(m).await });
    }
    let _ = writer.await;
    // Our close frame is out; read (and drop) what the peer still sends until it closes too,
    // within the close deadline. Closing the socket with unread data in it would reset the
    // connection, and a reset can destroy the close frame (and its reason) before the peer
    // reads it.
    let _ = tokio::time::timeout(close_timeout, async {
        while stream.next().await.is_some() {}
    })
    .await;
    drop(stream);
    drop(slot);
}

/// Resolves once a close was asked for (the guard `wait_for` returns is not held).
async fn closing(rx: &mut watch::Receiver<Option<CloseReason>>) {
    let _ = rx.wait_for(Option::is_some).await;
}

async fn stopping(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
