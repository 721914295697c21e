//! [`NodeClient`]: a full core node hosted over one outbound WebSocket.

use super::*;

/// How a [`NodeClient`]'s node is set up.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub params: Params,
    pub identity_seed: [u8; 32],
    pub kind: NodeKind,
    /// Advertised URL (relays only).
    pub public_url: Option<String>,
    /// Paid by [`NodeClient::mine_and_submit`].
    pub reward: PublicKey,
    /// State the node starts from (empty = genesis only).
    pub stored: ChangeSet,
    /// Blocks fed to the node as locally mined before it connects: a client that already
    /// has a chain.
    pub preload: Vec<Block>,
    /// When set, the node emits mining templates (kept as `latest_template`).
    pub mining_key: Option<PublicKey>,
}

impl ClientOptions {
    /// A browser tab with identity `[seed; 32]`, rewards to `wallet(seed)`.
    pub fn browser(seed: u8) -> ClientOptions {
        ClientOptions {
            params: test_params(),
            identity_seed: [seed; 32],
            kind: NodeKind::Browser,
            public_url: None,
            reward: wallet(seed).public_key(),
            stored: ChangeSet::default(),
            preload: Vec::new(),
            mining_key: None,
        }
    }

    /// A relay node advertising `public_url`, dialing out over one connection.
    pub fn relay(seed: u8, public_url: &str) -> ClientOptions {
        ClientOptions {
            kind: NodeKind::Relay,
            public_url: Some(public_url.to_owned()),
            ..ClientOptions::browser(seed)
        }
    }

    pub fn with_preload(mut self, blocks: Vec<Block>) -> ClientOptions {
        self.preload = blocks;
        self
    }
}

/// What the pump shares with the test. Lock only through [`NodeClient`]'s methods; never
/// held across an await.
#[derive(Debug)]
pub struct ClientState {
    pub node: Node,
    pub store: MemStore,
    pub events: Vec<Event>,
    pub latest_template: Option<BlockTemplate>,
    /// URLs the node asked to dial (ignored: one connection only).
    pub dials: Vec<String>,
    /// Why the node closed the connection, if it did.
    pub disconnect_reason: Option<DisconnectReason>,
    /// The connection is gone (either side) and the pump stopped.
    pub closed: bool,
}

enum Cmd {
    Input(Input, oneshot::Sender<()>),
    SubmitTx(
        Transaction,
        oneshot::Sender<std::result::Result<Txid, MempoolError>>,
    ),
    Raw(Vec<u8>, oneshot::Sender<()>),
    Close,
}

/// A core node hosted over one outbound WebSocket, pumped by a tokio task: frames in →
/// `Input::Received`, a 1 s tick → `Input::Tick`; `Send` → frame out, `Disconnect` → close,
/// `Dial` → recorded and ignored, `Persist` → memory store, events and templates kept.
///
/// Dropping the client aborts the pump (the socket goes without a close frame, like a tab
/// that is killed); [`NodeClient::close`] closes politely.
#[derive(Debug)]
pub struct NodeClient {
    state: Arc<Mutex<ClientState>>,
    cmds: mpsc::UnboundedSender<Cmd>,
    task: Option<JoinHandle<()>>,
    url: String,
    reward: PublicKey,
}

impl Drop for NodeClient {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

type Sink = SplitSink<Ws, WsMessage>;
type Stream = SplitStream<Ws>;

/// What the pump must do on the socket after an input.
enum Io {
    Send(Vec<u8>),
    Close,
}

impl NodeClient {
    /// A browser node with identity `[seed; 32]` connected to `url`.
    pub async fn browser(url: &str, seed: u8) -> Result<NodeClient> {
        NodeClient::connect(url, ClientOptions::browser(seed)).await
    }

    /// Builds the node, feeds it `opts.preload`, opens the WebSocket and starts the pump.
    /// The handshake then runs by itself: see [`NodeClient::wait_connected`].
    pub async fn connect(url: &str, opts: ClientOptions) -> Result<NodeClient> {
        let mut config = NodeConfig::new(opts.kind, opts.identity_seed);
        config.public_url = opts.public_url.clone();
        config.mining_key = opts.mining_key;
        // One connection: the node must not count on dialing more.
        config.target_outbound = 1;
        config.agent = String::from("tabcoin-test-node");
        let mut store = MemStore::new();
        store
            .persist(&opts.stored)
            .map_err(|e| format!("memory store: {e}"))?;
        let node = Node::new(config, opts.params.clone(), opts.stored)
            .map_err(|e| format!("stored state does not load: {e}"))?;
        let state = Arc::new(Mutex::new(ClientState {
            node,
            store,
            events: Vec::new(),
            latest_template: None,
            dials: Vec::new(),
            disconnect_reason: None,
            closed: false,
        }));
        for b in opts.preload {
            feed(&state, Input::MinedBlock(b));
        }
        let (ws, _response) = connect_async(url).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(pump(ws, state.clone(), rx, url.to_owned()));
        Ok(NodeClient {
            state,
            cmds: tx,
            task: Some(task),
            url: url.to_owned(),
            reward: opts.reward,
        })
    }

