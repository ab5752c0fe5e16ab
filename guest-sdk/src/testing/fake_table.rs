//! The `table` interface, faked for native unit tests: one thread's tables, kept in a small
//! model. Keys are ordered by their CBOR bytes here, not by the host's term order, so a
//! unit test of an ordered set's order belongs with the host.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::bindings::otter::genserver::table::{
    Access, Bound, KeyMatch, Kind, Page, TableError, TableOptions,
};
use crate::types::Pid;

struct FakeTable {
    kind: Kind,
    access: Access,
    owner: Pid,
    heir: Option<(Pid, Vec<u8>)>,
    objects: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
}

thread_local! {
    static TABLES: RefCell<BTreeMap<String, FakeTable>> = RefCell::default();
}

/// Forget every table.
pub(crate) fn reset() {
    TABLES.with(|t| t.borrow_mut().clear());
}

fn me() -> Pid {
    super::fake::with(|f| f.self_pid)
}

fn with_table<T>(
    name: &str,
    write: bool,
    f: impl FnOnce(&mut FakeTable) -> Result<T, TableError>,
) -> Result<T, TableError> {
    let me = me();
    TABLES.with(|t| {
        let mut tables = t.borrow_mut();
        let table = tables.get_mut(name).ok_or(TableError::NoTable)?;
        let allowed = table.owner == me
            || match table.access {
                Access::Public => true,
                Access::Protected => !write,
                Access::Private => false,
            };
        if !allowed {
            return Err(TableError::Access);
        }
        f(table)
    })
}

pub(crate) fn new(name: &str, options: &TableOptions) -> Result<(), TableError> {
    let owner = me();
    TABLES.with(|t| {
        let mut tables = t.borrow_mut();
        if tables.contains_key(name) {
            return Err(TableError::AlreadyExists);
        }
        tables.insert(
            name.to_owned(),
            FakeTable {
                kind: options.kind,
                access: options.access,
                owner,
                heir: options.heir.clone(),
                objects: BTreeMap::new(),
            },
        );
        Ok(())
    })
}

pub(crate) fn insert(table: &str, objects: &[(Vec<u8>, Vec<u8>)]) -> Result<(), TableError> {
    with_table(table, true, |t| {
        for (k, v) in objects {
            let values = t.objects.entry(k.clone()).or_default();
            match t.kind {
                Kind::Set | Kind::OrderedSet => *values = vec![v.clone()],
                Kind::Bag if values.contains(v) => {}
                Kind::Bag | Kind::DuplicateBag => values.push(v.clone()),
            }
        }
        Ok(())
    })
}

pub(crate) fn insert_new(table: &str, objects: &[(Vec<u8>, Vec<u8>)]) -> Result<bool, TableError> {
    let taken = with_table(table, true, |t| {
        Ok(objects.iter().any(|(k, _)| t.objects.contains_key(k)))
    })?;
    if taken {
        return Ok(false);
    }
    insert(table, objects).map(|()| true)
}

pub(crate) fn lookup(table: &str, key: &[u8]) -> Result<Vec<Vec<u8>>, TableError> {
    with_table(table, false, |t| {
        Ok(t.objects.get(key).cloned().unwrap_or_default())
    })
}

pub(crate) fn member(table: &str, key: &[u8]) -> Result<bool, TableError> {
    with_table(table, false, |t| Ok(t.objects.contains_key(key)))
}

pub(crate) fn delete(table: &str, key: &[u8]) -> Result<(), TableError> {
    with_table(table, true, |t| {
        t.objects.remove(key);
        Ok(())
    })
}

pub(crate) fn delete_object(table: &str, key: &[u8], value: &[u8]) -> Result<(), TableError> {
    with_table(table, true, |t| {
        if let Some(values) = t.objects.get_mut(key) {
            values.retain(|v| v != value);
            if values.is_empty() {
                t.objects.remove(key);
            }
        }
        Ok(())
    })
}

pub(crate) fn update_counter(
    table: &str,
    key: &[u8],
    incr: i64,
    default: Option<i64>,
) -> Result<i64, TableError> {
    with_table(table, true, |t| {
        let start = match t.objects.get(key).and_then(|v| v.first()) {
            Some(v) => crate::decode::<i64>(v)
                .map_err(|_| TableError::Badarg("the value is not an integer".to_owned()))?,
            None => default.ok_or_else(|| TableError::Badarg("no such key".to_owned()))?,
        };
        let n = start
            .checked_add(incr)
            .ok_or_else(|| TableError::Badarg("the counter overflows".to_owned()))?;
        t.objects.insert(key.to_vec(), vec![crate::encode(&n)]);
        Ok(n)
    })
}

pub(crate) fn select(
    table: &str,
    matching: &KeyMatch,
    after: Option<&[u8]>,
    _limit: u32,
) -> Result<Page, TableError> {
    fn within(b: &Bound, k: &[u8], low: bool) -> bool {
        match b {
            Bound::Unbounded => true,
            Bound::Included(t) => {
                if low {
                    k >= &t[..]
                } else {
                    k <= &t[..]
                }
            }
            Bound::Excluded(t) => {
                if low {
                    k > &t[..]
                } else {
                    k < &t[..]
                }
            }
        }
    }
    with_table(table, false, |t| {
        let objects = t
            .objects
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
            .filter(|(k, _)| match matching {
                KeyMatch::All => true,
                KeyMatch::Prefix(_) => true,
                KeyMatch::Range((from, to)) => within(from, k, true) && within(to, k, false),
            })
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect();
        Ok(Page {
            objects,
            more: None,
        })
    })
}

pub(crate) fn size(table: &str) -> Result<u64, TableError> {
    with_table(table, false, |t| {
        Ok(t.objects.values().map(|v| v.len() as u64).sum())
    })
}

pub(crate) fn owner(table: &str) -> Result<Pid, TableError> {
    TABLES.with(|t| {
        t.borrow()
            .get(table)
            .map(|t| t.owner)
            .ok_or(TableError::NoTable)
    })
}

pub(crate) fn delete_table(table: &str) -> Result<(), TableError> {
    let me = me();
    TABLES.with(|t| {
        let mut tables = t.borrow_mut();
        match tables.get(table) {
            None => Err(TableError::NoTable),
            Some(t) if t.owner != me => Err(TableError::NotOwner),
            Some(_) => {
                tables.remove(table);
                Ok(())
            }
        }
    })
}

pub(crate) fn give_away(table: &str, to: Pid, _data: &[u8]) -> Result<(), TableError> {
    let me = me();
    TABLES.with(|t| {
        let mut tables = t.borrow_mut();
        let t = tables.get_mut(table).ok_or(TableError::NoTable)?;
        if t.owner != me {
            return Err(TableError::NotOwner);
        }
        t.owner = to;
        Ok(())
    })
}

pub(crate) fn set_heir(table: &str, heir: Option<(&Pid, &[u8])>) -> Result<(), TableError> {
    let me = me();
    TABLES.with(|t| {
        let mut tables = t.borrow_mut();
        let t = tables.get_mut(table).ok_or(TableError::NoTable)?;
        if t.owner != me {
            return Err(TableError::NotOwner);
        }
        t.heir = heir.map(|(p, d)| (*p, d.to_vec()));
        Ok(())
    })
}
