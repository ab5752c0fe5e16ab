//! Loading hostile or broken modules: refused with a reason, never a panic or a hang.

use std::path::Path;
use std::time::{Duration, Instant};

use otter::{LoadError, Node, NodeConfig};

use crate::support::*;

/// A node that compiles every time, so no test depends on another's cache entries.
fn uncached_node(config: &mut NodeConfig) -> Node {
    Node::new(config.compile_cache(None).clone()).expect("node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_truncation_of_a_module_is_refused_without_a_panic() {
    let node = uncached_node(&mut NodeConfig::default());
    let bytes = std::fs::read(wasm("echo")).expect("echo.wasm");
    // A cut exactly between two sections leaves a well-formed, smaller module (the trailing
    // custom sections gone), which may load: every other cut must be refused.
    let boundaries = section_ends(&bytes);
    let lengths = (0..bytes.len())
        .step_by(97)
        .chain(bytes.len() - 8..bytes.len())
        .filter(|len| !boundaries.contains(len));
    for len in lengths {
        let r = node
            .load_module_bytes("echo", Path::new("echo.wasm"), &bytes[..len])
            .await;
        match r {
            Err(LoadError::Invalid { reason, .. }) => {
                assert!(
                    !reason.is_empty() && !reason.contains('\n'),
                    "{len}: {reason}"
                )
            }
            other => panic!(
                "{len} bytes of {}: expected Invalid, got {other:?}",
                bytes.len()
            ),
        }
    }
    // The node is unharmed: the whole module still loads.
    node.load_module("echo", wasm("echo"))
        .await
        .expect("the whole module loads");
}

/// Where each top-level section of a core module ends (its header's 8 bytes, then every
/// section: an id byte and a LEB128 size).
fn section_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let (mut size, mut shift, mut i) = (0usize, 0, at + 1);
        while let Some(&b) = bytes.get(i) {
            size |= usize::from(b & 0x7f) << shift;
            shift += 7;
            i += 1;
            if b < 0x80 {
                break;
            }
        }
        at = i + size;
        ends.push(at);
    }
    ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vsn_that_never_returns_fails_the_load_after_the_time_limit() {
    let limit = Duration::from_millis(300);
    let mut config = NodeConfig::default();
    config.engine().load_timeout(limit);
    let node = uncached_node(&mut config);
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        node.load_module("slow", wasm("slow_vsn")),
    )
    .await
    .expect("the load gives up by itself");
    let took = started.elapsed();
    match r {
        Err(LoadError::Invalid { reason, .. }) => {
            assert_eq!(reason, "vsn() did not return within 300 ms")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(took >= limit, "gave up after {took:?}");
    // Compiling comes before the limit starts; it takes well under this.
    assert!(
        took < limit + Duration::from_secs(5),
        "gave up after {took:?}"
    );
    assert!(node.module("slow").is_none());
    // The node goes on loading and serving.
    node.load_module("echo", wasm("echo"))
        .await
        .expect("echo loads");
    let pid = node
        .spawn("echo", otter::encode(&()).unwrap(), Default::default())
        .await
        .expect("echo starts");
    let pong: serde_json::Value = node.call(pid, &"ping").await.expect("ping");
    assert_eq!(pong, serde_json::json!({"pong": 1}));
    node.shutdown().await;
}

/// `module` with a custom section appended (valid at the end of a core module).
fn with_custom_section(module: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    let mut out = module.to_vec();
    out.push(0);
    leb(body.len(), &mut out);
    out.extend(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_version_is_read_from_the_sdk_section_without_calling_vsn() {
    // slow_vsn's `vsn` never returns: only a version read from the section lets it load.
    let mut config = NodeConfig::default();
    config.engine().load_timeout(Duration::from_secs(60));
    let node = uncached_node(&mut config);
    let bytes = std::fs::read(wasm("slow_vsn")).expect("slow_vsn.wasm");
    let bytes = with_custom_section(&bytes, "otter-vsn", b"7.1");
    let module = tokio::time::timeout(
        Duration::from_secs(20),
        node.load_module_bytes("slow", Path::new("slow_vsn.wasm"), &bytes),
    )
    .await
    .expect("the load does not run vsn")
    .expect("loads");
    assert_eq!(module.vsn(), "7.1");
    // The SDK's macro writes the section.
    let echo = node.load_module("echo", wasm("echo")).await.expect("echo");
    assert_eq!(echo.vsn(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_or_doubled_version_section_is_refused() {
    let node = uncached_node(&mut NodeConfig::default());
    let bytes = std::fs::read(wasm("echo")).expect("echo.wasm");
    let long = with_custom_section(&bytes, "otter-vsn", &[b'1'; 256]);
    let binary = with_custom_section(&bytes, "otter-vsn", &[0xff]);
    let doubled = with_custom_section(&bytes, "otter-vsn", b"2");
    for (what, bytes, want) in [
        ("long", long, "256 bytes long"),
        ("binary", binary, "not UTF-8"),
        ("doubled", doubled, "more than one"),
    ] {
        match node
            .load_module_bytes("echo", Path::new("echo.wasm"), &bytes)
            .await
        {
            Err(LoadError::Invalid { reason, .. }) => {
                assert!(reason.contains(want), "{what}: {reason}")
            }
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_or_directory_is_refused_as_a_module_without_reading_it() {
    let node = uncached_node(&mut NodeConfig::default());
    for path in ["/dev/zero", "/tmp"] {
        let started = Instant::now();
        match node.load_module("m", path).await {
            Err(LoadError::Io { source, .. }) => {
                assert!(
                    source.to_string().contains("not a regular file"),
                    "{source}"
                )
            }
            other => panic!("{path}: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} was read"
        );
    }
    assert!(node.module("m").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_timeout_too_long_to_add_to_now_is_no_deadline() {
    let mut config = NodeConfig::default();
    config.engine().load_timeout(Duration::MAX);
    let node = Node::new(config).expect("node");
    let module = node.load_module("echo", wasm("echo")).await.unwrap();
    assert_eq!(module.vsn(), "1");
}
