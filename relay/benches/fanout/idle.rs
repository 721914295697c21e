//! The idle-connections part.

use super::*;

pub(crate) struct IdleSide {
    pub(crate) attempted: usize,
    pub(crate) opened: usize,
    pub(crate) failures: usize,
    pub(crate) first_failure: Option<String>,
    /// Connections the server holds after the pause (relay: `/api/status`; bare: open
    /// clients not closed).
    pub(crate) held: usize,
    /// Relay only: established browser peers.
    pub(crate) peers: Option<usize>,
    pub(crate) open_time: Duration,
    pub(crate) mem0: Mem,
    pub(crate) mem1: Mem,
}

impl IdleSide {
    pub(crate) fn per_conn_kib(&self) -> f64 {
        (self.mem1.rss_kib as f64 - self.mem0.rss_kib as f64) / self.held.max(1) as f64
    }
}

pub(crate) struct IdleResults {
    pub(crate) fd_limit: Option<usize>,
    pub(crate) relay: IdleSide,
    pub(crate) bare: IdleSide,
    /// The bare server again with a `SMALL_READ_BUFFER` read buffer.
    pub(crate) bare_small: IdleSide,
}

/// Opens `target` idle connections to `server` (handshaken when `net` is given) and measures.
pub(crate) async fn idle_side(
    server: &Server,
    target: usize,
    net: Option<&Net>,
    budget: Duration,
    hold: Duration,
    ip_block: u8,
) -> (IdleSide, Clients) {
    // 500 connections per source address.
    let ips: Vec<IpAddr> = (0..target.div_ceil(500).max(1))
        .map(|i| loopback(ip_block, 1 + i as u8))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mem0 = server.mem();
    let (shared, mut rx) = Shared::new();
    let clients = open_clients(
        server.addr,
        target,
        &ips,
        net,
        1_000_000,
        Some(4_096),
        &shared,
        Instant::now() + budget,
    )
    .await;
    tokio::time::sleep(hold).await;
    let closed = drain(&mut rx);
    let (held, peers) = if net.is_some() {
        let s = server.get_json("/api/status").await;
        (
            s["connections"].as_u64().unwrap_or(0) as usize,
            s["peers_browser"].as_u64().map(|p| p as usize),
        )
    } else {
        (clients.opened.saturating_sub(closed), None)
    };
    let mem1 = server.mem();
    (
        IdleSide {
            attempted: target,
            opened: clients.opened,
            failures: clients.failures.len(),
            first_failure: clients.failures.first().cloned(),
            held,
            peers,
            open_time: clients.open_time,
            mem0,
            mem1,
        },
        clients,
    )
}

pub(crate) async fn idle(cfg: &Config, net: &Net) -> IdleResults {
    let limit = fd_limit();
    // This process holds one descriptor per client, the server one per connection.
    let target = limit.map_or(cfg.idle_max, |l| {
        cfg.idle_max.min(l.saturating_sub(open_fds() + FD_MARGIN))
    });
    eprintln!(
        "idle: up to {target} handshaken connections to a fresh relay (open-file limit {}) …",
        limit.map_or("unknown".into(), |l| l.to_string())
    );
    let relay = Server::relay("relay-idle").await;
    let (relay_side, clients) =
        idle_side(&relay, target, Some(net), cfg.idle_budget, cfg.idle_hold, 1).await;
    eprintln!(
        "  relay holds {} connections ({} established) of {} opened in {:.1} s; RSS {} → {} KiB",
        relay_side.held,
        relay_side.peers.unwrap_or(0),
        relay_side.opened,
        relay_side.open_time.as_secs_f64(),
        relay_side.mem0.rss_kib,
        relay_side.mem1.rss_kib
    );
    clients.abort();
    relay.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut bare_sides = Vec::new();
    for (i, read_buffer) in [None, Some(SMALL_READ_BUFFER)].into_iter().enumerate() {
        eprintln!(
            "idle: up to {target} connections to a fresh bare server ({} read buffer) …",
            read_buffer.map_or("default".into(), |n| format!("{} KiB", n / 1024))
        );
        let bare = Server::bare(&format!("bare-idle-{i}"), read_buffer).await;
        let (side, clients) = idle_side(
            &bare,
            target,
            None,
            cfg.bare_idle_budget,
            cfg.idle_hold,
            2 + i as u8,
        )
        .await;
        eprintln!(
            "  bare server holds {} of {} opened in {:.1} s; RSS {} → {} KiB",
            side.held,
            side.opened,
            side.open_time.as_secs_f64(),
            side.mem0.rss_kib,
            side.mem1.rss_kib
        );
        clients.abort();
        bare.stop().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        bare_sides.push(side);
    }
    let bare_small = bare_sides.pop().expect("two bare runs");
    let bare = bare_sides.pop().expect("two bare runs");
    IdleResults {
        fd_limit: limit,
        relay: relay_side,
        bare,
        bare_small,
    }
}
