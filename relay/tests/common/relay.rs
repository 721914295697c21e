//! [`Relay`]: a relay in this process on 127.0.0.1:0, and its HTTP API.

use super::*;

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

    /// GET `path` and parse the JSON body (a tiny HTTP/1.1 client on a raw socket, [`http_get`]).
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get_raw(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// GET `path`: status code and body.
    pub async fn get_raw(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
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

/// The relay binary `bin` (`env!("CARGO_BIN_EXE_tabcoin-relay")` in a test or bench; examples
/// include this module too and have no such variable) started as its own process on the test network,
/// in memory, listening on a free loopback port and serving `web/`, with `extra` flags.
/// Returns it (killed on drop), its pid and the address it printed; its stdout is drained
/// afterwards. Fails after `wait` if it never says where it listens.
pub async fn spawn_relay_binary(
    bin: &str,
    extra: &[&str],
    wait: Duration,
) -> (tokio::process::Child, u32, std::net::SocketAddr) {
    use tokio::io::AsyncBufReadExt;
    let web = concat!(env!("CARGO_MANIFEST_DIR"), "/../web");
    let mut child = tokio::process::Command::new(bin)
        .args([
            "--network",
            "test",
            "--in-memory",
            "--listen",
            "127.0.0.1:0",
            "--web-dir",
            web,
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the relay");
    let pid = child.id().expect("pid");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(wait, async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("relay output")
                .expect("the relay printed its address");
            if let Some(rest) = line.split("open http://").nth(1) {
                break rest
                    .trim_end_matches(['/', ' ', '\n'])
                    .split('/')
                    .next()
                    .unwrap()
                    .parse()
                    .expect("address");
            }
        }
    })
    .await
    .expect("the relay started");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, pid, addr)
}
