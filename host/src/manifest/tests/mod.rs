use super::*;
use crate::supervisor::{Restart, Shutdown, Strategy};
use crate::term::encode;

/// A directory with `echo.wasm` and `kv.wasm` (empty: the manifest only checks they
/// exist) and a manifest `app.toml` holding `text`.
fn parse(text: &str) -> (tempfile::TempDir, Result<Manifest, ManifestError>) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("echo.wasm"), b"").expect("write");
    std::fs::write(dir.path().join("kv.wasm"), b"").expect("write");
    let file = dir.path().join("app.toml");
    std::fs::write(&file, text).expect("write");
    let result = Manifest::load(&file);
    (dir, result)
}

fn error(text: &str) -> ManifestError {
    let (_dir, result) = parse(text);
    result.expect_err("the manifest is refused")
}

const GOOD: &str = r#"
[node]
name = "demo"

[modules]
echo = "echo.wasm"
kv = { path = "kv.wasm", vsn = "1" }

[[children]]
name = "echo"
module = "echo"

[[children]]
name = "kv"
module = "kv"
args = { size = 3, tags = ["a", "b"], on = true }
start_timeout_ms = 250
shutdown_timeout_ms = 100
"#;

#[test]
fn a_good_manifest_is_read_in_order_with_paths_resolved() {
    let (dir, m) = parse(GOOD);
    let m = m.expect("valid");
    assert_eq!(m.node_name, "demo");
    assert_eq!(m.control, None);
    let names: Vec<_> = m.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["echo", "kv"]);
    assert_eq!(
        m.modules[0].path,
        std::path::absolute(dir.path().join("echo.wasm")).unwrap()
    );
    assert_eq!(m.modules[0].line, 6);
    assert_eq!(m.modules[1].vsn.as_deref(), Some("1"));
    assert_eq!(m.modules[1].line, 7);
    let c = m.children();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].label(), "echo");
    assert_eq!(worker(&c[0]).args, encode(&()).unwrap());
    assert_eq!(worker(&c[0]).start_timeout, None);
    assert_eq!(c[0].shutdown, Shutdown::Timeout(DEFAULT_SHUTDOWN_TIMEOUT));
    assert_eq!(c[0].restart, Restart::Permanent);
    assert_eq!(c[0].line, 9);
    assert_eq!(m.supervisor.id, "demo");
    assert_eq!(m.supervisor.strategy, Strategy::OneForOne);
    assert_eq!(m.supervisor.intensity, 3);
    assert_eq!(m.supervisor.period, Duration::from_secs(5));
    let args = crate::term::to_json(&worker(&c[1]).args).unwrap();
    assert_eq!(
        args,
        serde_json::json!({"size": 3, "tags": ["a", "b"], "on": true})
    );
    assert_eq!(
        worker(&c[1]).start_timeout,
        Some(Duration::from_millis(250))
    );
    assert_eq!(c[1].shutdown, Shutdown::Timeout(Duration::from_millis(100)));
}

fn worker(c: &ChildTable) -> &WorkerSpec {
    match &c.kind {
        ChildTableKind::Worker(w) => w,
        ChildTableKind::Supervisor(_) => panic!("{} is a supervisor", c.id),
    }
}

const NESTED: &str = r#"[modules]
echo = "echo.wasm"
kv = "kv.wasm"

[supervisor]
id = "MyApp.Supervisor"
strategy = "rest_for_one"
intensity = 5
period_ms = 1000

[[children]]
module = "echo"
restart = "transient"
shutdown = "brutal_kill"

[[children]]
id = "workers"
type = "supervisor"
strategy = "one_for_all"

[[children.children]]
name = "a"
module = "kv"
shutdown = "infinity"

[[children.children]]
id = "b"
module = "kv"
restart = "temporary"
shutdown = 250
"#;

