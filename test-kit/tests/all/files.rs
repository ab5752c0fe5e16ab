//! Directories granted to a WASI server (guests/file_server) with `TestNode::grant_dir`.

use otter::DirMode;
use otter_test::TestNode;
use serde_json::{Value, json};

use crate::support::{panic_message, wasi_wasm};

async fn file_server_node() -> TestNode {
    TestNode::with_modules([("file_server", wasi_wasm("file_server"))]).await
}

#[tokio::test]
async fn each_granted_directory_is_reachable_under_its_guest_path() {
    let node = file_server_node().await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    node.grant_dir("file_server", a.path(), "/a", DirMode::ReadWrite);
    node.grant_dir("file_server", b.path(), "/b", DirMode::ReadWrite);
    let probe = node.probe();
    for dir in ["/a", "/b"] {
        let server = node
            .start_server("file_server")
            .args(&json!({"path": format!("{dir}/write.log")}))
            .await;
        let ok: Value = probe.call(server, &json!({"write": dir})).await.unwrap();
        assert_eq!(ok, json!("ok"));
    }
    for (dir, line) in [(&a, "/a\n"), (&b, "/b\n")] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join("write.log")).unwrap(),
            line
        );
    }
}

#[tokio::test]
async fn a_server_of_a_module_granted_nothing_cannot_open_a_file() {
    let node = file_server_node().await;
    let started = node
        .start_server("file_server")
        .args(&json!({}))
        .try_start()
        .await;
    assert!(
        matches!(&started, Err(otter::StartError::Stopped(otter::ExitReason::Error(why))) if why.starts_with("cannot open /files/write.log")),
        "{started:?}"
    );
}

#[tokio::test]
async fn granting_a_directory_that_is_not_there_fails_the_test_saying_so() {
    let node = file_server_node().await;
    let message = panic_message(async move {
        node.grant_dir(
            "file_server",
            "/nonexistent/otter-test",
            "/files",
            DirMode::ReadWrite,
        );
    })
    .await;
    assert!(
        message.starts_with("granting `file_server` /nonexistent/otter-test as /files:"),
        "{message}"
    );
}
