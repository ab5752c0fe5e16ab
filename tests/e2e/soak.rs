//! The soak test (not in CI; `just soak`, length in `OTTER_SOAK_SECS`, default 120): a tree
//! whose workers crash at random thousands of times while clients call them. At every
//! checkpoint and at the end, the registry holds exactly the live processes' names; every
//! call answers or errors within its timeout; RSS comes back near its level after warm-up;
//! the tree is intact.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use otter::{CallError, ChildSpec, ExitReason, Node, Restart, Strategy, SupervisorSpec};
use serde_json::json;

use crate::support::node;

const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// How late past its timeout a call may return: scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(500);
/// End RSS may exceed the warmed-up baseline by this fraction or `RSS_FLOOR_KIB`, the larger.
const RSS_MARGIN: f64 = 0.25;
const RSS_FLOOR_KIB: usize = 16 << 10;

/// Resident set size from /proc/self/statm, in KiB.
fn rss_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// xorshift64*, enough to pick victims.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

fn worker(name: &str, restart: Restart) -> ChildSpec {
    ChildSpec::worker(name, "probe", otter::from_json(&json!({})))
        .name(name)
        .restart(restart)
}

/// Three pools, one per strategy, under a one_for_one root; transient workers among them
/// stay down after a clean exit until a sibling's restart brings them back.
fn tree() -> (SupervisorSpec, Vec<String>) {
    let mut names = Vec::new();
    let mut pool = |prefix: &str, strategy: Strategy, n: usize| {
        let mut s = SupervisorSpec::new(strategy)
            .name(format!("pool_{prefix}"))
            .intensity(1_000_000, Duration::from_secs(1));
        for i in 0..n {
            let name = format!("{prefix}{i}");
            let restart = if i % 3 == 2 {
                Restart::Transient
            } else {
                Restart::Permanent
            };
            s = s.child(worker(&name, restart));
            names.push(name);
        }
        ChildSpec::supervisor(format!("pool_{prefix}"), s)
    };
    let root = SupervisorSpec::new(Strategy::OneForOne)
        .name("root")
        .intensity(1_000_000, Duration::from_secs(1))
        .child(pool("a", Strategy::OneForOne, 8))
        .child(pool("b", Strategy::RestForOne, 5))
        .child(pool("c", Strategy::OneForAll, 4));
    (root, names)
}

#[derive(Default)]
struct Tally {
    crashes: AtomicU64,
    calls: AtomicU64,
    late: AtomicU64,
    slowest_us: AtomicU64,
    outcomes: std::sync::Mutex<BTreeMap<String, u64>>,
}

fn kind(r: &Result<otter::Term, CallError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(CallError::Exited(ExitReason::Error(_))) => "exited:error".into(),
        Err(CallError::Exited(r)) => format!("exited:{r}"),
        Err(e) => format!("{e:?}")
            .split(['(', ' '])
            .next()
            .unwrap_or("?")
            .to_lowercase(),
    }
}

/// Registered names against live processes' names: each must be exactly the other.
fn check_registry(node: &Node, when: &str) {
    let registered: BTreeSet<(String, u64)> = node
        .registered()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("pool_") && n != "root")
        .collect();
    let live: BTreeSet<(String, u64)> = node
        .processes()
        .into_iter()
        .filter_map(|p| Some((p.name?, p.pid)))
        .collect();
    assert_eq!(registered, live, "{when}: registry != live named processes");
}

