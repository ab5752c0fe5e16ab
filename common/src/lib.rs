//! What the Otter host and the guest SDK share, so that each exists once: the term codec
//! (CBOR with unit values as `null`), a walker that reads a term without recursion, a
//! bounded display of terms, and exit reasons.
//!
//! It builds for `wasm32-unknown-unknown` guests and for the native host. What only the host
//! needs (depth checks before decoding, JSON conversion, canonical keys, size limits) stays in
//! the host.
#![warn(missing_docs, unreachable_pub)]

mod display;
mod exit;
mod term;
pub mod walk;

pub use display::{SHOWN, Shown, shown};
pub use exit::ExitReason;
pub use term::{EMPTY_ARRAY, MAX_TERM_DEPTH, NULL, Term, TermError, decode, encode};
