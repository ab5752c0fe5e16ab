//! `[node]` limits and a worker's own: read, defaulted, and refused when absurd.

use super::*;
use crate::{MAX_SPARE_INSTANCES, MailboxBound, Overflow, ProcessLimits};

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
    assert_eq!(e.line, Some(6), "the key's own line, not the child's: {e}");
}

const HOST_LIMITS: &str = r#"[node]
max_tables = 1
max_tables_per_process = 2
max_table_bytes = 1048576
max_sql_statements = 3

[modules]
echo = "echo.wasm"
"#;

#[test]
fn table_and_sql_limits_are_read_from_the_node_table() {
    let (_dir, m) = parse(HOST_LIMITS);
    let m = m.expect("valid");
    assert_eq!(m.max_tables, Some(1));
    assert_eq!(m.max_tables_per_process, Some(2));
    assert_eq!(m.max_table_bytes, Some(1 << 20));
    assert_eq!(m.max_sql_statements, Some(3));
    let (_dir, m) = parse(LIMITS);
    let m = m.expect("valid");
    assert_eq!(
        (
            m.max_tables,
            m.max_tables_per_process,
            m.max_table_bytes,
            m.max_sql_statements
        ),
        (None, None, None, None),
        "unset: the node's defaults"
    );
    let most = format!("max_sql_statements = {MAX_SQL_STATEMENTS}");
    let (_dir, m) = parse(&HOST_LIMITS.replace("max_sql_statements = 3", &most));
    assert_eq!(
        m.expect("valid").max_sql_statements,
        Some(MAX_SQL_STATEMENTS)
    );
}

#[test]
fn absurd_table_and_sql_limits_are_refused_with_their_file_line_and_field() {
    let too_many_sql = format!("max_sql_statements = {}", MAX_SQL_STATEMENTS + 1);
    for (from, to, line, field, says) in [
        (
            "max_tables = 1",
            "max_tables = 0",
            2,
            "node.max_tables",
            "positive",
        ),
        (
            "max_tables = 1",
            "max_tables = -3",
            2,
            "node.max_tables",
            "",
        ),
        (
            "max_tables_per_process = 2",
            "max_tables_per_process = 0",
            3,
            "node.max_tables_per_process",
            "positive",
        ),
        (
            "max_tables_per_process = 2",
            "max_tables_per_process = \"few\"",
            3,
            "node.max_tables_per_process",
            "",
        ),
        (
            "max_table_bytes = 1048576",
            "max_table_bytes = 0",
            4,
            "node.max_table_bytes",
            "positive",
        ),
        (
            "max_table_bytes = 1048576",
            "max_table_bytes = 4611686018427387904",
            4,
            "node.max_table_bytes",
            "this machine's memory",
        ),
        (
            "max_sql_statements = 3",
            "max_sql_statements = 0",
            5,
            "node.max_sql_statements",
            "positive",
        ),
        (
            "max_sql_statements = 3",
            too_many_sql.as_str(),
            5,
            "node.max_sql_statements",
            "at most 256",
        ),
    ] {
        let text = HOST_LIMITS.replace(from, to);
        assert_ne!(text, HOST_LIMITS, "{from}");
        let e = error(&text);
        assert_eq!(e.file.file_name().unwrap(), "app.toml", "{to}: {e}");
        assert_eq!(e.line, Some(line), "{to}: {e}");
        assert!(e.field.starts_with(field), "{to}: {e}");
        assert!(e.message.contains(says), "{to}: {e}");
    }
}

#[test]
fn every_node_key_reaches_the_node_config() {
    let text = LIMITS.replace(
        "[node]\n",
        "[node]\nmax_message_size = 4096\nmax_tables = 1\nmax_tables_per_process = 2\n\
         max_table_bytes = 1048576\nmax_sql_statements = 3\nmax_guest_files = 64\n\
         spare_instances = 0\n",
    );
    let (_dir, m) = parse(&text);
    let c = m.expect("valid").node_config();
    assert_eq!(c.max_message_size, 4096);
    assert_eq!(c.max_processes, 1000);
    assert_eq!(c.max_timers, 50);
    assert_eq!(c.max_registry_keys, 20);
    assert_eq!(c.engine.max_memory, 8 << 20);
    assert_eq!(c.callback_timeout, Some(Duration::from_millis(2000)));
    assert_eq!(c.max_tables, 1);
    assert_eq!(c.max_tables_per_process, 2);
    assert_eq!(c.max_table_bytes, 1 << 20);
    assert_eq!(c.max_sql_statements, 3);
    assert_eq!(c.max_guest_files, Some(64));
    assert_eq!(c.spare_instances, 0);
}

