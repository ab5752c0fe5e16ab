//! Guest-facing limits: the maximum message size, out of memory, one-line exit reasons,
//! timers per process.

use std::time::Duration;

use otter::{CallError, ExitReason, Keys, Node, NodeConfig, SpawnOptions, StartError, encode};
use serde_json::{Value, json};

use crate::support::*;

/// A CBOR text string of `len` bytes (a little more with its header).
fn big(len: usize) -> Vec<u8> {
    encode(&"x".repeat(len)).unwrap()
}

/// A call's error text, which must name the limit.
fn assert_over_limit(r: Result<Value, CallError>) {
    match r {
        Err(CallError::Badarg(m) | CallError::BadReply(m)) => {
            assert!(m.contains("exceeds the 1048576-byte limit"), "{m}")
        }
        Ok(v) => panic!(
            "expected the message to be refused, got {} bytes",
            v.to_string().len()
        ),
        Err(e) => panic!("expected the message to be refused, got {e:.200}"),
    }
}

async fn node_with(config: impl FnOnce(&mut NodeConfig)) -> Node {
    let mut c = NodeConfig::default();
    config(&mut c);
    let node = Node::new(c).unwrap();
    node.load_module("probe", wasm("probe")).await.unwrap();
    node
}

async fn exit_of(node: &Node, pid: otter::Pid, request: Value) -> ExitReason {
    match node.call::<_, Value>(pid, &request).await {
        Err(CallError::Exited(r)) => r,
        other => panic!("expected {request} to end the process, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_message_limit_is_refused_and_the_server_keeps_its_state() {
    let node = node().await;
    let p = probe(&node).await;
    let _: Value = node.call(p, &json!({"add": 5})).await.unwrap();
    let r = node
        .call_term(p, big(12 << 20), Some(Duration::from_secs(5)))
        .await;
    assert_over_limit(r.map(|_| Value::Null));
    match node.send(p, big(2 << 20)) {
        Err(otter::SendError::Badarg(m)) => {
            assert!(m.contains("exceeds the 1048576-byte limit"), "{m}")
        }
        other => panic!("expected the message to be refused, got {other:?}"),
    }
    node.cast(p, big(12 << 20));
    let n: Value = node.call(p, &json!({"add": 0})).await.unwrap();
    assert_eq!(n, json!(5));
    let args = big(2 << 20);
    let why = format!("args of {} bytes exceed the 1048576-byte limit", args.len());
    assert_eq!(
        node.spawn("probe", args, SpawnOptions::default()).await,
        Err(StartError::Badarg(why))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_sending_over_the_message_limit_gets_an_error_and_the_receiver_gets_nothing() {
    let node = node().await;
    node.create_registry("R", Keys::Duplicate).unwrap();
    let sender = probe(&node).await;
    let receiver = try_probe(&node, json!({"register": ["R", "k"]}), None)
        .await
        .unwrap();
    let to = json!({"pid": receiver});
    let len = 2 << 20;
    for op in ["call", "send"] {
        let r: Value = node
            .call(sender, &json!({"big": {"op": op, "to": to, "len": len}}))
            .await
            .unwrap();
        let r = r.as_str().unwrap_or_default().to_owned();
        assert!(r.contains("exceeds the 1048576-byte limit"), "{op}: {r}");
    }
    for op in ["cast", "send_after"] {
        let r: Value = node
            .call(sender, &json!({"big": {"op": op, "to": to, "len": len}}))
            .await
            .unwrap();
        assert_eq!(r, json!("ok"), "{op}");
    }
    let r = node
        .call::<_, Value>(
            sender,
            &json!({"big": {"op": "dispatch", "to": {"via": ["R", "k"]}, "len": len}}),
        )
        .await;
    match r {
        Err(CallError::Exited(ExitReason::Error(e))) => {
            assert!(e.starts_with("badarg: message of"), "{e}")
        }
        other => panic!("expected dispatch to refuse, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(events(&node, receiver).await, vec!["init".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_over_the_message_limit_reaches_the_caller_as_an_error() {
    let node = node().await;
    let p = probe(&node).await;
    assert_over_limit(node.call(p, &json!({"big_reply": 2 << 20})).await);
    let caller = probe(&node).await;
    let r: Value = node
        .call(
            caller,
            &json!({"call": {"to": {"pid": p}, "request": {"big_reply": 2 << 20}}}),
        )
        .await
        .unwrap();
    let r = r.as_str().unwrap_or_default().to_owned();
    assert!(r.contains("exceeds the 1048576-byte limit"), "{r}");
    let pong: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_out_of_memory_exits_with_memory_limit() {
    let node = node_with(|c| {
        c.engine().max_memory(4 << 20);
    })
    .await;
    let bomb = probe(&node).await;
    let r = exit_of(&node, bomb, json!({"alloc": 64 << 20})).await;
    assert_eq!(r, ExitReason::Error("memory_limit".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_and_panics_exit_with_one_short_line() {
    let node = node().await;
    let p = probe(&node).await;
    assert_eq!(
        exit_of(&node, p, json!("trap")).await,
        ExitReason::Error("trap: unreachable".into())
    );
    let p = probe(&node).await;
    assert_eq!(
        exit_of(&node, p, json!("panic")).await,
        ExitReason::Error("panic: handle_call panicked on purpose".into())
    );
    let p = probe(&node).await;
    assert_eq!(
        exit_of(&node, p, json!("overflow")).await,
        ExitReason::Error("stack_overflow".into())
    );
    let p = probe(&node).await;
    let long = format!("first\nsecond\u{1b}[2J{}", "y".repeat(100_000));
    let ExitReason::Error(e) = exit_of(&node, p, json!({"panic_with": long})).await else {
        panic!("a panic is an error")
    };
    assert!(e.starts_with("panic: first\\nsecond\\u{1b}[2Jyyy"), "{e}");
    assert!(e.len() <= 1024, "{} bytes", e.len());
    let p = probe(&node).await;
    let r = exit_of(&node, p, json!({"stop": {"error": long}})).await;
    let ExitReason::Error(e) = r else {
        panic!("an error reason")
    };
    assert!(e.starts_with("first\\nsecond\\u{1b}[2Jyyy"), "{e}");
    assert!(e.len() <= 1024, "{} bytes", e.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_over_the_limit_is_refused() {
    let node = node().await;
    let p = probe(&node).await;
    let r = exit_of(&node, p, json!({"register": "n".repeat(300)})).await;
    assert_eq!(
        r,
        ExitReason::Error("badarg: name of 300 bytes exceeds the 255-byte limit".into())
    );
    let r = try_probe(&node, json!({}), Some(&"n".repeat(300))).await;
    assert_eq!(
        r,
        Err(StartError::Badarg(
            "name of 300 bytes exceeds the 255-byte limit".into()
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_arms_a_hundred_thousand_timers() {
    let node = node_with(|c| {
        c.max_timers(100_000);
    })
    .await;
    let p = probe(&node).await;
    let armed: Value = node
        .call(
            p,
            &json!({"timers": {"n": 100_000, "ms": 3_600_000, "to": {"pid": p}, "text": "t"}}),
        )
        .await
        .unwrap();
    assert_eq!(armed, json!(100_000));
    let pong: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arming_past_the_timer_limit_ends_the_process_with_system_limit() {
    let node = node_with(|c| {
        c.max_timers(10);
    })
    .await;
    let p = probe(&node).await;
    let to = json!({"pid": p});
    let armed: Value = node
        .call(
            p,
            &json!({"timers": {"n": 10, "ms": 3_600_000, "to": to, "text": "t"}}),
        )
        .await
        .unwrap();
    assert_eq!(armed, json!(10));
    let r = exit_of(
        &node,
        p,
        json!({"timers": {"n": 1, "ms": 3_600_000, "to": to, "text": "t"}}),
    )
    .await;
    assert_eq!(r, ExitReason::Error("system_limit".into()));
    // Fired timers do not count.
    let p = probe(&node).await;
    for _ in 0..5 {
        let _: Value = node
            .call(
                p,
                &json!({"timers": {"n": 10, "ms": 0, "to": to, "text": "t"}}),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owners_timers_never_fire() {
    let node = node().await;
    let neighbour = probe(&node).await;
    let to = json!({"pid": neighbour});
    let awake = probe(&node).await;
    let sleeper = probe(&node).await;
    let crasher = probe(&node).await;
    for owner in [awake, sleeper, crasher] {
        let _: Value = node
            .call(
                owner,
                &json!({"timers": {"n": 100, "ms": 300, "to": to, "text": "late"}}),
            )
            .await
            .unwrap();
    }
    let _: Value = node.call(sleeper, &json!("hibernate")).await.unwrap();
    assert!(eventually(async || node.is_hibernating(sleeper)).await);
    assert!(node.kill(awake));
    assert!(node.kill(sleeper));
    let _ = node.call::<_, Value>(crasher, &json!("trap")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(events(&node, neighbour).await, vec!["init".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_timer_answers_the_time_left() {
    let node = node().await;
    let p = probe(&node).await;
    let t: Value = node
        .call(p, &json!({"send_after": {"ms": 10_000, "msg": "x"}}))
        .await
        .unwrap();
    let left: Value = node.call(p, &json!({"cancel_timer": t})).await.unwrap();
    let left = left.as_u64().expect("time left");
    assert!((9_000..=10_000).contains(&left), "{left}");
    let again: Value = node.call(p, &json!({"cancel_timer": t})).await.unwrap();
    assert_eq!(again, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_count_toward_max_processes() {
    use otter::{ChildFailure, ChildSpec, Strategy, SupervisorError, SupervisorSpec};
    let node = node_with(|c| {
        c.max_processes(3);
    })
    .await;
    let worker = |id: &str| ChildSpec::worker(id, "probe", otter::from_json(&json!({})));
    // A supervisor and two workers fill the node: a third worker has no room.
    let full = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a"))
        .child(worker("b"))
        .child(worker("c"));
    match node.start_supervisor(full).await {
        Err(SupervisorError::Child { id, reason }) => {
            assert_eq!(id, "c");
            assert_eq!(reason, ChildFailure::Worker(StartError::SystemLimit));
        }
        other => panic!("expected child c to fail with system_limit, got {other:?}"),
    }
    assert_eq!(
        node.process_count(),
        0,
        "the failed start left nothing behind"
    );
    let fits = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a"))
        .child(worker("b"));
    let sup = node.start_supervisor(fits).await.unwrap();
    // The node is full: neither another supervisor nor a process starts.
    let err = node
        .start_supervisor(SupervisorSpec::new(Strategy::OneForOne))
        .await
        .unwrap_err();
    assert!(matches!(err, SupervisorError::SystemLimit), "{err:?}");
    assert!(err.to_string().starts_with("system_limit"), "{err}");
    let err = node
        .spawn(
            "probe",
            otter::from_json(&json!({})),
            SpawnOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err, StartError::SystemLimit);
    let a = sup.which_children().await.unwrap()[0].pid.unwrap();
    let pong: Value = node.call(a, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_past_max_registry_keys_ends_the_process_with_system_limit() {
    let node = node_with(|c| {
        c.max_registry_keys(10);
    })
    .await;
    node.create_registry("Topics", Keys::Duplicate).unwrap();
    let p = probe(&node).await;
    let other = probe(&node).await;
    let reg = |key: usize| json!({"reg_register": {"registry": "Topics", "key": ["topic", key], "value": null}});
    for key in 0..10 {
        let ok: Value = node.call(p, &reg(key)).await.unwrap();
        assert_eq!(ok, json!("ok"));
    }
    // An entry given back makes room for another.
    let ok: Value = node
        .call(
            p,
            &json!({"reg_unregister": {"registry": "Topics", "key": ["topic", 0]}}),
        )
        .await
        .unwrap();
    assert_eq!(ok, json!("ok"));
    let ok: Value = node.call(p, &reg(10)).await.unwrap();
    assert_eq!(ok, json!("ok"));
    let r = exit_of(&node, p, reg(11)).await;
    assert_eq!(r, ExitReason::Error("system_limit".into()));
    // Its entries went with it; the other process registers as before.
    for key in 0..10 {
        let ok: Value = node.call(other, &reg(key)).await.unwrap();
        assert_eq!(ok, json!("ok"));
    }
    let held = node
        .registry_lookup("Topics", &otter::from_json(&json!(["topic", 1])))
        .unwrap();
    assert_eq!(held.len(), 1, "only the live process's entry is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_at_its_registry_budget_is_told_a_taken_key_is_taken() {
    let node = node_with(|c| {
        c.max_registry_keys(1);
    })
    .await;
    node.create_registry("Names", Keys::Unique).unwrap();
    let holder = probe(&node).await;
    let p = probe(&node).await;
    let reg = |key: &str| json!({"reg_register": {"registry": "Names", "key": key, "value": null}});
    let ok: Value = node.call(holder, &reg("taken")).await.unwrap();
    assert_eq!(ok, json!("ok"));
    let ok: Value = node.call(p, &reg("mine")).await.unwrap();
    assert_eq!(ok, json!("ok"));
    // At its budget, a key someone else holds is an error it can handle, not its end.
    let taken: Value = node.call(p, &reg("taken")).await.unwrap();
    assert!(
        taken
            .as_str()
            .is_some_and(|t| t.contains("already registered")),
        "{taken}"
    );
    let r = exit_of(&node, p, reg("more")).await;
    assert_eq!(r, ExitReason::Error("system_limit".into()));
}

#[tokio::test]
async fn a_node_configured_with_the_largest_sql_statement_count_starts_and_answers() {
    let node = node_with(|c| {
        c.max_sql_statements(usize::MAX);
    })
    .await;
    let p = probe(&node).await;
    let pong: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
    node.shutdown().await;
}
