//! Fresh slots prepared ahead of need.
//!
//! A new process's first touch of each page of its linear memory and fiber stack is a page
//! fault: the kernel takes a zeroed page (and, for a memory, a page-table page for its slot),
//! 2–3 µs each on a VM, most of a spawn. The pages a process touches first depend on its
//! module's layout (the shadow stack's top, the data segments, the heap's start), and the
//! processes spawned in a burst are mostly of one module. So a thread per pool keeps a reserve
//! of cold slots in which the pages recent processes touched are resident already
//! (`MADV_POPULATE_WRITE`: zero-filled, as a fault would make them), and `acquire` hands those
//! out after warm slots. The faults happen on that thread, while the spawning process's worker
//! goes on. The reserve follows the spawns: up to [`demand::MOST`] slots while they come, none
//! once they stop (the `demand` module).
//!
//! Which pages: those resident in both of the last two *probes*, slots handed out
//! unprepared. A probe is handed in to be read [`HAND_IN_AFTER`] slots after it (its holder
//! has run its start by then, even with a few spawns under way at once), or at the next slot
//! while there is no guess yet; it is read at once while there is no guess, else when the
//! thread next wakes to refill or check the reserve, and forgotten if it is released first.
//! A probe with nothing resident has not started: it teaches nothing, unless the probe
//! before it agrees. Every [`PROBE_EVERY`]th slot is a probe, so the guess follows the
//! modules being spawned; it is never learned from a prepared slot, whose untouched prepared
//! pages would look used, and one large process does not make it large. When it changes,
//! the reserve made for the old guess goes back to the kernel. A wrong guess costs memory
//! only: at most [`MAX_PREPARED_BYTES`] per slot, which go back to the kernel with the
//! slot's own pages when it is released (its `prepared` extent).
//!
//! The thread waits for work without holding the pool, so it ends as soon as the pool's
//! owners drop it (dropping the pool wakes it).

mod demand;

use std::io;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use super::{Addr, Slot, Slots, State};

pub(super) use demand::Demand;

/// Linux's `MADV_POPULATE_WRITE` (since 5.14): fault the range in, writable, without writing
/// it.
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// One slot handed out in this many (without warm pages) is a probe. A probe costs its own
/// spawn the page faults a prepared slot spares, and this thread a `mincore` read of
/// [`SAMPLE_BYTES`]: at one in 8 that was a tenth of the CPU of a run of spawns. At one in 32
/// a change of the modules being spawned is learned within 64 spawns.
const PROBE_EVERY: u32 = 32;

/// Once there is a guess, a probe is handed in to be read this many slots after it: halfway
/// to the next. Handed in at the next slot, it was read while its process was still
/// starting, as often as one time in four in a run of spawns (the next slot was taken by a
/// spawn on the other worker): it looked smaller than it was, or empty, and the reserve
/// made for the right pages was thrown away for it.
const HAND_IN_AFTER: u32 = PROBE_EVERY / 2;

/// A probe's pages are read this far from its start (a stack's: from its end): past a Rust
/// guest's data, whether built with the SDK's 66 KiB shadow stack or the toolchain's 1 MiB
/// one. Reading them (`mincore`) is most of the preparing thread's work, ~30 ns a page on a
/// VM, and at most [`MAX_PREPARED_BYTES`] of them are prepared, those nearest the start.
const SAMPLE_BYTES: usize = 2 << 20;

/// At most this many bytes of a slot are made resident ahead: a counter touches 4 pages of
/// memory and 1 of stack.
const MAX_PREPARED_BYTES: usize = 64 << 10;

