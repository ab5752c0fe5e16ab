//! `otter reload` with changed grants: the plan shows them, processes started from then on
//! get them, running ones keep theirs until they restart, and a failed reload puts the old
//! ones back.

use crate::reload::wasm;
use crate::support::*;

fn wasi_probe() -> String {
    guests();
    xtask::wasi_guest_dir()
        .join("wasi_probe.wasm")
        .display()
        .to_string()
}

/// A release whose `wasi_probe` module sees `MODE = mode`, running `children` (TOML) after
/// the `probe` child.
fn release(version: &str, mode: &str, children: &str) -> String {
    format!(
        r#"version = "{version}"

[node]
name = "t"
control = "ctl/t.sock"

[modules]
probe = "{probe}"

[modules.wasi_probe]
path = "{wasi_probe}"
grants = {{ env = {{ MODE = "{mode}" }} }}

[supervisor]
id = "App"

[[children]]
name = "wp"
module = "wasi_probe"
{children}"#,
        probe = wasm("probe"),
        wasi_probe = wasi_probe(),
    )
}

/// `v1` (MODE "one") running; `next` written as `next.toml`.
fn app_with(next: &str) -> (App, String) {
    let app = App::new();
    app.write_manifest(&release("1", "one", ""));
    let path = app.path("next.toml");
    std::fs::write(&path, next).unwrap();
    (app, path.display().to_string())
}

fn mode(app: &App, name: &str) -> String {
    app.ok(&["call", name, r#"{"env":"MODE"}"#])
        .trim()
        .to_owned()
}

/// Crash `name` and wait for its supervisor to restart it.
fn restart(app: &App, name: &str) {
    let pid = app.ok(&["whereis", name]);
    app.ok(&["stop", name, "--reason", "crash"]);
    wait_for_new_pid(app, name, pid.trim());
}

const FRESH: &str = "\n[[children]]\nname = \"fresh\"\nmodule = \"wasi_probe\"\n";

#[test]
fn reload_dry_run_shows_a_grant_change_and_changes_nothing() {
    let (app, next) = app_with(&release("2", "two", ""));
    let _node = app.spawn().ready();
    let out = app.ok(&["reload", "--dry-run", &next]);
    assert!(
        out.contains("grant module wasi_probe its new grants (processes started from now on; 1 running keep theirs until they restart)"),
        "{out}"
    );
    assert!(!out.contains("upgrade"), "the bytes are the same: {out}");
    restart(&app, "wp");
    assert_eq!(mode(&app, "wp"), r#"{"ok":"one"}"#);
}

#[test]
fn reload_gives_changed_grants_to_processes_started_after_it_and_at_restarts() {
    let (app, next) = app_with(&release("2", "two", FRESH));
    let _node = app.spawn().ready();
    assert_eq!(mode(&app, "wp"), r#"{"ok":"one"}"#);
    let out = app.ok(&["reload", &next]);
    assert!(out.contains("grant module wasi_probe"), "{out}");
    assert_eq!(
        mode(&app, "fresh"),
        r#"{"ok":"two"}"#,
        "a new child has them"
    );
    assert_eq!(
        mode(&app, "wp"),
        r#"{"ok":"one"}"#,
        "a running process keeps the grants it started with"
    );
    restart(&app, "wp");
    assert_eq!(mode(&app, "wp"), r#"{"ok":"two"}"#, "its restart has them");
    // Rolling back gives the old ones back the same way.
    let out = app.ok(&["rollback"]);
    assert!(out.contains("grant module wasi_probe"), "{out}");
    restart(&app, "wp");
    assert_eq!(mode(&app, "wp"), r#"{"ok":"one"}"#);
}

#[test]
fn a_failed_reload_puts_the_old_grants_back() {
    let failing = format!(
        "{FRESH}\n[[children]]\nid = \"bad\"\nmodule = \"probe\"\nargs = {{ mode = {{ stop = \"no\" }} }}\n"
    );
    let (app, next) = app_with(&release("2", "two", &failing));
    let _node = app.spawn().ready();
    let out = app.otter(&["reload", &next]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("undone"), "{stderr}");
    restart(&app, "wp");
    assert_eq!(mode(&app, "wp"), r#"{"ok":"one"}"#);
}
