//! `get_state` and `replace_state` (OTP's `sys:get_state`/`sys:replace_state`): signals
//! handled between callbacks, leaving the rest of the process alone.

use std::time::{Duration, Instant};

use otter::{ReplaceStateError, SpawnOptions};
use serde_json::{Value, json};

use crate::support::*;

async fn kv(node: &otter::Node) -> otter::Pid {
    node.spawn("kv", otter::encode(&()).unwrap(), Default::default())
        .await
        .expect("kv starts")
}

async fn state(node: &otter::Node, pid: otter::Pid) -> Value {
    otter::to_json(&node.get_state(pid).await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_state_returns_the_new_state_and_the_server_goes_on_with_it() {
    let node = node().await;
    let p = kv(&node).await;
    let _: Value = node.call(p, &json!({"put": ["a", "1"]})).await.unwrap();
    let new = json!({"data": {"x": "9"}, "writes": 5});
    let answered = node.replace_state(p, otter::from_json(&new)).await.unwrap();
    assert_eq!(otter::to_json(&answered).unwrap(), new);
    let x: Value = node.call(p, &json!({"get": "x"})).await.unwrap();
    assert_eq!(x, json!("9"));
    let a: Value = node.call(p, &json!({"get": "a"})).await.unwrap();
    assert_eq!(a, Value::Null);
    let writes: Value = node.call(p, &json!("writes")).await.unwrap();
    assert_eq!(writes, json!(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_does_not_decode_is_refused_and_the_old_state_kept() {
    let node = node().await;
    let p = kv(&node).await;
    let _: Value = node.call(p, &json!({"put": ["a", "1"]})).await.unwrap();
    let before = state(&node, p).await;
    for bad in [json!(42), json!({"data": "not a map"}), json!(null)] {
        let r = node.replace_state(p, otter::from_json(&bad)).await;
        assert!(
            matches!(r, Err(ReplaceStateError::Refused(_))),
            "{bad}: {r:?}"
        );
        assert_eq!(state(&node, p).await, before, "{bad}");
    }
    let a: Value = node.call(p, &json!({"get": "a"})).await.unwrap();
    assert_eq!(a, json!("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_state_overtakes_messages_of_a_suspended_server_which_keeps_its_mailbox() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    for i in 0..3 {
        node.cast(p, otter::from_json(&json!({"record": i.to_string()})));
    }
    let mut s = state(&node, p).await;
    s["events"] = json!(["replaced"]);
    node.replace_state(p, otter::from_json(&s)).await.unwrap();
    assert_eq!(
        node.processes()
            .iter()
            .find(|i| i.pid == p)
            .unwrap()
            .queue_len,
        3
    );
    node.resume(p).unwrap();
    assert_eq!(
        events(&node, p).await,
        ["replaced", "cast:0", "cast:1", "cast:2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_state_keeps_a_hibernating_process_hibernating_with_the_new_state() {
    let node = node().await;
    let p = try_probe(&node, json!({"mode": "hibernate"}), None)
        .await
        .unwrap();
    assert!(eventually(async || node.is_hibernating(p)).await);
    let mut s = state(&node, p).await;
    s["events"] = json!(["replaced"]);
    node.replace_state(p, otter::from_json(&s)).await.unwrap();
    assert!(node.is_hibernating(p));
    assert_eq!(state(&node, p).await["events"], json!(["replaced"]));
    // Refused while hibernating: still asleep, with the state it had.
    let r = node.replace_state(p, otter::from_json(&json!("no"))).await;
    assert!(matches!(r, Err(ReplaceStateError::Refused(_))), "{r:?}");
    assert!(node.is_hibernating(p));
    assert_eq!(events(&node, p).await, ["replaced"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_state_over_the_message_size_limit_or_to_nobody_is_refused() {
    let node = node().await;
    let p = kv(&node).await;
    let huge = json!({"data": {"k": "x".repeat(2 << 20)}, "writes": 0});
    let r = node.replace_state(p, otter::from_json(&huge)).await;
    assert!(matches!(r, Err(ReplaceStateError::Badarg(_))), "{r:?}");
    assert_eq!(state(&node, p).await, json!({"data": {}, "writes": 0}));
    let r = node
        .replace_state(999_999, otter::from_json(&json!({})))
        .await;
    assert_eq!(r, Err(ReplaceStateError::NoProc));
    node.stop(p, otter::ExitReason::Normal, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let r = node.replace_state(p, otter::from_json(&json!({}))).await;
    assert_eq!(r, Err(ReplaceStateError::NoProc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_crashes_taking_the_state_exits_with_the_reason_and_monitors_see_it() {
    let node = node().await;
    let p = probe(&node).await;
    let watcher = probe(&node).await;
    let _: Value = node
        .call(watcher, &json!({"monitor": {"pid": p}}))
        .await
        .unwrap();
    let mut s = state(&node, p).await;
    s["tripwire"] = json!(true);
    let r = node.replace_state(p, otter::from_json(&s)).await;
    let Err(ReplaceStateError::Exited(reason)) = r else {
        panic!("{r:?}");
    };
    assert_eq!(
        reason,
        otter::ExitReason::Error("panic: tripwire restored".into())
    );
    tokio::time::timeout(Duration::from_secs(5), node.wait_exit(p))
        .await
        .expect("it exits");
    assert!(!node.is_alive(p));
    assert!(
        eventually(async || events(&node, watcher)
            .await
            .iter()
            .any(|e| e.contains("down") && e.contains("tripwire")))
        .await,
        "{:?}",
        events(&node, watcher).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_message_starts_the_idle_time_again_as_in_otp() {
    // OTP's `system_continue` re-enters the server's receive with its whole timeout, so a
    // `sys:get_state` 600 ms into a 1,000 ms `hibernate_after` puts the hibernation at
    // 1,600 ms (checked on OTP 25 with an idle timeout, and with suspend and resume).
    let node = node().await;
    let opts = SpawnOptions::default().hibernate_after(Duration::from_millis(1000));
    let p = node
        .spawn("probe", otter::from_json(&json!({})), opts)
        .await
        .unwrap();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!node.is_hibernating(p));
    let _ = node.get_state(p).await.unwrap();
    tokio::time::sleep_until((t0 + Duration::from_millis(1200)).into()).await;
    assert!(
        !node.is_hibernating(p),
        "hibernated 1,000 ms after its start: the get_state did not start the idle time again"
    );
    assert!(eventually(async || node.is_hibernating(p)).await);
}
