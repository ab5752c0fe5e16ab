//! Registries: the node's local names, and named registries of keys (Elixir's `Registry`).
//!
//! A local name is a string held by one process. A keyed registry is created by name with
//! unique or duplicate [`Keys`]; its keys and values are any terms, and its keys compare on
//! their canonical CBOR, so two encodings of one value are one key. Both free a process's
//! entries the moment it exits, before its monitors, links and callers learn of the exit.

mod canonical;
mod keyed;
mod names;

pub(crate) use keyed::Registries;
pub use keyed::{Keys, RegistryError, RegistryExists};
pub(crate) use names::Names;

use crate::mailbox::Message;
use crate::node::{Node, NodeInner};
use crate::process::Pid;
use crate::term::Term;

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

impl NodeInner {
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
                && entry.mailbox.send(Message::Info(msg.clone())).is_ok()
            {
                sent += 1;
            }
        }
        Ok(sent)
    }
}