/// How often a thread with a reserve checks whether spawns still take from it (each check
/// without one halves the reserve). Long in tests, whose threads must not shrink a reserve
/// under them; they run the check themselves.
const IDLE_CHECK: Duration = if cfg!(test) {
    Duration::from_secs(60)
} else {
    Duration::from_millis(500)
};

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
        state.turn = (state.turn + 1) % PROBE_EVERY;
        let probe_turn = state.turn == 0;
        // The probe has had its start by now: learn from it. Once there is a guess, the
        // thread reads it when it next runs (to refill the reserve, or to check it), not at
        // once: waking a sleeping thread for it took the spawning worker a system call and a
        // cross-CPU wake-up every eighth spawn, twice the refills'. Until then no reserve may
        // be wanted (one that idled to nothing wants none until a spawn misses a prepared
        // slot, and only a guess makes that a miss): the probe wakes it.
        if (!state.guess || state.turn == HAND_IN_AFTER)
            && let Some(probe) = state.probe.take()
        {
            state.before = state.sample.replace(probe);
            state.samples += 1;
            if !state.guess {
                self.wake.notify();
            }
        }
        let missed = !probe_turn && state.guess && state.prepared.is_empty();
        state.demand.took(missed);
        let slot = match state.prepared.pop() {
            Some(slot) if !probe_turn => slot,
            prepared => {
                state.prepared.extend(prepared);
                let slot = self.cold(state)?;
                // A slot handed out unprepared because none was ready is no probe once there
                // is a guess: the probe waiting to be handed in stays the one read.
                if probe_turn || !state.guess {
                    state.probe = Some(slot);
                }
                slot
            }
        };
        if !state.preparer {
            state.preparer = true;
            let (pool, wake) = (this.clone(), self.wake.clone());
            let started = std::thread::Builder::new()
                .name("otter-prepare".into())
                .spawn(move || run(&pool, &wake));
            if let Err(e) = started {
                unprepared(&e);
                self.unprepared.store(true, Ordering::Relaxed);
            }
        } else if state.prepared.len() < state.demand.low_water() {
            self.wake.notify();
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

    /// Do the next thing the preparing thread has to do: learn from a new probe, or prepare a
    /// slot.
    fn prepare_one(&self, learned: &mut Learned) -> Step {
        let mut state = self.lock();
        if state.samples != learned.samples {
            // The probe before the newest is the one learned from last time.
            let next = state.samples == learned.samples + 1;
            learned.samples = state.samples;
            let samples = [state.before, state.sample];
            drop(state);
            self.learn(learned, samples, next);
            self.lock().learned = learned.samples;
            return Step::Again;
        }
        let ready = state.prepared.len();
        if ready < state.demand.low_water() {
            learned.filling = true;
        }
        if ready >= state.demand.target() {
            learned.filling = false;
            state.demand.filled();
        }
        if !learned.filling || learned.pages.is_empty() {
            // Nothing to prepare until spawns take from the reserve: wait for them, or, with
            // a reserve, check now and then whether they still come.
            return Step::Wait {
                idle: ready > 0 || state.demand.target() > 0,
            };
        }
        let slot = match self.cold(&mut state) {
            Ok(slot) => slot,
            Err(e) => {
                drop(state);
                tracing::debug!(error = %e, "no slot to prepare; trying again");
                std::thread::sleep(BACK_OFF);
                return Step::Again;
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
                Step::Again
            }
            Err(e) => {
                drop(state);
                self.discard(vec![slot]);
                let permanent = matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::EPERM | libc::ENOSYS)
                );
                if permanent {
                    unprepared(&e);
                    self.unprepared.store(true, Ordering::Relaxed);
                    return Step::Stop;
                }
                tracing::debug!(error = %e, "could not prepare a slot; trying again");
                std::thread::sleep(BACK_OFF);
                Step::Again
            }
        }
    }

    /// Learn from the last two probes: prepare the pages both have resident. If those change,
    /// the slots prepared so far were made for other pages and go back to the kernel.
    /// `next`: the probe before the newest is the newest of the last call, whose footprint
    /// is kept rather than read again (reading one is most of the thread's work).
    fn learn(&self, learned: &mut Learned, [before, sample]: [Option<Slot>; 2], next: bool) {
        let last = learned.last.take();
        let (Some(before), Some(sample)) = (before, sample) else {
            return;
        };
        let before = match last {
            Some((base, pages)) if next && base == before.base => pages,
            _ => self.footprint(before),
        };
        let footprint = self.footprint(sample);
        if before.is_empty() != footprint.is_empty() {
            // One of them had not started when it was read: keep the guess, and read that
            // one again as the probe before the next.
            learned.last = (!footprint.is_empty()).then_some((sample.base, footprint));
            return;
        }
        let shared: Vec<usize> = footprint
            .iter()
            .copied()
            .filter(|p| before.binary_search(p).is_ok())
            .collect();
        learned.last = Some((sample.base, footprint));
        if shared == learned.pages {
            return;
        }
        learned.pages = shared;
        let stale = {
            let mut state = self.lock();
            state.guess = !learned.pages.is_empty();
            std::mem::take(&mut state.prepared)
        };
        self.discard(stale);
    }

    /// An idle check (see [`Demand::idle_check`]): the prepared slots past the reserve's new
    /// size go back to the kernel.
    fn idle_check(&self) {
        let excess = {
            let mut state = self.lock();
            let target = state.demand.idle_check();
            let excess = state.prepared.len().saturating_sub(target);
            state.prepared.drain(..excess).collect::<Vec<_>>()
        };
        self.discard(excess);
    }

    /// Give prepared slots' pages back to the kernel (together, see the `discard` module) and
    /// the slots to the cold ones.
    fn discard(&self, slots: Vec<Slot>) {
        let (prepared, bare): (Vec<Slot>, Vec<Slot>) =
            slots.into_iter().partition(|slot| slot.prepared > 0);
        self.lock().free.extend(bare);
        let prepared = prepared.into_iter().map(|slot| (slot, slot.prepared));
        // SAFETY: each slot's first pages; nobody holds them (prepared slots are not handed
        // out), and discarding them makes them read as zeros again.
        unsafe { self.give_back(prepared.collect()) };
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
    /// The newest probe learned from, and its footprint.
    last: Option<(Addr, Vec<usize>)>,
    /// Preparing until the reserve is full (after it ran low).
    filling: bool,
}

