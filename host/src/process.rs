//! One process: a component instance in its own store, driven by one tokio task.
//!
//! The task takes signals before messages, runs one callback at a time, honours what each
//! callback returns next (continue before any queued message, idle timeout, hibernate), and
//! on exit frees its name, answers pending callers and notifies its monitors. A trap ends
//! the process alone; a kill aborts the task, which drops the store wherever it was.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use wasmtime::Store;

use crate::bindings::{
    CallResult, Genserver, InitResult, NoreplyResult, WitDown, WitEnvelope, WitExitSignal, WitInfo,
    WitNext, WitOutcome, WitReplyTo,
};
use crate::engine::Module;
use crate::error::{CallError, StartError};
use crate::exit::ExitReason;
use crate::host::{ProcessCtx, new_store};
use crate::mailbox::{Mailbox, MailboxSender, Message, Received, ReplySlot, Signal, mailbox};
use crate::node::{NodeInner, ProcessInfo, SpawnOptions};
use crate::term::Term;

/// A process identifier, unique for the node's lifetime.
pub type Pid = u64;

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
    pub(crate) module: Arc<Module>,
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

impl ProcessEntry {
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
        ProcessInfo {
            pid: self.pid,
            name: self.name.lock().expect("name lock").clone(),
            module: self.module.name().to_owned(),
            vsn: self.module.vsn().to_owned(),
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
    let pid = node.next_pid();
    let (sender, mailbox) = mailbox();
    let entry = Arc::new(ProcessEntry {
        pid,
        module: module.clone(),
        mailbox: sender,
        name: Mutex::new(None),
        started: Instant::now(),
        restarts: opts.restarts,
        parent: opts.parent,
        hibernating: AtomicBool::new(false),
        memory: Arc::new(AtomicUsize::new(0)),
        exit: OnceLock::new(),
        // Registered before the task exists, so no exit can be missed.
        watchers: Mutex::new(Some(
            opts.exit_to
                .clone()
                .map(Watcher::Channel)
                .into_iter()
                .collect(),
        )),
        links: Mutex::new(Some(HashSet::new())),
        abort: OnceLock::new(),
        kill_requested: AtomicBool::new(false),
    });
    node.insert(entry.clone());
    if let Err(e) = node.register_start_names(&entry, &opts) {
        node.remove(&entry);
        return Err(e);
    }
    let (started_tx, started_rx) = oneshot::channel();
    let ctx = ProcessCtx::new(
        pid,
        node.clone(),
        module.name().into(),
        mailbox,
        entry.memory.clone(),
    );
    let guard = ExitGuard {
        node: node.clone(),
        entry: entry.clone(),
        reason: None,
        pending: Vec::new(),
    };
    let task = tokio::spawn(run(guard, module, ctx, args, started_tx));
    let _ = entry.abort.set(task.abort_handle());
    if entry.kill_requested.load(Ordering::SeqCst) {
        task.abort();
    }
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
                entry.kill();
                // Wait until it is gone, so the name is free when the caller sees the error.
                let _ = node.watch(&entry).await;
                Err(StartError::Timeout)
            }
        },
    }
}

/// Runs the exit sequence when the process task ends, however it ends (a kill drops it).
struct ExitGuard {
    node: Arc<NodeInner>,
    entry: Arc<ProcessEntry>,
    reason: Option<ExitReason>,
    /// Callers to answer with the exit reason once the name is free.
    pending: Vec<ReplySlot>,
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
                let _ = entry.mailbox.signal(Signal::Exit {
                    from: self.entry.pid,
                    reason: reason.clone(),
                    kill: false,
                });
            }
        }
        for slot in self.pending.drain(..) {
            let _ = slot.send(Err(CallError::Exited(reason.clone())));
        }
        let pid = self.entry.pid;
        let module = self.entry.module.name();
        if reason.is_clean() {
            tracing::debug!(pid, module, %reason, "process exited");
        } else {
            tracing::error!(pid, module, %reason, "process crashed");
        }
    }
}

