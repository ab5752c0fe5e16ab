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
//!
//! The codec itself, the walker and the display of terms are `otter_common`'s, shared with
//! the guest SDK; what only the host needs is here.

mod canonical;
mod json;
mod merge;

pub(crate) use canonical::canonical;
pub(crate) use merge::merge_args;
pub(crate) use otter_common::shown;
pub(crate) use otter_common::walk;

use serde::de::DeserializeOwned;
use smallvec::SmallVec;

use otter_common::NULL;
pub use otter_common::{MAX_TERM_DEPTH, Term, TermError, encode};

/// The longest term a queued message keeps inline.
pub(crate) const INLINE_TERM: usize = 16;

/// A term as a mailbox keeps it: up to [`INLINE_TERM`] bytes inside the message itself, a
/// longer one in the buffer it was sent in. Most requests are a name or a small tuple, so
/// most messages are one slot of their queue: the process reads each without a second cache
/// miss, and frees no buffer another thread allocated. As small as a `Vec`, so a message is
/// no larger for it.
pub(crate) type QueuedTerm = SmallVec<[u8; INLINE_TERM]>;

/// `term` as a mailbox keeps it: copied in if it is short, else its buffer as it is.
pub(crate) fn queued(term: Term) -> QueuedTerm {
    if term.len() <= INLINE_TERM {
        SmallVec::from_slice(&term)
    } else {
        SmallVec::from_vec(term)
    }
}

/// Refuse a term that is not one well-formed CBOR item nested at most [`MAX_TERM_DEPTH`]
/// deep, without recursion (safe on a process's fiber stack).
pub(crate) fn check_well_formed(term: &[u8]) -> Result<(), TermError> {
    walk::check(term)
}

/// Decode a term into a serde value; a unit (`()`, a unit field or struct) reads from `null`
/// as from `[]`, at any depth.
///
/// # Errors
/// If the bytes are not one CBOR item nested at most [`MAX_TERM_DEPTH`] deep, or do not have the
/// shape of `T`.
pub fn decode<T: DeserializeOwned>(term: &[u8]) -> Result<T, TermError> {
    otter_common::decode(term)
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
