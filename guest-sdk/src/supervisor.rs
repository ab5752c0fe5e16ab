//! Talking to supervisors from a server: start children under a dynamic
//! (`simple_one_for_one`) supervisor, stop them, list and count a supervisor's children, read
//! a child's spec.
//!
//! A supervisor is reached by pid, by its name (`name` in the manifest), or by a
//! [`crate::Dest::Via`] key. Each call waits for the supervisor's answer; only this process
//! waits, the host goes on running every other one.
//!
//! ```no_run
//! use otter_guest::{supervisor, Pid};
//!
//! // The manifest runs a simple_one_for_one supervisor named "Workers" whose template is
//! // `{ module = "worker", args = { pool = "a" } }`: the child's args are the template's
//! // map with these entries added.
//! let pid: Option<Pid> = supervisor::start_child("Workers", &serde_map()).unwrap();
//! # fn serde_map() -> std::collections::BTreeMap<String, u32> { Default::default() }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::encode;
use crate::imports::supervisor as host;
use crate::types::{Dest, Pid};

/// Why a supervisor request failed.
#[derive(Clone, PartialEq, Eq)]
pub enum SupervisorError {
    /// No supervisor with that pid or name.
    NoProc,
    /// Only a dynamic (`simple_one_for_one`) supervisor starts children from args.
    WrongStrategy,
    /// The child's registered name is held by this pid.
    AlreadyStarted(Pid),
    /// The child's `init` stopped or crashed, or it could not start; the reason.
    Failed(String),
    /// No child with this pid.
    NotFound,
}

impl SupervisorError {
    fn from_wit(e: host::SupervisorError) -> Self {
        match e {
            host::SupervisorError::Noproc => SupervisorError::NoProc,
            host::SupervisorError::WrongStrategy => SupervisorError::WrongStrategy,
            host::SupervisorError::AlreadyStarted(p) => SupervisorError::AlreadyStarted(p),
            host::SupervisorError::Failed(m) => SupervisorError::Failed(m),
            host::SupervisorError::NotFound => SupervisorError::NotFound,
        }
    }
}

// By hand, as derived but for its strings (see `otter_common::Quoted`): a derived `Debug`
// would link `Debug`'s string escaping into a server that `expect`s this error.
impl fmt::Debug for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorError::NoProc => f.write_str("NoProc"),
            SupervisorError::WrongStrategy => f.write_str("WrongStrategy"),
            SupervisorError::AlreadyStarted(x) => f.debug_tuple("AlreadyStarted").field(x).finish(),
            SupervisorError::Failed(m) => f
                .debug_tuple("Failed")
                .field(&otter_common::Quoted(m))
                .finish(),
            SupervisorError::NotFound => f.write_str("NotFound"),
        }
    }
}

impl fmt::Display for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorError::NoProc => f.write_str("no such supervisor"),
            SupervisorError::WrongStrategy => {
                f.write_str("not supported by this supervisor's strategy")
            }
            SupervisorError::AlreadyStarted(p) => write!(f, "already started as {p}"),
            SupervisorError::Failed(m) => write!(f, "the child failed to start: {m}"),
            SupervisorError::NotFound => f.write_str("not_found"),
        }
    }
}

impl std::error::Error for SupervisorError {}

/// One child of a supervisor, as [`which_children`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child spec's id (a dynamic supervisor's children share the template's).
    pub id: String,
    /// Its pid, `None` if it is not running.
    pub pid: Option<Pid>,
    /// Whether it is a supervisor (else a worker).
    pub supervisor: bool,
    /// The worker's module, or `supervisor`.
    pub module: String,
    /// How many times the supervisor has restarted it.
    pub restarts: u32,
}

/// Which child [`get_childspec`] means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildRef {
    /// The child spec's id.
    Id(String),
    /// A running child of a dynamic supervisor (a static supervisor's children are found by
    /// id only, as in OTP).
    Pid(Pid),
}

impl From<&str> for ChildRef {
    fn from(id: &str) -> Self {
        ChildRef::Id(id.to_owned())
    }
}

impl From<Pid> for ChildRef {
    fn from(pid: Pid) -> Self {
        ChildRef::Pid(pid)
    }
}

/// When a child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only after a crash.
    Transient,
    /// Never.
    Temporary,
}

/// How a child is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Killed at once, without `terminate`.
    BrutalKill,
    /// `terminate(shutdown)`, killed if still running after this long.
    Timeout(Duration),
    /// `terminate(shutdown)`, waited for as long as it takes.
    Infinity,
}

/// A child spec, as [`get_childspec`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec {
    /// Its id.
    pub id: String,
    /// The worker's module, or `None` for a supervisor.
    pub module: Option<String>,
    /// The worker's `init` args as CBOR (decode with [`crate::decode`]), or `None` for a
    /// supervisor. A dynamic supervisor's template has the template's args only.
    pub args: Option<Vec<u8>>,
    /// When it is restarted.
    pub restart: Restart,
    /// How it is stopped.
    pub shutdown: Shutdown,
    /// The local name the worker registers under, if any.
    pub name: Option<String>,
}

