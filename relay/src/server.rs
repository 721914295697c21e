//! The HTTP server: accepts TCP connections under the global and per-IP connection caps and
//! the memory budget (refusing with 503 at accept time, before anything is read), serves
//! each with hyper under a header-read timeout, and wraps the router in the request timeout,
//! body limit and per-IP API rate limit. On shutdown it stops accepting, asks every
//! connection to finish, and drops whatever has not finished after a short grace period.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
use crate::budget::{Budget, CONN_BASE, Charge, ConnMeter, HTTP_BUF, Metered};

/// Open TCP connections (HTTP and WebSocket alike), in total and per IP.
#[derive(Debug, Default)]
pub(crate) struct Accepted {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Accepted {
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
}

/// Held by an accepted connection's socket: its place in the caps and its base charge.
#[derive(Debug)]
pub(crate) struct Admission {
    accepted: Arc<Accepted>,
    ip: IpAddr,
    _base: Charge,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.accepted.total.fetch_sub(1, Ordering::SeqCst);
        let mut map = self
            .accepted
            .per_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Why a connection was refused at accept time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Full,
    PerIp,
    Memory,
}

fn admit(
    accepted: &Arc<Accepted>,
    budget: &Arc<Budget>,
    limits: &Limits,
    ip: IpAddr,
) -> Result<Admission, Refused> {
    let mut map = accepted.per_ip.lock().unwrap_or_else(|p| p.into_inner());
    if accepted.total.load(Ordering::SeqCst) >= limits.max_connections {
        return Err(Refused::Full);
    }
    let n = map.get(&ip).copied().unwrap_or(0);
    if n >= limits.max_http_per_ip {
        return Err(Refused::PerIp);
    }
    let base = budget.reserve(CONN_BASE).ok_or(Refused::Memory)?;
    map.insert(ip, n + 1);
    accepted.total.fetch_add(1, Ordering::SeqCst);
    Ok(Admission {
        accepted: accepted.clone(),
        ip,
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
    fn new(per_sec: u32) -> Self {
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

async fn api_rate_limit(State(rate): State<Arc<ApiRate>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/metrics" {
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
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

/// The router with the HTTP limits around it.
pub(crate) fn with_limits(app: Router, limits: &Limits) -> Router {
    let rate = Arc::new(ApiRate::new(limits.api_requests_per_sec));
    app.layer(axum::middleware::from_fn_with_state(rate, api_rate_limit))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
}

/// The one response a refused connection gets; it is written without reading the request.
fn refusal(r: Refused) -> &'static [u8] {
    match r {
        Refused::Full => {
            b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 15\r\nretry-after: 5\r\n\r\nrelay is full\r\n"
        }
        Refused::Memory => {
            b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 31\r\nretry-after: 5\r\n\r\nrelay memory budget exhausted\r\n"
        }
        Refused::PerIp => {
            b"HTTP/1.1 429 Too Many Requests\r\nconnection: close\r\ncontent-length: 36\r\nretry-after: 5\r\n\r\ntoo many connections from this IP\r\n\r\n"
        }
    }
}

/// Refusals answered politely at once (write, then drain the request briefly so the close
/// is not a reset); beyond this many, a refused socket is just closed.
const POLITE_REFUSALS: usize = 256;

/// Shared counters the rest of the relay reads.
#[derive(Debug, Clone)]
pub(crate) struct ServerHandles {
    pub accepted: Arc<Accepted>,
    pub refused: Arc<std::sync::atomic::AtomicU64>,
}

/// Serves `app` on `listener` until `shutdown` turns true, then gives connections
/// `limits.shutdown_grace` to finish and drops the rest.
pub(crate) async fn serve(
    listener: TcpListener,
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
        let admission = match admit(&handles.accepted, &budget, &limits, peer.ip()) {
            Ok(a) => a,
            Err(r) => {
                handles.refused.fetch_add(1, Ordering::SeqCst);
                debug!(%peer, ?r, "connection refused");
                refuse(stream, r, &polite);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let meter = ConnMeter::new(budget.clone());
        let io = TokioIo::new(Metered::new(stream, meter.clone(), admission));
        let app = app.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(meter.clone());
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let builder = builder.clone();
        let mut stop = shutdown.clone();
        let grace = limits.shutdown_grace;
        conns.spawn(async move {
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
