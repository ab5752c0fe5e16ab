//! Shared tables, Erlang's ETS: the node's registry of named tables that processes create,
//! own, and read from anywhere without a message to the owner.
//!
//! ## Concurrency
//!
//! Each table's objects sit behind one `RwLock`: any number of processes read at once, a
//! write waits for the readers in progress and holds back new ones, so a steady stream of
//! readers does not starve the writer. Key orders (sort keys) are computed before the lock is
//! taken, so a lock is held only for the map operation itself.
//!
//! ## Bounds
//!
//! A table lives on the host, outside any process's memory limit, so the node bounds them:
//! tables per process and per node, bytes in all tables together
//! ([`NodeConfig::max_table_bytes`](crate::NodeConfig::max_table_bytes)), each key and value
//! at most the node's maximum message size, one bag key's objects too (so a lookup's answer
//! fits in a message), and a `select` page.

mod counter;
mod objects;
mod order;

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use objects::{Object, Objects};
pub(crate) use order::sort_key;

use crate::Pid;
use crate::term::{Term, check_well_formed};

/// How a table holds objects (ETS's table types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Set,
    OrderedSet,
    Bag,
    DuplicateBag,
}

/// Who may read and write a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Public,
    Protected,
    Private,
}

/// Which keys a `select` wants.
pub(crate) enum KeyMatch {
    All,
    Prefix(Term),
    Range(Bound<Term>, Bound<Term>),
}

/// Why a table operation failed: Erlang's `badarg` cases, told apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TableError {
    #[error("no table with this name")]
    NoTable,
    #[error("this process may not do this to the table")]
    Access,
    #[error("a table with this name exists")]
    AlreadyExists,
    #[error("only the owner may do this")]
    NotOwner,
    #[error("badarg: {0}")]
    Badarg(String),
    #[error("system_limit: {0}")]
    SystemLimit(String),
}

/// The most objects one `select` page holds.
pub(crate) const MAX_PAGE: usize = 10_000;

/// The most objects one `insert` carries, so a table's write lock is held for a bounded
/// time (as long as a `select` page takes to read).
pub(crate) const MAX_INSERT: usize = MAX_PAGE;

/// How many times the node's maximum message size a sort key may take (a number's takes 18
/// bytes where its term may take one): a longer one is refused before it is all built.
const SORT_KEY_FACTOR: usize = 4;

/// The longest table name, in bytes (Erlang's atoms stop at 255 characters).
const MAX_NAME: usize = 255;

/// What a table's heir receives, beside the table name and the old owner.
const TRANSFER_OVERHEAD: usize = 64;

/// The node's bounds on tables.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableLimits {
    pub(crate) tables: usize,
    pub(crate) tables_per_process: usize,
    pub(crate) bytes: usize,
    pub(crate) term: usize,
}

/// One table.
pub(crate) struct Table {
    kind: Kind,
    access: Access,
    owner: AtomicU64,
    heir: Mutex<Option<(Pid, Term)>>,
    objects: RwLock<Objects>,
}

/// The node's tables.
pub(crate) struct Tables {
    limits: TableLimits,
    index: RwLock<Index>,
    /// What all tables' objects and heir data cost, against `limits.bytes`.
    bytes: AtomicUsize,
}

#[derive(Default)]
struct Index {
    by_name: HashMap<String, Arc<Table>>,
    /// Each owner's tables, so an exit finds them without a scan.
    owned: HashMap<Pid, Vec<String>>,
}

/// A page of objects, and the key the next page starts after (none at the end).
pub(crate) type Selection = (Vec<(Term, Term)>, Option<Term>);

/// An `ETS-TRANSFER` message to deliver: the new owner and the message.
pub(crate) type Transfer = (Pid, Term);

impl Tables {
    pub(crate) fn new(limits: TableLimits) -> Self {
        Tables {
            limits,
            index: RwLock::default(),
            bytes: AtomicUsize::new(0),
        }
    }

