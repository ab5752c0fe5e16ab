//! `otter:genserver/registry`: named registries of keys (Elixir's `Registry`).

use crate::bindings::otter::genserver::registry::Host;
use crate::bindings::otter::genserver::types::{Pid, RegistryError as WitRegistryError, Term};
use crate::host::ProcessCtx;
use crate::limits::GuestFault;
use crate::registry::{HeldBudget, RegisterEntryError, RegistryError};

pub(crate) fn registry_error(e: RegistryError) -> WitRegistryError {
    match e {
        RegistryError::UnknownRegistry(r) => WitRegistryError::UnknownRegistry(r),
        RegistryError::AlreadyRegistered(p) => WitRegistryError::AlreadyRegistered(p),
        RegistryError::NotUnique(r) => WitRegistryError::NotUnique(r),
    }
}

impl ProcessCtx {
    /// A registry term over the size limit ends the process: these imports have no error
    /// for it, as Erlang's BIFs raise `badarg` for an argument they cannot take.
    fn check_registry_term(&self, what: &str, term: &[u8]) -> wasmtime::Result<()> {
        self.node.check_size(what, term).map_err(GuestFault::badarg)
    }
}

impl Host for ProcessCtx {
    fn register(
        &mut self,
        registry: String,
        key: Term,
        value: Term,
    ) -> wasmtime::Result<Result<(), WitRegistryError>> {
        self.check_registry_term("key", &key)?;
        self.check_registry_term("value", &value)?;
        // Entries live on the host, outside the process's linear memory: together they may
        // take as much as that memory may, and be at most `max_registry_keys`.
        let budget = HeldBudget {
            entries: self.node.config.max_registry_keys,
            bytes: self.limits.cap(),
        };
        match self
            .node
            .registries
            .register(&registry, &key, self.pid, value, budget)
        {
            Ok(()) => Ok(Ok(())),
            Err(RegisterEntryError::Registry(e)) => Ok(Err(registry_error(e))),
            Err(RegisterEntryError::OverBudget) => Err(GuestFault::system_limit()),
        }
    }

    fn unregister(
        &mut self,
        registry: String,
        key: Term,
    ) -> wasmtime::Result<Result<(), WitRegistryError>> {
        Ok(self
            .node
            .registries
            .unregister(&registry, &key, self.pid)
            .map_err(registry_error))
    }

    fn lookup(
        &mut self,
        registry: String,
        key: Term,
    ) -> wasmtime::Result<Result<Vec<(Pid, Term)>, WitRegistryError>> {
        Ok(self
            .node
            .registries
            .lookup(&registry, &key)
            .map_err(registry_error))
    }

    fn dispatch(
        &mut self,
        registry: String,
        key: Term,
        msg: Term,
    ) -> wasmtime::Result<Result<u32, WitRegistryError>> {
        self.check_registry_term("message", &msg)?;
        Ok(self
            .node
            .dispatch(&registry, &key, msg)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .map_err(registry_error))
    }
}
