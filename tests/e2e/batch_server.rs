//! The chapter's BatchServer (guests/batch): items cast to it are written as batches, in
//! enqueue order, an interval after the first item of a batch or at once when the batch is
//! full; a timer that fired for a batch already flushed does not flush the next one early.

use std::time::{Duration, Instant};

use otter::{EmbeddedProcess, ExitReason, Node, Pid, ReceiveError, Received, SpawnOptions};
use serde_json::{Value, json};

use crate::support::*;

const INTERVAL: Duration = Duration::from_millis(100);

/// A node with a batch server sending its batches to a new embedded process.
async fn batcher(max_batch: u64) -> (Node, EmbeddedProcess, Pid) {
    let node = Node::new(Default::default()).unwrap();
    node.load_module("batch", wasm("batch")).await.unwrap();
    let sink = node.embedded_process();
    let args = json!({
        "sink": sink.pid(),
        "interval_ms": INTERVAL.as_millis() as u64,
        "max_batch": max_batch,
    });
    let pid = node
        .spawn("batch", otter::from_json(&args), SpawnOptions::default())
        .await
        .unwrap();
    (node, sink, pid)
}

fn enqueue(node: &Node, pid: Pid, item: Value) {
    node.cast(pid, otter::from_json(&json!({ "enqueue": item })));
}

/// The next batch the sink gets, and when.
async fn next_batch(sink: &EmbeddedProcess) -> (Vec<Value>, Instant) {
    match sink.receive(Some(Duration::from_secs(2))).await {
        Ok(Received::Message(m)) => {
            let batch = otter::to_json(&m).unwrap()["batch"].clone();
            (serde_json::from_value(batch).unwrap(), Instant::now())
        }
        other => panic!("expected a batch, got {other:?}"),
    }
}

/// Nothing more arrives for a few intervals: no empty batch, no second timer.
async fn assert_quiet(sink: &EmbeddedProcess) {
    assert_eq!(
        sink.receive(Some(INTERVAL * 3))
            .await
            .map(|r| format!("{r:?}")),
        Err(ReceiveError::Timeout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_flushed_as_one_batch_in_enqueue_order_an_interval_after_the_first() {
    let (node, sink, pid) = batcher(100).await;
    let first = Instant::now();
    for i in 0..5 {
        enqueue(&node, pid, json!(i));
    }
    enqueue(&node, pid, json!({"any": ["json", "value"]}));
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
    enqueue(&node, pid, json!("later"));
    let (batch, at) = next_batch(&sink).await;
    assert_eq!(batch, [json!("later")]);
    assert!(at - again >= INTERVAL, "flushed after {:?}", at - again);
    assert_quiet(&sink).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_is_flushed_at_once_without_waiting_for_its_timer() {
    let (node, sink, pid) = batcher(3).await;
    let start = Instant::now();
    for i in 0..7 {
        enqueue(&node, pid, json!(i));
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
    let stats: Value = node.call(pid, &json!("stats")).await.unwrap();
    assert_eq!(
        stats,
        json!({"buffered": 0, "flushed_batches": 3, "flushed_items": 7})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_that_fired_for_a_batch_flushed_early_does_not_flush_the_next_one() {
    let (node, sink, pid) = batcher(3).await;
    enqueue(&node, pid, json!("a"));
    let _: Value = node.call(pid, &json!("stats")).await.unwrap();
    // b and c fill the first batch and d starts the second, all queued before the first
    // batch's timer message, which fires while the server is suspended.
    node.suspend(pid).unwrap();
    for item in ["b", "c", "d"] {
        enqueue(&node, pid, json!(item));
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
    let stats: Value = node.call(pid, &json!({"enqueue": "last"})).await.unwrap();
    assert_eq!(stats["buffered"], json!(1));
    node.stop(pid, ExitReason::Shutdown, Some(Duration::from_secs(2)))
        .await
        .unwrap();
    let (batch, _) = next_batch(&sink).await;
    assert_eq!(batch, [json!("last")]);
    assert_quiet(&sink).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_go_to_a_sink_given_by_its_registered_name() {
    let node = Node::new(Default::default()).unwrap();
    node.load_module("batch", wasm("batch")).await.unwrap();
    let sink = node.embedded_process();
    sink.register("batches").unwrap();
    let args = json!({"sink": "batches", "interval_ms": 10});
    let pid = node
        .spawn("batch", otter::from_json(&args), SpawnOptions::default())
        .await
        .unwrap();
    enqueue(&node, pid, json!("by name"));
    let (batch, _) = next_batch(&sink).await;
    assert_eq!(batch, [json!("by name")]);
}
