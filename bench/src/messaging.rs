//! Calls and casts to one counter: `call`, `cast`, `many_to_one` (and its Otter-only
//! variant `many_to_one_tasks`), each the same measurement as `beam_bench.erl`'s.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use otter::call_floor::BareGuest;
use otter::{Node, Pid, SpawnOptions};
use serde::Serialize;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::metric::{out, out_per_call, rss_bytes};
use crate::node::{CALLER, COUNTER, count, counter, op, unit};

/// Calls (or casts) made before the timed ones, as the Erlang harness's `?WARMUP`.
const WARMUP: u64 = 10_000;

/// One caller, `n` sequential calls `inc` to an unlinked counter, warm-up excluded.
///
/// `gen_server_call_latency` uses the typed API a Rust client writes, `node.call(pid,
/// &"inc")`: it encodes the request, waits up to 5 s (OTP's default timeout, which
/// `gen_server:call/2` also arms) and decodes the reply. `otter_call_term_latency` is the
/// same loop through `call_term` with the request encoded once, no timeout and the reply left
/// as CBOR: the runtime's own share of a call. Then the floor under both, on a counter
/// instance without a process (`otter::call_floor`): `otter_call_floor`, its `handle-call`
/// entered directly `n` times (wasmtime's component call and the guest's own work), and
/// `otter_entry_floor`, its `vsn` (entering the guest and lifting a short string).
pub(crate) async fn call(node: &Node, guests: &Path, n: u64) -> anyhow::Result<()> {
    let pid = counter(node).await?;
    call_loop(node, pid, WARMUP).await?;
    let t0 = Instant::now();
    call_loop(node, pid, n).await?;
    let elapsed = t0.elapsed();
    per_call(node, pid, n, elapsed, "gen_server_call_latency").await?;

    let inc = op("inc");
    let t0 = Instant::now();
    for _ in 0..n {
        node.call_term(pid, inc.clone(), None).await?;
    }
    out_per_call("otter_call_term_latency", t0.elapsed(), n);

    let counter = guests.join(format!("{COUNTER}.wasm"));
    let mut bare = BareGuest::start(&counter, &unit()).await?;
    for _ in 0..WARMUP {
        bare.handle_call(&inc).await?;
    }
    let t0 = Instant::now();
    for _ in 0..n {
        bare.handle_call(&inc).await?;
    }
    out_per_call("otter_call_floor", t0.elapsed(), n);
    let t0 = Instant::now();
    for _ in 0..n {
        bare.vsn().await?;
    }
    out_per_call("otter_entry_floor", t0.elapsed(), n);
    Ok(())
}

async fn call_loop(node: &Node, pid: Pid, n: u64) -> anyhow::Result<()> {
    for _ in 0..n {
        let _: u64 = node.call(pid, "inc").await?;
    }
    Ok(())
}

/// One producer, `n` casts `inc`, timed until a final call `get` returns (every cast handled).
/// The request is encoded once and cloned per cast, as a producer sending one message
/// repeatedly would. Then, untimed, the same burst to a second counter: how much the resident
/// set grows for it (`otter_cast_second_burst_rss`) shows what the first burst left held.
pub(crate) async fn cast(node: &Node, n: u64) -> anyhow::Result<()> {
    let pid = counter(node).await?;
    let inc = op("inc");
    for _ in 0..WARMUP {
        node.cast(pid, inc.clone());
    }
    ensure!(count(node, pid).await? == WARMUP, "the counter lost casts");
    let t0 = Instant::now();
    for _ in 0..n {
        node.cast(pid, inc.clone());
    }
    let total = count(node, pid).await?;
    let elapsed = t0.elapsed();
    ensure!(total == n + WARMUP, "the counter lost casts");
    out(
        "gen_server_cast_throughput",
        n as f64 / elapsed.as_secs_f64(),
        "msgs/s",
    );

    // What the burst left behind, as the next burst finds it: the same burst to a second
    // counter grows the resident set only by what the first one's process still holds
    // back from the allocator (its queue's buffers, if it kept them).
    let second = counter(node).await?;
    let rss_before = rss_bytes()?;
    for _ in 0..n {
        node.cast(second, inc.clone());
    }
    ensure!(count(node, second).await? == n, "the counter lost casts");
    out(
        "otter_cast_second_burst_rss",
        rss_bytes()?.saturating_sub(rss_before) as f64,
        "bytes",
    );
    Ok(())
}

/// The caller guest's request: make `n` calls `inc` to `to`.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum CallerReq {
    Run { to: Pid, n: u64 },
    ReadClock { n: u64 },
    Yield { n: u64 },
}

