//! Shared tables' bookkeeping against what a guest can send: keys in encodings of
//! different lengths, inserts of too many objects.

use otter::{Node, NodeConfig, Pid, SpawnOptions};
use serde_json::{Value, json};

use crate::support::wasm;

async fn node() -> Node {
    let node = Node::new(NodeConfig::default()).expect("node");
    node.load_module("table_probe", wasm("table_probe"))
        .await
        .expect("load module");
    node
}

async fn probe(node: &Node) -> Pid {
    node.spawn(
        "table_probe",
        otter::from_json(&Value::Null),
        SpawnOptions::default(),
    )
    .await
    .expect("starts")
}

/// One table operation in `pid`'s process: `Ok(result)` or `Err(why)`.
async fn op(node: &Node, pid: Pid, request: Value) -> Result<Value, String> {
    let answer: Value = node.call(pid, &request).await.expect("probe answers");
    match (answer.get("ok"), answer.get("err")) {
        (Some(v), _) => Ok(v.clone()),
        (_, Some(e)) => Err(e.as_str().unwrap_or_default().to_owned()),
        _ => panic!("unexpected answer {answer}"),
    }
}

#[tokio::test]
async fn one_key_sent_in_encodings_of_different_lengths_leaves_the_table_and_the_node_sound() {
    let node = node().await;
    let (owner, writer) = (probe(&node).await, probe(&node).await);
    op(
        &node,
        owner,
        json!({"new": {"table": "dup", "kind": "duplicate_bag", "access": "public", "heir": null}}),
    )
    .await
    .unwrap();
    // "a" as a definite text, then as an indefinite one padded with empty chunks.
    let mut padded = vec![0x7f, 0x61, b'a'];
    padded.resize(60_000, 0x60);
    padded.push(0xff);
    for key in [vec![0x61, b'a'], padded] {
        op(
            &node,
            writer,
            json!({"raw_insert": {"table": "dup", "key": key}}),
        )
        .await
        .unwrap();
    }
    let size = json!({"size": {"table": "dup"}});
    assert_eq!(op(&node, owner, size.clone()).await, Ok(json!(2)));
    // Both objects are {"a", 1}: one delete_object takes both, each giving back its own cost.
    op(
        &node,
        writer,
        json!({"delete_object": {"table": "dup", "key": "a", "value": 1}}),
    )
    .await
    .unwrap();
    assert_eq!(op(&node, owner, size).await, Ok(json!(0)));
    op(
        &node,
        writer,
        json!({"insert": {"table": "dup", "key": "a", "value": 2}}),
    )
    .await
    .unwrap();
    let lookup = json!({"lookup": {"table": "dup", "key": "a"}});
    assert_eq!(op(&node, owner, lookup).await, Ok(json!([2])));
}

#[tokio::test]
async fn an_insert_of_over_ten_thousand_objects_is_refused_whole() {
    let node = node().await;
    let p = probe(&node).await;
    op(
        &node,
        p,
        json!({"new": {"table": "t", "kind": "set", "access": "protected", "heir": null}}),
    )
    .await
    .unwrap();
    let objects: Vec<Value> = (0..10_001).map(|k| json!([k, 0])).collect();
    let refused = op(
        &node,
        p,
        json!({"insert_many": {"table": "t", "objects": objects}}),
    )
    .await
    .unwrap_err();
    assert!(refused.starts_with("system_limit"), "{refused}");
    assert_eq!(
        op(&node, p, json!({"size": {"table": "t"}})).await,
        Ok(json!(0))
    );
    let objects: Vec<Value> = (0..10_000).map(|k| json!([k, 0])).collect();
    op(
        &node,
        p,
        json!({"insert_many": {"table": "t", "objects": objects}}),
    )
    .await
    .unwrap();
}
