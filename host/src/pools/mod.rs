//! Where process stacks and linear memories live.
//!
//! A node holds 100,000 processes and more, and the first limit it meets is not RAM but the
//! kernel's count of memory maps per address space (`vm.max_map_count`, 65530 by default).
//! Wasmtime's on-demand allocator maps every linear memory on its own (its accessible part and
//! its reserve for growth: 2 maps) and every fiber stack with its guard page (2 maps); at 4 maps
//! per process the count ran out at about 16,000 processes. Here both come from pools of
//! fixed-size slots carved out of large `MAP_NORESERVE` chunks: a chunk of up to 1024 slots
//! costs one or two maps whatever is in it, and the kernel merges neighbouring chunks.
//!
//! ## Stacks
//!
//! A process's fiber stack (`async_stack_size`: the wasm stack plus a margin for host frames) is
//! one slot, whose lowest page is a guard page. Wasm code checks its own stack limit
//! (`max_wasm_stack`); the margin below it holds the host frames of the deepest import, which
//! are shallow and do not depend on what the guest passes (the `term` module never recurses).
//! Host code that still overran the margin would fault on the guard page, ending the node,
//! instead of writing into the next process's stack.
//!
//! The guard is installed with `madvise(MADV_GUARD_INSTALL)` (Linux 6.13 and later), which
//! marks page-table entries and does not split the mapping: a guard page per slot costs no
//! kernel map (an `mprotect`ed page would cost two maps per slot, and 100,000 processes would
//! no longer fit under the default `vm.max_map_count`). On an older kernel the node warns once
//! and runs without per-slot guards; the lowest slot of each chunk still has an `mprotect`ed
//! guard below it.
//!
//! ## Linear memories
//!
//! A process's linear memory may grow to `max_memory` bytes (the per-process cap), and
//! starts in a *small slot* of [`SMALL_MEMORY_SLOT`] bytes, reserved but not committed. It
//! grows in place up to its slot; growing past a small slot moves it, once, into a slot of
//! the cap (its written pages copied, the small slot released), where it grows in place again
//! and growing past the slot fails. A memory that needs more than a small slot at start takes
//! a slot of the cap at once. The whole slot is readable and writable, so the bytes past the
//! memory's current size are not protected by the kernel: compiled code must check bounds
//! against the current size, which is what it does when the engine reserves nothing and has
//! no guard region (`memory_reservation(0)`, `memory_guard_size(0)`; `new_memory` refuses
//! anything else), and reload the memory's base after anything that may grow it
//! (`memory_may_move`).
//!
//! Why two sizes: the kernel maps 2 MiB of address space per page-table page (4 KiB, zeroed
//! when first needed). With every memory in a slot of the cap, 16 MiB by default, each idle
//! process's few pages took a page-table page of their own: 4.7 KiB of kernel memory per
//! process, and zeroing it was about a sixth of a spawn's CPU. Eight small slots share one.
//!
//! ## Costs
//!
//! Virtual: a small memory slot (`max_memory` once the memory outgrew it) plus one stack per
//! process, never committed (`MAP_NORESERVE`; under `vm.overcommit_memory = 2` the kernel
//! ignores that flag and counts whole chunks). Resident: only the pages a process touched,
//! and the prepared reserve while spawns come (up to 33 slots in each of the three pools,
//! small memories, full memories and stacks, with the pages recent processes shared, at most
//! 64 KiB each: 6 MiB for a node at worst, 20 KiB a slot for small servers; none a few
//! seconds after the spawns stop). Chunks are unmapped when the engine and every slot are gone.
//!
//! ## Reuse
//!
//! Processes come and go (restarts, crash loops, short-lived workers), and a slot that goes
//! back to the kernel costs twice: `madvise(MADV_DONTNEED)` on release, then a page fault for
//! every page the next process touches. So up to [`WARM_SLOTS`] released slots of each pool, and
//! [`WARM_POOL_BYTES`] of what they may hold, stay *warm*: their pages stay resident and are
//! reused first. A warm memory slot has its written pages (found in the pagemap, the
//! `written` module) zeroed in place, since wasmtime requires zero-filled memory; one with a
//! page swapped out goes back to the kernel instead. A warm stack is reused as it is, since
//! no wasm code can read a fiber stack (wasm's own frames are not addressable) and wasmtime
//! asks for zeroed stacks only when configured to.
//! Past that many warm slots, or for a memory larger than [`WARM_BYTES`], the slot goes back to
//! the kernel, which makes it read as zeros: those of up to [`WARM_BYTES`] a batch at a time,
//! since each `madvise` flushes the TLB of every CPU the node runs on (the `discard` module).
//!
//! ## Prepared slots
//!
//! A new process's first touch of each page of its memory and stack is a page fault, and most
//! of a spawn's time on a VM. So a background thread keeps a few fresh slots *prepared*: the
//! pages the newest process touched are made resident (zero-filled) ahead of need, and spawns
//! take those slots after warm ones (see the `prepare` module).

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use rustix::mm::{self, Advice, MapFlags, MprotectFlags, ProtFlags};
use wasmtime::Config;

