//! The supervisor task: starts children, learns of every exit through one channel, restarts
//! per strategy and intensity, and answers the admin commands.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::policy::{self, Action, AfterExit, Intensity, Restarting, Slot};
use super::{
    ChildCounts, ChildError, ChildFailure, ChildInfo, ChildKind, ChildRef, ChildSpec, ChildStart,
    Restart, Shutdown, Strategy, Supervisor, SupervisorError, SupervisorSpec, shutdown_timeout,
};
use crate::Pid;
use crate::entry::ExitSender;
use crate::error::StartError;
use crate::exit::ExitReason;
use crate::node::{Node, SpawnOptions};
use crate::term::{Term, merge_args};

mod admin;

type Reply<T> = oneshot::Sender<Result<T, ChildError>>;

/// What a [`Supervisor`] handle asks of the task.
#[derive(Debug)]
pub(crate) enum Command {
    Stop,
    Which(oneshot::Sender<Vec<ChildInfo>>),
    Count(oneshot::Sender<ChildCounts>),
    StartChild(ChildSpec, Reply<Option<Pid>>),
    StartDynamic(Term, Reply<Option<Pid>>),
    Terminate(String, Reply<()>),
    TerminatePid(Pid, Reply<()>),
    Restart(String, Reply<Option<Pid>>),
    Delete(String, Reply<()>),
    GetChildspec(ChildRef, Reply<ChildSpec>),
    ReplaceSpec(ChildSpec, Reply<()>),
}

/// A running child.
enum Running {
    Worker(Pid),
    Supervisor(Supervisor),
}

impl Running {
    fn pid(&self) -> Pid {
        match self {
            Running::Worker(p) => *p,
            Running::Supervisor(s) => s.pid(),
        }
    }
}

struct Child {
    spec: ChildSpec,
    running: Option<Running>,
    /// How many times this supervisor restarted it after an exit.
    restarts: u32,
}

impl Child {
    fn pid(&self) -> Option<Pid> {
        self.running.as_ref().map(Running::pid)
    }
}

/// More restarts than the intensity allows.
struct GaveUp;

struct State {
    node: Node,
    pid: Pid,
    /// The local name it is registered under while it runs.
    name: Option<String>,
    strategy: Strategy,
    /// A dynamic supervisor's template.
    template: Option<ChildSpec>,
    children: Vec<Child>,
    /// The restarts counted against the intensity.
    intensity: Intensity,
    exits_tx: ExitSender,
    kill: Arc<Notify>,
    /// Set when it exits for reaching its maximum restart intensity.
    gave_up: Arc<AtomicBool>,
}

/// Start a supervisor (its spec already validated) and its children, then hand it to a task.
/// A nested one has a parent: the parent supervisor's pid and where its exit goes.
///
/// Boxed: starting a supervisor starts its children, which may be supervisors.
pub(crate) fn start(
    node: Node,
    spec: SupervisorSpec,
    parent: Option<(Pid, ExitSender)>,
) -> Pin<Box<dyn Future<Output = Result<Supervisor, SupervisorError>> + Send>> {
    Box::pin(start_inner(node, spec, parent))
}

async fn start_inner(
    node: Node,
    spec: SupervisorSpec,
    parent: Option<(Pid, ExitSender)>,
) -> Result<Supervisor, SupervisorError> {
    let (parent, exit_to) = parent.unzip();
    if node.inner.at_process_limit() {
        return Err(SupervisorError::SystemLimit);
    }
    let pid = node.inner.next_pid();
    let (cmds_tx, cmds_rx) = mpsc::unbounded_channel();
    let (exit_tx, exit_rx) = watch::channel(None);
    let (exits_tx, exits_rx) = mpsc::unbounded_channel();
    let kill = Arc::new(Notify::new());
    let dynamic = spec.strategy == Strategy::SimpleOneForOne;
    let mut specs = spec.children;
    let template = if dynamic { specs.pop() } else { None };
    let gave_up = Arc::new(AtomicBool::new(false));
    let handle = Supervisor {
        pid,
        parent,
        cmds: cmds_tx,
        exit: exit_rx,
        kill: kill.clone(),
        gave_up: gave_up.clone(),
    };
    // Named and reachable before its children start, as OTP registers before `init`.
    if let Some(name) = &spec.name {
        node.inner
            .register_supervisor(name, pid)
            .map_err(SupervisorError::AlreadyStarted)?;
    }
    node.inner.insert_supervisor(pid, handle.clone());
    let mut state = State {
        node,
        pid,
        name: spec.name,
        strategy: spec.strategy,
        template,
        children: specs
            .into_iter()
            .map(|spec| Child {
                spec,
                running: None,
                restarts: 0,
            })
            .collect(),
        intensity: Intensity::new(spec.intensity, spec.period),
        exits_tx,
        kill: kill.clone(),
        gave_up,
    };
    if let Err(e) = state.start_all().await {
        state.forget();
        return Err(e);
    }
    tracing::debug!(supervisor = pid, "supervisor started");
    tokio::spawn(crate::runtime::NodeTask(
        state.run(cmds_rx, exits_rx, exit_tx, exit_to),
    ));
    Ok(handle)
}

