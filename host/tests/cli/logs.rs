//! The node's log: what a guest writes reaches it as one line (it cannot forge the host's
//! lines), and its level comes from `OTTER_LOG`, else `RUST_LOG`.

use crate::support::*;

#[test]
fn a_guest_log_line_with_a_newline_stays_one_line() {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
probe = "{probe}"

[[children]]
name = "chatty"
module = "probe"
args = {{ say = "hi\nFAKE host line\u001b[2J" }}
"#,
        probe = guests().join("probe.wasm").display(),
    ));
    let running = app.spawn().ready();
    drop(running);
    let stderr = app.stderr();
    assert!(
        stderr.contains(r"hi\nFAKE host line\u{1b}[2J"),
        "the line is logged, escaped:\n{stderr}"
    );
    assert!(
        stderr.contains(r"said=hi\nFAKE host line\u{1b}[2J"),
        "the field is escaped too:\n{stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("FAKE")),
        "no forged line:\n{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "no raw escape:\n{stderr}");
}

#[test]
fn the_log_level_comes_from_otter_log_else_rust_log() {
    let debug_lines = |otter_log: Option<&str>, rust_log: Option<&str>| {
        let app = App::echo_kv();
        let mut cmd = otter();
        cmd.env_remove("OTTER_LOG").env_remove("RUST_LOG");
        if let Some(f) = otter_log {
            cmd.env("OTTER_LOG", f);
        }
        if let Some(f) = rust_log {
            cmd.env("RUST_LOG", f);
        }
        drop(app.spawn_with(cmd).ready());
        app.stderr()
            .lines()
            .filter(|l| l.contains(" DEBUG "))
            .count()
    };
    assert_eq!(debug_lines(None, None), 0, "info by default");
    assert!(debug_lines(None, Some("debug")) > 0, "RUST_LOG is read");
    assert!(
        debug_lines(Some("debug"), Some("info")) > 0,
        "OTTER_LOG first"
    );
    assert_eq!(
        debug_lines(Some("info"), Some("debug")),
        0,
        "OTTER_LOG first"
    );
}

#[test]
fn a_cast_that_does_not_decode_is_logged_with_the_cast_and_its_sender() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    let pid = app.ok(&["whereis", "echo"]).trim().to_owned();
    // The CLI waits for nothing: the cast is queued, and accepted.
    assert_eq!(app.ok(&["cast", "echo", "\"bogus\\nline\""]), "");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let log = loop {
        let log = app.stderr();
        if log.contains("cast did not decode") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let sent = log
        .lines()
        .find(|l| l.contains("cast from the control socket"))
        .unwrap_or_else(|| panic!("the control socket logs the cast:\n{log}"));
    assert!(sent.contains("to=echo"), "{sent}");
    assert!(sent.contains(&format!("pid={pid}")), "{sent}");
    assert!(sent.contains(r#""bogus\nline""#), "{sent}");
    let dropped = log
        .lines()
        .find(|l| l.contains("cast did not decode; dropped"))
        .unwrap_or_else(|| panic!("the server logs the drop:\n{log}"));
    assert!(dropped.contains(&format!("pid={pid}")), "{dropped}");
    assert!(
        dropped.contains("module=\"echo\"") || dropped.contains("module=echo"),
        "{dropped}"
    );
    assert!(dropped.contains("cast="), "{dropped}");
    // The server goes on.
    assert_eq!(app.ok(&["call", "echo", r#""ping""#]), "{\"pong\":1}\n");
}
