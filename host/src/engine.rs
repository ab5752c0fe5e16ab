//! The wasmtime engine, how modules are compiled and checked, and the epoch clock.

use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, UpdateDeadline};

use crate::callbacks::CallbacksPre;
use crate::error::LoadError;
use crate::memory::MemoryLimit;
use crate::node::NodeInner;
use crate::process::ProcessCtx;

/// How long a module's code may run while it is loaded, unless [`EngineConfig::load_timeout`]
/// says otherwise.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest `max_wasm_stack` an engine may have (a manifest's `[node]` key, or [`EngineConfig`]'s setter, which clamps to it): 8 MiB, a Linux thread's default stack.
/// Every process reserves its stack slot (this plus the host's margin) up front, so a larger
/// one would make each process reserve address space for frames no server needs (100,000
/// processes at 8 MiB already reserve 800 GiB).
pub const MAX_WASM_STACK: usize = 8 << 20;

/// The smallest `max_wasm_stack` an engine may have (a manifest's `[node]` key, or [`EngineConfig`]'s setter, which clamps to it): 16 KiB. The SDK's own frames around a
/// callback need a few KiB; below this no server could run `init`.
pub const MIN_WASM_STACK: usize = 16 << 10;

/// The coarsest `epoch_tick_ms` an engine may have (a manifest's `[node]` key, or [`EngineConfig`]'s setter, which clamps to it): 100 ms. A callback that runs without
/// calling an import yields its thread only at a tick, so a coarser tick would let one busy
/// process hold up the others on its thread for longer than that.
pub const MAX_EPOCH_TICK: Duration = Duration::from_millis(100);

/// The longest `load_timeout_ms` an engine may have (a manifest's `[node]` key, or [`EngineConfig`]'s setter, which clamps to it): 10 minutes. A module is loaded before
/// the node starts its children and while a reload waits; one whose own code needs longer
/// to start is stuck, not slow.
pub const MAX_LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The finest epoch tick: a zero tick would have the clock's thread spin.
const MIN_EPOCH_TICK: Duration = Duration::from_micros(100);

/// How the engine is set up; every setter states its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub(crate) max_memory: usize,
    pub(crate) max_wasm_stack: usize,
    pub(crate) epoch_tick: Duration,
    pub(crate) load_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_memory: 16 << 20,
            max_wasm_stack: 128 << 10,
            epoch_tick: Duration::from_millis(1),
            load_timeout: DEFAULT_LOAD_TIMEOUT,
        }
    }
}

impl EngineConfig {
    /// A fiber's stack: the wasm stack plus room for the host frames below the deepest import.
    /// Those take at most about 20 KiB (see the hostile guest's stack test); the margin stays
    /// generous because an overrun would end the node on the guard page (see `pools`).
    pub(crate) fn async_stack_size(&self) -> usize {
        self.max_wasm_stack + (128 << 10)
    }

    /// The most linear memory one process may have. Default 16 MiB. A process that grows
    /// past it fails its allocation (a Rust guest then traps) and exits; nothing else does.
    /// A process's memory reserves 256 KiB of address space (not RAM) at first, and this much
    /// once it grows past that (it moves, once), so it also bounds how many large processes
    /// fit in the address space: 16 MiB × 100,000 is 1.6 TiB of the 128 TiB.
    pub fn max_memory(&mut self, bytes: usize) -> &mut Self {
        self.max_memory = bytes;
        self
    }

    /// The wasm stack one callback may use; deeper, the process exits `stack_overflow`.
    /// Default 128 KiB. Every process reserves this (and a margin for host frames) as
    /// address space up front. Clamped to [`MIN_WASM_STACK`]..=[`MAX_WASM_STACK`] (a
    /// manifest's `[node] max_wasm_stack` outside them is refused).
    pub fn max_wasm_stack(&mut self, bytes: usize) -> &mut Self {
        self.max_wasm_stack = bytes.clamp(MIN_WASM_STACK, MAX_WASM_STACK);
        self
    }

    /// How often a running callback yields to the scheduler; callback time limits are
    /// counted in these ticks. Default 1 ms. Clamped to 100 µs..=[`MAX_EPOCH_TICK`] (a
    /// manifest's `[node] epoch_tick_ms` past it is refused).
    pub fn epoch_tick(&mut self, tick: Duration) -> &mut Self {
        self.epoch_tick = tick.clamp(MIN_EPOCH_TICK, MAX_EPOCH_TICK);
        self
    }

