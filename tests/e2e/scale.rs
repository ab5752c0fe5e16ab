//! Many live processes under the default kernel limits: process stacks and memories come from
//! shared regions, so processes do not cost kernel memory maps (`vm.max_map_count` is 65530 by
//! default, and we do not raise it).

use std::time::{Duration, Instant};

use otter::{Node, Pid, SpawnOptions};
use serde_json::{Value, json};

use crate::support::*;

/// The kernel's default `vm.max_map_count`.
const DEFAULT_MAX_MAP_COUNT: usize = 65530;

/// How many memory maps this test process has.
fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .count()
}

async fn spawn_echoes(node: &Node, n: usize) -> Vec<Pid> {
    let mut pids = Vec::with_capacity(n);
    for i in 0..n {
        let pid = node
            .spawn("echo", otter::encode(&()).unwrap(), SpawnOptions::default())
            .await
            .unwrap_or_else(|e| panic!("echo #{i} does not start: {e}"));
        pids.push(pid);
    }
    pids
}

/// Ping every `step`-th process; each answers its first ping.
async fn ping_sample(node: &Node, pids: &[Pid], step: usize) {
    for &pid in pids.iter().step_by(step) {
        let pong: Value = node.call(pid, &json!("ping")).await.unwrap();
        assert_eq!(pong, json!({"pong": 1}), "echo {pid}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_share_memory_maps_and_reuse_released_slots() {
    const N: usize = 2000;
    let node = node().await;
    // The first process maps the first chunks; count from there.
    let first = spawn_echoes(&node, 1).await;
    let before = map_count();
    let pids = spawn_echoes(&node, N).await;
    ping_sample(&node, &pids, 1).await;
    let grown = map_count().saturating_sub(before);
    // One map per process (or more) would be N; other tests running beside this one add a few.
    assert!(
        grown < N / 4,
        "{N} processes added {grown} memory maps; they should share a handful"
    );
    for &pid in &pids {
        node.kill(pid);
    }
    for &pid in &pids {
        node.wait_exit(pid).await;
    }
    // Their stacks and memories are reused rather than mapped anew.
    let before_again = map_count();
    let again = spawn_echoes(&node, N).await;
    ping_sample(&node, &again, 1).await;
    let regrown = map_count().saturating_sub(before_again);
    assert!(
        regrown < N / 4,
        "{N} processes spawned after {N} exited added {regrown} memory maps"
    );
    assert!(first.iter().chain(&again).all(|&p| node.is_alive(p)));
}

/// The design's bar: 100,000 live processes under the default `vm.max_map_count`.
/// Run with `cargo test --test e2e -- --ignored hundred_thousand --nocapture` to see the
/// figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spawns 100,000 processes: slow in debug builds, and needs ~5 GiB of RAM"]
async fn hundred_thousand_processes_live_under_default_map_count() {
    const N: usize = 100_000;
    let node = node().await;
    // Warm up: the first process maps the first chunks and compiles nothing new after.
    let warm = spawn_echoes(&node, 1).await;
    ping_sample(&node, &warm, 1).await;
    let (maps_before, rss_before) = (map_count(), rss_kib());

    let started = Instant::now();
    let pids = spawn_echoes(&node, N).await;
    let spawn_time = started.elapsed();
    let (maps_spawned, rss_spawned) = (map_count(), rss_kib());

    let started = Instant::now();
    ping_sample(&node, &pids, 100).await;
    let call_time = started.elapsed();
    let (maps_called, rss_called) = (map_count(), rss_kib());

    let per_process = |rss: usize| rss.saturating_sub(rss_before) as f64 / N as f64;
    // Kernel memory that RSS does not show: the page tables (guard pages live there).
    let pte = |status: &str| -> usize {
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmPTE:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    println!(
        "page tables {} KiB after the calls",
        pte(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
    );
    println!(
        "{N} echo processes: spawn {:.1} µs each ({:.2?} in all); maps {maps_before} -> \
         {maps_spawned} -> {maps_called} (limit {DEFAULT_MAX_MAP_COUNT}); RSS {rss_before} KiB \
         -> {rss_spawned} KiB after spawn ({:.1} KiB per process) -> {rss_called} KiB after \
         calling {} of them ({:.1} KiB per process); {:.1} µs per sampled call",
        spawn_time.as_secs_f64() * 1e6 / N as f64,
        spawn_time,
        per_process(rss_spawned),
        N / 100,
        per_process(rss_called),
        call_time.as_secs_f64() * 1e6 / (N / 100) as f64,
    );

    assert_eq!(node.process_count(), N + 1);
    let dead = pids.iter().filter(|&&p| !node.is_alive(p)).count();
    assert_eq!(dead, 0, "{dead} of {N} processes died");
    assert!(
        maps_called < DEFAULT_MAX_MAP_COUNT,
        "{maps_called} memory maps: over the default vm.max_map_count"
    );

    let started = Instant::now();
    for &pid in &pids {
        node.kill(pid);
    }
    for &pid in &pids {
        tokio::time::timeout(Duration::from_secs(10), node.wait_exit(pid))
            .await
            .expect("killed processes exit");
    }
    println!(
        "killed all in {:.2?}; RSS now {} KiB, maps {}",
        started.elapsed(),
        rss_kib(),
        map_count()
    );
}
