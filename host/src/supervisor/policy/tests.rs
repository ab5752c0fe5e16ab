//! The restart policy against a model of OTP's supervisor, over long random sequences of
//! exits, terminations, failed and ignored starts, and time passing.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{Action, AfterExit, Intensity, Restarting, Slot, after_exit};
use crate::exit::ExitReason;
use crate::supervisor::{Restart, Strategy as Kind};

use super::model::{self, Effect, Outcome, Reason, RestartType};

/// A child as the supervisor task keeps it, reduced to what the policy reads.
#[derive(Debug)]
struct SimChild {
    id: usize,
    restart: Restart,
    running: bool,
}

impl Slot for SimChild {
    fn restart(&self) -> Restart {
        self.restart
    }

    fn is_running(&self) -> bool {
        self.running
    }
}

/// The supervisor task's restart path (`on_exit`, `restart`, giving up) with processes
/// replaced by flags.
struct Sim {
    strategy: Kind,
    children: Vec<SimChild>,
    intensity: Intensity,
    gave_up: bool,
    epoch: Instant,
}

impl Sim {
    fn exit(
        &mut self,
        id: usize,
        reason: &ExitReason,
        now: u64,
        start: &mut dyn FnMut(usize) -> Outcome,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.gave_up {
            return effects;
        }
        let Some(i) = self.children.iter().position(|c| c.id == id && c.running) else {
            return effects;
        };
        self.children[i].running = false;
        let dynamic = self.strategy == Kind::SimpleOneForOne;
        match after_exit(self.children[i].restart, reason, dynamic) {
            AfterExit::Keep => {}
            AfterExit::Remove => {
                self.children.remove(i);
            }
            AfterExit::Restart => {
                let now = self.epoch + Duration::from_millis(now);
                let mut r = Restarting::new(self.strategy, i);
                loop {
                    match r.next(&mut self.children, &mut self.intensity, now) {
                        Action::Stop(j) => {
                            assert!(self.children[j].running, "stop of a stopped child");
                            effects.push(Effect::Stop(self.children[j].id));
                            self.children[j].running = false;
                        }
                        Action::Start(j) => {
                            let c = &mut self.children[j];
                            assert!(!c.running, "start of a running child");
                            effects.push(Effect::Start(c.id));
                            match start(c.id) {
                                Outcome::Started => c.running = true,
                                Outcome::Ignored => {}
                                Outcome::Failed => r.start_failed(),
                            }
                        }
                        Action::Done => break,
                        Action::GiveUp => {
                            self.gave_up = true;
                            for c in self.children.iter_mut().rev() {
                                if c.running {
                                    effects.push(Effect::Stop(c.id));
                                    c.running = false;
                                }
                            }
                            break;
                        }
                    }
                }
            }
        }
        effects
    }

    fn terminate(&mut self, id: usize) -> Vec<Effect> {
        let Some(i) = self.children.iter().position(|c| c.id == id && c.running) else {
            return Vec::new();
        };
        self.children[i].running = false;
        if self.children[i].restart == Restart::Temporary {
            self.children.remove(i);
        }
        vec![Effect::Stop(id)]
    }

    fn state(&self) -> Vec<(usize, bool)> {
        self.children.iter().map(|c| (c.id, c.running)).collect()
    }
}

fn restart_of(r: RestartType) -> Restart {
    match r {
        RestartType::Permanent => Restart::Permanent,
        RestartType::Transient => Restart::Transient,
        RestartType::Temporary => Restart::Temporary,
    }
}

fn reason_of(r: Reason) -> ExitReason {
    match r {
        Reason::Normal => ExitReason::Normal,
        Reason::Shutdown => ExitReason::Shutdown,
        Reason::ShutdownWith => {
            ExitReason::ShutdownWith(crate::term::encode("x").expect("a string encodes"))
        }
        Reason::Error => ExitReason::Error("boom".into()),
        Reason::Killed => ExitReason::Killed,
    }
}

#[derive(Debug, Clone)]
enum Event {
    Exit { child: usize, reason: Reason },
    Terminate { child: usize },
    Wait { ticks: u64 },
}

fn strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::OneForOne),
        Just(Kind::OneForAll),
        Just(Kind::RestForOne),
        Just(Kind::SimpleOneForOne),
    ]
}

fn restart_type() -> impl Strategy<Value = RestartType> {
    prop_oneof![
        Just(RestartType::Permanent),
        Just(RestartType::Transient),
        Just(RestartType::Temporary),
    ]
}

fn reason() -> impl Strategy<Value = Reason> {
    prop_oneof![
        1 => Just(Reason::Normal),
        1 => Just(Reason::Shutdown),
        1 => Just(Reason::ShutdownWith),
        3 => Just(Reason::Error),
        1 => Just(Reason::Killed),
    ]
}

