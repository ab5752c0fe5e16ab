//! Named registries of keys (Elixir's `Registry`): `via` names with composite keys, unique
//! and duplicate keys, entries freed on exit, dispatch.

use otter::{
    CallError, ChildSpec, Dest, ExitReason, Keys, RegistryError, RegistryExists, SpawnOptions,
    StartError, Strategy, SupervisorSpec, from_json, to_json,
};
use serde_json::{Value, json};

use crate::support::*;

fn key(v: Value) -> Vec<u8> {
    from_json(&v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_cast_and_send_reach_the_holder_of_a_composite_via_key() {
    let node = node().await;
    node.create_registry("MyReg", Keys::Unique).unwrap();
    let holder = try_probe(&node, json!({"register": ["MyReg", ["kv", 42]]}), None)
        .await
        .unwrap();
    let via = Dest::via("MyReg", key(json!(["kv", 42])));

    // From Rust.
    let pid: Value = node.call(via.clone(), &json!("self_pid")).await.unwrap();
    assert_eq!(pid, json!(holder));
    node.cast(via.clone(), from_json(&json!({"record": "rust-cast"})));
    node.send(via, from_json(&json!({"text": "rust-send"})))
        .unwrap();

    // From a guest.
    let g = probe(&node).await;
    let to = json!({"via": ["MyReg", ["kv", 42]]});
    let r: Value = node
        .call(g, &json!({"call": {"to": to, "request": "self_pid"}}))
        .await
        .unwrap();
    assert_eq!(r, json!(holder));
    let r: Value = node
        .call(g, &json!({"cast_to": {"to": to, "text": "guest-cast"}}))
        .await
        .unwrap();
    assert_eq!(r, json!("ok"));
    let r: Value = node
        .call(g, &json!({"send_to": {"to": to, "text": "guest-send"}}))
        .await
        .unwrap();
    assert_eq!(r, json!("ok"));
    let want = [
        "cast:rust-cast",
        "info:rust-send",
        "cast:guest-cast",
        "info:guest-send",
    ];
    assert!(
        eventually(async || {
            let ev = events(&node, holder).await;
            want.iter().all(|w| ev.iter().any(|e| e == w))
        })
        .await,
        "{:?}",
        events(&node, holder).await
    );

    // Another key of the same shape is not held: noproc, as for an unregistered name.
    let r: Value = node
        .call(
            g,
            &json!({"call": {"to": {"via": ["MyReg", ["kv", 43]]}, "request": "ping"}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("noproc"));
    let r: Value = node
        .call(
            g,
            &json!({"send_to": {"to": {"via": ["MyReg", ["kv", 43]]}, "text": "x"}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("noproc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_holder_of_a_unique_key_is_refused_with_the_holders_pid() {
    let node = node().await;
    node.create_registry("MyReg", Keys::Unique).unwrap();
    let a = probe(&node).await;
    let b = probe(&node).await;
    let reg = |value: &str| json!({"reg_register": {"registry": "MyReg", "key": {"room": [1, "x"]}, "value": value}});
    let r: Value = node.call(a, &reg("a")).await.unwrap();
    assert_eq!(r, json!("ok"));
    let r: Value = node.call(b, &reg("b")).await.unwrap();
    assert_eq!(r, json!(format!("key already registered by {a}")));
    // The holder itself is refused too, as in Elixir.
    let r: Value = node.call(a, &reg("again")).await.unwrap();
    assert_eq!(r, json!(format!("key already registered by {a}")));
    // A process that registers in init does not start.
    let r = try_probe(
        &node,
        json!({"register": ["MyReg", {"room": [1, "x"]}]}),
        None,
    )
    .await;
    assert_eq!(
        r,
        Err(StartError::Stopped(ExitReason::Error(format!(
            "key already registered by {a}"
        ))))
    );
    let entries = node
        .registry_lookup("MyReg", &key(json!({"room": [1, "x"]})))
        .unwrap();
    let entries: Vec<(u64, Value)> = entries
        .into_iter()
        .map(|(p, v)| (p, to_json(&v).unwrap()))
        .collect();
    assert_eq!(entries, [(a, json!("a"))]);
    // Once unregistered, the key is free for b.
    let r: Value = node
        .call(
            a,
            &json!({"reg_unregister": {"registry": "MyReg", "key": {"room": [1, "x"]}}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("ok"));
    let r: Value = node.call(b, &reg("b")).await.unwrap();
    assert_eq!(r, json!("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_free_the_moment_its_holder_dies() {
    let node = node().await;
    node.create_registry("MyReg", Keys::Unique).unwrap();
    let k = key(json!(["svc", 1]));
    let first = try_probe(&node, json!({"register": ["MyReg", ["svc", 1]]}), None)
        .await
        .unwrap();
    let r = node
        .call::<_, Value>(Dest::via("MyReg", k.clone()), &json!("trap"))
        .await;
    assert!(matches!(r, Err(CallError::Exited(_))), "{r:?}");
    // The caller has learned of the crash: the key is already free.
    assert_eq!(node.registry_lookup("MyReg", &k).unwrap(), []);
    let r = node
        .call::<_, Value>(Dest::via("MyReg", k.clone()), &json!("ping"))
        .await;
    assert_eq!(r, Err(CallError::NoProc));
    let second = try_probe(&node, json!({"register": ["MyReg", ["svc", 1]]}), None)
        .await
        .unwrap();
    assert_ne!(first, second);
    // A kill frees it the same way.
    node.kill(second);
    // The key goes before the process leaves the table.
    assert!(eventually(async || !node.is_alive(second)).await);
    assert_eq!(node.registry_lookup("MyReg", &k).unwrap(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_restarted_child_registers_its_key_again() {
    let node = node().await;
    node.create_registry("MyReg", Keys::Unique).unwrap();
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::worker(
        "w",
        "probe",
        from_json(&json!({"register": ["MyReg", ["worker", 1]]})),
    ));
    let sup = node.start_supervisor(spec).await.unwrap();
    let via = Dest::via("MyReg", key(json!(["worker", 1])));
    let first: u64 = node.call(via.clone(), &json!("self_pid")).await.unwrap();
    let _ = node.call::<_, Value>(via.clone(), &json!("trap")).await;
    let mut second = None;
    assert!(
        eventually(async || {
            second = node
                .call::<_, u64>(via.clone(), &json!("self_pid"))
                .await
                .ok()
                .filter(|p| *p != first);
            second.is_some()
        })
        .await
    );
    let rows = sup.which_children().await.unwrap();
    assert_eq!(rows[0].pid, second);
    assert_eq!(rows[0].restarts, 1);
    sup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_reaches_every_subscriber_in_order_and_not_a_dead_one() {
    let node = node().await;
    node.create_registry("PubSub", Keys::Duplicate).unwrap();
    let mut subs = Vec::new();
    for i in 0..3 {
        let s = probe(&node).await;
        let r: Value = node
            .call(
                s,
                &json!({"reg_register": {"registry": "PubSub", "key": ["topic", "news"], "value": i}}),
            )
            .await
            .unwrap();
        assert_eq!(r, json!("ok"));
        subs.push(s);
    }
    node.kill(subs[1]);
    node.wait_exit(subs[1]).await;

    let publisher = probe(&node).await;
    for m in ["m1", "m2", "m3"] {
        let n: Value = node
            .call(
                publisher,
                &json!({"dispatch": {"registry": "PubSub", "key": ["topic", "news"], "text": m}}),
            )
            .await
            .unwrap();
        assert_eq!(n, json!(2));
    }
    let n = node
        .registry_dispatch(
            "PubSub",
            &key(json!(["topic", "news"])),
            from_json(&json!({"text": "m4"})),
        )
        .unwrap();
    assert_eq!(n, 2);
    for s in [subs[0], subs[2]] {
        let infos = async || -> Vec<String> {
            events(&node, s)
                .await
                .into_iter()
                .filter(|e| e.starts_with("info:"))
                .collect()
        };
        assert!(eventually(async || infos().await.len() == 4).await);
        assert_eq!(infos().await, ["info:m1", "info:m2", "info:m3", "info:m4"]);
    }
    let r: Value = node
        .call(
            publisher,
            &json!({"reg_lookup": {"registry": "PubSub", "key": ["topic", "news"]}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!([[subs[0], 0], [subs[2], 2]]));
    // Nobody under another key.
    let n = node
        .registry_dispatch(
            "PubSub",
            &key(json!(["topic", "other"])),
            from_json(&json!(1)),
        )
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_registry_is_a_clear_error_everywhere() {
    let node = node().await;
    node.create_registry("MyReg", Keys::Unique).unwrap();
    node.create_registry("PubSub", Keys::Duplicate).unwrap();
    assert_eq!(
        node.create_registry("MyReg", Keys::Duplicate),
        Err(RegistryExists("MyReg".into()))
    );
    let g = probe(&node).await;
    let unknown = json!("unknown registry \"Nope\"");
    for req in [
        json!({"reg_register": {"registry": "Nope", "key": 1, "value": null}}),
        json!({"reg_unregister": {"registry": "Nope", "key": 1}}),
        json!({"reg_lookup": {"registry": "Nope", "key": 1}}),
        json!({"dispatch": {"registry": "Nope", "key": 1, "text": "x"}}),
    ] {
        let r: Value = node.call(g, &req).await.unwrap();
        assert_eq!(r, unknown, "{req}");
    }
    let r: Value = node
        .call(
            g,
            &json!({"call": {"to": {"via": ["Nope", 1]}, "request": "ping"}}),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("registry:unknown registry \"Nope\""));
    let r: Value = node
        .call(
            g,
            &json!({"call": {"to": {"via": ["PubSub", 1]}, "request": "ping"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        r,
        json!("registry:registry \"PubSub\" has duplicate keys; a via name needs a unique one")
    );
    assert_eq!(
        node.call::<_, Value>(Dest::via("Nope", key(json!(1))), &json!("ping"))
            .await,
        Err(CallError::Registry(RegistryError::UnknownRegistry(
            "Nope".into()
        )))
    );
    assert_eq!(
        node.registry_lookup("Nope", &key(json!(1))),
        Err(RegistryError::UnknownRegistry("Nope".into()))
    );
    // The guest that asked is fine.
    let r: Value = node.call(g, &json!("ping")).await.unwrap();
    assert_eq!(r, json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_under_a_taken_via_name_is_already_started() {
    let node = node().await;
    node.create_registry("MyReg", Keys::Unique).unwrap();
    node.create_registry("PubSub", Keys::Duplicate).unwrap();
    let k = key(json!({"kv": 42}));
    let start = |registry: &str| {
        node.spawn(
            "probe",
            from_json(&json!({})),
            SpawnOptions::default().via(registry, k.clone()),
        )
    };
    let first = start("MyReg").await.unwrap();
    let pid: u64 = node
        .call(Dest::via("MyReg", k.clone()), &json!("self_pid"))
        .await
        .unwrap();
    assert_eq!(pid, first);
    assert_eq!(start("MyReg").await, Err(StartError::AlreadyStarted(first)));
    assert_eq!(node.process_count(), 1);
    assert_eq!(
        start("Nope").await,
        Err(StartError::Registry(RegistryError::UnknownRegistry(
            "Nope".into()
        )))
    );
    assert_eq!(
        start("PubSub").await,
        Err(StartError::Registry(RegistryError::NotUnique(
            "PubSub".into()
        )))
    );
    assert_eq!(node.process_count(), 1);
    node.stop(first, ExitReason::Normal, None).await.unwrap();
    let second = start("MyReg").await.unwrap();
    assert_ne!(first, second);
}
