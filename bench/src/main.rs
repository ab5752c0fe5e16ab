//! `otter-bench`: Otter's side of the benchmarks against Erlang/OTP.
//!
//! Each benchmark measures what the same-named one of the Erlang harness (`bench/beam`,
//! `beam_bench.erl`) measures, with the same default sizes, and prints the same lines
//! `name value unit` under the same metric names, so one summarizer reads both:
//!
//! ```text
//! $ otter-bench call 1000000
//! gen_server_call_latency 612.345 ns/call
//! otter_call_term_latency 498.765 ns/call
//! ```
//!
//! Names starting with `otter_` are Otter's own figures, without an Erlang counterpart.
//! `bench/compare.sh` runs both harnesses and prints them side by side; BENCHMARKS.md says
//! what each figure means.
//!
//! The node runs on tokio's multi-thread runtime with 2 worker threads (`--workers`), the
//! scheduler count of the 2-core machine the Erlang baseline was taken on. Each benchmark's
//! body runs as a task on those workers, as a client process would, not on the main thread.

mod messaging;
mod metric;
mod monitors;
mod node;
mod order_sink;
mod population;
mod restart;
mod tables;
mod upgrade;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::population::Limits;

/// The allocator the `otter` binary uses too (see host/src/main.rs).
#[global_allocator]
static GLOBAL: otter::allocator::Allocator = otter::allocator::Allocator;

