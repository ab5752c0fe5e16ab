//! The decoder against what it replaced: every shape the codec writes reads back, and any
//! bytes are refused or accepted as `minicbor_serde`'s deserializer refused or accepted them.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{MAX_TERM_DEPTH, decode, encode};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    Newtype(i64),
    Tuple(u8, String),
    Struct { a: Option<bool>, b: Vec<u16> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Marker;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Wrapper(u32);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pair(i16, char);

/// A byte string, written as CBOR bytes rather than an array of numbers.
#[derive(Debug, Clone, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
        }
        d.deserialize_byte_buf(Visit)
    }
}

/// Every serde shape but units, which the library read only from `[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plain {
    small: i8,
    mid: i32,
    big: u64,
    neg: i64,
    huge: i128,
    uhuge: u128,
    single: f32,
    double: f64,
    letter: char,
    text: String,
    bytes: Bytes,
    flag: bool,
    wrapper: Wrapper,
    pair: Pair,
    tuple: (u8, Option<String>),
    shapes: Vec<Shape>,
    nested: Vec<Vec<Option<Shape>>>,
    map: BTreeMap<String, Shape>,
    by_number: BTreeMap<u32, i8>,
}

/// [`Plain`] with units at every depth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WithUnits {
    plain: Plain,
    unit: (),
    marker: Marker,
    markers: Vec<Marker>,
    result: Result<(), String>,
    // Not `Option<()>`: `Some(())` is written as `null`, and so reads back as `None`.
    pair: ((), u8),
}

fn floats() -> impl Strategy<Value = f64> {
    use proptest::num::f64::*;
    NORMAL | SUBNORMAL | ZERO | INFINITE | NEGATIVE | POSITIVE
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Unit),
        any::<i64>().prop_map(Shape::Newtype),
        (any::<u8>(), ".{0,8}").prop_map(|(n, s)| Shape::Tuple(n, s)),
        (
            any::<Option<bool>>(),
            prop::collection::vec(any::<u16>(), 0..4)
        )
            .prop_map(|(a, b)| Shape::Struct { a, b }),
    ]
}

prop_compose! {
    fn plain()(
        (small, mid, big, neg, huge, uhuge) in
            (any::<i8>(), any::<i32>(), any::<u64>(), any::<i64>(), any::<i128>(), any::<u128>()),
        (single, double, letter, text, bytes, flag) in
            (floats(), floats(), any::<char>(), ".{0,12}", prop::collection::vec(any::<u8>(), 0..12), any::<bool>()),
        (wrapper, pair, tuple) in
            (any::<u32>(), (any::<i16>(), any::<char>()), (any::<u8>(), proptest::option::of(".{0,4}"))),
        shapes in prop::collection::vec(shape(), 0..4),
        nested in prop::collection::vec(prop::collection::vec(proptest::option::of(shape()), 0..3), 0..3),
        map in prop::collection::btree_map(".{0,6}", shape(), 0..3),
        by_number in prop::collection::btree_map(any::<u32>(), any::<i8>(), 0..3),
    ) -> Plain {
        Plain {
            small, mid, big, neg, huge, uhuge,
            single: single as f32, double, letter, text, bytes: Bytes(bytes), flag,
            wrapper: Wrapper(wrapper), pair: Pair(pair.0, pair.1), tuple,
            shapes, nested, map, by_number,
        }
    }
}

prop_compose! {
    fn with_units()(
        plain in plain(),
        markers in 0..3usize,
        result in proptest::option::of(".{0,4}"),
        n in any::<u8>(),
    ) -> WithUnits {
        WithUnits {
            plain,
            unit: (),
            marker: Marker,
            markers: vec![Marker; markers],
            result: result.map_or(Ok(()), Err),
            pair: ((), n),
        }
    }
}

