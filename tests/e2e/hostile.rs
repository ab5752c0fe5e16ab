//! A hostile guest against the host: terms nested past any sane depth, the largest legal
//! inputs, and every host import called with the guest's wasm stack already full (DESIGN's
//! "hazard to design around"). The node stays up, nothing recurses on a host stack, and no
//! host frame reaches a neighbour's fiber stack.

use otter::{
    CallError, ChildSpec, ExitReason, Keys, MAX_TERM_DEPTH, Node, NodeConfig, Pid, Restart,
    SpawnOptions, Strategy, SupervisorSpec, from_json,
};
use serde_json::{Value, json};

use crate::support::*;

/// Far deeper than any limit: a few hundred KB that a recursive reader would need megabytes
/// of stack for.
const ABYSS: u32 = 200_000;

async fn hostile_node() -> Node {
    hostile_node_with(node().await).await
}

/// `node` with the hostile module, a unique registry and a dynamic supervisor of probes.
async fn hostile_node_with(node: Node) -> Node {
    node.load_module("hostile", wasm("hostile")).await.unwrap();
    node.create_registry("Hostile", Keys::Unique).unwrap();
    node.start_supervisor(
        SupervisorSpec::new(Strategy::SimpleOneForOne)
            .name("Jobs")
            .child(
                ChildSpec::worker("job", "probe", from_json(&json!({"tag": "j"})))
                    .restart(Restart::Temporary),
            ),
    )
    .await
    .unwrap();
    node
}

async fn hostile(node: &Node) -> Pid {
    node.spawn(
        "hostile",
        otter::encode(&()).unwrap(),
        SpawnOptions::default(),
    )
    .await
    .unwrap()
}