/// What happens after a callback.
enum Flow {
    Next(WitNext),
    /// A clean or chosen stop: `terminate` runs.
    Stop(ExitReason),
    /// A trap: the instance is unusable, so `terminate` cannot run.
    Crash(ExitReason),
}

/// The instance while awake; only the state bytes while hibernating.
enum Instance {
    Awake {
        store: Store<ProcessCtx>,
        server: Genserver,
    },
    Hibernating {
        ctx: ProcessCtx,
        state: Term,
    },
    /// Transient, while switching between the two.
    Gone,
}

struct Process {
    module: Arc<Module>,
    entry: Arc<ProcessEntry>,
    instance: Instance,
    /// Callers still waiting when the process exits.
    pending: Vec<ReplySlot>,
    /// Suspended (`sys:suspend`): only signals are handled.
    suspended: bool,
}

/// What woke the process.
enum Event {
    Signal(Signal),
    Message(Message),
    Timeout,
    /// An exit signal this process traps, for `handle-info`.
    Exit {
        from: Pid,
        reason: ExitReason,
    },
}

/// A new instance with the state a hibernating process kept.
async fn rehydrate(
    module: &Module,
    ctx: ProcessCtx,
    state: Term,
) -> Result<(Store<ProcessCtx>, Genserver), ExitReason> {
    let engine = ctx.node.engine.clone();
    let mut store = new_store(&engine, ctx);
    let server = module
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(crash)?;
    server
        .otter_genserver_server()
        .call_restore_state(&mut store, &state)
        .await
        .map_err(crash)?
        .map_err(|e| ExitReason::Error(format!("restore after hibernate: {e}")))?;
    Ok((store, server))
}

fn event(received: Received) -> Event {
    match received {
        Received::Signal(sig) => Event::Signal(sig),
        Received::Message(msg) => Event::Message(msg),
    }
}

fn crash(e: wasmtime::Error) -> ExitReason {
    ExitReason::Error(format!("{e:#}"))
}

async fn run(
    mut guard: ExitGuard,
    module: Arc<Module>,
    ctx: ProcessCtx,
    args: Term,
    started: oneshot::Sender<Result<Pid, StartError>>,
) {
    let pid = ctx.pid;
    let engine = ctx.node.engine.clone();
    let mut store = new_store(&engine, ctx);
    // Boxed, as in `rehydrate`: the process's task keeps its largest state for life.
    let server = match Box::pin(module.pre.instantiate_async(&mut store)).await {
        Ok(s) => s,
        Err(e) => {
            let reason = crash(e);
            guard.reason = Some(reason.clone());
            drop(guard);
            let _ = started.send(Err(StartError::Instantiate(reason.to_string())));
            return;
        }
    };
    let init = Box::pin(server.otter_genserver_server().call_init(&mut store, &args)).await;
    let next = match init {
        Ok(InitResult::Ok(next)) => next,
        other => {
            let (reason, err) = match other {
                Ok(InitResult::Ignore) => (ExitReason::Normal, StartError::Ignore),
                Ok(InitResult::Stop(r)) => {
                    let r = ExitReason::from_wit(r);
                    (r.clone(), StartError::Stopped(r))
                }
                Err(e) => {
                    let r = crash(e);
                    (r.clone(), StartError::Stopped(r))
                }
                Ok(InitResult::Ok(_)) => unreachable!(),
            };
            // Exit (freeing the name) before the starter sees the result.
            guard.reason = Some(reason);
            drop(store);
            drop(guard);
            let _ = started.send(Err(err));
            return;
        }
    };
    let _ = started.send(Ok(pid));
    let mut process = Process {
        module,
        entry: guard.entry.clone(),
        instance: Instance::Awake { store, server },
        pending: Vec::new(),
        suspended: false,
    };
    let reason = process.serve(next).await;
    guard.reason = Some(reason);
    guard.pending = std::mem::take(&mut process.pending);
}

