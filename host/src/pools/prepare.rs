//! Fresh slots prepared ahead of need.
//!
//! A new process's first touch of each page of its linear memory and fiber stack is a page
//! fault: the kernel takes a zeroed page (and, for a memory, a page-table page for its slot),
//! 2–3 µs each on a VM, most of a spawn. The pages a process touches first depend on its
//! module's layout (the shadow stack's top, the data segments, the heap's start), and the
//! processes spawned in a burst are mostly of one module. So a thread per pool keeps up to
//! [`PREPARED_SLOTS`] fresh slots in which the pages resident in a recent slot are resident
//! already (`MADV_POPULATE_WRITE`: zero-filled, as a fault would make them), and `acquire`
//! hands those out after warm slots. The faults happen on that thread, while the spawning
//! process's worker goes on.
//!
//! Which pages: those resident in a *probe*, a slot handed out unprepared, sampled once a later
//! slot is handed out (its holder has run its start by then, in the usual burst). Every
//! [`PROBE_EVERY`]th slot is a probe, so the guess follows the modules being spawned; it is
//! never learned from a prepared slot, whose untouched prepared pages would look used. A
//! wrong guess costs memory only, at most [`MAX_PREPARED_BYTES`] per slot, and those pages go
//! back to the kernel with the slot's own when it is released (its `prepared` extent).

use std::io;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use super::{Addr, Slot, Slots, State};

/// Linux's `MADV_POPULATE_WRITE` (since 5.14): fault the range in, writable, without writing
/// it.
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// Prepared slots the thread keeps ready.
const PREPARED_SLOTS: usize = 32;

/// The thread prepares more when fewer than this many are ready.
const LOW_WATER: usize = 16;

/// One slot handed out in this many (without warm pages) is a probe.
const PROBE_EVERY: u32 = 8;

/// A probe's pages are sampled this far from its start.
const SAMPLE_BYTES: usize = 4 << 20;

/// At most this many bytes of a slot are made resident ahead.
const MAX_PREPARED_BYTES: usize = 256 << 10;

