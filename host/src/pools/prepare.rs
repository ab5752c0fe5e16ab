//! Fresh slots prepared ahead of need.
//!
//! A new process's first touch of each page of its linear memory and fiber stack is a page
//! fault: the kernel takes a zeroed page (and, for a memory, a page-table page for its slot),
//! 2–3 µs each on a VM, most of a spawn. The pages a process touches first depend on its
//! module's layout (the shadow stack's top, the data segments, the heap's start), and the
//! processes spawned in a burst are mostly of one module. So a thread per pool keeps up to
//! [`PREPARED_SLOTS`] cold slots in which the pages recent processes touched are resident
//! already (`MADV_POPULATE_WRITE`: zero-filled, as a fault would make them), and `acquire`
//! hands those out after warm slots. The faults happen on that thread, while the spawning
//! process's worker goes on.
//!
//! Which pages: those resident in both of the last two *probes*, slots handed out
//! unprepared, each read once a later slot is handed out (its holder has run its start by
//! then, in the usual burst) and forgotten if it is released first. Every [`PROBE_EVERY`]th
//! slot is a probe, so the guess follows the modules being spawned; it is never learned from a
//! prepared slot, whose untouched prepared pages would look used, and one large process does
//! not make it large. When it changes, the reserve made for the old guess goes back to the
//! kernel. A wrong guess costs memory only: at most [`MAX_PREPARED_BYTES`] per slot, which
//! go back to the kernel with the slot's own pages when it is released (its `prepared`
//! extent).

use std::io;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, PoisonError, Weak};
use std::time::Duration;

use rustix::mm::{self, Advice};

use super::{Slot, Slots, State};

/// Linux's `MADV_POPULATE_WRITE` (since 5.14): fault the range in, writable, without writing
/// it.
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// Prepared slots the thread keeps ready.
const PREPARED_SLOTS: usize = 32;

/// The thread prepares more when fewer than this many are ready.
const LOW_WATER: usize = 16;

/// One slot handed out in this many (without warm pages) is a probe.
const PROBE_EVERY: u32 = 8;

/// A probe's pages are read this far from its start (a stack's: from its end).
const SAMPLE_BYTES: usize = 4 << 20;

/// At most this many bytes of a slot are made resident ahead: a counter touches 4 pages of
/// memory and 1 of stack.
const MAX_PREPARED_BYTES: usize = 64 << 10;

/// How often an idle thread checks whether its pool is still in use.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// How long the thread waits after the kernel could not give it memory or pages.
const BACK_OFF: Duration = Duration::from_millis(100);

impl Slots {
    /// A slot without warm pages: prepared if one is ready and this is not a probe's turn.
    pub(super) fn take_unwarmed(&self, state: &mut State) -> io::Result<Slot> {
        let Some(this) = self.this.get() else {
            return self.cold(state);
        };
        if self.unprepared.load(Ordering::Relaxed) {
            // What was prepared before is still good.
            return match state.prepared.pop() {
                Some(slot) => Ok(slot),
                None => self.cold(state),
            };
        }
        // The probe handed out before this slot has had its start: learn from it.
        if let Some(probe) = state.probe.take() {
            state.before = state.sample.replace(probe);
            state.samples += 1;
            self.low.notify_one();
        }
        state.turn = (state.turn + 1) % PROBE_EVERY;
        let slot = match state.prepared.pop() {
            Some(slot) if state.turn != 0 => slot,
            prepared => {
                state.prepared.extend(prepared);
                let slot = self.cold(state)?;
                state.probe = Some(slot);
                slot
            }
        };
        if !state.preparer {
            state.preparer = true;
            let pool = this.clone();
            let started = std::thread::Builder::new()
                .name("otter-prepare".into())
                .spawn(move || run(&pool));
            if let Err(e) = started {
                unprepared(&e);
                self.unprepared.store(true, Ordering::Relaxed);
            }
        } else if state.prepared.len() < LOW_WATER {
            self.low.notify_one();
        }
        Ok(slot)
    }

