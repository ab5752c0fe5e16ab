//! The example that opens the crate's docs, run against the real guest.

use otter_test::{Cast, TestNode, assert_receive, refute_receive};
use serde::Deserialize;
use serde_json::json;

use crate::support::wasm;

// The messages, typed as your server writes them.
#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum StoreCall {
    Get(String),
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum StoreCast {
    Put(String, String),
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Event {
    Changed { key: String, value: String },
}

#[tokio::test]
async fn the_crate_docs_example_passes() {
    let node = TestNode::with_modules([("kv_cache", wasm("kv_cache"))]).await;

    // A mock under the name the cache calls: one `get`, answered by a closure.
    let store = node.mock("store");
    store.expect_call(1, |StoreCall::Get(key)| Some(format!("{key}!")));
    store.expect_cast(1);

    let cache = node
        .start_server("kv_cache")
        .name("cache")
        .args(&json!({"store": "store"}))
        .await;

    // The test's own process: it calls, and its mailbox is asserted on.
    let probe = node.probe();
    let _: String = probe
        .call(cache, &json!({"subscribe": probe.pid()}))
        .await
        .unwrap();

    let first: Option<String> = probe.call("cache", &json!({"get": "a"})).await.unwrap();
    let again: Option<String> = probe.call("cache", &json!({"get": "a"})).await.unwrap();
    assert_eq!(
        (first.as_deref(), again.as_deref()),
        (Some("a!"), Some("a!"))
    );
    assert_eq!(store.calls::<StoreCall>(), [StoreCall::Get("a".into())]);

    let _: String = probe
        .call("cache", &json!({"put": ["b", "2"]}))
        .await
        .unwrap();
    // Waits up to 100 ms for a message that matches; returns what `=>` says.
    let value = assert_receive!(probe, Event::Changed { key, value } if key == "b" => value);
    assert_eq!(value, "2");
    // Nothing more comes within 100 ms.
    refute_receive!(probe, Event::Changed { .. });
    // A mock's mailbox is asserted on the same way.
    assert_receive!(store, Cast(StoreCast::Put(k, v)) if k == "b" && v == "2");

    // Every expectation met, nothing unexpected; else a panic lists what came.
    node.verify_mocks().await;
}
