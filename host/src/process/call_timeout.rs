//! The timeout of the calls a process makes (`process.call`): one timer per process, kept
//! from call to call.
//!
//! Arming and clearing a tokio timer for every call took ~6 % of the CPU of many → one (the
//! timer wheel's insert and remove, under the driver's lock). A process makes one call at a
//! time, and with the same timeout each call's deadline is later than the one before; so the
//! timer armed for a call stays armed through the calls that follow, and when it fires
//! before the deadline of the call then waiting, it is re-armed for that deadline. Each call
//! still ends with `timeout` at its own deadline, no earlier; a timer armed for a later
//! deadline than the new call's is moved earlier at once.
//!
//! A timer left armed after the last call fires once (a spurious wake of the process's task,
//! which polls and finds nothing) and is then inert; hibernation drops it.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;

use tokio::time::{Instant, Sleep};

/// A process's call timer (see the module doc): none until its first call.
#[derive(Default)]
pub(crate) struct CallTimeout {
    timer: Option<Pin<Box<Sleep>>>,
}

impl CallTimeout {
    /// Wait for `reply` until `deadline`: its output, or `None` once the deadline has passed.
    pub(crate) async fn wait<F: Future>(
        &mut self,
        reply: F,
        deadline: Instant,
    ) -> Option<F::Output> {
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() > deadline {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            empty => empty.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        let mut reply = pin!(reply);
        poll_fn(|cx| {
            if let Poll::Ready(out) = reply.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            // At most twice: a timer that fired for an earlier deadline is re-armed for this
            // one, which is then pending (or, if it has passed too, fires at once).
            while timer.as_mut().poll(cx).is_ready() {
                if timer.deadline() >= deadline {
                    return Poll::Ready(None);
                }
                timer.as_mut().reset(deadline);
            }
            Poll::Pending
        })
        .await
    }

    /// Drop the timer (the process hibernates: nothing it holds should wake it).
    pub(crate) fn clear(&mut self) {
        self.timer = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;
    use tokio::time::Instant;

    use super::CallTimeout;

    #[tokio::test]
    async fn each_call_times_out_at_its_own_deadline_whatever_the_timer_was_armed_for() {
        let mut timeout = CallTimeout::default();
        // A first call, answered at once, arms the timer for its deadline.
        let (tx, rx) = oneshot::channel::<u32>();
        tx.send(1).unwrap();
        let first = Instant::now() + Duration::from_millis(50);
        assert_eq!(timeout.wait(rx, first).await, Some(Ok(1)));
        // A later call, never answered, with a later deadline: it ends at its own deadline,
        // not at the first one's, for which the timer is armed.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (_tx, rx) = oneshot::channel::<u32>();
        let deadline = Instant::now() + Duration::from_millis(50);
        assert_eq!(timeout.wait(rx, deadline).await, None);
        ends_at(deadline);
        // A first call answered at once with a long timeout, then one with a short timeout
        // never answered: it ends at its own, earlier deadline.
        let mut timeout = CallTimeout::default();
        let (tx, rx) = oneshot::channel::<u32>();
        tx.send(2).unwrap();
        let long = Instant::now() + Duration::from_secs(60);
        assert_eq!(timeout.wait(rx, long).await, Some(Ok(2)));
        let (_tx, rx) = oneshot::channel::<u32>();
        let short = Instant::now() + Duration::from_millis(20);
        assert_eq!(timeout.wait(rx, short).await, None);
        ends_at(short);
    }

    /// Now is just past `deadline` (a timer fires on a millisecond tick, and this machine
    /// may be busy: a generous bound, far below the timeouts it tells apart).
    fn ends_at(deadline: Instant) {
        let now = Instant::now();
        assert!(now >= deadline, "ended {:?} early", deadline - now);
        assert!(
            now - deadline < Duration::from_millis(500),
            "ended {:?} late",
            now - deadline
        );
    }
}