/// What the preparing thread does next.
enum Step {
    /// Look for more work at once.
    Again,
    /// Wait to be woken; `idle`: with a reserve to shrink if no spawn takes from it.
    Wait { idle: bool },
    /// Stop: the kernel cannot populate pages ahead.
    Stop,
}

/// Wakes the preparing thread. Kept apart from the pool so that the thread can wait without
/// holding it.
#[derive(Default)]
pub(super) struct Wake {
    /// Set by a wake-up the thread has not seen yet, so that none is lost while it works.
    pending: Mutex<bool>,
    signal: Condvar,
}

impl Wake {
    /// Wake the thread (slots ran low, a probe is to be read, or the pool is gone).
    pub(super) fn notify(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        // A wake-up already pending reaches the thread: spare the system call.
        if !std::mem::replace(&mut *pending, true) {
            self.signal.notify_one();
        }
    }

    /// Wait for a wake-up, at most `timeout` if given; true when woken.
    fn wait(&self, timeout: Option<Duration>) -> bool {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut pending = match timeout {
            Some(timeout) => {
                self.signal
                    .wait_timeout_while(pending, timeout, |pending| !*pending)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .signal
                .wait_while(pending, |pending| !*pending)
                .unwrap_or_else(PoisonError::into_inner),
        };
        std::mem::replace(&mut *pending, false)
    }
}

/// The preparing thread of `pool`: runs while anyone else holds the pool.
fn run(pool: &Weak<Slots>, wake: &Wake) {
    let mut learned = Learned::default();
    loop {
        let Some(slots) = pool.upgrade() else {
            return;
        };
        let idle = match slots.prepare_one(&mut learned) {
            Step::Again => continue,
            Step::Stop => return,
            Step::Wait { idle } => idle,
        };
        drop(slots);
        if !wake.wait(idle.then_some(IDLE_CHECK))
            && let Some(slots) = pool.upgrade()
        {
            slots.idle_check();
        }
    }
}

#[cfg(test)]
mod tests;
