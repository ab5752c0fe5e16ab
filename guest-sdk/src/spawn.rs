//! Starting processes from a server: OTP's `gen_server:start`, `start_link` and
//! `start_monitor`.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::encode;
use crate::imports::spawn as host;
use crate::registry::RegistryError;
use crate::types::{ExitReason, MonitorRef, Pid, WitReason};

/// How to start a process: a name or `via` key, a start timeout, `hibernate_after`.
///
/// ```no_run
/// use otter_guest::StartOptions;
/// use std::time::Duration;
/// let opts = StartOptions::new()
///     .name("cache")
///     .start_timeout(Duration::from_secs(1))
///     .hibernate_after(Duration::from_secs(30));
/// let pid = otter_guest::start_link("kv", &(), opts);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOptions {
    name: Option<String>,
    via: Option<(String, Vec<u8>)>,
    start_timeout_ms: Option<u32>,
    hibernate_after_ms: Option<u32>,
    mailbox: Option<(u32, Overflow)>,
}

/// What a full mailbox does with one more message (see [`StartOptions::mailbox`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse it: a call fails [`CallError::Busy`](crate::CallError::Busy) at once; a
    /// cast or message is dropped.
    Reject,
    /// Drop the oldest waiting call, cast or message to make room (a dropped call fails
    /// [`CallError::Busy`](crate::CallError::Busy)).
    DropOldest,
    /// Drop the arriving message; a dropped call's caller waits until its timeout.
    DropNewest,
}

impl Overflow {
    fn to_wit(self) -> host::Overflow {
        match self {
            Overflow::Reject => host::Overflow::Reject,
            Overflow::DropOldest => host::Overflow::DropOldest,
            Overflow::DropNewest => host::Overflow::DropNewest,
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn from_wit(o: host::Overflow) -> Self {
        match o {
            host::Overflow::Reject => Overflow::Reject,
            host::Overflow::DropOldest => Overflow::DropOldest,
            host::Overflow::DropNewest => Overflow::DropNewest,
        }
    }
}

/// Whole milliseconds, rounded up (a 1 µs timeout is not "none"), at most `u32::MAX`.
fn millis(d: Duration) -> u32 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u32::try_from(ms).unwrap_or(u32::MAX)
}

impl StartOptions {
    /// No name, no start timeout, never hibernate when idle.
    pub fn new() -> Self {
        StartOptions::default()
    }

    /// Register the process under a local name before its `init` runs. Default: none.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Register the process under `key` in the unique registry `registry` before its `init`
    /// runs (OTP's `{via, Registry, Key}`). Default: none.
    pub fn via<K: Serialize + ?Sized>(mut self, registry: &str, key: &K) -> Self {
        self.via = Some((registry.to_owned(), encode(key)));
        self
    }

    /// Kill the process and fail with [`StartError::Timeout`] if `init` takes longer.
    /// Default: wait as long as `init` takes.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout_ms = Some(millis(timeout));
        self
    }

    /// Hibernate the process whenever it has waited this long for a message (OTP's
    /// `hibernate_after`): its state is serialized and its instance dropped until the next
    /// message. Default: never.
    pub fn hibernate_after(mut self, idle: Duration) -> Self {
        self.hibernate_after_ms = Some(millis(idle));
        self
    }

    /// Let at most `bound` calls, casts and messages wait in its mailbox; `policy` says what
    /// happens to one more. Exit signals and `DOWN` are never refused nor counted. Default:
    /// unbounded, as in OTP. A bound of 0 fails the start with [`StartError::Badarg`].
    pub fn mailbox(mut self, bound: u32, policy: Overflow) -> Self {
        self.mailbox = Some((bound, policy));
        self
    }