#[test]
fn spare_instances_may_be_zero_and_at_most_the_bound() {
    let with =
        |n: &str| HOST_LIMITS.replace("[modules]", &format!("spare_instances = {n}\n\n[modules]"));
    let (_dir, m) = parse(&with("0"));
    assert_eq!(m.expect("none is valid").spare_instances, Some(0));
    let (_dir, m) = parse(&with(&MAX_SPARE_INSTANCES.to_string()));
    assert_eq!(
        m.expect("the most is valid").spare_instances,
        Some(MAX_SPARE_INSTANCES)
    );
    let (_dir, m) = parse(HOST_LIMITS);
    assert_eq!(
        m.expect("valid").spare_instances,
        None,
        "unset: the node's default"
    );
    for (n, says) in [
        (
            (MAX_SPARE_INSTANCES + 1).to_string(),
            format!("at most {MAX_SPARE_INSTANCES}"),
        ),
        ("-1".into(), String::new()),
    ] {
        let e = error(&with(&n));
        assert_eq!(e.line, Some(7), "{n}: {e}");
        assert!(e.field.starts_with("node.spare_instances"), "{n}: {e}");
        assert!(e.message.contains(&says), "{n}: {e}");
    }
}

#[test]
fn max_guest_files_is_bounded_whatever_the_machine_parsing_it() {
    let share = crate::descriptors::MAX_GUEST_FILES;
    let with =
        |n: &str| HOST_LIMITS.replace("[modules]", &format!("max_guest_files = {n}\n\n[modules]"));
    let (_dir, m) = parse(&with(&share.to_string()));
    assert_eq!(m.expect("the most is valid").max_guest_files, Some(share));
    let (_dir, m) = parse(&with("100000000"));
    assert!(
        m.is_ok(),
        "more than this machine allows is the node's to lower"
    );
    let (_dir, m) = parse(&with("1"));
    assert_eq!(m.expect("one is valid").max_guest_files, Some(1));
    let (_dir, m) = parse(HOST_LIMITS);
    assert_eq!(
        m.expect("valid").max_guest_files,
        None,
        "unset: the node's default"
    );
    for (n, says) in [
        ((share + 1).to_string(), format!("at most {share}")),
        ("0".into(), "positive".into()),
        ("-1".into(), String::new()),
    ] {
        let e = error(&with(&n));
        assert_eq!(e.file.file_name().unwrap(), "app.toml", "{n}: {e}");
        assert_eq!(e.line, Some(7), "{n}: {e}");
        assert!(e.field.starts_with("node.max_guest_files"), "{n}: {e}");
        assert!(e.message.contains(&says), "{n}: {e}");
    }
}

const SERIES: &str = r#"[telemetry]
max_series = 1000
max_series_per_module = 100

[modules]
echo = "echo.wasm"
"#;

#[test]
fn series_limits_are_read_from_the_telemetry_table() {
    let (_dir, m) = parse(SERIES);
    let l = m.expect("valid").series_limits;
    assert_eq!((l.max(), l.per_module()), (1000, 100));
    let (_dir, m) = parse(&SERIES.replace("max_series_per_module = 100\n", ""));
    let l = m.expect("valid").series_limits;
    assert_eq!(
        (l.max(), l.per_module()),
        (1000, 250),
        "a quarter by default"
    );
    let (_dir, m) = parse(LIMITS);
    assert_eq!(
        m.expect("valid").series_limits,
        crate::telemetry::SeriesLimits::default(),
        "unset: the defaults"
    );
    let (_dir, m) = parse(
        &SERIES
            .replace("max_series = 1000", "max_series = 0")
            .replace("max_series_per_module = 100", "max_series_per_module = 0"),
    );
    let l = m.expect("valid").series_limits;
    assert_eq!((l.max(), l.per_module()), (0, 0), "no guest series at all");
}

