//! The chapter's KVWithETS (guests/kv_ets): the server owns a protected shared table and
//! serializes writes; readers in other processes read the table straight, without a message
//! to it; their writes are refused; the table dies with its owner. Written with the test
//! kit: the client is a probe, the owner's exit watched by its monitor.

use std::time::Duration;

use otter::{ExitReason, Pid};
use otter_test::{Down, Probe, TestNode, assert_receive};
use serde_json::{Value, json};

use crate::support::wasm;

/// A node with `kv_ets` (and `table_probe`, to look at a table from outside).
async fn node() -> TestNode {
    TestNode::with_modules([
        ("kv_ets", wasm("kv_ets")),
        ("table_probe", wasm("table_probe")),
    ])
    .await
}

/// The server, registered as `kv_ets`, owning the table `kv_ets`.
async fn start_kv(node: &TestNode) -> Pid {
    node.start_server("kv_ets")
        .name("kv_ets")
        .args(&json!({}))
        .await
}

/// A reader: its `get` reads the table in its own process.
async fn start_reader(node: &TestNode) -> Pid {
    node.start_server("kv_ets")
        .args(&json!({"role": "reader"}))
        .await
}

async fn put(client: &Probe, key: &str, value: &str) {
    let ok: Value = client
        .call("kv_ets", &json!({ "put": [key, value] }))
        .await
        .unwrap();
    assert_eq!(ok, json!("ok"));
}

async fn get(client: &Probe, reader: Pid, key: &str) -> Value {
    client.call(reader, &json!({ "get": key })).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_in_many_processes_read_the_servers_writes_without_a_message_to_it() {
    let node = node().await;
    let server = start_kv(&node).await;
    let mut readers = Vec::new();
    for _ in 0..8 {
        readers.push(start_reader(&node).await);
    }
    let client = node.probe();
    put(&client, "a", "1").await;
    for &r in &readers {
        assert_eq!(get(&client, r, "a").await, json!("1"));
    }
    put(&client, "a", "2").await;
    // The server is suspended: a read that needed a message to it would hang.
    node.suspend(server).expect("suspend");
    for &r in &readers {
        assert_eq!(
            get(&client, r, "a").await,
            json!("2"),
            "a reader sees the latest write"
        );
        assert_eq!(get(&client, r, "nope").await, Value::Null);
    }
    node.resume(server).expect("resume");
    let writes: u64 = client.call("kv_ets", &"writes").await.unwrap();
    assert_eq!(writes, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_a_process_that_does_not_own_the_protected_table_is_refused() {
    let node = node().await;
    start_kv(&node).await;
    let reader = start_reader(&node).await;
    let client = node.probe();
    put(&client, "a", "1").await;
    let refused: Value = client
        .call(reader, &json!({"put": ["a", "evil"]}))
        .await
        .unwrap();
    assert_eq!(
        refused,
        json!({"refused": "access denied by the table's protection"})
    );
    assert_eq!(
        get(&client, reader, "a").await,
        json!("1"),
        "the refused write changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_dies_with_its_owner() {
    let node = node().await;
    let server = start_kv(&node).await;
    let reader = start_reader(&node).await;
    let client = node.probe();
    put(&client, "a", "1").await;
    client.monitor(server);
    node.kill(server);
    assert_receive!(
        client,
        Down { pid, reason: ExitReason::Killed, .. } if pid == server,
        Duration::from_secs(2)
    );
    assert_eq!(
        get(&client, reader, "a").await,
        Value::Null,
        "the table went with its owner"
    );
    let outside = node.start_server("table_probe").await;
    let lookup: Value = client
        .call(outside, &json!({"lookup": {"table": "kv_ets", "key": "a"}}))
        .await
        .unwrap();
    assert_eq!(lookup, json!({"err": "no such table"}));
    // The name is free again: a restarted server creates its table anew, empty.
    start_kv(&node).await;
    assert_eq!(get(&client, reader, "a").await, Value::Null);
}