fn event(children: usize) -> impl Strategy<Value = Event> {
    prop_oneof![
        8 => (0..children, reason()).prop_map(|(child, reason)| Event::Exit { child, reason }),
        1 => (0..children).prop_map(|child| Event::Terminate { child }),
        3 => (0..40u64).prop_map(|ticks| Event::Wait { ticks }),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        16 => Just(Outcome::Started),
        2 => Just(Outcome::Ignored),
        3 => Just(Outcome::Failed),
    ]
}

/// A supervisor: strategy, intensity, period (ticks), restart types (one, the template's,
/// for a dynamic supervisor's children).
fn supervisor() -> impl Strategy<Value = (Kind, u32, u64, Vec<RestartType>)> {
    (
        strategy(),
        0..6u32,
        1..60u64,
        prop::collection::vec(restart_type(), 1..7),
        restart_type(),
    )
        .prop_map(|(s, intensity, period, mut types, template)| {
            if s == Kind::SimpleOneForOne {
                types.iter_mut().for_each(|t| *t = template);
            }
            (s, intensity, period, types)
        })
}

fn model_strategy(s: Kind) -> model::Strategy {
    match s {
        Kind::OneForOne => model::Strategy::OneForOne,
        Kind::OneForAll => model::Strategy::OneForAll,
        Kind::RestForOne => model::Strategy::RestForOne,
        Kind::SimpleOneForOne => model::Strategy::SimpleOneForOne,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every exit, under every strategy, restart type, reason and intensity, stops and
    /// starts the same children in the same order as OTP's supervisor, and gives up at the
    /// same exit.
    #[test]
    fn restart_decisions_match_otp_over_random_exit_sequences(
        (strategy, intensity, period, types) in supervisor(),
        events in prop::collection::vec(event(7), 1..150),
        outcomes in prop::collection::vec(outcome(), 1..64),
    ) {
        let mut expected = model::Supervisor::new(model_strategy(strategy), intensity, period, &types);
        let mut sim = Sim {
            strategy,
            children: types
                .iter()
                .enumerate()
                .map(|(id, &t)| SimChild { id, restart: restart_of(t), running: true })
                .collect(),
            intensity: Intensity::new(intensity, Duration::from_millis(period)),
            gave_up: false,
            epoch: Instant::now(),
        };
        let (mut a, mut b) = (0, 0);
        let mut now = 0;
        for (n, e) in events.iter().enumerate() {
            let (want, got) = match *e {
                Event::Exit { child, reason } => {
                    let mut oa = || { a += 1; outcomes[(a - 1) % outcomes.len()] };
                    let want = expected.exit(child, reason, now, &mut |_| oa());
                    let mut ob = || { b += 1; outcomes[(b - 1) % outcomes.len()] };
                    let got = sim.exit(child, &reason_of(reason), now, &mut |_| ob());
                    (want, got)
                }
                Event::Terminate { child } if strategy != Kind::SimpleOneForOne => {
                    if expected.gave_up {
                        continue;
                    }
                    (expected.terminate(child), sim.terminate(child))
                }
                Event::Terminate { .. } => continue,
                Event::Wait { ticks } => {
                    now += ticks;
                    continue;
                }
            };
            prop_assert_eq!(&want, &got, "effects of event {} ({:?})", n, e);
            let model_state: Vec<_> = expected.children.iter().map(|c| (c.id, c.running)).collect();
            prop_assert_eq!(model_state, sim.state(), "children after event {} ({:?})", n, e);
            prop_assert_eq!(expected.gave_up, sim.gave_up, "gave up after event {}", n);
            if sim.gave_up {
                break;
            }
        }
    }
}

/// At most `max` restarts in any window of `period`: the intensity against a direct count
/// over every restart so far.
#[test]
fn intensity_allows_at_most_max_restarts_in_any_period() {
    let epoch = Instant::now();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(0..5u32, 1..30u64, prop::collection::vec(0..12u64, 1..100)),
            |(max, period, gaps)| {
                let mut intensity = Intensity::new(max, Duration::from_millis(period));
                let mut noted: Vec<u64> = Vec::new();
                let mut now = 0;
                for gap in gaps {
                    now += gap;
                    let within = noted.iter().filter(|&&t| now - t <= period).count();
                    let allowed = within < max as usize;
                    let ok = intensity.note(epoch + Duration::from_millis(now));
                    prop_assert_eq!(ok, allowed, "restart at {} after {:?}", now, noted);
                    if !ok {
                        break;
                    }
                    noted.push(now);
                }
                Ok(())
            },
        )
        .unwrap();
}

/// The intensity remembers only restarts within the period, however high `max` is: a
/// supervisor allowing a million restarts a second, restarting once every 2 ms for a long
/// time, must not keep every restart it ever made.
#[test]
fn intensity_forgets_restarts_older_than_the_period() {
    let epoch = Instant::now();
    let mut intensity = Intensity::new(1_000_000, Duration::from_millis(1));
    for i in 0..10_000u64 {
        assert!(intensity.note(epoch + Duration::from_millis(2 * i)));
    }
    assert!(
        intensity.recent.len() <= 1,
        "{} restarts remembered",
        intensity.recent.len()
    );
}