impl Process {
    fn ctx(&mut self) -> &mut ProcessCtx {
        match &mut self.instance {
            Instance::Awake { store, .. } => store.data_mut(),
            Instance::Hibernating { ctx, .. } => ctx,
            Instance::Gone => unreachable!("process instance is always restored"),
        }
    }

    /// The message loop; returns the exit reason.
    async fn serve(&mut self, mut next: WitNext) -> ExitReason {
        loop {
            let deadline = match next {
                WitNext::None => None,
                WitNext::Timeout(ms) => {
                    Some(tokio::time::Instant::now() + Duration::from_millis(ms.into()))
                }
                WitNext::Hibernate => {
                    if let Err(reason) = self.hibernate().await {
                        return self.exit(reason, false).await;
                    }
                    None
                }
                WitNext::Continue(arg) => {
                    let r = self.awake().await;
                    let flow = match r {
                        Ok((store, server)) => {
                            let r = server
                                .otter_genserver_server()
                                .call_handle_continue(store, &arg)
                                .await;
                            noreply_flow(r)
                        }
                        Err(reason) => Flow::Crash(reason),
                    };
                    match flow {
                        Flow::Next(n) => {
                            next = n;
                            continue;
                        }
                        Flow::Stop(reason) => return self.exit(reason, true).await,
                        Flow::Crash(reason) => return self.exit(reason, false).await,
                    }
                }
            };
            let event = loop {
                match self.receive(deadline).await {
                    // Signals that need no callback neither wake a hibernating process nor
                    // cancel an idle timeout, as system messages do not in OTP.
                    Event::Signal(Signal::Reply { tag, reply }) => self.ctx().answer(tag, reply),
                    Event::Signal(Signal::GetState(tx)) => {
                        if let Err(reason) = self.export_state(tx).await {
                            return self.exit(reason, false).await;
                        }
                    }
                    Event::Signal(Signal::Exit { from, reason, kill }) => {
                        let me = self.entry.pid;
                        if kill {
                            return self.exit(ExitReason::Killed, false).await;
                        }
                        // The parent's exit signal is an order to terminate, never an
                        // `exit` info: OTP's gen_server runs terminate(reason) on it when
                        // trapping; Otter runs it when not trapping too, as a supervisor's
                        // shutdown always does (SEMANTICS 25, 34).
                        if self.entry.parent == Some(from) {
                            return self.exit(reason, true).await;
                        }
                        if self.ctx().trap_exit {
                            break Event::Exit { from, reason };
                        }
                        if reason != ExitReason::Normal || from == me {
                            // Not trapping: the signal ends the process, without terminate.
                            return self.exit(reason, false).await;
                        }
                    }
                    Event::Signal(Signal::Suspend) => self.suspended = true,
                    Event::Signal(Signal::Resume) => self.suspended = false,
                    event => break event,
                }
            };
            let flow = match self.awake().await {
                Ok(_) => self.handle(event).await,
                Err(reason) => Flow::Crash(reason),
            };
            next = match flow {
                Flow::Next(n) => n,
                Flow::Stop(reason) => return self.exit(reason, true).await,
                Flow::Crash(reason) => return self.exit(reason, false).await,
            };
        }
    }

    async fn receive(&mut self, deadline: Option<tokio::time::Instant>) -> Event {
        let suspended = self.suspended;
        let mailbox: &mut Mailbox = &mut self.ctx().mailbox;
        let Some(deadline) = deadline.filter(|_| !suspended) else {
            return event(mailbox.recv(!suspended).await);
        };
        tokio::select! {
            biased;
            received = mailbox.recv(true) => event(received),
            () = tokio::time::sleep_until(deadline) => Event::Timeout,
        }
    }

