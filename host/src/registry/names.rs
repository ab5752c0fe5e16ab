//! Local names: one process per name, freed the moment the process exits.

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::Pid;

/// The node's name table (Erlang's `register/2`). Supervisors' names live here too.
#[derive(Default)]
pub(crate) struct Names {
    names: DashMap<String, Pid>,
}

impl Names {
    /// Take `name` for `pid`, or say who holds it.
    pub(crate) fn register(&self, name: &str, pid: Pid) -> Result<(), Pid> {
        match self.names.entry(name.to_owned()) {
            Entry::Occupied(e) => Err(*e.get()),
            Entry::Vacant(e) => {
                e.insert(pid);
                Ok(())
            }
        }
    }

    /// Free `name` if `pid` holds it.
    pub(crate) fn unregister(&self, name: &str, pid: Pid) {
        self.names.remove_if(name, |_, holder| *holder == pid);
    }

    /// Who holds `name`.
    pub(crate) fn whereis(&self, name: &str) -> Option<Pid> {
        self.names.get(name).map(|p| *p)
    }

    /// Call `f` with each name and its holder, in no particular order, copying nothing.
    /// The table is walked one shard at a time: a registration waits only while its shard
    /// is walked, never for the whole walk. `f` must not register or unregister a name
    /// (its shard is held).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&str, Pid)) {
        for e in self.names.iter() {
            f(e.key(), *e.value());
        }
    }

    /// Every name and its holder, by name.
    pub(crate) fn all(&self) -> Vec<(String, Pid)> {
        let mut all: Vec<_> = self
            .names
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect();
        all.sort_unstable();
        all
    }
}
