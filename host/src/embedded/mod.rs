//! A process of the embedding program (see [`EmbeddedProcess`]).

mod error;
mod received;

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::Pid;
use crate::dest::Dest;
use crate::entry::ProcessEntry;
use crate::error::CallError;
use crate::error::ReplaceStateError;
use crate::exit::ExitReason;
use crate::mailbox::{self, Mailbox, Message, ReplySlot, Signal};
use crate::node::{DEFAULT_CALL_TIMEOUT, ExitGuard, Node, NodeInner};
use crate::term::{Term, decode, encode};

pub use error::{ProcessError, ReceiveError};
pub use received::{IncomingCall, Received};

/// A monitor reference, as [`EmbeddedProcess::monitor`] returns it and
/// [`Received::Down`] carries it.
pub type MonitorRef = u64;

/// A process of the embedding program: Rust code that holds a [`Node`] opens one to take part
/// in the node as a process, with its own pid and mailbox, as Erlang's shell does.
///
/// ```
/// # async fn demo() -> anyhow::Result<()> {
/// use std::time::Duration;
/// use otter::{ExitReason, Node, Received};
///
/// let node = Node::new(Default::default())?;
/// let me = node.embedded_process();
/// let peer = node.embedded_process();
///
/// // Messages between processes, with a real sender pid.
/// peer.send(me.pid(), otter::encode(&"hello")?)?;
/// match me.receive(Some(Duration::from_secs(1))).await? {
///     Received::Message(term) => assert_eq!(otter::decode::<String>(&term)?, "hello"),
///     other => panic!("unexpected {other:?}"),
/// }
///
/// // Monitors and links, as any process has them.
/// let monitor = me.monitor(peer.pid())?;
/// me.trap_exit(true)?;
/// me.link(peer.pid())?;
/// peer.exit(peer.pid(), ExitReason::Error("boom".into()))?;
/// let down = me.receive(Some(Duration::from_secs(1))).await?;
/// assert!(matches!(down, Received::Down { monitor: m, .. } if m == monitor));
/// let exit = me.receive(Some(Duration::from_secs(1))).await?;
/// assert!(matches!(exit, Received::Exit { reason: ExitReason::Error(_), .. }));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
///
/// ## Calls to it
///
/// A call to an embedded process is answerable: [`receive`](EmbeddedProcess::receive) gives
/// a [`Received::Call`], and [`IncomingCall::reply`] answers it. A call dropped unanswered
/// stays pending, as a server's `noreply` does: its caller times out, or learns the exit
/// reason when this process ends.
///
/// ## Exit
///
/// The process lives as long as the handle. It ends with reason `normal` when the handle is
/// dropped; earlier if an exit signal ends it (from a linked process that crashed while it
/// does not trap exits, or from `exit`), if it is killed or stopped (`Node::kill`,
/// `Node::stop`, `Node::shutdown`). It ends then and there, even if nobody is receiving:
/// its links and monitors hear of it, its name is freed, and every later operation of the
/// handle fails with [`ProcessError::Exited`] (or [`ReceiveError::Exited`]) carrying the
/// reason.
///
/// Otherwise it is a process like the others: it appears in `ps` with the module
/// `<embedded>`, its mailbox keeps every sender's order, exit signals follow the same rules
/// (`kill` is untrappable; the trap flag in force when a signal arrives decides), and it is
/// bound by the node's limits: terms it sends are checked against the maximum message size,
/// and it holds at most as many monitors as a guest may (one more ends it with
/// `system_limit`). Suspend and resume do not apply to it and are ignored; `get_state` on it
/// fails.
pub struct EmbeddedProcess {
    core: Arc<Core>,
}

/// What the handle and the task that watches its signals share.
struct Core {
    pid: Pid,
    node: Arc<NodeInner>,
    state: Mutex<State>,
    /// Told when a message may be waiting, or the process has exited.
    arrived: Notify,
    /// The watching task, stopped when the process exits.
    watcher: std::sync::OnceLock<AbortHandle>,
}