/// Stop one child as its shutdown says; returns once it is gone. `parent` is the stopping
/// supervisor: a worker gets its exit signal `shutdown` (OTP's `exit(Child, shutdown)`),
/// which makes it run `terminate(shutdown)`, and is killed if still alive after the timeout.
async fn terminate(node: &Node, parent: Pid, running: Running, shutdown: Shutdown) {
    match running {
        Running::Worker(pid) => {
            let Some(entry) = node.inner.entry(pid) else {
                return;
            };
            let exited = node.inner.watch(&entry);
            if shutdown != Shutdown::BrutalKill {
                node.inner.exit_signal(parent, pid, ExitReason::Shutdown);
                let done = match shutdown_timeout(shutdown) {
                    Some(t) => tokio::time::timeout(t, exited).await.is_ok(),
                    None => {
                        exited.await;
                        true
                    }
                };
                if done {
                    return;
                }
            }
            node.kill(pid);
            node.wait_exit(pid).await;
        }
        Running::Supervisor(sup) => match shutdown_timeout(shutdown) {
            Some(t) if !t.is_zero() => {
                if tokio::time::timeout(t, sup.stop()).await.is_err() {
                    sup.kill().await;
                }
            }
            Some(_) => sup.kill().await,
            None => sup.stop().await,
        },
    }
}

/// Kill one child at once; returns once it is gone.
async fn kill(node: &Node, running: Running) {
    match running {
        Running::Worker(pid) => {
            node.kill(pid);
            node.wait_exit(pid).await;
        }
        Running::Supervisor(sup) => sup.kill().await,
    }
}

impl State {
    fn dynamic(&self) -> bool {
        self.template.is_some()
    }

    /// Free the name and leave the node's supervisor table: the supervisor is exiting.
    fn forget(&self) {
        self.node.inner.remove_supervisor(self.pid);
        if let Some(name) = &self.name {
            self.node.inner.unregister_supervisor(name, self.pid);
        }
    }

    /// Start one child; `restarts` is how many times it has been restarted, for `ps`.
    async fn start_child(
        &self,
        spec: &ChildSpec,
        restarts: u32,
    ) -> Result<Option<Running>, ChildFailure> {
        match &spec.start {
            ChildStart::Worker {
                module,
                args,
                name,
                via,
                start_timeout,
                hibernate_after,
                limits,
                grants,
            } => {
                let opts = SpawnOptions {
                    limits: *limits,
                    grants: grants.clone(),
                    name: name.clone(),
                    via: via.clone(),
                    start_timeout: *start_timeout,
                    hibernate_after: *hibernate_after,
                    exit_to: Some(self.exits_tx.clone()),
                    restarts,
                    parent: Some(self.pid),
                    ..SpawnOptions::default()
                };
                match self.node.spawn(module, args.clone(), opts).await {
                    Ok(pid) => Ok(Some(Running::Worker(pid))),
                    Err(StartError::Ignore) => Ok(None),
                    Err(e) => Err(ChildFailure::Worker(e)),
                }
            }
            ChildStart::Supervisor(sub) => {
                let parent = Some((self.pid, self.exits_tx.clone()));
                start(self.node.clone(), sub.clone(), parent)
                    .await
                    .map(|s| Some(Running::Supervisor(s)))
                    .map_err(|e| ChildFailure::Supervisor(Box::new(e)))
            }
        }
    }

    /// Start the children in order; on a failure, stop those started, in reverse order.
    async fn start_all(&mut self) -> Result<(), SupervisorError> {
        for i in 0..self.children.len() {
            match self.start_child(&self.children[i].spec, 0).await {
                Ok(r) => self.children[i].running = r,
                Err(reason) => {
                    self.stop_all().await;
                    return Err(SupervisorError::Child {
                        id: self.children[i].spec.id.clone(),
                        reason,
                    });
                }
            }
        }
        // An ignored temporary child is dropped.
        self.children
            .retain(|c| c.running.is_some() || c.spec.restart != Restart::Temporary);
        Ok(())
    }

    /// Stop every running child in reverse order; a kill request cuts it short. Returns
    /// whether it was killed.
    async fn stop_all(&mut self) -> bool {
        for i in (0..self.children.len()).rev() {
            let Some(running) = self.children[i].running.take() else {
                continue;
            };
            let shutdown = self.children[i].spec.shutdown;
            let node = self.node.clone();
            let victim = match &running {
                Running::Worker(pid) => Running::Worker(*pid),
                Running::Supervisor(s) => Running::Supervisor(s.clone()),
            };
            let stopping = terminate(&node, self.pid, running, shutdown);
            let killer = self.kill.clone();
            tokio::select! {
                () = stopping => {}
                () = killer.notified() => {
                    // The one being stopped, then the rest.
                    kill(&self.node, victim).await;
                    self.kill_all().await;
                    return true;
                }
            }
        }
        false
    }

