//! The chapter's FileServer (guests/file_server, built for wasm32-wasip2): UTF-8 lines in
//! `write.log` inside the directory its module is granted, its `terminate` line on a stop and
//! after a panic, and nothing outside its grant. Written with the test kit: the directory
//! granted with `TestNode::grant_dir`, the exit watched by a probe.

use std::path::Path;
use std::time::Duration;

use otter::{CallError, DirMode, ExitReason, ProcessError, StartError};
use otter_test::{Down, Probe, TestNode, assert_receive};
use serde_json::{Value, json};

use crate::support::guests;

fn file_server_wasm() -> std::path::PathBuf {
    guests();
    xtask::wasi_guest_dir().join("file_server.wasm")
}

/// A node with `file_server` granted `dir` read-write as `/files`.
async fn node_granting(dir: &Path) -> TestNode {
    let node = TestNode::with_modules([("file_server", file_server_wasm())]).await;
    node.grant_dir("file_server", dir, "/files", DirMode::ReadWrite);
    node
}

async fn write(client: &Probe, server: otter::Pid, line: &str) {
    let r: Value = client
        .call(server, &json!({ "write": line }))
        .await
        .unwrap();
    assert_eq!(r, json!("ok"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_hangul_included_and_the_terminate_line_are_in_write_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("write.log"), "before\n").unwrap();
    let node = node_granting(dir.path()).await;
    let server = node.start_server("file_server").args(&json!({})).await;
    let client = node.probe();
    for line in ["hello", "안녕하세요, 세계", "emoji 🦦 too"] {
        write(&client, server, line).await;
    }
    node.stop(server, ExitReason::Shutdown, Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("write.log")).unwrap(),
        "before\nhello\n안녕하세요, 세계\nemoji 🦦 too\n# terminating: shutdown\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_panic_in_a_callback_its_terminate_line_is_written_too() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_granting(dir.path()).await;
    let server = node.start_server("file_server").args(&json!({})).await;
    let client = node.probe();
    write(&client, server, "첫 줄").await;
    client.monitor(server);
    let r = client
        .call::<_, Value>(server, &json!({"panic": "디스크 오류"}))
        .await;
    assert!(
        matches!(&r, Err(ProcessError::Call(CallError::Exited(ExitReason::Error(why)))) if why == "panic: 디스크 오류"),
        "{r:?}"
    );
    // Written before the process exits: its monitor learns of the exit after terminate.
    assert_receive!(
        client,
        Down { pid, reason: ExitReason::Error(why), .. } if pid == server && why == "panic: 디스크 오류",
        Duration::from_secs(2)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("write.log")).unwrap(),
        "첫 줄\n디스크 오류\n# terminating: error(panic: 디스크 오류)\n"
    );
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
        let started = node
            .start_server("file_server")
            .args(&json!({ "path": path }))
            .try_start()
            .await;
        match started {
            Err(StartError::Stopped(ExitReason::Error(why))) => {
                assert!(why.starts_with(&format!("cannot open {path}:")), "{why}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(!top.path().join("write.log").exists());
    assert_eq!(std::fs::read_dir(&granted).unwrap().count(), 0);
}
