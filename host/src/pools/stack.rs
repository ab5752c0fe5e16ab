//! Fiber stacks from the stack pool: each one slot, with its guard page where the kernel can
//! install one (see the module doc of `pools`).

use std::ops::Range;
use std::sync::Arc;

use wasmtime::{StackCreator, StackMemory};

use super::{Scrub, Slot, Slots};

/// Hands out fiber stacks.
pub(super) struct StackPool {
    pub(super) slots: Arc<Slots>,
}

/// A fiber stack: one slot, owned until dropped.
struct PooledStack {
    slots: Arc<Slots>,
    slot: Slot,
}

// SAFETY: every stack is a slot nobody else uses until the stack is dropped; slots are page
// aligned and whole pages, zeroed here when `zeroed` asks (a warm slot holds what its last
// fiber left). Each stack's slot begins with its guard page where the kernel can install one
// (see the module doc); wasm code checks its stack limit, and the engine leaves a margin below
// it for host frames.
unsafe impl StackCreator for StackPool {
    fn new_stack(&self, size: usize, zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        if size > self.slots.slot_size - self.slots.slot_guard {
            wasmtime::bail!(
                "a {size}-byte fiber stack does not fit the {}-byte stack slots",
                self.slots.slot_size
            );
        }
        let slot = self
            .slots
            .acquire()
            .map_err(|e| wasmtime::format_err!("cannot map fiber stacks: {e}"))?;
        if zeroed {
            let guard = slot.guard_len(&self.slots);
            // SAFETY: the slot just acquired, above its guard, used by nobody else.
            unsafe {
                slot.base
                    .0
                    .as_ptr()
                    .add(guard)
                    .write_bytes(0, self.slots.slot_size - guard)
            };
        }
        Ok(Box::new(PooledStack {
            slots: self.slots.clone(),
            slot,
        }))
    }
}

// SAFETY: the ranges describe the slot this stack holds exclusively (and the chunk's guard page
// below it, if it is the chunk's lowest slot).
unsafe impl StackMemory for PooledStack {
    fn top(&self) -> *mut u8 {
        // The slot's end, one past its last byte: still within (or just past) the chunk mapping.
        self.slot.base.0.as_ptr().wrapping_add(self.slots.slot_size)
    }

    fn range(&self) -> Range<usize> {
        let base = self.slot.base.0.as_ptr().addr();
        base + self.guard_len()..base + self.slots.slot_size
    }

    fn guard_range(&self) -> Range<*mut u8> {
        let base = self.slot.base.0.as_ptr();
        if self.slot.guarded {
            return base..base.wrapping_add(self.slots.slot_guard);
        }
        // Below any other unguarded slot lies another stack, not a guard: report an empty range.
        let guard = if self.slot.lowest {
            self.slots.guard
        } else {
            0
        };
        base.wrapping_sub(guard)..base
    }
}

impl PooledStack {
    /// The bytes of the slot that are its own guard page.
    fn guard_len(&self) -> usize {
        self.slot.guard_len(&self.slots)
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        // SAFETY: wasmtime drops a stack only when no fiber runs on it any more; the slot is
        // released once, here. Any of it may have been written.
        unsafe {
            self.slots
                .release(self.slot, self.slots.slot_size, Scrub::Nothing)
        };
    }
}