    /// A released slot given back to the kernel, else a fresh one.
    fn cold(&self, state: &mut State) -> io::Result<Slot> {
        match state.free.pop() {
            Some(slot) => Ok(slot),
            None => self.fresh(state),
        }
    }

    /// Do the next thing the preparing thread has to do, after waiting for it: learn from a
    /// new probe, or prepare a slot. False when the thread should stop (nobody else holds the
    /// pool, or the kernel cannot populate pages ahead).
    fn prepare_one(self: &Arc<Self>, learned: &mut Learned) -> bool {
        let mut state = self.lock();
        loop {
            if state.samples != learned.samples {
                break;
            }
            let ready = state.prepared.len();
            if ready < LOW_WATER {
                learned.filling = true;
            }
            if ready >= PREPARED_SLOTS {
                learned.filling = false;
            }
            if learned.filling && !learned.pages.is_empty() {
                break;
            }
            let (next, waited) = self
                .low
                .wait_timeout(state, IDLE_CHECK)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            if waited.timed_out() && Arc::strong_count(self) == 1 {
                return false;
            }
        }
        if state.samples != learned.samples {
            learned.samples = state.samples;
            let samples = [state.before, state.sample];
            drop(state);
            self.learn(learned, samples);
            self.lock().learned = learned.samples;
            return true;
        }
        let slot = match self.cold(&mut state) {
            Ok(slot) => slot,
            Err(e) => {
                drop(state);
                tracing::debug!(error = %e, "no slot to prepare; trying again");
                std::thread::sleep(BACK_OFF);
                return true;
            }
        };
        state.preparing = Some(slot);
        drop(state);
        let (slot, populated) = self.populate(slot, &learned.pages);
        let mut state = self.lock();
        state.preparing = None;
        match populated {
            Ok(()) => {
                state.prepared.push(slot);
                true
            }
            Err(e) => {
                drop(state);
                self.discard(slot);
                let permanent = matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::EPERM | libc::ENOSYS)
                );
                if permanent {
                    unprepared(&e);
                    self.unprepared.store(true, Ordering::Relaxed);
                    return false;
                }
                tracing::debug!(error = %e, "could not prepare a slot; trying again");
                std::thread::sleep(BACK_OFF);
                true
            }
        }
    }

    /// Learn from the last two probes: prepare the pages both have resident. If those change,
    /// the slots prepared so far were made for other pages and go back to the kernel.
    fn learn(&self, learned: &mut Learned, [before, sample]: [Option<Slot>; 2]) {
        let (Some(before), Some(sample)) = (before, sample) else {
            return;
        };
        let before = self.footprint(before);
        let shared: Vec<usize> = self
            .footprint(sample)
            .into_iter()
            .filter(|p| before.binary_search(p).is_ok())
            .collect();
        if shared == learned.pages {
            return;
        }
        learned.pages = shared;
        let stale = std::mem::take(&mut self.lock().prepared);
        for slot in stale {
            self.discard(slot);
        }
    }

    /// Give a prepared slot's pages back to the kernel and the slot to the cold ones.
    fn discard(&self, mut slot: Slot) {
        if slot.prepared > 0 {
            // SAFETY: the slot's first pages; nobody holds it (prepared slots are not handed
            // out), and discarding them makes them read as zeros again.
            let discarded = unsafe {
                mm::madvise(
                    slot.base.0.as_ptr().cast(),
                    slot.prepared,
                    Advice::LinuxDontNeed,
                )
            };
            if let Err(e) = discarded {
                // A slot that might keep pages must not be prepared again as if it had none.
                tracing::warn!(error = %e, "could not discard a prepared slot; it stays unused");
                return;
            }
            slot.prepared = 0;
        }
        self.lock().free.push(slot);
    }

    /// Where in a slot its used pages are looked for: the first [`SAMPLE_BYTES`] (a stack's
    /// last), as an offset from the slot's start and a length.
    fn sample_window(&self) -> (usize, usize) {
        let window = self.slot_size.min(SAMPLE_BYTES);
        let start = if self.grows_down {
            self.slot_size - window
        } else {
            0
        };
        (start, window)
    }

    /// Bytes resident in `reserve`, slots prepared or being prepared.
    pub(super) fn reserve_resident(&self, reserve: &[Slot]) -> usize {
        let (start, window) = self.sample_window();
        let mut resident = Vec::new();
        let mut pages = 0;
        for slot in reserve {
            // SAFETY: the window lies inside the slot, inside a chunk mapped while the pool
            // lives, page aligned. `mincore` only reads the page tables.
            if unsafe { self.residency(slot.base.0.as_ptr().add(start), window, &mut resident) } {
                pages += resident.iter().filter(|r| **r).count();
            }
        }
        pages * self.page
    }

    /// The pages (indices from the slot's start, ascending) resident in `sample`'s first
    /// [`SAMPLE_BYTES`] (a stack's last), at most [`MAX_PREPARED_BYTES`] of them, nearest the
    /// start (a stack's: nearest the end, where it is used first).
    fn footprint(&self, sample: Slot) -> Vec<usize> {
        let (start, window) = self.sample_window();
        let mut resident = Vec::new();
        // SAFETY: the window lies inside the sample's slot, inside a chunk mapped while the
        // pool lives, page aligned. `mincore` only reads the page tables, whoever holds the
        // slot now.
        if !unsafe { self.residency(sample.base.0.as_ptr().add(start), window, &mut resident) } {
            return Vec::new();
        }
        let first = start / self.page;
        let used = resident
            .iter()
            .enumerate()
            .filter(|(_, r)| **r)
            .map(|(i, _)| first + i);
        let most = MAX_PREPARED_BYTES / self.page;
        let mut pages: Vec<usize> = if self.grows_down {
            used.rev().take(most).collect()
        } else {
            used.take(most).collect()
        };
        pages.sort_unstable();
        pages
    }

    /// Make `pages` of `slot` resident, zero-filled; the slot records how far that reached,
    /// even when the kernel refused part of it.
    fn populate(&self, mut slot: Slot, pages: &[usize]) -> (Slot, io::Result<()>) {
        for run in runs(pages, self.page) {
            // A guard page is never resident, so never learned; skip it all the same.
            let start = run.start.max(slot.guard_len(self));
            if start >= run.end {
                continue;
            }
            slot.prepared = slot.prepared.max(run.end);
            // SAFETY: whole pages inside a slot nobody else holds (taken from the cold ones
            // and not yet handed out); populating writes nothing, so it still reads as zeros.
            let done = unsafe {
                libc::madvise(
                    slot.base.0.as_ptr().add(start).cast(),
                    run.end - start,
                    MADV_POPULATE_WRITE,
                )
            };
            if done != 0 {
                return (slot, Err(io::Error::last_os_error()));
            }
        }
        (slot, Ok(()))
    }
}

