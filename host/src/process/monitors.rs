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

    /// Drop the monitor `mref`: its target, or `None` if it was not held.
    pub(crate) fn remove(&mut self, mref: &u64) -> Option<Pid> {
        self.0.as_mut()?.remove(mref)
    }
}
