//! The fan-out part: rounds of relay and bare runs, timed.

use super::*;

/// One fan-out: times after the submit (the miner's Headers, or the trigger's block).
#[derive(Clone, Debug, Default)]
pub(crate) struct Run {
    /// Relay only: when the relay asked the miner for the block.
    pub(crate) getdata: Option<Duration>,
    pub(crate) first_headers: Option<Duration>,
    pub(crate) last_headers: Option<Duration>,
    pub(crate) first_block: Option<Duration>,
    /// When the last client had the block: the figure.
    pub(crate) last_block: Option<Duration>,
    pub(crate) blocks: usize,
    /// Server CPU time during the run.
    pub(crate) server_cpu: Duration,
    /// This process' CPU time (the clients) during the run.
    pub(crate) client_cpu: Duration,
    pub(crate) error: Option<String>,
}

impl Run {
    pub(crate) fn total_ms(&self) -> f64 {
        self.last_block.map_or(f64::NAN, ms)
    }
}

pub(crate) fn drain(rx: &mut mpsc::UnboundedReceiver<(EvKind, Instant)>) -> usize {
    let mut closed = 0;
    while let Ok((kind, _)) = rx.try_recv() {
        if kind == EvKind::Closed {
            closed += 1;
        }
    }
    closed
}

/// Waits until `n` clients have the block (or `RUN_TIMEOUT`), filling in `run`.
pub(crate) async fn collect(
    rx: &mut mpsc::UnboundedReceiver<(EvKind, Instant)>,
    n: usize,
    t0: Instant,
    run: &mut Run,
) {
    let deadline = t0 + RUN_TIMEOUT;
    let mut headers = 0;
    while run.blocks < n {
        let Ok(Some((kind, at))) = tokio::time::timeout_at(deadline.into(), rx.recv()).await else {
            run.error = Some(format!(
                "{} of {n} clients had the block after {} s ({headers} had the headers)",
                run.blocks,
                RUN_TIMEOUT.as_secs()
            ));
            return;
        };
        let d = at.saturating_duration_since(t0);
        match kind {
            EvKind::Headers => {
                headers += 1;
                run.first_headers.get_or_insert(d);
                run.last_headers = Some(d);
            }
            EvKind::Block => {
                run.blocks += 1;
                run.first_block.get_or_insert(d);
                run.last_block = Some(d);
            }
            EvKind::WrongBlock => {
                run.error = Some("a client received a block other than the one sent".into());
            }
            EvKind::Closed => {
                run.error = Some("a client's connection closed".into());
            }
        }
    }
}

pub(crate) fn self_cpu() -> Duration {
    proc_cpu("self")
}

/// One server with its clients connected: what both sides of a round have.
pub(crate) struct Fleet {
    pub(crate) server: Server,
    pub(crate) clients: Clients,
    pub(crate) shared: Arc<Shared>,
    pub(crate) rx: mpsc::UnboundedReceiver<(EvKind, Instant)>,
    pub(crate) n: usize,
}

/// The clocks at the start of a run.
pub(crate) struct Start {
    t0: Instant,
    server_cpu: Duration,
    client_cpu: Duration,
}

impl Fleet {
    /// Tells the clients which block message to expect, drops what is left of the last run
    /// and starts the clocks; the bytes to send.
    fn start(&mut self, msg: &Arc<[u8]>) -> (Bytes, Start) {
        *self
            .shared
            .expected
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
        drain(&mut self.rx);
        let bytes = Bytes::copy_from_slice(msg);
        let (server_cpu, client_cpu) = (self.server.cpu(), self_cpu());
        let start = Start {
            t0: Instant::now(),
            server_cpu,
            client_cpu,
        };
        (bytes, start)
    }

    /// Waits until every client has the block (or the run times out).
    async fn collect(&mut self, start: &Start, run: &mut Run) {
        collect(&mut self.rx, self.n, start.t0, run).await;
    }

    /// The CPU time both sides spent since `start`.
    fn finish(&self, start: Start, mut run: Run) -> Run {
        run.server_cpu = self.server.cpu().saturating_sub(start.server_cpu);
        run.client_cpu = self_cpu().saturating_sub(start.client_cpu);
        run
    }
}

pub(crate) struct RelaySide {
    pub(crate) fleet: Fleet,
    pub(crate) miner: Miner,
}

impl RelaySide {
    pub(crate) async fn run(&mut self, block: &Block, msg: &Arc<[u8]>) -> Run {
        let (bytes, start) = self.fleet.start(msg);
        let mut run = Run::default();
        match self.miner.submit(block, bytes).await {
            Ok(asked) => {
                run.getdata = Some(asked - start.t0);
                self.fleet.collect(&start, &mut run).await;
            }
            Err(e) => run.error = Some(format!("submitting: {e}")),
        }
        self.fleet.finish(start, run)
    }
}

