//! The control endpoint: a local Unix socket through which the `otter` CLI (or anything
//! else that speaks newline-delimited JSON) talks to a running node.
//!
//! Each line sent is one [`Request`]; each line back is its [`Response`], in order:
//!
//! ```text
//! → {"op":"call","dest":"echo","msg":"ping","timeout_ms":5000}
//! ← {"ok":{"pong":1}}
//! → {"op":"call","dest":42,"msg":"ping"}
//! ← {"error":{"kind":"noproc","message":"no such process"}}
//! ```
//!
//! `dest` is a registered name (a JSON string) or a pid (a JSON number). Messages are JSON
//! on the socket and CBOR inside the node ([`crate::from_json`], [`crate::to_json`]).
//!
//! ## Access
//!
//! The socket is created with mode 0600, so only its owner can connect. A missing
//! directory for it is created with mode 0700; the default directories
//! ([`default_socket_path`]) are always such. A socket file left by a node that died is
//! replaced; one a live node answers on is an error ([`BindError::AlreadyRunning`]).
//!
//! ## Limits
//!
//! No client can make the node buffer without end or stop serving others ([`Limits`]): a
//! request line longer than 1 MiB is answered `badrequest` and its connection closed; a
//! connection that takes more than 30 s to send a whole request is answered `timeout` and
//! closed; at most 256 connections are served at once, and a new one past that takes the
//! place of the one idle longest (which is answered `busy`), or is itself answered `busy`
//! when every connection is busy answering. A line that is not UTF-8 or not a request is
//! answered `badrequest` and the connection goes on; unknown fields are refused.
//!
//! ```no_run
//! # async fn demo(node: otter::Node) -> anyhow::Result<()> {
//! use otter::control::{Endpoint, Request, default_socket_path};
//! let endpoint = Endpoint::bind(default_socket_path("demo"))?;
//! tokio::spawn(async move { endpoint.serve(node).await });
//! // Elsewhere, blocking:
//! let reply = otter::control::request(
//!     &default_socket_path("demo"),
//!     &Request::Call { dest: "echo".into(), msg: "ping".into(), timeout_ms: None },
//! )?;
//! # Ok(()) }
//! ```

mod client;
pub(crate) mod connection;
mod dispatch;
mod endpoint;
mod error;
mod limits;
mod reload;
mod request;
mod slots;
mod start;
mod tree;
mod upgrade;

use std::time::Duration;

pub use client::{ClientError, request};
pub use dispatch::handle;
pub use endpoint::{
    BindError, Endpoint, default_socket_dir, default_socket_path, local_nodes, node_socket_path,
};
pub use error::{ControlError, ErrorKind};
pub use limits::Limits;
pub use request::{Request, Response};
pub use tree::{SupervisorNode, TreeNode, WorkerNode};

use dispatch::handle_app;
pub(crate) use tree::App;

/// The environment variable that overrides the socket path.
pub const SOCKET_ENV: &str = "OTTER_SOCKET";

/// How long a `stop` request waits for `terminate` unless it says otherwise.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A file the node reads for a client must be named by an absolute path: a relative one
/// would be resolved against the node's working directory, which the client does not
/// know (the CLI resolves it against its own first).
fn absolute(what: &str, path: &std::path::Path) -> Result<(), ControlError> {
    if path.is_absolute() {
        return Ok(());
    }
    Err(ControlError::new(
        ErrorKind::Badarg,
        format!(
            "{what} path {:?} is relative: give an absolute path (the node does not share the client's working directory)",
            crate::guest_text::one_line(&path.to_string_lossy(), 256)
        ),
    ))
}

#[cfg(test)]
mod tests;