/// What `decode` did before it had a decoder of its own, for a type without units:
/// `minicbor_serde`'s deserializer, after the same depth walk, with the same trailing check.
fn reference<T: DeserializeOwned>(term: &[u8]) -> Result<T, String> {
    if term.len() > MAX_TERM_DEPTH {
        crate::walk::check(term).map_err(|e| e.0)?;
    }
    let mut de = minicbor_serde::Deserializer::new(term);
    let value = T::deserialize(&mut de).map_err(|e| e.to_string())?;
    if de.decoder().position() != term.len() {
        return Err("bytes after the item".into());
    }
    Ok(value)
}

/// `decode` refuses what the reference refused, and accepts what it accepted as the same
/// value, except an ill-formed term the library accepted (it skipped a stray break as an
/// item): that `decode` refuses too.
fn agrees<T: DeserializeOwned + Serialize + std::fmt::Debug>(term: &[u8]) {
    let ours = decode::<T>(term);
    match reference::<T>(term) {
        // Compared as encodings, so that a NaN equals itself.
        Ok(value) => match ours {
            Ok(ours) => assert_eq!(
                encode(&ours),
                encode(&value),
                "{term:02x?}: {ours:?} and {value:?}"
            ),
            Err(e) => assert!(
                crate::walk::check(term).is_err(),
                "{term:02x?}: the library read {value:?}, decode refused: {e}"
            ),
        },
        Err(why) => assert!(
            ours.is_err(),
            "{term:02x?}: the library refused ({why}), decode read {:?}",
            ours.unwrap()
        ),
    }
}

/// Decode `term` as each type the tests know, comparing with the reference where it can.
fn agrees_on_every_type(term: &[u8]) {
    agrees::<Plain>(term);
    agrees::<Shape>(term);
    agrees::<Vec<Option<Shape>>>(term);
    agrees::<serde_json::Value>(term);
    agrees::<(i128, u128, char)>(term);
    agrees::<BTreeMap<String, Vec<f64>>>(term);
    agrees::<String>(term);
    agrees::<Bytes>(term);
    agrees::<(bool, u8, i8, u16, i16)>(term);
    agrees::<(u32, i32, u64, i64)>(term);
    agrees::<(f32, f64, Option<f32>)>(term);
    // A first item that is not of the type: each type's own refusal is compared too.
    agrees::<bool>(term);
    agrees::<u8>(term);
    agrees::<i8>(term);
    agrees::<u16>(term);
    agrees::<i32>(term);
    agrees::<u64>(term);
    agrees::<i64>(term);
    agrees::<f32>(term);
    agrees::<f64>(term);
    agrees::<char>(term);
    agrees::<i128>(term);
    agrees::<u128>(term);
    // Units read from `null` too, which the library did not: only never a panic.
    let _ = decode::<WithUnits>(term);
    let _ = decode::<()>(term);
    let _ = decode::<Vec<Marker>>(term);
}

/// A head of major type `major` with argument `n`, in the shortest form but for `wide`
/// (then eight bytes).
fn head(major: u8, n: u64, wide: bool) -> Vec<u8> {
    let m = major << 5;
    match n {
        _ if wide => [vec![m | 27], n.to_be_bytes().to_vec()].concat(),
        0..24 => vec![m | n as u8],
        24..256 => vec![m | 24, n as u8],
        256..65536 => [vec![m | 25], (n as u16).to_be_bytes().to_vec()].concat(),
        _ => [vec![m | 26], (n as u32).to_be_bytes().to_vec()].concat(),
    }
}

