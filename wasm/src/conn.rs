//! WebSocket connections to relays: dialing, the send side (bounded by [`SendQueue`]) and
//! the receive side (paused while the write queue is full, so validation stays within its
//! bound of storage).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_channel::oneshot;
use futures_util::future::select;
use futures_util::{FutureExt, SinkExt, StreamExt};
use gloo::net::websocket::{Message as WsMessage, State as WsState, futures::WebSocket};
use gloo::timers::future::TimeoutFuture;
use tabcoin_core::node::{Input, PeerId};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen_futures::spawn_local;

use crate::Inner;
use crate::driver::{TICK_MS, emit, feed, feed_all};
use crate::events::{ConnState, NodeEvent};
use crate::sendq::{self, SendQueue};

/// A connection to a relay.
pub(crate) struct Conn {
    pub(crate) url: String,
    pub(crate) tx: UnboundedSender<Vec<u8>>,
    /// Bytes queued for this connection: in `tx` and in the socket's own buffer.
    pub(crate) queue: sendq::SendQueue,
}

/// At most this many messages that arrived together are fed to the node in one call.
const MAX_BATCH: usize = 16;
/// …and no more once they reach this many bytes.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// How long a socket may take to open.
const OPEN_TIMEOUT_MS: u32 = 10_000;

/// Resolves once `socket` leaves CONNECTING (its `open`, `error` or `close` event), or after
/// `ms`. Waiting on the event, not polling the state, starts the handshake the moment the
/// socket opens (polling every 25 ms cost a sync 12 ms on average, up to 25).
async fn left_connecting(socket: &web_sys::WebSocket, ms: u32) {
    let (tx, rx) = oneshot::channel::<()>();
    let tx = RefCell::new(Some(tx));
    let done = Closure::<dyn FnMut()>::new(move || {
        if let Some(tx) = tx.borrow_mut().take() {
            let _ = tx.send(());
        }
    });
    const EVENTS: [&str; 3] = ["open", "error", "close"];
    for ev in EVENTS {
        let _ = socket.add_event_listener_with_callback(ev, done.as_ref().unchecked_ref());
    }
    select(rx, TimeoutFuture::new(ms)).await;
    for ev in EVENTS {
        let _ = socket.remove_event_listener_with_callback(ev, done.as_ref().unchecked_ref());
    }
}

/// When the node dials `url` again: its backoff, but no sooner than its next tick.
pub(crate) fn redial_in(inner: &Rc<RefCell<Inner>>, url: &str) -> Option<u64> {
    inner
        .borrow()
        .node
        .redial_in_ms(url)
        .map(|ms| ms.max(TICK_MS))
}

pub(crate) fn dial(inner: &Rc<RefCell<Inner>>, url: String) {
    let (tx, rx) = unbounded();
    let queue = sendq::SendQueue::default();
    let peer = {
        let mut i = inner.borrow_mut();
        let p = i.next_peer;
        i.next_peer += 1;
        i.conns.insert(
            p,
            Conn {
                url: url.clone(),
                tx,
                queue: queue.clone(),
            },
        );
        p
    };
    spawn_local(run_conn(Rc::downgrade(inner), peer, url, rx, queue));
}

async fn run_conn(
    weak: Weak<RefCell<Inner>>,
    peer: PeerId,
    url: String,
    mut rx: UnboundedReceiver<Vec<u8>>,
    queue: SendQueue,
) {
    let with = |f: &dyn Fn(&Rc<RefCell<Inner>>)| {
        if let Some(inner) = weak.upgrade() {
            f(&inner);
        }
    };
    with(&|inner| {
        emit(
            inner,
            &NodeEvent::Connection {
                state: ConnState::Connecting,
                url: url.clone(),
                retry_in_ms: None,
            },
        )
    });
    let failed = |weak: &Weak<RefCell<Inner>>| {
        if let Some(inner) = weak.upgrade() {
            let known = inner.borrow_mut().conns.remove(&peer).is_some();
            if known {
                feed(&inner, Input::DialFailed { url: url.clone() });
            }
            emit(
                &inner,
                &NodeEvent::Connection {
                    state: ConnState::Closed,
                    url: url.clone(),
                    retry_in_ms: redial_in(&inner, &url),
                },
            );
        }
    };
    // The socket itself stays reachable so its `bufferedAmount` counts against the budget.
    let Ok(raw) = web_sys::WebSocket::new(&url) else {
        failed(&weak);
        return;
    };
    queue.attach(raw.clone());
    let state = raw.clone();
    let Ok(ws) = WebSocket::try_from(raw) else {
        failed(&weak);
        return;
    };
    if matches!(ws.state(), WsState::Connecting) {
        left_connecting(&state, OPEN_TIMEOUT_MS).await;
    }
    if !matches!(ws.state(), WsState::Open) {
        failed(&weak);
        return;
    }
    let (mut sink, mut stream) = ws.split();
    let Some(inner) = weak.upgrade() else { return };
    if !inner.borrow().conns.contains_key(&peer) {
        return;
    }
    feed(
        &inner,
        Input::Connected {
            peer,
            outbound: true,
            remote: url.clone(),
        },
    );
    emit(
        &inner,
        &NodeEvent::Connection {
            state: ConnState::Open,
            url: url.clone(),
            retry_in_ms: None,
        },
    );
    drop(inner);
    spawn_local(async move {
        while let Some(bytes) = rx.next().await {
            // A socket the peer (or a proxy) already closed: sending on it would only make
            // the browser log "WebSocket is already in CLOSING or CLOSED state".
            if state.ready_state() != web_sys::WebSocket::OPEN {
                break;
            }
            let len = bytes.len();
            let sent = sink.send(WsMessage::Bytes(bytes)).await;
            queue.sent(len);
            if sent.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut closed = false;
    while let Some(msg) = stream.next().await {
        let mut batch = Vec::new();
        match msg {
            Ok(WsMessage::Bytes(b)) => batch.push(b),
            Ok(WsMessage::Text(_)) => continue,
            Err(_) => break,
        }
        // Back-pressure: while the store lags, peers' messages wait here (the node
        // requests nothing more meanwhile), so validation stays within the write
        // queue's high-water mark of storage.
        let writer = match weak.upgrade() {
            Some(inner) => inner.borrow().writer.clone(),
            None => return,
        };
        writer.room().await;
        // What arrived meanwhile (while the store lagged, or while the thread was busy) is
        // fed with it in one call, at most MAX_BATCH messages and about MAX_BATCH_BYTES
        // (their blocks count against the write queue only after the call, so this bounds
        // how far past its high-water mark a batch can take the queue).
        let mut bytes = batch[0].len();
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match stream.next().now_or_never() {
                Some(Some(Ok(WsMessage::Bytes(b)))) => {
                    bytes += b.len();
                    batch.push(b);
                }
                Some(Some(Ok(WsMessage::Text(_)))) => {}
                Some(Some(Err(_)) | None) => {
                    closed = true;
                    break;
                }
                None => break,
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        if !inner.borrow().conns.contains_key(&peer) {
            break;
        }
        let inputs = batch
            .into_iter()
            .map(|bytes| Input::Received { peer, bytes })
            .collect();
        feed_all(&inner, inputs);
        if closed {
            break;
        }
    }
    if let Some(inner) = weak.upgrade() {
        let known = inner.borrow_mut().conns.remove(&peer).is_some();
        if known {
            feed(&inner, Input::Disconnected { peer });
        }
        emit(
            &inner,
            &NodeEvent::Connection {
                state: ConnState::Closed,
                url: url.clone(),
                retry_in_ms: redial_in(&inner, &url),
            },
        );
    }
}
