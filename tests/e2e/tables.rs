//! Shared tables (ETS) through a real guest, `table_probe` (one table operation per call);
//! the chapter's KVWithETS on them is in kv_ets.rs.

use otter::{Node, NodeConfig, Pid, SpawnOptions};
use serde_json::{Value, json};

use crate::support::wasm;

async fn node_with(config: NodeConfig) -> Node {
    let node = Node::new(config).expect("node");
    node.load_module("table_probe", wasm("table_probe"))
        .await
        .expect("load module");
    node
}

async fn node() -> Node {
    node_with(NodeConfig::default()).await
}

async fn start(node: &Node, module: &str, args: Value, name: Option<&str>) -> Pid {
    let mut opts = SpawnOptions::default();
    if let Some(n) = name {
        opts = opts.name(n);
    }
    node.spawn(module, otter::from_json(&args), opts)
        .await
        .expect("starts")
}

async fn probe(node: &Node) -> Pid {
    start(node, "table_probe", Value::Null, None).await
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

async fn new_table(node: &Node, owner: Pid, table: &str, kind: &str, access: &str) {
    op(
        node,
        owner,
        json!({"new": {"table": table, "kind": kind, "access": access, "heir": null}}),
    )
    .await
    .expect("table created");
}

async fn insert(
    node: &Node,
    pid: Pid,
    table: &str,
    key: Value,
    value: Value,
) -> Result<Value, String> {
    op(
        node,
        pid,
        json!({"insert": {"table": table, "key": key, "value": value}}),
    )
    .await
}

async fn lookup(node: &Node, pid: Pid, table: &str, key: Value) -> Result<Value, String> {
    op(node, pid, json!({"lookup": {"table": table, "key": key}})).await
}

#[tokio::test]
async fn a_public_table_takes_writes_from_any_process() {
    let node = node().await;
    let (owner, other) = (probe(&node).await, probe(&node).await);
    new_table(&node, owner, "open", "set", "public").await;
    insert(&node, other, "open", json!("k"), json!(1))
        .await
        .expect("public write");
    assert_eq!(
        lookup(&node, owner, "open", json!("k")).await,
        Ok(json!([1]))
    );
}

#[tokio::test]
async fn a_private_table_is_unreadable_by_other_processes() {
    let node = node().await;
    let (owner, other) = (probe(&node).await, probe(&node).await);
    new_table(&node, owner, "secret", "set", "private").await;
    insert(&node, owner, "secret", json!("k"), json!("v"))
        .await
        .unwrap();
    assert_eq!(
        lookup(&node, owner, "secret", json!("k")).await,
        Ok(json!(["v"]))
    );
    let denied = "access denied by the table's protection".to_owned();
    assert_eq!(
        lookup(&node, other, "secret", json!("k")).await,
        Err(denied.clone())
    );
    assert_eq!(
        op(&node, other, json!({"to_list": {"table": "secret"}})).await,
        Err(denied.clone())
    );
    // Its size is not a secret, as `ets:info(T, size)` answers anyone.
    assert_eq!(
        op(&node, other, json!({"size": {"table": "secret"}})).await,
        Ok(json!(1))
    );
    assert_eq!(
        op(
            &node,
            other,
            json!({"member": {"table": "secret", "key": "k"}})
        )
        .await,
        Err(denied)
    );
}

#[tokio::test]
async fn a_table_goes_to_its_living_heir_which_is_told_with_ets_transfer() {
    let node = node().await;
    let (owner, heir) = (probe(&node).await, probe(&node).await);
    op(
        &node,
        owner,
        json!({"new": {"table": "t", "kind": "set", "access": "protected", "heir": heir}}),
    )
    .await
    .unwrap();
    insert(&node, owner, "t", json!("k"), json!("v"))
        .await
        .unwrap();
    node.kill(owner);
    node.wait_exit(owner).await;
    assert_eq!(
        op(&node, heir, json!({"owner": {"table": "t"}})).await,
        Ok(json!(heir))
    );
    assert_eq!(lookup(&node, heir, "t", json!("k")).await, Ok(json!(["v"])));
    insert(&node, heir, "t", json!("k2"), json!(2))
        .await
        .expect("the heir writes");
    assert_eq!(
        op(&node, heir, json!("transfers")).await,
        Ok(json!([{"table": "t", "from": owner, "data": {"heir_of": "t"}}]))
    );
    // The heir has no heir: when it exits, the table goes.
    node.kill(heir);
    node.wait_exit(heir).await;
    let p = probe(&node).await;
    assert_eq!(
        op(&node, p, json!({"size": {"table": "t"}})).await,
        Err("no such table".to_owned())
    );
}

#[tokio::test]
async fn give_away_makes_a_living_process_the_owner_and_tells_it() {
    let node = node().await;
    let (owner, to) = (probe(&node).await, probe(&node).await);
    new_table(&node, owner, "g", "set", "protected").await;
    let give = |to: Pid| json!({"give_away": {"table": "g", "to": to, "data": "yours"}});
    assert!(
        op(&node, owner, give(owner))
            .await
            .unwrap_err()
            .starts_with("badarg")
    );
    assert!(
        op(&node, owner, give(999_999))
            .await
            .unwrap_err()
            .starts_with("badarg")
    );
    op(&node, owner, give(to)).await.expect("given");
    assert_eq!(
        op(&node, to, json!({"owner": {"table": "g"}})).await,
        Ok(json!(to))
    );
    assert_eq!(
        op(&node, to, json!("transfers")).await,
        Ok(json!([{"table": "g", "from": owner, "data": "yours"}]))
    );
    assert_eq!(
        insert(&node, owner, "g", json!(1), json!(1)).await,
        Err("access denied by the table's protection".to_owned())
    );
    assert_eq!(
        op(&node, owner, give(to)).await,
        Err("only the table's owner may do this".to_owned())
    );
    // It now dies with its new owner, not the old one.
    node.kill(owner);
    node.wait_exit(owner).await;
    assert_eq!(
        op(&node, to, json!({"size": {"table": "g"}})).await,
        Ok(json!(0))
    );
}

#[tokio::test]
async fn an_ordered_set_orders_keys_by_their_value_not_their_bytes() {
    let node = node().await;
    let p = probe(&node).await;
    new_table(&node, p, "o", "ordered_set", "protected").await;
    // In CBOR bytes -1 (0x20) sorts after 23 (0x17), and "ba" (0x62..) before "c" only by
    // luck of length: the table must not care.
    let keys = [
        json!("ba"),
        json!(24),
        json!(-1),
        json!([1, 2]),
        json!("c"),
        json!(1.5),
        json!(-300),
        json!(23),
        json!([1]),
        json!("b"),
        json!(1),
        json!(1.0),
        json!(null),
        json!(true),
    ];
    for (i, k) in keys.iter().enumerate() {
        insert(&node, p, "o", k.clone(), json!(i)).await.unwrap();
    }
    let list = op(&node, p, json!({"to_list": {"table": "o"}}))
        .await
        .unwrap();
    let order: Vec<Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| kv[0].clone())
        .collect();
    assert_eq!(
        order,
        vec![
            json!(-300),
            json!(-1),
            json!(1),
            json!(1.0),
            json!(1.5),
            json!(23),
            json!(24),
            json!(true),
            json!(null),
            json!("b"),
            json!("ba"),
            json!("c"),
            json!([1]),
            json!([1, 2]),
        ]
    );
}

