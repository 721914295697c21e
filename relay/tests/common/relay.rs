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
