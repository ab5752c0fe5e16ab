//! `terminate` after a panic (OTP runs `terminate/2` when a callback raises): the SDK's
//! panic hook runs it on the state as it stood before the failing callback, the process then
//! exits with the panic's reason, and the host runs no `terminate` of its own.

use std::time::{Duration, Instant};

use otter::{
    CallError, EmbeddedProcess, ExitReason, Node, NodeConfig, Pid, ProcessLimits, Received,
    SpawnOptions,
};
use serde_json::{Value, json};

use crate::support::*;

const WAIT: Option<Duration> = Some(Duration::from_secs(2));

async fn panic_node(config: NodeConfig) -> Node {
    let node = Node::new(config).unwrap();
    node.load_module("panic_probe", wasm("panic_probe"))
        .await
        .unwrap();
    node
}

/// A panic probe reporting to `watcher`, which monitors it.
async fn start(node: &Node, watcher: &EmbeddedProcess, limits: ProcessLimits) -> Pid {
    let pid = node
        .spawn(
            "panic_probe",
            otter::from_json(&json!({"watcher": watcher.pid()})),
            SpawnOptions::default().limits(limits),
        )
        .await
        .unwrap();
    watcher.monitor(pid).unwrap();
    pid
}

fn json_of(term: &[u8]) -> Value {
    otter::to_json(term).unwrap()
}

