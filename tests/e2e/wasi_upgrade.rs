//! Hot code upgrade of a WASI guest (guests/wasi_probe, to its version 2 and back): what
//! the old instance holds through WASI (open files, the descriptors its code knows by
//! number) is kept for it while the new version migrates, given back untouched if the
//! upgrade fails, and closed once it commits. A hibernating process holds none.

use std::path::Path;
use std::time::Duration;

use otter::{DirMode, ModuleGrants, Node, Pid, SpawnOptions, UpgradeError, UpgradeOptions};
use serde_json::{Value, json};

use crate::support::{eventually, guests, open_descriptors};

fn wasi_guest(name: &str) -> std::path::PathBuf {
    guests();
    xtask::wasi_guest_dir().join(format!("{name}.wasm"))
}

/// A node with `wasi_probe` (version 1) granted `dir` read-write as `/data`, and one probe
/// started with `opts`.
async fn probe_in(dir: &Path, opts: SpawnOptions) -> (Node, Pid) {
    let node = Node::new(Default::default()).expect("node");
    let mut grants = ModuleGrants::default();
    grants.dir(dir, "/data", DirMode::ReadWrite);
    node.grant("wasi_probe", grants).expect("grant");
    node.load_module("wasi_probe", wasi_guest("wasi_probe"))
        .await
        .expect("load wasi_probe");
    let pid = node
        .spawn("wasi_probe", otter::encode(&()).unwrap(), opts)
        .await
        .expect("wasi_probe starts");
    (node, pid)
}

async fn ask(node: &Node, pid: Pid, request: Value) -> Value {
    node.call(pid, &request).await.expect("the probe answers")
}

/// Upgrade `wasi_probe` to version 2, passing `extra` to its `code_change`.
async fn to_v2(node: &Node, extra: Value) -> Result<otter::UpgradeReport, UpgradeError> {
    let opts = UpgradeOptions {
        extra: otter::from_json(&extra),
        ..UpgradeOptions::default()
    };
    node.upgrade("wasi_probe", wasi_guest("wasi_probe_v2"), opts)
        .await
}

#[tokio::test]
async fn a_failed_upgrade_leaves_the_old_version_its_open_files() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let (node, pid) = probe_in(tmp.path(), SpawnOptions::default()).await;
    assert_eq!(
        ask(&node, pid, json!({"keep": "/data/log"})).await,
        json!({"ok": 0})
    );
    assert_eq!(
        ask(&node, pid, json!({"append": [0, "before "]})).await,
        json!({"ok": null})
    );
    // Version 2's code_change opens the same file three times, then refuses.
    let failed = to_v2(&node, json!({"hoard_and_refuse": ["/data/log", 3]})).await;
    assert!(matches!(failed, Err(UpgradeError::Failed(_))), "{failed:?}");
    assert_eq!(ask(&node, pid, json!("vsn")).await, json!({"ok": "1"}));
    // The same handle, kept across the upgrade, still writes to the same file.
    assert_eq!(
        ask(&node, pid, json!({"append": [0, "after"]})).await,
        json!({"ok": null})
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "before after");
    // Only the old instance's handle is open: the failed version's went with it.
    assert_eq!(open_descriptors(&log), 1);
    node.shutdown().await;
}

#[tokio::test]
async fn after_a_committed_upgrade_the_new_version_opens_its_own_files_and_the_old_ones_close() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    let (node, pid) = probe_in(tmp.path(), SpawnOptions::default()).await;
    ask(&node, pid, json!({"keep": "/data/old"})).await;
    ask(&node, pid, json!({"append": [0, "v1"]})).await;
    assert_eq!(open_descriptors(&old), 1);
    to_v2(&node, json!("ok"))
        .await
        .expect("the upgrade commits");
    assert_eq!(ask(&node, pid, json!("vsn")).await, json!({"ok": "2"}));
    // The old instance's file is closed with it.
    assert!(eventually(async || open_descriptors(&old) == 0).await);
    // The new version works with WASI from its own fresh context.
    assert_eq!(
        ask(&node, pid, json!({"keep": "/data/new"})).await,
        json!({"ok": 0})
    );
    assert_eq!(
        ask(&node, pid, json!({"append": [0, "v2"]})).await,
        json!({"ok": null})
    );
    assert_eq!(std::fs::read_to_string(&new).unwrap(), "v2");
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "v1");
    assert_eq!(open_descriptors(&new), 1);
    node.shutdown().await;
}

