//! Monitors of one process: `monitors`, what a demonitor costs as a process's monitors pile up.

use std::time::Instant;

use otter::{ExitReason, Node};

use crate::metric::out;
use crate::node::counter;

/// One process of the embedding program holds `n` monitors of one counter at once, then
/// removes them, oldest first: the mean time of one demonitor (`otter_demonitor_among_many`).
/// Then `n` times a monitor and its demonitor with no other held
/// (`otter_monitor_demonitor`). A demonitor removes its monitor from the monitored process's
/// watchers, so the first figure is what a process watched by many pays for each watcher
/// that leaves.
pub(crate) async fn monitors(node: &Node, n: u64) -> anyhow::Result<()> {
    let pid = counter(node).await?;
    let me = node.embedded_process();
    let mut refs = Vec::new();
    for _ in 0..n {
        refs.push(me.monitor(pid)?);
    }
    let t0 = Instant::now();
    for mref in refs {
        me.demonitor(mref)?;
    }
    per(t0, n, "otter_demonitor_among_many", "ns/demonitor");

    let t0 = Instant::now();
    for _ in 0..n {
        let mref = me.monitor(pid)?;
        me.demonitor(mref)?;
    }
    per(t0, n, "otter_monitor_demonitor", "ns/cycle");
    me.close(ExitReason::Normal);
    Ok(())
}

/// Print `name`: the time since `t0` per one of `n`.
fn per(t0: Instant, n: u64, name: &str, unit: &str) {
    out(name, t0.elapsed().as_nanos() as f64 / n as f64, unit);
}
