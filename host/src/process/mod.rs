//! One process: a component instance in its own store, driven by one tokio task.
//!
//! The task takes signals before messages, runs one callback at a time, honours what each
//! callback returns next (continue before any queued message, idle timeout, hibernate), and
//! on exit frees its name, answers pending callers and notifies its monitors. A trap ends
//! the process alone; a kill aborts the task, which drops the store wherever it was.

mod batch;
mod serve;
mod upgrade;

pub(crate) use upgrade::{Prepared, Refusal, UpgradeOrder};

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::engine::Module;
use crate::error::{CallError, StartError};
use crate::exit::ExitReason;
use crate::host::ProcessCtx;
use crate::mailbox::{MailboxSender, ReplySlot, mailbox};
use crate::node::{NodeInner, ProcessInfo, SpawnOptions};
use crate::term::Term;

pub(crate) use otter_common::Pid;

/// Who is told when a process exits.
pub(crate) enum Watcher {
    /// A process monitor: a `down` message goes to `watcher`.
    Monitor { mref: u64, watcher: Pid },
    /// Someone in Rust waiting for the exit (stop, wait_exit).
    Waiter(oneshot::Sender<ExitReason>),
    /// A supervisor: `(pid, reason)` goes down its exit channel.
    Channel(ExitSender),
}

/// Where a supervisor learns of its children's exits.
pub(crate) type ExitSender = tokio::sync::mpsc::UnboundedSender<(Pid, ExitReason)>;

/// A process as the rest of the node sees it.
pub(crate) struct ProcessEntry {
    pub(crate) pid: Pid,
    /// The module whose code it runs (changed by an upgrade); `None` for a process of the
    /// embedding program (`Node::embedded_process`).
    module: Mutex<Option<Arc<Module>>>,
    pub(crate) mailbox: MailboxSender,
    pub(crate) name: Mutex<Option<String>>,
    started: Instant,
    /// How many times its supervisor had restarted its child spec.
    restarts: u32,
    /// Its supervisor's pid: an exit signal from it is an order to terminate, not a message.
    parent: Option<Pid>,
    hibernating: AtomicBool,
    /// Bytes of linear memory, kept current by the store's limiter.
    pub(crate) memory: Arc<AtomicUsize>,
    exit: OnceLock<ExitReason>,
    /// `None` once the process has exited: nobody may watch it any more.
    watchers: Mutex<Option<Vec<Watcher>>>,
    /// Linked processes; `None` once the process has exited.
    links: Mutex<Option<HashSet<Pid>>>,
    abort: OnceLock<AbortHandle>,
    /// Set by a kill; read after `abort` is set, so a kill that comes before the task
    /// exists is not lost.
    kill_requested: AtomicBool,
}

/// What `ps` shows as the module of a process of the embedding program.
pub(crate) const EMBEDDED_MODULE: &str = "<embedded>";

impl ProcessEntry {
    /// A new process's entry, watched from the start by `opts.exit_to` (a supervisor),
    /// `opts.monitor` and linked to `opts.link` (a starter).
    pub(crate) fn new(
        pid: Pid,
        module: Option<Arc<Module>>,
        mailbox: MailboxSender,
        opts: &SpawnOptions,
    ) -> Self {
        let mut watchers: Vec<Watcher> = opts
            .exit_to
            .clone()
            .map(Watcher::Channel)
            .into_iter()
            .collect();
        if let Some((mref, watcher)) = opts.monitor {
            watchers.push(Watcher::Monitor { mref, watcher });
        }
        ProcessEntry {
            pid,
            module: Mutex::new(module),
            mailbox,
            name: Mutex::new(None),
            started: Instant::now(),
            restarts: opts.restarts,
            parent: opts.parent,
            hibernating: AtomicBool::new(false),
            memory: Arc::new(AtomicUsize::new(0)),
            exit: OnceLock::new(),
            // Registered before the process runs, so that no exit of it, however early, goes
            // unobserved (OTP's `start_link` and `start_monitor` are atomic).
            watchers: Mutex::new(Some(watchers)),
            links: Mutex::new(Some(opts.link.into_iter().collect())),
            abort: OnceLock::new(),
            kill_requested: AtomicBool::new(false),
        }
    }

