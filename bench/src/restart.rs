//! Supervisor restart latency: `restart` and `restart_batched`, as `beam_bench.erl` and
//! `bench_sup.erl` measure them.
//!
//! The supervisor is `one_for_one` with an intensity no benchmark reaches (100,000,000 in 1 s,
//! as `bench_sup.erl`) and one permanent counter registered as `bench_child`. A restart is
//! timed from the kill of the registered child until `whereis` finds a new pid, polling with
//! a yield in between, as `erlang:yield/0` in the Erlang harness: the client goes to the back
//! of its worker's run queue ([`yield_to_the_back`]). No tracing subscriber is
//! installed, so the supervisor's restart log costs nothing, as the Erlang harness turns its
//! logger off.

use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use otter::{ChildSpec, Node, Strategy, Supervisor, SupervisorSpec};

use crate::metric::out;
use crate::node::{COUNTER, unit};

const NAME: &str = "bench_child";

/// Restarts before the timed ones, as the Erlang harness's warm-up.
const WARMUP: u64 = 100;

/// A restart slower than this is a hang, not a figure.
const GIVE_UP: Duration = Duration::from_secs(5);

async fn start_sup(node: &Node) -> anyhow::Result<Supervisor> {
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(100_000_000, Duration::from_secs(1))
        .child(ChildSpec::worker(NAME, COUNTER, unit()).name(NAME));
    Ok(node.start_supervisor(spec).await?)
}

/// Kill the registered child `k` times, each time waiting for its successor; returns each
/// restart's latency.
async fn restart_loop(node: &Node, k: u64) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(k as usize);
    for _ in 0..k {
        let old = node.whereis(NAME).context("the child is not registered")?;
        let t0 = Instant::now();
        node.kill(old);
        loop {
            match node.whereis(NAME) {
                Some(new) if new != old => break,
                _ if t0.elapsed() > GIVE_UP => bail!("the child <{old}> was not restarted"),
                _ => yield_to_the_back().await,
            }
        }
        latencies.push(t0.elapsed());
    }
    Ok(latencies)
}

fn mean_us(latencies: &[Duration]) -> f64 {
    latencies.iter().sum::<Duration>().as_secs_f64() * 1e6 / latencies.len() as f64
}

/// Mean restart latency over `n` restarts of one supervisor: a crash loop.
///
/// Otter only: the mean of the first and of the last tenth of those restarts, to show
/// whether a restart gets dearer as the loop goes on (OTP's does: its supervisor walks the
/// list of restarts within the intensity period on every restart).
pub(crate) async fn restart(node: &Node, n: u64) -> anyhow::Result<()> {
    let sup = start_sup(node).await?;
    restart_loop(node, WARMUP).await?;
    let latencies = restart_loop(node, n).await?;
    sup.stop().await;
    out(
        "supervisor_restart_latency",
        mean_us(&latencies),
        "us/restart",
    );
    let tenth = latencies.len() / 10;
    if tenth > 0 {
        out(
            "otter_restart_latency_first_tenth",
            mean_us(&latencies[..tenth]),
            "us/restart",
        );
        out(
            "otter_restart_latency_last_tenth",
            mean_us(&latencies[latencies.len() - tenth..]),
            "us/restart",
        );
    }
    Ok(())
}

/// As [`restart`], but a fresh supervisor (started and stopped outside the timing) every `b`
/// restarts, which keeps OTP's restart bookkeeping short: the bare restart path.
pub(crate) async fn restart_batched(node: &Node, n: u64, b: u64) -> anyhow::Result<()> {
    anyhow::ensure!(b > 0, "the batch size must be positive");
    let sup = start_sup(node).await?;
    restart_loop(node, WARMUP).await?;
    sup.stop().await;
    let mut latencies = Vec::with_capacity(n as usize);
    let mut left = n;
    while left > 0 {
        let k = left.min(b);
        let sup = start_sup(node).await?;
        latencies.extend(restart_loop(node, k).await?);
        sup.stop().await;
        left -= k;
    }
    out(
        "supervisor_restart_latency_batched",
        mean_us(&latencies),
        "us/restart",
    );
    Ok(())
}

/// Go to the back of the worker's run queue and come back, as `erlang:yield/0` does. Not
/// `tokio::task::yield_now`, which defers its wake until the worker next polls its I/O
/// driver: a system call per poll of `whereis`, which Erlang's loop does not make (0.6–0.7 µs
/// of a restart measured with it on the 2-core VM).
async fn yield_to_the_back() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            return Poll::Ready(());
        }
        // Woken from its own poll, a tokio task goes to the back of its worker's queue.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}
