//! Links, exit signals and trapping exits.

use std::time::Duration;

use otter::{CallError, ExitReason, Received};
use serde_json::{Value, json};

use crate::support::*;

async fn link(node: &otter::Node, a: otter::Pid, b: otter::Pid) {
    let r: Value = node.call(a, &json!({"link": b})).await.unwrap();
    assert_eq!(r, json!("ok"));
}

async fn trap(node: &otter::Node, p: otter::Pid) {
    let _: Value = node.call(p, &json!({"trap_exit": true})).await.unwrap();
}

/// What an observer (this test's own process, named `obs`) heard before `DOWN` from `p`.
async fn heard_until_down(obs: &otter::EmbeddedProcess, p: otter::Pid) -> (Vec<Value>, ExitReason) {
    let mut heard = Vec::new();
    loop {
        match obs.receive(Some(Duration::from_secs(2))).await.unwrap() {
            Received::Cast(t) => heard.push(otter::decode(&t).unwrap()),
            Received::Down { pid, reason, .. } if pid == p => return (heard, reason),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_kills_a_linked_process_that_does_not_trap_exits_without_terminate() {
    let node = node().await;
    let obs = node.embedded_process();
    obs.register("obs").unwrap();
    let a = probe(&node).await;
    let b = try_probe(&node, json!({"observer": "obs"}), None)
        .await
        .unwrap();
    obs.monitor(b).unwrap();
    link(&node, a, b).await;
    let _ = node.call::<_, Value>(a, &json!("trap")).await;
    let (heard, reason) = heard_until_down(&obs, b).await;
    assert!(matches!(reason, ExitReason::Error(e) if e.starts_with("trap")));
    assert_eq!(heard, [json!({"record": "init"})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_process_gets_exit_from_a_crashed_link_and_survives() {
    let node = node().await;
    let a = probe(&node).await;
    let b = probe(&node).await;
    trap(&node, b).await;
    link(&node, a, b).await;
    let _ = node
        .call::<_, Value>(a, &json!({"stop": {"error": "boom"}}))
        .await;
    let want = format!("exit:{a}:error(boom)");
    assert!(eventually(async || events(&node, b).await.contains(&want)).await);
    assert!(node.is_alive(b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_exit_does_not_kill_a_linked_process() {
    let node = node().await;
    let a = probe(&node).await;
    let b = probe(&node).await;
    link(&node, a, b).await;
    node.stop(a, ExitReason::Normal, None).await.unwrap();
    let r: Value = node.call(b, &json!("ping")).await.unwrap();
    assert_eq!(r, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_stops_the_exit_signal() {
    let node = node().await;
    let a = probe(&node).await;
    let b = probe(&node).await;
    link(&node, a, b).await;
    let _: Value = node.call(b, &json!({"unlink": a})).await.unwrap();
    let _ = node.call::<_, Value>(a, &json!("trap")).await;
    let r: Value = node.call(b, &json!("ping")).await.unwrap();
    assert_eq!(r, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_a_dead_process_sends_exit_noproc() {
    let node = node().await;
    let dead = probe(&node).await;
    node.stop(dead, ExitReason::Normal, None).await.unwrap();
    let p = probe(&node).await;
    trap(&node, p).await;
    link(&node, p, dead).await;
    let want = format!("exit:{dead}:noproc");
    assert!(eventually(async || events(&node, p).await.contains(&want)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_kill_ends_even_a_trapping_process_without_terminate() {
    let node = node().await;
    let obs = node.embedded_process();
    obs.register("obs").unwrap();
    let p = try_probe(&node, json!({"observer": "obs"}), None)
        .await
        .unwrap();
    trap(&node, p).await;
    obs.monitor(p).unwrap();
    assert!(node.exit(p, ExitReason::Killed));
    let (heard, reason) = heard_until_down(&obs, p).await;
    assert_eq!(reason, ExitReason::Killed);
    assert_eq!(heard, [json!({"record": "init"})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_normal_is_ignored_unless_trapped_and_other_reasons_end_the_process() {
    let node = node().await;
    let p = probe(&node).await;
    node.exit(p, ExitReason::Normal);
    let r: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(r, json!("pong"));
    let t = probe(&node).await;
    trap(&node, t).await;
    node.exit(t, ExitReason::Normal);
    assert!(
        eventually(async || events(&node, t)
            .await
            .contains(&"exit:0:normal".to_string()))
        .await
    );
    node.exit(p, ExitReason::Shutdown);
    assert!(eventually(async || !node.is_alive(p)).await);
    assert_eq!(
        node.call::<_, Value>(p, &json!("ping")).await,
        Err(CallError::NoProc)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_sends_an_exit_signal_to_another() {
    let node = node().await;
    let a = probe(&node).await;
    let b = probe(&node).await;
    trap(&node, b).await;
    let _: Value = node
        .call(a, &json!({"exit": {"pid": b, "reason": {"error": "go"}}}))
        .await
        .unwrap();
    let want = format!("exit:{a}:error(go)");
    assert!(eventually(async || events(&node, b).await.contains(&want)).await);
}
