//! The Prometheus endpoint: `GET /metrics` over HTTP/1.1 on the address the manifest gives.
//!
//! A small handler of its own rather than an HTTP framework: it answers one request per
//! connection, reads at most [`MAX_REQUEST`] bytes of request head within [`TIMEOUT`], serves
//! at most [`MAX_CONNECTIONS`] connections at once, and renders the node's per-process
//! figures at scrape time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::Metrics;
use crate::Node;

/// The most bytes of request head read.
const MAX_REQUEST: usize = 8 << 10;
/// How long a client has to send its request, and to take the answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 16;

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
            let (node, metrics) = (node.clone(), metrics.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(TIMEOUT, answer(stream, &node, &metrics)).await;
                drop(permit);
            });
        }
    }
}

/// Read one request head and answer it.
async fn answer(mut stream: TcpStream, node: &Node, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() >= MAX_REQUEST {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "",
                false,
            )
            .await;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => {
            let body = metrics.render(node);
            respond(&mut stream, "200 OK", &body, method == b"HEAD").await
        }
        (b"GET" | b"HEAD", _) => respond(&mut stream, "404 Not Found", "", false).await,
        _ => respond(&mut stream, "405 Method Not Allowed", "", false).await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if !head_only {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}
