//! WebSocket clients: connect, handshake as browsers, read, and the miner.

use super::*;

pub(crate) type Ws = WebSocketStream<TcpStream>;

pub(crate) fn loopback(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

/// Opens a WebSocket to `/ws` of `server` from `local` (any port). `read_buffer` overrides
/// tungstenite's 128 KiB read buffer.
pub(crate) async fn open_ws(
    server: SocketAddr,
    local: IpAddr,
    read_buffer: Option<usize>,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(local, 0))
        .map_err(|e| format!("bind {local}: {e}"))?;
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // Browsers disable Nagle's algorithm.
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let mut config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    if let Some(n) = read_buffer {
        config = config.read_buffer_size(n);
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{server}/ws"),
        stream,
        Some(config),
    )
    .await
    .map_err(|e| format!("upgrade: {e}"))?;
    Ok(ws)
}

/// What a protocol client needs to say hello.
#[derive(Clone)]
pub(crate) struct Net {
    pub(crate) params: Params,
    pub(crate) genesis: BlockHash,
    pub(crate) genesis_work: Work,
}

impl Net {
    pub(crate) fn test() -> Net {
        let params = Params::test();
        let chain = Chain::new(params.clone());
        Net {
            genesis: params.genesis_hash(),
            genesis_work: chain.tip().work,
            params,
        }
    }
}

pub(crate) fn identity(i: u64) -> [u8; 32] {
    sha256d_parts(&[b"tabcoin/relay-bench/identity", &i.to_le_bytes()]).0
}