    /// Create a table owned by `owner`.
    pub(crate) fn create(
        &self,
        owner: Pid,
        name: &str,
        kind: Kind,
        access: Access,
        heir: Option<(Pid, Term)>,
    ) -> Result<(), TableError> {
        if name.len() > MAX_NAME {
            return Err(TableError::Badarg(format!(
                "a table name over {MAX_NAME} bytes"
            )));
        }
        if let Some((_, data)) = &heir {
            self.check_heir_data(name, data)?;
        }
        let mut index = write(&self.index);
        if index.by_name.contains_key(name) {
            return Err(TableError::AlreadyExists);
        }
        if index.by_name.len() >= self.limits.tables {
            return Err(TableError::SystemLimit(format!(
                "the node holds {} tables",
                self.limits.tables
            )));
        }
        let mine = index.owned.entry(owner).or_default();
        if mine.len() >= self.limits.tables_per_process {
            return Err(TableError::SystemLimit(format!(
                "this process owns {} tables",
                self.limits.tables_per_process
            )));
        }
        let heir = heir.filter(|(p, _)| *p != owner);
        self.reserve(heir_cost(heir.as_ref()))?;
        mine.push(name.to_owned());
        let table = Table {
            kind,
            access,
            owner: AtomicU64::new(owner),
            heir: Mutex::new(heir),
            objects: RwLock::new(Objects::new(kind)),
        };
        index.by_name.insert(name.to_owned(), Arc::new(table));
        Ok(())
    }