#[test]
fn a_nested_tree_is_read_with_its_settings() {
    let (_dir, m) = parse(NESTED);
    let m = m.expect("valid");
    let root = &m.supervisor;
    assert_eq!(root.id, "MyApp.Supervisor");
    assert_eq!(root.strategy, Strategy::RestForOne);
    assert_eq!(root.intensity, 5);
    assert_eq!(root.period, Duration::from_millis(1000));
    assert_eq!(root.line, 5);
    let c = &root.children;
    assert_eq!(c[0].id, "echo");
    assert_eq!(c[0].restart, Restart::Transient);
    assert_eq!(c[0].shutdown, Shutdown::BrutalKill);
    assert_eq!(c[1].id, "workers");
    assert_eq!(c[1].shutdown, Shutdown::Infinity);
    assert_eq!(c[1].line, 16);
    let ChildTableKind::Supervisor(inner) = &c[1].kind else {
        panic!("a supervisor")
    };
    assert_eq!(inner.strategy, Strategy::OneForAll);
    assert_eq!(inner.children[0].id, "a");
    assert_eq!(inner.children[0].shutdown, Shutdown::Infinity);
    assert_eq!(inner.children[1].id, "b");
    assert_eq!(inner.children[1].restart, Restart::Temporary);
    assert_eq!(inner.children[1].line, 26);

    let spec = root.to_spec();
    assert_eq!(spec.strategy, Strategy::RestForOne);
    assert_eq!(spec.children.len(), 2);
    assert!(spec.validate().is_ok());

    // Runtime field paths map back to lines.
    assert_eq!(root.line_of("children[1].children[1].id"), 26);
    assert_eq!(root.line_of("children[0].shutdown"), 11);
    assert_eq!(root.line_of("period"), 5);
    assert_eq!(
        root.locate(&["workers", "b"]),
        Some(("children[1].children[1]".to_owned(), 26))
    );
}

#[test]
fn a_bad_restart_names_its_line_and_path() {
    let e = error(
        "[modules]\necho = \"echo.wasm\"\n\n[[children]]\nmodule = \"echo\"\n\n\
         [[children]]\nname = \"b\"\nmodule = \"echo\"\n\n[[children]]\nname = \"c\"\n\
         module = \"echo\"\nrestart = \"sometimes\"\n",
    );
    assert_eq!(e.line, Some(14));
    assert_eq!(e.field, "children[2].restart");
    assert!(
        e.to_string().ends_with(
            "app.toml:14: children[2].restart: expected one of permanent, transient, temporary"
        ),
        "{e}"
    );
}

#[test]
fn nested_errors_have_nested_paths() {
    let bad = NESTED.replace("shutdown = 250", "shutdown = \"later\"");
    let e = error(&bad);
    assert_eq!(e.line, Some(30));
    assert_eq!(e.field, "children[1].children[1].shutdown");

    let bad = NESTED.replace("strategy = \"one_for_all\"", "strategy = \"all\"");
    let e = error(&bad);
    assert_eq!(e.line, Some(19));
    assert_eq!(e.field, "children[1].strategy");

    let bad = NESTED.replace("strategy = \"rest_for_one\"", "strategy = \"x\"");
    assert_eq!(error(&bad).field, "supervisor.strategy");

    let bad = NESTED.replace("id = \"b\"", "id = \"a\"");
    let e = error(&bad);
    assert_eq!(e.line, Some(27));
    assert_eq!(e.field, "children[1].children[1].id");

    let bad = NESTED.replace("shutdown = 250", "shutdown = 0");
    assert!(error(&bad).message.contains("brutal_kill"));

    let bad = NESTED.replace("id = \"workers\"\n", "");
    let e = error(&bad);
    assert_eq!(e.field, "children[1].id");
    assert_eq!(e.line, Some(16));

    let bad = NESTED.replace(
        "module = \"echo\"\nrestart",
        "module = \"echo\"\nstrategy = \"one_for_all\"\nrestart",
    );
    assert_eq!(error(&bad).field, "children[0].strategy");
}

#[test]
fn registered_names_are_unique_across_the_tree() {
    let bad = NESTED.replace("id = \"b\"", "name = \"a\"");
    let e = error(&bad);
    assert_eq!(e.field, "children[1].children[1].name");
    assert!(
        e.message.contains("children[1].children[0] has it too"),
        "{e}"
    );
}

