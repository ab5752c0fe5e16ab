//! `otter reload` and `otter rollback`: releases from changed manifests.

use serde_json::Value;

use crate::support::*;

pub(crate) fn wasm(name: &str) -> String {
    guests().join(format!("{name}.wasm")).display().to_string()
}

/// A release: its version, the files `kv` and `probe` load, and its children's tables.
pub(crate) fn release(version: &str, kv: &str, probe: &str, children: &str) -> String {
    format!(
        r#"version = "{version}"

[node]
name = "t"
control = "ctl/t.sock"

[modules]
kv = "{kv}"
probe = "{probe}"

[supervisor]
id = "App"
{children}"#,
        kv = wasm(kv),
        probe = wasm(probe),
    )
}

pub(crate) const KV_AND_P: &str = r#"
[[children]]
id = "kv"
module = "kv"
name = "kv"

[[children]]
id = "p"
module = "probe"
name = "p"
args = {}
"#;

/// `v1` running; `next` written as `next.toml`.
pub(crate) fn app_with(next: &str) -> (App, String) {
    let app = App::new();
    app.write_manifest(&release("1", "kv", "probe", KV_AND_P));
    let path = app.path("next.toml");
    std::fs::write(&path, next).unwrap();
    (app, path.display().to_string())
}

pub(crate) fn registered(app: &App, name: &str) -> bool {
    app.otter(&["whereis", name]).status.success()
}

/// The tree's children as `id=vsn` (or `id=-` when not running), in order.
pub(crate) fn children(app: &App) -> Vec<String> {
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let vsn = c["vsn"].as_str().unwrap_or("-");
            format!("{}={vsn}", c["id"].as_str().unwrap())
        })
        .collect()
}

const KV_AND_Q: &str = r#"
[[children]]
id = "kv"
module = "kv"
name = "kv"

[[children]]
id = "q"
module = "probe"
name = "q"
args = {}
"#;

