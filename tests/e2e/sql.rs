//! The `sql` interface: a guest opens the SQLite databases its grants name, and nothing
//! else; each of its attacks on the host through a granted database is refused
//! (guests/sql_probe runs the statements a test sends).

use std::path::Path;
use std::time::{Duration, Instant};

use otter::{DirMode, ModuleGrants, Node, Pid, SpawnOptions, UpgradeError, UpgradeOptions};
use serde_json::{Value, json};

use crate::support::{eventually, wasm};

/// A node with `sql_probe` granted `grants`, and one probe started.
async fn probe_with(grants: ModuleGrants) -> (Node, Pid) {
    let node = Node::new(Default::default()).expect("node");
    node.grant("sql_probe", grants).expect("grant");
    node.load_module("sql_probe", wasm("sql_probe"))
        .await
        .expect("load sql_probe");
    let pid = node
        .spawn(
            "sql_probe",
            otter::encode(&()).unwrap(),
            SpawnOptions::default(),
        )
        .await
        .expect("sql_probe starts");
    (node, pid)
}

/// `orders.db` in `dir`, granted read-write as `orders`, statements limited to `timeout`.
fn orders_grant(dir: &Path, timeout: Duration) -> ModuleGrants {
    let mut g = ModuleGrants::default();
    g.database("orders", dir.join("orders.db"), DirMode::ReadWrite)
        .database_timeout("orders", timeout);
    g
}

async fn ask(node: &Node, pid: Pid, request: Value) -> Value {
    node.call(pid, &request).await.expect("the probe answers")
}

/// The error text of an `{"err": ...}` answer, or a panic naming what came instead.
fn err(v: &Value) -> &str {
    v.get("err")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected an error, got {v}"))
}

/// A probe on a fresh database with connection 0 open on it.
async fn opened(dir: &Path) -> (Node, Pid) {
    let (node, pid) = probe_with(orders_grant(dir, Duration::from_millis(300))).await;
    assert_eq!(
        ask(&node, pid, json!({"open": "orders"})).await,
        json!({"ok": 0})
    );
    (node, pid)
}

#[tokio::test]
async fn a_guest_writes_and_reads_its_granted_database_with_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    let create = json!({"execute": [0, "CREATE TABLE t (i INTEGER, r REAL, s TEXT, n)", []]});
    assert_eq!(ask(&node, pid, create).await, json!({"ok": 0}));
    let insert = "INSERT INTO t VALUES (?1, ?2, ?3, ?4)";
    let many =
        json!({"execute_many": [0, insert, [[1, 1.5, "한글", null], [2, -0.25, "b", null]]]});
    assert_eq!(ask(&node, pid, many).await, json!({"ok": 2}));
    let rows = ask(
        &node,
        pid,
        json!({"query": [0, "SELECT * FROM t WHERE i >= ?1 ORDER BY i", [1]]}),
    )
    .await;
    assert_eq!(
        rows,
        json!({"ok": {"columns": ["i", "r", "s", "n"], "rows": [[1, 1.5, "한글", null], [2, -0.25, "b", null]]}})
    );
    // The host's file holds them: the guest wrote the granted file and no other.
    let db = rusqlite::Connection::open(tmp.path().join("orders.db")).unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn a_failing_execute_many_keeps_none_of_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    let create = json!({"execute": [0, "CREATE TABLE t (i INTEGER NOT NULL)", []]});
    ask(&node, pid, create).await;
    let many = json!({"execute_many": [0, "INSERT INTO t VALUES (?1)", [[1], [2], [null]]]});
    let e = ask(&node, pid, many).await;
    assert!(err(&e).contains("parameter list 2"), "{e}");
    let count = ask(
        &node,
        pid,
        json!({"query": [0, "SELECT count(*) FROM t", []]}),
    )
    .await;
    assert_eq!(
        count,
        json!({"ok": {"columns": ["count(*)"], "rows": [[0]]}})
    );
}

#[tokio::test]
async fn a_database_not_granted_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = probe_with(orders_grant(tmp.path(), Duration::from_secs(1))).await;
    let e = ask(&node, pid, json!({"open": "../orders.db"})).await;
    assert_eq!(err(&e), "not_granted: ../orders.db");
    let e = ask(&node, pid, json!({"open": "/etc/passwd"})).await;
    assert_eq!(err(&e), "not_granted: /etc/passwd");
    // A module granted nothing has no database at all.
    let (node, pid) = probe_with(ModuleGrants::default()).await;
    let e = ask(&node, pid, json!({"open": "orders"})).await;
    assert_eq!(err(&e), "not_granted: orders");
}