struct State {
    /// `None` once the process has exited.
    alive: Option<Alive>,
    /// Why it exited.
    exited: Option<ExitReason>,
}

struct Alive {
    mailbox: Mailbox,
    trap_exit: bool,
    /// Monitors it holds: ref → target.
    monitors: HashMap<MonitorRef, Pid>,
    /// Calls received and not answered.
    pending: Vec<ReplySlot>,
    guard: ExitGuard,
}

impl Node {
    /// Open a process for the calling Rust code: its own pid and mailbox, shown in `ps` as
    /// `<embedded>`. See [`EmbeddedProcess`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn embedded_process(&self) -> EmbeddedProcess {
        let node = self.inner.clone();
        let pid = node.next_pid();
        let (sender, mailbox) = mailbox::mailbox(None);
        let entry = Arc::new(ProcessEntry::new(pid, None, sender, Default::default()));
        node.insert(entry.clone());
        let core = Arc::new(Core {
            pid,
            node: node.clone(),
            state: Mutex::new(State {
                alive: Some(Alive {
                    mailbox,
                    trap_exit: false,
                    monitors: HashMap::new(),
                    pending: Vec::new(),
                    guard: ExitGuard::new(node, entry.clone()),
                }),
                exited: None,
            }),
            arrived: Notify::new(),
            watcher: std::sync::OnceLock::new(),
        });
        let task = tokio::spawn(watch(DiesKilled(core.clone())));
        let _ = core.watcher.set(task.abort_handle());
        // A kill aborts the watcher, whose drop ends the process `killed`.
        entry.set_abort(task.abort_handle());
        EmbeddedProcess { core }
    }
}

/// Takes signals as they arrive, so that an exit signal or a kill ends the process even
/// while nobody receives, and tells a waiting receiver that messages came.
/// An argument of the watching task's future, so that even a kill before its first poll
/// ends the process.
async fn watch(dies: DiesKilled) {
    let core = &dies.0;
    loop {
        let signal = poll_fn(|cx| {
            let mut state = core.lock();
            let Some(alive) = state.alive.as_mut() else {
                return Poll::Ready(None);
            };
            let trapping = alive.trap_exit;
            match alive.mailbox.poll_recv(cx, false, |_| trapping) {
                Poll::Ready(received) => Poll::Ready(Some(received)),
                Poll::Pending => {
                    if alive.mailbox.has_message() {
                        core.arrived.notify_one();
                    }
                    Poll::Pending
                }
            }
        })
        .await;
        match signal {
            Some(received) => {
                let _ = core.act(received);
            }
            None => return,
        }
    }
}

/// Ends the process `killed` when the watching task is dropped (a kill aborts it); does
/// nothing if it has already exited.
struct DiesKilled(Arc<Core>);