    /// The awake instance, re-created from the state if hibernating.
    async fn awake(&mut self) -> Result<(&mut Store<ProcessCtx>, &Genserver), ExitReason> {
        if let Instance::Hibernating { .. } = self.instance {
            let Instance::Hibernating { ctx, state } =
                std::mem::replace(&mut self.instance, Instance::Gone)
            else {
                unreachable!()
            };
            // Boxed: the instantiation future is large and a task's future is as large as its
            // largest state, which a hibernating process would otherwise carry for nothing.
            let (store, server) = Box::pin(rehydrate(&self.module, ctx, state)).await?;
            self.instance = Instance::Awake { store, server };
            self.entry.hibernating.store(false, Ordering::Relaxed);
        }
        match &mut self.instance {
            Instance::Awake { store, server } => Ok((store, server)),
            _ => unreachable!(),
        }
    }

    /// Answer a `get_state` signal, from the kept bytes when hibernating.
    async fn export_state(
        &mut self,
        tx: oneshot::Sender<Result<Term, String>>,
    ) -> Result<(), ExitReason> {
        match &mut self.instance {
            Instance::Hibernating { state, .. } => {
                let _ = tx.send(Ok(state.clone()));
                Ok(())
            }
            Instance::Awake { store, server } => {
                match server
                    .otter_genserver_server()
                    .call_export_state(&mut *store)
                    .await
                {
                    Ok(state) => {
                        let _ = tx.send(Ok(state));
                        Ok(())
                    }
                    Err(e) => {
                        let reason = crash(e);
                        let _ = tx.send(Err(reason.to_string()));
                        Err(reason)
                    }
                }
            }
            Instance::Gone => unreachable!("process instance is always restored"),
        }
    }

