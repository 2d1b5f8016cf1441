//! The HTTP listener of both services: hyper's HTTP/1 connections with the limits
//! a service open to clients needs, instead of `axum::serve` (which has none):
//!
//! - **Header read timeout** (`HEADER_TIMEOUT_MS`): a client that does not send
//!   a whole request head in time is disconnected (slowloris). hyper starts the
//!   same timer when a kept-alive connection goes idle, so it is the idle timeout
//!   too.
//! - **Body read timeout** (`BODY_TIMEOUT_MS`) is applied where bodies are read
//!   ([`super::read_limited`]): 408 `body_timeout`.
//! - **Connection cap** (`MAX_CONNECTIONS` per listener): past it, a connection
//!   must show its request line within 200 ms. A probe's (`GET /health`,
//!   `/ready`, `/metrics`) is served from a reserve that only probes may hold;
//!   any other request gets 503 `too_many_connections` from a reserve of its own,
//!   and the connection is closed; a connection that shows nothing in time is
//!   closed without ever holding a slot. So probes keep answering through a flood
//!   of idle connections (which fill the cap and then only ever wait 200 ms).
//! - **Graceful stop**: on shutdown no new connection is taken and the ones open
//!   finish their request in hand.
//!
//! The peer address goes into each request's extensions ([`Peer`]), for per-IP
//! rate limits. This module owns sockets only: no routes, no business logic.

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use palisade_core::ApiError;
use palisade_core::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Over-cap connections answered 503 at once (one request each).
const RESERVE: usize = 64;
/// Over-cap connections serving a probe (one request each): only probes hold these.
const PROBES: usize = 64;
/// Over-cap connections whose request line is awaited, at most (a flood must open
/// this many every `LOOK_TIMEOUT` to crowd a probe out).
const LOOKING: usize = 16_384;
/// How long an over-cap connection has to show its request line.
const LOOK_TIMEOUT: Duration = Duration::from_millis(200);

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Routes an over-cap connection may still use.
fn probe_route(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// Whether a request line (its first bytes) asks for a probe route: `None` while
/// too few bytes have come to tell.
fn probe_request(head: &[u8]) -> Option<bool> {
    let Some(path) = head.strip_prefix(b"GET ") else {
        return (head.len() >= 4 || !b"GET ".starts_with(head)).then_some(false);
    };
    let end = path.iter().position(|b| *b == b' ' || *b == b'?')?;
    Some(std::str::from_utf8(&path[..end]).is_ok_and(probe_route))
}

/// Wait up to [`LOOK_TIMEOUT`] for an over-cap connection's request line, without
/// consuming it: whether it is a probe (`None`: nothing telling came in time).
async fn looks_like_probe(stream: &tokio::net::TcpStream) -> Option<bool> {
    let mut head = [0u8; 32];
    tokio::time::timeout(LOOK_TIMEOUT, async {
        loop {
            let n = stream.peek(&mut head).await.ok()?;
            if n == 0 {
                return None; // closed
            }
            if let Some(probe) = probe_request(&head[..n]) {
                return Some(probe);
            }
            if n == head.len() {
                return Some(false);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .ok()
    .flatten()
}

/// Serve `app` on `listener` until `stop` turns true, then let open connections
/// finish (up to 30 s).
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let stopped = async move {
        loop {
            if *stop.borrow_and_update() {
                break;
            }
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::pin!(stopped);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    let probes = Arc::new(Semaphore::new(PROBES));
    let looking = Arc::new(Semaphore::new(LOOKING));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let refusals = Arc::new(palisade_core::telemetry::Sampled::new(Duration::from_secs(10)));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment instead of spinning.
                    refusals.log(|n| tracing::warn!(error = %e, dropped = n, "accept failed"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            serve_connection(stream, peer, app.clone(), &builder, graceful.watcher(), permit, false);
            continue;
        }
        // Over the cap: a probe gets a probe slot, anything else a 503, silence nothing.
        let Ok(look) = looking.clone().try_acquire_owned() else {
            refusals.log(|n| tracing::warn!(%peer, dropped = n, "connection cap full and too many waiting: closed"));
            continue;
        };
        let (app, builder, watcher) = (app.clone(), builder.clone(), graceful.watcher());
        let (probes, reserve, refusals) = (probes.clone(), reserve.clone(), refusals.clone());
        tokio::spawn(async move {
            let seen = looks_like_probe(&stream).await;
            drop(look);
            let held = match seen {
                Some(true) => probes.try_acquire_owned(),
                Some(false) => reserve.try_acquire_owned(),
                None => return, // idle, or gone: closed without holding a slot
            };
            match held {
                Ok(permit) => serve_connection(stream, peer, app, &builder, watcher, permit, true),
                Err(_) => {
                    refusals.log(|n| tracing::warn!(%peer, dropped = n, "connection cap and reserve full: closed"))
                }
            }
        });
    }
    drop(listener); // refuse new connections while the open ones finish
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open 30 s after shutdown began were dropped");
    }
}

/// Serve one connection, holding `permit` until it closes; `over_cap`: one
/// request only, and only a probe route gets past the 503.
fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    builder: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    permit: tokio::sync::OwnedSemaphorePermit,
    over_cap: bool,
) {
    let service = tower::service_fn(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        let app = app.clone();
        async move {
            if over_cap && !probe_route(req.uri().path()) {
                return Ok(too_many_connections());
            }
            app.oneshot(req.map(axum::body::Body::new)).await
        }
    });
    let mut conn_builder = builder.clone();
    conn_builder.keep_alive(!over_cap);
    let conn = watcher.watch(conn_builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(%peer, error = %e, "connection closed with an error");
        }
        drop(permit);
    });
}

fn too_many_connections() -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::TooManyConnections,
        "the service holds MAX_CONNECTIONS connections; retry, or reuse a kept-alive connection",
    )
    .with_retry_after(1)
    .into_response();
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::probe_request;

    #[test]
    fn a_probe_is_told_from_its_request_line() {
        assert_eq!(probe_request(b"GET /health HTTP/1.1\r\n"), Some(true));
        assert_eq!(probe_request(b"GET /metrics?x=1 HTTP/1.1"), Some(true));
        assert_eq!(probe_request(b"GET /ready "), Some(true));
        assert_eq!(probe_request(b"GET /healthz HTTP/1.1"), Some(false));
        assert_eq!(probe_request(b"POST /health HTTP/1.1"), Some(false));
        assert_eq!(probe_request(b"GET /v1/admin/plugins HTTP/1.1"), Some(false));
        for partial in [b"".as_slice(), b"GE", b"GET ", b"GET /heal"] {
            assert_eq!(probe_request(partial), None, "{partial:?}");
        }
    }
}
