//! Grants per child: a process started with its own grants (`SpawnOptions::grants`,
//! `ChildSpec::grants`) gets exactly those, and they must lie within its module's.

use std::path::Path;

use otter::{
    ChildSpec, DirMode, ModuleGrants, Node, Pid, SpawnOptions, StartError, SupervisorSpec,
};
use serde_json::{Value, json};

use crate::support::guests;

fn wasi_probe_wasm() -> std::path::PathBuf {
    guests();
    xtask::wasi_guest_dir().join("wasi_probe.wasm")
}

/// A node with `wasi_probe` loaded and granted `grants`.
async fn node_with(grants: ModuleGrants) -> Node {
    let node = Node::new(Default::default()).expect("node");
    node.grant("wasi_probe", grants).expect("grant");
    node.load_module("wasi_probe", wasi_probe_wasm())
        .await
        .expect("load wasi_probe");
    node
}

async fn ask(node: &Node, pid: Pid, request: Value) -> Value {
    node.call(pid, &request).await.expect("the probe answers")
}

fn unit() -> otter::Term {
    otter::encode(&()).unwrap()
}

/// `top` with `a/x.txt` ("a") and `b/x.txt` ("b").
fn two_dirs(top: &Path) {
    for d in ["a", "b"] {
        std::fs::create_dir(top.join(d)).unwrap();
        std::fs::write(top.join(d).join("x.txt"), d).unwrap();
    }
}

/// The module may read and write all of `top`, see `MODE` and the clocks.
fn module_grants(top: &Path) -> ModuleGrants {
    let mut g = ModuleGrants::default();
    g.dir(top, "/data", DirMode::ReadWrite)
        .env("MODE", "prod")
        .clocks(true);
    g
}

#[tokio::test]
async fn two_children_of_one_module_with_their_own_grants_see_different_things() {
    let top = tempfile::tempdir().unwrap();
    two_dirs(top.path());
    let node = node_with(module_grants(top.path())).await;
    let mut a = ModuleGrants::default();
    a.dir(top.path().join("a"), "/data", DirMode::ReadWrite)
        .env("MODE", "a")
        .clocks(true);
    let mut b = ModuleGrants::default();
    b.dir(top.path().join("b"), "/data", DirMode::ReadOnly);
    let sup = node
        .start_supervisor(
            SupervisorSpec::default()
                .child(
                    ChildSpec::worker("a", "wasi_probe", unit())
                        .name("a")
                        .grants(a),
                )
                .child(
                    ChildSpec::worker("b", "wasi_probe", unit())
                        .name("b")
                        .grants(b),
                ),
        )
        .await
        .expect("both start");
    let (pa, pb) = (node.whereis("a").unwrap(), node.whereis("b").unwrap());
    assert_eq!(
        ask(&node, pa, json!({"read": "/data/x.txt"})).await,
        json!({"ok": "a"})
    );
    assert_eq!(
        ask(&node, pb, json!({"read": "/data/x.txt"})).await,
        json!({"ok": "b"})
    );
    // Neither sees the module's whole directory nor the other's.
    for p in [pa, pb] {
        let up = ask(&node, p, json!({"read": "/data/../b/x.txt"})).await;
        assert!(up.get("err").is_some(), "{up}");
    }
    let wrote = ask(&node, pa, json!({"write": ["/data/new.txt", "x"]})).await;
    assert!(wrote.get("err").is_none(), "{wrote}");
    let refused = ask(&node, pb, json!({"write": ["/data/new.txt", "x"]})).await;
    assert!(refused.get("err").is_some(), "read-only for b: {refused}");
    assert_eq!(
        ask(&node, pa, json!({"env": "MODE"})).await,
        json!({"ok": "a"})
    );
    assert!(
        ask(&node, pb, json!({"env": "MODE"}))
            .await
            .get("err")
            .is_some()
    );
    assert_ne!(ask(&node, pa, json!("now")).await, json!({"ok": 0}));
    assert_eq!(ask(&node, pb, json!("now")).await, json!({"ok": 0}));
    // A process started without its own grants has its module's.
    let plain = node
        .spawn("wasi_probe", unit(), SpawnOptions::default())
        .await
        .unwrap();
    assert_eq!(
        ask(&node, plain, json!({"read": "/data/b/x.txt"})).await,
        json!({"ok": "b"})
    );
    // A restart keeps the child's own grants.
    node.kill(pa);
    let restarted = loop {
        match node.whereis("a") {
            Some(p) if p != pa => break p,
            _ => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    };
    assert_eq!(
        ask(&node, restarted, json!({"read": "/data/x.txt"})).await,
        json!({"ok": "a"})
    );
    sup.stop().await;
    node.shutdown().await;
}

#[tokio::test]
async fn a_process_granted_more_than_its_module_does_not_start() {
    let top = tempfile::tempdir().unwrap();
    two_dirs(top.path());
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), top.path().join("out")).unwrap();
    let mut module = ModuleGrants::default();
    module
        .dir(top.path().join("a"), "/data", DirMode::ReadOnly)
        .inherit_env("HOME");
    let node = node_with(module).await;
    let beyond = |build: &dyn Fn(&mut ModuleGrants)| {
        let mut g = ModuleGrants::default();
        build(&mut g);
        g
    };
    let cases = [
        beyond(&|g| {
            g.dir(top.path(), "/data", DirMode::ReadOnly);
        }),
        beyond(&|g| {
            g.dir(top.path().join("a"), "/data", DirMode::ReadWrite);
        }),
        beyond(&|g| {
            g.dir(top.path().join("b"), "/data", DirMode::ReadOnly);
        }),
        beyond(&|g| {
            g.dir(top.path().join("a/../out"), "/data", DirMode::ReadOnly);
        }),
        beyond(&|g| {
            g.inherit_env("PATH");
        }),
        beyond(&|g| {
            g.clocks(true);
        }),
        beyond(&|g| {
            g.random(true);
        }),
        beyond(&|g| {
            g.connect("127.0.0.1:5432".parse().unwrap());
        }),
    ];
    let before = node.processes().len();
    for grants in cases {
        let refused = node
            .spawn(
                "wasi_probe",
                unit(),
                SpawnOptions::default().grants(grants.clone()),
            )
            .await;
        assert!(
            matches!(refused, Err(StartError::Grants(_))),
            "{grants:?}: {refused:?}"
        );
    }
    assert_eq!(node.processes().len(), before, "nothing started");
    // Within: a directory inside the module's, a variable it inherits, a value of its own.
    let mut within = ModuleGrants::default();
    within
        .dir(top.path().join("a"), "/data", DirMode::ReadOnly)
        .inherit_env("HOME")
        .env("OWN", "mine");
    let pid = node
        .spawn("wasi_probe", unit(), SpawnOptions::default().grants(within))
        .await
        .expect("grants within the module's start");
    assert_eq!(
        ask(&node, pid, json!({"env": "OWN"})).await,
        json!({"ok": "mine"})
    );
    node.shutdown().await;
}

