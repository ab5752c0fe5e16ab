//! Databases granted in the manifest (`databases = [...]`) through `otter run`: the checks
//! at the grant's line, and OrderSink writing every accepted order before the node stops.

use std::time::Duration;

use crate::support::*;

/// An app running `order_sink` as `order_sink`, its module granted `grants`.
fn app_with(grants: &str) -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules.order_sink]
path = "{sink}"

[modules.order_sink.grants]
{grants}

[[children]]
name = "order_sink"
module = "order_sink"
args = {{ flush_ms = 60000 }}
"#,
        sink = guests().join("order_sink.wasm").display(),
    ));
    app
}

#[test]
fn otter_run_refuses_a_database_grant_it_cannot_use_at_its_line() {
    let app = app_with(r#"databases = [{ name = "orders", path = "nowhere/orders.db" }]"#);
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.toml:9: modules.order_sink.grants.databases[0].path: "),
        "{stderr}"
    );
    assert!(stderr.contains("its directory does not exist"), "{stderr}");
    let app = app_with(r#"databases = [{ name = "orders", path = "o.db", mode = "append" }]"#);
    let (_, stderr) = app.run_refused();
    assert!(
        stderr.contains("app.toml:9: modules.order_sink.grants.databases[0].mode: \"append\""),
        "{stderr}"
    );
    let app = app_with(
        r#"databases = [{ name = "orders", path = "a.db" }, { name = "orders", path = "b.db" }]"#,
    );
    let (_, stderr) = app.run_refused();
    assert!(
        stderr.contains("databases[1].name: \"orders\" granted twice"),
        "{stderr}"
    );
}

#[test]
fn a_sigterm_stops_order_sink_after_it_wrote_every_accepted_order() {
    let app = app_with(r#"databases = [{ name = "orders", path = "orders.db" }]"#);
    let mut running = app.spawn().ready();
    for seq in 1..=3 {
        let order = format!(r#"{{"submit":{{"client":7,"seq":{seq},"item":"차","amount":350}}}}"#);
        assert_eq!(app.ok(&["call", "order_sink", &order]).trim(), r#""ok""#);
    }
    running.signal(rustix::process::Signal::TERM);
    let status = running
        .wait(Duration::from_secs(20))
        .expect("otter run exits");
    assert!(status.success(), "{status}; {}", app.stderr());
    let db = rusqlite::Connection::open(app.path("orders.db")).unwrap();
    let rows: Vec<(i64, String)> = db
        .prepare("SELECT seq, item FROM orders WHERE client = 7 ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, [(1, "차".into()), (2, "차".into()), (3, "차".into())]);
}
