//! The node's budget of files guests may hold open ([`NodeConfig::max_guest_files`]):
//! probes (guests/wasi_probe) granted a directory open files until the node refuses, see
//! the refusal as a WASI error, and go on; every way a file closes gives its place back.
//! Each probe's WASI context holds its granted directory open, which counts too.

use std::path::Path;
use std::time::Duration;

use otter::UpgradeOptions;
use otter::{DirMode, ModuleGrants, Node, NodeConfig, Pid, SpawnOptions, UpgradeError};
use serde_json::{Value, json};

use crate::support::{eventually, guests, open_descriptors};

/// The budget of the nodes below.
const BUDGET: usize = 8;

fn wasi_guest(name: &str) -> std::path::PathBuf {
    guests();
    xtask::wasi_guest_dir().join(format!("{name}.wasm"))
}

/// A node whose guests may hold [`BUDGET`] files, with `wasi_probe` granted `dir` as
/// `/data` (holding a file `f`).
async fn node_in(dir: &Path) -> Node {
    node_granted(dir, ModuleGrants::default()).await
}

/// [`node_in`], with `grants` besides the directory.
async fn node_granted(dir: &Path, mut grants: ModuleGrants) -> Node {
    std::fs::write(dir.join("f"), "x").unwrap();
    let mut config = NodeConfig::default();
    config.max_guest_files(BUDGET);
    let node = Node::new(config).expect("node");
    assert_eq!(node.max_guest_files(), BUDGET);
    grants.dir(dir, "/data", DirMode::ReadOnly);
    node.grant("wasi_probe", grants).expect("grant");
    node.load_module("wasi_probe", wasi_guest("wasi_probe"))
        .await
        .expect("load wasi_probe");
    node
}

/// A probe that has made its WASI context (its granted directory counts from then on).
async fn probe(node: &Node, opts: SpawnOptions) -> Pid {
    let pid = node
        .spawn("wasi_probe", otter::encode(&()).unwrap(), opts)
        .await
        .expect("wasi_probe starts");
    assert_eq!(
        ask(node, pid, json!({"read": "/data/f"})).await,
        json!({"ok": "x"})
    );
    pid
}

async fn ask(node: &Node, pid: Pid, request: Value) -> Value {
    node.call(pid, &request).await.expect("the probe answers")
}

fn refused_after(answer: &Value, opened: usize) -> bool {
    answer["err"]
        .as_str()
        .is_some_and(|e| e.starts_with(&format!("after {opened}:")))
}

#[tokio::test]
async fn guests_opening_files_are_refused_past_the_node_s_budget_and_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node_in(tmp.path()).await;
    let (a, b) = (
        probe(&node, SpawnOptions::default()).await,
        probe(&node, SpawnOptions::default()).await,
    );
    assert_eq!(node.open_guest_files(), 2, "their granted directories");
    // A takes what is left, and is refused as the OS would refuse it: an error, no crash.
    let answer = ask(&node, a, json!({"hold": ["/data/f", 100]})).await;
    assert!(refused_after(&answer, BUDGET - 2), "{answer}");
    assert_eq!(node.open_guest_files(), BUDGET);
    let answer = ask(&node, b, json!({"hold": ["/data/f", 1]})).await;
    assert!(refused_after(&answer, 0), "{answer}");
    // Both go on, and so does the node.
    assert!(node.is_alive(a) && node.is_alive(b));
    assert_eq!(ask(&node, a, json!("vsn")).await, json!({"ok": "1"}));
    let c = node
        .spawn(
            "wasi_probe",
            otter::encode(&()).unwrap(),
            SpawnOptions::default(),
        )
        .await
        .expect("a process starts while the budget is spent");
    assert_eq!(ask(&node, c, json!("vsn")).await, json!({"ok": "1"}));
    // Files A closes are B's to open.
    assert_eq!(
        ask(&node, a, json!("close_all")).await,
        json!({"ok": BUDGET - 2})
    );
    assert_eq!(
        ask(&node, b, json!({"hold": ["/data/f", 3]})).await,
        json!({"ok": 3})
    );
    // And when A exits, its granted directory is given back too.
    node.stop(a, otter::ExitReason::Normal, None)
        .await
        .expect("a stops");
    assert!(eventually(async || node.open_guest_files() == 1 + 3).await);
    node.shutdown().await;
    assert!(eventually(async || node.open_guest_files() == 0).await);
}

