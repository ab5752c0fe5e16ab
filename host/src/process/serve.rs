//! The process task: the message loop, what each callback's result does next, hibernation
//! and the exit path.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use wasmtime::Store;

use super::batch::handle_batch;
use super::ctx::{Instantiation, ProcessCtx, crash, new_store};
use super::flow::{Flow, call_flow, noreply_flow};
use crate::Pid;
use crate::bindings::{WitDown, WitExitSignal, WitInfo, WitNext, WitReplyTo, WitTimerFired};
use crate::callbacks::Callbacks;
use crate::engine::Module;
use crate::entry::ProcessEntry;
use crate::exit::{ExitReason, WitReason};
use crate::mailbox::{Mailbox, Message, Received, ReplySlot, Signal};
use crate::metering::{Callback, CallbackTimer};
use crate::term::Term;

mod sys;
mod task;
mod upgrade;

pub(crate) use task::run;

/// The instance while awake; only the state bytes while hibernating.
enum Instance {
    Awake {
        store: Store<ProcessCtx>,
        server: Callbacks,
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
    /// Hibernate after waiting this long for a message (OTP's `hibernate_after`).
    hibernate_after: Option<Duration>,
    /// A hibernating process's state written by an older version (a lazy upgrade).
    migration: Option<Box<crate::process::upgrade::Migration>>,
}

/// How [`Process::serve`] returned.
enum Served {
    Exit(ExitReason),
    /// The instance is gone; the state waits as bytes.
    Hibernated,
}

/// What [`Process::next_event`] found.
enum Woken {
    /// An event for a callback.
    Event(Event),
    /// A signal that ends the process, with or without `terminate`.
    Exit { reason: ExitReason, terminate: bool },
}

/// What woke the process.
enum Event {
    Signal(Signal),
    Message(Message),
    Timeout,
    /// An exit signal taken while not trapping exits (or from the parent): acted on without
    /// a callback.
    Exit {
        from: Pid,
        reason: ExitReason,
    },
}

/// A new instance with the state a hibernating process kept: a spare of its module if the
/// node has one (see `node::spares`), else one made here.
async fn rehydrate(
    module: &Arc<Module>,
    mut ctx: ProcessCtx,
    state: Term,
) -> Result<(Store<ProcessCtx>, Callbacks), ExitReason> {
    let node = ctx.node.clone();
    // A new instance holds no handle of the old one's.
    ctx.close_instance_resources();
    let (mut store, server) = match node.spares.take(&node, module, ctx) {
        Instantiation::Made(store, server) => (store, server),
        Instantiation::Make(ctx) => {
            let mut store = new_store(&node.engine, ctx);
            match module.pre.instantiate_async(&mut store).await {
                Ok(server) => (store, server),
                Err(e) => return Err(crash(store.data(), e)),
            }
        }
    };
    server
        .call_restore_state(&mut store, &state)
        .await
        .map_err(|e| crash(store.data(), e))?
        .map_err(|e| {
            ExitReason::Error(crate::guest_text::one_line(
                &format!("restore after hibernate: {e}"),
                crate::limits::MAX_REASON,
            ))
        })?;
    Ok((store, server))
}

fn event(received: Received) -> Event {
    match received {
        Received::Signal(sig) => Event::Signal(sig),
        Received::Message(msg) => Event::Message(msg),
        Received::Exit { from, reason } => Event::Exit { from, reason },
    }
}

impl Process {
    fn ctx(&mut self) -> &mut ProcessCtx {
        match &mut self.instance {
            Instance::Awake { store, .. } => store.data_mut(),
            Instance::Hibernating { ctx, .. } => ctx,
            Instance::Gone => unreachable!("process instance is always restored"),
        }
    }