#[test]
fn absurd_series_limits_are_refused_with_their_file_line_and_field() {
    let too_many = format!("max_series = {}", MAX_SERIES + 1);
    for (from, to, line, field, says) in [
        (
            "max_series = 1000",
            too_many.as_str(),
            2,
            "telemetry.max_series",
            "at most 100000",
        ),
        (
            "max_series = 1000",
            "max_series = -1",
            2,
            "telemetry.max_series",
            "",
        ),
        (
            "max_series_per_module = 100",
            "max_series_per_module = 1001",
            3,
            "telemetry.max_series_per_module",
            "at most telemetry.max_series (1000)",
        ),
        (
            "max_series = 1000\nmax_series_per_module = 100",
            "max_series_per_module = 2001",
            2,
            "telemetry.max_series_per_module",
            "at most telemetry.max_series (2000)",
        ),
        (
            "max_series_per_module = 100",
            "max_series_per_module = \"many\"",
            3,
            "telemetry.max_series_per_module",
            "",
        ),
        (
            "max_series_per_module = 100",
            "max_series_per_modul = 100",
            3,
            "",
            "unknown field",
        ),
    ] {
        let text = SERIES.replace(from, to);
        assert_ne!(text, SERIES, "{from}");
        let e = error(&text);
        assert_eq!(e.file.file_name().unwrap(), "app.toml", "{to}: {e}");
        assert_eq!(e.line, Some(line), "{to}: {e}");
        assert!(e.field.starts_with(field), "{to}: {e}");
        assert!(e.message.contains(says), "{to}: {e}");
    }
}

/// Every `[node]` key the manifest reads, as serde lists them when it meets an unknown one
/// (the manifest's own error names only the likely one).
fn node_keys() -> Vec<String> {
    let Err(e) = toml::from_str::<crate::manifest::raw::RawNode>("no_such_key = 1") else {
        panic!("an unknown key is refused");
    };
    let message = e.message().to_owned();
    let (_, expected) = message
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("serde lists the keys: {message}"));
    expected
        .split(", ")
        .map(|k| k.trim_matches('`').to_owned())
        .collect()
}

#[test]
fn a_change_to_any_node_key_is_a_change_of_the_node() {
    // A value other than the default for each key; a new key needs one here, and a change
    // to it must reach `same_node` (and so `otter reload`'s note) or this test fails.
    let changed = [
        ("name", "\"other\""),
        ("control", "\"other.sock\""),
        ("max_message_size", "4096"),
        ("control_max_request_bytes", "4096"),
        ("control_idle_timeout_ms", "1000"),
        ("control_max_connections", "8"),
        ("max_processes", "1000"),
        ("max_timers", "50"),
        ("max_registry_keys", "20"),
        ("memory_limit", "8388608"),
        ("callback_timeout_ms", "2000"),
        ("max_tables", "1"),
        ("max_tables_per_process", "2"),
        ("max_table_bytes", "1048576"),
        ("max_sql_statements", "255"),
        ("max_guest_files", "64"),
        ("spare_instances", "2"),
        ("max_wasm_stack", "262144"),
        ("epoch_tick_ms", "2"),
        ("load_timeout_ms", "1000"),
    ];
    let with =
        |line: &str| format!("[node]\nname = \"app\"\n{line}\n\n[modules]\necho = \"echo.wasm\"\n");
    let (_dir, base) = parse(&with(""));
    let base = base.expect("valid");
    let (_dir, again) = parse(&with(""));
    assert!(base.same_node(&again.expect("valid")));
    let keys = node_keys();
    assert!(keys.len() >= changed.len(), "{keys:?}");
    for key in keys {
        let (_, value) = changed
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("[node] {key}: give it a changed value here"));
        let text = with(&format!("{key} = {value}")).replace("name = \"app\"\nname", "name");
        let (_dir, m) = parse(&text);
        let m = m.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(
            !base.same_node(&m) && !m.same_node(&base),
            "[node] {key} = {value} is not a change of the node"
        );
        assert_eq!(
            base.node_changes(&m),
            [key.as_str()],
            "[node] {key} = {value}"
        );
        assert_eq!(
            m.node_changes(&base),
            [key.as_str()],
            "[node] {key} = {value}"
        );
    }
}