#[test]
fn the_node_is_named_after_the_file_by_default() {
    let (_dir, m) = parse("[modules]\necho = \"echo.wasm\"\n");
    let m = m.expect("valid");
    assert_eq!(m.node_name, "app");
    assert!(m.children().is_empty());
}

#[test]
fn a_module_table_form_is_accepted() {
    let (_dir, m) = parse("[modules.echo]\npath = \"echo.wasm\"\nvsn = \"2\"\n");
    let m = m.expect("valid");
    assert_eq!(m.modules[0].vsn.as_deref(), Some("2"));
    assert_eq!(m.modules[0].line, 2);
}

#[test]
fn control_is_resolved_against_the_manifest_directory() {
    let (dir, m) = parse("[node]\ncontrol = \"run/x.sock\"\n");
    let want = std::path::absolute(dir.path().join("run/x.sock")).unwrap();
    assert_eq!(m.expect("valid").control, Some(want));
}

#[test]
fn an_unknown_module_is_named_with_its_line_and_field() {
    let e = error(
        "[modules]\necho = \"echo.wasm\"\nkv = \"kv.wasm\"\n\n[[children]]\nmodule = \"echo\"\n\n\
         [[children]]\nmodule = \"kv\"\n\n[[children]]\nname = \"x\"\nmodule = \"ech\"\n",
    );
    assert_eq!(e.line, Some(13));
    assert_eq!(e.field, "children[2].module");
    assert_eq!(e.message, r#"unknown module "ech" (modules: echo, kv)"#);
    assert!(
        e.to_string().ends_with(
            r#"app.toml:13: children[2].module: unknown module "ech" (modules: echo, kv)"#
        ),
        "{e}"
    );
}

#[test]
fn a_duplicate_child_name_points_at_the_second() {
    let e = error(
        "[modules]\necho = \"echo.wasm\"\n[[children]]\nname = \"a\"\nmodule = \"echo\"\n\
         [[children]]\nname = \"a\"\nmodule = \"echo\"\n",
    );
    assert_eq!(e.line, Some(7));
    assert_eq!(e.field, "children[1].name");
    assert_eq!(e.message, r#"duplicate name "a" (children[0] has it too)"#);
}

#[test]
fn a_missing_module_file_is_named_with_its_path() {
    let e = error("[node]\nname = \"n\"\n[modules.echo]\npath = \"nope/echo.wasm\"\n");
    assert_eq!(e.line, Some(4));
    assert_eq!(e.field, "modules.echo.path");
    assert!(e.message.contains("nope/echo.wasm"), "{e}");
    assert!(e.message.contains("No such file"), "{e}");

    let e = error("[modules]\nkv = \"kv.wasm\"\necho = \"gone.wasm\"\n");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.field, "modules.echo");
    assert!(e.message.contains("gone.wasm"), "{e}");
}

#[test]
fn a_syntax_error_has_a_line_and_no_field() {
    let e = error("[modules]\necho = \"echo.wasm\"\n\n[[children]\nmodule = \"echo\"\n");
    assert_eq!(e.line, Some(4));
    assert_eq!(e.field, "");
    assert!(!e.message.is_empty());
    assert!(e.to_string().contains("app.toml:4: "), "{e}");
}

#[test]
fn a_type_error_names_the_field() {
    let e = error(
        "[modules]\necho = \"echo.wasm\"\n[[children]]\nmodule = \"echo\"\nstart_timeout_ms = \"soon\"\n",
    );
    assert_eq!(e.line, Some(5));
    assert_eq!(e.field, "children[0].start_timeout_ms");
    assert!(e.message.contains("invalid type"), "{e}");

    let e = error("[modules.echo]\npath = 3\n");
    assert_eq!(e.line, Some(2));
    assert_eq!(e.field, "modules.echo.path");
}

#[test]
fn an_unknown_field_is_refused() {
    let e = error(
        "[modules]\necho = \"echo.wasm\"\n[[children]]\nmodule = \"echo\"\nmodul = \"echo\"\n",
    );
    assert_eq!(e.line, Some(5));
    assert_eq!(e.field, "children[0].modul");
    assert!(e.message.contains("unknown field `modul`"), "{e}");

    let e = error("[nodes]\nname = \"x\"\n");
    assert_eq!(e.line, Some(1));
    assert_eq!(e.field, "nodes");
    assert!(e.message.contains("unknown field `nodes`"), "{e}");
}

#[test]
fn a_misspelt_key_is_answered_with_the_key_meant_in_one_short_line() {
    let e = error("[node]\nmax_timer = 100\n\n[modules]\necho = \"echo.wasm\"\n");
    assert_eq!(
        (e.line, e.field.as_str()),
        (Some(2), "node.max_timer"),
        "{e}"
    );
    assert_eq!(
        e.message, "unknown field `max_timer` (did you mean `max_timers`?)",
        "{e}"
    );
    let e = error("[node]\nMax_Wasm_Stak = 2\n\n[modules]\necho = \"echo.wasm\"\n");
    assert!(
        e.message.ends_with("(did you mean `max_wasm_stack`?)"),
        "{e}"
    );
    let e = error("[node]\nwhatever = 1\n\n[modules]\necho = \"echo.wasm\"\n");
    assert_eq!(
        e.message, "unknown field `whatever` (see the manifest reference for the fields)",
        "{e}"
    );
    let long = "k".repeat(100_000);
    let e = error(&format!(
        "[node]\n{long} = 1\n\n[modules]\necho = \"echo.wasm\"\n"
    ));
    assert!(
        e.message.len() < 200,
        "{}",
        &e.message[..200.min(e.message.len())]
    );
}

#[test]
fn a_missing_field_names_the_child() {
    let e = error("[modules]\necho = \"echo.wasm\"\n\n[[children]]\nname = \"x\"\n");
    assert_eq!(e.line, Some(4));
    assert_eq!(e.field, "children[0]");
    assert!(e.message.contains("missing field `module`"), "{e}");
}

#[test]
fn a_bad_node_name_is_refused() {
    let e = error("[node]\nname = \"a/b\"\n");
    assert_eq!(e.line, Some(2));
    assert_eq!(e.field, "node.name");
}

#[test]
fn args_without_a_json_form_are_refused() {
    let e = error("[modules]\necho = \"echo.wasm\"\n[[children]]\nmodule = \"echo\"\nargs = nan\n");
    assert_eq!(e.line, Some(5));
    assert_eq!(e.field, "children[0].args");
}

#[test]
fn an_unreadable_file_has_no_line() {
    let e = Manifest::load("/nonexistent/app.toml").expect_err("refused");
    assert_eq!(e.line, None);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/app.toml: cannot read"),
        "{e}"
    );
}

