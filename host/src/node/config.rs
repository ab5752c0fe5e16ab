//! Node-wide settings: [`NodeConfig`].

use std::path::PathBuf;
use std::time::Duration;

use crate::cache::CompileCache;
use crate::engine::EngineConfig;

/// How many instances of one module a node keeps made ahead of its spawns, unless
/// [`NodeConfig::spare_instances`] says otherwise.
pub const DEFAULT_SPARE_INSTANCES: usize = 8;

/// The most spare instances of one module a node keeps ([`NodeConfig::spare_instances`]):
/// each holds what an idle process does, and past a few a spawn burst is served anyway.
pub const MAX_SPARE_INSTANCES: usize = 64;

/// Node-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub(crate) engine: EngineConfig,
    pub(crate) compile_cache: Option<PathBuf>,
    pub(crate) max_message_size: usize,
    pub(crate) max_timers: usize,
    pub(crate) max_registry_keys: usize,
    pub(crate) max_processes: usize,
    pub(crate) max_tables: usize,
    pub(crate) max_tables_per_process: usize,
    pub(crate) max_table_bytes: usize,
    pub(crate) callback_timeout: Option<Duration>,
    pub(crate) max_sql_statements: usize,
    pub(crate) max_guest_files: Option<usize>,
    pub(crate) spare_instances: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            engine: EngineConfig::default(),
            compile_cache: CompileCache::default_dir(),
            max_message_size: crate::limits::DEFAULT_MAX_MESSAGE_SIZE,
            max_timers: crate::limits::DEFAULT_MAX_TIMERS,
            max_registry_keys: crate::limits::DEFAULT_MAX_REGISTRY_KEYS,
            max_processes: crate::limits::DEFAULT_MAX_PROCESSES,
            max_tables: crate::limits::DEFAULT_MAX_TABLES,
            max_tables_per_process: crate::limits::DEFAULT_MAX_TABLES_PER_PROCESS,
            max_table_bytes: crate::limits::DEFAULT_MAX_TABLE_BYTES,
            callback_timeout: Some(crate::process_limits::DEFAULT_CALLBACK_TIMEOUT),
            max_sql_statements: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2),
            max_guest_files: None,
            spare_instances: DEFAULT_SPARE_INSTANCES,
        }
    }
}

impl NodeConfig {
    /// Where compiled modules are cached; `None` compiles every time. Default
    /// `$OTTER_CACHE_DIR`, else `$XDG_CACHE_HOME/otter`, else `~/.cache/otter`. Cached images
    /// are machine code, so a directory that is not ours alone (another user's, a symlink,
    /// writable by group or others) is not used: the node warns once and compiles every time.
    /// Each entry's digest is checked before it is loaded; a bad entry is recompiled.
    pub fn compile_cache(&mut self, dir: Option<PathBuf>) -> &mut Self {
        self.compile_cache = dir;
        self
    }

    /// The largest term (CBOR bytes) that may enter a process: a request, message, reply,
    /// start argument, timer message or registry key or value. Default 1 MiB, a sixteenth of
    /// the default 16 MiB memory: a Rust guest holds a term several times over while it
    /// decodes it (the bytes, the decoded value, the state it builds), so a larger term could
    /// exhaust the receiver's memory and kill it. Anything larger is refused before it enters:
    /// a call or send answers [`CallError::Badarg`](crate::CallError::Badarg), a reply reaches the caller as
    /// [`CallError::BadReply`](crate::CallError::BadReply), a spawn fails with [`StartError::Badarg`](crate::StartError::Badarg), and a cast or timer
    /// that cannot report an error is dropped with a warning in the log.
    pub fn max_message_size(&mut self, bytes: usize) -> &mut Self {
        self.max_message_size = bytes;
        self
    }

    /// How many pending `send-after` timers one process may hold. Default 10,000. A process
    /// that arms one more exits with the reason `system_limit` (as Erlang's `send_after`
    /// raises `system_limit`); fired and cancelled timers do not count.
    pub fn max_timers(&mut self, timers: usize) -> &mut Self {
        self.max_timers = timers;
        self
    }

    /// How many registry entries (keys in [`Keys::Unique`](crate::Keys::Unique) registries,
    /// entries in [`Keys::Duplicate`](crate::Keys::Duplicate) ones) one process may hold in
    /// all registries together. Default 10,000. A process that registers one more exits
    /// with the reason `system_limit`, as one whose entries would take more bytes than its
    /// memory limit; its entries go with it.
    pub fn max_registry_keys(&mut self, keys: usize) -> &mut Self {
        self.max_registry_keys = keys;
        self
    }

