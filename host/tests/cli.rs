//! The `otter` binary end to end: `otter run` as a real child process serving a manifest
//! of real guests, and the client commands talking to it through its control socket.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const OTTER: &str = env!("CARGO_BIN_EXE_otter");

/// The built guests (echo.wasm, kv.wasm, probe.wasm); built once per test run.
fn guests() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| xtask::build_guests().expect("build the example guests"))
}

/// A temp directory holding `app.toml` and what `otter run` writes to stdout and stderr.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn new() -> App {
        App {
            dir: tempfile::Builder::new()
                .prefix("otter-cli")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// The standard manifest: echo then kv, with the socket in this directory.
    fn echo_kv() -> App {
        let app = App::new();
        let wasm = guests();
        app.write_manifest(&format!(
            r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
echo = "{echo}"
kv = {{ path = "{kv}", vsn = "1" }}

[[children]]
name = "echo"
module = "echo"

[[children]]
name = "kv"
module = "kv"
"#,
            echo = wasm.join("echo.wasm").display(),
            kv = wasm.join("kv.wasm").display(),
        ));
        app
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn manifest(&self) -> PathBuf {
        self.path("app.toml")
    }

    fn socket(&self) -> PathBuf {
        self.path("ctl/t.sock")
    }

    fn write_manifest(&self, text: &str) {
        std::fs::write(self.manifest(), text).expect("write the manifest");
    }

    /// `otter run app.toml`, its output going to files in the directory.
    fn spawn(&self) -> Running<'_> {
        let child = otter()
            .arg("run")
            .arg(self.manifest())
            .stdin(Stdio::null())
            .stdout(File::create(self.path("stdout")).expect("stdout file"))
            .stderr(File::create(self.path("stderr")).expect("stderr file"))
            .spawn()
            .expect("start otter run");
        Running { app: self, child }
    }

    /// `otter run` for a manifest that must be refused: its exit status and stderr.
    fn run_refused(&self) -> (ExitStatus, String) {
        let mut running = self.spawn();
        let status = running
            .wait(Duration::from_secs(60))
            .expect("a refused manifest makes otter run exit");
        (status, self.stderr())
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.path("stdout")).unwrap_or_default()
    }

    /// A client command against this app's socket.
    fn otter(&self, args: &[&str]) -> Output {
        otter()
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run otter")
    }

    /// A client command that must succeed; its stdout lines.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.otter(args);
        assert!(
            out.status.success(),
            "otter {args:?} failed: {}\nnode's stderr:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.stderr()
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}

/// The binary with an environment that cannot leak in from the test's.
fn otter() -> Command {
    let mut cmd = Command::new(OTTER);
    cmd.env_remove("OTTER_SOCKET").env("OTTER_LOG", "info").env(
        "XDG_RUNTIME_DIR",
        std::env::temp_dir().join("otter-cli-tests-unused"),
    );
    cmd
}

/// A running `otter run`; killed if the test ends without stopping it.
struct Running<'a> {
    app: &'a App,
    child: Child,
}

