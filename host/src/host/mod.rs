//! What a guest imports: one module per WIT interface, all on one store data type.

mod clock;
mod log;
mod process;
mod registry;
mod spawn;
mod supervisor;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};

use crate::Pid;
use crate::bindings::{Genserver, otter};
use crate::mailbox::{Mailbox, ReplySlot};
use crate::node::NodeInner;
use crate::term::Term;
use crate::timer::Timers;

/// A process's host-side state: its store data, and all it keeps while hibernating.
pub(crate) struct ProcessCtx {
    pub(crate) pid: Pid,
    pub(crate) node: Arc<NodeInner>,
    pub(crate) module: Arc<str>,
    pub(crate) mailbox: Mailbox,
    /// The call being handled, so `reply` inside `handle-call` can answer it.
    pub(crate) current_call: Option<(u64, ReplySlot)>,
    /// Calls answered `noreply`, by tag.
    pub(crate) pending: HashMap<u64, ReplySlot>,
    pub(crate) next_tag: u64,
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
}

/// Caps a process's linear memories, all together, and reports their size to the process
/// table.
pub(crate) struct MemoryLimit {
    cap: usize,
    used: Arc<AtomicUsize>,
    /// A growth was refused: an `unreachable` trap that follows is the guest's allocator
    /// giving up, and the process exits `memory_limit`.
    refused: bool,
    /// Elements in all of the store's tables, which live in host memory.
    table_elements: usize,
}

use crate::limits::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES};

impl MemoryLimit {
    pub(crate) fn new(cap: usize, used: Arc<AtomicUsize>) -> Self {
        MemoryLimit {
            cap,
            used,
            refused: false,
            table_elements: 0,
        }
    }

    /// Whether this store was refused memory.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }

    /// What the store counts now, to [`MemoryLimit::restore`] once another store that took
    /// this limit over is dropped (an upgrade that did not commit).
    pub(crate) fn save(&self) -> (usize, usize) {
        (
            self.used.load(std::sync::atomic::Ordering::Relaxed),
            self.table_elements,
        )
    }

    /// Count again what [`MemoryLimit::save`] saved.
    pub(crate) fn restore(&mut self, (used, table_elements): (usize, usize)) {
        self.used.store(used, std::sync::atomic::Ordering::Relaxed);
        self.table_elements = table_elements;
        self.refused = false;
    }
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The cap is the process's, not each memory's: a component may have many memories.
        let growth = desired.saturating_sub(current);
        let used = self.used.load(std::sync::atomic::Ordering::Relaxed);
        if used.saturating_add(growth) > self.cap {
            self.refused = true;
            return Ok(false);
        }
        self.used
            .fetch_add(growth, std::sync::atomic::Ordering::Relaxed);
        // A guest that handled a refused allocation and grew since is not out of memory.
        self.refused = false;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .table_elements
            .saturating_add(desired.saturating_sub(current));
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

impl MemoryLimit {
    /// The store this limiter served is gone (hibernation) or new: no memory yet.
    pub(crate) fn reset(&mut self) {
        self.used.store(0, std::sync::atomic::Ordering::Relaxed);
        self.refused = false;
        self.table_elements = 0;
    }
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
            current_call: None,
            pending: HashMap::new(),
            next_tag: 0,
            timers: None,
            monitors: HashMap::new(),
            trap_exit: false,
            limits,
            panic: None,
        }
    }

    /// Answer a call this process holds; a caller that gave up is skipped.
    pub(crate) fn answer(&mut self, tag: u64, reply: Term) {
        let slot = match self.current_call.take() {
            Some((t, slot)) if t == tag => Some(slot),
            other => {
                self.current_call = other;
                self.pending.remove(&tag)
            }
        };
        if let Some(slot) = slot {
            let _ = slot.send(self.node.check_reply(reply));
        }
    }
}

/// A store for one process: it yields to the scheduler at every epoch tick, and its memory is
/// capped.
pub(crate) fn new_store(engine: &Engine, mut ctx: ProcessCtx) -> Store<ProcessCtx> {
    ctx.limits.reset();
    let mut store = Store::new(engine, ctx);
    store.limiter(|ctx| &mut ctx.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    store
}

pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<ProcessCtx>> {
    let mut linker = Linker::new(engine);
    Genserver::add_to_linker::<ProcessCtx, HasSelf<ProcessCtx>>(&mut linker, |ctx| ctx)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok(linker)
}

impl otter::genserver::types::Host for ProcessCtx {}
