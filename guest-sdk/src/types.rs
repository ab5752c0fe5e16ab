//! The SDK's own types for pids, reasons, callers and errors, converted to and from WIT.

use std::fmt;

use serde::de::DeserializeOwned;

use crate::bindings::otter::genserver::types as wit;

pub use otter_common::Pid;

/// Where a message goes: a pid, a registered name, or a key in a unique registry.
///
/// ```
/// use otter_guest::Dest;
/// // Elixir's {:via, Registry, {MyReg, {:kv, 42}}}:
/// let dest = Dest::via("MyReg", &("kv", 42));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A process by pid.
    Pid(Pid),
    /// A process by its registered name.
    Name(String),
    /// The process registered under a key (CBOR) in a unique registry; see
    /// [`crate::registry`].
    Via(String, Vec<u8>),
}

impl std::convert::From<Pid> for Dest {
    fn from(pid: Pid) -> Self {
        Dest::Pid(pid)
    }
}

impl std::convert::From<&str> for Dest {
    fn from(name: &str) -> Self {
        Dest::Name(name.to_owned())
    }
}

impl std::convert::From<String> for Dest {
    fn from(name: String) -> Self {
        Dest::Name(name)
    }
}

impl Dest {
    /// The holder of `key` in the unique registry named `registry`. Any serde value is a
    /// key; the host compares keys on their canonical CBOR, so equal values match however
    /// they were encoded (a `HashMap`'s order, say).
    pub fn via<K: serde::Serialize + ?Sized>(registry: &str, key: &K) -> Dest {
        Dest::Via(registry.to_owned(), crate::encode(key))
    }

    pub(crate) fn to_wit(&self) -> wit::Dest {
        match self {
            Dest::Pid(p) => wit::Dest::Pid(*p),
            Dest::Name(n) => wit::Dest::Name(n.clone()),
            Dest::Via(registry, key) => wit::Dest::Via((registry.clone(), key.clone())),
        }
    }
}

pub use otter_common::ExitReason;

/// An exit reason's WIT form, both ways.
pub(crate) trait WitReason: Sized {
    fn to_wit(&self) -> wit::ExitReason;
    fn from_wit(r: wit::ExitReason) -> Self;
}

impl WitReason for ExitReason {
    fn to_wit(&self) -> wit::ExitReason {
        match self {
            ExitReason::Normal => wit::ExitReason::Normal,
            ExitReason::Shutdown => wit::ExitReason::Shutdown,
            ExitReason::ShutdownWith(t) => wit::ExitReason::ShutdownWith(t.clone()),
            ExitReason::Killed => wit::ExitReason::Killed,
            ExitReason::NoProc => wit::ExitReason::Noproc,
            ExitReason::Error(e) => wit::ExitReason::Error(e.clone()),
        }
    }

    fn from_wit(r: wit::ExitReason) -> Self {
        match r {
            wit::ExitReason::Normal => ExitReason::Normal,
            wit::ExitReason::Shutdown => ExitReason::Shutdown,
            wit::ExitReason::ShutdownWith(t) => ExitReason::ShutdownWith(t),
            wit::ExitReason::Killed => ExitReason::Killed,
            wit::ExitReason::Noproc => ExitReason::NoProc,
            wit::ExitReason::Error(e) => ExitReason::Error(e),
        }
    }
}

/// The caller of a pending call, to answer later with [`crate::reply`] (the WIT's
/// `reply-to`, OTP's `From`).
///
/// Named so that importing the SDK does not shadow `std::convert::From`:
///
/// ```
/// use otter_guest::*;
/// struct Celsius(f64);
/// impl From<f64> for Celsius {
///     fn from(c: f64) -> Self {
///         Celsius(c)
///     }
/// }
/// ```
///
/// It is plain data (serde-serializable), so a server may keep callers it answers later in
/// its state, and they survive hibernation (and, later, upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplyTo {
    /// The server that received the call.
    pub server: Pid,
    /// The calling process, or 0 when the caller is not a process.
    pub caller: Pid,
    /// Tells this call apart from the server's other pending calls.
    pub tag: u64,
}

impl ReplyTo {
    pub(crate) fn from_wit(f: wit::ReplyTo) -> Self {
        ReplyTo {
            server: f.server,
            caller: f.caller,
            tag: f.tag,
        }
    }

    pub(crate) fn to_wit(self) -> wit::ReplyTo {
        wit::ReplyTo {
            server: self.server,
            caller: self.caller,
            tag: self.tag,
        }
    }
}

/// A monitor reference.
pub type MonitorRef = u64;

/// A timer reference.
pub type TimerRef = u64;

/// What reaches [`crate::GenServer::handle_info`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Info<M> {
    /// A plain message, decoded.
    Message(M),
    /// The idle timeout from [`crate::Next::Timeout`] expired.
    Timeout,
    /// A monitored process exited.
    Down {
        /// The reference [`crate::monitor`] returned.
        monitor: MonitorRef,
        /// The process that exited.
        pid: Pid,
        /// Why it exited.
        reason: ExitReason,
    },
    /// An exit signal, delivered as a message because this process traps exits
    /// ([`crate::trap_exit`]): a linked process exited, or someone called [`crate::exit`].
    Exit {
        /// Where the signal came from.
        from: Pid,
        /// Its reason.
        reason: ExitReason,
    },
    /// A timer armed with [`crate::start_timer`] fired (Erlang's `{timeout, TimerRef, Msg}`).
    Timer {
        /// The reference [`crate::start_timer`] returned.
        timer: TimerRef,
        /// The message it was armed with, decoded.
        msg: M,
    },
}

