//! The committed fuzz corpora replayed, and property tests that feed the same bodies
//! generated input: whole manifests, request lines and terms of the right shape with
//! arbitrary (often absurd) values, and mutations of the corpora. Small by default
//! (`PROPTEST_CASES`, 256), so CI runs them in seconds.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// Every file in `fuzz/corpus/<target>/`.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read a corpus file");
            (p, bytes)
        })
        .collect()
}

/// Run `body` on each input, naming the file that fails.
fn replay(target: &str, body: fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        if std::panic::catch_unwind(|| body(&bytes)).is_err() {
            panic!("{} fails", path.display());
        }
    }
}

#[test]
fn the_manifest_corpus_is_read_without_panicking() {
    replay("manifest", manifest);
}

#[test]
fn the_control_request_corpus_is_decoded_without_panicking() {
    replay("control_request", control_request);
}

#[test]
fn the_term_corpus_is_read_without_panicking() {
    replay("term", term);
}

/// A JSON value of any shape, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z\u{e9}\"\\\\\n]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{0,4}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A number as a manifest holds it: small, zero, or as large as TOML goes.
fn toml_number() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0),
        1i64..100_000,
        Just(i64::MAX),
        Just(u32::MAX as i64 + 1),
        Just(-1),
    ]
}

/// One `[[children]]` table (or `[[children.children]]`, by `header`), with fields drawn
/// from what the manifest knows and what it does not.
fn child_table(header: &'static str) -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["echo", "kv", "nope", ""]),
        prop::sample::select(vec!["a", "b", "", "echo"]),
        prop::sample::subsequence(
            vec![
                "restart",
                "shutdown",
                "start_timeout_ms",
                "hibernate_after_ms",
                "memory_limit",
                "callback_timeout_ms",
                "mailbox",
                "via",
                "type",
                "strategy",
                "intensity",
                "period_ms",
                "args",
                "unknown_field",
            ],
            0..5,
        ),
        toml_number(),
    )
        .prop_map(move |(module, name, fields, n)| {
            let mut t = format!("[[{header}]]\nmodule = \"{module}\"\nname = \"{name}\"\n");
            for f in fields {
                let v = match f {
                    "restart" => "\"transient\"".to_owned(),
                    "shutdown" => n.to_string(),
                    "mailbox" => format!("{{ bound = {n}, policy = \"drop_newest\" }}"),
                    "via" => format!("[\"R\", {n}]"),
                    "type" => "\"supervisor\"".to_owned(),
                    "strategy" => "\"simple_one_for_one\"".to_owned(),
                    "args" => format!("{{ x = [{n}, nan] }}"),
                    "intensity" => (n % (1 << 33)).to_string(),
                    _ => n.to_string(),
                };
                t.push_str(&format!("{f} = {v}\n"));
            }
            t
        })
}

/// A whole manifest: a `[node]` table with each setting drawn, modules, a registry, and
/// children with nested ones.
fn manifest_text() -> impl Strategy<Value = String> {
    (
        prop::sample::subsequence(
            vec![
                "max_message_size",
                "control_max_request_bytes",
                "control_idle_timeout_ms",
                "control_max_connections",
                "max_processes",
                "max_timers",
                "memory_limit",
                "callback_timeout_ms",
            ],
            0..8,
        ),
        toml_number(),
        prop::collection::vec(child_table("children"), 0..4),
        prop::collection::vec(child_table("children.children"), 0..3),
    )
        .prop_map(|(node, n, children, grandchildren)| {
            let mut t = String::from("[node]\nname = \"n\"\n");
            for f in node {
                t.push_str(&format!("{f} = {n}\n"));
            }
            t.push_str(
                "[modules]\necho = \"echo.wasm\"\nkv = { path = \"kv.wasm\", vsn = \"1\" }\n\
                 [[registries]]\nname = \"R\"\nkeys = \"unique\"\n",
            );
            for c in children {
                t.push_str(&c);
            }
            for c in grandchildren {
                t.push_str(&c);
            }
            t
        })
}

/// `bytes` with a few bytes replaced, inserted or removed at `edits`' positions.
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

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec(any::<(usize, u8, u8)>(), 1..8)
}

/// A request object: a known or unknown `op` and fields of any JSON value.
fn request_object() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "call",
            "cast",
            "send",
            "stop",
            "whereis",
            "ps",
            "tree",
            "state",
            "start",
            "start_child",
            "suspend",
            "resume",
            "upgrade",
            "change_code",
            "reload",
            "rollback",
            "modules",
            "CALL",
        ]),
        prop::collection::btree_map(
            prop::sample::select(vec![
                "dest",
                "msg",
                "timeout_ms",
                "reason",
                "name",
                "set",
                "module",
                "args",
                "supervisor",
                "path",
                "extra",
                "policy",
                "force",
                "eager",
                "dry_run",
                "other",
            ]),
            prop_oneof![
                json_value(),
                json_value().prop_map(|key| json!({"via": ["R", key]})),
                any::<u64>().prop_map(Value::from),
            ],
            0..5,
        ),
    )
        .prop_map(|(op, fields)| {
            let mut object = serde_json::Map::new();
            object.insert("op".into(), op.into());
            for (k, v) in fields {
                object.insert(k.into(), v);
            }
            Value::Object(object)
        })
}

proptest! {
    #[test]
    fn generated_manifests_are_accepted_or_refused_at_a_line_of_theirs(text in manifest_text()) {
        manifest(text.as_bytes());
    }

    #[test]
    fn mutated_manifests_are_accepted_or_refused_at_a_line_of_theirs(
        seed in 0usize..64,
        edits in edits(),
    ) {
        let seeds = corpus("manifest");
        let (_, bytes) = &seeds[seed % seeds.len()];
        manifest(&mutated(bytes, &edits));
    }

    #[test]
    fn request_lines_decode_or_are_refused_in_one_line(
        requests in prop::collection::vec(request_object(), 1..4),
    ) {
        let mut lines = Vec::new();
        for r in &requests {
            lines.extend(serde_json::to_vec(r).expect("JSON"));
            lines.push(b'\n');
        }
        control_request(&lines);
    }

    #[test]
    fn arbitrary_bytes_on_a_control_connection_are_framed_and_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        control_request(&bytes);
    }

    #[test]
    fn terms_of_json_values_read_back_as_themselves(value in json_value()) {
        let t = from_json(&value);
        term(&t);
        prop_assert_eq!(to_json(&t).expect("a JSON value's term converts back"), value);
    }

    #[test]
    fn mutated_terms_are_read_or_refused(value in json_value(), edits in edits()) {
        term(&mutated(&from_json(&value), &edits));
    }

    #[test]
    fn arbitrary_bytes_as_terms_are_read_or_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        term(&bytes);
    }
}