    /// The module whose code it runs now.
    pub(crate) fn module(&self) -> Option<Arc<Module>> {
        self.module.lock().expect("module lock").clone()
    }

    /// After an upgrade: it runs `module`'s code now.
    pub(crate) fn set_module(&self, module: Arc<Module>) {
        *self.module.lock().expect("module lock") = Some(module);
    }

    /// The module's name, or [`EMBEDDED_MODULE`].
    pub(crate) fn module_name(&self) -> String {
        self.module()
            .map_or_else(|| EMBEDDED_MODULE.to_owned(), |m| m.name().to_owned())
    }

    /// Let a kill abort `task`; aborts it now if a kill came first.
    pub(crate) fn set_abort(&self, task: AbortHandle) {
        let _ = self.abort.set(task.clone());
        if self.kill_requested.load(Ordering::SeqCst) {
            task.abort();
        }
    }

    pub(crate) fn exit_reason(&self) -> ExitReason {
        self.exit.get().cloned().unwrap_or(ExitReason::Killed)
    }

    /// Add a watcher; gives it back if the process has already exited.
    pub(crate) fn add_watcher(&self, w: Watcher) -> Result<(), Watcher> {
        match self.watchers.lock().expect("watchers lock").as_mut() {
            Some(list) => {
                list.push(w);
                Ok(())
            }
            None => Err(w),
        }
    }

    pub(crate) fn remove_monitor(&self, mref: u64) {
        if let Some(list) = self.watchers.lock().expect("watchers lock").as_mut() {
            list.retain(|w| !matches!(w, Watcher::Monitor { mref: m, .. } if *m == mref));
        }
    }