#[tokio::test]
async fn select_reads_keys_by_prefix_and_by_range_in_order() {
    let node = node().await;
    let p = probe(&node).await;
    new_table(&node, p, "s", "ordered_set", "protected").await;
    let objects = json!([
        [["user", 10, "name"], "ten"],
        [["user", 1, "name"], "one"],
        [["user", 1, "age"], 41],
        [["group", 1], "g"],
        ["apple", 1],
        ["apricot", 2],
        ["banana", 3],
        ["ap", 0],
        [5, "five"],
        [-5, "minus five"],
        [50, "fifty"]
    ]);
    op(
        &node,
        p,
        json!({"insert_many": {"table": "s", "objects": objects}}),
    )
    .await
    .unwrap();
    let prefix = |pre: Value| json!({"prefix": {"table": "s", "prefix": pre}});
    assert_eq!(
        op(&node, p, prefix(json!("ap"))).await,
        Ok(json!([["ap", 0], ["apple", 1], ["apricot", 2]]))
    );
    assert_eq!(
        op(&node, p, prefix(json!(["user", 1]))).await,
        Ok(json!([
            [["user", 1, "age"], 41],
            [["user", 1, "name"], "one"]
        ]))
    );
    assert_eq!(op(&node, p, prefix(json!("zz"))).await, Ok(json!([])));
    assert!(
        op(&node, p, prefix(json!(5)))
            .await
            .unwrap_err()
            .starts_with("badarg")
    );
    let range = |from: Value, to: Value| json!({"range": {"table": "s", "from": from, "to": to}});
    assert_eq!(
        op(&node, p, range(json!(-10), json!(50))).await,
        Ok(json!([[-5, "minus five"], [5, "five"]]))
    );
    assert_eq!(
        op(&node, p, range(json!("b"), json!(null))).await.unwrap()[0],
        json!(["banana", 3])
    );
    assert_eq!(
        op(&node, p, range(json!(50), json!(-10))).await,
        Ok(json!([]))
    );
}

