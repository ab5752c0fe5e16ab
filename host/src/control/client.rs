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
    /// The process listening at the socket runs as another user: not a node of ours, but
    /// perhaps one put where ours would be.
    #[error("{path} is served by uid {uid}, not by this user; refusing to talk to it")]
    Foreign {
        /// The socket.
        path: PathBuf,
        /// Whom the listening process runs as.
        uid: u32,
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
/// [`ClientError::NotRunning`] if nothing answers there; [`ClientError::Foreign`] if what
/// answers runs as another user; [`ClientError::Failed`] with the node's error; otherwise
/// I/O or protocol trouble.
pub fn request(socket: &Path, request: &Request) -> Result<Value, ClientError> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|source| {
        ClientError::NotRunning {
            path: socket.to_owned(),
            source,
        }
    })?;
    // Requests and states are not for another user's process, which could have put its own
    // socket where the node's would be (a directory it made first in /tmp).
    let peer = rustix::net::sockopt::socket_peercred(&stream)
        .map_err(std::io::Error::from)?
        .uid
        .as_raw();
    if !serves_us(peer, rustix::process::geteuid().as_raw()) {
        return Err(ClientError::Foreign {
            path: socket.to_owned(),
            uid: peer,
        });
    }
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

/// Whether a node running as `peer` may be told what a client running as `us` asks: one of
/// ours, or any when we are root (an operator reaching a service's node).
fn serves_us(peer: u32, us: u32) -> bool {
    peer == us || us == 0
}

#[cfg(test)]
mod tests {
    use super::serves_us;

    #[test]
    fn only_a_node_of_our_own_user_is_talked_to_unless_we_are_root() {
        assert!(serves_us(1000, 1000));
        assert!(!serves_us(1001, 1000), "another user's socket");
        assert!(!serves_us(0, 1000), "root's is not ours either");
        assert!(serves_us(1000, 0), "root reaches any node");
    }
}
