//! The README's "Writing a server", followed literally: its files extracted as written, the
//! crate built to wasm with the SDK by path, run by the real `otter` with the README's
//! manifest, talked to with the CLI exactly as the README shows (outputs compared), and its
//! own `cargo test` run natively.
//!
//! The README marks what is extracted: `<!-- newcomer-file: PATH -->` before a file's code
//! block, `<!-- newcomer-shell: NAME -->` before a session whose `$ ` lines are commands and
//! whose other lines are what they print. The crate's `target/` is the guests' (already
//! built), so serde and the SDK are not compiled again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{OTTER, guests};

/// A README code block marked for extraction.
struct Block {
    kind: &'static str,
    label: String,
    lines: Vec<String>,
}

fn marked_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(marker) = line
            .strip_prefix("<!-- ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let (kind, label) = match marker.split_once(": ") {
            Some(("newcomer-file", path)) => ("file", path),
            Some(("newcomer-shell", name)) => ("shell", name),
            _ => continue,
        };
        let fence = lines.next().unwrap_or_default();
        assert!(fence.starts_with("```"), "a code block follows {line}");
        let body = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .map(str::to_owned)
            .collect();
        blocks.push(Block {
            kind,
            label: label.to_owned(),
            lines: body,
        });
    }
    blocks
}

/// Shell words, with single quotes as the README uses them.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in command.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in {command:?}");
    if started {
        words.push(word);
    }
    words
}

/// Commands of a session, each with the lines it prints.
fn session(block: &Block) -> Vec<(Vec<String>, Vec<String>)> {
    let mut steps: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for line in &block.lines {
        match line.strip_prefix("$ ") {
            Some(command) => steps.push((words(command), Vec::new())),
            None => steps
                .last_mut()
                .expect("a session starts with a command")
                .1
                .push(line.clone()),
        }
    }
    steps
}

/// A command as a newcomer's shell runs it: `otter` is the binary under test, `cargo` the
/// toolchain running the tests; no socket or build setting leaks in from the test's
/// environment.
fn command(argv: &[String], cwd: &Path, runtime_dir: &Path) -> Command {
    let program = match argv[0].as_str() {
        "otter" => OTTER.to_owned(),
        "cargo" => std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        other => panic!("the README runs {other:?}, which this test does not know"),
    };
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .env("OTTER_LOG", "info")
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("OTTER_SOCKET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    cmd
}

fn run(argv: &[String], cwd: &Path, runtime_dir: &Path) -> Output {
    command(argv, cwd, runtime_dir)
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Kills `otter run` if the test ends early.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_readmes_writing_a_server_gives_a_running_server_and_a_passing_unit_test() {
    let root = xtask::root();
    let warm = guests().parent().unwrap().parent().unwrap().to_owned();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let blocks = marked_blocks(&readme);
    let dir = tempfile::Builder::new()
        .prefix("otter-newcomer")
        .tempdir()
        .unwrap();
    let clone = dir.path();
    // A clone of the repository, as links to its files (its build output aside).
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name();
        if name != "target" && name != ".git" {
            std::os::unix::fs::symlink(root.join(&name), clone.join(&name)).unwrap();
        }
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for block in blocks.iter().filter(|b| b.kind == "file") {
        let path = clone.join(&block.label);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, block.lines.join("\n") + "\n").unwrap();
        files.push(path);
    }
    let crate_dir = clone.join("hello");
    for want in [
        "Cargo.toml",
        ".cargo/config.toml",
        "src/lib.rs",
        "hello.toml",
    ] {
        assert!(
            files.contains(&crate_dir.join(want)),
            "the README gives hello/{want}"
        );
    }
    // Warm and offline: the guests' lock file and target directory.
    std::fs::copy(root.join("guests/Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    std::os::unix::fs::symlink(&warm, crate_dir.join("target")).unwrap();
    let runtime_dir = clone.join("xdg");
    std::fs::create_dir(&runtime_dir).unwrap();
    let shell = |name: &str| {
        let block = blocks
            .iter()
            .find(|b| b.kind == "shell" && b.label == name)
            .unwrap_or_else(|| panic!("the README has the {name} session"));
        session(block)
    };

    // Build, then `otter run` in the background.
    let mut cwd = clone.to_owned();
    let mut node = None;
    for (argv, _) in shell("build") {
        match argv.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["cd", to] => cwd = cwd.join(to),
            ["otter", "run", ..] => {
                let child = command(&argv, &cwd, &runtime_dir)
                    .stdout(Stdio::piped())
                    .stderr(std::fs::File::create(clone.join("node.log")).unwrap())
                    .spawn()
                    .expect("otter run");
                node = Some(Node(child));
            }
            _ => {
                let out = run(&argv, &cwd, &runtime_dir);
                assert!(
                    out.status.success(),
                    "{argv:?} failed:\n{}",
                    text(&out.stderr)
                );
            }
        }
    }
    let mut node = node.expect("the README runs the node");
    // Ready once it prints its socket's path.
    let mut stdout = node.0.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap_or_else(|_| {
        panic!(
            "otter run printed nothing; its log:\n{}",
            std::fs::read_to_string(clone.join("node.log")).unwrap_or_default()
        )
    });
    assert!(Instant::now() < deadline);

    // The session, outputs compared line for line.
    for (argv, want) in shell("session") {
        let out = run(&argv, &cwd, &runtime_dir);
        assert!(
            out.status.success(),
            "{argv:?} failed: {}\nnode's log:\n{}",
            text(&out.stderr),
            std::fs::read_to_string(clone.join("node.log")).unwrap_or_default()
        );
        let got: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        assert_eq!(got, want, "{argv:?}");
    }
    drop(node);

    // The crate's own unit test, natively: the lines the README shows appear.
    for (argv, want) in shell("test") {
        let out = run(&argv, &cwd, &runtime_dir);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{argv:?} failed:\n{stdout}\n{}",
            text(&out.stderr)
        );
        for line in want {
            assert!(stdout.lines().any(|l| l == line), "{line:?} in:\n{stdout}");
        }
    }
}
