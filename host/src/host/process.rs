//! `otter:genserver/process`: what a process may ask of the host.

use std::time::Duration;

use crate::bindings::otter::genserver::process::Host;
use crate::bindings::otter::genserver::types::{
    CallError as WitCallError, Dest, ExitReason as WitExitReason, MonitorRef, Pid, RegisterError,
    ReplyTo, Term, TimerRef,
};
use crate::dest::Dest as NodeDest;
use crate::error::{CallError, SendError};
use crate::exit::{ExitReason, WitReason};
use crate::host::ProcessCtx;
use crate::limits::{GuestFault, MAX_REASON};
use crate::mailbox::Signal;
use crate::node::{DEFAULT_CALL_TIMEOUT, NodeInner};
use crate::timer::{TimerLimits, Timers};

pub(crate) fn dest(d: Dest) -> NodeDest {
    match d {
        Dest::Pid(p) => NodeDest::Pid(p),
        Dest::Name(n) => NodeDest::Name(n),
        Dest::Via((registry, key)) => NodeDest::Via(registry, key),
    }
}

fn call_error(e: CallError) -> WitCallError {
    match e {
        CallError::Timeout => WitCallError::Timeout,
        CallError::NoProc => WitCallError::Noproc,
        CallError::CallingSelf => WitCallError::CallingSelf,
        CallError::Exited(r) => WitCallError::Exited(r.to_wit()),
        CallError::Badarg(m) | CallError::BadReply(m) => WitCallError::Badarg(m),
        CallError::Encode(e) => WitCallError::Badarg(e.0),
        CallError::Registry(e) => WitCallError::Registry(crate::host::registry::registry_error(e)),
        CallError::Busy => WitCallError::Busy,
    }
}

/// A failed send as the guest's `call-error`, as the WIT's `send` returns it.
fn send_error(e: SendError) -> WitCallError {
    match e {
        SendError::NoProc => WitCallError::Noproc,
        SendError::Badarg(m) => WitCallError::Badarg(m),
        SendError::Registry(e) => WitCallError::Registry(crate::host::registry::registry_error(e)),
    }
}

impl ProcessCtx {
    /// Arm a timer that runs `deliver(node, to, ref, msg)` after `ms` milliseconds.
    /// `send-after` and `start-timer` have no error to return (Erlang's return a ref even
    /// for a dead destination), so a message too large to deliver is dropped, and said so.
    fn arm_timer(
        &mut self,
        what: &str,
        to: Dest,
        msg: Term,
        ms: u32,
        deliver: impl FnOnce(&NodeInner, NodeDest, TimerRef, Term) + Send + 'static,
    ) -> wasmtime::Result<TimerRef> {
        let id = self.node.next_ref();
        if let Err(why) = self.node.check_size("message", &msg) {
            tracing::warn!(
                pid = self.pid,
                module = &*self.module,
                "{what} dropped: {why}"
            );
            return Ok(id);
        }
        let node = self.node.clone();
        let to = dest(to);
        // The messages of pending timers live on the host: together they may take as much as
        // the process's own memory may.
        let limits = TimerLimits {
            count: self.node.config.max_timers,
            bytes: self.limits.cap(),
        };
        self.timers
            .get_or_insert_with(|| Box::new(Timers::new()))
            .arm(
                id,
                Duration::from_millis(ms.into()),
                msg.len(),
                limits,
                move || deliver(&node, to, id, msg),
            )
            .map_err(|_| GuestFault::system_limit())?;
        Ok(id)
    }
}

impl Host for ProcessCtx {
    fn self_(&mut self) -> wasmtime::Result<Pid> {
        Ok(self.pid)
    }

    fn send(&mut self, to: Dest, msg: Term) -> wasmtime::Result<Result<(), WitCallError>> {
        Ok(self.node.send(&dest(to), msg).map_err(send_error))
    }

    async fn call(
        &mut self,
        to: Dest,
        request: Term,
        timeout_ms: Option<u32>,
    ) -> Result<Term, WitCallError> {
        let timeout =
            timeout_ms.map_or(DEFAULT_CALL_TIMEOUT, |ms| Duration::from_millis(ms.into()));
        self.node
            .call_from_process(self.pid, &dest(to), request, timeout, &mut self.wait_timer)
            .await
            .map_err(call_error)
    }

    fn cast(&mut self, to: Dest, msg: Term) -> wasmtime::Result<()> {
        self.node.cast(&dest(to), msg);
        Ok(())
    }

