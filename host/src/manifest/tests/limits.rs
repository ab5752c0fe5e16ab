//! `[node]` limits and a worker's own: read, defaulted, and refused when absurd.

use super::*;
use crate::{MailboxBound, Overflow, ProcessLimits};

const LIMITS: &str = r#"[node]
max_processes = 1000
max_timers = 50
max_registry_keys = 20
memory_limit = 8388608
callback_timeout_ms = 2000

[modules]
echo = "echo.wasm"

[[children]]
module = "echo"
memory_limit = 4194304
callback_timeout_ms = 250
mailbox = { bound = 10, policy = "drop_oldest" }

[[children]]
id = "plain"
module = "echo"
mailbox = { bound = 3 }
"#;

#[test]
fn node_and_child_limits_are_read_into_the_manifest_and_the_child_specs() {
    let (_dir, m) = parse(LIMITS);
    let m = m.expect("valid");
    assert_eq!(m.max_processes, Some(1000));
    assert_eq!(m.max_timers, Some(50));
    assert_eq!(m.max_registry_keys, Some(20));
    assert_eq!(m.memory_limit, Some(8 << 20));
    assert_eq!(m.callback_timeout, Some(Duration::from_millis(2000)));
    let own = ProcessLimits::default()
        .memory(4 << 20)
        .callback_timeout(Duration::from_millis(250))
        .mailbox(MailboxBound::new(10, Overflow::DropOldest));
    assert_eq!(worker(&m.children()[0]).limits, own);
    let plain = ProcessLimits::default().mailbox(MailboxBound::new(3, Overflow::Reject));
    assert_eq!(worker(&m.children()[1]).limits, plain);
    let spec = m.supervisor.to_spec();
    let crate::supervisor::ChildStart::Worker { limits, .. } = &spec.children[0].start else {
        panic!("a worker child");
    };
    assert_eq!(*limits, own);
}

#[test]
fn a_child_memory_limit_above_the_node_is_refused_with_its_line() {
    let e = error(&LIMITS.replace("memory_limit = 4194304", "memory_limit = 16777216"));
    assert_eq!(e.line, Some(13), "{e}");
    assert_eq!(e.field, "children[0].memory_limit", "{e}");
    assert!(e.message.contains("exceeds the node's memory_limit"), "{e}");
}

#[test]
fn absurd_limits_are_refused_with_their_field() {
    for (from, to, field) in [
        (
            "max_processes = 1000",
            "max_processes = 0",
            "node.max_processes",
        ),
        ("max_timers = 50", "max_timers = -1", "node.max_timers"),
        (
            "max_registry_keys = 20",
            "max_registry_keys = \"many\"",
            "node.max_registry_keys",
        ),
        (
            "memory_limit = 8388608",
            "memory_limit = 99999999999999",
            "node.memory_limit",
        ),
        (
            "callback_timeout_ms = 250",
            "callback_timeout_ms = 0",
            "children[0].callback_timeout_ms",
        ),
        ("bound = 10,", "bound = 0,", "children[0].mailbox.bound"),
        (
            "\"drop_oldest\"",
            "\"drop_some\"",
            "children[0].mailbox.policy",
        ),
        (
            "bound = 3 }",
            "bound = 3, size = 4 }",
            "children[1].mailbox",
        ),
    ] {
        let text = LIMITS.replace(from, to);
        assert_ne!(text, LIMITS, "{from}");
        let e = error(&text);
        assert!(e.field.starts_with(field), "{to}: {e}");
        assert!(e.line.is_some(), "{to}: {e}");
    }
}

#[test]
fn a_supervisor_child_takes_no_process_limits() {
    let e = error(
        "[modules]\necho = \"echo.wasm\"\n[[children]]\nid = \"s\"\ntype = \"supervisor\"\nmailbox = { bound = 1 }\n",
    );
    assert!(
        e.to_string().contains("not allowed on a supervisor child"),
        "{e}"
    );
}
