//! The node's driver: feeds it inputs, carries out its outputs (sends, dials, writes,
//! loads, events, templates) and reacts to the write queue's notices.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Reflect, Uint8Array};
use tabcoin_core::node::{Input, Output};
use wasm_bindgen::prelude::*;

use crate::conn::{dial, redial_in};
use crate::events::{ConnState, NodeEvent, event_view};
use crate::idb::StoreError;
use crate::queue::Notice;
use crate::{Inner, loads, now_ms, to_js, verify};

/// How often the node ticks (timers, redials, template refresh).
pub(crate) const TICK_MS: u64 = 1_000;

pub(crate) fn emit(inner: &Rc<RefCell<Inner>>, ev: &NodeEvent) {
    let f = inner.borrow().on_event.clone();
    if let Some(f) = f {
        let _ = f.call1(&JsValue::NULL, &to_js(ev));
    }
}

/// Feeds one input and carries out what the node asks.
pub(crate) fn feed(inner: &Rc<RefCell<Inner>>, input: Input) {
    inner.borrow_mut().node.handle(now_ms(), input);
    pump(inner);
}

/// Feeds several inputs (messages that arrived together) and then carries out what the node
/// asked for all of them at once: one clock read, one drain of the outputs, and the page
/// hears each kind of progress event once per batch (see [`coalesce`]).
pub(crate) fn feed_all(inner: &Rc<RefCell<Inner>>, inputs: Vec<Input>) {
    {
        let now = now_ms();
        let mut i = inner.borrow_mut();
        for input in inputs {
            i.node.handle(now, input);
        }
    }
    pump(inner);
}

/// Drops progress events that a later event of the same drain supersedes while the node is
/// still syncing: all but the last `sync`, and a `tip` followed by another `tip` (neither
/// replacing blocks). Once synced every `tip` is kept (the page counts new blocks).
fn coalesce(events: &mut Vec<NodeEvent>, syncing: bool) {
    if !syncing || events.len() < 2 {
        return;
    }
    let mut keep = vec![true; events.len()];
    let (mut last_sync, mut last_tip) = (None, None);
    for (k, e) in events.iter().enumerate().rev() {
        match e {
            NodeEvent::Sync { .. } if last_sync.is_some() => keep[k] = false,
            NodeEvent::Sync { .. } => last_sync = Some(k),
            NodeEvent::Tip {
                disconnected: 0, ..
            } if last_tip.is_some() => keep[k] = false,
            NodeEvent::Tip { disconnected, .. } => {
                // A reorg's tip is kept, and so is the last tip before it.
                last_tip = (*disconnected == 0).then_some(k);
            }
            _ => {}
        }
    }
    let mut k = 0;
    events.retain(|_| {
        k += 1;
        keep[k - 1]
    });
}

/// Drains the node's outputs. The node is borrowed only while collecting; JS callbacks run
/// after, so they may call back into the node.
pub(crate) fn pump(inner: &Rc<RefCell<Inner>>) {
    let mut events = Vec::new();
    let mut templates = Vec::new();
    let mut dials = Vec::new();
    let mut slow = Vec::new();
    let mut loads = Vec::new();
    let mut verifies = Vec::new();
    {
        let mut i = inner.borrow_mut();
        while let Some(out) = i.node.poll_output() {
            match out {
                Output::Send { peer, bytes } => {
                    if let Some(c) = i.conns.get(&peer) {
                        match c.queue.admit(bytes.len()) {
                            Ok(()) => {
                                if c.tx.unbounded_send(bytes.to_vec()).is_err() {
                                    c.queue.sent(bytes.len());
                                }
                            }
                            Err(full) => {
                                // A relay that does not read: drop it, as the relay does.
                                if let Some(c) = i.conns.remove(&peer) {
                                    c.queue.close();
                                    slow.push((peer, c.url, full));
                                }
                            }
                        }
                    }
                }
                Output::Disconnect { peer, reason } => {
                    if let Some(c) = i.conns.remove(&peer) {
                        events.push(NodeEvent::Connection {
                            state: ConnState::Closed,
                            url: c.url,
                            retry_in_ms: None,
                            reason: Some(reason.to_string()),
                        });
                    }
                    if matches!(reason, tabcoin_core::node::DisconnectReason::Misbehaved(_)) {
                        events.push(NodeEvent::Banned {
                            reason: reason.to_string(),
                        });
                    }
                }
                Output::Dial { url } => dials.push(url),
                Output::LoadBlock(hash) => loads.push(hash),
                Output::VerifySigs { ticket, job } => verifies.push((ticket, job)),
                Output::Persist(cs) => {
                    if i.store_failed.is_none() {
                        i.writer.push(cs);
                    }
                }
                Output::Event(e) => {
                    if let Some(js) = event_view(&mut i, e) {
                        events.push(js);
                    }
                }
                Output::Template(t) => {
                    i.generation += 1;
                    if i.mining {
                        templates.push((t, i.generation));
                    }
                }
            }
        }
    }
    let syncing = !inner.borrow().node.is_synced();
    coalesce(&mut events, syncing);
    for (peer, url, full) in slow {
        web_sys::console::warn_1(&format!("tabcoin: dropping the relay {url}: {full}").into());
        feed(inner, Input::Disconnected { peer });
        emit(
            inner,
            &NodeEvent::Connection {
                state: ConnState::Closed,
                retry_in_ms: redial_in(inner, &url),
                reason: Some(full.to_string()),
                url,
            },
        );
    }
    for url in dials {
        dial(inner, url);
    }
    for hash in loads {
        loads::answer(inner, hash);
    }
    verify::answer(inner, verifies);
    for e in &events {
        emit(inner, e);
    }
    let f = inner.borrow().on_template.clone();
    if let Some(f) = f {
        for (t, generation) in templates {
            let obj = js_sys::Object::new();
            let _ = Reflect::set(
                &obj,
                &"header".into(),
                &Uint8Array::from(&t.block.header.to_bytes()[..]),
            );
            let _ = Reflect::set(
                &obj,
                &"height".into(),
                &JsValue::from_f64(t.height.0 as f64),
            );
            let _ = Reflect::set(
                &obj,
                &"reward".into(),
                &JsValue::from_str(&t.reward.to_string()),
            );
            let _ = Reflect::set(
                &obj,
                &"generation".into(),
                &JsValue::from_f64(generation as f64),
            );
            let _ = f.call1(&JsValue::NULL, &obj);
        }
    }
    schedule_mining_wake(inner);
}