mod discard;
mod memory;
mod prepare;
mod residency;
mod stack;
mod written;

use memory::MemoryPool;
use stack::StackPool;

/// Linux's `MADV_GUARD_INSTALL` (since 6.13): accesses to the range fault, and the range stays
/// part of its mapping. Not yet in the `libc` crate.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// At most this many slots share one chunk (one kernel map, two with a guard page).
const SLOTS_PER_CHUNK: usize = 1024;

/// A chunk is at most this large (fewer slots when slots are large), so a node with one
/// process does not reserve terabytes.
const MAX_CHUNK_BYTES: usize = 64 << 30;

/// A 32-bit linear memory never exceeds 4 GiB, so no slot needs to be larger.
pub(crate) const MAX_MEMORY_SLOT: usize = 4 << 30;

/// The slot a linear memory starts in while it fits: a Rust guest built with the SDK (a
/// 64 KiB shadow stack, its data, an idle heap) starts in 192 KiB. Eight such slots share a
/// page-table page.
pub(crate) const SMALL_MEMORY_SLOT: usize = 256 << 10;

/// At most this many released slots per pool keep their pages for the next holder.
const WARM_SLOTS: usize = 1024;

/// At most this many bytes of released slots per pool may stay resident for the next holder
/// (counted as all a slot may have written: a stack's whole slot). Processes that touch
/// much and exit, a guest's choice, would otherwise leave the node holding up to
/// [`WARM_SLOTS`] × [`WARM_BYTES`] of memories, or as many deep stacks, for good.
const WARM_POOL_BYTES: usize = 64 << 20;

/// A released memory larger than this goes back to the kernel: zeroing it in place would cost
/// more than the page faults it saves.
const WARM_BYTES: usize = 1 << 20;

/// The pools an engine takes its stacks and memories from, for what they can report.
#[derive(Clone)]
pub(crate) struct Pools {
    stacks: Arc<Slots>,
    /// Small memory slots (none when the cap is no larger), then slots of the cap.
    memories: Vec<Arc<Slots>>,
}

impl Pools {
    /// The most stack any fiber has touched so far, in whole pages: the distance from a
    /// stack's top to its lowest page that was ever resident. Slots stay resident while warm,
    /// so this covers every process that used a slot since; a slot given back to the kernel
    /// forgets its depth.
    pub(crate) fn deepest_stack(&self) -> usize {
        self.stacks.deepest_use()
    }

    /// Bytes resident in the pools now: `(linear memories, fiber stacks)`, counting warm
    /// released slots too, but not the slots prepared ahead of need (the pools' reserve, no
    /// process's; while spawns go on, a slot prepared or taken during the count may be
    /// counted once too few).
    pub(crate) fn resident(&self) -> (usize, usize) {
        let memories = self.memories.iter().map(|slots| slots.resident()).sum();
        (memories, self.stacks.resident())
    }
}

