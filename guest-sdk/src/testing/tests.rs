//! The fake host's small models, as a server's test relies on them.

use super::*;
use crate::{RegisterError, cancel_timer, register, registry, send, send_after, whereis};

#[test]
fn a_timer_is_cancelled_once_and_recorded() {
    let t = send_after("me", &"tick", 500);
    assert_eq!(cancel_timer(t), Some(500));
    assert_eq!(cancel_timer(t), None);
    assert_eq!(
        take(),
        [
            HostCall::SendAfter {
                to: "me".into(),
                msg: Term::of(&"tick"),
                ms: 500,
                timer: t
            },
            HostCall::CancelTimer { timer: t },
            HostCall::CancelTimer { timer: t },
        ]
    );
}

#[test]
fn names_behave_as_the_hosts() {
    set_name("db", 7);
    assert_eq!(whereis("db"), Some(7));
    assert_eq!(register("db"), Err(RegisterError::AlreadyRegistered(7)));
    assert_eq!(register("me"), Ok(()));
    assert_eq!(whereis("me"), Some(SELF_PID));
    assert_eq!(
        register("other"),
        Err(RegisterError::AlreadyNamed("me".into()))
    );
    assert_eq!(send("nobody", &1), Err(CallError::NoProc));
    assert_eq!(send("db", &1), Ok(()));
    reset();
    assert_eq!(whereis("db"), None);
    assert!(record().is_empty());
}

#[test]
fn registry_dispatch_reaches_the_registered_entries() {
    registry::register("PubSub", &"news", &()).unwrap();
    assert_eq!(registry::dispatch("PubSub", &"news", &"hi"), Ok(1));
    assert_eq!(registry::dispatch("PubSub", &"other", &"hi"), Ok(0));
    let entries: Vec<(Pid, ())> = registry::lookup("PubSub", &"news").unwrap();
    assert_eq!(entries, [(SELF_PID, ())]);
}

#[test]
fn scripted_answers_decode_their_arguments() {
    assert_eq!(
        crate::call::<_, u32>("adder", &[1, 2]),
        Err(CallError::NoProc)
    );
    on_call(|_to: &Dest, xs: Vec<u32>| Ok(xs.iter().sum::<u32>()));
    assert_eq!(crate::call::<_, u32>("adder", &[1, 2]), Ok(3));
    assert!(matches!(
        crate::call::<_, u32>("adder", &"three"),
        Err(CallError::Badarg(_))
    ));
    on_start_child(|_sup: &Dest, job: u32| Ok(Some(100 + Pid::from(job))));
    assert_eq!(crate::supervisor::start_child("Jobs", &7), Ok(Some(107)));
    assert_eq!(crate::supervisor::terminate_child("Jobs", 107), Ok(()));
}

#[test]
fn starts_are_scripted_and_recorded() {
    use crate::{StartError, StartOptions};
    assert_eq!(
        crate::start_link("worker", &1u32, StartOptions::new()),
        Err(StartError::UnknownModule("worker".into()))
    );
    on_start(|module: &str, job: u32| match module {
        "worker" => Ok(Some(200 + Pid::from(job))),
        other => Err(StartError::UnknownModule(other.into())),
    });
    let opts = StartOptions::new().name("w7");
    assert_eq!(
        crate::start_link("worker", &7u32, opts.clone()),
        Ok(Some(207))
    );
    let (pid, monitor) = crate::start_monitor("worker", &8u32, StartOptions::new())
        .unwrap()
        .unwrap();
    assert_eq!(pid, 208);
    assert_ne!(monitor, 0);
    let recorded = take();
    assert_eq!(
        recorded[1],
        HostCall::Start {
            kind: StartKind::Link,
            module: "worker".into(),
            args: Term::of(&7u32),
            options: opts,
        }
    );
    assert!(matches!(
        recorded[2],
        HostCall::Start {
            kind: StartKind::Monitor,
            ..
        }
    ));
}

#[test]
fn the_fake_clock_moves_only_when_told() {
    use crate::clock;
    use std::time::{Duration, UNIX_EPOCH};
    let t0 = clock::monotonic_time();
    assert_eq!(clock::monotonic_time(), t0);
    clock::sleep(Duration::from_micros(1500));
    assert_eq!(clock::monotonic_time() - t0, Duration::from_millis(2));
    advance(Duration::from_secs(60));
    assert_eq!(clock::monotonic_time() - t0, Duration::from_millis(60_002));
    assert_eq!(
        clock::system_time().duration_since(UNIX_EPOCH).unwrap(),
        Duration::from_nanos(SYSTEM_TIME_BASE_NS) + Duration::from_millis(60_002)
    );
    assert_eq!(take(), [HostCall::Sleep { ms: 2 }]);
    let t = crate::start_timer("me", &"tick", 10);
    assert_eq!(crate::cancel_timer(t), Some(10));
}

#[test]
fn a_span_emits_start_then_stop_with_the_work_s_duration() {
    use crate::telemetry::{Measurement, span};
    advance(std::time::Duration::from_millis(5));
    let r: Result<u32, String> = span(&["orders", "flush"], &[("table", "t")], || {
        crate::clock::sleep(std::time::Duration::from_millis(3));
        Ok(7)
    });
    assert_eq!(r, Ok(7));
    let events: Vec<HostCall> = take()
        .into_iter()
        .filter(|c| matches!(c, HostCall::Telemetry { .. }))
        .collect();
    let [
        HostCall::Telemetry {
            event: start,
            metadata: start_meta,
            ..
        },
        HostCall::Telemetry {
            event: stop,
            measurements,
            metadata: stop_meta,
        },
    ] = &events[..]
    else {
        panic!("two events: {events:?}")
    };
    assert_eq!(start, &["orders", "flush", "start"]);
    assert_eq!(stop, &["orders", "flush", "stop"]);
    assert_eq!(start_meta, &[("table".to_owned(), "t".to_owned())]);
    assert_eq!(stop_meta, start_meta);
    assert_eq!(
        measurements[0],
        ("duration".to_owned(), Measurement::Int(3_000_000)),
        "the fake clock moved by the sleep"
    );
}

#[test]
fn a_span_whose_work_fails_emits_exception_with_kind_and_reason() {
    use crate::telemetry::span;
    let r: Result<(), &str> = span(&["orders", "flush"], &[], || Err("disk full"));
    assert_eq!(r, Err("disk full"));
    let Some(HostCall::Telemetry {
        event, metadata, ..
    }) = take().pop()
    else {
        panic!("an event")
    };
    assert_eq!(event, ["orders", "flush", "exception"]);
    assert_eq!(
        metadata,
        [
            ("kind".to_owned(), "error".to_owned()),
            ("reason".to_owned(), "disk full".to_owned())
        ]
    );
}
