//! What [`GenServer::code_change`](crate::GenServer::code_change) receives when the host swaps
//! a running server's module: the version that exported the state, the state, and the
//! operator's `extra` term.

use serde::de::DeserializeOwned;

/// A state exported by another version of this server, to turn into this version's state.
///
/// Decode it as the type that version used, then build the new state from it; when the
/// shape did not change, [`CodeChange::old_state`] as `Self` is the whole migration (the
/// default `code_change` does exactly that). Fields the new type does not have are ignored,
/// so a downgrade usually needs no code either.
///
/// ```
/// use otter_guest::CodeChange;
/// use serde::{Deserialize, Serialize};
/// use std::collections::BTreeMap;
///
/// /// Version 1's state.
/// #[derive(Deserialize)]
/// struct KvV1 {
///     data: BTreeMap<String, String>,
/// }
///
/// /// This version's (2) state: the data, and a counter of writes.
/// #[derive(Serialize, Deserialize)]
/// struct Kv {
///     data: BTreeMap<String, String>,
///     writes: u64,
/// }
///
/// fn code_change(change: CodeChange<'_>) -> Result<Kv, String> {
///     match change.old_vsn() {
///         "1" => {
///             let old: KvV1 = change.old_state()?;
///             Ok(Kv { data: old.data, writes: 0 })
///         }
///         _ => change.old_state(),
///     }
/// }
/// # #[derive(Serialize)]
/// # struct V1Out { data: BTreeMap<String, String> }
/// # let v1 = otter_guest::encode(&V1Out { data: [("a".into(), "1".into())].into() });
/// # let kv = code_change(CodeChange::new("1", &v1, &otter_guest::encode(&()))).unwrap();
/// # assert_eq!((kv.data["a"].as_str(), kv.writes), ("1", 0));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CodeChange<'a> {
    old_vsn: &'a str,
    old_state: &'a [u8],
    extra: &'a [u8],
}

impl<'a> CodeChange<'a> {
    /// A change from `old_vsn`'s exported `old_state` (CBOR), with the operator's `extra`
    /// (CBOR). The host builds it; tests of a migration build it too.
    pub fn new(old_vsn: &'a str, old_state: &'a [u8], extra: &'a [u8]) -> Self {
        CodeChange {
            old_vsn,
            old_state,
            extra,
        }
    }

    /// The version that exported the state: older for an upgrade, newer for a downgrade.
    pub fn old_vsn(&self) -> &'a str {
        self.old_vsn
    }

    /// The exported state, decoded as `T` (the old version's state type).
    ///
    /// # Errors
    /// A one-line reason naming the old version and `T` when the state does not decode as
    /// `T`; returned from `code_change`, it fails the upgrade and the process keeps running
    /// the old version.
    pub fn old_state<T: DeserializeOwned>(&self) -> Result<T, String> {
        crate::decode(self.old_state).map_err(|e| {
            format!(
                "the state of vsn \"{}\" does not decode as {}: {e}",
                self.old_vsn,
                std::any::type_name::<T>()
            )
        })
    }

    /// The exported state as CBOR, for a migration that reads it some other way.
    pub fn old_state_bytes(&self) -> &'a [u8] {
        self.old_state
    }

    /// The operator's `extra` term (`otter upgrade --extra JSON`; `null` when not given),
    /// decoded as `T`.
    ///
    /// # Errors
    /// A one-line reason when it does not decode as `T`.
    pub fn extra<T: DeserializeOwned>(&self) -> Result<T, String> {
        crate::decode(self.extra).map_err(|e| {
            format!(
                "extra does not decode as {}: {e}",
                std::any::type_name::<T>()
            )
        })
    }

    /// The `extra` term as CBOR.
    pub fn extra_bytes(&self) -> &'a [u8] {
        self.extra
    }
}