    /// The table named `name`.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<Table>, TableError> {
        read(&self.index)
            .by_name
            .get(name)
            .cloned()
            .ok_or(TableError::NoTable)
    }

    /// A table `caller` may read.
    pub(crate) fn readable(&self, caller: Pid, name: &str) -> Result<Arc<Table>, TableError> {
        self.read(caller, name, |t| Ok(Arc::clone(t)))
    }

    /// Run `f` on a table `caller` may read. The index's lock is let go before `f` waits
    /// for the table's: a reader waiting behind a long write to one table must not hold
    /// back, through a waiting writer of the index, the readers of every other table. A
    /// table deleted meanwhile says so under its own lock (`Table::lookup`, ...).
    pub(crate) fn read<T>(
        &self,
        caller: Pid,
        name: &str,
        f: impl FnOnce(&Arc<Table>) -> Result<T, TableError>,
    ) -> Result<T, TableError> {
        let table = self.get(name)?;
        if table.access == Access::Private && table.owner() != caller {
            return Err(TableError::Access);
        }
        f(&table)
    }

    /// A table `caller` may write.
    pub(crate) fn writable(&self, caller: Pid, name: &str) -> Result<Arc<Table>, TableError> {
        let table = self.get(name)?;
        if table.access != Access::Public && table.owner() != caller {
            return Err(TableError::Access);
        }
        Ok(table)
    }

    /// Check a key or value a guest hands in.
    pub(crate) fn check_term(&self, what: &str, term: &[u8]) -> Result<(), TableError> {
        crate::limits::check_term(what, term.len(), self.limits.term)
            .map_err(TableError::Badarg)?;
        check_well_formed(term).map_err(|e| TableError::Badarg(format!("{what}: {e}")))
    }

    /// An object ready for `table`: checked, its key (and a bag's value) ordered.
    pub(crate) fn object(
        &self,
        table: &Table,
        key: Term,
        value: Term,
    ) -> Result<Object, TableError> {
        self.check_term("value", &value)?;
        let sort = self.key(&key)?;
        let value_sort = match table.kind {
            Kind::Bag | Kind::DuplicateBag => self.value_key(&value)?,
            _ => Vec::new(),
        };
        Ok(Object {
            sort,
            key,
            value,
            value_sort,
            distinct: table.kind == Kind::Bag,
        })
    }

    /// The objects of an insert into `table`, made one by one until what they would cost
    /// passes what the node's table budget has left: their sort keys can be many times
    /// their terms (18 bytes for a one-byte integer), and ten thousand of them, each up to
    /// [`SORT_KEY_FACTOR`] times the largest term, must not all be built on the host only
    /// for the insert to be refused.
    pub(crate) fn objects(
        &self,
        table: &Table,
        pairs: Vec<(Term, Term)>,
    ) -> Result<Vec<Object>, TableError> {
        let room = self
            .limits
            .bytes
            .saturating_sub(self.bytes.load(Ordering::Acquire));
        let mut cost = 0usize;
        let mut objects = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let object = self.object(table, key, value)?;
            cost = cost.saturating_add(object.cost());
            if cost > room {
                return Err(self.over_budget());
            }
            objects.push(object);
        }
        Ok(objects)
    }

    /// A key's sort key, checked.
    pub(crate) fn key(&self, key: &[u8]) -> Result<Vec<u8>, TableError> {
        crate::limits::check_term("key", key.len(), self.limits.term)
            .map_err(TableError::Badarg)?;
        sort_key(key, self.sort_key_bound()).map_err(|e| TableError::Badarg(format!("key: {e}")))
    }

    /// A value's sort key (a bag's objects are told apart by it), checked.
    pub(crate) fn value_key(&self, value: &[u8]) -> Result<Vec<u8>, TableError> {
        self.check_term("value", value)?;
        sort_key(value, self.sort_key_bound())
            .map_err(|e| TableError::Badarg(format!("value: {e}")))
    }

    fn sort_key_bound(&self) -> usize {
        self.limits.term.saturating_mul(SORT_KEY_FACTOR)
    }

    /// Insert objects into a table, all or none; with `only_new`, none if a key is there
    /// (returns whether they went in).
    pub(crate) fn insert(
        &self,
        table: &Table,
        objects: Vec<Object>,
        only_new: bool,
    ) -> Result<bool, TableError> {
        check_insert_len(objects.len())?;
        let cost = objects
            .iter()
            .try_fold(0usize, |sum, o| sum.checked_add(o.cost()))
            .ok_or_else(|| TableError::SystemLimit("an insert's size overflows".to_owned()))?;
        let mut held = write(&table.objects);
        if held.is_deleted() {
            return Err(TableError::NoTable);
        }
        if only_new && held.any_key(&objects) {
            return Ok(false);
        }
        held.check_bag_keys(&objects, self.limits.term)?;
        self.reserve(cost)?;
        let freed = held.insert(objects);
        drop(held);
        self.release(freed);
        Ok(true)
    }

    /// Delete a key's objects.
    pub(crate) fn delete(&self, table: &Table, sort: &[u8]) {
        let freed = write(&table.objects).delete(sort);
        self.release(freed);
    }

    /// Delete a key's objects equal to a value (ordered by [`Tables::value_key`]). A set's
    /// value is ordered without the write lock, which holds back every reader of the table,
    /// and within the bound the sought value was ordered in: the bound counts what building
    /// the key costs, which for text and maps is more than its length.
    pub(crate) fn delete_object(&self, table: &Table, sort: &[u8], value_sort: &[u8]) {
        let bound = self.sort_key_bound();
        let known = match table.kind {
            Kind::Set | Kind::OrderedSet => {
                let Some(value) = read(&table.objects).value(sort).cloned() else {
                    return;
                };
                let equal = sort_key(&value, bound).is_ok_and(|v| v == value_sort);
                Some((value, equal))
            }
            Kind::Bag | Kind::DuplicateBag => None,
        };
        let known = known
            .as_ref()
            .map(|(value, equal)| (value.as_slice(), *equal));
        let freed = write(&table.objects).delete_object(sort, value_sort, known, bound);
        self.release(freed);
    }

    /// ETS's `update_counter` with a default: add `incr` to the integer under the key.
    pub(crate) fn update_counter(
        &self,
        table: &Table,
        key: Term,
        incr: i64,
        default: Option<i64>,
    ) -> Result<i64, TableError> {
        if !matches!(table.kind, Kind::Set | Kind::OrderedSet) {
            return Err(TableError::Badarg("update_counter on a bag".to_owned()));
        }
        let sort = self.key(&key)?;
        let mut held = write(&table.objects);
        if held.is_deleted() {
            return Err(TableError::NoTable);
        }
        if let Some(value) = held.value(&sort) {
            let n = counter::decode(value)
                .ok_or_else(|| TableError::Badarg("the value is not an integer".to_owned()))?;
            let n = n
                .checked_add(incr)
                .ok_or_else(|| TableError::Badarg("the counter overflows".to_owned()))?;
            let new = counter::encode(n);
            let (grow, shrink) = (
                new.len().saturating_sub(value.len()),
                value.len().saturating_sub(new.len()),
            );
            self.reserve(grow)?;
            held.replace_value(&sort, new);
            self.release(shrink);
            return Ok(n);
        }
        let Some(start) = default else {
            return Err(TableError::Badarg("no such key and no default".to_owned()));
        };
        let n = start
            .checked_add(incr)
            .ok_or_else(|| TableError::Badarg("the counter overflows".to_owned()))?;
        let object = Object {
            sort,
            key,
            value: counter::encode(n),
            value_sort: Vec::new(),
            distinct: false,
        };
        self.reserve(object.cost())?;
        let freed = held.insert(vec![object]);
        drop(held);
        self.release(freed);
        Ok(n)
    }

    /// A page of `select`.
    pub(crate) fn select(
        &self,
        table: &Table,
        matching: KeyMatch,
        after: Option<Term>,
        limit: u32,
    ) -> Result<Selection, TableError> {
        let (mut from, to) = match matching {
            KeyMatch::All => (Bound::Unbounded, Bound::Unbounded),
            KeyMatch::Prefix(p) => {
                let p = order::prefix_key(self.key(&p)?).ok_or_else(|| {
                    TableError::Badarg("a prefix must be text, bytes or an array".to_owned())
                })?;
                let end = order::prefix_end(&p).map_or(Bound::Unbounded, Bound::Excluded);
                (Bound::Included(p), end)
            }
            KeyMatch::Range(from, to) => (self.bound(from)?, self.bound(to)?),
        };
        if let Some(after) = after {
            let after = self.key(&after)?;
            let later = match &from {
                Bound::Included(f) | Bound::Excluded(f) => after >= *f,
                Bound::Unbounded => true,
            };
            if later {
                from = Bound::Excluded(after);
            }
        }
        if let (Bound::Included(f) | Bound::Excluded(f), Bound::Included(t) | Bound::Excluded(t)) =
            (&from, &to)
            && (f > t
                || (f == t && !matches!((&from, &to), (Bound::Included(_), Bound::Included(_)))))
        {
            // An empty range (BTreeMap's `range` panics on one that ends before it starts).
            return Ok((Vec::new(), None));
        }
        let limit = usize::try_from(limit)
            .unwrap_or(MAX_PAGE)
            .clamp(1, MAX_PAGE);
        let held = read(&table.objects);
        if held.is_deleted() {
            return Err(TableError::NoTable);
        }
        Ok(held.select((from, to), limit, self.limits.term))
    }

    fn bound(&self, bound: Bound<Term>) -> Result<Bound<Vec<u8>>, TableError> {
        Ok(match bound {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(t) => Bound::Included(self.key(&t)?),
            Bound::Excluded(t) => Bound::Excluded(self.key(&t)?),
        })
    }

    /// Delete a table (its owner asks).
    pub(crate) fn delete_table(&self, caller: Pid, name: &str) -> Result<(), TableError> {
        let mut index = write(&self.index);
        let table = index.by_name.get(name).ok_or(TableError::NoTable)?;
        if table.owner() != caller {
            return Err(TableError::NotOwner);
        }
        let Some(table) = index.by_name.remove(name) else {
            return Err(TableError::NoTable);
        };
        disown(&mut index, caller, name);
        drop(index);
        self.release(write(&table.objects).close());
        self.release(heir_cost(lock(&table.heir).take().as_ref()));
        Ok(())
    }

    /// Give a table to `to`, which `alive` says is a living process; returns the
    /// `ETS-TRANSFER` message to send it.
    pub(crate) fn give_away(
        &self,
        caller: Pid,
        name: &str,
        to: Pid,
        data: Term,
        alive: impl Fn(Pid) -> bool,
    ) -> Result<Transfer, TableError> {
        self.check_heir_data(name, &data)?;
        let mut index = write(&self.index);
        let table = index.by_name.get(name).ok_or(TableError::NoTable)?.clone();
        if table.owner() != caller {
            return Err(TableError::NotOwner);
        }
        if to == caller || !alive(to) {
            return Err(TableError::Badarg(
                "give_away needs a living process other than the owner".to_owned(),
            ));
        }
        // As `create` holds a process to its count: tables given to it count too.
        if index.owned.get(&to).map_or(0, Vec::len) >= self.limits.tables_per_process {
            return Err(TableError::SystemLimit(format!(
                "the receiver owns {} tables",
                self.limits.tables_per_process
            )));
        }
        table.owner.store(to, Ordering::Release);
        disown(&mut index, caller, name);
        index.owned.entry(to).or_default().push(name.to_owned());
        Ok((to, transfer_message(name, caller, &data)))
    }

    /// Set or clear a table's heir (its owner asks).
    pub(crate) fn set_heir(
        &self,
        caller: Pid,
        name: &str,
        heir: Option<(Pid, Term)>,
    ) -> Result<(), TableError> {
        if let Some((_, data)) = &heir {
            self.check_heir_data(name, data)?;
        }
        // Under the index's lock, so that a table deleted meanwhile gets no heir data it
        // would never give back.
        let index = read(&self.index);
        let table = index.by_name.get(name).ok_or(TableError::NoTable)?;
        if table.owner() != caller {
            return Err(TableError::NotOwner);
        }
        let heir = heir.filter(|(p, _)| *p != caller);
        // Only the difference: replacing heir data needs no room for both at once.
        let mut held = lock(&table.heir);
        let (old, new) = (heir_cost(held.as_ref()), heir_cost(heir.as_ref()));
        if new > old {
            self.reserve(new - old)?;
        } else {
            self.release(old - new);
        }
        *held = heir;
        Ok(())
    }

    /// `owner` exited: each of its tables goes to its heir if that is alive (by `alive`,
    /// asked under the index's lock, so an heir exiting meanwhile finds the table and passes
    /// it on or deletes it), else is deleted. Returns the messages to send the heirs.
    ///
    /// The deleted tables are closed after the index's lock is let go: closing one waits for
    /// its readers and writers, which must not hold back every other table's.
    pub(crate) fn owner_exited(&self, owner: Pid, alive: impl Fn(Pid) -> bool) -> Vec<Transfer> {
        if !read(&self.index).owned.contains_key(&owner) {
            return Vec::new();
        }
        let mut index = write(&self.index);
        let names = index.owned.remove(&owner).unwrap_or_default();
        let mut transfers = Vec::new();
        let mut deleted = Vec::new();
        for name in names {
            let Some(table) = index.by_name.get(&name).cloned() else {
                continue;
            };
            let heir = lock(&table.heir).take();
            // Stored no longer: sent with the table, or dropped with it.
            self.release(heir_cost(heir.as_ref()));
            match heir {
                Some((heir, data)) if heir != owner && alive(heir) => {
                    table.owner.store(heir, Ordering::Release);
                    index.owned.entry(heir).or_default().push(name.clone());
                    transfers.push((heir, transfer_message(&name, owner, &data)));
                }
                _ => {
                    index.by_name.remove(&name);
                    deleted.push(table);
                }
            }
        }
        drop(index);
        for table in deleted {
            self.release(write(&table.objects).close());
        }
        transfers
    }

    /// Heir data must leave room in its message for the table's name and the old owner.
    fn check_heir_data(&self, name: &str, data: &[u8]) -> Result<(), TableError> {
        let room = self
            .limits
            .term
            .saturating_sub(name.len() + TRANSFER_OVERHEAD);
        crate::limits::check_term("heir data", data.len(), room).map_err(TableError::Badarg)?;
        check_well_formed(data).map_err(|e| TableError::Badarg(format!("heir data: {e}")))
    }

    /// Take `cost` from the node's table budget, or refuse.
    fn reserve(&self, cost: usize) -> Result<(), TableError> {
        let max = self.limits.bytes;
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(cost).filter(|&n| n <= max)
            })
            .map(drop)
            .map_err(|_| self.over_budget())
    }

    fn over_budget(&self) -> TableError {
        TableError::SystemLimit(format!(
            "the node's tables would take over {} bytes",
            self.limits.bytes
        ))
    }

    /// Give `cost` back to the node's table budget (never below nothing, should the
    /// bookkeeping ever be wrong).
    fn release(&self, cost: usize) {
        // The closure always returns `Some`: the update cannot fail.
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(cost))
            });
    }
}