    /// Serialize the state and drop the instance.
    async fn hibernate(&mut self) -> Result<(), ExitReason> {
        let Instance::Awake { store, server } = &mut self.instance else {
            return Ok(());
        };
        let state = server
            .otter_genserver_server()
            .call_export_state(&mut *store)
            .await
            .map_err(crash)?;
        let Instance::Awake { store, .. } = std::mem::replace(&mut self.instance, Instance::Gone)
        else {
            unreachable!()
        };
        let ctx = store.into_data();
        ctx.limits.reset();
        self.instance = Instance::Hibernating { ctx, state };
        self.entry.hibernating.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn handle(&mut self, event: Event) -> Flow {
        let Instance::Awake { store, server } = &mut self.instance else {
            unreachable!("handle runs awake")
        };
        let guest = server.otter_genserver_server();
        match event {
            Event::Message(first) if first.batchable() && store.data().mailbox.has_message() => {
                handle_batch(store, server, first).await
            }
            Event::Signal(Signal::Stop(reason)) => Flow::Stop(reason),
            Event::Exit { from, reason } => {
                let info = WitInfo::Exit(WitExitSignal {
                    from,
                    reason: reason.to_wit(),
                });
                noreply_flow(guest.call_handle_info(&mut *store, &info).await)
            }
            Event::Signal(
                Signal::Reply { .. }
                | Signal::GetState(_)
                | Signal::Suspend
                | Signal::Resume
                | Signal::Exit { .. },
            ) => {
                unreachable!("answered without a callback")
            }
            Event::Timeout => {
                noreply_flow(guest.call_handle_info(&mut *store, &WitInfo::Timeout).await)
            }
            Event::Message(Message::Cast(req)) => {
                noreply_flow(guest.call_handle_cast(&mut *store, &req).await)
            }
            Event::Message(Message::Info(msg)) => noreply_flow(
                guest
                    .call_handle_info(&mut *store, &WitInfo::Message(msg))
                    .await,
            ),
            Event::Message(Message::Down {
                monitor,
                pid,
                reason,
            }) => {
                // A demonitored ref's DOWN is dropped, even if it was already queued.
                if store.data_mut().monitors.remove(&monitor).is_none() {
                    return Flow::Next(WitNext::None);
                }
                let info = WitInfo::Down(WitDown {
                    monitor,
                    pid,
                    reason: reason.to_wit(),
                });
                noreply_flow(guest.call_handle_info(&mut *store, &info).await)
            }
            Event::Message(Message::Call {
                request,
                caller,
                reply,
            }) => {
                let ctx = store.data_mut();
                let tag = ctx.next_tag;
                ctx.next_tag += 1;
                ctx.current_call = Some((tag, reply));
                let from = WitReplyTo {
                    server: ctx.pid,
                    caller,
                    tag,
                };
                let result = guest.call_handle_call(&mut *store, &request, from).await;
                let ctx = store.data_mut();
                // None if the guest already answered with `reply` inside the callback.
                let slot = ctx.current_call.take().map(|(_, s)| s);
                match result {
                    Ok(result) => call_flow(ctx, tag, slot, result),
                    Err(e) => {
                        if let Some(s) = slot {
                            ctx.pending.insert(tag, s);
                        }
                        Flow::Crash(crash(e))
                    }
                }
            }
        }
    }

    /// Run `terminate` (unless the instance is unusable) and hand the pending callers to the
    /// exit guard, which answers them once the process is gone.
    async fn exit(&mut self, mut reason: ExitReason, terminate: bool) -> ExitReason {
        if terminate {
            match self.awake().await {
                Ok((store, server)) => {
                    let wit_reason = reason.to_wit();
                    if let Err(e) = server
                        .otter_genserver_server()
                        .call_terminate(store, &wit_reason)
                        .await
                    {
                        reason = crash(e);
                    }
                }
                Err(r) => reason = r,
            }
        }
        if let Instance::Gone = self.instance {
            return reason;
        }
        let ctx = self.ctx();
        let pending: Vec<ReplySlot> = ctx
            .current_call
            .take()
            .map(|(_, s)| s)
            .into_iter()
            .chain(ctx.pending.drain().map(|(_, s)| s))
            .collect();
        self.pending = pending;
        reason
    }
}

/// Most messages one `handle-batch` carries: enough to amortise entering the guest, few enough
/// that signals and the batch's first callers are not kept waiting long.
const BATCH_MAX: usize = 64;

/// Past this many bytes of terms a batch takes no more messages, so that large messages are
/// not copied twice for nothing.
const BATCH_BYTES: usize = 64 * 1024;

/// Hand `first` and the messages already queued behind it to `handle-batch`, then act on each
/// outcome as if its message had come alone. Messages the guest did not reach go back to the
/// front of the mailbox.
async fn handle_batch(store: &mut Store<ProcessCtx>, server: &Genserver, first: Message) -> Flow {
    let ctx = store.data_mut();
    let mut terms = Vec::new();
    let mut batch = Vec::with_capacity(8);
    let mut next = Some(first);
    while let Some(msg) = next {
        let (term, envelope) = match msg {
            Message::Call {
                request,
                caller,
                reply,
            } => {
                let tag = ctx.next_tag;
                ctx.next_tag += 1;
                // Held as pending so that `reply` inside the callback finds it.
                ctx.pending.insert(tag, reply);
                let from = WitReplyTo {
                    server: ctx.pid,
                    caller,
                    tag,
                };
                (request, WitEnvelope::Call((0, from)))
            }
            Message::Cast(req) => (req, WitEnvelope::Cast(0)),
            Message::Info(msg) => (msg, WitEnvelope::Info(0)),
            Message::Down { .. } => unreachable!("a DOWN is never batched"),
        };
        let len = u32::try_from(term.len()).expect("a term fits the guest's memory");
        batch.push(match envelope {
            WitEnvelope::Call((_, from)) => WitEnvelope::Call((len, from)),
            WitEnvelope::Cast(_) => WitEnvelope::Cast(len),
            WitEnvelope::Info(_) => WitEnvelope::Info(len),
        });
        terms.extend_from_slice(&term);
        next = if batch.len() < BATCH_MAX && terms.len() < BATCH_BYTES {
            ctx.mailbox.next_batchable()
        } else {
            None
        };
    }
    let outcomes = match server
        .otter_genserver_server()
        .call_handle_batch(&mut *store, &terms, &batch)
        .await
    {
        Ok(o) => o,
        // The batch's callers are pending: the exit answers them.
        Err(e) => return Flow::Crash(crash(e)),
    };
    let ctx = store.data_mut();
    if outcomes.is_empty() {
        return Flow::Crash(ExitReason::Error(
            "handle-batch handled no message".to_owned(),
        ));
    }
    let mut flow = Flow::Next(WitNext::None);
    let mut handled = 0;
    let mut offset = 0;
    for (envelope, outcome) in batch.iter().zip(outcomes) {
        handled += 1;
        offset += envelope_len(envelope);
        flow = match (envelope, outcome) {
            (WitEnvelope::Call((_, from)), WitOutcome::Call(result)) => {
                let slot = ctx.pending.remove(&from.tag);
                call_flow(ctx, from.tag, slot, result)
            }
            (WitEnvelope::Cast(_) | WitEnvelope::Info(_), WitOutcome::Noreply(result)) => {
                noreply_flow(Ok(result))
            }
            _ => {
                return Flow::Crash(ExitReason::Error(
                    "handle-batch returned an outcome of the wrong kind".to_owned(),
                ));
            }
        };
        if !matches!(flow, Flow::Next(WitNext::None)) {
            break;
        }
    }
    let mut unhandled = Vec::with_capacity(batch.len() - handled);
    for envelope in batch.into_iter().skip(handled) {
        let end = offset + envelope_len(&envelope);
        let term = terms[offset..end].to_vec();
        offset = end;
        unhandled.push(match envelope {
            WitEnvelope::Call((_, from)) => match ctx.pending.remove(&from.tag) {
                Some(reply) => Message::Call {
                    request: term,
                    caller: from.caller,
                    reply,
                },
                None => continue,
            },
            WitEnvelope::Cast(_) => Message::Cast(term),
            WitEnvelope::Info(_) => Message::Info(term),
        });
    }
    ctx.mailbox.put_back(unhandled.into_iter());
    flow
}

fn envelope_len(envelope: &WitEnvelope) -> usize {
    let (WitEnvelope::Call((len, _)) | WitEnvelope::Cast(len) | WitEnvelope::Info(len)) = envelope;
    *len as usize
}

/// Act on `handle-call`'s result. `slot` is the caller's, unless the guest already answered
/// with `reply`.
fn call_flow(ctx: &mut ProcessCtx, tag: u64, slot: Option<ReplySlot>, result: CallResult) -> Flow {
    let answer = |slot: Option<ReplySlot>, r: Result<Term, CallError>| {
        if let Some(s) = slot {
            let _ = s.send(r);
        }
    };
    match result {
        CallResult::Reply((term, next)) => {
            answer(slot, Ok(term));
            Flow::Next(next)
        }
        CallResult::Noreply(next) => {
            if let Some(s) = slot {
                ctx.pending.insert(tag, s);
            }
            Flow::Next(next)
        }
        CallResult::StopReply((reason, term)) => {
            answer(slot, Ok(term));
            Flow::Stop(ExitReason::from_wit(reason))
        }
        CallResult::Stop(reason) => {
            // The caller learns the reason when the process has exited.
            if let Some(s) = slot {
                ctx.pending.insert(tag, s);
            }
            Flow::Stop(ExitReason::from_wit(reason))
        }
        CallResult::Badarg(why) => {
            answer(slot, Err(CallError::Badarg(why)));
            Flow::Next(WitNext::None)
        }
    }
}

fn noreply_flow(r: wasmtime::Result<NoreplyResult>) -> Flow {
    match r {
        Ok(NoreplyResult::Noreply(next)) => Flow::Next(next),
        Ok(NoreplyResult::Stop(reason)) => Flow::Stop(ExitReason::from_wit(reason)),
        Err(e) => Flow::Crash(crash(e)),
    }
}
