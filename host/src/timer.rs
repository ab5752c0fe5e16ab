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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

/// The fewest entries kept before finished timers are swept from the table.
const MIN_SWEEP: usize = 64;

/// A process's pending timers.
pub(crate) struct Timers {
    handles: HashMap<u64, Timer>,
    /// Timers armed and neither fired nor cancelled, counted by their own tasks.
    live: Arc<AtomicUsize>,
    /// The bytes of those timers' messages.
    bytes: Arc<AtomicUsize>,
    /// Sweep the table of finished timers when it reaches this size: twice what the last
    /// sweep left, so sweeping costs O(1) per timer, amortised.
    sweep_at: usize,
}

struct Timer {
    handle: AbortHandle,
    deadline: Instant,
}

/// Counts one live timer and its message's bytes for as long as its task exists (fired,
/// cancelled or aborted, the task's future is dropped exactly once).
struct Live {
    live: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    size: usize,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(self.size, Ordering::Relaxed);
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
            live: Arc::default(),
            bytes: Arc::default(),
            sweep_at: MIN_SWEEP,
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
        if self.live.load(Ordering::Relaxed) >= max.count
            || self.bytes.load(Ordering::Relaxed).saturating_add(size) > max.bytes
        {
            return Err(TooManyTimers);
        }
        if self.handles.len() >= self.sweep_at {
            self.handles.retain(|_, t| !t.handle.is_finished());
            self.sweep_at = (self.handles.len() * 2).max(MIN_SWEEP);
        }
        self.live.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size, Ordering::Relaxed);
        let live = Live {
            live: self.live.clone(),
            bytes: self.bytes.clone(),
            size,
        };
        let task = tokio::spawn(async move {
            let _live = live;
            tokio::time::sleep(delay).await;
            fire();
        });
        self.handles.insert(
            id,
            Timer {
                handle: task.abort_handle(),
                deadline: Instant::now() + delay,
            },
        );
        Ok(())
    }

    /// Cancel a timer: the time that was left, or `None` if it had fired (or never was).
    pub(crate) fn cancel(&mut self, id: u64) -> Option<Duration> {
        let t = self.handles.remove(&id)?;
        if t.handle.is_finished() {
            return None;
        }
        t.handle.abort();
        Some(t.deadline.saturating_duration_since(Instant::now()))
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        for (_, t) in self.handles.drain() {
            t.handle.abort();
        }
    }
}