#[tokio::test]
async fn opening_reading_and_closing_in_a_loop_does_not_drift_the_count() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node_in(tmp.path()).await;
    let pid = probe(&node, SpawnOptions::default()).await;
    // Far more opens than the budget, each closed (with the stream it read through).
    assert_eq!(
        ask(&node, pid, json!({"churn": ["/data/f", 500]})).await,
        json!({"ok": 500})
    );
    assert_eq!(node.open_guest_files(), 1, "only its granted directory");
    assert_eq!(
        ask(&node, pid, json!({"hold": ["/data/f", 7]})).await,
        json!({"ok": 7})
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_killed_process_gives_back_every_file_it_held() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node_in(tmp.path()).await;
    let (a, b) = (
        probe(&node, SpawnOptions::default()).await,
        probe(&node, SpawnOptions::default()).await,
    );
    let answer = ask(&node, a, json!({"hold": ["/data/f", 100]})).await;
    assert!(refused_after(&answer, BUDGET - 2), "{answer}");
    assert!(node.kill(a));
    assert!(eventually(async || node.open_guest_files() == 1).await);
    assert_eq!(
        ask(&node, b, json!({"hold": ["/data/f", 100]})).await["err"],
        json!(format!(
            "after {}: {}",
            BUDGET - 1,
            answer["err"].as_str().unwrap().split_once(": ").unwrap().1
        ))
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_hibernating_process_holds_no_file_of_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node_in(tmp.path()).await;
    let opts = SpawnOptions::default().hibernate_after(Duration::from_millis(50));
    let pid = probe(&node, opts).await;
    assert_eq!(
        ask(&node, pid, json!({"hold": ["/data/f", 5]})).await,
        json!({"ok": 5})
    );
    assert_eq!(node.open_guest_files(), 6);
    assert!(eventually(async || node.is_hibernating(pid)).await);
    assert_eq!(node.open_guest_files(), 0);
    node.shutdown().await;
}

#[tokio::test]
async fn an_upgrade_rolled_back_gives_back_what_the_new_version_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node_in(tmp.path()).await;
    let pid = probe(&node, SpawnOptions::default()).await;
    assert_eq!(
        ask(&node, pid, json!({"hold": ["/data/f", 2]})).await,
        json!({"ok": 2})
    );
    assert_eq!(node.open_guest_files(), 3);
    // Version 2's code_change opens files (and its own granted directory), then refuses.
    let opts = UpgradeOptions {
        extra: otter::from_json(&json!({"hoard_and_refuse": ["/data/f", 3]})),
        ..UpgradeOptions::default()
    };
    let failed = node
        .upgrade("wasi_probe", wasi_guest("wasi_probe_v2"), opts)
        .await;
    assert!(matches!(failed, Err(UpgradeError::Failed(_))), "{failed:?}");
    assert_eq!(node.open_guest_files(), 3, "the old instance's, as before");
    assert_eq!(
        ask(&node, pid, json!({"hold": ["/data/f", 5]})).await,
        json!({"ok": 5})
    );
    node.shutdown().await;
}

#[tokio::test]
async fn tcp_sockets_count_in_the_budget_and_a_connect_past_it_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut grants = ModuleGrants::default();
    grants.connect(addr);
    let node = node_granted(tmp.path(), grants).await;
    let pid = probe(&node, SpawnOptions::default()).await;
    let connect = json!({"connect": addr.to_string()});
    // Connecting and closing, again and again, keeps nothing.
    for _ in 0..2 * BUDGET {
        assert_eq!(ask(&node, pid, connect.clone()).await, json!({"ok": null}));
    }
    assert_eq!(node.open_guest_files(), 1, "only its granted directory");
    assert_eq!(
        ask(&node, pid, json!({"hold": ["/data/f", BUDGET - 1]})).await,
        json!({"ok": BUDGET - 1})
    );
    let refused = ask(&node, pid, connect.clone()).await;
    // `new-socket-limit`: the guest's EMFILE.
    assert!(
        refused["err"]
            .as_str()
            .is_some_and(|e| e.starts_with("No file descriptors available")),
        "{refused}"
    );
    assert!(node.is_alive(pid));
    ask(&node, pid, json!("close_all")).await;
    assert_eq!(ask(&node, pid, connect).await, json!({"ok": null}));
    node.shutdown().await;
}

