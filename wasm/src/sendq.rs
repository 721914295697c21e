//! The byte budget of one connection's send queue.
//!
//! What the node sends to a relay waits in two places: the channel to the connection's writer
//! task and the browser's own WebSocket buffer (`bufferedAmount`; `WebSocket.send` never
//! blocks, so a relay that stops reading makes it grow without end). Both count against one
//! budget; a message that would pass it drops the connection instead (a slow reader), as the
//! relay does with its own write buffers. Worst case per tab: connections × the budget.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use tabcoin_core::wire::MAX_MESSAGE_SIZE;

/// Bytes one connection may have queued: four of the largest messages.
pub const MAX_SEND_QUEUE_BYTES: usize = 4 * MAX_MESSAGE_SIZE;

/// A message did not fit the connection's send budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendQueueFull {
    pub queued: usize,
    pub len: usize,
    pub budget: usize,
}

impl core::fmt::Display for SendQueueFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "send queue full: {} bytes queued, {} more would pass the budget of {} bytes",
            self.queued, self.len, self.budget
        )
    }
}

impl core::error::Error for SendQueueFull {}

/// One connection's queue accounting (cheap to clone: the clones share it).
#[derive(Clone, Debug)]
pub struct SendQueue {
    budget: usize,
    /// Bytes handed to the writer task and not yet to the socket.
    in_channel: Rc<Cell<usize>>,
    /// The socket once open: its `bufferedAmount` counts too.
    socket: Rc<RefCell<Option<web_sys::WebSocket>>>,
}

impl Default for SendQueue {
    fn default() -> Self {
        SendQueue::with_budget(MAX_SEND_QUEUE_BYTES)
    }
}

impl SendQueue {
    pub fn with_budget(budget: usize) -> SendQueue {
        SendQueue {
            budget,
            in_channel: Rc::default(),
            socket: Rc::default(),
        }
    }

    /// The socket whose buffer counts from now on.
    pub fn attach(&self, socket: web_sys::WebSocket) {
        *self.socket.borrow_mut() = Some(socket);
    }

    /// Bytes queued now: in the channel and in the socket's buffer.
    pub fn queued(&self) -> usize {
        let buffered = self
            .socket
            .borrow()
            .as_ref()
            .map_or(0, |s| s.buffered_amount() as usize);
        self.in_channel.get().saturating_add(buffered)
    }

    /// Takes `len` more bytes into the queue, or refuses them when they would pass the budget.
    pub fn admit(&self, len: usize) -> Result<(), SendQueueFull> {
        let queued = self.queued();
        if queued.saturating_add(len) > self.budget {
            return Err(SendQueueFull {
                queued,
                len,
                budget: self.budget,
            });
        }
        self.in_channel.set(self.in_channel.get() + len);
        Ok(())
    }

    /// `len` bytes left the channel (handed to the socket, or dropped).
    pub fn sent(&self, len: usize) {
        self.in_channel
            .set(self.in_channel.get().saturating_sub(len));
    }

    /// Closes the socket (the connection is being dropped).
    pub fn close(&self) {
        if let Some(s) = self.socket.borrow_mut().take() {
            let _ = s.close();
        }
    }
}
