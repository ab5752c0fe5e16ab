//! `otter run`: starting a manifest's tree, refusing bad manifests and modules, stopping.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// A manifest with a nested supervisor: echo, then `workers` (one_for_all) with two
/// counters.
fn nested_app() -> App {
    let app = App::new();
    let wasm = guests();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
echo = "{echo}"
counter = "{counter}"

[supervisor]
id = "Root"
strategy = "one_for_one"

[[children]]
name = "echo"
module = "echo"

[[children]]
id = "workers"
type = "supervisor"
strategy = "one_for_all"

[[children.children]]
name = "worker_a"
module = "counter"

[[children.children]]
name = "worker_b"
module = "counter"
restart = "transient"
"#,
        echo = wasm.join("echo.wasm").display(),
        counter = wasm.join("counter.wasm").display(),
    ));
    app
}

#[test]
fn tree_shows_the_nested_structure() {
    let app = nested_app();
    let _node = app.spawn().ready();
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["id"], "Root");
    assert_eq!(tree["kind"], "supervisor");
    assert_eq!(tree["strategy"], "one_for_one");
    let children = tree["children"].as_array().expect("children");
    assert_eq!(children.len(), 2);
    assert_eq!(children[0]["id"], "echo");
    assert_eq!(children[0]["kind"], "worker");
    assert_eq!(children[0]["module"], "echo");
    assert_eq!(children[0]["restart"], "permanent");
    assert!(children[0]["pid"].is_u64());
    let workers = &children[1];
    assert_eq!(workers["id"], "workers");
    assert_eq!(workers["kind"], "supervisor");
    assert_eq!(workers["strategy"], "one_for_all");
    let inner = workers["children"].as_array().expect("nested children");
    let ids: Vec<&str> = inner.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["worker_a", "worker_b"]);
    assert_eq!(inner[0]["module"], "counter");
    assert_eq!(inner[1]["restart"], "transient");
    let a = inner[0]["pid"].as_u64().expect("worker_a runs");
    assert_eq!(app.ok(&["whereis", "worker_a"]).trim(), a.to_string());

    let text = app.ok(&["tree"]);
    assert!(text.starts_with("Root  pid="), "{text}");
    assert!(text.contains("\n  workers  pid="), "{text}");
    assert!(text.contains("\n    worker_a  pid="), "{text}");
}

#[test]
fn a_killed_permanent_worker_gets_a_new_pid_under_its_supervisor() {
    let app = nested_app();
    let _node = app.spawn().ready();
    let old_a = app.ok(&["whereis", "worker_a"]).trim().to_owned();
    let old_b = app.ok(&["whereis", "worker_b"]).trim().to_owned();
    app.ok(&["stop", "worker_a", "--reason", "kill"]);
    let new_a = wait_for_new_pid(&app, "worker_a", &old_a);
    // one_for_all: its sibling was restarted too.
    let new_b = wait_for_new_pid(&app, "worker_b", &old_b);
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    let inner = &tree["children"][1]["children"];
    assert_eq!(inner[0]["pid"].as_u64().unwrap().to_string(), new_a);
    assert_eq!(inner[1]["pid"].as_u64().unwrap().to_string(), new_b);
    assert!(
        app.stderr().contains("restarting child"),
        "{}",
        app.stderr()
    );
}

#[test]
fn a_bad_restart_value_is_refused_with_its_line_and_nothing_starts() {
    let app = nested_app();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    app.write_manifest(&text.replace("restart = \"transient\"", "restart = \"always\""));
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "app.toml:29: children[1].children[1].restart: expected one of permanent, transient, temporary"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("started"), "{stderr}");
    assert!(app.stdout().is_empty());
    assert!(!app.socket().exists());

    // And at the top level.
    let app = App::echo_kv();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    app.write_manifest(&format!("{text}restart = \"sometimes\"\n"));
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.toml:16: children[1].restart: expected one of"),
        "{stderr}"
    );
    assert!(!app.socket().exists());
}

