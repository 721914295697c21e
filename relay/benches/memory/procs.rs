//! Relay processes on loopback: start one, ask it over HTTP, read its memory in `/proc`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) use crate::support::{Mem, proc_mem};

/// A relay process on the test network, killed when dropped.
pub(crate) struct Relay {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
    pub(crate) started: Instant,
    pub(crate) log: PathBuf,
}

/// A free loopback port (bound and released, so the relay's --public-url can name it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

impl Relay {
    /// Starts `bin` on `data_dir`, linking to `peer` (a ws:// URL) if given. Message rates
    /// are not limited, so a sync measures the node and not the per-peer limiter.
    pub(crate) fn start(bin: &Path, data_dir: &Path, peer: Option<&str>, log: PathBuf) -> Relay {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let public = format!("ws://{addr}/ws");
        let mut args: Vec<String> = [
            "--network",
            "test",
            "--listen",
            &addr.to_string(),
            "--public-url",
            &public,
            "--data-dir",
            &data_dir.to_string_lossy(),
            "--web-dir",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../web"),
            "--messages-per-sec",
            "100000",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        if let Some(p) = peer {
            args.extend(["--allow-local-dial".into(), "--peer".into(), p.into()]);
        }
        let out = std::fs::File::create(&log).expect("create a relay log");
        let err = out.try_clone().expect("clone the log handle");
        let started = Instant::now();
        let child = Command::new(bin)
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Relay {
            pid: child.id(),
            child,
            addr,
            started,
            log,
        }
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub(crate) fn mem(&self) -> Mem {
        proc_mem(self.pid)
    }

    /// `/api/status`, or `None` while the relay does not answer.
    pub(crate) fn status(&self) -> Option<serde_json::Value> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!(
            "GET /api/status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            crate::http::dechunk(body)
        } else {
            body.to_owned()
        };
        serde_json::from_str(&body).ok()
    }

    /// Waits until its tip is at `height`; the time since it was started.
    pub(crate) fn wait_height(&mut self, height: u64, timeout: Duration) -> Duration {
        let deadline = self.started + timeout;
        loop {
            let h = self
                .status()
                .and_then(|s| s["height"].as_u64())
                .unwrap_or(0);
            if h >= height {
                return self.started.elapsed();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("relay exited ({st}); log {}", self.log.display());
            }
            assert!(
                Instant::now() < deadline,
                "relay at height {h} of {height} after {timeout:?}; log {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it with SIGTERM (a clean shutdown, so its store needs no repair at the next
    /// start), SIGKILL after 60 s.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("relay {} ignored SIGTERM for 60 s: killing it", self.pid);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
