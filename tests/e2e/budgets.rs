//! Per-process limits: how long one callback may run, and a memory limit below the node's.

use std::time::{Duration, Instant};

use otter::{CallError, ExitReason, Node, NodeConfig, ProcessLimits, SpawnOptions};
use serde_json::{Value, json};

use crate::support::*;

async fn node_with(config: impl FnOnce(&mut NodeConfig)) -> Node {
    let mut c = NodeConfig::default();
    config(&mut c);
    let node = Node::new(c).unwrap();
    node.load_module("probe", wasm("probe")).await.unwrap();
    node
}

async fn probe_with(node: &Node, limits: ProcessLimits) -> otter::Pid {
    node.spawn(
        "probe",
        otter::from_json(&json!({})),
        SpawnOptions::default().limits(limits),
    )
    .await
    .unwrap()
}

async fn exit_of(node: &Node, pid: otter::Pid, request: Value) -> ExitReason {
    match node.call::<_, Value>(pid, &request).await {
        Err(CallError::Exited(r)) => r,
        other => panic!("expected {request} to end the process, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_running_past_the_node_callback_timeout_exits_with_timeout() {
    let node = node_with(|c| {
        c.callback_timeout(Some(Duration::from_millis(100)));
    })
    .await;
    let looper = probe(&node).await;
    let bystander = probe(&node).await;
    let started = Instant::now();
    assert_eq!(
        exit_of(&node, looper, json!("loop")).await,
        ExitReason::Error("timeout".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let pong: Value = node.call(bystander, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_callback_timeout_overrides_the_node_and_counts_each_callback_afresh() {
    let node = node_with(|c| {
        c.callback_timeout(None);
    })
    .await;
    // How long one spin takes here, on a process without a limit.
    let free = probe(&node).await;
    let spin = json!({"spin": 200_000_000u64});
    let started = Instant::now();
    let _: Value = node.call(free, &spin).await.unwrap();
    let once = started.elapsed();
    let limit = (once * 3).max(Duration::from_millis(50));
    let p = probe_with(&node, ProcessLimits::default().callback_timeout(limit)).await;
    // Six spins: together twice the limit, each a third of it.
    for _ in 0..6 {
        let _: Value = node.call(p, &spin).await.unwrap();
    }
    assert_eq!(
        exit_of(&node, p, json!("loop")).await,
        ExitReason::Error("timeout".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_waiting_in_an_import_does_not_count_against_the_callback_timeout() {
    let node = node_with(|c| {
        c.callback_timeout(Some(Duration::from_millis(100)));
    })
    .await;
    let caller = probe(&node).await;
    let slow = probe(&node).await;
    // The caller waits 400 ms inside `call` while the other answers from a timer.
    let r: Value = node
        .call(
            caller,
            &json!({"call": {"to": {"pid": slow}, "request": {"defer_for": 400}}}),
        )
        .await
        .unwrap();
    assert_ne!(r, Value::Null);
    let pong: Value = node.call(caller, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_memory_limit_below_the_node_ends_only_that_process_with_memory_limit() {
    let node = node_with(|_| {}).await;
    let small = probe_with(&node, ProcessLimits::default().memory(4 << 20)).await;
    let big = probe(&node).await;
    // 8 MiB fits the node's 16 MiB, not the process's 4 MiB.
    let _: Value = node.call(big, &json!({"alloc": 8 << 20})).await.unwrap();
    assert_eq!(
        exit_of(&node, small, json!({"alloc": 8 << 20})).await,
        ExitReason::Error("memory_limit".into())
    );
    let pong: Value = node.call(big, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_memory_limit_above_the_node_is_cut_to_the_node() {
    let node = node_with(|c| {
        c.engine().max_memory(4 << 20);
    })
    .await;
    let p = probe_with(&node, ProcessLimits::default().memory(64 << 20)).await;
    assert_eq!(
        exit_of(&node, p, json!({"alloc": 8 << 20})).await,
        ExitReason::Error("memory_limit".into())
    );
}
