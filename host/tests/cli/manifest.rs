//! `otter run` refusing manifests with errors that name the file, the line and the field.

use crate::support::*;

/// `otter run` refuses the manifest `text` (bytes): exit 1, nothing started, one line
/// on stderr, which it returns.
fn refused(text: &[u8]) -> String {
    let app = App::new();
    std::fs::write(app.manifest(), text).unwrap();
    let (status, stderr) = app.run_refused();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(app.stdout().is_empty());
    stderr
}

#[test]
fn otter_run_names_the_line_and_field_of_a_duplicate_module() {
    let echo = guests().join("echo.wasm");
    let text = format!(
        "[modules.echo]\npath = \"{echo}\"\n\n[modules.echo]\npath = \"{echo}\"\n",
        echo = echo.display()
    );
    let stderr = refused(text.as_bytes());
    assert!(
        stderr.contains("app.toml:4: modules.echo: duplicate key"),
        "{stderr}"
    );
}

#[test]
fn otter_run_refuses_supervisors_nested_too_deep_with_line_and_path() {
    let mut text = format!(
        "[modules]\necho = \"{}\"\n",
        guests().join("echo.wasm").display()
    );
    for depth in 1..=40 {
        let header = vec!["children"; depth].join(".");
        text.push_str(&format!(
            "[[{header}]]\nid = \"s{depth}\"\ntype = \"supervisor\"\n"
        ));
    }
    let stderr = refused(text.as_bytes());
    // The 33rd supervisor starts on line 3 + 32 * 3.
    let path = vec!["children[0]"; 33].join(".");
    assert!(
        stderr.contains(&format!("app.toml:99: {path}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("at most 32 levels"), "{stderr}");

    // Ten thousand levels: refused as a parse error, not a crash.
    let deep = format!(
        "[modules]\n[[{}]]\nmodule = \"echo\"\n",
        vec!["children"; 10_000].join(".")
    );
    let stderr = refused(deep.as_bytes());
    assert!(stderr.contains("app.toml:2: "), "{stderr}");
    assert!(stderr.contains("nested"), "{stderr}");
}

#[test]
fn otter_run_names_the_line_and_column_of_bytes_that_are_not_utf8() {
    let stderr = refused(b"[node]\nname = \"t\"\n# caf\xe9\n");
    assert!(
        stderr.contains("app.toml:3: not UTF-8: byte 0xe9 at column 6 (byte offset 23)"),
        "{stderr}"
    );
}

#[test]
fn otter_run_refuses_each_hostile_manifest_naming_line_and_field() {
    let echo = guests().join("echo.wasm");
    let good = format!(
        "[node]\nname = \"t\"\nmax_timers = 100\n\n[modules]\necho = \"{}\"\n\n\
         [[children]]\nname = \"a\"\nmodule = \"echo\"\n\n\
         [[children]]\nname = \"b\"\nmodule = \"echo\"\n",
        echo.display()
    );
    for (what, from, to, expect) in [
        (
            "an unknown field",
            "max_timers = 100",
            "max_timer = 100",
            "app.toml:3: node.max_timer: unknown field `max_timer` (did you mean `max_timers`?)",
        ),
        (
            "a wrong type",
            "max_timers = 100",
            "max_timers = \"100\"",
            "app.toml:3: node.max_timers",
        ),
        (
            "a duplicate name",
            "name = \"b\"",
            "name = \"a\"",
            "app.toml:13: children[1].name",
        ),
        (
            "a missing file",
            "echo.wasm",
            "no-such.wasm",
            "app.toml:6: modules.echo",
        ),
        (
            "an absurd number",
            "max_timers = 100",
            "max_timers = 99999999999999999999999",
            "app.toml:3",
        ),
    ] {
        assert!(good.contains(from), "{what}");
        let stderr = refused(good.replacen(from, to, 1).as_bytes());
        assert!(stderr.contains(expect), "{what}: {stderr}");
        assert!(stderr.len() < 400, "{what}: one short line: {stderr}");
    }
}