/// Make the engine take fiber stacks of `stack_size` bytes and linear memories of up to
/// `max_memory` bytes from slot pools.
pub(crate) fn install(config: &mut Config, stack_size: usize, max_memory: usize) -> Pools {
    let page = rustix::param::page_size();
    // One page more than the stack, for the slot's own guard page.
    let mut stacks = Slots::new(stack_size + page, page);
    stacks.slot_guard = page;
    stacks.grows_down = true;
    let stacks = Slots::preparing(stacks);
    let cap = max_memory.clamp(1, MAX_MEMORY_SLOT).next_multiple_of(page);
    let full = Slots::preparing(Slots::new(cap, 0));
    let small =
        (cap > SMALL_MEMORY_SLOT).then(|| Slots::preparing(Slots::new(SMALL_MEMORY_SLOT, 0)));
    // Memories move only from a small slot into a full one; without small slots, compiled
    // code may keep a memory's base in a register across calls.
    config.memory_may_move(small.is_some());
    config.with_host_stack(Arc::new(StackPool {
        slots: stacks.clone(),
    }));
    config.with_host_memory(Arc::new(MemoryPool {
        small: small.clone(),
        full: full.clone(),
    }));
    Pools {
        stacks,
        memories: small.into_iter().chain([full]).collect(),
    }
}

/// An address inside a chunk mapping.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Addr(NonNull<u8>);

// SAFETY: an `Addr` is only a location in a mapping that its `Slots` owns and keeps until it is
// dropped; using the memory there is governed by who holds the slot, not by which thread holds
// the address.
unsafe impl Send for Addr {}
// SAFETY: as for `Send`; an `Addr` itself is immutable.
unsafe impl Sync for Addr {}

/// One slot handed out by [`Slots::acquire`]; its holder uses it exclusively until
/// [`Slots::release`].
#[derive(Clone, Copy, Debug)]
struct Slot {
    base: Addr,
    /// The slot is the lowest of its chunk, just above the chunk's guard region.
    lowest: bool,
    /// The slot's first `slot_guard` bytes are a guard region.
    guarded: bool,
    /// Bytes from the slot's base through its last page that may be resident whatever its
    /// holder wrote: made resident before it was handed out (see the `prepare` module), or
    /// left, zeroed, by an earlier holder of a warm slot.
    prepared: usize,
    /// While the slot is warm: the bytes it may have resident, counted in `warm_bytes`.
    warm: usize,
}

impl Slot {
    /// The bytes at its start that are its own guard page.
    fn guard_len(&self, slots: &Slots) -> usize {
        if self.guarded { slots.slot_guard } else { 0 }
    }
}

/// A mapping holding `per_chunk` slots above `guard` bytes of inaccessible memory.
struct Chunk {
    base: Addr,
    len: usize,
}

impl State {
    /// A slot is released: whoever holds it next, it is no probe to learn from.
    fn forget(&mut self, slot: Slot) {
        if self.probe.is_some_and(|p| p.base == slot.base) {
            self.probe = None;
        }
        if self.sample.is_some_and(|p| p.base == slot.base) {
            self.sample = None;
        }
        if self.before.is_some_and(|p| p.base == slot.base) {
            self.before = None;
        }
    }
}

#[derive(Default)]
struct State {
    chunks: Vec<Chunk>,
    /// Released slots that kept their pages, scrubbed for reuse; handed out first.
    warm: Vec<Slot>,
    /// The bytes `warm`'s slots may have resident (each slot's `warm` extent).
    warm_bytes: usize,
    /// Released slots given back to the kernel (they read as zeros).
    free: Vec<Slot>,
    /// Released slots waiting to be given back to the kernel with others (see the `discard`
    /// module), with the bytes of each that may have been written; handed to no one.
    discarding: Vec<(Slot, usize)>,
    /// Slots of the newest chunk never handed out.
    fresh: usize,
    /// Cold slots whose likely pages are resident already, zero-filled; handed out after
    /// warm ones (see the `prepare` module).
    prepared: Vec<Slot>,
    /// The newest probe: a slot handed out unprepared, to learn which pages are used.
    probe: Option<Slot>,
    /// The probe the next slots are prepared like: one handed out before the newest slot.
    sample: Option<Slot>,
    /// The probe before it: only pages both have resident are prepared.
    before: Option<Slot>,
    /// How many samples there have been: a new one, even in a slot sampled before, is read
    /// again.
    samples: u64,
    /// How many of them the preparing thread has learned from.
    learned: u64,
    /// Counts slots handed out without warm pages, to make every so many a probe.
    turn: u32,
    /// The slot the preparing thread is working on.
    preparing: Option<Slot>,
    /// How many slots the reserve keeps.
    demand: prepare::Demand,
    /// The preparing thread knows which pages to prepare.
    guess: bool,
    /// The preparing thread was started.
    preparer: bool,
}

