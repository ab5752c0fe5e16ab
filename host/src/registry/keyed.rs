//! Named registries of keys, as Elixir's `Registry`: unique keys (one process per key, a
//! `via` destination) or duplicate keys (pub/sub), any term as key and value.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::Pid;
use crate::term::Term;
use crate::term::canonical;

/// Whether a registry's keys are held by one process or by many (Elixir's `keys:`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Keys {
    /// One process per key: a second registration is `already_registered`, and the key is a
    /// `via` destination.
    Unique,
    /// Any number of entries per key, a process's included; for `dispatch` (pub/sub).
    Duplicate,
}

/// Why an operation on a named registry failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No registry has this name.
    #[error("unknown registry {0:?}")]
    UnknownRegistry(String),
    /// In a unique registry, the key is held by this pid.
    #[error("key already registered by <{0}>")]
    AlreadyRegistered(Pid),
    /// A `via` destination names a registry with duplicate keys, where a key is no address.
    #[error("registry {0:?} has duplicate keys; a via name needs a unique registry")]
    NotUnique(String),
}

/// A registry of this name exists already.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry {0:?} already exists")]
pub struct RegistryExists(pub String);

/// One registry: canonical key → entries in registration order.
struct Table {
    name: String,
    keys: Keys,
    entries: DashMap<Term, Vec<(Pid, Term)>>,
}

impl Table {
    /// Drop `pid`'s entries under `key`, and the key once it has none.
    fn remove(&self, key: &[u8], pid: Pid) {
        if let Some(mut list) = self.entries.get_mut(key) {
            list.retain(|(p, _)| *p != pid);
        }
        self.entries.remove_if(key, |_, list| list.is_empty());
    }
}

/// The node's keyed registries, and what each process holds in them.
#[derive(Default)]
pub(crate) struct Registries {
    tables: RwLock<HashMap<String, Arc<Table>>>,
    /// Per process, the (registry, key) pairs it holds, so its exit removes exactly those.
    /// Only the process itself adds to its list, from its own task, and its exit runs after
    /// that task; so the list and the tables never disagree for long.
    held: DashMap<Pid, Held>,
}

/// How much one process may hold in the registries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeldBudget {
    /// Entries, in all registries together.
    pub(crate) entries: usize,
    /// Their [`entry_cost`]s together.
    pub(crate) bytes: usize,
}

impl HeldBudget {
    /// No bound: for a starting process's `via` key (its first entry) and tests of the
    /// tables themselves.
    pub(crate) const UNBOUNDED: HeldBudget = HeldBudget {
        entries: usize::MAX,
        bytes: usize::MAX,
    };
}

/// Why [`Registries::register`] refused an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegisterEntryError {
    /// An error the registering process is told of.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// One more entry would take the process past its [`HeldBudget`].
    #[error("system_limit")]
    OverBudget,
}

/// What one process holds in the registries.
#[derive(Default)]
struct Held {
    /// Each entry's registry, canonical key and [`entry_cost`].
    entries: Vec<(Arc<Table>, Term, usize)>,
    /// The sum of the entries' costs.
    bytes: usize,
}

/// Roughly what an entry takes on the host: its key (twice: in the table and in the
/// holder's list), its value, and the bookkeeping around them.
pub(crate) fn entry_cost(key: &[u8], value: &[u8]) -> usize {
    2 * key.len() + value.len() + 96
}

/// A key as the registry compares it: its canonical CBOR, or the bytes themselves if they
/// are not one well-formed CBOR item.
fn key_of(key: &[u8]) -> Term {
    canonical(key).unwrap_or_else(|| key.to_vec())
}

impl Registries {
    /// Create a registry.
    pub(crate) fn create(&self, name: &str, keys: Keys) -> Result<(), RegistryExists> {
        let mut tables = self.tables.write().expect("registry table lock");
        if tables.contains_key(name) {
            return Err(RegistryExists(name.to_owned()));
        }
        let table = Table {
            name: name.to_owned(),
            keys,
            entries: DashMap::new(),
        };
        tables.insert(name.to_owned(), Arc::new(table));
        Ok(())
    }

    /// The registries' names and key kinds, by name.
    pub(crate) fn list(&self) -> Vec<(String, Keys)> {
        let tables = self.tables.read().expect("registry table lock");
        let mut all: Vec<_> = tables.values().map(|t| (t.name.clone(), t.keys)).collect();
        all.sort();
        all
    }

    fn table(&self, name: &str) -> Result<Arc<Table>, RegistryError> {
        self.tables
            .read()
            .expect("registry table lock")
            .get(name)
            .cloned()
            .ok_or_else(|| RegistryError::UnknownRegistry(name.to_owned()))
    }

