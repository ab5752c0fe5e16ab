use serde_json::json;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use super::dispatch::{parse_reason, reply_json};
use super::*;
use crate::dest::Dest;
use crate::error::CallError;
use crate::exit::ExitReason;
use crate::term::from_json;

#[test]
fn requests_read_from_json() {
    let r: Request =
        serde_json::from_value(json!({"op":"call","dest":"echo","msg":"ping","timeout_ms":10}))
            .unwrap();
    assert_eq!(
        r,
        Request::Call {
            dest: "echo".into(),
            msg: json!("ping"),
            timeout_ms: Some(10)
        }
    );
    let r: Request = serde_json::from_value(json!({"op":"state","dest":12})).unwrap();
    assert_eq!(
        r,
        Request::State {
            dest: Dest::Pid(12),
            set: None
        }
    );
    let r: Request =
        serde_json::from_value(json!({"op":"start_child","supervisor":"Jobs"})).unwrap();
    assert_eq!(
        r,
        Request::StartChild {
            supervisor: "Jobs".into(),
            args: Value::Null
        }
    );
    let r: Request = serde_json::from_value(json!({"op":"ps"})).unwrap();
    assert_eq!(r, Request::Ps {});
    assert!(serde_json::from_value::<Request>(json!({"op":"call","dest":[1],"msg":1})).is_err());
    assert!(serde_json::from_value::<Request>(json!({"op":"nope"})).is_err());
    for unknown in [
        json!({"op":"ps","all":true}),
        json!({"op":"tree","depth":1}),
        json!({"op":"state","dest":1,"x":1}),
    ] {
        assert!(serde_json::from_value::<Request>(unknown).is_err());
    }
}

#[test]
fn responses_have_the_documented_shape() {
    let ok = serde_json::to_value(Response::Ok(json!({"pong": 1}))).unwrap();
    assert_eq!(ok, json!({"ok": {"pong": 1}}));
    let err = serde_json::to_value(Response::Error(CallError::NoProc.into())).unwrap();
    assert_eq!(
        err,
        json!({"error": {"kind": "noproc", "message": "no such process"}})
    );
}

#[test]
fn reasons_parse() {
    assert_eq!(parse_reason(None).unwrap(), Some(ExitReason::Shutdown));
    assert_eq!(
        parse_reason(Some(&json!("normal"))).unwrap(),
        Some(ExitReason::Normal)
    );
    assert_eq!(parse_reason(Some(&json!("kill"))).unwrap(), None);
    assert_eq!(
        parse_reason(Some(&json!("boom"))).unwrap(),
        Some(ExitReason::Error("boom".into()))
    );
    assert_eq!(
        parse_reason(Some(&json!({"shutdown": 1}))).unwrap(),
        Some(ExitReason::ShutdownWith(from_json(&json!(1))))
    );
    assert!(parse_reason(Some(&json!(3))).is_err());
}

#[test]
fn a_reason_from_a_client_is_held_to_a_guests_limits() {
    // An error text: one line (it is logged), at most MAX_REASON bytes.
    let Some(ExitReason::Error(text)) = parse_reason(Some(&json!(format!(
        "x\nINFO forged{}",
        "y".repeat(1 << 20)
    ))))
    .unwrap() else {
        panic!("an error reason");
    };
    assert!(!text.contains('\n'), "{text:.80}");
    assert!(
        text.len() <= crate::limits::MAX_REASON,
        "{} bytes",
        text.len()
    );
    let e = parse_reason(Some(&json!({"shutdown": "z".repeat(1 << 20)}))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Badarg, "{e:?}");
    assert!(parse_reason(Some(&json!({"shutdown": "z".repeat(1000)}))).is_ok());
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/n.sock");
    let first = Endpoint::bind(&path).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert!(matches!(
        Endpoint::bind(&path),
        Err(BindError::AlreadyRunning(_))
    ));
    // A socket file nobody listens on any more, as a killed node leaves it.
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("stale.sock")).unwrap();
    drop(listener);
    let stale = Endpoint::bind(dir.path().join("stale.sock")).unwrap();
    drop(stale);
    assert!(!dir.path().join("stale.sock").exists());
    drop(first);
    assert!(!path.exists());
    std::fs::write(dir.path().join("file"), b"").unwrap();
    assert!(matches!(
        Endpoint::bind(dir.path().join("file")),
        Err(BindError::NotASocket(_))
    ));
}

#[test]
fn a_float_in_a_request_is_the_float_written() {
    // serde_json's default float parser can be an ulp off; the server must get the value
    // the client wrote (a `via` key with a float must be the key a guest registered).
    for text in [
        "6.813456539751032e276",
        "2.2250738585072014e-308",
        "0.1",
        "1e300",
    ] {
        let line = format!(r#"{{"op":"call","dest":{{"via":["R",{text}]}},"msg":[{text}]}}"#);
        let expected: f64 = text.parse().unwrap();
        let Ok(Request::Call { dest, msg, .. }) = serde_json::from_str::<Request>(&line) else {
            panic!("{line}");
        };
        assert_eq!(msg, json!([expected]), "{text}");
        assert_eq!(
            dest,
            Dest::Via("R".into(), from_json(&json!(expected))),
            "{text}"
        );
    }
}

#[test]
fn a_reply_too_deep_for_a_json_reader_is_refused_as_badreply() {
    let nested = |depth: usize| {
        let mut term = vec![0x81; depth];
        term.push(0x01);
        term
    };
    let shown = reply_json(&nested(125)).unwrap();
    // What the client does with the answer line.
    let line = serde_json::to_string(&Response::Ok(shown)).unwrap();
    assert!(serde_json::from_str::<Response>(&line).is_ok());
    let e = reply_json(&nested(127)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Badreply, "{e:?}");
}

#[tokio::test]
async fn a_socket_directory_another_user_could_swap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
    let refused = Endpoint::bind(dir.path().join("link/n.sock"));
    assert!(
        matches!(
            refused,
            Err(BindError::UnsafeDir {
                why: "a symbolic link",
                ..
            })
        ),
        "{:?}",
        refused.err()
    );
    let set_mode = |mode| {
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set_mode(0o777);
    let refused = Endpoint::bind(real.join("n.sock"));
    assert!(
        matches!(refused, Err(BindError::UnsafeDir { .. })),
        "{:?}",
        refused.err()
    );
    // Sticky, as /tmp: others cannot take the socket away.
    set_mode(0o1777);
    drop(Endpoint::bind(real.join("n.sock")).unwrap());
    set_mode(0o755);
    drop(Endpoint::bind(real.join("n.sock")).unwrap());
}
