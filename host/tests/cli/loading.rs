//! `otter run` loading modules: broken and hostile modules are refused in one line, a
//! signal stops it while loading, and the compiled-module cache runs only what it wrote.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use object::{Object, ObjectSection};
use rustix::process::Signal;

use crate::support::*;

/// A manifest loading `module` (a path) as `name`, with one child of it.
fn app_with(name: &str, module: &Path) -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
{name} = "{path}"

[[children]]
name = "{name}"
module = "{name}"
"#,
        path = module.display(),
    ));
    app
}

/// `otter run` for `app` with `cache` as its compiled-module cache (each test its own), run
/// by `sh` after `shell` (e.g. a `ulimit`); output goes to the app's files.
struct RunningNode {
    child: Child,
}

impl RunningNode {
    fn start(app: &App, cache: &Path, shell: &str) -> RunningNode {
        let base = otter();
        let mut cmd = Command::new("sh");
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let child = cmd
            .arg("-c")
            .arg(format!("{shell}\nexec \"$0\" run \"$1\""))
            .arg(OTTER)
            .arg(app.manifest())
            .env("OTTER_CACHE_DIR", cache)
            .stdin(Stdio::null())
            .stdout(File::create(app.path("stdout")).expect("stdout file"))
            .stderr(File::create(app.path("stderr")).expect("stderr file"))
            .spawn()
            .expect("start otter run");
        RunningNode { child }
    }

