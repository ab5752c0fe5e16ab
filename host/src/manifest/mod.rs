//! The manifest: a TOML file describing an application — its node, the modules it loads
//! and the children it starts. (The same reference for users is docs/manifest.md, which the
//! README links: keep the two in step.)
//!
//! ```toml
//! version = "1.4.0"           # the release's version (optional; see `otter reload`)
//!
//! [node]                      # optional
//! name = "demo"               # default: the file's stem
//! control = "run/demo.sock"   # the control socket; default: see `otter::control`
//! max_message_size = 1048576  # bytes; default: see `NodeConfig::max_message_size`
//! control_max_request_bytes = 1048576  # its limits (`otter::control::Limits`): the
//! control_idle_timeout_ms = 30000      # defaults
//! control_max_connections = 256
//! max_processes = 4194304     # processes on the node (Erlang's +P); a start past it fails
//! max_timers = 10000          # pending send-after timers per process (system_limit past it)
//! max_registry_keys = 10000   # registry entries per process, all registries (system_limit past it)
//! memory_limit = 16777216     # bytes of linear memory per process (the slot size; a child
//!                             # may set less); past it the process exits `memory_limit`
//! callback_timeout_ms = 30000 # how long one callback may run its own code; past it the
//!                             # process exits `timeout` (time waiting in imports is free)
//! max_tables = 10000          # shared tables (ETS) on the node; one more: `system_limit`
//! max_tables_per_process = 100  # shared tables one process owns at once; likewise
//! max_table_bytes = 268435456 # bytes in all shared tables (at most this machine's memory);
//!                             # a write past it fails `system_limit`, changing nothing
//! max_sql_statements = 4      # SQL statements running at once in the node (default: the
//!                             # cores, at least 2; at most 256); the next waits its turn
//! max_guest_files = 4096      # OS descriptors all guests may hold open (WASI files,
//!                             # directories and sockets, 3 per SQLite connection); default
//!                             # the open-file limit less max(256, a quarter), to which a
//!                             # node lowers more; past it an open fails (WASI `io`)
//! spare_instances = 8         # instances of a module made ahead of its spawns (0: none;
//!                             # at most 64); a module's spares shrink when it stops spawning
//! max_wasm_stack = 131072     # bytes of wasm stack one callback may use, 16 KiB to 8 MiB
//!                             # (each process reserves it); deeper: exit `stack_overflow`
//! epoch_tick_ms = 1           # the clock that preempts busy callbacks and times them, 1 to
//!                             # 100 ms, at most callback_timeout_ms (and any child's)
//! load_timeout_ms = 5000      # how long a module's own code may run while it loads (its
//!                             # trial instance, its `vsn`), at most 10 min; past it the load fails
//!
//! [modules]
//! echo = "../guests/target/wasm32-unknown-unknown/release/echo.wasm"
//! kv = { path = "../guests/target/wasm32-unknown-unknown/release/kv.wasm", vsn = "1" }
//!
//! [[registries]]              # named registries of keys (Elixir's Registry), created first
//! name = "MyReg"
//! keys = "unique"             # unique | duplicate
//!
//! [supervisor]                # optional: the root supervisor (the application)
//! id = "MyApp.Supervisor"     # default: the node's name
//! name = "MyApp.Supervisor"   # a registered name, so guests reach it (optional)
//! strategy = "one_for_one"    # one_for_one (default) | one_for_all | rest_for_one
//! intensity = 3               # restarts allowed within period_ms; default 3
//! period_ms = 5000            # default 5000
//!
//! [[children]]                # started in order, stopped in reverse order
//! id = "echo"                 # default: its name, else its module
//! name = "echo"               # registered name (optional)
//! module = "echo"
//! args = { greeting = "hi" }  # any TOML value, given to `init` as CBOR; default: unit
//! restart = "permanent"       # permanent (default) | transient | temporary
//! shutdown = 5000             # ms (default 5000) | "brutal_kill" | "infinity"
//! start_timeout_ms = 1000     # init must return within this (default: no limit)
//! hibernate_after_ms = 60000  # hibernate when idle this long (OTP's hibernate_after;
//!                             # default: never)
//! memory_limit = 4194304      # below [node] memory_limit (default: the node's)
//! callback_timeout_ms = 1000  # default: the node's
//! mailbox = { bound = 1000, policy = "reject" }  # default: unbounded; policy reject
//!                             # (default) | drop_oldest | drop_newest
//!
//! [[children]]                # reachable by a key instead of a name (OTP's `via`)
//! id = "shard-1"
//! module = "kv"
//! via = ["MyReg", ["kv", 1]]  # [registry, key]: a unique registry above; any TOML key
//!
//! [[children]]                # a nested supervisor
//! id = "workers"              # required
//! type = "supervisor"         # default: "worker"
//! strategy = "one_for_all"    # and intensity, period_ms, restart, shutdown (default infinity)
//!
//! [[children.children]]       # its children, in the same form
//! module = "echo"
//!
//! [[children]]                # a dynamic supervisor: guests add children (`start-child`)
//! id = "jobs"
//! type = "supervisor"
//! name = "Jobs"               # supervisors may be named, as workers
//! strategy = "simple_one_for_one"
//!
//! [[children.children]]       # exactly one: the template
//! module = "echo"
//! restart = "temporary"
//!
//! [telemetry]                 # optional
//! prometheus = "127.0.0.1:9568"  # serve /metrics here (Prometheus' text format); a port
//!                             # alone, `prometheus = 9568`, means 127.0.0.1; default: none
//! max_series = 2000           # distinct metric series guests create, 0 to 100000; past
//!                             # it new series are dropped (counted, reason series_limit)
//! max_series_per_module = 500 # those one module's processes create, at most max_series;
//!                             # default a quarter of it (reason module_series_limit)
//! ```
//!
//! Without `[supervisor]`, the children are under a root `one_for_one` supervisor with
//! intensity 3 and period 5 s. The older `shutdown_timeout_ms` is `shutdown` in
//! milliseconds. A child whose `init` overruns `start_timeout_ms` is killed and its start
//! fails: at startup that stops the application, on a restart it counts as a failed
//! restart. Registered names (of workers and supervisors) are unique in the whole tree, as
//! are `via` names; ids among siblings, registry names among registries. A worker has a
//! `name` or a `via`, not both.
//!
//! Relative paths are relative to the manifest's directory. A module may also be written
//! as a table, `[modules.echo]` with `path` and `vsn` (the version the module must report).
//!
//! A module that imports WASI gets only what its grants allow (see [`crate::ModuleGrants`]):
//!
//! ```toml
//! [modules.file_server]
//! path = "file_server.wasm"
//! [modules.file_server.grants]
//! dirs = [{ host = "var/files", guest = "/files", mode = "rw" }]  # mode: "ro" (default) | "rw"
//! env = ["TZ"]                 # inherit these; or { NAME = "value" }
//! clocks = true                # default false: WASI clocks read zero
//! random = true                # default false: random bytes trap
//! network = { connect = ["127.0.0.1:5432"] }  # outbound TCP to these; default none
//! ```
//!
//! Each directory is checked when the manifest is read: missing, not a directory or not
//! accessible as granted is an error at its line.
//!
//! A worker child may narrow its module's grants with its own, in the same form; they are
//! its grants, and each must be within its module's (a directory inside one of the
//! module's, read-write only inside a read-write one; see
//! [`crate::ModuleGrants::check_within`]):
//!
//! ```toml
//! [[children]]
//! name = "reader"
//! module = "file_server"
//! grants = { dirs = [{ host = "var/files/public", guest = "/files" }] }
//! ```
//!
//! Supervisors nest at most [`MAX_SUPERVISOR_DEPTH`] levels below the root; keys, tables
//! and arrays at most 80 (the TOML parser's limit).
//!
//! [`Manifest::load`] checks everything it can before anything starts — UTF-8, syntax,
//! duplicate keys, types, unknown fields, unknown module names, duplicate child names,
//! module files that do not exist — and its [`ManifestError`] names the file, the line and
//! the field:
//!
//! ```text
//! app.toml:14: children[2].module: unknown module "ech" (modules: echo, kv)
//! ```
//!
//! ```no_run
//! let manifest = otter::manifest::Manifest::load("app.toml")?;
//! for child in manifest.children() {
//!     println!("{} runs {}", child.id, child.module());
//! }
//! # Ok::<(), otter::manifest::ManifestError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::registry::Keys;
use crate::supervisor as sup;
use crate::term::Term;

