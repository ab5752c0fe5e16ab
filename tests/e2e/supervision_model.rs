//! A real supervisor of real probes, driven by random sequences of exits, against the model
//! of OTP's supervisor (host/src/supervisor/policy/model.rs): which children get new pids, which keep theirs,
//! which specs go, and whether the supervisor gives up.

use std::collections::HashMap;
use std::time::Duration;

use otter::{
    ChildSpec, ExitReason, Node, Pid, Restart, Strategy as Kind, Supervisor, SupervisorSpec,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::support::wasm;

#[path = "../../host/src/supervisor/policy/model.rs"]
mod model;

use model::{Effect, Outcome, Reason, RestartType};

/// Long enough that every restart of a case falls within one period.
const PERIOD: Duration = Duration::from_secs(600);

fn name(id: usize) -> String {
    format!("c{id}")
}

fn restart_of(r: RestartType) -> Restart {
    match r {
        RestartType::Permanent => Restart::Permanent,
        RestartType::Transient => Restart::Transient,
        RestartType::Temporary => Restart::Temporary,
    }
}

fn strategy_of(s: model::Strategy) -> Kind {
    match s {
        model::Strategy::OneForOne => Kind::OneForOne,
        model::Strategy::OneForAll => Kind::OneForAll,
        model::Strategy::RestForOne => Kind::RestForOne,
        model::Strategy::SimpleOneForOne => Kind::SimpleOneForOne,
    }
}

/// Make child `pid` (registered as `c{id}`) exit with `reason`, the way a guest would.
async fn make_exit(node: &Node, id: usize, pid: Pid, reason: Reason) {
    let stop = |r: &str| json!({ "stop": r });
    match reason {
        Reason::Error => {
            let _ = node
                .call::<_, Value>(name(id).as_str(), &json!("trap"))
                .await;
        }
        Reason::Normal => {
            let _ = node
                .call::<_, Value>(name(id).as_str(), &stop("normal"))
                .await;
        }
        Reason::Shutdown => {
            let _ = node
                .call::<_, Value>(name(id).as_str(), &stop("shutdown"))
                .await;
        }
        Reason::ShutdownWith => {
            node.exit(pid, ExitReason::ShutdownWith(otter::encode("x").unwrap()));
        }
        Reason::Killed => {
            node.kill(pid);
        }
    }
    node.wait_exit(pid).await;
}

async fn children(sup: &Supervisor) -> Vec<(usize, Option<Pid>)> {
    sup.which_children()
        .await
        .expect("the supervisor answers")
        .into_iter()
        .map(|c| (c.id[1..].parse().unwrap(), c.pid))
        .collect()
}

async fn run_case(
    strategy: model::Strategy,
    intensity: u32,
    types: Vec<RestartType>,
    exits: Vec<(usize, Reason)>,
) -> Result<(), TestCaseError> {
    let node = Node::new(Default::default()).expect("node");
    node.load_module("probe", wasm("probe")).await.unwrap();
    let spec = types.iter().enumerate().fold(
        SupervisorSpec::new(strategy_of(strategy)).intensity(intensity, PERIOD),
        |s, (id, &t)| {
            s.child(
                ChildSpec::worker(name(id), "probe", otter::from_json(&json!({})))
                    .name(name(id))
                    .restart(restart_of(t)),
            )
        },
    );
    let sup = node
        .start_supervisor(spec)
        .await
        .expect("supervisor starts");
    let mut expected =
        model::Supervisor::new(strategy, intensity, PERIOD.as_millis() as u64, &types);
    let mut pids: HashMap<usize, Pid> = children(&sup)
        .await
        .into_iter()
        .map(|(id, p)| (id, p.expect("started")))
        .collect();
    for (n, &(id, reason)) in exits.iter().enumerate() {
        let Some(&pid) = pids.get(&id) else {
            continue;
        };
        let effects = expected.exit(id, reason, 0, &mut |_| Outcome::Started);
        make_exit(&node, id, pid, reason).await;
        if expected.gave_up {
            prop_assert_eq!(sup.wait_exit().await, ExitReason::Shutdown);
            prop_assert!(
                sup.gave_up(),
                "exit {} ({:?} of c{}): gave up",
                n,
                reason,
                id
            );
            for p in pids.values() {
                prop_assert!(!node.is_alive(*p), "a child outlived its supervisor");
            }
            prop_assert_eq!(node.process_count(), 0);
            return Ok(());
        }
        let now = children(&sup).await;
        let want: Vec<(usize, bool)> = expected
            .children
            .iter()
            .map(|c| (c.id, c.running))
            .collect();
        let got: Vec<(usize, bool)> = now.iter().map(|&(id, p)| (id, p.is_some())).collect();
        prop_assert_eq!(
            &want,
            &got,
            "exit {} ({:?} of c{}): children",
            n,
            reason,
            id
        );
        for &(cid, p) in &now {
            let started = effects.contains(&Effect::Start(cid));
            match (p, pids.get(&cid)) {
                (Some(p), Some(&old)) => prop_assert_eq!(
                    p != old,
                    started,
                    "exit {} ({:?} of c{}): c{} new pid",
                    n,
                    reason,
                    id,
                    cid
                ),
                (Some(_), None) => prop_assert!(started, "c{} started without cause", cid),
                (None, _) => {}
            }
            prop_assert_eq!(node.whereis(&name(cid)), p, "c{} registered", cid);
        }
        pids = now
            .into_iter()
            .filter_map(|(id, p)| Some((id, p?)))
            .collect();
    }
    prop_assert!(sup.is_alive());
    sup.stop().await;
    prop_assert_eq!(node.process_count(), 0);
    Ok(())
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

/// A static supervisor with random strategy, restart types and intensity; a random
/// sequence of crashes, clean exits and kills of its children: after each, the children
/// with new pids are exactly those OTP's supervisor restarts, the others keep theirs,
/// the names follow, and it gives up exactly when OTP's would.
#[test]
fn random_exits_restart_what_otp_restarts_and_give_up_when_it_would() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    crate::support::guests();
    let cases = std::env::var("OTTER_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let case = (
        prop_oneof![
            Just(model::Strategy::OneForOne),
            Just(model::Strategy::OneForAll),
            Just(model::Strategy::RestForOne),
        ],
        0..8u32,
        prop::collection::vec(restart_type(), 1..6),
        prop::collection::vec((0..6usize, reason()), 1..14),
    );
    runner
        .run(&case, |(strategy, intensity, types, exits)| {
            rt.block_on(run_case(strategy, intensity, types, exits))
        })
        .unwrap();
}