    /// The message loop, from `next` (or from `woken`, an event that already woke a
    /// hibernating process). Returns when the process exits, or when it hibernates: then the
    /// caller waits for the next event with a small future, and this large one is freed.
    async fn serve(&mut self, mut next: WitNext, mut woken: Option<Event>) -> Served {
        loop {
            let event = match woken.take() {
                Some(event) => event,
                None => {
                    let idle = match next {
                        // OTP's `hibernate_after` applies only when no idle timeout is set.
                        WitNext::None if self.hibernate_after.is_some() => {
                            match self.next_event(self.hibernate_after).await {
                                Woken::Event(Event::Timeout) => {
                                    next = WitNext::Hibernate;
                                    continue;
                                }
                                Woken::Event(event) => {
                                    woken = Some(event);
                                    continue;
                                }
                                Woken::Exit { reason, terminate } => {
                                    return Served::Exit(self.exit(reason, terminate).await);
                                }
                            }
                        }
                        WitNext::None => None,
                        WitNext::Timeout(ms) => Some(Duration::from_millis(ms.into())),
                        WitNext::Hibernate => {
                            return match self.hibernate().await {
                                Ok(()) => Served::Hibernated,
                                Err(reason) => Served::Exit(self.exit(reason, false).await),
                            };
                        }
                        WitNext::Continue(arg) => {
                            next = match self.handle_continue(&arg).await {
                                Flow::Next(n) => n,
                                Flow::Stop(reason) => {
                                    return Served::Exit(self.exit(reason, true).await);
                                }
                                Flow::Crash(reason) => {
                                    return Served::Exit(self.exit(reason, false).await);
                                }
                            };
                            continue;
                        }
                    };
                    match self.next_event(idle).await {
                        Woken::Event(event) => event,
                        Woken::Exit { reason, terminate } => {
                            return Served::Exit(self.exit(reason, terminate).await);
                        }
                    }
                }
            };
            let flow = match self.awake().await {
                Ok(_) => {
                    // Without a recorder, one relaxed load and nothing else.
                    let timer = if crate::metering::enabled() {
                        self.callback_of(&event).map(CallbackTimer::start)
                    } else {
                        None
                    };
                    let flow = self.handle(event).await;
                    if let Some(timer) = timer {
                        timer.finish(&self.module.metrics, self.module.name());
                    }
                    flow
                }
                Err(reason) => Flow::Crash(reason),
            };
            next = match flow {
                Flow::Next(n) => n,
                Flow::Stop(reason) => return Served::Exit(self.exit(reason, true).await),
                Flow::Crash(reason) => return Served::Exit(self.exit(reason, false).await),
            };
        }
    }

    /// The callback `event` runs, as the callback-duration metric names it (none for a stop).
    fn callback_of(&mut self, event: &Event) -> Option<Callback> {
        match event {
            Event::Message(first) if first.batchable() && self.ctx().mailbox.has_message() => {
                Some(Callback::Batch)
            }
            Event::Message(Message::Call { .. }) => Some(Callback::Call),
            Event::Message(Message::Cast(_)) => Some(Callback::Cast),
            Event::Signal(_) | Event::Exit { .. } => None,
            Event::Message(_) | Event::Timeout => Some(Callback::Info),
        }
    }

    /// `handle-continue`, before any queued message.
    async fn handle_continue(&mut self, arg: &Term) -> Flow {
        match self.awake().await {
            Ok((store, server)) => {
                let r = server.call_handle_continue(&mut *store, arg).await;
                noreply_flow(store.data(), r)
            }
            Err(reason) => Flow::Crash(reason),
        }
    }

    /// The next event that needs a callback, or [`Event::Timeout`] once `idle` has passed
    /// without one. Signals that need none are handled here and do not wake a hibernating
    /// process. A system message (`get_state`, `replace_state`, suspend, resume, upgrade)
    /// starts `idle` again, as OTP's `system_continue` re-enters the receive with the whole
    /// timeout; a late reply, an ignored exit signal or a dropped `DOWN` does not, as none
    /// of them reaches an OTP server's mailbox.
    async fn next_event(&mut self, idle: Option<Duration>) -> Woken {
        // An idle time too far to add to now never comes.
        let from_now = || idle.and_then(|d| tokio::time::Instant::now().checked_add(d));
        let mut deadline = from_now();
        loop {
            let event = self.receive(deadline).await;
            let system = matches!(
                event,
                Event::Signal(
                    Signal::GetState(_)
                        | Signal::ReplaceState { .. }
                        | Signal::Suspend
                        | Signal::Resume
                        | Signal::Upgrade(_)
                )
            );
            match event {
                Event::Signal(Signal::Reply { tag, reply }) => self.ctx().answer(tag, reply),
                Event::Signal(Signal::GetState(tx)) => {
                    // Boxed: rare, and a guest call's future would size this one.
                    if let Err(reason) = Box::pin(self.export_state(tx)).await {
                        return Woken::Exit {
                            reason,
                            terminate: false,
                        };
                    }
                }
                Event::Signal(Signal::ReplaceState { state, reply }) => {
                    // Boxed, as for `GetState`.
                    if let Err(reason) = Box::pin(self.replace_state(state, reply)).await {
                        return Woken::Exit {
                            reason,
                            terminate: false,
                        };
                    }
                }
                Event::Signal(Signal::Kill) => {
                    return Woken::Exit {
                        reason: ExitReason::Killed,
                        terminate: false,
                    };
                }
                Event::Exit { from, reason } => {
                    // The parent's exit signal is an order to terminate, never an `exit`
                    // info: OTP's gen_server runs terminate(reason) on it when trapping;
                    // Otter runs it when not trapping too, as a supervisor's shutdown always
                    // does.
                    if self.entry.parent() == Some(from) {
                        return Woken::Exit {
                            reason,
                            terminate: true,
                        };
                    }
                    if reason != ExitReason::Normal || from == self.entry.pid {
                        // Not trapping: the signal ends the process, without terminate.
                        return Woken::Exit {
                            reason,
                            terminate: false,
                        };
                    }
                }
                Event::Signal(Signal::Upgrade(order)) => {
                    let Ok(order) = order.downcast::<crate::process::UpgradeOrder>() else {
                        tracing::error!(pid = self.entry.pid, "an upgrade order of another type");
                        continue;
                    };
                    // Boxed, as for `GetState`.
                    if let Err(reason) = Box::pin(self.upgrade(order)).await {
                        return Woken::Exit {
                            reason,
                            terminate: false,
                        };
                    }
                }
                Event::Signal(Signal::Suspend) => self.suspended = true,
                Event::Signal(Signal::Resume) => self.suspended = false,
                // A demonitored ref's DOWN, queued before the demonitor: OTP's `demonitor`
                // with `flush` removes it from the mailbox, so it neither wakes a hibernating
                // process nor cancels an idle timeout.
                Event::Message(Message::Down { monitor, .. })
                    if !self.ctx().monitors.holds(monitor) => {}
                event => return Woken::Event(event),
            }
            if system {
                deadline = from_now();
            }
        }
    }

