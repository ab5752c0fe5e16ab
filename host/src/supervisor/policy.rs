//! A supervisor's restart decisions, apart from the processes they act on: what a child's
//! exit leads to (its restart type and reason), which siblings stop and start with it (the
//! strategy), and when restarts are too many (the intensity). The supervisor task runs a
//! [`Restarting`] step by step, stopping and starting the processes it names; the same
//! machine runs against a model of OTP's supervisor in the tests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Restart, Strategy};
use crate::exit::ExitReason;

/// A child as the restart decisions see it.
pub(crate) trait Slot {
    /// Its restart type.
    fn restart(&self) -> Restart;
    /// Whether it has a running process.
    fn is_running(&self) -> bool;
}

/// What a child's exit leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterExit {
    /// Restart it (and its group, per the strategy).
    Restart,
    /// Keep its spec, with no process.
    Keep,
    /// Forget its spec.
    Remove,
}

/// What the exit of a child with this restart type, for this reason, leads to. A dynamic
/// supervisor forgets every child it does not restart.
pub(crate) fn after_exit(restart: Restart, reason: &ExitReason, dynamic: bool) -> AfterExit {
    let restarts = match restart {
        Restart::Permanent => true,
        Restart::Transient => !reason.is_clean(),
        Restart::Temporary => false,
    };
    if restarts {
        AfterExit::Restart
    } else if dynamic || restart == Restart::Temporary {
        AfterExit::Remove
    } else {
        AfterExit::Keep
    }
}

/// The restart intensity: at most `max` restarts within any `period`.
#[derive(Debug)]
pub(crate) struct Intensity {
    max: u32,
    period: Duration,
    /// The instants of the restarts within the period (at most `max`), oldest first.
    recent: VecDeque<Instant>,
}

impl Intensity {
    /// No restarts yet; `max` within `period` allowed.
    pub(crate) fn new(max: u32, period: Duration) -> Self {
        Intensity {
            max,
            period,
            recent: VecDeque::with_capacity(max.min(64) as usize),
        }
    }

    /// The most restarts allowed within a period.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// The period.
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// Note a restart at `now`; false if it is one more than `max` within the period
    /// ending at `now` (a restart exactly `period` ago still counts, as in OTP). Amortised
    /// constant time; it remembers only restarts within the period, and at most `max`, so
    /// a high intensity costs memory only while restarts are that frequent.
    pub(crate) fn note(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.recent.front() {
            if now.saturating_duration_since(oldest) <= self.period {
                break;
            }
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max as usize {
            return false;
        }
        self.recent.push_back(now);
        if self.recent.capacity() > 64 && self.recent.len() < self.recent.capacity() / 4 {
            self.recent.shrink_to(self.recent.capacity() / 2);
        }
        true
    }
}

/// The next thing a [`Restarting`] asks of the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Stop the running child at this index (its spec stays where it is).
    Stop(usize),
    /// Start the child at this index; report a failure with [`Restarting::start_failed`].
    Start(usize),
    /// The restart is complete.
    Done,
    /// Too many restarts: the supervisor gives up (stops everything and exits).
    GiveUp,
}

#[derive(Debug)]
enum Phase {
    /// Note the restart against the intensity, then pick the group.
    Note,
    /// Stop these (ascending; popped from the end, so in reverse start order), then drop
    /// the temporary ones among `group`.
    Stop {
        pending: Vec<usize>,
        group: Vec<usize>,
    },
    /// Start `next..=last` where not running.
    Start {
        next: usize,
        last: usize,
    },
    Done,
}

/// One restart in progress: the child at index `crashed` exited and must restart, with
/// its group per the strategy. Call [`Restarting::next`] until it says [`Action::Done`] or
/// [`Action::GiveUp`], doing what each action says in between.
///
/// As OTP's supervisor: the group's other running children stop in reverse start order;
/// temporary ones among them are forgotten; then the group starts in order, those already
/// running (earlier siblings under `rest_for_one`) excepted and stopped ones (a transient
/// child that exited cleanly, a terminated child) included. A start that fails is another
/// restart of the child that failed, counted against the intensity, with its own group.
#[derive(Debug)]
pub(crate) struct Restarting {
    strategy: Strategy,
    dynamic: bool,
    crashed: usize,
    phase: Phase,
    /// The index of the last [`Action::Start`].
    starting: usize,
}

impl Restarting {
    /// The child at index `crashed` must restart.
    pub(crate) fn new(strategy: Strategy, crashed: usize) -> Self {
        Restarting {
            strategy,
            dynamic: strategy == Strategy::SimpleOneForOne,
            crashed,
            phase: Phase::Note,
            starting: crashed,
        }
    }

    /// The next action, given the children as they are now.
    pub(crate) fn next<C: Slot>(
        &mut self,
        children: &mut Vec<C>,
        intensity: &mut Intensity,
        now: Instant,
    ) -> Action {
        loop {
            match &mut self.phase {
                Phase::Note => {
                    if !intensity.note(now) {
                        self.phase = Phase::Done;
                        return Action::GiveUp;
                    }
                    let n = children.len();
                    let group: Vec<usize> = match self.strategy {
                        Strategy::OneForAll => (0..n).filter(|&j| j != self.crashed).collect(),
                        Strategy::RestForOne => (self.crashed + 1..n).collect(),
                        Strategy::OneForOne | Strategy::SimpleOneForOne => Vec::new(),
                    };
                    self.phase = Phase::Stop {
                        pending: group.clone(),
                        group,
                    };
                }
                Phase::Stop { pending, group } => {
                    if let Some(j) = pending.pop() {
                        if children[j].is_running() {
                            return Action::Stop(j);
                        }
                        continue;
                    }
                    // Temporary children stopped with the group are not restarted.
                    let mut crashed = self.crashed;
                    for &j in group.iter().rev() {
                        if children[j].restart() == Restart::Temporary {
                            children.remove(j);
                            if j < crashed {
                                crashed -= 1;
                            }
                        }
                    }
                    self.crashed = crashed;
                    let (first, last) = match self.strategy {
                        Strategy::OneForAll => (0, children.len() - 1),
                        Strategy::RestForOne => (crashed, children.len() - 1),
                        Strategy::OneForOne | Strategy::SimpleOneForOne => (crashed, crashed),
                    };
                    self.phase = Phase::Start { next: first, last };
                }
                Phase::Start { next, last } => {
                    if *next > *last {
                        // Children that did not start (init returned `ignore`) are kept
                        // without a process, unless the supervisor would forget them.
                        let dynamic = self.dynamic;
                        children.retain(|c| {
                            c.is_running() || !(dynamic || c.restart() == Restart::Temporary)
                        });
                        self.phase = Phase::Done;
                        return Action::Done;
                    }
                    let j = *next;
                    *next += 1;
                    if children[j].is_running() {
                        continue;
                    }
                    self.starting = j;
                    return Action::Start(j);
                }
                Phase::Done => return Action::Done,
            }
        }
    }

    /// The last [`Action::Start`] failed: that child restarts again, with its group.
    pub(crate) fn start_failed(&mut self) {
        self.crashed = self.starting;
        self.phase = Phase::Note;
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod model;
