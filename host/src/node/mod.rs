//! A node: the process table, the registries, loaded modules, and the API to talk to
//! processes from Rust.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::Pid;
use crate::cache::CompileCache;
use crate::dest::Dest;
use crate::engine::{EpochClock, Module};
use crate::entry::ProcessEntry;
use crate::error::{
    CallError, GetStateError, LoadError, ReplaceStateError, ResumeError, SendError, StartError,
    StopError, SuspendError,
};
use crate::exit::ExitReason;
use crate::grants::ModuleGrants;
use crate::mailbox::Signal;
use crate::process::ProcessCtx;
use crate::registry::{Names, Registries};
use crate::supervisor::Supervisor;
use crate::term::{Term, decode, encode};

mod call_timers;
mod config;
mod descriptors;
mod exit;
mod grants;
mod guest_log;
mod names;
mod options;
mod routing;
mod spares;
mod spawn;
mod supervisors;

pub use crate::entry::ProcessInfo;
pub use config::{DEFAULT_SPARE_INSTANCES, MAX_SPARE_INSTANCES, NodeConfig};
pub(crate) use exit::ExitGuard;
pub use guest_log::{GuestLogLine, LogLevel};
pub use options::SpawnOptions;
pub use spares::SpareInstances;
pub(crate) use spawn::spawn;

/// OTP's default call timeout.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct NodeInner {
    pub(crate) engine: Engine,
    pools: crate::pools::Pools,
    pub(crate) linker: Linker<ProcessCtx>,
    /// The linker of modules that import WASI, made when the first is loaded.
    pub(crate) wasi_linker: std::sync::OnceLock<Linker<ProcessCtx>>,
    /// What each module's processes may reach through WASI, by module name.
    grants: RwLock<HashMap<String, Arc<ModuleGrants>>>,
    pub(crate) config: NodeConfig,
    pub(crate) cache: CompileCache,
    modules: RwLock<HashMap<String, Arc<Module>>>,
    /// Keyed by pid with FxHash: pids are the node's own counter, not attacker-chosen, and
    /// every message looks its target up here.
    processes: DashMap<Pid, Arc<ProcessEntry>, rustc_hash::FxBuildHasher>,
    /// Processes out of the table whose exit is still being announced (`exit.rs`): a
    /// `wait_exit` for one meanwhile returns after its supervisor and links are told.
    exiting: DashMap<Pid, Arc<ProcessEntry>, rustc_hash::FxBuildHasher>,
    pub(crate) names: Names,
    pub(crate) registries: Registries,
    /// Shared tables (ETS).
    pub(crate) tables: crate::table::Tables,
    /// Running supervisors by pid, so a name or pid reaches them (they are not processes).
    /// Changed only through `insert_supervisor` and `remove_supervisor`, which keep
    /// `population`.
    supervisors: DashMap<Pid, Supervisor>,
    /// Processes in the table plus supervisors: what `max_processes` limits. Kept beside the
    /// maps because their `len` takes every shard's lock, and every spawn asks.
    population: AtomicUsize,
    next_pid: AtomicU64,
    next_ref: AtomicU64,
    /// Modules being upgraded and whether a release is being installed: a second upgrade
    /// of one, or one during a reload, is refused until the first ends.
    pub(crate) upgrading: std::sync::Mutex<Upgrading>,
    /// What guests logged, kept once [`Node::keep_guest_log`] asks.
    pub(crate) guest_log: std::sync::OnceLock<guest_log::GuestLog>,
    /// Turns to run a SQL statement ([`NodeConfig::max_sql_statements`]).
    pub(crate) sql_turns: Arc<tokio::sync::Semaphore>,
    /// The descriptors guests may hold ([`NodeConfig::max_guest_files`]).
    pub(crate) descriptors: Arc<crate::descriptors::DescriptorBudget>,
    /// Timers of calls from Rust code, kept for reuse.
    call_timers: call_timers::CallTimers,
    /// Instances made ahead of spawns.
    pub(crate) spares: spares::Spares,
    _clock: EpochClock,
}

/// What is changing code on the node now; `upgrade/slot.rs` takes and releases it.
#[derive(Debug, Default)]
pub(crate) struct Upgrading {
    /// Modules being upgraded.
    pub(crate) modules: std::collections::HashSet<String>,
    /// Whether a release is being installed.
    pub(crate) reloading: bool,
}

/// What the process pools hold in RAM ([`Node::pool_residency`]), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolResidency {
    /// Resident pages of linear memories.
    pub memories: usize,
    /// Resident pages of fiber stacks.
    pub stacks: usize,
}

