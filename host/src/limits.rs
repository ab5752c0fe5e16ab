//! The node's limits on what a guest hands the host, and the errors that enforce them.
//!
//! Every term that would enter a process is checked against the node's maximum message size
//! before it is queued, so a term too large for the receiver's memory is refused at the
//! sender, never discovered as a trap in the receiver. Text a guest gives the host to keep or
//! show (exit reasons, panic messages, names) is bounded too.

use std::fmt;

/// The default [`crate::NodeConfig::max_message_size`]: 1 MiB.
pub(crate) const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 20;

/// How many monitors one process may hold at once; one more ends it with `system_limit`.
pub(crate) const MAX_MONITORS: usize = 100_000;

/// The default [`crate::NodeConfig::max_timers`] per process.
pub(crate) const DEFAULT_MAX_TIMERS: usize = 10_000;

/// The default [`crate::NodeConfig::max_registry_keys`] per process.
pub(crate) const DEFAULT_MAX_REGISTRY_KEYS: usize = 10_000;

/// The default [`crate::NodeConfig::max_processes`]: far above the million hibernated
/// servers a node is meant to hold, so that only a runaway spawner meets it.
pub(crate) const DEFAULT_MAX_PROCESSES: usize = 1 << 22;

/// The default [`crate::NodeConfig::max_tables`].
pub(crate) const DEFAULT_MAX_TABLES: usize = 10_000;

/// The default [`crate::NodeConfig::max_tables_per_process`].
pub(crate) const DEFAULT_MAX_TABLES_PER_PROCESS: usize = 100;

/// The default [`crate::NodeConfig::max_table_bytes`]: 256 MiB.
pub(crate) const DEFAULT_MAX_TABLE_BYTES: usize = 256 << 20;

/// The longest local name, in bytes (Erlang's atoms stop at 255 characters).
pub(crate) const MAX_NAME: usize = 255;

/// The longest exit reason or panic message the host keeps, in bytes; longer ones are cut.
pub(crate) const MAX_REASON: usize = 1024;

/// The largest term a `shutdown-with` reason may carry.
pub(crate) const MAX_SHUTDOWN_TERM: usize = 64 << 10;

/// The longest guest log message kept, and the most bytes its fields take together.
pub(crate) const MAX_LOG_TEXT: usize = 4096;

/// The most table elements a process may have, in all its tables together.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// How many core instances, tables and linear memories one process may have. A component
/// built with the SDK has three core instances, a few tables and one memory; each memory
/// takes a slot of address space even when empty (up to `max_memory`), so wasmtime's default
/// of 10,000 of each would let one module reserve terabytes.
pub(crate) const MAX_INSTANCES: usize = 32;
/// See [`MAX_INSTANCES`].
pub(crate) const MAX_TABLES: usize = 32;
/// See [`MAX_INSTANCES`].
pub(crate) const MAX_MEMORIES: usize = 4;

/// Refuse a term of `len` bytes over `limit`; `what` names it in the error (`message`,
/// `reply`, `args`).
pub(crate) fn check_term(what: &str, len: usize, limit: usize) -> Result<(), String> {
    if len <= limit {
        return Ok(());
    }
    let verb = if what.ends_with('s') {
        "exceed"
    } else {
        "exceeds"
    };
    Err(format!(
        "{what} of {len} bytes {verb} the {limit}-byte limit"
    ))
}

/// Refuse a local name longer than [`MAX_NAME`].
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.len() <= MAX_NAME {
        return Ok(());
    }
    Err(format!(
        "name of {} bytes exceeds the {MAX_NAME}-byte limit",
        name.len()
    ))
}

/// A guest broke a limit through an import with no error to return: the import traps and
/// the process exits with this reason (as an Erlang BIF raises `badarg` or `system_limit`).
#[derive(Debug)]
pub(crate) struct GuestFault(pub(crate) String);

impl GuestFault {
    /// The process would hold more than it may on the host (timers, registry entries,
    /// monitors).
    pub(crate) fn system_limit() -> wasmtime::Error {
        wasmtime::Error::new(GuestFault("system_limit".to_owned()))
    }

    /// A bad argument: `badarg: <why>`.
    pub(crate) fn badarg(why: impl fmt::Display) -> wasmtime::Error {
        wasmtime::Error::new(GuestFault(format!("badarg: {why}")))
    }
}

impl fmt::Display for GuestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GuestFault {}