pub use crate::supervisor::DEFAULT_SHUTDOWN_TIMEOUT;
pub use engine_limits::{MAX_EPOCH_TICK, MAX_LOAD_TIMEOUT, MAX_WASM_STACK, MIN_WASM_STACK};
pub use host_limits::MAX_SQL_STATEMENTS;
pub use telemetry::MAX_SERIES;
pub use tree::{ChildTable, ChildTableKind, SupervisorTable, WorkerSpec};

/// How deep supervisors may nest below the root supervisor.
pub const MAX_SUPERVISOR_DEPTH: usize = 32;

/// The longest release `version`, in bytes.
pub const MAX_VERSION: usize = 64;

/// A checked manifest: every module file exists and every child names a known module.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from, as given.
    pub path: PathBuf,
    /// The top-level `version`: the release this manifest describes (OTP's release
    /// `vsn`), shown by `otter reload` and `otter rollback`. Default none.
    pub version: Option<String>,
    /// The node's name: `[node] name`, or the file's stem.
    pub node_name: String,
    /// `[node] control`, resolved against the manifest's directory.
    pub control: Option<PathBuf>,
    /// `[node] max_message_size`, if set (see [`crate::NodeConfig::max_message_size`]).
    pub max_message_size: Option<usize>,
    /// `[node] max_processes`, if set (see [`crate::NodeConfig::max_processes`]).
    pub max_processes: Option<usize>,
    /// `[node] max_timers`, if set (see [`crate::NodeConfig::max_timers`]).
    pub max_timers: Option<usize>,
    /// `[node] max_registry_keys`, if set (see [`crate::NodeConfig::max_registry_keys`]).
    pub max_registry_keys: Option<usize>,
    /// `[node] memory_limit`, if set (see [`crate::EngineConfig::max_memory`]).
    pub memory_limit: Option<usize>,
    /// `[node] callback_timeout_ms`, if set (see [`crate::NodeConfig::callback_timeout`]).
    pub callback_timeout: Option<Duration>,
    /// `[node] max_tables`, if set (see [`crate::NodeConfig::max_tables`]).
    pub max_tables: Option<usize>,
    /// `[node] max_tables_per_process`, if set (see
    /// [`crate::NodeConfig::max_tables_per_process`]).
    pub max_tables_per_process: Option<usize>,
    /// `[node] max_table_bytes`, if set (see [`crate::NodeConfig::max_table_bytes`]).
    pub max_table_bytes: Option<usize>,
    /// `[node] max_sql_statements`, if set (see [`crate::NodeConfig::max_sql_statements`]);
    /// at most [`MAX_SQL_STATEMENTS`].
    pub max_sql_statements: Option<usize>,
    /// `[node] max_guest_files`, if set (see [`crate::NodeConfig::max_guest_files`]): the
    /// node lowers it to what its limit of open files leaves guests.
    pub max_guest_files: Option<usize>,
    /// `[node] spare_instances`, if set (see [`crate::NodeConfig::spare_instances`]); at
    /// most [`MAX_SPARE_INSTANCES`](crate::MAX_SPARE_INSTANCES).
    pub spare_instances: Option<usize>,
    /// `[node] max_wasm_stack`, if set (see [`crate::EngineConfig::max_wasm_stack`]);
    /// within [`MIN_WASM_STACK`] and [`MAX_WASM_STACK`].
    pub max_wasm_stack: Option<usize>,
    /// `[node] epoch_tick_ms`, if set (see [`crate::EngineConfig::epoch_tick`]); at most
    /// [`MAX_EPOCH_TICK`] and at most the node's `callback_timeout_ms`.
    pub epoch_tick: Option<Duration>,
    /// `[node] load_timeout_ms`, if set (see [`crate::EngineConfig::load_timeout`]); at
    /// most [`MAX_LOAD_TIMEOUT`].
    pub load_timeout: Option<Duration>,
    /// `[node] control_max_request_bytes`, `control_idle_timeout_ms` and
    /// `control_max_connections`, or their defaults.
    pub control_limits: crate::control::Limits,
    /// The modules, in name order.
    pub modules: Vec<ModuleSpec>,
    /// The root supervisor: `[supervisor]` (or its defaults) and the top-level children.
    pub supervisor: SupervisorTable,
    /// The `[[registries]]`, in file order.
    pub registries: Vec<RegistrySpec>,
    /// `[telemetry] prometheus`: where to serve `/metrics`, if anywhere.
    pub prometheus: Option<std::net::SocketAddr>,
    /// `[telemetry] max_series` and `max_series_per_module`, or their defaults (see
    /// [`crate::telemetry::SeriesLimits`]).
    pub series_limits: crate::telemetry::SeriesLimits,
}

