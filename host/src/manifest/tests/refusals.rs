//! What a manifest is refused for besides types and names: duplicate keys, nesting, bytes
//! that are not UTF-8, control socket limits that are zero.

use super::*;

#[test]
fn a_duplicate_module_key_names_its_line_and_field() {
    let e = error("[modules.echo]\npath = \"echo.wasm\"\n\n[modules.echo]\npath = \"kv.wasm\"\n");
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(e.field, "modules.echo", "{e}");
    assert!(e.message.contains("duplicate"), "{e}");

    let e = error("[modules]\necho = \"echo.wasm\"\necho = \"kv.wasm\"\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert_eq!(e.field, "modules.echo", "{e}");
}

#[test]
fn a_duplicate_key_in_a_child_names_its_line_and_field() {
    let e = error(
        "[modules]\necho = \"echo.wasm\"\n\n[[children]]\nname = \"a\"\n\n[[children]]\nname = \"b\"\nmodule = \"echo\"\nname = \"c\"\n",
    );
    assert_eq!(e.line, Some(10), "{e}");
    assert_eq!(e.field, "children[1].name", "{e}");
    assert!(
        e.to_string().starts_with(&format!("{}", e.file.display())),
        "{e}"
    );

    let e = error("[node]\nname = \"a\"\n[node]\nname = \"b\"\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert_eq!(e.field, "node", "{e}");
}

/// `levels` supervisors, each the only child of the one above, with an echo at the bottom.
fn nested_supervisors(levels: usize) -> String {
    let mut text = String::from("[modules]\necho = \"echo.wasm\"\n");
    for depth in 1..=levels {
        let header = vec!["children"; depth].join(".");
        text.push_str(&format!(
            "\n[[{header}]]\nid = \"s{depth}\"\ntype = \"supervisor\"\n"
        ));
    }
    let header = vec!["children"; levels + 1].join(".");
    text.push_str(&format!("\n[[{header}]]\nmodule = \"echo\"\n"));
    text
}

#[test]
fn supervisors_nest_up_to_the_limit() {
    let (_dir, m) = parse(&nested_supervisors(MAX_SUPERVISOR_DEPTH));
    let m = m.expect("nesting up to the limit is allowed");
    let mut sup = &m.supervisor;
    let mut levels = 0;
    while let Some(ChildTableKind::Supervisor(s)) = sup.children.first().map(|c| &c.kind) {
        sup = s;
        levels += 1;
    }
    assert_eq!(levels, MAX_SUPERVISOR_DEPTH);
}

#[test]
fn supervisors_nested_past_the_limit_are_refused_with_line_and_path() {
    let text = nested_supervisors(MAX_SUPERVISOR_DEPTH + 1);
    let e = error(&text);
    let path = vec!["children[0]"; MAX_SUPERVISOR_DEPTH + 1].join(".");
    assert_eq!(e.field, path, "{e}");
    // The line of the supervisor one level too deep.
    let header = format!(
        "[[{}]]",
        vec!["children"; MAX_SUPERVISOR_DEPTH + 1].join(".")
    );
    let line = text.lines().position(|l| l == header).unwrap() + 1;
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains(&MAX_SUPERVISOR_DEPTH.to_string()), "{e}");
}

#[test]
fn ten_thousand_nested_levels_are_refused_without_overflowing_the_stack() {
    // Each shape of nesting TOML has: table headers, arrays, inline tables, dotted keys.
    let deep = 10_000;
    let header = format!(
        "[modules]\necho = \"echo.wasm\"\n[[{}]]\nmodule = \"echo\"\n",
        vec!["children"; deep].join(".")
    );
    let arrays = format!(
        "[modules]\necho = \"echo.wasm\"\n[[children]]\nmodule = \"echo\"\nargs = {}1{}\n",
        "[".repeat(deep),
        "]".repeat(deep)
    );
    let tables = format!(
        "[modules]\necho = \"echo.wasm\"\n[[children]]\nmodule = \"echo\"\nargs = {}1{}\n",
        "{a = ".repeat(deep),
        "}".repeat(deep)
    );
    let dotted = format!(
        "[modules]\necho = \"echo.wasm\"\n[[children]]\nmodule = \"echo\"\nargs.{} = 1\n",
        vec!["a"; deep].join(".")
    );
    for text in [header, arrays, tables, dotted] {
        let e = error(&text);
        assert!(e.line.is_some(), "{e}");
        assert!(e.message.contains("nest"), "{e}");
    }
}

#[test]
fn non_utf8_text_names_the_line_and_column_of_the_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.toml");
    std::fs::write(&file, b"[node]\nname = \"ab\xff\xfe\"\n").unwrap();
    let e = Manifest::load(&file).expect_err("refused");
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("UTF-8"), "{e}");
    assert!(e.message.contains("column 11"), "{e}");
    assert!(e.message.contains("byte offset 17"), "{e}");
}
#[test]
fn nesting_just_under_the_parsers_limit_is_refused_by_the_supervisor_limit() {
    // 78 supervisors deep, a worker under them whose args nest 78 arrays: the parser takes
    // it, the supervisor limit refuses it, and nothing overflows a test thread's stack.
    let mut text = nested_supervisors(78);
    text.push_str(&format!("args = {}1{}\n", "[".repeat(78), "]".repeat(78)));
    let e = error(&text);
    assert_eq!(
        e.field,
        vec!["children[0]"; MAX_SUPERVISOR_DEPTH + 1].join("."),
        "{e}"
    );
}