impl Running<'_> {
    /// Wait until the node prints its socket path, i.e. every child has started.
    fn ready(self) -> Self {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.app.stdout().lines().next().is_some() {
                assert!(
                    self.app.socket().exists(),
                    "socket {:?} exists",
                    self.app.socket()
                );
                return self;
            }
            assert!(
                Instant::now() < deadline,
                "otter run did not start in time; stderr:\n{}",
                self.app.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, sig).expect("signal otter run");
    }

    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for otter run") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn call_prints_each_reply_as_json_and_kv_round_trips() {
    let app = App::echo_kv();
    // A socket file left by a node that died is replaced.
    std::fs::create_dir(app.path("ctl")).unwrap();
    drop(std::os::unix::net::UnixListener::bind(app.socket()).unwrap());
    let _node = app.spawn().ready();

    assert_eq!(app.stdout().trim(), app.socket().display().to_string());
    assert_eq!(app.ok(&["call", "echo", r#""ping""#]), "{\"pong\":1}\n");
    assert_eq!(app.ok(&["call", "echo", r#""ping""#]), "{\"pong\":2}\n");

    assert_eq!(
        app.ok(&["call", "kv", r#"{"put":["a","1"]}"#]).trim(),
        r#""ok""#
    );
    assert_eq!(app.ok(&["call", "kv", r#"{"get":"a"}"#]).trim(), r#""1""#);
    assert_eq!(app.ok(&["call", "kv", r#"{"get":"b"}"#]).trim(), "null");
    app.ok(&["cast", "kv", r#"{"put":["b","2"]}"#]);
    assert_eq!(app.ok(&["call", "kv", r#"{"get":"b"}"#]).trim(), r#""2""#);
    let state: Value = serde_json::from_str(&app.ok(&["state", "kv"])).unwrap();
    assert_eq!(state, json!({"data": {"a": "1", "b": "2"}, "writes": 2}));

    // A pid works where a name does.
    let pid = app.ok(&["whereis", "echo"]).trim().to_owned();
    assert_eq!(
        app.ok(&["call", &pid, r#""count""#]).trim(),
        r#"{"count":2}"#
    );
}

#[test]
fn an_unknown_name_exits_1_with_noproc() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    for args in [
        &["call", "nobody", r#""ping""#][..],
        &["cast", "nobody", "1"],
        &["send", "nobody", "1"],
        &["state", "nobody"],
        &["stop", "nobody"],
        &["whereis", "nobody"],
        &["call", "999", r#""ping""#],
    ] {
        let out = app.otter(args);
        assert_eq!(out.status.code(), Some(1), "otter {args:?}");
        assert!(
            stderr_of(&out).contains("noproc"),
            "otter {args:?}: {}",
            stderr_of(&out)
        );
        assert!(out.stdout.is_empty());
    }
    // A request the server cannot decode is its own error, and the server lives on.
    let out = app.otter(&["call", "echo", r#""pong""#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("badarg"), "{}", stderr_of(&out));
    // So is input that is not JSON, before anything is sent.
    let out = app.otter(&["call", "echo", "ping"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("not JSON"), "{}", stderr_of(&out));
    assert_eq!(
        app.ok(&["call", "echo", r#""ping""#]).trim(),
        r#"{"pong":1}"#
    );
}

#[test]
fn ps_lists_both_children_and_stop_restarts_a_permanent_one() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    let ps: Value = serde_json::from_str(&app.ok(&["ps", "--json"])).unwrap();
    let rows = ps.as_array().expect("a list");
    let names: Vec<&str> = rows.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["echo", "kv"]);
    assert_eq!(rows[1]["module"], "kv");
    assert_eq!(rows[1]["vsn"], "1");
    assert!(rows[0]["pid"].as_u64().unwrap() < rows[1]["pid"].as_u64().unwrap());

    let table = app.ok(&["ps"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("PID"));
    assert_eq!(lines.count(), 2, "{table}");

    // kv is a permanent child of the root supervisor: stopped, it is restarted (OTP).
    let old = app.ok(&["whereis", "kv"]).trim().to_owned();
    app.ok(&["stop", "kv"]);
    let new = wait_for_new_pid(&app, "kv", &old);
    assert_ne!(new, old);
    let ps: Value = serde_json::from_str(&app.ok(&["ps", "--json"])).unwrap();
    let rows = ps.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["echo", "kv"]);
    // The supervisor counted the restart; echo was never restarted.
    assert_eq!(rows[0]["restarts"], 0);
    assert_eq!(rows[1]["restarts"], 1);
    assert_eq!(rows[1]["pid"].as_u64().unwrap().to_string(), new);
    for row in rows {
        for field in ["queue_len", "memory", "uptime_ms"] {
            assert!(row[field].is_u64(), "{field} in {row}");
        }
    }
    let table = app.ok(&["ps"]);
    let header = table.lines().next().unwrap();
    for column in [
        "PID", "NAME", "MODULE", "VSN", "MSGQ", "MEMORY", "RESTARTS", "UPTIME",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let kv_row = table
        .lines()
        .find(|l| l.contains(" kv "))
        .expect("a kv row");
    let cells: Vec<&str> = kv_row.split_whitespace().collect();
    assert_eq!(cells[6], "1", "{table}");
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["children"][1]["restarts"], 1);
}

/// The pid `name` resolves to once it is no longer `old` (a supervisor restarted it).
fn wait_for_new_pid(app: &App, name: &str, old: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = app.otter(&["whereis", name]);
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && pid != old && !pid.is_empty() {
            return pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} was not restarted; node's stderr:\n{}",
            app.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A manifest with a nested supervisor: echo, then `workers` (one_for_all) with two
/// counters.
fn nested_app() -> App {
    let app = App::new();
    let wasm = guests();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
echo = "{echo}"
counter = "{counter}"

[supervisor]
id = "Root"
strategy = "one_for_one"

[[children]]
name = "echo"
module = "echo"

[[children]]
id = "workers"
type = "supervisor"
strategy = "one_for_all"

[[children.children]]
name = "worker_a"
module = "counter"

[[children.children]]
name = "worker_b"
module = "counter"
restart = "transient"
"#,
        echo = wasm.join("echo.wasm").display(),
        counter = wasm.join("counter.wasm").display(),
    ));
    app
}

#[test]
fn tree_shows_the_nested_structure() {
    let app = nested_app();
    let _node = app.spawn().ready();
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["id"], "Root");
    assert_eq!(tree["kind"], "supervisor");
    assert_eq!(tree["strategy"], "one_for_one");
    let children = tree["children"].as_array().expect("children");
    assert_eq!(children.len(), 2);
    assert_eq!(children[0]["id"], "echo");
    assert_eq!(children[0]["kind"], "worker");
    assert_eq!(children[0]["module"], "echo");
    assert_eq!(children[0]["restart"], "permanent");
    assert!(children[0]["pid"].is_u64());
    let workers = &children[1];
    assert_eq!(workers["id"], "workers");
    assert_eq!(workers["kind"], "supervisor");
    assert_eq!(workers["strategy"], "one_for_all");
    let inner = workers["children"].as_array().expect("nested children");
    let ids: Vec<&str> = inner.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["worker_a", "worker_b"]);
    assert_eq!(inner[0]["module"], "counter");
    assert_eq!(inner[1]["restart"], "transient");
    let a = inner[0]["pid"].as_u64().expect("worker_a runs");
    assert_eq!(app.ok(&["whereis", "worker_a"]).trim(), a.to_string());

    let text = app.ok(&["tree"]);
    assert!(text.starts_with("Root  pid="), "{text}");
    assert!(text.contains("\n  workers  pid="), "{text}");
    assert!(text.contains("\n    worker_a  pid="), "{text}");
}

#[test]
fn a_killed_permanent_worker_gets_a_new_pid_under_its_supervisor() {
    let app = nested_app();
    let _node = app.spawn().ready();
    let old_a = app.ok(&["whereis", "worker_a"]).trim().to_owned();
    let old_b = app.ok(&["whereis", "worker_b"]).trim().to_owned();
    app.ok(&["stop", "worker_a", "--reason", "kill"]);
    let new_a = wait_for_new_pid(&app, "worker_a", &old_a);
    // one_for_all: its sibling was restarted too.
    let new_b = wait_for_new_pid(&app, "worker_b", &old_b);
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    let inner = &tree["children"][1]["children"];
    assert_eq!(inner[0]["pid"].as_u64().unwrap().to_string(), new_a);
    assert_eq!(inner[1]["pid"].as_u64().unwrap().to_string(), new_b);
    assert!(
        app.stderr().contains("restarting child"),
        "{}",
        app.stderr()
    );
}

#[test]
fn a_bad_restart_value_is_refused_with_its_line_and_nothing_starts() {
    let app = nested_app();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    app.write_manifest(&text.replace("restart = \"transient\"", "restart = \"always\""));
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "app.toml:29: children[1].children[1].restart: expected one of permanent, transient, temporary"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("started"), "{stderr}");
    assert!(app.stdout().is_empty());
    assert!(!app.socket().exists());

    // And at the top level.
    let app = App::echo_kv();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    app.write_manifest(&format!("{text}restart = \"sometimes\"\n"));
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.toml:16: children[1].restart: expected one of"),
        "{stderr}"
    );
    assert!(!app.socket().exists());
}

#[test]
fn sigterm_stops_the_children_in_reverse_order_and_exits_0() {
    let app = App::echo_kv();
    let mut node = app.spawn().ready();
    node.signal(rustix::process::Signal::TERM);
    let status = node.wait(Duration::from_secs(30)).expect("otter run exits");
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        app.stderr()
    );
    let log = app.stderr();
    let kv = log.find(r#"stopped child="kv""#).expect("kv stopped");
    let echo = log.find(r#"stopped child="echo""#).expect("echo stopped");
    assert!(kv < echo, "kv (started last) stops first:\n{log}");
    assert!(!app.socket().exists(), "the socket is removed");
}

#[test]
fn a_second_node_on_the_same_socket_is_refused() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    let second = App::new();
    second.write_manifest(
        &std::fs::read_to_string(app.manifest())
            .unwrap()
            .replace("ctl/t.sock", &app.socket().display().to_string()),
    );
    let (status, stderr) = second.run_refused();
    assert!(!status.success());
    assert!(stderr.contains("a node is already running at"), "{stderr}");
    assert_eq!(
        app.ok(&["call", "echo", r#""ping""#]).trim(),
        r#"{"pong":1}"#
    );
}

#[test]
fn a_manifest_with_a_bad_field_is_refused_before_anything_starts() {
    let app = App::echo_kv();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    // Line 15 is the second child's `module`.
    let text = text.replace("module = \"kv\"", "module = \"kvv\"");
    app.write_manifest(&text);
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    let app_toml = app.manifest().display().to_string();
    assert!(
        stderr.contains(&format!(
            r#"{app_toml}:15: children[1].module: unknown module "kvv""#
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("started"), "{stderr}");
    assert!(app.stdout().is_empty());
    assert!(!app.socket().exists());

    // A field that does not exist, and a field of the wrong type.
    app.write_manifest(&text.replace(
        "module = \"kvv\"",
        "module = \"kv\"\nrestrt = \"permanent\"",
    ));
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("{app_toml}:16: children[1].restrt: unknown field")),
        "{stderr}"
    );
    app.write_manifest(&text.replace("module = \"kvv\"", "module = \"kv\"\nstart_timeout_ms = -1"));
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("{app_toml}:16: children[1].start_timeout_ms: ")),
        "{stderr}"
    );
    assert!(!app.socket().exists());
}

#[test]
fn a_corrupt_wasm_is_refused_with_its_path_and_reason_before_anything_starts() {
    let app = App::new();
    let bad = app.path("broken.wasm");
    std::fs::write(&bad, b"this is not wasm").unwrap();
    app.write_manifest(&format!(
        r#"[node]
control = "ctl/t.sock"

[modules]
echo = "{echo}"
broken = "broken.wasm"

[[children]]
name = "echo"
module = "echo"

[[children]]
module = "broken"
"#,
        echo = guests().join("echo.wasm").display(),
    ));
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("not a WebAssembly module or component"),
        "{stderr}"
    );
    assert!(stderr.contains(":6: modules.broken.path: "), "{stderr}");
    assert!(!stderr.contains("started"), "nothing started:\n{stderr}");
    assert!(app.stdout().is_empty());
    assert!(!app.socket().exists());
}

#[test]
fn a_child_that_fails_to_start_stops_the_ones_before_it() {
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
name = "picky"
module = "probe"
args = {{ mode = {{ stop = "no thanks" }} }}
"#,
        echo = guests().join("echo.wasm").display(),
        probe = guests().join("probe.wasm").display(),
    ));
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(":12: children[1]: picky did not start: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("no thanks"),
        "the args reached init:\n{stderr}"
    );
    // The supervisor stopped echo again; nothing was reported as running.
    assert!(!stderr.contains(" running "), "{stderr}");
    assert!(app.stdout().is_empty());
    assert!(!app.socket().exists());
}

/// A manifest with a registry and a named dynamic supervisor, which a probe (`front`)
/// starts children under.
fn dynamic_app() -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
probe = "{probe}"

[[registries]]
name = "Jobs"
keys = "unique"

[[children]]
name = "front"
module = "probe"
args = {{}}

[[children]]
id = "jobs"
type = "supervisor"
name = "JobSup"
strategy = "simple_one_for_one"

[[children.children]]
id = "job"
module = "probe"
args = {{}}
restart = "temporary"
"#,
        probe = guests().join("probe.wasm").display(),
    ));
    app
}

#[test]
fn a_guest_starts_children_under_a_named_dynamic_supervisor_from_the_manifest() {
    let app = dynamic_app();
    let _node = app.spawn().ready();
    let started = app.ok(&[
        "call",
        "front",
        r#"{"start_child": {"sup": {"name": "JobSup"}, "args": {"register": ["Jobs", ["job", 1]]}}}"#,
    ]);
    let child: u64 = started.trim().parse().expect("a pid");
    // Reached from the CLI by its via key.
    let pid = app.ok(&["call", r#"{"via": ["Jobs", ["job", 1]]}"#, r#""self_pid""#]);
    assert_eq!(pid.trim(), child.to_string());
    let out = app.otter(&["call", r#"{"via": ["Nope", 1]}"#, r#""ping""#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("unknown registry \"Nope\""),
        "{}",
        stderr_of(&out)
    );
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    let jobs = &tree["children"][1];
    assert_eq!(jobs["strategy"], "simple_one_for_one");
    assert_eq!(jobs["name"], "JobSup");
    assert_eq!(jobs["children"][0]["pid"], child);
    assert_eq!(jobs["children"][0]["id"], "job");
    assert_eq!(
        app.ok(&["whereis", "JobSup"]).trim(),
        jobs["pid"].to_string()
    );
}

#[test]
fn a_bad_registry_in_the_manifest_is_refused_with_its_line() {
    let app = dynamic_app();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    app.write_manifest(&text.replace("keys = \"unique\"", "keys = \"many\""));
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.toml:10: registries[0].keys: expected one of unique, duplicate"),
        "{stderr}"
    );
    assert!(!app.socket().exists());
}

/// A manifest of probes: `obs` (which the others report to), `shard` under a `via` key,
/// and a named nested supervisor `Workers` with `a` and `b`, under the root `Root`.
fn subtree_app() -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
probe = "{probe}"

[[registries]]
name = "Shards"
keys = "unique"

[supervisor]
id = "Root"
name = "Root"

[[children]]
name = "obs"
module = "probe"
args = {{}}

[[children]]
id = "shard"
module = "probe"
args = {{}}
via = ["Shards", 1]

[[children]]
id = "workers"
type = "supervisor"
name = "Workers"

[[children.children]]
name = "a"
module = "probe"
args = {{ observer = "obs", tag = "a" }}

[[children.children]]
name = "b"
module = "probe"
args = {{ observer = "obs", tag = "b" }}
"#,
        probe = guests().join("probe.wasm").display(),
    ));
    app
}

#[test]
fn stop_by_a_nested_supervisors_name_stops_its_subtree_in_reverse_and_it_stays_down() {
    let app = subtree_app();
    let _node = app.spawn().ready();
    // The via child is reached by its key.
    let shard = app.ok(&["call", r#"{"via": ["Shards", 1]}"#, r#""self_pid""#]);
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["children"][1]["pid"].to_string(), shard.trim());
    assert_eq!(tree["children"][1]["via"], serde_json::json!(["Shards", 1]));

    let out = app.otter(&["stop", "Workers", "--reason", "normal"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("badarg: a supervisor stops with reason shutdown"),
        "{}",
        stderr_of(&out)
    );

    assert_eq!(app.ok(&["stop", "Workers"]), "");
    let log: Value = serde_json::from_str(&app.ok(&["call", "obs", r#""log""#])).unwrap();
    assert_eq!(
        log,
        serde_json::json!([
            "init",
            "cast:a:init",
            "cast:b:init",
            "cast:b:terminate:shutdown",
            "cast:a:terminate:shutdown"
        ])
    );
    // Its parent stopped it as terminate_child does: kept, not restarted.
    std::thread::sleep(Duration::from_millis(200));
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["children"][2]["id"], "workers");
    assert!(tree["children"][2]["pid"].is_null(), "{tree}");
    for args in [
        &["whereis", "a"][..],
        &["whereis", "Workers"],
        &["stop", "Workers"],
    ] {
        let out = app.otter(args);
        assert_eq!(out.status.code(), Some(1), "otter {args:?}");
        assert!(stderr_of(&out).contains("noproc"), "{}", stderr_of(&out));
    }
    assert!(app.ok(&["whereis", "obs"]).trim().parse::<u64>().is_ok());
}

#[test]
fn stop_by_the_root_supervisors_name_stops_the_application_and_exits_0() {
    let app = subtree_app();
    let mut node = app.spawn().ready();
    assert_eq!(app.ok(&["stop", "Root"]), "");
    let status = node.wait(Duration::from_secs(30)).expect("otter run exits");
    let log = app.stderr();
    assert!(status.success(), "exit status {status}; stderr:\n{log}");
    assert!(log.contains("the root supervisor was stopped"), "{log}");
    assert!(!log.contains("too many restarts"), "{log}");
    assert!(!app.socket().exists(), "the socket is removed");
}

#[test]
fn a_child_overrunning_its_start_timeout_stops_the_application_start() {
    let app = subtree_app();
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    app.write_manifest(
        &text
            .replace(
                "via = [\"Shards\", 1]\n",
                "via = [\"Shards\", 1]\nstart_timeout_ms = 200\n",
            )
            .replace("args = {}\nvia", "args = { mode = \"loop\" }\nvia"),
    );
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.toml:21: children[1]: shard did not start: init timed out"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("start_timeout_ms is not applied"),
        "{stderr}"
    );
    assert!(!app.socket().exists());
}
