//! The term codec: every message, reply, argument and state crosses the boundary as CBOR.
//!
//! Unit values (`()`, unit structs) are written as CBOR `null` so that JSON tools see `null`,
//! and a top-level `null` is read back as `()`.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How deeply arrays, maps and tags may nest in a term the host reads: 128 levels, as
/// `serde_json`'s own limit, so every JSON document the CLI accepts is a term the host can read.
pub const MAX_TERM_DEPTH: usize = 128;

/// A CBOR-encoded value (RFC 8949).
pub type Term = Vec<u8>;

/// CBOR `null`.
pub const NULL: u8 = 0xf6;
/// CBOR `[]`, which is how the CBOR library reads `()`.
pub const EMPTY_ARRAY: u8 = 0x80;

/// Encode a serde value as a term, unit values as CBOR `null`.
///
/// # Errors
/// If the value's `Serialize` implementation fails, which for plain data types it never does.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Term, TermError> {
    let mut ser = minicbor_serde::Serializer::new(Vec::new());
    ser.serialize_unit_as_null(true);
    value
        .serialize(&mut ser)
        .map_err(|e| TermError(e.to_string()))?;
    Ok(ser.into_encoder().into_writer())
}

/// Decode a term into a serde value; a top-level `null` also reads as `()`.
///
/// This decoder recurses as deeply as the term nests: the host checks a guest's term with
/// [`crate::walk::check`] first.
///
/// # Errors
/// If the bytes are not one CBOR item of the shape of `T`.
pub fn decode<T: DeserializeOwned>(term: &[u8]) -> Result<T, TermError> {
    match minicbor_serde::from_slice(term) {
        Ok(v) => Ok(v),
        Err(e) if term == [NULL] => {
            minicbor_serde::from_slice(&[EMPTY_ARRAY]).map_err(|_| TermError(e.to_string()))
        }
        Err(e) => Err(TermError(e.to_string())),
    }
}

/// A term that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermError(pub String);

impl fmt::Display for TermError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "term: {}", self.0)
    }
}

impl std::error::Error for TermError {}