    /// Start, wait until every child runs, stop with SIGTERM: the node's stderr.
    fn run_once(app: &App, cache: &Path, shell: &str) -> String {
        let mut node = RunningNode::start(app, cache, shell);
        let deadline = Instant::now() + Duration::from_secs(60);
        while app.stdout().lines().next().is_none() {
            if let Some(status) = node.child.try_wait().expect("wait") {
                panic!(
                    "otter run exited ({status}) before running:\n{}",
                    app.stderr()
                );
            }
            assert!(Instant::now() < deadline, "not ready:\n{}", app.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = rustix::process::Pid::from_raw(node.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, Signal::TERM).expect("SIGTERM");
        let status = wait(&mut node.child, Duration::from_secs(20)).expect("stops on SIGTERM");
        assert!(status.success(), "{status}:\n{}", app.stderr());
        app.stderr()
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for otter run") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The files in `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the cache dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// Where the machine code is in a cache entry: the `.text` section of the ELF image in it.
fn code_range(entry: &[u8]) -> std::ops::Range<usize> {
    let start = entry
        .windows(4)
        .position(|w| w == b"\x7fELF")
        .expect("an ELF image in the entry");
    let elf = object::read::elf::ElfFile64::<object::Endianness>::parse(&entry[start..])
        .expect("the image parses as ELF");
    let (offset, size) = elf
        .section_by_name(".text")
        .and_then(|s| s.file_range())
        .expect("a .text section");
    let offset = start + offset as usize;
    offset..offset + size as usize
}

#[test]
fn a_cached_module_whose_code_was_altered_is_recompiled_not_run() {
    let app = app_with("echo", &guests().join("echo.wasm"));
    let cache = app.path("cache");
    let first = RunningNode::run_once(&app, &cache, "");
    assert!(!first.contains("compiled-module cache"), "{first}");
    let [entry] = &files(&cache)[..] else {
        panic!("one cache entry: {:?}", files(&cache));
    };
    let mut bytes = std::fs::read(entry).expect("read the entry");
    // Every instruction becomes a breakpoint (int3): run, it would trap at once.
    let code = code_range(&bytes);
    bytes[code].fill(0xcc);
    std::fs::write(entry, &bytes).expect("alter the entry");

    let second = RunningNode::run_once(&app, &cache, "");
    let warnings: Vec<_> = second
        .lines()
        .filter(|l| l.contains("compiled-module cache"))
        .collect();
    assert_eq!(warnings.len(), 1, "{second}");
    assert!(
        warnings[0].contains(&entry.display().to_string()),
        "{second}"
    );
    assert!(warnings[0].contains("recompiling"), "{second}");
    assert_ne!(
        std::fs::read(entry).unwrap(),
        bytes,
        "the entry was rewritten"
    );
    assert_eq!(files(&cache), std::slice::from_ref(entry));

    // The rewritten entry is good.
    let third = RunningNode::run_once(&app, &cache, "");
    assert!(!third.contains("compiled-module cache"), "{third}");
}

#[test]
fn a_cache_directory_that_is_not_ours_alone_is_never_used() {
    let app = app_with("echo", &guests().join("echo.wasm"));
    let good = app.path("good");
    std::fs::create_dir(&good).unwrap();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o700)).unwrap();

    let open = app.path("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let link = app.path("link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let mut cases = vec![
        (open, "writable by group or others (mode 777)".to_owned()),
        (link, "symlink".to_owned()),
    ];
    // Another user's directory, if this test may make one.
    if rustix::process::geteuid().is_root() {
        let theirs = app.path("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        let uid = rustix::process::Uid::from_raw(4242);
        rustix::fs::chown(&theirs, Some(uid), None).unwrap();
        cases.push((theirs, "belongs to uid 4242".to_owned()));
    }
    for (dir, why) in cases {
        let stderr = RunningNode::run_once(&app, &dir, "");
        let warnings: Vec<_> = stderr
            .lines()
            .filter(|l| l.contains("compiled-module cache"))
            .collect();
        assert_eq!(warnings.len(), 1, "{stderr}");
        assert!(warnings[0].contains(&dir.display().to_string()), "{stderr}");
        assert!(warnings[0].contains(&why), "{why}: {stderr}");
        assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    }
}

#[test]
fn a_cache_write_that_fails_leaves_no_file_behind() {
    let app = app_with("echo", &guests().join("echo.wasm"));
    let cache = app.path("cache");
    // Files may grow to 64 blocks (32 KiB in sh's units): the logs fit, a compiled module
    // does not; with SIGXFSZ ignored the write fails with EFBIG.
    let stderr = RunningNode::run_once(&app, &cache, "trap '' XFSZ\nulimit -f 64");
    assert!(stderr.contains("not written"), "{stderr}");
    assert!(files(&cache).is_empty(), "{:?}", files(&cache));
}

#[test]
fn otter_run_refuses_a_truncated_module_in_one_line() {
    let whole = std::fs::read(guests().join("echo.wasm")).expect("echo.wasm");
    let n = whole.len();
    let lengths = (0..n).step_by(n / 9).chain([1, 8, 9, n - 5, n - 1]);
    for len in lengths {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.wasm");
        std::fs::write(&path, &whole[..len]).unwrap();
        let app = app_with("echo", &path);
        let mut node = RunningNode::start(&app, &app.path("cache"), "");
        let status = wait(&mut node.child, Duration::from_secs(60)).expect("otter run exits");
        let stderr = app.stderr();
        assert!(!status.success(), "{len}: {stderr}");
        assert!(!stderr.contains("panicked"), "{len}: {stderr}");
        let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{len}: {stderr}");
        assert!(lines[0].contains("modules.echo.path"), "{len}: {stderr}");
    }
}

#[test]
fn otter_run_stops_at_once_on_a_signal_while_a_module_loads() {
    for sig in [Signal::TERM, Signal::INT] {
        let app = app_with("slow", &guests().join("slow_vsn.wasm"));
        let mut node = RunningNode::start(&app, &app.path("cache"), "");
        // Well into loading: compiling, or spinning in vsn.
        std::thread::sleep(Duration::from_millis(1500));
        assert!(node.child.try_wait().unwrap().is_none(), "{}", app.stderr());
        let pid = rustix::process::Pid::from_raw(node.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, sig).expect("signal otter run");
        let stopped = Instant::now();
        let status = wait(&mut node.child, Duration::from_secs(10)).expect("otter run stops");
        assert!(
            stopped.elapsed() < Duration::from_secs(1),
            "{sig:?} took {:?}",
            stopped.elapsed()
        );
        assert!(status.success(), "{status}: {}", app.stderr());
    }
}

#[test]
fn otter_run_gives_up_on_a_module_whose_vsn_never_returns() {
    let app = app_with("slow", &guests().join("slow_vsn.wasm"));
    let started = Instant::now();
    let mut node = RunningNode::start(&app, &app.path("cache"), "");
    let status = wait(&mut node.child, Duration::from_secs(30)).expect("otter run gives up");
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert!(!status.success());
    let stderr = app.stderr();
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("modules.slow.path"), "{stderr}");
    assert!(
        lines[0].contains("vsn() did not return within 5 s"),
        "{stderr}"
    );
}

#[test]
fn otter_run_gives_up_on_a_module_whose_vsn_never_returns_after_the_manifests_load_timeout() {
    let app = app_with("slow", &guests().join("slow_vsn.wasm"));
    let manifest = std::fs::read_to_string(app.manifest()).expect("the manifest");
    app.write_manifest(&manifest.replace("[modules]", "load_timeout_ms = 300\n\n[modules]"));
    let started = Instant::now();
    let mut node = RunningNode::start(&app, &app.path("cache"), "");
    let status = wait(&mut node.child, Duration::from_secs(30)).expect("otter run gives up");
    let stderr = app.stderr();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}: {stderr}",
        started.elapsed()
    );
    assert!(!status.success());
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("modules.slow.path"), "{stderr}");
    assert!(
        lines[0].contains("vsn() did not return within 300 ms"),
        "{stderr}"
    );
}