    fn lock(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the node (read only).
    pub fn with_node<R>(&self, f: impl FnOnce(&Node) -> R) -> R {
        f(&self.lock().node)
    }

    /// Runs `f` on the whole shared state.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut ClientState) -> R) -> R {
        f(&mut self.lock())
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn node_id(&self) -> PublicKey {
        self.with_node(|n| n.node_id())
    }

    /// The active tip: (hash, height).
    pub fn tip(&self) -> (BlockHash, Height) {
        self.with_node(|n| (n.chain().tip().hash, n.chain().tip().height))
    }

    pub fn height(&self) -> Height {
        self.with_node(|n| n.chain().height())
    }

    /// The active chain, genesis first.
    pub fn chain_snapshot(&self) -> Vec<BlockHash> {
        self.with_node(|n| n.chain().active_chain().to_vec())
    }

    pub fn has_block(&self, hash: &BlockHash) -> bool {
        self.with_node(|n| n.chain().has_block(hash))
    }

    pub fn block(&self, hash: &BlockHash) -> Option<Block> {
        self.with_node(|n| n.chain().block(hash).cloned())
    }

    pub fn in_mempool(&self, txid: &Txid) -> bool {
        self.with_node(|n| n.mempool().contains(txid))
    }

    /// Whether the handshake with the relay is complete and the connection is up.
    pub fn is_connected(&self) -> bool {
        self.with_node(|n| !n.peers().is_empty())
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn disconnect_reason(&self) -> Option<DisconnectReason> {
        self.lock().disconnect_reason.clone()
    }

    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    pub fn dials(&self) -> Vec<String> {
        self.lock().dials.clone()
    }

    pub fn latest_template(&self) -> Option<BlockTemplate> {
        self.lock().latest_template.clone()
    }

    pub fn stats(&self) -> NodeStats {
        self.with_node(|n| n.stats.clone())
    }

    /// Blocks this node received from the relay (`node.stats.blocks_received`).
    pub fn blocks_received_count(&self) -> u64 {
        self.with_node(|n| n.stats.blocks_received)
    }

    /// Polls `pred` on the node every 20 ms until it holds (true) or `timeout` passes.
    pub async fn wait_until(&self, timeout: Duration, mut pred: impl FnMut(&Node) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.with_node(&mut pred) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the handshake to complete.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |n| !n.peers().is_empty()).await
    }

    /// Waits until the active chain reaches `height`.
    pub async fn wait_height(&self, height: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |n| n.chain().height().0 >= height)
            .await
    }

    /// Waits until `hash` is the active tip.
    pub async fn wait_tip(&self, hash: BlockHash, timeout: Duration) -> bool {
        self.wait_until(timeout, |n| n.chain().tip().hash == hash)
            .await
    }

    /// Waits until the connection is gone.
    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_closed() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn command<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(make(tx))
            .map_err(|_| "the client's connection is closed")?;
        Ok(rx.await.map_err(|_| "the client's connection closed")?)
    }

    /// Feeds any input to the node; returns once it and its outputs were handled.
    pub async fn input(&self, input: Input) -> Result<()> {
        self.command(|ack| Cmd::Input(input, ack)).await
    }

    /// Submits a local transaction (announced to the relay when accepted); the pool's verdict.
    pub async fn submit_tx(
        &self,
        tx: Transaction,
    ) -> Result<std::result::Result<Txid, MempoolError>> {
        self.command(|ack| Cmd::SubmitTx(tx, ack)).await
    }

    /// Sends raw bytes as one frame on the node's connection (behind the node's back).
    pub async fn send_raw(&self, bytes: Vec<u8>) -> Result<()> {
        self.command(|ack| Cmd::Raw(bytes, ack)).await
    }

    /// Mines a block on the node's own tip (its mempool included) with the wall clock and
    /// feeds it as `Input::MinedBlock`: the node connects it and announces it, and the relay
    /// fetches it by the normal Headers → GetData → Block flow. Returns the block.
    pub async fn mine_and_submit(&self) -> Result<Block> {
        let template = self.with_node(|n| {
            build_template(
                n.chain(),
                n.mempool(),
                self.reward,
                now_ms() / 1000,
                b"test-client",
            )
        });
        let block = mine(template.block).map_err(|e| format!("mining: {e}"))?;
        self.submit_block(block.clone()).await?;
        Ok(block)
    }

