//! The body of the `sdk_message` fuzz target in `fuzz/`: arbitrary bytes decoded, as a
//! server's messages are, into a few types of the kinds servers declare. A message comes
//! from another process, so it may be anything; decoding must answer an error, never panic
//! or overflow the stack. The same function replays the committed corpus
//! (`fuzz/corpus/sdk_message/`) as an ordinary test.
//!
//! Not a supported API: it exists for `fuzz/` and the tests.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A request enum of the usual shape: unit, newtype, tuple and struct variants, and one
/// that nests itself (as a batch or a tree does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// A unit variant.
    Ping,
    /// A newtype variant.
    Get(String),
    /// A struct variant with bytes and an optional number.
    Put {
        /// A text key.
        key: String,
        /// Raw bytes.
        value: Vec<u8>,
        /// An optional time to live.
        ttl_ms: Option<u32>,
    },
    /// A tuple variant.
    Move(i64, i64),
    /// A variant that holds requests.
    Batch(Vec<Request>),
}

/// A state struct of the usual shape: numbers, a map, an option of a tuple, a float, a
/// flag, and a unit field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// A counter.
    pub count: u64,
    /// A map of names.
    pub names: BTreeMap<String, u32>,
    /// An optional pair.
    pub last: Option<(i32, String)>,
    /// A float.
    pub load: f64,
    /// A flag.
    pub open: bool,
    /// A unit value.
    pub nothing: (),
}

/// Decode `data` as each of the types and, when it decodes, check the value round-trips.
///
/// # Panics
/// If decoding panics, or a decoded value does not read back as itself once encoded.
pub fn message(data: &[u8]) {
    round_trip::<Request>(data);
    round_trip::<State>(data);
    round_trip::<Vec<Option<String>>>(data);
    round_trip::<(u8, i16, char)>(data);
    round_trip::<()>(data);
    round_trip::<String>(data);
    round_trip::<BTreeMap<u64, Vec<bool>>>(data);
}

/// If `data` decodes as `T`, its encoding decodes as the same value (compared as encodings,
/// so that a NaN equals itself).
fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(value) = crate::decode::<T>(data) {
        let bytes = crate::encode(&value);
        let again: T = crate::decode(&bytes).expect("an encoded value decodes");
        assert_eq!(crate::encode(&again), bytes);
    }
}

#[cfg(test)]
mod tests;
