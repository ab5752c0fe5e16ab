//! The chapter's OrderSink (guests/order_sink) on a real SQLite file: orders are flushed in
//! batches, a burst is answered `busy` instead of growing the buffer, a failed flush is
//! logged and retried with its batch, and a graceful stop loses no accepted order. Written
//! with the test kit: the database granted with `TestNode::grant_database`, clients are
//! probes, the failed flush found with `assert_logged`; the test reads the database file
//! itself with rusqlite.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use otter::{ChildSpec, DirMode, Pid, SupervisorSpec};
use otter_test::{LogLevel, TestNode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::wasm;

/// How long a test waits for what a timer does (a flush, a retry) before failing.
const WAIT: Duration = Duration::from_secs(3);

/// What `stats` answers.
#[derive(Deserialize, Debug)]
struct Stats {
    accepted: u64,
    flushed: u64,
    buffered: u64,
    failed_flushes: u64,
    max_buffered_seen: u64,
}

#[derive(Deserialize)]
struct StatsAnswer {
    stats: Stats,
}

/// A node with `order_sink` granted `dir/orders.db` as `orders`.
async fn node_with_orders(dir: &Path) -> (TestNode, PathBuf) {
    let path = dir.join("orders.db");
    let node = TestNode::with_modules([("order_sink", wasm("order_sink"))]).await;
    node.grant_database("order_sink", "orders", &path, DirMode::ReadWrite);
    (node, path)
}

/// The sink as the only child of a supervisor, as an application runs it, registered as
/// `sink`.
async fn start_sink(node: &TestNode, args: Value) -> Pid {
    let spec = SupervisorSpec::default()
        .child(ChildSpec::worker("sink", "order_sink", otter::from_json(&args)).name("sink"));
    let sup = node.start_supervisor(spec).await.expect("the sink starts");
    sup.pid()
}

fn order(client: u64, seq: u64) -> Value {
    json!({"submit": {"client": client, "seq": seq, "item": format!("주문-{client}-{seq}"), "amount": seq * 10}})
}

/// `clients` probes (numbered from `first`), each submitting `per_client` orders in a
/// closed loop; the (client, seq) pairs that were accepted, and the number of `busy`
/// answers.
async fn burst(
    node: &TestNode,
    first: u64,
    clients: u64,
    per_client: u64,
) -> (BTreeSet<(u64, u64)>, u64) {
    let tasks: Vec<_> = (first..first + clients)
        .map(|c| {
            let client = node.probe();
            tokio::spawn(async move {
                let (mut accepted, mut busy) = (Vec::new(), 0);
                for s in 0..per_client {
                    match client.call::<_, Value>("sink", &order(c, s)).await {
                        Ok(v) if v == json!("ok") => accepted.push((c, s)),
                        Ok(v) if v == json!("busy") => busy += 1,
                        other => panic!("submit answered {other:?}"),
                    }
                }
                (accepted, busy)
            })
        })
        .collect();
    let (mut accepted, mut busy) = (BTreeSet::new(), 0);
    for t in tasks {
        let (a, b) = t.await.unwrap();
        accepted.extend(a);
        busy += b;
    }
    (accepted, busy)
}

/// Every row of the orders table, checked for content, as (client, seq) pairs.
fn rows_in(path: &Path) -> Vec<(u64, u64)> {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut stmt = db
        .prepare("SELECT client, seq, item, amount FROM orders ORDER BY client, seq")
        .unwrap();
    stmt.query_map([], |r| {
        let (c, s): (i64, i64) = (r.get(0)?, r.get(1)?);
        let item: String = r.get(2)?;
        let amount: i64 = r.get(3)?;
        assert_eq!(item, format!("주문-{c}-{s}"));
        assert_eq!(amount, s * 10);
        Ok((c as u64, s as u64))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

async fn stats(node: &TestNode) -> Stats {
    let answer: StatsAnswer = node.probe().call("sink", &"stats").await.unwrap();
    answer.stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_far_above_the_flush_rate_is_answered_busy_and_the_buffer_stays_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, path) = node_with_orders(tmp.path()).await;
    let sup = start_sink(&node, json!({"max_buffered": 300, "flush_ms": 400})).await;
    // 8,000 orders offered within one flush period: far more than a buffer of 300.
    let (accepted, busy) = burst(&node, 0, 20, 400).await;
    let s = stats(&node).await;
    assert!(busy > 0, "a burst past the bound is answered busy");
    assert!(s.max_buffered_seen <= 300, "{s:?}");
    assert_eq!(s.accepted, accepted.len() as u64);
    assert_eq!(accepted.len() as u64 + busy, 8_000);
    node.stop_supervisor(&sup.into()).await.unwrap();
    let rows = rows_in(&path);
    assert_eq!(rows.len(), accepted.len(), "every accepted order once");
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_order_is_in_the_database_after_a_graceful_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, path) = node_with_orders(tmp.path()).await;
    // A flush period longer than the test: only terminate can write these.
    let sup = start_sink(&node, json!({"flush_ms": 60_000})).await;
    let (accepted, busy) = burst(&node, 0, 10, 300).await;
    assert_eq!((accepted.len(), busy), (3_000, 0));
    assert_eq!(stats(&node).await.flushed, 0);
    node.stop_supervisor(&sup.into()).await.unwrap();
    let rows = rows_in(&path);
    assert_eq!(rows.len(), 3_000);
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_flush_is_logged_and_retried_with_its_batch_and_lands_once_the_database_accepts()
{
    let tmp = tempfile::tempdir().unwrap();
    let (node, path) = node_with_orders(tmp.path()).await;
    let sup = start_sink(&node, json!({"flush_ms": 50, "retry_ms": 500})).await;
    let sink = node.whereis("sink").expect("sink registered");
    // The database refuses every insert for now (a trigger, since root ignores chmod).
    let host = rusqlite::Connection::open(&path).unwrap();
    host.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON orders BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    )
    .unwrap();
    let (first, _) = burst(&node, 0, 4, 50).await;
    let failed = node
        .assert_logged(
            |l| l.pid == sink && l.message == "flush failed; retrying shortly",
            WAIT,
        )
        .await;
    assert_eq!(failed.level, LogLevel::Error);
    assert_eq!(failed.field("retry_ms"), Some("500"));
    assert!(
        failed
            .field("error")
            .is_some_and(|e| e.contains("disk on fire")),
        "{failed}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let s = stats(&node).await;
    assert!(s.failed_flushes >= 2, "tried and retried: {s:?}");
    assert_eq!(s.flushed, 0);
    assert_eq!(s.buffered, first.len() as u64, "the batch is kept");
    assert!(rows_in(&path).is_empty());
    // Writable again: the kept batch lands at the next retry, once.
    host.execute_batch("DROP TRIGGER refuse").unwrap();
    let flushed = node
        .assert_logged(|l| l.pid == sink && l.message == "flushed", WAIT)
        .await;
    assert_eq!(
        flushed.field("orders"),
        Some(first.len().to_string().as_str())
    );
    assert_eq!(rows_in(&path).len(), first.len(), "the kept batch landed");
    let (second, _) = burst(&node, 4, 4, 50).await;
    node.stop_supervisor(&sup.into()).await.unwrap();
    let all: BTreeSet<_> = first.union(&second).copied().collect();
    let rows = rows_in(&path);
    assert_eq!(rows.len(), all.len(), "no order twice");
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_wait_at_most_a_flush_period_when_flushes_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, path) = node_with_orders(tmp.path()).await;
    start_sink(&node, json!({"flush_ms": 100})).await;
    let (accepted, _) = burst(&node, 0, 2, 100).await;
    let landed = crate::support::eventually(async || rows_in(&path).len() == accepted.len()).await;
    assert!(landed, "{:?}", stats(&node).await);
    assert_eq!(stats(&node).await.buffered, 0);
}
