//! The probe's mailbox: assert_receive!, refute_receive! and their failures.

use std::time::{Duration, Instant};

use otter::ExitReason;
use otter_test::{Down, Message, TestNode, assert_receive, assert_received, refute_receive};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::support::{node, panic_message};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Event {
    Changed { key: String, value: String },
}

#[tokio::test]
async fn a_failing_assert_receive_shows_the_pattern_and_what_arrived() {
    let node = node(&["kv_cache"]).await;
    let store = node.mock("store");
    store.stub_cast();
    let cache = node
        .start_server("kv_cache")
        .args(&json!({"store": "store"}))
        .await;
    let probe = node.probe();
    let _: String = probe
        .call(cache, &json!({"subscribe": probe.pid()}))
        .await
        .unwrap();
    let _: String = probe
        .call(cache, &json!({"put": ["a", "1"]}))
        .await
        .unwrap();
    probe.send(probe.pid(), &"hello").unwrap();

    let started = Instant::now();
    let message = panic_message(async move {
        assert_receive!(probe, Event::Changed { key, .. } if key == "b");
    })
    .await;

    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "waits 100 ms"
    );
    assert!(
        message.contains(r#"no message matching `Event::Changed { key, .. } if key == "b"`"#),
        "{message}"
    );
    assert!(message.contains("within 100ms"), "{message}");
    assert!(message.contains("mailbox holds 2 messages"), "{message}");
    assert!(
        message.contains(r#"1. message {"changed":{"key":"a","value":"1"}}"#),
        "{message}"
    );
    assert!(message.contains(r#"2. message "hello""#), "{message}");
    assert!(
        message.contains("(does not decode as Event: unknown variant `hello`, expected `changed`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_failing_assert_receive_on_an_empty_mailbox_says_so() {
    let node = TestNode::new();
    let probe = node.probe();
    let pid = probe.pid();
    let message = panic_message(async move {
        assert_receive!(probe, Event::Changed { .. }, Duration::from_millis(10));
    })
    .await;
    assert!(
        message.contains(&format!("probe <{pid}>'s mailbox is empty")),
        "{message}"
    );
    assert!(message.contains("within 10ms"), "{message}");
}

#[tokio::test]
async fn assert_receive_waits_for_a_late_message_and_returns_what_the_arm_says() {
    let node = TestNode::new();
    let probe = node.probe();
    let peer = node.probe();
    let to = probe.pid();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let changed = Event::Changed {
            key: "k".into(),
            value: "v".into(),
        };
        peer.send(to, &changed).unwrap();
        peer
    });
    let value = assert_receive!(
        probe,
        Event::Changed { key, value } if key == "k" => value,
        Duration::from_secs(2)
    );
    assert_eq!(value, "v");
    drop(late.await);
}

#[tokio::test]
async fn messages_that_do_not_match_stay_in_order_for_later_assertions() {
    let node = TestNode::new();
    let probe = node.probe();
    for n in 1..=3u32 {
        probe.send(probe.pid(), &n).unwrap();
    }
    // Selective receive: 3 is taken first, 1 and 2 stay, in order.
    assert_receive!(probe, 3u32);
    assert_eq!(
        probe.mailbox(),
        [
            Message::Info(otter::encode(&1u32).unwrap()),
            Message::Info(otter::encode(&2u32).unwrap())
        ]
    );
    let first: u32 = assert_received!(probe, as u32, n => n);
    assert_eq!(first, 1);
    assert_received!(probe, 2u32);
    assert!(probe.mailbox().is_empty());
}

#[tokio::test]
async fn a_failing_assert_received_does_not_wait() {
    let node = TestNode::new();
    let probe = node.probe();
    let message = panic_message(async move {
        assert_received!(probe, Event::Changed { .. });
    })
    .await;
    // Said only when it looked without waiting.
    assert!(
        message.contains("no message matching `Event::Changed { .. }` is in probe"),
        "{message}"
    );
}

#[tokio::test]
async fn refute_receive_fails_when_a_matching_message_arrives() {
    let node = TestNode::new();
    let probe = node.probe();
    let peer = node.probe();
    let to = probe.pid();
    peer.send(to, &"noise").unwrap();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let changed = Event::Changed {
            key: "k".into(),
            value: "v".into(),
        };
        peer.send(to, &changed).unwrap();
        peer
    });
    let message = panic_message(async move {
        refute_receive!(probe, Event::Changed { .. }, Duration::from_secs(2));
    })
    .await;
    assert!(
        message.contains(
            r#"received a message matching `Event::Changed { .. }` within 2s: message {"changed":{"key":"k","value":"v"}}"#
        ),
        "{message}"
    );
    assert!(message.contains(r#"1. message "noise""#), "{message}");
    drop(late.await);
}

#[tokio::test]
async fn refute_receive_holds_when_only_other_messages_come() {
    let node = TestNode::new();
    let probe = node.probe();
    probe.send(probe.pid(), &"noise").unwrap();
    let started = Instant::now();
    refute_receive!(probe, Event::Changed { .. });
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "waits 100 ms"
    );
    // What did not match is still there.
    assert_received!(probe, as String, s if s == "noise");
}

#[tokio::test]
async fn a_probe_that_exited_says_why_in_the_failure() {
    let node = TestNode::new();
    let probe = node.probe();
    let peer = node.probe();
    probe.link(peer.pid());
    peer.close(ExitReason::Error("boom".into()));
    let message = panic_message(async move {
        assert_receive!(probe, Down { .. }, Duration::from_secs(1));
    })
    .await;
    assert!(message.contains("which exited"), "{message}");
    assert!(message.contains("exited: error(boom)"), "{message}");
}
