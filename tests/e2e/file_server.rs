//! The chapter's FileServer (guests/file_server, built for wasm32-wasip2): UTF-8 lines in
//! `write.log` inside the directory its module is granted, its `terminate` line on a stop and
//! after a panic, and nothing outside its grant.

use std::path::Path;
use std::time::Duration;

use otter::{CallError, DirMode, ExitReason, ModuleGrants, Node, Pid, SpawnOptions, StartError};
use serde_json::{Value, json};

use crate::support::guests;

fn file_server_wasm() -> std::path::PathBuf {
    guests();
    xtask::wasi_guest_dir().join("file_server.wasm")
}

/// A node with `file_server` granted `dir` read-write as `/files`.
async fn node_granting(dir: &Path) -> Node {
    let node = Node::new(Default::default()).unwrap();
    let mut grants = ModuleGrants::default();
    grants.dir(dir, "/files", DirMode::ReadWrite);
    node.grant("file_server", grants).unwrap();
    node.load_module("file_server", file_server_wasm())
        .await
        .unwrap();
    node
}

async fn start(node: &Node, args: Value) -> Result<Pid, StartError> {
    node.spawn(
        "file_server",
        otter::from_json(&args),
        SpawnOptions::default(),
    )
    .await
}

async fn write(node: &Node, pid: Pid, line: &str) {
    let r: Value = node.call(pid, &json!({ "write": line })).await.unwrap();
    assert_eq!(r, json!("ok"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_hangul_included_and_the_terminate_line_are_in_write_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("write.log"), "before\n").unwrap();
    let node = node_granting(dir.path()).await;
    let pid = start(&node, json!({})).await.unwrap();
    for line in ["hello", "안녕하세요, 세계", "emoji 🦦 too"] {
        write(&node, pid, line).await;
    }
    node.stop(pid, ExitReason::Shutdown, Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("write.log")).unwrap(),
        "before\nhello\n안녕하세요, 세계\nemoji 🦦 too\n# terminating: shutdown\n"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_panic_in_a_callback_its_terminate_line_is_written_too() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_granting(dir.path()).await;
    let pid = start(&node, json!({})).await.unwrap();
    write(&node, pid, "첫 줄").await;
    let watcher = node.embedded_process();
    watcher.monitor(pid).unwrap();
    let r = node
        .call::<_, Value>(pid, &json!({"panic": "디스크 오류"}))
        .await;
    assert_eq!(
        r,
        Err(CallError::Exited(ExitReason::Error(
            "panic: 디스크 오류".into()
        )))
    );
    // Written before the process exits: its monitor learns of the exit after terminate.
    let _ = watcher.receive(Some(Duration::from_secs(2))).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("write.log")).unwrap(),
        "첫 줄\n디스크 오류\n# terminating: error(panic: 디스크 오류)\n"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_outside_its_grant_cannot_be_opened() {
    let top = tempfile::tempdir().unwrap();
    let granted = top.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    let node = node_granting(&granted).await;
    for path in [
        "/etc/write.log",
        "/files/../write.log",
        "/write.log",
        "write.log",
    ] {
        match start(&node, json!({ "path": path })).await {
            Err(StartError::Stopped(ExitReason::Error(why))) => {
                assert!(why.starts_with(&format!("cannot open {path}:")), "{why}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(!top.path().join("write.log").exists());
    assert_eq!(std::fs::read_dir(&granted).unwrap().count(), 0);
    node.shutdown().await;
}
