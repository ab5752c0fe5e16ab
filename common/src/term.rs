//! The term codec: every message, reply, argument and state crosses the boundary as CBOR.
//!
//! Unit values (`()`, unit structs) are written as CBOR `null` so that JSON tools see `null`,
//! and read back from `null` at any depth.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cbor_de::Deserializer;

/// How deeply arrays, maps and tags may nest in a term the host reads: 128 levels, as
/// `serde_json`'s own limit, so every JSON document the CLI accepts is a term the host can read.
pub const MAX_TERM_DEPTH: usize = 128;

/// A CBOR-encoded value (RFC 8949).
pub type Term = Vec<u8>;

/// CBOR `null`.
pub const NULL: u8 = 0xf6;
/// CBOR `[]`, which [`decode`] also reads as `()`.
pub const EMPTY_ARRAY: u8 = 0x80;

/// Encode a serde value as a term, unit values as CBOR `null`.
///
/// # Errors
/// If the value's `Serialize` implementation fails, which for plain data types it never does.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Term, TermError> {
    let mut term = Vec::new();
    encode_into(value, &mut term)?;
    Ok(term)
}

/// Encode a serde value as [`encode`] does, appended to `term` (which keeps its capacity
/// from one term to the next when the caller clears it).
///
/// # Errors
/// As [`encode`]; `term` then holds what was written before the failure.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, term: &mut Term) -> Result<(), TermError> {
    let mut ser = minicbor_serde::Serializer::new(term);
    ser.serialize_unit_as_null(true);
    value
        .serialize(&mut ser)
        .map_err(|e| TermError(format!("{e}")))
}