/// LEB128, as the wasm binary format writes lengths, counts and indices.
fn leb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Signed LEB128, as `i32.const` takes its operand.
fn sleb(mut n: i64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0) {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb(bytes: &[u8], pos: &mut usize) -> u64 {
    let (mut n, mut shift) = (0u64, 0);
    loop {
        let b = bytes[*pos];
        *pos += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

/// `core` (a core module built with the SDK) with `extra` more linear memories of `pages`
/// pages each, every page of them written by a data segment, so that they are resident; and
/// `tables` more tables of 100,000 elements.
fn with_extras(core: &[u8], extra: u32, pages: u32, tables: u32) -> Vec<u8> {
    let mut out = core[..8].to_vec();
    let mut pos = 8;
    let mut memories = 0;
    while pos < core.len() {
        let id = core[pos];
        pos += 1;
        let len = read_leb(core, &mut pos) as usize;
        let payload = &core[pos..pos + len];
        pos += len;
        let mut p = 0;
        let section = match id {
            4 => {
                let count = read_leb(payload, &mut p);
                let mut s = Vec::new();
                leb(count + u64::from(tables), &mut s);
                s.extend_from_slice(&payload[p..]);
                for _ in 0..tables {
                    // funcref, a minimum and no maximum.
                    s.extend_from_slice(&[0x70, 0x00]);
                    leb(100_000, &mut s);
                }
                s
            }
            // Memory, data count, data: the same items and then ours.
            5 | 11 | 12 => {
                let count = read_leb(payload, &mut p);
                let mut s = Vec::new();
                if id == 5 {
                    memories = count as u32;
                }
                let added = if id == 5 { extra } else { extra * pages };
                leb(count + u64::from(added), &mut s);
                s.extend_from_slice(&payload[p..]);
                for m in 0..extra {
                    if id == 5 {
                        s.push(0x00);
                        leb(pages.into(), &mut s);
                    } else if id == 11 {
                        for page in 0..pages {
                            // Active, memory index m, at i32.const offset: one byte.
                            s.push(0x02);
                            leb(u64::from(memories + m), &mut s);
                            s.push(0x41);
                            sleb(i64::from(page) * 65536, &mut s);
                            s.extend_from_slice(&[0x0b, 0x01, 0x01]);
                        }
                    }
                }
                s
            }
            _ => payload.to_vec(),
        };
        out.push(id);
        leb(section.len() as u64, &mut out);
        out.extend_from_slice(&section);
    }
    out
}

/// `otter run` of echo with `extra` more memories of `pages` pages and `tables` more tables
/// must refuse it at load, in one line naming the module; that line.
fn refused_at_load(extra: u32, pages: u32, tables: u32) -> String {
    let core = std::fs::read(guests().join("echo.wasm")).expect("echo.wasm");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greedy.wasm");
    std::fs::write(&path, with_extras(&core, extra, pages, tables)).unwrap();
    let app = app_with("greedy", &path);
    let mut node = RunningNode::start(&app, &app.path("cache"), "");
    let status = wait(&mut node.child, Duration::from_secs(20));
    let ps = app.otter(&["ps"]);
    let _ = node.child.kill();
    let stderr = app.stderr();
    let status = status.unwrap_or_else(|| {
        panic!(
            "otter run serves it:\n{}",
            String::from_utf8_lossy(&ps.stdout)
        )
    });
    assert!(!status.success(), "{stderr}");
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("modules.greedy.path"), "{stderr}");
    lines[0].to_owned()
}

#[test]
fn otter_run_refuses_a_module_whose_memories_together_exceed_the_memory_limit() {
    // Eight more memories of 8 MiB each beside its own: 64 MiB resident, each memory under
    // the 16 MiB per-process limit.
    refused_at_load(8, 128, 0);
}

#[test]
fn otter_run_refuses_a_module_with_more_memories_than_a_process_may_have() {
    // Forty more empty memories: no bytes, but each one a `max_memory` slot of address space.
    let line = refused_at_load(40, 0, 0);
    assert!(line.contains("memor"), "{line}");
}

#[test]
fn otter_run_refuses_a_module_whose_tables_together_exceed_the_table_limit() {
    // Five more tables, each at the 100,000 elements one table may have (and fewer tables
    // than a process may have): 4 MB of host memory that no memory limit counts.
    refused_at_load(0, 0, 5);
}