#[tokio::test]
async fn attach_detach_and_vacuum_into_are_refused_and_touch_no_other_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    let other = tmp.path().join("other.db");
    for statement in [
        format!("ATTACH DATABASE '{}' AS other", other.display()),
        "ATTACH DATABASE 'file:other.db?mode=rwc' AS other".to_owned(),
        "DETACH DATABASE main".to_owned(),
        format!("VACUUM INTO '{}'", other.display()),
    ] {
        let e = ask(&node, pid, json!({"execute": [0, statement, []]})).await;
        let e = err(&e);
        assert!(
            e.starts_with("denied") || e.starts_with("sqlite"),
            "{statement}: {e}"
        );
    }
    assert!(!other.exists(), "no other file was made");
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["orders.db"]);
}

#[tokio::test]
async fn pragmas_that_reach_past_the_database_and_extensions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    for statement in [
        "PRAGMA journal_mode = OFF",
        "PRAGMA temp_store_directory = '/tmp'",
        "PRAGMA writable_schema = ON",
        "PRAGMA mmap_size = 1000000000",
        "PRAGMA cache_size = -1000000",
        "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')",
        "CREATE VIRTUAL TABLE v USING fts5(x)",
    ] {
        let e = ask(&node, pid, json!({"query": [0, statement, []]})).await;
        assert!(err(&e).starts_with("denied"), "{statement}: {e}");
    }
    // Harmless ones work.
    let ok = ask(&node, pid, json!({"query": [0, "PRAGMA user_version", []]})).await;
    assert_eq!(
        ok,
        json!({"ok": {"columns": ["user_version"], "rows": [[0]]}})
    );
}

#[tokio::test]
async fn a_runaway_query_is_interrupted_and_the_connection_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c";
    let t0 = Instant::now();
    let e = ask(&node, pid, json!({"query": [0, endless, []]})).await;
    assert_eq!(err(&e), "interrupted");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let ok = ask(&node, pid, json!({"query": [0, "SELECT 1", []]})).await;
    assert_eq!(ok, json!({"ok": {"columns": ["1"], "rows": [[1]]}}));
}

#[tokio::test]
async fn a_query_only_this_process_waits_for() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    node.load_module("echo", wasm("echo")).await.unwrap();
    let echo = node
        .spawn("echo", otter::encode(&()).unwrap(), SpawnOptions::default())
        .await
        .unwrap();
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c";
    let slow = {
        let node = node.clone();
        tokio::spawn(async move { ask(&node, pid, json!({"query": [0, endless, []]})).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    for _ in 0..100 {
        let _: Value = node.call(echo, &json!("ping")).await.unwrap();
    }
    assert!(
        t0.elapsed() < Duration::from_millis(200),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(err(&slow.await.unwrap()), "interrupted");
}

#[tokio::test]
async fn an_oversized_result_is_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    let many_rows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200000) \
                     SELECT x FROM c";
    let e = ask(&node, pid, json!({"query": [0, many_rows, []]})).await;
    assert_eq!(err(&e), "too_large: more than 100000 rows");
    let big_rows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10) \
                    SELECT zeroblob(1000000) FROM c";
    let e = ask(&node, pid, json!({"query": [0, big_rows, []]})).await;
    assert_eq!(err(&e), "too_large: more than 4194304 bytes");
    // A single value past SQLite's length limit is SQLite's error.
    let e = ask(
        &node,
        pid,
        json!({"query": [0, "SELECT zeroblob(2000000)", []]}),
    )
    .await;
    assert!(err(&e).contains("too big"), "{e}");
    let long = format!("SELECT 1 {}", " ".repeat(70_000));
    let e = ask(&node, pid, json!({"query": [0, long, []]})).await;
    assert!(err(&e).starts_with("denied: statement of"), "{e}");
}

#[tokio::test]
async fn one_statement_per_call_and_a_bounded_number_of_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    let two = json!({"execute": [0, "CREATE TABLE a (x); CREATE TABLE b (x)", []]});
    assert_eq!(
        err(&ask(&node, pid, two).await),
        "denied: one statement at a time"
    );
    let e = ask(&node, pid, json!({"open_all": "orders"})).await;
    assert_eq!(err(&e), "8 open; then too_many_connections");
    // Closing one makes room again.
    assert_eq!(ask(&node, pid, json!({"close": 3})).await, json!({"ok": 0}));
    assert!(
        ask(&node, pid, json!({"open": "orders"}))
            .await
            .get("ok")
            .is_some()
    );
}

