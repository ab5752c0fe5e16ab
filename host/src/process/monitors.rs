//! The monitors a process holds: ref → target, made at the first (most processes monitor
//! nothing, and every byte of a process's store data is paid by every live process).

use std::collections::HashMap;

use crate::Pid;

/// A process's monitors: ref → the monitored process.
#[derive(Default)]
#[allow(clippy::box_collection)] // the point: a pointer inline, not the map's 48 bytes
pub(crate) struct Monitors(Option<Box<HashMap<u64, Pid>>>);

impl Monitors {
    /// How many it holds.
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }

    /// Hold the monitor `mref` of `target`.
    pub(crate) fn insert(&mut self, mref: u64, target: Pid) {
        self.0.get_or_insert_with(Box::default).insert(mref, target);
    }

    /// Whether `mref` is held (not yet removed, nor its `DOWN` handled).
    pub(crate) fn holds(&self, mref: u64) -> bool {
        self.0.as_ref().is_some_and(|m| m.contains_key(&mref))
    }

    /// Drop the monitor `mref`: its target, or `None` if it was not held. The last one
    /// dropped frees the table, so a burst of monitors does not keep its room for life.
    pub(crate) fn remove(&mut self, mref: &u64) -> Option<Pid> {
        let held = self.0.as_mut()?;
        let target = held.remove(mref);
        if held.is_empty() {
            self.0 = None;
        }
        target
    }
}

#[cfg(test)]
mod tests {
    use super::Monitors;

    #[test]
    fn a_process_that_holds_no_more_monitors_keeps_no_table_for_them() {
        let mut monitors = Monitors::default();
        for mref in 0..100 {
            monitors.insert(mref, 7);
        }
        for mref in 0..100 {
            assert_eq!(monitors.remove(&mref), Some(7));
        }
        assert_eq!(monitors.len(), 0);
        assert!(
            monitors.0.is_none(),
            "room for {} monitors kept",
            monitors.0.as_ref().map_or(0, |m| m.capacity())
        );
        assert_eq!(monitors.remove(&3), None, "a monitor not held");
    }
}
