//! SQLite databases for guests (the `sql` interface): the databases a process's grants name,
//! opened on its behalf, with every statement run on a blocking thread under bounds, at
//! most [`NodeConfig::max_sql_statements`](crate::NodeConfig::max_sql_statements) at once
//! in the node.
//!
//! A guest is hostile, and a granted database must not become a door to other files, to
//! the host's memory or to its threads. So each connection ([`guard`]):
//! - is opened from the granted path only, made absolute (never read as a URI filename),
//!   through no symbolic link (one on its path, or for its journal, is refused), and
//!   attaches nothing:
//!   `ATTACH`/`DETACH` are refused by the authorizer and the attached-database limit is 0
//!   (which also refuses `VACUUM INTO`, an attach underneath);
//! - cannot load an extension (never enabled, and the `load_extension` function refused),
//!   nor run a PRAGMA outside a short list of harmless ones, nor create a virtual table;
//!   runs with `SQLITE_DBCONFIG_DEFENSIVE` and an untrusted schema;
//! - runs one statement per call, at most [`MAX_STATEMENT_BYTES`] long, interrupted past its
//!   grant's time limit (a progress handler, and an interrupt when its process ends);
//! - keeps temporary data in memory (no temporary files), and grows the file at most to
//!   its grant's `max_bytes` (SQLite's `database or disk is full` past it);
//! - returns at most [`MAX_ROWS`] rows of at most [`MAX_RESULT_BYTES`] in all, values at most
//!   [`MAX_VALUE_BYTES`] each; SQLite's heap in the whole node is capped at
//!   `guard::HEAP_LIMIT` bytes (256 MiB).
//!
//! A module may also be granted, read-write, a WASI directory holding one of its databases.
//! It can then write the file's bytes (its own data), but not lead SQLite elsewhere: a
//! symbolic link in place of the database or of a directory on its path is refused when
//! the connection opens, and SQLite opens the journal, WAL and shared-memory files with
//! `O_NOFOLLOW`; WASI makes no hard link to a file outside its directories, nor a FIFO or
//! device. What would remain is a race while a connection opens: a guest swapping a
//! directory *below* its WASI directory for a link between SQLite's check of the path and
//! its opening of the file. So a database in such a subdirectory is refused when granted
//! (`ModuleGrants::check_database_placement`, a manifest error at its line).
//!
//! A process holds at most [`MAX_CONNECTIONS`] connections, and each takes
//! [`CONNECTION_FILES`] descriptors from the node's budget of guest descriptors
//! ([`crate::descriptors`]) until it is closed: past either, an open fails with
//! `too-many-connections`. They belong to the instance
//! that opened them and do not outlive it: hibernating closes them, a new instance (waking,
//! an upgrade) starts with none, and dropping one closes it, rolling back a transaction it
//! left open. An upgrade sets the old instance's aside ([`Databases::set_aside`], with its
//! other instance resources: `process/resources.rs`) and closes them only once it commits:
//! an upgrade that fails gives them back untouched.

mod guard;
mod run;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::bindings::otter::genserver::sql::{Error, Rows, Value};
use crate::descriptors::{DescriptorBudget, DescriptorToken};
use crate::grants::{DirMode, ModuleGrants};

/// Connections one process may hold at once.
pub(crate) const MAX_CONNECTIONS: usize = 8;
/// The OS descriptors one connection may hold, as counted in the node's budget of guest
/// descriptors: the database, its journal or WAL, and the WAL's shared-memory index.
pub(crate) const CONNECTION_FILES: usize = 3;
/// The longest statement text, in bytes.
pub(crate) const MAX_STATEMENT_BYTES: usize = 64 * 1024;
/// The most rows one query returns.
pub(crate) const MAX_ROWS: usize = 100_000;
/// The most bytes one query returns, counting 16 bytes for every value besides its text or
/// blob.
pub(crate) const MAX_RESULT_BYTES: usize = 4 << 20;
/// The longest string or blob SQLite makes or stores (`SQLITE_LIMIT_LENGTH`).
pub(crate) const MAX_VALUE_BYTES: usize = 1 << 20;

/// A process's databases: what it was granted and the connections its instance holds.
pub(crate) struct Databases {
    grants: Arc<ModuleGrants>,
    open: Connections,
    next: u32,
    /// The node's turns to run a statement: a bounded share of the blocking threads.
    turns: Arc<Semaphore>,
    /// The node's budget of guest descriptors, which each connection takes from.
    descriptors: Arc<DescriptorBudget>,
}