#[test]
fn reload_upgrades_changed_modules_stops_removed_children_and_starts_added_ones() {
    let (app, next) = app_with(&release("2", "kv_v2", "probe", KV_AND_Q));
    let _node = app.spawn().ready();
    app.ok(&["call", "kv", r#"{"put": ["a", "1"]}"#]);
    let kv_pid = app.ok(&["whereis", "kv"]);
    let out = app.ok(&["reload", &next]);
    assert!(out.starts_with("release 1 -> 2: 3 step(s)"), "{out}");
    assert!(out.contains("upgrade module kv: vsn 1 -> 2"), "{out}");
    assert!(out.contains("stop child p of App"), "{out}");
    assert!(out.contains("start child q (probe) under App"), "{out}");
    assert!(out.trim_end().ends_with("applied"), "{out}");
    // kv kept its pid and data, and runs v2; p is gone, q runs.
    assert_eq!(app.ok(&["whereis", "kv"]), kv_pid);
    assert_eq!(app.ok(&["call", "kv", r#""version""#]).trim(), "2");
    assert_eq!(app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(), r#""1""#);
    assert!(!registered(&app, "p"));
    assert_eq!(children(&app), ["kv=2", "q=1"]);
}

#[test]
fn rollback_returns_to_the_previous_release() {
    let (app, next) = app_with(&release("2", "kv_v2", "probe", KV_AND_Q));
    let _node = app.spawn().ready();
    app.ok(&["call", "kv", r#"{"put": ["a", "1"]}"#]);
    app.ok(&["reload", &next]);
    let out = app.ok(&["rollback"]);
    assert!(out.starts_with("release 2 -> 1: 3 step(s)"), "{out}");
    assert!(out.contains("upgrade module kv: vsn 2 -> 1"), "{out}");
    assert_eq!(children(&app), ["kv=1", "p=1"]);
    assert_eq!(app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(), r#""1""#);
    assert!(!registered(&app, "q"));
}

#[test]
fn reload_dry_run_prints_the_plan_and_changes_nothing() {
    let (app, next) = app_with(&release("2", "kv_v2", "probe", KV_AND_Q));
    let _node = app.spawn().ready();
    let out = app.ok(&["reload", "--dry-run", &next]);
    assert!(out.contains("upgrade module kv: vsn 1 -> 2"), "{out}");
    assert!(
        out.trim_end().ends_with("dry run: nothing changed"),
        "{out}"
    );
    assert_eq!(children(&app), ["kv=1", "p=1"]);
    let out = app.otter(&["rollback"]);
    assert!(
        stderr_of(&out).contains("no previous release"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn reload_of_the_running_manifest_is_a_no_op() {
    let (app, _) = app_with("");
    let _node = app.spawn().ready();
    let before = app.ok(&["whereis", "p"]);
    let out = app.ok(&["reload", &app.manifest().display().to_string()]);
    assert_eq!(out.trim(), "release 1 -> 1: nothing to do");
    assert_eq!(app.ok(&["whereis", "p"]), before);
}

#[test]
fn a_failed_code_change_rolls_the_whole_reload_back() {
    // kv moves to v2 first, then probe's code_change refuses: kv goes back to v1, p2
    // (started later in the plan) never runs, p keeps running.
    let children_then = format!(
        "{KV_AND_P}\n[[children]]\nid = \"p2\"\nmodule = \"probe\"\nname = \"p2\"\nargs = {{}}\n"
    );
    let (app, next) = app_with(&release("2", "kv_v2", "probe_v2", &children_then));
    let _node = app.spawn().ready();
    app.ok(&["call", "kv", r#"{"put": ["a", "1"]}"#]);
    let out = app.otter(&["reload", &next, "--extra", r#"{"error": "not today"}"#]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("upgrade module probe: vsn 1 -> 2) failed"),
        "{stderr}"
    );
    assert!(stderr.contains("not today"), "{stderr}");
    assert!(stderr.contains("undone"), "{stderr}");
    assert_eq!(children(&app)[0], "kv=1");
    assert_eq!(app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(), r#""1""#);
    assert_eq!(app.ok(&["call", "p", r#""vsn""#]).trim(), r#""1""#);
    assert_eq!(children(&app), ["kv=1", "p=1"]);
}

#[test]
fn a_new_child_whose_init_fails_rolls_the_whole_reload_back() {
    let failing = format!(
        "{KV_AND_Q}\n[[children]]\nid = \"bad\"\nmodule = \"probe\"\nargs = {{ mode = {{ stop = \"no\" }} }}\n"
    );
    let (app, next) = app_with(&release("2", "kv_v2", "probe", &failing));
    let _node = app.spawn().ready();
    let out = app.otter(&["reload", &next]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("start child bad (probe) under App) failed"),
        "{stderr}"
    );
    // Upgraded, stopped and started steps were all undone: p is back (a new pid), q gone.
    assert_eq!(children(&app)[0], "kv=1");
    assert!(!registered(&app, "q"));
    assert!(registered(&app, "p"));
    assert_eq!(children(&app), ["kv=1", "p=1"]);
}

#[test]
fn a_manifest_that_does_not_check_is_refused_with_its_line_and_field() {
    let broken = release(
        "2",
        "kv",
        "probe",
        "\n[[children]]\nid = \"x\"\nmodule = \"nope\"\n",
    );
    let (app, next) = app_with(&broken);
    let _node = app.spawn().ready();
    let out = app.otter(&["reload", &next]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("next.toml:"), "{stderr}");
    assert!(stderr.contains("children[0].module"), "{stderr}");
    assert_eq!(children(&app), ["kv=1", "p=1"]);
}

#[test]
fn a_changed_child_spec_is_used_when_the_child_restarts() {
    let changed = KV_AND_P.replace("args = {}", "args = { tag = \"new\" }");
    let (app, next) = app_with(&release("2", "kv", "probe", &changed));
    let _node = app.spawn().ready();
    let p = app.ok(&["whereis", "p"]);
    let out = app.ok(&["reload", &next]);
    assert!(out.contains("change the spec of child p of App"), "{out}");
    assert_eq!(app.ok(&["whereis", "p"]), p, "the child keeps running");
    app.ok(&["stop", "p", "--reason", "crash"]);
    let p2 = wait_for_new_pid(&app, "p", p.trim());
    assert_ne!(p2, p.trim());
    let state: Value = serde_json::from_str(&app.ok(&["state", "p"])).unwrap();
    assert_eq!(state["tag"], "new", "{state}");
}

/// `otter ARGS` started in the background against `app`'s node.
pub(crate) fn background(app: &App, args: &[&str]) -> std::process::Child {
    otter()
        .arg("--socket")
        .arg(app.socket())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start otter")
}

/// Wait until the node logs `line` while `holder` (the command that makes it) runs.
pub(crate) fn wait_for_log(app: &App, line: &str, holder: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !app.stderr().contains(line) {
        if let Some(status) = holder.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(holder.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("the command ended ({status}) before the node logged {line:?}: {stderr}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node never logged {line:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_reload_changing_an_engine_or_descriptor_key_says_it_applies_at_the_next_start() {
    let (app, next) = app_with(&release("1", "kv", "probe", KV_AND_P));
    let _running = app.spawn().ready();
    for key in [
        "max_wasm_stack = 524288",
        "epoch_tick_ms = 2",
        "load_timeout_ms = 1000",
        "max_guest_files = 64",
    ] {
        let text = release("2", "kv", "probe", KV_AND_P).replace(
            "control = \"ctl/t.sock\"",
            &format!("control = \"ctl/t.sock\"\n{key}"),
        );
        std::fs::write(&next, text).unwrap();
        let out = app.ok(&["reload", "--dry-run", &next]);
        let name = key.split(' ').next().unwrap();
        assert!(
            out.contains(&format!("note: [node] {name} change: at the next start")),
            "{key}: {out}"
        );
    }
}

/// A release whose reload takes a while: probe's `code_change` loops until the timeout
/// (5 s), then the reload is undone.
fn slow_release(app: &App) -> std::process::Child {
    let slow = app.path("slow.toml");
    std::fs::write(&slow, release("3", "kv", "probe_v2", KV_AND_P)).unwrap();
    background(
        app,
        &[
            "reload",
            slow.to_str().unwrap(),
            "--extra",
            r#""loop""#,
            "--timeout-ms",
            "5000",
        ],
    )
}

#[test]
fn a_reload_is_refused_busy_while_a_module_upgrade_runs() {
    let (app, next) = app_with(&release("2", "kv_v2", "probe", KV_AND_Q));
    let _node = app.spawn().ready();
    let mut upgrade = background(
        &app,
        &[
            "upgrade",
            "probe",
            &wasm("probe_v2"),
            "--extra",
            r#""loop""#,
            "--timeout-ms",
            "5000",
        ],
    );
    wait_for_log(&app, "upgrade starting", &mut upgrade);
    let out = app.otter(&["reload", &next]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("busy"), "{stderr}");
    assert!(
        stderr.contains("module probe is being upgraded"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let upgrade = upgrade.wait_with_output().unwrap();
    assert!(!upgrade.status.success());
    assert_eq!(children(&app), ["kv=1", "p=1"]);
    // Once the upgrade ended, the reload goes through.
    app.ok(&["reload", &next]);
    assert_eq!(children(&app), ["kv=2", "q=1"]);
}

#[test]
fn a_reload_is_refused_busy_while_another_reload_runs() {
    let (app, next) = app_with(&release("2", "kv_v2", "probe", KV_AND_Q));
    let _node = app.spawn().ready();
    let mut slow = slow_release(&app);
    wait_for_log(&app, "upgrade starting", &mut slow);
    let out = app.otter(&["reload", &next]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("busy"), "{stderr}");
    assert!(
        stderr.contains("a reload or rollback is running"),
        "{stderr}"
    );
    let out = app.otter(&["rollback"]);
    assert!(stderr_of(&out).contains("busy"), "{}", stderr_of(&out));
    assert!(!slow.wait_with_output().unwrap().status.success());
    assert_eq!(children(&app), ["kv=1", "p=1"]);
}

#[test]
fn a_module_upgrade_is_refused_busy_while_a_reload_runs() {
    let (app, _) = app_with("");
    let _node = app.spawn().ready();
    app.ok(&["call", "kv", r#"{"put": ["a", "1"]}"#]);
    let mut slow = slow_release(&app);
    wait_for_log(&app, "upgrade starting", &mut slow);
    let out = app.otter(&["upgrade", "kv", &wasm("kv_v2")]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("busy"), "{stderr}");
    assert!(stderr.contains("reload"), "{stderr}");
    assert!(!slow.wait_with_output().unwrap().status.success());
    assert_eq!(children(&app), ["kv=1", "p=1"]);
    assert_eq!(app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(), r#""1""#);
}

/// `kv` and a nested supervisor `workers` with probe children `ids`.
fn nested(ids: &[&str]) -> String {
    let mut text = String::from(
        "\n[[children]]\nid = \"kv\"\nmodule = \"kv\"\nname = \"kv\"\n\n[[children]]\nid = \"workers\"\ntype = \"supervisor\"\n",
    );
    for id in ids {
        text.push_str(&format!(
            "\n[[children.children]]\nid = \"{id}\"\nmodule = \"probe\"\nname = \"{id}\"\nargs = {{}}\n"
        ));
    }
    text
}

/// The running children of the nested supervisor `workers`, as `id=vsn`.
fn workers(app: &App) -> Vec<String> {
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    let workers = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "workers")
        .expect("workers");
    workers["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["id"].as_str().unwrap(),
                c["vsn"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[test]
fn reload_changes_children_inside_a_nested_supervisor() {
    let app = App::new();
    app.write_manifest(&release("1", "kv", "probe", &nested(&["w1", "w2"])));
    let next = app.path("next.toml");
    std::fs::write(
        &next,
        release("2", "kv", "probe_v2", &nested(&["w2", "w3"])),
    )
    .unwrap();
    let _node = app.spawn().ready();
    let w2 = app.ok(&["whereis", "w2"]);
    let out = app.ok(&["reload", next.to_str().unwrap()]);
    assert!(out.contains("stop child w1 of App/workers"), "{out}");
    assert!(
        out.contains("start child w3 (probe) under App/workers"),
        "{out}"
    );
    assert_eq!(workers(&app), ["w2=2", "w3=2"]);
    assert_eq!(app.ok(&["whereis", "w2"]), w2, "w2 kept its pid");
    assert!(!registered(&app, "w1"));
    app.ok(&["rollback"]);
    assert_eq!(workers(&app), ["w1=1", "w2=1"]);
    assert_eq!(app.ok(&["whereis", "w2"]), w2);
}

#[test]
fn a_failed_reload_undoes_an_upgrade_to_the_code_that_ran_even_when_its_file_is_gone() {
    // p runs code from a file deleted since (an `otter upgrade`); the reload moves it to the
    // release's code, then a new child fails: p goes back to the code it ran.
    let failing = format!(
        "{KV_AND_P}\n[[children]]\nid = \"bad\"\nmodule = \"probe\"\nargs = {{ mode = {{ stop = \"no\" }} }}\n"
    );
    let (app, next) = app_with(&release("2", "kv", "probe", &failing));
    let _node = app.spawn().ready();
    let gone = app.path("probe_gone.wasm");
    std::fs::copy(wasm("probe_v2"), &gone).unwrap();
    app.ok(&["upgrade", "probe", gone.to_str().unwrap()]);
    std::fs::remove_file(&gone).unwrap();
    assert_eq!(app.ok(&["call", "p", r#""vsn""#]).trim(), r#""2""#);
    let out = app.otter(&["reload", &next]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Step 1 takes probe to the release's code; it is undone.
    assert!(
        stderr.contains("step 2 of 2 (start child bad (probe) under App) failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the 1 step(s) before it were undone"),
        "{stderr}"
    );
    assert_eq!(app.ok(&["call", "p", r#""vsn""#]).trim(), r#""2""#);
    assert_eq!(children(&app), ["kv=1", "p=2"]);
}