    /// How long a module's own code may run while it is loaded: instantiating the throwaway
    /// instance that checks it against the process limits, and, for a module without the
    /// SDK's `otter-vsn` section, `vsn` on that instance. Past it the load fails
    /// ([`LoadError::Invalid`]). Compiling comes before and is not counted. Default 5 s
    /// ([`DEFAULT_LOAD_TIMEOUT`]); at most [`MAX_LOAD_TIMEOUT`] (a longer one is clamped; a
    /// manifest's `[node] load_timeout_ms` past it is refused).
    pub fn load_timeout(&mut self, limit: Duration) -> &mut Self {
        self.load_timeout = limit.min(MAX_LOAD_TIMEOUT);
        self
    }
}

/// An engine set up by `cfg`, and the pools its stacks and memories come from.
pub(crate) fn new_engine(cfg: &EngineConfig) -> anyhow::Result<(Engine, crate::pools::Pools)> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(cfg.max_wasm_stack);
    config.async_stack_size(cfg.async_stack_size());
    // Processes are many and small: each memory is a slot (of at most `max_memory` bytes) in a
    // shared region (see the `pools` module), with no virtual reservation or guard region of its own (those
    // exhaust address space and map count long before RAM), and no copy-on-write image
    // (4 kernel maps per instance; the slot allocator does not support images either). The
    // whole slot is accessible, so compiled code must check bounds against the memory's current
    // size: that is what a zero reservation and zero guard make it do. With memories that do
    // not move, a non-zero reservation would let it treat the whole reservation as
    // valid-or-trap, and the rest of a slot does not trap. Whether memories may move, the
    // pools decide: one that outgrows a small slot moves into a larger one.
    config.memory_reservation(0);
    config.memory_guard_size(0);
    config.guard_before_linear_memory(false);
    config.memory_init_cow(false);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    let pools = crate::pools::install(&mut config, cfg.async_stack_size(), cfg.max_memory);
    let engine = wasmtime::Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok((engine, pools))
}

/// Advances the engine's epoch every tick so running callbacks yield; stops when dropped.
pub(crate) struct EpochClock {
    stop: Arc<AtomicBool>,
}

impl EpochClock {
    pub(crate) fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("otter-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch thread");
        EpochClock { stop }
    }
}

impl Drop for EpochClock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A loaded, compiled and checked server module; shared by all its processes.
pub struct Module {
    name: String,
    vsn: String,
    path: PathBuf,
    /// SHA-256 of the bytes it was loaded from: an upgrade to the same bytes is refused.
    digest: [u8; 32],
    /// Whether it imports WASI (and so its processes take grants).
    wasi: bool,
    /// Whether instantiating it runs its code (see [`runs_code_when_instantiated`]).
    starts: bool,
    pub(crate) pre: CallbacksPre<ProcessCtx>,
    /// Its callback-duration histograms.
    pub(crate) metrics: crate::metering::ModuleMetrics,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("vsn", &self.vsn)
            .field("path", &self.path)
            .finish()
    }
}

impl Module {
    /// The name processes are started from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version the module reports (its `vsn` export).
    pub fn vsn(&self) -> &str {
        &self.vsn
    }

    /// Where it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SHA-256 of the bytes it was loaded from.
    pub(crate) fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Whether instantiating it runs guest code (a start function): then an instance cannot
    /// be made ahead of the spawn that needs it (see `node::spares`).
    pub(crate) fn runs_code_when_instantiated(&self) -> bool {
        self.starts
    }

    /// Whether it imports WASI.
    pub(crate) fn uses_wasi(&self) -> bool {
        self.wasi
    }
}

/// Refuse what cannot be an Otter guest, on every load (a cached compile is no reason to
/// skip it): bytes that are not wasm, and a core module without the WIT world the SDK
/// embeds in a `component-type` section (it would wrap into an empty component, refused
/// later only for what it lacks).
fn precheck(bytes: &[u8]) -> Result<(), String> {
    if wasmparser::Parser::is_component(bytes) {
        return Ok(());
    }
    if !wasmparser::Parser::is_core_wasm(bytes) {
        return Err("not a WebAssembly module or component".into());
    }
    if has_component_type(bytes) {
        return Ok(());
    }
    // A module cut before its section (the section comes last) is invalid first.
    wasmparser::Validator::new()
        .validate_all(bytes)
        .map_err(|e| format!("not a valid WebAssembly module: {e}"))?;
    Err(
        "a core module that is not an Otter guest: it embeds no WIT world \
         (build it with otter-guest)"
            .into(),
    )
}

