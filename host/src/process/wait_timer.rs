//! The timer of a process's waits with a deadline: the calls it makes (`process.call`) and
//! its idle timeout (a callback's `timeout(ms)`, `hibernate_after`). One timer per process,
//! kept from wait to wait; the waits never overlap (a call waits inside a callback, the idle
//! timeout between callbacks).
//!
//! Arming and clearing a tokio timer for every call took ~6 % of the CPU of many → one (the
//! timer wheel's insert and remove, under the driver's lock), and about 90 ns of every
//! message a server that answers with an idle timeout takes. A process waits for one
//! thing at a time, and with the same timeout each wait's deadline is later than the one
//! before; so the timer armed for a wait stays armed through the waits that follow, and when
//! it fires before the deadline of the wait then going on, it is re-armed for that deadline.
//! Each wait still ends with `timeout` at its own deadline, no earlier; a timer armed for a
//! later deadline than the new wait's is moved earlier at once.
//!
//! A timer left armed after the last wait fires once (a spurious wake of the process's task,
//! which polls and finds nothing) and is then inert; hibernation drops it.
//!
//! Nor is the timer polled again while it holds the waiting task's waker and has not fired:
//! each poll registered the same waker again, ~40 ns of a call (`wait` alone, a million calls
//! answered after one pending poll, 18 rounds: 23–70 ns over no timer before, 0–31 after).

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Poll, Waker};

use tokio::time::{Instant, Sleep};

/// A process's wait timer (see the module doc): none until its first wait with a deadline.
/// One pointer, so that a process's context stays in its allocator size class.
#[derive(Default)]
pub(crate) struct WaitTimer {
    timer: Option<Pin<Box<Armed>>>,
}

pin_project_lite::pin_project! {
    /// The timer and the waker it holds.
    struct Armed {
        #[pin]
        sleep: Sleep,
        // The waker the timer was last polled with, while it has neither fired nor been
        // reset since (see the module doc).
        registered: Option<Waker>,
    }
}

impl WaitTimer {
    /// Wait for `reply` (a call's reply, the next message) until `deadline`: its output, or
    /// `None` once the deadline has passed.
    pub(crate) async fn wait<F: Future>(
        &mut self,
        reply: F,
        deadline: Instant,
    ) -> Option<F::Output> {
        let armed = match &mut self.timer {
            Some(armed) => {
                let a = armed.as_mut().project();
                if a.sleep.deadline() > deadline {
                    a.sleep.reset(deadline);
                    *a.registered = None;
                }
                armed
            }
            empty => empty.insert(Box::pin(Armed {
                sleep: tokio::time::sleep_until(deadline),
                registered: None,
            })),
        };
        let armed = armed.as_mut().project();
        let (mut sleep, registered) = (armed.sleep, armed.registered);
        let mut reply = pin!(reply);
        poll_fn(|cx| {
            if let Poll::Ready(out) = reply.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            // A timer that has not fired yet will wake the waker it holds: this one.
            if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) && !sleep.is_elapsed() {
                return Poll::Pending;
            }
            // At most twice: a timer that fired for an earlier deadline is re-armed for this
            // one, which is then pending (or, if it has passed too, fires at once).
            loop {
                // Out of budget, tokio's timer returns before taking the waker (and has the
                // task polled again at once): asked before each poll, as the first may have
                // spent the last of it.
                let registers = tokio::task::coop::has_budget_remaining();
                if sleep.as_mut().poll(cx).is_pending() {
                    *registered = registers.then(|| cx.waker().clone());
                    return Poll::Pending;
                }
                if sleep.deadline() >= deadline {
                    *registered = None;
                    return Poll::Ready(None);
                }
                sleep.as_mut().reset(deadline);
            }
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
    use std::future::{Future, poll_fn};
    use std::pin::pin;
    use std::task::Poll;
    use std::time::Duration;

    use tokio::sync::oneshot;
    use tokio::time::Instant;

    use super::WaitTimer;

    #[tokio::test]
    async fn each_call_times_out_at_its_own_deadline_whatever_the_timer_was_armed_for() {
        let mut timeout = WaitTimer::default();
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
        let mut timeout = WaitTimer::default();
        let (tx, rx) = oneshot::channel::<u32>();
        tx.send(2).unwrap();
        let long = Instant::now() + Duration::from_secs(60);
        assert_eq!(timeout.wait(rx, long).await, Some(Ok(2)));
        let (_tx, rx) = oneshot::channel::<u32>();
        let short = Instant::now() + Duration::from_millis(20);
        assert_eq!(timeout.wait(rx, short).await, None);
        ends_at(short);
    }

    /// `wait` for a reply that never comes, in a task of its own (whose waker a timer keeps,
    /// where a `block_on`'s may differ from poll to poll); `Err` if it has not timed out
    /// within 5 s. Before waiting, the task spends its budget if `out_of_budget`.
    async fn never_answered(
        mut timeout: WaitTimer,
        deadline: Instant,
        out_of_budget: bool,
    ) -> Result<WaitTimer, &'static str> {
        tokio::spawn(async move {
            if out_of_budget {
                // Without yielding: each message received costs a unit.
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1024);
                for _ in 0..1024 {
                    tx.try_send(0).unwrap();
                }
                while tokio::task::coop::has_budget_remaining() {
                    rx.recv().await;
                }
            }
            let (_tx, reply) = oneshot::channel::<u32>();
            let outcome = {
                let mut wait = pin!(timeout.wait(reply, deadline));
                // A guard of its own, polled after the call (not `tokio::time::timeout`,
                // which lifts the budget for what it wraps).
                let mut guard = pin!(tokio::time::sleep(Duration::from_secs(5)));
                poll_fn(|cx| {
                    if let Poll::Ready(out) = wait.as_mut().poll(cx) {
                        return Poll::Ready(Ok(out));
                    }
                    guard
                        .as_mut()
                        .poll(cx)
                        .map(|()| Err("the call never timed out"))
                })
                .await
            };
            assert_eq!(outcome?, None);
            Ok(timeout)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_call_made_when_its_task_is_out_of_budget_still_times_out() {
        let deadline = Instant::now() + Duration::from_millis(20);
        never_answered(WaitTimer::default(), deadline, true)
            .await
            .unwrap();
        ends_at(deadline);
    }

    #[tokio::test]
    async fn a_timer_that_fires_for_an_earlier_call_wakes_the_next_one_to_wait_on() {
        // The timer is armed for the first call's deadline, and holds its task's waker.
        let first = Instant::now() + Duration::from_millis(20);
        let timeout = never_answered(WaitTimer::default(), first, false)
            .await
            .unwrap();
        // A second call from another task arms nothing new: its deadline is later. Its
        // first poll leaves the timer holding its waker; the timer fires for the first
        // deadline and must still be polled, re-armed for the second's.
        let second = Instant::now() + Duration::from_millis(40);
        never_answered(timeout, second, false).await.unwrap();
        ends_at(second);
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
