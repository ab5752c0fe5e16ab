//! `otter upgrade` and `otter modules` against a running node.

use serde_json::Value;

use crate::support::*;

/// A `kv` server named `kv` and a `probe` named `p`, under a root supervisor.
fn app() -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
kv = "{kv}"
probe = "{probe}"

[supervisor]
id = "App"

[[children]]
id = "kv"
module = "kv"
name = "kv"

[[children]]
id = "p"
module = "probe"
name = "p"
args = {{}}
"#,
        kv = guests().join("kv.wasm").display(),
        probe = guests().join("probe.wasm").display(),
    ));
    app
}

fn wasm(name: &str) -> String {
    guests().join(format!("{name}.wasm")).display().to_string()
}

#[test]
fn upgrade_moves_kv_to_v2_with_its_data_and_back() {
    let app = app();
    let _node = app.spawn().ready();
    app.ok(&["call", "kv", r#"{"put": ["a", "1"]}"#]);
    let out = app.ok(&["upgrade", "kv", &wasm("kv_v2")]);
    assert!(out.contains("vsn 1 -> 2: 1 process(es) upgraded"), "{out}");
    assert_eq!(app.ok(&["call", "kv", r#""version""#]).trim(), "2");
    assert_eq!(app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(), r#""1""#);
    let ps = app.ok(&["ps"]);
    let kv_line = ps.lines().find(|l| l.contains(" kv ")).unwrap();
    assert!(kv_line.split_whitespace().any(|c| c == "2"), "{ps}");
    let modules: Value = serde_json::from_str(&app.ok(&["modules", "--json"])).unwrap();
    let kv = modules
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "kv")
        .unwrap();
    assert_eq!(
        (&kv["vsn"], &kv["processes"]),
        (&Value::from("2"), &Value::from(1))
    );
    assert!(app.ok(&["modules"]).starts_with("MODULE"));
    // The tree shows the version each child runs.
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["children"][0]["vsn"], "2");
    let tree = app.ok(&["tree"]);
    assert!(
        tree.lines().any(|l| l.contains("worker  kv vsn=2")),
        "{tree}"
    );
    let out = app.ok(&["upgrade", "kv", &wasm("kv")]);
    assert!(out.contains("vsn 2 -> 1"), "{out}");
    assert_eq!(app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(), r#""1""#);
}

#[test]
fn a_failed_upgrade_exits_non_zero_naming_the_pid_and_reason() {
    let app = app();
    let _node = app.spawn().ready();
    let pid = app.ok(&["whereis", "p"]).trim().to_owned();
    let out = app.otter(&[
        "upgrade",
        "probe",
        &wasm("probe_v2"),
        "--extra",
        r#"{"error": "not today"}"#,
    ]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");
    assert!(stderr.contains("not today"), "{stderr}");
    assert_eq!(app.ok(&["call", "p", r#""vsn""#]).trim(), r#""1""#);
    let out = app.otter(&["upgrade", "probe", &wasm("probe")]);
    assert!(
        stderr_of(&out).contains("nothing to do"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn upgrade_pid_changes_the_code_of_one_suspended_process() {
    let app = app();
    let _node = app.spawn().ready();
    let out = app.otter(&["upgrade", "--pid", "p"]);
    assert!(
        stderr_of(&out).contains("not suspended"),
        "{}",
        stderr_of(&out)
    );
    app.ok(&["suspend", "p"]);
    app.ok(&["upgrade", "--pid", "p"]);
    app.ok(&["resume", "p"]);
    let log = app.ok(&["call", "p", r#""log""#]);
    assert!(log.contains("code_change 1->1"), "{log}");
}
