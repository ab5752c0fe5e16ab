//! A process's `send-after` timers.
//!
//! Each timer is a tokio task sleeping on tokio's timer wheel, so arming and cancelling cost
//! O(1); the process keeps the tasks' abort handles by timer ref. They are all aborted when
//! the process's context is dropped, which happens however the process ends (a normal exit,
//! a crash, a kill, awake or hibernating), so no timer outlives its owner.
//!
//! A pending timer holds its message on the host, outside the process's linear memory, so a
//! process's live timers are bounded in number and in the bytes of their messages together.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

/// The fewest entries kept before finished timers are swept from the table. A finished
/// timer's entry holds its task's memory (its abort handle keeps the task allocated), a few
/// hundred bytes, so a process that arms one timer at a time keeps no more than these.
const MIN_SWEEP: usize = 8;

/// A process's pending timers.
pub(crate) struct Timers {
    handles: HashMap<u64, Timer>,
    /// The live timers and their messages' bytes, shared with the timers' tasks.
    counts: Arc<Counts>,
}

struct Timer {
    handle: AbortHandle,
    deadline: Instant,
    claim: Arc<Claim>,
}

/// Timers armed and neither fired nor cancelled, and the bytes of their messages.
#[derive(Default)]
struct Counts {
    live: AtomicUsize,
    bytes: AtomicUsize,
}

/// Who ends a timer: its task as it fires, or a cancel, whichever claims it first, and only
/// that one; the task dropped unclaimed (its process gone) ends it too. The one that claims
/// it uncounts it, so a cancelled timer stops counting at once, not when the runtime next
/// drops its task, and a cancel that says time was left means no message comes.
struct Claim {
    pending: AtomicBool,
    counts: Arc<Counts>,
    size: usize,
}

impl Claim {
    /// Claim the timer: true for the first caller only, which uncounts it.
    fn take(&self) -> bool {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return false;
        }
        self.counts.live.fetch_sub(1, Ordering::Relaxed);
        self.counts.bytes.fetch_sub(self.size, Ordering::Relaxed);
        true
    }
}

/// Claims its timer when the task's future is dropped, fired, cancelled or aborted.
struct ClaimOnDrop(Arc<Claim>);

impl Drop for ClaimOnDrop {
    fn drop(&mut self) {
        self.0.take();
    }
}

/// How many live timers a process may hold, and how many bytes of messages in all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimerLimits {
    pub(crate) count: usize,
    pub(crate) bytes: usize,
}

/// The process already holds its limit of live timers, or of their messages' bytes.
#[derive(Debug)]
pub(crate) struct TooManyTimers;

impl Timers {
    pub(crate) fn new() -> Self {
        Timers {
            handles: HashMap::new(),
            counts: Arc::default(),
        }
    }