/// A component's bytes: components as they are, a core module built with the SDK wrapped
/// into a component by its embedded WIT. [`precheck`] has passed.
pub(crate) fn to_component(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if wasmparser::Parser::is_component(bytes) {
        return Ok(bytes.to_vec());
    }
    // The encoder trusts the module to be well formed (a truncated one makes it slice past
    // the end), so the whole module is checked first.
    wasmparser::Validator::new()
        .validate_all(bytes)
        .map_err(|e| format!("not a valid WebAssembly module: {e}"))?;
    // And should it still panic on some input, that input is refused, not the node ended.
    let wrapped = std::panic::catch_unwind(|| {
        wit_component::ComponentEncoder::default()
            .module(bytes)
            .and_then(|e| e.validate(true).encode())
    })
    .map_err(|panic| {
        tracing::error!(
            panic = panic_message(&*panic),
            "the component encoder panicked"
        );
        "the component encoder failed on this module (see the log)".to_owned()
    })?;
    wrapped.map_err(|e| {
        format!("a core module that is not an Otter guest (build it with otter-guest): {e:#}")
    })
}

/// Whether a core module carries a `component-type` custom section (a malformed one ends
/// the walk: then it has none).
fn has_component_type(bytes: &[u8]) -> bool {
    wasmparser::Parser::new(0).parse_all(bytes).any(|payload| {
        matches!(payload, Ok(wasmparser::Payload::CustomSection(c))
            if c.name().starts_with("component-type"))
    })
}

/// Whether instantiating the module runs any of its code: a start function in the module or
/// in any core module or the component (a component runs a core module's `_initialize` as
/// one), or, in a core module the encoder wraps, an `_initialize` export (which the wrapping
/// turns into a start function). Bytes that do not parse are taken to run code.
fn runs_code_when_instantiated(bytes: &[u8]) -> bool {
    use wasmparser::Payload;
    let core = wasmparser::Parser::is_core_wasm(bytes);
    wasmparser::Parser::new(0)
        .parse_all(bytes)
        .any(|payload| match payload {
            Ok(Payload::StartSection { .. } | Payload::ComponentStartSection { .. }) | Err(_) => {
                true
            }
            Ok(Payload::ExportSection(exports)) if core => exports
                .into_iter()
                .any(|e| e.map_or(true, |e| e.name == "_initialize")),
            Ok(_) => false,
        })
}

/// What a caught panic said, for the log.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The version in the module's `otter-vsn` custom section (in a core module or in any core
/// module of a component), if there is one.
///
/// # Errors
/// If the section is longer than [`otter_common::MAX_VSN`] bytes, not UTF-8, or there are
/// two of them.
fn vsn_section(bytes: &[u8]) -> Result<Option<String>, String> {
    let mut found = None;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::CustomSection(section)) = payload else {
            continue;
        };
        if section.name() != otter_common::VSN_SECTION {
            continue;
        }
        let data = section.data();
        if data.len() > otter_common::MAX_VSN {
            return Err(format!(
                "its {} section is {} bytes long (at most {})",
                otter_common::VSN_SECTION,
                data.len(),
                otter_common::MAX_VSN
            ));
        }
        let vsn = std::str::from_utf8(data)
            .map_err(|_| format!("its {} section is not UTF-8", otter_common::VSN_SECTION))?;
        if found.replace(vsn.to_owned()).is_some() {
            return Err(format!(
                "it has more than one {} section",
                otter_common::VSN_SECTION
            ));
        }
    }
    Ok(found)
}

