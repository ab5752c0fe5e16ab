//! `[modules.NAME.grants]` through `otter run`: a WASI guest reaching its granted directory,
//! its output in the node's log, and grants the manifest check refuses.

use crate::support::*;

fn wasi_probe() -> std::path::PathBuf {
    guests();
    xtask::wasi_guest_dir().join("wasi_probe.wasm")
}

/// An app running `wasi_probe` as `probe` with `grants` (TOML lines of its grants table).
fn app_with(grants: &str) -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules.wasi_probe]
path = "{probe}"

[modules.wasi_probe.grants]
{grants}

[[children]]
name = "probe"
module = "wasi_probe"
"#,
        probe = wasi_probe().display(),
    ));
    app
}

#[test]
fn otter_run_refuses_a_grant_of_a_missing_directory_at_its_line() {
    let app = app_with(r#"dirs = [{ host = "nowhere", guest = "/data", mode = "rw" }]"#);
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.toml:9: modules.wasi_probe.grants.dirs[0].host: "),
        "{stderr}"
    );
    assert!(stderr.contains("nowhere: no such directory"), "{stderr}");
}

#[test]
fn otter_run_refuses_a_bad_grant_mode_and_address_at_their_lines() {
    let app = app_with(r#"dirs = [{ host = ".", guest = "/data", mode = "write" }]"#);
    let (_, stderr) = app.run_refused();
    assert!(
        stderr.contains("app.toml:9: modules.wasi_probe.grants.dirs[0].mode: \"write\""),
        "{stderr}"
    );
    let app = app_with(r#"network = { connect = ["localhost"] }"#);
    let (_, stderr) = app.run_refused();
    assert!(
        stderr.contains("app.toml:9: modules.wasi_probe.grants.network.connect[0]: "),
        "{stderr}"
    );
}

#[test]
fn a_wasi_guest_reads_its_granted_directory_and_its_output_is_logged_with_its_pid() {
    let app = app_with(r#"dirs = [{ host = "files", guest = "/files" }]"#);
    std::fs::create_dir(app.path("files")).unwrap();
    std::fs::write(app.path("files/a.txt"), "granted").unwrap();
    let running = app.spawn().ready();
    assert_eq!(
        app.ok(&["call", "probe", r#"{"read":"/files/a.txt"}"#])
            .trim(),
        r#"{"ok":"granted"}"#
    );
    let refused = app.ok(&["call", "probe", r#"{"write":["/files/b.txt","x"]}"#]);
    assert!(refused.contains("err"), "{refused}");
    app.ok(&["call", "probe", r#"{"print":[1,"hello from the guest"]}"#]);
    drop(running);
    let stderr = app.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("hello from the guest") && !l.contains("stderr:"))
        .unwrap_or_else(|| panic!("the guest's line is logged:\n{stderr}"));
    assert!(line.contains("pid="), "{line}");
    assert!(
        stderr.contains("stderr: hello from the guest"),
        "its stderr too:\n{stderr}"
    );
}

#[test]
fn a_guest_printing_in_a_loop_is_rate_limited_and_its_long_lines_cut() {
    let app = app_with("");
    let running = app.spawn().ready();
    let long = "y".repeat(5000);
    app.ok(&["call", "probe", &format!(r#"{{"print":[1,"{long}"]}}"#)]);
    app.ok(&["call", "probe", r#"{"print":[20000,"flood"]}"#]);
    // After the burst's budget refills, the next line tells how many were dropped.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    app.ok(&["call", "probe", r#"{"print":[1,"after"]}"#]);
    drop(running);
    let stderr = app.stderr();
    let floods = stderr.lines().filter(|l| l.contains(" flood")).count();
    assert!(
        (50..=400).contains(&floods),
        "{floods} of 20000 lines logged"
    );
    let after = stderr
        .lines()
        .find(|l| l.contains(" after"))
        .unwrap_or_else(|| panic!("the later line is logged:\n{stderr}"));
    assert!(after.contains("dropped="), "{after}");
    let long_line = stderr
        .lines()
        .find(|l| l.contains("yyyy"))
        .expect("the long line is logged");
    assert!(long_line.len() < 1500, "cut: {} bytes", long_line.len());
}

/// An app whose `wasi_probe` module may use all of `files`, with `children` (TOML).
fn app_with_children(children: &str) -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules.wasi_probe]
path = "{probe}"
grants = {{ dirs = [{{ host = "files", guest = "/files", mode = "rw" }}], env = {{ MODE = "all" }} }}
{children}"#,
        probe = wasi_probe().display(),
    ));
    for d in ["a", "b"] {
        std::fs::create_dir_all(app.path(&format!("files/{d}"))).unwrap();
        std::fs::write(app.path(&format!("files/{d}/x.txt")), d).unwrap();
    }
    app
}

#[test]
fn two_children_of_one_module_with_their_own_grants_see_different_things() {
    let app = app_with_children(
        r#"
[[children]]
name = "pa"
module = "wasi_probe"
grants = { dirs = [{ host = "files/a", guest = "/files", mode = "rw" }], env = { MODE = "a" } }

[[children]]
name = "pb"
module = "wasi_probe"
[children.grants]
dirs = [{ host = "files/b", guest = "/files" }]
"#,
    );
    let running = app.spawn().ready();
    let read = |who: &str| app.ok(&["call", who, r#"{"read":"/files/x.txt"}"#]);
    assert_eq!(read("pa").trim(), r#"{"ok":"a"}"#);
    assert_eq!(read("pb").trim(), r#"{"ok":"b"}"#);
    let env = |who: &str| app.ok(&["call", who, r#"{"env":"MODE"}"#]);
    assert_eq!(env("pa").trim(), r#"{"ok":"a"}"#);
    assert!(env("pb").contains("err"));
    let write = |who: &str| app.ok(&["call", who, r#"{"write":["/files/new.txt","x"]}"#]);
    assert!(!write("pa").contains("err"));
    assert!(write("pb").contains("err"), "pb's grant is read-only");
    drop(running);
}

#[test]
fn otter_run_refuses_a_child_granted_more_than_its_module_at_its_line() {
    let app = app_with_children(
        r#"
[[children]]
name = "p"
module = "wasi_probe"
grants = { clocks = true }
"#,
    );
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.toml:12: children[0].grants: clocks: not granted to its module"),
        "{stderr}"
    );
    let app = app_with_children(
        r#"
[[children]]
name = "p"
module = "wasi_probe"
grants = { dirs = [{ host = ".", guest = "/files" }] }
"#,
    );
    let (_, stderr) = app.run_refused();
    assert!(
        stderr.contains("app.toml:12: children[0].grants: directory "),
        "{stderr}"
    );
    let app = app_with_children(
        r#"
[[children]]
name = "p"
module = "wasi_probe"
grants = { dirs = [{ host = "nowhere", guest = "/files" }] }
"#,
    );
    let (_, stderr) = app.run_refused();
    assert!(
        stderr.contains("app.toml:12: children[0].grants.dirs[0].host: "),
        "{stderr}"
    );
    assert!(stderr.contains("nowhere: no such directory"), "{stderr}");
}

#[test]
fn a_last_line_without_a_newline_is_logged_when_the_process_ends() {
    let app = app_with("");
    let running = app.spawn().ready();
    app.ok(&["call", "probe", r#"{"emit":"first\nlast words "}"#]);
    let long = "z".repeat(5000);
    app.ok(&["call", "probe", &format!(r#"{{"emit":"{long}"}}"#)]);
    let stderr = app.stderr();
    assert!(stderr.contains(" first"), "a whole line at once:\n{stderr}");
    assert!(
        !stderr.contains("last words"),
        "not before the process ends"
    );
    app.ok(&["stop", "probe"]);
    // Logged before the exit is announced; the wait only covers a slow machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stderr = loop {
        let stderr = app.stderr();
        if stderr.contains("last words zzz") || std::time::Instant::now() > deadline {
            break stderr;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(running);
    let last = stderr
        .lines()
        .find(|l| l.contains("last words zzz"))
        .unwrap_or_else(|| panic!("the unfinished line is logged:\n{stderr}"));
    assert!(last.contains("pid="), "{last}");
    assert!(last.len() < 1500, "cut as any line: {} bytes", last.len());
}
