//! Supervisors: host tasks that start, watch and restart processes, as OTP's `supervisor`.

mod policy;
mod server;
mod spec;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::Pid;
use crate::error::StartError;
use crate::exit::ExitReason;
use crate::term::Term;

pub(crate) use spec::DEFAULT_PERIOD;
pub use spec::{
    ChildRef, ChildSpec, ChildStart, DEFAULT_SHUTDOWN_TIMEOUT, Restart, Shutdown, SpecError,
    Strategy, SupervisorSpec,
};

pub(crate) use server::start;

/// A running supervisor, which starts, watches and restarts processes as OTP's `supervisor`.
/// Cheap to clone; every clone is the same supervisor.
///
/// ```no_run
/// # async fn demo(node: otter::Node) -> anyhow::Result<()> {
/// use otter::{ChildSpec, Strategy, SupervisorSpec};
/// let spec = SupervisorSpec::new(Strategy::OneForOne)
///     .child(ChildSpec::worker("cache", "kv", otter::encode(&())?).name("cache"))
///     .child(ChildSpec::worker("echo", "echo", otter::encode(&())?));
/// let sup = node.start_supervisor(spec).await?;
/// // `cache` crashes → the supervisor starts a new one under the same name.
/// sup.stop().await;
/// # Ok(()) }
/// ```
///
/// A supervisor is not a wasm process: it is a tokio task owned by the host. It still has a
/// pid from the node's pid space (so a parent can list it), but it is not in
/// [`Node::processes`](crate::Node::processes) and `Node::kill` does not reach it.
/// It keeps running when every [`Supervisor`] handle is dropped; stop it with
/// [`Supervisor::stop`] before [`Node::shutdown`](crate::Node::shutdown), which does not know
/// supervisors.
///
/// ## Starting
///
/// Children start one after the other in list order, each once the previous one's `init`
/// has returned. If one fails, those already started are stopped in reverse order, later
/// ones never start, and [`Node::start_supervisor`](crate::Node::start_supervisor) fails with
/// [`SupervisorError::Child`] naming it. A child whose `init` returns `ignore` is not a
/// failure: a permanent or transient spec is kept with no pid, a temporary one is dropped.
/// A worker with a [`ChildSpec::start_timeout`] still in `init` after it is killed, and its
/// start fails with [`StartError::Timeout`]: at the supervisor's start that fails the start
/// as above; on a restart it is a failed restart, which counts towards the intensity and
/// is retried.
///
/// ## Exit reasons and restarts
///
/// | reason | permanent | transient | temporary |
/// |---|---|---|---|
/// | `normal`, `shutdown`, `shutdown(term)` | restarted | spec kept, no pid | spec removed |
/// | `error(..)` (trap, panic, chosen), `killed` | restarted | restarted | spec removed |
///
/// A crash is logged (at error level) by the process itself; a restart is logged at info
/// level by the supervisor. Which siblings restart with the child is the [`Strategy`].
///
/// ## Restart intensity
///
/// More than [`SupervisorSpec::intensity`] restarts within [`SupervisorSpec::period`] make
/// the supervisor give up: it stops all its children (reverse order) and exits `shutdown`.
/// A parent supervisor sees that exit like any child's: it restarts a permanent inner
/// supervisor, and leaves a transient one stopped (`shutdown` is a clean exit).
///
/// ## Stopping
///
/// [`Supervisor::stop`] stops the children in reverse start order, each as its
/// [`Shutdown`] says, then the supervisor exits `shutdown`;
/// [`Node::stop_supervisor`](crate::Node::stop_supervisor) does the same by name, a nested
/// supervisor through its parent. A worker is stopped with the supervisor's exit signal
/// `shutdown`: the supervisor is its parent, so the worker runs `terminate(shutdown)` and
/// exits `shutdown`, whether or not it traps exits, and is killed if it overruns its
/// shutdown timeout. Another process's exit signal reaches a trapping worker as an `exit`
/// info, as usual. Killing a supervisor (a `brutal_kill` or overrun shutdown of a nested
/// one) kills its subtree without `terminate`.
#[derive(Clone, Debug)]
pub struct Supervisor {
    pid: Pid,
    /// The supervisor it is a child of, if nested.
    parent: Option<Pid>,
    cmds: mpsc::UnboundedSender<server::Command>,
    exit: watch::Receiver<Option<ExitReason>>,
    kill: Arc<Notify>,
    gave_up: Arc<AtomicBool>,
}

/// Why a supervisor did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// The spec is invalid; nothing was started.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The supervisor's name is held by this pid; nothing was started.
    #[error("already started as {0}")]
    AlreadyStarted(Pid),
    /// The node holds its maximum number of processes, supervisors included
    /// ([`NodeConfig::max_processes`](crate::NodeConfig::max_processes)); nothing was started.
    #[error("system_limit: the node holds its maximum number of processes")]
    SystemLimit,
    /// A child failed to start; the children started before it were stopped.
    #[error("child {id:?} failed to start: {reason}")]
    Child {
        /// The child's id.
        id: String,
        /// Why it failed.
        reason: ChildFailure,
    },
}

