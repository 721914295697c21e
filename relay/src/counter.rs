//! Connections counted in total and per client address, for the limits that refuse a
//! connection at accept time (TCP, `server.rs`) and at the WebSocket upgrade (`api.rs`).
//! A [`Slot`] holds one place and gives it back when it is dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Open connections, in total and per address.
#[derive(Debug, Default)]
pub(crate) struct PerIpCounter {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    Total,
    PerIp,
}

/// One connection's place in a [`PerIpCounter`].
#[derive(Debug)]
pub(crate) struct Slot {
    counter: Arc<PerIpCounter>,
    ip: IpAddr,
}

impl PerIpCounter {
    /// Takes a place for `ip` unless `max_total` places are taken, or `max_per_ip` for `ip`
    /// (`None`: no per-address limit, e.g. a trusted proxy carrying many clients).
    pub fn acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: Option<usize>,
    ) -> Result<Slot, Over> {
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if self.total.load(Ordering::SeqCst) >= max_total {
            return Err(Over::Total);
        }
        let n = map.entry(ip).or_insert(0);
        if max_per_ip.is_some_and(|max| *n >= max) {
            if *n == 0 {
                map.remove(&ip);
            }
            return Err(Over::PerIp);
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        Ok(Slot {
            counter: self.clone(),
            ip,
        })
    }

    /// Places taken now.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counter.total.fetch_sub(1, Ordering::SeqCst);
        let mut map = self
            .counter
            .per_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn limits_hold_and_places_come_back_on_drop() {
        let c = Arc::new(PerIpCounter::default());
        let a1 = c.acquire(ip(1), 3, Some(2)).unwrap();
        let _a2 = c.acquire(ip(1), 3, Some(2)).unwrap();
        assert_eq!(c.acquire(ip(1), 3, Some(2)).unwrap_err(), Over::PerIp);
        let _b = c.acquire(ip(2), 3, Some(2)).unwrap();
        assert_eq!(c.acquire(ip(3), 3, Some(2)).unwrap_err(), Over::Total);
        assert_eq!(c.total(), 3);
        drop(a1);
        assert_eq!(c.total(), 2);
        let _a3 = c.acquire(ip(1), 3, Some(2)).unwrap();
        // No per-address limit: only the total counts.
        let c = Arc::new(PerIpCounter::default());
        let held: Vec<Slot> = (0..5).map(|_| c.acquire(ip(9), 5, None).unwrap()).collect();
        assert_eq!(c.acquire(ip(9), 5, None).unwrap_err(), Over::Total);
        drop(held);
        assert_eq!(c.total(), 0);
        assert!(c.per_ip.lock().unwrap().is_empty());
    }
}
