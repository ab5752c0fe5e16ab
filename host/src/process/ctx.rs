//! A process's store data: what the host keeps for it beside its instance, and all it keeps
//! while hibernating.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use wasmtime::{Engine, Store, UpdateDeadline};

use super::calls::Calls;
use super::monitors::Monitors;
use crate::Pid;
use crate::callbacks::Callbacks;
use crate::exit::ExitReason;
use crate::limits::GuestFault;
use crate::mailbox::Mailbox;
use crate::memory::MemoryLimit;
use crate::node::NodeInner;
use crate::process::WaitTimer;
use crate::process_limits::ProcessLimits;
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
    /// The timer of what it waits for with a deadline, one at a time: the calls it makes
    /// and its idle timeout. Kept from wait to wait.
    pub(crate) wait_timer: WaitTimer,
    /// Its `send-after` timers, made at the first (most processes arm none, and every byte
    /// here is paid by every process).
    pub(crate) timers: Option<Box<Timers>>,
    /// Monitors this process holds: ref → target.
    pub(crate) monitors: Monitors,
    /// Whether exit signals arrive as `info::exit` instead of ending the process.
    pub(crate) trap_exit: bool,
    pub(crate) limits: MemoryLimit,
    /// The message of the panic under way, from the SDK's panic hook: the trap that follows
    /// ends the process with `panic: <message>`. It holds only within the entry from the host
    /// where it was made: a guest that announces a panic and returns does not get a later,
    /// unrelated trap named after it.
    pub(crate) panic: Option<Box<str>>,
    /// The SDK's panic hook ran `terminate` after that panic, in the same entry (see the
    /// `terminated-after-panic` import): the crash report says so.
    pub(crate) terminated_after_panic: bool,
    /// Epoch ticks the current callback may run (`u32::MAX`: no limit; 49 days of the
    /// shortest tick, 1 ms). 32 bits each, as `entries`: every byte here is paid by every
    /// process, and the store it sits in is one allocation that must stay in its size class.
    pub(crate) tick_budget: u32,
    /// Epoch ticks the current callback has run, reset at each entry from the host.
    pub(crate) ticks: u32,
    /// Messages the current entry handles (a batch has several, each with its budget).
    pub(crate) entries: u32,
    /// For a process that uses WASI: the grants it started with and its WASI context,
    /// made at its first WASI call (a pure guest pays one pointer for it).
    pub(crate) wasi: Option<Box<crate::host::wasi::Wasi>>,
    /// For a process granted databases: them, and the connections its instance holds.
    pub(crate) sql: Option<Box<crate::sql::Databases>>,
}

impl ProcessCtx {
    /// A context that stands in for this one in a store that no longer runs (the old
    /// version's instance, kept during an upgrade until it commits): it has the same pid
    /// and module, the same grants, a mailbox and memory count of its own that nobody sees,
    /// and no instance resources (the upgrade keeps the old instance's apart, see
    /// [`set_aside_instance_resources`](Self::set_aside_instance_resources)).
    pub(crate) fn stand_in(&self) -> ProcessCtx {
        let mut ctx = ProcessCtx::new(
            self.pid,
            self.node.clone(),
            self.module.clone(),
            crate::mailbox::mailbox(None).1,
            Arc::new(AtomicUsize::new(0)),
            &ProcessLimits::default(),
        );
        ctx.wasi = self
            .wasi
            .as_ref()
            .map(|w| Box::new(crate::host::wasi::Wasi::new(w.grants.clone())));
        ctx.sql = self.sql.as_ref().map(|s| Box::new(s.stand_in()));
        ctx
    }

    pub(crate) fn new(
        pid: Pid,
        node: Arc<NodeInner>,
        module: Arc<str>,
        mailbox: Mailbox,
        memory: Arc<AtomicUsize>,
        own: &ProcessLimits,
    ) -> Self {
        let cap = own.memory.map_or(node.config.engine.max_memory, |m| {
            m.min(node.config.engine.max_memory)
        });
        let limits = MemoryLimit::new(cap, memory);
        let tick_budget = match own.callback_timeout.or(node.config.callback_timeout) {
            Some(limit) => {
                let tick = node.config.engine.epoch_tick.as_nanos().max(1);
                u32::try_from(limit.as_nanos().div_ceil(tick))
                    .unwrap_or(u32::MAX)
                    .max(1)
            }
            None => u32::MAX,
        };
        ProcessCtx {
            pid,
            node,
            module,
            mailbox,
            calls: Calls::default(),
            wait_timer: WaitTimer::default(),
            timers: None,
            monitors: Monitors::default(),
            trap_exit: false,
            limits,
            panic: None,
            terminated_after_panic: false,
            tick_budget,
            ticks: 0,
            entries: 1,
            wasi: None,
            sql: None,
        }
    }

