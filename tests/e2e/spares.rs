//! Instances made ahead of spawns (`NodeConfig::spare_instances`): a spawn that takes one
//! behaves as one that instantiates its own — the module it asked for, the memory cap it
//! asked for — and a node set to make none makes none.

use otter::{Node, NodeConfig, ProcessLimits, SpawnOptions, StartError};
use serde_json::{Value, json};

use crate::support::*;

async fn node_with_spares(most: usize, modules: &[&str]) -> Node {
    let mut config = NodeConfig::default();
    config.spare_instances(most);
    let node = Node::new(config).expect("node");
    for m in modules {
        node.load_module(m, wasm(m)).await.expect("load module");
    }
    node
}

fn unit() -> Vec<u8> {
    otter::encode(&()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_take_instances_made_ahead_and_each_process_is_its_own() {
    let node = node_with_spares(4, &["counter"]).await;
    let mut pids = Vec::new();
    for _ in 0..20 {
        pids.push(
            node.spawn("counter", unit(), SpawnOptions::default())
                .await
                .unwrap(),
        );
        // Give the spares' thread its turn, as time between spawns would.
        eventually(async || node.spare_instances().ready > 0).await;
    }
    let spares = node.spare_instances();
    assert!(spares.taken >= 10, "{spares:?}");
    assert!(spares.made >= spares.taken, "{spares:?}");
    // Each has its own state: a spare is a fresh instance, never one a process used.
    for (i, pid) in pids.iter().enumerate() {
        for _ in 0..=i {
            let _: u64 = node.call(*pid, &"inc").await.unwrap();
        }
    }
    for (i, pid) in pids.iter().enumerate() {
        let count: u64 = node.call(*pid, &"get").await.unwrap();
        assert_eq!(count, i as u64 + 1);
    }
    // Its memory shows in its process's entry, as an instance of its own would.
    let info = node.process_info(pids[0]).unwrap();
    assert!(info.memory > 0, "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_set_to_make_no_spares_makes_none() {
    let node = node_with_spares(0, &["counter"]).await;
    for _ in 0..10 {
        node.spawn("counter", unit(), SpawnOptions::default())
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(node.spare_instances(), otter::SpareInstances::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_after_its_module_is_replaced_runs_the_new_module_not_a_spare_of_the_old() {
    let node = node_with_spares(4, &[]).await;
    node.load_module("m", wasm("counter")).await.unwrap();
    for _ in 0..3 {
        node.spawn("m", unit(), SpawnOptions::default())
            .await
            .unwrap();
    }
    assert!(eventually(async || node.spare_instances().ready > 0).await);
    node.load_module("m", wasm("echo")).await.unwrap();
    // The replaced module's spares went with it.
    assert_eq!(node.spare_instances().ready, 0);
    let taken = node.spare_instances().taken;
    let pid = node
        .spawn("m", unit(), SpawnOptions::default())
        .await
        .unwrap();
    // The echo server answers `ping`; the counter would refuse it (`badarg`).
    let reply: Value = node
        .call(pid, &"ping")
        .await
        .expect("a spare of the replaced module served the spawn");
    assert_eq!(reply, json!({"pong": 1}));
    // The echo server's shelf was empty: its first spawn made its own instance.
    assert_eq!(node.spare_instances().taken, taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_capped_below_its_modules_memory_fails_to_start_as_it_would_without_spares() {
    // The counter's memory starts at two 64 KiB pages: a 64 KiB cap cannot hold it.
    let capped = || SpawnOptions::default().limits(ProcessLimits::default().memory(64 << 10));
    let mut errors = Vec::new();
    for most in [0, 4] {
        let node = node_with_spares(most, &["counter"]).await;
        node.spawn("counter", unit(), SpawnOptions::default())
            .await
            .unwrap();
        if most > 0 {
            assert!(eventually(async || node.spare_instances().ready > 0).await);
        }
        let err = node.spawn("counter", unit(), capped()).await.unwrap_err();
        assert!(matches!(err, StartError::Instantiate(_)), "{err:?}");
        errors.push(err.to_string());
        // The spare it could not take is still there for the next spawn without a cap.
        if most > 0 {
            let taken = node.spare_instances().taken;
            node.spawn("counter", unit(), SpawnOptions::default())
                .await
                .unwrap();
            assert_eq!(node.spare_instances().taken, taken + 1);
        }
    }
    assert_eq!(errors[0], errors[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spares_no_spawn_comes_for_are_given_back() {
    let node = node_with_spares(4, &["counter"]).await;
    for _ in 0..4 {
        node.spawn("counter", unit(), SpawnOptions::default())
            .await
            .unwrap();
    }
    assert!(eventually(async || node.spare_instances().ready > 0).await);
    // Halved every half second no spawn comes: none after a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while node.spare_instances().ready > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            node.spare_instances()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hibernated_process_wakes_in_a_spare_with_its_state() {
    let node = node_with_spares(4, &["counter"]).await;
    let pid = node
        .spawn("counter", unit(), SpawnOptions::default())
        .await
        .unwrap();
    for _ in 0..3 {
        let _: u64 = node.call(pid, &"inc").await.unwrap();
    }
    let count: u64 = node.call(pid, &"hibernate").await.unwrap();
    assert_eq!(count, 3);
    assert!(eventually(async || node.is_hibernating(pid)).await);
    assert!(eventually(async || node.spare_instances().ready > 0).await);
    let taken = node.spare_instances().taken;
    let count: u64 = node.call(pid, &"get").await.unwrap();
    assert_eq!(count, 3, "the state came back");
    assert_eq!(
        node.spare_instances().taken,
        taken + 1,
        "it woke in a spare"
    );
    let count: u64 = node.call(pid, &"inc").await.unwrap();
    assert_eq!(count, 4);
}
