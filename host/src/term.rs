//! Terms: the CBOR bytes every message, reply, argument and state crosses the boundary as.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A CBOR-encoded value (RFC 8949).
pub type Term = Vec<u8>;

/// Encode a serde value as a term.
///
/// # Errors
/// If the value's `Serialize` implementation fails.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Term, TermError> {
    minicbor_serde::to_vec(value).map_err(|e| TermError(e.to_string()))
}

/// Decode a term into a serde value.
///
/// # Errors
/// If the bytes are not CBOR or do not have the shape of `T`.
pub fn decode<T: DeserializeOwned>(term: &[u8]) -> Result<T, TermError> {
    minicbor_serde::from_slice(term).map_err(|e| TermError(e.to_string()))
}

/// A term as JSON (CBOR maps with non-string keys and byte strings become JSON's nearest).
///
/// # Errors
/// If the bytes are not well-formed CBOR.
pub fn to_json(term: &[u8]) -> Result<serde_json::Value, TermError> {
    decode(term)
}

/// A JSON value as a term; JSON `null` becomes CBOR `null` (serde's unit would be `[]`).
pub fn from_json(value: &serde_json::Value) -> Term {
    let mut ser = minicbor_serde::Serializer::new(Vec::new());
    ser.serialize_unit_as_null(true);
    value
        .serialize(&mut ser)
        .expect("every JSON value encodes as CBOR");
    ser.into_encoder().into_writer()
}

/// A term that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("term: {0}")]
pub struct TermError(pub String);
