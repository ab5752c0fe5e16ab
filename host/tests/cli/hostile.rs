//! A hostile guest under the real `otter run`: terms nested past any sane depth reach the
//! host's JSON conversion (for the CLI) and its log formatting, and the node goes on.

use crate::support::*;

/// `otter run` at debug level (so clean exit reasons are formatted into the log) with one
/// `hostile` server and an `echo`.
fn hostile_app() -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
hostile = "{hostile}"
echo = "{echo}"

[[children]]
name = "hostile"
module = "hostile"
restart = "temporary"

[[children]]
name = "echo"
module = "echo"
"#,
        hostile = guests().join("hostile.wasm").display(),
        echo = guests().join("echo.wasm").display(),
    ));
    app
}

#[test]
fn a_reply_nested_past_the_depth_limit_is_badreply_and_the_node_goes_on() {
    let app = hostile_app();
    let _node = app.spawn().ready();
    let out = app.otter(&["call", "hostile", r#"{"reply_with": {"depth": 100000}}"#]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("badreply") && err.contains("deeper"), "{err}");
    assert_eq!(app.ok(&["call", "hostile", r#""count""#]).trim(), r#""0""#);
}

#[test]
fn a_shutdown_reason_nested_past_the_depth_limit_is_logged_cut_and_the_node_goes_on() {
    let app = hostile_app();
    let node = {
        let mut cmd = otter();
        cmd.env("OTTER_LOG", "debug");
        app.spawn_with(cmd).ready()
    };
    let bye = app.ok(&["call", "hostile", r#"{"stop_with": {"depth": 60000}}"#]);
    assert_eq!(bye.trim(), r#""bye""#);
    assert!(
        app.otter(&["whereis", "hostile"]).status.code() == Some(1),
        "the temporary child is gone"
    );
    assert_eq!(
        app.ok(&["call", "echo", r#""ping""#]).trim(),
        r#"{"pong":1}"#
    );
    drop(node);
    assert!(app.stderr().contains("shutdown([[[["), "{}", app.stderr());
}

#[test]
fn a_reply_whose_map_keys_nest_is_badreply_and_the_node_goes_on() {
    let app = hostile_app();
    let _node = app.spawn().ready();
    // 26 levels of `{key: 0}` with the next level as the key: 57 bytes of CBOR, whose JSON
    // form would double with each level (2^27 bytes here; at 100 levels, past any memory).
    let out = app.otter(&[
        "call",
        "hostile",
        r#"{"reply_with": {"depth": 26, "keys": true}}"#,
    ]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err:.200}");
    assert!(err.contains("badreply") && err.contains("keys"), "{err}");
    assert_eq!(app.ok(&["call", "hostile", r#""count""#]).trim(), r#""0""#);
}

#[test]
fn a_guest_log_line_with_thousands_of_fields_stays_a_bounded_line() {
    let app = hostile_app();
    let node = app.spawn().ready();
    let fields = app.ok(&[
        "call",
        "hostile",
        r#"{"flood": ["log_fields", 2000, 4096]}"#,
    ]);
    assert_eq!(fields.trim(), r#""2000""#);
    drop(node);
    let stderr = app.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("fields"))
        .unwrap_or_else(|| panic!("the line is logged:\n{stderr:.2000}"));
    assert!(line.len() <= 16 << 10, "a log line of {} bytes", line.len());
    assert!(line.contains("xxxx") && line.ends_with('…'), "{line:.300}");
}
