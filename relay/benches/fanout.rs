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
use support::Machine;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
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

#[path = "fanout/bare.rs"]
mod bare;
#[path = "fanout/clients.rs"]
mod clients;
#[path = "fanout/docs.rs"]
mod docs;
#[path = "../tests/common/http.rs"]
mod http;
#[path = "fanout/idle.rs"]
mod idle;
#[path = "fanout/procs.rs"]
mod procs;
#[path = "fanout/report.rs"]
mod report;
#[path = "fanout/runs.rs"]
mod runs;
#[path = "fanout/stats.rs"]
mod stats;

use bare::*;
use clients::*;
use docs::*;
use idle::*;
use procs::*;
use report::*;
use runs::*;
use stats::*;

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
