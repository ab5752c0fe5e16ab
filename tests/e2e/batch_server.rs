//! The chapter's BatchServer (guests/batch): items cast to it are written as batches, in
//! enqueue order, an interval after the first item of a batch or at once when the batch is
//! full; a timer that fired for a batch already flushed does not flush the next one early.
//! Written with the test kit: the sink is a probe, its batches asserted with
//! `assert_receive!`.

use std::time::{Duration, Instant};

use otter::{ExitReason, Pid};
use otter_test::{
    LogLevel, Message, Probe, TestNode, assert_receive, assert_received, refute_receive,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::wasm;

const INTERVAL: Duration = Duration::from_millis(100);
/// How long a test waits for a batch before failing (the interval, with room for a busy
/// machine).
const WAIT: Duration = Duration::from_secs(2);

/// What the server sends its sink.
#[derive(Deserialize, Debug)]
struct Batch {
    batch: Vec<Value>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Stats {
    buffered: u64,
    flushed_batches: u64,
    flushed_items: u64,
}

/// A node with a batch server sending its batches to a probe, the sink.
async fn batcher(max_batch: u64) -> (TestNode, Probe, Pid) {
    let node = TestNode::with_modules([("batch", wasm("batch"))]).await;
    let sink = node.probe();
    let pid = node
        .start_server("batch")
        .args(&json!({
            "sink": sink.pid(),
            "interval_ms": INTERVAL.as_millis() as u64,
            "max_batch": max_batch,
        }))
        .await;
    (node, sink, pid)
}

/// The next batch the sink gets, and when.
async fn next_batch(sink: &Probe) -> (Vec<Value>, Instant) {
    let batch = assert_receive!(sink, Batch { batch } => batch, WAIT);
    (batch, Instant::now())
}

/// Nothing more arrives for a few intervals: no empty batch, no second timer.
async fn assert_quiet(sink: &Probe) {
    refute_receive!(sink, as Message, _, INTERVAL * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_flushed_as_one_batch_in_enqueue_order_an_interval_after_the_first() {
    let (_node, sink, pid) = batcher(100).await;
    let first = Instant::now();
    for i in 0..5 {
        sink.cast(pid, &json!({ "enqueue": i }));
    }
    sink.cast(pid, &json!({"enqueue": {"any": ["json", "value"]}}));
    let (batch, at) = next_batch(&sink).await;
    assert_eq!(
        batch,
        [
            json!(0),
            json!(1),
            json!(2),
            json!(3),
            json!(4),
            json!({"any": ["json", "value"]})
        ]
    );
    assert!(at - first >= INTERVAL, "flushed after {:?}", at - first);
    assert_quiet(&sink).await;
    // The next item starts a new batch with a timer of its own.
    let again = Instant::now();
    sink.cast(pid, &json!({"enqueue": "later"}));
    let (batch, at) = next_batch(&sink).await;
    assert_eq!(batch, [json!("later")]);
    assert!(at - again >= INTERVAL, "flushed after {:?}", at - again);
    assert_quiet(&sink).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_is_flushed_at_once_without_waiting_for_its_timer() {
    let (_node, sink, pid) = batcher(3).await;
    let start = Instant::now();
    for i in 0..7 {
        sink.cast(pid, &json!({ "enqueue": i }));
    }
    let (batch, at) = next_batch(&sink).await;
    assert_eq!(batch, [json!(0), json!(1), json!(2)]);
    assert!(
        at - start < INTERVAL,
        "the cap flushes at once: {:?}",
        at - start
    );
    let (batch, _) = next_batch(&sink).await;
    assert_eq!(batch, [json!(3), json!(4), json!(5)]);
    let (batch, at) = next_batch(&sink).await;
    assert_eq!(batch, [json!(6)]);
    assert!(
        at - start >= INTERVAL,
        "the rest waits for its timer: {:?}",
        at - start
    );
    assert_quiet(&sink).await;
    let stats: Stats = sink.call(pid, &"stats").await.unwrap();
    assert_eq!(
        stats,
        Stats {
            buffered: 0,
            flushed_batches: 3,
            flushed_items: 7
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_that_fired_for_a_batch_flushed_early_does_not_flush_the_next_one() {
    let (node, sink, pid) = batcher(3).await;
    sink.cast(pid, &json!({"enqueue": "a"}));
    let _: Stats = sink.call(pid, &"stats").await.unwrap();
    // b and c fill the first batch and d starts the second, all queued before the first
    // batch's timer message, which fires while the server is suspended.
    node.suspend(pid).unwrap();
    for item in ["b", "c", "d"] {
        sink.cast(pid, &json!({ "enqueue": item }));
    }
    tokio::time::sleep(INTERVAL + INTERVAL / 2).await;
    let resumed = Instant::now();
    node.resume(pid).unwrap();
    let (batch, _) = next_batch(&sink).await;
    assert_eq!(batch, [json!("a"), json!("b"), json!("c")]);
    let (batch, at) = next_batch(&sink).await;
    assert_eq!(batch, [json!("d")]);
    assert!(
        at - resumed >= INTERVAL,
        "d waited for its own batch's timer, not the stale one: {:?}",
        at - resumed
    );
    assert_quiet(&sink).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_buffered_is_flushed_when_the_server_stops() {
    let (node, sink, pid) = batcher(100).await;
    // A call, so that it is buffered before the stop, which overtakes queued messages.
    let stats: Stats = sink.call(pid, &json!({"enqueue": "last"})).await.unwrap();
    assert_eq!(stats.buffered, 1);
    node.stop(pid, ExitReason::Shutdown, Some(WAIT))
        .await
        .unwrap();
    // Sent by terminate, before the stop returned.
    let batch = assert_received!(sink, Batch { batch } => batch);
    assert_eq!(batch, [json!("last")]);
    assert_quiet(&sink).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_go_to_a_sink_given_by_its_registered_name() {
    let node = TestNode::with_modules([("batch", wasm("batch"))]).await;
    let sink = node.probe();
    sink.register("batches");
    let pid = node
        .start_server("batch")
        .args(&json!({"sink": "batches", "interval_ms": 10}))
        .await;
    sink.cast(pid, &json!({"enqueue": "by name"}));
    let (batch, _) = next_batch(&sink).await;
    assert_eq!(batch, [json!("by name")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_for_a_sink_that_is_gone_is_logged_and_dropped_and_the_server_goes_on() {
    let node = TestNode::with_modules([("batch", wasm("batch"))]).await;
    let pid = node
        .start_server("batch")
        .args(&json!({"sink": "nobody", "max_batch": 2}))
        .await;
    let client = node.probe();
    for item in ["a", "b"] {
        client.cast(pid, &json!({ "enqueue": item }));
    }
    let flushed = node
        .assert_logged(|l| l.pid == pid && l.message == "flushed a batch", WAIT)
        .await;
    assert_eq!(
        (flushed.level, flushed.field("items")),
        (LogLevel::Info, Some("2"))
    );
    let dropped = node
        .assert_logged(|l| l.pid == pid && l.level == LogLevel::Warn, WAIT)
        .await;
    assert_eq!(dropped.message, "the sink is gone; batch dropped");
    let stats: Stats = client.call(pid, &"stats").await.unwrap();
    assert_eq!(
        stats,
        Stats {
            buffered: 0,
            flushed_batches: 1,
            flushed_items: 2
        }
    );
}
