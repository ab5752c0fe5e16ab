//! Messages and state cross the host boundary as CBOR, in the codec the host shares
//! (`otter_common`): unit values (`()`, unit structs) are written as CBOR `null` so that JSON
//! tools see `null`, and a unit is read back from `null` at any depth.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encode a value as CBOR bytes.
///
/// # Panics
/// If the value's `Serialize` implementation fails, which for plain data types it never does.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Not `expect`: its `Debug` of the error would link `Debug`'s string escaping (see
    // `otter_common`'s decode errors).
    otter_common::encode(value)
        .unwrap_or_else(|e| panic!("CBOR encoding of a serde value cannot fail: {e}"))
}

/// Decode CBOR bytes into a value, or say why they do not fit.
///
/// # Errors
/// A description of where the bytes and `T` disagree: the type, variant or field expected,
/// what was found and its position. A float found is named by its kind rather than its
/// value, and a string found is shown as it is, cut at 64 bytes: printing either as serde
/// does would link core's float and Unicode tables into every server's data (a resident
/// page of each live process).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    otter_common::decode(bytes).map_err(|e| e.0)
}
