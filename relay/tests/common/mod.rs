//! Test clients for real-socket tests of the relay.
//!
//! - [`RawClient`]: one bare WebSocket that sends and reads protocol messages exactly as the
//!   test says — for handshakes by hand, malformed input and limits.
//! - [`NodeClient`]: a full core [`Node`] hosted over one outbound WebSocket, the way a
//!   browser tab (or a relay dialing out) talks to a relay — for sync, gossip and mining.
//!
//! Both speak the test network. Every wait takes a timeout and reports failure instead of
//! hanging; timeouts are generous limits, never measurements.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::hash::sha256d_parts;
use tabcoin_core::mempool::{DEFAULT_MIN_FEE_RATE, MempoolError};
use tabcoin_core::miner::{BlockTemplate, build_template, mine};
use tabcoin_core::node::{DisconnectReason, Event, Input, Node, NodeConfig, NodeStats, Output};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash, Transaction, Txid};
use tabcoin_core::sig::{self, Keypair, PublicKey, Signature};
use tabcoin_core::store::{ChangeSet, MemStore, Store};
use tabcoin_core::units::{Amount, Height, Work};
use tabcoin_core::wallet::{Wallet, WalletError};
use tabcoin_core::wire::{Hello, Message, NodeKind, NodeRecord, PROTOCOL_VERSION, auth_message};

/// Errors of the test clients: anything, with a readable message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a handshake step may take before the helper gives up.
pub const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);
/// The peer id a [`NodeClient`]'s node knows its single connection by.
pub const RELAY_PEER: u64 = 1;

// ---- helpers -----------------------------------------------------------------------------

/// The network every test speaks (start the relay with the same).
pub fn test_params() -> Params {
    Params::test()
}

/// The wallet of test participant `i` (seed = 32 bytes of `i`) on the test network.
pub fn wallet(i: u8) -> Wallet {
    tabcoin_core::testkit::wallet(i, &test_params())
}

/// A block of 60 signed posts (~30 KB) mined through `m` (whose key is wallet 1); returns it
/// once `honest` holds it. Mines 8 blocks first, so the posts spread over several unconfirmed
/// chains within the pool's 25-transaction ancestor limit (the wallet spends the largest coin).
#[allow(dead_code)] // not every test file uses it
pub async fn big_block(m: &NodeClient, honest: &NodeClient) -> Block {
    let wait = Duration::from_secs(30);
    for _ in 0..8 {
        m.mine_and_submit().await.expect("mine");
    }
    for i in 0..60 {
        let tx = m
            .with_node(|n| {
                wallet(1).post(
                    n.chain(),
                    n.mempool(),
                    &format!("post {i} {}", "x".repeat(280)),
                    2_000,
                )
            })
            .expect("the wallet can post");
        m.submit_tx(tx).await.expect("submit").expect("accepted");
    }
    let big = m.mine_and_submit().await.expect("mine");
    assert!(big.encoded_len() > 20_000);
    assert!(honest.wait_tip(big.hash(), wait).await);
    big
}

/// Wall-clock milliseconds since the epoch: the relay checks block times against its own
/// clock, so clients use the real one too.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64
}

