//! A process's store data: what the host keeps for it beside its instance, and all it keeps
//! while hibernating.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use wasmtime::{Engine, Store, UpdateDeadline};

use super::calls::Calls;
use crate::Pid;
use crate::exit::ExitReason;
use crate::limits::GuestFault;
use crate::mailbox::Mailbox;
use crate::memory::MemoryLimit;
use crate::node::NodeInner;
use crate::term::Term;
use crate::timer::Timers;

/// A process's host-side state: its store data, and all it keeps while hibernating.
pub(crate) struct ProcessCtx {
    pub(crate) pid: Pid,
    pub(crate) node: Arc<NodeInner>,
    pub(crate) module: Arc<str>,
    pub(crate) mailbox: Mailbox,
    /// The calls it has taken and not answered yet.
    pub(crate) calls: Calls,
    /// Its `send-after` timers, made at the first (most processes arm none, and every byte
    /// here is paid by every process).
    pub(crate) timers: Option<Box<Timers>>,
    /// Monitors this process holds: ref → target.
    pub(crate) monitors: HashMap<u64, Pid>,
    /// Whether exit signals arrive as `info::exit` instead of ending the process.
    pub(crate) trap_exit: bool,
    pub(crate) limits: MemoryLimit,
    /// The message of the panic under way, from the SDK's panic hook: the trap that follows
    /// ends the process with `panic: <message>`.
    pub(crate) panic: Option<String>,
    /// Its WASI context, for a module that imports WASI, made at its first WASI call (a
    /// pure guest pays one pointer for it).
    pub(crate) wasi: Option<Box<crate::host::wasi::WasiState>>,
}

impl ProcessCtx {
    /// A context that stands in for this one in a store that no longer runs (the old
    /// version's instance, kept during an upgrade until it commits): it has the same pid
    /// and module, and a mailbox and memory count of its own that nobody sees.
    pub(crate) fn stand_in(&self) -> ProcessCtx {
        ProcessCtx::new(
            self.pid,
            self.node.clone(),
            self.module.clone(),
            crate::mailbox::mailbox().1,
            Arc::new(AtomicUsize::new(0)),
        )
    }

    pub(crate) fn new(
        pid: Pid,
        node: Arc<NodeInner>,
        module: Arc<str>,
        mailbox: Mailbox,
        memory: Arc<AtomicUsize>,
    ) -> Self {
        let limits = MemoryLimit::new(node.config.engine.max_memory, memory);
        ProcessCtx {
            pid,
            node,
            module,
            mailbox,
            calls: Calls::default(),
            timers: None,
            monitors: HashMap::new(),
            trap_exit: false,
            limits,
            panic: None,
            wasi: None,
        }
    }

    /// Answer a call this process holds; a caller that gave up is skipped.
    pub(crate) fn answer(&mut self, tag: u64, reply: Term) {
        if let Some(slot) = self.calls.take(tag) {
            let _ = slot.send(self.node.check_reply(reply));
        }
    }
}

/// A store for one process: it yields to the scheduler at every epoch tick, and its memory is
/// capped.
pub(crate) fn new_store(engine: &Engine, mut ctx: ProcessCtx) -> Store<ProcessCtx> {
    ctx.limits.reset();
    // A new instance holds no WASI handle of the old one's.
    ctx.wasi = None;
    let mut store = Store::new(engine, ctx);
    store.limiter(|ctx| &mut ctx.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    store
}

/// The exit reason for an error a guest call returned. The instance is unusable afterwards.
pub(crate) fn crash(ctx: &ProcessCtx, e: wasmtime::Error) -> ExitReason {
    tracing::debug!(pid = ctx.pid, module = &*ctx.module, error = ?e, "guest trapped");
    ExitReason::Error(reason(ctx, &e))
}

/// One short line saying why a guest call failed (see [`crate::trap`]).
pub(crate) fn reason(ctx: &ProcessCtx, e: &wasmtime::Error) -> String {
    // The SDK's panic hook told the host before the trap that ends the panic. A limit the
    // host enforces (the stack, the time) is named as itself even after a panic message: a
    // guest may announce a panic and then run on.
    let limit = matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::StackOverflow | wasmtime::Trap::Interrupt)
    );
    if let Some(message) = &ctx.panic
        && !limit
        && e.downcast_ref::<GuestFault>().is_none()
    {
        return format!("panic: {message}");
    }
    crate::trap::load_reason(&ctx.limits, e)
}
