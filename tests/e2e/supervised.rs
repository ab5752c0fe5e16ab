//! What a supervisor gives the workers it starts: a parent whose exit signal ends a trapping
//! child with `terminate`, a start timeout applied to starts and restarts, `via` names kept
//! across restarts; and stopping a subtree by its supervisor's name. Children are probes that
//! cast `tag:event` to an observer probe named `obs`.

use std::time::{Duration, Instant};

use otter::{
    ChildError, ChildFailure, ChildSpec, Dest, ExitReason, Keys, Node, Pid, Shutdown, StartError,
    Strategy, SupervisorError, SupervisorSpec,
};
use serde_json::{Value, json};

use crate::support::*;

/// A probe child reporting to `obs` with its id as tag; `extra` is merged into its args.
fn child(id: &str, extra: Value) -> ChildSpec {
    let mut args = json!({"observer": "obs", "tag": id});
    if let (Some(a), Value::Object(e)) = (args.as_object_mut(), extra) {
        a.extend(e);
    }
    ChildSpec::worker(id, "probe", otter::from_json(&args))
}

/// A named probe child that traps exits from `init` on.
fn trapping(id: &str) -> ChildSpec {
    child(id, json!({"trap_exit": true})).name(id)
}

async fn setup() -> Node {
    let node = node().await;
    named_probe(&node, "obs", json!({})).await;
    node
}