/// The `/ws` URL of a server listening on `addr`.
pub fn ws_url(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

/// Chain work of the genesis block alone.
pub fn genesis_work(params: &Params) -> Work {
    Chain::new(params.clone()).tip().work
}

/// `n` empty test-network blocks on genesis paying `reward`, one block time apart from the
/// genesis time (valid against any clock after it). `extra` tells branches apart.
pub fn build_blocks(n: usize, reward: PublicKey, extra: &[u8]) -> Vec<Block> {
    let mut chain = Chain::new(test_params());
    tabcoin_core::testkit::extend_empty(&mut chain, n, reward, extra)
}

/// A protocol Hello as a node with identity `seed` would send it. `claimed_best` defaults
/// to the genesis block (hash, height 0, genesis work).
pub fn make_hello(
    params: &Params,
    seed: [u8; 32],
    kind: NodeKind,
    url: Option<String>,
    claimed_best: Option<(BlockHash, Height, Work)>,
    challenge: [u8; 32],
) -> Hello {
    let genesis = params.genesis_hash();
    let (best_hash, best_height, best_work) =
        claimed_best.unwrap_or_else(|| (genesis, Height::GENESIS, genesis_work(params)));
    let key = Keypair::from_seed(&seed);
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Hello {
        version: PROTOCOL_VERSION,
        features: 0,
        network: genesis,
        node_id: key.public_key(),
        kind,
        // A relay advertises `url` with a record signed by its own key.
        record: url.map(|u| NodeRecord::sign(&key, &genesis, u, now_s)),
        dialed: None,
        best_hash,
        best_height,
        best_work,
        challenge,
        agent: String::from("tabcoin-test-client"),
        extra: Vec::new(),
    }
}

/// The Auth message proving identity `seed` on a connection where we sent `my_challenge`
/// and the peer (`their_id`) sent `their_challenge`: the proof binds both challenges and
/// both ids, so it is worthless on any other connection.
pub fn auth_for(
    params: &Params,
    seed: [u8; 32],
    my_challenge: &[u8; 32],
    their_challenge: &[u8; 32],
    their_id: &PublicKey,
    dialed: &str,
) -> Message {
    let key = Keypair::from_seed(&seed);
    let msg = auth_message(
        &params.genesis_hash(),
        my_challenge,
        their_challenge,
        &key.public_key(),
        their_id,
        dialed,
    );
    Message::Auth(key.sign(&msg.0))
}

/// A challenge that differs per call (the clock and a counter; tests need no secrecy).
fn fresh_challenge(seed: &[u8; 32]) -> [u8; 32] {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    sha256d_parts(&[
        b"tabcoin/test-client/challenge",
        seed,
        &n.to_le_bytes(),
        &nanos.to_le_bytes(),
    ])
    .0
}

// ---- RawClient ---------------------------------------------------------------------------

/// A frame as read from the socket (WebSocket pings and pongs are never shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Binary(Vec<u8>),
    Text(String),
    /// The server closed the connection, reset it, or the socket failed.
    Closed,
    /// Nothing arrived in time.
    Timeout,
}

/// One bare WebSocket connection driven by the test.
///
/// Messages read while waiting for something else are kept in [`RawClient::history`]; the
/// handshake keeps messages that follow it for the next [`RawClient::recv`].
#[derive(Debug)]
pub struct RawClient {
    ws: Ws,
    /// Decoded messages read but not yet returned by `recv` (only the handshake leaves any).
    pending: VecDeque<Message>,
    /// Every decoded message ever received, in order.
    pub history: Vec<Message>,
    their_hello: Option<Hello>,
    node_id: Option<PublicKey>,
    /// The URL this client dialed: its handshake is bound to it.
    url: String,
    closed: bool,
    /// The close frame the server sent: code and reason.
    pub close_frame: Option<(u16, String)>,
}

/// A TCP connection to the host of the `ws://` `url`, from the local address `local` (any of
/// 127.0.0.0/8 on Linux), with the receive buffer shrunk to `recv_buffer` if given.
async fn tcp_to(url: &str, local: std::net::IpAddr, recv_buffer: Option<u32>) -> Result<TcpStream> {
    let addr: std::net::SocketAddr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .ok_or("url without host")?
        .parse()?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(std::net::SocketAddr::new(local, 0))?;
    Ok(socket.connect(addr).await?)
}

impl RawClient {
    /// Opens a WebSocket to `url` (e.g. `ws://127.0.0.1:PORT/ws`). Fails when the server
    /// refuses the upgrade or the TCP connection.
    pub async fn connect(url: &str) -> Result<RawClient> {
        let (ws, _response) = connect_async(url).await?;
        Ok(RawClient::from_ws(ws, url))
    }

    fn from_ws(ws: Ws, url: &str) -> RawClient {
        RawClient {
            ws,
            url: url.to_owned(),
            pending: VecDeque::new(),
            history: Vec::new(),
            their_hello: None,
            node_id: None,
            closed: false,
            close_frame: None,
        }
    }

    /// Connects from a chosen local address (any of 127.0.0.0/8 on Linux), so bans and
    /// per-IP limits of one test client do not touch the others. `recv_buffer` shrinks the
    /// socket's receive buffer (a slow reader fills it quickly).
    pub async fn connect_from(
        url: &str,
        local: std::net::IpAddr,
        recv_buffer: Option<u32>,
    ) -> Result<RawClient> {
        let stream = tcp_to(url, local, recv_buffer).await?;
        let (ws, _response) =
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await?;
        Ok(RawClient::from_ws(ws, url))
    }

