//! Calls, casts and replies.

use std::time::Duration;

use otter::{CallError, ExitReason};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_ping_answers_pong_with_an_increasing_count() {
    let node = node().await;
    node.spawn(
        "echo",
        otter::encode(&()).unwrap(),
        otter::SpawnOptions::default().name("echo"),
    )
    .await
    .unwrap();
    let a: Value = node.call("echo", &json!("ping")).await.unwrap();
    let b: Value = node.call("echo", &json!("ping")).await.unwrap();
    assert_eq!(a, json!({"pong": 1}));
    assert_eq!(b, json!({"pong": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_does_not_decode_is_badreply_with_the_servers_text_escaped() {
    let node = node().await;
    let kv = node
        .spawn(
            "kv",
            otter::encode(&()).unwrap(),
            otter::SpawnOptions::default(),
        )
        .await
        .unwrap();
    let evil = "evil\u{202e}\u{1b}[2J\n";
    let _: Value = node.call(kv, &json!({"put": ["a", evil]})).await.unwrap();
    #[derive(Debug, serde::Deserialize)]
    enum Expected {
        Fine,
    }
    match node.call::<_, Expected>(kv, &json!({"get": "a"})).await {
        Err(otter::CallError::BadReply(why)) => {
            assert!(why.contains("unknown variant `evil"), "{why}");
            assert!(!why.contains(['\u{202e}', '\u{1b}', '\n']), "{why:?}");
        }
        other => panic!("expected badreply, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_put_then_get_round_trips_and_counts_writes() {
    let node = node().await;
    node.spawn(
        "kv",
        otter::encode(&()).unwrap(),
        otter::SpawnOptions::default().name("kv"),
    )
    .await
    .unwrap();
    let put: Value = node.call("kv", &json!({"put": ["a", "1"]})).await.unwrap();
    assert_eq!(put, json!("ok"));
    let got: Value = node.call("kv", &json!({"get": "a"})).await.unwrap();
    assert_eq!(got, json!("1"));
    let missing: Value = node.call("kv", &json!({"get": "zz"})).await.unwrap();
    assert_eq!(missing, Value::Null);
    let writes: Value = node.call("kv", &json!("writes")).await.unwrap();
    assert_eq!(writes, json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_counts_calls_and_casts_in_order() {
    let node = node().await;
    let pid = node
        .spawn(
            "counter",
            otter::encode(&()).unwrap(),
            otter::SpawnOptions::default(),
        )
        .await
        .unwrap();
    for _ in 0..10 {
        node.cast(pid, otter::encode("inc").unwrap());
    }
    let n: u64 = node.call(pid, &"inc").await.unwrap();
    assert_eq!(n, 11);
    let n: u64 = node.call(pid, &"get").await.unwrap();
    assert_eq!(n, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_hibernates_on_request_and_keeps_its_count() {
    let node = node().await;
    let unit = || otter::encode(&()).unwrap();
    let pid = node
        .spawn("counter", unit(), otter::SpawnOptions::default())
        .await
        .unwrap();
    let _: u64 = node.call(pid, &"inc").await.unwrap();
    let n: u64 = node.call(pid, &"hibernate").await.unwrap();
    assert_eq!(n, 1);
    assert!(eventually(async || node.is_hibernating(pid)).await);
    node.cast(pid, otter::encode("inc").unwrap());
    let n: u64 = node.call(pid, &"get").await.unwrap();
    assert_eq!(n, 2, "the count survives hibernation");
    node.cast(pid, otter::encode("hibernate").unwrap());
    assert!(eventually(async || node.is_hibernating(pid)).await);
}

/// The many-to-one benchmark's client (guests/caller) makes its calls from inside a callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_makes_n_calls_to_a_server_then_answers_the_last_reply() {
    let node = node().await;
    let unit = || otter::encode(&()).unwrap();
    let opts = otter::SpawnOptions::default;
    let server = node.spawn("counter", unit(), opts()).await.unwrap();
    let clients = [
        node.spawn("caller", unit(), opts()).await.unwrap(),
        node.spawn("caller", unit(), opts()).await.unwrap(),
    ];
    for client in clients {
        let _: u64 = node
            .call(client, &json!({"run": {"to": server, "n": 5}}))
            .await
            .unwrap();
    }
    let n: u64 = node.call(server, &"get").await.unwrap();
    assert_eq!(n, 10);
    let last: u64 = node
        .call(clients[0], &json!({"run": {"to": server, "n": 1}}))
        .await
        .unwrap();
    assert_eq!(last, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_reply_reaches_the_waiting_caller() {
    let node = node().await;
    let p = probe(&node).await;
    let n = node.clone();
    let waiting = tokio::spawn(async move { n.call::<_, Value>(p, &json!("defer")).await });
    // The server stays responsive while the first call waits.
    assert!(eventually(async || events(&node, p).await.contains(&"defer".to_string())).await);
    assert!(!waiting.is_finished());
    let released: Value = node.call(p, &json!({"release": "later"})).await.unwrap();
    assert_eq!(released, json!("ok"));
    assert_eq!(waiting.await.unwrap().unwrap(), json!("later"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_inside_the_callback_answers_before_noreply_returns() {
    let node = node().await;
    let p = probe(&node).await;
    let r: Value = node.call(p, &json!("reply_inline")).await.unwrap();
    assert_eq!(r, json!("inline"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_times_out_and_the_late_reply_is_dropped() {
    let node = node().await;
    let p = probe(&node).await;
    let req = otter::from_json(&json!({"defer_for": 200}));
    let r = node
        .call_term(p, req, Some(Duration::from_millis(50)))
        .await;
    assert_eq!(r, Err(CallError::Timeout));
    // The server went on and answered late; nobody receives that answer.
    assert!(eventually(async || events(&node, p).await.contains(&"late-reply".to_string())).await);
    let next: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(next, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_from_rust_times_out_at_its_own_timeout_not_an_earlier_calls() {
    let node = node().await;
    let p = probe(&node).await;
    let ping = otter::from_json(&json!("ping"));
    let timed = async |request: Value, timeout: u64| {
        let t0 = std::time::Instant::now();
        let r = node
            .call_term(
                p,
                otter::from_json(&request),
                Some(Duration::from_millis(timeout)),
            )
            .await;
        (r, t0.elapsed())
    };
    // A call answered at once with a long timeout, then one answered too late with a short
    // one: it ends at its own 100 ms, not at the first call's 5 s.
    node.call_term(p, ping.clone(), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let (r, took) = timed(json!({"defer_for": 1500}), 100).await;
    assert_eq!(r, Err(CallError::Timeout));
    assert!(
        took < Duration::from_millis(2000),
        "timed out after {took:?}"
    );
    // A call answered at once with a short timeout, then one answered late with a longer
    // one: it waits its whole 600 ms, past the first call's 300 ms.
    assert!(eventually(async || events(&node, p).await.contains(&"late-reply".to_string())).await);
    node.call_term(p, ping, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    let (r, took) = timed(json!({"defer_for": 1500}), 600).await;
    assert_eq!(r, Err(CallError::Timeout));
    assert!(
        took >= Duration::from_millis(600),
        "timed out after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_dead_pid_or_unknown_name_are_noproc_and_casts_are_noops() {
    let node = node().await;
    let p = probe(&node).await;
    node.stop(p, ExitReason::Normal, None).await.unwrap();
    let r = node.call::<_, Value>(p, &json!("ping")).await;
    assert_eq!(r, Err(CallError::NoProc));
    let r = node.call::<_, Value>("nobody", &json!("ping")).await;
    assert_eq!(r, Err(CallError::NoProc));
    node.cast("nobody", otter::from_json(&json!({"record": "x"})));
    assert_eq!(
        node.send("nobody", otter::from_json(&json!("x"))),
        Err(otter::SendError::NoProc)
    );
    assert_eq!(node.send(p, otter::from_json(&json!("x"))), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_self_fails_at_once_instead_of_deadlocking() {
    let node = node().await;
    let p = probe(&node).await;
    let r: Value = node.call(p, &json!("call_self")).await.unwrap();
    assert_eq!(r, json!("calling_self"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_calls_another_guest_inside_a_callback() {
    let node = node().await;
    let a = probe(&node).await;
    let b = named_probe(&node, "b", json!({})).await;
    let _ = b;
    let r: Value = node
        .call(
            a,
            &json!({"call": {"to": {"name": "b"}, "request": {"add": 7}, "timeout": 1000}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_calls_end_in_a_timeout_not_a_deadlock() {
    let node = node().await;
    let a = named_probe(&node, "a", json!({})).await;
    let _b = named_probe(&node, "b", json!({})).await;
    // a calls b, which calls a back: a is busy waiting, so b's call times out.
    let inner = json!({"call": {"to": {"name": "a"}, "request": "ping", "timeout": 100}});
    let r: Value = node
        .call(
            a,
            &json!({"call": {"to": {"name": "b"}, "request": inner, "timeout": 2000}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_a_guest_makes_times_out_at_its_own_timeout_not_an_earlier_calls() {
    let node = node().await;
    let a = probe(&node).await;
    let _quick = named_probe(&node, "quick", json!({})).await;
    let _silent = named_probe(&node, "silent", json!({})).await;
    let call = |to: &str, request: Value, timeout: u32| json!({"call": {"to": {"name": to}, "request": request, "timeout": timeout}});
    let timed = async |request: Value| {
        let t0 = std::time::Instant::now();
        let r: Value = node.call(a, &request).await.unwrap();
        (r, t0.elapsed())
    };
    // A call answered at once with a long timeout, then one never answered with a short
    // one: it ends at its own 100 ms, not at the first call's 5 s.
    assert_eq!(
        timed(call("quick", json!("ping"), 5000)).await.0,
        json!("pong")
    );
    let (r, took) = timed(call("silent", json!("defer"), 100)).await;
    assert_eq!(r, json!("timeout"));
    assert!(
        took < Duration::from_millis(2000),
        "timed out after {took:?}"
    );
    // A call answered at once with a short timeout, then one never answered with a longer
    // one: it waits its whole 600 ms, past the first call's 300 ms.
    assert_eq!(
        timed(call("quick", json!("ping"), 300)).await.0,
        json!("pong")
    );
    let (r, took) = timed(call("silent", json!("defer"), 600)).await;
    assert_eq!(r, json!("timeout"));
    assert!(
        took >= Duration::from_millis(600),
        "timed out after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_waiting_in_calls_do_not_hold_threads() {
    let node = node().await;
    let server = named_probe(&node, "slow", json!({})).await;
    // Twenty processes each block in a call (more than the two worker threads).
    let mut callers = Vec::new();
    for _ in 0..20 {
        let c = probe(&node).await;
        let n = node.clone();
        callers.push(tokio::spawn(async move {
            n.call::<_, Value>(
                c,
                &json!({"call": {"to": {"name": "slow"}, "request": "defer", "timeout": 5000}}),
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = probe(&node).await;
    let r: Value = node.call(fresh, &json!("ping")).await.unwrap();
    assert_eq!(r, json!("pong"));
    let _: Value = node
        .call(server, &json!({"release": "done"}))
        .await
        .unwrap();
    for c in callers {
        assert_eq!(c.await.unwrap().unwrap(), json!("done"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_does_not_decode_is_badarg_and_the_server_goes_on() {
    let node = node().await;
    let p = probe(&node).await;
    let r = node
        .call::<_, Value>(p, &json!({"no_such_request": 1}))
        .await;
    assert!(matches!(r, Err(CallError::Badarg(_))), "{r:?}");
    let r: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(r, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_does_not_encode_is_the_callers_error_not_the_servers_badarg() {
    struct Unencodable;
    impl serde::Serialize for Unencodable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no wire form"))
        }
    }
    let node = node().await;
    let p = probe(&node).await;
    match node.call::<_, Value>(p, &Unencodable).await {
        Err(CallError::Encode(e)) => assert!(e.0.contains("no wire form"), "{e}"),
        other => panic!("expected CallError::Encode, got {other:?}"),
    }
    // Callers that only hold an error trait object can still tell.
    let e: Box<dyn std::error::Error + Send + Sync> = node
        .send("nobody", otter::from_json(&json!("x")))
        .unwrap_err()
        .into();
    assert_eq!(
        e.downcast_ref::<otter::SendError>(),
        Some(&otter::SendError::NoProc)
    );
}
