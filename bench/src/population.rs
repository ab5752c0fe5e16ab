//! Many processes: what one costs to start and to keep, live or hibernated, and how many fit.
//! `spawn` is `beam_bench.erl`'s; `hibernate`, `max_live` and `max_hibernated` are Otter's
//! own.
//!
//! Processes are kept alive until the benchmark exits, as the Erlang harness keeps its pids.
//! Memory is the growth of this process's resident set (`VmRSS`) divided by the number of
//! processes, measured after one warm-up process has mapped the allocator's first regions.

use std::time::Instant;

use anyhow::{Context, ensure};
use otter::{Node, Pid, SpawnOptions};

use crate::metric::{mem_available, note, out, out_count, page_table_bytes, rss_bytes};
use crate::node::{COUNTER, counter, op, unit};

/// The server `spawn` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SpawnGuest {
    /// The pure counter (guests/counter), as `beam_bench.erl`'s.
    Counter,
    /// guests/wasi_probe, built for wasm32-wasip2: linked with WASI, granted nothing.
    WasiProbe,
}

/// `n` sequential spawns of `guest` (each returns after `init`, as `gen_server:start/3`);
/// time per spawn and resident memory per process.
pub(crate) async fn spawn(node: &Node, n: u64, guest: SpawnGuest) -> anyhow::Result<()> {
    let (module, suffix) = match guest {
        SpawnGuest::Counter => (COUNTER, ""),
        SpawnGuest::WasiProbe => (load_wasi_probe(node).await?, "_wasi"),
    };
    let start = || node.spawn(module, unit(), SpawnOptions::default());
    start().await?;
    let r0 = rss_bytes()?;
    let pt0 = page_table_bytes()?;
    let p0 = node.pool_residency();
    let t0 = Instant::now();
    let mut pids = Vec::with_capacity(n as usize);
    for _ in 0..n {
        pids.push(start().await?);
    }
    let elapsed = t0.elapsed();
    let r1 = rss_bytes()?;
    let pt1 = page_table_bytes()?;
    let p1 = node.pool_residency();
    out(
        &format!("gen_server_spawn{suffix}"),
        elapsed.as_secs_f64() * 1e6 / n as f64,
        "us/spawn",
    );
    out(
        &format!("gen_server_mem_rss{suffix}"),
        per_process(r0, r1, n),
        "bytes/proc",
    );
    // Where that memory is: the pools' pages, and the rest (host heap: store, instance,
    // task, mailbox).
    let memories = per_process(p0.memories as u64, p1.memories as u64, n);
    let stacks = per_process(p0.stacks as u64, p1.stacks as u64, n);
    out(
        &format!("otter_mem_linear_memory{suffix}"),
        memories,
        "bytes/proc",
    );
    out(
        &format!("otter_mem_fiber_stack{suffix}"),
        stacks,
        "bytes/proc",
    );
    out(
        &format!("otter_mem_host_heap{suffix}"),
        per_process(r0, r1, n) - memories - stacks,
        "bytes/proc",
    );
    // Not in the RSS: the page tables mapping those pages (eight small memory slots, or one
    // of `max_memory` bytes, to a page-table page).
    out(
        &format!("otter_mem_page_tables{suffix}"),
        per_process(pt0, pt1, n),
        "bytes/proc",
    );
    Ok(())
}

/// Load guests/wasi_probe (built by `cargo xtask guests`); its module name.
async fn load_wasi_probe(node: &Node) -> anyhow::Result<&'static str> {
    let path = xtask::wasi_guest_dir().join("wasi_probe.wasm");
    node.load_module("wasi_probe", &path)
        .await
        .with_context(|| format!("loading {} (run `cargo xtask guests`)", path.display()))?;
    Ok("wasi_probe")
}

/// Otter only: `n` counters spawned, then each hibernated (a call `hibernate`: it answers, then
/// drops its instance and keeps its state as bytes); resident memory per hibernated process,
/// and the time per hibernation (the call, until the process reports it hibernates).
pub(crate) async fn hibernate(node: &Node, n: u64) -> anyhow::Result<()> {
    counter(node).await?;
    let r0 = rss_bytes()?;
    let mut pids = Vec::with_capacity(n as usize);
    for _ in 0..n {
        pids.push(counter(node).await?);
    }
    let t0 = Instant::now();
    for &pid in &pids {
        hibernate_one(node, pid).await?;
    }
    wait_hibernating(node, &pids).await;
    let elapsed = t0.elapsed();
    let r1 = rss_bytes()?;
    out(
        "otter_hibernate",
        elapsed.as_secs_f64() * 1e6 / n as f64,
        "us/proc",
    );
    out(
        "otter_hibernated_mem_rss",
        per_process(r0, r1, n),
        "bytes/proc",
    );
    Ok(())
}

async fn hibernate_one(node: &Node, pid: Pid) -> anyhow::Result<()> {
    node.call_term(pid, op("hibernate"), None).await?;
    Ok(())
}

/// Hibernation follows the reply; wait until every process has dropped its instance.
async fn wait_hibernating(node: &Node, pids: &[Pid]) {
    for &pid in pids {
        while !node.is_hibernating(pid) {
            tokio::task::yield_now().await;
        }
    }
}

/// When [`max_processes`] stops spawning.
pub(crate) struct Limits {
    /// Stop after this many processes.
    pub(crate) cap: u64,
    /// Stop before the machine has less than this many bytes available, so that other work
    /// on it is not pushed out of memory.
    pub(crate) keep_free: u64,
}

/// Otter only: spawn counters (hibernating each at once if `hibernated`) until the cap, a
/// failed spawn, or the memory floor; prints how many were alive and the memory each took.
/// Every 100th is then called once, to show they all still answer.
pub(crate) async fn max_processes(
    node: &Node,
    limits: &Limits,
    hibernated: bool,
) -> anyhow::Result<()> {
    counter(node).await?;
    let r0 = rss_bytes()?;
    let t0 = Instant::now();
    let mut pids = Vec::new();
    let stopped = loop {
        if pids.len() as u64 >= limits.cap {
            break format!("reached the cap of {}", limits.cap);
        }
        // Reading /proc costs a few µs: look every thousand spawns.
        if pids.len() % 1000 == 0 && mem_available()? < limits.keep_free {
            break format!(
                "stopped to keep {} MiB of memory available",
                limits.keep_free >> 20
            );
        }
        match counter(node).await {
            Ok(pid) => {
                if hibernated {
                    hibernate_one(node, pid).await?;
                }
                pids.push(pid);
            }
            Err(e) => break format!("a spawn failed: {e:#}"),
        }
    };
    if hibernated {
        wait_hibernating(node, &pids).await;
    }
    let elapsed = t0.elapsed();
    let r1 = rss_bytes()?;
    let n = pids.len() as u64;
    ensure!(n > 0, "no process started: {stopped}");
    for &pid in pids.iter().step_by(100) {
        crate::node::count(node, pid).await?;
    }
    ensure!(
        node.process_count() as u64 == n + 1,
        "processes died while the others started"
    );
    let name = if hibernated { "hibernated" } else { "live" };
    note(&format!(
        "max_{name}: {stopped}; {n} processes in {elapsed:.2?}"
    ));
    out_count(&format!("otter_max_{name}_processes"), n, "processes");
    out(
        &format!("otter_max_{name}_mem_rss"),
        per_process(r0, r1, n),
        "bytes/proc",
    );
    Ok(())
}

fn per_process(before: u64, after: u64, n: u64) -> f64 {
    after.saturating_sub(before) as f64 / n as f64
}
