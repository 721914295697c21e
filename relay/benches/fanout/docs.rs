//! The relay section of docs/BENCHMARKS.md: the figures, how each is measured, how to read them.

use super::*;

pub(crate) fn doc_section(
    machine: &Machine,
    f: Option<&FanoutResults>,
    i: Option<&IdleResults>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    s.push_str(&summary(Mode::Docs, machine, f, i));
    s.push_str(&how_measured(f, i));
    s.push_str(&reading(f, i));
    let _ = writeln!(s, "{END}");
    s
}

pub(crate) fn how_measured(f: Option<&FanoutResults>, i: Option<&IdleResults>) -> String {
    let mut s = String::from("\n### How each figure is measured\n\n");
    s.push_str(
        "- **Servers.** The relay is the `tabcoin-relay` binary built for the bench, run as its own process: \
         `--network test --in-memory --listen 127.0.0.1:0 --max-per-ip 100000 --max-connections 20000 \
         --max-memory 8G --messages-per-sec 100000` (`RUST_LOG=warn`; the memory budget is raised because the default \
         512 MiB, charged at each connection's worst case, admits about 1,900 connections and the bench holds 10,000). The baseline is a bare tokio-tungstenite 0.29 server \
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

pub(crate) fn reading(f: Option<&FanoutResults>, i: Option<&IdleResults>) -> String {
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
pub(crate) fn write_docs(section: &str) -> std::io::Result<()> {
    let path = std::path::Path::new(DOC_PATH);
    let old = std::fs::read_to_string(path)?;
    let new = support::splice_section(&old, BEGIN, END, section);
    std::fs::write(path, new)
}
