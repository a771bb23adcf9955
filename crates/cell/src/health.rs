//! The `http` listener: health checks for load balancers and metrics for Prometheus.
//!
//! ```text
//! GET /healthz   200 "ok"             the process is alive and answering
//! GET /readyz    200 "ready"          the store answers a real query and the node is
//!                503 "draining"       not draining: send it new connections
//!                503 "store unreachable: ..."
//! GET /metrics   200                  Prometheus text format
//! ```
//!
//! Served with hyper directly: three fixed routes need no router, and hyper is already
//! built for the metrics exporter. When the web role arrives (axum, on hyper), these
//! handlers move into its router unchanged in behaviour.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use postcell_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::{Drain, RenderMetrics};

/// A readiness check that takes longer than this fails: a load balancer's check must
/// get an answer, and a store this slow is not one to send clients to.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// A client must send its request head within this (slow-header attacks).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent HTTP connections; more wait for a slot.
const MAX_CONNECTIONS: usize = 256;
/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Clone)]
pub struct Health {
    pub store: Store,
    pub drain: Drain,
    pub metrics: RenderMetrics,
}

/// Serves until `stop`. Connections in progress are dropped then: the process is
/// about to exit.
pub async fn serve(listener: TcpListener, health: Health, stop: CancellationToken) {
    let health = Arc::new(health);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tracing::info!(listener = "http", addr = ?listener.local_addr().ok(), "listening");
    loop {
        let slot = tokio::select! {
            _ = stop.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::error!(listener = "http", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let health = health.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request| {
                let health = health.clone();
                async move { Ok::<_, Infallible>(health.answer(&request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "http connection ended");
                    }
                }
                _ = stop.cancelled() => {}
            }
        });
    }
    tracing::info!(listener = "http", "stopped accepting");
}

impl Health {
    async fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n".into());
        }
        match request.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n".into()),
            "/readyz" => {
                let (ready, why) = self.readiness().await;
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                text(status, format!("{why}\n"))
            }
            "/metrics" => {
                let mut response = text(StatusCode::OK, (self.metrics)());
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }

    /// Ready: not draining, and the store answers a query through the pool sessions
    /// use. Draining is checked first, so `/readyz` fails the moment a drain starts.
    pub async fn readiness(&self) -> (bool, String) {
        if let Some(why) = self.drain.reason() {
            return (false, format!("draining ({why})"));
        }
        match tokio::time::timeout(STORE_CHECK_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => (true, "ready".into()),
            Ok(Err(e)) => (false, format!("store unreachable: {e}")),
            Err(_) => (
                false,
                format!("store unreachable: no answer within {STORE_CHECK_TIMEOUT:?}"),
            ),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
