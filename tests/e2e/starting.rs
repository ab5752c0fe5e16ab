//! A guest starts processes itself (OTP's `gen_server:start`, `start_link`,
//! `start_monitor`): each returns after the new process's `init`, ties it to the starter
//! before it runs, and reports failures as OTP 25 does (checked with `escript`): a linked
//! init that stops or crashes also sends the starter its exit signal, a monitored one leaves
//! no `DOWN`, a start timeout leaves neither.

use std::time::{Duration, Instant};

use otter::{ExitReason, Keys, Node, NodeConfig, Pid, SpawnOptions};
use serde_json::{Value, json};

use crate::support::*;

pub async fn starter_node_with(config: NodeConfig) -> Node {
    let node = Node::new(config).expect("node");
    for m in ["probe", "starter"] {
        node.load_module(m, wasm(m)).await.expect("load module");
    }
    node
}

pub async fn starter_node() -> Node {
    starter_node_with(NodeConfig::default()).await
}

pub async fn starter(node: &Node) -> Pid {
    node.spawn(
        "starter",
        otter::encode(&()).unwrap(),
        SpawnOptions::default(),
    )
    .await
    .expect("starter starts")
}

/// Ask the starter; its answers are text.
pub async fn ask(node: &Node, starter: Pid, request: Value) -> String {
    let answer: Value = node.call(starter, &request).await.expect("starter answers");
    answer.as_str().expect("a text answer").to_owned()
}

pub async fn starter_log(node: &Node, starter: Pid) -> Vec<String> {
    node.call(starter, &json!("log")).await.expect("log")
}

async fn start(node: &Node, starter: Pid, start: Value) -> String {
    ask(node, starter, json!({ "start": start })).await
}

/// A probe that monitors `pid`, to read how it exits in its log even if it has already
/// exited by the time a test asks.
pub async fn watch(node: &Node, pid: Pid) -> Pid {
    let watcher = probe(node).await;
    let _: Value = node
        .call(watcher, &json!({"monitor": {"pid": pid}}))
        .await
        .unwrap();
    watcher
}

/// Whether the watcher has seen `pid` exit with `reason` (as the SDK shows it).
pub async fn saw_exit(node: &Node, watcher: Pid, pid: Pid, reason: &str) -> bool {
    let want = format!("down:{pid}:{reason}");
    eventually(async || events(node, watcher).await.contains(&want)).await
}

