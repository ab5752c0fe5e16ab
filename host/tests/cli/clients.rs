//! The client commands: call, cast, send, stop, whereis, ps, and their errors.

use serde_json::{Value, json};

use crate::support::*;

#[test]
fn call_prints_each_reply_as_json_and_kv_round_trips() {
    let app = App::echo_kv();
    // A socket file left by a node that died is replaced.
    std::fs::create_dir(app.path("ctl")).unwrap();
    drop(std::os::unix::net::UnixListener::bind(app.socket()).unwrap());
    let _node = app.spawn().ready();

    assert_eq!(app.stdout().trim(), app.socket().display().to_string());
    assert_eq!(app.ok(&["call", "echo", r#""ping""#]), "{\"pong\":1}\n");
    assert_eq!(app.ok(&["call", "echo", r#""ping""#]), "{\"pong\":2}\n");

    assert_eq!(
        app.ok(&["call", "kv", r#"{"put":["a","1"]}"#]).trim(),
        r#""ok""#
    );
    assert_eq!(app.ok(&["call", "kv", r#"{"get":"a"}"#]).trim(), r#""1""#);
    assert_eq!(app.ok(&["call", "kv", r#"{"get":"b"}"#]).trim(), "null");
    app.ok(&["cast", "kv", r#"{"put":["b","2"]}"#]);
    assert_eq!(app.ok(&["call", "kv", r#"{"get":"b"}"#]).trim(), r#""2""#);
    let state: Value = serde_json::from_str(&app.ok(&["state", "kv"])).unwrap();
    assert_eq!(state, json!({"data": {"a": "1", "b": "2"}, "writes": 2}));

    // A pid works where a name does.
    let pid = app.ok(&["whereis", "echo"]).trim().to_owned();
    assert_eq!(
        app.ok(&["call", &pid, r#""count""#]).trim(),
        r#"{"count":2}"#
    );
}

#[test]
fn an_unknown_name_exits_1_with_noproc() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    for args in [
        &["call", "nobody", r#""ping""#][..],
        &["cast", "nobody", "1"],
        &["send", "nobody", "1"],
        &["state", "nobody"],
        &["stop", "nobody"],
        &["whereis", "nobody"],
        &["call", "999", r#""ping""#],
    ] {
        let out = app.otter(args);
        assert_eq!(out.status.code(), Some(1), "otter {args:?}");
        assert!(
            stderr_of(&out).contains("noproc"),
            "otter {args:?}: {}",
            stderr_of(&out)
        );
        assert!(out.stdout.is_empty());
    }
    // A request the server cannot decode is its own error, and the server lives on.
    let out = app.otter(&["call", "echo", r#""pong""#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("badarg"), "{}", stderr_of(&out));
    // So is input that is not JSON, before anything is sent.
    let out = app.otter(&["call", "echo", "ping"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("not JSON"), "{}", stderr_of(&out));
    assert_eq!(
        app.ok(&["call", "echo", r#""ping""#]).trim(),
        r#"{"pong":1}"#
    );
}

#[test]
fn ps_lists_both_children_and_stop_restarts_a_permanent_one() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    let ps: Value = serde_json::from_str(&app.ok(&["ps", "--json"])).unwrap();
    let rows = ps.as_array().expect("a list");
    let names: Vec<&str> = rows.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["echo", "kv"]);
    assert_eq!(rows[1]["module"], "kv");
    assert_eq!(rows[1]["vsn"], "1");
    assert!(rows[0]["pid"].as_u64().unwrap() < rows[1]["pid"].as_u64().unwrap());

    let table = app.ok(&["ps"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("PID"));
    assert_eq!(lines.count(), 2, "{table}");

    // kv is a permanent child of the root supervisor: stopped, it is restarted (OTP).
    let old = app.ok(&["whereis", "kv"]).trim().to_owned();
    app.ok(&["stop", "kv"]);
    let new = wait_for_new_pid(&app, "kv", &old);
    assert_ne!(new, old);
    let ps: Value = serde_json::from_str(&app.ok(&["ps", "--json"])).unwrap();
    let rows = ps.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["echo", "kv"]);
    // The supervisor counted the restart; echo was never restarted.
    assert_eq!(rows[0]["restarts"], 0);
    assert_eq!(rows[1]["restarts"], 1);
    assert_eq!(rows[1]["pid"].as_u64().unwrap().to_string(), new);
    for row in rows {
        for field in ["queue_len", "memory", "uptime_ms"] {
            assert!(row[field].is_u64(), "{field} in {row}");
        }
    }
    let table = app.ok(&["ps"]);
    let header = table.lines().next().unwrap();
    for column in [
        "PID", "NAME", "MODULE", "VSN", "MSGQ", "REJECTED", "DROPPED", "MEMORY", "RESTARTS",
        "UPTIME",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let kv_row = table
        .lines()
        .find(|l| l.contains(" kv "))
        .expect("a kv row");
    let cells: Vec<&str> = kv_row.split_whitespace().collect();
    // An unbounded mailbox refuses and drops nothing: `-`.
    assert_eq!(cells[5..7], ["-", "-"], "{table}");
    assert_eq!(cells[8], "1", "{table}");
    let tree: Value = serde_json::from_str(&app.ok(&["tree", "--json"])).unwrap();
    assert_eq!(tree["children"][1]["restarts"], 1);
}

#[test]
fn suspend_queues_casts_and_times_out_calls_until_resume() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    app.ok(&["suspend", "kv"]);
    app.ok(&["cast", "kv", r#"{"put":["a","1"]}"#]);
    let out = app.otter(&["call", "kv", r#"{"get":"a"}"#, "--timeout", "300"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("timeout"), "{}", stderr_of(&out));
    // Its state is still read while suspended: the cast has not been handled.
    let state: Value = serde_json::from_str(&app.ok(&["state", "kv"])).unwrap();
    assert_eq!(state["writes"], json!(0));
    app.ok(&["resume", "kv"]);
    assert_eq!(app.ok(&["call", "kv", r#"{"get":"a"}"#]).trim(), r#""1""#);
    let out = app.otter(&["suspend", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("noproc"), "{}", stderr_of(&out));
}

#[test]
fn state_set_replaces_the_state_and_a_state_that_does_not_decode_is_refused() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    app.ok(&["call", "kv", r#"{"put":["a","1"]}"#]);
    let new = json!({"data": {"b": "2"}, "writes": 7});
    let printed: Value =
        serde_json::from_str(&app.ok(&["state", "kv", "--set", &new.to_string()])).unwrap();
    assert_eq!(printed, new);
    assert_eq!(app.ok(&["call", "kv", r#"{"get":"b"}"#]).trim(), r#""2""#);
    assert_eq!(app.ok(&["call", "kv", r#""writes""#]).trim(), "7");

    for (bad, error) in [
        ("42", "badarg: the process refused the state"),
        (r#"{"data": []}"#, "badarg: the process refused the state"),
        ("{nope", "not JSON"),
    ] {
        let out = app.otter(&["state", "kv", "--set", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            stderr_of(&out).contains(error),
            "{bad}: {}",
            stderr_of(&out)
        );
    }
    let state: Value = serde_json::from_str(&app.ok(&["state", "kv"])).unwrap();
    assert_eq!(state, new, "the refused states left it as it was");
    let out = app.otter(&["state", "nobody", "--set", "{}"]);
    assert!(stderr_of(&out).contains("noproc"), "{}", stderr_of(&out));
}
