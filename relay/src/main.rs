//! `tabcoin-relay` command line: parses flags and runs the relay library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tabcoin_core::params::{Network, Params};
use tabcoin_relay::client_addr::{Cidr, ClientAddrError, ForwardedHeader, ProxyPolicy};
use tabcoin_relay::tls::TlsFiles;
use tabcoin_relay::{Config, Limits, MiningConfig};

#[derive(Parser, Debug)]
#[command(name = "tabcoin-relay", version, about = "Tabcoin relay and full node")]
struct Args {
    /// Address to listen on (HTTP, WebSocket at /ws, API, metrics).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Network: main or test (trivial difficulty, for local demos and tests).
    #[arg(long, default_value = "main", value_parser = parse_network)]
    network: Network,
    /// Database directory.
    #[arg(long, default_value = "./tabcoin-data")]
    data_dir: PathBuf,
    /// Keep everything in memory (nothing survives a restart).
    #[arg(long)]
    in_memory: bool,
    /// Directory with the page (index.html and the wasm package).
    #[arg(long, default_value = "web")]
    web_dir: PathBuf,
    /// Relay to link to, ws://host:port/ws (repeatable).
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// The ws:// URL other nodes can reach this relay at (advertised to them).
    #[arg(long)]
    public_url: Option<String>,
    /// Relay links to keep.
    #[arg(long, default_value_t = 8)]
    target_outbound: usize,
    /// Allow dialing loopback, private, link-local and CGNAT addresses and local names
    /// (localhost, *.local, …): for a test network on one machine or a LAN. Without it such
    /// relay URLs, from --peer or from gossip, are never dialed.
    #[arg(long)]
    allow_local_dial: bool,
    /// Mine natively.
    #[arg(long)]
    mine: bool,
    /// Mining threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Threads verifying block signatures (default: the available parallelism; 1 verifies
    /// in place).
    #[arg(long)]
    verify_threads: Option<usize>,
    /// Address mined coins are paid to (required with --mine).
    #[arg(long)]
    address: Option<String>,
    /// Most TCP connections in total, HTTP and WebSocket alike (refused with 503 beyond).
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Most TCP connections from one IP address, HTTP and WebSocket alike (429 beyond).
    #[arg(long, default_value_t = Limits::default().max_http_per_ip)]
    max_http_per_ip: usize,
    /// Memory budget for connections, their buffers and queues and the node inbox, in bytes
    /// (suffixes K, M, G allowed); new connections are refused with 503 before it is exceeded.
    #[arg(long, default_value = "512M", value_parser = parse_bytes)]
    max_memory: usize,
    /// Prune: keep only the newest block bodies within this many bytes (suffixes K, M, G
    /// allowed), never fewer than the last 288 blocks; older bodies are deleted and peers are
    /// told so in the handshake. Default: keep every body.
    #[arg(long, value_parser = parse_bytes)]
    prune: Option<usize>,
    /// Memory for redb's page cache, in bytes (suffixes K, M, G allowed). The node keeps
    /// headers, the UTXO set and recent bodies in memory itself, so this mostly buffers writes;
    /// the OS page cache holds the file's hot pages outside the process.
    #[arg(long, default_value_t = tabcoin_relay::store::DEFAULT_CACHE_BYTES, value_parser = parse_bytes)]
    store_cache: usize,
    /// Memory for recent block bodies, in bytes (suffixes K, M, G allowed): blocks served to
    /// peers and reorgs within it are not read from the store.
    #[arg(long, default_value_t = tabcoin_relay::DEFAULT_BODY_CACHE_BYTES, value_parser = parse_bytes)]
    body_cache: usize,
    /// Bytes of received messages waiting for the node, all peers together.
    #[arg(long, default_value = "16M", value_parser = parse_bytes)]
    inbox_bytes: usize,
    /// Seconds one queued message may take to be written before the peer is closed.
    #[arg(long, default_value_t = Limits::default().write_timeout.as_secs())]
    write_timeout_secs: u64,
    /// Seconds a client may take to send request headers (and to stay idle between requests).
    #[arg(long, default_value_t = Limits::default().header_read_timeout.as_secs())]
    header_read_timeout_secs: u64,
    /// Seconds one HTTP request may take to be answered (408 beyond).
    #[arg(long, default_value_t = Limits::default().request_timeout.as_secs())]
    request_timeout_secs: u64,
    /// Largest HTTP request body in bytes (413 beyond).
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// API requests (/api/…, /metrics) per second from one IP, bursts of twice that (429 beyond).
    #[arg(long, default_value_t = Limits::default().api_requests_per_sec)]
    api_requests_per_sec: u32,
    /// Most WebSocket connections from one IP address.
    #[arg(long, default_value_t = Limits::default().max_per_ip)]
    max_per_ip: usize,
    /// Largest WebSocket message and frame in bytes.
    #[arg(long, default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Messages per second one peer may send (bursts of twice that); block bodies the relay
    /// asked for are not counted.
    #[arg(long, default_value_t = Limits::default().messages_per_sec)]
    messages_per_sec: u32,
    /// Bytes queued for one peer before it is dropped as a slow reader.
    #[arg(long, default_value_t = Limits::default().max_write_buffer_bytes)]
    max_write_buffer_bytes: usize,
    /// Serve https and wss with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra root certificates (PEM) trusted when dialing wss:// relays, for private CAs
    /// (repeatable; the bundled web PKI roots are always trusted).
    #[arg(long = "tls-ca")]
    tls_ca: Vec<PathBuf>,
    /// A reverse proxy (address or CIDR) whose forwarding header names the client
    /// (repeatable). Requests from anywhere else are their TCP peer address.
    #[arg(long = "trusted-proxy", value_parser = parse_cidr)]
    trusted_proxies: Vec<Cidr>,
    /// The header the trusted proxies write: x-forwarded-for or forwarded (RFC 7239).
    #[arg(long, default_value = "x-forwarded-for", value_parser = parse_forwarded_header)]
    forwarded_header: ForwardedHeader,
    /// Restrict which pages may open /ws: the relay's own origin, the pages of relays it
    /// knows, and each origin given here (https://host[:port], repeatable). By default every
    /// page may (tabs fail over between relays); * keeps that. Clients sending no Origin
    /// (relays, tools) are always allowed.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// Also listen here (keep it private, e.g. 127.0.0.1:9090) for the operator's API:
    /// /api/peers with every peer's address. At most 16 connections, with the public
    /// listener's timeouts.
    #[arg(long)]
    private_api: Option<SocketAddr>,
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    s.parse().map_err(|e: ClientAddrError| e.to_string())
}

