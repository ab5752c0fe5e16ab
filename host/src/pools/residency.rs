//! What the pools hold in RAM: the page tables of the slots handed out, read with `mincore`
//! (for `Node::pool_residency` and `Node::fiber_stack_high_water`). The pool's lock is held
//! only to list the slots handed out (chunks live as long as the pool); the page tables are
//! read outside it, so spawns and exits are not held up meanwhile.

use super::{Addr, Slots};

impl Slots {
    /// Where the slots handed out so far (held, warm or free) lie: for each chunk, the start
    /// of its first slot and how many bytes of slots it has handed out.
    fn handed_out(&self) -> Vec<(Addr, usize)> {
        let state = self.lock();
        let last = state.chunks.len().saturating_sub(1);
        state
            .chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let used = if i == last {
                    self.per_chunk - state.fresh
                } else {
                    self.per_chunk
                };
                // Inside the chunk's mapping: its guard, then `per_chunk` slots.
                let first = chunk.base.0.as_ptr().wrapping_add(self.guard);
                let first = std::ptr::NonNull::new(first).map_or(chunk.base, Addr);
                (first, used * self.slot_size)
            })
            .collect()
    }

    /// The most bytes, counted down from a slot's end, of any slot handed out so far whose
    /// pages are resident (see [`super::Pools::deepest_stack`]).
    pub(super) fn deepest_use(&self) -> usize {
        let pages = self.slot_size / self.page;
        let mut resident = vec![0u8; pages];
        let mut deepest = 0;
        for (first, len) in self.handed_out() {
            for offset in (0..len).step_by(self.slot_size) {
                let base = first.0.as_ptr().wrapping_add(offset);
                // SAFETY: the slot lies inside a chunk's mapping, which stays mapped while the
                // pool lives; page aligned; `resident` has a byte per page. `mincore` only
                // reads the page tables.
                if unsafe { libc::mincore(base.cast(), self.slot_size, resident.as_mut_ptr()) } != 0
                {
                    continue;
                }
                if let Some(lowest) = resident.iter().position(|r| r & 1 == 1) {
                    deepest = deepest.max((pages - lowest) * self.page);
                }
            }
        }
        deepest
    }

    /// Bytes resident in the slots handed out so far: one `mincore` per GiB of them, with a
    /// 256 KiB buffer.
    pub(super) fn resident(&self) -> usize {
        const WINDOW_PAGES: usize = 1 << 18;
        let mut window = vec![0u8; WINDOW_PAGES];
        let mut pages = 0;
        for (first, len) in self.handed_out() {
            let mut offset = 0;
            while offset < len {
                let step = (len - offset).min(WINDOW_PAGES * self.page);
                // SAFETY: `offset..offset + step` lies within the slots a chunk handed out,
                // which stays mapped while the pool lives; page aligned; `window` has a byte
                // per page of it. `mincore` only reads the page tables.
                let read = unsafe {
                    libc::mincore(
                        first.0.as_ptr().wrapping_add(offset).cast(),
                        step,
                        window.as_mut_ptr(),
                    )
                };
                if read == 0 {
                    pages += window[..step / self.page]
                        .iter()
                        .filter(|r| *r & 1 == 1)
                        .count();
                }
                offset += step;
            }
        }
        (pages * self.page).saturating_sub(self.reserve_resident())
    }
}