#[tokio::test]
async fn a_transaction_left_open_is_rolled_back_when_its_connection_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    ask(
        &node,
        pid,
        json!({"execute": [0, "CREATE TABLE t (x)", []]}),
    )
    .await;
    ask(&node, pid, json!({"execute": [0, "BEGIN", []]})).await;
    ask(
        &node,
        pid,
        json!({"execute": [0, "INSERT INTO t VALUES (1)", []]}),
    )
    .await;
    assert_eq!(ask(&node, pid, json!({"close": 0})).await, json!({"ok": 0}));
    ask(&node, pid, json!({"open": "orders"})).await;
    let count = ask(
        &node,
        pid,
        json!({"query": [1, "SELECT count(*) FROM t", []]}),
    )
    .await;
    assert_eq!(
        count,
        json!({"ok": {"columns": ["count(*)"], "rows": [[0]]}})
    );
}

#[tokio::test]
async fn a_killed_process_s_query_is_interrupted_and_lets_go_of_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    // A long time limit: only the kill can end the query in time.
    let (node, a) = probe_with(orders_grant(tmp.path(), Duration::from_secs(30))).await;
    let b = node
        .spawn(
            "sql_probe",
            otter::encode(&()).unwrap(),
            SpawnOptions::default(),
        )
        .await
        .unwrap();
    for p in [a, b] {
        assert_eq!(
            ask(&node, p, json!({"open": "orders"})).await,
            json!({"ok": 0})
        );
    }
    ask(&node, a, json!({"execute": [0, "CREATE TABLE t (x)", []]})).await;
    // An endless query reading `t` holds the database's shared lock while it runs.
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c WHERE x > (SELECT count(*) FROM t)";
    let stuck = {
        let node = node.clone();
        tokio::spawn(async move {
            node.call::<_, Value>(a, &json!({"query": [0, endless, []]}))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(node.kill(a));
    assert!(
        stuck.await.unwrap().is_err(),
        "its caller learns of the kill"
    );
    let t0 = Instant::now();
    let wrote = ask(
        &node,
        b,
        json!({"execute": [0, "INSERT INTO t VALUES (1)", []]}),
    )
    .await;
    assert_eq!(wrote, json!({"ok": 1}));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn a_process_s_own_database_grants_narrow_its_module_s() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, _) = probe_with(orders_grant(tmp.path(), Duration::from_secs(1))).await;
    let path = tmp.path().join("orders.db");
    let start = |grants: ModuleGrants| {
        let node = node.clone();
        async move {
            node.spawn(
                "sql_probe",
                otter::encode(&()).unwrap(),
                SpawnOptions::default().grants(grants),
            )
            .await
        }
    };
    // Opening a missing file read-only fails, without telling the guest the host's path.
    let mut ro = ModuleGrants::default();
    ro.database("orders", &path, DirMode::ReadOnly)
        .database_timeout("orders", Duration::from_secs(1));
    let reader = start(ro).await.unwrap();
    let e = ask(&node, reader, json!({"open": "orders"})).await;
    assert!(!err(&e).contains(tmp.path().to_str().unwrap()), "{e}");
    rusqlite::Connection::open(&path).unwrap();
    // Read-only within the module's read-write grant: it reads, and cannot write.
    let mut ro = ModuleGrants::default();
    ro.database("orders", &path, DirMode::ReadOnly)
        .database_timeout("orders", Duration::from_secs(1));
    let reader = start(ro).await.expect("a narrower grant is allowed");
    assert_eq!(
        ask(&node, reader, json!({"open": "orders"})).await,
        json!({"ok": 0})
    );
    let e = ask(
        &node,
        reader,
        json!({"execute": [0, "CREATE TABLE t (x)", []]}),
    )
    .await;
    assert!(err(&e).contains("readonly"), "{e}");
    // Another file, or a longer time limit, is more than the module has.
    let mut other = ModuleGrants::default();
    other.database("orders", tmp.path().join("other.db"), DirMode::ReadOnly);
    assert!(matches!(
        start(other).await,
        Err(otter::StartError::Grants(_))
    ));
    let mut longer = ModuleGrants::default();
    longer
        .database("orders", &path, DirMode::ReadOnly)
        .database_timeout("orders", Duration::from_secs(60));
    assert!(matches!(
        start(longer).await,
        Err(otter::StartError::Grants(_))
    ));
}

#[tokio::test]
async fn a_database_grows_no_larger_than_its_grant() {
    let tmp = tempfile::tempdir().unwrap();
    let mut grants = orders_grant(tmp.path(), Duration::from_secs(2));
    grants.database_max_bytes("orders", 256 * 1024);
    let (node, pid) = probe_with(grants).await;
    ask(&node, pid, json!({"open": "orders"})).await;
    ask(
        &node,
        pid,
        json!({"execute": [0, "CREATE TABLE t (b BLOB)", []]}),
    )
    .await;
    let fill = "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                LIMIT 1000) SELECT zeroblob(1000) FROM c";
    let e = ask(&node, pid, json!({"execute": [0, fill, []]})).await;
    assert!(err(&e).contains("full"), "{e}");
    let size = std::fs::metadata(tmp.path().join("orders.db"))
        .unwrap()
        .len();
    assert!(size <= 256 * 1024, "{size}");
}

#[tokio::test]
async fn a_hibernating_process_holds_no_transaction_or_lock_on_its_database() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, b) = opened(tmp.path()).await;
    ask(&node, b, json!({"execute": [0, "CREATE TABLE t (x)", []]})).await;
    let sleeper = node
        .spawn(
            "sql_probe",
            otter::encode(&()).unwrap(),
            SpawnOptions::default().hibernate_after(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    assert_eq!(
        ask(&node, sleeper, json!({"open": "orders"})).await,
        json!({"ok": 0})
    );
    // It takes the write lock, writes, and goes to sleep with its transaction open.
    ask(
        &node,
        sleeper,
        json!({"execute": [0, "BEGIN IMMEDIATE", []]}),
    )
    .await;
    ask(
        &node,
        sleeper,
        json!({"execute": [0, "INSERT INTO t VALUES (1)", []]}),
    )
    .await;
    assert!(eventually(async || node.is_hibernating(sleeper)).await);
    // Its instance is gone, and its transaction with it: another process writes at once.
    let wrote = ask(
        &node,
        b,
        json!({"execute": [0, "INSERT INTO t VALUES (2)", []]}),
    )
    .await;
    assert_eq!(wrote, json!({"ok": 1}));
    let rows = ask(&node, b, json!({"query": [0, "SELECT x FROM t", []]})).await;
    assert_eq!(rows, json!({"ok": {"columns": ["x"], "rows": [[2]]}}));
}

#[tokio::test]
async fn a_failed_upgrade_leaves_the_old_version_s_connections_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, pid) = opened(tmp.path()).await;
    ask(
        &node,
        pid,
        json!({"execute": [0, "CREATE TABLE t (x)", []]}),
    )
    .await;
    ask(&node, pid, json!({"execute": [0, "BEGIN", []]})).await;
    ask(
        &node,
        pid,
        json!({"execute": [0, "INSERT INTO t VALUES (1)", []]}),
    )
    .await;
    // The probe's code_change cannot read sql_probe's state: the upgrade fails.
    let failed = node
        .upgrade("sql_probe", wasm("probe_v2"), UpgradeOptions::default())
        .await;
    assert!(matches!(failed, Err(UpgradeError::Failed(_))), "{failed:?}");
    // The old version goes on exactly as it was: its connection, and its transaction.
    assert_eq!(
        ask(
            &node,
            pid,
            json!({"execute": [0, "INSERT INTO t VALUES (2)", []]})
        )
        .await,
        json!({"ok": 1})
    );
    ask(&node, pid, json!({"execute": [0, "COMMIT", []]})).await;
    let rows = ask(&node, pid, json!({"query": [0, "SELECT x FROM t", []]})).await;
    assert_eq!(rows, json!({"ok": {"columns": ["x"], "rows": [[1], [2]]}}));
}

