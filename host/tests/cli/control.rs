//! The control socket against clients that misbehave: raw Unix-socket clients sending
//! endless lines, bytes that are not UTF-8, unknown fields, and more idle connections than
//! the node serves at once.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// echo and a probe, with `node_extra` added to `[node]`.
fn app_with(node_extra: &str) -> App {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"
{node_extra}

[modules]
echo = "{echo}"
probe = "{probe}"

[[children]]
name = "echo"
module = "echo"

[[children]]
name = "probe"
module = "probe"
args = {{}}
"#,
        echo = guests().join("echo.wasm").display(),
        probe = guests().join("probe.wasm").display(),
    ));
    app
}

fn connect(app: &App) -> UnixStream {
    let stream = UnixStream::connect(app.socket()).expect("connect to the control socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// The next answer line on `reader`, as JSON.
fn answer(reader: &mut impl BufRead) -> Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("an answer line");
    assert!(line.ends_with('\n'), "a whole answer line: {line:?}");
    serde_json::from_str(&line).expect("the answer is JSON")
}

/// True once the node has closed `stream` (after any answer already read). A node that
/// closes with bytes of ours unread resets the connection.
fn closed(stream: &mut UnixStream) -> bool {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => rest.is_empty(),
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in {status}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn control_socket_refuses_a_line_over_the_limit_without_buffering_it() {
    let app = app_with("");
    let node = app.spawn().ready();
    let before = status_kib(node.pid(), "VmRSS:");

    // An endless line: the node answers and closes long before 256 MiB are sent.
    let mut stream = connect(&app);
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 256 << 20 {
        match stream.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                break;
            }
            Err(e) => panic!("writing the endless line: {e}"),
        }
    }
    assert!(sent < 256 << 20, "the node kept reading an endless line");
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let refused = answer(&mut reader);
    assert_eq!(refused["error"]["kind"], "badrequest", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("1048576"), "names the limit: {message}");
    assert!(closed(&mut stream));

    let peak = status_kib(node.pid(), "VmHWM:");
    eprintln!("node RSS before: {before} KiB; peak after {sent} bytes sent: {peak} KiB");
    assert!(
        peak < before + 32 * 1024,
        "the node's peak RSS went from {before} KiB to {peak} KiB"
    );
    // Everyone else is still served.
    assert!(app.ok(&["ps"]).contains("echo"));
}