/// Ascending page indices as runs of bytes from the slot's start.
fn runs(pages: &[usize], page: usize) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for &p in pages {
        let start = p * page;
        match runs.last_mut() {
            Some(run) if run.end == start => run.end += page,
            _ => runs.push(start..start + page),
        }
    }
    runs
}

/// Say once per node process why slots are not prepared ahead.
fn unprepared(e: &io::Error) {
    static SAID: OnceLock<()> = OnceLock::new();
    SAID.get_or_init(|| {
        tracing::warn!(error = %e, "spawns fault their pages in themselves (slots are not prepared ahead)");
    });
}

/// What the preparing thread has learned.
#[derive(Default)]
struct Learned {
    /// Which sample it learned last (see `State::samples`).
    samples: u64,
    /// The pages to prepare: those the last two probes had resident.
    pages: Vec<usize>,
    /// Preparing until the reserve is full (after it ran low).
    filling: bool,
}

/// The preparing thread of `pool`: runs while anyone else holds the pool.
fn run(pool: &Weak<Slots>) {
    let mut learned = Learned::default();
    while let Some(slots) = pool.upgrade() {
        if !slots.prepare_one(&mut learned) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::pools::{Scrub, WARM_BYTES};

    fn page() -> usize {
        rustix::param::page_size()
    }

    /// Which of `slot`'s first `pages` pages are resident.
    fn resident(slots: &Slots, slot: Slot, pages: usize) -> Vec<bool> {
        let mut resident = Vec::new();
        // SAFETY: the range lies in the test's slot.
        let read = unsafe { slots.residency(slot.base.0.as_ptr(), pages * page(), &mut resident) };
        assert!(read, "mincore");
        resident
    }

    /// Write pages `touched` of `slot`, as a process starting in it would.
    fn touch(slot: Slot, touched: &[usize]) {
        for &p in touched {
            // SAFETY: page `p` of the test's slot.
            unsafe {
                slot.base
                    .0
                    .as_ptr()
                    .add(p * page())
                    .write_bytes(0x5A, page())
            };
        }
    }

    /// Wait until `check` holds of `slots`.
    fn eventually(slots: &Slots, what: &str, check: impl Fn(&State) -> bool) {
        let start = Instant::now();
        loop {
            let state = slots.lock();
            if check(&state) {
                return;
            }
            assert!(
                start.elapsed().as_secs() < 10,
                "never: {what} (samples {}, learned {}, prepared {})",
                state.samples,
                state.learned,
                state.prepared.len()
            );
            drop(state);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A preparing pool of `pages`-page slots whose first processes each touched `touched`
    /// (three probes: two to learn from, one to be read later), with its reserve full.
    fn learned(pages: usize, touched: &[usize]) -> Arc<Slots> {
        let slots = Slots::preparing(Slots::new(pages * page(), 0));
        for _ in 0..3 {
            let probe = slots.acquire().expect("slot");
            assert_eq!(
                probe.prepared, 0,
                "nothing is prepared before two probes agree"
            );
            touch(probe, touched);
        }
        eventually(&slots, "the reserve is full", |s| {
            s.prepared.len() == PREPARED_SLOTS
        });
        slots
    }

    #[test]
    fn a_prepared_slot_has_the_probes_pages_resident_and_reads_as_zeros() {
        let slots = learned(64, &[3, 4, 10]);
        let slot = slots.acquire().expect("slot");
        assert_eq!(
            slot.prepared,
            11 * page(),
            "prepared through the probes' last page"
        );
        let expected: Vec<bool> = (0..64).map(|p| [3, 4, 10].contains(&p)).collect();
        assert_eq!(
            resident(&slots, slot, 64),
            expected,
            "exactly the probes' pages"
        );
        // SAFETY: the test's slot, `slot_size` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(slot.base.0.as_ptr(), slots.slot_size) };
        assert!(
            bytes.iter().all(|&b| b == 0),
            "a prepared slot reads as zeros"
        );
    }

    #[test]
    fn one_slot_in_every_few_is_a_probe_handed_out_unprepared() {
        let slots = learned(16, &[0]);
        let taken: Vec<Slot> = (0..PROBE_EVERY)
            .map(|_| {
                let slot = slots.acquire().expect("slot");
                touch(slot, &[0]);
                slot
            })
            .collect();
        let probes = taken.iter().filter(|s| s.prepared == 0).count();
        assert_eq!(probes, 1, "one probe in {PROBE_EVERY} slots");
    }

    #[test]
    fn a_new_guess_sends_the_reserve_made_for_the_old_one_back() {
        let slots = learned(16, &[0]);
        let mut held = Vec::new();
        // Processes of another module: they touch page 7, not page 0.
        for _ in 0..4 * PROBE_EVERY {
            let slot = slots.acquire().expect("slot");
            touch(slot, &[7]);
            held.push(slot);
        }
        eventually(&slots, "a reserve for the new pages", |s| {
            s.learned == s.samples && !s.prepared.is_empty() && s.preparing.is_none()
        });
        let reserve = slots.lock().prepared.clone();
        for slot in reserve {
            let pages = resident(&slots, slot, 16);
            assert!(
                !pages[0],
                "a slot prepared for the old guess is left in the reserve"
            );
            assert!(pages[7], "the reserve is prepared with the new pages");
        }
    }

    #[test]
    fn one_large_process_does_not_make_every_slot_large() {
        let slots = learned(64, &[0]);
        // The next probe touches many pages; it is read at the slot after it.
        for _ in 0..2 * PROBE_EVERY {
            let slot = slots.acquire().expect("slot");
            if slot.prepared == 0 {
                touch(slot, &(0..12).collect::<Vec<_>>());
                slots.acquire().expect("slot");
                break;
            }
            touch(slot, &[0]);
        }
        eventually(&slots, "the large probe learned from", |s| {
            s.learned == s.samples && !s.prepared.is_empty() && s.preparing.is_none()
        });
        for slot in slots.lock().prepared.clone() {
            let pages = resident(&slots, slot, 64);
            assert_eq!(
                pages.iter().filter(|p| **p).count(),
                1,
                "only the shared page"
            );
        }
    }

    #[test]
    fn a_probe_released_before_it_is_read_is_not_learned_from() {
        let slots = Slots::preparing(Slots::new(16 * page(), 0));
        let probe = slots.acquire().expect("slot");
        // SAFETY: released once, unused after.
        unsafe { slots.release(probe, page(), Scrub::Zeros) };
        // The first takes it back warm; the second would read the probe.
        slots.acquire().expect("slot");
        slots.acquire().expect("slot");
        assert!(slots.lock().sample.is_none(), "a released probe is read");
    }

    #[test]
    fn the_pools_residency_leaves_the_reserve_out() {
        let slots = learned(16, &[0, 1]);
        // Three probes of two pages each are held; the reserve's pages are no process's.
        assert_eq!(slots.resident(), 3 * 2 * page());
    }

    #[test]
    fn without_preparing_the_reserve_is_still_handed_out() {
        let slots = learned(16, &[0]);
        slots.unprepared.store(true, Ordering::Relaxed);
        let slot = slots.acquire().expect("slot");
        assert_ne!(slot.prepared, 0, "a prepared slot is not stranded");
    }

    #[test]
    fn a_released_prepared_slot_gives_its_untouched_prepared_pages_back() {
        // Larger than a warm slot may be, so that release gives the pages to the kernel.
        let pages = 2 * WARM_BYTES / page();
        let slots = learned(pages, &[1, 2, 300]);
        let slot = slots.acquire().expect("slot");
        assert!(resident(&slots, slot, pages)[300], "prepared");
        // Its holder wrote only its first page.
        // SAFETY: released once, unused after.
        unsafe { slots.release(slot, page(), Scrub::Zeros) };
        assert!(
            resident(&slots, slot, pages).iter().all(|r| !r),
            "no page of a released slot stays resident"
        );
    }

    #[test]
    fn a_stack_is_learned_from_its_end() {
        let mut slots = Slots::new(2 * SAMPLE_BYTES, 0);
        slots.grows_down = true;
        let slots = Slots::preparing(slots);
        let pages = slots.slot_size / page();
        // More pages than are prepared: those nearest the end are.
        let mut touched: Vec<usize> = (pages - 100..pages - 80).collect();
        touched.extend([pages - 2, pages - 1]);
        for _ in 0..3 {
            let probe = slots.acquire().expect("slot");
            touch(probe, &touched);
        }
        eventually(&slots, "a full reserve", |s| {
            s.prepared.len() == PREPARED_SLOTS
        });
        let slot = slots.acquire().expect("slot");
        assert_eq!(
            slot.prepared, slots.slot_size,
            "prepared through the slot's end"
        );
        let top = resident(&slots, slot, pages);
        assert!(
            top[pages - 1] && top[pages - 2],
            "the top pages are prepared"
        );
    }

    #[test]
    fn the_preparing_thread_lets_its_pool_go() {
        let slots = learned(16, &[0]);
        let pool = Arc::downgrade(&slots);
        drop(slots);
        let start = Instant::now();
        while pool.upgrade().is_some() {
            assert!(
                start.elapsed() < 10 * IDLE_CHECK,
                "the thread still holds the pool (its chunks stay mapped)"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
