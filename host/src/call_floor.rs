//! The floor under a call: a guest's exports entered directly, on one store, with no process
//! around it (no mailbox, task, routing or reply slot). `otter-bench call` times them after
//! its call loops, so that a table shows how much of a call is wasmtime's component call
//! and the guest's own work, which no change to the runtime can take away.
//!
//! Not an API for servers: a guest driven here has none of a process's imports (calling one
//! traps), limits or preemption.

use std::path::Path;

use anyhow::Context;
use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use crate::bindings::WitReplyTo;
use crate::callbacks::Callbacks;
use crate::engine::{EngineConfig, new_engine, to_component};

/// One instance of a module, entered only through its exports.
pub struct BareGuest {
    store: Store<()>,
    server: Callbacks,
}

impl BareGuest {
    /// Instantiate the module at `path` (a core module built with the SDK, or a component)
    /// on an engine set up as a node's, and run its `init` with `args`.
    ///
    /// # Errors
    /// If the module does not load or instantiate, or `init` traps.
    pub async fn start(path: &Path, args: &[u8]) -> anyhow::Result<Self> {
        let (engine, _pools) = new_engine(&EngineConfig::default())?;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let bytes = to_component(&bytes).map_err(anyhow::Error::msg)?;
        let component = Component::new(&engine, &bytes).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mut linker = Linker::new(&engine);
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mut store = Store::new(&engine, ());
        // No epoch thread runs: nothing would advance the epoch.
        store.set_epoch_deadline(u64::MAX);
        let server = crate::callbacks::instantiate_checked(&mut store, &component, &linker)
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mut guest = BareGuest { store, server };
        guest
            .server
            .call_init(&mut guest.store, &args.to_vec())
            .await
            .map_err(|e| anyhow::anyhow!("init: {e:#}"))?;
        Ok(guest)
    }

    /// `handle-call` with `request`, its result dropped.
    ///
    /// # Errors
    /// If the guest traps.
    pub async fn handle_call(&mut self, request: &Vec<u8>) -> anyhow::Result<()> {
        let from = WitReplyTo {
            server: 1,
            caller: 2,
            tag: 3,
        };
        self.server
            .call_handle_call(&mut self.store, request, from)
            .await
            .map(drop)
            .map_err(|e| anyhow::anyhow!("handle-call: {e:#}"))
    }

    /// `vsn`, the export that does the least: entering the guest and lifting a short string.
    ///
    /// # Errors
    /// If the guest traps.
    pub async fn vsn(&mut self) -> anyhow::Result<()> {
        self.server
            .call_vsn(&mut self.store)
            .await
            .map(drop)
            .map_err(|e| anyhow::anyhow!("vsn: {e:#}"))
    }
}
