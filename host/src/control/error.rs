//! A failed request: its kind for programs, its message for people, and how the node's
//! errors map to kinds.

use serde::{Deserialize, Serialize};

use crate::error::{
    CallError, GetStateError, ReplaceStateError, ResumeError, SendError, StopError, SuspendError,
};

/// A failed request, as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ControlError {
    /// What kind of failure, for programs.
    pub kind: ErrorKind,
    /// What happened, for people.
    pub message: String,
}

/// The kinds of [`ControlError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// No process with that pid or name.
    Noproc,
    /// No answer in time; or no whole request in time
    /// ([`Limits::idle_timeout`](super::Limits::idle_timeout)).
    Timeout,
    /// The server could not decode the message, or an argument is malformed.
    Badarg,
    /// The server exited before answering.
    Exited,
    /// The answer has no JSON form.
    Badreply,
    /// The request line is not a request (not UTF-8, not JSON, an unknown field, longer
    /// than [`Limits::max_request_bytes`](super::Limits::max_request_bytes)).
    Badrequest,
    /// The node serves as many control connections as
    /// [`Limits::max_connections`](super::Limits::max_connections) allows, or the server's
    /// mailbox is full and refused the call ([`crate::CallError::Busy`]); try again.
    Busy,
    /// A start found the name taken (or the child running); the message names the pid.
    #[serde(rename = "already_started")]
    AlreadyStarted,
    /// A start failed: `init` stopped, crashed or timed out.
    Failed,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::Noproc => "noproc",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Badarg => "badarg",
            ErrorKind::Exited => "exited",
            ErrorKind::Badreply => "badreply",
            ErrorKind::Badrequest => "badrequest",
            ErrorKind::Busy => "busy",
            ErrorKind::AlreadyStarted => "already_started",
            ErrorKind::Failed => "failed",
        })
    }
}

impl ControlError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ControlError {
            kind,
            message: message.into(),
        }
    }
}

impl From<CallError> for ControlError {
    fn from(e: CallError) -> Self {
        let kind = match e {
            CallError::Timeout => ErrorKind::Timeout,
            CallError::NoProc => ErrorKind::Noproc,
            CallError::Exited(_) => ErrorKind::Exited,
            CallError::Badarg(_)
            | CallError::Encode(_)
            | CallError::CallingSelf
            | CallError::Registry(_) => ErrorKind::Badarg,
            CallError::BadReply(_) => ErrorKind::Badreply,
            CallError::Busy => ErrorKind::Busy,
        };
        ControlError::new(kind, e.to_string())
    }
}

impl From<SendError> for ControlError {
    fn from(e: SendError) -> Self {
        let kind = match e {
            SendError::NoProc => ErrorKind::Noproc,
            SendError::Badarg(_) | SendError::Registry(_) => ErrorKind::Badarg,
        };
        ControlError::new(kind, e.to_string())
    }
}

impl From<ReplaceStateError> for ControlError {
    fn from(e: ReplaceStateError) -> Self {
        let kind = match e {
            ReplaceStateError::NoProc => ErrorKind::Noproc,
            ReplaceStateError::Refused(_) | ReplaceStateError::Badarg(_) => ErrorKind::Badarg,
            ReplaceStateError::Exited(_) => ErrorKind::Exited,
        };
        ControlError::new(kind, e.to_string())
    }
}

impl From<GetStateError> for ControlError {
    fn from(e: GetStateError) -> Self {
        let kind = match e {
            GetStateError::NoProc => ErrorKind::Noproc,
            GetStateError::Exited(_) => ErrorKind::Exited,
        };
        ControlError::new(kind, e.to_string())
    }
}

impl From<SuspendError> for ControlError {
    fn from(e: SuspendError) -> Self {
        ControlError::new(ErrorKind::Noproc, e.to_string())
    }
}

impl From<ResumeError> for ControlError {
    fn from(e: ResumeError) -> Self {
        ControlError::new(ErrorKind::Noproc, e.to_string())
    }
}

impl From<StopError> for ControlError {
    fn from(e: StopError) -> Self {
        match e {
            StopError::NoProc => ControlError::new(ErrorKind::Noproc, e.to_string()),
            StopError::Timeout => ControlError::new(
                ErrorKind::Timeout,
                "terminate is still running; the process was not killed",
            ),
        }
    }
}