#[test]
fn control_limits_are_read_from_node_and_default_otherwise() {
    let (_dir, m) = parse("[node]\nname = \"n\"\n");
    assert_eq!(m.unwrap().control_limits, crate::control::Limits::default());
    let (_dir, m) = parse(
        "[node]\ncontrol_max_request_bytes = 4096\ncontrol_idle_timeout_ms = 250\ncontrol_max_connections = 8\n",
    );
    let limits = m.unwrap().control_limits;
    assert_eq!(limits.max_request_bytes, 4096);
    assert_eq!(limits.idle_timeout, Duration::from_millis(250));
    assert_eq!(limits.max_connections, 8);
    let e = error("[node]\n\ncontrol_max_connections = 0\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert_eq!(e.field, "node.control_max_connections", "{e}");
}

#[test]
fn max_message_size_is_read_from_node_and_must_be_positive() {
    let (_dir, m) = parse("[node]\nname = \"n\"\n");
    assert_eq!(m.unwrap().max_message_size, None);
    let (_dir, m) = parse("[node]\nmax_message_size = 4096\n");
    assert_eq!(m.unwrap().max_message_size, Some(4096));
    let e = error("[node]\nmax_message_size = 0\n");
    assert_eq!(e.line, Some(2), "{e}");
    assert_eq!(e.field, "node.max_message_size", "{e}");
}

#[test]
fn a_database_below_a_subdirectory_of_a_read_write_wasi_directory_is_refused_at_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("data/sub")).unwrap();
    std::fs::write(dir.path().join("echo.wasm"), b"").unwrap();
    let manifest = |db: &str| {
        let file = dir.path().join("app.toml");
        let text = format!(
            "[modules.echo]\npath = \"echo.wasm\"\n\n[modules.echo.grants]\n\
             dirs = [{{ host = \"data\", guest = \"/data\", mode = \"rw\" }}]\n\
             databases = [\n  {{ name = \"orders\", path = \"{db}\" }},\n]\n"
        );
        std::fs::write(&file, text).unwrap();
        Manifest::load(&file)
    };
    let e = manifest("data/sub/orders.db").expect_err("refused");
    assert_eq!(e.line, Some(7), "{e}");
    assert_eq!(e.field, "modules.echo.grants.databases[0].path", "{e}");
    assert!(e.message.contains("granted read-write through WASI"), "{e}");
    // Directly in the directory, or outside it: granted.
    manifest("data/orders.db").expect("in the directory itself");
    manifest("orders.db").expect("outside it");
}

#[test]
fn a_database_timeout_sqlite_cannot_take_is_refused_at_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("echo.wasm"), b"").unwrap();
    let manifest = |ms: u64| {
        let file = dir.path().join("app.toml");
        let text = format!(
            "[modules.echo]\npath = \"echo.wasm\"\n\n[modules.echo.grants]\n\
             databases = [\n  {{ name = \"orders\", path = \"orders.db\", timeout_ms = {ms} }},\n]\n"
        );
        std::fs::write(&file, text).unwrap();
        Manifest::load(&file)
    };
    let e = manifest(1 << 31).expect_err("refused");
    assert_eq!(e.line, Some(6), "{e}");
    assert_eq!(
        e.field, "modules.echo.grants.databases[0].timeout_ms",
        "{e}"
    );
    assert!(e.message.contains("at most 3600000"), "{e}");
    manifest(3_600_000).expect("an hour");
}

#[test]
fn an_error_quoting_a_long_value_is_shown_on_one_short_line() {
    let long = "x".repeat(10_000);
    let e = error(&format!(
        "[node]\nname = \"n\"\nmax_message_size = \"{long}\"\n"
    ));
    let shown = e.to_string();
    assert!(shown.len() < 600, "{} bytes: {shown:.200}", shown.len());
    assert_eq!(shown.lines().count(), 1, "{shown:.200}");
    assert_eq!(e.line, Some(3), "{shown:.200}");
}
