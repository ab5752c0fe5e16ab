//! WASI for the guests that import it, limited to what their module is granted: a guest
//! built for wasm32-wasip2 reaching files, the environment, clocks and sockets through
//! Rust's std (guests/wasi_probe).

use std::path::Path;

use otter::{DirMode, ModuleGrants, Node, Pid, SpawnOptions};
use serde_json::{Value, json};

use crate::support::{guests, wasm};

fn wasi_probe_wasm() -> std::path::PathBuf {
    guests();
    xtask::wasi_guest_dir().join("wasi_probe.wasm")
}

/// A node with `wasi_probe` loaded under `grants`, and one probe started.
async fn probe_with(grants: ModuleGrants) -> (Node, Pid) {
    let node = Node::new(Default::default()).expect("node");
    node.grant("wasi_probe", grants).expect("grant");
    node.load_module("wasi_probe", wasi_probe_wasm())
        .await
        .expect("load wasi_probe");
    let pid = node
        .spawn(
            "wasi_probe",
            otter::encode(&()).unwrap(),
            SpawnOptions::default(),
        )
        .await
        .expect("wasi_probe starts");
    (node, pid)
}

async fn ask(node: &Node, pid: Pid, request: Value) -> Value {
    node.call(pid, &request).await.expect("the probe answers")
}

fn is_err(v: &Value) -> bool {
    v.get("err").is_some()
}

/// `dir` granted read-write as `/data`.
fn data_grant(dir: &Path, mode: DirMode) -> ModuleGrants {
    let mut g = ModuleGrants::default();
    g.dir(dir, "/data", mode);
    g
}

#[tokio::test]
async fn a_guest_reads_and_writes_in_its_granted_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("in.txt"), "from the host").unwrap();
    let (node, pid) = probe_with(data_grant(tmp.path(), DirMode::ReadWrite)).await;
    assert_eq!(
        ask(&node, pid, json!({"read": "/data/in.txt"})).await,
        json!({"ok": "from the host"})
    );
    let wrote = ask(
        &node,
        pid,
        json!({"write": ["/data/out.txt", "from the guest"]}),
    )
    .await;
    assert!(!is_err(&wrote), "{wrote}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out.txt")).unwrap(),
        "from the guest"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn paths_outside_the_granted_directory_are_refused() {
    let top = tempfile::tempdir().unwrap();
    let data = top.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(top.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(top.path().join("secret.txt"), data.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(top.path(), data.join("up")).unwrap();
    let (node, pid) = probe_with(data_grant(&data, DirMode::ReadWrite)).await;
    let secret = top.path().join("secret.txt");
    for path in [
        secret.to_str().unwrap(),
        "/etc/passwd",
        "/data/../secret.txt",
        "/data/link.txt",
        "/data/up/secret.txt",
    ] {
        let r = ask(&node, pid, json!({"read": path})).await;
        assert!(is_err(&r), "{path}: {r}");
    }
    let escaped = ask(&node, pid, json!({"write": ["/data/../escaped.txt", "x"]})).await;
    assert!(is_err(&escaped), "{escaped}");
    assert!(!top.path().join("escaped.txt").exists());
    // Still answering after every refusal.
    let listed = ask(&node, pid, json!({"list": "/data"})).await;
    assert_eq!(listed, json!({"ok": ["link.txt", "up"]}));
    node.shutdown().await;
}

#[tokio::test]
async fn a_read_only_directory_refuses_writes() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("in.txt"), "kept").unwrap();
    let (node, pid) = probe_with(data_grant(tmp.path(), DirMode::ReadOnly)).await;
    assert_eq!(
        ask(&node, pid, json!({"read": "/data/in.txt"})).await,
        json!({"ok": "kept"})
    );
    for path in ["/data/in.txt", "/data/new.txt"] {
        let r = ask(&node, pid, json!({"write": [path, "changed"]})).await;
        assert!(is_err(&r), "{path}: {r}");
    }
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("in.txt")).unwrap(),
        "kept"
    );
    assert!(!tmp.path().join("new.txt").exists());
    node.shutdown().await;
}

#[tokio::test]
async fn only_granted_environment_variables_are_seen() {
    let mut g = ModuleGrants::default();
    g.env("MODE", "prod").inherit_env("HOME");
    let (node, pid) = probe_with(g).await;
    assert_eq!(
        ask(&node, pid, json!({"env": "MODE"})).await,
        json!({"ok": "prod"})
    );
    let home = std::env::var("HOME").expect("HOME is set for the tests");
    assert_eq!(
        ask(&node, pid, json!({"env": "HOME"})).await,
        json!({"ok": home})
    );
    assert!(std::env::var("PATH").is_ok());
    assert!(is_err(&ask(&node, pid, json!({"env": "PATH"})).await));
    node.shutdown().await;
}