pub(crate) async fn send_msg(ws: &mut Ws, msg: &Message) -> Result<(), String> {
    ws.send(WsMessage::Binary(Bytes::from(msg.encode())))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// The next protocol message before `deadline`.
pub(crate) async fn recv_msg(ws: &mut Ws, deadline: Instant) -> Result<Message, String> {
    loop {
        let frame = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .map_err(|_| "timed out".to_string())?;
        match frame {
            Some(Ok(WsMessage::Binary(b))) => {
                return Message::from_bytes(&b).map_err(|e| format!("invalid message: {e}"));
            }
            Some(Ok(WsMessage::Close(f))) => {
                return Err(format!("closed: {f:?}"));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("socket: {e}")),
            None => return Err("closed".into()),
        }
    }
}

/// Whether relay clients ask for block push (`sendblocks`, PROTOCOL §7.4) after the handshake,
/// as browsers do: `FANOUT_PUSH=0` measures the announce → getdata → block exchange instead.
pub(crate) fn push_mode() -> bool {
    !matches!(std::env::var("FANOUT_PUSH").as_deref(), Ok("0"))
}

/// The handshake of a browser tab: Hello, the relay's Hello, Auth over its challenge, and its
/// Auth over ours, checked; then `sendblocks` in [`push_mode`]. Other messages before the
/// end are dropped. `url` is the URL dialed, which both proofs cover.
pub(crate) async fn handshake(
    ws: &mut Ws,
    net: &Net,
    seed: [u8; 32],
    url: &str,
) -> Result<(), String> {
    let key = Keypair::from_seed(&seed);
    let me = key.public_key();
    let challenge = sha256d_parts(&[b"tabcoin/relay-bench/challenge", &seed]).0;
    let hello = Hello {
        version: PROTOCOL_VERSION,
        features: 0,
        network: net.genesis,
        node_id: me,
        kind: NodeKind::Browser,
        record: None,
        dialed: Some(url.to_owned()),
        best_hash: net.genesis,
        best_height: Height::GENESIS,
        best_work: net.genesis_work,
        challenge,
        agent: String::from("tabcoin-relay-bench"),
        kept_from: Default::default(),
        extra: Vec::new(),
    };
    send_msg(ws, &Message::Hello(hello)).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    // The relay's id and challenge, from its Hello.
    let mut theirs: Option<(PublicKey, [u8; 32])> = None;
    let mut their_sig = None;
    loop {
        if let (Some((id, their_challenge)), Some(s)) = (theirs, &their_sig) {
            let msg = auth_message(&net.genesis, &their_challenge, &challenge, &id, &me, url);
            sig::verify(&id, &msg.0, s)
                .map_err(|e| format!("the relay's auth does not verify: {e:?}"))?;
            if push_mode() {
                send_msg(ws, &Message::SendBlocks).await?;
            }
            return Ok(());
        }
        match recv_msg(ws, deadline).await? {
            Message::Hello(h) if theirs.is_none() => {
                let msg =
                    auth_message(&net.genesis, &challenge, &h.challenge, &me, &h.node_id, url);
                send_msg(ws, &Message::Auth(key.sign(&msg.0))).await?;
                theirs = Some((h.node_id, h.challenge));
            }
            Message::Auth(s) if their_sig.is_none() => their_sig = Some(s),
            Message::Notice(n) if n.fatal => return Err(format!("refused: {}", n.reason)),
            _ => {}
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EvKind {
    /// A Headers announcement arrived (and GetData went out).
    Headers,
    /// The expected block message arrived.
    Block,
    /// A block other than the expected one.
    WrongBlock,
    Closed,
}

/// What the clients of one server share with the coordinator.
pub(crate) struct Shared {
    /// The block message of the current run: a frame equal to it is "the block".
    pub(crate) expected: RwLock<Option<Arc<[u8]>>>,
    pub(crate) events: mpsc::UnboundedSender<(EvKind, Instant)>,
}

impl Shared {
    pub(crate) fn new() -> (Arc<Shared>, mpsc::UnboundedReceiver<(EvKind, Instant)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Shared {
                expected: RwLock::new(None),
                events: tx,
            }),
            rx,
        )
    }

    pub(crate) fn event(&self, kind: EvKind, at: Instant) {
        let _ = self.events.send((kind, at));
    }
}

/// A client after connecting: the block is recognised by its bytes; a Headers announcement is
/// answered with GetData for its last header; protocol pings with pongs. The time is taken
/// when the frame is read.
pub(crate) async fn client_loop(mut ws: Ws, shared: Arc<Shared>) {
    while let Some(frame) = ws.next().await {
        let bytes = match frame {
            Ok(WsMessage::Binary(b)) => b,
            Ok(WsMessage::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let at = Instant::now();
        let expected = shared
            .expected
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if expected.is_some_and(|e| *e == *bytes) {
            shared.event(EvKind::Block, at);
            continue;
        }
        let reply = match Message::from_bytes(&bytes) {
            Ok(Message::Headers(hs)) => match hs.last() {
                Some(h) => {
                    shared.event(EvKind::Headers, at);
                    Message::GetData(vec![InvItem::block(h.hash())])
                }
                None => continue,
            },
            Ok(Message::Ping(n)) => Message::Pong(n),
            Ok(Message::Block(_)) => {
                shared.event(EvKind::WrongBlock, at);
                continue;
            }
            _ => continue,
        };
        if send_msg(&mut ws, &reply).await.is_err() {
            break;
        }
    }
    shared.event(EvKind::Closed, Instant::now());
}

/// A population of clients of one server.
pub(crate) struct Clients {
    pub(crate) tasks: Vec<JoinHandle<()>>,
    pub(crate) opened: usize,
    pub(crate) failures: Vec<String>,
    /// From the first connection attempt to the last one open.
    pub(crate) open_time: Duration,
}

impl Clients {
    pub(crate) fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Opens up to `n` clients from `ips` (round robin), `CONNECT_CONCURRENCY` at a time, each
/// handshaking as a browser when `net` is given, then running [`client_loop`]. Stops opening
/// at `deadline`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open_clients(
    server: SocketAddr,
    n: usize,
    ips: &[IpAddr],
    net: Option<&Net>,
    first_identity: u64,
    read_buffer: Option<usize>,
    shared: &Arc<Shared>,
    deadline: Instant,
) -> Clients {
    let started = Instant::now();
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (sem, stop, ready) = (sem.clone(), stop.clone(), ready_tx.clone());
        let shared = shared.clone();
        let local = ips[i % ips.len()];
        let net = net.cloned();
        let seed = identity(first_identity + i as u64);
        tasks.push(tokio::spawn(async move {
            let opened = {
                let _permit = sem.acquire().await.expect("the semaphore stays open");
                if stop.load(Ordering::SeqCst) {
                    let _ = ready.send(Err("not started: out of time".into()));
                    return;
                }
                let attempt = async {
                    let mut ws = open_ws(server, local, read_buffer).await?;
                    if let Some(net) = &net {
                        handshake(&mut ws, net, seed, &format!("ws://{server}/ws")).await?;
                    }
                    Ok::<_, String>(ws)
                };
                attempt.await
            };
            match opened {
                Ok(ws) => {
                    let _ = ready.send(Ok(()));
                    client_loop(ws, shared).await;
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            }
        }));
    }
    drop(ready_tx);
    let mut opened = 0;
    let mut failures = Vec::new();
    let mut last_open = started;
    let mut answered = 0;
    while answered < n {
        match tokio::time::timeout_at(deadline.into(), ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {
                opened += 1;
                last_open = Instant::now();
            }
            Ok(Some(Err(e))) => failures.push(e),
            Ok(None) => break,
            Err(_) => {
                // Out of time: the ones not started give up; the ones opening may finish.
                stop.store(true, Ordering::SeqCst);
                let grace = Instant::now() + Duration::from_secs(5);
                while let Ok(Some(r)) = tokio::time::timeout_at(grace.into(), ready_rx.recv()).await
                {
                    match r {
                        Ok(()) => {
                            opened += 1;
                            last_open = Instant::now();
                        }
                        Err(e) => failures.push(e),
                    }
                }
                break;
            }
        }
        answered += 1;
    }
    Clients {
        tasks,
        opened,
        failures,
        open_time: last_open - started,
    }
}

/// The miner: a browser client with its own copy of the chain.
pub(crate) struct Miner {
    pub(crate) ws: Ws,
    pub(crate) chain: Chain,
    pub(crate) reward: PublicKey,
}

impl Miner {
    pub(crate) async fn connect(server: SocketAddr, net: &Net) -> Miner {
        let mut ws = open_ws(server, loopback(0, 2), None)
            .await
            .expect("the miner connects");
        handshake(
            &mut ws,
            net,
            identity(u64::MAX),
            &format!("ws://{server}/ws"),
        )
        .await
        .expect("the miner's handshake");
        Miner {
            ws,
            chain: Chain::new(net.params.clone()),
            reward: Keypair::from_seed(&identity(u64::MAX - 1)).public_key(),
        }
    }

    /// A new block on the miner's tip: a coinbase paying the subsidy in `outputs` outputs.
    /// The miner's chain takes it at once.
    pub(crate) fn next_block(&mut self, outputs: usize) -> Block {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        let pool = Mempool::new(1 << 20, 0);
        let mut block = build_template(&self.chain, &pool, self.reward, now, b"relay-bench").block;
        let coinbase = &mut block.txs[0];
        let total = coinbase.outputs[0].amount.units();
        let each = total / outputs as u64;
        coinbase.outputs = (0..outputs)
            .map(|i| TxOut {
                amount: Amount::from_units(if i == 0 {
                    total - each * (outputs as u64 - 1)
                } else {
                    each
                })
                .expect("a share of the subsidy"),
                key: self.reward,
            })
            .collect();
        let block = tabcoin_core::testkit::seal(block);
        self.chain
            .accept_block(&block, block.header.time.max(now))
            .expect("the miner's block is valid");
        block
    }

    /// Announces `block` by its header and answers the relay's GetData with `msg` (its
    /// message). Returns when GetData arrived.
    pub(crate) async fn submit(&mut self, block: &Block, msg: Bytes) -> Result<Instant, String> {
        let hash = block.hash();
        send_msg(&mut self.ws, &Message::Headers(vec![block.header])).await?;
        let deadline = Instant::now() + RUN_TIMEOUT;
        let asked = loop {
            match recv_msg(&mut self.ws, deadline).await? {
                Message::GetData(items) if items.iter().any(|i| i.id() == InvId::Block(hash)) => {
                    break Instant::now();
                }
                Message::Ping(n) => send_msg(&mut self.ws, &Message::Pong(n)).await?,
                Message::Notice(n) if n.fatal => return Err(format!("refused: {}", n.reason)),
                _ => {}
            }
        };
        self.ws
            .send(WsMessage::Binary(msg))
            .await
            .map_err(|e| format!("send the block: {e}"))?;
        Ok(asked)
    }
}
