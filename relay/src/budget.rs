//! The relay's memory budget (`--max-memory`): every byte a peer or a visitor can make the
//! relay hold is charged here before it is held, and released when it is freed.
//!
//! What is charged (the worst case is written out in docs/PROTOCOL.md, "Limits"):
//! - each open TCP connection, HTTP or WebSocket, a fixed [`CONN_BASE`] at accept time (its
//!   read and header buffers, the WebSocket state, task and channel state, and the most the
//!   core node can hold for it as a peer);
//! - the bytes a WebSocket peer sent that were read from the socket but not yet delivered as a
//!   whole message (a large message being assembled);
//! - the node inbox, carved out once at start ([`Limits::inbox_bytes`]);
//! - every distinct buffer queued for writing (a block broadcast to 10,000 peers is one
//!   allocation and is charged once).
//!
//! A new connection is refused (HTTP 503) when its base would not fit; a peer whose queued or
//! partially read bytes would not fit is closed (WebSocket 1013).
//!
//! [`Limits::inbox_bytes`]: crate::Limits::inbox_bytes

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the transport holds per open connection: the HTTP header buffer (at most
/// [`HTTP_BUF`], freed at the upgrade) or the 8 KiB WebSocket read buffer, the protocol state,
/// two tasks and a channel. A handshaken idle connection measured 15 KiB (docs/BENCHMARKS.md,
/// fan-out); what a connection holds beyond that (messages) is charged separately.
pub const TRANSPORT_BASE: usize = 32 * 1024;

/// Charged per open connection at accept time: [`TRANSPORT_BASE`] plus the most the core
/// node can hold for the peer ([`PEER_STATE_MAX_BYTES`]: the hashes it knows, the
/// transactions it announced, its requests), which a peer can fill with ordinary messages.
/// Every TCP connection is charged alike, since any may become a WebSocket peer.
///
/// [`PEER_STATE_MAX_BYTES`]: tabcoin_core::node::PEER_STATE_MAX_BYTES
pub const CONN_BASE: usize = TRANSPORT_BASE + tabcoin_core::node::PEER_STATE_MAX_BYTES;

/// Largest HTTP/1 read buffer (request line and headers) per connection.
pub const HTTP_BUF: usize = 16 * 1024;

/// One memory budget in bytes, shared by everything that charges it.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// Charges `n` bytes if they fit under the limit.
    pub fn try_charge(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    pub fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::SeqCst);
    }

    /// A charge of `n` bytes released when the returned guard drops.
    pub fn reserve(self: &Arc<Self>, n: usize) -> Option<Charge> {
        self.try_charge(n).then(|| Charge {
            budget: self.clone(),
            bytes: n,
        })
    }
}

/// Bytes held against a [`Budget`] until dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// Charges each distinct outgoing buffer once, however many queues hold it.
///
/// Keyed by the buffer's address: while a charge is alive some queue holds the buffer, so
/// the address cannot be reused by another allocation.
#[derive(Debug, Default)]
pub(crate) struct OutboxCharges {
    live: HashMap<usize, Weak<Charge>>,
}

impl OutboxCharges {
    /// The charge for `bytes`, shared with other queues holding the same buffer; `None` when
    /// a new buffer does not fit in the budget.
    pub fn charge(&mut self, budget: &Arc<Budget>, bytes: &Arc<[u8]>) -> Option<Arc<Charge>> {
        let key = bytes.as_ptr() as usize;
        if let Some(c) = self.live.get(&key).and_then(Weak::upgrade) {
            return Some(c);
        }
        let c = Arc::new(budget.reserve(bytes.len())?);
        self.live.insert(key, Arc::downgrade(&c));
        Some(c)
    }

    /// Forgets buffers no queue holds any more.
    pub fn prune(&mut self) {
        self.live.retain(|_, w| w.strong_count() > 0);
    }
}