/// `p` client processes each making `n` calls `inc` to one counter; calls per second from
/// "go" until the last client is done.
///
/// As in the Erlang harness the clients are processes: `p` caller guests (guests/caller),
/// started before the clock starts. "Go" is one call `run` to each, sent from `p` tokio tasks
/// at once; inside it the guest makes its `n` calls (guest → guest, each suspending only that
/// client's fiber) and then answers.
pub(crate) async fn many_to_one(node: &Node, p: u64, n: u64) -> anyhow::Result<()> {
    let server = counter(node).await?;
    let mut clients = Vec::with_capacity(p as usize);
    for _ in 0..p {
        clients.push(node.spawn(CALLER, unit(), SpawnOptions::default()).await?);
    }
    let run = otter::encode(&CallerReq::Run { to: server, n })?;
    let t0 = Instant::now();
    let mut running = JoinSet::new();
    for client in clients {
        let (node, run) = (node.clone(), run.clone());
        running.spawn(async move { node.call_term(client, run, None).await });
    }
    while let Some(done) = running.join_next().await {
        done.context("a client task")?.context("a client")?;
    }
    let elapsed = t0.elapsed();
    ensure!(
        count(node, server).await? == p * n,
        "the counter lost calls"
    );
    out(
        "gen_server_many_to_one",
        (p * n) as f64 / elapsed.as_secs_f64(),
        "calls/s",
    );
    Ok(())
}

/// Otter only: one caller guest makes `n` calls `inc` to a counter inside one callback
/// (guest → guest, the calling fiber suspended on each); time per call. The same as
/// `many_to_one` with one client, as a latency: what a server pays to call another.
///
/// Then what such a call is made of, by the same guest inside one callback, `n` times each:
/// `otter_guest_import_floor`, the cheapest import (`clock.monotonic-time`: into the host
/// and back), and `otter_guest_yield_floor`, an import that suspends the guest's fiber and
/// is resumed by the process's next poll (`clock.sleep(0)`), as a call's is by its reply.
pub(crate) async fn guest_call(node: &Node, n: u64) -> anyhow::Result<()> {
    let server = counter(node).await?;
    let client = node.spawn(CALLER, unit(), SpawnOptions::default()).await?;
    let warm = otter::encode(&CallerReq::Run {
        to: server,
        n: WARMUP,
    })?;
    node.call_term(client, warm, None).await?;
    let run = otter::encode(&CallerReq::Run { to: server, n })?;
    let t0 = Instant::now();
    node.call_term(client, run, None).await?;
    let elapsed = t0.elapsed();
    per_call(node, server, n, elapsed, "otter_guest_call_latency").await?;
    for (req, metric) in [
        (CallerReq::ReadClock { n }, "otter_guest_import_floor"),
        (CallerReq::Yield { n }, "otter_guest_yield_floor"),
    ] {
        let req = otter::encode(&req)?;
        let t0 = Instant::now();
        node.call_term(client, req, None).await?;
        out_per_call(metric, t0.elapsed(), n);
    }
    Ok(())
}

/// Print `metric`, the time of one of `n` calls that took `elapsed`, once the counter `pid`
/// shows it got them all (and the warm-up's).
async fn per_call(
    node: &Node,
    pid: Pid,
    n: u64,
    elapsed: std::time::Duration,
    metric: &str,
) -> anyhow::Result<()> {
    ensure!(
        count(node, pid).await? == n + WARMUP,
        "the counter lost calls"
    );
    out_per_call(metric, elapsed, n);
    Ok(())
}

/// Otter only: as [`many_to_one`], but the `p` clients are tokio tasks calling through the
/// [`Node`] API (`node.call(server, &"inc")`) rather than guest processes. All wait at a
/// barrier, which stands for Erlang's `ready`/`go` messages.
pub(crate) async fn many_to_one_tasks(node: &Node, p: u64, n: u64) -> anyhow::Result<()> {
    let server = counter(node).await?;
    let go = Arc::new(Barrier::new(p as usize + 1));
    let mut running = JoinSet::new();
    for _ in 0..p {
        let (node, go) = (node.clone(), go.clone());
        running.spawn(async move {
            go.wait().await;
            call_loop(&node, server, n).await
        });
    }
    go.wait().await;
    let t0 = Instant::now();
    while let Some(done) = running.join_next().await {
        done.context("a client task")??;
    }
    let elapsed = t0.elapsed();
    ensure!(
        count(node, server).await? == p * n,
        "the counter lost calls"
    );
    out(
        "otter_many_to_one_tasks",
        (p * n) as f64 / elapsed.as_secs_f64(),
        "calls/s",
    );
    Ok(())
}
