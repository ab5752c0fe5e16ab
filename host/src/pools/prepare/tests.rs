//! The preparing thread and its reserve, on small pools.

use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::pools::{Scrub, WARM_BYTES, WARM_SLOTS, discard};

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
        s.prepared.len() == s.demand.target()
    });
    slots
}

/// The next slot, at a probe's turn.
fn take_probe(slots: &Slots, state: &mut State) -> Slot {
    state.turn = PROBE_EVERY - 1;
    let probe = slots.take_unwarmed(state).expect("probe");
    assert_eq!(probe.prepared, 0, "a probe is handed out unprepared");
    probe
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
            // Spawns no faster than the thread prepares.
            eventually(&slots, "a slot ready", |s| !s.prepared.is_empty());
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
    // The next probe touches many pages. It is handed in to be read halfway to the next
    // probe, and read once spawns have taken the reserve below half.
    let probe = take_probe(&slots, &mut slots.lock());
    touch(probe, &(0..12).collect::<Vec<_>>());
    let samples = slots.lock().samples;
    for _ in 0..HAND_IN_AFTER {
        touch(slots.acquire().expect("slot"), &[0]);
    }
    assert_eq!(slots.lock().samples, samples + 1, "the probe is handed in");
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
fn a_probe_is_handed_in_to_be_read_only_halfway_to_the_next() {
    let slots = learned(16, &[0]);
    let mut state = slots.lock();
    let probe = take_probe(&slots, &mut state);
    let samples = state.samples;
    for taken in 1..HAND_IN_AFTER {
        let _slot = slots.take_unwarmed(&mut state).expect("slot");
        assert_eq!(
            state.samples, samples,
            "the probe is handed in {taken} slots after it, its process maybe still starting"
        );
    }
    let _slot = slots.take_unwarmed(&mut state).expect("slot");
    assert_eq!(state.samples, samples + 1, "the probe is never handed in");
    assert!(state.sample.is_some_and(|s| s.base == probe.base));
}

#[test]
fn a_probe_read_before_its_process_touched_a_page_leaves_the_guess_alone() {
    let slots = learned(16, &[0]);
    // A probe handed in and read before its process wrote anything (a spawn that has not
    // run its start yet).
    let samples = {
        let mut state = slots.lock();
        take_probe(&slots, &mut state);
        state.turn = HAND_IN_AFTER - 1;
        let _next = slots.take_unwarmed(&mut state).expect("slot");
        state.samples
    };
    // Spawns take the reserve below half: the thread wakes to refill it, and reads the
    // probe first.
    let _taken: Vec<Slot> = (0..HAND_IN_AFTER)
        .map(|_| slots.acquire().expect("slot"))
        .collect();
    eventually(&slots, "the probe is read", |s| s.learned >= samples);
    assert!(
        slots.lock().guess,
        "an empty probe made the pool forget which pages to prepare"
    );
    eventually(&slots, "the reserve refilled", |s| {
        s.prepared.len() == s.demand.target() && s.preparing.is_none()
    });
    for slot in slots.lock().prepared.clone() {
        assert!(resident(&slots, slot, 16)[0], "prepared with the guess");
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
    let pages = 2 * WARM_BYTES / page();
    let slots = learned(pages, &[1, 2, 200]);
    let slot = slots.acquire().expect("slot");
    assert!(resident(&slots, slot, pages)[200], "prepared");
    // No room among the warm slots, so that release gives the pages to the kernel, with
    // those of a batch's worth of other slots.
    let other = slots.acquire().expect("slot");
    let batch: Vec<Slot> = (1..discard::BATCH)
        .map(|_| slots.acquire().expect("slot"))
        .collect();
    slots
        .lock()
        .warm
        .extend(std::iter::repeat_n(other, WARM_SLOTS));
    // Its holder wrote only its first page.
    // SAFETY: released once, unused after.
    unsafe { slots.release(slot, page(), Scrub::Zeros) };
    assert!(
        resident(&slots, slot, pages)[200],
        "given back before its batch"
    );
    for other in batch {
        // SAFETY: released once, unused after.
        unsafe { slots.release(other, page(), Scrub::Zeros) };
    }
    slots.lock().warm.clear();
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
        s.prepared.len() == s.demand.target()
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
fn the_preparing_thread_lets_its_pool_go_at_once() {
    let slots = learned(16, &[0]);
    let pool = Arc::downgrade(&slots);
    // The thread holds the wake-up signal for as long as it runs.
    let thread = Arc::downgrade(&slots.wake);
    drop(slots);
    let start = Instant::now();
    while pool.upgrade().is_some() || thread.upgrade().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the thread still runs, or holds the pool (its chunks stay mapped)"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_spawn_that_finds_the_reserve_empty_makes_it_larger() {
    let slots = learned(16, &[0]);
    let first = slots.lock().demand.target();
    let mut state = slots.lock();
    // Spawns outran the thread: the reserve is empty at a turn that is not a probe's.
    let _taken = std::mem::take(&mut state.prepared);
    state.turn = 0;
    let slot = slots.take_unwarmed(&mut state).expect("slot");
    assert_eq!(slot.prepared, 0, "nothing was ready");
    assert_eq!(state.demand.target(), 2 * first, "the reserve doubles");
    drop(state);
    eventually(&slots, "the larger reserve is filled", |s| {
        s.prepared.len() == 2 * first && s.preparing.is_none()
    });
}

#[test]
fn an_idle_reserve_goes_back_to_the_kernel() {
    let slots = learned(16, &[0, 1]);
    let reserve = slots.lock().prepared.clone();
    assert!(!reserve.is_empty());
    // The first check sees the probes taken since the start; from the second idle one on,
    // each halves.
    for _ in 0..8 {
        slots.idle_check();
    }
    let state = slots.lock();
    assert!(state.prepared.is_empty(), "an idle pool keeps a reserve");
    assert_eq!(state.demand.target(), 0);
    drop(state);
    for &slot in &reserve {
        assert_eq!(
            resident(&slots, slot, 16),
            vec![false; 16],
            "a slot taken out of the reserve keeps its pages"
        );
    }
    assert_eq!(slots.reserve_resident(&reserve), 0);
}

#[test]
fn a_reserve_idled_to_nothing_is_refilled_when_spawns_come_back() {
    let slots = learned(16, &[0]);
    for _ in 0..8 {
        slots.idle_check();
    }
    {
        let mut state = slots.lock();
        assert_eq!(state.demand.target(), 0);
        // No probe waits to be read (reading one wakes the thread too), and the next slot is
        // not a probe's.
        state.probe = None;
        state.turn = 1;
    }
    // The thread now waits without a timeout: the spawn finding nothing ready wakes it.
    let slot = slots.acquire().expect("slot");
    assert_eq!(slot.prepared, 0);
    eventually(&slots, "the reserve refilled", |s| {
        s.demand.target() > 0 && s.prepared.len() == s.demand.target()
    });
}

#[test]
fn a_reserve_still_taken_from_is_kept() {
    let slots = learned(16, &[0]);
    let target = slots.lock().demand.target();
    for _ in 0..4 {
        let slot = slots.acquire().expect("slot");
        touch(slot, &[0]);
        slots.idle_check();
    }
    assert_eq!(slots.lock().demand.target(), target, "spawns still come");
}

#[test]
fn a_probe_is_read_when_the_thread_next_refills_not_by_waking_it() {
    let slots = learned(16, &[0]);
    let asleep = || !*slots.wake.pending.lock().unwrap();
    eventually(&slots, "the reserve is full and every probe read", |s| {
        s.learned == s.samples && s.preparing.is_none() && s.prepared.len() == s.demand.target()
    });
    let start = Instant::now();
    while !asleep() {
        assert!(start.elapsed().as_secs() < 10, "the thread never waited");
        std::thread::sleep(Duration::from_millis(1));
    }
    // A probe's turn, then the slot that hands the probe in to be read; the reserve is
    // still over half full.
    let probe = take_probe(&slots, &mut slots.lock());
    touch(probe, &[0]);
    let mut state = slots.lock();
    state.turn = HAND_IN_AFTER - 1;
    let _next = slots.take_unwarmed(&mut state).expect("slot");
    let samples = state.samples;
    assert!(state.prepared.len() >= state.demand.low_water());
    drop(state);
    assert!(asleep(), "the thread was woken for the probe alone");
    std::thread::sleep(Duration::from_millis(50));
    assert_ne!(slots.lock().learned, samples, "the probe was read at once");
    // Spawns take the reserve below half: the thread wakes to refill it, and reads the
    // probe first.
    let _taken: Vec<Slot> = (0..PROBE_EVERY)
        .map(|_| slots.acquire().expect("slot"))
        .collect();
    eventually(&slots, "the probe is read", |s| s.learned >= samples);
}

#[test]
fn a_pool_idled_to_nothing_before_it_learned_anything_learns_when_spawns_come() {
    let slots = Slots::preparing(Slots::new(16 * page(), 0));
    for _ in 0..8 {
        slots.idle_check();
    }
    assert_eq!(slots.lock().demand.target(), 0);
    // The first slot starts the thread, which finds nothing to do and waits.
    let first = slots.acquire().expect("slot");
    touch(first, &[0]);
    std::thread::sleep(Duration::from_millis(100));
    // No reserve is wanted, so nothing wakes the thread but the probes.
    let _held: Vec<Slot> = (0..3 * PROBE_EVERY)
        .map(|_| {
            let slot = slots.acquire().expect("slot");
            touch(slot, &[0]);
            slot
        })
        .collect();
    eventually(&slots, "a guess learned from the probes", |s| s.guess);
}

#[test]
fn a_slot_handed_out_unprepared_for_want_of_a_ready_one_is_no_probe() {
    let slots = learned(16, &[0]);
    let mut state = slots.lock();
    let probe = take_probe(&slots, &mut state);
    // Spawns outran the thread: the next slot is taken before its process started too.
    let _taken = std::mem::take(&mut state.prepared);
    let missed = slots.take_unwarmed(&mut state).expect("slot");
    assert_eq!(missed.prepared, 0, "nothing was ready");
    assert!(
        state.probe.is_some_and(|p| p.base == probe.base),
        "the probe to be handed in is the slot taken last, not the probe"
    );
}