/// A running Otter node. Cheap to clone; every clone is the same node.
///
/// It must be created and used inside a tokio runtime.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use otter::{Node, SpawnOptions};
/// let node = Node::new(Default::default())?;
/// node.load_module("echo", "echo.wasm").await?;
/// let pid = node.spawn("echo", otter::encode(&())?, SpawnOptions::default().name("echo")).await?;
/// let pong: serde_json::Value = node.call("echo", &"ping").await?;
/// node.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
    /// Shared by every clone: when the last goes, the spare instances, which hold the node,
    /// go too (see `spares`).
    _handle: Arc<Handle>,
}

/// What the last [`Node`] handle does when it goes.
struct Handle(std::sync::Weak<NodeInner>);

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.spares.close();
        }
    }
}

impl Node {
    /// A node with its engine and epoch clock.
    ///
    /// # Errors
    /// If wasmtime rejects the engine configuration.
    pub fn new(config: NodeConfig) -> anyhow::Result<Node> {
        let (engine, pools) = crate::engine::new_engine(&config.engine)?;
        let linker = crate::host::linker(&engine)?;
        let clock = EpochClock::start(engine.clone(), config.engine.epoch_tick);
        let tables = crate::table::Tables::new(crate::table::TableLimits {
            tables: config.max_tables,
            tables_per_process: config.max_tables_per_process,
            bytes: config.max_table_bytes,
            term: config.max_message_size,
        });
        let sql_turns = Arc::new(tokio::sync::Semaphore::new(config.max_sql_statements));
        let descriptors = descriptors::guest_files(&config);
        let spares = spares::Spares::new(config.spare_instances);
        let inner = Arc::new(NodeInner {
            engine,
            pools,
            linker,
            wasi_linker: Default::default(),
            grants: Default::default(),
            cache: CompileCache::new(config.compile_cache.clone()),
            config,
            modules: RwLock::default(),
            processes: DashMap::default(),
            exiting: DashMap::default(),
            names: Names::default(),
            registries: Registries::default(),
            tables,
            supervisors: DashMap::new(),
            population: AtomicUsize::new(0),
            next_pid: AtomicU64::new(1),
            next_ref: AtomicU64::new(1),
            upgrading: Default::default(),
            guest_log: Default::default(),
            sql_turns,
            descriptors,
            call_timers: Default::default(),
            spares,
            _clock: clock,
        });
        Ok(Node {
            _handle: Arc::new(Handle(Arc::downgrade(&inner))),
            inner,
        })
    }

    /// Load, compile and check a module from a file, under `name`. Replaces nothing if it
    /// fails. Only a regular file of at most [`MAX_MODULE_BYTES`](crate::MAX_MODULE_BYTES)
    /// is read (a FIFO or a device would block or never end).
    ///
    /// # Errors
    /// [`LoadError`] naming the file and what is wrong with it.
    pub async fn load_module(
        &self,
        name: &str,
        path: impl AsRef<Path>,
    ) -> Result<Arc<Module>, LoadError> {
        let path = path.as_ref();
        let bytes = crate::file::read_regular_async(path, crate::file::MAX_MODULE_BYTES)
            .await
            .map_err(|source| LoadError::Io {
                path: path.to_owned(),
                source,
            })?;
        self.load_module_bytes(name, path, &bytes).await
    }