const DYNAMIC: &str = r#"[modules]
echo = "echo.wasm"

[[registries]]
name = "Jobs"
keys = "unique"

[[registries]]
name = "PubSub"
keys = "duplicate"

[supervisor]
name = "Root"

[[children]]
id = "jobs"
type = "supervisor"
name = "JobSup"
strategy = "simple_one_for_one"

[[children.children]]
module = "echo"
restart = "temporary"
"#;

#[test]
fn registries_and_a_named_dynamic_supervisor_are_read() {
    let (_dir, m) = parse(DYNAMIC);
    let m = m.expect("valid");
    let regs: Vec<_> = m
        .registries
        .iter()
        .map(|r| (r.name.as_str(), r.keys, r.line))
        .collect();
    assert_eq!(
        regs,
        [("Jobs", Keys::Unique, 4), ("PubSub", Keys::Duplicate, 8)]
    );
    assert_eq!(m.supervisor.name.as_deref(), Some("Root"));
    let ChildTableKind::Supervisor(jobs) = &m.children()[0].kind else {
        panic!("a supervisor child");
    };
    assert_eq!(jobs.name.as_deref(), Some("JobSup"));
    assert_eq!(jobs.strategy, Strategy::SimpleOneForOne);
    let spec = m.supervisor.to_spec();
    assert_eq!(spec.name.as_deref(), Some("Root"));
    let crate::supervisor::ChildStart::Supervisor(inner) = &spec.children[0].start else {
        panic!("a supervisor child");
    };
    assert_eq!(inner.name.as_deref(), Some("JobSup"));
    assert!(spec.validate().is_ok());
}

