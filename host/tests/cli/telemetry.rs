//! `[telemetry] prometheus`: `otter run` serves `/metrics` where the manifest says, with the
//! guests' span histograms and the host's per-process figures; a bad address is a manifest
//! error; guests inventing metric names cannot grow the series past the manifest's bounds,
//! nor one module take another's share; the OrderSink
//! example serves its flush span's duration and its mailbox length.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

/// A port free now (the test binds it in the manifest right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` on `addr`: the status line and the body.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

/// The app: the telemetry probe registered as `probe_server`, metrics on `port`.
fn app(port: u16) -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[telemetry]
prometheus = "127.0.0.1:{port}"

[modules]
telemetry_probe = "{probe}"

[[children]]
name = "probe_server"
module = "telemetry_probe"
"#,
        probe = guests().join("telemetry_probe.wasm").display(),
    ));
    app
}

#[test]
fn metrics_show_a_guest_span_histogram_and_a_registered_server_mailbox_length() {
    let port = free_port();
    let app = app(port);
    let _running = app.spawn().ready();
    let span = r#"{"span": {"event": ["orders", "flush"], "sleep_ms": 5, "fail": false}}"#;
    assert_eq!(app.ok(&["call", "probe_server", span]).trim(), "\"ok\"");

    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (status, body) = get(addr, "/metrics").expect("scrape /metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let line = |prefix: &str| {
        body.lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_owned)
    };
    let count = line("orders_flush_duration_seconds_count{")
        .unwrap_or_else(|| panic!("the span's duration histogram:\n{body}"));
    assert!(count.contains("name=\"probe_server\""), "{count}");
    assert!(count.ends_with(" 1"), "{count}");
    let mailbox = line("otter_mailbox_length{name=\"probe_server\"")
        .unwrap_or_else(|| panic!("the registered server's mailbox length:\n{body}"));
    assert!(mailbox.ends_with(" 0"), "{mailbox}");
    assert!(line("otter_processes ").is_some(), "{body}");

    let (status, _) = get(addr, "/elsewhere").expect("another path");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn a_bad_prometheus_address_is_a_manifest_error_at_its_line() {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[telemetry]
prometheus = "localhost"

[modules]
telemetry_probe = "{probe}"
"#,
        probe = guests().join("telemetry_probe.wasm").display(),
    ));
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains("app.toml:6: telemetry.prometheus: \"localhost\" is not an address"),
        "{stderr}"
    );
}

#[test]
fn an_address_in_use_stops_the_run_naming_the_field() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let app = app(taken.local_addr().unwrap().port());
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains("telemetry.prometheus: cannot listen on 127.0.0.1:"),
        "{stderr}"
    );
}

/// The probe loaded as the modules `a`, `b`, `c` and `d`, one server each (`probe_a`...),
/// metrics on `port`, guests limited to 100 series and 30 per module.
fn four_module_app(port: u16) -> App {
    let probe = guests().join("telemetry_probe.wasm");
    let mut manifest = format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[telemetry]
prometheus = "127.0.0.1:{port}"
max_series = 100
max_series_per_module = 30

[modules]
"#
    );
    for m in ["a", "b", "c", "d"] {
        manifest.push_str(&format!("{m} = \"{}\"\n", probe.display()));
    }
    for m in ["a", "b", "c", "d"] {
        manifest.push_str(&format!(
            "\n[[children]]\nname = \"probe_{m}\"\nmodule = \"{m}\"\n"
        ));
    }
    let app = App::new();
    app.write_manifest(&manifest);
    app
}