#[test]
fn sigterm_stops_the_children_in_reverse_order_and_exits_0() {
    let app = App::echo_kv();
    let mut node = app.spawn().ready();
    node.signal(rustix::process::Signal::TERM);
    let status = node.wait(Duration::from_secs(30)).expect("otter run exits");
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        app.stderr()
    );
    let log = app.stderr();
    let kv = log.find(r#"stopped child="kv""#).expect("kv stopped");
    let echo = log.find(r#"stopped child="echo""#).expect("echo stopped");
    assert!(kv < echo, "kv (started last) stops first:\n{log}");
    assert!(!app.socket().exists(), "the socket is removed");
}

#[test]
fn a_second_node_on_the_same_socket_is_refused() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    let second = App::new();
    second.write_manifest(
        &std::fs::read_to_string(app.manifest())
            .unwrap()
            .replace("ctl/t.sock", &app.socket().display().to_string()),
    );
    let (status, stderr) = second.run_refused();
    assert!(!status.success());
    assert!(stderr.contains("a node is already running at"), "{stderr}");
    assert_eq!(
        app.ok(&["call", "echo", r#""ping""#]).trim(),
        r#"{"pong":1}"#
    );
}

#[test]
fn a_manifest_with_a_bad_field_is_refused_before_anything_starts() {
    let app = App::echo_kv();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    // Line 15 is the second child's `module`.
    let text = text.replace("module = \"kv\"", "module = \"kvv\"");
    app.write_manifest(&text);
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    let app_toml = app.manifest().display().to_string();
    assert!(
        stderr.contains(&format!(
            r#"{app_toml}:15: children[1].module: unknown module "kvv""#
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("started"), "{stderr}");
    assert!(app.stdout().is_empty());
    assert!(!app.socket().exists());

    // A field that does not exist, and a field of the wrong type.
    app.write_manifest(&text.replace(
        "module = \"kvv\"",
        "module = \"kv\"\nrestrt = \"permanent\"",
    ));
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("{app_toml}:16: children[1].restrt: unknown field")),
        "{stderr}"
    );
    app.write_manifest(&text.replace("module = \"kvv\"", "module = \"kv\"\nstart_timeout_ms = -1"));
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("{app_toml}:16: children[1].start_timeout_ms: ")),
        "{stderr}"
    );
    assert!(!app.socket().exists());
}

#[test]
fn a_corrupt_wasm_is_refused_with_its_path_and_reason_before_anything_starts() {
    let app = App::new();
    let bad = app.path("broken.wasm");
    std::fs::write(&bad, b"this is not wasm").unwrap();
    app.write_manifest(&format!(
        r#"[node]
control = "ctl/t.sock"

[modules]
echo = "{echo}"
broken = "broken.wasm"

[[children]]
name = "echo"
module = "echo"

[[children]]
module = "broken"
"#,
        echo = guests().join("echo.wasm").display(),
    ));
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("not a WebAssembly module or component"),
        "{stderr}"
    );
    assert!(stderr.contains(":6: modules.broken.path: "), "{stderr}");
    assert!(!stderr.contains("started"), "nothing started:\n{stderr}");
    assert!(app.stdout().is_empty());
    assert!(!app.socket().exists());
}

#[test]
fn a_child_that_fails_to_start_stops_the_ones_before_it() {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
control = "ctl/t.sock"

[modules]
echo = "{echo}"
probe = "{probe}"

[[children]]
name = "echo"
module = "echo"

[[children]]
name = "picky"
module = "probe"
args = {{ mode = {{ stop = "no thanks" }} }}
"#,
        echo = guests().join("echo.wasm").display(),
        probe = guests().join("probe.wasm").display(),
    ));
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(":12: children[1]: picky did not start: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("no thanks"),
        "the args reached init:\n{stderr}"
    );
    // The supervisor stopped echo again; nothing was reported as running.
    assert!(!stderr.contains(" running "), "{stderr}");
    assert!(app.stdout().is_empty());
    assert!(!app.socket().exists());
}

#[test]
fn otter_run_refuses_a_busy_wait_that_is_not_a_number() {
    let app = App::echo_kv();
    let mut running = app.spawn_with({
        let mut cmd = otter();
        cmd.env("OTTER_BUSY_WAIT_US", "off");
        cmd
    });
    let status = running
        .wait(Duration::from_secs(60))
        .expect("a refused setting makes otter run exit");
    let stderr = app.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("OTTER_BUSY_WAIT_US=\"off\": not a whole number of microseconds"),
        "{stderr}"
    );
    assert!(!app.socket().exists(), "no node was started");
}

#[test]
fn a_node_without_busy_wait_serves_calls() {
    let app = App::echo_kv();
    let _running = app
        .spawn_with({
            let mut cmd = otter();
            cmd.env("OTTER_BUSY_WAIT_US", "0");
            cmd
        })
        .ready();
    assert_eq!(app.ok(&["call", "echo", r#""ping""#]), "{\"pong\":1}\n");
}
