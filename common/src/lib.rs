//! What the Otter host and the guest SDK share, so that each exists once: the term codec
//! (CBOR with unit values as `null`), a walker that reads a term without recursion, a
//! bounded display of terms, and exit reasons.
//!
//! It builds for `wasm32-unknown-unknown` guests and for the native host. What only the host
//! needs (depth checks before decoding, JSON conversion, canonical keys, size limits) stays in
//! the host.
#![warn(missing_docs, unreachable_pub)]

mod cbor_de;
mod decode_error;
mod display;
mod exit;
mod log_level;
mod process_local;
mod quoted;
mod term;
pub mod walk;

/// A process identifier, unique for a node's lifetime.
pub type Pid = u64;

/// The custom section in which `export_genserver!` writes a module's version (UTF-8), so the
/// host reads it without running the module. The host refuses one longer than
/// [`MAX_VSN`] bytes.
pub const VSN_SECTION: &str = "otter-vsn";

/// The longest version a module may report, in bytes.
pub const MAX_VSN: usize = 255;

pub use display::{SHOWN, Shown, shown};
pub use exit::ExitReason;
pub use log_level::LogLevel;
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[doc(hidden)]
pub use process_local::ProcessLocal;
pub use quoted::Quoted;
pub use term::{EMPTY_ARRAY, MAX_TERM_DEPTH, NULL, Term, TermError, decode, encode, encode_into};