/// Instantiate a module once, on a throwaway instance that is no process, so that one its
/// processes could never instantiate (too many memories or tables, too much initial memory)
/// is refused at load; and, for a module without an `otter-vsn` section (one not built with
/// the SDK's macro), ask it for its version there (`ask_vsn`). Every import of that instance
/// traps, its memory is capped as a process's, and instantiating it and `vsn` together get
/// `limit`: its code yields at every epoch tick, so the deadline is checked even while it
/// spins.
async fn try_instance(
    engine: &Engine,
    component: &Component,
    limit: Duration,
    max_memory: usize,
    ask_vsn: bool,
) -> Result<Option<String>, String> {
    // A limit too far to add to now (an embedder's `Duration::MAX`) is no deadline: ~34 years.
    let now = tokio::time::Instant::now();
    let deadline = now
        .checked_add(limit)
        .unwrap_or_else(|| now + Duration::from_secs(1 << 30));
    let late = |what: &str| format!("{what} within {}", show_limit(limit));
    let mut linker = Linker::<MemoryLimit>::new(engine);
    linker
        .define_unknown_imports_as_traps(component)
        .map_err(|e| format!("imports what Otter does not provide: {e:#}"))?;
    let limits = MemoryLimit::new(max_memory, Default::default());
    let mut store = Store::new(engine, limits);
    store.limiter(|limits| limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    let instance = tokio::time::timeout_at(
        deadline,
        crate::callbacks::instantiate_checked(&mut store, component, &linker),
    )
    .await
    .map_err(|_| late("instantiation did not finish"))?
    .map_err(|e| {
        let why = crate::trap::load_reason(store.data(), &e);
        format!("cannot be instantiated: {why}")
    })?;
    if !ask_vsn {
        return Ok(None);
    }
    let vsn = tokio::time::timeout_at(deadline, instance.call_vsn(&mut store))
        .await
        .map_err(|_| late("vsn() did not return"))?
        .map_err(|e| {
            format!(
                "vsn() failed: {}",
                crate::trap::load_reason(store.data(), &e)
            )
        })?;
    if vsn.len() > otter_common::MAX_VSN {
        return Err(format!(
            "vsn() returned {} bytes (at most {})",
            vsn.len(),
            otter_common::MAX_VSN
        ));
    }
    Ok(Some(vsn))
}

/// `5 s`, `250 ms`: a time limit as messages show it.
fn show_limit(limit: Duration) -> String {
    if limit.subsec_nanos() == 0 {
        format!("{} s", limit.as_secs())
    } else {
        format!("{} ms", limit.as_millis())
    }
}

/// The version of the WIT package `otter:genserver` (wit/) this host implements. A module
/// must have been built for exactly this one: the package is 0.x, where any release may
/// change what a built guest must provide.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Refuse a component built for another version of the contract by saying so, rather than
/// with the type mismatch linking would find.
fn check_contract(engine: &Engine, component: &Component) -> Result<(), String> {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, _)| name);
    for name in imports.chain(ty.exports(engine).map(|(name, _)| name)) {
        let Some(interface) = name.strip_prefix("otter:genserver/") else {
            continue;
        };
        let version = interface.split_once('@').map(|(_, v)| v);
        if version != Some(CONTRACT_VERSION) {
            let theirs = version.map_or("(no version)".into(), |v| {
                crate::guest_text::one_line(v, 32)
            });
            return Err(format!(
                "built for otter:genserver@{theirs}, and this node speaks \
                 otter:genserver@{CONTRACT_VERSION}: rebuild it with the matching otter-guest"
            ));
        }
    }
    Ok(())
}

