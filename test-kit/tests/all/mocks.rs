//! Mock servers: expectations, stubs, records, verify.

use std::time::{Duration, Instant};

use otter::{CallError, ExitReason, ProcessError};
use otter_test::{Call, Cast, TestNode, assert_receive, reply};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::panic_message;

#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum StoreCall {
    Get(String),
}

#[tokio::test]
async fn expectations_answer_in_order_then_the_stub() {
    let node = TestNode::new();
    let store = node.mock("store");
    store
        .expect_call(2, |StoreCall::Get(key)| format!("first {key}"))
        .expect_call(1, |StoreCall::Get(key)| format!("second {key}"))
        .stub_call(reply("stub"));
    let probe = node.probe();
    let mut answers = Vec::new();
    for key in ["a", "b", "c", "d", "e"] {
        let answer: String = probe.call("store", &json!({"get": key})).await.unwrap();
        answers.push(answer);
    }
    assert_eq!(answers, ["first a", "first b", "second c", "stub", "stub"]);
    store.verify().await;
}

#[tokio::test]
async fn a_mock_records_calls_with_their_replies_and_is_a_mailbox() {
    let node = TestNode::new();
    let store = node.mock("store");
    store.stub_call(|StoreCall::Get(key)| key.len());
    store.stub_cast();
    let probe = node.probe();
    let _: usize = probe.call("store", &json!({"get": "abc"})).await.unwrap();
    probe.cast("store", &json!({"put": ["k", "v"]}));
    let key = assert_receive!(store, Call(StoreCall::Get(key)) => key);
    assert_eq!(key, "abc");
    assert_receive!(store, Cast(Value::Object(_)));
    assert_eq!(store.calls::<StoreCall>(), [StoreCall::Get("abc".into())]);
    assert_eq!(store.casts::<Value>(), [json!({"put": ["k", "v"]})]);
    assert!(matches!(
        &store.received()[0],
        otter_test::Message::Call { caller, reply: Some(r), .. }
            if *caller == probe.pid() && otter::decode::<usize>(r).unwrap() == 3
    ));
}

#[tokio::test]
async fn an_unexpected_call_fails_the_caller_at_once_naming_the_mock() {
    let node = TestNode::new();
    let store = node.mock("store");
    store.expect_call(1, reply(1));
    let probe = node.probe();
    let _: i32 = probe.call("store", &json!({"get": "a"})).await.unwrap();
    let started = Instant::now();
    let err = probe
        .call::<_, i32>("store", &json!({"get": "b"}))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "not a timeout");
    let ProcessError::Call(CallError::Exited(ExitReason::Error(reason))) = err else {
        panic!("{err:?}");
    };
    assert!(
        reason.contains(r#"mock `store`: unexpected call from <"#)
            && reason.contains(r#"{"get":"b"}: no expectation left and no stub"#),
        "{reason}"
    );
    let message = panic_message(async move { store.verify().await }).await;
    assert!(message.contains("unexpected call from"), "{message}");
}

#[tokio::test]
async fn a_request_of_another_type_is_unexpected() {
    let node = TestNode::new();
    let store = node.mock("store");
    store.expect_call(1, |StoreCall::Get(_)| 0);
    let probe = node.probe();
    let err = probe
        .call::<_, i32>("store", &json!({"delete": "a"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not decode as"), "{err}");
}

#[tokio::test]
async fn verify_lists_short_expectations_unexpected_casts_and_what_came() {
    let node = TestNode::new();
    let store = node.mock("store");
    store.expect_call(2, reply("ok")).expect_cast(1);
    let audit = node.mock("audit");
    let probe = node.probe();
    let _: String = probe.call("store", &json!({"get": "a"})).await.unwrap();
    probe.cast("audit", &"stray");
    let started = Instant::now();
    let message = panic_message(async move { store.verify().await }).await;
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "waits its grace"
    );
    assert!(message.contains("mock `store`"), "{message}");
    assert!(message.contains("was not used as expected"), "{message}");
    assert!(
        message.contains("expect_call #1 (2 calls, IgnoredAny -> &str): received 1"),
        "{message}"
    );
    assert!(
        message.contains("expect_cast #1 (1 cast): received 0"),
        "{message}"
    );
    assert!(message.contains("it received 1 message:"), "{message}");
    assert!(
        message.contains(r#"1. call from <"#) && message.contains(r#"{"get":"a"} -> replied "ok""#),
        "{message}"
    );
    let message = panic_message(async move { audit.verify().await }).await;
    assert!(
        message.contains(r#"unexpected cast "stray": no expectation left and no stub"#),
        "{message}"
    );
}

#[tokio::test]
async fn verify_waits_for_casts_still_on_their_way() {
    let node = TestNode::new();
    let audit = node.mock("audit");
    audit.expect_cast(1);
    let probe = node.probe();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        probe.cast("audit", &"late");
        probe
    });
    node.verify_mocks().await;
    drop(late.await);
}

#[tokio::test]
async fn a_handler_that_panics_ends_the_call_with_its_message() {
    let node = TestNode::new();
    let store = node.mock("store");
    store.expect_call(1, |_: Value| -> i32 { panic!("no such key") });
    let probe = node.probe();
    let err = probe
        .call::<_, i32>("store", &json!({"get": "a"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("its handler panicked: no such key"),
        "{err}"
    );
}
