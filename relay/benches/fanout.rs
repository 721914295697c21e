//! Relay benchmark: `cargo bench -p tabcoin-relay --bench fanout`.
//!
//! Load on loopback only (127.0.0.0/8), bounded in count and time. The relay runs as its own
//! process — the `tabcoin-relay` binary cargo builds for this bench (bench profile = release),
//! started as `--network test --in-memory --listen 127.0.0.1:0` with the connection and rate
//! limits raised — and the clients are tokio tasks in this process. The baseline is a bare
//! tokio-tungstenite server (no protocol, no node): this same executable started again with
//! `--bare-server`.
//!
//! 1. **Fan-out.** 1,000 WebSocket clients complete the protocol handshake as browsers (Hello,
//!    Auth) from eight source addresses 127.0.0.11–18; one more client mines a block on the
//!    test network and submits it the normal way (announces its header, answers the relay's
//!    GetData with the block). Every client answers the relay's Headers announcement with
//!    GetData and reads the block. Timed: from the submit until the last of the 1,000 has the
//!    block (bytes equal to the block message). Baseline in the same run: 1,000 clients of the
//!    bare server, which writes the same block message bytes to every other connection when
//!    one client sends them. Rounds alternate relay and bare (fresh block each round), for a
//!    coinbase-only block and a ~100 KB block.
//! 2. **Memory.** Peak RSS (`VmHWM` of `/proc/PID/status`) of each server before clients and
//!    with 1,000 clients; per connection = delta ÷ 1,000.
//! 3. **Idle connections.** A fresh relay: as many handshaken, silent browser connections as
//!    the file-descriptor limit allows, up to 10,000, opened within 60 s (each client answers
//!    protocol pings). Counted through `/api/status` (`connections`) after a pause; RSS per
//!    connection. The same for the bare server (upgrade only).
//!
//! Arguments: cargo passes `--bench`. A word without a leading `-` is a filter (`fanout`,
//! `idle`): only those parts run and the docs are not rewritten. Without `--bench` (e.g.
//! `cargo test --benches`) everything runs once with 20 clients as a smoke test, and the docs
//! are not rewritten either. A full run rewrites the part of `docs/BENCHMARKS.md` between
//! `<!-- relay:begin -->` and `<!-- relay:end -->`.
//!
//! Raise the open-file limit before a full run (`ulimit -n 65536`; `scripts/bench.sh` does):
//! the idle figure is capped by it, and the relay process inherits it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/benches/support/mod.rs"]
mod support;
use support::utc_now;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message as WsMessage};

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::hash::sha256d_parts;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::miner::build_template;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash, TxOut};
use tabcoin_core::sig::{self, Keypair, PublicKey};
use tabcoin_core::units::{Amount, Height, Work};
use tabcoin_core::wire::{
    Hello, InvId, InvItem, Message, NodeKind, PROTOCOL_VERSION, auth_message,
};

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/BENCHMARKS.md");
const BEGIN: &str = "<!-- relay:begin -->";
const END: &str = "<!-- relay:end -->";
/// The relay binary cargo built for this bench (same profile as the bench).
const RELAY_BIN: &str = env!("CARGO_BIN_EXE_tabcoin-relay");
/// Where the servers' output goes (`target/tmp`).
const LOG_DIR: &str = env!("CARGO_TARGET_TMPDIR");

/// Largest WebSocket message either server accepts: the relay's default limit.
const MAX_MESSAGE: usize = tabcoin_core::wire::MAX_MESSAGE_SIZE + 64;
/// Outputs of the coinbase of the large block (40 bytes each: ~100 KB).
const LARGE_OUTPUTS: usize = 2_500;
/// Connections opening (TCP + upgrade + handshake) at once.
const CONNECT_CONCURRENCY: usize = 64;
/// Most idle connections tried.
const IDLE_MAX: usize = 10_000;
/// The read buffer of the second bare idle run (tungstenite's default: 128 KiB).
const SMALL_READ_BUFFER: usize = 8 * 1024;
/// File descriptors kept free for everything else.
const FD_MARGIN: usize = 256;
/// Limit on one fan-out (not a measurement: a run that takes longer counts as failed).
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

struct Config {
    clients: usize,
    /// Fan-out rounds: at least `min_rounds`, then more until `fanout_budget` is spent, at
    /// most `max_rounds`.
    min_rounds: usize,
    max_rounds: usize,
    fanout_budget: Duration,
    idle_max: usize,
    idle_budget: Duration,
    bare_idle_budget: Duration,
    /// Pause after the last idle connection opened before counting.
    idle_hold: Duration,
    filter: Option<String>,
    write_docs: bool,
}

impl Config {
    fn from_args(args: &[String]) -> Config {
        let bench = args.iter().any(|a| a == "--bench");
        let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
        if bench {
            Config {
                clients: 1_000,
                min_rounds: 11,
                max_rounds: 21,
                fanout_budget: Duration::from_secs(60),
                idle_max: IDLE_MAX,
                idle_budget: Duration::from_secs(60),
                bare_idle_budget: Duration::from_secs(40),
                idle_hold: Duration::from_secs(5),
                write_docs: filter.is_none(),
                filter,
            }
        } else {
            Config {
                clients: 20,
                min_rounds: 1,
                max_rounds: 1,
                fanout_budget: Duration::ZERO,
                idle_max: 20,
                idle_budget: Duration::from_secs(10),
                bare_idle_budget: Duration::from_secs(10),
                idle_hold: Duration::from_millis(500),
                write_docs: false,
                filter,
            }
        }
    }