/// Decode a term into a serde value; a unit (`()`, a unit struct) reads from `null`, as
/// [`encode`] writes it, or from `[]`.
///
/// The decoder (`cbor_de`) recurses as deeply as the term nests, so a term that could nest
/// deeper than [`MAX_TERM_DEPTH`] is first walked without recursion and refused if it
/// does: a message may come from any process, and a few hundred kilobytes nested a level
/// per byte would overflow the stack of whoever decodes it. The decoder also stops at twice
/// that many arrays, maps and enums open at once, which a flat term can reach through a
/// recursive type (a variant named alone reads the next item as its value).
///
/// # Errors
/// If the bytes are not one CBOR item nested at most [`MAX_TERM_DEPTH`] deep, of the shape
/// of `T`. The error says what was expected, what was found and where; a float found is
/// named by its kind, a string shown up to 64 bytes, its control characters escaped (see
/// `decode_error`). A tag is read only as a `u128`'s or `i128`'s bignum, and skipped in an
/// item ignored (an unknown field's value).
pub fn decode<T: DeserializeOwned>(term: &[u8]) -> Result<T, TermError> {
    // Each level takes at least a byte: a shorter term cannot be too deep.
    if term.len() > MAX_TERM_DEPTH {
        crate::walk::check(term)?;
    }
    let mut de = Deserializer::new(term);
    let value = T::deserialize(&mut de).map_err(|e| {
        if e.positioned {
            TermError(e.message)
        } else {
            // serde's errors do not know where they are: where the reading stopped does.
            let end = de.position();
            TermError(format!(
                "{}, in the item ending at position {end}",
                e.message
            ))
        }
    })?;
    // One item, whatever the term's size (the walk above says so only for long ones).
    let end = de.position();
    if end != term.len() {
        return Err(TermError(format!(
            "{} bytes after the item at position {end}",
            term.len() - end
        )));
    }
    Ok(value)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bytes_after_the_item_are_refused_whatever_the_size() {
        assert_eq!(decode::<u8>(&[0x01]), Ok(1));
        let short = decode::<u8>(&[0x01, 0xff]).unwrap_err();
        assert!(short.0.contains("1 bytes after the item"), "{short}");
        let mut long = encode(&"x".repeat(200)).unwrap();
        long.push(0x01);
        let long = decode::<String>(&long).unwrap_err();
        assert!(long.to_string().contains("after"), "{long}");
    }

    #[test]
    fn a_term_nested_past_the_depth_limit_is_refused_without_recursing() {
        // A few hundred kilobytes a recursive decoder would need megabytes of stack for;
        // a guest receives such a message from any process that sends it one.
        for open in [0x81, 0x9f, 0xa1, 0xc1] {
            let mut deep = vec![open; 1_000_000];
            deep.push(0x01);
            let err = decode::<serde_json::Value>(&deep).unwrap_err();
            assert!(err.0.contains("deeper"), "{err}");
        }
    }

    #[test]
    fn units_inside_a_term_are_written_as_null_and_read_back() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Marker;
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct State {
            done: (),
            marks: Vec<Marker>,
            reply: Result<(), String>,
            pair: ((), u8),
        }
        let state = State {
            done: (),
            marks: vec![Marker, Marker],
            reply: Ok(()),
            pair: ((), 7),
        };
        let term = encode(&state).unwrap();
        let json: serde_json::Value = decode(&term).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"done": null, "marks": [null, null], "reply": {"Ok": null}, "pair": [null, 7]})
        );
        assert_eq!(decode::<State>(&term), Ok(state));
        // What other encoders write for a unit, an empty array, is read too.
        assert_eq!(decode::<Vec<()>>(&[0x82, 0x80, 0xf6]), Ok(vec![(), ()]));
        assert!(decode::<Vec<()>>(&[0x81, 0x01]).is_err());
        assert!(decode::<Vec<()>>(&[0x81, 0x81, 0xf6]).is_err());
    }

    #[derive(Debug, serde::Deserialize)]
    enum Op {
        Inc,
        Add(#[allow(dead_code)] u32),
    }

    #[derive(Debug, serde::Deserialize)]
    struct Config {
        #[allow(dead_code)]
        size: u8,
        #[allow(dead_code)]
        ops: Vec<Op>,
    }

    #[test]
    fn a_decode_error_names_the_value_found_the_type_expected_and_where() {
        // A unit reads from `null` or `[]`: anything else is named by its CBOR type.
        let float = decode::<((), u8)>(&encode(&(1.5, 1)).unwrap()).unwrap_err();
        assert_eq!(
            float.to_string(),
            "term: unexpected type f64 at position 1: expected unit (null)"
        );
        let string = decode::<((), u8)>(&encode(&("abc", 1)).unwrap()).unwrap_err();
        assert_eq!(
            string.0,
            "unexpected type string at position 1: expected unit (null)"
        );
        let array = decode::<((), u8)>(&encode(&([1], 1)).unwrap()).unwrap_err();
        assert_eq!(
            array.0,
            "invalid type: sequence, expected unit, in the item ending at position 3"
        );
        let nested = decode::<Config>(&encode(&json!({"size": 1, "ops": [{"Add": "x"}]})).unwrap())
            .unwrap_err();
        assert_eq!(
            nested.0,
            "unexpected type string at position 11: expected u32"
        );
    }

    #[test]
    fn a_string_that_is_not_utf8_is_refused_with_its_position() {
        let e = decode::<(u8, String)>(&[0x82, 0x01, 0x62, b'a', 0xff]).unwrap_err();
        assert_eq!(e.0, "invalid utf-8 at position 2");
    }

    #[test]
    fn a_decode_error_names_an_unknown_variant_and_the_known_ones() {
        let e = decode::<Vec<Op>>(&encode(&json!(["Inc", "Dec"])).unwrap()).unwrap_err();
        assert_eq!(
            e.0,
            "unknown variant `Dec`, expected `Inc` or `Add`, in the item ending at position 9"
        );
    }

    #[test]
    fn a_decode_error_names_a_missing_field() {
        let e = decode::<Config>(&encode(&json!({"size": 1})).unwrap()).unwrap_err();
        assert_eq!(e.0, "missing field `ops`, in the item ending at position 7");
    }

    #[test]
    fn a_term_nested_to_the_depth_limit_decodes() {
        let mut deep = vec![0x81; MAX_TERM_DEPTH];
        deep.push(0x01);
        let mut value: serde_json::Value = 1.into();
        for _ in 0..MAX_TERM_DEPTH {
            value = serde_json::Value::Array(vec![value]);
        }
        assert_eq!(decode::<serde_json::Value>(&deep), Ok(value));
    }
}