/// A named registry of keys to create before anything starts.
#[derive(Debug, Clone)]
pub struct RegistrySpec {
    /// Its name, as guests and `via` destinations give it.
    pub name: String,
    /// Unique or duplicate keys.
    pub keys: Keys,
    /// The manifest line of its table.
    pub line: usize,
}

/// A module to load.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// The name children start it by.
    pub name: String,
    /// The `.wasm` file, resolved against the manifest's directory.
    pub path: PathBuf,
    /// The version the module must report, if the manifest pins one.
    pub vsn: Option<String>,
    /// What its processes may reach through WASI (`[modules.NAME.grants]`); nothing by
    /// default. Its directories are resolved and checked.
    pub grants: crate::grants::ModuleGrants,
    /// The manifest line of its path.
    pub line: usize,
}

impl ModuleSpec {
    /// The module file's bytes, read as the node reads a module: only a regular file, at
    /// most [`MAX_MODULE_BYTES`](crate::MAX_MODULE_BYTES), however large it is or grows.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        crate::file::read_regular(&self.path, crate::file::MAX_MODULE_BYTES)
    }
}

/// Why a manifest was refused: the file, the line, the field and what is wrong.
///
/// Displays as `file:line: field: message`, leaving out what is not known (a file that
/// cannot be read has no line; a syntax error has no field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The manifest file, as given.
    pub file: PathBuf,
    /// The 1-based line the problem is on, if it is on one.
    pub line: Option<usize>,
    /// The field's path, like `children[2].module` (children count from 0); empty when
    /// the problem is not in one field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        // One short line, whatever the manifest held: a message may quote the text it
        // refuses (a duplicate key, a string of the wrong type) or list what was declared.
        write!(
            f,
            ": {}",
            crate::guest_text::one_line(&self.message, MAX_SHOWN_MESSAGE)
        )
    }
}