#[tokio::test]
async fn a_stream_kept_past_its_file_s_descriptor_keeps_the_file_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f");
    let node = node_in(tmp.path()).await;
    let pid = probe(&node, SpawnOptions::default()).await;
    // Each stream keeps its file open after the guest dropped the file's descriptor: the
    // budget must not believe it closed.
    for kept in 1..=3 {
        assert_eq!(
            ask(&node, pid, json!({"stream_past_close": "f"})).await,
            json!({"ok": kept})
        );
    }
    assert_eq!(open_descriptors(&f), 3);
    assert_eq!(node.open_guest_files(), 1 + 3);
    let answer = ask(&node, pid, json!({"hold": ["/data/f", 100]})).await;
    assert!(refused_after(&answer, BUDGET - 4), "{answer}");
    ask(&node, pid, json!("close_all")).await;
    // Once the streams are gone too, the files are given back (at the next open).
    assert_eq!(
        ask(&node, pid, json!("drop_streams")).await,
        json!({"ok": 3})
    );
    assert_eq!(open_descriptors(&f), 0);
    assert_eq!(
        ask(&node, pid, json!({"hold": ["/data/f", BUDGET - 1]})).await,
        json!({"ok": BUDGET - 1})
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_wasi_context_made_with_the_budget_spent_goes_without_its_directory_until_a_new_instance()
{
    let tmp = tempfile::tempdir().unwrap();
    let node = node_in(tmp.path()).await;
    let a = probe(&node, SpawnOptions::default()).await;
    assert_eq!(
        ask(&node, a, json!({"hold": ["/data/f", BUDGET - 1]})).await,
        json!({"ok": BUDGET - 1})
    );
    let opts = SpawnOptions::default().hibernate_after(Duration::from_millis(50));
    let b = node
        .spawn("wasi_probe", otter::encode(&()).unwrap(), opts)
        .await
        .expect("b starts with the budget spent");
    // Its first WASI call makes its context, which has no room for its directory: the
    // guest finds none, and goes on.
    let answer = ask(&node, b, json!({"read": "/data/f"})).await;
    assert!(answer["err"].is_string(), "{answer}");
    assert_eq!(node.open_guest_files(), BUDGET);
    ask(&node, a, json!("close_all")).await;
    // Its next instance (after hibernating) has it.
    assert!(eventually(async || node.is_hibernating(b)).await);
    assert_eq!(
        ask(&node, b, json!({"read": "/data/f"})).await,
        json!({"ok": "x"})
    );
    assert_eq!(node.open_guest_files(), 2);
    node.shutdown().await;
}

#[tokio::test]
async fn a_node_leaves_its_host_program_s_open_file_limit_as_it_found_it() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // A node first, so that the program's budget (set at the first node) is not sized from
    // the lowered limit below, for this test's node or any other test's.
    let first = Node::new(NodeConfig::default()).expect("node");
    let before = getrlimit(Resource::Nofile);
    let Some(hard) = before.maximum else {
        return;
    };
    // One below the hard limit, so that a node raising it would show.
    let lowered = Rlimit {
        current: Some(hard - 1),
        maximum: Some(hard),
    };
    setrlimit(Resource::Nofile, lowered).expect("lower the soft limit");
    let node = Node::new(NodeConfig::default()).expect("node");
    let after = getrlimit(Resource::Nofile);
    setrlimit(Resource::Nofile, before).expect("restore the soft limit");
    drop((first, node));
    assert_eq!(
        after.current,
        Some(hard - 1),
        "the node changed its program's limit"
    );
}