    /// Load a module from bytes; `path` is only used in messages.
    ///
    /// # Errors
    /// [`LoadError::Invalid`] if the bytes are not a valid module or not an Otter server, or
    /// if instantiating it and its `vsn` take longer than [`EngineConfig::load_timeout`].
    ///
    /// [`EngineConfig::load_timeout`]: crate::EngineConfig::load_timeout
    pub async fn load_module_bytes(
        &self,
        name: &str,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Arc<Module>, LoadError> {
        let module = crate::engine::compile(&self.inner, name, path, bytes).await?;
        let module = Arc::new(module);
        self.inner
            .modules
            .write()
            .expect("module table lock")
            .insert(name.to_owned(), module.clone());
        // The spares of a module this one replaces are of no use any more.
        self.inner.spares.forget(name, &module);
        Ok(module)
    }

    /// The module loaded under `name`.
    pub fn module(&self, name: &str) -> Option<Arc<Module>> {
        self.inner.module(name)
    }

    /// Start a process of `module` with CBOR `args`; returns once `init` has returned.
    ///
    /// # Errors
    /// [`StartError`]: the name is taken, `init` returned ignore or stop or crashed, or the
    /// start timed out (the process is then gone).
    ///
    /// # Cancel safety
    /// Dropping the future while `init` runs does not stop the process: it finishes `init` and
    /// runs on, as an OTP `gen_server:start` does when its caller gives up; but its start
    /// timeout, which this future enforces, no longer applies. A named process can be found
    /// with [`Node::whereis`] and stopped.
    pub async fn spawn(
        &self,
        module: &str,
        args: Term,
        opts: SpawnOptions,
    ) -> Result<Pid, StartError> {
        let module = self
            .inner
            .module(module)
            .ok_or_else(|| StartError::UnknownModule(module.to_owned()))?;
        spawn(&self.inner, module, args, opts).await
    }

    /// Call a server with a serde request and decode its reply, waiting up to 5 s.
    ///
    /// # Errors
    /// [`CallError`]: timeout, noproc, the server exited or could not decode the request,
    /// the request did not encode ([`CallError::Encode`]), or the reply is not an `R`.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the call; the server's reply is then dropped.
    pub async fn call<Req: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        dest: impl Into<Dest>,
        request: &Req,
    ) -> Result<R, CallError> {
        let request = encode(request).map_err(CallError::Encode)?;
        let reply = self
            .call_term(dest, request, Some(DEFAULT_CALL_TIMEOUT))
            .await?;
        decode(&reply)
            .map_err(|e| CallError::BadReply(crate::guest_text::escaped(&e.0).into_owned()))
    }

    /// Call with a CBOR request and timeout (`None` waits forever).
    ///
    /// # Errors
    /// As [`Node::call`].
    pub async fn call_term(
        &self,
        dest: impl Into<Dest>,
        request: Term,
        timeout: Option<Duration>,
    ) -> Result<Term, CallError> {
        self.inner
            .call_from(0, &dest.into(), request, timeout)
            .await
    }

    /// Cast a CBOR request. Never fails, as in OTP.
    pub fn cast(&self, dest: impl Into<Dest>, request: Term) {
        self.inner.cast(&dest.into(), request)
    }

    /// Send a plain CBOR message to `handle_info`.
    ///
    /// # Errors
    /// [`SendError::NoProc`] for a name nobody holds (a dead pid is not an error);
    /// [`SendError::Badarg`] for a message over the size limit; [`SendError::Registry`].
    pub fn send(&self, dest: impl Into<Dest>, msg: Term) -> Result<(), SendError> {
        self.inner.send(&dest.into(), msg)
    }