/// What the next holder of a released slot needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scrub {
    /// Zero-filled bytes (a linear memory).
    Zeros,
    /// Nothing (a fiber stack: only the engine and host code read it).
    Nothing,
}

/// Fixed-size, page-aligned, zero-filled slots carved from large `MAP_NORESERVE` chunks.
struct Slots {
    slot_size: usize,
    per_chunk: usize,
    /// Inaccessible bytes at the bottom of each chunk.
    guard: usize,
    /// Bytes at the bottom of each slot made to fault with `MADV_GUARD_INSTALL` when the slot
    /// is first handed out (0: none). Guard markers survive `MADV_DONTNEED`, so a released
    /// slot keeps its guard.
    slot_guard: usize,
    /// Its slots are used from their end (stacks), not their start.
    grows_down: bool,
    page: usize,
    state: Mutex<State>,
    /// Set when slots are to be prepared (by [`Slots::preparing`]), to the pool itself, for the
    /// preparing thread.
    this: OnceLock<Weak<Slots>>,
    /// Wakes the preparing thread.
    wake: Arc<prepare::Wake>,
    /// Preparing stopped (the kernel cannot populate pages ahead).
    unprepared: AtomicBool,
}

impl Slots {
    /// Slots of at least `slot_size` bytes (rounded up to pages) in chunks with `guard` bytes
    /// (a page multiple, possibly 0) of inaccessible memory at their bottom.
    fn new(slot_size: usize, guard: usize) -> Self {
        let page = rustix::param::page_size();
        debug_assert_eq!(guard % page, 0, "the guard is whole pages");
        let slot_size = slot_size.max(1).next_multiple_of(page);
        Slots {
            slot_size,
            per_chunk: (MAX_CHUNK_BYTES / slot_size).clamp(1, SLOTS_PER_CHUNK),
            guard,
            slot_guard: 0,
            grows_down: false,
            page,
            state: Mutex::new(State::default()),
            this: OnceLock::new(),
            wake: Arc::default(),
            unprepared: AtomicBool::new(false),
        }
    }

