//! Otter's term order, as bytes: [`sort_key`] turns a term into bytes whose byte order
//! (`memcmp`) is the order of the decoded values, so a `BTreeMap` of them is an ordered set
//! and a range or prefix of keys is a range of bytes.
//!
//! CBOR bytes do not sort like the values they encode: `-1` (`0x20`) sorts after `23`
//! (`0x17`), a long text after a short one whatever its letters, and two encodings of one value
//! (a definite or indefinite array, a float in two or eight bytes) differ. The order, by class:
//! numbers < simple values < text < byte strings < arrays < maps < tags.
//!
//! - Numbers: integers and floats together by value; for the same value an integer comes
//!   before a float (so `1` and `1.0` are distinct keys, as Erlang's `=:=`); `-0.0` before
//!   `0.0`; NaN last.
//! - Simple values by number: `false` < `true` < `null` < `undefined`.
//! - Text and byte strings by their bytes, a prefix first.
//! - Arrays element by element, a prefix first.
//! - Maps by their entries sorted by key, then compared as key, value, key, value, ...
//! - Tags by number, then by the tagged item.
//!
//! Built on the walker, so it never recurses: keys are ordered inside host imports, on the
//! calling process's fiber stack.

use otter_common::walk::{Halt, Token, Visit, walk};

use crate::term::TermError;

/// Each item starts with its class, above [`END`] so that a prefix sorts first.
const NUMBER: u8 = 0x20;
const SIMPLE: u8 = 0x30;
const TEXT: u8 = 0x40;
const BYTES: u8 = 0x50;
const ARRAY: u8 = 0x60;
const MAP: u8 = 0x70;
const TAG: u8 = 0x80;

/// Ends an array or map (every item starts with a class byte above it).
const END: u8 = 0x00;
/// A string's content escapes `0x00` as `0x00 0xff` and ends with `0x00 0x00`.
const ESCAPED_ZERO: [u8; 2] = [0x00, 0xff];
const STRING_END: [u8; 2] = [0x00, 0x00];

/// What a map's key or value costs while its map is built, beyond its bytes: its own
/// buffer's header and allocation.
const MAP_ITEM_OVERHEAD: usize = 48;

/// The bytes that sort as `term` does in the term order, if they take at most `max` bytes.
///
/// A sort key can be many times longer than its term (a one-byte integer takes 18 bytes), so
/// `max` bounds what building it costs: its bytes, what a map's entries take while they are
/// sorted, and the bytes copied as each map's sorted entries join its parent. Arrays and
/// tags are written in place, so building a key is linear in its length whatever their
/// nesting. The walk stops as soon as the bound is passed.
///
/// # Errors
/// If `term` is not one well-formed CBOR item nested at most
/// [`MAX_TERM_DEPTH`](crate::MAX_TERM_DEPTH) deep, or its sort key would take over `max`.
pub(crate) fn sort_key(term: &[u8], max: usize) -> Result<Vec<u8>, TermError> {
    let mut builder = Builder {
        open: Vec::new(),
        buffers: vec![Vec::with_capacity(term.len().min(max) + 8)],
        left: max,
    };
    walk(term, &mut builder).map_err(|halt| match halt {
        Halt::Malformed(e) => e,
        Halt::Stopped(TooLong) => TermError(format!("its order key would take over {max} bytes")),
    })?;
    Ok(builder.buffers.swap_remove(0))
}

/// A sort key passed its bound.
struct TooLong;

/// The bytes every key that starts with `prefix` begins with: a text's, a byte string's or
/// an array's sort key without its end. `None` for any other term, which has no prefix.
pub(crate) fn prefix_key(key: Vec<u8>) -> Option<Vec<u8>> {
    let mut key = key;
    match key.first() {
        Some(&TEXT | &BYTES) => key.truncate(key.len() - STRING_END.len()),
        Some(&ARRAY) => key.truncate(key.len() - 1),
        _ => return None,
    }
    Some(key)
}

/// The smallest byte string above every string that starts with `prefix`, or `None` if
/// there is none (a prefix of `0xff` bytes only, which no class starts with).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A container being built.
enum Open {
    /// An array or a tag, written into the innermost buffer as its items come; `own` if it
    /// is a map's key or value, with a buffer of its own that goes to the map at its close.
    InPlace { array: bool, own: bool },
    /// A map: its entries each in a buffer of their own until it closes and sorts them.
    Map {
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        key: Option<Vec<u8>>,
    },
}