    /// How many processes the node holds at most (Erlang's `+P`). Default 4,194,304. A
    /// start past it fails with [`StartError::SystemLimit`](crate::StartError::SystemLimit), whoever starts it (a guest,
    /// a supervisor, [`Node::spawn`](crate::Node::spawn)); supervisors count, as the processes they are in OTP
    /// (a supervisor's start past it fails with
    /// [`SupervisorError::SystemLimit`](crate::SupervisorError::SystemLimit)). Concurrent
    /// starts may overshoot it by a few.
    pub fn max_processes(&mut self, processes: usize) -> &mut Self {
        self.max_processes = processes;
        self
    }

    /// How many shared tables the node holds at most. Default 10,000. Creating one more
    /// fails with the table error `system-limit`.
    pub fn max_tables(&mut self, tables: usize) -> &mut Self {
        self.max_tables = tables;
        self
    }

    /// How many shared tables one process may create and own at once. Default 100.
    /// Creating one more fails with the table error `system-limit`.
    pub fn max_tables_per_process(&mut self, tables: usize) -> &mut Self {
        self.max_tables_per_process = tables;
        self
    }

    /// How many bytes all shared tables together may hold (keys, values and the table's
    /// own bookkeeping per object). Default 256 MiB. Tables live outside every process's
    /// memory limit, so this bounds what guests can make the host keep: a write past it fails
    /// with the table error `system-limit` and changes nothing.
    pub fn max_table_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_table_bytes = bytes;
        self
    }

    /// How many SQL statements (and database opens) run at once in the whole node. Default:
    /// the number of cores, at least 2. Each runs on one of tokio's blocking threads, which
    /// WASI's file I/O shares: past this bound a statement waits its turn without taking a
    /// thread (only its process waits), so slow queries cannot starve the node's file I/O.
    /// At least 1, at most tokio's `Semaphore::MAX_PERMITS` (a manifest allows at most
    /// [`MAX_SQL_STATEMENTS`](crate::manifest::MAX_SQL_STATEMENTS)).
    pub fn max_sql_statements(&mut self, statements: usize) -> &mut Self {
        self.max_sql_statements = statements.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        self
    }

    /// How many OS descriptors guests may hold open in the whole node: files and
    /// directories opened through WASI, each WASI context's granted directories, TCP
    /// sockets, and three per SQLite connection (its database, journal and WAL index).
    /// Default: all the node's descriptor limit but a quarter of it, and never the last
    /// 256, which the node keeps for itself (its control socket, databases, compile cache,
    /// modules); the nodes of one program share it. `otter run` raises its soft
    /// `RLIMIT_NOFILE` to the hard limit first ([`raise_open_file_limit`](crate::raise_open_file_limit));
    /// a node never does. A larger value than that share is lowered to it, with a warning.
    ///
    /// When they are all held, a guest's WASI `open-at` fails with the error code `io`
    /// (what the OS's `EMFILE` gives a guest), a socket's creation with
    /// `new-socket-limit`, a database open with `too-many-connections`, and a granted
    /// directory a new WASI context cannot have is left out of it (with a warning, at most
    /// one a second per module); the process goes on. A descriptor gives its place back
    /// when it closes: dropped by the guest, or with its instance (the process exits or
    /// hibernates, or an upgrade is rolled back).
    pub fn max_guest_files(&mut self, files: usize) -> &mut Self {
        self.max_guest_files = Some(files);
        self
    }

    /// How long one callback may run its own code before the process is killed with the
    /// reason `timeout`; `None`: as long as it runs. Time spent waiting in an import (a
    /// `call`, a `sleep`) does not count. A process may lower or raise it with
    /// [`ProcessLimits::callback_timeout`](crate::ProcessLimits::callback_timeout). Default
    /// 30 s ([`DEFAULT_CALLBACK_TIMEOUT`](crate::DEFAULT_CALLBACK_TIMEOUT)); measured in
    /// [`EngineConfig::epoch_tick`]s, so it is as precise as one tick.
    pub fn callback_timeout(&mut self, limit: Option<Duration>) -> &mut Self {
        self.callback_timeout = limit;
        self
    }

    /// The most instances of one module the node keeps made ahead of its spawns, so that a
    /// spawn runs `init` at once instead of instantiating first (about a third of a spawn's
    /// time). Default [`DEFAULT_SPARE_INSTANCES`]; 0 makes none. A module's spares start at
    /// one, after its first spawn, and double each time a spawn finds none, up to this; each
    /// holds what an idle process does, less its task and mailbox (about 20 KiB for a small
    /// server). They are made by tasks on the node's runtime, and only for modules whose
    /// instantiation runs none of their code (no start function): what a spawn sees is the
    /// same either way. At most [`MAX_SPARE_INSTANCES`] (a larger value is cut to it).
    pub fn spare_instances(&mut self, most: usize) -> &mut Self {
        self.spare_instances = most.min(MAX_SPARE_INSTANCES);
        self
    }

    /// The engine's settings.
    pub fn engine(&mut self) -> &mut EngineConfig {
        &mut self.engine
    }
}