    async fn kill_all(&mut self) {
        for i in (0..self.children.len()).rev() {
            if let Some(running) = self.children[i].running.take() {
                kill(&self.node, running).await;
            }
        }
    }

    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Command>,
        mut exits: mpsc::UnboundedReceiver<(Pid, ExitReason)>,
        exit: watch::Sender<Option<ExitReason>>,
        exit_to: Option<ExitSender>,
    ) {
        let mut cmds_open = true;
        let kill = self.kill.clone();
        let reason = loop {
            tokio::select! {
                biased;
                () = kill.notified() => {
                    self.kill_all().await;
                    break ExitReason::Killed;
                }
                Some((pid, reason)) = exits.recv() => {
                    if self.on_exit(pid, reason).await.is_err() {
                        tracing::error!(
                            supervisor = self.pid,
                            intensity = self.intensity.max(),
                            period_ms = self.intensity.period().as_millis() as u64,
                            "supervisor reached its maximum restart intensity; shutting down"
                        );
                        self.gave_up.store(true, Ordering::Relaxed);
                        break if self.stop_all().await {
                            ExitReason::Killed
                        } else {
                            ExitReason::Shutdown
                        };
                    }
                }
                cmd = cmds.recv(), if cmds_open => match cmd {
                    None => cmds_open = false,
                    Some(Command::Stop) => {
                        break if self.stop_all().await {
                            ExitReason::Killed
                        } else {
                            ExitReason::Shutdown
                        };
                    }
                    Some(cmd) => self.admin(cmd).await,
                },
            }
        };
        tracing::debug!(supervisor = self.pid, %reason, "supervisor exited");
        // The name is free before anyone learns of the exit, as a process's is.
        self.forget();
        // Its own supervisor first: whoever waits for this exit may then ask that one.
        if let Some(tx) = exit_to {
            let _ = tx.send((self.pid, reason.clone()));
        }
        exit.send_replace(Some(reason));
    }

    /// A child exited: restart per its restart type and the strategy.
    async fn on_exit(&mut self, pid: Pid, reason: ExitReason) -> Result<(), GaveUp> {
        // Unknown pids are children the supervisor stopped itself, or failed starts.
        let Some(i) = self.children.iter().position(|c| c.pid() == Some(pid)) else {
            return Ok(());
        };
        self.children[i].running = None;
        match policy::after_exit(self.children[i].spec.restart, &reason, self.dynamic()) {
            AfterExit::Keep => Ok(()),
            AfterExit::Remove => {
                self.children.remove(i);
                Ok(())
            }
            AfterExit::Restart => {
                tracing::info!(
                    supervisor = self.pid,
                    child = %self.children[i].spec.id,
                    pid,
                    %reason,
                    "restarting child"
                );
                self.restart(i).await
            }
        }
    }

    /// Restart the child at `i` and, per the strategy, its siblings, as [`Restarting`]
    /// decides.
    async fn restart(&mut self, i: usize) -> Result<(), GaveUp> {
        let mut restarting = Restarting::new(self.strategy, i);
        loop {
            match restarting.next(&mut self.children, &mut self.intensity, Instant::now()) {
                Action::Stop(j) => {
                    if let Some(running) = self.children[j].running.take() {
                        let shutdown = self.children[j].spec.shutdown;
                        terminate(&self.node, self.pid, running, shutdown).await;
                    }
                }
                Action::Start(j) => {
                    let restarts = self.children[j].restarts.saturating_add(1);
                    match self.start_child(&self.children[j].spec, restarts).await {
                        Ok(r) => {
                            crate::metering::restarted(
                                self.name.as_deref().unwrap_or("<unnamed>"),
                                &self.children[j].spec.id,
                            );
                            self.children[j].running = r;
                            self.children[j].restarts = restarts;
                        }
                        Err(e) => {
                            tracing::error!(
                                supervisor = self.pid,
                                child = %self.children[j].spec.id,
                                error = %e,
                                "child failed to restart"
                            );
                            restarting.start_failed();
                            // A start may fail without ever waiting (a name held, the
                            // process limit): retrying at once must not hold the worker.
                            tokio::task::yield_now().await;
                        }
                    }
                }
                Action::Done => return Ok(()),
                Action::GiveUp => return Err(GaveUp),
            }
        }
    }
}

impl Slot for Child {
    fn restart(&self) -> Restart {
        self.spec.restart
    }

    fn is_running(&self) -> bool {
        self.running.is_some()
    }
}

impl Drop for State {
    /// A supervisor that goes away with children still running (its task panicked, or the
    /// runtime is ending) sends them its exit signal, as OTP's links from a dead parent do:
    /// workers run `terminate(shutdown)`, nested supervisors stop. After a stop or a kill no
    /// child is running, so nothing is sent twice.
    fn drop(&mut self) {
        for c in &self.children {
            match &c.running {
                Some(Running::Worker(pid)) => {
                    self.node
                        .inner
                        .exit_signal(self.pid, *pid, ExitReason::Shutdown)
                }
                Some(Running::Supervisor(s)) => {
                    let _ = s.cmds.send(Command::Stop);
                }
                None => {}
            }
        }
    }
}

fn kind(spec: &ChildSpec) -> ChildKind {
    match spec.start {
        ChildStart::Worker { .. } => ChildKind::Worker,
        ChildStart::Supervisor(_) => ChildKind::Supervisor,
    }
}
