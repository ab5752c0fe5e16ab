//! Supervisor and child specs, and their validation.

use std::collections::HashSet;
use std::time::Duration;

use crate::Pid;
use crate::process_limits::ProcessLimits;
use crate::term::Term;

/// How long a worker gets for `terminate` when its supervisor stops it, unless its spec says
/// otherwise: 5 s, as OTP's and Elixir's default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The period over which a supervisor counts restarts, unless its spec says otherwise: 5 s,
/// as Elixir's default (with an intensity of 3).
pub(crate) const DEFAULT_PERIOD: Duration = Duration::from_secs(5);

/// Which children restart when one must (OTP's restart strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the child that exited restarts.
    #[default]
    OneForOne,
    /// All children stop (reverse order, the exited one excepted), then all start again in
    /// order.
    OneForAll,
    /// The children started after the exited one stop (reverse order), then it and they
    /// start again in order; earlier ones keep running.
    RestForOne,
    /// A dynamic supervisor: exactly one child spec, a template; children are added with
    /// [`Supervisor::start_child_with`](super::Supervisor::start_child_with) and restart as
    /// with `OneForOne`. A child that exits and is not restarted is forgotten.
    SimpleOneForOne,
}

/// When a child is restarted; see the table on [`Supervisor`](super::Supervisor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always restarted. The default.
    #[default]
    Permanent,
    /// Restarted only after a crash (`error(..)` or `killed`).
    Transient,
    /// Never restarted; its spec is removed when it exits.
    Temporary,
}

/// OTP's names for the variants of a plain enum, one spelling each: how the manifest, the
/// control endpoint and the CLI read and write them.
macro_rules! otp_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// Its name in OTP (and in the manifest): e.g. `one_for_one`, `permanent`.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The variant with this OTP name.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }

            /// Every name, for a message that lists them: `a, b, c`.
            pub(crate) fn names() -> String {
                Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_name(&name).ok_or_else(|| {
                    serde::de::Error::custom(format!("expected one of {}", Self::names()))
                })
            }
        }
    };
}

otp_names!(Strategy {
    OneForOne => "one_for_one",
    OneForAll => "one_for_all",
    RestForOne => "rest_for_one",
    SimpleOneForOne => "simple_one_for_one",
});

otp_names!(Restart {
    Permanent => "permanent",
    Transient => "transient",
    Temporary => "temporary",
});

/// How a child is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// `terminate(shutdown)`, then a kill if it is still running after this long. The
    /// default for workers: 5000 ms.
    Timeout(Duration),
    /// Killed at once; `terminate` does not run.
    BrutalKill,
    /// `terminate(shutdown)`, waiting as long as it takes. The default for supervisors.
    Infinity,
}

/// What a child is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildStart {
    /// A process of a loaded module, started with these CBOR args.
    Worker {
        /// The module's name.
        module: String,
        /// The CBOR args given to `init`.
        args: Term,
        /// A name to register the process under.
        name: Option<String>,
        /// A `via` name, `(registry, key)` with the key as CBOR: each start registers the
        /// process under the key in that unique registry (OTP's `{via, Registry, Key}`).
        via: Option<(String, Term)>,
        /// How long `init` may take; a child still in `init` after it is killed and its
        /// start fails with [`StartError::Timeout`](crate::StartError::Timeout). `None`
        /// waits as long as `init` takes (OTP's `infinity`).
        start_timeout: Option<Duration>,
        /// Hibernate the process whenever it has been idle this long (OTP's
        /// `hibernate_after`); `None` never does.
        hibernate_after: Option<Duration>,
        /// Its own limits (memory, callback time, mailbox bound); the default is the node's.
        limits: ProcessLimits,
        /// Its own WASI grants, within its module's (see
        /// [`SpawnOptions::grants`](crate::SpawnOptions::grants)); `None`: its module's.
        grants: Option<std::sync::Arc<crate::ModuleGrants>>,
    },
    /// A supervisor.
    Supervisor(SupervisorSpec),
}

/// Which child [`Supervisor::get_childspec`](crate::supervisor::Supervisor::get_childspec)
/// means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildRef {
    /// The child spec's id.
    Id(String),
    /// A running child of a dynamic supervisor (a static supervisor's children are found by
    /// id only, as in OTP).
    Pid(Pid),
}

/// One child of a supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec {
    /// Unique among the supervisor's children.
    pub id: String,
    /// What to start.
    pub start: ChildStart,
    /// When to restart it. Default [`Restart::Permanent`].
    pub restart: Restart,
    /// How to stop it. Default 5000 ms for workers, [`Shutdown::Infinity`] for supervisors.
    pub shutdown: Shutdown,
}