struct Builder {
    /// Containers still open, innermost last.
    open: Vec<Open>,
    /// The key being built, then the buffer of each map key or value being built (an array
    /// or a tag in a map), innermost last: where the next bytes go.
    buffers: Vec<Vec<u8>>,
    /// What the key may still take.
    left: usize,
}

impl Builder {
    /// Count `n` more bytes against the bound.
    fn charge(&mut self, n: usize) -> Result<(), TooLong> {
        self.left = self.left.checked_sub(n).ok_or(TooLong)?;
        Ok(())
    }

    /// Whether the innermost open container is a map: its items are built apart.
    fn in_map(&self) -> bool {
        matches!(self.open.last(), Some(Open::Map { .. }))
    }

    /// A complete item goes into a map: its buffer costs too.
    fn charge_map_item(&mut self) -> Result<(), TooLong> {
        if self.in_map() {
            self.charge(MAP_ITEM_OVERHEAD)?;
        }
        Ok(())
    }

    /// Where bytes go now.
    fn out(&mut self) -> &mut Vec<u8> {
        self.buffers
            .last_mut()
            .expect("the key's own buffer is never taken")
    }

    /// A map's key or value, complete.
    fn give_to_map(&mut self, item: Vec<u8>) {
        if let Some(Open::Map { entries, key }) = self.open.last_mut() {
            match key.take() {
                None => *key = Some(item),
                Some(k) => entries.push((k, item)),
            }
        }
    }
}

impl<'a> Visit<'a> for Builder {
    type Stop = TooLong;

    fn scalar(&mut self, token: Token<'a>) -> Result<(), Self::Stop> {
        self.charge(match &token {
            Token::Uint(_) | Token::Nint(_) | Token::Float(_) => NUMBER_LEN,
            Token::Simple(_) => 2,
            // At most: every byte a zero, escaped.
            Token::Text(b) | Token::Bytes(b) => 1 + 2 * b.len() + STRING_END.len(),
            Token::Array(_) | Token::Map(_) | Token::Tag(_) => 0,
        })?;
        self.charge_map_item()?;
        // Into an array, a tag or the top level it goes where it ends up; a map's key or
        // value is a buffer of its own, which the map sorts.
        let in_map = self.in_map();
        let mut own = Vec::new();
        let out = if in_map { &mut own } else { self.out() };
        match token {
            Token::Uint(n) => number(out, i128::from(n), None),
            Token::Nint(n) => number(out, -1 - i128::from(n), None),
            Token::Float(f) => number(out, 0, Some(f)),
            Token::Simple(s) => out.extend_from_slice(&[SIMPLE, s]),
            Token::Text(b) => string(out, TEXT, &b),
            Token::Bytes(b) => string(out, BYTES, &b),
            // The walker reports containers and tags through `open`.
            Token::Array(_) | Token::Map(_) | Token::Tag(_) => {}
        }
        if in_map {
            self.give_to_map(own);
        }
        Ok(())
    }

    fn open(&mut self, token: Token<'a>) -> Result<(), Self::Stop> {
        // The class and the end (a tag's number), and the item's buffer if in a map.
        self.charge(match token {
            Token::Tag(_) => 9,
            _ => 2,
        })?;
        self.charge_map_item()?;
        let own = self.in_map();
        let open = match token {
            Token::Map(_) => Open::Map {
                entries: Vec::new(),
                key: None,
            },
            Token::Tag(tag) => {
                if own {
                    self.buffers.push(Vec::new());
                }
                let out = self.out();
                out.push(TAG);
                out.extend_from_slice(&tag.to_be_bytes());
                Open::InPlace { array: false, own }
            }
            _ => {
                if own {
                    self.buffers.push(Vec::new());
                }
                self.out().push(ARRAY);
                Open::InPlace { array: true, own }
            }
        };
        self.open.push(open);
        Ok(())
    }

