//! Hot code upgrade: a live module's processes change version with their state, and keep
//! everything else (pid, names, queue, callers, timers, monitors, links, trap_exit).

use std::time::Duration;

use otter::{Node, Pid, SpawnOptions, UpgradeError, UpgradeOptions, UpgradePolicy};
use serde_json::{Value, json};

use crate::support::*;

fn extra(v: Value) -> UpgradeOptions {
    UpgradeOptions {
        extra: otter::from_json(&v),
        ..UpgradeOptions::default()
    }
}

async fn vsn(node: &Node, p: Pid) -> String {
    node.call(p, &json!("vsn")).await.expect("vsn")
}

async fn to_v2(node: &Node) -> Result<otter::UpgradeReport, UpgradeError> {
    to_v2_with(node, UpgradeOptions::default()).await
}

async fn to_v2_with(
    node: &Node,
    opts: UpgradeOptions,
) -> Result<otter::UpgradeReport, UpgradeError> {
    node.upgrade("probe", wasm("probe_v2"), opts).await
}

fn ps_vsn(node: &Node, p: Pid) -> String {
    node.processes()
        .into_iter()
        .find(|i| i.pid == p)
        .expect("in ps")
        .vsn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_upgrades_to_v2_with_its_data_and_back_to_v1() {
    let node = node().await;
    let kv = node
        .spawn(
            "kv",
            otter::encode(&()).unwrap(),
            SpawnOptions::default().name("kv"),
        )
        .await
        .unwrap();
    let _: Value = node.call("kv", &json!({"put": ["a", "1"]})).await.unwrap();
    let _: Value = node.call("kv", &json!({"put": ["b", "2"]})).await.unwrap();
    // Version 1 has no `version` call: it crashes on one, so none is made before.
    let report = node
        .upgrade("kv", wasm("kv_v2"), UpgradeOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (report.from_vsn.as_str(), report.to_vsn.as_str()),
        ("1", "2")
    );
    assert_eq!(report.upgraded, vec![kv]);
    assert_eq!(ps_vsn(&node, kv), "2");
    let version: u64 = node.call("kv", &json!("version")).await.unwrap();
    assert_eq!(version, 2);
    let a: Option<String> = node.call("kv", &json!({"get": "a"})).await.unwrap();
    assert_eq!(a.as_deref(), Some("1"));
    let writes: u64 = node.call("kv", &json!("writes")).await.unwrap();
    assert_eq!(writes, 2);
    let state: Value = otter::decode(&node.get_state("kv").await.unwrap()).unwrap();
    assert_eq!(state["version"], json!(2));
    // New spawns start from version 2.
    let fresh = node
        .spawn("kv", otter::encode(&()).unwrap(), SpawnOptions::default())
        .await
        .unwrap();
    assert_eq!(ps_vsn(&node, fresh), "2");

    let _: Value = node.call("kv", &json!({"put": ["c", "3"]})).await.unwrap();
    let back = node
        .upgrade("kv", wasm("kv"), UpgradeOptions::default())
        .await
        .unwrap();
    assert_eq!((back.from_vsn.as_str(), back.to_vsn.as_str()), ("2", "1"));
    assert_eq!(ps_vsn(&node, kv), "1");
    assert_eq!(node.whereis("kv"), Some(kv));
    let size: u64 = node.call("kv", &json!("size")).await.unwrap();
    assert_eq!(size, 3);
    let state: Value = otter::decode(&node.get_state("kv").await.unwrap()).unwrap();
    assert_eq!(
        state.get("version"),
        None,
        "v1's state has no version: {state}"
    );
}

/// A failed upgrade leaves the probe on v1 with its state; returns the error's report.
async fn failing_upgrade(how: Value, timeout: Duration) -> (Pid, otter::UpgradeReport, String) {
    let node = node().await;
    let p = probe(&node).await;
    let _: Value = node.call(p, &json!({"add": 5})).await.unwrap();
    let opts = UpgradeOptions {
        timeout,
        ..extra(how)
    };
    let err = node
        .upgrade("probe", wasm("probe_v2"), opts)
        .await
        .unwrap_err();
    let text = err.to_string();
    let UpgradeError::Failed(report) = err else {
        panic!("not a process failure: {text}")
    };
    assert!(node.is_alive(p));
    assert_eq!(vsn(&node, p).await, "1");
    assert_eq!(ps_vsn(&node, p), "1");
    let added: Value = node.call(p, &json!({"add": 1})).await.unwrap();
    assert_eq!(added, json!(6), "its state is kept");
    assert!(
        !events(&node, p)
            .await
            .iter()
            .any(|e| e.starts_with("code_change"))
    );
    assert!(!report.committed);
    // New spawns still start from v1.
    assert_eq!(vsn(&node, probe(&node).await).await, "1");
    (p, *report, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_change_refusing_keeps_the_server_on_v1_with_its_state() {
    let (p, report, text) =
        failing_upgrade(json!({"error": "no thanks"}), Duration::from_secs(5)).await;
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].pid, p);
    assert!(report.failed[0].reason.contains("no thanks"), "{text}");
    assert!(text.contains(&format!("pid {p}")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_change_trapping_keeps_the_server_on_v1() {
    let (p, report, _) = failing_upgrade(json!("trap"), Duration::from_secs(5)).await;
    assert_eq!(report.failed[0].pid, p);
    assert!(
        report.failed[0].reason.contains("crashed"),
        "{:?}",
        report.failed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_change_looping_past_the_timeout_keeps_the_server_on_v1() {
    let (p, report, _) = failing_upgrade(json!("loop"), Duration::from_millis(200)).await;
    assert_eq!(report.failed[0].pid, p);
    assert!(
        report.failed[0].reason.starts_with("timeout"),
        "{:?}",
        report.failed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_change_exhausting_memory_keeps_the_server_on_v1() {
    let (_, report, _) = failing_upgrade(json!("alloc"), Duration::from_secs(5)).await;
    assert!(
        report.failed[0].reason.contains("memory_limit"),
        "{:?}",
        report.failed
    );
}

async fn hundred_probes(node: &Node) -> Vec<Pid> {
    let mut pids = Vec::new();
    for i in 0..100 {
        let pid = try_probe(node, json!({"tag": format!("p{i}")}), None)
            .await
            .unwrap();
        pids.push(pid);
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_or_nothing_keeps_all_hundred_on_v1_when_one_fails() {
    let node = node().await;
    let pids = hundred_probes(&node).await;
    let err = node
        .upgrade("probe", wasm("probe_v2"), extra(json!({"fail_tag": "p57"})))
        .await
        .unwrap_err();
    let UpgradeError::Failed(report) = err else {
        panic!("{err}")
    };
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].pid, pids[57]);
    assert_eq!(report.rolled_back.len(), 99);
    for &p in &pids {
        assert_eq!(vsn(&node, p).await, "1");
        assert_eq!(ps_vsn(&node, p), "1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_process_policy_keeps_the_ones_that_migrated() {
    let node = node().await;
    let pids = hundred_probes(&node).await;
    let opts = UpgradeOptions {
        policy: UpgradePolicy::PerProcess,
        ..extra(json!({"fail_tag": "p3"}))
    };
    let UpgradeError::Failed(report) = node
        .upgrade("probe", wasm("probe_v2"), opts)
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert!(report.committed);
    assert_eq!(report.upgraded.len(), 99);
    for (i, &p) in pids.iter().enumerate() {
        assert_eq!(vsn(&node, p).await, if i == 3 { "1" } else { "2" });
    }
    let modules = node.modules();
    let count = |v: &str| {
        modules
            .iter()
            .find(|m| m.name == "probe" && m.vsn == v)
            .map(|m| m.processes)
    };
    assert_eq!((count("1"), count("2")), (Some(1), Some(99)), "{modules:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_are_handled_in_order_by_the_new_version() {
    let node = node().await;
    let p = probe(&node).await;
    node.suspend(p).unwrap();
    for i in 0..50 {
        node.cast(p, otter::from_json(&json!({"record": format!("m{i}")})));
    }
    // Upgrading a suspended process leaves it suspended, its queue intact.
    to_v2(&node).await.unwrap();
    node.resume(p).unwrap();
    let log = events(&node, p).await;
    let records: Vec<&String> = log.iter().filter(|e| e.starts_with("cast:m")).collect();
    let expected: Vec<String> = (0..50).map(|i| format!("cast:m{i}")).collect();
    assert_eq!(records, expected.iter().collect::<Vec<_>>());
    let cc = log.iter().position(|e| e == "code_change 1->2").unwrap();
    assert!(cc < log.iter().position(|e| e == "cast:m0").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_reply_is_answered_by_the_new_version() {
    let node = node().await;
    let p = probe(&node).await;
    let n = node.clone();
    let waiting = tokio::spawn(async move { n.call::<_, Value>(p, &json!("defer")).await });
    assert!(eventually(async || events(&node, p).await.contains(&"defer".to_string())).await);
    to_v2(&node).await.unwrap();
    assert_eq!(vsn(&node, p).await, "2");
    let _: Value = node.call(p, &json!({"release": "from v2"})).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), json!("from v2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_armed_by_the_old_version_fires_into_the_new_one() {
    let node = node().await;
    let p = probe(&node).await;
    let _: Value = node
        .call(p, &json!({"send_after": {"ms": 150, "msg": "tick"}}))
        .await
        .unwrap();
    to_v2(&node).await.unwrap();
    assert!(eventually(async || events(&node, p).await.iter().any(|e| e.contains("tick"))).await);
    let log = events(&node, p).await;
    let cc = log.iter().position(|e| e == "code_change 1->2").unwrap();
    assert!(cc < log.iter().position(|e| e.contains("tick")).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pid_name_and_via_key_are_kept() {
    let node = node().await;
    node.create_registry("reg", otter::Keys::Unique).unwrap();
    let p = named_probe(&node, "keeper", json!({"register": ["reg", "k"]})).await;
    to_v2(&node).await.unwrap();
    assert_eq!(node.whereis("keeper"), Some(p));
    let by_name: String = node.call("keeper", &json!("vsn")).await.unwrap();
    assert_eq!(by_name, "2");
    let via = otter::Dest::via("reg", otter::encode(&"k").unwrap());
    let by_key: String = node.call(via, &json!("vsn")).await.unwrap();
    assert_eq!(by_key, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_links_and_trap_exit_hold_both_ways() {
    let node = node().await;
    let upgraded = probe(&node).await;
    let watcher = probe(&node).await;
    let watched = probe(&node).await;
    let linked = probe(&node).await;
    // upgraded monitors `watched`; `watcher` monitors upgraded; upgraded links `linked`.
    let _: Value = node
        .call(upgraded, &json!({"monitor": {"pid": watched}}))
        .await
        .unwrap();
    let _: Value = node
        .call(watcher, &json!({"monitor": {"pid": upgraded}}))
        .await
        .unwrap();
    let _: Value = node.call(upgraded, &json!({"link": linked})).await.unwrap();
    let _: Value = node
        .call(upgraded, &json!({"trap_exit": true}))
        .await
        .unwrap();
    let _: Value = node
        .call(linked, &json!({"trap_exit": true}))
        .await
        .unwrap();
    let report = to_v2(&node).await.unwrap();
    assert_eq!(report.upgraded.len(), 4);
    // Its monitor and trap_exit: `watched` dies, `upgraded` (v2) sees DOWN; `linked` dies,
    // `upgraded` gets EXIT as a message instead of dying.
    node.exit(watched, otter::ExitReason::Error("bye".into()));
    node.exit(linked, otter::ExitReason::Killed);
    assert!(
        eventually(async || {
            let log = events(&node, upgraded).await;
            log.iter()
                .any(|e| e.starts_with(&format!("down:{watched}")))
                && log.iter().any(|e| e.starts_with(&format!("exit:{linked}")))
        })
        .await,
        "{:?}",
        events(&node, upgraded).await
    );
    // Monitored by `watcher`: its death reaches it.
    node.exit(upgraded, otter::ExitReason::Killed);
    assert!(
        eventually(async || events(&node, watcher)
            .await
            .iter()
            .any(|e| e.starts_with(&format!("down:{upgraded}"))))
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hibernated_process_migrates_when_it_wakes() {
    let node = node().await;
    let p = probe(&node).await;
    let _: Value = node.call(p, &json!({"add": 7})).await.unwrap();
    let _: Value = node.call(p, &json!("hibernate")).await.unwrap();
    assert!(eventually(async || node.is_hibernating(p)).await);
    let report = to_v2(&node).await.unwrap();
    assert_eq!(report.deferred, vec![p]);
    assert!(node.is_hibernating(p), "a lazy upgrade does not wake it");
    assert_eq!(ps_vsn(&node, p), "2");
    assert_eq!(vsn(&node, p).await, "2");
    let log = events(&node, p).await;
    assert!(log.contains(&"code_change 1->2".to_string()), "{log:?}");
    let added: Value = node.call(p, &json!({"add": 1})).await.unwrap();
    assert_eq!(added, json!(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_state_of_a_process_awaiting_lazy_migration_shows_the_migrated_state() {
    let node = node().await;
    let p = probe(&node).await;
    let _: Value = node.call(p, &json!({"add": 7})).await.unwrap();
    let _: Value = node.call(p, &json!("hibernate")).await.unwrap();
    assert!(eventually(async || node.is_hibernating(p)).await);
    assert_eq!(to_v2(&node).await.unwrap().deferred, vec![p]);
    // The state `get_state` shows is the one the version it reports (2) runs with, as
    // `sys:get_state` after `sys:change_code`: the old version's bytes would be another
    // shape in general.
    let state: Value = otter::decode(&node.get_state(p).await.unwrap()).unwrap();
    assert!(
        state["events"]
            .as_array()
            .unwrap()
            .contains(&json!("code_change 1->2")),
        "{state}"
    );
    assert!(node.is_hibernating(p), "it hibernates again, migrated");
    let log = events(&node, p).await;
    assert_eq!(
        log.iter().filter(|e| e.starts_with("code_change")).count(),
        1,
        "migrated once: {log:?}"
    );
    let added: Value = node.call(p, &json!({"add": 1})).await.unwrap();
    assert_eq!(added, json!(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_upgrade_migrates_a_hibernated_process_at_once() {
    let node = node().await;
    let p = probe(&node).await;
    let _: Value = node.call(p, &json!("hibernate")).await.unwrap();
    assert!(eventually(async || node.is_hibernating(p)).await);
    let opts = UpgradeOptions {
        eager: true,
        ..UpgradeOptions::default()
    };
    let report = node.upgrade("probe", wasm("probe_v2"), opts).await.unwrap();
    assert_eq!(report.upgraded, vec![p]);
    assert!(node.is_hibernating(p), "it hibernates again");
    let state: Value = otter::decode(&node.get_state(p).await.unwrap()).unwrap();
    assert!(
        state["events"]
            .as_array()
            .unwrap()
            .contains(&json!("code_change 1->2")),
        "{state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_blocked_calling_another_of_the_module_does_not_fail_the_upgrade() {
    let node = node().await;
    let a = probe(&node).await;
    let b = probe(&node).await;
    // B is busy in a callback when the upgrade starts; A is blocked in a call to B, queued
    // behind B's upgrade order: B migrates and waits for the decision, which waits for A.
    let n = node.clone();
    let busy = tokio::spawn(async move {
        let _: Value = n.call(b, &json!({"spin": 300_000_000u64})).await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let n = node.clone();
    let calling = tokio::spawn(async move {
        let r: Value = n
            .call(a, &json!({"call": {"to": {"pid": b}, "request": "ping"}}))
            .await
            .unwrap();
        r
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let opts = UpgradeOptions {
        timeout: Duration::from_secs(1),
        ..UpgradeOptions::default()
    };
    let started = std::time::Instant::now();
    let report = to_v2_with(&node, opts).await;
    let took = started.elapsed();
    busy.await.unwrap();
    assert_eq!(calling.await.unwrap(), json!("pong"));
    let report = report.unwrap();
    assert_eq!(report.upgraded, vec![a, b], "{report:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(vsn(&node, a).await, "2");
    assert_eq!(vsn(&node, b).await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_without_a_time_limit_is_taken_as_waiting_forever() {
    let node = node().await;
    let p = probe(&node).await;
    let opts = UpgradeOptions {
        timeout: Duration::MAX,
        ..UpgradeOptions::default()
    };
    assert_eq!(to_v2_with(&node, opts).await.unwrap().upgraded, vec![p]);
    node.suspend(p).unwrap();
    let null = otter::encode(&()).unwrap();
    node.change_code(p, null, Duration::MAX).await.unwrap();
    node.resume(p).unwrap();
    assert_eq!(vsn(&node, p).await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_is_not_a_server_is_refused_and_nothing_changes() {
    let node = node().await;
    let p = probe(&node).await;
    let good = std::fs::read(wasm("probe_v2")).unwrap();
    for (what, bytes) in [
        ("garbage", b"not wasm at all".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        // A valid core module that is no Otter server (another world).
        ("other world", b"\0asm\x01\0\0\0".to_vec()),
    ] {
        let err = node
            .upgrade_bytes("probe", what.as_ref(), &bytes, Default::default())
            .await
            .unwrap_err();
        assert!(matches!(err, UpgradeError::Load(_)), "{what}: {err}");
        assert_eq!(vsn(&node, p).await, "1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_bytes_are_refused_and_same_vsn_needs_force() {
    let node = node().await;
    let p = probe(&node).await;
    let err = node
        .upgrade("probe", wasm("probe"), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, UpgradeError::Unchanged { .. }), "{err}");
    // kv reports vsn "1" as the probe does: other bytes, same vsn.
    node.upgrade("kv", wasm("kv_v2"), Default::default())
        .await
        .unwrap();
    let err = node
        .upgrade("probe", wasm("echo"), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, UpgradeError::SameVsn { .. }), "{err}");
    assert_eq!(vsn(&node, p).await, "1");
    // A device never ends: refused without reading it.
    let err = node
        .upgrade("probe", "/dev/zero", Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, UpgradeError::Io { .. }), "{err}");
    let huge_extra = otter::encode(&"x".repeat(2 << 20)).unwrap();
    let opts = UpgradeOptions {
        extra: huge_extra,
        ..UpgradeOptions::default()
    };
    let err = to_v2_with(&node, opts).await.unwrap_err();
    assert!(matches!(err, UpgradeError::Badarg(_)), "{err}");
    let too_big = vec![0u8; (otter::MAX_MODULE_BYTES + 1) as usize];
    let err = node
        .upgrade_bytes("probe", "big.wasm".as_ref(), &too_big, Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, UpgradeError::TooLarge { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_upgrade_of_the_same_module_at_once_is_refused() {
    let node = node().await;
    let p = probe(&node).await;
    // The probe is busy in a long callback before either upgrade starts (its call queued
    // while it is suspended, then taken), so whichever upgrade comes second finds the other
    // waiting for it, however slowly this machine runs the test.
    node.suspend(p).unwrap();
    let n = node.clone();
    let busy = tokio::spawn(async move { n.call::<_, Value>(p, &json!({"sleep": 1500})).await });
    let queue_len = |n: usize| {
        let node = node.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while node.process_info(p).expect("alive").queue_len != n {
                assert!(tokio::time::Instant::now() < deadline, "queue never {n}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    queue_len(1).await;
    node.resume(p).unwrap();
    queue_len(0).await;
    let (a, b) = tokio::join!(to_v2(&node), to_v2(&node));
    let refused = [&a, &b]
        .into_iter()
        .filter(|r| matches!(r, Err(UpgradeError::InProgress(_))))
        .count();
    assert_eq!(refused, 1, "one refused, one done: {a:?} / {b:?}");
    assert!(a.is_ok() || b.is_ok(), "{a:?} / {b:?}");
    busy.await.unwrap().expect("the busy call is answered");
    assert_eq!(vsn(&node, p).await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_racing_a_kill_leaves_the_others_upgraded() {
    let node = node().await;
    let mut pids = Vec::new();
    for _ in 0..20 {
        pids.push(probe(&node).await);
    }
    let victim = pids[10];
    let n = node.clone();
    let up = tokio::spawn(async move { to_v2(&n).await });
    node.kill(victim);
    let report = up.await.unwrap().unwrap();
    assert!(!report.upgraded.contains(&victim) || !node.is_alive(victim));
    for &p in pids.iter().filter(|&&p| p != victim) {
        assert_eq!(vsn(&node, p).await, "2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_code_waits_its_turn_behind_an_upgrade_of_its_module() {
    let node = node().await;
    let busy = probe(&node).await;
    let q = probe(&node).await;
    node.suspend(q).unwrap();
    // An upgrade of the module waits for `busy`, in a long callback.
    let n = node.clone();
    let call = tokio::spawn(async move { n.call::<_, Value>(busy, &json!({"sleep": 1500})).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n = node.clone();
    let upgrade = tokio::spawn(async move { to_v2(&n).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let null = otter::encode(&()).unwrap();
    let err = node
        .change_code(q, null, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, UpgradeError::InProgress(_)), "{err}");
    upgrade.await.unwrap().unwrap();
    call.await.unwrap().unwrap();
    assert_eq!(ps_vsn(&node, q), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_code_needs_a_suspended_process() {
    let node = node().await;
    let p = probe(&node).await;
    let null = otter::encode(&()).unwrap();
    let err = node
        .change_code(p, null.clone(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, UpgradeError::NotSuspended(_)), "{err}");
    node.suspend(p).unwrap();
    node.change_code(p, null, Duration::from_secs(1))
        .await
        .unwrap();
    let refused = otter::from_json(&json!({"error": "nope"}));
    let err = node
        .change_code(p, refused, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    node.resume(p).unwrap();
    let log = events(&node, p).await;
    assert_eq!(
        log.iter().filter(|e| *e == "code_change 1->1").count(),
        1,
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_while_upgrading_and_downgrading_repeatedly() {
    let node = node().await;
    let p = probe(&node).await;
    let rounds = 100;
    let upgrading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    // Two producers, each casting its own numbered sequence and calling every tenth
    // message, for as long as the upgrades go on (paced, and at most 15,000 casts, so that
    // the probe's log still fits in a reply); each returns how many casts it made.
    let producers: Vec<_> = (0..2)
        .map(|k| {
            let (n, upgrading) = (node.clone(), upgrading.clone());
            tokio::spawn(async move {
                let mut i = 0u32;
                while upgrading.load(std::sync::atomic::Ordering::Relaxed) && i < 15_000 {
                    n.cast(p, otter::from_json(&json!({"record": format!("p{k}n{i}")})));
                    if i.is_multiple_of(10) {
                        let pong: String = n
                            .call(p, &json!("ping"))
                            .await
                            .expect("every call answered");
                        assert_eq!(pong, "pong");
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    i += 1;
                }
                i
            })
        })
        .collect();
    for i in 0..rounds {
        let to = if i % 2 == 0 { "probe_v2" } else { "probe" };
        node.upgrade("probe", wasm(to), Default::default())
            .await
            .unwrap();
    }
    upgrading.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut sent = Vec::new();
    for producer in producers {
        sent.push(producer.await.unwrap());
    }
    let log = events(&node, p).await;
    let changes: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, e)| e.starts_with("code_change"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(changes.len(), rounds);
    for (k, &n) in sent.iter().enumerate() {
        let prefix = format!("cast:p{k}n");
        let seen: Vec<&String> = log.iter().filter(|e| e.starts_with(&prefix)).collect();
        let expected: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(seen, expected.iter().collect::<Vec<_>>(), "producer {k}");
    }
    // The producers did run across the upgrades: casts were handled between most of them.
    let interleaved = changes
        .windows(2)
        .filter(|w| log[w[0]..w[1]].iter().any(|e| e.starts_with("cast:")))
        .count();
    assert!(
        interleaved >= rounds / 2,
        "casts between only {interleaved} of {rounds} upgrades"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_child_restarts_on_the_new_version_with_its_restart_count() {
    let node = node().await;
    let spec = otter::SupervisorSpec::new(otter::Strategy::OneForOne)
        .child(otter::ChildSpec::worker("w", "probe", otter::from_json(&json!({}))).name("w"));
    let _sup = node.start_supervisor(spec).await.unwrap();
    let first = node.whereis("w").unwrap();
    node.kill(first);
    assert!(eventually(async || node.whereis("w").is_some_and(|p| p != first)).await);
    let second = node.whereis("w").unwrap();
    let restarts = |node: &Node, p: Pid| {
        node.processes()
            .into_iter()
            .find(|i| i.pid == p)
            .map(|i| i.restarts)
    };
    assert_eq!(restarts(&node, second), Some(1));
    to_v2(&node).await.unwrap();
    assert_eq!(restarts(&node, second), Some(1), "kept across the upgrade");
    assert_eq!(vsn(&node, second).await, "2");
    // The child spec names the module: the restart starts the new version.
    node.kill(second);
    assert!(eventually(async || node.whereis("w").is_some_and(|p| p != second)).await);
    let third = node.whereis("w").unwrap();
    assert_eq!(vsn(&node, third).await, "2");
    assert_eq!(restarts(&node, third), Some(2));
}