    pub(crate) fn to_wit(&self) -> host::StartOptions {
        host::StartOptions {
            name: self.name.clone(),
            via: self.via.clone(),
            start_timeout_ms: self.start_timeout_ms,
            hibernate_after_ms: self.hibernate_after_ms,
            mailbox: self.mailbox.map(|(bound, policy)| host::MailboxBound {
                bound,
                policy: policy.to_wit(),
            }),
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn from_wit(o: &host::StartOptions) -> Self {
        StartOptions {
            name: o.name.clone(),
            via: o.via.clone(),
            start_timeout_ms: o.start_timeout_ms,
            hibernate_after_ms: o.hibernate_after_ms,
            mailbox: o.mailbox.map(|m| (m.bound, Overflow::from_wit(m.policy))),
        }
    }
}

/// Why [`start`], [`start_link`] or [`start_monitor`] failed.
#[derive(Clone, PartialEq, Eq)]
pub enum StartError {
    /// No module with this name is loaded.
    UnknownModule(String),
    /// The name or `via` key is held by this pid (OTP's `already_started`).
    AlreadyStarted(Pid),
    /// `init` returned [`crate::Init::Stop`] with this reason, or crashed.
    Stopped(ExitReason),
    /// `init` did not return within the start timeout; the process was killed.
    Timeout,
    /// The module name, name, args or options are over the node's limits or malformed.
    Badarg(String),
    /// The `via` registry does not exist or has duplicate keys.
    Registry(RegistryError),
    /// The node holds its maximum number of processes.
    SystemLimit,
    /// The module could not be instantiated.
    Instantiate(String),
}

impl StartError {
    pub(crate) fn from_wit(e: host::StartError) -> Self {
        match e {
            host::StartError::UnknownModule(m) => StartError::UnknownModule(m),
            host::StartError::AlreadyStarted(p) => StartError::AlreadyStarted(p),
            host::StartError::Stopped(r) => StartError::Stopped(ExitReason::from_wit(r)),
            host::StartError::Timeout => StartError::Timeout,
            host::StartError::Badarg(m) => StartError::Badarg(m),
            host::StartError::Registry(e) => StartError::Registry(RegistryError::from_wit(e)),
            host::StartError::SystemLimit => StartError::SystemLimit,
            host::StartError::Instantiate(m) => StartError::Instantiate(m),
        }
    }
}

// By hand, as derived but for its strings (see `otter_common::Quoted`): a derived `Debug`
// would link `Debug`'s string escaping into a server that `expect`s this error.
impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::UnknownModule(m) => f
                .debug_tuple("UnknownModule")
                .field(&otter_common::Quoted(m))
                .finish(),
            StartError::AlreadyStarted(x) => f.debug_tuple("AlreadyStarted").field(x).finish(),
            StartError::Stopped(x) => f.debug_tuple("Stopped").field(x).finish(),
            StartError::Timeout => f.write_str("Timeout"),
            StartError::Badarg(m) => f
                .debug_tuple("Badarg")
                .field(&otter_common::Quoted(m))
                .finish(),
            StartError::Registry(x) => f.debug_tuple("Registry").field(x).finish(),
            StartError::SystemLimit => f.write_str("SystemLimit"),
            StartError::Instantiate(m) => f
                .debug_tuple("Instantiate")
                .field(&otter_common::Quoted(m))
                .finish(),
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::UnknownModule(m) => write!(f, "unknown module \"{m}\""),
            StartError::AlreadyStarted(p) => write!(f, "already started as {p}"),
            StartError::Stopped(r) => write!(f, "init failed: {r}"),
            StartError::Timeout => f.write_str("init timed out"),
            StartError::Badarg(m) => write!(f, "bad argument: {m}"),
            StartError::Registry(e) => write!(f, "{e}"),
            StartError::SystemLimit => f.write_str("system_limit"),
            StartError::Instantiate(m) => write!(f, "instantiation failed: {m}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Start a process of the loaded `module` with `args` for its `init` (OTP's
/// `gen_server:start`), and return once `init` has: its pid, or `None` if `init` returned
/// [`crate::Init::Ignore`]. Only this process waits; the host goes on running the others.
///
/// The new process is tied to nobody: see [`start_link`] and [`start_monitor`].
///
/// ```no_run
/// use otter_guest::StartOptions;
/// let worker = otter_guest::start("worker", &("job", 7), StartOptions::new());
/// ```
///
/// # Errors
/// [`StartError::UnknownModule`], [`StartError::AlreadyStarted`] (its name is taken),
/// [`StartError::Stopped`] (its `init` stopped or crashed), [`StartError::Timeout`],
/// [`StartError::Badarg`] (args over the node's maximum message size),
/// [`StartError::Registry`], [`StartError::SystemLimit`].
pub fn start<A: Serialize + ?Sized>(
    module: &str,
    args: &A,
    options: StartOptions,
) -> Result<Option<Pid>, StartError> {
    host::start(module, &encode(args), &options.to_wit()).map_err(StartError::from_wit)
}

/// [`start`], linked to this process before the new one runs (OTP's
/// `gen_server:start_link`): when either exits, the other gets an exit signal.
///
/// As in OTP, a new process whose `init` stops or crashes sends this process its exit
/// signal too, besides the error: unless this process traps exits ([`crate::trap_exit`]),
/// that ends it (once the current callback returns) with the same reason; if it traps, the
/// signal arrives as [`crate::Info::Exit`]. `init` returning `ignore` exits `normal`, which
/// only a trapping process sees. A start timeout removes the link before the kill: only the
/// error reports it.
///
/// # Errors
/// As [`start`].
pub fn start_link<A: Serialize + ?Sized>(
    module: &str,
    args: &A,
    options: StartOptions,
) -> Result<Option<Pid>, StartError> {
    host::start_link(module, &encode(args), &options.to_wit()).map_err(StartError::from_wit)
}

/// [`start`], monitored by this process before the new one runs (OTP's
/// `gen_server:start_monitor`): its pid and the monitor's reference, for the
/// [`crate::Info::Down`] that comes when it exits. A start that fails (or is ignored) leaves
/// no `Down` behind, as OTP flushes it.
///
/// # Errors
/// As [`start`]; [`StartError::SystemLimit`] if this process holds its limit of monitors.
pub fn start_monitor<A: Serialize + ?Sized>(
    module: &str,
    args: &A,
    options: StartOptions,
) -> Result<Option<(Pid, MonitorRef)>, StartError> {
    host::start_monitor(module, &encode(args), &options.to_wit()).map_err(StartError::from_wit)
}
