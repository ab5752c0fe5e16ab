//! How to start a process: [`SpawnOptions`].

use std::sync::Arc;
use std::time::Duration;

use crate::Pid;
use crate::entry::ExitSender;
use crate::grants::ModuleGrants;
use crate::process_limits::ProcessLimits;
use crate::term::Term;

/// How to start a process.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    pub(crate) name: Option<String>,
    pub(crate) start_timeout: Option<Duration>,
    /// A supervisor's exit channel, registered before the process task starts.
    pub(crate) exit_to: Option<ExitSender>,
    /// How many times its supervisor has restarted this child, for `ps`.
    pub(crate) restarts: u32,
    /// A `via` name: (registry, key).
    pub(crate) via: Option<(String, Term)>,
    /// The supervisor that starts it (OTP's parent): a trapping process terminates on its
    /// exit signal instead of receiving it as an `exit` info.
    pub(crate) parent: Option<Pid>,
    pub(crate) hibernate_after: Option<Duration>,
    /// The process that starts it with `start-link`: linked before the process runs.
    pub(crate) link: Option<Pid>,
    /// `(monitor ref, watcher)` for `start-monitor`: set before the process runs.
    pub(crate) monitor: Option<(u64, Pid)>,
    pub(crate) limits: ProcessLimits,
    /// Its own WASI grants, within its module's; `None`: its module's.
    pub(crate) grants: Option<Arc<ModuleGrants>>,
}

impl SpawnOptions {
    /// Register the process under `name` before `init` runs. Default: no name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Register the process under `key` (CBOR) in the unique registry `registry` before
    /// `init` runs, with the value `null` (OTP's `{via, Registry, {registry, key}}` name).
    /// Default: none.
    pub fn via(mut self, registry: impl Into<String>, key: Term) -> Self {
        self.via = Some((registry.into(), key));
        self
    }

    /// The process's own limits (memory, callback time, mailbox bound). Default: the
    /// node's, and an unbounded mailbox.
    pub fn limits(mut self, limits: ProcessLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Give the process its own WASI grants instead of its module's. They narrow the
    /// module's: each must be within what the module is granted
    /// ([`ModuleGrants::check_within`]), else the start fails with [`StartError::Grants`](crate::StartError::Grants).
    /// Default: the module's grants. A process keeps the grants it started with for its
    /// whole life, also across hibernation and upgrades.
    pub fn grants(mut self, grants: ModuleGrants) -> Self {
        self.grants = Some(Arc::new(grants));
        self
    }

    /// Kill the process and fail with [`StartError::Timeout`](crate::StartError::Timeout) if `init` takes longer.
    /// Default: wait as long as `init` takes (OTP's `infinity`).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = Some(timeout);
        self
    }

    /// Hibernate the process whenever it has waited `idle` for a message with nothing else
    /// to do (OTP's `{hibernate_after, Ms}`): its state is serialized and its instance
    /// dropped until the next message. An idle timeout a callback asked for
    /// (`next::timeout`) takes precedence, as in OTP. Default: never.
    pub fn hibernate_after(mut self, idle: Duration) -> Self {
        self.hibernate_after = Some(idle);
        self
    }
}
