//! Guests and supervisors: a server starts children under a named dynamic supervisor and
//! lists them, and supervisors' names.

use otter::{ChildSpec, Dest, Keys, Restart, Strategy, SupervisorError, SupervisorSpec, from_json};
use serde_json::{Value, json};

use crate::support::*;

/// A dynamic supervisor named `Workers` whose template is a temporary probe tagged `w`.
fn workers() -> SupervisorSpec {
    SupervisorSpec::new(Strategy::SimpleOneForOne)
        .name("Workers")
        .child(
            ChildSpec::worker("worker", "probe", from_json(&json!({"tag": "w"})))
                .restart(Restart::Temporary),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_starts_a_child_under_a_named_dynamic_supervisor_and_calls_it() {
    let node = node().await;
    node.create_registry("Jobs", Keys::Unique).unwrap();
    let sup = node.start_supervisor(workers()).await.unwrap();
    let g = probe(&node).await;
    let by_name = json!({"name": "Workers"});

    // The extra args are merged into the template's map: the child registers a key.
    let child: Value = node
        .call(
            g,
            &json!({"start_child": {"sup": by_name, "args": {"register": ["Jobs", ["job", 7]]}}}),
        )
        .await
        .unwrap();
    let child = child.as_u64().unwrap_or_else(|| panic!("a pid: {child}"));
    assert!(node.is_alive(child));

    // The guest calls it by pid and by the key it registered.
    let r: Value = node
        .call(
            g,
            &json!({"call": {"to": {"pid": child}, "request": "self_pid"}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!(child));
    let r: Value = node
        .call(
            g,
            &json!({"call": {"to": {"via": ["Jobs", ["job", 7]]}, "request": "ping"}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("pong"));

    // Listed and counted, from the guest (by name and by pid) and from Rust.
    let rows: Value = node
        .call(g, &json!({"which_children": by_name}))
        .await
        .unwrap();
    assert_eq!(
        rows,
        json!([{"id": "worker", "pid": child, "module": "probe", "supervisor": false, "restarts": 0}])
    );
    let counts: Value = node
        .call(g, &json!({"count_children": {"pid": sup.pid()}}))
        .await
        .unwrap();
    assert_eq!(
        counts,
        json!({"specs": 1, "active": 1, "supervisors": 0, "workers": 1})
    );
    assert_eq!(sup.which_children().await.unwrap()[0].pid, Some(child));

    // A second child; then the guest stops the first.
    let second: Value = node
        .call(g, &json!({"start_child": {"sup": by_name, "args": null}}))
        .await
        .unwrap();
    assert!(second.as_u64().is_some_and(|p| p != child), "{second}");
    let r: Value = node
        .call(
            g,
            &json!({"terminate_child": {"sup": by_name, "pid": child}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("ok"));
    assert!(!node.is_alive(child));
    let r: Value = node
        .call(
            g,
            &json!({"terminate_child": {"sup": by_name, "pid": child}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("not_found"));
    assert_eq!(sup.count_children().await.unwrap().active, 1);
    sup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_child_errors_name_what_went_wrong() {
    let node = node().await;
    let dynamic = node.start_supervisor(workers()).await.unwrap();
    let fixed = node
        .start_supervisor(
            SupervisorSpec::new(Strategy::OneForOne)
                .name("Fixed")
                .child(ChildSpec::worker("p", "probe", from_json(&json!({})))),
        )
        .await
        .unwrap();
    let g = probe(&node).await;
    let start = async |sup: Value, args: Value| -> Value {
        node.call(g, &json!({"start_child": {"sup": sup, "args": args}}))
            .await
            .unwrap()
    };
    assert_eq!(
        start(json!({"name": "Nobody"}), json!(null)).await,
        json!("no such supervisor")
    );
    // A worker's pid is not a supervisor.
    assert_eq!(
        start(json!({"pid": g}), json!(null)).await,
        json!("no such supervisor")
    );
    assert_eq!(
        start(json!({"name": "Fixed"}), json!(null)).await,
        json!("not supported by this supervisor's strategy")
    );
    let r = start(json!({"name": "Workers"}), json!({"mode": {"stop": "no"}})).await;
    let r = r.as_str().unwrap_or_default().to_owned();
    assert!(
        r.starts_with("the child failed to start") && r.contains("no"),
        "{r}"
    );
    assert_eq!(
        start(json!({"name": "Workers"}), json!({"mode": "ignore"})).await,
        Value::Null
    );
    assert_eq!(dynamic.count_children().await.unwrap().active, 0);
    fixed.stop().await;
    dynamic.stop().await;
    // A stopped supervisor's name is free, and nothing answers under it.
    assert_eq!(node.whereis("Workers"), None);
    assert!(node.supervisor(&Dest::from("Workers")).is_none());
    assert_eq!(
        start(json!({"name": "Workers"}), json!(null)).await,
        json!("no such supervisor")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_supervisor_under_a_taken_name_is_already_started() {
    let node = node().await;
    let first = node.start_supervisor(workers()).await.unwrap();
    assert_eq!(node.whereis("Workers"), Some(first.pid()));
    let r = node.start_supervisor(workers()).await;
    assert_eq!(
        r.map(|s| s.pid()),
        Err(SupervisorError::AlreadyStarted(first.pid()))
    );
    // A process cannot take a supervisor's name either.
    let r = try_probe(&node, json!({}), Some("Workers")).await;
    assert_eq!(r, Err(otter::StartError::AlreadyStarted(first.pid())));
    first.stop().await;
    let second = node.start_supervisor(workers()).await.unwrap();
    assert_eq!(
        node.supervisor(&Dest::from("Workers")).map(|s| s.pid()),
        Some(second.pid())
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_childspec_finds_children_as_otp_does() {
    let node = node().await;
    let dynamic = node.start_supervisor(workers()).await.unwrap();
    let fixed = node
        .start_supervisor(
            SupervisorSpec::new(Strategy::OneForOne)
                .name("Fixed")
                .child(
                    ChildSpec::worker("p", "probe", from_json(&json!({"tag": "fixed"})))
                        .restart(Restart::Transient)
                        .name("fixed_probe"),
                ),
        )
        .await
        .unwrap();
    let g = probe(&node).await;
    let get = async |sup: &str, child: Value| -> Value {
        node.call(
            g,
            &json!({"get_childspec": {"sup": {"name": sup}, "child": child}}),
        )
        .await
        .unwrap()
    };
    // A static supervisor's child by id; by pid it is not found (OTP 25).
    assert_eq!(
        get("Fixed", json!("p")).await,
        json!({"id": "p", "module": "probe", "args": {"tag": "fixed"}, "restart": "transient",
               "shutdown": 5000, "name": "fixed_probe"})
    );
    let fixed_pid = node.whereis("fixed_probe").unwrap();
    assert_eq!(get("Fixed", json!(fixed_pid)).await, json!("not_found"));
    assert_eq!(get("Fixed", json!("q")).await, json!("not_found"));

    // A dynamic supervisor answers its template, without the child's own args, for any
    // running child's pid and for the template's id; another pid is not found.
    let child: Value = node
        .call(
            g,
            &json!({"start_child": {"sup": {"name": "Workers"}, "args": {"extra": 1}}}),
        )
        .await
        .unwrap();
    let template = json!({"id": "worker", "module": "probe", "args": {"tag": "w"},
                          "restart": "temporary", "shutdown": 5000, "name": null});
    assert_eq!(get("Workers", child).await, template);
    assert_eq!(get("Workers", json!("worker")).await, template);
    assert_eq!(get("Workers", json!(g)).await, json!("not_found"));
    assert_eq!(get("Nobody", json!("p")).await, json!("no such supervisor"));

    // The same from Rust.
    let spec = fixed
        .get_childspec(otter::ChildRef::Id("p".into()))
        .await
        .unwrap();
    assert_eq!(spec.restart, Restart::Transient);
    assert!(matches!(
        dynamic.get_childspec(otter::ChildRef::Pid(g)).await,
        Err(otter::ChildError::NotFound)
    ));
    fixed.stop().await;
    dynamic.stop().await;
}