impl Drop for DiesKilled {
    fn drop(&mut self) {
        self.0.die(ExitReason::Killed);
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Act on what the mailbox gave: a message for the receiver, or a signal handled here.
    fn act(self: &Arc<Self>, received: mailbox::Received) -> Option<Received> {
        match received {
            mailbox::Received::Message(msg) => self.message(msg),
            mailbox::Received::Signal(Signal::Stop(reason)) => {
                self.die(reason);
                None
            }
            mailbox::Received::Signal(Signal::Kill) => {
                self.die(ExitReason::Killed);
                None
            }
            mailbox::Received::Signal(Signal::GetState(tx)) => {
                let _ = tx.send(Err("an embedded process has no state".to_owned()));
                None
            }
            mailbox::Received::Signal(Signal::ReplaceState { reply, .. }) => {
                let _ = reply.send(Err(ReplaceStateError::Refused(
                    "an embedded process has no state".to_owned(),
                )));
                None
            }
            // It runs no module; upgrades never pick it, so dropping the order only tells
            // one sent by mistake that it did not change.
            mailbox::Received::Signal(Signal::Upgrade(_)) => None,
            // It holds no deferred calls, and is never suspended.
            mailbox::Received::Signal(Signal::Reply { .. } | Signal::Suspend | Signal::Resume) => {
                None
            }
            mailbox::Received::Exit { from, reason } => {
                if reason != ExitReason::Normal || from == self.pid {
                    self.die(reason);
                }
                None
            }
        }
    }

    fn message(self: &Arc<Self>, msg: Message) -> Option<Received> {
        Some(match msg {
            Message::Info(term) => Received::Message(term.into_vec()),
            Message::Cast(term) => Received::Cast(term.into_vec()),
            Message::Call {
                request,
                caller,
                reply,
            } => Received::Call(IncomingCall {
                request,
                caller,
                slot: Some(reply),
                core: self.clone(),
            }),
            Message::Down {
                monitor,
                pid,
                reason,
            } => {
                // A demonitored ref's DOWN is dropped, even if it was already queued.
                let mut state = self.lock();
                state.alive.as_mut()?.monitors.remove(&monitor)?;
                Received::Down {
                    monitor,
                    pid,
                    reason,
                }
            }
            Message::Exit { from, reason } => Received::Exit { from, reason },
            Message::Timer { timer, msg } => Received::Timer {
                timer,
                msg: msg.into_vec(),
            },
        })
    }

    /// End the process with `reason`, unless it has ended already.
    fn die(&self, reason: ExitReason) {
        let alive = {
            let mut state = self.lock();
            let Some(alive) = state.alive.take() else {
                return;
            };
            state.exited = Some(reason.clone());
            alive
        };
        // Outside the lock: the exit sequence reaches other processes.
        let Alive {
            mailbox,
            monitors,
            pending,
            guard,
            ..
        } = alive;
        for (mref, target) in monitors {
            self.node.demonitor(target, mref);
        }
        guard.exit(reason, pending);
        // The exit first, then the mailbox: a call still queued is dropped with it, and its
        // caller reads the exit reason, which is set by then.
        drop(mailbox);
        self.arrived.notify_waiters();
        self.arrived.notify_one();
        if let Some(watcher) = self.watcher.get() {
            watcher.abort();
        }
    }

    /// Why it exited, if it has.
    fn exited(&self) -> Result<(), ExitReason> {
        match &self.lock().exited {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// Keep a call unanswered until the process exits; answer it now if it has.
    fn keep_pending(&self, slot: ReplySlot) {
        let mut state = self.lock();
        let State { alive, exited } = &mut *state;
        match (alive, exited) {
            (Some(alive), _) => {
                // Callers that gave up are forgotten before the list grows, so calls that
                // time out unanswered do not pile up.
                if alive.pending.len() == alive.pending.capacity() {
                    alive.pending.retain(|s| !s.is_closed());
                }
                alive.pending.push(slot);
            }
            (None, Some(reason)) => {
                let _ = slot.send(Err(CallError::Exited(reason.clone())));
            }
            (None, None) => {}
        }
    }

    /// Run `f` on the live process's state, or say why it exited.
    fn with_alive<R>(&self, f: impl FnOnce(&mut Alive) -> R) -> Result<R, ExitReason> {
        let mut state = self.lock();
        match state.alive.as_mut() {
            Some(alive) => Ok(f(alive)),
            None => Err(state.exited.clone().unwrap_or(ExitReason::Killed)),
        }
    }
}

impl EmbeddedProcess {
    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.core.pid
    }

    /// Whether it is still alive.
    pub fn is_alive(&self) -> bool {
        self.core.exited().is_ok()
    }

    /// The next message, waiting at most `timeout` (`None`: forever).
    ///
    /// # Errors
    /// [`ReceiveError::Timeout`]; [`ReceiveError::Exited`] once the process has exited,
    /// also while waiting.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is taken only when this returns it.
    pub async fn receive(&self, timeout: Option<Duration>) -> Result<Received, ReceiveError> {
        // A timeout too far to add to now is no timeout.
        let deadline = timeout.and_then(|t| tokio::time::Instant::now().checked_add(t));
        loop {
            let arrived = self.core.arrived.notified();
            if let Some(received) = self.try_receive()? {
                return Ok(received);
            }
            match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, arrived)
                    .await
                    .map_err(|_| ReceiveError::Timeout)?,
                None => arrived.await,
            }
        }
    }

