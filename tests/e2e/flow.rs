//! What happens between callbacks: continue, idle timeout, hibernate, timers, unexpected
//! messages.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_from_init_runs_before_a_message_init_sent_itself() {
    let node = node().await;
    let p = try_probe(&node, json!({"mode": "send_self_then_continue"}), None)
        .await
        .unwrap();
    assert!(eventually(async || events(&node, p).await.len() >= 3).await);
    assert_eq!(
        events(&node, p).await,
        ["init", "continue:after-init", "info:from-init"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_then_continue_answers_first_and_continues_before_queued_messages() {
    let node = node().await;
    let p = probe(&node).await;
    let r: Value = node
        .call(p, &json!({"reply_continue": "chain-2"}))
        .await
        .unwrap();
    assert_eq!(r, json!("ok"));
    assert!(eventually(async || events(&node, p).await.len() >= 5).await);
    assert_eq!(
        events(&node, p).await,
        [
            "init",
            "continue:chain-2",
            "continue:chain-1",
            "continue:chain-0",
            "info:sent-before-chain-2"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_delivers_timeout_after_the_idle_period() {
    let node = node().await;
    let p = try_probe(&node, json!({"mode": {"timeout": 300}}), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!saw_timeout(&node, p).await, "fired before the idle period");
    assert!(sees_timeout(&node, p, Duration::from_millis(400)).await);
}

/// Whether probe `p` has its idle timeout within ten looks, one `every` (longer than the
/// timeout): a `get_state` starts the timeout again, as a system message does in OTP, so
/// looking more often would keep it from firing.
async fn sees_timeout(node: &otter::Node, p: otter::Pid, every: Duration) -> bool {
    for _ in 0..10 {
        tokio::time::sleep(every).await;
        if saw_timeout(node, p).await {
            return true;
        }
    }
    false
}

/// Whether probe `p` has had its idle timeout, seen through `get_state`: a signal, which
/// (unlike a call) does not cancel the timeout, but starts it again.
async fn saw_timeout(node: &otter::Node, p: otter::Pid) -> bool {
    let state = otter::to_json(&node.get_state(p).await.unwrap()).unwrap();
    state["events"]
        .as_array()
        .unwrap()
        .contains(&json!("timeout"))
}

/// A process keeps one timer armed from wait to wait: a shorter idle timeout than the one
/// before still fires at its own deadline, not at the earlier wait's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_timeout_shorter_than_the_one_before_fires_at_its_own_deadline() {
    let node = node().await;
    let p = probe(&node).await;
    let r: Value = node.call(p, &json!({"timeout": 60_000})).await.unwrap();
    assert_eq!(r, json!("ok"));
    let r: Value = node.call(p, &json!({"timeout": 100})).await.unwrap();
    assert_eq!(r, json!("ok"));
    assert!(
        sees_timeout(&node, p, Duration::from_millis(200)).await,
        "no timeout within 2 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_before_the_idle_timeout_cancels_it() {
    let node = node().await;
    let p = probe(&node).await;
    let r: Value = node.call(p, &json!({"timeout": 300})).await.unwrap();
    assert_eq!(r, json!("ok"));
    node.cast(p, otter::from_json(&json!({"record": "early"})));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ev = events(&node, p).await;
    assert!(ev.contains(&"cast:early".to_string()), "{ev:?}");
    assert!(!ev.contains(&"timeout".to_string()), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hibernate_drops_the_instance_and_waking_restores_the_state() {
    let node = node().await;
    let p = probe(&node).await;
    let _: Value = node.call(p, &json!({"add": 5})).await.unwrap();
    let _: Value = node.call(p, &json!({"alloc": 2 << 20})).await.unwrap();
    let info = |node: &otter::Node| node.processes().into_iter().find(|i| i.pid == p).unwrap();
    assert!(info(&node).memory >= 2 << 20, "{:?}", info(&node));
    let r: Value = node.call(p, &json!("hibernate")).await.unwrap();
    assert_eq!(r, json!("ok"));
    assert!(eventually(async || node.is_hibernating(p)).await);
    assert_eq!(
        info(&node).memory,
        0,
        "a hibernating process holds no linear memory"
    );
    // The next message wakes it with the state it had.
    let n: Value = node.call(p, &json!({"add": 1})).await.unwrap();
    assert_eq!(n, json!(6));
    assert!(!node.is_hibernating(p));
    assert_eq!(events(&node, p).await, ["init"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_state_works_while_hibernating() {
    let node = node().await;
    let p = try_probe(&node, json!({"mode": "hibernate"}), None)
        .await
        .unwrap();
    assert!(eventually(async || node.is_hibernating(p)).await);
    let state = otter::to_json(&node.get_state(p).await.unwrap()).unwrap();
    assert_eq!(state["events"], json!(["init"]));
    assert!(node.is_hibernating(p));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_after_delivers_and_cancel_timer_prevents_delivery() {
    let node = node().await;
    let p = probe(&node).await;
    let _: Value = node
        .call(p, &json!({"send_after": {"ms": 20, "msg": "fired"}}))
        .await
        .unwrap();
    let t: Value = node
        .call(p, &json!({"send_after": {"ms": 1000, "msg": "cancelled"}}))
        .await
        .unwrap();
    let left: Value = node.call(p, &json!({"cancel_timer": t})).await.unwrap();
    assert!(
        left.as_u64().is_some_and(|ms| ms > 0 && ms <= 1000),
        "{left}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ev = events(&node, p).await;
    assert!(ev.contains(&"info:fired".to_string()), "{ev:?}");
    assert!(!ev.contains(&"info:cancelled".to_string()), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_message_is_logged_and_the_server_goes_on() {
    let node = node().await;
    let p = probe(&node).await;
    node.send(p, otter::from_json(&json!({"something": "else"})))
        .unwrap();
    node.cast(p, otter::from_json(&json!(42)));
    let r: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(r, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_queue_len_counts_waiting_messages() {
    let node = node().await;
    let p = probe(&node).await;
    let n = node.clone();
    let spin =
        tokio::spawn(async move { n.call::<_, Value>(p, &json!({"spin": 30_000_000})).await });
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 0..3 {
        node.cast(p, otter::from_json(&json!({"record": i.to_string()})));
    }
    spin.await.unwrap().unwrap();
    let len: Value = node.call(p, &json!("queue_len")).await.unwrap();
    assert_eq!(len, json!(0));
    assert!(events(&node, p).await.contains(&"cast:2".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_server_queues_messages_and_resume_handles_them_in_order() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    for i in 0..3 {
        node.cast(p, otter::from_json(&json!({"record": i.to_string()})));
    }
    let r = node
        .call_term(
            p,
            otter::from_json(&json!("ping")),
            Some(Duration::from_millis(100)),
        )
        .await;
    assert_eq!(r, Err(otter::CallError::Timeout));
    let queued = node
        .processes()
        .into_iter()
        .find(|i| i.pid == p)
        .unwrap()
        .queue_len;
    assert_eq!(queued, 4, "three casts and the timed-out call wait");
    // get_state still answers while suspended.
    let state = otter::to_json(&node.get_state(p).await.unwrap()).unwrap();
    assert_eq!(state["events"], json!(["init"]));
    node.resume(p).unwrap();
    assert_eq!(
        events(&node, p).await,
        ["init", "cast:0", "cast:1", "cast:2"]
    );
}
