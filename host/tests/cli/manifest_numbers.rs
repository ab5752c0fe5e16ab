//! Every number a manifest takes, at the largest value TOML holds: refused at its line and
//! field where it could do harm (a memory slot larger than the pool's), and otherwise a
//! node that runs, answers and stops as with ordinary values (no deadline arithmetic that
//! overflows, no allocation sized by a limit).

use std::time::Duration;

use crate::support::*;

/// TOML's integers are signed 64-bit: this is the largest a manifest can hold.
const MAX: i64 = i64::MAX;

#[test]
fn a_node_runs_answers_and_stops_with_every_number_at_tomls_largest() {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"
max_message_size = {MAX}
control_max_request_bytes = {MAX}
control_idle_timeout_ms = {MAX}
control_max_connections = {MAX}
max_processes = {MAX}
max_timers = {MAX}
callback_timeout_ms = {MAX}
max_tables = {MAX}
max_tables_per_process = {MAX}

[modules]
echo = "{echo}"

[supervisor]
intensity = {intensity}
period_ms = {MAX}

[[children]]
name = "echo"
module = "echo"
shutdown = {MAX}
start_timeout_ms = {MAX}
hibernate_after_ms = {MAX}
callback_timeout_ms = {MAX}
mailbox = {{ bound = {MAX} }}

[[children]]
id = "inner"
type = "supervisor"
shutdown = {MAX}
intensity = {intensity}
period_ms = {MAX}

[[children.children]]
name = "echo2"
module = "echo"
shutdown_timeout_ms = {MAX}
"#,
        intensity = u32::MAX,
        echo = guests().join("echo.wasm").display(),
    ));
    let mut node = app.spawn().ready();
    let timeout = u64::MAX.to_string();
    for name in ["echo", "echo2"] {
        assert_eq!(
            app.ok(&["call", name, r#""ping""#, "--timeout", &timeout]),
            "{\"pong\":1}\n"
        );
    }
    // A crash is restarted under an intensity window of 292 million years.
    let old = app.ok(&["whereis", "echo"]);
    app.ok(&["stop", "echo", "--reason", "crash"]);
    wait_for_new_pid(&app, "echo", &old);
    assert_eq!(app.ok(&["call", "echo", r#""ping""#]), "{\"pong\":1}\n");
    node.signal(rustix::process::Signal::TERM);
    let status = node.wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}; stderr:\n{}",
        app.stderr()
    );
}

#[test]
fn bounded_node_numbers_at_tomls_largest_are_refused_at_their_line_and_field() {
    for key in ["max_table_bytes", "max_sql_statements", "max_guest_files"] {
        let app = App::new();
        app.write_manifest(&format!(
            "[node]\nname = \"t\"\ncontrol = \"ctl/t.sock\"\n{key} = {MAX}\n\n[modules]\necho = \"{echo}\"\n",
            echo = guests().join("echo.wasm").display(),
        ));
        let (status, stderr) = app.run_refused();
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("app.toml:4: node.{key}: at most ")),
            "{stderr}"
        );
    }
}
