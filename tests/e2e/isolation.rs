//! A crash ends one process only.

use std::time::Duration;

use otter::{CallError, ExitReason, NodeConfig};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trap_among_a_hundred_processes_leaves_ninety_nine_answering() {
    let node = node().await;
    let mut pids = Vec::new();
    for _ in 0..100 {
        pids.push(probe(&node).await);
    }
    let r = node.call::<_, Value>(pids[42], &json!("trap")).await;
    match r {
        Err(CallError::Exited(ExitReason::Error(e))) => assert!(e.contains("unreachable"), "{e}"),
        other => panic!("expected the trap as the exit reason, got {other:?}"),
    }
    for (i, pid) in pids.iter().enumerate() {
        let r = node.call::<_, Value>(*pid, &json!("ping")).await;
        if i == 42 {
            assert_eq!(r, Err(CallError::NoProc));
        } else {
            assert_eq!(r, Ok(json!("pong")), "process {i}");
        }
    }
    assert_eq!(node.process_count(), 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_handle_call_reaches_the_caller_and_the_monitors() {
    let node = node().await;
    let watcher = probe(&node).await;
    let p = probe(&node).await;
    let _: Value = node
        .call(watcher, &json!({"monitor": {"pid": p}}))
        .await
        .unwrap();
    let r = node.call::<_, Value>(p, &json!("panic")).await;
    assert!(
        matches!(r, Err(CallError::Exited(ExitReason::Error(_)))),
        "{r:?}"
    );
    let prefix = format!("down:{p}:error(");
    assert!(
        eventually(async || events(&node, watcher)
            .await
            .iter()
            .any(|e| e.starts_with(&prefix)))
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_on_a_crashing_server_get_an_error_at_once() {
    let node = node().await;
    let p = probe(&node).await;
    let n = node.clone();
    let waiting = tokio::spawn(async move { n.call::<_, Value>(p, &json!("defer")).await });
    assert!(eventually(async || events(&node, p).await.contains(&"defer".to_string())).await);
    node.cast(p, otter::from_json(&json!("panic")));
    let r = tokio::time::timeout(Duration::from_secs(1), waiting)
        .await
        .expect("the waiting caller is answered at once")
        .unwrap();
    assert!(
        matches!(r, Err(CallError::Exited(ExitReason::Error(_)))),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_loop_does_not_starve_other_processes_and_can_be_killed() {
    let node = node().await;
    let looper = probe(&node).await;
    let other = probe(&node).await;
    let n = node.clone();
    let stuck = tokio::spawn(async move { n.call::<_, Value>(looper, &json!("loop")).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    for _ in 0..50 {
        let r = tokio::time::timeout(
            Duration::from_secs(1),
            node.call::<_, Value>(other, &json!("ping")),
        )
        .await
        .expect("answers while another process loops");
        assert_eq!(r, Ok(json!("pong")));
    }
    assert!(node.kill(looper));
    let r = stuck.await.unwrap();
    assert_eq!(r, Err(CallError::Exited(ExitReason::Killed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_ends_that_process_only() {
    let mut config = NodeConfig::default();
    config.engine().max_memory(4 << 20);
    let node = otter::Node::new(config).unwrap();
    node.load_module("probe", wasm("probe")).await.unwrap();
    let bomb = probe(&node).await;
    let other = probe(&node).await;
    let r = node
        .call::<_, Value>(bomb, &json!({"alloc": 64 << 20}))
        .await;
    assert!(
        matches!(r, Err(CallError::Exited(ExitReason::Error(_)))),
        "{r:?}"
    );
    let small: Value = node.call(other, &json!({"alloc": 1 << 20})).await.unwrap();
    assert_eq!(small, json!(1 << 20));
}