    fn wants(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Memory of a process from `/proc/PID/status`, in KiB.
#[derive(Clone, Copy, Debug, Default)]
struct Mem {
    hwm_kib: u64,
    rss_kib: u64,
}

fn proc_mem(pid: u32) -> Mem {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Mem {
        hwm_kib: field("VmHWM:"),
        rss_kib: field("VmRSS:"),
    }
}

/// CPU time all threads of a process have run (sum of `/proc/PID/task/*/schedstat`).
fn proc_cpu(pid: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let mut ns = 0u64;
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// The soft limit on open files of this process (inherited by the servers).
fn fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// A server process, killed when dropped.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    addr: SocketAddr,
    log: std::path::PathBuf,
    /// The bare server exits when its stdin closes (if this process dies first).
    _stdin: Option<tokio::process::ChildStdin>,
}

impl Server {
    /// Starts the relay binary on a free loopback port, its output in a log file.
    async fn relay(name: &str) -> Server {
        Server::spawn(
            name,
            RELAY_BIN,
            &[
                "--network",
                "test",
                "--in-memory",
                "--listen",
                "127.0.0.1:0",
                "--max-per-ip",
                "100000",
                "--max-http-per-ip",
                "100000",
                "--max-connections",
                "20000",
                "--messages-per-sec",
                "100000",
            ],
            "http://",
        )
        .await
    }

    /// Starts this executable as the bare tokio-tungstenite server, with tungstenite's default
    /// read buffer or one of `read_buffer` bytes.
    async fn bare(name: &str, read_buffer: Option<usize>) -> Server {
        let exe = std::env::current_exe().expect("the bench knows its own path");
        let size = read_buffer.map(|n| n.to_string());
        let mut args = vec!["--bare-server"];
        if let Some(n) = &size {
            args.extend(["--read-buffer", n.as_str()]);
        }
        Server::spawn(
            name,
            exe.to_str().expect("a UTF-8 path"),
            &args,
            "listening ",
        )
        .await
    }

    async fn spawn(name: &str, program: &str, args: &[&str], marker: &str) -> Server {
        let log = std::path::Path::new(LOG_DIR).join(format!("fanout-{name}.log"));
        let out = std::fs::File::create(&log).expect("create the server log");
        let err = out.try_clone().expect("clone the log handle");
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let pid = child.id().expect("a running child has a pid");
        let stdin = child.stdin.take();
        // The address is in the first line it prints.
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split(marker).nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                if let Ok(a) = addr.parse::<SocketAddr>() {
                    break a;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{program} exited ({status}) before listening: {text}");
            }
            assert!(
                Instant::now() < deadline,
                "{program} did not start listening within 30 s: {text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Server {
            child,
            pid,
            addr,
            log,
            _stdin: stdin,
        }
    }

    fn mem(&self) -> Mem {
        proc_mem(self.pid)
    }

    fn cpu(&self) -> Duration {
        proc_cpu(&self.pid.to_string())
    }

    /// Lines of its log containing `needle`.
    fn log_lines(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// GET `path` and parse the JSON body (HTTP/1.1 on a raw socket).
    async fn get_json(&self, path: &str) -> serde_json::Value {
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
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// Polls `/api/status` until `pred` holds or `timeout` passes; the last status.
    async fn wait_status(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.get_json("/api/status").await;
            if pred(&s) || Instant::now() >= deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
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

// ---------------------------------------------------------------------------------------------
// The bare server (child process)

/// A tokio-tungstenite server with no protocol: every binary message a client sends is written
/// to every other client. Default WebSocket settings apart from the message size limit (and
/// the read buffer, if `read_buffer` is given), and like the relay (axum's `serve`) no
/// `TCP_NODELAY` on accepted sockets.
fn bare_server_main(read_buffer: Option<usize>) {
    // Exit with the parent: it holds our stdin.
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        use std::io::Read as _;
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        println!(
            "listening {}",
            listener.local_addr().expect("a bound listener")
        );
        let (tx, _) = tokio::sync::broadcast::channel::<(u64, Bytes)>(64);
        let mut next = 0u64;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            next += 1;
            tokio::spawn(bare_conn(stream, next, tx.clone(), read_buffer));
        }
    });
}

async fn bare_conn(
    stream: TcpStream,
    id: u64,
    tx: tokio::sync::broadcast::Sender<(u64, Bytes)>,
    read_buffer: Option<usize>,
) {
    let mut config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    if let Some(n) = read_buffer {
        config = config.read_buffer_size(n);
    }
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let mut rx = tx.subscribe();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(WsMessage::Binary(b))) => {
                    let _ = tx.send((id, b));
                }
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            msg = rx.recv() => match msg {
                Ok((from, bytes)) if from != id => {
                    if sink.send(WsMessage::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

type Ws = WebSocketStream<TcpStream>;

fn loopback(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

/// Opens a WebSocket to `/ws` of `server` from `local` (any port). `read_buffer` overrides
/// tungstenite's 128 KiB read buffer.
async fn open_ws(
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
struct Net {
    params: Params,
    genesis: BlockHash,
    genesis_work: Work,
}

impl Net {
    fn test() -> Net {
        let params = Params::test();
        let chain = Chain::new(params.clone());
        Net {
            genesis: params.genesis_hash(),
            genesis_work: chain.tip().work,
            params,
        }
    }
}

fn identity(i: u64) -> [u8; 32] {
    sha256d_parts(&[b"tabcoin/relay-bench/identity", &i.to_le_bytes()]).0
}

async fn send_msg(ws: &mut Ws, msg: &Message) -> Result<(), String> {
    ws.send(WsMessage::Binary(Bytes::from(msg.encode())))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// The next protocol message before `deadline`.
async fn recv_msg(ws: &mut Ws, deadline: Instant) -> Result<Message, String> {
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
fn push_mode() -> bool {
    !matches!(std::env::var("FANOUT_PUSH").as_deref(), Ok("0"))
}

/// The handshake of a browser tab: Hello, the relay's Hello, Auth over its challenge, and its
/// Auth over ours, checked; then `sendblocks` in [`push_mode`]. Other messages before the
/// end are dropped. `url` is the URL dialed, which both proofs cover.
async fn handshake(ws: &mut Ws, net: &Net, seed: [u8; 32], url: &str) -> Result<(), String> {
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
enum EvKind {
    /// A Headers announcement arrived (and GetData went out).
    Headers,
    /// The expected block message arrived.
    Block,
    /// A block other than the expected one.
    WrongBlock,
    Closed,
}

/// What the clients of one server share with the coordinator.
struct Shared {
    /// The block message of the current run: a frame equal to it is "the block".
    expected: RwLock<Option<Arc<[u8]>>>,
    events: mpsc::UnboundedSender<(EvKind, Instant)>,
}

impl Shared {
    fn new() -> (Arc<Shared>, mpsc::UnboundedReceiver<(EvKind, Instant)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Shared {
                expected: RwLock::new(None),
                events: tx,
            }),
            rx,
        )
    }

    fn event(&self, kind: EvKind, at: Instant) {
        let _ = self.events.send((kind, at));
    }
}

/// A client after connecting: the block is recognised by its bytes; a Headers announcement is
/// answered with GetData for its last header; protocol pings with pongs. The time is taken
/// when the frame is read.
async fn client_loop(mut ws: Ws, shared: Arc<Shared>) {
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
struct Clients {
    tasks: Vec<JoinHandle<()>>,
    opened: usize,
    failures: Vec<String>,
    /// From the first connection attempt to the last one open.
    open_time: Duration,
}

impl Clients {
    fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Opens up to `n` clients from `ips` (round robin), `CONNECT_CONCURRENCY` at a time, each
/// handshaking as a browser when `net` is given, then running [`client_loop`]. Stops opening
/// at `deadline`.
#[allow(clippy::too_many_arguments)]
async fn open_clients(
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
struct Miner {
    ws: Ws,
    chain: Chain,
    reward: PublicKey,
}

impl Miner {
    async fn connect(server: SocketAddr, net: &Net) -> Miner {
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
    fn next_block(&mut self, outputs: usize) -> Block {
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
    async fn submit(&mut self, block: &Block, msg: Bytes) -> Result<Instant, String> {
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

// ---------------------------------------------------------------------------------------------
// Fan-out

/// One fan-out: times after the submit (the miner's Headers, or the trigger's block).
#[derive(Clone, Debug, Default)]
struct Run {
    /// Relay only: when the relay asked the miner for the block.
    getdata: Option<Duration>,
    first_headers: Option<Duration>,
    last_headers: Option<Duration>,
    first_block: Option<Duration>,
    /// When the last client had the block: the figure.
    last_block: Option<Duration>,
    blocks: usize,
    /// Server CPU time during the run.
    server_cpu: Duration,
    /// This process' CPU time (the clients) during the run.
    client_cpu: Duration,
    error: Option<String>,
}

impl Run {
    fn total_ms(&self) -> f64 {
        self.last_block.map_or(f64::NAN, ms)
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<(EvKind, Instant)>) -> usize {
    let mut closed = 0;
    while let Ok((kind, _)) = rx.try_recv() {
        if kind == EvKind::Closed {
            closed += 1;
        }
    }
    closed
}

/// Waits until `n` clients have the block (or `RUN_TIMEOUT`), filling in `run`.
async fn collect(
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

fn self_cpu() -> Duration {
    proc_cpu("self")
}

struct RelaySide {
    server: Server,
    clients: Clients,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<(EvKind, Instant)>,
    miner: Miner,
    n: usize,
}

impl RelaySide {
    async fn run(&mut self, block: &Block, msg: &Arc<[u8]>) -> Run {
        *self
            .shared
            .expected
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
        drain(&mut self.rx);
        let bytes = Bytes::copy_from_slice(msg);
        let mut run = Run::default();
        let (cpu0, self0) = (self.server.cpu(), self_cpu());
        let t0 = Instant::now();
        match self.miner.submit(block, bytes).await {
            Ok(asked) => {
                run.getdata = Some(asked - t0);
                collect(&mut self.rx, self.n, t0, &mut run).await;
            }
            Err(e) => run.error = Some(format!("submitting: {e}")),
        }
        run.server_cpu = self.server.cpu().saturating_sub(cpu0);
        run.client_cpu = self_cpu().saturating_sub(self0);
        run
    }
}

struct BareSide {
    server: Server,
    clients: Clients,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<(EvKind, Instant)>,
    trigger: Ws,
    n: usize,
}

impl BareSide {
    async fn run(&mut self, msg: &Arc<[u8]>) -> Run {
        *self
            .shared
            .expected
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
        drain(&mut self.rx);
        let bytes = Bytes::copy_from_slice(msg);
        let mut run = Run::default();
        let (cpu0, self0) = (self.server.cpu(), self_cpu());
        let t0 = Instant::now();
        match self.trigger.send(WsMessage::Binary(bytes)).await {
            Ok(()) => collect(&mut self.rx, self.n, t0, &mut run).await,
            Err(e) => run.error = Some(format!("trigger: {e}")),
        }
        run.server_cpu = self.server.cpu().saturating_sub(cpu0);
        run.client_cpu = self_cpu().saturating_sub(self0);
        run
    }
}

/// A block size measured: runs of both sides, index `i` of each from the same round.
struct SizeRuns {
    name: &'static str,
    outputs: usize,
    bytes: usize,
    relay: Vec<Run>,
    bare: Vec<Run>,
}

impl SizeRuns {
    fn ok_pairs(&self) -> Vec<(&Run, &Run)> {
        self.relay
            .iter()
            .zip(&self.bare)
            .filter(|(r, b)| r.error.is_none() && b.error.is_none())
            .collect()
    }

    fn relay_ms(&self) -> Vec<f64> {
        self.ok_pairs().iter().map(|(r, _)| r.total_ms()).collect()
    }

    fn bare_ms(&self) -> Vec<f64> {
        self.ok_pairs().iter().map(|(_, b)| b.total_ms()).collect()
    }

    fn ratios(&self) -> Vec<f64> {
        self.ok_pairs()
            .iter()
            .map(|(r, b)| r.total_ms() / b.total_ms())
            .collect()
    }

    fn relay_phase(&self, f: impl Fn(&Run) -> Option<Duration>) -> f64 {
        median(
            &self
                .ok_pairs()
                .iter()
                .map(|(r, _)| f(r).map_or(f64::NAN, ms))
                .collect::<Vec<_>>(),
        )
    }

    fn cpu_ms(&self, relay: bool) -> f64 {
        median(
            &self
                .ok_pairs()
                .iter()
                .map(|(r, b)| ms(if relay { r.server_cpu } else { b.server_cpu }))
                .collect::<Vec<_>>(),
        )
    }

    fn client_cpu_ms(&self, relay: bool) -> f64 {
        median(
            &self
                .ok_pairs()
                .iter()
                .map(|(r, b)| ms(if relay { r.client_cpu } else { b.client_cpu }))
                .collect::<Vec<_>>(),
        )
    }

    fn errors(&self) -> Vec<String> {
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

struct FanoutResults {
    clients: usize,
    sizes: Vec<SizeRuns>,
    rounds: usize,
    relay_mem0: Mem,
    relay_mem1: Mem,
    relay_mem_after: Mem,
    bare_mem0: Mem,
    bare_mem1: Mem,
    bare_mem_after: Mem,
    relay_connect: Duration,
    bare_connect: Duration,
    slow_reader_lines: usize,
    on_cpu: f64,
}

async fn fanout(cfg: &Config, net: &Net) -> FanoutResults {
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
        server: relay,
        clients,
        shared,
        rx,
        miner,
        n,
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
        server: bare,
        clients: bclients,
        shared: bshared,
        rx: brx,
        trigger,
        n,
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
    let relay_mem_after = relay_side.server.mem();
    let bare_mem_after = bare_side.server.mem();
    let slow_reader_lines = relay_side.server.log_lines("slow reader");

    relay_side.clients.abort();
    bare_side.clients.abort();
    relay_side.server.stop().await;
    bare_side.server.stop().await;
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
fn machine_busy() -> Option<Duration> {
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

// ---------------------------------------------------------------------------------------------
// Idle connections

struct IdleSide {
    attempted: usize,
    opened: usize,
    failures: usize,
    first_failure: Option<String>,
    /// Connections the server holds after the pause (relay: `/api/status`; bare: open
    /// clients not closed).
    held: usize,
    /// Relay only: established browser peers.
    peers: Option<usize>,
    open_time: Duration,
    mem0: Mem,
    mem1: Mem,
}

impl IdleSide {
    fn per_conn_kib(&self) -> f64 {
        (self.mem1.rss_kib as f64 - self.mem0.rss_kib as f64) / self.held.max(1) as f64
    }
}

struct IdleResults {
    fd_limit: Option<usize>,
    relay: IdleSide,
    bare: IdleSide,
    /// The bare server again with a `SMALL_READ_BUFFER` read buffer.
    bare_small: IdleSide,
}

/// Opens `target` idle connections to `server` (handshaken when `net` is given) and measures.
async fn idle_side(
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

async fn idle(cfg: &Config, net: &Net) -> IdleResults {
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

// ---------------------------------------------------------------------------------------------
// Machine

struct Machine {
    cpu: String,
    logical_cpus: usize,
    date: String,
    rustc: String,
    kernel: String,
}

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        });
        let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpu: model.unwrap_or_else(|| "unknown".into()),
            logical_cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            date: utc_now(),
            rustc,
            kernel,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Report

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn f2(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "—".into()
    }
}

fn f1(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "—".into()
    }
}

/// Table rows: figure | relay | bare | relay ÷ bare.
fn rows(f: Option<&FanoutResults>, i: Option<&IdleResults>) -> Vec<[String; 4]> {
    let mut rows = Vec::new();
    if let Some(f) = f {
        let n = f.clients as f64;
        for s in &f.sizes {
            let (r, b) = (median(&s.relay_ms()), median(&s.bare_ms()));
            rows.push([
                format!(
                    "Fan-out of a block, {} ({} bytes), to {} clients: submit → last client has it, ms (µs per client)",
                    s.name, s.bytes, f.clients
                ),
                format!("{} ({:.0})", f2(r), r * 1e3 / n),
                format!("{} ({:.0})", f2(b), b * 1e3 / n),
                f2(median(&s.ratios())),
            ]);
        }
        for s in &f.sizes {
            let (r, b) = (s.cpu_ms(true), s.cpu_ms(false));
            rows.push([
                format!(
                    "Server CPU time per fan-out, {} block, ms (µs per client)",
                    s.name
                ),
                format!("{} ({:.0})", f1(r), r * 1e3 / n),
                format!("{} ({:.0})", f1(b), b * 1e3 / n),
                f2(r / b),
            ]);
        }
        rows.push([
            "Peak RSS before clients (VmHWM), MiB".into(),
            mib(f.relay_mem0.hwm_kib),
            mib(f.bare_mem0.hwm_kib),
            f2(f.relay_mem0.hwm_kib as f64 / f.bare_mem0.hwm_kib as f64),
        ]);
        let per = |m0: Mem, m1: Mem| (m1.hwm_kib as f64 - m0.hwm_kib as f64) / n;
        let (pr, pb) = (
            per(f.relay_mem0, f.relay_mem1),
            per(f.bare_mem0, f.bare_mem1),
        );
        rows.push([
            format!(
                "Peak RSS with {} clients (relay: handshaken browsers), MiB; per connection, KiB",
                f.clients
            ),
            format!("{}; {:.1}", mib(f.relay_mem1.hwm_kib), pr),
            format!("{}; {:.1}", mib(f.bare_mem1.hwm_kib), pb),
            f2(pr / pb),
        ]);
        rows.push([
            "After all fan-out rounds: peak RSS (VmHWM); RSS now (VmRSS), MiB".into(),
            format!(
                "{}; {}",
                mib(f.relay_mem_after.hwm_kib),
                mib(f.relay_mem_after.rss_kib)
            ),
            format!(
                "{}; {}",
                mib(f.bare_mem_after.hwm_kib),
                mib(f.bare_mem_after.rss_kib)
            ),
            f2(f.relay_mem_after.rss_kib as f64 / f.bare_mem_after.rss_kib as f64),
        ]);
    }
    if let Some(i) = i {
        rows.push([
            format!(
                "Idle connections held (relay: handshaken; bare: upgraded), of {} tried",
                i.relay.attempted
            ),
            format!(
                "{} (opened in {:.1} s)",
                i.relay.held,
                i.relay.open_time.as_secs_f64()
            ),
            format!(
                "{} (opened in {:.1} s)",
                i.bare.held,
                i.bare.open_time.as_secs_f64()
            ),
            f2(i.relay.held as f64 / i.bare.held.max(1) as f64),
        ]);
        rows.push([
            "RSS per idle connection (VmRSS delta ÷ connections held), KiB".into(),
            f1(i.relay.per_conn_kib()),
            f1(i.bare.per_conn_kib()),
            f2(i.relay.per_conn_kib() / i.bare.per_conn_kib()),
        ]);
    }
    rows
}

fn table(rows: &[[String; 4]]) -> String {
    let mut t = String::from(
        "| figure | relay | bare tokio-tungstenite | relay ÷ bare |\n|---|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(t, "| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
    }
    t
}

/// Reads one phase's time off a relay run.
type Phase = fn(&Run) -> Option<Duration>;

fn phase_table(f: &FanoutResults) -> String {
    let mut t = String::from("| relay, median ms after the submit |");
    for s in &f.sizes {
        let _ = write!(t, " {} |", s.name);
    }
    t.push_str("\n|---|");
    for _ in &f.sizes {
        t.push_str("---:|");
    }
    t.push('\n');
    let phases: [(&str, Phase); 5] = [
        ("the relay asks the miner for the block (GetData)", |r| {
            r.getdata
        }),
        ("first client has the Headers announcement", |r| {
            r.first_headers
        }),
        ("last client has the Headers announcement", |r| {
            r.last_headers
        }),
        ("first client has the block", |r| r.first_block),
        ("last client has the block", |r| r.last_block),
    ];
    for (name, get) in phases {
        let _ = write!(t, "| {name} |");
        for s in &f.sizes {
            let _ = write!(t, " {} |", f2(s.relay_phase(get)));
        }
        t.push('\n');
    }
    t
}

fn spreads(f: &FanoutResults) -> String {
    let mut t = String::new();
    for s in &f.sizes {
        let (rl, rh) = min_max(&s.relay_ms());
        let (bl, bh) = min_max(&s.bare_ms());
        let (ql, qh) = min_max(&s.ratios());
        let _ = writeln!(
            t,
            "- {} block, min – max of {} rounds: relay {} – {} ms, bare {} – {} ms; relay ÷ bare {} – {}; this process (the clients) used a median {} ms of CPU per relay run and {} ms per bare run",
            s.name,
            s.ratios().len(),
            f2(rl),
            f2(rh),
            f2(bl),
            f2(bh),
            f2(ql),
            f2(qh),
            f1(s.client_cpu_ms(true)),
            f1(s.client_cpu_ms(false)),
        );
        for e in s.errors() {
            let _ = writeln!(t, "- failed run ({}): {e}", s.name);
        }
    }
    t
}

fn print_report(machine: &Machine, f: Option<&FanoutResults>, i: Option<&IdleResults>) {
    println!();
    println!(
        "relay bench — {} ({} logical CPUs), {}, {}",
        machine.cpu, machine.logical_cpus, machine.rustc, machine.date
    );
    println!();
    print!("{}", table(&rows(f, i)));
    if let Some(f) = f {
        println!();
        print!("{}", phase_table(f));
        println!();
        print!("{}", spreads(f));
        println!(
            "- relay connect + handshake of {} clients: {:.1} s; bare connect: {:.1} s; \"slow reader\" lines in the relay log: {}; machine busy {:.0}% during the rounds",
            f.clients,
            f.relay_connect.as_secs_f64(),
            f.bare_connect.as_secs_f64(),
            f.slow_reader_lines,
            f.on_cpu * 100.0
        );
    }
    if let Some(i) = i {
        for (name, s) in [
            ("relay", &i.relay),
            ("bare", &i.bare),
            ("bare, 8 KiB read buffer", &i.bare_small),
        ] {
            println!(
                "- idle {name}: tried {}, opened {}, failed {}{}, held {}{}; RSS {} → {} KiB (VmHWM {} KiB)",
                s.attempted,
                s.opened,
                s.failures,
                s.first_failure
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (first: {e})")),
                s.held,
                s.peers
                    .map_or(String::new(), |p| format!(" ({p} established)")),
                s.mem0.rss_kib,
                s.mem1.rss_kib,
                s.mem1.hwm_kib
            );
        }
    }
}

fn doc_section(machine: &Machine, f: Option<&FanoutResults>, i: Option<&IdleResults>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "## Relay (`cargo bench -p tabcoin-relay --bench fanout`)\n"
    );
    let _ = writeln!(
        s,
        "Written by `relay/benches/fanout.rs` on {}: {} ({} logical CPUs), Linux {}, {}, bench profile (release). \
         Servers and clients share the machine's {} CPUs and loopback.\n",
        machine.date,
        machine.cpu,
        machine.logical_cpus,
        machine.kernel,
        machine.rustc,
        machine.logical_cpus
    );
    s.push_str(&table(&rows(f, i)));
    if let Some(f) = f {
        let _ = writeln!(
            s,
            "\nWhere the relay's time goes (same runs; the submit is the miner sending its Headers):\n"
        );
        s.push_str(&phase_table(f));
        let _ = writeln!(s, "\nSpread and checks:\n");
        s.push_str(&spreads(f));
        let _ = writeln!(
            s,
            "- connecting and handshaking {} browser clients with the relay took {:.1} s ({} at a time); \
             connecting {} clients to the bare server {:.1} s; \"slow reader\" drops in the relay log: {}; \
             the machine's CPUs were {:.0}% busy while the rounds ran (all processes, `/proc/stat`)",
            f.clients,
            f.relay_connect.as_secs_f64(),
            CONNECT_CONCURRENCY,
            f.clients,
            f.bare_connect.as_secs_f64(),
            f.slow_reader_lines,
            f.on_cpu * 100.0
        );
    }
    if let Some(i) = i {
        for (name, side) in [
            ("relay", &i.relay),
            ("bare server", &i.bare),
            ("bare server with an 8 KiB read buffer", &i.bare_small),
        ] {
            let _ = writeln!(
                s,
                "- idle, {name}: {} tried, {} opened, {} failed{}; held {}{}; VmRSS {} → {} KiB",
                side.attempted,
                side.opened,
                side.failures,
                side.first_failure
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (first: `{e}`)")),
                side.held,
                side.peers.map_or(String::new(), |p| format!(
                    " ({p} established browser peers)"
                )),
                side.mem0.rss_kib,
                side.mem1.rss_kib
            );
        }
    }
    s.push_str(&how_measured(f, i));
    s.push_str(&reading(f, i));
    let _ = writeln!(s, "{END}");
    s
}

fn how_measured(f: Option<&FanoutResults>, i: Option<&IdleResults>) -> String {
    let mut s = String::from("\n### How each figure is measured\n\n");
    s.push_str(
        "- **Servers.** The relay is the `tabcoin-relay` binary built for the bench, run as its own process: \
         `--network test --in-memory --listen 127.0.0.1:0 --max-per-ip 100000 --max-connections 20000 \
         --messages-per-sec 100000` (`RUST_LOG=warn`). The baseline is a bare tokio-tungstenite 0.29 server \
         (the version axum uses) in its own process — this bench executable started with `--bare-server`: \
         default WebSocket settings but the message size limit, a multi-threaded tokio runtime like the relay's, \
         and a `broadcast` channel: a binary message from one client is written to every other client, \
         the same `Bytes` for all. Neither server sets `TCP_NODELAY` on accepted sockets (axum's `serve` does not); \
         the clients do, as browsers do. The clients are tokio tasks in the bench process (multi-threaded runtime), \
         tungstenite defaults, each bound to a 127.0.0.x source address.\n",
    );
    if let Some(f) = f {
        let _ = writeln!(
            s,
            "- **Fan-out.** {n} clients per server, 8 source addresses each (relay 127.0.0.11–18, bare 127.0.0.21–28). \
             Relay clients complete the protocol handshake as browsers (Hello claiming genesis, Auth over the relay's \
             challenge, the relay's Auth checked){push}. They answer each Headers announcement with GetData for its \
             last header and protocol Pings with Pongs. One more client (127.0.0.2), also a handshaken browser, is the \
             miner: it keeps its own copy of the chain, builds a block on it (`build_template` + `testkit::seal`, \
             the test network's trivial proof of work, done before the timer starts), and submits it as a browser \
             does: it sends `Headers([header])`, waits for the relay's GetData and sends the Block message. \
             Timed, with `Instant` in the bench process: from just before the miner sends the Headers until the \
             moment the last of the {n} clients reads a frame equal, byte for byte, to the block message \
             (the encoding is canonical, so this is the full block). Bare: from just before a trigger client sends the \
             same block message bytes until the last of the {n} clients reads them. Rounds: {rounds}; \
             each round measures the coinbase-only block and then the ~100 KB block (a coinbase paying the subsidy in \
             {LARGE_OUTPUTS} outputs of 40 bytes: a size close to the core bench's 300-payment block, without its \
             26 ms of signature checks), relay and bare back to back, the relay first in odd rounds and second in even \
             ones, 200 ms apart; a fresh block for every relay run. Table: the median over rounds of each side, and the median \
             over rounds of relay ÷ bare within the round. µs per client = the time ÷ {n}. A client's time is taken when its \
             task reads the frame, so it includes the wait for a CPU in the bench process (the same for both sides).",
            n = f.clients,
            rounds = f.rounds,
            push = if push_mode() {
                ", then send `sendblocks` (PROTOCOL §7.4) as browsers do, so the relay pushes each new block to \
                 them as a `block` message"
            } else {
                " (without `sendblocks`: `FANOUT_PUSH=0`)"
            },
        );
        s.push_str(
            "- **Server CPU time.** The sum over the server process's threads of `/proc/PID/task/*/schedstat` \
             (nanoseconds on a CPU), read just before the submit and after the last client has the block.\n",
        );
        let _ = writeln!(
            s,
            "- **Memory.** `VmHWM` (peak resident set) of `/proc/PID/status` of each server 500 ms after it started \
             listening, and again 500 ms after all {n} clients were connected (the relay: once it counts {n} browser \
             peers in `/api/status`, before the miner connects). Per connection = the difference ÷ {n}. \
             After the rounds: the peak again, which includes the fan-out's buffers, and the resident set then \
             (`VmRSS`, what stays).",
            n = f.clients
        );
    }
    if let Some(i) = i {
        let _ = writeln!(
            s,
            "- **Idle connections.** Fresh servers. Target: {target} connections (10,000, or fewer when the \
             open-file limit of the bench — {limit}, inherited by the servers; `scripts/bench.sh` raises it with \
             `ulimit -n` — leaves less room), opened {CONNECT_CONCURRENCY} at a time from 500 per source address \
             (relay 127.0.1.x, bare 127.0.2.x). Relay clients complete the browser handshake and then stay silent \
             except to answer protocol Pings (the relay drops a connection without a handshake after 10 s, and one that \
             does not answer a Ping, sent after 30 s of silence, within 20 s); bare clients only upgrade. Each side \
             has at most {rb} s / {bb} s to open them; then the connections rest {hold} s and are counted — the relay's \
             `connections` in `/api/status` (WebSocket connections it holds), the bare server's by the clients still open. \
             RSS per idle connection = (`VmRSS` after − `VmRSS` before the clients) ÷ connections held. Then the bare \
             server once more, with tungstenite's `read_buffer_size` set to {small} KiB instead of its default 128 KiB \
             (127.0.3.x). The clients use a 4 KiB read buffer to keep the bench process small; this does not touch the servers.",
            target = i.relay.attempted,
            limit = i.fd_limit.map_or("unknown".into(), |l| l.to_string()),
            rb = 60,
            bb = 40,
            hold = 5,
            small = SMALL_READ_BUFFER / 1024,
        );
    }
    s
}

fn reading(f: Option<&FanoutResults>, i: Option<&IdleResults>) -> String {
    let mut s = String::from("\n### Reading\n\n");
    if let Some(f) = f {
        let n = f.clients as f64;
        for sz in &f.sizes {
            let r = median(&sz.relay_ms());
            let b = median(&sz.bare_ms());
            let getdata = sz.relay_phase(|r| r.getdata);
            let last_headers = sz.relay_phase(|r| r.last_headers);
            let first_headers = sz.relay_phase(|r| r.first_headers);
            if push_mode() {
                let first = sz.relay_phase(|r| r.first_block);
                let _ = writeln!(
                    s,
                    "- {} block ({} bytes): the relay gets it to all {} clients in {} ms, {:.2}× the bare server's {} ms \
                     (medians; ratio within rounds). It asks the miner for the block {} ms after the submit; the first \
                     client has the pushed block at {} ms (the block received, validated and connected in between), and \
                     the remaining {} ms ({:.0} µs per client) go to writing it to the other clients. The relay process \
                     spends {} ms of CPU per fan-out, the bare server {} ms; the clients (this process) {} ms for a relay \
                     run and {} ms for a bare one, and they share the two CPUs with the servers.",
                    sz.name,
                    sz.bytes,
                    f.clients,
                    f2(r),
                    median(&sz.ratios()),
                    f2(b),
                    f2(getdata),
                    f2(first),
                    f2(r - first),
                    (r - first) * 1e3 / n,
                    f1(sz.cpu_ms(true)),
                    f1(sz.cpu_ms(false)),
                    f1(sz.client_cpu_ms(true)),
                    f1(sz.client_cpu_ms(false)),
                );
                continue;
            }
            let _ = writeln!(
                s,
                "- {} block ({} bytes): the relay gets it to all {} clients in {} ms, {:.1}× the bare server's {} ms \
                 (medians). It asks the miner for the block {} ms after the submit and the first client has the \
                 announcement at {} ms (the block received, validated and connected in between); the last client has \
                 the announcement at {} ms, and the remaining {} ms ({:.0} µs per client) go to the GetData → Block \
                 exchanges still under way. The first client has the block {} ms after the first announcement arrived. \
                 The relay process spends {} ms of CPU per fan-out, the bare server {} ms; the clients (this process) \
                 {} ms for a relay run and {} ms for a bare one, and they share the two CPUs with the servers.",
                sz.name,
                sz.bytes,
                f.clients,
                f2(r),
                median(&sz.ratios()),
                f2(b),
                f2(getdata),
                f2(first_headers),
                f2(last_headers),
                f2(r - last_headers),
                (r - last_headers) * 1e3 / n,
                f2(sz.relay_phase(|r| r.first_block) - first_headers),
                f1(sz.cpu_ms(true)),
                f1(sz.cpu_ms(false)),
                f1(sz.client_cpu_ms(true)),
                f1(sz.client_cpu_ms(false)),
            );
        }
        let per = |m0: Mem, m1: Mem| (m1.rss_kib as f64 - m0.rss_kib as f64) / n;
        let _ = writeln!(
            s,
            "- Memory after the rounds: the relay's resident set is {} MiB above what it was with its {} clients \
             connected ({:.0} KiB per connection), the bare server's {} MiB ({:.0} KiB per connection). Tungstenite \
             formats each outgoing frame into a per-connection `Vec` (`FrameCodec::out_buffer`) that keeps its capacity \
             once drained, so every connection that was once sent a ~100 KB block keeps ~100 KB of buffer — in both \
             servers; the relay's extra is presumably what its allocator kept of the per-client block copies.",
            f1((f.relay_mem_after.rss_kib as f64 - f.relay_mem1.rss_kib as f64) / 1024.0),
            f.clients,
            per(f.relay_mem1, f.relay_mem_after),
            f1((f.bare_mem_after.rss_kib as f64 - f.bare_mem1.rss_kib as f64) / 1024.0),
            per(f.bare_mem1, f.bare_mem_after),
        );
    }
    if push_mode() {
        s.push_str(
            "- What the relay does per client that the bare server does not (read from `relay/src` and \
             `core/src/node/`): the block arrives from the miner (reader task → node task), is validated and \
             connected, and is encoded once (`Node::encoded_block`); `announce_headers` then pushes that one \
             `Arc<[u8]>` to every peer that sent `sendblocks` (`core/src/node/push.rs`), one `Output::Send` each, \
             which the node task puts on that connection's bounded queue (a byte-budget charge shared by all \
             queues holding the buffer, no copy); each connection's writer task wraps it with \
             `Bytes::from_owner` (no copy) and tungstenite copies the frame into its write buffer — as in the bare \
             server. So a pushed block crosses two tasks (node task → writer) where the bare server's broadcast \
             crosses one (the receiving client's task), and the node task's loop over 1,000 peers runs on one \
             core before the writers, spread over both, start. With `FANOUT_PUSH=0` every client still costs \
             the `headers` → `getdata` → `block` exchange: a frame read and copied by its reader task \
             (`Incoming::Binary(b.to_vec())`), a hop into the node task, which serves the `getdata` in turn, and a \
             hop to the writer.\n",
        );
    } else {
        s.push_str(
            "- What the relay does per client that the bare server does not (read from `relay/src` and \
             `core/src/node/`): one extra round trip (Headers out, GetData in); every incoming frame is copied \
             (`Incoming::Binary(b.to_vec())` in `conn.rs`) and queued on the one bounded channel into the node task, \
             which handles every GetData in turn on a single task (the block is encoded once and shared, \
             `Node::encoded_block`); and the Headers announcement is encoded separately for each peer \
             (`announce_headers`). Each message crosses three tasks (connection reader → node task → connection \
             writer) where the bare server uses one.\n",
        );
    }
    s.push_str(
        "- Both servers run tungstenite with its default 128 KiB read buffer per connection, which it zero-fills \
         up to its capacity before every read (`FrameCodec::read_in` in tungstenite 0.29: \
         `in_buffer.resize(capacity.min(len + read_buffer_size), 0)`): each connection that has read anything holds \
         about 128 KiB of touched memory, and each read of an incoming frame costs a memset of up to 128 KiB. \
         The relay does not set `read_buffer_size` (axum's `WebSocketUpgrade::read_buffer_size`).\n",
    );
    if let Some(i) = i {
        let _ = writeln!(
            s,
            "- Idle: the relay held {} handshaken connections at {} KiB each, the bare server {} at {} KiB each — \
             with an {} KiB read buffer the bare server needs {} KiB per connection instead. What the relay keeps \
             per connection beyond the bare server (tasks, channels, the node's peer entry) is the difference, {} KiB.",
            i.relay.held,
            f1(i.relay.per_conn_kib()),
            i.bare.held,
            f1(i.bare.per_conn_kib()),
            SMALL_READ_BUFFER / 1024,
            f1(i.bare_small.per_conn_kib()),
            f1(i.relay.per_conn_kib() - i.bare.per_conn_kib()),
        );
    }
    s
}

/// Replaces our marked section in the docs, or appends it.
fn write_docs(section: &str) -> std::io::Result<()> {
    let path = std::path::Path::new(DOC_PATH);
    let old = std::fs::read_to_string(path)?;
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let after = &old[e + END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &old[..b])
        }
        _ => {
            let sep = if old.ends_with("\n\n") || old.is_empty() {
                ""
            } else if old.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{old}{sep}{section}")
        }
    };
    std::fs::write(path, new)
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--bare-server") {
        let read_buffer = args
            .iter()
            .position(|a| a == "--read-buffer")
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok());
        bare_server_main(read_buffer);
        return;
    }
    let cfg = Config::from_args(&args);
    let started = Instant::now();
    let machine = Machine::probe();
    let net = Net::test();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (f, i) = rt.block_on(async {
        let f = if cfg.wants("fanout") {
            Some(fanout(&cfg, &net).await)
        } else {
            None
        };
        let i = if cfg.wants("idle") {
            Some(idle(&cfg, &net).await)
        } else {
            None
        };
        (f, i)
    });
    if f.is_none() && i.is_none() {
        eprintln!(
            "nothing matches the filter {:?} (parts: fanout, idle)",
            cfg.filter.as_deref().unwrap_or("")
        );
        return;
    }
    print_report(&machine, f.as_ref(), i.as_ref());
    if cfg.write_docs {
        match write_docs(&doc_section(&machine, f.as_ref(), i.as_ref())) {
            Ok(()) => println!("wrote the relay section of docs/BENCHMARKS.md"),
            Err(e) => {
                eprintln!("cannot write {DOC_PATH}: {e}");
                std::process::exit(1);
            }
        }
    } else {
        println!("docs/BENCHMARKS.md not rewritten (filtered or not a --bench run)");
    }
    // The runtime holds aborted client tasks; do not wait for them.
    rt.shutdown_background();
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
