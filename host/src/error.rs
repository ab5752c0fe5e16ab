//! The errors of each operation, as enums callers match on.

use std::path::PathBuf;

use crate::Pid;
use crate::exit::ExitReason;
use crate::registry::RegistryError;
use crate::term::TermError;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No reply within the timeout. The server goes on; its late reply is dropped.
    #[error("call timed out (the server may still handle the request)")]
    Timeout,
    /// No process with that pid or name.
    #[error("no such process")]
    NoProc,
    /// A process called itself, which could never be answered.
    #[error("a process cannot call itself")]
    CallingSelf,
    /// The server exited before replying.
    #[error("the server exited: {0}")]
    Exited(ExitReason),
    /// The server could not decode the request, or it is over the node's size limit.
    #[error("bad argument: {0}")]
    Badarg(String),
    /// The request could not be encoded (its `Serialize` failed), so it was never sent.
    #[error("the request did not encode: {0}")]
    Encode(TermError),
    /// The reply did not decode as the expected type.
    #[error("the reply did not decode: {0}")]
    BadReply(String),
    /// A `via` destination names a registry that does not exist or has duplicate keys.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The server's mailbox is full ([`Overflow::Reject`](crate::Overflow::Reject)), or the
    /// call was dropped from it to make room ([`Overflow::DropOldest`](crate::Overflow)).
    /// The server never saw the request.
    #[error("the server is busy (its mailbox is full)")]
    Busy,
}

/// Why [`crate::Node::send`] failed. Sending to a dead pid is not an error, as in OTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No process holds that name or key.
    #[error("no such process")]
    NoProc,
    /// The message is over the node's size limit (see [`crate::NodeConfig`]); it was not
    /// sent.
    #[error("bad argument: {0}")]
    Badarg(String),
    /// A `via` destination names a registry that does not exist or has duplicate keys.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Why [`crate::Node::get_state`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetStateError {
    /// No process with that pid or name.
    #[error("no such process")]
    NoProc,
    /// The process exited before answering, or its `export-state` crashed it.
    #[error("the server exited: {0}")]
    Exited(ExitReason),
}

/// Why [`crate::Node::suspend`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuspendError {
    /// No process with that pid or name.
    #[error("no such process")]
    NoProc,
}

/// Why [`crate::Node::resume`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// No process with that pid or name.
    #[error("no such process")]
    NoProc,
}

/// Why a process did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The name is already registered by this pid.
    #[error("already started as {0}")]
    AlreadyStarted(Pid),
    /// `init` returned `ignore`; the process exited `normal`. Not a failure in OTP's terms:
    /// a supervisor keeps the child spec.
    #[error("init returned ignore")]
    Ignore,
    /// `init` returned `stop` with this reason, or crashed (an `Error` reason).
    #[error("init failed: {0}")]
    Stopped(ExitReason),
    /// `init` did not return within the start timeout; the process was killed.
    #[error("init timed out")]
    Timeout,
    /// No module with this name is loaded.
    #[error("unknown module {0:?}")]
    UnknownModule(String),
    /// The arguments or the name are over the node's limits (see [`crate::NodeConfig`]);
    /// the process was not started.
    #[error("bad argument: {0}")]
    Badarg(String),
    /// The module could not be instantiated.
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    /// The `via` name's registry does not exist or has duplicate keys.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The node holds its maximum number of processes
    /// ([`NodeConfig::max_processes`](crate::NodeConfig::max_processes)).
    #[error("system_limit: the node holds its maximum number of processes")]
    SystemLimit,
    /// The process's own grants give what its module's do not; it was not started.
    #[error("grants: {0}")]
    Grants(crate::grants::GrantError),
}

/// Why a `replace_state` failed (OTP's `sys:replace_state`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplaceStateError {
    /// No process with that pid or name.
    #[error("no such process")]
    NoProc,
    /// The process refused the new state (its `restore-state` said why: for an SDK guest,
    /// the state does not decode as its state type). Its state is unchanged and it goes on.
    #[error("the process refused the state: {0}")]
    Refused(String),
    /// The new state is over the node's maximum message size; nothing was sent.
    #[error("bad argument: {0}")]
    Badarg(String),
    /// The process exited first, or crashed taking the state.
    #[error("the process exited: {0}")]
    Exited(ExitReason),
}

/// Why a stop did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StopError {
    /// No process with that pid or name.
    #[error("no such process")]
    NoProc,
    /// The process did not finish `terminate` within the timeout. It was not killed.
    #[error("stop timed out")]
    Timeout,
}

/// Why a module could not be loaded. Nothing running is touched when this happens.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The module's path.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The bytes are not a valid module or component, or do not implement the contract.
    #[error("{path}: {reason}")]
    Invalid {
        /// The module's path (or `<bytes>`).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}
