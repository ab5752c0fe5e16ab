//! Messages and state cross the host boundary as CBOR; this is the one codec.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encode a value as CBOR bytes.
///
/// # Panics
/// If the value's `Serialize` implementation fails, which for plain data types it never does.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    minicbor_serde::to_vec(value).expect("CBOR encoding of a serde value cannot fail")
}

/// Decode CBOR bytes into a value, or say why they do not fit.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    minicbor_serde::from_slice(bytes).map_err(|e| e.to_string())
}
