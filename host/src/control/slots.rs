//! The connection cap: one slot per connection served, and the connections waiting for a
//! request, longest-waiting first, so that a new client takes the slot of an idle one
//! instead of being turned away.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How long a new connection waits for a slot before it is answered `busy`.
const WAIT: Duration = Duration::from_secs(2);
/// How often a waiting connection looks again for an idle one to replace (one told to
/// close may not have closed yet, or may have just received a request after all).
const RETRY: Duration = Duration::from_millis(100);

pub(super) struct Slots {
    permits: Arc<Semaphore>,
    max: usize,
    /// Connections waiting for a request, by when they started waiting, each with what
    /// tells it to close.
    idle: Mutex<BTreeMap<u64, Arc<Notify>>>,
    next: AtomicU64,
    /// New connections waiting for a slot.
    waiting: AtomicUsize,
}

/// What a new connection gets.
pub(super) enum Admission {
    /// A free slot.
    Now(OwnedSemaphorePermit),
    /// A slot after [`Waiting::slot`], or none.
    Wait(Waiting),
    /// As many new connections wait for a slot as there are slots.
    Busy,
}

impl Slots {
    pub(super) fn new(max_connections: usize) -> Arc<Slots> {
        let max = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Slots {
            permits: Arc::new(Semaphore::new(max)),
            max,
            idle: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Never blocks, so the accept loop never waits on a client.
    pub(super) fn admit(self: &Arc<Self>) -> Admission {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Admission::Now(permit);
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Admission::Busy;
        }
        Admission::Wait(Waiting {
            slots: self.clone(),
        })
    }

    /// Count the connection as waiting for a request until the guard drops; `close` is
    /// notified if a new connection needs its slot.
    pub(super) fn idle(self: &Arc<Self>, close: &Arc<Notify>) -> Idle {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(key, close.clone());
        Idle {
            slots: self.clone(),
            key,
        }
    }

    /// Tell the connection idle longest to close, if there is one.
    fn close_longest_idle(&self) {
        let longest = self.lock().pop_first();
        if let Some((_, close)) = longest {
            close.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Notify>>> {
        // Nothing panics while holding it; a poisoned map is still a consistent map.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new connection waiting for a slot; see [`Slots::admit`].
pub(super) struct Waiting {
    slots: Arc<Slots>,
}

impl Waiting {
    /// A slot, taken from the connection idle longest (told to close), or `None` if every
    /// connection stays busy answering for [`WAIT`].
    pub(super) async fn slot(self) -> Option<OwnedSemaphorePermit> {
        let deadline = Instant::now() + WAIT;
        loop {
            self.slots.close_longest_idle();
            let wait = RETRY.min(deadline.saturating_duration_since(Instant::now()));
            match tokio::time::timeout(wait, self.slots.permits.clone().acquire_owned()).await {
                Ok(permit) => return permit.ok(),
                Err(_) if Instant::now() >= deadline => return None,
                Err(_) => {}
            }
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.slots.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection waiting for a request; see [`Slots::idle`].
pub(super) struct Idle {
    slots: Arc<Slots>,
    key: u64,
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.key);
    }
}
