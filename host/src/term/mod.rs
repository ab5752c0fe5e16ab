//! Terms: the CBOR bytes every message, reply, argument and state crosses the boundary as.
//!
//! ## Reading a guest's term
//!
//! A term comes from a guest, so it may be malformed, huge, or nested a million levels deep in
//! a few hundred bytes. Every host path that looks inside one (decoding, conversion to JSON,
//! display, canonicalisation, merging args) first walks it without recursion and refuses one
//! nested deeper than [`MAX_TERM_DEPTH`]; only then may a recursive decoder (serde's) run, on a
//! stack it cannot exhaust. Host imports, which run on a process's fiber stack, use only the
//! walkers that never recurse.

mod canonical;
mod display;
mod json;
mod merge;
mod walk;

pub(crate) use canonical::canonical;
pub(crate) use display::shown;
pub(crate) use merge::merge_args;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How deeply arrays, maps and tags may nest in a term the host reads: 128 levels, as
/// `serde_json`'s own limit, so every JSON document the CLI accepts is a term the host can read.
pub const MAX_TERM_DEPTH: usize = 128;

/// Refuse a term that is not one well-formed CBOR item nested at most [`MAX_TERM_DEPTH`]
/// deep, without recursion (safe on a process's fiber stack).
pub(crate) fn check_well_formed(term: &[u8]) -> Result<(), TermError> {
    walk::check(term)
}

/// A CBOR-encoded value (RFC 8949).
pub type Term = Vec<u8>;

/// CBOR `null`.
const NULL: u8 = 0xf6;
/// CBOR `[]`, which is how the CBOR library reads `()`.
const EMPTY_ARRAY: u8 = 0x80;

/// Encode a serde value as a term. Unit values are written as CBOR `null`, as the guest SDK
/// writes them.
///
/// # Errors
/// If the value's `Serialize` implementation fails.
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
/// # Errors
/// If the bytes are not one CBOR item nested at most [`MAX_TERM_DEPTH`] deep, or do not have the
/// shape of `T`.
pub fn decode<T: DeserializeOwned>(term: &[u8]) -> Result<T, TermError> {
    // Each level takes at least a byte: a shorter term cannot be too deep.
    if term.len() > MAX_TERM_DEPTH {
        walk::check(term)?;
    }
    match minicbor_serde::from_slice(term) {
        Ok(v) => Ok(v),
        Err(e) if term == [NULL] => {
            minicbor_serde::from_slice(&[EMPTY_ARRAY]).map_err(|_| TermError(e.to_string()))
        }
        Err(e) => Err(TermError(e.to_string())),
    }
}

/// A term as JSON: byte strings become arrays of numbers, tags their item, map keys that are
/// not text their JSON text, `undefined` and non-finite floats `null`.
///
/// # Errors
/// If the bytes are not one well-formed CBOR item nested at most [`MAX_TERM_DEPTH`] deep, or
/// hold text that is not UTF-8.
pub fn to_json(term: &[u8]) -> Result<serde_json::Value, TermError> {
    json::to_json(term)
}

/// A JSON value as a term.
pub fn from_json(value: &serde_json::Value) -> Term {
    encode(value).expect("every JSON value encodes as CBOR")
}

/// A term that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("term: {0}")]
pub struct TermError(pub String);
