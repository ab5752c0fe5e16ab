//! Shared tables, Erlang's ETS: a process creates a named table of serde keys and values;
//! any process reads it directly, without a message to the owner.
//!
//! ```no_run
//! use otter_guest::table::{Access, Kind, Options, Table};
//!
//! // :ets.new(:kv, [:named_table, :set, :protected, read_concurrency: true])
//! let kv: Table<String, u64> =
//!     Table::new("kv", Options::new(Kind::Set).access(Access::Protected).read_concurrency())
//!         .expect("a fresh name");
//! // :ets.insert(:kv, {"a", 1})
//! kv.insert(&"a".to_owned(), &1).unwrap();
//!
//! // In any other process: :ets.lookup(:kv, "a")
//! let kv: Table<String, u64> = Table::named("kv");
//! assert_eq!(kv.get(&"a".to_owned()).unwrap(), Some(1));
//! ```
//!
//! The owner writes; other processes write only a [`Access::Public`] table and read only a
//! public or [`Access::Protected`] one (the default, as in ETS). A table is deleted when its
//! owner exits, unless its heir ([`Options::heir`], [`Table::set_heir`]) is alive: the heir
//! then owns it and gets a [`Transfer`] message in `handle_info`, as
//! [`Table::give_away`]'s recipient does.
//!
//! Keys compare by their decoded value in Otter's term order (numbers < `false` < `true` <
//! `null` < text < byte strings < arrays < maps), never by their CBOR bytes: in an
//! [`Kind::OrderedSet`], `-5` comes before `3` and `"b"` before `"ba"`, a tuple key sorts
//! element by element, and [`Table::select_prefix`] and [`Table::select_range`] read a slice
//! of keys in order.
//!
//! Each operation is one host call; nothing is cached in the calling process.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bindings::otter::genserver::table as wit;
use crate::imports::table as host;
use crate::types::Pid;
use crate::{decode, encode};

/// How a table holds objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// One value per key (ETS's default).
    #[default]
    Set,
    /// One value per key, keys in term order.
    OrderedSet,
    /// Any number of values per key, no two equal.
    Bag,
    /// Any number of values per key.
    DuplicateBag,
}

/// Who may read and write a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Any process reads and writes.
    Public,
    /// Any process reads, the owner writes (ETS's default).
    #[default]
    Protected,
    /// Only the owner reads and writes.
    Private,
}

/// How to create a table: ETS's options list.
#[derive(Debug, Clone, Default)]
pub struct Options {
    kind: Kind,
    access: Access,
    read_concurrency: bool,
    heir: Option<(Pid, Vec<u8>)>,
}

impl Options {
    /// A table of this kind, [`Access::Protected`], without an heir.
    pub fn new(kind: Kind) -> Self {
        Options {
            kind,
            ..Options::default()
        }
    }

    /// Who may read and write it.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// ETS's `read_concurrency: true`: accepted; every table takes concurrent reads.
    pub fn read_concurrency(mut self) -> Self {
        self.read_concurrency = true;
        self
    }

    /// ETS's `{heir, Pid, Data}`: who inherits the table when the owner exits, and the data
    /// its [`Transfer`] carries.
    pub fn heir<D: Serialize + ?Sized>(mut self, heir: Pid, data: &D) -> Self {
        self.heir = Some((heir, encode(data)));
        self
    }
}

/// Why a table operation failed (each is a `badarg` in Erlang).
#[derive(Clone, PartialEq, Eq)]
pub enum TableError {
    /// No table has this name.
    NoTable,
    /// This process may not read (a private table) or write (a protected or private one).
    Access,
    /// [`Table::new`]: a table with this name exists.
    AlreadyExists,
    /// Only the owner deletes, gives away or sets the heir of a table.
    NotOwner,
    /// The host refused an argument: an oversized term, a counter that is not an integer
    /// or overflows, a prefix that is not text, bytes or a sequence, a dead recipient.
    Badarg(String),
    /// A node bound: tables per process or node, bytes in all tables, bytes under a bag key.
    SystemLimit(String),
    /// A key or value in the table did not decode as this handle's type.
    BadTerm(String),
}

impl TableError {
    fn from_wit(e: wit::TableError) -> Self {
        match e {
            wit::TableError::NoTable => TableError::NoTable,
            wit::TableError::Access => TableError::Access,
            wit::TableError::AlreadyExists => TableError::AlreadyExists,
            wit::TableError::NotOwner => TableError::NotOwner,
            wit::TableError::Badarg(m) => TableError::Badarg(m),
            wit::TableError::SystemLimit(m) => TableError::SystemLimit(m),
        }
    }
}