/// Any one CBOR item, mostly well formed: every kind of head, strings definite or in
/// chunks, arrays and maps definite or not, tags, simple values and floats of each width.
fn item() -> impl Strategy<Value = Vec<u8>> {
    let scalar = prop_oneof![
        (0..2u8, any::<u64>(), any::<bool>()).prop_map(|(major, n, wide)| head(major, n, wide)),
        (0..2u8, 0..30u64).prop_map(|(major, n)| head(major, n, false)),
        prop::collection::vec(any::<u8>(), 0..6)
            .prop_map(|b| [head(2, b.len() as u64, false), b].concat()),
        ".{0,4}".prop_map(|s| [head(3, s.len() as u64, false), s.into_bytes()].concat()),
        // In two chunks, which may cut a character.
        (".{0,4}", 0..8usize, any::<bool>()).prop_map(|(s, cut, text)| {
            let b = s.into_bytes();
            let (x, y) = b.split_at(cut.min(b.len()));
            let major = if text { 3 } else { 2 };
            let mut t = vec![(major << 5) | 31];
            t.extend(head(major, x.len() as u64, false));
            t.extend(x);
            t.extend(head(major, y.len() as u64, false));
            t.extend(y);
            t.push(0xff);
            t
        }),
        (0xe0..=0xffu8, any::<[u8; 8]>()).prop_map(|(b, arg)| {
            let width = match b & 0x1f {
                24 => 1,
                25 => 2,
                26 => 4,
                27 => 8,
                _ => 0,
            };
            [vec![b], arg[..width].to_vec()].concat()
        }),
        any::<f32>().prop_map(|f| [vec![0xfa], f.to_be_bytes().to_vec()].concat()),
        any::<f64>().prop_map(|f| [vec![0xfb], f.to_be_bytes().to_vec()].concat()),
    ];
    scalar.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..4), any::<bool>()).prop_map(
                |(items, indefinite)| {
                    let mut t = if indefinite {
                        vec![0x9f]
                    } else {
                        head(4, items.len() as u64, false)
                    };
                    t.extend(items.concat());
                    if indefinite {
                        t.push(0xff);
                    }
                    t
                }
            ),
            (
                prop::collection::vec((inner.clone(), inner.clone()), 0..3),
                any::<bool>()
            )
                .prop_map(|(entries, indefinite)| {
                    let mut t = if indefinite {
                        vec![0xbf]
                    } else {
                        head(5, entries.len() as u64, false)
                    };
                    for (k, v) in entries {
                        t.extend(k);
                        t.extend(v);
                    }
                    if indefinite {
                        t.push(0xff);
                    }
                    t
                }),
            (0..5u64, inner).prop_map(|(tag, item)| [head(6, tag, false), item].concat()),
        ]
    })
}