/// The connections one instance holds, by handle; dropping them closes them.
#[derive(Default)]
pub(crate) struct Connections(HashMap<u32, Arc<Connection>>);

impl Drop for Connections {
    fn drop(&mut self) {
        for (_, c) in self.0.drain() {
            close(c);
        }
    }
}

/// One open connection, used by one statement at a time.
pub(crate) struct Connection {
    db: Mutex<rusqlite::Connection>,
    interrupt: rusqlite::InterruptHandle,
    timeout: std::time::Duration,
    /// Let go of: a statement still waiting for its thread does not run.
    closed: Arc<AtomicBool>,
    /// Its files' share of the node's budget, given back once it is closed (dropped).
    files: Option<DescriptorToken>,
}

impl Databases {
    pub(crate) fn new(
        grants: Arc<ModuleGrants>,
        turns: Arc<Semaphore>,
        descriptors: Arc<DescriptorBudget>,
    ) -> Self {
        Databases {
            grants,
            open: Connections::default(),
            next: 0,
            turns,
            descriptors,
        }
    }

    /// The same grants and no connection, for a context standing in for this one.
    pub(crate) fn stand_in(&self) -> Self {
        Databases::new(
            self.grants.clone(),
            self.turns.clone(),
            self.descriptors.clone(),
        )
    }

    /// Close every connection (a new instance holds none of the old one's).
    pub(crate) fn close_all(&mut self) {
        self.open = Connections::default();
    }

    /// Take the connections the current instance holds, leaving none, for an instance that
    /// may come back to them (an upgrade not yet committed).
    pub(crate) fn set_aside(&mut self) -> Connections {
        std::mem::take(&mut self.open)
    }

    /// Give back the connections [`set_aside`](Self::set_aside) took, closing the ones
    /// opened since (by an instance that is dropped).
    pub(crate) fn give_back(&mut self, kept: Connections) {
        self.open = kept;
    }

    /// Open the database granted as `name`; its handle.
    pub(crate) async fn open(&mut self, name: &str) -> Result<u32, Error> {
        let Some(grant) = self.grants.databases.iter().find(|d| d.name == name) else {
            return Err(Error::NotGranted(name.chars().take(255).collect()));
        };
        if self.open.0.len() >= MAX_CONNECTIONS {
            return Err(Error::TooManyConnections);
        }
        let files = self
            .descriptors
            .take(CONNECTION_FILES)
            .ok_or(Error::TooManyConnections)?;
        let (path, read_only, timeout, max_bytes) = (
            grant.path.clone(),
            grant.mode == DirMode::ReadOnly,
            grant.timeout,
            grant.max_bytes,
        );
        let mut conn = self
            .blocking(move || guard::open(&path, read_only, timeout, max_bytes))
            .await?;
        conn.files = Some(files);
        let handle = self.next;
        self.next = self.next.wrapping_add(1);
        self.open.0.insert(handle, Arc::new(conn));
        Ok(handle)
    }

    /// Close the connection `handle`.
    pub(crate) fn drop_handle(&mut self, handle: u32) {
        if let Some(c) = self.open.0.remove(&handle) {
            close(c);
        }
    }

    fn get(&self, handle: u32) -> Result<Arc<Connection>, Error> {
        self.open
            .0
            .get(&handle)
            .cloned()
            .ok_or_else(|| Error::Sqlite("connection closed".into()))
    }

    /// Run one statement; the rows it changed.
    pub(crate) async fn execute(
        &self,
        handle: u32,
        statement: String,
        params: Vec<Value>,
    ) -> Result<u64, Error> {
        let c = self.get(handle)?;
        self.blocking(move || c.run(|db| run::execute(db, &statement, &params)))
            .await
    }

    /// Run one query; its rows.
    pub(crate) async fn query(
        &self,
        handle: u32,
        statement: String,
        params: Vec<Value>,
    ) -> Result<Rows, Error> {
        let c = self.get(handle)?;
        self.blocking(move || c.run(|db| run::query(db, &statement, &params)))
            .await
    }