/// Compile `bytes` (a component, or a core module built with the SDK, which is wrapped into a
/// component here), check it against the contract and the process limits, and read its
/// version: from its `otter-vsn` section if it has one, else from its `vsn` export (see
/// [`try_instance`]).
pub(crate) async fn compile(
    node: &NodeInner,
    name: &str,
    path: &Path,
    bytes: &[u8],
) -> Result<Module, LoadError> {
    let (engine, limit) = (&node.engine, node.config.engine.load_timeout);
    let invalid = |reason: String| LoadError::Invalid {
        path: path.to_owned(),
        reason,
    };
    // Compiling takes a while and cannot be interrupted: it runs off the async workers, so
    // they go on serving and a caller that stops waiting (a signal during `otter run`) is not
    // held up by it.
    let compiling = {
        let (cache, engine, bytes) = (node.cache.clone(), engine.clone(), bytes.to_vec());
        tokio::task::spawn_blocking(move || {
            // Before the cache: a cached compile is no reason to skip it.
            precheck(&bytes).map_err(wasmtime::Error::msg)?;
            cache.get_or_compile(&engine, &bytes, || {
                let component = to_component(&bytes).map_err(wasmtime::Error::msg)?;
                Component::new(&engine, &component)
            })
        })
    };
    let component = compiling
        .await
        .map_err(|e| {
            if let Ok(panic) = e.try_into_panic() {
                tracing::error!(
                    panic = panic_message(&*panic),
                    "compiling a module panicked"
                );
            }
            invalid("the compiler failed on this module (see the log)".into())
        })?
        .map_err(|e| invalid(format!("{e:#}")))?;
    check_contract(engine, &component).map_err(&invalid)?;
    // Only a module that imports WASI is linked with it.
    let wasi = crate::host::wasi::imports_wasi(engine, &component);
    let linker = if wasi {
        match node.wasi_linker.get() {
            Some(l) => l,
            None => {
                let made = crate::host::wasi::linker(engine)
                    .map_err(|e| invalid(format!("cannot link WASI: {e:#}")))?;
                node.wasi_linker.get_or_init(|| made)
            }
        }
    } else {
        &node.linker
    };
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| invalid(format!("imports what Otter does not provide: {e:#}")))?;
    let pre = CallbacksPre::new(pre)
        .map_err(|e| invalid(format!("does not export otter:genserver/server: {e}")))?;
    let section = vsn_section(bytes).map_err(&invalid)?;
    let asked = try_instance(
        engine,
        &component,
        limit,
        node.config.engine.max_memory,
        section.is_none(),
    )
    .await
    .map_err(|why| {
        tracing::debug!(path = %path.display(), %why, "the trial instance failed");
        invalid(why)
    })?;
    let vsn = section.or(asked).unwrap_or_default();
    Ok(Module {
        name: name.to_owned(),
        vsn,
        path: path.to_owned(),
        digest: sha2::Sha256::digest(bytes).into(),
        wasi,
        starts: runs_code_when_instantiated(bytes),
        pre,
        metrics: Default::default(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A core module of one function, exported as `export` if given, started if `start`.
    pub(crate) fn core_module(export: Option<&str>, start: bool) -> wasm_encoder::Module {
        use wasm_encoder::{
            CodeSection, ExportKind, ExportSection, Function, FunctionSection, StartSection,
            TypeSection,
        };
        let mut module = wasm_encoder::Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], []);
        module.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        module.section(&funcs);
        if let Some(name) = export {
            let mut exports = ExportSection::new();
            exports.export(name, ExportKind::Func, 0);
            module.section(&exports);
        }
        if start {
            module.section(&StartSection { function_index: 0 });
        }
        let mut code = CodeSection::new();
        let mut body = Function::new([]);
        body.instructions().end();
        code.function(&body);
        module.section(&code);
        module
    }

    /// A component holding `module`.
    fn component(module: &wasm_encoder::Module) -> Vec<u8> {
        let mut component = wasm_encoder::Component::new();
        component.section(&wasm_encoder::ModuleSection(module));
        component.finish()
    }

    #[test]
    fn a_module_runs_code_when_instantiated_only_with_a_start_function_or_initialize() {
        let plain = core_module(Some("f"), false);
        assert!(!runs_code_when_instantiated(&plain.clone().finish()));
        assert!(!runs_code_when_instantiated(&component(&plain)));
        let started = core_module(None, true);
        assert!(runs_code_when_instantiated(&started.clone().finish()));
        // In a component, a core module's start function runs too.
        assert!(runs_code_when_instantiated(&component(&started)));
        // A core module's `_initialize` becomes a start function when it is wrapped.
        assert!(runs_code_when_instantiated(
            &core_module(Some("_initialize"), false).finish()
        ));
        assert!(runs_code_when_instantiated(b"\0asm\x01\0\0\0\x05garbage"));
    }

    #[test]
    fn engine_settings_out_of_range_are_clamped_not_taken() {
        let mut c = EngineConfig::default();
        c.max_wasm_stack(usize::MAX)
            .epoch_tick(Duration::ZERO)
            .load_timeout(Duration::MAX);
        assert_eq!(
            c.max_wasm_stack, MAX_WASM_STACK,
            "async_stack_size would overflow"
        );
        assert_eq!(c.async_stack_size(), MAX_WASM_STACK + (128 << 10));
        assert_eq!(
            c.epoch_tick, MIN_EPOCH_TICK,
            "a zero tick would spin the clock"
        );
        assert_eq!(c.load_timeout, MAX_LOAD_TIMEOUT);
        c.max_wasm_stack(0).epoch_tick(Duration::MAX);
        assert_eq!(
            (c.max_wasm_stack, c.epoch_tick),
            (MIN_WASM_STACK, MAX_EPOCH_TICK)
        );
    }

    #[test]
    fn the_contract_version_is_the_wit_package_s() {
        for (file, text) in [
            ("genserver.wit", include_str!("../../wit/genserver.wit")),
            ("server.wit", include_str!("../../wit/server.wit")),
            ("types.wit", include_str!("../../wit/types.wit")),
        ] {
            let package = format!("package otter:genserver@{};", super::CONTRACT_VERSION);
            assert!(
                text.contains(&package),
                "wit/{file} declares another version"
            );
        }
    }
}