    /// `slots`, shared, with fresh slots prepared ahead of need by a thread of its own,
    /// started at the first slot handed out without warm pages.
    fn preparing(slots: Slots) -> Arc<Slots> {
        let slots = Arc::new(slots);
        let _ = slots.this.set(Arc::downgrade(&slots));
        slots
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held, so the state is consistent even if poisoned.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for the caller's exclusive use, mapping a new chunk if none is free. It reads as
    /// zeros unless it was released with [`Scrub::Nothing`].
    fn acquire(&self) -> io::Result<Slot> {
        let mut state = self.lock();
        if let Some(mut slot) = state.warm.pop() {
            state.warm_bytes -= slot.warm;
            // Its pages stay resident (zeroed): its next release must count them, whatever
            // its next holder writes.
            slot.prepared = slot.prepared.max(slot.warm);
            slot.warm = 0;
            return Ok(slot);
        }
        self.take_unwarmed(&mut state)
    }

    /// A slot of the newest chunk never handed out, mapping a new chunk if there is none.
    fn fresh(&self, state: &mut State) -> io::Result<Slot> {
        if state.fresh == 0 {
            let chunk = self.map_chunk()?;
            state.chunks.push(chunk);
            state.fresh = self.per_chunk;
        }
        let index = self.per_chunk - state.fresh;
        let chunk = state.chunks.last().expect("a chunk was just mapped");
        // SAFETY: `index < per_chunk`, so the slot lies inside the chunk's mapping of
        // `guard + per_chunk * slot_size` bytes.
        let base = unsafe { chunk.base.0.add(self.guard + index * self.slot_size) };
        // A guard that could not be installed this time leaves the slot where it is, for the
        // next try: never handed out without one where the kernel can install it.
        let guarded = self.slot_guard > 0 && guard_install(base, self.slot_guard)?;
        state.fresh -= 1;
        Ok(Slot {
            base: Addr(base),
            lowest: index == 0,
            guarded,
            prepared: 0,
            warm: 0,
        })
    }

    /// Give `slot` back for reuse: kept warm (and scrubbed as `scrub` says) if there is room,
    /// else its first `dirty` bytes (all that may have been written) go back to the kernel.
    ///
    /// # Safety
    ///
    /// `slot` came from this pool's `acquire`, is released once, and nothing uses it any more.
    unsafe fn release(&self, mut slot: Slot, dirty: usize, scrub: Scrub) {
        let len = dirty
            .max(slot.prepared)
            .next_multiple_of(self.page)
            .min(self.slot_size);
        let warmable = scrub == Scrub::Nothing || len <= WARM_BYTES;
        // Its bytes are counted at once, so that releases at the same time cannot all fit.
        let keep = {
            let mut state = self.lock();
            state.forget(slot);
            let keep = warmable
                && state.warm.len() < WARM_SLOTS
                && state.warm_bytes + len <= WARM_POOL_BYTES;
            if keep {
                state.warm_bytes += len;
            }
            keep
        };
        // SAFETY: the range is inside the slot, which nobody uses any more (the caller's
        // contract).
        if keep && (scrub == Scrub::Nothing || unsafe { self.zero_written(slot, len) }) {
            slot.warm = len;
            self.lock().warm.push(slot);
            return;
        }
        if keep {
            self.lock().warm_bytes -= len;
        }
        if len == 0 {
            self.lock().free.push(slot);
            return;
        }
        if len > WARM_BYTES {
            // Its pages, not the TLB flush, are most of what giving it back costs: at once.
            // SAFETY: as above.
            unsafe { self.give_back(vec![(slot, len)]) };
            return;
        }
        let batch = {
            let mut state = self.lock();
            state.discarding.push((slot, len));
            if state.discarding.len() < discard::BATCH {
                return;
            }
            std::mem::take(&mut state.discarding)
        };
        // SAFETY: as above, for each slot of the batch.
        unsafe { self.give_back(batch) };
    }

    /// Give each slot's first bytes back to the kernel, then the slots to the cold ones; a
    /// slot whose pages could not be given back is leaked, as it might not read as zeros.
    ///
    /// # Safety
    ///
    /// Nobody uses the slots, and each length is a page multiple within its slot.
    unsafe fn give_back(&self, slots: Vec<(Slot, usize)>) {
        if slots.is_empty() {
            return;
        }
        let ranges: Vec<(*mut u8, usize)> = slots
            .iter()
            .map(|(slot, len)| (slot.base.0.as_ptr(), *len))
            .collect();
        // SAFETY: the caller's contract.
        let failed = unsafe { discard::dont_need(&ranges) };
        let mut state = self.lock();
        for ((mut slot, _), failed) in slots.into_iter().zip(failed) {
            if let Some(e) = failed {
                tracing::warn!(error = %e, "could not discard a released slot; it stays unused");
                continue;
            }
            // Its prepared pages went back with the rest.
            slot.prepared = 0;
            state.free.push(slot);
        }
    }

    /// Zero the written pages among the first `len` bytes of `slot`; false if which those
    /// are is unknown (a page swapped out, or no pagemap: see the `written` module). The
    /// other pages were never written, or were given back, and read as zeros.
    ///
    /// # Safety
    ///
    /// Nobody uses `slot`, and `len` is a page multiple within it.
    unsafe fn zero_written(&self, slot: Slot, len: usize) -> bool {
        let base = slot.base.0.as_ptr();
        let mut pages = Vec::new();
        if !written::written_pages(base, len, self.page, &mut pages) {
            return false;
        }
        for run in residency::resident_runs(&pages) {
            // SAFETY: whole pages inside the slot, which nobody else uses. One swapped out
            // since it was read is read back by the write, which then zeroes it.
            unsafe {
                base.add(run.start * self.page)
                    .write_bytes(0, run.len() * self.page)
            };
        }
        true
    }

    fn map_chunk(&self) -> io::Result<Chunk> {
        let len = self
            .per_chunk
            .checked_mul(self.slot_size)
            .and_then(|n| n.checked_add(self.guard))
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        // SAFETY: a new anonymous mapping at an address the kernel picks; it aliases nothing.
        let base = unsafe {
            mm::mmap_anonymous(
                ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }?;
        let base = Addr(NonNull::new(base.cast()).expect("mmap does not return null"));
        let chunk = Chunk { base, len };
        // Where transparent huge pages are on for every mapping, one byte written would make a
        // process's (or a neighbour stack's) 2 MiB resident. A flag of the mapping: no map more.
        // SAFETY: the mapping just made, which nobody uses; advice changes no contents.
        if let Err(e) = unsafe { mm::madvise(base.0.as_ptr().cast(), len, Advice::LinuxNoHugepage) }
        {
            tracing::debug!(error = %e, "slots may be backed by huge pages");
        }
        if self.guard > 0 {
            // SAFETY: the first `guard` bytes of the mapping just made, which nobody uses.
            unsafe { mm::mprotect(base.0.as_ptr().cast(), self.guard, MprotectFlags::empty()) }?;
        }
        Ok(chunk)
    }
}

/// Make `len` bytes at `base` fault on access, without splitting their mapping: `Ok(false)`
/// (and a warning, once per node process) if the kernel cannot, `Err` if it could not this
/// time (no memory for the page tables, a signal), when the slot must not be handed out
/// unguarded.
fn guard_install(base: NonNull<u8>, len: usize) -> io::Result<bool> {
    static UNSUPPORTED: OnceLock<()> = OnceLock::new();
    if UNSUPPORTED.get().is_some() {
        return Ok(false);
    }
    // SAFETY: a page-aligned range at the bottom of a slot just carved out of a chunk this pool
    // owns; nobody uses it yet, and making it fault cannot affect other memory.
    if unsafe { libc::madvise(base.as_ptr().cast(), len, MADV_GUARD_INSTALL) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if !guard_unsupported(&err) {
        return Err(err);
    }
    UNSUPPORTED.get_or_init(|| {
        tracing::warn!(
            error = %err,
            "fiber stacks run without guard pages (MADV_GUARD_INSTALL needs Linux 6.13+)"
        );
    });
    Ok(false)
}

/// Whether `MADV_GUARD_INSTALL` failed for good: an advice the kernel does not know (before
/// 6.13), or a mapping it cannot guard (locked by `mlockall`), or one a seccomp policy bars.
/// Anything else is of the moment.
fn guard_unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EPERM)
    )
}

/// A handle on this process, opened once by `open` and kept in `cell`; `None` where it
/// could not be opened, and in a forked child, where a handle the parent opened still names
/// the parent (its pages, its pid).
fn own_handle<T>(
    cell: &'static OnceLock<Option<(u32, T)>>,
    open: impl FnOnce() -> Option<T>,
) -> Option<&'static T> {
    let (pid, handle) = cell
        .get_or_init(|| Some((std::process::id(), open()?)))
        .as_ref()?;
    (*pid == std::process::id()).then_some(handle)
}

impl Drop for Slots {
    fn drop(&mut self) {
        // The preparing thread waits without holding the pool: let it see the pool is gone.
        self.wake.notify();
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: chunks are dropped only with their `Slots` (or when `map_chunk` fails), and
        // every slot holder keeps its `Slots` alive, so nothing uses the mapping any more.
        let _ = unsafe { mm::munmap(self.base.0.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests;
