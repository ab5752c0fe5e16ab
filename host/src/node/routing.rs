//! How the node routes what processes and Rust code send each other: the process table,
//! calls, casts, plain messages, exit signals and monitors.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;

use super::NodeInner;
use crate::Pid;
use crate::dest::Dest;
use crate::engine::Module;
use crate::entry::{ProcessEntry, Watcher};
use crate::error::{CallError, SendError};
use crate::exit::ExitReason;
use crate::mailbox::{Message, Signal};
use crate::process::WaitTimer;
use crate::term::{Term, queued};

/// Where a call's reply comes.
type ReplyWait = oneshot::Receiver<Result<Term, CallError>>;

/// What the caller of `entry` gets: its answer, or, if the reply slot was dropped without
/// one (only a kill does that), the reason it exited with.
fn call_outcome(
    entry: &ProcessEntry,
    outcome: Result<Result<Term, CallError>, oneshot::error::RecvError>,
) -> Result<Term, CallError> {
    match outcome {
        Ok(result) => result,
        Err(_) => Err(CallError::Exited(entry.exit_reason())),
    }
}

impl NodeInner {
    pub(crate) fn module(&self, name: &str) -> Option<Arc<Module>> {
        self.modules
            .read()
            .expect("module table lock")
            .get(name)
            .cloned()
    }

    /// Make `module` the one its name starts processes from (after an upgrade commits).
    pub(crate) fn install_module(&self, module: Arc<Module>) {
        self.modules
            .write()
            .expect("module table lock")
            .insert(module.name().to_owned(), module.clone());
        self.spares.forget(module.name(), &module);
    }

    /// Forget the module loaded as `module`'s name if it is that very version (a release
    /// that loaded it was rolled back); processes running it keep it alive.
    pub(crate) fn unload_module(&self, module: &Arc<Module>) {
        let mut modules = self.modules.write().expect("module table lock");
        if modules
            .get(module.name())
            .is_some_and(|m| Arc::ptr_eq(m, module))
        {
            modules.remove(module.name());
        }
        drop(modules);
        self.spares.forget_module(module);
    }

    /// Every module loaded under a name.
    pub(crate) fn loaded_modules(&self) -> Vec<Arc<Module>> {
        self.modules
            .read()
            .expect("module table lock")
            .values()
            .cloned()
            .collect()
    }

    /// Every live process's entry.
    pub(crate) fn entries(&self) -> Vec<Arc<ProcessEntry>> {
        self.processes.iter().map(|e| e.value().clone()).collect()
    }