#[tokio::test]
async fn a_hibernating_process_holds_no_open_file() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let opts = SpawnOptions::default().hibernate_after(Duration::from_millis(50));
    let (node, pid) = probe_in(tmp.path(), opts).await;
    ask(&node, pid, json!({"keep": "/data/log"})).await;
    assert_eq!(open_descriptors(&log), 1);
    assert!(eventually(async || node.is_hibernating(pid)).await);
    assert_eq!(
        open_descriptors(&log),
        0,
        "a hibernating process keeps a file open"
    );
    // It wakes with a fresh WASI context, and opens files again.
    assert_eq!(
        ask(&node, pid, json!({"keep": "/data/log"})).await,
        json!({"ok": 0})
    );
    assert_eq!(
        ask(&node, pid, json!({"append": [0, "awake"]})).await,
        json!({"ok": null})
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "awake");
    node.shutdown().await;
}

#[tokio::test]
async fn a_failed_upgrade_keeps_a_thousand_handles_and_the_new_instance_is_bounded_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, log) = (tmp.path().join("f"), tmp.path().join("log"));
    std::fs::write(&f, "x").unwrap();
    let (node, pid) = probe_in(tmp.path(), SpawnOptions::default()).await;
    ask(&node, pid, json!({"keep": "/data/log"})).await;
    assert_eq!(
        ask(&node, pid, json!({"hoard": ["/data/f", 1000]})).await,
        json!({"ok": 1000})
    );
    // The new instance has a table of its own, as bounded as any: opening past it traps
    // its code_change, and the upgrade fails.
    let failed = to_v2(&node, json!({"hoard_and_refuse": ["/data/f", 5000]})).await;
    let Err(UpgradeError::Failed(report)) = failed else {
        panic!("{failed:?}")
    };
    assert!(
        format!("{report:?}").contains("code_change crashed"),
        "{report:?}"
    );
    assert!(node.is_alive(pid));
    // The old instance has all its handles, and only those are open.
    assert_eq!(open_descriptors(&f), 1000);
    assert_eq!(
        ask(&node, pid, json!({"append": [0, "kept"]})).await,
        json!({"ok": null})
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "kept");
    node.shutdown().await;
    assert!(eventually(async || open_descriptors(&f) == 0).await);
}

#[tokio::test]
async fn an_eager_upgrade_failing_on_a_hibernating_process_leaves_no_file_open() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f");
    std::fs::write(&f, "x").unwrap();
    let opts = SpawnOptions::default().hibernate_after(Duration::from_millis(50));
    let (node, pid) = probe_in(tmp.path(), opts).await;
    assert!(eventually(async || node.is_hibernating(pid)).await);
    let opts = UpgradeOptions {
        extra: otter::from_json(&json!({"hoard_and_refuse": ["/data/f", 3]})),
        eager: true,
        ..UpgradeOptions::default()
    };
    let failed = node
        .upgrade("wasi_probe", wasi_guest("wasi_probe_v2"), opts)
        .await;
    assert!(matches!(failed, Err(UpgradeError::Failed(_))), "{failed:?}");
    assert!(node.is_hibernating(pid));
    // What the failed version opened went with it: the process sleeps holding nothing.
    assert_eq!(open_descriptors(&f), 0);
    assert_eq!(ask(&node, pid, json!("vsn")).await, json!({"ok": "1"}));
    node.shutdown().await;
}

#[tokio::test]
async fn a_process_whose_migration_is_rolled_back_writes_through_its_handles_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("refuse"), "").unwrap();
    let (node, _) = probe_in(tmp.path(), SpawnOptions::default()).await;
    let mut pids = Vec::new();
    for dir in [&a, &b] {
        let mut own = ModuleGrants::default();
        own.dir(dir, "/data", DirMode::ReadWrite);
        let pid = node
            .spawn(
                "wasi_probe",
                otter::encode(&()).unwrap(),
                SpawnOptions::default().grants(own),
            )
            .await
            .expect("a probe with its own directory starts");
        ask(&node, pid, json!({"keep": "/data/log"})).await;
        ask(&node, pid, json!({"append": [0, "before "]})).await;
        pids.push(pid);
    }
    // `a` migrates, `b` refuses: all or nothing, `a` is rolled back to version 1.
    let failed = to_v2(&node, json!({"refuse_if_exists": "/data/refuse"})).await;
    assert!(matches!(failed, Err(UpgradeError::Failed(_))), "{failed:?}");
    for (pid, dir) in pids.into_iter().zip([&a, &b]) {
        assert_eq!(ask(&node, pid, json!("vsn")).await, json!({"ok": "1"}));
        assert_eq!(
            ask(&node, pid, json!({"append": [0, "after"]})).await,
            json!({"ok": null})
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("log")).unwrap(),
            "before after"
        );
    }
    node.shutdown().await;
}
