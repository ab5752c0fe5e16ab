//! Otter only: the chapter's KVWithETS under load, as the Elixir seed measures it
//! (`../seed-elixir`, section `ets`): R reader processes read the shared table in a loop
//! while one writer puts through the server, for a fixed time.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use otter::{Node, Pid, SpawnOptions};
use serde::Serialize;

use crate::metric;

/// The server and reader module (guests/kv_ets).
const KV_ETS: &str = "kv_ets";

/// How many keys the table holds, as the seed's 10,000.
const KEYS: u32 = 10_000;

/// The kv_ets requests the benchmark makes.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Request {
    Put(String, String),
    StartReading { keys: u32 },
    StopReading,
}

/// For each reader count: reads/s summed over the readers, and the writer's writes/s.
pub(crate) async fn kv_ets(
    node: &Node,
    guests: &Path,
    readers: &[u64],
    duration: Duration,
) -> anyhow::Result<()> {
    let path = guests.join(format!("{KV_ETS}.wasm"));
    node.load_module(KV_ETS, &path)
        .await
        .with_context(|| format!("loading {} (run `cargo xtask guests`)", path.display()))?;
    for &r in readers {
        let (reads, writes) = round(node, r, duration).await?;
        metric::out(&format!("otter_kv_ets_reads_{r}_readers"), reads, "reads/s");
        metric::out(
            &format!("otter_kv_ets_writes_{r}_readers"),
            writes,
            "writes/s",
        );
    }
    Ok(())
}

async fn round(node: &Node, readers: u64, duration: Duration) -> anyhow::Result<(f64, f64)> {
    let server = node
        .spawn(
            KV_ETS,
            otter::encode(&())?,
            SpawnOptions::default().name(KV_ETS),
        )
        .await?;
    for k in 0..KEYS {
        put(node, k).await?;
    }
    let reader_args = otter::encode(&ReaderArgs { role: "reader" })?;
    let mut pids: Vec<(Pid, Instant)> = Vec::new();
    for _ in 0..readers {
        let pid = node
            .spawn(KV_ETS, reader_args.clone(), SpawnOptions::default())
            .await?;
        pids.push((pid, Instant::now()));
    }
    for (pid, started) in &mut pids {
        let _: serde::de::IgnoredAny = node
            .call(*pid, &Request::StartReading { keys: KEYS })
            .await?;
        *started = Instant::now();
    }
    let writer = {
        let node = node.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut writes: u64 = 0;
            while start.elapsed() < duration {
                put(
                    &node,
                    u32::try_from(writes * 7 % u64::from(KEYS)).unwrap_or(0),
                )
                .await?;
                writes += 1;
            }
            anyhow::Ok(writes as f64 / start.elapsed().as_secs_f64())
        })
    };
    tokio::time::sleep(duration).await;
    let mut reads = 0.0;
    for (pid, started) in pids {
        let n: u64 = node.call(pid, &Request::StopReading).await?;
        reads += n as f64 / started.elapsed().as_secs_f64();
        node.kill(pid);
    }
    let writes = writer.await??;
    node.kill(server);
    node.wait_exit(server).await;
    Ok((reads, writes))
}

async fn put(node: &Node, k: u32) -> anyhow::Result<()> {
    let _: serde::de::IgnoredAny = node
        .call(KV_ETS, &Request::Put(format!("k{k}"), k.to_string()))
        .await?;
    Ok(())
}

/// The start args of a kv_ets process in the reader role.
#[derive(Serialize)]
struct ReaderArgs {
    role: &'static str,
}