#[test]
fn control_socket_answers_a_non_utf8_line_with_badrequest_and_serves_the_next() {
    let app = app_with("");
    let _node = app.spawn().ready();
    let mut stream = connect(&app);
    stream.write_all(b"{\"op\":\"ps\xff\xfe\"}\n").unwrap();
    stream
        .write_all(b"{\"op\":\"whereis\",\"name\":\"echo\"}\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let refused = answer(&mut reader);
    assert_eq!(refused["error"]["kind"], "badrequest", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("UTF-8"),
        "{refused}"
    );
    let pid = answer(&mut reader);
    assert!(pid["ok"].is_u64(), "{pid}");
}

#[test]
fn control_socket_refuses_unknown_fields() {
    let app = app_with("");
    let _node = app.spawn().ready();
    let mut stream = connect(&app);
    for request in [
        r#"{"op":"ps","all":true}"#,
        r#"{"op":"tree","depth":1}"#,
        r#"{"op":"call","dest":"echo","msg":"ping","timout_ms":10}"#,
        r#"{"op":"whereis","name":"echo","extra":null}"#,
    ] {
        stream.write_all(format!("{request}\n").as_bytes()).unwrap();
        let refused = answer(&mut BufReader::new(&stream));
        assert_eq!(
            refused["error"]["kind"], "badrequest",
            "{request}: {refused}"
        );
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown field"),
            "{request}: {refused}"
        );
    }
    // Nothing was carried out: echo's counter is still at its first ping.
    assert_eq!(
        app.ok(&["call", "echo", r#""ping""#]).trim(),
        r#"{"pong":1}"#
    );
}

#[test]
fn idle_connections_over_the_cap_do_not_stop_ps() {
    let app = app_with("control_max_connections = 16");
    let _node = app.spawn().ready();
    // Three times the cap, each served once, then left idle or half-way through its next
    // request, all held open.
    let mut held = Vec::new();
    for i in 0..48 {
        let mut stream = connect(&app);
        stream
            .write_all(b"{\"op\":\"whereis\",\"name\":\"echo\"}\n")
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        assert!(answer(&mut reader)["ok"].is_u64());
        if i % 2 == 0 {
            stream.write_all(br#"{"op":"ps""#).unwrap();
        }
        held.push(reader);
    }
    let started = Instant::now();
    let ps = app.ok(&["ps"]);
    assert!(ps.contains("echo"), "{ps}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "ps took {:?}",
        started.elapsed()
    );
    // The longest-idle connections were closed to make room, each told why.
    let told = answer(&mut held[0]);
    assert_eq!(told["error"]["kind"], "busy", "{told}");
}

#[test]
fn a_connection_gets_busy_when_every_slot_is_answering() {
    let app = app_with("control_max_connections = 2");
    let _node = app.spawn().ready();
    // Two calls the probe answers only when released: both slots are busy answering.
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&app);
        stream
            .write_all(
                b"{\"op\":\"call\",\"dest\":\"probe\",\"msg\":\"defer\",\"timeout_ms\":20000}\n",
            )
            .unwrap();
        waiting.push(stream);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut third = connect(&app);
    let busy = answer(&mut BufReader::new(third.try_clone().unwrap()));
    assert_eq!(busy["error"]["kind"], "busy", "{busy}");
    assert!(closed(&mut third));
    // The CLI says so in one line.
    let out = app.otter(&["ps"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("busy"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_client_that_leaves_gives_its_slot_back_and_its_call_is_abandoned() {
    let app = app_with("control_max_connections = 2");
    let _node = app.spawn().ready();
    // Two calls the probe never answers, with timeouts far too long to wait for, whose
    // clients then leave: the slots they held serve the next clients.
    for _ in 0..2 {
        let mut stream = connect(&app);
        stream
            .write_all(
                b"{\"op\":\"call\",\"dest\":\"probe\",\"msg\":\"defer\",\"timeout_ms\":3600000}\n",
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(stream);
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = app.otter(&["ps"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn control_connections_idle_past_the_timeout_are_closed() {
    let app = app_with("control_idle_timeout_ms = 300");
    let _node = app.spawn().ready();
    let mut silent = connect(&app);
    let mut half = connect(&app);
    half.write_all(br#"{"op":"ps""#).unwrap();
    let started = Instant::now();
    for stream in [&mut silent, &mut half] {
        let told = answer(&mut BufReader::new(stream.try_clone().unwrap()));
        assert_eq!(told["error"]["kind"], "timeout", "{told}");
        assert!(closed(stream));
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    // A client that asks in time is answered.
    assert!(app.ok(&["ps"]).contains("echo"));
}

#[test]
fn thousands_of_connections_at_once_leave_the_node_answering_with_bounded_descriptors() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // This test holds the connections open itself: it needs the descriptors.
    let limit = getrlimit(Resource::Nofile);
    let want = limit.maximum.map_or(8192, |max| max.min(8192));
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: limit.maximum,
        },
    );
    let connections = (want as usize).saturating_sub(200).min(3000);
    let app = app_with("");
    let node = app.spawn().ready();
    let mut held = Vec::with_capacity(connections);
    for i in 0..connections {
        let mut stream = connect(&app);
        // Garbage, a request never finished, or nothing at all.
        let _ = match i % 3 {
            0 => stream.write_all(b"\x00\xffgarbage\n"),
            1 => stream.write_all(br#"{"op":"ps""#),
            _ => Ok(()),
        };
        held.push(stream);
    }
    // While the flood's tail still waits for slots a client may be told `busy`; within
    // seconds it is served, taking the slot of a connection that sends nothing useful.
    let started = Instant::now();
    let ps = loop {
        let out = app.otter(&["ps"]);
        if out.status.success() {
            break String::from_utf8(out.stdout).unwrap();
        }
        let stderr = stderr_of(&out);
        assert!(stderr.contains("busy"), "{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "ps still busy after {:?} behind {connections} connections",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ps.contains("echo"), "{ps}");
    // The node holds at most its connection cap (256) of them, plus its own descriptors.
    let open = std::fs::read_dir(format!("/proc/{}/fd", node.pid()))
        .unwrap()
        .count();
    assert!(
        open < 256 + 128,
        "the node holds {open} descriptors behind {connections} connections"
    );
    drop(held);
    assert_eq!(
        app.ok(&["call", "echo", r#""ping""#]).trim(),
        r#"{"pong":1}"#
    );
}