/// The most bytes of a manifest error's message shown (the message itself is kept whole).
const MAX_SHOWN_MESSAGE: usize = 300;

impl Manifest {
    /// The node settings its `[node]` table asks for, the others at their defaults (what
    /// `otter run` starts the node with).
    pub fn node_config(&self) -> crate::NodeConfig {
        let mut config = crate::NodeConfig::default();
        if let Some(bytes) = self.max_message_size {
            config.max_message_size(bytes);
        }
        if let Some(n) = self.max_processes {
            config.max_processes(n);
        }
        if let Some(n) = self.max_timers {
            config.max_timers(n);
        }
        if let Some(n) = self.max_registry_keys {
            config.max_registry_keys(n);
        }
        if let Some(bytes) = self.memory_limit {
            config.engine().max_memory(bytes);
        }
        if let Some(t) = self.callback_timeout {
            config.callback_timeout(Some(t));
        }
        if let Some(n) = self.max_tables {
            config.max_tables(n);
        }
        if let Some(n) = self.max_tables_per_process {
            config.max_tables_per_process(n);
        }
        if let Some(bytes) = self.max_table_bytes {
            config.max_table_bytes(bytes);
        }
        if let Some(n) = self.max_sql_statements {
            config.max_sql_statements(n);
        }
        if let Some(n) = self.max_guest_files {
            config.max_guest_files(n);
        }
        if let Some(n) = self.spare_instances {
            config.spare_instances(n);
        }
        if let Some(bytes) = self.max_wasm_stack {
            config.engine().max_wasm_stack(bytes);
        }
        if let Some(tick) = self.epoch_tick {
            config.engine().epoch_tick(tick);
        }
        if let Some(limit) = self.load_timeout {
            config.engine().load_timeout(limit);
        }
        config
    }

