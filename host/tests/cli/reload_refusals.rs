//! `otter reload` and `otter rollback` given what no operator should give them: each is
//! refused with one clear line, nothing changes, and the node keeps answering.

use std::time::{Duration, Instant};

use otter::control::{self, ErrorKind, Request};
use serde_json::Value;

use crate::reload::{KV_AND_P, app_with, children, release};
use crate::support::*;

/// A node running release 1 with `kv` holding `a = 1`.
fn started(app: &App) -> Running<'_> {
    let node = app.spawn().ready();
    app.ok(&["call", "kv", r#"{"put": ["a", "1"]}"#]);
    node
}

/// The node still answers and runs the release it ran.
fn unchanged(app: &App) {
    assert_eq!(app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(), r#""1""#);
    assert_eq!(children(app), ["kv=1", "p=1"]);
}

/// `otter ARGS` fails with exit status 1 and a one-line message containing `what`, soon;
/// nothing changed.
fn refused(app: &App, args: &[&str], what: &str) {
    let started = Instant::now();
    let out = app.otter(args);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(what), "{args:?}: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{args:?} took {:?}",
        started.elapsed()
    );
    unchanged(app);
}

#[test]
fn reload_of_a_directory_is_refused() {
    let (app, _) = app_with("");
    let _node = started(&app);
    let dir = app.path("ctl");
    refused(
        &app,
        &["reload", dir.to_str().unwrap()],
        "not a regular file",
    );
}

#[test]
fn reload_of_a_device_is_refused_without_reading_it() {
    let (app, _) = app_with("");
    let _node = started(&app);
    refused(&app, &["reload", "/dev/zero"], "not a regular file");
}

#[test]
fn reload_of_a_huge_file_is_refused_without_reading_it() {
    let (app, _) = app_with("");
    let _node = started(&app);
    let huge = app.path("huge.toml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    refused(&app, &["reload", huge.to_str().unwrap()], "larger than");
}

#[test]
fn reload_with_an_extra_over_the_message_size_limit_is_refused_before_any_step() {
    let small = release("1", "kv", "probe", KV_AND_P).replace(
        "control = \"ctl/t.sock\"",
        "control = \"ctl/t.sock\"\nmax_message_size = 1000",
    );
    let next = small.replace("version = \"1\"", "version = \"2\"").replace(
        &format!("{}/kv.wasm", guests().display()),
        &format!("{}/kv_v2.wasm", guests().display()),
    );
    let (app, next_path) = app_with(&next);
    app.write_manifest(&small);
    let _node = started(&app);
    let extra = serde_json::to_string(&"x".repeat(2000)).unwrap();
    refused(
        &app,
        &["reload", &next_path, "--extra", &extra],
        "reload: badarg: extra of",
    );
}

#[test]
fn rollback_without_a_previous_release_is_refused() {
    let (app, _) = app_with("");
    let _node = started(&app);
    refused(&app, &["rollback"], "no previous release to roll back to");
}

#[test]
fn a_relative_manifest_path_is_the_clients_and_the_socket_refuses_one() {
    let (app, _) = app_with(&release("2", "kv_v2", "probe", KV_AND_P));
    let _node = started(&app);
    // The node runs elsewhere: the request carries no working directory, so the socket
    // takes only absolute paths.
    let err = control::request(
        &app.socket(),
        &Request::Reload {
            path: "next.toml".into(),
            dry_run: false,
            extra: Value::Null,
            force: false,
            timeout_ms: None,
        },
    )
    .unwrap_err();
    let control::ClientError::Failed(err) = err else {
        panic!("{err}");
    };
    assert_eq!(err.kind, ErrorKind::Badarg, "{err}");
    assert!(err.message.contains("absolute"), "{err}");
    unchanged(&app);
    // The CLI resolves it against its own working directory, as `cp` would.
    let out = otter()
        .current_dir(app.path(""))
        .arg("--socket")
        .arg(app.socket())
        .args(["reload", "next.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(children(&app), ["kv=2", "p=1"]);
}

#[test]
fn a_manifest_with_absurd_numbers_is_refused_or_applied_and_the_node_keeps_answering() {
    let absurd = format!(
        "{KV_AND_P}
[[children]]
id = \"big\"
type = \"supervisor\"
intensity = 18446744073709551615
period_ms = 18446744073709551615
shutdown = 18446744073709551615

[[children.children]]
id = \"w\"
module = \"probe\"
args = {{}}
shutdown = 18446744073709551615
start_timeout_ms = 18446744073709551615
hibernate_after_ms = 18446744073709551615
"
    )
    .replace("[node]", "[node]\nmax_message_size = 18446744073709551615");
    let (app, next) = app_with(&release("2", "kv", "probe", &absurd));
    let _node = started(&app);
    let out = app.otter(&["reload", &next]);
    let stderr = stderr_of(&out);
    assert!(
        out.status.success() || stderr.trim().lines().count() == 1,
        "{stderr}"
    );
    assert_eq!(app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(), r#""1""#);
    if out.status.success() {
        assert_eq!(children(&app), ["kv=1", "p=1", "big=-"]);
        app.ok(&["rollback"]);
    }
    unchanged(&app);
}

#[test]
fn a_manifest_with_ten_thousand_children_is_applied_and_rolled_back() {
    let mut many = String::from(KV_AND_P);
    many.push_str("\n[[children]]\nid = \"many\"\ntype = \"supervisor\"\n");
    for i in 0..10_000 {
        many.push_str(&format!(
            "\n[[children.children]]\nid = \"e{i}\"\nmodule = \"probe\"\nargs = {{}}\n"
        ));
    }
    let (app, next) = app_with(&release("2", "kv", "probe", &many));
    let _node = started(&app);
    let out = app.ok(&["reload", &next]);
    assert!(
        out.contains("start child many (supervisor) under App"),
        "{out}"
    );
    assert_eq!(app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(), r#""1""#);
    app.ok(&["rollback"]);
    unchanged(&app);
}
