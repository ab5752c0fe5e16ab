//! What a guest writes reaches the node's log as one line: it cannot forge the host's lines.

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
