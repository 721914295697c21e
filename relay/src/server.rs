//! The HTTP server: accepts TCP connections under the global and per-IP connection caps and
//! the memory budget (refusing with 503 at accept time, before anything is read), serves
//! each with hyper under a header-read timeout, and wraps the router in the request timeout,
//! body limit and per-IP API rate limit. With TLS, each accepted connection does its
//! handshake in its own task under [`crate::tls::HANDSHAKE_TIMEOUT`], holding its admission
//! (so half-open TLS clients count against the caps like any other). On shutdown it stops accepting, asks every
//! connection to finish, and drops whatever has not finished after a short grace period.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::{debug, warn};

use crate::Limits;
use crate::api::ClientAddr;
use crate::budget::{Budget, CONN_BASE, Charge, ConnMeter, HTTP_BUF, Metered};
use crate::client_addr::ProxyPolicy;
use crate::counter::{Over, PerIpCounter, Slot};
use crate::tls::{HANDSHAKE_TIMEOUT, RelayStream};

/// Held by an accepted connection's socket: its place in the caps and its base charge.
#[derive(Debug)]
pub(crate) struct Admission {
    _slot: Slot,
    _base: Charge,
}

/// Why a connection was refused at accept time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Full,
    PerIp,
    Memory,
}

/// Admits a connection from `ip` (the TCP peer) under the caps. A trusted proxy carries
/// many clients, so it is exempt from the per-IP cap (its clients are limited per client
/// address once their requests say who they are); the global cap and the budget still hold.
fn admit(
    accepted: &Arc<PerIpCounter>,
    budget: &Arc<Budget>,
    limits: &Limits,
    ip: IpAddr,
    trusted_proxy: bool,
) -> Result<Admission, Refused> {
    let per_ip = (!trusted_proxy).then_some(limits.max_http_per_ip);
    let slot = accepted
        .acquire(ip, limits.max_connections, per_ip)
        .map_err(|over| match over {
            Over::Total => Refused::Full,
            Over::PerIp => Refused::PerIp,
        })?;
    // Without room in the budget the slot is given back as it drops here.
    let base = budget.reserve(CONN_BASE).ok_or(Refused::Memory)?;
    Ok(Admission {
        _slot: slot,
        _base: base,
    })
}