    /// Run `fire` (which holds a message of `size` bytes) after `delay` under the ref `id`,
    /// unless that would take the live timers past `max`.
    pub(crate) fn arm(
        &mut self,
        id: u64,
        delay: Duration,
        size: usize,
        max: TimerLimits,
        fire: impl FnOnce() + Send + 'static,
    ) -> Result<(), TooManyTimers> {
        let live = self.counts.live.load(Ordering::Relaxed);
        if live >= max.count
            || self
                .counts
                .bytes
                .load(Ordering::Relaxed)
                .saturating_add(size)
                > max.bytes
        {
            return Err(TooManyTimers);
        }
        // Swept once at least half the table has ended: a sweep then frees at least as many
        // entries as it keeps, so it costs O(1) per timer, amortised, and a burst of timers
        // that fired is not kept.
        if self.handles.len() >= (2 * live).max(MIN_SWEEP) {
            self.handles
                .retain(|_, t| t.claim.pending.load(Ordering::Relaxed));
        }
        self.counts.live.fetch_add(1, Ordering::Relaxed);
        self.counts.bytes.fetch_add(size, Ordering::Relaxed);
        let claim = Arc::new(Claim {
            pending: AtomicBool::new(true),
            counts: self.counts.clone(),
            size,
        });
        let on_drop = ClaimOnDrop(claim.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if on_drop.0.take() {
                fire();
            }
        });
        self.handles.insert(
            id,
            Timer {
                handle: task.abort_handle(),
                deadline: Instant::now() + delay,
                claim,
            },
        );
        Ok(())
    }

    /// Cancel a timer: the time that was left, or `None` if it had fired (or never was).
    /// When it returns a time, the timer's message will not come.
    pub(crate) fn cancel(&mut self, id: u64) -> Option<Duration> {
        let t = self.handles.remove(&id)?;
        if !t.claim.take() {
            return None;
        }
        t.handle.abort();
        Some(t.deadline.saturating_duration_since(Instant::now()))
    }

    /// Forget the timer `id` if it is one of these: its message has just been taken, so it
    /// has fired.
    pub(crate) fn fired(&mut self, id: u64) {
        self.handles.remove(&id);
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.handles.len()
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        for (_, t) in self.handles.drain() {
            t.handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::{MIN_SWEEP, TimerLimits, Timers};

    const LIMITS: TimerLimits = TimerLimits {
        count: 100_000,
        bytes: usize::MAX,
    };

    /// Wait until every timer armed so far has fired.
    async fn all_fired(timers: &Timers) {
        while timers
            .counts
            .live
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_process_arming_one_timer_at_a_time_keeps_few_fired_ones() {
        let mut timers = Timers::new();
        for id in 0..100 {
            timers.arm(id, Duration::ZERO, 8, LIMITS, || {}).unwrap();
            all_fired(&timers).await;
        }
        assert!(
            timers.entries() <= MIN_SWEEP,
            "{} fired timers kept",
            timers.entries()
        );
    }

    #[tokio::test]
    async fn a_burst_of_timers_that_fired_is_not_kept_by_the_next_timer() {
        let mut timers = Timers::new();
        for id in 0..1_000 {
            timers.arm(id, Duration::ZERO, 8, LIMITS, || {}).unwrap();
        }
        all_fired(&timers).await;
        timers
            .arm(1_000, Duration::from_secs(60), 8, LIMITS, || {})
            .unwrap();
        assert!(
            timers.entries() <= MIN_SWEEP,
            "{} fired timers kept after the burst",
            timers.entries()
        );
        assert!(
            timers.cancel(1_000).is_some(),
            "the live timer is still there"
        );
    }

    #[tokio::test]
    async fn a_timer_whose_message_was_taken_is_forgotten_and_cannot_be_cancelled() {
        let mut timers = Timers::new();
        timers.arm(1, Duration::ZERO, 8, LIMITS, || {}).unwrap();
        all_fired(&timers).await;
        timers.fired(1);
        assert_eq!(timers.entries(), 0);
        assert_eq!(timers.cancel(1), None);
    }

    #[tokio::test]
    async fn a_cancelled_timer_stops_counting_at_once() {
        let limits = TimerLimits {
            count: 10,
            bytes: 100,
        };
        let mut timers = Timers::new();
        // Twice the limit, each cancelled at once, without the runtime getting to drop the
        // aborted tasks in between.
        for id in 0..20 {
            timers
                .arm(id, Duration::from_secs(60), 10, limits, || {})
                .expect("the cancelled timers no longer count");
            assert!(timers.cancel(id).is_some());
        }
    }

    #[test]
    fn a_cancel_that_finds_time_left_means_no_message() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let mut timers = Timers::new();
        let (started, firing) = std::sync::mpsc::channel();
        let (go_on, go) = std::sync::mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let delivered = fired.clone();
        timers
            .arm(1, Duration::ZERO, 8, LIMITS, move || {
                started.send(()).unwrap();
                go.recv().unwrap();
                delivered.store(true, Ordering::SeqCst);
            })
            .unwrap();
        // The timer's task is delivering its message (on the worker) when the cancel comes.
        firing
            .recv_timeout(Duration::from_secs(10))
            .expect("the timer fires");
        let left = timers.cancel(1);
        go_on.send(()).unwrap();
        drop(runtime);
        assert!(fired.load(Ordering::SeqCst));
        assert_eq!(
            left, None,
            "its message was on its way: the cancel must say it fired"
        );
    }
}