/// Wait until no restart is under way: the live set stops changing.
async fn settle(node: &Node) {
    let mut last = node.registered();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = node.registered();
        if now == last {
            return;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak test: minutes long; run with `just soak`"]
async fn soak_random_crashes_under_calls_keep_registry_memory_and_tree_sound() {
    let secs: u64 = std::env::var("OTTER_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let duration = Duration::from_secs(secs);
    let node = node().await;
    let (spec, names) = tree();
    let names = Arc::new(names);
    let root = node.start_supervisor(spec).await.expect("tree starts");
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(AtomicBool::new(false));

    let mut clients = Vec::new();
    for c in 0..4u64 {
        let (node, names, tally, stop) = (node.clone(), names.clone(), tally.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (c + 1));
            let ping = otter::encode("ping").unwrap();
            while !stop.load(Ordering::Relaxed) {
                let name = &names[rng.below(names.len())];
                let before = node.whereis(name);
                let t0 = Instant::now();
                let r = node
                    .call_term(name.as_str(), ping.clone(), Some(CALL_TIMEOUT))
                    .await;
                let took = t0.elapsed();
                tally.calls.fetch_add(1, Ordering::Relaxed);
                tally
                    .slowest_us
                    .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                if took > CALL_TIMEOUT + SLACK {
                    tally.late.fetch_add(1, Ordering::Relaxed);
                }
                if matches!(r, Err(CallError::Timeout)) {
                    let after = node.whereis(name);
                    let alive = before.is_some_and(|p| node.is_alive(p));
                    println!(
                        "soak: call to {name} timed out after {took:?}: {before:?} then \
                         {after:?}, alive: {alive}"
                    );
                }
                *tally.outcomes.lock().unwrap().entry(kind(&r)).or_default() += 1;
                if r.is_err() {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let crasher = {
        let (node, names, tally, stop, pause) = (
            node.clone(),
            names.clone(),
            tally.clone(),
            stop.clone(),
            pause.clone(),
        );
        tokio::spawn(async move {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d);
            let trap = otter::encode("trap").unwrap();
            let normal = otter::encode(&json!({"stop": "normal"})).unwrap();
            while !stop.load(Ordering::Relaxed) {
                if pause.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let name = names[rng.below(names.len())].as_str();
                let Some(pid) = node.whereis(name) else {
                    tokio::task::yield_now().await;
                    continue;
                };
                match rng.below(10) {
                    0..=3 => {
                        let _ = node.call_term(pid, trap.clone(), Some(CALL_TIMEOUT)).await;
                    }
                    4..=6 => {
                        node.kill(pid);
                    }
                    7..=8 => {
                        node.exit(pid, ExitReason::Error("soak".into()));
                    }
                    _ => {
                        let _ = node
                            .call_term(pid, normal.clone(), Some(CALL_TIMEOUT))
                            .await;
                    }
                }
                tally.crashes.fetch_add(1, Ordering::Relaxed);
                if rng.below(4) == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };

    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Checkpoints: ten over the run; the first, after warm-up, sets the RSS baseline.
    let started = Instant::now();
    let mut baseline = 0;
    for k in 1..=10u32 {
        let at = duration * k / 10;
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        pause.store(true, Ordering::Relaxed);
        settle(&node).await;
        check_registry(&node, &format!("checkpoint {k}"));
        let rss = rss_kib();
        if k == 1 {
            baseline = rss;
        }
        println!(
            "soak checkpoint {k}: {:.0?} crashes {} calls {} rss {} KiB processes {}",
            started.elapsed(),
            tally.crashes.load(Ordering::Relaxed),
            tally.calls.load(Ordering::Relaxed),
            rss,
            node.process_count()
        );
        pause.store(false, Ordering::Relaxed);
    }
    stop.store(true, Ordering::Relaxed);
    crasher.await.unwrap();
    for c in clients {
        c.await.unwrap();
    }
    sampler.await.unwrap();
    settle(&node).await;
    check_registry(&node, "end");
    let end = rss_kib();

    // The tree is intact: every supervisor runs, every permanent worker runs under its name.
    assert!(
        root.is_alive() && !root.gave_up(),
        "the root supervisor exited"
    );
    let pools = root.which_children().await.unwrap();
    assert_eq!(pools.len(), 3);
    for pool in &pools {
        assert!(pool.pid.is_some(), "{} is down", pool.id);
        for w in &pool.children {
            let is_transient = w.id[1..].parse::<usize>().unwrap() % 3 == 2;
            if !is_transient {
                assert!(w.pid.is_some(), "permanent {} is down", w.id);
            }
            assert_eq!(node.whereis(&w.id), w.pid, "{} registered", w.id);
        }
    }

    let calls = tally.calls.load(Ordering::Relaxed);
    let outcomes = tally.outcomes.lock().unwrap().clone();
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "soak: {:.0?}, {} crashes, {} calls {:?}, slowest call {} ms, {} late; \
         RSS baseline {} KiB, peak {} KiB, end {} KiB",
        started.elapsed(),
        tally.crashes.load(Ordering::Relaxed),
        calls,
        outcomes,
        tally.slowest_us.load(Ordering::Relaxed) / 1000,
        tally.late.load(Ordering::Relaxed),
        baseline,
        peak,
        end
    );
    assert!(calls > 0 && outcomes.get("ok").copied().unwrap_or(0) > 0);
    assert_eq!(
        tally.late.load(Ordering::Relaxed),
        0,
        "calls returned later than timeout + slack"
    );
    let margin = ((baseline as f64 * RSS_MARGIN) as usize).max(RSS_FLOOR_KIB);
    assert!(
        end <= baseline + margin,
        "RSS {end} KiB at the end, baseline {baseline} KiB (margin {margin} KiB)"
    );
    root.stop().await;
    assert_eq!(node.process_count(), 0);
}