/// A mining template the clock holds back comes on time (`Node::mining_wake_ms`), not at
/// the next tick: a timer for the wake the node asked for; a superseded one does nothing.
fn schedule_mining_wake(inner: &Rc<RefCell<Inner>>) {
    let at = {
        let mut i = inner.borrow_mut();
        let want = i.node.mining_wake_ms();
        if want.is_none() || want == i.mining_wake {
            return;
        }
        i.mining_wake = want;
        want.unwrap_or_default()
    };
    let delay = at.saturating_sub(now_ms()).min(u64::from(u32::MAX)) as u32;
    let weak = Rc::downgrade(inner);
    wasm_bindgen_futures::spawn_local(async move {
        gloo::timers::future::TimeoutFuture::new(delay).await;
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let due = {
            let mut i = inner.borrow_mut();
            let due = i.mining_wake == Some(at);
            if due {
                i.mining_wake = None;
            }
            due
        };
        if due {
            feed(&inner, Input::Tick);
        }
    });
}

/// After each write: a held-back Synced event once few blocks are unstored; a failure
/// stops writing and is shown.
pub(crate) fn on_store_notice(inner: &Rc<RefCell<Inner>>, notice: &Notice) {
    match notice {
        Notice::Stored { .. } => {
            let synced = {
                let mut i = inner.borrow_mut();
                if i.writer.within_synced_slack() {
                    i.synced_pending.take()
                } else {
                    None
                }
            };
            if let Some(height) = synced {
                emit(inner, &NodeEvent::Synced { height: height.0 });
            }
        }
        Notice::Failed(e) => store_failed(inner, e),
    }
}

/// Later writes would build on a state the database does not have: stop, keep running in
/// memory, and say so. The next start resumes from the last complete write and syncs the rest.
pub(crate) fn store_failed(inner: &Rc<RefCell<Inner>>, e: &StoreError) {
    {
        let mut i = inner.borrow_mut();
        if i.store_failed.is_some() {
            return;
        }
        i.store_failed = Some(e.to_string());
    }
    emit(
        inner,
        &NodeEvent::Store {
            error: Some(e.to_string()),
            quota_exceeded: *e == StoreError::QuotaExceeded,
            repaired: None,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip(height: u64, disconnected: usize) -> NodeEvent {
        NodeEvent::Tip {
            height,
            hash: String::new(),
            disconnected,
        }
    }

    fn sync(height: u64) -> NodeEvent {
        NodeEvent::Sync {
            height,
            target: 100,
        }
    }

    fn shape(events: &[NodeEvent]) -> Vec<(char, u64, usize)> {
        events
            .iter()
            .map(|e| match e {
                NodeEvent::Tip {
                    height,
                    disconnected,
                    ..
                } => ('t', *height, *disconnected),
                NodeEvent::Sync { height, .. } => ('s', *height, 0),
                _ => ('o', 0, 0),
            })
            .collect()
    }

    #[test]
    fn a_batch_during_sync_tells_the_page_its_last_tip_and_progress_once() {
        let mut evs = vec![tip(1, 0), sync(1), tip(2, 0), sync(2), tip(3, 0), sync(3)];
        coalesce(&mut evs, true);
        assert_eq!(shape(&evs), vec![('t', 3, 0), ('s', 3, 0)]);
    }

    #[test]
    fn a_reorg_tip_and_the_tip_before_it_are_kept() {
        let mut evs = vec![tip(1, 0), tip(2, 0), tip(2, 1), tip(3, 0), tip(4, 0)];
        coalesce(&mut evs, true);
        assert_eq!(shape(&evs), vec![('t', 2, 0), ('t', 2, 1), ('t', 4, 0)]);
    }

    #[test]
    fn once_synced_every_tip_is_kept() {
        let mut evs = vec![tip(1, 0), sync(1), tip(2, 0), sync(2)];
        coalesce(&mut evs, false);
        assert_eq!(evs.len(), 4);
    }
}
