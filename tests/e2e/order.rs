//! Per-sender order: whatever one process sends another that becomes a message (plain
//! messages, casts, trapped exit signals, `DOWN`) arrives in the order it was sent. Each
//! receiver is suspended while the sender acts, so that everything is queued before it
//! takes anything.

use std::time::Duration;

use otter::{CallError, ExitReason};
use serde_json::{Value, json};

use crate::support::*;

async fn ok(node: &otter::Node, to: otter::Pid, req: Value) {
    let r: Value = node.call(to, &req).await.unwrap();
    assert_eq!(r, json!("ok"), "{req}");
}

async fn trap(node: &otter::Node, p: otter::Pid) {
    let _: Value = node.call(p, &json!({"trap_exit": true})).await.unwrap();
}

/// The events after `init`, in order.
async fn seen(node: &otter::Node, p: otter::Pid) -> Vec<String> {
    events(node, p).await.into_iter().skip(1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_parent_gets_what_a_worker_sent_from_terminate_before_its_exit() {
    let node = node().await;
    let parent = named_probe(&node, "parent", json!({"trap_exit": true})).await;
    let worker = try_probe(&node, json!({"observer": "parent", "tag": "w"}), None)
        .await
        .unwrap();
    ok(&node, worker, json!({"link": parent})).await;
    node.suspend(parent).unwrap();
    let r = node
        .call::<_, Value>(worker, &json!({"stop": {"error": "boom"}}))
        .await;
    assert!(matches!(r, Err(CallError::Exited(_))), "{r:?}");
    assert!(eventually(async || !node.is_alive(worker)).await);
    node.resume(parent).unwrap();
    let exit = format!("exit:{worker}:error(boom)");
    assert!(eventually(async || seen(&node, parent).await.contains(&exit)).await);
    assert_eq!(
        seen(&node, parent).await,
        [
            "cast:w:init".to_owned(),
            "cast:w:terminate:error(boom)".to_owned(),
            exit
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_signal_from_a_live_process_keeps_its_place_among_its_messages() {
    let node = node().await;
    let p = probe(&node).await;
    trap(&node, p).await;
    let sender = probe(&node).await;
    node.suspend(p).unwrap();
    ok(
        &node,
        sender,
        json!({"burst": {"to": p, "steps": [
            {"send": "m1"}, {"exit": {"error": "go"}}, {"send": "m2"}, {"cast": "m3"}
        ]}}),
    )
    .await;
    node.resume(p).unwrap();
    assert!(eventually(async || seen(&node, p).await.len() == 4).await);
    assert_eq!(
        seen(&node, p).await,
        [
            "info:m1".to_owned(),
            format!("exit:{sender}:error(go)"),
            "info:m2".to_owned(),
            "cast:m3".to_owned()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_comes_after_what_the_monitored_process_sent_before_it_exited() {
    let node = node().await;
    let watcher = named_probe(&node, "watcher", json!({})).await;
    let worker = try_probe(&node, json!({"observer": "watcher", "tag": "w"}), None)
        .await
        .unwrap();
    let _: Value = node
        .call(watcher, &json!({"monitor": {"pid": worker}}))
        .await
        .unwrap();
    node.suspend(watcher).unwrap();
    node.stop(worker, ExitReason::Shutdown, None).await.unwrap();
    node.resume(watcher).unwrap();
    let down = format!("down:{worker}:shutdown");
    assert!(eventually(async || seen(&node, watcher).await.contains(&down)).await);
    assert_eq!(
        seen(&node, watcher).await,
        [
            "cast:w:init".to_owned(),
            "cast:w:terminate:shutdown".to_owned(),
            down
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_not_trapping_exits_dies_at_once_behind_a_long_queue() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    // Queued first: a request that would make it trap exits, had it run.
    let trap = tokio::spawn({
        let node = node.clone();
        async move { node.call::<_, Value>(p, &json!({"trap_exit": true})).await }
    });
    for i in 0..10_000 {
        node.send(p, otter::encode(&json!({"text": format!("m{i}")})).unwrap())
            .unwrap();
    }
    node.exit(p, ExitReason::Error("boom".into()));
    let reason = tokio::time::timeout(Duration::from_secs(2), node.wait_exit(p))
        .await
        .expect("the exit signal ends it without waiting for its queue");
    assert!(
        matches!(&reason, ExitReason::Error(e) if e == "boom") || reason == ExitReason::NoProc,
        "{reason:?}"
    );
    assert!(matches!(trap.await.unwrap(), Err(CallError::Exited(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trap_flag_that_counts_is_the_one_in_force_when_the_signal_is_taken() {
    let node = node().await;
    let p = probe(&node).await;
    trap(&node, p).await;
    node.suspend(p).unwrap();
    // Taken while it traps: an EXIT message, even though the call queued before it turns
    // trapping off.
    let untrap = tokio::spawn({
        let node = node.clone();
        async move { node.call::<_, Value>(p, &json!({"trap_exit": false})).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    node.exit(p, ExitReason::Error("late".into()));
    tokio::time::sleep(Duration::from_millis(20)).await;
    node.resume(p).unwrap();
    assert_eq!(untrap.await.unwrap(), Ok(json!(true)));
    assert!(
        eventually(async || seen(&node, p)
            .await
            .contains(&"exit:0:error(late)".to_owned()))
        .await
    );
    assert!(node.is_alive(p));
}
