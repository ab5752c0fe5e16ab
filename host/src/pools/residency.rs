//! What the pools hold in RAM: the page tables of the slots handed out, read with `mincore`
//! (for `Node::pool_residency` and `Node::fiber_stack_high_water`). The pool's lock is held
//! only to list the slots handed out (chunks live as long as the pool); the page tables are
//! read outside it, so spawns and exits are not held up meanwhile.

use std::ops::Range;

use super::{Addr, Slot, Slots};

/// Pages read per `mincore` when counting a whole pool: a GiB, with a 256 KiB buffer.
const WINDOW_PAGES: usize = 1 << 18;

impl Slots {
    /// Which of the `len` bytes at `base` are resident, a page per entry of `resident`; false
    /// if the kernel would not say.
    ///
    /// # Safety
    ///
    /// `base..base + len` is page aligned and inside a chunk of this pool (mapped while the
    /// pool lives). Only the page tables are read, whoever holds the slots there.
    pub(super) unsafe fn residency(
        &self,
        base: *mut u8,
        len: usize,
        resident: &mut Vec<bool>,
    ) -> bool {
        let mut bytes = vec![0u8; len / self.page];
        // SAFETY: the caller's contract; `bytes` has one entry per page.
        if unsafe { libc::mincore(base.cast(), len, bytes.as_mut_ptr()) } != 0 {
            return false;
        }
        resident.clear();
        resident.extend(bytes.iter().map(|b| b & 1 == 1));
        true
    }

    /// Where the slots handed out so far (held, warm, free, prepared or being prepared) lie:
    /// for each chunk, the start of its first slot and how many bytes of slots it has handed
    /// out; and, listed at the same moment, the slots prepared or being prepared (the
    /// reserve).
    fn handed_out(&self) -> (Vec<(Addr, usize)>, Vec<Slot>) {
        let state = self.lock();
        let last = state.chunks.len().saturating_sub(1);
        let ranges = state
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
            .collect();
        let reserve = state
            .prepared
            .iter()
            .copied()
            .chain(state.preparing)
            .collect();
        (ranges, reserve)
    }

    /// The most bytes, counted down from a slot's end, of any slot handed out so far whose
    /// pages are resident (see [`super::Pools::deepest_stack`]). Prepared stacks count too:
    /// their pages are those recent processes used.
    pub(super) fn deepest_use(&self) -> usize {
        let pages = self.slot_size / self.page;
        let mut resident = Vec::new();
        let mut deepest = 0;
        for (first, len) in self.handed_out().0 {
            for offset in (0..len).step_by(self.slot_size) {
                let base = first.0.as_ptr().wrapping_add(offset);
                // SAFETY: the slot lies inside a chunk's mapping; page aligned.
                if !unsafe { self.residency(base, self.slot_size, &mut resident) } {
                    continue;
                }
                if let Some(lowest) = resident.iter().position(|r| *r) {
                    deepest = deepest.max((pages - lowest) * self.page);
                }
            }
        }
        deepest
    }

    /// Bytes resident in the slots handed out so far, less the reserve's (the slots
    /// prepared ahead of need: no process's). The reserve is read just after the list is
    /// made, before the pool is walked; a slot prepared from a released one during the walk
    /// is counted as a process's.
    pub(super) fn resident(&self) -> usize {
        let (ranges, reserve) = self.handed_out();
        let reserve = self.reserve_resident(&reserve);
        let mut window = Vec::new();
        let mut pages = 0;
        for (first, len) in ranges {
            let mut offset = 0;
            while offset < len {
                let step = (len - offset).min(WINDOW_PAGES * self.page);
                // SAFETY: `offset..offset + step` lies within the slots a chunk handed out;
                // page aligned.
                let base = first.0.as_ptr().wrapping_add(offset);
                if unsafe { self.residency(base, step, &mut window) } {
                    pages += window.iter().filter(|r| **r).count();
                }
                offset += step;
            }
        }
        (pages * self.page).saturating_sub(reserve)
    }
}

/// The runs of resident pages in `resident` (an entry per page, as [`Slots::residency`]
/// fills it), as ranges of page indices.
pub(super) fn resident_runs(resident: &[bool]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut page = 0;
    std::iter::from_fn(move || {
        let start = page + resident.get(page..)?.iter().position(|r| *r)?;
        let len = resident[start..].iter().take_while(|r| **r).count();
        page = start + len;
        Some(start..page)
    })
}
