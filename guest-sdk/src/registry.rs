//! Named registries of keys, as Elixir's `Registry`: register this process under any serde
//! key with a value, look keys up, and dispatch a message to every process under a key.
//!
//! The node creates registries (the manifest's `[[registries]]`). In a registry with unique
//! keys, a key is an address: [`crate::Dest::via`] reaches its holder with `call`, `cast`,
//! `send` and `monitor`. In a registry with duplicate keys, many processes register under
//! one key, which makes a pub/sub topic:
//!
//! ```no_run
//! use otter_guest::registry;
//!
//! // In a subscriber's init: listen to a topic.
//! registry::register("PubSub", &("room", 42), &()).expect("PubSub exists");
//!
//! // Anywhere: every subscriber's handle_info gets the message.
//! let reached = registry::dispatch("PubSub", &("room", 42), &"hello").unwrap();
//! ```
//!
//! Keys compare on their canonical CBOR (the host canonicalizes what it receives), so
//! `("room", 42)` is the same key whoever encodes it, and a map's entry order does not
//! matter. A process's entries go the moment it exits, before its monitors, links and
//! callers hear of it; a restarted process registers again.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::otter::genserver::types::RegistryError as WitRegistryError;
use crate::imports::registry as host;
use crate::types::Pid;
use crate::{decode, encode};

/// Why a registry operation failed.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// No registry has this name.
    UnknownRegistry(String),
    /// In a unique registry, the key is held by this pid (perhaps this process).
    AlreadyRegistered(Pid),
    /// A [`crate::Dest::Via`] names a registry with duplicate keys.
    NotUnique(String),
    /// [`lookup`]: a registered value did not decode as the type asked for.
    BadValue(String),
}

impl RegistryError {
    pub(crate) fn from_wit(e: WitRegistryError) -> Self {
        match e {
            WitRegistryError::UnknownRegistry(r) => RegistryError::UnknownRegistry(r),
            WitRegistryError::AlreadyRegistered(p) => RegistryError::AlreadyRegistered(p),
            WitRegistryError::NotUnique(r) => RegistryError::NotUnique(r),
        }
    }
}

// By hand, as derived but for its strings (see `otter_common::Quoted`): a derived `Debug`
// would link `Debug`'s string escaping into a server that `expect`s this error.
impl fmt::Debug for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::UnknownRegistry(m) => f
                .debug_tuple("UnknownRegistry")
                .field(&otter_common::Quoted(m))
                .finish(),
            RegistryError::AlreadyRegistered(x) => {
                f.debug_tuple("AlreadyRegistered").field(x).finish()
            }
            RegistryError::NotUnique(m) => f
                .debug_tuple("NotUnique")
                .field(&otter_common::Quoted(m))
                .finish(),
            RegistryError::BadValue(m) => f
                .debug_tuple("BadValue")
                .field(&otter_common::Quoted(m))
                .finish(),
        }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::UnknownRegistry(r) => write!(f, "unknown registry \"{r}\""),
            RegistryError::AlreadyRegistered(p) => write!(f, "key already registered by {p}"),
            RegistryError::NotUnique(r) => {
                write!(
                    f,
                    "registry \"{r}\" has duplicate keys; a via name needs a unique one"
                )
            }
            RegistryError::BadValue(m) => write!(f, "registered value did not decode: {m}"),
        }
    }
}

impl std::error::Error for RegistryError {}

/// Register this process under `key` with `value` in `registry`.
///
/// # Errors
/// [`RegistryError::UnknownRegistry`]; in a unique registry,
/// [`RegistryError::AlreadyRegistered`] with the holder (this process too, if it holds the
/// key already). In a duplicate registry every call adds an entry.
pub fn register<K: Serialize + ?Sized, V: Serialize + ?Sized>(
    registry: &str,
    key: &K,
    value: &V,
) -> Result<(), RegistryError> {
    host::register(registry, &encode(key), &encode(value)).map_err(RegistryError::from_wit)
}

/// Remove this process's entries under `key` (having none is not an error).
///
/// # Errors
/// [`RegistryError::UnknownRegistry`].
pub fn unregister<K: Serialize + ?Sized>(registry: &str, key: &K) -> Result<(), RegistryError> {
    host::unregister(registry, &encode(key)).map_err(RegistryError::from_wit)
}

/// The processes under `key`, each with its value decoded as `V`, in registration order.
///
/// # Errors
/// [`RegistryError::UnknownRegistry`]; [`RegistryError::BadValue`] if a value is not a `V`.
pub fn lookup<K: Serialize + ?Sized, V: DeserializeOwned>(
    registry: &str,
    key: &K,
) -> Result<Vec<(Pid, V)>, RegistryError> {
    host::lookup(registry, &encode(key))
        .map_err(RegistryError::from_wit)?
        .into_iter()
        .map(|(pid, v)| Ok((pid, decode(&v).map_err(RegistryError::BadValue)?)))
        .collect()
}

/// Send `msg` to the `handle_info` of every process under `key` (this one's included, if
/// it registered); returns how many were sent. Each receiver gets this process's messages
/// in the order they were dispatched.
///
/// # Errors
/// [`RegistryError::UnknownRegistry`].
pub fn dispatch<K: Serialize + ?Sized, M: Serialize + ?Sized>(
    registry: &str,
    key: &K,
    msg: &M,
) -> Result<u32, RegistryError> {
    host::dispatch(registry, &encode(key), &encode(msg)).map_err(RegistryError::from_wit)
}