    async fn receive(&mut self, deadline: Option<tokio::time::Instant>) -> Event {
        let suspended = self.suspended;
        let parent = self.entry.parent();
        let ctx = self.ctx();
        // The flag in force when the signal is taken; the parent's is never a message.
        let trapping = ctx.trap_exit;
        let traps = move |from| trapping && Some(from) != parent;
        let mailbox: &mut Mailbox = &mut ctx.mailbox;
        let Some(deadline) = deadline.filter(|_| !suspended) else {
            return event(mailbox.recv(!suspended, traps).await);
        };
        // The process's wait timer, kept armed from wait to wait (see `process::wait_timer`).
        match ctx
            .wait_timer
            .wait(mailbox.recv(true, traps), deadline)
            .await
        {
            Some(received) => event(received),
            None => Event::Timeout,
        }
    }

    /// The awake instance, re-created from the state if hibernating.
    async fn awake(&mut self) -> Result<(&mut Store<ProcessCtx>, &Callbacks), ExitReason> {
        if let Instance::Hibernating { .. } = self.instance {
            let Instance::Hibernating { ctx, state } =
                std::mem::replace(&mut self.instance, Instance::Gone)
            else {
                unreachable!()
            };
            // Boxed: the instantiation future is large and a task's future is as large as its
            // largest state, which a hibernating process would otherwise carry for nothing.
            let (store, server) = Box::pin(self.wake(ctx, state)).await?;
            self.instance = Instance::Awake { store, server };
            self.entry.set_hibernating(false);
        }
        match &mut self.instance {
            Instance::Awake { store, server } => {
                // Every callback but `init` enters through here: its time starts now.
                store.data_mut().entering(1);
                Ok((store, server))
            }
            _ => unreachable!(),
        }
    }

    /// Answer a `get_state` signal, from the kept bytes when hibernating. Bytes an older
    /// version wrote (a lazy upgrade) are migrated first, as waking would, and the process
    /// hibernates again: the state shown is the one the version it reports runs with.
    async fn export_state(
        &mut self,
        tx: oneshot::Sender<Result<Term, String>>,
    ) -> Result<(), ExitReason> {
        let rehibernate = self.migration.is_some();
        if rehibernate && let Err(reason) = self.awake().await {
            let _ = tx.send(Err(reason.to_string()));
            return Err(reason);
        }
        let state = match &mut self.instance {
            Instance::Hibernating { state, .. } => Ok(state.clone()),
            Instance::Awake { store, server } => {
                // An entry of its own: its time counts from now, and a panic announced
                // before does not name its trap.
                store.data_mut().entering(1);
                server
                    .call_export_state(&mut *store)
                    .await
                    .map_err(|e| crash(store.data(), e))
            }
            Instance::Gone => unreachable!("process instance is always restored"),
        };
        let state = match state {
            Ok(state) if rehibernate => self.hibernate().await.map(|()| state),
            state => state,
        };
        match state {
            Ok(state) => {
                let _ = tx.send(Ok(state));
                Ok(())
            }
            Err(reason) => {
                let _ = tx.send(Err(reason.to_string()));
                Err(reason)
            }
        }
    }

