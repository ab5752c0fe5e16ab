//! Time in a guest: the monotonic and system clocks, `sleep` (which suspends only the
//! sleeping process), `start_timer` (Erlang's `{timeout, Ref, Msg}`), and `hibernate_after`
//! from every place a process is started.

use std::time::{Duration, Instant, SystemTime};

use otter::{
    CallError, ChildSpec, ExitReason, NodeConfig, SpawnOptions, StopError, Strategy, SupervisorSpec,
};
use serde_json::{Value, json};

use crate::starting::{
    ask, saw_exit, starter, starter_log, starter_node, starter_node_with, watch,
};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monotonic_clock_sees_a_sleep_pass() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let t0 = Instant::now();
    let seen: u64 = ask(&node, s, json!({"sleep": 60})).await.parse().unwrap();
    assert!(seen >= 60, "{seen} ms");
    assert!(t0.elapsed() >= Duration::from_millis(60));
    let now = ask(&node, s, json!("now")).await;
    let later = ask(&node, s, json!("now")).await;
    let mono = |t: &str| t.split(' ').next().unwrap().parse::<u64>().unwrap();
    assert!(mono(&later) >= mono(&now));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_clock_is_the_hosts_wall_clock() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let now = ask(&node, s, json!("now")).await;
    let sys: u128 = now.split(' ').nth(1).unwrap().parse().unwrap();
    let host = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    assert!(host.abs_diff(sys) < 5_000_000_000, "{sys} vs {host}");
}

