//! What the client commands print: guest-chosen text escaped in human-readable output, and
//! a quiet exit when whoever reads stdout goes away.

use std::process::Stdio;

use serde_json::Value;

use crate::support::*;

/// Text a guest could use to forge output: a newline, a clear-screen sequence, DEL, a C1
/// control.
const EVIL: &str = "evil\n\u{1b}[2Jforged\u{7f}\u{9b}";

/// Only printable text and line ends.
fn assert_no_control_chars(what: &str, out: &str) {
    let bad: Vec<char> = out
        .chars()
        .filter(|&c| c != '\n' && c.is_control())
        .collect();
    assert!(bad.is_empty(), "{what} printed {bad:?}:\n{out}");
}

/// echo, a probe without a name (it registers one itself), and a supervisor whose id
/// holds control characters (from the manifest).
fn app() -> App {
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
id = "p"
module = "probe"
args = {{}}

[[children]]
id = "sup\u001b[2J\nforged"
type = "supervisor"

[[children.children]]
module = "echo"
"#,
        echo = guests().join("echo.wasm").display(),
        probe = guests().join("probe.wasm").display(),
    ));
    app
}

fn probe_pid(app: &App) -> String {
    let ps: Value = serde_json::from_str(&app.ok(&["ps", "--json"])).unwrap();
    ps.as_array()
        .unwrap()
        .iter()
        .find(|p| p["module"] == "probe")
        .expect("a probe")["pid"]
        .to_string()
}

#[test]
fn ps_and_tree_escape_control_characters_in_guest_text() {
    let app = app();
    let _node = app.spawn().ready();
    let pid = probe_pid(&app);
    let request = serde_json::json!({ "register": EVIL }).to_string();
    assert_eq!(app.ok(&["call", &pid, &request]).trim(), r#""ok""#);

    let ps = app.ok(&["ps"]);
    assert_no_control_chars("ps", &ps);
    // A header and one row per process (echo, the probe, the nested echo): nothing forged.
    assert_eq!(ps.lines().count(), 4, "{ps}");
    assert!(
        ps.contains(r"evil\n\u{1b}[2Jforged\u{7f}\u{9b}"),
        "the name, escaped:\n{ps}"
    );
    // JSON keeps the name exactly (serde_json escapes it).
    let json: Value = serde_json::from_str(&app.ok(&["ps", "--json"])).unwrap();
    assert!(json.as_array().unwrap().iter().any(|p| p["name"] == EVIL));

    let tree = app.ok(&["tree"]);
    assert_no_control_chars("tree", &tree);
    // The root, echo, p, the supervisor and its echo.
    assert_eq!(tree.lines().count(), 5, "{tree}");
    assert!(tree.contains(r"sup\u{1b}[2J\nforged"), "{tree}");
}

#[test]
fn json_a_guest_sends_back_is_printed_with_nothing_a_terminal_acts_on() {
    let app = app();
    let _node = app.spawn().ready();
    let pid = probe_pid(&app);
    // The probe logs the text of a cast, and answers its log: DEL, a C1 control, a
    // right-to-left override and a line separator, which JSON may carry raw.
    let evil = "\u{7f}\u{9b}31m\u{202e}\u{2028}";
    let cast = serde_json::json!({ "record": evil }).to_string();
    app.ok(&["cast", &pid, &cast]);
    let out = app.ok(&["call", &pid, r#""log""#]);
    assert_no_control_chars("call", &out);
    assert!(!out.contains(['\u{202e}', '\u{2028}']), "{out}");
    assert!(
        out.contains(r#""cast:\u007f\u009b31m\u202e\u2028""#),
        "{out}"
    );
    // Still the same JSON value.
    let log: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .contains(&Value::from(format!("cast:{evil}")))
    );
}

#[test]
fn an_error_carrying_guest_text_is_one_escaped_line() {
    let app = app();
    let _node = app.spawn().ready();
    let pid = probe_pid(&app);
    let request = serde_json::json!({ "stop": { "error": EVIL } }).to_string();
    let out = app.otter(&["call", &pid, &request]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert_no_control_chars("the error", &stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("forged"), "{stderr}");
}

#[test]
fn client_commands_exit_quietly_when_stdout_is_closed() {
    let app = app();
    let _node = app.spawn().ready();
    for args in [
        &["ps", "--json"][..],
        &["ps"],
        &["tree"],
        &["tree", "--json"],
        &["call", "echo", r#""ping""#],
        &["whereis", "echo"],
        &["state", "echo"],
    ] {
        // A pipe whose reading end is gone before the command starts, as `| head` leaves it
        // once head has exited.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = otter()
            .arg("--socket")
            .arg(app.socket())
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert!(!stderr.contains("panicked"), "otter {args:?}: {stderr}");
        assert!(stderr.is_empty(), "otter {args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "otter {args:?}: {stderr}");
    }
}
