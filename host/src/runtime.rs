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
//! [`DEFAULT_BUSY_WAIT`], or `$OTTER_BUSY_WAIT_US` microseconds (0: none; at most 1,000).
//! `otter run` refuses a value that is not a whole number ([`busy_wait`]); [`builder`] falls
//! back to the default.
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
/// per CPU, as tokio's; at least 1), every driver enabled, and workers that busy-wait (see
/// the module doc) before parking. Further settings can be made on the builder, except
/// `on_thread_park`, which the busy wait uses (a hook set there replaces it).
pub fn builder(workers: Option<usize>) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n.max(1));
    }
    let wait = busy_wait().unwrap_or(DEFAULT_BUSY_WAIT);
    if !wait.is_zero() {
        builder.on_thread_park(move || spin(wait));
    }
    builder
}

/// `$OTTER_BUSY_WAIT_US` is not a whole number of microseconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{BUSY_WAIT_ENV}={value:?}: not a whole number of microseconds")]
pub struct BusyWaitError {
    value: String,
}

/// The busy wait [`builder`] sets up: `$OTTER_BUSY_WAIT_US` microseconds (at most 1,000),
/// or [`DEFAULT_BUSY_WAIT`] when it is unset.
///
/// # Errors
/// [`BusyWaitError`] when the variable is set to anything but a whole number.
pub fn busy_wait() -> Result<Duration, BusyWaitError> {
    let var = std::env::var_os(BUSY_WAIT_ENV);
    busy_wait_from(var.as_ref().map(|v| v.to_string_lossy()).as_deref())
}

fn busy_wait_from(var: Option<&str>) -> Result<Duration, BusyWaitError> {
    let Some(var) = var else {
        return Ok(DEFAULT_BUSY_WAIT);
    };
    match var.trim().parse::<u64>() {
        Ok(us) => Ok(Duration::from_micros(us.min(1000))),
        Err(_) => Err(BusyWaitError {
            value: crate::guest_text::one_line(var, 40),
        }),
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
    fn the_busy_wait_setting_is_parsed_capped_defaulted_or_refused() {
        assert_eq!(busy_wait_from(None), Ok(DEFAULT_BUSY_WAIT));
        assert_eq!(busy_wait_from(Some("0")), Ok(Duration::ZERO));
        assert_eq!(busy_wait_from(Some(" 35 ")), Ok(Duration::from_micros(35)));
        assert_eq!(
            busy_wait_from(Some("99999999")),
            Ok(Duration::from_millis(1))
        );
        let refused = busy_wait_from(Some("off")).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "OTTER_BUSY_WAIT_US=\"off\": not a whole number of microseconds"
        );
    }
}
