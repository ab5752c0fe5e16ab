//! The bodies of the fuzz targets in `fuzz/`: each takes arbitrary bytes through a decoder
//! that reads hostile input and checks what must hold whatever the bytes (no panic, errors
//! that point inside the input, round trips). The same functions replay the committed
//! corpora (`fuzz/corpus/<target>/`) as ordinary tests, so CI runs every input a fuzz run
//! kept without building the fuzzer.
//!
//! Not a supported API: it exists for `fuzz/` and the tests.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use crate::control::Request;
use crate::control::connection::{Next, answer_line, decode_request, read_line};
use crate::manifest::{Manifest, ManifestError};
use crate::term::{canonical, check_well_formed, from_json, shown, to_json};

/// Bytes as a manifest file: read, checked, and turned into the runtime's supervisor spec.
///
/// # Panics
/// If the checks panic, or an error names a line outside the text or another file.
pub fn manifest(data: &[u8]) {
    let path = manifest_dir().join("app.toml");
    // Lines as an editor counts them; a line after a final newline counts (it is empty).
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    let within = |e: &ManifestError| {
        assert_eq!(e.file, path, "{e}");
        if let Some(line) = e.line {
            assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
        }
        assert!(!e.to_string().is_empty());
    };
    let manifest = match Manifest::from_bytes(data.to_vec(), &path) {
        Ok(m) => m,
        Err(e) => return within(&e),
    };
    let mut tables = vec![&manifest.supervisor];
    while let Some(sup) = tables.pop() {
        assert!((1..=lines).contains(&sup.line), "{}", sup.line);
        for child in &sup.children {
            assert!((1..=lines).contains(&child.line), "{}", child.line);
            match &child.kind {
                crate::manifest::ChildTableKind::Supervisor(s) => tables.push(s),
                crate::manifest::ChildTableKind::Worker(w) => {
                    check_well_formed(&w.args).expect("args are a term the host reads");
                }
            }
        }
    }
    if let Err(e) = manifest.supervisor.to_spec().validate() {
        within(&manifest.spec_error(&e));
    }
}

/// The directory a fuzzed manifest is read in: `echo.wasm` and `kv.wasm` (empty files: the
/// manifest only checks that they exist) and a directory `var` to grant.
fn manifest_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("otter-fuzz-manifest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("var")).expect("create the fixture directory");
        for module in ["echo.wasm", "kv.wasm"] {
            std::fs::write(dir.join(module), b"").expect("write a fixture module");
        }
        dir
    })
}

/// The longest request line the fuzzed connection takes: small, so that inputs of a few
/// kilobytes reach the limit.
pub const MAX_REQUEST_BYTES: usize = 512;

/// Bytes as what a client writes on a control connection: cut into lines by the endpoint's
/// own reader (at most [`MAX_REQUEST_BYTES`] each) and each decoded as a request.
///
/// # Panics
/// If framing or decoding panics, a refusal is not one line, or a request does not survive
/// being written out and read back.
pub fn control_request(data: &[u8]) {
    // A small buffer, so that lines straddle its refills.
    let mut reader = tokio::io::BufReader::with_capacity(16, data);
    let mut line = Vec::new();
    loop {
        line.clear();
        let next = ready(read_line(&mut reader, &mut line, MAX_REQUEST_BYTES))
            .expect("reading from memory cannot fail");
        match next {
            Next::Line => {
                assert!(line.len() <= MAX_REQUEST_BYTES);
                request_line(&line);
            }
            Next::TooLong => {
                assert_eq!(line.len(), MAX_REQUEST_BYTES + 1);
                return;
            }
            Next::Closed => return,
            Next::Idle | Next::Evicted => unreachable!("only the connection's task reports these"),
        }
    }
}

fn request_line(line: &[u8]) {
    let request = match decode_request(line) {
        Ok(r) => r,
        Err(refusal) => {
            let out = answer_line(&refusal);
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(out.last(), Some(&b'\n'));
            return;
        }
    };
    // Every JSON value a request carries is a term the host can read.
    let values: Vec<&serde_json::Value> = match &request {
        Request::Call { msg, .. } | Request::Cast { msg, .. } | Request::Send { msg, .. } => {
            vec![msg]
        }
        Request::Stop {
            reason: Some(v), ..
        }
        | Request::State { set: Some(v), .. } => vec![v],
        Request::Start { args, .. } | Request::StartChild { args, .. } => vec![args],
        Request::Upgrade { extra, .. }
        | Request::ChangeCode { extra, .. }
        | Request::Reload { extra, .. }
        | Request::Rollback { extra, .. } => vec![extra],
        _ => Vec::new(),
    };
    for v in values {
        check_well_formed(&from_json(v)).expect("a request's JSON is a readable term");
    }
    let written = serde_json::to_vec(&request).expect("a request is JSON");
    let again = decode_request(&written).expect("a written request reads back");
    assert_eq!(again, request);
}

/// Bytes as a term from a guest: checked, converted to JSON, decoded, displayed and
/// canonicalised, as the host does with guests' terms.
///
/// # Panics
/// If any of those panics or they disagree: what the walker refuses no converter accepts;
/// JSON → term → JSON and decode → encode → decode are the identity; canonical forms are
/// fixed points.
pub fn term(data: &[u8]) {
    let well_formed = check_well_formed(data).is_ok();
    assert!(shown(data).to_string().chars().count() <= otter_common::SHOWN + 1);
    let canon = canonical(data);
    assert_eq!(canon.is_some(), well_formed);
    if let Some(c) = &canon {
        assert_eq!(
            canonical(c).as_ref(),
            Some(c),
            "canonical forms are fixed points"
        );
    }
    if let Ok(json) = to_json(data) {
        assert!(well_formed);
        let term = from_json(&json);
        assert_eq!(to_json(&term).expect("JSON's term converts back"), json);
    }
    if let Ok(value) = crate::term::decode::<serde_json::Value>(data) {
        let again = crate::term::encode(&value).expect("a JSON value encodes");
        let back: serde_json::Value = crate::term::decode(&again).expect("its term decodes");
        assert_eq!(back, value);
    }
}

/// Poll a future that never waits (it reads from memory) to its end.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("reading from memory never waits"),
    }
}

#[cfg(test)]
mod tests;
