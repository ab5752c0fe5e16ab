//! The load generator for the chapter's OrderSink (guests/order_sink) on a real SQLite
//! file: N clients submit orders for a while, in a closed loop (as the Elixir seed's
//! bench does) or each at its share of a total rate, and the figures are accepted, busy
//! and flushed orders per second and the submit latency. At the end the sink is stopped
//! gracefully and the file is counted: every accepted order must be in it, once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use otter::{CallError, MailboxBound, ModuleGrants, Node, NodeConfig, Overflow, ProcessLimits};
use otter::{DirMode, ExitReason, SpawnOptions};
use serde::Serialize;

use crate::metric;

/// How the clients submit.
pub(crate) struct Load {
    pub(crate) clients: u64,
    pub(crate) duration: Duration,
    /// Orders per second in all, shared by the clients; `None`: each client submits again
    /// as soon as it has its answer.
    pub(crate) rate: Option<u64>,
    /// The sink's `flush_ms`.
    pub(crate) flush_ms: u32,
}

#[derive(Serialize)]
struct Submit<'a> {
    submit: Order<'a>,
}

#[derive(Serialize)]
struct Order<'a> {
    client: u64,
    seq: u64,
    item: &'a str,
    amount: i64,
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    accepted: u64,
    busy: u64,
    /// Every submit's latency, in nanoseconds.
    latencies: Vec<u64>,
}

pub(crate) async fn run(guests: &std::path::Path, load: &Load) -> anyhow::Result<()> {
    let db = std::env::temp_dir().join(format!("otter-bench-orders-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let result = measure(guests, load, &db).await;
    let _ = std::fs::remove_file(&db);
    result
}

async fn measure(guests: &std::path::Path, load: &Load, db: &PathBuf) -> anyhow::Result<()> {
    let mut config = NodeConfig::default();
    // The buffer of up to 100,000 orders lives in the guest's memory.
    config.engine().max_memory(64 << 20);
    let node = Node::new(config)?;
    let mut grants = ModuleGrants::default();
    grants.database("orders", db, DirMode::ReadWrite);
    node.grant("order_sink", grants)?;
    let path = guests.join("order_sink.wasm");
    node.load_module("order_sink", &path)
        .await
        .with_context(|| format!("loading {} (run `cargo xtask guests`)", path.display()))?;
    let args = otter::from_json(&serde_json::json!({ "flush_ms": load.flush_ms }));
    let limits = ProcessLimits::default().mailbox(MailboxBound::new(10_000, Overflow::Reject));
    let sink = node
        .spawn(
            "order_sink",
            args,
            SpawnOptions::default().name("sink").limits(limits),
        )
        .await?;

    let t0 = Instant::now();
    let deadline = t0 + load.duration;
    let tasks: Vec<_> = (0..load.clients)
        .map(|client| {
            let node = node.clone();
            let pace = load
                .rate
                .map(|r| Duration::from_secs_f64(load.clients as f64 / r.max(1) as f64));
            tokio::spawn(async move { submit_loop(&node, client, deadline, pace).await })
        })
        .collect();
    let mut seen = Seen::default();
    for t in tasks {
        let s = t.await??;
        seen.accepted += s.accepted;
        seen.busy += s.busy;
        seen.latencies.extend(s.latencies);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let stats: serde_json::Value = node.call(sink, &"stats").await?;
    let flushed = stats["stats"]["flushed"].as_u64().unwrap_or(0);
    node.stop(sink, ExitReason::Shutdown, None).await?;
    let rows: i64 =
        rusqlite::Connection::open(db)?
            .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))?;
    let rows = rows as u64;

    seen.latencies.sort_unstable();
    let pct = |p: f64| {
        let l = &seen.latencies;
        if l.is_empty() {
            return 0.0;
        }
        l[((l.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
    };
    let c = load.clients;
    metric::note(&format!(
        "order_sink: {c} client(s), {:.1} s, {}, flush_ms {}",
        elapsed,
        load.rate
            .map_or("unpaced".into(), |r| format!("{r} orders/s offered")),
        load.flush_ms
    ));
    metric::out(
        &format!("order_sink_accepted_p{c}"),
        seen.accepted as f64 / elapsed,
        "orders/s",
    );
    metric::out(
        &format!("order_sink_busy_p{c}"),
        seen.busy as f64 / elapsed,
        "replies/s",
    );
    metric::out(
        &format!("order_sink_flushed_p{c}"),
        flushed as f64 / elapsed,
        "orders/s",
    );
    metric::out(&format!("order_sink_submit_p50_p{c}"), pct(0.50), "us");
    metric::out(&format!("order_sink_submit_p99_p{c}"), pct(0.99), "us");
    let flushes = stats["stats"]["flushes"].as_u64().unwrap_or(0).max(1) as f64;
    metric::out(
        &format!("order_sink_mean_flush_size_p{c}"),
        flushed as f64 / flushes,
        "orders",
    );
    let flush_us = stats["stats"]["flush_us"].as_u64().unwrap_or(0) as f64;
    metric::out(
        &format!("order_sink_mean_flush_duration_p{c}"),
        flush_us / flushes / 1000.0,
        "ms",
    );
    metric::out_count(
        &format!("order_sink_flushes_p{c}"),
        stats["stats"]["flushes"].as_u64().unwrap_or(0),
        "flushes",
    );
    metric::out_count(
        &format!("order_sink_lost_after_stop_p{c}"),
        seen.accepted.saturating_sub(rows),
        "orders",
    );
    if rows != seen.accepted {
        bail!(
            "{} orders accepted, {rows} in the database after the stop",
            seen.accepted
        );
    }
    Ok(())
}

async fn submit_loop(
    node: &Node,
    client: u64,
    deadline: Instant,
    pace: Option<Duration>,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    let mut next = Instant::now();
    let mut seq = 0;
    while Instant::now() < deadline {
        if let Some(p) = pace {
            next += p;
            tokio::time::sleep_until(next.into()).await;
        }
        seq += 1;
        let request = otter::encode(&Submit {
            submit: Order {
                client,
                seq,
                item: "widget",
                amount: 350,
            },
        })?;
        let t = Instant::now();
        let answer = node
            .call_term("sink", request, Some(Duration::from_secs(5)))
            .await;
        seen.latencies.push(t.elapsed().as_nanos() as u64);
        match answer {
            Ok(reply) => match otter::decode::<String>(&reply)?.as_str() {
                "ok" => seen.accepted += 1,
                "busy" => seen.busy += 1,
                other => bail!("submit answered {other}"),
            },
            Err(CallError::Busy) => seen.busy += 1,
            Err(e) => bail!("submit failed: {e}"),
        }
    }
    Ok(seen)
}