    /// Feeds a block as locally mined (e.g. one built with `tabcoin_core::testkit`).
    pub async fn submit_block(&self, block: Block) -> Result<()> {
        self.input(Input::MinedBlock(block)).await
    }

    /// A payment from `from` to `to` built on the node's chain and pool at the default fee rate.
    pub fn pay(
        &self,
        from: &Wallet,
        to: PublicKey,
        amount: Amount,
    ) -> std::result::Result<Transaction, WalletError> {
        self.with_node(|n| {
            from.pay(
                n.chain(),
                n.mempool(),
                to,
                amount,
                DEFAULT_MIN_FEE_RATE,
                None,
            )
        })
    }

    /// Closes the connection with a close frame and waits for the pump to stop; the state
    /// stays readable.
    pub async fn close(&mut self) {
        let _ = self.cmds.send(Cmd::Close);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Feeds one input under the lock; applies what needs no socket and returns the rest.
fn feed(state: &Mutex<ClientState>, input: Input) -> Vec<Io> {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    st.node.handle(now_ms(), input);
    drain(&mut st)
}

fn drain(st: &mut ClientState) -> Vec<Io> {
    let mut io = Vec::new();
    while let Some(o) = st.node.poll_output() {
        match o {
            Output::Send { peer, bytes } => {
                debug_assert_eq!(peer, RELAY_PEER);
                io.push(Io::Send(bytes.to_vec()));
            }
            Output::Disconnect { reason, .. } => {
                st.disconnect_reason = Some(reason);
                io.push(Io::Close);
            }
            Output::Dial { url } => st.dials.push(url),
            Output::Persist(cs) => st.store.persist(&cs).expect("the memory store cannot fail"),
            Output::Event(e) => st.events.push(e),
            Output::Template(t) => st.latest_template = Some(t),
            Output::LoadBlock(hash) => {
                let (block, undo) = st.store.load_block(&hash).expect("memory store");
                st.node
                    .handle(now_ms(), Input::BlockLoaded { hash, block, undo });
            }
            Output::VerifySigs { ticket, job } => {
                for result in job.results_in_place(1, tabcoin_core::sig::VerifyMode::Single) {
                    st.node
                        .handle(now_ms(), Input::SigsVerified { ticket, result });
                }
            }
        }
    }
    io
}

/// Carries out socket actions; false once the connection is finished.
async fn apply(io: Vec<Io>, sink: &mut Sink) -> bool {
    for action in io {
        match action {
            Io::Send(bytes) => {
                if sink.send(WsMessage::binary(bytes)).await.is_err() {
                    return false;
                }
            }
            Io::Close => {
                let _ = sink.close().await;
                return false;
            }
        }
    }
    true
}

async fn pump(
    ws: Ws,
    state: Arc<Mutex<ClientState>>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    url: String,
) {
    let (mut sink, mut stream): (Sink, Stream) = ws.split();
    let io = feed(
        &state,
        Input::Connected {
            peer: RELAY_PEER,
            outbound: true,
            remote: url,
        },
    );
    let mut open = apply(io, &mut sink).await;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.tick().await;
    while open {
        let io = tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(WsMessage::Binary(b))) => feed(&state, Input::Received { peer: RELAY_PEER, bytes: b.to_vec() }),
                // A relay never sends text; pings are answered by tungstenite.
                Some(Ok(WsMessage::Text(_) | WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
            },
            _ = tick.tick() => feed(&state, Input::Tick),
            cmd = cmds.recv() => match cmd {
                None | Some(Cmd::Close) => {
                    let _ = sink.close().await;
                    break;
                }
                Some(Cmd::Input(input, ack)) => {
                    let io = feed(&state, input);
                    open = apply(io, &mut sink).await;
                    let _ = ack.send(());
                    continue;
                }
                Some(Cmd::SubmitTx(tx, ack)) => {
                    let (verdict, io) = {
                        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                        let verdict = st.node.submit_tx(tx);
                        (verdict, drain(&mut st))
                    };
                    open = apply(io, &mut sink).await;
                    let _ = ack.send(verdict);
                    continue;
                }
                Some(Cmd::Raw(bytes, ack)) => {
                    open = sink.send(WsMessage::binary(bytes)).await.is_ok();
                    let _ = ack.send(());
                    continue;
                }
            },
        };
        open = apply(io, &mut sink).await;
    }
    // Whatever ended the connection, the node learns it is gone.
    let _ = feed(&state, Input::Disconnected { peer: RELAY_PEER });
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    st.closed = true;
}