/// What the watcher gets until the probe's `DOWN`, in order: `terminate`'s reports, then the
/// exit reason.
async fn until_down(watcher: &EmbeddedProcess) -> (Vec<Value>, ExitReason) {
    let mut reports = Vec::new();
    loop {
        match watcher.receive(WAIT).await.expect("a report or DOWN") {
            Received::Message(m) => reports.push(json_of(&m)["terminated"].clone()),
            Received::Down { reason, .. } => return (reports, reason),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn panic_reason(message: &str) -> ExitReason {
    ExitReason::Error(format!("panic: {message}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_handle_call_runs_terminate_with_the_state_from_before_it() {
    let node = panic_node(NodeConfig::default()).await;
    let watcher = node.embedded_process();
    let p = start(&node, &watcher, ProcessLimits::default()).await;
    for _ in 0..2 {
        let _: u64 = node.call(p, &json!("inc")).await.unwrap();
    }
    let crashed = node.call::<_, Value>(p, &json!({"panic": "boom"})).await;
    assert_eq!(crashed, Err(CallError::Exited(panic_reason("boom"))));
    let (reports, reason) = until_down(&watcher).await;
    assert_eq!(
        reports,
        [json!({"reason": "error(panic: boom)", "count": 2, "log": ["inc", "inc"]})],
        "terminate ran once, before DOWN, on the state the last returning callback left"
    );
    assert_eq!(reason, panic_reason("boom"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_handle_cast_handle_info_or_handle_continue_runs_terminate_too() {
    let node = panic_node(NodeConfig::default()).await;
    let watcher = node.embedded_process();
    for how in ["cast", "info", "continue"] {
        let p = start(&node, &watcher, ProcessLimits::default()).await;
        node.cast(p, otter::from_json(&json!("inc")));
        match how {
            "cast" => node.cast(p, otter::from_json(&json!({"panic": how}))),
            "info" => node
                .send(p, otter::from_json(&json!({"panic": how})))
                .unwrap(),
            _ => {
                // The reply comes first; the continue that follows panics.
                let count: u64 = node.call(p, &json!({"continue_panic": how})).await.unwrap();
                assert_eq!(count, 1);
            }
        }
        let (reports, reason) = until_down(&watcher).await;
        assert_eq!(
            reports,
            [json!({"reason": format!("error(panic: {how})"), "count": 1, "log": ["inc"]})],
            "{how}"
        );
        assert_eq!(reason, panic_reason(how), "{how}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_within_a_batch_runs_terminate_on_the_state_after_the_messages_before_it() {
    let node = panic_node(NodeConfig::default()).await;
    let watcher = node.embedded_process();
    let p = start(&node, &watcher, ProcessLimits::default()).await;
    // Queued while suspended, so that they reach the guest as one batch.
    node.suspend(p).unwrap();
    for _ in 0..3 {
        node.cast(p, otter::from_json(&json!("inc")));
    }
    node.cast(p, otter::from_json(&json!({"panic": "fourth"})));
    node.cast(p, otter::from_json(&json!("inc")));
    node.resume(p).unwrap();
    let (reports, reason) = until_down(&watcher).await;
    assert_eq!(
        reports,
        [json!({"reason": "error(panic: fourth)", "count": 3, "log": ["inc", "inc", "inc"]})]
    );
    assert_eq!(reason, panic_reason("fourth"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_terminate_ends_the_process_without_running_terminate_again() {
    let node = panic_node(NodeConfig::default()).await;
    let watcher = node.embedded_process();
    let p = start(&node, &watcher, ProcessLimits::default()).await;
    let _: u64 = node.call(p, &json!("panic_in_terminate")).await.unwrap();
    node.stop(p, ExitReason::Shutdown, Some(Duration::from_secs(2)))
        .await
        .unwrap();
    let (reports, reason) = until_down(&watcher).await;
    assert_eq!(
        reports,
        [json!({"reason": "shutdown", "count": 0, "log": []})]
    );
    // As in OTP, a terminate that raises gives the process its own exit reason.
    assert_eq!(reason, panic_reason("terminate failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcing_panics_over_and_over_gains_a_callback_no_more_time() {
    let node = panic_node(NodeConfig::default()).await;
    let watcher = node.embedded_process();
    let limit = Duration::from_millis(100);
    let p = start(
        &node,
        &watcher,
        ProcessLimits::default().callback_timeout(limit),
    )
    .await;
    let started = Instant::now();
    let r = node.call::<_, Value>(p, &json!("announce_and_spin")).await;
    assert_eq!(
        r,
        Err(CallError::Exited(ExitReason::Error("timeout".into())))
    );
    // One fresh budget for a panic's terminate at most: well under a second, not for ever.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let (reports, _) = until_down(&watcher).await;
    assert_eq!(reports, Vec::<Value>::new(), "a trap runs no terminate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_that_is_not_a_panic_or_running_out_of_memory_runs_no_terminate() {
    let node = panic_node(NodeConfig::default()).await;
    let watcher = node.embedded_process();
    for (request, reason) in [("trap", "trap: unreachable"), ("exhaust", "memory_limit")] {
        let p = start(&node, &watcher, ProcessLimits::default()).await;
        let r = node.call::<_, Value>(p, &json!(request)).await;
        assert_eq!(r, Err(CallError::Exited(ExitReason::Error(reason.into()))));
        let (reports, down) = until_down(&watcher).await;
        assert_eq!(reports, Vec::<Value>::new(), "{request}");
        assert_eq!(down, ExitReason::Error(reason.into()));
    }
}

/// A hostile guest announcing a panic through the raw import and returning as if it had not:
/// the announcement holds only within that callback, so a later, unrelated trap is named as
/// itself, not as the old panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_announced_in_a_callback_that_returned_names_no_later_trap() {
    let node = panic_node(NodeConfig::default()).await;
    let watcher = node.embedded_process();
    for (request, reason) in [("trap", "trap: unreachable"), ("exhaust", "memory_limit")] {
        let p = start(&node, &watcher, ProcessLimits::default()).await;
        let _: u64 = node
            .call(p, &json!({"announce": "long ago"}))
            .await
            .expect("the callback returned");
        let _: u64 = node
            .call(p, &json!("claim_terminated"))
            .await
            .expect("the callback returned");
        let r = node.call::<_, Value>(p, &json!(request)).await;
        assert_eq!(
            r,
            Err(CallError::Exited(ExitReason::Error(reason.into()))),
            "{request}"
        );
        let (reports, down) = until_down(&watcher).await;
        assert_eq!(reports, Vec::<Value>::new(), "{request}");
        assert_eq!(down, ExitReason::Error(reason.into()));
    }
}