#[test]
fn guests_inventing_metric_names_are_bounded_per_module_and_node_wide_as_the_manifest_says() {
    let port = free_port();
    let app = four_module_app(port);
    let _running = app.spawn().ready();
    let started = Instant::now();
    for m in ["a", "b", "c", "d"] {
        app.ok(&[
            "call",
            &format!("probe_{m}"),
            r#"{"hostile": {"many_events": 50}}"#,
        ]);
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let (_, body) = get(([127, 0, 0, 1], port).into(), "/metrics").expect("scrape");
    let drops = || {
        body.lines()
            .filter(|l| l.contains("dropped") || l.starts_with("otter_guest_series"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let invented = |module: &str| {
        body.lines()
            .filter(|l| {
                l.starts_with("hostile_invented_") && l.contains(&format!("module=\"{module}\""))
            })
            .count()
    };
    // a, b and c take their share of 30 each; d finds the node's 100 nearly spent.
    assert_eq!(
        ["a", "b", "c", "d"].map(invented),
        [30, 30, 30, 10],
        "{}",
        drops()
    );
    for m in ["a", "b", "c"] {
        assert!(
            body.contains(&format!(
                "otter_telemetry_dropped_total{{reason=\"module_series_limit\",module=\"{m}\"}} 20"
            )),
            "{m}'s drops counted with its name:\n{}",
            drops()
        );
    }
    assert!(
        body.contains("otter_telemetry_dropped_total{reason=\"series_limit\"} 40"),
        "d's counted as the node's:\n{}",
        drops()
    );
    assert!(
        body.contains("otter_guest_series{module=\"d\"} 10"),
        "{}",
        drops()
    );
    assert_eq!(app.ok(&["call", "probe_a", "\"ping\""]).trim(), "\"pong\"");
}

#[test]
fn a_module_share_above_the_node_series_limit_is_a_manifest_error_at_its_line() {
    let app = App::new();
    app.write_manifest(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[telemetry]
max_series = 100
max_series_per_module = 101
"#,
    );
    let (status, stderr) = app.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains(
            "app.toml:7: telemetry.max_series_per_module: at most telemetry.max_series (100)"
        ),
        "{stderr}"
    );
}

#[test]
fn the_metrics_endpoint_refuses_an_oversized_request_and_outlasts_an_idle_client() {
    let port = free_port();
    let app = app(port);
    let _running = app.spawn().ready();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // A client that connects and says nothing holds one connection, not the endpoint.
    let _idle = TcpStream::connect(addr).expect("connect");
    let mut big = TcpStream::connect(addr).expect("connect");
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n",
        "a".repeat(64 << 10)
    );
    let _ = big.write_all(head.as_bytes());
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 431 "),
        "an oversized request head is refused: {answer:?}"
    );
    let (status, body) = get(addr, "/metrics").expect("scrape");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("otter_processes "), "{body}");
    let mut post = TcpStream::connect(addr).expect("connect");
    write!(post, "DELETE /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    post.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer:?}");
}

#[test]
fn the_order_sink_example_serves_its_flush_duration_and_mailbox_length() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/order_sink.toml"),
    )
    .expect("examples/order_sink.toml");
    let port = free_port();
    let replace = |text: String, from: &str, to: &str| {
        assert_eq!(text.matches(from).count(), 1, "{from:?} in the example");
        text.replace(from, to)
    };
    let manifest = replace(
        example,
        "\"../guests/target/wasm32-unknown-unknown/release/order_sink.wasm\"",
        &format!("\"{}\"", guests().join("order_sink.wasm").display()),
    );
    let manifest = replace(
        manifest,
        "prometheus = \"127.0.0.1:9568\"",
        &format!("prometheus = \"127.0.0.1:{port}\""),
    );
    let manifest = replace(
        manifest,
        "[node]\nname = \"order_sink\"\n",
        "[node]\nname = \"order_sink\"\ncontrol = \"ctl/t.sock\"\n",
    );
    let app = App::new();
    app.write_manifest(&manifest);
    std::fs::create_dir(app.path("data")).unwrap();
    let _running = app.spawn().ready();
    for seq in 1..=3 {
        let order = format!(r#"{{"submit":{{"client":1,"seq":{seq},"item":"tea","amount":350}}}}"#);
        assert_eq!(app.ok(&["call", "order_sink", &order]).trim(), r#""ok""#);
    }

    // The example flushes every 200 ms; its span then shows in the scrape.
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get(addr, "/metrics").expect("scrape /metrics");
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        if body.contains("orders_flush_duration_seconds_count{") || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let line = |prefix: &str| body.lines().find(|l| l.starts_with(prefix));
    let flushes = line("orders_flush_duration_seconds_count{")
        .unwrap_or_else(|| panic!("the flush span's duration histogram:\n{body}"));
    assert!(flushes.contains("name=\"order_sink\""), "{flushes}");
    assert!(!flushes.ends_with(" 0"), "{flushes}");
    let mailbox = line("otter_mailbox_length{name=\"order_sink\"")
        .unwrap_or_else(|| panic!("OrderSink's mailbox length:\n{body}"));
    assert!(mailbox.ends_with(" 0"), "{mailbox}");
}

#[test]
fn a_reload_changing_the_series_limits_says_they_apply_at_the_next_start() {
    use crate::reload::{KV_AND_P, app_with, release};
    let next = release("2", "kv", "probe", KV_AND_P) + "\n[telemetry]\nmax_series = 10\n";
    let (app, next) = app_with(&next);
    let _running = app.spawn().ready();
    let out = app.ok(&["reload", "--dry-run", &next]);
    assert!(
        out.contains("note: [telemetry] settings change: at the next start"),
        "{out}"
    );
}
