//! The seed's KV.Server (guests/kv), tested with the kit.

use otter::ExitReason;
use otter_test::{Down, assert_receive};
use serde_json::json;

use crate::support::node;

#[tokio::test]
async fn put_then_get_returns_the_value_and_counts_the_write() {
    let node = node(&["kv"]).await;
    node.start_server("kv").name("kv").await;
    let probe = node.probe();
    let ok: String = probe.call("kv", &json!({"put": ["a", "1"]})).await.unwrap();
    assert_eq!(ok, "ok");
    let value: Option<String> = probe.call("kv", &json!({"get": "a"})).await.unwrap();
    assert_eq!(value.as_deref(), Some("1"));
    let missing: Option<String> = probe.call("kv", &json!({"get": "b"})).await.unwrap();
    assert_eq!(missing, None);
    let writes: u64 = probe.call("kv", &"writes").await.unwrap();
    assert_eq!(writes, 1);
}

#[tokio::test]
async fn casts_are_handled_in_order_before_a_later_call() {
    let node = node(&["kv"]).await;
    node.start_server("kv").name("kv").await;
    let probe = node.probe();
    probe.cast("kv", &json!({"put": ["a", "1"]}));
    probe.cast("kv", &json!({"put": ["a", "2"]}));
    probe.cast("kv", &json!({"put": ["b", "3"]}));
    let a: Option<String> = probe.call("kv", &json!({"get": "a"})).await.unwrap();
    assert_eq!(a.as_deref(), Some("2"));
    let size: u64 = probe.call("kv", &"size").await.unwrap();
    assert_eq!(size, 2);
    probe.cast("kv", &"clear");
    let size: u64 = probe.call("kv", &"size").await.unwrap();
    assert_eq!(size, 0);
}

#[tokio::test]
async fn delete_counts_a_write_only_when_the_key_was_there() {
    let node = node(&["kv"]).await;
    node.start_server("kv").name("kv").await;
    let probe = node.probe();
    let _: String = probe.call("kv", &json!({"put": ["a", "1"]})).await.unwrap();
    let _: String = probe.call("kv", &json!({"delete": "a"})).await.unwrap();
    let _: String = probe.call("kv", &json!({"delete": "a"})).await.unwrap();
    let writes: u64 = probe.call("kv", &"writes").await.unwrap();
    assert_eq!(writes, 2);
}

#[tokio::test]
async fn an_undecodable_call_is_refused_and_the_server_lives_on() {
    let node = node(&["kv"]).await;
    let kv = node.start_server("kv").name("kv").await;
    let probe = node.probe();
    probe.monitor(kv);
    let err = probe
        .call::<_, String>("kv", &json!({"increment": "a"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad argument"), "{err}");
    let size: u64 = probe.call("kv", &"size").await.unwrap();
    assert_eq!(size, 0);
    node.stop(kv, ExitReason::Normal, None).await.unwrap();
    assert_receive!(
        probe,
        Down {
            reason: ExitReason::Normal,
            ..
        }
    );
}