/// On one thread: a sleep that blocked the thread would hold up every other process.
#[tokio::test(flavor = "current_thread")]
async fn a_sleeping_process_holds_up_no_other() {
    let node = starter_node().await;
    let sleepers: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..10 {
            v.push(starter(&node).await);
        }
        v
    };
    let other = probe(&node).await;
    let t0 = Instant::now();
    let tasks: Vec<_> = sleepers
        .into_iter()
        .map(|s| {
            let node = node.clone();
            tokio::spawn(async move { ask(&node, s, json!({"sleep": 300})).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pong: Value = node.call(other, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    for t in tasks {
        t.await.unwrap();
    }
    // Ten sleeps of 300 ms side by side, not one after another.
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
}

/// On one thread: each `sleep(0)` suspends the process and lets a task that is ready run
/// before it resumes (Erlang's `erlang:yield/0`), so a thousand of them inside one callback
/// let a task that yields in a loop of its own run hundreds of times meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn sleep_zero_lets_a_ready_task_run_before_the_process_goes_on() {
    let node = crate::support::node().await;
    let yielder = node
        .spawn(
            "caller",
            otter::encode(&()).unwrap(),
            SpawnOptions::default(),
        )
        .await
        .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = tokio::spawn({
        let done = done.clone();
        async move {
            let mut polls = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                polls += 1;
                // Ready again at once: to the back of the run queue, as the process goes.
                let mut again = false;
                std::future::poll_fn(|cx| {
                    if std::mem::replace(&mut again, true) {
                        return std::task::Poll::Ready(());
                    }
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                })
                .await;
            }
            polls
        }
    });
    // The other task is under way.
    tokio::task::yield_now().await;
    let n: u64 = node
        .call(yielder, &json!({"yield": {"n": 1000}}))
        .await
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(n, 1000);
    let polls = other.await.unwrap();
    assert!(polls >= 500, "the other task ran {polls} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_ends_a_process_asleep_for_ever_at_once() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let call = {
        let node = node.clone();
        tokio::spawn(async move {
            node.call_term(s, otter::from_json(&json!({"sleep": u32::MAX})), None)
                .await
        })
    };
    let watcher = watch(&node, s).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(node.kill(s));
    let answer = tokio::time::timeout(Duration::from_secs(1), call)
        .await
        .expect("the caller learns at once");
    assert_eq!(answer.unwrap(), Err(CallError::Exited(ExitReason::Killed)));
    assert!(saw_exit(&node, watcher, s, "killed").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_reaches_a_sleeping_process_when_its_sleep_ends() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let call = {
        let node = node.clone();
        tokio::spawn(async move { ask(&node, s, json!({"sleep": 300})).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    // As during a `call`: the signal waits for the callback, which finishes its sleep.
    let stopped = node
        .stop(s, ExitReason::Shutdown, Some(Duration::from_secs(5)))
        .await;
    assert_eq!(stopped, Ok(()));
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t0.elapsed()
    );
    assert!(call.await.unwrap().parse::<u64>().unwrap() >= 300);
    assert_eq!(
        node.stop(s, ExitReason::Shutdown, None).await,
        Err(StopError::NoProc)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_timer_delivers_its_ref_with_the_message() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let first = ask(&node, s, json!({"start_timer": {"ms": 30, "msg": "a"}})).await;
    let second = ask(&node, s, json!({"start_timer": {"ms": 60, "msg": "b"}})).await;
    assert_ne!(first, second);
    assert!(
        eventually(async || starter_log(&node, s).await
            == vec![format!("timer:{first}:a"), format!("timer:{second}:b")])
        .await,
        "{:?}",
        starter_log(&node, s).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_timer_cancels_a_start_timer() {
    let node = starter_node().await;
    let s = starter(&node).await;
    let t = ask(&node, s, json!({"start_timer": {"ms": 200, "msg": "a"}})).await;
    let left = ask(&node, s, json!({"cancel_timer": t.parse::<u64>().unwrap()})).await;
    assert!(left.starts_with("Some("), "{left}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(starter_log(&node, s).await, Vec::<String>::new());
    let again = ask(&node, s, json!({"cancel_timer": t.parse::<u64>().unwrap()})).await;
    assert_eq!(again, "None");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_timers_count_against_max_timers() {
    let mut config = NodeConfig::default();
    config.max_timers(3);
    let node = starter_node_with(config).await;
    let s = starter(&node).await;
    for _ in 0..3 {
        ask(&node, s, json!({"start_timer": {"ms": 60_000, "msg": "a"}})).await;
    }
    let r = node
        .call::<_, Value>(s, &json!({"start_timer": {"ms": 60_000, "msg": "a"}}))
        .await;
    assert_eq!(
        r,
        Err(CallError::Exited(ExitReason::Error("system_limit".into())))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_hibernates_after_being_idle_for_hibernate_after() {
    let node = node().await;
    let p = node
        .spawn(
            "probe",
            otter::from_json(&json!({})),
            SpawnOptions::default().hibernate_after(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    // Messages keep it awake; idleness puts it to sleep.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let _: Value = node.call(p, &json!({"add": 1})).await.unwrap();
        assert!(!node.is_hibernating(p));
    }
    assert!(eventually(async || node.is_hibernating(p)).await);
    // The next message wakes it with its state, and it hibernates again when idle.
    let n: Value = node.call(p, &json!({"add": 1})).await.unwrap();
    assert_eq!(n, json!(6));
    assert!(!node.is_hibernating(p));
    assert!(eventually(async || node.is_hibernating(p)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_timeout_takes_precedence_over_hibernate_after() {
    let node = node().await;
    let p = node
        .spawn(
            "probe",
            otter::from_json(&json!({"mode": {"timeout": 150}})),
            SpawnOptions::default().hibernate_after(Duration::from_millis(20)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(!node.is_hibernating(p), "hibernated during an idle timeout");
    assert!(eventually(async || node.is_hibernating(p)).await);
    assert_eq!(events(&node, p).await, vec!["init", "timeout"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_child_with_hibernate_after_hibernates_when_idle() {
    let node = node().await;
    let sup = node
        .start_supervisor(
            SupervisorSpec::new(Strategy::OneForOne).child(
                ChildSpec::worker("w", "probe", otter::from_json(&json!({})))
                    .name("w")
                    .hibernate_after(Duration::from_millis(50)),
            ),
        )
        .await
        .unwrap();
    let w = node.whereis("w").unwrap();
    assert!(eventually(async || node.is_hibernating(w)).await);
    // A restarted child keeps the option.
    node.kill(w);
    assert!(eventually(async || node.whereis("w").is_some_and(|p| p != w)).await);
    let w2 = node.whereis("w").unwrap();
    assert!(eventually(async || node.is_hibernating(w2)).await);
    sup.stop().await;
}