/// A term with a few bytes changed, cut or inserted.
fn mutated(term: Vec<u8>, edits: Vec<(usize, u8, u8)>) -> Vec<u8> {
    let mut term = term;
    for (at, kind, byte) in edits {
        let at = at % (term.len() + 1);
        match kind % 4 {
            0 if at < term.len() => term[at] = byte,
            1 => term.insert(at, byte),
            2 if at < term.len() => {
                term.remove(at);
            }
            _ => term.truncate(at),
        }
    }
    term
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_shape_reads_back_as_it_was_written(value in with_units()) {
        let term = encode(&value).unwrap();
        prop_assert_eq!(decode::<WithUnits>(&term), Ok(value.clone()));
        // The library reads the same bytes as the same value where it reads them at all.
        let plain = encode(&value.plain).unwrap();
        prop_assert_eq!(reference::<Plain>(&plain), Ok(value.plain.clone()));
        prop_assert_eq!(decode::<Plain>(&plain), Ok(value.plain));
    }


    #[test]
    fn damaged_terms_are_refused_or_read_as_the_library_read_them(
        value in plain(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        let term = mutated(encode(&value).unwrap(), edits);
        agrees_on_every_type(&term);
    }
}

proptest! {
    // Many: each first byte should come first a dozen times.
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn random_bytes_are_refused_or_read_as_the_library_read_them(
        bytes in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        agrees_on_every_type(&bytes);
    }

    #[test]
    fn random_items_are_refused_or_read_as_the_library_read_them(
        item in item(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..2),
    ) {
        agrees_on_every_type(&item);
        agrees_on_every_type(&mutated(item, edits));
    }
}

#[test]
fn the_fuzz_seeds_are_refused_or_read_as_the_library_read_them() {
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus");
    let mut seeds = 0;
    for dir in ["term", "sdk_message"] {
        for entry in std::fs::read_dir(format!("{corpus}/{dir}")).unwrap() {
            let term = std::fs::read(entry.unwrap().path()).unwrap();
            agrees_on_every_type(&term);
            seeds += 1;
        }
    }
    assert!(seeds >= 10, "{seeds} seeds");
}

#[test]
fn units_read_from_null_or_an_empty_array_definite_or_not() {
    for term in [&[0xf6][..], &[0x80], &[0x9f, 0xff]] {
        assert_eq!(decode::<()>(term), Ok(()), "{term:02x?}");
        assert_eq!(decode::<Marker>(term), Ok(Marker), "{term:02x?}");
    }
    let e = decode::<()>(&[0x9f, 0x01, 0xff]).unwrap_err();
    assert_eq!(
        e.0,
        "invalid type: sequence, expected unit, in the item ending at position 2"
    );
    let e = decode::<Marker>(&[0x01]).unwrap_err();
    assert_eq!(
        e.0,
        "unexpected type u8 at position 0: expected unit (null)"
    );
}

#[test]
fn a_stray_break_is_not_skipped_as_an_item() {
    // {"size": 1, "x": <break>}: the library skipped the break as the unknown field's value.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Size {
        size: u8,
    }
    let term = [0xa2, 0x64, b's', b'i', b'z', b'e', 0x01, 0x61, b'x', 0xff];
    assert_eq!(reference::<Size>(&term), Ok(Size { size: 1 }));
    let e = decode::<Size>(&term).unwrap_err();
    assert_eq!(e.0, "unexpected type break at position 9: expected an item");
    // A well-formed unknown field, tagged and indefinite, is skipped.
    let term = [
        0xa2, 0x61, b'x', 0xc1, 0x9f, 0x7f, 0x61, b'a', 0xff, 0xff, 0x64, b's', b'i', b'z', b'e',
        0x01,
    ];
    assert_eq!(decode::<Size>(&term), Ok(Size { size: 1 }));
}

#[test]
fn a_text_chunk_must_be_utf8_on_its_own() {
    // "é" split across two chunks of an indefinite string.
    let term = [0x7f, 0x61, 0xc3, 0x61, 0xa9, 0xff];
    let e = decode::<serde_json::Value>(&term).unwrap_err();
    assert_eq!(e.0, "invalid utf-8 at position 0");
    assert!(reference::<serde_json::Value>(&term).is_err());
    let whole = [0x7f, 0x62, 0xc3, 0xa9, 0xff];
    assert_eq!(decode::<serde_json::Value>(&whole), Ok("é".into()));
    // A `String` reads only a definite string, as the library read it.
    assert!(decode::<String>(&whole).is_err());
}

#[test]
fn decode_errors_say_where() {
    let cases: [(&[u8], &str); 8] = [
        (&[0x18], "malformed CBOR: unexpected end at position 0"),
        (
            &[0x19, 0x01, 0x00],
            "256 overflows target type at position 0: expected u8",
        ),
        (
            &[0x38, 0x80],
            "unexpected type i16 at position 0: expected u8",
        ),
        (
            &[0xf9, 0x3c, 0x00],
            "unexpected type f16 at position 0: expected u8",
        ),
        (
            &[0x83, 0x01, 0x02, 0x03],
            "invalid length 3 at position 0: expected an array of 2",
        ),
        (
            &[0xc4, 0x41, 0x01],
            "unexpected tag 4 at position 0: expected positive bignum tag (2)",
        ),
        (
            &[0x1c],
            "malformed CBOR: reserved additional information at position 0",
        ),
        (
            &[0x9f],
            "unexpected type indefinite array at position 0: expected u8",
        ),
    ];
    for (term, text) in cases {
        let e = match term[0] {
            0x83 => decode::<(u8, u8)>(term).unwrap_err(),
            0xc4 => decode::<u128>(term).unwrap_err(),
            _ => decode::<u8>(term).unwrap_err(),
        };
        assert_eq!(e.0, text, "{term:02x?}");
    }
    assert_eq!(
        decode::<i8>(&[0x38, 0x80]).unwrap_err().0,
        "-129 overflows target type at position 0: expected i8"
    );
}

