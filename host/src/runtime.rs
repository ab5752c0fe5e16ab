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
//! A worker woken for nothing spins longer the next time. With one caller and one server,
//! tokio hands off between them on one worker only three times in a row (its LIFO slot's
//! limit); the fourth hand-off goes through the worker's run queue and wakes a parked worker
//! to share the load. That worker finds the run queue already emptied by its owner, runs no
//! process, spins the busy wait and parks, and is woken again by the next such hand-off: one
//! eventfd write (a system call) on the busy worker and one context switch on the other
//! every ~30 calls, and now and then the pair moves to the other worker, cache-cold. So a
//! worker that parks without having run a process (or a supervisor) since it
//! last woke doubles its wait, up to [`MAX_BUSY_WAIT_FACTOR`] times the busy wait (at most 1 ms);
//! one that did work goes back to the busy wait. `perf stat` of `otter-bench call 200000`
//! on 2 workers: eventfd writes 16,258 → 1,246, context switches 16,513 → 1,690; a call
//! 1.75 → 1.29 µs, a guest → guest call 2.80 → 1.95 µs (`BENCHMARKS.md`).
//!
//! The price: CPU time burnt after each burst of work, at most the busy wait per time a
//! worker runs dry, or the longer wait after wake-ups in which no process ran (a runtime
//! that also serves plain tokio tasks, an HTTP front end, spins up to 0.5 ms after those;
//! one caller and one server keep the second worker spinning throughout, as BEAM's second
//! scheduler does), and a busy-waiting worker takes no work from the others meanwhile (a
//! backlog on one worker waits up to that long for help) and is not woken for I/O or
//! timers (on one worker, those wait up to the spin). So the wait is short: [`DEFAULT_BUSY_WAIT`], or `$OTTER_BUSY_WAIT_US`
//! microseconds (0: none; at most 1,000). `otter run` refuses a value that is not a whole
//! number ([`busy_wait`]); [`builder`] falls back to the default.
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

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long a worker that ran out of tasks busy-waits before parking its thread, unless
/// `$OTTER_BUSY_WAIT_US` says otherwise.
pub const DEFAULT_BUSY_WAIT: Duration = Duration::from_micros(20);

/// How many times the busy wait a worker woken for nothing spins at most (see the module
/// doc), within 1 ms.
pub const MAX_BUSY_WAIT_FACTOR: u32 = 25;

/// The environment variable that sets the busy wait, in microseconds.
pub const BUSY_WAIT_ENV: &str = "OTTER_BUSY_WAIT_US";

/// A multi-thread runtime builder set up for a node: `workers` worker threads (default: one
/// per CPU, as tokio's; at least 1), every driver enabled, and workers that busy-wait (see
/// the module doc) before parking. Further settings can be made on the builder, except
/// `on_thread_park` and `on_thread_unpark`, which the busy wait uses (a hook set there
/// replaces it).
pub fn builder(workers: Option<usize>) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n.max(1));
    }
    let wait = busy_wait().unwrap_or(DEFAULT_BUSY_WAIT);
    if !wait.is_zero() {
        let longest = (wait * MAX_BUSY_WAIT_FACTOR)
            .min(Duration::from_millis(1))
            .max(wait);
        builder.on_thread_unpark(|| WORKED_AT_WAKE.set(WORKED.get()));
        builder.on_thread_park(move || {
            let woken_for_nothing = WORKED.get() == WORKED_AT_WAKE.get();
            let next = next_wait(LAST_WAIT.get(), woken_for_nothing, wait, longest);
            LAST_WAIT.set(next);
            spin(next);
        });
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

thread_local! {
    /// Times a process ran on this thread ([`worked`]).
    static WORKED: Cell<u64> = const { Cell::new(0) };
    /// [`WORKED`] when this worker last woke.
    static WORKED_AT_WAKE: Cell<u64> = const { Cell::new(0) };
    /// How long this worker last busy-waited.
    static LAST_WAIT: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// A process ran on this thread (a poll of its task, a message taken from its mailbox): the
/// worker's wake-up was not for nothing.
pub(crate) fn worked() {
    WORKED.set(WORKED.get().wrapping_add(1));
}

/// A task of the node's own (a process, a supervisor): each poll of it is work for the
/// worker that runs it, whatever woke it (a message, a timeout, a reply, a host call's end).
pub(crate) struct NodeTask<F>(pub(crate) F);

impl<F: Future> Future for NodeTask<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        worked();
        // SAFETY: the future is pinned structurally: `NodeTask` never moves it out of its
        // pin, implements neither `Drop` nor `Unpin` by hand, and has no other field.
        unsafe { self.map_unchecked_mut(|task| &mut task.0) }.poll(cx)
    }
}

/// How long a worker busy-waits before parking: twice its `last` wait if it was woken for
/// nothing (within `wait..=longest`), else `wait`.
fn next_wait(
    last: Duration,
    woken_for_nothing: bool,
    wait: Duration,
    longest: Duration,
) -> Duration {
    if woken_for_nothing {
        (last * 2).clamp(wait, longest)
    } else {
        wait
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

    use super::{DEFAULT_BUSY_WAIT, NodeTask, WORKED, busy_wait_from, next_wait};

    /// A process woken by a timeout, a reply or a host call's end takes no message, but its
    /// worker did work: its busy wait must not grow.
    #[test]
    fn every_poll_of_a_node_task_counts_as_work() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let before = WORKED.get();
        runtime.block_on(NodeTask(async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }));
        assert!(
            WORKED.get() - before >= 2,
            "polled at the start and after the timeout"
        );
    }

    #[test]
    fn a_worker_woken_for_nothing_waits_twice_as_long_up_to_the_cap_and_one_that_worked_the_busy_wait()
     {
        let us = Duration::from_micros;
        let (wait, longest) = (us(20), us(500));
        let mut last = Duration::ZERO;
        let mut waits = Vec::new();
        for _ in 0..7 {
            last = next_wait(last, true, wait, longest);
            waits.push(last.as_micros());
        }
        assert_eq!(waits, [20, 40, 80, 160, 320, 500, 500]);
        assert_eq!(next_wait(last, false, wait, longest), wait);
    }

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