#[tokio::test]
async fn update_counter_adds_atomically_and_starts_from_a_default() {
    let node = node().await;
    let p = probe(&node).await;
    new_table(&node, p, "c", "set", "public").await;
    let bump = |incr: i64, default: Option<i64>| json!({"update_counter": {"table": "c", "key": "hits", "incr": incr, "default": default}});
    assert!(
        op(&node, p, bump(1, None))
            .await
            .unwrap_err()
            .starts_with("badarg")
    );
    assert_eq!(op(&node, p, bump(1, Some(10))).await, Ok(json!(11)));
    // Readers and writers in other processes share the counter.
    let others = [probe(&node).await, probe(&node).await];
    for o in others {
        assert!(op(&node, o, bump(5, Some(0))).await.is_ok());
    }
    assert_eq!(op(&node, p, bump(-1, None)).await, Ok(json!(20)));
    assert_eq!(lookup(&node, p, "c", json!("hits")).await, Ok(json!([20])));
    insert(&node, p, "c", json!("hits"), json!(i64::MAX))
        .await
        .unwrap();
    assert!(
        op(&node, p, bump(1, None))
            .await
            .unwrap_err()
            .contains("overflows")
    );
    insert(&node, p, "c", json!("name"), json!("text"))
        .await
        .unwrap();
    let text = json!({"update_counter": {"table": "c", "key": "name", "incr": 1, "default": null}});
    assert!(
        op(&node, p, text)
            .await
            .unwrap_err()
            .contains("not an integer")
    );
}

#[tokio::test]
async fn bags_keep_many_values_per_key_and_delete_objects_by_value() {
    let node = node().await;
    let p = probe(&node).await;
    new_table(&node, p, "bag", "bag", "protected").await;
    new_table(&node, p, "dup", "duplicate_bag", "protected").await;
    for t in ["bag", "dup"] {
        for v in [json!(1), json!(2), json!(1), json!(1.0)] {
            insert(&node, p, t, json!("k"), v).await.unwrap();
        }
    }
    assert_eq!(
        lookup(&node, p, "bag", json!("k")).await,
        Ok(json!([1, 2, 1.0]))
    );
    assert_eq!(
        lookup(&node, p, "dup", json!("k")).await,
        Ok(json!([1, 2, 1, 1.0]))
    );
    op(
        &node,
        p,
        json!({"delete_object": {"table": "dup", "key": "k", "value": 1}}),
    )
    .await
    .unwrap();
    assert_eq!(
        lookup(&node, p, "dup", json!("k")).await,
        Ok(json!([2, 1.0]))
    );
    assert_eq!(
        op(&node, p, json!({"size": {"table": "bag"}})).await,
        Ok(json!(3))
    );
    assert_eq!(
        op(
            &node,
            p,
            json!({"insert_new": {"table": "bag", "key": "k", "value": 9}})
        )
        .await,
        Ok(json!(false))
    );
    assert!(
        op(
            &node,
            p,
            json!({"update_counter": {"table": "bag", "key": "k", "incr": 1, "default": 0}})
        )
        .await
        .unwrap_err()
        .contains("bag")
    );
}

#[tokio::test]
async fn a_large_table_is_read_in_bounded_pages_that_continue_where_they_stopped() {
    let node = node().await;
    let p = probe(&node).await;
    new_table(&node, p, "big", "set", "protected").await;
    let filled = op(
        &node,
        p,
        json!({"fill": {"table": "big", "count": 25_000, "size": 8}}),
    )
    .await
    .unwrap();
    assert_eq!(filled, json!([25_000, null]));
    let mut after = Value::Null;
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let page = op(
            &node,
            p,
            json!({"page": {"table": "big", "after": after, "limit": 100_000}}),
        )
        .await
        .unwrap();
        let n = page["objects"].as_array().unwrap().len();
        assert!(n <= 10_000, "a page holds at most 10,000 objects, got {n}");
        seen += n;
        pages += 1;
        if page["more"].is_null() {
            break;
        }
        after = page["more"].clone();
    }
    assert_eq!((seen, pages), (25_000, 3));
    // to_list pages for the caller and sees them all.
    let all = op(&node, p, json!({"to_list": {"table": "big"}}))
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 25_000);
}