    /// Whether `other` sets its node up as this manifest does: the same name, control
    /// socket and control limits, and the same [`Manifest::node_config`]. What differs
    /// takes effect at the next start only (`otter reload` says so). The node configs are
    /// compared, not the keys one by one, so that a `[node]` key is compared as soon as it
    /// reaches the node.
    pub fn same_node(&self, other: &Manifest) -> bool {
        self.node_name == other.node_name
            && self.control == other.control
            && self.control_limits == other.control_limits
            && self.node_config() == other.node_config()
    }

    /// Read and check a manifest file.
    ///
    /// # Errors
    /// [`ManifestError`] if the file cannot be read or anything in it is wrong; see the
    /// module docs.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let bytes =
            crate::file::read_regular(path, crate::file::MAX_MANIFEST_BYTES).map_err(|e| {
                ManifestError {
                    file: path.to_owned(),
                    line: None,
                    field: String::new(),
                    message: format!("cannot read the manifest: {e}"),
                }
            })?;
        Manifest::from_bytes(bytes, path)
    }

    /// [`Manifest::load`] of bytes already read from `path`.
    pub(crate) fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Manifest, ManifestError> {
        let text = String::from_utf8(bytes).map_err(|e| {
            let (line, column, offset) =
                text::first_invalid_byte(e.as_bytes()).unwrap_or((1, 1, 0));
            let byte = e.as_bytes().get(offset).copied().unwrap_or_default();
            ManifestError {
                file: path.to_owned(),
                line: Some(line),
                field: String::new(),
                message: format!(
                    "not UTF-8: byte 0x{byte:02x} at column {column} (byte offset {offset})"
                ),
            }
        })?;
        Manifest::parse(&text, path)
    }

    /// Check a manifest's text; `path` names it in errors, and relative paths in it are
    /// resolved against `path`'s directory.
    ///
    /// # Errors
    /// As [`Manifest::load`].
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        Parser {
            text,
            file: path.as_ref(),
        }
        .parse()
    }

    /// An error about this manifest at `line` and `field` (for checks made after loading,
    /// such as a module file that turns out not to be a server).
    pub fn error_at(
        &self,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError {
            file: self.path.clone(),
            line: Some(line),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The module spec named `name`.
    pub fn module(&self, name: &str) -> Option<&ModuleSpec> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// A runtime [`sup::SpecError`] as a manifest error on the line of the child it names.
    pub fn spec_error(&self, e: &sup::SpecError) -> ManifestError {
        self.error_at(self.supervisor.line_of(&e.field), &e.field, &e.reason)
    }

    /// The root supervisor's children (the top-level `[[children]]`).
    pub fn children(&self) -> &[ChildTable] {
        &self.supervisor.children
    }
}

mod child;
mod engine_limits;
mod grants;
mod host_limits;
mod node;
mod parse;
mod raw;
mod telemetry;
mod text;
mod tree;

use parse::Parser;

#[cfg(test)]
mod tests;