fn parse_forwarded_header(s: &str) -> Result<ForwardedHeader, String> {
    s.parse().map_err(|e: ClientAddrError| e.to_string())
}

/// Bytes with an optional K, M or G suffix (powers of 1024).
fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1usize << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("not a byte count: {s:?} (e.g. 512M)"))
}

fn parse_network(s: &str) -> Result<Network, String> {
    match s {
        "main" => Ok(Network::Main),
        "test" => Ok(Network::Test),
        _ => Err(format!("unknown network {s:?} (main or test)")),
    }
}

/// glibc malloc settings for a long-running relay, set before any other thread exists:
/// - one arena: glibc gives each thread that meets contention an arena of its own (up to 8 per
///   core), each keeping its freed memory; small allocations mostly come from each thread's
///   own tcache without the arena lock, so one arena costs little contention;
/// - allocations of 32 KiB and more (block bodies, messages, redb's multi-page values) get
///   their own mapping, returned to the OS when freed, instead of leaving holes in the heap
///   that a burst of blocks during sync made (glibc's default threshold rises up to 32 MiB
///   once such a block is freed);
/// - free memory above 1 MiB at the top of the heap goes back to the OS.
///
/// The memory bench measured 33.6 MiB of RSS after a fresh sync of its 1× chain without them
/// and 26.2 MiB with them (docs/BENCHMARKS.md). An operator who sets `MALLOC_ARENA_MAX`,
/// `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or `GLIBC_TUNABLES` keeps glibc's own
/// reading of them instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    let chosen = [
        "MALLOC_ARENA_MAX",
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
        "GLIBC_TUNABLES",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    if chosen {
        return;
    }
    // SAFETY: mallopt only sets malloc parameters (an unknown one returns 0, changing
    // nothing); it is called from main before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() {
    tune_malloc();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if let Err(e) = real_main(args) {
        eprintln!("tabcoin-relay: {e}");
        std::process::exit(1);
    }
}

fn real_main(args: Args) -> Result<(), String> {
    let params = Params::for_network(args.network);
    let mining = if args.mine {
        let addr = args
            .address
            .as_deref()
            .ok_or("--mine needs --address ADDR")?;
        let key = tabcoin_core::wallet::decode_address(params.address_prefix, addr)
            .map_err(|e| format!("--address: {e}"))?;
        Some(MiningConfig {
            threads: args.threads,
            address: key,
        })
    } else {
        None
    };
    let mut config = Config::new(args.network);
    config.data_dir = (!args.in_memory).then_some(args.data_dir);
    config.web_dir = args.web_dir;
    config.peers = args.peers;
    config.public_url = args.public_url;
    config.target_outbound = args.target_outbound;
    config.mining = mining;
    if let Some(n) = args.verify_threads {
        config.verify_threads = n.max(1);
    }
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let tls = config.tls.is_some();
    config.tls_ca = args.tls_ca;
    config.proxies = ProxyPolicy {
        trusted: args.trusted_proxies,
        header: args.forwarded_header,
    };
    config.allowed_origins = args.allowed_origins;
    config.private_api = args.private_api;
    config.prune_bytes = args.prune.map(|b| b as u64);
    config.store_cache_bytes = args.store_cache;
    config.body_cache_bytes = args.body_cache;
    config.limits = Limits {
        max_connections: args.max_connections,
        max_per_ip: args.max_per_ip,
        max_http_per_ip: args.max_http_per_ip,
        max_memory: args.max_memory,
        inbox_bytes: args.inbox_bytes,
        write_timeout: Duration::from_secs(args.write_timeout_secs.max(1)),
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
        request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
        max_body_bytes: args.max_body_bytes,
        api_requests_per_sec: args.api_requests_per_sec,
        max_message_bytes: args.max_message_bytes,
        messages_per_sec: args.messages_per_sec,
        max_write_buffer_bytes: args.max_write_buffer_bytes,
        allow_local_dial: args.allow_local_dial,
        ..Limits::default()
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let url = tabcoin_relay::display_url(addr);
        let url = if tls {
            url.replacen("http://", "https://", 1)
        } else {
            url
        };
        println!(
            "tabcoin relay ({} network) listening — open {url} in a browser",
            params.name
        );
        tabcoin_relay::run(listener, config, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    })?;
    // Give the runtime a moment to close sockets cleanly.
    std::thread::sleep(Duration::from_millis(50));
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("signal received, shutting down");
}
