//! `otter:genserver/table`: shared tables (Erlang's ETS). Reads go straight to the table,
//! from whichever process asks; the node's `table` module holds the tables and their bounds.

use std::ops::Bound;

use crate::bindings::otter::genserver::table::{
    Access as WitAccess, Bound as WitBound, Host, KeyMatch as WitKeyMatch, Kind as WitKind, Page,
    TableError as WitTableError, TableOptions,
};
use crate::bindings::otter::genserver::types::{Pid, Term};
use crate::host::ProcessCtx;
use crate::table::{Access, KeyMatch, Kind, TableError};

fn wit_error(e: TableError) -> WitTableError {
    match e {
        TableError::NoTable => WitTableError::NoTable,
        TableError::Access => WitTableError::Access,
        TableError::AlreadyExists => WitTableError::AlreadyExists,
        TableError::NotOwner => WitTableError::NotOwner,
        TableError::Badarg(m) => WitTableError::Badarg(m),
        TableError::SystemLimit(m) => WitTableError::SystemLimit(m),
    }
}

fn bound(b: WitBound) -> Bound<Term> {
    match b {
        WitBound::Unbounded => Bound::Unbounded,
        WitBound::Included(t) => Bound::Included(t),
        WitBound::Excluded(t) => Bound::Excluded(t),
    }
}

type Answer<T> = wasmtime::Result<Result<T, WitTableError>>;

/// Every table error is the guest's to handle: none ends the process.
fn answer<T>(r: Result<T, TableError>) -> Answer<T> {
    Ok(r.map_err(wit_error))
}

impl ProcessCtx {
    fn insert_objects(
        &mut self,
        table: &str,
        objects: Vec<(Term, Term)>,
        only_new: bool,
    ) -> Result<bool, TableError> {
        let tables = &self.node.tables;
        let t = tables.writable(self.pid, table)?;
        crate::table::check_insert_len(objects.len())?;
        let objects = tables.objects(&t, objects)?;
        tables.insert(&t, objects, only_new)
    }
}

impl Host for ProcessCtx {
    fn new(&mut self, name: String, options: TableOptions) -> Answer<()> {
        let kind = match options.kind {
            WitKind::Set => Kind::Set,
            WitKind::OrderedSet => Kind::OrderedSet,
            WitKind::Bag => Kind::Bag,
            WitKind::DuplicateBag => Kind::DuplicateBag,
        };
        let access = match options.access {
            WitAccess::Public => Access::Public,
            WitAccess::Protected => Access::Protected,
            WitAccess::Private => Access::Private,
        };
        answer(
            self.node
                .tables
                .create(self.pid, &name, kind, access, options.heir),
        )
    }

    fn insert(&mut self, table: String, objects: Vec<(Term, Term)>) -> Answer<()> {
        answer(self.insert_objects(&table, objects, false).map(drop))
    }

    fn insert_new(&mut self, table: String, objects: Vec<(Term, Term)>) -> Answer<bool> {
        answer(self.insert_objects(&table, objects, true))
    }

    fn lookup(&mut self, table: String, key: Term) -> Answer<Vec<Term>> {
        let tables = &self.node.tables;
        // The key is ordered before any lock is taken.
        answer(
            tables
                .key(&key)
                .and_then(|sort| tables.read(self.pid, &table, |t| t.lookup(&sort))),
        )
    }

    fn member(&mut self, table: String, key: Term) -> Answer<bool> {
        let tables = &self.node.tables;
        answer(
            tables
                .key(&key)
                .and_then(|sort| tables.read(self.pid, &table, |t| t.member(&sort))),
        )
    }

    fn delete(&mut self, table: String, key: Term) -> Answer<()> {
        let tables = &self.node.tables;
        answer(tables.writable(self.pid, &table).and_then(|t| {
            tables.delete(&t, &tables.key(&key)?);
            Ok(())
        }))
    }

    fn delete_object(&mut self, table: String, key: Term, value: Term) -> Answer<()> {
        let tables = &self.node.tables;
        answer(tables.writable(self.pid, &table).and_then(|t| {
            let value_sort = tables.value_key(&value)?;
            tables.delete_object(&t, &tables.key(&key)?, &value_sort);
            Ok(())
        }))
    }

    fn update_counter(
        &mut self,
        table: String,
        key: Term,
        incr: i64,
        default: Option<i64>,
    ) -> Answer<i64> {
        let tables = &self.node.tables;
        answer(
            tables
                .writable(self.pid, &table)
                .and_then(|t| tables.update_counter(&t, key, incr, default)),
        )
    }

    fn select(
        &mut self,
        table: String,
        matching: WitKeyMatch,
        after: Option<Term>,
        limit: u32,
    ) -> Answer<Page> {
        let tables = &self.node.tables;
        let matching = match matching {
            WitKeyMatch::All => KeyMatch::All,
            WitKeyMatch::Prefix(p) => KeyMatch::Prefix(p),
            WitKeyMatch::Range((from, to)) => KeyMatch::Range(bound(from), bound(to)),
        };
        answer(tables.readable(self.pid, &table).and_then(|t| {
            let (objects, more) = tables.select(&t, matching, after, limit)?;
            Ok(Page { objects, more })
        }))
    }

    fn size(&mut self, table: String) -> Answer<u64> {
        // As `ets:info(T, size)`, which any process may ask of a private table too.
        answer(
            self.node
                .tables
                .get(&table)
                .and_then(|t| t.size())
                .map(|n| n as u64),
        )
    }

    fn owner(&mut self, table: String) -> Answer<Pid> {
        answer(self.node.tables.get(&table).map(|t| t.owner()))
    }

    fn delete_table(&mut self, table: String) -> Answer<()> {
        answer(self.node.tables.delete_table(self.pid, &table))
    }

    fn give_away(&mut self, table: String, to: Pid, data: Term) -> Answer<()> {
        let node = &self.node;
        let given = node
            .tables
            .give_away(self.pid, &table, to, data, |p| node.entry(p).is_some());
        answer(given.map(|(to, msg)| {
            if let Some(entry) = node.entry(to) {
                let _ = entry
                    .mailbox
                    .send(crate::mailbox::Message::Info(crate::term::queued(msg)));
            }
        }))
    }

    fn set_heir(&mut self, table: String, heir: Option<(Pid, Term)>) -> Answer<()> {
        answer(self.node.tables.set_heir(self.pid, &table, heir))
    }
}
