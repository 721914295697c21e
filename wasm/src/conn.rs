//! WebSocket connections to relays: dialing, the send side (bounded by [`SendQueue`]) and
//! the receive side (paused while the write queue is full, so validation stays within its
//! bound of storage; what arrives meanwhile waits in the connection's [`Inbox`], bounded by
//! [`inbox_budget`] and [`MAX_INBOX_MESSAGES`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_channel::oneshot;
use futures_util::future::{Either, select};
use futures_util::{FutureExt, SinkExt, StreamExt};
use gloo::net::websocket::{Message as WsMessage, State as WsState, futures::WebSocket};
use gloo::timers::future::TimeoutFuture;
use tabcoin_core::node::{Input, MAX_GETDATA_REPLY_BYTES, MAX_TXS_IN_FLIGHT_PER_PEER, PeerId};
use tabcoin_core::params::Params;
use tabcoin_core::wire::MAX_MESSAGE_SIZE;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_futures::spawn_local;

use crate::driver::{TICK_MS, emit, feed, feed_all};
use crate::events::{ConnState, NodeEvent};
use crate::sendq::{self, SendQueue};
use crate::{BrowserNode, Inner};

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

/// Bytes of a relay's messages one connection holds unread (while the write queue is full,
/// or the thread is busy): what an honest relay can have on its way to us at once — the
/// largest reply to the blocks we requested ([`MAX_GETDATA_REPLY_BYTES`]), the transactions
/// we requested ([`MAX_TXS_IN_FLIGHT_PER_PEER`] of at most `max_tx_size`), plus a few largest
/// messages it may send unrequested (a pushed or compact block, `inv`, `headers`). A relay
/// that sends more is flooding us: the connection closes (the node redials it later).
/// About 30 MB on both networks.
pub fn inbox_budget(params: &Params) -> usize {
    MAX_GETDATA_REPLY_BYTES + MAX_TXS_IN_FLIGHT_PER_PEER * params.max_tx_size + 4 * MAX_MESSAGE_SIZE
}
/// …and at most this many messages (each also counts [`INBOX_MESSAGE_OVERHEAD`] bytes, so a
/// flood of tiny messages is bounded too).
pub const MAX_INBOX_MESSAGES: usize = 4_096;
/// What holding one message costs beyond its bytes (its allocation and queue slot).
const INBOX_MESSAGE_OVERHEAD: usize = 64;

/// A relay's unread messages passed the connection's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxFull {
    pub messages: usize,
    pub bytes: usize,
    pub budget: usize,
}

impl core::fmt::Display for InboxFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "inbox full: {} unread messages of {} bytes pass the budget of {} messages, {} bytes",
            self.messages, self.bytes, MAX_INBOX_MESSAGES, self.budget
        )
    }
}

impl core::error::Error for InboxFull {}

/// A connection's messages received and not yet fed to the node, in arrival order.
#[derive(Debug)]
struct Inbox {
    messages: VecDeque<Vec<u8>>,
    /// Their bytes, each message with [`INBOX_MESSAGE_OVERHEAD`].
    bytes: usize,
    /// At most this many bytes ([`inbox_budget`]).
    budget: usize,
}

impl Inbox {
    fn new(budget: usize) -> Inbox {
        Inbox {
            messages: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    /// Holds `msg`, or refuses it when the connection's backlog passes its budget.
    fn push(&mut self, msg: Vec<u8>) -> Result<(), InboxFull> {
        let bytes = self.bytes + msg.len() + INBOX_MESSAGE_OVERHEAD;
        let messages = self.messages.len() + 1;
        if bytes > self.budget || messages > MAX_INBOX_MESSAGES {
            return Err(InboxFull {
                messages,
                bytes,
                budget: self.budget,
            });
        }
        self.bytes = bytes;
        self.messages.push_back(msg);
        Ok(())
    }

    /// The oldest messages, at most [`MAX_BATCH`] and about [`MAX_BATCH_BYTES`] (their blocks
    /// count against the write queue only after the call, so this bounds how far past its
    /// high-water mark one call can take the queue).
    fn batch(&mut self) -> Vec<Vec<u8>> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Some(msg) = self.messages.pop_front() else {
                break;
            };
            bytes += msg.len();
            self.bytes -= msg.len() + INBOX_MESSAGE_OVERHEAD;
            batch.push(msg);
        }
        batch
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// How a connection's receive side ended.
enum Ended {
    /// The socket closed (or failed).
    Closed,
    /// The relay sent more than the inbox holds.
    Flooded(InboxFull),
}

/// Test-only (the page never calls it): while `on`, the node takes no peer messages, as
/// if the write queue were full, so an e2e test can hold a tab's store back at will.
#[wasm_bindgen]
impl BrowserNode {
    #[wasm_bindgen(js_name = testHoldStore)]
    pub fn test_hold_store(&self, on: bool) {
        let writer = self.inner.borrow().writer.clone();
        writer.hold(on);
    }
}

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
                reason: None,
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
                    reason: None,
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
            reason: None,
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
    let ended = receive(&weak, peer, &mut stream).await;
    let mut reason = None;
    if let Ended::Flooded(full) = ended {
        // Not a ban: the node only hears that the link closed and redials it later.
        web_sys::console::warn_1(&format!("tabcoin: dropping the relay {url}: {full}").into());
        reason = Some(full.to_string());
        if let Some(inner) = weak.upgrade() {
            let conn = inner.borrow().conns.get(&peer).map(|c| c.queue.clone());
            if let Some(q) = conn {
                q.close();
            }
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
                reason,
            },
        );
    }
}