    /// Connects from a chosen local address with extra handshake headers (`Origin`,
    /// `X-Forwarded-For`…), as a browser or a reverse proxy would send them.
    pub async fn connect_with_headers(
        url: &str,
        local: std::net::IpAddr,
        headers: &[(&str, &str)],
    ) -> Result<RawClient> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().append(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())?,
                value.parse()?,
            );
        }
        let stream = tcp_to(url, local, None).await?;
        let (ws, _response) =
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
        Ok(RawClient::from_ws(ws, url))
    }

    /// Like [`RawClient::connect_from`] with a 4 KiB WebSocket read buffer instead of
    /// tungstenite's 128 KiB, for tests and the soak that hold thousands of clients.
    pub async fn connect_lean(url: &str, local: std::net::IpAddr) -> Result<RawClient> {
        use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
        let stream = tcp_to(url, local, None).await?;
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _response) = tokio_tungstenite::client_async_with_config(
            url,
            MaybeTlsStream::Plain(stream),
            Some(config),
        )
        .await?;
        Ok(RawClient::from_ws(ws, url))
    }

    /// Sends `bytes` as one binary frame (need not be a valid message).
    pub async fn send_bytes(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.ws.send(WsMessage::binary(bytes)).await?;
        Ok(())
    }

    /// Sends one protocol message as one binary frame.
    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        self.send_bytes(msg.encode()).await
    }

    /// Sends a text frame (the protocol is binary only).
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.ws.send(WsMessage::text(text)).await?;
        Ok(())
    }

    /// Sends a WebSocket close frame.
    pub async fn close(&mut self) -> Result<()> {
        self.ws.close(None).await?;
        Ok(())
    }

    /// The next frame within `timeout`, WebSocket pings and pongs skipped (tungstenite
    /// answers pings itself). Does not look at messages the handshake kept.
    pub async fn recv_frame(&mut self, timeout: Duration) -> Frame {
        if self.closed {
            return Frame::Closed;
        }
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Frame::Timeout,
                Ok(Some(Ok(WsMessage::Binary(b)))) => return Frame::Binary(b.to_vec()),
                Ok(Some(Ok(WsMessage::Text(t)))) => return Frame::Text(t.as_str().to_owned()),
                Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_)))) => {}
                Ok(Some(Ok(WsMessage::Close(frame)))) => {
                    self.close_frame =
                        frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                    self.closed = true;
                    return Frame::Closed;
                }
                Ok(Some(Err(_)) | None) => {
                    self.closed = true;
                    return Frame::Closed;
                }
            }
        }
    }

    /// The bytes of the next binary frame, or `None` on timeout or close. Messages kept by
    /// the handshake come first (re-encoded: the encoding is canonical).
    pub async fn recv_raw(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        if let Some(m) = self.pending.pop_front() {
            return Some(m.encode());
        }
        match self.recv_frame(timeout).await {
            Frame::Binary(b) => {
                if let Ok(m) = Message::from_bytes(&b) {
                    self.history.push(m);
                }
                Some(b)
            }
            Frame::Text(t) => panic!("the server sent a text frame: {t:?}"),
            Frame::Closed | Frame::Timeout => None,
        }
    }

    /// The next protocol message, or `None` on timeout or close. Panics if the server sends
    /// something that is not a valid message (a server bug).
    pub async fn recv(&mut self, timeout: Duration) -> Option<Message> {
        if let Some(m) = self.pending.pop_front() {
            return Some(m);
        }
        match self.recv_frame(timeout).await {
            Frame::Binary(b) => {
                let m = Message::from_bytes(&b)
                    .unwrap_or_else(|e| panic!("the server sent an invalid message: {e}"));
                self.history.push(m.clone());
                Some(m)
            }
            Frame::Text(t) => panic!("the server sent a text frame: {t:?}"),
            Frame::Closed | Frame::Timeout => None,
        }
    }

    /// Reads until a message satisfies `pred` (others are dropped, though kept in
    /// `history`); `None` if none did within `timeout` or the connection closed.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Message) -> bool,
    ) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.recv(left).await?;
            if pred(&m) {
                return Some(m);
            }
        }
    }

    /// Whether the server closes (or resets) the connection within `timeout`. Messages read
    /// meanwhile go to `history` (a fatal `Notice` usually precedes the close).
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_frame(left).await {
                Frame::Closed => return true,
                Frame::Timeout => return false,
                Frame::Binary(b) => {
                    if let Ok(m) = Message::from_bytes(&b) {
                        self.history.push(m.clone());
                        self.pending.push_back(m);
                    }
                }
                Frame::Text(_) => {}
            }
        }
    }

    /// Whether the connection is known to be closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The first fatal notice received so far, if any (its reason).
    pub fn fatal_notice(&self) -> Option<String> {
        self.history.iter().find_map(|m| match m {
            Message::Notice(n) if n.fatal => Some(n.reason.clone()),
            _ => None,
        })
    }

    /// A full handshake as identity `seed`: sends Hello, reads the server's Hello, sends Auth
    /// signed over its challenge, then reads and checks the server's Auth over ours. Returns
    /// the server's Hello. Messages that follow it (GetNodes, GetHeaders, ...) are kept for
    /// `recv`. Fails if the server refuses (fatal notice or close), answers with a bad proof
    /// or takes longer than [`HANDSHAKE_WAIT`].
    pub async fn handshake(
        &mut self,
        params: &Params,
        seed: [u8; 32],
        kind: NodeKind,
        url: Option<String>,
        claimed_best: Option<(BlockHash, Height, Work)>,
    ) -> Result<Hello> {
        let challenge = fresh_challenge(&seed);
        let mut hello = make_hello(params, seed, kind, url, claimed_best, challenge);
        hello.dialed = Some(self.url.clone());
        let me = hello.node_id;
        self.send(&Message::Hello(hello)).await?;
        self.node_id = Some(me);
        let deadline = Instant::now() + HANDSHAKE_WAIT;
        let mut their_auth: Option<Signature> = None;
        let mut sent_auth = false;
        loop {
            if let (Some(h), Some(sig)) = (&self.their_hello, &their_auth) {
                if sent_auth {
                    let msg = auth_message(
                        &params.genesis_hash(),
                        &h.challenge,
                        &challenge,
                        &h.node_id,
                        &me,
                        &self.url,
                    );
                    sig::verify(&h.node_id, &msg.0, sig)
                        .map_err(|e| format!("the server's auth does not verify: {e:?}"))?;
                    return Ok(h.clone());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let m = match self.recv_frame(left).await {
                Frame::Binary(b) => Message::from_bytes(&b)
                    .map_err(|e| format!("invalid message during the handshake: {e}"))?,
                Frame::Text(t) => {
                    return Err(format!("text frame during the handshake: {t:?}").into());
                }
                Frame::Closed => {
                    let why = self.fatal_notice().unwrap_or_default();
                    return Err(format!("closed during the handshake ({why})").into());
                }
                Frame::Timeout => return Err("the handshake timed out".into()),
            };
            self.history.push(m.clone());
            match m {
                Message::Hello(h) if self.their_hello.is_none() => {
                    let auth = auth_for(
                        params,
                        seed,
                        &challenge,
                        &h.challenge,
                        &h.node_id,
                        &self.url,
                    );
                    self.their_hello = Some(h);
                    self.send(&auth).await?;
                    sent_auth = true;
                }
                Message::Auth(sig) if their_auth.is_none() => their_auth = Some(sig),
                Message::Notice(n) if n.fatal => {
                    return Err(format!("the server refused: {}", n.reason).into());
                }
                other => self.pending.push_back(other),
            }
        }
    }

    /// [`RawClient::handshake`] as a browser claiming genesis.
    pub async fn handshake_browser(&mut self, seed: u8) -> Result<Hello> {
        self.handshake(&test_params(), [seed; 32], NodeKind::Browser, None, None)
            .await
    }

    /// The server's Hello, once a handshake read it.
    pub fn their_hello(&self) -> Option<&Hello> {
        self.their_hello.as_ref()
    }

    /// Our node id, once a handshake sent it.
    pub fn node_id(&self) -> Option<PublicKey> {
        self.node_id
    }
}

// ---- NodeClient --------------------------------------------------------------------------

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

/// A relay running in this process on 127.0.0.1:0.
pub struct Relay {
    pub addr: std::net::SocketAddr,
    pub ws_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::result::Result<(), tabcoin_relay::RelayError>>>,
}

impl Relay {
    /// Starts a relay with `config` (its `public_url` is filled in with the bound address
    /// when `advertise` is set).
    pub async fn start(mut config: tabcoin_relay::Config, advertise: bool) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let ws_url = ws_url(addr);
        if advertise {
            config.public_url = Some(ws_url.clone());
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(tabcoin_relay::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Relay {
            addr,
            ws_url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A test-network relay config with everything in memory.
    pub fn test_config() -> tabcoin_relay::Config {
        let mut c = tabcoin_relay::Config::new(tabcoin_core::params::Network::Test);
        c.web_dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../web"));
        // Everything runs on 127.0.0.1.
        c.limits.allow_local_dial = true;
        c
    }

    /// GET `path` and parse the JSON body (a tiny HTTP/1.1 client on a raw socket).
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get_raw(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// GET `path`: status code and body.
    pub async fn get_raw(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(self.addr)
            .await
            .expect("connect to relay");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        s.write_all(req.as_bytes()).await.expect("write request");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read response");
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, body)
    }

    /// Polls `GET path` until `pred` holds.
    pub async fn wait_json(
        &self,
        path: &str,
        timeout: Duration,
        mut pred: impl FnMut(&serde_json::Value) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.get(path).await) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the relay gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let r = tokio::time::timeout(Duration::from_secs(10), t).await;
            let r = r.expect("relay stops within 10 s").expect("relay task");
            r.expect("relay ran without error");
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}
