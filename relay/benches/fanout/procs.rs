//! The server processes: start, watch (`/proc`), ask over HTTP.

use super::*;

pub(crate) use crate::support::{Mem, proc_mem};

/// CPU time all threads of a process have run (sum of `/proc/PID/task/*/schedstat`).
pub(crate) fn proc_cpu(pid: &str) -> Duration {
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
pub(crate) fn fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// A server process, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: tokio::process::Child,
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
    pub(crate) log: std::path::PathBuf,
    /// The bare server exits when its stdin closes (if this process dies first).
    pub(crate) _stdin: Option<tokio::process::ChildStdin>,
}

impl Server {
    /// Starts the relay binary on a free loopback port, its output in a log file.
    pub(crate) async fn relay(name: &str) -> Server {
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
                // The default 512 MiB budget charges each connection its worst case (transport
                // and the core's per-peer state) and admits about 1,900: the bench holds 10,000.
                "--max-memory",
                "8G",
                "--messages-per-sec",
                "100000",
            ],
            "http://",
        )
        .await
    }

    /// Starts this executable as the bare tokio-tungstenite server, with tungstenite's default
    /// read buffer or one of `read_buffer` bytes.
    pub(crate) async fn bare(name: &str, read_buffer: Option<usize>) -> Server {
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

    pub(crate) async fn spawn(name: &str, program: &str, args: &[&str], marker: &str) -> Server {
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

    pub(crate) fn mem(&self) -> Mem {
        proc_mem(self.pid)
    }

    pub(crate) fn cpu(&self) -> Duration {
        proc_cpu(&self.pid.to_string())
    }

    /// Lines of its log containing `needle`.
    pub(crate) fn log_lines(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// GET `path` and parse the JSON body (HTTP/1.1 on a raw socket).
    pub(crate) async fn get_json(&self, path: &str) -> serde_json::Value {
        let (_, body) = crate::http::http_get(self.addr, path).await;
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Polls `/api/status` until `pred` holds or `timeout` passes; the last status.
    pub(crate) async fn wait_status(
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
