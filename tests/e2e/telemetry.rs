//! Guest telemetry (Erlang's `:telemetry`): a span's events reach the host's `tracing`
//! output and its duration a histogram; the import survives hostile input. The Prometheus
//! recorder is installed once for this test binary; each test uses its own event and
//! process names.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use otter::telemetry::Metrics;
use otter::{Node, SpawnOptions};
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

use crate::support::wasm;

/// One captured `otter::telemetry` event: its level, message and fields, as text.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) level: tracing::Level,
    pub(crate) text: String,
}

struct Capture;

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "otter::telemetry" {
            return;
        }
        struct Text(String);
        impl Visit for Text {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                self.0.push_str(&format!(" {}={value}", field.name()));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        captured().lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            text: text.0,
        });
    }
}

fn captured() -> &'static Mutex<Vec<Captured>> {
    static EVENTS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());
    &EVENTS
}

/// The recorder and the capturing subscriber, installed once.
pub(crate) fn metrics() -> Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let subscriber = Registry::default().with(Capture.with_filter(
            tracing_subscriber::filter::filter_fn(|m| m.target() == "otter::telemetry"),
        ));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        let metrics = Metrics::install().expect("the only recorder");
        // Every test of this binary shares the recorder: a node-wide budget past what they
        // spend together, so that none depends on which ran before it; each module keeps
        // the default share.
        let share = otter::telemetry::SeriesLimits::default().per_module();
        let mut limits = otter::telemetry::SeriesLimits::default();
        limits.max_series(100_000).max_series_per_module(share);
        metrics.set_series_limits(limits);
        metrics
    })
    .clone()
}

/// A node with the telemetry probe running under `name`.
async fn probe(name: &str) -> Node {
    let _ = metrics();
    let node = Node::new(Default::default()).expect("node");
    node.load_module("telemetry_probe", wasm("telemetry_probe"))
        .await
        .expect("load");
    node.spawn(
        "telemetry_probe",
        otter::from_json(&json!(null)),
        SpawnOptions::default().name(name),
    )
    .await
    .expect("start");
    node
}

/// The captured events that mention `needle`.
pub(crate) fn events_with(needle: &str) -> Vec<Captured> {
    captured()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.text.contains(needle))
        .cloned()
        .collect()
}

/// The line of `rendered` for the sample `metric` labelled `name="<name>"`.
pub(crate) fn sample<'a>(rendered: &'a str, metric: &str, name: &str) -> Option<&'a str> {
    rendered
        .lines()
        .find(|l| l.starts_with(&format!("{metric}{{")) && l.contains(&format!("name=\"{name}\"")))
}