fn shape(depth: u32, leaf: u32) -> Value {
    json!({"depth": depth, "leaf": leaf})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_nested_past_the_depth_limit_is_badreply_and_the_node_goes_on() {
    let node = hostile_node().await;
    let h = hostile(&node).await;
    let r = node
        .call::<_, Value>(h, &json!({"reply_with": shape(ABYSS, 0)}))
        .await;
    match r {
        Err(CallError::BadReply(why)) => assert!(why.contains("deeper"), "{why}"),
        other => panic!("expected badreply, got {other:?}"),
    }
    // The raw term arrives, and converting it to JSON (as the CLI does) is refused too.
    let raw = node
        .call_term(h, from_json(&json!({"reply_with": shape(ABYSS, 0)})), None)
        .await
        .unwrap();
    assert!(otter::to_json(&raw).is_err());
    // At the limit it still reads.
    let ok = node
        .call::<_, Value>(
            h,
            &json!({"reply_with": shape(MAX_TERM_DEPTH as u32 - 1, 1)}),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let count: String = node.call(h, &json!("count")).await.unwrap();
    assert_eq!(count, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_reason_nested_past_the_limit_is_shown_cut_and_the_node_goes_on() {
    let node = hostile_node().await;
    let h = hostile(&node).await;
    // Watching first (join! polls in order), so the exit cannot be missed.
    // Under the 64 KiB a `shutdown-with` term may take, and still 60,000 levels deep.
    let stop = json!({"stop_with": shape(60_000, 0)});
    let (reason, bye) = tokio::join!(node.wait_exit(h), node.call::<_, String>(h, &stop));
    assert_eq!(bye.unwrap(), "bye");
    assert!(matches!(reason, ExitReason::ShutdownWith(_)), "{reason:?}");
    let shown = reason.to_string();
    assert!(shown.starts_with("shutdown([[[["), "{shown}");
    assert!(
        shown.ends_with("…)") && shown.chars().count() < 300,
        "{shown}"
    );
    let other = hostile(&node).await;
    let count: String = node.call(other, &json!("count")).await.unwrap();
    assert_eq!(count, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_child_args_nested_past_the_limit_are_badarg_and_the_supervisor_goes_on() {
    let node = hostile_node().await;
    let h = hostile(&node).await;
    let attack = |depth| json!({"deep": [0, {"start_child": ["Jobs", shape(depth, 0)]}]});
    let r: String = node.call(h, &attack(ABYSS)).await.unwrap();
    assert!(r.contains("badarg") && r.contains("deeper"), "{r}");
    // Args that are not a map stay a pair with the template's: the probe refuses them, but
    // the supervisor and the node go on.
    let r: String = node.call(h, &attack(4)).await.unwrap();
    assert!(r.starts_with("Err(SupervisorError::Failed"), "{r}");
    let sup = node
        .supervisor(&"Jobs".into())
        .expect("the supervisor is alive");
    assert_eq!(sup.count_children().await.unwrap().active, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_args_keys_and_module_names_past_the_limits_are_badarg_and_the_node_goes_on() {
    let node = hostile_node().await;
    let h = hostile(&node).await;
    let attack =
        async |a: Value| -> String { node.call(h, &json!({"deep": [0, a]})).await.unwrap() };
    let before = node.process_count();
    let r = attack(json!({"start": shape(ABYSS, 0)})).await;
    assert!(
        r.starts_with("Err(StartError::Badarg") && r.contains("deeper"),
        "{r}"
    );
    // Over the 1 MiB maximum message size.
    let r = attack(json!({"start": shape(1, 2 << 20)})).await;
    assert!(
        r.starts_with("Err(StartError::Badarg") && r.contains("limit"),
        "{r}"
    );
    let r = attack(json!({"start_via": shape(1, 2 << 20)})).await;
    assert!(
        r.starts_with("Err(StartError::Badarg") && r.contains("key"),
        "{r}"
    );
    let r = attack(json!({"module": 64 << 10})).await;
    assert!(
        r.starts_with("Err(StartError::Badarg") && r.contains("module"),
        "{r}"
    );
    assert_eq!(node.process_count(), before);
    let count: String = node.call(h, &json!("count")).await.unwrap();
    assert_eq!(count, "0");
}

/// The deepest descent (in wasm frames) after which `attack` still runs without overflowing
/// the guest's wasm stack: there the host's frames for the import sit right below a full
/// wasm stack. Each overflow ends a process, so every try gets a fresh one.
async fn deepest(node: &Node, attack: &Value) -> (u32, String) {
    let try_at = async |depth: u32| {
        let h = hostile(node).await;
        let r = node
            .call::<_, String>(h, &json!({"deep": [depth, attack]}))
            .await;
        node.kill(h);
        match r {
            Ok(outcome) => Some(outcome),
            Err(CallError::Exited(ExitReason::Error(e))) if e.contains("stack") => None,
            Err(e) => panic!("{attack}: at depth {depth}: {e}"),
        }
    };
    let mut outcome = try_at(0).await.expect("the attack runs at depth 0");
    // A depth that overflows, however large the stack.
    let (mut lo, mut hi) = (0u32, 1u32 << 12);
    while let Some(o) = try_at(hi).await {
        assert!(hi < 1 << 24, "a descent of {hi} frames does not overflow");
        (lo, hi, outcome) = (hi, hi * 2, o);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match try_at(mid).await {
            Some(o) => (lo, outcome) = (mid, o),
            None => hi = mid,
        }
    }
    (lo, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_called_below_the_largest_wasm_stack_a_manifest_allows_stay_inside_the_fiber_stack()
{
    // The host's margin below the wasm stack is the same whatever the wasm stack: at the
    // manifest's largest, a full stack and then the heaviest imports still leave the node up.
    let mut config = NodeConfig::default();
    config
        .engine()
        .max_wasm_stack(otter::manifest::MAX_WASM_STACK);
    let node = Node::new(config).unwrap();
    node.load_module("probe", wasm("probe")).await.unwrap();
    let node = hostile_node_with(node).await;
    let (nothing, _) = deepest(&node, &json!("nothing")).await;
    let frames = (otter::manifest::MAX_WASM_STACK / 128) as u32;
    assert!(
        nothing > frames,
        "only {nothing} frames in the largest stack"
    );
    let deep = MAX_TERM_DEPTH as u32 - 1;
    for attack in [
        json!({"register": shape(deep, 64 << 10)}),
        json!({"start_child": ["Jobs", shape(ABYSS, 0)]}),
        json!({"log": 64 << 10}),
    ] {
        let (depth, outcome) = deepest(&node, &attack).await;
        eprintln!("{attack:.60}: {depth} frames deep: {outcome:.80}");
        assert!(depth > nothing / 2, "{attack}: only {depth} frames");
    }
    let h = hostile(&node).await;
    let count: String = node.call(h, &json!("count")).await.unwrap();
    assert_eq!(count, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_import_called_below_a_full_wasm_stack_stays_inside_the_fiber_stack() {
    let node = hostile_node().await;
    // Live neighbours, each with a count to keep, and each waiting inside a callback (its
    // fiber suspended in a `call` import, its frames live at the top of its stack) while the
    // attacks run: a host frame that overran a stack would land in one of theirs.
    let sink = node
        .spawn(
            "hostile",
            otter::encode(&()).unwrap(),
            SpawnOptions::default().name("sink"),
        )
        .await
        .unwrap();
    let mut neighbours = Vec::new();
    for i in 0..200u32 {
        let n = hostile(&node).await;
        for _ in 0..i % 3 + 1 {
            node.cast(n, from_json(&json!("count")));
        }
        let node = node.clone();
        let relay = tokio::spawn(async move {
            node.call::<_, String>(n, &json!({"relay": "sink"}))
                .await
                .unwrap()
        });
        neighbours.push(relay);
    }
    assert!(
        eventually(async || node.get_state(sink).await.is_ok_and(|s| {
            otter::to_json(&s).unwrap()["held"]
                .as_array()
                .unwrap()
                .len()
                == 200
        }))
        .await,
        "every neighbour waits in its call"
    );
    let deep = MAX_TERM_DEPTH as u32 - 1;
    let big = 64 << 10;
    let mut attacks = Vec::new();
    for kind in [
        "register",
        "unregister",
        "lookup",
        "dispatch",
        "send_via",
        "cast_via",
        "call_via",
        "monitor_via",
        "send_after_via",
        "send_self",
        "exit_with",
        "supervisor_via",
        "reply_gone",
        "start",
        "start_via",
        "start_timer_via",
    ] {
        attacks.push(json!({kind: shape(deep, big)}));
        attacks.push(json!({kind: {"depth": deep / 2, "leaf": 0, "maps": true}}));
        attacks.push(json!({kind: shape(ABYSS, 0)}));
    }
    attacks.push(json!({"start_child": ["Jobs", shape(deep, big)]}));
    attacks.push(json!({"start_child": ["Jobs", shape(ABYSS, 0)]}));
    attacks.push(json!({"log": big}));
    // The longest name a process may take.
    attacks.push(json!({"name": 255}));
    attacks.push(json!({"whereis": big}));
    attacks.push(json!({"panicking": big}));
    attacks.push(json!({"module": big}));
    attacks.push(json!("clock"));
    let mut nothing_depth = 0;
    for attack in std::iter::once(json!("nothing")).chain(attacks) {
        let (depth, outcome) = deepest(&node, &attack).await;
        if attack == json!("nothing") {
            nothing_depth = depth;
        }
        eprintln!("{attack:.60}: {depth} frames deep: {outcome:.80}");
        assert!(depth > nothing_depth / 2, "{attack}: only {depth} frames");
    }
    let released: String = node.call(sink, &json!("release")).await.unwrap();
    assert_eq!(released, "200");
    for (i, relay) in neighbours.into_iter().enumerate() {
        let answer = relay.await.unwrap();
        assert_eq!(
            answer,
            format!("{} Ok(\"released\")", i % 3 + 1),
            "neighbour {i}"
        );
    }
    let high_water = node.fiber_stack_high_water();
    eprintln!("deepest fiber stack use: {} KiB", high_water >> 10);
    // 128 KiB of wasm stack, 128 KiB more for host frames: keep half of that margin free.
    assert!(
        high_water <= (128 + 64) << 10,
        "the host used {} KiB of fiber stack",
        high_water >> 10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_keys_nested_in_map_keys_do_not_blow_up_the_json_form() {
    let node = hostile_node().await;
    let h = hostile(&node).await;
    // `{{{...: 0}: 0}: 0}`: each level's key becomes JSON text inside the next level's,
    // escaped again, so its JSON form doubles with every level.
    let keys = |depth| json!({"reply_with": {"depth": depth, "keys": true}});
    let shallow = node.call_term(h, from_json(&keys(2)), None).await.unwrap();
    assert_eq!(otter::to_json(&shallow).unwrap(), json!({r#"{"":0}"#: 0}));
    for depth in [20, MAX_TERM_DEPTH as u32 - 1] {
        let raw = node
            .call_term(h, from_json(&keys(depth)), None)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let json = otter::to_json(&raw);
        assert!(
            json.is_err(),
            "{depth} levels, {} bytes: a JSON form of {} bytes",
            raw.len(),
            json.map(|j| j.to_string().len()).unwrap_or_default()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
    let count: String = node.call(h, &json!("count")).await.unwrap();
    assert_eq!(count, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_error_after_hibernation_is_one_short_line() {
    let node = hostile_node().await;
    let h = hostile(&node).await;
    let forged = format!("\n2030-01-01T00:00:00Z  INFO forged{}", "x".repeat(4000));
    let poisoned: String = node.call(h, &json!({"poison": forged})).await.unwrap();
    assert_eq!(poisoned, "poisoned");
    let count = json!("count");
    let (reason, woken) = tokio::join!(node.wait_exit(h), node.call::<_, String>(h, &count));
    assert!(woken.is_err(), "{woken:?}");
    let shown = reason.to_string();
    assert!(shown.contains("forged"), "{shown}");
    assert!(!shown.contains('\n'), "{shown}");
    assert!(shown.len() <= 1100, "{} bytes", shown.len());
}

/// `flood` (what, n, size: see guests/hostile) `n` times in one callback of `h`: how many
/// took, or the reason `h` exited with.
async fn flood(node: &Node, h: Pid, what: &str, n: u32, size: u32) -> Result<u32, ExitReason> {
    match node
        .call::<_, String>(h, &json!({"flood": [what, n, size]}))
        .await
    {
        Ok(took) => Ok(took.parse().unwrap()),
        Err(CallError::Exited(reason)) => Err(reason),
        Err(e) => panic!("flood {what}: {e}"),
    }
}

fn system_limit() -> Result<u32, ExitReason> {
    Err(ExitReason::Error("system_limit".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_holding_more_bytes_than_the_memory_limit_end_the_process_with_system_limit() {
    let node = hostile_node().await;
    let h = hostile(&node).await;
    // 30 timers of 512 KiB: 15 MiB held on the host, under the 16 MiB memory limit.
    assert_eq!(flood(&node, h, "timers", 30, 512 << 10).await, Ok(30));
    // Three more are past it (32 fill it exactly), though far from the count limit.
    assert_eq!(
        flood(&node, h, "timers", 3, 512 << 10).await,
        system_limit()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_entries_past_the_memory_limit_end_the_process_with_system_limit() {
    let node = hostile_node().await;
    node.create_registry("HostileDup", Keys::Duplicate).ok();
    let h = hostile(&node).await;
    // Entries with a key and a value of 128 KiB each, charged 384 KiB (a key counts twice:
    // in the table and in its holder's list): 20 fit in the 16 MiB memory limit ...
    assert_eq!(flood(&node, h, "register_dup", 20, 128 << 10).await, Ok(20));
    // ... and a hundred do not.
    assert_eq!(
        flood(&node, h, "register_dup", 100, 128 << 10).await,
        system_limit()
    );
    // Its entries went with it, and another process may register again.
    let h = hostile(&node).await;
    assert_eq!(flood(&node, h, "register_dup", 20, 128 << 10).await, Ok(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_past_the_limit_end_the_process_with_system_limit() {
    let node = hostile_node().await;
    let h = hostile(&node).await;
    assert_eq!(flood(&node, h, "monitor", 100_001, 0).await, system_limit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_kept_in_the_state_is_answered_after_hibernation() {
    let node = hostile_node().await;
    let h = hostile(&node).await;
    let held = {
        let node = node.clone();
        tokio::spawn(async move { node.call::<_, String>(h, &json!("hold")).await })
    };
    assert!(
        eventually(async || node.get_state(h).await.is_ok_and(|s| {
            otter::to_json(&s).unwrap()["held"]
                .as_array()
                .unwrap()
                .len()
                == 1
        }))
        .await
    );
    let ok: String = node.call(h, &json!("hibernate")).await.unwrap();
    assert_eq!(ok, "ok");
    assert!(eventually(async || node.is_hibernating(h)).await);
    // Woken by the next call, from the serialized state: the reply handle came back with it.
    let released: String = node.call(h, &json!("release")).await.unwrap();
    assert_eq!(released, "1");
    assert_eq!(held.await.unwrap(), Ok("released".to_owned()));
}
