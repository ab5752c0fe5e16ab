//! Limits from the manifest, met through the CLI: a process cap, a callback timeout and a
//! bounded mailbox with its counters in `otter ps`.

use std::time::Duration;

use crate::support::*;

/// `probe` (a rejecting mailbox of 2, a 200 ms callback timeout) and `echo`, on a node of at
/// most `max_processes` processes.
fn limited_app(max_processes: u32) -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"
max_processes = {max_processes}
callback_timeout_ms = 60000

[modules]
probe = "{probe}"
echo = "{echo}"

[[children]]
name = "probe"
module = "probe"
args = {{}}
callback_timeout_ms = 200
mailbox = {{ bound = 2, policy = "reject" }}

[[children]]
name = "echo"
module = "echo"
"#,
        probe = guests().join("probe.wasm").display(),
        echo = guests().join("echo.wasm").display(),
    ));
    app
}

fn fails(app: &App, args: &[&str], kind: &str) -> String {
    let out = app.otter(args);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "otter {args:?}: {stderr}");
    assert!(stderr.contains(kind), "otter {args:?}: {stderr}");
    stderr
}

#[test]
fn a_start_past_max_processes_fails_with_system_limit_and_the_others_keep_answering() {
    // The root supervisor and its two workers fill the node (supervisors count, as in OTP).
    let app = limited_app(3);
    let _node = app.spawn().ready();
    fails(
        &app,
        &["start", "--module", "echo", "--name", "e2"],
        "system_limit",
    );
    assert_eq!(app.ok(&["call", "echo", r#""ping""#]), "{\"pong\":1}\n");
}

#[test]
fn a_callback_past_its_callback_timeout_exits_timeout_and_its_supervisor_restarts_it() {
    let app = limited_app(100);
    let _node = app.spawn().ready();
    let old = app.ok(&["whereis", "probe"]);
    let e = fails(
        &app,
        &["call", "probe", r#""loop""#, "--timeout", "5000"],
        "exited",
    );
    assert!(e.contains("timeout"), "{e}");
    wait_for_new_pid(&app, "probe", &old);
    assert_eq!(app.ok(&["call", "echo", r#""ping""#]), "{\"pong\":1}\n");
}

#[test]
fn a_full_rejecting_mailbox_answers_busy_and_ps_counts_the_rejections() {
    let app = limited_app(100);
    let _node = app.spawn().ready();
    let sleeper = {
        let socket = app.socket();
        std::thread::spawn(move || {
            otter()
                .arg("--socket")
                .arg(socket)
                .args(["call", "probe", r#"{"sleep": 150}"#])
                .output()
                .expect("run otter")
        })
    };
    std::thread::sleep(Duration::from_millis(60));
    // The sleep stays under the callback timeout: only time running the guest's code counts.
    for _ in 0..2 {
        app.ok(&["cast", "probe", r#"{"record": "c"}"#]);
    }
    fails(&app, &["call", "probe", r#""ping""#], "busy");
    app.ok(&["cast", "probe", r#"{"record": "c"}"#]);
    let out = sleeper.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let table = app.ok(&["ps"]);
    let row = table
        .lines()
        .find(|l| l.contains(" probe "))
        .expect("a probe row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[5..7], ["2", "0"], "{table}");
    let echo = table
        .lines()
        .find(|l| l.contains(" echo "))
        .expect("an echo row");
    let cells: Vec<&str> = echo.split_whitespace().collect();
    assert_eq!(cells[5..7], ["-", "-"], "{table}");
}

#[test]
fn a_node_with_max_tables_1_refuses_a_second_table_through_otter_call() {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"
max_tables = 1

[modules]
table_probe = "{table_probe}"

[[children]]
name = "tables"
module = "table_probe"
"#,
        table_probe = guests().join("table_probe.wasm").display(),
    ));
    let _node = app.spawn().ready();
    let new = |table: &str| {
        format!(
            r#"{{"new": {{"table": "{table}", "kind": "set", "access": "public", "heir": null}}}}"#
        )
    };
    assert_eq!(
        app.ok(&["call", "tables", &new("first")]),
        "{\"ok\":null}\n"
    );
    let second = app.ok(&["call", "tables", &new("second")]);
    assert!(second.starts_with("{\"err\":\"system_limit"), "{second}");
    assert_eq!(
        app.ok(&["call", "tables", r#"{"size": {"table": "first"}}"#]),
        "{\"ok\":0}\n",
        "the first table is untouched"
    );
}

/// The soft and hard "Max open files" of a running process, from /proc.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().to_owned(),
    )
}

#[test]
fn otter_run_raises_its_soft_open_file_limit_to_the_hard_one() {
    use std::os::unix::process::CommandExt;
    let app = limited_app(10);
    let mut cmd = otter();
    // SAFETY: only an async-signal-safe system call between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
            let hard = getrlimit(Resource::Nofile).maximum;
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(512),
                    maximum: hard,
                },
            )
            .map_err(std::io::Error::from)
        });
    }
    let node = app.spawn_with(cmd).ready();
    let (soft, hard) = open_file_limits(node.pid());
    assert_eq!(soft, hard, "otter run left its soft limit at 512");
    assert_ne!(soft, "512");
}

/// `hostile` as `h`, on a node whose `[node]` table also holds `extra`.
fn hostile_app(extra: &str) -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"
{extra}

[modules]
hostile = "{hostile}"

[[children]]
name = "h"
module = "hostile"
"#,
        hostile = guests().join("hostile.wasm").display(),
    ));
    app
}

#[test]
fn a_node_with_a_larger_max_wasm_stack_runs_a_recursion_the_default_stack_cannot() {
    // About 50 bytes a frame: 6000 frames overflow the default 128 KiB (some 2700 fit), not
    // 512 KiB (some 10,000 fit).
    let deep = r#"{"deep": [6000, "nothing"]}"#;
    {
        let app = hostile_app("");
        let _node = app.spawn().ready();
        let e = fails(&app, &["call", "h", deep], "exited");
        assert!(e.contains("stack_overflow"), "{e}");
    }
    let app = hostile_app("max_wasm_stack = 524288");
    let _node = app.spawn().ready();
    assert_eq!(app.ok(&["call", "h", deep]), "\"ok\"\n");
}