    /// Add a link to `other`; false if this process has exited.
    pub(crate) fn add_link(&self, other: Pid) -> bool {
        match self.links.lock().expect("links lock").as_mut() {
            Some(set) => {
                set.insert(other);
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove_link(&self, other: Pid) {
        if let Some(set) = self.links.lock().expect("links lock").as_mut() {
            set.remove(&other);
        }
    }

    pub(crate) fn kill(&self) {
        self.kill_requested.store(true, Ordering::SeqCst);
        if let Some(abort) = self.abort.get() {
            abort.abort();
        }
    }

    pub(crate) fn is_hibernating(&self) -> bool {
        self.hibernating.load(Ordering::Relaxed)
    }

    pub(crate) fn info(&self) -> ProcessInfo {
        let module = self.module();
        ProcessInfo {
            pid: self.pid,
            name: self.name.lock().expect("name lock").clone(),
            module: module
                .as_ref()
                .map_or(EMBEDDED_MODULE, |m| m.name())
                .to_owned(),
            vsn: module.as_ref().map_or("", |m| m.vsn()).to_owned(),
            hibernating: self.is_hibernating(),
            queue_len: self.mailbox.queued(),
            memory: self.memory.load(Ordering::Relaxed),
            restarts: self.restarts,
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Start a process and wait for its `init`.
pub(crate) async fn spawn(
    node: &Arc<NodeInner>,
    module: Arc<Module>,
    args: Term,
    opts: SpawnOptions,
) -> Result<Pid, StartError> {
    node.check_size("args", &args).map_err(StartError::Badarg)?;
    if let Some(name) = &opts.name {
        crate::limits::check_name(name).map_err(StartError::Badarg)?;
    }
    if node.process_count() >= node.config.max_processes {
        return Err(StartError::SystemLimit);
    }
    let pid = node.next_pid();
    let (sender, mailbox) = mailbox();
    let entry = Arc::new(ProcessEntry::new(pid, Some(module.clone()), sender, &opts));
    node.insert(entry.clone());
    if let Err(e) = node.register_start_names(&entry, &opts) {
        node.remove(&entry);
        return Err(e);
    }
    // The starter is running this very code, so it is alive: its half of the link holds.
    if let Some(starter) = opts.link.and_then(|p| node.entry(p)) {
        starter.add_link(pid);
    }
    let (started_tx, started_rx) = oneshot::channel();
    let ctx = ProcessCtx::new(
        pid,
        node.clone(),
        module.name().into(),
        mailbox,
        entry.memory.clone(),
    );
    let guard = ExitGuard::new(node.clone(), entry.clone());
    let task = tokio::spawn(serve::run(
        guard,
        module,
        ctx,
        args,
        opts.hibernate_after,
        started_tx,
    ));
    entry.set_abort(task.abort_handle());
    let started = async {
        started_rx
            .await
            .unwrap_or(Err(StartError::Stopped(ExitReason::Killed)))
    };
    match opts.start_timeout {
        None => started.await,
        Some(t) => match tokio::time::timeout(t, started).await {
            Ok(r) => r,
            Err(_) => {
                // As OTP's `kill_flush`: the starter learns of the timeout from the error
                // alone, neither killed through the link nor sent a `DOWN`.
                if let Some(starter) = opts.link {
                    node.unlink(starter, pid);
                }
                if let Some((mref, _)) = opts.monitor {
                    entry.remove_monitor(mref);
                }
                entry.kill();
                // Wait until it is gone, so the name is free when the caller sees the error.
                let _ = node.watch(&entry).await;
                Err(StartError::Timeout)
            }
        },
    }
}

/// Runs the exit sequence when the process task ends, however it ends (a kill drops it).
pub(crate) struct ExitGuard {
    node: Arc<NodeInner>,
    entry: Arc<ProcessEntry>,
    reason: Option<ExitReason>,
    /// Callers to answer with the exit reason once the name is free.
    pending: Vec<ReplySlot>,
}

impl ExitGuard {
    pub(crate) fn new(node: Arc<NodeInner>, entry: Arc<ProcessEntry>) -> Self {
        ExitGuard {
            node,
            entry,
            reason: None,
            pending: Vec::new(),
        }
    }

    /// Run the exit sequence now: the process exits `reason`, and `pending` callers learn it.
    pub(crate) fn exit(mut self, reason: ExitReason, pending: Vec<ReplySlot>) {
        self.reason = Some(reason);
        self.pending = pending;
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let reason = self.reason.take().unwrap_or(ExitReason::Killed);
        let _ = self.entry.exit.set(reason.clone());
        self.node.remove(&self.entry);
        let watchers = self
            .entry
            .watchers
            .lock()
            .expect("watchers lock")
            .take()
            .unwrap_or_default();
        for w in watchers {
            match w {
                Watcher::Monitor { mref, watcher } => {
                    self.node
                        .deliver_down(watcher, mref, self.entry.pid, reason.clone())
                }
                Watcher::Waiter(tx) => {
                    let _ = tx.send(reason.clone());
                }
                Watcher::Channel(tx) => {
                    let _ = tx.send((self.entry.pid, reason.clone()));
                }
            }
        }
        let links = self
            .entry
            .links
            .lock()
            .expect("links lock")
            .take()
            .unwrap_or_default();
        for other in links {
            if let Some(entry) = self.node.entry(other) {
                entry.remove_link(self.entry.pid);
                let _ = entry.mailbox.exit(self.entry.pid, reason.clone());
            }
        }
        for slot in self.pending.drain(..) {
            let _ = slot.send(Err(CallError::Exited(reason.clone())));
        }
        let pid = self.entry.pid;
        let module = self.entry.module_name();
        if reason.is_clean() {
            tracing::debug!(pid, module = %module, %reason, "process exited");
        } else {
            tracing::error!(pid, module = %module, %reason, "process crashed");
        }
    }
}