// By hand, as derived but for its strings (see `otter_common::Quoted`): a derived `Debug`
// would link `Debug`'s string escaping into a server that `expect`s this error.
impl fmt::Debug for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::NoTable => f.write_str("NoTable"),
            TableError::Access => f.write_str("Access"),
            TableError::AlreadyExists => f.write_str("AlreadyExists"),
            TableError::NotOwner => f.write_str("NotOwner"),
            TableError::Badarg(m) => f
                .debug_tuple("Badarg")
                .field(&otter_common::Quoted(m))
                .finish(),
            TableError::SystemLimit(m) => f
                .debug_tuple("SystemLimit")
                .field(&otter_common::Quoted(m))
                .finish(),
            TableError::BadTerm(m) => f
                .debug_tuple("BadTerm")
                .field(&otter_common::Quoted(m))
                .finish(),
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::NoTable => write!(f, "no such table"),
            TableError::Access => write!(f, "access denied by the table's protection"),
            TableError::AlreadyExists => write!(f, "a table with this name exists"),
            TableError::NotOwner => write!(f, "only the table's owner may do this"),
            TableError::Badarg(m) => write!(f, "badarg: {m}"),
            TableError::SystemLimit(m) => write!(f, "system_limit: {m}"),
            TableError::BadTerm(m) => write!(f, "a table term did not decode: {m}"),
        }
    }
}

impl std::error::Error for TableError {}

/// The message a table's new owner receives (ETS's `{'ETS-TRANSFER', Tab, FromPid, Data}`),
/// when the old owner gave it away or exited with this process as heir.
///
/// It arrives as a plain message: make it a variant of the server's `Info` type, named
/// `"ETS-TRANSFER"`:
///
/// ```
/// use otter_guest::table::Transfer;
/// #[derive(serde::Deserialize)]
/// enum Info {
///     #[serde(rename = "ETS-TRANSFER")]
///     Transfer(Transfer<String>),
///     Tick,
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer<D> {
    /// The table's name.
    pub table: String,
    /// The previous owner.
    pub from: Pid,
    /// The heir data, or what `give_away` was given.
    pub data: D,
}

/// One page of a selection and where the next starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<K, V> {
    /// Objects in key order.
    pub objects: Vec<(K, V)>,
    /// Pass this to [`Table::select_page`] as `after` for the next page; `None` at the end.
    pub more: Option<K>,
}

/// A handle on a named table with keys `K` and values `V`. It holds only the name: cheap to
/// make in any process with [`Table::named`].
pub struct Table<K, V> {
    name: String,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Table::named(&self.name)
    }
}

impl<K, V> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Table").field(&self.name).finish()
    }
}

