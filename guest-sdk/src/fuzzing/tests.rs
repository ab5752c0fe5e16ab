//! The committed `sdk_message` corpus replayed, and property tests: values of the
//! representative types round-trip, and arbitrary or mutated bytes decode or are refused.
//! Small by default (`PROPTEST_CASES`, 256), so CI runs them in seconds.

use std::path::Path;

use proptest::prelude::*;

use super::*;

#[test]
fn the_sdk_message_corpus_is_decoded_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sdk_message");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for path in files {
        let bytes = std::fs::read(&path).expect("read a corpus file");
        if std::panic::catch_unwind(|| message(&bytes)).is_err() {
            panic!("{} fails", path.display());
        }
    }
}

fn request() -> impl Strategy<Value = Request> {
    let leaf = prop_oneof![
        Just(Request::Ping),
        any::<String>().prop_map(Request::Get),
        (
            any::<String>(),
            prop::collection::vec(any::<u8>(), 0..16),
            any::<Option<u32>>()
        )
            .prop_map(|(key, value, ttl_ms)| Request::Put { key, value, ttl_ms }),
        any::<(i64, i64)>().prop_map(|(a, b)| Request::Move(a, b)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Request::Batch)
    })
}

fn state() -> impl Strategy<Value = State> {
    (
        any::<u64>(),
        prop::collection::btree_map(any::<String>(), any::<u32>(), 0..4),
        any::<Option<(i32, String)>>(),
        any::<f64>(),
        any::<bool>(),
    )
        .prop_map(|(count, names, last, load, open)| State {
            count,
            names,
            last,
            load,
            open,
            nothing: (),
        })
}

/// `bytes` with a few bytes replaced, inserted or removed.
fn mutated(bytes: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(at, op, byte) in edits {
        let at = if out.is_empty() { 0 } else { at % out.len() };
        match op % 3 {
            0 if !out.is_empty() => out[at] = byte,
            1 => out.insert(at, byte),
            _ if !out.is_empty() => {
                out.remove(at);
            }
            _ => out.push(byte),
        }
    }
    out
}

proptest! {
    #[test]
    fn requests_round_trip(r in request()) {
        let bytes = crate::encode(&r);
        prop_assert_eq!(crate::decode::<Request>(&bytes), Ok(r));
        message(&bytes);
    }

    #[test]
    fn states_round_trip(s in state()) {
        let bytes = crate::encode(&s);
        let back: State = crate::decode(&bytes).expect("a state decodes");
        prop_assert_eq!(crate::encode(&back), bytes.clone());
        message(&bytes);
    }

    #[test]
    fn mutated_requests_decode_or_are_refused(
        r in request(),
        edits in prop::collection::vec(any::<(usize, u8, u8)>(), 1..8),
    ) {
        message(&mutated(&crate::encode(&r), &edits));
    }

    #[test]
    fn arbitrary_bytes_decode_or_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        message(&bytes);
    }
}