impl ChildSpec {
    /// A permanent worker with a 5000 ms shutdown.
    pub fn worker(id: impl Into<String>, module: impl Into<String>, args: Term) -> ChildSpec {
        ChildSpec {
            id: id.into(),
            start: ChildStart::Worker {
                module: module.into(),
                args,
                name: None,
                via: None,
                start_timeout: None,
                hibernate_after: None,
                limits: ProcessLimits::default(),
                grants: None,
            },
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(DEFAULT_SHUTDOWN_TIMEOUT),
        }
    }

    /// A permanent supervisor with an infinite shutdown.
    pub fn supervisor(id: impl Into<String>, spec: SupervisorSpec) -> ChildSpec {
        ChildSpec {
            id: id.into(),
            start: ChildStart::Supervisor(spec),
            restart: Restart::Permanent,
            shutdown: Shutdown::Infinity,
        }
    }

    /// Register a worker under `name` (each start registers it again).
    ///
    /// # Panics
    /// On a supervisor child: a programmer error.
    pub fn name(mut self, name: impl Into<String>) -> ChildSpec {
        match &mut self.start {
            ChildStart::Worker { name: n, .. } => *n = Some(name.into()),
            ChildStart::Supervisor(_) => panic!("only a worker child can be named"),
        }
        self
    }

    /// Register a worker under `key` (CBOR) in the unique registry `registry`, as
    /// [`SpawnOptions::via`](crate::SpawnOptions::via) does; each start registers it again,
    /// so a restarted child is reachable under the same key. Default: none. A child has
    /// either a name or a `via` name, as in OTP.
    ///
    /// # Panics
    /// On a supervisor child: a programmer error.
    pub fn via(mut self, registry: impl Into<String>, key: Term) -> ChildSpec {
        match &mut self.start {
            ChildStart::Worker { via, .. } => *via = Some((registry.into(), key)),
            ChildStart::Supervisor(_) => panic!("only a worker child can have a via name"),
        }
        self
    }

    /// Kill a worker whose `init` has not returned after `timeout`; its start (or restart)
    /// then fails with [`StartError::Timeout`](crate::StartError::Timeout). Default: wait
    /// as long as `init` takes.
    ///
    /// # Panics
    /// On a supervisor child: a programmer error.
    pub fn start_timeout(mut self, timeout: Duration) -> ChildSpec {
        match &mut self.start {
            ChildStart::Worker { start_timeout, .. } => *start_timeout = Some(timeout),
            ChildStart::Supervisor(_) => panic!("only a worker child has a start timeout"),
        }
        self
    }

    /// Hibernate the worker whenever it has waited `idle` for a message, as
    /// [`SpawnOptions::hibernate_after`](crate::SpawnOptions::hibernate_after) does. Default:
    /// never.
    ///
    /// # Panics
    /// On a supervisor child: a programmer error.
    pub fn hibernate_after(mut self, idle: Duration) -> ChildSpec {
        match &mut self.start {
            ChildStart::Worker {
                hibernate_after, ..
            } => *hibernate_after = Some(idle),
            ChildStart::Supervisor(_) => panic!("only a worker child hibernates"),
        }
        self
    }

    /// Give the worker its own limits, as
    /// [`SpawnOptions::limits`](crate::SpawnOptions::limits) does. Default: the node's.
    ///
    /// # Panics
    /// On a supervisor child: a programmer error.
    pub fn limits(mut self, own: ProcessLimits) -> ChildSpec {
        match &mut self.start {
            ChildStart::Worker { limits, .. } => *limits = own,
            ChildStart::Supervisor(_) => panic!("only a worker child has process limits"),
        }
        self
    }

    /// Give the worker its own WASI grants, as
    /// [`SpawnOptions::grants`](crate::SpawnOptions::grants) does: within its module's, or
    /// its start fails. Default: its module's. Each start takes them afresh, so a restart
    /// after the module's grants changed is checked against the new ones.
    ///
    /// # Panics
    /// On a supervisor child: a programmer error.
    pub fn grants(mut self, own: crate::ModuleGrants) -> ChildSpec {
        match &mut self.start {
            ChildStart::Worker { grants, .. } => *grants = Some(std::sync::Arc::new(own)),
            ChildStart::Supervisor(_) => panic!("only a worker child has grants"),
        }
        self
    }

    /// Set the restart type. Default [`Restart::Permanent`].
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// Set the shutdown. Default 5000 ms for workers, infinity for supervisors.
    pub fn shutdown(mut self, shutdown: Shutdown) -> ChildSpec {
        self.shutdown = shutdown;
        self
    }

