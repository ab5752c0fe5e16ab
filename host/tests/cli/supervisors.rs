//! Supervisors from the CLI: named and dynamic ones, `via` children, start timeouts, and
//! `otter stop` of a subtree or of the root.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// A manifest with a registry and a named dynamic supervisor, which a probe (`front`)
/// starts children under.
fn dynamic_app() -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
probe = "{probe}"

[[registries]]
name = "Jobs"
keys = "unique"

[[children]]
name = "front"
module = "probe"
args = {{}}

[[children]]
id = "jobs"
type = "supervisor"
name = "JobSup"
strategy = "simple_one_for_one"

[[children.children]]
id = "job"
module = "probe"
args = {{}}
restart = "temporary"
"#,
        probe = guests().join("probe.wasm").display(),
    ));
    app
}

#[test]
fn a_guest_starts_children_under_a_named_dynamic_supervisor_from_the_manifest() {
    let app = dynamic_app();
    let _node = app.spawn().ready();
    let started = app.ok(&[
        "call",
        "front",
        r#"{"start_child": {"sup": {"name": "JobSup"}, "args": {"register": ["Jobs", ["job", 1]]}}}"#,
    ]);
    let child: u64 = started.trim().parse().expect("a pid");
    // Reached from the CLI by its via key.
    let pid = app.ok(&["call", r#"{"via": ["Jobs", ["job", 1]]}"#, r#""self_pid""#]);
    assert_eq!(pid.trim(), child.to_string());
    let out = app.otter(&["call", r#"{"via": ["Nope", 1]}"#, r#""ping""#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("unknown registry \"Nope\""),
        "{}",
        stderr_of(&out)
    );
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    let jobs = &tree["children"][1];
    assert_eq!(jobs["strategy"], "simple_one_for_one");
    assert_eq!(jobs["name"], "JobSup");
    assert_eq!(jobs["children"][0]["pid"], child);
    assert_eq!(jobs["children"][0]["id"], "job");
    assert_eq!(
        app.ok(&["whereis", "JobSup"]).trim(),
        jobs["pid"].to_string()
    );
}

#[test]
fn a_bad_registry_in_the_manifest_is_refused_with_its_line() {
    let app = dynamic_app();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    app.write_manifest(&text.replace("keys = \"unique\"", "keys = \"many\""));
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.toml:10: registries[0].keys: expected one of unique, duplicate"),
        "{stderr}"
    );
    assert!(!app.socket().exists());
}

/// A manifest of probes: `obs` (which the others report to), `shard` under a `via` key,
/// and a named nested supervisor `Workers` with `a` and `b`, under the root `Root`.
fn subtree_app() -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
probe = "{probe}"

[[registries]]
name = "Shards"
keys = "unique"

[supervisor]
id = "Root"
name = "Root"

[[children]]
name = "obs"
module = "probe"
args = {{}}

[[children]]
id = "shard"
module = "probe"
args = {{}}
via = ["Shards", 1]

[[children]]
id = "workers"
type = "supervisor"
name = "Workers"

[[children.children]]
name = "a"
module = "probe"
args = {{ observer = "obs", tag = "a" }}

[[children.children]]
name = "b"
module = "probe"
args = {{ observer = "obs", tag = "b" }}
"#,
        probe = guests().join("probe.wasm").display(),
    ));
    app
}

#[test]
fn stop_by_a_nested_supervisors_name_stops_its_subtree_in_reverse_and_it_stays_down() {
    let app = subtree_app();
    let _node = app.spawn().ready();
    // The via child is reached by its key.
    let shard = app.ok(&["call", r#"{"via": ["Shards", 1]}"#, r#""self_pid""#]);
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["children"][1]["pid"].to_string(), shard.trim());
    assert_eq!(tree["children"][1]["via"], serde_json::json!(["Shards", 1]));

    let out = app.otter(&["stop", "Workers", "--reason", "normal"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("badarg: a supervisor stops with reason shutdown"),
        "{}",
        stderr_of(&out)
    );

    assert_eq!(app.ok(&["stop", "Workers"]), "");
    let log: Value = serde_json::from_str(&app.ok(&["call", "obs", r#""log""#])).unwrap();
    assert_eq!(
        log,
        serde_json::json!([
            "init",
            "cast:a:init",
            "cast:b:init",
            "cast:b:terminate:shutdown",
            "cast:a:terminate:shutdown"
        ])
    );
    // Its parent stopped it as terminate_child does: kept, not restarted.
    std::thread::sleep(Duration::from_millis(200));
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["children"][2]["id"], "workers");
    assert!(tree["children"][2]["pid"].is_null(), "{tree}");
    for args in [
        &["whereis", "a"][..],
        &["whereis", "Workers"],
        &["stop", "Workers"],
    ] {
        let out = app.otter(args);
        assert_eq!(out.status.code(), Some(1), "otter {args:?}");
        assert!(stderr_of(&out).contains("noproc"), "{}", stderr_of(&out));
    }
    assert!(app.ok(&["whereis", "obs"]).trim().parse::<u64>().is_ok());
}

#[test]
fn stop_by_the_root_supervisors_name_stops_the_application_and_exits_0() {
    let app = subtree_app();
    let mut node = app.spawn().ready();
    assert_eq!(app.ok(&["stop", "Root"]), "");
    let status = node.wait(Duration::from_secs(30)).expect("otter run exits");
    let log = app.stderr();
    assert!(status.success(), "exit status {status}; stderr:\n{log}");
    assert!(log.contains("the root supervisor was stopped"), "{log}");
    assert!(!log.contains("too many restarts"), "{log}");
    assert!(!app.socket().exists(), "the socket is removed");
}

#[test]
fn a_child_overrunning_its_start_timeout_stops_the_application_start() {
    let app = subtree_app();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    app.write_manifest(
        &text
            .replace(
                "via = [\"Shards\", 1]\n",
                "via = [\"Shards\", 1]\nstart_timeout_ms = 200\n",
            )
            .replace("args = {}\nvia", "args = { mode = \"loop\" }\nvia"),
    );
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.toml:21: children[1]: shard did not start: init timed out"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("start_timeout_ms is not applied"),
        "{stderr}"
    );
    assert!(!app.socket().exists());
}
