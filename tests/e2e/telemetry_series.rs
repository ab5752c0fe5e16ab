//! Guests' metric series: each module has a share of the node's budget, so one module
//! inventing series (a label with a request id in it) cannot stop the others making theirs;
//! the share is the module's, whatever its processes and versions. The recorder is the one
//! [`crate::telemetry`] installs for this test binary, whose node-wide budget is larger than
//! all its tests spend together: each test here uses modules of its own and spends one
//! module's share (500).

use otter::telemetry::SeriesLimits;
use otter::{ExitReason, Node, SpawnOptions, UpgradeOptions};
use serde_json::{Value, json};

use crate::support::wasm;
use crate::telemetry::{events_with, metrics, sample, value};

/// Start a telemetry probe of `module` registered as `name`.
async fn spawn_probe(node: &Node, module: &str, name: &str) {
    node.spawn(
        module,
        otter::from_json(&json!(null)),
        SpawnOptions::default().name(name),
    )
    .await
    .expect("start");
}

/// `otter_telemetry_dropped_total` for `module`'s series past its share (0 before any).
fn dropped_past_share(rendered: &str, module: &str) -> f64 {
    rendered
        .lines()
        .find(|l| {
            l.starts_with("otter_telemetry_dropped_total{")
                && l.contains("reason=\"module_series_limit\"")
                && l.contains(&format!("module=\"{module}\""))
        })
        .map_or(0.0, value)
}

/// The series `module`'s processes hold, as the node's figure says.
fn held(rendered: &str, module: &str) -> Option<f64> {
    rendered
        .lines()
        .find(|l| l.starts_with(&format!("otter_guest_series{{module=\"{module}\"}} ")))
        .map(value)
}

/// An event making one gauge, `<event>_g`.
fn gauge_event(event: &[&str], v: i64) -> Value {
    json!({"execute": {"event": event, "measurements": [["g", {"int": v}]], "metadata": []}})
}

#[tokio::test]
async fn a_module_inventing_series_does_not_stop_another_module_from_making_one() {
    let _ = metrics();
    let node = Node::new(Default::default()).expect("node");
    for module in ["tele_noisy", "tele_quiet"] {
        node.load_module(module, wasm("telemetry_probe"))
            .await
            .expect("load");
    }
    // Many processes of one module, each registered, so each makes series of its own (the
    // `name` label): together more than the node's whole budget.
    let per_process = 1_000;
    let noisy: Vec<String> = (0..3).map(|i| format!("tele_noisy_{i}")).collect();
    for name in &noisy {
        spawn_probe(&node, "tele_noisy", name).await;
        let r: String = node
            .call(
                name.as_str(),
                &json!({"hostile": {"many_events": per_process}}),
            )
            .await
            .unwrap();
        assert_eq!(r, "ok");
    }
    spawn_probe(&node, "tele_quiet", "tele_quiet_0").await;
    let _: Value = node
        .call("tele_quiet_0", &gauge_event(&["quiet", "orders"], 4))
        .await
        .unwrap();

    let rendered = metrics().render(&node);
    let quiet = sample(&rendered, "quiet_orders_g", "tele_quiet_0").unwrap_or_else(|| {
        panic!(
            "the other module's new series is kept:\n{}",
            drops(&rendered)
        )
    });
    assert_eq!(value(quiet), 4.0);
    let share = SeriesLimits::default().per_module();
    let made = rendered
        .lines()
        .filter(|l| l.starts_with("hostile_invented_") && l.contains("module=\"tele_noisy\""))
        .count();
    assert_eq!(made, share, "all its processes share one module's share");
    assert_eq!(
        dropped_past_share(&rendered, "tele_noisy"),
        (3 * per_process - share as u32) as f64,
        "the rest counted, with the module:\n{}",
        drops(&rendered)
    );
    assert_eq!(held(&rendered, "tele_noisy"), Some(share as f64));
    assert_eq!(held(&rendered, "tele_quiet"), Some(1.0));
    let reached: Vec<_> = events_with("module=tele_noisy")
        .into_iter()
        .filter(|e| e.text.contains("reached its share"))
        .collect();
    assert_eq!(reached.len(), 1, "warned of once: {reached:?}");
    assert_eq!(reached[0].level, tracing::Level::WARN);
    // Its series made go on recording.
    let _: Value = node
        .call(
            "tele_noisy_0",
            &gauge_event(&["hostile", "invented", "e0"], 5),
        )
        .await
        .unwrap();
    let rendered = metrics().render(&node);
    let kept = sample(&rendered, "hostile_invented_e0_g", "tele_noisy_0").unwrap();
    assert_eq!(value(kept), 5.0);
    for name in &noisy {
        let pong: String = node.call(name.as_str(), &json!("ping")).await.unwrap();
        assert_eq!(pong, "pong", "nothing fails the guest");
    }
    node.shutdown().await;
}