/// A directory swapped for a symlink leading out (as a process with write access to its
/// parent could do) is not what the next instance of a process granted it opens: it opens
/// the directory it was granted, through the handle taken when the grant was given.
#[tokio::test]
async fn a_granted_directory_swapped_for_a_symlink_out_is_not_followed_by_the_next_instance() {
    let top = tempfile::tempdir().unwrap();
    two_dirs(top.path());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.txt"), "secret").unwrap();
    std::fs::create_dir(outside.path().join("a")).unwrap();
    std::fs::write(outside.path().join("a").join("x.txt"), "secret").unwrap();
    let node = node_with(module_grants(top.path())).await;
    let mut a = ModuleGrants::default();
    a.dir(top.path().join("a"), "/data", DirMode::ReadOnly);
    let idle = std::time::Duration::from_millis(50);
    let child = node
        .spawn(
            "wasi_probe",
            unit(),
            SpawnOptions::default().grants(a).hibernate_after(idle),
        )
        .await
        .unwrap();
    // The module's own processes: one sees the whole directory, as granted.
    let plain = node
        .spawn(
            "wasi_probe",
            unit(),
            SpawnOptions::default().hibernate_after(idle),
        )
        .await
        .unwrap();
    assert_eq!(
        ask(&node, child, json!({"read": "/data/x.txt"})).await,
        json!({"ok": "a"})
    );
    assert_eq!(
        ask(&node, plain, json!({"read": "/data/a/x.txt"})).await,
        json!({"ok": "a"})
    );
    // Swap `a` for a symlink out, and swap the module's own directory too.
    std::fs::rename(top.path().join("a"), top.path().join("a_old")).unwrap();
    std::os::unix::fs::symlink(outside.path(), top.path().join("a")).unwrap();
    let moved = tempfile::tempdir().unwrap();
    let top_moved = moved.path().join("top");
    std::fs::rename(top.path(), &top_moved).unwrap();
    std::os::unix::fs::symlink(outside.path(), top.path()).unwrap();
    // Both hibernate, dropping their instances; the next call makes new ones.
    for p in [child, plain] {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !node.is_hibernating(p) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{p} never hibernated"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    assert_eq!(
        ask(&node, child, json!({"read": "/data/x.txt"})).await,
        json!({"ok": "a"}),
        "the child reads its granted directory, not the symlink's target"
    );
    assert_eq!(
        ask(&node, plain, json!({"read": "/data/a_old/x.txt"})).await,
        json!({"ok": "a"}),
        "the module's process reads its granted directory where it moved"
    );
    let not = ask(&node, plain, json!({"read": "/data/x.txt"})).await;
    assert!(not.get("err").is_some(), "{not}");
    std::fs::remove_file(top.path()).unwrap();
    std::fs::rename(&top_moved, top.path()).unwrap();
    node.shutdown().await;
}
