//! The timers of the calls Rust code makes with a timeout (`Node::call`, `call_term`): a
//! few kept from call to call, as a process keeps its own (`process::WaitTimer`).
//!
//! A tokio timer armed per call cost more than its insert into the wheel: on a multi-thread
//! runtime, registering a timer earlier than the one the parked timer driver will wake for
//! (or any timer, when the wheel was empty when it parked or last fired) writes the I/O
//! driver's eventfd, a system call on the caller's thread. With one call in flight, the
//! wheel is often empty when a worker parks, so about one typed call in four paid that
//! write on 2 workers (`perf`: 81,000 writes in 310,000 calls). A timer taken from here
//! stays armed between calls (it fires at most once idle, then is inert) and is re-armed
//! only when it fires before the deadline of the call then waiting.

use std::sync::Mutex;

use tokio::runtime::{Handle, Id};

use crate::process::WaitTimer;

/// Timers kept for reuse at most: as many as Rust callers usually wait at once; a caller
/// beyond them arms a timer of its own, as before.
const KEPT: usize = 64;

/// Call timers not in use (see the module doc), each with the runtime whose timer driver
/// it is registered with: a timer is only reused on that runtime.
#[derive(Default)]
pub(crate) struct CallTimers {
    free: Mutex<Vec<(Id, WaitTimer)>>,
}

/// A call timer lent out by [`CallTimers::take`].
pub(crate) struct Lent {
    runtime: Option<Id>,
    /// The timer itself.
    pub(crate) timer: WaitTimer,
}

impl CallTimers {
    /// A timer for one call on the current runtime: a kept one, or a new one.
    pub(crate) fn take(&self) -> Lent {
        let runtime = Handle::try_current().ok().map(|h| h.id());
        let mut free = self.free.lock().expect("call timers lock");
        let timer = runtime
            .and_then(|id| free.iter().rposition(|(kept, _)| *kept == id))
            .map(|i| free.swap_remove(i).1);
        drop(free);
        Lent {
            runtime,
            timer: timer.unwrap_or_default(),
        }
    }

    /// Keep `lent`'s timer for the next call (unless enough are kept).
    pub(crate) fn give_back(&self, lent: Lent) {
        let Some(runtime) = lent.runtime else {
            return;
        };
        let mut free = self.free.lock().expect("call timers lock");
        if free.len() >= KEPT {
            // Another runtime's timers go first: that runtime may be gone (its timers then
            // hold its driver), and this one's callers are the ones calling now.
            free.retain(|(kept, _)| *kept == runtime);
        }
        if free.len() < KEPT {
            free.push((runtime, lent.timer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CallTimers, KEPT};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    fn kept_runtimes(timers: &CallTimers) -> Vec<tokio::runtime::Id> {
        timers
            .free
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }

    #[test]
    fn a_kept_timer_is_reused_under_another_runtimes_and_a_full_keep_drops_other_runtimes_timers() {
        let timers = CallTimers::default();
        let (a, b) = (runtime(), runtime());
        let lent_a = a.block_on(async { timers.take() });
        let lent_b = b.block_on(async { timers.take() });
        let (id_a, id_b) = (a.handle().id(), b.handle().id());
        timers.give_back(lent_a);
        timers.give_back(lent_b);
        assert_eq!(kept_runtimes(&timers), [id_a, id_b]);

        // `a`'s timer is found though `b`'s was given back after it.
        let lent = a.block_on(async { timers.take() });
        assert_eq!(kept_runtimes(&timers), [id_b]);

        // A keep full of `b`'s timers (`b` may be gone) makes room for `a`'s.
        b.block_on(async {
            while timers.free.lock().unwrap().len() < KEPT {
                timers.give_back(timers.take());
                timers.give_back(super::Lent {
                    runtime: Some(id_b),
                    timer: Default::default(),
                });
            }
        });
        timers.give_back(lent);
        assert!(kept_runtimes(&timers).contains(&id_a));
    }
}