    /// Run one statement per parameter list in one transaction; the rows changed.
    pub(crate) async fn execute_many(
        &self,
        handle: u32,
        statement: String,
        params: Vec<Vec<Value>>,
    ) -> Result<u64, Error> {
        let c = self.get(handle)?;
        self.blocking(move || c.run(|db| run::execute_many(db, &statement, &params)))
            .await
    }

    /// Run `f` off the async workers once the node gives a turn: only the calling process's
    /// fiber waits, for the turn and for `f`. The turn is held until `f` ends, even if the
    /// process goes away meanwhile (its statement, interrupted, ends soon after).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Sqlite("the node is shutting down".into()))?;
        tokio::task::spawn_blocking(move || {
            let result = f();
            drop(turn);
            result
        })
        .await
        .unwrap_or_else(|_| Err(Error::Sqlite("the statement's thread failed".into())))
    }
}

impl Connection {
    /// Run `f` on the connection within its time limit.
    fn run<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // A statement that panicked in SQLite's wrapper leaves the connection as it was.
        let mut db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        // Its process let go of it while the statement waited for a thread: nobody waits
        // for the answer, and the interrupt came before it started.
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Sqlite("connection closed".into()));
        }
        guard::with_deadline(&mut db, self.timeout, self.closed.clone(), f)
    }
}

/// Let go of a connection: a statement it still runs (its process was killed) is
/// interrupted, and it is closed on a blocking thread (closing may roll back and sync).
fn close(c: Arc<Connection>) {
    c.closed.store(true, Ordering::Release);
    c.interrupt.interrupt();
    tokio::task::spawn_blocking(move || drop(c));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Databases granted `orders.db` in `dir`, run with `turns`.
    fn databases(dir: &std::path::Path, turns: Arc<Semaphore>) -> Databases {
        let mut grants = ModuleGrants::default();
        grants.database("orders", dir.join("orders.db"), DirMode::ReadWrite);
        Databases::new(Arc::new(grants), turns, DescriptorBudget::new(usize::MAX))
    }

    #[tokio::test]
    async fn a_statement_waits_for_a_turn_of_the_node_s_without_a_thread() {
        let tmp = tempfile::tempdir().unwrap();
        let turns = Arc::new(Semaphore::new(1));
        let mut dbs = databases(tmp.path(), turns.clone());
        let h = dbs.open("orders").await.unwrap();
        let held = turns.clone().acquire_owned().await.unwrap();
        let waited = tokio::time::timeout(
            Duration::from_millis(200),
            dbs.query(h, "SELECT 1".into(), vec![]),
        )
        .await;
        assert!(waited.is_err(), "it ran without a turn");
        drop(held);
        let rows = dbs.query(h, "SELECT 1".into(), vec![]).await.unwrap();
        assert_eq!(rows.rows.len(), 1);
        assert_eq!(turns.available_permits(), 1, "its turn is given back");
    }

    #[tokio::test]
    async fn a_connection_past_the_node_s_budget_of_guest_files_is_refused_until_one_closes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut grants = ModuleGrants::default();
        grants.database("orders", tmp.path().join("orders.db"), DirMode::ReadWrite);
        let budget = DescriptorBudget::new(2 * CONNECTION_FILES);
        let mut dbs = Databases::new(
            Arc::new(grants),
            Arc::new(Semaphore::new(2)),
            budget.clone(),
        );
        let first = dbs.open("orders").await.unwrap();
        dbs.open("orders").await.unwrap();
        assert!(matches!(
            dbs.open("orders").await,
            Err(Error::TooManyConnections)
        ));
        assert_eq!(budget.held(), 2 * CONNECTION_FILES);
        dbs.drop_handle(first);
        // Closed on a blocking thread; its files count until then.
        for _ in 0..200 {
            if budget.held() == CONNECTION_FILES {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(budget.held(), CONNECTION_FILES);
        dbs.open("orders").await.expect("its place is given back");
        dbs.close_all();
    }

    #[tokio::test]
    async fn a_statement_still_queued_when_its_connection_closes_does_not_run() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("orders.db");
        let c = Arc::new(guard::open(&path, false, Duration::from_secs(5), None).unwrap());
        close(c.clone());
        let mut ran = false;
        let result = c.run(|_| {
            ran = true;
            Ok(())
        });
        assert!(result.is_err());
        assert!(!ran, "a closed connection's statement ran");
    }
}