/// The pid in `ok:<pid>` or `ok:<pid>:<ref>`.
fn pid_of(answer: &str) -> Pid {
    let rest = answer
        .strip_prefix("ok:")
        .unwrap_or_else(|| panic!("{answer}"));
    rest.split(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_starts_a_process_that_has_run_init_when_start_returns() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let answer = start(&node, s, json!({"module": "probe", "args": {"tag": "t"}})).await;
    let child = pid_of(&answer);
    assert_eq!(events(&node, child).await, vec!["init"]);
    // Not tied to the starter: the starter's end does not end it.
    node.kill(s);
    assert!(eventually(async || !node.is_alive(s)).await);
    let pong: Value = node.call(child, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_link_links_the_new_process_to_its_starter() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let watcher = watch(&node, s).await;
    let child = pid_of(&start(&node, s, json!({"module": "probe", "bond": "link"})).await);
    node.exit(child, ExitReason::Error("boom".into()));
    assert!(saw_exit(&node, watcher, s, "error(boom)").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_link_of_an_init_that_stops_returns_the_error_then_ends_a_starter_not_trapping() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let watcher = watch(&node, s).await;
    let answer = start(
        &node,
        s,
        json!({"module": "probe", "args": {"mode": {"stop": "bad"}}, "bond": "link"}),
    )
    .await;
    assert_eq!(answer, "error:Stopped(Error(\"bad\"))");
    assert!(saw_exit(&node, watcher, s, "error(bad)").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_link_of_an_init_that_crashes_reaches_a_trapping_starter_as_exit() {
    let node = starter_node().await;
    let s = starter(&node).await;
    ask(&node, s, json!({"trap_exit": true})).await;
    let answer = start(
        &node,
        s,
        json!({"module": "probe", "args": {"mode": "panic"}, "bond": "link"}),
    )
    .await;
    assert!(
        answer.starts_with("error:Stopped(Error(\"panic: init panicked on purpose"),
        "{answer}"
    );
    let log = starter_log(&node, s).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with("exit:") && log[0].ends_with(":error(panic: init panicked on purpose)"),
        "{log:?}"
    );
    assert!(node.is_alive(s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_link_of_an_ignoring_init_returns_ignore_and_only_a_trapping_starter_sees_exit_normal()
 {
    let node = starter_node().await;
    let ignoring = json!({"module": "probe", "args": {"mode": "ignore"}, "bond": "link"});
    let s = starter(&node).await;
    assert_eq!(start(&node, s, ignoring.clone()).await, "ignore");
    assert_eq!(starter_log(&node, s).await, Vec::<String>::new());
    ask(&node, s, json!({"trap_exit": true})).await;
    assert_eq!(start(&node, s, ignoring).await, "ignore");
    let log = starter_log(&node, s).await;
    assert!(
        log.len() == 1 && log[0].starts_with("exit:") && log[0].ends_with(":normal"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_monitor_returns_the_pid_and_the_ref_its_down_carries() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let answer = start(&node, s, json!({"module": "probe", "bond": "monitor"})).await;
    let (child, mref) = answer
        .strip_prefix("ok:")
        .and_then(|r| r.split_once(':'))
        .unwrap();
    node.exit(child.parse().unwrap(), ExitReason::Error("gone".into()));
    assert!(
        eventually(async || starter_log(&node, s).await
            == vec![format!("down:{child}:{mref}:error(gone)")])
        .await
    );
    assert!(node.is_alive(s), "a monitor is not a link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_monitor_of_an_init_that_stops_or_ignores_leaves_no_down() {
    let node = starter_node().await;
    let s = starter(&node).await;
    for mode in [json!({"stop": "bad"}), json!("ignore")] {
        start(
            &node,
            s,
            json!({"module": "probe", "args": {"mode": mode}, "bond": "monitor"}),
        )
        .await;
    }
    // The DOWNs were queued before each start returned, so this call comes after them.
    assert_eq!(starter_log(&node, s).await, Vec::<String>::new());
    assert!(node.is_alive(s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_timeout_kills_a_slow_init_and_the_starter_gets_neither_exit_nor_down() {
    let node = starter_node().await;
    let s = starter(&node).await;
    ask(&node, s, json!({"trap_exit": true})).await;
    for bond in ["link", "monitor"] {
        let before = node.process_count();
        let t0 = Instant::now();
        let answer = start(
            &node,
            s,
            json!({"module": "probe", "args": {"mode": "loop"}, "bond": bond,
                   "start_timeout_ms": 100, "name": "slow"}),
        )
        .await;
        assert_eq!(answer, "error:Timeout", "{bond}");
        assert!(t0.elapsed() >= Duration::from_millis(100));
        // Gone, and its name free, when the starter sees the error.
        assert_eq!(node.process_count(), before);
        assert_eq!(node.whereis("slow"), None);
    }
    assert_eq!(starter_log(&node, s).await, Vec::<String>::new());
    // A starter that does not trap exits survives it too.
    ask(&node, s, json!({"trap_exit": false})).await;
    let answer = start(
        &node,
        s,
        json!({"module": "probe", "args": {"mode": "loop"}, "bond": "link", "start_timeout_ms": 50}),
    )
    .await;
    assert_eq!(answer, "error:Timeout");
    assert_eq!(ask(&node, s, json!("ping")).await, "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_under_a_taken_name_is_already_started_with_the_holder() {
    let node = starter_node().await;
    let holder = named_probe(&node, "taken", json!({})).await;
    let s = starter(&node).await;
    let answer = start(&node, s, json!({"module": "probe", "name": "taken"})).await;
    assert_eq!(answer, format!("error:AlreadyStarted({holder})"));
    let answer = start(&node, s, json!({"module": "probe", "name": "free"})).await;
    assert_eq!(node.whereis("free"), Some(pid_of(&answer)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_via_name_reaches_the_started_process_and_an_unknown_registry_is_an_error() {
    let node = starter_node().await;
    node.create_registry("Reg", Keys::Unique).unwrap();
    let s = starter(&node).await;
    let answer = start(
        &node,
        s,
        json!({"module": "probe", "via": ["Reg", ["kv", 1]]}),
    )
    .await;
    let child = pid_of(&answer);
    let dest = otter::Dest::Via("Reg".into(), otter::from_json(&json!(["kv", 1])));
    let pong: Value = node.call(dest, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
    let again = start(
        &node,
        s,
        json!({"module": "probe", "via": ["Reg", ["kv", 1]]}),
    )
    .await;
    assert_eq!(again, format!("error:AlreadyStarted({child})"));
    let unknown = start(&node, s, json!({"module": "probe", "via": ["Nope", 1]})).await;
    assert_eq!(unknown, "error:Registry(UnknownRegistry(\"Nope\"))");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_an_unknown_module_is_an_error_naming_it() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let answer = start(&node, s, json!({"module": "nope"})).await;
    assert_eq!(answer, "error:UnknownModule(\"nope\")");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_starter_waits_while_the_new_process_runs_init() {
    let node = starter_node().await;
    // The child's init spins until `gate` is gone.
    let gate = named_probe(&node, "gate", json!({})).await;
    let other = probe(&node).await;
    let s = starter(&node).await;
    let waiting = {
        let node = node.clone();
        tokio::spawn(async move {
            start(
                &node,
                s,
                json!({"module": "probe", "args": {"mode": {"loop_while_named": "gate"}}}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished());
    let pong: Value = node.call(other, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
    node.kill(gate);
    assert!(waiting.await.unwrap().starts_with("ok:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starter_killed_while_its_linked_child_runs_init_takes_the_child_down() {
    let node = starter_node().await;
    let gate = named_probe(&node, "gate", json!({})).await;
    let s = starter(&node).await;
    {
        let node = node.clone();
        tokio::spawn(async move {
            let _ = node
                .call::<_, Value>(
                    s,
                    &json!({"start": {"module": "probe", "bond": "link", "name": "child",
                        "args": {"mode": {"loop_while_named": "gate"}}}}),
                )
                .await;
        });
    }
    assert!(eventually(async || node.whereis("child").is_some()).await);
    let child = node.whereis("child").unwrap();
    let watcher = watch(&node, child).await;
    node.kill(s);
    assert!(eventually(async || !node.is_alive(s)).await);
    assert!(node.is_alive(child), "still in init");
    node.kill(gate);
    // Its init returns, then the starter's exit signal ends it.
    assert!(saw_exit(&node, watcher, child, "killed").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_started_with_hibernate_after_hibernates_when_idle() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let answer = start(
        &node,
        s,
        json!({"module": "probe", "hibernate_after_ms": 50}),
    )
    .await;
    let child = pid_of(&answer);
    assert!(eventually(async || node.is_hibernating(child)).await);
    let n: Value = node.call(child, &json!({"add": 2})).await.unwrap();
    assert_eq!(n, json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawning_in_a_loop_stops_at_max_processes_with_system_limit_and_the_node_goes_on() {
    let mut config = NodeConfig::default();
    config.max_processes(200);
    let node = starter_node_with(config).await;
    let other = node
        .spawn(
            "probe",
            otter::from_json(&json!({})),
            SpawnOptions::default(),
        )
        .await
        .unwrap();
    let s = starter(&node).await;
    let answer = ask(
        &node,
        s,
        json!({"start_loop": {"module": "probe", "max": 100_000}}),
    )
    .await;
    assert_eq!(answer, "198 SystemLimit");
    assert_eq!(node.process_count(), 200);
    // The embedding API meets the same limit, and the node still works.
    let err = node
        .spawn(
            "probe",
            otter::from_json(&json!({})),
            SpawnOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err, otter::StartError::SystemLimit);
    let pong: Value = node.call(other, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
}
