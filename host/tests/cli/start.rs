//! `otter start`: a child of a dynamic supervisor, or an unsupervised process of a module.

use serde_json::Value;

use crate::support::*;

/// A probe module, a named dynamic supervisor `JobSup` of probes and a static root `App`
/// (no name: reached by its manifest id); messages of at most 4 KiB.
fn jobs_app() -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"
max_message_size = 4096

[modules]
probe = "{probe}"
echo = "{echo}"

[supervisor]
id = "App"

[[children]]
id = "jobs"
type = "supervisor"
name = "JobSup"
strategy = "simple_one_for_one"

[[children.children]]
id = "job"
module = "probe"
args = {{ tag = "job" }}
restart = "temporary"
"#,
        probe = guests().join("probe.wasm").display(),
        echo = guests().join("echo.wasm").display(),
    ));
    app
}

fn fails(app: &App, args: &[&str], kind: &str) -> String {
    let out = app.otter(args);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "otter {args:?}: {stderr}");
    assert!(stderr.contains(kind), "otter {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "otter {args:?}");
    stderr
}

#[test]
fn start_starts_a_child_of_a_dynamic_supervisor_with_the_templates_args_merged() {
    let app = jobs_app();
    let _node = app.spawn().ready();
    let pid = app.ok(&["start", "JobSup", "--args", r#"{"observer": null}"#]);
    let pid: u64 = pid.trim().parse().expect("a pid");
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["children"][0]["children"][0]["pid"], pid);
    // The template's args reached init: the probe's tag.
    let state: Value = serde_json::from_str(&app.ok(&["state", &pid.to_string()])).unwrap();
    assert_eq!(state["tag"], "job");
    // By the supervisor's pid too; `ignore` is printed as such.
    let sup = tree["children"][0]["pid"].to_string();
    assert_eq!(
        app.ok(&["start", &sup, "--args", r#"{"mode": "ignore"}"#]),
        "ignore\n"
    );
    // A child whose init stops is `failed`, with the reason.
    let e = fails(
        &app,
        &[
            "start",
            "JobSup",
            "--args",
            r#"{"mode": {"stop": "no thanks"}}"#,
        ],
        "failed",
    );
    assert!(e.contains("no thanks"), "{e}");
}

#[test]
fn start_with_module_spawns_an_unsupervised_named_process() {
    let app = jobs_app();
    let _node = app.spawn().ready();
    let pid = app.ok(&["start", "--module", "echo", "--name", "echo2"]);
    assert_eq!(app.ok(&["whereis", "echo2"]), pid);
    assert_eq!(app.ok(&["call", "echo2", r#""ping""#]), "{\"pong\":1}\n");
    let e = fails(
        &app,
        &["start", "--module", "echo", "--name", "echo2"],
        "already_started",
    );
    assert!(e.contains(pid.trim()), "{e}");
    // Nobody restarts it.
    app.ok(&["stop", "echo2"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    fails(&app, &["whereis", "echo2"], "noproc");
}

#[test]
fn start_refuses_bad_json_unknown_modules_static_supervisors_and_huge_args() {
    let app = jobs_app();
    let _node = app.spawn().ready();
    fails(&app, &["start", "JobSup", "--args", "{nope"], "not JSON");
    fails(
        &app,
        &["start", "--module", "nope"],
        "unknown module \"nope\"",
    );
    fails(&app, &["start", "Nobody"], "noproc");
    // The root is static: it starts no child from args (found by its manifest id).
    fails(&app, &["start", "App"], "badarg");
    // Args a template cannot merge with ("job" args are a map) still start, as OTP's
    // [template, extra]; args over the message size limit do not.
    let huge = format!("\"{}\"", "x".repeat(5000));
    fails(
        &app,
        &["start", "--module", "echo", "--args", &huge],
        "badarg",
    );
    fails(&app, &["start", "JobSup", "--args", &huge], "badarg");
    // Usage errors: both or neither target, a name for a supervisor's child.
    for args in [
        &["start"][..],
        &["start", "JobSup", "--module", "echo"],
        &["start", "JobSup", "--name", "x"],
    ] {
        let out = app.otter(args);
        assert_eq!(out.status.code(), Some(2), "otter {args:?}");
    }
    // The node is unharmed.
    let pid = app.ok(&["start", "JobSup"]);
    assert!(pid.trim().parse::<u64>().is_ok(), "{pid}");
}

#[test]
fn stop_by_the_root_supervisors_manifest_id_stops_the_application() {
    let app = jobs_app();
    let mut node = app.spawn().ready();
    assert_eq!(app.ok(&["stop", "App"]), "");
    let status = node
        .wait(std::time::Duration::from_secs(30))
        .expect("otter run exits");
    assert!(status.success(), "{status}; stderr:\n{}", app.stderr());
    assert!(app.stderr().contains("the root supervisor was stopped"));
}