    /// The host enters the guest to handle `messages` messages (a callback, or a batch): its
    /// time is counted afresh, and a panic announced in an earlier entry (which returned, or
    /// the process would be gone) no longer counts.
    pub(crate) fn entering(&mut self, messages: usize) {
        self.forget_panic();
        self.ticks = 0;
        self.entries = u32::try_from(messages.max(1)).unwrap_or(u32::MAX);
    }

    /// Forget a panic the guest announced: its instance is set aside (a failed upgrade's)
    /// and the process goes on.
    pub(crate) fn forget_panic(&mut self) {
        self.panic = None;
        self.terminated_after_panic = false;
    }

    /// Answer a call this process holds; a caller that gave up is skipped.
    pub(crate) fn answer(&mut self, tag: u64, reply: Term) {
        if let Some(slot) = self.calls.take(tag) {
            let _ = slot.send(self.node.check_reply(reply));
        }
    }
}

/// A store for one process: it yields to the scheduler at every epoch tick, its memory is
/// capped, and a callback that has run past its ticks traps (`timeout`).
///
/// The deadline callback runs only while guest code runs: a guest waiting in an async import
/// is not running, and when it resumes the callback runs once, however many ticks went by.
/// So time spent in imports is not charged, beyond one tick per import that spanned one.
pub(crate) fn new_store(engine: &Engine, mut ctx: ProcessCtx) -> Store<ProcessCtx> {
    ctx.limits.reset();
    ctx.entering(1);
    // A new instance holds no handle of the old one's.
    ctx.close_instance_resources();
    let mut store = Store::new(engine, ctx);
    store.limiter(|ctx| &mut ctx.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut store| {
        let ctx = store.data_mut();
        ctx.ticks = ctx.ticks.saturating_add(1);
        if u64::from(ctx.ticks) > u64::from(ctx.tick_budget) * u64::from(ctx.entries) {
            return Err(wasmtime::Trap::Interrupt.into());
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// How a new process gets its instance.
pub(crate) enum Instantiation {
    /// Made ahead of it (a spare, see `node::spares`), its store's data already the
    /// process's context ([`adopt`]).
    Made(Store<ProcessCtx>, Callbacks),
    /// To be made in a new store on this context.
    Make(ProcessCtx),
}

/// Whether `ctx`'s process may take the store `store` made ahead: not if its instance already
/// has more memory than the process may have (its own instantiation then fails as it should).
pub(crate) fn can_adopt(store: &Store<ProcessCtx>, ctx: &ProcessCtx) -> bool {
    store.data().limits.save().0 <= ctx.limits.cap()
}

/// Give a store made ahead of its process (a spare, made on a stand-in context) to the
/// process whose context is `ctx`, as [`new_store`] would have made it: the instance's memory
/// and table elements are counted against `ctx`'s limits (and shown in its process table
/// entry), and its callbacks' time is counted from now. [`can_adopt`] has said it may.
pub(crate) fn adopt(store: &mut Store<ProcessCtx>, mut ctx: ProcessCtx) {
    ctx.limits.restore(store.data().limits.save());
    ctx.entering(1);
    *store.data_mut() = ctx;
    // The deadline `new_store` set has passed while the spare waited.
    store.set_epoch_deadline(1);
}

/// The exit reason for an error a guest call returned. The instance is unusable afterwards.
pub(crate) fn crash(ctx: &ProcessCtx, e: wasmtime::Error) -> ExitReason {
    tracing::debug!(pid = ctx.pid, module = &*ctx.module, error = ?e, "guest trapped");
    let reason = reason(ctx, &e);
    if ctx.terminated_after_panic {
        // The guest ran it; running it here would need the instance the trap left unusable.
        tracing::info!(
            pid = ctx.pid,
            module = &*ctx.module,
            %reason,
            "terminate ran after the panic, with the state from before the failing callback"
        );
    }
    ExitReason::Error(reason)
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

#[cfg(test)]
mod tests {
    /// Every live process's store is one allocation of wasmtime's store record (1,056 bytes)
    /// and this; at 224 bytes or fewer it falls in mimalloc's 1,280-byte size class instead
    /// of the 1,536-byte one.
    #[test]
    fn a_process_context_keeps_its_store_in_the_smaller_size_class() {
        let size = std::mem::size_of::<super::ProcessCtx>();
        assert!(size <= 224, "a process's store data is {size} bytes");
    }
}