/// The observer's log of `tag`'s events.
async fn log_of(node: &Node, tag: &str) -> Vec<String> {
    let prefix = format!("cast:{tag}:");
    events(node, "obs")
        .await
        .into_iter()
        .filter_map(|e| e.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_child_terminates_with_shutdown_when_its_supervisor_stops() {
    let node = setup().await;
    // A long shutdown timeout: were the parent's signal an info, the child would live on
    // until the kill, and never run terminate.
    let s = SupervisorSpec::new(Strategy::OneForOne)
        .child(trapping("t").shutdown(Shutdown::Timeout(Duration::from_secs(30))));
    let sup = node.start_supervisor(s).await.unwrap();
    let t = node.whereis("t").unwrap();
    let t0 = Instant::now();
    sup.stop().await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(!node.is_alive(t));
    assert_eq!(log_of(&node, "t").await, ["init", "terminate:shutdown"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_child_terminates_with_shutdown_when_its_supervisor_gives_up() {
    let node = setup().await;
    let s = SupervisorSpec::new(Strategy::OneForOne)
        .child(trapping("t").shutdown(Shutdown::Timeout(Duration::from_secs(30))))
        .child(child("c", json!({})).name("c"))
        .intensity(0, Duration::from_secs(5));
    let sup = node.start_supervisor(s).await.unwrap();
    node.kill(node.whereis("c").unwrap());
    let reason = tokio::time::timeout(Duration::from_secs(5), sup.wait_exit())
        .await
        .expect("the supervisor gives up without waiting for a kill");
    assert_eq!(reason, ExitReason::Shutdown);
    assert!(sup.gave_up());
    assert_eq!(log_of(&node, "t").await, ["init", "terminate:shutdown"]);
    assert_eq!(node.process_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_child_gets_exit_signals_from_others_as_info_and_survives() {
    let node = setup().await;
    let sup = node
        .start_supervisor(SupervisorSpec::default().child(trapping("t")))
        .await
        .unwrap();
    let t = node.whereis("t").unwrap();
    let other = probe(&node).await;
    let _: Value = node
        .call(other, &json!({"exit": {"pid": t, "reason": "shutdown"}}))
        .await
        .unwrap();
    node.exit(t, ExitReason::Shutdown);
    let want = [
        format!("exit:{other}:shutdown"),
        "exit:0:shutdown".to_owned(),
    ];
    assert!(eventually(async || log_of(&node, "t").await.ends_with(&want)).await);
    assert_eq!(
        node.whereis("t"),
        Some(t),
        "a non-parent's signal did not end it"
    );
    sup.stop().await;
    assert_eq!(
        log_of(&node, "t").await.last().map(String::as_str),
        Some("terminate:shutdown")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_whose_init_overruns_its_start_timeout_fails_the_supervisor_start() {
    let node = setup().await;
    let s = SupervisorSpec::new(Strategy::OneForOne)
        .child(child("a", json!({})))
        .child(child("b", json!({"mode": "loop"})).start_timeout(Duration::from_millis(200)))
        .child(child("c", json!({})));
    let t0 = Instant::now();
    let r = node.start_supervisor(s).await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(
        r.unwrap_err(),
        SupervisorError::Child {
            id: "b".into(),
            reason: ChildFailure::Worker(StartError::Timeout),
        }
    );
    assert_eq!(log_of(&node, "a").await, ["init", "terminate:shutdown"]);
    assert_eq!(log_of(&node, "c").await, Vec::<String>::new());
    assert_eq!(node.process_count(), 1, "b was killed");
}

/// A child that starts normally, but spins in `init` while a process named `hang` lives.
fn hangs_while_named() -> ChildSpec {
    child("w", json!({"mode": {"loop_while_named": "hang"}}))
        .name("w")
        .start_timeout(Duration::from_millis(150))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_overruns_its_start_timeout_is_a_failed_restart_and_is_retried() {
    let node = setup().await;
    let s = SupervisorSpec::new(Strategy::OneForOne)
        .child(hangs_while_named())
        .intensity(50, Duration::from_secs(10));
    let sup = node.start_supervisor(s).await.unwrap();
    let w = node.whereis("w").unwrap();
    let hang = named_probe(&node, "hang", json!({})).await;
    node.kill(w);
    // Let at least one restart time out.
    tokio::time::sleep(Duration::from_millis(400)).await;
    node.stop(hang, ExitReason::Normal, None).await.unwrap();
    // Named before its init runs, as in OTP: wait for the one that answers.
    assert!(
        eventually(async || {
            let pid = node.call::<_, Pid>("w", &json!("self_pid")).await;
            pid.is_ok_and(|p| p != w)
        })
        .await
    );
    assert!(sup.is_alive());
    let inits = log_of(&node, "w").await.len();
    assert!(
        inits >= 3,
        "the start, a timed-out restart, the restart: {inits}"
    );
    // Every timed-out attempt was killed: only obs and w run.
    assert_eq!(node.process_count(), 2);
    sup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_that_keep_overrunning_the_start_timeout_exhaust_the_intensity() {
    let node = setup().await;
    let s = SupervisorSpec::new(Strategy::OneForOne)
        .child(hangs_while_named())
        .intensity(2, Duration::from_secs(10));
    let sup = node.start_supervisor(s).await.unwrap();
    named_probe(&node, "hang", json!({})).await;
    node.kill(node.whereis("w").unwrap());
    let reason = tokio::time::timeout(Duration::from_secs(5), sup.wait_exit())
        .await
        .expect("the supervisor gives up");
    assert_eq!(reason, ExitReason::Shutdown);
    // The first start and two timed-out restarts; the third restart is one too many.
    assert_eq!(log_of(&node, "w").await, ["init", "init", "init"]);
    assert_eq!(node.whereis("w"), None);
}

async fn self_pid(node: &Node, dest: Dest) -> Result<Pid, otter::CallError> {
    node.call::<_, Pid>(dest, &json!("self_pid")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_via_child_is_reachable_by_its_key_again_after_a_restart() {
    let node = setup().await;
    node.create_registry("Shards", Keys::Unique).unwrap();
    let key = otter::encode(&("kv", 1)).unwrap();
    let via = Dest::via("Shards", key.clone());
    let s = SupervisorSpec::default().child(child("k", json!({})).via("Shards", key.clone()));
    let sup = node.start_supervisor(s).await.unwrap();
    let first = self_pid(&node, via.clone()).await.unwrap();
    let rows = sup.which_children().await.unwrap();
    assert_eq!(rows[0].pid, Some(first));
    node.kill(first);
    let mut second = None;
    assert!(
        eventually(async || {
            second = self_pid(&node, via.clone())
                .await
                .ok()
                .filter(|p| *p != first);
            second.is_some()
        })
        .await
    );
    assert_eq!(sup.which_children().await.unwrap()[0].pid, second);
    assert_eq!(
        node.registry_lookup("Shards", &key).unwrap(),
        [(second.unwrap(), otter::encode(&()).unwrap())]
    );
    sup.stop().await;
    assert_eq!(self_pid(&node, via).await, Err(otter::CallError::NoProc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_via_child_whose_key_is_taken_fails_to_start_with_already_started() {
    let node = setup().await;
    node.create_registry("Shards", Keys::Unique).unwrap();
    let key = otter::encode(&"one").unwrap();
    let holder = try_probe(&node, json!({"register": ["Shards", "one"]}), None)
        .await
        .unwrap();
    let s = SupervisorSpec::default().child(child("k", json!({})).via("Shards", key));
    assert_eq!(
        node.start_supervisor(s).await.unwrap_err(),
        SupervisorError::Child {
            id: "k".into(),
            reason: ChildFailure::Worker(StartError::AlreadyStarted(holder)),
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_spec_with_both_a_name_and_a_via_name_is_refused() {
    let node = setup().await;
    node.create_registry("Shards", Keys::Unique).unwrap();
    let spec = child("k", json!({}))
        .name("k")
        .via("Shards", otter::encode(&1).unwrap());
    let e = node
        .start_supervisor(SupervisorSpec::default().child(spec))
        .await
        .unwrap_err();
    let SupervisorError::Spec(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.field, "children[0].via");
    let zero = child("z", json!({})).start_timeout(Duration::ZERO);
    let e = node
        .start_supervisor(SupervisorSpec::default().child(zero))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SupervisorError::Spec(s) if s.field == "children[0].start_timeout"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_nested_supervisor_by_name_stops_its_subtree_in_reverse_and_keeps_it_down() {
    let node = setup().await;
    let inner = SupervisorSpec::default()
        .name("Inner")
        .child(child("a", json!({})).name("a"))
        .child(child("b", json!({})).name("b"));
    let root = SupervisorSpec::default()
        .child(child("x", json!({})).name("x"))
        .child(ChildSpec::supervisor("inner", inner));
    let sup = node.start_supervisor(root).await.unwrap();
    let inner: Dest = "Inner".into();
    node.stop_supervisor(&inner).await.unwrap();
    let stops: Vec<String> = events(&node, "obs")
        .await
        .into_iter()
        .filter(|e| e.contains("terminate"))
        .collect();
    assert_eq!(
        stops,
        ["cast:b:terminate:shutdown", "cast:a:terminate:shutdown"]
    );
    assert!(node.supervisor(&inner).is_none());
    // Stopped by its parent, as terminate_child: kept, not restarted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rows = sup.which_children().await.unwrap();
    assert_eq!((rows[1].id.as_str(), rows[1].pid), ("inner", None));
    assert!(node.whereis("x").is_some() && node.whereis("a").is_none());
    assert_eq!(node.stop_supervisor(&inner).await, Err(ChildError::NoProc));
    assert!(sup.restart_child("inner").await.unwrap().is_some());
    assert!(node.whereis("a").is_some());

    // The root, by its pid: everything goes, and it did not give up.
    node.stop_supervisor(&Dest::Pid(sup.pid())).await.unwrap();
    assert!(!sup.is_alive() && !sup.gave_up());
    assert_eq!(node.process_count(), 1);
}