    pub(crate) fn next_pid(&self) -> Pid {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_ref(&self) -> u64 {
        self.next_ref.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn entry(&self, pid: Pid) -> Option<Arc<ProcessEntry>> {
        self.processes.get(&pid).map(|e| e.value().clone())
    }

    /// The process `pid` to wait for: a live one, or one whose exit is still being announced
    /// (a waiter it takes then is told after the others, see `exit.rs`).
    pub(crate) fn watchable(&self, pid: Pid) -> Option<Arc<ProcessEntry>> {
        self.entry(pid)
            .or_else(|| self.exiting.get(&pid).map(|e| e.value().clone()))
    }

    /// `entry` exited and is about to leave the table: watchable until `announced`.
    pub(crate) fn exiting(&self, entry: &Arc<ProcessEntry>) {
        self.exiting.insert(entry.pid, entry.clone());
    }

    /// Everyone who watched `pid` has been told of its exit.
    pub(crate) fn announced(&self, pid: Pid) {
        self.exiting.remove(&pid);
    }

    /// Whether a start must fail with `system_limit`: supervisors count toward
    /// `max_processes` as the processes they are in OTP.
    pub(crate) fn at_process_limit(&self) -> bool {
        self.population.load(Ordering::Relaxed) >= self.config.max_processes
    }

    pub(crate) fn insert(&self, entry: Arc<ProcessEntry>) {
        if self.processes.insert(entry.pid, entry).is_none() {
            self.population.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Remove an exited process from the table and the registries, and delete its shared
    /// tables or give them to their heirs (after it left the process table, so that an heir
    /// exiting at the same time is seen gone or finds its inheritance).
    pub(crate) fn remove(&self, entry: &ProcessEntry) {
        if let Some(name) = entry.name.lock().expect("name lock").take() {
            self.names.unregister(&name, entry.pid);
        }
        self.registries.remove_pid(entry.pid);
        if self.processes.remove(&entry.pid).is_some() {
            self.population.fetch_sub(1, Ordering::Relaxed);
        }
        let transfers = self
            .tables
            .owner_exited(entry.pid, |p| self.processes.contains_key(&p));
        for (heir, msg) in transfers {
            if let Some(heir) = self.entry(heir) {
                let _ = heir.mailbox.send(Message::Info(queued(msg)));
            }
        }
    }

    /// Refuse a term over the node's maximum message size; `what` names it in the error.
    pub(crate) fn check_size(&self, what: &str, term: &[u8]) -> Result<(), String> {
        crate::limits::check_term(what, term.len(), self.config.max_message_size)
    }

    /// A reply as its caller receives it: over the limit, an error instead of the bytes.
    pub(crate) fn check_reply(&self, reply: Term) -> Result<Term, CallError> {
        self.check_size("reply", &reply)
            .map_err(CallError::BadReply)?;
        Ok(reply)
    }

    pub(crate) async fn call_from(
        &self,
        caller: Pid,
        dest: &Dest,
        request: Term,
        timeout: Option<Duration>,
    ) -> Result<Term, CallError> {
        // A timeout too long to be a deadline is none.
        let deadline = timeout.and_then(|t| tokio::time::Instant::now().checked_add(t));
        let (entry, rx) = self.send_call(caller, dest, request)?;
        let outcome = match deadline {
            Some(deadline) => {
                let mut lent = self.call_timers.take();
                let outcome = lent.timer.wait(rx, deadline).await;
                self.call_timers.give_back(lent);
                outcome.ok_or(CallError::Timeout)?
            }
            None => rx.await,
        };
        call_outcome(&entry, outcome)
    }

    /// A process's call (`process.call`): as [`call_from`](Self::call_from) with a
    /// timeout, timed by the process's own call timer.
    pub(crate) async fn call_from_process(
        &self,
        caller: Pid,
        dest: &Dest,
        request: Term,
        timeout: Duration,
        timer: &mut WaitTimer,
    ) -> Result<Term, CallError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (entry, rx) = self.send_call(caller, dest, request)?;
        match timer.wait(rx, deadline).await {
            Some(outcome) => call_outcome(&entry, outcome),
            None => Err(CallError::Timeout),
        }
    }

    /// Put a call in `dest`'s mailbox: the callee, and where its reply will come.
    fn send_call(
        &self,
        caller: Pid,
        dest: &Dest,
        request: Term,
    ) -> Result<(Arc<ProcessEntry>, ReplyWait), CallError> {
        self.check_size("message", &request)
            .map_err(CallError::Badarg)?;
        let entry = self
            .try_resolve(dest)
            .map_err(CallError::Registry)?
            .ok_or(CallError::NoProc)?;
        if entry.pid == caller {
            return Err(CallError::CallingSelf);
        }
        let (tx, rx) = oneshot::channel();
        let msg = Message::Call {
            request,
            caller,
            reply: tx,
        };
        if entry.mailbox.send(msg).is_err() {
            return Err(CallError::NoProc);
        }
        Ok((entry, rx))
    }

    /// A cast never fails (OTP's `gen_server:cast` always returns `ok`), so one over the
    /// size limit is dropped with a warning.
    pub(crate) fn cast(&self, dest: &Dest, request: Term) {
        if let Err(why) = self.check_size("message", &request) {
            tracing::warn!("cast dropped: {why}");
            return;
        }
        // What a mailbox refuses is dropped here, outside the process table's lock.
        let _ = self.with_live(dest, |entry| {
            entry.mailbox.send(Message::Cast(queued(request)))
        });
    }

    pub(crate) fn send(&self, dest: &Dest, msg: Term) -> Result<(), SendError> {
        self.check_size("message", &msg)
            .map_err(SendError::Badarg)?;
        match self.with_live(dest, |entry| entry.mailbox.send(Message::Info(queued(msg))))? {
            Some(_) => Ok(()),
            None if matches!(dest, Dest::Pid(_)) => Ok(()),
            None => Err(SendError::NoProc),
        }
    }

    /// Deliver a fired `start-timer` timer (its message was checked when it was armed); a
    /// destination that is gone is no error, as for `send-after`.
    pub(crate) fn send_timer(&self, dest: &Dest, timer: u64, msg: Term) {
        let _ = self.with_live(dest, |entry| {
            entry.mailbox.send(Message::Timer {
                timer,
                msg: queued(msg),
            })
        });
    }

    /// A future that resolves with the process's exit reason.
    pub(crate) fn watch(
        &self,
        entry: &ProcessEntry,
    ) -> impl Future<Output = Option<ExitReason>> + use<> {
        let (tx, rx) = oneshot::channel();
        if let Err(Watcher::Waiter(tx)) = entry.add_watcher(Watcher::Waiter(tx)) {
            let _ = tx.send(entry.exit_reason());
        }
        async move { rx.await.ok() }
    }

    /// `watcher` monitors `target`; returns the monitor ref and the target's pid.
    pub(crate) fn monitor_from(&self, watcher: Pid, target: &Dest) -> (u64, Pid) {
        let mref = self.next_ref();
        let Some(entry) = self.resolve(target) else {
            let pid = match target {
                Dest::Pid(p) => *p,
                Dest::Name(_) | Dest::Via(..) => 0,
            };
            self.deliver_down(watcher, mref, pid, ExitReason::NoProc);
            return (mref, pid);
        };
        if entry
            .add_watcher(Watcher::Monitor { mref, watcher })
            .is_err()
        {
            self.deliver_down(watcher, mref, entry.pid, entry.exit_reason());
        }
        (mref, entry.pid)
    }

    /// Link `a` and `b`. If `b` is not alive, `a` gets an exit signal `noproc`.
    pub(crate) fn link(&self, a: Pid, b: Pid) {
        if a == b {
            return;
        }
        let (Some(ea), eb) = (self.entry(a), self.entry(b)) else {
            return;
        };
        // Link b first: once it has exited its links are closed, so a link to it never
        // dangles unnoticed.
        match eb {
            Some(eb) if eb.add_link(a) => {
                if !ea.add_link(b) {
                    eb.remove_link(a);
                }
            }
            _ => {
                let _ = ea.mailbox.exit(b, ExitReason::NoProc);
            }
        }
    }

    pub(crate) fn unlink(&self, a: Pid, b: Pid) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(e) = self.entry(x) {
                e.remove_link(y);
            }
        }
    }

    /// Erlang's `exit(Target, Reason)` sent by `from` (0 when not a process).
    pub(crate) fn exit_signal(&self, from: Pid, target: Pid, reason: ExitReason) {
        if let Some(entry) = self.entry(target) {
            // `kill` is untrappable and overtakes; any other reason keeps its place among
            // what `from` sent before.
            if reason == ExitReason::Killed {
                let _ = entry.mailbox.signal(Signal::Kill);
            } else {
                let _ = entry.mailbox.exit(from, reason);
            }
        }
    }

    pub(crate) fn demonitor(&self, target: Pid, mref: u64) {
        if let Some(entry) = self.entry(target) {
            entry.remove_monitor(mref);
        }
    }

    pub(crate) fn deliver_down(&self, watcher: Pid, monitor: u64, pid: Pid, reason: ExitReason) {
        if let Some(w) = self.entry(watcher) {
            let _ = w.mailbox.send(Message::Down {
                monitor,
                pid,
                reason,
            });
        }
    }
}