    /// Serialize the state and drop the instance.
    async fn hibernate(&mut self) -> Result<(), ExitReason> {
        let Instance::Awake { store, server } = &mut self.instance else {
            return Ok(());
        };
        store.data_mut().entering(1);
        let state = server
            .call_export_state(&mut *store)
            .await
            .map_err(|e| crash(store.data(), e))?;
        let Instance::Awake { store, .. } = std::mem::replace(&mut self.instance, Instance::Gone)
        else {
            unreachable!()
        };
        let mut ctx = store.into_data();
        ctx.limits.reset();
        ctx.wait_timer.clear();
        // Its files and connections end with the instance: a transaction it left open is
        // rolled back now, and no descriptor is held, for as long as it sleeps.
        ctx.close_instance_resources();
        self.instance = Instance::Hibernating { ctx, state };
        self.entry.set_hibernating(true);
        Ok(())
    }

    async fn handle(&mut self, event: Event) -> Flow {
        let Instance::Awake { store, server } = &mut self.instance else {
            unreachable!("handle runs awake")
        };
        let server = &*server;
        match event {
            Event::Message(first) if first.batchable() && store.data().mailbox.has_message() => {
                handle_batch(store, server, first).await
            }
            Event::Signal(Signal::Stop(reason)) => Flow::Stop(reason),
            Event::Message(Message::Exit { from, reason }) => {
                let info = WitInfo::Exit(WitExitSignal {
                    from,
                    reason: reason.to_wit(),
                });
                let r = server.call_handle_info(&mut *store, &info).await;
                noreply_flow(store.data(), r)
            }
            Event::Signal(
                Signal::Reply { .. }
                | Signal::GetState(_)
                | Signal::ReplaceState { .. }
                | Signal::Suspend
                | Signal::Resume
                | Signal::Kill
                | Signal::Upgrade(_),
            )
            | Event::Exit { .. } => {
                unreachable!("answered without a callback")
            }
            Event::Timeout => {
                let r = server
                    .call_handle_info(&mut *store, &WitInfo::Timeout)
                    .await;
                noreply_flow(store.data(), r)
            }
            Event::Message(Message::Cast(req)) => {
                let r = server.call_handle_cast(&mut *store, &req.into_vec()).await;
                noreply_flow(store.data(), r)
            }
            Event::Message(Message::Info(msg)) => {
                let r = server
                    .call_handle_info(&mut *store, &WitInfo::Message(msg.into_vec()))
                    .await;
                noreply_flow(store.data(), r)
            }
            Event::Message(Message::Timer { timer, msg }) => {
                // One of its own timers has fired: its entry in the table goes now.
                if let Some(timers) = store.data_mut().timers.as_mut() {
                    timers.fired(timer);
                }
                let info = WitInfo::Timer(WitTimerFired {
                    timer,
                    msg: msg.into_vec(),
                });
                let r = server.call_handle_info(&mut *store, &info).await;
                noreply_flow(store.data(), r)
            }
            Event::Message(Message::Down {
                monitor,
                pid,
                reason,
            }) => {
                // Its monitor ends here; one demonitored was dropped by `next_event`.
                if store.data_mut().monitors.remove(&monitor).is_none() {
                    return Flow::Next(WitNext::None);
                }
                let info = WitInfo::Down(WitDown {
                    monitor,
                    pid,
                    reason: reason.to_wit(),
                });
                let r = server.call_handle_info(&mut *store, &info).await;
                noreply_flow(store.data(), r)
            }
            Event::Message(Message::Call {
                request,
                caller,
                reply,
            }) => {
                let ctx = store.data_mut();
                let tag = ctx.calls.begin(reply);
                let from = WitReplyTo {
                    server: ctx.pid,
                    caller,
                    tag,
                };
                let result = server.call_handle_call(&mut *store, &request, from).await;
                let ctx = store.data_mut();
                // None if the guest already answered with `reply` inside the callback.
                let slot = ctx.calls.finish_current();
                match result {
                    Ok(result) => call_flow(ctx, tag, slot, result),
                    Err(e) => {
                        // The exit answers it with the crash reason.
                        if let Some(s) = slot {
                            ctx.calls.keep(tag, s);
                        }
                        Flow::Crash(crash(ctx, e))
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
                    if let Err(e) = server.call_terminate(&mut *store, &wit_reason).await {
                        reason = crash(store.data(), e);
                    }
                }
                Err(r) => reason = r,
            }
        }
        if let Instance::Gone = self.instance {
            return reason;
        }
        self.pending = self.ctx().calls.drain();
        reason
    }
}