/// Token buckets per client IP for the API (`/api/…`, `/metrics`).
#[derive(Debug)]
pub(crate) struct ApiRate {
    per_sec: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Buckets kept before full ones are forgotten (a full bucket is the same as none).
const MAX_BUCKETS: usize = 65_536;

impl ApiRate {
    pub(crate) fn new(per_sec: u32) -> Self {
        ApiRate {
            per_sec: f64::from(per_sec),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, ip: IpAddr) -> bool {
        let burst = 2.0 * self.per_sec;
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_BUCKETS {
            let rate = self.per_sec;
            map.retain(|_, (t, last)| *t + now.duration_since(*last).as_secs_f64() * rate < burst);
        }
        let (tokens, last) = map.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_sec).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The per-client API rate limit. Runs inside the client-address layer (api.rs), so behind
/// a trusted proxy it counts the forwarded client (IPv6 by /64), not the proxy.
pub(crate) async fn api_rate_limit(
    State(rate): State<Arc<ApiRate>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/metrics" {
        let ip = req
            .extensions()
            .get::<ClientAddr>()
            .map(|c| c.key)
            .or_else(|| {
                req.extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            });
        if let Some(ip) = ip
            && !rate.take(ip)
        {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                format!(
                    "too many API requests from {ip} (limit {} per second)",
                    rate.per_sec
                ),
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// Connections the operator's listener (`--private-api`) holds at once, all addresses
/// together and from one address: enough for a dashboard and a scraper.
pub(crate) const PRIVATE_MAX_CONNECTIONS: usize = 16;

/// Serves the operator's listener like the public one (header and request timeouts, body
/// limit, a connection cap checked at accept) but with limits and a memory budget of its
/// own: whoever reaches it holds at most [`PRIVATE_MAX_CONNECTIONS`] connections and takes
/// no connections, file descriptors or memory from the public listener's peers. No
/// WebSockets are served there and no proxy is trusted.
pub(crate) fn serve_private(
    listener: TcpListener,
    router: Router,
    public: &Limits,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let limits = Limits {
        max_connections: PRIVATE_MAX_CONNECTIONS,
        max_per_ip: PRIVATE_MAX_CONNECTIONS,
        max_http_per_ip: PRIVATE_MAX_CONNECTIONS,
        ..public.clone()
    };
    serve(
        listener,
        None,
        ProxyPolicy::default(),
        with_limits(router, &limits),
        limits,
        Budget::new(PRIVATE_MAX_CONNECTIONS * CONN_BASE),
        ServerHandles {
            accepted: Arc::new(PerIpCounter::default()),
            refused: Arc::new(AtomicU64::new(0)),
        },
        shutdown,
    )
}

/// The router with the HTTP limits around it (the per-client API rate is inside the
/// router, after the client address is known: see `api::router`).
/// The security headers go on outside them, so the limits' own answers (413, 408) carry
/// them like every other answer.
pub(crate) fn with_limits(app: Router, limits: &Limits) -> Router {
    crate::http_policy::security_headers(
        app.layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                limits.request_timeout,
            )),
    )
}

/// The one response a refused connection gets; it is written without reading the request.
/// It carries the security headers like every other answer.
fn refusal(r: Refused) -> &'static [u8] {
    static ANSWERS: LazyLock<[Vec<u8>; 3]> = LazyLock::new(|| {
        [Refused::Full, Refused::Memory, Refused::PerIp].map(|r| {
            let (status, body) = match r {
                Refused::Full => ("503 Service Unavailable", "relay is full\r\n"),
                Refused::Memory => (
                    "503 Service Unavailable",
                    "relay memory budget exhausted\r\n",
                ),
                Refused::PerIp => (
                    "429 Too Many Requests",
                    "too many connections from this IP\r\n",
                ),
            };
            let mut head = format!(
                "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nretry-after: 5\r\n",
                body.len()
            );
            for (name, value) in crate::http_policy::SECURITY_HEADERS {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            format!("{head}\r\n{body}").into_bytes()
        })
    });
    let i = match r {
        Refused::Full => 0,
        Refused::Memory => 1,
        Refused::PerIp => 2,
    };
    &ANSWERS[i]
}

/// Refusals answered politely at once (write, then drain the request briefly so the close
/// is not a reset); beyond this many, a refused socket is just closed.
const POLITE_REFUSALS: usize = 256;

/// Shared counters the rest of the relay reads.
#[derive(Debug, Clone)]
pub(crate) struct ServerHandles {
    pub accepted: Arc<PerIpCounter>,
    pub refused: Arc<std::sync::atomic::AtomicU64>,
}

/// Serves `app` on `listener` until `shutdown` turns true, then gives connections
/// `limits.shutdown_grace` to finish and drops the rest.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    proxies: ProxyPolicy,
    app: Router,
    limits: Limits,
    budget: Arc<Budget>,
    handles: ServerHandles,
    mut shutdown: watch::Receiver<bool>,
) {
    // HTTP/1.1 only: HTTP/2 would need its own limits (streams, header lists, pings), and
    // hyper-util's protocol-sniffing `auto` builder reads its first bytes with no timeout,
    // which would let a silent connection stay forever.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(HTTP_BUF)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let polite = Arc::new(Semaphore::new(POLITE_REFUSALS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            a = listener.accept() => a,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let trusted = proxies.is_trusted(peer.ip());
        let admission = match admit(&handles.accepted, &budget, &limits, peer.ip(), trusted) {
            Ok(a) => a,
            Err(r) => {
                handles.refused.fetch_add(1, Ordering::SeqCst);
                debug!(%peer, ?r, "connection refused");
                if tls.is_some() {
                    // A TLS client cannot read a plain answer: just close.
                    drop(stream);
                } else {
                    refuse(stream, r, &polite);
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let budget = budget.clone();
        let app = app.clone();
        let builder = builder.clone();
        let mut stop = shutdown.clone();
        let grace = limits.shutdown_grace;
        conns.spawn(async move {
            let stream = match tls {
                None => RelayStream::Plain(stream),
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => RelayStream::Tls(Box::new(s)),
                        Ok(Err(e)) => {
                            debug!(%peer, "tls handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            debug!(%peer, "tls handshake timed out");
                            return;
                        }
                    }
                }
            };
            // The meter sits on the plain-text side: it charges what the WebSocket reads.
            let meter = ConnMeter::new(budget);
            let io = TokioIo::new(Metered::new(stream, meter.clone(), admission));
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(meter.clone());
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let conn = builder.serve_connection(io, svc).with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(%peer, "http connection: {e}");
                    }
                }
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(grace, conn).await;
                }
            }
        });
    }
    // Connections already asked to finish; those that do not within the grace are dropped.
    let deadline = tokio::time::Instant::now() + limits.shutdown_grace;
    while !conns.is_empty() {
        if tokio::time::timeout_at(deadline, conns.join_next())
            .await
            .is_err()
        {
            conns.abort_all();
            break;
        }
    }
}

fn refuse(stream: tokio::net::TcpStream, r: Refused, polite: &Arc<Semaphore>) {
    let Ok(permit) = polite.clone().try_acquire_owned() else {
        // Too many refusals in flight: best effort, without waiting for the peer.
        let _ = stream.try_write(refusal(r));
        return;
    };
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = stream;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(refusal(r)).await?;
            stream.shutdown().await?;
            // Read (and drop) what the client sent so closing does not reset the connection
            // before it reads the answer.
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
        drop(permit);
    });
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::http_policy::SECURITY_HEADERS;

    fn assert_secured(headers: &axum::http::HeaderMap, what: &str) {
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                headers.get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{what}: {name}"
            );
        }
    }

    /// A request its handler does not answer within the request timeout gets 408, with the
    /// security headers like every other answer. (No route of the relay's own waits on its
    /// client, so only a handler that never finishes reaches it.)
    #[tokio::test]
    async fn a_request_over_the_timeout_gets_408_with_the_security_headers() {
        let limits = Limits {
            request_timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let app = Router::new().route(
            "/stuck",
            axum::routing::get(std::future::pending::<&'static str>),
        );
        let res = with_limits(app, &limits)
            .oneshot(
                Request::get("/stuck")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        assert_secured(res.headers(), "408");
    }

    #[test]
    fn refusals_carry_the_security_headers() {
        for r in [Refused::Full, Refused::Memory, Refused::PerIp] {
            let text = std::str::from_utf8(refusal(r)).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
            let mut headers = axum::http::HeaderMap::new();
            for line in head.lines().skip(1) {
                let (n, v) = line.split_once(": ").unwrap();
                headers.insert(
                    axum::http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            assert_secured(&headers, &format!("{r:?}"));
        }
    }
}
