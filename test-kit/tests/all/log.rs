//! What servers log, read with `TestNode::log` and `TestNode::assert_logged` (guests/batch
//! logs each batch it flushes).

use std::time::Duration;

use otter_test::{LogLevel, TestNode};
use serde_json::json;

use crate::support::{node, panic_message};

async fn batch_flushing_at(node: &TestNode, max_batch: u64) -> otter_test::Pid {
    node.start_server("batch")
        .args(&json!({"max_batch": max_batch}))
        .await
}

#[tokio::test]
async fn what_a_server_logs_is_listed_with_its_pid_level_and_fields() {
    let node = node(&["batch"]).await;
    let batch = batch_flushing_at(&node, 1).await;
    let probe = node.probe();
    let _: serde_json::Value = probe.call(batch, &json!({"enqueue": 1})).await.unwrap();
    let line = node
        .assert_logged(|l| l.message == "flushed a batch", Duration::ZERO)
        .await;
    assert_eq!(
        (
            line.pid,
            line.module.as_str(),
            line.level,
            line.field("items")
        ),
        (batch, "batch", LogLevel::Info, Some("1"))
    );
    assert_eq!(node.log(), [line]);
}

#[tokio::test]
async fn a_line_that_is_not_logged_in_time_fails_listing_the_log() {
    let node = node(&["batch"]).await;
    let batch = batch_flushing_at(&node, 1).await;
    let probe = node.probe();
    let _: serde_json::Value = probe.call(batch, &json!({"enqueue": 1})).await.unwrap();
    let message = panic_message(async move {
        node.assert_logged(|l| l.level == LogLevel::Error, Duration::from_millis(20))
            .await;
    })
    .await;
    assert!(
        message.contains("no log line matching within 20ms; the log holds 1 line:")
            && message.contains(&format!("<{batch}> batch INFO flushed a batch items=1")),
        "{message}"
    );
}
