//! Start, init results, stop and terminate.

use std::time::Duration;

use otter::{CallError, ExitReason, SpawnOptions, StartError, StopError};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_ignore_returns_ignore_and_never_registers_the_name() {
    let node = node().await;
    let r = try_probe(&node, json!({"mode": "ignore"}), Some("ign")).await;
    assert_eq!(r, Err(StartError::Ignore));
    assert_eq!(node.whereis("ign"), None);
    assert_eq!(node.process_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_stop_fails_the_start_and_frees_the_name_first() {
    let node = node().await;
    let r = try_probe(&node, json!({"mode": {"stop": "no"}}), Some("st")).await;
    assert_eq!(r, Err(StartError::Stopped(ExitReason::Error("no".into()))));
    assert_eq!(node.whereis("st"), None);
    // The name can be taken again at once.
    named_probe(&node, "st", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_that_panics_fails_the_start_with_the_crash_reason() {
    let node = node().await;
    let r = try_probe(&node, json!({"mode": "panic"}), None).await;
    match r {
        Err(StartError::Stopped(ExitReason::Error(e))) => {
            assert_eq!(e, "panic: init panicked on purpose")
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    assert_eq!(node.process_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_init_times_out_and_the_process_is_gone() {
    let node = node().await;
    let r = node
        .spawn(
            "probe",
            otter::from_json(&json!({"mode": "loop"})),
            SpawnOptions::default()
                .name("slow")
                .start_timeout(Duration::from_millis(100)),
        )
        .await;
    assert_eq!(r, Err(StartError::Timeout));
    assert_eq!(node.whereis("slow"), None);
    assert_eq!(node.process_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_reply_answers_then_terminates_then_the_pid_is_noproc() {
    let node = node().await;
    let obs = named_probe(&node, "obs", json!({})).await;
    let p = named_probe(&node, "p", json!({"observer": "obs"})).await;
    let r: Value = node
        .call(p, &json!({"stop_reply": "normal"}))
        .await
        .unwrap();
    assert_eq!(r, json!("ok"));
    assert!(eventually(async || !node.is_alive(p)).await);
    let r = node.call::<_, Value>(p, &json!("ping")).await;
    assert_eq!(r, Err(CallError::NoProc));
    assert!(
        eventually(async || events(&node, obs)
            .await
            .contains(&"cast:terminate:normal".into()))
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_from_handle_call_gives_the_caller_the_exit_reason() {
    let node = node().await;
    let p = probe(&node).await;
    let r = node
        .call::<_, Value>(p, &json!({"stop": {"error": "bye"}}))
        .await;
    assert_eq!(r, Err(CallError::Exited(ExitReason::Error("bye".into()))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_runs_terminate_normal_and_a_second_stop_is_noproc() {
    let node = node().await;
    let obs = named_probe(&node, "obs", json!({})).await;
    let p = probe_observed(&node).await;
    node.stop(p, ExitReason::Normal, None).await.unwrap();
    // terminate has run by the time stop returns: its cast to the observer was sent before.
    assert!(!node.is_alive(p));
    assert!(
        eventually(async || events(&node, obs)
            .await
            .contains(&"cast:terminate:normal".into()))
        .await
    );
    assert_eq!(
        node.stop(p, ExitReason::Normal, None).await,
        Err(StopError::NoProc)
    );
}

async fn probe_observed(node: &otter::Node) -> otter::Pid {
    try_probe(node, json!({"observer": "obs"}), None)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_a_reason_is_seen_by_terminate_and_by_monitors() {
    let node = node().await;
    let obs = named_probe(&node, "obs", json!({})).await;
    let p = probe_observed(&node).await;
    let _: Value = node
        .call(obs, &json!({"monitor": {"pid": p}}))
        .await
        .unwrap();
    node.stop(
        p,
        ExitReason::Error("bye".into()),
        Some(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let want_down = format!("down:{p}:error(bye)");
    assert!(
        eventually(async || {
            let ev = events(&node, obs).await;
            ev.contains(&"cast:terminate:error(bye)".to_string()) && ev.contains(&want_down)
        })
        .await,
        "{:?}",
        events(&node, obs).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_timeout_leaves_a_busy_server_running() {
    let node = node().await;
    let p = probe(&node).await;
    let n = node.clone();
    tokio::spawn(async move { n.call::<_, Value>(p, &json!("loop")).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = node
        .stop(p, ExitReason::Normal, Some(Duration::from_millis(100)))
        .await;
    assert_eq!(r, Err(StopError::Timeout));
    assert!(node.is_alive(p));
    assert!(node.kill(p));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_skips_terminate_and_monitors_see_killed() {
    let node = node().await;
    let obs = named_probe(&node, "obs", json!({})).await;
    let p = probe_observed(&node).await;
    let _: Value = node
        .call(obs, &json!({"monitor": {"pid": p}}))
        .await
        .unwrap();
    assert!(node.kill(p));
    assert!(eventually(async || !node.is_alive(p)).await);
    let want = format!("down:{p}:killed");
    assert!(eventually(async || events(&node, obs).await.contains(&want)).await);
    assert!(
        !events(&node, obs)
            .await
            .iter()
            .any(|e| e.starts_with("cast:terminate"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_process_with_terminate_shutdown() {
    // Exit-watcher tasks may run in any order, so the newest-first order is not asserted
    // here; the CLI test pins `otter run`'s reverse stop order from its log.
    let node = node().await;
    let pids = [probe(&node).await, probe(&node).await, probe(&node).await];
    let mut waits = Vec::new();
    for pid in pids {
        let n = node.clone();
        waits.push(tokio::spawn(async move { n.wait_exit(pid).await }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    node.shutdown().await;
    for w in waits {
        assert_eq!(w.await.unwrap(), ExitReason::Shutdown);
    }
    assert_eq!(node.process_count(), 0);
}