#[test]
fn bignums_read_as_i128_and_u128() {
    for n in [u128::MAX, u128::from(u64::MAX) + 1, 0] {
        assert_eq!(decode::<u128>(&encode(&n).unwrap()), Ok(n));
    }
    for n in [i128::MIN, i128::MAX, -1 - i128::from(u64::MAX), -1] {
        assert_eq!(decode::<i128>(&encode(&n).unwrap()), Ok(n));
    }
    // Leading zero bytes are allowed; more than 16 bytes of digits are not.
    assert_eq!(decode::<u128>(&[0xc2, 0x43, 0, 0, 7]), Ok(7));
    let mut long = vec![0xc2, 0x51, 1];
    long.extend([0; 16]);
    assert!(decode::<u128>(&long).is_err());
}

#[test]
fn an_enum_is_its_name_or_a_map_of_one_entry_from_its_name() {
    assert_eq!(
        decode::<Shape>(&encode(&Shape::Unit).unwrap()),
        Ok(Shape::Unit)
    );
    let newtype = encode(&Shape::Newtype(-2)).unwrap();
    assert_eq!(newtype[0], 0xa1);
    assert_eq!(decode::<Shape>(&newtype), Ok(Shape::Newtype(-2)));
    // `[{}, "Unit"]`: a map of no entries is not an enum's, nor is one of two.
    let empty = [0x82, 0xa0, 0x64, b'U', b'n', b'i', b't'];
    assert!(reference::<Vec<Shape>>(&empty).is_err());
    let e = decode::<Vec<Shape>>(&empty).unwrap_err();
    assert_eq!(e.0, "invalid enum map length at position 1");
    let mut two = vec![0xa2];
    two.extend(&newtype[1..]);
    two.extend(&newtype[1..]);
    assert!(decode::<Shape>(&two).is_err());
    // An indefinite map is read as the variant's name, as the library read it.
    let e = decode::<Shape>(&[0xbf, 0xff]).unwrap_err();
    assert_eq!(
        e.0,
        "unexpected type indefinite map at position 0: expected text (definite length)"
    );
}

#[derive(Debug, PartialEq, Deserialize)]
enum Chain {
    Neg(Box<Chain>),
    Zero,
}

#[test]
fn a_flat_array_cannot_make_a_recursive_value_recurse_past_the_bound() {
    // A variant named alone reads the next item as its value: inside one flat array (which
    // the walk passes), `"Neg"` after `"Neg"` nests a level each, a frame of the decoder's
    // stack each.
    let chain = |n: usize| {
        let mut term = head(4, n as u64 + 1, false);
        for _ in 0..n {
            term.extend(encode(&"Neg").unwrap());
        }
        term.extend(encode(&"Zero").unwrap());
        term
    };
    let e = decode::<Vec<Chain>>(&chain(10 * MAX_TERM_DEPTH)).unwrap_err();
    assert!(e.0.contains("nested deeper than 256"), "{e}");
    // Within the bound it reads as the library read it (the array's count is off: one item
    // took all the others).
    let e = decode::<Vec<Chain>>(&chain(100)).unwrap_err();
    assert!(!e.0.contains("nested deeper"), "{e}");
}

#[test]
fn a_term_as_deep_as_the_walk_allows_still_decodes() {
    let mut term = vec![0x81; MAX_TERM_DEPTH - 1];
    term.push(0x80);
    assert!(decode::<serde_json::Value>(&term).is_ok());
    let mut term = [0xa1, 0x61, b'k'].repeat(MAX_TERM_DEPTH - 1);
    term.push(0xf6);
    assert!(decode::<serde_json::Value>(&term).is_ok());
}