impl<M> Info<M> {
    /// A short name of the variant, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Info::Message(_) => "message",
            Info::Timeout => "timeout",
            Info::Down { .. } => "down",
            Info::Exit { .. } => "exit",
            Info::Timer { .. } => "timer",
        }
    }
}

impl<M: DeserializeOwned> Info<M> {
    pub(crate) fn from_wit(info: wit::Info) -> Result<Self, String> {
        Ok(match info {
            wit::Info::Message(bytes) => Info::Message(crate::decode(&bytes)?),
            wit::Info::Timeout => Info::Timeout,
            wit::Info::Down(d) => Info::Down {
                monitor: d.monitor,
                pid: d.pid,
                reason: ExitReason::from_wit(d.reason),
            },
            wit::Info::Exit(e) => Info::Exit {
                from: e.from,
                reason: ExitReason::from_wit(e.reason),
            },
            wit::Info::Timer(t) => Info::Timer {
                timer: t.timer,
                msg: crate::decode(&t.msg)?,
            },
        })
    }
}

/// Why a [`crate::call`] failed.
#[derive(Clone, PartialEq, Eq)]
pub enum CallError {
    /// No reply within the timeout; a late reply is dropped.
    Timeout,
    /// No process with that pid or name.
    NoProc,
    /// The process called itself.
    CallingSelf,
    /// The server exited before replying.
    Exited(ExitReason),
    /// The server could not decode the request.
    Badarg(String),
    /// The reply did not decode as the expected type.
    BadReply(String),
    /// A [`Dest::Via`] names a registry that does not exist or has duplicate keys.
    Registry(crate::registry::RegistryError),
    /// The server's mailbox is full and refused the call (bound policy `reject`), or the
    /// call was dropped to make room (`drop_oldest`): the server never saw it.
    Busy,
}

impl CallError {
    pub(crate) fn from_wit(e: wit::CallError) -> Self {
        match e {
            wit::CallError::Timeout => CallError::Timeout,
            wit::CallError::Noproc => CallError::NoProc,
            wit::CallError::CallingSelf => CallError::CallingSelf,
            wit::CallError::Exited(r) => CallError::Exited(ExitReason::from_wit(r)),
            wit::CallError::Badarg(m) => CallError::Badarg(m),
            wit::CallError::Registry(e) => {
                CallError::Registry(crate::registry::RegistryError::from_wit(e))
            }
            wit::CallError::Busy => CallError::Busy,
        }
    }
}

// By hand, as derived but for its strings (see `otter_common::Quoted`): a derived `Debug`
// would link `Debug`'s string escaping into a server that `expect`s this error.
impl fmt::Debug for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("Timeout"),
            CallError::NoProc => f.write_str("NoProc"),
            CallError::CallingSelf => f.write_str("CallingSelf"),
            CallError::Exited(x) => f.debug_tuple("Exited").field(x).finish(),
            CallError::Badarg(m) => f
                .debug_tuple("Badarg")
                .field(&otter_common::Quoted(m))
                .finish(),
            CallError::BadReply(m) => f
                .debug_tuple("BadReply")
                .field(&otter_common::Quoted(m))
                .finish(),
            CallError::Registry(x) => f.debug_tuple("Registry").field(x).finish(),
            CallError::Busy => f.write_str("Busy"),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("call timed out"),
            CallError::NoProc => f.write_str("no such process"),
            CallError::CallingSelf => f.write_str("a process cannot call itself"),
            CallError::Exited(r) => write!(f, "the server exited ({r})"),
            CallError::Badarg(m) => write!(f, "bad argument: {m}"),
            CallError::BadReply(m) => write!(f, "reply did not decode: {m}"),
            CallError::Registry(e) => e.fmt(f),
            CallError::Busy => f.write_str("the server is busy (its mailbox is full)"),
        }
    }
}

impl std::error::Error for CallError {}

/// Why [`crate::register`] failed.
#[derive(Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// The name is held by this pid.
    AlreadyRegistered(Pid),
    /// This process already has this name.
    AlreadyNamed(String),
}

// By hand, as `CallError`'s: a derived `Debug` escapes the name, linking core's Unicode
// tables into every guest that `expect`s a registration.
impl fmt::Debug for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::AlreadyRegistered(pid) => {
                f.debug_tuple("AlreadyRegistered").field(pid).finish()
            }
            RegisterError::AlreadyNamed(name) => f
                .debug_tuple("AlreadyNamed")
                .field(&otter_common::Quoted(name))
                .finish(),
        }
    }
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::AlreadyRegistered(p) => write!(f, "name already registered by {p}"),
            RegisterError::AlreadyNamed(n) => write!(f, "process already registered as {n}"),
        }
    }
}

impl std::error::Error for RegisterError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryError;

    #[test]
    fn a_call_error_debugs_as_a_derived_debug_would_for_plain_strings() {
        let exited = CallError::Exited(ExitReason::Error("boom".into()));
        assert_eq!(format!("{exited:?}"), r#"Exited(Error("boom"))"#);
        let registry = CallError::Registry(RegistryError::UnknownRegistry("Nope".into()));
        assert_eq!(
            format!("{registry:?}"),
            r#"Registry(UnknownRegistry("Nope"))"#
        );
        assert_eq!(format!("{:?}", CallError::Timeout), "Timeout");
        assert_eq!(
            format!("{:#?}", CallError::BadReply("x".into())),
            "BadReply(\n    \"x\",\n)"
        );
        assert_eq!(
            format!("{:?}", RegisterError::AlreadyNamed("kv".into())),
            r#"AlreadyNamed("kv")"#
        );
    }
}