    /// Stop a process with `reason`: `terminate(reason)` runs and the process is gone when
    /// this returns `Ok`.
    ///
    /// # Errors
    /// [`StopError::NoProc`]; [`StopError::Timeout`] if `terminate` is still running after
    /// `timeout` (the process is not killed).
    pub async fn stop(
        &self,
        dest: impl Into<Dest>,
        reason: ExitReason,
        timeout: Option<Duration>,
    ) -> Result<(), StopError> {
        let entry = self.inner.resolve(&dest.into()).ok_or(StopError::NoProc)?;
        let exited = self.inner.watch(&entry);
        if entry.mailbox.signal(Signal::Stop(reason)).is_err() {
            return Err(StopError::NoProc);
        }
        let wait = async {
            let _ = exited.await;
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, wait)
                .await
                .map_err(|_| StopError::Timeout),
            None => {
                wait.await;
                Ok(())
            }
        }
    }

    /// Kill a process: it exits `killed` at once, without `terminate`. Returns whether it
    /// was alive.
    pub fn kill(&self, dest: impl Into<Dest>) -> bool {
        match self.inner.resolve(&dest.into()) {
            Some(entry) => {
                entry.kill();
                true
            }
            None => false,
        }
    }

    /// Send an exit signal, as Erlang's `exit(Pid, Reason)`: [`ExitReason::Killed`] ends the
    /// process without `terminate` even if it traps exits; `Normal` is ignored unless it
    /// traps exits; any other reason ends a process that does not trap exits (without
    /// `terminate`) and reaches one that does as an `exit` info. Returns whether it was alive.
    pub fn exit(&self, pid: Pid, reason: ExitReason) -> bool {
        let alive = self.is_alive(pid);
        self.inner.exit_signal(0, pid, reason);
        alive
    }

    /// Wait until a process exits and return its reason (`NoProc` if it is not alive). It
    /// returns once the exit has been told to everyone else: its supervisor, its monitors
    /// (their `DOWN` messages queued), its links and the callers it left unanswered.
    pub async fn wait_exit(&self, pid: Pid) -> ExitReason {
        match self.inner.watchable(pid) {
            Some(entry) => self.inner.watch(&entry).await.unwrap_or(ExitReason::NoProc),
            None => ExitReason::NoProc,
        }
    }

    /// The pid registered under `name`.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.inner.whereis(name)
    }

    /// Every local name and the pid holding it, by name (Erlang's `registered/0`, with the
    /// pids); supervisors' names included.
    pub fn registered(&self) -> Vec<(String, Pid)> {
        self.inner.names.all()
    }

    /// Whether a process is hibernating.
    pub fn is_hibernating(&self, pid: Pid) -> bool {
        self.inner.entry(pid).is_some_and(|e| e.is_hibernating())
    }

    /// Whether a process is alive.
    pub fn is_alive(&self, pid: Pid) -> bool {
        self.inner.processes.contains_key(&pid)
    }

    /// A process's state, exported as CBOR (works while it hibernates; a hibernating
    /// process whose state an older version wrote is migrated by its new version first,
    /// and hibernates again).
    ///
    /// # Errors
    /// [`GetStateError::NoProc`]; [`GetStateError::Exited`] if it died first.
    pub async fn get_state(&self, dest: impl Into<Dest>) -> Result<Term, GetStateError> {
        let entry = self
            .inner
            .resolve(&dest.into())
            .ok_or(GetStateError::NoProc)?;
        let (tx, rx) = oneshot::channel();
        entry
            .mailbox
            .signal(Signal::GetState(tx))
            .map_err(|_| GetStateError::NoProc)?;
        match rx.await {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(e)) => Err(GetStateError::Exited(ExitReason::Error(e))),
            Err(_) => Err(GetStateError::Exited(entry.exit_reason())),
        }
    }

    /// Replace a process's state (OTP's `sys:replace_state`) with CBOR `state`, and return
    /// the state it then holds (as it exports it). The process's `restore-state` takes the
    /// state between two callbacks, also while it is suspended; a hibernating process stays
    /// hibernating. Nothing else about the process changes: its mailbox, timers, links,
    /// monitors and name are untouched.
    ///
    /// ```no_run
    /// # async fn demo(node: otter::Node) -> Result<(), otter::ReplaceStateError> {
    /// let state = otter::encode(&serde_json::json!({"count": 41})).unwrap();
    /// node.replace_state("counter", state).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ReplaceStateError::Refused`] if the state does not fit the process (for an SDK
    /// guest: does not decode as its state type); its state is then unchanged and it goes
    /// on. [`ReplaceStateError::NoProc`]; [`ReplaceStateError::Badarg`] if the state is over
    /// the node's maximum message size; [`ReplaceStateError::Exited`] if it exited first or
    /// crashed taking the state.
    ///
    /// # Cancel safety
    /// Dropping the future does not withdraw the request: the state may still be replaced.
    pub async fn replace_state(
        &self,
        dest: impl Into<Dest>,
        state: Term,
    ) -> Result<Term, ReplaceStateError> {
        self.inner
            .check_size("state", &state)
            .map_err(ReplaceStateError::Badarg)?;
        let entry = self
            .inner
            .resolve(&dest.into())
            .ok_or(ReplaceStateError::NoProc)?;
        let (reply, rx) = oneshot::channel();
        entry
            .mailbox
            .signal(Signal::ReplaceState { state, reply })
            .map_err(|_| ReplaceStateError::NoProc)?;
        match rx.await {
            Ok(answer) => answer,
            Err(_) => Err(ReplaceStateError::Exited(entry.exit_reason())),
        }
    }

    /// Suspend a process (OTP's `sys:suspend`): it handles only signals (`get_state`, stop,
    /// resume) until resumed; calls to it time out and messages queue in order.
    ///
    /// # Errors
    /// [`SuspendError::NoProc`].
    pub fn suspend(&self, dest: impl Into<Dest>) -> Result<(), SuspendError> {
        self.signal(dest.into(), Signal::Suspend)
            .ok_or(SuspendError::NoProc)
    }

    /// Resume a suspended process; it handles the queued messages in arrival order.
    ///
    /// # Errors
    /// [`ResumeError::NoProc`].
    pub fn resume(&self, dest: impl Into<Dest>) -> Result<(), ResumeError> {
        self.signal(dest.into(), Signal::Resume)
            .ok_or(ResumeError::NoProc)
    }

    /// Signal a live process; `None` if there is none.
    fn signal(&self, dest: Dest, signal: Signal) -> Option<()> {
        let entry = self.inner.resolve(&dest)?;
        entry.mailbox.signal(signal).ok()
    }

    /// What `ps` shows of one live process.
    pub fn process_info(&self, pid: Pid) -> Option<ProcessInfo> {
        self.inner.entry(pid).map(|e| e.info())
    }

    /// Every live process.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        let mut all: Vec<ProcessInfo> = self
            .inner
            .processes
            .iter()
            .map(|e| e.value().info())
            .collect();
        all.sort_by_key(|p| p.pid);
        all
    }

    /// Each live process's module name and mailbox length, without copying the table (for
    /// the metrics endpoint).
    pub(crate) fn for_each_process(&self, mut f: impl FnMut(&str, usize)) {
        for e in self.inner.processes.iter() {
            let entry = e.value();
            let module = entry.module();
            f(
                module
                    .as_ref()
                    .map_or(crate::entry::EMBEDDED_MODULE, |m| m.name()),
                entry.mailbox.queued(),
            );
        }
    }

    /// Each registered name and its holder, in no particular order, without copying the
    /// name table (for the metrics endpoint); see `Names::for_each`.
    pub(crate) fn for_each_registered(&self, f: impl FnMut(&str, Pid)) {
        self.inner.names.for_each(f);
    }

    /// How many processes are alive.
    pub fn process_count(&self) -> usize {
        self.inner.processes.len()
    }

    /// The most fiber stack any process has used so far, in bytes, rounded up to pages: its
    /// wasm frames and the host frames of the imports it called. A process's stack holds
    /// `EngineConfig::max_wasm_stack` of wasm frames and 128 KiB more for host frames; this
    /// shows how much of that was ever needed. Processes that stopped count until their stack's
    /// pages go back to the kernel (a node keeps up to 1024 released stacks).
    pub fn fiber_stack_high_water(&self) -> usize {
        self.inner.pools.deepest_stack()
    }

    /// What the process pools hold in RAM now: the pages of linear memories and of fiber
    /// stacks that are resident, in bytes. Released slots the node keeps warm for reuse count
    /// too; the slots prepared ahead of spawns (see "Operating a node" in the README) do not
    /// (while spawns go on, a slot may be prepared or taken during the count). The rest of a
    /// process's footprint is host heap (its store, instance and mailbox).
    ///
    /// A diagnostic: it reads the page tables of every slot ever handed out (one `mincore`
    /// per GiB of them: 1,600 calls for 100,000 processes with the default 16 MiB memory
    /// cap), without holding up spawns and exits.
    ///
    /// ```no_run
    /// # async fn demo(node: otter::Node) {
    /// let pools = node.pool_residency();
    /// println!("{} KiB of linear memory, {} KiB of stacks", pools.memories >> 10, pools.stacks >> 10);
    /// # }
    /// ```
    pub fn pool_residency(&self) -> PoolResidency {
        let (memories, stacks) = self.inner.pools.resident();
        PoolResidency { memories, stacks }
    }

    /// What the node's spare instances are doing: how many wait for a spawn, and how many
    /// have been made and taken (see [`NodeConfig::spare_instances`]).
    pub fn spare_instances(&self) -> SpareInstances {
        self.inner.spares.counts()
    }

    /// Stop every supervision tree (root supervisors newest first, each stopping its tree in
    /// reverse start order), then every other process, newest first, each with
    /// `terminate(shutdown)` and up to 5 s.
    pub async fn shutdown(&self) {
        self.inner.spares.close();
        // Supervisors first: one still running would restart the children stopped below it.
        let mut roots: Vec<Supervisor> = self
            .inner
            .supervisors
            .iter()
            .filter(|s| s.value().is_root())
            .map(|s| s.value().clone())
            .collect();
        roots.sort_unstable_by_key(|s| std::cmp::Reverse(s.pid()));
        for sup in roots {
            sup.stop().await;
        }
        let mut pids: Vec<Pid> = self.inner.processes.iter().map(|e| *e.key()).collect();
        pids.sort_unstable_by(|a, b| b.cmp(a));
        for pid in pids {
            if self
                .stop(
                    pid,
                    ExitReason::Shutdown,
                    Some(crate::supervisor::DEFAULT_SHUTDOWN_TIMEOUT),
                )
                .await
                == Err(StopError::Timeout)
            {
                self.kill(pid);
            }
        }
    }
}