pub(crate) struct BareSide {
    pub(crate) fleet: Fleet,
    pub(crate) trigger: Ws,
}

impl BareSide {
    pub(crate) async fn run(&mut self, msg: &Arc<[u8]>) -> Run {
        let (bytes, start) = self.fleet.start(msg);
        let mut run = Run::default();
        match self.trigger.send(WsMessage::Binary(bytes)).await {
            Ok(()) => self.fleet.collect(&start, &mut run).await,
            Err(e) => run.error = Some(format!("trigger: {e}")),
        }
        self.fleet.finish(start, run)
    }
}

/// A block size measured: runs of both sides, index `i` of each from the same round.
pub(crate) struct SizeRuns {
    pub(crate) name: &'static str,
    pub(crate) outputs: usize,
    pub(crate) bytes: usize,
    pub(crate) relay: Vec<Run>,
    pub(crate) bare: Vec<Run>,
}

impl SizeRuns {
    pub(crate) fn ok_pairs(&self) -> Vec<(&Run, &Run)> {
        self.relay
            .iter()
            .zip(&self.bare)
            .filter(|(r, b)| r.error.is_none() && b.error.is_none())
            .collect()
    }

    pub(crate) fn relay_ms(&self) -> Vec<f64> {
        self.ok_pairs().iter().map(|(r, _)| r.total_ms()).collect()
    }

    pub(crate) fn bare_ms(&self) -> Vec<f64> {
        self.ok_pairs().iter().map(|(_, b)| b.total_ms()).collect()
    }

    pub(crate) fn ratios(&self) -> Vec<f64> {
        self.ok_pairs()
            .iter()
            .map(|(r, b)| r.total_ms() / b.total_ms())
            .collect()
    }

    pub(crate) fn relay_phase(&self, f: impl Fn(&Run) -> Option<Duration>) -> f64 {
        median(
            &self
                .ok_pairs()
                .iter()
                .map(|(r, _)| f(r).map_or(f64::NAN, ms))
                .collect::<Vec<_>>(),
        )
    }

    pub(crate) fn cpu_ms(&self, relay: bool) -> f64 {
        median(
            &self
                .ok_pairs()
                .iter()
                .map(|(r, b)| ms(if relay { r.server_cpu } else { b.server_cpu }))
                .collect::<Vec<_>>(),
        )
    }

    pub(crate) fn client_cpu_ms(&self, relay: bool) -> f64 {
        median(
            &self
                .ok_pairs()
                .iter()
                .map(|(r, b)| ms(if relay { r.client_cpu } else { b.client_cpu }))
                .collect::<Vec<_>>(),
        )
    }

    pub(crate) fn errors(&self) -> Vec<String> {
        self.relay
            .iter()
            .filter_map(|r| r.error.as_ref().map(|e| format!("relay: {e}")))
            .chain(
                self.bare
                    .iter()
                    .filter_map(|b| b.error.as_ref().map(|e| format!("bare: {e}"))),
            )
            .collect()
    }
}

pub(crate) struct FanoutResults {
    pub(crate) clients: usize,
    pub(crate) sizes: Vec<SizeRuns>,
    pub(crate) rounds: usize,
    pub(crate) relay_mem0: Mem,
    pub(crate) relay_mem1: Mem,
    pub(crate) relay_mem_after: Mem,
    pub(crate) bare_mem0: Mem,
    pub(crate) bare_mem1: Mem,
    pub(crate) bare_mem_after: Mem,
    pub(crate) relay_connect: Duration,
    pub(crate) bare_connect: Duration,
    pub(crate) slow_reader_lines: usize,
    pub(crate) on_cpu: f64,
}