#[test]
fn bad_registries_name_their_line_and_field() {
    let e = error(&DYNAMIC.replace("keys = \"duplicate\"", "keys = \"dup\""));
    assert_eq!((e.line, e.field.as_str()), (Some(10), "registries[1].keys"));
    assert!(e.message.contains("unique, duplicate"), "{e}");

    let e = error(&DYNAMIC.replace("name = \"PubSub\"", "name = \"Jobs\""));
    assert_eq!((e.line, e.field.as_str()), (Some(9), "registries[1].name"));
    assert!(e.message.contains("registries[0] has it too"), "{e}");

    let e = error(&DYNAMIC.replace("name = \"Jobs\"", "name = \"\""));
    assert_eq!(e.field, "registries[0].name");

    let e = error(&DYNAMIC.replace("keys = \"unique\"\n", ""));
    assert_eq!(e.field, "registries[0]");
    assert!(e.message.contains("keys"), "{e}");
}

#[test]
fn a_dynamic_supervisor_needs_exactly_one_template() {
    let two = format!("{DYNAMIC}\n[[children.children]]\nid = \"b\"\nmodule = \"echo\"\n");
    let e = error(&two);
    assert_eq!(
        (e.line, e.field.as_str()),
        (Some(25), "children[0].children[1]")
    );
    assert!(e.message.contains("exactly one child"), "{e}");

    let none = DYNAMIC.replace(
        "[[children.children]]\nmodule = \"echo\"\nrestart = \"temporary\"\n",
        "",
    );
    let e = error(&none);
    assert_eq!(
        (e.line, e.field.as_str()),
        (Some(15), "children[0].children")
    );
}

#[test]
fn supervisor_names_share_the_tree_wide_name_space() {
    let e = error(&DYNAMIC.replace("name = \"JobSup\"", "name = \"Root\""));
    assert_eq!((e.line, e.field.as_str()), (Some(18), "children[0].name"));
    assert!(e.message.contains("supervisor has it too"), "{e}");
}

/// DYNAMIC with a worker `shard` whose `via` is `v`, on line 28.
fn with_via(v: &str) -> String {
    format!("{DYNAMIC}\n[[children]]\nid = \"shard\"\nmodule = \"echo\"\nvia = {v}\n")
}