#[tokio::test]
async fn a_hostile_guest_meets_the_nodes_table_bounds_and_the_node_goes_on() {
    let mut config = NodeConfig::default();
    config
        .max_table_bytes(2 << 20)
        .max_tables_per_process(5)
        .max_tables(8)
        .max_message_size(64 << 10);
    let node = node_with(config).await;
    let (p, q) = (probe(&node).await, probe(&node).await);

    // Bytes in all tables: a flood is refused with system_limit, nothing half-written.
    new_table(&node, p, "flood", "set", "public").await;
    let [went_in, why] = <[Value; 2]>::try_from(
        op(
            &node,
            p,
            json!({"fill": {"table": "flood", "count": 1_000_000, "size": 1000}}),
        )
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone(),
    )
    .unwrap();
    let went_in = went_in.as_u64().unwrap();
    assert!(
        (1000..2100).contains(&went_in),
        "{went_in} objects of 1 KB in 2 MiB"
    );
    assert!(why.as_str().unwrap().starts_with("system_limit"), "{why}");
    // The budget is the node's: another process's table is refused too, until the owner
    // of the flood exits and its table's bytes come back.
    new_table(&node, q, "other", "set", "protected").await;
    let big = "x".repeat(10_000);
    assert!(
        insert(&node, q, "other", json!(1), json!(big))
            .await
            .unwrap_err()
            .starts_with("system_limit")
    );
    node.kill(p);
    node.wait_exit(p).await;
    insert(&node, q, "other", json!(1), json!(big))
        .await
        .expect("room again");

    // Tables per process.
    let made = op(&node, q, json!({"new_many": {"prefix": "t", "count": 100}}))
        .await
        .unwrap();
    assert_eq!(made[0], json!(4), "5 tables per process, one held already");
    assert!(made[1].as_str().unwrap().starts_with("system_limit"));

    // A key or value over the maximum message size.
    for (key, value) in [(70_000, 1), (1, 70_000)] {
        let big = json!({"insert_big": {"table": "other", "key_size": key, "value_size": value}});
        assert!(op(&node, q, big).await.unwrap_err().starts_with("badarg"));
    }

    // Malformed and deeply nested keys, straight to the host.
    let raw = |what: &str, key: Vec<u8>| json!({what: {"table": "other", "key": key}});
    let mut deep = vec![0x81u8; 1000];
    deep.push(0x01);
    for key in [
        deep.clone(),
        vec![0x82, 0x01],
        vec![0xff],
        vec![0x01, 0x02],
        vec![],
    ] {
        for what in ["raw_insert", "raw_lookup"] {
            let e = op(&node, q, raw(what, key.clone())).await.unwrap_err();
            assert!(
                e.contains("Badarg"),
                "{what} {:x?}: {e}",
                &key[..key.len().min(4)]
            );
        }
    }
    let e = op(
        &node,
        q,
        json!({"raw_prefix": {"table": "other", "prefix": deep}}),
    )
    .await
    .unwrap_err();
    assert!(e.contains("Badarg"), "{e}");

    // A bag key's objects are bounded, so a lookup's answer fits in a message.
    let q = probe(&node).await;
    new_table(&node, q, "b", "duplicate_bag", "protected").await;
    let mut refused = None;
    for i in 0..100 {
        if let Err(e) = insert(&node, q, "b", json!("k"), json!("y".repeat(4000))).await {
            refused = Some((i, e));
            break;
        }
    }
    let (i, e) = refused.expect("a bag key is bounded");
    assert!(
        (5..17).contains(&i) && e.starts_with("system_limit"),
        "{i}: {e}"
    );
    assert_eq!(
        lookup(&node, q, "b", json!("k"))
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        i
    );

    // The node still serves everyone.
    let r = probe(&node).await;
    new_table(&node, r, "fine", "set", "protected").await;
    insert(&node, r, "fine", json!("k"), json!("v"))
        .await
        .unwrap();
    assert_eq!(lookup(&node, r, "fine", json!("k")).await, Ok(json!(["v"])));

    // Tables on the node: "other", t0..t3, "b" and "fine" make 7 of 8.
    let made = op(&node, r, json!({"new_many": {"prefix": "u", "count": 100}}))
        .await
        .unwrap();
    assert_eq!(made[0], json!(1));
    assert!(
        made[1]
            .as_str()
            .unwrap()
            .contains("the node holds 8 tables"),
        "{made}"
    );
    // A name over 255 bytes.
    let long = "n".repeat(256);
    let e = op(
        &node,
        q,
        json!({"new": {"table": long, "kind": "set", "access": "public", "heir": null}}),
    )
    .await
    .unwrap_err();
    assert!(e.starts_with("badarg"), "{e}");
}