    fn reply(&mut self, to: ReplyTo, msg: Term) -> wasmtime::Result<()> {
        if to.server == self.pid {
            self.answer(to.tag, msg);
        } else if let Some(entry) = self.node.entry(to.server) {
            let _ = entry.mailbox.signal(Signal::Reply {
                tag: to.tag,
                reply: msg,
            });
        }
        Ok(())
    }

    fn send_after(&mut self, to: Dest, msg: Term, ms: u32) -> wasmtime::Result<TimerRef> {
        self.arm_timer("send-after", to, msg, ms, |node, to, _, msg| {
            let _ = node.send(&to, msg);
        })
    }

    fn start_timer(&mut self, to: Dest, msg: Term, ms: u32) -> wasmtime::Result<TimerRef> {
        self.arm_timer("start-timer", to, msg, ms, |node, to, id, msg| {
            node.send_timer(&to, id, msg);
        })
    }

    fn cancel_timer(&mut self, timer: TimerRef) -> wasmtime::Result<Option<u32>> {
        Ok(self
            .timers
            .as_mut()
            .and_then(|t| t.cancel(timer))
            .map(|left| u32::try_from(left.as_millis()).unwrap_or(u32::MAX)))
    }
    fn register(&mut self, name: String) -> wasmtime::Result<Result<(), RegisterError>> {
        // A process's entry leaves the table only after its last callback has returned, so
        // this is always found; should that ever break, the process ends, not the node.
        let Some(entry) = self.node.entry(self.pid) else {
            return Err(wasmtime::Error::msg(
                "register: the process left the process table",
            ));
        };
        crate::limits::check_name(&name).map_err(GuestFault::badarg)?;
        Ok(self.node.register(&entry, &name).map_err(|e| match e {
            crate::registry::RegisterError::AlreadyRegistered(p) => {
                RegisterError::AlreadyRegistered(p)
            }
            crate::registry::RegisterError::AlreadyNamed(n) => RegisterError::AlreadyNamed(n),
        }))
    }

    fn unregister(&mut self) -> wasmtime::Result<()> {
        self.node.unregister(self.pid);
        Ok(())
    }

    fn whereis(&mut self, name: String) -> wasmtime::Result<Option<Pid>> {
        Ok(self.node.whereis(&name))
    }

    fn monitor(&mut self, target: Dest) -> wasmtime::Result<MonitorRef> {
        // Each monitor is kept on the host (here and beside its target) until it fires or is
        // removed; a process that never lets go of them is a leak, as timers would be.
        if self.monitors.len() >= crate::limits::MAX_MONITORS {
            return Err(GuestFault::system_limit());
        }
        let (mref, target) = self.node.monitor_from(self.pid, &dest(target));
        self.monitors.insert(mref, target);
        Ok(mref)
    }

    fn demonitor(&mut self, monitor: MonitorRef) -> wasmtime::Result<()> {
        if let Some(target) = self.monitors.remove(&monitor) {
            self.node.demonitor(target, monitor);
        }
        Ok(())
    }

    fn link(&mut self, target: Pid) -> wasmtime::Result<()> {
        self.node.link(self.pid, target);
        Ok(())
    }

    fn unlink(&mut self, target: Pid) -> wasmtime::Result<()> {
        self.node.unlink(self.pid, target);
        Ok(())
    }

    fn exit(&mut self, target: Pid, reason: WitExitReason) -> wasmtime::Result<()> {
        self.node
            .exit_signal(self.pid, target, ExitReason::from_wit(reason));
        Ok(())
    }

    fn trap_exit(&mut self, enable: bool) -> wasmtime::Result<bool> {
        Ok(std::mem::replace(&mut self.trap_exit, enable))
    }

    fn panicking(&mut self, message: String) -> wasmtime::Result<String> {
        // The first panic is the one that ends the process (a panic while panicking aborts).
        if self.panic.is_none() {
            // Cut so that `panic: <message>` fits the exit reason's length.
            let max = MAX_REASON - "panic: ".len();
            self.panic = Some(crate::guest_text::one_line(&message, max).into());
            // The `terminate` the SDK runs next gets a callback's time, once per entry (the
            // record is forgotten at the next): a guest calling this again gets no more.
            self.ticks = 0;
        }
        Ok(format!(
            "panic: {}",
            self.panic.as_deref().unwrap_or_default()
        ))
    }

    fn terminated_after_panic(&mut self) -> wasmtime::Result<()> {
        // Only after a panic in this entry: a guest saying so at any other time changes
        // nothing.
        self.terminated_after_panic = self.panic.is_some();
        Ok(())
    }

    fn message_queue_len(&mut self) -> wasmtime::Result<u32> {
        Ok(u32::try_from(self.mailbox.len()).unwrap_or(u32::MAX))
    }
}
