//! Micro-benchmarks of the runtime's hot paths with a real wasm guest, the trivial counter
//! the Erlang baseline uses too: a call round trip from Rust, a call from one guest to
//! another inside a callback, casts drained by a final call, and spawning a server.
//!
//! `cargo bench -p otter-host --bench runtime` (guests are built first).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use otter::{Node, SpawnOptions};

/// The allocator the `otter` binary uses (see src/main.rs).
#[global_allocator]
static GLOBAL: otter::allocator::Allocator = otter::allocator::Allocator;

/// The runtime `otter run` uses (see `otter::runtime`), with 2 workers.
fn runtime() -> tokio::runtime::Runtime {
    otter::runtime::builder(Some(2))
        .build()
        .expect("tokio runtime")
}

/// Run `f` as a task on the runtime's workers, as a process's client would be, rather than on
/// the benchmark's own thread (which would add a cross-thread wake-up to every message).
fn on_worker<F: Future<Output = Duration> + Send + 'static>(
    rt: &tokio::runtime::Runtime,
    f: F,
) -> Duration {
    rt.block_on(rt.spawn(f)).expect("benchmark task")
}

fn node(rt: &tokio::runtime::Runtime) -> Node {
    let dir = xtask::build_guests().expect("build guests");
    rt.block_on(async {
        let node = Node::new(Default::default()).expect("node");
        node.load_module("counter", dir.join("counter.wasm"))
            .await
            .expect("load counter");
        node.load_module("caller", dir.join("caller.wasm"))
            .await
            .expect("load caller");
        node
    })
}

fn unit() -> otter::Term {
    otter::encode(&()).expect("unit")
}

fn call_round_trip(c: &mut Criterion) {
    call_round_trip_on(c, "call_round_trip", runtime());
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    call_round_trip_on(c, "call_round_trip/current_thread", single);
}

fn call_round_trip_on(c: &mut Criterion, name: &str, rt: tokio::runtime::Runtime) {
    let node = node(&rt);
    let pid = rt
        .block_on(node.spawn("counter", unit(), SpawnOptions::default()))
        .expect("spawn");
    let ping = otter::encode("inc").expect("encode");
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let (node, ping) = (node.clone(), ping.clone());
            on_worker(&rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    node.call_term(pid, ping.clone(), None).await.expect("call");
                }
                start.elapsed()
            })
        })
    });
}

/// One guest calling another from inside its callback (`caller` making `n` calls `inc` to
/// `counter`): the time per call, with the one outer call that starts the run spread over
/// them.
fn guest_to_guest_call(c: &mut Criterion) {
    let rt = runtime();
    let node = node(&rt);
    let counter = rt
        .block_on(node.spawn("counter", unit(), SpawnOptions::default()))
        .expect("spawn counter");
    let caller = rt
        .block_on(node.spawn("caller", unit(), SpawnOptions::default()))
        .expect("spawn caller");
    c.bench_function("guest_to_guest_call", |b| {
        b.iter_custom(|iters| {
            let node = node.clone();
            let run = otter::from_json(&serde_json::json!({"run": {"to": counter, "n": iters}}));
            on_worker(&rt, async move {
                let start = Instant::now();
                node.call_term(caller, run, None).await.expect("run");
                start.elapsed()
            })
        })
    });
}

fn cast_throughput(c: &mut Criterion) {
    let rt = runtime();
    let node = node(&rt);
    let pid = rt
        .block_on(node.spawn("counter", unit(), SpawnOptions::default()))
        .expect("spawn");
    let cast = otter::encode("inc").expect("encode");
    let count = otter::encode("get").expect("encode");
    let mut group = c.benchmark_group("cast");
    group.throughput(criterion::Throughput::Elements(1));
    group.bench_function("cast_then_sync_call", |b| {
        b.iter_custom(|iters| {
            let (node, cast, count) = (node.clone(), cast.clone(), count.clone());
            on_worker(&rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    node.cast(pid, cast.clone());
                }
                node.call_term(pid, count.clone(), None)
                    .await
                    .expect("sync");
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn spawn(c: &mut Criterion) {
    let rt = runtime();
    let node = node(&rt);
    c.bench_function("spawn_until_init_returns", |b| {
        b.iter_custom(|iters| {
            let node = node.clone();
            on_worker(&rt, async move {
                let mut pids = Vec::with_capacity(iters as usize);
                let start = Instant::now();
                for _ in 0..iters {
                    pids.push(
                        node.spawn("counter", unit(), SpawnOptions::default())
                            .await
                            .expect("spawn"),
                    );
                }
                let elapsed = start.elapsed();
                for pid in pids {
                    node.kill(pid);
                }
                elapsed
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = call_round_trip, guest_to_guest_call, cast_throughput, spawn
}
criterion_main!(benches);
