//! Bounded mailboxes: what a full mailbox does with one more message under each policy,
//! what callers get, the counters, and that `DOWN` and `EXIT` are never dropped.

use std::time::{Duration, Instant};

use otter::{CallError, MailboxBound, Node, Overflow, Pid, ProcessLimits, SpawnOptions};
use serde_json::{Value, json};

use crate::support::*;

/// A probe whose mailbox holds `bound` messages, trapping exits, linked to and monitoring a
/// second probe (returned second) that the test kills while the first is full.
async fn bounded(node: &Node, bound: usize, policy: Overflow) -> (Pid, Pid) {
    let limits = ProcessLimits::default().mailbox(MailboxBound::new(bound, policy));
    let p = node
        .spawn(
            "probe",
            otter::from_json(&json!({})),
            SpawnOptions::default().limits(limits),
        )
        .await
        .unwrap();
    let doomed = probe(node).await;
    let _: Value = node.call(p, &json!({"trap_exit": true})).await.unwrap();
    let _: Value = node.call(p, &json!({"link": doomed})).await.unwrap();
    let _: Value = node
        .call(p, &json!({"monitor": {"pid": doomed}}))
        .await
        .unwrap();
    (p, doomed)
}

/// Keep `p` inside a callback for `ms`, and return once it is.
async fn busy_for(node: &Node, p: Pid, ms: u32) -> tokio::task::JoinHandle<()> {
    let n = node.clone();
    let sleeping = tokio::spawn(async move {
        let _: Value = n.call(p, &json!({"sleep": ms})).await.unwrap();
    });
    // The sleep has been taken from the mailbox once the queue is empty again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(node.process_info(p).unwrap().queue_len, 0);
    sleeping
}

/// Call `p` with a timeout; the error and how long it took.
async fn call_err(node: &Node, p: Pid, timeout: Duration) -> (CallError, Duration) {
    let started = Instant::now();
    let r = node
        .call_term(p, otter::from_json(&json!("ping")), Some(timeout))
        .await;
    (r.expect_err("the call fails"), started.elapsed())
}

/// What `p` handled after its sleep, past its setup.
async fn handled(node: &Node, p: Pid) -> Vec<String> {
    events(node, p)
        .await
        .into_iter()
        .filter(|e| e.starts_with("cast:") || e.starts_with("info:") || e.contains(':'))
        .filter(|e| !e.starts_with("init"))
        .collect()
}