    pub(crate) fn module(&self) -> &str {
        match &self.start {
            ChildStart::Worker { module, .. } => module,
            ChildStart::Supervisor(_) => "supervisor",
        }
    }
}

/// A supervisor: its strategy, restart intensity and children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorSpec {
    /// Which children restart together.
    pub strategy: Strategy,
    /// Restarts allowed within `period` (OTP's MaxR). Default 3.
    pub intensity: u32,
    /// The intensity window (OTP's MaxT). Default 5 s; must not be zero.
    pub period: Duration,
    /// The children, in start order (for a dynamic supervisor: the one template).
    pub children: Vec<ChildSpec>,
    /// A local name to register the supervisor under while it runs, so that
    /// [`Node::supervisor`](crate::Node::supervisor) and guests (`start-child`) reach it.
    /// Default none.
    pub name: Option<String>,
}

impl Default for SupervisorSpec {
    fn default() -> Self {
        SupervisorSpec::new(Strategy::OneForOne)
    }
}

impl SupervisorSpec {
    /// A spec with no children, intensity 3 and period 5 s.
    pub fn new(strategy: Strategy) -> SupervisorSpec {
        SupervisorSpec {
            strategy,
            intensity: 3,
            period: DEFAULT_PERIOD,
            children: Vec::new(),
            name: None,
        }
    }

    /// Add a child at the end.
    pub fn child(mut self, child: ChildSpec) -> SupervisorSpec {
        self.children.push(child);
        self
    }

    /// Register the supervisor under `name` while it runs (each restart registers it again).
    /// Default: no name.
    pub fn name(mut self, name: impl Into<String>) -> SupervisorSpec {
        self.name = Some(name.into());
        self
    }

    /// Set the intensity (default 3) and period (default 5 s).
    pub fn intensity(mut self, intensity: u32, period: Duration) -> SupervisorSpec {
        self.intensity = intensity;
        self.period = period;
        self
    }

    /// Check the whole tree; the error names the first bad field by its path.
    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        self.validate_at("")
    }

    fn validate_at(&self, at: &str) -> Result<(), SpecError> {
        let err = |field: String, reason: &str| SpecError {
            field,
            reason: reason.to_owned(),
        };
        if self.period.is_zero() {
            return Err(err(format!("{at}period"), "must be positive"));
        }
        if self.name.as_deref() == Some("") {
            return Err(err(format!("{at}name"), "must not be empty"));
        }
        if self.strategy == Strategy::SimpleOneForOne && self.children.len() != 1 {
            return Err(err(
                format!("{at}children"),
                "a simple_one_for_one supervisor needs exactly one child spec (the template)",
            ));
        }
        let mut ids = HashSet::new();
        for (i, child) in self.children.iter().enumerate() {
            let here = format!("{at}children[{i}].");
            child.validate_at(&here)?;
            if !ids.insert(child.id.as_str()) {
                return Err(err(format!("{here}id"), "duplicate child id"));
            }
        }
        Ok(())
    }
}

impl ChildSpec {
    pub(crate) fn validate_at(&self, at: &str) -> Result<(), SpecError> {
        let err = |field: &str, reason: &str| SpecError {
            field: format!("{at}{field}"),
            reason: reason.to_owned(),
        };
        if self.id.is_empty() {
            return Err(err("id", "must not be empty"));
        }
        match &self.start {
            ChildStart::Worker {
                module,
                name,
                via,
                start_timeout,
                hibernate_after,
                ..
            } => {
                if module.is_empty() {
                    return Err(err("module", "must not be empty"));
                }
                if name.as_deref() == Some("") {
                    return Err(err("name", "must not be empty"));
                }
                match via {
                    Some((registry, _)) if registry.is_empty() => {
                        return Err(err("via", "the registry's name must not be empty"));
                    }
                    Some(_) if name.is_some() => {
                        return Err(err("via", "give either name or via, not both"));
                    }
                    _ => {}
                }
                if start_timeout.is_some_and(|t| t.is_zero()) {
                    return Err(err("start_timeout", "must be positive"));
                }
                if hibernate_after.is_some_and(|t| t.is_zero()) {
                    return Err(err("hibernate_after", "must be positive"));
                }
            }
            ChildStart::Supervisor(spec) => spec.validate_at(at)?,
        }
        if let Shutdown::Timeout(t) = self.shutdown
            && t.is_zero()
        {
            return Err(err(
                "shutdown",
                "a zero timeout is not allowed; use brutal_kill",
            ));
        }
        Ok(())
    }
}

/// An invalid supervisor or child spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SpecError {
    /// The path of the bad field, e.g. `children[2].id` or `period`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}
