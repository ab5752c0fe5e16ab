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
