//! The tokio runtime a node runs best on.
//!
//! A node runs on any multi-thread tokio runtime. The one [`builder`] makes differs from
//! tokio's default in one way: a worker that runs out of tasks busy-waits a little before it
//! parks its thread, as BEAM's schedulers do (`+sbwt`).
//!
//! Processes that talk to each other wake each other all the time. Tokio runs a task woken
//! by another on the same worker, but after a few such hand-offs it wakes an idle worker to
//! share the load; when that worker's thread sleeps in the kernel, waking it costs a system
//! call on one side and a context switch on the other, several microseconds on a virtual
//! machine: longer than a whole call. Tokio counts a busy-waiting worker as awake, so it
//! wakes nobody meanwhile, and the caller and its server go on handing off to each other on
//! one worker. On the 2-core machine of `BENCHMARKS.md`, with the default wait, it took a
//! call from a Rust task from about 2.1 µs to 1.6–1.9 µs, a call from one guest to another
//! from about 3.3 µs to 2.5 µs, and the context switches of 210,000 calls from ~55,000 to
//! ~15,000 (`OTTER_BUSY_WAIT_US=0 otter-bench call 200000` against the default).
//!
//! The price: CPU time burnt after each burst of work, at most the busy wait per time a
//! worker runs dry, and a busy-waiting worker takes no work from the others meanwhile (a
//! backlog on one worker waits up to that long for help). So the wait is short:
//! [`DEFAULT_BUSY_WAIT`], or `$OTTER_BUSY_WAIT_US` microseconds (0: none).
//!
//! ```no_run
//! let runtime = otter::runtime::builder(None).build()?;
//! runtime.block_on(async {
//!     let node = otter::Node::new(Default::default())?;
//!     // ...
//!     # Ok::<_, anyhow::Error>(())
//! })?;
//! # Ok::<_, anyhow::Error>(())
//! ```

use std::time::{Duration, Instant};

/// How long a worker that ran out of tasks busy-waits before parking its thread, unless
/// `$OTTER_BUSY_WAIT_US` says otherwise.
pub const DEFAULT_BUSY_WAIT: Duration = Duration::from_micros(20);

/// The environment variable that sets the busy wait, in microseconds.
pub const BUSY_WAIT_ENV: &str = "OTTER_BUSY_WAIT_US";

/// A multi-thread runtime builder set up for a node: `workers` worker threads (default: one
/// per CPU, as tokio's), every driver enabled, and workers that busy-wait (see the module
/// doc) before parking. Further settings can be made on the builder.
pub fn builder(workers: Option<usize>) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n.max(1));
    }
    let wait = busy_wait();
    if !wait.is_zero() {
        builder.on_thread_park(move || spin(wait));
    }
    builder
}

/// The busy wait [`builder`] sets up: [`DEFAULT_BUSY_WAIT`], or what `$OTTER_BUSY_WAIT_US`
/// says.
pub fn busy_wait() -> Duration {
    busy_wait_from(std::env::var(BUSY_WAIT_ENV).ok().as_deref())
}

/// The busy wait `$OTTER_BUSY_WAIT_US` asks for (capped at a millisecond); the default if it
/// is unset or not a number.
fn busy_wait_from(var: Option<&str>) -> Duration {
    match var.map(|v| v.trim().parse::<u64>()) {
        Some(Ok(us)) => Duration::from_micros(us.min(1000)),
        _ => DEFAULT_BUSY_WAIT,
    }
}

/// Spin for `wait`. Tokio runs this right before a worker parks, while it still counts as
/// awake: a task woken meanwhile stays with the worker that woke it instead of waking this
/// one; once it returns, the worker parks as usual (at once awake again if work came).
fn spin(wait: Duration) {
    let start = Instant::now();
    while start.elapsed() < wait {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{DEFAULT_BUSY_WAIT, busy_wait_from};

    #[test]
    fn the_busy_wait_is_read_from_the_environment_capped_and_defaulted() {
        assert_eq!(busy_wait_from(None), DEFAULT_BUSY_WAIT);
        assert_eq!(busy_wait_from(Some("0")), Duration::ZERO);
        assert_eq!(busy_wait_from(Some(" 35 ")), Duration::from_micros(35));
        assert_eq!(busy_wait_from(Some("99999999")), Duration::from_millis(1));
        assert_eq!(busy_wait_from(Some("soon")), DEFAULT_BUSY_WAIT);
    }
}
