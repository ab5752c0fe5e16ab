//! Registries, as data: the node's local names, and named registries of keys (Elixir's
//! `Registry`). The node resolves destinations and registers processes through these tables
//! (`node/names.rs`).
//!
//! A local name is a string held by one process. A keyed registry is created by name with
//! unique or duplicate [`Keys`]; its keys and values are any terms, and its keys compare on
//! their canonical CBOR, so two encodings of one value are one key. Both free a process's
//! entries the moment it exits, before its monitors, links and callers learn of the exit.

mod keyed;
mod names;

pub(crate) use keyed::{HeldBudget, RegisterEntryError, Registries};
pub use keyed::{Keys, RegistryError, RegistryExists};
pub(crate) use names::Names;

use crate::Pid;

/// Why a name could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The name is held by this pid.
    #[error("name already registered by <{0}>")]
    AlreadyRegistered(Pid),
    /// The process already has this name.
    #[error("process already registered as {0}")]
    AlreadyNamed(String),
}