/// What [`count_children`] returns, as OTP's `count_children`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildCounts {
    /// Child specs, running or not.
    pub specs: u32,
    /// Running children.
    pub active: u32,
    /// Specs of supervisor children.
    pub supervisors: u32,
    /// Specs of worker children.
    pub workers: u32,
}

/// Start a child of a dynamic supervisor with the template's args and `args` appended
/// (arrays concatenate, maps merge with `args` winning, `()` adds nothing, else the pair
/// `[template_args, args]`); a restart reuses them. Returns the new pid, or `None` if its
/// `init` returned `ignore`. Waits as long as the child's `init` takes, so a child must not
/// start a sibling under its own supervisor from its `init`.
///
/// # Errors
/// [`SupervisorError::NoProc`], [`SupervisorError::WrongStrategy`] for a static supervisor,
/// [`SupervisorError::AlreadyStarted`] if the template's name is taken,
/// [`SupervisorError::Failed`] if the child's `init` stopped or crashed.
pub fn start_child<A: Serialize + ?Sized>(
    supervisor: impl Into<Dest>,
    args: &A,
) -> Result<Option<Pid>, SupervisorError> {
    host::start_child(&supervisor.into().to_wit(), &encode(args)).map_err(SupervisorError::from_wit)
}

/// Stop a dynamic supervisor's child (`terminate(shutdown)` within its shutdown time); it is
/// not restarted.
///
/// # Errors
/// [`SupervisorError::NoProc`], [`SupervisorError::NotFound`] if it has no such child,
/// [`SupervisorError::WrongStrategy`] for a static supervisor.
pub fn terminate_child(supervisor: impl Into<Dest>, child: Pid) -> Result<(), SupervisorError> {
    host::terminate_child(&supervisor.into().to_wit(), child).map_err(SupervisorError::from_wit)
}

/// The supervisor's children in start order.
///
/// # Errors
/// [`SupervisorError::NoProc`].
pub fn which_children(supervisor: impl Into<Dest>) -> Result<Vec<ChildInfo>, SupervisorError> {
    let rows =
        host::which_children(&supervisor.into().to_wit()).map_err(SupervisorError::from_wit)?;
    Ok(rows
        .into_iter()
        .map(|c| ChildInfo {
            id: c.id,
            pid: c.pid,
            supervisor: c.supervisor,
            module: c.module,
            restarts: c.restarts,
        })
        .collect())
}

/// How many specs, running children, supervisors and workers the supervisor has.
///
/// # Errors
/// [`SupervisorError::NoProc`].
pub fn count_children(supervisor: impl Into<Dest>) -> Result<ChildCounts, SupervisorError> {
    let c = host::count_children(&supervisor.into().to_wit()).map_err(SupervisorError::from_wit)?;
    Ok(ChildCounts {
        specs: c.specs,
        active: c.active,
        supervisors: c.supervisors,
        workers: c.workers,
    })
}

/// A child's spec (OTP's `get_childspec`): a static supervisor's child by its id, a dynamic
/// supervisor's template by the template's id or the pid of any of its running children.
///
/// ```no_run
/// use otter_guest::supervisor::{self, Restart};
/// let spec = supervisor::get_childspec("Workers", "cache").unwrap();
/// assert_eq!(spec.restart, Restart::Permanent);
/// ```
///
/// # Errors
/// [`SupervisorError::NoProc`], [`SupervisorError::NotFound`] for an unknown id or pid.
pub fn get_childspec(
    supervisor: impl Into<Dest>,
    child: impl Into<ChildRef>,
) -> Result<ChildSpec, SupervisorError> {
    let child = match child.into() {
        ChildRef::Id(id) => host::ChildRef::Id(id),
        ChildRef::Pid(pid) => host::ChildRef::Pid(pid),
    };
    let s = host::get_childspec(&supervisor.into().to_wit(), &child)
        .map_err(SupervisorError::from_wit)?;
    Ok(ChildSpec {
        id: s.id,
        module: s.module,
        args: s.args,
        restart: match s.restart {
            host::Restart::Permanent => Restart::Permanent,
            host::Restart::Transient => Restart::Transient,
            host::Restart::Temporary => Restart::Temporary,
        },
        shutdown: match s.shutdown {
            host::Shutdown::BrutalKill => Shutdown::BrutalKill,
            host::Shutdown::Timeout(ms) => Shutdown::Timeout(Duration::from_millis(ms.into())),
            host::Shutdown::Infinity => Shutdown::Infinity,
        },
        name: s.name,
    })
}
