//! SQLite databases granted to a server (guests/sql_probe) with `TestNode::grant_database`.

use otter::DirMode;
use serde_json::{Value, json};

use crate::support::{node, panic_message};

#[tokio::test]
async fn a_granted_database_is_opened_by_its_name_and_the_test_reads_what_was_written() {
    let node = node(&["sql_probe"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    node.grant_database("sql_probe", "orders", &path, DirMode::ReadWrite);
    let server = node.start_server("sql_probe").await;
    let probe = node.probe();
    for request in [
        json!({"open": "orders"}),
        json!({"execute": [0, "CREATE TABLE t (k TEXT)", []]}),
        json!({"execute": [0, "INSERT INTO t VALUES (?1)", ["주문"]]}),
    ] {
        let answer: Value = probe.call(server, &request).await.unwrap();
        assert!(answer.get("ok").is_some(), "{request}: {answer}");
    }
    let db = rusqlite::Connection::open(&path).unwrap();
    let k: String = db.query_row("SELECT k FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(k, "주문");
}

#[tokio::test]
async fn each_database_granted_to_a_module_is_opened_by_its_name() {
    let node = node(&["sql_probe"]).await;
    let dir = tempfile::tempdir().unwrap();
    node.grant_database(
        "sql_probe",
        "a",
        dir.path().join("a.db"),
        DirMode::ReadWrite,
    );
    node.grant_database(
        "sql_probe",
        "b",
        dir.path().join("b.db"),
        DirMode::ReadWrite,
    );
    let server = node.start_server("sql_probe").await;
    let probe = node.probe();
    for (name, n) in [("a", 0), ("b", 1)] {
        let answer: Value = probe.call(server, &json!({ "open": name })).await.unwrap();
        assert_eq!(answer, json!({ "ok": n }), "{name}");
    }
}

#[tokio::test]
async fn a_database_of_a_module_granted_none_cannot_be_opened() {
    let node = node(&["sql_probe"]).await;
    let server = node.start_server("sql_probe").await;
    let probe = node.probe();
    let answer: Value = probe
        .call(server, &json!({"open": "orders"}))
        .await
        .unwrap();
    assert!(answer.get("err").is_some(), "{answer}");
}

#[tokio::test]
async fn granting_a_database_in_a_directory_that_is_not_there_fails_the_test_saying_so() {
    let node = node(&["sql_probe"]).await;
    let message = panic_message(async move {
        node.grant_database(
            "sql_probe",
            "orders",
            "/nonexistent/otter-test/orders.db",
            DirMode::ReadWrite,
        );
    })
    .await;
    assert!(
        message.starts_with(
            "granting `sql_probe` database `orders` at /nonexistent/otter-test/orders.db:"
        ),
        "{message}"
    );
}
