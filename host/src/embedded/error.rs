//! What an embedded process's operations return when they fail.

use crate::error::{CallError, SendError};
use crate::exit::ExitReason;
use crate::registry::RegisterError;

/// Why [`EmbeddedProcess::receive`](super::EmbeddedProcess::receive) returned no message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// Nothing arrived within the timeout.
    #[error("receive timed out")]
    Timeout,
    /// The process has exited, for this reason.
    #[error("the process has exited: {0}")]
    Exited(ExitReason),
}

/// Why an operation of an [`EmbeddedProcess`](super::EmbeddedProcess) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// The process has exited, for this reason: a linked process crashed while it did not
    /// trap exits, an exit signal or a kill reached it, or it was stopped.
    #[error("the process has exited: {0}")]
    Exited(ExitReason),
    /// A call failed, as [`Node::call`](crate::Node::call) does.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A send failed, as [`Node::send`](crate::Node::send) does.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The name is taken, or this process already has one.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// An argument is over the node's limits.
    #[error("bad argument: {0}")]
    Badarg(String),
}
