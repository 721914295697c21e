//! [`RawClient`]: one bare WebSocket driven message by message by the test.

use super::*;

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
/// A plain TCP connection to `relay` from `local` (any of 127.0.0.0/8 on Linux), for tests
/// that speak raw HTTP or hold sockets open.
pub async fn tcp_from(
    relay: std::net::SocketAddr,
    local: std::net::IpAddr,
) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(local, 0))?;
    socket.connect(relay).await
}

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

    /// Names `url` as the URL this client dialed (in its handshake), for a connection that
    /// reached the relay another way: around the forwarding proxy that its public URL names.
    pub fn dialed_as(mut self, url: &str) -> RawClient {
        self.url = url.to_owned();
        self
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