pub(crate) fn value(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_span_emits_start_and_stop_events_and_a_duration_histogram() {
    let node = probe("tele_span_ok").await;
    let r: String = node
        .call(
            "tele_span_ok",
            &json!({"span": {"event": ["shop", "checkout"], "sleep_ms": 20, "fail": false}}),
        )
        .await
        .unwrap();
    assert_eq!(r, "ok");

    let start = events_with("shop.checkout.start");
    assert_eq!(start.len(), 1, "one start event: {start:?}");
    assert!(start[0].text.contains("monotonic_time="), "{start:?}");
    assert!(start[0].text.contains("system_time="), "{start:?}");
    assert!(
        start[0].text.contains("table=\"orders\""),
        "metadata: {start:?}"
    );
    assert!(start[0].text.contains("name=tele_span_ok"), "{start:?}");
    assert!(
        start[0].text.contains("module=telemetry_probe"),
        "{start:?}"
    );
    let stop = events_with("shop.checkout.stop");
    assert_eq!(stop.len(), 1, "one stop event: {stop:?}");
    let duration: u64 = stop[0]
        .text
        .split("duration=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("a duration");
    assert!(
        duration >= 20_000_000,
        "the work's 20 ms are in it: {duration} ns"
    );
    assert!(events_with("shop.checkout.exception").is_empty());

    let rendered = metrics().render(&node);
    let count = sample(
        &rendered,
        "shop_checkout_duration_seconds_count",
        "tele_span_ok",
    )
    .unwrap_or_else(|| panic!("a duration histogram:\n{rendered}"));
    assert_eq!(value(count), 1.0, "{count}");
    assert!(count.contains("module=\"telemetry_probe\""), "{count}");
    let sum = sample(
        &rendered,
        "shop_checkout_duration_seconds_sum",
        "tele_span_ok",
    )
    .unwrap();
    assert!(value(sum) >= 0.02, "in seconds: {sum}");
    assert!(
        sample(
            &rendered,
            "shop_checkout_duration_seconds_bucket",
            "tele_span_ok"
        )
        .is_some(),
        "a histogram with buckets, not a summary:\n{rendered}"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_span_whose_work_fails_emits_an_exception_event_and_no_stop() {
    let node = probe("tele_span_fail").await;
    let r: String = node
        .call(
            "tele_span_fail",
            &json!({"span": {"event": ["shop", "refund"], "sleep_ms": 1, "fail": true}}),
        )
        .await
        .unwrap();
    assert_eq!(r, "failed: disk full", "the span returns the work's result");

    assert_eq!(events_with("shop.refund.start").len(), 1);
    assert!(
        events_with("shop.refund.stop").is_empty(),
        "no stop for a failure"
    );
    let exception = events_with("shop.refund.exception");
    assert_eq!(exception.len(), 1, "{exception:?}");
    let e = &exception[0];
    assert_eq!(e.level, tracing::Level::WARN, "a failure is a warning");
    for part in ["duration=", "kind=\"error\"", "reason=\"disk full\""] {
        assert!(e.text.contains(part), "{part} in {e:?}");
    }

    let rendered = metrics().render(&node);
    let exceptions = sample(&rendered, "shop_refund_exceptions_total", "tele_span_fail")
        .unwrap_or_else(|| panic!("an exception counter:\n{rendered}"));
    assert_eq!(value(exceptions), 1.0);
    assert!(
        sample(
            &rendered,
            "shop_refund_duration_seconds_count",
            "tele_span_fail"
        )
        .is_none(),
        "a failed span is not a duration sample"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_scrape_shows_a_bounded_number_of_registered_processes_and_counts_the_rest() {
    let _ = metrics();
    let node = Node::new(Default::default()).expect("node");
    let max = otter::telemetry::MAX_REGISTERED_SHOWN;
    let extra = 3_000;
    let all = max + extra;
    // Registered out of name order (a stride prime to their number), so the shown ones are
    // chosen by name, not by when they came.
    let processes: Vec<_> = (0..all)
        .map(|i| {
            let p = node.embedded_process();
            p.register(&format!("many_{:05}", i * 7919 % all)).unwrap();
            p
        })
        .collect();
    // Rendered off the async workers, as a server would.
    let rendered = tokio::task::spawn_blocking({
        let node = node.clone();
        move || metrics().render(&node)
    })
    .await
    .unwrap();
    for family in [
        "otter_mailbox_length",
        "otter_process_memory_bytes",
        "otter_process_restarts",
    ] {
        let rows = rendered
            .lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .count();
        assert_eq!(rows, max, "{family}");
    }
    assert!(sample(&rendered, "otter_mailbox_length", "many_00000").is_some());
    let last_shown = format!("many_{:05}", max - 1);
    assert!(sample(&rendered, "otter_mailbox_length", &last_shown).is_some());
    assert!(sample(&rendered, "otter_mailbox_length", &format!("many_{max:05}")).is_none());
    assert!(
        rendered.contains(&format!("\notter_registered_processes_omitted {extra}\n")),
        "the rest counted"
    );
    drop(processes);
    node.shutdown().await;
}

#[tokio::test]
async fn the_host_figures_show_a_registered_process_mailbox_length_and_callback_durations() {
    let node = probe("tele_figures").await;
    let _: String = node.call("tele_figures", &json!("ping")).await.unwrap();
    node.suspend("tele_figures").unwrap();
    for _ in 0..3 {
        node.send("tele_figures", otter::from_json(&json!("queued")))
            .unwrap();
    }
    let rendered = metrics().render(&node);
    let queued = sample(&rendered, "otter_mailbox_length", "tele_figures")
        .unwrap_or_else(|| panic!("its mailbox length:\n{rendered}"));
    assert_eq!(value(queued), 3.0, "{queued}");
    assert!(
        rendered
            .lines()
            .any(|l| l.starts_with("otter_callback_duration_seconds_count{")
                && l.contains("module=\"telemetry_probe\"")
                && l.contains("callback=\"handle_call\"")),
        "callback durations by module:\n{rendered}"
    );
    assert!(rendered.contains("\notter_processes "), "{rendered}");
    assert!(rendered.contains("\notter_guest_files 0\n"), "{rendered}");
    assert!(
        rendered.contains(&format!(
            "\notter_guest_files_max {}\n",
            node.max_guest_files()
        )),
        "{rendered}"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_exception_events_is_warned_of_at_most_once_a_second_and_the_rest_counted() {
    let _ = metrics();
    let node = Node::new(Default::default()).expect("node");
    // A module of its own: the warnings are throttled per module.
    node.load_module("tele_flooder", wasm("telemetry_probe"))
        .await
        .expect("load");
    let p = node
        .spawn(
            "tele_flooder",
            otter::from_json(&json!(null)),
            SpawnOptions::default(),
        )
        .await
        .expect("start");
    let req = json!({"execute": {
        "event": ["flood", "exception"],
        "measurements": [],
        "metadata": [["reason", "x".repeat(200)]],
    }});
    let events = 200;
    for _ in 0..events {
        let _: Value = node.call(p, &req).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _: Value = node.call(p, &req).await.unwrap();
    let warned: Vec<Captured> = events_with("flood.exception")
        .into_iter()
        .filter(|e| e.level == tracing::Level::WARN)
        .collect();
    assert!(
        (2..10).contains(&warned.len()),
        "{} warnings for {} events",
        warned.len(),
        events + 1
    );
    let suppressed: u64 = warned
        .iter()
        .filter_map(|e| e.text.split(" suppressed=").nth(1))
        .map(|v| v.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        suppressed + warned.len() as u64,
        events + 1,
        "each event warned of or counted in the next warning: {warned:?}"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_hostile_guest_cannot_fail_or_flood_the_telemetry_import() {
    let node = probe("tele_hostile").await;
    for attack in [
        "huge_segment",
        "many_segments",
        "many_entries",
        "huge_value",
        "not_finite",
    ] {
        let r: String = tokio::time::timeout(
            Duration::from_secs(5),
            node.call("tele_hostile", &json!({"hostile": attack})),
        )
        .await
        .expect("answered in time")
        .unwrap_or_else(|e| panic!("{attack}: {e:?}"));
        assert_eq!(r, "ok", "{attack}");
    }
    let pong: String = node.call("tele_hostile", &json!("ping")).await.unwrap();
    assert_eq!(pong, "pong", "the guest goes on");
    // Posing as a host figure, and one name as two kinds of metric.
    for (event, measurement) in [
        (json!(["otter", "mailbox"]), json!(["length", {"int": 99}])),
        (json!(["clash", "x"]), json!(["duration", {"int": 1000}])),
        (
            json!(["clash", "x", "duration"]),
            json!(["seconds", {"int": 1}]),
        ),
    ] {
        let req =
            json!({"execute": {"event": event, "measurements": [measurement], "metadata": []}});
        let _: Value = node.call("tele_hostile", &req).await.unwrap();
    }

    let rendered = metrics().render(&node);
    for reason in [
        "segment_size",
        "segments",
        "entries",
        "entry_size",
        "not_finite",
    ] {
        assert!(
            rendered.lines().any(|l| l.starts_with(&format!(
                "otter_telemetry_dropped_total{{reason=\"{reason}\"}}"
            ))),
            "{reason} counted:\n{rendered}"
        );
    }
    assert!(
        sample(&rendered, "guest_otter_mailbox_length", "tele_hostile").is_some(),
        "a guest's otter_ name is moved aside:\n{rendered}"
    );
    assert!(
        sample(&rendered, "otter_mailbox_length", "tele_hostile").is_some_and(|l| value(l) == 0.0),
        "the host's figure stands"
    );
    let types = rendered
        .lines()
        .filter(|l| l.starts_with("# TYPE clash_x_duration_seconds "))
        .count();
    assert_eq!(
        types, 1,
        "one kind per name, so the scrape stays valid:\n{rendered}"
    );
    assert!(rendered.contains("otter_telemetry_dropped_total{reason=\"name_taken\"}"));
    let good = sample(&rendered, "hostile_numbers_good", "tele_hostile")
        .unwrap_or_else(|| panic!("the finite measurement is kept:\n{rendered}"));
    assert_eq!(value(good), 7.0);
    for dropped in [
        "hostile_numbers_nan",
        "hostile_numbers_inf",
        "hostile_value",
        "hostile_entries",
    ] {
        assert!(
            !rendered.contains(dropped),
            "{dropped} is dropped:\n{rendered}"
        );
    }
    let events = events_with("hostile.");
    assert!(
        events.iter().all(|e| e.text.len() < 4096),
        "no event line carries the attack's size"
    );
    node.shutdown().await;
}

/// A sanity check on the capture itself: a plain event with a counter and a gauge.
#[tokio::test]
async fn execute_measurements_become_counters_and_gauges_by_name() {
    let node = probe("tele_execute").await;
    let req = json!({"execute": {
        "event": ["shop", "queue"],
        "measurements": [["submitted_total", {"int": 5}], ["depth", {"float": 2.5}]],
        "metadata": [["shard", "1"]]
    }});
    for _ in 0..2 {
        let _: Value = node.call("tele_execute", &req).await.unwrap();
    }
    let rendered = metrics().render(&node);
    let counter = sample(&rendered, "shop_queue_submitted_total", "tele_execute").unwrap();
    assert_eq!(value(counter), 10.0, "a counter adds up: {counter}");
    let gauge = sample(&rendered, "shop_queue_depth", "tele_execute").unwrap();
    assert_eq!(value(gauge), 2.5, "a gauge keeps the last value: {gauge}");
    assert!(!rendered.contains("pid="), "never labelled by pid");
    node.shutdown().await;
}
