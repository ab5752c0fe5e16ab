//! Names as the node uses them: resolving a destination (a pid, a local name, a `via` key) to
//! a live process, registering processes and supervisors, and the public API of keyed
//! registries. The tables themselves are in `registry/`.

use std::sync::Arc;

use super::{Node, NodeInner, SpawnOptions};
use crate::Pid;
use crate::dest::Dest;
use crate::entry::ProcessEntry;
use crate::error::StartError;
use crate::mailbox::Message;
use crate::registry::{
    HeldBudget, Keys, RegisterEntryError, RegisterError, RegistryError, RegistryExists,
};
use crate::term::{QueuedTerm, Term};

/// Named registries of keys, as Elixir's `Registry`.
///
/// ```no_run
/// # async fn demo(node: otter::Node) -> anyhow::Result<()> {
/// use otter::{Dest, Keys};
/// node.create_registry("MyReg", Keys::Unique)?;
/// node.create_registry("PubSub", Keys::Duplicate)?;
/// // A guest registers itself with `otter_guest::registry::register("MyReg", &("kv", 42), &())`;
/// // then it is reachable by its key:
/// let key = otter::encode(&("kv", 42))?;
/// let pong: serde_json::Value = node.call(Dest::via("MyReg", key), &"ping").await?;
/// // And every subscriber of a topic gets a message:
/// let reached = node.registry_dispatch("PubSub", &otter::encode(&"news")?, otter::encode(&"hi")?)?;
/// # Ok(()) }
/// ```
impl Node {
    /// Create a registry named `name` (Elixir's `Registry.start_link(keys: ..., name: ...)`).
    /// Registries live as long as the node.
    ///
    /// # Errors
    /// [`RegistryExists`] if the name is taken; the existing registry is untouched.
    pub fn create_registry(&self, name: &str, keys: Keys) -> Result<(), RegistryExists> {
        self.inner.registries.create(name, keys)
    }

    /// Every registry's name and kind of keys, by name.
    pub fn registries(&self) -> Vec<(String, Keys)> {
        self.inner.registries.list()
    }

    /// The processes under `key` (CBOR) in `registry`, each with the value it registered,
    /// in registration order.
    ///
    /// # Errors
    /// [`RegistryError::UnknownRegistry`].
    pub fn registry_lookup(
        &self,
        registry: &str,
        key: &[u8],
    ) -> Result<Vec<(Pid, Term)>, RegistryError> {
        self.inner.registries.lookup(registry, key)
    }

    /// Send `msg` to `handle_info` of every process under `key` in `registry` (Elixir's
    /// `Registry.dispatch`, Phoenix.PubSub's broadcast); returns how many were sent. Each
    /// subscriber gets one sender's messages in dispatch order.
    ///
    /// # Errors
    /// [`RegistryError::UnknownRegistry`].
    pub fn registry_dispatch(
        &self,
        registry: &str,
        key: &[u8],
        msg: Term,
    ) -> Result<usize, RegistryError> {
        self.inner.dispatch(registry, key, msg)
    }
}

impl Node {
    /// The live process `dest` stands for, if any.
    ///
    /// # Errors
    /// If `dest` is a `via` name whose registry does not exist or has duplicate keys.
    pub(crate) fn resolve(&self, dest: &Dest) -> Result<Option<Pid>, RegistryError> {
        Ok(self.inner.try_resolve(dest)?.map(|entry| entry.pid))
    }
}

impl NodeInner {
    /// The live process `dest` stands for, if any; `None` too for a bad `via` registry.
    pub(crate) fn resolve(&self, dest: &Dest) -> Option<Arc<ProcessEntry>> {
        self.try_resolve(dest).ok().flatten()
    }

    /// The live process `dest` stands for; an error if it is a `via` name whose registry
    /// does not exist or has duplicate keys.
    pub(crate) fn try_resolve(
        &self,
        dest: &Dest,
    ) -> Result<Option<Arc<ProcessEntry>>, RegistryError> {
        self.with_live(dest, Arc::clone)
    }