fn cast(node: &Node, p: Pid, text: &str) {
    node.cast(p, otter::from_json(&json!({"record": text})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rejecting_mailbox_answers_calls_busy_at_once_and_drops_casts_but_keeps_down_and_exit()
 {
    let node = node().await;
    let bystander = probe(&node).await;
    let (p, doomed) = bounded(&node, 2, Overflow::Reject).await;
    let sleeping = busy_for(&node, p, 600).await;
    cast(&node, p, "c1");
    cast(&node, p, "c2");
    let (e, took) = call_err(&node, p, Duration::from_secs(5)).await;
    assert_eq!(e, CallError::Busy);
    assert!(took < Duration::from_millis(300), "{took:?}");
    cast(&node, p, "c3");
    node.send(p, otter::from_json(&json!({"text": "m"})))
        .unwrap();
    node.kill(doomed);
    // Two casts and the DOWN and EXIT, over the bound, which they do not count against.
    assert!(eventually(async || node.process_info(p).unwrap().queue_len == 4).await);
    let info = node.process_info(p).unwrap();
    assert_eq!(
        (info.mailbox_bound, info.rejected, info.dropped),
        (Some(2), 3, 0)
    );
    let pong: Value = node.call(bystander, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
    sleeping.await.unwrap();
    let pong: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
    let after = handled(&node, p).await;
    let tail: Vec<&str> = after
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(tail[..2], ["cast:c1", "cast:c2"], "{after:?}");
    assert!(
        tail[2..].iter().any(|e| e.starts_with("down:")),
        "{after:?}"
    );
    assert!(
        tail[2..].iter().any(|e| e.starts_with("exit:")),
        "{after:?}"
    );
    assert!(
        !after.iter().any(|e| e == "cast:c3" || e == "info:m"),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_drop_newest_mailbox_drops_what_arrives_and_its_caller_waits_for_its_timeout() {
    let node = node().await;
    let (p, doomed) = bounded(&node, 2, Overflow::DropNewest).await;
    let sleeping = busy_for(&node, p, 800).await;
    cast(&node, p, "c1");
    cast(&node, p, "c2");
    cast(&node, p, "c3");
    let (e, took) = call_err(&node, p, Duration::from_millis(300)).await;
    assert_eq!(e, CallError::Timeout);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    node.kill(doomed);
    let info = node.process_info(p).unwrap();
    assert_eq!((info.rejected, info.dropped), (0, 2));
    sleeping.await.unwrap();
    let pong: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
    let after = handled(&node, p).await;
    assert!(after.iter().any(|e| e == "cast:c2"), "{after:?}");
    assert!(!after.iter().any(|e| e == "cast:c3"), "{after:?}");
    assert!(after.iter().any(|e| e.starts_with("down:")), "{after:?}");
    assert!(after.iter().any(|e| e.starts_with("exit:")), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_drop_oldest_mailbox_drops_the_oldest_message_and_a_dropped_caller_is_told_busy() {
    let node = node().await;
    let (p, doomed) = bounded(&node, 2, Overflow::DropOldest).await;
    let sleeping = busy_for(&node, p, 800).await;
    node.kill(doomed);
    cast(&node, p, "c1");
    let n = node.clone();
    let caller = tokio::spawn(async move { call_err(&n, p, Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // c1 makes room for c2; the call, now oldest, makes room for c3.
    cast(&node, p, "c2");
    cast(&node, p, "c3");
    let (e, took) = caller.await.unwrap();
    assert_eq!(e, CallError::Busy);
    assert!(took < Duration::from_millis(400), "{took:?}");
    let info = node.process_info(p).unwrap();
    assert_eq!((info.rejected, info.dropped), (0, 2));
    sleeping.await.unwrap();
    let pong: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
    let after = handled(&node, p).await;
    assert!(!after.iter().any(|e| e == "cast:c1"), "{after:?}");
    assert!(after.iter().any(|e| e == "cast:c2"), "{after:?}");
    assert!(after.iter().any(|e| e == "cast:c3"), "{after:?}");
    assert!(after.iter().any(|e| e.starts_with("down:")), "{after:?}");
    assert!(after.iter().any(|e| e.starts_with("exit:")), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbounded_mailbox_shows_no_bound_and_counts_nothing() {
    let node = node().await;
    let p = probe(&node).await;
    let info = node.process_info(p).unwrap();
    assert_eq!(
        (info.mailbox_bound, info.rejected, info.dropped),
        (None, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_starts_a_process_with_a_bounded_mailbox_and_a_zero_bound_is_badarg() {
    use crate::starting::{ask, starter, starter_node};
    let node = starter_node().await;
    let s = starter(&node).await;
    let start = |mailbox: Value| json!({"start": {"module": "probe", "mailbox": mailbox}});
    let answer = ask(&node, s, start(json!([1, "reject"]))).await;
    let child: Pid = answer
        .strip_prefix("ok:")
        .and_then(|r| r.split(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(node.process_info(child).unwrap().mailbox_bound, Some(1));
    let sleeping = busy_for(&node, child, 400).await;
    cast(&node, child, "c1");
    let (e, _) = call_err(&node, child, Duration::from_secs(5)).await;
    assert_eq!(e, CallError::Busy);
    sleeping.await.unwrap();
    let answer = ask(&node, s, start(json!([0, "reject"]))).await;
    assert!(
        answer.contains("Badarg(\"mailbox bound must be positive\")"),
        "{answer}"
    );
}
