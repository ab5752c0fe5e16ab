//! How much of the node one control client may hold: bytes per request, time between
//! requests, connections at once.

use std::time::Duration;

/// Bounds on what control clients may hold, so that no client (buggy or hostile) can make
/// the node buffer without end, run out of file descriptors, or stop answering others.
///
/// The defaults suit a local operator's socket: a request line (a JSON message for a
/// server, or a short command) is far below 1 MiB; a client sends its request right after
/// connecting, so 30 s of silence means it is stuck or gone; 256 connections leave most of
/// a default limit of 1024 file descriptors to the node. Set them from the manifest's
/// `[node]` table (`control_max_request_bytes`, `control_idle_timeout_ms`,
/// `control_max_connections`).
///
/// ```
/// let mut limits = otter::control::Limits::default();
/// limits.max_connections = 16;
/// assert_eq!(limits.max_request_bytes, 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest request line, in bytes, not counting its newline. A longer one is
    /// answered with `badrequest` naming the limit, and the connection is closed; no more
    /// than this is ever buffered. Default 1 MiB.
    pub max_request_bytes: usize,
    /// How long a connection may take to send a whole request line after connecting or
    /// after its last answer, and how long an answer may wait for the client to read it.
    /// Past it the connection is answered `timeout` and closed. Default 30 s.
    pub idle_timeout: Duration,
    /// How many connections are served at once. When all are taken, a new connection
    /// takes the place of the one that has waited longest for a request (which is answered
    /// `busy` and closed); if every connection stays busy answering for 2 s, or as many new
    /// connections are already waiting, the new one is answered `busy` and closed. Default
    /// 256.
    pub max_connections: usize,
}

impl Limits {
    /// [`Limits::max_request_bytes`] by default.
    pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;
    /// [`Limits::idle_timeout`] by default.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// [`Limits::max_connections`] by default.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: Limits::DEFAULT_MAX_REQUEST_BYTES,
            idle_timeout: Limits::DEFAULT_IDLE_TIMEOUT,
            max_connections: Limits::DEFAULT_MAX_CONNECTIONS,
        }
    }
}
