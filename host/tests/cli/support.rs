//! The harness: the built guests, a temp directory with a manifest, `otter run` as a child
//! process, and the client commands against its socket.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub(crate) const OTTER: &str = env!("CARGO_BIN_EXE_otter");

/// The built guests (echo.wasm, kv.wasm, probe.wasm); built once per test run.
pub(crate) fn guests() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| xtask::build_guests().expect("build the example guests"))
}

/// A temp directory holding `app.toml` and what `otter run` writes to stdout and stderr.
pub(crate) struct App {
    dir: tempfile::TempDir,
}

impl App {
    pub(crate) fn new() -> App {
        App {
            dir: tempfile::Builder::new()
                .prefix("otter-cli")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// The standard manifest: echo then kv, with the socket in this directory.
    pub(crate) fn echo_kv() -> App {
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

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn manifest(&self) -> PathBuf {
        self.path("app.toml")
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.path("ctl/t.sock")
    }

    pub(crate) fn write_manifest(&self, text: &str) {
        std::fs::write(self.manifest(), text).expect("write the manifest");
    }

    /// `otter run app.toml`, its output going to files in the directory.
    pub(crate) fn spawn(&self) -> Running<'_> {
        self.spawn_with(otter())
    }

    /// [`App::spawn`] from a command prepared by the test (say, with another log level).
    pub(crate) fn spawn_with(&self, mut otter: Command) -> Running<'_> {
        let child = otter
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
    pub(crate) fn run_refused(&self) -> (ExitStatus, String) {
        let mut running = self.spawn();
        let status = running
            .wait(Duration::from_secs(60))
            .expect("a refused manifest makes otter run exit");
        (status, self.stderr())
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(self.path("stdout")).unwrap_or_default()
    }

    /// A client command against this app's socket.
    pub(crate) fn otter(&self, args: &[&str]) -> Output {
        otter()
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run otter")
    }

    /// A client command that must succeed; its stdout lines.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
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
pub(crate) fn otter() -> Command {
    let mut cmd = Command::new(OTTER);
    cmd.env_remove("OTTER_SOCKET")
        .env_remove("OTTER_BUSY_WAIT_US")
        .env("OTTER_LOG", "info")
        .env(
            "XDG_RUNTIME_DIR",
            std::env::temp_dir().join("otter-cli-tests-unused"),
        );
    cmd
}

/// A running `otter run`; killed if the test ends without stopping it.
pub(crate) struct Running<'a> {
    app: &'a App,
    child: Child,
}

impl Running<'_> {
    /// Wait until the node prints its socket path, i.e. every child has started.
    pub(crate) fn ready(mut self) -> Self {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "otter run exited ({status}) before it was ready; stderr:\n{}",
                    self.app.stderr()
                );
            }
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

    /// The node's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, sig).expect("signal otter run");
    }

    pub(crate) fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
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

pub(crate) fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The pid `name` resolves to once it is no longer `old` (a supervisor restarted it).
pub(crate) fn wait_for_new_pid(app: &App, name: &str, old: &str) -> String {
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
