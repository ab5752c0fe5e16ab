//! Names and monitors.

use otter::{ExitReason, StartError};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_under_a_taken_name_is_already_started_with_the_holder() {
    let node = node().await;
    let first = named_probe(&node, "svc", json!({})).await;
    let r = try_probe(&node, json!({}), Some("svc")).await;
    assert_eq!(r, Err(StartError::AlreadyStarted(first)));
    assert_eq!(node.process_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_is_free_the_moment_its_process_dies() {
    let node = node().await;
    let first = named_probe(&node, "svc", json!({})).await;
    let _ = node.call::<_, Value>(first, &json!("trap")).await;
    assert_eq!(node.whereis("svc"), None);
    let second = named_probe(&node, "svc", json!({})).await;
    assert_ne!(first, second);
    assert_eq!(node.whereis("svc"), Some(second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_registers_and_looks_up_names() {
    let node = node().await;
    let p = probe(&node).await;
    let q = probe(&node).await;
    let r: Value = node.call(p, &json!({"register": "me"})).await.unwrap();
    assert_eq!(r, json!("ok"));
    let r: Value = node.call(q, &json!({"register": "me"})).await.unwrap();
    assert_eq!(r, json!(format!("name already registered by {p}")));
    let r: Value = node.call(q, &json!({"whereis": "me"})).await.unwrap();
    assert_eq!(r, json!(p));
    let r: Value = node.call(q, &json!({"whereis": "nobody"})).await.unwrap();
    assert_eq!(r, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_a_dead_pid_delivers_down_noproc_at_once() {
    let node = node().await;
    let w = probe(&node).await;
    let dead = probe(&node).await;
    node.stop(dead, ExitReason::Normal, None).await.unwrap();
    let _: Value = node
        .call(w, &json!({"monitor": {"pid": dead}}))
        .await
        .unwrap();
    let want = format!("down:{dead}:noproc");
    assert!(eventually(async || events(&node, w).await.contains(&want)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_stop_delivers_down_normal() {
    let node = node().await;
    let w = probe(&node).await;
    let p = probe(&node).await;
    let _: Value = node.call(w, &json!({"monitor": {"pid": p}})).await.unwrap();
    node.stop(p, ExitReason::Normal, None).await.unwrap();
    let want = format!("down:{p}:normal");
    assert!(eventually(async || events(&node, w).await.contains(&want)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demonitor_drops_the_down_message() {
    let node = node().await;
    let w = probe(&node).await;
    let p = probe(&node).await;
    let mref: Value = node.call(w, &json!({"monitor": {"pid": p}})).await.unwrap();
    let _: Value = node.call(w, &json!({"demonitor": mref})).await.unwrap();
    node.stop(p, ExitReason::Normal, None).await.unwrap();
    let _: Value = node.call(w, &json!("ping")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        !events(&node, w)
            .await
            .iter()
            .any(|e| e.starts_with("down:"))
    );
}
