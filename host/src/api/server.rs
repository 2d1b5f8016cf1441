//! The HTTP listener of both services: hyper's HTTP/1 connections with the limits
//! a service open to clients needs, instead of `axum::serve` (which has none):
//!
//! - **Header read timeout** (`HEADER_TIMEOUT_MS`): a client that does not send
//!   a whole request head in time is disconnected (slowloris). hyper starts the
//!   same timer when a kept-alive connection goes idle, so it is the idle timeout
//!   too.
//! - **Body read timeout** (`BODY_TIMEOUT_MS`) is applied where bodies are read
//!   ([`super::read_limited`]): 408 `body_timeout`.
//! - **Connection cap** (`MAX_CONNECTIONS` per listener): past it a connection is
//!   still served for `/health`, `/ready` and `/metrics` (so probes keep
//!   answering), every other request gets 503 `too_many_connections` and the
//!   connection is closed; past the cap plus a small reserve it is closed at once.
//! - **Graceful stop**: on shutdown no new connection is taken and the ones open
//!   finish their request in hand.
//!
//! The peer address goes into each request's extensions ([`Peer`]), for per-IP
//! rate limits. This module owns sockets only: no routes, no business logic.

use crate::core::ApiError;
use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Connections taken past the cap, for probes only (one request each).
const RESERVE: usize = 64;

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
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let refusals = crate::telemetry::Sampled::new(Duration::from_secs(10));
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
        let (permit, over_cap) = match slots.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(p) => (p, true),
                Err(_) => {
                    refusals.log(|n| tracing::warn!(%peer, dropped = n, "connection cap and reserve full: closed"));
                    continue;
                }
            },
        };
        let app = app.clone();
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
        let conn =
            graceful.watch(conn_builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener); // refuse new connections while the open ones finish
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open 30 s after shutdown began were dropped");
    }
}

fn too_many_connections() -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "the service holds MAX_CONNECTIONS connections; retry, or reuse a kept-alive connection",
    )
    .with_retry_after(1)
    .into_response();
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}
