//! Linear memories from the memory pool: each the start of one slot, growing in place (see the
//! module doc of `pools`).

use std::sync::Arc;

use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

use super::{Scrub, Slot, Slots};

/// Hands out linear memories.
pub(super) struct MemoryPool {
    pub(super) slots: Arc<Slots>,
}

/// A linear memory: the start of one slot, growing in place.
struct PooledMemory {
    slots: Arc<Slots>,
    slot: Slot,
    size: usize,
}

// SAFETY: every memory is a slot nobody else uses until the memory is dropped, zero filled,
// never moved, and refuses to grow past the slot. Bounds are checked by compiled code against
// the current size, since `new_memory` refuses any reservation or guard region it would rely on.
unsafe impl MemoryCreator for MemoryPool {
    fn new_memory(
        &self,
        ty: MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let slot_size = self.slots.slot_size;
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
        if minimum > slot_size {
            return Err(format!(
                "the module needs {minimum} bytes of memory at start, more than the \
                 {slot_size}-byte limit per process"
            ));
        }
        let slot = self
            .slots
            .acquire()
            .map_err(|e| format!("cannot map memory slots: {e}"))?;
        Ok(Box::new(PooledMemory {
            slots: self.slots.clone(),
            slot,
            size: minimum,
        }))
    }
}

// SAFETY: `as_ptr` is the slot's start, which never changes; `byte_size` bytes from it are
// accessible, and growth stays within `byte_capacity`, the slot.
unsafe impl LinearMemory for PooledMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.slots.slot_size
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.slots.slot_size {
            wasmtime::bail!(
                "memory of {new_size} bytes exceeds the {}-byte limit per process",
                self.slots.slot_size
            );
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