/// The receive side: feeds the relay's messages to the node in order, in batches, while the
/// write queue has room; meanwhile keeps reading them into the connection's [`Inbox`], so a
/// relay can make the tab hold no more than the inbox's budget.
async fn receive(
    weak: &Weak<RefCell<Inner>>,
    peer: PeerId,
    stream: &mut (
             impl futures_util::Stream<Item = Result<WsMessage, gloo::net::websocket::WebSocketError>>
             + Unpin
         ),
) -> Ended {
    let mut inbox = match weak.upgrade() {
        Some(inner) => Inbox::new(inbox_budget(inner.borrow().node.chain().params())),
        None => return Ended::Closed,
    };
    let mut closed = false;
    loop {
        if inbox.is_empty() {
            if closed {
                return Ended::Closed;
            }
            match stream.next().await {
                Some(Ok(WsMessage::Bytes(b))) => {
                    if let Err(full) = inbox.push(b) {
                        return Ended::Flooded(full);
                    }
                }
                Some(Ok(WsMessage::Text(_))) => continue,
                Some(Err(_)) | None => return Ended::Closed,
            }
        }
        // Back-pressure: while the store lags, peers' messages wait in the inbox (the node
        // requests nothing more meanwhile), so validation stays within the write queue's
        // high-water mark of storage.
        let writer = match weak.upgrade() {
            Some(inner) => inner.borrow().writer.clone(),
            None => return Ended::Closed,
        };
        {
            let mut room = Box::pin(writer.room());
            while !closed {
                match select(room.as_mut(), stream.next()).await {
                    Either::Left(((), _)) => break,
                    Either::Right((Some(Ok(WsMessage::Bytes(b))), _)) => {
                        if let Err(full) = inbox.push(b) {
                            return Ended::Flooded(full);
                        }
                    }
                    Either::Right((Some(Ok(WsMessage::Text(_))), _)) => {}
                    Either::Right((Some(Err(_)) | None, _)) => closed = true,
                }
            }
            if closed {
                room.await;
            }
        }
        // What arrived meanwhile (while the thread was busy) joins the inbox; the oldest
        // messages go to the node in one call.
        while !closed {
            match stream.next().now_or_never() {
                Some(Some(Ok(WsMessage::Bytes(b)))) => {
                    if let Err(full) = inbox.push(b) {
                        return Ended::Flooded(full);
                    }
                }
                Some(Some(Ok(WsMessage::Text(_)))) => {}
                Some(Some(Err(_)) | None) => closed = true,
                None => break,
            }
        }
        let Some(inner) = weak.upgrade() else {
            return Ended::Closed;
        };
        if !inner.borrow().conns.contains_key(&peer) {
            return Ended::Closed;
        }
        let inputs = inbox
            .batch()
            .into_iter()
            .map(|bytes| Input::Received { peer, bytes })
            .collect();
        feed_all(&inner, inputs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbox_keeps_order_and_batches_as_before() {
        let mut inbox = Inbox::new(inbox_budget(&Params::test()));
        for k in 0..20u8 {
            inbox.push(vec![k; 10]).unwrap();
        }
        let first = inbox.batch();
        assert_eq!(first.len(), MAX_BATCH);
        assert_eq!(first[0][0], 0);
        assert_eq!(first[MAX_BATCH - 1][0], MAX_BATCH as u8 - 1);
        let rest = inbox.batch();
        assert_eq!(rest.len(), 20 - MAX_BATCH);
        assert!(inbox.is_empty());
        assert_eq!(inbox.bytes, 0);
    }

    #[test]
    fn a_batch_stops_at_its_byte_bound() {
        let mut inbox = Inbox::new(inbox_budget(&Params::test()));
        for _ in 0..4 {
            inbox.push(vec![0; MAX_BATCH_BYTES / 2]).unwrap();
        }
        assert_eq!(inbox.batch().len(), 2);
        assert_eq!(inbox.batch().len(), 2);
    }

    #[test]
    fn a_backlog_past_the_budget_is_refused() {
        for params in [Params::main(), Params::test()] {
            let budget = inbox_budget(&params);
            let mut inbox = Inbox::new(budget);
            let mut held = 0;
            let full = loop {
                match inbox.push(vec![0; MAX_MESSAGE_SIZE]) {
                    Ok(()) => held += 1,
                    Err(full) => break full,
                }
            };
            // Every block and transaction an honest relay may owe us, plus a few pushed
            // messages, fits.
            let owed = MAX_GETDATA_REPLY_BYTES + MAX_TXS_IN_FLIGHT_PER_PEER * params.max_tx_size;
            assert!(held * MAX_MESSAGE_SIZE >= owed + 3 * MAX_MESSAGE_SIZE);
            assert!(inbox.bytes <= budget);
            assert_eq!(full.budget, budget);
            assert!(full.to_string().starts_with("inbox full: "));
        }
        // Tiny messages are bounded by count.
        let mut inbox = Inbox::new(inbox_budget(&Params::test()));
        for _ in 0..MAX_INBOX_MESSAGES {
            inbox.push(Vec::new()).unwrap();
        }
        assert!(inbox.push(Vec::new()).is_err());
    }
}
