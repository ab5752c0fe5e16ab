//! The client's side of the control socket: one blocking request and its answer.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ControlError, Request, Response};

/// Why a request made through [`request`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the socket.
    #[error("no node is running at {path} ({source})")]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The connection failed mid-request.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The node's answer was not a response.
    #[error("control socket: bad response: {0}")]
    Protocol(String),
    /// The node carried out the request and it failed.
    #[error(transparent)]
    Failed(#[from] ControlError),
}

/// Send one request to the node at `socket` and wait for its answer (blocking).
///
/// # Errors
/// [`ClientError::NotRunning`] if nothing answers there; [`ClientError::Failed`] with the
/// node's error; otherwise I/O or protocol trouble.
pub fn request(socket: &Path, request: &Request) -> Result<Value, ClientError> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|source| {
        ClientError::NotRunning {
            path: socket.to_owned(),
            source,
        }
    })?;
    let mut line = serde_json::to_vec(request).expect("requests are JSON");
    line.push(b'\n');
    // A node that turns the connection away (`busy`) may close it before the request is
    // written: its answer is still there to read.
    let written = stream.write_all(&line);
    let mut answer = String::new();
    let read = BufReader::new(&stream).read_line(&mut answer);
    if answer.is_empty() {
        written?;
        read?;
        return Err(ClientError::Protocol(
            "the node closed the connection".into(),
        ));
    }
    match serde_json::from_str(&answer) {
        Ok(Response::Ok(v)) => Ok(v),
        Ok(Response::Error(e)) => Err(ClientError::Failed(e)),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}
