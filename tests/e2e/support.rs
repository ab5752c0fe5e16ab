//! What every end-to-end test needs: the guests built to wasm, and a node with them loaded.

use std::path::PathBuf;
use std::sync::OnceLock;

use otter::{Node, Pid, SpawnOptions, StartError};
use serde_json::{Value, json};

/// The directory with the built guests; builds them (and installs the wasm target) once.
pub fn guests() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| xtask::build_guests().expect("build the example guests"))
        .clone()
}

pub fn wasm(name: &str) -> PathBuf {
    guests().join(format!("{name}.wasm"))
}

/// A node with `echo`, `kv`, `counter`, `caller` and `probe` loaded.
pub async fn node() -> Node {
    let node = Node::new(Default::default()).expect("node");
    for m in ["echo", "kv", "counter", "caller", "probe"] {
        node.load_module(m, wasm(m)).await.expect("load module");
    }
    node
}

/// Start a probe with `args` (see guests/probe).
pub async fn try_probe(node: &Node, args: Value, name: Option<&str>) -> Result<Pid, StartError> {
    let mut opts = SpawnOptions::default();
    if let Some(n) = name {
        opts = opts.name(n);
    }
    node.spawn("probe", otter::from_json(&args), opts).await
}

pub async fn probe(node: &Node) -> Pid {
    try_probe(node, json!({}), None)
        .await
        .expect("probe starts")
}

pub async fn named_probe(node: &Node, name: &str, args: Value) -> Pid {
    try_probe(node, args, Some(name))
        .await
        .expect("probe starts")
}

/// The probe's event log.
pub async fn events(node: &Node, dest: impl Into<otter::Dest>) -> Vec<String> {
    node.call(dest, &json!("log")).await.expect("log")
}

/// Poll until `f` holds or 2 s pass.
pub async fn eventually<F: AsyncFnMut() -> bool>(mut f: F) -> bool {
    for _ in 0..200 {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

/// This test process's resident memory, in KiB.
pub fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// How many descriptors this test program (the node runs in it) has open on `file`.
pub fn open_descriptors(file: &std::path::Path) -> usize {
    let file = file.canonicalize().expect("the file exists");
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| *target == file)
        .count()
}
