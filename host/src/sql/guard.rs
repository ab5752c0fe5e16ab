//! What keeps a guest's statements inside its granted database file: how a connection is
//! opened and configured, the authorizer, the time limit, and the errors a guest sees.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::{ErrorCode, OpenFlags};

use super::{Connection, MAX_STATEMENT_BYTES, MAX_VALUE_BYTES};
use crate::bindings::otter::genserver::sql::Error;

/// SQLite's heap for the whole node, all connections together (`sqlite3_hard_heap_limit64`):
/// past it an allocation fails and the statement gets `out of memory`.
pub(crate) const HEAP_LIMIT: i64 = 256 << 20;

/// VM instructions between two looks at the clock.
const PROGRESS_OPS: i32 = 1_000;

/// PRAGMAs a guest may run: they read the schema or set harmless per-connection flags.
/// Any other (`journal_mode`, `temp_store_directory`, `mmap_size`, `writable_schema`...)
/// could reach files or memory beyond the database.
const PRAGMAS: &[&str] = &[
    "foreign_keys",
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

/// Open `path` for a guest, configured as the module's docs say.
pub(super) fn open(
    path: &Path,
    read_only: bool,
    timeout: Duration,
    max_bytes: Option<u64>,
) -> Result<Connection, Error> {
    static HEAP: Once = Once::new();
    HEAP.call_once(|| {
        // SAFETY: sets a process-wide limit; callable at any time, from any thread.
        unsafe { rusqlite::ffi::sqlite3_hard_heap_limit64(HEAP_LIMIT) };
    });
    // The granted file and no other: a symbolic link anywhere on its path (one put there
    // by a process that can also write the directory) is refused, not followed. SQLite
    // opens the journal and WAL files beside it with O_NOFOLLOW whatever the flags.
    let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        };
    // SQLite is built to take URI filenames: a grant's path starting with `file:` would be
    // read as one, with its options. An absolute path starts with `/` and is only a path.
    let path = std::path::absolute(path)
        .map_err(|_| Error::Sqlite("cannot open the database: not a usable path".into()))?;
    // The guest knows the database by name: what fails is said without the host's path.
    let mut db = rusqlite::Connection::open_with_flags(&path, flags).map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            Error::Sqlite(format!("cannot open the database: {f}"))
        }
        _ => Error::Sqlite("cannot open the database".into()),
    })?;
    let configure = |db: &mut rusqlite::Connection| -> rusqlite::Result<()> {
        db.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        db.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES as i32)?;
        db.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_STATEMENT_BYTES as i32)?;
        db.set_limit(Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 16)?;
        db.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        db.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
        db.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, false)?;
        // SQLite takes at most 2^31 - 1 ms (rusqlite panics past it); a grant made in code
        // is not held to the manifest's hour.
        db.busy_timeout(timeout.min(Duration::from_millis(i32::MAX as u64)))?;
        // Sorts and temporary tables in memory, under the heap limit, never in temporary
        // files a guest could grow to fill the host's disk.
        db.pragma_update(None, "temp_store", "MEMORY")?;
        if let Some(bytes) = max_bytes {
            let pages: i64 = db.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let max = (bytes / pages.max(512) as u64).max(1);
            db.pragma_update(None, "max_page_count", max as i64)?;
        }
        db.authorizer(Some(authorize))?;
        Ok(())
    };
    configure(&mut db).map_err(error)?;
    let interrupt = db.get_interrupt_handle();
    Ok(Connection {
        db: std::sync::Mutex::new(db),
        interrupt,
        timeout,
        closed: Default::default(),
        files: None,
    })
}

/// The authorizer: everything a statement does inside the database is allowed; whatever
/// reaches past it is denied.
fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Attach { .. }
        | AuthAction::Detach { .. }
        | AuthAction::CreateVtable { .. }
        | AuthAction::DropVtable { .. }
        | AuthAction::Unknown { .. } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. } => {
            if PRAGMAS.iter().any(|p| p.eq_ignore_ascii_case(pragma_name)) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension")
                || function_name.eq_ignore_ascii_case("fts3_tokenizer") =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// Run `f` with a progress handler that interrupts it once `timeout` has passed, or once
/// its connection is `closed` (an interrupt that came just before it started is not lost).
pub(super) fn with_deadline<T>(
    db: &mut rusqlite::Connection,
    timeout: Duration,
    closed: Arc<AtomicBool>,
    f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    let deadline = Instant::now() + timeout;
    let stop = move || Instant::now() >= deadline || closed.load(Ordering::Acquire);
    db.progress_handler(PROGRESS_OPS, Some(stop))
        .map_err(error)?;
    let result = f(db);
    let _ = db.progress_handler(0, None::<fn() -> bool>);
    result
}

/// A statement's text, checked before SQLite parses it.
pub(super) fn check_statement(statement: &str) -> Result<(), Error> {
    if statement.len() > MAX_STATEMENT_BYTES {
        return Err(Error::Denied(format!(
            "statement of {} bytes: at most {MAX_STATEMENT_BYTES}",
            statement.len()
        )));
    }
    Ok(())
}

/// What a guest is told of a failure.
pub(super) fn error(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, message) => {
            classify(f.code, message.unwrap_or_else(|| f.to_string()))
        }
        // A statement that does not compile: SQLite's message and where, without the
        // statement itself (the guest has it).
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => classify(error.code, format!("{msg} (at offset {offset})")),
        rusqlite::Error::MultipleStatement => Error::Denied("one statement at a time".into()),
        other => Error::Sqlite(other.to_string()),
    }
}

fn classify(code: ErrorCode, message: String) -> Error {
    match code {
        ErrorCode::OperationInterrupted => Error::Interrupted,
        ErrorCode::AuthorizationForStatementDenied => Error::Denied(message),
        // What the authorizer refuses while compiling (a function, a PRAGMA) comes back as
        // a plain error with this message.
        _ if message.starts_with("not authorized") => Error::Denied(message),
        _ => Error::Sqlite(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_looks_like_a_uri_is_only_a_path() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("orders.db");
        // As a URI this opens a database in memory; as a path it names a file under a
        // directory `file:` that does not exist.
        let uri = format!("file:{}?mode=memory", real.display());
        let opened = open(Path::new(&uri), false, Duration::from_secs(1), None);
        assert!(opened.is_err(), "a URI was opened");
        assert!(!real.exists());
    }
}