    /// `f` applied to the live process `dest` stands for, if any, under the process table's
    /// read lock: a message goes to a mailbox this way without cloning the entry's `Arc` and
    /// dropping it again, two atomic operations per message. `f` must not touch the process
    /// table.
    pub(crate) fn with_live<R>(
        &self,
        dest: &Dest,
        f: impl FnOnce(&Arc<ProcessEntry>) -> R,
    ) -> Result<Option<R>, RegistryError> {
        let Some(pid) = self.pid_of(dest)? else {
            return Ok(None);
        };
        Ok(self.processes.get(&pid).map(|entry| f(entry.value())))
    }

    /// The pid `dest` names: a pid as it is (alive or not), a name or key's holder.
    pub(crate) fn pid_of(&self, dest: &Dest) -> Result<Option<Pid>, RegistryError> {
        Ok(match dest {
            Dest::Pid(pid) => Some(*pid),
            Dest::Name(name) => self.names.whereis(name),
            Dest::Via(registry, key) => self.registries.whereis(registry, key)?,
        })
    }

    pub(crate) fn whereis(&self, name: &str) -> Option<Pid> {
        self.names.whereis(name)
    }

    /// Give a supervisor (not a process, so not in the process table) a local name.
    pub(crate) fn register_supervisor(&self, name: &str, pid: Pid) -> Result<(), Pid> {
        self.names.register(name, pid)
    }

    /// Free a supervisor's name.
    pub(crate) fn unregister_supervisor(&self, name: &str, pid: Pid) {
        self.names.unregister(name, pid);
    }

    /// Register a starting process under the name and `via` key its options give.
    pub(crate) fn register_start_names(
        &self,
        entry: &ProcessEntry,
        opts: &SpawnOptions,
    ) -> Result<(), StartError> {
        if let Some(name) = &opts.name {
            self.register(entry, name).map_err(|e| match e {
                RegisterError::AlreadyRegistered(holder) => StartError::AlreadyStarted(holder),
                RegisterError::AlreadyNamed(_) => unreachable!("a new process has no name"),
            })?;
        }
        if let Some((registry, key)) = &opts.via {
            if let Some(holder) = self.registries.whereis(registry, key)? {
                return Err(StartError::AlreadyStarted(holder));
            }
            self.registries
                // The value is CBOR null.
                // Its first entry: a new process has no budget spent.
                .register(registry, key, entry.pid, vec![0xf6], HeldBudget::UNBOUNDED)
                .map_err(|e| match e {
                    RegisterEntryError::Registry(RegistryError::AlreadyRegistered(holder)) => {
                        StartError::AlreadyStarted(holder)
                    }
                    RegisterEntryError::Registry(e) => StartError::Registry(e),
                    RegisterEntryError::OverBudget => StartError::SystemLimit,
                })?;
        }
        Ok(())
    }

    /// Give `entry`'s process the local `name`.
    pub(crate) fn register(&self, entry: &ProcessEntry, name: &str) -> Result<(), RegisterError> {
        let pid = entry.pid;
        let mut own = entry.name.lock().expect("name lock");
        if let Some(existing) = own.as_ref() {
            return Err(RegisterError::AlreadyNamed(existing.clone()));
        }
        self.names
            .register(name, pid)
            .map_err(RegisterError::AlreadyRegistered)?;
        *own = Some(name.to_owned());
        Ok(())
    }

    pub(crate) fn unregister(&self, pid: Pid) {
        if let Some(entry) = self.entry(pid)
            && let Some(name) = entry.name.lock().expect("name lock").take()
        {
            self.names.unregister(&name, pid);
        }
    }

    /// See [`Node::registry_dispatch`].
    pub(crate) fn dispatch(
        &self,
        registry: &str,
        key: &[u8],
        msg: Term,
    ) -> Result<usize, RegistryError> {
        let mut sent = 0;
        for pid in self.registries.pids(registry, key)? {
            if let Some(entry) = self.entry(pid)
                && entry
                    .mailbox
                    .send(Message::Info(QueuedTerm::from_slice(&msg)))
                    .is_ok()
            {
                sent += 1;
            }
        }
        Ok(sent)
    }
}