pub(crate) async fn fanout(cfg: &Config, net: &Net) -> FanoutResults {
    let n = cfg.clients;
    let relay_ips: Vec<IpAddr> = (11..=18).map(|b| loopback(0, b)).collect();
    let bare_ips: Vec<IpAddr> = (21..=28).map(|b| loopback(0, b)).collect();

    eprintln!("fanout: starting the relay ({RELAY_BIN}) …");
    let relay = Server::relay("relay").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let relay_mem0 = relay.mem();
    let (shared, rx) = Shared::new();
    eprintln!("fanout: {n} browser clients handshaking with the relay …");
    let clients = open_clients(
        relay.addr,
        n,
        &relay_ips,
        Some(net),
        0,
        None,
        &shared,
        Instant::now() + Duration::from_secs(120),
    )
    .await;
    assert_eq!(
        clients.opened,
        n,
        "relay clients failed: {:?}",
        &clients.failures[..clients.failures.len().min(5)]
    );
    let status = relay
        .wait_status(Duration::from_secs(30), |s| {
            s["peers_browser"].as_u64() == Some(n as u64)
        })
        .await;
    assert_eq!(
        status["peers_browser"].as_u64(),
        Some(n as u64),
        "the relay does not count {n} browsers: {status}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let relay_mem1 = relay.mem();
    let miner = Miner::connect(relay.addr, net).await;
    let relay_connect = clients.open_time;
    let mut relay_side = RelaySide {
        fleet: Fleet {
            server: relay,
            clients,
            shared,
            rx,
            n,
        },
        miner,
    };

    eprintln!("fanout: starting the bare server, {n} clients …");
    let bare = Server::bare("bare", None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bare_mem0 = bare.mem();
    let (bshared, brx) = Shared::new();
    let bclients = open_clients(
        bare.addr,
        n,
        &bare_ips,
        None,
        0,
        None,
        &bshared,
        Instant::now() + Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        bclients.opened,
        n,
        "bare clients failed: {:?}",
        &bclients.failures[..bclients.failures.len().min(5)]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bare_mem1 = bare.mem();
    let trigger = open_ws(bare.addr, loopback(0, 3), None)
        .await
        .expect("the trigger connects");
    let bare_connect = bclients.open_time;
    let mut bare_side = BareSide {
        fleet: Fleet {
            server: bare,
            clients: bclients,
            shared: bshared,
            rx: brx,
            n,
        },
        trigger,
    };

    let mut sizes = vec![
        SizeRuns {
            name: "coinbase only",
            outputs: 1,
            bytes: 0,
            relay: Vec::new(),
            bare: Vec::new(),
        },
        SizeRuns {
            name: "~100 KB",
            outputs: LARGE_OUTPUTS,
            bytes: 0,
            relay: Vec::new(),
            bare: Vec::new(),
        },
    ];
    let started = Instant::now();
    let wall0 = Instant::now();
    let cpu0 = machine_busy();
    let mut rounds = 0;
    while rounds < cfg.max_rounds
        && (rounds < cfg.min_rounds || started.elapsed() < cfg.fanout_budget)
    {
        for size in &mut sizes {
            let block = relay_side.miner.next_block(size.outputs);
            let msg: Arc<[u8]> = Arc::from(Message::Block(block.clone()).encode());
            size.bytes = msg.len();
            tokio::time::sleep(Duration::from_millis(200)).await;
            // Alternate which side goes first.
            let (r, b) = if rounds % 2 == 0 {
                let r = relay_side.run(&block, &msg).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                (r, bare_side.run(&msg).await)
            } else {
                let b = bare_side.run(&msg).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                (relay_side.run(&block, &msg).await, b)
            };
            eprintln!(
                "  round {} {:>13} ({} B): relay {:>8.2} ms (GetData {:.2}, headers {:.2}–{:.2}, block {:.2}–{:.2}; cpu {:.1} ms) | bare {:>7.2} ms (cpu {:.1} ms){}{}",
                rounds + 1,
                size.name,
                msg.len(),
                r.total_ms(),
                r.getdata.map_or(f64::NAN, ms),
                r.first_headers.map_or(f64::NAN, ms),
                r.last_headers.map_or(f64::NAN, ms),
                r.first_block.map_or(f64::NAN, ms),
                r.total_ms(),
                ms(r.server_cpu),
                b.total_ms(),
                ms(b.server_cpu),
                r.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" relay error: {e}")),
                b.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" bare error: {e}")),
            );
            size.relay.push(r);
            size.bare.push(b);
        }
        rounds += 1;
    }
    let on_cpu = machine_busy().zip(cpu0).map_or(f64::NAN, |(a, b)| {
        (a - b).as_secs_f64() / wall0.elapsed().as_secs_f64()
    });
    let relay_mem_after = relay_side.fleet.server.mem();
    let bare_mem_after = bare_side.fleet.server.mem();
    let slow_reader_lines = relay_side.fleet.server.log_lines("slow reader");

    relay_side.fleet.clients.abort();
    bare_side.fleet.clients.abort();
    relay_side.fleet.server.stop().await;
    bare_side.fleet.server.stop().await;
    FanoutResults {
        clients: n,
        sizes,
        rounds,
        relay_mem0,
        relay_mem1,
        relay_mem_after,
        bare_mem0,
        bare_mem1,
        bare_mem_after,
        relay_connect,
        bare_connect,
        slow_reader_lines,
        on_cpu,
    }
}

/// Busy time of the machine's CPUs from `/proc/stat` (all processes), per CPU: over a span of
/// wall time, the share of it the CPUs were busy.
pub(crate) fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    let busy: u64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .take(8)
        .map(|(_, x)| *x)
        .sum();
    // Clock ticks of 10 ms, summed over CPUs: divide by the CPU count for a share.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    Some(Duration::from_millis(busy * 10 / cpus))
}