#[tokio::test]
async fn a_database_replaced_by_a_symbolic_link_is_refused_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside.db");
    {
        let db = rusqlite::Connection::open(&outside).unwrap();
        db.execute("CREATE TABLE secret (x)", []).unwrap();
        db.execute("INSERT INTO secret VALUES ('key')", []).unwrap();
    }
    // A process that can write the granted database's directory swaps the file for a link.
    std::os::unix::fs::symlink(&outside, tmp.path().join("orders.db")).unwrap();
    let (node, pid) = probe_with(orders_grant(tmp.path(), Duration::from_secs(1))).await;
    let e = ask(&node, pid, json!({"open": "orders"})).await;
    assert!(err(&e).starts_with("sqlite: cannot open"), "{e}");
    // A journal swapped for a link is not followed either (SQLite opens it with
    // O_NOFOLLOW): the file it points at is untouched.
    std::fs::remove_file(tmp.path().join("orders.db")).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    std::os::unix::fs::symlink(&victim, tmp.path().join("orders.db-journal")).unwrap();
    assert_eq!(
        ask(&node, pid, json!({"open": "orders"})).await,
        json!({"ok": 0})
    );
    for statement in ["CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"] {
        ask(&node, pid, json!({"execute": [0, statement, []]})).await;
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
}
