//! The Prometheus endpoint: `GET /metrics` over HTTP/1.1 on the address the manifest gives.
//!
//! An axum router served by hyper's HTTP/1 connection: one request per connection, a request
//! head of at most [`MAX_REQUEST`] bytes (hyper answers 431 beyond it), the head read within
//! [`HEADER_TIMEOUT`] and the whole connection over within [`TIMEOUT`], at most
//! [`MAX_CONNECTIONS`] connections served at once. The node's per-process figures are
//! rendered at scrape time, on a blocking thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Metrics;
use crate::Node;

/// The most bytes of request head buffered (hyper's smallest read buffer).
const MAX_REQUEST: usize = 8 << 10;
/// How long a client has to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may last in all: sending the request, taking the answer.
const TIMEOUT: Duration = Duration::from_secs(20);
/// Connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 16;
/// Prometheus's text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A bound Prometheus endpoint, not yet serving.
#[derive(Debug)]
pub struct PrometheusEndpoint {
    listener: TcpListener,
}

impl PrometheusEndpoint {
    /// Bind `addr` (the manifest's `[telemetry] prometheus`; port 0 picks a free port).
    ///
    /// # Errors
    /// The bind's I/O error (the address is in use, not local, not permitted).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<PrometheusEndpoint> {
        Ok(PrometheusEndpoint {
            listener: TcpListener::bind(addr).await?,
        })
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve `/metrics` until the future is dropped.
    pub async fn serve(self, node: Node, metrics: Metrics) {
        // `get` answers HEAD too, without the body; another method on /metrics is a 405,
        // another path a 404.
        let router = Router::new()
            .route("/metrics", get(scrape))
            .with_state((node, metrics));
        let service = TowerToHyperService::new(router);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_REQUEST)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(TIMEOUT, connection).await;
                drop(permit);
            });
        }
    }
}

/// `GET /metrics`: the node's figures now, in the text format. Rendered on a blocking
/// thread: it walks the node's processes, which must not hold up an async worker.
async fn scrape(State((node, metrics)): State<(Node, Metrics)>) -> impl IntoResponse {
    match tokio::task::spawn_blocking(move || metrics.render(&node)).await {
        Ok(body) => ([(CONTENT_TYPE, TEXT_FORMAT)], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics endpoint: rendering failed");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