    fn close(&mut self) -> Result<(), Self::Stop> {
        match self.open.pop() {
            Some(Open::InPlace { array, own }) => {
                if array {
                    self.out().push(END);
                }
                if own {
                    let item = self.buffers.pop().expect("pushed at its open");
                    self.give_to_map(item);
                }
            }
            Some(Open::Map { mut entries, .. }) => {
                entries.sort();
                // Its entries are copied once more, into its parent: counted, so that maps
                // nested deep cannot make that copying quadratic.
                let len = entries
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
                self.charge(len)?;
                let mut own = Vec::new();
                let in_map = self.in_map();
                let out = if in_map { &mut own } else { self.out() };
                out.reserve(len + 2);
                out.push(MAP);
                for (k, v) in entries {
                    out.extend_from_slice(&k);
                    out.extend_from_slice(&v);
                }
                out.push(END);
                if in_map {
                    self.give_to_map(own);
                }
            }
            None => {}
        }
        Ok(())
    }
}

/// A number: the class, its value rounded to the nearest `f64` (as bytes that sort like
/// it), what rounding left out (an integer beyond 2^53), and whether it is a float.
///
/// Rounding never reverses an order, so the rounded values decide unless they are equal;
/// then the exact remainder does, and a float (whose remainder is 0) comes after an integer
/// of the same value.
/// The length of a number's sort key: class, rounded value, remainder, float or not.
const NUMBER_LEN: usize = 18;

fn number(out: &mut Vec<u8>, int: i128, float: Option<f64>) {
    let (rounded, rest, is_float) = match float {
        Some(f) if f.is_nan() => (f64::NAN, 0, 1u8),
        Some(f) => (f, 0, 1),
        None => {
            #[allow(clippy::cast_precision_loss)] // rounding is what is wanted here
            let rounded = int as f64;
            #[allow(clippy::cast_possible_truncation)] // |int| < 2^65: its rounding fits
            let rest = int - rounded as i128;
            #[allow(clippy::cast_possible_truncation)] // at most 2^11 by construction
            (rounded, rest as i64, 0)
        }
    };
    out.push(NUMBER);
    out.extend_from_slice(&float_bits(rounded).to_be_bytes());
    out.extend_from_slice(&(rest.cast_unsigned() ^ (1 << 63)).to_be_bytes());
    out.push(is_float);
}