#[test]
fn a_via_name_and_a_start_timeout_are_read_into_the_child_spec() {
    let text = format!(
        "{}start_timeout_ms = 300\n",
        with_via(r#"["Jobs", ["kv", 1]]"#)
    );
    let (_dir, m) = parse(&text);
    let m = m.expect("valid");
    let w = worker(&m.children()[1]);
    let key = crate::term::from_json(&serde_json::json!(["kv", 1]));
    assert_eq!(w.via, Some(("Jobs".to_owned(), key)));
    assert_eq!(w.start_timeout, Some(Duration::from_millis(300)));
    let spec = m.supervisor.to_spec();
    let crate::supervisor::ChildStart::Worker {
        via, start_timeout, ..
    } = &spec.children[1].start
    else {
        panic!("a worker child");
    };
    assert_eq!((via, *start_timeout), (&w.via, w.start_timeout));
    assert!(spec.validate().is_ok());
}

#[test]
fn bad_via_names_and_start_timeouts_name_their_line_and_field() {
    let at = |e: &ManifestError| (e.line, e.field.clone());
    let shard = (Some(28), "children[1].via".to_owned());

    let e = error(&with_via(r#""Jobs""#));
    assert_eq!(at(&e), shard);
    assert!(e.message.contains("[registry, key]"), "{e}");

    let e = error(&with_via(r#"["Nope", 1]"#));
    assert_eq!(at(&e), shard);
    assert!(
        e.message
            .contains(r#"unknown registry "Nope" (registries: Jobs, PubSub)"#),
        "{e}"
    );

    let e = error(&with_via(r#"["PubSub", 1]"#));
    assert_eq!(at(&e), shard);
    assert!(e.message.contains("duplicate keys"), "{e}");

    let e = error(&format!("{}name = \"s\"\n", with_via(r#"["Jobs", 1]"#)));
    assert_eq!(at(&e), shard);
    assert!(e.message.contains("either name or via"), "{e}");

    // The same key, however it is written, is one via name.
    let twice = format!(
        "{}\n[[children]]\nid = \"again\"\nmodule = \"echo\"\nvia = [\"Jobs\", {{b = 2, a = 1}}]\n",
        with_via(r#"["Jobs", {a = 1, b = 2}]"#)
    );
    let e = error(&twice);
    assert_eq!(at(&e), (Some(33), "children[2].via".to_owned()));
    assert!(e.message.contains("children[1] has it too"), "{e}");

    let e = error(&DYNAMIC.replace(
        "name = \"JobSup\"",
        "name = \"JobSup\"\nvia = [\"Jobs\", 1]",
    ));
    assert_eq!(e.field, "children[0].via");
    assert!(e.message.contains("supervisor child"), "{e}");

    let e = error(&format!(
        "{}start_timeout_ms = 0\n",
        with_via(r#"["Jobs", 1]"#)
    ));
    assert_eq!(
        at(&e),
        (Some(29), "children[1].start_timeout_ms".to_owned())
    );
    assert!(e.message.contains("positive"), "{e}");
}

mod engine_limits;
mod limits;
mod refusals;

#[test]
fn hibernate_after_ms_is_read_into_the_child_spec_and_must_be_a_positive_worker_setting() {
    let (_dir, m) = parse(&format!(
        "{}hibernate_after_ms = 250\n",
        with_via("[\"Jobs\", 1]")
    ));
    let m = m.expect("valid");
    let w = worker(&m.children()[1]);
    assert_eq!(w.hibernate_after, Some(Duration::from_millis(250)));
    let spec = m.supervisor.to_spec();
    let crate::supervisor::ChildStart::Worker {
        hibernate_after, ..
    } = &spec.children[1].start
    else {
        panic!("a worker child");
    };
    assert_eq!(*hibernate_after, w.hibernate_after);
    let (_dir, zero) = parse(&format!(
        "{}hibernate_after_ms = 0\n",
        with_via("[\"Jobs\", 1]")
    ));
    let e = zero.expect_err("zero is refused");
    assert_eq!(e.field, "children[1].hibernate_after_ms");
    let (_dir, sup) = parse(
        "[modules]\necho = \"echo.wasm\"\n[[children]]\nid = \"s\"\ntype = \"supervisor\"\nhibernate_after_ms = 10\n",
    );
    let e = sup.expect_err("not on a supervisor");
    assert!(
        e.to_string().contains("not allowed on a supervisor child"),
        "{e}"
    );
}

/// The first ```toml block of `doc`, with `prefix` stripped from each line.
fn toml_block(doc: &str, prefix: &str) -> String {
    let mut lines = doc
        .lines()
        .map(|l| l.strip_prefix(prefix).unwrap_or(l))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .skip_while(|l| *l != "```toml")
        .skip(1);
    let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
    assert!(!block.is_empty(), "no toml block");
    block.join("\n")
}

/// Both references of every key (docs/manifest.md for users, this module's docs for the
/// crate) are manifests the parser accepts, so neither shows a key that does not exist.
#[test]
fn the_manifest_references_parse() {
    let modules = |text: &str| {
        // The references' module paths point into the guests' build output: here, the two
        // empty files `parse` makes.
        text.lines()
            .map(|l| {
                if l.starts_with("echo = ") {
                    "echo = \"echo.wasm\"".to_owned()
                } else if l.starts_with("kv = ") {
                    "kv = { path = \"kv.wasm\", vsn = \"1\" }".to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let user = toml_block(include_str!("../../../../docs/manifest.md"), "");
    let crate_doc = toml_block(include_str!("../mod.rs"), "//!");
    for (which, text) in [("docs/manifest.md", user), ("the module docs", crate_doc)] {
        let (_dir, result) = parse(&modules(&text));
        let manifest = result.unwrap_or_else(|e| panic!("{which}: {e}"));
        assert!(manifest.children().len() >= 4, "{which}");
    }
}
