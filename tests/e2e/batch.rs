//! Messages that queue up are handed to the guest several at a time (`handle-batch`). These
//! tests queue messages behind a suspended server and pin that a batch changes nothing a
//! server can observe: the order, the answers, what a callback's return does to the
//! messages behind it, `message_queue_len`, and `DOWN` after `demonitor`.

use std::time::Duration;

use otter::{CallError, ExitReason, Node, Pid, SpawnOptions};
use serde_json::{Value, json};

use crate::support::{events, eventually, node, probe, wasm};

/// Wait until `n` messages wait in `pid`'s mailbox.
async fn queued(node: &Node, pid: Pid, n: usize) {
    let reached = eventually(async || {
        node.processes()
            .into_iter()
            .find(|i| i.pid == pid)
            .is_some_and(|i| i.queue_len == n)
    })
    .await;
    assert!(reached, "{n} messages never queued");
}

/// A call from its own task, so that it waits in the mailbox.
fn call_later(
    node: &Node,
    pid: Pid,
    request: Value,
) -> tokio::task::JoinHandle<Result<Value, CallError>> {
    let node = node.clone();
    tokio::spawn(async move { node.call(pid, &request).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_casts_messages_and_calls_are_handled_in_arrival_order() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    let mut calls = Vec::new();
    let mut expected = vec!["init".to_string()];
    for i in 0..150 {
        match i % 3 {
            0 => {
                node.cast(p, otter::from_json(&json!({"record": i.to_string()})));
                expected.push(format!("cast:{i}"));
            }
            1 => {
                node.send(p, otter::from_json(&json!({"text": i.to_string()})))
                    .unwrap();
                expected.push(format!("info:{i}"));
            }
            _ => calls.push(call_later(&node, p, json!({"add": 1}))),
        }
        queued(&node, p, i + 1).await;
    }
    node.resume(p).unwrap();
    for (i, call) in calls.into_iter().enumerate() {
        // Each call sees exactly the calls queued before it.
        assert_eq!(call.await.unwrap().unwrap(), json!(i + 1));
    }
    assert_eq!(events(&node, p).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_queue_len_inside_a_batch_counts_the_messages_behind() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    let len = call_later(&node, p, json!("queue_len"));
    queued(&node, p, 1).await;
    for i in 0..5 {
        node.cast(p, otter::from_json(&json!({"record": i.to_string()})));
    }
    queued(&node, p, 6).await;
    node.resume(p).unwrap();
    assert_eq!(len.await.unwrap().unwrap(), json!(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_inside_a_batch_leaves_the_messages_behind_it_unhandled() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    node.cast(p, otter::from_json(&json!({"record": "a"})));
    node.cast(p, otter::from_json(&json!({"stop": {"error": "enough"}})));
    queued(&node, p, 2).await;
    let behind = call_later(&node, p, json!("ping"));
    queued(&node, p, 3).await;
    node.cast(p, otter::from_json(&json!({"record": "b"})));
    queued(&node, p, 4).await;
    node.resume(p).unwrap();
    assert_eq!(
        behind.await.unwrap(),
        Err(CallError::Exited(ExitReason::Error("enough".into())))
    );
    assert!(!node.is_alive(p));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continue_inside_a_batch_runs_before_the_messages_behind_it() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    node.cast(p, otter::from_json(&json!({"record": "a"})));
    queued(&node, p, 1).await;
    let call = call_later(&node, p, json!({"reply_continue": "k"}));
    queued(&node, p, 2).await;
    node.cast(p, otter::from_json(&json!({"record": "b"})));
    queued(&node, p, 3).await;
    node.resume(p).unwrap();
    assert_eq!(call.await.unwrap().unwrap(), json!("ok"));
    assert_eq!(
        events(&node, p).await,
        [
            "init",
            "cast:a",
            "continue:k",
            "cast:b",
            "info:sent-before-k"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_queued_behind_its_demonitor_is_dropped() {
    let node = node().await;
    let watcher = probe(&node).await;
    let target = probe(&node).await;
    let mref: Value = node
        .call(watcher, &json!({"monitor": {"pid": target}}))
        .await
        .unwrap();
    node.suspend(watcher).unwrap();
    node.cast(watcher, otter::from_json(&json!({"record": "a"})));
    let demonitor = call_later(&node, watcher, json!({"demonitor": mref}));
    queued(&node, watcher, 2).await;
    node.kill(target);
    queued(&node, watcher, 3).await;
    node.cast(watcher, otter::from_json(&json!({"record": "b"})));
    queued(&node, watcher, 4).await;
    node.resume(watcher).unwrap();
    assert_eq!(demonitor.await.unwrap().unwrap(), json!("ok"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(events(&node, watcher).await, ["init", "cast:a", "cast:b"]);
}

/// A watcher whose target died while it was suspended, with the `DOWN` queued behind a call
/// that demonitors and then waits with `timeout` (hibernates if none).
async fn demonitor_with_its_down_queued(node: &Node, timeout: Option<u32>) -> Pid {
    let watcher = probe(node).await;
    let target = probe(node).await;
    let mref: Value = node
        .call(watcher, &json!({"monitor": {"pid": target}}))
        .await
        .unwrap();
    node.suspend(watcher).unwrap();
    let demonitor = call_later(
        node,
        watcher,
        json!({"demonitor_then": {"monitor": mref, "timeout": timeout}}),
    );
    queued(node, watcher, 1).await;
    node.kill(target);
    queued(node, watcher, 2).await;
    node.resume(watcher).unwrap();
    assert_eq!(demonitor.await.unwrap().unwrap(), json!("ok"));
    watcher
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_down_does_not_cancel_the_idle_timeout() {
    let node = node().await;
    let watcher = demonitor_with_its_down_queued(&node, Some(30)).await;
    // Asked only once the timeout is long past: each question is a message, which would
    // cancel it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        events(&node, watcher).await,
        ["init", "timeout"],
        "OTP's demonitor flush removes the DOWN: the timeout still fires"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_down_does_not_wake_a_hibernating_process() {
    let node = node().await;
    let watcher = demonitor_with_its_down_queued(&node, None).await;
    assert!(eventually(async || node.is_hibernating(watcher)).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(node.is_hibernating(watcher), "the DOWN woke it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_still_queued_when_a_server_stops_gets_its_exit_reason() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    node.cast(p, otter::from_json(&json!({"stop": {"error": "enough"}})));
    queued(&node, p, 1).await;
    let calls: Vec<_> = (0..50)
        .map(|_| call_later(&node, p, json!("ping")))
        .collect();
    queued(&node, p, 51).await;
    node.resume(p).unwrap();
    for call in calls {
        assert_eq!(
            call.await.unwrap(),
            Err(CallError::Exited(ExitReason::Error("enough".into())))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_to_batch_keeps_its_place_in_the_order() {
    let node = node().await;
    let p = probe(&node).await;
    let big = "x".repeat(100 * 1024);
    node.suspend(p).unwrap();
    node.cast(p, otter::from_json(&json!({"record": "a"})));
    node.send(p, otter::from_json(&json!({"text": big})))
        .unwrap();
    node.cast(p, otter::from_json(&json!({"record": "b"})));
    queued(&node, p, 3).await;
    node.resume(p).unwrap();
    assert_eq!(
        events(&node, p).await,
        [
            "init".to_string(),
            "cast:a".into(),
            format!("info:{big}"),
            "cast:b".into()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_a_batch_answered_before_a_panic_keep_their_answers() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    let first = call_later(&node, p, json!({"add": 1}));
    queued(&node, p, 1).await;
    let second = call_later(&node, p, json!({"add": 2}));
    queued(&node, p, 2).await;
    let failing = call_later(&node, p, json!("panic"));
    queued(&node, p, 3).await;
    let behind = call_later(&node, p, json!("ping"));
    queued(&node, p, 4).await;
    node.resume(p).unwrap();
    // As in OTP: the server answered the first two before it crashed on the third.
    assert_eq!(first.await.unwrap().unwrap(), json!(1));
    assert_eq!(second.await.unwrap().unwrap(), json!(3));
    let crashed = Err(CallError::Exited(ExitReason::Error(
        "panic: handle_call panicked on purpose".into(),
    )));
    assert_eq!(failing.await.unwrap(), crashed);
    assert_eq!(behind.await.unwrap(), crashed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_answered_before_a_panicking_cast_in_the_same_batch_keeps_its_answer() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    let first = call_later(&node, p, json!({"add": 5}));
    queued(&node, p, 1).await;
    node.cast(p, otter::from_json(&json!("panic")));
    queued(&node, p, 2).await;
    let behind = call_later(&node, p, json!("ping"));
    queued(&node, p, 3).await;
    node.resume(p).unwrap();
    assert_eq!(first.await.unwrap().unwrap(), json!(5));
    assert_eq!(
        behind.await.unwrap(),
        Err(CallError::Exited(ExitReason::Error(
            "panic: handle_cast panicked on purpose".into()
        )))
    );
}

/// What a server whose `handle-batch` lies as `mode` says (see guests/bad_batch) does with two
/// calls and a cast queued behind a third call: the calls' results, in order, and whether it
/// is still alive.
async fn lying_batch(mode: &str) -> (Vec<Result<Value, CallError>>, bool) {
    let node = node().await;
    node.load_module("bad_batch", wasm("bad_batch"))
        .await
        .expect("load bad_batch");
    let p = node
        .spawn(
            "bad_batch",
            otter::from_json(&json!(mode)),
            SpawnOptions::default(),
        )
        .await
        .expect("start");
    node.suspend(p).unwrap();
    let first = call_later(&node, p, json!("a"));
    queued(&node, p, 1).await;
    let second = call_later(&node, p, json!("b"));
    queued(&node, p, 2).await;
    node.cast(p, otter::from_json(&json!("c")));
    let third = call_later(&node, p, json!("d"));
    queued(&node, p, 4).await;
    node.resume(p).unwrap();
    let mut results = Vec::new();
    for call in [first, second, third] {
        results.push(call.await.unwrap());
    }
    // A sibling on the same node is unharmed.
    let sibling = probe(&node).await;
    assert_eq!(
        node.call::<_, Value>(sibling, &json!("ping"))
            .await
            .unwrap(),
        json!("pong")
    );
    (results, node.is_alive(p))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_result_that_does_not_match_its_messages_crashes_only_its_server() {
    let (honest, alive) = lying_batch("honest").await;
    assert_eq!(honest, vec![Ok(json!("ok")); 3]);
    assert!(alive);
    for (mode, reason) in [
        ("none", "handle-batch handled 0 of 4 messages"),
        ("more", "handle-batch handled 5 of 4 messages"),
        (
            "kind",
            "handle-batch returned outcomes that do not match its messages",
        ),
        (
            "extra",
            "handle-batch returned outcomes that do not match its messages",
        ),
        (
            "past_stop",
            "handle-batch returned outcomes that do not match its messages",
        ),
    ] {
        let (results, alive) = lying_batch(mode).await;
        let crashed = Err(CallError::Exited(ExitReason::Error(reason.to_owned())));
        assert!(!alive, "{mode}: the server goes on");
        if mode == "extra" {
            // Its calls were answered before the host saw the stray outcome.
            assert_eq!(results, vec![Ok(json!("ok")); 3], "{mode}");
        } else if mode == "past_stop" {
            // The first reply was acted on; the count past it ends the server.
            assert_eq!(
                results,
                vec![Ok(json!("ok")), crashed.clone(), crashed],
                "{mode}"
            );
        } else {
            assert_eq!(
                results,
                vec![crashed.clone(), crashed.clone(), crashed],
                "{mode}"
            );
        }
    }
}
