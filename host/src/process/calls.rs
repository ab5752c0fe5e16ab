//! A process's open calls: the reply slots of the calls it has taken and not yet answered,
//! by tag.
//!
//! # Tags
//! Each call a process takes gets the next tag of the process's own counter (a `u64`, which
//! does not wrap in any process's lifetime). The guest sees it in `reply-to` with the
//! process's pid, so a `reply` names exactly one call of one process; a tag is never reused,
//! so a `reply` to an answered call, or a second `reply`, finds nothing and is dropped, as
//! OTP drops a reply nobody waits for.
//!
//! # Where a slot is
//! In at most one place. While `handle-call` runs, its call is the *current* one, so that a
//! `reply` inside the callback answers it; a call taken in a batch is held as *pending* from
//! the start, since several are open at once. A `noreply` (or a `stop` without a reply)
//! leaves the call pending until a `reply` — the process's own, or another process's passed
//! on as a `Reply` signal — answers it.
//!
//! # Bounds
//! One entry per call whose caller may still be waiting. A caller that gave up (timed out,
//! or was dropped) leaves a closed slot; closed slots are forgotten before the table grows,
//! so a server that never answers does not pile up the calls that timed out on it.
//!
//! # Exit and hibernation
//! The table lives in the process's store data, which a hibernating process keeps: pending
//! calls survive hibernation, and a `Reply` signal answers one without waking the process.
//! When the process exits, [`Calls::drain`] hands every open slot to the exit sequence, which
//! answers each with the exit reason once the process's name is free. A killed process's
//! slots are dropped with its store instead; its callers then read the exit reason from the
//! process table (`killed`).

use std::collections::HashMap;

use crate::mailbox::ReplySlot;

/// A process's open calls (see the module doc).
#[derive(Default)]
pub(crate) struct Calls {
    /// The call `handle-call` is handling, if it has not answered it yet.
    current: Option<(u64, ReplySlot)>,
    /// Calls left to a later `reply`; made at the first, freed when all are answered (a
    /// process that answers every call in its callback never has one, and every byte here is
    /// in every live process's store).
    #[allow(clippy::box_collection)] // the point: a pointer inline, not the map's 48 bytes
    pending: Option<Box<HashMap<u64, ReplySlot>>>,
    next_tag: u64,
}

impl Calls {
    fn tag(&mut self) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        tag
    }

    /// Take a call to hand to `handle-call`: it is the current call until
    /// [`Calls::finish_current`].
    pub(crate) fn begin(&mut self, slot: ReplySlot) -> u64 {
        let tag = self.tag();
        self.current = Some((tag, slot));
        tag
    }

    /// `handle-call` returned: the current call's slot, unless a `reply` inside the callback
    /// already answered it.
    pub(crate) fn finish_current(&mut self) -> Option<ReplySlot> {
        self.current.take().map(|(_, slot)| slot)
    }

    /// Take a call to hand to `handle-batch`: pending from the start.
    pub(crate) fn begin_pending(&mut self, slot: ReplySlot) -> u64 {
        let tag = self.tag();
        self.keep(tag, slot);
        tag
    }

    /// Leave the call `tag` open until a `reply` answers it or the process exits.
    pub(crate) fn keep(&mut self, tag: u64, slot: ReplySlot) {
        let pending = self.pending.get_or_insert_with(Box::default);
        if pending.len() == pending.capacity() {
            pending.retain(|_, s| !s.is_closed());
        }
        pending.insert(tag, slot);
    }

    /// The slot of the open call `tag`, to answer it; `None` if it is not open.
    pub(crate) fn take(&mut self, tag: u64) -> Option<ReplySlot> {
        match self.current.take() {
            Some((t, slot)) if t == tag => Some(slot),
            other => {
                self.current = other;
                let pending = self.pending.as_mut()?;
                let slot = pending.remove(&tag);
                if pending.is_empty() {
                    // Answered all: the table a burst of calls grew is not kept for life.
                    self.pending = None;
                }
                slot
            }
        }
    }

    /// Every open call's slot, for the exit sequence to answer.
    pub(crate) fn drain(&mut self) -> Vec<ReplySlot> {
        self.current
            .take()
            .map(|(_, s)| s)
            .into_iter()
            .chain(
                self.pending
                    .take()
                    .into_iter()
                    .flat_map(|p| p.into_values()),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::Calls;

    #[test]
    fn calls_whose_callers_gave_up_do_not_pile_up() {
        let mut calls = Calls::default();
        let (live, _waiting) = oneshot::channel();
        let live = calls.begin_pending(live);
        for _ in 0..10_000 {
            let (slot, caller) = oneshot::channel();
            let tag = calls.begin(slot);
            let slot = calls.finish_current().expect("not answered");
            calls.keep(tag, slot);
            drop(caller);
        }
        let kept = calls.pending.as_ref().map_or(0, |p| p.len());
        assert!(kept < 100, "{kept} kept");
        assert!(
            calls.take(live).is_some(),
            "the waiting caller's call is still open"
        );
    }

    #[test]
    fn a_call_is_answered_once_and_its_tag_never_reused() {
        let mut calls = Calls::default();
        let (slot, _caller) = oneshot::channel();
        let first = calls.begin(slot);
        assert!(calls.take(first).is_some());
        assert!(calls.take(first).is_none(), "a second reply finds nothing");
        assert!(
            calls.finish_current().is_none(),
            "answered inside the callback"
        );
        let (slot, _caller) = oneshot::channel();
        assert_ne!(calls.begin_pending(slot), first);
        assert_eq!(calls.drain().len(), 1);
    }

    #[test]
    fn a_process_whose_open_calls_are_all_answered_keeps_no_table_for_them() {
        let mut calls = Calls::default();
        let mut callers = Vec::new();
        let tags: Vec<u64> = (0..64)
            .map(|_| {
                let (slot, caller) = oneshot::channel();
                callers.push(caller);
                calls.begin_pending(slot)
            })
            .collect();
        for tag in tags {
            assert!(calls.take(tag).is_some());
        }
        assert!(
            calls.pending.is_none(),
            "a burst of calls left a table with room for {} behind",
            calls.pending.as_ref().map_or(0, |p| p.capacity())
        );
    }
}