    /// Add an entry for `pid` under `key`, if `pid`'s entries stay within `budget`.
    pub(crate) fn register(
        &self,
        registry: &str,
        key: &[u8],
        pid: Pid,
        value: Term,
        budget: HeldBudget,
    ) -> Result<(), RegisterEntryError> {
        let table = self.table(registry)?;
        let key = key_of(key);
        let cost = entry_cost(&key, &value);
        let (count, bytes) = self.held(pid);
        let over = count >= budget.entries || bytes.saturating_add(cost) > budget.bytes;
        match (table.keys, table.entries.entry(key.clone())) {
            // Refused whatever the budget: the process can handle this error.
            (Keys::Unique, Entry::Occupied(e)) => {
                let holder = e.get().first().map_or(pid, |(p, _)| *p);
                return Err(RegistryError::AlreadyRegistered(holder).into());
            }
            _ if over => return Err(RegisterEntryError::OverBudget),
            (_, Entry::Vacant(e)) => {
                e.insert(vec![(pid, value)]);
            }
            (Keys::Duplicate, Entry::Occupied(mut e)) => e.get_mut().push((pid, value)),
        }
        let mut held = self.held.entry(pid).or_default();
        held.bytes += cost;
        held.entries.push((table, key, cost));
        Ok(())
    }

    /// Remove `pid`'s entries under `key`.
    pub(crate) fn unregister(
        &self,
        registry: &str,
        key: &[u8],
        pid: Pid,
    ) -> Result<(), RegistryError> {
        let table = self.table(registry)?;
        let key = key_of(key);
        table.remove(&key, pid);
        if let Some(mut held) = self.held.get_mut(&pid) {
            let mut freed = 0;
            held.entries.retain(|(t, k, cost)| {
                let gone = Arc::ptr_eq(t, &table) && *k == key;
                freed += if gone { *cost } else { 0 };
                !gone
            });
            held.bytes -= freed;
        }
        self.held.remove_if(&pid, |_, held| held.entries.is_empty());
        Ok(())
    }

    /// The entries under `key`, in registration order.
    pub(crate) fn lookup(
        &self,
        registry: &str,
        key: &[u8],
    ) -> Result<Vec<(Pid, Term)>, RegistryError> {
        let table = self.table(registry)?;
        Ok(table
            .entries
            .get(key_of(key).as_slice())
            .map(|list| list.clone())
            .unwrap_or_default())
    }

    /// The pids under `key`, in registration order (a pid once per entry).
    pub(crate) fn pids(&self, registry: &str, key: &[u8]) -> Result<Vec<Pid>, RegistryError> {
        let table = self.table(registry)?;
        Ok(table
            .entries
            .get(key_of(key).as_slice())
            .map(|list| list.iter().map(|(p, _)| *p).collect())
            .unwrap_or_default())
    }

    /// The holder of `key` in a unique registry: a `via` name.
    pub(crate) fn whereis(&self, registry: &str, key: &[u8]) -> Result<Option<Pid>, RegistryError> {
        let table = self.table(registry)?;
        if table.keys != Keys::Unique {
            return Err(RegistryError::NotUnique(registry.to_owned()));
        }
        Ok(table
            .entries
            .get(key_of(key).as_slice())
            .and_then(|list| list.first().map(|(p, _)| *p)))
    }

    /// How many entries `pid` holds, and what they take on the host by [`entry_cost`].
    pub(crate) fn held(&self, pid: Pid) -> (usize, usize) {
        self.held
            .get(&pid)
            .map_or((0, 0), |h| (h.entries.len(), h.bytes))
    }

    /// Remove everything `pid` holds: it has exited.
    pub(crate) fn remove_pid(&self, pid: Pid) {
        if let Some((_, held)) = self.held.remove(&pid) {
            for (table, key, _) in held.entries {
                table.remove(&key, pid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_key_has_one_holder_and_is_freed_with_it() {
        let r = Registries::default();
        r.create("u", Keys::Unique).unwrap();
        assert_eq!(
            r.create("u", Keys::Duplicate),
            Err(RegistryExists("u".into()))
        );
        r.register("u", &[0x01], 7, vec![0xf6], HeldBudget::UNBOUNDED)
            .unwrap();
        assert_eq!(
            r.register("u", &[0x01], 8, vec![0xf6], HeldBudget::UNBOUNDED),
            Err(RegistryError::AlreadyRegistered(7).into())
        );
        // The same key written with a longer head is the same key.
        assert_eq!(r.whereis("u", &[0x18, 0x01]), Ok(Some(7)));
        r.remove_pid(7);
        assert_eq!(r.whereis("u", &[0x01]), Ok(None));
        r.register("u", &[0x01], 8, vec![0xf6], HeldBudget::UNBOUNDED)
            .unwrap();
        assert_eq!(r.whereis("u", &[0x01]), Ok(Some(8)));
    }

    #[test]
    fn a_duplicate_key_keeps_every_entry_in_order() {
        let r = Registries::default();
        r.create("d", Keys::Duplicate).unwrap();
        for pid in [3, 1, 2] {
            r.register("d", &[0x01], pid, vec![pid as u8], HeldBudget::UNBOUNDED)
                .unwrap();
        }
        assert_eq!(r.pids("d", &[0x01]), Ok(vec![3, 1, 2]));
        assert_eq!(
            r.whereis("d", &[0x01]),
            Err(RegistryError::NotUnique("d".into()))
        );
        r.unregister("d", &[0x01], 1).unwrap();
        assert_eq!(r.lookup("d", &[0x01]), Ok(vec![(3, vec![3]), (2, vec![2])]));
        assert_eq!(
            r.lookup("nope", &[0x01]),
            Err(RegistryError::UnknownRegistry("nope".into()))
        );
    }
}
