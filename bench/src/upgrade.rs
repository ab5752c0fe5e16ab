//! Otter only: hot code upgrade, `kv` (guests/kv) to version 2 (guests/kv_v2) and back, a
//! small state each.
//!
//! - `otter_upgrade_pause`: what a caller sees of one process's upgrade. A client calls the
//!   server without a break while it is upgraded and downgraded `rounds` times; each upgrade
//!   holds up one call (the one that arrives while the process is suspended between its
//!   old and its new instance), so the `rounds` longest calls are the pauses: their median
//!   and maximum, a call's own latency included.
//! - `otter_upgrade_one`: a whole `Node::upgrade` of a module with one process, loading
//!   the new code from the compile cache included.
//! - `otter_upgrade_n`: a whole `Node::upgrade` of a module with `n` live processes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use otter::{Node, SpawnOptions, UpgradeOptions};

use crate::metric::out;
use crate::node::unit;

pub(crate) async fn upgrade(node: &Node, guests: &Path, n: u64, rounds: u64) -> anyhow::Result<()> {
    let versions = [guests.join("kv_v2.wasm"), guests.join("kv.wasm")];
    node.load_module("kv", &versions[1])
        .await
        .context("loading kv (run `cargo xtask guests`)")?;
    let pid = node.spawn("kv", unit(), SpawnOptions::default()).await?;
    // Both versions into the compile cache, untimed.
    for v in &versions {
        node.upgrade("kv", v, UpgradeOptions::default()).await?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (node, stop) = (node.clone(), stop.clone());
        let request = otter::encode(&"size").expect("a string encodes");
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                node.call_term(pid, request.clone(), None).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        })
    };
    let mut whole = Vec::with_capacity(rounds as usize);
    for i in 0..rounds {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let t = Instant::now();
        node.upgrade("kv", &versions[(i % 2) as usize], UpgradeOptions::default())
            .await?;
        whole.push(t.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = client.await??;
    latencies.sort_unstable_by(|a, b| b.cmp(a));
    let mut pauses: Vec<Duration> = latencies.into_iter().take(rounds as usize).collect();
    pauses.sort_unstable();
    whole.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    out(
        "otter_upgrade_pause_median",
        us(pauses[pauses.len() / 2]),
        "us",
    );
    out(
        "otter_upgrade_pause_max",
        us(*pauses.last().expect("rounds > 0")),
        "us",
    );
    out("otter_upgrade_one", us(whole[whole.len() / 2]), "us");

    for _ in 1..n {
        node.spawn("kv", unit(), SpawnOptions::default()).await?;
    }
    let next = &versions[(rounds % 2) as usize];
    let t = Instant::now();
    let report = node.upgrade("kv", next, UpgradeOptions::default()).await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(
        report.upgraded.len() as u64 == n,
        "upgraded {} of {n}",
        report.upgraded.len()
    );
    out("otter_upgrade_n", elapsed.as_secs_f64() * 1e3, "ms");
    out(
        "otter_upgrade_per_process",
        us(elapsed) / n as f64,
        "us/proc",
    );
    Ok(())
}