/// Why one child failed to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChildFailure {
    /// A worker's start failed (its `init` stopped or crashed, its name was taken, ...).
    #[error(transparent)]
    Worker(StartError),
    /// A child supervisor failed to start.
    #[error(transparent)]
    Supervisor(Box<SupervisorError>),
}

/// Why a child administration call failed, with OTP's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChildError {
    /// No child spec with this id (or no child with this pid).
    #[error("not_found")]
    NotFound,
    /// `restart_child`/`delete_child` on a running child.
    #[error("running")]
    Running,
    /// `start_child` with the id of a running child, which has this pid.
    #[error("already_started({0})")]
    AlreadyStarted(Pid),
    /// `start_child` with the id of a stopped child whose spec is kept.
    #[error("already_present")]
    AlreadyPresent,
    /// The child was refused or failed to start.
    #[error(transparent)]
    Start(#[from] SupervisorError),
    /// An operation by id on a dynamic supervisor, or by template args on a static one.
    #[error("not supported by this supervisor's strategy")]
    WrongStrategy,
    /// The supervisor has exited.
    #[error("the supervisor has exited")]
    NoProc,
    /// A dynamic child's extra args are not one well-formed term (OTP's `badarg`).
    #[error("badarg: {0}")]
    Badarg(String),
}

/// Whether a child is a worker process or a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// A wasm process.
    Worker,
    /// A supervisor.
    Supervisor,
}

/// One row of [`Supervisor::which_children`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChildInfo {
    /// The spec's id (for a dynamic supervisor's children, the template's id).
    pub id: String,
    /// Its pid, `None` if it is not running.
    pub pid: Option<Pid>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// The worker's module; `supervisor` for a supervisor.
    pub module: String,
    /// How many times the supervisor has restarted this child after an exit (its own or,
    /// with `one_for_all` and `rest_for_one`, a sibling's). Starts by
    /// [`Supervisor::restart_child`] do not count.
    pub restarts: u32,
    /// A supervisor child's own children (empty for workers and stopped supervisors).
    pub children: Vec<ChildInfo>,
}

/// What [`Supervisor::count_children`] returns, as OTP's `count_children`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ChildCounts {
    /// Child specs, running or not.
    pub specs: usize,
    /// Running children.
    pub active: usize,
    /// Specs of supervisor children.
    pub supervisors: usize,
    /// Specs of worker children.
    pub workers: usize,
}

impl Supervisor {
    /// Whether it is a root supervisor (no parent supervisor stops or restarts it).
    pub(crate) fn is_root(&self) -> bool {
        self.parent.is_none()
    }

    /// The supervisor that started it, if it is not a root.
    pub(crate) fn parent(&self) -> Option<Pid> {
        self.parent
    }

    /// The supervisor's pid (from the node's pid space; not a process).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether it is still running.
    pub fn is_alive(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// Whether it exited because it reached its maximum restart intensity (OTP logs
    /// `reached_max_restart_intensity`; the exit reason is `shutdown` either way). False
    /// while it runs and after a [`Supervisor::stop`].
    pub fn gave_up(&self) -> bool {
        !self.is_alive() && self.gave_up.load(Ordering::Relaxed)
    }

    /// Wait until the supervisor exits and return its reason.
    pub async fn wait_exit(&self) -> ExitReason {
        let mut rx = self.exit.clone();
        let seen = rx.wait_for(Option::is_some).await.map(|r| r.clone());
        match seen {
            Ok(r) => r.unwrap_or(ExitReason::Killed),
            Err(_) => rx.borrow().clone().unwrap_or(ExitReason::Killed),
        }
    }

    /// Stop the children in reverse start order (each as its [`Shutdown`] says), then exit
    /// `shutdown`. Returns once it has exited; a no-op if it already has.
    pub async fn stop(&self) {
        let _ = self.cmds.send(server::Command::Stop);
        self.wait_exit().await;
    }

    /// Kill every child at once (no `terminate`), then exit `killed`.
    pub(crate) async fn kill(&self) {
        self.kill.notify_one();
        self.wait_exit().await;
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> server::Command,
    ) -> Result<T, ChildError> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(make(tx)).map_err(|_| ChildError::NoProc)?;
        rx.await.map_err(|_| ChildError::NoProc)
    }

