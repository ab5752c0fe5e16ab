//! guests/kv_cache, a server that calls and casts a named store: tested with the store
//! mocked, and against the real KV server.

use otter_test::{Call, Cast, assert_receive, refute_receive};
use serde::Deserialize;
use serde_json::json;

use crate::support::node;

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
async fn a_miss_asks_the_store_once_then_answers_from_the_cache() {
    let node = node(&["kv_cache"]).await;
    let store = node.mock("store");
    store.expect_call(1, |StoreCall::Get(key)| Some(format!("{key}!")));
    let cache = node
        .start_server("kv_cache")
        .args(&json!({"store": "store"}))
        .await;
    let probe = node.probe();
    for _ in 0..3 {
        let value: Option<String> = probe.call(cache, &json!({"get": "a"})).await.unwrap();
        assert_eq!(value.as_deref(), Some("a!"));
    }
    assert_receive!(store, Call(StoreCall::Get(key)) if key == "a");
    refute_receive!(store, Call(StoreCall::Get(_)));
    node.verify_mocks().await;
}

// On a multi-thread runtime, as on `#[tokio::test]`'s current-thread one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_is_cast_to_the_store_and_told_to_every_subscriber() {
    let node = node(&["kv_cache"]).await;
    let store = node.mock("store");
    store.expect_cast(1);
    let cache = node
        .start_server("kv_cache")
        .args(&json!({"store": "store"}))
        .await;
    let (first, second) = (node.probe(), node.probe());
    for probe in [&first, &second] {
        let _: String = probe
            .call(cache, &json!({"subscribe": probe.pid()}))
            .await
            .unwrap();
    }
    let _: String = first
        .call(cache, &json!({"put": ["k", "v"]}))
        .await
        .unwrap();
    for probe in [&first, &second] {
        let value = assert_receive!(probe, Event::Changed { key, value } if key == "k" => value);
        assert_eq!(value, "v");
    }
    assert_receive!(store, Cast(StoreCast::Put(k, v)) if k == "k" && v == "v");
    // Cached: no call reaches the store.
    let value: Option<String> = first.call(cache, &json!({"get": "k"})).await.unwrap();
    assert_eq!(value.as_deref(), Some("v"));
    node.verify_mocks().await;
}

#[tokio::test]
async fn a_store_that_fails_is_reported_to_the_caller_naming_the_mock() {
    let node = node(&["kv_cache"]).await;
    // No expectation: the cache's call is unexpected, and fails at once.
    let store = node.mock("store");
    let cache = node
        .start_server("kv_cache")
        .args(&json!({"store": "store"}))
        .await;
    let probe = node.probe();
    let answer: String = probe.call(cache, &json!({"get": "a"})).await.unwrap();
    assert!(
        answer.starts_with("the store failed:") && answer.contains("mock `store`: unexpected call"),
        "{answer}"
    );
    drop(store);
}

#[tokio::test]
async fn against_the_real_kv_a_put_lands_in_the_store() {
    let node = node(&["kv_cache", "kv"]).await;
    node.start_server("kv").name("kv").await;
    let cache = node
        .start_server("kv_cache")
        .args(&json!({"store": "kv"}))
        .await;
    let probe = node.probe();
    let _: String = probe
        .call(cache, &json!({"put": ["a", "1"]}))
        .await
        .unwrap();
    let stored: Option<String> = probe.call("kv", &json!({"get": "a"})).await.unwrap();
    assert_eq!(stored.as_deref(), Some("1"));
    let missing: Option<String> = probe.call(cache, &json!({"get": "b"})).await.unwrap();
    assert_eq!(missing, None);
}