#[derive(Parser)]
#[command(
    name = "otter-bench",
    about = "Otter's side of the benchmarks against Erlang/OTP (bench/beam): same figures, same output"
)]
struct Cli {
    /// Tokio worker threads (Erlang's schedulers).
    #[arg(long, default_value_t = 2, global = true)]
    workers: usize,
    /// Where the built guests are (counter.wasm, caller.wasm); default: the repository's
    /// `cargo xtask guests` output.
    #[arg(long, global = true)]
    guests: Option<PathBuf>,
    /// Install the Prometheus metrics recorder first, as `[telemetry] prometheus` does, to
    /// measure what recording the host's figures costs.
    #[arg(long, global = true)]
    metrics: bool,
    /// The most instances of a module the node makes ahead of its spawns
    /// (`NodeConfig::spare_instances`; 0: none, each spawn instantiates).
    #[arg(long, global = true, default_value_t = otter::DEFAULT_SPARE_INSTANCES)]
    spares: usize,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
#[command(rename_all = "snake_case")]
enum Bench {
    /// The runtime: Otter's version and the worker count.
    Info,
    /// One caller, N sequential calls to a counter (10,000 warm-up calls excluded).
    Call {
        #[arg(default_value_t = 1_000_000)]
        n: u64,
    },
    /// One producer, N casts to a counter, timed until a final call returns; then, untimed, the
    /// same casts to a second counter and the growth of RSS meanwhile
    Cast {
        #[arg(default_value_t = 1_000_000)]
        n: u64,
    },
    /// N sequential spawns of a counter; time per spawn and RSS per process.
    Spawn {
        #[arg(default_value_t = 100_000)]
        n: u64,
        /// Which server: the pure counter (as `beam_bench.erl`), or `wasi-probe`, a
        /// wasm32-wasip2 guest linked with WASI (granted nothing).
        #[arg(long, value_enum, default_value_t = population::SpawnGuest::Counter)]
        guest: population::SpawnGuest,
    },
    /// Kill a supervisor's registered child N times; mean time until it is back.
    Restart {
        #[arg(default_value_t = 10_000)]
        n: u64,
    },
    /// As `restart`, with a fresh supervisor every B restarts (untimed).
    RestartBatched {
        #[arg(default_value_t = 10_000)]
        n: u64,
        #[arg(default_value_t = 50)]
        b: u64,
    },
    /// P client processes (caller guests) each making N calls to one counter.
    ManyToOne {
        #[arg(default_value_t = 1000)]
        p: u64,
        #[arg(default_value_t = 1000)]
        n: u64,
    },
    /// Otter only: one caller guest makes N calls to a counter inside one callback (guest →
    /// guest); time per call. Then, N times each inside one callback, the cheapest import and
    /// an import that suspends and resumes (`sleep(0)`).
    GuestCall {
        #[arg(default_value_t = 100_000)]
        n: u64,
    },
    /// Otter only: one process holds N monitors of a counter, then removes them; time per
    /// demonitor, and per monitor-and-demonitor with none other held.
    Monitors {
        #[arg(default_value_t = 20_000)]
        n: u64,
    },
    /// Otter only: as `many_to_one`, with P tokio tasks calling through the Node API.
    ManyToOneTasks {
        #[arg(default_value_t = 1000)]
        p: u64,
        #[arg(default_value_t = 1000)]
        n: u64,
    },
    /// Otter only: N counters spawned then hibernated; RSS per hibernated process.
    Hibernate {
        #[arg(default_value_t = 100_000)]
        n: u64,
    },
    /// Otter only: the pause of one kv server upgraded and downgraded ROUNDS times while a
    /// client calls it, and the time to upgrade N live kv servers.
    Upgrade {
        #[arg(default_value_t = 10_000)]
        n: u64,
        #[arg(default_value_t = 100)]
        rounds: u64,
    },
    /// The chapter's OrderSink on SQLite (guests/order_sink): CLIENTS submit orders for
    /// SECS seconds, unpaced or at RATE orders/s in all; accepted/s, busy/s, flushed/s and
    /// the p50/p99 submit latency, then every accepted order checked in the file.
    OrderSink {
        #[arg(long, default_value_t = 1)]
        clients: u64,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Orders per second offered in all (default: each client submits again at once).
        #[arg(long)]
        rate: Option<u64>,
        #[arg(long = "flush-ms", default_value_t = 200)]
        flush_ms: u32,
    },
    /// Otter only: the chapter's KVWithETS (guests/kv_ets) for SECS seconds per reader count:
    /// R reader processes read the shared table in a loop, one writer puts through the
    /// server; reads/s and writes/s, as the Elixir seed's `ets` section.
    KvEts {
        /// Reader counts, one round each.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 8, 64])]
        readers: Vec<u64>,
        #[arg(long, default_value_t = 2.0)]
        secs: f64,
    },
    /// Otter only, heavy: spawn live counters until CAP, a failed spawn or the memory floor.
    MaxLive {
        #[arg(default_value_t = 1_000_000)]
        cap: u64,
        /// Stop before the machine has less than this much memory available.
        #[arg(long, default_value_t = 4096)]
        keep_free_mib: u64,
    },
    /// Otter only, heavy: as `max_live`, hibernating each counter once started.
    MaxHibernated {
        #[arg(default_value_t = 2_000_000)]
        cap: u64,
        /// Stop before the machine has less than this much memory available.
        #[arg(long, default_value_t = 4096)]
        keep_free_mib: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let name = bench_name(&cli.bench);
    if let Err(e) = otter::runtime::busy_wait() {
        eprintln!("bench {name} failed: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match otter::runtime::builder(Some(cli.workers)).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench {name} failed: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.metrics
        && let Err(e) = otter::telemetry::Metrics::install()
    {
        eprintln!("bench {name} failed: {e}");
        return ExitCode::FAILURE;
    }
    let guests = cli.guests.unwrap_or_else(xtask::guest_dir);
    let outcome =
        match runtime.block_on(runtime.spawn(run(cli.bench, guests, cli.workers, cli.spares))) {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("the benchmark task panicked: {e}")),
        };
    match outcome {
        Ok(()) => {
            // Dropping the runtime would tear down every process the benchmark left alive
            // (up to millions), which measures nothing; the OS frees them at once.
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("bench {name} failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(bench: Bench, guests: PathBuf, workers: usize, spares: usize) -> anyhow::Result<()> {
    if let Bench::Info = bench {
        metric::note(&format!("otter-bench {}", env!("CARGO_PKG_VERSION")));
        metric::out_count("schedulers_online", workers as u64, "schedulers");
        metric::out_count(
            "busy_wait",
            otter::runtime::busy_wait()
                .unwrap_or(otter::runtime::DEFAULT_BUSY_WAIT)
                .as_micros() as u64,
            "us",
        );
        return Ok(());
    }
    let node = node::start(&guests, spares).await?;
    match bench {
        Bench::Info => unreachable!("answered above"),
        Bench::Call { n } => messaging::call(&node, &guests, n).await,
        Bench::Cast { n } => messaging::cast(&node, n).await,
        Bench::ManyToOne { p, n } => messaging::many_to_one(&node, p, n).await,
        Bench::ManyToOneTasks { p, n } => messaging::many_to_one_tasks(&node, p, n).await,
        Bench::GuestCall { n } => messaging::guest_call(&node, n).await,
        Bench::Monitors { n } => monitors::monitors(&node, n).await,
        Bench::Spawn { n, guest } => population::spawn(&node, n, guest).await,
        Bench::Hibernate { n } => population::hibernate(&node, n).await,
        Bench::Restart { n } => restart::restart(&node, n).await,
        Bench::Upgrade { n, rounds } => upgrade::upgrade(&node, &guests, n, rounds).await,
        Bench::RestartBatched { n, b } => restart::restart_batched(&node, n, b).await,
        Bench::OrderSink {
            clients,
            secs,
            rate,
            flush_ms,
        } => {
            let load = order_sink::Load {
                clients,
                duration: std::time::Duration::from_secs_f64(secs),
                rate,
                flush_ms,
            };
            order_sink::run(&guests, &load).await
        }
        Bench::KvEts { readers, secs } => {
            let duration = std::time::Duration::from_secs_f64(secs);
            tables::kv_ets(&node, &guests, &readers, duration).await
        }
        Bench::MaxLive { cap, keep_free_mib } => {
            let limits = Limits {
                cap,
                keep_free: keep_free_mib << 20,
            };
            population::max_processes(&node, &limits, false).await
        }
        Bench::MaxHibernated { cap, keep_free_mib } => {
            let limits = Limits {
                cap,
                keep_free: keep_free_mib << 20,
            };
            population::max_processes(&node, &limits, true).await
        }
    }
}

/// The benchmark's name as given on the command line, for error messages.
fn bench_name(bench: &Bench) -> &'static str {
    match bench {
        Bench::Info => "info",
        Bench::Call { .. } => "call",
        Bench::Cast { .. } => "cast",
        Bench::Spawn { .. } => "spawn",
        Bench::Restart { .. } => "restart",
        Bench::RestartBatched { .. } => "restart_batched",
        Bench::ManyToOne { .. } => "many_to_one",
        Bench::ManyToOneTasks { .. } => "many_to_one_tasks",
        Bench::GuestCall { .. } => "guest_call",
        Bench::Monitors { .. } => "monitors",
        Bench::Hibernate { .. } => "hibernate",
        Bench::MaxLive { .. } => "max_live",
        Bench::Upgrade { .. } => "upgrade",
        Bench::MaxHibernated { .. } => "max_hibernated",
        Bench::OrderSink { .. } => "order_sink",
        Bench::KvEts { .. } => "kv_ets",
    }
}