/// How often an idle thread checks whether its pool is still in use.
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl Slots {
    /// A slot without warm pages: prepared if one is ready and this is not a probe's turn.
    pub(super) fn take_unwarmed(&self, state: &mut State) -> io::Result<Slot> {
        let Some(this) = self.this.get() else {
            return self.cold(state);
        };
        if self.unprepared.load(Ordering::Relaxed) {
            return self.cold(state);
        }
        // The probe handed out before this slot has had its start: learn from it.
        if state.probe.is_some() {
            state.sample = state.probe.take();
            state.samples += 1;
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
                tracing::debug!(error = %e, "slots are not prepared ahead");
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

    /// Wait until prepared slots are wanted, then prepare one like the sample (whose pages are
    /// read again only when the sample changes: `learned` keeps them); false when the thread
    /// should stop (nobody else holds the pool, or pages cannot be prepared).
    fn prepare_one(self: &Arc<Self>, learned: &mut Learned) -> bool {
        let mut state = self.lock();
        if state.prepared.len() >= PREPARED_SLOTS {
            while state.prepared.len() >= LOW_WATER {
                let (next, waited) = self
                    .low
                    .wait_timeout(state, IDLE_CHECK)
                    .unwrap_or_else(PoisonError::into_inner);
                state = next;
                if waited.timed_out() && Arc::strong_count(self) == 1 {
                    return false;
                }
            }
        }
        let (sample, samples) = (state.sample, state.samples);
        let slot = match self.cold(&mut state) {
            Ok(slot) => slot,
            Err(e) => {
                tracing::debug!(error = %e, "slots are not prepared ahead");
                return false;
            }
        };
        state.preparing = Some(slot);
        drop(state);
        if learned.samples != samples {
            learned.samples = samples;
            learned.pages = sample.map(|s| self.footprint(s.base)).unwrap_or_default();
        }
        let (slot, populated) = self.populate(slot, &learned.pages);
        let mut state = self.lock();
        state.preparing = None;
        state.prepared.push(slot);
        drop(state);
        if let Err(e) = populated {
            tracing::debug!(error = %e, "slots are not prepared ahead");
            self.unprepared.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Bytes resident in the slots prepared and not handed out, and in the one being
    /// prepared.
    pub(super) fn reserve_resident(&self) -> usize {
        let reserve: Vec<Slot> = {
            let state = self.lock();
            state
                .prepared
                .iter()
                .copied()
                .chain(state.preparing)
                .collect()
        };
        let window = self.slot_size.min(SAMPLE_BYTES);
        let mut resident = vec![0u8; window / self.page];
        let mut pages = 0;
        for slot in reserve {
            // SAFETY: the window lies inside the slot, inside a chunk mapped while the pool
            // lives; page aligned; `resident` has a byte per page. `mincore` only reads the
            // page tables.
            if unsafe { libc::mincore(slot.base.0.as_ptr().cast(), window, resident.as_mut_ptr()) }
                == 0
            {
                pages += resident.iter().filter(|r| *r & 1 == 1).count();
            }
        }
        pages * self.page
    }

    /// The runs of pages resident in `sample`'s first [`SAMPLE_BYTES`], as byte ranges from
    /// its start, at most [`MAX_PREPARED_BYTES`] in all.
    fn footprint(&self, sample: Addr) -> Vec<Range<usize>> {
        let window = self.slot_size.min(SAMPLE_BYTES);
        let mut resident = vec![0u8; window / self.page];
        // SAFETY: the window lies inside the sample's slot, inside a chunk mapped while the pool
        // lives; page aligned; `resident` has a byte per page. `mincore` only reads the page
        // tables, whoever holds the slot now.
        if unsafe { libc::mincore(sample.0.as_ptr().cast(), window, resident.as_mut_ptr()) } != 0 {
            return Vec::new();
        }
        let mut runs: Vec<Range<usize>> = Vec::new();
        let mut budget = MAX_PREPARED_BYTES;
        for (i, _) in resident.iter().enumerate().filter(|(_, r)| *r & 1 == 1) {
            if budget == 0 {
                break;
            }
            budget -= self.page;
            let start = i * self.page;
            match runs.last_mut() {
                Some(run) if run.end == start => run.end += self.page,
                _ => runs.push(start..start + self.page),
            }
        }
        runs
    }

    /// Make `pages` of `slot` resident, zero-filled; the slot records how far that reached,
    /// even when the kernel refused part of it.
    fn populate(&self, mut slot: Slot, pages: &[Range<usize>]) -> (Slot, io::Result<()>) {
        // A guard page is never resident, so never sampled; skip it all the same.
        let guard = if slot.guarded { self.slot_guard } else { 0 };
        for run in pages {
            let start = run.start.max(guard);
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

/// What the preparing thread learned from a sample: the pages to prepare.
#[derive(Default)]
struct Learned {
    /// Which sample it was (see `State::samples`).
    samples: u64,
    pages: Vec<Range<usize>>,
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

    /// Which of `slot`'s first `pages` pages are resident.
    fn resident(slot: Slot, pages: usize) -> Vec<bool> {
        let page = rustix::param::page_size();
        let mut vec = vec![0u8; pages];
        // SAFETY: the range lies in the test's slot; `vec` has a byte per page.
        let read =
            unsafe { libc::mincore(slot.base.0.as_ptr().cast(), pages * page, vec.as_mut_ptr()) };
        assert_eq!(read, 0, "mincore");
        vec.iter().map(|r| r & 1 == 1).collect()
    }

    /// Wait until `slots` has `n` prepared slots.
    fn prepared(slots: &Slots, n: usize) {
        let start = Instant::now();
        while slots.lock().prepared.len() < n {
            assert!(
                start.elapsed().as_secs() < 10,
                "{n} slots were never prepared"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A pool of `pages`-page slots, preparing, whose probe touched `touched`; the next slot
    /// handed out is prepared after it.
    fn learned(pages: usize, touched: &[usize]) -> Arc<Slots> {
        let page = rustix::param::page_size();
        let slots = Slots::preparing(Slots::new(pages * page, 0));
        let probe = slots.acquire().expect("slot");
        assert_eq!(probe.prepared, 0, "the first slot is a probe");
        for &p in touched {
            // SAFETY: page `p` of the test's slot.
            unsafe { probe.base.0.as_ptr().add(p * page).write_bytes(0x5A, page) };
        }
        // The probe is sampled once another slot is handed out.
        slots.acquire().expect("slot");
        slots
    }

    #[test]
    fn a_prepared_slot_has_the_probes_pages_resident_and_reads_as_zeros() {
        let page = rustix::param::page_size();
        let slots = learned(64, &[3, 4, 10]);
        prepared(&slots, PREPARED_SLOTS);
        let slot = slots.acquire().expect("slot");
        assert_eq!(
            slot.prepared,
            11 * page,
            "prepared through the probe's last page"
        );
        let resident = resident(slot, 64);
        let expected: Vec<bool> = (0..64).map(|p| [3, 4, 10].contains(&p)).collect();
        assert_eq!(resident, expected, "exactly the probe's pages are resident");
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
        prepared(&slots, PREPARED_SLOTS);
        let taken: Vec<Slot> = (0..PROBE_EVERY)
            .map(|_| slots.acquire().expect("slot"))
            .collect();
        let probes = taken.iter().filter(|s| s.prepared == 0).count();
        assert_eq!(probes, 1, "one probe in {PROBE_EVERY} slots");
    }

    #[test]
    fn a_released_prepared_slot_gives_its_untouched_prepared_pages_back() {
        let page = rustix::param::page_size();
        // Larger than a warm slot may be, so that release gives the pages to the kernel.
        let pages = 2 * WARM_BYTES / page;
        let slots = learned(pages, &[1, 2, 300]);
        prepared(&slots, 1);
        let slot = slots.acquire().expect("slot");
        assert!(resident(slot, pages)[300], "prepared");
        // Its holder wrote only its first page.
        // SAFETY: released once, unused after.
        unsafe { slots.release(slot, page, Scrub::Zeros) };
        assert!(
            resident(slot, pages).iter().all(|r| !r),
            "no page of a released slot stays resident"
        );
    }

    #[test]
    fn the_preparing_thread_lets_its_pool_go() {
        let slots = learned(16, &[0]);
        prepared(&slots, PREPARED_SLOTS);
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