#[tokio::test]
async fn a_guest_granted_nothing_has_no_files_environment_or_clock() {
    let (node, pid) = probe_with(ModuleGrants::default()).await;
    assert!(is_err(
        &ask(&node, pid, json!({"read": "/etc/passwd"})).await
    ));
    assert!(is_err(
        &ask(&node, pid, json!({"read": "etc/passwd"})).await
    ));
    assert!(is_err(
        &ask(&node, pid, json!({"write": ["/tmp/x", "x"]})).await
    ));
    assert!(is_err(&ask(&node, pid, json!({"env": "HOME"})).await));
    assert_eq!(ask(&node, pid, json!("now")).await, json!({"ok": 0}));
    node.shutdown().await;
}

#[tokio::test]
async fn granted_clocks_tell_the_time() {
    let mut g = ModuleGrants::default();
    g.clocks(true);
    let (node, pid) = probe_with(g).await;
    let now = ask(&node, pid, json!("now")).await;
    let secs = now["ok"].as_u64().expect("a number");
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(host) < 60, "{secs} vs {host}");
    node.shutdown().await;
}

#[tokio::test]
async fn granted_random_gives_random_bytes() {
    let mut g = ModuleGrants::default();
    g.random(true);
    let (node, pid) = probe_with(g).await;
    let first = ask(&node, pid, json!({"random": 32})).await;
    let second = ask(&node, pid, json!({"random": 32})).await;
    let hex = |v: &Value| v["ok"].as_str().expect("hex bytes").to_owned();
    let (first, second) = (hex(&first), hex(&second));
    assert_eq!(first.len(), 64, "{first}");
    assert_ne!(first, "0".repeat(64));
    assert_ne!(first, second, "two draws differ");
    node.shutdown().await;
}

#[tokio::test]
async fn asking_for_random_bytes_without_the_grant_ends_the_process_and_others_answer() {
    let (node, pid) = probe_with(ModuleGrants::default()).await;
    let other = node
        .spawn(
            "wasi_probe",
            otter::encode(&()).unwrap(),
            SpawnOptions::default(),
        )
        .await
        .unwrap();
    let refused = node.call::<_, Value>(pid, &json!({"random": 16})).await;
    assert!(
        matches!(refused, Err(otter::CallError::Exited(_))),
        "{refused:?}"
    );
    assert!(node.process_info(pid).is_none(), "the process is gone");
    assert_eq!(ask(&node, other, json!("now")).await, json!({"ok": 0}));
    node.shutdown().await;
}

#[tokio::test]
async fn a_connect_is_refused_without_a_grant_and_allowed_to_a_listed_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listed = listener.local_addr().unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unlisted = other.local_addr().unwrap();

    let (node, pid) = probe_with(ModuleGrants::default()).await;
    let r = ask(&node, pid, json!({"connect": listed.to_string()})).await;
    assert!(is_err(&r), "{r}");
    node.shutdown().await;

    let mut g = ModuleGrants::default();
    g.connect(listed);
    let (node, pid) = probe_with(g).await;
    let r = ask(&node, pid, json!({"connect": unlisted.to_string()})).await;
    assert!(is_err(&r), "{r}");
    let r = ask(&node, pid, json!({"connect": listed.to_string()})).await;
    assert_eq!(r, json!({"ok": null}));
    node.shutdown().await;
}

#[tokio::test]
async fn a_grant_of_a_missing_directory_is_refused() {
    let node = Node::new(Default::default()).expect("node");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    for (path, why) in [
        (tmp.path().join("missing"), "no such directory"),
        (file, "not a directory"),
    ] {
        let e = node
            .grant("wasi_probe", data_grant(&path, DirMode::ReadOnly))
            .unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
    }
    node.shutdown().await;
}

#[tokio::test]
async fn a_pure_guest_is_not_linked_with_wasi_and_grants_do_not_change_it() {
    let node = Node::new(Default::default()).expect("node");
    let mut g = ModuleGrants::default();
    g.clocks(true).random(true);
    node.grant("echo", g).expect("grant");
    node.load_module("echo", wasm("echo"))
        .await
        .expect("load echo");
    node.spawn(
        "echo",
        otter::encode(&()).unwrap(),
        SpawnOptions::default().name("echo"),
    )
    .await
    .expect("echo starts");
    let pong: Value = node.call("echo", &json!("ping")).await.expect("pong");
    assert_eq!(pong, json!({"pong": 1}));
    node.shutdown().await;
}

#[tokio::test]
async fn a_guest_hoarding_file_handles_is_stopped_and_others_keep_answering() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), "x").unwrap();
    let (node, pid) = probe_with(data_grant(tmp.path(), DirMode::ReadOnly)).await;
    let other = node
        .spawn(
            "wasi_probe",
            otter::encode(&()).unwrap(),
            SpawnOptions::default(),
        )
        .await
        .expect("a second probe");
    let within: Value = node
        .call(pid, &json!({"hoard": ["/data/f", 500]}))
        .await
        .expect("within the bound");
    assert_eq!(within, json!({"ok": 500}));
    let over = node
        .call::<_, Value>(pid, &json!({"hoard": ["/data/f", 100_000]}))
        .await;
    assert!(over.is_err(), "{over:?}");
    assert!(!node.is_alive(pid));
    assert_eq!(
        ask(&node, other, json!({"read": "/data/f"})).await,
        json!({"ok": "x"})
    );
    node.shutdown().await;
}