impl Table {
    pub(crate) fn owner(&self) -> Pid {
        self.owner.load(Ordering::Acquire)
    }

    pub(crate) fn lookup(&self, sort: &[u8]) -> Result<Vec<Term>, TableError> {
        self.present().map(|held| held.lookup(sort))
    }

    pub(crate) fn member(&self, sort: &[u8]) -> Result<bool, TableError> {
        self.present().map(|held| held.contains(sort))
    }

    pub(crate) fn size(&self) -> Result<usize, TableError> {
        self.present().map(|held| held.len())
    }

    /// The objects, read-locked, unless the table was deleted.
    fn present(&self) -> Result<RwLockReadGuard<'_, Objects>, TableError> {
        let held = read(&self.objects);
        if held.is_deleted() {
            return Err(TableError::NoTable);
        }
        Ok(held)
    }
}

// The locks below guard bookkeeping that every operation leaves whole before anything can
// panic, so a panic elsewhere while one is held (a bug) does not make the data unusable: a
// poisoned lock is taken as it is rather than turned into a panic in every later caller.

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Refuse an insert of more objects than [`MAX_INSERT`] (before their keys are ordered).
pub(crate) fn check_insert_len(n: usize) -> Result<(), TableError> {
    if n > MAX_INSERT {
        return Err(TableError::SystemLimit(format!(
            "an insert of over {MAX_INSERT} objects"
        )));
    }
    Ok(())
}

fn disown(index: &mut Index, owner: Pid, name: &str) {
    if let Some(names) = index.owned.get_mut(&owner) {
        names.retain(|n| n != name);
        if names.is_empty() {
            index.owned.remove(&owner);
        }
    }
}

/// What a table's heir data takes from the node's table budget while the table holds it.
fn heir_cost(heir: Option<&(Pid, Term)>) -> usize {
    heir.map_or(0, |(_, data)| data.len())
}

/// `{"ETS-TRANSFER": {"table": name, "from": pid, "data": data}}`, with `data` as it came.
fn transfer_message(name: &str, from: Pid, data: &[u8]) -> Term {
    let mut out = Vec::with_capacity(data.len() + name.len() + TRANSFER_OVERHEAD);
    counter::head(&mut out, 5, 1);
    counter::text(&mut out, "ETS-TRANSFER");
    counter::head(&mut out, 5, 3);
    counter::text(&mut out, "table");
    counter::text(&mut out, name);
    counter::text(&mut out, "from");
    counter::head(&mut out, 0, from);
    counter::text(&mut out, "data");
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests;
