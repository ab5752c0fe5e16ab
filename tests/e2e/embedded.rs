//! The embedding program's own process (`Node::embedded_process`): a pid and mailbox for
//! Rust code, talking to real guests.

use std::time::Duration;

use otter::{CallError, ExitReason, ProcessError, ReceiveError, Received};
use serde_json::{Value, json};

use crate::support::*;

const WAIT: Option<Duration> = Some(Duration::from_secs(2));

fn json_of(term: &[u8]) -> Value {
    otter::decode(term).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_receives_what_a_guest_sends_in_order() {
    let node = node().await;
    let me = node.embedded_process();
    let p = probe(&node).await;
    let r: Value = node
        .call(
            p,
            &json!({"burst": {"to": me.pid(), "steps": [
                {"send": "m1"}, {"cast": "m2"}, {"send": "m3"}
            ]}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("ok"));
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(match me.receive(WAIT).await.unwrap() {
            Received::Message(t) => json!({"info": json_of(&t)}),
            Received::Cast(t) => json!({"cast": json_of(&t)}),
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(
        got,
        [
            json!({"info": {"text": "m1"}}),
            json!({"cast": {"record": "m2"}}),
            json!({"info": {"text": "m3"}})
        ]
    );
    assert_eq!(
        me.receive(Some(Duration::from_millis(20)))
            .await
            .unwrap_err(),
        ReceiveError::Timeout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_calls_it_and_it_answers_as_the_caller_of_the_guest() {
    let node = node().await;
    let me = node.embedded_process();
    let p = probe(&node).await;
    // The probe, called by this process, calls it back: its request carries the probe's pid
    // as the caller, and the answer goes back through the probe.
    let request = json!({"call": {"to": {"pid": me.pid()}, "request": "hi"}});
    let call = me.call::<_, Value>(p, &request);
    let answer = async {
        let Received::Call(incoming) = me.receive(WAIT).await.unwrap() else {
            panic!("a call")
        };
        assert_eq!(incoming.caller(), p);
        assert_eq!(json_of(incoming.request()), json!("hi"));
        incoming.reply(otter::encode(&"hello back").unwrap());
    };
    let (reply, ()) = tokio::join!(call, answer);
    assert_eq!(reply, Ok(json!("hello back")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_waits_and_its_caller_learns_the_exit() {
    let node = node().await;
    let me = node.embedded_process();
    let pid = me.pid();
    let caller = tokio::spawn({
        let node = node.clone();
        async move {
            node.call_term(pid, otter::encode(&"hi").unwrap(), None)
                .await
        }
    });
    let Received::Call(incoming) = me.receive(WAIT).await.unwrap() else {
        panic!("a call")
    };
    drop(incoming);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!caller.is_finished(), "a dropped call stays pending");
    drop(me);
    assert_eq!(
        caller.await.unwrap(),
        Err(CallError::Exited(ExitReason::Normal))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_gives_down_and_demonitor_drops_it() {
    let node = node().await;
    let me = node.embedded_process();
    let a = probe(&node).await;
    let b = probe(&node).await;
    let ma = me.monitor(a).unwrap();
    let mb = me.monitor(b).unwrap();
    node.stop(b, ExitReason::Shutdown, None).await.unwrap();
    me.demonitor(mb).unwrap();
    node.stop(a, ExitReason::Normal, None).await.unwrap();
    match me.receive(WAIT).await.unwrap() {
        Received::Down {
            monitor,
            pid,
            reason,
        } => {
            assert_eq!((monitor, pid, reason), (ma, a, ExitReason::Normal));
        }
        other => panic!("{other:?}"),
    }
    let dead = me.monitor(b).unwrap();
    assert!(matches!(
        me.receive(WAIT).await.unwrap(),
        Received::Down { monitor, reason: ExitReason::NoProc, .. } if monitor == dead
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_crash_ends_it_when_not_trapping_and_later_operations_say_why() {
    let node = node().await;
    let me = node.embedded_process();
    let watcher = node.embedded_process();
    let mref = watcher.monitor(me.pid()).unwrap();
    let p = probe(&node).await;
    me.link(p).unwrap();
    let _ = node.call::<_, Value>(p, &json!("trap")).await;
    // It ends without anyone receiving: its monitor hears of it.
    let Received::Down {
        monitor, reason, ..
    } = watcher.receive(WAIT).await.unwrap()
    else {
        panic!("a DOWN")
    };
    assert_eq!(monitor, mref);
    assert!(
        matches!(&reason, ExitReason::Error(e) if e.starts_with("trap")),
        "{reason}"
    );
    assert!(!me.is_alive());
    assert!(!node.is_alive(me.pid()));
    assert_eq!(
        me.receive(WAIT).await.unwrap_err(),
        ReceiveError::Exited(reason.clone())
    );
    assert_eq!(
        me.send(p, vec![0xf6]),
        Err(ProcessError::Exited(reason.clone()))
    );
    assert_eq!(me.link(p), Err(ProcessError::Exited(reason.clone())));
    assert_eq!(
        me.call::<_, Value>(p, &"ping").await,
        Err(ProcessError::Exited(reason))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapping_exits_it_gets_exit_and_kill_still_ends_it() {
    let node = node().await;
    let me = node.embedded_process();
    assert_eq!(me.trap_exit(true), Ok(false));
    let p = probe(&node).await;
    me.link(p).unwrap();
    let _ = node
        .call::<_, Value>(p, &json!({"stop": {"error": "boom"}}))
        .await;
    match me.receive(WAIT).await.unwrap() {
        Received::Exit { from, reason } => {
            assert_eq!((from, reason), (p, ExitReason::Error("boom".into())));
        }
        other => panic!("{other:?}"),
    }
    me.exit(me.pid(), ExitReason::Normal).unwrap();
    assert!(matches!(
        me.receive(WAIT).await.unwrap(),
        Received::Exit {
            reason: ExitReason::Normal,
            ..
        }
    ));
    node.exit(me.pid(), ExitReason::Killed);
    assert_eq!(
        me.receive(WAIT).await.unwrap_err(),
        ReceiveError::Exited(ExitReason::Killed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_it_exits_normal_frees_its_name_and_tells_its_links() {
    let node = node().await;
    let me = node.embedded_process();
    let pid = me.pid();
    me.register("front").unwrap();
    assert_eq!(node.whereis("front"), Some(pid));
    let p = probe(&node).await;
    let _: bool = node.call(p, &json!({"trap_exit": true})).await.unwrap();
    me.link(p).unwrap();
    let ps = node.processes();
    let row = ps.iter().find(|r| r.pid == pid).expect("in ps");
    assert_eq!(
        (row.module.as_str(), row.name.as_deref()),
        ("<embedded>", Some("front"))
    );
    drop(me);
    assert_eq!(node.whereis("front"), None);
    assert!(!node.is_alive(pid));
    let want = format!("exit:{pid}:normal");
    assert!(eventually(async || events(&node, p).await.contains(&want)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_or_a_stop_ends_it() {
    let node = node().await;
    let killed = node.embedded_process();
    assert!(node.kill(killed.pid()));
    assert_eq!(
        killed.receive(WAIT).await.unwrap_err(),
        ReceiveError::Exited(ExitReason::Killed)
    );
    let stopped = node.embedded_process();
    node.stop(
        stopped.pid(),
        ExitReason::Shutdown,
        Some(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    assert_eq!(
        stopped.trap_exit(true),
        Err(ProcessError::Exited(ExitReason::Shutdown))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_flooding_it_is_held_to_the_node_limits() {
    let node = node().await;
    let me = node.embedded_process();
    let p = probe(&node).await;
    // Over the message size limit: refused at the sender, never queued.
    let r: Value = node
        .call(
            p,
            &json!({"big": {"op": "send", "to": {"pid": me.pid()}, "len": 2 << 20}}),
        )
        .await
        .unwrap();
    assert!(r.as_str().unwrap().starts_with("badarg"), "{r}");
    // Calls it never answers do not pile up once their callers gave up.
    for _ in 0..200 {
        let r: Value = node
            .call(
                p,
                &json!({"call": {"to": {"pid": me.pid()}, "request": "x", "timeout": 1}}),
            )
            .await
            .unwrap();
        assert_eq!(r, json!("timeout"));
        if let Ok(Some(Received::Call(c))) = me.try_receive() {
            drop(c);
        }
    }
    // Exit signals `normal` from others are ignored; it still answers.
    node.exit(me.pid(), ExitReason::Normal);
    assert!(me.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_too_long_to_add_to_now_waits_without_a_deadline() {
    let node = node().await;
    let me = node.embedded_process();
    let peer = node.embedded_process();
    peer.send(me.pid(), otter::encode(&"hi").unwrap()).unwrap();
    let got = me.receive(Some(Duration::MAX)).await.unwrap();
    assert!(matches!(got, Received::Message(t) if json_of(&t) == json!("hi")));
}