    /// The next message if one is waiting.
    ///
    /// # Errors
    /// [`ReceiveError::Exited`] once the process has exited.
    pub fn try_receive(&self) -> Result<Option<Received>, ReceiveError> {
        loop {
            let taken = self
                .core
                .with_alive(|alive| {
                    let trapping = alive.trap_exit;
                    alive.mailbox.try_recv(true, |_| trapping)
                })
                .map_err(ReceiveError::Exited)?;
            let Some(taken) = taken else {
                return Ok(None);
            };
            // A signal is acted on (it may end the process); a dropped DOWN is skipped.
            if let Some(received) = self.core.act(taken) {
                return Ok(Some(received));
            }
        }
    }

    /// Send a plain CBOR message from this process (to the receiver's `handle_info`).
    ///
    /// # Errors
    /// [`ProcessError::Exited`]; [`ProcessError::Send`] as [`Node::send`].
    pub fn send(&self, dest: impl Into<Dest>, msg: Term) -> Result<(), ProcessError> {
        self.core.exited().map_err(ProcessError::Exited)?;
        Ok(self.core.node.send(&dest.into(), msg)?)
    }

    /// Cast a CBOR request from this process.
    ///
    /// # Errors
    /// [`ProcessError::Exited`].
    pub fn cast(&self, dest: impl Into<Dest>, request: Term) -> Result<(), ProcessError> {
        self.core.exited().map_err(ProcessError::Exited)?;
        self.core.node.cast(&dest.into(), request);
        Ok(())
    }