impl<K, V> Table<K, V> {
    /// A handle on the table named `name`, whoever owns it; nothing is checked until it is
    /// used.
    pub fn named(name: &str) -> Self {
        Table {
            name: name.to_owned(),
            types: PhantomData,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> Table<K, V> {
    /// `:ets.new(name, [:named_table | options])`: create a table owned by this process.
    ///
    /// # Errors
    /// [`TableError::AlreadyExists`]; [`TableError::SystemLimit`] past the node's bounds;
    /// [`TableError::Badarg`] for a name over 255 bytes.
    pub fn new(name: &str, options: Options) -> Result<Self, TableError> {
        let options = wit::TableOptions {
            kind: match options.kind {
                Kind::Set => wit::Kind::Set,
                Kind::OrderedSet => wit::Kind::OrderedSet,
                Kind::Bag => wit::Kind::Bag,
                Kind::DuplicateBag => wit::Kind::DuplicateBag,
            },
            access: match options.access {
                Access::Public => wit::Access::Public,
                Access::Protected => wit::Access::Protected,
                Access::Private => wit::Access::Private,
            },
            read_concurrency: options.read_concurrency,
            heir: options.heir,
        };
        host::new(name, &options).map_err(TableError::from_wit)?;
        Ok(Table::named(name))
    }

    /// `:ets.insert(tab, {key, value})`: in a set, replaces the value under `key`.
    ///
    /// # Errors
    /// [`TableError::NoTable`], [`TableError::Access`], [`TableError::SystemLimit`],
    /// [`TableError::Badarg`] for a key or value over the node's maximum message size.
    pub fn insert(&self, key: &K, value: &V) -> Result<(), TableError> {
        host::insert(&self.name, &[(encode(key), encode(value))]).map_err(TableError::from_wit)
    }

    /// `:ets.insert(tab, [objects])`: all or none.
    ///
    /// # Errors
    /// As [`Table::insert`].
    pub fn insert_many(&self, objects: &[(K, V)]) -> Result<(), TableError> {
        host::insert(&self.name, &encode_objects(objects)).map_err(TableError::from_wit)
    }

    /// `:ets.insert_new(tab, {key, value})`: false (and nothing changes) if `key` is there.
    ///
    /// # Errors
    /// As [`Table::insert`].
    pub fn insert_new(&self, key: &K, value: &V) -> Result<bool, TableError> {
        host::insert_new(&self.name, &[(encode(key), encode(value))]).map_err(TableError::from_wit)
    }

    /// `:ets.lookup(tab, key)`: the values under `key` (at most one in a set), in the order
    /// they were inserted.
    ///
    /// # Errors
    /// [`TableError::NoTable`]; [`TableError::Access`] for another's private table;
    /// [`TableError::BadTerm`] if a value is not a `V`.
    pub fn lookup(&self, key: &K) -> Result<Vec<V>, TableError> {
        host::lookup(&self.name, &encode(key))
            .map_err(TableError::from_wit)?
            .iter()
            .map(|v| decode(v).map_err(TableError::BadTerm))
            .collect()
    }

    /// The value under `key` in a set: `lookup`'s first.
    ///
    /// # Errors
    /// As [`Table::lookup`].
    pub fn get(&self, key: &K) -> Result<Option<V>, TableError> {
        let values = host::lookup(&self.name, &encode(key)).map_err(TableError::from_wit)?;
        values
            .first()
            .map(|v| decode(v).map_err(TableError::BadTerm))
            .transpose()
    }

    /// `:ets.member(tab, key)`.
    ///
    /// # Errors
    /// [`TableError::NoTable`], [`TableError::Access`].
    pub fn member(&self, key: &K) -> Result<bool, TableError> {
        host::member(&self.name, &encode(key)).map_err(TableError::from_wit)
    }

    /// `:ets.delete(tab, key)`: remove the objects under `key` (none is not an error).
    ///
    /// # Errors
    /// [`TableError::NoTable`], [`TableError::Access`].
    pub fn delete(&self, key: &K) -> Result<(), TableError> {
        host::delete(&self.name, &encode(key)).map_err(TableError::from_wit)
    }

    /// `:ets.delete_object(tab, {key, value})`: remove the objects under `key` equal to
    /// `value`.
    ///
    /// # Errors
    /// [`TableError::NoTable`], [`TableError::Access`].
    pub fn delete_object(&self, key: &K, value: &V) -> Result<(), TableError> {
        host::delete_object(&self.name, &encode(key), &encode(value)).map_err(TableError::from_wit)
    }

    /// `:ets.update_counter(tab, key, incr, {key, default})`: add `incr` to the integer
    /// under `key` atomically and return the new value; a missing key starts at `default`.
    ///
    /// # Errors
    /// [`TableError::Badarg`] if the key is missing without a default, the value is not an
    /// integer, the sum overflows an `i64`, or the table is a bag; [`TableError::Access`].
    pub fn update_counter(
        &self,
        key: &K,
        incr: i64,
        default: Option<i64>,
    ) -> Result<i64, TableError> {
        host::update_counter(&self.name, &encode(key), incr, default).map_err(TableError::from_wit)
    }

    /// Every object whose key starts with `prefix`: a string's start, or a tuple's or
    /// sequence's first elements (`("user", 7)` matches `("user", 7, "name")`), in key
    /// order. Reads the table page by page.
    ///
    /// # Errors
    /// [`TableError::Badarg`] if `prefix` is not a string, bytes or a sequence; as
    /// [`Table::lookup`].
    pub fn select_prefix<P: Serialize + ?Sized>(
        &self,
        prefix: &P,
    ) -> Result<Vec<(K, V)>, TableError> {
        self.select_all(wit::KeyMatch::Prefix(encode(prefix)))
    }

    /// Every object whose key is in `range` (term order), in key order.
    ///
    /// # Errors
    /// As [`Table::lookup`].
    pub fn select_range(&self, range: impl RangeBounds<K>) -> Result<Vec<(K, V)>, TableError> {
        self.select_all(range_match(&range))
    }

    /// `:ets.tab2list(tab)`: every object, in key order. Reads the table page by page.
    ///
    /// # Errors
    /// As [`Table::lookup`].
    pub fn to_list(&self) -> Result<Vec<(K, V)>, TableError> {
        self.select_all(wit::KeyMatch::All)
    }

    /// One page of at most `limit` objects (the host caps a page at 10,000 objects and at
    /// the node's maximum message size) with keys in `range` after `after`: ETS's
    /// `select/3` with a continuation.
    ///
    /// # Errors
    /// As [`Table::lookup`].
    pub fn select_page(
        &self,
        range: impl RangeBounds<K>,
        after: Option<&K>,
        limit: u32,
    ) -> Result<Page<K, V>, TableError> {
        let page = host::select(
            &self.name,
            &range_match(&range),
            after.map(encode).as_deref(),
            limit,
        )
        .map_err(TableError::from_wit)?;
        Ok(Page {
            objects: decode_objects(&page.objects)?,
            more: page
                .more
                .map(|k| decode(&k).map_err(TableError::BadTerm))
                .transpose()?,
        })
    }

    fn select_all(&self, matching: wit::KeyMatch) -> Result<Vec<(K, V)>, TableError> {
        let mut all = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = host::select(&self.name, &matching, after.as_deref(), u32::MAX)
                .map_err(TableError::from_wit)?;
            all.extend(decode_objects(&page.objects)?);
            match page.more {
                Some(more) => after = Some(more),
                None => return Ok(all),
            }
        }
    }

    /// `:ets.info(tab, :size)`: how many objects (any process may ask, a private table's
    /// too).
    ///
    /// # Errors
    /// [`TableError::NoTable`].
    pub fn size(&self) -> Result<u64, TableError> {
        host::size(&self.name).map_err(TableError::from_wit)
    }

    /// `:ets.info(tab, :owner)`.
    ///
    /// # Errors
    /// [`TableError::NoTable`].
    pub fn owner(&self) -> Result<Pid, TableError> {
        host::owner(&self.name).map_err(TableError::from_wit)
    }

    /// `:ets.delete(tab)`: delete the table (its owner only).
    ///
    /// # Errors
    /// [`TableError::NoTable`], [`TableError::NotOwner`].
    pub fn delete_table(self) -> Result<(), TableError> {
        host::delete_table(&self.name).map_err(TableError::from_wit)
    }

    /// `:ets.give_away(tab, pid, data)`: make `to` the owner; it receives a [`Transfer`]
    /// with `data`.
    ///
    /// # Errors
    /// [`TableError::NotOwner`]; [`TableError::Badarg`] if `to` is dead or this process.
    pub fn give_away<D: Serialize + ?Sized>(&self, to: Pid, data: &D) -> Result<(), TableError> {
        host::give_away(&self.name, to, &encode(data)).map_err(TableError::from_wit)
    }

    /// `:ets.setopts(tab, {:heir, pid, data})`, or `{:heir, :none}` with `None`.
    ///
    /// # Errors
    /// [`TableError::NotOwner`].
    pub fn set_heir<D: Serialize + ?Sized>(
        &self,
        heir: Option<(Pid, &D)>,
    ) -> Result<(), TableError> {
        let heir = heir.map(|(p, d)| (p, encode(d)));
        host::set_heir(&self.name, heir.as_ref().map(|(p, d)| (p, d.as_slice())))
            .map_err(TableError::from_wit)
    }
}

fn encode_objects<K: Serialize, V: Serialize>(objects: &[(K, V)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    objects
        .iter()
        .map(|(k, v)| (encode(k), encode(v)))
        .collect()
}

fn decode_objects<K: DeserializeOwned, V: DeserializeOwned>(
    objects: &[(Vec<u8>, Vec<u8>)],
) -> Result<Vec<(K, V)>, TableError> {
    objects
        .iter()
        .map(|(k, v)| {
            Ok((
                decode(k).map_err(TableError::BadTerm)?,
                decode(v).map_err(TableError::BadTerm)?,
            ))
        })
        .collect()
}

fn range_match<K: Serialize>(range: &impl RangeBounds<K>) -> wit::KeyMatch {
    fn bound<K: Serialize>(b: Bound<&K>) -> wit::Bound {
        match b {
            Bound::Unbounded => wit::Bound::Unbounded,
            Bound::Included(k) => wit::Bound::Included(encode(k)),
            Bound::Excluded(k) => wit::Bound::Excluded(encode(k)),
        }
    }
    match (range.start_bound(), range.end_bound()) {
        (Bound::Unbounded, Bound::Unbounded) => wit::KeyMatch::All,
        (from, to) => wit::KeyMatch::Range((bound(from), bound(to))),
    }
}