    /// Every child spec, in start order, with its pid if running (OTP's `which_children`).
    ///
    /// # Errors
    /// [`ChildError::NoProc`] if the supervisor has exited.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, ChildError> {
        self.ask(server::Command::Which).await
    }

    /// How many specs, running children, supervisors and workers (OTP's `count_children`). A
    /// dynamic supervisor has one spec, its template, whatever its children.
    ///
    /// # Errors
    /// [`ChildError::NoProc`] if the supervisor has exited.
    pub async fn count_children(&self) -> Result<ChildCounts, ChildError> {
        self.ask(server::Command::Count).await
    }

    /// Add a child spec at the end and start it; `Ok(None)` if its `init` returned `ignore`.
    ///
    /// # Errors
    /// [`ChildError::AlreadyStarted`] if a child with this id is running,
    /// [`ChildError::AlreadyPresent`] if its spec is kept but stopped, [`ChildError::Start`]
    /// if the spec is invalid or the child fails to start (the spec is then not kept),
    /// [`ChildError::WrongStrategy`] on a dynamic supervisor.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Option<Pid>, ChildError> {
        self.ask(|tx| server::Command::StartChild(spec, tx)).await?
    }

    /// Start a child of a dynamic ([`Strategy::SimpleOneForOne`]) supervisor from its
    /// template. The child's args are the template's args with `extra` appended, and a
    /// restart reuses them:
    ///
    /// - both CBOR arrays: the concatenation (OTP's `Args ++ ExtraArgs`);
    /// - both CBOR maps: the template's map with `extra`'s entries added, `extra` winning on
    ///   equal keys;
    /// - `extra` is `null`: the template's args unchanged;
    /// - otherwise: the two-element array `[template_args, extra]`.
    ///
    /// # Errors
    /// [`ChildError::Start`] if the child fails to start, [`ChildError::WrongStrategy`] on
    /// a static supervisor.
    pub async fn start_child_with(&self, extra: Term) -> Result<Option<Pid>, ChildError> {
        self.ask(|tx| server::Command::StartDynamic(extra, tx))
            .await?
    }

    /// Stop a child as its [`Shutdown`] says; its spec is kept (unless temporary).
    ///
    /// # Errors
    /// [`ChildError::NotFound`] for an unknown id; [`ChildError::WrongStrategy`] on a dynamic
    /// supervisor (use [`Supervisor::terminate_child_pid`]).
    pub async fn terminate_child(&self, id: &str) -> Result<(), ChildError> {
        let id = id.to_owned();
        self.ask(|tx| server::Command::Terminate(id, tx)).await?
    }

    /// Stop a dynamic supervisor's child by pid; its spec goes with it.
    ///
    /// # Errors
    /// [`ChildError::NotFound`] if no child has this pid, and on a static supervisor for any
    /// pid (as OTP 25 answers: a static supervisor's children are named by id).
    pub async fn terminate_child_pid(&self, pid: Pid) -> Result<(), ChildError> {
        self.ask(|tx| server::Command::TerminatePid(pid, tx))
            .await?
    }

    /// Start a stopped child from its kept spec; `Ok(None)` if its `init` returned `ignore`.
    ///
    /// # Errors
    /// [`ChildError::Running`] if it is running, [`ChildError::NotFound`] for an unknown (or
    /// deleted) id, [`ChildError::Start`] if it fails to start.
    pub async fn restart_child(&self, id: &str) -> Result<Option<Pid>, ChildError> {
        let id = id.to_owned();
        self.ask(|tx| server::Command::Restart(id, tx)).await?
    }

    /// A child's spec (OTP's `get_childspec`): a static supervisor's child by its id; a
    /// dynamic supervisor's template, by the template's id or the pid of any of its running
    /// children.
    ///
    /// # Errors
    /// [`ChildError::NotFound`] for an unknown id or pid (a static supervisor's children by
    /// pid included), [`ChildError::NoProc`] if the supervisor has exited.
    pub async fn get_childspec(&self, child: ChildRef) -> Result<ChildSpec, ChildError> {
        self.ask(|tx| server::Command::GetChildspec(child, tx))
            .await?
    }

    /// Give a child a new spec, as OTP's supervisor `code_change` does in a release
    /// upgrade: the child keeps running with its pid and restart count, and its next
    /// (re)start uses the new spec. On a dynamic supervisor `spec` replaces the template
    /// (its id must be the template's); running children keep the args they started with.
    ///
    /// # Errors
    /// [`ChildError::NotFound`] for an unknown id; [`ChildError::Start`] for an invalid
    /// spec; [`ChildError::Badarg`] if a worker would become a supervisor or the reverse;
    /// [`ChildError::NoProc`] if the supervisor has exited.
    pub async fn replace_child_spec(&self, spec: ChildSpec) -> Result<(), ChildError> {
        self.ask(|tx| server::Command::ReplaceSpec(spec, tx))
            .await?
    }

    /// Forget a stopped child's spec.
    ///
    /// # Errors
    /// [`ChildError::Running`] if it is running, [`ChildError::NotFound`] for an unknown id.
    pub async fn delete_child(&self, id: &str) -> Result<(), ChildError> {
        let id = id.to_owned();
        self.ask(|tx| server::Command::Delete(id, tx)).await?
    }
}

/// How long a stop waits, per [`Shutdown`].
pub(crate) fn shutdown_timeout(s: Shutdown) -> Option<Duration> {
    match s {
        Shutdown::Timeout(t) => Some(t),
        Shutdown::BrutalKill => Some(Duration::ZERO),
        Shutdown::Infinity => None,
    }
}
