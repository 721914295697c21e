//! The byte budget of a connection's send queue (`wasm-pack test --headless --chrome wasm`).

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use tabcoin_core::wire::MAX_MESSAGE_SIZE;
use tabcoin_wasm::sendq::{MAX_SEND_QUEUE_BYTES, SendQueue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn a_queue_refuses_what_passes_its_byte_budget_and_frees_what_was_sent() {
    let q = SendQueue::with_budget(1_000);
    q.admit(600).unwrap();
    let full = q.admit(600).unwrap_err();
    assert_eq!((full.queued, full.len, full.budget), (600, 600, 1_000));
    assert!(full.to_string().starts_with("send queue full"));
    // Clones share the count (the writer task holds one).
    let writer = q.clone();
    writer.sent(600);
    assert_eq!(q.queued(), 0);
    q.admit(1_000).unwrap();
    q.admit(1).unwrap_err();
}

#[wasm_bindgen_test]
fn the_default_budget_holds_the_largest_messages_and_is_bounded() {
    let q = SendQueue::default();
    let mut n = 0;
    while q.admit(MAX_MESSAGE_SIZE).is_ok() {
        n += 1;
        assert!(n <= 16, "the queue keeps accepting: unbounded");
    }
    assert_eq!(n, 4);
    assert_eq!(q.queued(), 4 * MAX_MESSAGE_SIZE);
    assert!(q.queued() <= MAX_SEND_QUEUE_BYTES);
}

#[wasm_bindgen_test]
fn a_closed_socket_still_counts_what_it_buffered() {
    // A socket that never opened buffers nothing; attaching it must not break the count.
    let ws = web_sys::WebSocket::new("ws://127.0.0.1:9/ws").unwrap();
    let q = SendQueue::with_budget(100);
    q.attach(ws);
    q.admit(100).unwrap();
    assert_eq!(q.queued(), 100);
    q.close();
    q.sent(100);
    assert_eq!(q.queued(), 0);
}