#[tokio::test]
async fn a_module_s_share_stays_spent_across_an_upgrade_and_after_its_processes_exit() {
    let _ = metrics();
    let node = Node::new(Default::default()).expect("node");
    node.load_module("tele_kept", wasm("telemetry_probe"))
        .await
        .expect("load");
    spawn_probe(&node, "tele_kept", "tele_kept_0").await;
    let share = SeriesLimits::default().per_module();
    let _: String = node
        .call("tele_kept_0", &json!({"hostile": {"many_events": share}}))
        .await
        .unwrap();
    assert_eq!(
        dropped_past_share(&metrics().render(&node), "tele_kept"),
        0.0
    );

    // The same code with a custom section appended: other bytes, the same vsn.
    let mut bytes = std::fs::read(wasm("telemetry_probe")).expect("telemetry_probe.wasm");
    bytes.extend_from_slice(&[0, 5, 4, b'p', b'a', b'd', b'!']);
    let opts = UpgradeOptions {
        force: true,
        ..Default::default()
    };
    node.upgrade_bytes("tele_kept", "v2.wasm".as_ref(), &bytes, opts)
        .await
        .expect("upgraded");
    let _: Value = node
        .call("tele_kept_0", &gauge_event(&["kept", "after_upgrade"], 1))
        .await
        .unwrap();
    let rendered = metrics().render(&node);
    assert!(
        !rendered.contains("kept_after_upgrade_g"),
        "{}",
        drops(&rendered)
    );
    assert_eq!(dropped_past_share(&rendered, "tele_kept"), 1.0);

    // Every process of the module exits: its series stay (a scrape still shows them), and
    // so does their count.
    node.stop("tele_kept_0", ExitReason::Normal, None)
        .await
        .unwrap();
    spawn_probe(&node, "tele_kept", "tele_kept_1").await;
    let _: Value = node
        .call("tele_kept_1", &gauge_event(&["kept", "after_exit"], 1))
        .await
        .unwrap();
    let rendered = metrics().render(&node);
    assert!(!rendered.contains("kept_after_exit_g"));
    assert_eq!(dropped_past_share(&rendered, "tele_kept"), 2.0);
    assert!(sample(&rendered, "hostile_invented_e0_g", "tele_kept_0").is_some());
    assert_eq!(held(&rendered, "tele_kept"), Some(share as f64));
    node.shutdown().await;
}

/// The drop counters of a scrape, for a failure's message.
fn drops(rendered: &str) -> String {
    rendered
        .lines()
        .filter(|l| l.contains("dropped") || l.starts_with("otter_guest_series"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn many_processes_with_the_longest_names_cannot_grow_a_module_past_its_share() {
    let _ = metrics();
    let node = Node::new(Default::default()).expect("node");
    node.load_module("tele_long", wasm("telemetry_probe"))
        .await
        .expect("load");
    // Each name (the `name` label) as long as a registered name may be: 255 bytes.
    let names: Vec<String> = (0..40)
        .map(|i| format!("{i:03}{}", "n".repeat(252)))
        .collect();
    for name in &names {
        spawn_probe(&node, "tele_long", name).await;
        let _: String = node
            .call(name.as_str(), &json!({"hostile": {"many_events": 20}}))
            .await
            .unwrap();
    }
    let rendered = metrics().render(&node);
    let share = SeriesLimits::default().per_module();
    let made = rendered
        .lines()
        .filter(|l| l.starts_with("hostile_invented_") && l.contains("module=\"tele_long\""))
        .count();
    assert_eq!(made, share, "{}", drops(&rendered));
    assert_eq!(held(&rendered, "tele_long"), Some(share as f64));
    assert_eq!(
        dropped_past_share(&rendered, "tele_long"),
        (40 * 20 - share) as f64
    );
    let last: String = node.call(names[39].as_str(), &json!("ping")).await.unwrap();
    assert_eq!(last, "pong");
    node.shutdown().await;
}

#[tokio::test]
async fn one_module_s_dropped_telemetry_does_not_hide_another_s_warning() {
    let _ = metrics();
    let node = Node::new(Default::default()).expect("node");
    for module in ["tele_drops_a", "tele_drops_b"] {
        node.load_module(module, wasm("telemetry_probe"))
            .await
            .expect("load");
    }
    spawn_probe(&node, "tele_drops_a", "tele_drops_a_0").await;
    spawn_probe(&node, "tele_drops_b", "tele_drops_b_0").await;
    let attack = json!({"hostile": "huge_segment"});
    for _ in 0..5 {
        let _: String = node.call("tele_drops_a_0", &attack).await.unwrap();
    }
    let _: String = node.call("tele_drops_b_0", &attack).await.unwrap();
    let warned = |module: &str| {
        events_with(&format!("module={module}"))
            .into_iter()
            .filter(|e| e.level == tracing::Level::WARN && e.text.contains("telemetry dropped"))
            .count()
    };
    assert_eq!(
        warned("tele_drops_a"),
        1,
        "a flood is warned of once a second"
    );
    assert_eq!(
        warned("tele_drops_b"),
        1,
        "the other module's drop is warned of too"
    );
    node.shutdown().await;
}