/// An `f64` as a `u64` that sorts as the float does (NaN, one of them, above infinity).
fn float_bits(f: f64) -> u64 {
    let bits = if f.is_nan() {
        f64::NAN.to_bits()
    } else {
        f.to_bits()
    };
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// A string: the class, its bytes with `0x00` escaped, and an end below any byte.
fn string(out: &mut Vec<u8>, class: u8, bytes: &[u8]) {
    out.reserve(bytes.len() + 3);
    out.push(class);
    for &b in bytes {
        if b == 0 {
            out.extend_from_slice(&ESCAPED_ZERO);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&STRING_END);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::encode;
    use serde_json::json;

    /// -2^64, the smallest CBOR integer.
    const MIN_INT: [u8; 9] = [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

    fn key<T: serde::Serialize>(v: &T) -> Vec<u8> {
        sort_key(&encode(v).unwrap(), usize::MAX).unwrap()
    }

    #[test]
    fn numbers_sort_by_value_whatever_their_encoding() {
        let ordered = [
            key(&f64::NEG_INFINITY),
            sort_key(&MIN_INT, usize::MAX).unwrap(),
            key(&-1_000_000i64),
            key(&-1.5f64),
            key(&-1i64),
            key(&-0.0f64),
            key(&0u8),
            key(&0.0f64),
            key(&1u8),
            key(&1.0f64),
            key(&1.5f32),
            key(&23u8),
            key(&24u8),
            key(&((1u64 << 53) + 1)),
            key(&u64::MAX),
            key(&f64::INFINITY),
            key(&f64::NAN),
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1], "{:x?} !< {:x?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn big_integers_next_to_each_other_stay_apart_and_in_order() {
        let a = key(&(u64::MAX - 1));
        let b = key(&u64::MAX);
        assert!(a < b);
        let mut c = MIN_INT;
        c[8] = 0xfe; // -2^64 + 1
        assert!(sort_key(&MIN_INT, usize::MAX).unwrap() < sort_key(&c, usize::MAX).unwrap());
        assert!(sort_key(&c, usize::MAX).unwrap() < key(&i64::MIN));
    }

    #[test]
    fn strings_sort_by_bytes_with_a_prefix_first() {
        assert!(key(&"b") < key(&"ba"));
        assert!(key(&"ab") < key(&"b"));
        assert!(key(&"a") < key(&"a\0"));
        assert!(key(&"a\0") < key(&"a\u{1}"));
        assert!(key(&"zzzz") < key(&json!([])));
    }

    #[test]
    fn classes_sort_in_their_order() {
        let ordered = [
            key(&u64::MAX),
            key(&false),
            key(&true),
            key(&()),
            key(&"text"),
            sort_key(&[0x42, b'h', b'i'], usize::MAX).unwrap(),
            key(&json!([1])),
            key(&json!({"a": 1})),
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1]);
        }
    }

    #[test]
    fn arrays_sort_element_by_element() {
        assert!(key(&json!([1, 2])) < key(&json!([1, 2, 0])));
        assert!(key(&json!([1, 2, 0])) < key(&json!([1, 3])));
        assert!(key(&json!([[1], 2])) < key(&json!([[1, 0], 1])));
        assert!(key(&json!(["a", 9])) < key(&json!(["ab", 0])));
    }

    #[test]
    fn indefinite_and_definite_encodings_are_one_key() {
        // [1, "a"] indefinite, and {"b": 1, "a": 2} with its entries in another order.
        assert_eq!(
            sort_key(&[0x9f, 0x01, 0x61, b'a', 0xff], usize::MAX).unwrap(),
            key(&json!([1, "a"]))
        );
        assert_eq!(
            sort_key(&[0xa2, 0x61, b'b', 0x01, 0x61, b'a', 0x02], usize::MAX).unwrap(),
            key(&json!({"a": 2, "b": 1}))
        );
        // 1.5 as a half, a single and a double.
        assert_eq!(
            sort_key(&[0xf9, 0x3e, 0x00], usize::MAX).unwrap(),
            key(&1.5f64)
        );
    }

    #[test]
    fn prefixes_cover_exactly_what_starts_with_them() {
        let p = prefix_key(key(&"ab")).unwrap();
        let end = prefix_end(&p).unwrap();
        for inside in [key(&"ab"), key(&"ab\0"), key(&"abzzz")] {
            assert!(inside.starts_with(&p) && inside < end);
        }
        for outside in [key(&"a"), key(&"b"), key(&"ac")] {
            assert!(!outside.starts_with(&p));
        }
        let p = prefix_key(key(&json!(["user", 1]))).unwrap();
        assert!(key(&json!(["user", 1, "x"])).starts_with(&p));
        assert!(!key(&json!(["user", 10])).starts_with(&p));
        assert!(prefix_key(key(&7)).is_none());
    }

    #[test]
    fn deep_and_malformed_terms_are_refused() {
        let mut deep = vec![0x81; crate::MAX_TERM_DEPTH + 1];
        deep.push(0x01);
        assert!(sort_key(&deep, usize::MAX).is_err());
        assert!(sort_key(&[0x82, 0x01], usize::MAX).is_err());
    }

    /// `levels` arrays (`0x81`) or one-entry maps `{"k": ...}` (`0xa1 0x61 k`) around `inner`.
    fn nested(levels: usize, map: bool, inner: &[u8]) -> Vec<u8> {
        let head: &[u8] = if map { &[0xa1, 0x61, b'k'] } else { &[0x81] };
        let mut term = head.repeat(levels);
        term.extend_from_slice(inner);
        term
    }

    #[test]
    fn maps_nested_deep_count_each_copy_of_their_entries() {
        let text = encode(&"x".repeat(1000)).unwrap();
        let term = nested(100, true, &text);
        // Its key is about 1.5 KiB, but each of the 100 maps copies what it holds into its
        // parent as it closes: some 100 KiB of work, counted against the bound.
        assert!(sort_key(&term, 1 << 20).unwrap().len() < 2000);
        assert!(sort_key(&term, 50_000).is_err());
    }

    #[test]
    fn arrays_nested_deep_are_built_in_place() {
        let text = encode(&"x".repeat(1000)).unwrap();
        let term = nested(127, false, &text);
        let built = sort_key(&term, 1 << 20).unwrap();
        assert_eq!(built, sort_key(&term, built.len() + 1000).unwrap());
        assert_eq!(built[..127], [ARRAY; 127]);
        assert_eq!(built[built.len() - 127..], [END; 127]);
    }
}