/// What one connection holds against the budget besides its base: bytes read from the
/// socket and not yet delivered as a whole message.
#[derive(Debug)]
pub(crate) struct ConnMeter {
    budget: Arc<Budget>,
    unread: AtomicUsize,
    /// The largest message sent or received so far: the WebSocket library keeps buffers of
    /// that capacity for the connection's life, so it stays charged until the socket closes.
    retained: AtomicUsize,
    /// Counting starts once the connection is a WebSocket (HTTP buffers are in the base).
    websocket: std::sync::atomic::AtomicBool,
}

impl ConnMeter {
    pub fn new(budget: Arc<Budget>) -> Arc<ConnMeter> {
        Arc::new(ConnMeter {
            budget,
            unread: AtomicUsize::new(0),
            retained: AtomicUsize::new(0),
            websocket: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// From now on, bytes read are charged until a message is delivered.
    pub fn start_websocket(&self) {
        self.websocket.store(true, Ordering::SeqCst);
    }

    /// A whole message was delivered: what was read for it is no longer held by the library.
    /// (Bytes of the next message read in the same chunk are forgotten; they are at most one
    /// read buffer, which the base covers.)
    pub fn delivered(&self) {
        let n = self.unread.swap(0, Ordering::SeqCst);
        self.budget.release(n);
    }

    /// Charges a message of `len` bytes passing through the connection's buffers (only what
    /// is above the largest so far); false when the budget cannot hold it.
    pub fn retain(&self, len: usize) -> bool {
        loop {
            let cur = self.retained.load(Ordering::SeqCst);
            if len <= cur {
                return true;
            }
            if !self.budget.try_charge(len - cur) {
                return false;
            }
            if self
                .retained
                .compare_exchange(cur, len, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return true;
            }
            self.budget.release(len - cur);
        }
    }

    fn on_read(&self, n: usize) -> bool {
        if n == 0 || !self.websocket.load(Ordering::SeqCst) {
            return true;
        }
        if !self.budget.try_charge(n) {
            return false;
        }
        self.unread.fetch_add(n, Ordering::SeqCst);
        true
    }
}

impl Drop for ConnMeter {
    fn drop(&mut self) {
        self.budget
            .release(*self.unread.get_mut() + *self.retained.get_mut());
    }
}

/// The error a metered socket returns when the budget cannot hold what it read.
pub(crate) const OVER_BUDGET: &str = "relay memory budget exhausted";

/// A socket that charges what it reads to its connection's meter and holds the
/// connection's slot and base charge: both are released when the socket is dropped.
#[derive(Debug)]
pub(crate) struct Metered<T> {
    io: T,
    meter: Arc<ConnMeter>,
    _hold: Box<dyn std::fmt::Debug + Send + Sync>,
}

impl<T> Metered<T> {
    pub fn new(
        io: T,
        meter: Arc<ConnMeter>,
        hold: impl std::fmt::Debug + Send + Sync + 'static,
    ) -> Self {
        Metered {
            io,
            meter,
            _hold: Box::new(hold),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Metered<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let n = buf.filled().len() - before;
            if !self.meter.on_read(n) {
                return Poll::Ready(Err(std::io::Error::other(OVER_BUDGET)));
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Metered<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_fit_under_the_limit_and_are_released_on_drop() {
        let b = Budget::new(100);
        let a = b.reserve(60).expect("fits");
        assert!(b.reserve(41).is_none());
        let c = b.reserve(40).expect("fits exactly");
        assert_eq!(b.used(), 100);
        drop(a);
        drop(c);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_shared_buffer_is_charged_once() {
        let b = Budget::new(1_000);
        let mut o = OutboxCharges::default();
        let buf: Arc<[u8]> = Arc::from(vec![0u8; 600]);
        let c1 = o.charge(&b, &buf).expect("fits");
        let c2 = o.charge(&b, &buf).expect("same buffer");
        assert_eq!(b.used(), 600);
        let other: Arc<[u8]> = Arc::from(vec![0u8; 600]);
        assert!(o.charge(&b, &other).is_none());
        drop((c1, c2));
        o.prune();
        assert_eq!(b.used(), 0);
        assert!(o.charge(&b, &other).is_some());
    }
}
