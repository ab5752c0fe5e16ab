//! SQLite databases the manifest grants this process, opened by name.
//!
//! ```no_run
//! use otter_guest::sql::{Connection, Value};
//!
//! # fn demo() -> Result<(), otter_guest::sql::Error> {
//! let db = Connection::open("orders")?; // granted as `databases = [{ name = "orders", ... }]`
//! db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER, item TEXT)", &[])?;
//! // One statement per parameter list, all in one transaction: all land or none.
//! db.execute_many(
//!     "INSERT INTO orders (id, item) VALUES (?1, ?2)",
//!     &[vec![1.into(), "tea".into()], vec![2.into(), "cake".into()]],
//! )?;
//! let rows = db.query("SELECT count(*) FROM orders", &[])?;
//! assert!(matches!(rows.rows[0][0], Value::Integer(2)));
//! # Ok(()) }
//! ```
//!
//! Each statement runs on a host thread while only this process waits (its messages
//! queue). The host bounds what a statement may do: its time (the grant's `timeout_ms`,
//! else 5 s, then [`Error::Interrupted`]), its result (100,000 rows, 4 MiB, else
//! [`Error::TooLarge`]), its length (64 KiB), and it refuses `ATTACH`, extensions and
//! most PRAGMAs ([`Error::Denied`]). A process holds at most 8 connections.
//!
//! A connection belongs to the instance that opened it: dropping it closes it, rolling
//! back a transaction it left open, and it does not survive hibernation or an upgrade
//! (open it again where it is used, or in `init` and after waking).

use crate::imports::sql as host;

pub use crate::bindings::otter::genserver::sql::{Error, Rows, Value};

/// An open database (see the module docs).
pub struct Connection(host::Connection);

impl Connection {
    /// Open the database granted to this process as `name`.
    ///
    /// # Errors
    /// [`Error::NotGranted`] if no database of that name is granted,
    /// [`Error::TooManyConnections`] past 8, [`Error::Sqlite`] if SQLite cannot open it.
    pub fn open(name: &str) -> Result<Connection, Error> {
        host::Connection::open(name).map(Connection)
    }

    /// Run one statement with `params` bound to `?1`, `?2`...; the rows it changed.
    /// `BEGIN`, `COMMIT` and `ROLLBACK` are statements too (see [`Connection::transaction`]).
    ///
    /// # Errors
    /// As the module docs say; a statement SQLite refuses is [`Error::Sqlite`].
    pub fn execute(&self, statement: &str, params: &[Value]) -> Result<u64, Error> {
        self.0.execute(statement, params)
    }

    /// Run one query; its columns and rows.
    ///
    /// # Errors
    /// As [`Connection::execute`], and [`Error::TooLarge`] for too large a result.
    pub fn query(&self, statement: &str, params: &[Value]) -> Result<Rows, Error> {
        self.0.query(statement, params)
    }

    /// Run `statement` once per parameter list, in one transaction (a savepoint inside a
    /// transaction already open): all of them take effect or none. The rows changed.
    ///
    /// # Errors
    /// The first failure, naming its parameter list; nothing of the call is kept.
    pub fn execute_many(&self, statement: &str, params: &[Vec<Value>]) -> Result<u64, Error> {
        self.0.execute_many(statement, params)
    }

    /// Run `work` inside `BEGIN IMMEDIATE` … `COMMIT`; if it fails, or the commit does,
    /// roll back and return that error.
    ///
    /// # Errors
    /// The error of `BEGIN`, of `work` or of `COMMIT`.
    pub fn transaction<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.execute("BEGIN IMMEDIATE", &[])?;
        let done = work(self).and_then(|t| self.execute("COMMIT", &[]).map(|_| t));
        if done.is_err() {
            // Nothing to roll back if the commit itself ended the transaction.
            let _ = self.execute("ROLLBACK", &[]);
        }
        done
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Integer(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Integer(v.into())
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Integer(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