    /// Call with a serde request and decode the reply, from this process (the server sees
    /// its pid as the caller), with OTP's default 5 s timeout.
    ///
    /// # Errors
    /// [`ProcessError::Exited`]; [`ProcessError::Call`] as [`Node::call`].
    pub async fn call<Req: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        dest: impl Into<Dest>,
        request: &Req,
    ) -> Result<R, ProcessError> {
        let request = encode(request).map_err(|e| CallError::Badarg(e.0))?;
        let reply = self
            .call_term(dest, request, Some(DEFAULT_CALL_TIMEOUT))
            .await?;
        Ok(decode(&reply)
            .map_err(|e| CallError::BadReply(crate::guest_text::escaped(&e.0).into_owned()))?)
    }

    /// Call with a CBOR request and timeout (`None` waits forever), from this process.
    ///
    /// # Errors
    /// As [`EmbeddedProcess::call`].
    pub async fn call_term(
        &self,
        dest: impl Into<Dest>,
        request: Term,
        timeout: Option<Duration>,
    ) -> Result<Term, ProcessError> {
        self.core.exited().map_err(ProcessError::Exited)?;
        Ok(self
            .core
            .node
            .call_from(self.core.pid, &dest.into(), request, timeout)
            .await?)
    }

    /// Monitor a process: a [`Received::Down`] comes when it exits (at once, `noproc`, if it
    /// is not alive).
    ///
    /// # Errors
    /// [`ProcessError::Exited`], also when this is one monitor more than a process may hold
    /// (the process then exits `system_limit`).
    pub fn monitor(&self, dest: impl Into<Dest>) -> Result<MonitorRef, ProcessError> {
        let dest = dest.into();
        let (node, pid) = (&self.core.node, self.core.pid);
        let mref = self
            .core
            .with_alive(|alive| {
                if alive.monitors.len() >= crate::limits::MAX_MONITORS {
                    return None;
                }
                // Under the lock, so that a receiver cannot take the DOWN before the monitor
                // is recorded.
                let (mref, target) = node.monitor_from(pid, &dest);
                alive.monitors.insert(mref, target);
                Some(mref)
            })
            .map_err(ProcessError::Exited)?;
        mref.ok_or_else(|| {
            let reason = ExitReason::Error("system_limit".to_owned());
            self.core.die(reason.clone());
            ProcessError::Exited(reason)
        })
    }

    /// Remove a monitor; its `DOWN`, even if already queued, is not received.
    ///
    /// # Errors
    /// [`ProcessError::Exited`].
    pub fn demonitor(&self, monitor: MonitorRef) -> Result<(), ProcessError> {
        let target = self
            .core
            .with_alive(|alive| alive.monitors.remove(&monitor))
            .map_err(ProcessError::Exited)?;
        if let Some(target) = target {
            self.core.node.demonitor(target, monitor);
        }
        Ok(())
    }

    /// Link to a process. If it is not alive, an exit signal `noproc` comes from it.
    ///
    /// # Errors
    /// [`ProcessError::Exited`].
    pub fn link(&self, pid: Pid) -> Result<(), ProcessError> {
        self.core.exited().map_err(ProcessError::Exited)?;
        self.core.node.link(self.core.pid, pid);
        Ok(())
    }

    /// Remove a link.
    ///
    /// # Errors
    /// [`ProcessError::Exited`].
    pub fn unlink(&self, pid: Pid) -> Result<(), ProcessError> {
        self.core.exited().map_err(ProcessError::Exited)?;
        self.core.node.unlink(self.core.pid, pid);
        Ok(())
    }

    /// Trap exits (`true`): exit signals then arrive as [`Received::Exit`] instead of ending
    /// the process (`kill` still ends it). Returns the previous setting. Default: `false`.
    ///
    /// # Errors
    /// [`ProcessError::Exited`].
    pub fn trap_exit(&self, on: bool) -> Result<bool, ProcessError> {
        self.core
            .with_alive(|alive| std::mem::replace(&mut alive.trap_exit, on))
            .map_err(ProcessError::Exited)
    }

    /// Send an exit signal from this process, as Erlang's `exit(Pid, Reason)` (see
    /// [`Node::exit`]); it keeps its place among the messages this process sent `pid`.
    ///
    /// # Errors
    /// [`ProcessError::Exited`].
    pub fn exit(&self, pid: Pid, reason: ExitReason) -> Result<(), ProcessError> {
        self.core.exited().map_err(ProcessError::Exited)?;
        self.core.node.exit_signal(self.core.pid, pid, reason);
        Ok(())
    }

    /// Register this process under a local name; freed when it exits.
    ///
    /// # Errors
    /// [`ProcessError::Exited`]; [`ProcessError::Register`] if the name is taken or this
    /// process has one; [`ProcessError::Badarg`] for a name over 255 bytes.
    pub fn register(&self, name: &str) -> Result<(), ProcessError> {
        crate::limits::check_name(name).map_err(ProcessError::Badarg)?;
        let node = &self.core.node;
        // Under the lock, so that an exit under way frees the name after it is taken.
        self.core
            .with_alive(|_| match node.entry(self.core.pid) {
                Some(entry) => Ok(node.register(&entry, name)?),
                None => Err(ProcessError::Exited(ExitReason::Killed)),
            })
            .map_err(ProcessError::Exited)?
    }

    /// End the process now with `reason`, as dropping the handle does with `normal`.
    pub fn close(self, reason: ExitReason) {
        self.core.die(reason);
    }
}

impl Drop for EmbeddedProcess {
    fn drop(&mut self) {
        self.core.die(ExitReason::Normal);
    }
}

impl std::fmt::Debug for EmbeddedProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedProcess")
            .field("pid", &self.core.pid)
            .finish_non_exhaustive()
    }
}
