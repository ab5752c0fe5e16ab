//! Linear memories from the memory pools: each the start of one slot, in a small slot while it
//! fits one and moved once into a slot of the per-process cap when it grows past it (see the
//! module doc of `pools`).

use std::sync::Arc;

use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

use super::residency::resident_runs;
use super::{Scrub, Slot, Slots, written};

/// Hands out linear memories.
pub(super) struct MemoryPool {
    /// Slots of [`super::SMALL_MEMORY_SLOT`] bytes, where memories start; none when the cap is
    /// no larger.
    pub(super) small: Option<Arc<Slots>>,
    /// Slots of the per-process cap.
    pub(super) full: Arc<Slots>,
}

/// A linear memory: the start of one slot, growing in place until it outgrows a small slot.
struct PooledMemory {
    /// The pool `slot` came from.
    slots: Arc<Slots>,
    /// Where the memory moves when it outgrows `slot`: the full slots while it is in a small
    /// one, none once it is in a full one.
    full: Option<Arc<Slots>>,
    slot: Slot,
    size: usize,
}

// SAFETY: every memory is a slot nobody else uses until the memory is dropped, zero filled,
// and refuses to grow past the per-process cap. It moves only in `grow_to`, past its slot's
// capacity, which the engine allows (`memory_may_move` is set whenever there are small slots)
// and follows by reloading the memory's base. Bounds are checked by compiled code against the
// current size, since `new_memory` refuses any reservation or guard region it would rely on.
unsafe impl MemoryCreator for MemoryPool {
    fn new_memory(
        &self,
        ty: MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let cap = self.full.slot_size;
        // A reservation or guard lets compiled code skip bounds checks within it, but the rest
        // of a slot is accessible memory, not a trap: accept neither.
        if reserved_size_in_bytes.unwrap_or(0) != 0 || guard_size_in_bytes != 0 {
            return Err(format!(
                "memory slots need explicit bounds checks: configure no memory reservation \
                 (asked {reserved_size_in_bytes:?}) and no guard region (asked \
                 {guard_size_in_bytes})"
            ));
        }
        if ty.is_shared() {
            return Err("shared memories are not supported".into());
        }
        if minimum > cap {
            return Err(format!(
                "the module needs {minimum} bytes of memory at start, more than the \
                 {cap}-byte limit per process"
            ));
        }
        let (slots, full) = match &self.small {
            Some(small) if minimum <= small.slot_size => (small.clone(), Some(self.full.clone())),
            _ => (self.full.clone(), None),
        };
        let slot = slots
            .acquire()
            .map_err(|e| format!("cannot map memory slots: {e}"))?;
        Ok(Box::new(PooledMemory {
            slots,
            full,
            slot,
            size: minimum,
        }))
    }
}

impl PooledMemory {
    /// Move into a slot of `full`, the per-process cap's: the bytes written are copied over,
    /// and the small slot goes back to its pool.
    fn move_to(&mut self, full: Arc<Slots>) -> wasmtime::Result<()> {
        let slot = full
            .acquire()
            .map_err(|e| wasmtime::format_err!("cannot map memory slots: {e}"))?;
        // SAFETY: both slots are this memory's alone, and `size` fits either.
        unsafe { copy_written(&self.slots, self.slot, slot, self.size) };
        self.full = None;
        let small = std::mem::replace(&mut self.slots, full);
        let old = std::mem::replace(&mut self.slot, slot);
        // SAFETY: the small slot came from `small`, is released once, and nothing uses it any
        // more: wasmtime reloads the memory's base after growth.
        unsafe { small.release(old, self.size, Scrub::Zeros) };
        Ok(())
    }
}

/// Copy the first `len` bytes of `from` (a slot of `slots`) to `to`, which reads as zeros:
/// only the written pages, since the others read as zeros too; all of them when which pages
/// were written is unknown (a page swapped out: see the `written` module).
///
/// # Safety
///
/// Both slots are the caller's alone, and `len` fits both.
unsafe fn copy_written(slots: &Slots, from: Slot, to: Slot, len: usize) {
    let (from, to) = (from.base.0.as_ptr(), to.base.0.as_ptr());
    let len = len.next_multiple_of(slots.page).min(slots.slot_size);
    let mut pages = Vec::new();
    if !written::written_pages(from, len, slots.page, &mut pages) {
        // SAFETY: the caller's contract; the slots do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(from, to, len) };
        return;
    }
    for run in resident_runs(&pages) {
        let (offset, bytes) = (run.start * slots.page, run.len() * slots.page);
        // SAFETY: whole pages within `len` of both slots, which do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(from.add(offset), to.add(offset), bytes) };
    }
}

// SAFETY: `as_ptr` is the current slot's start, which changes only in `grow_to` past
// `byte_capacity` (see `MemoryPool`); `byte_size` bytes from it are accessible, and growth
// within `byte_capacity` stays in the slot.
unsafe impl LinearMemory for PooledMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.slots.slot_size
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.slots.slot_size {
            let Some(full) = self.full.clone().filter(|full| new_size <= full.slot_size) else {
                let cap = self.full.as_ref().unwrap_or(&self.slots).slot_size;
                wasmtime::bail!(
                    "memory of {new_size} bytes exceeds the {cap}-byte limit per process"
                );
            };
            self.move_to(full)?;
        }
        // The slot is mapped and zeroed already; it only becomes accessible to wasm.
        self.size = self.size.max(new_size);
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.slot.base.0.as_ptr()
    }
}

impl Drop for PooledMemory {
    fn drop(&mut self) {
        // SAFETY: wasmtime drops a memory with its instance, when nothing can access it; the
        // slot is released once, here. Memory never shrinks, so only its final size was written.
        unsafe { self.slots.release(self.slot, self.size, Scrub::Zeros) };
    }
}
