//! WASI (preview 2) for the modules that import it, built on `wasmtime-wasi` and limited by
//! the module's [`ModuleGrants`].
//!
//! A module without WASI imports is linked without it, and its processes never build a
//! WASI context: their store data holds an empty `Option<Box<_>>`. A WASI process builds
//! its context from the grants it started with (its own, or its module's at the time) the
//! first time it calls a WASI import, and again for each new instance (after hibernation
//! or an upgrade), so no handle a guest opened outlives its instance. An upgrade sets the
//! old instance's state aside and gives it back if it fails (`process/resources.rs`). Its
//! directories are reopened each time through the handles pinned when the grants were
//! given, never by their paths (see [`crate::grants`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{
    Deterministic, FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder,
    WasiCtxView, WasiView,
};

use super::open_files::OpenFiles;
use super::stdio::{GuestOutput, Stream};
use crate::descriptors::{DescriptorBudget, DescriptorToken};
use crate::grants::{DirMode, ModuleGrants};
use crate::host::ProcessCtx;

/// The most random bytes one call may ask for when `random` is granted (wasmtime-wasi's own
/// bound is 64 MiB, which a guest could make the host allocate in a loop).
const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// The most WASI resources (open files and directories, streams, sockets, pollables) one
/// process may hold at once; wasmtime's own bound is a million, which would let one guest
/// take the node's file descriptors. Past it the call traps and the process exits. The
/// files of all processes together are bounded by the node's budget
/// ([`crate::descriptors`]).
pub(crate) const MAX_WASI_RESOURCES: usize = 1024;

/// What a process that uses WASI keeps: the grants it started with (its own, or its
/// module's then) for its whole life, and the WASI state of its current instance.
pub(crate) struct Wasi {
    pub(crate) grants: Arc<ModuleGrants>,
    /// Made at the instance's first WASI call (boxed: a process that never calls WASI
    /// does not pay for it); dropped with the instance.
    pub(crate) state: Option<Box<WasiState>>,
}

impl Wasi {
    pub(crate) fn new(grants: Arc<ModuleGrants>) -> Wasi {
        Wasi {
            grants,
            state: None,
        }
    }
}

/// A WASI process's context and the table of the WASI resources it holds, with their
/// share of the node's budget of guest descriptors.
pub(crate) struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    /// The files opened through `open-at` and their tokens.
    pub(super) open: OpenFiles,
    /// The tokens of the TCP sockets it holds, by their handles.
    pub(super) sockets: HashMap<u32, DescriptorToken>,
    /// The tokens of the granted directories the context holds open.
    _granted: Vec<DescriptorToken>,
}

impl WasiState {
    /// A context giving exactly `grants`. A directory whose pinned handle does not reopen,
    /// or that the node's budget of guest descriptors has no room for, is left out and
    /// logged: the guest then finds no such preopen.
    fn new(
        grants: &ModuleGrants,
        pid: crate::Pid,
        module: &Arc<str>,
        budget: &Arc<DescriptorBudget>,
    ) -> WasiState {
        let mut b = WasiCtxBuilder::new();
        let mut granted = Vec::new();
        b.stdout(GuestOutput::new(pid, module.clone(), Stream::Stdout));
        b.stderr(GuestOutput::new(pid, module.clone(), Stream::Stderr));
        // Through the handles opened when the grants were given, never by the path again.
        for (d, opened) in grants.pinned_dirs() {
            let perms = match d.mode {
                DirMode::ReadOnly => FsPerms::ReadOnly,
                DirMode::ReadWrite => FsPerms::ReadWrite,
            };
            let Some(token) = budget.take(1) else {
                // Guests can cause this at every spawn: throttled.
                if let Some(suppressed) = crate::metering::spent_files_warning(module) {
                    tracing::warn!(pid, module = &**module, dir = %d.host.display(), suppressed,
                        "the node's guests hold all the files they may (max_guest_files); the process goes without a granted directory");
                }
                continue;
            };
            match b.preopened_dir(&opened, &d.guest, perms) {
                Ok(_) => granted.push(token),
                Err(e) => tracing::warn!(pid, module = &**module, dir = %d.host.display(),
                    error = %e, "a granted directory cannot be opened; the process goes without it"),
            }
        }
        for name in &grants.inherit_env {
            if let Ok(value) = std::env::var(name) {
                b.env(name, value);
            }
        }
        b.envs(&grants.env);
        if !grants.clocks {
            b.wall_clock(Frozen).monotonic_clock(Frozen);
        }
        if grants.random {
            b.max_random_size(MAX_RANDOM_BYTES);
        } else {
            b.secure_random(Deterministic::new(vec![0]))
                .insecure_random(Deterministic::new(vec![0]))
                .insecure_random_seed(0)
                .max_random_size(0);
        }
        let allowed: Arc<[SocketAddr]> = grants.connect.clone().into();
        b.allow_udp(false)
            .allow_ip_name_lookup(false)
            .allow_tcp(!allowed.is_empty())
            .socket_addr_check(move |addr, using| {
                let ok = connect_allowed(&allowed, addr, using);
                Box::pin(async move { ok })
            });
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_WASI_RESOURCES);
        WasiState {
            ctx: b.build(),
            table,
            open: OpenFiles::default(),
            sockets: HashMap::new(),
            _granted: granted,
        }
    }
}

/// Outbound TCP to a listed address, and the implicit bind to an ephemeral port that a
/// connect makes; no listening, no explicit bind, no UDP.
fn connect_allowed(allowed: &[SocketAddr], addr: SocketAddr, using: SocketAddrUse) -> bool {
    match using {
        SocketAddrUse::TcpConnect => allowed.contains(&addr),
        SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
        _ => false,
    }
}

/// The clocks of a process granted none: zero, standing still.
struct Frozen;

impl HostWallClock for Frozen {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Frozen {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl WasiView for ProcessCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (pid, module, node) = (self.pid, &self.module, &self.node);
        // A process of a module that had no WASI imports when it started (an upgrade gave
        // it some) takes its module's grants now.
        let wasi = self
            .wasi
            .get_or_insert_with(|| Box::new(Wasi::new(node.grants(module))));
        let Wasi { grants, state } = &mut **wasi;
        let state = state.get_or_insert_with(|| {
            Box::new(WasiState::new(grants, pid, module, &node.descriptors))
        });
        WasiCtxView {
            ctx: &mut state.ctx,
            table: &mut state.table,
        }
    }
}

/// The imports of a module that uses WASI: Otter's and WASI preview 2's.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<ProcessCtx>> {
    let mut linker = super::linker(engine)?;
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    super::open_files::add_to_linker(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    super::open_sockets::add_to_linker(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok(linker)
}

/// Whether `component` imports any WASI interface.
pub(crate) fn imports_wasi(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with("wasi:"))
}
